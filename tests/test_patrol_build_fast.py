"""The patrol areas' fast route (issue 18, third round) against the route it replaces.

:func:`hotspots.detect._patrol_build.describe_patrol_areas` (links among the hot cells found once, the
merge of the kept groups only, the period's points by cell, the tables built from typed columns) is
compared with the former route, kept here as the reference (core_cells, bridge_cells, merge_hot_cells on
the grid's rows, Mann-Kendall tables, tables from dicts), on the real data (every selection of two
districts) and on edge cases; the evaluation's patrol areas (the period's points only, a grid made before)
against the former loop; and the small helpers (class masks, trends, the namer kept across calls).
"""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from hotspots.detect import _patrol_build as pb
from hotspots.detect.naming import AreaNamer, dominant_location, stable_patrol_id
from hotspots.detect.patrol import bridge_cells, core_cells, demote_empty_hot_cells, merge_hot_cells
from hotspots.detect.results import SelectionResult
from hotspots.detect.trend import mann_kendall
from hotspots.schema import ASB, BNG


# --------------------------------------------------------------------------- the former route (reference)
def _reference_trends(monthly, months):
    if len(monthly) == 0:
        return []
    half = len(months) // 2
    mk = mann_kendall(monthly.astype(float))
    out = []
    for row, series in enumerate(monthly):
        h1 = float(series[:half].sum())
        h2 = float(series[half:half * 2].sum()) if len(months) % 2 == 0 else float(series[-half:].sum())
        change = (h2 - h1) / h1 * 100.0 if h1 > 0 else np.nan
        word = {"increasing": "rising", "decreasing": "falling"}.get(str(mk["mk_trend"].iloc[row]), "no clear trend")
        if np.isfinite(change):
            word += f" (H2 vs H1 {change:+.0f}%)"
        out.append({"count_h1": int(h1), "count_h2": int(h2), "change_h2_vs_h1_pct": change,
                    "mk_z": float(mk["mk_z"].iloc[row]), "mk_p": float(mk["mk_p"].iloc[row]), "trend": word})
    return out


def _reference_describe(res, inputs, grid, cell, members, sel, area, cfg):
    """describe_patrol_areas before this round, on ``res.cells`` (from the public steps)."""
    from hotspots.detect._points import _group_bounds, _location_summaries, _lonlat, _ranked_counts

    cells = res.cells
    cls = cells["gi_class"].to_numpy(dtype=object)
    eligible = np.where(np.isin(cls, cfg.patrol_classes), cls, "not_significant")
    asb_only = all(m == ASB for m in members)
    rank_by = "harm" if cfg.rank_by == "harm" and not asb_only else "count"
    harm = None if asb_only else cells["harm"].to_numpy()
    gi_z, count_of_cell = cells["gi_z"].to_numpy(), cells["count"].to_numpy()
    core, region_km2 = core_cells(grid, eligible != "not_significant", gi_z, cfg.max_area_km2)
    eligible = np.where(core, eligible, "not_significant")
    held, _ = bridge_cells(grid, eligible != "not_significant", count_of_cell)
    eligible = np.where(held, eligible, "not_significant")
    min_count = cfg.min_count if cfg.min_count is not None else len(inputs.current)
    hot_rows = np.flatnonzero(np.char.startswith(eligible.astype(str), "hot"))
    pa = merge_hot_cells(grid.iloc[hot_rows], eligible[hot_rows], counts=count_of_cell[hot_rows],
                         harm=None if harm is None else harm[hot_rows], rank_by=rank_by, gi_z=gi_z[hot_rows],
                         top_n=cfg.top_n if rank_by == "count" else None)
    chosen = np.flatnonzero(pa["count"].to_numpy() >= min_count)[:cfg.top_n]
    pa = pa.iloc[chosen]
    if len(pa) == 0:
        return None
    codes, cur_months = inputs.codes, list(inputs.current)
    pos_of_id = {cell_id: i for i, cell_id in enumerate(grid["cell_id"].tolist())}
    cell_ids = [p.split(";") for p in pa["cell_ids"]]
    positions = [np.array([pos_of_id[i] for i in ids], dtype=np.int64) for ids in cell_ids]
    area_of_cell = np.full(len(grid) + 1, -1, dtype=np.int64)
    for j, pos in enumerate(positions):
        area_of_cell[pos] = j
    rows = np.flatnonzero(codes.in_months(cur_months))
    area_of_point = area_of_cell[cell[rows]]
    sel_area = np.where(codes.of_types(members)[rows], area_of_point, -1)
    n_pa = len(pa)
    streets, top_locations = _location_summaries(sel_area, codes, rows, n_pa)
    month_pos = codes.month_position(cur_months)[rows]
    has = sel_area >= 0
    monthly = np.bincount(sel_area[has] * len(cur_months) + month_pos[has],
                          minlength=n_pa * len(cur_months)).reshape(n_pa, len(cur_months))
    trends = _reference_trends(monthly, cur_months)
    type_area, type_code, type_count = _ranked_counts(area_of_point, codes.crime_type[rows], len(codes.type_labels))
    types_of_area = {j: [] for j in range(n_pa)}
    for j, s, e in _group_bounds(type_area):
        types_of_area[j] = [(str(codes.type_labels[type_code[i]]), int(type_count[i])) for i in range(s, e)]
    namer = AreaNamer(inputs.wards, inputs.town_centres, district_code=area.code, district_geometry=area.geometry)
    loc_area, loc_name, loc_count = _ranked_counts(sel_area, codes.name[rows], len(codes.names))
    places = {j: dominant_location([(codes.names[loc_name[i]], int(loc_count[i])) for i in range(s, e)],
                                   codes.is_street[loc_name[s:e]]) for j, s, e in _group_bounds(loc_area)}
    shapes = np.asarray(pa.geometry.values)
    district_total, district_area = float(count_of_cell.sum()), float(grid["cell_area_km2"].sum())
    ids_of_cell = np.asarray(cells["patrol_area_id"], dtype=object).copy()
    rows_out, type_rows = [], []
    for j in range(n_pa):
        pid = stable_patrol_id(area.code, sel, cell_ids[j], count_of_cell[positions[j]])
        names = namer.name(shapes[j], places.get(j, streets[j]))
        type_rows += [{"patrol_area_id": pid, "selection": sel, "district_code": area.code, "crime_type": ct,
                       "count": c} for ct, c in types_of_area[j]]
        harm_total = float(pa["harm"].iloc[j]) if harm is not None else np.nan
        count = int(pa["count"].iloc[j])
        share = count / district_total * 100 if district_total > 0 else np.nan
        share_area = float(pa["area_km2"].iloc[j]) / district_area * 100 if district_area > 0 else np.nan
        rows_out.append({
            "patrol_area_id": pid, "selection": sel, "district_code": area.code, "district_name": area.name,
            "rank": j + 1, "rank_by": rank_by, "name": names["name"], "main_location": top_locations[j],
            "ward_code": names["ward_code"], "ward_name": names["ward_name"], "town_centre": names["town_centre"],
            "n_cells": int(pa["n_cells"].iloc[j]), "cell_size_m": area.cell_size,
            "area_km2": float(pa["area_km2"].iloc[j]), "hot_region_km2": float(region_km2[positions[j][0]]),
            "count": count, "share_of_district_pct": share, "share_of_district_area_pct": share_area,
            "pai": share / share_area if share_area else np.nan, "harm_total": harm_total,
            "harm_per_crime": harm_total / count if count and np.isfinite(harm_total) else np.nan,
            **trends[j], "top_crime_types": "; ".join(f"{ct} {c}" for ct, c in types_of_area[j][:3]),
            "hour_of_week": "not available (police.uk gives the month only)",
            "peak_gi_z": float(pa["max_gi_z"].iloc[j]), "x": float(pa["x_centroid"].iloc[j]),
            "y": float(pa["y_centroid"].iloc[j]), "cell_ids": pa["cell_ids"].iloc[j], "geometry": shapes[j]})
        ids_of_cell[positions[j]] = pid
    data = {k: [r[k] for r in rows_out] for k in rows_out[0]}
    data["lon"], data["lat"] = _lonlat(np.array(data["x"], dtype=np.float64), np.array(data["y"], dtype=np.float64))
    return gpd.GeoDataFrame(data, geometry="geometry", crs=BNG), pd.DataFrame(type_rows), ids_of_cell


def _same_frame(a, b):
    assert type(a) is type(b)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert [str(t) for t in a.dtypes] == [str(t) for t in b.dtypes]
    if isinstance(a, gpd.GeoDataFrame):
        assert [g.wkb for g in a.geometry] == [g.wkb for g in b.geometry] and a.crs == b.crs


# --------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def real(real_context):
    from hotspots.stages import hotspots as hs

    cfg = hs.hotspot_config(real_context.settings)
    inputs = hs.build_inputs(real_context, cfg)
    return inputs, cfg


def test_describe_matches_the_former_route_on_real_data(real):
    from hotspots.detect.analysis import analyse_area

    inputs, cfg = real
    from hotspots.geo import grid as gridmod

    compared = 0
    for district in sorted(inputs.districts, key=lambda d: d.geometry.area)[:2]:
        result = analyse_area(inputs, district, cfg, patrol=True)  # the fast route, from the columns
        cell = gridmod.assign_to_cells(inputs.codes.x, inputs.codes.y, result.grid)
        for sel, members in inputs.selections.items():
            got = result.selections[sel]
            cells = got.cells.copy()
            cells["patrol_area_id"] = pd.array([""] * len(cells), dtype=cells["patrol_area_id"].dtype)
            ref = SelectionResult(cells=cells, clusters=None, cluster_shapes=None, emerging=None, stability={})
            want = _reference_describe(ref, inputs, result.grid, cell, members, sel, district, cfg)
            assert (want is None) == (got.patrol_areas is None), sel
            if want is None:
                assert (got.cells["patrol_area_id"] == "").all()
                continue
            _same_frame(got.patrol_areas, want[0])
            _same_frame(got.patrol_counts, want[1])
            assert got.cells["patrol_area_id"].tolist() == list(want[2])
            compared += len(want[0])
    assert compared >= 5


def test_evaluation_patrol_areas_match_the_former_loop(real):
    """The period's points only, assigned near each district, and a grid given or made: the former areas."""
    from hotspots.detect.gistar import gi_star
    from hotspots.evaluation.hotspot_areas import detected_patrol_areas
    from hotspots.geo.grid import assign_to_cells, make_grid
    from hotspots.geo.weights import grid_weights

    inputs, cfg = real
    sel = next(iter(inputs.selections))
    districts = sorted(inputs.districts, key=lambda d: d.geometry.area)[:3]
    period = tuple(inputs.comparison) or tuple(inputs.current)
    inputs = dataclasses.replace(inputs, current=period, districts=districts, _codes=inputs._codes)
    codes, members = inputs.codes, inputs.selections[sel]
    want = []
    for area in districts:  # the loop before this round: every point assigned, a cells table described
        grid = make_grid(area.geometry, area.cell_size, shape=cfg.shape, crs=BNG)
        cell = assign_to_cells(codes.x, codes.y, grid)
        cur = codes.in_months(period) & codes.of_types(members) & (cell >= 0)
        counts = np.bincount(cell[cur], minlength=len(grid)).astype(float)
        harm = np.bincount(cell[cur], weights=np.nan_to_num(codes.harm[cur]), minlength=len(grid))
        gi = demote_empty_hot_cells(grid, gi_star(counts, grid_weights(grid, neighbourhood="queen",
                                                                        include_self=True)), counts)
        cells = gpd.GeoDataFrame({**{c: grid[c].array for c in grid.columns}, "count": counts.astype(np.int64),
                                  "harm": harm, "gi_z": gi["gi_z"].to_numpy(),
                                  "gi_class": gi["gi_class"].astype(str).to_numpy(dtype=object),
                                  "patrol_area_id": np.full(len(grid), "", dtype=object)},
                                 index=grid.index, geometry="geometry", crs=BNG)
        res = SelectionResult(cells=cells, clusters=None, cluster_shapes=None, emerging=None, stability={})
        out = _reference_describe(res, inputs, grid, cell, members, sel, area, cfg)
        if out is not None:
            want.append(out[0])
    want = gpd.GeoDataFrame(pd.concat(want, ignore_index=True), geometry="geometry", crs=BNG)
    grids = {d.code: make_grid(d.geometry, d.cell_size, shape=cfg.shape, crs=BNG) for d in districts[:2]}
    for given in (None, grids):
        got, _ = detected_patrol_areas(inputs, cfg, sel, grids=given)
        _same_frame(got, want)


def test_brief_evaluation_areas_are_the_full_tables_columns(real):
    """brief=True (what detected_patrol_treatment asks for): the full table's ids, names, districts, counts and
    shapes, every selection and district, ASB (ranked by count, with a note) included."""
    from hotspots.evaluation.hotspot_areas import detected_patrol_areas

    inputs, cfg = real
    period = tuple(inputs.comparison) or tuple(inputs.current)
    inputs = dataclasses.replace(inputs, current=period, _codes=inputs._codes)
    compared = 0
    for sel in inputs.selections:
        full, full_notes = detected_patrol_areas(inputs, cfg, sel)
        brief, brief_notes = detected_patrol_areas(inputs, cfg, sel, brief=True)
        assert brief_notes == full_notes
        assert list(brief.columns) == ["patrol_area_id", "name", "district_code", "count", "geometry"]
        _same_frame(brief, full[list(brief.columns)])
        compared += len(brief)
    assert compared > 20


# --------------------------------------------------------------------------- helpers
def test_trends_match_the_mann_kendall_tables():
    rng = np.random.default_rng(4)
    for n_months in (1, 2, 3, 4, 7, 12):
        months = [f"2024-{m:02d}" for m in range(1, n_months + 1)]
        monthly = rng.poisson(rng.uniform(0, 6, (9, 1)), (9, n_months))
        monthly[0] = 0
        monthly[1] = np.arange(n_months) * 3  # rising
        monthly[2] = monthly[1][::-1]  # falling
        assert pb._trends(monthly, months) == _reference_trends(monthly, months) or \
            _same_records(pb._trends(monthly, months), _reference_trends(monthly, months))
    assert pb._trends(np.zeros((0, 3), dtype=np.int64), ["a", "b", "c"]) == []


def _same_records(a, b):
    pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b), check_exact=True)
    return True


@pytest.mark.parametrize("kind", ["text", "object", "categorical"])
def test_class_masks_are_the_former_isin_and_prefix(kind):
    values = ["hot_99", "hot_95", "not_significant", "cold_99", "hot_90", None, "hot_95"]
    for classes in (("hot_99", "hot_95"), ("hot_99",), ("hot_99", "cold_99", "not_significant"), ()):
        if kind == "text":
            column = pd.array(values, dtype=pd.Series([""]).dtype)
        elif kind == "object":
            column = np.array(values, dtype=object)
        else:
            column = pd.Series(pd.Categorical(values))
        cls = np.asarray(column, dtype=object)
        eligible = np.where(np.isin(cls, classes), cls, "not_significant")
        hot, hot_text = pb._class_masks(column, classes)
        np.testing.assert_array_equal(hot, eligible != "not_significant")
        np.testing.assert_array_equal(hot_text, np.char.startswith(eligible.astype(str), "hot"))


def test_points_in_cells_kept_or_not_are_the_direct_lookup(real):
    inputs, _ = real
    codes = inputs.codes
    rng = np.random.default_rng(2)
    cell = rng.integers(-1, 300, len(codes.x))
    shared = {}
    for months in (list(inputs.current), list(inputs.current)[:3], []):
        for share in (0.0, 0.05, 1.0):
            area_of_cell = np.where(rng.random(301) < share, 0, -1)
            area_of_cell[-1] = -1
            rows = np.flatnonzero(codes.in_months(months))
            want = rows[area_of_cell[cell[rows]] >= 0]
            np.testing.assert_array_equal(pb._points_in_cells(codes, cell, months, area_of_cell, shared), want)
            np.testing.assert_array_equal(pb._points_in_cells(codes, cell, months, area_of_cell, None), want)
    other = cell.copy()
    other[:1000] = 5  # another grid's cells: not the kept ones
    area_of_cell = np.full(301, -1)
    area_of_cell[5] = 0
    rows = np.flatnonzero(codes.in_months(list(inputs.current)))
    np.testing.assert_array_equal(pb._points_in_cells(codes, other, list(inputs.current), area_of_cell, shared),
                                  rows[area_of_cell[other[rows]] >= 0])


def test_the_namer_is_kept_for_the_same_wards_town_centres_and_district(real):
    inputs, _ = real
    area = inputs.districts[0]
    first = pb._namer(inputs.wards, inputs.town_centres, area)
    assert pb._namer(inputs.wards, inputs.town_centres, area) is first
    assert pb._namer(inputs.wards.copy(), inputs.town_centres, area) is not first  # other wards: made again
    moved = dataclasses.replace(area, geometry=area.geometry.buffer(-10))
    assert pb._namer(inputs.wards, inputs.town_centres, moved) is not first


@pytest.mark.parametrize("before", [[""] * 20, ["x"] * 5 + ["", "y"] * 7 + [None]])
def test_patrol_ids_set_in_arrow_are_those_set_through_objects(before):
    text = pd.Series([""]).dtype
    column = pd.array(before, dtype=text)
    positions, pids = [np.array([3, 1]), np.array([7]), np.array([10, 12, 11])], ["a", "b", "c"]
    res = SelectionResult(cells=None, clusters=None, cluster_shapes=None, emerging=None, stability={})
    for given in ([], positions):
        columns = {"patrol_area_id": column}
        pb._set_patrol_ids(res, columns, given, pids[:len(given)])
        want = np.asarray(column, dtype=object).copy()
        for pos, pid in zip(given, pids):
            want[pos] = pid
        got = columns["patrol_area_id"]
        pd.testing.assert_extension_array_equal(got, pd.array(want, dtype=text))
        assert type(got) is type(column) and got.dtype == column.dtype
    assert column.tolist() == pd.array(before, dtype=text).tolist()  # the column given is not changed
