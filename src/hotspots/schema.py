"""Canonical column names: the output contract lives here, in one place.

Analysts build spreadsheets and GIS projects on these tables, so names and
order are stable.  Tests check every written table against these lists.
"""

from __future__ import annotations

#: CRS used for all computation (British National Grid, metres).
BNG = "EPSG:27700"
#: CRS of police.uk coordinates and web maps.
WGS84 = "EPSG:4326"

# --- points (one row per kept input record) ---------------------------------
POINT_COLUMNS = [
    "record_id",      # police.uk Crime ID, or "" for ASB / force exports without ids
    "month",          # "YYYY-MM"
    "crime_type",     # police.uk category (or mapped force offence type)
    "x",              # easting, EPSG:27700, metres
    "y",              # northing, EPSG:27700, metres
    "location",       # police.uk "On or near ..." text
    "lsoa_code",      # as published (2011 or 2021 vintage)
    "lsoa21_code",    # harmonised to LSOA 2021 ("" when not resolvable)
    "outcome",        # last outcome category
    "force",          # force slug, e.g. "hertfordshire"
    "source_file",    # file the row came from (relative to the data home when possible)
    "source_row",     # 1-based data row number within that file (header excluded)
]

# --- areas -------------------------------------------------------------------
AREA_COLUMNS = [
    "area_type",      # force | district | csp | lsoa | ward | town_centre | grid | user
    "area_code",
    "area_name",
    "district_code",  # containing district where meaningful ("" otherwise)
    "population",     # Census 2021 usual residents (NaN when not defined, e.g. grid cells)
    "area_km2",
    "geometry",
]

# --- counts / rates ----------------------------------------------------------
COUNT_COLUMNS = ["area_type", "area_code", "area_name", "month", "crime_type", "count"]
RATE_COLUMNS = [
    "area_type", "area_code", "area_name", "period", "months", "crime_type", "count",
    "population", "rate_per_1000", "area_km2", "rate_per_km2",
]

#: The comparisons an evaluation's ``control`` may name (the evaluation's and the config check's one list).
EVALUATION_CONTROLS = ("rest_of_county", "rest_of_district", "matched")

#: The crime type used for anti-social behaviour in police.uk files.
ASB = "Anti-social behaviour"

#: police.uk street-level crime categories (2013 onwards).
POLICE_UK_CRIME_TYPES = [
    "Anti-social behaviour",
    "Bicycle theft",
    "Burglary",
    "Criminal damage and arson",
    "Drugs",
    "Other crime",
    "Other theft",
    "Possession of weapons",
    "Public order",
    "Robbery",
    "Shoplifting",
    "Theft from the person",
    "Vehicle crime",
    "Violence and sexual offences",
]

#: Header of police.uk street-level files.
POLICE_UK_STREET_HEADER = [
    "Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude",
    "Location", "LSOA code", "LSOA name", "Crime type", "Last outcome category", "Context",
]

# --- row accounting: named reasons a row is not used -------------------------
DROP_REASONS = {
    "malformed_row": "row could not be parsed (wrong number of fields, bad month or number)",
    "no_coordinates": "no longitude/latitude (or easting/northing) in the record",
    "outside_uk": "coordinates outside Great Britain's bounds (likely swapped or corrupt)",
    "outside_month_range": "month outside the requested range",
    "unknown_crime_type": "crime type not in the known categories or the mapping",
    "duplicate_crime_id": "repeats a Crime ID already kept (first occurrence kept)",
    "duplicate_file": "file covers a force-month already read from another file",
    "outside_study_area": "no usable LSOA code and located outside the study area's LSOAs",
    "lsoa_outside_force_area": "police.uk's LSOA code for the record lies outside the force area",
}
