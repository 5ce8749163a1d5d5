"""The counts stage's shortcuts give the tables the plain code gives."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from hotspots.geo.aggregate import _area_info, count_points


def _points(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lsoa = rng.choice(["L1", "L2", "L3", "L4", "", None], n).astype(object)
    return pd.DataFrame({
        "x": rng.uniform(0, 3000, n), "y": rng.uniform(0, 1000, n),
        "month": pd.array(rng.choice(["2025-01", "2025-02", "2025-04", "2024-12"], n), dtype="str"),
        "crime_type": pd.array(rng.choice(["Burglary", "Drugs", "Robbery", "Made up"], n), dtype="str"),
        "lsoa21_code": pd.array(lsoa, dtype="str"),
    })


def _areas(area_type: str) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"area_type": area_type, "area_code": ["B", "A", "C"], "area_name": ["b", "a", "c"],
                             "district_code": "", "population": [100.0, 200.0, 0.0], "area_km2": 1.0},
                            geometry=[box(0, 0, 1000, 1000), box(1000, 0, 2000, 1000), box(2000, 0, 2500, 1000)], crs=27700)


@pytest.mark.parametrize("area_type,lsoa_to_area", [
    ("district", pd.Series({"L1": "A", "L2": "B", "L3": "A", "L4": "Z"})),
    ("lsoa", None),
    ("user", None),  # spatial
])
def test_categorical_points_count_the_same(area_type, lsoa_to_area):
    """What Context.counts hands count_points (text as categoricals) gives the same table as the text itself."""
    points = _points()
    areas = _areas(area_type)
    if area_type == "lsoa":
        areas = areas.assign(area_code=["L2", "L1", "L9"])
    coded = pd.DataFrame({c: points[c].astype("category") if c in ("month", "crime_type", "lsoa21_code") else points[c]
                          for c in ("x", "y", "month", "crime_type", "lsoa21_code")})
    for kwargs in ({"months": ["2025-01", "2025-02", "2025-03"], "crime_types": ["Burglary", "Drugs", "Theft"]}, {}):
        plain = count_points(points, areas, lsoa_to_area=lsoa_to_area, **kwargs)
        fast = count_points(coded, areas, lsoa_to_area=lsoa_to_area, **kwargs)
        pd.testing.assert_frame_equal(plain, fast, check_exact=True)
        assert plain.attrs == fast.attrs and plain["count"].sum() > 0


def test_area_info_is_the_map():
    info = pd.DataFrame({"population": [10, 20.5], "area_km2": [1.0, np.nan]}, index=pd.Index(["A", "B"]))
    for codes in (pd.Series(["A", "B", "Z", "A"] * 5, dtype="str"), pd.Series(["A", None, "B"], dtype=object),
                  pd.Series([], dtype="str")):
        pop, km2 = _area_info(codes, info)
        np.testing.assert_array_equal(np.asarray(pop), codes.map(info["population"]).astype(float).to_numpy())
        np.testing.assert_array_equal(np.asarray(km2), codes.map(info["area_km2"]).astype(float).to_numpy())


@pytest.mark.realdata
def test_context_counts_are_count_points_on_the_records(real_context):
    from hotspots.stages.counts import COUNT_AREA_TYPES

    ctx = real_context
    geo = ctx.geography
    for area_type in COUNT_AREA_TYPES:
        plain = count_points(ctx.points, geo.areas(area_type), months=ctx.months_present, crime_types=ctx.all_crime_types,
                             lsoa_to_area=geo.lsoa_to_area(area_type))
        pd.testing.assert_frame_equal(ctx.counts(area_type), plain, check_exact=True)
        assert ctx.counts(area_type).attrs == plain.attrs


def _period_counts(seed: int = 0, zeros: bool = True) -> pd.DataFrame:
    points = _points(4000, seed)
    areas = _areas("district")
    return count_points(points, areas, months=["2024-12", "2025-01", "2025-02", "2025-03", "2025-04"] if zeros else None,
                        crime_types=["Burglary", "Drugs", "Robbery", "Made up", "Theft"] if zeros else None,
                        lsoa_to_area=pd.Series({"L1": "A", "L2": "B", "L3": "C", "L4": "A"}), zeros=zeros)


GROUPS = {"All": ("Burglary", "Drugs", "Robbery", "Made up"), "Drugs": ("Drugs", "Robbery"),  # a group named as a type
          "Aaa first": ("Robbery",), "Theft and drugs": ("Theft", "Drugs")}


def _periods():
    from hotspots.geo.aggregate import Period

    return [Period("all", ("2024-12", "2025-01", "2025-02", "2025-03", "2025-04")), Period("cur", ("2025-02", "2025-03")),
            Period("gap", ("2025-02", "2099-01"))]


@pytest.mark.parametrize("zeros", [True, False])
def test_group_rates_is_rates_of_add_groups(zeros):
    from hotspots.geo._group_rates import _group_rates, group_rates
    from hotspots.geo.aggregate import add_groups, rates

    counts, areas = _period_counts(1, zeros), _areas("district")
    for groups in (GROUPS, {}, {"ASB": ("Burglary",)}):
        ref = rates(add_groups(counts, groups), areas, _periods())
        assert _group_rates(counts, groups, areas, _periods()) is not None  # the shortcut ran
        pd.testing.assert_frame_equal(group_rates(counts, groups, areas, _periods()), ref, check_exact=True)
    # what the shortcut leaves to the long way gives the long way's frame
    for counts_, groups, periods in (
        (counts, {**GROUPS, "None here": ("Nothing",)}, _periods()),
        (counts, GROUPS, _periods() + [type(_periods()[0])("empty", ("1999-01",))]),
        (counts.assign(month=counts["month"].where(counts.index % 7 != 0)), GROUPS, _periods()),
        (counts.assign(count=counts["count"].astype(float)), GROUPS, _periods()),
    ):
        assert _group_rates(counts_, groups, areas, periods) is None
        pd.testing.assert_frame_equal(group_rates(counts_, groups, areas, periods),
                                      rates(add_groups(counts_, groups), areas, periods), check_exact=True)


@pytest.mark.realdata
def test_group_rates_on_the_real_counts(real_context):
    from hotspots.geo._group_rates import _group_rates, group_rates
    from hotspots.geo.aggregate import Period, add_groups, rates
    from hotspots.stages.counts import COUNT_AREA_TYPES

    ctx = real_context
    months = ctx.months_present
    periods = [Period("all", tuple(months)), ctx.periods.current] + ([ctx.periods.comparison] if ctx.periods.comparison else [])
    for area_type in COUNT_AREA_TYPES:
        counts, areas = ctx.counts(area_type), ctx.geography.areas(area_type)
        assert _group_rates(counts, ctx.settings.crime_groups, areas, periods) is not None
        pd.testing.assert_frame_equal(group_rates(counts, ctx.settings.crime_groups, areas, periods),
                                      rates(add_groups(counts, ctx.settings.crime_groups), areas, periods), check_exact=True)


def test_reconcile_districts_by_distinct_code_is_the_map():
    from hotspots.geo.aggregate import reconcile_districts

    points = _points(3000, seed=5)
    districts = _areas("district")
    lsoa_district = pd.Series({"L1": "A", "L2": "B", "L3": "Z"}, dtype="str")
    summary, table = reconcile_districts(points, districts, lsoa_district)
    # the reference: every point's code mapped (the code before)
    by_code = points["lsoa21_code"].map(lsoa_district).fillna("").to_numpy()
    from hotspots.geo.assign import assign_points

    pairs = assign_points(points["x"].to_numpy(), points["y"].to_numpy(), districts, exclusive=True)
    spatial = np.full(len(points), "", dtype=object)
    spatial[pairs["point"].to_numpy()] = districts["area_code"].to_numpy()[pairs["area"].to_numpy()]
    compared = spatial != ""
    assert summary["agree"] == int((compared & (spatial == by_code)).sum()) > 0
    assert summary["disagree"] == int(table["rows"].sum()) > 0
