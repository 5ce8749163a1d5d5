"""Reading the ``[hotspots]`` section of the config into the analysis options (:class:`~hotspots.detect.options.HotspotConfig`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from hotspots._errors import ConfigError
from hotspots._text import slug
from hotspots.config import expand_crime_types
from hotspots.detect.options import HotspotConfig
from hotspots.geo import grid as gridmod
from hotspots.schema import POLICE_UK_CRIME_TYPES

__all__ = ["MAX_CELL_SIZE_M", "hotspot_config", "resolve_selections"]

#: The largest ``[hotspots] cell_size`` accepted, in metres (a hot spot is a few streets, not a town).
MAX_CELL_SIZE_M = 5000.0


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
        if (isinstance(cs, bool) or not isinstance(cs, (int, float)) or not math.isfinite(cs)
                or not gridmod.SNAPPING_FLOOR_M <= cs <= MAX_CELL_SIZE_M):
            problems.append(f"cell_size = {cs!r} must be a number of metres between {gridmod.SNAPPING_FLOOR_M:,.0f} and "
                            f"{MAX_CELL_SIZE_M:,.0f} (police.uk locations are snapped, so smaller cells mean nothing; "
                            "larger ones leave too few cells to find a hot spot in, and no patrol covers them); "
                            "omit it to choose automatically")
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
    if "map_tiles" in raw:
        if not isinstance(raw["map_tiles"], bool):
            problems.append(f"map_tiles = {raw['map_tiles']!r} must be true or false")
        kw["map_tiles"] = raw["map_tiles"]
    if not problems:
        cfg = HotspotConfig(**kw)
        sels = resolve_selections(cfg.crime_types, settings.crime_groups, problems)
        problems.extend(slug_collisions(cfg.crime_types))
        if cfg.map_selection is not None and cfg.map_selection not in sels:
            problems.append(f"map_selection = {cfg.map_selection!r} is not one of crime_types {list(cfg.crime_types)}")
    if problems:
        raise ConfigError(
            f"{settings.source or 'config'}: [hotspots] has {len(problems)} problem(s):\n  - " + "\n  - ".join(problems),
            hint="see the [hotspots] section in README.md; omit a key to use its default",
        )
    return cfg


def slug_collisions(names: Sequence[str]) -> list[str]:
    """Problems: selection names that would share a GeoPackage layer and ``patrol_area_id`` prefix.

    Each selection's layer in ``hotspots/*.gpkg`` and its patrol-area ids
    (``<district>-<slug>-<n>``) are named by :func:`hotspots._text.slug` of the
    name, so two names with one slug (or a name given twice) would overwrite
    each other's layer and repeat ids.

    >>> slug_collisions(["Violence & sexual", "Violence / sexual", "ASB"])
    ["crime_types 'Violence & sexual' and 'Violence / sexual' would share the layer and id prefix 'violence-sexual'; rename one of the groups"]
    >>> slug_collisions(["ASB", "Burglary"])
    []
    """
    seen: dict[str, str] = {}
    out = []
    for name in names:
        key = slug(name, empty="x")
        if key not in seen:
            seen[key] = name
        elif seen[key] == name:
            out.append(f"crime_types lists {name!r} twice")
        else:
            out.append(f"crime_types {seen[key]!r} and {name!r} would share the layer and id prefix {key!r}; "
                       "rename one of the groups")
    return out


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


def map_preloader(settings, stages=None):
    """:func:`hotspots.render.maps.preload` if a run of ``stages`` (None: all) with ``settings`` draws maps, else None.

    ``hotspots run`` calls it while the police.uk files are read in a child process
    (:mod:`hotspots.io.ingest_ahead`): the processes it forks then inherit the map libraries.
    """
    if (stages is not None and "hotspots" not in stages) or not hotspot_config(settings).maps:
        return None
    from hotspots.render.maps import preload

    return preload
