"""GeoPackage layers written straight through pyogrio's Arrow writer (``_write_arrow_layer``): the same tables,
rows, geometries and metadata as ``GeoDataFrame.to_file(..., use_arrow=True)``."""

from __future__ import annotations

import sqlite3

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from hotspots import _io
from hotspots._io import OutputDir
from hotspots.schema import BNG


def _dump(path) -> dict:
    """Every table of a GeoPackage (schema and rows) but the times GDAL stamps."""
    con = sqlite3.connect(path)
    try:
        out = {"schema": con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall()}
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall():
            cols = [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]
            keep = [f'"{c}"' for c in cols if c not in ("last_change", "timestamp", "update_time")]
            out[table] = con.execute(f'SELECT {", ".join(keep)} FROM "{table}"').fetchall()
        return out
    finally:
        con.close()


def _frames():
    rng = np.random.default_rng(5)
    n = 40
    boxes = [shapely.box(i, 0, i + 1, 1) for i in range(n)]
    base = {"code": pd.array([f"c{i}" for i in range(n)], dtype="str"), "n": rng.integers(0, 9, n),
            "small": rng.integers(-3, 3, n).astype("int16"), "p": rng.random(n), "ok": rng.random(n) > 0.5,
            "flag": np.array(["high_95", "within", "low_95", None] * 10, dtype=object)}
    mixed = shapely.GeometryCollection([shapely.box(50, 0, 51, 1), shapely.LineString([(0, 0), (1, 1)])])
    return {
        "polygons": gpd.GeoDataFrame(base, geometry=boxes, crs=BNG),
        "mixed_multi": gpd.GeoDataFrame({"k": range(3)}, geometry=[boxes[0], mixed, None], crs=BNG),
        "points_z": gpd.GeoDataFrame({"k": range(3)}, geometry=shapely.points([[0, 0, 1], [1, 1, 2], [2, 2, 3]]), crs=BNG),
        "lines_no_crs": gpd.GeoDataFrame({"k": [1, 2]}, geometry=[shapely.LineString([(0, 0), (1, 1)])] * 2),
        "all_missing": gpd.GeoDataFrame({"k": [1, 2]}, geometry=gpd.GeoSeries([None, None], crs=BNG)),
        "empty_rows": gpd.GeoDataFrame({"k": pd.Series([], dtype="int64")}, geometry=gpd.GeoSeries([], crs=BNG)),
    }


@pytest.mark.parametrize("name", list(_frames()))
def test_arrow_layer_same_geopackage_as_to_file(tmp_path, monkeypatch, name):
    gdf = _frames()[name]
    fast = OutputDir(tmp_path / "fast").write_geo_layers([(name, gdf), ("second", gdf)], "a.gpkg", use_arrow=True)
    monkeypatch.setattr(_io, "_write_arrow_layer", lambda *args: None)  # every layer through to_file, as before
    slow = OutputDir(tmp_path / "slow").write_geo_layers([(name, gdf), ("second", gdf)], "a.gpkg", use_arrow=True)
    assert _dump(fast) == _dump(slow)


def test_arrow_layer_declines_frames_pyogrio_would_change(tmp_path):
    gdf = _frames()["polygons"]
    path = tmp_path / "x.gpkg"
    dated = gdf.assign(when=pd.Timestamp("2024-01-01"))
    named_index = gdf.rename_axis("id")
    objects = gdf.assign(mixed=np.array([1, "a"] * 20, dtype=object))
    two_types = gdf.set_geometry([shapely.box(0, 0, 1, 1), shapely.MultiPolygon([shapely.box(0, 0, 1, 1)])] * 20)
    for frame in (dated, named_index, objects, two_types):
        assert _io._write_arrow_layer(frame, path, "x") is None
    assert not path.exists()
    assert _io._write_arrow_layer(gdf, path, "x") == "polygon"
    assert _io._write_arrow_layer(_frames()["points_z"], path, "p") == "point"
