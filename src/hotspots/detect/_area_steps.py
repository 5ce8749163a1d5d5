"""The steps of :func:`hotspots.detect.analysis.analyse_area` for one selection: KDE, clusters, emerging, stability."""

from __future__ import annotations

import functools
import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from hotspots.concentration import concentration
from hotspots.detect._points import PointCodes, _location_summaries, _lonlat
from hotspots.detect.clusters import _cluster_labels, _cluster_parts
from hotspots.detect.columns import CLUSTER_COLUMNS, EMERGING_COLUMNS
from hotspots.detect.emerging import _emerging_columns, emerging_hotspot_classes
from hotspots.detect.gistar import GI_MIN_COUNT
from hotspots.detect.gistar_st import (
    EMERGING_TIME_STEP,
    SpaceTimeCube,
    _gi_star_space_time,
    _Keyed,
)
from hotspots.detect.options import (
    CLUSTER_EPS_M,
    EMERGING_ALPHA,
    EMERGING_FINAL_SHARE,
    STABILITY_TOP_SHARE,
    HotspotConfig,
)
from hotspots.detect.results import Inputs, StudyArea
from hotspots.detect.stability import top_k_stability
from hotspots.schema import BNG


#: pandas' text dtype (pyarrow-backed ``str``), the dtype text columns get from plain strings
_TEXT = pd.Series([""]).dtype


def _text(value: str, n: int):
    """A text column of ``n`` copies of ``value`` (as a column assigned a string gets, built directly in Arrow).

    The Arrow array is laid out from its buffers (offsets ``0, b, 2b, ...`` into ``n`` copies of the UTF-8
    bytes), in the ``large_string`` type the text dtype holds, and wrapped without ``pd.array``'s conversion:
    the same column as :func:`_text_reference` (tested), at a fraction of the cost.
    """
    import pyarrow as pa

    data = value.encode("utf-8")
    offsets = np.arange(n + 1, dtype=np.int64) * len(data)
    array = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data * n))
    return pd.arrays.ArrowStringArray(array, dtype=_TEXT)


def _text_reference(value: str, n: int):
    """:func:`_text` the plain way: ``n`` copies taken from a one-value Arrow array, converted by ``pd.array``."""
    import pyarrow as pa

    return pd.array(pa.array([value]).take(pa.array(np.zeros(n, dtype=np.int8))), dtype=_TEXT)


def _text_of_labels(values: np.ndarray, common: str):
    """``pd.array(values, dtype=_TEXT)`` for a numpy text array of a few labels, mostly ``common``.

    The labels are taken in Arrow from their codes (converting every value is the slow part); other input
    goes the reference way.
    """
    import pyarrow as pa

    values = np.asarray(values)
    if values.dtype.kind != "U" or values.ndim != 1:
        return pd.array(values, dtype=_TEXT)
    rows = np.flatnonzero(values != common)
    labels, inverse = np.unique(values[rows], return_inverse=True)
    codes = np.zeros(len(values), dtype=np.int32)
    codes[rows] = inverse.reshape(-1) + 1
    # already the large_string type the text dtype holds: wrapped without pd.array's conversion
    taken = pa.array([common] + labels.tolist(), type=pa.large_string()).take(pa.array(codes))
    return pd.arrays.ArrowStringArray(taken, dtype=_TEXT)


def _in_order(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``table[columns]``; the table itself when its columns are already those, in that order."""
    return table if table.columns.tolist() == list(columns) else table[columns]


def _rows_of(column: pd.Series, rows: np.ndarray):
    """``column.to_numpy()[rows]`` as a table column gets it: taken in Arrow from a text column (no conversion of
    the whole column); any other column the reference way."""
    if column.dtype == _TEXT and len(rows):  # (no rows: an empty object array, whose column is not text)
        return column.array.take(rows)
    return column.to_numpy()[rows]


def _bincount(idx: np.ndarray, n: int, weights=None) -> np.ndarray:
    if weights is None:
        return np.bincount(idx, minlength=n).astype(float)
    return np.bincount(idx, weights=weights, minlength=n)





def _cluster_params(n_points: int, area: StudyArea, eps_m: float) -> int:
    """Crimes needed within ``eps_m`` of a core location: 5 times what a uniform spread would put there, >= 20."""
    expected = n_points / area.geometry.area * math.pi * eps_m**2
    return int(max(20, math.ceil(5 * expected)))


def _clusters(codes: PointCodes, rows: np.ndarray, area: StudyArea, sel: str, cfg: HotspotConfig,
              eps_m: float = CLUSTER_EPS_M):
    """DBSCAN/HDBSCAN on unique snapped locations weighted by count; a summary row and a shape per cluster.

    ``rows``: the points (positions in ``codes``) of the selection in the analysis period.
    """
    def none():
        table, shapes = _no_clusters()
        return table.copy(), shapes.copy()

    if len(rows) < 2:
        return none()
    x, y = codes.x[rows], codes.y[rows]
    min_crimes = _cluster_params(len(rows), area, eps_m)
    # the unique snapped locations and their counts, as cluster_locations would group them (sorted by x, then y)
    order = np.lexsort((y, x))
    xs, ys = x[order], y[order]
    first = np.r_[True, (xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1])]
    location_of = np.empty(len(rows), dtype=np.int64)
    location_of[order] = np.cumsum(first) - 1
    # cluster_locations' clustering and summary, as arrays (its tables are not needed here)
    xy, loc_counts, location_label, _ = _cluster_labels(
        xs[first], ys[first], np.bincount(location_of).astype(float), cfg.cluster_method, eps_m, min_crimes, None,
        frame=False)
    if not (location_label >= 0).any():
        return none()
    clusters = _cluster_parts(xy, loc_counts, location_label, float(eps_m))
    n_crimes = clusters["n_crimes"]
    if np.all(n_crimes == np.round(n_crimes)):  # whole numbers as integers (cluster_locations' _maybe_int)
        n_crimes = n_crimes.astype(np.int64)
    member = location_label[location_of]
    _, labels = _location_summaries(member, codes, rows, len(n_crimes))
    lon, lat = _lonlat(clusters["x_centroid"], clusters["y_centroid"])
    k = len(n_crimes)
    table = pd.DataFrame({
        "study_area_type": _text(area.area_type, k), "study_area_code": _text(area.code, k),
        "study_area_name": _text(area.name, k), "selection": _text(sel, k), "method": _text(cfg.cluster_method, k),
        "cluster_id": clusters["cluster"].astype(int),
        "n_locations": clusters["n_locations"], "count": n_crimes,
        "x": np.round(clusters["x_centroid"], 1), "y": np.round(clusters["y_centroid"], 1),
        "lon": lon, "lat": lat, "area_km2": clusters["area_km2"],
        "main_location": [labels[int(c)] for c in clusters["cluster"]],
        "eps_m": eps_m, "min_count": min_crimes,
    })
    shapes = _shapes_frame({"cluster_id": table["cluster_id"].to_numpy(), "count": table["count"].to_numpy(),
                            "n_locations": table["n_locations"].to_numpy(), "label": table["main_location"].to_numpy()},
                           clusters["geometry"])
    return _in_order(table, CLUSTER_COLUMNS), shapes


def _shapes_frame(columns: dict, polygons: np.ndarray) -> gpd.GeoDataFrame:
    """``gpd.GeoDataFrame(columns, geometry=from_shapely(polygons, crs=BNG), crs=BNG)``, the same frame.

    Built as a DataFrame with its geometry column, then marked as the geometry (setting the geometry
    of a new GeoDataFrame checks and copies more, and cost more than the rest of the clusters' table).
    """
    frame = pd.DataFrame({**columns, "geometry": gpd.array.from_shapely(polygons, crs=BNG)})
    return gpd.GeoDataFrame(frame, geometry="geometry")


def _shapes_frame_reference(columns: dict, polygons: np.ndarray) -> gpd.GeoDataFrame:
    """What :func:`_shapes_frame` replaces (kept for the tests)."""
    return gpd.GeoDataFrame(columns, geometry=gpd.array.from_shapely(polygons, crs=BNG), crs=BNG)


def _no_clusters_reference():
    """The empty cluster table and shapes (what :func:`_clusters` returns without clusters)."""
    return (pd.DataFrame(columns=CLUSTER_COLUMNS),
            gpd.GeoDataFrame({"cluster_id": [], "count": [], "n_locations": [], "label": []},
                             geometry=gpd.GeoSeries([], crs=BNG), crs=BNG))


@functools.lru_cache(maxsize=1)
def _no_clusters():
    """:func:`_no_clusters_reference`, built once (building the empty tables, their CRS above all, cost more
    than copying them); callers get copies."""
    return _no_clusters_reference()


def _emerging(inputs: Inputs, grid, weights, counts: np.ndarray, area: StudyArea, sel: str,
              shared: dict | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """Space-time Gi* per cell and month (NaN for months missing from the data, never zeros), then the classes.

    The neighbourhood of a (cell, month) bin is the cell and its queen
    neighbours in that month and the previous ``EMERGING_TIME_STEP`` month(s)
    (:func:`hotspots.detect.gistar_st.gi_star_space_time`, as ArcGIS's
    Emerging Hot Spot Analysis), with the exact-binomial guard and at least
    3 crimes in a hot bin's neighbourhood; BH across the cube.

    ``counts``: (cells, months) of the selection, months as in ``inputs.months_all``.  Returns every
    cell's class (for the grid cells) and the table of the cells with a pattern (``emerging.csv``; the
    ~90% with "no pattern detected" are in the grid cells only).  ``shared``: a dict kept across the
    selections of one study area (the space-time cube's weights are built once).
    """
    n = len(grid)
    months = list(inputs.months_all)
    present = set(inputs.months_present)
    observed = [j for j, m in enumerate(months) if m in present]
    z = q = np.empty((n, 0))  # (cells, observed months): the other months are missing (NaN)
    shared = {} if shared is None else shared
    if observed:
        cube_months = [months[j] for j in observed]
        if "cube" not in shared:
            shared["cube"] = SpaceTimeCube(weights, cube_months, EMERGING_TIME_STEP)
        found = _gi_star_space_time(np.ascontiguousarray(counts.T[observed]), weights, cube_months,
                                    EMERGING_TIME_STEP, "auto", GI_MIN_COUNT, shared["cube"], keyed=True)
        if isinstance(found, _Keyed):
            em = _emerging_classes_keyed(found, months, observed)
        else:
            z, q = found[0].T, found[2].T
            em = _emerging_classes(z, q, months, observed)
    else:
        em = _emerging_classes(z, q, months, observed)
    missing = len(months) - len(present & set(months))
    pattern = np.asarray(em["pattern"])
    keep = np.flatnonzero(pattern != "no pattern detected")
    k = len(keep)
    table = pd.DataFrame({
        "study_area_type": _text(area.area_type, k), "study_area_code": _text(area.code, k),
        "study_area_name": _text(area.name, k), "selection": _text(sel, k),
        "cell_id": _rows_of(_cell_ids(grid, shared), keep), "emerging_class": pattern[keep],
        "n_observed_months": np.asarray(em["n_observed_months"])[keep], "n_missing_months": missing,
        "n_sig_hot": np.asarray(em["n_sig_hot"])[keep], "n_sig_cold": np.asarray(em["n_sig_cold"])[keep],
        "final_month": np.asarray(em["final_month"])[keep], "mk_z": np.asarray(em["mk_z"])[keep],
        "mk_p": np.asarray(em["mk_p"])[keep],
    })
    table = _in_order(table, EMERGING_COLUMNS)
    return pattern, table


def _cell_ids(grid, shared: dict) -> pd.Series:
    """``grid["cell_id"]``, taken from the grid once per study area (kept in ``shared`` with its grid)."""
    kept = shared.get("emerging_cell_id")
    if kept is None or kept[0] is not grid:
        kept = shared["emerging_cell_id"] = (grid, grid["cell_id"])
    return kept[1]


def _emerging_classes(z: np.ndarray, q: np.ndarray, months: list[str], columns=None) -> dict[str, np.ndarray]:
    """:func:`hotspots.emerging_hotspot_classes`, with the trend test only where it can matter.

    Every pattern needs a significant final month, or significant months 90%
    of the time; any other cell has "no pattern detected" and nothing about
    it but its class is written.  Only the possible cells (a few percent)
    are classified by detect; for the others the counts are taken as detect
    defines them and ``mk_z``/``mk_p`` are left NaN (the Mann-Kendall test
    on hundreds of thousands of insignificant series was most of the cost).

    ``z``, ``q``: (cells, months) for the months at positions ``columns`` of
    ``months`` (default: every month); the other months are missing (NaN).
    """
    n = len(z)
    columns = np.arange(len(months)) if columns is None else np.asarray(columns, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        observed = np.isfinite(z) & np.isfinite(q)
        significant = observed & (q < EMERGING_ALPHA)
        hot, cold = significant & (z > 0), significant & (z < 0)
    n_observed = observed.sum(axis=1)
    if z.shape[1]:
        last = z.shape[1] - 1 - np.argmax(observed[:, ::-1], axis=1)  # cells never observed: no final month
        final, final_significant = columns[last], significant[np.arange(n), last]
    else:
        final, final_significant = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    mostly = significant.sum(axis=1) >= EMERGING_FINAL_SHARE * n_observed - 1e-9  # detect's tolerance
    possible = (n_observed > 0) & (final_significant | mostly)
    labels = np.array([str(m)[:7] for m in months])
    out = {
        "pattern": np.full(n, "no pattern detected", dtype=object), "mk_z": np.full(n, np.nan),
        "mk_p": np.full(n, np.nan), "n_sig_hot": hot.sum(axis=1), "n_sig_cold": cold.sum(axis=1),
        "n_observed_months": n_observed,
        "final_month": np.where(n_observed > 0, labels[final] if len(labels) else "", ""),
    }
    rows = np.flatnonzero(possible)
    z_rows, q_rows = np.full((rows.size, len(months)), np.nan), np.full((rows.size, len(months)), np.nan)
    z_rows[:, columns], q_rows[:, columns] = z[rows], q[rows]
    em = emerging_hotspot_classes(z_rows, q_rows, months=months, alpha=EMERGING_ALPHA,
                                  final_share=EMERGING_FINAL_SHARE)
    for column, values in out.items():
        values[rows] = em[column].to_numpy()
    out["pattern"] = out["pattern"].astype(str)
    return out


def _emerging_classes_keyed(found: _Keyed, months: list[str], columns) -> dict[str, np.ndarray]:
    """:func:`_emerging_classes` of ``z = found.z[found.inverse].T`` and ``q`` alike, the same arrays.

    A bin's state (missing, not significant, hot, cold, significant with z = 0) is a function of its key,
    so the counts per cell are taken from one small integer cube instead of the z and q cubes; only the
    cells that can have a pattern get their z and q series (gathered from the tables).
    """
    inverse = found.inverse  # (observed months, cells)
    t, n = inverse.shape
    columns = np.asarray(columns, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        observed = np.isfinite(found.z) & np.isfinite(found.q)
        significant = observed & (found.q < EMERGING_ALPHA)
        state = np.where(significant, np.where(found.z > 0, 2, np.where(found.z < 0, 3, 4)),
                         np.where(observed, 1, 0)).astype(np.int8)
    cube = state[inverse]
    if observed.all():
        n_observed = np.full(n, t, dtype=np.int64)
        last = np.full(n, t - 1, dtype=np.int64)
    else:
        seen = cube != 0
        n_observed = seen.sum(axis=0)
        last = t - 1 - np.argmax(seen[::-1], axis=0)
    n_hot = (cube == 2).sum(axis=0)
    n_cold = (cube == 3).sum(axis=0)
    n_significant = n_hot + n_cold + (cube == 4).sum(axis=0) if (state == 4).any() else n_hot + n_cold
    if t:
        final, final_significant = columns[last], cube[last, np.arange(n)] >= 2
    else:
        final, final_significant = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    mostly = n_significant >= EMERGING_FINAL_SHARE * n_observed - 1e-9  # detect's tolerance
    possible = (n_observed > 0) & (final_significant | mostly)
    labels = np.array([str(m)[:7] for m in months])
    out = {
        "pattern": None, "mk_z": np.full(n, np.nan),
        "mk_p": np.full(n, np.nan), "n_sig_hot": n_hot, "n_sig_cold": n_cold,
        "n_observed_months": n_observed,
        "final_month": np.where(n_observed > 0, labels[final] if len(labels) else "", ""),
    }
    rows = np.flatnonzero(possible)
    keys = inverse[:, rows].T
    z_rows, q_rows = np.full((rows.size, len(months)), np.nan), np.full((rows.size, len(months)), np.nan)
    z_rows[:, columns], q_rows[:, columns] = found.z[keys], found.q[keys]
    em = _emerging_columns(z_rows, q_rows, months=months, alpha=EMERGING_ALPHA, final_share=EMERGING_FINAL_SHARE)
    for column, values in out.items():
        if column != "pattern":
            values[rows] = em[column]  # (the arrays of emerging_hotspot_classes' table)
    # the patterns as text (what an object array of every cell's pattern converted with astype(str) is: text as
    # wide as the longest), made as text at once: the few possible cells' patterns converted, put in place
    found_patterns = np.asarray(em["pattern"], dtype=object).astype(str)
    width = max(len("no pattern detected"), found_patterns.dtype.itemsize // np.dtype("<U1").itemsize)
    out["pattern"] = np.full(n, "no pattern detected", dtype=f"<U{width}")
    out["pattern"][rows] = found_patterns
    return out


def _stability(inputs: Inputs, grid, cell, sel_rows, current_counts: np.ndarray, area: StudyArea, sel: str) -> dict:
    """Top-5% cells in the comparison months vs the matched analysis months; concentration in the analysis period.

    ``sel_rows``: the positions (ascending) of the selection's points inside the study area.
    """
    n = len(grid)
    codes = inputs.codes
    row: dict[str, Any] = {"study_area_type": area.area_type, "study_area_code": area.code, "study_area_name": area.name,
                           "selection": sel, "n_cells": n, "cell_size_m": area.cell_size}
    for label, value in zip(("1pct", "5pct", "10pct"), _shares_in_top(current_counts, (0.01, 0.05, 0.10))):
        row[f"share_top_{label}"] = value
    row["count_current"] = int(current_counts.sum())
    a, b = inputs.comparison, inputs.change_current
    if not a or not b:
        row.update({"period_a": "", "period_b": "", "note": "no seasonally matched comparison months in the data"})
        return row
    # the same points in the same order as the masks in_sel & in_months(...) pick, without a pass over every point
    ca = _bincount(cell[sel_rows[codes.in_months(a)[sel_rows]]], n)
    cb = _bincount(cell[sel_rows[codes.in_months(b)[sel_rows]]], n)
    row.update({"period_a": f"{a[0]}..{a[-1]}", "period_b": f"{b[0]}..{b[-1]}", "count_a": int(ca.sum()),
                "count_b": int(cb.sum())})
    if ca.sum() == 0 or cb.sum() == 0:
        row["note"] = "no crimes in one of the periods"
        return row
    st = top_k_stability(ca, cb, top_share=STABILITY_TOP_SHARE, cell_area=grid["cell_area_km2"].to_numpy())
    row.update({"top_share": st["top_share"], "top_k": st["k"], "jaccard": st["jaccard"],
                "spearman_rho": st["spearman_rho"], "spearman_p": st["spearman_p"], "hit_rate_a": st["hit_rate_t1"],
                "hit_rate_b": st["hit_rate_t2"], "pai_a": st["pai_t1"], "pai_b": st["pai_t2"], "rri": st["rri"],
                "note": ""})
    return row


def _share_in_top(counts: np.ndarray, share: float) -> float:
    """Share of all crimes in the busiest ``ceil(share * n)`` cells (NaN without crimes)."""
    return float(concentration(counts, top_shares=(share,))["share_of_total"].iat[0])


def _shares_in_top(counts: np.ndarray, shares: tuple[float, ...]) -> list[float]:
    """:func:`_share_in_top` for each of ``shares``, from one sort (each share's row is computed on its own)."""
    return [float(v) for v in concentration(counts, top_shares=shares)["share_of_total"].to_numpy()]
