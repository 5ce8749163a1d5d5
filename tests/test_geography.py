"""Geography: reading boundaries (CRS, repairs), point-in-area rules, the CSP dissolve.

The CSP test builds a tiny data home that mimics South Nottinghamshire, the CSP formed by
three districts (Broxtowe E07000172, Gedling E07000173, Rushcliffe E07000176 -> E22000366).
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box, mapping

from hotspots._errors import CRSError, DataNotFoundError, InputFileError, ValidationError
from hotspots.geo.assign import assign_points
from hotspots.geo.boundaries import DATA_FILES, Geography, read_boundary, read_user_areas
from hotspots.schema import AREA_COLUMNS

BNG_CRS = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::27700"}}


def geojson(path: Path, features: list[tuple[dict, object]], crs: dict | None = BNG_CRS) -> Path:
    """Write a FeatureCollection; ``crs=None`` leaves the crs member out."""
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": props, "geometry": geom if isinstance(geom, (dict, type(None))) else mapping(geom)}
        for props, geom in features
    ]}
    if crs is not None:
        fc["crs"] = crs
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fc))
    return path


# --------------------------------------------------------------------------- read_boundary
def test_geojson_in_bng_without_crs_is_a_crs_error(tmp_path):
    p = geojson(tmp_path / "beats.geojson", [({"code": "A"}, box(515000, 207000, 516000, 208000))], crs=None)
    with pytest.raises(CRSError) as err:
        read_boundary(p)
    assert str(p) in err.value.message and "no usable CRS" in err.value.message
    assert "EPSG:27700" in err.value.hint


def test_shapefile_without_prj_is_a_crs_error(tmp_path):
    gdf = gpd.GeoDataFrame({"code": ["A"]}, geometry=[box(0, 0, 10, 10)], crs=None)
    p = tmp_path / "beats.shp"
    with pytest.warns(UserWarning, match="crs"):
        gdf.to_file(p, engine="pyogrio")
    assert not p.with_suffix(".prj").exists()
    with pytest.raises(CRSError, match="has no coordinate reference system") as err:
        read_boundary(p, name="beat file")
    assert "beat file" in err.value.message and "Set CRS" in err.value.hint


def test_wgs84_boundary_is_projected_to_bng(tmp_path):
    lon0, lat0, lon1, lat1 = -0.35, 51.74, -0.33, 51.76
    p = geojson(
        tmp_path / "ll.geojson",
        [({"code": "A"}, box(lon0, lat0, lon1, lat1))],
        crs={"type": "name", "properties": {"name": "EPSG:4326"}},
    )
    gdf = read_boundary(p)
    assert gdf.crs.to_epsg() == 27700
    tr = Transformer.from_crs("EPSG:4326", "EPSG:27700", always_xy=True)
    x0, y0 = tr.transform(lon0, lat0)
    x1, y1 = tr.transform(lon1, lat1)
    minx, miny, maxx, maxy = gdf.total_bounds
    assert minx == pytest.approx(min(x0, tr.transform(lon0, lat1)[0]), abs=1e-6)
    assert miny == pytest.approx(y0, abs=1e-6) and maxy == pytest.approx(max(y1, tr.transform(lon0, lat1)[1]), abs=1e-6)
    assert gdf.attrs["repairs"] == {}


def test_bow_tie_is_repaired_and_empty_geometry_removed(tmp_path):
    bow_tie = {"type": "Polygon", "coordinates": [[[0, 0], [100, 100], [100, 0], [0, 100], [0, 0]]]}
    p = geojson(tmp_path / "a.geojson", [
        ({"code": "OK"}, box(200, 0, 300, 100)),
        ({"code": "BOW"}, bow_tie),
        ({"code": "NULL"}, None),
        ({"code": "EMPTY"}, {"type": "Polygon", "coordinates": []}),
    ])
    gdf = read_boundary(p)
    assert gdf["code"].tolist() == ["OK", "BOW"]
    assert gdf.attrs["repairs"] == {"empty_geometries_removed": 2, "invalid_geometries_repaired": 1}
    bow = gdf.geometry.iloc[1]
    assert bow.is_valid and bow.geom_type == "MultiPolygon"
    assert bow.area == pytest.approx(5000.0)  # two triangles (base 100, height 50) of 2,500 m2 each


def test_boundary_with_only_points_is_an_error(tmp_path):
    p = geojson(tmp_path / "pts.geojson", [({"code": "A"}, shapely.Point(515000, 207000))])
    with pytest.raises(InputFileError, match="holds no polygons"):
        read_boundary(p)


def test_unreadable_and_missing_boundary_files(tmp_path):
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json")
    with pytest.raises(InputFileError, match="cannot read as a boundary file"):
        read_boundary(bad)
    with pytest.raises(DataNotFoundError, match="not found"):
        read_boundary(tmp_path / "nope.gpkg")


def test_geopackage_in_bng_and_geojson_in_wgs84_give_the_same_polygon(tmp_path):
    square = box(515000, 207000, 516000, 208000)
    gpkg = tmp_path / "a.gpkg"
    gpd.GeoDataFrame({"code": ["A"]}, geometry=[square], crs=27700).to_file(gpkg, engine="pyogrio")
    ll = tmp_path / "a.geojson"
    gpd.GeoDataFrame({"code": ["A"]}, geometry=[square], crs=27700).to_crs(4326).to_file(ll, engine="pyogrio")
    a, b = read_boundary(gpkg), read_boundary(ll)
    assert a.geometry.iloc[0].equals_exact(square, 1e-6)
    # 4326 round trip: within a millimetre
    assert shapely.hausdorff_distance(a.geometry.iloc[0], b.geometry.iloc[0]) < 1e-3


# --------------------------------------------------------------------------- assign_points
def _areas(codes, geoms, crs=27700):
    return gpd.GeoDataFrame({"area_code": codes, "area_name": codes}, geometry=geoms, crs=crs)


def test_point_on_a_shared_edge_counts_once_in_the_lowest_code():
    # B listed first so "lowest code" is not just "first row"
    areas = _areas(["B", "A", "C", "D"], [box(100, 0, 200, 100), box(0, 0, 100, 100), box(0, 100, 100, 200), box(100, 100, 200, 200)])
    x = np.array([100.0, 50.0, 150.0, 100.0, 100.0, 500.0, 0.0])
    y = np.array([50.0, 50.0, 50.0, 100.0, 150.0, 500.0, 0.0])
    pairs = assign_points(x, y, areas, exclusive=True)
    code = dict(zip(pairs["point"], areas["area_code"].to_numpy()[pairs["area"]]))
    assert code == {0: "A", 1: "A", 2: "B", 3: "A", 4: "C", 6: "A"}  # 5 lies outside every area
    assert pairs["point"].is_unique

    both = assign_points(x, y, areas, exclusive=False)
    got = both.assign(code=areas["area_code"].to_numpy()[both["area"]]).groupby("point")["code"].apply(lambda s: "".join(sorted(s)))
    assert got.to_dict() == {0: "AB", 1: "A", 2: "B", 3: "ABCD", 4: "CD", 6: "A"}


def test_assign_points_refuses_areas_in_another_crs():
    areas = _areas(["A"], [box(-0.35, 51.74, -0.33, 51.76)], crs=4326)
    with pytest.raises(CRSError, match="EPSG:4326") as err:
        assign_points(np.array([515000.0]), np.array([207000.0]), areas)
    assert "read_boundary" in err.value.hint


def test_user_areas_may_overlap_and_must_have_unique_codes(tmp_path):
    p = geojson(tmp_path / "hotspots.geojson", [
        ({"id": "H1", "label": "Market"}, box(0, 0, 100, 100)),
        ({"id": "H2", "label": "Station"}, box(50, 50, 150, 150)),
    ])
    areas = read_user_areas(p, name_column="label")
    assert list(areas.columns) == AREA_COLUMNS
    assert areas["area_code"].tolist() == ["H1", "H2"] and areas["area_name"].tolist() == ["Market", "Station"]
    assert areas["area_km2"].tolist() == pytest.approx([0.01, 0.01])
    pairs = assign_points(np.array([75.0]), np.array([75.0]), areas, exclusive=False)
    assert sorted(pairs["area"]) == [0, 1]
    with pytest.raises(InputFileError, match="no column 'name'"):
        read_user_areas(p, name_column="name")
    dup = geojson(tmp_path / "dup.geojson", [({"id": "H1"}, box(0, 0, 1, 1)), ({"id": "H1"}, box(2, 2, 3, 3))])
    with pytest.raises(InputFileError, match="area codes repeat"):
        read_user_areas(dup)


# --------------------------------------------------------------------------- CSP dissolve (data home)
NOTTS = {  # district: (name, csp code, csp name, box)
    "E06000018": ("Nottingham", "E22000257", "Nottingham", box(450000, 335000, 460000, 345000)),
    "E07000172": ("Broxtowe", "E22000366", "South Nottinghamshire", box(440000, 335000, 450000, 345000)),
    "E07000173": ("Gedling", "E22000366", "South Nottinghamshire", box(460000, 335000, 470000, 345000)),
    "E07000176": ("Rushcliffe", "E22000366", "South Nottinghamshire", box(450000, 325000, 460000, 335000)),
}


@pytest.fixture
def notts_home(tmp_path) -> Path:
    home = tmp_path / "home"
    lookup = pd.DataFrame(
        [(code, name, csp, cspn, "E23000019", "Nottinghamshire") for code, (name, csp, cspn, _) in NOTTS.items()]
        + [("E07000240", "St Albans", "E22000240", "St Albans", "E23000027", "Hertfordshire")],
        columns=["ltla24_code", "ltla24_name", "csp24_code", "csp24_name", "pfa24_code", "pfa24_name"],
    )
    (home / "lookups").mkdir(parents=True)
    lookup.to_csv(home / DATA_FILES["lookup_district_csp_force"][0], index=False)
    geojson(home / DATA_FILES["districts"][0],
            [({"LAD24CD": code, "LAD24NM": name}, geom) for code, (name, _, _, geom) in NOTTS.items()])
    lsoas, ward_rows, pop_rows = [], [], []
    for i, (code, (name, *_rest, geom)) in enumerate(NOTTS.items()):
        x0, y0, x1, y1 = geom.bounds
        xm = (x0 + x1) / 2
        for j, part in enumerate([box(x0, y0, xm, y1), box(xm, y0, x1, y1)]):
            lsoa = f"E0190{i}{j:03d}"
            lsoas.append(({"lsoa21_code": lsoa, "lsoa21_name": f"{name} 00{j + 1}A"}, part))
            ward_rows.append((lsoa, f"{name} 00{j + 1}A", f"E0590{i}000", f"{name} ward", code, name))
            pop_rows.append((lsoa, 1000 * (i + 1) + j))
    geojson(home / DATA_FILES["lsoa21"][0], lsoas)
    pd.DataFrame(ward_rows, columns=["lsoa21_code", "lsoa21_name", "ward24_code", "ward24_name", "ltla24_code", "ltla24_name"]).to_csv(
        home / DATA_FILES["lookup_lsoa21_ward"][1], index=False)
    (home / "population").mkdir()
    pd.DataFrame(pop_rows, columns=["lsoa21_code", "census2021_usual_residents"]).to_csv(
        home / DATA_FILES["population_lsoa21"][1], index=False)
    return home


def test_csp_dissolve_when_several_districts_share_one_csp(notts_home):
    geo = Geography(notts_home, "E23000019")
    assert geo.district_codes == sorted(NOTTS)
    assert geo.force_name == "Nottinghamshire"
    d = geo.areas("district").set_index("area_code")
    # population of a district = sum of its LSOAs (1000(i+1) and 1000(i+1)+1)
    assert d.loc["E06000018", "population"] == 1000 + 1001
    assert d.loc["E07000176", "population"] == 4000 + 4001
    assert d["area_km2"].tolist() == pytest.approx([100.0] * 4)

    csp = geo.areas("csp")
    assert list(csp.columns) == AREA_COLUMNS
    assert csp["area_code"].tolist() == ["E22000257", "E22000366"]
    s = csp.set_index("area_code")
    assert s.loc["E22000366", "area_name"] == "South Nottinghamshire"
    assert s.loc["E22000366", "population"] == (2000 + 2001) + (3000 + 3001) + (4000 + 4001)
    assert s.loc["E22000366", "area_km2"] == pytest.approx(300.0)
    assert s.loc["E22000366", "district_code"] == ""  # spans three districts
    assert s.loc["E22000257", "district_code"] == "E06000018"
    union = shapely.union_all([NOTTS[c][3] for c in ("E07000172", "E07000173", "E07000176")])
    assert s.loc["E22000366", "geometry"].symmetric_difference(union).area < 1e-6

    force = geo.areas("force")
    assert force["area_code"].tolist() == ["E23000019"]
    assert force["area_km2"].iloc[0] == pytest.approx(400.0, rel=1e-4)
    assert force["population"].iloc[0] == sum(1000 * k + (1000 * k + 1) for k in (1, 2, 3, 4))

    wards = geo.areas("ward")
    assert len(wards) == 4 and wards.set_index("area_code").loc["E05901000", "population"] == 2000 + 2001

    lsoa = geo.areas("lsoa")
    assert len(lsoa) == 8 and lsoa["district_code"].value_counts().to_dict() == {c: 2 for c in NOTTS}
    for t in ("district", "csp", "force", "ward", "lsoa"):
        assert geo.areas(t).crs.to_epsg() == 27700

    with pytest.raises(ValidationError, match="area_type='beat'"):
        geo.areas("beat")


def test_unknown_force_area_and_missing_files_are_clear(notts_home, tmp_path):
    with pytest.raises(DataNotFoundError, match="E23000099") as err:
        Geography(notts_home, "E23000099").districts
    assert "force_area_code" in err.value.hint
    with pytest.raises(DataNotFoundError, match="lookup_district_csp_force") as err:
        Geography(tmp_path / "empty", "E23000019").districts
    assert "hotspots download" in err.value.hint


def test_preread_geojson_gives_the_read_without_it(tmp_path):
    """A GeoJSON file read ahead on a thread: the lines (or None) of reading it where they are asked for."""
    import gzip
    import os

    from hotspots.io import _files

    body = '{\n"type": "FeatureCollection",\n"features": [\n' + ",\n".join(
        f'{{ "type": "Feature", "properties": {{ "code": "E0{i:04d}" }}, "geometry": null }}' for i in range(50)) + "\n]\n}\n"
    path = tmp_path / "areas.geojson.gz"
    path.write_bytes(gzip.compress(body.encode()))
    expected = _files.geojson_lines_with(path, ["E00003", "E00041"])
    _files.preread_geojson(path)
    assert _files.geojson_lines_with(path, ["E00003", "E00041"]) == expected and expected.count(b'"Feature"') == 2
    assert not _files._PREREAD  # taken
    forget = _files.preread_geojson(path)
    path.write_bytes(gzip.compress(body.replace("E00003", "E90003").encode()))  # changed after the read ahead: read again
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # (the clock's tick may not have moved)
    assert _files.geojson_lines_with(path, ["E00003", "E00041"]).count(b'"Feature"') == 1
    forget()
    assert not _files._PREREAD
    broken = tmp_path / "broken.geojson.gz"
    broken.write_bytes(gzip.compress(body.encode())[:-30])
    _files.preread_geojson(broken)
    assert _files.geojson_lines_with(broken, ["E00003"]) is None  # the read's error handled as without the thread
    _files.preread_geojson(path)()  # forgotten before taken
    assert not _files._PREREAD
