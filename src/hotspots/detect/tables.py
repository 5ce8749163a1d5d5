"""The stage's tables from the per-area results: patrol areas, clusters, emerging, stability, town centres.

:func:`hotspot_tables` assembles every table the ``hotspots`` stage writes
(except the grid cells, which stay per area); :func:`county_patrol_ranking`
and :func:`largest_clusters` choose what the county map shows;
:func:`street_context` picks the police.uk map points and street names a map
labels, in the order they are placed.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from hotspots.detect.columns import (
    CLUSTER_COLUMNS,
    EMERGING_COLUMNS,
    PATROL_AREA_COLUMNS,
    STABILITY_COLUMNS,
    STUDY_AREA_COLUMNS,
    TOWN_CENTRE_COLUMNS,
)
from hotspots.detect.options import MAP_MAX_CLUSTERS
from hotspots.detect.results import AreaResult, Inputs
from hotspots.geo.assign import assign_points
from hotspots.schema import BNG

__all__ = ["hotspot_tables", "town_centre_table", "county_patrol_ranking", "largest_clusters", "street_context"]


def _frame(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def town_centre_table(inputs: Inputs, district_results: list[AreaResult], patrol: gpd.GeoDataFrame) -> pd.DataFrame:
    """One row per town centre × selection: counts, change, hot cells and patrol areas inside.

    Counts are of the points inside each town centre in the analysis period
    and its two halves (H1, H2); hot and cold cells are the district grid's
    cells whose centre lies in the town centre; patrol areas are the
    district's that intersect it (``"#<rank> <id>"``, by rank).

    Returns
    -------
    DataFrame
        Columns :data:`hotspots.detect.columns.TOWN_CENTRE_COLUMNS`.
    """
    tcs = inputs.town_centres
    if tcs is None or len(tcs) == 0:
        return pd.DataFrame(columns=TOWN_CENTRE_COLUMNS)
    codes = inputs.codes
    by_district = {r.area.code: r for r in district_results}
    pairs = assign_points(codes.x, codes.y, tcs, exclusive=False)
    months = list(inputs.current)
    half = len(months) // 2
    in_count = codes.in_months(months)
    in_h1 = codes.in_months(months[:half])
    in_h2 = codes.in_months(months[-half:]) if half else np.zeros(len(codes.x), dtype=bool)
    of_selection = {sel: codes.of_types(members) for sel, members in inputs.selections.items()}
    if patrol is not None and len(patrol):
        pa_sel = patrol["selection"].to_numpy(dtype=object)
        pa_district = patrol["district_code"].to_numpy(dtype=object)
        pa_geoms = np.asarray(patrol.geometry.values)
        pa_rank = patrol["rank"].to_numpy()
        pa_label = [f"#{int(r)} {i}" for r, i in zip(pa_rank, patrol["patrol_area_id"])]
    point_of_pair, tc_of_pair = pairs["point"].to_numpy(), pairs["area"].to_numpy()
    cell_tables = {}
    rows = []
    for i, tc in tcs.reset_index(drop=True).iterrows():
        res = by_district.get(tc["district_code"])
        if res is None:
            continue
        idx = point_of_pair[tc_of_pair == i]
        tc_geom = tc.geometry
        for sel in inputs.selections:
            m = of_selection[sel][idx]
            count = int(in_count[idx][m].sum())
            h1 = int(in_h1[idx][m].sum())
            h2 = int(in_h2[idx][m].sum()) if half else 0
            key = (res.area.code, sel)
            if key not in cell_tables:
                cells = res.selections[sel].cells
                cell_tables[key] = (float(cells["count"].sum()), cells["town_centre"].to_numpy(dtype=object),
                                    cells["gi_class"].astype(str).to_numpy(dtype=object),
                                    cells["count"].to_numpy(), cells["gi_z"].to_numpy())
            dist_total, cell_tc, cell_cls, cell_count, cell_z = cell_tables[key]
            inside = cell_tc == tc["area_name"]
            cls = cell_cls[inside].astype(str)
            pa_here = ""
            if patrol is not None and len(patrol):
                here = np.flatnonzero((pa_sel == sel) & (pa_district == tc["district_code"]))
                here = here[shapely.intersects(pa_geoms[here], tc_geom)]
                # ranks are unique within a district and selection: any sort gives one order
                pa_here = "; ".join(pa_label[i] for i in here[np.argsort(pa_rank[here], kind="stable")])
            inside_count = cell_count[inside]
            peak = _peak_cell(inside_count)
            rows.append({
                "town_centre_code": tc["area_code"], "town_centre_name": tc["area_name"],
                "district_code": tc["district_code"], "district_name": res.area.name, "selection": sel,
                "count": count,
                "share_of_district_pct": count / dist_total * 100 if dist_total > 0 else np.nan,
                "area_km2": tc_geom.area / 1e6,
                "share_of_district_area_pct": tc_geom.area / res.area.geometry.area * 100,
                "count_h1": h1, "count_h2": h2,
                "change_h2_vs_h1_pct": (h2 - h1) / h1 * 100 if h1 > 0 else np.nan,
                "hot_cells": int(np.char.startswith(cls, "hot").sum()), "hot_cells_99": int((cls == "hot_99").sum()),
                "cold_cells": int(np.char.startswith(cls, "cold").sum()), "patrol_areas": pa_here,
                "peak_cell_count": int(inside_count[peak]) if peak is not None else 0,
                "peak_gi_z": float(cell_z[inside][peak]) if peak is not None else np.nan,
            })
    return pd.DataFrame(rows, columns=TOWN_CENTRE_COLUMNS)


def _peak_cell(counts: np.ndarray) -> int | None:
    """Position of the peak cell as ``pd.Series(counts).sort_values(ascending=False)`` puts first (None: no cells).

    A single largest count is that cell whatever the sort; ties (and NaN) are left to pandas' sort, which breaks
    them its own way.
    """
    if counts.size == 0:
        return None
    top = np.argmax(counts)
    if not np.isnan(counts[top]) and np.count_nonzero(counts == counts[top]) == 1 and not np.isnan(counts).any():
        return int(top)
    return _peak_cell_reference(counts)


def _peak_cell_reference(counts: np.ndarray) -> int | None:
    """:func:`_peak_cell` by pandas' sort (the tests' reference)."""
    peak = pd.Series(counts).sort_values(ascending=False).index[:1]
    return int(peak[0]) if len(peak) else None


def hotspot_tables(inputs: Inputs, county: AreaResult, district_results: list[AreaResult]) -> dict[str, pd.DataFrame]:
    """Every table of the ``hotspots`` stage but the grid cells, from the per-area results.

    Returns
    -------
    dict
        ``study_areas``, ``patrol_areas`` (a GeoDataFrame, EPSG:27700),
        ``patrol_area_crime_types``, ``patrol_area_hour_of_week`` (``None``
        when the points have no times), ``clusters``, ``emerging`` (the cells
        with a pattern only: every cell's class is in the grid cells),
        ``stability`` and ``town_centres``; columns as in
        :mod:`hotspots.detect.columns`.
    """
    areas = [county] + district_results
    patrol_frames, counts_frames, hours_frames = [], [], []
    for r in district_results:
        for s in r.selections.values():
            patrol_frames.append(s.patrol_areas)
            counts_frames.append(s.patrol_counts)
            hours_frames.append(s.patrol_hours)
    patrol_frames = [p for p in patrol_frames if p is not None and len(p)]
    if patrol_frames:
        patrol = gpd.GeoDataFrame(pd.concat(patrol_frames, ignore_index=True), geometry="geometry", crs=BNG)
    else:
        patrol = gpd.GeoDataFrame({c: [] for c in PATROL_AREA_COLUMNS}, geometry=gpd.GeoSeries([], crs=BNG), crs=BNG)
    patrol = patrol[PATROL_AREA_COLUMNS + ["geometry"]]
    pac = _frame(counts_frames, ["patrol_area_id", "selection", "district_code", "crime_type", "count"])
    hours = None
    if "datetime" in inputs.points.columns:
        hours = _frame(hours_frames, ["patrol_area_id", "selection", "weekday", "hour", "count"])
    clusters = _frame([s.clusters for a in areas for s in a.selections.values()], CLUSTER_COLUMNS)
    # cells with a pattern only, as _emerging keeps them (every cell's class is in grid_cells.gpkg): all cells
    # would be ~50 MB
    emerging = _frame([s.emerging for a in areas for s in a.selections.values()], EMERGING_COLUMNS)
    stability = pd.DataFrame([s.stability for a in areas for s in a.selections.values()], columns=STABILITY_COLUMNS)
    tct = town_centre_table(inputs, district_results, patrol)
    study = pd.DataFrame([s.summary for a in areas for s in a.selections.values()], columns=STUDY_AREA_COLUMNS)
    return {"study_areas": study, "patrol_areas": patrol, "patrol_area_crime_types": pac,
            "patrol_area_hour_of_week": hours, "clusters": clusters, "emerging": emerging, "stability": stability,
            "town_centres": tct}


def county_patrol_ranking(patrol: pd.DataFrame, *, selection: str, rank_by: str) -> pd.DataFrame:
    """The districts' patrol areas of one selection ranked across the county (for the county map).

    Sorted by the ranking value, descending (``harm_total`` when ranking by
    harm, except for the ``"ASB"`` selection, which has no harm weight; else
    ``count``), with ``rank`` renumbered 1, 2, ... and ``show_district`` set.

    Examples
    --------
    >>> pa = pd.DataFrame({"selection": "ASB", "count": [5, 9, 7], "rank": [1, 1, 2]})
    >>> county_patrol_ranking(pa, selection="ASB", rank_by="count")[["count", "rank"]].values.tolist()
    [[9, 1], [7, 2], [5, 3]]
    """
    pa = patrol[patrol["selection"] == selection].copy() if len(patrol) else patrol
    if len(pa):
        pa["show_district"] = True
        key = "harm_total" if rank_by == "harm" and selection != "ASB" else "count"
        pa = pa.sort_values(key, ascending=False).reset_index(drop=True)
        pa["rank"] = np.arange(1, len(pa) + 1)
    return pa


def largest_clusters(shapes: gpd.GeoDataFrame, limit: int = MAP_MAX_CLUSTERS) -> gpd.GeoDataFrame:
    """The ``limit`` clusters with the most crimes (what a map draws; the clusters table has all).

    Examples
    --------
    >>> shapes = gpd.GeoDataFrame({"count": [5, 50, 20]}, geometry=gpd.points_from_xy([0, 1, 2], [0, 0, 0]))
    >>> largest_clusters(shapes, limit=2)["count"].tolist()
    [50, 20]
    """
    if len(shapes) > limit:
        return shapes.sort_values("count", ascending=False).head(limit)
    return shapes


#: street labels handed to one map at most (the renderer hides those that would overlap at the zoom shown)
MAP_MAX_STREET_LABELS = 900
#: metres around a patrol area within which street names are "around" it (labelled at the opening zoom)
NEAR_PATROL_M = 300.0


def street_context(codes, rows: np.ndarray, area_geom, patrol_geoms, *, points_too: bool = True,
                   max_labels: int = MAP_MAX_STREET_LABELS, near_m: float = NEAR_PATROL_M
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The police.uk map points in an area and the street names to label, in the order to place them.

    police.uk anonymises each record to one of a fixed set of map points,
    each labelled "On or near <street>" or "On or near <kind of place>".
    Those points and names are street context that needs no background map.

    Parameters
    ----------
    codes : PointCodes
        The points as arrays (:attr:`Inputs.codes`).
    rows : ndarray of int
        The records to use (positions in ``codes``), e.g. those of the analysis period.
    area_geom : shapely geometry
        The map's study area (BNG): points outside it are left out.
    patrol_geoms : sequence of shapely geometries
        The patrol areas the map opens on: names inside and around them are labelled first.
    points_too : bool, default True
        Return the map points (False: an empty table; labels only, for a county map).
    max_labels : int
        Labels returned at most.
    near_m : float
        A name within this distance of a patrol area is "around" it.

    Returns
    -------
    points : DataFrame
        ``x, y, label, count``: one row per map point (and label) with its records.
    labels : DataFrame
        ``x, y, label, count, in_patrol, tier``: one row per street name, at
        its busiest map point (inside a patrol area when it has one there), and
        one per kind-of-place point ("Supermarket") inside a patrol area;
        ``tier`` 2 inside a patrol area, 1 around one, 0 elsewhere.  Ordered
        by tier; inside patrol areas each area's busiest name comes before
        any area's second (so every area is named), otherwise by records,
        most first.  The renderer places them in this order and skips any
        that would overlap one already placed.

    Examples
    --------
    >>> import shapely
    >>> from hotspots.datasets import synthetic_points
    >>> from hotspots.detect._points import PointCodes
    >>> pts = synthetic_points(seed=1).assign(month="2025-01", crime_type="Burglary")
    >>> pts["location"] = ["On or near " + ("Supermarket" if i % 7 == 0 else f"Road {i % 5}") for i in range(len(pts))]
    >>> codes = PointCodes.of(pts, pd.Series(dtype=float))
    >>> area = shapely.box(0, 0, 2000, 2000)
    >>> points, labels = street_context(codes, np.arange(len(pts)), area, [shapely.box(800, 800, 1200, 1200)])
    >>> int(points["count"].sum()) == int(shapely.contains_xy(area, pts["x"], pts["y"]).sum())
    True
    >>> list(labels["tier"]) == sorted(labels["tier"], reverse=True)
    True
    """
    import shapely as _shapely

    empty_points = pd.DataFrame({"x": [], "y": [], "label": [], "count": []})
    empty_labels = pd.DataFrame({"x": [], "y": [], "label": [], "count": [], "in_patrol": [], "tier": []})
    if len(rows) == 0:
        return empty_points, empty_labels
    x, y, name = codes.x[rows], codes.y[rows], codes.name[rows]
    ok = np.isfinite(x) & np.isfinite(y) & (name >= 0)
    if not ok.any():
        return empty_points, empty_labels
    # plain arrays from here on: a few small pandas sorts and groupbys per map cost more than the work itself
    pts = _point_counts(x[ok], y[ok], name[ok])
    px, py = pts["x"].to_numpy(), pts["y"].to_numpy()
    # the area test once per map point, not per record: a point's records are all in the area or all out,
    # so keeping the points in it keeps their counts and their order of first appearance
    in_area = _shapely.contains_xy(area_geom, px, py)
    if not in_area.any():
        return empty_points, empty_labels
    px, py = px[in_area], py[in_area]
    pname, pcount = pts["name"].to_numpy()[in_area], pts["count"].to_numpy()[in_area]
    plabel = codes.names[pname]
    street = codes.is_street[pname]
    patrol = _shapely.union_all(list(patrol_geoms)) if len(patrol_geoms) else None
    if patrol is not None:
        inside = _shapely.contains_xy(patrol, px, py)
        near = _shapely.contains_xy(_shapely.buffer(patrol, near_m), px, py)
    else:
        inside = near = np.zeros(len(px), dtype=bool)
    tier = np.where(inside, 2, np.where(near, 1, 0))
    # which patrol area holds each point inside one (the first that contains it)
    area_of = np.full(len(px), -1, dtype=np.int64)
    for j, geom in enumerate(patrol_geoms):
        todo = inside & (area_of < 0)
        if todo.any():
            area_of[todo] = np.where(_shapely.contains_xy(geom, px[todo], py[todo]), j, -1)
    points = pd.DataFrame({"x": px, "y": py, "label": plabel, "count": pcount}) if points_too else empty_points
    cand = np.flatnonzero(street | inside)
    if not len(cand):
        return points, _street_labels_frame(px[:0], py[:0], plabel[:0], pcount[:0], tier[:0])
    # a street is labelled once (its records summed); each place ("Supermarket") at its own point
    key = np.where(street, pname, -1 - np.arange(len(px)))[cand]
    # a stable sort by tier then records, both descending: lexsort is stable and its last key is the primary
    cand_order = np.lexsort((-pcount[cand], -tier[cand]))
    cand, key = cand[cand_order], key[cand_order]
    # np.unique gives each key's first position in that order (drop_duplicates' row) and the sum's groups
    uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    totals = np.zeros(len(uniq), dtype=np.int64)
    np.add.at(totals, inverse, pcount[cand])
    first_sorted = np.sort(first)  # the busiest point of each name, in the highest tier it reaches
    best = cand[first_sorted]
    count = totals[inverse[first_sorted]]
    b_tier, b_area = tier[best], area_of[best]
    # inside patrol areas, each area's busiest name before any area's second: every area gets its name first
    by_area = np.lexsort((-count, b_area))
    s_area = b_area[by_area]
    # each name's place within its area (a groupby cumcount): the area's rows are consecutive after that sort
    starts = np.r_[True, s_area[1:] != s_area[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(len(s_area)), 0))
    turn = np.where(b_tier[by_area] == 2, np.arange(len(s_area)) - group_start, 0)
    final = by_area[np.lexsort((-count[by_area], turn, -b_tier[by_area]))][:max_labels]
    pick = best[final]
    return points, _street_labels_frame(px[pick], py[pick], plabel[pick], count[final], tier[pick])


def _street_labels_frame(x, y, label, count, tier) -> pd.DataFrame:
    """The labels table of :func:`street_context` from its columns as arrays."""
    return pd.DataFrame({"x": x, "y": y, "label": label, "count": count, "in_patrol": tier == 2, "tier": tier})


def _point_counts(x: np.ndarray, y: np.ndarray, name: np.ndarray) -> pd.DataFrame:
    """``x, y, name, count``: the records per distinct (x, y, name), in order of first appearance.

    :func:`_point_counts_reference` (a pandas groupby) by a stable lexsort: each group's first row in
    sorted order is its first appearance, whose values the group keeps; the same table.
    """
    order = np.lexsort((name, y, x))
    sx, sy, sn = x[order], y[order], name[order]
    new = np.r_[True, (sx[1:] != sx[:-1]) | (sy[1:] != sy[:-1]) | (sn[1:] != sn[:-1])] if order.size else \
        np.zeros(0, dtype=bool)
    starts = np.flatnonzero(new)
    count = np.diff(np.r_[starts, order.size]).astype(np.int64)
    by_appearance = np.argsort(order[starts], kind="stable")
    pick = starts[by_appearance]
    return pd.DataFrame({"x": sx[pick], "y": sy[pick], "name": sn[pick], "count": count[by_appearance]})


def _point_counts_reference(x: np.ndarray, y: np.ndarray, name: np.ndarray) -> pd.DataFrame:
    """What :func:`_point_counts` replaces (kept for the tests)."""
    frame = pd.DataFrame({"x": x, "y": y, "name": name})
    return frame.groupby(["x", "y", "name"], sort=False).size().rename("count").reset_index()
