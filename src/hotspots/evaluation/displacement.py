"""Displacement and diffusion of benefit: WDQ, total net effect and the WDD test.

Notation (as in ``methods.md``): **R** = treated (response) area, **C** =
control area, **D** = displacement buffer around R, **Cd** = control for the
buffer; suffix *b* / *a* = before / after.

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hotspots.evaluation._checks import (
    _check_level,
    _fmt_p,
    _Problems,
    _scalar_counts,
    _short,
    _two_sided_p,
    _z_crit,
)

__all__ = ["TotalNetEffect", "WDDResult", "WDQResult", "total_net_effect", "wdd", "wdq"]

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
    if round(buffer) < 0:
        buffer_text = f"{-buffer:.0f} more than expected in the buffer (displacement)"
    elif round(buffer) > 0:
        buffer_text = f"{buffer:.0f} fewer than expected in the buffer (diffusion of benefit)"
    else:
        buffer_text = "the buffer as expected"
    more = "fewer" if tne >= 0 else "more"
    text = (f"{abs(tne):.0f} {more} crimes in the treated areas and buffers together than the control's change "
            f"predicts: {-treated:+.0f} relative to expected in the treated areas, {buffer_text}")
    return TotalNetEffect(**counts, control_ratio=ratio, expected_r_after=expected_r,
                          expected_d_after=expected_d, treated_effect=treated,
                          buffer_effect=buffer, total_net_effect=tne, interpretation=text)



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
    _check_level(problems, "level", level)
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
