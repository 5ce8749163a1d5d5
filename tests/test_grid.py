"""Grids clipped to the study area, arithmetic point assignment and lattice weights.

Hand-built geometries with known answers; geopandas sjoin and libpysal lat2W as
independent references; hypothesis properties for counts and row order.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon, box

from hotspots._errors import CRSError, ValidationError
from hotspots.geo import assign_to_cells, choose_cell_size, grid_weights, make_grid
from hotspots.geo.grid import GRID_COLUMNS

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BNG = "EPSG:27700"


def wiggly_area(centre=(530_000.0, 210_000.0), radius=3_000.0, n=600, seed=0):
    """An irregular, county-like polygon with a hole."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = radius * (1 + 0.2 * np.sin(3 * t) + 0.05 * np.sin(17 * t) + rng.normal(0, 0.01, n))
    shell = np.c_[centre[0] + r * np.cos(t), centre[1] + r * np.sin(t)]
    hole = shapely.Point(centre).buffer(400).exterior.coords
    return Polygon(shell, [hole])


def neighbour_sets(weights) -> list[set[int]]:
    w = weights.tocsr()
    return [set(w.indices[w.indptr[i]:w.indptr[i + 1]].tolist()) - {i} for i in range(w.shape[0])]


# --------------------------------------------------------------------------- make_grid
def test_one_km_square_at_100m_has_100_cells():
    grid = make_grid(box(0, 0, 1000, 1000), 100, crs=BNG)
    assert list(grid.columns) == GRID_COLUMNS
    assert len(grid) == 100
    assert grid["cell_id"].is_unique
    assert sorted(grid["row"].unique()) == list(range(10)) == sorted(grid["col"].unique())
    np.testing.assert_allclose(grid["cell_area_km2"], 0.01)
    np.testing.assert_allclose(grid["full_cell_km2"], 0.01)
    assert grid.crs.to_epsg() == 27700
    assert grid["cell_id"].iloc[0] == "sq100_r000_c000"
    first = grid.iloc[0]
    assert (first.x_centre, first.y_centre) == (50.0, 50.0)
    params = grid.attrs["grid"]
    assert params["shape"] == "square" and params["cell_size"] == 100.0
    assert (params["x0"], params["y0"], params["n_rows"], params["n_cols"]) == (0.0, 0.0, 10, 10)


def test_l_shaped_area_keeps_only_intersecting_cells():
    # not aligned with the lattice: boundary cells are clipped
    area = shapely.union_all([box(30, 30, 1030, 330), box(30, 30, 330, 1030)])
    grid = make_grid(area, 100, crs=BNG)
    # reference: every lattice cell whose intersection with the area has positive area
    expected = set()
    for r in range(11):
        for c in range(11):
            if box(c * 100, r * 100, (c + 1) * 100, (r + 1) * 100).intersection(area).area > 0:
                expected.add((r, c))
    assert set(zip(grid["row"], grid["col"])) == expected
    assert (8, 8) not in expected  # the notch of the L is no data, not zero
    assert grid["cell_area_km2"].sum() == pytest.approx(area.area / 1e6)
    assert (grid["cell_area_km2"] <= grid["full_cell_km2"] + 1e-12).all()
    clipped = grid[grid["cell_area_km2"] < 0.01 - 1e-12]
    assert len(clipped) > 0
    assert all(g.within(area.buffer(1e-6)) for g in grid.geometry)


def test_cells_that_only_touch_the_area_are_not_included():
    grid = make_grid(box(0, 0, 300, 200), 100, crs=BNG)
    assert len(grid) == 6  # not the cells east of x=300 or north of y=200


def test_irregular_area_with_hole_area_is_preserved():
    area = wiggly_area()
    for shape in ("square", "hex"):
        grid = make_grid(area, 150, shape=shape, crs=BNG)
        assert grid["cell_area_km2"].sum() == pytest.approx(area.area / 1e6, rel=1e-9)
        assert grid.geometry.is_valid.all()
        assert set(grid.geom_type) <= {"Polygon", "MultiPolygon"}
        # no cell lies wholly in the hole
        assert not grid.geometry.within(shapely.Point(530_000, 210_000).buffer(399)).any()


def test_geodataframe_area_is_dissolved_and_keeps_its_crs():
    districts = gpd.GeoDataFrame(geometry=[box(0, 0, 500, 1000), box(500, 0, 1000, 1000)], crs=BNG)
    grid = make_grid(districts, 100)
    assert len(grid) == 100
    assert grid.crs == districts.crs


def test_hex_cells_have_equal_area_and_share_edges():
    s = 200.0
    grid = make_grid(box(0, 0, 3000, 2000), s, shape="hex", crs=BNG)
    full = math.sqrt(3) / 2 * s**2 / 1e6
    np.testing.assert_allclose(grid["full_cell_km2"], full)
    whole = grid[np.isclose(grid["cell_area_km2"], full)]
    assert len(whole) > 50
    np.testing.assert_allclose(whole.geometry.area / 1e6, full)
    assert grid["cell_id"].str.startswith("hx200_").all()
    # neighbouring hexagons share an edge of length R = s / sqrt(3), bit-identically
    w = grid_weights(whole.reset_index(drop=True))
    geoms = whole.geometry.to_numpy()
    for i, nbrs in enumerate(neighbour_sets(w)[:40]):
        for j in nbrs:
            shared = shapely.intersection(geoms[i], geoms[j])
            assert shared.length == pytest.approx(s / math.sqrt(3))


def test_grid_cell_ids_are_stable_across_areas():
    small = make_grid(box(1000, 1000, 1300, 1300), 100, crs=BNG)
    big = make_grid(box(0, 0, 2000, 2000), 100, crs=BNG)
    # same lattice: the same cell has the same centre in both grids
    centres_small = set(zip(small["x_centre"], small["y_centre"]))
    centres_big = set(zip(big["x_centre"], big["y_centre"]))
    assert centres_small <= centres_big


@pytest.mark.parametrize("crs", ["EPSG:4326", None])
def test_geographic_or_missing_crs_is_a_crs_error(crs):
    area = gpd.GeoDataFrame(geometry=[box(-0.5, 51.6, -0.1, 51.9)], crs=crs)
    with pytest.raises(CRSError) as info:
        make_grid(area, 100)
    assert info.value.hint and "27700" in info.value.hint


def test_bare_geometry_without_crs_is_a_crs_error_with_lonlat_hint():
    with pytest.raises(CRSError) as info:
        make_grid(box(-0.5, 51.6, -0.1, 51.9), 100)
    assert "lon/lat" in info.value.hint


def test_crs_argument_must_agree_with_geodataframe():
    area = gpd.GeoDataFrame(geometry=[box(0, 0, 1000, 1000)], crs=BNG)
    with pytest.raises(CRSError):
        make_grid(area, 100, crs="EPSG:3857")


def test_bad_arguments_are_reported_together():
    with pytest.raises(ValidationError) as info:
        make_grid(box(0, 0, 1000, 1000), -5, shape="triangle", crs=BNG)
    message = str(info.value)
    assert "cell_size" in message and "-5" in message and "shape" in message and "triangle" in message


def test_empty_or_invalid_area_is_rejected():
    with pytest.raises(ValidationError):
        make_grid(shapely.LineString([(0, 0), (1000, 0)]), 100, crs=BNG)
    bowtie = Polygon([(0, 0), (1000, 1000), (1000, 0), (0, 1000)])
    with pytest.raises(ValidationError) as info:
        make_grid(bowtie, 100, crs=BNG)
    assert "make_valid" in info.value.hint


def test_huge_lattice_is_refused():
    with pytest.raises(ValidationError) as info:
        make_grid(box(0, 0, 700_000, 1_200_000), 100, crs=BNG)
    assert "cell size" in info.value.hint


# --------------------------------------------------------------------------- choose_cell_size
def test_choose_cell_size_follows_sfhotspot_rule_and_explains():
    size, reason = choose_cell_size(box(0, 0, 30_100, 20_100))
    assert size == 400.0
    assert "400 m" in reason and "20.1 km" in reason and "/ 50" in reason


def test_choose_cell_size_respects_snapping_floor():
    size, reason = choose_cell_size(box(0, 0, 3_000, 6_000))
    assert size == 100.0
    assert "floor" in reason and "snapped" in reason
    assert choose_cell_size(box(0, 0, 3_000, 6_000), floor=250)[0] == 250.0


def test_choose_cell_size_rounds_to_50m_when_small():
    assert choose_cell_size(box(0, 0, 8_000, 9_000))[0] == 150.0   # 160 m -> 150 m


def test_choose_cell_size_reports_point_spacing_without_changing_choice():
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 20_000, (500, 2))
    size, reason = choose_cell_size(box(0, 0, 20_000, 20_000), points_xy=pts)
    assert size == 400.0 and "median distance" in reason


def test_choose_cell_size_rejects_degrees():
    with pytest.raises(CRSError):
        choose_cell_size(box(-0.5, 51.6, -0.1, 51.9))
    with pytest.raises(CRSError):
        choose_cell_size(gpd.GeoDataFrame(geometry=[box(-0.5, 51.6, -0.1, 51.9)], crs="EPSG:4326"))


def test_choose_cell_size_validates_floor():
    with pytest.raises(ValidationError) as info:
        choose_cell_size(box(0, 0, 1000, 1000), floor=0)
    assert "floor" in str(info.value)


# --------------------------------------------------------------------------- assign_to_cells
def test_points_on_shared_edges_go_east_and_north():
    grid = make_grid(box(0, 0, 300, 300), 100, crs=BNG)
    cell = grid.set_index(["row", "col"]).index
    x = np.array([100.0, 150.0, 100.0, 0.0, 50.0, 299.999])
    y = np.array([50.0, 100.0, 100.0, 0.0, 0.0, 299.999])
    got = [cell[i] for i in assign_to_cells(x, y, grid)]
    assert got == [(0, 1),  # vertical edge -> east cell
                   (1, 1),  # horizontal edge -> north cell
                   (1, 1),  # shared corner -> north-east cell
                   (0, 0), (0, 0), (2, 2)]


def test_points_on_the_outer_east_or_north_edge_fall_outside():
    grid = make_grid(box(0, 0, 300, 300), 100, crs=BNG)
    assert assign_to_cells([300.0, 150.0], [150.0, 300.0], grid).tolist() == [-1, -1]


def test_hex_point_on_vertical_edge_goes_to_the_eastern_cell():
    grid = make_grid(box(0, 0, 1000, 1000), 100, shape="hex", crs=BNG)
    row0 = grid[grid["row"] == 2].sort_values("col")
    a, b = row0.iloc[2], row0.iloc[3]
    edge_x = (a.x_centre + b.x_centre) / 2
    got = assign_to_cells([edge_x], [a.y_centre], grid)[0]
    assert grid.iloc[got]["cell_id"] == b.cell_id


def test_outside_and_non_finite_points_get_minus_one():
    grid = make_grid(box(0, 0, 300, 300), 100, crs=BNG)
    got = assign_to_cells([-1.0, 1000.0, np.nan, 50.0], [50.0, 50.0, 50.0, np.inf], grid)
    assert got.tolist() == [-1, -1, -1, -1]


def test_points_in_a_clipped_cell_but_outside_the_area_get_minus_one():
    area = Polygon([(0, 0), (200, 0), (0, 200)])  # the diagonal x + y = 200 clips two cells
    grid = make_grid(area, 100, crs=BNG)
    assert sorted(zip(grid["row"], grid["col"])) == [(0, 0), (0, 1), (1, 0)]
    x = np.array([90.0, 110.0, 10.0, 190.0, 90.0])
    y = np.array([90.0, 10.0, 110.0, 90.0, 190.0])
    got = assign_to_cells(x, y, grid)
    # the last two are in the squares of clipped cells but beyond the diagonal
    assert (got >= 0).tolist() == [True, True, True, False, False]
    assert ((got >= 0) == shapely.contains_xy(area, x, y)).all()


@pytest.mark.parametrize("shape", ["square", "hex"])
def test_assignment_equals_geopandas_sjoin(shape):
    area = wiggly_area()
    grid = make_grid(area, 250, shape=shape, crs=BNG)
    rng = np.random.default_rng(42)
    minx, miny, maxx, maxy = area.bounds
    x = rng.uniform(minx - 500, maxx + 500, 20_000)
    y = rng.uniform(miny - 500, maxy + 500, 20_000)
    got = assign_to_cells(x, y, grid)
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=BNG)
    joined = gpd.sjoin(points, grid[["geometry"]], predicate="within", how="left")
    assert not joined.index.duplicated().any()  # random points avoid the edges
    expected = joined["index_right"].fillna(-1).astype(int).to_numpy()
    np.testing.assert_array_equal(got, expected)
    assert (got >= 0).sum() > 5_000


def test_assignment_works_when_attrs_are_lost():
    grid = make_grid(wiggly_area(), 200, shape="hex", crs=BNG)
    stripped = grid.copy()
    stripped.attrs = {}
    rng = np.random.default_rng(1)
    x = rng.uniform(527_000, 533_000, 2_000)
    y = rng.uniform(207_000, 213_000, 2_000)
    np.testing.assert_array_equal(assign_to_cells(x, y, stripped), assign_to_cells(x, y, grid))


def test_lonlat_points_are_a_crs_error():
    grid = make_grid(box(500_000, 200_000, 501_000, 201_000), 100, crs=BNG)
    with pytest.raises(CRSError):
        assign_to_cells([-0.2, -0.3], [51.7, 51.8], grid)


def test_assign_validates_lengths():
    grid = make_grid(box(0, 0, 300, 300), 100, crs=BNG)
    with pytest.raises(ValidationError) as info:
        assign_to_cells([1.0, 2.0], [1.0], grid)
    assert "x and y" in str(info.value)


@SETTINGS
@given(
    xs=st.lists(st.floats(-200, 1_300, allow_nan=False), min_size=1, max_size=60),
    ys=st.lists(st.floats(-200, 1_300, allow_nan=False), min_size=1, max_size=60),
    shape=st.sampled_from(["square", "hex"]),
)
def test_property_counts_sum_to_points_inside(xs, ys, shape):
    n = min(len(xs), len(ys))
    x, y = np.array(xs[:n]), np.array(ys[:n])
    area = Polygon([(0, 0), (1000, 0), (1000, 700), (400, 1100), (0, 700)])
    grid = make_grid(area, 130, shape=shape, crs=BNG)
    # within floating-point reach of the study-area boundary, "inside" is ambiguous
    on_boundary = shapely.distance(area.boundary, shapely.points(x, y)) < 1e-6
    x, y = x[~on_boundary], y[~on_boundary]
    got = assign_to_cells(x, y, grid)
    counts = np.bincount(got[got >= 0], minlength=len(grid))
    assert counts.sum() == shapely.contains_xy(area, x, y).sum()


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from(["square", "hex"]))
def test_property_assignment_and_weights_independent_of_row_order(seed, shape):
    rng = np.random.default_rng(seed)
    grid = make_grid(Polygon([(0, 0), (900, 0), (900, 500), (300, 800), (0, 600)]), 100, shape=shape, crs=BNG)
    shuffled = grid.sample(frac=1.0, random_state=int(seed % 2**31)).reset_index(drop=True)
    x, y = rng.uniform(-50, 950, 300), rng.uniform(-50, 850, 300)
    a = assign_to_cells(x, y, grid)
    b = assign_to_cells(x, y, shuffled)
    ids_a = np.where(a >= 0, grid["cell_id"].to_numpy()[a], "")
    ids_b = np.where(b >= 0, shuffled["cell_id"].to_numpy()[b], "")
    np.testing.assert_array_equal(ids_a, ids_b)
    wa, wb = grid_weights(grid), grid_weights(shuffled)
    pairs_a = {(grid["cell_id"].iloc[i], grid["cell_id"].iloc[j]) for i, j in zip(*wa.nonzero())}
    pairs_b = {(shuffled["cell_id"].iloc[i], shuffled["cell_id"].iloc[j]) for i, j in zip(*wb.nonzero())}
    assert pairs_a == pairs_b


# --------------------------------------------------------------------------- grid_weights
@pytest.mark.parametrize("rook", [False, True])
def test_weights_match_libpysal_lat2w_on_a_full_rectangle(rook):
    from libpysal.weights import lat2W

    n_rows, n_cols = 5, 7
    grid = make_grid(box(0, 0, n_cols * 100, n_rows * 100), 100, crs=BNG)
    # make_grid sorts row-major from the south-west, as lat2W numbers r * ncols + c
    assert (grid["row"] * n_cols + grid["col"]).tolist() == list(range(n_rows * n_cols))
    w = grid_weights(grid, neighbourhood="rook" if rook else "queen", include_self=False)
    reference = lat2W(n_rows, n_cols, rook=rook)
    assert neighbour_sets(w) == [set(reference.neighbors[i]) for i in range(n_rows * n_cols)]


def test_weights_are_binary_with_self_and_sorted():
    grid = make_grid(box(0, 0, 500, 500), 100, crs=BNG)
    w = grid_weights(grid)
    assert w.format == "csr" and w.has_sorted_indices
    assert set(np.unique(w.data)) == {1.0}
    assert (w.diagonal() == 1).all()
    assert (w != w.T).nnz == 0
    assert np.bincount(np.diff(w.indptr)).tolist()[4:] == [4, 0, 12, 0, 0, 9]  # corners, edges, interior


def test_distance_band_neighbours():
    grid = make_grid(box(0, 0, 900, 900), 100, crs=BNG)
    queen = grid_weights(grid)
    band = grid_weights(grid, neighbourhood="distance", distance=100 * math.sqrt(2))
    assert (queen != band).nnz == 0
    wide = grid_weights(grid, neighbourhood="distance", distance=200, include_self=False)
    centre = int(np.flatnonzero((grid["row"] == 4) & (grid["col"] == 4))[0])
    assert wide[centre].nnz == 12
    hexes = make_grid(box(0, 0, 2000, 2000), 100, shape="hex", crs=BNG)
    interior = int(np.flatnonzero((hexes["row"] == 10) & (hexes["col"] == 10))[0])
    assert grid_weights(hexes, include_self=False)[interior].nnz == 6
    assert grid_weights(hexes, neighbourhood="distance", distance=100, include_self=False)[interior].nnz == 6
    ring2 = grid_weights(hexes, neighbourhood="distance", distance=100 * math.sqrt(3), include_self=False)
    assert ring2[interior].nnz == 12
    # the hex neighbours are exactly the cells whose centres are one cell size apart
    xy = hexes[["x_centre", "y_centre"]].to_numpy()
    nbrs = grid_weights(hexes, include_self=False)[interior].indices
    np.testing.assert_allclose(np.hypot(*(xy[nbrs] - xy[interior]).T), 100.0)


def test_cells_without_neighbours_keep_only_themselves():
    area = shapely.union_all([box(0, 0, 100, 100), box(5_000, 5_000, 5_100, 5_100)])
    grid = make_grid(area, 100, crs=BNG)
    assert len(grid) == 2
    w = grid_weights(grid)
    assert w.toarray().tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert grid_weights(grid, include_self=False).nnz == 0


def test_weights_bad_arguments():
    grid = make_grid(box(0, 0, 300, 300), 100, crs=BNG)
    with pytest.raises(ValidationError) as info:
        grid_weights(grid, neighbourhood="bishop")
    assert "bishop" in str(info.value)
    with pytest.raises(ValidationError):
        grid_weights(grid, neighbourhood="distance")
    with pytest.raises(ValidationError) as info:
        grid_weights(grid, distance=300)
    assert "neighbourhood='distance'" in info.value.hint
    with pytest.raises(ValidationError):
        grid_weights(grid.drop(columns=["row"]))


# ---------------------------------------------------------------- grids kept per process
def test_make_grid_builds_each_grid_once_and_returns_independent_copies(monkeypatch):
    import hotspots.geo.grid as gridmod

    monkeypatch.setattr(gridmod, "_MEMO", type(gridmod._MEMO)())
    built = []
    real = gridmod._build_grid
    monkeypatch.setattr(gridmod, "_build_grid", lambda *a: built.append(a[1:3]) or real(*a))
    area = wiggly_area()
    first = make_grid(area, 250, crs=BNG)
    first["count"] = 1
    first.loc[first.index[0], "cell_area_km2"] = -1.0
    first.attrs["grid"]["n_rows"] = -5
    again = make_grid(gpd.GeoDataFrame(geometry=[area], crs=BNG), 250.0)
    assert built == [(250, "square")]  # the same area, size, shape and CRS: not built again
    fresh = real(area, 250, "square", gridmod._resolve_area(area, BNG)[1])
    assert list(again.columns) == GRID_COLUMNS
    assert again.drop(columns="geometry").equals(fresh.drop(columns="geometry"))
    assert shapely.equals_exact(again.geometry.values, fresh.geometry.values, 0).all()
    assert again.attrs == fresh.attrs
    # any change of area, size or shape is another grid
    make_grid(area, 200, crs=BNG)
    make_grid(area, 250, shape="hex", crs=BNG)
    make_grid(shapely.affinity.translate(area, 1.0), 250, crs=BNG)
    assert built == [(250, "square"), (200, "square"), (250, "hex"), (250, "square")]


def test_make_grid_keeps_at_most_the_last_grids(monkeypatch):
    import hotspots.geo.grid as gridmod

    monkeypatch.setattr(gridmod, "_MEMO", type(gridmod._MEMO)())
    monkeypatch.setattr(gridmod, "_MEMO_SIZE", 2)
    for size in (100, 200, 300):
        make_grid(box(0, 0, 1000, 1000), size, crs=BNG)
    assert [k[1] for k in gridmod._MEMO] == [200.0, 300.0]
