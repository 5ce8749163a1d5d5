"""A cache of the per-area hotspot analysis: a re-run on the same inputs reads each study area's result back.

:func:`hotspots.detect.analysis.analyse_area` is most of a warm ``hotspots run``
(seconds per study area).  Like ``make`` or ``joblib.Memory``, its
:class:`~hotspots.detect.results.AreaResult` is stored under a **key** that
covers everything the result depends on:

* the inputs actually passed (:func:`inputs_fingerprint`, computed once per run):
  every column of the points (values, dtypes, order, index), the period
  tuples, the selections, the wards' and town centres' attributes, geometry
  (WKB) and CRS, the harm weights and the county and district study areas;
* the study area (type, code, name, geometry WKB, cell size and its reason);
* the :class:`~hotspots.detect.options.HotspotConfig` (every field) and the
  ``patrol`` flag;
* a digest of the toolkit's source code (the records cache's,
  :func:`hotspots.io.cache._code_digest`) and the versions of Python and of the
  numerical libraries the analysis runs on.

Anything that changes the key is a miss: the area is analysed and a new entry
written.  An entry is a folder ``areas-<key>`` beside the records cache's
entries (:func:`hotspots.io.cache.cache_folder`: ``$HOTSPOTS_CACHE``, ``off``
turns both caches off, or ``.hotspots-cache`` beside the output folder) holding
the tables as Arrow IPC files (zstd-compressed: as small as Parquet, read in
half the time; geometries as WKB; the selections' tables of one kind in one
file) and everything else as JSON (``meta.json``, with every file's SHA-256).
No pickle: reading an entry runs no code from it.

Safety: an entry is written into a temporary folder and renamed into place,
and only once it is shown to give back exactly what the analysis gave:
either by its types alone (:func:`~hotspots.detect._area_tables._exact_by_types`: every column of a kind
Arrow stores bit for bit -- numpy booleans, integers and floats whose NaNs
have Arrow's bits, Arrow-backed text, shapes as WKB -- the default index,
attrs JSON gives back, and a zero-row read of each file giving the same
columns, dtypes and CRSs), or else by reading it back and comparing it with
the result, table by table (columns, dtypes, index, values bit for bit,
geometries as WKB, CRS, attrs); it is not kept if anything differs, so a hit
gives exactly what the analysis gave.
An entry that cannot be read, or whose files do not match their checksums, is a
miss and is removed.  A cache that cannot be written or read only costs time.
The most recently used :data:`KEEP` entries are kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from hotspots.detect.results import AreaResult, Inputs, SelectionResult, StudyArea
from hotspots.detect._area_tables import (  # noqa: F401 -- also used by the tests, through this module
    NotStorable, _crs, _decode, _default_index, _dtype_texts, _encode, _exact_by_types, _exact_column,
    _geometry_wkb, _is_geometry, _plain, _restore, _same_objects, _same_shapes, _same_value,
)
from hotspots.io.cache import prune_entries

__all__ = ["AreaCache", "area_key", "inputs_fingerprint", "result_differences", "KEEP", "FORMAT"]

#: bump when the layout of an entry changes (it is part of the key)
FORMAT = 2
#: entries kept (most recently used first): a few runs' worth of study areas
KEEP = 64
_PREFIX = "areas-"
#: Arrow IPC compression: zstd keeps the files as small as Parquet's; reading them back costs half Parquet's time
_COMPRESSION = "zstd"
_SUFFIX = ".arrow"


# --------------------------------------------------------------------------- the key
def _update_column(h, values) -> None:
    """Feed one column's values into ``h``, independent of how they are laid out in memory (chunks, slices)."""
    if isinstance(values, pd.Index):
        values = pd.Series(values)
    dtype = values.dtype
    h.update(f"|{dtype}|{len(values)}|".encode())
    if isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":
        h.update(np.ascontiguousarray(values.to_numpy()).view(np.uint8).data)
        return
    codes, uniques = pd.factorize(values, use_na_sentinel=True)  # missing values: code -1
    h.update(np.ascontiguousarray(codes, dtype=np.int64).view(np.uint8).data)
    if getattr(dtype, "name", "") == "geometry":
        import shapely

        uniques = shapely.to_wkb(np.asarray(uniques))
    h.update(json.dumps([[type(u).__name__, u.hex() if isinstance(u, bytes) else str(u)] for u in uniques]).encode())


def _update_frame(h, frame) -> None:
    """Feed a (Geo)DataFrame or Series into ``h``: type, columns, dtypes, values, index, CRS, attrs."""
    if frame is None:
        h.update(b"|None|")
        return
    h.update(f"|{type(frame).__name__}|".encode())
    if isinstance(frame, pd.Series):
        h.update(json.dumps(str(frame.name)).encode())
        _update_column(h, frame)
    else:
        h.update(json.dumps([str(c) for c in frame.columns]).encode())
        for column in frame.columns:
            _update_column(h, frame[column])
        crs = getattr(frame, "crs", None) if hasattr(frame, "geometry") else None
        h.update(json.dumps([getattr(frame, "_geometry_column_name", None), crs.to_wkt() if crs else None]).encode())
    h.update(json.dumps([str(n) for n in frame.index.names]).encode())
    _update_column(h, frame.index)
    h.update(json.dumps(frame.attrs, sort_keys=True, default=repr).encode())


def _area_facts(area: StudyArea) -> dict[str, Any]:
    import shapely

    return {"area_type": area.area_type, "code": area.code, "name": area.name, "cell_size": float(area.cell_size),
            "cell_size_type": type(area.cell_size).__name__, "cell_size_reason": area.cell_size_reason,
            "geometry": hashlib.sha256(shapely.to_wkb(area.geometry)).hexdigest()}


def inputs_fingerprint(inputs: Inputs) -> str:
    """A digest (hex SHA-256) of every field of ``inputs`` the analysis can read (compute it once per run).

    """
    h = hashlib.sha256()
    for field in dataclasses.fields(Inputs):
        value = getattr(inputs, field.name)
        h.update(f"|field {field.name}|".encode())
        if field.name == "_codes":  # built from the points and harm weights (both hashed)
            continue
        if isinstance(value, (pd.DataFrame, pd.Series)) or value is None:
            _update_frame(h, value)
        elif isinstance(value, StudyArea):
            h.update(json.dumps(_area_facts(value), sort_keys=True).encode())
        elif field.name == "districts":
            h.update(json.dumps([_area_facts(a) for a in value], sort_keys=True).encode())
        elif field.name == "selections":
            h.update(json.dumps([[k, list(v)] for k, v in value.items()]).encode())
        elif isinstance(value, tuple) and all(isinstance(v, str) for v in value):
            h.update(json.dumps(list(value)).encode())
        else:
            raise NotStorable(f"Inputs.{field.name}: no fingerprint for {type(value).__name__}")
    return h.hexdigest()


#: the libraries the analysis computes with (their versions are part of the key)
LIBRARIES = ("numpy", "pandas", "scipy", "scikit-learn", "shapely", "geopandas", "pyarrow", "pyproj")


@functools.lru_cache(maxsize=4)
def _library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    """The versions of Python, GEOS and ``names`` (read from their metadata: no imports)."""
    from importlib import metadata

    import shapely

    versions = {"python": platform.python_version(), "geos": shapely.geos_version_string}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def area_key(inputs_digest: str, area: StudyArea, cfg, *, patrol: bool, code: str) -> str:
    """The key of ``analyse_area(inputs, area, cfg, patrol=patrol)`` (a hex SHA-256).

    ``inputs_digest`` is :func:`inputs_fingerprint` of the inputs, ``code`` the toolkit's code digest
    (:func:`hotspots.io.cache._code_digest`).
    """
    facts = {"format": FORMAT, "code": code, "libraries": _library_versions(), "inputs": inputs_digest,
             "area": _area_facts(area), "config": dataclasses.asdict(cfg), "patrol": bool(patrol)}
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=repr).encode()).hexdigest()


# --------------------------------------------------------------------------- comparing results (strict)
def _frame_differences(a, b, where: str, shared: tuple | None = None) -> list[str]:
    if a is None or b is None:
        return [] if a is None and b is None else [f"{where}: None vs a table"]
    if type(a) is not type(b):
        return [f"{where}: {type(a).__name__} vs {type(b).__name__}"]
    columns = a.columns.tolist()
    if columns != b.columns.tolist() or _dtype_texts(a) != _dtype_texts(b):
        return [f"{where}: columns or dtypes differ"]
    out = []
    if type(a.index) is not type(b.index) or a.index.dtype != b.index.dtype or list(a.index.names) != list(b.index.names) \
            or not a.index.equals(b.index):
        out.append(f"{where}: index differs")
    if not _same_value(a.attrs, b.attrs):
        out.append(f"{where}: attrs differ")
    if getattr(a, "_geometry_column_name", None) != getattr(b, "_geometry_column_name", None):
        out.append(f"{where}: active geometry differs")
    for i, name in enumerate(columns):
        # the column arrays, not Series: a Series per column (with its attrs deep-copied) cost more than comparing
        x, y = a._get_column_array(i), b._get_column_array(i)
        if _is_geometry(x):
            same_crs = (x.crs is None) == (y.crs is None) and (x.crs is None or (x.crs == y.crs and x.crs.srs == y.crs.srs))
            if not same_crs or not _same_geometries(x, y, shared):
                out.append(f"{where}.{name}: geometries differ")
        elif isinstance(x.dtype, np.dtype) and x.dtype.kind in "biufcmM":
            if not np.array_equal(np.ascontiguousarray(np.asarray(x)).view(np.uint8),
                                  np.ascontiguousarray(np.asarray(y)).view(np.uint8)):
                out.append(f"{where}.{name}: values differ")
        elif hasattr(x, "__arrow_array__"):
            ax, ay = pa.chunked_array(x.__arrow_array__()), pa.chunked_array(y.__arrow_array__())
            if not ax.equals(ay):
                out.append(f"{where}.{name}: values differ")
        else:
            try:
                pd.testing.assert_series_equal(a.iloc[:, i], b.iloc[:, i], check_exact=True, check_index=False,
                                               check_names=True)
            except AssertionError:
                out.append(f"{where}.{name}: values differ")
    return out


def _same_geometries(x, y, shared: tuple | None) -> bool:
    """Equal WKB; geometries that are the same objects as a pair of grids already found equal (``shared``) are."""
    if shared is not None and _same_objects(x, shared[0]) and _same_objects(y, shared[1]):
        return True
    wx, wy = _geometry_wkb(x), _geometry_wkb(y)
    return len(wx) == len(wy) and bool((wx == wy).all())


def result_differences(a: AreaResult, b: AreaResult) -> list[str]:
    """Every difference between two area results (empty: the same, table by table and value by value)."""
    import shapely

    out = []
    fa, fb = vars(a.area), vars(b.area)
    for k in fa:
        if k == "geometry":
            if shapely.to_wkb(fa[k]) != shapely.to_wkb(fb[k]):
                out.append("area.geometry differs")
        elif not _same_value(fa[k], fb[k]):
            out.append(f"area.{k} differs")
    out += _frame_differences(a.grid, b.grid, "grid")
    shared = None  # the cells' shapes are usually the grid's: compared once, above
    if not out and hasattr(a.grid, "geometry"):
        shared = (a.grid.geometry.values, b.grid.geometry.values)
    if list(a.selections) != list(b.selections):
        return out + ["selections differ"]
    for sel in a.selections:
        x, y = a.selections[sel], b.selections[sel]
        for field in dataclasses.fields(SelectionResult):
            u, v = getattr(x, field.name), getattr(y, field.name)
            if isinstance(u, pd.DataFrame) or isinstance(v, pd.DataFrame):
                out += _frame_differences(u, v, f"{sel}.{field.name}", shared)
            elif not _same_value(u, v):
                out.append(f"{sel}.{field.name} differs")
    return out


# --------------------------------------------------------------------------- the cache
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class AreaCache:
    """Area results stored by key in a folder (see the module docstring).

    The tests (``tests/test_area_cache.py``) show a hit, the misses and a damaged entry.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def _entry(self, key: str) -> Path:
        return self.folder / f"{_PREFIX}{key[:40]}"

    def load(self, key: str, area: StudyArea) -> AreaResult | None:
        """The result stored under ``key`` (its study area: ``area``), or ``None`` (not there, or damaged: removed)."""
        entry = self._entry(key)
        meta_path = entry / "meta.json"
        if not meta_path.is_file():
            return None
        try:
            result = _read_entry(entry, key, area)
        except Exception:  # noqa: BLE001 -- a damaged entry is a miss, and is removed
            shutil.rmtree(entry, ignore_errors=True)
            return None
        if result is None:
            return None
        with contextlib.suppress(OSError):
            os.utime(meta_path)  # most recently used
        return result

    def store(self, key: str, result: AreaResult) -> Path | None:
        """Write an entry (atomically, checked first: :func:`_exact_by_types`, else read back and compared);
        its folder, or ``None`` when not written."""
        entry = self._entry(key)
        tmp = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.folder))
            written, arrow = _write_entry(tmp, key, result)
            if not _exact_by_types(written, arrow, result.grid):  # else read back and compared, value by value
                back = _read_entry(tmp, key, result.area)
                if back is None or result_differences(result, back):
                    raise NotStorable("the stored result does not read back the same")
            shutil.rmtree(entry, ignore_errors=True)
            os.rename(tmp, entry)
        except Exception:  # noqa: BLE001 -- a cache that cannot be written only costs time
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            return None
        self._prune()
        return entry

    def _prune(self) -> None:
        prune_entries(self.folder, _PREFIX, KEEP)


def _write_table(frame: pd.DataFrame, path: Path, *, index: bool | None) -> pa.Table:
    """``frame`` as an Arrow IPC file, with the pandas metadata ``to_pandas`` reads back (``index`` as for
    ``DataFrame.to_parquet``: ``None`` keeps an index that is not the default as columns, ``False`` drops it);
    returns the Arrow table written."""
    table = pa.Table.from_pandas(frame, preserve_index=index)
    options = pa.ipc.IpcWriteOptions(compression=_COMPRESSION)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return table


def _write_entry(folder: Path, key: str, result: AreaResult) -> tuple[list[tuple], dict[str, pa.Table]]:
    """Write ``result``'s entry into ``folder``; returns each table as ``(frame, desc)`` and each file's Arrow table
    by file name (what :func:`_exact_by_types` checks)."""
    if [f.name for f in dataclasses.fields(AreaResult)] != ["area", "grid", "selections"]:
        raise NotStorable("AreaResult has fields this cache does not know")
    # each kind of table: the selections' tables of one layout in one file, in selection order
    groups: dict[tuple, list[pd.DataFrame]] = {}
    tables: list[dict[str, Any]] = []
    written: list[tuple] = []
    arrow: dict[str, pa.Table] = {}

    def table(frame: pd.DataFrame, kind: str, grid_wkb=None) -> dict[str, Any]:
        plain, desc = _plain(frame, grid_wkb)
        if _default_index(frame):
            signature = (kind, tuple(plain.columns.tolist()), tuple(_dtype_texts(plain)))
            rows = groups.setdefault(signature, [])
            start = sum(len(f) for f in rows)
            rows.append(plain)
            desc.update(group=list(groups).index(signature), start=start, stop=start + len(plain))
        else:
            desc["file"] = f"t{len(tables)}{_SUFFIX}"
            arrow[desc["file"]] = _write_table(plain, folder / desc["file"], index=None)
        tables.append(desc)
        written.append((frame, desc))
        return {"__table": len(tables) - 1}

    grid = result.grid
    grid_ref = table(grid, "grid")
    grid_wkb = (grid.geometry.values, _geometry_wkb(grid.geometry.values)) if hasattr(grid, "geometry") else None
    selections = []
    for name, sel in result.selections.items():
        fields = {}
        for field in dataclasses.fields(SelectionResult):
            value = getattr(sel, field.name)
            fields[field.name] = table(value, field.name, grid_wkb) if isinstance(value, pd.DataFrame) else _encode(value)
        selections.append([name, fields])
    files = {}
    for i, frames in enumerate(groups.values()):
        name = f"g{i}{_SUFFIX}"
        arrow[name] = _write_table(pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0], folder / name,
                                   index=False)
    for desc in tables:
        if "group" in desc:
            desc["file"] = f"g{desc['group']}{_SUFFIX}"
    for path in sorted(folder.glob(f"*{_SUFFIX}")):
        files[path.name] = _sha256(path)
    meta = {"format": FORMAT, "key": key, "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "area": _area_facts(result.area), "grid": grid_ref, "selections": selections, "tables": tables,
            "files": files}
    (folder / "meta.json").write_text(json.dumps(meta))
    return written, arrow


def _read_entry(folder: Path, key: str, area: StudyArea) -> AreaResult | None:
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("key") != key or meta.get("format") != FORMAT:
        return None
    if meta["area"] != _area_facts(area):
        raise ValueError("the entry is for another study area")
    plain: dict[str, pa.Table] = {}
    for name, digest in meta["files"].items():
        path = folder / name
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise ValueError(f"{path}: checksum differs")
        plain[name] = pa.ipc.open_file(pa.BufferReader(data)).read_all()
    tables = meta["tables"]
    converted: dict[str, pd.DataFrame] = {}  # each file as pandas, converted once (per table cost more)

    def table(ref: dict[str, int], grid=None) -> pd.DataFrame:
        desc = tables[ref["__table"]]
        name = desc["file"]
        if name not in converted:
            converted[name] = plain[name].to_pandas()
        frame = converted[name]
        if "group" in desc:  # rows start..stop of the selections' tables of this layout
            frame = frame.iloc[desc["start"]:desc["stop"]]
            frame.index = pd.RangeIndex(desc["stop"] - desc["start"])
        else:
            frame = frame.copy(deep=False)
        return _restore(frame, desc, grid)

    grid = table(meta["grid"])
    selections = {}
    for name, fields in meta["selections"]:
        values = {k: table(v, grid) if isinstance(v, dict) and "__table" in v else _decode(v) for k, v in fields.items()}
        selections[name] = SelectionResult(**values)
    return AreaResult(area=area, grid=grid, selections=selections)
