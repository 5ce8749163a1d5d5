"""Writing the hotspots tables under ``hotspots/`` (the stage decides what is written, and when)."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from hotspots._text import slug
from hotspots.detect.columns import GRID_CELL_COLUMNS
from hotspots.detect.results import AreaResult, Inputs
from hotspots.schema import BNG

__all__ = ["write_grid_cells", "write_tables"]


def write_grid_cells(out, inputs: Inputs, areas: list[AreaResult]) -> None:
    """``hotspots/grid_cells.gpkg``: one layer per selection, the county and district grids together."""
    # Every layer has the same cells: pyogrio would turn the polygons into multipolygons (GeoPackage layers
    # hold one type) once per layer; it is done once here, as pyogrio does it (nothing changes in the file).
    geometry = np.concatenate([np.asarray(a.grid.geometry.values) for a in areas]) if areas else np.array([])
    types = set(shapely.get_type_id(geometry).tolist())
    if types == {3, 6}:  # Polygon and MultiPolygon
        single = shapely.get_type_id(geometry) == 3
        geometry[single] = shapely.multipolygons(np.atleast_2d(geometry[single]), axis=0)
    with out.atomic_path("hotspots/grid_cells.gpkg") as tmp:
        for sel in inputs.selections:
            layer = pd.concat([a.selections[sel].cells[GRID_CELL_COLUMNS[:-1]] for a in areas], ignore_index=True)
            layer = gpd.GeoDataFrame(layer, geometry=gpd.GeoSeries(geometry, crs=BNG), crs=BNG)
            # the Arrow path of pyogrio writes the same features, in half the time
            layer.to_file(tmp, layer=slug(sel, empty="x"), driver="GPKG", engine="pyogrio", use_arrow=True)


def write_tables(out, tables: dict[str, Any]) -> None:
    """The tables of :func:`hotspots.detect.tables.hotspot_tables` (all but ``grid_cells.gpkg``), in a fixed order."""
    patrol = tables["patrol_areas"]
    out.write_geo(patrol, "hotspots/patrol_areas.gpkg")
    out.write_geo(patrol, "hotspots/patrol_areas.geojson")
    out.write_csv(pd.DataFrame(patrol.drop(columns="geometry")), "hotspots/patrol_areas.csv")
    out.write_csv(tables["patrol_area_crime_types"], "hotspots/patrol_area_crime_types.csv")
    if tables["patrol_area_hour_of_week"] is not None:
        out.write_csv(tables["patrol_area_hour_of_week"], "hotspots/patrol_area_hour_of_week.csv")
    out.write_csv(tables["clusters"], "hotspots/clusters.csv")
    out.write_csv(tables["emerging"], "hotspots/emerging.csv")
    out.write_csv(tables["stability"], "hotspots/stability.csv")
    out.write_csv(tables["town_centres"], "hotspots/town_centre_hotspots.csv")
    out.write_csv(tables["study_areas"], "hotspots/study_areas.csv")
