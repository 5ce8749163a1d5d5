"""Adaptive (k-nearest-neighbour) kernel radii for the quartic KDE: narrow where crime is dense, wide where sparse.

A single bandwidth from a normal-reference rule over a whole district is set
by the district's spread (4.8 km for East Hertfordshire ASB in 2025), which
smears a rural cluster over several villages.  Here each location gets its
own radius: the distance within which ``k`` crimes lie (itself included),
bounded below by two grid cells and above by the normal-reference bandwidth
(the sample-point adaptive estimator, Silverman 1986 section 5.3; k-th
nearest-neighbour radii, Loftsgaarden & Quesenberry 1965, with ``k`` about
the square root of the number of crimes).  Radii are rounded to a geometric
ladder (steps of 2**(1/4), about 19%) so the density is a sum of a few
fixed-bandwidth FFT convolutions.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

#: Bounds of the neighbour count k = sqrt(crimes): at least K_MIN, at most K_MAX crimes within each radius.
K_MIN, K_MAX = 10, 50

#: Neighbours asked for first (most locations reach k within them; the others are asked again for all).
FIRST_NEIGHBOURS = 24

#: Ratio between consecutive radii of the ladder the radii are rounded to.
LADDER = 2.0 ** 0.25


def neighbour_count(total_weight: float) -> int:
    """``k``: the square root of the total weight (crimes), between :data:`K_MIN` and :data:`K_MAX`."""
    return int(min(K_MAX, max(K_MIN, math.ceil(math.sqrt(max(total_weight, 0.0))))))


def adaptive_radii(x: np.ndarray, y: np.ndarray, w: np.ndarray, *, k: float, h_min: float, h_max: float
                   ) -> np.ndarray:
    """Radius per point: the distance holding weight ``k`` around it, in [h_min, h_max], on a 2**(1/4) ladder.

    Points at the same coordinates are pooled first (their weights add), so a
    snapped location with many crimes gets a small radius.  When the whole
    data hold less than ``k``, or ``k`` is reached only beyond ``h_max``, the
    radius is ``h_max``.  The ladder starts at ``h_min``; ``h_max`` itself is
    kept as the top rung.

    Examples
    --------
    >>> x = np.r_[np.zeros(30), np.arange(1, 6) * 3000.0]     # 30 crimes at one spot, 5 scattered
    >>> r = adaptive_radii(x, np.zeros(35), np.ones(35), k=10, h_min=400, h_max=5000)
    >>> float(r[0]), float(r[-1])
    (400.0, 5000.0)
    """
    if x.size == 0:
        return np.zeros(0)
    unique, inverse = _unique_locations(np.asarray(x, float), np.asarray(y, float))
    weight = np.bincount(inverse, weights=w, minlength=len(unique))
    n_loc = len(unique)
    positive = weight > 0
    radius = np.full(n_loc, h_max, dtype=float)
    if positive.sum() >= 1 and weight.sum() >= k:
        tree = cKDTree(unique[positive])
        w_pos = weight[positive]
        # enough neighbours to hold weight k when every location holds at least the smallest weight
        q = int(min(positive.sum(), max(1, math.ceil(k / max(w_pos.min(), 1e-12)))))
        q = min(q, int(positive.sum()), 4096)
        rows = np.arange(n_loc)
        # whole weights: first the nearest FIRST_NEIGHBOURS, then all q for the locations still short of k
        # (the radius is the smallest distance within which the weight reaches k: the same from any list
        # of nearest neighbours that reaches it, and sums of whole numbers do not depend on their order)
        whole = bool(np.all(w_pos == np.round(w_pos)) and w_pos.sum() < 2.0**52)
        for size in ((min(FIRST_NEIGHBOURS, q), q) if whole and q > FIRST_NEIGHBOURS else (q,)):
            dist, found, first, ok = _reach(tree, unique[rows], w_pos, k, size, h_max)
            radius[rows[ok]] = dist[ok, first[ok]]
            if size == q:
                break
            rows = rows[~ok & found[:, -1]]  # all within h_max listed and still short of k: h_max
            if rows.size == 0:
                break
    radius = np.clip(radius, h_min, h_max)
    rung = np.round(np.log(radius / h_min) / math.log(LADDER))
    laddered = np.minimum(h_min * LADDER ** rung, h_max)
    laddered = np.where(radius >= h_max, h_max, laddered)
    return laddered[inverse]


def _reach(tree: cKDTree, points: np.ndarray, w_pos: np.ndarray, k: float, size: int, h_max: float):
    """The ``size`` nearest located neighbours of each point (within ``h_max``), their weight summed in order:
    distances, found mask, first position holding ``k`` and whether it is reached."""
    n_pos = w_pos.size
    dist, idx = tree.query(points, k=size, distance_upper_bound=h_max)
    dist, idx = np.atleast_2d(dist.reshape(len(points), -1)), np.atleast_2d(idx.reshape(len(points), -1))
    found = idx < n_pos
    held = np.cumsum(np.where(found, w_pos[np.minimum(idx, n_pos - 1)], 0.0), axis=1)
    reached = held >= k - 1e-9
    return dist, found, np.argmax(reached, axis=1), reached.any(axis=1)


def _unique_locations(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(np.column_stack([x, y]), axis=0, return_inverse=True)`` (rows by x, then y), by a lexsort.

    The same rows in the same order (finite coordinates), without sorting the rows as records.
    """
    order = np.lexsort((y, x))
    xs, ys = x[order], y[order]
    first = np.r_[True, (xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1])]
    inverse = np.empty(x.size, dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return np.column_stack([xs[first], ys[first]]), inverse
