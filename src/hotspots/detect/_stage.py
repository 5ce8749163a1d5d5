"""The hotspots stage: grid hotspots, clusters, emerging classes, patrol areas, maps.

For the analysis period (``ctx.periods.current``) and each crime selection of
``[hotspots] crime_types``, for the county and for each district:

1. a grid clipped to the study area (:func:`hotspots.grid.make_grid`; cell size
   chosen per study area when ``cell_size`` is absent -- sfhotspot's rule, never
   below the 100 m snapping floor, and for districts capped at the patrol
   scale (:func:`patrol_cell_cap`) -- and recorded with its reason);
2. counts and harm per cell; Getis-Ord Gi* (queen, self included) with
   Benjamini-Hochberg FDR across the study area; local Moran quadrants
   (seeded permutations); quartic KDE with a two-axis bandwidth; DBSCAN (or
   HDBSCAN) clusters on unique snapped locations weighted by their counts;
3. emerging hot spot classes from a Gi* per month across the months present
   (missing months are NaN, never zeros); stability of the top cells between
   the seasonally matched comparison months (2024-01..04 vs 2025-01..04 for
   Hertfordshire) and the concentration of crime in the top 1/5/10% of cells;
4. patrol areas for each district: significant hot cells (a connected region
   bigger than ``max_area_km2`` cut to its busiest cores, :func:`core_cells`),
   contiguous cells merged, areas under ``min_count`` crimes dropped,
   ranked by count or harm, top N kept, stable ids, named from the containing
   ward, town centre and the commonest street, with counts by crime type,
   trend and harm (and an hour-of-week profile when the points have times);
5. a town-centre view (hotspots inside each town centre, a summary table);
6. the inspectors' maps (:mod:`hotspots.maps`).

This module orchestrates; the statistics live in :mod:`hotspots.stats` and
:mod:`hotspots.detect`, and nothing here draws.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from hotspots.detect import _detect as detect
from hotspots.geo import grid as gridmod
from hotspots.detect.gistar import _gi_star_periods, gi_star
from hotspots.outliers.concentration import concentration
from hotspots.detect.moran import local_moran
from hotspots.detect.trend import mann_kendall
from hotspots._errors import ConfigError, ValidationError
from hotspots._parallel import process_map
from hotspots.geo.boundaries import assign_points
from hotspots.harm import harm_of, load_harm_weights
from hotspots.config import expand_crime_types
from hotspots.schema import ASB, BNG, POLICE_UK_CRIME_TYPES, WGS84

DEFAULT_SELECTIONS = ("All crime", "ASB", "Violence", "Neighbourhood crime", "Night-time economy", "Burglary",
                      "Vehicle crime")

#: police.uk "On or near ..." place labels that are not street names
GENERIC_LOCATIONS = {
    "Parking Area", "Supermarket", "Petrol Station", "Shopping Area", "Sports/Recreation Area", "Pedestrian Subway",
    "Nightclub", "Police Station", "Park/Open Space", "Hospital", "Further/Higher Educational Building",
    "Theatre/Concert Hall", "Bus/Coach Station", "Prison", "Airport/Airfield", "Conference/Exhibition Centre",
    "Train Station", "Railway Station", "Cinema", "Hotel", "Bus Station", "Nursing Home",
}

GRID_CELL_COLUMNS = [
    "study_area_type", "study_area_code", "study_area_name", "selection", "cell_id", "row", "col", "x_centre",
    "y_centre", "cell_area_km2", "count", "harm", "gi_z", "gi_p", "gi_q", "gi_class", "moran_i", "moran_p", "moran_q",
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

#: DBSCAN neighbourhood radius (m): about a street block; police.uk snap points are ~100 m apart in towns
CLUSTER_EPS_M = 150.0
#: a full-size patrol area is drawn with at least this many cells (sets the cap on automatic district cells)
PATROL_MIN_CELLS_PER_AREA = 12
#: clusters drawn per selection on a map (the largest; clusters.csv has all)
MAP_MAX_CLUSTERS = 40
#: share of cells counted as "top" in the stability comparison
STABILITY_TOP_SHARE = 0.05
#: emerging hot spots: significance of a monthly Gi* bin (after FDR), and the share of months that is "most"
EMERGING_ALPHA = 0.05
EMERGING_FINAL_SHARE = 0.9


# --------------------------------------------------------------------------- configuration
@dataclasses.dataclass(frozen=True)
class HotspotConfig:
    """``[hotspots]`` settings (all optional).

    crime_types
        Selections: crime groups from ``[crime_groups]`` or police.uk categories.
    shape
        ``"square"`` (default) or ``"hex"``.
    cell_size
        Metres; absent = chosen per study area (:func:`hotspots.grid.choose_cell_size`).
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

    @property
    def patrol_classes(self) -> tuple[str, ...]:
        return {90: ("hot_99", "hot_95", "hot_90"), 95: ("hot_99", "hot_95"), 99: ("hot_99",)}[self.patrol_confidence]


def hotspot_config(settings) -> HotspotConfig:
    """Read and validate ``[hotspots]``; every problem is reported at once."""
    raw = dict(settings.extra.get("hotspots", {}) or {})
    fields = {f.name for f in dataclasses.fields(HotspotConfig)}
    problems: list[str] = []
    unknown = sorted(set(raw) - fields)
    if unknown:
        problems.append(f"unknown key(s) {unknown}; valid keys are: {', '.join(sorted(fields))}")
    kw: dict[str, Any] = {}
    if "crime_types" in raw:
        ct = raw["crime_types"]
        if not isinstance(ct, list) or not ct or not all(isinstance(c, str) for c in ct):
            problems.append(f"crime_types = {ct!r} must be a non-empty list of group or category names")
        else:
            kw["crime_types"] = tuple(ct)
    if "shape" in raw:
        if raw["shape"] not in ("square", "hex"):
            problems.append(f"shape = {raw['shape']!r} must be \"square\" or \"hex\"")
        kw["shape"] = raw["shape"]
    if "cell_size" in raw:
        cs = raw["cell_size"]
        if isinstance(cs, bool) or not isinstance(cs, (int, float)) or not math.isfinite(cs) or cs < gridmod.SNAPPING_FLOOR_M:
            problems.append(f"cell_size = {cs!r} must be a number of metres >= {gridmod.SNAPPING_FLOOR_M:.0f} "
                            "(police.uk locations are snapped; smaller cells mean nothing); omit it to choose automatically")
        else:
            kw["cell_size"] = float(cs)
    if "rank_by" in raw:
        if raw["rank_by"] not in ("count", "harm"):
            problems.append(f"rank_by = {raw['rank_by']!r} must be \"count\" or \"harm\"")
        kw["rank_by"] = raw["rank_by"]
    for key, lo in (("top_n", 1), ("permutations", 1), ("seed", 0), ("min_count", 1)):
        if key in raw:
            v = raw[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                problems.append(f"{key} = {v!r} must be an integer >= {lo}")
            kw[key] = v
    if "max_area_km2" in raw:
        v = raw["max_area_km2"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 100:
            problems.append(f"max_area_km2 = {v!r} must be a positive number of km² (e.g. 0.5)")
        else:
            kw["max_area_km2"] = float(v)
    if "patrol_confidence" in raw:
        if raw["patrol_confidence"] not in (90, 95, 99):
            problems.append(f"patrol_confidence = {raw['patrol_confidence']!r} must be 90, 95 or 99")
        kw["patrol_confidence"] = raw["patrol_confidence"]
    if "cluster_method" in raw:
        if raw["cluster_method"] not in ("dbscan", "hdbscan"):
            problems.append(f"cluster_method = {raw['cluster_method']!r} must be \"dbscan\" or \"hdbscan\"")
        kw["cluster_method"] = raw["cluster_method"]
    if "maps" in raw:
        if not isinstance(raw["maps"], bool):
            problems.append(f"maps = {raw['maps']!r} must be true or false")
        kw["maps"] = raw["maps"]
    if "map_selection" in raw:
        kw["map_selection"] = str(raw["map_selection"])
    if not problems:
        cfg = HotspotConfig(**kw)
        sels = resolve_selections(cfg.crime_types, settings.crime_groups, problems)
        if cfg.map_selection is not None and cfg.map_selection not in sels:
            problems.append(f"map_selection = {cfg.map_selection!r} is not one of crime_types {list(cfg.crime_types)}")
    if problems:
        raise ConfigError(
            f"{settings.source or 'config'}: [hotspots] has {len(problems)} problem(s):\n  - " + "\n  - ".join(problems),
            hint="see the [hotspots] section in README.md; omit a key to use its default",
        )
    return cfg


def resolve_selections(names: Sequence[str], groups: dict[str, Sequence[str]], problems: list[str] | None = None
                       ) -> dict[str, tuple[str, ...]]:
    """Selection name -> police.uk categories (a configured group, or one category).

    >>> resolve_selections(["Burglary", "ASB"], {"ASB": ("Anti-social behaviour",)})
    {'Burglary': ('Burglary',), 'ASB': ('Anti-social behaviour',)}
    """
    out, bad = expand_crime_types(names, groups)
    if bad:
        msg = (f"crime_types {bad} are neither crime groups ({', '.join(groups)}) nor police.uk categories "
               f"({', '.join(POLICE_UK_CRIME_TYPES)})")
        if problems is None:
            raise ConfigError(msg, hint="add the group under [crime_groups] or fix the spelling")
        problems.append(msg)
    return out


def slug(name: str) -> str:
    """``"Night-time economy"`` -> ``"night-time-economy"``."""
    return re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-") or "x"


# --------------------------------------------------------------------------- study areas
@dataclasses.dataclass
class StudyArea:
    area_type: str  # "county" | "district"
    code: str
    name: str
    geometry: Any
    cell_size: float
    cell_size_reason: str


@dataclasses.dataclass
class Inputs:
    """What the analysis needs from the pipeline context (also built by tests)."""

    points: pd.DataFrame  # x, y, month, crime_type, location (+ datetime)
    current: tuple[str, ...]
    comparison: tuple[str, ...]  # seasonally matched earlier months (may be empty)
    change_current: tuple[str, ...]
    months_all: tuple[str, ...]  # first..last month present, gaps included
    months_present: tuple[str, ...]
    county: StudyArea
    districts: list[StudyArea]
    wards: gpd.GeoDataFrame
    town_centres: gpd.GeoDataFrame
    selections: dict[str, tuple[str, ...]]
    harm_weights: pd.Series
    _codes: Any = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def codes(self) -> PointCodes:
        """The points as arrays and integer codes (built on first use)."""
        if self._codes is None:
            self._codes = PointCodes.of(self.points, self.harm_weights)
        return self._codes


def _lookup(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``table[codes]`` with code -1 (missing) mapping to False."""
    return np.append(table, False)[codes]


@dataclasses.dataclass
class PointCodes:
    """The points as plain arrays: coordinates, and integer codes for the text columns.

    The text columns are pyarrow-backed strings: converting or comparing them
    per selection, area and patrol area cost most of the stage's time.  They
    are factorised once; selections and periods become small lookup tables
    indexed by the codes.
    """

    x: np.ndarray
    y: np.ndarray
    month: np.ndarray  # code into month_labels, -1 when missing
    month_labels: np.ndarray
    crime_type: np.ndarray  # code into type_labels, -1 when missing
    type_labels: np.ndarray
    name: np.ndarray  # code into names: the location without "On or near ", -1 when that is empty
    names: np.ndarray
    is_street: np.ndarray  # per name: a street, not a generic place label
    harm: np.ndarray  # harm weight per point (NaN for ASB)

    @classmethod
    def of(cls, points: pd.DataFrame, harm_weights: pd.Series) -> PointCodes:
        month, month_labels = pd.factorize(points["month"])
        crime_type, type_labels = pd.factorize(points["crime_type"])
        location, location_labels = pd.factorize(points["location"], use_na_sentinel=False)
        stripped = pd.Series(location_labels).map(_strip_location)
        name_of_location, names = pd.factorize(stripped)
        names = np.asarray(names, dtype=object)
        empty = np.flatnonzero(names == "")
        if len(empty):
            name_of_location = np.where(name_of_location == empty[0], -1, name_of_location)
        return cls(
            x=points["x"].to_numpy(float), y=points["y"].to_numpy(float),
            month=month, month_labels=np.asarray(month_labels, dtype=object),
            crime_type=crime_type, type_labels=np.asarray(type_labels, dtype=object),
            name=name_of_location[location], names=names,
            is_street=np.array([n not in GENERIC_LOCATIONS and "/" not in n for n in names], dtype=bool),
            harm=harm_of(points["crime_type"], harm_weights),
        )

    def in_months(self, months: Sequence[str]) -> np.ndarray:
        """Per point: is its month one of ``months`` (as ``np.isin(month, months)``)."""
        return _lookup(np.isin(self.month_labels, list(months)), self.month)

    def of_types(self, crime_types: Sequence[str]) -> np.ndarray:
        """Per point: is its crime type one of ``crime_types``."""
        return _lookup(np.isin(self.type_labels, list(crime_types)), self.crime_type)

    def month_position(self, months: Sequence[str]) -> np.ndarray:
        """Per point: the position of its month in ``months`` (-1 when not there)."""
        pos = {m: i for i, m in enumerate(months)}
        table = np.array([pos.get(m, -1) for m in self.month_labels] + [-1], dtype=np.int64)
        return table[self.month]


def _ranked_counts(group: np.ndarray, code: np.ndarray, n_codes: int):
    """Counts of ``code`` within each group, ordered as ``value_counts`` orders them.

    ``value_counts`` sorts by count, descending, ties in order of first
    appearance; rows with group or code -1 are left out.  Returns (group,
    code, count) sorted by group, then in that order.
    """
    keep = (group >= 0) & (code >= 0)
    key = group[keep].astype(np.int64) * n_codes + code[keep]
    unique, first, count = np.unique(key, return_index=True, return_counts=True)
    groups, codes = np.divmod(unique, n_codes)
    order = np.lexsort((first, -count, groups))
    return groups[order], codes[order], count[order]


def _group_bounds(groups: np.ndarray) -> list[tuple[int, int, int]]:
    """(group, start, end) of each run of equal values in sorted ``groups``."""
    if len(groups) == 0:
        return []
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    ends = np.r_[starts[1:], len(groups)]
    return list(zip(groups[starts].tolist(), starts.tolist(), ends.tolist()))


def _location_summaries(group: np.ndarray, codes: PointCodes, rows: np.ndarray, n_groups: int, k: int = 2
                        ) -> tuple[list[str], list[str]]:
    """Per group of points: (commonest street, "the k commonest location labels (count); ...").

    ``rows``: the points (positions in ``codes``, in the points' order) and
    ``group`` the group of each (-1: none).  Location texts lose "On or near ";
    they are ranked as ``value_counts`` ranks them (most frequent first, ties
    in order of first appearance); the street is the first that is not a
    generic place label (:data:`GENERIC_LOCATIONS`) nor a "/" junction, else
    the commonest label.  Groups without located points get ("", "").
    """
    street, top = [""] * n_groups, [""] * n_groups
    groups, name, count = _ranked_counts(group, codes.name[rows], len(codes.names))
    for g, start, end in _group_bounds(groups):
        streets = np.flatnonzero(codes.is_street[name[start:end]])
        street[g] = codes.names[name[start + streets[0]] if len(streets) else name[start]]
        top[g] = "; ".join(f"{codes.names[name[j]]} ({int(count[j])})" for j in range(start, min(end, start + k)))
    return street, top


@dataclasses.dataclass
class SelectionResult:
    cells: gpd.GeoDataFrame
    clusters: pd.DataFrame
    cluster_shapes: gpd.GeoDataFrame
    emerging: pd.DataFrame
    stability: dict
    patrol_areas: gpd.GeoDataFrame | None = None
    patrol_counts: pd.DataFrame | None = None
    patrol_hours: pd.DataFrame | None = None
    note: str = ""
    summary: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class AreaResult:
    area: StudyArea
    grid: gpd.GeoDataFrame
    selections: dict[str, SelectionResult]


def patrol_cell_cap(max_area_km2: float, min_cells: int = PATROL_MIN_CELLS_PER_AREA) -> float:
    """Largest cell (m, a multiple of 50, >= the 100 m floor) for which a full-size patrol area holds ``min_cells`` cells.

    >>> patrol_cell_cap(0.5)
    200.0
    """
    side = math.sqrt(max_area_km2 * 1e6 / min_cells)
    return max(gridmod.SNAPPING_FLOOR_M, math.floor(side / 50.0) * 50.0)


def _cell_size(geometry, cfg: HotspotConfig, *, patrol: bool) -> tuple[float, str]:
    """Cell size for a study area: the config's, else sfhotspot's rule (capped at patrol scale for districts)."""
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


# --------------------------------------------------------------------------- per-area analysis
def _bincount(idx: np.ndarray, n: int, weights=None) -> np.ndarray:
    if weights is None:
        return np.bincount(idx, minlength=n).astype(float)
    return np.bincount(idx, weights=weights, minlength=n)


def _top_pct(values: np.ndarray) -> np.ndarray:
    """Share (%) of cells at least as high as each cell (1 = the densest 1%); 100 for zero density."""
    n = len(values)
    if n == 0:
        return np.array([])
    ranks = pd.Series(-values).rank(method="max").to_numpy()
    out = ranks / n * 100.0
    return np.where(values > 0, out, 100.0)


def analyse_area(inputs: Inputs, area: StudyArea, cfg: HotspotConfig, *, patrol: bool) -> AreaResult:
    """Grid hotspots, KDE, clusters, emerging classes, stability (and patrol areas) for one study area; no I/O."""
    grid = gridmod.make_grid(area.geometry, area.cell_size, shape=cfg.shape, crs=BNG)
    n = len(grid)
    codes = inputs.codes
    cell = gridmod.assign_to_cells(codes.x, codes.y, grid)
    inside = cell >= 0
    weights = gridmod.grid_weights(grid, neighbourhood="queen", include_self=True)
    in_current = codes.in_months(inputs.current)
    harm = codes.harm
    monthly = _MonthlyCounts(inputs, codes, cell, n)
    # the columns every selection's table shares (text columns built once: converting text is the slow part)
    shared = {"study_area_type": _text(area.area_type, n), "study_area_code": _text(area.code, n),
              "study_area_name": _text(area.name, n)}
    grid_columns = {c: grid[c].array for c in grid.columns}
    town_centre = pd.array(_town_centre_of_cells(grid, inputs.town_centres), dtype=_TEXT)
    no_patrol_area = _text("", n)
    results: dict[str, SelectionResult] = {}
    for sel, members in inputs.selections.items():
        in_sel = inside & codes.of_types(members)
        cur = in_sel & in_current
        counts = _bincount(cell[cur], n)
        asb_only = all(m == ASB for m in members)
        harm_cells = np.full(n, np.nan) if asb_only else _bincount(cell[cur], n, np.nan_to_num(harm[cur]))
        gi = gi_star(counts, weights)
        moran = local_moran(counts, weights, permutations=cfg.permutations, seed=cfg.seed)
        kde, bandwidth, bw_reason = _kde(grid, np.column_stack([codes.x[cur], codes.y[cur]]), area.cell_size)
        pattern, emerging = _emerging(inputs, grid, weights, monthly.by_month(in_sel), area, sel)
        columns = {
            **shared, "selection": _text(sel, n), **grid_columns,
            "count": counts.astype(np.int64), "harm": harm_cells,
            "gi_z": gi["gi_z"].to_numpy(), "gi_p": gi["gi_p"].to_numpy(), "gi_q": gi["gi_q"].to_numpy(),
            "gi_class": _text_of(gi["gi_class"]),
            "moran_i": moran["moran_i"].to_numpy(), "moran_p": moran["moran_p"].to_numpy(),
            "moran_q": moran["moran_q"].to_numpy(),
            "moran_quadrant": _text_of(moran["moran_quadrant"]), "moran_class": _text_of(moran["moran_class"]),
            "kde_per_km2": kde, "kde_top_pct": _top_pct(kde),
            "emerging_class": pd.array(pattern, dtype=_TEXT),
            "town_centre": town_centre, "patrol_area_id": no_patrol_area,
        }
        cells = gpd.GeoDataFrame(columns, index=grid.index, geometry="geometry", crs=BNG)
        cells.attrs = copy.deepcopy(grid.attrs)
        clusters, shapes = _clusters(codes, np.flatnonzero(cur), area, sel, cfg)
        stab = _stability(inputs, grid, cell, in_sel, counts, area, sel)
        res = SelectionResult(cells=cells, clusters=clusters, cluster_shapes=shapes, emerging=emerging, stability=stab)
        if patrol:
            _patrol_areas(res, inputs, grid, cell, cur, members, sel, area, cfg)
        cls = cells["gi_class"]
        res.summary = {
            "study_area_type": area.area_type, "study_area_code": area.code, "study_area_name": area.name,
            "selection": sel, "cell_size_m": area.cell_size, "cell_size_reason": area.cell_size_reason, "n_cells": n,
            "count": int(counts.sum()), "hot_99": int((cls == "hot_99").sum()), "hot_95": int((cls == "hot_95").sum()),
            "hot_90": int((cls == "hot_90").sum()), "cold_cells": int(cls.str.startswith("cold").sum()),
            "moran_hotspot_HH": int((cells["moran_class"] == "hotspot_HH").sum()), "kde_bandwidth_m": bandwidth,
            "kde_bandwidth_reason": bw_reason, "clusters": len(clusters),
            "patrol_areas": len(res.patrol_areas) if res.patrol_areas is not None else (np.nan if not patrol else 0),
            "note": res.note,
        }
        results[sel] = res
    return AreaResult(area=area, grid=grid, selections=results)


class _MonthlyCounts:
    """Counts per cell and month (``inputs.months_all``) of a selection of points, in one bincount."""

    def __init__(self, inputs: Inputs, codes: PointCodes, cell: np.ndarray, n_cells: int):
        self.months = list(inputs.months_all)
        self.n_cells = n_cells
        self.cell = cell
        self.column = codes.month_position(self.months)

    def by_month(self, in_sel: np.ndarray) -> np.ndarray:
        """(n_cells, n_months) float counts of the selected points (months outside ``months_all`` left out)."""
        sel_idx = np.flatnonzero(in_sel)
        col = self.column[sel_idx]
        ok = col >= 0
        n, m = self.n_cells, len(self.months)
        flat = col[ok] * n + self.cell[sel_idx][ok]
        return np.bincount(flat, minlength=n * m).reshape(m, n).T.astype(float)


#: pandas' text dtype (pyarrow-backed ``str``), the dtype text columns get from plain strings
_TEXT = pd.Series([""]).dtype


def _text(value: str, n: int):
    """A text column of ``n`` copies of ``value`` (as a column assigned a string gets, built directly in Arrow)."""
    import pyarrow as pa

    return pd.array(pa.array([value]).take(pa.array(np.zeros(n, dtype=np.int8))), dtype=_TEXT)


def _text_of(categories: pd.Series):
    """A categorical column as text (``.astype(str)``), by taking from its categories in Arrow."""
    import pyarrow as pa

    cat = categories.array
    labels = pa.array([str(c) for c in cat.categories])
    return pd.array(labels.take(pa.array(np.asarray(cat.codes))), dtype=_TEXT)


def _town_centre_of_cells(grid: gpd.GeoDataFrame, town_centres: gpd.GeoDataFrame) -> np.ndarray:
    out = np.full(len(grid), "", dtype=object)
    if town_centres is None or len(town_centres) == 0 or len(grid) == 0:
        return out
    pairs = assign_points(grid["x_centre"].to_numpy(), grid["y_centre"].to_numpy(), town_centres, exclusive=True)
    out[pairs["point"].to_numpy()] = town_centres["area_name"].to_numpy()[pairs["area"].to_numpy()]
    return out


# ---- thin wrappers over hotspots.detect (the methods live there)
def _kde(grid: gpd.GeoDataFrame, xy: np.ndarray, cell_size: float) -> tuple[np.ndarray, float, str]:
    """Quartic KDE (per km²) at each cell centre; two-axis bandwidth, at least two cells."""
    if len(xy) < 2:
        return np.zeros(len(grid)), np.nan, "fewer than two points: no density"
    try:
        h, reason = detect.kde_bandwidth(xy[:, 0], xy[:, 1])
    except ValidationError as exc:  # all points on one line
        h, reason = 3 * cell_size, f"bandwidth {3 * cell_size:,.0f} m (three cells): {exc.message}"
    if h < 2 * cell_size:
        reason = f"bandwidth {2 * cell_size:,.0f} m (two cells; the rule gave {h:,.0f} m, below the grid's resolution)"
        h = 2 * cell_size
    res = detect.kde_quartic(xy[:, 0], xy[:, 1], bandwidth=h, grid=grid)
    return np.asarray(res.density, dtype=float), float(h), reason


def _cluster_params(n_points: int, area: StudyArea, eps_m: float) -> int:
    """Crimes needed within ``eps_m`` of a core location: 5 times what a uniform spread would put there, >= 20."""
    expected = n_points / area.geometry.area * math.pi * eps_m**2
    return int(max(20, math.ceil(5 * expected)))


def _clusters(codes: PointCodes, rows: np.ndarray, area: StudyArea, sel: str, cfg: HotspotConfig,
              eps_m: float = CLUSTER_EPS_M):
    """DBSCAN/HDBSCAN on unique snapped locations weighted by count; a summary row and a shape per cluster.

    ``rows``: the points (positions in ``codes``) of the selection in the analysis period.
    """
    def none():
        return (pd.DataFrame(columns=CLUSTER_COLUMNS),
                gpd.GeoDataFrame({"cluster_id": [], "count": [], "n_locations": [], "label": []},
                                 geometry=gpd.GeoSeries([], crs=BNG), crs=BNG))

    if len(rows) < 2:
        return none()
    x, y = codes.x[rows], codes.y[rows]
    min_crimes = _cluster_params(len(rows), area, eps_m)
    # the unique snapped locations and their counts, as cluster_locations would group them (sorted by x, then y)
    order = np.lexsort((y, x))
    xs, ys = x[order], y[order]
    first = np.r_[True, (xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1])]
    location_of = np.empty(len(rows), dtype=np.int64)
    location_of[order] = np.cumsum(first) - 1
    locations, clusters = detect.cluster_locations(xs[first], ys[first], counts=np.bincount(location_of).astype(float),
                                                   method=cfg.cluster_method, eps_m=eps_m, min_crimes=min_crimes)
    if len(clusters) == 0:
        return none()
    member = locations["cluster"].to_numpy(np.int64)[location_of]
    _, labels = _location_summaries(member, codes, rows, len(clusters))
    lon, lat = _lonlat(clusters["x_centroid"].to_numpy(), clusters["y_centroid"].to_numpy())
    table = pd.DataFrame({
        "study_area_type": area.area_type, "study_area_code": area.code, "study_area_name": area.name,
        "selection": sel, "method": cfg.cluster_method, "cluster_id": clusters["cluster"].astype(int).to_numpy(),
        "n_locations": clusters["n_locations"].to_numpy(), "count": clusters["n_crimes"].to_numpy(),
        "x": clusters["x_centroid"].round(1).to_numpy(), "y": clusters["y_centroid"].round(1).to_numpy(),
        "lon": lon, "lat": lat, "area_km2": clusters["area_km2"].to_numpy(),
        "main_location": [labels[int(c)] for c in clusters["cluster"]],
        "eps_m": eps_m, "min_count": min_crimes,
    })
    shapes = gpd.GeoDataFrame({"cluster_id": table["cluster_id"].to_numpy(), "count": table["count"].to_numpy(),
                               "n_locations": table["n_locations"].to_numpy(), "label": table["main_location"].to_numpy()},
                              geometry=clusters.geometry.values, crs=BNG)
    return table[CLUSTER_COLUMNS], shapes


def _emerging(inputs: Inputs, grid, weights, counts: np.ndarray, area: StudyArea, sel: str
              ) -> tuple[np.ndarray, pd.DataFrame]:
    """Gi* per month (NaN for months missing from the data, never zeros), then the emerging classes.

    ``counts``: (cells, months) of the selection, months as in ``inputs.months_all``.  Returns every
    cell's class (for the grid cells) and the table of the cells with a pattern (``emerging.csv``; the
    ~90% with "no pattern detected" are in the grid cells only).
    """
    n = len(grid)
    months = list(inputs.months_all)
    present = set(inputs.months_present)
    z = np.full((n, len(months)), np.nan)
    q = np.full((n, len(months)), np.nan)
    observed = [j for j, m in enumerate(months) if m in present]
    if observed:
        z_obs, q_obs = _gi_star_periods(np.ascontiguousarray(counts[:, observed].T), weights)
        z[:, observed] = z_obs.T
        q[:, observed] = q_obs.T
    em = _emerging_classes(z, q, months)
    missing = len(months) - len(present & set(months))
    pattern = np.asarray(em["pattern"])
    keep = np.flatnonzero(pattern != "no pattern detected")
    table = pd.DataFrame({
        "study_area_type": area.area_type, "study_area_code": area.code, "study_area_name": area.name,
        "selection": sel, "cell_id": grid["cell_id"].to_numpy()[keep], "emerging_class": pattern[keep],
        "n_observed_months": np.asarray(em["n_observed_months"])[keep], "n_missing_months": missing,
        "n_sig_hot": np.asarray(em["n_sig_hot"])[keep], "n_sig_cold": np.asarray(em["n_sig_cold"])[keep],
        "final_month": np.asarray(em["final_month"])[keep], "mk_z": np.asarray(em["mk_z"])[keep],
        "mk_p": np.asarray(em["mk_p"])[keep],
    })[EMERGING_COLUMNS]
    return pattern, table


def _emerging_classes(z: np.ndarray, q: np.ndarray, months: list[str]) -> dict[str, np.ndarray]:
    """:func:`hotspots.detect.emerging_hotspot_classes`, with the trend test only where it can matter.

    Every pattern needs a significant final month, or significant months 90%
    of the time; any other cell has "no pattern detected" and nothing about
    it but its class is written.  Only the possible cells (a few percent)
    are classified by detect; for the others the counts are taken as detect
    defines them and ``mk_z``/``mk_p`` are left NaN (the Mann-Kendall test
    on hundreds of thousands of insignificant series was most of the cost).
    """
    n = len(z)
    with np.errstate(invalid="ignore"):
        observed = np.isfinite(z) & np.isfinite(q)
        significant = observed & (q < EMERGING_ALPHA)
        hot, cold = significant & (z > 0), significant & (z < 0)
    n_observed = observed.sum(axis=1)
    final = z.shape[1] - 1 - np.argmax(observed[:, ::-1], axis=1) if z.shape[1] else np.zeros(n, dtype=np.int64)
    final_significant = significant[np.arange(n), final] if z.shape[1] else np.zeros(n, dtype=bool)
    mostly = significant.sum(axis=1) >= EMERGING_FINAL_SHARE * n_observed - 1e-9  # detect's tolerance
    possible = (n_observed > 0) & (final_significant | mostly)
    labels = np.array([str(m)[:7] for m in months])
    out = {
        "pattern": np.full(n, "no pattern detected", dtype=object), "mk_z": np.full(n, np.nan),
        "mk_p": np.full(n, np.nan), "n_sig_hot": hot.sum(axis=1), "n_sig_cold": cold.sum(axis=1),
        "n_observed_months": n_observed,
        "final_month": np.where(n_observed > 0, labels[final] if len(labels) else "", ""),
    }
    rows = np.flatnonzero(possible)
    em = detect.emerging_hotspot_classes(z[rows], q[rows], months=months, alpha=EMERGING_ALPHA,
                                         final_share=EMERGING_FINAL_SHARE)
    for column, values in out.items():
        values[rows] = em[column].to_numpy()
    out["pattern"] = out["pattern"].astype(str)
    return out


def _stability(inputs: Inputs, grid, cell, in_sel, current_counts: np.ndarray, area: StudyArea, sel: str) -> dict:
    """Top-5% cells in the comparison months vs the matched analysis months; concentration in the analysis period."""
    n = len(grid)
    codes = inputs.codes
    row: dict[str, Any] = {"study_area_type": area.area_type, "study_area_code": area.code, "study_area_name": area.name,
                           "selection": sel, "n_cells": n, "cell_size_m": area.cell_size}
    conc = concentration(current_counts, top_shares=(0.01, 0.05, 0.10))
    for share, label in ((0.01, "1pct"), (0.05, "5pct"), (0.10, "10pct")):
        row[f"share_top_{label}"] = float(conc.loc[np.isclose(conc["top_fraction_of_units"], share), "share_of_total"].iloc[0])
    row["count_current"] = int(current_counts.sum())
    a, b = inputs.comparison, inputs.change_current
    if not a or not b:
        row.update({"period_a": "", "period_b": "", "note": "no seasonally matched comparison months in the data"})
        return row
    ca = _bincount(cell[in_sel & codes.in_months(a)], n)
    cb = _bincount(cell[in_sel & codes.in_months(b)], n)
    row.update({"period_a": f"{a[0]}..{a[-1]}", "period_b": f"{b[0]}..{b[-1]}", "count_a": int(ca.sum()),
                "count_b": int(cb.sum())})
    if ca.sum() == 0 or cb.sum() == 0:
        row["note"] = "no crimes in one of the periods"
        return row
    st = detect.top_k_stability(ca, cb, top_share=STABILITY_TOP_SHARE, cell_area=grid["cell_area_km2"].to_numpy())
    row.update({"top_share": st["top_share"], "top_k": st["k"], "jaccard": st["jaccard"],
                "spearman_rho": st["spearman_rho"], "spearman_p": st["spearman_p"], "hit_rate_a": st["hit_rate_t1"],
                "hit_rate_b": st["hit_rate_t2"], "pai_a": st["pai_t1"], "pai_b": st["pai_t2"], "rri": st["rri"],
                "note": ""})
    return row


class _Links:
    """Queen contiguity among a fixed set of grid rows, for repeated connected-component queries on subsets.

    The weights among a subset of cells are the whole grid's restricted to
    them (they are built from lattice positions), so the links are built
    once and each query keeps the links with both ends in the subset.
    """

    def __init__(self, grid: gpd.GeoDataFrame, rows: np.ndarray):
        links = gridmod.grid_weights(grid, neighbourhood="queen", include_self=False)[rows][:, rows].tocoo()
        self.size = len(rows)
        self.a, self.b = links.row, links.col

    def components(self, members: np.ndarray) -> list[np.ndarray]:
        """Connected groups among ``members`` (ascending positions in ``rows``), in label order."""
        if len(members) == 0:
            return []
        inside = np.zeros(self.size, dtype=bool)
        inside[members] = True
        both = inside[self.a] & inside[self.b]
        local = np.full(self.size, -1, dtype=np.int64)
        local[members] = np.arange(len(members))
        # the links come row by row (from a CSR matrix) and members ascend, so the rows stay sorted
        rows = local[self.a[both]]
        indptr = np.zeros(len(members) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(members)), out=indptr[1:])
        graph = sparse.csr_matrix((np.ones(len(rows)), local[self.b[both]], indptr), shape=(len(members), len(members)))
        _, label = csgraph.connected_components(graph, directed=False)
        order = np.argsort(label, kind="stable")
        splits = np.flatnonzero(np.diff(label[order])) + 1
        return [members[g] for g in np.split(order, splits)]


def core_cells(grid: gpd.GeoDataFrame, hot: np.ndarray, value: np.ndarray, max_area_km2: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Cut connected regions of hot cells larger than ``max_area_km2`` down to their busiest cores.

    Against a district mean that includes fields and woods, a whole town can be
    one connected region of significant Gi* cells: too big to patrol.  Such a
    region is peeled: its cells with the lowest ``value`` are dropped, the rest
    split into connected parts, and each part still larger than
    ``max_area_km2`` is peeled again, until every part fits.  Parts that fit
    are kept whole; regions that fit from the start are unchanged.  The stage
    peels on the Gi* z-score, a neighbourhood sum, so the cores stay compact
    around the peaks (peeling on raw counts of snapped locations leaves
    ragged, diagonal chains of cells).

    Returns
    -------
    keep : bool array, one per grid row
    region_km2 : float array, area of the original connected hot region each cell belongs to (NaN outside)

    Examples
    --------
    >>> from shapely import box
    >>> g = gridmod.make_grid(box(0, 0, 500, 100), 100, crs="EPSG:27700")   # 5 cells in a row
    >>> keep, region = core_cells(g, np.ones(5, bool), np.array([1., 5., 9., 5., 1.]), 0.03)
    >>> keep.tolist(), region.round(2).tolist()
    ([False, True, True, True, False], [0.05, 0.05, 0.05, 0.05, 0.05])
    """
    area = grid["cell_area_km2"].to_numpy(float)
    value = np.nan_to_num(np.asarray(value, float), nan=-np.inf)
    keep = np.zeros(len(grid), dtype=bool)
    region = np.full(len(grid), np.nan)
    start = np.flatnonzero(hot)
    if len(start) == 0:
        return keep, region
    links = _Links(grid, start)  # positions below are into start
    area, value = area[start], value[start]
    for comp in links.components(np.arange(len(start))):
        region[start[comp]] = area[comp].sum()
    # peel level by level: the parts still to split are subsets of different (so non-adjacent) regions,
    # so the components of their union are theirs, found in one pass
    pending = np.arange(len(start))
    while len(pending):
        rests = []
        for comp in links.components(pending):
            if area[comp].sum() <= max_area_km2 + 1e-9:
                keep[start[comp]] = True
                continue
            rest = comp[value[comp] > value[comp].min()]
            if len(rest):
                rests.append(rest)
        pending = np.sort(np.concatenate(rests)) if rests else np.array([], dtype=np.int64)
    return keep, region


def _patrol_areas(res: SelectionResult, inputs: Inputs, grid, cell, cur, members, sel: str, area: StudyArea,
                  cfg: HotspotConfig) -> None:
    """Merge contiguous significant hot cells, rank, keep the top N, and describe each area."""
    cells = res.cells
    cls = cells["gi_class"].to_numpy(dtype=object)
    eligible = np.where(np.isin(cls, cfg.patrol_classes), cls, "not_significant")
    asb_only = all(m == ASB for m in members)
    rank_by = "harm" if cfg.rank_by == "harm" and not asb_only else "count"
    if cfg.rank_by == "harm" and asb_only:
        res.note = "ASB has no harm weight: ranked by count"
    harm = None if asb_only else cells["harm"].to_numpy()
    hot = eligible != "not_significant"
    # peel on the Gi* z (a smoothed neighbourhood sum), so cores stay compact around the peaks
    core, region_km2 = core_cells(grid, hot, cells["gi_z"].to_numpy(), cfg.max_area_km2)
    eligible = np.where(core, eligible, "not_significant")
    # Gi* is about a cell's neighbourhood: with sparse counts a few crimes (or none, next to a busy cell) can be
    # "significant"; a patrol area needs at least min_count crimes in the period (default: one a month)
    min_count = cfg.min_count if cfg.min_count is not None else len(inputs.current)
    # detect.patrol_areas gets the hot cells only (its groups, numbers and shapes are those of the whole grid);
    # ranked by count, the top N groups with min_count crimes are the top N groups, less those under min_count,
    # so it draws the shapes of N groups only
    hot_rows = np.flatnonzero(np.char.startswith(eligible.astype(str), "hot"))
    pa = detect.patrol_areas(grid.iloc[hot_rows], eligible[hot_rows], counts=cells["count"].to_numpy()[hot_rows],
                             harm=None if harm is None else harm[hot_rows], rank_by=rank_by,
                             gi_z=cells["gi_z"].to_numpy()[hot_rows], top_n=cfg.top_n if rank_by == "count" else None)
    pa = pa[pa["count"] >= min_count].sort_values("rank").head(cfg.top_n).copy()
    pa["rank"] = np.arange(1, len(pa) + 1)
    if len(pa) == 0:
        res.patrol_areas = None
        n_found = len(_Links(grid, hot_rows).components(np.arange(len(hot_rows))))
        if n_found:
            res.note = res.note or (f"{n_found} group(s) of significant hot cells, none with {min_count} or more "
                                    "crimes in the period, so no patrol areas")
        else:
            res.note = res.note or (f"no cells are significant hot spots at {cfg.patrol_confidence}% confidence "
                                    "(after FDR correction), so no patrol areas")
        return
    codes = inputs.codes
    pts = inputs.points
    cur_months = list(inputs.current)
    pos_of_id = {cell_id: i for i, cell_id in enumerate(grid["cell_id"].tolist())}
    district_total = float(cells["count"].sum())
    district_area = float(grid["cell_area_km2"].sum())
    # every patrol area's points at once: area of each cell, then of each point of the analysis period
    cell_ids = [p.split(";") for p in pa["cell_ids"]]
    positions = [np.array([pos_of_id[i] for i in ids], dtype=np.int64) for ids in cell_ids]
    area_of_cell = np.full(len(grid) + 1, -1, dtype=np.int64)  # last entry: points outside the grid
    for j, pos in enumerate(positions):
        area_of_cell[pos] = j
    rows = np.flatnonzero(codes.in_months(cur_months))
    area_of_point = area_of_cell[cell[rows]]
    in_sel = codes.of_types(members)[rows]
    sel_area = np.where(in_sel, area_of_point, -1)
    n_pa = len(pa)
    streets, top_locations = _location_summaries(sel_area, codes, rows, n_pa)
    month_pos = codes.month_position(cur_months)[rows]
    has = sel_area >= 0
    monthly = np.bincount(sel_area[has] * len(cur_months) + month_pos[has],
                          minlength=n_pa * len(cur_months)).reshape(n_pa, len(cur_months))
    trends = _trends(monthly, cur_months)
    type_area, type_code, type_count = _ranked_counts(area_of_point, codes.crime_type[rows], len(codes.type_labels))
    types_of_area = {j: [] for j in range(n_pa)}
    for j, start, end in _group_bounds(type_area):
        types_of_area[j] = [(str(codes.type_labels[type_code[i]]), int(type_count[i])) for i in range(start, end)]
    namer = _AreaNamer(inputs.wards, inputs.town_centres)
    count_of_cell = cells["count"].to_numpy()
    patrol_id_of_cell = cells["patrol_area_id"].to_numpy(dtype=object).copy()
    rows_out, type_rows, hour_frames = [], [], []
    for j, (_, p) in enumerate(pa.iterrows()):
        ids, pos = cell_ids[j], positions[j]
        pid = stable_patrol_id(area.code, sel, ids, count_of_cell[pos])
        street, top_locs = streets[j], top_locations[j]
        names = namer.name(p.geometry, street)
        trend = trends[j]
        all_types = types_of_area[j]
        for ct, c in all_types:
            type_rows.append({"patrol_area_id": pid, "selection": sel, "district_code": area.code, "crime_type": ct,
                              "count": c})
        top = "; ".join(f"{ct} {c}" for ct, c in all_types[:3])
        harm_total = float(p["harm"]) if harm is not None else np.nan
        count = int(p["count"])
        share = count / district_total * 100 if district_total > 0 else np.nan
        share_area = float(p["area_km2"]) / district_area * 100 if district_area > 0 else np.nan
        n_sel = int(monthly[j].sum())
        if "datetime" in pts.columns and n_sel:
            sel_rows = rows[sel_area == j]
            prof = detect.hour_of_week_profile(pts["datetime"].iloc[sel_rows],
                                               np.full(len(sel_rows), pid, dtype=object))
            prof = prof.rename(columns={"area_id": "patrol_area_id"})
            prof.insert(1, "selection", sel)
            hour_frames.append(prof)
            how = _busiest_hours(prof)
        elif "datetime" in pts.columns:
            how = "no crimes with a time"
        else:
            how = "not available (police.uk gives the month only)"
        rows_out.append({
            "patrol_area_id": pid, "selection": sel, "district_code": area.code, "district_name": area.name,
            "rank": int(p["rank"]), "rank_by": rank_by, "name": names["name"], "main_location": top_locs,
            "ward_code": names["ward_code"], "ward_name": names["ward_name"], "town_centre": names["town_centre"],
            "n_cells": int(p["n_cells"]), "cell_size_m": area.cell_size, "area_km2": float(p["area_km2"]),
            "hot_region_km2": float(region_km2[pos[0]]),
            "count": count, "share_of_district_pct": share, "share_of_district_area_pct": share_area,
            "pai": share / share_area if share_area else np.nan, "harm_total": harm_total,
            "harm_per_crime": harm_total / count if count and np.isfinite(harm_total) else np.nan,
            **trend, "top_crime_types": top, "hour_of_week": how, "peak_gi_z": float(p["max_gi_z"]),
            "x": float(p["x_centroid"]), "y": float(p["y_centroid"]), "cell_ids": p["cell_ids"],
            "geometry": p.geometry,
        })
        patrol_id_of_cell[pos] = pid
    res.cells["patrol_area_id"] = pd.array(patrol_id_of_cell, dtype=res.cells["patrol_area_id"].dtype)
    out = gpd.GeoDataFrame(rows_out, geometry="geometry", crs=BNG)
    out["lon"], out["lat"] = _lonlat(out["x"].to_numpy(), out["y"].to_numpy())
    res.patrol_areas = out
    res.patrol_counts = pd.DataFrame(type_rows)
    res.patrol_hours = pd.concat(hour_frames, ignore_index=True) if hour_frames else None


def _busiest_hours(profile: pd.DataFrame, k: int = 3) -> str:
    total = int(profile["count"].sum())
    if total == 0:
        return "no crimes with a time"
    top = profile.sort_values(["count", "hour_of_week"], ascending=[False, True]).head(k)
    parts = [f"{r['day']} {int(r['hour']):02d}:00 ({int(r['count'])})" for _, r in top.iterrows()]
    return f"busiest hours: {', '.join(parts)} of {total}"


# --------------------------------------------------------------------------- patrol-area descriptions
def _strip_location(loc: str) -> str:
    loc = str(loc or "").strip()
    return loc[len("On or near "):].strip() if loc.lower().startswith("on or near ") else loc


def _trends(monthly: np.ndarray, months: Sequence[str]) -> list[dict]:
    """H2 vs H1 of the analysis period and Mann-Kendall on the monthly counts, one row per area."""
    if len(monthly) == 0:
        return []
    half = len(months) // 2
    mk = mann_kendall(monthly.astype(float))
    out = []
    for row, series in enumerate(monthly):
        h1 = float(series[:half].sum())
        h2 = float(series[half:half * 2].sum()) if len(months) % 2 == 0 else float(series[-half:].sum())
        change = (h2 - h1) / h1 * 100.0 if h1 > 0 else np.nan
        mk_z, mk_p = float(mk["mk_z"].iloc[row]), float(mk["mk_p"].iloc[row])
        verdict = str(mk["mk_trend"].iloc[row])
        word = {"increasing": "rising", "decreasing": "falling"}.get(verdict, "no clear trend")
        if np.isfinite(change):
            word += f" (H2 vs H1 {change:+.0f}%)"
        out.append({"count_h1": int(h1), "count_h2": int(h2), "change_h2_vs_h1_pct": change, "mk_z": mk_z,
                    "mk_p": mk_p, "trend": word})
    return out


def stable_patrol_id(district_code: str, selection: str, cell_ids: Sequence[str], counts: Sequence[float]) -> str:
    """An id that does not depend on rank or run: district, selection and the area's peak cell.

    The peak (highest-count) cell anchors the id, so an area that grows or
    shrinks by a cell keeps its id; ties go to the smallest cell id.

    >>> stable_patrol_id("E07000103", "ASB", ["sq100_r010_c020", "sq100_r010_c021"], [5, 9])
    'E07000103-asb-sq100_r010_c021'
    """
    order = sorted(zip(cell_ids, counts), key=lambda t: (-float(t[1]), t[0]))
    return f"{district_code}-{slug(selection)}-{order[0][0]}"


class _AreaNamer:
    """Ward containing/nearest an area, the town centre it overlaps most, and a readable name."""

    def __init__(self, wards: gpd.GeoDataFrame, town_centres: gpd.GeoDataFrame):
        self.wards = wards if wards is not None and len(wards) else None
        self.town_centres = town_centres if town_centres is not None and len(town_centres) else None
        if self.wards is not None:
            self.ward_geoms = np.asarray(self.wards.geometry.values)
            self.ward_codes = self.wards["area_code"].astype(str).to_numpy()
            self.ward_names = self.wards["area_name"].astype(str).to_numpy()
        if self.town_centres is not None:
            self.tc_geoms = np.asarray(self.town_centres.geometry.values)
            self.tc_areas = shapely.area(self.tc_geoms)
            self.tc_names = self.town_centres["area_name"].astype(str).to_numpy()

    def name(self, geom, street: str) -> dict:
        rep = geom.representative_point()
        ward_code = ward_name = tc = ""
        if self.wards is not None:
            hit = np.flatnonzero(shapely.intersects(self.ward_geoms, rep))
            i = hit[0] if len(hit) else int(np.nanargmin(shapely.distance(self.ward_geoms, rep)))
            ward_code, ward_name = self.ward_codes[i], self.ward_names[i]
        if self.town_centres is not None:
            # only town centres touching the area can overlap it (the others' intersection is empty: area 0)
            overlap = np.zeros(len(self.tc_geoms))
            near = np.flatnonzero(shapely.intersects(self.tc_geoms, geom))
            overlap[near] = shapely.area(shapely.intersection(self.tc_geoms[near], geom))
            best = int(np.argmax(overlap))
            if overlap[best] > 0.2 * geom.area or overlap[best] > 0.5 * self.tc_areas[best]:
                tc = self.tc_names[best]
        if tc:
            name = f"{tc} town centre" + (f" – {street}" if street else "")
        else:
            name = (f"{street}, " if street else "") + (f"{ward_name} ward" if ward_name else "")
        return {"ward_code": ward_code, "ward_name": ward_name, "town_centre": tc, "name": name.strip(", ") or "(unnamed)"}


# --------------------------------------------------------------------------- orchestration
def build_inputs(ctx, cfg: HotspotConfig, *, districts: Sequence[str] | None = None) -> Inputs:
    """Collect the points, periods and areas the analysis needs from the pipeline context."""
    from hotspots.months import month_range

    geo = ctx.geography
    keep = ["x", "y", "month", "crime_type", "location"] + (["datetime"] if "datetime" in ctx.points.columns else [])
    points = ctx.points[keep]
    present = tuple(ctx.months_present)
    periods = ctx.periods
    county_geom = shapely.union_all(geo.force.geometry.values)
    size, reason = _cell_size(county_geom, cfg, patrol=False)
    county = StudyArea("county", str(geo.force["area_code"].iloc[0]), str(geo.force["area_name"].iloc[0]), county_geom,
                       size, reason)
    dists = []
    wanted = None if not districts else {d.lower() for d in districts}
    for _, d in geo.districts.iterrows():
        if wanted and d["area_name"].lower() not in wanted and d["area_code"].lower() not in wanted \
                and slug(d["area_name"]) not in wanted:
            continue
        size, reason = _cell_size(d.geometry, cfg, patrol=True)
        dists.append(StudyArea("district", d["area_code"], d["area_name"], d.geometry, size, reason))
    if wanted and not dists:
        raise ConfigError(f"no district matches {sorted(districts)}",
                          hint="use a district name such as 'Watford' or its ONS code: "
                          + ", ".join(geo.districts["area_name"]))
    return Inputs(
        points=points,
        current=tuple(periods.current.months),
        comparison=tuple(periods.comparison.months) if periods.comparison else (),
        change_current=tuple(periods.change_current.months) if periods.change_current else (),
        months_all=tuple(month_range(present[0], present[-1])),
        months_present=present,
        county=county,
        districts=dists,
        wards=geo.wards,
        town_centres=geo.town_centres,
        selections=resolve_selections(cfg.crime_types, ctx.settings.crime_groups),
        harm_weights=load_harm_weights(),
    )


def run_hotspots(ctx, *, districts: Sequence[str] | None = None, defer_grid_cells: bool = False,
                 while_analysing: Callable[[], Any] | None = None) -> dict[str, Any]:
    """The hotspots analysis on a prepared context; writes the tables under ``hotspots/``.

    The maps are drawn afterwards from ``ctx.results["hotspots"]`` by
    :func:`hotspots.pipeline.stage_hotspots` (maps render, they never compute).
    ``defer_grid_cells=True`` leaves the largest file, ``grid_cells.gpkg``, to
    the caller: ``ctx.results["hotspots"]["write_grid_cells"]()`` writes it
    (the pipeline writes it while the maps are drawn in worker processes).
    ``while_analysing`` is called in this process while worker processes
    analyse the study areas (the pipeline loads the map renderers then).
    """
    t0 = time.perf_counter()
    cfg = hotspot_config(ctx.settings)
    inputs = build_inputs(ctx, cfg, districts=districts)
    progress = ctx.progress
    sizes = {inputs.county.name: inputs.county.cell_size}
    reasons = {inputs.county.name: inputs.county.cell_size_reason}
    for d in inputs.districts:
        sizes[d.name] = d.cell_size
        reasons[d.name] = d.cell_size_reason
    for name, why in reasons.items():
        progress.info(f"  {name}: {why}")
    ctx.settings.record_auto("hotspots.cell_size_m", sizes,
                             "per study area: " + "; ".join(f"{k}: {v}" for k, v in reasons.items()))
    ctx.settings.record_auto("hotspots.settings", dataclasses.asdict(cfg), "[hotspots] in the config, defaults elsewhere")
    progress.info(f"  analysis period {ctx.periods.current.label}; selections: {', '.join(inputs.selections)}")

    inputs.codes  # noqa: B018 -- built once, before the workers start, so that they share it

    def analyse(job: tuple[StudyArea, bool]) -> tuple[AreaResult, float]:
        t = time.perf_counter()
        result = analyse_area(inputs, job[0], cfg, patrol=job[1])
        return _without_cell_shapes(result), time.perf_counter() - t

    jobs = [(inputs.county, False)] + [(d, True) for d in inputs.districts]
    done = [(_with_cell_shapes(res), seconds)
            for res, seconds in process_map(analyse, jobs, weights=[_workload(inputs, a) for a, _ in jobs],
                                        alongside=while_analysing)]
    county = done[0][0]
    progress.info(f"  county grid: {len(county.grid):,} cells of {inputs.county.cell_size:,.0f} m")
    district_results = []
    for res, seconds in done[1:]:
        district_results.append(res)
        n_pa = sum(len(s.patrol_areas) for s in res.selections.values() if s.patrol_areas is not None)
        progress.info(f"  {res.area.name}: {len(res.grid):,} cells of {res.area.cell_size:,.0f} m, {n_pa} patrol areas "
                      f"({seconds:.1f} s)")
    tables = write_outputs(ctx, inputs, cfg, county, district_results, grid_cells=not defer_grid_cells)
    summary: dict[str, Any] = {
        "cell_size_m": sizes,
        "selections": list(inputs.selections),
        "patrol_areas": int(len(tables["patrol_areas"])),
        "timestamps": "datetime" in inputs.points.columns,
    }
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    ctx.results["hotspots"] = {"tables": tables, "county": county, "districts": district_results, "inputs": inputs,
                               "config": cfg}
    if defer_grid_cells:
        ctx.results["hotspots"]["write_grid_cells"] = (
            lambda: write_grid_cells(ctx.out, inputs, [county] + district_results))
    return summary


# --------------------------------------------------------------------------- worker processes
def _without_cell_shapes(result: AreaResult) -> AreaResult:
    """The result with each selection's cells as a plain table: the shapes are the grid's, sent back once."""
    for sel in result.selections.values():
        cells = sel.cells
        sel.cells = pd.DataFrame(cells.drop(columns=cells.geometry.name))
        sel.cells.attrs = {"attrs": copy.deepcopy(cells.attrs), "position": cells.columns.get_loc(cells.geometry.name)}
    return result


def _with_cell_shapes(result: AreaResult) -> AreaResult:
    """Undo :func:`_without_cell_shapes`: the cell tables get the grid's shapes back, in their place."""
    shapes = result.grid.geometry
    for sel in result.selections.values():
        if isinstance(sel.cells, gpd.GeoDataFrame):
            continue
        cells, saved = sel.cells, sel.cells.attrs
        cells.insert(saved["position"], shapes.name, shapes.values)
        sel.cells = gpd.GeoDataFrame(cells, geometry=shapes.name, crs=BNG)
        sel.cells.attrs = saved["attrs"]
    return result


def _workload(inputs: Inputs, area: StudyArea) -> float:
    """Rough cost of analysing a study area, in grid cells: its cells, and a cell's worth per 20 points near it."""
    minx, miny, maxx, maxy = shapely.bounds(area.geometry)
    x, y = inputs.codes.x, inputs.codes.y
    near = int(((x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy)).sum())
    return area.geometry.area / area.cell_size**2 + near / 20


# --------------------------------------------------------------------------- outputs
def _lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(x) == 0:
        return np.array([]), np.array([])
    pts = gpd.GeoSeries(gpd.points_from_xy(x, y), crs=BNG).to_crs(WGS84)
    return np.round(pts.x.to_numpy(), 6), np.round(pts.y.to_numpy(), 6)


def _frame(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def town_centre_table(inputs: Inputs, district_results: list[AreaResult], patrol: gpd.GeoDataFrame) -> pd.DataFrame:
    """One row per town centre × selection: counts, change, hot cells and patrol areas inside."""
    tcs = inputs.town_centres
    if tcs is None or len(tcs) == 0:
        return pd.DataFrame(columns=TOWN_CENTRE_COLUMNS)
    codes = inputs.codes
    by_district = {r.area.code: r for r in district_results}
    pairs = assign_points(codes.x, codes.y, tcs, exclusive=False)
    months = list(inputs.current)
    half = len(months) // 2
    in_count = codes.in_months(months)
    in_h1 = codes.in_months(months[:half])
    in_h2 = codes.in_months(months[-half:]) if half else np.zeros(len(codes.x), dtype=bool)
    of_selection = {sel: codes.of_types(members) for sel, members in inputs.selections.items()}
    if patrol is not None and len(patrol):
        pa_sel = patrol["selection"].to_numpy(dtype=object)
        pa_district = patrol["district_code"].to_numpy(dtype=object)
        pa_geoms = np.asarray(patrol.geometry.values)
        pa_rank = patrol["rank"].to_numpy()
        pa_label = [f"#{int(r)} {i}" for r, i in zip(pa_rank, patrol["patrol_area_id"])]
    point_of_pair, tc_of_pair = pairs["point"].to_numpy(), pairs["area"].to_numpy()
    cell_tables = {}
    rows = []
    for i, tc in tcs.reset_index(drop=True).iterrows():
        res = by_district.get(tc["district_code"])
        if res is None:
            continue
        idx = point_of_pair[tc_of_pair == i]
        tc_geom = tc.geometry
        for sel in inputs.selections:
            m = of_selection[sel][idx]
            count = int(in_count[idx][m].sum())
            h1 = int(in_h1[idx][m].sum())
            h2 = int(in_h2[idx][m].sum()) if half else 0
            key = (res.area.code, sel)
            if key not in cell_tables:
                cells = res.selections[sel].cells
                cell_tables[key] = (float(cells["count"].sum()), cells["town_centre"].to_numpy(dtype=object),
                                    cells["gi_class"].astype(str).to_numpy(dtype=object),
                                    cells["count"].to_numpy(), cells["gi_z"].to_numpy())
            dist_total, cell_tc, cell_cls, cell_count, cell_z = cell_tables[key]
            inside = cell_tc == tc["area_name"]
            cls = cell_cls[inside].astype(str)
            pa_here = ""
            if patrol is not None and len(patrol):
                here = np.flatnonzero((pa_sel == sel) & (pa_district == tc["district_code"]))
                here = here[shapely.intersects(pa_geoms[here], tc_geom)]
                # ranks are unique within a district and selection: any sort gives one order
                pa_here = "; ".join(pa_label[i] for i in here[np.argsort(pa_rank[here], kind="stable")])
            inside_count = pd.Series(cell_count[inside])
            # the peak cell as sort_values picks it (ties as pandas breaks them)
            peak = inside_count.sort_values(ascending=False).index[:1]
            rows.append({
                "town_centre_code": tc["area_code"], "town_centre_name": tc["area_name"],
                "district_code": tc["district_code"], "district_name": res.area.name, "selection": sel,
                "count": count,
                "share_of_district_pct": count / dist_total * 100 if dist_total > 0 else np.nan,
                "area_km2": tc_geom.area / 1e6,
                "share_of_district_area_pct": tc_geom.area / res.area.geometry.area * 100,
                "count_h1": h1, "count_h2": h2,
                "change_h2_vs_h1_pct": (h2 - h1) / h1 * 100 if h1 > 0 else np.nan,
                "hot_cells": int(np.char.startswith(cls, "hot").sum()), "hot_cells_99": int((cls == "hot_99").sum()),
                "cold_cells": int(np.char.startswith(cls, "cold").sum()), "patrol_areas": pa_here,
                "peak_cell_count": int(inside_count.iloc[peak[0]]) if len(peak) else 0,
                "peak_gi_z": float(cell_z[inside][peak[0]]) if len(peak) else np.nan,
            })
    return pd.DataFrame(rows, columns=TOWN_CENTRE_COLUMNS)


def write_grid_cells(out, inputs: Inputs, areas: list[AreaResult]) -> None:
    """``hotspots/grid_cells.gpkg``: one layer per selection, the county and district grids together."""
    # Every layer has the same cells: pyogrio would turn the polygons into multipolygons (GeoPackage layers
    # hold one type) once per layer; it is done once here, as pyogrio does it (nothing changes in the file).
    geometry = np.concatenate([np.asarray(a.grid.geometry.values) for a in areas]) if areas else np.array([])
    types = set(shapely.get_type_id(geometry).tolist())
    if types == {3, 6}:  # Polygon and MultiPolygon
        single = shapely.get_type_id(geometry) == 3
        geometry[single] = shapely.multipolygons(np.atleast_2d(geometry[single]), axis=0)
    with out.atomic_path("hotspots/grid_cells.gpkg") as tmp:
        for sel in inputs.selections:
            layer = pd.concat([a.selections[sel].cells[GRID_CELL_COLUMNS[:-1]] for a in areas], ignore_index=True)
            layer = gpd.GeoDataFrame(layer, geometry=gpd.GeoSeries(geometry, crs=BNG), crs=BNG)
            # the Arrow path of pyogrio writes the same features, in half the time
            layer.to_file(tmp, layer=slug(sel), driver="GPKG", engine="pyogrio", use_arrow=True)


def write_outputs(ctx, inputs: Inputs, cfg: HotspotConfig, county: AreaResult, district_results: list[AreaResult],
                  *, grid_cells: bool = True) -> dict[str, pd.DataFrame]:
    """The stage's tables under ``hotspots/`` (``grid_cells=False``: all but grid_cells.gpkg)."""
    out = ctx.out
    areas = [county] + district_results
    if grid_cells:
        write_grid_cells(out, inputs, areas)
    patrol_frames, counts_frames, hours_frames = [], [], []
    for r in district_results:
        for s in r.selections.values():
            patrol_frames.append(s.patrol_areas)
            counts_frames.append(s.patrol_counts)
            hours_frames.append(s.patrol_hours)
    patrol_frames = [p for p in patrol_frames if p is not None and len(p)]
    if patrol_frames:
        patrol = gpd.GeoDataFrame(pd.concat(patrol_frames, ignore_index=True), geometry="geometry", crs=BNG)
    else:
        patrol = gpd.GeoDataFrame({c: [] for c in PATROL_AREA_COLUMNS}, geometry=gpd.GeoSeries([], crs=BNG), crs=BNG)
    patrol = patrol[PATROL_AREA_COLUMNS + ["geometry"]]
    out.write_geo(patrol, "hotspots/patrol_areas.gpkg")
    out.write_geo(patrol, "hotspots/patrol_areas.geojson")
    out.write_csv(pd.DataFrame(patrol.drop(columns="geometry")), "hotspots/patrol_areas.csv")
    pac = _frame(counts_frames, ["patrol_area_id", "selection", "district_code", "crime_type", "count"])
    out.write_csv(pac, "hotspots/patrol_area_crime_types.csv")
    if "datetime" in inputs.points.columns:
        out.write_csv(_frame(hours_frames, ["patrol_area_id", "selection", "weekday", "hour", "count"]),
                      "hotspots/patrol_area_hour_of_week.csv")
    clusters = _frame([s.clusters for a in areas for s in a.selections.values()], CLUSTER_COLUMNS)
    out.write_csv(clusters, "hotspots/clusters.csv")
    # cells with a pattern only, as _emerging keeps them (every cell's class is in grid_cells.gpkg): all cells
    # would be ~50 MB
    emerging = _frame([s.emerging for a in areas for s in a.selections.values()], EMERGING_COLUMNS)
    out.write_csv(emerging, "hotspots/emerging.csv")
    stability = pd.DataFrame([s.stability for a in areas for s in a.selections.values()], columns=STABILITY_COLUMNS)
    out.write_csv(stability, "hotspots/stability.csv")
    tct = town_centre_table(inputs, district_results, patrol)
    out.write_csv(tct, "hotspots/town_centre_hotspots.csv")
    study = pd.DataFrame([s.summary for a in areas for s in a.selections.values()], columns=STUDY_AREA_COLUMNS)
    out.write_csv(study, "hotspots/study_areas.csv")
    return {"study_areas": study, "patrol_areas": patrol, "patrol_area_crime_types": pac, "clusters": clusters, "emerging": emerging,
            "stability": stability, "town_centres": tct}


