"""The run's hook into the records cache (:mod:`hotspots.io.cache`): which settings key it, what it restores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hotspots.io.cache import RecordsCache, cache_folder, records_key

#: geography layers stored with the records when they have been read (they depend only on the files and settings
#: of the key): the LSOA polygons are clipped from a national file, the slowest read of a run
CACHED_LAYERS = ("lsoa21", "districts")

#: settings the prepared records depend on (the stages' own sections do not change them)
KEY_SETTINGS = ("forces", "force_area_code", "force_area_codes", "first_month", "last_month", "town_centres", "town_centre_name_column")


def cached_records(settings, data_dir: Path, out_root: Path, geo, progress) -> tuple[tuple | None, Callable[..., Any]]:
    """``((points, accounting, lsoa_stats), store)`` from the cache, or ``(None, store)`` on a miss.

    ``store(points, accounting, lsoa_stats)`` takes what the caller prepared,
    with the layers of :data:`CACHED_LAYERS` (the district outlines are read
    for it if they have not been yet) and the geography's sources and warnings
    as they are then, and returns a function that writes them (that does
    nothing when the cache is off): ``hotspots run`` writes them in its second
    process, beside the hotspots stage (:func:`hotspots.stages.run.run`).  A hit
    also restores the geography files the records were assigned with into
    ``geo.sources`` (they are named in the manifest as on the first run), the
    stored layers into ``geo`` (they are not read again) and the warnings
    ``geo`` had given by then.
    """
    folder = cache_folder(out_root)
    if folder is None:
        return None, _nothing_to_write
    with progress.step("cache"):
        police_dir = data_dir / "police_uk"
        keyed = {name: getattr(settings, name) for name in KEY_SETTINGS}
        keyed["geography"] = settings.extra.get("geography", {})
        try:
            key = records_key(data_dir, [police_dir if police_dir.is_dir() else data_dir], forces=list(settings.forces),
                              first_month=settings.first_month, last_month=settings.last_month, settings=keyed,
                              exclude=[out_root])
        except Exception as exc:  # noqa: BLE001 -- the cache only saves time: the reader reports what is wrong
            progress.info(f"  records cache not used: {type(exc).__name__}: {exc}")
            return None, _nothing_to_write
        cache = RecordsCache(folder)
        hit = cache.load(key)
        progress.info(f"  {'reused' if hit else 'no'} prepared records in {folder}")
    if hit is not None:
        for name, path in hit.extra.get("geography_sources", {}).items():
            geo.sources.setdefault(name, path)
        geo.restore_layers({n: layer for n, layer in hit.layers.items() if n in CACHED_LAYERS},
                           hit.extra.get("geography_warnings", []))
        return (hit.points, hit.accounting, hit.extra.get("lsoa_harmonisation", {})), _nothing_to_write

    def store(points, accounting, lsoa_stats) -> Callable[[], Any]:
        try:  # every stage reads the district outlines: read them now so that they are kept too
            geo.districts  # noqa: B018
        except Exception:  # noqa: BLE001 -- the stage that needs them reports the problem
            pass
        extra = {"geography_sources": dict(geo.sources), "lsoa_harmonisation": dict(lsoa_stats),
                 "geography_warnings": list(geo.warnings)}
        layers = geo.read_layers(CACHED_LAYERS)
        return lambda: cache.store(key, points, accounting, extra, layers)

    return None, store


def _nothing_to_write(*args) -> Callable[[], None]:
    return lambda: None
