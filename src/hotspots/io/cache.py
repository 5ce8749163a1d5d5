"""A columnar cache of the prepared records: re-runs on the same data skip parsing and assignment.

``hotspots run`` spends its first seconds reading the police.uk files,
projecting them, harmonising LSOA codes and clipping them to the force area.
On a re-run with the same inputs and settings that work gives the same table,
so it is stored once as Parquet (pyarrow) with its row accounting and read
back instead.  The force's geography layers the caller hands over (the LSOA
polygons clipped from a national file, the district outlines) are stored
beside it as GeoParquet under the same key, so a re-run does not read the
national boundary files either.

The entry is found by a **key** that covers everything the table depends on:

* the SHA-256 of every police.uk file the reader would read (as chosen by
  :func:`hotspots.io._files.find_police_files` for the forces and months), and
  the list of files it would skip, with their reasons (they are in the
  accounting);
* the SHA-256 of every other file in the data home (boundaries, lookups,
  populations: whatever the assignment reads), wherever it is;
* the settings given by the caller (forces, months, force area, geography
  options) and a digest of the toolkit's own source code, so that a new
  version of the reader or of the assignment never reuses an old table.

Anything that changes the key is a miss: the records are prepared from the
files and a new entry is written.  Entries are written to a temporary name and
renamed into place (a half-written entry is never read); the most recently
used :data:`KEEP` entries are kept.

Where the cache lives: ``$HOTSPOTS_CACHE`` if set (``off`` turns the cache
off), otherwise the folder ``.hotspots-cache`` beside the output folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from hotspots.io._files import find_police_files, sha256_file
from hotspots.io.accounting import Accounting, FileAccount

__all__ = ["KEY_SETTINGS", "RecordsCache", "cache_folder", "code_digest", "prune_entries", "records_key", "run_records_key"]

#: bump when the layout of an entry changes
FORMAT = 2
#: entries kept (most recently used first)
KEEP = 4
_OFF = {"off", "0", "no", "false", "none"}


def cache_folder(out_root: str | os.PathLike) -> Path | None:
    """The cache folder for a run writing to ``out_root`` (``None``: the cache is off).

    Examples
    --------
    >>> import os
    >>> os.environ.pop("HOTSPOTS_CACHE", None) is None or True
    True
    >>> cache_folder("/tmp/runs/herts").as_posix()
    '/tmp/runs/.hotspots-cache'
    """
    env = os.environ.get("HOTSPOTS_CACHE", "").strip()
    if env.lower() in _OFF:
        return None
    if env:
        return Path(env).expanduser()
    return Path(out_root).expanduser().resolve().parent / ".hotspots-cache"


def _file_digest(path: Path) -> str:
    """The file's sha256; an unreadable file (dangling symlink, no permission) keys as such.

    The reader, not the cache, tells the user about such a file (it is listed as skipped),
    so the key only has to change when the file does.
    """
    try:
        return sha256_file(path)
    except OSError as exc:
        return f"unreadable: {type(exc).__name__} {exc.errno}"


def package_digest(source: bool = True) -> str:
    """A digest of the toolkit's files: its source (``*.py``), or (``source=False``) the other files it ships
    (Leaflet, templates, data, configs; compiled ``*.pyc`` left out)."""
    pkg = Path(__file__).resolve().parents[1]
    if source:
        paths = sorted(pkg.rglob("*.py"))
    else:
        paths = sorted(p for p in pkg.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc"))
    h = hashlib.sha256()
    for path in paths:
        h.update(path.relative_to(pkg).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _code_digest() -> str:
    """A digest of the toolkit's source files (any change of code is a new key)."""
    return package_digest(source=True)


#: the digest of the toolkit's source code, for other caches' keys (the hotspot analyses': hotspots.detect._area_cache)
code_digest = _code_digest


def records_key(data_dir: str | os.PathLike, police_paths: Sequence[str | os.PathLike], *, forces: Sequence[str],
                first_month: str | None, last_month: str | None, settings: Mapping[str, Any],
                exclude: Sequence[str | os.PathLike] = ()) -> str:
    """The key of the prepared records for these inputs and settings (a hex SHA-256).

    Parameters
    ----------
    data_dir
        The data home: every file under it that is not a police.uk file is hashed.
    police_paths
        Where the police.uk files are searched (as given to ``read_police_uk``).
    forces, first_month, last_month
        The reader's selection: the files it would read are hashed, the files it
        would skip are listed.
    settings
        Every other setting the records depend on (JSON-serialisable).
    exclude
        Folders under the data home that are not inputs (an output folder placed there).

    Examples
    --------
    >>> import tempfile
    >>> from hotspots.datasets import synthetic_points, write_police_uk_sample
    >>> with tempfile.TemporaryDirectory() as home:
    ...     f = write_police_uk_sample(home, synthetic_points(n=5, cluster=0, months=("2025-01",)))[0]
    ...     a = records_key(home, [home], forces=[], first_month=None, last_month=None, settings={})
    ...     b = records_key(home, [home], forces=[], first_month=None, last_month=None, settings={"x": 1})
    ...     _ = f.write_text(f.read_text() + f.read_text().splitlines()[-1] + "\\n")
    ...     c = records_key(home, [home], forces=[], first_month=None, last_month=None, settings={})
    >>> len(a), a == b, a == c
    (64, False, False)
    """
    skipped: list[dict[str, str]] = []
    sources = find_police_files(list(police_paths), forces=list(forces) or None, first_month=first_month,
                                last_month=last_month, skipped=skipped)
    police = sorted({os.path.abspath(s.path) for s in sources})
    # other street files (other forces, months) are not read: their names are in ``skipped``
    not_read = {os.path.abspath(s["path"].split("!")[0]) for s in skipped}
    skip_dirs = {os.path.abspath(p) for p in exclude}
    read = set(police)
    others = []
    seen: set[str] = set()
    for root, dirs, files in os.walk(os.path.abspath(data_dir), followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a link back up the tree: each real folder once, as the reader walks it
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and os.path.join(root, d) not in skip_dirs)
        for name in sorted(files):
            path = os.path.join(root, name)
            # broken links and unreadable entries are named in ``skipped`` by the reader
            if not name.startswith(".") and path not in not_read and path not in read and os.path.isfile(path):
                others.append(path)
    facts = {
        "format": FORMAT,
        "code": _code_digest(),
        "police": [[p, _file_digest(Path(p))] for p in police],
        "members": sorted(s.label for s in sources),
        "skipped": sorted(json.dumps(s, sort_keys=True) for s in skipped),
        "data_files": [[os.path.relpath(p, data_dir), _file_digest(Path(p))] for p in others],
        "settings": settings,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()


#: settings the prepared records depend on (the stages' own sections do not change them)
KEY_SETTINGS = ("forces", "force_area_code", "force_area_codes", "first_month", "last_month", "town_centres",
                "town_centre_name_column")


def police_paths(data_dir: Path) -> list[Path]:
    """Where a run looks for the police.uk files: the data home's ``police_uk`` folder, else the data home itself."""
    police_dir = data_dir / "police_uk"
    return [police_dir if police_dir.is_dir() else data_dir]


def run_records_key(settings, data_dir: Path, out_root: Path) -> str:
    """The key of a run's prepared records: :func:`records_key` of its files, :data:`KEY_SETTINGS` and geography options.

    ``settings`` is a :class:`hotspots.config.Settings`; ``out_root`` the run's output folder (not an input).
    """
    keyed = {name: getattr(settings, name) for name in KEY_SETTINGS}
    keyed["geography"] = settings.extra.get("geography", {})
    return records_key(data_dir, police_paths(data_dir), forces=list(settings.forces), first_month=settings.first_month,
                       last_month=settings.last_month, settings=keyed, exclude=[out_root])


@dataclasses.dataclass
class Records:
    """What the cache holds: the points, their accounting, the facts recorded beside them and geography layers."""

    points: pd.DataFrame
    accounting: Accounting
    extra: dict[str, Any]
    #: layer name -> GeoDataFrame, as handed to :meth:`RecordsCache.store`
    layers: dict[str, Any] = dataclasses.field(default_factory=dict)


def _read_layer(path: Path):
    """A GeoParquet layer as stored, its CRS given exactly as the geography's layers give it (EPSG:27700)."""
    import geopandas as gpd

    from hotspots.schema import BNG

    gdf = gpd.read_parquet(path)
    if gdf.crs is None or gdf.crs.to_epsg() != 27700:
        raise ValueError(f"{path}: not in EPSG:27700")
    out = gpd.GeoDataFrame(pd.DataFrame(gdf), geometry=gdf.geometry.name, crs=BNG)
    out.attrs = gdf.attrs
    return out


class RecordsCache:
    """Prepared records stored by key in a folder (see the module docstring).

    Examples
    --------
    >>> import tempfile
    >>> from hotspots.io.accounting import Accounting, FileAccount
    >>> acc = Accounting(); acc.add_file(FileAccount(path="a.csv", rows_read=2, kept=2))
    >>> pts = pd.DataFrame({"x": [1.0, 2.0], "source_file": ["a.csv", "a.csv"]})
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     cache = RecordsCache(folder)
    ...     miss = cache.load("k1")
    ...     _ = cache.store("k1", pts, acc, {"note": 1})
    ...     hit = cache.load("k1")
    >>> miss is None, hit.points.equals(pts), hit.accounting.kept, hit.extra
    (True, True, 2, {'note': 1})
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def _entry(self, key: str) -> Path:
        return self.folder / f"records-{key[:40]}"

    def holds(self, key: str) -> bool:
        """Whether an entry for ``key`` is there (:meth:`load` may still find it damaged: then it is a miss)."""
        try:
            meta = json.loads((self._entry(key) / "meta.json").read_text())
        except (OSError, ValueError):
            return False
        return meta.get("key") == key and meta.get("format") == FORMAT

    def load(self, key: str) -> Records | None:
        """The records stored under ``key``, or ``None`` (not there, or unreadable: then it is removed)."""
        entry = self._entry(key)
        meta_path = entry / "meta.json"
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("key") != key or meta.get("format") != FORMAT:
                return None
            points = pd.read_parquet(entry / "points.parquet")
            layers = {name: _read_layer(entry / f"layer-{name}.parquet") for name in meta.get("layers", [])}
            acc = Accounting()
            for f in meta["accounting"]["files"]:
                acc.add_file(FileAccount(**f))
            acc.skipped = meta["accounting"]["skipped"]
        except Exception:  # noqa: BLE001 -- a damaged entry is a miss, and is removed
            shutil.rmtree(entry, ignore_errors=True)
            return None
        os.utime(meta_path)  # most recently used
        return Records(points, acc, meta.get("extra", {}), layers)

    def store(self, key: str, points: pd.DataFrame, accounting: Accounting, extra: Mapping[str, Any],
              layers: Mapping[str, Any] | None = None) -> Path | None:
        """Write an entry (atomically); returns its folder, or ``None`` when the folder cannot be written.

        ``layers`` (name -> GeoDataFrame, names of letters, digits and ``_``) are
        written as GeoParquet and come back, equal, in :attr:`Records.layers`.
        """
        layers = dict(layers or {})
        entry = self._entry(key)
        tmp = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.folder))
            points.to_parquet(tmp / "points.parquet", index=False, compression="zstd")
            for name, gdf in layers.items():
                gdf.to_parquet(tmp / f"layer-{name}.parquet", index=False, compression="zstd")
            meta = {"format": FORMAT, "key": key, "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "rows": len(points), "extra": dict(extra), "layers": list(layers),
                    "accounting": {"files": [dataclasses.asdict(f) for f in accounting.files.values()],
                                   "skipped": list(accounting.skipped)}}
            (tmp / "meta.json").write_text(json.dumps(meta, default=str))
            shutil.rmtree(entry, ignore_errors=True)
            os.rename(tmp, entry)
        except Exception:  # a cache that cannot be written (disk, or a layer Parquet cannot hold) only costs time
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            return None
        self._prune()
        return entry

    def _prune(self) -> None:
        prune_entries(self.folder, "records-", KEEP)


def prune_entries(folder: Path, prefix: str, keep: int) -> None:
    """Remove temporary folders an hour old or more (left by a run killed while writing) and all but the
    ``keep`` most recently used entries ``<prefix>*`` of ``folder`` (used: their ``meta.json`` touched)."""
    for stale in folder.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > 3600:
                shutil.rmtree(stale, ignore_errors=True)
    entries = []
    for path in folder.glob(f"{prefix}*"):
        with contextlib.suppress(OSError):
            entries.append(((path / "meta.json").stat().st_mtime, path))
    entries.sort(reverse=True)
    for _, old in entries[keep:]:
        shutil.rmtree(old, ignore_errors=True)
