"""Regular square and hexagonal grids over a study area, point assignment and weights.

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
* :func:`grid_weights` builds binary queen / rook / distance-band weights from
  the lattice row/column of each cell (not with libpysal).

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

import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import scipy.sparse as sp
import shapely

from hotspots._errors import CRSError, ValidationError

__all__ = ["choose_cell_size", "make_grid", "assign_to_cells", "grid_weights"]

#: Smallest sensible cell: police.uk coordinates are snapped to ~750,000
#: anonymised map points (street centres and places), so smaller cells mostly
#: split one snap point's crimes arbitrarily.
SNAPPING_FLOOR_M = 100.0

#: Refuse lattices larger than this (cells in the bounding box of the area).
MAX_LATTICE_CELLS = 25_000_000

GRID_COLUMNS = [
    "cell_id", "row", "col", "x_centre", "y_centre", "cell_area_km2", "full_cell_km2", "geometry",
]

_SQRT3 = math.sqrt(3.0)
# Cells whose overlap with the area is below this share of a full cell are
# floating-point slivers along a boundary that runs on a cell edge.
_SLIVER_SHARE = 1e-6
# Clipped cells within this relative tolerance of a full cell are stored whole.
_FULL_TOLERANCE = 1e-9


# --------------------------------------------------------------------------- #
# validation helpers (shared with detect.py)
# --------------------------------------------------------------------------- #
class _Problems:
    """Collect every argument problem, then raise once."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.hints: list[str] = []

    def add(self, message: str, hint: str) -> None:
        self.messages.append(message)
        self.hints.append(hint)

    def raise_if_any(self, error_class: type = ValidationError) -> None:
        if self.messages:
            raise error_class("; ".join(self.messages), hint="; ".join(self.hints))


def _as_float_array(values: Any, name: str, problems: _Problems) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        problems.add(f"{name} must be numeric, got {type(values).__name__}",
                     f"pass {name} as a 1-D array of numbers (metres, EPSG:27700)")
        return np.empty(0)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        problems.add(f"{name} must be 1-D, got shape {array.shape}", f"pass {name} as a flat array")
        return array.reshape(-1)
    return array


def _xy_arrays(x: Any, y: Any, problems: _Problems, names: tuple[str, str] = ("x", "y")):
    xa = _as_float_array(x, names[0], problems)
    ya = _as_float_array(y, names[1], problems)
    if xa.shape != ya.shape:
        problems.add(f"{names[0]} and {names[1]} differ in length ({xa.size} vs {ya.size})",
                     "pass one easting and one northing per point")
    return xa, ya


def _looks_like_lonlat(x: np.ndarray, y: np.ndarray) -> bool:
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.any():
        return False
    xf, yf = x[finite], y[finite]
    return bool((np.abs(xf) <= 180).all() and (np.abs(yf) <= 90).all())


def _check_xy_metres(x: np.ndarray, y: np.ndarray, study_bounds=None) -> None:
    """Raise CRSError when coordinates look like longitude/latitude degrees.

    With ``study_bounds`` (the study area's bounds in metres), only when the
    study area itself lies outside the range of degrees.
    """
    if study_bounds is not None:
        minx, miny, maxx, maxy = study_bounds
        if not (minx > 180 or maxx < -180 or miny > 90 or maxy < -90):
            return
    if x.size and _looks_like_lonlat(x, y):
        raise CRSError(
            "x/y look like longitude/latitude in degrees (all |x| <= 180 and |y| <= 90), "
            "but metres in British National Grid were expected",
            hint="project the points to EPSG:27700 first, e.g. gdf.to_crs(27700)",
        )


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


# --------------------------------------------------------------------------- #
# lattice arithmetic
# --------------------------------------------------------------------------- #
def _lattice_for_bounds(bounds, cell_size: float, shape: str, crs: Any) -> dict:
    minx, miny, maxx, maxy = bounds
    s = float(cell_size)
    if shape == "square":
        x0 = math.floor(minx / s) * s
        y0 = math.floor(miny / s) * s
        n_cols = max(1, math.ceil((maxx - x0) / s))
        n_rows = max(1, math.ceil((maxy - y0) / s))
        params = {"shape": "square", "cell_size": s, "x0": x0, "y0": y0,
                  "n_rows": int(n_rows), "n_cols": int(n_cols)}
    else:
        radius = s / _SQRT3
        h = 1.5 * radius
        # row 0 is always an even row of the infinite lattice, so hex grids of
        # one cell size line up whatever the area
        yc0 = math.floor(miny / (2 * h)) * 2 * h
        xc0 = math.floor(minx / s) * s
        x0, y0 = xc0 - s / 2, yc0 - radius
        n_rows = math.floor((maxy - yc0 + radius) / h) + 1
        n_cols = math.floor((maxx - xc0) / s + 0.5) + 2
        params = {"shape": "hex", "cell_size": s, "x0": x0, "y0": y0,
                  "n_rows": int(n_rows), "n_cols": int(n_cols), "row_spacing": h}
    params["crs"] = None if crs is None else pyproj.CRS.from_user_input(crs).to_string()
    return params


def _centres(rows: np.ndarray, cols: np.ndarray, params: dict):
    s, x0, y0 = params["cell_size"], params["x0"], params["y0"]
    if params["shape"] == "square":
        return x0 + (cols + 0.5) * s, y0 + (rows + 0.5) * s
    # in units of s/2 and R/2 so that vertices shared by neighbours are bit-identical
    half_s, half_r = s / 2, s / _SQRT3 / 2
    return x0 + half_s * (1 + 2 * cols + (rows & 1)), y0 + half_r * (2 + 3 * rows)


def _cell_polygons(rows: np.ndarray, cols: np.ndarray, params: dict) -> np.ndarray:
    s = params["cell_size"]
    if params["shape"] == "square":
        x0, y0 = params["x0"], params["y0"]
        return shapely.box(x0 + cols * s, y0 + rows * s, x0 + (cols + 1) * s, y0 + (rows + 1) * s)
    # vertices on the lattice of half-widths (s/2) and half-radii (R/2): exact
    # integer multiples, so neighbouring hexagons share bit-identical vertices
    x0, y0 = params["x0"], params["y0"]
    half_s, half_r = s / 2, s / _SQRT3 / 2
    kx = (1 + 2 * cols + (rows & 1))[:, None] + np.array([1, 0, -1, -1, 0, 1, 1])
    ky = (2 + 3 * rows)[:, None] + np.array([1, 2, 1, -1, -2, -1, 1])
    ring = np.stack([x0 + half_s * kx, y0 + half_r * ky], axis=-1)
    return shapely.polygons(ring)


def _full_cell_area_m2(params: dict) -> float:
    s = params["cell_size"]
    return s * s if params["shape"] == "square" else _SQRT3 / 2 * s * s


def _lattice_rowcol(x: np.ndarray, y: np.ndarray, params: dict):
    """Lattice (row, col) of each point; may be out of range; garbage where x/y not finite.

    Squares use half-open cells ``[x0, x1) x [y0, y1)``, so a point on a shared
    edge goes to the cell east / north of it.  Hexagons use the nearest centre
    (which is the containing hexagon); on an exact tie the cell whose centre is
    further east wins, then further north.
    """
    s, x0, y0 = params["cell_size"], params["x0"], params["y0"]
    with np.errstate(invalid="ignore"):
        if params["shape"] == "square":
            col = np.floor((x - x0) / s).astype(np.int64)
            row = np.floor((y - y0) / s).astype(np.int64)
            return row, col
        radius = s / _SQRT3
        h = 1.5 * radius
        r_low = np.floor((y - y0 - radius) / h).astype(np.int64)
        best_row = best_col = best_d2 = best_cx = best_cy = None
        for r in (r_low, r_low + 1):
            odd = (r & 1).astype(np.float64)
            # floor(v + 0.5): a point midway between two centres of a row goes east
            c = np.floor((x - x0 - s / 2) / s - 0.5 * odd + 0.5).astype(np.int64)
            cx, cy = _centres(r, c, params)
            d2 = (x - cx) ** 2 + (y - cy) ** 2
            if best_row is None:
                best_row, best_col, best_d2, best_cx, best_cy = r, c, d2, cx, cy
                continue
            better = (d2 < best_d2) | (
                (d2 == best_d2) & ((cx > best_cx) | ((cx == best_cx) & (cy > best_cy)))
            )
            best_row = np.where(better, r, best_row)
            best_col = np.where(better, c, best_col)
        return best_row, best_col


def _neighbour_offsets(params: dict, neighbourhood: str, distance: float | None):
    """Lattice offsets of the neighbours of a cell.

    Squares: list of (drow, dcol).  Hexagons: list of axial (dq, dr).
    """
    s = params["cell_size"]
    if params["shape"] == "square":
        if neighbourhood == "rook":
            return [(-1, 0), (1, 0), (0, -1), (0, 1)]
        if neighbourhood == "queen":
            return [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]
        reach = int(math.floor(distance / s)) + 1
        limit = distance * (1 + 1e-9)
        return [(dr, dc) for dr in range(-reach, reach + 1) for dc in range(-reach, reach + 1)
                if (dr, dc) != (0, 0) and s * math.hypot(dr, dc) <= limit]
    if neighbourhood in ("queen", "rook"):
        # hexagons share an edge with each of their six neighbours
        return [(1, 0), (-1, 0), (0, 1), (0, -1), (1, -1), (-1, 1)]
    h = s * _SQRT3 / 2
    reach = int(math.floor(distance / h)) + 2
    limit = distance * (1 + 1e-9)
    return [(dq, dr) for dr in range(-reach, reach + 1) for dq in range(-2 * reach, 2 * reach + 1)
            if (dq, dr) != (0, 0) and math.hypot(s * (dq + dr / 2), h * dr) <= limit]


def _grid_params(grid: Any, name: str = "grid") -> dict:
    """Lattice parameters of a grid from make_grid (attrs, or inferred from its columns)."""
    if not isinstance(grid, gpd.GeoDataFrame):
        raise ValidationError(f"{name} must be a GeoDataFrame from make_grid, got {type(grid).__name__}",
                              hint="build it with hotspots.grid.make_grid(area, cell_size)")
    missing = [c for c in ("cell_id", "row", "col", "x_centre", "y_centre") if c not in grid.columns]
    if missing:
        raise ValidationError(f"{name} lacks the columns {missing}",
                              hint="build it with hotspots.grid.make_grid(area, cell_size)")
    params = grid.attrs.get("grid")
    if isinstance(params, dict) and {"shape", "cell_size", "x0", "y0"} <= set(params):
        return dict(params)
    # attrs are lost when a grid is saved to a file: recover them from the columns
    if len(grid) == 0:
        raise ValidationError(f"{name} has no cells and no attrs['grid']",
                              hint="build it with hotspots.grid.make_grid(area, cell_size)")
    first = str(grid["cell_id"].iloc[0])
    prefix = first.split("_", 1)[0]
    shape = {"sq": "square", "hx": "hex"}.get(prefix[:2])
    try:
        s = float(prefix[2:])
    except ValueError:
        shape = None
    if shape is None:
        raise ValidationError(f"{name} has no attrs['grid'] and cell_id {first!r} is not a make_grid id",
                              hint="build it with hotspots.grid.make_grid(area, cell_size)")
    row = grid["row"].to_numpy(np.int64)
    col = grid["col"].to_numpy(np.int64)
    xc = grid["x_centre"].to_numpy(np.float64)
    yc = grid["y_centre"].to_numpy(np.float64)
    if shape == "square":
        x0 = float(np.median(xc - (col + 0.5) * s))
        y0 = float(np.median(yc - (row + 0.5) * s))
    else:
        radius = s / _SQRT3
        x0 = float(np.median(xc - s / 2 - s * (col + 0.5 * (row & 1))))
        y0 = float(np.median(yc - radius - row * 1.5 * radius))
    params = {"shape": shape, "cell_size": s, "x0": x0, "y0": y0,
              "n_rows": int(row.max()) + 1, "n_cols": int(col.max()) + 1,
              "crs": None if grid.crs is None else grid.crs.to_string()}
    if shape == "hex":
        params["row_spacing"] = s * _SQRT3 / 2
    return params


def _lookup_table(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int) -> np.ndarray:
    """Flat lattice index -> grid row position (-1 where the lattice cell is not in the grid)."""
    lookup = np.full(n_rows * n_cols, -1, dtype=np.int64)
    lookup[rows * n_cols + cols] = np.arange(len(rows), dtype=np.int64)
    return lookup


# --------------------------------------------------------------------------- #
# public API
# --------------------------------------------------------------------------- #
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
    problems = _Problems()
    if not isinstance(floor, (int, float)) or not math.isfinite(floor) or floor <= 0:
        problems.add(f"floor must be a positive number of metres, got {floor!r}",
                     "use the default floor=100 (police.uk snapping)")
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
        xy = np.asarray(points_xy, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValidationError(f"points_xy must have shape (n, 2), got {xy.shape}",
                                  hint="pass np.column_stack([x, y])")
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
    problems = _Problems()
    if isinstance(cell_size, bool) or not isinstance(cell_size, (int, float, np.integer, np.floating)) \
            or not math.isfinite(cell_size) or cell_size <= 0:
        problems.add(f"cell_size must be a positive number of metres, got {cell_size!r}",
                     "use e.g. cell_size=250, or choose_cell_size(area) to choose one")
    if shape not in ("square", "hex"):
        problems.add(f"shape must be 'square' or 'hex', got {shape!r}", "use shape='square' or shape='hex'")
    problems.raise_if_any()
    geometry, crs = _resolve_area(area, crs)
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

    def recurse(piece, idx):
        if len(idx) <= 64 or shapely.get_num_coordinates(piece) <= 256:
            out[idx] = shapely.intersection(polys[idx], piece)
            return
        xs, ys = cx[idx], cy[idx]
        midx, midy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
        east, north = xs >= midx, ys >= midy
        for quadrant in ((~east & ~north), (east & ~north), (~east & north), (east & north)):
            sel = idx[quadrant]
            if len(sel) == 0:
                continue
            if len(sel) == len(idx):  # cannot split further
                out[sel] = shapely.intersection(polys[sel], piece)
                return
            window = shapely.box(cx[sel].min() - margin, cy[sel].min() - margin,
                                 cx[sel].max() + margin, cy[sel].max() + margin)
            sub = shapely.intersection(piece, window)
            if sub.is_empty:
                out[sel] = shapely.Polygon()
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
    problems = _Problems()
    xa, ya = _xy_arrays(x, y, problems)
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


def grid_weights(grid: gpd.GeoDataFrame, *, neighbourhood: str = "queen", distance: float | None = None,
                 include_self: bool = True) -> sp.csr_matrix:
    """Binary spatial weights between grid cells, aligned with the grid's rows.

    Built arithmetically from each cell's lattice (row, col), so 2.4 million
    cells take seconds; cells missing from the grid (outside the study area)
    are simply not neighbours, and a cell without neighbours keeps only its
    own diagonal entry (or an empty row when ``include_self=False``).

    Parameters
    ----------
    grid : GeoDataFrame
        From :func:`make_grid` (any row order or subset).
    neighbourhood : {"queen", "rook", "distance"}
        ``queen``: cells sharing an edge or a corner (8 for squares, 6 for
        hexagons) -- the same as a distance band of ``cell_size * sqrt(2)``
        between square centres; ``rook``: cells sharing an edge (4 for squares;
        for hexagons identical to queen); ``distance``: cells whose centres are
        at most ``distance`` metres apart.
    distance : float, optional
        Band in metres; required with ``neighbourhood="distance"`` only.
    include_self : bool, default True
        Put 1 on the diagonal (Getis-Ord Gi* includes the cell itself).

    Returns
    -------
    scipy.sparse.csr_matrix
        ``n x n`` float64 matrix of 0/1 with sorted indices.

    Examples
    --------
    >>> from shapely import box
    >>> grid = make_grid(box(0, 0, 300, 300), 100, crs="EPSG:27700")
    >>> w = grid_weights(grid)
    >>> int(w[4].sum()), int(w[0].sum())   # centre cell: 8 + itself; corner: 3 + itself
    (9, 4)
    >>> int(grid_weights(grid, neighbourhood="rook", include_self=False)[4].sum())
    4
    """
    problems = _Problems()
    if neighbourhood not in ("queen", "rook", "distance"):
        problems.add(f"neighbourhood must be 'queen', 'rook' or 'distance', got {neighbourhood!r}",
                     "use neighbourhood='queen' (the default)")
    if neighbourhood == "distance":
        if distance is None or isinstance(distance, bool) or not isinstance(distance, (int, float, np.number)) \
                or not math.isfinite(distance) or distance < 0:
            problems.add(f"distance must be a non-negative number of metres with neighbourhood='distance', "
                         f"got {distance!r}", "e.g. grid_weights(grid, neighbourhood='distance', distance=300)")
    elif distance is not None:
        problems.add(f"distance={distance!r} was given with neighbourhood={neighbourhood!r}",
                     "pass neighbourhood='distance' to use a distance band, or drop distance")
    problems.raise_if_any()
    params = _grid_params(grid)
    n = len(grid)
    index_dtype = np.int32 if n < 2**31 - 1 else np.int64
    if n == 0:
        return sp.csr_matrix((0, 0), dtype=np.float64)
    rows = grid["row"].to_numpy(np.int64)
    cols = grid["col"].to_numpy(np.int64)
    n_rows, n_cols = int(rows.max()) + 1, int(cols.max()) + 1
    lookup = _lookup_table(rows, cols, n_rows, n_cols)
    offsets = _neighbour_offsets(params, neighbourhood, None if distance is None else float(distance))

    columns = [np.arange(n, dtype=np.int64)] if include_self else []
    if params["shape"] == "hex":
        q = cols - (rows - (rows & 1)) // 2
    for a, b in offsets:
        if params["shape"] == "square":
            r, c = rows + a, cols + b
        else:
            r = rows + b
            c = q + a + (r - (r & 1)) // 2
        ok = (r >= 0) & (r < n_rows) & (c >= 0) & (c < n_cols)
        neighbour = lookup[np.where(ok, r * n_cols + c, 0)]
        neighbour[~ok] = -1
        columns.append(neighbour)
    if not columns:
        return sp.csr_matrix((n, n), dtype=np.float64)
    matrix = np.stack(columns, axis=1)
    present = matrix >= 0
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(present.sum(axis=1), out=indptr[1:])
    indices = matrix[present].astype(index_dtype)
    if indptr[-1] < 2**31 - 1:
        indptr = indptr.astype(index_dtype)
    weights = sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(n, n))
    weights.sort_indices()
    return weights
