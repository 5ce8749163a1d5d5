"""Space-time Getis-Ord Gi* on a cube of cells x months, as ArcGIS's Emerging Hot Spot Analysis uses.

:func:`gi_star_space_time` computes one Gi* per bin (cell, month) of a
space-time cube whose neighbourhood is the cell and its spatial neighbours in
the same month and in the previous ``time_step`` months, with the small-count
guard of :func:`hotspots.detect.gistar.gi_star` and Benjamini-Hochberg FDR
across every bin of the cube.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import special

from hotspots._errors import ValidationError
from hotspots._validate import _as_float, _Problems
from hotspots.detect.gistar import (
    GI_MIN_COUNT,
    _check_weights,
    _distinct,
    _distinct_small,
    _exact_applies,
    _exact_guard,
    _require_self_weights,
)
from hotspots.fdr import _bh_q_values

__all__ = ["EMERGING_TIME_STEP", "SpaceTimeCube", "gi_star_space_time"]

#: emerging hot spots: a bin's neighbourhood reaches back this many months (ArcGIS's default time step is 1)
EMERGING_TIME_STEP = 1


def _month_ordinals(problems: _Problems, months: Sequence[Any], t: int) -> np.ndarray | None:
    try:
        periods = pd.PeriodIndex(pd.Series(list(months)).astype(str).str.slice(0, 7), freq="M")
    except (TypeError, ValueError) as exc:
        problems.add(f"months could not be read as months: {exc}", "Pass 'YYYY-MM' strings, one per row of values.")
        return None
    ordinal = (periods.year.to_numpy() * 12 + periods.month.to_numpy()).astype(np.int64)
    if len(ordinal) != t:
        problems.add(f"months has {len(ordinal)} entries for {t} rows of values", "Pass one month per row.")
        return None
    if len(ordinal) > 1 and (np.diff(ordinal) <= 0).any():
        problems.add("months must be strictly increasing (no repeats)", "Sort the rows by month.")
        return None
    return ordinal


def gi_star_space_time(values: Any, weights: Any, *, months: Sequence[Any], time_step: int = 1,
                       test: str = "auto", min_count: int = GI_MIN_COUNT, cube: SpaceTimeCube | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gi* z, p, BH q and test code of every bin of a (months x cells) space-time cube.

    Parameters
    ----------
    values : array-like, shape (n_months, n_cells)
        Counts per month (rows) and cell (columns); only months present in
        the data (a missing month is left out of the cube, never zeros).
    weights : scipy.sparse matrix, shape (n_cells, n_cells)
        Binary spatial weights with 1 on the diagonal (queen with self).
    months : sequence of "YYYY-MM", length n_months
        Month of each row, strictly increasing; a bin's time neighbours are
        the rows whose month is 1 to ``time_step`` calendar months earlier.
    time_step : int, default 1
        How many previous months the neighbourhood reaches back (ArcGIS's
        "neighbourhood time step").  0: space only.
    test : {"auto", "normal"}, default "auto"
        As :func:`hotspots.detect.gistar.gi_star`: "auto" takes the larger of
        the normal and exact binomial p, and no bin whose space-time
        neighbourhood holds under ``min_count`` crimes is a hot spot.
    min_count : int, default 3
    cube : SpaceTimeCube, optional
        What every selection on these weights and months shares, built once
        (:class:`SpaceTimeCube`); the same results, faster.

    Returns
    -------
    z, p, q : float arrays, shape (n_months, n_cells)
        Gi* z-score, p-value of the test used (two-sided), BH q across all bins.
    test_code : int8 array, shape (n_months, n_cells)
        Index into :data:`hotspots.detect.gistar.GI_TESTS`.

    Notes
    -----
    The cube is one study area of ``M = n_months * n_cells`` bins with
    binary weights ``w((t, i), (u, j)) = w_ij`` when ``0 <= t - u <=
    time_step`` (calendar months), so the result equals
    :func:`~hotspots.detect.gistar.gi_star` on the flattened cube with the
    Kronecker-product weights (mean and standard deviation over the whole
    cube, as ArcGIS's Emerging Hot Spot Analysis; Esri, "How Emerging Hot
    Spot Analysis works"; Getis & Ord 1992; Ord & Getis 1995), and the exact
    test conditions on the cube's total.  The first month's neighbourhood
    has no earlier month (fewer neighbours, as at the edge of the area).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> w = sp.csr_matrix(np.ones((2, 2)))          # two neighbouring cells
    >>> x = np.array([[0.0, 1.0], [2.0, 5.0], [0.0, 0.0]])
    >>> z, p, q, code = gi_star_space_time(x, w, months=["2024-01", "2024-02", "2024-03"], test="normal")
    >>> z.round(3).tolist()
    [[-0.734, -0.734], [1.174, 1.174], [0.734, 0.734]]
    """
    return _gi_star_space_time(values, weights, months, time_step, test, min_count, cube, keyed=False)


class _Keyed(NamedTuple):
    """The space-time Gi* of a cube as tables per distinct (neighbourhood sum, size) and each bin's key.

    ``z[inverse]`` and ``q[inverse]`` (``inverse``: int64, shaped months x cells) are the arrays
    :func:`gi_star_space_time` returns, the same numbers; a cube of a million bins has a few hundred keys.
    """

    z: np.ndarray
    q: np.ndarray
    inverse: np.ndarray


def _gi_star_space_time(values: Any, weights: Any, months: Sequence[Any], time_step: int, test: str,
                        min_count: int, cube: SpaceTimeCube | None, *, keyed: bool):
    """:func:`gi_star_space_time`; with ``keyed``, a :class:`_Keyed` result where the by-key path applies.

    ``keyed`` (the analysis, which needs z and q only): where the bins' Gi* is computed once per
    (neighbourhood sum, size) and no p is NaN, the tables and each bin's key are returned instead of
    four cube-sized arrays (gathering them was most of the cost); elsewhere the usual 4-tuple.
    """
    problems = _Problems("gi_star_space_time")
    x = _as_float(problems, "values", values)
    problems.raise_if_any()
    if x.ndim != 2 or x.shape[1] < 1 or x.size < 2 or not np.isfinite(x).all():
        problems.add(f"values must be finite, months x cells with at least 2 bins; got shape {x.shape}",
                     "Pass one row per month present and one column per grid cell.")
    if isinstance(time_step, bool) or not isinstance(time_step, (int, np.integer)) or time_step < 0:
        problems.add(f"time_step must be a non-negative integer; got {time_step!r}", "Use time_step=1.")
    if test not in ("auto", "normal"):
        problems.add(f"test must be 'auto' or 'normal'; got {test!r}", "Use test='auto'.")
    if cube is not None:
        problems.raise_if_any()
        if not cube.built_for(weights, months, time_step, x.shape):
            raise ValidationError("gi_star_space_time: cube was built for other weights, months or time_step",
                                  hint="Build it with SpaceTimeCube(weights, months, time_step) for these arguments.")
    else:
        w = _check_weights(problems, weights, x.shape[1] if x.ndim == 2 else None)
        problems.raise_if_any()
        _month_ordinals(problems, months, x.shape[0])
        problems.raise_if_any()
        cube = SpaceTimeCube(weights, months, time_step)
    w, w_sum, m = cube.w, cube.w_sum, cube.m
    # (months, cells): sum over spatial neighbours, same month; in rows (the time lag adds whole months)
    spatial = np.ascontiguousarray(np.asarray(w @ x.T).T)
    lag = cube.time_lag(spatial)
    mean = x.mean()
    spread = x.std()
    if test == "auto" and cube.by_size is not None and _exact_applies(x.ravel(), w, cube.diagonal) \
            and float(x.sum()) < 2.0**52:
        if keyed:
            found = _by_sum_and_size_keys(lag, cube, mean, spread, np.ptp(x) == 0, float(x.sum()), min_count)
            if found is not None:
                return found
        return _by_sum_and_size(lag, cube, mean, spread, np.ptp(x) == 0, float(x.sum()), min_count)
    degenerate = (np.ptp(x) == 0) | cube.flat_variance
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (lag - mean * w_sum) / (spread * cube.root_variance)
    z = np.where(degenerate, 0.0, z)
    p = np.where(degenerate, 1.0, np.minimum(2.0 * special.ndtr(-np.abs(z)), 1.0))
    if test == "auto" and _exact_applies(x.ravel(), w, cube.diagonal):
        p, code = _exact_guard(z, p, lag, cube.share, float(x.sum()), "two-sided", min_count,
                               share_codes=cube.share_codes)
    else:
        code = np.zeros(z.shape, dtype=np.int8)
    q = _bh_q_values(p.ravel()).reshape(p.shape)
    return z, p, q, code


class SpaceTimeCube:
    """What the space-time Gi* of any counts on one grid and set of months shares, computed once.

    The neighbourhood sizes of the bins, the variance term and the binomial
    shares (:func:`gi_star_space_time`'s Notes) depend on the weights and the
    months only, so the crime selections of a study area can share them:
    pass ``cube=SpaceTimeCube(weights, months, time_step)`` to
    :func:`gi_star_space_time` with the same ``weights`` (the same object),
    ``months`` and ``time_step``.  The results are those without it.
    """

    def __init__(self, weights: Any, months: Sequence[Any], time_step: int = 1):
        problems = _Problems("gi_star_space_time")
        w = _check_weights(problems, weights, None)
        problems.raise_if_any()
        ordinal = _month_ordinals(problems, months, len(months))
        problems.raise_if_any()
        diagonal = w.diagonal()
        _require_self_weights(problems, diagonal, "Pass weights with 1 on the diagonal.")
        self.weights, self.months, self.time_step = weights, tuple(months), time_step
        self.w, self.diagonal = w, diagonal
        n = w.shape[0]
        gap = ordinal[:, None] - ordinal[None, :]
        self.lag_t = ((gap >= 0) & (gap <= time_step)).astype(float)  # lag_t[t, u] = 1: month u is in t's window
        w_sum = self.lag_t.sum(axis=1)[:, None] * np.asarray(w @ np.ones(n))[None, :]
        binary = w.nnz > 0 and (w.data == 1).all()
        w_sq = w_sum if binary else self.lag_t.sum(axis=1)[:, None] * np.asarray(w.multiply(w) @ np.ones(n))[None, :]
        m = float(len(months) * n)
        variance_term = (m * w_sq - w_sum**2) / (m - 1)
        self.flat_variance = variance_term <= 1e-12 * m * np.maximum(w_sq, 1e-300)
        with np.errstate(invalid="ignore"):
            self.root_variance = np.sqrt(variance_term)
        self.w_sum, self.m = w_sum, m
        self.share = w_sum / m
        self.share_codes = _distinct(np.clip(self.share, 0.0, 1.0).ravel())
        self.by_size = _size_codes(w_sum, self.root_variance, self.flat_variance)

    def time_lag(self, spatial: np.ndarray) -> np.ndarray:
        """``lag_t @ spatial`` (each month's sums plus those of the months in its window), added row by row.

        No BLAS: a matrix product of this size costs more in thread start-up (and in
        threads spinning on a busy machine) than the additions it makes; the
        window sums are added in month order.
        """
        lag = np.zeros_like(spatial)
        for t, row in enumerate(self.lag_t):
            for u in np.flatnonzero(row):
                lag[t] += spatial[u] * row[u]
        return lag

    def built_for(self, weights: Any, months: Sequence[Any], time_step: int, shape: tuple[int, ...]) -> bool:
        """Whether this cube is the one of these arguments (values of ``shape``: months x cells)."""
        return (weights is self.weights and tuple(months) == self.months and time_step == self.time_step
                and tuple(shape) == (len(self.months), self.w.shape[0]))


def _kron_weights(weights: sp.csr_matrix, months: Sequence[Any], time_step: int) -> sp.csr_matrix:
    """The cube's weights as one matrix (rows: month-major bins), for checks against the flat Gi*."""
    problems = _Problems("gi_star_space_time")
    ordinal = _month_ordinals(problems, months, len(months))
    problems.raise_if_any()
    gap = ordinal[:, None] - ordinal[None, :]
    return sp.kron(sp.csr_matrix(((gap >= 0) & (gap <= time_step)).astype(float)), weights, format="csr")


def _size_codes(w_sum: np.ndarray, root_variance: np.ndarray, flat_variance: np.ndarray):
    """Each bin's neighbourhood size as a code, with the size, root variance and flatness of each code.

    None unless the variance terms are functions of the size (binary weights: always), so that a bin's
    Gi* depends only on its neighbourhood sum and the code (:func:`_by_sum_and_size`).
    """
    sizes, codes = _distinct(w_sum.ravel())
    first = np.zeros(sizes.size, dtype=np.int64)
    first[codes[::-1]] = np.arange(codes.size)[::-1]  # the first bin of each code
    root, flat = root_variance.ravel()[first], flat_variance.ravel()[first]
    if not (np.array_equal(root[codes], root_variance.ravel(), equal_nan=True)
            and np.array_equal(flat[codes], flat_variance.ravel())):
        return None
    return codes.astype(np.int64), sizes, root, flat


def _by_sum_and_size(lag: np.ndarray, cube: SpaceTimeCube, mean: float, spread: float, constant: bool,
                     total: float, min_count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """z, p, q and the test code of every bin, computed once per distinct (neighbourhood sum, size), looked up.

    With counts and binary weights a bin's z, normal p, exact binomial p and the small-count rule depend
    only on its neighbourhood sum (a whole number) and its neighbourhood size: a cube of a million bins
    has a few hundred such pairs.  The arithmetic per pair is the element-wise arithmetic of the plain
    path on the same numbers, so each bin gets the same bits.  So does its BH q (:func:`_bh_by_value`).
    """
    z, p, code, inverse = _key_tables(lag, cube, mean, spread, constant, total, min_count)
    shape = lag.shape
    if np.isnan(p).any():
        q = _bh_q_values(p[inverse])
    else:
        q = _bh_by_value(p, np.bincount(inverse, minlength=p.size))[inverse]
    return (z[inverse].reshape(shape), p[inverse].reshape(shape), q.reshape(shape),
            code[inverse].reshape(shape))


def _by_sum_and_size_keys(lag: np.ndarray, cube: SpaceTimeCube, mean: float, spread: float, constant: bool,
                          total: float, min_count: int) -> _Keyed | None:
    """:func:`_by_sum_and_size`'s z and q per key, and each bin's key; None when a p is NaN (q is then per bin)."""
    z, p, _, inverse = _key_tables(lag, cube, mean, spread, constant, total, min_count)
    if np.isnan(p).any():
        return None
    q = _bh_by_value(p, np.bincount(inverse, minlength=p.size))
    return _Keyed(z, q, inverse.reshape(lag.shape))


def _key_tables(lag: np.ndarray, cube: SpaceTimeCube, mean: float, spread: float, constant: bool, total: float,
                min_count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """z, p and test code per distinct (neighbourhood sum, size) key, and each bin's key (flat)."""
    codes, sizes, root, flat = cube.by_size
    sums = np.rint(lag).ravel().astype(np.int64)
    key = sums * sizes.size + codes
    keys, inverse = _distinct_small(key)
    size_of = keys % sizes.size
    s = (keys // sizes.size).astype(float)
    w_sum = sizes[size_of]
    degenerate = constant | flat[size_of]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (s - mean * w_sum) / (spread * root[size_of])
    z = np.where(degenerate, 0.0, z)
    p = np.where(degenerate, 1.0, np.minimum(2.0 * special.ndtr(-np.abs(z)), 1.0))
    p, code = _exact_guard(z[None, :], p[None, :], s[None, :], (w_sum / cube.m)[None, :], total, "two-sided",
                           min_count)
    return z, p[0], code[0], inverse


def _bh_by_value(p: np.ndarray, count: np.ndarray) -> np.ndarray:
    """BH q of each of the values ``p`` (no NaN), each held by ``count`` bins: :func:`hotspots.fdr._bh_q_values`.

    As fdr's own path for few distinct values: tied p-values share the q of the last of the tie, whose
    rank is the cumulative count, ``q = min(1, min over values >= p of value / (rank / m))`` -- the same
    operations on the same numbers as the sorted BH arithmetic at those ranks (tested).
    """
    codes, distinct = pd.factorize(p, sort=True)
    rank_of_last = np.cumsum(np.bincount(codes, weights=count, minlength=distinct.size).astype(np.int64))
    m = int(count.sum())
    raw = distinct / (rank_of_last / m)
    return np.minimum(np.minimum.accumulate(raw[::-1])[::-1], 1.0)[codes]
