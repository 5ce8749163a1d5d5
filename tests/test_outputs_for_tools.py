"""Outputs as the analyst's tools open them: Excel (CSV encoding, rounding), QGIS (layer styles), ArcGIS fields."""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from hotspots._io import CSV_SIGNIFICANT_DIGITS, OutputDir

NAME = "Bishop's Stortford town centre – Potter Street"


def excel_decode(raw: bytes) -> str:
    """What Excel shows for a double-clicked CSV: UTF-8 if the file starts with a BOM, else the Windows code page."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8")
    return raw.decode("cp1252", errors="replace")


def test_csv_opens_in_excel_with_dashes_and_pounds_intact(tmp_path):
    out = OutputDir(tmp_path / "out")
    df = pd.DataFrame({"area_name": [NAME], "cost": ["£1,250 per crime prevented"], "count": [12],
                       "rate": [3 / 3100 * 1000], "p": [1.234567890123e-9], "population": [1_234_567.0]})
    path = out.write_csv(df, "t/table.csv")
    raw = path.read_bytes()
    text = excel_decode(raw)
    assert NAME in text and "£1,250" in text
    assert "â€“" not in text and "Â£" not in text
    # the same bytes without the mark would show the mojibake the issue reported: the test can fail
    assert "â€“" in excel_decode(raw[3:]) and "Â£" in excel_decode(raw[3:])
    # decimals are rounded for reading, whole numbers and integers untouched; pandas reads the BOM as a BOM
    back = pd.read_csv(path)
    assert list(back.columns) == list(df.columns)
    assert text.splitlines()[1].split(",")[-3:] == ["0.9677419", "1.234568e-09", "1234567.0"]
    assert back["rate"].iloc[0] == pytest.approx(df["rate"].iloc[0], rel=10.0 ** -(CSV_SIGNIFICANT_DIGITS - 1))
    assert back["count"].iloc[0] == 12


def test_every_csv_of_a_run_has_the_mark(tmp_path):
    """Every CSV goes through the one writer: a counts run on the tiny data home writes only marked CSVs."""
    from test_cli import make_home
    from hotspots.cli import main

    home = make_home(tmp_path / "home")
    with pytest.raises(SystemExit) as ex:
        main(["--data", str(home), "--out", str(tmp_path / "o"), "-q", "counts"])
    assert ex.value.code == 0
    csvs = sorted((tmp_path / "o").rglob("*.csv"))
    assert len(csvs) >= 8
    for path in csvs:
        assert path.read_bytes().startswith(b"\xef\xbb\xbf"), path


def _awkward_frame(n: int = 400, seed: int = 7) -> pd.DataFrame:
    """Every kind of column the writer formats itself, with the cells that need care in a CSV."""
    rng = np.random.default_rng(seed)
    texts = np.array(["plain", "with, comma", 'say "hi"', "two\nlines", "", " lead", "'=SUM(A1)", "£ – é", "#"], dtype=object)
    floats = rng.choice([0.1 + 0.2, 1e16, 1e-05, -0.0, 0.0, np.inf, -np.inf, np.nan, 123456789.0, 2.5, 5e-324], n)
    with_none = rng.choice(texts, n).astype(object)
    with_none[rng.random(n) < 0.2] = None
    return pd.DataFrame({
        "text": rng.choice(texts, n), "text_missing": with_none,
        "arrow_text": pd.array(rng.choice(texts, n), dtype="string"),
        "count": rng.integers(-10**12, 10**12, n), "small": rng.integers(0, 255, n).astype(np.uint8),
        "flag": rng.random(n) < 0.5, "rate": floats * rng.random(n), "f32": rng.random(n).astype(np.float32),
        'odd, "name"': rng.integers(0, 3, n),
    })


def test_fast_csv_text_is_what_pandas_writes():
    """The writer's own formatting gives pandas' bytes, cell for cell; anything else is left to pandas."""
    from hotspots._io import csv_text

    df = _awkward_frame()
    assert csv_text(df) == df.to_csv(index=False)
    for n in (0, 1):
        assert csv_text(df.head(n)) == df.head(n).to_csv(index=False)
    # a break in the formatting would show: the comma-holding cells really are quoted
    assert '"with, comma"' in csv_text(df) and '"say ""hi"""' in csv_text(df)
    left_to_pandas = [
        df[["text"]],  # one column: an empty cell is quoted there
        df.assign(when=pd.Timestamp("2025-01-01")),
        df.assign(cat=pd.Categorical(["a"] * len(df))),
        df.assign(mixed=[1, "a"] * (len(df) // 2)),
        df.assign(text=["carriage\rreturn"] * len(df)),
        df.assign(nullable=pd.array([1, None] * (len(df) // 2), dtype="Int64")),
    ]
    for frame in left_to_pandas:
        assert csv_text(frame) is None


def test_write_csv_bytes_match_pandas(tmp_path):
    """``OutputDir.write_csv`` writes what pandas would write from the Excel-ready frame, byte for byte."""
    from hotspots._io import excel_ready

    df = _awkward_frame(seed=11)
    out = OutputDir(tmp_path / "out")
    fast = out.write_csv(df, "fast.csv").read_bytes()
    with open(tmp_path / "pandas.csv", "w", newline="", encoding="utf-8-sig") as fh:
        excel_ready(df).to_csv(fh, index=False)
    assert fast == (tmp_path / "pandas.csv").read_bytes()
    slow = out.write_csv(df.assign(when=pd.Timestamp("2025-01-01")), "slow.csv").read_bytes()  # pandas' own path
    assert slow.startswith(b"\xef\xbb\xbf") and slow.splitlines()[1].endswith(b",2025-01-01")


def test_round_significant_keeps_precision_where_it_matters():
    from hotspots._io import round_significant

    v = np.array([51.752345678, -0.34123456789, 523456.789, 0.05, 1e-300, np.nan, np.inf, -2.5e-7])
    r = round_significant(v)
    assert r[0] == 51.75235 and r[1] == -0.3412346 and r[2] == 523456.8 and r[3] == 0.05
    assert r[4] == 1e-300 and np.isnan(r[5]) and np.isinf(r[6]) and r[7] == -2.5e-7
    assert np.all(np.abs(r[:5] - v[:5]) <= np.abs(v[:5]) * 5e-7)


# --------------------------------------------------------------------------- GIS: QGIS styles, ArcGIS fields, slim grid
def _styles(path) -> dict[str, dict]:
    with sqlite3.connect(path) as con:
        rows = con.execute("SELECT f_table_name, f_geometry_column, styleName, styleQML, styleSLD, useAsDefault "
                           "FROM layer_styles").fetchall()
        registered = con.execute("SELECT data_type FROM gpkg_contents WHERE table_name = 'layer_styles'").fetchone()
    assert registered == ("attributes",)
    return {r[0]: {"geom": r[1], "name": r[2], "qml": r[3], "sld": r[4], "default": r[5]} for r in rows}


def _check_xml(text: str) -> ET.Element:
    return ET.fromstring(text.split("\n", 1)[1] if text.startswith("<!DOCTYPE") else text.encode())


@pytest.fixture(scope="module")
def grid_runs(tmp_path_factory):
    """The hotspots stage on the synthetic county of test_hotspots_stage: slim (default) and every cell."""
    from test_hotspots_stage import _ctx
    from hotspots.stages.hotspots import stage_hotspots

    slim = _ctx(tmp_path_factory.mktemp("slim"))
    stage_hotspots(slim, maps=False)
    full = _ctx(tmp_path_factory.mktemp("all"))
    full.settings = full.settings.replace(extra={**full.settings.extra, "outputs": {"grid_cells": "all"}})
    stage_hotspots(full, maps=False)
    return slim.out.root / "hotspots", full.out.root / "hotspots"


def test_grid_cells_styled_with_arcgis_fields_and_slim_by_default(grid_runs):
    import pyogrio

    slim, full = (root / "grid_cells.gpkg" for root in grid_runs)
    layers = [name for name, kind in pyogrio.list_layers(slim) if kind is not None]
    assert layers == [name for name, kind in pyogrio.list_layers(full) if kind is not None]
    assert all("-" not in name for name in layers) and len(set(layers)) == len(layers) == 6
    styles = _styles(slim)
    assert set(styles) == set(layers)
    for layer in layers:
        st = styles[layer]
        assert st["default"] == 1 and st["geom"] == "geom"
        qml = _check_xml(st["qml"])
        renderer = qml.find("renderer-v2")
        assert renderer.get("type") == "categorizedSymbol" and renderer.get("attr") == "Gi_Bin"
        assert sorted(int(c.get("value")) for c in renderer.iter("category")) == list(range(-3, 4))
        assert _check_xml(st["sld"]).tag.endswith("StyledLayerDescriptor")
        a = pyogrio.read_dataframe(slim, layer=layer)
        b = pyogrio.read_dataframe(full, layer=layer)
        # ArcGIS fields agree with ours
        assert a["Gi_Bin"].dtype.kind == "i" and set(a["Gi_Bin"]) <= set(range(-3, 4))
        hot = a["gi_class"].astype(str).str.startswith("hot")
        assert (a.loc[hot, "Gi_Bin"] > 0).all() and (a.loc[~hot & (a["gi_class"] == "not_significant"), "Gi_Bin"] == 0).all()
        assert (a.loc[a["gi_class"] == "hot_99", "Gi_Bin"] == 3).all()
        np.testing.assert_array_equal(a["GiZScore"], a["gi_z"])
        np.testing.assert_array_equal(a["GiPValue"], a["gi_p"])
        assert set(a["COType"]) <= {"", "HH", "LL", "HL", "LH"}
        assert ((a["COType"] == "HH") == (a["moran_class"] == "hotspot_HH")).all()
        # one kind of study area per layer
        assert set(a["study_area_type"]) == ({"county"} if layer.endswith("_county") else {"district"})
        # slim: every cell with a crime or a result, and only those; everything on request
        key = ["study_area_code", "cell_id"]
        kept = pd.MultiIndex.from_frame(a[key])
        assert kept.is_unique and kept.isin(pd.MultiIndex.from_frame(b[key])).all()
        dropped = b[~pd.MultiIndex.from_frame(b[key]).isin(kept)]
        assert len(a) < len(b) and len(a) + len(dropped) == len(b)
        assert (dropped["count"] == 0).all() and (dropped["gi_class"] == "not_significant").all()
        assert (dropped["Gi_Bin"] == 0).all() and (dropped["COType"] == "").all()
        assert (b["count"] > 0).sum() == (a["count"] > 0).sum()
        assert pyogrio.read_info(slim, layer=layer)["geometry_type"] in ("Polygon", "MultiPolygon")  # one clean type


def test_patrol_areas_styled_and_labelled(grid_runs):
    path = grid_runs[0] / "patrol_areas.gpkg"
    styles = _styles(path)
    assert list(styles) == ["patrol_areas"]
    qml = _check_xml(styles["patrol_areas"]["qml"])
    assert qml.find("renderer-v2").get("type") == "singleSymbol"
    assert qml.find("labeling/settings/text-style").get("fieldName") == "patrol_area_id"
    assert qml.get("labelsEnabled") == "1"


def test_outliers_layer_style_follows_the_flags(tmp_path):
    """The shared writer styles an outliers layer by its funnel flag (what stages/outliers.py writes)."""
    import geopandas as gpd
    import shapely

    flags = pd.Categorical(["high_998", "within", "low_95"], categories=["high_998", "high_95", "within", "low_95", "low_998"],
                           ordered=True)
    gdf = gpd.GeoDataFrame({"area_code": ["A", "B", "C"], "flag": flags, "ratio": [2.0, 1.0, 0.5]},
                           geometry=[shapely.box(i, 0, i + 1, 1) for i in range(3)], crs=27700)
    path = OutputDir(tmp_path).write_geo(gdf, "outliers/outliers_district.gpkg", layer="outliers-district")
    styles = _styles(path)
    assert list(styles) == ["outliers_district"]  # no hyphen
    renderer = _check_xml(styles["outliers_district"]["qml"]).find("renderer-v2")
    cats = {c.get("value"): c.get("label") for c in renderer.iter("category")}
    assert renderer.get("attr") == "flag" and list(cats) == list(flags.categories)
    assert cats["high_998"] == "Above the 99.8% limits" and cats["within"] == "Within the limits"
    # a plain text column (what the stage hands over) gets the same legend order
    gdf["flag"] = gdf["flag"].astype(str)
    path = OutputDir(tmp_path).write_geo(gdf, "outliers/plain.gpkg", layer="plain")
    renderer = _check_xml(_styles(path)["plain"]["qml"]).find("renderer-v2")
    assert [c.get("value") for c in renderer.iter("category")] == ["high_998", "within", "low_95"]


def test_geometry_collections_are_cleaned_on_write(tmp_path):
    """A polygon overlay that left a GeometryCollection (the treated_areas.gpkg case) is written as MultiPolygons."""
    import geopandas as gpd
    import pyogrio
    import shapely

    mixed = shapely.GeometryCollection([shapely.box(0, 0, 10, 10), shapely.LineString([(10, 0), (20, 0)])])
    gdf = gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=[shapely.box(20, 0, 30, 10), mixed], crs=27700)
    path = OutputDir(tmp_path).write_geo(gdf, "evaluation/treated_areas.gpkg")
    assert pyogrio.read_info(path, layer="treated_areas")["geometry_type"] == "MultiPolygon"
    back = gpd.read_file(path, layer="treated_areas")
    assert back.geom_type.tolist() == ["MultiPolygon", "MultiPolygon"]
    assert back.geometry.iloc[1].area == 100 and len(back) == 2


def test_layer_names_are_unique_by_construction(tmp_path):
    import geopandas as gpd
    import pyogrio
    import shapely

    gdf = gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.box(0, 0, 1, 1)], crs=27700)
    path = OutputDir(tmp_path).write_geo_layers([("Night-time economy", gdf), ("night time economy", gdf),
                                                 ("2024", gdf)], "x.gpkg")
    names = [name for name, kind in pyogrio.list_layers(path) if kind is not None]
    assert names == ["night_time_economy", "night_time_economy_2", "l_2024"]
    assert set(_styles(path)) == set(names)
