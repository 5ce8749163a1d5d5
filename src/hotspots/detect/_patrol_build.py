"""Patrol areas of one district and selection, described: names, trend, crime types, hours, stable ids."""

from __future__ import annotations

import collections
import functools
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from hotspots.detect._patrol_lattice import _grid_lattice, _Links
from hotspots.detect._points import (
    _group_bounds,
    _location_summaries,
    _lonlat,
    _ranked_counts,
)
from hotspots.detect.naming import AreaNamer, dominant_location, stable_patrol_id
from hotspots.detect.options import HotspotConfig
from hotspots.detect.patrol import _bridges, _cores, merge_hot_cells
from hotspots.detect.profile import hour_of_week_profile
from hotspots.detect.results import Inputs, SelectionResult, StudyArea
from hotspots.detect.trend import _mann_kendall_z_p, mann_kendall
from hotspots.schema import ASB, BNG


def describe_patrol_areas(res: SelectionResult, inputs: Inputs, grid, cell, cur, members, sel: str, area: StudyArea,
                  cfg: HotspotConfig, shared: dict | None = None, columns: dict | None = None,
                  brief: bool = False) -> None:
    """Merge contiguous significant hot cells, rank, keep the top N, and describe each area.

    ``shared``: a dict kept across the selections of one study area (its ward and town-centre namer, the
    grid's columns, and the analysis period's points by cell, are built once).  ``columns``: the columns of
    the cells table, before it is built (:func:`hotspots.detect.analysis.analyse_area`): read from there,
    and the cells' patrol area ids are put in ``columns["patrol_area_id"]``; without it they are read from
    and written to ``res.cells``.  ``brief`` (the evaluation, which reads the areas' ids, names, districts,
    counts and shapes only): ``res.patrol_areas`` has just ``patrol_area_id``, ``name``, ``district_code``,
    ``count`` and ``geometry`` (the same values), and the crime types, hours, trends and the cells' ids are
    not made.
    """
    cells = res.cells if columns is None else None

    def column(name: str):
        return cells[name] if columns is None else columns[name]

    kept_across = shared is not None
    shared = {} if shared is None else shared
    lattice = _grid_columns(grid, shared)
    hot, hot_text = _class_masks(column("gi_class"), cfg.patrol_classes)
    asb_only = all(m == ASB for m in members)
    rank_by = "harm" if cfg.rank_by == "harm" and not asb_only else "count"
    if cfg.rank_by == "harm" and asb_only:
        res.note = "ASB has no harm weight: ranked by count"
    harm = None if asb_only else np.asarray(column("harm"))
    gi_z, count_of_cell = np.asarray(column("gi_z")), np.asarray(column("count"))
    # the steps below work on the hot cells alone, with the queen links among them found once
    start = np.flatnonzero(hot)
    links = _Links.of_lattice(lattice["row"][start], lattice["col"][start], lattice["shape"])
    # peel on the Gi* z (a smoothed neighbourhood sum), so cores stay compact around the peaks
    core, region_km2 = _cores(links, lattice["area"][start], np.asarray(gi_z, dtype=float)[start], cfg.max_area_km2)
    # a patrol area is made of cells that hold the crime: an empty hot cell stays only as a bridge between two
    # crime-bearing cells (Gi* makes the empty neighbours of one busy cell "hot" too)
    in_core = np.flatnonzero(core)
    bearing = np.asarray(count_of_cell, dtype=float)[start[in_core]] > 0
    held = bearing.copy()
    if bearing.any() and not bearing.all():
        cells = start[in_core]
        held |= _bridges(links.among(in_core), bearing, lattice["row"][cells], lattice["col"][cells], lattice["shape"])
    # Gi* is about a cell's neighbourhood: with sparse counts a few crimes (or none, next to a busy cell) can be
    # "significant"; a patrol area needs at least min_count crimes in the period (default: one a month)
    min_count = cfg.min_count if cfg.min_count is not None else len(inputs.current)
    kept = in_core[held & hot_text[start[in_core]]]  # positions into start
    hot_rows = start[kept]
    counts_hot = count_of_cell[hot_rows]
    harm_hot = None if harm is None else harm[hot_rows]
    z_hot = gi_z[hot_rows]
    # ranked by count, the top N groups with min_count crimes are the top N groups, less those under min_count,
    # so the shapes of N groups at most are drawn
    chosen = _chosen_groups(links.among(kept), cell_ids=lattice["cell_id"][hot_rows], area=lattice["area"][hot_rows],
                            geoms=lattice["geometry"][hot_rows], counts=counts_hot, harm=harm_hot, z=z_hot,
                            rank_by=rank_by, min_count=min_count, top_n=cfg.top_n, rows=hot_rows,
                            shapes=lattice["shapes"]) if len(kept) else None
    if chosen is not None:
        n_found = chosen["n_groups"]
        positions = [hot_rows[m] for m in chosen["members"]]
    elif len(kept) == 0:  # no hot cells: no areas (what merge_hot_cells gives for none)
        n_found, positions, chosen = 0, [], {"polygons": np.array([], dtype=object)}
    else:  # no hot cells, or values merge_hot_cells checks and refuses
        eligible = np.asarray(column("gi_class"), dtype=object)[hot_rows]
        pa = merge_hot_cells(grid.iloc[hot_rows], eligible, counts=counts_hot, harm=harm_hot, rank_by=rank_by,
                             gi_z=z_hot, top_n=cfg.top_n if rank_by == "count" else None)
        n_found = len(_Links(grid, hot_rows).components(np.arange(len(hot_rows))))
        pick = np.flatnonzero(pa["count"].to_numpy() >= min_count)[:cfg.top_n]
        chosen = {c: pa[c].to_numpy()[pick] for c in ("count", "harm", "n_cells", "area_km2", "max_gi_z", "x_centroid",
                                                     "y_centroid", "cell_ids") if c in pa.columns}
        chosen["polygons"] = np.asarray(pa.geometry.values)[pick]
        pos_of_id = {cell_id: i for i, cell_id in enumerate(grid["cell_id"].tolist())}
        positions = [np.array([pos_of_id[i] for i in ids.split(";")], dtype=np.int64) for ids in chosen["cell_ids"]]
    shapes = chosen["polygons"]
    n_pa = len(positions)
    if n_pa == 0:
        res.patrol_areas = None
        if n_found:
            res.note = res.note or (f"{n_found} group(s) of significant hot cells, none with {min_count} or more "
                                    "crimes in the period, so no patrol areas")
        else:
            res.note = res.note or (f"no cells are significant hot spots at {cfg.patrol_confidence}% confidence "
                                    "(after FDR correction), so no patrol areas")
        return
    codes = inputs.codes
    pts = inputs.points
    cur_months = list(inputs.current)
    district_total = float(count_of_cell.sum())
    district_area = lattice["area_total"]
    # every patrol area's points at once: area of each cell, then of each point of the analysis period in them
    area_of_cell = np.full(len(grid) + 1, -1, dtype=np.int64)  # last entry: points outside the grid
    for j, pos in enumerate(positions):
        area_of_cell[pos] = j
    rows = _points_in_cells(codes, cell, cur_months, area_of_cell, shared if kept_across else None)
    area_of_point = area_of_cell[cell[rows]]
    in_sel = codes.of_types(members)[rows]
    sel_area = np.where(in_sel, area_of_point, -1)
    streets, top_locations = _location_summaries(sel_area, codes, rows, n_pa)
    if brief:
        _brief_table(res, area, sel, chosen, positions, count_of_cell, shared, inputs, codes, rows, sel_area, streets)
        return
    month_pos = codes.month_position(cur_months)[rows]
    has = sel_area >= 0
    monthly = np.bincount(sel_area[has] * len(cur_months) + month_pos[has],
                          minlength=n_pa * len(cur_months)).reshape(n_pa, len(cur_months))
    trends = _trends(monthly, cur_months)
    type_area, type_code, type_count = _ranked_counts(area_of_point, codes.crime_type[rows], len(codes.type_labels))
    types_of_area = {j: [] for j in range(n_pa)}
    for j, start_j, end_j in _group_bounds(type_area):
        types_of_area[j] = [(str(codes.type_labels[type_code[i]]), int(type_count[i])) for i in range(start_j, end_j)]
    namer, places = _namer_and_places(shared, inputs, area, codes, rows, sel_area)
    cell_ids = [ids.split(";") for ids in chosen["cell_ids"]]
    has_times = "datetime" in pts.columns
    out = {k: [] for k in _AREA_COLUMNS}
    type_rows = {k: [] for k in ("patrol_area_id", "selection", "district_code", "crime_type", "count")}
    hour_frames, pids = [], []
    for j in range(n_pa):
        ids, pos = cell_ids[j], positions[j]
        pid = stable_patrol_id(area.code, sel, ids, count_of_cell[pos])
        pids.append(pid)
        names = namer.name(shapes[j], places.get(j, streets[j]))
        all_types = types_of_area[j]
        for ct, c in all_types:
            type_rows["patrol_area_id"].append(pid)
            type_rows["crime_type"].append(ct)
            type_rows["count"].append(c)
        harm_total = float(chosen["harm"][j]) if harm is not None else np.nan
        count = int(chosen["count"][j])
        share = count / district_total * 100 if district_total > 0 else np.nan
        share_area = float(chosen["area_km2"][j]) / district_area * 100 if district_area > 0 else np.nan
        n_sel = int(monthly[j].sum())
        if has_times and n_sel:
            sel_rows = rows[sel_area == j]
            prof = hour_of_week_profile(pts["datetime"].iloc[sel_rows],
                                               np.full(len(sel_rows), pid, dtype=object))
            prof = prof.rename(columns={"area_id": "patrol_area_id"})
            prof.insert(1, "selection", sel)
            hour_frames.append(prof)
            how = _busiest_hours(prof)
        elif has_times:
            how = "no crimes with a time"
        else:
            how = "not available (police.uk gives the month only)"
        for key, value in (
            ("patrol_area_id", pid), ("rank", j + 1), ("name", names["name"]), ("main_location", top_locations[j]),
            ("ward_code", names["ward_code"]), ("ward_name", names["ward_name"]), ("town_centre", names["town_centre"]),
            ("n_cells", int(chosen["n_cells"][j])), ("area_km2", float(chosen["area_km2"][j])),
            ("hot_region_km2", float(region_km2[np.searchsorted(start, pos[0])])),
            ("count", count), ("share_of_district_pct", share), ("share_of_district_area_pct", share_area),
            ("pai", share / share_area if share_area else np.nan), ("harm_total", harm_total),
            ("harm_per_crime", harm_total / count if count and np.isfinite(harm_total) else np.nan),
            *trends[j].items(), ("top_crime_types", "; ".join(f"{ct} {c}" for ct, c in all_types[:3])),
            ("hour_of_week", how), ("peak_gi_z", float(chosen["max_gi_z"][j])), ("x", float(chosen["x_centroid"][j])),
            ("y", float(chosen["y_centroid"][j])), ("cell_ids", chosen["cell_ids"][j]),
        ):
            out[key].append(value)
    n_types = len(type_rows["patrol_area_id"])
    type_rows["selection"] = [sel] * n_types
    type_rows["district_code"] = [area.code] * n_types
    _set_patrol_ids(res, columns, positions, pids)
    res.patrol_areas = _area_table(out, sel, area, rank_by, shapes)
    res.patrol_counts = (pd.DataFrame({k: pd.array(v, dtype=_TEXT) if k != "count" else np.array(v, dtype=np.int64)
                                       for k, v in type_rows.items()}) if n_types else pd.DataFrame([]))
    res.patrol_hours = pd.concat(hour_frames, ignore_index=True) if hour_frames else None



def _namer_and_places(shared: dict, inputs: Inputs, area: StudyArea, codes, rows: np.ndarray, sel_area: np.ndarray):
    """The study area's namer (made once, kept in ``shared``) and each patrol area's dominant place."""
    if "namer" not in shared:
        shared["namer"] = _namer(inputs.wards, inputs.town_centres, area)
    loc_area, loc_name, loc_count = _ranked_counts(sel_area, codes.name[rows], len(codes.names))
    places = {j: dominant_location([(codes.names[loc_name[i]], int(loc_count[i])) for i in range(s, e)],
                                   codes.is_street[loc_name[s:e]]) for j, s, e in _group_bounds(loc_area)}
    return shared["namer"], places

def _brief_table(res: SelectionResult, area: StudyArea, sel: str, chosen: dict, positions: list[np.ndarray],
                 count_of_cell: np.ndarray, shared: dict, inputs: Inputs, codes, rows: np.ndarray,
                 sel_area: np.ndarray, streets: list) -> None:
    """:func:`describe_patrol_areas` with ``brief``: the ids, names, district, counts and shapes of its table."""
    namer, places = _namer_and_places(shared, inputs, area, codes, rows, sel_area)
    shapes = chosen["polygons"]
    pids, names = [], []
    for j, pos in enumerate(positions):
        pids.append(stable_patrol_id(area.code, sel, chosen["cell_ids"][j].split(";"), count_of_cell[pos]))
        names.append(namer.name(shapes[j], places.get(j, streets[j]))["name"])
    n = len(pids)
    text = pd.array(pids + names + [area.code] * n, dtype=_TEXT)
    res.patrol_areas = gpd.GeoDataFrame(
        {"patrol_area_id": text[:n], "name": text[n:2 * n], "district_code": text[2 * n:],
         "count": np.array([int(c) for c in chosen["count"]], dtype=np.int64),
         "geometry": gpd.array.from_shapely(shapes, crs=_bng())}, geometry="geometry", crs=_bng())


#: the patrol-area table's columns made per area (the others are the same for every area of one call)
_AREA_COLUMNS = ("patrol_area_id", "rank", "name", "main_location", "ward_code", "ward_name", "town_centre", "n_cells",
                 "area_km2", "hot_region_km2", "count", "share_of_district_pct", "share_of_district_area_pct", "pai",
                 "harm_total", "harm_per_crime", "count_h1", "count_h2", "change_h2_vs_h1_pct", "mk_z", "mk_p", "trend",
                 "top_crime_types", "hour_of_week", "peak_gi_z", "x", "y", "cell_ids")
_TEXT = pd.Series([""]).dtype  # the text dtype pandas gives a column of str
_INTS = ("rank", "n_cells", "count", "count_h1", "count_h2")
_FLOATS = ("area_km2", "hot_region_km2", "share_of_district_pct", "share_of_district_area_pct", "pai", "harm_total",
           "harm_per_crime", "change_h2_vs_h1_pct", "mk_z", "mk_p", "peak_gi_z", "x", "y")


def _area_table(out: dict[str, list], sel: str, area: StudyArea, rank_by: str, shapes: np.ndarray) -> gpd.GeoDataFrame:
    """The patrol-area table: the columns, types and order a GeoDataFrame of the rows as dicts has (text as the
    ``str`` dtype, whole numbers as int64, the others float64), with ``lon`` and ``lat`` after the geometry."""
    n = len(out["patrol_area_id"])
    constant = {"selection": sel, "district_code": area.code, "district_name": area.name, "rank_by": rank_by}
    texts = [c for c in out if c not in _INTS and c not in _FLOATS]
    # every text column in one array (made once), then cut into columns
    every = pd.array([v for c in texts for v in out[c]] + [v for c in constant.values() for v in [c] * n], dtype=_TEXT)
    text = {c: every[i * n:(i + 1) * n] for i, c in enumerate(texts + list(constant))}
    data = {"patrol_area_id": text["patrol_area_id"], "selection": text["selection"],
            "district_code": text["district_code"], "district_name": text["district_name"],
            "rank": np.array(out["rank"], dtype=np.int64), "rank_by": text["rank_by"]}
    for c in _AREA_COLUMNS[_AREA_COLUMNS.index("name"):]:
        if c == "area_km2":
            data["cell_size_m"] = np.array([area.cell_size] * n)
        data[c] = (np.array(out[c], dtype=np.int64) if c in _INTS else np.array(out[c], dtype=np.float64) if c in _FLOATS
                   else text[c])
    data["geometry"] = gpd.array.from_shapely(shapes, crs=_bng())
    data["lon"], data["lat"] = _lonlat(data["x"], data["y"])
    return gpd.GeoDataFrame(data, geometry="geometry", crs=_bng())


@functools.lru_cache(maxsize=1)
def _bng():
    """British National Grid as a pyproj CRS, made once."""
    from pyproj import CRS

    return CRS.from_user_input(BNG)


def _set_patrol_ids(res: SelectionResult, columns: dict | None, positions: list[np.ndarray], pids: list[str]) -> None:
    """Each patrol area's id on its cells: in ``columns["patrol_area_id"]``, else in ``res.cells``.

    An Arrow text column gets the ids in Arrow (its other values kept), without a round trip through Python
    strings; any other column as before, through an object array.
    """
    patrol_ids = res.cells["patrol_area_id"] if columns is None else columns["patrol_area_id"]
    if columns is not None and isinstance(patrol_ids, pd.arrays.ArrowStringArray) and positions:
        import pyarrow as pa
        import pyarrow.compute as pc

        pos = np.concatenate(positions)
        values = np.repeat(np.array(pids, dtype=object), [len(p) for p in positions])[np.argsort(pos)]
        mask = np.zeros(len(patrol_ids), dtype=bool)
        mask[pos] = True
        arrow = pa.array(patrol_ids)
        columns["patrol_area_id"] = pd.array(pc.replace_with_mask(arrow, pa.array(mask), pa.array(values, type=arrow.type)),
                                             dtype=patrol_ids.dtype)
        return
    patrol_id_of_cell = np.asarray(patrol_ids, dtype=object).copy()
    for pos, pid in zip(positions, pids):
        patrol_id_of_cell[pos] = pid
    if columns is None:
        res.cells["patrol_area_id"] = pd.array(patrol_id_of_cell, dtype=res.cells["patrol_area_id"].dtype)
    else:
        columns["patrol_area_id"] = pd.array(patrol_id_of_cell, dtype=columns["patrol_area_id"].dtype)


def _grid_columns(grid, shared: dict) -> dict:
    """The grid's columns the patrol areas read, as arrays: lattice ``row``, ``col`` and ``shape``, ``cell_id``
    (text), ``area`` (km²), ``geometry``, and ``area_total``; and ``shapes``, the dissolved shapes of its cells
    drawn so far (:func:`hotspots.detect.patrol._chosen_groups`).  Kept in ``shared`` for the next selection."""
    kept = shared.get("grid_columns")
    if kept is not None and kept[0] is grid:
        return kept[1]
    row, col, shape = _grid_lattice(grid)
    area = grid["cell_area_km2"]
    out = {"row": row, "col": col, "shape": shape, "cell_id": grid["cell_id"].astype(str).to_numpy(dtype=object),
           "area": area.to_numpy(np.float64), "geometry": np.asarray(grid.geometry.values),
           "area_total": float(area.sum()), "shapes": {}}
    shared["grid_columns"] = (grid, out)
    return out


#: namers kept across calls: (wards, town centres, district geometry) they were made from, and the namer
_NAMERS: collections.OrderedDict = collections.OrderedDict()


def _namer(wards, town_centres, area: StudyArea) -> AreaNamer:
    """The district's :class:`AreaNamer`, kept for the next call with the same wards and town centres (the same
    objects) and the same district: the hotspots stage and the evaluation name the same districts' areas."""
    key = (id(wards), id(town_centres), area.code, shapely.to_wkb(area.geometry))
    kept = _NAMERS.get(key)
    if kept is not None and kept[0] is wards and kept[1] is town_centres:
        _NAMERS.move_to_end(key)
        return kept[2]
    namer = AreaNamer(wards, town_centres, district_code=area.code, district_geometry=area.geometry)
    _NAMERS[key] = (wards, town_centres, namer)
    while len(_NAMERS) > 64:
        _NAMERS.popitem(last=False)
    return namer


def _class_masks(classes, patrol_classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: is its class a patrol class (other than not_significant), and is it one whose text starts "hot".

    As ``np.isin(classes, patrol_classes)`` with the cells outside set to ``not_significant``; for text or
    categorical columns through their own ``isin``.
    """
    wanted = [c for c in patrol_classes if c != "not_significant"]
    hot_wanted = [c for c in wanted if str(c).startswith("hot")]
    values = classes.array if isinstance(classes, pd.Series) else classes

    def isin(among):
        if isinstance(values, pd.api.extensions.ExtensionArray) and not isinstance(values, pd.arrays.NumpyExtensionArray):
            return np.asarray(values.isin(among), dtype=bool)
        return np.isin(np.asarray(values, dtype=object), among)

    hot = isin(wanted)
    return hot, (hot if hot_wanted == wanted else hot & isin(hot_wanted))


def _points_in_cells(codes, cell: np.ndarray, months: list[str], area_of_cell: np.ndarray, shared: dict | None
                     ) -> np.ndarray:
    """The points of ``months`` in the grid cells with an area (``area_of_cell`` >= 0; its last entry: points
    outside the grid), in the points' order.

    With ``shared`` (kept across the selections of one grid), the period's points are sorted by cell once,
    so each call takes the points of its cells only; without, they are looked up directly.
    """
    if shared is None:
        rows = np.flatnonzero(codes.in_months(months))
        return rows[area_of_cell[cell[rows]] >= 0]
    positions = np.flatnonzero(area_of_cell[:-1] >= 0)
    kept = shared.get("period_points")
    if kept is None or kept[0] is not cell or kept[1] is not codes or kept[2] != months:
        rows = np.flatnonzero(codes.in_months(months))
        cell_of = cell[rows]
        n_cells = int(cell_of.max(initial=-1)) + 1
        small = np.int16 if n_cells < 2**15 else np.int32 if n_cells < 2**31 else np.int64
        order = np.argsort(cell_of.astype(small), kind="stable")  # by cell, in the points' order within one
        bounds = np.searchsorted(cell_of[order], np.arange(n_cells + 1))  # cell -1 (outside) sorts first
        kept = (cell, codes, list(months), rows[order], bounds)
        shared["period_points"] = kept
    by_cell, bounds = kept[3], kept[4]
    positions = positions[positions < len(bounds) - 1]  # cells after the last point's hold none
    start, end = bounds[positions], bounds[positions + 1]
    length = end - start
    take = np.repeat(start - np.cumsum(length) + length, length) + np.arange(int(length.sum()))
    return np.sort(by_cell[take])


def _chosen_groups(links: _Links, *, cell_ids: np.ndarray, area: np.ndarray, geoms: np.ndarray, counts: np.ndarray,
                   harm: np.ndarray | None, z: np.ndarray, rank_by: str, min_count: float, top_n: int | None,
                   rows: np.ndarray | None = None, shapes: dict | None = None) -> dict[str, Any] | None:
    """The patrol areas :func:`describe_patrol_areas` keeps, from the hot cells.

    ``links``: the queen links among the hot cells (all of one group); the other arrays are per hot cell, in
    grid order.  The connected groups are ranked as :func:`hotspots.detect.patrol.merge_hot_cells` ranks them (``rank_by``, then
    count, both descending, then the smallest cell id) and the first ``top_n`` with at least ``min_count``
    crimes are kept: the areas ``merge_hot_cells`` would number, of which the describing keeps the same ones.
    Their sums are those of ``merge_hot_cells`` (the same pandas groupby sum) and their shapes
    its dissolved cells, drawn for the kept areas only.

    Returns, per kept area in rank order: ``count``, ``harm`` (without ``harm``: absent), ``n_cells``,
    ``area_km2``, ``max_gi_z``, ``x_centroid``, ``y_centroid``, ``cell_ids`` (";"-joined, sorted),
    ``members`` (positions of its cells, in the order of their sorted ids), ``polygons``; and ``n_groups``,
    the number of connected groups.  ``None`` -- call :func:`merge_hot_cells` then -- for values it would
    check further (not finite, negative counts), or an unknown ``rank_by``.

    ``shapes``: the shapes drawn before from the same grid (``geoms`` being its cells at ``rows``), by the
    grid positions of their cells: a group of the same cells gets the same shape without drawing it again.
    """
    counts = np.asarray(counts, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    harm = None if harm is None else np.asarray(harm, dtype=np.float64)
    if links.size == 0 or not np.isfinite(counts).all() or (counts < 0).any() or not np.isfinite(z).all() \
            or (harm is not None and not np.isfinite(harm).all()) or rank_by not in ("count", "harm"):
        return None
    label = links.labels()
    k = int(label.max()) + 1
    n_cells = np.bincount(label, minlength=k)
    # the sums by the groupby merge_hot_cells uses (the same columns, groups and order, so the same floats: its
    # sum is compensated, or not, by the groups' order), the groups given as the index
    columns = {"count": counts, "area_km2": area}
    if harm is not None:
        columns["harm"] = harm
    sums = pd.DataFrame(columns, index=pd.Index(label)).groupby(level=0, sort=True).sum()
    count_sum = sums["count"].to_numpy()
    area_sum = sums["area_km2"].to_numpy()
    harm_sum = sums["harm"].to_numpy() if harm is not None else None
    key = harm_sum if rank_by == "harm" else count_sum
    ids = np.asarray(cell_ids).astype(str)
    order = np.lexsort((ids, label))
    first = order[np.r_[0, np.cumsum(n_cells)[:-1]]]  # each group's smallest cell id
    cell_code = np.unique(ids[first], return_inverse=True)[1].reshape(-1)
    ranked = np.lexsort((cell_code, -count_sum, -key))
    chosen = ranked[count_sum[ranked] >= min_count][:top_n]
    z_max = np.full(k, -np.inf)
    np.maximum.at(z_max, label, z)
    members = np.split(order, np.cumsum(n_cells)[:-1])  # per group, by cell id
    polygons = np.empty(len(chosen), dtype=object)
    for i, g in enumerate(chosen.tolist()):
        cells = np.sort(members[g])
        key = None if shapes is None or rows is None else rows[cells].tobytes()
        polygon = None if key is None else shapes.get(key)
        if polygon is None:
            polygon = shapely.union_all(geoms[cells], grid_size=0.001)
            if key is not None:
                shapes[key] = polygon
        polygons[i] = polygon
    centroids = shapely.centroid(polygons)
    out = {"n_groups": k, "count": count_sum[chosen], "n_cells": n_cells[chosen].astype(np.int64),
           "area_km2": area_sum[chosen], "max_gi_z": z_max[chosen], "x_centroid": shapely.get_x(centroids),
           "y_centroid": shapely.get_y(centroids), "cell_ids": [";".join(ids[members[g]].tolist()) for g in chosen.tolist()],
           "members": [members[g] for g in chosen.tolist()], "polygons": polygons}
    if harm is not None:
        out["harm"] = harm_sum[chosen]
    return out


def _busiest_hours(profile: pd.DataFrame, k: int = 3) -> str:
    total = int(profile["count"].sum())
    if total == 0:
        return "no crimes with a time"
    top = profile.sort_values(["count", "hour_of_week"], ascending=[False, True]).head(k)
    parts = [f"{r['day']} {int(r['hour']):02d}:00 ({int(r['count'])})" for _, r in top.iterrows()]
    return f"busiest hours: {', '.join(parts)} of {total}"



def _trends(monthly: np.ndarray, months: Sequence[str]) -> list[dict]:
    """H2 vs H1 of the analysis period and Mann-Kendall on the monthly counts, one row per area."""
    if len(monthly) == 0:
        return []
    half = len(months) // 2
    series_all = monthly.astype(float)
    fast = _mann_kendall_z_p(series_all)
    if fast is None:  # what mann_kendall checks further (no months): its own route
        mk = mann_kendall(series_all)
        mk_zs, mk_ps, verdicts = mk["mk_z"].to_numpy(), mk["mk_p"].to_numpy(), mk["mk_trend"].to_numpy()
    else:
        # mann_kendall's mk_trend at alpha 0.05: its z and p are NaN only for series too short ("undefined"),
        # which reads as no clear trend, as does "no_trend"
        mk_zs, mk_ps = fast
        verdicts = np.where(mk_ps <= 0.05, np.where(mk_zs > 0, "increasing", "decreasing"), "no_trend")
    out = []
    for row, series in enumerate(monthly):
        h1 = float(series[:half].sum())
        h2 = float(series[half:half * 2].sum()) if len(months) % 2 == 0 else float(series[-half:].sum())
        change = (h2 - h1) / h1 * 100.0 if h1 > 0 else np.nan
        mk_z, mk_p = float(mk_zs[row]), float(mk_ps[row])
        verdict = str(verdicts[row])
        word = {"increasing": "rising", "decreasing": "falling"}.get(verdict, "no clear trend")
        if np.isfinite(change):
            word += f" (H2 vs H1 {change:+.0f}%)"
        out.append({"count_h1": int(h1), "count_h2": int(h2), "change_h2_vs_h1_pct": change, "mk_z": mk_z,
                    "mk_p": mk_p, "trend": word})
    return out
