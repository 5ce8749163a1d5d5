"""The fast paths of the patrol-area steps against their plain reference implementations (issue 18)."""

from __future__ import annotations

import numpy as np
import pytest
from shapely import Polygon, box

from hotspots.detect import patrol as pt
from hotspots.detect.patrol import core_cells, merge_hot_cells, merged_hot_rows
from hotspots.geo.grid import make_grid


def _reference_core_cells(grid, hot, value, max_area_km2):
    """core_cells as it was: peel level by level (the lowest cells of each too-large part dropped)."""
    area = grid["cell_area_km2"].to_numpy(float)
    value = np.nan_to_num(np.asarray(value, float), nan=-np.inf)
    keep = np.zeros(len(grid), dtype=bool)
    region = np.full(len(grid), np.nan)
    start = np.flatnonzero(hot)
    if len(start) == 0:
        return keep, region
    links = pt._Links(grid, start)
    area, value = area[start], value[start]
    for comp in links.components(np.arange(len(start))):
        region[start[comp]] = area[comp].sum()
    pending = np.arange(len(start))
    while len(pending):
        rests = []
        for comp in links.components(pending):
            if area[comp].sum() <= max_area_km2 + 1e-9:
                keep[start[comp]] = True
                continue
            rest = comp[value[comp] > value[comp].min()]
            if len(rest):
                rests.append(rest)
        pending = np.sort(np.concatenate(rests)) if rests else np.array([], dtype=np.int64)
    return keep, region


def _grid(rng, size=100.0, clipped=True):
    if clipped:  # an irregular area, so boundary cells have odd areas
        angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
        radius = rng.uniform(600, 1500, 9)
        area = Polygon(np.column_stack([2000 + radius * np.cos(angles), 2000 + radius * np.sin(angles)]))
    else:
        area = box(0, 0, 2000, 1500)
    return make_grid(area, size, crs="EPSG:27700")


@pytest.fixture
def count_fallbacks(monkeypatch):
    calls = {"fast": 0, "fallback": 0}
    original = pt._peeled_keep

    def counted(*args):
        out = original(*args)
        calls["fallback" if out is None else "fast"] += 1
        return out

    monkeypatch.setattr(pt, "_peeled_keep", counted)
    return calls


@pytest.mark.parametrize("seed", range(40))
def test_core_cells_matches_level_by_level_peeling(seed, count_fallbacks):
    rng = np.random.default_rng(seed)
    grid = _grid(rng, clipped=seed % 2 == 0)
    n = len(grid)
    hot = rng.random(n) < rng.uniform(0.3, 0.9)
    value = rng.normal(size=n)
    if seed % 3 == 0:  # ties: whole levels dropped at once
        value = np.round(value * 2)
    if seed % 5 == 0:
        value[rng.random(n) < 0.1] = np.nan
    for cap in (0.0, 0.004, 0.05, 0.137, 0.5, 3.0):
        got = core_cells(grid, hot, value, cap)
        want = _reference_core_cells(grid, hot, value, cap)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    assert count_fallbacks["fast"] > 0


def test_core_cells_near_the_limit_falls_back(count_fallbacks):
    """A part whose area is the limit (sums of 0.01 km2 cells) is left to the level-by-level peeling."""
    grid = make_grid(box(0, 0, 1000, 1000), 100, crs="EPSG:27700")
    rng = np.random.default_rng(3)
    value = rng.permutation(len(grid)).astype(float)
    hot = np.ones(len(grid), bool)
    for cap in (0.03, 0.07, 0.3):
        got = core_cells(grid, hot, value, cap)
        want = _reference_core_cells(grid, hot, value, cap)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    assert count_fallbacks["fallback"] == 3


def test_core_cells_edge_cases():
    grid = make_grid(box(0, 0, 500, 100), 100, crs="EPSG:27700")
    for hot, value, cap in [
        (np.zeros(5, bool), np.arange(5.0), 0.02),
        (np.ones(5, bool), np.full(5, 2.0), 0.02),  # one level: the whole region dropped
        (np.ones(5, bool), np.array([1.0, 5, 9, 5, 1]), 0.03),
        (np.ones(5, bool), np.array([np.nan, 5, np.nan, 5, 1]), 0.015),
        (np.array([True, True, False, True, True]), np.array([3.0, 1, 0, 1, 3]), 0.015),
        (np.ones(5, bool), np.array([1.0, 5, 9, 5, 1]), np.inf),
        (np.ones(5, bool), np.array([1.0, 5, 9, 5, 1]), np.nan),
    ]:
        got = core_cells(grid, hot, value, cap)
        want = _reference_core_cells(grid, hot, value, cap)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("rank_by", ["count", "harm"])
def test_merged_hot_rows_matches_merge_hot_cells(seed, rank_by):
    rng = np.random.default_rng(100 + seed)
    grid = _grid(rng, size=100.0 if seed % 2 else 200.0)
    n = len(grid)
    rows = np.flatnonzero(rng.random(n) < 0.35)
    counts = rng.poisson(3, len(rows)).astype(np.int64)
    harm = rng.gamma(2.0, 50.0, len(rows))
    z = rng.normal(2, 1, len(rows))
    top_n = None if seed % 3 == 0 else 5
    got = merged_hot_rows(grid, rows, counts=counts, harm=harm, gi_z=z, rank_by=rank_by, top_n=top_n)
    want = merge_hot_cells(grid.iloc[rows], np.full(len(rows), "hot_95"), counts=counts, harm=harm, gi_z=z,
                           rank_by=rank_by, top_n=top_n)
    data, polygons = got
    assert list(data) == [c for c in want.columns if c != "geometry"]
    for column in data:
        expected = want[column].to_numpy()
        actual = np.asarray(data[column], dtype=object if isinstance(data[column], list) else None)
        assert actual.dtype == expected.dtype or column in ("patrol_area_id", "cell_ids", "group"), column
        np.testing.assert_array_equal(actual.astype(expected.dtype), expected, err_msg=column)
    assert [p.wkb for p in polygons] == [p.wkb for p in want.geometry]


def test_merged_hot_rows_refuses_what_merge_hot_cells_checks():
    grid = make_grid(box(0, 0, 500, 100), 100, crs="EPSG:27700")
    rows = np.arange(5)
    ok = {"counts": np.ones(5), "harm": None, "gi_z": np.ones(5), "rank_by": "count", "top_n": 5}
    assert merged_hot_rows(grid, rows, **ok) is not None
    assert merged_hot_rows(grid, rows[:0], **{**ok, "counts": np.ones(0), "gi_z": np.ones(0)}) is None
    assert merged_hot_rows(grid, rows, **{**ok, "counts": np.array([1, -1, 0, 0, 0])}) is None
    assert merged_hot_rows(grid, rows, **{**ok, "gi_z": np.array([1, np.nan, 0, 0, 0])}) is None
    assert merged_hot_rows(grid, rows, **{**ok, "harm": np.array([1, np.inf, 0, 0, 0])}) is None
