"""The before/after evaluation itself: counts per unit and month, then every statistic and sentence.

Design (see ``methods.md``, "Before / after evaluation"):

* **Treated areas** (R): any polygons (:class:`~hotspots.evaluation.areas.TreatedAreas`).
* **Buffers** (D): a ring of ``buffer_m`` metres around each area, excluding
  every treated area, clipped to the study area.
* **Control** (C): ``rest_of_county`` (the study area minus treated areas and
  buffers; default), ``rest_of_district`` (each area's own district minus
  treated areas and buffers) or ``matched`` (untreated grid cells of about
  the same size whose before-period counts add up to the area's).  Every
  effect is measured against the control, never as a raw change.
* **Periods**: the panel model uses every month in the data (older history
  for the pre-trend check, later months for the after-period trend).  Months
  missing from the data are never filled in.
* **Statistics**: rate-ratio DiD, placebo-calibrated (the headline) and plain; a Poisson fixed-effects panel
  (cluster-robust, wild cluster bootstrap p) with a pre-trend check; a synthetic control; buffers calibrated on
  placebo rings; WDQ, TNE and WDD (descriptive); harm; regression to the mean; cost only when credited.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from hotspots._dist import norm_ppf  # scipy.stats' norm.ppf, without importing scipy.stats
from hotspots._errors import InputFileError, ValidationError
from hotspots.evaluation.areas import TreatedAreas, _district_of_xy, _match_by_total, _pool_grid, _positions_of, make_buffers
from hotspots.evaluation.cost import cost_per_crime_prevented, crimes_prevented_from_irr
from hotspots.evaluation.did import did_rate_ratio, harm_did
from hotspots.evaluation.displacement import total_net_effect, wdd, wdq
from hotspots.evaluation.inference import cluster_text as _cluster_text, placebo_did, quasi_poisson_did, ring_counts
from hotspots.evaluation.panel import PanelEffect, PreTrendCheck
from hotspots.evaluation.rtm import rtm_check
from hotspots.evaluation.synth import placebo_donors, synthetic_control
from hotspots.evaluation.tables import (
    AREA_TABLE_COLUMNS,
    MONTHLY_COLUMNS,
    SUMMARY_COLUMNS,
    EvaluationResult,
    _area_table,
    _clip_to,
    _geometries,
    _monthly,
    _panel,
)
from hotspots.evaluation.verdict import (
    _CREDIT_ONLY,
    DECISION_TABLE,
    LEVEL,
    _describe_cost,
    _describe_panel,
    _describe_pre_trend,
    _describe_rtm,
    _displacement_wording,
    _headline,
    _noun,
    _noun_one,
    _panel_verdict,
    _what,
    classify_change,
    describe_change,
    describe_displacement,
    overall_verdict,
)
from hotspots.geo.aggregate import Period
from hotspots.geo.assign import assign_points
from hotspots.geo.grid import assign_to_cells
from hotspots.harm import load_harm_weights
from hotspots.months import month_range, month_ranges
from hotspots.schema import BNG, EVALUATION_CONTROLS

__all__ = ["CONTROLS", "CONTROL_LABELS", "_evaluate_areas"]

CONTROLS = EVALUATION_CONTROLS
CONTROL_LABELS = {
    "rest_of_county": "the rest of the county",
    "rest_of_district": "the rest of their districts",
    "matched": "matched untreated areas with similar crime before",
}


def _evaluate_areas(
    points: pd.DataFrame,
    treated: TreatedAreas,
    districts: gpd.GeoDataFrame,
    *,
    months_present: Sequence[str],
    before: Period,
    after: Period,
    crime_types: dict[str, tuple[str, ...]],
    buffer_m: float = 250.0,
    control: str = "rest_of_county",
    funding_gbp: float | None = None,
    harm_weights: pd.Series | None = None,
    pool_cell_m: float | None = None,
    all_months: Sequence[str] | None = None,
    study_area=None,
    placebo_draws: int = 999,
    seed: int = 20240601,
) -> EvaluationResult:
    """Before/after evaluation of ``treated`` areas against a control, with displacement, RTM and cost.

    Parameters
    ----------
    points
        Points (``x``, ``y`` in EPSG:27700, ``month``, ``crime_type``), clipped to the study area.
    treated
        The treated areas and how they were chosen (:class:`TreatedAreas`).
    districts
        District polygons (``area_code``, ``area_name``): control pieces and ``rest_of_district``.
    months_present
        Months with data (missing months are gaps, never zeros).
    before, after
        The before and after periods (seasonally matched, equal lengths ideally).
    crime_types
        Name -> police.uk member types; the first is the headline.
    buffer_m, control, funding_gbp
        Buffer width in metres; the comparison (one of :data:`CONTROLS`); annual funding, pro-rated to the after period.
    harm_weights
        Harm weight per police.uk type (default :func:`hotspots.harm.load_harm_weights`).
    pool_cell_m
        Cell size for matched controls and the RTM pool; default the treated
        areas' median size (square root of area, rounded to 50 m, at least 100 m).
    all_months
        Every month of the study period, to show gaps in the monthly table (default: first to last month present).
    study_area
        Polygon(s) of the study area (default the union of ``districts``).
    placebo_draws, seed
        Placebo sets for the calibrated headline interval (:func:`~hotspots.evaluation.inference.placebo_did`)
        and their random seed.

    Returns
    -------
    EvaluationResult
        The tables, findings and headline; ``auto`` lists the automatic
        choices made (name -> (value, reason)) for the caller to record.
    """
    auto: dict[str, tuple[Any, str]] = {}

    def record(key: str, value: Any, reason: str) -> None:
        auto[key] = (value, reason)

    if control not in CONTROLS:
        raise ValidationError(f"control={control!r} is not one of {list(CONTROLS)}", hint="use rest_of_county, rest_of_district or matched")
    areas = treated.areas.reset_index(drop=True)
    if len(areas) == 0:
        raise ValidationError("no treated areas to evaluate", hint="check the areas file or the selection settings")
    notes: list[str] = []
    study_geom = (shapely.union_all(districts.geometry.values) if study_area is None else
                  study_area if isinstance(study_area, shapely.Geometry) else shapely.union_all(study_area.geometry.values))
    # areas outside the study area have no data there: clip and say so
    clipped, lost = _clip_to(areas.geometry.values, study_geom)
    if (lost > 0.01).any():
        notes.append(f"{int((lost > 0.01).sum())} treated area(s) extend beyond the study area; only the part inside "
                     "is evaluated (no data outside)")
        areas = areas.set_geometry(gpd.GeoSeries(clipped, crs=BNG))
        areas["area_km2"] = areas.geometry.area / 1e6
    empty = areas.geometry.is_empty
    if empty.any():
        raise InputFileError(f"treated area(s) {list(areas.loc[empty, 'area_code'])} lie entirely outside the study area",
                             hint="check the CRS and the file")
    if (areas["district_code"].astype(str) == "").any():
        rep = areas.geometry.representative_point()
        d = _district_of_xy(rep.x.to_numpy(), rep.y.to_numpy(), districts)
        areas["district_code"] = np.where(areas["district_code"].astype(str) == "", d, areas["district_code"])
    district_names = districts.set_index("area_code")["area_name"]
    buffers = make_buffers(areas, buffer_m, study_geom)
    treated_union = shapely.union_all(areas.geometry.values)
    buffer_union = shapely.union_all(buffers.geometry.values)
    excluded_geom = shapely.union_all([treated_union, buffer_union])

    if pool_cell_m is None:
        median_km2 = float(np.median(areas["area_km2"]))
        pool_cell_m = max(100.0, round(math.sqrt(median_km2 * 1e6) / 50.0) * 50.0)
        record("pool_cell_m", pool_cell_m,
               f"cells for matched controls and the regression-to-the-mean pool: about the treated areas' median size "
               f"({median_km2:.3f} km²), rounded to 50 m")
    pool = _pool_grid(study_geom, pool_cell_m, excluded_geom)
    pool_district = _district_of_xy(pool["x_centre"].to_numpy(float), pool["y_centre"].to_numpy(float), districts)

    # ---- membership of every point in every unit
    all_members = sorted({t for m in crime_types.values() for t in m})
    # (the four columns read here: filtering the other columns of every record, strings, was most of this step)
    pts = points[["month", "crime_type", "x", "y"]]
    pts = pts[pts["crime_type"].isin(all_members)].reset_index(drop=True)
    months = sorted(set(months_present))
    month_pos = {m: i for i, m in enumerate(months)}
    type_pos = {t: i for i, t in enumerate(all_members)}
    pm = _positions_of(pts["month"], month_pos)  # -1: a month not in months_present (or missing)
    ok_month = pm >= 0
    pts, pm = pts.loc[ok_month].reset_index(drop=True), pm[ok_month]
    pt = _positions_of(pts["crime_type"], type_pos)  # (every type is a member: filtered above)
    x, y = pts["x"].to_numpy(float), pts["y"].to_numpy(float)
    n_areas, n_pts = len(areas), len(pts)
    district_codes = list(districts["area_code"])

    tr_pairs = assign_points(x, y, areas, exclusive=False)
    bf_pairs = assign_points(x, y, buffers, exclusive=False)
    in_treated = np.zeros(n_pts, bool)
    in_treated[tr_pairs["point"].to_numpy()] = True
    in_buffer = np.zeros(n_pts, bool)
    in_buffer[bf_pairs["point"].to_numpy()] = True
    in_buffer &= ~in_treated
    outside = ~in_treated & ~in_buffer
    pt_district = _district_of_xy(x, y, districts)
    cell_of = assign_to_cells(x, y, pool)
    cell_of[~outside] = -1

    # unit layout: treated areas | buffers | ALL treated | ALL buffer | district rests | county | pool cells
    u_buf, u_tall, u_ball = n_areas, 2 * n_areas, 2 * n_areas + 1
    u_dist = 2 * n_areas + 2
    u_county = u_dist + len(district_codes)
    u_pool = u_county + 1
    n_units = u_pool + len(pool)
    pairs_pt, pairs_unit = [tr_pairs["point"].to_numpy(), bf_pairs["point"].to_numpy()], [tr_pairs["area"].to_numpy(), u_buf + bf_pairs["area"].to_numpy()]
    pairs_pt += [np.flatnonzero(in_treated), np.flatnonzero(in_buffer)]
    pairs_unit += [np.full(int(in_treated.sum()), u_tall), np.full(int(in_buffer.sum()), u_ball)]
    dpos = {c: i for i, c in enumerate(district_codes)}
    dist_idx = _positions_of(pt_district, dpos)
    sel = outside & (dist_idx >= 0)
    pairs_pt.append(np.flatnonzero(sel))
    pairs_unit.append(u_dist + dist_idx[sel])
    pairs_pt.append(np.arange(n_pts))
    pairs_unit.append(np.full(n_pts, u_county))
    sel = cell_of >= 0
    pairs_pt.append(np.flatnonzero(sel))
    pairs_unit.append(u_pool + cell_of[sel])
    p_all, u_all = np.concatenate(pairs_pt), np.concatenate(pairs_unit)
    by_type = np.zeros((n_units, len(months), len(all_members)), dtype=np.int64)
    np.add.at(by_type, (u_all, pm[p_all], pt[p_all]), 1)
    n_outside_districts = int((outside & (dist_idx < 0)).sum())
    if n_outside_districts:
        notes.append(f"{n_outside_districts} control points fell in no district polygon (slivers) and are left out of the control")

    harm = load_harm_weights() if harm_weights is None else harm_weights
    before_idx = [month_pos[m] for m in before.months if m in month_pos]
    after_idx = [month_pos[m] for m in after.months if m in month_pos]
    transition = [m for m in months if before.months[-1] < m < after.months[0]]
    panel_months = [m for m in months if m not in set(transition)]
    if transition:
        notes.append(f"months between the periods ({month_ranges(transition)}) are left out of the panel model (patrols starting)")

    # ---- per-area control definition
    area_district = areas["district_code"].astype(str).to_numpy()
    control_label = CONTROL_LABELS[control]
    primary = next(iter(crime_types))
    prim_mask = np.isin(all_members, crime_types[primary])
    prim = by_type[:, :, prim_mask].sum(axis=2)
    pool_units = np.arange(u_pool, n_units)
    # Matching on a period's counts picks cells that were high partly by chance, and they fall back
    # afterwards (regression to the mean).  That is wanted for the treated areas' control when the areas
    # were themselves picked on the before period (both regress alike), and unwanted for the buffers
    # (never picked on counts): their controls are matched on older history when the data have it.
    history_idx = [month_pos[m] for m in months if m < before.months[0]]
    pre_set, after_set = {m for m in panel_months if m < after.months[0]}, set(after.months)
    history_ok = len(history_idx) >= 3
    r_match_idx = before_idx if (treated.selected_on_counts is not False or not history_ok) else history_idx
    d_match_idx = history_idx if history_ok else before_idx

    r_match_label = before.label if r_match_idx is before_idx else month_ranges([months[i] for i in r_match_idx])
    d_match_label = before.label if d_match_idx is before_idx else month_ranges([months[i] for i in d_match_idx])
    r_target = prim[:n_areas][:, r_match_idx].sum(axis=1)
    d_target = prim[u_buf:u_buf + n_areas][:, d_match_idx].sum(axis=1)
    pool_r = prim[pool_units][:, r_match_idx].sum(axis=1)
    pool_d = prim[pool_units][:, d_match_idx].sum(axis=1)
    available = np.ones(len(pool), bool)
    matched_r = [[] for _ in range(n_areas)]
    for i in np.argsort(-r_target, kind="stable"):
        chosen = _match_by_total(r_target[i], pool_r, available)
        available[chosen] = False
        matched_r[i] = chosen
    # the buffers' controls are drawn from the whole untreated pool, independently of the treated matching:
    # cells left over after the treated areas took the busiest ones have an anomalously low before period
    available = np.ones(len(pool), bool)
    matched_d = [[] for _ in range(n_areas)]
    for i in np.argsort(-d_target, kind="stable"):
        chosen = _match_by_total(d_target[i], pool_d, available)
        available[chosen] = False
        matched_d[i] = chosen
    record("matched_controls",
           {"treated": int(sum(map(len, matched_r))), "buffers": int(sum(map(len, matched_d)))},
           f"untreated {pool_cell_m:g} m cells outside the areas and buffers, largest first, until their {primary} "
           f"total matches each area's in {r_match_label} "
           + ("(the period the areas were or may have been picked on, so both regress alike)"
              if r_match_idx is before_idx and treated.selected_on_counts is not False else "")
           + f" and, separately, each buffer's in {d_match_label}"
           + (" (older history, so the buffers' controls are not picked at a chance peak)" if d_match_idx is not before_idx else "")
           + "; used for control='matched' and for the WDD test, which needs controls of similar size")

    matched_r_units = [[u_pool + c for c in cells] for cells in matched_r]
    matched_d_units = [[u_pool + c for c in cells] for cells in matched_d]
    if control == "matched":
        area_controls = matched_r_units
        overall_control = sorted({u for cs in area_controls for u in cs})
        panel_controls = overall_control
        # buffers are compared with their own matched cells, not the treated areas'
        buffer_area_controls = matched_d_units
        buffer_control = sorted({u for cs in matched_d_units for u in cs})
    elif control == "rest_of_district":
        area_controls = [[u_dist + dpos[d]] if d in dpos else [] for d in area_district]
        overall_control = sorted({u for cs in area_controls for u in cs})
        panel_controls = overall_control
        buffer_area_controls, buffer_control = area_controls, overall_control
    else:
        overall_control = [u_dist + i for i in range(len(district_codes))]
        area_controls = [overall_control] * n_areas
        panel_controls = overall_control
        buffer_area_controls, buffer_control = area_controls, overall_control
    if not overall_control:
        raise ValidationError("the control is empty", hint="use control = rest_of_county")

    # ---- per crime type
    summary_rows: list[dict[str, Any]] = []
    area_frames: list[pd.DataFrame] = []
    monthly_frames: list[pd.DataFrame] = []
    findings: list[dict[str, Any]] = []
    months_range = list(all_months) if all_months else month_range(months[0], months[-1])
    funding_period = None
    if funding_gbp:
        funding_period = funding_gbp * len(after.months) / 12.0
        record("funding_pro_rata", round(funding_period, 2),
               f"£{funding_gbp:,.0f} a year pro-rated to the {len(after.months)}-month after period")

    def add(ct: str, measure: str, description: str, estimate=np.nan, low=np.nan, high=np.nan, z=np.nan, p=np.nan,
            unit: str = "", verdict: str = "", note: str = "") -> None:
        summary_rows.append({"crime_type": ct, "measure": measure, "description": description, "estimate": estimate,
                             "low": low, "high": high, "z": z, "p_value": p, "unit": unit, "verdict": verdict,
                             "note": note})

    for ct, members in crime_types.items():
        mask = np.isin(all_members, members)
        counts = by_type[:, :, mask].sum(axis=2)  # units x months
        w = harm.reindex(all_members).to_numpy(float)
        w_ct = np.where(mask & np.isfinite(w), w, 0.0)
        harm_units = by_type @ w_ct  # units x months
        harm_var_units = by_type @ (w_ct**2)
        has_harm = bool((w_ct > 0).any())
        noun = _noun(members)

        def tot(unit_ids, idx, arr=counts):
            return float(arr[np.asarray(unit_ids, int)][:, idx].sum()) if len(unit_ids) else 0.0

        rb, ra = tot([u_tall], before_idx), tot([u_tall], after_idx)
        db, da = tot([u_ball], before_idx), tot([u_ball], after_idx)
        cb, ca = tot(overall_control, before_idx), tot(overall_control, after_idx)
        county_b, county_a = tot([u_county], before_idx), tot([u_county], after_idx)
        raw = 100 * (ra / rb - 1) if rb else np.nan
        c_change = 100 * (ca / cb - 1) if cb else np.nan
        add(ct, "n_areas", "treated areas", n_areas, unit="areas")
        add(ct, "treated_before", f"recorded in the treated areas, {before.label}", rb, unit=noun)
        add(ct, "treated_after", f"recorded in the treated areas, {after.label}", ra, unit=noun)
        add(ct, "raw_change_pct", "raw change in the treated areas, no comparison (how the published figure is measured)",
            raw, unit="%", note="mixes any patrol effect with county-wide change, including improving crime recording")
        add(ct, "control_before", f"recorded in the control ({control_label}), {before.label}", cb, unit=noun)
        add(ct, "control_after", f"recorded in the control ({control_label}), {after.label}", ca, unit=noun)
        add(ct, "control_change_pct", f"change in the control ({control_label})", c_change, unit="%")
        add(ct, "county_change_pct", "change in the whole study area", 100 * (county_a / county_b - 1) if county_b else np.nan, unit="%")

        cdb, cda = tot(buffer_control, before_idx), tot(buffer_control, after_idx)
        # the areas' and the buffers' rate ratios in one call (row by row: the numbers of two calls)
        both = did_rate_ratio([int(rb), int(db)], [int(ra), int(da)], [int(cb), int(cdb)], [int(ca), int(cda)])
        did, bdid = both.iloc[0], both.iloc[1]
        add(ct, "did_pct_change", f"change in the treated areas relative to {control_label} (rate-ratio difference-in-differences)",
            did["pct_change_vs_control"], did["pct_low"], did["pct_high"], did["z"], did["p_value"], "%",
            classify_change(did["pct_change_vs_control"], did["pct_low"], did["pct_high"], rb + ra),
            "; ".join(filter(None, [did["note"], "Poisson interval: too narrow on real data (ignores extra variation "
                                    "between places and regression to the mean); the calibrated row is the headline"])))
        # calibrated headline: placebo-in-space (same estimator on pseudo-treated sets of equally busy untreated cells)
        pool_b, pool_a = counts[pool_units][:, before_idx].sum(axis=1), counts[pool_units][:, after_idx].sum(axis=1)
        live = (pool_b + pool_a) > 0
        hist = counts[:, history_idx].sum(axis=1) if history_ok else None
        pl = placebo_did(counts[:n_areas][:, before_idx].sum(axis=1), counts[:n_areas][:, after_idx].sum(axis=1),
                         cb, ca, pool_b[live], pool_a[live],
                         pool_history=hist[pool_units][live] if hist is not None else None,
                         treated_history=hist[:n_areas] if hist is not None else None,
                         pool_in_control=control != "matched", match_on_before=treated.selected_on_counts is not False,
                         n_draws=placebo_draws, seed=seed, treated_cluster=area_district, pool_cluster=pool_district[live])
        calibrated = dataclasses.asdict(pl)
        verdict = classify_change(pl.pct_change, pl.pct_low, pl.pct_high, rb + ra)
        add(ct, "did_calibrated_pct_change",
            f"change in the treated areas relative to {control_label}, calibrated on {pl.n_draws} placebo sets of equally "
            f"busy untreated {pool_cell_m:g} m cells (seed {pl.seed}): headline",
            pl.pct_change, pl.pct_low, pl.pct_high, np.nan, pl.p_value, "%", verdict,
            "; ".join(filter(None, [f"observed {100 * math.expm1(pl.observed_log_irr):+.1f}% minus the placebo median "
                                    f"{100 * math.expm1(pl.placebo_median_log_irr):+.1f}% (what equally busy places did "
                                    f"without patrols); {pl.n_distinct} distinct placebo sets, deviations widened "
                                    f"x{pl.centre_factor:.2f} for the median's own noise" + _cluster_text(pl), pl.note])))
        qp = quasi_poisson_did(counts[:n_areas][:, before_idx].sum(axis=1), counts[:n_areas][:, after_idx].sum(axis=1),
                               pool_b[live], pool_a[live])
        add(ct, "did_quasi_poisson_pct_change", "rate-ratio DiD against the untreated cells, quasi-Poisson interval "
            f"(dispersion {qp.dispersion:.2f}, sensitivity)", qp.pct_change, qp.pct_low, qp.pct_high, np.nan, qp.p_value,
            "%", classify_change(qp.pct_change, qp.pct_low, qp.pct_high, rb + ra), qp.note)
        donors = placebo_donors(counts[:n_areas][:, before_idx].sum(axis=1), pool_b[live], counts[pool_units][live],
                                treated_history=hist[:n_areas] if hist is not None else None, seed=seed,
                                pool_history=hist[pool_units][live] if hist is not None else None)
        sc = synthetic_control(counts[u_tall], donors, [m in pre_set for m in months], [m in after_set for m in months],
                               labels=[f"placebo set {i + 1}" for i in range(len(donors))])
        add(ct, "synthetic_control_pct_change", f"synthetic control from {sc.n_donors} placebo sets of equally busy untreated "
            f"{pool_cell_m:g} m cells (robustness; pre-fit RMSPE {sc.pre_rmspe:.1f} index points; p: placebo rank of post/pre RMSPE)",
            sc.pct_change, p=sc.p_value, unit="%", verdict="robustness only", note="; ".join(filter(None, [sc.note, "weights " + ", ".join(
                f"{k} {v:.2f}" for k, v in list(sc.weights.items())[:6])])))
        if np.isfinite(pl.pct_low):
            sentence = describe_change(pl.pct_change, pl.pct_low, pl.pct_high, what=_what(ct),
                                       comparison=control_label, n_crimes=rb + ra)
        else:
            sentence = (describe_change(did["pct_change_vs_control"], did["pct_low"], did["pct_high"], what=_what(ct),
                                        comparison=control_label, n_crimes=rb + ra)
                        + f" (Poisson interval only: {pl.note or 'the interval could not be calibrated'})")

        # panel over all months
        panel_res, nb_res, pre = _panel(counts, list(range(n_areas)), panel_controls, months, panel_months, after, notes)
        for measure, res, desc in (("panel_pct_change", panel_res, "Poisson panel (area and month effects, cluster-robust by area)"),
                                   ("panel_negbin_pct_change", nb_res, "negative-binomial panel (sensitivity)")):
            if isinstance(res, PanelEffect):
                add(ct, measure, f"{desc}, all {res.n_periods} months with data",
                    res.pct_change, res.pct_low, res.pct_high, res.z, res.p_value, "%",
                    _panel_verdict(dataclasses.asdict(res), rb + ra), res.note)
            else:
                add(ct, measure, desc, unit="%", verdict="not estimable", note=str(res))
        if isinstance(pre, PreTrendCheck):
            add(ct, "pre_trend_pct_per_month", f"treated vs control trend per month before the patrols ({pre.n_pre_periods} months)",
                pre.pct_per_month, pre.pct_low, pre.pct_high, np.nan, pre.p_value, "% per month", pre.verdict, pre.note)
        else:
            add(ct, "pre_trend_pct_per_month", "treated vs control trend per month before the patrols", unit="% per month",
                verdict="not estimable", note=str(pre))

        # displacement
        add(ct, "buffer_before", f"recorded in the {buffer_m:g} m buffers, {before.label}", db, unit=noun)
        add(ct, "buffer_after", f"recorded in the {buffer_m:g} m buffers, {after.label}", da, unit=noun)
        buffer_label = "their own matched untreated cells" if control == "matched" else control_label
        add(ct, "buffer_pct_vs_control", f"change in the buffers relative to {buffer_label}",
            bdid["pct_change_vs_control"], bdid["pct_low"], bdid["pct_high"], bdid["z"], bdid["p_value"], "%",
            classify_change(bdid["pct_change_vs_control"], bdid["pct_low"], bdid["pct_high"], db + da), bdid["note"])
        # calibrated buffer change: each treated area replaced by an equally busy untreated cell (before level, older
        # history and the level of its ring), and its buffer by that cell's ring of neighbouring untreated cells, so
        # the placebo buffers are chosen independently of the treated matching, are as clustered as the real ones
        # and sit round a place picked the same way; the interval and p are one rank test inverted
        ring = ring_counts(pool["row"].to_numpy(), pool["col"].to_numpy(), np.column_stack([pool_b, pool_a]))
        buf_b = counts[u_buf:u_buf + n_areas][:, before_idx].sum(axis=1)
        buf_a = counts[u_buf:u_buf + n_areas][:, after_idx].sum(axis=1)
        feat_t = np.column_stack([buf_b] + ([hist[:n_areas]] if hist is not None else []))
        feat_p = np.column_stack([ring[live, 0]] + ([hist[pool_units][live]] if hist is not None else []))
        bpl = placebo_did(counts[:n_areas][:, before_idx].sum(axis=1), counts[:n_areas][:, after_idx].sum(axis=1),
                          cb, ca, pool_b[live], pool_a[live], pool_history=feat_p, treated_history=feat_t,
                          outcome=(buf_b, buf_a), pool_outcome=(ring[live, 0], ring[live, 1]),
                          pool_in_control=control != "matched", match_on_before=treated.selected_on_counts is not False,
                          n_draws=placebo_draws, seed=seed, treated_cluster=area_district, pool_cluster=pool_district[live])
        add(ct, "buffer_calibrated_pct_vs_control",
            f"change in the buffers relative to {control_label}, calibrated on {bpl.n_draws} placebo rings round equally "
            f"busy untreated {pool_cell_m:g} m cells (seed {bpl.seed})", bpl.pct_change, bpl.pct_low, bpl.pct_high, np.nan,
            bpl.p_value, "%", classify_change(bpl.pct_change, bpl.pct_low, bpl.pct_high, db + da), bpl.note)
        if np.isfinite(bpl.pct_low):
            bdid = {"pct_change_vs_control": bpl.pct_change, "pct_low": bpl.pct_low, "pct_high": bpl.pct_high,
                    "p_value": bpl.p_value}
        q = wdq(int(rb), int(ra), int(db), int(da), int(cb), int(ca))
        add(ct, "wdq", "weighted displacement quotient (> 0 diffusion of benefit, < 0 displacement)", q.wdq,
            verdict=q.interpretation)
        t = total_net_effect(int(rb), int(ra), int(db), int(da), int(cb), int(ca))
        add(ct, "tne", "total net effect: crimes prevented in the areas and buffers together (no interval)",
            t.total_net_effect, unit=noun, verdict=t.interpretation)
        add(ct, "tne_treated", "crimes prevented in the treated areas (expected from the control's change minus recorded)",
            t.treated_effect, unit=noun)
        add(ct, "tne_buffer", "crimes prevented in the buffers (negative = more than expected: displacement)",
            t.buffer_effect, unit=noun)
        mr = [u_pool + c for cs in matched_r for c in cs]
        md = [u_pool + c for cs in matched_d for c in cs]
        wres = wdd(int(rb), int(ra), int(tot(mr, before_idx)), int(tot(mr, after_idx)), int(db), int(da),
                      int(tot(md, before_idx)), int(tot(md, after_idx)))
        zc = norm_ppf(0.5 + LEVEL / 2)
        add(ct, "wdd", "weighted displacement difference (negative = net reduction), against matched controls of similar size",
            wres.wdd, wres.low, wres.high, wres.z, wres.p_value, noun, wres.verdict, wres.note)
        add(ct, "wdd_displacement", "buffer change minus its matched control's change (positive = displacement)",
            wres.displacement_wdd, wres.displacement_wdd - zc * wres.displacement_se,
            wres.displacement_wdd + zc * wres.displacement_se, wres.displacement_z, wres.displacement_p, noun)
        # the WDD test's Poisson variance is not calibrated (on real no-effect designs it is "significant" far more
        # often than 5%): with a calibrated buffer interval it is descriptive only and the verdict rests on that interval
        buffer_calibrated = bool(np.isfinite(bpl.pct_low))
        disp_verdict, disp_sentence = describe_displacement(
            bdid, None if buffer_calibrated else wres, buffer_m=buffer_m,
            comparison=control_label if buffer_calibrated else buffer_label, n_buffer=db + da)
        if buffer_calibrated:
            for row in summary_rows[-2:]:  # the two WDD rows: keep the figures, say what they are worth
                row["note"] = "; ".join(filter(None, [row["note"], "Poisson variance, not calibrated: descriptive only, "
                                                      "the displacement verdict uses the calibrated buffer interval"]))
                row["verdict"] = row["verdict"] and "descriptive only"
        wording = _displacement_wording(disp_verdict)
        for row in summary_rows:
            if row["crime_type"] == ct and row["measure"] in ("wdq", "tne") and wording:
                row["verdict"] = f"{wording} ({row['measure'].upper()} = {row['estimate']:.3g}, no interval)"
        add(ct, "displacement_verdict", f"displacement to the {buffer_m:g} m buffers", verdict=disp_verdict, note=disp_sentence)

        # harm
        harm_res = None
        if has_harm:
            hb, ha = tot([u_tall], before_idx, harm_units), tot([u_tall], after_idx, harm_units)
            hcb, hca = tot(overall_control, before_idx, harm_units), tot(overall_control, after_idx, harm_units)
            vb, va = tot([u_tall], before_idx, harm_var_units), tot([u_tall], after_idx, harm_var_units)
            vcb, vca = tot(overall_control, before_idx, harm_var_units), tot(overall_control, after_idx, harm_var_units)
            harm_res = harm_did(hb, ha, hcb, hca, vb, va, vcb, vca)
            n_harm_crimes = tot([u_tall], before_idx + after_idx, by_type[:, :, mask & (w_ct > 0)].sum(axis=2))
            add(ct, "harm_before", "harm in the treated areas before (crime severity weights; ASB not weighted)", hb, unit="harm units")
            add(ct, "harm_after", "harm in the treated areas after", ha, unit="harm units")
            add(ct, "harm_pct_change", f"harm-weighted change relative to {control_label} (crimes only)",
                harm_res["pct"], harm_res["low"], harm_res["high"], harm_res["z"], harm_res["p"], "%",
                classify_change(harm_res["pct"], harm_res["low"], harm_res["high"], n_harm_crimes),
                f"harm table version {harm.attrs.get('version', '')}; Poisson-type interval, not calibrated: descriptive only")

        # regression to the mean
        sb = counts[:n_areas][:, before_idx].sum(axis=1)
        sa = counts[:n_areas][:, after_idx].sum(axis=1)
        pb = counts[pool_units][:, before_idx].sum(axis=1)
        pa = counts[pool_units][:, after_idx].sum(axis=1)
        rtm = None
        rtm_sentence = ""
        try:
            rtm = rtm_check(sb, sa, pb, pa)
        except ValidationError as exc:
            notes.append(f"{ct}: regression-to-the-mean check not possible ({exc.message})")
        if rtm is not None:
            rtm_verdict = rtm.verdict.split(":")[0]
            add(ct, "rtm_rate_ratio_pct", f"treated areas' change relative to equally high untreated {pool_cell_m:g} m cells ({rtm.method})",
                100 * (rtm.rate_ratio - 1), 100 * (rtm.rr_low - 1), 100 * (rtm.rr_high - 1), np.nan, rtm.p_value, "%",
                rtm_verdict, rtm.note)
            add(ct, "rtm_comparison_change_pct", "change in the equally high untreated cells (no patrols)",
                rtm.comparison_change_pct, unit="%")
            rtm_sentence = _describe_rtm(rtm, treated, ct)

        # cost
        cost = cost_harm = None
        prevented = None
        if np.isfinite(did["irr"]) and ra > 0:
            prevented = crimes_prevented_from_irr(ra, did["irr"], did["irr_low"], did["irr_high"])
            add(ct, "crimes_prevented", f"{noun} prevented in the treated areas, {after.label} (from the difference-in-differences)",
                prevented.crimes_prevented, prevented.crimes_prevented_low, prevented.crimes_prevented_high, unit=noun,
                note="conditional on the recorded after count; excludes any displacement to or diffusion into the buffers")
        if funding_period:
            add(ct, "funding_pro_rata", f"funding for the {len(after.months)}-month after period (annual funding pro-rated)",
                funding_period, unit="£")
            if prevented is not None:
                cost = cost_per_crime_prevented(prevented.crimes_prevented, prevented.crimes_prevented_low,
                                                   prevented.crimes_prevented_high, funding_period)
                add(ct, "cost_per_crime_prevented", f"cost per {_noun_one(members)} prevented", cost.cost_per_crime, cost.cost_low,
                    cost.cost_high, unit="£", verdict=cost.status, note=cost.statement)
            if harm_res is not None and np.isfinite(harm_res["irr"]):
                irr_h, lo_h, hi_h = harm_res["irr"], 1 + harm_res["low"] / 100, 1 + harm_res["high"] / 100
                ph = crimes_prevented_from_irr(ha, irr_h, lo_h, hi_h)
                add(ct, "harm_prevented", "harm prevented in the treated areas", ph.crimes_prevented,
                    ph.crimes_prevented_low, ph.crimes_prevented_high, unit="harm units")
                cost_harm = cost_per_crime_prevented(ph.crimes_prevented, ph.crimes_prevented_low,
                                                        ph.crimes_prevented_high, funding_period)
                add(ct, "cost_per_harm_unit_prevented", "cost per unit of harm prevented", cost_harm.cost_per_crime,
                    cost_harm.cost_low, cost_harm.cost_high, unit="£", verdict=cost_harm.status,
                    note=cost_harm.statement.replace("crime", "harm unit"))

        # per area
        area_frames.append(_area_table(
            ct, areas, buffers, counts, harm_units, harm_var_units, has_harm, before_idx, after_idx, area_controls,
            u_buf, matched_r_units, matched_d_units, buffer_area_controls, control, district_names,
        ))
        monthly_frames.append(_monthly(ct, counts, months, months_range, u_tall, u_ball, overall_control, u_county,
                                       before, after))
        findings.append({
            "crime_type": ct, "noun": noun, "members": list(members),
            "effect_sentence": sentence, "effect_verdict": verdict, "calibrated": calibrated, "n_areas": n_areas,
            "did": {k: float(did[k]) for k in ("pct_change_vs_control", "pct_low", "pct_high", "p_value", "irr")},
            "raw_change_pct": raw, "control_change_pct": c_change,
            "treated_before": rb, "treated_after": ra, "control_before": cb, "control_after": ca,
            "panel": dataclasses.asdict(panel_res) if isinstance(panel_res, PanelEffect) else None,
            "panel_sentence": _describe_panel(panel_res, _what(ct), control_label, rb + ra),
            "pre_trend": dataclasses.asdict(pre) if isinstance(pre, PreTrendCheck) else None,
            "pre_trend_sentence": _describe_pre_trend(pre, control_label) + (
                " Part of this is the selection itself: the areas were picked on the last of these months, at a peak."
                if treated.selected_on_counts and isinstance(pre, PreTrendCheck)
                and pre.verdict == "treated areas were already trending differently" and pre.pct_per_month > 0 else ""),
            "displacement_verdict": disp_verdict, "displacement_sentence": disp_sentence,
            "wdq": q.wdq, "wdq_text": (f"{wording}, by the calibrated buffer interval (WDQ = {q.wdq:.2f})" if wording
                                       else q.interpretation),
            "tne": t.total_net_effect,
            "tne_text": (f"total net effect {round(t.total_net_effect):+,} {noun} (expected from the control's change minus "
                         "recorded, areas and buffers together, no interval; not a count of crimes prevented unless a "
                         "reduction is credited)" if np.isfinite(t.total_net_effect) else t.interpretation),
            "wdd_text": (f"{wres.verdict} (Poisson variance, not calibrated: descriptive only)" if buffer_calibrated
                         else wres.verdict), "wdd_note": wres.note,
            "buffer_before": db, "buffer_after": da,
            "rtm_sentence": rtm_sentence,
            "rtm_verdict": rtm.verdict.split(":")[0] if rtm is not None else "",
            "harm": harm_res,
            "harm_sentence": (describe_change(harm_res["pct"], harm_res["low"], harm_res["high"],
                                              what=f"harm from {_what(ct)} (crimes only, severity-weighted)",
                                              comparison=control_label) + " (a Poisson-type interval, not calibrated on "
                              "placebo places like the headline: descriptive only)" if harm_res is not None
                              else "ASB has no harm weight; harm is reported for crimes only"),
            "cost_sentence": _describe_cost(cost, _noun_one(members), funding_gbp, funding_period, len(after.months)),
            "cost_harm_sentence": (_describe_cost(cost_harm, "unit of harm", funding_gbp, funding_period, len(after.months))
                                   if has_harm else "ASB has no harm weight, so there is no cost per unit of harm"),
            "cost_status": cost.status if cost is not None else "",
        })

    for f in findings:
        f["overall_verdict"], f["reasons"] = overall_verdict(f, treated)
        f["headline"] = _headline(f, n_areas, buffer_m, treated)
        add(f["crime_type"], "overall_verdict",
            "the difference-in-differences checked against regression to the mean, the pre-trend and the all-months panel",
            verdict=f["overall_verdict"], note="; ".join(f["reasons"]))
        if f["overall_verdict"] != "credible reduction":  # no crimes prevented or cost per crime unless credited
            for row in summary_rows:
                if row["crime_type"] == f["crime_type"] and row["measure"] in _CREDIT_ONLY:
                    row.update(estimate=np.nan, low=np.nan, high=np.nan, verdict="not reported",
                               note=f"nothing is credited to the patrols ({f['overall_verdict']})")
    summary = pd.DataFrame(summary_rows, columns=SUMMARY_COLUMNS)
    areas_table = pd.concat(area_frames, ignore_index=True)[AREA_TABLE_COLUMNS]
    monthly = pd.concat(monthly_frames, ignore_index=True)[MONTHLY_COLUMNS]
    geoms = _geometries(areas, buffers, pool, matched_r, matched_d, control, overall_control, u_dist, district_codes,
                        districts, excluded_geom)
    headline = findings[0]["headline"]
    meta = {
        "n_areas": n_areas,
        "source": treated.source,
        "source_description": treated.description,
        "illustrative": treated.illustrative,
        "selected_on_counts": treated.selected_on_counts,
        "selection_period": treated.selection_period.label if treated.selection_period else "",
        "before": before.label, "before_months": list(before.months),
        "after": after.label, "after_months": list(after.months),
        "panel_months": panel_months, "months_missing": [m for m in months_range if m not in set(months)],
        "months_present": months,
        "control": control, "control_label": control_label,
        "buffer_m": buffer_m, "pool_cell_m": pool_cell_m,
        "crime_types": {k: list(v) for k, v in crime_types.items()},
        "funding_gbp": funding_gbp, "funding_period": funding_period,
        "harm_version": harm.attrs.get("version", ""), "decision_table": [list(r) for r in DECISION_TABLE],
        "notes": notes,
        "treated_km2": float(shapely.area(treated_union) / 1e6),
        "buffer_km2": float(shapely.area(buffer_union) / 1e6),
    }
    area_verdicts = {ct: {k: int(v) for k, v in areas_table.loc[areas_table["crime_type"] == ct, "verdict"].value_counts().items()}
                     for ct in crime_types}
    return EvaluationResult(summary, areas_table, monthly, geoms, districts, findings, headline, meta, auto=auto,
                            area_verdicts=area_verdicts)
