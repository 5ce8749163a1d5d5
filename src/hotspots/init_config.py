"""``hotspots init``: a starter configuration for any police force of England and Wales.

:func:`starter_config` takes one or more forces (police.uk slug, name, ONS
code or a region), reads the data home's LAD → CSP → PFA lookup and Census
2021 population for the force areas, districts and CSPs, and the police.uk
months present for the forces, and writes a TOML configuration that
``hotspots --config FILE run`` runs with no edits.  Nothing in it is taken
from another force: town centres default to the ONS Major Towns and Cities
inside the force area when the data home has them, else none.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from importlib import resources
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from hotspots._errors import ConfigError, DataNotFoundError, InputFileError
from hotspots._text import slug
from hotspots.geo._lookups import ons_columns
from hotspots.io._files import find_police_files
from hotspots.io.forces import PoliceForce, find_forces
from hotspots.months import month_range, month_ranges

__all__ = ["starter_config", "write_starter_config", "StarterConfig"]

LOOKUP = "lookups/lookup_ltla24_csp24_pfa24_ew.csv"
POPULATION = ("population/census2021_usual_residents_lsoa21_ew.csv.gz", "population/census2021_usual_residents_lsoa21_ew.csv")
#: ONS's own column names of the LAD24 → CSP24 → PFA24 lookup, and the data home's
#: columns the lookup must have once ONS names are made snake style (:func:`hotspots.geo._lookups.ons_columns`)
_COLUMNS = ("ltla24_code", "ltla24_name", "csp24_code", "csp24_name", "pfa24_code", "pfa24_name")

#: crime groups every starter config gets (police.uk categories; edit freely)
CRIME_GROUPS: dict[str, list[str]] = {
    "All crime": ["Bicycle theft", "Burglary", "Criminal damage and arson", "Drugs", "Other crime", "Other theft",
                  "Possession of weapons", "Public order", "Robbery", "Shoplifting", "Theft from the person",
                  "Vehicle crime", "Violence and sexual offences"],
    "Neighbourhood crime": ["Burglary", "Robbery", "Theft from the person", "Vehicle crime"],
    "Violence": ["Violence and sexual offences", "Robbery", "Possession of weapons"],
    "ASB and violence": ["Anti-social behaviour", "Violence and sexual offences", "Robbery", "Possession of weapons"],
    "Night-time economy": ["Violence and sexual offences", "Public order", "Criminal damage and arson"],
    "ASB": ["Anti-social behaviour"],
}


@dataclasses.dataclass
class StarterConfig:
    """A starter configuration: the TOML text and what it was built from."""

    text: str
    name: str
    forces: list[PoliceForce]
    districts: pd.DataFrame
    months: list[str]

    @property
    def default_file_name(self) -> str:
        return slug(self.name, empty="force") + ".toml"


def _read_lookup(data_dir: Path) -> pd.DataFrame:
    path = data_dir / LOOKUP
    if not path.is_file():
        raise DataNotFoundError(f"no district → CSP → police force area lookup in the data home: {path} is missing",
                                hint="run `hotspots download --data DIR` or copy the ONS LAD24_CSP24_PFA24 lookup there")
    lk = ons_columns(pd.read_csv(path, dtype=str, keep_default_na=False))  # ONS's own names or the snake ones
    missing = [c for c in _COLUMNS if c not in lk.columns]
    if missing:
        raise InputFileError(f"{path}: lacks column(s) {missing}; found {list(lk.columns)}",
                             hint="use the ONS LAD24_CSP24_PFA24 lookup (LAD24CD, CSP24CD, PFA24CD ... columns)")
    return lk


def _district_population(data_dir: Path) -> pd.Series | None:
    path = next((data_dir / p for p in POPULATION if (data_dir / p).is_file()), None)
    if path is None:
        return None
    pop = pd.read_csv(path, dtype={"lsoa21_code": str, "ltla24_code": str})
    if not {"ltla24_code", "census2021_usual_residents"} <= set(pop.columns):
        return None
    return pop.groupby("ltla24_code")["census2021_usual_residents"].sum()


def _months(data_dir: Path, forces: Sequence[PoliceForce]) -> dict[str, list[str]]:
    police = data_dir / "police_uk"
    sources = find_police_files([police if police.is_dir() else data_dir], forces=[f.police_uk_force for f in forces])
    out: dict[str, list[str]] = {f.police_uk_force: [] for f in forces}
    for s in sources:
        if s.month and s.force in out:
            out[s.force].append(s.month)
    return {k: sorted(set(v)) for k, v in out.items()}


def starter_config(data_dir: str | Path, names: Sequence[str], *, name: str | None = None,
                   output_dir: str | None = None) -> StarterConfig:
    """A starter configuration for the forces ``names`` from what the data home holds.

    Parameters
    ----------
    data_dir : str or Path
        The data home (``police_uk/``, ``lookups/``, ``population/`` ...).
    names : list of str
        Forces: police.uk slugs (``kent``, ``south-wales``), names, ONS codes,
        or a region (every force in it); several give one study area.
    name : str, optional
        The study area's name; default the force name(s).
    output_dir : str, optional
        Written as ``output_dir``; default ``output-<name>``.

    Returns
    -------
    StarterConfig
        ``text`` (TOML), the forces, their districts (with CSPs and population)
        and the months present.

    Raises
    ------
    ConfigError
        An unknown force (the closest names and every known force listed).
    DataNotFoundError
        No lookup in the data home, a force area not in it, or no police.uk
        files for a force.
    """
    data_dir = Path(data_dir).expanduser().absolute()
    if not names:
        raise ConfigError("no force given", hint="name one or more forces, e.g. `hotspots init --force kent`")
    forces = find_forces(names)
    lk = _read_lookup(data_dir)
    absent = [f for f in forces if f.pfa_code not in set(lk["pfa24_code"])]
    if absent:
        raise DataNotFoundError(
            f"police force area(s) {', '.join(f'{f.pfa_code} ({f.pfa_name})' for f in absent)} not in {data_dir / LOOKUP}",
            hint="use the ONS LAD24_CSP24_PFA24 lookup for England and Wales (all 43 force areas)")
    codes = [f.pfa_code for f in forces]
    districts = lk[lk["pfa24_code"].isin(codes)].copy()
    pop = _district_population(data_dir)
    districts["population"] = districts["ltla24_code"].map(pop) if pop is not None else float("nan")
    months = _months(data_dir, forces)
    empty = [f.police_uk_force for f in forces if not months[f.police_uk_force]]
    if empty:
        raise DataNotFoundError(
            f"no police.uk street files for {', '.join(empty)} in {data_dir / 'police_uk'}",
            hint="download them (`hotspots download --force " + " --force ".join(empty) + "`) or copy the "
            "YYYY-MM-<force>-street.csv files into police_uk/<force>/street/")
    all_months = sorted({m for v in months.values() for m in v})
    study = name or " and ".join(f.pfa_name for f in forces)
    builtin = f"builtin:{forces[0].police_uk_force}" if len(forces) == 1 and (
        resources.files("hotspots") / "data" / f"town_centres_{forces[0].police_uk_force}.csv").is_file() else ""
    text = _render(data_dir, forces, districts, months, all_months, study, output_dir or f"output-{slug(study)}",
                   _town_centre_note(data_dir, builtin), builtin)
    return StarterConfig(text=text, name=study, forces=forces, districts=districts, months=all_months)


def _town_centre_note(data_dir: Path, builtin: str) -> str:
    if builtin:
        return (f"# {builtin}: the approximate town centres shipped with hotspots for this force (see boundaries/README.md);\n"
                "# empty = the ONS Major Towns and Cities in the data home's town_centres/ inside the force area, or none.")
    folder = data_dir / "town_centres"
    files = sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    if files:
        return ("# The data home's town_centres/ holds " + ", ".join(files) + ": with town_centres = \"\" the ONS Major\n"
                "# Towns and Cities among them that lie inside the force area are used (town and city extents, not\n"
                "# town-centre cores); none if none lies inside.")
    return ("# The data home has no town_centres/ folder: no town-centre areas (town_centres = \"\"). Give a polygon\n"
            "# file of your force's town centres to have them counted and named on the maps.")


def _toml(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _render(data_dir: Path, forces: list[PoliceForce], districts: pd.DataFrame, months: dict[str, list[str]],
            all_months: list[str], study: str, output_dir: str, tc_note: str, builtin: str = "") -> str:
    today = dt.date.today().isoformat()
    lines = [
        f"# hotspots configuration: {study}.",
        f"# Written by `hotspots init` on {today} from the data home {data_dir}",
        f"# ({LOOKUP} and the Census 2021 population). Check it, then: hotspots --config <this file> run",
        "#",
        "# Relative paths are resolved against the current working directory.",
        "# The data home is found in this order: --data, then $HOTSPOTS_DATA, then data_dir below.",
        "#",
    ]
    for f in forces:
        mine = districts[districts["pfa24_code"] == f.pfa_code]
        total = mine.drop_duplicates("ltla24_code")["population"].sum(min_count=1)
        csps = mine.groupby(["csp24_code", "csp24_name"], sort=True)["ltla24_name"].apply(lambda s: ", ".join(sorted(set(s))))
        lines.append(f"# {f.pfa_name} ({f.pfa_code}, police.uk {f.police_uk_force!r}, \"{f.falls_within}\"): "
                     f"{mine['ltla24_code'].nunique()} districts, {len(csps)} CSPs"
                     + (f", {int(total):,} residents (Census 2021)" if pd.notna(total) else ""))
        for (_, d) in mine.drop_duplicates("ltla24_code").sort_values("ltla24_name").iterrows():
            pop = f"{int(d['population']):,}" if pd.notna(d["population"]) else "population not in the data home"
            lines.append(f"#   district {d['ltla24_code']} {d['ltla24_name']} ({pop})")
        for (code, cname), dnames in csps.items():
            lines.append(f"#   CSP {code} {cname}: {dnames}")
        split = mine.groupby("ltla24_code")["csp24_code"].nunique()
        if (split > 1).any():
            names = sorted(mine.loc[mine["ltla24_code"].isin(split[split > 1].index), "ltla24_name"].unique())
            lines.append(f"#   ({', '.join(names)}: split between CSPs that follow the districts before reorganisation)")
    lines += [
        "",
        f"name = {_toml(study)}",
        f"data_dir = {_toml(str(data_dir))}",
        f"output_dir = {_toml(output_dir)}",
        "",
        "# police.uk force slugs (folder names under police_uk/ in the data home).",
        f"forces = {_toml([f.police_uk_force for f in forces])}",
        "",
        "# ONS code(s) of the police force area(s); districts and CSPs come from the lookup.",
        f"force_area_code = {_toml(forces[0].pfa_code if len(forces) == 1 else [f.pfa_code for f in forces])}",
        "",
        "[periods]",
        "# Months read from the data home (inclusive); police.uk months present:",
    ]
    for force, ms in months.items():
        gaps = [m for m in month_range(ms[0], ms[-1]) if m not in set(ms)]
        lines.append(f"#   {force}: {month_ranges(ms)} ({len(ms)} months"
                     + (f"; missing {month_ranges(gaps)}" if gaps else "") + ")")
    lines += [
        f"first = {_toml(all_months[0])}",
        f"last = {_toml(all_months[-1])}",
        "# Period analysed by the outlier report and hotspot maps. Empty = the latest 12 months present.",
        "current = []",
        "# Comparison period for change. Empty = the same months a year earlier when present.",
        "comparison = []",
        "",
        "[crime_groups]",
        "# Editable groups of police.uk categories, reported alongside the single categories.",
    ]
    lines += [f"{_toml(g)} = {_toml(members)}" for g, members in CRIME_GROUPS.items()]
    lines += [
        "",
        "[geography]",
        tc_note,
        "# Or a path to a polygon file of town centres with a name column (below), or \"none\".",
        f"town_centres = {_toml(builtin)}",
        'town_centre_name_column = "name"',
        "",
        "[outliers]",
        "# Shown in each CSP's \"recording changes\" caveat (e.g. your force's latest crime data integrity finding).",
        'recording_note = ""',
        "",
    ]
    return "\n".join(lines)


def write_starter_config(data_dir: str | Path, names: Sequence[str], output: str | Path | None = None, *,
                         name: str | None = None, overwrite: bool = False) -> tuple[Path, StarterConfig]:
    """Write :func:`starter_config` to ``output`` (default ``<name>.toml`` here); never over an existing file
    unless ``overwrite``."""
    cfg = starter_config(data_dir, names, name=name)
    path = Path(output) if output else Path(cfg.default_file_name)
    if path.exists() and not overwrite:
        raise ConfigError(f"{path} already exists", hint="choose another --output, or delete the file first")
    try:
        path.write_text(cfg.text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path} ({exc.strerror or exc})", hint="choose an --output you can write to") from exc
    return path, cfg
