"""Getis-Ord Gi* hot and cold spots with false-discovery-rate control.

:func:`gi_star` classifies each cell of a grid (hot/cold at 99, 95, 90%
confidence) from a binary weights matrix with self-weights (Getis & Ord 1992;
Ord & Getis 1995), with Benjamini-Hochberg FDR across the study area;
``_gi_star_periods`` does the same for many periods at once (emerging hot
spots).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import special

from hotspots._validate import (
    _as_float,
    _check_choice,
    _check_levels,
    _first_bad,
    _index_for,
    _Problems,
    level_label,
)
from hotspots.fdr import _bh_q_values

GI_CLASSES_TWO_SIDED = ("hot_99", "hot_95", "hot_90", "not_significant", "cold_90", "cold_95", "cold_99")
#: the test behind each cell's p-value (``gi_test``): the Gi* normal approximation, the exact binomial
#: tail (when it is the larger, more conservative p), or none (a neighbourhood under ``min_count`` crimes
#: on the hot side: p = 1)
GI_TESTS = ("normal", "exact_binomial", "below_minimum")
#: a hot spot's neighbourhood (the cell and its neighbours) holds at least this many crimes
GI_MIN_COUNT = 3


def _check_weights(problems: _Problems, weights: Any, n: int | None) -> sp.csr_matrix | None:
    if not sp.issparse(weights):
        problems.add(f"weights must be a scipy.sparse matrix; got {type(weights).__name__}",
                     "Build weights with scipy.sparse (or pass libpysal's W.sparse).")
        return None
    w = sp.csr_matrix(weights, dtype=float)
    if w.shape[0] != w.shape[1] or (n is not None and w.shape[0] != n):
        problems.add(f"weights must be n x n with n = len(values) = {n}; got shape {w.shape}",
                     "Build the weights for the same cells, in the same order, as values.")
        return None
    if w.nnz and not (np.isfinite(w.data).all() and (w.data >= 0).all()):
        problems.add("weights must be finite and >= 0", "Use binary (0/1) contiguity or distance-band weights.")
        return None
    return w


def _class_codes(z: np.ndarray, significance: np.ndarray, alpha_levels: tuple[float, ...],
                 hot: str, cold: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes into [hot_<strictest> ... not_significant ... cold_<strictest>]."""
    alphas = sorted(alpha_levels)  # strictest first
    labels = [level_label(1.0 - a) for a in alphas]
    categories = [f"{hot}_{x}" for x in labels] + ["not_significant"] + [f"{cold}_{x}" for x in reversed(labels)]
    codes = np.full(z.size, len(alphas), dtype=np.int8)
    for position, alpha in reversed(list(enumerate(alphas))):  # loosest first, stricter overwrite
        significant = significance <= alpha
        codes[significant & (z > 0)] = position
        codes[significant & (z < 0)] = len(categories) - 1 - position
    return codes, categories


@functools.lru_cache(maxsize=16)
def _ordered_categories(categories: tuple[str, ...]) -> pd.CategoricalDtype:
    """The class dtype, built once (building it per call costs more than Gi* on a district grid)."""
    return pd.CategoricalDtype(list(categories), ordered=True)


def gi_star(
    values: Any,
    weights: Any,
    *,
    include_self: bool = False,
    alternative: str = "two-sided",
    correction: str | None = "fdr_bh",
    alpha_levels: Sequence[float] = (0.01, 0.05, 0.10),
    test: str = "auto",
    min_count: int = GI_MIN_COUNT,
) -> pd.DataFrame:
    """Getis-Ord Gi* hot and cold spots with false-discovery-rate control, valid on sparse counts.

    Parameters
    ----------
    values : array-like
        One value per cell (counts, rates); no NaN: cells outside the study
        area must not be in the grid at all.
    weights : scipy.sparse matrix, shape (n, n)
        Binary spatial weights in the order of ``values`` (queen contiguity by
        default in this package), *including* the cell itself on the diagonal
        - that is what makes it Gi* rather than Gi.  Non-binary non-negative
        weights are accepted and used as given.
    include_self : bool, default False
        False: the diagonal must already be non-zero for every cell (an error
        otherwise, so that Gi is never computed by mistake).  True: the
        diagonal is set to 1 before computing.
    alternative : {"two-sided", "greater", "less"}, default "two-sided"
        Alternative hypothesis of ``gi_p``; "greater" looks for hot spots
        only, "less" for cold spots only.
    correction : {"fdr_bh", None}, default "fdr_bh"
        Multiple-testing correction across the whole study area
        (Benjamini-Hochberg).  None gives ``gi_q = gi_p``.
    alpha_levels : sequence of float, default (0.01, 0.05, 0.10)
        Significance levels of the classes (99%, 95%, 90% confidence).
    test : {"auto", "normal"}, default "auto"
        "normal": the p-value of the Gi* z from the normal distribution
        (esda's ``p_norm``), for every cell.  "auto": on counts (non-negative
        integers) with binary weights, each cell's p is the *larger* of the
        normal p and the exact binomial tail (see Notes), and a cell whose
        neighbourhood holds fewer than ``min_count`` crimes is never a hot
        spot; on other values (rates, non-binary weights) "auto" is "normal".
    min_count : int, default 3
        With ``test="auto"`` on counts: the fewest crimes in a neighbourhood
        (cell and neighbours) for a hot spot.  Smaller neighbourhoods on the
        hot side get p = 1 (``gi_test = "below_minimum"``).

    Returns
    -------
    pandas.DataFrame
        ``gi_z`` (the Gi* z-score), ``gi_p`` (raw p of the test used),
        ``gi_q`` (BH q-value, or p), ``gi_test`` (the test behind ``gi_p``:
        ``normal``, ``exact_binomial`` or ``below_minimum``),
        ``gi_class`` (ordered categorical:
        ``hot_99``, ``hot_95``, ``hot_90``, ``not_significant``, ``cold_90``,
        ``cold_95``, ``cold_99``; a cell is in the strictest class whose
        alpha its q-value (p when uncorrected) is at or below).  Index: that
        of ``values`` when it is a pandas object.

    Notes
    -----
    Getis & Ord (1992) "The analysis of spatial association by use of
    distance statistics", Geographical Analysis 24:189-206; Ord & Getis
    (1995) "Local spatial autocorrelation statistics: distributional issues
    and an application", Geographical Analysis 27:286-306.  With
    ``W_i = sum_j w_ij`` and ``S1_i = sum_j w_ij**2`` (self included)::

        Gi* = (sum_j w_ij x_j - xbar W_i) / (S sqrt((n S1_i - W_i**2) / (n - 1)))

    with ``xbar = sum(x) / n`` and ``S = sqrt(sum(x**2) / n - xbar**2)``.
    Equal to esda's ``G_Local(y, w, transform="B", star=True).Zs``.

    The normal approximation fails on sparse counts: with a few crimes over
    thousands of cells, a neighbourhood holding one crime can reach
    z > 3.  With ``test="auto"`` each cell also gets a conditional exact
    test: given the study area's total ``N`` crimes over ``n`` cells, under
    complete spatial randomness the neighbourhood sum ``S_i`` (cell and
    neighbours, binary weights) is Binomial(``N``, ``p_i = W_i / n``), so the
    hot-spot p is ``P(S_i >= s_i)`` (``scipy.stats.binom.sf(s_i - 1, N,
    p_i)``), the cold-spot p ``P(S_i <= s_i)`` and the two-sided p twice the
    smaller, at most 1.  The cell's p is the larger of the two tests' p
    (``gi_test`` names the larger): the exact tail guards the sparse
    neighbourhoods, the normal Gi*, whose variance is the observed one,
    guards overdispersed busy areas where the binomial alone would be too
    liberal; the larger of two valid p-values is valid.  Cells on the hot
    side (``z > 0``) whose neighbourhood holds fewer than ``min_count``
    crimes get p = 1.  BH runs on the p-values used.  Constant
    input (S = 0) and cells whose neighbourhood is the whole study area
    (zero variance) get ``gi_z = 0``, ``gi_p = 1``.  Benjamini & Hochberg
    (1995) across all cells, as ArcGIS's FDR option intends (sfhotspot and
    esda leave p unadjusted by default); BH stays valid under the positive
    dependence between overlapping neighbourhoods (Benjamini & Yekutieli
    2001).  Cost: two sparse products and one sort, well under 3 s for 2.4
    million cells.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> band = sp.diags([1.0, 1.0, 1.0], [-1, 0, 1], shape=(5, 5))
    >>> queen_with_self = sp.kron(band, band, format="csr")   # 5 x 5 grid
    >>> counts = np.full(25, 2.0)
    >>> counts[[6, 7, 8, 11, 12, 13, 16, 17, 18]] = 9.0      # central block
    >>> result = gi_star(counts, queen_with_self, correction=None)
    >>> result.loc[12, ["gi_z", "gi_p"]].round(3).tolist()
    [4.899, 0.0]
    >>> str(result.loc[12, "gi_class"]), str(result.loc[0, "gi_class"])
    ('hot_99', 'not_significant')
    >>> str(result.loc[12, "gi_test"])
    'normal'
    >>> sparse = np.zeros(25); sparse[12] = 1.0; sparse[0] = 1.0      # one crime, then the exact test
    >>> lone = gi_star(sparse, queen_with_self, correction=None)
    >>> str(lone.loc[12, "gi_test"]), float(lone.loc[12, "gi_p"]), str(lone.loc[12, "gi_class"])
    ('below_minimum', 1.0, 'not_significant')
    """
    problems = _Problems("gi_star")
    x = _as_float(problems, "values", values)
    alpha_levels = _check_levels(problems, "alpha_levels", alpha_levels)
    _check_choice(problems, "alternative", alternative, ("two-sided", "greater", "less"))
    _check_choice(problems, "correction", correction, ("fdr_bh", None))
    _check_choice(problems, "test", test, ("auto", "normal"))
    if isinstance(min_count, bool) or not isinstance(min_count, (int, np.integer)) or min_count < 0:
        problems.add(f"min_count must be a non-negative integer; got {min_count!r}",
                     f"Use min_count={GI_MIN_COUNT} (a hot spot's neighbourhood holds 3 or more crimes).")
    if not isinstance(include_self, (bool, np.bool_)):
        problems.add(f"include_self must be True or False; got {include_self!r}",
                     "Pass include_self=True when the weights have no self-weights on the diagonal.")
    if x is None:
        problems.raise_if_any()
    if x.ndim != 1 or x.size < 2:
        problems.add(f"values must be 1-D with at least 2 cells; got shape {x.shape}",
                     "Pass one value per grid cell (flatten a 2-D raster in the order the weights use).")
    elif not np.isfinite(x).all():
        problems.add(f"values must be finite; it has {_first_bad(x, ~np.isfinite(x))}",
                     "Cells outside the study area must be dropped from the grid, not set to NaN.")
    w = _check_weights(problems, weights, x.size if x.ndim == 1 else None)
    problems.raise_if_any()
    n = x.size
    diagonal = w.diagonal()
    if include_self:
        self_weight = np.ones(n)
    else:
        _require_self_weights(problems, diagonal, "Pass include_self=True to set the diagonal to 1.")
        self_weight = diagonal

    z, p, _ = _gi_star_rows(x[None, :], w, self_weight, diagonal, alternative, None)
    used = test == "auto" and _exact_applies(x, w, self_weight)
    if used:
        neighbourhood = (w @ x + (self_weight - diagonal) * x)[None, :]
        size = (w @ np.ones(n) + (self_weight - diagonal))[None, :]
        p, test_code = _exact_guard(z, p, neighbourhood, size / n, float(x.sum()), alternative, min_count)
    else:
        test_code = np.zeros(z.shape, dtype=np.int8)
    q = _bh_q_values(p[0]) if correction == "fdr_bh" else p[0].copy()
    z, p, test_code = z[0], p[0], test_code[0]
    z_for_class = z if alternative == "two-sided" else (np.where(z > 0, z, 0.0) if alternative == "greater"
                                                      else np.where(z < 0, z, 0.0))
    codes, categories = _class_codes(z_for_class, q, alpha_levels, "hot", "cold")
    df = pd.DataFrame(
        {"gi_z": z, "gi_p": p, "gi_q": q,
         "gi_test": pd.Categorical.from_codes(test_code, dtype=_ordered_categories(GI_TESTS)),
         "gi_class": pd.Categorical.from_codes(codes, dtype=_ordered_categories(tuple(categories)))},
        index=_index_for(n, values),
    )
    df.attrs["gi_star"] = {"alternative": alternative, "correction": correction,
                           "alpha_levels": list(alpha_levels), "n": int(n),
                           "test": "exact_binomial_guard" if used else "normal",
                           "min_count": int(min_count) if used else None}
    return df


def _exact_applies(x: np.ndarray, w: sp.csr_matrix, self_weight: np.ndarray) -> bool:
    """The binomial test needs counts (non-negative integers) and binary weights."""
    return bool((x >= 0).all() and (x == np.round(x)).all() and (w.data == 1).all()
                and ((self_weight == 1) | (self_weight == 0)).all())


def _exact_guard(z: np.ndarray, p_normal: np.ndarray, s: np.ndarray, share: np.ndarray, total: float | np.ndarray,
                 alternative: str, min_count: int, share_codes: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The p used (the larger of normal and exact binomial) and the test code (index into :data:`GI_TESTS`).

    ``s``: neighbourhood sums, ``share``: ``p_i`` (neighbourhood cells / all
    cells), ``total``: N (a scalar, or one per row); all shaped like ``z``.
    ``share_codes``: :func:`_distinct` of ``share`` clipped to [0, 1], when already known.
    """
    s = np.rint(s)
    total = np.broadcast_to(np.asarray(total, dtype=float).reshape(-1, 1) if np.ndim(total) else total, z.shape)
    if share_codes is None:
        share_codes = _distinct(np.clip(share, 0.0, 1.0).ravel())
    upper, lower, inverse = _binomial_tails(s, total, share_codes)   # P(S >= s), P(S <= s) per distinct triple
    # the exact p of each distinct triple, then one look-up per bin (the upper tail where z > 0)
    if alternative == "two-sided":
        table = np.minimum(1.0, 2.0 * np.concatenate([upper, lower]))
        pick = inverse + len(upper) * ~(z > 0).ravel()
    else:
        table = upper if alternative == "greater" else lower
        pick = inverse
    table = np.where(np.isfinite(table), table, 1.0)
    exact = table[pick].reshape(z.shape)
    p = np.maximum(p_normal, exact)
    code = np.where(exact > p_normal, 1, 0).astype(np.int8)
    below = (z > 0) & (s < min_count) & (alternative != "less")
    p = np.where(below, 1.0, p)
    code[below] = 2
    return p, code


def _binomial_tails(s: np.ndarray, total: np.ndarray, share_codes: tuple[np.ndarray, np.ndarray]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``binom.sf(s - 1, total, share)`` and ``binom.cdf(s, total, share)``, once per distinct (s, N, p).

    Returns both tails per distinct triple and each bin's (flattened) position among them.

    ``share_codes``: the distinct shares and each bin's position among them (:func:`_distinct`).

    A grid has a handful of neighbourhood sizes and small sums, so a cube of
    millions of bins has a few hundred distinct triples.  They are found by
    hashing (:func:`pandas.factorize`, linear time) rather than sorting; each
    triple's tails are the same numbers whichever order they are computed in.
    """
    share_values, share_idx = share_codes
    total = np.asarray(total, float)
    if total.size and not any(total.strides):  # one N (broadcast): nothing to look up
        total_values, total_idx = total.ravel()[:1], 0
    else:
        total_values, total_idx = _distinct(total.ravel())
    sums = s.ravel().astype(np.int64)
    key = (sums * len(share_values) + share_idx) * len(total_values) + total_idx
    keys, inverse = _distinct_small(key)
    k = keys // (len(share_values) * len(total_values))
    n = total_values[keys % len(total_values)]
    p = share_values[(keys // len(total_values)) % len(share_values)]
    return _binom_sf(k - 1, n, p), _binom_cdf(k, n, p), inverse


def _binom_ufuncs():
    """SciPy's binomial tails, the ufuncs behind ``scipy.stats.binom.sf`` and ``.cdf`` (Boost's), without importing
    :mod:`scipy.stats` (about half a second, not needed by the hotspot analysis otherwise)."""
    try:
        from scipy.special._ufuncs import _binom_cdf, _binom_sf
    except ImportError:  # pragma: no cover -- another SciPy: its public functions (the same numbers)
        from scipy import stats

        return (lambda k, n, p: stats.binom.sf(k, n, p)), (lambda k, n, p: stats.binom.cdf(k, n, p)), True
    return _binom_sf, _binom_cdf, False


def _binom_sf(k: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``scipy.stats.binom.sf(k, n, p)`` for 1-D arrays of equal length, the same numbers.

    As ``rv_discrete.sf``: NaN where ``n`` is not a whole number >= 0 or ``p`` is outside [0, 1]
    (or ``k`` is NaN), 1 below the support (``k < 0``), 0 from ``k >= n`` on, else SciPy's ufunc on
    ``floor(k)`` clipped to [0, 1].

    >>> _binom_sf(np.array([-1, 0, 2, 3, 5]), np.full(5, 4.0), np.full(5, 0.5)).tolist()
    [1.0, 0.9375, 0.3125, 0.0625, 0.0]
    """
    sf, _, public = _binom_ufuncs()
    if public:  # pragma: no cover
        return np.asarray(sf(k, n, p), dtype=float)
    return _binom_tail(sf, k, n, p, upper=True)


def _binom_cdf(k: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``scipy.stats.binom.cdf(k, n, p)`` for 1-D arrays of equal length, the same numbers (see :func:`_binom_sf`).

    >>> _binom_cdf(np.array([-1, 0, 2, 4]), np.full(4, 4.0), np.full(4, 0.5)).tolist()
    [0.0, 0.0625, 0.6875, 1.0]
    """
    _, cdf, public = _binom_ufuncs()
    if public:  # pragma: no cover
        return np.asarray(cdf(k, n, p), dtype=float)
    return _binom_tail(cdf, k, n, p, upper=False)


def _binom_tail(ufunc, k, n, p, *, upper: bool) -> np.ndarray:
    """``rv_discrete.sf`` (``upper``) or ``.cdf`` of the binomial, step by step as SciPy 1.17 does them."""
    k, n, p = np.broadcast_arrays(np.asarray(k), np.asarray(n), np.asarray(p))
    valid = (n >= 0) & (n == np.round(n)) & (p >= 0) & (p <= 1)  # binom._argcheck
    inside = (k >= 0) & (k < n)  # the support is 0..n
    compute = valid & inside & np.isfinite(k)
    out = np.zeros(k.shape, dtype="d")
    if upper:
        out[~valid | np.isnan(k)] = np.nan
        out[((k < 0) | np.isneginf(k)) & valid] = 1.0
    else:
        out[k >= n] = 1.0
        out[np.isneginf(k)] = 0.0
        out[~valid | np.isnan(k)] = np.nan
    if compute.any():
        out[compute] = np.clip(ufunc(np.floor(k[compute]), n[compute], p[compute]), 0, 1)
    return out


def _distinct_small(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_distinct` for non-negative integers: by a table of presence when their range is small."""
    if key.size == 0 or key.min() < 0 or key.max() > 4 * key.size + 1024:
        return _distinct(key)
    present = np.zeros(int(key.max()) + 1, dtype=bool)
    present[key] = True
    position = np.cumsum(present) - 1
    return np.flatnonzero(present), position[key]


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values (any order) and each element's position among them; NaN is a value like any other."""
    if values.size <= 1 or (values.dtype.kind == "f" and np.isnan(values).any()):
        uniques, inverse = np.unique(values, return_inverse=True)
        return uniques, inverse.ravel()
    codes, uniques = pd.factorize(values, sort=False)
    return np.asarray(uniques), codes


def _require_self_weights(problems, diagonal: np.ndarray, hint: str) -> None:
    """Gi* counts each cell in its own neighbourhood: every cell needs a non-zero self-weight."""
    missing_self = diagonal == 0
    if missing_self.any():
        problems.add(f"weights has no self-weight on the diagonal for {int(missing_self.sum())} of {len(diagonal)} cells "
                     f"(first at position {int(np.flatnonzero(missing_self)[0])}); Gi* includes the cell itself", hint)
        problems.raise_if_any()


def _gi_star_rows(x: np.ndarray, w: sp.csr_matrix, self_weight: np.ndarray, diagonal: np.ndarray,
                  alternative: str = "two-sided", correction: str | None = "fdr_bh"
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gi* z, p and q of each row of ``x`` (rows: periods, columns: cells), validated by the caller.

    Each row gets exactly the arithmetic of a :func:`gi_star` call on it (the
    reductions, the sparse product and the FDR run per row, the element-wise
    steps on the block), without a DataFrame per period.
    """
    n = x.shape[1]
    # Replacing the diagonal by self_weight is done on the row sums instead of
    # rebuilding the matrix: a sparse rebuild of 2.4 million rows costs seconds.
    ones = np.ones(n)
    w_sum = w @ ones + (self_weight - diagonal)
    if w.nnz and (w.data == 1).all() and ((self_weight == 1) | (self_weight == 0)).all():
        w_sq_sum = w_sum  # binary weights: w**2 == w
    else:
        w_sq_sum = w.multiply(w) @ ones + (self_weight**2 - diagonal**2)
    variance_term = (n * w_sq_sum - w_sum**2) / (n - 1)
    # Zero variance: constant input, or a neighbourhood covering every cell.
    flat_neighbourhood = variance_term <= 1e-12 * n * np.maximum(w_sq_sum, 1e-300)
    lag_dev = np.empty(x.shape)
    spread = np.empty((x.shape[0], 1))
    constant = np.empty((x.shape[0], 1), dtype=bool)
    for row, values in enumerate(x):
        mean = values.mean()
        spread[row] = values.std()  # population SD: S = sqrt(sum(x^2)/n - mean^2), computed stably
        deviation = values - mean
        lag_dev[row] = w @ deviation + (self_weight - diagonal) * deviation  # = sum_j w_ij x_j - mean * W_i
        constant[row] = np.ptp(values) == 0
    degenerate = constant | flat_neighbourhood
    with np.errstate(divide="ignore", invalid="ignore"):
        z = lag_dev / (spread * np.sqrt(variance_term))
    z = np.where(degenerate, 0.0, z)

    if alternative == "two-sided":
        p = 2.0 * special.ndtr(-np.abs(z))
    elif alternative == "greater":
        p = special.ndtr(-z)
    else:
        p = special.ndtr(z)
    p = np.where(degenerate, 1.0, np.minimum(p, 1.0))
    q = np.stack([_bh_q_values(row) for row in p]) if correction == "fdr_bh" and len(p) else p.copy()
    return z, p, q


def _gi_star_periods(values: np.ndarray, weights: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Gi* z and FDR q of each row of ``values`` (periods x cells): :func:`gi_star` with its defaults, per row.

    For emerging hot spots (a Gi* per month): the same numbers as one
    ``gi_star(values[k], weights)`` call per month, at a fraction of the cost.
    """
    problems = _Problems("gi_star")
    x = _as_float(problems, "values", values)
    problems.raise_if_any()
    if x.ndim != 2 or x.shape[1] < 2 or not np.isfinite(x).all():
        problems.add(f"values must be finite, periods x cells with at least 2 cells; got shape {x.shape}",
                     "Pass one row per period and one column per grid cell.")
    w = _check_weights(problems, weights, x.shape[1] if x.ndim == 2 else None)
    problems.raise_if_any()
    diagonal = w.diagonal()
    _require_self_weights(problems, diagonal, "Pass weights with 1 on the diagonal.")
    z, _, q = _gi_star_rows(x, w, diagonal, diagonal)
    return z, q
