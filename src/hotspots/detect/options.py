"""Options of the hotspots analysis (the ``[hotspots]`` section of the config, as plain values) and its constants.

The stage (:mod:`hotspots.stages.hotspots`) reads and validates the config
section into a :class:`HotspotConfig`; everything in :mod:`hotspots.detect`
takes the dataclass, never the settings.
"""

from __future__ import annotations

import dataclasses

from hotspots.detect.patrol import PATROL_MIN_CELLS_PER_AREA, patrol_cell_cap
from hotspots.geo import grid as gridmod

__all__ = [
    "DEFAULT_SELECTIONS", "HotspotConfig", "CLUSTER_EPS_M", "MAP_MAX_CLUSTERS", "STABILITY_TOP_SHARE",
    "EMERGING_ALPHA", "EMERGING_FINAL_SHARE", "cell_size_for",
]

DEFAULT_SELECTIONS = ("All crime", "ASB", "Violence", "Neighbourhood crime", "Night-time economy", "Burglary",
                      "Vehicle crime")

#: DBSCAN neighbourhood radius (m): about a street block; police.uk snap points are ~100 m apart in towns
CLUSTER_EPS_M = 150.0
#: clusters drawn per selection on a map (the largest; clusters.csv has all)
MAP_MAX_CLUSTERS = 40
#: share of cells counted as "top" in the stability comparison
STABILITY_TOP_SHARE = 0.05
#: emerging hot spots: significance of a monthly Gi* bin (after FDR), and the share of months that is "most"
EMERGING_ALPHA = 0.05
EMERGING_FINAL_SHARE = 0.9


@dataclasses.dataclass(frozen=True)
class HotspotConfig:
    """Options of the hotspots analysis: the ``[hotspots]`` section of the config, as plain values (all optional).

    crime_types
        Selections: crime groups from ``[crime_groups]`` or police.uk categories.
    shape
        ``"square"`` (default) or ``"hex"``.
    cell_size
        Metres; absent = chosen per study area (:func:`hotspots.geo.grid.choose_cell_size`).
    rank_by
        ``"count"`` (default) or ``"harm"`` (CSS-weighted; ASB has no weight and is ranked by count).
    top_n
        Patrol areas kept per district and selection (default 5).
    patrol_confidence
        Gi* confidence a cell needs to join a patrol area: 90, 95 (default) or 99.
    min_count
        Crimes a patrol area needs in the analysis period (default: one a month, 12 for a year).
    max_area_km2
        Largest patrol area (default 0.5 km², a town centre a beat team can walk).  A bigger connected
        region of hot cells is cut down to its busiest cores (see :func:`core_cells`).
    permutations, seed
        Local Moran permutations (default 999) and their seed (default 12345).
    cluster_method
        ``"dbscan"`` (default) or ``"hdbscan"``.
    maps
        Write the inspectors' maps (default true).
    map_selection
        Selection shown first on the maps and drawn on the PNGs (default: the first selection).
    map_tiles
        Offer an OpenStreetMap web-tile background on the HTML maps (default false: the maps need no
        network; street names come from the police.uk locations and ``<data>/roads``).
    """

    crime_types: tuple[str, ...] = DEFAULT_SELECTIONS
    shape: str = "square"
    cell_size: float | None = None
    rank_by: str = "count"
    top_n: int = 5
    patrol_confidence: int = 95
    min_count: int | None = None
    max_area_km2: float = 0.5
    permutations: int = 999
    seed: int = 12345
    cluster_method: str = "dbscan"
    maps: bool = True
    map_selection: str | None = None
    map_tiles: bool = False

    @property
    def patrol_classes(self) -> tuple[str, ...]:
        return {90: ("hot_99", "hot_95", "hot_90"), 95: ("hot_99", "hot_95"), 99: ("hot_99",)}[self.patrol_confidence]



def cell_size_for(geometry, cfg: HotspotConfig, *, patrol: bool) -> tuple[float, str]:
    """Cell size (m) for a study area, and why: the options', else sfhotspot's rule (capped at patrol scale for districts).

    Examples
    --------
    >>> import shapely
    >>> cell_size_for(shapely.box(0, 0, 3000, 5000), HotspotConfig(), patrol=True)[0]
    100.0
    """
    if cfg.cell_size is not None:
        return cfg.cell_size, f"cell size {cfg.cell_size:,.0f} m from [hotspots] cell_size in the config"
    size, reason = gridmod.choose_cell_size(geometry)
    if not patrol:
        return size, reason
    cap = patrol_cell_cap(cfg.max_area_km2)
    if size > cap:
        reason = (f"cell size {cap:,.0f} m chosen automatically: the map rule ({reason.split(': ', 1)[-1]}) gives "
                  f"{size:,.0f} m, capped at {cap:,.0f} m so that a patrol area of at most {cfg.max_area_km2:g} km² "
                  f"is drawn with at least {PATROL_MIN_CELLS_PER_AREA} cells")
        size = cap
    return size, reason

