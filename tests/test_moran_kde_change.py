"""Issue 13 (part 2): local Moran that can reach significance after FDR, the adaptive KDE bandwidth,
and CSP change flags that allow for overdispersion -- on small synthetic data."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from shapely.geometry import box

import hotspots.detect.moran as moran_module
from hotspots.detect._bandwidth import adaptive_radii, neighbour_count
from hotspots.detect.kde import kde_cells, kde_quartic
from hotspots.detect.moran import local_moran
from hotspots.geo.aggregate import Period
from hotspots.geo.grid import make_grid
from hotspots.outliers.change_table import change_table

BNG = "EPSG:27700"
SIGNIFICANT = ("hotspot_HH", "coldspot_LL", "outlier_HL", "outlier_LH")


def queen(size: int) -> sp.csr_matrix:
    band = sp.diags([1.0, 1.0], [-1, 1], shape=(size, size))
    return sp.kron(band + sp.identity(size), band + sp.identity(size), format="csr") - sp.identity(size * size)


# --------------------------------------------------------------------------- local Moran
def _planted_map(seed: int, size: int = 40) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(0.3, size * size).astype(float)
    mid = size // 2
    centre = [r * size + c for r in (mid, mid + 1, mid + 2) for c in (mid, mid + 1, mid + 2)]
    counts[centre] = 8.0
    return counts, centre


def test_first_stage_alone_cannot_reach_fdr_but_the_sequential_test_can():
    counts, centre = _planted_map(1)
    w = queen(40)
    plain = local_moran(counts, w, refine=False)
    assert plain["moran_p"].min() == pytest.approx(1 / 1000)
    assert not plain["moran_class"].isin(SIGNIFICANT).any()         # the p-value floor: 999 draws, 1,600 cells
    seq = local_moran(counts, w)
    meta = seq.attrs["local_moran"]
    rounds = meta["refine_rounds"]
    assert rounds[0][0] == math.ceil(math.ceil(1600 / 0.05) / 16)          # 2,000 draws, then 4x for those at the floor
    assert all(b[0] == 4 * a[0] or b[0] == 32_000 for a, b in itertools.pairwise(rounds))
    assert meta["second_stage_permutations"] == rounds[-1][0] <= 32_000
    assert 0 < meta["refined_cells"] < 100
    assert seq["moran_p"].min() < 1e-3 and seq["moran_class"].isin(SIGNIFICANT).sum() >= 3
    hh = set(np.flatnonzero(seq["moran_class"].to_numpy() == "hotspot_HH"))
    assert 22 * 40 + 22 in hh or 21 * 40 + 21 in hh                # the middle of the planted block
    assert hh <= set(centre) | {i for c in centre for i in w[c].indices}  # nothing far from it
    # reproducible
    pd.testing.assert_frame_equal(seq, local_moran(counts, w))


def test_second_stage_p_is_the_plain_permutation_p_with_the_second_stage_draws(monkeypatch):
    counts, _ = _planted_map(2, size=20)
    w = queen(20)
    seq = local_moran(counts, w)
    meta = seq.attrs["local_moran"]
    first_round = meta["refine_rounds"][0][0]
    refined = local_moran(counts, w, refine=False)["moran_p"].to_numpy() <= moran_module.REFINE_BELOW
    assert refined.sum() == meta["refined_cells"] == meta["refine_rounds"][0][1]
    monkeypatch.setattr(moran_module, "_permutation_ids",
                        lambda population, size, perms, seed: moran_module._refine_ids(population, size, perms, seed, 2))
    direct = local_moran(counts, w, permutations=first_round, refine=False)["moran_p"].to_numpy()
    # cells refined once (not at that run's floor) keep the p of the first refining run
    once = refined & (direct > 1.0 / (first_round + 1) * (1 + 1e-9))
    np.testing.assert_allclose(seq["moran_p"].to_numpy()[once], direct[once], atol=1e-15)
    assert once.sum() >= 3


def test_second_stage_draws_are_without_replacement_and_uniform():
    ids = moran_module._refine_ids(50, 8, 20_000, 3)
    ordered = np.sort(ids, axis=1)
    assert not (ordered[:, 1:] == ordered[:, :-1]).any()
    freq = np.bincount(ids.ravel(), minlength=50) / ids.size
    assert np.abs(freq - 1 / 50).max() < 0.002
    assert not np.array_equal(ids[:10], moran_module._permutation_ids(50, 8, 10, 3))


def test_sequential_moran_false_positive_rate_on_noise_is_at_most_nominal():
    w = queen(20)
    maps_with_any = 0
    for seed in range(20):
        noise = np.random.default_rng(100 + seed).poisson(0.5, 400).astype(float)
        result = local_moran(noise, w)
        maps_with_any += bool(result["moran_class"].isin(SIGNIFICANT).any())
    # BH controls the family-wise rate at alpha = 0.05 when nothing is there: expect ~1 of 20 maps;
    # 4 or more would happen with probability < 0.02 if the rate were 5%
    assert maps_with_any <= 3


# --------------------------------------------------------------------------- KDE
def brute_force_adaptive(x, y, w, h, cx, cy):
    d = np.hypot(x[None, :] - np.asarray(cx)[:, None], y[None, :] - np.asarray(cy)[:, None])
    hh = h[None, :]
    k = np.where(d < hh, 3 / (math.pi * hh * hh) * np.clip(1 - d**2 / hh**2, 0, None) ** 2, 0.0)
    return (k * w).sum(axis=1) * 1e6


def test_adaptive_kde_matches_a_direct_sum_with_the_same_radii():
    rng = np.random.default_rng(4)
    x = np.r_[rng.normal(3_000, 300, 600), rng.uniform(0, 10_000, 150)]
    y = np.r_[rng.normal(4_000, 300, 600), rng.uniform(0, 8_000, 150)]
    grid = make_grid(box(0, 0, 10_000, 8_000), 50, crs=BNG)
    res = kde_quartic(x, y, bandwidth="adaptive", grid=grid, cell_size=50)
    k = neighbour_count(x.size)
    from hotspots.detect.kde import kde_bandwidth

    h_ref, _ = kde_bandwidth(x, y)
    radii = adaptive_radii(x, y, np.ones(x.size), k=k, h_min=100, h_max=h_ref)
    assert radii.min() == 100 and radii.max() == pytest.approx(h_ref) and len(np.unique(radii)) > 3
    assert "adaptive" in res.bandwidth_reason and f"k = {k}" in res.bandwidth_reason
    sample = np.random.default_rng(0).choice(len(grid), 300, replace=False)
    expected = brute_force_adaptive(x, y, np.ones(x.size), radii, grid["x_centre"].to_numpy()[sample],
                                    grid["y_centre"].to_numpy()[sample])
    # linear binning, error O((cell / h)^2): up to ~6% of the peak at the two-cell minimum radius
    np.testing.assert_allclose(res.density[sample], expected, atol=0.08 * expected.max())
    # per-point radii given directly give the same density; it still integrates to the number of points
    again = kde_quartic(x, y, bandwidth=radii, grid=grid)
    np.testing.assert_allclose(again.density, res.density, rtol=1e-12, atol=1e-12)
    assert res.density.sum() * 0.0025 == pytest.approx(x.size, rel=0.01)


def test_adaptive_kde_on_points_at_cell_centres_is_exact():
    grid = make_grid(box(0, 0, 4_000, 4_000), 100, crs=BNG)
    x = np.r_[np.full(40, 1_050.0), 3_050.0, 2_550.0]
    y = np.r_[np.full(40, 1_050.0), 3_050.0, 550.0]
    res = kde_quartic(x, y, bandwidth="adaptive", grid=grid)
    radii = adaptive_radii(x, y, np.ones(x.size), k=neighbour_count(x.size), h_min=200,
                           h_max=max(200.0, res.bandwidth_m * 0 + radii_cap(x, y)))
    expected = brute_force_adaptive(x, y, np.ones(x.size), radii, grid["x_centre"], grid["y_centre"])
    np.testing.assert_allclose(res.density, expected, rtol=1e-9, atol=1e-9)


def radii_cap(x, y):
    from hotspots.detect.kde import kde_bandwidth

    return kde_bandwidth(x, y)[0]


def _district(seed: int, cluster_sizes=(36, 72, 144)):
    """A 30 x 20 km district: two towns, sparse rural crime, and planted rural clusters (a year of 3, 6, 12 a month)."""
    rng = np.random.default_rng(seed)
    town_x = np.r_[rng.normal(8_000, 700, 2_500), rng.normal(22_000, 500, 1_200)]
    town_y = np.r_[rng.normal(12_000, 700, 2_500), rng.normal(6_000, 500, 1_200)]
    rural_x, rural_y = rng.uniform(0, 30_000, 500), rng.uniform(0, 20_000, 500)
    sites = [(25_000.0, 16_000.0), (4_000.0, 3_000.0), (16_000.0, 18_000.0)]
    xs, ys = [town_x, rural_x], [town_y, rural_y]
    for (sx, sy), n in zip(sites, cluster_sizes):
        # a few snapped locations within ~150 m, as police.uk map points are
        spot = rng.integers(0, 4, n)
        xs.append(sx + np.array([0, 120, -80, 60])[spot])
        ys.append(sy + np.array([0, 40, 110, -90])[spot])
    x, y = np.concatenate(xs), np.concatenate(ys)
    x, y = np.round(x / 10) * 10, np.round(y / 10) * 10
    return x, y, sites


def _top_pct_at(grid, density, site):
    ranks = pd.Series(-density).rank(method="max").to_numpy() / len(density) * 100
    near = np.hypot(grid["x_centre"] - site[0], grid["y_centre"] - site[1]).to_numpy()
    return float(ranks[np.argmin(near)])


def test_planted_rural_clusters_of_6_and_12_a_month_are_in_the_densest_tenth():
    grid = make_grid(box(0, 0, 30_000, 20_000), 200, crs=BNG)
    x, y, sites = _district(5)
    density, median, reason = kde_cells(grid, np.column_stack([x, y]), 200)
    assert "adaptive" in reason and 400 <= median < 3_000
    top = [_top_pct_at(grid, density, s) for s in sites]
    assert top[1] <= 10 and top[2] <= 10, top        # 6 and 12 a month
    # one normal-reference bandwidth over the district misses the 6-a-month cluster
    single = kde_quartic(x, y, grid=grid)
    assert single.bandwidth_m > 2_000
    assert _top_pct_at(grid, np.asarray(single.density), sites[1]) > 10


# --------------------------------------------------------------------------- change with overdispersion
def _placebo_change(seed: int, n_types: int = 60, n_areas: int = 10, size: float = 40.0):
    """Negative-binomial counts with the same mean in both periods: no area changed more than the rest."""
    rng = np.random.default_rng(seed)
    rows_b, rows_a = [], []
    for t in range(n_types):
        mu = rng.uniform(200, 2_000, n_areas)
        b = rng.negative_binomial(size, size / (size + mu))
        a = rng.negative_binomial(size, size / (size + mu))
        for i in range(n_areas):
            rows_b.append((f"A{i}", f"type{t}", False, b[i]))
            rows_a.append((f"A{i}", f"type{t}", False, a[i]))
    cols = ["area_code", "crime_type", "is_group", "count"]
    areas = pd.DataFrame({"area_code": [f"A{i}" for i in range(n_areas)], "area_name": "x",
                          "population": 10_000})
    return pd.DataFrame(rows_b, columns=cols), pd.DataFrame(rows_a, columns=cols), areas


def test_change_flags_allow_for_overdispersion_on_a_placebo():
    before, after, areas = _placebo_change(8)
    out = change_table(before, after, areas, before_period=Period("b", ("2024-01",)),
                       after_period=Period("a", ("2025-01",)))
    flagged = out["change_flag"].isin(["up_vs_reference", "down_vs_reference"]).mean()
    z = np.log(out["ratio_of_ratios"]) / (np.sqrt(1 / out["count_before"] + 1 / out["count_after"]
                                                  + 1 / out["ref_count_before"] + 1 / out["ref_count_after"]))
    unadjusted = (z.abs() > 1.959964).mean()
    assert unadjusted > 0.25                      # the Poisson-only interval flags a quarter or more
    assert flagged <= 0.10                        # with phi, near the nominal 5%
    disp = out.attrs["change_dispersion"]
    assert sum(d["applied"] > 1 for d in disp.values()) >= 0.8 * len(disp)
    # interval and p agree in every row, for the ratio of ratios and for the rate ratio
    excludes = (out["ratio_of_ratios_ci_lower"] > 1) | (out["ratio_of_ratios_ci_upper"] < 1)
    assert (excludes == (out["p_vs_reference"] < 0.05)).all()
    rr_excludes = (out["rate_ratio_ci_lower"] > 1) | (out["rate_ratio_ci_upper"] < 1)
    assert (rr_excludes == (out["rate_ratio_p"] < 0.05)).all()


def test_change_without_overdispersion_is_left_unadjusted_and_a_real_change_is_still_flagged():
    rng = np.random.default_rng(9)
    areas = pd.DataFrame({"area_code": [f"A{i}" for i in range(10)], "area_name": "x", "population": 10_000})
    mu = rng.uniform(300, 900, 10)
    b = rng.poisson(mu)
    a = rng.poisson(mu * np.r_[2.0, np.ones(9)])        # area A0 doubles
    before = pd.DataFrame({"area_code": areas["area_code"], "crime_type": "Burglary", "is_group": False, "count": b})
    after = before.assign(count=a)
    out = change_table(before, after, areas, before_period=Period("b", ("2024-01",)),
                       after_period=Period("a", ("2025-01",)))
    assert out.loc[out["area_code"] == "A0", "change_flag"].item() == "up_vs_reference"
    disp = out.attrs["change_dispersion"]["Burglary"]
    assert disp["n"] == 10
