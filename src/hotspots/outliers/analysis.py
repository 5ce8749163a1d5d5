"""The whole CSP outlier analysis on count tables: :func:`analyse_outliers` and :class:`OutlierResults`.

For one analysis period and every crime type and crime-type group: the level
of each CSP and LSOA against the county rate (:mod:`hotspots.outliers.tables`),
the change against the comparison period judged against the rest of the
county (:mod:`hotspots.outliers.change_table`), harm, concentration and the
monthly series (:mod:`hotspots.outliers.context_tables`) and the peer
comparison (:mod:`hotspots.outliers.peers`); then what the report tells
(:mod:`hotspots.outliers.highlights`: the rows that stand out, the funnel
plots, the busiest LSOAs), so the renderer only words and draws.  No I/O: the ``outliers`` stage
(:mod:`hotspots.stages.outliers`) builds the inputs, writes the tables and
hands the results to the report renderer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from hotspots._errors import ValidationError
from hotspots.geo.aggregate import Period
from hotspots.harm import load_harm_weights
from hotspots.outliers.change_table import CHANGE_SUMMARY, change_summary, change_table
from hotspots.outliers.columns import (
    CHANGE_COLUMNS,
    CONCENTRATION_COLUMNS,
    DISTRICT_COLUMNS,
    FLAG_NO_RECORDS,
    LEVELS,
    LSOA_COLUMNS,
    SMALL_EXPECTED,
)
from hotspots.outliers.context_tables import (
    concentration_table,
    harm_table,
    monthly_rates,
)
from hotspots.outliers.highlights import change_notable, report_highlights
from hotspots.outliers.peers import peer_comparison
from hotspots.outliers.tables import (
    crime_type_order,
    funnel_curves,
    outlier_table,
    overdispersion_summary,
    period_totals_many,
)
from hotspots.schema import ASB


@dataclasses.dataclass
class OutlierResults:
    """The CSP outlier analysis: tables for the CSVs and everything the report renders.

    Attributes
    ----------
    district : DataFrame
        :data:`DISTRICT_COLUMNS` (CSPs; ``outliers_district.csv``).
    lsoa : DataFrame
        :data:`LSOA_COLUMNS`.
    change : DataFrame
        :data:`CHANGE_COLUMNS` (CSPs vs the rest of the county, LSOAs vs the rest of their CSP).
    concentration : DataFrame
        :data:`CONCENTRATION_COLUMNS`.
    overdispersion : DataFrame
        :data:`OVERDISPERSION_COLUMNS` for CSPs and LSOAs.
    funnels : DataFrame
        :data:`FUNNEL_COLUMNS` (CSP populations).
    monthly : DataFrame
        :data:`MONTHLY_COLUMNS` (CSPs and the county; headline types).
    areas : GeoDataFrame
        CSP polygons (EPSG:27700) with ``area_code, area_name, district_code, population``.
    csp_summary : DataFrame
        :data:`~hotspots.outliers.highlights.CSP_SUMMARY_COLUMNS`: the CSPs in
        report order, with how many of their LSOAs are above the 99.8% limit
        for the headline type.
    highlights : DataFrame
        :data:`~hotspots.outliers.highlights.HIGHLIGHT_COLUMNS`: per CSP, the
        rows the report tells under "What stands out", in telling order
        (:func:`~hotspots.outliers.highlights.stand_out_rows`).
    funnel_picks : DataFrame
        :data:`~hotspots.outliers.highlights.FUNNEL_PICK_COLUMNS`: the funnel
        plots of each CSP section.
    notable_changes : DataFrame
        :data:`~hotspots.outliers.highlights.NOTABLE_CHANGE_COLUMNS`: every
        CSP x crime-type change that stands out (q below
        :data:`~hotspots.outliers.highlights.CHANGE_Q`).
    busiest_lsoas : DataFrame
        :data:`~hotspots.outliers.highlights.BUSIEST_LSOA_COLUMNS`: the
        busiest LSOAs of each CSP for the headline type.
    meta : dict
        Labels and provenance: force name and code, periods and reasons,
        months present/missing, crime-type order and groups, headline type,
        harm table version and weights, peer-table notes, town centres by CSP,
        data sources, levels and adjustment, and the CSP cells outside the
        funnel limits (``flag_counts``, :func:`flag_counts`).
    """

    district: pd.DataFrame
    lsoa: pd.DataFrame
    change: pd.DataFrame
    concentration: pd.DataFrame
    overdispersion: pd.DataFrame
    funnels: pd.DataFrame
    monthly: pd.DataFrame
    areas: gpd.GeoDataFrame
    csp_summary: pd.DataFrame
    highlights: pd.DataFrame
    funnel_picks: pd.DataFrame
    notable_changes: pd.DataFrame
    busiest_lsoas: pd.DataFrame
    meta: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """Small JSON-able summary for the run manifest."""
        single_type_groups = self.meta.get("single_type_groups", [])
        d = _live_cells(self.district, single_type_groups)
        cells = flag_counts(self.district, single_type_groups=single_type_groups)
        od = self.overdispersion[self.overdispersion["area_type"] == "csp"]
        return {
            "period": self.meta["period"]["label"],
            "change": f"{self.meta['change_after']['label']} vs {self.meta['change_before']['label']}"
            if self.meta.get("change_after") else None,
            "district_cells": cells["cells"],
            "district_cells_flagged_adjusted": cells["adjusted_95"],
            "district_cells_flagged_unadjusted": cells["unadjusted_95"],
            "district_cells_flagged_998_adjusted": cells["adjusted_998"],
            "district_cells_flagged_998_unadjusted": cells["unadjusted_998"],
            "lsoa_cells_flagged_adjusted": int((~self.lsoa["flag"].isin(["within", FLAG_NO_RECORDS])).sum()),
            "phi_district": {r.crime_type: round(float(r.phi), 3) for r in od.itertuples()},
            "adjustment": self.meta["adjustment"],
            "changes_flagged": int(d["change_flag"].isin(["up_vs_reference", "down_vs_reference"]).sum()),
            "changes_flagged_q05": int(change_notable(d).sum()),
            "peer_groups": self.meta.get("peer_source") or None,
            "harm_table_version": self.meta["harm_version"],
        }


def _live_cells(district: pd.DataFrame, single_type_groups: Sequence[str]) -> pd.DataFrame:
    # a group that is one category (e.g. "ASB") repeats that category's row: count it once
    return district[(district["flag"] != FLAG_NO_RECORDS) & ~district["crime_type"].isin(list(single_type_groups))]


def flag_counts(district: pd.DataFrame, *, single_type_groups: Sequence[str] = ()) -> dict[str, int]:
    """How many area x crime-type cells lie outside the funnel limits, with and without the adjustment.

    Parameters
    ----------
    district
        A level table (:func:`hotspots.outliers.outlier_table` rows with
        ``crime_type, flag, flag_unadjusted``).
    single_type_groups
        Groups that are a single category (their rows repeat it): left out.

    Returns
    -------
    dict
        ``cells`` (cells with records), ``adjusted_95`` / ``adjusted_998``
        (outside the 95% / 99.8% limits allowing for overdispersion) and
        ``unadjusted_95`` / ``unadjusted_998`` (Poisson limits alone).

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"crime_type": ["A", "A", "B", "ASB"], "flag": ["high_998", "within", "low_95", "within"],
    ...                       "flag_unadjusted": ["high_998", "high_998", "low_998", "high_95"]})
    >>> flag_counts(table, single_type_groups=["ASB"])
    {'cells': 3, 'adjusted_95': 2, 'adjusted_998': 1, 'unadjusted_95': 3, 'unadjusted_998': 3}
    """
    live = _live_cells(district, single_type_groups)
    return {
        "cells": int(len(live)),
        "adjusted_95": int((live["flag"] != "within").sum()),
        "adjusted_998": int(live["flag"].isin(["high_998", "low_998"]).sum()),
        "unadjusted_95": int((live["flag_unadjusted"] != "within").sum()),
        "unadjusted_998": int(live["flag_unadjusted"].isin(["high_998", "low_998"]).sum()),
    }


def headline_crime_type(groups: Mapping[str, Sequence[str]], crime_types: Sequence[str]) -> str:
    """The crime type the report leads with: the group "All crime" if configured, else the largest group,
    else the first category.

    Parameters
    ----------
    groups
        Crime-type groups (name -> member categories).
    crime_types
        The categories analysed.

    Returns
    -------
    str

    Examples
    --------
    >>> headline_crime_type({"Violence": ["A"], "All crime": ["A", "B"]}, ["A", "B"])
    'All crime'
    """
    if "All crime" in groups:
        return "All crime"
    if groups:
        return max(groups, key=lambda g: len(groups[g]))
    return sorted(crime_types)[0]


def analyse_outliers(
    csp_counts: pd.DataFrame,
    lsoa_counts: pd.DataFrame,
    csps: gpd.GeoDataFrame,
    lsoas: pd.DataFrame,
    lsoa_to_csp: pd.Series,
    *,
    period: Period,
    comparison: Period | None = None,
    change_current: Period | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    crime_types: Sequence[str] | None = None,
    months_present: Sequence[str] | None = None,
    harm_weights: pd.Series | None = None,
    peers: pd.DataFrame | None = None,
    adjustment: str = "multiplicative",
    county: tuple[str, str] = ("county", "County"),
    levels: Sequence[float] = LEVELS,
) -> OutlierResults:
    """Run the whole CSP outlier analysis on count tables (no I/O).

    Parameters
    ----------
    csp_counts, lsoa_counts
        Long counts by area x month x crime type (:data:`hotspots.schema.COUNT_COLUMNS`).
    csps, lsoas
        Area tables; ``csps`` keeps its geometry for the map and GeoPackage.
    lsoa_to_csp
        LSOA code -> CSP code.
    period
        The analysis period (levels, concentration, LSOAs).
    comparison, change_current
        Change is ``change_current`` against ``comparison`` (seasonally
        matched months); None skips the change analysis.
    groups, crime_types
        Crime-type groups and the categories to analyse.
    months_present
        Months with data (for the monthly series); default those in the counts.
    harm_weights
        :func:`hotspots.harm.load_harm_weights` (default: the shipped table).
    peers
        :func:`read_peer_groups` pairs, optional.
    adjustment
        Overdispersion adjustment: ``"multiplicative"`` (phi) or ``"additive"`` (tau2).
    county
        ``(code, name)`` of the whole area (the force).

    levels
        Funnel levels (the column lists assume the default 95% and 99.8%).

    Returns
    -------
    OutlierResults
        The CSP and LSOA level tables (with harm, change and peer columns for
        CSPs), the change, concentration, overdispersion, funnel-curve and
        monthly tables, the CSP areas, what the report tells and shows
        (:mod:`hotspots.outliers.highlights`) and ``meta`` (periods, crime-type order,
        headline type, harm weights, peer notes, levels, adjustment); the
        ``outliers`` stage adds provenance (force name, sources, missing
        months, town centres) to ``meta`` before rendering.

    Raises
    ------
    ValidationError
        When the analysis period has no months, or an area has no residents.

    Notes
    -----
    Levels: funnel plots with the overdispersion adjustment (Spiegelhalter
    2005, Statistics in Medicine 24:1185-1202; Quality and Safety in Health
    Care 14:347-351).  Change: ratio of rate ratios against the rest of the
    county (for LSOAs, the rest of their CSP), Benjamini-Hochberg q-values.
    Concentration: Weisburd (2015); Bernasco & Steenbeek (2017).

    See Also
    --------
    hotspots.outliers.area_outliers : the level table for any set of areas, in one call.
    """
    groups = dict(groups or {})
    if crime_types is None:
        crime_types = sorted(set(csp_counts["crime_type"]))
    if not period.months:
        raise ValidationError(f"the analysis period {period.label} has no months with data",
                              hint="choose periods.current within the months present (hotspots info)")
    harm_weights = load_harm_weights() if harm_weights is None else harm_weights
    csp_names = dict(zip(csps["area_code"], csps["area_name"]))

    # the period's totals and the change periods' (when there is a change analysis), each counts table coded once
    with_change = (comparison is not None and change_current is not None and bool(comparison.months)
                   and bool(change_current.months))
    totals_months = [period.months, comparison.months, change_current.months] if with_change else [period.months]
    csp_totals, *csp_change_totals = period_totals_many(csp_counts, totals_months, groups=groups,
                                                        crime_types=crime_types)
    district = outlier_table(csp_totals, csps, levels=levels, adjustment=adjustment)
    od_csp = overdispersion_summary(district, area_type="csp")
    harm = harm_table(csp_totals, csps, groups=groups, weights=harm_weights)
    district = district.merge(harm, on=["area_code", "crime_type"], how="left")
    peer = peer_comparison(district, peers)
    district = district.merge(peer, on=["area_code", "crime_type"], how="left")
    district.insert(0, "area_type", "csp")
    district["district_code"] = district["area_code"].map(dict(zip(csps["area_code"], csps["district_code"])))
    district["period"] = period.label
    district["months"] = len(period.months)

    lsoa_totals, *lsoa_change_totals = period_totals_many(lsoa_counts, totals_months, groups=groups,
                                                          crime_types=crime_types)
    lsoa = outlier_table(lsoa_totals, lsoas, levels=levels, adjustment=adjustment)
    od_lsoa = overdispersion_summary(lsoa, area_type="lsoa")
    lsoa.insert(0, "area_type", "lsoa")
    lsoa["csp_code"] = lsoa["area_code"].map(lsoa_to_csp).fillna("")
    lsoa["csp_name"] = lsoa["csp_code"].map(csp_names).fillna("")
    lsoa["district_code"] = lsoa["area_code"].map(dict(zip(lsoas["area_code"], lsoas["district_code"])))
    csp_lsoa_total = lsoa.groupby(["csp_code", "crime_type"])["count"].transform("sum")
    with np.errstate(divide="ignore", invalid="ignore"):
        lsoa["share_of_csp"] = np.where(csp_lsoa_total > 0, lsoa["count"] / csp_lsoa_total, np.nan)
    lsoa["rank_in_csp"] = lsoa.groupby(["csp_code", "crime_type"])["count"].rank(ascending=False, method="min").astype(np.int64)
    lsoa["period"] = period.label
    lsoa["months"] = len(period.months)

    od = pd.concat([od_csp, od_lsoa], ignore_index=True)

    if with_change:
        csp_before, csp_after = csp_change_totals
        csp_change = change_table(csp_before, csp_after, csps, before_period=comparison, after_period=change_current,
                                  parent_names={"": county[1]}, reference_label="rest of the county")
        csp_change["area_type"] = "csp"
        csp_change["parent_code"] = county[0]
        csp_change["parent_name"] = county[1]
        lsoa_before, lsoa_after = lsoa_change_totals
        lsoa_change = change_table(lsoa_before, lsoa_after, lsoas, before_period=comparison,
                                   after_period=change_current, parent=lsoa_to_csp, parent_names=csp_names,
                                   reference_label="rest of the CSP")
        lsoa_change["area_type"] = "lsoa"
        change = pd.concat([csp_change, lsoa_change], ignore_index=True)
        district = district.merge(change_summary(csp_change), on=["area_code", "crime_type"], how="left")
    else:
        change = pd.DataFrame(columns=CHANGE_COLUMNS)
        for column in CHANGE_SUMMARY.values():
            district[column] = np.nan if column != "change_flag" else ""
    district = district[DISTRICT_COLUMNS]
    lsoa = lsoa[LSOA_COLUMNS]

    concentration = concentration_table(lsoa_totals, lsoa_to_csp, csp_names, county=county)
    concentration.insert(5, "period", period.label)
    concentration = concentration[CONCENTRATION_COLUMNS]

    headline = headline_crime_type(groups, crime_types)
    single_type_groups = {g for g, m in groups.items() if len(m) == 1 and m[0] in crime_types}
    months_present = sorted(set(months_present or csp_counts["month"].unique()))
    trend_types = [headline] + [t for t in (ASB,) if t in crime_types and t != headline]
    monthly = monthly_rates(csp_counts, csps, months_present=months_present, groups=groups,
                            crime_types=trend_types, county=county)
    meta = {
        "county_code": county[0], "county_name": county[1],
        "period": {"label": period.label, "months": list(period.months)},
        "change_before": {"label": comparison.label, "months": list(comparison.months)} if comparison else None,
        "change_after": {"label": change_current.label, "months": list(change_current.months)}
        if change_current else None,
        "months_present": months_present,
        "crime_types": crime_type_order(crime_types, groups),
        "groups": {k: list(v) for k, v in groups.items()},
        "single_type_groups": sorted(single_type_groups),
        "headline": headline,
        "trend_types": trend_types,
        "harm_version": harm_weights.attrs.get("version", ""),
        "harm_weights": {k: (None if pd.isna(v) else float(v)) for k, v in harm_weights.items()},
        "harm_unweighted": harm.attrs["unweighted"],
        "peers_unmatched": peer.attrs["unmatched"],
        "peers_given": peers is not None and not peers.empty,
        "levels": list(levels),
        "adjustment": adjustment,
        "small_expected": SMALL_EXPECTED,
        "flag_counts": flag_counts(district, single_type_groups=sorted(single_type_groups)),
    }
    areas = csps[["area_code", "area_name", "district_code", "population", "geometry"]].copy()
    chosen = report_highlights(district, lsoa, crime_types=meta["crime_types"],
                               single_type_groups=meta["single_type_groups"], headline=headline)
    return OutlierResults(district=district, lsoa=lsoa, change=change[CHANGE_COLUMNS],
                          concentration=concentration, overdispersion=od, funnels=funnel_curves(district, levels=levels),
                          monthly=monthly, areas=areas, **chosen, meta=meta)
