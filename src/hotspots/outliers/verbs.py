"""The notebook verb of the outliers job: :func:`area_outliers`.

One call from a count table (``count_points`` / ``count_in_areas``) and an area
table to the per-area x crime-type level table: rates, funnel limits with and
without the overdispersion adjustment, flags, harm, and (with a comparison
period) change against the rest of the areas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from hotspots._validate import _check_choice, _check_levels, _Problems
from hotspots.geo.aggregate import Period, resolve_periods
from hotspots.harm import load_harm_weights
from hotspots.months import MONTH_RE
from hotspots.outliers.change_table import CHANGE_SUMMARY, change_summary, change_table
from hotspots.outliers.columns import LEVELS, limit_columns
from hotspots.outliers.context_tables import harm_table
from hotspots.outliers.tables import outlier_table, period_totals

#: columns :func:`area_outliers` needs in ``counts`` and in ``areas``
COUNTS_NEED = ("area_code", "month", "crime_type", "count")
AREAS_NEED = ("area_code", "area_name", "population")

_HARM_COLUMNS = ["harm", "harm_per_1000", "county_harm_per_1000", "harm_ratio"]


def area_outliers(
    counts: pd.DataFrame,
    areas: pd.DataFrame,
    *,
    period: Any = None,
    comparison: Any = None,
    crime_types: Sequence[str] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    adjustment: str = "multiplicative",
    levels: Sequence[float] = LEVELS,
    harm_weights: pd.Series | None = None,
) -> pd.DataFrame:
    """Which areas stand out for which crime types: funnel-plot outliers against the pooled rate.

    Every area's rate per 1,000 residents over ``period`` is compared, crime
    type by crime type, with the rate of all the areas given pooled together
    (the county rate when the areas tile a county), on exact Poisson funnel
    limits widened for overdispersion when the areas differ by more than
    chance (Spiegelhalter 2005).  This is the level table of the CSP outlier
    report (``outliers_district.csv``) for any set of areas.

    Parameters
    ----------
    counts : pandas.DataFrame
        Counts by area x month x crime type: ``area_code, month, crime_type,
        count`` (the table of :func:`hotspots.count_in_areas`; other columns
        are ignored).  Include zero counts or not: missing rows count as 0.
    areas : pandas.DataFrame or geopandas.GeoDataFrame
        One row per area: ``area_code, area_name, population`` (residents,
        > 0, e.g. Census 2021 usual residents).  Areas without counts get 0.
    period : str, sequence of str or Period, optional
        The months analysed: ``"2025-01..2025-12"``, one month ``"2025-06"``,
        a list of ``"YYYY-MM"`` months, or a :class:`hotspots.geo.aggregate.Period`.
        Only months present in ``counts`` are used.  None (default): the
        latest 12 calendar months, labelled by the first and last of them
        with data.
    comparison : str, sequence of str or Period, optional
        A comparison period (same forms as ``period``).  When given, the
        change from ``comparison`` to ``period`` (monthly rates, so lengths may
        differ) is judged against the change in the rest of the areas, and
        the change columns are added.  None (default): no change columns.
    crime_types : sequence of str, optional
        Crime types to analyse (default: every type in ``counts``).
    groups : mapping of str to sequence of str, optional
        Crime-type groups (``{"All crime": [...]}``), analysed as extra rows
        (``is_group`` True) and listed first.
    adjustment : {"multiplicative", "additive"}, default "multiplicative"
        How the funnel is widened when the areas are overdispersed: by
        ``sqrt(phi)`` or by adding ``tau2`` (applied only when the chi-squared
        test finds overdispersion).
    levels : sequence of float, default (0.95, 0.998)
        Funnel levels (about 2 and 3 standard deviations); the limit columns
        are named after them (``lower_95``, ``upper_998_adjusted``, ...).
    harm_weights : pandas.Series, optional
        Harm weight per crime type (:func:`hotspots.harm.load_harm_weights`);
        default the shipped table.  ASB is counted, never weighted.

    Returns
    -------
    pandas.DataFrame
        One row per area x crime type (groups first, then crime types
        alphabetically; areas in the order of ``areas``):

        * ``area_code, area_name, crime_type, is_group, period`` (label),
          ``months`` (number of months with data);
        * ``count, population, rate_per_1000`` (over the period),
          ``rate_ci95_lower, rate_ci95_upper`` (exact Poisson 95% interval);
        * ``county_rate_per_1000`` (all areas pooled), ``expected`` (count at
          the pooled rate), ``ratio`` (count / expected), ``z`` (Poisson z),
          ``p`` (two-sided exact mid-p), ``z_adjusted`` (z allowing for
          overdispersion);
        * the funnel limits on the ratio scale, ``lower_<L>, upper_<L>`` and
          ``lower_<L>_adjusted, upper_<L>_adjusted`` per level;
        * ``flag_unadjusted`` and ``flag`` (Poisson limits alone / allowing for
          overdispersion): ``high_998, high_95, within, low_95, low_998`` for
          the default levels, ``no_records`` when no area has that crime type;
        * ``phi, tau2, overdispersed`` (the chi-squared test), ``adjustment``
          (the method applied, or ``"none"``), ``small_numbers`` (expected
          count below 20), ``rank_in_county`` (1 = highest rate);
        * ``harm, harm_per_1000, county_harm_per_1000, harm_ratio``;
        * with ``comparison``: ``change_count_before, change_count_after,
          pct_change, rest_pct_change, pct_change_vs_rest`` and its 95%
          interval ``pct_change_vs_rest_ci_lower/upper``, ``change_q``
          (Benjamini-Hochberg) and ``change_flag`` (``up_vs_reference``,
          ``down_vs_reference``, ``in_line``, ``not_estimable``).

    Raises
    ------
    ValidationError
        Missing columns, an unknown ``adjustment``, bad ``levels``, a period
        with no months in ``counts``, or an area without residents.

    See Also
    --------
    hotspots.outliers.funnel.funnel_outliers : the same test on plain arrays.
    hotspots.outliers.analyse_outliers : the whole CSP outlier analysis
        (LSOAs, change, concentration, peers) behind ``hotspots run``.

    Notes
    -----
    The expected count of an area is the pooled rate times its population;
    the funnel limits are Spiegelhalter's interpolated exact Poisson limits
    for the ratio O/E.  Large areas nearly always differ from the pooled rate
    by more than Poisson chance, so the limits are widened by the
    overdispersion estimated from winsorised z-scores, and ``flag`` (not
    ``flag_unadjusted``) is the one to read.  An outlier is a prompt to look,
    not a verdict: rates are per resident, so areas that draw visitors
    (town centres) have higher rates than the risk to residents.

    References: Spiegelhalter (2005) "Funnel plots for comparing
    institutional performance", Statistics in Medicine 24:1185-1202;
    Spiegelhalter (2005) "Handling over-dispersion of performance
    indicators", Quality and Safety in Health Care 14:347-351.

    Examples
    --------
    Five areas, one crime type, two months; area E has twice the rate of the
    others:

    >>> import pandas as pd
    >>> areas = pd.DataFrame({"area_code": list("ABCDE"), "area_name": ["Ash", "Birch", "Cedar", "Deal", "Elm"],
    ...                       "population": [10_000, 12_000, 8_000, 11_000, 9_000]})
    >>> counts = pd.DataFrame({"area_code": list("ABCDE") * 2, "month": ["2025-01"] * 5 + ["2025-02"] * 5,
    ...                        "crime_type": "Burglary",
    ...                        "count": [10, 13, 7, 11, 19, 11, 12, 9, 10, 18]})
    >>> table = area_outliers(counts, areas)
    >>> table[["area_name", "count", "rate_per_1000", "ratio", "flag"]].round(2)
      area_name  count  rate_per_1000  ratio      flag
    0       Ash     21           2.10   0.88    within
    1     Birch     25           2.08   0.87    within
    2     Cedar     16           2.00   0.83    within
    3      Deal     21           1.91   0.80    within
    4       Elm     37           4.11   1.71  high_998
    >>> table["period"].iloc[0], float(table["county_rate_per_1000"].iloc[0])
    ('2025-01..2025-02', 2.4)
    """
    problems = _Problems("area_outliers")
    for name, frame, needed in (("counts", counts, COUNTS_NEED), ("areas", areas, AREAS_NEED)):
        if not isinstance(frame, pd.DataFrame):
            problems.add(f"{name} must be a pandas DataFrame; got {type(frame).__name__}",
                         "Pass counts from hotspots.count_in_areas and an area table with population.")
            continue
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            problems.add(f"{name} lacks column(s) {missing}; it has {list(frame.columns)[:12]}",
                         f"{name} needs the columns {list(needed)}.")
    _check_choice(problems, "adjustment", adjustment, ("multiplicative", "additive"))
    levels = _check_levels(problems, "levels", levels)
    problems.raise_if_any()

    present = sorted(set(counts["month"].astype(str)))
    if not present:
        problems.add("counts has no rows", "Count some points first (hotspots.count_in_areas).")
        problems.raise_if_any()
    if period is None:
        latest = resolve_periods(present).current.months
        current = Period(latest[0] if len(latest) == 1 else f"{latest[0]}..{latest[-1]}", tuple(latest))
    else:
        current = _as_period(problems, "period", period, present)
    before = None if comparison is None else _as_period(problems, "comparison", comparison, present)
    problems.raise_if_any()

    groups = {str(k): list(v) for k, v in (groups or {}).items()}
    types = sorted(set(counts["crime_type"])) if crime_types is None else sorted(crime_types)
    weights = load_harm_weights() if harm_weights is None else harm_weights
    totals = period_totals(counts, current.months, groups=groups, crime_types=types)
    table = outlier_table(totals, areas, levels=levels, adjustment=adjustment)
    table = table.merge(harm_table(totals, areas, groups=groups, weights=weights),
                        on=["area_code", "crime_type"], how="left")
    change: list[str] = []
    if before is not None:
        change_rows = change_table(period_totals(counts, before.months, groups=groups, crime_types=types),
                                   totals, areas, before_period=before, after_period=current,
                                   reference_label="rest of the areas")
        table = table.merge(change_summary(change_rows), on=["area_code", "crime_type"], how="left")
        change = list(CHANGE_SUMMARY.values())
    table["period"] = current.label
    table["months"] = len(current.months)
    columns = ["area_code", "area_name", "crime_type", "is_group", "period", "months", "count", "population",
               "rate_per_1000", "rate_ci95_lower", "rate_ci95_upper", "county_rate_per_1000", "expected", "ratio",
               "z", "p", "z_adjusted", *limit_columns(levels), "flag_unadjusted", "flag", "phi", "tau2",
               "overdispersed", "adjustment", "small_numbers", "rank_in_county", *_HARM_COLUMNS, *change]
    return table[columns].reset_index(drop=True)


def _as_period(problems: _Problems, name: str, value: Any, present: Sequence[str]) -> Period | None:
    """A period argument as a :class:`Period` of the months present, or None (and a recorded problem)."""
    if isinstance(value, Period):
        months = [m for m in value.months if m in set(present)]
        label = value.label
    else:
        if isinstance(value, str):
            first, _, last = value.partition("..")
            bounds = [first.strip(), (last or first).strip()]
            wanted = None
        else:
            try:
                wanted = sorted({str(m) for m in value})
            except TypeError:
                wanted = []
            bounds = wanted[:1] + wanted[-1:]
        if not bounds or not all(MONTH_RE.match(b) for b in bounds) or \
                (wanted is not None and not all(MONTH_RE.match(m) for m in wanted)) or bounds[0] > bounds[-1]:
            problems.add(f"{name} must be 'YYYY-MM..YYYY-MM', 'YYYY-MM' or a list of 'YYYY-MM' months; got {value!r}",
                         f"For example {name}='2025-01..2025-12'.")
            return None
        label = bounds[0] if bounds[0] == bounds[-1] else f"{bounds[0]}..{bounds[-1]}"
        if wanted is None:
            months = list(Period.from_range(bounds[0], bounds[-1], present).months)
        else:
            months = [m for m in wanted if m in set(present)]
    if not months:
        problems.add(f"{name} {label} has no months with data in counts (months present: "
                     f"{present[0]}..{present[-1]})", f"Choose {name} within the months present.")
        return None
    return Period(label, tuple(months))

