"""Aggregate: counts by area x month x crime type (zeros included), rates, groups, periods, reconciliation.

Every expected number below is worked out by hand from the tiny example.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from hotspots.geo.aggregate import Period, add_groups, count_points, rates, reconcile_districts, resolve_periods
from hotspots.months import month_range
from hotspots.schema import COUNT_COLUMNS, RATE_COLUMNS

MONTHS = ["2025-01", "2025-02", "2025-03"]
TYPES = ["Burglary", "Robbery", "Shoplifting"]


@pytest.fixture
def areas() -> gpd.GeoDataFrame:
    # A: 1 km2, 2,000 residents; B: 2 km2, 500 residents; they share the edge x = 1000
    return gpd.GeoDataFrame(
        {
            "area_type": "district",
            "area_code": ["A", "B"],
            "area_name": ["Alpha", "Beta"],
            "district_code": ["A", "B"],
            "population": [2000.0, 500.0],
            "area_km2": [1.0, 2.0],
        },
        geometry=[box(0, 0, 1000, 1000), box(1000, 0, 3000, 1000)],
        crs=27700,
    )


@pytest.fixture
def points() -> pd.DataFrame:
    rows = [
        (100, 100, "2025-01", "Burglary", "L_A1"),
        (900, 900, "2025-01", "Burglary", "L_A2"),
        (1500, 500, "2025-01", "Burglary", "L_B1"),
        (1000, 500, "2025-02", "Shoplifting", "L_A1"),   # on the shared edge -> A (lowest code)
        (2000, 200, "2025-03", "Burglary", "L_B1"),
        (2500, 300, "2025-03", "Burglary", "L_B1"),
        (2999, 999, "2025-03", "Burglary", "L_B1"),
        (5000, 5000, "2025-03", "Burglary", ""),          # outside both areas
    ]
    return pd.DataFrame(rows, columns=["x", "y", "month", "crime_type", "lsoa21_code"]).astype({"x": float, "y": float})


EXPECTED_NONZERO = {
    ("A", "2025-01", "Burglary"): 2,
    ("B", "2025-01", "Burglary"): 1,
    ("A", "2025-02", "Shoplifting"): 1,
    ("B", "2025-03", "Burglary"): 3,
}


def test_counts_by_area_month_type_with_zeros(areas, points):
    counts = count_points(points, areas, months=MONTHS, crime_types=TYPES)
    assert list(counts.columns) == COUNT_COLUMNS
    assert counts.attrs["method"] == "spatial"
    assert len(counts) == 2 * 3 * 3  # every area x month x type
    got = counts.set_index(["area_code", "month", "crime_type"])["count"]
    assert got.dtype == np.int64
    for key, n in got.items():
        assert n == EXPECTED_NONZERO.get(key, 0), key
    assert counts["count"].sum() == 7  # the point outside both areas is not counted
    assert set(counts["area_type"]) == {"district"}
    assert counts.set_index("area_code")["area_name"].to_dict() == {"A": "Alpha", "B": "Beta"}
    # sorted and stable
    assert counts[["area_code", "month", "crime_type"]].apply(tuple, axis=1).is_monotonic_increasing


def test_counts_default_to_months_and_types_present(areas, points):
    counts = count_points(points, areas)
    assert sorted(counts["month"].unique()) == MONTHS
    assert sorted(counts["crime_type"].unique()) == ["Burglary", "Shoplifting"]  # no Robbery column
    sparse = count_points(points, areas, zeros=False)
    assert len(sparse) == len(EXPECTED_NONZERO) and (sparse["count"] > 0).all()


def test_counts_by_lsoa_code_and_lookup(points):
    lsoas = gpd.GeoDataFrame(
        {"area_type": "lsoa", "area_code": ["L_A1", "L_A2", "L_B1"], "area_name": ["a1", "a2", "b1"],
         "district_code": ["A", "A", "B"], "population": [1000.0, 1000.0, 500.0], "area_km2": [0.5, 0.5, 2.0]},
        geometry=[box(0, 0, 1, 1)] * 3, crs=27700,  # polygons are not used by the lsoa_code method
    )
    counts = count_points(points, lsoas, months=MONTHS, crime_types=TYPES)
    assert counts.attrs["method"] == "lsoa_code"
    totals = counts.groupby("area_code")["count"].sum().to_dict()
    assert totals == {"L_A1": 2, "L_A2": 1, "L_B1": 4}  # the blank-LSOA point counts nowhere
    wards = lsoas.assign(area_type="ward").iloc[:2].copy()
    wards["area_code"] = ["W_A", "W_B"]
    lookup = pd.Series({"L_A1": "W_A", "L_A2": "W_A", "L_B1": "W_B"})
    by_ward = count_points(points, wards, months=MONTHS, crime_types=TYPES, lsoa_to_area=lookup)
    assert by_ward.groupby("area_code")["count"].sum().to_dict() == {"W_A": 3, "W_B": 4}


def test_districts_with_an_lsoa_lookup_count_by_code_not_by_location(areas, points):
    # the shared-edge point (1000, 500) carries L_A1 and the point (2999, 999) L_B1: by code the totals follow
    # the LSOAs; move a point across the edge and its district by code does not change
    lookup = pd.Series({"L_A1": "A", "L_A2": "A", "L_B1": "B"})
    moved = points.copy()
    moved.loc[0, "x"] = 2500.0   # an L_A1 record whose point lies in B's polygon
    spatial = count_points(moved, areas).groupby("area_code")["count"].sum().to_dict()
    by_code = count_points(moved, areas, lsoa_to_area=lookup)
    assert by_code.attrs["method"] == "lsoa_code"
    assert spatial == {"A": 2, "B": 5}
    assert by_code.groupby("area_code")["count"].sum().to_dict() == {"A": 3, "B": 4}
    assert count_points(moved, areas, lsoa_to_area=lookup, method="spatial").attrs["method"] == "spatial"


def test_overlapping_town_centres_count_a_point_in_each(points):
    tcs = gpd.GeoDataFrame(
        {"area_type": "town_centre", "area_code": ["TC01", "TC02"], "area_name": ["x", "y"], "district_code": "",
         "population": np.nan, "area_km2": 1.0},
        geometry=[box(0, 0, 1000, 1000), box(500, 0, 1500, 1000)], crs=27700,
    )
    counts = count_points(points, tcs, months=MONTHS, crime_types=TYPES)
    # TC01 holds 3 points (incl. the edge point); TC02 holds (900,900), (1500,500) on its edge, (1000,500)
    assert counts.groupby("area_code")["count"].sum().to_dict() == {"TC01": 3, "TC02": 3}


def test_rates_per_1000_and_per_km2_by_hand(areas, points):
    counts = count_points(points, areas, months=MONTHS, crime_types=TYPES)
    q1 = Period("2025-01..2025-03", tuple(MONTHS))
    jan = Period("2025-01", ("2025-01",))
    r = rates(counts, areas, [q1, jan])
    assert list(r.columns) == RATE_COLUMNS
    assert len(r) == 2 * 3 * 2
    row = r.set_index(["period", "area_code", "crime_type"])
    a = row.loc[("2025-01..2025-03", "A", "Burglary")]
    assert (a["count"], a["months"], a["population"], a["area_km2"]) == (2, 3, 2000.0, 1.0)
    assert a["rate_per_1000"] == pytest.approx(2 / 2000 * 1000)   # 1.0
    assert a["rate_per_km2"] == pytest.approx(2 / 1.0)            # 2.0
    b = row.loc[("2025-01..2025-03", "B", "Burglary")]
    assert b["count"] == 4
    assert b["rate_per_1000"] == pytest.approx(4 / 500 * 1000)    # 8.0
    assert b["rate_per_km2"] == pytest.approx(4 / 2.0)            # 2.0
    assert row.loc[("2025-01", "B", "Burglary"), "count"] == 1
    assert row.loc[("2025-01", "B", "Burglary"), "rate_per_1000"] == pytest.approx(2.0)
    zero = row.loc[("2025-01..2025-03", "A", "Robbery")]
    assert zero["count"] == 0 and zero["rate_per_1000"] == 0.0

    # no population or no area: NaN rate, never a division error or inf
    odd = areas.copy()
    odd["population"] = [np.nan, 0.0]
    odd["area_km2"] = [0.0, 2.0]
    r2 = rates(counts, odd, [q1]).set_index(["area_code", "crime_type"])
    assert math.isnan(r2.loc[("A", "Burglary"), "rate_per_1000"])
    assert math.isnan(r2.loc[("B", "Burglary"), "rate_per_1000"])
    assert math.isnan(r2.loc[("A", "Burglary"), "rate_per_km2"])
    assert np.isfinite(r2["rate_per_km2"].dropna()).all()


def test_add_groups_sums_member_categories(areas, points):
    counts = count_points(points, areas, months=MONTHS, crime_types=TYPES)
    out = add_groups(counts, {"Acquisitive": ("Burglary", "Shoplifting"), "Robbery only": ("Robbery",)})
    assert list(out.columns) == COUNT_COLUMNS
    assert len(out) == len(counts) + 2 * 2 * 3
    g = out[out["crime_type"] == "Acquisitive"].set_index(["area_code", "month"])["count"]
    assert g.to_dict() == {
        ("A", "2025-01"): 2, ("A", "2025-02"): 1, ("A", "2025-03"): 0,
        ("B", "2025-01"): 1, ("B", "2025-02"): 0, ("B", "2025-03"): 3,
    }
    assert out.loc[out["crime_type"] == "Robbery only", "count"].sum() == 0
    # the original categories are untouched
    pd.testing.assert_frame_equal(out.iloc[: len(counts)], counts)


# --------------------------------------------------------------------------- periods
def test_periods_full_year_earlier():
    p = resolve_periods(month_range("2024-01", "2025-12"))
    assert p.current.months == tuple(month_range("2025-01", "2025-12"))
    assert p.comparison.months == tuple(month_range("2024-01", "2024-12"))
    assert p.change_current == p.current
    assert "the same months a year earlier" in p.reason


def test_periods_partial_match_hertfordshire_case():
    present = month_range("2021-01", "2022-01") + month_range("2024-01", "2024-04") + month_range("2025-01", "2025-12")
    p = resolve_periods(present)
    assert p.current.label == "2025-01..2025-12" and len(p.current.months) == 12
    assert p.comparison.months == ("2024-01", "2024-02", "2024-03", "2024-04")
    assert p.comparison.label == "2024-01..2024-04"
    assert p.change_current.months == ("2025-01", "2025-02", "2025-03", "2025-04")
    assert "only 4 of the same months" in p.reason and "seasonally matched" in p.reason


def test_periods_without_any_earlier_month():
    p = resolve_periods(month_range("2021-01", "2022-01") + month_range("2025-01", "2025-12"))
    assert p.current.months == tuple(month_range("2025-01", "2025-12"))
    assert p.comparison is None and p.change_current is None
    assert "no comparison" in p.reason


def test_periods_latest_twelve_months_with_gaps():
    present = ["2024-10", "2024-12", "2025-03"]
    p = resolve_periods(present)
    assert p.current.label == "2024-04..2025-03"
    assert p.current.months == ("2024-10", "2024-12", "2025-03")
    assert "3 with data" in p.reason


def test_periods_from_the_config_override_the_automatic_choice():
    present = month_range("2024-01", "2025-12")
    p = resolve_periods(present, current=("2025-01", "2025-06"), comparison=("2024-07", "2024-12"))
    assert p.current.months == tuple(month_range("2025-01", "2025-06"))
    assert p.comparison.months == tuple(month_range("2024-07", "2024-12"))
    assert p.change_current == p.current
    assert "from the config" in p.reason
    only_current = resolve_periods(present, current=("2025-01", "2025-06"))
    assert only_current.comparison.months == tuple(month_range("2024-01", "2024-06"))
    with pytest.raises(ValueError, match="no months"):
        resolve_periods([])


# --------------------------------------------------------------------------- reconciliation
def test_reconcile_districts_on_a_hand_example(areas):
    pts = pd.DataFrame(
        {
            "x": [100.0, 200.0, 300.0, 400.0, 1500.0, 2500.0, 9999.0],
            "y": [100.0, 100.0, 100.0, 100.0, 500.0, 500.0, 9999.0],
            "lsoa21_code": ["L_A1", "L_A1", "L_A2", "L_B1", "L_B1", "", "L_A1"],
        }
    )
    lsoa_district = pd.Series({"L_A1": "A", "L_A2": "A", "L_B1": "B"})
    summary, table = reconcile_districts(pts, areas, lsoa_district)
    assert summary["located_rows_in_force_area"] == 6  # the far point is not compared
    assert summary["agree"] == 4 and summary["disagree"] == 2
    assert summary["agreement_share"] == pytest.approx(4 / 6)
    rows = {(r.spatial_district, r.lsoa_district): r for r in table.itertuples()}
    assert rows[("A", "B")].rows == 1 and rows[("A", "B")].lsoa_district_name == "Beta"
    assert rows[("B", "")].rows == 1 and rows[("B", "")].lsoa_district_name == "(outside the force / no LSOA)"
    assert list(table.columns) == ["spatial_district", "lsoa_district", "rows", "spatial_district_name", "lsoa_district_name"]


def test_bucket_candidates_equal_the_strtree_box_query():
    """The bucket index finds exactly the (point, polygon) pairs whose box holds the point, edges included."""
    import shapely

    from hotspots.geo.assign import _bbox_candidates, assign_points

    rng = np.random.default_rng(7)
    lo = rng.integers(0, 900, size=(300, 2)).astype(float)
    size = rng.choice([1.0, 10.0, 50.0, 400.0], size=(300, 2))
    geoms = np.array([box(a, b, a + w, b + h) for (a, b), (w, h) in zip(lo, size)] + [box(-5e4, -5e4, 5e4, 5e4), None,
                                                                                      shapely.Polygon()], dtype=object)
    # points on box corners and edges as well as random ones (and one far away)
    x = np.r_[rng.uniform(-10, 1500, 4000), lo[:, 0], lo[:, 0] + size[:, 0], 1e6]
    y = np.r_[rng.uniform(-10, 1500, 4000), lo[:, 1] + size[:, 1], lo[:, 1], 1e6]
    point, poly = _bbox_candidates(x, y, shapely.bounds(geoms))
    tree = shapely.STRtree(geoms)
    expected = tree.query(shapely.points(x, y))
    assert sorted(zip(point.tolist(), poly.tolist())) == sorted(zip(expected[0].tolist(), expected[1].tolist()))
    # and assignment agrees with the exact predicate on every point (exclusive: lowest code wins)
    areas = gpd.GeoDataFrame({"area_code": [f"A{i:04d}" for i in range(len(geoms))]}, geometry=list(geoms), crs=27700)
    pairs = assign_points(x, y, areas, exclusive=False)
    hits = tree.query(shapely.points(x, y), predicate="intersects")
    assert sorted(zip(pairs["point"], pairs["area"])) == sorted(zip(hits[0].tolist(), hits[1].tolist()))
    first = assign_points(x, y, areas)
    lowest = pd.DataFrame({"point": hits[0], "area": hits[1]}).groupby("point")["area"].min()
    assert first["point"].tolist() == lowest.index.tolist() and first["area"].tolist() == lowest.tolist()


def test_distinct_locations_survive_key_collisions(monkeypatch):
    """Every key equal (a forced collision): the exact fallback still gives each location its own number."""
    import hotspots.geo.assign as assign

    rng = np.random.default_rng(3)
    x = rng.choice([0.0, -0.0, 1.5, 2.5, np.nan], 500)
    y = rng.choice([0.0, 1.5, 7.0], 500)
    want = assign._distinct_locations(x, y)
    monkeypatch.setattr(assign, "_HASH_X", np.uint64(0))
    monkeypatch.setattr(assign, "_HASH_Y", np.uint64(0))
    got = assign._distinct_locations(x, y)
    for point_index, location, loc_x, loc_y in (want, got):
        assert point_index.tolist() == np.flatnonzero(np.isfinite(x)).tolist()
        pairs = set(zip(x[point_index] + 0.0, y[point_index]))
        assert len(loc_x) == len(pairs) == len(set(zip(loc_x, loc_y)))  # -0.0 and 0.0 are one location
        assert (loc_x[location] == x[point_index]).all() and (loc_y[location] == y[point_index]).all()
