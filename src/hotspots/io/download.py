"""Build a complete data home from the official sources: police.uk, ONS Open Geography, Nomis.

The only module that touches the network.  ``hotspots download`` (:func:`download_all`) writes
every file :data:`hotspots.geo.boundaries.DATA_FILES` looks for first, with the column names
the data home uses:

* police.uk street files of the chosen forces, from the monthly archive (resumed with
  HTTP ``Range`` after an interruption; ``--from-zip`` uses one already downloaded);
* district and LSOA 2021 boundaries and the three ONS lookups, from the ONS ArcGIS
  feature services, **paged**: an ArcGIS service returns at most its record limit
  (often 2,000) per request and says ``exceededTransferLimit``; pages are requested with
  ``resultOffset`` until it stops, and the total is checked against the service's own
  count (``returnCountOnly``), so a partial file is an error, never a silent gap;
* Census 2021 usual residents by LSOA 2021 (TS001) from the Nomis API, paged with
  ``recordoffset``.

Every reply is validated: an ArcGIS error reply (``{"error": ...}``, sent with HTTP 200),
a missing field or a reply that is not JSON/CSV stops that file with a message, never a
saved file.  Files are written atomically; ``SHA256SUMS`` in the data home lists each with
its checksum and ``download_manifest.json`` its source URL and record count.  A file whose
checksum still matches is not fetched again (``refresh=True`` forces it).  When an ONS or
Nomis file cannot be fetched (a moved service, no internet), the exact manual step (the
product, the columns to keep and rename, the path) is printed and the command exits
non-zero with the data home otherwise complete.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import difflib
import gzip
import io
import json
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from hotspots._errors import ConfigError, DataNotFoundError, InputFileError
from hotspots.io._files import sha256_file

POLICE_BASE = "https://data.police.uk/data/archive"
ONS_BASE = "https://services1.arcgis.com/ESMARspQHYMw9BZ9/arcgis/rest/services"
NOMIS_BASE = "https://www.nomisweb.co.uk/api/v01/dataset"
PORTAL = "https://geoportal.statistics.gov.uk"

#: police.uk force slugs (the folder names of the archive's street files)
POLICE_FORCES = (
    "avon-and-somerset", "bedfordshire", "btp", "cambridgeshire", "cheshire", "city-of-london", "cleveland", "cumbria",
    "derbyshire", "devon-and-cornwall", "dorset", "durham", "dyfed-powys", "essex", "gloucestershire",
    "greater-manchester", "gwent", "hampshire", "hertfordshire", "humberside", "kent", "lancashire", "leicestershire",
    "lincolnshire", "merseyside", "metropolitan", "norfolk", "north-wales", "north-yorkshire", "northamptonshire",
    "northern-ireland", "northumbria", "nottinghamshire", "south-wales", "south-yorkshire", "staffordshire", "suffolk",
    "surrey", "sussex", "thames-valley", "warwickshire", "west-mercia", "west-midlands", "west-yorkshire", "wiltshire",
)


@dataclasses.dataclass(frozen=True)
class Product:
    """One data-home file from an ONS / Nomis service."""

    path: str  #: where it goes in the data home
    kind: str  #: "boundary" (ArcGIS, GeoJSON in WGS84), "table" (ArcGIS table -> CSV) or "nomis" (CSV)
    service: str  #: ArcGIS service name, or the Nomis dataset query
    fields: dict[str, str]  #: source field -> data-home column (the columns kept, in this order)
    key: str  #: the source field that identifies a record (non-empty, unique in boundaries)
    title: str  #: the product's name on the ONS portal / Nomis, for the manual step


PRODUCTS: tuple[Product, ...] = (
    Product("boundaries/lad_bgc.geojson", "boundary", "Local_Authority_Districts_May_2024_Boundaries_UK_BGC",
            {"LAD24CD": "LAD24CD", "LAD24NM": "LAD24NM"}, "LAD24CD",
            "Local Authority Districts (May 2024) Boundaries UK BGC"),
    Product("boundaries/lsoa21_bsc.geojson", "boundary", "Lower_layer_Super_Output_Areas_December_2021_Boundaries_EW_BSC_V4",
            {"LSOA21CD": "lsoa21_code", "LSOA21NM": "lsoa21_name"}, "LSOA21CD",
            "Lower layer Super Output Areas (December 2021) Boundaries EW BSC (V4)"),
    Product("lookups/lookup_lsoa11_lsoa21_ltla22_ew.csv.gz", "table", "LSOA11_LSOA21_LAD22_EW_LU",
            {"LSOA11NM": "lsoa11_name", "LSOA11CD": "lsoa11_code", "CHGIND": "change_code", "LSOA21NM": "lsoa21_name",
             "LSOA21CD": "lsoa21_code", "LAD22NM": "ltla22_name", "LAD22CD": "ltla22_code"}, "LSOA11CD",
            "LSOA (2011) to LSOA (2021) to Local Authority District (2022) Exact Fit Lookup for EW (V3)"),
    Product("lookups/lookup_lsoa21_ward24_ltla24_ew.csv.gz", "table", "LSOA21_WD24_LAD24_EW_LU",
            {"LSOA21NM": "lsoa21_name", "LSOA21CD": "lsoa21_code", "WD24NM": "ward24_name", "WD24CD": "ward24_code",
             "LAD24NM": "ltla24_name", "LAD24CD": "ltla24_code"}, "LSOA21CD",
            "LSOA (2021) to Electoral Ward (2024) to LAD (2024) Best Fit Lookup in EW"),
    Product("lookups/lookup_ltla24_csp24_pfa24_ew.csv", "table", "LAD24_CSP24_PFA24_EW_LU",
            {"LAD24CD": "ltla24_code", "LAD24NM": "ltla24_name", "CSP24CD": "csp24_code", "CSP24NM": "csp24_name",
             "PFA24CD": "pfa24_code", "PFA24NM": "pfa24_name"}, "LAD24CD",
            "Local Authority District to Community Safety Partnership to Police Force Area (December 2024) Lookup in EW"),
    Product("population/census2021_usual_residents_lsoa21_ew.csv.gz", "nomis",
            "NM_2021_1.data.csv?date=latest&geography=TYPE151&c2021_restype_3=0&measures=20100"
            "&select=geography_code,obs_value",
            {"GEOGRAPHY_CODE": "lsoa21_code", "OBS_VALUE": "census2021_usual_residents"}, "GEOGRAPHY_CODE",
            "Census 2021 TS001 Number of usual residents in households and communal establishments, by LSOA 2021 (Nomis)"),
)

#: records asked for per ArcGIS request (services cap it at their own limit; paging copes with either)
#: OS Open Roads for Great Britain as a zipped GeoPackage (OGL v3): the optional road layer of the maps
ROADS_URL = "https://api.os.uk/downloads/v1/products/OpenRoads/downloads?area=GB&format=GeoPackage&redirect"
PAGE_SIZE = 2000
_MEMBER_RE = re.compile(r"(?:^|/)(\d{4}-\d{2})-([a-z0-9-]+)-street\.csv$")
_USER_AGENT = "hotspots-police (https://pypi.org/project/hotspots-police/)"


class SourceError(InputFileError):
    """A source answered with an error or with something that is not the file asked for."""


# --------------------------------------------------------------------------- HTTP
def http_get(url: str, *, timeout: float = 120.0, retries: int = 3, backoff_s: float = 1.0,
             headers: dict[str, str] | None = None) -> bytes:
    """GET ``url`` and return the body; network errors and HTTP 5xx/429 are retried, other HTTP errors are not."""
    last: Exception | None = None
    for attempt in range(retries):
        try:
            req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT, **(headers or {})})
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            last = exc
            if exc.code < 500 and exc.code != 429:
                break
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            last = exc
        if attempt + 1 < retries:
            time.sleep(backoff_s * 2 ** attempt)
    raise SourceError(f"{_short(url)}: {_reason(last)}", hint="check the internet connection (or the proxy) and try again")


def _reason(exc: Exception | None) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect ({exc.reason})"
    return str(exc)


def _short(url: str) -> str:
    return url if len(url) < 160 else url[:157] + "..."


def fetch_resumable(url: str, dest: Path, *, echo: Callable[[str], None] = print, timeout: float = 120.0,
                    chunk: int = 1 << 20) -> Path:
    """Download a large file to ``dest``, resuming a ``dest.part`` left by an interrupted run (HTTP ``Range``).

    Progress is printed every 10%.  The ``.part`` file is renamed only when the download is complete.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT, **({"Range": f"bytes={have}-"} if have else {})}
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch: the part is the whole file
            part.replace(dest)
            return dest
        raise SourceError(f"{_short(url)}: {_reason(exc)}", hint="check the archive month (YYYY-MM) and try again") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise SourceError(f"{_short(url)}: {_reason(exc)}",
                          hint="check the internet connection and run the same command again: it resumes") from exc
    with resp:
        resumed = have and resp.status == 206
        if have and not resumed:
            have = 0  # the server ignored the range: start again
        total = resp.length + have if resp.length is not None else None
        echo(f"  {'resuming at ' + _mb(have) + ' of ' if resumed else ''}{_mb(total) if total else 'unknown size'}: {_short(url)}")
        done, shown = have, -1
        with open(part, "ab" if resumed else "wb") as fh:
            while True:
                block = resp.read(chunk)
                if not block:
                    break
                fh.write(block)
                done += len(block)
                if total:
                    tenth = int(10 * done / total)
                    if tenth != shown:
                        shown = tenth
                        echo(f"  {10 * tenth}% ({_mb(done)})")
    if total is not None and done < total:
        raise SourceError(f"{_short(url)}: the connection closed after {_mb(done)} of {_mb(total)}",
                          hint="run the same command again: the download resumes where it stopped")
    part.replace(dest)
    return dest


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:,.1f} MB"


# --------------------------------------------------------------------------- ArcGIS and Nomis
def _arcgis_json(url: str, what: str) -> dict:
    body = http_get(url)
    try:
        reply = json.loads(body)
    except ValueError:
        raise SourceError(f"{what}: the service did not answer with JSON ({body[:80]!r}...)",
                          hint="the service may be down or moved; see the manual step below") from None
    if isinstance(reply, dict) and "error" in reply:
        err = reply["error"] or {}
        raise SourceError(f"{what}: the ArcGIS service answered with error {err.get('code', '?')}: "
                          f"{err.get('message', '')} {' '.join(map(str, err.get('details') or []))}".rstrip(),
                          hint="the service may have moved or changed; see the manual step below")
    if not isinstance(reply, dict):
        raise SourceError(f"{what}: unexpected reply from the service", hint="see the manual step below")
    return reply


def arcgis_records(base: str, product: Product, *, page_size: int = PAGE_SIZE,
                   echo: Callable[[str], None] = print) -> list[dict]:
    """Every record of an ArcGIS feature service layer, paged, checked against the service's count.

    Returns GeoJSON features (``kind="boundary"``, WGS84) or attribute dicts (``kind="table"``).
    """
    url = f"{base.rstrip('/')}/{product.service}/FeatureServer/0/query"
    fields = ",".join(product.fields)
    count = _arcgis_json(f"{url}?where=1%3D1&returnCountOnly=true&f=json", product.service).get("count")
    if not isinstance(count, int):
        raise SourceError(f"{product.service}: the service did not report its record count", hint="see the manual step below")
    records: list[dict] = []
    while True:
        params = {"where": "1=1", "outFields": fields, "resultOffset": len(records), "resultRecordCount": page_size}
        params.update({"outSR": 4326, "f": "geojson"} if product.kind == "boundary" else {"returnGeometry": "false", "f": "json"})
        page = _arcgis_json(f"{url}?{urllib.parse.urlencode(params)}", product.service)
        features = page.get("features")
        if not isinstance(features, list):
            raise SourceError(f"{product.service}: the reply has no features", hint="see the manual step below")
        for feat in features:
            props = feat.get("properties") if product.kind == "boundary" else feat.get("attributes")
            missing = [f for f in product.fields if not isinstance(props, dict) or f not in props]
            if missing:
                raise SourceError(f"{product.service}: the service has no field(s) {missing} (fields changed?)",
                                  hint="see the manual step below")
            if product.kind == "boundary" and not feat.get("geometry"):
                raise SourceError(f"{product.service}: a feature without geometry ({props.get(product.key)})",
                                  hint="see the manual step below")
            records.append(feat)
        exceeded = page.get("exceededTransferLimit") or (page.get("properties") or {}).get("exceededTransferLimit")
        if count > page_size or exceeded:
            echo(f"  {product.service}: {len(records):,} of {count:,} records")
        if not exceeded:
            break
        if not features:
            raise SourceError(f"{product.service}: the service reports more records but sent none",
                              hint="try again later; see the manual step below")
    if len(records) != count:
        raise SourceError(f"{product.service}: {len(records):,} records received but the service holds {count:,}",
                          hint="try again; a partial file is never saved")
    return records


def nomis_rows(base: str, product: Product, *, echo: Callable[[str], None] = print) -> list[dict]:
    """Every row of a Nomis CSV query, paged with ``recordoffset`` until a page comes back empty."""
    rows: list[dict] = []
    while True:
        body = http_get(f"{base.rstrip('/')}/{product.service}&recordoffset={len(rows)}")
        text = body.decode("utf-8-sig", errors="replace")
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or not set(product.fields) <= set(reader.fieldnames):
            raise SourceError(f"Nomis {product.service.split('.')[0]}: the reply is not the expected CSV "
                              f"(columns {reader.fieldnames})", hint="see the manual step below")
        page = list(reader)
        if not page:
            break
        rows += page
        echo(f"  Nomis: {len(rows):,} rows")
    if not rows:
        raise SourceError("Nomis: no rows", hint="see the manual step below")
    return rows


# --------------------------------------------------------------------------- writing
def _atomic_write(dest: Path, data: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    part.write_bytes(data)
    part.replace(dest)


def _encode(product: Product, records: list[dict]) -> tuple[bytes, int]:
    """The data-home file's bytes: GeoJSON with renamed properties, or CSV (gzip for ``.gz``)."""
    if product.kind == "boundary":
        seen: set = set()
        feats = []
        for f in records:
            props = {new: f["properties"][old] for old, new in product.fields.items()}
            code = f["properties"][product.key]
            if not code or code in seen:
                raise SourceError(f"{product.service}: {'an empty' if not code else 'a repeated'} {product.key} "
                                  f"({code!r}); paging went wrong", hint="try again")
            seen.add(code)
            feats.append({"type": "Feature", "properties": props, "geometry": f["geometry"]})
        data = json.dumps({"type": "FeatureCollection", "features": feats}, separators=(",", ":")).encode()
        return data, len(feats)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(product.fields.values())
    for r in records:
        attrs = r.get("attributes", r)
        if not str(attrs.get(product.key) or "").strip():
            raise SourceError(f"{product.path}: a row without {product.key}", hint="see the manual step below")
        w.writerow(["" if attrs.get(k) is None else attrs.get(k) for k in product.fields])
    data = buf.getvalue().encode()
    return (gzip.compress(data, mtime=0) if product.path.endswith(".gz") else data), len(records)


def manual_step(product: Product, data_dir: Path) -> str:
    """The exact manual step for a file that could not be fetched."""
    where = "Nomis (https://www.nomisweb.co.uk, dataset TS001, geography LSOA 2021)" if product.kind == "nomis" else \
        f"the ONS Open Geography Portal ({PORTAL}, search the title; {'GeoJSON' if product.kind == 'boundary' else 'CSV'})"
    cols = ", ".join(f"{a} -> {b}" for a, b in product.fields.items() if a != b) or ", ".join(product.fields)
    return (f'download "{product.title}" from {where}; keep the columns {", ".join(product.fields)} '
            f"(renamed {cols}); save it as {data_dir / product.path}"
            + (" (gzip-compressed)" if product.path.endswith(".gz") else ""))


class _Ledger:
    """``SHA256SUMS`` and ``download_manifest.json`` in the data home."""

    def __init__(self, data_dir: Path):
        self.dir = data_dir
        self.sums: dict[str, str] = {}
        sums = data_dir / "SHA256SUMS"
        if sums.is_file():
            for line in sums.read_text(encoding="utf-8").splitlines():
                digest, _, rel = line.partition("  ")
                if rel:
                    self.sums[rel] = digest
        path = data_dir / "download_manifest.json"
        self.manifest = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"files": {}}

    def complete(self, rel: str) -> bool:
        p = self.dir / rel
        return p.is_file() and self.sums.get(rel) == sha256_file(p)

    def add(self, rel: str, source: str, records: int | None = None) -> None:
        self.sums[rel] = sha256_file(self.dir / rel)
        self.manifest["files"][rel] = {"source": source, "records": records, "sha256": self.sums[rel],
                                       "retrieved": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}

    def save(self) -> None:
        lines = "".join(f"{d}  {rel}\n" for rel, d in sorted(self.sums.items()))
        _atomic_write(self.dir / "SHA256SUMS", lines.encode())
        _atomic_write(self.dir / "download_manifest.json", (json.dumps(self.manifest, indent=2, sort_keys=True) + "\n").encode())


# --------------------------------------------------------------------------- police.uk
def check_forces(forces: list[str]) -> list[str]:
    """The forces, each a known police.uk slug; otherwise a ConfigError listing the known ones.

    >>> check_forces(["hertfordshire"])
    ['hertfordshire']
    """
    bad = [f for f in forces if f not in POLICE_FORCES]
    if bad:
        near = {f: difflib.get_close_matches(f, POLICE_FORCES, n=1) for f in bad}
        said = ", ".join(f"{f!r}" + (f" (did you mean {near[f][0]!r}?)" if near[f] else "") for f in bad)
        raise ConfigError(f"unknown police.uk force(s): {said}",
                          hint="known forces: " + ", ".join(POLICE_FORCES))
    if not forces:
        raise ConfigError("no force given", hint="pass --force SLUG, e.g. --force hertfordshire")
    return list(forces)


def extract_police_archive(archive: Path, data_dir: Path, *, forces: list[str], months: list[str] | None = None) -> list[Path]:
    """Copy the street files of ``forces`` from a police.uk archive into the data home, gzipped.

    Writes ``police_uk/<force>/street/YYYY-MM-<force>-street.csv.gz``.
    """
    written = []
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputFileError(f"{archive}: not a zip archive ({exc})", hint="download it again") from exc
    with zf:
        for name in zf.namelist():
            m = _MEMBER_RE.search(name)
            if not m or m.group(2) not in forces or (months and m.group(1) not in months):
                continue
            month, force = m.groups()
            dest = Path(data_dir) / "police_uk" / force / "street" / f"{month}-{force}-street.csv.gz"
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.part")
            with zf.open(name) as src, gzip.GzipFile(tmp, "wb", mtime=0) as out:
                shutil.copyfileobj(src, out)
            tmp.replace(dest)
            written.append(dest)
    return written


def download_roads(data_dir: Path, *, url: str = ROADS_URL, refresh: bool = False,
                   echo: Callable[[str], None] = print) -> list[Path]:
    """OS Open Roads (GB, GeoPackage, OGL v3) into ``<data_dir>/roads/`` for the maps' road layer.

    The zip (about 0.5 GB) is kept in ``downloads/`` and an interrupted download
    resumes; every GeoPackage in it is extracted to ``roads/``, where
    :func:`hotspots.io.roads.read_roads` finds it.
    """
    zip_path = Path(data_dir) / "downloads" / "oproad_gpkg_gb.zip"
    if refresh or not zip_path.is_file():
        echo("OS Open Roads (GB GeoPackage, OGL v3; about 0.5 GB; an interrupted download resumes)")
        fetch_resumable(url, zip_path, echo=echo)
    else:
        echo(f"OS Open Roads: already downloaded ({zip_path})")
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        zip_path.unlink(missing_ok=True)  # a broken reply (an error page): fetch again next time
        raise SourceError(f"{zip_path}: not a zip archive ({exc})", hint="run the same command again") from exc
    written = []
    with zf:
        for name in zf.namelist():
            if not name.lower().endswith(".gpkg"):
                continue
            dest = Path(data_dir) / "roads" / Path(name).name
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.part")
            with zf.open(name) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out)
            tmp.replace(dest)
            written.append(dest)
    if not written:
        raise SourceError(f"{zip_path}: no GeoPackage in the OS Open Roads archive",
                          hint="download the GeoPackage edition of OS Open Roads and put its .gpkg in the data home's roads/")
    return written


def download_all(
    data_dir: Path,
    *,
    forces: list[str],
    archive: str = "latest",
    from_zip: str | None = None,
    ons: bool = True,
    refresh: bool = False,
    echo: Callable[[str], None] = print,
    police_base: str = POLICE_BASE,
    ons_base: str = ONS_BASE,
    nomis_base: str = NOMIS_BASE,
    roads: bool = False,
    roads_url: str = ROADS_URL,
) -> list[Path]:
    """Build or complete the data home ``data_dir`` (see the module notes); returns the files written.

    Raises :class:`~hotspots._errors.DataNotFoundError` at the end when a file needs a
    manual step (each step printed), :class:`SourceError` when the police data fail.
    """
    forces = check_forces(list(forces))
    if archive != "latest" and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", archive):
        raise ConfigError(f"--archive {archive!r} is not a month", hint="write YYYY-MM (e.g. 2025-12) or 'latest'")
    data_dir = Path(data_dir).expanduser()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the data home {data_dir} ({exc.strerror})", hint="choose another --data") from exc
    ledger = _Ledger(data_dir)
    written: list[Path] = []
    if from_zip:
        zip_path, source = Path(from_zip), str(from_zip)
    else:
        name = "latest.zip" if archive == "latest" else f"{archive}.zip"
        source = f"{police_base.rstrip('/')}/{name}"
        zip_path = data_dir / "downloads" / name
        if refresh or not zip_path.is_file():
            echo(f"police.uk archive {name} (the full archive is several GB; an interrupted download resumes)")
            fetch_resumable(source, zip_path, echo=echo)
        else:
            echo(f"police.uk archive {name}: already downloaded ({zip_path})")
    echo(f"extracting {', '.join(forces)} street files")
    police = extract_police_archive(zip_path, data_dir, forces=forces)
    for force in forces:
        if not any(p.parent.parent.name == force for p in police):
            raise InputFileError(f"{zip_path}: no street files for {force}",
                                 hint="check the force and the archive month (police.uk archives hold 36 months)")
    for p in police:
        ledger.add(str(p.relative_to(data_dir)), source)
    written += police
    echo(f"  {len(police)} force-month file(s)")
    manual: list[str] = []
    if ons:
        for product in PRODUCTS:
            rel = product.path
            if not refresh and ledger.complete(rel):
                echo(f"{rel}: already complete (checksum matches)")
                continue
            echo(f"{rel}: {product.title}")
            try:
                if product.kind == "nomis":
                    records, src = nomis_rows(nomis_base, product, echo=echo), f"{nomis_base}/{product.service}"
                else:
                    records = arcgis_records(ons_base, product, echo=echo)
                    src = f"{ons_base}/{product.service}/FeatureServer/0"
                data, n = _encode(product, records)
            except SourceError as exc:
                echo(f"  failed: {exc.message}")
                manual.append(manual_step(product, data_dir))
                continue
            _atomic_write(data_dir / rel, data)
            ledger.add(rel, src, n)
            written.append(data_dir / rel)
            echo(f"  {n:,} records")
    if roads:
        try:
            got = download_roads(data_dir, url=roads_url, refresh=refresh, echo=echo)
        except SourceError as exc:
            echo(f"  failed: {exc.message}")
            manual.append(f"download OS Open Roads (GeoPackage, GB) from the Ordnance Survey's OS Data Hub "
                          f"(OpenData products) and put its .gpkg file in {Path(data_dir) / 'roads'}")
        else:
            for p in got:
                ledger.add(str(p.relative_to(data_dir)), roads_url)
            written += got
            echo(f"  {len(got)} road file(s) in {Path(data_dir) / 'roads'}")
    ledger.save()
    if manual:
        for step in manual:
            echo(f"manual step: {step}")
        raise DataNotFoundError(f"the data home {data_dir} is missing {len(manual)} file(s) that could not be downloaded",
                                hint="do the manual step(s) printed above, or run the same command again later "
                                     "(files already complete are not fetched again)")
    return written
