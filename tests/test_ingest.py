"""Ingest: police.uk files in every packaging, row accounting, projection, LSOA vintages, force exports.

Every fixture is hand-built in tmp_path; the expected answers are worked out by hand
(or, for the projection, with pyproj directly).
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from pyproj import Transformer
from shapely.geometry import box

from hotspots._errors import InputFileError, ValidationError
from hotspots.io import ColumnMapping, harmonise_lsoa, read_force_export, read_police_uk
from hotspots.schema import DROP_REASONS, POINT_COLUMNS, POLICE_UK_STREET_HEADER

ST_ALBANS = (-0.3400, 51.7527)  # lon, lat of St Peter's Street


def row(crime_id="", month="2025-01", lon=ST_ALBANS[0], lat=ST_ALBANS[1], location="On or near High Street",
        lsoa="E01023800", crime_type="Burglary", outcome="", context="", force="Hertfordshire Constabulary"):
    return [crime_id, month, force, force, str(lon), str(lat), location, lsoa, "St Albans 001A", crime_type, outcome, context]


def csv_text(rows, header=POLICE_UK_STREET_HEADER) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def write(path: Path, rows, header=POLICE_UK_STREET_HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = csv_text(rows, header).encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


GOOD = [
    row("c1", lon=-0.3400, lat=51.7527, crime_type="Burglary"),
    row("c2", lon=-0.3350, lat=51.7500, crime_type="Shoplifting", outcome="Under investigation"),
    row("", lon=-0.3300, lat=51.7600, crime_type="Anti-social behaviour"),
    row("c4", lon=-0.2050, lat=51.8020, crime_type="Vehicle crime"),
]


def _comparable(points: pd.DataFrame) -> pd.DataFrame:
    return points.drop(columns=["source_file"]).reset_index(drop=True)


# --------------------------------------------------------------------------- packaging
def test_csv_gz_and_zip_give_identical_points(tmp_path):
    plain = write(tmp_path / "plain" / "2025-01-hertfordshire-street.csv", GOOD)
    gz = write(tmp_path / "gz" / "2025-01-hertfordshire-street.csv.gz", GOOD)
    archive = tmp_path / "zip" / "download.zip"
    archive.parent.mkdir()
    other_force = [row("b1", lon=-0.46, lat=52.13, crime_type="Robbery", force="Bedfordshire Police")]
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        # as data.police.uk hands them out: one folder per month, one file per force
        zf.writestr("2025-01/2025-01-hertfordshire-street.csv", csv_text(GOOD))
        zf.writestr("2025-01/2025-01-bedfordshire-street.csv", csv_text(other_force))

    a = read_police_uk(plain)
    b = read_police_uk(gz)
    c = read_police_uk(archive, forces=["hertfordshire"])
    assert len(a.points) == len(GOOD)
    pd.testing.assert_frame_equal(_comparable(a.points), _comparable(b.points))
    pd.testing.assert_frame_equal(_comparable(a.points), _comparable(c.points))
    assert list(a.points.columns) == POINT_COLUMNS
    assert c.points["source_file"].iloc[0] == f"{archive}!2025-01/2025-01-hertfordshire-street.csv"
    assert set(c.points["force"]) == {"hertfordshire"}
    # the same file hash whatever the packaging: the checksum is of the CSV bytes
    shas = {next(iter(r.accounting.files.values())).sha256 for r in (a, b, c)}
    assert len(shas) == 1

    both = read_police_uk(archive)  # no force filter: both forces
    assert both.points.groupby("force").size().to_dict() == {"bedfordshire": 1, "hertfordshire": len(GOOD)}


def test_zip_member_may_itself_be_gzipped(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("2025-01/2025-01-hertfordshire-street.csv.gz", gzip.compress(csv_text(GOOD).encode()))
    res = read_police_uk(archive)
    assert len(res.points) == len(GOOD)
    assert next(iter(res.accounting.files.values())).encoding == "utf-8"


def test_files_outside_force_or_month_range_are_not_inputs(tmp_path):
    write(tmp_path / "2024-12-hertfordshire-street.csv", GOOD[:1])
    write(tmp_path / "2025-01-hertfordshire-street.csv", GOOD)
    write(tmp_path / "2025-01-essex-street.csv", GOOD[:2])
    (tmp_path / "README.txt").write_text("not a police file")
    res = read_police_uk(tmp_path, forces=["hertfordshire"], first_month="2025-01", last_month="2025-12")
    assert [Path(f.path).name for f in res.accounting.files.values()] == ["2025-01-hertfordshire-street.csv"]
    assert res.accounting.rows_read == len(GOOD)


def test_no_police_files_is_a_clear_error(tmp_path):
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputFileError, match="no police.uk street-level files found") as err:
        read_police_uk(tmp_path, forces=["hertfordshire"])
    assert "YYYY-MM-<force>-street.csv" in err.value.hint


# --------------------------------------------------------------------------- quoted newlines
@pytest.mark.parametrize("with_malformed_row", [False, True], ids=["fast-path", "exact-path"])
def test_quoted_newlines_parse_and_keep_source_row(tmp_path, with_malformed_row):
    rows = [
        row("q1", location="On or near\nHigh Street"),
        row("q2", context="first line\r\nsecond line, with comma and \"quotes\""),
        row("q3", location="On or near Market Place"),
    ]
    text = csv_text(rows)
    if with_malformed_row:
        text += "broken,row,with,too,few,fields\n"
        text += csv_text([row("q5")]).split("\n", 1)[1]
    p = tmp_path / "2025-01-hertfordshire-street.csv"
    p.write_text(text, encoding="utf-8", newline="")
    res = read_police_uk(p)
    pts = res.points.set_index("record_id")
    assert pts.loc["q1", "location"] == "On or near\nHigh Street"
    assert pts.loc["q3", "location"] == "On or near Market Place"
    # source_row counts records, not physical lines: q3 is the third data row
    assert pts.loc["q1", "source_row"] == 1
    assert pts.loc["q2", "source_row"] == 2
    assert pts.loc["q3", "source_row"] == 3
    acc = res.accounting
    assert acc.kept + sum(acc.dropped_by_reason().values()) == acc.rows_read
    if with_malformed_row:
        assert pts.loc["q5", "source_row"] == 5
        assert acc.dropped_by_reason() == {"malformed_row": 1}
        assert any("data row(s) 4" in n for n in acc.files[str(p)].notes)
    else:
        assert acc.rows_read == 3


def test_blank_lines_are_not_rows_in_either_parser(tmp_path):
    body = csv_text([row("a1"), row("a2")]).replace("\na2", "\n\na2")
    fast = tmp_path / "fast" / "2025-01-hertfordshire-street.csv"
    fast.parent.mkdir()
    fast.write_text(body)
    exact = tmp_path / "exact" / "2025-01-hertfordshire-street.csv"
    exact.parent.mkdir()
    exact.write_text(body + "bad,row\n")
    a = read_police_uk(fast).points.set_index("record_id")["source_row"].to_dict()
    b = read_police_uk(exact).points.set_index("record_id")["source_row"].to_dict()
    assert a == b == {"a1": 1, "a2": 2}


# --------------------------------------------------------------------------- accounting
def test_every_drop_reason_on_a_hand_built_file(tmp_path):
    folder = tmp_path / "data"
    rows = [
        row("k1"),                                          # 1 kept
        row("n1", lon="", lat=""),                          # 2 no_coordinates
        row("o1", lon=10.0, lat=40.0),                      # 3 outside_uk
        row("s1", lon=51.7527, lat=-0.34),                  # 4 outside_uk (swapped, noted)
        None,                                               # 5 malformed_row: wrong field count
        row("m1", month="2025-13"),                         # 6 malformed_row: bad month
        row("r1", month="2024-12"),                         # 7 outside_month_range
        row("t1", crime_type="Jaywalking"),                 # 8 unknown_crime_type
        row("k1", lon=-0.30),                               # 9 duplicate_crime_id (k1 again)
        row("", crime_type="Anti-social behaviour"),        # 10 kept: ASB rows have no id
        row("", crime_type="Anti-social behaviour"),        # 11 kept: never duplicates
        row("x1", lon="abc"),                               # 12 malformed_row: not a number
    ]
    text = csv_text([r for r in rows if r is not None])
    lines = text.split("\n")
    lines.insert(5, "a,b,c")  # row 5 (line 6, after the header and 4 rows)
    p = folder / "2025-01-hertfordshire-street.csv"
    folder.mkdir()
    p.write_text("\n".join(lines))
    # the same force-month again (the same data) inside a zip in the same folder
    with zipfile.ZipFile(folder / "police-download.zip", "w") as zf:
        zf.writestr("2025-01/2025-01-hertfordshire-street.csv", "\n".join(lines))

    res = read_police_uk(folder, first_month="2025-01", last_month="2025-12")
    acc = res.accounting
    assert acc.rows_read == 12 + 12
    assert acc.kept == len(res.points) == 3
    assert acc.dropped_by_reason() == {
        "malformed_row": 3 + 1,   # the zipped copy's wrong-field-count row is counted where it is parsed
        "duplicate_file": 11,
        "outside_uk": 2,
        "no_coordinates": 1,
        "outside_month_range": 1,
        "unknown_crime_type": 1,
        "duplicate_crime_id": 1,
    }
    assert acc.kept + sum(acc.dropped_by_reason().values()) == acc.rows_read
    acc.check(res.points)
    f = acc.files[str(p)]
    assert f.kept + sum(f.dropped.values()) == f.rows_read == 12
    assert any("swapped" in n and n.startswith("1 row(s)") for n in f.notes)
    assert any("wrong number of fields (data row(s) 5)" in n for n in f.notes)
    zipped = acc.files[f"{folder / 'police-download.zip'}!2025-01/2025-01-hertfordshire-street.csv"]
    assert zipped.dropped == {"malformed_row": 1, "duplicate_file": 11} and zipped.kept == 0
    assert any(str(p) in n for n in zipped.notes)
    assert sorted(res.points["source_row"]) == [1, 10, 11]
    assert set(acc.dropped_by_reason()) <= set(DROP_REASONS)
    d = acc.to_dict()
    assert d["balanced"] and d["rows_read"] == 24


def test_same_file_given_twice_is_an_error(tmp_path):
    p = write(tmp_path / "2025-01-hertfordshire-street.csv", GOOD)
    with pytest.raises(InputFileError, match="given twice"):
        read_police_uk([p, p])


# --------------------------------------------------------------------------- projection
def test_projection_to_british_national_grid_matches_pyproj(tmp_path):
    p = write(tmp_path / "2025-01-hertfordshire-street.csv", [row("p1", lon=-0.3400, lat=51.7527)])
    pt = read_police_uk(p).points.iloc[0]
    tr = Transformer.from_crs("EPSG:4326", "EPSG:27700", always_xy=True)
    e, n = tr.transform(-0.3400, 51.7527)
    assert 514_000 <= e < 516_000 and 207_000 <= n < 208_000  # St Albans, E 514,683 N 207,0xx
    assert pt["x"] == pytest.approx(e, abs=1e-6)
    assert pt["y"] == pytest.approx(n, abs=1e-6)


# --------------------------------------------------------------------------- LSOA vintages
def test_harmonise_lsoa_on_a_tiny_lookup():
    lookup = pd.DataFrame(
        {
            "lsoa11_code": ["E01000001", "E01000002", "E01000003", "E01000004", "E01000004"],
            "lsoa21_code": ["E01000001", "E01099999", "E01099999", "E01099997", "E01099998"],
        }
    )
    polygons = gpd.GeoDataFrame(
        {"lsoa21_code": ["E01099997", "E01099998"]}, geometry=[box(0, 0, 100, 100), box(100, 0, 200, 100)], crs=27700
    )
    points = pd.DataFrame(
        {
            "lsoa_code": ["E01000001", "E01000002", "E01000003", "E01000004", "E01000004", "E01099999", "E01777777", ""],
            "x": [5.0, 5.0, 5.0, 150.0, 999.0, 5.0, 5.0, 5.0],
            "y": [5.0, 5.0, 5.0, 50.0, 999.0, 5.0, 5.0, 5.0],
        }
    )
    out, stats = harmonise_lsoa(points, lookup, lsoa21_polygons=polygons)
    assert out["lsoa21_code"].tolist() == [
        "E01000001",  # unchanged: passes through
        "E01099999",  # merged
        "E01099999",  # merged
        "E01099998",  # split, resolved by location (not the lowest code)
        "E01099997",  # split, point in neither candidate: lowest code
        "E01099999",  # already a 2021 code
        "",           # unknown code
        "",           # blank
    ]
    assert stats == {
        "published_2021": 2,
        "mapped_2011_one_to_one": 2,
        "split_by_location": 1,
        "split_lowest_code": 1,
        "unknown_code": 1,
        "blank": 1,
    }
    assert points["lsoa_code"].iloc[3] == "E01000004"  # input untouched

    no_poly, stats2 = harmonise_lsoa(points, lookup)
    assert no_poly["lsoa21_code"].iloc[3] == "E01099997"  # split without polygons -> lowest code
    assert stats2["split_lowest_code"] == 2 and stats2["split_by_location"] == 0


# --------------------------------------------------------------------------- force exports
EXPORT = """ref,Easting,Northing,Lon,Lat,Committed,Offence,Where
R1,515000,207000,-0.3400,51.7527,04/03/2025 22:15,BURGLARY DWELLING,High St
R2,515100,207100,-0.3390,51.7530,2025-03-05,THEFT FROM SHOP,Market Pl
R3,515200,207200,-0.3380,51.7540,2025-02-28 23:59:59,ASSAULT,London Rd
R4,,,,,2025-03-06,BURGLARY DWELLING,Unknown
R5,515300,207300,-0.3370,51.7550,not a date,BURGLARY DWELLING,Holywell Hill
R6,515400,207400,-0.3360,51.7560,13/03/2025,GRAFFITI,Catherine St
"""
OFFENCES = {"BURGLARY DWELLING": "Burglary", "THEFT FROM SHOP": "Shoplifting", "ASSAULT": "Violence and sexual offences"}


@pytest.fixture
def export(tmp_path) -> Path:
    p = tmp_path / "export.csv"
    p.write_text(EXPORT)
    return p


def test_force_export_with_bng_coordinates(export):
    m = ColumnMapping(x="Easting", y="Northing", date="Committed", offence="Offence", id="ref", location="Where",
                      crime_type_map=OFFENCES)
    res = read_force_export(export, m, force="herts-rms")
    pts = res.points.set_index("record_id")
    assert list(res.points.columns) == POINT_COLUMNS + ["datetime"]
    assert sorted(pts.index) == ["R1", "R2", "R3"]
    # day-first English dates, ISO dates and datetimes mixed in one column
    assert pts.loc["R1", "datetime"] == pd.Timestamp("2025-03-04 22:15")
    assert pts.loc["R1", "month"] == "2025-03"
    assert pts.loc["R2", "datetime"] == pd.Timestamp("2025-03-05")
    assert pts.loc["R3", "month"] == "2025-02"
    assert pts.loc["R1", "crime_type"] == "Burglary"
    assert pts.loc["R2", "crime_type"] == "Shoplifting"
    assert (pts.loc["R1", "x"], pts.loc["R1", "y"]) == (515000.0, 207000.0)
    assert pts.loc["R2", "location"] == "Market Pl"
    assert set(res.points["force"]) == {"herts-rms"}
    assert res.accounting.dropped_by_reason() == {"no_coordinates": 1, "malformed_row": 1, "unknown_crime_type": 1}
    assert pts.loc["R3", "source_row"] == 3


def test_force_export_with_lon_lat_matches_pyproj(export):
    m = ColumnMapping(x="Lon", y="Lat", date="Committed", offence="Offence", id="ref", coords="lonlat",
                      crime_type_map=OFFENCES, keep_unmapped=True)
    res = read_force_export(export, m)
    pts = res.points.set_index("record_id")
    e, n = Transformer.from_crs("EPSG:4326", "EPSG:27700", always_xy=True).transform(-0.3400, 51.7527)
    assert pts.loc["R1", "x"] == pytest.approx(e) and pts.loc["R1", "y"] == pytest.approx(n)
    # keep_unmapped keeps the force's own offence name
    assert pts.loc["R6", "crime_type"] == "GRAFFITI"
    assert pts.loc["R6", "datetime"] == pd.Timestamp("2025-03-13")
    assert res.accounting.dropped_by_reason() == {"no_coordinates": 1, "malformed_row": 1}


def test_force_export_explicit_date_format_and_month_range(export):
    m = ColumnMapping(x="Easting", y="Northing", date="Committed", offence="Offence", id="ref",
                      date_format="%d/%m/%Y %H:%M")
    res = read_force_export(export, m, first_month="2025-03", last_month="2025-03")
    assert res.points["record_id"].tolist() == ["R1"]
    dropped = res.accounting.dropped_by_reason()
    # R2-R6 do not match the explicit format (R6 has no time): unreadable dates are malformed rows
    assert dropped == {"malformed_row": 5}


def test_force_export_without_crime_type_map_accepts_any_offence(export):
    m = ColumnMapping(x="Easting", y="Northing", date="Committed", offence="Offence", id="ref")
    res = read_force_export(export, m)
    assert sorted(res.points["crime_type"]) == ["ASSAULT", "BURGLARY DWELLING", "GRAFFITI", "THEFT FROM SHOP"]


def test_force_export_mapping_errors_name_the_column(export):
    with pytest.raises(InputFileError, match=r"offence='Crime'") as err:
        read_force_export(export, ColumnMapping(x="Easting", y="Northing", date="Committed", offence="Crime"))
    assert "Offence" in str(err.value)  # lists the header
    with pytest.raises(ValidationError, match="coords='osgb'"):
        read_force_export(export, ColumnMapping(x="Easting", y="Northing", date="Committed", offence="Offence", coords="osgb"))
    with pytest.raises(ValidationError, match="date_format='%Q'"):
        read_force_export(export, ColumnMapping(x="Easting", y="Northing", date="Committed", offence="Offence",
                                                date_format="%Q"))
    with pytest.raises(InputFileError, match="not found"):
        read_force_export(export.parent / "missing.csv", ColumnMapping(x="a", y="b", date="c", offence="d"))


def test_force_export_swapped_eastings_and_northings_are_noted(tmp_path):
    p = tmp_path / "swapped.csv"
    # a northing of 1,000,000 (Orkney) in the easting column cannot be an easting
    p.write_text("E,N,d,o\n1000000,450000,2025-01-01,Burglary\n515000,207000,2025-01-01,Burglary\n")
    res = read_force_export(p, ColumnMapping(x="E", y="N", date="d", offence="o"))
    assert len(res.points) == 1
    assert res.accounting.dropped_by_reason() == {"outside_uk": 1}
    assert any("swapped" in n and "northing in the easting column" in n for n in res.accounting.files[str(p)].notes)
