"""TODO: module docstring (moved from hotspots.stats)."""

from __future__ import annotations

from typing import Any
import numpy as np
import pandas as pd
from hotspots._validate import _Problems
from hotspots._validate import _as_float
from hotspots._validate import _first_bad


#: fdr_bh maps p to q by lookup when there are at most this many distinct p-values.
_FDR_LOOKUP_MAX_DISTINCT = 1 << 16


def fdr_bh(p: Any) -> np.ndarray:
    """Benjamini-Hochberg false-discovery-rate q-values.

    Parameters
    ----------
    p : array-like
        p-values in [0, 1], any shape.  NaN entries stay NaN and are not
        counted in the number of tests.

    Returns
    -------
    numpy.ndarray
        q-values (BH-adjusted p-values), same shape as ``p``; ``q >= p``.
        Identical to ``statsmodels.stats.multitest.multipletests(p,
        method="fdr_bh")[1]`` when there are no NaNs.

    Notes
    -----
    Benjamini & Hochberg (1995) "Controlling the false discovery rate",
    JRSS B 57:289-300: with the m p-values sorted, ``q_(i) = min_{j >= i}
    min(1, p_(j) m / j)``.  Rejecting ``q <= alpha`` controls the FDR at alpha
    for independent or positively dependent tests (Benjamini & Yekutieli
    2001), which covers the positive dependence of neighbouring Gi* cells.

    Examples
    --------
    >>> fdr_bh([0.01, 0.04, 0.03, float("nan"), 0.5]).round(4).tolist()
    [0.04, 0.0533, 0.0533, nan, 0.5]
    """
    problems = _Problems("fdr_bh")
    arr = _as_float(problems, "p", p)
    problems.raise_if_any()
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(arr) & ~((arr >= 0) & (arr <= 1))
    if bad.any():
        problems.add(f"p must lie in [0, 1]; it has {_first_bad(arr, bad)}",
                     "Pass p-values, not z-scores or percentages.")
    problems.raise_if_any()
    return _bh_q_values(arr.ravel()).reshape(arr.shape)


def _bh_q_values(flat: np.ndarray) -> np.ndarray:
    """BH q-values of a flat array of p-values in [0, 1] (NaN stays NaN), validated by the caller."""
    q = np.full(flat.shape, np.nan)
    finite = ~np.isnan(flat)
    pv = flat[finite]
    m = pv.size
    if m:
        # Tied p-values share one q (that of the last of the tie), so q is a
        # function of the value.  Gi* on counts gives few distinct p-values:
        # they are found by hashing (no sort of all m values), and the rank of
        # the last of a tie is the cumulative count, so the arithmetic is
        # _bh_on_sorted's at those positions.
        sample = pv[:: max(1, m // 1_000)]
        if pd.unique(sample).size * 10 <= sample.size:
            codes, distinct = pd.factorize(pv, sort=True)
            if distinct.size <= _FDR_LOOKUP_MAX_DISTINCT:
                rank_of_last = np.cumsum(np.bincount(codes, minlength=distinct.size))
                raw = distinct / (rank_of_last / m)
                q_distinct = np.minimum(np.minimum.accumulate(raw[::-1])[::-1], 1.0)
                q[finite] = q_distinct[codes]
                return q
        order = np.argsort(pv)
        q_finite = np.empty(m)
        q_finite[order] = _bh_on_sorted(pv[order])
        q[finite] = q_finite
    return q


def _bh_on_sorted(sorted_p: np.ndarray) -> np.ndarray:
    """BH q-values of ascending p-values (the statsmodels arithmetic, step for step)."""
    m = sorted_p.size
    raw = sorted_p / (np.arange(1, m + 1) / m)
    return np.minimum(np.minimum.accumulate(raw[::-1])[::-1], 1.0)


def _significance(p: np.ndarray, correction: str | None) -> np.ndarray:
    return fdr_bh(p) if correction == "fdr_bh" else p.copy()
