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
from hotspots.months import MONTH_RE


DEFAULT_CONFIG_NAME = "hertfordshire.toml"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Resolved settings for one run (see ``configs/hertfordshire.toml``)."""

    name: str
    data_dir: str
    output_dir: str
    forces: tuple[str, ...]
    force_area_code: str
    first_month: str
    last_month: str
    current: tuple[str, str] | None
    comparison: tuple[str, str] | None
    crime_groups: dict[str, tuple[str, ...]]
    town_centres: str = ""
    town_centre_name_column: str = "name"
    source: str = ""
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


def _check_month(value: Any, where: str, problems: list[str]) -> str | None:
    if not isinstance(value, str) or not MONTH_RE.match(value):
        problems.append(f"{where} = {value!r} is not a month; write it as \"YYYY-MM\"")
        return None
    return value


def _check_range(value: Any, where: str, problems: list[str]) -> tuple[str, str] | None:
    if value in (None, [], ""):
        return None
    if not isinstance(value, list) or len(value) != 2:
        problems.append(f"{where} = {value!r} must be [\"YYYY-MM\", \"YYYY-MM\"] or []")
        return None
    a = _check_month(value[0], f"{where}[0]", problems)
    b = _check_month(value[1], f"{where}[1]", problems)
    if a and b and a > b:
        problems.append(f"{where} = {value!r}: the first month is after the last")
    return (a, b) if a and b else None


def default_config_path() -> Path:
    return Path(str(resources.files("hotspots") / "configs" / DEFAULT_CONFIG_NAME))


def load_config(path: str | os.PathLike | None = None) -> Settings:
    """Load and validate a TOML config; ``None`` loads the Hertfordshire default.

    All problems are collected and reported together.
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

    problems: list[str] = []
    known = {"name", "data_dir", "output_dir", "forces", "force_area_code", "periods", "crime_groups", "geography"}
    periods = raw.get("periods", {})
    first = _check_month(periods.get("first", "2021-01"), "periods.first", problems)
    last = _check_month(periods.get("last", "2025-12"), "periods.last", problems)
    if first and last and first > last:
        problems.append(f"periods.first = {first!r} is after periods.last = {last!r}")
    current = _check_range(periods.get("current"), "periods.current", problems)
    comparison = _check_range(periods.get("comparison"), "periods.comparison", problems)

    forces = raw.get("forces", [])
    if isinstance(forces, str):
        forces = [forces]
    if not forces or not all(isinstance(f, str) and re.fullmatch(r"[a-z0-9-]+", f) for f in forces):
        problems.append(f"forces = {forces!r} must be a list of police.uk force slugs such as [\"hertfordshire\"]")

    groups: dict[str, tuple[str, ...]] = {}
    for gname, members in raw.get("crime_groups", {}).items():
        if not isinstance(members, list) or not members:
            problems.append(f"crime_groups.{gname!r} must be a non-empty list of police.uk crime types")
            continue
        unknown = [m for m in members if m not in POLICE_UK_CRIME_TYPES]
        if unknown:
            problems.append(
                f"crime_groups.{gname!r} has unknown crime types {unknown}; valid types are: "
                + ", ".join(POLICE_UK_CRIME_TYPES)
            )
            continue
        if gname in POLICE_UK_CRIME_TYPES and tuple(members) != (gname,):
            problems.append(f"crime_groups.{gname!r} reuses a police.uk category name for a group; rename it")
            continue
        groups[gname] = tuple(members)

    geo = raw.get("geography", {})
    if problems:
        raise ConfigError(
            f"{cfg_path}: {len(problems)} problem(s):\n  - " + "\n  - ".join(problems),
            hint="edit the config file; the shipped default is " + str(default_config_path()),
        )
    return Settings(
        name=str(raw.get("name", cfg_path.stem)),
        data_dir=str(raw.get("data_dir", "")),
        output_dir=str(raw.get("output_dir", "output")),
        forces=tuple(forces),
        force_area_code=str(raw.get("force_area_code", "")),
        first_month=first,
        last_month=last,
        current=current,
        comparison=comparison,
        crime_groups=groups,
        town_centres=str(geo.get("town_centres", "")),
        town_centre_name_column=str(geo.get("town_centre_name_column", "name")),
        source=str(cfg_path),
        extra={k: v for k, v in raw.items() if k not in known},
    )


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
