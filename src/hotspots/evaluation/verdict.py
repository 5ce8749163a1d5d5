"""Verdicts and plain-English sentences that never claim more than the interval supports.

An interval including no change is "no detectable change"; few crimes is "too
few crimes to tell"; a fall relative to the comparison is only a "credible
reduction" when it survives the regression-to-the-mean, pre-trend and
all-months checks (:func:`overall_verdict`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from hotspots.evaluation.areas import TreatedAreas
from hotspots.evaluation.cost import CostPerCrime
from hotspots.evaluation.displacement import WDDResult
from hotspots.evaluation.panel import PanelEffect, PreTrendCheck
from hotspots.evaluation.rtm import RTMCheck
from hotspots.months import human_period
from hotspots.schema import ASB

__all__ = [
    "DECISION_TABLE", "Decision", "LEVEL", "MIN_AREAS", "MIN_CRIMES", "decide", "WIDE_INTERVAL_POINTS", "classify_change", "describe_change", "describe_displacement",
    "overall_verdict",
]

#: Confidence level of every interval in the sentences.
LEVEL = 0.95
#: Fewer treated crimes than this (before + after) and a change is "too few crimes to tell".
MIN_CRIMES = 20
#: Fewer treated areas than this and no verdict is given ("too few areas to tell").
MIN_AREAS = 3
#: An interval including no change that is wider than this (percentage points) is "too few crimes to tell".
WIDE_INTERVAL_POINTS = 100.0


def _noun(members: Sequence[str]) -> str:
    if set(members) == {ASB}:
        return "ASB incidents"
    return "crimes and ASB incidents" if ASB in members else "crimes"


def _noun_one(members: Sequence[str]) -> str:
    """Singular: 'per ... prevented'."""
    if set(members) == {ASB}:
        return "ASB incident"
    return "crime or ASB incident" if ASB in members else "crime"


def _what(name: str) -> str:
    """A crime type or group name for use mid-sentence ('Violence' -> 'violence', 'ASB' stays)."""
    first = name.split(" ")[0]
    return name if first.isupper() else name[0].lower() + name[1:]


def _whole(x: float) -> str:
    v = abs(x)
    return f"{v:.1f}" if 0 < v < 1 else f"{v:.0f}"


def classify_change(pct: float, low: float, high: float, n_crimes: float | None = None) -> str:
    """One of "fell", "rose", "no detectable change", "too few crimes to tell", "not estimable".

    Parameters
    ----------
    pct, low, high : float
        A percentage change and its interval.
    n_crimes : float, optional
        Crimes behind it (before + after); fewer than :data:`MIN_CRIMES` is
        "too few crimes to tell".

    Returns
    -------
    str
        "fell" / "rose" only when the whole interval is below / above zero; an
        interval including zero is "no detectable change", or "too few crimes
        to tell" when wider than :data:`WIDE_INTERVAL_POINTS` points.

    Examples
    --------
    >>> classify_change(-18, -26, -9, 400), classify_change(-5, -20, 12, 400), classify_change(-40, -90, 300, 12)
    ('fell', 'no detectable change', 'too few crimes to tell')
    """
    if n_crimes is not None and n_crimes < MIN_CRIMES:
        return "too few crimes to tell"
    if not all(np.isfinite([pct, low, high])):
        return "not estimable"
    if high < 0:
        return "fell"
    if low > 0:
        return "rose"
    if high - low > WIDE_INTERVAL_POINTS:
        return "too few crimes to tell"
    return "no detectable change"


def describe_change(pct: float, low: float, high: float, *, what: str, comparison: str, n_crimes: float | None = None,
                    level: float = LEVEL) -> str:
    """A plain-English sentence that never claims more than the interval supports.

    Parameters
    ----------
    pct, low, high : float
        A percentage change relative to ``comparison`` and its interval.
    what : str
        What changed, mid-sentence (e.g. "ASB").
    comparison : str
        What it is relative to (e.g. "the rest of the county").
    n_crimes : float, optional
        Crimes behind it (before + after), see :func:`classify_change`.
    level : float, default 0.95
        The interval's confidence level (for the wording).

    Returns
    -------
    str
        One sentence (no final full stop), worded by :func:`classify_change`.

    Examples
    --------
    >>> describe_change(-18.2, -26.1, -9.3, what="ASB", comparison="the rest of the county", n_crimes=900)
    'ASB fell 18% (95% CI 9–26%) relative to the rest of the county'
    >>> describe_change(-6.0, -19.0, 9.0, what="ASB", comparison="the rest of the county", n_crimes=900)
    'no detectable change in ASB relative to the rest of the county (best estimate −6%, 95% CI −19% to +9%)'
    >>> describe_change(-50.0, -90.0, 150.0, what="ASB", comparison="the rest of the county", n_crimes=9)
    'too few ASB records to tell (9 before and after together)'
    """
    lvl = f"{level:.0%} CI"
    verdict = classify_change(pct, low, high, n_crimes)
    if verdict == "too few crimes to tell":
        if n_crimes is not None and n_crimes < MIN_CRIMES:
            return f"too few {what} records to tell ({n_crimes:.0f} before and after together)"
        return (f"too few {what} records to tell: relative to {comparison} the change could be anything "
                f"from {_signed(low)} to {_signed(high)}")
    if verdict == "not estimable":
        return f"the change in {what} relative to {comparison} cannot be estimated (a zero count)"
    if verdict == "fell":
        return f"{what} fell {_whole(pct)}% ({lvl} {_whole(high)}–{_whole(low)}%) relative to {comparison}"
    if verdict == "rose":
        return f"{what} rose {_whole(pct)}% ({lvl} {_whole(low)}–{_whole(high)}%) relative to {comparison}"
    return (f"no detectable change in {what} relative to {comparison} "
            f"(best estimate {_signed(pct)}, {lvl} {_signed(low)} to {_signed(high)})")


def _signed_count(x: float) -> str:
    return ("−" if x < 0 else "+") + f"{abs(x):,.0f}" if round(x) else "0"


def _signed(x: float) -> str:
    s = _whole(x)
    if s in ("0", "0.0"):
        return "0%"
    return ("−" if x < 0 else "+") + s + "%"


def describe_displacement(buffer_row: pd.Series | dict, wdd_res: WDDResult | None, *, buffer_m: float,
                          comparison: str, n_buffer: float, level: float = LEVEL) -> tuple[str, str]:
    """(verdict, sentence) for the buffers from two tests: the buffers' rate ratio against the comparison and
    the WDD displacement test against matched cells of similar size.

    Verdicts: "displacement" (both tests), "possible displacement" (one test), "diffusion", "possible
    diffusion", "none detected", "too few crimes to tell".  A test that sees nothing is never read as proof
    of no displacement: the sentence gives the interval.

    Parameters
    ----------
    buffer_row : pandas.Series or dict
        The buffers' DiD against the comparison (``pct_change_vs_control``,
        ``pct_low``, ``pct_high``; a row of :func:`~hotspots.evaluation.did.did_rate_ratio`).
    wdd_res : WDDResult or None
        The weighted displacement difference test (Wheeler & Ratcliffe 2018), if made.
    buffer_m : float
        Buffer width in metres (for the wording).
    comparison : str
        What the buffers are compared with.
    n_buffer : float
        Crimes in the buffers, before + after.
    level : float, default 0.95
        Significance is ``p < 1 - level``.

    Returns
    -------
    (str, str)
        The verdict and one sentence.

    Examples
    --------
    >>> row = {"pct_change_vs_control": -2.0, "pct_low": -9.0, "pct_high": 6.0}
    >>> describe_displacement(row, None, buffer_m=250, comparison="the rest of the county", n_buffer=900)[0]
    'none detected'
    """
    ring = f"the {buffer_m:g} m buffers"
    if n_buffer < MIN_CRIMES:
        return "too few crimes to tell", f"too few crimes in {ring} to tell whether crime moved there"
    pct, low, high = (float(buffer_row[k]) for k in ("pct_change_vs_control", "pct_low", "pct_high"))
    if not np.isfinite(pct):
        return "too few crimes to tell", f"the change in {ring} cannot be estimated (a zero count)"
    alpha = 1 - level
    wdd_ok = wdd_res is not None and np.isfinite(wdd_res.displacement_p)
    wdd_up = wdd_ok and wdd_res.displacement_p < alpha and wdd_res.displacement_wdd > 0
    wdd_down = wdd_ok and wdd_res.displacement_p < alpha and wdd_res.displacement_wdd < 0
    rr_up, rr_down = bool(np.isfinite(low) and low > 0), bool(np.isfinite(high) and high < 0)
    ci = f"{_signed(pct)}, {level:.0%} CI {_signed(low)} to {_signed(high)}, relative to {comparison}"
    wdd_txt = (f"{_signed_count(wdd_res.displacement_wdd)} crimes relative to matched cells of similar size, "
               + ("p < 0.001" if wdd_res.displacement_p < 0.001 else f"p = {wdd_res.displacement_p:.3f}")
               if wdd_ok else "")
    if rr_up and wdd_up:
        return "displacement", f"displacement: crime rose in {ring} ({ci}; {wdd_txt})"
    if rr_up or wdd_up:
        which = f"relative to {comparison} ({ci})" if rr_up else f"against matched cells of similar size ({wdd_txt})"
        other = f"against matched cells the change was {wdd_txt}" if rr_up else f"relative to {comparison} it was {ci.split(', relative')[0]}"
        return ("possible displacement",
                f"possible displacement: crime in {ring} rose on one of two tests, {which}, but not on the other "
                f"({other})")
    if rr_down and wdd_down:
        return "diffusion", f"no displacement: crime also fell in {ring} ({ci}), a diffusion of benefit"
    if rr_down or wdd_down:
        which = f"relative to {comparison} ({ci})" if rr_down else f"against matched cells of similar size ({wdd_txt})"
        other = f"against matched cells the change was {wdd_txt}" if rr_down else f"relative to {comparison} it was {ci.split(', relative')[0]}"
        return ("possible diffusion",
                f"no displacement was detected; crime in {ring} fell on one of two tests, {which}, but not on the other "
                f"({other})")
    if np.isfinite(low) and high - low > WIDE_INTERVAL_POINTS:
        return "too few crimes to tell", f"too few crimes in {ring} to tell whether crime moved there ({ci})"
    return "none detected", f"no displacement to {ring} was detected ({ci})"

#: summary rows that are figures only when a reduction is credited
_CREDIT_ONLY = ("crimes_prevented", "cost_per_crime_prevented", "harm_prevented", "cost_per_harm_unit_prevented")


def _displacement_wording(verdict: str) -> str:
    """What the WDQ and TNE rows may say, given the calibrated displacement verdict (so they never disagree)."""
    return {"none detected": "no detectable displacement or diffusion of benefit",
            "too few crimes to tell": "too few crimes in the buffers to tell",
            "displacement": "displacement", "possible displacement": "possible displacement",
            "diffusion": "diffusion of benefit", "possible diffusion": "possible diffusion of benefit"}.get(verdict, "")


# --------------------------------------------------------------------------- sentences
def _describe_panel(res, ct: str, comparison: str, n: float) -> str:
    if not isinstance(res, PanelEffect):
        return f"The monthly model could not be fitted ({res})."
    s = describe_change(res.pct_change, res.pct_low, res.pct_high, what=ct, comparison=comparison, n_crimes=n)
    if _panel_verdict(dataclasses.asdict(res), n) != classify_change(res.pct_change, res.pct_low, res.pct_high, n):
        s += (f"; but the wild cluster bootstrap, the check for few areas, gives p = {res.p_value_wild:.2f}, "
              "so this is not counted as a change")
    return f"Using all {res.n_periods} months with data (area and month effects): {s}."


def _pm(x: float) -> str:
    """'+0.04%', '−0.96%' (two decimals, typographic minus) for small monthly trends."""
    return ("−" if x < 0 else "+") + f"{abs(x):.2f}%"


def _describe_pre_trend(pre, comparison: str = "the comparison") -> str:
    if not isinstance(pre, PreTrendCheck):
        return f"The check of trends before the patrols could not be made ({pre})."
    n = pre.n_pre_periods
    if pre.verdict == "no evidence of differing pre-trends":
        return (f"Before the patrols, these areas and {comparison} moved in step: no difference in trend was detected over "
                f"{n} months with data ({_pm(pre.pct_per_month)} a month, {LEVEL:.0%} CI {_pm(pre.pct_low)} to "
                f"{_pm(pre.pct_high)}).")
    if pre.verdict == "treated areas were already trending differently":
        direction = "rising" if pre.pct_per_month > 0 else "falling"
        return (f"Warning: before the patrols, crime in these areas was already {direction} relative to {comparison} "
                f"(by about {abs(pre.pct_per_month):.1f}% a month, {LEVEL:.0%} CI {_pm(pre.pct_low)} to "
                f"{_pm(pre.pct_high)}, over {n} months with data), so a simple before/after comparison may be biased.")
    if pre.verdict == "not enough pre-period months":
        return f"There are too few months before the patrols ({n}) to check whether the areas were already trending differently."
    return f"The check of trends before the patrols: {pre.verdict}."


def _describe_rtm(rtm: RTMCheck, treated: TreatedAreas, ct: str) -> str:
    if not np.isfinite(rtm.rate_ratio):
        return "The regression-to-the-mean check could not be made (a zero count)."
    if treated.selected_on_counts:
        period = human_period(treated.selection_period.label) if treated.selection_period else "the before period"
        lead = (f"These areas were picked because they had the most crime in {period}, and places picked at a peak "
                "tend to fall back anyway (regression to the mean). ")
    elif treated.selected_on_counts is False:
        lead = ("These areas were not picked on these counts, so little regression to the mean is expected; "
                "the check is shown for completeness. ")
    else:
        lead = "If these areas were picked because of high recent crime, some fall was expected anyway. "
    numbers = (f"Untreated places with equally high {_what(ct)} before changed by {_signed(rtm.comparison_change_pct)} "
               f"without patrols; the treated areas changed by {_signed(rtm.treated_change_pct)}. ")
    pct, low, high = 100 * (rtm.rate_ratio - 1), 100 * (rtm.rr_low - 1), 100 * (rtm.rr_high - 1)
    v = classify_change(pct, low, high)
    ci = f"{_signed(pct)}, {LEVEL:.0%} CI {_signed(low)} to {_signed(high)}"
    if v == "fell":
        tail = f"The treated areas fell more than those places ({ci}): the fall is not explained by regression to the mean alone."
    elif v == "rose":
        tail = f"The treated areas did worse than those places ({ci})."
    elif rtm.treated_change_pct < 0:
        tail = (f"The difference between them is not detectable ({ci}), so the fall is consistent with regression to "
                "the mean and cannot be credited to the patrols on this evidence.")
    else:
        tail = f"The treated areas changed about as much as those places (difference {ci})."
    return lead + numbers + tail


def _describe_cost(cost: CostPerCrime | None, one: str, funding: float | None, funding_period: float | None,
                   n_after: int) -> str:
    if not funding:
        return "No funding figure was given, so no cost per crime prevented (set [evaluation] funding_gbp)."
    basis = f"£{funding:,.0f} a year pro-rated to the {n_after}-month after period: £{funding_period:,.0f}"
    if cost is None:
        return f"The cost per {one} prevented cannot be estimated ({basis})."
    if cost.status == "defined":
        return (f"about £{cost.cost_per_crime:,.0f} per {one} prevented (95% interval £{cost.cost_low:,.0f}"
                f"–£{cost.cost_high:,.0f}; {basis})")
    if cost.status == "unbounded":
        return (f"the evaluation cannot rule out that nothing was prevented, so the cost per {one} prevented has no "
                f"upper limit (best estimate £{cost.cost_per_crime:,.0f}; {basis})")
    return f"nothing can be shown to have been prevented, so there is no cost per {one} prevented to report ({basis})"


@dataclasses.dataclass(frozen=True)
class Decision:
    """A verdict from :func:`decide`: ``verdict``, the ``row`` of :data:`DECISION_TABLE` that fired, and ``reasons``."""

    verdict: str
    row: int
    reasons: tuple[str, ...]


#: The verdict's decision table: (row, condition, verdict).  The first row that holds decides.
DECISION_TABLE = (
    (1, f"fewer than {MIN_AREAS} treated areas", "too few areas to tell"),
    (2, f"fewer than {MIN_CRIMES} treated crimes (before + after)", "too few crimes to tell"),
    (3, "no calibrated interval (too few comparable untreated places)", "not estimable"),
    (4, "treated areas changed less favourably than equally high untreated places (RTM check interval above 0)",
     "treated did worse than equally high places"),
    (5, "calibrated interval entirely above no change", "increase"),
    (6, "calibrated interval includes no change and is wider than 100 points", "too few crimes to tell"),
    (7, "calibrated interval includes no change", "no detectable change"),
    (8, "calibrated interval below no change, but equally high untreated places fell about as much "
        "(areas picked or possibly picked on their counts), or the areas were already trending differently, "
        "or the all-months panel shows no fall, or the RTM check could not be done for areas picked on counts",
     "reduction not attributable"),
    (9, "calibrated interval below no change and none of the above", "credible reduction"),
)


def decide(*, pct: float, low: float, high: float, n_areas: int, n_crimes: float, rtm_verdict: str = "",
           selected_on_counts: bool | None = None, pre_trend_verdict: str = "", panel_verdict: str = "") -> Decision:
    """Apply :data:`DECISION_TABLE` to one crime type's calibrated estimate and checks.

    Parameters
    ----------
    pct, low, high : float
        The calibrated (placebo) change relative to the control and its interval, in %.
    n_areas : int
        Treated areas.
    n_crimes : float
        Treated crimes, before + after.
    rtm_verdict : str
        The regression-to-the-mean check's verdict (its text before ":"); "" when not run.
    selected_on_counts : bool or None
        Whether the areas were picked on their counts (None = unknown, treated as possibly).
    pre_trend_verdict : str
        The pre-trend check's verdict; "" when not run.
    panel_verdict : str
        The all-months panel's :func:`classify_change`; "" when not run.

    Returns
    -------
    Decision

    Examples
    --------
    >>> decide(pct=-20, low=-30, high=-8, n_areas=26, n_crimes=3000, selected_on_counts=False).verdict
    'credible reduction'
    >>> decide(pct=-20, low=-30, high=-8, n_areas=26, n_crimes=3000,
    ...        rtm_verdict="worse than equally high untreated areas").verdict
    'treated did worse than equally high places'
    >>> decide(pct=-20, low=-30, high=-8, n_areas=2, n_crimes=3000).verdict
    'too few areas to tell'
    """
    def out(row: int, *reasons: str) -> Decision:
        return Decision(next(v for r, _, v in DECISION_TABLE if r == row), row, tuple(reasons))

    if n_areas < MIN_AREAS:
        return out(1, f"only {n_areas} treated area(s): one place's ups and downs would decide the answer")
    if n_crimes < MIN_CRIMES:
        return out(2)
    if not all(np.isfinite([pct, low, high])):
        return out(3)
    if rtm_verdict.startswith("worse than equally high"):
        return out(4, "the treated areas changed less favourably than untreated places with similar crime before")
    if low > 0:
        return out(5)
    if high >= 0:
        return out(6) if high - low > WIDE_INTERVAL_POINTS else out(7)
    reasons = []
    picked = selected_on_counts is not False
    if picked and rtm_verdict.startswith("consistent with regression"):
        reasons.append("similar high-crime places without patrols fell about as much (regression to the mean)")
    if picked and (rtm_verdict == "" or rtm_verdict.startswith("cannot check")):
        reasons.append("regression to the mean could not be checked for areas picked on their counts")
    if pre_trend_verdict == "treated areas were already trending differently":
        reasons.append("the areas were already moving differently from the comparison before the patrols")
    if panel_verdict in ("no detectable change", "rose", "too few crimes to tell"):
        reasons.append(f"over all months of data the panel model shows {panel_verdict.replace('rose', 'a rise')}")
    return out(8, *reasons) if reasons else out(9)


def _panel_verdict(p: dict[str, Any] | None, n_crimes: float | None = None) -> str:
    """The panel's verdict; a cluster-robust interval that excludes no change counts only if the wild cluster
    bootstrap p (small-cluster correction) agrees."""
    if not p:
        return ""
    verdict = classify_change(p["pct_change"], p["pct_low"], p["pct_high"], n_crimes)
    wild = p.get("p_value_wild", float("nan"))
    if verdict in ("fell", "rose") and np.isfinite(wild) and wild > 1 - LEVEL:
        return "no detectable change"
    return verdict


def overall_verdict(f: dict[str, Any], treated: TreatedAreas) -> tuple[str, list[str]]:
    """The verdict of one finding by :func:`decide` (see :data:`DECISION_TABLE`), and its reasons.

    Uses the calibrated (placebo) interval when the finding has one
    (``f["calibrated"]``), else the rate-ratio DiD's.

    Parameters
    ----------
    f : dict
        A finding of :class:`~hotspots.evaluation.tables.EvaluationResult`
        (``did``, ``calibrated``, ``n_areas``, ``treated_before``/``treated_after``,
        ``rtm_verdict``, ``panel``, ``pre_trend``).
    treated : TreatedAreas
        How the areas were chosen (``selected_on_counts``).

    Returns
    -------
    (str, list of str)
        The verdict and its reasons.

    Examples
    --------
    >>> import geopandas as gpd
    >>> t = TreatedAreas(gpd.GeoDataFrame(), "user", "", False, selected_on_counts=True)
    >>> f = {"did": {"pct_change_vs_control": -20.0, "pct_low": -30.0, "pct_high": -9.0}, "n_areas": 6,
    ...      "treated_before": 300, "treated_after": 200,
    ...      "rtm_verdict": "consistent with regression to the mean", "panel": None, "pre_trend": None}
    >>> overall_verdict(f, t)
    ('reduction not attributable', ['similar high-crime places without patrols fell about as much (regression to the mean)'])
    """
    est = f.get("calibrated") or {}
    if est and np.isfinite(est.get("pct_low", np.nan)):
        pct, low, high = est["pct_change"], est["pct_low"], est["pct_high"]
    elif est:
        pct = low = high = float("nan")
    else:
        d = f["did"]
        pct, low, high = d["pct_change_vs_control"], d["pct_low"], d["pct_high"]
    p = f.get("panel")
    d = decide(pct=pct, low=low, high=high, n_areas=int(f.get("n_areas", MIN_AREAS)),
               n_crimes=float(f.get("treated_before", MIN_CRIMES) + f.get("treated_after", 0)),
               rtm_verdict=f.get("rtm_verdict", "") or "", selected_on_counts=treated.selected_on_counts,
               pre_trend_verdict=(f.get("pre_trend") or {}).get("verdict", ""),
               panel_verdict=_panel_verdict(p))
    return d.verdict, list(d.reasons)


def _headline(f: dict[str, Any], n_areas: int, buffer_m: float, treated: TreatedAreas) -> str:
    verdict, reasons = overall_verdict(f, treated)
    disp = {
        "none detected": f"no displacement to the {buffer_m:g} m buffers was detected",
        "displacement": f"crime rose in the {buffer_m:g} m buffers on both displacement tests: displacement",
        "possible displacement": f"one of two tests suggests some displacement into the {buffer_m:g} m buffers",
        "diffusion": f"crime also fell in the {buffer_m:g} m buffers (no displacement)",
        "possible diffusion": f"no displacement to the {buffer_m:g} m buffers was detected",
        "too few crimes to tell": f"there were too few crimes in the {buffer_m:g} m buffers to tell about displacement",
    }[f["displacement_verdict"]]
    lead = f"Across the {n_areas} areas, {f['effect_sentence']}"
    if verdict == "credible reduction":
        parts = [lead, disp]
        if f["cost_status"] == "defined":
            parts.append(f["cost_sentence"].split(" (")[0])
        elif f["cost_status"] == "unbounded":
            parts.append("the cost per crime prevented has no upper limit because the interval reaches zero")
        text = "; ".join(parts) + "."
    elif verdict == "reduction not attributable":
        text = (f"{lead}, but the fall cannot be credited to the patrols: " + ", and ".join(reasons[:2]) + ". "
                f"{disp[0].upper() + disp[1:]}. No cost per crime prevented can be claimed.")
    elif verdict == "treated did worse than equally high places":
        text = (f"{lead}, but the treated areas did worse than untreated places with equally high crime before "
                f"({f.get('rtm_sentence_short', 'see the regression-to-the-mean check')}), so no reduction can be "
                f"credited to the patrols. {disp[0].upper() + disp[1:]}. No cost per crime prevented can be claimed.")
    elif verdict == "too few areas to tell":
        text = (f"{lead}, but with only {n_areas} treated area(s) one place's ups and downs would decide the answer: "
                f"too few areas to tell. {disp[0].upper() + disp[1:]}.")
    else:
        text = f"{lead}; {disp}."
        if f["cost_status"] and verdict == "credible reduction":
            first = f["cost_sentence"].split(" (")[0]
            text += " " + first[0].upper() + first[1:] + "."
    return text[0].upper() + text[1:]
