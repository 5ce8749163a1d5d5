"""Row accounting: every input row is kept or counted under a named reason.

:class:`FileAccount` records what happened to the rows of one input file,
:class:`Accounting` collects them across files and proves
``kept + dropped == read`` (raising :class:`~hotspots._errors.AccountingError`
when it fails), and :class:`IngestResult` pairs the kept points with their
accounting.  The drop reasons are listed in :data:`hotspots.schema.DROP_REASONS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import pandas as pd

from hotspots._errors import AccountingError, InputFileError
from hotspots.schema import DROP_REASONS

__all__ = ["FileAccount", "Accounting", "IngestResult", "check_kept_share"]

#: drop reasons that mean "located outside the area asked for": most rows dropped for them is a wrong force area
_LOCATION_REASONS = ("outside_study_area", "lsoa_outside_force_area")


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
    #: crime-type values not recognised (counted as ``unknown_crime_type``), value -> rows
    unknown_crime_types: dict[str, int] = dataclasses.field(default_factory=dict)
    #: police.uk ``Falls within`` values of the file's rows, value -> rows
    falls_within: dict[str, int] = dataclasses.field(default_factory=dict)


class Accounting:
    """Row accounting across all input files.

    Rows are dropped in stages (parsing, validation, study-area clipping); each
    stage calls :meth:`drop` with the rows' file labels, and :meth:`check`
    proves ``kept + dropped == read`` for every file.

    Examples
    --------
    >>> acc = Accounting()
    >>> acc.add_file(FileAccount(path="a.csv", rows_read=3, kept=3))
    >>> acc.drop(["a.csv"], "no_coordinates")
    1
    >>> acc.kept, acc.dropped_by_reason()
    (2, {'no_coordinates': 1})
    >>> acc.check()   # 2 kept + 1 dropped == 3 read
    """

    def __init__(self) -> None:
        self.files: dict[str, FileAccount] = {}
        #: files and folders found under the inputs but not read: ``{"path", "reason"}``
        self.skipped: list[dict[str, str]] = []

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
            "skipped": list(self.skipped),
            "unknown_crime_types": self.unknown_crime_types(),
        }

    def unknown_crime_types(self) -> dict[str, int]:
        """Crime-type values counted as ``unknown_crime_type``, by value (most rows first)."""
        out: dict[str, int] = {}
        for f in self.files.values():
            for value, n in f.unknown_crime_types.items():
                out[value] = out.get(value, 0) + n
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

    def summary_lines(self) -> list[str]:
        lines = [f"rows read {self.rows_read:,} from {len(self.files)} file(s); kept {self.kept:,}"]
        for reason, n in self.dropped_by_reason().items():
            lines.append(f"  dropped {n:,}: {reason} ({DROP_REASONS[reason]})")
        unknown = self.unknown_crime_types()
        if unknown:
            shown = ", ".join(f"{v!r} ({n:,})" for v, n in list(unknown.items())[:10])
            lines.append(f"  unknown crime types: {shown}" + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""))
        for f in self.files.values():
            if f.dropped.get("duplicate_file"):
                lines.append(f"  not used: {f.path} ({'; '.join(f.notes[-1:])})")
        # files left out on purpose (another force, other months) are in the manifest; the rest are named here
        named = [s for s in self.skipped if not s["reason"].startswith(("another force", "month "))]
        if named:
            lines.append(f"  skipped {len(named)} file(s)/folder(s) under the inputs (all listed in manifest.json):")
            by_reason: dict[str, list[str]] = {}
            for s in named:
                by_reason.setdefault(s["reason"], []).append(s["path"])
            for reason, paths in by_reason.items():
                more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
                lines.append(f"    {reason}: {', '.join(paths[:3])}{more}")
        return lines


@dataclasses.dataclass
class IngestResult:
    """Points read from input files, with the accounting of every row read.

    Attributes
    ----------
    points : pandas.DataFrame
        Columns :data:`hotspots.schema.POINT_COLUMNS` (``x``/``y`` in EPSG:27700).
    accounting : Accounting
        What happened to each input row (kept, or dropped for a named reason).
    """

    points: pd.DataFrame
    accounting: Accounting


def check_kept_share(accounting: Accounting, *, error_below: float = 0.5, warn_below: float = 0.9) -> str | None:
    """Guard against a run that silently keeps a small part of what it read.

    Returns ``None`` when at least ``warn_below`` of the rows read are kept,
    else a warning naming the drop reasons (largest first).  Below
    ``error_below``, when most rows were dropped as located outside the study
    area (a force area code that is not the files' force), it raises
    :class:`~hotspots._errors.InputFileError` instead.

    Examples
    --------
    >>> acc = Accounting()
    >>> acc.add_file(FileAccount(path="a.csv", rows_read=100, kept=100))
    >>> _ = acc.drop(["a.csv"] * 20, "no_coordinates")
    >>> print(check_kept_share(acc))
    kept 80 of 100 rows read (80.0%); dropped 20 no_coordinates (no longitude/latitude (or easting/northing) in the record)
    >>> _ = acc.drop(["a.csv"] * 79, "outside_study_area")
    >>> check_kept_share(acc)
    Traceback (most recent call last):
    ...
    hotspots._errors.InputFileError: kept 1 of 100 rows read (1.0%); dropped 79 outside_study_area ...
    """
    read, kept = accounting.rows_read, accounting.kept
    if read == 0 or kept >= warn_below * read:
        return None
    dropped = accounting.dropped_by_reason()
    text = (f"kept {kept:,} of {read:,} rows read ({100 * kept / read:.1f}%); "
            + "; ".join(f"dropped {n:,} {r} ({DROP_REASONS[r]})" for r, n in dropped.items()))
    located = sum(dropped.get(r, 0) for r in _LOCATION_REASONS)
    if kept < error_below * read and located > (read - kept) / 2:
        raise InputFileError(text, hint="the records lie outside the force area of the config: check that "
                             "force_area_code is the area of the forces read (`hotspots init --force NAME` writes both)")
    return text
