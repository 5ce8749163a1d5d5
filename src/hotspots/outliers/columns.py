"""Defaults and output columns of the CSP outlier tables.

The ``*_COLUMNS`` lists fix the columns (and their order) of every table the
CSP outlier analysis returns; the first four are written as CSV files by the
``outliers`` stage (see the README, "CSP outlier report").  The other
constants are the documented defaults of :func:`hotspots.outliers.analyse_outliers`.
"""

from __future__ import annotations

from collections.abc import Sequence

from hotspots._validate import level_label

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



def limit_columns(levels: Sequence[float] = LEVELS) -> list[str]:
    """Names of the funnel-limit columns for ``levels``: unadjusted, then adjusted.

    >>> limit_columns((0.95,))
    ['lower_95', 'upper_95', 'lower_95_adjusted', 'upper_95_adjusted']
    """
    plain = [f"{side}_{level_label(level)}" for level in levels for side in ("lower", "upper")]
    return plain + [f"{column}_adjusted" for column in plain]


_LIMIT_COLUMNS = limit_columns(LEVELS)

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
