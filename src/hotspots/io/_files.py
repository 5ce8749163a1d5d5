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
import os
import re
import threading
import zipfile
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path

from hotspots._errors import InputFileError
from hotspots.io.accounting import FileAccount

log = logging.getLogger(__name__)

#: police.uk street file names; also the odd but unambiguous ``.CSV``, ``.csv.GZ`` and a browser's ``… (1).csv`` copy
STREET_FILE_RE = re.compile(r"(?:^|/)(\d{4}-\d{2})-([a-z0-9-]+)-street(?: ?\(\d+\))?\.csv(?:\.gz)?$", re.IGNORECASE)

_COPY_RE = re.compile(r" ?\(\d+\)\.csv", re.IGNORECASE)

#: Largest decompressed size of one input file (police.uk's largest force-month, the Met, is ~30 MB).
MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024


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
    return (m.group(1), m.group(2).lower()) if m else None


def _walk(folder: Path, skipped: list[dict[str, str]]) -> list[Path]:
    """Files under ``folder``, following symbolic links (each real folder once); unreadable ones named in ``skipped``."""
    files: list[Path] = []
    seen: set[str] = set()

    def on_error(exc: OSError) -> None:
        skipped.append({"path": str(exc.filename), "reason": f"folder cannot be read ({exc.strerror or exc})"})

    for dirpath, dirnames, filenames in os.walk(folder, onerror=on_error, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link back up the tree
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        for f in sorted(filenames, key=lambda name: (_COPY_RE.search(name) is not None, name)):  # "x (1).csv" after "x.csv"
            q = Path(dirpath) / f
            if q.is_file():
                files.append(q)
            elif q.is_symlink():
                skipped.append({"path": str(q), "reason": "broken symbolic link"})
    return files


def find_police_files(
    paths: Sequence[str | Path],
    *,
    forces: Sequence[str] | None = None,
    first_month: str | None = None,
    last_month: str | None = None,
    skipped: list[dict[str, str]] | None = None,
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
    skipped = skipped if skipped is not None else []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise InputFileError(f"input not found: {p}", hint="check the path, or run `hotspots info` to see the data home")
        candidates = [p] if p.is_file() else _walk(p, skipped)
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
                    elif not name.endswith("/"):
                        skipped.append({"path": f"{q}!{name}", "reason": _not_street_reason(name)})
            else:
                c = _classify(q.name)
                if c:
                    found.append(Source(q, None, force=c[1], month=c[0]))
                elif p.is_file():
                    # an explicitly named file that does not follow police.uk naming
                    found.append(Source(q, None))
                else:
                    skipped.append({"path": str(q), "reason": _not_street_reason(q.name)})
    out = []
    for s in found:
        if forces and s.force and s.force not in forces:
            skipped.append({"path": s.label, "reason": f"another force ({s.force})"})
            continue
        if s.month and ((first_month and s.month < first_month) or (last_month and s.month > last_month)):
            skipped.append({"path": s.label, "reason": f"month {s.month} outside {first_month or '...'}..{last_month or '...'}"})
            continue
        out.append(s)
    return out


def _not_street_reason(name: str) -> str:
    low = name.lower()
    for kind in ("outcomes", "stop-and-search"):
        if f"-{kind}." in low:
            return f"a police.uk {kind} file (only street-level files are read)"
    return "not a police.uk street-level file name (YYYY-MM-<force>-street.csv[.gz])"


# --------------------------------------------------------------------------- parsing
def _read_bytes(src: Source, limit: int | None = None) -> bytes:
    """The file's bytes, decompressed (streamed: never more than ``limit`` bytes, default
    :data:`MAX_DECOMPRESSED_BYTES`, are held, so a "zip bomb" stops with a clear error)."""
    limit = MAX_DECOMPRESSED_BYTES if limit is None else limit
    try:
        if src.member is not None:
            with zipfile.ZipFile(src.path) as zf:
                with zf.open(src.member) as fh:
                    head = fh.peek(2)[:2] if hasattr(fh, "peek") else b""
                    if src.member.lower().endswith(".gz") or head == b"\x1f\x8b":
                        with gzip.GzipFile(fileobj=fh) as gz:  # a zip may hold .csv.gz members
                            return _read_limited(gz, src, limit)
                    return _read_limited(fh, src, limit)
        with open(src.path, "rb") as fh:
            head = fh.read(2)
            fh.seek(0)
            if src.path.suffix.lower() == ".gz" or head == b"\x1f\x8b":
                data = _gunzip(fh.read(), limit) if head == b"\x1f\x8b" else None
                if data is not None:
                    return data
                fh.seek(0)
                with gzip.GzipFile(fileobj=fh) as gz:  # anything _gunzip leaves (and every error, worded as before)
                    return _read_limited(gz, src, limit)
            return _read_limited(fh, src, limit)
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


def _gunzip(raw: bytes, limit: int) -> bytes | None:
    """A one-member gzip file decompressed in one call (what ``GzipFile`` reads, CRC and length checked by zlib);
    None when it is not exactly that (more members, padding, damage, more than ``limit`` bytes): read it with ``GzipFile``."""
    d = zlib.decompressobj(31)
    try:
        data = d.decompress(raw, limit + 1)
    except zlib.error:
        return None
    if not d.eof or d.unused_data or d.unconsumed_tail or len(data) > limit:
        return None
    return data


def _read_limited(fh, src: Source, limit: int) -> bytes:
    chunks, total = [], 0
    while True:
        chunk = fh.read(min(1 << 22, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise InputFileError(
                f"{src.label}: larger than {limit / 2**20:,.0f} MiB when decompressed (police.uk's largest "
                "force-month is about 30 MiB); not read",
                hint="check that this is a police.uk street-level file; a real file this large can be split by month",
            )
    return b"".join(chunks)


def _decode(data: bytes, label: str, account: FileAccount) -> str:
    if data[:4] == b"PK\x03\x04" or data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise InputFileError(
            f"{label}: an Excel workbook (or another zipped document), not a CSV file",
            hint="open it in the spreadsheet program and save it as CSV (comma-separated, UTF-8)",
        )
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # a byte-order mark: unambiguous
        account.encoding = "utf-16"
        account.notes.append("UTF-16 text (byte-order mark); read as UTF-16")
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InputFileError(f"{label}: starts as UTF-16 text but is not valid UTF-16 ({exc.reason})",
                                 hint="save the file again as CSV (comma-separated, UTF-8)") from exc
    head = data[:4096]
    if len(head) >= 64 and head.count(0) >= len(head) // 4:  # every other byte NUL: UTF-16 without a byte-order mark
        encoding = "utf-16-le" if head[1::2].count(0) > head[0::2].count(0) else "utf-16-be"
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise InputFileError(f"{label}: looks like UTF-16 text without a byte-order mark, but is not valid "
                                 f"{encoding.upper()} ({exc.reason} at byte {exc.start})",
                                 hint="save the file again as CSV (comma-separated, UTF-8)") from exc
        account.encoding = encoding
        account.notes.append(f"UTF-16 text without a byte-order mark; read as {encoding.upper()}")
        return text
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # Spreadsheet round-trips save police.uk files as Windows-1252; decode
        # so no row is lost, and say so in the manifest.
        account.encoding = "cp1252"
        account.notes.append(f"not valid UTF-8 (first bad byte at offset {exc.start}); read as Windows-1252")
        log.warning("%s is not valid UTF-8; reading it as Windows-1252", label)
        return data.decode("cp1252", errors="replace")


def _header_cause(header: list[str]) -> str:
    """A likely reason a header lacks the expected columns, or ""."""
    joined = ",".join(header)
    if len(header) <= 2 and joined.count(";") >= 3:
        return "the columns are separated by semicolons (a spreadsheet saved in a European locale)"
    if len(header) <= 2 and joined.count("\t") >= 3:
        return "the columns are separated by tabs"
    if any("\x00" in h for h in header):
        return "the text holds NUL bytes (UTF-16 without a byte-order mark?)"
    return ""


def _needle_lines(body: bytes, needles: list[bytes]) -> set[int]:
    """Where each line of ``body`` (which ends with a newline) holding one of ``needles`` starts.

    Codes share a prefix (``E01``): one scan for the prefix, each place it
    occurs looked up among the needles, finds every occurrence of every needle
    (a search per needle reads the text once per needle).  Without a common
    prefix of two or more bytes, a search per needle.
    """
    starts: set[int] = set()
    prefix = os.path.commonprefix(needles)
    if len(prefix) >= 2:
        wanted = set(needles)
        lengths = sorted({len(n) for n in needles})
        for m in re.finditer(re.escape(prefix), body):
            at = m.start()
            if any(body[at:at + k] in wanted for k in lengths):
                starts.add(body.rfind(b"\n", 0, at) + 1)
        return starts
    for needle in needles:
        at = body.find(needle)
        while at >= 0:  # body ends with a newline: every line does
            starts.add(body.rfind(b"\n", 0, at) + 1)
            at = body.find(needle, body.find(b"\n", at) + 1)
    return starts


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path) -> str:
    """The sha256 of a file, read in 1 MiB blocks (the one file checksum of the toolkit)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()



def geojson_lines_with(path, needles: Sequence[str]) -> bytes | None:
    """A one-feature-per-line GeoJSON cut to the features whose line holds one of ``needles``, or None.

    GDAL parses a whole GeoJSON file even to keep a few features (the
    national LSOA file: 35,000 features for a force's 1,000).  GDAL writes a
    FeatureCollection with one feature per line, so a plain search for the
    wanted codes finds their lines; the text returned is the file's own header
    (name, CRS), those lines unchanged, and the closing brackets, for GDAL to
    parse as it would have parsed them in the whole file.  The caller still
    applies its exact filter to the result: a line may hold a needle in
    another field.

    None, for the caller to read the whole file, when the file is not a
    (gzipped) ``.geojson``, cannot be read, is laid out in any other way, or no
    line holds a needle (then the whole file decides what an empty result means).
    """
    name = str(path).lower()
    needles = [n.encode() for n in needles if n]
    if not needles or not (name.endswith(".geojson") or name.endswith(".geojson.gz")):
        return None
    pending = _PREREAD.pop(_preread_key(path), None)
    try:
        data = pending.result() if pending is not None else _geojson_bytes(path)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile):
        return None
    opening = b'"features": [\n'
    start = data.find(opening)
    end = data.rfind(b"\n]")
    if start < 0 or end < start or re.fullmatch(rb"\n\]\s*\}\s*", data[end:]) is None:
        return None
    start += len(opening)
    body = data[start:end + 1]
    if b"\r" in body:
        return None
    starts = _needle_lines(body, needles)
    lines = []
    for line_start in sorted(starts):
        line = body[line_start:body.index(b"\n", line_start)]
        if not line.startswith(b'{ "type": "Feature"'):
            return None  # not one feature per line
        lines.append(line[:-1] if line.endswith(b",") else line)
    if not lines:
        return None
    return data[:start] + b",\n".join(lines) + b"\n]\n}\n"


#: (path, mtime, size) -> the bytes of a GeoJSON file being read on a thread (:func:`preread_geojson`)
_PREREAD: dict[tuple, Future] = {}


def _preread_key(path) -> tuple:
    """The file as it is now (a file changed since it was read ahead is read again)."""
    try:
        st = os.stat(path)
    except OSError:
        return (str(path),)
    return str(path), st.st_mtime_ns, st.st_size, st.st_ino


def _geojson_bytes(path) -> bytes:
    return gzip.decompress(Path(path).read_bytes()) if str(path).lower().endswith(".gz") else Path(path).read_bytes()


def preread_geojson(path) -> Callable[[], None]:
    """Start reading (and decompressing) a GeoJSON file on a thread, for the next :func:`geojson_lines_with` of it.

    Decompression releases the GIL: the national LSOA file (24 MB) is read
    while the police.uk files are.  An error of the read is raised where
    :func:`geojson_lines_with` reads the file, as without the thread.  Returns
    a function that forgets the bytes if they were not taken.
    """
    key, pending = _preread_key(path), Future()
    if len(key) == 1:  # cannot be read: said where it is read
        return lambda: None

    def read() -> None:
        try:
            pending.set_result(_geojson_bytes(path))
        except BaseException as exc:  # noqa: BLE001 - handed to the reader
            pending.set_exception(exc)

    _PREREAD[key] = pending
    threading.Thread(target=read, name="hotspots-preread", daemon=True).start()
    return lambda: _PREREAD.pop(key, None) if _PREREAD.get(key) is pending else None
