"""Patrol areas of one district and selection, described: names, trend, crime types, hours, stable ids."""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd

from hotspots.detect._points import (
    _group_bounds,
    _location_summaries,
    _lonlat,
    _ranked_counts,
)
from hotspots.detect.naming import AreaNamer, dominant_location, stable_patrol_id
from hotspots.detect.options import HotspotConfig
from hotspots.detect.patrol import _Links, bridge_cells, core_cells, merge_hot_cells, merged_hot_rows
from hotspots.detect.profile import hour_of_week_profile
from hotspots.detect.results import Inputs, SelectionResult, StudyArea
from hotspots.detect.trend import mann_kendall
from hotspots.schema import ASB, BNG


def describe_patrol_areas(res: SelectionResult, inputs: Inputs, grid, cell, cur, members, sel: str, area: StudyArea,
                  cfg: HotspotConfig, shared: dict | None = None, columns: dict | None = None) -> None:
    """Merge contiguous significant hot cells, rank, keep the top N, and describe each area.

    ``shared``: a dict kept across the selections of one study area (its ward and town-centre namer, and the
    grid position of each cell id, are built once).  ``columns``: the columns of the cells table, before it
    is built (:func:`hotspots.detect.analysis.analyse_area`): read from there, and the cells' patrol area ids
    are put in ``columns["patrol_area_id"]``; without it they are read from and written to ``res.cells``.
    """
    cells = res.cells if columns is None else None

    def column(name: str) -> np.ndarray:
        return cells[name].to_numpy() if columns is None else np.asarray(columns[name])

    cls = (cells["gi_class"].to_numpy(dtype=object) if columns is None
           else np.asarray(columns["gi_class"], dtype=object))
    eligible = np.where(np.isin(cls, cfg.patrol_classes), cls, "not_significant")
    asb_only = all(m == ASB for m in members)
    rank_by = "harm" if cfg.rank_by == "harm" and not asb_only else "count"
    if cfg.rank_by == "harm" and asb_only:
        res.note = "ASB has no harm weight: ranked by count"
    harm = None if asb_only else column("harm")
    hot = eligible != "not_significant"
    gi_z, count_of_cell = column("gi_z"), column("count")
    # peel on the Gi* z (a smoothed neighbourhood sum), so cores stay compact around the peaks
    core, region_km2 = core_cells(grid, hot, gi_z, cfg.max_area_km2)
    eligible = np.where(core, eligible, "not_significant")
    # a patrol area is made of cells that hold the crime: an empty hot cell stays only as a bridge between two
    # crime-bearing cells (Gi* makes the empty neighbours of one busy cell "hot" too)
    held, _ = bridge_cells(grid, eligible != "not_significant", count_of_cell)
    eligible = np.where(held, eligible, "not_significant")
    # Gi* is about a cell's neighbourhood: with sparse counts a few crimes (or none, next to a busy cell) can be
    # "significant"; a patrol area needs at least min_count crimes in the period (default: one a month)
    min_count = cfg.min_count if cfg.min_count is not None else len(inputs.current)
    # detect.patrol_areas gets the hot cells only (its groups, numbers and shapes are those of the whole grid);
    # ranked by count, the top N groups with min_count crimes are the top N groups, less those under min_count,
    # so it draws the shapes of N groups only
    hot_rows = np.flatnonzero(np.char.startswith(eligible.astype(str), "hot"))
    counts_hot = count_of_cell[hot_rows]
    harm_hot = None if harm is None else harm[hot_rows]
    z_hot = gi_z[hot_rows]
    top_n = cfg.top_n if rank_by == "count" else None
    merged = merged_hot_rows(grid, hot_rows, counts=counts_hot, harm=harm_hot, gi_z=z_hot, rank_by=rank_by,
                             top_n=top_n)
    if merged is None:  # no hot cells, or values merge_hot_cells checks and refuses
        pa = merge_hot_cells(grid.iloc[hot_rows], eligible[hot_rows], counts=counts_hot, harm=harm_hot,
                             rank_by=rank_by, gi_z=z_hot, top_n=top_n)
        merged = ({c: pa[c].to_numpy() for c in pa.columns if c != pa.geometry.name}, np.asarray(pa.geometry.values))
    # one group, so in rank order: the first top_n with min_count crimes, renumbered, as plain columns
    data, polygons = merged
    chosen = np.flatnonzero(np.asarray(data["count"]) >= min_count)[:cfg.top_n]
    col = {c: np.asarray(data[c], dtype=object if isinstance(data[c], list) else None)[chosen] for c in ("count", "harm", "n_cells", "area_km2", "max_gi_z", "x_centroid",
                                                     "y_centroid", "cell_ids") if c in data}
    shapes = np.asarray(polygons, dtype=object)[chosen]
    n_pa = len(chosen)
    if n_pa == 0:
        res.patrol_areas = None
        n_found = len(_Links(grid, hot_rows).components(np.arange(len(hot_rows))))
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
    shared = {} if shared is None else shared
    if "pos_of_id" not in shared:  # the grid is the study area's, the same for every selection
        shared["pos_of_id"] = {cell_id: i for i, cell_id in enumerate(grid["cell_id"].tolist())}
    pos_of_id = shared["pos_of_id"]
    district_total = float(count_of_cell.sum())
    district_area = float(grid["cell_area_km2"].sum())
    # every patrol area's points at once: area of each cell, then of each point of the analysis period
    cell_ids = [p.split(";") for p in col["cell_ids"]]
    positions = [np.array([pos_of_id[i] for i in ids], dtype=np.int64) for ids in cell_ids]
    area_of_cell = np.full(len(grid) + 1, -1, dtype=np.int64)  # last entry: points outside the grid
    for j, pos in enumerate(positions):
        area_of_cell[pos] = j
    rows = np.flatnonzero(codes.in_months(cur_months))
    area_of_point = area_of_cell[cell[rows]]
    in_sel = codes.of_types(members)[rows]
    sel_area = np.where(in_sel, area_of_point, -1)
    streets, top_locations = _location_summaries(sel_area, codes, rows, n_pa)
    month_pos = codes.month_position(cur_months)[rows]
    has = sel_area >= 0
    monthly = np.bincount(sel_area[has] * len(cur_months) + month_pos[has],
                          minlength=n_pa * len(cur_months)).reshape(n_pa, len(cur_months))
    trends = _trends(monthly, cur_months)
    type_area, type_code, type_count = _ranked_counts(area_of_point, codes.crime_type[rows], len(codes.type_labels))
    types_of_area = {j: [] for j in range(n_pa)}
    for j, start, end in _group_bounds(type_area):
        types_of_area[j] = [(str(codes.type_labels[type_code[i]]), int(type_count[i])) for i in range(start, end)]
    if "namer" not in shared:
        shared["namer"] = AreaNamer(inputs.wards, inputs.town_centres, district_code=area.code,
                                    district_geometry=area.geometry)
    namer = shared["namer"]
    loc_area, loc_name, loc_count = _ranked_counts(sel_area, codes.name[rows], len(codes.names))
    places = {j: dominant_location([(codes.names[loc_name[i]], int(loc_count[i])) for i in range(s, e)],
                                   codes.is_street[loc_name[s:e]]) for j, s, e in _group_bounds(loc_area)}
    patrol_ids = cells["patrol_area_id"] if columns is None else columns["patrol_area_id"]
    patrol_id_of_cell = np.asarray(patrol_ids, dtype=object).copy()
    rows_out, type_rows, hour_frames = [], [], []
    for j in range(n_pa):
        ids, pos = cell_ids[j], positions[j]
        pid = stable_patrol_id(area.code, sel, ids, count_of_cell[pos])
        street, top_locs = streets[j], top_locations[j]
        names = namer.name(shapes[j], places.get(j, street))
        trend = trends[j]
        all_types = types_of_area[j]
        for ct, c in all_types:
            type_rows.append({"patrol_area_id": pid, "selection": sel, "district_code": area.code, "crime_type": ct,
                              "count": c})
        top = "; ".join(f"{ct} {c}" for ct, c in all_types[:3])
        harm_total = float(col["harm"][j]) if harm is not None else np.nan
        count = int(col["count"][j])
        share = count / district_total * 100 if district_total > 0 else np.nan
        share_area = float(col["area_km2"][j]) / district_area * 100 if district_area > 0 else np.nan
        n_sel = int(monthly[j].sum())
        if "datetime" in pts.columns and n_sel:
            sel_rows = rows[sel_area == j]
            prof = hour_of_week_profile(pts["datetime"].iloc[sel_rows],
                                               np.full(len(sel_rows), pid, dtype=object))
            prof = prof.rename(columns={"area_id": "patrol_area_id"})
            prof.insert(1, "selection", sel)
            hour_frames.append(prof)
            how = _busiest_hours(prof)
        elif "datetime" in pts.columns:
            how = "no crimes with a time"
        else:
            how = "not available (police.uk gives the month only)"
        rows_out.append({
            "patrol_area_id": pid, "selection": sel, "district_code": area.code, "district_name": area.name,
            "rank": j + 1, "rank_by": rank_by, "name": names["name"], "main_location": top_locs,
            "ward_code": names["ward_code"], "ward_name": names["ward_name"], "town_centre": names["town_centre"],
            "n_cells": int(col["n_cells"][j]), "cell_size_m": area.cell_size, "area_km2": float(col["area_km2"][j]),
            "hot_region_km2": float(region_km2[pos[0]]),
            "count": count, "share_of_district_pct": share, "share_of_district_area_pct": share_area,
            "pai": share / share_area if share_area else np.nan, "harm_total": harm_total,
            "harm_per_crime": harm_total / count if count and np.isfinite(harm_total) else np.nan,
            **trend, "top_crime_types": top, "hour_of_week": how, "peak_gi_z": float(col["max_gi_z"][j]),
            "x": float(col["x_centroid"][j]), "y": float(col["y_centroid"][j]), "cell_ids": col["cell_ids"][j],
            "geometry": shapes[j],
        })
        patrol_id_of_cell[pos] = pid
    if columns is None:
        res.cells["patrol_area_id"] = pd.array(patrol_id_of_cell, dtype=res.cells["patrol_area_id"].dtype)
    else:
        columns["patrol_area_id"] = pd.array(patrol_id_of_cell, dtype=columns["patrol_area_id"].dtype)
    data = {k: [r[k] for r in rows_out] for k in rows_out[0]}
    data["lon"], data["lat"] = _lonlat(np.array(data["x"], dtype=np.float64), np.array(data["y"], dtype=np.float64))
    out = gpd.GeoDataFrame(data, geometry="geometry", crs=BNG)
    res.patrol_areas = out
    res.patrol_counts = pd.DataFrame(type_rows)
    res.patrol_hours = pd.concat(hour_frames, ignore_index=True) if hour_frames else None


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
    mk = mann_kendall(monthly.astype(float))
    mk_zs, mk_ps, verdicts = mk["mk_z"].to_numpy(), mk["mk_p"].to_numpy(), mk["mk_trend"].to_numpy()
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
