"""Quartic kernel density: a two-axis bandwidth rule, adaptive radii, linear binning and FFT convolution.

:func:`kde_bandwidth` chooses one kernel radius; :func:`kde_quartic` gives
the density per km² at grid cells or on a lattice, with one radius, a radius
per point, or ``bandwidth="adaptive"`` (k-nearest-neighbour radii between two
cells and the normal-reference radius, :mod:`hotspots.detect._bandwidth`);
:func:`kde_cells` is the analysis's call.  Coordinates are metres in British
National Grid (EPSG:27700).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import fft as sp_fft

from hotspots._errors import ValidationError
from hotspots._validate import _check_xy, _check_xy_metres, _looks_like_lonlat, _Problems
from hotspots.detect._bandwidth import LADDER, adaptive_radii, neighbour_count
from hotspots.detect._checks import _positive_number, _require_finite_xy, _weights_array
from hotspots.geo._lattice import _grid_params

__all__ = ["KDEResult", "QUARTIC_TO_GAUSSIAN", "kde_bandwidth", "kde_cells", "kde_quartic"]

#: Smallest adaptive radius, in grid cells (below it the binned density is no longer accurate).
ADAPTIVE_MIN_CELLS = 2

#: Ratio of the quartic (biweight) kernel's radius to the standard deviation of
#: an equivalent Gaussian kernel in two dimensions (canonical bandwidths,
#: Marron & Nolan 1988): (R(K_q) / mu2(K_q)^2 / (R(K_g) / mu2(K_g)^2))^(1/6)
#: with R(K_q) = 9/(5 pi), mu2(K_q) = 1/8, R(K_g) = 1/(4 pi), mu2(K_g) = 1.
QUARTIC_TO_GAUSSIAN = (2304.0 / 5.0) ** (1.0 / 6.0)  # 2.779...


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    return _weighted_quantiles(values, weights, (q,))[0]


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """:func:`_weighted_quantile` at each of ``qs``, from one sort (the same numbers as one call per q).

    With equal positive weights (the KDE's unweighted points) the order of equal values does not matter,
    so the values are sorted directly (no stable argsort and gather): the same arrays, the same numbers.
    Zeros (0.0 and -0.0 sort as equal) and NaN take the general route.
    """
    if _equal_weights(values, weights):
        v, w = np.sort(values), weights
    else:
        order = np.argsort(values, kind="stable")
        v, w = values[order], weights[order]
    keep = w > 0
    v, w = v[keep], w[keep]
    centres = np.cumsum(w) - 0.5 * w
    total = w.sum()
    return [float(np.interp(q * total, centres, v)) for q in qs]



def _equal_weights(values, weights) -> bool:
    """Float64 vectors of one length, the weights all the same positive number, the values finite and non-zero."""
    if not (isinstance(values, np.ndarray) and isinstance(weights, np.ndarray) and values.ndim == 1
            and weights.shape == values.shape and values.size and values.dtype == np.float64
            and weights.dtype == np.float64):
        return False
    w0 = weights[0]
    return bool(w0 > 0 and np.all(weights == w0) and np.isfinite(values).all() and np.all(values != 0))


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
    problems = _Problems("kde_bandwidth")
    xa, ya = _check_xy(problems, x, y)
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
        upper, lower = _weighted_quantiles(values, w, (0.75, 0.25))
        iqr = upper - lower
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


@functools.lru_cache(maxsize=64)
def _quartic_kernel(cell: float, h: float) -> np.ndarray:
    """The quartic kernel's weights on the lattice offsets within ``h`` (read-only: kept, the radii of a study
    area's selections share a ladder)."""
    reach = int(math.ceil(h / cell))
    offsets = np.arange(-reach, reach + 1) * cell
    d2 = offsets[None, :] ** 2 + offsets[:, None] ** 2
    u = np.clip(1.0 - d2 / (h * h), 0.0, None)
    kernel = 3.0 / (math.pi * h * h) * u * u
    kernel.flags.writeable = False
    return kernel


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
    # every point's four nodes inside the padded lattice (the usual case): no masks, the same sums
    inside = ix.size == 0 or (ix.min() >= 0 and ix.max() + 1 < nbx and iy.min() >= 0 and iy.max() + 1 < nby)
    node = iy * nbx + ix if inside else None
    for dx, dy, share in ((0, 0, (1 - tx) * (1 - ty)), (1, 0, tx * (1 - ty)),
                          (0, 1, (1 - tx) * ty), (1, 1, tx * ty)):
        if inside:
            binned += np.bincount(node + (dy * nbx + dx), weights=w * share, minlength=nby * nbx)
            continue
        jx, jy = ix + dx, iy + dy
        # nodes outside the padded lattice are further than h from every output node
        ok = (jx >= 0) & (jx < nbx) & (jy >= 0) & (jy < nby)
        binned += np.bincount(jy[ok] * nbx + jx[ok], weights=(w * share)[ok], minlength=nby * nbx)
    binned = binned.reshape(nby, nbx)
    kernel = _quartic_kernel(cell, h)
    density = _fftconvolve_same(binned, kernel, kernel_key=("quartic", float(cell), float(h)))
    density = density[margin:margin + n_y, margin:margin + n_x]
    # FFT round-off leaves tiny negative values where the true density is zero
    return np.clip(density, 0.0, None)


def _density_by_radius(x, y, w, radius, cell, node_x0, node_y0, n_x, n_y) -> np.ndarray:
    """:func:`_binned_density` with a radius per point: one convolution per distinct radius, summed."""
    if np.ndim(radius) == 0:
        return _binned_density(x, y, w, float(radius), cell, node_x0, node_y0, n_x, n_y)
    total = np.zeros((n_y, n_x))
    if np.size(radius) == 0:
        return total
    # the points of each radius in their order (a stable sort: the subsets ``radius == h`` would give)
    order = np.argsort(radius, kind="stable")
    ranked = radius[order]
    bounds = np.r_[0, np.flatnonzero(ranked[1:] != ranked[:-1]) + 1, ranked.size]
    xs, ys, ws = x[order], y[order], w[order]
    for a, b in zip(bounds[:-1], bounds[1:]):
        total += _binned_density(xs[a:b], ys[a:b], ws[a:b], float(ranked[a]), cell, node_x0, node_y0, n_x, n_y)
    return total


def _fftconvolve_same(image: np.ndarray, kernel: np.ndarray, kernel_key: tuple | None = None) -> np.ndarray:
    """``scipy.signal.fftconvolve(image, kernel, mode="same")`` for 2-D float arrays, with the same operations.

    The same padded real FFTs (``scipy.fft.rfftn``/``irfftn`` at
    ``next_fast_len`` of the full size) and the same centred slice, so the
    result is bit-for-bit SciPy's (tested), without importing ``scipy.signal``
    (half a second in every fresh process).  An axis of length 1 in either
    array is left to SciPy itself, which treats it specially.

    ``kernel_key``: a hashable key that determines ``kernel`` (the quartic kernel's ``(cell, h)``); its
    transform is then computed once per padded shape (:func:`_kernel_spectrum`), the same numbers.
    """
    if min(image.shape + kernel.shape) < 2:
        from scipy import signal

        return signal.fftconvolve(image, kernel, mode="same")
    full = [a + b - 1 for a, b in zip(image.shape, kernel.shape)]
    fshape = [sp_fft.next_fast_len(n, True) for n in full]
    axes = list(range(image.ndim))
    spectrum = (sp_fft.rfftn(kernel, fshape, axes=axes) if kernel_key is None
                else _kernel_spectrum(kernel_key, tuple(fshape), kernel))
    product = sp_fft.rfftn(image, fshape, axes=axes) * spectrum
    ret = sp_fft.irfftn(product, fshape, axes=axes)[tuple(slice(n) for n in full)]
    start = [(f - s) // 2 for f, s in zip(full, image.shape)]
    return ret[tuple(slice(a, a + n) for a, n in zip(start, image.shape))]


_SPECTRA: dict[tuple, np.ndarray] = {}

#: Kernel transforms kept (each a few hundred kB; the radii of a study area's selections share a ladder).
_SPECTRA_KEPT = 48


def _kernel_spectrum(key: tuple, fshape: tuple, kernel: np.ndarray) -> np.ndarray:
    """``scipy.fft.rfftn(kernel, fshape)``, kept for the next call with the same ``key`` and shape (read-only)."""
    found = _SPECTRA.get((key, fshape))
    if found is None:
        found = sp_fft.rfftn(kernel, list(fshape), axes=list(range(kernel.ndim)))
        found.flags.writeable = False
        if len(_SPECTRA) >= _SPECTRA_KEPT:
            _SPECTRA.pop(next(iter(_SPECTRA)))  # the oldest
        _SPECTRA[(key, fshape)] = found
    return found


def kde_quartic(x: Any, y: Any, *, weights: Any = None, bandwidth: Any = None,
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
    bandwidth : float, array-like, "adaptive" or None
        Kernel radius ``h`` in metres; ``None`` uses :func:`kde_bandwidth`;
        an array gives one radius per point (one convolution per distinct
        value, summed); ``"adaptive"``: each point's radius is the distance
        holding ``k = sqrt(total weight)`` (10 to 50) crimes around it,
        between two lattice cells and the :func:`kde_bandwidth` radius,
        rounded to steps of 2**(1/4) (:func:`hotspots.detect._bandwidth.adaptive_radii`),
        so town centres keep their detail and a rural cluster is not spread
        over the district.  ``bandwidth_m`` is then the weighted median radius.
    cell_size : float, optional
        Lattice spacing in metres.  Required with ``bounds``; with a square
        ``grid`` it defaults to (and normally equals) the grid's cell size, so
        the lattice nodes are the cell centres; with a hexagonal grid (or a
        different spacing) the lattice is interpolated bilinearly at the cell
        centres.
    grid : GeoDataFrame, optional
        From :func:`hotspots.geo.grid.make_grid`: one density per grid row.
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
    problems = _Problems("kde_quartic")
    xa, ya = _check_xy(problems, x, y)
    problems.raise_if_any()
    w = _weights_array(weights, xa.size, "weights", problems)
    _require_finite_xy(xa, ya, problems)
    per_point = None
    if isinstance(bandwidth, str):
        if bandwidth != "adaptive":
            problems.add(f"bandwidth must be a number of metres, one per point, 'adaptive' or None; got {bandwidth!r}",
                         "pass e.g. bandwidth=500 or bandwidth='adaptive'")
    elif bandwidth is not None and np.ndim(bandwidth) > 0:
        per_point = np.asarray(bandwidth, dtype=float).ravel()
        if per_point.size != xa.size or not (np.isfinite(per_point) & (per_point > 0)).all():
            problems.add(f"bandwidth as an array needs one finite radius > 0 per point ({xa.size}); got "
                         f"{per_point.size} values", "pass one radius in metres per point, or a single number")
    elif bandwidth is not None:
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
    if xa.size and _looks_like_lonlat(xa, ya):  # else the check passes whatever the bounds (not computed)
        _check_xy_metres(xa, ya, grid.total_bounds if grid is not None else (xmin, ymin, xmax, ymax))

    if grid is not None:
        params = _grid_params(grid)
        cell = float(cell_size) if cell_size is not None else params["cell_size"]
    else:
        cell = float(cell_size)
    if bandwidth is None:
        h, reason = kde_bandwidth(xa, ya, weights=weights)
        radius = h
    elif isinstance(bandwidth, str):
        radius, h, reason = _adaptive(xa, ya, w, weights is not None, cell)
    elif per_point is not None:
        radius = per_point
        h = float(np.median(per_point))
        reason = f"one radius per point given by the user ({per_point.min():,.0f} to {per_point.max():,.0f} m)"
    else:
        h, reason = float(bandwidth), f"bandwidth {float(bandwidth):,.0f} m given by the user"
        radius = h
    h_low = float(np.min(radius)) if np.ndim(radius) else h

    if grid is not None:
        rows = grid["row"].to_numpy(np.int64)
        cols = grid["col"].to_numpy(np.int64)
        if h_low < cell:
            raise ValidationError(f"bandwidth {h_low:,.0f} m is smaller than the lattice spacing {cell:,.0f} m",
                                  hint="use a bandwidth of at least one cell (typically 3 or more)")
        if len(grid) == 0:
            return KDEResult(np.zeros(0), h, reason)
        if params["shape"] == "square" and cell == params["cell_size"]:
            n_x, n_y = int(cols.max()) + 1, int(rows.max()) + 1
            lattice = _density_by_radius(xa, ya, w, radius, cell, params["x0"] + cell / 2,
                                         params["y0"] + cell / 2, n_x, n_y)
            values = lattice[rows, cols]
        else:
            xc = grid["x_centre"].to_numpy(np.float64)
            yc = grid["y_centre"].to_numpy(np.float64)
            node_x0 = math.floor(xc.min() / cell) * cell
            node_y0 = math.floor(yc.min() / cell) * cell
            n_x = int(math.floor((xc.max() - node_x0) / cell)) + 2
            n_y = int(math.floor((yc.max() - node_y0) / cell)) + 2
            lattice = _density_by_radius(xa, ya, w, radius, cell, node_x0, node_y0, n_x, n_y)
            fx, fy = (xc - node_x0) / cell, (yc - node_y0) / cell
            ix = np.clip(np.floor(fx).astype(np.int64), 0, n_x - 2)
            iy = np.clip(np.floor(fy).astype(np.int64), 0, n_y - 2)
            tx, ty = fx - ix, fy - iy
            values = (lattice[iy, ix] * (1 - tx) * (1 - ty) + lattice[iy, ix + 1] * tx * (1 - ty)
                      + lattice[iy + 1, ix] * (1 - tx) * ty + lattice[iy + 1, ix + 1] * tx * ty)
        return KDEResult(values * 1e6, h, reason)

    if h_low < cell:
        raise ValidationError(f"bandwidth {h_low:,.0f} m is smaller than cell_size {cell:,.0f} m",
                              hint="use a bandwidth of at least one cell (typically 3 or more)")
    x0 = math.floor(xmin / cell) * cell
    y0 = math.floor(ymin / cell) * cell
    n_x = max(1, math.ceil((xmax - x0) / cell))
    n_y = max(1, math.ceil((ymax - y0) / cell))
    lattice = _density_by_radius(xa, ya, w, radius, cell, x0 + cell / 2, y0 + cell / 2, n_x, n_y)
    row, col = np.divmod(np.arange(n_x * n_y), n_x)
    table = pd.DataFrame({
        "row": row, "col": col,
        "x_centre": x0 + (col + 0.5) * cell, "y_centre": y0 + (row + 0.5) * cell,
        "density_per_km2": lattice.reshape(-1) * 1e6,
    })
    return KDEResult(table, h, reason)



def _adaptive(x: np.ndarray, y: np.ndarray, w: np.ndarray, weighted: bool, cell: float
              ) -> tuple[np.ndarray, float, str]:
    """Adaptive radii (per point), their weighted median and the reason text."""
    h_min = ADAPTIVE_MIN_CELLS * cell
    try:
        h_ref, _ = kde_bandwidth(x, y, weights=w if weighted else None)
    except ValidationError:  # fewer than two points, or all on one line
        h_ref = h_min
    h_max = max(h_ref, h_min)
    k = neighbour_count(float(w.sum()))
    radius = adaptive_radii(x, y, w, k=k, h_min=h_min, h_max=h_max)
    positive = w > 0
    if positive.any():
        median, low, high = _weighted_quantiles(radius[positive], w[positive], (0.5, 0.1, 0.9))
    else:
        median = low = high = h_max
    reason = (f"adaptive bandwidth, median {median:,.0f} m (10-90% of crimes: {low:,.0f} to {high:,.0f} m): "
              f"each location's radius holds k = {k} crimes (k = sqrt(crimes), 10 to 50), at least "
              f"{ADAPTIVE_MIN_CELLS} cells ({h_min:,.0f} m) and at most the normal-reference "
              f"{h_max:,.0f} m (one radius over the whole area would have been {h_max:,.0f} m), "
              f"in steps of {LADDER:.3f}x")
    return radius, float(median), reason


def kde_cells(grid: gpd.GeoDataFrame, xy: np.ndarray, cell_size: float) -> tuple[np.ndarray, float, str]:
    """The analysis's KDE: adaptive quartic density (per km²) at each grid cell, its median radius and reason.

    Parameters
    ----------
    grid : GeoDataFrame
        From :func:`hotspots.geo.grid.make_grid`.
    xy : ndarray, shape (n, 2)
        Crime coordinates in metres (EPSG:27700), one row per crime.
    cell_size : float
        The grid's cell size in metres.

    Returns
    -------
    density : ndarray
        Per km², one per grid row (zeros with fewer than two crimes).
    bandwidth_m : float
        The crime-weighted median radius (NaN with fewer than two crimes).
    reason : str
        How the radii were chosen (for ``study_areas.csv`` and the manifest).
    """
    if len(xy) < 2:
        return np.zeros(len(grid)), float("nan"), "fewer than two points: no density"
    res = kde_quartic(xy[:, 0], xy[:, 1], bandwidth="adaptive", grid=grid, cell_size=cell_size)
    return np.asarray(res.density, dtype=float), float(res.bandwidth_m), res.bandwidth_reason
