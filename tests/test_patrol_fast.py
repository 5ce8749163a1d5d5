"""The fast paths of the patrol-area steps against their plain reference implementations (issue 18)."""

from __future__ import annotations

import numpy as np
import pytest
from shapely import Polygon, box

from hotspots.detect import patrol as pt
from hotspots.detect._patrol_build import _chosen_groups
from hotspots.detect.patrol import core_cells, merge_hot_cells
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


def _chosen(grid, rows, shapes=None, **values):
    g = grid.iloc[rows]
    return _chosen_groups(pt._Links(grid, rows), cell_ids=g["cell_id"].astype(str).to_numpy(),
                          area=g["cell_area_km2"].to_numpy(np.float64), geoms=np.asarray(g.geometry.values),
                          rows=rows, shapes=shapes, **values)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("rank_by", ["count", "harm"])
def test_chosen_groups_are_merge_hot_cells_areas(seed, rank_by):
    """The describing's merge: merge_hot_cells' areas with min_count crimes, the first top_n, the same sums and shapes."""
    rng = np.random.default_rng(100 + seed)
    grid = _grid(rng, size=100.0 if seed % 2 else 200.0)
    n = len(grid)
    rows = np.flatnonzero(rng.random(n) < 0.35)
    counts = rng.poisson(3, len(rows)).astype(np.int64)
    harm = None if seed % 4 == 3 else rng.gamma(2.0, 50.0, len(rows))
    if rank_by == "harm" and harm is None:
        harm = rng.gamma(2.0, 50.0, len(rows))
    z = rng.normal(2, 1, len(rows))
    if seed % 5 == 0:
        z = np.round(z)  # ties
    top_n = None if seed % 3 == 0 else 5
    min_count = [0, 3, 12][seed % 3]
    shapes = {}
    got = _chosen(grid, rows, shapes, counts=counts, harm=harm, z=z, rank_by=rank_by, min_count=min_count, top_n=top_n)
    want = merge_hot_cells(grid.iloc[rows], np.full(len(rows), "hot_95"), counts=counts, harm=harm, gi_z=z,
                           rank_by=rank_by)
    want = want[want["count"].to_numpy() >= min_count].iloc[:top_n]
    assert got["n_groups"] == len(pt._Links(grid, rows).components(np.arange(len(rows))))
    for column, mine in [("count", "count"), ("n_cells", "n_cells"), ("area_km2", "area_km2"), ("max_gi_z", "max_gi_z"),
                         ("x_centroid", "x_centroid"), ("y_centroid", "y_centroid"), ("cell_ids", "cell_ids")] \
            + ([("harm", "harm")] if harm is not None else []):
        expected = want[column].to_numpy()
        np.testing.assert_array_equal(np.asarray(got[mine]).astype(expected.dtype), expected, err_msg=column)
    assert [p.wkb for p in got["polygons"]] == [p.wkb for p in want.geometry]
    ids = grid["cell_id"].astype(str).to_numpy()
    assert [";".join(ids[rows[m]]) for m in got["members"]] == list(want["cell_ids"])
    again = _chosen(grid, rows, shapes, counts=counts, harm=harm, z=z, rank_by=rank_by, min_count=min_count,
                    top_n=top_n)  # the shapes drawn before are reused: the same objects
    assert all(a is b for a, b in zip(again["polygons"], got["polygons"]))


def test_chosen_groups_refuse_what_merge_hot_cells_checks():
    grid = make_grid(box(0, 0, 500, 100), 100, crs="EPSG:27700")
    rows = np.arange(5)
    ok = {"counts": np.ones(5), "harm": None, "z": np.ones(5), "rank_by": "count", "min_count": 1, "top_n": 5}
    assert _chosen(grid, rows, **ok) is not None
    assert _chosen(grid, rows, **{**ok, "counts": np.array([1, -1, 0, 0, 0])}) is None
    assert _chosen(grid, rows, **{**ok, "z": np.array([1, np.nan, 0, 0, 0])}) is None
    assert _chosen(grid, rows, **{**ok, "harm": np.array([1, np.inf, 0, 0, 0])}) is None
    assert _chosen(grid, rows, **{**ok, "rank_by": "size"}) is None
    one = _chosen(grid, rows[2:3], **{**ok, "counts": np.ones(1), "z": np.ones(1)})
    assert one["n_groups"] == 1 and one["cell_ids"] == ["sq100_r000_c002"]
    none = _chosen(grid, rows, **{**ok, "min_count": 10})
    assert none["n_groups"] == 1 and len(none["polygons"]) == 0


@pytest.mark.parametrize("seed", range(8))
def test_bridges_on_squares_by_offsets_are_the_pair_lookups(seed):
    """The square-lattice test of a bridge (neighbours above and below, or left and right) is the pair lookup's."""
    rng = np.random.default_rng(seed)
    grid = _grid(rng, clipped=seed % 2 == 0)
    rows = np.flatnonzero(rng.random(len(grid)) < rng.uniform(0.2, 0.9))
    links = pt._Links(grid, rows)
    row, col, shape = pt._grid_lattice(grid)
    for _ in range(5):
        bearing = rng.random(len(rows)) < rng.uniform(0.2, 0.8)
        np.testing.assert_array_equal(pt._bridges(links, bearing, row[rows], col[rows], shape), pt._bridges(links, bearing))
