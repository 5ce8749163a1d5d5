"""Hotspot detection: where crime concentrates, on a grid and at point locations, and the patrol areas it suggests.

Plain functions on data (points, grids, arrays in British National Grid
metres, EPSG:27700): nothing here reads the configuration or writes files.
The ``hotspots`` stage (:mod:`hotspots.stages.hotspots`) runs
:func:`~hotspots.detect.analysis.analyse_area` per study area and writes the
tables; :mod:`hotspots.render.maps` draws them.

Contents
--------
verbs        :func:`find_hotspots`, :func:`patrol_areas`: the notebook verbs
gistar       :func:`gi_star`: Getis-Ord Gi* with FDR control
moran        :func:`local_moran`: local Moran's I with conditional permutations
trend        :func:`mann_kendall`: the Mann-Kendall trend test (the one used everywhere)
kde          :func:`kde_bandwidth`, :func:`kde_quartic`: quartic kernel density by FFT
clusters     :func:`cluster_locations`: DBSCAN / HDBSCAN on unique snapped locations
emerging     :func:`emerging_hotspot_classes`: ArcGIS-style emerging hot spot patterns
patrol       :func:`merge_hot_cells`, :func:`core_cells`, :func:`patrol_cell_cap`
stability    :func:`top_k_stability`: Jaccard, Spearman, hit rate, PAI, RRI
profile      :func:`hour_of_week_profile`: counts by weekday and hour
options      :class:`HotspotConfig`: the analysis options; constants
results      :class:`StudyArea`, :class:`Inputs`, :class:`SelectionResult`, :class:`AreaResult`
analysis     :func:`analyse_area`: everything for one study area
tables       :func:`hotspot_tables`: the stage's tables; what the county map shows
naming       patrol-area names and stable ids
columns      the output tables' columns (a contract)

The interactive map of :func:`find_hotspots` cells is
:func:`hotspots.render.maps.hotspot_map` (renderers live in a later layer).
"""

from hotspots.detect.analysis import analyse_area
from hotspots.detect.clusters import cluster_locations
from hotspots.detect.emerging import EMERGING_PATTERNS, emerging_hotspot_classes
from hotspots.detect.gistar import gi_star
from hotspots.detect.kde import KDEResult, kde_bandwidth, kde_cells, kde_quartic
from hotspots.detect.moran import local_moran
from hotspots.detect.options import HotspotConfig
from hotspots.detect.patrol import core_cells, merge_hot_cells, patrol_cell_cap
from hotspots.detect.profile import hour_of_week_profile
from hotspots.detect.results import AreaResult, Inputs, SelectionResult, StudyArea
from hotspots.detect.stability import top_k_stability
from hotspots.detect.tables import hotspot_tables
from hotspots.detect.trend import mann_kendall
from hotspots.detect.verbs import find_hotspots, patrol_areas

__all__ = [
    "find_hotspots",
    "patrol_areas",
    "gi_star",
    "local_moran",
    "mann_kendall",
    "kde_bandwidth",
    "kde_quartic",
    "kde_cells",
    "KDEResult",
    "cluster_locations",
    "EMERGING_PATTERNS",
    "emerging_hotspot_classes",
    "merge_hot_cells",
    "core_cells",
    "patrol_cell_cap",
    "top_k_stability",
    "hour_of_week_profile",
    "HotspotConfig",
    "StudyArea",
    "Inputs",
    "SelectionResult",
    "AreaResult",
    "analyse_area",
    "hotspot_tables",
]
