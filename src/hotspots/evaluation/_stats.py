"""Before/after evaluation statistics for place-based interventions (hotspot patrols).

Pure functions: counts, arrays or DataFrames in; dataclasses or DataFrames out.
Nothing here reads files, draws maps or logs to the user beyond ``logging``.

Notation (as in ``methods.md``): **R** = treated (response) area, **C** = control
(comparison) area, **D** = displacement buffer around R, **Cd** = control for the
buffer; suffix *b* / *a* = before / after.  Before and after periods should be
seasonally matched (same calendar months) and of equal length.

Why a comparison is always needed: recorded crime in Hertfordshire is rising
because recording is improving (82.5 % of reported crime recorded in 2024), so a
raw before/after change in the treated areas mixes the patrol effect with the
recording change.  Every estimate here is relative to a comparison that shares
the recording change.

Functions
---------
did_rate_ratio             rate-ratio difference-in-differences, per row (vectorised)
wdq                        weighted displacement quotient (Bowers & Johnson 2003)
total_net_effect           total net effect, crimes prevented net of displacement
wdd                        weighted displacement difference test (Wheeler & Ratcliffe 2018)
panel_effect               Poisson / negative-binomial fixed-effects DiD on a monthly panel
pre_trend_check            differential pre-period trend (parallel-trends check)
rtm_check                  regression-to-the-mean check against equally high untreated areas
crimes_prevented_from_irr  counterfactual crimes prevented implied by an IRR and its CI
cost_per_crime_prevented   cost per crime prevented, with an honest interval
synthetic_evaluation_data  reproducible synthetic panel with a known effect

References
----------
.. [1] Bowers, K. J. & Johnson, S. D. (2003). Measuring the geographical
   displacement and diffusion of benefit effects of crime prevention activity.
   *Journal of Quantitative Criminology* 19(3), 275-301.
.. [2] Guerette, R. T. (2009). *Analyzing Crime Displacement and Diffusion*.
   Problem-Oriented Guides for Police, Problem-Solving Tools Series No. 10.
.. [3] Wheeler, A. P. & Ratcliffe, J. H. (2018). A simple weighted displacement
   difference test to evaluate place based crime interventions. *Crime Science*
   7:11. https://doi.org/10.1186/s40163-018-0085-5
.. [4] Rothman, K. J., Greenland, S. & Lash, T. L. (2008). *Modern Epidemiology*,
   3rd ed., ch. 14 (Wald interval for a ratio of Poisson rates).
.. [5] Cameron, A. C. & Trivedi, P. K. (2013). *Regression Analysis of Count
   Data*, 2nd ed., section 3.4 (overdispersion, auxiliary regression for NB2).
.. [6] Cameron, A. C. & Miller, D. L. (2015). A practitioner's guide to
   cluster-robust inference. *Journal of Human Resources* 50(2), 317-372.
.. [7] Barnett, A. G., van der Pols, J. C. & Dobson, A. J. (2005). Regression to
   the mean: what it is and how to deal with it. *International Journal of
   Epidemiology* 34(1), 215-220.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from hotspots._errors import ValidationError

try:  # installed with scikit-learn; optional here
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

log = logging.getLogger(__name__)

__all__ = [
    "DID_COLUMNS",
    "FEW_CLUSTERS",
    "NEGLIGIBLE_CRIMES",
    "OVERDISPERSION_THRESHOLD",
    "SMALL_COUNT",
    "SYNTHETIC_COLUMNS",
    "CostPerCrime",
    "CrimesPrevented",
    "PanelEffect",
    "PreTrendCheck",
    "RTMCheck",
    "TotalNetEffect",
    "WDDResult",
    "WDQResult",
    "cost_per_crime_prevented",
    "crimes_prevented_from_irr",
    "did_rate_ratio",
    "panel_effect",
    "pre_trend_check",
    "rtm_check",
    "synthetic_evaluation_data",
    "total_net_effect",
    "wdd",
    "wdq",
]

#: Columns of :func:`did_rate_ratio`, in order.
DID_COLUMNS = [
    "r_before", "r_after", "c_before", "c_after",
    "irr", "irr_low", "irr_high",
    "log_irr", "se_log_irr", "z", "p_value",
    "pct_change_vs_control", "pct_low", "pct_high",
    "level", "zero_correction", "note",
]

#: Columns of :func:`synthetic_evaluation_data`, in order.
SYNTHETIC_COLUMNS = ["area", "role", "month", "post", "treated", "count"]

#: Pearson dispersion above which a Poisson fit is flagged as overdispersed.
OVERDISPERSION_THRESHOLD = 1.5
#: Fewer clusters than this and cluster-robust SEs are themselves unreliable [6].
FEW_CLUSTERS = 20
#: Counts below this make the normal approximation of a log rate ratio rough.
SMALL_COUNT = 5
#: Fewer crimes prevented than this count as none in cost per crime prevented.
NEGLIGIBLE_CRIMES = 1e-9
#: A dense fixed-effects design larger than this (cells) is refused, not attempted.
MAX_DESIGN_CELLS = 50_000_000


# --------------------------------------------------------------------------- #
# validation helpers (collect every problem, then raise once)
# --------------------------------------------------------------------------- #


class _Problems:
    """Collects argument problems so that one error lists all of them."""

    def __init__(self, func: str):
        self.func = func
        self.items: list[tuple[str, str]] = []

    def add(self, message: str, hint: str) -> None:
        self.items.append((message, hint))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        if len(self.items) == 1:
            message, hint = self.items[0]
            raise ValidationError(f"{self.func}: {message}", hint=hint)
        lines = "\n".join(f"  - {m}" for m, _ in self.items)
        hints = "; ".join(dict.fromkeys(h for _, h in self.items))
        raise ValidationError(
            f"{self.func}: {len(self.items)} problems:\n{lines}", hint=hints
        )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_COUNT_HINT = (
    "pass crime counts totalled over each period (whole numbers >= 0, not rates, "
    "averages or missing values); areas with no recorded crime are 0"
)


def _count_array(name: str, value: Any, problems: _Problems) -> np.ndarray | None:
    """Non-negative whole-number counts as a float array, or None (problem noted)."""
    if isinstance(value, (str, bytes)):
        problems.add(f"{name}={_short(value)} is text, not a count", _COUNT_HINT)
        return None
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        problems.add(f"{name}={_short(value)} is not numeric", _COUNT_HINT)
        return None
    if arr.size == 0:
        problems.add(f"{name} is empty", "pass at least one count")
        return None
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(arr) | (arr < 0) | (arr != np.round(arr))
    if bad.any():
        first = float(arr[bad].flat[0])
        if arr.size == 1:
            problems.add(f"{name}={first:g} is not a whole number >= 0", _COUNT_HINT)
        else:
            problems.add(f"{name} has {int(bad.sum())} value(s) that are not whole numbers "
                         f">= 0 (first: {first:g})", _COUNT_HINT)
        return None
    return arr


def _count_scalar(name: str, value: Any, problems: _Problems) -> int | None:
    arr = _count_array(name, value, problems)
    if arr is None:
        return None
    if arr.ndim != 0 and arr.size != 1:
        problems.add(
            f"{name} has {arr.size} values; this function takes one total per area type",
            "sum the per-area counts first (use did_rate_ratio for one row per area)",
        )
        return None
    return int(arr.reshape(()))


def _check_level(level: Any, problems: _Problems) -> None:
    ok = (
        isinstance(level, (int, float, np.floating))
        and not isinstance(level, bool)
        and 0.0 < float(level) < 1.0
    )
    if not ok:
        problems.add(
            f"level={_short(level)} is not a probability strictly between 0 and 1",
            "use e.g. level=0.95 for a 95% confidence interval",
        )


def _check_positive_number(name: str, value: Any, problems: _Problems, *,
                           allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and math.isfinite(float(value)) and (
        float(value) >= 0 if allow_zero else float(value) > 0
    )
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        problems.add(f"{name}={_short(value)} must be a finite number {bound}",
                     f"pass a number {bound} for {name}")


def _z_crit(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2.0))


def _two_sided_p(z: Any) -> Any:
    return 2.0 * stats.norm.sf(np.abs(z))


def _fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "p undefined"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


# --------------------------------------------------------------------------- #
# 1. rate-ratio difference-in-differences
# --------------------------------------------------------------------------- #


def did_rate_ratio(
    r_before: Any,
    r_after: Any,
    c_before: Any,
    c_after: Any,
    *,
    level: float = 0.95,
    zero_correction: float | None = None,
) -> pd.DataFrame:
    """Rate-ratio difference-in-differences: treated change relative to control.

    ``IRR = (Ra / Rb) / (Ca / Cb)``; ``SE(log IRR) = sqrt(1/Ra + 1/Rb + 1/Ca + 1/Cb)``
    (Wald, Poisson counts [4]_).  ``IRR < 1`` means crime in the treated area fell
    relative to the control; ``pct_change_vs_control = 100 * (IRR - 1)``.

    Vectorised: scalars give one row, equal-length arrays (one entry per area)
    give one row per area.  pandas Series inputs keep their index.

    Parameters
    ----------
    r_before, r_after : int or array_like of int
        Recorded crimes in the treated area(s), before and after.
    c_before, c_after : int or array_like of int
        Recorded crimes in the control area(s), same periods.
    level : float, default 0.95
        Confidence level of the interval (two-sided).
    zero_correction : {None, 0.5}, default None
        What to do with rows containing a zero count.  ``None``: report NaN and
        say why in ``note`` (the log ratio is undefined).  ``0.5``: add 0.5 to
        all four counts of those rows only (Haldane-Anscombe), which biases the
        IRR towards 1; the row's ``zero_correction`` column records it.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`DID_COLUMNS`: the four counts as given; ``irr``,
        ``irr_low``, ``irr_high``; ``log_irr``, ``se_log_irr``; ``z`` and
        two-sided ``p_value`` for IRR = 1; ``pct_change_vs_control`` with
        ``pct_low`` / ``pct_high``; ``level``; ``zero_correction`` (0 or 0.5
        added to this row); ``note`` ("" when nothing to say).

    Notes
    -----
    The interval assumes the four counts are Poisson.  Counts pooled over many
    areas and months are usually overdispersed, which makes this interval too
    narrow; with a monthly per-area panel prefer :func:`panel_effect`
    (cluster-robust by area).  Use seasonally matched periods of equal length.

    References
    ----------
    .. [4] Rothman, Greenland & Lash (2008), *Modern Epidemiology*, 3rd ed., ch. 14.

    Examples
    --------
    Treated areas fell from 200 to 150 while recorded crime in the control rose
    from 1000 to 1100 (the recording change):

    >>> out = did_rate_ratio(200, 150, 1000, 1100)
    >>> print(f"{out.loc[0, 'irr']:.3f} {out.loc[0, 'pct_change_vs_control']:.1f}%")
    0.682 -31.8%
    >>> print(f"{out.loc[0, 'pct_low']:.1f}% to {out.loc[0, 'pct_high']:.1f}%")
    -45.7% to -14.3%
    >>> did_rate_ratio([10, 0], [5, 3], [100, 100], [110, 110])["note"].str[:22].tolist()
    ['', 'zero count in r_before']
    """
    problems = _Problems("did_rate_ratio")
    inputs = {"r_before": r_before, "r_after": r_after,
              "c_before": c_before, "c_after": c_after}
    index = _shared_index(inputs, problems)
    arrays = {name: _count_array(name, value, problems) for name, value in inputs.items()}
    _check_level(level, problems)
    if zero_correction is not None and (
        isinstance(zero_correction, bool) or zero_correction != 0.5
    ):
        problems.add(
            f"zero_correction={_short(zero_correction)} is not supported",
            "use zero_correction=None (zero counts give NaN) or zero_correction=0.5",
        )
    if all(a is not None for a in arrays.values()):
        try:
            np.broadcast_shapes(*(a.shape for a in arrays.values()))
        except ValueError:
            shapes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
            problems.add(f"the counts have incompatible shapes ({shapes})",
                         "pass scalars or arrays of equal length (one entry per area)")
    problems.raise_if_any()

    rb, ra, cb, ca = (a.ravel() for a in np.broadcast_arrays(*arrays.values()))
    n = rb.size
    if index is not None and len(index) != n:
        index = None
    names = list(inputs)
    zero = np.column_stack([rb == 0, ra == 0, cb == 0, ca == 0])
    has_zero = zero.any(axis=1)
    correction = np.where(has_zero & (zero_correction is not None),
                          float(zero_correction or 0.0), 0.0)
    undefined = has_zero & (correction == 0.0)
    counts = [x + correction for x in (rb, ra, cb, ca)]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_irr = (np.log(counts[1]) - np.log(counts[0])
                   - np.log(counts[3]) + np.log(counts[2]))
        se = np.sqrt(sum(1.0 / x for x in counts))
    log_irr[undefined] = np.nan
    se[undefined] = np.nan
    zc = _z_crit(level)
    z = log_irr / se
    p = _two_sided_p(z)
    irr, low, high = np.exp(log_irr), np.exp(log_irr - zc * se), np.exp(log_irr + zc * se)

    notes = []
    smallest = np.min(np.column_stack([rb, ra, cb, ca]), axis=1)
    for i in range(n):
        parts = []
        zero_names = ", ".join(nm for nm, is_zero in zip(names, zero[i]) if is_zero)
        if undefined[i]:
            parts.append(
                f"zero count in {zero_names}: the rate ratio's log and standard error "
                "are undefined; pool more areas or months, or pass zero_correction=0.5"
            )
        elif correction[i]:
            parts.append(
                f"zero count in {zero_names}: 0.5 added to all four counts "
                "(Haldane-Anscombe); estimate biased towards 1, interval approximate"
            )
        if not undefined[i] and smallest[i] < SMALL_COUNT:
            parts.append(
                f"smallest count is {smallest[i]:g} (< {SMALL_COUNT}): the normal "
                "approximation behind the interval and p-value is rough"
            )
        notes.append("; ".join(parts))

    out = pd.DataFrame(
        {
            "r_before": rb, "r_after": ra, "c_before": cb, "c_after": ca,
            "irr": irr, "irr_low": low, "irr_high": high,
            "log_irr": log_irr, "se_log_irr": se, "z": z, "p_value": p,
            "pct_change_vs_control": 100.0 * (irr - 1.0),
            "pct_low": 100.0 * (low - 1.0), "pct_high": 100.0 * (high - 1.0),
            "level": float(level), "zero_correction": correction,
            "note": pd.Series(notes, dtype=object).to_numpy(),
        },
        index=index,
    )
    for col in ("r_before", "r_after", "c_before", "c_after"):
        out[col] = out[col].astype("int64")
    return out[DID_COLUMNS]


def _shared_index(inputs: dict[str, Any], problems: _Problems) -> pd.Index | None:
    """Index of the pandas Series among ``inputs``; all Series must agree."""
    series = {k: v for k, v in inputs.items() if isinstance(v, pd.Series)}
    if not series:
        return None
    first_name, first = next(iter(series.items()))
    for name, s in series.items():
        if not s.index.equals(first.index):
            problems.add(
                f"{name} and {first_name} are Series with different indexes, so rows "
                "would be paired by position, not by area",
                "align them first, e.g. c_after = c_after.reindex(r_before.index)",
            )
    return first.index


# --------------------------------------------------------------------------- #
# 2-3. WDQ and total net effect
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class WDQResult:
    """Weighted displacement quotient and its two measures (see :func:`wdq`)."""

    r_before: int
    r_after: int
    d_before: int
    d_after: int
    c_before: int
    c_after: int
    success_measure: float
    buffer_measure: float
    wdq: float
    interpretation: str


def wdq(r_before: Any, r_after: Any, d_before: Any, d_after: Any,
        c_before: Any, c_after: Any) -> WDQResult:
    """Weighted Displacement Quotient (Bowers & Johnson 2003).

    success measure ``= Ra/Ca - Rb/Cb`` (negative = the treated area improved
    relative to control); buffer displacement measure ``= Da/Ca - Db/Cb``
    (positive = the buffer got worse relative to control);
    ``WDQ = buffer measure / success measure``.

    ============== =========================================================
    WDQ            reading (Bowers & Johnson 2003 [1]_; Guerette 2009 [2]_)
    ============== =========================================================
    > 1            diffusion of benefit larger than the direct effect
    0 to 1         diffusion of benefit
    0              no displacement or diffusion
    -1 to 0        displacement, smaller than the direct effect (net benefit)
    < -1           displacement larger than the direct effect (net harm)
    ============== =========================================================

    Parameters
    ----------
    r_before, r_after, d_before, d_after, c_before, c_after : int
        Total recorded crimes in the treated area (R), buffer (D) and control
        (C), before and after.  Note the argument order R, D, C (as in the
        paper); :func:`wdd` uses R, C, D, Cd.

    Returns
    -------
    WDQResult
        The six counts, ``success_measure``, ``buffer_measure``, ``wdq`` (NaN
        when undefined) and a plain-words ``interpretation``.

    Notes
    -----
    The WDQ is only meaningful when the intervention succeeded: if the success
    measure is 0 or positive there is no reduction for crime to be displaced
    from, and the quotient (whose sign would flip) is reported as undefined
    rather than as a misleading number.  The WDQ has no sampling distribution:
    test the treated change with :func:`did_rate_ratio` and the buffer with
    :func:`wdd`.

    References
    ----------
    .. [1] Bowers & Johnson (2003), *J. Quant. Criminol.* 19(3), 275-301.
    .. [2] Guerette (2009), POP Center Problem-Solving Tools No. 10, appendix B-C.

    Examples
    --------
    Control rose 10%; the treated area fell 100 -> 60; the buffer rose 80 -> 100:

    >>> res = wdq(100, 60, 80, 100, 1000, 1100)
    >>> print(f"{res.success_measure:.4f} {res.buffer_measure:.4f}")
    -0.0455 0.0109
    >>> print(f"{res.wdq:.3f}")
    -0.240
    >>> res.interpretation.split(":")[0]
    'displacement smaller than the direct effect'
    """
    problems = _Problems("wdq")
    counts = _scalar_counts(problems, r_before=r_before, r_after=r_after,
                            d_before=d_before, d_after=d_after,
                            c_before=c_before, c_after=c_after)
    problems.raise_if_any()
    rb, ra, db, da, cb, ca = counts.values()
    nan = float("nan")
    if cb == 0 or ca == 0:
        which = "before" if cb == 0 else "after"
        return WDQResult(**counts, success_measure=nan, buffer_measure=nan, wdq=nan,
                         interpretation=(f"WDQ undefined: the control area had no crimes "
                                         f"{which}, so the ratios to control cannot be formed"))
    success = ra / ca - rb / cb
    buffer = da / ca - db / cb
    if success >= 0:
        return WDQResult(
            **counts, success_measure=success, buffer_measure=buffer, wdq=nan,
            interpretation=(
                f"WDQ undefined: the success measure is {success:+.4f} (>= 0), i.e. crime "
                "in the treated area did not fall relative to the control, so there is "
                "no reduction whose displacement could be measured"
            ),
        )
    quotient = buffer / success
    if quotient > 1:
        text = ("diffusion of benefit larger than the direct effect: the buffer improved "
                "relative to control by more than the treated area did")
    elif quotient > 0:
        text = ("diffusion of benefit: the buffer also improved relative to control, "
                "by less than the treated area")
    elif quotient == 0:
        text = "no displacement or diffusion: the buffer changed in line with the control"
    elif quotient >= -1:
        text = ("displacement smaller than the direct effect: the buffer worsened relative "
                "to control, by less than the treated area improved (net benefit)")
    else:
        text = ("displacement larger than the direct effect: the buffer worsened relative "
                "to control by more than the treated area improved (net harm)")
    return WDQResult(**counts, success_measure=success, buffer_measure=buffer,
                     wdq=quotient, interpretation=f"{text} (WDQ = {quotient:.3f})")


def _scalar_counts(problems: _Problems, **values: Any) -> dict[str, int]:
    out = {name: _count_scalar(name, value, problems) for name, value in values.items()}
    return out  # type: ignore[return-value]  (None only when problems will raise)


@dataclass(frozen=True)
class TotalNetEffect:
    """Total net effect and its parts (see :func:`total_net_effect`)."""

    r_before: int
    r_after: int
    d_before: int
    d_after: int
    c_before: int
    c_after: int
    control_ratio: float
    expected_r_after: float
    expected_d_after: float
    treated_effect: float
    buffer_effect: float
    total_net_effect: float
    interpretation: str


def total_net_effect(r_before: Any, r_after: Any, d_before: Any, d_after: Any,
                     c_before: Any, c_after: Any) -> TotalNetEffect:
    """Total net effect: crimes prevented, net of displacement (Guerette 2009).

    ``TNE = [Rb * Ca/Cb - Ra] + [Db * Ca/Cb - Da]``.  Each bracket is expected
    minus observed after-period crime, the expectation being the before count
    scaled by the control's change.  Positive = crimes prevented.

    Parameters
    ----------
    r_before, r_after, d_before, d_after, c_before, c_after : int
        Total recorded crimes in R, D and C (same argument order as :func:`wdq`).

    Returns
    -------
    TotalNetEffect
        The six counts; ``control_ratio`` = Ca/Cb; ``expected_r_after`` =
        Rb*Ca/Cb; ``expected_d_after`` = Db*Ca/Cb; ``treated_effect`` =
        expected_r_after - Ra (crimes prevented in R); ``buffer_effect`` =
        expected_d_after - Da (negative = crimes displaced into D, positive =
        diffusion of benefit); ``total_net_effect`` (their sum); and a plain
        ``interpretation``.  All NaN when Cb = 0.

    Notes
    -----
    A point estimate with no interval.  For an interval on crimes prevented
    in R use :func:`crimes_prevented_from_irr` with :func:`did_rate_ratio`.

    References
    ----------
    .. [2] Guerette (2009), POP Center Problem-Solving Tools No. 10, appendix B.
    .. [1] Bowers & Johnson (2003), *J. Quant. Criminol.* 19(3), 275-301.

    Examples
    --------
    Control rose 10%, so 100 * 1.1 = 110 crimes were expected in R (60 seen)
    and 80 * 1.1 = 88 in D (100 seen): 50 prevented, 12 displaced, 38 net.

    >>> res = total_net_effect(100, 60, 80, 100, 1000, 1100)
    >>> print(f"{res.treated_effect:.1f} {res.buffer_effect:.1f} {res.total_net_effect:.1f}")
    50.0 -12.0 38.0
    """
    problems = _Problems("total_net_effect")
    counts = _scalar_counts(problems, r_before=r_before, r_after=r_after,
                            d_before=d_before, d_after=d_after,
                            c_before=c_before, c_after=c_after)
    problems.raise_if_any()
    rb, ra, db, da, cb, ca = counts.values()
    if cb == 0:
        nan = float("nan")
        return TotalNetEffect(**counts, control_ratio=nan, expected_r_after=nan,
                              expected_d_after=nan, treated_effect=nan, buffer_effect=nan,
                              total_net_effect=nan,
                              interpretation=("TNE undefined: the control area had no "
                                              "crimes before, so its change is unknown"))
    ratio = ca / cb
    expected_r, expected_d = rb * ratio, db * ratio
    treated, buffer = expected_r - ra, expected_d - da
    tne = treated + buffer
    if buffer < 0:
        buffer_text = f"{-buffer:.1f} more than expected in the buffer (displacement)"
    elif buffer > 0:
        buffer_text = f"{buffer:.1f} fewer than expected in the buffer (diffusion of benefit)"
    else:
        buffer_text = "the buffer as expected"
    verb = "prevented" if tne >= 0 else "added"
    text = (f"net {abs(tne):.1f} crimes {verb}: {treated:+.1f} crimes prevented in the "
            f"treated area relative to control, {buffer_text}")
    return TotalNetEffect(**counts, control_ratio=ratio, expected_r_after=expected_r,
                          expected_d_after=expected_d, treated_effect=treated,
                          buffer_effect=buffer, total_net_effect=tne, interpretation=text)


# --------------------------------------------------------------------------- #
# 4. weighted displacement difference
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class WDDResult:
    """Weighted displacement difference test (see :func:`wdd`)."""

    wdd: float
    se: float
    z: float
    p_value: float
    low: float
    high: float
    level: float
    local_wdd: float
    local_se: float
    local_z: float
    local_p: float
    displacement_wdd: float
    displacement_se: float
    displacement_z: float
    displacement_p: float
    shared_control: bool
    verdict: str
    note: str


def wdd(
    r_before: Any, r_after: Any, c_before: Any, c_after: Any,
    d_before: Any, d_after: Any, cd_before: Any = None, cd_after: Any = None,
    *,
    level: float = 0.95,
) -> WDDResult:
    """Weighted Displacement Difference test (Wheeler & Ratcliffe 2018).

    ``WDD = (dR - dC) + (dD - dCd)`` with ``dX = X_after - X_before``;
    ``Var(WDD) = Rb + Ra + Cb + Ca + Db + Da + Cdb + Cda`` (independent Poisson
    counts), ``z = WDD / sqrt(Var)``.  Negative WDD = crime reduction, net of
    any displacement into the buffer.

    Also reports the two parts separately: ``local_wdd = dR - dC`` (the direct
    effect) and ``displacement_wdd = dD - dCd`` (positive = displacement into
    the buffer, negative = diffusion of benefit), each with its own test.

    Parameters
    ----------
    r_before, r_after, c_before, c_after : int
        Total crimes in the treated area (R) and its control (C).
    d_before, d_after : int
        Total crimes in the displacement buffer (D).
    cd_before, cd_after : int, optional
        Total crimes in a separate control for the buffer (Cd).  Omit both for
        the six-count version, which uses C as the control for both R and D:
        ``WDD = (dR - dC) + (dD - dC)``, and because the same control counts
        then enter twice, ``Var = Rb + Ra + Db + Da + 4 (Cb + Ca)`` (summing the
        eight counts with C counted twice would understate the variance).
    level : float, default 0.95
        Confidence level of the intervals.

    Returns
    -------
    WDDResult
        ``wdd``, ``se``, ``z``, two-sided ``p_value``, ``low``/``high``
        (interval for WDD), ``level``; ``local_wdd``/``local_se``/``local_z``/
        ``local_p``; ``displacement_wdd``/``displacement_se``/
        ``displacement_z``/``displacement_p``; ``shared_control`` (True in the
        six-count version); ``verdict`` in plain words; ``note`` (cautions, or
        "").

    Notes
    -----
    WDD works on raw count differences, so each control should have a similar
    number of crimes to the area it controls for (e.g. matched areas), and the
    before and after periods must be of equal length.  A ``note`` is written
    when a control's before count is under half or over twice that of its area;
    with a much larger comparison (e.g. the rest of the county) use
    :func:`did_rate_ratio` instead.  Like the paper's test, it assumes Poisson
    counts; overdispersion makes it anti-conservative.

    References
    ----------
    .. [3] Wheeler & Ratcliffe (2018), *Crime Science* 7:11.

    Examples
    --------
    The worked example in Wheeler & Ratcliffe (2018): R 207 -> 110, C 308 -> 318,
    D 178 -> 157, Cd 150 -> 140.

    >>> res = wdd(207, 110, 308, 318, 178, 157, 150, 140)
    >>> print(f"{res.wdd:.0f} {res.se ** 2:.0f} {res.z:.2f} {res.low:.0f} {res.high:.0f}")
    -118 1568 -2.98 -196 -40
    """
    problems = _Problems("wdd")
    shared = cd_before is None and cd_after is None
    if (cd_before is None) != (cd_after is None):
        problems.add(
            f"cd_before={_short(cd_before)} and cd_after={_short(cd_after)}: "
            "give both or neither",
            "omit both for the six-count version (control C used for the buffer too)",
        )
    values = dict(r_before=r_before, r_after=r_after, c_before=c_before,
                  c_after=c_after, d_before=d_before, d_after=d_after)
    if not shared and cd_before is not None and cd_after is not None:
        values.update(cd_before=cd_before, cd_after=cd_after)
    counts = _scalar_counts(problems, **values)
    _check_level(level, problems)
    problems.raise_if_any()
    rb, ra, cb, ca, db, da = (counts[k] for k in
                              ("r_before", "r_after", "c_before", "c_after",
                               "d_before", "d_after"))
    cdb, cda = (cb, ca) if shared else (counts["cd_before"], counts["cd_after"])

    local = (ra - rb) - (ca - cb)
    displacement = (da - db) - (cda - cdb)
    total = local + displacement
    var_local = rb + ra + cb + ca
    var_disp = db + da + cdb + cda
    # shared control: Var(dR + dD - 2 dC) = Var dR + Var dD + 4 Var dC
    var_total = (rb + ra + db + da + 4 * (cb + ca)) if shared else (var_local + var_disp)

    def test(est: float, var: float) -> tuple[float, float, float]:
        if var <= 0:
            return float("nan"), float("nan"), float("nan")
        se = math.sqrt(var)
        zval = est / se
        return se, zval, float(_two_sided_p(zval))

    se, z, p = test(total, var_total)
    local_se, local_z, local_p = test(local, var_local)
    disp_se, disp_z, disp_p = test(displacement, var_disp)
    zc = _z_crit(level)
    low, high = total - zc * se, total + zc * se
    alpha = 1.0 - level

    if not np.isfinite(p):
        verdict = "no crimes recorded in any area: nothing to test"
    else:
        ci = f"{level:.0%} CI {low:+.0f} to {high:+.0f}, {_fmt_p(p)}"
        if p < alpha and total < 0:
            verdict = f"net reduction of {-total:.0f} crimes after allowing for control and buffer ({ci})"
        elif p < alpha and total > 0:
            verdict = f"net increase of {total:.0f} crimes after allowing for control and buffer ({ci})"
        else:
            verdict = f"no clear net change: WDD = {total:+.0f} crimes ({ci})"
        if np.isfinite(disp_p) and disp_p < alpha and displacement > 0:
            verdict += (f"; the buffer rose by {displacement:.0f} crimes relative to its "
                        f"control: evidence of displacement ({_fmt_p(disp_p)})")
        elif np.isfinite(disp_p) and disp_p < alpha and displacement < 0:
            verdict += (f"; the buffer fell by {-displacement:.0f} crimes relative to its "
                        f"control: evidence of diffusion of benefit ({_fmt_p(disp_p)})")
        else:
            verdict += f"; no evidence of displacement or diffusion ({_fmt_p(disp_p)})"

    notes = []
    for area, area_before, control, control_before in (
        ("treated area", rb, "control", cb),
        ("buffer", db, "buffer's control" if not shared else "control", cdb),
    ):
        if area_before > 0 and control_before > 0:
            ratio = control_before / area_before
            if not 0.5 <= ratio <= 2.0:
                notes.append(
                    f"the {control}'s before count ({control_before}) is {ratio:.2g} times "
                    f"the {area}'s ({area_before}): WDD compares raw count changes, so "
                    "controls should be of similar size; consider did_rate_ratio"
                )
    return WDDResult(
        wdd=float(total), se=se, z=z, p_value=p, low=low, high=high, level=float(level),
        local_wdd=float(local), local_se=local_se, local_z=local_z, local_p=local_p,
        displacement_wdd=float(displacement), displacement_se=disp_se,
        displacement_z=disp_z, displacement_p=disp_p, shared_control=shared,
        verdict=verdict, note="; ".join(notes),
    )


# --------------------------------------------------------------------------- #
# 5. panel models
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class PanelEffect:
    """Fixed-effects count-model DiD estimate (see :func:`panel_effect`)."""

    irr: float
    irr_low: float
    irr_high: float
    pct_change: float
    pct_low: float
    pct_high: float
    log_irr: float
    se_log_irr: float
    z: float
    p_value: float
    level: float
    family: str
    nb_alpha: float
    dispersion: float
    cov_type: str
    n_obs: int
    n_areas: int
    n_treated_areas: int
    n_periods: int
    n_post_periods: int
    note: str


@dataclass(frozen=True)
class PreTrendCheck:
    """Differential pre-period trend (see :func:`pre_trend_check`)."""

    irr_per_month: float
    irr_low: float
    irr_high: float
    pct_per_month: float
    pct_low: float
    pct_high: float
    p_value: float
    level: float
    family: str
    cov_type: str
    n_pre_periods: int
    n_areas: int
    verdict: str
    note: str


_FAMILIES = ("poisson", "negbin")


def _flag(series: pd.Series, name: str, value: str, problems: _Problems) -> np.ndarray | None:
    """0/1 or boolean column -> bool array."""
    if series.dtype == bool:
        return series.to_numpy()
    numeric = pd.to_numeric(series, errors="coerce")
    ok = numeric.isin([0, 1])
    if not ok.all():
        bad = series[~ok].iloc[0]
        problems.add(
            f"{name}={value!r}: column holds {_short(bad)}, not True/False or 1/0",
            f"make '{value}' boolean, e.g. panel['{value}'] = panel['role'].eq('treated')",
        )
        return None
    return numeric.to_numpy() == 1


def _prepare_panel(
    problems: _Problems, panel: Any, *, area_col: str, period_col: str, count_col: str,
    treated_col: str, post_col: str, exposure_col: str | None, family: Any,
    cluster: Any, level: Any,
) -> pd.DataFrame | None:
    """Validate a panel and return a tidy frame with private columns, or None."""
    _check_level(level, problems)
    if family not in _FAMILIES:
        problems.add(f"family={_short(family)} is not one of {_FAMILIES}",
                     "use family='poisson' (default) or family='negbin'")
    if not isinstance(cluster, bool):
        problems.add(f"cluster={_short(cluster)} is not True or False",
                     "cluster=True gives standard errors robust to within-area correlation")
    if not isinstance(panel, pd.DataFrame):
        problems.add(f"panel is a {type(panel).__name__}, not a pandas DataFrame",
                     "pass one row per area and period")
        return None
    columns = {"area_col": area_col, "period_col": period_col, "count_col": count_col,
               "treated_col": treated_col, "post_col": post_col}
    if exposure_col is not None:
        columns["exposure_col"] = exposure_col
    missing = {arg: col for arg, col in columns.items() if col not in panel.columns}
    for arg, col in missing.items():
        problems.add(f"{arg}={col!r} is not a column of panel "
                     f"(columns: {', '.join(map(str, panel.columns[:12]))})",
                     f"pass {arg}= the name of the column to use")
    if missing:
        return None
    if panel.empty:
        problems.add("panel has no rows", "pass one row per area and period")
        return None
    for arg in ("area_col", "period_col"):
        if panel[columns[arg]].isna().any():
            problems.add(f"{arg}={columns[arg]!r} has missing values",
                         "drop or fill rows without an area or period")
    counts = _count_array(f"count_col={count_col!r}", panel[count_col], problems)
    treated = _flag(panel[treated_col], "treated_col", treated_col, problems)
    post = _flag(panel[post_col], "post_col", post_col, problems)
    exposure = None
    if exposure_col is not None:
        exposure = pd.to_numeric(panel[exposure_col], errors="coerce").to_numpy(float)
        if not (np.isfinite(exposure) & (exposure > 0)).all():
            problems.add(f"exposure_col={exposure_col!r} has values that are missing or <= 0",
                         "exposure (e.g. population or days) must be positive in every row")
    if counts is None or treated is None or post is None or problems.items:
        return None

    frame = pd.DataFrame({
        "area": panel[area_col].to_numpy(), "period": panel[period_col].to_numpy(),
        "y": counts, "treated": treated, "post": post,
        "offset": np.log(exposure) if exposure is not None else 0.0,
    })
    if frame.duplicated(["area", "period"]).any():
        n_dup = int(frame.duplicated(["area", "period"]).sum())
        problems.add(
            f"{n_dup} duplicate ({area_col}, {period_col}) rows",
            f"aggregate first: panel.groupby(['{area_col}', '{period_col}'], "
            f"as_index=False)['{count_col}'].sum()",
        )
    mixed = frame.groupby("area")["treated"].nunique()
    if (mixed > 1).any():
        examples = ", ".join(map(str, mixed.index[mixed > 1][:3]))
        problems.add(f"treated_col={treated_col!r} changes within an area (e.g. {examples})",
                     "treated marks treated areas; it must be the same in every period of an area")
    mixed = frame.groupby("period")["post"].nunique()
    if (mixed > 1).any():
        examples = ", ".join(map(str, mixed.index[mixed > 1][:3]))
        problems.add(
            f"post_col={post_col!r} differs between areas in the same period (e.g. {examples})",
            "post marks the after periods for all areas; staggered start dates are not supported",
        )
    return frame


def _drop_empty(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Drop areas and periods with no crime at all: they carry no information in a
    fixed-effects Poisson fit and make the fixed effect diverge."""
    notes = []
    area_total = frame.groupby("area")["y"].transform("sum")
    n_empty = frame.loc[area_total == 0, "area"].nunique()
    if n_empty:
        frame = frame[area_total > 0]
        notes.append(f"{n_empty} area(s) with no crimes in any period dropped "
                     "(they carry no information in a fixed-effects count model)")
    period_total = frame.groupby("period")["y"].transform("sum")
    n_empty = frame.loc[period_total == 0, "period"].nunique()
    if n_empty:
        frame = frame[period_total > 0]
        notes.append(f"{n_empty} period(s) with no crimes in any area dropped")
    return frame, notes


def _fit_fixed_effects(frame: pd.DataFrame, regressor: np.ndarray, *, family: str,
                       cluster: bool) -> dict[str, Any]:
    """Count GLM with area and period dummies plus one regressor of interest."""
    # the GLM module, not statsmodels.api: the same classes, without importing all of statsmodels (~0.4 s)
    from statsmodels.genmod import families
    from statsmodels.genmod.generalized_linear_model import GLM
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

    area_codes, areas = pd.factorize(frame["area"], sort=True)
    period_codes, periods = pd.factorize(frame["period"], sort=True)
    n, n_areas, n_periods = len(frame), len(areas), len(periods)
    n_cols = n_areas + n_periods
    if n * n_cols > MAX_DESIGN_CELLS:
        raise ValidationError(
            f"panel too large for a dense fixed-effects design ({n} rows x {n_cols} "
            "area and period dummies)",
            hint="aggregate control areas into fewer comparison units, or use fewer areas",
        )
    design = np.zeros((n, n_cols))
    rows = np.arange(n)
    design[:, 0] = 1.0
    keep = area_codes > 0
    design[rows[keep], area_codes[keep]] = 1.0
    keep = period_codes > 0
    design[rows[keep], n_areas - 1 + period_codes[keep]] = 1.0
    design[:, -1] = regressor
    y = frame["y"].to_numpy(float)
    offset = np.asarray(frame["offset"], dtype=float) * np.ones(n)
    fit_kwargs: dict[str, Any] = {}
    if cluster:
        fit_kwargs = {"cov_type": "cluster", "cov_kwds": {"groups": area_codes}}

    def fit(fam: Any, **kwargs: Any) -> Any:
        with _single_threaded_blas(), warnings.catch_warnings():
            # areas/periods without crime were dropped, so "perfect separation"
            # here only flags saturated designs (e.g. a 2 x 2 table), not divergence
            warnings.simplefilter("ignore", PerfectSeparationWarning)
            with np.errstate(divide="ignore", invalid="ignore"):
                return GLM(y, design, family=fam, offset=offset).fit(**kwargs)

    notes = []
    result = fit(families.Poisson(), **fit_kwargs)
    nb_alpha = float("nan")
    if family == "negbin":
        # NB2 alpha by the Cameron-Trivedi auxiliary regression on the Poisson fit:
        # ((y - mu)^2 - y) / mu = alpha * mu + error, OLS through the origin.
        mu = result.mu
        nb_alpha = float(np.sum((y - mu) ** 2 - y) / np.sum(mu ** 2))
        if not nb_alpha > 1e-8:
            notes.append(f"no overdispersion found (alpha estimate {nb_alpha:.3g}); "
                         "the negative binomial fit is effectively Poisson")
            nb_alpha = 1e-8
        log.info("negative binomial alpha estimated at %.4g", nb_alpha)
        result = fit(families.NegativeBinomial(alpha=nb_alpha), **fit_kwargs)
    if not result.converged:
        notes.append("the model did not converge; treat the estimate with caution")
    dispersion = (float(result.pearson_chi2 / result.df_resid)
                  if result.df_resid > 0 else float("nan"))
    return {
        "coef": float(np.asarray(result.params)[-1]),
        "se": float(np.asarray(result.bse)[-1]),
        "nb_alpha": nb_alpha, "dispersion": dispersion,
        "n_obs": n, "n_areas": n_areas, "n_periods": n_periods,
        "cov_type": "cluster-robust by area" if cluster else "model-based",
        "notes": notes,
    }


def _single_threaded_blas() -> contextlib.AbstractContextManager[Any]:
    """These designs are small (thousands of rows, tens to hundreds of columns):
    multi-threaded OpenBLAS gains nothing on them, and on a busy machine its
    spinning threads made each fit about 100 times slower in testing."""
    if threadpool_limits is None:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _inference_notes(fitted: dict[str, Any], *, family: str, cluster: bool) -> list[str]:
    notes = list(fitted["notes"])
    dispersion = fitted["dispersion"]
    if family == "poisson" and dispersion > OVERDISPERSION_THRESHOLD:
        if cluster:
            notes.append(f"counts are overdispersed (Pearson dispersion {dispersion:.2f} > "
                         f"{OVERDISPERSION_THRESHOLD}); the cluster-robust standard errors "
                         "allow for this")
        else:
            notes.append(f"counts are overdispersed (Pearson dispersion {dispersion:.2f} > "
                         f"{OVERDISPERSION_THRESHOLD}): model-based Poisson standard errors "
                         "are too small; use cluster=True or family='negbin'")
    if cluster and fitted["n_areas"] < FEW_CLUSTERS:
        notes.append(f"only {fitted['n_areas']} areas (clusters): cluster-robust standard "
                     f"errors are unreliable with fewer than about {FEW_CLUSTERS}")
    return notes


def panel_effect(
    panel: pd.DataFrame,
    *,
    area_col: str = "area",
    period_col: str = "month",
    count_col: str = "count",
    treated_col: str = "treated",
    post_col: str = "post",
    family: str = "poisson",
    exposure_col: str | None = None,
    cluster: bool = True,
    level: float = 0.95,
) -> PanelEffect:
    """Difference-in-differences on a panel: count GLM with area and period effects.

    Fits ``log E[count] = area_i + period_t + beta * treated_i * post_t
    (+ log exposure)``; ``exp(beta)`` is the incidence rate ratio of the
    treated areas after the start, relative to what the control areas' change
    implies.  Area effects absorb fixed differences between places, period
    effects absorb county-wide changes such as improving crime recording and
    seasonality.

    Parameters
    ----------
    panel : pandas.DataFrame
        One row per area and period (e.g. month): treated and control areas
        only (leave buffers out).  Missing area-periods are allowed.
    area_col, period_col, count_col : str
        Column names of area id, period (any sortable label) and crime count.
    treated_col : str
        Boolean (or 0/1) column, True for treated areas, same in every period.
    post_col : str
        Boolean (or 0/1) column, True in the after periods, same for every area.
    family : {"poisson", "negbin"}, default "poisson"
        ``"negbin"`` fits an NB2 GLM whose alpha is estimated from the Poisson
        fit by the Cameron-Trivedi auxiliary regression [5]_.
    exposure_col : str, optional
        Positive column (e.g. days in month, population); its log is an offset.
    cluster : bool, default True
        Cluster-robust (by area) standard errors [6]_, which stay valid under
        overdispersion and within-area correlation over time.  ``False`` gives
        model-based standard errors.
    level : float, default 0.95
        Confidence level.

    Returns
    -------
    PanelEffect
        ``irr``, ``irr_low``, ``irr_high``; ``pct_change`` (= 100 (IRR - 1)),
        ``pct_low``, ``pct_high``; ``log_irr``, ``se_log_irr``, ``z``,
        ``p_value``, ``level``; ``family``; ``nb_alpha`` (NaN for Poisson);
        ``dispersion`` (Pearson chi2 / residual df of the fitted model);
        ``cov_type``; sizes ``n_obs``, ``n_areas``, ``n_treated_areas``,
        ``n_periods``, ``n_post_periods``; ``note`` (cautions, or "").

    Notes
    -----
    Areas (or periods) with no crimes at all are dropped, with a note: their
    fixed effect would diverge and they carry no information.  If the treated
    or control totals are zero before or after, the effect is not estimable
    and NaN is returned with a note.  With a Poisson family and dispersion
    above 1.5 a note says whether the standard errors allow for it.  The dense
    design suits tens to hundreds of areas; far larger panels are refused with
    a hint.  Check parallel trends with :func:`pre_trend_check`.

    References
    ----------
    .. [5] Cameron & Trivedi (2013), *Regression Analysis of Count Data*, s. 3.4.
    .. [6] Cameron & Miller (2015), *J. Human Resources* 50(2), 317-372.

    Examples
    --------
    >>> panel = synthetic_evaluation_data(n_treated=10, seed=1)
    >>> panel = panel[panel["role"] != "buffer"]
    >>> res = panel_effect(panel)
    >>> print(res.family, res.cov_type, res.n_areas, res.n_periods)
    poisson cluster-robust by area 20 24
    >>> bool(res.irr_low < 0.70 < res.irr_high)
    True
    """
    problems = _Problems("panel_effect")
    frame = _prepare_panel(problems, panel, area_col=area_col, period_col=period_col,
                           count_col=count_col, treated_col=treated_col, post_col=post_col,
                           exposure_col=exposure_col, family=family, cluster=cluster,
                           level=level)
    if frame is not None:
        _require_groups(problems, frame, need_pre=True, need_post=True,
                        treated_col=treated_col, post_col=post_col)
    problems.raise_if_any()

    frame, notes = _drop_empty(frame)
    sizes = {
        "n_obs": len(frame), "n_areas": frame["area"].nunique(),
        "n_treated_areas": frame.loc[frame["treated"], "area"].nunique(),
        "n_periods": frame["period"].nunique(),
        "n_post_periods": frame.loc[frame["post"], "period"].nunique(),
    }
    nan = float("nan")
    cells = frame.groupby(["treated", "post"])["y"].sum()
    empty_cells = [f"{'treated' if t else 'control'} {'after' if p else 'before'}"
                   for (t, p) in [(True, False), (True, True), (False, False), (False, True)]
                   if cells.get((t, p), 0) == 0]
    if empty_cells:
        notes.append(f"no crimes in the {', '.join(empty_cells)} rows: the effect is not "
                     "estimable; pool more areas or months")
        return PanelEffect(nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, float(level),
                           family, nan, nan, "cluster-robust by area" if cluster else "model-based",
                           **sizes, note="; ".join(notes))

    regressor = (frame["treated"] & frame["post"]).to_numpy(float)
    fitted = _fit_fixed_effects(frame, regressor, family=family, cluster=cluster)
    notes += _inference_notes(fitted, family=family, cluster=cluster)
    coef, se = fitted["coef"], fitted["se"]
    zc = _z_crit(level)
    z = coef / se
    irr, low, high = math.exp(coef), math.exp(coef - zc * se), math.exp(coef + zc * se)
    return PanelEffect(
        irr=irr, irr_low=low, irr_high=high,
        pct_change=100 * (irr - 1), pct_low=100 * (low - 1), pct_high=100 * (high - 1),
        log_irr=coef, se_log_irr=se, z=z, p_value=float(_two_sided_p(z)), level=float(level),
        family=family, nb_alpha=fitted["nb_alpha"], dispersion=fitted["dispersion"],
        cov_type=fitted["cov_type"], **sizes, note="; ".join(notes),
    )


def _require_groups(problems: _Problems, frame: pd.DataFrame, *, need_pre: bool,
                    need_post: bool, treated_col: str, post_col: str) -> None:
    if not frame["treated"].any() or frame["treated"].all():
        which = "treated" if not frame["treated"].any() else "control"
        problems.add(f"treated_col={treated_col!r} marks no {which} areas",
                     "the panel needs both treated and control areas")
    if need_pre and frame["post"].all():
        problems.add(f"post_col={post_col!r} is True in every row: no before periods",
                     "include the months before the intervention, with post False")
    if need_post and not frame["post"].any():
        problems.add(f"post_col={post_col!r} is False in every row: no after periods",
                     "include the months after the intervention, with post True")


def _month_number(values: pd.Series, period_col: str, problems: _Problems) -> np.ndarray | None:
    """Months since year 0 from numeric, datetime, Period or 'YYYY-MM' labels."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(float)
        looks_like_yyyymm = (numbers.min() >= 190001 and numbers.max() <= 210012
                             and np.isin(numbers % 100, np.arange(1, 13)).all())
        if looks_like_yyyymm:
            problems.add(
                f"period_col={period_col!r} holds numbers like {numbers[0]:.0f}, which look "
                "like YYYYMM; as month numbers, December to January would be an 89-month gap",
                "convert them to 'YYYY-MM' strings, e.g. panel['month'].astype(str)"
                ".str[:4] + '-' + panel['month'].astype(str).str[4:]",
            )
            return None
        return numbers
    if isinstance(values.dtype, pd.PeriodDtype):
        values = values.dt.to_timestamp()
    try:
        stamps = pd.to_datetime(values)
    except (ValueError, TypeError):
        problems.add(
            f"period_col={period_col!r} values such as {_short(values.iloc[0])} are not "
            "months the trend can be measured in",
            "use 'YYYY-MM' strings, dates, pandas Periods or month numbers",
        )
        return None
    return (stamps.dt.year * 12 + stamps.dt.month).to_numpy(float)


def pre_trend_check(
    panel: pd.DataFrame,
    *,
    area_col: str = "area",
    period_col: str = "month",
    count_col: str = "count",
    treated_col: str = "treated",
    post_col: str = "post",
    family: str = "poisson",
    exposure_col: str | None = None,
    cluster: bool = True,
    level: float = 0.95,
) -> PreTrendCheck:
    """Were the treated areas already trending differently before the start?

    In the before periods only, fits ``log E[count] = area_i + period_t +
    gamma * treated_i * t`` with ``t`` in months; ``exp(gamma)`` is the
    treated areas' extra rate ratio per month relative to control.  A
    difference-in-differences estimate assumes parallel trends; a clear
    differential pre-trend undermines it.

    Parameters
    ----------
    panel, area_col, period_col, count_col, treated_col, post_col, family, exposure_col, cluster, level
        As for :func:`panel_effect`; rows with ``post`` True are ignored.
        Period labels are converted to months ('YYYY-MM' strings, dates and
        pandas Periods); numeric periods are taken as month numbers.

    Returns
    -------
    PreTrendCheck
        ``irr_per_month`` with ``irr_low``/``irr_high``; ``pct_per_month``
        with ``pct_low``/``pct_high``; ``p_value``; ``level``; ``family``;
        ``cov_type``; ``n_pre_periods``; ``n_areas``; ``verdict``, exactly one
        of "no evidence of differing pre-trends", "treated areas were already
        trending differently", "not enough pre-period months" (fewer than 3
        before periods), or "not estimable" (no crimes in the treated or control
        before rows); ``note`` with the numbers behind it.

    Notes
    -----
    "No evidence" is not proof of parallel trends: with few months or areas
    the interval can be wide, and the note gives it so the reader can judge.

    Examples
    --------
    >>> panel = synthetic_evaluation_data(n_treated=10, seed=2)
    >>> pre_trend_check(panel[panel["role"] != "buffer"]).verdict
    'no evidence of differing pre-trends'
    """
    problems = _Problems("pre_trend_check")
    frame = _prepare_panel(problems, panel, area_col=area_col, period_col=period_col,
                           count_col=count_col, treated_col=treated_col, post_col=post_col,
                           exposure_col=exposure_col, family=family, cluster=cluster,
                           level=level)
    months = None
    if frame is not None:
        months = _month_number(panel[period_col], period_col, problems)
        _require_groups(problems, frame, need_pre=True, need_post=False,
                        treated_col=treated_col, post_col=post_col)
    problems.raise_if_any()

    frame = frame.assign(month_number=months)
    frame = frame[~frame["post"]]
    frame, notes = _drop_empty(frame)
    nan = float("nan")
    cov_type = "cluster-robust by area" if cluster else "model-based"
    n_pre = int(frame["period"].nunique())
    n_areas = int(frame["area"].nunique())

    def empty(verdict: str, note: str) -> PreTrendCheck:
        return PreTrendCheck(nan, nan, nan, nan, nan, nan, nan, float(level), family,
                             cov_type, n_pre, n_areas, verdict, "; ".join(notes + [note]))

    if n_pre < 3:
        return empty("not enough pre-period months",
                     f"{n_pre} before period(s) with crimes; at least 3 are needed to "
                     "estimate a trend")
    totals = frame.groupby("treated")["y"].sum()
    if totals.get(True, 0) == 0 or totals.get(False, 0) == 0:
        return empty("not estimable",
                     "no crimes in the treated or the control areas before the start")

    time = frame["month_number"].to_numpy(float) - frame["month_number"].min()
    fitted = _fit_fixed_effects(frame, frame["treated"].to_numpy(float) * time,
                                family=family, cluster=cluster)
    notes += _inference_notes(fitted, family=family, cluster=cluster)
    coef, se = fitted["coef"], fitted["se"]
    zc = _z_crit(level)
    p = float(_two_sided_p(coef / se))
    irr, low, high = math.exp(coef), math.exp(coef - zc * se), math.exp(coef + zc * se)
    verdict = ("treated areas were already trending differently" if p < 1 - level
               else "no evidence of differing pre-trends")
    notes.insert(0, f"treated vs control trend {100 * (irr - 1):+.2f}% per month "
                    f"({level:.0%} CI {100 * (low - 1):+.2f}% to {100 * (high - 1):+.2f}%), "
                    f"{_fmt_p(p)}, over {n_pre} before months")
    return PreTrendCheck(
        irr_per_month=irr, irr_low=low, irr_high=high, pct_per_month=100 * (irr - 1),
        pct_low=100 * (low - 1), pct_high=100 * (high - 1), p_value=p, level=float(level),
        family=family, cov_type=cov_type, n_pre_periods=n_pre, n_areas=n_areas,
        verdict=verdict, note="; ".join(notes),
    )


# --------------------------------------------------------------------------- #
# 6. regression to the mean
# --------------------------------------------------------------------------- #


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
    _check_level(level, problems)
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


# --------------------------------------------------------------------------- #
# 7. crimes prevented and cost
# --------------------------------------------------------------------------- #


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
    if not problems.items and not float(irr_low) <= float(irr) <= float(irr_high):
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
    if not problems.items and not (float(crimes_prevented_low) <= float(crimes_prevented)
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


# --------------------------------------------------------------------------- #
# 8. synthetic data
# --------------------------------------------------------------------------- #


def synthetic_evaluation_data(
    *,
    n_treated: int = 26,
    n_control: int | None = None,
    months_before: int = 12,
    months_after: int = 12,
    effect: float = -0.30,
    recording_rise: float = 0.10,
    displacement: float = 0.0,
    base_rate: float = 20.0,
    overdispersion: float = 0.0,
    intervention_month: str = "2024-07",
    seed: int = 0,
) -> pd.DataFrame:
    """Reproducible synthetic monthly panel with a known patrol effect.

    Each area's expected monthly count is
    ``base_rate * area_level * season(month) * recording * treatment * displacement``:

    - ``area_level`` ~ Gamma(shape 4, mean 1): stable differences between areas;
    - ``season`` = 1 + 0.15 cos(2 pi (month - 7) / 12), shared by all areas;
    - ``recording`` = 1 before and ``1 + recording_rise`` after, in every area
      (the county-wide recording improvement);
    - ``treatment`` = ``1 + effect`` in treated areas after the start;
    - ``displacement`` = ``1 + displacement`` in buffer areas after the start.

    Counts are Poisson (gamma-Poisson with variance ``mu + overdispersion *
    mu^2`` when ``overdispersion > 0``).  The true IRR of treated vs control is
    ``1 + effect``; the raw treated before/after ratio is
    ``(1 + effect)(1 + recording_rise)``.

    Parameters
    ----------
    n_treated : int, default 26
        Treated areas; there is one buffer area per treated area.
    n_control : int, optional
        Control areas; ``None`` = same as ``n_treated``.
    months_before, months_after : int, default 12
        Months before and from ``intervention_month``.
    effect, recording_rise, displacement : float
        Proportional changes (> -1), see above.
    base_rate : float, default 20.0
        Mean monthly count per area before the start.
    overdispersion : float, default 0.0
        NB2 alpha of month-to-month extra-Poisson variation (0 = Poisson).
    intervention_month : str, default "2024-07"
        First after month, 'YYYY-MM' (Operation Hotspot began mid-2024).
    seed : int, default 0
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SYNTHETIC_COLUMNS`: ``area`` ("T01", "B01", "C01", ...),
        ``role`` ("treated", "buffer", "control"), ``month`` ('YYYY-MM'),
        ``post`` (bool), ``treated`` (bool), ``count`` (int64).

    Examples
    --------
    >>> data = synthetic_evaluation_data(n_treated=3, months_before=2, months_after=2, seed=0)
    >>> data.shape
    (36, 6)
    >>> data["month"].unique().tolist()
    ['2024-05', '2024-06', '2024-07', '2024-08']
    """
    problems = _Problems("synthetic_evaluation_data")

    def whole(name: str, value: Any, minimum: int) -> None:
        if (not isinstance(value, (int, np.integer)) or isinstance(value, bool)
                or value < minimum):
            problems.add(f"{name}={_short(value)} is not a whole number >= {minimum}",
                         f"pass an integer >= {minimum} for {name}")

    whole("n_treated", n_treated, 1)
    if n_control is not None:
        whole("n_control", n_control, 1)
    whole("months_before", months_before, 1)
    whole("months_after", months_after, 1)
    whole("seed", seed, 0)
    for name, value in (("effect", effect), ("recording_rise", recording_rise),
                        ("displacement", displacement)):
        ok = (isinstance(value, (int, float, np.integer, np.floating))
              and not isinstance(value, bool) and math.isfinite(value) and value > -1)
        if not ok:
            problems.add(f"{name}={_short(value)} must be a proportional change > -1",
                         f"e.g. {name}=-0.30 for a 30% fall, 0.10 for a 10% rise")
    _check_positive_number("base_rate", base_rate, problems)
    _check_positive_number("overdispersion", overdispersion, problems, allow_zero=True)
    start = None
    if isinstance(intervention_month, str) and re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])",
                                                            intervention_month):
        start = pd.Period(intervention_month, freq="M")
    else:
        problems.add(f"intervention_month={_short(intervention_month)} is not a month",
                     "use 'YYYY-MM', e.g. intervention_month='2024-07'")
    problems.raise_if_any()

    n_control = n_treated if n_control is None else int(n_control)
    # one random stream per role and phase, so that changing e.g. `displacement`
    # changes only the buffers' after-period counts and the rest stays identical
    level_rng, *phase_rngs = (np.random.default_rng(child)
                              for child in np.random.SeedSequence(seed).spawn(7))
    months = pd.period_range(start - months_before, periods=months_before + months_after,
                             freq="M")
    post = np.arange(months.size) >= months_before
    season = 1 + 0.15 * np.cos(2 * np.pi * (months.month.to_numpy() - 7) / 12)

    width = len(str(max(n_treated, n_control)))
    roles = (["treated"] * n_treated + ["buffer"] * n_treated + ["control"] * n_control)
    prefix = {"treated": "T", "buffer": "B", "control": "C"}
    areas, counter = [], {"treated": 0, "buffer": 0, "control": 0}
    for role in roles:
        counter[role] += 1
        areas.append(f"{prefix[role]}{counter[role]:0{width}d}")
    role_arr = np.array(roles)
    level_by_area = level_rng.gamma(shape=4.0, scale=0.25, size=role_arr.size)

    mean = base_rate * level_by_area[:, None] * season[None, :]
    mean = mean * np.where(post, 1 + recording_rise, 1.0)[None, :]
    mean = mean * np.where((role_arr == "treated")[:, None] & post[None, :], 1 + effect, 1.0)
    mean = mean * np.where((role_arr == "buffer")[:, None] & post[None, :], 1 + displacement, 1.0)
    counts = np.empty(mean.shape, dtype="int64")
    phases = [(role, phase) for role in ("treated", "buffer", "control")
              for phase in (False, True)]
    for (role, phase), rng in zip(phases, phase_rngs):
        cells = np.ix_(role_arr == role, post == phase)
        cell_mean = mean[cells]
        if overdispersion > 0:
            cell_mean = cell_mean * rng.gamma(shape=1 / overdispersion, scale=overdispersion,
                                              size=cell_mean.shape)
        counts[cells] = rng.poisson(cell_mean)

    n_areas, n_months = mean.shape
    return pd.DataFrame({
        "area": np.repeat(areas, n_months),
        "role": np.repeat(role_arr, n_months),
        "month": np.tile(months.strftime("%Y-%m"), n_areas),
        "post": np.tile(post, n_areas),
        "treated": np.repeat(role_arr == "treated", n_months),
        "count": counts.ravel().astype("int64"),
    })[SYNTHETIC_COLUMNS]
