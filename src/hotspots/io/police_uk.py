"""Read police.uk street-level files into points.

:func:`read_crimes` is the notebook verb (a GeoDataFrame of points);
:func:`read_police_uk` is what the pipeline uses (points plus the row
:class:`~hotspots.io.accounting.Accounting`).  Every input row is either kept
or counted under a named reason (see ``schema.DROP_REASONS``), and the
accounting proves ``kept + dropped == read``.

Points have the columns :data:`hotspots.schema.POINT_COLUMNS` with ``x``/``y``
in British National Grid (EPSG:27700): projected once, here.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hotspots._errors import InputFileError
from hotspots._text import slug
from hotspots.io._files import _decode, _header_cause, _read_bytes, _sha256, find_police_files
from hotspots.io._parse import _finish, _parse_ahead, _parse_csv_text, _validate_rows
from hotspots.io.accounting import Accounting, FileAccount, IngestResult
from hotspots.schema import BNG, POINT_COLUMNS, POLICE_UK_CRIME_TYPES, POLICE_UK_STREET_HEADER

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["read_crimes", "read_police_uk", "check_force_area", "POLICE_UK_COLUMNS"]

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
    When two sources hold the same force-month (say ``….csv`` beside
    ``….csv.gz``, or the same month inside a zip archive) and hold the same
    rows, the first in sorted order is used and the other's rows are counted
    as ``duplicate_file`` (and the file is named in the summary).  Two
    different files for one force-month are an error naming both: which one
    is right cannot be told from the data.  A file whose ``Falls within``
    column names another force than its file name is an error too.

    See Also
    --------
    read_crimes : the notebook verb, the same points as a GeoDataFrame.

    Examples
    --------
    Made-up files in the police.uk layout (:func:`hotspots.datasets.write_police_uk_sample`),
    one record saved twice:

    >>> import tempfile
    >>> from hotspots.datasets import synthetic_points, write_police_uk_sample
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_police_uk_sample(folder, synthetic_points(n=10, cluster=0, months=("2025-01",)))[0]
    ...     record = path.read_text().splitlines()[2]          # a crime (ASB has no Crime ID)
    ...     with path.open("a") as f:
    ...         _ = f.write(record + "\\n")
    ...     result = read_police_uk(folder)
    >>> len(result.points), sorted(result.points["force"].unique())
    (10, ['examplefolk'])
    >>> result.accounting.summary_lines()[0], result.accounting.dropped_by_reason()
    ('rows read 11 from 1 file(s); kept 10', {'duplicate_crime_id': 1})
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    skipped: list[dict[str, str]] = []
    sources = find_police_files(paths, forces=forces, first_month=first_month, last_month=last_month, skipped=skipped)
    if not sources:
        raise InputFileError(
            f"no police.uk street-level files found under {', '.join(map(str, paths))}"
            + (f" for force(s) {', '.join(forces)}" if forces else "")
            + (f" between {first_month} and {last_month}" if first_month or last_month else ""),
            hint="files must be named YYYY-MM-<force>-street.csv[.gz] (as police.uk publishes them); "
            "run `hotspots info` to see what the data home holds",
        )
    accounting = Accounting()
    accounting.skipped = skipped
    frames = []
    seen: dict[tuple[str, str], tuple[str, str, int, dict]] = {}
    for i, (src, loaded) in enumerate(_read_ahead(sources)):
        if progress:
            progress(i, len(sources), src.label)
        data, sha256, parsed = loaded()
        account = FileAccount(path=src.label, force=src.force, month=src.month, sha256=sha256, bytes=len(data))
        accounting.add_file(account)
        text = _decode(data, src.label, account)
        # decoded as UTF-8: the text's UTF-8 bytes are the file's (less a byte-order mark), not encoded again
        utf8 = (data[3:] if data[:3] == b"\xef\xbb\xbf" else data) if account.encoding == "utf-8" else None
        del data
        header, cols, rownums = _parse_csv_text(text, src.label, account, utf8, parsed)
        del utf8, parsed
        missing = [c for c in REQUIRED_POLICE_UK if c not in header]
        if missing:
            cause = _header_cause(header)
            shown = ", ".join(header[:14]) if sum(map(len, header[:14])) < 300 else ",".join(header)[:200] + "..."
            raise InputFileError(
                f"{src.label}: " + (f"{cause}; " if cause else "") + f"header lacks column(s) {missing}; found [{shown}]",
                hint="police.uk street files start with: " + ",".join(POLICE_UK_STREET_HEADER)
                + ". For other layouts use `read_force_export` with a column mapping",
            )
        n = len(rownums)
        account.rows_read += n
        account.kept += n
        key = (src.force, src.month)
        if src.month:
            _check_falls_within(src.label, src.force, cols.get("Falls within"))
        if cols.get("Falls within") is not None and n:
            account.falls_within = _falls_within_counts(cols["Falls within"])
        if src.month and key in seen:
            first_label, first_sha, first_n, first_cols = seen[key]
            if account.sha256 != first_sha and not _same_rows(first_cols, cols):
                raise InputFileError(
                    f"two different files for {src.force} {src.month}: {first_label} ({first_n:,} rows) and "
                    f"{src.label} ({n:,} rows); they are not the same data, so the month would depend on which is read",
                    hint="keep the right one (usually the newer, larger download) and move the other out of the data home",
                )
            account.notes.append(f"the same data as {first_label}")
            account.dropped["duplicate_file"] = account.dropped.get("duplicate_file", 0) + n
            account.kept -= n
            continue
        if src.month:
            seen[key] = (src.label, account.sha256, n, cols)
        def column(name):  # a blank column only where the file lacks one
            return cols[name] if name in cols else np.full(n, "", object)

        frame = pd.DataFrame(
            {
                "record_id": column("Crime ID"),
                "month": cols["Month"],
                "_a": cols["Longitude"],
                "_b": cols["Latitude"],
                "location": column("Location"),
                "lsoa_code": column("LSOA code"),
                "crime_type": cols["Crime type"],
                "outcome": column("Last outcome category"),
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


def _read_and_hash(src) -> tuple[bytes, str, tuple | None]:
    """The file's bytes, their sha256 and Arrow's parse of them (:func:`~hotspots.io._parse._parse_ahead`)."""
    data = _read_bytes(src)
    try:
        parsed = _parse_ahead(data)
    except Exception:  # noqa: BLE001 - the file is parsed again where it is handled, and fails there as before
        parsed = None
    return data, _sha256(data), parsed


def _read_ahead(sources: Sequence) -> Iterator[tuple[Any, Callable[[], tuple[bytes, str, tuple | None]]]]:
    """Each source with a function giving its bytes, their sha256 and their parse, the next file read on a thread meanwhile.

    Decompression, hashing and Arrow's parse release the GIL, so on two or
    more CPUs the next file is read while this one is handled.  A read's error is raised by the
    function, where the loop reads that file: in the order, and with the
    message, of reading one file after another.  One file ahead at most.
    """
    if len(sources) < 2:
        for src in sources:
            yield src, functools.partial(_read_and_hash, src)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hotspots-read") as pool:
        ahead = pool.submit(_read_and_hash, sources[0])
        for i, src in enumerate(sources):
            now = ahead
            # the next read starts once this one is done (one file's bytes waiting at most)
            ahead = pool.submit(_read_and_hash, sources[i + 1]) if i + 1 < len(sources) else None
            yield src, now.result
            if ahead is None:
                return


def _falls_within_counts(values) -> dict[str, int]:
    """Rows per ``Falls within`` value, ``{str(v).strip(): rows}`` in the sorted order of ``str(v)``.

    What ``np.unique(np.asarray(values, dtype=object).astype(str), return_counts=True)``
    counts, without a Python string per row: each distinct value is
    converted once (distinct values with the same ``str`` are added together).
    """
    codes, uniques = pd.factorize(values)
    texts = np.asarray(uniques, dtype=object).astype(str)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    if (codes < 0).any():  # missing values (None reads "None", NaN "nan"): each row's own text
        texts = np.concatenate([texts, np.asarray(values, dtype=object)[codes < 0].astype(str)])
        counts = np.concatenate([counts, np.ones(int((codes < 0).sum()), dtype=counts.dtype)])
    labels, inverse = np.unique(texts, return_inverse=True)
    totals = np.zeros(len(labels), dtype=np.int64)
    np.add.at(totals, inverse.ravel(), counts)
    return {str(v).strip(): int(c) for v, c in zip(labels, totals)}


def _same_rows(a: dict, b: dict) -> bool:
    """Whether two parsed files hold the same rows (same columns and values; line endings and order of columns aside)."""
    if set(a) != set(b):
        return False
    return all(len(a[c]) == len(b[c]) and np.array_equal(np.asarray(a[c], dtype=object), np.asarray(b[c], dtype=object))
               for c in a)


def _check_falls_within(label: str, force: str, values) -> None:
    """Refuse a file whose ``Falls within`` names another force than its file name (rows saved under the wrong name)."""
    if values is None or len(values) == 0 or not force:
        return
    # (on Arrow strings as they are: an object array first makes a Python string per row)
    distinct = pd.unique(values) if isinstance(values, pd.api.extensions.ExtensionArray) else pd.unique(np.asarray(values, dtype=object))
    wrong = []
    for value in distinct:
        text = str(value).strip()
        if not text:
            continue
        fw = slug(text.lower().replace(" constabulary", "").replace(" police", ""), empty="")
        # loose on purpose ("Herts", "Metropolitan Police Service"): it catches another force's rows, not spellings
        if not fw or force in fw or fw in force or len(os.path.commonprefix([fw, force])) >= 4 \
                or (force == "btp" and "british-transport" in fw):
            continue
        wrong.append(text)
    if wrong:
        n_wrong = int(np.isin(np.asarray(values, dtype=object), np.asarray(wrong, dtype=object)).sum())
        raise InputFileError(
            f"{label}: the file name says force {force!r} but {n_wrong:,} of its {len(values):,} rows fall within "
            + ", ".join(repr(w) for w in wrong[:3]),
            hint="the rows of another force were saved under this name; download the month again from data.police.uk",
        )


def check_force_area(accounting: Accounting, force_area_codes: Sequence[str]) -> None:
    """Refuse records whose police.uk ``Falls within`` force is not one of the configured force areas.

    A force area code left from another force's configuration would clip the
    records to the wrong area and keep almost none of them; this names the
    force the files are from and its code.  Values that are not one of the 43
    forces of England and Wales (a force export, British Transport Police) are
    not judged.

    Raises
    ------
    ConfigError
        Rows fall within a force whose area is not in ``force_area_codes``.

    Examples
    --------
    >>> acc = Accounting()
    >>> acc.add_file(FileAccount(path="a.csv", rows_read=3, kept=3, falls_within={"Kent Police": 3}))
    >>> check_force_area(acc, ["E23000032"])
    >>> check_force_area(acc, ["E23000027"])
    Traceback (most recent call last):
    ...
    hotspots._errors.ConfigError: the police.uk files' rows fall within Kent Police (3 rows, force area E23000032), ...
    """
    from hotspots._errors import ConfigError
    from hotspots.io.forces import force_for_code, force_for_falls_within

    rows: dict[str, int] = {}
    for f in accounting.files.values():
        for value, n in f.falls_within.items():
            rows[value] = rows.get(value, 0) + n
    wrong = {}
    for value, n in rows.items():
        force = force_for_falls_within(value)
        if force is not None and force.pfa_code not in force_area_codes:
            wrong[force] = wrong.get(force, 0) + n
    if not wrong:
        return
    configured = ", ".join(f"{c} ({f.pfa_name})" if (f := force_for_code(c)) else c for c in force_area_codes)
    forces = sorted(wrong, key=lambda f: -wrong[f])
    raise ConfigError(
        "the police.uk files' rows fall within "
        + ", ".join(f"{f.falls_within} ({wrong[f]:,} rows, force area {f.pfa_code})" for f in forces)
        + f", but force_area_code is {configured or 'empty'}: the records would be clipped to another force's area",
        hint="set force_area_code = " + (f'"{forces[0].pfa_code}"' if len(forces) == 1 and len(force_area_codes) <= 1
                                         else str(sorted({*force_area_codes, *(f.pfa_code for f in forces)})))
        + " in the config, or run `hotspots init --force " + forces[0].police_uk_force + "`",
    )


def _force_from_falls_within(values, n):
    """Force slug from a file's ``Falls within`` column ("Hertfordshire Constabulary" -> "hertfordshire")."""
    if values is None or n == 0:
        return ""
    first = str(values[0]).strip().lower()
    return slug(first.replace(" constabulary", "").replace(" police", ""), empty="")


def read_crimes(
    paths: Sequence[str | Path] | str | Path,
    *,
    forces: Sequence[str] | None = None,
    first_month: str | None = None,
    last_month: str | None = None,
) -> gpd.GeoDataFrame:
    """Read police.uk street-level crime files into a GeoDataFrame of points.

    The notebook way in: give it the files, folders or zip archives you
    downloaded from data.police.uk and get one row per crime, in British
    National Grid, ready for :func:`hotspots.count_in_areas` or
    :func:`hotspots.find_hotspots`.

    Parameters
    ----------
    paths : str, Path or list of them
        Files (``YYYY-MM-<force>-street.csv`` or ``.csv.gz``), folders
        (searched recursively) or ``.zip`` archives as police.uk hands them out.
    forces : list of str, optional
        Force slugs to keep, e.g. ``["hertfordshire"]``; ``None`` keeps all.
    first_month, last_month : str, optional
        Inclusive month range ``"YYYY-MM"``.  Files outside it are not read;
        rows inside a file whose ``Month`` falls outside are dropped and counted.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`hotspots.schema.POINT_COLUMNS` (``record_id``,
        ``month``, ``crime_type``, ``x``, ``y``, ...) plus point ``geometry``
        built from ``x``/``y``, in EPSG:27700.  ``attrs["accounting"]`` holds
        the row accounting (:meth:`Accounting.to_dict` plus ``rows_dropped``):
        ``rows_read``, ``kept``, ``rows_dropped``, ``dropped`` (by reason),
        ``balanced`` and ``files`` (per file).

    Raises
    ------
    InputFileError
        No police.uk street files under ``paths``, or a file that cannot be
        read (truncated archive, missing columns, ...).

    See Also
    --------
    read_police_uk : the same rows as a DataFrame with the :class:`Accounting` object.
    hotspots.io.read_force_export : a force's own export, with a column mapping.

    Notes
    -----
    Only rows of the 14 police.uk crime categories are kept (anti-social
    behaviour included); rows without coordinates, outside the UK, outside
    the month range or repeating a Crime ID are dropped and counted under
    their reason (:data:`hotspots.schema.DROP_REASONS`).  police.uk snaps
    each crime to one of about 750,000 anonymised map points, so coordinates
    are approximate.

    Examples
    --------
    >>> import tempfile
    >>> from hotspots.datasets import synthetic_points, write_police_uk_sample
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = write_police_uk_sample(folder, synthetic_points(n=8, cluster=0, months=("2025-01",)))
    ...     crimes = read_crimes(folder)
    >>> len(crimes), crimes.crs.to_epsg(), crimes["crime_type"].iloc[:2].tolist()
    (8, 27700, ['Anti-social behaviour', 'Violence and sexual offences'])
    >>> accounting = crimes.attrs["accounting"]
    >>> accounting["rows_read"], accounting["rows_dropped"]
    (8, 0)
    """
    import geopandas as gpd  # here, not at import: the pipeline reads points without it

    result = read_police_uk(paths, forces=forces, first_month=first_month, last_month=last_month)
    points = result.points
    gdf = gpd.GeoDataFrame(points, geometry=gpd.points_from_xy(points["x"], points["y"]), crs=BNG)
    accounting = result.accounting.to_dict()
    summary = {"rows_read": accounting.pop("rows_read"), "kept": accounting.pop("kept"),
               "rows_dropped": result.accounting.rows_read - result.accounting.kept}
    gdf.attrs["accounting"] = {**summary, **accounting}
    return gdf
