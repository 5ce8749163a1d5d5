"""Display geometry for the maps: simplified, projected to WGS84, rounded; GeoJSON text; KDE contour bands."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from hotspots.render.map_views import KDE_BANDS
from hotspots.schema import BNG, WGS84


class _Display(NamedTuple):
    """Rows to draw, their display geometries (WGS84, simplified, on a 1e-6 degree grid) and their GeoJSON text."""

    rows: pd.DataFrame
    geoms: np.ndarray
    texts: list[str]

    def __len__(self) -> int:
        return len(self.geoms)


def _crs_key(crs) -> str:
    """A CRS as the text it was given as (``EPSG:27700``): cheap to hash, unlike a pyproj CRS."""
    return crs if isinstance(crs, str) else crs.srs


@functools.lru_cache(maxsize=8)
def _transformer(crs: str):
    """The ``crs`` (text) -> WGS84 transformer geopandas' ``to_crs`` uses (``always_xy``), made once."""
    from pyproj import CRS, Transformer

    return Transformer.from_crs(CRS.from_user_input(crs), CRS.from_user_input(WGS84), always_xy=True)


def _project(geoms: np.ndarray, crs=BNG) -> np.ndarray:
    """``GeoSeries(geoms, crs=crs).to_crs(WGS84)``, the same numbers, without building a GeoSeries each time.

    Geometries with a z coordinate (none in the maps) take geopandas' own path.
    """
    if len(geoms) == 0 or shapely.has_z(geoms).any():
        return np.asarray(gpd.GeoSeries(geoms, crs=crs).to_crs(WGS84).values)
    coords = shapely.get_coordinates(geoms)
    lon, lat = _transformer(_crs_key(crs)).transform(coords[:, 0], coords[:, 1])
    return shapely.set_coordinates(geoms.copy(), np.array((lon, lat)).T)


#: display geometry and GeoJSON text already made, by (tolerance, CRS, WKB): the maps of one run share grid cells
#: between selections, clusters between selections, and patrol areas, districts and town centres between the
#: county and district maps.  A pure function of its key, so never stale; emptied past ``_MEMO_LIMIT`` entries.
_MEMO: dict[tuple, tuple] = {}
_MEMO_LIMIT = 50_000  # a Hertfordshire run keeps about 5,000


def _display_geometries(geoms: np.ndarray, tolerance_m: float, crs) -> tuple[np.ndarray, list[str | None]]:
    """Simplify in metres, project to WGS84, snap to 1e-6 degrees (~0.1 m); GeoJSON text (None when empty)."""
    if tolerance_m > 0:
        geoms = shapely.simplify(geoms, tolerance_m, preserve_topology=True)
    geoms = _on_grid(_project(geoms, crs))
    empty = shapely.is_empty(geoms)
    texts: list[str | None] = [None] * len(geoms)
    keep = np.flatnonzero(~empty)
    for i, text in zip(keep.tolist(), _geojson_texts(geoms[keep])):
        texts[i] = text
    return geoms, texts


#: the grid the display coordinates are snapped to, in degrees (~0.1 m)
GRID = 1e-6
_SCALE = 1e6  # 1 / GRID, as GEOS makes it (a whole number)


def _on_grid(geoms: np.ndarray) -> np.ndarray:
    """``shapely.set_precision(geoms, GRID)``, the simple polygons (a grid square, most of a map) without GEOS.

    GEOS snaps a polygon with its overlay (snap-rounding), one geometry at a
    time.  For a polygon without holes whose rounded ring keeps every vertex
    (no two consecutive vertices on one grid point, no rounding tie) and stays
    valid, that overlay gives the ring rounded and turned clockwise, starting
    one vertex on (clockwise input) or reversed (anticlockwise): written here
    for all such polygons at once.  Everything else -- holes, multipolygons,
    vertices that merge, a GEOS whose overlay starts its rings elsewhere
    (checked once, :func:`_grid_rule_holds`) -- goes to ``set_precision``.
    """
    geoms = np.asarray(geoms, dtype=object)
    simple = np.flatnonzero((shapely.get_type_id(geoms) == 3) & (shapely.get_num_interior_rings(geoms) == 0)
                            & ~shapely.is_empty(geoms))
    if len(simple) < 16 or not _grid_rule_holds():  # a few: not worth the set-up
        return shapely.set_precision(geoms, GRID)
    made, ok = _simple_on_grid(geoms[simple])
    out = np.empty(len(geoms), dtype=object)
    out[simple[ok]] = made[ok]
    rest = np.setdiff1d(np.arange(len(geoms)), simple[ok])
    if len(rest):
        out[rest] = shapely.set_precision(geoms[rest], GRID)
    return out


def _simple_on_grid(polygons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Polygons without holes snapped to :data:`GRID` by the rule of :func:`_on_grid`, and which of them it fits."""
    rings = shapely.get_exterior_ring(polygons)
    sizes = shapely.get_num_coordinates(rings)
    coords = shapely.get_coordinates(rings)
    scaled = coords * _SCALE  # GEOS: round(value * scale) / scale, its scale 1 / grid a whole number
    whole = np.floor(scaled + 0.5)  # GEOS rounds half up (java's Math.round)
    tie = (scaled - np.floor(scaled)) == 0.5  # GEOS's rounding of a tie: left to GEOS
    snapped = whole / _SCALE
    ends = np.cumsum(sizes)
    starts = ends - sizes
    owner = np.repeat(np.arange(len(polygons)), sizes)
    # a vertex on the grid point of the one before it (the closing vertex is the first: equal by construction)
    same = np.zeros(len(coords), dtype=bool)
    same[1:] = (snapped[1:] == snapped[:-1]).all(axis=1)
    same[starts] = False
    ok = (sizes >= 4) & ~np.bincount(owner, weights=(same | tie.any(axis=1)), minlength=len(polygons)).astype(bool)
    ccw = shapely.is_ccw(rings)
    order = np.empty(len(coords), dtype=np.int64)
    position = np.arange(len(coords)) - np.repeat(starts, sizes)  # 0 .. size-1 within the ring
    n = np.repeat(sizes - 1, sizes)  # distinct vertices
    base = np.repeat(starts, sizes)
    clockwise_order = base + (position + 1) % n  # v1, v2, ..., v(n-1), v0, v1
    anticlockwise_order = base + (n - 1 - position) % n  # v(n-1), ..., v0, v(n-1)
    order = np.where(np.repeat(ccw, sizes), anticlockwise_order, clockwise_order)
    made = shapely.polygons(shapely.linearrings(snapped[order], indices=owner))
    ok &= shapely.is_valid(made)
    return made, ok


@functools.lru_cache(maxsize=1)
def _grid_rule_holds() -> bool:
    """Whether this GEOS's ``set_precision`` gives what :func:`_simple_on_grid` writes (checked once, on a few shapes)."""
    shapes = [shapely.Polygon([(0.1234564, 51.2), (0.1334567, 51.2000004), (0.13, 51.21), (0.12, 51.2099996)]),
              shapely.Polygon([(-0.3, 51.7), (-0.3, 51.71), (-0.29, 51.7100001), (-0.2912345678, 51.7)]),
              shapely.Polygon([(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.5), (0.0, 1.0)])]
    polygons = np.array(shapes, dtype=object)
    try:
        made, ok = _simple_on_grid(polygons)
        expected = shapely.set_precision(polygons, GRID)
        return bool(ok.all()) and shapely.to_wkb(made).tolist() == shapely.to_wkb(expected).tolist()
    except Exception:  # noqa: BLE001 - any surprise: GEOS does all of it
        return False


def _to_display(gdf: gpd.GeoDataFrame | None, tolerance_m: float, *, memo: bool = False) -> _Display:
    """Simplify in metres, project to WGS84, round to 6 decimal places (~0.1 m); empty results are dropped.

    ``memo``: reuse (and keep) the results for geometries met before (:data:`_MEMO`), for layers that
    several maps or selections share; each geometry's result depends on nothing else.
    """
    if gdf is None or len(gdf) == 0:
        return _Display(pd.DataFrame(), np.array([], dtype=object), [])
    keep, out, texts = _display_of(np.asarray(gdf.geometry.values), tolerance_m,
                                   gdf.crs if gdf.crs is not None else BNG, memo=memo)
    if len(keep) == len(gdf):
        return _Display(gdf, out, texts)
    return _Display(gdf.iloc[keep], out, texts)


def _display_of(geoms: np.ndarray, tolerance_m: float, crs=BNG, *,
                memo: bool = False) -> tuple[list[int], np.ndarray, list[str]]:
    """:func:`_to_display` of an array of geometries: the positions kept, their display geometries and GeoJSON."""
    if not memo:
        out, texts = _display_geometries(geoms, tolerance_m, crs)
    else:
        crs_key = _crs_key(crs)
        keys = [(tolerance_m, crs_key, wkb) for wkb in shapely.to_wkb(geoms).tolist()]
        todo = [i for i, k in enumerate(keys) if k not in _MEMO]
        if todo:
            if len(_MEMO) + len(todo) > _MEMO_LIMIT:
                _MEMO.clear()
            made, made_texts = _display_geometries(geoms[todo], tolerance_m, crs)
            for i, g, t in zip(todo, made, made_texts):
                _MEMO[keys[i]] = (g, t)
        found = [_MEMO[k] for k in keys]
        out = np.empty(len(found), dtype=object)
        out[:] = [g for g, _ in found]
        texts = [t for _, t in found]
    keep = [i for i, t in enumerate(texts) if t is not None]
    if len(keep) == len(texts):
        return keep, out, texts
    return keep, out[keep], [texts[i] for i in keep]


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


def _bng(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """The geometries of ``gdf`` in BNG: as they are when they are already (``to_crs`` would copy the frame)."""
    if gdf.crs is not None and _crs_key(gdf.crs) == BNG:
        return np.asarray(gdf.geometry.values)
    return np.asarray(gdf.to_crs(BNG).geometry.values)


def _records(frame: pd.DataFrame, only: Sequence[str] | None = None) -> list[dict]:
    """``frame.to_dict("records")`` without the geometry column, column by column (pandas goes row by row).

    As pandas does, values of object and extension columns become Python scalars and ``pd.NA`` None.
    ``only``: just these columns, those of them the frame has (a key is in a record when its column is in
    the frame), so a caller reading a few columns of a wide table does not convert the others.
    """
    skip = frame.active_geometry_name if isinstance(frame, gpd.GeoDataFrame) else None
    columns = [c for c in frame.columns if c != skip]
    if only is not None and frame.columns.is_unique:
        wanted = set(only)
        columns = [c for c in columns if c in wanted]
    if not frame.columns.is_unique:
        return frame[columns].to_dict("records")
    if not columns:
        return [{} for _ in range(len(frame))]
    values = []
    for c in columns:
        column = frame[c]
        boxed = column.dtype == object or isinstance(column.dtype, pd.api.extensions.ExtensionDtype)
        values.append([_native(v) for v in column.tolist()] if boxed else column.tolist())
    return [dict(zip(columns, row)) for row in zip(*values)]


def _native(value):
    """pandas' ``maybe_box_native``: numpy scalars as Python scalars, datetimes as Timestamps, ``pd.NA`` as None."""
    if value is pd.NA:
        return None
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value)
    if isinstance(value, np.timedelta64):
        return pd.Timedelta(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _geojson_texts(geoms: np.ndarray) -> list[str]:
    """Each geometry as GeoJSON text, as folium writes it (``json.dumps`` with sorted keys).

    Polygons and multipolygons with finite coordinates (all the maps draw) are written by
    :func:`_polygon_texts`; anything else by ``json.dumps`` of :func:`_geojson_geometries`.
    """
    texts = _polygon_texts(geoms)
    if texts is not None:
        return texts
    return [json.dumps(g, sort_keys=True) for g in _geojson_geometries(geoms)]


def _polygon_texts(geoms: np.ndarray) -> list[str] | None:
    """``json.dumps(g, sort_keys=True)`` of :func:`_geojson_geometries`' dicts for (multi)polygons, or None.

    ``json.dumps`` writes a finite float as ``float.__repr__`` and a list as
    ``[a, b]``, as Python's own ``str`` of a list of floats does: each ring is
    written by one ``str`` of its coordinate pairs (C speed), instead of one
    encoder set up per geometry.  None (the caller takes the general path)
    unless every geometry is a non-empty polygon or multipolygon with finite
    coordinates (``json`` writes ``NaN`` and ``Infinity``, ``str`` ``nan`` and ``inf``).
    """
    if len(geoms) == 0:
        return []
    type_id = shapely.get_type_id(geoms)
    if not np.isin(type_id, (3, 6)).all() or shapely.is_empty(geoms).any():
        return None
    parts, part_owner = shapely.get_parts(geoms, return_index=True)
    rings, ring_owner = shapely.get_rings(parts, return_index=True)
    coords = np.round(shapely.get_coordinates(rings), 6)
    if not np.isfinite(coords).all():
        return None
    pairs = coords.tolist()
    ends = np.cumsum(shapely.get_num_coordinates(rings)).tolist()
    part_rings: list[list[str]] = [[] for _ in range(len(parts))]
    start = 0
    for owner, end in zip(ring_owner.tolist(), ends):
        part_rings[owner].append(str(pairs[start:end]))
        start = end
    geom_parts: list[list[str]] = [[] for _ in range(len(geoms))]
    for owner, ring_texts in zip(part_owner.tolist(), part_rings):
        geom_parts[owner].append("[" + ", ".join(ring_texts) + "]")
    out = []
    for kind, polys in zip(type_id.tolist(), geom_parts):
        if kind == 3:
            out.append('{"coordinates": ' + polys[0] + ', "type": "Polygon"}')
        else:
            out.append('{"coordinates": [' + ", ".join(polys) + '], "type": "MultiPolygon"}')
    return out


def _lonlat(x: float, y: float) -> tuple[float, float]:
    return _lonlats([x], [y])[0]


def _lonlats(x: Sequence[float], y: Sequence[float]) -> list[tuple[float, float]]:
    """(lat, lon) of BNG points, rounded to 6 places, in one projection."""
    if len(x) == 0:
        return []
    lon, lat = _transformer(BNG).transform(np.asarray(x, float), np.asarray(y, float))
    return [(round(la, 6), round(lo, 6)) for lo, la in zip(np.asarray(lon).tolist(), np.asarray(lat).tolist())]


def _kde_bands(cells: pd.DataFrame, grid: dict | None, area_geom) -> tuple[list[float], np.ndarray]:
    """Filled contours of the KDE rank field (display bands), clipped to the study area: bands and BNG geometries."""
    if grid is None or len(cells) == 0 or "kde_top_pct" not in cells or cells["kde_top_pct"].isna().all():
        return [], np.array([], dtype=object)
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
    geoms = np.empty(len(out_geoms), dtype=object)
    geoms[:] = out_geoms
    return out_band, geoms

