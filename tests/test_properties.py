"""Property tests (hypothesis): counts are preserved, order and file layout do not matter,
and the row accounting always balances.

Examples are kept few (``max_examples``) so the file runs in a few seconds.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from hotspots.geo.aggregate import count_points
from hotspots.io.police_uk import read_police_uk
from hotspots.schema import POLICE_UK_STREET_HEADER

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MONTHS = ["2025-01", "2025-02", "2025-03", "2025-04"]
TYPES = ["Anti-social behaviour", "Burglary", "Shoplifting", "Vehicle crime"]

good_rows = st.fixed_dictionaries(
    {
        # around Hertfordshire, at police.uk's 6 decimals
        "lon": st.integers(-450_000, -50_000).map(lambda v: f"{v / 1e6:.6f}"),
        "lat": st.integers(51_650_000, 51_950_000).map(lambda v: f"{v / 1e6:.6f}"),
        "month": st.sampled_from(MONTHS),
        "crime_type": st.sampled_from(TYPES),
    }
)


def as_fields(r: dict, crime_id: str) -> list[str]:
    cid = "" if r["crime_type"] == "Anti-social behaviour" else crime_id
    return [cid, r["month"], "Hertfordshire Constabulary", "Hertfordshire Constabulary", r["lon"], r["lat"],
            "On or near Somewhere", "E01023800", "St Albans 001A", r["crime_type"], "", ""]


def csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(POLICE_UK_STREET_HEADER)
    w.writerows(rows)
    return buf.getvalue()


def read(files: dict[str, list[list[str]] | str], **kwargs):
    with tempfile.TemporaryDirectory() as d:
        for name, rows in files.items():
            (Path(d) / name).write_text(rows if isinstance(rows, str) else csv_text(rows), newline="")
        res = read_police_uk(Path(d), **kwargs)
    return res


def comparable(points: pd.DataFrame) -> pd.DataFrame:
    cols = ["record_id", "month", "crime_type", "x", "y", "location", "lsoa_code"]
    return points[cols].sort_values(cols).reset_index(drop=True)


def grid_partition(x0, y0, x1, y1, xcuts, ycuts) -> gpd.GeoDataFrame:
    """Rectangles tiling [x0, x1] x [y0, y1] with the given interior cut positions."""
    xs = sorted({x0, x1, *[c for c in xcuts if x0 < c < x1]})
    ys = sorted({y0, y1, *[c for c in ycuts if y0 < c < y1]})
    geoms = [box(a, b, c, d) for a, c in zip(xs, xs[1:]) for b, d in zip(ys, ys[1:])]
    n = len(geoms)
    return gpd.GeoDataFrame(
        {"area_type": "district", "area_code": [f"C{i:04d}" for i in range(n)], "area_name": "", "district_code": "",
         "population": 1.0, "area_km2": 1.0},
        geometry=geoms, crs=27700,
    )


# --------------------------------------------------------------------------- counts preserved
@SETTINGS
@given(
    pts=st.lists(st.tuples(st.integers(0, 10), st.integers(0, 10)), min_size=0, max_size=60),
    xcuts=st.lists(st.integers(1, 9), max_size=4),
    ycuts=st.lists(st.integers(1, 9), max_size=4),
)
def test_partition_counts_every_point_once_even_on_edges(pts, xcuts, ycuts):
    # coordinates on a 100 m lattice so many points sit exactly on shared edges and corners
    areas = grid_partition(0, 0, 1000, 1000, [c * 100 for c in xcuts], [c * 100 for c in ycuts])
    points = pd.DataFrame({"x": [p[0] * 100.0 for p in pts], "y": [p[1] * 100.0 for p in pts],
                           "month": "2025-01", "crime_type": "Burglary", "lsoa21_code": ""})
    counts = count_points(points, areas, months=["2025-01"], crime_types=["Burglary"])
    assert counts["count"].sum() == len(points)
    assert len(counts) == len(areas)


@SETTINGS
@given(rows=st.lists(good_rows, min_size=1, max_size=40), cut_at_points=st.lists(st.integers(0, 39), max_size=3),
       ncuts=st.integers(0, 4))
def test_total_counts_over_a_partition_equal_the_located_rows(rows, cut_at_points, ncuts):
    res = read({"2025-01-hertfordshire-street.csv": [as_fields(r, f"id{i}") for i, r in enumerate(rows)]})
    pts = res.points
    assert len(pts) == len(rows)
    x0, y0 = np.floor(pts[["x", "y"]].min().to_numpy()) - 1
    x1, y1 = np.ceil(pts[["x", "y"]].max().to_numpy()) + 1
    # some cuts exactly through points, the rest evenly spaced
    xcuts = [pts["x"].iloc[i % len(pts)] for i in cut_at_points] + list(np.linspace(x0, x1, ncuts + 2)[1:-1])
    ycuts = [pts["y"].iloc[i % len(pts)] for i in cut_at_points] + list(np.linspace(y0, y1, ncuts + 2)[1:-1])
    areas = grid_partition(x0, y0, x1, y1, xcuts, ycuts)
    counts = count_points(pts, areas, months=MONTHS, crime_types=TYPES)
    assert counts["count"].sum() == res.accounting.kept == len(rows)
    # per month and type too
    by = counts.groupby(["month", "crime_type"])["count"].sum()
    expected = pts.groupby(["month", "crime_type"]).size()
    assert (by[by > 0] == expected.reindex(by[by > 0].index)).all() and by.sum() == expected.sum()


# --------------------------------------------------------------------------- order and layout
@SETTINGS
@given(rows=st.lists(good_rows, min_size=1, max_size=40), data=st.data())
def test_counts_do_not_depend_on_row_order(rows, data):
    fields = [as_fields(r, f"id{i}") for i, r in enumerate(rows)]  # unique ids: order cannot pick a duplicate
    shuffled = data.draw(st.permutations(fields))
    a = read({"2025-01-hertfordshire-street.csv": fields})
    b = read({"2025-01-hertfordshire-street.csv": list(shuffled)})
    pd.testing.assert_frame_equal(comparable(a.points), comparable(b.points))
    areas = grid_partition(480_000, 180_000, 560_000, 260_000, [500_000, 515_000, 530_000], [200_000, 215_000])
    ca = count_points(a.points, areas, months=MONTHS, crime_types=TYPES)
    cb = count_points(b.points, areas, months=MONTHS, crime_types=TYPES)
    pd.testing.assert_frame_equal(ca, cb)


@SETTINGS
@given(rows=st.lists(good_rows, min_size=1, max_size=40), data=st.data())
def test_splitting_the_input_into_files_changes_nothing(rows, data):
    fields = [as_fields(r, f"id{i}") for i, r in enumerate(rows)]
    k = data.draw(st.integers(1, min(5, len(fields))))
    bounds = sorted(data.draw(st.lists(st.integers(1, len(fields) - 1), min_size=k - 1, max_size=k - 1, unique=True))) if k > 1 else []
    chunks = np.split(np.arange(len(fields)), bounds)
    # each chunk is its own force-month file name (police.uk names; the rows keep their own Month)
    files = {f"2025-{i + 1:02d}-hertfordshire-street.csv": [fields[j] for j in chunk] for i, chunk in enumerate(chunks)}
    one = read({"2025-01-hertfordshire-street.csv": fields})
    many = read(files)
    assert len(many.accounting.files) == len(chunks)
    pd.testing.assert_frame_equal(comparable(one.points), comparable(many.points))
    areas = grid_partition(480_000, 180_000, 560_000, 260_000, [515_000], [207_000])
    pd.testing.assert_frame_equal(count_points(one.points, areas, months=MONTHS, crime_types=TYPES),
                                  count_points(many.points, areas, months=MONTHS, crime_types=TYPES))


# --------------------------------------------------------------------------- accounting
KINDS = ["good", "good", "good", "no_coordinates", "outside_uk", "swapped", "wrong_field_count", "bad_month",
         "not_a_number", "outside_month_range", "unknown_crime_type", "duplicate_crime_id", "asb_no_id"]
REASON = {
    "no_coordinates": "no_coordinates", "outside_uk": "outside_uk", "swapped": "outside_uk",
    "wrong_field_count": "malformed_row", "bad_month": "malformed_row", "not_a_number": "malformed_row",
    "outside_month_range": "outside_month_range", "unknown_crime_type": "unknown_crime_type",
    "duplicate_crime_id": "duplicate_crime_id",
}


@settings(max_examples=40, deadline=None)
@given(kinds=st.lists(st.sampled_from(KINDS), min_size=0, max_size=50), base=good_rows,
       n_files=st.integers(1, 3), data=st.data())
def test_accounting_always_balances_for_mixed_good_and_bad_rows(kinds, base, n_files, data):
    files: dict[str, list[str]] = {}
    expected: dict[str, int] = {}
    kept_ids: list[str] = []
    n_kept = 0
    lines_by_file: list[list[str]] = [[] for _ in range(n_files)]
    for i, kind in enumerate(kinds):
        r = dict(base, crime_type="Burglary")
        cid = f"id{i}"
        if kind == "duplicate_crime_id" and not kept_ids:
            kind = "good"
        if kind == "no_coordinates":
            r["lon"] = r["lat"] = ""
        elif kind == "outside_uk":
            r["lon"], r["lat"] = "2.352200", "48.856600"
        elif kind == "swapped":
            r["lon"], r["lat"] = r["lat"], r["lon"]
        elif kind == "bad_month":
            r["month"] = data.draw(st.sampled_from(["2025-13", "25-01", "", "January"]))
        elif kind == "not_a_number":
            r["lat"] = data.draw(st.sampled_from(["abc", "nan", "1e999", "51,7"]))
        elif kind == "outside_month_range":
            r["month"] = "2024-12"
        elif kind == "unknown_crime_type":
            r["crime_type"] = "Jaywalking"
        elif kind == "duplicate_crime_id":
            cid = data.draw(st.sampled_from(kept_ids))
        elif kind == "asb_no_id":
            r["crime_type"] = "Anti-social behaviour"
        fields = as_fields(r, cid)
        if kind == "wrong_field_count":
            fields = fields[: data.draw(st.integers(1, 11))] if data.draw(st.booleans()) else fields + ["extra"]
        line = csv_text([fields]).split("\n", 1)[1]
        lines_by_file[data.draw(st.integers(0, n_files - 1))].append(line)
        if kind in REASON:
            expected[REASON[kind]] = expected.get(REASON[kind], 0) + 1
        else:
            n_kept += 1
            if r["crime_type"] != "Anti-social behaviour":
                kept_ids.append(cid)
    header = csv_text([])
    for j, lines in enumerate(lines_by_file):
        files[f"2025-{j + 1:02d}-hertfordshire-street.csv"] = header + "".join(lines)
    res = read(files, first_month="2025-01", last_month="2025-04")
    acc = res.accounting
    assert acc.rows_read == len(kinds)
    assert acc.kept == n_kept == len(res.points)
    assert acc.dropped_by_reason() == expected
    assert acc.kept + sum(acc.dropped_by_reason().values()) == acc.rows_read
    for f in acc.files.values():
        assert f.kept + sum(f.dropped.values()) == f.rows_read
    acc.check(res.points)
