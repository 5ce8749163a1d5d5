"""Crimes prevented implied by a rate ratio, and cost per crime prevented with an honest interval."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hotspots.evaluation._checks import _check_positive_number, _Problems, _short

__all__ = ["NEGLIGIBLE_CRIMES", "CostPerCrime", "CrimesPrevented", "cost_per_crime_prevented",
           "crimes_prevented_from_irr"]

#: Fewer crimes prevented than this count as none in cost per crime prevented.
NEGLIGIBLE_CRIMES = 1e-9


@dataclass(frozen=True)
class CrimesPrevented:
    """Counterfactual crimes prevented (see :func:`crimes_prevented_from_irr`)."""

    r_after: float
    irr: float
    irr_low: float
    irr_high: float
    counterfactual_r_after: float
    crimes_prevented: float
    crimes_prevented_low: float
    crimes_prevented_high: float


def crimes_prevented_from_irr(r_after: Any, irr: Any, irr_low: Any, irr_high: Any) -> CrimesPrevented:
    """Crimes prevented implied by a rate ratio: ``Ra / IRR - Ra``, with interval.

    The counterfactual (no-patrol) count is ``Ra / IRR``; crimes prevented is
    counterfactual minus observed.  Because this falls as IRR rises, the
    interval is ``(Ra / irr_high - Ra, Ra / irr_low - Ra)``.

    Parameters
    ----------
    r_after : float
        Crimes recorded in the treated areas in the after period.
    irr, irr_low, irr_high : float
        Rate ratio and its interval (e.g. from :func:`did_rate_ratio` or
        :func:`panel_effect`), ``0 < irr_low <= irr <= irr_high``.

    Returns
    -------
    CrimesPrevented
        Inputs, ``counterfactual_r_after``, ``crimes_prevented``,
        ``crimes_prevented_low``, ``crimes_prevented_high`` (negative = more
        crime than expected).

    Notes
    -----
    Conditional on the observed ``Ra``: the interval reflects uncertainty in
    the IRR only.

    Examples
    --------
    >>> res = crimes_prevented_from_irr(700, 0.70, 0.60, 0.82)
    >>> print(f"{res.crimes_prevented:.0f} ({res.crimes_prevented_low:.0f} to {res.crimes_prevented_high:.0f})")
    300 (154 to 467)
    """
    problems = _Problems("crimes_prevented_from_irr")
    _check_positive_number("r_after", r_after, problems, allow_zero=True)
    for name, value in (("irr", irr), ("irr_low", irr_low), ("irr_high", irr_high)):
        _check_positive_number(name, value, problems)
    if not problems.messages and not float(irr_low) <= float(irr) <= float(irr_high):
        problems.add(f"irr_low={irr_low!r}, irr={irr!r}, irr_high={irr_high!r} are not in order",
                     "pass the point estimate and the lower and upper ends of its interval")
    problems.raise_if_any()
    ra, irr, low, high = float(r_after), float(irr), float(irr_low), float(irr_high)
    return CrimesPrevented(
        r_after=ra, irr=irr, irr_low=low, irr_high=high,
        counterfactual_r_after=ra / irr, crimes_prevented=ra / irr - ra,
        crimes_prevented_low=ra / high - ra, crimes_prevented_high=ra / low - ra,
    )


@dataclass(frozen=True)
class CostPerCrime:
    """Cost per crime prevented (see :func:`cost_per_crime_prevented`)."""

    funding: float
    crimes_prevented: float
    crimes_prevented_low: float
    crimes_prevented_high: float
    cost_per_crime: float
    cost_low: float
    cost_high: float
    status: str
    statement: str


def _pounds(x: float) -> str:
    return f"£{x:,.0f}"


def cost_per_crime_prevented(crimes_prevented: Any, crimes_prevented_low: Any,
                             crimes_prevented_high: Any, funding: Any) -> CostPerCrime:
    """Cost per crime prevented, with an interval that is honest about zero.

    ``cost = funding / crimes_prevented``; the interval is ``funding / high``
    to ``funding / low``.  When the interval of crimes prevented reaches 0 or
    below, the upper end is unbounded (the data allow that nothing was
    prevented) and no number is given for it; when the point estimate itself
    is 0 or below, the cost per crime prevented is undefined.

    Parameters
    ----------
    crimes_prevented, crimes_prevented_low, crimes_prevented_high : float
        Point estimate and interval of crimes prevented over the period the
        funding covers (e.g. from :func:`crimes_prevented_from_irr`).
    funding : float
        Money spent over the same period, in pounds (> 0).

    Returns
    -------
    CostPerCrime
        Inputs; ``cost_per_crime`` (NaN when undefined); ``cost_low`` (cost at
        the most favourable end, NaN if even that prevents nothing);
        ``cost_high`` (NaN when unbounded or undefined); ``status``: one of
        "defined", "unbounded", "undefined"; ``statement`` in plain words.

    Examples
    --------
    >>> cost_per_crime_prevented(300, 154, 467, 1_000_000).statement
    '£3,333 per crime prevented (interval £2,141 to £6,494)'
    >>> res = cost_per_crime_prevented(120, -40, 260, 1_000_000)
    >>> res.status, res.cost_high
    ('unbounded', nan)
    """
    problems = _Problems("cost_per_crime_prevented")
    values = {"crimes_prevented": crimes_prevented, "crimes_prevented_low": crimes_prevented_low,
              "crimes_prevented_high": crimes_prevented_high}
    for name, value in values.items():
        ok = (isinstance(value, (int, float, np.integer, np.floating))
              and not isinstance(value, bool) and math.isfinite(float(value)))
        if not ok:
            problems.add(f"{name}={_short(value)} is not a finite number",
                         "pass the estimate and interval of crimes prevented as numbers")
    _check_positive_number("funding", funding, problems)
    if not problems.messages and not (float(crimes_prevented_low) <= float(crimes_prevented)
                                   <= float(crimes_prevented_high)):
        problems.add(f"crimes_prevented_low={crimes_prevented_low!r}, crimes_prevented="
                     f"{crimes_prevented!r}, crimes_prevented_high={crimes_prevented_high!r} "
                     "are not in order", "pass low <= point <= high")
    problems.raise_if_any()
    point, low, high, money = (float(crimes_prevented), float(crimes_prevented_low),
                               float(crimes_prevented_high), float(funding))
    nan = float("nan")

    def per_crime(crimes: float) -> float:
        # below a billionth of a crime counts as none: avoids absurd or infinite costs
        cost = money / crimes if crimes > NEGLIGIBLE_CRIMES else nan
        return cost if math.isfinite(cost) else nan

    best_case = per_crime(high)
    interval = f"{low:,.0f} to {high:,.0f}"
    if low > NEGLIGIBLE_CRIMES and math.isfinite(per_crime(low)):
        status = "defined"
        cost, cost_low, cost_high = per_crime(point), best_case, per_crime(low)
        statement = (f"{_pounds(cost)} per crime prevented "
                     f"(interval {_pounds(cost_low)} to {_pounds(cost_high)})")
    elif point > NEGLIGIBLE_CRIMES and math.isfinite(per_crime(point)):
        status = "unbounded"
        cost, cost_low, cost_high = per_crime(point), best_case, nan
        statement = (f"best estimate {_pounds(cost)} per crime prevented, but the interval for "
                     f"crimes prevented ({interval}) includes zero, so the cost per crime "
                     "prevented has no upper bound: the evaluation cannot rule out that the "
                     f"funding prevented no crimes (at best {_pounds(cost_low)} per crime)")
    else:
        status = "undefined"
        cost, cost_low, cost_high = nan, best_case, nan
        statement = (f"cost per crime prevented is undefined: the best estimate is that no "
                     f"crimes were prevented ({point:,.0f}; interval {interval})")
        if math.isfinite(best_case):
            statement += (f"; at the most favourable end of the interval it would be "
                          f"{_pounds(cost_low)} per crime")
    return CostPerCrime(funding=money, crimes_prevented=point, crimes_prevented_low=low,
                        crimes_prevented_high=high, cost_per_crime=cost, cost_low=cost_low,
                        cost_high=cost_high, status=status, statement=statement)
