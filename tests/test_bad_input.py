"""Bad-input corpus: every kind of broken or awkward input an analyst may hand the toolkit.

Each case builds its own input in tmp_path and asserts either a clear error (the type, and a
message naming the file, row or argument) or the right row accounting.  One parametrised test
runs them all; the case names say what is tried.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box, mapping

from hotspots._errors import CRSError, HotspotsError, InputFileError, ValidationError
from hotspots.geo.aggregate import count_points
from hotspots.geo.boundaries import read_boundary, read_user_areas
from hotspots.io import ColumnMapping, harmonise_lsoa, read_force_export, read_police_uk
from hotspots.schema import POINT_COLUMNS, POLICE_UK_STREET_HEADER

CASES: dict[str, Callable[[Path], None]] = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


NAME = "2025-01-hertfordshire-street.csv"


def row(crime_id="c1", month="2025-01", lon="-0.340000", lat="51.752700", location="On or near High Street",
        lsoa="E01023800", crime_type="Burglary"):
    return [crime_id, month, "Hertfordshire Constabulary", "Hertfordshire Constabulary", lon, lat, location, lsoa,
            "St Albans 001A", crime_type, "", ""]


def text(rows, header=POLICE_UK_STREET_HEADER, newline="\n") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=newline)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def put(tmp: Path, rows, name=NAME, **kw) -> Path:
    p = tmp / name
    p.write_text(text(rows, **kw), encoding="utf-8", newline="")
    return p


def balanced(res) -> None:
    acc = res.accounting
    assert acc.kept + sum(acc.dropped_by_reason().values()) == acc.rows_read
    assert acc.kept == len(res.points)
    for f in acc.files.values():
        assert f.kept + sum(f.dropped.values()) == f.rows_read


def notes(res) -> list[str]:
    return [n for f in res.accounting.files.values() for n in f.notes]


# --------------------------------------------------------------------------- file level
@case
def empty_file(tmp):
    p = tmp / NAME
    p.write_bytes(b"")
    with pytest.raises(InputFileError, match="file is empty") as e:
        read_police_uk(p)
    assert str(p) in e.value.message


@case
def blank_lines_only(tmp):
    p = tmp / NAME
    p.write_text("\n\n\r\n")
    with pytest.raises(InputFileError, match="file is empty"):
        read_police_uk(p)


@case
def header_only_is_zero_rows(tmp):
    res = read_police_uk(put(tmp, []))
    assert len(res.points) == 0 and list(res.points.columns) == POINT_COLUMNS
    assert res.accounting.rows_read == 0
    balanced(res)


@case
def header_only_gz_is_zero_rows(tmp):
    p = tmp / (NAME + ".gz")
    p.write_bytes(gzip.compress(text([]).encode()))
    res = read_police_uk(p)
    assert res.accounting.rows_read == 0 and len(res.points) == 0


@case
def truncated_gz(tmp):
    p = tmp / (NAME + ".gz")
    p.write_bytes(gzip.compress(text([row(f"c{i}") for i in range(200)]).encode())[:-100])
    with pytest.raises(InputFileError, match="truncated or corrupt") as e:
        read_police_uk(p)
    assert str(p) in e.value.message and "download the file again" in e.value.hint


@case
def gz_name_but_not_gzip(tmp):
    p = tmp / (NAME + ".gz")
    p.write_bytes(b"this is not gzip data at all")
    with pytest.raises(InputFileError, match="truncated or corrupt") as e:
        read_police_uk(p)
    assert str(p) in e.value.message


@case
def truncated_zip(tmp):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("2025-01/" + NAME, text([row(f"c{i}") for i in range(200)]))
    p = tmp / "download.zip"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(InputFileError, match="not a readable zip archive") as e:
        read_police_uk(p)
    assert str(p) in e.value.message and "truncated" in e.value.hint


@case
def zip_member_with_corrupt_data(tmp):
    data = text([row(f"c{i}") for i in range(50)]).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("2025-01/" + NAME, data)
    raw = bytearray(buf.getvalue())
    i = raw.find(b"c10")
    raw[i:i + 3] = b"XXX"  # the central directory is intact, the CRC no longer matches
    p = tmp / "download.zip"
    p.write_bytes(bytes(raw))
    with pytest.raises(InputFileError, match="truncated or corrupt") as e:
        read_police_uk(p)
    assert f"{p}!2025-01/{NAME}" in e.value.message


@case
def missing_input_path(tmp):
    with pytest.raises(InputFileError, match="input not found") as e:
        read_police_uk(tmp / "no-such-folder")
    assert "no-such-folder" in e.value.message


@case
def wrong_header(tmp):
    header = ["id", "date", "x", "y", "type"]
    p = put(tmp, [["1", "2025-01", "-0.34", "51.75", "Burglary"]], header=header)
    with pytest.raises(InputFileError) as e:
        read_police_uk(p)
    assert str(p) in e.value.message
    assert "['Month', 'Longitude', 'Latitude', 'Crime type']" in e.value.message
    assert "read_force_export" in e.value.hint


@case
def repeated_header_column(tmp):
    p = put(tmp, [row() + ["x"]], header=POLICE_UK_STREET_HEADER + ["Month"])
    with pytest.raises(InputFileError, match=r"header repeats column\(s\) \['Month'\]") as e:
        read_police_uk(p)
    assert str(p) in e.value.message


@case
def reordered_headers_read_by_name(tmp):
    order = list(reversed(POLICE_UK_STREET_HEADER))
    r = dict(zip(POLICE_UK_STREET_HEADER, row("r1", crime_type="Robbery", location="On or near Market Place")))
    p = put(tmp, [[r[h] for h in order]], header=order)
    res = read_police_uk(p)
    pt = res.points.iloc[0]
    assert (pt["record_id"], pt["crime_type"], pt["location"], pt["month"]) == ("r1", "Robbery", "On or near Market Place", "2025-01")
    assert 514_000 < pt["x"] < 516_000


@case
def extra_columns_ignored(tmp):
    header = POLICE_UK_STREET_HEADER + ["Analyst note", "Priority"]
    res = read_police_uk(put(tmp, [row("e1") + ["check, later", "high"]], header=header))
    assert res.points["record_id"].tolist() == ["e1"] and list(res.points.columns) == POINT_COLUMNS


@case
def byte_order_mark_and_crlf(tmp):
    p = tmp / NAME
    p.write_bytes(b"\xef\xbb\xbf" + text([row("b1"), row("b2")], newline="\r\n").encode())
    res = read_police_uk(p)
    assert res.points["record_id"].tolist() == ["b1", "b2"]
    assert res.points["location"].tolist() == ["On or near High Street"] * 2  # no stray \r


@case
def old_mac_line_endings(tmp):
    # bare \r line endings ("CSV (Macintosh)" from a spreadsheet), with a quoted \r in a field
    p = tmp / NAME
    p.write_bytes(text([row("r1", location="On or near\rHigh Street"), row("r2")], newline="\r").encode())
    res = read_police_uk(p)
    assert res.points["record_id"].tolist() == ["r1", "r2"]
    assert res.points["location"].tolist() == ["On or near\rHigh Street", "On or near High Street"]
    assert res.points["source_row"].tolist() == [1, 2]


@case
def blank_first_line(tmp):
    p = tmp / NAME
    p.write_text("\n" + text([row("x1")]))
    with pytest.raises(InputFileError, match="first line is blank") as e:
        read_police_uk(p)
    assert str(p) in e.value.message


@case
def non_utf8_cp1252_is_read_and_noted(tmp):
    p = tmp / NAME
    p.write_bytes(text([row("w1", location="On or near Caf\u00e9 \u2013 \u00a3 Shop"), row("w2")]).encode("cp1252"))
    res = read_police_uk(p)
    assert res.points.set_index("record_id").loc["w1", "location"] == "On or near Caf\u00e9 \u2013 \u00a3 Shop"
    f = res.accounting.files[str(p)]
    assert f.encoding == "cp1252"
    assert any("not valid UTF-8" in n and "Windows-1252" in n for n in f.notes)
    balanced(res)


@case
def very_long_field_1mb(tmp):
    long = "On or near " + "x" * 1_000_000
    res = read_police_uk(put(tmp, [row("l1", location=long), row("l2")]))
    assert len(res.points.set_index("record_id").loc["l1", "location"]) == len(long)
    balanced(res)


@case
def very_long_field_with_a_malformed_row(tmp):
    # the exact (csv module) parser must not trip over its 128 KiB field limit
    p = put(tmp, [row("l1", location="y" * 1_000_000), row("l2")])
    p.write_text(p.read_text() + "short,row\n")
    res = read_police_uk(p)
    assert sorted(res.points["record_id"]) == ["l1", "l2"]
    assert res.accounting.dropped_by_reason() == {"malformed_row": 1}
    assert any("data row(s) 3" in n for n in notes(res))


@case
def nul_byte_in_a_field(tmp):
    res = read_police_uk(put(tmp, [row("n1", location="On or near \x00 Street")]))
    assert res.points["location"].tolist() == ["On or near \x00 Street"]


@case
def unterminated_quote(tmp):
    p = tmp / NAME
    p.write_text(text([row("u1")]) + 'u2,2025-01,H,H,-0.34,51.75,"On or near, never closed,E01,n,Burglary,,\n'
                 + text([row("u3")]).split("\n", 1)[1])
    res = read_police_uk(p)
    # the open quote swallows the rest of the file into one record with too few fields
    assert res.points["record_id"].tolist() == ["u1"]
    assert res.accounting.dropped_by_reason() == {"malformed_row": 1}
    balanced(res)


@case
def wrong_field_count_names_the_rows(tmp):
    p = put(tmp, [row("a1"), row("a2")])
    p.write_text(p.read_text() + "1,2,3\n" + text([row("a4")]).split("\n", 1)[1] + ",".join(row("a5") + ["extra"]) + "\n")
    res = read_police_uk(p)
    assert sorted(res.points["record_id"]) == ["a1", "a2", "a4"]
    assert res.points.set_index("record_id").loc["a4", "source_row"] == 4
    assert any("2 row(s) with the wrong number of fields (data row(s) 3, 5)" in n for n in notes(res))
    balanced(res)


# --------------------------------------------------------------------------- row level
@case
def coordinates_at_zero_zero(tmp):
    res = read_police_uk(put(tmp, [row("z1", lon="0", lat="0"), row("z2")]))
    assert res.accounting.dropped_by_reason() == {"outside_uk": 1} and len(res.points) == 1


@case
def coordinates_outside_uk(tmp):
    res = read_police_uk(put(tmp, [row("p1", lon="2.3522", lat="48.8566"), row("p2")]))  # Paris
    assert res.accounting.dropped_by_reason() == {"outside_uk": 1}
    assert not any("swapped" in n for n in notes(res))


@case
def coordinates_missing(tmp):
    res = read_police_uk(put(tmp, [row("m1", lon="", lat=""), row("m2", lon="-0.34", lat=""), row("m3")]))
    assert res.accounting.dropped_by_reason() == {"no_coordinates": 2}


@case
def coordinates_not_numbers(tmp):
    res = read_police_uk(put(tmp, [row("n1", lon="abc"), row("n2", lat="nan"), row("n3", lon="inf"), row("n4")]))
    assert res.accounting.dropped_by_reason() == {"malformed_row": 3}


@case
def coordinates_swapped(tmp):
    res = read_police_uk(put(tmp, [row("s1", lon="51.7527", lat="-0.34"), row("s2", lon="51.7", lat="-0.2"), row("s3")]))
    assert res.accounting.dropped_by_reason() == {"outside_uk": 2}
    assert any(n.startswith("2 row(s)") and "swapped" in n and "latitude in the longitude column" in n for n in notes(res))


@case
def eastings_northings_where_lon_lat_expected(tmp):
    p = tmp / "export.csv"
    p.write_text("X,Y,Date,Type\n515000,207000,2025-01-05,Burglary\n-0.34,51.75,2025-01-05,Burglary\n")
    res = read_force_export(p, ColumnMapping(x="X", y="Y", date="Date", offence="Type", coords="lonlat"))
    assert res.accounting.dropped_by_reason() == {"outside_uk": 1}
    assert any("1 row(s)" in n and "British National Grid" in n and "coords='bng'" in n for n in notes(res))


@case
def lon_lat_where_eastings_northings_expected(tmp):
    p = tmp / "export.csv"
    p.write_text("X,Y,Date,Type\n-0.34,51.75,2025-01-05,Burglary\n515000,207000,2025-01-05,Burglary\n")
    res = read_force_export(p, ColumnMapping(x="X", y="Y", date="Date", offence="Type"))
    assert res.accounting.dropped_by_reason() == {"outside_uk": 1}
    assert any("longitude/latitude" in n and "coords='lonlat'" in n for n in notes(res))


@case
def bad_month_values(tmp):
    res = read_police_uk(put(tmp, [row("b1", month="Jan-2025"), row("b2", month="2025-13"), row("b3", month=""), row("b4")]))
    assert res.accounting.dropped_by_reason() == {"malformed_row": 3}


@case
def duplicate_months_in_two_files(tmp):
    put(tmp, [row("d1"), row("d2")])
    (tmp / "copy").mkdir()
    (tmp / "copy" / (NAME + ".gz")).write_bytes(gzip.compress(text([row("d1"), row("d2")]).encode()))
    res = read_police_uk(tmp)
    assert len(res.points) == 2
    assert res.accounting.dropped_by_reason() == {"duplicate_file": 2}
    assert any("the same data as" in n for n in notes(res))
    balanced(res)


@case
def duplicate_crime_ids(tmp):
    res = read_police_uk(put(tmp, [row("d1"), row("d1"), row("", crime_type="Anti-social behaviour"),
                                   row("", crime_type="Anti-social behaviour")]))
    assert res.accounting.dropped_by_reason() == {"duplicate_crime_id": 1}
    assert len(res.points) == 3


@case
def mixed_lsoa_vintages(tmp):
    lookup = pd.DataFrame({"lsoa11_code": ["E01000001", "E01000002", "E01000003"],
                           "lsoa21_code": ["E01000001", "E01099999", "E01099999"]})
    res = read_police_uk(put(tmp, [row("v1", lsoa="E01000001"), row("v2", lsoa="E01000002"), row("v3", lsoa="E01099999")]))
    pts, stats = harmonise_lsoa(res.points, lookup)
    assert pts["lsoa21_code"].tolist() == ["E01000001", "E01099999", "E01099999"]
    assert stats["published_2021"] == 2 and stats["mapped_2011_one_to_one"] == 1


@case
def unknown_crime_types(tmp):
    res = read_police_uk(put(tmp, [row("u1", crime_type="Jaywalking"), row("u2", crime_type="burglary"), row("u3")]))
    # "burglary" is Burglary in other capitals: read as it, and noted; "Jaywalking" is dropped and named
    assert res.accounting.dropped_by_reason() == {"unknown_crime_type": 1}
    assert res.accounting.unknown_crime_types() == {"Jaywalking": 1}
    assert sorted(res.points["crime_type"]) == ["Burglary", "Burglary"]
    assert any("crime type 'burglary' read as 'Burglary'" in n for n in notes(res))
    assert "  unknown crime types: 'Jaywalking' (1)" in res.accounting.summary_lines()
    # crime_types=None accepts any category
    assert len(read_police_uk(tmp / NAME, crime_types=None).points) == 3


@case
def rows_outside_the_month_range(tmp):
    res = read_police_uk(put(tmp, [row("o1", month="2024-12"), row("o2")]), first_month="2025-01", last_month="2025-12")
    assert res.accounting.dropped_by_reason() == {"outside_month_range": 1}


@case
def force_export_unreadable_dates(tmp):
    p = tmp / "export.csv"
    p.write_text("E,N,When,Type\n515000,207000,31/02/2025,Burglary\n515000,207000,yesterday,Burglary\n"
                 "515000,207000,01/02/2025 10:00,Burglary\n")
    res = read_force_export(p, ColumnMapping(x="E", y="N", date="When", offence="Type"))
    assert res.points["month"].tolist() == ["2025-02"]  # 1 February, day first
    assert res.accounting.dropped_by_reason() == {"malformed_row": 2}


@case
def force_export_bad_date_format_argument(tmp):
    p = tmp / "export.csv"
    p.write_text("E,N,When,Type\n515000,207000,01/02/2025,Burglary\n")
    with pytest.raises(ValidationError) as e:
        read_force_export(p, ColumnMapping(x="E", y="N", date="When", offence="Type", date_format="%d/%m/%Q"))
    assert "date_format='%d/%m/%Q'" in e.value.message


@case
def force_export_mapping_names_missing_column(tmp):
    p = tmp / "export.csv"
    p.write_text("E,N,When,Type\n515000,207000,01/02/2025,Burglary\n")
    with pytest.raises(InputFileError) as e:
        read_force_export(p, ColumnMapping(x="Easting", y="N", date="When", offence="Type"))
    assert str(p) in e.value.message and "x='Easting'" in e.value.message


# --------------------------------------------------------------------------- boundaries
def gj(path: Path, features, crs="urn:ogc:def:crs:EPSG::27700") -> Path:
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": p, "geometry": g if isinstance(g, (dict, type(None))) else mapping(g)} for p, g in features]}
    if crs:
        fc["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(fc))
    return path


@case
def boundary_without_crs_shapefile(tmp):
    p = tmp / "areas.shp"
    with pytest.warns(UserWarning):
        gpd.GeoDataFrame({"id": [1]}, geometry=[box(0, 0, 1, 1)], crs=None).to_file(p, engine="pyogrio")
    with pytest.raises(CRSError) as e:
        read_boundary(p)
    assert str(p) in e.value.message and "no coordinate reference system" in e.value.message


@case
def boundary_geojson_bng_coordinates_without_crs(tmp):
    p = gj(tmp / "areas.geojson", [({"id": 1}, box(515000, 207000, 516000, 208000))], crs=None)
    with pytest.raises(CRSError) as e:
        read_boundary(p)
    assert str(p) in e.value.message and "EPSG:27700" in e.value.hint


@case
def boundary_lon_lat_out_of_range(tmp):
    p = gj(tmp / "areas.geojson", [({"id": 1}, box(-0.3, 51.7, 200.0, 95.0))], crs="EPSG:4326")
    with pytest.raises(CRSError, match="longitude/latitude"):
        read_boundary(p)


@case
def boundary_in_27700_and_4326_give_the_same_areas(tmp):
    square = box(515000, 207000, 517000, 209000)
    a = gj(tmp / "bng.geojson", [({"id": "A"}, square)])
    ll = gpd.GeoDataFrame({"id": ["A"]}, geometry=[square], crs=27700).to_crs(4326)
    b = gj(tmp / "ll.geojson", [({"id": "A"}, ll.geometry.iloc[0])], crs="EPSG:4326")
    c = tmp / "mercator.gpkg"
    gpd.GeoDataFrame({"id": ["A"]}, geometry=[square], crs=27700).to_crs(3857).to_file(c, engine="pyogrio")
    areas = [read_user_areas(p) for p in (a, b, c)]
    for other in areas[1:]:
        assert other.crs.to_epsg() == 27700
        assert other["area_km2"].iloc[0] == pytest.approx(4.0, rel=1e-6)
        assert areas[0].geometry.iloc[0].hausdorff_distance(other.geometry.iloc[0]) < 0.01  # within a centimetre


@case
def boundary_invalid_polygon_repaired(tmp):
    bow = {"type": "Polygon", "coordinates": [[[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]]}
    g = read_boundary(gj(tmp / "a.geojson", [({"id": 1}, bow)]))
    assert g.attrs["repairs"] == {"invalid_geometries_repaired": 1} and g.geometry.is_valid.all()


@case
def boundary_empty_geometry_removed(tmp):
    g = read_boundary(gj(tmp / "a.geojson", [({"id": 1}, None), ({"id": 2}, box(0, 0, 1, 1))]))
    assert g["id"].tolist() == [2] and g.attrs["repairs"] == {"empty_geometries_removed": 1}


@case
def boundary_with_no_polygons(tmp):
    line = {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}
    with pytest.raises(InputFileError, match="holds no polygons") as e:
        read_boundary(gj(tmp / "a.geojson", [({"id": 1}, line)]))
    assert "a.geojson" in e.value.message


@case
def boundary_not_a_geo_file(tmp):
    p = tmp / "areas.gpkg"
    p.write_bytes(b"\x00\x01 definitely not a geopackage")
    with pytest.raises(InputFileError, match="cannot read as a boundary file") as e:
        read_boundary(p)
    assert str(p) in e.value.message


@case
def overlapping_user_polygons_count_in_both(tmp):
    p = gj(tmp / "a.geojson", [({"id": "H1"}, box(0, 0, 100, 100)), ({"id": "H2"}, box(50, 50, 150, 150))])
    areas = read_user_areas(p)
    pts = pd.DataFrame({"x": [75.0, 10.0], "y": [75.0, 10.0], "month": "2025-01", "crime_type": "Burglary", "lsoa21_code": ""})
    counts = count_points(pts, areas)
    assert counts.set_index("area_code")["count"].to_dict() == {"H1": 2, "H2": 1}


# --------------------------------------------------------------------------- empty results
AREAS = gpd.GeoDataFrame(
    {"area_type": "district", "area_code": ["A", "B"], "area_name": ["a", "b"], "district_code": ["A", "B"],
     "population": [10.0, 10.0], "area_km2": [1.0, 1.0]},
    geometry=[box(0, 0, 1000, 1000), box(5000, 5000, 6000, 6000)], crs=27700,
)


@case
def study_area_with_no_points(tmp):
    pts = pd.DataFrame({"x": [10.0], "y": [10.0], "month": "2025-01", "crime_type": "Burglary", "lsoa21_code": ""})
    counts = count_points(pts, AREAS, months=["2025-01", "2025-02"], crime_types=["Burglary"])
    assert counts.set_index(["area_code", "month"])["count"].to_dict() == {
        ("A", "2025-01"): 1, ("A", "2025-02"): 0, ("B", "2025-01"): 0, ("B", "2025-02"): 0}


@case
def no_points_at_all(tmp):
    pts = pd.DataFrame({"x": pd.Series([], dtype=float), "y": pd.Series([], dtype=float), "month": pd.Series([], dtype=object),
                        "crime_type": pd.Series([], dtype=object), "lsoa21_code": pd.Series([], dtype=object)})
    counts = count_points(pts, AREAS, months=["2025-01"], crime_types=["Burglary", "Robbery"])
    assert len(counts) == 4 and counts["count"].sum() == 0


@case
def crime_type_with_no_records(tmp):
    pts = pd.DataFrame({"x": [10.0], "y": [10.0], "month": "2025-01", "crime_type": "Burglary", "lsoa21_code": ""})
    counts = count_points(pts, AREAS, months=["2025-01"], crime_types=["Burglary", "Bicycle theft"])
    bikes = counts[counts["crime_type"] == "Bicycle theft"]
    assert len(bikes) == 2 and (bikes["count"] == 0).all()


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, tmp_path):
    CASES[name](tmp_path)


def test_every_error_raised_is_a_hotspots_error_with_a_hint(tmp_path):
    """The errors above are user errors: all HotspotsError subclasses, all with a hint."""
    p = tmp_path / NAME
    p.write_bytes(b"")
    for call in (lambda: read_police_uk(p), lambda: read_boundary(tmp_path / "none.gpkg")):
        with pytest.raises(HotspotsError) as e:
            call()
        assert e.value.hint
