"""The evaluation's output tables (a contract: the CSV columns) and the result they make up.

:class:`EvaluationResult` holds only plain data: the tables written as CSV and
GeoPackage, the findings per crime type (numbers and sentences), the
headline, the metadata the report shows, and the automatic choices made.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from hotspots._errors import ValidationError
from hotspots.evaluation.did import did_rate_ratio, harm_did
from hotspots.evaluation.displacement import total_net_effect, wdd, wdq
from hotspots.evaluation.panel import panel_effect, panel_effects_and_pre_trend, pre_trend_check
from hotspots.evaluation.verdict import classify_change
from hotspots.geo.aggregate import Period
from hotspots.schema import BNG

__all__ = ["AREA_TABLE_COLUMNS", "GEOMETRY_COLUMNS", "MONTHLY_COLUMNS", "SUMMARY_COLUMNS", "EvaluationResult"]

# --------------------------------------------------------------------------- output columns (a contract)
SUMMARY_COLUMNS = [
    "crime_type", "measure", "description", "estimate", "low", "high", "z", "p_value", "unit", "verdict", "note",
]
AREA_TABLE_COLUMNS = [
    "area_code", "area_name", "district_code", "district_name", "area_km2", "buffer_km2", "crime_type",
    "treated_before", "treated_after", "raw_change_pct",
    "control", "control_before", "control_after", "control_change_pct",
    "irr", "irr_low", "irr_high", "pct_change_vs_control", "pct_low", "pct_high", "p_value", "verdict",
    "buffer_before", "buffer_after", "buffer_change_pct", "buffer_pct_vs_control", "buffer_pct_low", "buffer_pct_high",
    "wdq", "tne", "tne_treated", "tne_buffer",
    "wdd", "wdd_z", "wdd_p", "displacement_wdd", "displacement_z", "displacement_p",
    "harm_before", "harm_after", "harm_pct_vs_control", "harm_pct_low", "harm_pct_high",
    "note",
]
MONTHLY_COLUMNS = [
    "crime_type", "month", "in_data", "period", "treated", "buffer", "control", "county",
    "treated_index", "buffer_index", "control_index",
]
GEOMETRY_COLUMNS = ["role", "area_code", "area_name", "district_code", "area_km2", "selection_count", "geometry"]


@dataclasses.dataclass
class EvaluationResult:
    """Everything the report renders; the tables are the CSV outputs (plain data only)."""

    summary: pd.DataFrame
    areas_table: pd.DataFrame
    monthly: pd.DataFrame
    geometries: gpd.GeoDataFrame
    districts: gpd.GeoDataFrame
    findings: list[dict[str, Any]]
    headline: str
    meta: dict[str, Any]
    #: automatic choices made by the evaluation: name -> (value, reason), in the order made
    auto: dict[str, tuple[Any, str]] = dataclasses.field(default_factory=dict)
    #: per crime type: how many areas got each verdict (``areas_table["verdict"]`` counted)
    area_verdicts: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)


def _panel(counts: np.ndarray, treated_units: list[int], control_units: list[int], months: list[str],
           panel_months: list[str], after: Period, notes: list[str]):
    """Poisson (main) and negative-binomial (sensitivity) panels and the pre-trend check."""
    idx = [months.index(m) for m in panel_months]
    units = list(treated_units) + list(control_units)
    frame = pd.DataFrame({
        "area": np.repeat([f"u{u}" for u in units], len(idx)),
        "month": np.tile(panel_months, len(units)),
        "count": counts[np.asarray(units)][:, idx].ravel().astype(np.int64),
        "treated": np.repeat([True] * len(treated_units) + [False] * len(control_units), len(idx)),
    })
    frame["post"] = frame["month"] >= after.months[0]
    # what panel_effect(frame, family=...) for both families and pre_trend_check(frame) give, the panel checked once
    # and the Poisson fit (which the negative binomial's alpha comes from) made once
    shared = panel_effects_and_pre_trend(frame, families=("poisson", "negbin"))
    calls = [lambda: panel_effect(frame, family="poisson"), lambda: panel_effect(frame, family="negbin"),
             lambda: pre_trend_check(frame)]
    out = []
    for k, call in enumerate(calls):
        try:
            if shared is None:
                out.append(call())
            elif isinstance(shared[k], BaseException):
                raise shared[k]
            else:
                out.append(shared[k])
        except (ValidationError, ValueError, np.linalg.LinAlgError) as exc:
            out.append(f"not estimable: {getattr(exc, 'message', exc)}")
    return out[0], out[1], out[2]


def _area_table(ct, areas, buffers, counts, harm_units, harm_var_units, has_harm, before_idx, after_idx, area_controls,
                u_buf, matched_r, matched_d, buffer_area_controls, control, district_names) -> pd.DataFrame:
    n = len(areas)

    def tot(unit_lists, idx, arr=counts):
        done: dict[tuple, float] = {}  # many areas share one control (the rest of the county): sum it once
        out = np.empty(len(unit_lists))
        for k, u in enumerate(unit_lists):
            key = tuple(u)
            if key not in done:
                done[key] = float(arr[np.asarray(u, int)][:, idx].sum()) if len(u) else 0.0
            out[k] = done[key]
        return out

    own = [[i] for i in range(n)]
    buf = [[u_buf + i] for i in range(n)]
    rb, ra = tot(own, before_idx), tot(own, after_idx)
    cb, ca = tot(area_controls, before_idx), tot(area_controls, after_idx)
    db, da = tot(buf, before_idx), tot(buf, after_idx)
    bcb, bca = tot(buffer_area_controls, before_idx), tot(buffer_area_controls, after_idx)
    # the areas' and the buffers' rate ratios in one call (row by row: the numbers of two calls)
    both = did_rate_ratio(np.concatenate([rb, db]).astype(int), np.concatenate([ra, da]).astype(int),
                          np.concatenate([cb, bcb]).astype(int), np.concatenate([ca, bca]).astype(int))
    did, bdid = both.iloc[:n], both.iloc[n:]
    mrb, mra = tot(matched_r, before_idx), tot(matched_r, after_idx)
    mdb, mda = tot(matched_d, before_idx), tot(matched_d, after_idx)
    if has_harm:  # every area at once (one row per area below)
        harm_b, harm_a = tot(own, before_idx, harm_units), tot(own, after_idx, harm_units)
        harm_cb, harm_ca = tot(area_controls, before_idx, harm_units), tot(area_controls, after_idx, harm_units)
        var_b, var_a = tot(own, before_idx, harm_var_units), tot(own, after_idx, harm_var_units)
        var_cb, var_ca = tot(area_controls, before_idx, harm_var_units), tot(area_controls, after_idx, harm_var_units)
    col = {c: areas[c].to_numpy() for c in ("area_code", "area_name", "district_code", "area_km2")}
    buffer_km2 = buffers["area_km2"].to_numpy()
    did_col = {c: did[c].to_numpy() for c in did.columns}
    bdid_col = {c: bdid[c].to_numpy() for c in ("pct_change_vs_control", "pct_low", "pct_high")}
    # the district names as a dict (a Series .get per area was a tenth of this table); a Series as before if its
    # labels repeat (.get then gives a Series)
    names = district_names.to_dict() if district_names.index.is_unique else district_names
    rows = []
    for i in range(n):
        q = wdq(int(rb[i]), int(ra[i]), int(db[i]), int(da[i]), int(cb[i]), int(ca[i]))
        t = total_net_effect(int(rb[i]), int(ra[i]), int(db[i]), int(da[i]), int(cb[i]), int(ca[i]))
        w = wdd(int(rb[i]), int(ra[i]), int(mrb[i]), int(mra[i]), int(db[i]), int(da[i]), int(mdb[i]), int(mda[i]))
        h = {"pct": np.nan, "low": np.nan, "high": np.nan}
        hb = ha = np.nan
        if has_harm:
            hb, ha = harm_b[i], harm_a[i]
            h = harm_did(hb, ha, harm_cb[i], harm_ca[i], var_b[i], var_a[i], var_cb[i], var_ca[i])
        d = {c: v[i] for c, v in did_col.items()}
        rows.append({
            "area_code": col["area_code"][i], "area_name": col["area_name"][i],
            "district_code": col["district_code"][i],
            "district_name": names.get(col["district_code"][i], ""),
            "area_km2": float(col["area_km2"][i]), "buffer_km2": float(buffer_km2[i]),
            "crime_type": ct,
            "treated_before": int(rb[i]), "treated_after": int(ra[i]),
            "raw_change_pct": 100 * (ra[i] / rb[i] - 1) if rb[i] else np.nan,
            "control": control, "control_before": int(cb[i]), "control_after": int(ca[i]),
            "control_change_pct": 100 * (ca[i] / cb[i] - 1) if cb[i] else np.nan,
            "irr": d["irr"], "irr_low": d["irr_low"], "irr_high": d["irr_high"],
            "pct_change_vs_control": d["pct_change_vs_control"], "pct_low": d["pct_low"], "pct_high": d["pct_high"],
            "p_value": d["p_value"],
            "verdict": classify_change(d["pct_change_vs_control"], d["pct_low"], d["pct_high"], rb[i] + ra[i]),
            "buffer_before": int(db[i]), "buffer_after": int(da[i]),
            "buffer_change_pct": 100 * (da[i] / db[i] - 1) if db[i] else np.nan,
            "buffer_pct_vs_control": bdid_col["pct_change_vs_control"][i], "buffer_pct_low": bdid_col["pct_low"][i],
            "buffer_pct_high": bdid_col["pct_high"][i],
            "wdq": q.wdq, "tne": t.total_net_effect, "tne_treated": t.treated_effect, "tne_buffer": t.buffer_effect,
            "wdd": w.wdd, "wdd_z": w.z, "wdd_p": w.p_value, "displacement_wdd": w.displacement_wdd,
            "displacement_z": w.displacement_z, "displacement_p": w.displacement_p,
            "harm_before": hb, "harm_after": ha, "harm_pct_vs_control": h["pct"], "harm_pct_low": h["low"],
            "harm_pct_high": h["high"],
            "note": "; ".join(filter(None, [d["note"], w.note])),
        })
    return pd.DataFrame(rows, columns=AREA_TABLE_COLUMNS)


def _monthly(ct, counts, months, months_range, u_tall, u_ball, control_units, u_county, before: Period, after: Period) -> pd.DataFrame:
    pos = {m: i for i, m in enumerate(months)}
    series = {
        "treated": counts[u_tall], "buffer": counts[u_ball],
        "control": counts[np.asarray(control_units)].sum(axis=0), "county": counts[u_county],
    }
    rows = []
    for m in months_range:
        in_data = m in pos
        if m in before.months:
            period = "before"
        elif m in after.months:
            period = "after"
        elif not in_data:
            period = "no data"
        elif m < before.months[0]:
            period = "history"
        elif m > after.months[-1]:
            period = "after (trend)"
        elif before.months[-1] < m < after.months[0]:
            period = "transition"
        else:
            period = "other"
        row = {"crime_type": ct, "month": m, "in_data": in_data, "period": period}
        for k, s in series.items():
            row[k] = float(s[pos[m]]) if in_data else np.nan
        rows.append(row)
    out = pd.DataFrame(rows)
    before_rows = out["period"] == "before"
    for k in ("treated", "buffer", "control"):
        base = out.loc[before_rows, k].mean()
        out[f"{k}_index"] = 100 * out[k] / base if base and np.isfinite(base) else np.nan
    return out


def _clip_to(geoms: np.ndarray, study_geom: Any) -> tuple[np.ndarray | None, np.ndarray]:
    """The areas clipped to the study area and the share of each lost; ``(None, zeros)`` when every area lies
    inside it, away from its edge (valid geometries), where the intersection (which costs far more than the
    test) would give each area back whole."""
    shapely.prepare(study_geom)
    if (shapely.is_valid(study_geom) and shapely.is_valid(geoms).all()  # (else as before: GEOS decides)
            and shapely.contains_properly(study_geom, geoms).all()):
        return None, np.zeros(len(geoms))
    clipped = shapely.intersection(geoms, study_geom)
    return clipped, 1 - shapely.area(clipped) / np.maximum(shapely.area(geoms), 1e-9)


def _geometries(areas, buffers, pool, matched_r, matched_d, control, overall_control, u_dist, district_codes,
                districts, excluded_geom) -> gpd.GeoDataFrame:
    frames = []
    t = areas[["area_code", "area_name", "district_code", "area_km2"]].copy()
    t["selection_count"] = areas["selection_count"] if "selection_count" in areas else np.nan
    t["role"] = "treated"
    frames.append(gpd.GeoDataFrame(t, geometry=areas.geometry.values, crs=BNG))
    b = buffers[["area_code", "area_name", "district_code", "area_km2"]].copy()
    b["selection_count"], b["role"] = np.nan, "buffer"
    frames.append(gpd.GeoDataFrame(b, geometry=buffers.geometry.values, crs=BNG))
    area_codes = areas["area_code"].to_numpy()  # (the column once, not a frame lookup per cell)
    for role, sets in (("matched_control", matched_r), ("buffer_matched_control", matched_d)):
        rows = [(i, c) for i, cs in enumerate(sets) for c in cs]
        if rows:
            idx = np.array([c for _, c in rows])
            g = gpd.GeoDataFrame({
                "area_code": pool["cell_id"].to_numpy()[idx],
                "area_name": [f"control for {area_codes[i]}" for i, _ in rows],
                "district_code": "", "area_km2": pool["cell_area_km2"].to_numpy()[idx], "selection_count": np.nan,
                "role": role,
            }, geometry=pool.geometry.values[idx], crs=BNG)
            frames.append(g)
    if control in ("rest_of_county", "rest_of_district"):
        codes = [district_codes[u - u_dist] for u in overall_control]
        d = districts[districts["area_code"].isin(codes)]
        geom = shapely.difference(d.geometry.values, excluded_geom)
        frames.append(gpd.GeoDataFrame({
            "area_code": d["area_code"].to_numpy(), "area_name": d["area_name"].to_numpy(),
            "district_code": d["area_code"].to_numpy(), "area_km2": shapely.area(geom) / 1e6, "selection_count": np.nan,
            "role": "control",
        }, geometry=geom, crs=BNG))
    out = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(out[GEOMETRY_COLUMNS], geometry="geometry", crs=BNG)
