"""A cache of the drawn hotspot maps: a re-run on the same inputs, options and code writes them back unchanged.

Drawing the eleven pages and images of a county (:func:`hotspots.stages._hotspots_maps.write_maps`)
is most of a warm ``hotspots run`` once the records and the study areas' analyses
are read back from their caches.  A map is a pure function of what it is drawn
from, so, like the area cache (:mod:`hotspots.detect._area_cache`), the drawn
files are stored under a **key** that covers everything they depend on:

* the analysis inputs (:func:`hotspots.detect._area_cache.inputs_fingerprint`:
  the points, periods, selections, wards, town centres, harm weights and the
  county and district study areas), from which the analyses, the tables and
  the street context are computed;
* the ``[hotspots]`` settings (every field of
  :class:`~hotspots.detect.options.HotspotConfig`), whether images are drawn
  and whether ``grid_cells.gpkg`` keeps every cell;
* the district layer the maps outline (every column, geometry as WKB, CRS);
* the road files under ``<data>/roads`` (name and SHA-256 of each);
* the toolkit's source code (:func:`hotspots.io.cache.code_digest`), the files
  it ships (Leaflet, templates, data) and the versions of Python and of the
  libraries that compute and draw (numpy, pandas, shapely, matplotlib, folium…)
  and of GDAL, which writes the GeoPackage.

Anything that changes the key is a miss: the maps are drawn and a new entry
written.  An entry is a folder ``maps-<key>`` beside the other caches' entries
holding the pages and images as they were written, the run's
``hotspots/grid_cells.gpkg`` (:data:`GRID_CELLS`: written from the same
analyses, it is as much a function of the key; a hit writes it back with this
run's time as its layers' ``last_change``, :func:`write_stored_gpkg`, as GDAL
would stamp it) and ``meta.json`` (each file's name, size and SHA-256).  On a hit every file is read and checked
against its checksum first; any mismatch or unreadable file is a miss (the
entry is removed) and the maps are drawn.  A cache that cannot be written or
read only costs time.  The most recently used :data:`KEEP` entries are kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hotspots.io.cache import package_digest, prune_entries

__all__ = ["MapsCache", "maps_key", "write_stored_gpkg", "GRID_CELLS", "KEEP", "FORMAT"]

#: bump when the layout of an entry changes (it is part of the key)
FORMAT = 2
#: the name of the stored ``hotspots/grid_cells.gpkg`` in an entry (maps are named by slug: never an underscore)
GRID_CELLS = "grid_cells.gpkg"
#: entries kept (most recently used first)
KEEP = 8
_PREFIX = "maps-"
#: the libraries that draw, besides those the analysis computes with (their versions are part of the key)
_DRAWING = ("matplotlib", "folium", "branca", "jinja2", "pillow", "pyogrio")


@functools.lru_cache(maxsize=1)
def _shipped_files() -> str:
    return package_digest(source=False)


def _roads_digest(data_dir) -> list[list[str]]:
    if data_dir is None:
        return []
    from hotspots.io._files import sha256_file
    from hotspots.io.roads import road_files

    return [[p.name, sha256_file(p)] for p in road_files(data_dir)]


def _frame_digest(frame) -> str:
    from hotspots.detect._area_cache import _update_frame

    h = hashlib.sha256()
    _update_frame(h, frame)
    return h.hexdigest()


def maps_key(inputs_digest: str, cfg, *, png: bool, districts, data_dir, code: str, all_cells: bool) -> str:
    """The key of the maps (and ``grid_cells.gpkg``) drawn from these inputs (a hex SHA-256); see the module's
    description.  ``all_cells``: ``grid_cells.gpkg`` keeps every cell (``[outputs] grid_cells = "all"``)."""
    from hotspots.detect._area_cache import LIBRARIES, _library_versions

    facts = {"format": FORMAT, "code": code, "files": _shipped_files(), "libraries": _library_versions(LIBRARIES + _DRAWING),
             "gdal": _gdal_version(), "inputs": inputs_digest, "config": dataclasses.asdict(cfg), "png": bool(png),
             "all_cells": bool(all_cells), "districts": _frame_digest(districts), "roads": _roads_digest(data_dir)}
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=repr).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def _gdal_version() -> str:
    import pyogrio

    return pyogrio.__gdal_version_string__


def write_stored_gpkg(data: bytes, path: Path) -> None:
    """Write a stored GeoPackage's bytes to ``path``, each layer's ``last_change`` set to now (as GDAL sets it).

    The stored file was written by an earlier run; everything in it but those
    times (the GeoPackage's only ones: ``layer_styles.update_time`` is left
    empty) is what this run would write.
    """
    import sqlite3

    path.write_bytes(data)
    con = sqlite3.connect(path)
    try:
        # a temporary file renamed into place when complete: no fsync, no journal file (as _io.add_layer_styles)
        con.execute("PRAGMA synchronous = OFF")
        con.execute("PRAGMA journal_mode = MEMORY")
        with con:
            con.execute("UPDATE gpkg_contents SET last_change = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')")
    finally:
        con.close()


class MapsCache:
    """Drawn maps stored by key under ``folder`` (see the module's description)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _entry(self, key: str) -> Path:
        return self.folder / f"{_PREFIX}{key}"

    def load(self, key: str) -> list[tuple[str, bytes]] | None:
        """The stored files ``[(relative name, bytes)]`` in the order they were written, or ``None`` (a miss)."""
        entry = self._entry(key)
        meta_path = entry / "meta.json"
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("key") != key or meta.get("format") != FORMAT:
                raise ValueError("an entry of another key or format")
            files = []
            for item in meta["files"]:
                name = item["name"]
                if Path(name).name != name:
                    raise ValueError(f"a file name with a folder: {name!r}")
                data = (entry / name).read_bytes()
                if len(data) != item["bytes"] or hashlib.sha256(data).hexdigest() != item["sha256"]:
                    raise ValueError(f"{name} does not match its checksum")
                files.append((name, data))
        except (OSError, ValueError, KeyError, TypeError):
            shutil.rmtree(entry, ignore_errors=True)  # damaged: drawn again and stored afresh
            return None
        with contextlib.suppress(OSError):
            os.utime(meta_path)  # most recently used
        return files

    def store(self, key: str, files: list[tuple[str, bytes]]) -> Path | None:
        """Store ``files`` (``[(name, bytes)]``) under ``key``; ``None`` when the entry could not be written."""
        entry = self._entry(key)
        tmp = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.folder))
            items: list[dict[str, Any]] = []
            for name, data in files:
                (tmp / name).write_bytes(data)
                items.append({"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
            (tmp / "meta.json").write_text(json.dumps({"key": key, "format": FORMAT, "files": items}, indent=1),
                                           encoding="utf-8")
            if entry.exists():
                shutil.rmtree(entry, ignore_errors=True)
            os.rename(tmp, entry)
            tmp = None
        except OSError:
            return None
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(OSError):
            prune_entries(self.folder, _PREFIX, KEEP)
        return entry
