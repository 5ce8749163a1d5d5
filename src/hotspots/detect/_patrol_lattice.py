"""Queen contiguity among grid cells from their lattice positions, for the patrol-area steps.

:func:`_lattice_links` gives the links :func:`hotspots.geo.weights.grid_weights` gives a set of cells
alone, by the same arithmetic on their lattice rows and columns, without the whole grid's weights;
:class:`_Links` keeps them for repeated connected-component queries on subsets of the cells
(:mod:`hotspots.detect.patrol`, :mod:`hotspots.detect._patrol_build`).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from hotspots.geo._lattice import _grid_params, _neighbour_offsets


def _lattice_links(row: np.ndarray, col: np.ndarray, shape: str) -> tuple[np.ndarray, np.ndarray]:
    """Queen links (no self) among cells at lattice positions ``row``, ``col``: pairs ``(a, b)`` of positions.

    The links :func:`hotspots.geo.weights.grid_weights` gives the cells alone (``neighbourhood="queen"``,
    ``include_self=False``), by the same lattice arithmetic, in the order of its CSR matrix: by ``a``, then
    ``b``.  The lattice is shifted to the cells' own extent first (rows by an even number, which keeps the
    hexagons' row parity), so the lookup table is as small as the cells' bounding box.
    """
    n = len(row)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    row = np.asarray(row, dtype=np.int64)
    col = np.asarray(col, dtype=np.int64)
    rows = row - (int(row.min()) & ~1)
    cols = col - int(col.min())
    n_rows, n_cols = int(rows.max()) + 1, int(cols.max()) + 1
    lookup = np.full(n_rows * n_cols, -1, dtype=np.int64)
    lookup[rows * n_cols + cols] = np.arange(n, dtype=np.int64)
    offsets = np.array(_neighbour_offsets({"shape": shape, "cell_size": 1.0}, "queen", None), dtype=np.int64)
    if shape == "square":
        r = rows[:, None] + offsets[None, :, 0]
        c = cols[:, None] + offsets[None, :, 1]
    else:  # axial offsets (dq, dr)
        q = cols - (rows - (rows & 1)) // 2
        r = rows[:, None] + offsets[None, :, 1]
        c = q[:, None] + offsets[None, :, 0] + (r - (r & 1)) // 2
    ok = (r >= 0) & (r < n_rows) & (c >= 0) & (c < n_cols)
    neighbour = np.where(ok, lookup[np.where(ok, r * n_cols + c, 0)], -1)
    neighbour[neighbour < 0] = n  # missing: after every position, so sorting each row leaves them last
    neighbour.sort(axis=1)
    present = neighbour < n
    return np.repeat(np.arange(n, dtype=np.int64), present.sum(axis=1)), neighbour[present]


def _grid_lattice(grid: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray, str]:
    """Each grid cell's lattice row and column, and the lattice's shape (``square`` or ``hex``)."""
    shape = _grid_params(grid)["shape"]
    return grid["row"].to_numpy(np.int64), grid["col"].to_numpy(np.int64), shape


def _queen_among(grid: gpd.GeoDataFrame, rows: np.ndarray) -> sparse.csr_matrix:
    """Queen links (no self) among ``rows`` (ascending) of the grid: the whole grid's weights restricted to them.

    The weights depend only on the lattice positions (:func:`hotspots.geo.weights.grid_weights`), so they are
    built from the rows' own positions (:func:`_lattice_links`): the weights of ``grid.iloc[rows]``.
    """
    row, col, shape = _grid_lattice(grid)
    a, b = _lattice_links(row[rows], col[rows], shape)
    m = len(rows)
    indptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(np.bincount(a, minlength=m), out=indptr[1:])
    return sparse.csr_matrix((np.ones(len(b)), b, indptr), shape=(m, m))


class _Links:
    """Queen contiguity among a fixed set of grid rows, for repeated connected-component queries on subsets.

    The weights among a subset of cells are the whole grid's restricted to
    them (they are built from lattice positions), so the links are built
    once and each query keeps the links with both ends in the subset.
    ``a`` and ``b``: the links as pairs of positions, ordered by ``a`` then ``b``.
    """

    def __init__(self, grid: gpd.GeoDataFrame | None, rows: np.ndarray, *, pairs: tuple | None = None):
        if pairs is None:
            row, col, shape = _grid_lattice(grid)
            pairs = _lattice_links(row[rows], col[rows], shape)
        self.size = len(rows)
        self.a, self.b = pairs

    @classmethod
    def of_lattice(cls, row: np.ndarray, col: np.ndarray, shape: str) -> _Links:
        """The links among cells at these lattice positions (positions into ``row``)."""
        return cls(None, row, pairs=_lattice_links(row, col, shape))

    def among(self, members: np.ndarray) -> _Links:
        """The links among ``members`` (ascending positions), renumbered as positions into ``members``."""
        inside = np.zeros(self.size, dtype=bool)
        inside[members] = True
        both = inside[self.a] & inside[self.b]
        local = np.full(self.size, -1, dtype=np.int64)
        local[members] = np.arange(len(members))
        return _Links(None, members, pairs=(local[self.a[both]], local[self.b[both]]))

    def labels(self) -> np.ndarray:
        """The connected component of each position (``scipy.sparse.csgraph.connected_components``'s labels)."""
        m = self.size
        indptr = np.zeros(m + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.a, minlength=m), out=indptr[1:])
        graph = sparse.csr_matrix((np.ones(len(self.b)), self.b, indptr), shape=(m, m))
        return csgraph.connected_components(graph, directed=False)[1]

    def components(self, members: np.ndarray) -> list[np.ndarray]:
        """Connected groups among ``members`` (ascending positions in ``rows``), in label order."""
        if len(members) == 0:
            return []
        label = (self if len(members) == self.size else self.among(members)).labels()
        order = np.argsort(label, kind="stable")
        splits = np.flatnonzero(np.diff(label[order])) + 1
        return [members[g] for g in np.split(order, splits)]
