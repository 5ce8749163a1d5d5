"""Regular square and hexagonal grids over a study area, and point assignment to their cells.

The grid is always clipped to the study area (force, district, town centre) and
never laid over the convex hull or bounding box of the points: cells outside
the study area are *no data*, not zeros (sfhotspot's convex-hull grid turns
fields and reservoirs into "cold spots").

Everything here is arithmetic on a lattice, so it scales to millions of cells
and points:

* :func:`choose_cell_size` picks a cell size and says why;
* :func:`make_grid` builds the clipped grid (only cells whose interior meets
  the area are kept; only cells crossed by the boundary are clipped);
* :func:`assign_to_cells` maps points to grid rows by arithmetic on the
  lattice origin (not a spatial join);
* :func:`~hotspots.geo.weights.grid_weights` (in :mod:`hotspots.geo.weights`)
  builds binary queen / rook / distance-band weights from the lattice
  row/column of each cell (not with libpysal).

The lattice arithmetic itself lives in the private :mod:`hotspots.geo._lattice`.

Lattice conventions
-------------------
``attrs["grid"]`` of a grid made by :func:`make_grid` holds ``shape``,
``cell_size``, ``x0``, ``y0``, ``n_rows``, ``n_cols`` and ``crs``.  ``(x0, y0)``
is the lower-left corner of the bounding box of lattice cell (row 0, col 0);
rows count northwards, columns eastwards.  The origin is aligned to a multiple
of the cell size (squares) or of two row spacings (hexagons), so grids of the
same cell size over different areas share cell edges.

Squares of side ``s``: cell (r, c) is ``[x0 + c s, x0 + (c+1) s) x
[y0 + r s, y0 + (r+1) s)``.

Hexagons are pointy-topped, ``s`` is the distance between the centres of
neighbouring hexagons (equivalently, the flat-to-flat width, as in
``sf::st_make_grid`` used by sfhotspot), circumradius ``R = s/sqrt(3)``, row
spacing ``h = 1.5 R``, area ``sqrt(3)/2 s**2``; odd rows are shifted east by
``s/2``.  The centre of cell (r, c) is ``(x0 + s/2 + s (c + (r mod 2)/2),
y0 + R + r h)``.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from hotspots._errors import ValidationError
from hotspots._validate import _check_xy, _check_xy_metres, _Problems
from hotspots.geo._lattice import (
    _cell_polygons,
    _centres,
    _full_cell_area_m2,
    _grid_params,
    _lattice_for_bounds,
    _lattice_rowcol,
    _lookup_table,
    _neighbour_offsets,
)
from hotspots.geo._study_area import _polygonal_parts, _resolve_area

__all__ = ["choose_cell_size", "make_grid", "assign_to_cells"]


#: Smallest sensible cell: police.uk coordinates are snapped to ~750,000
#: anonymised map points (street centres and places), so smaller cells mostly
#: split one snap point's crimes arbitrarily.
SNAPPING_FLOOR_M = 100.0

#: Refuse lattices larger than this (cells in the bounding box of the area).
MAX_LATTICE_CELLS = 25_000_000

GRID_COLUMNS = [
    "cell_id", "row", "col", "x_centre", "y_centre", "cell_area_km2", "full_cell_km2", "geometry",
]

#: Grids already built in this process, keyed on (SHA-256 of the dissolved area's WKB, cell size, shape, CRS):
#: the hotspots stage and the evaluation lay the same district grids, and forked processes inherit what was
#: built before the fork.  Holds at most :data:`_MEMO_SIZE` grids (least recently used dropped first);
#: :func:`make_grid` returns a copy of the kept grid (with its own ``attrs``), so callers may change it.
_MEMO: OrderedDict[tuple, gpd.GeoDataFrame] = OrderedDict()
_MEMO_SIZE = 32

# Cells whose overlap with the area is below this share of a full cell are
# floating-point slivers along a boundary that runs on a cell edge.
_SLIVER_SHARE = 1e-6
# Clipped cells within this relative tolerance of a full cell are stored whole.
_FULL_TOLERANCE = 1e-9


def choose_cell_size(area_geometry: Any, *, points_xy: Any = None,
                     floor: float = SNAPPING_FLOOR_M) -> tuple[float, str]:
    """Choose a grid cell size for a study area and say why.

    sfhotspot's rule (Ashby 2023): the shorter side of the bounding box of the
    study area divided by 50, rounded to a "nice" step -- 50 m below 250 m,
    100 m from there up -- and never below ``floor``: police.uk coordinates are
    snapped to about 750,000 anonymised map points, so cells smaller than
    ~100 m mostly split one snap point's crimes arbitrarily.

    Parameters
    ----------
    area_geometry : shapely geometry, GeoDataFrame or GeoSeries
        Study area in a projected CRS in metres (EPSG:27700).  A shapely
        geometry is taken to be in metres.
    points_xy : array of shape (n, 2), optional
        Crime coordinates (metres).  Used only to add, for reference, the
        median distance between neighbouring unique locations (the basis of
        ArcGIS's rule) to the reason; it never changes the choice.
    floor : float, default 100
        Smallest cell size allowed, in metres.

    Returns
    -------
    cell_size_m : float
    reason : str
        One sentence for logs, the CLI and the run manifest.

    Examples
    --------
    >>> from shapely import box
    >>> size, reason = choose_cell_size(box(0, 0, 30_100, 20_100))
    >>> size
    400.0
    >>> reason
    "cell size 400 m chosen automatically: shorter side of the study area's bounding box (20.1 km) / 50 = 402 m, rounded to 100 m"
    >>> choose_cell_size(box(0, 0, 3_000, 3_000))[0]
    100.0
    """
    problems = _Problems("choose_cell_size")
    if not isinstance(floor, (int, float)) or not math.isfinite(floor) or floor <= 0:
        problems.add(f"floor must be a positive number of metres, got {floor!r}",
                     "Use the default floor=100 (police.uk snapping).")
    if points_xy is not None:
        xy = np.asarray(points_xy, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2:
            problems.add(f"points_xy must have shape (n, 2), got {xy.shape}", "Pass np.column_stack([x, y]).")
    problems.raise_if_any()
    geometry, _ = _resolve_area(area_geometry, None, name="area_geometry", require_crs=False)
    minx, miny, maxx, maxy = geometry.bounds
    shorter = min(maxx - minx, maxy - miny)
    raw = shorter / 50.0
    step = 50.0 if raw < 250.0 else 100.0
    rounded = max(step, math.floor(raw / step + 0.5) * step)
    basis = (f"shorter side of the study area's bounding box ({shorter / 1000:.1f} km) / 50 = "
             f"{raw:,.0f} m, rounded to {step:.0f} m")
    if rounded < floor:
        size = float(floor)
        reason = (f"cell size {size:,.0f} m chosen automatically: {basis} gives {rounded:,.0f} m, "
                  f"raised to the {floor:,.0f} m floor because police.uk locations are snapped to "
                  f"~750,000 anonymised map points, so smaller cells mean nothing")
    else:
        size = float(rounded)
        reason = f"cell size {size:,.0f} m chosen automatically: {basis}"
    if points_xy is not None:
        xy = xy[np.isfinite(xy).all(axis=1)]
        unique = np.unique(xy, axis=0)
        if len(unique) >= 2:
            from scipy.spatial import cKDTree

            distances, _ = cKDTree(unique).query(unique, k=2)
            reason += (f" (for reference: the median distance between neighbouring unique crime "
                       f"locations is {np.median(distances[:, 1]):,.0f} m over {len(unique):,} locations)")
    return size, reason


def make_grid(area: Any, cell_size: float, *, shape: str = "square", crs: Any = None) -> gpd.GeoDataFrame:
    """Square or hexagonal grid clipped to a study area.

    Only cells whose interior meets the area are returned (cells that merely
    touch its boundary, and all cells outside it, are not: they are no data,
    not zeros).  Cells crossed by the boundary are clipped to it; interior cells
    are stored whole without any overlay.  Cost is linear in the number of
    cells plus ``O(V log V)`` in the boundary's vertex count ``V``.

    Parameters
    ----------
    area : shapely geometry, GeoDataFrame or GeoSeries
        Study area (all rows are dissolved), projected in metres.
    cell_size : float
        Square side, or distance between neighbouring hexagon centres (the
        flat-to-flat width), in metres.
    shape : {"square", "hex"}
    crs : optional
        CRS of a bare shapely ``area``; must agree with a GeoDataFrame's CRS.

    Returns
    -------
    GeoDataFrame
        Columns ``cell_id`` (e.g. ``"sq400_r012_c034"``, ``"hx400_..."``),
        ``row``, ``col`` (lattice position, row 0 in the south),
        ``x_centre``, ``y_centre`` (centre of the full cell),
        ``cell_area_km2`` (clipped), ``full_cell_km2`` and ``geometry``
        (clipped), sorted by row then column.  ``attrs["grid"]`` holds the
        lattice parameters (see the module docstring).

    Raises
    ------
    CRSError
        The area has no CRS, a geographic CRS (degrees) or non-metre units.
    ValidationError
        Bad ``cell_size`` or ``shape``; an empty, non-polygonal or invalid
        area; a lattice of more than 25 million cells.

    Examples
    --------
    >>> from shapely import box
    >>> grid = make_grid(box(0, 0, 1000, 1000), 100, crs="EPSG:27700")
    >>> len(grid), grid["cell_id"].iloc[0], round(float(grid["cell_area_km2"].sum()), 9)
    (100, 'sq100_r000_c000', 1.0)
    >>> grid.attrs["grid"]["x0"], grid.attrs["grid"]["n_cols"]
    (0.0, 10)
    """
    problems = _Problems("make_grid")
    if isinstance(cell_size, bool) or not isinstance(cell_size, (int, float, np.integer, np.floating)) \
            or not math.isfinite(cell_size) or cell_size <= 0:
        problems.add(f"cell_size must be a positive number of metres, got {cell_size!r}",
                     "Use e.g. cell_size=250, or choose_cell_size(area) to choose one.")
    if shape not in ("square", "hex"):
        problems.add(f"shape must be 'square' or 'hex', got {shape!r}", "Use shape='square' or shape='hex'.")
    problems.raise_if_any()
    geometry, crs = _resolve_area(area, crs)
    key = (hashlib.sha256(shapely.to_wkb(geometry)).digest(), float(cell_size), shape, crs.to_wkt())
    grid = _MEMO.get(key)
    if grid is None:
        grid = _build_grid(geometry, cell_size, shape, crs)
        _MEMO[key] = grid
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    else:
        _MEMO.move_to_end(key)
    out = grid.copy()
    out.attrs = {"grid": dict(grid.attrs["grid"])}
    return out


def _build_grid(geometry, cell_size, shape: str, crs) -> gpd.GeoDataFrame:
    """The work of :func:`make_grid` on a checked polygonal area and projected CRS."""
    params = _lattice_for_bounds(geometry.bounds, float(cell_size), shape, crs)
    n_rows, n_cols = params["n_rows"], params["n_cols"]
    n_lattice = n_rows * n_cols
    if n_lattice > MAX_LATTICE_CELLS:
        raise ValidationError(
            f"cell_size={cell_size!r} m over this area needs a {n_rows:,} x {n_cols:,} lattice "
            f"({n_lattice:,} cells, limit {MAX_LATTICE_CELLS:,})",
            hint="use a larger cell size (choose_cell_size(area) suggests one) or a smaller study area",
        )

    # Cells crossed by the boundary: with boundary vertices at most s/2 apart,
    # any cell the boundary crosses is the cell of a vertex or one of its
    # neighbours (a point on a segment is within s/4 of a vertex).
    boundary = shapely.segmentize(geometry.boundary, max_segment_length=params["cell_size"] / 2)
    vertices = shapely.get_coordinates(boundary)
    v_row, v_col = _lattice_rowcol(vertices[:, 0], vertices[:, 1], params)
    touched = []
    if shape == "square":
        offsets = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]
        for dr, dc in offsets:
            touched.append((v_row + dr, v_col + dc))
    else:
        q = v_col - (v_row - (v_row & 1)) // 2
        for dq, dr in [(0, 0)] + _neighbour_offsets(params, "queen", None):
            r = v_row + dr
            touched.append((r, q + dq + (r - (r & 1)) // 2))
    t_row = np.concatenate([t[0] for t in touched])
    t_col = np.concatenate([t[1] for t in touched])
    ok = (t_row >= 0) & (t_row < n_rows) & (t_col >= 0) & (t_col < n_cols)
    boundary_flat = np.unique(t_row[ok] * n_cols + t_col[ok])

    # Every other cell is wholly inside or wholly outside: test its centre.
    is_boundary = np.zeros(n_lattice, dtype=bool)
    is_boundary[boundary_flat] = True
    other_flat = np.flatnonzero(~is_boundary)
    o_row, o_col = np.divmod(other_flat, n_cols)
    o_cx, o_cy = _centres(o_row, o_col, params)
    shapely.prepare(geometry)
    inside = shapely.contains_xy(geometry, o_cx, o_cy)
    interior_flat = other_flat[inside]

    b_row, b_col = np.divmod(boundary_flat, n_cols)
    clipped = _clip_cells(geometry, b_row, b_col, params)
    full_m2 = _full_cell_area_m2(params)
    clipped_m2 = shapely.area(clipped)
    keep = clipped_m2 > full_m2 * _SLIVER_SHARE
    whole = keep & (clipped_m2 >= full_m2 * (1 - _FULL_TOLERANCE))

    flat = np.concatenate([interior_flat, boundary_flat[keep]])
    order = np.argsort(flat, kind="stable")
    flat = flat[order]
    rows, cols = np.divmod(flat, n_cols)
    geoms = np.empty(len(flat), dtype=object)
    area_m2 = np.empty(len(flat))
    n_interior = len(interior_flat)
    is_clipped_sorted = np.concatenate([np.zeros(n_interior, bool), ~whole[keep]])[order]
    full_polys = _cell_polygons(rows[~is_clipped_sorted], cols[~is_clipped_sorted], params)
    geoms[~is_clipped_sorted] = full_polys
    area_m2[~is_clipped_sorted] = full_m2
    source = np.concatenate([np.full(n_interior, -1), np.flatnonzero(keep)])[order]
    geoms[is_clipped_sorted] = clipped[source[is_clipped_sorted]]
    area_m2[is_clipped_sorted] = clipped_m2[source[is_clipped_sorted]]

    x_centre, y_centre = _centres(rows, cols, params)
    prefix = ("sq" if shape == "square" else "hx") + f"{params['cell_size']:g}"
    width = max(3, len(str(max(n_rows, n_cols) - 1)))
    cell_id = (prefix + "_r" + pd.Series(rows).astype(str).str.zfill(width)
               + "_c" + pd.Series(cols).astype(str).str.zfill(width)).to_numpy()
    grid = gpd.GeoDataFrame(
        {
            "cell_id": cell_id,
            "row": rows.astype(np.int64),
            "col": cols.astype(np.int64),
            "x_centre": x_centre,
            "y_centre": y_centre,
            "cell_area_km2": area_m2 / 1e6,
            "full_cell_km2": np.full(len(flat), full_m2 / 1e6),
        },
        geometry=gpd.GeoSeries(geoms, crs=crs),
        crs=crs,
    )
    grid.attrs["grid"] = params
    return grid


def _clip_cells(geometry, rows: np.ndarray, cols: np.ndarray, params: dict) -> np.ndarray:
    """Intersect cells with the area, splitting the area quadtree-wise first.

    A direct ``intersection(cell, area)`` costs O(V) per cell for a boundary of V
    vertices (1.5 ms for a 20,000-vertex county), so the area is first cut into
    local pieces around groups of cells; each piece is cut with a margin of one
    cell so every cell of the group lies inside the piece's window.
    """
    polys = _cell_polygons(rows, cols, params)
    out = np.empty(len(rows), dtype=object)
    if len(rows) == 0:
        return out
    cx, cy = _centres(rows, cols, params)
    margin = params["cell_size"]
    # most candidate cells (the neighbours of the boundary's vertices) are not crossed by the boundary: a cell
    # the area covers is its own intersection with it (the caller stores it whole), one the area does not meet
    # has none; only the others are intersected, with the same pieces of the area as if all were
    shapely.prepare(geometry)
    covered = shapely.covers(geometry, polys)
    apart = ~shapely.intersects(geometry, polys)
    out[covered] = polys[covered]
    out[apart] = shapely.Polygon()
    crossed = ~(covered | apart)

    def intersect(idx, piece):
        idx = idx[crossed[idx]]
        if len(idx):
            out[idx] = shapely.intersection(polys[idx], piece)

    def recurse(piece, idx):
        if len(idx) <= 64 or shapely.get_num_coordinates(piece) <= 256:
            intersect(idx, piece)
            return
        xs, ys = cx[idx], cy[idx]
        midx, midy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
        east, north = xs >= midx, ys >= midy
        for quadrant in ((~east & ~north), (east & ~north), (~east & north), (east & north)):
            sel = idx[quadrant]
            if len(sel) == 0:
                continue
            if len(sel) == len(idx):  # cannot split further
                intersect(sel, piece)
                return
            if not crossed[sel].any():  # nothing to intersect in this quadrant
                continue
            window = shapely.box(cx[sel].min() - margin, cy[sel].min() - margin,
                                 cx[sel].max() + margin, cy[sel].max() + margin)
            sub = shapely.intersection(piece, window)
            if sub.is_empty:
                out[sel[crossed[sel]]] = shapely.Polygon()
            else:
                recurse(sub, sel)

    recurse(geometry, np.arange(len(rows)))
    return _polygonal_parts(out)


def assign_to_cells(x: Any, y: Any, grid: gpd.GeoDataFrame) -> np.ndarray:
    """Grid row position of each point, or -1 for points outside every cell.

    Computed arithmetically from the lattice origin and cell size (squares) or
    the nearest hexagon centre (hexagons), then a lookup from lattice
    (row, col) to the grid's rows -- never a spatial join.  Points that fall in
    a cell clipped by the study-area boundary are tested against the clipped
    polygon, so points outside the area get -1 even there.

    Boundary rule: cells are half-open, ``[x0, x1) x [y0, y1)``: a point exactly
    on an edge shared by two cells goes to the cell on its east side (vertical
    edge) or north side (horizontal edge); a point on a shared corner goes to
    the north-east cell.  For hexagons, whose edges are never horizontal, a point
    exactly on a shared edge goes to the cell whose centre lies further east.
    Points exactly on the *study-area* boundary are kept when the cell the rule
    picks is part of the grid.  Non-finite coordinates give -1.

    Parameters
    ----------
    x, y : array-like of float
        Eastings and northings in the grid's CRS (metres).
    grid : GeoDataFrame
        From :func:`make_grid` (any row order or subset).

    Returns
    -------
    numpy.ndarray of int64
        Positional index into ``grid`` (use ``grid.iloc``), -1 outside.

    Examples
    --------
    >>> from shapely import box
    >>> grid = make_grid(box(0, 0, 200, 100), 100, crs="EPSG:27700")
    >>> assign_to_cells([50, 100, 100, 250], [50, 50, 0, 50], grid)
    array([ 0,  1,  1, -1])
    """
    problems = _Problems("assign_to_cells")
    xa, ya = _check_xy(problems, x, y)
    problems.raise_if_any()
    params = _grid_params(grid)
    rows = grid["row"].to_numpy(np.int64)
    cols = grid["col"].to_numpy(np.int64)
    n_rows = max(params.get("n_rows", 0), int(rows.max()) + 1 if len(rows) else 0)
    n_cols = max(params.get("n_cols", 0), int(cols.max()) + 1 if len(cols) else 0)
    if len(grid) == 0 or xa.size == 0:
        return np.full(xa.size, -1, dtype=np.int64)
    lookup = _lookup_table(rows, cols, n_rows, n_cols)
    p_row, p_col = _lattice_rowcol(xa, ya, params)
    valid = (p_row >= 0) & (p_row < n_rows) & (p_col >= 0) & (p_col < n_cols)
    valid &= np.isfinite(xa) & np.isfinite(ya)
    index = np.take(lookup, p_row * n_cols + p_col, mode="clip")
    index[~valid] = -1

    area = grid["cell_area_km2"].to_numpy(np.float64) if "cell_area_km2" in grid else None
    full = grid["full_cell_km2"].to_numpy(np.float64) if "full_cell_km2" in grid else None
    if area is not None and full is not None:
        partial_cell = area < full * (1 - _FULL_TOLERANCE)
        if partial_cell.any():
            hit = index >= 0
            in_partial = np.flatnonzero(hit)[partial_cell[index[hit]]]
            if len(in_partial):
                geoms = np.asarray(grid.geometry.values)[index[in_partial]]
                inside = shapely.intersects_xy(geoms, xa[in_partial], ya[in_partial])
                index[in_partial[~inside]] = -1
    if not (index >= 0).any():
        _check_xy_metres(xa, ya, grid.total_bounds)
    return index
