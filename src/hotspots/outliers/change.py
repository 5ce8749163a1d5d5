"""Change in a Poisson rate: two-period rate ratios and the ratio of rate ratios.

* :func:`rate_ratio_test`: rate ratio of two Poisson counts with their
  exposures, Wald interval on the log scale and the exact conditional
  (binomial) p-value;
* :func:`change_vs_reference`: an area's change against a reference area's
  change (the rest of the county), the ratio of rate ratios with its interval
  and exact p-value, so force-wide recording changes cancel out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import special
from scipy.stats import binom, norm

from hotspots._validate import (
    _as_float,
    _broadcast,
    _check_counts,
    _check_level,
    _check_positive,
    _index_for,
    _Problems,
)


def _binomtest_two_sided(k: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Vectorised ``scipy.stats.binomtest(k, n, p).pvalue`` (two-sided, "minlike").

    Mirrors scipy's algorithm (probabilities no larger than ``pmf(k)`` with a
    relative tolerance of 1e-7, located by binary search on the far side of
    the mode) so that results agree with scipy to rounding.  Needs n >= 1 and
    0 < p < 1.
    """
    k, n, p = (np.asarray(a, dtype=float) for a in np.broadcast_arrays(k, n, p))
    d = binom.pmf(k, n, p)
    rerr = 1 + 1e-7
    pval = np.ones(k.shape)
    mode_side = p * n

    low = k < mode_side
    if low.any():
        kk, nn, pp, dd = k[low], n[low], p[low], d[low]
        ix = _binary_search(lambda x, idx: -binom.pmf(x, nn[idx], pp[idx]), -dd * rerr,
                            np.ceil(pp * nn), nn.copy())
        y = nn - ix + (dd * rerr == binom.pmf(ix, nn, pp)).astype(float)
        pval[low] = binom.cdf(kk, nn, pp) + binom.sf(nn - y, nn, pp)

    high = k > mode_side
    if high.any():
        kk, nn, pp, dd = k[high], n[high], p[high], d[high]
        ix = _binary_search(lambda x, idx: binom.pmf(x, nn[idx], pp[idx]), dd * rerr,
                            np.zeros_like(nn), np.floor(pp * nn))
        y = ix + 1
        pval[high] = binom.cdf(y - 1, nn, pp) + binom.sf(kk - 1, nn, pp)
    return np.minimum(1.0, pval)


def _binary_search(func, target: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Vectorised copy of scipy's ``_binary_search_for_binom_tst``: i with a(i) <= d < a(i+1)."""
    lo = lo.astype(float).copy()
    hi = hi.astype(float).copy()
    result = np.full(lo.shape, np.nan)
    done = np.zeros(lo.shape, dtype=bool)
    active = lo < hi
    while active.any():
        idx = np.flatnonzero(active)
        mid = lo[idx] + np.floor((hi[idx] - lo[idx]) / 2)
        value = func(mid, idx)
        less = value < target[idx]
        greater = value > target[idx]
        equal = ~less & ~greater
        lo[idx[less]] = mid[less] + 1
        hi[idx[greater]] = mid[greater] - 1
        result[idx[equal]] = mid[equal]
        done[idx[equal]] = True
        active = (lo < hi) & ~done
    rest = np.flatnonzero(~done)
    if rest.size:
        at_lo = func(lo[rest], rest) <= target[rest]
        result[rest] = np.where(at_lo, lo[rest], lo[rest] - 1)
    return result


def rate_ratio_test(
    count_a: Any,
    exposure_a: Any,
    count_b: Any,
    exposure_b: Any,
    *,
    level: float = 0.95,
) -> pd.DataFrame:
    """Compare two Poisson rates: rate ratio a/b, Wald CI and exact p-value.

    Vectorised: every argument may be an array (one comparison per element)
    or a scalar.

    Parameters
    ----------
    count_a, count_b : array-like
        Event counts (whole numbers >= 0).
    exposure_a, exposure_b : array-like
        Exposures (> 0): person-years, residents x months, area, ...
    level : float, default 0.95
        Confidence level of the interval.

    Returns
    -------
    pandas.DataFrame
        Columns ``count_a``, ``exposure_a``, ``count_b``, ``exposure_b``,
        ``rate_a``, ``rate_b``, ``rate_ratio`` (rate_a / rate_b; inf when
        count_b is 0), ``se_log``, ``ci_lower``, ``ci_upper``, ``p``,
        ``reason`` (empty, or why a value is NaN).

    Notes
    -----
    Confidence interval: Wald on the log scale,
    ``exp(log(RR) +/- z * sqrt(1/a + 1/b))``; undefined (NaN) when either
    count is 0.  p-value: exact conditional test - given ``a + b`` events,
    ``a ~ Binomial(a + b, e_a / (e_a + e_b))`` under equal rates - two-sided
    as in ``scipy.stats.binomtest`` (probabilities no larger than that
    observed; Przyborowski & Wilenski 1940; Breslow & Day 1987, section 2.2).
    It stays valid when one count is 0; NaN when both are.

    Examples
    --------
    >>> df = rate_ratio_test(30, 1000, 20, 2000)
    >>> df[["rate_ratio", "ci_lower", "ci_upper"]].round(4)
       rate_ratio  ci_lower  ci_upper
    0         3.0    1.7037    5.2825
    >>> round(float(df["p"].iloc[0]), 6)
    0.000127
    """
    problems = _Problems("rate_ratio_test")
    arrays = {name: _as_float(problems, name, value) for name, value in
              (("count_a", count_a), ("exposure_a", exposure_a), ("count_b", count_b), ("exposure_b", exposure_b))}
    _check_level(problems, "level", level)
    if any(a is None for a in arrays.values()):
        problems.raise_if_any()
    for name in ("count_a", "count_b"):
        _check_counts(problems, name, arrays[name])
    for name in ("exposure_a", "exposure_b"):
        _check_positive(problems, name, arrays[name])
    broadcast = _broadcast(problems, arrays)
    problems.raise_if_any()
    a, ea, b, eb = (np.atleast_1d(x).ravel() for x in broadcast)

    rate_a, rate_b = a / ea, b / eb
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = rate_a / rate_b
        se_log = np.sqrt(1.0 / a + 1.0 / b)
    both_zero = (a == 0) & (b == 0)
    one_zero = ((a == 0) | (b == 0)) & ~both_zero
    se_log = np.where(one_zero | both_zero, np.nan, se_log)
    ratio = np.where(both_zero, np.nan, ratio)
    half = norm.isf((1.0 - level) / 2) * se_log
    with np.errstate(divide="ignore", invalid="ignore"):
        ci_lower = np.exp(np.log(ratio) - half)
        ci_upper = np.exp(np.log(ratio) + half)
    p = np.full(a.size, np.nan)
    has_events = ~both_zero
    if has_events.any():
        p[has_events] = _binomtest_two_sided(
            a[has_events], a[has_events] + b[has_events], ea[has_events] / (ea[has_events] + eb[has_events])
        )
    reason = np.where(both_zero, "no events in either group",
                      np.where(one_zero, "a count is 0: log-scale CI undefined (exact p still valid)", ""))
    index = _index_for(a.size, count_a, exposure_a, count_b, exposure_b)
    return pd.DataFrame(
        {"count_a": a, "exposure_a": ea, "count_b": b, "exposure_b": eb, "rate_a": rate_a, "rate_b": rate_b,
         "rate_ratio": ratio, "se_log": se_log, "ci_lower": ci_lower, "ci_upper": ci_upper, "p": p,
         "reason": reason},
        index=index,
    )


def change_vs_reference(
    area_before: Any,
    area_after: Any,
    ref_before: Any,
    ref_after: Any,
    *,
    level: float = 0.95,
) -> pd.DataFrame:
    """Did the area change more than the reference?  Ratio of rate ratios.

    Recorded crime in Hertfordshire is rising partly because recording is
    improving; the reference (rest of the county or district) carries that
    change, so the area's change is judged against it, never on its own.

    Parameters
    ----------
    area_before, area_after : array-like
        Counts in the area for the two periods (whole numbers >= 0).
    ref_before, ref_after : array-like
        Counts in the reference for the same periods.  Use the reference
        *without* the area (e.g. the rest of the county): the standard error
        assumes the four counts are independent.
    level : float, default 0.95
        Confidence level.

    Returns
    -------
    pandas.DataFrame
        Columns ``area_before``, ``area_after``, ``ref_before``,
        ``ref_after``, ``area_change`` (after/before), ``reference_change``,
        ``ratio_of_ratios``, ``pct_change_vs_reference`` (100 x (ratio - 1)),
        ``se_log``, ``ci_lower``, ``ci_upper``, ``pct_ci_lower``,
        ``pct_ci_upper``, ``z``, ``p`` (two-sided, normal on the log scale),
        ``reason`` (empty, or why the row is NaN).

    Notes
    -----
    ``RR = (area_after / area_before) / (ref_after / ref_before)``,
    ``SE(log RR) = sqrt(1/a + 1/b + 1/c + 1/d)`` (the log incidence-rate
    ratio of a 2x2 table of counts; the same form as the difference-in-
    differences IRR of the evaluation chapter of methods.md).  Periods of
    different length cancel as long as area and reference share them.  When
    any count is 0 the log ratio is undefined: the row is NaN with a reason;
    no continuity correction is applied silently.

    Examples
    --------
    >>> df = change_vs_reference(100, 150, 1000, 1200)
    >>> df[["ratio_of_ratios", "pct_change_vs_reference", "z", "p"]].round(4)
       ratio_of_ratios  pct_change_vs_reference       z       p
    0             1.25                     25.0  1.6406  0.1009
    """
    problems = _Problems("change_vs_reference")
    names = ("area_before", "area_after", "ref_before", "ref_after")
    arrays = {name: _as_float(problems, name, value) for name, value in
              zip(names, (area_before, area_after, ref_before, ref_after))}
    _check_level(problems, "level", level)
    if any(a is None for a in arrays.values()):
        problems.raise_if_any()
    for name in names:
        _check_counts(problems, name, arrays[name])
    broadcast = _broadcast(problems, arrays)
    problems.raise_if_any()
    ab, aa, rb, ra = (np.atleast_1d(x).ravel() for x in broadcast)

    zero = {name: arr == 0 for name, arr in zip(names, (ab, aa, rb, ra))}
    any_zero = np.logical_or.reduce(list(zero.values()))
    with np.errstate(divide="ignore", invalid="ignore"):
        area_change = aa / ab
        reference_change = ra / rb
        ratio = np.where(any_zero, np.nan, area_change / reference_change)
        se_log = np.where(any_zero, np.nan, np.sqrt(1 / ab + 1 / aa + 1 / rb + 1 / ra))
        log_ratio = np.log(ratio)
        z = log_ratio / se_log
    half = norm.isf((1.0 - level) / 2) * se_log
    ci_lower, ci_upper = np.exp(log_ratio - half), np.exp(log_ratio + half)
    p = 2.0 * special.ndtr(-np.abs(z))
    reason = np.array([""] * ab.size, dtype=object)
    for i in np.flatnonzero(any_zero):
        zero_names = ", ".join(name for name in names if zero[name][i])
        reason[i] = f"zero count in {zero_names}: log ratio undefined"
    index = _index_for(ab.size, area_before, area_after, ref_before, ref_after)
    return pd.DataFrame(
        {"area_before": ab, "area_after": aa, "ref_before": rb, "ref_after": ra, "area_change": area_change,
         "reference_change": reference_change, "ratio_of_ratios": ratio,
         "pct_change_vs_reference": 100.0 * (ratio - 1.0), "se_log": se_log, "ci_lower": ci_lower,
         "ci_upper": ci_upper, "pct_ci_lower": 100.0 * (ci_lower - 1.0), "pct_ci_upper": 100.0 * (ci_upper - 1.0),
         "z": z, "p": p, "reason": reason.astype(str)},
        index=index,
    )
