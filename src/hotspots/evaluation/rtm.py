"""Regression to the mean: did the treated areas change more than equally high untreated places?

References
----------
.. [7] Barnett, A. G., van der Pols, J. C. & Dobson, A. J. (2005). Regression to
   the mean: what it is and how to deal with it. *International Journal of
   Epidemiology* 34(1), 215-220.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hotspots.evaluation._checks import (
    _check_level,
    _count_array,
    _Problems,
    _short,
    _two_sided_p,
    _z_crit,
)

log = logging.getLogger(__name__)

__all__ = ["RTMCheck", "rtm_check"]

@dataclass(frozen=True)
class RTMCheck:
    """Regression-to-the-mean check (see :func:`rtm_check`)."""

    method: str
    k: int | None
    n_treated: int
    n_comparison: int
    treated_before: float
    treated_after: float
    treated_change_pct: float
    comparison_before: float
    comparison_after: float
    comparison_change_pct: float
    treated_mean_before: float
    comparison_mean_before: float
    rate_ratio: float
    rr_low: float
    rr_high: float
    p_value: float
    level: float
    verdict: str
    note: str
    comparison_index: tuple[int, ...]


def _nearest_weights(selected_before: np.ndarray, pool_before: np.ndarray, k: int) -> np.ndarray:
    """Pool weights from k-nearest before-count matching, with replacement.

    Each treated area hands out a total weight of 1: 1/k to each strictly
    nearer match, and the remainder shared equally among the areas tied at the
    k-th distance, so the result does not depend on the order of the pool.
    """
    weights = np.zeros(pool_before.size)
    for value in selected_before:
        distance = np.abs(pool_before - value)
        kth = np.partition(distance, k - 1)[k - 1]
        nearer = distance < kth
        tied = distance == kth
        weights[nearer] += 1.0 / k
        weights[tied] += (k - nearer.sum()) / (k * tied.sum())
    return weights


def rtm_check(
    selected_before: Any,
    selected_after: Any,
    pool_before: Any,
    pool_after: Any,
    *,
    k: int | None = None,
    level: float = 0.95,
) -> RTMCheck:
    """Regression-to-the-mean check: compare with equally high untreated areas.

    Areas chosen because their counts were high tend to fall afterwards even
    with no intervention [7]_.  If the treated areas were selected on their
    before-period counts, compare their change with untreated areas that had
    similar before counts: what those areas did is what regression to the
    mean (and county-wide change) alone would produce.

    Parameters
    ----------
    selected_before, selected_after : array_like of int
        Before and after counts of each treated area (same order).
    pool_before, pool_after : array_like of int
        Before and after counts of each untreated candidate area.
    k : int, optional
        ``None`` (default): the comparison is every untreated area whose
        before count is at least the lowest treated area's ("equally high");
        if there is none, nearest matching with ``k=1`` is used instead, and
        ``method`` says so.  An integer: for each treated area the ``k``
        untreated areas with the nearest before count (with replacement; ties
        at the k-th distance share the weight), each weighted 1/k.
    level : float, default 0.95
        Confidence level.

    Returns
    -------
    RTMCheck
        ``method``; ``k`` used (None for the equally-high set); ``n_treated``;
        ``n_comparison`` (distinct areas); treated and comparison totals
        before/after (comparison totals are weighted) with their
        ``*_change_pct``; ``treated_mean_before`` and
        ``comparison_mean_before`` (per area, to judge the match);
        ``rate_ratio`` = treated change / comparison change with
        ``rr_low``/``rr_high`` and ``p_value``; ``level``; ``verdict``;
        ``note``; ``comparison_index`` (positions in the pool used).

    Notes
    -----
    The interval treats counts as Poisson and, for weighted comparisons, uses
    the delta method: ``Var(log RR) = 1/Sa + 1/Sb + sum(w^2 a)/Ma^2 +
    sum(w^2 b)/Mb^2``.  If the comparison areas had clearly lower before
    counts than the treated ones (as when the treated areas are the top N),
    they will regress less, and the check favours the patrols; a note says so.

    References
    ----------
    .. [7] Barnett, van der Pols & Dobson (2005), *Int. J. Epidemiol.* 34, 215-220.

    Examples
    --------
    >>> res = rtm_check([40, 35], [30, 27], [38, 36, 12, 10], [29, 28, 12, 11])
    >>> print(res.method)
    untreated areas with a before count >= the lowest treated area's (35): 2 areas
    >>> print(f"{res.treated_change_pct:.1f}% {res.comparison_change_pct:.1f}%")
    -24.0% -23.0%
    >>> res.verdict.split(":")[0]
    'consistent with regression to the mean'
    """
    problems = _Problems("rtm_check")
    arrays = {}
    for name, value in (("selected_before", selected_before), ("selected_after", selected_after),
                        ("pool_before", pool_before), ("pool_after", pool_after)):
        arr = _count_array(name, value, problems)
        if arr is not None and arr.ndim != 1:
            problems.add(f"{name} has shape {arr.shape}; expected one count per area",
                         "pass a 1-D list or array")
            arr = None
        arrays[name] = arr
    for a, b in (("selected_before", "selected_after"), ("pool_before", "pool_after")):
        if arrays[a] is not None and arrays[b] is not None and arrays[a].size != arrays[b].size:
            problems.add(f"{a} has {arrays[a].size} areas but {b} has {arrays[b].size}",
                         "pass before and after counts for the same areas, in the same order")
    if k is not None:
        pool_size = arrays["pool_before"].size if arrays["pool_before"] is not None else None
        if (not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1
                or (pool_size is not None and k > pool_size)):
            problems.add(f"k={_short(k)} is not a whole number between 1 and the pool size "
                         f"({pool_size})", "use k=None (equally high areas) or e.g. k=3")
    _check_level(problems, "level", level)
    problems.raise_if_any()
    sb, sa = arrays["selected_before"], arrays["selected_after"]
    pb, pa = arrays["pool_before"], arrays["pool_after"]

    k_used: int | None = None if k is None else int(k)
    if k is None:
        threshold = sb.min()
        equally_high = pb >= threshold
        if equally_high.any():
            weights = equally_high.astype(float)
            method = (f"untreated areas with a before count >= the lowest treated area's "
                      f"({threshold:g}): {int(equally_high.sum())} areas")
        else:
            k_used = 1
            weights = _nearest_weights(sb, pb, 1)
            method = (f"no untreated area had a before count >= the lowest treated area's "
                      f"({threshold:g}); used nearest before-count matching, 1 per treated area")
        log.info("rtm_check comparison chosen automatically: %s", method)
    else:
        weights = _nearest_weights(sb, pb, int(k))
        method = f"nearest before-count matching, {int(k)} per treated area (with replacement)"

    treated_before, treated_after = float(sb.sum()), float(sa.sum())
    comp_before, comp_after = float(weights @ pb), float(weights @ pa)
    treated_mean = float(sb.mean())
    comp_mean = comp_before / float(weights.sum())
    nan = float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        treated_change = 100 * (treated_after / treated_before - 1) if treated_before else nan
        comp_change = 100 * (comp_after / comp_before - 1) if comp_before else nan
    notes = []
    if min(treated_before, treated_after, comp_before, comp_after) == 0:
        rr = low = high = p = nan
        verdict = ("cannot check: a before or after total is zero, so the change cannot be "
                   "expressed as a ratio")
    else:
        log_rr = math.log(treated_after / treated_before) - math.log(comp_after / comp_before)
        var = (1 / treated_after + 1 / treated_before
               + float((weights ** 2) @ pa) / comp_after ** 2
               + float((weights ** 2) @ pb) / comp_before ** 2)
        se = math.sqrt(var)
        zc = _z_crit(level)
        rr, low, high = math.exp(log_rr), math.exp(log_rr - zc * se), math.exp(log_rr + zc * se)
        p = float(_two_sided_p(log_rr / se))
        numbers = (f"treated areas {treated_change:+.1f}%, equally high untreated areas "
                   f"{comp_change:+.1f}%; treated relative to them {100 * (rr - 1):+.1f}% "
                   f"({level:.0%} CI {100 * (low - 1):+.1f}% to {100 * (high - 1):+.1f}%)")
        if high < 1:
            verdict = ("not explained by regression to the mean alone: the treated areas "
                       f"fell more than equally high untreated areas ({numbers})")
        elif low > 1:
            verdict = ("worse than equally high untreated areas: the treated areas changed "
                       f"less favourably than areas with similar before counts ({numbers})")
        else:
            verdict = ("consistent with regression to the mean: the treated areas changed "
                       f"about as much as equally high untreated areas ({numbers})")
        if comp_change < 0:
            notes.append(f"untreated areas with similar before counts fell {-comp_change:.1f}% "
                         "without patrols: that much of a raw before/after fall is expected anyway")
    if comp_mean < 0.8 * treated_mean:
        notes.append(f"the comparison areas had lower before counts (mean {comp_mean:.1f} vs "
                     f"{treated_mean:.1f} per area), so they regress less than the treated "
                     "areas would: the check favours the patrols")
    return RTMCheck(
        method=method, k=k_used, n_treated=int(sb.size), n_comparison=int((weights > 0).sum()),
        treated_before=treated_before, treated_after=treated_after,
        treated_change_pct=treated_change, comparison_before=comp_before,
        comparison_after=comp_after, comparison_change_pct=comp_change,
        treated_mean_before=treated_mean, comparison_mean_before=comp_mean,
        rate_ratio=rr, rr_low=low, rr_high=high, p_value=p, level=float(level),
        verdict=verdict, note="; ".join(notes),
        comparison_index=tuple(int(i) for i in np.flatnonzero(weights > 0)),
    )
