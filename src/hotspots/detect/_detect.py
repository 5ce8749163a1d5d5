"""Hotspot detection on a grid and on point locations.

* :func:`kde_bandwidth`, :func:`kde_quartic` -- quartic kernel density, binned
  onto a lattice and convolved by FFT, reported per km²;
* :func:`cluster_locations` -- DBSCAN / HDBSCAN on *unique* snapped locations
  weighted by their crime counts;
* :func:`emerging_hotspot_classes` -- ArcGIS-style emerging hot spot patterns
  from per-month Gi* z-scores and p-values (computed elsewhere), with an
  explicit rule for months missing from the data;
* :func:`patrol_areas` -- contiguous significant hot cells merged into ranked,
  named patrol areas per district;
* :func:`top_k_stability` -- Jaccard / Spearman / hit rate / PAI / RRI of the
  top cells across two periods;
* :func:`hour_of_week_profile` -- counts by area x weekday x hour.

All coordinates are metres in British National Grid (EPSG:27700).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import fft as sp_fft, sparse, stats
from scipy.sparse import csgraph

from hotspots._errors import ValidationError
from hotspots.geo.grid import (
    _check_xy_metres,
    _grid_params,
    _Problems,
    _xy_arrays,
    grid_weights,
)

__all__ = [
    "KDEResult",
    "kde_bandwidth",
    "kde_quartic",
    "cluster_locations",
    "EMERGING_PATTERNS",
    "emerging_hotspot_classes",
    "patrol_areas",
    "top_k_stability",
    "hour_of_week_profile",
]

BNG = "EPSG:27700"

#: Ratio of the quartic (biweight) kernel's radius to the standard deviation of
#: an equivalent Gaussian kernel in two dimensions (canonical bandwidths,
#: Marron & Nolan 1988): (R(K_q) / mu2(K_q)^2 / (R(K_g) / mu2(K_g)^2))^(1/6)
#: with R(K_q) = 9/(5 pi), mu2(K_q) = 1/8, R(K_g) = 1/(4 pi), mu2(K_g) = 1.
QUARTIC_TO_GAUSSIAN = (2304.0 / 5.0) ** (1.0 / 6.0)  # 2.779...

#: Pattern labels of :func:`emerging_hotspot_classes`, in display order.
EMERGING_PATTERNS = [
    "new hot spot", "consecutive hot spot", "intensifying hot spot", "persistent hot spot",
    "diminishing hot spot", "sporadic hot spot", "oscillating hot spot", "historical hot spot",
    "new cold spot", "consecutive cold spot", "intensifying cold spot", "persistent cold spot",
    "diminishing cold spot", "sporadic cold spot", "oscillating cold spot", "historical cold spot",
    "no pattern detected",
]

# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def _positive_number(value: Any, name: str, problems: _Problems, hint: str) -> None:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
          and math.isfinite(value) and value > 0)
    if not ok:
        problems.add(f"{name} must be a positive number, got {value!r}", hint)


def _weights_array(weights: Any, n: int, name: str, problems: _Problems) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    try:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        problems.add(f"{name} must be numeric", f"pass {name} as one non-negative number per point")
        return np.ones(n)
    if w.size != n:
        problems.add(f"{name} has {w.size} values for {n} points", f"pass one {name} value per point")
        return np.ones(n)
    if not np.isfinite(w).all() or (w < 0).any():
        problems.add(f"{name} must be finite and non-negative (found {int((~np.isfinite(w) | (w < 0)).sum())} "
                     f"bad values)", f"fill or drop the bad {name} values first")
    return w


def _require_finite_xy(x: np.ndarray, y: np.ndarray, problems: _Problems) -> None:
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        problems.add(f"{int(bad.sum())} points have missing or non-finite coordinates",
                     "drop (and count) records without coordinates before this step")


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    keep = w > 0
    v, w = v[keep], w[keep]
    centres = np.cumsum(w) - 0.5 * w
    return float(np.interp(q * w.sum(), centres, v))


def _array_for(values: Any, n: int, name: str, problems: _Problems, *, dtype=np.float64):
    if values is None:
        return None
    array = np.asarray(values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else values)
    if array.ndim != 1 or array.size != n:
        problems.add(f"{name} has shape {array.shape}, expected one value per grid cell ({n})",
                     f"pass {name} aligned with the grid's rows")
        return None
    if dtype is not None:
        try:
            array = array.astype(dtype)
        except (TypeError, ValueError):
            problems.add(f"{name} must be numeric", f"pass {name} as numbers aligned with the grid")
            return None
        if not np.isfinite(array).all():
            problems.add(f"{name} has {int((~np.isfinite(array)).sum())} missing or non-finite values",
                         f"fill them (e.g. 0 for counts) before calling")
    return array


# --------------------------------------------------------------------------- #
# kernel density
# --------------------------------------------------------------------------- #
class KDEResult(NamedTuple):
    """Result of :func:`kde_quartic`."""

    #: Density per km² -- an array aligned with the grid's rows, or (with
    #: ``bounds``) a DataFrame with ``row, col, x_centre, y_centre, density_per_km2``.
    density: Any
    #: Kernel radius in metres.
    bandwidth_m: float
    #: How the bandwidth was chosen.
    bandwidth_reason: str


def kde_bandwidth(x: Any, y: Any, *, weights: Any = None) -> tuple[float, str]:
    """Rule-of-thumb radius for the quartic kernel, from the spread on both axes.

    Normal-reference rule (Scott 1992; in two dimensions Silverman's and Scott's
    rules coincide): the Gaussian bandwidth is ``sigma * n**(-1/6)`` with
    ``sigma = sqrt(sigma_x * sigma_y)``, the geometric mean of the two axes'
    spreads, each the smaller of the standard deviation and IQR / 1.349
    (Silverman 1986, robust to outlying points).  It is multiplied by 2.78, the
    ratio of canonical bandwidths of the quartic and Gaussian kernels in 2-D
    (Marron & Nolan 1988), to give the quartic kernel's radius ``h``.

    sfhotspot computes its default bandwidth from the x coordinates only, so a
    study area elongated east-west or north-south gets a wrong bandwidth; this
    rule uses both axes.

    Weights (counts at unique locations, or harm) enter as weighted moments and
    quantiles, with Kish's effective sample size ``n = (sum w)**2 / sum w**2``
    (equal to the number of points without weights; invariant to rescaling the
    weights).  Note that with counts at unique locations this gives a smoother
    (larger) bandwidth than the same crimes passed one row each.

    Rules of thumb oversmooth multi-modal patterns such as crime; treat the
    result as a starting point and report it.

    Returns
    -------
    bandwidth_m : float
    reason : str

    Raises
    ------
    ValidationError
        Fewer than two points with positive weight, non-finite coordinates, or
        no spread on one of the axes (all points on one line).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(530_000, 1_000, 10_000); y = rng.normal(200_000, 1_000, 10_000)
    >>> h, reason = kde_bandwidth(x, y)
    >>> round(h, -1)
    600.0
    >>> reason.split(":")[0]
    'bandwidth 596 m chosen automatically'
    """
    problems = _Problems()
    xa, ya = _xy_arrays(x, y, problems)
    problems.raise_if_any()
    w = _weights_array(weights, xa.size, "weights", problems)
    _require_finite_xy(xa, ya, problems)
    problems.raise_if_any()
    positive = w > 0
    if positive.sum() < 2:
        raise ValidationError(f"kde_bandwidth needs at least two points with positive weight, got "
                              f"{int(positive.sum())}", hint="pass bandwidth= explicitly for tiny data")
    _check_xy_metres(xa, ya)
    xa, ya, w = xa[positive], ya[positive], w[positive]
    total = w.sum()
    n_eff = total**2 / (w**2).sum()

    def spread(values):
        mean = (w * values).sum() / total
        sd = math.sqrt(max((w * (values - mean) ** 2).sum() / total, 0.0))
        iqr = _weighted_quantile(values, w, 0.75) - _weighted_quantile(values, w, 0.25)
        return min(sd, iqr / 1.349) if iqr > 0 else sd

    sigma_x, sigma_y = spread(xa), spread(ya)
    sigma = math.sqrt(sigma_x * sigma_y)
    if not sigma > 0:
        raise ValidationError(
            f"the points have no spread on one axis (sigma_x = {sigma_x:.1f} m, sigma_y = {sigma_y:.1f} m)",
            hint="pass bandwidth= explicitly (e.g. 3 to 5 cell sizes)",
        )
    h = QUARTIC_TO_GAUSSIAN * sigma * n_eff ** (-1.0 / 6.0)
    reason = (f"bandwidth {h:,.0f} m chosen automatically: normal-reference rule on both axes, "
              f"h = 2.78 x sigma x n^(-1/6) with sigma = sqrt({sigma_x:,.0f} m x {sigma_y:,.0f} m) = "
              f"{sigma:,.0f} m (each axis the smaller of SD and IQR/1.349) and n = {n_eff:,.0f}"
              f"{' (effective, from the weights)' if weights is not None else ''}; "
              f"2.78 converts a Gaussian bandwidth to the quartic kernel's radius")
    return float(h), reason


def _quartic_kernel(cell: float, h: float) -> np.ndarray:
    reach = int(math.ceil(h / cell))
    offsets = np.arange(-reach, reach + 1) * cell
    d2 = offsets[None, :] ** 2 + offsets[:, None] ** 2
    u = np.clip(1.0 - d2 / (h * h), 0.0, None)
    return 3.0 / (math.pi * h * h) * u * u


def _binned_density(x, y, w, h, cell, node_x0, node_y0, n_x, n_y) -> np.ndarray:
    """Quartic KDE (per m²) at the nodes node_x0 + i*cell, node_y0 + j*cell."""
    margin = int(math.ceil(h / cell)) + 1
    bx0, by0 = node_x0 - margin * cell, node_y0 - margin * cell
    nbx, nby = n_x + 2 * margin, n_y + 2 * margin
    # linear binning: each point's weight is shared among its four surrounding
    # nodes, an O(cell²) error instead of O(cell) for nearest-node binning
    fx, fy = (x - bx0) / cell, (y - by0) / cell
    ix, iy = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
    tx, ty = fx - ix, fy - iy
    binned = np.zeros(nby * nbx)
    for dx, dy, share in ((0, 0, (1 - tx) * (1 - ty)), (1, 0, tx * (1 - ty)),
                          (0, 1, (1 - tx) * ty), (1, 1, tx * ty)):
        jx, jy = ix + dx, iy + dy
        # nodes outside the padded lattice are further than h from every output node
        ok = (jx >= 0) & (jx < nbx) & (jy >= 0) & (jy < nby)
        binned += np.bincount(jy[ok] * nbx + jx[ok], weights=(w * share)[ok], minlength=nby * nbx)
    binned = binned.reshape(nby, nbx)
    kernel = _quartic_kernel(cell, h)
    density = _fftconvolve_same(binned, kernel)
    density = density[margin:margin + n_y, margin:margin + n_x]
    # FFT round-off leaves tiny negative values where the true density is zero
    return np.clip(density, 0.0, None)


def _fftconvolve_same(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``scipy.signal.fftconvolve(image, kernel, mode="same")`` for 2-D float arrays, with the same operations.

    The same padded real FFTs (``scipy.fft.rfftn``/``irfftn`` at
    ``next_fast_len`` of the full size) and the same centred slice, so the
    result is bit-for-bit SciPy's (tested), without importing ``scipy.signal``
    (half a second in every fresh process).  An axis of length 1 in either
    array is left to SciPy itself, which treats it specially.
    """
    if min(image.shape + kernel.shape) < 2:
        from scipy import signal

        return signal.fftconvolve(image, kernel, mode="same")
    full = [a + b - 1 for a, b in zip(image.shape, kernel.shape)]
    fshape = [sp_fft.next_fast_len(n, True) for n in full]
    axes = list(range(image.ndim))
    product = sp_fft.rfftn(image, fshape, axes=axes) * sp_fft.rfftn(kernel, fshape, axes=axes)
    ret = sp_fft.irfftn(product, fshape, axes=axes)[tuple(slice(n) for n in full)]
    start = [(f - s) // 2 for f, s in zip(full, image.shape)]
    return ret[tuple(slice(a, a + n) for a, n in zip(start, image.shape))]


def kde_quartic(x: Any, y: Any, *, weights: Any = None, bandwidth: float | None = None,
                cell_size: float | None = None, grid: gpd.GeoDataFrame | None = None,
                bounds: tuple[float, float, float, float] | None = None) -> KDEResult:
    """Quartic kernel density per km², binned onto a lattice and convolved by FFT.

    ``K(d) = 3 / (pi h²) (1 - d²/h²)²`` for ``d < h`` (the "quartic" kernel of
    CrimeStat and ArcGIS), so the density integrates to the total weight.  Points
    are linearly binned onto a lattice of spacing ``cell_size`` (each point's
    weight shared among its four surrounding nodes) and the binned weights are
    convolved with the kernel sampled on the lattice (as ``scipy.signal.fftconvolve``,
    zero-padded by ``h`` so nothing wraps round).  The error against a direct
    sum over points is O((cell_size / h)²); points beyond ``h`` of every output
    node contribute nothing, as in the direct sum.

    Parameters
    ----------
    x, y : array-like
        Point coordinates in metres (EPSG:27700).
    weights : array-like, optional
        Non-negative weight per point (e.g. counts at unique locations, harm).
    bandwidth : float, optional
        Kernel radius ``h`` in metres; ``None`` uses :func:`kde_bandwidth`.
    cell_size : float, optional
        Lattice spacing in metres.  Required with ``bounds``; with a square
        ``grid`` it defaults to (and normally equals) the grid's cell size, so
        the lattice nodes are the cell centres; with a hexagonal grid (or a
        different spacing) the lattice is interpolated bilinearly at the cell
        centres.
    grid : GeoDataFrame, optional
        From :func:`hotspots.grid.make_grid`: one density per grid row.
    bounds : (xmin, ymin, xmax, ymax), optional
        Instead of ``grid``: evaluate at the centres of a ``cell_size`` lattice
        (aligned to multiples of ``cell_size``) covering these bounds.  One of
        ``grid`` / ``bounds`` is required: the KDE is evaluated over the study
        area, never over the points' extent (stray points would make it huge).

    Returns
    -------
    KDEResult
        ``(density, bandwidth_m, bandwidth_reason)``; ``density`` is per km².

    Examples
    --------
    One point at a cell centre: the peak is ``3 / (pi h²)`` per m², and the
    density summed over the cells (0.01 km² each) recovers the one point.

    >>> res = kde_quartic([550.0], [550.0], bandwidth=300, cell_size=100, bounds=(0, 0, 1000, 1000))
    >>> res.density.shape
    (100, 5)
    >>> peak = res.density["density_per_km2"].max()
    >>> bool(np.isclose(peak, 3 / (math.pi * 300**2) * 1e6))
    True
    >>> round(float(res.density["density_per_km2"].sum() * 0.01), 2)
    1.0
    """
    problems = _Problems()
    xa, ya = _xy_arrays(x, y, problems)
    problems.raise_if_any()
    w = _weights_array(weights, xa.size, "weights", problems)
    _require_finite_xy(xa, ya, problems)
    if bandwidth is not None:
        _positive_number(bandwidth, "bandwidth", problems, "pass the kernel radius in metres, e.g. bandwidth=500")
    if cell_size is not None:
        _positive_number(cell_size, "cell_size", problems, "pass the lattice spacing in metres, e.g. cell_size=100")
    if (grid is None) == (bounds is None):
        problems.add("pass exactly one of grid= or bounds=",
                     "use grid=make_grid(area, cell_size), or bounds=area.total_bounds with cell_size=")
    if bounds is not None:
        try:
            xmin, ymin, xmax, ymax = (float(v) for v in bounds)
            if not (xmin < xmax and ymin < ymax):
                raise ValueError
        except (TypeError, ValueError):
            problems.add(f"bounds must be (xmin, ymin, xmax, ymax) with xmin < xmax, ymin < ymax, got {bounds!r}",
                         "pass e.g. area.total_bounds")
        if cell_size is None:
            problems.add("cell_size is required with bounds=", "pass cell_size= in metres, e.g. 100")
    problems.raise_if_any()
    _check_xy_metres(xa, ya, grid.total_bounds if grid is not None else (xmin, ymin, xmax, ymax))

    if bandwidth is None:
        h, reason = kde_bandwidth(xa, ya, weights=weights)
    else:
        h, reason = float(bandwidth), f"bandwidth {float(bandwidth):,.0f} m given by the user"

    if grid is not None:
        params = _grid_params(grid)
        cell = float(cell_size) if cell_size is not None else params["cell_size"]
        rows = grid["row"].to_numpy(np.int64)
        cols = grid["col"].to_numpy(np.int64)
        if h < cell:
            raise ValidationError(f"bandwidth {h:,.0f} m is smaller than the lattice spacing {cell:,.0f} m",
                                  hint="use a bandwidth of at least one cell (typically 3 or more)")
        if len(grid) == 0:
            return KDEResult(np.zeros(0), h, reason)
        if params["shape"] == "square" and cell == params["cell_size"]:
            n_x, n_y = int(cols.max()) + 1, int(rows.max()) + 1
            lattice = _binned_density(xa, ya, w, h, cell, params["x0"] + cell / 2, params["y0"] + cell / 2,
                                      n_x, n_y)
            values = lattice[rows, cols]
        else:
            xc = grid["x_centre"].to_numpy(np.float64)
            yc = grid["y_centre"].to_numpy(np.float64)
            node_x0 = math.floor(xc.min() / cell) * cell
            node_y0 = math.floor(yc.min() / cell) * cell
            n_x = int(math.floor((xc.max() - node_x0) / cell)) + 2
            n_y = int(math.floor((yc.max() - node_y0) / cell)) + 2
            lattice = _binned_density(xa, ya, w, h, cell, node_x0, node_y0, n_x, n_y)
            fx, fy = (xc - node_x0) / cell, (yc - node_y0) / cell
            ix = np.clip(np.floor(fx).astype(np.int64), 0, n_x - 2)
            iy = np.clip(np.floor(fy).astype(np.int64), 0, n_y - 2)
            tx, ty = fx - ix, fy - iy
            values = (lattice[iy, ix] * (1 - tx) * (1 - ty) + lattice[iy, ix + 1] * tx * (1 - ty)
                      + lattice[iy + 1, ix] * (1 - tx) * ty + lattice[iy + 1, ix + 1] * tx * ty)
        return KDEResult(values * 1e6, h, reason)

    cell = float(cell_size)
    if h < cell:
        raise ValidationError(f"bandwidth {h:,.0f} m is smaller than cell_size {cell:,.0f} m",
                              hint="use a bandwidth of at least one cell (typically 3 or more)")
    x0 = math.floor(xmin / cell) * cell
    y0 = math.floor(ymin / cell) * cell
    n_x = max(1, math.ceil((xmax - x0) / cell))
    n_y = max(1, math.ceil((ymax - y0) / cell))
    lattice = _binned_density(xa, ya, w, h, cell, x0 + cell / 2, y0 + cell / 2, n_x, n_y)
    row, col = np.divmod(np.arange(n_x * n_y), n_x)
    table = pd.DataFrame({
        "row": row, "col": col,
        "x_centre": x0 + (col + 0.5) * cell, "y_centre": y0 + (row + 0.5) * cell,
        "density_per_km2": lattice.reshape(-1) * 1e6,
    })
    return KDEResult(table, h, reason)


# --------------------------------------------------------------------------- #
# density clustering of unique locations
# --------------------------------------------------------------------------- #
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

    * ``method="dbscan"``: :class:`sklearn.cluster.DBSCAN` with
      ``sample_weight=count`` (Ester et al. 1996): a location is a core point
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
    problems = _Problems()
    xa, ya = _xy_arrays(x, y, problems)
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

    grouped = (pd.DataFrame({"x": xa, "y": ya, "count": c})
               .groupby(["x", "y"], sort=True, as_index=False)["count"].sum())
    locations = grouped.reset_index(drop=True)
    xy = locations[["x", "y"]].to_numpy(np.float64)
    loc_counts = locations["count"].to_numpy(np.float64)
    labels = np.full(len(locations), -1, dtype=np.int64)
    positive = np.flatnonzero(loc_counts > 0)
    if len(positive) >= 1:
        if method == "dbscan":
            from sklearn.cluster import DBSCAN

            labels[positive] = DBSCAN(eps=float(eps_m), min_samples=int(min_crimes)).fit(
                xy[positive], sample_weight=loc_counts[positive]).labels_
            floor_crimes = int(min_cluster_size) if min_cluster_size is not None else int(min_crimes)
        elif len(positive) >= 2:
            labels[positive] = _weighted_hdbscan(
                xy[positive], loc_counts[positive], int(min_crimes),
                int(min_cluster_size) if min_cluster_size is not None else 5)
            floor_crimes = int(min_crimes)
        else:
            floor_crimes = int(min_crimes)
        labels = _renumber_clusters(labels, xy, loc_counts, floor_crimes)
    locations["cluster"] = labels
    locations["count"] = _maybe_int(locations["count"])

    summary = _cluster_summary(xy, loc_counts, labels, float(eps_m))
    return locations, summary


def _maybe_int(series: pd.Series) -> pd.Series:
    values = series.to_numpy(np.float64)
    if np.all(values == np.round(values)):
        return series.astype(np.int64)
    return series


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
    n_clusters = labels.max() + 1
    member = labels >= 0
    total = np.bincount(labels[member], weights=counts[member], minlength=n_clusters)
    n_loc = np.bincount(labels[member], minlength=n_clusters)
    cx = np.bincount(labels[member], weights=(counts * xy[:, 0])[member], minlength=n_clusters) / total
    cy = np.bincount(labels[member], weights=(counts * xy[:, 1])[member], minlength=n_clusters) / total
    order = np.argsort(labels[member], kind="stable")
    groups = np.split(xy[member][order], np.cumsum(n_loc)[:-1])
    hulls = [shapely.convex_hull(shapely.multipoints(g)) for g in groups]
    polygons = shapely.buffer(np.array(hulls, dtype=object), eps_m / 2)
    summary = gpd.GeoDataFrame({
        "cluster": np.arange(n_clusters),
        "n_crimes": _maybe_int(pd.Series(total)),
        "n_locations": n_loc,
        "x_centroid": cx, "y_centroid": cy,
        "area_km2": shapely.area(polygons) / 1e6,
    }, geometry=gpd.GeoSeries(polygons, crs=BNG), crs=BNG)
    return summary


# --------------------------------------------------------------------------- #
# emerging hot spots
# --------------------------------------------------------------------------- #
def _mann_kendall(values: np.ndarray, chunk: int = 50_000):
    """Vectorised Mann-Kendall trend test on each row (NaN = not observed).

    S = sum over observed pairs i < j of sign(v_j - v_i); Var(S) with the tie
    correction (n(n-1)(2n+5) - sum_t t(t-1)(2t+5)) / 18; Z with continuity
    correction (S - sign(S)) / sqrt(Var); two-sided normal p.  Rows with fewer
    than three observations get NaN.
    """
    n_rows, n_t = values.shape
    z_out = np.full(n_rows, np.nan)
    p_out = np.full(n_rows, np.nan)

    def tie_term(t):
        return t * (t - 1) * (2 * t + 5)

    for start in range(0, n_rows, chunk):
        v = values[start:start + chunk]
        observed = np.isfinite(v)
        n = observed.sum(axis=1).astype(np.float64)
        s = np.zeros(len(v))
        for i in range(n_t - 1):
            diff = v[:, i + 1:] - v[:, i:i + 1]
            s += np.nansum(np.sign(diff), axis=1)
        ordered = np.sort(v, axis=1)  # NaN last
        ties = np.zeros(len(v))
        run = np.ones(len(v))
        for j in range(1, n_t):
            same = ordered[:, j] == ordered[:, j - 1]
            ties += np.where(same, tie_term(run + 1) - tie_term(run), 0.0)
            run = np.where(same, run + 1, 1.0)
        var = (tie_term(n) - ties) / 18.0
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.where(var > 0, (s - np.sign(s)) / np.sqrt(var), 0.0)
        z[n < 3] = np.nan
        z_out[start:start + chunk] = z
        p_out[start:start + chunk] = 2 * stats.norm.sf(np.abs(z))
    return z_out, p_out


def emerging_hotspot_classes(z: Any, p: Any, *, months: Any, trend_p: float = 0.05, alpha: float = 0.05,
                             final_share: float = 0.9) -> pd.DataFrame:
    """Emerging hot spot pattern of each cell from its monthly Gi* series.

    Follows ArcGIS Pro's "How Emerging Hot Spot Analysis works" (Esri): a bin is
    a *hot* bin when Gi* p < ``alpha`` and z > 0, a *cold* bin when p < ``alpha``
    and z < 0; the trend is a Mann-Kendall test (Mann 1945; Kendall 1975; ties
    corrected) on the cell's z-score series, significant when its p <
    ``trend_p``.  "90 percent" below is ``final_share``.

    Hot spot patterns (cold spot patterns are the mirror image, swapping hot
    and cold and the direction of the trend):

    * **new**: hot in the final time step, never a significant hot (or cold)
      spot before;
    * **consecutive**: a single uninterrupted run of at least two hot bins
      ending in the final time step, never significant before the run, and
      less than 90 % of the time steps hot;
    * **intensifying**: hot in at least 90 % of the time steps, including the
      final one, with a significant *increasing* trend in z;
    * **persistent**: hot in at least 90 % of the time steps, including the
      final one, with no significant trend;
    * **diminishing**: hot in at least 90 % of the time steps, including the
      final one, with a significant *decreasing* trend;
    * **sporadic**: hot in the final time step, on-again off-again before
      (hot bins before the final run), less than 90 % hot, never cold;
    * **oscillating**: hot in the final time step, with at least one cold bin
      earlier, less than 90 % hot;
    * **historical**: *not* hot in the final time step, but hot in at least
      90 % of the time steps;
    * **no pattern detected**: none of the above.

    The final time step decides the family first: a cell hot in its final step
    gets a hot pattern, cold -> a cold pattern, neither -> historical or no
    pattern (so a cell that was hot 90 % of the time and is cold now is an
    *oscillating cold spot*, not a historical hot spot).  ArcGIS's "new" only
    excludes earlier hot bins; like R's sfdep we also exclude earlier cold
    bins, which makes such a cell *oscillating*.

    With few observed months the 90 % rules dominate (a cell hot in its only
    observed month is "persistent"); ArcGIS asks for at least ten time steps,
    and so should the caller.

    Months missing from the data (NaN z and p) are **not** "not significant"
    months: every definition is applied to the observed months only -- the
    shares are of observed months, the final time step is the cell's last
    observed month (reported as ``final_month``), and the Mann-Kendall test
    uses the observed months.  A run is "consecutive" only over calendar-
    consecutive observed months: a gap (a NaN month, or a month absent from
    ``months``) ends the run, so hot bins before the gap count as earlier hot
    bins (making the cell sporadic rather than consecutive).

    Parameters
    ----------
    z, p : array-like of shape (n_cells, n_months)
        Gi* z-scores and p-values per cell and month (NaN where missing; z and
        p must be missing together).
    months : sequence of length n_months
        Month of each column ("YYYY-MM", Period or Timestamp), strictly
        increasing; used to find calendar gaps.
    trend_p : float, default 0.05
    alpha : float, default 0.05
        Significance level of a single bin (pass FDR-adjusted p-values to
        control multiple testing).
    final_share : float, default 0.9

    Returns
    -------
    DataFrame
        One row per cell (same order as ``z``): ``pattern``, ``mk_z``, ``mk_p``,
        ``n_sig_hot``, ``n_sig_cold``, ``n_observed_months``, ``final_month``.

    Examples
    --------
    >>> z = np.array([[0.1, 0.2, 0.1, 3.0],      # hot only in the last month
    ...               [3.0, 3.1, 3.2, 3.3],      # hot throughout
    ...               [3.0, np.nan, 0.1, 0.2]])  # hot once, gap, then not
    >>> p = np.where(np.abs(z) > 2, 0.001, 0.5); p[np.isnan(z)] = np.nan
    >>> out = emerging_hotspot_classes(z, p, months=["2024-01", "2024-02", "2024-03", "2024-04"])
    >>> out["pattern"].tolist()
    ['new hot spot', 'persistent hot spot', 'no pattern detected']
    >>> out["n_observed_months"].tolist()
    [4, 4, 3]
    """
    problems = _Problems()
    try:
        za = np.asarray(z.to_numpy() if isinstance(z, pd.DataFrame) else z, dtype=np.float64)
        pa = np.asarray(p.to_numpy() if isinstance(p, pd.DataFrame) else p, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError("z and p must be numeric arrays of shape (n_cells, n_months)",
                              hint="pass the Gi* z-scores and p-values as 2-D arrays") from None
    if za.ndim != 2 or za.shape != pa.shape:
        problems.add(f"z and p must be 2-D arrays of the same shape, got {za.shape} and {pa.shape}",
                     "pass cells as rows and months as columns")
    for name, value in (("trend_p", trend_p), ("alpha", alpha)):
        if not isinstance(value, (int, float)) or not 0 < value < 1:
            problems.add(f"{name} must be between 0 and 1, got {value!r}", f"e.g. {name}=0.05")
    if not isinstance(final_share, (int, float)) or not 0 < final_share <= 1:
        problems.add(f"final_share must be in (0, 1], got {final_share!r}", "use final_share=0.9 (ArcGIS)")
    try:
        periods = pd.PeriodIndex(pd.Series(list(months)).astype(str).str.slice(0, 7), freq="M")
    except (TypeError, ValueError) as exc:
        periods = None
        problems.add(f"months could not be read as months: {exc}", "pass 'YYYY-MM' strings, one per column")
    problems.raise_if_any()
    if len(periods) != za.shape[1]:
        problems.add(f"months has {len(periods)} entries for {za.shape[1]} columns of z",
                     "pass one month per column")
    ordinal = (periods.year.to_numpy() * 12 + periods.month.to_numpy()).astype(np.int64)
    if len(ordinal) > 1 and (np.diff(ordinal) <= 0).any():
        problems.add("months must be strictly increasing (no repeats)", "sort the columns by month")
    observed = np.isfinite(za) & np.isfinite(pa)
    mismatch = np.isfinite(za) != np.isfinite(pa)
    if mismatch.any():
        problems.add(f"z and p are missing in different places ({int(mismatch.sum())} entries)",
                     "mark a month as missing with NaN in both z and p")
    valid_p = pa[np.isfinite(pa)]
    if valid_p.size and ((valid_p < 0) | (valid_p > 1)).any():
        problems.add("p has values outside [0, 1]", "pass p-values, not z-scores or percentages")
    problems.raise_if_any()

    n_cells, n_t = za.shape
    with np.errstate(invalid="ignore"):
        significant = observed & (pa < alpha)
        hot = significant & (za > 0)
        cold = significant & (za < 0)
    n_obs = observed.sum(axis=1)
    n_hot = hot.sum(axis=1)
    n_cold = cold.sum(axis=1)

    # final time step = last observed month of each cell
    has_obs = n_obs > 0
    final = np.where(has_obs, n_t - 1 - np.argmax(observed[:, ::-1], axis=1), 0)
    cells = np.arange(n_cells)
    final_hot = has_obs & hot[cells, final]
    final_cold = has_obs & cold[cells, final]

    # length of the run ending at each column: consecutive observed calendar
    # months, all hot (or all cold); a gap ends the run
    linked = np.zeros((n_cells, n_t), dtype=bool)
    if n_t > 1:
        linked[:, 1:] = observed[:, 1:] & observed[:, :-1] & (np.diff(ordinal) == 1)[None, :]
    hot_run = np.zeros(n_cells, dtype=np.int64)
    cold_run = np.zeros(n_cells, dtype=np.int64)
    final_hot_run = np.zeros(n_cells, dtype=np.int64)
    final_cold_run = np.zeros(n_cells, dtype=np.int64)
    for t in range(n_t):
        hot_run = np.where(hot[:, t], np.where(linked[:, t], hot_run, 0) + 1, 0)
        cold_run = np.where(cold[:, t], np.where(linked[:, t], cold_run, 0) + 1, 0)
        at_final = final == t
        final_hot_run[at_final] = hot_run[at_final]
        final_cold_run[at_final] = cold_run[at_final]

    mk_z, mk_p = _mann_kendall(np.where(observed, za, np.nan))
    with np.errstate(invalid="ignore"):
        trend_up = (mk_p < trend_p) & (mk_z > 0)
        trend_down = (mk_p < trend_p) & (mk_z < 0)
    tolerance = 1e-9
    mostly_hot = has_obs & (n_hot >= final_share * n_obs - tolerance)
    mostly_cold = has_obs & (n_cold >= final_share * n_obs - tolerance)

    pattern = np.full(n_cells, "no pattern detected", dtype=object)

    def assign(family, final_mask, mostly, n_same, n_other, run, rising, falling):
        other_before = n_other > 0
        same_before_run = (n_same - run) > 0
        rules = [
            (final_mask & mostly & rising, f"intensifying {family}"),
            (final_mask & mostly & falling, f"diminishing {family}"),
            (final_mask & mostly, f"persistent {family}"),
            (final_mask & other_before, f"oscillating {family}"),
            (final_mask & ~same_before_run & (run == 1), f"new {family}"),
            (final_mask & ~same_before_run & (run >= 2), f"consecutive {family}"),
            (final_mask, f"sporadic {family}"),
        ]
        done = np.zeros(n_cells, dtype=bool)
        for mask, label in rules:
            take = mask & ~done
            pattern[take] = label
            done |= take

    assign("hot spot", final_hot, mostly_hot, n_hot, n_cold, final_hot_run, trend_up, trend_down)
    # for cold spots, an intensifying trend is z falling further below zero
    assign("cold spot", final_cold, mostly_cold, n_cold, n_hot, final_cold_run, trend_down, trend_up)
    neither = has_obs & ~final_hot & ~final_cold
    pattern[neither & mostly_hot] = "historical hot spot"
    pattern[neither & mostly_cold] = "historical cold spot"

    final_month = np.where(has_obs, periods.astype(str).to_numpy()[final], "")
    return pd.DataFrame({
        "pattern": pattern.astype(str),
        "mk_z": mk_z,
        "mk_p": mk_p,
        "n_sig_hot": n_hot,
        "n_sig_cold": n_cold,
        "n_observed_months": n_obs,
        "final_month": final_month,
    })


# --------------------------------------------------------------------------- #
# patrol areas
# --------------------------------------------------------------------------- #
def patrol_areas(grid: gpd.GeoDataFrame, cell_class: Any, *, counts: Any, harm: Any = None,
                 rank_by: str = "count", min_cells: int = 1, top_n: int | None = None, group: Any = None,
                 name_lookup: Any = None, gi_z: Any = None) -> gpd.GeoDataFrame:
    """Merge contiguous significant hot cells into ranked patrol areas.

    Cells whose ``cell_class`` starts with ``"hot"`` (e.g. ``hot_99``,
    ``hot_95``, ``hot_90``) are joined with their queen neighbours (cells sharing
    an edge or a corner, from :func:`hotspots.grid.grid_weights`) into
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
        From :func:`hotspots.grid.make_grid`.
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
    >>> areas = patrol_areas(grid, ["hot_95", "hot_99", "ns", "hot_95", "ns"], counts=[5, 9, 0, 30, 1])
    >>> areas[["patrol_area_id", "n_cells", "count"]].values.tolist()
    [['PA-ALL-01', 1, 30], ['PA-ALL-02', 2, 14]]
    """
    problems = _Problems()
    if not isinstance(grid, gpd.GeoDataFrame):
        raise ValidationError(f"grid must be a GeoDataFrame from make_grid, got {type(grid).__name__}",
                              hint="build it with hotspots.grid.make_grid(area, cell_size)")
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

    sub = grid.iloc[hot]
    weights = grid_weights(sub, neighbourhood="queen", include_self=False).tocoo()
    same = group_labels[hot][weights.row] == group_labels[hot][weights.col]
    links = sparse.csr_matrix((np.ones(int(same.sum())), (weights.row[same], weights.col[same])),
                              shape=(len(hot), len(hot)))
    _, component = csgraph.connected_components(links, directed=False)

    cell_ids = sub["cell_id"].astype(str).to_numpy()
    # per component: numeric columns summed by groupby (the same kernels as a named aggregation), the
    # group and the smallest cell id by numpy (no string group-by)
    frame = pd.DataFrame({"count": count_values[hot], "area_km2": sub["cell_area_km2"].to_numpy(np.float64)})
    if harm is not None:
        frame["harm"] = harm_values[hot]
    by = frame.groupby(component, sort=True)
    areas = by[["area_km2", "count"] + (["harm"] if harm is not None else [])].sum()
    order = np.lexsort((cell_ids.astype(str), component))
    first_of = order[np.r_[0, np.flatnonzero(np.diff(component[order])) + 1]]  # components are 0..k-1
    areas.insert(0, "group", pd.array(group_labels[hot][first_of], dtype="str"))
    areas.insert(1, "n_cells", np.bincount(component))
    areas.insert(4, "first_cell", pd.array(cell_ids[first_of], dtype="str"))
    if gi_z is not None:
        z = pd.Series(z_values[hot]).groupby(component, sort=True)
        areas["mean_gi_z"] = z.mean().to_numpy()
        areas["max_gi_z"] = z.max().to_numpy()
    areas.index.name = "component"
    areas = areas[areas["n_cells"] >= min_cells]
    key = "harm" if rank_by == "harm" else "count"
    areas = areas.assign(_key=-areas[key], _count=-areas["count"]).sort_values(
        ["group", "_key", "_count", "first_cell"], kind="stable")
    areas["rank"] = areas.groupby("group", sort=False).cumcount() + 1
    if top_n is not None:
        areas = areas[areas["rank"] <= top_n]
    areas["patrol_area_id"] = [f"PA-{g}-{r:02d}" for g, r in zip(areas["group"], areas["rank"])]
    if name_lookup is not None:
        lookup = dict(name_lookup)
        areas["group_name"] = [str(lookup.get(g, "")) for g in areas["group"]]

    geoms = np.asarray(sub.geometry.values)
    members = pd.Series(component).groupby(component).indices
    polygons, ids_text = [], []
    for comp in areas.index:
        idx = members[comp]
        polygons.append(shapely.union_all(geoms[idx], grid_size=0.001))
        ids_text.append(";".join(sorted(cell_ids[idx])))
    polygons = np.array(polygons, dtype=object)
    centroids = shapely.centroid(polygons)
    areas["x_centroid"] = shapely.get_x(centroids)
    areas["y_centroid"] = shapely.get_y(centroids)
    areas["cell_ids"] = ids_text
    areas["count"] = _maybe_int(areas["count"])
    result = gpd.GeoDataFrame(areas.reset_index(drop=True), geometry=gpd.GeoSeries(polygons, crs=crs), crs=crs)
    return result[columns]


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


# --------------------------------------------------------------------------- #
# stability and prediction indices
# --------------------------------------------------------------------------- #
def top_k_stability(counts_t1: Any, counts_t2: Any, *, top_share: float = 0.05,
                    cell_area: Any = None) -> dict:
    """How stable the top cells are across two periods, and how well period 1 predicts period 2.

    The top ``k = ceil(top_share * n_cells)`` cells of each period are those
    with the most crimes; ties at the cut-off go to the earlier cell (by
    Series index label when Series are given, else by position), so ``k`` is
    exact.

    * ``jaccard``: |top1 ∩ top2| / |top1 ∪ top2|;
    * ``spearman_rho``, ``spearman_p``: rank correlation of all cells' counts
      (``scipy.stats.spearmanr``, ties averaged);
    * ``hit_rate_t1``, ``hit_rate_t2``: share of period-1 / period-2 crimes in
      the period-1 top cells (n/N);
    * ``pai_t1``, ``pai_t2``: Prediction Accuracy Index (Chainey et al. 2008)
      ``(n/N) / (a/A)`` of the period-1 top cells in each period, where
      ``a/A`` is their share of the area (equal-area cells unless
      ``cell_area`` is given);
    * ``rri``: Recapture Rate Index (Levine 2008) ``pai_t2 / pai_t1``.

    Parameters
    ----------
    counts_t1, counts_t2 : array-like or Series
        Crimes per cell in each period, aligned (same cells, same order).
    top_share : float, default 0.05
    cell_area : array-like, optional
        Area of each cell (e.g. the clipped ``cell_area_km2``).

    Returns
    -------
    dict
        ``k, n_cells, top_share, area_share, jaccard, spearman_rho, spearman_p,
        hit_rate_t1, hit_rate_t2, pai_t1, pai_t2, rri``.

    Examples
    --------
    >>> out = top_k_stability([10, 8, 1, 0, 0, 1, 0, 0, 0, 0], [9, 2, 7, 0, 0, 0, 1, 0, 0, 1], top_share=0.2)
    >>> out["k"], out["jaccard"], round(out["hit_rate_t2"], 3), round(out["pai_t2"], 2)
    (2, 0.3333333333333333, 0.55, 2.75)
    """
    problems = _Problems()
    labels = None
    if isinstance(counts_t1, pd.Series) and isinstance(counts_t2, pd.Series):
        if not counts_t1.index.equals(counts_t2.index):
            problems.add("counts_t1 and counts_t2 have different indexes",
                         "align them first, e.g. counts_t2 = counts_t2.reindex(counts_t1.index, fill_value=0)")
        labels = counts_t1.index
    first = np.asarray(counts_t1, dtype=np.float64).reshape(-1)
    second = np.asarray(counts_t2, dtype=np.float64).reshape(-1)
    if first.size != second.size:
        problems.add(f"counts_t1 and counts_t2 differ in length ({first.size} vs {second.size})",
                     "pass counts for the same cells in the same order")
    for name, values in (("counts_t1", first), ("counts_t2", second)):
        if not np.isfinite(values).all() or (values < 0).any():
            problems.add(f"{name} must be finite and non-negative", f"fill missing {name} with 0")
    if not isinstance(top_share, (int, float)) or not 0 < top_share <= 1:
        problems.add(f"top_share must be in (0, 1], got {top_share!r}", "e.g. top_share=0.05 (top 5% of cells)")
    area = None
    if cell_area is not None:
        area = np.asarray(cell_area, dtype=np.float64).reshape(-1)
        if area.size != first.size or not np.isfinite(area).all() or (area <= 0).any():
            problems.add("cell_area must be positive, one per cell", "pass grid['cell_area_km2']")
    if first.size == 0:
        problems.add("no cells given", "pass counts for at least one cell")
    problems.raise_if_any()

    n_cells = first.size
    k = max(1, math.ceil(top_share * n_cells - 1e-9))
    tiebreak = np.arange(n_cells) if labels is None else np.argsort(np.argsort(labels, kind="stable"))

    def top(values):
        return set(np.lexsort((tiebreak, -values))[:k].tolist())

    top1, top2 = top(first), top(second)
    jaccard = len(top1 & top2) / len(top1 | top2)
    if n_cells >= 2 and np.ptp(first) > 0 and np.ptp(second) > 0:
        result = stats.spearmanr(first, second)
        rho, rho_p = float(result.statistic), float(result.pvalue)
    else:
        rho, rho_p = math.nan, math.nan
    chosen = np.fromiter(top1, dtype=np.int64)
    area_share = (k / n_cells) if area is None else float(area[chosen].sum() / area.sum())
    total1, total2 = first.sum(), second.sum()
    hit1 = float(first[chosen].sum() / total1) if total1 > 0 else math.nan
    hit2 = float(second[chosen].sum() / total2) if total2 > 0 else math.nan
    pai1, pai2 = hit1 / area_share, hit2 / area_share
    rri = pai2 / pai1 if pai1 and not math.isnan(pai1) else math.nan
    return {
        "k": int(k), "n_cells": int(n_cells), "top_share": float(top_share), "area_share": float(area_share),
        "jaccard": float(jaccard), "spearman_rho": rho, "spearman_p": rho_p,
        "hit_rate_t1": hit1, "hit_rate_t2": hit2, "pai_t1": float(pai1), "pai_t2": float(pai2), "rri": float(rri),
    }


# --------------------------------------------------------------------------- #
# temporal profile
# --------------------------------------------------------------------------- #
_DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def hour_of_week_profile(timestamps: Any, area_ids: Any) -> pd.DataFrame:
    """Counts by area x weekday x hour, for records that carry a time of day.

    police.uk data has only the month; this is for force extracts with
    timestamps.  Time-zone-aware timestamps are converted to Europe/London;
    naive ones are taken as UK local time.  Records without a timestamp or an
    area are not counted, and how many were left out is reported in
    ``attrs["dropped"]``.  ``attrs["n_exact_midnight"]`` counts timestamps at
    exactly 00:00:00, often a placeholder for an unknown time: a spike at
    hour 0 should be read with that in mind.

    Returns
    -------
    DataFrame
        Every area x 168 hours of the week (zeros included), sorted:
        ``area_id, weekday`` (0 = Monday), ``day`` ("Mon"...), ``hour`` (0-23),
        ``hour_of_week`` (0-167, Monday 00:00 = 0), ``count``.

    Examples
    --------
    >>> ts = pd.to_datetime(["2024-03-04 22:15", "2024-03-04 22:50", "2024-03-10 03:00"])
    >>> out = hour_of_week_profile(ts, ["A", "A", "B"])
    >>> len(out), int(out["count"].sum())
    (336, 3)
    >>> out.loc[out["count"] > 0, ["area_id", "day", "hour", "count"]].values.tolist()
    [['A', 'Mon', 22, 2], ['B', 'Sun', 3, 1]]
    """
    stamps = pd.Series(pd.to_datetime(pd.Series(timestamps).reset_index(drop=True), errors="coerce"))
    areas = pd.Series(area_ids).reset_index(drop=True)
    if len(stamps) != len(areas):
        raise ValidationError(f"timestamps ({len(stamps)}) and area_ids ({len(areas)}) differ in length",
                              hint="pass one area id per record")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("Europe/London")
    missing_time = stamps.isna()
    missing_area = areas.isna() & ~missing_time
    keep = ~missing_time & ~areas.isna()
    kept = stamps[keep]
    frame = pd.DataFrame({
        "area_id": areas[keep].to_numpy(),
        "weekday": kept.dt.day_of_week.to_numpy(np.int64),
        "hour": kept.dt.hour.to_numpy(np.int64),
    })
    counts = frame.groupby(["area_id", "weekday", "hour"]).size()
    area_values = pd.unique(areas[keep])
    try:
        area_values = np.sort(area_values)
    except TypeError:
        pass
    full = pd.MultiIndex.from_product([area_values, range(7), range(24)], names=["area_id", "weekday", "hour"])
    out = counts.reindex(full, fill_value=0).rename("count").reset_index()
    out["count"] = out["count"].astype(np.int64)
    out.insert(2, "day", [_DAY_NAMES[d] for d in out["weekday"]])
    out.insert(4, "hour_of_week", out["weekday"] * 24 + out["hour"])
    out.attrs["dropped"] = {"missing_timestamp": int(missing_time.sum()), "missing_area": int(missing_area.sum())}
    midnight = kept.dt.hour.eq(0) & kept.dt.minute.eq(0) & kept.dt.second.eq(0)
    out.attrs["n_exact_midnight"] = int(midnight.sum())
    return out
