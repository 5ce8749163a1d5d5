"""CSP and area outliers: where each area stands out against the county, crime type by crime type.

The Police & Crime Plan asks for "a data analysis project to identify crime
data outliers across districts/boroughs to support and inform CSP strategies
and priorities".  This package is that analysis, on plain tables (counts by
area x month x crime type, and areas with residents); it never sees the
pipeline: the ``outliers`` stage (:mod:`hotspots.stages.outliers`) builds the
inputs, writes the tables and hands the results to the report renderer
(:mod:`hotspots.render.outliers_report`).

Notebook verb
    :func:`area_outliers`: per-area x crime-type funnel-plot table for any
    set of areas (rate, expected, ratio, z, p, limits, flags, harm, change).

Statistics on arrays (:mod:`~hotspots.outliers.funnel`, :mod:`~hotspots.outliers.dispersion`, :mod:`~hotspots.outliers.change`, :mod:`~hotspots.concentration`)
    :func:`poisson_z`, :func:`exact_poisson_interval`, :func:`overdispersion`,
    :func:`funnel_limits`, :func:`funnel_outliers` (Spiegelhalter 2005);
    :func:`rate_ratio_test`, :func:`change_vs_reference`;
    :func:`concentration`, :func:`gini`, :func:`gini_poisson_adjusted`.

Tables (:mod:`~hotspots.outliers.tables`, :mod:`~hotspots.outliers.change_table`, :mod:`~hotspots.outliers.context_tables`, :mod:`~hotspots.outliers.peers`)
    :func:`period_totals`, :func:`outlier_table`, :func:`overdispersion_summary`,
    :func:`funnel_curves`; :func:`change_table`; :func:`harm_table`,
    :func:`concentration_table`, :func:`monthly_rates`;
    :func:`read_peer_groups`, :func:`peer_comparison`.

The whole CSP analysis (:mod:`~hotspots.outliers.analysis`)
    :func:`analyse_outliers` -> :class:`OutlierResults` (the tables of
    ``outliers/`` and everything the report shows), :func:`headline_crime_type`,
    :func:`flag_counts`.

What the report tells (:mod:`~hotspots.outliers.highlights`)
    :func:`report_highlights` (all of the below for the CSP report),
    :func:`stand_out_rows`, :func:`change_notable` (the q < ``CHANGE_Q`` rule),
    :func:`funnel_picks`, :func:`notable_changes`, :func:`busiest_lsoas`,
    :func:`csp_summary`: every choice of what to show is made here, so the
    renderer only words and draws.

Output columns and defaults are in :mod:`~hotspots.outliers.columns`.
"""

from hotspots.outliers.analysis import (
    OutlierResults,
    analyse_outliers,
    headline_crime_type,
)
from hotspots.outliers.change import change_vs_reference, rate_ratio_test
from hotspots.outliers.highlights import (
    CHANGE_Q,
    busiest_lsoas,
    change_notable,
    csp_summary,
    funnel_picks,
    notable_changes,
    report_highlights,
    stand_out_rows,
)
from hotspots.outliers.change_table import change_summary, change_table
from hotspots.outliers.columns import (
    CHANGE_COLUMNS,
    CHANGE_LEVEL,
    CONCENTRATION_COLUMNS,
    DISTRICT_COLUMNS,
    FLAG_NO_RECORDS,
    FUNNEL_COLUMNS,
    GINI_SEED,
    GINI_SIMULATIONS,
    LEVELS,
    LSOA_COLUMNS,
    MONTHLY_COLUMNS,
    OVERDISPERSION_COLUMNS,
    SMALL_EXPECTED,
    TOP_SHARES,
    limit_columns,
)
from hotspots.concentration import (
    GiniBaseline,
    concentration,
    gini,
    gini_poisson_adjusted,
)
from hotspots.outliers.context_tables import (
    concentration_table,
    harm_table,
    monthly_rates,
)
from hotspots.outliers.dispersion import Overdispersion, overdispersion
from hotspots.outliers.funnel import (
    exact_poisson_interval,
    funnel_limits,
    funnel_outliers,
    poisson_z,
)
from hotspots.outliers.peers import peer_comparison, read_peer_groups
from hotspots.outliers.tables import (
    crime_type_order,
    funnel_curves,
    outlier_table,
    overdispersion_summary,
    period_totals,
)
from hotspots.outliers.verbs import area_outliers

__all__ = [
    # notebook verb
    "area_outliers",
    # what the report tells
    "report_highlights",
    "stand_out_rows",
    "change_notable",
    "funnel_picks",
    "notable_changes",
    "busiest_lsoas",
    "csp_summary",
    "CHANGE_Q",
    # statistics on arrays
    "poisson_z",
    "exact_poisson_interval",
    "overdispersion",
    "Overdispersion",
    "funnel_limits",
    "funnel_outliers",
    "rate_ratio_test",
    "change_vs_reference",
    "concentration",
    "gini",
    "gini_poisson_adjusted",
    "GiniBaseline",
    # tables
    "crime_type_order",
    "period_totals",
    "outlier_table",
    "overdispersion_summary",
    "funnel_curves",
    "change_table",
    "change_summary",
    "harm_table",
    "concentration_table",
    "monthly_rates",
    "read_peer_groups",
    "peer_comparison",
    # the whole CSP analysis
    "analyse_outliers",
    "OutlierResults",
    "headline_crime_type",
    "flag_counts",
    # columns and defaults
    "limit_columns",
    "DISTRICT_COLUMNS",
    "LSOA_COLUMNS",
    "CHANGE_COLUMNS",
    "CONCENTRATION_COLUMNS",
    "OVERDISPERSION_COLUMNS",
    "FUNNEL_COLUMNS",
    "MONTHLY_COLUMNS",
    "LEVELS",
    "SMALL_EXPECTED",
    "TOP_SHARES",
    "GINI_SIMULATIONS",
    "GINI_SEED",
    "CHANGE_LEVEL",
    "FLAG_NO_RECORDS",
]
