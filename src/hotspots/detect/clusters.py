"""Density clusters of crime locations: DBSCAN / HDBSCAN on unique snapped locations weighted by count."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse

from hotspots._validate import _check_xy, _check_xy_metres, _Problems
from hotspots.detect._checks import (
    BNG,
    _maybe_int,
    _positive_number,
    _require_finite_xy,
    _weights_array,
)

__all__ = ["cluster_locations"]


def _weighted_hdbscan(xy: np.ndarray, counts: np.ndarray, min_crimes: int, min_cluster_size: int) -> np.ndarray:
    """HDBSCAN labels for unique locations with count-weighted core distances."""
    from scipy.spatial import Delaunay, QhullError, cKDTree
    from sklearn.cluster import HDBSCAN

    n = len(xy)
    tree = cKDTree(xy)
    k = min(n, max(int(min_crimes), 16))
    distance, neighbour = tree.query(xy, k=k)
    distance = distance.reshape(n, -1)
    neighbour = neighbour.reshape(n, -1)
    # weighted core distance: distance at which the crimes at this location
    # and its nearest locations (itself first) add up to min_crimes
    cumulative = np.cumsum(counts[neighbour], axis=1)
    reached = cumulative >= min_crimes
    at = np.where(reached.any(axis=1), reached.argmax(axis=1), k - 1)
    core = distance[np.arange(n), at]
    short = np.flatnonzero(~reached.any(axis=1))
    if len(short) and k < n:
        # fewer than min_crimes crimes in the k nearest locations: look further
        d_all, n_all = tree.query(xy[short], k=n)
        cum_all = np.cumsum(counts[n_all.reshape(len(short), -1)], axis=1)
        hit = cum_all >= min_crimes
        core[short] = np.where(hit.any(axis=1), d_all.reshape(len(short), -1)[np.arange(len(short)),
                                                                          hit.argmax(axis=1)], np.inf)
    elif len(short):
        core[short] = np.inf
    finite_max = np.nanmax(np.where(np.isfinite(core), core, np.nan)) if np.isfinite(core).any() else 1.0
    core = np.where(np.isfinite(core), core, 10 * (finite_max + distance.max() + 1.0))

    # candidate edges: k nearest neighbours plus a Euclidean spanning structure
    # (Delaunay edges contain the Euclidean MST) so the graph is connected
    src = np.repeat(np.arange(n), k - 1)
    dst = neighbour[:, 1:].reshape(-1)
    try:
        if n >= 3:
            tri = Delaunay(xy)
            simplices = tri.simplices
            src = np.concatenate([src, simplices[:, 0], simplices[:, 1], simplices[:, 2]])
            dst = np.concatenate([dst, simplices[:, 1], simplices[:, 2], simplices[:, 0]])
        else:
            raise QhullError("too few points")
    except QhullError:  # collinear or too few points: chain along the line
        order = np.lexsort((xy[:, 1], xy[:, 0]))
        src = np.concatenate([src, order[:-1]])
        dst = np.concatenate([dst, order[1:]])
    a, b = np.minimum(src, dst), np.maximum(src, dst)
    keep = a != b
    pair_key = np.unique(a[keep].astype(np.int64) * n + b[keep])
    a, b = np.divmod(pair_key, n)
    d = np.hypot(*(xy[a] - xy[b]).T)
    reach = np.maximum(np.maximum(core[a], core[b]), d)
    # with min_samples=1 sklearn's own core distance is the smallest entry of a
    # row, which never exceeds any entry, so our mutual reachabilities are used
    # unchanged (all are > 0: the locations are unique)
    graph = sparse.csr_matrix((np.concatenate([reach, reach]), (np.concatenate([a, b]), np.concatenate([b, a]))),
                              shape=(n, n))
    # cluster_selection_epsilon is not used: sklearn 1.9's epsilon search fails
    # with "only 0-dimensional arrays can be converted to Python scalars"
    model = HDBSCAN(min_cluster_size=max(2, int(min_cluster_size)), min_samples=1, metric="precomputed",
                    copy=True)
    return model.fit(graph).labels_


def cluster_locations(x: Any, y: Any, *, counts: Any = None, method: str = "dbscan", eps_m: float = 150.0,
                      min_crimes: int = 20, min_cluster_size: int | None = None):
    """Density clusters of crime locations, run on unique snapped locations.

    police.uk locations are snapped to ~750,000 anonymised map points, so many
    crimes share one coordinate.  Identical coordinates are grouped first and
    each unique location carries its crime count; clustering then runs on the
    (typically ~25 times fewer) unique locations.

    * ``method="dbscan"``: the clusters of :class:`sklearn.cluster.DBSCAN` with
      ``sample_weight=count`` (Ester et al. 1996; computed here from KD-tree
      neighbour pairs, :func:`_dbscan_labels`): a location is a core point
      when the crimes within ``eps_m`` (itself included) number at least
      ``min_crimes``.  This is exactly DBSCAN on the expanded raw points (one
      row per crime), at a tiny fraction of the memory.
    * ``method="hdbscan"``: sklearn's HDBSCAN (Campello et al. 2013) has no
      ``sample_weight``, and repeating points scales badly (40,000 repeated
      rows took ~11 s in our trials, 278,000 did not finish in 10 minutes).  Instead the count-weighted core
      distance of each unique location -- the distance within which its own
      and its nearest locations' crimes reach ``min_crimes`` -- is computed
      exactly with a KD-tree, and HDBSCAN runs on a precomputed sparse
      mutual-reachability graph (k-nearest-neighbour and Delaunay edges, which
      contain the Euclidean minimum spanning tree) with ``min_samples=1``.  So
      *density* is weighted by counts, while HDBSCAN's ``min_cluster_size`` is
      counted in unique locations (default 5): a hotspot of fewer locations
      -- say one very busy snap point -- is never an HDBSCAN cluster (DBSCAN
      finds it), and, as in sklearn's default, one cluster spanning all the
      data is not selected.  ``eps_m`` is not used
      (HDBSCAN needs no radius; sklearn 1.9's ``cluster_selection_epsilon``
      is broken) except for the outline buffer below.

    For both methods, clusters holding fewer than ``min_cluster_size`` crimes
    (DBSCAN; default ``min_crimes``) or fewer than ``min_crimes`` crimes
    (HDBSCAN) are relabelled as noise.  Cluster ids are renumbered 0, 1, ...
    by decreasing crimes (ties: smaller easting, then northing, of the
    cluster's first location), so they do not depend on row order.

    Parameters
    ----------
    x, y : array-like
        Coordinates in metres (EPSG:27700), one row per crime or per location.
    counts : array-like, optional
        Crimes per row (default 1 each).
    method : {"dbscan", "hdbscan"}
    eps_m : float, default 150
        DBSCAN neighbourhood radius in metres (see above for HDBSCAN).
    min_crimes : int, default 20
        Crimes needed within ``eps_m`` for a core location.
    min_cluster_size : int, optional
        See above.

    Returns
    -------
    locations : DataFrame
        One row per unique location: ``x, y, count, cluster`` (-1 = noise),
        sorted by x then y.
    clusters : GeoDataFrame (EPSG:27700)
        One row per cluster: ``cluster, n_crimes, n_locations, x_centroid,
        y_centroid`` (count-weighted mean), ``area_km2`` and ``geometry``: the
        convex hull of the member locations buffered by ``eps_m / 2`` (so
        clusters of one or two locations still have an area).

    Examples
    --------
    >>> x = [0, 0, 50, 5_000]; y = [0, 0, 0, 5_000]
    >>> locations, clusters = cluster_locations(x, y, counts=[10, 5, 10, 3], min_crimes=20)
    >>> locations[["x", "y", "count", "cluster"]].values.tolist()
    [[0.0, 0.0, 15.0, 0.0], [50.0, 0.0, 10.0, 0.0], [5000.0, 5000.0, 3.0, -1.0]]
    >>> clusters[["cluster", "n_crimes", "n_locations"]].values.tolist()
    [[0, 25, 2]]
    """
    xy, loc_counts, labels, locations = _cluster_labels(x, y, counts, method, eps_m, min_crimes, min_cluster_size)
    locations["cluster"] = labels
    locations["count"] = _maybe_int(locations["count"])
    return locations, _cluster_summary(xy, loc_counts, labels, float(eps_m))


def _cluster_labels(x, y, counts, method, eps_m, min_crimes, min_cluster_size, *, frame: bool = True):
    """:func:`cluster_locations`' checks and clustering: the unique locations, their counts and labels.

    Returns ``(xy, counts, labels, locations)``; ``locations`` is the table of the unique locations
    (``x, y, count``), or None with ``frame=False`` when the points are already one row per location,
    sorted (the hotspots stage's call, which needs only the arrays).
    """
    problems = _Problems("cluster_locations")
    xa, ya = _check_xy(problems, x, y)
    problems.raise_if_any()
    c = _weights_array(counts, xa.size, "counts", problems)
    _require_finite_xy(xa, ya, problems)
    if method not in ("dbscan", "hdbscan"):
        problems.add(f"method must be 'dbscan' or 'hdbscan', got {method!r}", "use method='dbscan'")
    _positive_number(eps_m, "eps_m", problems, "pass the neighbourhood radius in metres, e.g. eps_m=150")
    if isinstance(min_crimes, bool) or not isinstance(min_crimes, (int, np.integer)) or min_crimes < 1:
        problems.add(f"min_crimes must be a positive integer, got {min_crimes!r}", "e.g. min_crimes=20")
    if min_cluster_size is not None and (isinstance(min_cluster_size, bool)
                                         or not isinstance(min_cluster_size, (int, np.integer))
                                         or min_cluster_size < 1):
        problems.add(f"min_cluster_size must be a positive integer or None, got {min_cluster_size!r}",
                     "leave it as None for the default")
    problems.raise_if_any()
    _check_xy_metres(xa, ya)

    if _unique_in_order(xa, ya):  # already one row per location, sorted (as the hotspots stage passes them)
        xy = np.column_stack([xa, ya]).astype(np.float64)
        loc_counts = np.asarray(c + 0.0, dtype=np.float64)  # + 0.0: as the group sums (no -0.0)
        locations = pd.DataFrame({"x": xa, "y": ya, "count": c + 0.0}) if frame else None
    else:
        locations = (pd.DataFrame({"x": xa, "y": ya, "count": c})
                     .groupby(["x", "y"], sort=True, as_index=False)["count"].sum()).reset_index(drop=True)
        xy = locations[["x", "y"]].to_numpy(np.float64)
        loc_counts = locations["count"].to_numpy(np.float64)
    labels = np.full(len(loc_counts), -1, dtype=np.int64)
    positive = np.flatnonzero(loc_counts > 0)
    if len(positive) >= 1:
        if method == "dbscan":
            labels[positive] = _dbscan_labels(xy[positive], loc_counts[positive], float(eps_m), int(min_crimes))
            floor_crimes = int(min_cluster_size) if min_cluster_size is not None else int(min_crimes)
        elif len(positive) >= 2:
            labels[positive] = _weighted_hdbscan(
                xy[positive], loc_counts[positive], int(min_crimes),
                int(min_cluster_size) if min_cluster_size is not None else 5)
            floor_crimes = int(min_crimes)
        else:
            floor_crimes = int(min_crimes)
        labels = _renumber_clusters(labels, xy, loc_counts, floor_crimes)
    return xy, loc_counts, labels, locations



def _dbscan_labels(xy: np.ndarray, weight: np.ndarray, eps: float, min_samples: int) -> np.ndarray:
    """Weighted DBSCAN labels (-1: noise), the clusters sklearn's ``DBSCAN(eps, min_samples).fit(xy, sample_weight)`` finds.

    A location is a core when the weight within ``eps`` of it (itself
    included, the boundary too) reaches ``min_samples``; a cluster is a
    connected group of cores (cores within ``eps`` of each other) with the
    non-core locations within ``eps`` of them; a non-core location near two
    clusters goes to the one whose first core comes first (sklearn's order
    of discovery).  The labels are numbered in that order; callers renumber
    them (:func:`_renumber_clusters`).  The neighbour pairs come from a
    KD-tree (no import of sklearn, and the weights are added in one pass).
    """
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    n = len(xy)
    labels = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return labels
    pairs = cKDTree(xy).query_pairs(eps, output_type="ndarray").astype(np.int64).reshape(-1, 2)
    a, b = pairs[:, 0], pairs[:, 1]
    held = weight + np.bincount(a, weights=weight[b], minlength=n) + np.bincount(b, weights=weight[a], minlength=n)
    core = held >= min_samples
    if not core.any():
        return labels
    both = core[a] & core[b]
    graph = sparse.csr_matrix((np.ones(int(both.sum())), (a[both], b[both])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    # clusters in order of their first core (sklearn's dbscan_inner starts one at each unlabelled core, in order)
    cores = np.flatnonzero(core)
    first_core = np.full(n, n, dtype=np.int64)
    np.minimum.at(first_core, component[cores], cores)
    rank = np.full(n, -1, dtype=np.int64)
    used = np.unique(component[cores])
    rank[used[np.argsort(first_core[used], kind="stable")]] = np.arange(used.size)
    labels[cores] = rank[component[cores]]
    # a non-core location: the first cluster with a core within eps of it
    border = np.full(n, n, dtype=np.int64)
    for u, v in ((a, b), (b, a)):
        link = ~core[u] & core[v]
        np.minimum.at(border, u[link], rank[component[v[link]]])
    reached = ~core & (border < n)
    labels[reached] = border[reached]
    return labels


def _unique_in_order(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether the points are distinct and sorted by x, then y (strictly increasing pairs)."""
    return bool(np.all((x[1:] > x[:-1]) | ((x[1:] == x[:-1]) & (y[1:] > y[:-1]))))


def _renumber_clusters(labels, xy, counts, floor_crimes):
    found = labels >= 0
    if not found.any():
        return labels
    ids = np.unique(labels[found])
    totals = np.bincount(labels[found], weights=counts[found], minlength=ids.max() + 1)[ids]
    # locations are sorted by (x, y), so the first member is the min (x, y) one
    member = np.flatnonzero(found)
    first_of_label = np.full(ids.max() + 1, len(labels), dtype=np.int64)
    np.minimum.at(first_of_label, labels[member], member)
    first = first_of_label[ids]
    keep = totals >= floor_crimes
    order = np.lexsort((xy[first, 1], xy[first, 0], -totals))
    order = order[keep[order]]
    mapping = np.full(ids.max() + 1, -1, dtype=np.int64)
    mapping[ids[order]] = np.arange(len(order))
    out = np.full(len(labels), -1, dtype=np.int64)
    out[found] = mapping[labels[found]]
    return out


def _cluster_summary(xy, counts, labels, eps_m) -> gpd.GeoDataFrame:
    columns = ["cluster", "n_crimes", "n_locations", "x_centroid", "y_centroid", "area_km2"]
    if not (labels >= 0).any():
        return gpd.GeoDataFrame({c: pd.Series(dtype="float64") for c in columns},
                                geometry=gpd.GeoSeries([], crs=BNG), crs=BNG)
    parts = _cluster_parts(xy, counts, labels, eps_m)
    polygons = parts.pop("geometry")
    parts["n_crimes"] = _maybe_int(pd.Series(parts["n_crimes"]))
    return gpd.GeoDataFrame(parts, geometry=gpd.GeoSeries(polygons, crs=BNG), crs=BNG)


def _cluster_parts(xy, counts, labels, eps_m) -> dict[str, np.ndarray]:
    """The columns of :func:`_cluster_summary` as arrays (``n_crimes`` float, ``geometry`` the polygons).

    At least one location must be in a cluster.
    """
    n_clusters = labels.max() + 1
    member = labels >= 0
    total = np.bincount(labels[member], weights=counts[member], minlength=n_clusters)
    n_loc = np.bincount(labels[member], minlength=n_clusters)
    cx = np.bincount(labels[member], weights=(counts * xy[:, 0])[member], minlength=n_clusters) / total
    cy = np.bincount(labels[member], weights=(counts * xy[:, 1])[member], minlength=n_clusters) / total
    order = np.argsort(labels[member], kind="stable")
    # one multipoint per cluster (its locations in order; every cluster has some), built and hulled at once
    hulls = shapely.convex_hull(shapely.multipoints(xy[member][order], indices=labels[member][order]))
    polygons = shapely.buffer(hulls, eps_m / 2)
    return {"cluster": np.arange(n_clusters), "n_crimes": total, "n_locations": n_loc,
            "x_centroid": cx, "y_centroid": cy, "area_km2": shapely.area(polygons) / 1e6, "geometry": polygons}


def _hulls_reference(xy, labels, n_loc) -> np.ndarray:
    """The clusters' convex hulls one group at a time (what :func:`_cluster_parts` replaces; for the tests)."""
    member = labels >= 0
    order = np.argsort(labels[member], kind="stable")
    groups = np.split(xy[member][order], np.cumsum(n_loc)[:-1])
    return np.array([shapely.convex_hull(shapely.multipoints(g)) for g in groups], dtype=object)
