"""Before/after evaluation of hotspot areas: did the patrols reduce crime?

Orchestration only: which areas were treated, which months are "before" and
"after", what the comparison is, and what counts go into the statistics of
:mod:`hotspots.evaluate_stats`.  The HTML report is rendered by
:mod:`hotspots.report_evaluation` from the tables built here.

Design (see ``methods.md``, "Before / after evaluation"):

* **Treated areas** (R) come from a polygon file, or from the toolkit's own
  *illustrative* areas (:data:`TREATED_AREA_SOURCES`, pluggable): patrol
  areas picked on a selection period (top 250 m grid cells, contiguous cells
  merged, spread over every district like Operation Hotspot's 26 areas), or
  the town centres named in Operation Hotspot's published results.
* **Buffers** (D): a ring of ``buffer_m`` metres around each area, excluding
  every treated area, clipped to the study area.
* **Control** (C): ``rest_of_county`` (the study area minus treated areas and
  buffers; default), ``rest_of_district`` (each area's own district minus
  treated areas and buffers) or ``matched`` (untreated grid cells of about
  the same size whose before-period counts add up to the area's).  Recorded
  crime is rising county-wide because recording is improving, so every
  effect is measured against the control, never as a raw change.
* **Periods**: seasonally matched before/after (same calendar months a year
  apart) by default; the panel model uses every month in the data (older
  history for the pre-trend check, later months for the after-period trend).
  Months missing from the data are never filled in.
* **Statistics**: rate-ratio DiD (per area and pooled), a Poisson
  fixed-effects panel (area and month effects, treated x post, cluster-robust
  by area) with a pre-trend check, WDQ and total net effect against the
  control, the WDD test against matched controls of similar size (as the test
  requires), a harm-weighted DiD for crimes (ASB has no harm weight), a
  regression-to-the-mean check, and cost per crime prevented with its
  interval.

The wording helpers (:func:`describe_change` and friends) never claim more
than the interval supports: an interval including no change is "no
detectable change"; few crimes is "too few crimes to tell".
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import stats as _scipy_stats

from hotspots.evaluation import _stats as es
from hotspots._errors import ConfigError, DataNotFoundError, InputFileError, ValidationError
from hotspots.geo.aggregate import Period, resolve_periods
from hotspots.config import expand_crime_types
from hotspots.months import MONTH_RE, month_range, month_ranges
from hotspots.geo.boundaries import assign_points, read_user_areas
from hotspots.geo.grid import assign_to_cells, make_grid
from hotspots.harm import load_harm_weights
from hotspots.schema import AREA_COLUMNS, ASB, BNG, POLICE_UK_CRIME_TYPES

if TYPE_CHECKING:  # pragma: no cover
    from hotspots.stages.context import Context

log = logging.getLogger(__name__)

#: Town centres named in Operation Hotspot's published results.
OPERATION_HOTSPOT_TOWNS = ("St Albans", "Hemel Hempstead", "Borehamwood", "Waltham Cross", "Watford", "Stevenage")
#: Default crime types/groups: the group Operation Hotspot reports, then its two halves.
DEFAULT_CRIME_TYPES = ("ASB and violence", "ASB", "Violence")
CONTROLS = ("rest_of_county", "rest_of_district", "matched")
CONTROL_LABELS = {
    "rest_of_county": "the rest of the county",
    "rest_of_district": "the rest of their districts",
    "matched": "matched untreated areas with similar crime before",
}
LEVEL = 0.95
#: Fewer treated crimes than this (before + after) and a change is "too few crimes to tell".
MIN_CRIMES = 20
#: An interval including no change that is wider than this (percentage points) is "too few crimes to tell".
WIDE_INTERVAL_POINTS = 100.0
#: Pool cells must be at least this share of a full cell to count as "the same size".
FULL_CELL_SHARE = 0.9
#: The largest illustrative patrol area, in grid cells.
MAX_CELLS_PER_PATROL_AREA = 4

# --------------------------------------------------------------------------- output columns (a contract)
SUMMARY_COLUMNS = [
    "crime_type", "measure", "description", "estimate", "low", "high", "z", "p_value", "unit", "verdict", "note",
]
AREA_TABLE_COLUMNS = [
    "area_code", "area_name", "district_code", "district_name", "area_km2", "buffer_km2", "crime_type",
    "treated_before", "treated_after", "raw_change_pct",
    "control", "control_before", "control_after", "control_change_pct",
    "irr", "irr_low", "irr_high", "pct_change_vs_control", "pct_low", "pct_high", "p_value", "verdict",
    "buffer_before", "buffer_after", "buffer_change_pct", "buffer_pct_vs_control", "buffer_pct_low", "buffer_pct_high",
    "wdq", "tne", "tne_treated", "tne_buffer",
    "wdd", "wdd_z", "wdd_p", "displacement_wdd", "displacement_z", "displacement_p",
    "harm_before", "harm_after", "harm_pct_vs_control", "harm_pct_low", "harm_pct_high",
    "note",
]
MONTHLY_COLUMNS = [
    "crime_type", "month", "in_data", "period", "treated", "buffer", "control", "county",
    "treated_index", "buffer_index", "control_index",
]
GEOMETRY_COLUMNS = ["role", "area_code", "area_name", "district_code", "area_km2", "selection_count", "geometry"]


# --------------------------------------------------------------------------- settings
@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """The ``[evaluation]`` table of the config, validated (empty values = automatic)."""

    areas: str = ""
    name_column: str = ""
    selection: str = "patrol_areas"
    n_areas: int = 26
    cell_m: float = 250.0
    selection_period: tuple[str, str] | None = None
    before: tuple[str, str] | None = None
    after: tuple[str, str] | None = None
    buffer_m: float = 250.0
    control: str = "rest_of_county"
    crime_types: tuple[str, ...] = ()
    funding_gbp: float | None = None


def _month_pair(value: Any, key: str, problems: list[str]) -> tuple[str, str] | None:
    if value in (None, "", []):
        return None
    if isinstance(value, str):
        parts = value.split("..")
        value = parts if len(parts) == 2 else [value]
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(isinstance(v, str) and MONTH_RE.match(v) for v in value):
        problems.append(f"evaluation.{key} = {value!r} must be [\"YYYY-MM\", \"YYYY-MM\"] (or \"YYYY-MM..YYYY-MM\")")
        return None
    if value[0] > value[1]:
        problems.append(f"evaluation.{key} = {value!r}: the first month is after the last")
        return None
    return (value[0], value[1])


def evaluation_config(raw: dict[str, Any] | None, crime_groups: dict[str, tuple[str, ...]] | None = None) -> EvaluationConfig:
    """Validate the ``[evaluation]`` table; every problem is reported at once.

    >>> evaluation_config({"buffer_m": 200, "control": "matched"}).control
    'matched'
    >>> try:
    ...     evaluation_config({"control": "nearby", "buffer_m": -5})
    ... except ConfigError as exc:
    ...     print(exc.message.splitlines()[0])
    [evaluation]: 2 problem(s):
    """
    raw = dict(raw or {})
    problems: list[str] = []
    known = {f.name for f in dataclasses.fields(EvaluationConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        problems.append(f"unknown key(s) {unknown}; known keys are {sorted(known)}")
    out: dict[str, Any] = {}
    for key in ("areas", "name_column"):
        if key in raw:
            if not isinstance(raw[key], str):
                problems.append(f"evaluation.{key} = {raw[key]!r} must be text")
            else:
                out[key] = raw[key]
    if "selection" in raw:
        if raw["selection"] not in TREATED_AREA_SOURCES:
            problems.append(f"evaluation.selection = {raw['selection']!r} must be one of {list(TREATED_AREA_SOURCES)}")
        else:
            out["selection"] = raw["selection"]
    if "control" in raw:
        if raw["control"] not in CONTROLS:
            problems.append(f"evaluation.control = {raw['control']!r} must be one of {list(CONTROLS)}")
        else:
            out["control"] = raw["control"]
    for key, lo, hi in (("buffer_m", 10.0, 5000.0), ("cell_m", 100.0, 5000.0)):
        if key in raw:
            v = raw[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= float(v) <= hi:
                problems.append(f"evaluation.{key} = {v!r} must be a number of metres between {lo:g} and {hi:g}")
            else:
                out[key] = float(v)
    if "n_areas" in raw:
        v = raw["n_areas"]
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 500:
            problems.append(f"evaluation.n_areas = {v!r} must be a whole number between 1 and 500")
        else:
            out["n_areas"] = v
    for key in ("selection_period", "before", "after"):
        if key in raw:
            out[key] = _month_pair(raw[key], key, problems)
    if "crime_types" in raw:
        v = raw["crime_types"]
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
            problems.append(f"evaluation.crime_types = {v!r} must be a list of crime types or group names")
        else:
            valid = set(POLICE_UK_CRIME_TYPES) | set(crime_groups or {})
            bad = [x for x in v if crime_groups is not None and x not in valid]
            if bad:
                problems.append(
                    f"evaluation.crime_types has unknown name(s) {bad}; use police.uk types or groups: "
                    + ", ".join(sorted(crime_groups or {})) + ", " + ", ".join(POLICE_UK_CRIME_TYPES)
                )
            else:
                out["crime_types"] = tuple(dict.fromkeys(v))
    if "funding_gbp" in raw:
        v = raw["funding_gbp"]
        if v in (None, "", 0):
            out["funding_gbp"] = None
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            problems.append(f"evaluation.funding_gbp = {v!r} must be a number of pounds a year (>= 0; 0 or empty = not given)")
        else:
            out["funding_gbp"] = float(v)
    if problems:
        raise ConfigError(
            f"[evaluation]: {len(problems)} problem(s):\n  - " + "\n  - ".join(problems),
            hint="fix the [evaluation] table of the config (or the matching `hotspots evaluate` option)",
        )
    return EvaluationConfig(**out)


def resolve_crime_types(names: Sequence[str], groups: dict[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Name -> police.uk member types; group names first, then police.uk types.

    >>> resolve_crime_types(["ASB", "Robbery"], {"ASB": ("Anti-social behaviour",)})
    {'ASB': ('Anti-social behaviour',), 'Robbery': ('Robbery',)}
    """
    out, bad = expand_crime_types(names, groups)
    if bad:
        raise ConfigError(
            f"unknown crime type(s) or group(s) {bad}",
            hint="use a group from the config (" + ", ".join(groups) + ") or a police.uk category",
        )
    return out


def resolve_evaluation_periods(
    months_present: Sequence[str], before: tuple[str, str] | None = None, after: tuple[str, str] | None = None
) -> tuple[Period, Period, str]:
    """Before and after periods (months present only) and the reason for the choice.

    Default: the latest months whose same calendar months a year earlier are
    in the data (seasonally matched).  Giving only one of the two shifts it by
    a year for the other.

    >>> present = month_range("2024-01", "2024-04") + month_range("2025-01", "2025-12")
    >>> b, a, why = resolve_evaluation_periods(present)
    >>> b.label, a.label
    ('2024-01..2024-04', '2025-01..2025-04')
    """
    present = sorted(set(months_present))

    def shift(pair: tuple[str, str], years: int) -> tuple[str, str]:
        return tuple(f"{int(m[:4]) + years:04d}{m[4:]}" for m in pair)  # type: ignore[return-value]

    if before is None and after is None:
        periods = resolve_periods(present)
        if periods.comparison is None or periods.change_current is None:
            raise DataNotFoundError(
                "no seasonally matched before/after months in the data (no month has the same month a year earlier)",
                hint="set [evaluation] before and after (or --before/--after) explicitly",
            )
        b = Period(periods.comparison.label, periods.comparison.months)
        a = Period(periods.change_current.label, periods.change_current.months)
        why = (f"before {b.label} vs after {a.label}: the latest months with the same calendar months a year "
               "earlier in the data (seasonally matched)")
    else:
        why_parts = []
        if before is None:
            before = shift(after, -1)  # type: ignore[arg-type]
            why_parts.append("before = the after period a year earlier")
        if after is None:
            after = shift(before, 1)
            why_parts.append("after = the before period a year later")
        b = Period.from_range(before[0], before[1], present)
        a = Period.from_range(after[0], after[1], present)
        why = f"before {b.label} vs after {a.label} from the config" + (f" ({'; '.join(why_parts)})" if why_parts else "")
    problems = []
    if not b.months:
        problems.append(f"the before period {b.label} has no months in the data")
    if not a.months:
        problems.append(f"the after period {a.label} has no months in the data")
    if b.months and a.months and b.months[-1] >= a.months[0]:
        problems.append(f"the before period {b.label} must end before the after period {a.label} starts")
    if problems:
        raise ConfigError("; ".join(problems), hint="months in the data: " + month_ranges(present))
    if len(b.months) != len(a.months):
        why += f"; WARNING: {len(b.months)} before vs {len(a.months)} after months with data (unequal lengths)"
    shifted = {f"{int(m[:4]) + 1:04d}{m[4:]}" for m in b.months}
    if not set(a.months) <= shifted and not {m[5:] for m in a.months} == {m[5:] for m in b.months}:
        why += "; WARNING: before and after are not the same calendar months (not seasonally matched)"
    return b, a, why


def human_period(label: str) -> str:
    """'2024-01..2024-04' -> 'Jan–Apr 2024'; '2024-11..2025-02' -> 'Nov 2024–Feb 2025'.

    >>> human_period("2024-01..2024-04"), human_period("2024-11..2025-02"), human_period("2025-03")
    ('Jan–Apr 2024', 'Nov 2024–Feb 2025', 'Mar 2025')
    """
    names = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    def one(m: str) -> tuple[str, str]:
        return names[int(m[5:7]) - 1], m[:4]

    if ".." not in label:
        mon, yr = one(label)
        return f"{mon} {yr}"
    a, b = label.split("..")
    (ma, ya), (mb, yb) = one(a), one(b)
    if a == b:
        return f"{ma} {ya}"
    return f"{ma}–{mb} {ya}" if ya == yb else f"{ma} {ya}–{mb} {yb}"





# --------------------------------------------------------------------------- treated areas
@dataclasses.dataclass
class TreatedAreas:
    """Treated areas and how they were chosen."""

    areas: gpd.GeoDataFrame  # AREA_COLUMNS (+ selection_count)
    source: str  # "file", "patrol_areas", "town_centres", or a registered name
    description: str
    illustrative: bool
    #: True: chosen on the before-period counts (regression to the mean expected);
    #: False: not chosen on counts; None: unknown (a user file)
    selected_on_counts: bool | None
    selection_period: Period | None = None


def illustrative_patrol_areas(
    points: pd.DataFrame,
    study_area: gpd.GeoDataFrame,
    districts: gpd.GeoDataFrame,
    *,
    months: Sequence[str],
    crime_types: Sequence[str],
    n_areas: int = 26,
    cell_m: float = 250.0,
    grid: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Illustrative patrol areas: the highest-count grid cells, contiguous cells merged.

    A simple, documented stand-in for hotspot patrol areas (the detect stage's
    ``patrol_areas`` can replace it through a polygon file or
    :data:`TREATED_AREA_SOURCES`):

    1. count ``crime_types`` in ``months`` per ``cell_m`` grid cell (grid
       clipped to the study area); each cell belongs to the district holding
       its centre;
    2. per district, take cells in descending count; a cell touching (queen)
       an area already started joins it (up to
       :data:`MAX_CELLS_PER_PATROL_AREA` cells), otherwise it starts a new area;
       cells next to a full area are skipped;
    3. every district gets ``n_areas // n_districts`` areas (like Operation
       Hotspot's 26 areas across all 10 districts); the remaining places go
       to the highest-count areas anywhere.

    Returns an area table (``AREA_COLUMNS`` + ``selection_count``), codes
    ``IA01``... in descending count, names "<busiest street> (<district>)".
    """
    grid = make_grid(study_area, cell_m) if grid is None else grid
    sel = points[points["month"].isin(set(months)) & points["crime_type"].isin(set(crime_types))]
    cell = assign_to_cells(sel["x"].to_numpy(), sel["y"].to_numpy(), grid)
    counts = np.bincount(cell[cell >= 0], minlength=len(grid))
    centre_district = _district_of_xy(grid["x_centre"].to_numpy(), grid["y_centre"].to_numpy(), districts)
    rowcol = {(int(r), int(c)): i for i, (r, c) in enumerate(zip(grid["row"], grid["col"]))}
    n_districts = max(1, len(districts))
    per_district = n_areas // n_districts if n_areas >= n_districts else 0

    candidates = []  # (district, rank_in_district, seed_count, [cell positions])
    for code in districts["area_code"]:
        idx = np.flatnonzero((centre_district == code) & (counts > 0))
        order = idx[np.lexsort((grid["cell_id"].to_numpy()[idx], -counts[idx]))]
        areas: list[list[int]] = []
        owner: dict[int, int] = {}
        for pos in order:
            r, c = int(grid["row"].iloc[pos]), int(grid["col"].iloc[pos])
            adjacent = sorted({owner[n] for dr in (-1, 0, 1) for dc in (-1, 0, 1)
                               if (n := rowcol.get((r + dr, c + dc))) is not None and n in owner})
            if adjacent:
                open_area = next((a for a in adjacent if len(areas[a]) < MAX_CELLS_PER_PATROL_AREA), None)
                if open_area is not None:
                    areas[open_area].append(int(pos))
                    owner[int(pos)] = open_area
                continue
            if len(areas) >= n_areas:
                continue
            owner[int(pos)] = len(areas)
            areas.append([int(pos)])
        for rank, cells in enumerate(areas):
            candidates.append((code, rank, int(counts[cells[0]]), cells))
    chosen = [c for c in candidates if c[1] < per_district]
    rest = sorted((c for c in candidates if c[1] >= per_district), key=lambda c: (-c[2], c[0], c[1]))
    chosen += rest[: max(0, n_areas - len(chosen))]
    chosen.sort(key=lambda c: (-sum(int(counts[p]) for p in c[3]), c[0], c[1]))

    names = districts.set_index("area_code")["area_name"]
    loc = sel["location"].astype(str).str.replace(r"^On or near\s*", "", regex=True).to_numpy() if "location" in sel else None
    rows = []
    for i, (code, _rank, _seed, cells) in enumerate(chosen):
        geom = shapely.union_all(grid.geometry.values[cells])
        in_area = np.isin(cell, cells)
        street = ""
        if loc is not None and in_area.any():
            street = pd.Series(loc[in_area]).value_counts().index[0]
        street = street or f"cell {grid['cell_id'].iloc[cells[0]]}"
        rows.append({
            "area_code": f"IA{i + 1:02d}",
            "area_name": f"{street} ({names.get(code, code)})",
            "district_code": code,
            "selection_count": int(counts[cells].sum()),
            "geometry": geom,
        })
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=BNG) if rows else gpd.GeoDataFrame(
        {"area_code": [], "area_name": [], "district_code": [], "selection_count": []}, geometry=[], crs=BNG)
    return _as_area_table(gdf, "patrol_area", keep=("selection_count",))


def operation_hotspot_town_centres(town_centres: gpd.GeoDataFrame, names: Sequence[str] = OPERATION_HOTSPOT_TOWNS) -> gpd.GeoDataFrame:
    """The town centres named in Operation Hotspot's published results."""
    found = town_centres[town_centres["area_name"].isin(names)]
    missing = sorted(set(names) - set(found["area_name"]))
    if missing:
        raise DataNotFoundError(
            f"town centre(s) {missing} are not in the town-centre layer ({len(town_centres)} areas)",
            hint="use the built-in town centres (geography.town_centres = \"\") or give polygons with --areas",
        )
    out = found.copy()
    out["area_type"] = "town_centre"
    return out.reset_index(drop=True)


def _as_area_table(gdf: gpd.GeoDataFrame, area_type: str, keep: Sequence[str] = ()) -> gpd.GeoDataFrame:
    out = gdf.copy()
    out["area_type"] = area_type
    for col, default in (("district_code", ""), ("population", np.nan)):
        if col not in out:
            out[col] = default
    out["area_km2"] = out.geometry.area / 1e6
    cols = AREA_COLUMNS[:-1] + [c for c in keep if c in out] + ["geometry"]
    return gpd.GeoDataFrame(out[cols].reset_index(drop=True), geometry="geometry", crs=BNG)


def _district_of_xy(x: np.ndarray, y: np.ndarray, districts: gpd.GeoDataFrame) -> np.ndarray:
    out = np.full(len(x), "", dtype=object)
    if len(x) == 0 or len(districts) == 0:
        return out
    pairs = assign_points(x, y, districts, exclusive=True)
    out[pairs["point"].to_numpy()] = districts["area_code"].to_numpy()[pairs["area"].to_numpy()]
    return out


def _source_file(ctx: Context, cfg: EvaluationConfig, **_: Any) -> TreatedAreas:
    areas = read_user_areas(cfg.areas, name_column=cfg.name_column or None)
    return TreatedAreas(
        areas=areas, source="file", illustrative=False, selected_on_counts=None,
        description=f"{len(areas)} areas from {cfg.areas}",
    )


def _source_town_centres(ctx: Context, cfg: EvaluationConfig, **_: Any) -> TreatedAreas:
    areas = operation_hotspot_town_centres(ctx.geography.town_centres)
    return TreatedAreas(
        areas=areas, source="town_centres", illustrative=True, selected_on_counts=False,
        description=(f"the {len(areas)} town centres named in Operation Hotspot's published results ("
                     + ", ".join(areas["area_name"]) + "), using the toolkit's approximate town-centre circles"),
    )


def _source_patrol_areas(ctx: Context, cfg: EvaluationConfig, *, before: Period, crime_types: Sequence[str],
                         group_name: str, **_: Any) -> TreatedAreas:
    present = ctx.months_present
    if cfg.selection_period:
        period = Period.from_range(cfg.selection_period[0], cfg.selection_period[1], present)
        why = "from the config"
    else:
        period = before
        why = ("the before period, as hotspots are chosen on recent counts in practice; "
               "the regression-to-the-mean check tests what that selection alone would do")
    ctx.settings.record_auto("evaluation.selection_period", period.label, why)
    areas = illustrative_patrol_areas(
        ctx.points, ctx.geography.force, ctx.geography.districts, months=period.months, crime_types=crime_types,
        n_areas=cfg.n_areas, cell_m=cfg.cell_m,
    )
    overlap = set(period.months) & set(before.months)
    return TreatedAreas(
        areas=areas, source="patrol_areas", illustrative=True, selected_on_counts=bool(overlap),
        selection_period=period,
        description=(f"{len(areas)} illustrative patrol areas: the {cfg.cell_m:g} m grid cells with the most "
                     f"{group_name} in {human_period(period.label)} (touching cells merged, up to {MAX_CELLS_PER_PATROL_AREA} "
                     f"per area), at least {cfg.n_areas // max(1, len(ctx.geography.districts))} in every district"),
    )


#: Treated-area sources for the illustrative default: name -> function(ctx, cfg, *, before, crime_types,
#: group_name, **more) -> TreatedAreas (before: the before Period; crime_types: the headline group's
#: police.uk types; group_name: its name).  Another stage (e.g. hotspot detection) can register its own
#: here and select it with ``[evaluation] selection = "<name>"``.
TREATED_AREA_SOURCES: dict[str, Callable[..., TreatedAreas]] = {
    "patrol_areas": _source_patrol_areas,
    "town_centres": _source_town_centres,
}


# --------------------------------------------------------------------------- geometry
def make_buffers(areas: gpd.GeoDataFrame, buffer_m: float, study_area=None) -> gpd.GeoDataFrame:
    """Rings of ``buffer_m`` metres around each area, excluding every treated area.

    Each ring is ``area.buffer(buffer_m)`` minus the union of all treated
    areas, clipped to ``study_area`` when given.  Rings of neighbouring areas
    may overlap each other (per-area results count such crimes in both; the
    pooled buffer is their union).

    >>> from shapely import box
    >>> a = gpd.GeoDataFrame({"area_code": ["A"], "area_name": ["a"]}, geometry=[box(0, 0, 100, 100)], crs=BNG)
    >>> ring = make_buffers(a, 50).geometry.iloc[0]
    >>> round(ring.area, -2), ring.intersection(box(0, 0, 100, 100)).area   # 2 x 100 x 50 x 2 + pi x 50^2
    (27800.0, 0.0)
    """
    treated_union = shapely.union_all(areas.geometry.values)
    clip = None
    if study_area is not None:
        clip = study_area if isinstance(study_area, shapely.Geometry) else shapely.union_all(study_area.geometry.values)
    geoms = []
    for geom in areas.geometry.values:
        ring = shapely.difference(shapely.buffer(geom, buffer_m, quad_segs=16), treated_union)
        if clip is not None:
            ring = shapely.intersection(ring, clip)
        geoms.append(ring)
    out = gpd.GeoDataFrame(
        {"area_code": areas["area_code"].to_numpy(), "area_name": areas["area_name"].to_numpy(),
         "district_code": areas["district_code"].to_numpy() if "district_code" in areas else ""},
        geometry=geoms, crs=BNG,
    )
    out["area_km2"] = out.geometry.area / 1e6
    return out


def _pool_grid(study_area_geom, cell_m: float, exclude_geom) -> gpd.GeoDataFrame:
    """Full-size grid cells of the study area that do not overlap treated areas or buffers."""
    grid = make_grid(study_area_geom, cell_m, crs=BNG)
    full = grid["cell_area_km2"].to_numpy() >= FULL_CELL_SHARE * grid["full_cell_km2"].to_numpy()
    overlaps = np.zeros(len(grid), dtype=bool)
    if exclude_geom is not None and not exclude_geom.is_empty:
        tree = shapely.STRtree(grid.geometry.values)
        cand = tree.query(exclude_geom)
        if len(cand):
            inter = shapely.area(shapely.intersection(grid.geometry.values[cand], exclude_geom))
            overlaps[cand[inter > 1.0]] = True
    keep = full & ~overlaps
    out = grid.loc[keep].reset_index(drop=True)
    out.attrs["grid"] = grid.attrs["grid"]
    return out


def _match_by_total(target: float, pool_before: np.ndarray, available: np.ndarray) -> list[int]:
    """Unused pool cells, largest first, whose before counts add up to about ``target``.

    A cell is taken when it brings the total closer to the target; cells are
    tried in descending count, so the best-matching high cells come first.
    """
    chosen: list[int] = []
    remaining = float(target)
    order = np.flatnonzero(available)
    order = order[np.argsort(-pool_before[order], kind="stable")]
    for i in order:
        if remaining <= 0.5:
            break
        v = float(pool_before[i])
        if v <= 0:
            break
        if v < 2 * remaining:
            chosen.append(int(i))
            remaining -= v
    return chosen


# --------------------------------------------------------------------------- statistics helpers not in evaluate_stats
def harm_did(rb: float, ra: float, cb: float, ca: float, vrb: float, vra: float, vcb: float, vca: float,
             *, level: float = LEVEL) -> dict[str, float]:
    """Harm-weighted rate-ratio DiD: ``(Ha/Hb) / (HCa/HCb)`` with a delta-method interval.

    ``H = sum_k w_k N_k`` is a weighted sum of Poisson counts, so
    ``Var(H) = sum_k w_k^2 N_k`` (estimated by ``v`` = that sum over the
    observed counts) and ``Var(log H) ~ v / H^2`` (delta method; as for
    directly standardised rates, Fay & Feuer 1997, *Stat. Med.* 16, 791-801).

    >>> r = harm_did(2000, 1400, 20000, 22000, 2000 * 200, 1400 * 200, 20000 * 200, 22000 * 200)
    >>> round(r["pct"], 1), r["low"] < r["pct"] < r["high"]
    (-36.4, True)
    """
    nan = float("nan")
    out = {"irr": nan, "low": nan, "high": nan, "pct": nan, "z": nan, "p": nan}
    if min(rb, ra, cb, ca) <= 0:
        return out
    log_irr = math.log(ra / rb) - math.log(ca / cb)
    se = math.sqrt(vra / ra**2 + vrb / rb**2 + vca / ca**2 + vcb / cb**2)
    zc = float(_scipy_stats.norm.ppf(0.5 + level / 2))
    z = log_irr / se if se > 0 else nan
    irr = math.exp(log_irr)
    out.update(irr=irr, low=100 * (math.exp(log_irr - zc * se) - 1), high=100 * (math.exp(log_irr + zc * se) - 1),
               pct=100 * (irr - 1), z=z, p=float(2 * _scipy_stats.norm.sf(abs(z))) if se > 0 else nan)
    return out


# --------------------------------------------------------------------------- wording
def _noun(members: Sequence[str]) -> str:
    if set(members) == {ASB}:
        return "ASB incidents"
    return "crimes and ASB incidents" if ASB in members else "crimes"


def _noun_one(members: Sequence[str]) -> str:
    """Singular: 'per ... prevented'."""
    if set(members) == {ASB}:
        return "ASB incident"
    return "crime or ASB incident" if ASB in members else "crime"


def _what(name: str) -> str:
    """A crime type or group name for use mid-sentence ('Violence' -> 'violence', 'ASB' stays)."""
    first = name.split(" ")[0]
    return name if first.isupper() else name[0].lower() + name[1:]


def _whole(x: float) -> str:
    v = abs(x)
    return f"{v:.1f}" if 0 < v < 1 else f"{v:.0f}"


def classify_change(pct: float, low: float, high: float, n_crimes: float | None = None) -> str:
    """One of "fell", "rose", "no detectable change", "too few crimes to tell", "not estimable".

    >>> classify_change(-18, -26, -9, 400), classify_change(-5, -20, 12, 400), classify_change(-40, -90, 300, 12)
    ('fell', 'no detectable change', 'too few crimes to tell')
    """
    if n_crimes is not None and n_crimes < MIN_CRIMES:
        return "too few crimes to tell"
    if not all(np.isfinite([pct, low, high])):
        return "not estimable"
    if high < 0:
        return "fell"
    if low > 0:
        return "rose"
    if high - low > WIDE_INTERVAL_POINTS:
        return "too few crimes to tell"
    return "no detectable change"


def describe_change(pct: float, low: float, high: float, *, what: str, comparison: str, n_crimes: float | None = None,
                    level: float = LEVEL) -> str:
    """A plain-English sentence that never claims more than the interval supports.

    >>> describe_change(-18.2, -26.1, -9.3, what="ASB", comparison="the rest of the county", n_crimes=900)
    'ASB fell 18% (95% CI 9–26%) relative to the rest of the county'
    >>> describe_change(-6.0, -19.0, 9.0, what="ASB", comparison="the rest of the county", n_crimes=900)
    'no detectable change in ASB relative to the rest of the county (best estimate −6%, 95% CI −19% to +9%)'
    >>> describe_change(-50.0, -90.0, 150.0, what="ASB", comparison="the rest of the county", n_crimes=9)
    'too few ASB records to tell (9 before and after together)'
    """
    lvl = f"{level:.0%} CI"
    verdict = classify_change(pct, low, high, n_crimes)
    if verdict == "too few crimes to tell":
        if n_crimes is not None and n_crimes < MIN_CRIMES:
            return f"too few {what} records to tell ({n_crimes:.0f} before and after together)"
        return (f"too few {what} records to tell: relative to {comparison} the change could be anything "
                f"from {_signed(low)} to {_signed(high)}")
    if verdict == "not estimable":
        return f"the change in {what} relative to {comparison} cannot be estimated (a zero count)"
    if verdict == "fell":
        return f"{what} fell {_whole(pct)}% ({lvl} {_whole(high)}–{_whole(low)}%) relative to {comparison}"
    if verdict == "rose":
        return f"{what} rose {_whole(pct)}% ({lvl} {_whole(low)}–{_whole(high)}%) relative to {comparison}"
    return (f"no detectable change in {what} relative to {comparison} "
            f"(best estimate {_signed(pct)}, {lvl} {_signed(low)} to {_signed(high)})")


def _signed_count(x: float) -> str:
    return ("−" if x < 0 else "+") + f"{abs(x):,.0f}" if round(x) else "0"


def _signed(x: float) -> str:
    s = _whole(x)
    if s in ("0", "0.0"):
        return "0%"
    return ("−" if x < 0 else "+") + s + "%"


def describe_displacement(buffer_row: pd.Series | dict, wdd_res: es.WDDResult | None, *, buffer_m: float,
                          comparison: str, n_buffer: float, level: float = LEVEL) -> tuple[str, str]:
    """(verdict, sentence) for the buffers from two tests: the buffers' rate ratio against the comparison and
    the WDD displacement test against matched cells of similar size.

    Verdicts: "displacement" (both tests), "possible displacement" (one test), "diffusion", "possible
    diffusion", "none detected", "too few crimes to tell".  A test that sees nothing is never read as proof
    of no displacement: the sentence gives the interval.

    >>> row = {"pct_change_vs_control": -2.0, "pct_low": -9.0, "pct_high": 6.0}
    >>> describe_displacement(row, None, buffer_m=250, comparison="the rest of the county", n_buffer=900)[0]
    'none detected'
    """
    ring = f"the {buffer_m:g} m buffers"
    if n_buffer < MIN_CRIMES:
        return "too few crimes to tell", f"too few crimes in {ring} to tell whether crime moved there"
    pct, low, high = (float(buffer_row[k]) for k in ("pct_change_vs_control", "pct_low", "pct_high"))
    if not np.isfinite(pct):
        return "too few crimes to tell", f"the change in {ring} cannot be estimated (a zero count)"
    alpha = 1 - level
    wdd_ok = wdd_res is not None and np.isfinite(wdd_res.displacement_p)
    wdd_up = wdd_ok and wdd_res.displacement_p < alpha and wdd_res.displacement_wdd > 0
    wdd_down = wdd_ok and wdd_res.displacement_p < alpha and wdd_res.displacement_wdd < 0
    rr_up, rr_down = bool(np.isfinite(low) and low > 0), bool(np.isfinite(high) and high < 0)
    ci = f"{_signed(pct)}, {level:.0%} CI {_signed(low)} to {_signed(high)}, relative to {comparison}"
    wdd_txt = (f"{_signed_count(wdd_res.displacement_wdd)} crimes relative to matched cells of similar size, "
               + ("p < 0.001" if wdd_res.displacement_p < 0.001 else f"p = {wdd_res.displacement_p:.3f}")
               if wdd_ok else "")
    if rr_up and wdd_up:
        return "displacement", f"displacement: crime rose in {ring} ({ci}; {wdd_txt})"
    if rr_up or wdd_up:
        which = f"relative to {comparison} ({ci})" if rr_up else f"against matched cells of similar size ({wdd_txt})"
        other = f"against matched cells the change was {wdd_txt}" if rr_up else f"relative to {comparison} it was {ci.split(', relative')[0]}"
        return ("possible displacement",
                f"possible displacement: crime in {ring} rose on one of two tests, {which}, but not on the other "
                f"({other})")
    if rr_down and wdd_down:
        return "diffusion", f"no displacement: crime also fell in {ring} ({ci}), a diffusion of benefit"
    if rr_down or wdd_down:
        which = f"relative to {comparison} ({ci})" if rr_down else f"against matched cells of similar size ({wdd_txt})"
        other = f"against matched cells the change was {wdd_txt}" if rr_down else f"relative to {comparison} it was {ci.split(', relative')[0]}"
        return ("possible diffusion",
                f"no displacement was detected; crime in {ring} fell on one of two tests, {which}, but not on the other "
                f"({other})")
    if np.isfinite(low) and high - low > WIDE_INTERVAL_POINTS:
        return "too few crimes to tell", f"too few crimes in {ring} to tell whether crime moved there ({ci})"
    return "none detected", f"no displacement to {ring} was detected ({ci})"


# --------------------------------------------------------------------------- result
@dataclasses.dataclass
class EvaluationResult:
    """Everything the report renders; the tables are the CSV outputs."""

    summary: pd.DataFrame
    areas_table: pd.DataFrame
    monthly: pd.DataFrame
    geometries: gpd.GeoDataFrame
    districts: gpd.GeoDataFrame
    findings: list[dict[str, Any]]
    headline: str
    meta: dict[str, Any]


# --------------------------------------------------------------------------- the evaluation
def evaluate_areas(
    points: pd.DataFrame,
    treated: TreatedAreas,
    districts: gpd.GeoDataFrame,
    *,
    months_present: Sequence[str],
    before: Period,
    after: Period,
    crime_types: dict[str, tuple[str, ...]],
    buffer_m: float = 250.0,
    control: str = "rest_of_county",
    funding_gbp: float | None = None,
    harm_weights: pd.Series | None = None,
    pool_cell_m: float | None = None,
    all_months: Sequence[str] | None = None,
    study_area=None,
    record: Callable[[str, Any, str], None] | None = None,
) -> EvaluationResult:
    """Before/after evaluation of ``treated`` areas against a control, with displacement, RTM and cost.

    Parameters
    ----------
    points
        Points (``x``, ``y`` in EPSG:27700, ``month``, ``crime_type``), clipped to the study area.
    treated
        The treated areas and how they were chosen (:class:`TreatedAreas`).
    districts
        District polygons (``area_code``, ``area_name``): control pieces and ``rest_of_district``.
    months_present
        Months with data (missing months are gaps, never zeros).
    before, after
        The before and after periods (seasonally matched, equal lengths ideally).
    crime_types
        Name -> police.uk member types; the first is the headline.
    buffer_m, control, funding_gbp
        As in the ``[evaluation]`` config; funding is annual and pro-rated to the after period.
    harm_weights
        Harm weight per police.uk type (default :func:`hotspots.harm.load_harm_weights`).
    pool_cell_m
        Cell size for matched controls and the RTM pool; default the treated
        areas' median size (square root of area, rounded to 50 m, at least 100 m).
    all_months
        Every month of the configured range, to show gaps in the monthly table.
    study_area
        Polygon(s) of the study area (default the union of ``districts``).
    record
        ``settings.record_auto``-like callback for automatic choices.
    """
    record = record or (lambda key, value, reason: None)
    if control not in CONTROLS:
        raise ValidationError(f"control={control!r} is not one of {list(CONTROLS)}", hint="use rest_of_county, rest_of_district or matched")
    areas = treated.areas.reset_index(drop=True)
    if len(areas) == 0:
        raise ValidationError("no treated areas to evaluate", hint="check the areas file or the selection settings")
    notes: list[str] = []
    study_geom = (shapely.union_all(districts.geometry.values) if study_area is None else
                  study_area if isinstance(study_area, shapely.Geometry) else shapely.union_all(study_area.geometry.values))
    # areas outside the study area have no data there: clip and say so
    clipped = shapely.intersection(areas.geometry.values, study_geom)
    lost = 1 - shapely.area(clipped) / np.maximum(shapely.area(areas.geometry.values), 1e-9)
    if (lost > 0.01).any():
        notes.append(f"{int((lost > 0.01).sum())} treated area(s) extend beyond the study area; only the part inside "
                     "is evaluated (no data outside)")
        areas = areas.set_geometry(gpd.GeoSeries(clipped, crs=BNG))
        areas["area_km2"] = areas.geometry.area / 1e6
    empty = areas.geometry.is_empty
    if empty.any():
        raise InputFileError(f"treated area(s) {list(areas.loc[empty, 'area_code'])} lie entirely outside the study area",
                             hint="check the CRS and the file")
    if (areas["district_code"].astype(str) == "").any():
        rep = areas.geometry.representative_point()
        d = _district_of_xy(rep.x.to_numpy(), rep.y.to_numpy(), districts)
        areas["district_code"] = np.where(areas["district_code"].astype(str) == "", d, areas["district_code"])
    district_names = districts.set_index("area_code")["area_name"]
    buffers = make_buffers(areas, buffer_m, study_geom)
    treated_union = shapely.union_all(areas.geometry.values)
    buffer_union = shapely.union_all(buffers.geometry.values)
    excluded_geom = shapely.union_all([treated_union, buffer_union])

    if pool_cell_m is None:
        median_km2 = float(np.median(areas["area_km2"]))
        pool_cell_m = max(100.0, round(math.sqrt(median_km2 * 1e6) / 50.0) * 50.0)
        record("evaluation.pool_cell_m", pool_cell_m,
               f"cells for matched controls and the regression-to-the-mean pool: about the treated areas' median size "
               f"({median_km2:.3f} km²), rounded to 50 m")
    pool = _pool_grid(study_geom, pool_cell_m, excluded_geom)

    # ---- membership of every point in every unit
    all_members = sorted({t for m in crime_types.values() for t in m})
    pts = points[points["crime_type"].isin(all_members)].reset_index(drop=True)
    months = sorted(set(months_present))
    month_pos = {m: i for i, m in enumerate(months)}
    type_pos = {t: i for i, t in enumerate(all_members)}
    pm = pts["month"].map(month_pos).to_numpy()
    ok_month = ~pd.isna(pm)
    pts, pm = pts.loc[ok_month].reset_index(drop=True), pm[ok_month].astype(int)
    pt = pts["crime_type"].map(type_pos).to_numpy().astype(int)
    x, y = pts["x"].to_numpy(float), pts["y"].to_numpy(float)
    n_areas, n_pts = len(areas), len(pts)
    district_codes = list(districts["area_code"])

    tr_pairs = assign_points(x, y, areas, exclusive=False)
    bf_pairs = assign_points(x, y, buffers, exclusive=False)
    in_treated = np.zeros(n_pts, bool)
    in_treated[tr_pairs["point"].to_numpy()] = True
    in_buffer = np.zeros(n_pts, bool)
    in_buffer[bf_pairs["point"].to_numpy()] = True
    in_buffer &= ~in_treated
    outside = ~in_treated & ~in_buffer
    pt_district = _district_of_xy(x, y, districts)
    cell_of = assign_to_cells(x, y, pool)
    cell_of[~outside] = -1

    # unit layout: treated areas | buffers | ALL treated | ALL buffer | district rests | county | pool cells
    u_buf, u_tall, u_ball = n_areas, 2 * n_areas, 2 * n_areas + 1
    u_dist = 2 * n_areas + 2
    u_county = u_dist + len(district_codes)
    u_pool = u_county + 1
    n_units = u_pool + len(pool)
    pairs_pt, pairs_unit = [tr_pairs["point"].to_numpy(), bf_pairs["point"].to_numpy()], [tr_pairs["area"].to_numpy(), u_buf + bf_pairs["area"].to_numpy()]
    pairs_pt += [np.flatnonzero(in_treated), np.flatnonzero(in_buffer)]
    pairs_unit += [np.full(int(in_treated.sum()), u_tall), np.full(int(in_buffer.sum()), u_ball)]
    dpos = {c: i for i, c in enumerate(district_codes)}
    dist_idx = np.array([dpos.get(c, -1) for c in pt_district])
    sel = outside & (dist_idx >= 0)
    pairs_pt.append(np.flatnonzero(sel))
    pairs_unit.append(u_dist + dist_idx[sel])
    pairs_pt.append(np.arange(n_pts))
    pairs_unit.append(np.full(n_pts, u_county))
    sel = cell_of >= 0
    pairs_pt.append(np.flatnonzero(sel))
    pairs_unit.append(u_pool + cell_of[sel])
    p_all, u_all = np.concatenate(pairs_pt), np.concatenate(pairs_unit)
    by_type = np.zeros((n_units, len(months), len(all_members)), dtype=np.int64)
    np.add.at(by_type, (u_all, pm[p_all], pt[p_all]), 1)
    n_outside_districts = int((outside & (dist_idx < 0)).sum())
    if n_outside_districts:
        notes.append(f"{n_outside_districts} control points fell in no district polygon (slivers) and are left out of the control")

    harm = load_harm_weights() if harm_weights is None else harm_weights
    before_idx = [month_pos[m] for m in before.months if m in month_pos]
    after_idx = [month_pos[m] for m in after.months if m in month_pos]
    transition = [m for m in months if before.months[-1] < m < after.months[0]]
    panel_months = [m for m in months if m not in set(transition)]
    if transition:
        notes.append(f"months between the periods ({month_ranges(transition)}) are left out of the panel model (patrols starting)")

    # ---- per-area control definition
    area_district = areas["district_code"].astype(str).to_numpy()
    control_label = CONTROL_LABELS[control]
    primary = next(iter(crime_types))
    prim_mask = np.isin(all_members, crime_types[primary])
    prim = by_type[:, :, prim_mask].sum(axis=2)
    pool_units = np.arange(u_pool, n_units)
    # Matching on a period's counts picks cells that were high partly by chance, and they fall back
    # afterwards (regression to the mean).  That is wanted for the treated areas' control when the areas
    # were themselves picked on the before period (both regress alike), and unwanted for the buffers
    # (never picked on counts): their controls are matched on older history when the data have it.
    history_idx = [month_pos[m] for m in months if m < before.months[0]]
    history_ok = len(history_idx) >= 3
    r_match_idx = before_idx if (treated.selected_on_counts is not False or not history_ok) else history_idx
    d_match_idx = history_idx if history_ok else before_idx

    r_match_label = before.label if r_match_idx is before_idx else month_ranges([months[i] for i in r_match_idx])
    d_match_label = before.label if d_match_idx is before_idx else month_ranges([months[i] for i in d_match_idx])
    r_target = prim[:n_areas][:, r_match_idx].sum(axis=1)
    d_target = prim[u_buf:u_buf + n_areas][:, d_match_idx].sum(axis=1)
    pool_r = prim[pool_units][:, r_match_idx].sum(axis=1)
    pool_d = prim[pool_units][:, d_match_idx].sum(axis=1)
    available = np.ones(len(pool), bool)
    matched_r = [[] for _ in range(n_areas)]
    for i in np.argsort(-r_target, kind="stable"):
        chosen = _match_by_total(r_target[i], pool_r, available)
        available[chosen] = False
        matched_r[i] = chosen
    matched_d = [[] for _ in range(n_areas)]
    for i in np.argsort(-d_target, kind="stable"):
        chosen = _match_by_total(d_target[i], pool_d, available)
        available[chosen] = False
        matched_d[i] = chosen
    record("evaluation.matched_controls",
           {"treated": int(sum(map(len, matched_r))), "buffers": int(sum(map(len, matched_d)))},
           f"untreated {pool_cell_m:g} m cells outside the areas and buffers, largest first, until their {primary} "
           f"total matches each area's in {r_match_label} "
           + ("(the period the areas were or may have been picked on, so both regress alike)"
              if r_match_idx is before_idx and treated.selected_on_counts is not False else "")
           + f" and, separately, each buffer's in {d_match_label}"
           + (" (older history, so the buffers' controls are not picked at a chance peak)" if d_match_idx is not before_idx else "")
           + "; used for control='matched' and for the WDD test, which needs controls of similar size")

    matched_r_units = [[u_pool + c for c in cells] for cells in matched_r]
    matched_d_units = [[u_pool + c for c in cells] for cells in matched_d]
    if control == "matched":
        area_controls = matched_r_units
        overall_control = sorted({u for cs in area_controls for u in cs})
        panel_controls = overall_control
        # buffers are compared with their own matched cells, not the treated areas'
        buffer_area_controls = matched_d_units
        buffer_control = sorted({u for cs in matched_d_units for u in cs})
    elif control == "rest_of_district":
        area_controls = [[u_dist + dpos[d]] if d in dpos else [] for d in area_district]
        overall_control = sorted({u for cs in area_controls for u in cs})
        panel_controls = overall_control
        buffer_area_controls, buffer_control = area_controls, overall_control
    else:
        overall_control = [u_dist + i for i in range(len(district_codes))]
        area_controls = [overall_control] * n_areas
        panel_controls = overall_control
        buffer_area_controls, buffer_control = area_controls, overall_control
    if not overall_control:
        raise ValidationError("the control is empty", hint="use control = rest_of_county")

    # ---- per crime type
    summary_rows: list[dict[str, Any]] = []
    area_frames: list[pd.DataFrame] = []
    monthly_frames: list[pd.DataFrame] = []
    findings: list[dict[str, Any]] = []
    months_range = list(all_months) if all_months else month_range(months[0], months[-1])
    funding_period = None
    if funding_gbp:
        funding_period = funding_gbp * len(after.months) / 12.0
        record("evaluation.funding_pro_rata", round(funding_period, 2),
               f"£{funding_gbp:,.0f} a year pro-rated to the {len(after.months)}-month after period")

    def add(ct: str, measure: str, description: str, estimate=np.nan, low=np.nan, high=np.nan, z=np.nan, p=np.nan,
            unit: str = "", verdict: str = "", note: str = "") -> None:
        summary_rows.append({"crime_type": ct, "measure": measure, "description": description, "estimate": estimate,
                             "low": low, "high": high, "z": z, "p_value": p, "unit": unit, "verdict": verdict,
                             "note": note})

    for ct, members in crime_types.items():
        mask = np.isin(all_members, members)
        counts = by_type[:, :, mask].sum(axis=2)  # units x months
        w = harm.reindex(all_members).to_numpy(float)
        w_ct = np.where(mask & np.isfinite(w), w, 0.0)
        harm_units = by_type @ w_ct  # units x months
        harm_var_units = by_type @ (w_ct**2)
        has_harm = bool((w_ct > 0).any())
        noun = _noun(members)

        def tot(unit_ids, idx, arr=counts):
            return float(arr[np.asarray(unit_ids, int)][:, idx].sum()) if len(unit_ids) else 0.0

        rb, ra = tot([u_tall], before_idx), tot([u_tall], after_idx)
        db, da = tot([u_ball], before_idx), tot([u_ball], after_idx)
        cb, ca = tot(overall_control, before_idx), tot(overall_control, after_idx)
        county_b, county_a = tot([u_county], before_idx), tot([u_county], after_idx)
        raw = 100 * (ra / rb - 1) if rb else np.nan
        c_change = 100 * (ca / cb - 1) if cb else np.nan
        add(ct, "n_areas", "treated areas", n_areas, unit="areas")
        add(ct, "treated_before", f"recorded in the treated areas, {before.label}", rb, unit=noun)
        add(ct, "treated_after", f"recorded in the treated areas, {after.label}", ra, unit=noun)
        add(ct, "raw_change_pct", "raw change in the treated areas, no comparison (how the published figure is measured)",
            raw, unit="%", note="mixes any patrol effect with county-wide change, including improving crime recording")
        add(ct, "control_before", f"recorded in the control ({control_label}), {before.label}", cb, unit=noun)
        add(ct, "control_after", f"recorded in the control ({control_label}), {after.label}", ca, unit=noun)
        add(ct, "control_change_pct", f"change in the control ({control_label})", c_change, unit="%")
        add(ct, "county_change_pct", "change in the whole study area", 100 * (county_a / county_b - 1) if county_b else np.nan, unit="%")

        did = es.did_rate_ratio(int(rb), int(ra), int(cb), int(ca)).iloc[0]
        sentence = describe_change(did["pct_change_vs_control"], did["pct_low"], did["pct_high"], what=_what(ct),
                                   comparison=control_label, n_crimes=rb + ra)
        verdict = classify_change(did["pct_change_vs_control"], did["pct_low"], did["pct_high"], rb + ra)
        add(ct, "did_pct_change", f"change in the treated areas relative to {control_label} (rate-ratio difference-in-differences)",
            did["pct_change_vs_control"], did["pct_low"], did["pct_high"], did["z"], did["p_value"], "%", verdict,
            "; ".join(filter(None, [did["note"], "Poisson interval: ignores extra variation between areas; see the panel model"])))

        # panel over all months
        panel_res, nb_res, pre = _panel(counts, list(range(n_areas)), panel_controls, months, panel_months, after, notes)
        for measure, res, desc in (("panel_pct_change", panel_res, "Poisson panel (area and month effects, cluster-robust by area)"),
                                   ("panel_negbin_pct_change", nb_res, "negative-binomial panel (sensitivity)")):
            if isinstance(res, es.PanelEffect):
                add(ct, measure, f"{desc}, all {res.n_periods} months with data",
                    res.pct_change, res.pct_low, res.pct_high, res.z, res.p_value, "%",
                    classify_change(res.pct_change, res.pct_low, res.pct_high, rb + ra), res.note)
            else:
                add(ct, measure, desc, unit="%", verdict="not estimable", note=str(res))
        if isinstance(pre, es.PreTrendCheck):
            add(ct, "pre_trend_pct_per_month", f"treated vs control trend per month before the patrols ({pre.n_pre_periods} months)",
                pre.pct_per_month, pre.pct_low, pre.pct_high, np.nan, pre.p_value, "% per month", pre.verdict, pre.note)
        else:
            add(ct, "pre_trend_pct_per_month", "treated vs control trend per month before the patrols", unit="% per month",
                verdict="not estimable", note=str(pre))

        # displacement
        add(ct, "buffer_before", f"recorded in the {buffer_m:g} m buffers, {before.label}", db, unit=noun)
        add(ct, "buffer_after", f"recorded in the {buffer_m:g} m buffers, {after.label}", da, unit=noun)
        cdb, cda = tot(buffer_control, before_idx), tot(buffer_control, after_idx)
        bdid = es.did_rate_ratio(int(db), int(da), int(cdb), int(cda)).iloc[0]
        buffer_label = "their own matched untreated cells" if control == "matched" else control_label
        add(ct, "buffer_pct_vs_control", f"change in the buffers relative to {buffer_label}",
            bdid["pct_change_vs_control"], bdid["pct_low"], bdid["pct_high"], bdid["z"], bdid["p_value"], "%",
            classify_change(bdid["pct_change_vs_control"], bdid["pct_low"], bdid["pct_high"], db + da), bdid["note"])
        q = es.wdq(int(rb), int(ra), int(db), int(da), int(cb), int(ca))
        add(ct, "wdq", "weighted displacement quotient (> 0 diffusion of benefit, < 0 displacement)", q.wdq,
            verdict=q.interpretation)
        t = es.total_net_effect(int(rb), int(ra), int(db), int(da), int(cb), int(ca))
        add(ct, "tne", "total net effect: crimes prevented in the areas and buffers together (no interval)",
            t.total_net_effect, unit=noun, verdict=t.interpretation)
        add(ct, "tne_treated", "crimes prevented in the treated areas (expected from the control's change minus recorded)",
            t.treated_effect, unit=noun)
        add(ct, "tne_buffer", "crimes prevented in the buffers (negative = more than expected: displacement)",
            t.buffer_effect, unit=noun)
        mr = [u_pool + c for cs in matched_r for c in cs]
        md = [u_pool + c for cs in matched_d for c in cs]
        wres = es.wdd(int(rb), int(ra), int(tot(mr, before_idx)), int(tot(mr, after_idx)), int(db), int(da),
                      int(tot(md, before_idx)), int(tot(md, after_idx)))
        zc = _scipy_stats.norm.ppf(0.5 + LEVEL / 2)
        add(ct, "wdd", "weighted displacement difference (negative = net reduction), against matched controls of similar size",
            wres.wdd, wres.low, wres.high, wres.z, wres.p_value, noun, wres.verdict, wres.note)
        add(ct, "wdd_displacement", "buffer change minus its matched control's change (positive = displacement)",
            wres.displacement_wdd, wres.displacement_wdd - zc * wres.displacement_se,
            wres.displacement_wdd + zc * wres.displacement_se, wres.displacement_z, wres.displacement_p, noun)
        disp_verdict, disp_sentence = describe_displacement(bdid, wres, buffer_m=buffer_m, comparison=buffer_label,
                                                            n_buffer=db + da)
        add(ct, "displacement_verdict", f"displacement to the {buffer_m:g} m buffers", verdict=disp_verdict, note=disp_sentence)

        # harm
        harm_res = None
        if has_harm:
            hb, ha = tot([u_tall], before_idx, harm_units), tot([u_tall], after_idx, harm_units)
            hcb, hca = tot(overall_control, before_idx, harm_units), tot(overall_control, after_idx, harm_units)
            vb, va = tot([u_tall], before_idx, harm_var_units), tot([u_tall], after_idx, harm_var_units)
            vcb, vca = tot(overall_control, before_idx, harm_var_units), tot(overall_control, after_idx, harm_var_units)
            harm_res = harm_did(hb, ha, hcb, hca, vb, va, vcb, vca)
            n_harm_crimes = tot([u_tall], before_idx + after_idx, by_type[:, :, mask & (w_ct > 0)].sum(axis=2))
            add(ct, "harm_before", "harm in the treated areas before (crime severity weights; ASB not weighted)", hb, unit="harm units")
            add(ct, "harm_after", "harm in the treated areas after", ha, unit="harm units")
            add(ct, "harm_pct_change", f"harm-weighted change relative to {control_label} (crimes only)",
                harm_res["pct"], harm_res["low"], harm_res["high"], harm_res["z"], harm_res["p"], "%",
                classify_change(harm_res["pct"], harm_res["low"], harm_res["high"], n_harm_crimes),
                f"harm table version {harm.attrs.get('version', '')}")

        # regression to the mean
        sb = counts[:n_areas][:, before_idx].sum(axis=1)
        sa = counts[:n_areas][:, after_idx].sum(axis=1)
        pb = counts[pool_units][:, before_idx].sum(axis=1)
        pa = counts[pool_units][:, after_idx].sum(axis=1)
        rtm = None
        rtm_sentence = ""
        try:
            rtm = es.rtm_check(sb, sa, pb, pa)
        except ValidationError as exc:
            notes.append(f"{ct}: regression-to-the-mean check not possible ({exc.message})")
        if rtm is not None:
            rtm_verdict = rtm.verdict.split(":")[0]
            add(ct, "rtm_rate_ratio_pct", f"treated areas' change relative to equally high untreated {pool_cell_m:g} m cells ({rtm.method})",
                100 * (rtm.rate_ratio - 1), 100 * (rtm.rr_low - 1), 100 * (rtm.rr_high - 1), np.nan, rtm.p_value, "%",
                rtm_verdict, rtm.note)
            add(ct, "rtm_comparison_change_pct", "change in the equally high untreated cells (no patrols)",
                rtm.comparison_change_pct, unit="%")
            rtm_sentence = _describe_rtm(rtm, treated, ct)

        # cost
        cost = cost_harm = None
        prevented = None
        if np.isfinite(did["irr"]) and ra > 0:
            prevented = es.crimes_prevented_from_irr(ra, did["irr"], did["irr_low"], did["irr_high"])
            add(ct, "crimes_prevented", f"{noun} prevented in the treated areas, {after.label} (from the difference-in-differences)",
                prevented.crimes_prevented, prevented.crimes_prevented_low, prevented.crimes_prevented_high, unit=noun,
                note="conditional on the recorded after count; excludes any displacement to or diffusion into the buffers")
        if funding_period:
            add(ct, "funding_pro_rata", f"funding for the {len(after.months)}-month after period (annual funding pro-rated)",
                funding_period, unit="£")
            if prevented is not None:
                cost = es.cost_per_crime_prevented(prevented.crimes_prevented, prevented.crimes_prevented_low,
                                                   prevented.crimes_prevented_high, funding_period)
                add(ct, "cost_per_crime_prevented", f"cost per {_noun_one(members)} prevented", cost.cost_per_crime, cost.cost_low,
                    cost.cost_high, unit="£", verdict=cost.status, note=cost.statement)
            if harm_res is not None and np.isfinite(harm_res["irr"]):
                irr_h, lo_h, hi_h = harm_res["irr"], 1 + harm_res["low"] / 100, 1 + harm_res["high"] / 100
                ph = es.crimes_prevented_from_irr(ha, irr_h, lo_h, hi_h)
                add(ct, "harm_prevented", "harm prevented in the treated areas", ph.crimes_prevented,
                    ph.crimes_prevented_low, ph.crimes_prevented_high, unit="harm units")
                cost_harm = es.cost_per_crime_prevented(ph.crimes_prevented, ph.crimes_prevented_low,
                                                        ph.crimes_prevented_high, funding_period)
                add(ct, "cost_per_harm_unit_prevented", "cost per unit of harm prevented", cost_harm.cost_per_crime,
                    cost_harm.cost_low, cost_harm.cost_high, unit="£", verdict=cost_harm.status,
                    note=cost_harm.statement.replace("crime", "harm unit"))

        # per area
        area_frames.append(_area_table(
            ct, areas, buffers, counts, harm_units, harm_var_units, has_harm, before_idx, after_idx, area_controls,
            u_buf, matched_r_units, matched_d_units, buffer_area_controls, control, district_names,
        ))
        monthly_frames.append(_monthly(ct, counts, months, months_range, u_tall, u_ball, overall_control, u_county,
                                       before, after))
        findings.append({
            "crime_type": ct, "noun": noun, "members": list(members),
            "effect_sentence": sentence, "effect_verdict": verdict,
            "did": {k: float(did[k]) for k in ("pct_change_vs_control", "pct_low", "pct_high", "p_value", "irr")},
            "raw_change_pct": raw, "control_change_pct": c_change,
            "treated_before": rb, "treated_after": ra, "control_before": cb, "control_after": ca,
            "panel": dataclasses.asdict(panel_res) if isinstance(panel_res, es.PanelEffect) else None,
            "panel_sentence": _describe_panel(panel_res, _what(ct), control_label, rb + ra),
            "pre_trend": dataclasses.asdict(pre) if isinstance(pre, es.PreTrendCheck) else None,
            "pre_trend_sentence": _describe_pre_trend(pre, control_label) + (
                " Part of this is the selection itself: the areas were picked on the last of these months, at a peak."
                if treated.selected_on_counts and isinstance(pre, es.PreTrendCheck)
                and pre.verdict == "treated areas were already trending differently" and pre.pct_per_month > 0 else ""),
            "displacement_verdict": disp_verdict, "displacement_sentence": disp_sentence,
            "wdq": q.wdq, "wdq_text": q.interpretation, "tne": t.total_net_effect, "tne_text": t.interpretation,
            "wdd_text": wres.verdict, "wdd_note": wres.note,
            "buffer_before": db, "buffer_after": da,
            "rtm_sentence": rtm_sentence,
            "rtm_verdict": rtm.verdict.split(":")[0] if rtm is not None else "",
            "harm": harm_res,
            "harm_sentence": (describe_change(harm_res["pct"], harm_res["low"], harm_res["high"],
                                              what=f"harm from {_what(ct)} (crimes only, severity-weighted)",
                                              comparison=control_label)
                              if harm_res is not None else "ASB has no harm weight; harm is reported for crimes only"),
            "cost_sentence": _describe_cost(cost, _noun_one(members), funding_gbp, funding_period, len(after.months)),
            "cost_harm_sentence": (_describe_cost(cost_harm, "unit of harm", funding_gbp, funding_period, len(after.months))
                                   if has_harm else "ASB has no harm weight, so there is no cost per unit of harm"),
            "cost_status": cost.status if cost is not None else "",
        })

    for f in findings:
        f["overall_verdict"], f["reasons"] = overall_verdict(f, treated)
        f["headline"] = _headline(f, n_areas, buffer_m, treated)
        add(f["crime_type"], "overall_verdict",
            "the difference-in-differences checked against regression to the mean, the pre-trend and the all-months panel",
            verdict=f["overall_verdict"], note="; ".join(f["reasons"]))
    summary = pd.DataFrame(summary_rows, columns=SUMMARY_COLUMNS)
    areas_table = pd.concat(area_frames, ignore_index=True)[AREA_TABLE_COLUMNS]
    monthly = pd.concat(monthly_frames, ignore_index=True)[MONTHLY_COLUMNS]
    geoms = _geometries(areas, buffers, pool, matched_r, matched_d, control, overall_control, u_dist, district_codes,
                        districts, excluded_geom)
    headline = findings[0]["headline"]
    meta = {
        "n_areas": n_areas,
        "source": treated.source,
        "source_description": treated.description,
        "illustrative": treated.illustrative,
        "selected_on_counts": treated.selected_on_counts,
        "selection_period": treated.selection_period.label if treated.selection_period else "",
        "before": before.label, "before_months": list(before.months),
        "after": after.label, "after_months": list(after.months),
        "panel_months": panel_months, "months_missing": [m for m in months_range if m not in set(months)],
        "months_present": months,
        "control": control, "control_label": control_label,
        "buffer_m": buffer_m, "pool_cell_m": pool_cell_m,
        "crime_types": {k: list(v) for k, v in crime_types.items()},
        "funding_gbp": funding_gbp, "funding_period": funding_period,
        "harm_version": harm.attrs.get("version", ""),
        "notes": notes,
        "treated_km2": float(shapely.area(treated_union) / 1e6),
        "buffer_km2": float(shapely.area(buffer_union) / 1e6),
    }
    return EvaluationResult(summary, areas_table, monthly, geoms, districts, findings, headline, meta)


def _panel(counts: np.ndarray, treated_units: list[int], control_units: list[int], months: list[str],
           panel_months: list[str], after: Period, notes: list[str]):
    """Poisson (main) and negative-binomial (sensitivity) panels and the pre-trend check."""
    idx = [months.index(m) for m in panel_months]
    units = list(treated_units) + list(control_units)
    frame = pd.DataFrame({
        "area": np.repeat([f"u{u}" for u in units], len(idx)),
        "month": np.tile(panel_months, len(units)),
        "count": counts[np.asarray(units)][:, idx].ravel().astype(np.int64),
        "treated": np.repeat([True] * len(treated_units) + [False] * len(control_units), len(idx)),
    })
    frame["post"] = frame["month"] >= after.months[0]
    out = []
    for family in ("poisson", "negbin"):
        try:
            out.append(es.panel_effect(frame, family=family))
        except (ValidationError, ValueError, np.linalg.LinAlgError) as exc:
            out.append(f"not estimable: {getattr(exc, 'message', exc)}")
    try:
        pre = es.pre_trend_check(frame)
    except (ValidationError, ValueError, np.linalg.LinAlgError) as exc:
        pre = f"not estimable: {getattr(exc, 'message', exc)}"
    return out[0], out[1], pre


def _area_table(ct, areas, buffers, counts, harm_units, harm_var_units, has_harm, before_idx, after_idx, area_controls,
                u_buf, matched_r, matched_d, buffer_area_controls, control, district_names) -> pd.DataFrame:
    n = len(areas)

    def tot(unit_lists, idx, arr=counts):
        return np.array([float(arr[np.asarray(u, int)][:, idx].sum()) if len(u) else 0.0 for u in unit_lists])

    own = [[i] for i in range(n)]
    buf = [[u_buf + i] for i in range(n)]
    rb, ra = tot(own, before_idx), tot(own, after_idx)
    cb, ca = tot(area_controls, before_idx), tot(area_controls, after_idx)
    db, da = tot(buf, before_idx), tot(buf, after_idx)
    did = es.did_rate_ratio(rb.astype(int), ra.astype(int), cb.astype(int), ca.astype(int))
    bcb, bca = tot(buffer_area_controls, before_idx), tot(buffer_area_controls, after_idx)
    bdid = es.did_rate_ratio(db.astype(int), da.astype(int), bcb.astype(int), bca.astype(int))
    mrb, mra = tot(matched_r, before_idx), tot(matched_r, after_idx)
    mdb, mda = tot(matched_d, before_idx), tot(matched_d, after_idx)
    rows = []
    for i in range(n):
        q = es.wdq(int(rb[i]), int(ra[i]), int(db[i]), int(da[i]), int(cb[i]), int(ca[i]))
        t = es.total_net_effect(int(rb[i]), int(ra[i]), int(db[i]), int(da[i]), int(cb[i]), int(ca[i]))
        w = es.wdd(int(rb[i]), int(ra[i]), int(mrb[i]), int(mra[i]), int(db[i]), int(da[i]), int(mdb[i]), int(mda[i]))
        h = {"pct": np.nan, "low": np.nan, "high": np.nan}
        hb = ha = np.nan
        if has_harm:
            hb, ha = tot([own[i]], before_idx, harm_units)[0], tot([own[i]], after_idx, harm_units)[0]
            h = harm_did(hb, ha, tot([area_controls[i]], before_idx, harm_units)[0],
                         tot([area_controls[i]], after_idx, harm_units)[0],
                         tot([own[i]], before_idx, harm_var_units)[0], tot([own[i]], after_idx, harm_var_units)[0],
                         tot([area_controls[i]], before_idx, harm_var_units)[0],
                         tot([area_controls[i]], after_idx, harm_var_units)[0])
        d = did.iloc[i]
        rows.append({
            "area_code": areas["area_code"].iloc[i], "area_name": areas["area_name"].iloc[i],
            "district_code": areas["district_code"].iloc[i],
            "district_name": district_names.get(areas["district_code"].iloc[i], ""),
            "area_km2": float(areas["area_km2"].iloc[i]), "buffer_km2": float(buffers["area_km2"].iloc[i]),
            "crime_type": ct,
            "treated_before": int(rb[i]), "treated_after": int(ra[i]),
            "raw_change_pct": 100 * (ra[i] / rb[i] - 1) if rb[i] else np.nan,
            "control": control, "control_before": int(cb[i]), "control_after": int(ca[i]),
            "control_change_pct": 100 * (ca[i] / cb[i] - 1) if cb[i] else np.nan,
            "irr": d["irr"], "irr_low": d["irr_low"], "irr_high": d["irr_high"],
            "pct_change_vs_control": d["pct_change_vs_control"], "pct_low": d["pct_low"], "pct_high": d["pct_high"],
            "p_value": d["p_value"],
            "verdict": classify_change(d["pct_change_vs_control"], d["pct_low"], d["pct_high"], rb[i] + ra[i]),
            "buffer_before": int(db[i]), "buffer_after": int(da[i]),
            "buffer_change_pct": 100 * (da[i] / db[i] - 1) if db[i] else np.nan,
            "buffer_pct_vs_control": bdid["pct_change_vs_control"].iloc[i], "buffer_pct_low": bdid["pct_low"].iloc[i],
            "buffer_pct_high": bdid["pct_high"].iloc[i],
            "wdq": q.wdq, "tne": t.total_net_effect, "tne_treated": t.treated_effect, "tne_buffer": t.buffer_effect,
            "wdd": w.wdd, "wdd_z": w.z, "wdd_p": w.p_value, "displacement_wdd": w.displacement_wdd,
            "displacement_z": w.displacement_z, "displacement_p": w.displacement_p,
            "harm_before": hb, "harm_after": ha, "harm_pct_vs_control": h["pct"], "harm_pct_low": h["low"],
            "harm_pct_high": h["high"],
            "note": "; ".join(filter(None, [d["note"], w.note])),
        })
    return pd.DataFrame(rows, columns=AREA_TABLE_COLUMNS)


def _monthly(ct, counts, months, months_range, u_tall, u_ball, control_units, u_county, before: Period, after: Period) -> pd.DataFrame:
    pos = {m: i for i, m in enumerate(months)}
    series = {
        "treated": counts[u_tall], "buffer": counts[u_ball],
        "control": counts[np.asarray(control_units)].sum(axis=0), "county": counts[u_county],
    }
    rows = []
    for m in months_range:
        in_data = m in pos
        if m in before.months:
            period = "before"
        elif m in after.months:
            period = "after"
        elif not in_data:
            period = "no data"
        elif m < before.months[0]:
            period = "history"
        elif m > after.months[-1]:
            period = "after (trend)"
        elif before.months[-1] < m < after.months[0]:
            period = "transition"
        else:
            period = "other"
        row = {"crime_type": ct, "month": m, "in_data": in_data, "period": period}
        for k, s in series.items():
            row[k] = float(s[pos[m]]) if in_data else np.nan
        rows.append(row)
    out = pd.DataFrame(rows)
    before_rows = out["period"] == "before"
    for k in ("treated", "buffer", "control"):
        base = out.loc[before_rows, k].mean()
        out[f"{k}_index"] = 100 * out[k] / base if base and np.isfinite(base) else np.nan
    return out


def _geometries(areas, buffers, pool, matched_r, matched_d, control, overall_control, u_dist, district_codes,
                districts, excluded_geom) -> gpd.GeoDataFrame:
    frames = []
    t = areas[["area_code", "area_name", "district_code", "area_km2"]].copy()
    t["selection_count"] = areas["selection_count"] if "selection_count" in areas else np.nan
    t["role"] = "treated"
    frames.append(gpd.GeoDataFrame(t, geometry=areas.geometry.values, crs=BNG))
    b = buffers[["area_code", "area_name", "district_code", "area_km2"]].copy()
    b["selection_count"], b["role"] = np.nan, "buffer"
    frames.append(gpd.GeoDataFrame(b, geometry=buffers.geometry.values, crs=BNG))
    for role, sets in (("matched_control", matched_r), ("buffer_matched_control", matched_d)):
        rows = [(i, c) for i, cs in enumerate(sets) for c in cs]
        if rows:
            idx = np.array([c for _, c in rows])
            g = gpd.GeoDataFrame({
                "area_code": pool["cell_id"].to_numpy()[idx],
                "area_name": [f"control for {areas['area_code'].iloc[i]}" for i, _ in rows],
                "district_code": "", "area_km2": pool["cell_area_km2"].to_numpy()[idx], "selection_count": np.nan,
                "role": role,
            }, geometry=pool.geometry.values[idx], crs=BNG)
            frames.append(g)
    if control in ("rest_of_county", "rest_of_district"):
        codes = [district_codes[u - u_dist] for u in overall_control]
        d = districts[districts["area_code"].isin(codes)]
        geom = shapely.difference(d.geometry.values, excluded_geom)
        frames.append(gpd.GeoDataFrame({
            "area_code": d["area_code"].to_numpy(), "area_name": d["area_name"].to_numpy(),
            "district_code": d["area_code"].to_numpy(), "area_km2": shapely.area(geom) / 1e6, "selection_count": np.nan,
            "role": "control",
        }, geometry=geom, crs=BNG))
    out = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(out[GEOMETRY_COLUMNS], geometry="geometry", crs=BNG)


# --------------------------------------------------------------------------- sentences
def _describe_panel(res, ct: str, comparison: str, n: float) -> str:
    if not isinstance(res, es.PanelEffect):
        return f"The monthly model could not be fitted ({res})."
    s = describe_change(res.pct_change, res.pct_low, res.pct_high, what=ct, comparison=comparison, n_crimes=n)
    return f"Using all {res.n_periods} months with data (area and month effects): {s}."


def _pm(x: float) -> str:
    """'+0.04%', '−0.96%' (two decimals, typographic minus) for small monthly trends."""
    return ("−" if x < 0 else "+") + f"{abs(x):.2f}%"


def _describe_pre_trend(pre, comparison: str = "the comparison") -> str:
    if not isinstance(pre, es.PreTrendCheck):
        return f"The check of trends before the patrols could not be made ({pre})."
    n = pre.n_pre_periods
    if pre.verdict == "no evidence of differing pre-trends":
        return (f"Before the patrols, these areas and {comparison} moved in step: no difference in trend was detected over "
                f"{n} months with data ({_pm(pre.pct_per_month)} a month, {LEVEL:.0%} CI {_pm(pre.pct_low)} to "
                f"{_pm(pre.pct_high)}).")
    if pre.verdict == "treated areas were already trending differently":
        direction = "rising" if pre.pct_per_month > 0 else "falling"
        return (f"Warning: before the patrols, crime in these areas was already {direction} relative to {comparison} "
                f"(by about {abs(pre.pct_per_month):.1f}% a month, {LEVEL:.0%} CI {_pm(pre.pct_low)} to "
                f"{_pm(pre.pct_high)}, over {n} months with data), so a simple before/after comparison may be biased.")
    if pre.verdict == "not enough pre-period months":
        return f"There are too few months before the patrols ({n}) to check whether the areas were already trending differently."
    return f"The check of trends before the patrols: {pre.verdict}."


def _describe_rtm(rtm: es.RTMCheck, treated: TreatedAreas, ct: str) -> str:
    if not np.isfinite(rtm.rate_ratio):
        return "The regression-to-the-mean check could not be made (a zero count)."
    if treated.selected_on_counts:
        period = human_period(treated.selection_period.label) if treated.selection_period else "the before period"
        lead = (f"These areas were picked because they had the most crime in {period}, and places picked at a peak "
                "tend to fall back anyway (regression to the mean). ")
    elif treated.selected_on_counts is False:
        lead = ("These areas were not picked on these counts, so little regression to the mean is expected; "
                "the check is shown for completeness. ")
    else:
        lead = "If these areas were picked because of high recent crime, some fall was expected anyway. "
    numbers = (f"Untreated places with equally high {_what(ct)} before changed by {_signed(rtm.comparison_change_pct)} "
               f"without patrols; the treated areas changed by {_signed(rtm.treated_change_pct)}. ")
    pct, low, high = 100 * (rtm.rate_ratio - 1), 100 * (rtm.rr_low - 1), 100 * (rtm.rr_high - 1)
    v = classify_change(pct, low, high)
    ci = f"{_signed(pct)}, {LEVEL:.0%} CI {_signed(low)} to {_signed(high)}"
    if v == "fell":
        tail = f"The treated areas fell more than those places ({ci}): the fall is not explained by regression to the mean alone."
    elif v == "rose":
        tail = f"The treated areas did worse than those places ({ci})."
    elif rtm.treated_change_pct < 0:
        tail = (f"The difference between them is not detectable ({ci}), so the fall is consistent with regression to "
                "the mean and cannot be credited to the patrols on this evidence.")
    else:
        tail = f"The treated areas changed about as much as those places (difference {ci})."
    return lead + numbers + tail


def _describe_cost(cost: es.CostPerCrime | None, one: str, funding: float | None, funding_period: float | None,
                   n_after: int) -> str:
    if not funding:
        return "No funding figure was given, so no cost per crime prevented (set [evaluation] funding_gbp)."
    basis = f"£{funding:,.0f} a year pro-rated to the {n_after}-month after period: £{funding_period:,.0f}"
    if cost is None:
        return f"The cost per {one} prevented cannot be estimated ({basis})."
    if cost.status == "defined":
        return (f"about £{cost.cost_per_crime:,.0f} per {one} prevented (95% interval £{cost.cost_low:,.0f}"
                f"–£{cost.cost_high:,.0f}; {basis})")
    if cost.status == "unbounded":
        return (f"the evaluation cannot rule out that nothing was prevented, so the cost per {one} prevented has no "
                f"upper limit (best estimate £{cost.cost_per_crime:,.0f}; {basis})")
    return f"nothing can be shown to have been prevented, so there is no cost per {one} prevented to report ({basis})"


def overall_verdict(f: dict[str, Any], treated: TreatedAreas) -> tuple[str, list[str]]:
    """("credible reduction" | "reduction not attributable" | "no detectable change" | "increase" |
    "too few crimes to tell" | "not estimable", reasons).

    A fall relative to the control (difference-in-differences) is only called
    a credible reduction when it survives three checks: regression to the mean
    (when the areas may have been picked on their counts), the all-months
    panel, and the pre-trend.
    """
    v = f["effect_verdict"]
    if v != "fell":
        return {"rose": "increase"}.get(v, v), []
    reasons = []
    if treated.selected_on_counts is not False and f["rtm_verdict"].startswith("consistent with regression"):
        reasons.append("similar high-crime places without patrols fell about as much (regression to the mean)")
    p = f["panel"]
    if p and classify_change(p["pct_change"], p["pct_low"], p["pct_high"]) != "fell":
        reasons.append(f"over all {p['n_periods']} months of data there is no detectable change "
                       f"({_signed(p['pct_change'])}, {LEVEL:.0%} CI {_signed(p['pct_low'])} to {_signed(p['pct_high'])})")
    if f["pre_trend"] and f["pre_trend"]["verdict"] == "treated areas were already trending differently":
        reasons.append("the areas were already moving differently from the comparison before the patrols")
    return ("reduction not attributable" if reasons else "credible reduction"), reasons


def _headline(f: dict[str, Any], n_areas: int, buffer_m: float, treated: TreatedAreas) -> str:
    verdict, reasons = overall_verdict(f, treated)
    disp = {
        "none detected": f"no displacement to the {buffer_m:g} m buffers was detected",
        "displacement": f"crime rose in the {buffer_m:g} m buffers on both displacement tests: displacement",
        "possible displacement": f"one of two tests suggests some displacement into the {buffer_m:g} m buffers",
        "diffusion": f"crime also fell in the {buffer_m:g} m buffers (no displacement)",
        "possible diffusion": f"no displacement to the {buffer_m:g} m buffers was detected",
        "too few crimes to tell": f"there were too few crimes in the {buffer_m:g} m buffers to tell about displacement",
    }[f["displacement_verdict"]]
    lead = f"Across the {n_areas} areas, {f['effect_sentence']}"
    if verdict == "credible reduction":
        parts = [lead, disp]
        if f["cost_status"] == "defined":
            parts.append(f["cost_sentence"].split(" (")[0])
        elif f["cost_status"] == "unbounded":
            parts.append("the cost per crime prevented has no upper limit because the interval reaches zero")
        text = "; ".join(parts) + "."
    elif verdict == "reduction not attributable":
        text = (f"{lead}, but the fall cannot be credited to the patrols: " + ", and ".join(reasons[:2]) + ". "
                f"{disp[0].upper() + disp[1:]}. No cost per crime prevented can be claimed.")
    else:
        text = f"{lead}; {disp}."
        if f["cost_status"]:
            first = f["cost_sentence"].split(" (")[0]
            text += " " + first[0].upper() + first[1:] + "."
    return text[0].upper() + text[1:]


# --------------------------------------------------------------------------- the stage
def stage_evaluate(ctx: Context) -> dict[str, Any]:
    """Before/after evaluation of the treated areas; writes ``evaluation/`` under ``ctx.out``.

    Outputs: ``evaluation_summary.csv``, ``evaluation_areas.csv``,
    ``evaluation_monthly.csv``, ``treated_areas.gpkg`` (areas, buffers and
    controls, column ``role``) and ``evaluation_report.html``.
    """
    settings = ctx.settings
    raw = settings.extra.get("evaluation", {}) or {}
    cfg = evaluation_config(raw, settings.crime_groups)
    record = settings.record_auto

    before, after, why = resolve_evaluation_periods(ctx.months_present, cfg.before, cfg.after)
    record("evaluation.periods", {"before": list(before.months), "after": list(after.months)}, why)
    names = cfg.crime_types or tuple(n for n in DEFAULT_CRIME_TYPES if n in settings.crime_groups) or ("Anti-social behaviour",)
    if not cfg.crime_types:
        record("evaluation.crime_types", list(names), "default: the group Operation Hotspot reports (ASB and violence), then ASB and violence separately")
    crime_types = resolve_crime_types(names, settings.crime_groups)
    primary = next(iter(crime_types))

    if cfg.areas:
        treated = _source_file(ctx, cfg)
        record("evaluation.areas", cfg.areas, "treated areas from the polygon file in the config / --areas")
    else:
        source = TREATED_AREA_SOURCES[cfg.selection]
        treated = source(ctx, cfg, before=before, crime_types=crime_types[primary], group_name=primary)
        record("evaluation.areas", f"illustrative: {cfg.selection}",
               "no areas file given, so the toolkit's own ILLUSTRATIVE areas are evaluated: " + treated.description)
    if "buffer_m" not in raw:
        record("evaluation.buffer_m", cfg.buffer_m, "default displacement buffer width")
    if "control" not in raw:
        record("evaluation.control", cfg.control, "default: the rest of the county excluding treated areas and buffers")
    record("evaluation.panel_family", "poisson",
           "Poisson fixed effects with cluster-robust (by area) standard errors, valid under overdispersion; "
           "negative binomial reported as a sensitivity check")

    result = evaluate_areas(
        ctx.points, treated, ctx.geography.districts,
        months_present=ctx.months_present, before=before, after=after, crime_types=crime_types,
        buffer_m=cfg.buffer_m, control=cfg.control, funding_gbp=cfg.funding_gbp,
        all_months=month_range(settings.first_month, settings.last_month), study_area=ctx.geography.force,
        record=record,
    )
    result.meta["force_name"] = ctx.geography.force_name
    result.meta["period_reason"] = why
    result.meta["auto"] = {k: v for k, v in settings.auto.items() if k.startswith("evaluation.")}

    out = ctx.out
    out.write_csv(result.summary, "evaluation/evaluation_summary.csv")
    out.write_csv(result.areas_table, "evaluation/evaluation_areas.csv")
    out.write_csv(result.monthly, "evaluation/evaluation_monthly.csv")
    out.write_geo(result.geometries, "evaluation/treated_areas.gpkg")
    ctx.results["evaluation_result"] = result

    f = result.findings[0]
    summary = {
        "headline": result.headline,
        "areas": treated.description,
        "illustrative": treated.illustrative,
        "before": before.label, "after": after.label, "control": cfg.control, "buffer_m": cfg.buffer_m,
        "crime_type": f["crime_type"],
        "pct_change_vs_control": f["did"]["pct_change_vs_control"],
        "pct_low": f["did"]["pct_low"], "pct_high": f["did"]["pct_high"], "p_value": f["did"]["p_value"],
        "displacement": f["displacement_verdict"], "rtm": f["rtm_verdict"],
        "overall_verdict": f["overall_verdict"],
        "cost": (f["cost_sentence"] if f["overall_verdict"] == "credible reduction" else
                 f"not claimed ({f['overall_verdict']}); only if the whole fall relative to the comparison were due to "
                 f"the patrols: {f['cost_sentence']}" if f["cost_status"] == "defined" else f["cost_sentence"]),
    }
    ctx.results["evaluation"] = summary
    ctx.progress.info("  " + result.headline)
    return summary
