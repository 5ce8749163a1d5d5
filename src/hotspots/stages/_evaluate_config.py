"""The ``[evaluation]`` table of the config, and what it resolves to: periods, crime types, treated areas.

:func:`evaluation_config` validates the table (every problem reported at
once); :func:`resolve_evaluation_periods` and :func:`resolve_crime_types`
turn it into periods and crime types; :data:`TREATED_AREA_SOURCES` turns
``selection`` into treated areas, from the run's :class:`Context`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hotspots._errors import ConfigError, DataNotFoundError
from hotspots.config import expand_crime_types
from hotspots.geo.aggregate import Period, resolve_periods
from hotspots.geo.boundaries import read_user_areas
from hotspots.months import MONTH_RE, month_ranges
from hotspots.schema import EVALUATION_CONTROLS, POLICE_UK_CRIME_TYPES

if TYPE_CHECKING:  # pragma: no cover
    from hotspots.evaluation import TreatedAreas
    from hotspots.stages.context import Context

# hotspots.evaluation (and the scipy.stats it imports, about half a second) is imported where it is used, not
# here: ``hotspots run`` checks this section before reading any data, in the process that later runs the
# hotspots stage beside the evaluation (hotspots.stages.run), which never needs it.

__all__ = [
    "DEFAULT_CRIME_TYPES", "TREATED_AREA_SOURCES", "EvaluationConfig", "evaluation_config", "resolve_crime_types",
    "resolve_evaluation_periods",
]

#: the comparisons ``control`` accepts (:data:`hotspots.evaluation.CONTROLS`), from the schema so that checking the
#: config does not import the evaluation
CONTROLS = EVALUATION_CONTROLS

#: Default crime types/groups (those in the config's [crime_groups] are used): a combined group, then its two halves.
DEFAULT_CRIME_TYPES = ("ASB and violence", "ASB", "Violence")


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """The ``[evaluation]`` table of the config, validated (empty values = automatic)."""

    areas: str = ""
    name_column: str = ""
    selection: str = "hotspot_patrol_areas"
    patrol_selection: str = ""
    n_areas: int | None = None
    cell_m: float = 250.0
    selection_period: tuple[str, str] | None = None
    before: tuple[str, str] | None = None
    after: tuple[str, str] | None = None
    buffer_m: float = 250.0
    control: str = "rest_of_county"
    crime_types: tuple[str, ...] = ()
    town_centres: tuple[str, ...] = ()
    funding_gbp: float | None = None
    programme: str = ""
    published_figure: str = ""
    notes: str = ""
    placebo_draws: int = 999
    seed: int = 20240601


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
    for key, lo, hi in (("placebo_draws", 99, 100000), ("seed", 0, 2**32 - 1)):
        if key in raw:
            v = raw[key]
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                problems.append(f"evaluation.{key} = {v!r} must be a whole number between {lo} and {hi}")
            else:
                out[key] = v
    for key in ("areas", "name_column", "programme", "published_figure", "notes", "patrol_selection"):
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
    if "town_centres" in raw:
        v = raw["town_centres"]
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) and x for x in v):
            problems.append(f"evaluation.town_centres = {v!r} must be a list of town-centre names")
        else:
            out["town_centres"] = tuple(v)
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

    >>> from hotspots.months import month_range
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


# --------------------------------------------------------------------------- treated-area sources
def _source_file(ctx: Context, cfg: EvaluationConfig, **_: Any) -> TreatedAreas:
    from hotspots.evaluation import TreatedAreas

    areas = read_user_areas(cfg.areas, name_column=cfg.name_column or None)
    return TreatedAreas(
        areas=areas, source="file", illustrative=False, selected_on_counts=None,
        description=f"{len(areas)} areas from {cfg.areas}",
    )


def _source_town_centres(ctx: Context, cfg: EvaluationConfig, **_: Any) -> TreatedAreas:
    if not cfg.town_centres:
        raise ConfigError("evaluation.selection = \"town_centres\" needs the town centres to evaluate",
                          hint="list them in [evaluation] town_centres = [\"...\", ...] (names of the town-centre layer)")
    from hotspots.evaluation import town_centre_treatment

    return town_centre_treatment(ctx.geography.town_centres, cfg.town_centres,
                                 source_text=f"named in {cfg.programme}'s published results" if cfg.programme else "")


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
    from hotspots.evaluation import patrol_area_treatment

    return patrol_area_treatment(
        ctx.points, ctx.geography.force, ctx.geography.districts, period=period, before=before,
        crime_types=crime_types, group_name=group_name, n_areas=cfg.n_areas or 26, cell_m=cfg.cell_m,
    )


def _source_hotspot_patrol_areas(ctx: Context, cfg: EvaluationConfig, *, before: Period, crime_types: Sequence[str],
                                 group_name: str, **_: Any) -> TreatedAreas:
    """The patrol areas the hotspot stage detects (same ids and names as the maps), picked on the before period."""
    from hotspots.evaluation.hotspot_areas import detected_patrol_treatment
    from hotspots.stages.hotspots import build_inputs, hotspot_config

    hcfg = hotspot_config(ctx.settings)
    inputs = _with_stage_codes(ctx, build_inputs(ctx, hcfg))
    record = ctx.settings.record_auto
    if cfg.patrol_selection:
        if cfg.patrol_selection not in inputs.selections:
            raise ConfigError(f"evaluation.patrol_selection = {cfg.patrol_selection!r} is not one of the hotspot "
                              f"selections {list(inputs.selections)}",
                              hint="use one of [hotspots] crime_types, or leave patrol_selection empty")
        sel = cfg.patrol_selection
    elif group_name in inputs.selections:
        sel = group_name
        record("evaluation.patrol_selection", sel, "the hotspot selection that is the evaluation's headline group")
    else:
        sel = hcfg.map_selection or next(iter(inputs.selections))
        record("evaluation.patrol_selection", sel,
               f"the evaluation's headline group {group_name!r} is not a hotspot selection, so the patrol areas are "
               "those of the maps' first selection (set [evaluation] patrol_selection to change)")
    if cfg.selection_period:
        period = Period.from_range(cfg.selection_period[0], cfg.selection_period[1], ctx.months_present)
        why = "from the config"
    else:
        period = before
        why = ("the before period: the areas an analyst would have drawn from the data available when the patrols "
               "started; the regression-to-the-mean check and the placebo calibration allow for that selection")
    record("evaluation.selection_period", period.label, why)
    try:
        return detected_patrol_treatment(inputs, hcfg, sel, period=period, before=before, max_areas=cfg.n_areas,
                                         grids=_stage_grids(ctx, inputs, hcfg))
    except DataNotFoundError as exc:
        record("evaluation.selection", "patrol_areas",
               f"{exc.message}; the busiest grid cells of the before period are evaluated instead")
        return _source_patrol_areas(ctx, cfg, before=before, crime_types=crime_types, group_name=group_name)


def _with_stage_codes(ctx: Context, inputs: Any) -> Any:
    """``inputs`` with the hotspots stage's point codes when that stage ran in this process on the same points.

    The codes (:class:`hotspots.detect._points.PointCodes`) are a function of
    the points and the harm weights alone, so when both equal the stage's (one
    process, ``HOTSPOTS_WORKERS=1``) its codes are the ones the evaluation would
    build; otherwise (the evaluation beside the stage in a forked process, or
    other points) ``inputs`` is returned as it is and builds its own.  The
    patrol areas themselves are not reused: the evaluation picks them on its
    before period, not on the stage's analysis period.
    """
    stage = (getattr(ctx, "results", None) or {}).get("hotspots") or {}
    done = stage.get("inputs")
    if done is None or done._codes is None or inputs._codes is not None:
        return inputs
    if not (done.points.equals(inputs.points) and done.harm_weights.equals(inputs.harm_weights)):
        return inputs
    return dataclasses.replace(inputs, _codes=done._codes)


def _stage_grids(ctx: Context, inputs: Any, hcfg: Any) -> dict[str, Any]:
    """District code -> the hotspots stage's grid of that district, where it is the grid the evaluation makes.

    A grid is ``make_grid`` of a district's geometry, cell size and the options' cell shape, so when the
    stage ran in this process with the same options on the same district (code, cell size and geometry
    equal), its grid is the one :func:`hotspots.evaluation.hotspot_areas.detected_patrol_areas` would make;
    the others are made there as before.  Only the grid is reused: the evaluation picks its patrol areas on
    its own period.
    """
    import shapely

    stage = (getattr(ctx, "results", None) or {}).get("hotspots") or {}
    if not stage.get("districts") or stage.get("config") != hcfg:
        return {}
    wanted = {area.code: area for area in inputs.districts}
    grids = {}
    for done in stage["districts"]:
        area = wanted.get(done.area.code)
        if area is not None and area.cell_size == done.area.cell_size \
                and shapely.to_wkb(area.geometry) == shapely.to_wkb(done.area.geometry):
            grids[area.code] = done.grid
    return grids


#: Treated-area sources for the illustrative default: name -> function(ctx, cfg, *, before, crime_types,
#: group_name, **more) -> TreatedAreas (before: the before Period; crime_types: the headline group's
#: police.uk types; group_name: its name).  Another stage (e.g. hotspot detection) can register its own
#: here and select it with ``[evaluation] selection = "<name>"``.
TREATED_AREA_SOURCES: dict[str, Callable[..., TreatedAreas]] = {
    "hotspot_patrol_areas": _source_hotspot_patrol_areas,
    "patrol_areas": _source_patrol_areas,
    "town_centres": _source_town_centres,
}
