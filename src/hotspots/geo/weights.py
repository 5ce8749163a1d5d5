"""Binary spatial weights between grid cells, from their lattice row and column.

Queen, rook and distance-band neighbours of the cells of a grid made by
:func:`hotspots.geo.make_grid`, built arithmetically (not with libpysal), so
millions of cells take seconds.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import scipy.sparse as sp

from hotspots._validate import _Problems
from hotspots.geo._lattice import _grid_params, _lookup_table, _neighbour_offsets

__all__ = ["grid_weights"]


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
    >>> from hotspots.geo import make_grid
    >>> grid = make_grid(box(0, 0, 300, 300), 100, crs="EPSG:27700")
    >>> w = grid_weights(grid)
    >>> int(w[4].sum()), int(w[0].sum())   # centre cell: 8 + itself; corner: 3 + itself
    (9, 4)
    >>> int(grid_weights(grid, neighbourhood="rook", include_self=False)[4].sum())
    4
    """
    problems = _Problems("grid_weights")
    if neighbourhood not in ("queen", "rook", "distance"):
        problems.add(f"neighbourhood must be 'queen', 'rook' or 'distance', got {neighbourhood!r}",
                     "Use neighbourhood='queen' (the default).")
    if neighbourhood == "distance":
        if distance is None or isinstance(distance, bool) or not isinstance(distance, (int, float, np.number)) \
                or not math.isfinite(distance) or distance < 0:
            problems.add(f"distance must be a non-negative number of metres with neighbourhood='distance', "
                         f"got {distance!r}", "For example grid_weights(grid, neighbourhood='distance', distance=300).")
    elif distance is not None:
        problems.add(f"distance={distance!r} was given with neighbourhood={neighbourhood!r}",
                     "Pass neighbourhood='distance' to use a distance band, or drop distance.")
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
