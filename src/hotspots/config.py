"""Settings: a frozen dataclass loaded from TOML.

Every value that is chosen automatically (a data directory found through
``$HOTSPOTS_DATA``, a period picked from the data, a grid cell size) is recorded
with the reason, so the run manifest can say what was used and why.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from hotspots._errors import ConfigError, DataNotFoundError
from hotspots._validate import _Problems
from hotspots.months import MONTH_RE


DEFAULT_CONFIG_NAME = "hertfordshire.toml"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Resolved settings for one run (see ``configs/hertfordshire.toml``)."""

    name: str
    data_dir: str
    output_dir: str
    forces: tuple[str, ...]
    #: the ONS police force area code (the first when the study area spans several forces)
    force_area_code: str
    first_month: str
    last_month: str
    current: tuple[str, str] | None
    comparison: tuple[str, str] | None
    crime_groups: dict[str, tuple[str, ...]]
    town_centres: str = ""
    town_centre_name_column: str = "name"
    source: str = ""
    #: every force area code of the study area (one per force; ``force_area_code`` is the first)
    force_area_codes: tuple[str, ...] = ()
    #: name -> (value, reason) for values chosen automatically
    auto: dict[str, tuple[Any, str]] = dataclasses.field(default_factory=dict)
    #: the raw TOML tables, for sections later stages read (evaluation, maps)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)

    def record_auto(self, key: str, value: Any, reason: str) -> None:
        """Record a value chosen automatically (the dict is mutable on purpose)."""
        self.auto[key] = (value, reason)

    def to_manifest(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["auto"] = {k: {"value": v, "reason": r} for k, (v, r) in self.auto.items()}
        out["crime_groups"] = {k: list(v) for k, v in self.crime_groups.items()}
        return out


#: top-level keys and sections of a config file (the sections after ``geography`` are read by their stages)
TOP_LEVEL: dict[str, type] = {
    "name": str, "data_dir": str, "output_dir": str, "forces": list, "force_area_code": str,
    "periods": dict, "crime_groups": dict, "geography": dict, "evaluation": dict, "hotspots": dict, "outliers": dict,
    "outputs": dict,
}
#: keys of ``[outputs]``: how files are written (``grid_cells``: "significant_or_nonzero" (default) or "all")
OUTPUT_KEYS = {"grid_cells": ("significant_or_nonzero", "all")}
#: config values that are file or folder paths: (section or None for the top level, key)
PATH_KEYS = ((None, "data_dir"), (None, "output_dir"), ("geography", "town_centres"), ("evaluation", "areas"),
             ("outliers", "peer_groups"), ("outliers", "harm_weights"))
PERIOD_KEYS = ("first", "last", "current", "comparison")
GEOGRAPHY_KEYS = ("town_centres", "town_centre_name_column")
_TOML_TYPE = {str: "a string in quotes", list: "a list [...]", dict: "a [section] table",
              (str, list): 'a string in quotes or a list ["...", "..."]'}
TOP_LEVEL["force_area_code"] = (str, list)  # one ONS code, or a list for several forces


def _check_month(value: Any, where: str, problems: _Problems) -> str | None:
    if not isinstance(value, str) or not MONTH_RE.match(value):
        problems.add(f"{where} = {value!r} is not a month", 'Write months as "YYYY-MM".')
        return None
    return value


def _check_range(value: Any, where: str, problems: _Problems) -> tuple[str, str] | None:
    if value in (None, [], ""):
        return None
    if not isinstance(value, list) or len(value) != 2:
        problems.add(f'{where} = {value!r} must be ["YYYY-MM", "YYYY-MM"] or []', 'Write a period as ["YYYY-MM", "YYYY-MM"].')
        return None
    a = _check_month(value[0], f"{where}[0]", problems)
    b = _check_month(value[1], f"{where}[1]", problems)
    if a and b and a > b:
        problems.add(f"{where} = {value!r}: the first month is after the last", "Put the earlier month first.")
    return (a, b) if a and b else None


def _check_force_area(raw: dict, forces: list[str], problems: _Problems) -> list[str]:
    """The force area code(s), checked against the ONS code pattern and against the police.uk ``forces``.

    A force area code left from another force's config (Hertfordshire's with
    ``forces = ["kent"]``) would clip the records to the wrong area and keep
    almost none of them, so it is an error naming the right code.
    """
    from hotspots.io.forces import force_for_code, police_forces

    value = raw.get("force_area_code", "")
    codes = [value] if isinstance(value, str) else list(value) if isinstance(value, list) else []
    if not codes or not all(isinstance(c, str) and re.fullmatch(r"[EW]\d{8}", c) for c in codes):
        if "force_area_code" not in raw or isinstance(value, (str, list)):
            problems.add(f"force_area_code = {value!r} must be an ONS police force area code such as \"E23000032\" "
                         "(a list for several forces)",
                         "`hotspots init --force NAME` writes a config with the right code; the codes are in the "
                         "data home's lookups/lookup_ltla24_csp24_pfa24_ew.csv (pfa24_code).")
        return []
    by_slug = {f.police_uk_force: f for f in police_forces()}
    known = [by_slug[f] for f in forces if f in by_slug]
    for force in known:
        if force.pfa_code not in codes:
            others = ", ".join(f"{c} ({f.pfa_name})" if (f := force_for_code(c)) else c for c in codes)
            problems.add(f"forces includes {force.police_uk_force!r} ({force.falls_within}, force area {force.pfa_code}) "
                         f"but force_area_code is {others}: the records would be clipped to another force's area",
                         f"set force_area_code = \"{force.pfa_code}\" for {force.pfa_name}"
                         + (" (a list of codes for several forces)" if len(forces) > 1 else "")
                         + ", or run `hotspots init --force " + force.police_uk_force + "`.")
    return codes


def _unknown_keys(table: dict, valid, where: str, problems: _Problems) -> None:
    import difflib

    for key in table:
        if key not in valid:
            close = difflib.get_close_matches(str(key), list(valid), n=1)
            problems.add(
                f"unknown {where} {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                + f"; valid: {', '.join(valid)}",
                "Remove or correct the misspelt names: an unknown name would be ignored.",
            )


def resolve_config_paths(raw: dict, config_file: str | os.PathLike | None) -> dict:
    """``raw`` with its relative paths (:data:`PATH_KEYS`) made absolute against the config file's folder.

    A config you write says where its data and outputs are relative to itself,
    so it works from any working folder.  The shipped default config
    (``config_file=None``) is the exception: it lives inside the installed package,
    so its relative paths (``data_dir = "../shared/data"``) stay relative to the
    working folder, where the README runs it (the repository root).  ``~`` is
    expanded; absolute paths and empty values are left alone.

    >>> resolve_config_paths({"data_dir": "data", "output_dir": "/tmp/o", "outliers": {"peer_groups": "msg.csv"}},
    ...                      "/home/me/project/herts.toml")
    {'data_dir': '/home/me/project/data', 'output_dir': '/tmp/o', 'outliers': {'peer_groups': '/home/me/project/msg.csv'}}
    """
    if config_file is None:
        return raw
    base = Path(os.path.abspath(config_file)).parent
    out = dict(raw)
    for section, key in PATH_KEYS:
        table = out if section is None else out.get(section)
        if not isinstance(table, dict) or not isinstance(table.get(key), str) or not table[key].strip():
            continue
        value = Path(table[key]).expanduser()
        if not value.is_absolute():
            if section is not None:
                table = out[section] = dict(table)
            table[key] = os.path.normpath(base / value)
    return out


def default_config_path() -> Path:
    return Path(str(resources.files("hotspots") / "configs" / DEFAULT_CONFIG_NAME))


def load_config(path: str | os.PathLike | None = None, *, sections=None) -> Settings:
    """Load and validate a TOML config; ``None`` loads the Hertfordshire default.

    All problems are collected and reported together, in one message: unknown
    sections and keys (with the valid ones), wrong kinds of value, months,
    and period logic (the comparison period outside the analysis period).
    The ``[evaluation]``, ``[hotspots]`` and ``[outliers]`` sections are
    checked by their stages: pass ``sections=hotspots.stages.run.check_settings``
    (what the ``hotspots`` command does) to have them in the same message.
    """
    from hotspots.schema import POLICE_UK_CRIME_TYPES

    cfg_path = Path(path) if path is not None else default_config_path()
    if not cfg_path.is_file():
        raise ConfigError(
            f"config file not found: {cfg_path}",
            hint="pass an existing TOML file with --config, or omit --config to use the Hertfordshire default",
        )
    try:
        raw = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{cfg_path}: not valid TOML ({exc})", hint="fix the syntax at the position shown") from exc

    is_default = path is None or Path(path).resolve() == default_config_path().resolve()
    raw = resolve_config_paths(raw, None if is_default else cfg_path)
    problems = _Problems(str(cfg_path))
    _unknown_keys(raw, list(TOP_LEVEL), "key or section", problems)
    outputs = raw.get("outputs") if isinstance(raw.get("outputs"), dict) else {}
    _unknown_keys(outputs, list(OUTPUT_KEYS), "key in [outputs]", problems)
    for key, allowed in OUTPUT_KEYS.items():
        if key in outputs and outputs[key] not in allowed:
            problems.add(f"outputs.{key} = {outputs[key]!r} must be one of {', '.join(map(repr, allowed))}",
                         "See the [outputs] section of the shipped default config.")
    for key, kind in TOP_LEVEL.items():
        if key in raw and key != "forces" and not isinstance(raw[key], kind):
            problems.add(f"{key} = {raw[key]!r} must be {_TOML_TYPE[kind]}",
                         "Compare with the shipped default config (same names, same kinds of value).")
    table = lambda key: raw[key] if isinstance(raw.get(key), dict) else {}  # noqa: E731
    periods = table("periods")
    _unknown_keys(periods, PERIOD_KEYS, "key in [periods]", problems)
    first = _check_month(periods.get("first", "2021-01"), "periods.first", problems)
    last = _check_month(periods.get("last", "2025-12"), "periods.last", problems)
    if first and last and first > last:
        problems.add(f"periods.first = {first!r} is after periods.last = {last!r}", "Put the earlier month first.")
    current = _check_range(periods.get("current"), "periods.current", problems)
    comparison = _check_range(periods.get("comparison"), "periods.comparison", problems)
    for label, rng in (("periods.current", current), ("periods.comparison", comparison)):
        if rng and first and last and (rng[0] < first or rng[1] > last):
            problems.add(f"{label} = {list(rng)} is not inside periods.first..periods.last ({first}..{last})",
                         "Periods must lie inside the months read (periods.first..periods.last).")
    if current and comparison and comparison[0] <= current[1] and current[0] <= comparison[1]:
        problems.add(f"periods.comparison = {list(comparison)} overlaps periods.current = {list(current)}",
                     "The comparison period must be outside the analysis period (usually the same months a year earlier).")

    forces = raw.get("forces", [])
    if isinstance(forces, str):
        forces = [forces]
    if not isinstance(forces, list) or not forces or not all(isinstance(f, str) and re.fullmatch(r"[a-z0-9-]+", f) for f in forces):
        problems.add(f"forces = {raw.get('forces', [])!r} must be a list of police.uk force slugs such as [\"hertfordshire\"]",
                     "Force slugs are the folder names under police_uk/ in the data home.")
        forces = []

    groups: dict[str, tuple[str, ...]] = {}
    for gname, members in table("crime_groups").items():
        if not isinstance(members, list) or not members:
            problems.add(f"crime_groups.{gname!r} must be a non-empty list of police.uk crime types",
                         "A group lists police.uk categories.")
            continue
        unknown = [m for m in members if m not in POLICE_UK_CRIME_TYPES]
        if unknown:
            problems.add(f"crime_groups.{gname!r} has unknown crime types {unknown}",
                         "Valid crime types are: " + ", ".join(POLICE_UK_CRIME_TYPES) + ".")
            continue
        if gname in POLICE_UK_CRIME_TYPES and tuple(members) != (gname,):
            problems.add(f"crime_groups.{gname!r} reuses a police.uk category name for a group", "Rename the group.")
            continue
        groups[gname] = tuple(members)

    codes = _check_force_area(raw, forces, problems)

    geo = table("geography")
    _unknown_keys(geo, GEOGRAPHY_KEYS, "key in [geography]", problems)
    for key in GEOGRAPHY_KEYS:
        if key in geo and not isinstance(geo[key], str):
            problems.add(f"geography.{key} = {geo[key]!r} must be a string", "Write a file path or column name in quotes.")
    tc = _town_centre_marker(geo.get("town_centres", "")) if isinstance(geo.get("town_centres", ""), str) else ""
    if tc.startswith("builtin:") and tc not in BUILTIN_TOWN_CENTRES:
        problems.add(f"geography.town_centres = {tc!r} is not a built-in set; built in: {', '.join(BUILTIN_TOWN_CENTRES)}",
                     'Give a polygon file, "none", or leave it empty for the ONS Major Towns and Cities in the data home.')
    settings = Settings(
        name=str(raw.get("name", cfg_path.stem)),
        data_dir=str(raw.get("data_dir", "")),
        output_dir=str(raw.get("output_dir", "output")),
        forces=tuple(forces),
        force_area_code=codes[0] if codes else "",
        force_area_codes=tuple(codes),
        first_month=first,
        last_month=last,
        current=current,
        comparison=comparison,
        crime_groups=groups,
        town_centres=_town_centre_marker(str(geo.get("town_centres", ""))),  # "none"/"builtin:..." are not paths
        town_centre_name_column=str(geo.get("town_centre_name_column", "name")),
        source=str(cfg_path),
        extra={k: v for k, v in raw.items() if k not in ("name", "data_dir", "output_dir", "forces", "force_area_code",
                                                          "periods", "crime_groups", "geography")
               and isinstance(v, dict)},
    )
    if sections is not None:  # the stages' sections, in the same message
        sections(settings, problems)
    if problems.messages:
        problems.hints.append("The shipped default is " + str(default_config_path()) + ".")
    problems.raise_if_any(ConfigError)
    return settings


def resolve_data_dir(settings: Settings, cli_value: str | None = None) -> Path:
    """Find the data home: ``--data``, then ``$HOTSPOTS_DATA``, then the config.

    The choice and where it came from are recorded in ``settings.auto``.
    """
    candidates = [
        (cli_value, "--data option"),
        (os.environ.get("HOTSPOTS_DATA"), "$HOTSPOTS_DATA"),
        (settings.data_dir or None, f"data_dir in {settings.source}"),
    ]
    for value, origin in candidates:
        if not value:
            continue
        path = Path(value).expanduser()
        if not path.is_dir():
            raise DataNotFoundError(
                f"data directory not found: {path} (from {origin})",
                hint="pass --data DIR pointing at a data home (police_uk/, boundaries/, lookups/, population/), "
                "set $HOTSPOTS_DATA, or run `hotspots download --data DIR` on a machine with internet",
            )
        resolved = path.resolve()
        settings.record_auto("data_dir", str(resolved), f"from {origin}")
        return resolved
    raise DataNotFoundError(
        "no data directory given",
        hint="pass --data DIR, set $HOTSPOTS_DATA, or set data_dir in the config file",
    )




#: built-in town-centre sets a config can ask for by name (``town_centres = "builtin:<name>"``)
BUILTIN_TOWN_CENTRES = {"builtin:hertfordshire": "the project's approximate Hertfordshire town centres (built in)"}
#: what ``town_centres = "none"`` asks for
NO_TOWN_CENTRES = "none"
#: name columns of the ONS Major Towns and Cities file, in the names ONS and re-hosts give them
_ONS_TOWN_NAME_COLUMNS = ("TCITY15NM", "tcity15nm", "town_city_name", "name")


def _town_centre_marker(value: str) -> str:
    """``"none"`` / ``"builtin:<name>"`` also when made into a path against the config's folder (no such file)."""
    name = Path(value).name if value else ""
    if value and (name.lower() == NO_TOWN_CENTRES or name.startswith("builtin:")) and not Path(value).exists():
        return name
    return value


def resolve_town_centres(settings: Settings, data_dir: Path) -> tuple[str, str]:
    """The town-centre layer for this run: ``(path or marker, name column)``; the choice is recorded.

    ``town_centres`` in ``[geography]``:

    * a path: that polygon file (``town_centre_name_column`` names the column);
    * ``"builtin:hertfordshire"``: the project's approximate Hertfordshire
      town centres (the shipped Hertfordshire config asks for them);
    * ``"none"``: no town centres;
    * empty (the default): the ONS Major Towns and Cities file in the data
      home's ``town_centres/`` when there is one (only the towns inside the
      force area are kept), else none.  Never another force's town centres.

    Returns ``("", "")`` for none.  The reason is recorded in ``settings.auto["town_centres"]``.
    """
    value = _town_centre_marker(settings.town_centres.strip())
    if value in BUILTIN_TOWN_CENTRES:
        settings.record_auto("town_centres", value, BUILTIN_TOWN_CENTRES[value] + f", as {settings.source} asks")
        return value, "name"
    if value.lower() == NO_TOWN_CENTRES:
        settings.record_auto("town_centres", "", f"none: town_centres = \"none\" in {settings.source}")
        return "", ""
    if value:
        path = Path(value).expanduser()
        settings.record_auto("town_centres", str(path), f"the polygon file in {settings.source}")
        return str(path), settings.town_centre_name_column
    folder = Path(data_dir) / "town_centres"
    candidates = sorted(p for p in folder.iterdir() if p.is_file() and re.search(r"towns?_(and_)?cit", p.name, re.I)
                        and p.suffix.lower() in (".geojson", ".gpkg", ".shp", ".json")) if folder.is_dir() else []
    for path in candidates:
        try:
            import pyogrio

            fields = [str(f) for f in pyogrio.read_info(path)["fields"]]
        except Exception:  # an unreadable candidate is not chosen; the reason below says what was used
            continue
        column = next((c for c in _ONS_TOWN_NAME_COLUMNS if c in fields), None)
        if column:
            settings.record_auto(
                "town_centres", str(path),
                "no town-centre file in the config, so the ONS Major Towns and Cities in the data home are used "
                "(the towns inside the force area only; town and city extents, not town-centre cores); "
                "set [geography] town_centres to your own polygons, or \"none\"")
            return str(path), column
    settings.record_auto("town_centres", "", "none: no town-centre file in the config and no ONS Major Towns and Cities "
                         f"file in {folder}; set [geography] town_centres to a polygon file to count town centres")
    return "", ""


def expand_crime_types(names, groups) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """Name -> police.uk categories (a configured group, or one category), and the unknown names.

    >>> expand_crime_types(["ASB", "Robbery", "Nope"], {"ASB": ("Anti-social behaviour",)})
    ({'ASB': ('Anti-social behaviour',), 'Robbery': ('Robbery',)}, ['Nope'])
    """
    from hotspots.schema import POLICE_UK_CRIME_TYPES

    out: dict[str, tuple[str, ...]] = {}
    bad: list[str] = []
    for name in names:
        if name in groups:
            out[name] = tuple(groups[name])
        elif name in POLICE_UK_CRIME_TYPES:
            out[name] = (name,)
        else:
            bad.append(name)
    return out, bad
