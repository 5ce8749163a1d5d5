"""The run's hook into the records cache (:mod:`hotspots.io.cache`): which settings key it, what it restores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hotspots.io.cache import KEY_SETTINGS, RecordsCache, cache_folder, run_records_key

#: geography layers stored with the records when they have been read (they depend only on the files and settings
#: of the key): the LSOA polygons are clipped from a national file, the slowest read of a run
CACHED_LAYERS = ("lsoa21", "districts")

__all__ = ["CACHED_LAYERS", "KEY_SETTINGS", "cached_records"]


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
        try:
            key = run_records_key(settings, data_dir, out_root)
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
