"""Lattice arithmetic of square and hexagonal grids (private to :mod:`hotspots.geo`).

Cell centres, cell polygons, the lattice (row, col) of a point, neighbour
offsets and the lattice parameters of a grid.  The conventions (origin, row
and column directions, hexagon geometry) are described in :mod:`hotspots.geo.grid`.
"""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from hotspots._errors import ValidationError

_SQRT3 = math.sqrt(3.0)


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
                              hint="build it with hotspots.geo.make_grid(area, cell_size)")
    missing = [c for c in ("cell_id", "row", "col", "x_centre", "y_centre") if c not in grid.columns]
    if missing:
        raise ValidationError(f"{name} lacks the columns {missing}",
                              hint="build it with hotspots.geo.make_grid(area, cell_size)")
    params = grid.attrs.get("grid")
    if isinstance(params, dict) and {"shape", "cell_size", "x0", "y0"} <= set(params):
        return dict(params)
    # attrs are lost when a grid is saved to a file: recover them from the columns
    if len(grid) == 0:
        raise ValidationError(f"{name} has no cells and no attrs['grid']",
                              hint="build it with hotspots.geo.make_grid(area, cell_size)")
    first = str(grid["cell_id"].iloc[0])
    prefix = first.split("_", 1)[0]
    shape = {"sq": "square", "hx": "hex"}.get(prefix[:2])
    try:
        s = float(prefix[2:])
    except ValueError:
        shape = None
    if shape is None:
        raise ValidationError(f"{name} has no attrs['grid'] and cell_id {first!r} is not a make_grid id",
                              hint="build it with hotspots.geo.make_grid(area, cell_size)")
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
