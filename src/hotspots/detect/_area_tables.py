"""The area cache's tables (:mod:`hotspots.detect._area_cache`): plain columns for Arrow and back, and the check
that shows an entry exact by its column types alone.

A study area's tables are stored as plain columns (:func:`_plain`: geometries as WKB, or left out where they
are the grid's; attrs and other values as JSON, :func:`_encode`) and made again from them (:func:`_restore`).
:func:`_exact_by_types` says when every table of an entry reads back bit for bit without reading it back.
"""

from __future__ import annotations

import functools
import json
import operator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

__all__: list[str] = []


class NotStorable(ValueError):
    """The result holds something this cache cannot store exactly (it is then not stored)."""


# --------------------------------------------------------------------------- plain values as JSON
def _encode(value: Any) -> Any:
    """A JSON form of ``value`` that :func:`_decode` turns back into the same types and values."""
    if value is None or isinstance(value, (bool, str)) or type(value) in (int, float):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return {"__t": "np", "dtype": value.dtype.str, "v": value.item()}
    if type(value) in (list, tuple):
        return {"__t": type(value).__name__, "v": [_encode(v) for v in value]}
    if type(value) is dict:
        if not all(isinstance(k, str) for k in value):
            raise NotStorable("a dict with keys that are not text")
        return {"__t": "dict", "v": {k: _encode(v) for k, v in value.items()}}
    raise NotStorable(f"cannot store a {type(value).__name__}")


def _decode(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    kind, v = value["__t"], value["v"]
    if kind == "np":
        return np.dtype(value["dtype"]).type(v)
    if kind in ("list", "tuple"):
        items = [_decode(x) for x in v]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {k: _decode(x) for k, x in v.items()}
    raise ValueError(f"unknown value type {kind!r}")


# --------------------------------------------------------------------------- tables
def _is_geometry(series) -> bool:
    return getattr(series.dtype, "name", "") == "geometry"


def _geometry_wkb(values) -> np.ndarray:
    import shapely

    return shapely.to_wkb(np.asarray(values))


def _same_objects(a, b) -> bool:
    """Are the geometries of ``a`` and ``b`` the same objects, one by one (then they are equal; cheap)?"""
    return len(a) == len(b) and all(map(operator.is_, np.asarray(a), np.asarray(b)))


def _same_shapes(values, grid: tuple) -> bool:
    """Are these geometries the grid's (``grid``: its geometry array and WKB)? The same objects, or the same WKB."""
    shapes, wkb = grid
    if _same_objects(values, shapes):
        return True
    return len(values) == len(wkb) and bool((_geometry_wkb(values) == wkb).all())


def _plain(frame: pd.DataFrame, grid_wkb: np.ndarray | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The table as plain columns (geometries as WKB, or left out where they are the grid's), and its description."""
    columns = frame.columns.tolist()
    if not all(isinstance(c, str) for c in columns) or frame.columns.has_duplicates:
        raise NotStorable("column names must be distinct text")
    import geopandas as gpd

    desc: dict[str, Any] = {"type": "geo" if isinstance(frame, gpd.GeoDataFrame) else "frame",
                            "columns": columns, "dtypes": _dtype_texts(frame),
                            "attrs": _encode(frame.attrs), "geometries": {}}
    plain = pd.DataFrame(frame).copy(deep=False)
    if desc["type"] == "geo":
        desc["active"] = frame.geometry.name
        crs = frame.crs
        desc["crs"] = None if crs is None else crs.srs
    drop = []
    for name in [c for c, t in zip(columns, desc["dtypes"]) if t == "geometry"]:
        column = frame[name]
        crs = column.crs
        info = {"crs": None if crs is None else crs.srs}
        if grid_wkb is not None and _same_shapes(column.values, grid_wkb):
            info["from_grid"] = True  # a selection's cells: the grid's shapes, stored once
            drop.append(name)
        else:
            plain[name] = _geometry_wkb(column.values)
        desc["geometries"][name] = info
    if drop:
        plain = plain.drop(columns=drop)
    return plain, desc


def _restore(plain: pd.DataFrame, desc: dict[str, Any], grid) -> pd.DataFrame:
    """Undo :func:`_plain`; raises ``ValueError`` when the table is not as described."""
    import geopandas as gpd
    import shapely

    frame = plain
    for position, name in enumerate(desc["columns"]):
        info = desc["geometries"].get(name)
        if info is None:
            continue
        crs = _crs(info["crs"]) if info["crs"] is not None else None
        if info.get("from_grid"):
            values = grid.geometry.values
            if crs != values.crs:
                values = gpd.array.GeometryArray(values._data, crs=crs)
            frame.insert(position, name, values)
        else:
            frame[name] = gpd.array.from_shapely(shapely.from_wkb(frame[name].to_numpy(dtype=object)), crs=crs)
    if desc["type"] == "geo":
        frame = gpd.GeoDataFrame(frame, geometry=desc["active"], copy=False)  # a fresh table: no copy
        if (frame.crs.srs if frame.crs is not None else None) != desc["crs"]:
            raise ValueError("a stored table does not have the CRS it was stored with")
    elif type(frame) is not pd.DataFrame:  # a plain table already is one (a fresh one: no copy needed)
        frame = pd.DataFrame(frame, copy=False)
    frame.attrs = _decode(desc["attrs"])
    if frame.columns.tolist() != desc["columns"] or _dtype_texts(frame) != desc["dtypes"]:
        raise ValueError("a stored table does not have the columns or types it was stored with")
    return frame


@functools.lru_cache(maxsize=8)
def _crs(text: str):
    """``pyproj.CRS(text)``, made once per text (each table's geometries name the same one or two CRSs)."""
    from pyproj import CRS

    return CRS(text)


_DTYPE_TEXT: dict = {}


def _dtype_texts(frame: pd.DataFrame) -> list[str]:
    """``[str(t) for t in frame.dtypes]``, each dtype's text worked out once (equal dtypes have equal texts)."""
    out = []
    for t in frame.dtypes.tolist():
        try:
            text = _DTYPE_TEXT.get(t)
        except TypeError:  # a dtype that cannot be a key
            out.append(str(t))
            continue
        if text is None:
            text = str(t)
            if len(_DTYPE_TEXT) < 256:
                _DTYPE_TEXT[t] = text
        out.append(text)
    return out


def _default_index(frame: pd.DataFrame) -> bool:
    index = frame.index
    return type(index) is pd.RangeIndex and index.start == 0 and index.step == 1 and index.name is None


# --------------------------------------------------------------------------- comparing values (strict)
def _same_value(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, (float, np.floating)) and a != a:
        return b != b
    return bool(a == b)


# --------------------------------------------------------------------------- exact by types (the cheap check)
def _exact_column(values) -> bool:
    """Does Arrow give this column back bit for bit, whatever its values (given the same dtype back)?

    numpy booleans and integers (never null); numpy floats whose NaNs, if any, have the bits Arrow writes back
    for a null (Arrow stores a NaN as a null: a NaN of other bits, such as x86's negative 0/0, comes back changed);
    pandas' Arrow-backed text (the Arrow array is what is stored); shapes (WKB, exact for GEOS geometries).
    Anything else (object, categorical, dates, other extension types) is compared value by value instead, unless
    the column is empty (then its dtype, checked by the caller, is all there is).
    """
    if len(values) == 0:
        return True
    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind in "biu":
            return True
        if dtype.kind != "f":
            return False
        array = np.asarray(values)
        nan = np.isnan(array)
        if not nan.any():
            return True
        canonical = np.array(np.nan, dtype=dtype).view(f"u{dtype.itemsize}")
        return bool((array[nan].view(f"u{dtype.itemsize}") == canonical).all())
    if isinstance(dtype, pd.StringDtype):
        return dtype.storage == "pyarrow"
    return _is_geometry(values)


def _exact_columns(frame: pd.DataFrame) -> bool:
    """:func:`_exact_column` of every column of ``frame`` (numpy columns a block at a time)."""
    try:
        blocks = frame._mgr.blocks
    except AttributeError:  # pandas without blocks: column by column
        return all(_exact_column(frame._get_column_array(i)) for i in range(frame.shape[1]))
    for block in blocks:
        values = block.values
        if isinstance(values, np.ndarray):
            if not _exact_column(values.reshape(-1)):
                return False
        elif not _exact_column(values):
            return False
    return True


def _exact_by_types(written: list[tuple], arrow: dict[str, pa.Table], grid) -> bool:
    """``True`` when every table written (``(frame, desc)``, from :func:`_write_entry`) reads back exactly, shown
    without reading the entry back: then the value-by-value comparison (:func:`result_differences`) is not needed.

    Each table must have the default index, attrs that JSON gives back the same, and only columns that Arrow
    gives back bit for bit (:func:`_exact_column`); and a zero-row read of its file (:func:`_zero_rows_back`, each
    layout once) must give its type, columns, dtypes (equal, not only printed alike), active geometry and CRSs.
    Where any of this fails, the caller reads the entry back and compares every value, as before (the answer is
    then the same, at the usual cost).
    """
    grid_rows = grid.iloc[:0] if grid is not None and hasattr(grid, "geometry") else None
    for frame, desc in written:
        if not _default_index(frame) or not _same_value(_decode(desc["attrs"]), frame.attrs) \
                or not _exact_columns(frame):
            return False
        # desc's columns, dtypes, type, active geometry and CRS texts were taken from the frame (:func:`_plain`)
        back = _zero_rows_back(arrow[desc["file"]], desc, grid_rows)
        if back is False:
            return False
        if getattr(back, "_geometry_column_name", None) != getattr(frame, "_geometry_column_name", None):
            return False
        # the dtypes themselves, not only their texts: text in python and in Arrow storage print alike
        if any(back._get_column_array(i).dtype != frame._get_column_array(i).dtype for i in range(frame.shape[1])):
            return False
        for name, info in desc["geometries"].items():
            x, y = frame[name].values.crs, back[name].values.crs
            if not ((x is None) == (y is None) and (x is None or (x == y and x.srs == y.srs))):
                return False
    return True


#: zero-row tables read back (:func:`_zero_rows_back`), by Arrow schema (with its pandas metadata) and layout: the
#: study areas' tables share a handful of layouts, so a worker checks each once
_ZERO_ROWS: dict[tuple, Any] = {}


def _zero_rows_back(table: pa.Table, desc: dict[str, Any], grid_rows):
    """The table described by ``desc`` as read back from ``table`` with no rows, or ``False`` when that does not
    give the type, columns and dtypes described (then the values must be compared).  Made once per schema and
    layout in a process (the result depends on nothing else: a table with no rows)."""
    key = (table.schema.serialize().to_pybytes(), desc["type"], desc.get("active"), desc.get("crs"),
           tuple(desc["columns"]), tuple(desc["dtypes"]), json.dumps(desc["geometries"], sort_keys=True))
    back = _ZERO_ROWS.get(key)
    if back is None:
        back = _ZERO_ROWS[key] = _zero_rows_read(table, desc, grid_rows)
        while len(_ZERO_ROWS) > 256:
            del _ZERO_ROWS[next(iter(_ZERO_ROWS))]
    return back


def _zero_rows_read(table: pa.Table, desc: dict[str, Any], grid_rows):
    import geopandas as gpd

    try:
        back = _restore(table.slice(0, 0).to_pandas(), {**desc, "attrs": _encode({})}, grid_rows)
    except Exception:  # noqa: BLE001 -- not shown exact this way: compared value by value
        return False
    if (desc["type"] == "geo") != isinstance(back, gpd.GeoDataFrame) \
            or back.columns.tolist() != desc["columns"] or _dtype_texts(back) != desc["dtypes"]:
        return False
    return back
