"""Display geometry for the maps: simplified, projected to WGS84, rounded; GeoJSON; KDE contour bands."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from hotspots.render.map_views import KDE_BANDS
from hotspots.schema import BNG, WGS84


class _Display(NamedTuple):
    """Rows to draw and their display geometries (WGS84, simplified, on a 1e-6 degree grid)."""

    rows: pd.DataFrame
    geoms: np.ndarray

    def __len__(self) -> int:
        return len(self.geoms)


def _to_display(gdf: gpd.GeoDataFrame | None, tolerance_m: float) -> _Display:
    """Simplify in metres, project to WGS84, round to 6 decimal places (~0.1 m); empty results are dropped."""
    if gdf is None or len(gdf) == 0:
        return _Display(pd.DataFrame(), np.array([], dtype=object))
    geoms = np.asarray(gdf.geometry.values)
    if tolerance_m > 0:
        geoms = shapely.simplify(geoms, tolerance_m, preserve_topology=True)
    projected = gpd.GeoSeries(geoms, crs=gdf.crs if gdf.crs is not None else BNG).to_crs(WGS84)
    geoms = shapely.set_precision(np.asarray(projected.values), 1e-6)
    keep = ~shapely.is_empty(geoms)
    if keep.all():
        return _Display(gdf, geoms)
    return _Display(gdf.iloc[np.flatnonzero(keep)], geoms[keep])


def _round_coords(obj):
    if isinstance(obj, float):
        return round(obj, 6)
    if isinstance(obj, (list, tuple)):
        return [_round_coords(o) for o in obj]
    return obj


def _geojson_geometries(geoms: np.ndarray) -> list[dict]:
    """GeoJSON geometry dicts (``shapely.geometry.mapping`` with coordinates as rounded lists), all at once.

    Polygons and multipolygons (all the maps draw) go through numpy: their
    coordinates are already snapped to 1e-6 degrees by :func:`_to_display`,
    so rounding to 6 places changes nothing and ``np.round`` agrees with
    ``round``.  Anything else takes the general path.
    """
    out: list[dict | None] = [None] * len(geoms)
    type_id = shapely.get_type_id(geoms)
    polygonal = np.flatnonzero((type_id == 3) | (type_id == 6))
    if len(polygonal):
        parts, part_owner = shapely.get_parts(geoms[polygonal], return_index=True)
        rings, ring_owner = shapely.get_rings(parts, return_index=True)
        coords = np.round(shapely.get_coordinates(rings), 6).tolist()
        ends = np.cumsum(shapely.get_num_coordinates(rings)).tolist()
        ring_lists: list[list] = [[] for _ in range(len(parts))]
        start = 0
        for owner, end in zip(ring_owner.tolist(), ends):
            ring_lists[owner].append(coords[start:end])
            start = end
        part_lists: list[list] = [[] for _ in range(len(polygonal))]
        for owner, part in zip(part_owner.tolist(), ring_lists):
            part_lists[owner].append(part)
        for position, geom_index in enumerate(polygonal.tolist()):
            if type_id[geom_index] == 3:
                out[geom_index] = {"type": "Polygon", "coordinates": part_lists[position][0]}
            else:
                out[geom_index] = {"type": "MultiPolygon", "coordinates": part_lists[position]}
    for i in [i for i, g in enumerate(out) if g is None]:
        gj = shapely.geometry.mapping(geoms[i])
        out[i] = {"type": gj["type"], "coordinates": _round_coords(gj["coordinates"])}
    return out


def _feature_collection(display: _Display, props: list[dict]) -> dict:
    geometries = _geojson_geometries(display.geoms)
    features = [{"type": "Feature", "properties": p, "geometry": g} for g, p in zip(geometries, props)]
    return {"type": "FeatureCollection", "features": features}


def _lonlat(x: float, y: float) -> tuple[float, float]:
    return _lonlats([x], [y])[0]


def _lonlats(x: Sequence[float], y: Sequence[float]) -> list[tuple[float, float]]:
    """(lat, lon) of BNG points, rounded to 6 places, in one projection."""
    if len(x) == 0:
        return []
    pts = gpd.GeoSeries(gpd.points_from_xy(np.asarray(x, float), np.asarray(y, float)), crs=BNG).to_crs(WGS84)
    return [(round(lat, 6), round(lon, 6)) for lon, lat in zip(shapely.get_x(pts.values).tolist(),
                                                                shapely.get_y(pts.values).tolist())]


def _kde_bands(cells: pd.DataFrame, grid: dict | None, area_geom) -> gpd.GeoDataFrame:
    """Filled contours of the KDE rank field (display bands), clipped to the study area."""
    if grid is None or len(cells) == 0 or "kde_top_pct" not in cells or cells["kde_top_pct"].isna().all():
        return gpd.GeoDataFrame({"band": [], "geometry": []}, geometry="geometry", crs=BNG)
    import contourpy

    rows = cells["row"].to_numpy(int)
    cols = cells["col"].to_numpy(int)
    r0, c0 = rows.min(), cols.min()
    # one cell of padding so bands close inside the area
    arr = np.full((rows.max() - r0 + 3, cols.max() - c0 + 3), 100.0)
    arr[rows - r0 + 1, cols - c0 + 1] = cells["kde_top_pct"].fillna(100.0).to_numpy(float)
    s = float(grid["cell_size"])
    if grid.get("shape", "square") == "square" and {"x0", "y0"} <= set(grid):
        xs = grid["x0"] + (np.arange(arr.shape[1]) + c0 - 1 + 0.5) * s
        ys = grid["y0"] + (np.arange(arr.shape[0]) + r0 - 1 + 0.5) * s
    else:  # hexagons (or unknown lattice): approximate on cell centres
        xc = cells["x_centre"].to_numpy(float)
        yc = cells["y_centre"].to_numpy(float)
        xs = np.linspace(xc.min() - s, xc.max() + s, arr.shape[1])
        ys = np.linspace(yc.min() - s, yc.max() + s, arr.shape[0])
    gen = contourpy.contour_generator(xs, ys, arr, fill_type=contourpy.FillType.OuterOffset)
    out_geoms, out_band = [], []
    for top_pct, _, _ in KDE_BANDS:
        points, offsets = gen.filled(-1.0, top_pct)
        polys = []
        for pts, offs in zip(points, offsets):
            rings = [pts[offs[i]:offs[i + 1]] for i in range(len(offs) - 1)]
            rings = [r for r in rings if len(r) >= 4]
            if rings:
                polys.append(shapely.Polygon(rings[0], rings[1:]))
        if not polys:
            continue
        geom = shapely.make_valid(shapely.union_all(polys))
        if area_geom is not None:
            geom = shapely.intersection(geom, area_geom)
        if not geom.is_empty:
            out_geoms.append(geom)
            out_band.append(top_pct)
    return gpd.GeoDataFrame({"band": out_band, "geometry": out_geoms}, geometry="geometry", crs=BNG)

