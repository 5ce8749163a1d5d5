"""CSP outliers: where each Community Safety Partnership, and each LSOA in it, stands out.

The Police & Crime Plan asks for "a data analysis project to identify crime
data outliers across districts/boroughs to support and inform CSP strategies
and priorities".  This module does the analysis; :mod:`hotspots.report_outliers`
renders it.  For one analysis period (default: the latest 12 months) and every
crime type and crime-type group:

* **level** (:func:`outlier_table`): count, rate per 1,000 residents (Census
  2021 usual residents), expected count at the county rate, ratio O/E, Poisson
  z, exact funnel-plot limits at 95% and 99.8% with and without the
  overdispersion adjustment, and the flags from both (all from
  :func:`hotspots.area_outliers`, Spiegelhalter 2005);
* **change** (:func:`change_table`): the seasonally matched months of the
  comparison period against the same months of the analysis period, as a
  rate ratio with an exact test and 95% interval, and as a ratio of ratios
  against the rest of the county (for an LSOA: the rest of its CSP), which
  shares force-wide recording changes;
* **harm** (:func:`harm_table`): harm-weighted rates (:mod:`hotspots.harm`;
  ASB is counted, never weighted);
* **concentration** (:func:`concentration_table`): share of each CSP's crime in
  its top 5% and 10% of LSOAs, Gini and chance-corrected Gini;
* **peers** (:func:`peer_comparison`): rate relative to the mean rate of a
  user-supplied most-similar group.

Functions take count tables (:data:`hotspots.schema.COUNT_COLUMNS`) and area
tables (:data:`hotspots.schema.AREA_COLUMNS`) and return DataFrames whose
columns are listed in the ``*_COLUMNS`` constants below and in the README
("CSP outlier report").  :func:`stage_outliers` is the pipeline stage: it runs
everything for a prepared :class:`hotspots.pipeline.Context` and writes the
tables and the HTML report under ``outliers/``.

The statistics themselves live in :mod:`hotspots.stats`; this module only
arranges counts for them and joins the results.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from hotspots.outliers.funnel import area_outliers, exact_poisson_interval, funnel_limits
from hotspots.outliers.change import change_vs_reference, rate_ratio_test
from hotspots.outliers.concentration import concentration, gini_poisson_adjusted
from hotspots.fdr import fdr_bh
from hotspots._validate import level_label
from hotspots._errors import ConfigError, InputFileError, ValidationError
from hotspots.geo.aggregate import Period, add_groups
from hotspots.months import month_range
from hotspots.harm import load_harm_weights
from hotspots.schema import ASB

#: Funnel-plot levels (two-sided): about 2 and 3 standard deviations.
LEVELS = (0.95, 0.998)
#: Below this expected count a rate moves a lot by chance: flagged as small numbers.
SMALL_EXPECTED = 20.0
#: Concentration: share of crime in the top 5% and 10% of LSOAs.
TOP_SHARES = (0.05, 0.10)
#: Random allocations behind the chance-corrected Gini (seeded, reproducible).
GINI_SIMULATIONS = 50
GINI_SEED = 12345
#: Confidence level of change intervals and of the change flag.
CHANGE_LEVEL = 0.95

FLAG_NO_RECORDS = "no_records"

_LIMIT_COLUMNS = [
    "lower_95", "upper_95", "lower_998", "upper_998",
    "lower_95_adjusted", "upper_95_adjusted", "lower_998_adjusted", "upper_998_adjusted",
]

#: ``outliers_district.csv``: one row per CSP x crime type (categories and groups).
DISTRICT_COLUMNS = [
    "area_type", "area_code", "area_name", "district_code", "crime_type", "is_group", "period", "months",
    "count", "population", "rate_per_1000", "rate_ci95_lower", "rate_ci95_upper", "county_rate_per_1000",
    "expected", "ratio", "z", "p", "z_adjusted", *_LIMIT_COLUMNS, "flag_unadjusted", "flag",
    "phi", "tau2", "overdispersed", "adjustment", "small_numbers", "rank_in_county",
    "harm", "harm_per_1000", "county_harm_per_1000", "harm_ratio",
    "change_count_before", "change_count_after", "pct_change", "rest_pct_change", "pct_change_vs_rest",
    "pct_change_vs_rest_ci_lower", "pct_change_vs_rest_ci_upper", "change_q", "change_flag",
    "peer_group", "n_peers", "peer_codes", "peer_mean_rate_per_1000", "ratio_to_peer_mean",
]

#: ``outliers_lsoa.csv``: one row per LSOA x crime type, compared with the county rate.
LSOA_COLUMNS = [
    "area_type", "area_code", "area_name", "csp_code", "csp_name", "district_code", "crime_type", "is_group",
    "period", "months", "count", "population", "rate_per_1000", "rate_ci95_lower", "rate_ci95_upper",
    "county_rate_per_1000", "expected", "ratio", "z", "p", "z_adjusted", *_LIMIT_COLUMNS, "flag_unadjusted",
    "flag", "phi", "tau2", "overdispersed", "adjustment", "small_numbers", "share_of_csp", "rank_in_csp",
]

#: ``outliers_change.csv``: one row per area (CSP or LSOA) x crime type.
CHANGE_COLUMNS = [
    "area_type", "area_code", "area_name", "parent_code", "parent_name", "crime_type", "is_group",
    "before_period", "before_months", "after_period", "after_months", "count_before", "count_after",
    "population", "rate_before_per_1000", "rate_after_per_1000", "rate_ratio", "rate_ratio_ci_lower",
    "rate_ratio_ci_upper", "rate_ratio_p", "pct_change", "reference", "ref_count_before", "ref_count_after",
    "ref_pct_change", "parent_pct_change", "ratio_of_ratios", "ratio_of_ratios_ci_lower",
    "ratio_of_ratios_ci_upper", "pct_change_vs_reference", "pct_change_vs_reference_ci_lower",
    "pct_change_vs_reference_ci_upper", "p_vs_reference", "q_vs_reference", "change_flag", "reason",
]

#: ``concentration.csv``: one row per CSP (and the whole county) x crime type.
CONCENTRATION_COLUMNS = [
    "area_type", "area_code", "area_name", "crime_type", "is_group", "period", "n_lsoas", "count",
    "lsoas_top5", "count_top5", "share_top5", "lsoas_top10", "count_top10", "share_top10",
    "gini", "gini_random_mean", "gini_adjusted",
]

#: Per crime type and area level: the overdispersion estimate behind the adjusted limits.
OVERDISPERSION_COLUMNS = [
    "area_type", "crime_type", "is_group", "n", "phi", "tau2", "statistic", "df", "critical_value", "p_value",
    "overdispersed", "applied", "adjustment", "county_rate_per_1000",
]

#: Funnel curves for the plots: rate-scale limits against population.
FUNNEL_COLUMNS = [
    "crime_type", "population", "expected", "county_rate_per_1000",
    "rate_lower_95", "rate_upper_95", "rate_lower_998", "rate_upper_998",
    "rate_lower_95_adjusted", "rate_upper_95_adjusted", "rate_lower_998_adjusted", "rate_upper_998_adjusted",
]

#: Monthly series for the trend charts (missing months kept, with NaN counts).
MONTHLY_COLUMNS = ["area_code", "area_name", "month", "crime_type", "count", "population", "rate_per_1000", "present"]


# =============================================================================
# Counts over a period
# =============================================================================


def crime_type_order(crime_types: Sequence[str], groups: Mapping[str, Sequence[str]]) -> list[str]:
    """Groups first (in config order), then the police.uk categories alphabetically.

    >>> crime_type_order(["Robbery", "Burglary"], {"All crime": ["Burglary", "Robbery"]})
    ['All crime', 'Burglary', 'Robbery']
    """
    return list(groups) + sorted(t for t in set(crime_types) if t not in groups)


def period_totals(
    counts: pd.DataFrame,
    months: Sequence[str],
    *,
    groups: Mapping[str, Sequence[str]] | None = None,
    crime_types: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Counts summed over ``months``, one row per area x crime type, groups appended.

    Parameters
    ----------
    counts
        Long counts (:data:`hotspots.schema.COUNT_COLUMNS`), zeros included.
    months
        Months of the period ("YYYY-MM").
    groups
        Crime-type groups (``settings.crime_groups``); each becomes extra rows.
    crime_types
        Categories to keep (default: all in ``counts``).

    Returns
    -------
    pandas.DataFrame
        ``area_code, crime_type, is_group, count`` (int).  Every area x type
        present in ``counts`` appears, with 0 when nothing was recorded.
    """
    groups = dict(groups or {})
    sub = counts[counts["month"].isin(list(months))]
    types = sorted(crime_types) if crime_types is not None else sorted(counts["crime_type"].unique())
    sub = sub[sub["crime_type"].isin(types)]
    areas = sorted(counts["area_code"].unique())
    full = pd.MultiIndex.from_product([areas, types], names=["area_code", "crime_type"])
    by_type = sub.groupby(["area_code", "crime_type"])["count"].sum().reindex(full, fill_value=0).reset_index()
    with_groups = add_groups(by_type, {k: [m for m in v if m in types] for k, v in groups.items()})
    # a group none of whose members is present still gets zero rows
    with_groups = (with_groups.groupby(["area_code", "crime_type"], sort=False)["count"].sum()
                   .reindex(pd.MultiIndex.from_product([areas, crime_type_order(types, groups)],
                                                       names=["area_code", "crime_type"]), fill_value=0)
                   .reset_index())
    with_groups["is_group"] = with_groups["crime_type"].isin(list(groups))
    with_groups["count"] = with_groups["count"].astype(np.int64)
    return with_groups[["area_code", "crime_type", "is_group", "count"]]


# =============================================================================
# Level: funnel-plot outliers
# =============================================================================


def _area_info(areas: pd.DataFrame) -> pd.DataFrame:
    info = pd.DataFrame(areas[["area_code", "area_name", "population"]]).copy()
    info["population"] = pd.to_numeric(info["population"], errors="coerce").astype(float)
    bad = info[~(info["population"] > 0)]
    if len(bad):
        listed = ", ".join(f"{c} ({p})" for c, p in zip(bad["area_code"].head(5), bad["population"].head(5)))
        raise ValidationError(
            f"{len(bad)} area(s) have no resident population: {listed}",
            hint="rates per 1,000 residents need Census 2021 population for every area; check the population file",
        )
    if info["area_code"].duplicated().any():
        raise ValidationError("area codes repeat in the area table", hint="pass one row per area")
    return info.set_index("area_code")


def outlier_table(
    totals: pd.DataFrame,
    areas: pd.DataFrame,
    *,
    levels: Sequence[float] = LEVELS,
    adjustment: str = "multiplicative",
    small_expected: float = SMALL_EXPECTED,
) -> pd.DataFrame:
    """Funnel-plot outliers of every area for every crime type, against the pooled (county) rate.

    Parameters
    ----------
    totals
        ``area_code, crime_type, is_group, count`` from :func:`period_totals`.
    areas
        ``area_code, area_name, population`` (> 0 for every area).
    levels
        Funnel levels (default 95% and 99.8%; the column names assume these).
    adjustment
        ``"multiplicative"`` (phi) or ``"additive"`` (tau2), see
        :func:`hotspots.area_outliers`; applied only when the chi-squared
        test finds the areas overdispersed.
    small_expected
        Rows with an expected count below this get ``small_numbers = True``.

    Returns
    -------
    pandas.DataFrame
        One row per area x crime type: ``area_code, area_name, crime_type,
        is_group, count, population, rate_per_1000, rate_ci95_lower,
        rate_ci95_upper`` (exact Poisson 95% interval of the rate),
        ``county_rate_per_1000, expected, ratio, z, p, z_adjusted``, the ratio-
        scale limits ``lower_95 ... upper_998_adjusted``, ``flag_unadjusted,
        flag`` (``high_998, high_95, within, low_95, low_998``, or
        ``no_records`` when the county has none of that type), ``phi, tau2,
        overdispersed`` (the chi-squared test), ``adjustment`` (the method
        applied, or ``"none"``), ``small_numbers``, ``rank_in_county`` (1 =
        highest rate).  The reference rate is pooled over the areas given, so
        with areas that tile the county it is the county rate.
    """
    info = _area_info(areas)
    codes = list(info.index)
    population = info["population"].to_numpy()
    frames = []
    estimates: dict[str, dict[str, Any]] = {}
    for crime_type, sub in totals.groupby("crime_type", sort=False):
        observed = sub.set_index("area_code")["count"].reindex(codes, fill_value=0).to_numpy(dtype=float)
        is_group = bool(sub["is_group"].iloc[0])
        if observed.sum() == 0:
            frame = pd.DataFrame({"area_code": codes, "count": observed, "population": population,
                                  "rate_per_1000": 0.0, "county_rate_per_1000": 0.0, "expected": 0.0})
            for column in ("ratio", "z", "p", "z_adjusted", *_LIMIT_COLUMNS, "phi", "tau2"):
                frame[column] = np.nan
            frame["flag_unadjusted"] = FLAG_NO_RECORDS
            frame["flag"] = FLAG_NO_RECORDS
            frame["overdispersed"] = False
            frame["adjustment"] = "none"
        else:
            res = area_outliers(observed, population, names=codes, levels=levels, adjustment=adjustment)
            od = res.attrs["overdispersion"]
            frame = res.reset_index(drop=True).rename(columns={"area": "area_code", "observed": "count"})
            frame["flag_unadjusted"] = frame["flag_unadjusted"].astype(str)
            frame["flag"] = frame["flag"].astype(str)
            frame["county_rate_per_1000"] = res.attrs["reference_rate_per_1000"]
            frame["phi"] = od["phi"]
            frame["tau2"] = od["tau2"]
            frame["overdispersed"] = bool(od["overdispersed"])
            frame["adjustment"] = od["adjustment"] if od["applied"] else "none"
            estimates[crime_type] = {**od, "is_group": is_group,
                                     "county_rate_per_1000": res.attrs["reference_rate_per_1000"]}
        frame["crime_type"] = crime_type
        frame["is_group"] = is_group
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    out["area_name"] = out["area_code"].map(info["area_name"])
    lower, upper = exact_poisson_interval(out["count"].to_numpy(), level=0.95)
    out["rate_ci95_lower"] = 1000.0 * lower / out["population"]
    out["rate_ci95_upper"] = 1000.0 * upper / out["population"]
    out["count"] = out["count"].astype(np.int64)
    out["small_numbers"] = out["expected"] < small_expected
    out["rank_in_county"] = (out.groupby("crime_type", sort=False)["rate_per_1000"]
                             .rank(ascending=False, method="min").astype(np.int64))
    columns = ["area_code", "area_name", "crime_type", "is_group", "count", "population", "rate_per_1000",
               "rate_ci95_lower", "rate_ci95_upper", "county_rate_per_1000", "expected", "ratio", "z", "p",
               "z_adjusted", *_LIMIT_COLUMNS, "flag_unadjusted", "flag", "phi", "tau2", "overdispersed",
               "adjustment", "small_numbers", "rank_in_county"]
    out = out[columns]
    out.attrs["overdispersion"] = estimates
    return out


def overdispersion_summary(table: pd.DataFrame, *, area_type: str) -> pd.DataFrame:
    """The overdispersion estimate per crime type (what widened the limits, and why).

    Parameters
    ----------
    table
        A fresh :func:`outlier_table` (it carries the estimates in
        ``attrs["overdispersion"]``).
    area_type
        Label for the ``area_type`` column.

    Returns
    -------
    pandas.DataFrame
        :data:`OVERDISPERSION_COLUMNS`: ``n`` areas, ``phi`` (mean squared
        winsorised z), ``tau2`` (DerSimonian-Laird, ratio scale), the
        chi-squared ``statistic = n * phi`` on ``df = n - 1`` with its
        ``critical_value`` and ``p_value``, ``overdispersed`` (statistic >
        critical value), ``applied`` and ``adjustment``, and the county rate.
        Crime types with no records are left out.
    """
    records = table.attrs.get("overdispersion", {})
    rows = []
    for crime_type, od in records.items():
        rows.append({
            "area_type": area_type, "crime_type": crime_type, "is_group": od["is_group"],
            "n": od["n"], "phi": od["phi"], "tau2": od["tau2"], "statistic": od["statistic"], "df": od["df"],
            "critical_value": od["critical_value"], "p_value": od["p_value"], "overdispersed": od["overdispersed"],
            "applied": od["applied"], "adjustment": od["adjustment"] or "none",
            "county_rate_per_1000": od["county_rate_per_1000"],
        })
    return pd.DataFrame(rows, columns=OVERDISPERSION_COLUMNS)


def funnel_curves(
    table: pd.DataFrame,
    *,
    levels: Sequence[float] = LEVELS,
    n_points: int = 120,
    population_range: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Funnel limits on the rate scale over a range of populations, per crime type (for plots).

    Uses each crime type's county rate and the adjustment recorded in ``table``
    (an :func:`outlier_table`): ``rate limit = ratio limit x county rate per
    1,000`` with ratio limits from :func:`hotspots.funnel_limits` at
    ``expected = county rate x population``.  Population runs geometrically
    from 0.8 x the smallest to 1.25 x the largest area (or
    ``population_range``).  Columns :data:`FUNNEL_COLUMNS`.
    """
    if population_range is None:
        population_range = (0.8 * float(table["population"].min()), 1.25 * float(table["population"].max()))
    grid = np.geomspace(max(population_range[0], 1.0), population_range[1], n_points)
    frames = []
    for crime_type, sub in table.groupby("crime_type", sort=False):
        first = sub.iloc[0]
        rate_1000 = float(first["county_rate_per_1000"])
        if not rate_1000 > 0:
            continue
        expected = rate_1000 / 1000.0 * grid
        plain = funnel_limits(expected, levels=levels)
        if first["adjustment"] == "multiplicative":
            adjusted = funnel_limits(expected, levels=levels, adjustment="multiplicative", phi=float(first["phi"]))
        elif first["adjustment"] == "additive":
            adjusted = funnel_limits(expected, levels=levels, adjustment="additive", tau2=float(first["tau2"]))
        else:
            adjusted = plain
        frame = pd.DataFrame({"crime_type": crime_type, "population": grid, "expected": expected,
                              "county_rate_per_1000": rate_1000})
        for level in levels:
            label = level_label(level)
            for side in ("lower", "upper"):
                frame[f"rate_{side}_{label}"] = plain[f"{side}_{label}"].to_numpy() * rate_1000
                frame[f"rate_{side}_{label}_adjusted"] = adjusted[f"{side}_{label}"].to_numpy() * rate_1000
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=FUNNEL_COLUMNS)
    return pd.concat(frames, ignore_index=True)[FUNNEL_COLUMNS]


# =============================================================================
# Change against the comparison period
# =============================================================================


def change_table(
    before: pd.DataFrame,
    after: pd.DataFrame,
    areas: pd.DataFrame,
    *,
    before_period: Period,
    after_period: Period,
    parent: pd.Series | None = None,
    parent_names: Mapping[str, str] | None = None,
    reference_label: str = "rest of the county",
    level: float = CHANGE_LEVEL,
) -> pd.DataFrame:
    """Change between two periods per area and crime type, judged against the rest of the parent area.

    Parameters
    ----------
    before, after
        :func:`period_totals` for the comparison period and for the matched
        months of the analysis period.
    areas
        ``area_code, area_name, population``.
    before_period, after_period
        The two periods (for their labels and month counts).
    parent
        area_code -> parent code (an LSOA's CSP).  None: one parent, the
        whole set of areas (the county).
    parent_names
        Parent code -> name, for the ``parent_name`` column.
    reference_label
        What the reference is called in the ``reference`` column.
    level
        Confidence level of the intervals and of the flag.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CHANGE_COLUMNS` (``area_type`` left empty for the caller):

        * ``rate_ratio`` = (after / (population x after months)) /
          (before / (population x before months)), with the Wald interval on the
          log scale and the exact conditional p (:func:`hotspots.rate_ratio_test`);
          ``pct_change`` = 100 (rate_ratio - 1);
        * ``ref_count_before/after``: the parent's total minus the area (the
          rest of the county, or of the CSP); ``ref_pct_change`` and
          ``parent_pct_change`` (the whole parent, area included) per month;
        * ``ratio_of_ratios`` = area change / reference change, its interval,
          ``p_vs_reference`` (:func:`hotspots.change_vs_reference`) and
          ``q_vs_reference`` (Benjamini-Hochberg over every row with a p);
        * ``change_flag``: ``up_vs_reference`` when the interval of the ratio of
          ratios lies above 1, ``down_vs_reference`` below 1, ``in_line``
          otherwise, ``not_estimable`` when a count is 0.
    """
    info = _area_info(areas)
    codes = list(info.index)
    key = ["area_code", "crime_type"]
    b = before.set_index(key)["count"].rename("count_before")
    a = after.set_index(key)["count"].rename("count_after")
    table = pd.concat([b, a], axis=1).fillna(0).reset_index()
    table = table[table["area_code"].isin(codes)]
    groups = pd.concat([before, after])[["crime_type", "is_group"]].drop_duplicates("crime_type").set_index("crime_type")
    table["is_group"] = table["crime_type"].map(groups["is_group"]).astype(bool)
    table["population"] = table["area_code"].map(info["population"])
    if parent is None:
        table["parent_code"] = ""
    else:
        table["parent_code"] = table["area_code"].map(parent).fillna("")
    parent_totals = table.groupby(["parent_code", "crime_type"])[["count_before", "count_after"]].transform("sum")
    table["ref_count_before"] = parent_totals["count_before"] - table["count_before"]
    table["ref_count_after"] = parent_totals["count_after"] - table["count_after"]
    months_before, months_after = len(before_period.months), len(after_period.months)
    rr = rate_ratio_test(table["count_after"].to_numpy(), table["population"].to_numpy() * months_after,
                               table["count_before"].to_numpy(), table["population"].to_numpy() * months_before,
                               level=level)
    cv = change_vs_reference(table["count_before"].to_numpy(), table["count_after"].to_numpy(),
                                   table["ref_count_before"].to_numpy(), table["ref_count_after"].to_numpy(),
                                   level=level)
    names_of_parents = dict(parent_names or {})
    per_month = months_before / months_after
    with np.errstate(divide="ignore", invalid="ignore"):
        ref_change = table["ref_count_after"].to_numpy() / table["ref_count_before"].to_numpy() * per_month
        parent_change = (parent_totals["count_after"].to_numpy() / parent_totals["count_before"].to_numpy()) * per_month
    out = pd.DataFrame({
        "area_type": "",
        "area_code": table["area_code"].to_numpy(),
        "area_name": table["area_code"].map(info["area_name"]).to_numpy(),
        "parent_code": table["parent_code"].to_numpy(),
        "parent_name": table["parent_code"].map(lambda code: names_of_parents.get(code, "")).to_numpy(),
        "crime_type": table["crime_type"].to_numpy(),
        "is_group": table["is_group"].to_numpy(),
        "before_period": before_period.label,
        "before_months": months_before,
        "after_period": after_period.label,
        "after_months": months_after,
        "count_before": table["count_before"].astype(np.int64).to_numpy(),
        "count_after": table["count_after"].astype(np.int64).to_numpy(),
        "population": table["population"].to_numpy(),
        "rate_before_per_1000": 1000.0 * table["count_before"].to_numpy() / table["population"].to_numpy(),
        "rate_after_per_1000": 1000.0 * table["count_after"].to_numpy() / table["population"].to_numpy(),
        "rate_ratio": rr["rate_ratio"].to_numpy(),
        "rate_ratio_ci_lower": rr["ci_lower"].to_numpy(),
        "rate_ratio_ci_upper": rr["ci_upper"].to_numpy(),
        "rate_ratio_p": rr["p"].to_numpy(),
        "pct_change": 100.0 * (rr["rate_ratio"].to_numpy() - 1.0),
        "reference": reference_label,
        "ref_count_before": table["ref_count_before"].astype(np.int64).to_numpy(),
        "ref_count_after": table["ref_count_after"].astype(np.int64).to_numpy(),
        "ref_pct_change": 100.0 * (ref_change - 1.0),
        "parent_pct_change": 100.0 * (parent_change - 1.0),
        "ratio_of_ratios": cv["ratio_of_ratios"].to_numpy(),
        "ratio_of_ratios_ci_lower": cv["ci_lower"].to_numpy(),
        "ratio_of_ratios_ci_upper": cv["ci_upper"].to_numpy(),
        "pct_change_vs_reference": cv["pct_change_vs_reference"].to_numpy(),
        "pct_change_vs_reference_ci_lower": cv["pct_ci_lower"].to_numpy(),
        "pct_change_vs_reference_ci_upper": cv["pct_ci_upper"].to_numpy(),
        "p_vs_reference": cv["p"].to_numpy(),
        "q_vs_reference": fdr_bh(cv["p"].to_numpy()),
        "reason": cv["reason"].to_numpy(),
    })
    lo, hi = out["ratio_of_ratios_ci_lower"], out["ratio_of_ratios_ci_upper"]
    out["change_flag"] = np.select([out["ratio_of_ratios"].isna(), lo > 1, hi < 1],
                                   ["not_estimable", "up_vs_reference", "down_vs_reference"], "in_line")
    both_zero = (out["count_before"] == 0) & (out["count_after"] == 0)
    out.loc[both_zero & (out["reason"] == ""), "reason"] = "no records in either period"
    return out[CHANGE_COLUMNS].reset_index(drop=True)


# =============================================================================
# Harm
# =============================================================================


def harm_table(
    totals: pd.DataFrame,
    areas: pd.DataFrame,
    *,
    groups: Mapping[str, Sequence[str]] | None = None,
    weights: pd.Series | None = None,
) -> pd.DataFrame:
    """Harm-weighted counts and rates per area and crime type (ASB counted, never weighted).

    Parameters
    ----------
    totals
        :func:`period_totals` (categories and groups).
    areas
        ``area_code, population``.
    groups
        Crime-type groups: a group's harm is the sum of its members' harm
        (members without a weight, such as ASB, add nothing).
    weights
        Harm weight per category (:func:`hotspots.harm.load_harm_weights`).

    Returns
    -------
    pandas.DataFrame
        ``area_code, crime_type, harm`` (count x weight, summed over a group's
        members), ``harm_per_1000`` (harm per 1,000 residents),
        ``county_harm_per_1000`` (all areas pooled), ``harm_ratio``
        (harm_per_1000 / county_harm_per_1000; for a single category it equals
        the count ratio, since the weight cancels).  NaN where no member has a
        weight (ASB).  ``attrs["unweighted"]``: crime types without a weight.
    """
    weights = load_harm_weights() if weights is None else weights
    groups = dict(groups or {})
    info = _area_info(areas)
    types = totals[~totals["is_group"]]
    weight = types["crime_type"].map(weights).astype(float)
    harm_types = types.assign(harm=types["count"].to_numpy() * weight.to_numpy())[["area_code", "crime_type", "harm"]]
    frames = [harm_types]
    for name, members in groups.items():
        sub = harm_types[harm_types["crime_type"].isin(list(members))]
        g = sub.groupby("area_code")["harm"].sum(min_count=1).reindex(info.index).rename("harm").reset_index()
        g["crime_type"] = name
        frames.append(g[["area_code", "crime_type", "harm"]])
    out = pd.concat(frames, ignore_index=True)
    out["population"] = out["area_code"].map(info["population"])
    out["harm_per_1000"] = 1000.0 * out["harm"] / out["population"]
    county = out.groupby("crime_type", sort=False).agg(harm=("harm", lambda s: s.sum(min_count=1)),
                                                       population=("population", "sum"))
    county_rate = 1000.0 * county["harm"] / county["population"]
    out["county_harm_per_1000"] = out["crime_type"].map(county_rate)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["harm_ratio"] = np.where(out["county_harm_per_1000"] > 0,
                                     out["harm_per_1000"] / out["county_harm_per_1000"], np.nan)
    out.attrs["unweighted"] = sorted(set(types.loc[weight.isna().to_numpy(), "crime_type"]))
    return out[["area_code", "crime_type", "harm", "harm_per_1000", "county_harm_per_1000", "harm_ratio"]]


# =============================================================================
# Concentration
# =============================================================================


def _share_label(share: float) -> str:
    return f"top{share * 100:g}".replace(".", "_")


def concentration_table(
    lsoa_totals: pd.DataFrame,
    lsoa_parent: pd.Series,
    parent_names: Mapping[str, str],
    *,
    top_shares: Sequence[float] = TOP_SHARES,
    county: tuple[str, str] | None = None,
    simulations: int = GINI_SIMULATIONS,
    seed: int = GINI_SEED,
) -> pd.DataFrame:
    """How concentrated each CSP's crime is in its busiest LSOAs.

    Parameters
    ----------
    lsoa_totals
        :func:`period_totals` of LSOAs (zeros included: quiet LSOAs are part of
        the denominator).
    lsoa_parent
        LSOA code -> CSP code.
    parent_names
        CSP code -> name.
    top_shares
        Fractions of LSOAs (default the top 5% and 10%).
    county
        ``(code, name)``: add a row for all LSOAs together.
    simulations, seed
        For the chance-corrected Gini (:func:`hotspots.gini_poisson_adjusted`).

    Returns
    -------
    pandas.DataFrame
        ``area_type`` (csp, or force for the county row), ``area_code,
        area_name, crime_type, is_group, n_lsoas, count`` (LSOA-based total),
        per share ``lsoas_topN`` (ceil(N% x n_lsoas)), ``count_topN``,
        ``share_topN`` (:func:`hotspots.concentration`), then ``gini``,
        ``gini_random_mean`` (the Gini of the same number of crimes spread at
        random) and ``gini_adjusted`` ((gini - random) / (1 - random)).
    """
    data = lsoa_totals.assign(parent=lsoa_totals["area_code"].map(lsoa_parent))
    data = data[data["parent"].notna()]
    units: list[tuple[str, str, str, pd.DataFrame]] = [
        ("csp", code, parent_names.get(code, code), sub) for code, sub in data.groupby("parent", sort=True)
    ]
    if county is not None:
        units.append(("force", county[0], county[1], data))
    rows = []
    for area_type, code, name, sub in units:
        for crime_type, part in sub.groupby("crime_type", sort=False):
            values = part["count"].to_numpy(dtype=float)
            row: dict[str, Any] = {"area_type": area_type, "area_code": code, "area_name": name,
                                   "crime_type": crime_type, "is_group": bool(part["is_group"].iloc[0]),
                                   "n_lsoas": int(values.size), "count": int(values.sum())}
            conc = concentration(values, top_shares=tuple(top_shares))
            for share, rec in zip(top_shares, conc.itertuples(index=False)):
                label = _share_label(share)
                row[f"lsoas_{label}"] = int(rec.units_in_top)
                row[f"count_{label}"] = int(rec.count_in_top)
                row[f"share_{label}"] = float(rec.share_of_total)
            gb = gini_poisson_adjusted(values.astype(np.int64), simulations=simulations, seed=seed)
            row.update(gini=gb.gini, gini_random_mean=gb.gini_random_mean, gini_adjusted=gb.gini_adjusted)
            rows.append(row)
    out = pd.DataFrame(rows)
    share_cols = [c for s in top_shares for c in (f"lsoas_{_share_label(s)}", f"count_{_share_label(s)}",
                                                   f"share_{_share_label(s)}")]
    return out[["area_type", "area_code", "area_name", "crime_type", "is_group", "n_lsoas", "count", *share_cols,
                "gini", "gini_random_mean", "gini_adjusted"]]


# =============================================================================
# Peer (most-similar-group) comparison
# =============================================================================


def read_peer_groups(path: str | Path, *, aliases: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Read a most-similar-group table: ``area_code, peer_group`` or ``area_code, peer_code``.

    The Home Office most-similar groups are not open data, so the user
    supplies them.  ``area_code, peer_group``: areas sharing a group are each
    other's peers.  ``area_code, peer_code``: one row per (area, peer) pair.

    Parameters
    ----------
    path
        CSV file.
    aliases
        Code -> code used in the analysis (district codes E07... -> CSP codes
        E22... in Hertfordshire, where each district is a CSP).

    Returns
    -------
    pandas.DataFrame
        ``area_code, peer_code, peer_group`` (one row per pair; ``peer_group``
        empty for the pair format).
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"peer-group table not found: {path}",
                             hint="set [outliers] peer_groups in the config to a CSV with area_code,peer_group "
                                  "or area_code,peer_code (or leave it empty)")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises many types for a bad CSV
        raise InputFileError(f"{path}: cannot read the peer-group table ({exc})",
                             hint="a CSV with columns area_code,peer_group or area_code,peer_code") from exc
    table.columns = [str(c).strip().lower() for c in table.columns]
    if "area_code" not in table.columns or not ({"peer_group", "peer_code"} & set(table.columns)):
        raise InputFileError(f"{path}: expected columns area_code and peer_group (or peer_code); "
                             f"got {list(table.columns)}",
                             hint="area_code,peer_group: one row per area; area_code,peer_code: one row per pair")
    alias = dict(aliases or {})
    table = table.assign(area_code=table["area_code"].str.strip().map(lambda c: alias.get(c, c)))
    table = table[table["area_code"] != ""]
    if "peer_code" in table.columns:
        pairs = table.assign(peer_code=table["peer_code"].str.strip().map(lambda c: alias.get(c, c)), peer_group="")
        pairs = pairs[(pairs["peer_code"] != "") & (pairs["peer_code"] != pairs["area_code"])]
    else:
        members = table.assign(peer_group=table["peer_group"].str.strip())
        members = members[members["peer_group"] != ""]
        pairs = members.merge(members, on="peer_group", suffixes=("", "_peer"))
        pairs = pairs.rename(columns={"area_code_peer": "peer_code"})
        pairs = pairs[pairs["peer_code"] != pairs["area_code"]]
    return pairs[["area_code", "peer_code", "peer_group"]].drop_duplicates().reset_index(drop=True)


def peer_comparison(table: pd.DataFrame, peers: pd.DataFrame | None) -> pd.DataFrame:
    """Rate relative to the peer-group mean, per area and crime type.

    Parameters
    ----------
    table
        :func:`outlier_table` rows (``area_code, crime_type, rate_per_1000``).
    peers
        :func:`read_peer_groups` pairs, or None.

    Returns
    -------
    pandas.DataFrame
        ``area_code, crime_type, peer_group, n_peers, peer_codes`` (";"-joined,
        only peers found in ``table``), ``peer_mean_rate_per_1000`` (the
        unweighted mean of the peers' rates, the area itself excluded) and
        ``ratio_to_peer_mean`` (rate / peer mean).  Empty strings / NaN for
        areas without peers.  ``attrs["unmatched"]``: codes in the peer table
        that are not analysed areas (their rates are unknown, so they are
        left out of the means).
    """
    base = table[["area_code", "crime_type", "rate_per_1000"]].copy()
    empty = base.assign(peer_group="", n_peers=0, peer_codes="", peer_mean_rate_per_1000=np.nan,
                        ratio_to_peer_mean=np.nan)
    empty.attrs["unmatched"] = []
    if peers is None or peers.empty:
        return empty.drop(columns="rate_per_1000")
    known = set(base["area_code"])
    unmatched = sorted((set(peers["area_code"]) | set(peers["peer_code"])) - known)
    pairs = peers[peers["area_code"].isin(known) & peers["peer_code"].isin(known)]
    rate = base.set_index(["area_code", "crime_type"])["rate_per_1000"]
    joined = pairs.merge(base.rename(columns={"area_code": "peer_code", "rate_per_1000": "peer_rate"}), on="peer_code")
    agg = joined.groupby(["area_code", "crime_type"]).agg(
        n_peers=("peer_code", "nunique"), peer_codes=("peer_code", lambda s: ";".join(sorted(set(s)))),
        peer_mean_rate_per_1000=("peer_rate", "mean"))
    group_label = pairs.groupby("area_code")["peer_group"].agg(lambda s: ";".join(sorted({g for g in s if g})))
    out = empty.drop(columns=["n_peers", "peer_codes", "peer_mean_rate_per_1000"]).set_index(["area_code", "crime_type"])
    out = out.join(agg, how="left")
    out["n_peers"] = out["n_peers"].fillna(0).astype(np.int64)
    out["peer_codes"] = out["peer_codes"].fillna("")
    out = out.reset_index()
    out["peer_group"] = out["area_code"].map(group_label).fillna("")
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = out["peer_mean_rate_per_1000"].to_numpy(dtype=float)
        own = rate.reindex(pd.MultiIndex.from_frame(out[["area_code", "crime_type"]])).to_numpy(dtype=float)
        out["ratio_to_peer_mean"] = np.where(mean > 0, own / mean, np.nan)
    out = out[["area_code", "crime_type", "peer_group", "n_peers", "peer_codes", "peer_mean_rate_per_1000",
               "ratio_to_peer_mean"]]
    out.attrs["unmatched"] = unmatched
    return out


# =============================================================================
# Monthly series (trend charts)
# =============================================================================


def monthly_rates(
    counts: pd.DataFrame,
    areas: pd.DataFrame,
    *,
    months_present: Sequence[str],
    groups: Mapping[str, Sequence[str]] | None = None,
    crime_types: Sequence[str] | None = None,
    county: tuple[str, str] | None = None,
) -> pd.DataFrame:
    """Monthly counts and rates per area, every calendar month from the first to the last present.

    Months missing from the data keep a row with ``count``/``rate_per_1000``
    NaN and ``present = False``, so a chart draws a gap instead of a line
    across them.  ``crime_types`` (categories or group names) limits the
    output; ``county=(code, name)`` adds the county total.  Columns
    :data:`MONTHLY_COLUMNS`.
    """
    groups = dict(groups or {})
    info = _area_info(areas)
    present = sorted(set(months_present))
    calendar = month_range(present[0], present[-1])
    long = add_groups(counts[["area_code", "month", "crime_type", "count"]], groups)
    if crime_types is not None:
        long = long[long["crime_type"].isin(list(crime_types))]
    long = long[long["area_code"].isin(info.index)]
    long = long.groupby(["area_code", "crime_type", "month"])["count"].sum().astype(float).reset_index()
    if county is not None:
        tot = long.groupby(["crime_type", "month"])["count"].sum().reset_index().assign(area_code=county[0])
        long = pd.concat([long, tot], ignore_index=True)
    names = info["area_name"].to_dict()
    population = info["population"].to_dict()
    if county is not None:
        names[county[0]] = county[1]
        population[county[0]] = float(info["population"].sum())
    codes = list(info.index) + ([county[0]] if county is not None else [])
    types = list(dict.fromkeys(long["crime_type"]))
    full = pd.MultiIndex.from_product([codes, types, calendar], names=["area_code", "crime_type", "month"])
    out = long.set_index(["area_code", "crime_type", "month"])["count"].reindex(full).reset_index()
    out["present"] = out["month"].isin(present)
    out.loc[~out["present"], "count"] = np.nan
    out.loc[out["present"], "count"] = out.loc[out["present"], "count"].fillna(0.0)
    out["area_name"] = out["area_code"].map(names)
    out["population"] = out["area_code"].map(population)
    out["rate_per_1000"] = 1000.0 * out["count"] / out["population"]
    return out[MONTHLY_COLUMNS]


# =============================================================================
# Everything together
# =============================================================================


@dataclasses.dataclass
class OutlierResults:
    """The CSP outlier analysis: tables for the CSVs and everything the report renders.

    Attributes
    ----------
    district : DataFrame
        :data:`DISTRICT_COLUMNS` (CSPs; ``outliers_district.csv``).
    lsoa : DataFrame
        :data:`LSOA_COLUMNS`.
    change : DataFrame
        :data:`CHANGE_COLUMNS` (CSPs vs the rest of the county, LSOAs vs the rest of their CSP).
    concentration : DataFrame
        :data:`CONCENTRATION_COLUMNS`.
    overdispersion : DataFrame
        :data:`OVERDISPERSION_COLUMNS` for CSPs and LSOAs.
    funnels : DataFrame
        :data:`FUNNEL_COLUMNS` (CSP populations).
    monthly : DataFrame
        :data:`MONTHLY_COLUMNS` (CSPs and the county; headline types).
    areas : GeoDataFrame
        CSP polygons (EPSG:27700) with ``area_code, area_name, district_code, population``.
    meta : dict
        Labels and provenance: force name and code, periods and reasons,
        months present/missing, crime-type order and groups, headline type,
        harm table version and weights, peer-table notes, town centres by CSP,
        data sources, levels and adjustment.
    """

    district: pd.DataFrame
    lsoa: pd.DataFrame
    change: pd.DataFrame
    concentration: pd.DataFrame
    overdispersion: pd.DataFrame
    funnels: pd.DataFrame
    monthly: pd.DataFrame
    areas: gpd.GeoDataFrame
    meta: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """Small JSON-able summary for the run manifest."""
        # a group that is one category (e.g. "ASB") repeats that category's row: count it once
        d = self.district[(self.district["flag"] != FLAG_NO_RECORDS)
                          & ~self.district["crime_type"].isin(self.meta.get("single_type_groups", []))]
        od = self.overdispersion[self.overdispersion["area_type"] == "csp"]
        return {
            "period": self.meta["period"]["label"],
            "change": f"{self.meta['change_after']['label']} vs {self.meta['change_before']['label']}"
            if self.meta.get("change_after") else None,
            "district_cells": int(len(d)),
            "district_cells_flagged_adjusted": int((d["flag"] != "within").sum()),
            "district_cells_flagged_unadjusted": int((d["flag_unadjusted"] != "within").sum()),
            "district_cells_flagged_998_adjusted": int(d["flag"].isin(["high_998", "low_998"]).sum()),
            "district_cells_flagged_998_unadjusted": int(d["flag_unadjusted"].isin(["high_998", "low_998"]).sum()),
            "lsoa_cells_flagged_adjusted": int((~self.lsoa["flag"].isin(["within", FLAG_NO_RECORDS])).sum()),
            "phi_district": {r.crime_type: round(float(r.phi), 3) for r in od.itertuples()},
            "adjustment": self.meta["adjustment"],
            "changes_flagged": int(d["change_flag"].isin(["up_vs_reference", "down_vs_reference"]).sum()),
            "changes_flagged_q05": int((d["change_flag"].isin(["up_vs_reference", "down_vs_reference"])
                                        & (d["change_q"] < 0.05)).sum()),
            "peer_groups": self.meta.get("peer_source") or None,
            "harm_table_version": self.meta["harm_version"],
        }


def headline_crime_type(groups: Mapping[str, Sequence[str]], crime_types: Sequence[str]) -> str:
    """The crime type the report leads with: the group "All crime" if configured, else the largest group,
    else the first category.

    >>> headline_crime_type({"Violence": ["A"], "All crime": ["A", "B"]}, ["A", "B"])
    'All crime'
    """
    if "All crime" in groups:
        return "All crime"
    if groups:
        return max(groups, key=lambda g: len(groups[g]))
    return sorted(crime_types)[0]


def analyse_outliers(
    csp_counts: pd.DataFrame,
    lsoa_counts: pd.DataFrame,
    csps: gpd.GeoDataFrame,
    lsoas: pd.DataFrame,
    lsoa_to_csp: pd.Series,
    *,
    period: Period,
    comparison: Period | None = None,
    change_current: Period | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    crime_types: Sequence[str] | None = None,
    months_present: Sequence[str] | None = None,
    harm_weights: pd.Series | None = None,
    peers: pd.DataFrame | None = None,
    adjustment: str = "multiplicative",
    county: tuple[str, str] = ("county", "County"),
    levels: Sequence[float] = LEVELS,
) -> OutlierResults:
    """Run the whole CSP outlier analysis on count tables (no I/O).

    Parameters
    ----------
    csp_counts, lsoa_counts
        Long counts by area x month x crime type (:data:`hotspots.schema.COUNT_COLUMNS`).
    csps, lsoas
        Area tables; ``csps`` keeps its geometry for the map and GeoPackage.
    lsoa_to_csp
        LSOA code -> CSP code.
    period
        The analysis period (levels, concentration, LSOAs).
    comparison, change_current
        Change is ``change_current`` against ``comparison`` (seasonally
        matched months); None skips the change analysis.
    groups, crime_types
        Crime-type groups and the categories to analyse.
    months_present
        Months with data (for the monthly series); default those in the counts.
    harm_weights
        :func:`hotspots.harm.load_harm_weights` (default: the shipped table).
    peers
        :func:`read_peer_groups` pairs, optional.
    adjustment
        Overdispersion adjustment: ``"multiplicative"`` (phi) or ``"additive"`` (tau2).
    county
        ``(code, name)`` of the whole area (the force).

    Returns
    -------
    OutlierResults
    """
    groups = dict(groups or {})
    if crime_types is None:
        crime_types = sorted(set(csp_counts["crime_type"]))
    if not period.months:
        raise ValidationError(f"the analysis period {period.label} has no months with data",
                              hint="choose periods.current within the months present (hotspots info)")
    harm_weights = load_harm_weights() if harm_weights is None else harm_weights
    csp_names = dict(zip(csps["area_code"], csps["area_name"]))

    csp_totals = period_totals(csp_counts, period.months, groups=groups, crime_types=crime_types)
    district = outlier_table(csp_totals, csps, levels=levels, adjustment=adjustment)
    od_csp = overdispersion_summary(district, area_type="csp")
    harm = harm_table(csp_totals, csps, groups=groups, weights=harm_weights)
    district = district.merge(harm, on=["area_code", "crime_type"], how="left")
    peer = peer_comparison(district, peers)
    district = district.merge(peer, on=["area_code", "crime_type"], how="left")
    district.insert(0, "area_type", "csp")
    district["district_code"] = district["area_code"].map(dict(zip(csps["area_code"], csps["district_code"])))
    district["period"] = period.label
    district["months"] = len(period.months)

    lsoa_totals = period_totals(lsoa_counts, period.months, groups=groups, crime_types=crime_types)
    lsoa = outlier_table(lsoa_totals, lsoas, levels=levels, adjustment=adjustment)
    od_lsoa = overdispersion_summary(lsoa, area_type="lsoa")
    lsoa.insert(0, "area_type", "lsoa")
    lsoa["csp_code"] = lsoa["area_code"].map(lsoa_to_csp).fillna("")
    lsoa["csp_name"] = lsoa["csp_code"].map(csp_names).fillna("")
    lsoa["district_code"] = lsoa["area_code"].map(dict(zip(lsoas["area_code"], lsoas["district_code"])))
    csp_lsoa_total = lsoa.groupby(["csp_code", "crime_type"])["count"].transform("sum")
    with np.errstate(divide="ignore", invalid="ignore"):
        lsoa["share_of_csp"] = np.where(csp_lsoa_total > 0, lsoa["count"] / csp_lsoa_total, np.nan)
    lsoa["rank_in_csp"] = lsoa.groupby(["csp_code", "crime_type"])["count"].rank(ascending=False, method="min").astype(np.int64)
    lsoa["period"] = period.label
    lsoa["months"] = len(period.months)

    od = pd.concat([od_csp, od_lsoa], ignore_index=True)

    change_cols = ["change_count_before", "change_count_after", "pct_change", "rest_pct_change", "pct_change_vs_rest",
                   "pct_change_vs_rest_ci_lower", "pct_change_vs_rest_ci_upper", "change_q", "change_flag"]
    if comparison is not None and change_current is not None and comparison.months and change_current.months:
        csp_before = period_totals(csp_counts, comparison.months, groups=groups, crime_types=crime_types)
        csp_after = period_totals(csp_counts, change_current.months, groups=groups, crime_types=crime_types)
        csp_change = change_table(csp_before, csp_after, csps, before_period=comparison, after_period=change_current,
                                  parent_names={"": county[1]}, reference_label="rest of the county")
        csp_change["area_type"] = "csp"
        csp_change["parent_code"] = county[0]
        csp_change["parent_name"] = county[1]
        lsoa_before = period_totals(lsoa_counts, comparison.months, groups=groups, crime_types=crime_types)
        lsoa_after = period_totals(lsoa_counts, change_current.months, groups=groups, crime_types=crime_types)
        lsoa_change = change_table(lsoa_before, lsoa_after, lsoas, before_period=comparison,
                                   after_period=change_current, parent=lsoa_to_csp, parent_names=csp_names,
                                   reference_label="rest of the CSP")
        lsoa_change["area_type"] = "lsoa"
        change = pd.concat([csp_change, lsoa_change], ignore_index=True)
        summary = csp_change.set_index(["area_code", "crime_type"])[
            ["count_before", "count_after", "pct_change", "ref_pct_change", "pct_change_vs_reference",
             "pct_change_vs_reference_ci_lower", "pct_change_vs_reference_ci_upper", "q_vs_reference",
             "change_flag"]]
        summary.columns = change_cols
        district = district.merge(summary.reset_index(), on=["area_code", "crime_type"], how="left")
    else:
        change = pd.DataFrame(columns=CHANGE_COLUMNS)
        for column in change_cols:
            district[column] = np.nan if column != "change_flag" else ""
    district = district[DISTRICT_COLUMNS]
    lsoa = lsoa[LSOA_COLUMNS]

    concentration = concentration_table(lsoa_totals, lsoa_to_csp, csp_names, county=county)
    concentration.insert(5, "period", period.label)
    concentration = concentration[CONCENTRATION_COLUMNS]

    headline = headline_crime_type(groups, crime_types)
    single_type_groups = {g for g, m in groups.items() if len(m) == 1 and m[0] in crime_types}
    months_present = sorted(set(months_present or csp_counts["month"].unique()))
    trend_types = [headline] + [t for t in (ASB,) if t in crime_types and t != headline]
    monthly = monthly_rates(csp_counts, csps, months_present=months_present, groups=groups,
                            crime_types=trend_types, county=county)
    meta = {
        "county_code": county[0], "county_name": county[1],
        "period": {"label": period.label, "months": list(period.months)},
        "change_before": {"label": comparison.label, "months": list(comparison.months)} if comparison else None,
        "change_after": {"label": change_current.label, "months": list(change_current.months)}
        if change_current else None,
        "months_present": months_present,
        "crime_types": crime_type_order(crime_types, groups),
        "groups": {k: list(v) for k, v in groups.items()},
        "single_type_groups": sorted(single_type_groups),
        "headline": headline,
        "trend_types": trend_types,
        "harm_version": harm_weights.attrs.get("version", ""),
        "harm_weights": {k: (None if pd.isna(v) else float(v)) for k, v in harm_weights.items()},
        "harm_unweighted": harm.attrs["unweighted"],
        "peers_unmatched": peer.attrs["unmatched"],
        "peers_given": peers is not None and not peers.empty,
        "levels": list(levels),
        "adjustment": adjustment,
        "small_expected": SMALL_EXPECTED,
    }
    areas = csps[["area_code", "area_name", "district_code", "population", "geometry"]].copy()
    return OutlierResults(district=district, lsoa=lsoa, change=change[CHANGE_COLUMNS],
                          concentration=concentration, overdispersion=od, funnels=funnel_curves(district, levels=levels),
                          monthly=monthly, areas=areas, meta=meta)


def _outlier_settings(settings) -> dict[str, Any]:
    raw = settings.extra.get("outliers", {}) if isinstance(settings.extra, Mapping) else {}
    if not isinstance(raw, Mapping):
        raise ConfigError("[outliers] in the config must be a table", hint='for example: [outliers]\npeer_groups = ""')
    adjustment = str(raw.get("adjustment", "multiplicative"))
    if adjustment not in ("multiplicative", "additive"):
        raise ConfigError(f"[outliers] adjustment = {adjustment!r} must be \"multiplicative\" or \"additive\"",
                          hint="multiplicative widens the funnel by sqrt(phi); additive adds tau2 (Spiegelhalter 2005)")
    return {
        "peer_groups": str(raw.get("peer_groups", "") or ""),
        "adjustment": adjustment,
        "harm_weights": str(raw.get("harm_weights", "") or ""),
        "recording_note": str(raw.get("recording_note", "") or ""),
    }


def stage_outliers(ctx) -> dict[str, Any]:
    """Pipeline stage: CSP outlier tables and the CSP outlier report under ``outliers/``.

    Reads ``[outliers]`` from the config: ``peer_groups`` (CSV path, optional),
    ``adjustment`` (``multiplicative`` | ``additive``), ``harm_weights`` (CSV
    path, optional), ``recording_note`` (text for the recording caveat).
    Writes ``outliers/outliers_district.csv``, ``outliers_lsoa.csv``,
    ``outliers_change.csv``, ``concentration.csv``, ``outliers_district.gpkg``
    ; the report (``csp_outlier_report.html``) is rendered from
    ``ctx.results["outliers"]`` by :func:`hotspots.pipeline.stage_outliers`.
    Returns a summary for the manifest.
    """
    options = _outlier_settings(ctx.settings)
    geo = ctx.geography
    csps = geo.areas("csp")
    lsoas = geo.areas("lsoa")
    district_to_csp = geo.district_lookup.set_index("ltla24_code")["csp24_code"]
    lsoa_to_csp = lsoas.set_index("area_code")["district_code"].map(district_to_csp)
    peers = None
    if options["peer_groups"]:
        peers = read_peer_groups(options["peer_groups"], aliases=district_to_csp.to_dict())
    weights = load_harm_weights(options["harm_weights"] or None)
    force = geo.force
    county = (str(force["area_code"].iloc[0]), str(force["area_name"].iloc[0]))
    periods = ctx.periods
    with_progress = getattr(ctx, "progress", None)
    results = analyse_outliers(
        ctx.counts("csp"), ctx.counts("lsoa"), csps, lsoas, lsoa_to_csp,
        period=periods.current, comparison=periods.comparison, change_current=periods.change_current,
        groups=ctx.settings.crime_groups, crime_types=ctx.all_crime_types, months_present=ctx.months_present,
        harm_weights=weights, peers=peers, adjustment=options["adjustment"], county=county,
    )
    town_centres = geo.areas("town_centre")
    results.meta.update({
        "force_name": ctx.settings.name or county[1],
        "periods_reason": periods.reason,
        "months_missing": list(ctx.months_missing),
        "sources": dict(geo.sources),
        "police_files": len(ctx.accounting.files),
        "rows_kept": int(len(ctx.points)),
        "peer_source": options["peer_groups"],
        "recording_note": options["recording_note"],
        "town_centres": {csp: sorted(town_centres.loc[town_centres["district_code"].map(district_to_csp) == csp,
                                                      "area_name"].astype(str))
                         for csp in csps["area_code"]},
    })
    out = ctx.out
    out.write_csv(results.district, "outliers/outliers_district.csv")
    out.write_csv(results.lsoa, "outliers/outliers_lsoa.csv")
    out.write_csv(results.change, "outliers/outliers_change.csv")
    out.write_csv(results.concentration, "outliers/concentration.csv")
    geometry = results.areas.set_index("area_code")["geometry"]
    gdf = gpd.GeoDataFrame(results.district, geometry=results.district["area_code"].map(geometry).to_numpy(),
                           crs=results.areas.crs)
    out.write_geo(gdf, "outliers/outliers_district.gpkg", layer="outliers_district")
    summary = results.summary()
    if with_progress is not None:
        with_progress.info(
            f"  CSP x crime-type cells outside the 95% funnel: {summary['district_cells_flagged_unadjusted']} of "
            f"{summary['district_cells']} before the overdispersion adjustment, "
            f"{summary['district_cells_flagged_adjusted']} after"
        )
    ctx.results["outliers"] = results
    return summary
