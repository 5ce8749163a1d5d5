"""Funnel plots for counts: Poisson z-scores, exact limits, overdispersion and area flags.

The statistics behind the CSP outlier tables, on plain arrays:

* :func:`poisson_z` and :func:`exact_poisson_interval` (Garwood 1936);
* the overdispersion estimate (:func:`hotspots.outliers.dispersion.overdispersion`)
  that widens the limits lives in :mod:`hotspots.outliers.dispersion`;
* :func:`funnel_limits`: exact interpolated Poisson (or normal) funnel limits
  for a standardised ratio O/E, optionally widened for overdispersion;
* :func:`funnel_outliers`: every area against a reference rate, with limits
  and flags before and after the overdispersion adjustment.

References: Spiegelhalter (2005) "Funnel plots for comparing institutional
performance", Statistics in Medicine 24:1185-1202; Spiegelhalter (2005)
"Handling over-dispersion of performance indicators", Quality and Safety in
Health Care 14:347-351.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.special as sc

# scipy.stats' chi2, norm and poisson, without importing scipy.stats
from hotspots._dist import (
    _poisson_pmf,
    _poisson_ppf,
    chi2_ppf,
    norm_isf,
    poisson_cdf,
    poisson_pmf,
    poisson_ppf,
    poisson_sf,
)
from hotspots._validate import (
    _as_float,
    _broadcast,
    _check_choice,
    _check_counts,
    _check_level,
    _check_levels,
    _check_positive,
    _index_for,
    _is_real,
    _Problems,
    level_label,
)
from hotspots.outliers.dispersion import overdispersion

__all__ = ["poisson_z", "exact_poisson_interval", "funnel_limits", "funnel_outliers"]


def poisson_z(observed: Any, expected: Any) -> np.ndarray:
    """Poisson z-score ``(O - E) / sqrt(E)``.

    Parameters
    ----------
    observed : array-like
        Observed counts (>= 0; NaN gives NaN).
    expected : array-like
        Expected counts under the reference rate, broadcastable with
        ``observed``.

    Returns
    -------
    numpy.ndarray
        z-scores; NaN where ``E <= 0`` or either input is NaN.

    Notes
    -----
    The normal approximation to the Poisson used for funnel plots of
    standardised ratios (Spiegelhalter 2005, "Funnel plots for comparing
    institutional performance", Statistics in Medicine 24:1185-1202).  For
    small E use :func:`funnel_limits` with ``method="exact"`` or the exact
    p-values of :func:`funnel_outliers` instead of reading z against the normal.

    Examples
    --------
    >>> poisson_z([12, 5, 3], [9.0, 5.0, 0.0]).tolist()
    [1.0, 0.0, nan]
    """
    problems = _Problems("poisson_z")
    o = _as_float(problems, "observed", observed)
    e = _as_float(problems, "expected", expected)
    problems.raise_if_any()
    _check_counts(problems, "observed", o, allow_nan=True, integer=False)
    arrays = _broadcast(problems, {"observed": o, "expected": e})
    problems.raise_if_any()
    o, e = arrays
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (o - e) / np.sqrt(e)
    return np.where(e > 0, z, np.nan)


def exact_poisson_interval(count: Any, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) confidence interval for a Poisson mean.

    Parameters
    ----------
    count : array-like
        Observed counts: whole numbers >= 0 (NaN gives NaN).
    level : float, default 0.95
        Two-sided confidence level.

    Returns
    -------
    lower, upper : numpy.ndarray
        Interval for the Poisson mean, same shape as ``count`` (numpy scalars
        for scalar input).

    Notes
    -----
    Garwood (1936, Biometrika 28:437-442): with ``a = 1 - level``,
    ``lower = chi2.ppf(a/2, 2k) / 2`` (0 when k = 0) and
    ``upper = chi2.ppf(1 - a/2, 2k + 2) / 2``.  The interval is conservative
    (coverage >= level).  Divide by an exposure (population, E) to get an
    interval for a rate or a standardised ratio.

    Examples
    --------
    >>> lower, upper = exact_poisson_interval(10)
    >>> round(float(lower), 4), round(float(upper), 4)
    (4.7954, 18.3904)
    >>> lower, upper = exact_poisson_interval([0, 3], level=0.9)
    >>> lower.round(4).tolist(), upper.round(4).tolist()
    ([0.0, 0.8177], [2.9957, 7.7537])
    """
    problems = _Problems("exact_poisson_interval")
    k = _as_float(problems, "count", count)
    _check_level(problems, "level", level)
    if k is not None:
        _check_counts(problems, "count", k, allow_nan=True)
    problems.raise_if_any()
    alpha = 1.0 - float(level)
    positive = k > 0
    lower = np.where(positive, chi2_ppf(alpha / 2, np.where(positive, 2 * k, 1.0)) / 2, 0.0)
    upper = chi2_ppf(1 - alpha / 2, 2 * k + 2) / 2
    lower = np.where(np.isnan(k), np.nan, lower)
    return lower[()], upper[()]

def _poisson_interpolated_quantile(prob: float, mean: np.ndarray) -> np.ndarray:
    """Spiegelhalter's continuous Poisson quantile: ``r_p - alpha``.

    ``r_p`` is the smallest r with ``F(r) >= prob`` and
    ``alpha = (F(r_p) - prob) / (F(r_p) - F(r_p - 1))`` (Spiegelhalter 2005,
    Statistics in Medicine, appendix A.1.2), so the limit moves smoothly with
    the mean instead of in steps.
    """
    r = poisson_ppf(prob, mean)
    alpha = (poisson_cdf(r, mean) - prob) / poisson_pmf(r, mean)
    return r - alpha


def _poisson_interpolated_quantiles(probs: Sequence[float], mean: np.ndarray) -> list[np.ndarray]:
    """``[_poisson_interpolated_quantile(p, mean) for p in probs]``, the same numbers bit for bit.

    The funnel limits of one table are four quantiles of each of a few hundred
    means; the generic ``rv_discrete`` wrappers (argument checks, ``place``
    of the valid entries) cost more than the kernels there.  For probabilities
    in (0, 1) and finite means > 0 every entry is valid, and those wrappers
    reduce to the kernels on the whole array (plus ``loc = 0``, clipped to
    [0, 1] for the cdf and pmf), so they are called directly, on all the
    probabilities at once: the kernels are elementwise, so each value is the
    one its own call gave.  Anything else (or a quantile that is not a finite
    whole number >= 0) takes the wrappers.
    """
    mean = np.asarray(mean, dtype=float)
    probs = [float(p) for p in probs]
    if (mean.ndim != 1 or not all(0.0 < p < 1.0 for p in probs)
            or not (np.isfinite(mean).all() and (mean > 0).all())):
        return [_poisson_interpolated_quantile(p, mean) for p in probs]
    q = np.repeat(np.asarray(probs), mean.size)
    mu = np.tile(mean, len(probs))
    r = _poisson_ppf(q, mu) + 0  # rv_discrete.ppf adds loc (0), as the wrapper does
    if not (np.isfinite(r).all() and (r >= 0).all()):
        return [_poisson_interpolated_quantile(p, mean) for p in probs]
    cdf = np.clip(sc.pdtr(np.floor(r - 0), mu), 0, 1)  # rv_discrete.cdf: k - loc, the kernel, clipped
    pmf = np.clip(_poisson_pmf(r - 0, mu), 0, 1)  # rv_discrete.pmf
    out = r - (cdf - q) / pmf
    return [out[i * mean.size:(i + 1) * mean.size] for i in range(len(probs))]


def funnel_limits(
    expected: Any,
    *,
    target: float = 1.0,
    levels: Sequence[float] = (0.95, 0.998),
    method: str = "exact",
    adjustment: str | None = None,
    phi: float = 1.0,
    tau2: float = 0.0,
) -> pd.DataFrame:
    """Funnel-plot control limits for a standardised ratio O/E.

    The indicator is the ratio ``y = O / E`` of an observed count to the count
    expected at the reference rate; under the null ``O ~ Poisson(target * E)``.
    For limits on the rate scale multiply by the reference rate (e.g. the
    county rate per 1,000 residents): ``rate_limit = ratio_limit * rate``.

    Parameters
    ----------
    expected : array-like
        Expected counts E (the funnel's x-axis).  ``E <= 0`` or NaN gives NaN
        limits.
    target : float, default 1.0
        Null value of the ratio (1 when E comes from the reference rate).
    levels : sequence of float, default (0.95, 0.998)
        Two-sided coverage of each pair of limits (95% and 99.8%, i.e. about
        2 and 3 standard deviations).
    method : {"exact", "normal"}, default "exact"
        ``"exact"``: Spiegelhalter's interpolated exact Poisson quantiles,
        valid for any E; they converge to the normal limits as E grows, so no
        switch-over point is needed.  ``"normal"``:
        ``target +/- z_p * sqrt(target / E)``.
    adjustment : {None, "multiplicative", "additive"}, default None
        Overdispersion adjustment.  ``"multiplicative"`` widens the distance of
        each limit from the target by ``sqrt(phi)``; ``"additive"`` widens it
        by ``sqrt(1 + tau2 / s2)`` with ``s2 = target / E``, i.e. the limits
        become ``target +/- z_p * sqrt(s2 + tau2)`` (exactly so for
        ``method="normal"``).
    phi : float, default 1.0
        Overdispersion factor for ``adjustment="multiplicative"``.
    tau2 : float, default 0.0
        Between-unit variance (ratio scale) for ``adjustment="additive"``.

    Returns
    -------
    pandas.DataFrame
        Columns ``expected`` then ``lower_<L>``, ``upper_<L>`` per level, with
        ``<L> = level_label(level)`` (``lower_95``, ``upper_95``,
        ``lower_998``, ``upper_998`` by default).  Lower limits are floored
        at 0.

    Notes
    -----
    Spiegelhalter (2005) "Funnel plots for comparing institutional
    performance", Statistics in Medicine 24:1185-1202 (exact limits:
    appendix A.1.2; overdispersion: section 5); Spiegelhalter (2005)
    "Handling over-dispersion of performance indicators", Quality and Safety
    in Health Care 14:347-351.

    Examples
    --------
    >>> funnel_limits([10, 100], levels=(0.95,)).round(4)
       expected  lower_95  upper_95
    0      10.0    0.3775    1.6160
    1     100.0    0.8037    1.1958
    >>> funnel_limits([100], levels=(0.95,), method="normal",
    ...               adjustment="multiplicative", phi=4.0).round(4)
       expected  lower_95  upper_95
    0     100.0     0.608     1.392
    """
    return _funnel_limits_sharing(expected, [{"adjustment": adjustment, "phi": phi, "tau2": tau2}],
                                  target=target, levels=levels, method=method)[0]


def _check_funnel_limits(expected: Any, *, target: float, levels: Sequence[float], method: str,
                         adjustment: str | None, phi: float, tau2: float) -> tuple[np.ndarray, tuple[float, ...]]:
    """:func:`funnel_limits`' checks (one error for every problem): the expected counts and levels, checked."""
    problems = _Problems("funnel_limits")
    e = _as_float(problems, "expected", expected)
    levels = _check_levels(problems, "levels", levels)
    _check_choice(problems, "method", method, ("exact", "normal"))
    _check_choice(problems, "adjustment", adjustment, (None, "multiplicative", "additive"))
    if not (_is_real(target) and math.isfinite(target) and target > 0):
        problems.add(f"target must be a finite number > 0; got {target!r}",
                     "For a standardised ratio O/E the target is 1.")
    if not (_is_real(phi) and math.isfinite(phi) and phi > 0):
        problems.add(f"phi must be a finite number > 0; got {phi!r}", "Take phi from overdispersion(z).phi.")
    elif phi != 1.0 and adjustment != "multiplicative":
        problems.add(f"phi={phi!r} was given but adjustment={adjustment!r}, so it would be ignored",
                     "Pass adjustment='multiplicative' to use phi.")
    if not (_is_real(tau2) and math.isfinite(tau2) and tau2 >= 0):
        problems.add(f"tau2 must be a finite number >= 0; got {tau2!r}",
                     "Take tau2 from overdispersion(z, se=...).tau2.")
    elif tau2 != 0.0 and adjustment != "additive":
        problems.add(f"tau2={tau2!r} was given but adjustment={adjustment!r}, so it would be ignored",
                     "Pass adjustment='additive' to use tau2.")
    problems.raise_if_any()
    return e, levels


def _funnel_limits_sharing(expected: Any, variants: Sequence[dict[str, Any]], *, target: float = 1.0,
                           levels: Sequence[float] = (0.95, 0.998), method: str = "exact") -> list[pd.DataFrame]:
    """``[funnel_limits(expected, target=..., levels=..., method=..., **v) for v in variants]``, the same frames.

    Each variant is ``{"adjustment": ..., "phi": ..., "tau2": ...}`` (missing
    keys take :func:`funnel_limits`' defaults) and is checked as that call
    would check it, in order.  The Poisson (or normal) quantiles do not depend
    on the adjustment, which only widens them afterwards, so they are computed
    once for all variants: the same arithmetic on the same numbers, so the
    same values, for a fraction of the time (the quantiles are nearly all of it).
    """
    e_flat, columns = _funnel_limits_columns(expected, variants, target=target, levels=levels, method=method)
    return [pd.DataFrame(out, index=_index_for(e_flat.size, expected)) for out in columns]


def _funnel_limits_columns(expected: Any, variants: Sequence[dict[str, Any]], *, target: float = 1.0,
                           levels: Sequence[float] = (0.95, 0.998),
                           method: str = "exact") -> tuple[np.ndarray | None, list[dict[str, np.ndarray]]]:
    """:func:`_funnel_limits_sharing` as the flat expected counts and each frame's columns (no frames)."""
    checked = []
    for variant in variants:
        v = {"adjustment": None, "phi": 1.0, "tau2": 0.0, **variant}
        e, lv = _check_funnel_limits(expected, target=target, levels=levels, method=method, **v)
        checked.append((v, lv))
    if not checked:
        return None, []
    levels = checked[0][1]
    e_flat = np.atleast_1d(e).ravel()
    valid = np.isfinite(e_flat) & (e_flat > 0)
    safe_e = np.where(valid, e_flat, 1.0)
    base = {}
    if method == "exact":  # every level's quantiles in one call (elementwise: the same numbers)
        tails = [(1.0 - level) / 2 for level in levels]
        quantiles = _poisson_interpolated_quantiles([p for t in tails for p in (t, 1.0 - t)], target * safe_e)
    for k, level in enumerate(levels):
        tail = (1.0 - level) / 2
        if method == "exact":
            lower = quantiles[2 * k] / safe_e
            upper = quantiles[2 * k + 1] / safe_e
        else:
            half = norm_isf(tail) * np.sqrt(target / safe_e)
            lower, upper = target - half, target + half
        base[level] = (lower, upper)
    frames = []
    for v, _ in checked:
        adjustment, phi, tau2 = v["adjustment"], v["phi"], v["tau2"]
        out = {"expected": e_flat}
        for level in levels:
            lower, upper = base[level]
            if adjustment == "multiplicative":
                widen = np.sqrt(phi)
            elif adjustment == "additive":
                widen = np.sqrt(1.0 + tau2 * safe_e / target)
            else:
                widen = 1.0
            lower = target - widen * (target - lower)
            upper = target + widen * (upper - target)
            label = level_label(level)
            out[f"lower_{label}"] = np.where(valid, np.maximum(lower, 0.0), np.nan)
            out[f"upper_{label}"] = np.where(valid, upper, np.nan)
        frames.append(out)
    return e_flat, frames


def _flag_against_limits(ratio: np.ndarray, limits: Mapping[str, Any] | pd.DataFrame, levels: tuple[float, ...],
                         suffix: str = "") -> pd.Categorical:
    """high_<L>/low_<L> for the widest limits crossed, else "within" (``limits``: a frame or columns by name)."""
    codes, categories = _flag_codes(ratio, limits, levels, suffix)
    return pd.Categorical.from_codes(codes, categories=categories, ordered=True)


def _flag_codes(ratio: np.ndarray, limits: Mapping[str, Any] | pd.DataFrame, levels: tuple[float, ...],
                suffix: str = "") -> tuple[np.ndarray, list[str]]:
    """:func:`_flag_against_limits` as its codes and categories (the categorical costs more than the flags)."""
    by_width = sorted(levels, reverse=True)
    labels = [level_label(v) for v in by_width]
    categories = [f"high_{x}" for x in labels] + ["within"] + [f"low_{x}" for x in reversed(labels)]
    codes = np.full(ratio.size, categories.index("within"), dtype=np.int8)
    # narrowest first, so wider limits overwrite
    for label in reversed(labels):
        upper = np.asarray(limits[f"upper_{label}{suffix}"])
        lower = np.asarray(limits[f"lower_{label}{suffix}"])
        codes[ratio > upper] = categories.index(f"high_{label}")
        codes[ratio < lower] = categories.index(f"low_{label}")
    return codes, categories


def _poisson_mid_p(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Two-sided exact Poisson mid-p: twice the smaller one-sided mid-p, capped at 1."""
    half_point = 0.5 * poisson_pmf(observed, expected)
    below = poisson_cdf(observed - 1, expected) + half_point
    above = poisson_sf(observed, expected) + half_point
    return np.minimum(1.0, 2.0 * np.minimum(below, above))


def funnel_outliers(
    observed: Any,
    population: Any,
    *,
    reference_rate: float | None = None,
    names: Any = None,
    levels: Sequence[float] = (0.95, 0.998),
    adjust_overdispersion: bool = True,
    adjustment: str = "multiplicative",
) -> pd.DataFrame:
    """Compare areas' crime rates with a reference rate, funnel-plot style.

    Parameters
    ----------
    observed : array-like
        Crime counts per area (whole numbers >= 0).
    population : array-like
        Residents per area (Census 2021 usual residents), > 0.
    reference_rate : float, optional
        Crimes per resident (NOT per 1,000) for the expected counts.  None
        (default) uses the pooled rate ``sum(observed) / sum(population)``,
        i.e. the county rate when the areas tile the county.
    names : array-like, optional
        Area names or codes (unique); they become the ``area`` column and the
        index.
    levels : sequence of float, default (0.95, 0.998)
        Funnel limits, see :func:`funnel_limits`.
    adjust_overdispersion : bool, default True
        Widen the limits when the areas are overdispersed (chi-squared test
        at 95%, see :func:`~hotspots.outliers.dispersion.overdispersion`).  With a handful of large areas
        nearly every area lies outside the Poisson limits: real rates differ
        by more than Poisson noise, and the unadjusted flags say nothing.
    adjustment : {"multiplicative", "additive"}, default "multiplicative"
        How the limits are widened (see :func:`funnel_limits`).

    Returns
    -------
    pandas.DataFrame
        One row per area with columns ``area``, ``observed``, ``population``,
        ``rate_per_1000``, ``expected`` (reference rate x population),
        ``ratio`` (O/E), ``z`` (Poisson z), ``p`` (two-sided exact Poisson
        mid-p against E), ``z_adjusted`` (z allowing for the overdispersion,
        equal to ``z`` when no adjustment is applied), the unadjusted limits
        ``lower_<L>``/``upper_<L>``, the adjusted limits
        ``lower_<L>_adjusted``/``upper_<L>_adjusted`` (equal to the unadjusted
        ones when no adjustment is applied), ``flag_unadjusted`` and ``flag``
        (ordered categoricals: ``high_998``, ``high_95``, ``within``,
        ``low_95``, ``low_998`` for the default levels), where ``flag`` uses
        the adjusted limits.  Limits are on the ratio scale; multiply by the
        reference rate per 1,000 for rate limits.

        ``df.attrs["overdispersion"]``: :meth:`hotspots.outliers.dispersion.Overdispersion.to_dict` plus
        ``applied`` (bool) and ``adjustment``; ``df.attrs["reference_rate"]``
        (per resident), ``df.attrs["reference_rate_per_1000"]`` and
        ``df.attrs["reference_rate_source"]`` (``"pooled"`` or ``"given"``).

    Notes
    -----
    Spiegelhalter (2005) "Funnel plots for comparing institutional
    performance", Statistics in Medicine 24:1185-1202; Spiegelhalter (2005)
    "Handling over-dispersion of performance indicators", Quality and Safety
    in Health Care 14:347-351.  Exact interpolated Poisson limits; z-scores
    for the overdispersion estimate are ``(O/E - 1) / sqrt(1/E)`` with
    standard errors ``sqrt(1/E)``, so ``tau2`` is on the ratio scale.  The
    mid-p value (Lancaster 1961) is less conservative than the ordinary exact
    p; it ignores overdispersion (use ``z_adjusted`` for that).

    Examples
    --------
    >>> df = funnel_outliers([5200, 3900, 7400, 2100], [100_000, 90_000, 120_000, 60_000],
    ...                    names=["A", "B", "C", "D"], levels=(0.95,))
    >>> df[["rate_per_1000", "ratio", "flag_unadjusted", "flag"]].round(3)
       rate_per_1000  ratio flag_unadjusted    flag
    A         52.000  1.034         high_95  within
    B         43.333  0.862          low_95  within
    C         61.667  1.227         high_95  within
    D         35.000  0.696          low_95  within
    >>> df.attrs["overdispersion"]["applied"]
    True
    """
    data, index, attrs, categories = _funnel_outliers_data(
        observed, population, reference_rate=reference_rate, names=names, levels=levels,
        adjust_overdispersion=adjust_overdispersion, adjustment=adjustment)
    for column in ("flag_unadjusted", "flag"):
        data[column] = pd.Categorical.from_codes(data[column], categories=categories, ordered=True)
    df = pd.DataFrame(data, index=index)  # every column at once: inserting them one by one costs more
    df.attrs.update(attrs)
    return df


def _funnel_outliers_data(observed: Any, population: Any, *, reference_rate: float | None = None, names: Any = None,
                          levels: Sequence[float] = (0.95, 0.998), adjust_overdispersion: bool = True,
                          adjustment: str = "multiplicative") -> tuple[dict[str, Any], pd.Index, dict[str, Any], list]:
    """:func:`funnel_outliers` (same checks and numbers) as its columns, index, ``attrs`` and flag categories.

    The flag columns are the categoricals' codes (``int8``).  The level
    tables take the columns as they are: building the frame, reading its
    columns back (each read copies ``attrs``) and the categoricals cost more
    than the statistics.
    """
    problems = _Problems("funnel_outliers")
    o = _as_float(problems, "observed", observed)
    pop = _as_float(problems, "population", population)
    levels = _check_levels(problems, "levels", levels)
    _check_choice(problems, "adjustment", adjustment, ("multiplicative", "additive"))
    if not isinstance(adjust_overdispersion, (bool, np.bool_)):
        problems.add(f"adjust_overdispersion must be True or False; got {adjust_overdispersion!r}",
                     "Pass adjust_overdispersion=True (recommended) or False.")
    if o is None or pop is None:
        problems.raise_if_any()
    if o.ndim != 1 or pop.ndim != 1 or o.size != pop.size:
        problems.add(f"observed and population must be 1-D and of equal length; got shapes {o.shape} "
                     f"and {pop.shape}", "Pass one count and one population per area.")
        problems.raise_if_any()
    _check_counts(problems, "observed", o)
    _check_positive(problems, "population", pop)
    if names is not None:
        names_list = list(names)
        if len(names_list) != o.size:
            problems.add(f"names has {len(names_list)} entries but there are {o.size} areas",
                         "Pass one name per area, in the same order as observed.")
        elif len(set(names_list)) != len(names_list):
            problems.add("names has repeated entries", "Give each area a unique name or code.")
    if reference_rate is not None and not (
        _is_real(reference_rate) and math.isfinite(reference_rate) and reference_rate > 0
    ):
        problems.add(f"reference_rate must be a finite number > 0 (crimes per resident); got {reference_rate!r}",
                     "Leave reference_rate=None to use the pooled rate of the areas given.")
    problems.raise_if_any()
    if reference_rate is None and o.sum() == 0:
        problems.add("observed is zero in every area, so the pooled reference rate is 0",
                     "Skip crime types with no records, or pass reference_rate.")
    if adjust_overdispersion and o.size < 2:
        problems.add(f"adjust_overdispersion needs at least 2 areas; got {o.size}",
                     "Pass adjust_overdispersion=False for a single area.")
    problems.raise_if_any()

    source = "given" if reference_rate is not None else "pooled"
    rate = float(reference_rate) if reference_rate is not None else float(o.sum() / pop.sum())
    expected = rate * pop
    ratio = o / expected
    se = np.sqrt(1.0 / expected)
    z = (o - expected) / np.sqrt(expected)
    if names is not None:
        index = pd.Index(list(names))
    else:
        index = _index_for(o.size, observed, population)

    od = overdispersion(z, se=se) if o.size >= 2 else None
    applied = bool(adjust_overdispersion and od is not None and od.overdispersed)
    # the adjusted limits widen the same quantiles: computed once (_funnel_limits_sharing)
    if applied and adjustment == "multiplicative":
        limits, adjusted = _funnel_limits_columns(
            expected, [{}, {"adjustment": "multiplicative", "phi": od.phi}], levels=levels)[1]
        z_adjusted = z / np.sqrt(od.phi)
    elif applied:
        limits, adjusted = _funnel_limits_columns(
            expected, [{}, {"adjustment": "additive", "tau2": od.tau2}], levels=levels)[1]
        z_adjusted = (ratio - 1.0) / np.sqrt(se**2 + od.tau2)
    else:
        limits = adjusted = _funnel_limits_columns(expected, [{}], levels=levels)[1][0]
        z_adjusted = z

    data = {
        "area": index.to_numpy(),
        "observed": o,
        "population": pop,
        "rate_per_1000": 1000.0 * o / pop,
        "expected": expected,
        "ratio": ratio,
        "z": z,
        "p": _poisson_mid_p(o, expected),
        "z_adjusted": z_adjusted,
    }
    limit_columns = [c for c in limits if c != "expected"]
    for column in limit_columns:
        data[column] = limits[column]
    for column in limit_columns:
        data[f"{column}_adjusted"] = adjusted[column]
    data["flag_unadjusted"], categories = _flag_codes(ratio, data, levels)
    data["flag"], _ = _flag_codes(ratio, data, levels, suffix="_adjusted")

    od_record: dict[str, Any] | None = None if od is None else od.to_dict()
    if od_record is not None:
        od_record.update(applied=applied, adjustment=adjustment if applied else None)
    attrs = {"overdispersion": od_record, "reference_rate": rate, "reference_rate_per_1000": 1000.0 * rate,
             "reference_rate_source": source}
    return data, index, attrs, categories
