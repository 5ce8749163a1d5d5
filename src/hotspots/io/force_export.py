"""Read a force's own crime export (CSV) with a column mapping.

A :class:`ColumnMapping` names the export's columns for coordinates (British
National Grid or longitude/latitude), date, offence, id and location, and maps
offence types to police.uk categories.  Rows are accounted for exactly as for
police.uk files (:mod:`hotspots.io.accounting`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from hotspots._errors import InputFileError, ValidationError
from hotspots._validate import _Problems
from hotspots.io._files import Source, _decode, _read_bytes, _sha256
from hotspots.io._parse import _parse_csv_text, _validate_rows
from hotspots.io.accounting import Accounting, FileAccount, IngestResult
from hotspots.schema import POINT_COLUMNS

__all__ = ["ColumnMapping", "read_force_export"]


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
    """Read a force's own crime export (CSV) with a column mapping.

    Parameters
    ----------
    path : str or Path
        The CSV file (``.csv`` or ``.csv.gz``; UTF-8, or Windows-1252 as
        spreadsheets save it).
    mapping : ColumnMapping
        Which columns hold the coordinates, date, offence and (optionally)
        id and location, and how offences map to police.uk categories.
    force : str, default "export"
        Label written in the ``force`` column.
    first_month, last_month : str, optional
        Inclusive month range ``"YYYY-MM"``; rows outside are dropped and
        counted as ``outside_month_range``.

    Returns
    -------
    IngestResult
        ``points`` (columns :data:`hotspots.schema.POINT_COLUMNS` plus
        ``datetime``, the full timestamp as naive UK local time; x/y in
        EPSG:27700) and the row :class:`~hotspots.io.accounting.Accounting`.

    Raises
    ------
    ValidationError
        ``mapping.coords`` is neither ``"bng"`` nor ``"lonlat"``, or
        ``mapping.date_format`` cannot be used.
    InputFileError
        The file is missing or unreadable, or a mapped column is not in its header.

    Notes
    -----
    Dates without ``date_format`` are read as ISO 8601 first, then day first
    (``04/03/2025`` is 4 March), as English forces write them.  Rows without
    coordinates, outside the UK, with an unreadable date (``malformed_row``)
    or an unmapped offence are dropped and counted; notes in the accounting
    flag coordinates that look swapped or of the wrong kind for ``coords``.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "export.csv")
    ...     with open(path, "w") as f:
    ...         _ = f.write("ref,E,N,when,what\\n1,515000,205000,2025-03-04 22:15,Burglary\\n2,,,2025-03-05,Burglary\\n")
    ...     res = read_force_export(path, ColumnMapping(x="E", y="N", date="when", offence="what", id="ref"))
    >>> len(res.points), res.accounting.dropped_by_reason()
    (1, {'no_coordinates': 1})
    >>> res.points[["record_id", "month", "x", "y"]].to_dict("records")
    [{'record_id': '1', 'month': '2025-03', 'x': 515000.0, 'y': 205000.0}]
    """
    problems = _Problems("read_force_export")
    if mapping.coords not in ("bng", "lonlat"):
        problems.add(f"coords={mapping.coords!r} must be 'bng' (eastings/northings) or 'lonlat'",
                     "Fix the column mapping.")
    problems.raise_if_any()
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

