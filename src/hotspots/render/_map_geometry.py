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
    geoms, crs = _geometries(gdf)
    keep, out, texts = _display_of(geoms, tolerance_m, crs if crs is not None else BNG, memo=memo)
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


def _column(frame: pd.DataFrame, name):
    """The values of ``frame[name]`` as the frame holds them (``Series._values``: what ``tolist`` lists), read only.

    ``frame[name]`` makes a new (Geo)Series each time and deep-copies the frame's ``attrs`` into
    it (a grid's cells carry their lattice): a tenth of a millisecond or more, and the maps ask
    thousands of times; the frame's own accessor of a column's array does not.
    """
    position = frame.columns.get_loc(name)  # a KeyError as frame[name] gives
    if isinstance(position, (int, np.integer)) and hasattr(frame, "_get_column_array"):
        return frame._get_column_array(position)
    return frame[name]._values


def _numbers(frame: pd.DataFrame, name, dtype) -> np.ndarray:
    """``frame[name].to_numpy(dtype)``, without making the Series for a numpy column."""
    values = _column(frame, name)
    if isinstance(values, np.ndarray):
        return values.astype(dtype, copy=False)
    return frame[name].to_numpy(dtype)


def _geometry_array(gdf: gpd.GeoDataFrame):
    """``gdf.geometry.values`` (its ``crs`` is ``gdf.crs``), without making the GeoSeries."""
    name = gdf.active_geometry_name
    if name is None or not gdf.columns.is_unique:
        return gdf.geometry.values
    return _column(gdf, name)


def _geometries(gdf: gpd.GeoDataFrame) -> tuple[np.ndarray, object]:
    """``np.asarray(gdf.geometry.values)`` and ``gdf.crs``, made as cheaply as they can be."""
    values = _geometry_array(gdf)
    return np.asarray(values), values.crs


def _bng(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """The geometries of ``gdf`` in BNG: as they are when they are already (``to_crs`` would copy the frame)."""
    geoms, crs = _geometries(gdf)
    if crs is not None and _crs_key(crs) == BNG:
        return geoms
    return np.asarray(gdf.to_crs(BNG).geometry.values)


def _records(frame: pd.DataFrame, only: Sequence[str] | None = None) -> list[dict]:
    """``frame.to_dict("records")`` without the geometry column, column by column (pandas goes row by row).

    As pandas does, values of object and extension columns become Python scalars and ``pd.NA`` None.
    ``only``: just these columns, those of them the frame has (a key is in a record when its column is in
    the frame), so a caller reading a few columns of a wide table does not convert the others.
    """
    skip = frame.active_geometry_name if isinstance(frame, gpd.GeoDataFrame) else None
    unique = frame.columns.is_unique
    columns = [c for c in frame.columns.tolist() if c != skip]  # a list: an Index of strings iterates slowly
    if only is not None and unique:
        wanted = set(only)
        columns = [c for c in columns if c in wanted]
    if not unique:
        return frame[columns].to_dict("records")
    if not columns:
        return [{} for _ in range(len(frame))]
    values = []
    for c in columns:
        column = _column(frame, c)
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
    texts = _ring_texts(coords, shapely.get_num_coordinates(rings))
    if len(rings) == len(geoms) and (type_id == 3).all():  # a ring each: polygons without holes (grid squares)
        return ['{"coordinates": [' + text + '], "type": "Polygon"}' for text in texts]
    part_rings: list[list[str]] = [[] for _ in range(len(parts))]
    for owner, text in zip(ring_owner.tolist(), texts):
        part_rings[owner].append(text)
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


#: the largest integer part written by :func:`_ring_texts` (more digits: ``str`` writes every ring)
_MAX_WHOLE_DIGITS = 9
#: coordinate pairs from which :func:`_ring_texts` writes them with numpy (its forty-odd array steps cost
#: more than ``str`` of a couple of hundred pairs)
_NUMPY_TEXT_FROM = 200


def _ring_texts(coords: np.ndarray, sizes: np.ndarray) -> list[str]:
    """``str(coords[a:b].tolist())`` of each ring (``sizes`` coordinate pairs each, in turn), written by numpy.

    ``coords`` are finite and rounded to 6 places (``np.round(..., 6)``): each
    is the double nearest a whole number ``k`` of millionths, and
    ``float.__repr__`` (shortest round trip) writes it as ``k`` with the point
    six digits from the right, trailing zeros dropped but one: no shorter
    decimal is that double, since any is a multiple of 1e-6 too (and two of
    those are far more than a double's spacing apart below 1e9); ``-0.0``
    keeps its sign.  A non-zero value under 1e-4, which ``repr`` writes as
    ``1e-05`` (lon within ~7 m of the Greenwich meridian), is written by
    ``repr`` itself; values of 1e9 and over, and fewer than
    :data:`_NUMPY_TEXT_FROM` pairs, are left to ``str``.

    The digits of every number are made at once in a byte table, one row a
    pair ``[x, y]`` with the ``", "`` that follows it inside its ring, the
    unused cells masked out; the rows of a ring are then one slice of the text.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    n = len(coords)
    millionths = np.rint(coords * 1e6)
    if n == 0 or n < _NUMPY_TEXT_FROM or not np.abs(millionths).max() // 1e6 < 10 ** _MAX_WHOLE_DIGITS:
        pairs = coords.tolist()
        return [str(pairs[s:e]) for s, e in zip(starts.tolist(), ends.tolist())]
    k = np.abs(millionths).astype(np.int64)
    whole = k // 1_000_000
    frac = k - whole * 1_000_000
    groups = -(-max(1, len(str(int(whole.max())))) // 3)  # the integer part in groups of three digits
    digits = 3 * groups
    width = 1 + digits + 1 + 6  # sign, whole digits, point, six decimals
    # a row: "[" x ", " y "]" and ", " unless it ends its ring; table and keep: its x and y fields
    row_width = 2 * width + 6
    rows = np.empty((n, row_width), dtype=np.uint8)
    used = np.empty((n, row_width), dtype=bool)
    fields = dict(shape=(n, 2, width), strides=(row_width, width + 2, 1))
    table = np.lib.stride_tricks.as_strided(rows[:, 1:], **fields, writeable=True)
    keep = np.lib.stride_tricks.as_strided(used[:, 1:], **fields, writeable=True)
    table[..., 0] = ord("-")
    keep[..., 0] = np.signbit(coords)
    three, zeros = _three_digits()
    rest = whole
    for g in range(groups - 1, -1, -1):  # the last three digits first
        table[..., 1 + 3 * g:4 + 3 * g] = three[rest % 1000]
        rest = rest // 1000
    whole_digits = np.ones_like(whole)  # how many the integer part has (0 has one)
    for j in range(1, digits):
        whole_digits += whole >= 10 ** j
    keep[..., 1:1 + digits] = whole_digits[..., None] >= np.arange(digits, 0, -1)
    table[..., 1 + digits] = ord(".")
    keep[..., 1 + digits] = True
    high, low = frac // 1000, frac % 1000
    table[..., 2 + digits:5 + digits] = three[high]
    table[..., 5 + digits:8 + digits] = three[low]
    trailing = np.where(low == 0, 3 + zeros[high], zeros[low])
    decimals = np.maximum(6 - trailing, 1)  # 0 -> "0"
    keep[..., 2 + digits:8 + digits] = decimals[..., None] > np.arange(6)
    # repr's own form below 1e-4: 1e-05, -9.9e-05 (the meridian's few): written by repr
    for i, c in zip(*np.nonzero((k > 0) & (k < 100))):
        word = repr(float(coords[i, c])).encode("ascii")
        table[i, c, :len(word)] = np.frombuffer(word, dtype=np.uint8)
        keep[i, c] = np.arange(width) < len(word)
    rows[:, 0] = ord("[")
    rows[:, 1 + width:3 + width] = np.frombuffer(b", ", dtype=np.uint8)
    rows[:, 3 + 2 * width] = ord("]")
    rows[:, 4 + 2 * width:] = np.frombuffer(b", ", dtype=np.uint8)
    used[:, [0, 1 + width, 2 + width, 3 + 2 * width]] = True
    last = np.zeros(n, dtype=bool)
    last[ends[sizes > 0] - 1] = True
    used[:, 4 + 2 * width:] = ~last[:, None]
    text = rows[used].tobytes().decode("ascii")
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(used.sum(axis=1), out=offsets[1:])
    first, stop = offsets[starts].tolist(), offsets[ends].tolist()
    return ["[" + text[a:b] + "]" for a, b in zip(first, stop)]


@functools.lru_cache(maxsize=1)
def _three_digits() -> tuple[np.ndarray, np.ndarray]:
    """0..999 as three ASCII digits (``"007"``), and how many trailing zeros each has (three for 0)."""
    numbers = np.arange(1000)
    three = np.array([list(f"{i:03d}".encode("ascii")) for i in range(1000)], dtype=np.uint8)
    zeros = (numbers % 10 == 0).astype(np.int64) + (numbers % 100 == 0) + (numbers % 1000 == 0)
    return three, zeros


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
    if grid is None or len(cells) == 0 or "kde_top_pct" not in cells:
        return [], np.array([], dtype=object)
    top = _column(cells, "kde_top_pct")
    if pd.isna(top).all():
        return [], np.array([], dtype=object)
    import contourpy

    rows = _numbers(cells, "row", int)
    cols = _numbers(cells, "col", int)
    r0, c0 = rows.min(), cols.min()
    # one cell of padding so bands close inside the area
    arr = np.full((rows.max() - r0 + 3, cols.max() - c0 + 3), 100.0)
    if isinstance(top, np.ndarray) and top.dtype.kind == "f":
        arr[rows - r0 + 1, cols - c0 + 1] = np.where(np.isnan(top), 100.0, top)
    else:
        arr[rows - r0 + 1, cols - c0 + 1] = cells["kde_top_pct"].fillna(100.0).to_numpy(float)
    s = float(grid["cell_size"])
    if grid.get("shape", "square") == "square" and {"x0", "y0"} <= set(grid):
        xs = grid["x0"] + (np.arange(arr.shape[1]) + c0 - 1 + 0.5) * s
        ys = grid["y0"] + (np.arange(arr.shape[0]) + r0 - 1 + 0.5) * s
    else:  # hexagons (or unknown lattice): approximate on cell centres
        xc = _numbers(cells, "x_centre", float)
        yc = _numbers(cells, "y_centre", float)
        xs = np.linspace(xc.min() - s, xc.max() + s, arr.shape[1])
        ys = np.linspace(yc.min() - s, yc.max() + s, arr.shape[0])
    gen = contourpy.contour_generator(xs, ys, arr, fill_type=contourpy.FillType.OuterOffset)
    out_geoms, out_band = [], []
    for top_pct, _, _ in KDE_BANDS:
        polys = _contour_polygons(*gen.filled(-1.0, top_pct))
        if not len(polys):
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


def _contour_polygons(points: Sequence[np.ndarray], offsets: Sequence[np.ndarray]) -> np.ndarray:
    """contourpy's filled polygons (``OuterOffset``) as shapely polygons, all at once.

    Each polygon's rings of fewer than four points are dropped and the first
    ring left is its shell, the rest its holes, as
    ``Polygon(rings[0], rings[1:])`` of the rings kept gives it (a polygon
    left with none is dropped); the rings closed as ``LinearRing`` closes them.
    """
    if not len(points):
        return np.array([], dtype=object)
    coords = np.concatenate(points)
    ends = np.concatenate([offs[1:] + start for offs, start in
                           zip(offsets, np.cumsum([0] + [len(p) for p in points[:-1]]))])
    sizes = np.diff(np.r_[0, ends])
    polygon = np.repeat(np.arange(len(points)), [len(offs) - 1 for offs in offsets])
    kept = sizes >= 4
    if not kept.any():
        return np.array([], dtype=object)
    ring = np.repeat(np.arange(len(sizes)), sizes)
    rings = shapely.linearrings(coords[kept[ring]], indices=np.repeat(np.arange(kept.sum()), sizes[kept]))
    _, polygon_index = np.unique(polygon[kept], return_inverse=True)
    return shapely.polygons(rings, indices=polygon_index)
