"""Finding police.uk files and reading their bytes (private helpers of :mod:`hotspots.io`).

Inputs are files, folders (searched recursively) and ``.zip`` archives; a
file may be gzipped, and a file that is not valid UTF-8 is read as
Windows-1252 (and the manifest says so).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import logging
import re
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

from hotspots._errors import InputFileError
from hotspots.io.accounting import FileAccount

log = logging.getLogger(__name__)

STREET_FILE_RE = re.compile(r"(?:^|/)(\d{4}-\d{2})-([a-z0-9-]+)-street\.csv(?:\.gz)?$")


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

    Parameters
    ----------
    paths : list of str or Path
        Files, folders (searched recursively) and zip archives.  A file named
        explicitly is an input even when its name does not follow police.uk's.
    forces : list of str, optional
        Force slugs to keep; ``None`` keeps all.
    first_month, last_month : str, optional
        Inclusive month range ``"YYYY-MM"`` of the files to keep.

    Returns
    -------
    list of Source
        In the order found (folders and archive members sorted by name).

    Raises
    ------
    InputFileError
        A path does not exist, or a zip archive cannot be read.
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


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

