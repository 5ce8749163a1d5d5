"""Where points fall: boundaries, point-in-area assignment, grids, weights and counts.

Every table here is in British National Grid (EPSG:27700); a boundary without
a CRS, or points and areas in different CRSs, are a
:class:`~hotspots._errors.CRSError`, never guessed.

Modules
-------
boundaries
    :func:`read_boundary`, :func:`read_user_areas`, :class:`Geography` (the
    areas of one police force, loaded lazily from a data home) and
    :data:`DATA_FILES` (which file serves which layer).
assign
    :func:`assign_points`: point-in-polygon assignment with a documented
    boundary rule; :func:`~hotspots.geo.assign.place_by_lsoa`: records placed
    in the study area by police.uk's own LSOA code (polygons only without one).
coverage
    :func:`~hotspots.geo.coverage.coverage`: the share of located records each
    area table counts, per area type and per district, with warnings.
grid
    :func:`choose_cell_size`, :func:`make_grid` (square or hexagonal cells
    clipped to the study area), :func:`assign_to_cells`.
weights
    :func:`grid_weights`: queen, rook and distance-band weights between cells.
aggregate
    :func:`count_in_areas` (the notebook verb), :func:`count_points`,
    :func:`add_groups`, :func:`resolve_periods`, :func:`rates`,
    :func:`reconcile_districts`.
_lattice, _study_area, _lookups
    Private: lattice arithmetic; validating the study area of a grid; ONS
    lookup column names and the LSOA → CSP key (CSPs that follow old districts).
"""

from hotspots.geo.aggregate import (
    Period,
    Periods,
    add_groups,
    count_in_areas,
    count_points,
    rates,
    reconcile_districts,
    resolve_periods,
)
from hotspots.geo.assign import assign_points
from hotspots.geo.boundaries import DATA_FILES, Geography, default_town_centres, read_boundary, read_user_areas
from hotspots.geo.grid import assign_to_cells, choose_cell_size, make_grid
from hotspots.geo.weights import grid_weights

__all__ = [
    "read_boundary",
    "read_user_areas",
    "default_town_centres",
    "Geography",
    "DATA_FILES",
    "assign_points",
    "choose_cell_size",
    "make_grid",
    "assign_to_cells",
    "grid_weights",
    "count_in_areas",
    "count_points",
    "add_groups",
    "Period",
    "Periods",
    "resolve_periods",
    "rates",
    "reconcile_districts",
]
