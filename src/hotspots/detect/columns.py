"""The columns of the hotspots tables (a contract: the output files have exactly these, in this order)."""

from __future__ import annotations

__all__ = [
    "GRID_CELL_COLUMNS", "PATROL_AREA_COLUMNS", "CLUSTER_COLUMNS", "EMERGING_COLUMNS", "STABILITY_COLUMNS",
    "TOWN_CENTRE_COLUMNS", "STUDY_AREA_COLUMNS",
]

GRID_CELL_COLUMNS = [
    "study_area_type", "study_area_code", "study_area_name", "selection", "cell_id", "row", "col", "x_centre",
    "y_centre", "cell_area_km2", "count", "harm", "gi_z", "gi_p", "gi_q", "gi_test", "gi_class", "moran_i", "moran_p", "moran_q",
    "moran_quadrant", "moran_class", "kde_per_km2", "kde_top_pct", "emerging_class", "town_centre", "patrol_area_id",
    "geometry",
]
PATROL_AREA_COLUMNS = [
    "patrol_area_id", "selection", "district_code", "district_name", "rank", "rank_by", "name", "main_location",
    "ward_code", "ward_name", "town_centre", "n_cells", "cell_size_m", "area_km2", "hot_region_km2", "count", "share_of_district_pct",
    "share_of_district_area_pct", "pai", "harm_total", "harm_per_crime", "count_h1", "count_h2", "change_h2_vs_h1_pct",
    "mk_z", "mk_p", "trend", "top_crime_types", "hour_of_week", "peak_gi_z", "x", "y", "lon", "lat", "cell_ids",
]
CLUSTER_COLUMNS = [
    "study_area_type", "study_area_code", "study_area_name", "selection", "method", "cluster_id", "n_locations",
    "count", "x", "y", "lon", "lat", "area_km2", "main_location", "eps_m", "min_count",
]
EMERGING_COLUMNS = [
    "study_area_type", "study_area_code", "study_area_name", "selection", "cell_id", "emerging_class",
    "n_observed_months", "n_missing_months", "n_sig_hot", "n_sig_cold", "final_month", "mk_z", "mk_p",
]
STABILITY_COLUMNS = [
    "study_area_type", "study_area_code", "study_area_name", "selection", "n_cells", "cell_size_m", "period_a",
    "period_b", "count_a", "count_b", "top_share", "top_k", "jaccard", "spearman_rho", "spearman_p", "hit_rate_a",
    "hit_rate_b", "pai_a", "pai_b", "rri", "count_current", "share_top_1pct", "share_top_5pct", "share_top_10pct",
    "note",
]
TOWN_CENTRE_COLUMNS = [
    "town_centre_code", "town_centre_name", "district_code", "district_name", "selection", "count",
    "share_of_district_pct", "area_km2", "share_of_district_area_pct", "count_h1", "count_h2", "change_h2_vs_h1_pct",
    "hot_cells", "hot_cells_99", "cold_cells", "patrol_areas", "peak_cell_count", "peak_gi_z",
]
STUDY_AREA_COLUMNS = [
    "study_area_type", "study_area_code", "study_area_name", "selection", "cell_size_m", "cell_size_reason",
    "n_cells", "count", "hot_99", "hot_95", "hot_90", "cold_cells", "moran_hotspot_HH", "kde_bandwidth_m",
    "kde_bandwidth_reason", "clusters", "patrol_areas", "note",
]
