"""CSV parsing and row validation (private helpers of :mod:`hotspots.io`).

:func:`_parse_csv_text` turns decoded CSV text into string columns (fast arrow
parser, with an exact Python fallback that numbers malformed rows);
:func:`_validate_rows` gives every row the first drop reason that applies and
returns the kept rows with ``x``/``y`` in British National Grid: projected
once, here.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from hotspots._errors import InputFileError
from hotspots.io.accounting import Accounting, FileAccount
from hotspots.months import MONTH_RE
from hotspots.schema import BNG, DROP_REASONS, POINT_COLUMNS, WGS84

log = logging.getLogger(__name__)

#: Bounds of Great Britain and Northern Ireland used to reject corrupt coordinates.
UK_LON = (-8.75, 1.80)
UK_LAT = (49.85, 60.90)
#: British National Grid extent (metres) for easting/northing inputs.
BNG_X = (0.0, 700_000.0)
BNG_Y = (0.0, 1_300_000.0)


#: texts longer than this are parsed by Arrow on several threads
THREADED_PARSE_CHARS = 64 * 1024 * 1024


def _parse_csv_text(
    text: str, label: str, account: FileAccount, utf8: bytes | None = None, parsed: tuple | None = None,
) -> tuple[list[str], dict[str, np.ndarray], np.ndarray]:
    """Parse CSV text (quoted newlines allowed) into string columns.

    Returns the header, a dict of column arrays, and each kept row's 1-based
    data-row number.  Rows with the wrong number of fields are counted as
    ``malformed_row`` in ``account`` (not returned).  ``utf8``, when the
    caller has it, is ``text.encode("utf-8")`` (the file's bytes less a
    byte-order mark, when they decoded as UTF-8): not encoded again.
    ``parsed`` is :func:`_parse_ahead` of those bytes: used when given
    ``utf8`` and the header read here.
    """
    # police.uk Location/Context fields can be long; the csv module's 128 KiB
    # default field limit would turn one long field into a crash
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    # the header is the first CSV record, whatever the line ending (\n, \r\n or a bare \r)
    header = _first_record(text)
    header = [h.strip() for h in header]
    if not header or all(h == "" for h in header):
        raise InputFileError(
            f"{label}: file is empty (no header row)" if not text.strip() else f"{label}: the first line is blank (no header row)",
            hint="download the file again or remove it; the first line must be the column names",
        )
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise InputFileError(f"{label}: header repeats column(s) {dupes}", hint="each column name must appear once")

    if parsed is not None and utf8 is not None and parsed[0] == header:
        table, bad_rows = parsed[1], []  # parsed ahead: the call below on the same bytes, without a bad row
    else:
        try:
            # one thread for a police.uk force-month (at most ~30 MB): threads cost more CPU than they save there
            table, bad_rows = _arrow_parse(text.encode("utf-8") if utf8 is None else utf8, header,
                                           threads=len(text) > THREADED_PARSE_CHARS)
        except pa.ArrowInvalid as exc:
            bad_rows = [-1]
            log.debug("%s: arrow parser failed (%s); using the exact Python parser", label, exc)
            table = None

    if table is not None and not bad_rows:
        # pandas strings on the arrow buffers: no Python object per cell (one per cell
        # would cost ~5 GB and a minute for 6 million rows x 12 columns)
        cols = {h: pd.array(table.column(h), dtype="str") for h in header}
        return header, cols, np.arange(1, table.num_rows + 1)

    # Slow, exact path: the csv module knows each record's data-row number.
    rows: list[list[str]] = []
    numbers: list[int] = []
    malformed_rows: list[int] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader, None)
    i = 0
    for rec in reader:
        if not rec:
            continue  # blank line: not a record, not numbered (as in the fast path)
        i += 1
        if len(rec) != len(header):
            malformed_rows.append(i)
            continue
        rows.append(rec)
        numbers.append(i)
    malformed = len(malformed_rows)
    account.rows_read += malformed
    if malformed:
        account.dropped["malformed_row"] = account.dropped.get("malformed_row", 0) + malformed
        shown = ", ".join(map(str, malformed_rows[:10])) + (", ..." if malformed > 10 else "")
        account.notes.append(f"{malformed} row(s) with the wrong number of fields (data row(s) {shown})")
    arr = np.array(rows, dtype=object).reshape(len(rows), len(header)) if rows else np.empty((0, len(header)), object)
    cols = {h: arr[:, j] for j, h in enumerate(header)}
    return header, cols, np.array(numbers, dtype=np.int64)


def _arrow_parse(utf8: bytes, header: list[str], *, threads: bool) -> tuple[pa.Table, list[int]]:
    """Arrow's parse of CSV bytes into string columns named ``header`` (the first line skipped), and the
    numbers of the rows it skipped (wrong number of fields).  Raises :class:`pyarrow.ArrowInvalid`."""
    bad_rows: list[int] = []

    def on_invalid(row) -> str:
        bad_rows.append(row.number if row.number is not None else -1)
        return "skip"

    table = pacsv.read_csv(
        io.BytesIO(utf8),
        read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, use_threads=threads),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            # large_string: what pandas' str dtype holds, so the columns are not cast (copied) again into it
            column_types={h: pa.large_string() for h in header},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return table, bad_rows


def _parse_ahead(data: bytes) -> tuple[list[str], pa.Table] | None:
    """Arrow's parse of a file's bytes as :func:`_parse_csv_text` does it, for a thread to run while
    the previous file is handled: ``(header, table)``, or None where that would not use Arrow's table
    (no complete header, a repeated column, a bad row, ...) or might parse on several threads.

    The caller uses the table only when its own header is the same and the
    bytes decoded as UTF-8 (these bytes less a byte-order mark): then
    :func:`_parse_csv_text` would have made this very call.  Arrow parses
    without the GIL.
    """
    utf8 = data[3:] if data[:3] == b"\xef\xbb\xbf" else data
    if len(utf8) > THREADED_PARSE_CHARS or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return None  # (the text is at most as long as the bytes: one thread, as _parse_csv_text chooses)
    try:
        records = csv.reader(io.StringIO(utf8[:1 << 16].decode("utf-8", errors="ignore"), newline=""))
        header = next(records, None)
        if header is None or next(records, None) is None:  # the header is complete once a second record starts
            return None
    except csv.Error:
        return None
    header = [h.strip() for h in header]
    if not header or all(h == "" for h in header) or len(set(header)) != len(header):
        return None
    try:
        table, bad_rows = _arrow_parse(utf8, header, threads=False)
    except pa.ArrowInvalid:
        return None
    return None if bad_rows else (header, table)


def _first_record(text: str) -> list[str]:
    """The first CSV record of ``text``, parsing only as much of it as needed.

    The record is complete once a second record has started (or the text has
    ended); a 16 MB file is not copied into a StringIO to read one line.
    """
    size = 1 << 16
    while True:
        records = csv.reader(io.StringIO(text[:size], newline=""))
        if size >= len(text):
            return next(records, [])
        try:
            first = next(records, [])
            if next(records, None) is not None:
                return first
        except csv.Error:
            pass  # cut inside a quoted field: read more
        size *= 4


def _validate_rows(
    df: pd.DataFrame,
    accounting: Accounting,
    *,
    first_month: str | None,
    last_month: str | None,
    crime_types: Sequence[str] | None,
    coords: str,
) -> pd.DataFrame:
    """Assign each row the first drop reason that applies; return the kept rows with x/y."""
    n = len(df)
    # 0 = kept, else 1 + position in DROP_REASONS (small integers compare ~30x faster than strings)
    code = {name: i + 1 for i, name in enumerate(DROP_REASONS)}
    reason = np.zeros(n, dtype=np.int8)

    def mark(mask: np.ndarray, name: str) -> None:
        sel = mask & (reason == 0)
        reason[sel] = code[name]

    # columns hold few distinct values (months, types, ~750,000 police.uk map points):
    # each check or parse runs once per distinct value
    month = _strip(df["month"])
    month_code, month_values = pd.factorize(month, use_na_sentinel=False)
    month_values = np.asarray(month_values, dtype=object)
    month_ok = np.array([bool(MONTH_RE.match(m)) for m in month_values], dtype=bool)[month_code]
    mark(~month_ok, "malformed_row")
    if first_month:
        mark(month_ok & (month_values < first_month)[month_code], "outside_month_range")
    if last_month:
        mark(month_ok & (month_values > last_month)[month_code], "outside_month_range")

    a_str = _strip(df["_a"])
    b_str = _strip(df["_b"])
    missing = (a_str == "").to_numpy() | (b_str == "").to_numpy()
    mark(missing, "no_coordinates")
    a_code, a_values = pd.factorize(a_str, use_na_sentinel=False)
    b_code, b_values = pd.factorize(b_str, use_na_sentinel=False)
    a_float, b_float = _to_float(a_values), _to_float(b_values)
    a, b = a_float[a_code], b_float[b_code]
    mark(~missing & (~np.isfinite(a) | ~np.isfinite(b)), "malformed_row")

    if coords == "lonlat":
        inside = (a >= UK_LON[0]) & (a <= UK_LON[1]) & (b >= UK_LAT[0]) & (b <= UK_LAT[1])
        swapped = (b >= UK_LON[0]) & (b <= UK_LON[1]) & (a >= UK_LAT[0]) & (a <= UK_LAT[1])
    else:
        inside = (a > BNG_X[0]) & (a <= BNG_X[1]) & (b > BNG_Y[0]) & (b <= BNG_Y[1])
        swapped = (b > BNG_X[0]) & (b <= BNG_X[1]) & (a > BNG_Y[0]) & (a <= BNG_Y[1]) & (a > BNG_X[1])
    outside = np.isfinite(a) & np.isfinite(b) & ~inside
    mark(outside, "outside_uk")

    ctype = _strip(df["crime_type"])
    if crime_types is not None:
        ctype = _canonical_crime_types(ctype, df["source_file"], list(crime_types), accounting)
        type_code, type_values = pd.factorize(ctype, use_na_sentinel=False)
        known_values = np.isin(np.asarray(type_values, dtype=object), np.asarray(list(crime_types), dtype=object))
        known = known_values[type_code]
        unknown_sel = ~known & (reason == 0)
        mark(~known, "unknown_crime_type")
        if unknown_sel.any():  # name the values, so "ASB = 0" can be traced to a spelling
            pairs = pd.DataFrame({"f": df["source_file"].to_numpy()[unknown_sel], "v": ctype.to_numpy()[unknown_sel]})
            for (path, value), k in pairs.value_counts().items():
                acc = accounting.files[path].unknown_crime_types
                acc[str(value)] = acc.get(str(value), 0) + int(k)

    ids = _strip(df["record_id"])
    still = reason == 0
    dup = np.zeros(n, dtype=bool)
    has_id = (ids != "").to_numpy() & still
    if has_id.any():
        dup[has_id] = _duplicated(ids[has_id])
    mark(dup, "duplicate_crime_id")

    # swapped coordinates are still dropped as outside_uk, but we say so
    sw = (reason == code["outside_uk"]) & swapped
    if sw.any():
        for path, k in pd.Series(df["source_file"].to_numpy()[sw]).value_counts().items():
            accounting.files[path].notes.append(
                f"{int(k)} row(s) outside the UK look like swapped coordinates "
                + ("(latitude in the longitude column)" if coords == "lonlat" else "(northing in the easting column)")
            )
    # the other common mix-up: the wrong kind of coordinates for the mapping
    if coords == "lonlat":
        other = (a > BNG_X[0]) & (a <= BNG_X[1]) & (b > BNG_Y[0]) & (b <= BNG_Y[1]) & ((np.abs(a) > 180) | (np.abs(b) > 90))
        other_note = "look like British National Grid eastings/northings; map them with coords='bng'"
    else:
        other = (a >= UK_LON[0]) & (a <= UK_LON[1]) & (b >= UK_LAT[0]) & (b <= UK_LAT[1])
        other_note = "look like longitude/latitude; map them with coords='lonlat'"
    other &= reason == code["outside_uk"]
    if other.any():
        for path, k in pd.Series(df["source_file"].to_numpy()[other]).value_counts().items():
            accounting.files[path].notes.append(f"{int(k)} row(s) outside the UK {other_note}")

    for name in DROP_REASONS:
        sel = reason == code[name]
        if sel.any():
            accounting.drop(df["source_file"][sel], name)

    keep = reason == 0
    # copy only the columns kept as they are (the others are replaced below)
    out = df.drop(columns=["_a", "_b", "month", "crime_type", "record_id"]).loc[keep]
    a, b = a[keep], b[keep]
    if coords == "lonlat":
        # project each distinct (longitude, latitude) once
        n_b = max(len(b_values), 1)
        pair_code, pair = pd.factorize(a_code[keep].astype(np.int64) * n_b + b_code[keep])
        pair = np.asarray(pair, dtype=np.int64)
        x, y = _lonlat_to_bng().transform(a_float[pair // n_b], b_float[pair % n_b])
        x, y = np.asarray(x, dtype=float)[pair_code], np.asarray(y, dtype=float)[pair_code]
    else:
        x, y = a, b
    out["x"] = np.asarray(x, dtype=float)
    out["y"] = np.asarray(y, dtype=float)
    out["month"] = month.array[keep]
    out["crime_type"] = ctype.array[keep]
    out["record_id"] = ids.array[keep]
    columns = [c for c in df.columns if c not in ("_a", "_b")]
    return out[columns + [c for c in ("x", "y") if c not in columns]]


def _canonical_crime_types(ctype: pd.Series, source_file: pd.Series, known: list[str], accounting: Accounting) -> pd.Series:
    """Read a known category written with other capitals or spacing ("Anti-Social Behaviour") as that category; noted per file."""
    values = ctype.unique()  # the distinct values (not an object array of every row first)
    norm = {" ".join(k.split()).casefold(): k for k in known}
    mapping = {}
    for v in values:
        if isinstance(v, str) and v not in known:
            canon = norm.get(" ".join(v.replace("_", " ").split()).casefold())
            if canon is not None:
                mapping[v] = canon
    if not mapping:
        return ctype
    sel = ctype.isin(list(mapping)).to_numpy()
    pairs = pd.DataFrame({"f": source_file.to_numpy()[sel], "v": ctype.to_numpy()[sel]})
    for (path, value), k in pairs.value_counts().items():
        accounting.files[path].notes.append(f"{int(k)} row(s) with crime type {value!r} read as {mapping[value]!r}")
    return ctype.replace(mapping)


def _duplicated(values) -> np.ndarray:
    """``pd.Series(values).duplicated(keep="first")`` (missing values equal to each other), by factorizing.

    :func:`pandas.factorize` numbers the values in order of first appearance,
    so a row repeats an earlier one exactly when its number is not above
    every number before it.  Twice as fast on Arrow strings.
    """
    codes, _ = pd.factorize(values, use_na_sentinel=False)
    if not len(codes):
        return np.zeros(0, dtype=bool)
    return codes <= np.concatenate([[-1], np.maximum.accumulate(codes)[:-1]])


def _strip(values: pd.Series) -> pd.Series:
    """``values.astype(str).str.strip()``, sharing ``values``' memory when nothing needed stripping.

    Holding a stripped copy of five columns costs ~1 GB at 6 million rows.
    """
    text = values.astype(str)
    if _nothing_to_strip(text):
        return text
    stripped = text.str.strip()
    return text if stripped.str.len().equals(text.str.len()) else stripped


def _nothing_to_strip(text: pd.Series) -> bool:
    """Whether no cell of an Arrow string column (no missing values) can begin or end with whitespace.

    Checks each cell's first and last byte: a strip and two length passes (a
    third of the row checks' time) for columns such as months and crime IDs
    that never need one.  Conservative: a control byte, a space or any
    non-ASCII byte (Unicode spaces) at either end says "maybe", and the
    caller strips as before.
    """
    array = text.array
    dtype = text.dtype
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow") or text.isna().any():
        return False
    values = pa.array(array)
    for chunk in (values.chunks if isinstance(values, pa.ChunkedArray) else [values]):
        if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
            return False
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64 if pa.types.is_large_string(chunk.type) else np.int32)
        offsets = offsets[chunk.offset:chunk.offset + len(chunk) + 1]
        data = chunk.buffers()[2]
        if data is None:
            continue  # every cell empty
        data = np.frombuffer(data, dtype=np.uint8)
        filled = offsets[1:] > offsets[:-1]
        ends = np.concatenate([data[offsets[:-1][filled]], data[offsets[1:][filled] - 1]])
        if ((ends <= 0x20) | (ends >= 0x7F)).any():
            return False
    return True


def _to_float(values) -> np.ndarray:
    """Numbers from coordinate strings; blank or unreadable -> NaN."""
    s = pd.Series(values)
    return pd.to_numeric(s.where(s != "", None), errors="coerce").to_numpy(dtype=float)


@functools.lru_cache(maxsize=1)
def _lonlat_to_bng():
    """The WGS84 -> BNG transformer, built once (building one takes ~80 ms)."""
    from pyproj import Transformer

    return Transformer.from_crs(WGS84, BNG, always_xy=True)


def _finish(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if frames:
        df = pd.concat(frames, ignore_index=True)
        frames.clear()  # the per-file frames share df's buffers; dropping them lets the rechunk below free memory
        # one arrow chunk per column instead of one per file: hashing (factorize,
        # duplicated) over ~500 file-sized chunks takes twice as long
        for c in df.columns:
            dtype = df[c].dtype
            if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
                values = pa.array(df[c])
                if isinstance(values, pa.ChunkedArray) and values.num_chunks > 1:
                    df[c] = pd.array(values.combine_chunks(), dtype=dtype)
    else:
        df = pd.DataFrame({c: pd.Series(dtype=object) for c in POINT_COLUMNS + ["_a", "_b"]})
    for c in POINT_COLUMNS:
        if c not in df.columns:
            df[c] = ""
    return df

