"""Town-centre polygons: the built-in approximate set, their id checks, and majority-area assignment.

Split from :mod:`hotspots.geo.boundaries` (which re-exports :func:`default_town_centres`).
"""

from __future__ import annotations

from importlib import resources

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from hotspots._errors import InputFileError
from hotspots.schema import BNG

__all__ = ["default_town_centres"]


def _check_town_centre_ids(gdf: gpd.GeoDataFrame, path, name_column: str) -> None:
    """Town centres are looked up by code and chosen by name: both must be unique and names not blank."""
    problems = []
    for col, what in (("area_code", "code"), ("area_name", f"name (column {name_column!r})")):
        values = gdf[col]
        repeated = values[values.duplicated(keep=False) & (values != "")]
        for value, rows in list(repeated.groupby(repeated, sort=True).groups.items())[:5]:
            problems.append(f"{what} {value!r} is used by features {[int(r) + 1 for r in rows]}")
    blank = np.flatnonzero((gdf["area_name"] == "").to_numpy())
    if len(blank):
        problems.append(f"features {[int(r) + 1 for r in blank[:10]]} have no name")
    if problems:
        raise InputFileError(f"{path}: town centres must have unique codes and names: " + "; ".join(problems),
                             hint="give every town-centre polygon its own code and name (or merge the duplicates into one "
                             "polygon), then run again")


def default_town_centres() -> gpd.GeoDataFrame:
    """The project's approximate Hertfordshire town centres (circles, EPSG:27700).

    Each is a circle around the town's main shopping street with the radius in
    ``town_centres_hertfordshire.csv``; see ``boundaries/README.md`` for the
    derivation and limits.  Replace with your own polygons via the config.
    """
    path = resources.files("hotspots") / "data" / "town_centres_hertfordshire.csv"
    table = pd.read_csv(str(path), dtype={"code": str, "district_code": str})
    pts = gpd.GeoSeries(gpd.points_from_xy(table["lon"], table["lat"]), crs="EPSG:4326").to_crs(BNG)
    geom = pts.buffer(table["radius_m"].to_numpy(), quad_segs=16)
    return gpd.GeoDataFrame(
        {"area_code": table["code"], "area_name": table["name"], "district_code": table["district_code"], "anchor": table["anchor"]},
        geometry=geom.values,
        crs=BNG,
    )


def _majority_area(gdf: gpd.GeoDataFrame, districts: gpd.GeoDataFrame) -> np.ndarray:
    """Code of the district holding most of each polygon's area ('' if none)."""
    out = np.full(len(gdf), "", dtype=object)
    for i, geom in enumerate(gdf.geometry.values):
        inter = shapely.area(shapely.intersection(districts.geometry.values, geom))
        if inter.max() > 0:
            out[i] = districts["area_code"].iloc[int(np.argmax(inter))]
    return out
