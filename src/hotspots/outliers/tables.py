"""Level of crime in each area against the pooled (county) rate: funnel-plot tables.

:func:`period_totals` sums a count table over the months of a period (crime-type
groups added); :func:`outlier_table` compares every area with the pooled rate
for every crime type (rate, expected count, ratio, z, exact funnel limits with
and without the overdispersion adjustment, flags: :func:`hotspots.outliers.funnel.funnel_outliers`,
Spiegelhalter 2005); :func:`overdispersion_summary` lists the estimate behind
each adjusted funnel and :func:`funnel_curves` gives the limits on the rate scale
for plots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hotspots._validate import level_label
from hotspots.geo.aggregate import add_groups
from hotspots.outliers._areas import area_info
from hotspots.outliers.columns import (
    FLAG_NO_RECORDS,
    FUNNEL_COLUMNS,
    LEVELS,
    OVERDISPERSION_COLUMNS,
    SMALL_EXPECTED,
    limit_columns,
)
from hotspots.outliers.funnel import (
    _funnel_limits_columns,
    _funnel_outliers_data,
    exact_poisson_interval,
)

# =============================================================================
# Counts over a period
# =============================================================================


def crime_type_order(crime_types: Sequence[str], groups: Mapping[str, Sequence[str]]) -> list[str]:
    """Groups first (in config order), then the police.uk categories alphabetically.

    Parameters
    ----------
    crime_types
        Categories (repeats allowed).
    groups
        Crime-type groups, in the order they should be listed.

    Returns
    -------
    list of str
        Group names, then the categories that are not group names, sorted.

    Examples
    --------
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

    Examples
    --------
    >>> import pandas as pd
    >>> counts = pd.DataFrame({"area_code": ["A", "A", "B", "B"], "month": ["2025-01", "2025-02"] * 2,
    ...                        "crime_type": "Burglary", "count": [3, 5, 2, 1]})
    >>> period_totals(counts, ["2025-01", "2025-02"], groups={"All crime": ["Burglary"]})
      area_code crime_type  is_group  count
    0         A  All crime      True      8
    1         A   Burglary     False      8
    2         B  All crime      True      3
    3         B   Burglary     False      3
    """
    return period_totals_many(counts, [months], groups=groups, crime_types=crime_types)[0]


def period_totals_many(
    counts: pd.DataFrame,
    periods: Sequence[Sequence[str]],
    *,
    groups: Mapping[str, Sequence[str]] | None = None,
    crime_types: Sequence[str] | None = None,
) -> list[pd.DataFrame]:
    """``[period_totals(counts, months, groups=groups, crime_types=crime_types) for months in periods]``.

    The same frames, bit for bit: the area, month and crime-type columns are
    coded once for every period, and each period's sums are whole-number sums
    by integer codes (exact in any order) instead of a string groupby, the
    groups' rows and a second groupby per period.  Counts that are not int64,
    missing keys, repeated crime types or sums that could leave float64's exact
    integers go through :func:`_period_totals_plain`.
    """
    groups = dict(groups or {})
    types = sorted(crime_types) if crime_types is not None else sorted(counts["crime_type"].unique())
    count = counts["count"]
    keys = [counts[c] for c in ("area_code", "crime_type", "month")]
    if (count.dtype != np.int64 or len(set(types)) != len(types) or any(k.isna().any() for k in keys)
            or not all(isinstance(k.dtype, pd.StringDtype) or k.dtype == object for k in keys)
            or (len(count) and int(np.abs(count.to_numpy()).sum()) >= 2**53)):
        return [_period_totals_plain(counts, months, groups, types) for months in periods]
    values = count.to_numpy()
    area_code, area_values = pd.factorize(keys[0])
    areas = sorted(area_values)
    area_pos = pd.Index(areas).get_indexer(area_values)[area_code]
    type_code, type_values = pd.factorize(keys[1])
    type_pos = pd.Index(types).get_indexer(type_values)[type_code]
    month_code, month_values = pd.factorize(keys[2])
    order = crime_type_order(types, groups)
    n_areas, n_types = len(areas), len(types)
    type_index = {t: i for i, t in enumerate(types)}
    full = pd.MultiIndex.from_product([areas, order], names=["area_code", "crime_type"])
    is_group = np.tile(np.array([t in groups for t in order]), n_areas)
    out = []
    for months in periods:
        keep = pd.Index(month_values).isin(list(months))[month_code] & (type_pos >= 0)
        cell = area_pos[keep] * n_types + type_pos[keep]
        by_type = np.bincount(cell, weights=values[keep], minlength=n_areas * n_types).reshape(n_areas, n_types)
        columns = []
        for name in order:
            column = by_type[:, type_index[name]] if name in type_index else np.zeros(n_areas)
            if name in groups:  # add_groups' rows for the group, summed with the type's own rows of the same name
                members = [type_index[m] for m in dict.fromkeys(groups[name]) if m in type_index]
                if members:
                    column = column + by_type[:, members].sum(axis=1)
            columns.append(column)
        totals = np.column_stack(columns).ravel() if columns else np.zeros(0)
        frame = pd.Series(totals.astype(np.int64), index=full, name="count").reset_index()
        frame["is_group"] = is_group
        out.append(frame[["area_code", "crime_type", "is_group", "count"]])
    return out


def _period_totals_plain(counts: pd.DataFrame, months: Sequence[str], groups: dict[str, Sequence[str]],
                         types: list[str]) -> pd.DataFrame:
    """:func:`period_totals` by groupbys (the reference for :func:`period_totals_many`)."""
    sub = counts[counts["month"].isin(list(months))]
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
        Funnel levels (default 95% and 99.8%); the limit columns are named
        after them (:func:`hotspots.outliers.columns.limit_columns`).
    adjustment
        ``"multiplicative"`` (phi) or ``"additive"`` (tau2), see
        :func:`hotspots.outliers.funnel.funnel_outliers`; applied only when the chi-squared
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
        ``attrs["overdispersion"]``: the estimate per crime type, for
        :func:`overdispersion_summary`.

    Notes
    -----
    Spiegelhalter (2005) "Funnel plots for comparing institutional
    performance", Statistics in Medicine 24:1185-1202; Spiegelhalter (2005)
    "Handling over-dispersion of performance indicators", Quality and Safety
    in Health Care 14:347-351.  The rate interval is Garwood's exact Poisson
    interval (:func:`hotspots.outliers.funnel.exact_poisson_interval`).

    Examples
    --------
    >>> import pandas as pd
    >>> areas = pd.DataFrame({"area_code": list("ABC"), "area_name": ["Ash", "Birch", "Cedar"],
    ...                       "population": [4000, 3000, 5000]})
    >>> totals = pd.DataFrame({"area_code": list("ABC"), "crime_type": "Burglary", "is_group": False,
    ...                        "count": [8, 3, 17]})
    >>> table = outlier_table(totals, areas)
    >>> table[["area_code", "rate_per_1000", "expected", "ratio", "flag", "adjustment"]].round(2)
      area_code  rate_per_1000  expected  ratio    flag adjustment
    0         A            2.0      9.33   0.86  within       none
    1         B            1.0      7.00   0.43  within       none
    2         C            3.4     11.67   1.46  within       none
    """
    info = area_info(areas)
    limits = limit_columns(levels)
    codes = list(info.index)
    population = info["population"].to_numpy()
    n = len(codes)
    # the columns of each crime type's rows as plain arrays, joined once (a frame per type and a column
    # assignment per column cost more than the arithmetic; the values and dtypes are those of that frame)
    parts: dict[str, list[np.ndarray]] = {}
    estimates: dict[str, dict[str, Any]] = {}
    for crime_type, sub in totals.groupby("crime_type", sort=False):
        observed = sub.set_index("area_code")["count"].reindex(codes, fill_value=0).to_numpy(dtype=float)
        is_group = bool(sub["is_group"].iloc[0])
        if observed.sum() == 0:
            columns = {"area_code": np.array(codes, dtype=object), "count": observed, "population": population,
                       "rate_per_1000": np.zeros(n), "county_rate_per_1000": np.zeros(n), "expected": np.zeros(n)}
            for column in ("ratio", "z", "p", "z_adjusted", *limits, "phi", "tau2"):
                columns[column] = np.full(n, np.nan)
            columns["flag_unadjusted"] = np.full(n, FLAG_NO_RECORDS, dtype=object)
            columns["flag"] = np.full(n, FLAG_NO_RECORDS, dtype=object)
            columns["overdispersed"] = np.zeros(n, dtype=bool)
            columns["adjustment"] = np.full(n, "none", dtype=object)
        else:
            # funnel_outliers' columns without its frame (the same arrays; flags as category codes)
            res, _, attrs, categories = _funnel_outliers_data(observed, population, names=codes, levels=levels,
                                                              adjustment=adjustment)
            od = attrs["overdispersion"]
            columns = {"area_code": np.asarray(res["area"], dtype=object), "count": res["observed"]}
            for column in ("population", "rate_per_1000", "expected", "ratio", "z", "p", "z_adjusted", *limits):
                columns[column] = res[column]
            flag_names = np.array([str(c) for c in categories], dtype=object)
            for column in ("flag_unadjusted", "flag"):
                columns[column] = flag_names[res[column]]
            columns["county_rate_per_1000"] = np.full(n, attrs["reference_rate_per_1000"])
            columns["phi"] = np.full(n, od["phi"])
            columns["tau2"] = np.full(n, od["tau2"])
            columns["overdispersed"] = np.full(n, bool(od["overdispersed"]))
            columns["adjustment"] = np.full(n, od["adjustment"] if od["applied"] else "none", dtype=object)
            estimates[crime_type] = {**od, "is_group": is_group,
                                     "county_rate_per_1000": attrs["reference_rate_per_1000"]}
        columns["crime_type"] = np.full(n, crime_type, dtype=object)
        columns["is_group"] = np.full(n, is_group)
        for column, values in columns.items():
            parts.setdefault(column, []).append(values)
    if not parts:
        pd.concat([])  # no crime types: the error pd.concat gave before
    out = pd.DataFrame({column: np.concatenate(values) for column, values in parts.items()})
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
               "z_adjusted", *limits, "flag_unadjusted", "flag", "phi", "tau2", "overdispersed",
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

    Notes
    -----
    Spiegelhalter (2005) "Handling over-dispersion of performance
    indicators", Quality and Safety in Health Care 14:347-351;
    DerSimonian & Laird (1986) for ``tau2``.
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

    Parameters
    ----------
    table
        An :func:`outlier_table`: each crime type's county rate and the
        adjustment applied (``adjustment``, ``phi``, ``tau2``) are read from it.
    levels
        Funnel levels (the column names of :data:`FUNNEL_COLUMNS` assume the
        default 95% and 99.8%).
    n_points
        Populations on the curve.
    population_range
        ``(smallest, largest)`` population; default 0.8 x the smallest to
        1.25 x the largest area in ``table``.

    Returns
    -------
    pandas.DataFrame
        :data:`FUNNEL_COLUMNS`: per crime type (with records) and population,
        ``rate limit = ratio limit x county rate per 1,000`` with ratio limits
        from :func:`hotspots.outliers.funnel.funnel_limits` at
        ``expected = county rate x population``, Poisson-only and adjusted.
        Populations run geometrically over ``population_range``.

    Examples
    --------
    >>> import pandas as pd
    >>> areas = pd.DataFrame({"area_code": list("ABC"), "area_name": list("abc"), "population": [4000, 3000, 5000]})
    >>> totals = pd.DataFrame({"area_code": list("ABC"), "crime_type": "Burglary", "is_group": False,
    ...                        "count": [8, 3, 17]})
    >>> curves = funnel_curves(outlier_table(totals, areas), n_points=3)
    >>> curves[["population", "rate_lower_95", "rate_upper_95"]].round(2)
       population  rate_lower_95  rate_upper_95
    0     2400.00           0.42           4.25
    1     3872.98           0.81           3.84
    2     6250.00           1.13           3.52
    """
    if population_range is None:
        population_range = (0.8 * float(table["population"].min()), 1.25 * float(table["population"].max()))
    grid = np.geomspace(max(population_range[0], 1.0), population_range[1], n_points)
    # each crime type's first row, in the order groupby(sort=False) gives the types (rows without one left out)
    firsts = table[table["crime_type"].notna()].drop_duplicates("crime_type")
    parts: dict[str, list] = {}
    for crime_type, rate, adjustment, phi, tau2 in zip(
            firsts["crime_type"], firsts["county_rate_per_1000"], firsts["adjustment"], firsts["phi"], firsts["tau2"]):
        rate_1000 = float(rate)
        if not rate_1000 > 0:
            continue
        expected = rate_1000 / 1000.0 * grid
        # the limits' columns without their frames (the same arrays _funnel_limits_sharing puts in them)
        if adjustment == "multiplicative":
            plain, adjusted = _funnel_limits_columns(
                expected, [{}, {"adjustment": "multiplicative", "phi": float(phi)}], levels=levels)[1]
        elif adjustment == "additive":
            plain, adjusted = _funnel_limits_columns(
                expected, [{}, {"adjustment": "additive", "tau2": float(tau2)}], levels=levels)[1]
        else:
            plain = adjusted = _funnel_limits_columns(expected, [{}], levels=levels)[1][0]
        columns = {"crime_type": np.full(grid.size, crime_type, dtype=object), "population": grid,
                   "expected": expected, "county_rate_per_1000": np.full(grid.size, rate_1000)}
        for level in levels:
            label = level_label(level)
            for side in ("lower", "upper"):
                columns[f"rate_{side}_{label}"] = plain[f"{side}_{label}"] * rate_1000
                columns[f"rate_{side}_{label}_adjusted"] = adjusted[f"{side}_{label}"] * rate_1000
        for column, values in columns.items():
            parts.setdefault(column, []).append(values)
    if not parts:
        return pd.DataFrame(columns=FUNNEL_COLUMNS)
    # one frame of every type's columns joined (the frame per type and pd.concat gave the same)
    return pd.DataFrame({column: np.concatenate(values) for column, values in parts.items()})[FUNNEL_COLUMNS]
