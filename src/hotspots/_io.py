"""Writing outputs: atomically, only under the output directory, Excel-safe.

* Every file is written to a temporary name in the same folder and renamed
  into place, so a crash or Ctrl-C never leaves a half-written report.
* A relative name that would resolve outside the output directory (``..``,
  an absolute path, a symlink pointing out) is refused.
* A run started with ``staged=True`` (what the ``hotspots`` command does) writes
  into a staging folder beside the output folder and swaps it in when the
  manifest is written (:meth:`OutputDir.publish`), so the output folder always
  matches its ``manifest.json``: a run stopped by Ctrl-C, SIGTERM, SIGKILL or a
  late error leaves the previous outputs untouched.  A lock file beside the
  folder stops a second run into the same folder with a clear message.
* Text cells starting with ``=``, ``+``, ``-``, ``@`` (or tab/CR) are prefixed
  with ``'`` in CSVs, so a spreadsheet never runs them as formulas (OWASP
  "CSV injection").  Numeric columns are left untouched.
* CSVs open correctly in Excel by double-click: UTF-8 with a byte-order mark
  (without one Excel reads them as cp1252 and shows ``â€“`` for "–" and ``Â£``
  for "£"), and decimals rounded to :data:`CSV_SIGNIFICANT_DIGITS` significant
  digits (``0.1234568`` rather than ``0.12345678901234566``; whole numbers and
  integer columns untouched).  pandas, R's ``readr`` and Python's
  ``encoding="utf-8-sig"`` all read the mark as what it is.
"""

from __future__ import annotations

import atexit
import codecs
import contextlib
import ctypes
import errno
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from hotspots._errors import ConfigError
from hotspots.io._files import sha256_file

from hotspots._csv_format import (  # noqa: F401  (re-exported: hotspots._io is where callers find them)
    CSV_ENCODING as CSV_ENCODING,
    CSV_SIGNIFICANT_DIGITS as CSV_SIGNIFICANT_DIGITS,
    csv_bytes as csv_bytes,
    csv_text as csv_text,
    excel_ready as excel_ready,
    neutralise_formulas as neutralise_formulas,
    round_significant as round_significant,
)


class OutputDir:
    """The run's output directory; every write goes through it."""

    def __init__(self, root: str | os.PathLike, *, staged: bool = False):
        self.root = Path(root).expanduser().resolve()
        self.written: list[dict[str, Any]] = []
        self.staged = staged
        #: where writes go now: ``root``, or the staging folder of a staged run
        self.base = self.root
        self._lock_fd: int | None = None
        self._owner = os.getpid()
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"output folder {self.root} exists and is not a folder", hint="choose another --out")
        if not staged:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot create output directory {self.root} ({_reason(exc)})",
                                  hint="choose another --out (a folder you can write to)") from exc
            return
        try:
            self.root.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the folder {self.root.parent} for --out ({_reason(exc)})",
                              hint="choose another --out (a folder you can write to)") from exc
        if self.root.is_dir() and not os.access(self.root, os.W_OK | os.X_OK):
            raise ConfigError(f"the output folder {self.root} is read-only",
                              hint="choose another --out, or make the folder writable (chmod u+w)")
        self._lock()
        self._start_staging()
        _ACTIVE.append(self)

    # ------------------------------------------------------------------ staged runs
    def _lock(self) -> None:
        import fcntl

        lock = self.root.parent / f".{self.root.name}.hotspots-lock"
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(f"cannot write in {self.root.parent} ({_reason(exc)})",
                              hint="choose an --out inside a folder you can write to") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            other = os.pread(fd, 64, 0).decode(errors="replace").strip()
            os.close(fd)
            raise ConfigError(
                f"another hotspots run{f' (process {other})' if other else ''} is writing to {self.root}",
                hint="wait for it to finish, or choose another --out",
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None and os.getpid() == self._owner:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
        self._lock_fd = None

    def _start_staging(self) -> None:
        parent, name = self.root.parent, self.root.name
        # staging folders left by a run that was killed (we hold the lock: nobody else uses them)
        for old in parent.glob(f".{name}.staging-*"):
            shutil.rmtree(old, ignore_errors=True)
        staging = parent / f".{name}.staging-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            staging.mkdir()
            if self.root.is_dir():  # keep outputs this run does not rewrite (hard links: no copying)
                _link_tree(self.root, staging)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            self._unlock()
            raise ConfigError(f"cannot prepare the output folder {self.root} ({_reason(exc)})",
                              hint="choose an --out on a disk with free space that you can write to") from exc
        self.base = staging

    def publish(self) -> None:
        """Swap the staging folder in as the output folder (staged runs; otherwise nothing to do).

        The swap is one atomic ``renameat2(RENAME_EXCHANGE)`` on Linux, so the
        folder holds either the whole previous run or the whole new one.
        """
        if not self.staged or self.base == self.root:
            return
        staging = self.base
        try:
            if self.root.is_dir():
                if _exchange(staging, self.root):
                    shutil.rmtree(staging, ignore_errors=True)  # now holds the previous run
                else:  # no atomic exchange: two renames, the old folder kept until the new one is in place
                    old = self.root.parent / f".{self.root.name}.old-{secrets.token_hex(4)}"
                    os.rename(self.root, old)
                    os.rename(staging, self.root)
                    shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(staging, self.root)
        except OSError as exc:
            raise ConfigError(f"cannot replace the output folder {self.root} ({_reason(exc)})",
                              hint=f"the new outputs are in {staging}; check the permissions of {self.root.parent}") from exc
        self.base = self.root
        self._unlock()
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    def abort(self) -> None:
        """Throw the staging folder away (the previous outputs stay as they were)."""
        if os.getpid() != self._owner:
            return
        if self.staged and self.base != self.root:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = self.root
        self._unlock()
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    def ensure_staging(self) -> None:
        """Start a new staging folder after :meth:`publish` (a second run on the same context)."""
        if self.staged and self.base == self.root:
            self._lock()
            self._start_staging()
            if self not in _ACTIVE:
                _ACTIVE.append(self)

    def path(self, name: str | os.PathLike) -> Path:
        """Absolute path for ``name``, refusing anything outside the output directory."""
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts:
            raise ConfigError(
                f"output name {str(name)!r} would be written outside the output directory {self.root}",
                hint="output names must be plain relative paths",
            )
        self.ensure_staging()
        base = self.base
        target = (base / rel).resolve()
        if target != base and base not in target.parents:
            raise ConfigError(
                f"output {str(name)!r} resolves to {target}, outside {self.root}",
                hint="remove the symbolic link or choose another --out",
            )
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot write to {self.root} ({_reason(exc)})",
                              hint="choose an --out you can write to, on a disk with free space") from exc
        return target

    @contextlib.contextmanager
    def atomic(self, name: str, mode: str = "w", **kwargs):
        """Open a temporary file; rename it to ``name`` only if the block succeeds."""
        target = self.path(name)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        except OSError as exc:
            raise _write_error(self.root, exc) from exc
        os.close(fd)
        try:
            with open(tmp, mode, **kwargs) as fh:
                yield fh
            # mkstemp creates 0600 files; give outputs the usual permissions (umask applies)
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, target)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if isinstance(exc, OSError) and exc.errno in _USER_ERRNOS:
                raise _write_error(self.root, exc) from exc
            raise
        self._record(target)

    def atomic_path(self, name: str):
        """Context manager yielding a temporary path to write with a library; renamed on success."""
        return _AtomicPath(self, name)

    def _record(self, target: Path) -> None:
        rel = str(target.relative_to(self.base))
        self.written = [w for w in self.written if w["path"] != rel]
        self.written.append({"path": rel, "bytes": target.stat().st_size, "sha256": sha256_file(target)})

    def write_csv(self, df: pd.DataFrame, name: str) -> Path:
        """Write ``df`` as an Excel-ready CSV (see the module notes): BOM, rounding, no formulas."""
        if df.attrs:  # a CSV holds no attrs, and pandas deep-copies them into every column excel_ready takes out
            df = df.copy(deep=False)
            df.attrs = {}
        ready = excel_ready(df)
        data = csv_bytes(ready)
        if data is None:
            with self.atomic(name, "w", newline="", encoding=CSV_ENCODING) as fh:
                ready.to_csv(fh, index=False)
        else:
            with self.atomic(name, "wb") as fh:  # the bytes CSV_ENCODING gives: the mark, then UTF-8
                fh.write(codecs.BOM_UTF8)
                fh.write(data)
        return self.base / name

    def write_text(self, text: str, name: str) -> Path:
        with self.atomic(name, "w", encoding="utf-8") as fh:
            fh.write(text)
        return self.base / name

    def write_bytes(self, data: bytes, name: str) -> Path:
        with self.atomic(name, "wb") as fh:
            fh.write(data)
        return self.base / name

    def write_json(self, obj: Any, name: str) -> Path:
        return self.write_text(json.dumps(obj, indent=2, default=_json_default, ensure_ascii=False) + "\n", name)

    def write_geo(self, gdf, name: str, *, layer: str | None = None) -> Path:
        """Write a GeoDataFrame to GeoPackage (``.gpkg``) or GeoJSON (``.geojson``, WGS84).

        GeoPackage layers get a name without hyphens (:func:`layer_name`), one clean
        geometry type (:func:`clean_geometries`) and an embedded QGIS style
        (:func:`add_layer_styles`).
        """
        suffix = Path(name).suffix.lower()
        if suffix != ".geojson":
            return self.write_geo_layers([(layer or Path(name).stem, gdf)], name)
        with self.atomic_path(name) as tmp:
            # the layer name is written into the file: the output's name, never the temporary file's
            clean_geometries(gdf).to_crs(4326).to_file(tmp, driver="GeoJSON", layer=layer_name(layer or Path(name).stem),
                                                       engine="pyogrio")
        return self.base / name

    def write_geo_layers(self, layers, name: str, **to_file) -> Path:
        """Write ``(layer, GeoDataFrame)`` pairs into one GeoPackage, each styled (see :meth:`write_geo`).

        Layer names are made unique by construction (a second ``all_crime`` becomes ``all_crime_2``).
        """
        from hotspots.render.gis_styles import style_for

        styles, used = [], set()
        with self.atomic_path(name) as tmp, _unsynced_sqlite():
            for raw_name, gdf in layers:
                lname = base = layer_name(raw_name)
                k = 1
                while lname in used:
                    k += 1
                    lname = f"{base}_{k}"
                used.add(lname)
                gdf = clean_geometries(gdf)
                kind = _write_arrow_layer(gdf, tmp, lname) if to_file == {"use_arrow": True} else None
                if kind is None:
                    gdf.to_file(tmp, driver="GPKG", layer=lname, engine="pyogrio", **to_file)
                    kind = _geometry_kind(gdf)
                flags = ()
                if "flag" in gdf.columns:
                    col = gdf["flag"]
                    categorical = isinstance(col.dtype, pd.CategoricalDtype)
                    flags = [str(c) for c in col.cat.categories] if categorical else \
                        sorted(col.dropna().astype(str).unique(), key=_flag_order)
                styles.append((lname, *style_for(lname, list(gdf.columns), kind, flags=flags)))
            add_layer_styles(tmp, styles)
        return self.base / name

#: GDAL's SQLite settings while a GeoPackage is written to its temporary name: no fsync per commit and the
#: rollback journal in memory.  The file is renamed into place only when complete, so a crash leaves no half-written
#: output either way; the bytes written are the same.  Each GeoPackage commits a few dozen times (every layer, its
#: metadata, its spatial index), and each commit's fsync waits for the disk: about 600 of them a Hertfordshire run.
_GPKG_WRITE_OPTIONS = {"OGR_SQLITE_SYNCHRONOUS": "OFF", "OGR_SQLITE_JOURNAL": "MEMORY"}


@contextlib.contextmanager
def _unsynced_sqlite():
    """:data:`_GPKG_WRITE_OPTIONS` set inside the block; the caller's own settings (usually none) restored after."""
    import pyogrio

    before = {key: pyogrio.get_gdal_config_option(key) for key in _GPKG_WRITE_OPTIONS}
    pyogrio.set_gdal_config_options(_GPKG_WRITE_OPTIONS)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(before)  # None unsets an option


class _AtomicPath:
    def __init__(self, out: OutputDir, name: str):
        self.out, self.name = out, name

    def __enter__(self) -> Path:
        self.target = self.out.path(self.name)
        # unique: two processes (or two runs) never share a temporary name
        self.tmp = self.target.with_name(f".{self.target.stem}.{os.getpid()}-{secrets.token_hex(4)}.part{self.target.suffix}")
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                os.replace(self.tmp, self.target)
            except OSError as err:
                raise _write_error(self.out.root, err) from err
            self.out._record(self.target)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.tmp.unlink()
            if isinstance(exc, OSError) and exc.errno in _USER_ERRNOS:
                raise _write_error(self.out.root, exc) from exc
        return False


def layer_name(name: str) -> str:
    """A GeoPackage layer name GIS tools take without quoting: lower case, ``_`` for anything else.

    >>> layer_name("Night-time economy"), layer_name("ASB and violence"), layer_name("2024 areas")
    ('night_time_economy', 'asb_and_violence', 'l_2024_areas')
    """
    import re

    out = re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_") or "layer"
    return out if out[0].isalpha() else f"l_{out}"


def clean_geometries(gdf):
    """``gdf`` with one geometry family: a GeometryCollection keeps only its parts of the layer's dimension.

    A polygon layer whose overlay left a ``GEOMETRYCOLLECTION (POLYGON …, LINESTRING …)``
    gets the polygons (as a MultiPolygon); single parts are promoted to multi-parts
    when the layer mixes both, so the layer has one geometry type.

    >>> import geopandas as gpd, shapely
    >>> mixed = shapely.GeometryCollection([shapely.box(2, 0, 3, 1), shapely.LineString([(0, 0), (1, 1)])])
    >>> g = gpd.GeoSeries([shapely.box(0, 0, 1, 1), mixed])
    >>> clean_geometries(gpd.GeoDataFrame(geometry=g)).geom_type.tolist()
    ['MultiPolygon', 'MultiPolygon']
    """
    import numpy as np
    import shapely

    geom = np.asarray(gdf.geometry.values, dtype=object)
    if len(geom) == 0:
        return gdf
    types = shapely.get_type_id(geom)
    present = geom[(types >= 0) & ~shapely.is_empty(geom)]
    if not len(present):
        return gdf
    dims = shapely.get_dimensions(present)
    dim = int(dims.max())
    if not (types == 7).any() and len(set(types[types >= 0].tolist())) <= 1:
        return gdf
    multi = {0: shapely.multipoints, 1: shapely.multilinestrings, 2: shapely.multipolygons}[dim]
    out = geom.copy()
    single = types == {0: 0, 1: 1, 2: 3}[dim]
    if single.any():  # vectorised: each single part becomes a one-part multi-part
        out[single] = multi(np.atleast_2d(geom[single]), axis=0)
    for i in np.flatnonzero(types == 7):
        parts = shapely.get_parts(geom[i])
        while len(parts) and (shapely.get_type_id(parts) >= 4).any():  # nested multi-parts and collections
            parts = shapely.get_parts(parts)
        keep = parts[shapely.get_dimensions(parts) == dim] if len(parts) else parts
        out[i] = multi(keep) if len(keep) else shapely.from_wkt(f"{('MULTIPOINT', 'MULTILINESTRING', 'MULTIPOLYGON')[dim]} EMPTY")
    import geopandas as gpd

    gdf = gdf.copy()
    gdf[gdf.geometry.name] = gpd.GeoSeries(out, index=gdf.index, crs=gdf.crs)
    return gdf


def _flag_order(flag: str) -> tuple[int, float]:
    """Legend order of funnel flags: above the widest limits first, then within, then below.

    >>> sorted(["within", "low_95", "high_95", "high_998", "low_998"], key=_flag_order)
    ['high_998', 'high_95', 'within', 'low_95', 'low_998']
    """
    side, _, level = flag.partition("_")
    try:
        value = float(f"{level[:2]}.{level[2:]}" if len(level) > 2 else level)
    except ValueError:
        value = 0.0
    return {"high": (0, -value), "low": (2, value)}.get(side, (1, 0.0))


#: shapely's geometry type ids, as geopandas names them (``geom_type``)
_GEOM_TYPES = ("Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon",
               "GeometryCollection")
_KINDS = {"Point": "point", "MultiPoint": "point", "LineString": "line", "MultiLineString": "line"}


def _write_arrow_layer(gdf, path, layer: str) -> str | None:
    """``gdf.to_file(path, driver="GPKG", layer=layer, engine="pyogrio", use_arrow=True)``: the same Arrow table and
    arguments handed to GDAL, without the checks of geopandas and pyogrio that read every geometry again from Python
    (its type, emptiness and Z as Series, then WKB through pandas); returns the layer's :func:`_geometry_kind`.

    ``None`` (nothing written) for a frame where pyogrio would change a column (dates, mixed objects, categories),
    write the index, or promote single parts to multi-parts: those go through ``to_file``.
    """
    import numpy as np
    import pyarrow as pa
    import shapely
    from pandas.api.types import infer_dtype, is_integer_dtype
    from pyogrio.raw import write_arrow

    name = gdf.geometry.name
    geometry_columns = [c for c, t in gdf.dtypes.items() if t == "geometry"]
    if geometry_columns != [name] or not gdf.columns.is_unique or list(gdf.index.names) != [None] \
            or not is_integer_dtype(gdf.index.dtype):
        return None
    for column, dtype in gdf.dtypes.items():
        if column == name or (isinstance(dtype, np.dtype) and dtype.kind in "iufb") or isinstance(dtype, pd.StringDtype):
            continue
        if dtype == object and infer_dtype(gdf[column]) == "string":  # what pyogrio leaves as it is
            continue
        return None
    geom = np.asarray(gdf.geometry.values, dtype=object)
    types = shapely.get_type_id(geom)
    names = sorted(set(types[types >= 0].tolist()))
    if len(names) > 1:  # pyogrio would promote to multi-parts (clean_geometries leaves one type)
        return None
    geometry_type, has_z = "Unknown", False
    if names:
        geometry_type = _GEOM_TYPES[names[0]]
        present = geom[(types >= 0) & ~shapely.is_empty(geom)]
        z = shapely.has_z(present)
        if z.any() and not z.all():
            return None  # mixed 2D and 3D: to_file raises its own error
        has_z = bool(z.any())
    crs = None
    if gdf.crs:
        epsg = gdf.crs.to_epsg()
        crs = f"EPSG:{epsg}" if epsg else gdf.crs.to_wkt("WKT1_GDAL")
    df = pd.DataFrame(gdf.copy(deep=False), copy=False)
    df[name] = shapely.to_wkb(geom)
    table = pa.Table.from_pandas(df, preserve_index=False)
    if any(pa.types.is_null(f.type) or (pa.types.is_dictionary(f.type) and pa.types.is_null(f.type.value_type))
           or (f.name == name and not pa.types.is_binary(f.type)) for f in table.schema):
        return None  # pyogrio retypes these
    write_arrow(table, path, layer=layer, driver="GPKG", geometry_name=name,
                geometry_type=f"{geometry_type} Z" if has_z and geometry_type != "Unknown" else geometry_type,
                crs=crs, encoding=None, append=False, dataset_metadata=None, layer_metadata=None, metadata=None,
                dataset_options=None, layer_options=None)
    return _KINDS.get(geometry_type, "polygon")


def _geometry_kind(gdf) -> str:
    kinds = {"Point": "point", "MultiPoint": "point", "LineString": "line", "MultiLineString": "line"}
    types = gdf.geom_type.dropna()
    return kinds.get(types.iloc[0], "polygon") if len(types) else "polygon"


#: the ``layer_styles`` table QGIS reads from a GeoPackage (and writes with "Save style in database")
LAYER_STYLES_SQL = """CREATE TABLE IF NOT EXISTS layer_styles (
  id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), f_table_schema TEXT(256), f_table_name TEXT(256),
  f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT, useAsDefault BOOLEAN,
  description TEXT, owner TEXT(30), ui TEXT(30), update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"""


def add_layer_styles(path, styles) -> None:
    """Store ``(layer, style name, QML, SLD)`` rows in the GeoPackage's ``layer_styles`` table (the QGIS convention).

    The table is registered in ``gpkg_contents`` as an attribute table, so GDAL and QGIS list it.
    """
    import sqlite3

    con = sqlite3.connect(path)
    try:
        # a temporary file renamed into place when complete (as every output): no fsync per commit; the bytes are the same
        con.execute("PRAGMA synchronous = OFF")
        con.execute("PRAGMA journal_mode = MEMORY")  # nor a journal file made and deleted per commit
        with con:
            con.execute(LAYER_STYLES_SQL)
            geom = dict(con.execute("SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall())
            for layer, style_name, qml, sld in styles:
                con.execute("DELETE FROM layer_styles WHERE f_table_name = ?", (layer,))
                con.execute("INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, "
                            "styleName, styleQML, styleSLD, useAsDefault, description, owner, update_time) VALUES "
                            "('', '', ?, ?, ?, ?, ?, 1, ?, 'hotspots', NULL)",  # no time: the same run, the same file
                            (layer, geom.get(layer, "geom"), style_name[:30], qml, sld, style_name))
            con.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description) "
                        "SELECT 'layer_styles', 'attributes', 'layer_styles', 'QGIS layer styles' "
                        "WHERE NOT EXISTS (SELECT 1 FROM gpkg_contents WHERE table_name = 'layer_styles')")
    finally:
        con.close()


#: staged output folders of this process not yet published (thrown away if the process stops)
_ACTIVE: list[OutputDir] = []

_USER_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


def abort_unpublished() -> None:
    """Throw away the staging folders of this process's unpublished runs (on an error or a signal)."""
    for out in list(_ACTIVE):
        out.abort()


atexit.register(abort_unpublished)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _write_error(root: Path, exc: OSError) -> ConfigError:
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return ConfigError(
        f"cannot write the outputs under {root} ({_reason(exc)})",
        hint="free some disk space or choose an --out on another disk" if full
        else "choose an --out you can write to (check its permissions)",
    )


def _link_tree(src: Path, dst: Path) -> None:
    """Recreate ``src`` under ``dst`` with hard links (symbolic links copied as links)."""
    for dirpath, dirnames, filenames in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        for d in list(dirnames):
            s = Path(dirpath) / d
            if s.is_symlink():
                os.symlink(os.readlink(s), dst / rel / d)
                dirnames.remove(d)
            else:
                (dst / rel / d).mkdir()
        for f in filenames:
            s = Path(dirpath) / f
            if s.is_symlink():
                os.symlink(os.readlink(s), dst / rel / f)
            elif ".part" in f and f.startswith("."):
                continue  # a temporary file of a killed run
            else:
                try:
                    os.link(s, dst / rel / f)
                except OSError:
                    shutil.copy2(s, dst / rel / f)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2`` with ``RENAME_EXCHANGE``); False where unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _json_default(obj):
    import numpy as np

    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return None if np.isnan(obj) else float(obj)
    if isinstance(obj, (np.ndarray,)):
        return obj.tolist()
    if isinstance(obj, (Path,)):
        return str(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)
