"""The study area of a grid: one valid polygonal geometry in metres (private to :mod:`hotspots.geo`).

Grids are laid over a projected CRS in metres; an area without a CRS, in
degrees or in other units is a :class:`~hotspots._errors.CRSError`, never guessed.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from hotspots._errors import CRSError, ValidationError


def _check_projected_metres(crs: Any, name: str) -> pyproj.CRS:
    if crs is None:
        raise CRSError(
            f"{name} has no CRS, so its units are unknown",
            hint="set it, e.g. gdf.set_crs(27700) or make_grid(..., crs='EPSG:27700')",
        )
    try:
        crs = pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        raise CRSError(f"{name} has an unreadable CRS {crs!r}: {exc}",
                       hint="use an EPSG code such as 'EPSG:27700'") from None
    if crs.is_geographic:
        raise CRSError(
            f"{name} is in a geographic CRS ({crs.to_string()}, degrees); grids need metres",
            hint="project it first, e.g. gdf.to_crs(27700) for British National Grid",
        )
    units = {axis.unit_name for axis in crs.axis_info}
    if not crs.is_projected or units - {"metre"}:
        raise CRSError(
            f"{name} is in {crs.to_string()} with units {sorted(units)}; grids need a projected CRS in metres",
            hint="project it first, e.g. gdf.to_crs(27700) for British National Grid",
        )
    return crs


def _resolve_area(area: Any, crs: Any, *, name: str = "area", require_crs: bool = True):
    """Return (polygonal geometry, pyproj CRS or None) from a geometry or GeoDataFrame."""
    area_crs = None
    if isinstance(area, (gpd.GeoDataFrame, gpd.GeoSeries)):
        area_crs = area.crs
        if len(area) == 0:
            raise ValidationError(f"{name} is empty (0 rows)", hint="pass the study-area boundary")
        geometry = shapely.union_all(np.asarray(area.geometry.values))
    elif isinstance(area, shapely.Geometry):
        geometry = area
    else:
        raise ValidationError(
            f"{name} must be a shapely geometry, GeoDataFrame or GeoSeries, got {type(area).__name__}",
            hint="read the boundary with geopandas.read_file and pass the GeoDataFrame",
        )
    if crs is not None and area_crs is not None:
        if pyproj.CRS.from_user_input(crs) != pyproj.CRS.from_user_input(area_crs):
            raise CRSError(
                f"crs={crs!r} disagrees with the CRS of {name} ({pyproj.CRS(area_crs).to_string()})",
                hint=f"drop the crs argument or project {name} with .to_crs(...) first",
            )
    crs = area_crs if area_crs is not None else crs
    if crs is None and not require_crs and not geometry.is_empty:
        minx, miny, maxx, maxy = geometry.bounds
        if max(abs(minx), abs(maxx)) <= 180 and max(abs(miny), abs(maxy)) <= 90:
            raise CRSError(f"{name} looks like longitude/latitude in degrees, but metres were expected",
                           hint="project it to EPSG:27700 first, e.g. gdf.to_crs(27700)")
    if require_crs or crs is not None:
        if crs is None:
            hint = "pass crs='EPSG:27700' (or a GeoDataFrame with its CRS set)"
            if isinstance(geometry, shapely.Geometry) and not geometry.is_empty:
                minx, miny, maxx, maxy = geometry.bounds
                if max(abs(minx), abs(maxx)) <= 180 and max(abs(miny), abs(maxy)) <= 90:
                    hint = "the coordinates look like lon/lat degrees: project to EPSG:27700 first"
            raise CRSError(f"{name} has no CRS, so its units are unknown", hint=hint)
        crs = _check_projected_metres(crs, name)
    polygonal = _polygonal_parts(np.array([geometry], dtype=object))[0]
    if polygonal is not None and not polygonal.is_empty and not polygonal.is_valid:
        raise ValidationError(
            f"{name} is not a valid polygon: {shapely.is_valid_reason(polygonal)}",
            hint="repair it first, e.g. gdf.geometry = gdf.geometry.make_valid()",
        )
    if polygonal is None or polygonal.is_empty or polygonal.area <= 0:
        raise ValidationError(
            f"{name} has no area (geometry type {geometry.geom_type})",
            hint="pass a polygon or multipolygon boundary of the study area",
        )
    return polygonal, crs


def _polygonal_parts(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygonal parts of each geometry (drop touching lines/points)."""
    out = np.array(geoms, dtype=object)
    types = shapely.get_type_id(out)
    # 7 = GeometryCollection; polygons (3) and multipolygons (6) are already fine
    for i in np.flatnonzero(types == 7):
        parts = shapely.get_parts(out[i])
        parts = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
        if len(parts) == 0:
            out[i] = shapely.Polygon()
        else:
            polys = np.concatenate([shapely.get_parts(p) for p in parts])
            out[i] = polys[0] if len(polys) == 1 else shapely.multipolygons(polys)
    for i in np.flatnonzero(~np.isin(types, (3, 6, 7))):
        out[i] = shapely.Polygon() if out[i] is not None else None
    return out
