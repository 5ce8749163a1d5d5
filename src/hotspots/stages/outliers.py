"""The ``outliers`` stage of ``hotspots run``: CSP outlier tables and the CSP outlier report.

The stage reads ``[outliers]`` from the config (:func:`outlier_options`),
builds the analysis inputs from the run context (CSP and LSOA counts, areas,
the LSOA -> CSP lookup, periods, peer groups, harm weights), runs
:func:`hotspots.outliers.analyse_outliers`, writes the tables under
``outliers/`` and hands the finished results to
:func:`hotspots.render.outliers_report.render_report`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hotspots._errors import ConfigError

if TYPE_CHECKING:
    from hotspots.config import Settings
    from hotspots.stages.context import Context

#: the overdispersion adjustments ``[outliers] adjustment`` accepts
ADJUSTMENTS = ("multiplicative", "additive")


@dataclasses.dataclass(frozen=True)
class OutlierOptions:
    """The ``[outliers]`` table of the config, checked.

    Attributes
    ----------
    peer_groups : str
        Most-similar-group CSV (``area_code,peer_group`` or
        ``area_code,peer_code``), or "" for none.
    adjustment : str
        Overdispersion adjustment: ``"multiplicative"`` or ``"additive"``.
    harm_weights : str
        Harm-weight CSV, or "" for the shipped table.
    recording_note : str
        Text of the recording caveat in the report ("" for the default).
    """

    peer_groups: str = ""
    adjustment: str = "multiplicative"
    harm_weights: str = ""
    recording_note: str = ""


def outlier_options(settings: Settings) -> OutlierOptions:
    """Read and check ``[outliers]`` from the settings (every key optional; an unknown key is an error).

    Every problem is reported in one :class:`~hotspots._errors.ConfigError`.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> outlier_options(SimpleNamespace(extra={"outliers": {"adjustment": "additive"}})).adjustment
    'additive'
    >>> try:
    ...     outlier_options(SimpleNamespace(extra={"outliers": {"adjustmnet": "additive"}}))
    ... except ConfigError as exc:
    ...     print(exc.message)
    unknown key(s) in [outliers]: ['adjustmnet']; valid: peer_groups, adjustment, harm_weights, recording_note
    """
    raw = settings.extra.get("outliers", {}) if isinstance(settings.extra, Mapping) else {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"[outliers] in the config must be a table; got {type(raw).__name__} {raw!r:.60}",
                          hint='for example: [outliers]\npeer_groups = ""')
    problems, hints = [], []
    valid = [f.name for f in dataclasses.fields(OutlierOptions)]
    unknown = [k for k in raw if k not in valid]
    if unknown:
        problems.append(f"unknown key(s) in [outliers]: {unknown}; valid: {', '.join(valid)}")
        hints.append("remove or correct the misspelt names: an unknown name would be ignored")
    adjustment = raw.get("adjustment", "multiplicative")
    if adjustment not in ADJUSTMENTS:
        problems.append(f"[outliers] adjustment = {adjustment!r} must be \"multiplicative\" or \"additive\"")
        hints.append("multiplicative widens the funnel by sqrt(phi); additive adds tau2 (Spiegelhalter 2005)")
    for key in ("peer_groups", "harm_weights", "recording_note"):
        if key in raw and not isinstance(raw[key], str):
            problems.append(f"[outliers] {key} = {raw[key]!r} must be text")
            hints.append(f'write {key} in quotes, e.g. {key} = ""')
    if problems:
        raise ConfigError("; ".join(problems), hint="; ".join(hints))
    return OutlierOptions(
        peer_groups=raw.get("peer_groups", "") or "",
        adjustment=adjustment,
        harm_weights=raw.get("harm_weights", "") or "",
        recording_note=raw.get("recording_note", "") or "",
    )


def stage_outliers(ctx: Context) -> dict[str, Any]:
    """CSP outlier tables and the CSP outlier report under ``outliers/``.

    Reads ``[outliers]`` from the config: ``peer_groups`` (CSV path, optional),
    ``adjustment`` (``multiplicative`` | ``additive``), ``harm_weights`` (CSV
    path, optional), ``recording_note`` (text for the recording caveat).
    Writes ``outliers/outliers_district.csv``, ``outliers_lsoa.csv``,
    ``outliers_change.csv``, ``concentration.csv``, ``outliers_district.gpkg``
    and ``csp_outlier_report.html``; keeps the results in
    ``ctx.results["outliers"]``.  Returns a summary for the manifest.
    """
    import geopandas as gpd

    from hotspots.harm import load_harm_weights
    from hotspots.outliers import analyse_outliers, read_peer_groups
    from hotspots.render.outliers_report import render_report

    options = outlier_options(ctx.settings)
    geo = ctx.geography
    csps = geo.areas("csp")
    lsoas = geo.areas("lsoa")
    # a district split between CSPs (CSPs following old districts) is no alias of one CSP
    one_csp = geo.district_lookup.drop_duplicates("ltla24_code", keep=False)
    district_to_csp = one_csp.set_index("ltla24_code")["csp24_code"]
    lsoa_to_csp = geo.lsoa_csp
    peers = None
    if options.peer_groups:
        peers = read_peer_groups(options.peer_groups, aliases=district_to_csp.to_dict())
    weights = load_harm_weights(options.harm_weights or None)
    force = geo.force
    county = (str(force["area_code"].iloc[0]), str(force["area_name"].iloc[0]))
    periods = ctx.periods
    results = analyse_outliers(
        ctx.counts("csp"), ctx.counts("lsoa"), csps, lsoas, lsoa_to_csp,
        period=periods.current, comparison=periods.comparison, change_current=periods.change_current,
        groups=ctx.settings.crime_groups, crime_types=ctx.all_crime_types, months_present=ctx.months_present,
        harm_weights=weights, peers=peers, adjustment=options.adjustment, county=county,
    )
    town_centres = geo.areas("town_centre")
    town_csp = geo.csp_of(town_centres)  # once, not once per CSP
    results.meta.update({
        "force_name": ctx.settings.name or county[1],
        "periods_reason": periods.reason,
        "months_missing": list(ctx.months_missing),
        "sources": dict(geo.sources),
        "police_files": len(ctx.accounting.files),
        "rows_kept": int(len(ctx.points)),
        "peer_source": options.peer_groups,
        "recording_note": options.recording_note,
        "town_centres": {csp: sorted(town_centres.loc[town_csp == csp, "area_name"].astype(str))
                         for csp in csps["area_code"]},
        "coverage": ctx.coverage(),
    })
    out = ctx.out
    out.write_csv(results.district, "outliers/outliers_district.csv")
    out.write_csv(results.lsoa, "outliers/outliers_lsoa.csv")
    out.write_csv(results.change, "outliers/outliers_change.csv")
    out.write_csv(results.concentration, "outliers/concentration.csv")
    geometry = results.areas.set_index("area_code")["geometry"]
    gdf = gpd.GeoDataFrame(results.district, geometry=results.district["area_code"].map(geometry).to_numpy(),
                           crs=results.areas.crs)
    out.write_geo(gdf, "outliers/outliers_district.gpkg", layer="outliers_district")
    summary = results.summary()
    progress = getattr(ctx, "progress", None)
    if progress is not None:
        progress.info(
            f"  CSP x crime-type cells outside the 95% funnel: {summary['district_cells_flagged_unadjusted']} of "
            f"{summary['district_cells']} before the overdispersion adjustment, "
            f"{summary['district_cells_flagged_adjusted']} after"
        )
    ctx.results["outliers"] = results
    from hotspots.stages._report_places import lsoa_places

    out.write_text(render_report(results, lsoa_places=lsoa_places(ctx.geography)), "outliers/csp_outlier_report.html")
    return summary
