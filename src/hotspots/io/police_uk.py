"""Read police.uk street-level files and generic force exports into points.

Every input row is either kept or counted under a named reason (see
``schema.DROP_REASONS``); :class:`Accounting` checks ``kept + dropped == read``
itself and raises :class:`~hotspots._errors.AccountingError` if it ever fails.

Points come out as a plain :class:`pandas.DataFrame` with ``x``/``y`` in British
National Grid (EPSG:27700): projected once, here.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import gzip
import hashlib
import io
import logging
import re
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from hotspots._errors import AccountingError, InputFileError, ValidationError
from hotspots.schema import BNG, DROP_REASONS, POINT_COLUMNS, POLICE_UK_CRIME_TYPES, POLICE_UK_STREET_HEADER, WGS84

log = logging.getLogger(__name__)

#: Bounds of Great Britain and Northern Ireland used to reject corrupt coordinates.
UK_LON = (-8.75, 1.80)
UK_LAT = (49.85, 60.90)
#: British National Grid extent (metres) for easting/northing inputs.
BNG_X = (0.0, 700_000.0)
BNG_Y = (0.0, 1_300_000.0)

STREET_FILE_RE = re.compile(r"(?:^|/)(\d{4}-\d{2})-([a-z0-9-]+)-street\.csv(?:\.gz)?$")
from hotspots.months import MONTH_RE

# police.uk header name -> internal column
POLICE_UK_COLUMNS = {
    "Crime ID": "record_id",
    "Month": "month",
    "Longitude": "lon",
    "Latitude": "lat",
    "Location": "location",
    "LSOA code": "lsoa_code",
    "Crime type": "crime_type",
    "Last outcome category": "outcome",
}
REQUIRED_POLICE_UK = ["Month", "Longitude", "Latitude", "Crime type"]


# --------------------------------------------------------------------------- accounting
@dataclasses.dataclass
class FileAccount:
    """What happened to the rows of one input file (or archive member)."""

    path: str
    force: str = ""
    month: str = ""
    rows_read: int = 0
    kept: int = 0
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)
    sha256: str = ""
    bytes: int = 0
    encoding: str = "utf-8"
    notes: list[str] = dataclasses.field(default_factory=list)


class Accounting:
    """Row accounting across all input files.

    Rows are dropped in stages (parsing, validation, study-area clipping); each
    stage calls :meth:`drop` with the rows' file labels, and :meth:`check`
    proves ``kept + dropped == read`` for every file.
    """

    def __init__(self) -> None:
        self.files: dict[str, FileAccount] = {}

    def add_file(self, account: FileAccount) -> None:
        if account.path in self.files:
            raise InputFileError(
                f"{account.path} was given twice", hint="pass each input file once"
            )
        self.files[account.path] = account

    def drop(self, source_file: Iterable[str] | pd.Series, reason: str) -> int:
        """Move rows from kept to ``reason``; ``source_file`` holds one label per dropped row."""
        if reason not in DROP_REASONS:
            raise ValueError(f"unknown drop reason {reason!r}")
        counts = pd.Series(list(source_file) if not isinstance(source_file, pd.Series) else source_file).value_counts()
        for path, n in counts.items():
            acc = self.files[path]
            acc.dropped[reason] = acc.dropped.get(reason, 0) + int(n)
            acc.kept -= int(n)
        return int(counts.sum())

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files.values())

    @property
    def kept(self) -> int:
        return sum(f.kept for f in self.files.values())

    def dropped_by_reason(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.files.values():
            for reason, n in f.dropped.items():
                out[reason] = out.get(reason, 0) + n
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def check(self, points: pd.DataFrame | None = None) -> None:
        """Raise :class:`AccountingError` unless every row is kept or dropped for a reason."""
        problems = []
        for f in self.files.values():
            dropped = sum(f.dropped.values())
            if f.kept < 0 or f.kept + dropped != f.rows_read:
                problems.append(f"{f.path}: read {f.rows_read}, kept {f.kept}, dropped {dropped}")
        if points is not None:
            per_file = points["source_file"].value_counts()
            for f in self.files.values():
                if int(per_file.get(f.path, 0)) != f.kept:
                    problems.append(
                        f"{f.path}: accounting says {f.kept} kept but {int(per_file.get(f.path, 0))} points remain"
                    )
        if problems:
            raise AccountingError(
                "row accounting does not balance (a bug in hotspots, please report it):\n  " + "\n  ".join(problems)
            )

    def to_dict(self) -> dict:
        return {
            "rows_read": self.rows_read,
            "kept": self.kept,
            "dropped": self.dropped_by_reason(),
            "balanced": self.kept + sum(self.dropped_by_reason().values()) == self.rows_read,
            "files": [dataclasses.asdict(f) for f in self.files.values()],
        }

    def summary_lines(self) -> list[str]:
        lines = [f"rows read {self.rows_read:,} from {len(self.files)} file(s); kept {self.kept:,}"]
        for reason, n in self.dropped_by_reason().items():
            lines.append(f"  dropped {n:,}: {reason} ({DROP_REASONS[reason]})")
        return lines


@dataclasses.dataclass
class IngestResult:
    points: pd.DataFrame
    accounting: Accounting


# --------------------------------------------------------------------------- discovery
@dataclasses.dataclass(frozen=True)
class Source:
    """One street-level CSV: a file on disk or a member of a zip archive."""

    path: Path
    member: str | None = None
    force: str = ""
    month: str = ""

    @property
    def label(self) -> str:
        return f"{self.path}!{self.member}" if self.member else str(self.path)


def _classify(name: str) -> tuple[str, str] | None:
    m = STREET_FILE_RE.search(name.replace("\\", "/"))
    return (m.group(1), m.group(2)) if m else None


def find_police_files(
    paths: Sequence[str | Path],
    *,
    forces: Sequence[str] | None = None,
    first_month: str | None = None,
    last_month: str | None = None,
) -> list[Source]:
    """Find police.uk street-level CSVs under files, folders and ``.zip`` archives.

    Files are recognised by the police.uk name ``YYYY-MM-<force>-street.csv[.gz]``
    (at any depth, also inside zip archives as data.police.uk hands them out).
    Files for other forces or outside ``first_month``..``last_month`` are not
    inputs and are not read.
    """
    found: list[Source] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise InputFileError(f"input not found: {p}", hint="check the path, or run `hotspots info` to see the data home")
        candidates = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file())
        for q in candidates:
            if q.suffix.lower() == ".zip":
                try:
                    with zipfile.ZipFile(q) as zf:
                        names = zf.namelist()
                except (zipfile.BadZipFile, OSError) as exc:
                    raise InputFileError(
                        f"{q}: not a readable zip archive ({exc})",
                        hint="the download may be truncated; download the archive again",
                    ) from exc
                for name in sorted(names):
                    c = _classify(name)
                    if c:
                        found.append(Source(q, name, force=c[1], month=c[0]))
            else:
                c = _classify(q.name)
                if c:
                    found.append(Source(q, None, force=c[1], month=c[0]))
                elif p.is_file():
                    # an explicitly named file that does not follow police.uk naming
                    found.append(Source(q, None))
    out = []
    for s in found:
        if forces and s.force and s.force not in forces:
            continue
        if s.month and first_month and s.month < first_month:
            continue
        if s.month and last_month and s.month > last_month:
            continue
        out.append(s)
    return out


# --------------------------------------------------------------------------- parsing
def _read_bytes(src: Source) -> bytes:
    try:
        if src.member is not None:
            with zipfile.ZipFile(src.path) as zf:
                raw = zf.read(src.member)
            # a zip may hold .csv.gz members (STREET_FILE_RE accepts them)
            return gzip.decompress(raw) if src.member.lower().endswith(".gz") or raw[:2] == b"\x1f\x8b" else raw
        raw = src.path.read_bytes()
        if src.path.suffix.lower() == ".gz" or raw[:2] == b"\x1f\x8b":
            return gzip.decompress(raw)
        return raw
    except (EOFError, gzip.BadGzipFile, zlib.error, zipfile.BadZipFile) as exc:
        raise InputFileError(
            f"{src.label}: compressed file is truncated or corrupt ({exc})",
            hint="download the file again; `hotspots info` lists the files it found",
        ) from exc
    except (NotImplementedError, RuntimeError) as exc:  # zipfile: encrypted or unsupported compression
        raise InputFileError(
            f"{src.label}: cannot be extracted ({exc})",
            hint="extract the archive with another tool and pass the CSV files or their folder",
        ) from exc
    except OSError as exc:
        raise InputFileError(f"{src.label}: cannot be read ({exc})", hint="check the file permissions") from exc


def _decode(data: bytes, label: str, account: FileAccount) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # Spreadsheet round-trips save police.uk files as Windows-1252; decode
        # so no row is lost, and say so in the manifest.
        account.encoding = "cp1252"
        account.notes.append(f"not valid UTF-8 (first bad byte at offset {exc.start}); read as Windows-1252")
        log.warning("%s is not valid UTF-8; reading it as Windows-1252", label)
        return data.decode("cp1252", errors="replace")


def _parse_csv_text(text: str, label: str, account: FileAccount) -> tuple[list[str], dict[str, np.ndarray], np.ndarray]:
    """Parse CSV text (quoted newlines allowed) into string columns.

    Returns the header, a dict of column arrays, and each kept row's 1-based
    data-row number.  Rows with the wrong number of fields are counted as
    ``malformed_row`` in ``account`` (not returned).
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

    bad_rows: list[int] = []

    def on_invalid(row) -> str:
        bad_rows.append(row.number if row.number is not None else -1)
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, use_threads=True),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        bad_rows.append(-1)
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


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- validation
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
        type_code, type_values = pd.factorize(ctype, use_na_sentinel=False)
        known = np.isin(np.asarray(type_values, dtype=object), np.asarray(list(crime_types), dtype=object))[type_code]
        mark(~known, "unknown_crime_type")

    ids = _strip(df["record_id"])
    still = reason == 0
    dup = np.zeros(n, dtype=bool)
    has_id = (ids != "").to_numpy() & still
    if has_id.any():
        dup[has_id] = ids[has_id].duplicated(keep="first").to_numpy()
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


def _strip(values: pd.Series) -> pd.Series:
    """``values.astype(str).str.strip()``, sharing ``values``' memory when nothing needed stripping.

    Holding a stripped copy of five columns costs ~1 GB at 6 million rows.
    """
    text = values.astype(str)
    stripped = text.str.strip()
    return text if stripped.str.len().equals(text.str.len()) else stripped


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


# --------------------------------------------------------------------------- police.uk
def read_police_uk(
    paths: Sequence[str | Path] | str | Path,
    *,
    forces: Sequence[str] | None = None,
    first_month: str | None = None,
    last_month: str | None = None,
    crime_types: Sequence[str] | None = tuple(POLICE_UK_CRIME_TYPES),
    progress=None,
) -> IngestResult:
    """Read police.uk street-level files (``.csv``, ``.csv.gz`` or ``.zip`` archives).

    Parameters
    ----------
    paths
        Files, folders (searched recursively) or zip archives.
    forces
        Force slugs to keep, e.g. ``["hertfordshire"]``; ``None`` keeps all.
    first_month, last_month
        Inclusive month range ``"YYYY-MM"``.  Files outside the range are not
        read; rows inside a file whose ``Month`` falls outside are counted as
        ``outside_month_range``.
    crime_types
        Accepted categories; others are counted as ``unknown_crime_type``.
        ``None`` accepts any.
    progress
        Optional callable ``progress(done, total, label)``.

    Returns
    -------
    IngestResult
        ``points`` (columns :data:`hotspots.schema.POINT_COLUMNS`, x/y in
        EPSG:27700) and the row :class:`Accounting`.

    Notes
    -----
    When two sources hold the same force-month (say a folder file and the
    same month inside a zip archive), the first in sorted order is used and
    the other's rows are counted as ``duplicate_file``.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    sources = find_police_files(paths, forces=forces, first_month=first_month, last_month=last_month)
    if not sources:
        raise InputFileError(
            f"no police.uk street-level files found under {', '.join(map(str, paths))}"
            + (f" for force(s) {', '.join(forces)}" if forces else "")
            + (f" between {first_month} and {last_month}" if first_month or last_month else ""),
            hint="files must be named YYYY-MM-<force>-street.csv[.gz] (as police.uk publishes them); "
            "run `hotspots info` to see what the data home holds",
        )
    accounting = Accounting()
    frames = []
    seen: dict[tuple[str, str], str] = {}
    for i, src in enumerate(sources):
        if progress:
            progress(i, len(sources), src.label)
        data = _read_bytes(src)
        account = FileAccount(path=src.label, force=src.force, month=src.month, sha256=_sha256(data), bytes=len(data))
        accounting.add_file(account)
        text = _decode(data, src.label, account)
        header, cols, rownums = _parse_csv_text(text, src.label, account)
        missing = [c for c in REQUIRED_POLICE_UK if c not in header]
        if missing:
            raise InputFileError(
                f"{src.label}: header lacks column(s) {missing}; found {header}",
                hint="police.uk street files start with: " + ",".join(POLICE_UK_STREET_HEADER)
                + ". For other layouts use `read_force_export` with a column mapping",
            )
        n = len(rownums)
        account.rows_read += n
        account.kept += n
        key = (src.force, src.month)
        if src.month and key in seen:
            account.notes.append(f"same force-month as {seen[key]}")
            account.dropped["duplicate_file"] = account.dropped.get("duplicate_file", 0) + n
            account.kept -= n
            continue
        if src.month:
            seen[key] = src.label
        frame = pd.DataFrame(
            {
                "record_id": cols.get("Crime ID", np.full(n, "", object)),
                "month": cols["Month"],
                "_a": cols["Longitude"],
                "_b": cols["Latitude"],
                "location": cols.get("Location", np.full(n, "", object)),
                "lsoa_code": cols.get("LSOA code", np.full(n, "", object)),
                "crime_type": cols["Crime type"],
                "outcome": cols.get("Last outcome category", np.full(n, "", object)),
                "force": src.force or _force_from_falls_within(cols.get("Falls within"), n),
                "source_file": src.label,
                "source_row": rownums,
            }
        )
        frames.append(frame)
    if progress:
        progress(len(sources), len(sources), "done")
    df = _finish(frames)
    points = _validate_rows(
        df, accounting, first_month=first_month, last_month=last_month, crime_types=crime_types, coords="lonlat"
    )
    points["lsoa21_code"] = ""
    points = points[POINT_COLUMNS].reset_index(drop=True)
    accounting.check(points)
    return IngestResult(points, accounting)


def _force_from_falls_within(values, n):
    if values is None or n == 0:
        return ""
    first = str(values[0]).strip().lower()
    return re.sub(r"[^a-z0-9]+", "-", first.replace(" constabulary", "").replace(" police", "")).strip("-")


# --------------------------------------------------------------------------- force exports
@dataclasses.dataclass(frozen=True)
class ColumnMapping:
    """How a force export's columns map onto hotspots' points.

    ``x``/``y`` are eastings/northings (``coords="bng"``) or longitude/latitude
    (``coords="lonlat"``).  ``date`` may be a date or a datetime; the month is
    derived from it and the full timestamp is kept in a ``datetime`` column.
    ``offence`` holds the offence type; ``crime_type_map`` maps its values to
    police.uk categories (values missing from the map are counted as
    ``unknown_crime_type`` unless ``keep_unmapped=True``).
    """

    x: str
    y: str
    date: str
    offence: str
    id: str | None = None
    location: str | None = None
    coords: str = "bng"
    date_format: str | None = None
    crime_type_map: dict[str, str] | None = None
    keep_unmapped: bool = False


def read_force_export(
    path: str | Path,
    mapping: ColumnMapping,
    *,
    force: str = "export",
    first_month: str | None = None,
    last_month: str | None = None,
) -> IngestResult:
    """Read a generic force export (CSV) with a column mapping.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "export.csv")
    >>> _ = open(p, "w").write("ref,E,N,when,what\\n1,515000,205000,2025-03-04 22:15,Burglary\\n2,,,2025-03-05,Burglary\\n")
    >>> res = read_force_export(p, ColumnMapping(x="E", y="N", date="when", offence="what", id="ref"))
    >>> len(res.points), res.accounting.dropped_by_reason()
    (1, {'no_coordinates': 1})
    """
    problems = []
    if mapping.coords not in ("bng", "lonlat"):
        problems.append(f"coords={mapping.coords!r} must be 'bng' (eastings/northings) or 'lonlat'")
    if problems:
        raise ValidationError("; ".join(problems), hint="fix the column mapping")
    src = Source(Path(path))
    if not src.path.is_file():
        raise InputFileError(f"force export not found: {path}", hint="check the path")
    data = _read_bytes(src)
    account = FileAccount(path=str(src.path), force=force, sha256=_sha256(data), bytes=len(data))
    accounting = Accounting()
    accounting.add_file(account)
    text = _decode(data, str(src.path), account)
    header, cols, rownums = _parse_csv_text(text, str(src.path), account)
    wanted = {"x": mapping.x, "y": mapping.y, "date": mapping.date, "offence": mapping.offence}
    if mapping.id:
        wanted["id"] = mapping.id
    if mapping.location:
        wanted["location"] = mapping.location
    missing = {k: v for k, v in wanted.items() if v not in header}
    if missing:
        raise InputFileError(
            f"{path}: mapped column(s) not in the header: "
            + ", ".join(f"{k}={v!r}" for k, v in missing.items())
            + f"; the header has {header}",
            hint="fix the column mapping to use names from the header",
        )
    n = len(rownums)
    account.rows_read += n
    account.kept += n
    when = _parse_datetimes(cols[mapping.date], mapping.date_format)
    month = when.dt.strftime("%Y-%m").fillna("invalid").to_numpy(dtype=object)
    offence = pd.Series(cols[mapping.offence]).astype(str).str.strip()
    if mapping.crime_type_map:
        mapped = offence.map(mapping.crime_type_map)
        ctype = mapped.fillna(offence if mapping.keep_unmapped else "\x00unmapped").to_numpy(dtype=object)
        accept = None if mapping.keep_unmapped else list(set(mapping.crime_type_map.values()))
    else:
        ctype = offence.to_numpy(dtype=object)
        accept = None
    df = pd.DataFrame(
        {
            "record_id": cols[mapping.id] if mapping.id else np.full(n, "", object),
            "month": month,
            "_a": cols[mapping.x],
            "_b": cols[mapping.y],
            "location": cols[mapping.location] if mapping.location else np.full(n, "", object),
            "lsoa_code": np.full(n, "", object),
            "crime_type": ctype,
            "outcome": np.full(n, "", object),
            "force": force,
            "source_file": str(src.path),
            "source_row": rownums,
            "datetime": when.to_numpy(),
        }
    )
    points = _validate_rows(
        df, accounting, first_month=first_month, last_month=last_month, crime_types=accept, coords=mapping.coords
    )
    points["lsoa21_code"] = ""
    points = points[POINT_COLUMNS + ["datetime"]].reset_index(drop=True)
    accounting.check(points)
    return IngestResult(points, accounting)


def _parse_datetimes(values, date_format: str | None) -> pd.Series:
    """Dates/datetimes of a force export as naive UK local time (NaT when unreadable).

    Without ``date_format``: ISO 8601 (``2025-03-04``, ``2025-03-04 22:15``)
    first, each value on its own so dates and datetimes may mix; anything else
    is read day first, as English forces write dates (``04/03/2025`` is
    4 March).  pandas' default would infer one format from the first value
    (so later dates-without-times became NaT) and read ``04/03/2025`` month first.
    """
    s = pd.Series(values, dtype=object).astype(str).str.strip()

    def parse(part: pd.Series, **kwargs) -> pd.Series:
        try:
            out = pd.to_datetime(part, errors="coerce", **kwargs)
        except ValueError as exc:
            if "timezone" not in str(exc).lower():
                raise
            out = pd.to_datetime(part, errors="coerce", utc=True, **kwargs)
        if getattr(out.dt, "tz", None) is not None:
            out = out.dt.tz_convert("Europe/London").dt.tz_localize(None)
        return out

    if date_format:
        try:
            return parse(s, format=date_format)
        except ValueError as exc:
            raise ValidationError(
                f"date_format={date_format!r} cannot be used ({exc})",
                hint="use strftime codes, e.g. '%d/%m/%Y %H:%M', or leave date_format empty to detect it",
            ) from exc
    when = parse(s, format="ISO8601")
    # a year-first value that is not ISO (2025-13-01) stays unreadable rather than guessed
    rest = when.isna() & (s != "") & ~s.str.match(r"^\d{4}")
    if rest.any():
        when = when.astype("datetime64[us]")
        when[rest] = parse(s[rest], format="mixed", dayfirst=True).astype("datetime64[us]")
    return when


# --------------------------------------------------------------------------- LSOA vintages
def harmonise_lsoa(
    points: pd.DataFrame,
    lookup: pd.DataFrame,
    *,
    lsoa21_polygons=None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Fill ``lsoa21_code`` from the published LSOA code (2011 or 2021 vintage).

    ``lookup`` has columns ``lsoa11_code``, ``lsoa21_code`` (the ONS
    LSOA11→LSOA21 best-fit lookup, one row per pair).  2021 codes pass through.
    A 2011 LSOA split into several 2021 LSOAs is resolved by the point's
    position (``lsoa21_polygons``: GeoDataFrame with ``lsoa21_code`` in
    EPSG:27700); without polygons, or when the point lies in none of the
    candidates, the candidate with the lowest code is used and counted.

    Returns the points (copy) and counts by method.
    """
    pts = points.copy(deep=False)  # copy-on-write: adding lsoa21_code below leaves ``points`` untouched
    # object strings: isin/map use pandas' hash table, whereas isin on arrow strings
    # converts the 35,000 lookup codes one by one in every call (1.8 s for Hertfordshire)
    code = pts["lsoa_code"].astype(str).str.strip().astype(object)
    lk = lookup[["lsoa11_code", "lsoa21_code"]].drop_duplicates()
    valid21 = set(lk["lsoa21_code"])
    n_targets = lk.groupby("lsoa11_code")["lsoa21_code"].nunique()
    one_to_one = lk[lk["lsoa11_code"].map(n_targets) == 1].set_index("lsoa11_code")["lsoa21_code"]

    out = pd.Series("", index=pts.index, dtype=object)
    is21 = code.isin(valid21)
    out[is21] = code[is21]
    rest = ~is21 & (code != "")
    mapped = code[rest].map(one_to_one)
    ok = mapped.notna()
    out[mapped.index[ok]] = mapped[ok]
    split_idx = mapped.index[~ok & code[mapped.index].isin(n_targets.index)]
    unknown_idx = mapped.index[~ok & ~code[mapped.index].isin(n_targets.index)]
    stats = {
        "published_2021": int(is21.sum()),
        "mapped_2011_one_to_one": int(ok.sum()),
        "split_by_location": 0,
        "split_lowest_code": 0,
        "unknown_code": int(len(unknown_idx)),
        "blank": int((code == "").sum()),
    }
    if len(split_idx):
        cands = lk[lk["lsoa11_code"].isin(code[split_idx].unique())]
        chosen = pd.Series("", index=split_idx, dtype=object)
        if lsoa21_polygons is not None and len(lsoa21_polygons):
            import shapely

            poly = lsoa21_polygons.drop_duplicates("lsoa21_code").set_index("lsoa21_code").geometry
            pairs = pd.DataFrame({"idx": split_idx, "lsoa11_code": code[split_idx].to_numpy()}).merge(cands, on="lsoa11_code")
            pairs = pairs[pairs["lsoa21_code"].isin(poly.index)].sort_values(["idx", "lsoa21_code"])
            if len(pairs):
                geoms = np.asarray(poly.reindex(pairs["lsoa21_code"]).values)
                shapely.prepare(geoms)
                inside = shapely.intersects_xy(
                    geoms, pts.loc[pairs["idx"], "x"].to_numpy(float), pts.loc[pairs["idx"], "y"].to_numpy(float)
                )
                first = pairs[inside].drop_duplicates("idx")
                chosen[first["idx"].to_numpy()] = first["lsoa21_code"].to_numpy()
        lowest = cands.groupby("lsoa11_code")["lsoa21_code"].min()
        by_loc = chosen != ""
        stats["split_by_location"] = int(by_loc.sum())
        stats["split_lowest_code"] = int((~by_loc).sum())
        chosen[~by_loc] = code[chosen.index[~by_loc]].map(lowest)
        out[split_idx] = chosen
    pts["lsoa21_code"] = out.astype(str)
    return pts, stats
