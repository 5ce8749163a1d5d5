"""Fixed-effects count models on a monthly panel: the DiD effect and the pre-trend check.

The Poisson and negative-binomial families are the toolkit's copy of
statsmodels' (:class:`hotspots.evaluation._glm.CountFamily`), so a fit imports
neither statsmodels' families nor scipy.stats; statsmodels' GLM is imported
only when a fit needs it (:func:`hotspots.evaluation._glm.fit_glm`).

References
----------
.. [5] Cameron, A. C. & Trivedi, P. K. (2013). *Regression Analysis of Count
   Data*, 2nd ed., section 3.4 (overdispersion, auxiliary regression for NB2).
.. [6] Cameron, A. C. & Miller, D. L. (2015). A practitioner's guide to
   cluster-robust inference. *Journal of Human Resources* 50(2), 317-372.
.. [7] Kline, P. & Santos, A. (2012). A score based approach to wild bootstrap
   inference. *Journal of Econometric Methods* 1(1), 23-41.
.. [8] Webb, M. D. (2023). Reworking wild bootstrap-based inference for clustered
   errors. *Canadian Journal of Economics* 56(3), 839-858 (six-point weights).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hotspots.evaluation._checks import (
    _check_level,
    _count_array,
    _fmt_p,
    _Problems,
    _short,
    _two_sided_p,
    _z_crit,
)
from hotspots.evaluation._panel_fit import (  # noqa: F401  (MAX_DESIGN_CELLS, WILD_DRAWS, wild_score_p: this module's names)
    MAX_DESIGN_CELLS,
    WILD_DRAWS,
    _fit_families,
    _fit_fixed_effects,
    wild_score_p,
)


__all__ = ["FEW_CLUSTERS", "OVERDISPERSION_THRESHOLD", "PanelEffect", "PreTrendCheck", "WILD_DRAWS", "panel_effect",
           "pre_trend_check", "wild_score_p"]

#: Pearson dispersion above which a Poisson fit is flagged as overdispersed.
OVERDISPERSION_THRESHOLD = 1.5
#: Fewer clusters than this and cluster-robust SEs are themselves unreliable [6].
FEW_CLUSTERS = 20

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
    #: wild cluster (score) bootstrap p-value of "no effect" (Kline & Santos 2012), NaN when not made
    p_value_wild: float = float("nan")
    wild_draws: int = 0


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
    _check_level(problems, "level", level)
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
    if counts is None or treated is None or post is None or problems.messages:
        return None

    frame = pd.DataFrame({
        "area": panel[area_col].to_numpy(), "period": panel[period_col].to_numpy(),
        "y": counts, "treated": treated, "post": post,
        "offset": np.log(exposure) if exposure is not None else 0.0,
    })
    if _consistent(frame):  # (by codes: the checks below find nothing to say)
        return frame
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


def _consistent(frame: pd.DataFrame) -> bool:
    """True when no (area, period) repeats, ``treated`` is constant within each area and ``post`` within each
    period (what ``_prepare_panel`` checks, answered with integer codes instead of pandas groupbys)."""
    area, n_areas = _codes(frame["area"])
    period, n_periods = _codes(frame["period"])
    if area is None or period is None:
        return False
    pairs = area * n_periods + period
    return (np.unique(pairs).size == pairs.size
            and np.unique(area * 2 + frame["treated"].to_numpy(bool)).size == n_areas
            and np.unique(period * 2 + frame["post"].to_numpy(bool)).size == n_periods)


def _codes(values: pd.Series) -> tuple[np.ndarray | None, int]:
    """Integer codes of the labels (first appearance order) and how many; None when a label is missing."""
    codes, uniques = pd.factorize(values)
    if (codes < 0).any():
        return None, 0
    return codes.astype(np.int64), len(uniques)


def _drop_empty(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Drop areas and periods with no crime at all: they carry no information in a
    fixed-effects Poisson fit and make the fixed effect diverge.

    The counts are whole numbers >= 0 (``_prepare_panel``): a label's total is 0 exactly when every count of it
    is, which integer codes and ``np.bincount`` find without a pandas groupby; a missing label takes the
    groupby's way.
    """
    notes = []
    for col, what in (("area", "area(s) with no crimes in any period dropped "
                               "(they carry no information in a fixed-effects count model)"),
                      ("period", "period(s) with no crimes in any area dropped")):
        codes, n_labels = _codes(frame[col])
        if codes is None:
            return _drop_empty_grouped(frame)
        empty = np.bincount(codes, weights=frame["y"].to_numpy(float), minlength=n_labels) == 0
        n_empty = int(empty.sum())
        if n_empty:
            frame = frame[~empty[codes]]
            notes.append(f"{n_empty} {what}")
    return frame, notes


def _drop_empty_grouped(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """:func:`_drop_empty` by pandas groupbys (labels that may be missing)."""
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
    >>> from hotspots.evaluation.synthetic import synthetic_evaluation_data
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
    res = _panel_effects(frame, (family,), cluster=cluster, level=level)[family]
    if isinstance(res, BaseException):
        raise res
    return res


def _panel_effects(frame: pd.DataFrame, families_: tuple[str, ...], *, cluster: bool,
                   level: float) -> dict[str, PanelEffect | BaseException]:
    """:func:`panel_effect` of a validated panel (``_prepare_panel``) for each family, the Poisson fit made once.

    Each family gets the :class:`PanelEffect` ``panel_effect`` returns for it, or the exception it raises.
    """
    frame, dropped = _drop_empty(frame)
    sizes = {
        "n_obs": len(frame), "n_areas": frame["area"].nunique(),
        "n_treated_areas": frame.loc[frame["treated"], "area"].nunique(),
        "n_periods": frame["period"].nunique(),
        "n_post_periods": frame.loc[frame["post"], "period"].nunique(),
    }
    nan = float("nan")
    y, treated, post = (frame[c].to_numpy() for c in ("y", "treated", "post"))
    # (counts >= 0: a cell's total is 0 exactly when it has no positive count, or no rows)
    empty_cells = [f"{'treated' if t else 'control'} {'after' if p else 'before'}"
                   for (t, p) in [(True, False), (True, True), (False, False), (False, True)]
                   if not (y[(treated == t) & (post == p)] > 0).any()]
    n_params = sizes["n_areas"] + sizes["n_periods"]  # area and period effects (less one) + the effect
    # cluster-robust errors scale by (n - 1) / (n - k): an exactly identified panel has none
    if not empty_cells and (sizes["n_obs"] < n_params or cluster and sizes["n_obs"] <= n_params):
        dropped.append(f"{sizes['n_obs']} area-months for {n_params} parameters: too few to fit the panel "
                       "with cluster-robust errors (the effect is not estimable); pool more areas or months")
        empty_cells = ["all"]
    elif empty_cells:
        dropped.append(f"no crimes in the {', '.join(empty_cells)} rows: the effect is not "
                       "estimable; pool more areas or months")
    if empty_cells:
        return {family: PanelEffect(nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, float(level),
                                    family, nan, nan, "cluster-robust by area" if cluster else "model-based",
                                    **sizes, note="; ".join(dropped))
                for family in families_}

    regressor = (frame["treated"] & frame["post"]).to_numpy(float)
    try:
        fits = _fit_families(frame, regressor, families_, cluster=cluster)
    except Exception as exc:  # the design itself (too large): every family raises it
        return {family: exc for family in families_}
    out: dict[str, PanelEffect | BaseException] = {}
    for family in families_:
        fitted = fits[family]
        if isinstance(fitted, BaseException):
            out[family] = fitted
            continue
        notes = dropped + _inference_notes(fitted, family=family, cluster=cluster)
        if np.isfinite(fitted["p_wild"]):
            notes.append(f"wild cluster bootstrap p = {fitted['p_wild']:.3f} ({WILD_DRAWS} draws; the small-cluster "
                         "check of the cluster-robust p, used by the verdict)")
        coef, se = fitted["coef"], fitted["se"]
        zc = _z_crit(level)
        z = coef / se
        irr, low, high = math.exp(coef), math.exp(coef - zc * se), math.exp(coef + zc * se)
        out[family] = PanelEffect(
            irr=irr, irr_low=low, irr_high=high,
            pct_change=100 * (irr - 1), pct_low=100 * (low - 1), pct_high=100 * (high - 1),
            log_irr=coef, se_log_irr=se, z=z, p_value=float(_two_sided_p(z)), level=float(level),
            family=family, nb_alpha=fitted["nb_alpha"], dispersion=fitted["dispersion"],
            cov_type=fitted["cov_type"], **sizes, note="; ".join(notes),
            p_value_wild=fitted["p_wild"], wild_draws=WILD_DRAWS if np.isfinite(fitted["p_wild"]) else 0,
        )
    return out


def panel_effects_and_pre_trend(panel: pd.DataFrame, *, families: tuple[str, ...] = ("poisson", "negbin"),
                                cluster: bool = True, level: float = 0.95) -> list[Any] | None:
    """``[panel_effect(panel, family=f) for f in families] + [pre_trend_check(panel)]``, each result or the exception
    it raises, with the panel validated once and the Poisson fit made once; the default column names.

    None when the panel does not pass every check (the caller then calls the two functions, each of which
    raises its own message).
    """
    problems = _Problems("panel_effect")
    frame = None
    if all(f in _FAMILIES for f in families):
        frame = _prepare_panel(problems, panel, area_col="area", period_col="month", count_col="count",
                               treated_col="treated", post_col="post", exposure_col=None, family="poisson",
                               cluster=cluster, level=level)
    if frame is None or problems.messages:
        return None
    months = _month_number(panel["month"], "month", problems)
    _require_groups(problems, frame, need_pre=True, need_post=True, treated_col="treated", post_col="post")
    if months is None or problems.messages:
        return None
    effects = _panel_effects(frame, tuple(families), cluster=cluster, level=level)
    try:
        pre: Any = _pre_trend(frame, months, family="poisson", cluster=cluster, level=level)
    except Exception as exc:
        pre = exc
    return [effects[f] for f in families] + [pre]


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
    numbers = _yyyy_mm_numbers(values)
    if numbers is not None:
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


_YYYY_MM = re.compile(r"(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])")  # (years pandas reads as they are)


def _yyyy_mm_numbers(values: pd.Series) -> np.ndarray | None:
    """Months since year 0 of 'YYYY-MM' text labels, as ``pd.to_datetime`` reads them (the first of the month),
    or None for anything else."""
    if not (pd.api.types.is_string_dtype(values.dtype) or values.dtype == object):
        return None
    try:
        labels, inverse = np.unique(values.to_numpy(dtype=object), return_inverse=True)
    except TypeError:  # labels of mixed types
        return None
    if not len(labels) or not all(isinstance(v, str) and _YYYY_MM.fullmatch(v) for v in labels):
        return None
    numbers = np.array([int(v[:4]) * 12 + int(v[5:]) for v in labels], dtype=float)
    return numbers[inverse.ravel()]


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
    >>> from hotspots.evaluation.synthetic import synthetic_evaluation_data
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

    return _pre_trend(frame, months, family=family, cluster=cluster, level=level)


def _pre_trend(frame: pd.DataFrame, months: np.ndarray, *, family: str, cluster: bool,
               level: float) -> PreTrendCheck:
    """:func:`pre_trend_check` of a validated panel (``_prepare_panel``) and its month numbers."""
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
    y, treated = frame["y"].to_numpy(), frame["treated"].to_numpy()
    if not (y[treated] > 0).any() or not (y[~treated] > 0).any():  # a total of counts >= 0 is 0, or no rows
        return empty("not estimable",
                     "no crimes in the treated or the control areas before the start")

    time = frame["month_number"].to_numpy(float) - frame["month_number"].min()
    fitted = _fit_fixed_effects(frame, frame["treated"].to_numpy(float) * time,
                                family=family, cluster=cluster, wild=False)  # its p_wild is not reported
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
