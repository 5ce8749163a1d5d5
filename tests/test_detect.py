"""Kernel density, clustering of unique locations, emerging hot spots, patrol areas,
stability indices and hour-of-week profiles, on small hand-built fixtures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from hotspots._errors import CRSError, ValidationError
from hotspots.detect.clusters import cluster_locations
from hotspots.detect.emerging import EMERGING_PATTERNS, emerging_hotspot_classes
from hotspots.detect.kde import kde_bandwidth, kde_quartic
from hotspots.detect.patrol import merge_hot_cells as patrol_areas
from hotspots.detect.profile import hour_of_week_profile
from hotspots.detect.stability import top_k_stability
from hotspots.geo.grid import make_grid

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BNG = "EPSG:27700"
X0, Y0 = 520_000.0, 210_000.0


def brute_force_kde(x, y, w, h, cx, cy):
    d = np.hypot(x[None, :] - np.asarray(cx)[:, None], y[None, :] - np.asarray(cy)[:, None])
    k = np.where(d < h, 3 / (math.pi * h * h) * np.clip(1 - d**2 / h**2, 0, None) ** 2, 0.0)
    return (k * w).sum(axis=1) * 1e6


@pytest.fixture(scope="module")
def kde_points():
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(X0 + 3_000, 700, 2_000), rng.normal(X0 + 6_500, 300, 800)])
    y = np.concatenate([rng.normal(Y0 + 4_000, 500, 2_000), rng.normal(Y0 + 5_000, 300, 800)])
    w = rng.integers(1, 5, x.size).astype(float)
    return x, y, w


# --------------------------------------------------------------------------- KDE
def test_kde_matches_brute_force_at_sample_cells(kde_points):
    x, y, w = kde_points
    grid = make_grid(box(X0, Y0, X0 + 10_000, Y0 + 9_000), 100, crs=BNG)
    h = 600.0
    res = kde_quartic(x, y, weights=w, bandwidth=h, grid=grid)
    assert res.bandwidth_m == h and "given" in res.bandwidth_reason
    assert res.density.shape == (len(grid),)
    sample = np.random.default_rng(0).choice(len(grid), 200, replace=False)
    expected = brute_force_kde(x, y, w, h, grid["x_centre"].to_numpy()[sample], grid["y_centre"].to_numpy()[sample])
    # linear binning: error O((cell/h)^2), well under 1% of the peak
    np.testing.assert_allclose(res.density[sample], expected, atol=0.01 * expected.max())


def test_kde_is_exact_for_points_on_cell_centres():
    grid = make_grid(box(0, 0, 2_000, 2_000), 100, crs=BNG)
    x = np.array([550.0, 950.0, 950.0, 1_450.0])
    y = np.array([550.0, 750.0, 750.0, 1_250.0])
    w = np.array([1.0, 2.0, 0.5, 3.0])
    density = kde_quartic(x, y, weights=w, bandwidth=450, grid=grid).density
    expected = brute_force_kde(x, y, w, 450, grid["x_centre"], grid["y_centre"])
    np.testing.assert_allclose(density, expected, rtol=1e-9, atol=1e-9)


def test_kde_integrates_to_total_weight(kde_points):
    x, y, w = kde_points
    grid = make_grid(box(X0 - 2_000, Y0 - 2_000, X0 + 12_000, Y0 + 11_000), 100, crs=BNG)
    density = kde_quartic(x, y, weights=w, bandwidth=500, grid=grid).density
    total = (density * grid["cell_area_km2"]).sum()
    assert total == pytest.approx(w.sum(), rel=2e-3)


def test_kde_on_a_hex_grid_interpolates_a_fine_lattice(kde_points):
    x, y, w = kde_points
    grid = make_grid(box(X0, Y0, X0 + 10_000, Y0 + 9_000), 200, shape="hex", crs=BNG)
    h = 700.0
    density = kde_quartic(x, y, weights=w, bandwidth=h, grid=grid, cell_size=50).density
    sample = np.random.default_rng(1).choice(len(grid), 100, replace=False)
    expected = brute_force_kde(x, y, w, h, grid["x_centre"].to_numpy()[sample], grid["y_centre"].to_numpy()[sample])
    np.testing.assert_allclose(density[sample], expected, atol=0.01 * expected.max())


def test_kde_with_bounds_returns_a_lattice_table():
    res = kde_quartic([550.0, 560.0], [550.0, 540.0], bandwidth=300, cell_size=100, bounds=(0, 0, 1_000, 800))
    table = res.density
    assert list(table.columns) == ["row", "col", "x_centre", "y_centre", "density_per_km2"]
    assert len(table) == 80
    assert table["density_per_km2"].sum() * 0.01 == pytest.approx(2.0, rel=0.02)


def test_kde_requires_study_area_and_sane_bandwidth():
    with pytest.raises(ValidationError) as info:
        kde_quartic([0.0, 1.0], [0.0, 1.0], bandwidth=300, cell_size=100)
    assert "grid=" in str(info.value) and "bounds" in info.value.hint
    with pytest.raises(ValidationError):
        kde_quartic([0.0], [0.0], bandwidth=50, cell_size=100, bounds=(0, 0, 1000, 1000))
    with pytest.raises(ValidationError) as info:
        kde_quartic([0.0], [np.nan], bandwidth=500, cell_size=100, bounds=(0, 0, 1000, 1000))
    assert "coordinates" in str(info.value)
    with pytest.raises(ValidationError) as info:
        kde_quartic([0.0], [0.0], weights=[-1.0], bandwidth=500, cell_size=100, bounds=(0, 0, 1000, 1000))
    assert "weights" in str(info.value)


def test_kde_rejects_lonlat_points():
    with pytest.raises(CRSError):
        kde_quartic([-0.2, -0.3], [51.7, 51.8], bandwidth=500, cell_size=100, bounds=(X0, Y0, X0 + 1000, Y0 + 1000))


def test_bandwidth_uses_both_axes(kde_points):
    x, y, _ = kde_points
    h, reason = kde_bandwidth(x, y)
    assert "both axes" in reason and f"{h:,.0f} m" in reason
    # stretching y changes the bandwidth (sfhotspot's x-only rule would not)
    h_stretched, _ = kde_bandwidth(x, Y0 + (y - Y0) * 4)
    assert h_stretched == pytest.approx(h * 2, rel=0.05)
    # symmetric in the axes, and invariant to rescaling the weights
    assert kde_bandwidth(y, x)[0] == pytest.approx(h)
    w = np.random.default_rng(3).uniform(1, 3, x.size)
    assert kde_bandwidth(x, y, weights=w)[0] == pytest.approx(kde_bandwidth(x, y, weights=10 * w)[0])


def test_bandwidth_normal_reference_value():
    rng = np.random.default_rng(0)
    x = rng.normal(X0, 1_000, 50_000)
    y = rng.normal(Y0, 1_000, 50_000)
    expected = (2304 / 5) ** (1 / 6) * 1_000 * 50_000 ** (-1 / 6)
    assert kde_bandwidth(x, y)[0] == pytest.approx(expected, rel=0.02)


def test_bandwidth_degenerate_inputs_raise():
    with pytest.raises(ValidationError):
        kde_bandwidth([X0], [Y0])
    with pytest.raises(ValidationError) as info:
        kde_bandwidth([X0, X0 + 10, X0 + 20], [Y0, Y0, Y0])
    assert "bandwidth=" in info.value.hint


# --------------------------------------------------------------------------- clustering
def snapped_crimes(seed=0):
    """Crimes at snapped locations: three dense groups far apart plus scattered noise."""
    rng = np.random.default_rng(seed)
    locations, counts = [], []
    for cx, cy, n_loc in ((X0, Y0, 30), (X0 + 3_000, Y0, 20), (X0, Y0 + 3_000, 12)):
        locations.append(np.round(rng.normal([cx, cy], 60, (n_loc, 2))))
        counts.append(rng.integers(1, 8, n_loc))
    locations.append(np.round(rng.uniform([X0 - 5_000, Y0 - 5_000], [X0 + 8_000, Y0 + 8_000], (80, 2))))
    counts.append(np.ones(80, dtype=int))
    xy = np.concatenate(locations)
    c = np.concatenate(counts)
    raw = np.repeat(xy, c, axis=0)
    return raw[rng.permutation(len(raw))]


def same_partition(a, b) -> bool:
    """Labels equal up to renaming of clusters (noise must match noise)."""
    if not np.array_equal(a == -1, b == -1):
        return False
    pairs = set(zip(a[a >= 0].tolist(), b[b >= 0].tolist()))
    return len(pairs) == len({p[0] for p in pairs}) == len({p[1] for p in pairs})


def test_dbscan_on_weighted_unique_locations_equals_dbscan_on_raw_points():
    from sklearn.cluster import DBSCAN

    raw = snapped_crimes()
    locations, clusters = cluster_locations(raw[:, 0], raw[:, 1], eps_m=150, min_crimes=20)
    assert len(locations) < len(raw) / 2  # the unique locations really are fewer
    raw_labels = DBSCAN(eps=150, min_samples=20).fit(raw).labels_
    lookup = {(x, y): c for x, y, c in locations[["x", "y", "cluster"]].itertuples(index=False)}
    ours = np.array([lookup[(x, y)] for x, y in raw])
    assert same_partition(ours, raw_labels)
    assert len(clusters) == 3
    assert int(locations["count"].sum()) == len(raw)
    assert clusters["n_crimes"].sum() == (ours >= 0).sum()


def test_cluster_outputs_and_stable_numbering():
    raw = snapped_crimes(1)
    locations, clusters = cluster_locations(raw[:, 0], raw[:, 1], eps_m=150, min_crimes=20)
    assert list(locations.columns) == ["x", "y", "count", "cluster"]
    assert list(clusters.columns) == ["cluster", "n_crimes", "n_locations", "x_centroid", "y_centroid",
                                      "area_km2", "geometry"]
    assert clusters.crs.to_epsg() == 27700
    assert clusters["n_crimes"].is_monotonic_decreasing
    assert clusters["cluster"].tolist() == list(range(len(clusters)))
    # each cluster polygon covers its member locations
    for row in clusters.itertuples():
        members = locations[locations["cluster"] == row.cluster]
        assert shapely.contains_xy(row.geometry, members["x"], members["y"]).all()
        assert row.n_locations == len(members) and row.n_crimes == members["count"].sum()
    shuffled = raw[np.random.default_rng(5).permutation(len(raw))]
    again, clusters_again = cluster_locations(shuffled[:, 0], shuffled[:, 1], eps_m=150, min_crimes=20)
    pd.testing.assert_frame_equal(locations, again)
    pd.testing.assert_frame_equal(pd.DataFrame(clusters.drop(columns="geometry")),
                                  pd.DataFrame(clusters_again.drop(columns="geometry")))


def test_counts_argument_equals_repeated_rows():
    raw = snapped_crimes(2)
    unique, counts = np.unique(raw, axis=0, return_counts=True)
    a, _ = cluster_locations(raw[:, 0], raw[:, 1], min_crimes=15)
    b, _ = cluster_locations(unique[:, 0], unique[:, 1], counts=counts, min_crimes=15)
    pd.testing.assert_frame_equal(a, b)


def test_hdbscan_finds_the_planted_groups_and_weights_density():
    raw = snapped_crimes(3)
    locations, clusters = cluster_locations(raw[:, 0], raw[:, 1], method="hdbscan", min_crimes=20)
    assert len(clusters) == 3
    centres = clusters[["x_centroid", "y_centroid"]].to_numpy()
    planted = np.array([[X0, Y0], [X0 + 3_000, Y0], [X0, Y0 + 3_000]])
    nearest = np.min(np.hypot(*(centres[:, None, :] - planted[None, :, :]).transpose(2, 0, 1)), axis=1)
    assert (nearest < 100).all()
    # scattered single crimes are noise
    lonely = locations[(locations["count"] == 1) & (np.hypot(locations["x"] - X0 - 6_000, locations["y"] - Y0 - 6_000) < 2_500)]
    assert (lonely["cluster"] == -1).all()


def test_hdbscan_does_not_depend_on_row_order():
    raw = snapped_crimes(4)
    a, _ = cluster_locations(raw[:, 0], raw[:, 1], method="hdbscan")
    shuffled = raw[::-1]
    b, _ = cluster_locations(shuffled[:, 0], shuffled[:, 1], method="hdbscan")
    pd.testing.assert_frame_equal(a, b)


def test_cluster_validation():
    with pytest.raises(ValidationError) as info:
        cluster_locations([X0], [Y0], method="kmeans", eps_m=-1, min_crimes=0)
    message = str(info.value)
    assert "kmeans" in message and "eps_m" in message and "min_crimes" in message
    with pytest.raises(CRSError):
        cluster_locations([-0.2, -0.21], [51.7, 51.7])


def test_no_clusters_gives_empty_summary():
    locations, clusters = cluster_locations([X0, X0 + 5_000], [Y0, Y0], min_crimes=20)
    assert (locations["cluster"] == -1).all()
    assert len(clusters) == 0 and clusters.crs.to_epsg() == 27700


# --------------------------------------------------------------------------- emerging hot spots
MONTHS = [f"2023-{m:02d}" for m in range(1, 13)]
H, C, N = 3.0, -3.0, 0.2   # hot, cold and not-significant z values


def classify(rows, months=MONTHS, **kwargs):
    z = np.array(rows, dtype=float)
    p = np.where(np.abs(z) >= 2.5, 0.001, 0.6)
    p[np.isnan(z)] = np.nan
    return emerging_hotspot_classes(z, p, months=months, **kwargs)


def test_emerging_categories_on_hand_built_series():
    rising = list(np.linspace(2.6, 6.0, 12))
    falling = list(np.linspace(6.0, 2.6, 12))
    flat = [3.1, 2.9, 3.3, 2.8, 3.0, 3.2, 2.9, 3.1, 3.0, 2.8, 3.2, 3.0]
    cases = {
        "new hot spot": [N] * 11 + [H],
        "consecutive hot spot": [N] * 9 + [H, H, H],
        "intensifying hot spot": rising,
        "persistent hot spot": flat,
        "diminishing hot spot": falling,
        "sporadic hot spot": [N, H, N, N, H, N, N, N, H, N, N, H],
        "oscillating hot spot": [C, C, N, N, N, N, N, N, N, N, H, H],
        "historical hot spot": flat[:11] + [N],
        "new cold spot": [N] * 11 + [C],
        "consecutive cold spot": [N] * 10 + [C, C],
        "intensifying cold spot": [-v for v in rising],
        "persistent cold spot": [-v for v in flat],
        "diminishing cold spot": [-v for v in falling],
        "sporadic cold spot": [C, N, N, C, N, N, N, N, N, N, N, C],
        "oscillating cold spot": [N, H, H, N, N, N, N, N, N, N, N, C],
        "historical cold spot": [-v for v in flat[:11]] + [N],
        "no pattern detected": [N, H, N, N, N, N, N, N, N, N, N, N],
    }
    out = classify(list(cases.values()))
    assert out["pattern"].tolist() == list(cases)
    assert set(out["pattern"]) <= set(EMERGING_PATTERNS)
    assert list(out.columns) == ["pattern", "mk_z", "mk_p", "n_sig_hot", "n_sig_cold", "n_observed_months",
                                 "final_month"]
    assert out.loc[2, "mk_z"] > 3 and out.loc[4, "mk_z"] < -3 and out.loc[3, "mk_p"] > 0.05
    assert out.loc[0, "n_sig_hot"] == 1 and out.loc[6, "n_sig_cold"] == 2


def test_emerging_gaps_are_not_insignificant_months():
    nan = np.nan
    out = classify([
        # hot in every observed month; two months missing from the data.  Counting
        # the gap as "not significant" would give 10/12 < 90% -> sporadic
        [H] * 8 + [nan, nan, H, H],
        # a run cannot span a gap: hot, hot, gap, hot -> the final run is 1 month
        # long and there were hot months before it -> sporadic, not consecutive
        [N] * 8 + [H, H, nan, H],
        # the same without the gap is consecutive
        [N] * 8 + [H, H, H, H],
        # the final month is missing: the last observed month is the final step
        [N] * 10 + [H, nan],
        # nothing observed
        [nan] * 12,
    ])
    assert out["pattern"].tolist() == ["persistent hot spot", "sporadic hot spot", "consecutive hot spot",
                                       "new hot spot", "no pattern detected"]
    assert out["n_observed_months"].tolist() == [10, 11, 12, 11, 0]
    assert out["final_month"].tolist() == ["2023-12", "2023-12", "2023-12", "2023-11", ""]
    assert np.isnan(out.loc[4, "mk_z"])


def test_emerging_calendar_gap_between_columns_breaks_runs():
    months = MONTHS[:9] + MONTHS[10:]   # 2023-10 absent from the data: 11 columns
    out = classify([[N] * 7 + [H, H, H, H], [N] * 9 + [H, H]], months=months)
    # hot 2023-08, 09 | gap | 11, 12: the final run is two months, with hot months before it
    # hot 2023-11, 12 only: consecutive
    assert out["pattern"].tolist() == ["sporadic hot spot", "consecutive hot spot"]


def test_mann_kendall_matches_a_direct_computation():
    from hotspots.detect.trend import mann_kendall

    rng = np.random.default_rng(11)
    values = np.round(rng.normal(0, 1, (200, 15)), 1)   # rounding creates ties
    values[rng.random(values.shape) < 0.1] = np.nan
    mk = mann_kendall(values)
    z, p = mk["mk_z"].to_numpy(), mk["mk_p"].to_numpy()
    for row, zi, pi in zip(values[:40], z, p):
        v = row[np.isfinite(row)]
        n = len(v)
        s = sum(np.sign(v[j] - v[i]) for i in range(n) for j in range(i + 1, n))
        _, tie_counts = np.unique(v, return_counts=True)
        var = (n * (n - 1) * (2 * n + 5) - sum(t * (t - 1) * (2 * t + 5) for t in tie_counts)) / 18
        expected = (s - np.sign(s)) / math.sqrt(var) if var > 0 else 0.0
        assert zi == pytest.approx(expected)
        assert pi == pytest.approx(2 * (1 - 0.5 * (1 + math.erf(abs(expected) / math.sqrt(2)))))


def test_emerging_validation():
    z = np.zeros((2, 3))
    with pytest.raises(ValidationError) as info:
        emerging_hotspot_classes(z, np.ones((2, 3)), months=["2024-01", "2024-02"])
    assert "months" in str(info.value)
    with pytest.raises(ValidationError):
        emerging_hotspot_classes(z, np.ones((2, 3)), months=["2024-02", "2024-01", "2024-03"])
    p = np.ones((2, 3))
    p[0, 0] = np.nan
    with pytest.raises(ValidationError) as info:
        emerging_hotspot_classes(z, p, months=["2024-01", "2024-02", "2024-03"])
    assert "NaN in both" in info.value.hint
    with pytest.raises(ValidationError):
        emerging_hotspot_classes(z, np.ones((2, 3)), months=["2024-01", "2024-02", "2024-03"], alpha=5)


# --------------------------------------------------------------------------- patrol areas
@pytest.fixture()
def planted_grid():
    """10 x 10 cells of 100 m; blob A (3 cells, 30 crimes) and blob B (4 cells, 40 crimes)."""
    grid = make_grid(box(X0, Y0, X0 + 1_000, Y0 + 1_000), 100, crs=BNG)
    rc = list(zip(grid["row"], grid["col"]))
    blob_a = [(1, 1), (1, 2), (2, 2)]                # edge-contiguous
    blob_b = [(6, 6), (7, 7), (8, 8), (8, 7)]        # corner-contiguous (queen)
    cell_class = np.array(["not_significant"] * len(grid), dtype=object)
    counts = np.ones(len(grid))
    for cells, cls, per_cell in ((blob_a, "hot_99", 10), (blob_b, "hot_95", 10)):
        for cell in cells:
            i = rc.index(cell)
            cell_class[i] = cls
            counts[i] = per_cell
    cell_class[rc.index((5, 0))] = "cold_95"
    return grid, cell_class, counts


def test_patrol_areas_from_two_blobs(planted_grid):
    grid, cell_class, counts = planted_grid
    areas = patrol_areas(grid, cell_class, counts=counts, gi_z=np.where(counts > 1, 3.0, 0.0))
    assert areas["patrol_area_id"].tolist() == ["PA-ALL-01", "PA-ALL-02"]
    assert areas["n_cells"].tolist() == [4, 3]
    assert areas["count"].tolist() == [40, 30]
    assert areas["area_km2"].tolist() == pytest.approx([0.04, 0.03])
    assert areas.geometry.area.tolist() == pytest.approx([40_000, 30_000])
    assert areas.crs.to_epsg() == 27700
    assert areas["mean_gi_z"].tolist() == [3.0, 3.0]
    assert list(areas.columns) == ["patrol_area_id", "group", "rank", "n_cells", "area_km2", "count", "mean_gi_z",
                                   "max_gi_z", "x_centroid", "y_centroid", "cell_ids", "geometry"]
    first = areas.iloc[0]
    assert shapely.Point(first.x_centroid, first.y_centroid).distance(first.geometry) < 100
    assert first.cell_ids.count(";") == 3


def test_patrol_area_ids_are_stable_under_row_shuffling(planted_grid):
    grid, cell_class, counts = planted_grid
    expected = patrol_areas(grid, cell_class, counts=counts)
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(len(grid))
        shuffled = grid.iloc[order].reset_index(drop=True)
        got = patrol_areas(shuffled, cell_class[order], counts=counts[order])
        pd.testing.assert_frame_equal(pd.DataFrame(got.drop(columns="geometry")),
                                      pd.DataFrame(expected.drop(columns="geometry")))
        assert all(a.equals(b) for a, b in zip(got.geometry, expected.geometry))


def test_patrol_areas_rank_by_harm_top_n_and_min_cells(planted_grid):
    grid, cell_class, counts = planted_grid
    harm = np.where(np.isin(np.arange(len(grid)), np.flatnonzero(cell_class == "hot_99")), 100.0, 1.0)
    by_harm = patrol_areas(grid, cell_class, counts=counts, harm=harm, rank_by="harm")
    assert by_harm["n_cells"].tolist() == [3, 4] and by_harm["harm"].tolist() == [300.0, 4.0]
    assert len(patrol_areas(grid, cell_class, counts=counts, top_n=1)) == 1
    assert patrol_areas(grid, cell_class, counts=counts, min_cells=4)["n_cells"].tolist() == [4]


def test_patrol_areas_split_by_group_and_named(planted_grid):
    grid, cell_class, counts = planted_grid
    group = np.where(grid["col"] >= 7, "E07000241", "E07000098")   # blob B straddles col 6 | 7
    areas = patrol_areas(grid, cell_class, counts=counts, group=group,
                         name_lookup={"E07000241": "Welwyn Hatfield", "E07000098": "Hertsmere"})
    assert areas["patrol_area_id"].tolist() == ["PA-E07000098-01", "PA-E07000098-02", "PA-E07000241-01"]
    assert areas["n_cells"].tolist() == [3, 1, 3]
    assert areas["group_name"].tolist() == ["Hertsmere", "Hertsmere", "Welwyn Hatfield"]
    top = patrol_areas(grid, cell_class, counts=counts, group=group, top_n=1)
    assert top["patrol_area_id"].tolist() == ["PA-E07000098-01", "PA-E07000241-01"]


def test_patrol_areas_ties_break_by_smallest_cell_id():
    grid = make_grid(box(0, 0, 500, 100), 100, crs=BNG)
    areas = patrol_areas(grid, ["hot_95", "ns", "hot_95", "ns", "hot_95"], counts=[5, 0, 5, 0, 5])
    assert areas["cell_ids"].tolist() == ["sq100_r000_c000", "sq100_r000_c002", "sq100_r000_c004"]


def test_patrol_areas_empty_and_validation(planted_grid):
    grid, _, counts = planted_grid
    empty = patrol_areas(grid, ["not_significant"] * len(grid), counts=counts)
    assert len(empty) == 0 and "patrol_area_id" in empty.columns
    with pytest.raises(ValidationError) as info:
        patrol_areas(grid, ["hot_95"] * 3, counts=counts, rank_by="harm")
    message = str(info.value)
    assert "cell_class" in message and "harm" in message


@SETTINGS
@given(hot=st.lists(st.booleans(), min_size=36, max_size=36), seed=st.integers(0, 1_000))
def test_property_patrol_areas_cover_hot_cells_independent_of_order(hot, seed):
    grid = make_grid(box(0, 0, 600, 600), 100, crs=BNG)
    cell_class = np.where(hot, "hot_95", "ns")
    counts = np.random.default_rng(seed).integers(0, 20, len(grid)).astype(float)
    areas = patrol_areas(grid, cell_class, counts=counts)
    assert areas["n_cells"].sum() == sum(hot)
    assert areas["count"].sum() == counts[np.array(hot)].sum()
    order = np.random.default_rng(seed).permutation(len(grid))
    again = patrol_areas(grid.iloc[order].reset_index(drop=True), cell_class[order], counts=counts[order])
    assert again["patrol_area_id"].tolist() == areas["patrol_area_id"].tolist()
    assert again["cell_ids"].tolist() == areas["cell_ids"].tolist()


# --------------------------------------------------------------------------- stability
def test_top_k_stability_hand_example():
    t1 = [10, 8, 1, 0, 0, 1, 0, 0, 0, 0]
    t2 = [9, 2, 7, 0, 0, 0, 1, 0, 0, 1]
    out = top_k_stability(t1, t2, top_share=0.2)
    assert out["k"] == 2 and out["n_cells"] == 10
    assert out["jaccard"] == pytest.approx(1 / 3)            # {0, 1} vs {0, 2}
    assert out["hit_rate_t1"] == pytest.approx(18 / 20)
    assert out["hit_rate_t2"] == pytest.approx(11 / 20)
    assert out["pai_t1"] == pytest.approx(0.9 / 0.2)
    assert out["pai_t2"] == pytest.approx(0.55 / 0.2)
    assert out["rri"] == pytest.approx(0.55 / 0.9)
    from scipy.stats import spearmanr
    assert out["spearman_rho"] == pytest.approx(spearmanr(t1, t2).statistic)


def test_top_k_stability_identical_periods_and_areas():
    counts = np.arange(40, dtype=float)
    out = top_k_stability(counts, counts, top_share=0.1)
    assert out["jaccard"] == 1.0 and out["spearman_rho"] == pytest.approx(1.0) and out["rri"] == pytest.approx(1.0)
    area = np.ones(40)
    area[-4:] = 0.5   # the top cells are half-size (clipped): a/A = 2/38 instead of 4/40
    weighted = top_k_stability(counts, counts, top_share=0.1, cell_area=area)
    assert weighted["area_share"] == pytest.approx(2 / 38)
    assert weighted["pai_t1"] == pytest.approx(out["pai_t1"] * 0.1 / (2 / 38))


def test_top_k_stability_validation():
    with pytest.raises(ValidationError):
        top_k_stability([1, 2, 3], [1, 2], top_share=0.5)
    with pytest.raises(ValidationError) as info:
        top_k_stability(pd.Series([1, 2], index=["a", "b"]), pd.Series([1, 2], index=["b", "c"]))
    assert "reindex" in info.value.hint


# --------------------------------------------------------------------------- hour of week
def test_hour_of_week_profile_counts_and_reports_dropped():
    stamps = pd.Series(pd.to_datetime(["2024-03-04 22:15", "2024-03-04 22:50", "2024-03-10 03:00",
                                       "2024-03-05 00:00", None]))
    out = hour_of_week_profile(stamps, ["A", "A", "B", None, "A"])
    assert list(out.columns) == ["area_id", "weekday", "day", "hour", "hour_of_week", "count"]
    assert len(out) == 2 * 168 and out["count"].sum() == 3
    row = out[(out["area_id"] == "A") & (out["hour_of_week"] == 22)]
    assert row["count"].tolist() == [2] and row["day"].tolist() == ["Mon"]
    assert out.attrs["dropped"] == {"missing_timestamp": 1, "missing_area": 1}
    assert out.attrs["n_exact_midnight"] == 0


def test_hour_of_week_profile_converts_utc_to_uk_time():
    stamps = pd.to_datetime(["2024-07-01 23:30"]).tz_localize("UTC")   # BST: 00:30 on Tuesday
    out = hour_of_week_profile(stamps, ["A"])
    hit = out[out["count"] > 0]
    assert (hit["day"].item(), hit["hour"].item()) == ("Tue", 0)


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 90), cols=st.integers(1, 90), k=st.integers(1, 41), seed=st.integers(0, 2**31))
def test_kde_convolution_is_scipy_fftconvolve_bit_for_bit(rows, cols, k, seed):
    """The KDE's own FFT convolution (no scipy.signal import) gives SciPy's fftconvolve(mode="same") exactly."""
    from scipy import signal

    from hotspots.detect.kde import _fftconvolve_same

    rng = np.random.default_rng(seed)
    image, kernel = rng.random((rows, cols)), rng.random((k, k))
    ours, scipys = _fftconvolve_same(image, kernel), signal.fftconvolve(image, kernel, mode="same")
    assert ours.shape == scipys.shape == image.shape
    assert np.array_equal(ours, scipys)


# --------------------------------------------------------------------------- notebook verbs
def test_find_hotspots_on_synthetic_points():
    import geopandas as gpd

    from hotspots.datasets import synthetic_points
    from hotspots.detect import find_hotspots
    from hotspots.detect.verbs import HOTSPOT_COLUMNS

    pts = synthetic_points(seed=3)
    area = gpd.GeoDataFrame(geometry=[box(520_000, 210_000, 522_000, 212_000)], crs=BNG)
    cells = find_hotspots(pts, area, cell_size=250)
    assert list(cells.columns) == HOTSPOT_COLUMNS + ["geometry"]
    assert cells.crs.to_epsg() == 27700 and int(cells["count"].sum()) == len(pts)
    assert cells.attrs["cell_size"] == 250.0 and cells.attrs["n_outside"] == 0
    centre = cells[cells.geometry.contains(shapely.Point(521_010, 211_010))]
    assert centre["gi_class"].iloc[0] == "hot_99"
    # the same from the point geometries alone, and an automatic cell size with its reason
    auto = find_hotspots(gpd.GeoDataFrame(geometry=pts.geometry, crs=BNG), area)
    assert auto.attrs["cell_size"] >= 100 and "chosen" in auto.attrs["cell_size_reason"]
    # one crime type only
    one = find_hotspots(pts, area, cell_size=250, crime_types=[pts["crime_type"].iloc[0]])
    assert int(one["count"].sum()) == int((pts["crime_type"] == pts["crime_type"].iloc[0]).sum())


def test_find_hotspots_rejects_bad_input():
    import geopandas as gpd

    from hotspots.datasets import synthetic_points
    from hotspots.detect import find_hotspots

    pts = synthetic_points(seed=3)
    with pytest.raises(CRSError):
        find_hotspots(pts.to_crs(4326), box(520_000, 210_000, 522_000, 212_000))
    with pytest.raises(CRSError):
        find_hotspots(pts, gpd.GeoDataFrame(geometry=[box(0, 50, 1, 51)], crs=4326))
    with pytest.raises(ValidationError) as info:
        find_hotspots(pts, box(520_000, 210_000, 522_000, 212_000), cell_size=-5, neighbourhood="bishop")
    assert str(info.value).startswith("find_hotspots: 2 problems")


def test_patrol_areas_verb_from_find_hotspots():
    from hotspots.datasets import synthetic_points
    from hotspots.detect import find_hotspots, patrol_areas
    from hotspots.detect.verbs import PATROL_COLUMNS

    cells = find_hotspots(synthetic_points(seed=3, cluster=300), box(520_000, 210_000, 522_000, 212_000),
                          cell_size=100)
    areas = patrol_areas(cells, top_n=3, max_area_km2=0.05)
    assert list(areas.columns) == PATROL_COLUMNS + ["geometry"]
    assert 1 <= len(areas) <= 3 and areas["rank"].tolist() == list(range(1, len(areas) + 1))
    assert (areas["area_km2"] <= 0.05 + 1e-9).all() and (areas["hot_region_km2"] >= areas["area_km2"] - 1e-9).all()
    assert areas["count"].is_monotonic_decreasing
    assert areas.geometry.iloc[0].buffer(1).contains(shapely.Point(521_000, 211_000))
    assert len(patrol_areas(cells, confidence=99, min_count=10_000)) == 0
    with pytest.raises(ValidationError):
        patrol_areas(cells, confidence=80)


def test_patrol_areas_says_why_when_every_hot_cell_is_over_the_size_cap():
    """800 m cells (0.64 km²) can never make a 0.5 km² patrol area: an error, not an empty table."""
    import shapely

    import hotspots
    from hotspots._errors import ValidationError

    cells = hotspots.find_hotspots(hotspots.synthetic_points(seed=1, cluster=600, extent=8000),
                                   shapely.box(520_000, 210_000, 528_000, 218_000), cell_size=800)
    assert cells["gi_class"].astype(str).str.startswith("hot").any()
    with pytest.raises(ValidationError, match="max_area_km2"):
        hotspots.patrol_areas(cells)
    assert len(hotspots.patrol_areas(cells, max_area_km2=1.0)) >= 1
