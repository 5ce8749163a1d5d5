"""What a hotspot map shows (:class:`MapView`, :class:`SelectionView`: plain data), its colours and formatting."""

from __future__ import annotations

import dataclasses
import html
import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

__all__ = ["MapView", "SelectionView", "GI_COLOURS", "GI_LABELS", "KDE_BANDS", "POPUP_FIELDS"]

#: Gi* classes: hot reds, cold blues (ColorBrewer RdBu), strongest first; drawn at full strength (opaque).
GI_COLOURS = {
    "hot_99": "#b2182b",
    "hot_95": "#ef8a62",
    "hot_90": "#fddbc7",
    "cold_90": "#d1e5f0",
    "cold_95": "#67a9cf",
    "cold_99": "#2166ac",
}
GI_LABELS = {
    "hot_99": "Hot spot, 99% confidence",
    "hot_95": "Hot spot, 95% confidence",
    "hot_90": "Hot spot, 90% confidence",
    "cold_90": "Cold spot, 90% confidence",
    "cold_95": "Cold spot, 95% confidence",
    "cold_99": "Cold spot, 99% confidence",
}
#: KDE bands by the share of the study area's cells that are at least as dense.
KDE_BANDS = [(1.0, "#3f007d", "densest 1% of the area"), (5.0, "#6a51a3", "densest 5%"),
             (10.0, "#9e9ac8", "densest 10%"), (25.0, "#dadaeb", "densest 25%")]
PATROL_COLOUR = "#111111"
TOWN_CENTRE_COLOUR = "#1b7837"
CLUSTER_COLOUR = "#e08214"
DISTRICT_COLOUR = "#333333"
WARD_COLOUR = "#8c8c8c"
#: map-label text colours (contrast with a white halo and the page background at least 4.5:1, checked by a test)
WARD_LABEL_COLOUR = "#555555"
STREET_LABEL_COLOUR = "#3a3a3a"
MAP_POINT_COLOUR = "#4d4d4d"
ROAD_COLOUR = "#b9b4a8"
MAP_BACKGROUND = "#f4f3ef"

#: simplification tolerances in metres (BNG) for display
SIMPLIFY_BOUNDARY_M = 10.0
SIMPLIFY_AREA_M = 2.0
SIMPLIFY_CLUSTER_M = 8.0
#: patrol areas listed beside the PNG map
PNG_MAX_LISTED = 14
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'


@dataclasses.dataclass
class SelectionView:
    """Everything drawn for one crime selection (e.g. "ASB") in one study area.

    ``cells``: grid cells (EPSG:27700) with ``cell_id``, ``row``, ``col``,
    ``count``, ``gi_z``, ``gi_q``, ``gi_class`` and ``kde_top_pct`` (the share
    of the area's cells at least as dense, in %).  ``patrol_areas``: polygons
    with ``patrol_area_id``, ``rank``, ``name`` and the popup columns (any of
    :data:`POPUP_FIELDS`).  ``clusters``: polygons with ``cluster_id``,
    ``count``, ``n_locations``, ``label``.  ``grid``: the lattice parameters
    (``x0``, ``y0``, ``cell_size``, ``shape``) for the KDE contours.
    """

    name: str
    cells: gpd.GeoDataFrame
    patrol_areas: gpd.GeoDataFrame
    clusters: gpd.GeoDataFrame | None = None
    grid: dict | None = None
    note: str = ""
    #: Gi* classes present among the cells, strongest first (the legend lists these only); None: all
    classes: list[str] | None = None
    #: what the selection counts, in words (e.g. "13 police.uk crime types; anti-social behaviour not included")
    definition: str = ""
    #: the name shown on the map (e.g. "All crime (excl. ASB)"); the selection's name when empty
    label: str = ""


@dataclasses.dataclass
class MapView:
    """One map: a study area, its context layers and its crime selections."""

    slug: str
    title: str
    period_label: str
    study_area: gpd.GeoDataFrame
    selections: list[SelectionView]
    districts: gpd.GeoDataFrame | None = None
    town_centres: gpd.GeoDataFrame | None = None
    wards: gpd.GeoDataFrame | None = None
    default_selection: str | None = None
    source: str = "police.uk, OGL v3"
    notes: list[str] = dataclasses.field(default_factory=list)
    #: town centre × selection: ``town_centre_name, selection, count, change_h2_vs_h1_pct, hot_cells, patrol_areas``
    town_centre_summary: pd.DataFrame | None = None
    #: police.uk map points (BNG ``x, y``, ``label``, ``count``): the anonymised "On or near …" locations
    map_points: pd.DataFrame | None = None
    #: street/place names to label (BNG ``x, y``, ``label``, ``count``, ``in_patrol``), in placing order
    street_labels: pd.DataFrame | None = None
    #: optional vector roads (``name``, ``road_class``, line geometries) from the data home
    roads: gpd.GeoDataFrame | None = None
    #: offer a web-tile background (needs internet); off unless the user opts in
    web_tiles: bool = False
    #: the two halves of the period compared in "trend", e.g. ("Jan–Jun 2025", "Jul–Dec 2025")
    half_labels: tuple[str, str] | None = None
    #: how the map was made, in technical terms (shown one click away)
    technical_notes: list[str] = dataclasses.field(default_factory=list)


#: patrol-area popup rows: column -> label (shown when the column is present)
POPUP_FIELDS = [
    ("district_name", "District"),
    ("main_location", "Main location"),
    ("ward_name", "Ward"),
    ("town_centre", "Town centre"),
    ("count", "Crimes in the period"),
    ("trend", "Trend"),
    ("top_crime_types", "Commonest records here (all police.uk types, ASB included)"),
    ("area_km2", "Area (km²)"),
    ("pai", "Crime per km², times the district's average"),
    ("hour_of_week", "Busiest times"),
]
#: technical popup rows, one click away ("details"): column -> label
POPUP_TECHNICAL = [
    ("pai", "PAI (prediction accuracy index: share of crime / share of area)"),
    ("harm_total", "Harm (Crime Severity Score-weighted)"),
    ("peak_gi_z", "Peak Getis-Ord Gi* z"),
    ("patrol_area_id", "Id"),
]



def _esc(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "–"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return str(value)

