"""Download police.uk and ONS data into the data-home layout.

The only module that touches the network, and it keeps that part small:
:func:`fetch` downloads one URL to a file.  Everything after the download
(extracting force-months from a police.uk archive into
``police_uk/<force>/street/``) is plain file work, tested on local files.
"""

from __future__ import annotations

import gzip
import re
import shutil
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from hotspots._errors import InputFileError

POLICE_ARCHIVE_URL = "https://data.police.uk/data/archive/{month}.zip"
POLICE_LATEST_URL = "https://data.police.uk/data/archive/latest.zip"

#: data-home path -> URL of the official ONS / Open Geography product.  ONS
#: occasionally moves these services; when a URL fails, download the named
#: product by hand from the ONS Open Geography Portal and save it at the path.
ONS_SOURCES: dict[str, str] = {
    "boundaries/lad_bgc.geojson": "https://services1.arcgis.com/ESMARspQHYMw9BZ9/arcgis/rest/services/"
    "Local_Authority_Districts_May_2024_Boundaries_UK_BGC/FeatureServer/0/query?where=1%3D1&outFields=LAD24CD,LAD24NM&outSR=4326&f=geojson",
    "boundaries/lsoa21_bsc.geojson": "https://services1.arcgis.com/ESMARspQHYMw9BZ9/arcgis/rest/services/"
    "Lower_layer_Super_Output_Areas_December_2021_Boundaries_EW_BSC_V4/FeatureServer/0/query?where=1%3D1&outFields=LSOA21CD,LSOA21NM&outSR=4326&f=geojson",
}

_MEMBER_RE = re.compile(r"(?:^|/)(\d{4}-\d{2})-([a-z0-9-]+)-street\.csv$")


def fetch(url: str, dest: Path, *, timeout: float = 120.0) -> Path:  # pragma: no cover - network
    """Download ``url`` to ``dest`` (written to a .part file, then renamed)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as fh:
        shutil.copyfileobj(resp, fh)
    tmp.replace(dest)
    return dest


def extract_police_archive(archive: Path, data_dir: Path, *, forces: list[str], months: list[str] | None = None) -> list[Path]:
    """Copy the street files of ``forces`` from a police.uk archive into the data home, gzipped.

    Writes ``police_uk/<force>/street/YYYY-MM-<force>-street.csv.gz``.
    """
    written = []
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise InputFileError(f"{archive}: not a zip archive ({exc})", hint="download it again") from exc
    with zf:
        for name in zf.namelist():
            m = _MEMBER_RE.search(name)
            if not m or m.group(2) not in forces or (months and m.group(1) not in months):
                continue
            month, force = m.groups()
            dest = Path(data_dir) / "police_uk" / force / "street" / f"{month}-{force}-street.csv.gz"
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(".part")
            with zf.open(name) as src, gzip.open(tmp, "wb") as out:
                shutil.copyfileobj(src, out)
            tmp.replace(dest)
            written.append(dest)
    return written


def download_all(
    data_dir: Path,
    *,
    forces: list[str],
    archive: str = "latest",
    from_zip: str | None = None,
    ons: bool = True,
    echo: Callable[[str], None] = print,
) -> list[Path]:  # pragma: no cover - network
    data_dir = Path(data_dir)
    written: list[Path] = []
    if from_zip:
        zip_path = Path(from_zip)
    else:
        url = POLICE_LATEST_URL if archive == "latest" else POLICE_ARCHIVE_URL.format(month=archive)
        zip_path = data_dir / "downloads" / Path(url).name
        echo(f"downloading {url} (several GB for the full archive)")
        fetch(url, zip_path)
    written += extract_police_archive(zip_path, data_dir, forces=forces)
    if ons:
        for rel, url in ONS_SOURCES.items():
            echo(f"downloading {rel}")
            written.append(fetch(url, data_dir / rel))
        echo("lookups and Census 2021 population: see data/README.md for the ONS product names to place under lookups/ and population/")
    return written
