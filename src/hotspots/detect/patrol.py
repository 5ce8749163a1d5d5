"""Patrol areas from hot cells: contiguous significant cells merged, ranked and numbered; big regions cut to cores.

:func:`merge_hot_cells` joins queen-contiguous hot cells into ranked areas;
:func:`core_cells` cuts a connected hot region larger than a patrol can cover
down to its busiest cores; :func:`bridge_cells` drops hot cells without crime
unless they bridge two crime-bearing hot cells; :func:`patrol_cell_cap` is the largest cell for
which a full-size patrol area is drawn with enough cells.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from hotspots._errors import ValidationError
from hotspots._validate import _Problems
from hotspots.detect._checks import _array_for
from hotspots.detect._patrol_lattice import (  # noqa: F401
    _grid_lattice,
    _lattice_links,
    _Links,
    _queen_among,
)
from hotspots.geo.grid import SNAPPING_FLOOR_M
from hotspots.geo.weights import grid_weights

__all__ = ["PATROL_MIN_CELLS_PER_AREA", "bridge_cells", "core_cells", "merge_hot_cells", "patrol_cell_cap"]

#: a full-size patrol area is drawn with at least this many cells (sets the cap on automatic district cells)
PATROL_MIN_CELLS_PER_AREA = 12


def merge_hot_cells(grid: gpd.GeoDataFrame, cell_class: Any, *, counts: Any, harm: Any = None,
                    rank_by: str = "count", min_cells: int = 1, top_n: int | None = None, group: Any = None,
                    name_lookup: Any = None, gi_z: Any = None) -> gpd.GeoDataFrame:
    """Merge contiguous significant hot cells into ranked patrol areas.

    Cells whose ``cell_class`` starts with ``"hot"`` (e.g. ``hot_99``,
    ``hot_95``, ``hot_90``) are joined with their queen neighbours (cells sharing
    an edge or a corner, from :func:`hotspots.geo.weights.grid_weights`) into
    connected components (``scipy.sparse.csgraph.connected_components``).
    With ``group`` (the district of each cell -- the one holding most of its
    area), only cells of the same group are joined, so each area belongs to one
    district's policing team.  Areas with fewer than ``min_cells`` cells are
    dropped; the rest are ranked within each group by ``rank_by`` (descending;
    ties by count, then by the smallest member ``cell_id``), numbered
    ``PA-<group>-<rank:02d>`` (group ``ALL`` without ``group``), and the
    ``top_n`` best of each group are kept.  The ranking uses only values and
    cell ids, so ids do not depend on the grid's row order.

    Parameters
    ----------
    grid : GeoDataFrame
        From :func:`hotspots.geo.grid.make_grid`.
    cell_class : array-like of str
        Class of each grid cell (e.g. ``"hot_95"``, ``"cold_99"``, ``"not_significant"``).
    counts : array-like
        Crimes per cell.
    harm : array-like, optional
        Harm per cell; summed per area, and the ranking key with ``rank_by="harm"``.
    rank_by : {"count", "harm"}
    min_cells : int, default 1
    top_n : int, optional
        Areas kept per group (all when None).
    group : array-like of str, optional
        Group (district code) of each cell.
    name_lookup : mapping, optional
        Group code -> name, added as ``group_name``.
    gi_z : array-like, optional
        Gi* z-score per cell; adds ``mean_gi_z`` and ``max_gi_z``.

    Returns
    -------
    GeoDataFrame
        In the grid's CRS (EPSG:27700), sorted by group then rank: ``patrol_area_id,
        group, [group_name,] rank, n_cells, area_km2, count, [harm,] [mean_gi_z,
        max_gi_z,] x_centroid, y_centroid, cell_ids`` (";"-separated, sorted)
        and ``geometry`` (dissolved cells, 1 mm precision).

    Examples
    --------
    >>> from shapely import box
    >>> from hotspots.geo.grid import make_grid
    >>> grid = make_grid(box(0, 0, 500, 100), 100, crs="EPSG:27700")
    >>> areas = merge_hot_cells(grid, ["hot_95", "hot_99", "ns", "hot_95", "ns"], counts=[5, 9, 0, 30, 1])
    >>> areas[["patrol_area_id", "n_cells", "count"]].values.tolist()
    [['PA-ALL-01', 1, 30], ['PA-ALL-02', 2, 14]]
    """
    problems = _Problems("merge_hot_cells")
    if not isinstance(grid, gpd.GeoDataFrame):
        raise ValidationError(f"grid must be a GeoDataFrame from make_grid, got {type(grid).__name__}",
                              hint="build it with hotspots.geo.grid.make_grid(area, cell_size)")
    n = len(grid)
    classes = _array_for(cell_class, n, "cell_class", problems, dtype=None)
    count_values = _array_for(counts, n, "counts", problems)
    harm_values = _array_for(harm, n, "harm", problems)
    z_values = _array_for(gi_z, n, "gi_z", problems) if gi_z is not None else None
    groups = _array_for(group, n, "group", problems, dtype=None)
    if rank_by not in ("count", "harm"):
        problems.add(f"rank_by must be 'count' or 'harm', got {rank_by!r}", "use rank_by='count'")
    elif rank_by == "harm" and harm is None:
        problems.add("rank_by='harm' needs harm=", "pass harm= (harm per cell) or rank_by='count'")
    if isinstance(min_cells, bool) or not isinstance(min_cells, (int, np.integer)) or min_cells < 1:
        problems.add(f"min_cells must be a positive integer, got {min_cells!r}", "e.g. min_cells=2")
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, (int, np.integer)) or top_n < 1):
        problems.add(f"top_n must be a positive integer or None, got {top_n!r}", "e.g. top_n=5")
    if groups is not None and pd.isna(groups).any():
        problems.add(f"group has {int(pd.isna(groups).sum())} missing values",
                     "give every cell a group (e.g. the district holding most of its area)")
    problems.raise_if_any()
    if count_values is not None and (count_values < 0).any():
        raise ValidationError("counts has negative values", hint="pass crime counts per cell")

    hot = np.flatnonzero(pd.Series(classes, dtype=object).astype(str).str.startswith("hot").to_numpy())
    group_labels = (np.asarray(groups).astype(str) if groups is not None else np.full(n, "ALL", dtype=object))
    extra = (["group_name"] if name_lookup is not None else []) + (["harm"] if harm is not None else []) \
        + (["mean_gi_z", "max_gi_z"] if gi_z is not None else [])
    columns = _patrol_columns(extra)
    crs = grid.crs
    if len(hot) == 0:
        empty = gpd.GeoDataFrame({c: [] for c in columns if c != "geometry"},
                                 geometry=gpd.GeoSeries([], crs=crs), crs=crs)
        return empty[columns]

    sub = grid if len(hot) == n else grid.iloc[hot]  # only its values are read: no copy when every cell is hot
    weights = grid_weights(sub, neighbourhood="queen", include_self=False).tocoo()
    same = group_labels[hot][weights.row] == group_labels[hot][weights.col]
    links = sparse.csr_matrix((np.ones(int(same.sum())), (weights.row[same], weights.col[same])),
                              shape=(len(hot), len(hot)))
    data, polygons = _merge_components(
        links, cell_ids=sub["cell_id"].astype(str).to_numpy(), area=sub["cell_area_km2"].to_numpy(np.float64),
        geoms=np.asarray(sub.geometry.values), group=group_labels[hot], counts=count_values[hot],
        harm=None if harm is None else harm_values[hot], z=None if gi_z is None else z_values[hot],
        rank_by=rank_by, min_cells=min_cells, top_n=top_n, name_lookup=name_lookup)
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(polygons, crs=crs), crs=crs)  # in the order of columns


def _merge_components(links: sparse.spmatrix, *, cell_ids: np.ndarray, area: np.ndarray, geoms: np.ndarray,
                      group: np.ndarray, counts: np.ndarray, harm: np.ndarray | None, z: np.ndarray | None,
                      rank_by: str, min_cells: int, top_n: int | None, name_lookup: Any
                      ) -> tuple[dict[str, Any], np.ndarray]:
    """The work of :func:`merge_hot_cells` on the hot cells' values and the links among them (one group each)."""
    _, component = csgraph.connected_components(links, directed=False)
    # per component: numeric columns summed by groupby (the same kernels, so the same float sums, as a named
    # aggregation); the rest -- group, smallest cell id, ranking, members -- by numpy on the component numbers
    frame = pd.DataFrame({"count": counts, "area_km2": area})
    if harm is not None:
        frame["harm"] = harm
    sums = frame.groupby(component, sort=True).sum()
    order = np.lexsort((cell_ids.astype(str), component))
    first_of = order[np.r_[0, np.flatnonzero(np.diff(component[order])) + 1]]  # components are 0..k-1
    group_of = np.asarray(group[first_of]).astype(str)
    first_cell = np.asarray(cell_ids[first_of]).astype(str)
    n_cells = np.bincount(component)
    count_sum = sums["count"].to_numpy()
    key = sums["harm" if rank_by == "harm" else "count"].to_numpy()
    if z is not None:
        z = pd.Series(z).groupby(component, sort=True)
        z_mean, z_max = z.mean().to_numpy(), z.max().to_numpy()
    # rank within each group: by the key, then count (both descending), then the smallest cell id; the string
    # keys by their sorted codes (the order pandas' sort gives them), ties kept in component order
    kept = np.flatnonzero(n_cells >= min_cells)
    group_code = np.unique(group_of[kept], return_inverse=True)[1].reshape(-1)
    cell_code = np.unique(first_cell[kept], return_inverse=True)[1].reshape(-1)
    ranked = kept[np.lexsort((cell_code, -count_sum[kept], -key[kept], group_code))]
    g = group_of[ranked]
    new_group = np.r_[True, g[1:] != g[:-1]] if len(g) else np.zeros(0, dtype=bool)
    rank = np.arange(len(ranked)) - np.maximum.accumulate(np.where(new_group, np.arange(len(ranked)), 0)) + 1
    if top_n is not None:
        ranked, rank, g = ranked[rank <= top_n], rank[rank <= top_n], g[rank <= top_n]
    members = np.split(order, np.flatnonzero(np.diff(component[order])) + 1) if len(order) else []
    polygons, ids_text = [], []
    for comp in ranked:
        idx = np.sort(members[comp])
        polygons.append(shapely.union_all(geoms[idx], grid_size=0.001))
        ids_text.append(";".join(sorted(cell_ids[idx])))
    polygons = np.array(polygons, dtype=object)
    centroids = shapely.centroid(polygons)
    data = {"patrol_area_id": [f"PA-{a}-{r:02d}" for a, r in zip(g.tolist(), rank.tolist())],
            "group": pd.array(g, dtype="str")}
    if name_lookup is not None:
        lookup = dict(name_lookup)
        data["group_name"] = [str(lookup.get(a, "")) for a in g.tolist()]
    data["rank"] = rank.astype(np.int64)
    data["n_cells"] = n_cells[ranked].astype(np.int64)
    data["area_km2"] = sums["area_km2"].to_numpy()[ranked]
    count_kept = count_sum[ranked]
    data["count"] = count_kept.astype(np.int64) if np.all(count_kept == np.round(count_kept)) else count_kept
    if harm is not None:
        data["harm"] = sums["harm"].to_numpy()[ranked]
    if z is not None:
        data["mean_gi_z"], data["max_gi_z"] = z_mean[ranked], z_max[ranked]
    data["x_centroid"] = shapely.get_x(centroids)
    data["y_centroid"] = shapely.get_y(centroids)
    data["cell_ids"] = ids_text
    return data, polygons


def _patrol_columns(extra: list[str]) -> list[str]:
    columns = ["patrol_area_id", "group"]
    if "group_name" in extra:
        columns.append("group_name")
    columns += ["rank", "n_cells", "area_km2", "count"]
    if "harm" in extra:
        columns.append("harm")
    if "mean_gi_z" in extra:
        columns += ["mean_gi_z", "max_gi_z"]
    columns += ["x_centroid", "y_centroid", "cell_ids", "geometry"]
    return columns


def patrol_cell_cap(max_area_km2: float, min_cells: int = PATROL_MIN_CELLS_PER_AREA) -> float:
    """Largest cell (m, a multiple of 50, >= the 100 m floor) for which a full-size patrol area holds ``min_cells`` cells.

    >>> patrol_cell_cap(0.5)
    200.0
    """
    side = math.sqrt(max_area_km2 * 1e6 / min_cells)
    return max(SNAPPING_FLOOR_M, math.floor(side / 50.0) * 50.0)


def core_cells(grid: gpd.GeoDataFrame, hot: np.ndarray, value: np.ndarray, max_area_km2: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Cut connected regions of hot cells larger than ``max_area_km2`` down to their busiest cores.

    Against a district mean that includes fields and woods, a whole town can be
    one connected region of significant Gi* cells: too big to patrol.  Such a
    region is peeled: its cells with the lowest ``value`` are dropped, the rest
    split into connected parts, and each part still larger than
    ``max_area_km2`` is peeled again, until every part fits.  Parts that fit
    are kept whole; regions that fit from the start are unchanged.  The stage
    peels on the Gi* z-score, a neighbourhood sum, so the cores stay compact
    around the peaks (peeling on raw counts of snapped locations leaves
    ragged, diagonal chains of cells).

    Returns
    -------
    keep : bool array, one per grid row
    region_km2 : float array, area of the original connected hot region each cell belongs to (NaN outside)

    Examples
    --------
    >>> from shapely import box
    >>> from hotspots.geo.grid import make_grid
    >>> g = make_grid(box(0, 0, 500, 100), 100, crs="EPSG:27700")   # 5 cells in a row
    >>> keep, region = core_cells(g, np.ones(5, bool), np.array([1., 5., 9., 5., 1.]), 0.03)
    >>> keep.tolist(), region.round(2).tolist()
    ([False, True, True, True, False], [0.05, 0.05, 0.05, 0.05, 0.05])
    """
    keep = np.zeros(len(grid), dtype=bool)
    region = np.full(len(grid), np.nan)
    start = np.flatnonzero(hot)
    if len(start) == 0:
        return keep, region
    kept, region[start] = _cores(_Links(grid, start), grid["cell_area_km2"].to_numpy(float)[start],
                                 np.asarray(value)[start], max_area_km2)
    keep[start[kept]] = True
    return keep, region


def _cores(links: _Links, area: np.ndarray, value: np.ndarray, max_area_km2: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`core_cells` among the hot cells alone: ``links`` among them, their areas and values.

    Returns ``keep`` (bool) and ``region_km2`` (float), one per hot cell.
    """
    value = np.nan_to_num(np.asarray(value, float), nan=-np.inf)
    keep = np.zeros(links.size, dtype=bool)
    region = np.full(links.size, np.nan)
    limit = max_area_km2 + 1e-9
    big = []
    for comp in links.components(np.arange(links.size)):
        size = area[comp].sum()
        region[comp] = size
        if size <= limit:  # as the first peeling level below would find
            keep[comp] = True
        else:
            big.append(comp)
    if not big:
        return keep, region
    pending = np.sort(np.concatenate(big))
    fast = _peeled_keep(links, pending, area, value, limit)
    if fast is not None:
        keep[pending[fast]] = True
        return keep, region
    # peel level by level: the parts still to split are subsets of different (so non-adjacent) regions,
    # so the components of their union are theirs, found in one pass
    while len(pending):
        rests = []
        for comp in links.components(pending):
            if area[comp].sum() <= limit:
                keep[comp] = True
                continue
            rest = comp[value[comp] > value[comp].min()]
            if len(rest):
                rests.append(rest)
        pending = np.sort(np.concatenate(rests)) if rests else np.array([], dtype=np.int64)
    return keep, region


def _peeled_keep(links: _Links, members: np.ndarray, area: np.ndarray, value: np.ndarray,
                 limit: float) -> np.ndarray | None:
    """Which of ``members`` (cells of regions larger than ``limit``) the peeling of :func:`core_cells` keeps.

    The parts the peeling visits are the connected components of the
    superlevel sets ``{value >= t}`` of each region (a part whose lowest cells
    are dropped splits into the components of the rest, and each of those is
    the component of ``{value >= its own minimum}``); the parts holding a cell
    shrink as the peeling goes on, and the smallest is the component of the
    cell in ``{value >= value of the cell}``.  So a cell is kept exactly when
    that component fits in ``limit``.  All those components' areas are found
    in one pass, adding cells from the highest value down and joining
    neighbours (union-find).  Returns None -- the caller then peels level by
    level -- when any of those areas is so close to ``limit`` that a different
    order of summation could decide otherwise, or when areas or the limit are
    not finite and non-negative.
    """
    cell_area = area[members]
    if not np.isfinite(limit) or not np.all(np.isfinite(cell_area)) or (cell_area < 0).any():
        return None
    n = len(area)
    indptr = np.searchsorted(links.a, np.arange(n + 1))  # the links come row by row
    nbr = links.b.tolist()
    ptr = indptr.tolist()
    order = members[np.lexsort((members, -value[members]))]
    vals = value[order].tolist()
    cells = order.tolist()
    parent = list(range(n))
    total = area.tolist()
    added = [False] * n
    out = [0.0] * n

    def find(c: int) -> int:
        root = c
        while parent[root] != root:
            root = parent[root]
        while parent[c] != root:
            parent[c], c = root, parent[c]
        return root

    i, m = 0, len(cells)
    while i < m:
        j = i + 1
        while j < m and vals[j] == vals[i]:
            j += 1
        level = cells[i:j]
        for c in level:
            added[c] = True
        for c in level:
            rc = find(c)
            for k in range(ptr[c], ptr[c + 1]):
                d = nbr[k]
                if added[d]:
                    rd = find(d)
                    if rd != rc:
                        parent[rd] = rc
                        total[rc] += total[rd]
        for c in level:
            out[c] = total[find(c)]
        i = j
    sizes = np.asarray(out)[members]
    if (np.abs(sizes - limit) <= 1e-9 * max(1.0, abs(limit))).any():
        return None
    return sizes <= limit


def bridge_cells(grid: gpd.GeoDataFrame, hot: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep the hot cells that hold crime, and the empty hot cells that bridge two of them.

    Gi* is about a cell's neighbourhood: next to one busy cell, its empty
    neighbours are "hot" too, and a patrol area of them would be drawn as a
    3 x 3 block with most of it empty.  A hot cell with no recorded crime
    stays only where it *bridges*: among its queen neighbours are two
    crime-bearing hot cells that are not queen neighbours of each other (so
    without it they would not touch).  Every other empty hot cell is dropped.
    One pass: an empty cell next only to other empty cells is dropped even
    if those would be bridges.

    Parameters
    ----------
    grid : GeoDataFrame
        From :func:`hotspots.geo.grid.make_grid`.
    hot : bool array, one per grid row
        The hot cells (patrol candidates).
    counts : array, one per grid row
        Crimes per cell.

    Returns
    -------
    keep : bool array, one per grid row
        Hot cells that hold crime, and bridging empty hot cells.
    bridge : bool array, one per grid row
        The empty hot cells kept as bridges.

    Examples
    --------
    >>> from shapely import box
    >>> from hotspots.geo.grid import make_grid
    >>> g = make_grid(box(0, 0, 500, 100), 100, crs="EPSG:27700")   # 5 cells in a row
    >>> keep, bridge = bridge_cells(g, np.ones(5, bool), np.array([0, 4, 0, 3, 0]))
    >>> keep.tolist(), bridge.tolist()
    ([False, True, True, True, False], [False, False, True, False, False])
    """
    hot = np.asarray(hot, dtype=bool)
    counts = np.asarray(counts, dtype=float)
    keep = hot & (counts > 0)
    bridge = np.zeros(len(grid), dtype=bool)
    if not (hot & ~(counts > 0)).any() or not keep.any():
        return keep, bridge
    rows = np.flatnonzero(hot)
    row, col, shape = _grid_lattice(grid)
    links = _Links(None, rows, pairs=_lattice_links(row[rows], col[rows], shape))
    bridge[rows[_bridges(links, keep[rows], row[rows], col[rows], shape)]] = True
    return keep | bridge, bridge


def _bridges(links: _Links, bearing: np.ndarray, row: np.ndarray | None = None, col: np.ndarray | None = None,
             shape: str | None = None) -> np.ndarray:
    """:func:`bridge_cells` among the hot cells alone: which of them are empty and bridge two ``bearing`` ones.

    ``links``: the queen links among the hot cells; ``bearing``: per hot cell, does it hold crime; ``row``,
    ``col``, ``shape``: their lattice positions (optional).  On a square lattice two queen neighbours of a
    cell are not neighbours of each other exactly when one is in the row above it and the other in the row
    below, or one in the column to its left and the other in the column to its right: that is tested on the
    offsets directly.  Otherwise each pair of an empty cell's crime-bearing neighbours is looked up among the
    links.
    """
    m = links.size
    apart = np.zeros(m, dtype=bool)
    e = np.flatnonzero(~bearing)
    if len(e) == 0 or not bearing.any():
        return apart
    if shape == "square" and row is not None and col is not None:
        empty_to_bearing = ~bearing[links.a] & bearing[links.b]
        a, b = links.a[empty_to_bearing], links.b[empty_to_bearing]
        dr, dc = row[b] - row[a], col[b] - col[a]

        def has(side):
            return np.bincount(a[side], minlength=m) > 0

        return (has(dr == -1) & has(dr == 1)) | (has(dc == -1) & has(dc == 1))
    # every empty hot cell at once: its crime-bearing hot neighbours in a padded row (-1 beyond them), then
    # each pair of them looked up among the queen links (sorted keys a * m + b)
    indptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(np.bincount(links.a, minlength=m), out=indptr[1:])
    indices = links.b
    nnz = len(indices)
    start, length = indptr[e], indptr[e + 1] - indptr[e]
    width = int(length.max())
    slot = np.arange(width)
    take = np.minimum(start[:, None] + slot[None, :], max(nnz - 1, 0))
    nb = np.where(slot[None, :] < length[:, None], indices[take] if nnz else -1, -1).astype(np.int64)
    nb = np.where((nb >= 0) & bearing[np.maximum(nb, 0)], nb, -1)
    keys = links.a * m + links.b
    for k in range(width):
        for j in range(k + 1, width):
            a, b = nb[:, k], nb[:, j]
            both = np.flatnonzero((a >= 0) & (b >= 0))
            if both.size == 0:
                continue
            key = a[both] * m + b[both]
            at = np.minimum(np.searchsorted(keys, key), max(len(keys) - 1, 0))
            linked = (keys[at] == key) if len(keys) else np.zeros(both.size, dtype=bool)
            apart[e[both[~linked]]] = True
    return apart


def demote_empty_hot_cells(grid: gpd.GeoDataFrame, gi: pd.DataFrame, counts: np.ndarray) -> pd.DataFrame:
    """Gi* classes in which a hot cell with no recorded crime stays hot only where it is a bridge.

    Gi* scores a cell's neighbourhood, so the empty neighbours of one busy
    location come out "hot" and a map shows a 3 x 3 block where the crime is in
    one cell.  Each empty hot cell that does not bridge two crime-bearing hot
    cells (:func:`bridge_cells`) is shown as ``not_significant`` with
    ``gi_test = "empty_cell"``; its z, p and q are kept as computed.

    Parameters
    ----------
    grid : GeoDataFrame
        The grid the statistics were computed on.
    gi : DataFrame
        :func:`hotspots.detect.gistar.gi_star` output (``gi_class``, ``gi_test``), one row per cell.
    counts : array
        Crimes per cell.

    Returns
    -------
    DataFrame
        A copy of ``gi`` with the classes changed.

    Examples
    --------
    >>> from shapely import box
    >>> from hotspots.geo import make_grid, grid_weights
    >>> from hotspots.detect.gistar import gi_star
    >>> g = make_grid(box(0, 0, 1000, 1000), 100, crs="EPSG:27700")
    >>> counts = np.zeros(len(g)); counts[55] = 30          # one busy cell
    >>> gi = gi_star(counts, grid_weights(g, neighbourhood="queen", include_self=True))
    >>> int(gi["gi_class"].astype(str).str.startswith("hot").sum())   # the busy cell and its 8 empty neighbours
    9
    >>> shown = demote_empty_hot_cells(g, gi, counts)
    >>> int(shown["gi_class"].astype(str).str.startswith("hot").sum()), int((shown["gi_test"] == "empty_cell").sum())
    (1, 8)
    """
    counts = np.asarray(counts, dtype=float)
    hot = _starts_with_hot(gi["gi_class"])
    keep, _ = bridge_cells(grid, hot, counts)
    demote = hot & ~keep
    if demote.any():
        fast = _demoted_codes(gi, demote)
        if fast is not None:  # the same categoricals, set through their codes
            # two columns replaced (never written into): the copy can share the other columns' data
            out = gi.copy(deep=False)
            out["gi_class"], out["gi_test"] = fast
            return out
    out = gi.copy()
    if demote.any():
        if isinstance(out["gi_test"].dtype, pd.CategoricalDtype) and "empty_cell" not in out["gi_test"].cat.categories:
            out["gi_test"] = out["gi_test"].cat.add_categories(["empty_cell"])
        out.loc[demote, "gi_class"] = "not_significant"
        out.loc[demote, "gi_test"] = "empty_cell"
    return out


def _demoted_codes(gi: pd.DataFrame, demote: np.ndarray):
    """``gi_class`` and ``gi_test`` with the ``demote`` rows set to not_significant / empty_cell, through the
    categorical codes (as ``.loc`` setting, with ``empty_cell`` added as ``add_categories`` adds it); ``None``
    unless both are categoricals and not_significant is among the classes."""
    cls, test = gi["gi_class"], gi["gi_test"]
    if not (isinstance(cls.dtype, pd.CategoricalDtype) and isinstance(test.dtype, pd.CategoricalDtype)
            and "not_significant" in cls.dtype.categories and demote.dtype == bool and demote.shape == (len(gi),)):
        return None
    cls_codes = np.array(cls.array.codes, copy=True)
    cls_codes[demote] = cls.dtype.categories.get_loc("not_significant")
    test_dtype = _with_empty_cell(test.dtype)
    test_codes = np.array(test.array.codes, copy=True).astype(
        np.int8 if len(test_dtype.categories) < 127 else np.int64)
    test_codes[demote] = test_dtype.categories.get_loc("empty_cell")
    # the codes are those of the dtypes' categories, so they need no check
    return (pd.Series(pd.Categorical.from_codes(cls_codes, dtype=cls.dtype, validate=False), index=gi.index,
                      name="gi_class"),
            pd.Series(pd.Categorical.from_codes(test_codes, dtype=test_dtype, validate=False), index=gi.index,
                      name="gi_test"))


def _with_empty_cell(dtype: pd.CategoricalDtype) -> pd.CategoricalDtype:
    """``dtype`` with ``empty_cell`` as its last category (as ``add_categories`` adds it), unless it has it."""
    if "empty_cell" in dtype.categories:
        return dtype
    return _categories_with_empty_cell(tuple(dtype.categories), dtype.ordered)


@functools.lru_cache(maxsize=8)
def _categories_with_empty_cell(categories: tuple, ordered: bool) -> pd.CategoricalDtype:
    """Kept per categories (every call of :func:`hotspots.detect.gistar.gi_star` gives the same ones)."""
    return pd.CategoricalDtype(list(categories) + ["empty_cell"], ordered=ordered)


def _starts_with_hot(classes: pd.Series) -> np.ndarray:
    """``classes.astype(str).str.startswith("hot")`` as a bool array; for a categorical, on its categories only."""
    if isinstance(classes.dtype, pd.CategoricalDtype):
        cat = classes.array
        hot_category = np.array([str(c).startswith("hot") for c in cat.categories] + [False])
        return hot_category[np.asarray(cat.codes)]  # code -1 (missing): the last entry, False
    return classes.astype(str).str.startswith("hot").to_numpy()
