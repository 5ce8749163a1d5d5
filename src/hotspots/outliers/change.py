"""Change in a Poisson rate: two-period rate ratios and the ratio of rate ratios.

* :func:`rate_ratio_test`: rate ratio of two Poisson counts with their
  exposures, the exact conditional (binomial) p-value and the interval that
  inverts the same test, so the two never disagree;
* :func:`change_vs_reference`: an area's change against a reference area's
  change (the rest of the county), the ratio of rate ratios with its interval
  and p-value from the same log-scale normal statistic, optionally widened
  for overdispersion (``phi``), so force-wide recording changes cancel out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import special

# scipy.stats' beta, binom, norm and t, without importing scipy.stats
from hotspots._dist import beta_isf, beta_ppf, binom_cdf, binom_sf, norm_isf, t_isf, t_sf
from hotspots._validate import (
    _as_float,
    _broadcast,
    _check_counts,
    _check_level,
    _check_positive,
    _first_bad,
    _index_for,
    _Problems,
)


def rate_ratio_test(
    count_a: Any,
    exposure_a: Any,
    count_b: Any,
    exposure_b: Any,
    *,
    level: float = 0.95,
) -> pd.DataFrame:
    """Compare two Poisson rates: rate ratio a/b, its exact conditional p-value and the matching interval.

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
        count_b is 0), ``se_log`` (Wald, ``sqrt(1/a + 1/b)``; NaN when a
        count is 0), ``ci_lower``, ``ci_upper``, ``p``, ``reason`` (empty, or
        a note on a zero count).

    Notes
    -----
    Given ``a + b`` events, ``a ~ Binomial(a + b, pi)`` with
    ``pi = RR e_a / (RR e_a + e_b)`` (Przyborowski & Wilenski 1940; Breslow
    & Day 1987, section 2.2).  The p-value is the exact central (equal-tailed)
    test of ``RR = 1``: ``min(1, 2 min(P(X <= a), P(X >= a)))``.  The
    interval inverts the same test: the Clopper-Pearson interval for ``pi``
    (beta quantiles), mapped to ``RR = pi / (1 - pi) x e_b / e_a``.  So the
    interval excludes 1 exactly when ``p < 1 - level`` (a Wald interval with
    an exact p-value disagreed in 117 of 14,460 rows of the 2025
    Hertfordshire change table).  A zero count gives a lower limit of 0 (or
    an upper limit of inf); NaN when both counts are 0.

    Examples
    --------
    >>> df = rate_ratio_test(30, 1000, 20, 2000)
    >>> df[["rate_ratio", "ci_lower", "ci_upper"]].round(4)
       rate_ratio  ci_lower  ci_upper
    0         3.0    1.6483    5.5735
    >>> round(float(df["p"].iloc[0]), 6)
    0.0002
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
    ci_lower, ci_upper, p = (np.full(a.size, np.nan) for _ in range(3))
    has = ~both_zero
    if has.any():
        ci_lower[has], ci_upper[has], p[has] = _exact_rate_ratio(a[has], b[has], ea[has], eb[has], level)
    reason = np.where(both_zero, "no events in either group",
                      np.where(a == 0, "count_a is 0: rate ratio 0, exact interval from 0",
                               np.where(b == 0, "count_b is 0: rate ratio infinite, exact interval to infinity", "")))
    index = _index_for(a.size, count_a, exposure_a, count_b, exposure_b)
    return pd.DataFrame(
        {"count_a": a, "exposure_a": ea, "count_b": b, "exposure_b": eb, "rate_a": rate_a, "rate_b": rate_b,
         "rate_ratio": ratio, "se_log": se_log, "ci_lower": ci_lower, "ci_upper": ci_upper, "p": p,
         "reason": reason},
        index=index,
    )


def _exact_rate_ratio(a, b, ea, eb, level):
    """Clopper-Pearson interval of the rate ratio and the central exact p of RR = 1 (counts not both 0)."""
    n = a + b
    tail = (1.0 - level) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        pi_low = np.where(a > 0, beta_ppf(tail, a, b + 1), 0.0)
        pi_high = np.where(b > 0, beta_isf(tail, a + 1, b), 1.0)
        lower = pi_low / (1.0 - pi_low) * eb / ea
        upper = np.where(pi_high < 1.0, pi_high / (1.0 - pi_high), np.inf) * eb / ea
    pi0 = ea / (ea + eb)
    p = np.minimum(1.0, 2.0 * np.minimum(binom_cdf(a, n, pi0), binom_sf(a - 1, n, pi0)))
    return lower, upper, p


def change_vs_reference(
    area_before: Any,
    area_after: Any,
    ref_before: Any,
    ref_after: Any,
    *,
    level: float = 0.95,
    phi: Any = 1.0,
    df: Any = np.inf,
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
    phi : float or array-like, default 1.0
        Overdispersion factor (>= 1) of the log ratio of ratios, one value or
        one per row: the standard error is multiplied by ``sqrt(phi)``, which
        widens the interval and shrinks ``z`` (Spiegelhalter 2005, section 5;
        estimate it with :func:`hotspots.outliers.dispersion.overdispersion`
        on the unadjusted ``z`` of comparable rows).
    df : float or array-like, default inf
        Degrees of freedom of the reference distribution of ``z``: inf is
        the normal; with ``phi`` estimated from n areas pass ``n - 1`` (a
        t reference, as for quasi-Poisson models with an estimated
        dispersion, McCullagh & Nelder 1989, section 6.2).

    Returns
    -------
    pandas.DataFrame
        Columns ``area_before``, ``area_after``, ``ref_before``,
        ``ref_after``, ``area_change`` (after/before), ``reference_change``,
        ``ratio_of_ratios``, ``pct_change_vs_reference`` (100 x (ratio - 1)),
        ``se_log`` (with ``sqrt(phi)``), ``ci_lower``, ``ci_upper``,
        ``pct_ci_lower``, ``pct_ci_upper``, ``z``, ``p`` (two-sided, normal on
        the log scale: the interval excludes 1 exactly when ``p < 1 - level``),
        ``phi``, ``reason`` (empty, or why the row is NaN).

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
    phi_array = _as_float(problems, "phi", phi)
    bad_phi = None if phi_array is None else ~(np.isfinite(phi_array) & (phi_array >= 1.0))
    if bad_phi is not None and bad_phi.any():
        problems.add(f"phi must be finite and >= 1; got {_first_bad(phi_array, bad_phi)}",
                     "Pass 1 for no overdispersion, or overdispersion(z).phi when the test says overdispersed.")
    df_array = _as_float(problems, "df", df)
    if df_array is not None and not (df_array >= 1).all():
        problems.add(f"df must be >= 1 (or inf); got {_first_bad(df_array, ~(df_array >= 1))}",
                     "Pass the number of areas phi was estimated from minus 1, or inf for the normal.")
    broadcast = _broadcast(problems, {**arrays, "phi": phi_array, "df": df_array})
    problems.raise_if_any()
    ab, aa, rb, ra, phis, dfs = (np.atleast_1d(x).ravel() for x in broadcast)

    zero = {name: arr == 0 for name, arr in zip(names, (ab, aa, rb, ra))}
    any_zero = np.logical_or.reduce(list(zero.values()))
    with np.errstate(divide="ignore", invalid="ignore"):
        area_change = aa / ab
        reference_change = ra / rb
        ratio = np.where(any_zero, np.nan, area_change / reference_change)
        se_log = np.where(any_zero, np.nan, np.sqrt(phis * (1 / ab + 1 / aa + 1 / rb + 1 / ra)))
        log_ratio = np.log(ratio)
        z = log_ratio / se_log
    finite_df = np.isfinite(dfs)
    quantile = np.where(finite_df, t_isf((1.0 - level) / 2, np.where(finite_df, dfs, 1.0)),
                        norm_isf((1.0 - level) / 2))
    half = quantile * se_log
    ci_lower, ci_upper = np.exp(log_ratio - half), np.exp(log_ratio + half)
    p = np.where(finite_df, 2.0 * t_sf(np.abs(z), np.where(finite_df, dfs, 1.0)), 2.0 * special.ndtr(-np.abs(z)))
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
         "z": z, "p": p, "phi": phis, "df": dfs, "reason": reason.astype(str)},
        index=index,
    )
