"""The map views' shortcuts (issue 18, round 6) against the long way: the same patrol rows, the same street context.

* the county map ranks each selection's rows taken from one grouping, not from the whole table each time;
* the trend in words is made once for the whole table, not once per map and selection;
* the street context is given only the records in the area's bounding box.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from geopandas.testing import assert_geodataframe_equal

from hotspots.detect._points import PointCodes
from hotspots.detect.tables import county_patrol_ranking, street_context
from hotspots.stages._hotspots_maps import _by_selection, _trend_words


def _patrol(n: int = 60) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(11)
    return gpd.GeoDataFrame({
        "selection": pd.array(rng.choice(["All crime", "ASB", "Burglary"], n), dtype="str"),
        "count": rng.integers(5, 9, n),  # many ties: the ranking's sort must see the same rows in the same order
        "harm_total": rng.choice([10.0, 20.0, 30.0], n), "rank": rng.integers(1, 5, n),
        "trend": pd.array(rng.choice(["rising (H2 vs H1 +62%)", "falling (H2 vs H1 -10%)", "no clear trend"], n),
                          dtype="str"),
        "change_h2_vs_h1_pct": rng.choice([62.0, -10.0, np.nan], n),
    }, geometry=[shapely.box(i, 0, i + 1, 1) for i in range(n)], crs=27700, index=rng.permutation(n) + 100)


def test_county_ranking_of_the_grouped_rows_is_that_of_the_table():
    patrol = _patrol()
    rows = _by_selection(patrol)
    for sel in ["All crime", "ASB", "Burglary", "Vehicle crime"]:
        for rank_by in ("count", "harm"):
            want = county_patrol_ranking(patrol, selection=sel, rank_by=rank_by)
            got = county_patrol_ranking(rows(sel), selection=sel, rank_by=rank_by)
            assert_geodataframe_equal(got, want, check_index_type=True)


def test_trend_words_of_the_table_are_those_of_each_selection():
    halves = ("Jan–Jun 2025", "Jul–Dec 2025")
    patrol = _patrol()

    def words(pa):
        return pa.assign(trend=[_trend_words(t, c, halves) for t, c in zip(pa["trend"], pa["change_h2_vs_h1_pct"])])

    worded = words(patrol)
    for sel in ["All crime", "ASB", "Burglary"]:
        assert_geodataframe_equal(_by_selection(worded)(sel), words(_by_selection(patrol)(sel)), check_index_type=True)
        assert_geodataframe_equal(county_patrol_ranking(_by_selection(worded)(sel), selection=sel, rank_by="count"),
                                  words(county_patrol_ranking(patrol, selection=sel, rank_by="count")),
                                  check_index_type=True)


def test_street_context_of_the_records_in_the_box_is_that_of_all():
    rng = np.random.default_rng(12)
    n = 4000
    pts = pd.DataFrame({"x": rng.integers(0, 60, n) * 50.0, "y": rng.integers(0, 60, n) * 50.0,
                        "location": [f"On or near Road {i % 17}" if i % 5 else "On or near Supermarket" for i in range(n)],
                        "month": "2025-01", "crime_type": "Burglary"})
    pts.loc[::97, "x"] = np.nan
    codes = PointCodes.of(pts, pd.Series(dtype=float))
    area = shapely.Polygon([(500, 500), (2000, 700), (1800, 2100), (900, 1500), (600, 1900)])  # not its box
    patrols = [shapely.box(1000, 1000, 1300, 1300), shapely.box(1500, 900, 1700, 1200)]
    rows = np.flatnonzero(rng.random(n) < 0.8)
    minx, miny, maxx, maxy = area.bounds
    x, y = codes.x[rows], codes.y[rows]
    boxed = rows[(x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy)]
    assert 0 < len(boxed) < len(rows)
    for points_too in (True, False):
        want = street_context(codes, rows, area, patrols, points_too=points_too)
        got = street_context(codes, boxed, area, patrols, points_too=points_too)
        for a, b in zip(got, want):
            pd.testing.assert_frame_equal(a, b)
    outside = rows[(x > maxx)]
    for a, b in zip(street_context(codes, outside[:0], area, patrols), street_context(codes, outside, area, patrols)):
        pd.testing.assert_frame_equal(a, b)
