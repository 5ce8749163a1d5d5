"""An optional vector road layer for the maps, read from the data home's ``roads/`` folder.

Offline maps need street context without a web-tile server.  The police.uk
locations give street *names* at their map points; a road network gives the
lines.  Put any line file with road names under ``<data>/roads/`` (GeoPackage,
GeoJSON or Shapefile, with a CRS), for example OS Open Roads
(Ordnance Survey, open data under the Open Government Licence v3: its
``oproad_gb.gpkg``, layer ``road_link``; "Contains OS data © Crown copyright
and database right").  Only the roads inside the map's bounding box are read,
so a national file is fine.

Columns: the name is taken from the first of ``name_1``, ``name1``,
``road_name``, ``name`` present and the class from ``road_classification``,
``function``, ``class``, ``highway`` (both optional).  Without a ``roads/``
folder the maps are drawn without road lines (the police.uk points and
names are still shown).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd

from hotspots._errors import HotspotsError
from hotspots.schema import BNG

__all__ = ["read_roads", "road_files", "ROAD_SUFFIXES"]

ROAD_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp")
NAME_COLUMNS = ("name_1", "name1", "road_name", "name")
CLASS_COLUMNS = ("road_classification", "function", "class", "highway")
#: OS Open Roads keeps its lines in this layer of the GeoPackage
OS_OPEN_ROADS_LAYER = "road_link"


def road_files(data_dir: Path | str) -> list[Path]:
    """The road files under ``<data_dir>/roads`` (sorted; empty when there is no such folder)."""
    folder = Path(data_dir) / "roads"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in ROAD_SUFFIXES and p.is_file())


def read_roads(data_dir: Path | str, bbox: tuple[float, float, float, float]) -> gpd.GeoDataFrame | None:
    """Roads inside ``bbox`` (BNG minx, miny, maxx, maxy) from every file under ``<data_dir>/roads``.

    Returns
    -------
    GeoDataFrame or None
        ``name``, ``road_class`` and line geometries in EPSG:27700, or None
        when the data home has no road files.

    Raises
    ------
    HotspotsError
        A road file without a CRS, or without line geometries, named with the fix.

    Examples
    --------
    >>> import tempfile, pathlib, shapely
    >>> home = pathlib.Path(tempfile.mkdtemp())
    >>> (home / "roads").mkdir()
    >>> gpd.GeoDataFrame({"name_1": ["High Street"], "road_classification": ["B Road"]},
    ...                  geometry=[shapely.LineString([(0, 0), (500, 0)])], crs=27700).to_file(home / "roads" / "r.gpkg")
    >>> read_roads(home, (-10, -10, 100, 100))[["name", "road_class"]].values.tolist()
    [['High Street', 'B Road']]
    """
    files = road_files(data_dir)
    if not files:
        return None
    frames = []
    for path in files:
        layer = _layer_of(path)
        try:
            probe = gpd.read_file(path, layer=layer, rows=0)
        except Exception as exc:  # noqa: BLE001 - any unreadable file becomes one clear message
            raise HotspotsError(f"{path}: cannot be read as a road file ({exc})",
                                hint="remove it from roads/ or replace it with a GeoPackage of road lines") from exc
        if probe.crs is None:
            raise HotspotsError(f"{path}: has no coordinate reference system",
                                hint="save it with a CRS (OS Open Roads is EPSG:27700)")
        box = gpd.GeoSeries.from_xy([bbox[0], bbox[2]], [bbox[1], bbox[3]], crs=BNG).to_crs(probe.crs).total_bounds
        gdf = gpd.read_file(path, layer=layer, bbox=tuple(box))
        gdf = gdf.to_crs(BNG)
        kinds = set(gdf.geom_type.dropna().unique())
        if kinds - {"LineString", "MultiLineString"}:
            raise HotspotsError(f"{path}: holds {sorted(kinds)} geometries, not road lines",
                                hint="keep only line layers (e.g. OS Open Roads road_link) under roads/")
        name_col = next((c for c in NAME_COLUMNS if c in gdf), None)
        class_col = next((c for c in CLASS_COLUMNS if c in gdf), None)
        frames.append(gpd.GeoDataFrame({
            "name": gdf[name_col].fillna("").astype(str).to_numpy() if name_col else [""] * len(gdf),
            "road_class": gdf[class_col].fillna("").astype(str).to_numpy() if class_col else [""] * len(gdf),
        }, geometry=gdf.geometry.to_numpy(), crs=BNG))
    import pandas as pd

    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=BNG)


def _layer_of(path: Path) -> str | None:
    if path.suffix.lower() != ".gpkg":
        return None
    import pyogrio

    layers = [name for name, _ in pyogrio.list_layers(path)]
    return OS_OPEN_ROADS_LAYER if OS_OPEN_ROADS_LAYER in layers else layers[0] if layers else None
