"""The Mann-Kendall trend test, vectorised over rows, with ties corrected and gaps skipped.

:func:`mann_kendall` is the package's one implementation: emerging hot spots
(:mod:`hotspots.detect.emerging`) and patrol-area trends use it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from hotspots._validate import (
    _as_float,
    _check_level,
    _first_bad,
    _index_for,
    _Problems,
)

#: Rows per block in the Mann-Kendall kernel (rows x time points x 8 bytes).
_MANN_KENDALL_CHUNK_ROWS = 100_000


def mann_kendall(series: Any, *, alpha: float = 0.05) -> pd.DataFrame:
    """Mann-Kendall trend test, per row, with ties correction and gaps skipped.

    Parameters
    ----------
    series : array-like, 1-D or 2-D
        A time series (1-D) or one series per row (2-D: rows = units such as
        grid cells, columns = time steps in order).  NaN marks a missing time
        step: the test runs on the observed steps only, in their order (an
        explicit gap rule; nothing is interpolated or zero-filled).
    alpha : float, default 0.05
        Significance level of ``mk_trend``.

    Returns
    -------
    pandas.DataFrame
        One row per series: ``mk_n`` (observed steps), ``mk_s`` (S),
        ``mk_var`` (variance of S with ties correction), ``mk_z``, ``mk_p``
        (two-sided), ``mk_tau`` (Kendall's tau-b between value and time),
        ``mk_trend`` (``increasing``, ``decreasing``, ``no_trend``;
        ``undefined`` for short series) and
        ``mk_reason`` (empty, or why the row is NaN: fewer than 3 observed
        steps).  Index: the DataFrame's index for DataFrame input.

    Notes
    -----
    Mann (1945) Econometrica 13:245-259; Kendall (1975) "Rank correlation
    methods"; Hipel & McLeod (1994).  ``S = sum_{i<j} sign(x_j - x_i)``,
    ``Var(S) = [n(n-1)(2n+5) - sum_t t(t-1)(2t+5)] / 18`` over tie groups of
    size t, ``z = (S - sign(S)) / sqrt(Var(S))`` (continuity correction),
    ``p = 2 (1 - Phi(|z|))``.  ``mk_tau`` is tau-b (equal to
    ``scipy.stats.kendalltau(time, x)``; equal to ``S / (n(n-1)/2)`` without
    ties).  All values tied: S = 0, z = 0, p = 1.  Vectorised over rows: one
    pass per lag, rows processed in blocks.  Used on Gi* z-series for
    emerging hot spots (the ArcGIS approach).

    Examples
    --------
    >>> mann_kendall([1, 3, 3, 2, 5]).drop(columns="mk_reason").round(4)
       mk_n  mk_s   mk_var    mk_z    mk_p  mk_tau  mk_trend
    0     5   5.0  15.6667  1.0106  0.3122   0.527  no_trend
    >>> mann_kendall([[1, 2, float("nan"), 4, 5], [3, 3, 3, 3, 3]])[["mk_s", "mk_z", "mk_trend"]]
       mk_s      mk_z  mk_trend
    0   6.0  1.698416  no_trend
    1   0.0  0.000000  no_trend
    """
    problems = _Problems("mann_kendall")
    x = _as_float(problems, "series", series)
    _check_level(problems, "alpha", alpha)
    if x is None:
        problems.raise_if_any()
    if x.ndim not in (1, 2) or x.shape[-1] == 0:
        problems.add(f"series must be 1-D or 2-D (rows = units, columns = time) and not empty; got shape {x.shape}",
                     "Pass one series, or a table with one row per unit and one column per time step.")
    elif np.isinf(x).any():
        problems.add(f"series has infinite values: {_first_bad(x, np.isinf(x))}",
                     "Use NaN for missing time steps.")
    problems.raise_if_any()
    one_dimensional = x.ndim == 1
    out = _mann_kendall_columns(np.atleast_2d(x), alpha)
    m = out["mk_n"].shape[0]
    df = pd.DataFrame(out, index=pd.RangeIndex(1) if one_dimensional else _index_for(m, series))
    return df


def _mann_kendall_z_p(x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``mann_kendall(x)``'s ``mk_z`` and ``mk_p`` (float64) for a 2-D float64 array, without the table.

    ``None`` for anything :func:`mann_kendall` would check further (not 2-D float64, no columns, infinite
    values): call it then.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64 or x.ndim != 2 or x.shape[1] == 0 \
            or np.isinf(x).any():
        return None
    out = _mann_kendall_columns(x, 0.05, text=False)
    return out["mk_z"], out["mk_p"]


#: Up to this many rows x time steps**2, :func:`_mann_kendall_columns` compares every pair at once.
_MANN_KENDALL_PAIRS_MAX = 2_000_000


def _ties_and_s_by_lag(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per value, how many other observed values equal it; per row, S (sum of signs over pairs, lag by lag)."""
    t = block.shape[1]
    same = np.zeros(block.shape)
    s_block = np.zeros(block.shape[0])
    for lag in range(1, t):
        diff = block[:, lag:] - block[:, :-lag]
        s_block += np.nansum(np.sign(diff), axis=1)
        equal = diff == 0
        same[:, lag:] += equal
        same[:, :-lag] += equal
    return same, s_block


def _ties_and_s(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_ties_and_s_by_lag` with all pairs at once (rows x time steps**2 values)."""
    t = block.shape[1]
    first, second = np.triu_indices(t, 1)
    s_block = np.nansum(np.sign(block[:, second] - block[:, first]), axis=1)
    # each observed value equals itself once; NaN equals nothing (its count is not used)
    same = (block[:, :, None] == block[:, None, :]).sum(axis=2) - 1.0
    return same, s_block


def _mann_kendall_columns(x: np.ndarray, alpha: float, text: bool = True) -> dict[str, np.ndarray]:
    """The columns of :func:`mann_kendall` for a checked 2-D float array (``text=False``: the numbers only)."""
    m, t = x.shape

    s = np.zeros(m)
    tie_term = np.zeros(m)
    tied_pairs = np.zeros(m)
    # few rows (emerging's candidate cells, patrol areas): every pair at once; sums and counts of whole
    # numbers, so the same numbers as lag by lag
    rows = _MANN_KENDALL_CHUNK_ROWS if m * t * t > _MANN_KENDALL_PAIRS_MAX else m
    for start in range(0, m, max(rows, 1)):
        block = x[start:start + rows]
        observed = ~np.isnan(block)
        with np.errstate(invalid="ignore"):
            same, s_block = (_ties_and_s(block) if rows == m else _ties_and_s_by_lag(block))
        group = same + 1  # size of the tie group each observed value belongs to
        s[start:start + block.shape[0]] = s_block
        tie_term[start:start + block.shape[0]] = np.where(observed, (group - 1) * (2 * group + 5), 0).sum(axis=1)
        tied_pairs[start:start + block.shape[0]] = np.where(observed, (group - 1) / 2, 0).sum(axis=1)

    n_obs = (~np.isnan(x)).sum(axis=1)
    nn = n_obs.astype(float)
    enough = n_obs >= 3
    var_s = (nn * (nn - 1) * (2 * nn + 5) - tie_term) / 18.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var_s > 0, (s - np.sign(s)) / np.sqrt(var_s), 0.0)
        pairs = nn * (nn - 1) / 2
        tau = np.where(pairs - tied_pairs > 0, s / np.sqrt(pairs * (pairs - tied_pairs)), 0.0)
    p = 2.0 * special.ndtr(-np.abs(z))
    nan_if_short = lambda a: np.where(enough, a, np.nan)  # noqa: E731
    out = {"mk_n": n_obs, "mk_s": nan_if_short(s), "mk_var": nan_if_short(var_s), "mk_z": nan_if_short(z),
           "mk_p": nan_if_short(p), "mk_tau": nan_if_short(tau)}
    if text:
        trend = np.where(p <= alpha, np.where(z > 0, "increasing", "decreasing"), "no_trend")
        out["mk_trend"] = np.where(enough, trend, "undefined")
        out["mk_reason"] = np.where(enough, "", "fewer than 3 observed time steps")
    return out
