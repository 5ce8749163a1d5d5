"""Fast paths of the per-area statistics (issue 18, third round) against the code they replace, bit for bit.

The space-time Gi* kept as tables per (neighbourhood sum, size) key and the emerging classes counted from
the keys, against the full z/q cubes and :func:`_emerging_classes`; the runs ending at the final month
without a loop over the months; the Mann-Kendall S and ties from all pairs at once against lag by lag.
Real data (one district, every selection) and edge cases (NaN, ties, one month, constant series).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from shapely import box

from hotspots.detect import _area_steps as steps
from hotspots.detect import emerging as em
from hotspots.detect import trend
from hotspots.detect.gistar import GI_MIN_COUNT
from hotspots.detect.gistar_st import SpaceTimeCube, _gi_star_space_time, _Keyed, gi_star_space_time
from hotspots.geo.grid import make_grid
from hotspots.geo.weights import grid_weights


@pytest.fixture(scope="module")
def real(real_context):
    from hotspots.detect.analysis import _MonthlyCounts
    from hotspots.geo import grid as gridmod
    from hotspots.stages import hotspots as hs

    cfg = hs.hotspot_config(real_context.settings)
    inputs = hs.build_inputs(real_context, cfg)
    district = min(inputs.districts, key=lambda d: d.geometry.area)
    grid = gridmod.make_grid(district.geometry, district.cell_size, shape=cfg.shape, crs="EPSG:27700")
    codes = inputs.codes
    cell = gridmod.assign_to_cells(codes.x, codes.y, grid)
    weights = grid_weights(grid, neighbourhood="queen", include_self=True)
    monthly = _MonthlyCounts(inputs, codes, cell, len(grid))
    counts = {sel: monthly.by_month((cell >= 0) & codes.of_types(members))
              for sel, members in inputs.selections.items()}
    return inputs, district, grid, weights, counts


def _plain(values, weights, months, time_step, test, min_count, cube, *, keyed):
    """The route before the keyed path: always the four cubes."""
    return _gi_star_space_time(values, weights, months, time_step, test, min_count, cube, keyed=False)


def test_emerging_from_keys_is_emerging_from_the_cubes_on_real_data(real, monkeypatch):
    inputs, district, grid, weights, counts = real
    keyed_used = 0
    for sel, c in counts.items():
        got_pattern, got_table = steps._emerging(inputs, grid, weights, c, district, sel, shared={})
        with monkeypatch.context() as m:
            m.setattr(steps, "_gi_star_space_time", _plain)
            ref_pattern, ref_table = steps._emerging(inputs, grid, weights, c, district, sel, shared={})
        assert got_pattern.dtype == ref_pattern.dtype and np.array_equal(got_pattern, ref_pattern)
        pd.testing.assert_frame_equal(got_table, ref_table, check_exact=True)
        assert [str(t) for t in got_table.dtypes] == [str(t) for t in ref_table.dtypes]
        keyed_used += 1
    assert keyed_used == len(counts)


def test_keyed_space_time_gi_expands_to_the_cubes(real):
    inputs, _, _, weights, counts = real
    months = list(inputs.months_present)
    cube = SpaceTimeCube(weights, months, 1)
    observed = [j for j, m in enumerate(inputs.months_all) if m in set(months)]
    for c in list(counts.values())[:3]:
        x = np.ascontiguousarray(c.T[observed])
        found = _gi_star_space_time(x, weights, months, 1, "auto", GI_MIN_COUNT, cube, keyed=True)
        assert isinstance(found, _Keyed)
        z, _, q, _ = gi_star_space_time(x, weights, months=months, time_step=1, cube=cube)
        assert found.z[found.inverse].tobytes() == z.tobytes()
        assert found.q[found.inverse].tobytes() == q.tobytes()


def _keyed_case(rng, n_cells, n_months, nan_keys=False):
    n_keys = int(rng.integers(1, 40))
    z = rng.normal(0, 2.5, n_keys)
    z[rng.random(n_keys) < 0.15] = 0.0  # significant with z = 0: neither hot nor cold
    q = np.where(rng.random(n_keys) < 0.4, rng.uniform(0, 0.05, n_keys), rng.uniform(0, 1, n_keys))
    q[z == 0] = 0.01
    if nan_keys:
        gone = rng.random(n_keys) < 0.3
        z[gone] = np.nan
        q[gone] = np.nan
    inverse = rng.integers(0, n_keys, (n_months, n_cells))
    return _Keyed(z, q, inverse)


@pytest.mark.parametrize("seed", range(10))
def test_emerging_classes_from_keys_are_those_of_the_cubes(seed):
    rng = np.random.default_rng(seed)
    months = [f"{2020 + i // 12}-{i % 12 + 1:02d}" for i in range(int(rng.integers(1, 30)))]
    n_obs = int(rng.integers(1, len(months) + 1))
    columns = np.sort(rng.choice(len(months), n_obs, replace=False))
    found = _keyed_case(rng, int(rng.integers(1, 300)), n_obs, nan_keys=seed % 3 == 0)
    got = steps._emerging_classes_keyed(found, months, columns)
    ref = steps._emerging_classes(found.z[found.inverse].T, found.q[found.inverse].T, months, columns)
    assert got.keys() == ref.keys()
    for key in ref:
        assert got[key].dtype == ref[key].dtype, key
        np.testing.assert_array_equal(got[key], ref[key], err_msg=key)


@pytest.mark.parametrize("seed", range(8))
def test_runs_at_the_final_month_are_the_loops(seed):
    rng = np.random.default_rng(seed)
    n, t = int(rng.integers(1, 200)), int(rng.integers(1, 40))
    flag = rng.random((n, t)) < rng.uniform(0.1, 0.9)
    linked = rng.random((n, t)) < 0.85
    linked[:, 0] = False
    final = rng.integers(0, t, n)
    got = em._run_at(flag, linked, final)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, em._run_at_reference(flag, linked, final))


@pytest.mark.parametrize("seed", range(8))
def test_mann_kendall_from_all_pairs_is_lag_by_lag(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    m, t = int(rng.integers(1, 150)), int(rng.integers(1, 35))
    x = np.round(rng.normal(0, 2, (m, t)), int(rng.integers(0, 2)))  # rounded: many ties
    x[rng.random((m, t)) < 0.2] = np.nan
    x[0] = 1.5  # constant row
    if m > 1:
        x[1] = np.nan  # nothing observed
    same, s = trend._ties_and_s(x)
    same_ref, s_ref = trend._ties_and_s_by_lag(x)
    np.testing.assert_array_equal(s, s_ref)
    observed = ~np.isnan(x)
    np.testing.assert_array_equal(same[observed], same_ref[observed])
    got = trend.mann_kendall(x)
    with monkeypatch.context() as mp:
        mp.setattr(trend, "_MANN_KENDALL_PAIRS_MAX", -1)  # the lag-by-lag route
        ref = trend.mann_kendall(x)
    pd.testing.assert_frame_equal(got, ref, check_exact=True)


def test_emerging_classes_keyed_on_a_small_grid_with_a_gap():
    grid = make_grid(box(0, 0, 1500, 1000), 100, crs="EPSG:27700")
    w = grid_weights(grid, neighbourhood="queen", include_self=True)
    months = ["2024-01", "2024-02", "2024-04", "2024-05", "2024-06"]
    rng = np.random.default_rng(5)
    cube = SpaceTimeCube(w, months, 1)
    for scale in (0.05, 0.5, 3.0):
        x = rng.poisson(scale, size=(len(months), len(grid))).astype(float)
        x[:, :6] += 6.0  # a hot corner
        found = _gi_star_space_time(x, w, months, 1, "auto", GI_MIN_COUNT, cube, keyed=True)
        assert isinstance(found, _Keyed)
        z, _, q, _ = gi_star_space_time(x, w, months=months, cube=cube)
        columns = np.arange(len(months))
        got = steps._emerging_classes_keyed(found, months, columns)
        ref = steps._emerging_classes(z.T, q.T, months, columns)
        for key in ref:
            np.testing.assert_array_equal(got[key], ref[key], err_msg=key)


# --------------------------------------------------------------------------- local Moran: standardised weights reused
def test_local_moran_with_reused_weights_is_the_fresh_computation(real, monkeypatch):
    from hotspots.detect import moran

    inputs, _, grid, weights, counts = real
    monkeypatch.setattr(moran, "_STANDARDISED", [])
    for sel in ("All crime", "Burglary"):
        x = counts[sel].sum(axis=1)
        got = moran.local_moran(x, weights, permutations=199, seed=7)
        got_again = moran.local_moran(x, weights.copy(), permutations=199, seed=7)  # equal weights: reused
        with monkeypatch.context() as m:
            m.setattr(moran, "_row_standardised", moran._row_standardised_reference)
            ref = moran.local_moran(x, weights, permutations=199, seed=7)
        for frame in (got, got_again):
            pd.testing.assert_frame_equal(frame, ref, check_exact=True)
            assert frame.attrs == ref.attrs
    assert len(moran._STANDARDISED) == 1


def test_standardised_weights_follow_a_change_of_weights(monkeypatch):
    import scipy.sparse as sp

    from hotspots.detect import moran

    monkeypatch.setattr(moran, "_STANDARDISED", [])
    grid = make_grid(box(0, 0, 800, 600), 100, crs="EPSG:27700")
    w = grid_weights(grid, neighbourhood="queen", include_self=True).tocsr()
    x = np.random.default_rng(2).poisson(1.0, len(grid)).astype(float)
    first = moran.local_moran(x, w, permutations=99, seed=1, correction=None)
    changed = w.copy()
    changed.data[::5] = 2.0  # other weights, the same pattern: must not reuse
    second = moran.local_moran(x, changed, permutations=99, seed=1, correction=None)
    with monkeypatch.context() as m:
        m.setattr(moran, "_row_standardised", moran._row_standardised_reference)
        ref_first = moran.local_moran(x, w, permutations=99, seed=1, correction=None)
        ref_second = moran.local_moran(x, changed, permutations=99, seed=1, correction=None)
    pd.testing.assert_frame_equal(first, ref_first, check_exact=True)
    pd.testing.assert_frame_equal(second, ref_second, check_exact=True)
    isolated = sp.csr_matrix((len(grid), len(grid)))  # no neighbours at all, then the grid again
    moran._row_standardised(isolated)
    again, island = moran._row_standardised(w)
    ref, ref_island = moran._row_standardised_reference(w)
    assert (again != ref).nnz == 0 and np.array_equal(island, ref_island)


# --------------------------------------------------------------------------- cluster shapes frame
def test_cluster_shapes_frame_is_the_geodataframe_of_before():
    import shapely

    polygons = shapely.buffer(shapely.points(np.arange(4.0) * 500, np.zeros(4)), 60)
    for k in (0, 1, 4):
        columns = {"cluster_id": np.arange(k), "count": np.arange(k) * 3, "n_locations": np.ones(k, dtype=np.int64),
                   "label": np.array([f"On or near {i}" for i in range(k)], dtype=object)}
        got = steps._shapes_frame(columns, polygons[:k])
        ref = steps._shapes_frame_reference(columns, polygons[:k])
        assert type(got) is type(ref) and got.crs == ref.crs and got.geometry.name == ref.geometry.name
        assert list(got.columns) == list(ref.columns) and [str(t) for t in got.dtypes] == [str(t) for t in ref.dtypes]
        pd.testing.assert_frame_equal(got, ref, check_exact=True)
        assert got.index.equals(ref.index)


# --------------------------------------------------------------------------- permutation draws all at once
@pytest.mark.parametrize("seed", range(6))
def test_choice_rows_are_numpys_rows(seed):
    from hotspots.detect import _draws

    rng = np.random.default_rng(100 + seed)
    for _ in range(12):
        population = int(rng.choice([2, 3, 9, 10, 50, 1_512, 9_999, 10_001, 12_281, 30_000]))
        size = int(rng.integers(1, min(population - 1, 8) + 1))
        permutations, draw_seed = int(rng.integers(1, 600)), int(rng.integers(0, 2**31))
        got = _draws.choice_rows(population, size, permutations, draw_seed)
        assert got is not None and got.dtype == np.int64
        np.testing.assert_array_equal(got, _draws._rows_reference(population, size, permutations, draw_seed))


@pytest.mark.parametrize("size", [1, 2, 5, 8, 12, 13, 20])
def test_rows_with_repeat_are_those_found_by_sorting_each_row(size):
    from hotspots.detect import _draws

    rng = np.random.default_rng(size)
    ids = rng.integers(0, 3 * size + 2, size=(500, size), dtype=np.int64)
    ordered = np.sort(ids, axis=1)
    want = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
    got = _draws.rows_with_repeat(ids)
    np.testing.assert_array_equal(got, want)
    assert size == 1 or 0 < want.size < 500


def test_choice_rows_leave_other_cases_to_numpy(monkeypatch):
    from hotspots.detect import _draws, moran

    assert _draws.choice_rows(8, 8, 10, 1) is None  # the whole population (a step without a draw)
    assert _draws.choice_rows(20_000, 500, 10, 1) is None  # numpy's tail shuffle
    # a draw numpy would reject: left to numpy
    assert _draws._bounded(np.array([[0]], dtype=np.uint64), np.array([2], dtype=np.uint64)) is None
    moran._permutation_ids.cache_clear()
    fast = moran._permutation_ids(1_400, 8, 300, 9).copy()
    monkeypatch.setattr(moran, "choice_rows", lambda *a: None)
    moran._permutation_ids.cache_clear()
    try:
        np.testing.assert_array_equal(fast, moran._permutation_ids(1_400, 8, 300, 9))
    finally:
        moran._permutation_ids.cache_clear()


@pytest.mark.parametrize("seed", range(6))
def test_direct_counts_from_the_changes_are_the_gathered_sums(seed):
    from hotspots.detect import moran

    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 3000))
    card = int(min(rng.integers(1, 9), n - 1))
    scale = 10**9 if seed == 5 else 1  # large counts: the 64-bit changes
    values = rng.poisson(rng.uniform(0.1, 4.0), n).astype(np.int64) * scale
    perms = int(rng.integers(1, 2500))
    draws = moran._refine_ids(n - 1, card, perms, seed, 2)
    cells = np.sort(rng.choice(n, int(rng.integers(1, min(n, 30) + 1)), replace=False))
    threshold = rng.integers(0, 3 * card + 1, cells.size) * scale
    got = moran._count_direct(values, draws, cells, threshold)
    ref = moran._count_direct_reference(values, draws, cells, threshold)
    for a, b in zip(got, ref):
        assert a.dtype == b.dtype == np.int64
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("seed", range(5))
def test_cluster_hulls_at_once_are_the_hulls_one_by_one(seed):
    import shapely

    from hotspots.detect import clusters

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    xy = np.unique(np.round(rng.normal(size=(n, 2)) * 300), axis=0)
    k = int(rng.integers(1, 12))
    labels = rng.integers(-1, k, len(xy))
    labels[: min(k, len(xy))] = np.arange(min(k, len(xy)))  # every cluster has a location (one-point ones too)
    labels = np.where(labels >= min(k, len(xy)), -1, labels)
    parts = clusters._cluster_parts(xy, np.ones(len(xy)), labels, 100.0)
    hulls = clusters._hulls_reference(xy, labels, parts["n_locations"])
    ref = shapely.buffer(hulls, 50.0)
    assert [shapely.to_wkb(g) for g in parts["geometry"]] == [shapely.to_wkb(g) for g in ref]


# --------------------------------------------------------------------------- street context: records per map point
@pytest.mark.parametrize("seed", range(6))
def test_point_counts_are_the_groupby(seed):
    from hotspots.detect import tables

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 3000)) if seed else 0
    spots = rng.integers(0, max(1, n // 5 + 1), n)
    x = np.round(530_000 + spots * 37.5 + rng.integers(0, 2, n) * (seed % 2), 2)  # repeats, some split
    y = np.round(210_000 + (spots % 17) * 12.25, 2)
    name = (spots % 13 + rng.integers(0, 2, n) * (seed == 3)).astype(np.int64)  # one point, two names
    if n > 2:
        x[1], y[1], name[1] = x[0], y[0], name[0]
    got = tables._point_counts(x, y, name)
    ref = tables._point_counts_reference(x, y, name)
    pd.testing.assert_frame_equal(got, ref, check_exact=True)
    assert got.index.equals(ref.index)


def test_street_context_on_real_data_is_the_groupby_route(real, monkeypatch):
    import shapely

    from hotspots.detect import tables

    inputs, district, _, _, _ = real
    codes = inputs.codes
    rows = np.flatnonzero(codes.in_months(inputs.current))
    patrol = [shapely.buffer(shapely.Point(*district.geometry.representative_point().coords[0]), 400.0)]
    got = tables.street_context(codes, rows, district.geometry, patrol)
    with monkeypatch.context() as m:
        m.setattr(tables, "_point_counts", tables._point_counts_reference)
        ref = tables.street_context(codes, rows, district.geometry, patrol)
    assert len(got[0]) and len(got[1])
    for a, b in zip(got, ref):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
