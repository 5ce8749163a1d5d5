"""The fast paths of the per-area hotspot analysis give exactly what the plain computations give (issue 18).

Each test compares a shortcut with the straightforward computation it replaces, bit for bit:
the weighted DBSCAN against sklearn's, the shared space-time cube against a cube built per call,
the vectorised bridge test against a loop over the cells, the lexsorted unique locations against
``np.unique(axis=0)``, the Mann-Kendall test without all-missing months against the full series,
the exact binomial guard against scipy's tails bin by bin, the queen links sliced from the whole grid's
against the weights of the rows alone, and the grid-cell lookups per distinct value against the row-by-row mapping.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats
from shapely import box

from hotspots._errors import ValidationError
from hotspots.detect._bandwidth import _unique_locations
from hotspots.detect.clusters import _dbscan_labels
from hotspots.detect.emerging import _trend_z_p
from hotspots.detect.gistar import _exact_guard
from hotspots.detect.gistar_st import SpaceTimeCube, gi_star_space_time
from hotspots.detect.patrol import bridge_cells
from hotspots.detect.trend import mann_kendall
from hotspots.geo.grid import make_grid
from hotspots.geo.weights import grid_weights


@pytest.mark.parametrize("seed", range(12))
def test_dbscan_labels_are_sklearns(seed):
    from sklearn.cluster import DBSCAN

    rng = np.random.default_rng(seed)
    xy = np.unique(np.round(rng.normal(size=(int(rng.integers(50, 400)), 2)) * rng.uniform(80, 400)), axis=0)
    weight = rng.integers(1, 6, len(xy)).astype(float)
    eps, min_samples = float(rng.choice([50.0, 100.0, 150.0])), int(rng.integers(2, 25))
    expected = DBSCAN(eps=eps, min_samples=min_samples).fit(xy, sample_weight=weight).labels_
    assert np.array_equal(_dbscan_labels(xy, weight, eps, min_samples), expected)


def test_dbscan_labels_on_a_lattice_include_the_boundary():
    from sklearn.cluster import DBSCAN

    xy = np.array([(i * 50.0, j * 50.0) for i in range(12) for j in range(12)])  # neighbours exactly at eps
    weight = np.where(np.arange(len(xy)) % 7 == 0, 3.0, 1.0)
    for min_samples in (3, 5, 9, 13):
        expected = DBSCAN(eps=100.0, min_samples=min_samples).fit(xy, sample_weight=weight).labels_
        assert np.array_equal(_dbscan_labels(xy, weight, 100.0, min_samples), expected)


def test_space_time_cube_gives_the_same_results_and_checks_its_arguments():
    grid = make_grid(box(0, 0, 1500, 1000), 100, crs="EPSG:27700")
    w = grid_weights(grid, neighbourhood="queen", include_self=True)
    months = ["2024-01", "2024-02", "2024-04", "2024-05", "2024-06"]  # a gap: March missing
    rng = np.random.default_rng(3)
    cube = SpaceTimeCube(w, months, 1)
    for _ in range(3):
        x = rng.poisson(rng.uniform(0.05, 2.0), size=(len(months), len(grid))).astype(float)
        plain = gi_star_space_time(x, w, months=months, time_step=1)
        shared = gi_star_space_time(x, w, months=months, time_step=1, cube=cube)
        for a, b in zip(plain, shared):
            assert np.array_equal(a, b)
    with pytest.raises(ValidationError, match="cube was built for other"):
        gi_star_space_time(np.ones((4, len(grid))), w, months=months[:4], cube=cube)
    with pytest.raises(ValidationError, match="cube was built for other"):
        gi_star_space_time(np.ones((5, len(grid))), w.copy(), months=months, cube=cube)


def _bridge_loop(grid, hot, counts):
    """bridge_cells as a loop over the empty hot cells (the reference)."""
    keep = hot & (counts > 0)
    bridge = np.zeros(len(grid), dtype=bool)
    rows = np.flatnonzero(hot)
    queen = grid_weights(grid.iloc[rows], neighbourhood="queen", include_self=False).tocsr()
    local = np.full(len(grid), -1)
    local[rows] = np.arange(len(rows))
    for e in local[np.flatnonzero(hot & ~(counts > 0))]:
        nb = queen.indices[queen.indptr[e]:queen.indptr[e + 1]]
        nb = nb[keep[rows][nb]]
        if len(nb) >= 2:
            touching = queen[nb][:, nb].toarray() > 0
            np.fill_diagonal(touching, True)
            bridge[rows[e]] = not touching.all()
    return keep | bridge, bridge


@pytest.mark.parametrize("shape", ["square", "hex"])
def test_bridge_cells_match_the_loop(shape):
    grid = make_grid(box(0, 0, 2000, 1500), 100, shape=shape, crs="EPSG:27700")
    rng = np.random.default_rng(11)
    bridges = 0
    for _ in range(25):
        hot = rng.random(len(grid)) < rng.uniform(0.1, 0.9)
        counts = rng.poisson(rng.uniform(0.2, 2.0), len(grid)) * (rng.random(len(grid)) < 0.5)
        keep, bridge = bridge_cells(grid, hot, counts)
        ref_keep, ref_bridge = _bridge_loop(grid, hot, counts)
        assert np.array_equal(keep, ref_keep) and np.array_equal(bridge, ref_bridge)
        bridges += int(bridge.sum())
    assert bridges > 0  # the comparison covered cells that bridge


def test_unique_locations_match_numpy_unique_rows():
    rng = np.random.default_rng(5)
    x, y = np.round(rng.normal(size=3000), 1), np.round(rng.normal(size=3000), 1)
    unique, inverse = np.unique(np.column_stack([x, y]), axis=0, return_inverse=True)
    got_unique, got_inverse = _unique_locations(x, y)
    assert np.array_equal(got_unique, unique) and np.array_equal(got_inverse, inverse.reshape(-1))


def test_trend_without_all_missing_months_is_the_full_test():
    rng = np.random.default_rng(8)
    z = rng.normal(size=(200, 12)).round(1)
    z[:, [2, 3, 7]] = np.nan                       # months missing everywhere
    z[rng.random(z.shape) < 0.1] = np.nan          # and here and there
    mk = mann_kendall(z)
    mk_z, mk_p = _trend_z_p(z)
    assert np.array_equal(mk_z, mk["mk_z"].to_numpy(), equal_nan=True)
    assert np.array_equal(mk_p, mk["mk_p"].to_numpy(), equal_nan=True)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_exact_guard_tails_are_scipys(alternative):
    rng = np.random.default_rng(2)
    s = rng.poisson(2.0, size=(3, 400)).astype(float)
    share = rng.choice([4 / 400, 6 / 400, 9 / 400], size=(3, 400))
    z = rng.normal(size=(3, 400))
    p_normal = np.full(z.shape, 1e-9)  # smaller than any exact p: the exact p is returned
    total = float(s.sum())
    p, code = _exact_guard(z, p_normal, s, share, total, alternative, min_count=0)
    upper, lower = stats.binom.sf(s - 1, total, share), stats.binom.cdf(s, total, share)
    expected = {"two-sided": np.minimum(1.0, 2.0 * np.where(z > 0, upper, lower)), "greater": upper,
                "less": lower}[alternative]
    assert np.array_equal(p, np.maximum(p_normal, expected))
    assert set(np.unique(code)) <= {0, 1}


def test_space_time_cube_checks_its_weights():
    # checked as gi_star_space_time checks them: a sparse matrix with self-weights
    with pytest.raises(ValidationError):
        SpaceTimeCube(np.ones((3, 3)), ["2024-01"], 1)
    with pytest.raises(ValidationError):
        SpaceTimeCube(sp.csr_matrix(np.ones((3, 3)) - np.eye(3)), ["2024-01"], 1)  # no self-weights


@pytest.mark.parametrize("kind", ["square", "hex", "shuffled", "no_attrs"])
def test_queen_links_among_rows_are_those_of_the_rows_alone(kind):
    """The queen links sliced from the whole grid's (built once per lattice) are the subset's own weights."""
    from hotspots.detect.patrol import _queen_among

    area = box(0, 0, 1500, 1100)
    grid = make_grid(area, 100, shape="hex" if kind == "hex" else "square", crs="EPSG:27700")
    if kind == "shuffled":
        grid = grid.sample(frac=1.0, random_state=1)
    if kind == "no_attrs":
        grid = grid.copy()
        grid.attrs = {}
    rng = np.random.default_rng(3)
    for share in (0.1, 0.5, 1.0):
        rows = np.flatnonzero(rng.random(len(grid)) < share)
        got = _queen_among(grid, rows)
        want = grid_weights(grid.iloc[rows], neighbourhood="queen", include_self=False)
        got.sort_indices()
        assert got.shape == want.shape
        assert (got != want).nnz == 0 and got.nnz == want.nnz


def test_grid_cell_lookups_match_the_row_by_row_mapping_with_missing_values():
    """keep_cell and the ArcGIS fields (one lookup per distinct value) give what astype(str).map gives, NA included."""
    import pandas as pd

    from hotspots.stages._hotspots_outputs import (
        _CO_TYPE,
        _GI_BIN,
        arcgis_fields,
        keep_cell,
    )

    rng = np.random.default_rng(7)
    n = 300
    gi = rng.choice(list(_GI_BIN) + ["other", None], n).astype(object)
    mc = rng.choice(list(_CO_TYPE) + ["not_significant", "isolated", None], n).astype(object)
    for dtype in ("str", object):
        cells = pd.DataFrame({
            "count": rng.integers(0, 2, n), "gi_z": rng.normal(size=n), "gi_p": rng.random(n),
            "gi_class": pd.Series(gi, dtype=dtype), "moran_i": rng.normal(size=n), "moran_p": rng.random(n),
            "moran_class": pd.Series(mc, dtype=dtype),
            "patrol_area_id": pd.Series(rng.choice(["", "PA-1", None], n).astype(object), dtype=dtype),
            "emerging_class": pd.Series(rng.choice(["no pattern detected", "new hot spot", None], n).astype(object),
                                        dtype=dtype)})
        fields = arcgis_fields(cells)
        assert fields["Gi_Bin"].dtype == np.int16
        assert fields["Gi_Bin"].tolist() == cells["gi_class"].astype(str).map(_GI_BIN).fillna(0).astype(int).tolist()
        assert fields["COType"].tolist() == cells["moran_class"].astype(str).map(_CO_TYPE).fillna("").tolist()
        want = cells["count"].to_numpy() > 0
        want |= cells["gi_class"].astype(str).to_numpy() != "not_significant"
        want |= cells["moran_class"].astype(str).isin(list(_CO_TYPE)).to_numpy()
        want |= (cells["patrol_area_id"].fillna("").astype(str) != "").to_numpy()
        want |= (cells["emerging_class"].notna() & (cells["emerging_class"].astype(str) != "no pattern detected")).to_numpy()
        assert keep_cell(cells).tolist() == want.tolist()


# --------------------------------------------------------------------------- local Moran's counting kernel
def _moran_case(kind: str, seed: int):
    """Values and binary weights of a test case: a queen lattice, or a clipped (irregular) one."""
    from hotspots.detect import moran

    rng = np.random.default_rng(seed)
    grid = make_grid(box(0, 0, 1500, 1200), 100, crs="EPSG:27700")
    w = grid_weights(grid, neighbourhood="queen", include_self=False)
    if kind == "clipped":  # drop a random third of the cells: cardinalities 0 to 8, islands
        keep = np.flatnonzero(rng.random(len(grid)) > 0.33)
        w = w[keep][:, keep].tocsr()
    n = w.shape[0]
    values = {
        "poisson": rng.poisson(rng.uniform(0.1, 3.0), n),
        "sparse": (rng.random(n) < 0.05) * rng.integers(1, 30, n),
        "one": np.eye(1, n, int(rng.integers(n)))[0] * 7,
        "ties": rng.integers(0, 2, n) * 5,
    }
    return moran, w, values


@pytest.mark.parametrize("kind", ["queen", "clipped"])
@pytest.mark.parametrize("seed", range(3))
def test_moran_counting_kernel_equals_the_padded_kernel(kind, seed):
    """The p of the counting kernel (switches that change no sum left out) are the plain kernel's, for both streams."""
    moran, w, cases = _moran_case(kind, seed)
    w = w.tocsr()
    w.eliminate_zeros()
    w.sort_indices()
    card = np.diff(w.indptr)
    rs = sp.diags(np.where(card == 0, 0.0, 1.0 / np.maximum(card, 1))) @ w
    rs = rs.tocsr()
    cells = np.flatnonzero(card > 0)
    for name, x in cases.items():
        x = np.asarray(x, float)
        if np.ptp(x) == 0:
            continue
        z = (x - x.mean()) / x.std()
        scaling = (x.size - 1) / np.sum(z * z)
        observed = scaling * z * (rs @ z)
        for stage, perms in ((1, 199), (2, 1500), (3, 777)):
            ids = (moran._permutation_ids(x.size - 1, int(card.max()), perms, seed) if stage == 1
                   else moran._refine_ids(x.size - 1, int(card.max()), perms, seed, stage))
            subset = cells if stage == 1 else np.sort(np.random.default_rng(stage).choice(cells, 9, replace=False))
            fast = moran._moran_p_counting(x, z, rs, observed, scaling, subset, ids, perms, seed, stage)
            plain = moran._moran_p_padded(z, rs, observed, scaling, subset, ids, perms)
            done = ~np.isnan(fast)
            assert done.mean() > 0.9, (name, stage)
            np.testing.assert_array_equal(fast[done], plain[done], err_msg=f"{kind} {name} stage {stage}")


@pytest.mark.parametrize("seed", range(4))
def test_moran_switch_layout_without_the_idle_switches_counts_the_same(seed):
    """_count_at_least on a layout of only the switches that change a sum = on the full layout = brute force."""
    from hotspots.detect import moran

    rng = np.random.default_rng(seed)
    n, perms, card = int(rng.integers(5, 300)), int(rng.integers(1, 400)), int(rng.integers(1, 5))
    values = rng.poisson(0.4, n).astype(np.int64) if seed % 2 else np.zeros(n, np.int64)  # all zero too
    values[rng.integers(n)] += seed  # ties, and an all-equal map when seed == 0
    draws = moran._refine_ids(n - 1, card, perms, seed, 2)
    cells = np.sort(rng.choice(n, int(rng.integers(1, n)), replace=False))
    threshold = rng.integers(0, 3 * card, cells.size)
    flat = draws.ravel()
    full = moran._count_at_least(values, moran._SwitchLayout(cells, draws), threshold)
    lean = moran._count_at_least(values, moran._SwitchLayout(cells, draws, keep=values[flat] != values[flat + 1]),
                                 threshold)
    drawn = draws[None, :, :] + (draws[None, :, :] >= cells[:, None, None])
    sums = values[drawn].sum(axis=2)
    brute = ((sums >= threshold[:, None]).sum(axis=1), (sums <= threshold[:, None]).sum(axis=1))
    for got in (full, lean):
        np.testing.assert_array_equal(got[0], brute[0])
        np.testing.assert_array_equal(got[1], brute[1])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("spread", ["narrow", "wide"])
def test_moran_block_counts_by_histogram_or_by_sort_are_brute_force(seed, spread):
    """_count_at_least counts by a cumulative histogram when the sums span few values, by a sort when they
    span many (wide: values up to 1e6); both are the counts of each cell's sums."""
    from hotspots.detect import moran

    rng = np.random.default_rng(seed)
    n, perms, card = int(rng.integers(20, 400)), int(rng.integers(5, 300)), int(rng.integers(1, 9))
    top = 3 if spread == "narrow" else 1_000_000
    values = rng.integers(-top if seed % 2 else 0, top, n).astype(np.int64)
    draws = moran._refine_ids(n - 1, card, perms, seed, 2)
    cells = np.sort(rng.choice(n, int(rng.integers(1, n)), replace=False))
    drawn = draws[None, :, :] + (draws[None, :, :] >= cells[:, None, None])
    sums = values[drawn].sum(axis=2)
    # thresholds at sums that occur (ties) and beyond every sum
    threshold = np.where(rng.random(cells.size) < 0.7, sums[np.arange(cells.size), rng.integers(perms, size=cells.size)],
                         rng.integers(-card * top - 2, card * top + 2, cells.size))
    flat = draws.ravel()
    layout = moran._SwitchLayout(cells, draws, keep=values[flat] != values[flat + 1])
    got = moran._count_at_least(values, layout, threshold)
    np.testing.assert_array_equal(got[0], (sums >= threshold[:, None]).sum(axis=1))
    np.testing.assert_array_equal(got[1], (sums <= threshold[:, None]).sum(axis=1))
    direct = moran._count_direct(values, draws, cells, threshold)
    reference = moran._count_direct_reference(values, draws, cells, threshold)
    for a, b in zip(direct + got, reference + reference):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- emerging: months read once
def test_emerging_months_read_once_are_the_period_index_reading():
    import pandas as pd

    from hotspots.detect.emerging import (
        _month_ordinals_labels,
        emerging_hotspot_classes,
    )

    cases = [["2024-11", "2024-12", "2025-02"], ("2023-01-15", "2023-03"), [pd.Timestamp("2024-05-01"), "2024-06"]]
    for months in cases:
        periods = pd.PeriodIndex(pd.Series(list(months)).astype(str).str.slice(0, 7), freq="M")
        for _ in range(2):  # the cached reading too
            ordinal, labels = _month_ordinals_labels(months)
            assert ordinal.tolist() == (periods.year * 12 + periods.month).tolist()
            assert labels.tolist() == periods.astype(str).tolist()
            assert not ordinal.flags.writeable and not labels.flags.writeable
    with pytest.raises(ValidationError, match="could not be read as months"):
        emerging_hotspot_classes(np.zeros((2, 2)), np.ones((2, 2)), months=["2024-01", "not a month"])
    z = np.array([[3.0, 3.5, 4.0], [np.nan, -3.0, -3.1]])
    p = np.where(np.isnan(z), np.nan, 0.001)
    out = emerging_hotspot_classes(z, p, months=["2024-11", "2024-12", "2025-01"])
    assert out["final_month"].tolist() == ["2025-01", "2025-01"]


# --------------------------------------------------------------------------- KDE: kernel transforms kept, quantiles
def test_kde_kernel_spectrum_kept_gives_scipys_convolution_bit_for_bit():
    from scipy import signal

    from hotspots.detect import kde

    rng = np.random.default_rng(5)
    kde._SPECTRA.clear()
    for _ in range(3):  # the second and third pass use the kept transforms
        for rows, cols, h in ((30, 41, 250.0), (12, 9, 100.0), (30, 41, 297.3), (64, 64, 250.0)):
            image = rng.poisson(0.3, (rows, cols)).astype(float) * rng.random((rows, cols))
            kernel = kde._quartic_kernel(50.0, h)
            kept = kde._fftconvolve_same(image, kernel, kernel_key=("quartic", 50.0, h))
            assert np.array_equal(kept, signal.fftconvolve(image, kernel, mode="same"))
            assert np.array_equal(kept, kde._fftconvolve_same(image, kernel))
    assert len(kde._SPECTRA) == 4 and not next(iter(kde._SPECTRA.values())).flags.writeable
    # the density through the kept transforms is the density computed afresh
    x, y = rng.uniform(0, 3000, 400), rng.uniform(0, 2000, 400)
    grid = make_grid(box(0, 0, 3000, 2000), 50, crs="EPSG:27700")
    first = kde.kde_cells(grid, np.column_stack([x, y]), 50.0)
    again = kde.kde_cells(grid, np.column_stack([x, y]), 50.0)
    kde._SPECTRA.clear()
    fresh = kde.kde_cells(grid, np.column_stack([x, y]), 50.0)
    assert np.array_equal(first[0], fresh[0]) and np.array_equal(again[0], fresh[0]) and first[1:] == fresh[1:]


def _binned_density_masked(x, y, w, h, cell, node_x0, node_y0, n_x, n_y):
    """The binned quartic density as first written: every corner's nodes masked to the padded lattice."""
    import math

    from hotspots.detect import kde

    margin = int(math.ceil(h / cell)) + 1
    bx0, by0 = node_x0 - margin * cell, node_y0 - margin * cell
    nbx, nby = n_x + 2 * margin, n_y + 2 * margin
    fx, fy = (x - bx0) / cell, (y - by0) / cell
    ix, iy = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
    tx, ty = fx - ix, fy - iy
    binned = np.zeros(nby * nbx)
    for dx, dy, share in ((0, 0, (1 - tx) * (1 - ty)), (1, 0, tx * (1 - ty)),
                          (0, 1, (1 - tx) * ty), (1, 1, tx * ty)):
        jx, jy = ix + dx, iy + dy
        ok = (jx >= 0) & (jx < nbx) & (jy >= 0) & (jy < nby)
        binned += np.bincount(jy[ok] * nbx + jx[ok], weights=(w * share)[ok], minlength=nby * nbx)
    density = kde._fftconvolve_same(binned.reshape(nby, nbx), kde._quartic_kernel(cell, h).copy())
    return np.clip(density[margin:margin + n_y, margin:margin + n_x], 0.0, None)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("outside", [False, True])
def test_kde_density_by_radius_is_the_masked_sum_over_each_radius(seed, outside):
    """Points grouped by a stable sort of their radius, unmasked binning when all are inside the padded
    lattice: the same floats as masking each radius's points and each corner."""
    from hotspots.detect import kde

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    x, y = rng.uniform(0, 2000, n), rng.uniform(0, 1500, n)
    if outside:  # some points far beyond the lattice and its margin
        x[: n // 3 + 1] += rng.choice([-1.0, 1.0], n // 3 + 1) * 20_000
    w = rng.integers(1, 4, n).astype(float)
    radius = 100.0 * kde.LADDER ** rng.integers(0, 5, n).astype(float)
    got = kde._density_by_radius(x, y, w, radius, 50.0, 25.0, 25.0, 40, 30)
    want = np.zeros((30, 40))
    for h in np.unique(radius):
        mine = radius == h
        want += _binned_density_masked(x[mine], y[mine], w[mine], float(h), 50.0, 25.0, 25.0, 40, 30)
    assert np.array_equal(got, want)
    assert np.array_equal(kde._density_by_radius(x[:0], y[:0], w[:0], radius[:0], 50.0, 25.0, 25.0, 40, 30),
                          np.zeros((30, 40)))
    assert not kde._quartic_kernel(50.0, 100.0).flags.writeable


@pytest.mark.parametrize("seed", range(4))
def test_weighted_quantiles_from_one_sort_are_the_single_ones(seed):
    from hotspots.detect.kde import _weighted_quantile, _weighted_quantiles

    def one(values, weights, q):  # the plain computation, one sort per quantile
        order = np.argsort(values, kind="stable")
        v, w = values[order], weights[order]
        v, w = v[w > 0], w[w > 0]
        return float(np.interp(q * w.sum(), np.cumsum(w) - 0.5 * w, v))

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    values = np.round(rng.normal(size=n) * 3) if seed % 2 else rng.normal(size=n)  # ties for odd seeds
    weights = rng.integers(0, 4, n).astype(float)
    weights[0] = 1.0
    qs = (0.5, 0.1, 0.9, 0.25, 0.75, 0.0, 1.0)
    assert _weighted_quantiles(values, weights, qs) == [one(values, weights, q) for q in qs]
    assert [_weighted_quantile(values, weights, q) for q in qs] == [one(values, weights, q) for q in qs]


@pytest.mark.parametrize("seed", range(5))
def test_shares_in_top_from_one_call_are_the_single_ones(seed):
    from hotspots.detect._area_steps import _share_in_top, _shares_in_top

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 500))
    counts = [np.zeros(n), rng.poisson(0.2, n).astype(float), np.full(n, 3.0), np.eye(1, n)[0]][seed % 4]
    shares = (0.01, 0.05, 0.10)
    got = _shares_in_top(counts, shares)
    want = [_share_in_top(counts, s) for s in shares]
    assert np.array_equal(got, want, equal_nan=True) and all(type(v) is float for v in got)


# --------------------------------------------------------------------------- clusters as arrays
@pytest.mark.parametrize("seed", range(6))
def test_cluster_arrays_are_cluster_locations_tables(seed):
    """The arrays the hotspots stage takes (_cluster_labels without tables, _cluster_parts) = cluster_locations'."""
    from hotspots.detect._bandwidth import _unique_locations as unique
    from hotspots.detect.clusters import (
        _cluster_labels,
        _cluster_parts,
        cluster_locations,
    )

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 600))
    x = np.round(rng.normal(0, 400, n) / 10) * 10 + 500_000
    y = np.round(rng.normal(0, 300, n) / 10) * 10 + 200_000
    xy, inverse = unique(x, y)  # one row per location, sorted: the stage's call
    counts = np.bincount(inverse).astype(float)
    if seed % 3 == 2:
        counts = counts * 0.5  # not whole numbers
    method = "dbscan" if seed < 4 else "hdbscan"
    min_crimes = int(rng.integers(3, 30)) if seed else 10_000  # seed 0: no cluster (hdbscan may find none too)
    locations, clusters = cluster_locations(xy[:, 0], xy[:, 1], counts=counts, method=method, eps_m=150.0,
                                            min_crimes=min_crimes)
    got_xy, got_counts, labels, table = _cluster_labels(xy[:, 0], xy[:, 1], counts, method, 150.0, min_crimes, None,
                                                        frame=False)
    assert table is None
    assert np.array_equal(got_xy, locations[["x", "y"]].to_numpy()) and np.array_equal(labels, locations["cluster"])
    assert np.array_equal(got_counts, counts + 0.0)
    if not (labels >= 0).any():
        assert len(clusters) == 0
        return
    parts = _cluster_parts(got_xy, got_counts, labels, 150.0)
    for column in ("cluster", "n_locations", "x_centroid", "y_centroid", "area_km2"):
        assert np.array_equal(parts[column], clusters[column].to_numpy()), column
    assert np.array_equal(parts["n_crimes"], clusters["n_crimes"].to_numpy(np.float64))
    assert all(a.equals_exact(b, 0) for a, b in zip(parts["geometry"], clusters.geometry))


# --------------------------------------------------------------------------- space-time Gi* per (sum, size)
@pytest.mark.parametrize("shape", ["square", "hex"])
@pytest.mark.parametrize("time_step", [0, 1, 2])
def test_space_time_gi_by_sum_and_size_is_the_bin_by_bin_computation(shape, time_step):
    """z, p, q and test of the per-(sum, size) path are the element-wise path's, bit for bit."""
    grid = make_grid(box(0, 0, 1300, 900), 100, shape=shape, crs="EPSG:27700")
    w = grid_weights(grid, neighbourhood="queen", include_self=True)
    months = ["2024-01", "2024-02", "2024-04", "2024-05", "2024-06", "2024-07"]
    rng = np.random.default_rng(time_step)
    fast = SpaceTimeCube(w, months, time_step)
    plain = SpaceTimeCube(w, months, time_step)
    assert fast.by_size is not None
    plain.by_size = None  # the element-wise path
    n = len(grid)
    cases = [rng.poisson(rng.uniform(0.05, 3.0), size=(len(months), n)) for _ in range(3)]
    cases += [np.zeros((len(months), n)), np.eye(len(months), n) * 4, np.full((len(months), n), 2.0),
              (rng.random((len(months), n)) < 0.01) * 40]
    for x in cases:
        x = np.asarray(x, float)
        got = gi_star_space_time(x, w, months=months, time_step=time_step, cube=fast)
        want = gi_star_space_time(x, w, months=months, time_step=time_step, cube=plain)
        for a, b in zip(got, want):
            assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    # not counts: the element-wise path for both
    x = rng.random((len(months), n))
    for a, b in zip(gi_star_space_time(x, w, months=months, time_step=time_step, cube=fast),
                    gi_star_space_time(x, w, months=months, time_step=time_step, cube=plain)):
        assert np.array_equal(a, b)


def test_space_time_sizes_are_none_when_the_variance_is_not_a_function_of_the_size():
    from hotspots.detect.gistar_st import _size_codes

    w_sum = np.array([[3.0, 3.0, 4.0], [4.0, 6.0, 6.0]])
    root = np.array([[1.0, 1.0, 2.0], [2.0, 3.0, 3.0]])
    codes, sizes, r, flat = _size_codes(w_sum, root, np.zeros(w_sum.shape, bool))
    assert not flat.any()
    assert np.array_equal(sizes[codes], w_sum.ravel()) and np.array_equal(r[codes], root.ravel())
    root[1, 2] = 3.5
    assert _size_codes(w_sum, root, np.zeros(w_sum.shape, bool)) is None


@pytest.mark.parametrize("seed", range(6))
def test_bh_by_value_is_fdrs_q_bin_by_bin(seed):
    """q per distinct p (with its number of bins) = fdr's q of the expanded bins, through either of fdr's paths."""
    from hotspots.detect.gistar_st import _bh_by_value
    from hotspots.fdr import _bh_q_values

    rng = np.random.default_rng(seed)
    n_values = [1, 3, 40, 700, 5000, 20000][seed]  # few distinct (fdr's look-up) to many (fdr's sort)
    values = np.unique(np.r_[rng.random(n_values) ** 4, [1.0, 0.0][: seed % 3]])
    rng.shuffle(values)
    count = rng.integers(1, [2, 50, 400, 5, 2, 1][seed] + 1, values.size)
    bins = np.repeat(np.arange(values.size), count)
    rng.shuffle(bins)
    want = _bh_q_values(values[bins])
    got = _bh_by_value(values, count)[bins]
    assert np.array_equal(got, want)
