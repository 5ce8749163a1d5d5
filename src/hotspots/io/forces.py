"""The 43 police forces of England and Wales: ONS codes, police.uk names and regions.

``data/police_forces_ew.csv`` lists, for every police force area, the ONS
code (``pfa_code``, as in the LAD24 → CSP24 → PFA24 lookup), the ONS name,
the police.uk folder slug (``police_uk_force``, as police.uk names its
download folders: ``kent``, ``south-wales``, ``metropolitan``), the name in
police.uk's ``Falls within`` column and the ONS region.  :func:`find_forces`
turns what a user types (a slug, a name, a code or a region) into forces;
:func:`force_for_falls_within` finds a file's force from its rows.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import functools
from collections.abc import Sequence
from importlib import resources

from hotspots._errors import ConfigError
from hotspots._text import slug

__all__ = ["PoliceForce", "police_forces", "find_forces", "force_for_falls_within", "force_for_code"]


@dataclasses.dataclass(frozen=True)
class PoliceForce:
    """One police force area (ONS) and its police.uk names."""

    pfa_code: str
    pfa_name: str
    police_uk_force: str
    falls_within: str
    region: str


@functools.cache
def police_forces() -> tuple[PoliceForce, ...]:
    """The 43 police forces of England and Wales, in ONS code order.

    >>> forces = police_forces()
    >>> len(forces), forces[0].police_uk_force, forces[-1].region
    (43, 'metropolitan', 'Wales')
    """
    path = resources.files("hotspots") / "data" / "police_forces_ew.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        return tuple(PoliceForce(**row) for row in csv.DictReader(fh))


def _keys(force: PoliceForce) -> set[str]:
    short = force.falls_within.lower().replace(" constabulary", "").replace(" police service", "").replace(" police", "")
    return {force.police_uk_force, slug(force.pfa_name), slug(force.falls_within), slug(short), force.pfa_code.lower()}


def find_forces(names: Sequence[str]) -> list[PoliceForce]:
    """Forces named by police.uk slug, ONS or police.uk name, ONS code, or ONS region (all its forces).

    Matching ignores case, spaces and punctuation ("South Wales", "south-wales",
    "South Wales Police" and "W15000003" are one force).  Each force appears once,
    in the order given.

    Raises
    ------
    ConfigError
        A name matches no force; the message lists the closest matches first,
        then every force known.

    Examples
    --------
    >>> [f.police_uk_force for f in find_forces(["Kent", "merseyside police"])]
    ['kent', 'merseyside']
    >>> [f.pfa_code for f in find_forces(["wales"])]
    ['W15000001', 'W15000002', 'W15000003', 'W15000004']
    >>> find_forces(["kentt"])
    Traceback (most recent call last):
    ...
    hotspots._errors.ConfigError: unknown police force 'kentt'; closest: kent, ...
    """
    forces = police_forces()
    out: list[PoliceForce] = []
    for name in names:
        key = slug(name, empty="")
        found = [f for f in forces if key and key in _keys(f)]
        if not found:
            found = [f for f in forces if key and slug(f.region) == key]
        if not found:
            raise ConfigError(_unknown_message(name), hint="name a force as police.uk does (its folder name, e.g. "
                              "kent, south-wales, metropolitan), by its ONS code (E23000032) or a region (e.g. wales)")
        out.extend(f for f in found if f not in out)
    return out


def _unknown_message(name: str) -> str:
    forces = police_forces()
    key = slug(name, empty="")
    by_key = {k: f.police_uk_force for f in forces for k in _keys(f)}
    scored = sorted(by_key, key=lambda k: -difflib.SequenceMatcher(None, key, k).ratio())
    closest: list[str] = []
    for k in scored:
        if by_key[k] not in closest:
            closest.append(by_key[k])
        if len(closest) == 3:
            break
    regions = sorted({slug(f.region) for f in forces})
    return (f"unknown police force {name!r}; closest: {', '.join(closest)}; "
            f"the {len(forces)} forces known: {', '.join(sorted(f.police_uk_force for f in forces))}; "
            f"regions: {', '.join(regions)}")


def force_for_falls_within(value: str) -> PoliceForce | None:
    """The force whose police.uk ``Falls within`` name is ``value`` (spacing and case aside), or None.

    >>> force_for_falls_within("Kent Police").pfa_code
    'E23000032'
    >>> force_for_falls_within("British Transport Police") is None
    True
    """
    key = slug(value, empty="")
    return next((f for f in police_forces() if slug(f.falls_within) == key), None)


def force_for_code(pfa_code: str) -> PoliceForce | None:
    """The force of an ONS police force area code, or None.

    >>> force_for_code("E23000027").falls_within
    'Hertfordshire Constabulary'
    """
    return next((f for f in police_forces() if f.pfa_code == pfa_code), None)
