"""``hotspots download`` offline: a local HTTP server on 127.0.0.1 replays real-format replies.

The server speaks the ArcGIS feature-service query protocol as the ONS services do
(``returnCountOnly``, ``resultOffset``/``resultRecordCount`` capped at a 2,000-record
limit, ``exceededTransferLimit`` in the GeoJSON ``properties`` or the JSON top level, and
``{"error": ...}`` replies sent with HTTP 200), Nomis CSV paging (``recordoffset``) and
police.uk's archive with HTTP ``Range``.  Its data are built here from small fixtures:
two districts of 15 km squares cut into 4,500 LSOAs, so every ONS layer needs three pages.
The data home it writes must then be accepted by ``hotspots run``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import threading
import urllib.parse
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from pyproj import Transformer
import shapely
from shapely.geometry import box, mapping

from test_cli import DISTRICTS, police_csv, run_main

LIMIT = 2000
TO_WGS84 = Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True).transform


def transform(fn, geom):
    return shapely.transform(geom, lambda xy: np.column_stack(fn(xy[:, 0], xy[:, 1])))


def _lsoas():
    """4,500 LSOAs: 75 x 60 rectangles of 400 m x 250 m over the two districts."""
    out = []
    for i in range(75):
        for j in range(60):
            x, y = 505_000 + 400 * i, 200_000 + 250 * j
            district = "E07000240" if x < 520_000 else "E07000241"
            code = f"E0199{len(out):04d}"
            out.append((code, f"{DISTRICTS[district][0]} {len(out):04d}", district, box(x, y, x + 400, y + 250)))
    return out


LSOAS = _lsoas()
LOOKUP_ROWS = [(c, name, csp, name, "E23000027", "Hertfordshire") for c, (name, csp, _) in DISTRICTS.items()] + [
    ("E06000032", "Luton", "E22000032", "Luton", "E23000026", "Bedfordshire")]


def _services() -> dict[str, tuple[str, list[dict]]]:
    """ArcGIS service name -> (kind, records) in the services' own field names."""
    def feat(props, geom):
        return {"type": "Feature", "properties": props, "geometry": mapping(transform(TO_WGS84, geom))}

    return {
        "Local_Authority_Districts_May_2024_Boundaries_UK_BGC": ("geo", [
            feat({"FID": i, "LAD24CD": c, "LAD24NM": n, "LAD24NMW": ""}, g) for i, (c, (n, _, g)) in enumerate(DISTRICTS.items())]),
        "Lower_layer_Super_Output_Areas_December_2021_Boundaries_EW_BSC_V4": ("geo", [
            feat({"FID": i, "LSOA21CD": c, "LSOA21NM": n, "GlobalID": f"g{i}"}, g) for i, (c, n, _, g) in enumerate(LSOAS)]),
        "LSOA11_LSOA21_LAD22_EW_LU": ("table", [
            {"LSOA11CD": c, "LSOA11NM": n, "LSOA21CD": c, "LSOA21NM": n, "CHGIND": "U", "LAD22CD": d,
             "LAD22NM": DISTRICTS[d][0], "LAD22NMW": None, "ObjectId": i} for i, (c, n, d, _) in enumerate(LSOAS)]),
        "LSOA21_WD24_LAD24_EW_LU": ("table", [
            {"LSOA21CD": c, "LSOA21NM": n, "WD24CD": f"E0599{d[-3:]}{i % 2}", "WD24NM": f"{DISTRICTS[d][0]} ward {i % 2}",
             "WD24NMW": None, "LAD24CD": d, "LAD24NM": DISTRICTS[d][0], "ObjectId": i} for i, (c, n, d, _) in enumerate(LSOAS)]),
        "LAD24_CSP24_PFA24_EW_LU": ("table", [
            {"LAD24CD": r[0], "LAD24NM": r[1], "CSP24CD": r[2], "CSP24NM": r[3], "PFA24CD": r[4], "PFA24NM": r[5],
             "ObjectId": i} for i, r in enumerate(LOOKUP_ROWS)]),
    }


def _archive() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for month in ["2024-01", "2024-02", "2025-01", "2025-02"]:
            zf.writestr(f"{month}/{month}-hertfordshire-street.csv", police_csv(month))
            zf.writestr(f"{month}/{month}-kent-street.csv", police_csv(month).replace("Hertfordshire", "Kent"))
            zf.writestr(f"{month}/{month}-hertfordshire-outcomes.csv", "Crime ID,Month\n")
    return buf.getvalue()


class Replay(BaseHTTPRequestHandler):
    services: dict = {}
    broken: set = set()
    archive = b""
    roads = b""
    log: list = []

    def log_message(self, *args):  # quiet
        pass

    def _send(self, body: bytes, ctype: str, status: int = 200, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        parts = url.path.strip("/").split("/")
        type(self).log.append((url.path, q, self.headers.get("Range")))
        if parts[:3] == ["arcgis", "rest", "services"] and parts[-1] == "query":
            return self._arcgis(parts[3], q)
        if parts[0] == "nomis":
            return self._nomis(q)
        if parts[0] == "police" and parts[-1] == "latest.zip":
            return self._archive()
        if parts[0] == "roads" and parts[-1] == "oproad_gpkg_gb.zip" and self.roads:
            return self._send(self.roads, "application/zip")
        self._send(b"not found", "text/plain", 404)

    def _arcgis(self, name, q):
        if name in self.broken or name not in self.services:  # ArcGIS reports errors with HTTP 200
            err = {"error": {"code": 400, "message": "Invalid URL", "details": ["Invalid URL"]}}
            return self._send(json.dumps(err).encode(), "application/json")
        kind, records = self.services[name]
        if q.get("returnCountOnly") == "true":
            return self._send(json.dumps({"count": len(records)}).encode(), "application/json")
        start = int(q.get("resultOffset", 0))
        n = min(int(q.get("resultRecordCount", LIMIT)), LIMIT)
        page = records[start:start + n]
        more = start + n < len(records)
        fields = q["outFields"].split(",")
        if q.get("f") == "geojson":
            feats = [{**f, "properties": {k: f["properties"][k] for k in fields}} for f in page]
            body = {"type": "FeatureCollection", "features": feats, **({"properties": {"exceededTransferLimit": True}} if more else {})}
        else:
            body = {"objectIdFieldName": "ObjectId", "features": [{"attributes": {k: r[k] for k in fields}} for r in page],
                    **({"exceededTransferLimit": True} if more else {})}
        self._send(json.dumps(body).encode(), "application/geo+json" if q.get("f") == "geojson" else "application/json")

    def _nomis(self, q):
        start = int(q.get("recordoffset", 0))
        rows = [(c, 1400 + i % 300) for i, (c, *_rest) in enumerate(LSOAS)][start:start + LIMIT]
        buf = io.StringIO()
        w = csv.writer(buf, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
        w.writerow(["GEOGRAPHY_CODE", "OBS_VALUE"])
        w.writerows(rows)
        self._send(buf.getvalue().encode(), "text/csv")

    def _archive(self):
        data, rng = self.archive, self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            return self._send(data[start:], "application/zip", 206,
                              [("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")])
        self._send(data, "application/zip")


@pytest.fixture()
def server():
    Replay.services, Replay.broken, Replay.archive, Replay.log = _services(), set(), _archive(), []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Replay)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield base
    httpd.shutdown()
    httpd.server_close()


def _args(base: str, home: Path) -> list[str]:
    return ["download", "--data", str(home), "--police-url", f"{base}/police", "--ons-url", f"{base}/arcgis/rest/services",
            "--nomis-url", f"{base}/nomis"]


def test_download_builds_a_data_home_that_hotspots_runs_on(server, tmp_path, capsys, monkeypatch):
    home = tmp_path / "home"
    # a download interrupted half-way left a .part: the run resumes it with a Range request
    part = home / "downloads" / "latest.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(Replay.archive[: len(Replay.archive) // 2])
    # the LSOA boundary service answers with an ArcGIS error: no file, a manual step, exit non-zero
    Replay.broken = {"Lower_layer_Super_Output_Areas_December_2021_Boundaries_EW_BSC_V4"}
    monkeypatch.setattr("hotspots.io.download.time.sleep", lambda s: None)
    code, out, err = run_main(_args(server, home), capsys)
    assert code == 2
    assert "the ArcGIS service answered with error 400: Invalid URL" in err
    assert not (home / "boundaries" / "lsoa21_bsc.geojson").exists()
    assert 'manual step: download "Lower layer Super Output Areas (December 2021) Boundaries EW BSC (V4)"' in err
    assert f"save it as {home / 'boundaries' / 'lsoa21_bsc.geojson'}" in err and "LSOA21CD -> lsoa21_code" in err
    assert "is missing 1 file(s)" in err
    ranges = [r for path, _, r in Replay.log if path.endswith("latest.zip")]
    assert ranges == [f"bytes={len(Replay.archive) // 2}-"]
    assert (home / "downloads" / "latest.zip").read_bytes() == Replay.archive and not part.exists()
    # paged: 4,500 records in pages of at most 2,000, with a count check
    offsets = [q.get("resultOffset") for path, q, _ in Replay.log if "LSOA21_WD24" in path and "resultOffset" in q]
    assert offsets == ["0", "2000", "4000"]
    nomis = [q.get("recordoffset") for path, q, _ in Replay.log if path.startswith("/nomis")]
    assert nomis == ["0", "2000", "4000", "4500"]

    # run again with the service back: only the missing file is fetched, the rest is complete by checksum
    Replay.broken, Replay.log = set(), []
    code, out, err = run_main(_args(server, home), capsys)
    assert code == 0, err
    assert "lookups/lookup_lsoa21_ward24_ltla24_ew.csv.gz: already complete (checksum matches)" in err
    assert not any("LSOA21_WD24" in path for path, _, _ in Replay.log)
    assert not any(path.endswith("latest.zip") for path, _, _ in Replay.log)  # the archive is kept
    lsoa = json.loads((home / "boundaries" / "lsoa21_bsc.geojson").read_text())
    assert len(lsoa["features"]) == len(LSOAS) == 4500
    assert {f["properties"]["lsoa21_code"] for f in lsoa["features"]} == {c for c, *_ in LSOAS}
    street = sorted(p.name for p in (home / "police_uk").rglob("*.csv.gz"))
    assert street == [f"{m}-hertfordshire-street.csv.gz" for m in ["2024-01", "2024-02", "2025-01", "2025-02"]]
    with gzip.open(home / "population" / "census2021_usual_residents_lsoa21_ew.csv.gz", "rt") as fh:
        pop = list(csv.DictReader(fh))
    assert len(pop) == 4500 and list(pop[0]) == ["lsoa21_code", "census2021_usual_residents"]
    # checksums of every file, and where each came from
    sums = dict(reversed(line.split("  ")) for line in (home / "SHA256SUMS").read_text().splitlines())
    manifest = json.loads((home / "download_manifest.json").read_text())
    assert len(sums) == 4 + 6 and set(sums) == set(manifest["files"])
    from hotspots.io.download import sha256_file

    assert all(sha256_file(home / rel) == digest for rel, digest in sums.items())
    assert manifest["files"]["boundaries/lsoa21_bsc.geojson"]["records"] == 4500

    # the data home works
    code, out, err = run_main(["--data", str(home), "--out", str(tmp_path / "out"), "-q", "run",
                               "--stage", "counts", "--stage", "outliers"], capsys)
    assert code == 0, err
    assert (tmp_path / "out" / "outliers" / "csp_outlier_report.html").is_file()
    counts = (tmp_path / "out" / "counts" / "counts_lsoa.csv").read_text(encoding="utf-8-sig")
    assert "E0199" in counts


def test_wrong_force_lists_the_known_forces(tmp_path, capsys):
    code, out, err = run_main(["download", "--data", str(tmp_path / "h"), "--force", "hertfordshir"], capsys)
    assert code == 2
    assert "unknown police.uk force(s): 'hertfordshir' (did you mean 'hertfordshire'?)" in err
    assert "known forces: avon-and-somerset," in err and "west-yorkshire" in err
    assert not (tmp_path / "h").exists()


def test_data_home_from_the_environment(server, tmp_path, capsys, monkeypatch):
    """$HOTSPOTS_DATA is where the data home goes when --data is not given (police data only here)."""
    monkeypatch.setenv("HOTSPOTS_DATA", str(tmp_path / "env-home"))
    args = [a for a in _args(server, tmp_path) if a not in ("--data", str(tmp_path))] + ["--no-ons"]
    code, out, err = run_main(args, capsys)
    assert code == 0, err
    assert len(list((tmp_path / "env-home" / "police_uk" / "hertfordshire" / "street").glob("*.csv.gz"))) == 4
    monkeypatch.delenv("HOTSPOTS_DATA")
    code, out, err = run_main(["download", "--no-ons"], capsys)
    assert code == 2 and "--data DIR, or set $HOTSPOTS_DATA" in err


def test_partial_arcgis_reply_is_an_error(server, tmp_path):
    """A service whose pages add up to fewer records than its count never yields a file."""
    from hotspots.io.download import PRODUCTS, SourceError, arcgis_records

    product = next(p for p in PRODUCTS if p.service == "LSOA21_WD24_LAD24_EW_LU")
    kind, records = Replay.services[product.service]
    Replay.services[product.service] = (kind, records[:2000])  # the pages stop at the limit...

    class Lying(Replay):
        def _arcgis(self, name, q):
            if q.get("returnCountOnly") == "true":  # ...but the service says it holds 4,500
                return self._send(json.dumps({"count": 4500}).encode(), "application/json")
            return super()._arcgis(name, q)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Lying)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(SourceError, match="2,000 records received but the service holds 4,500"):
            arcgis_records(f"http://127.0.0.1:{httpd.server_address[1]}/arcgis/rest/services", product, echo=lambda m: None)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_from_zip_offline_and_bad_archive_month(tmp_path, capsys):
    archive = tmp_path / "latest.zip"
    archive.write_bytes(_archive())
    home = tmp_path / "home"
    code, out, err = run_main(["download", "--data", str(home), "--from-zip", str(archive), "--no-ons",
                               "--force", "hertfordshire", "--force", "kent"], capsys)
    assert code == 0, err
    files = sorted(p.relative_to(home).as_posix() for p in (home / "police_uk").rglob("*.csv.gz"))
    assert len(files) == 8 and "police_uk/kent/street/2025-02-kent-street.csv.gz" in files
    assert files[0] == "police_uk/hertfordshire/street/2024-01-hertfordshire-street.csv.gz"
    assert gzip.decompress((home / files[0]).read_bytes()).decode() == police_csv("2024-01")  # byte for byte
    code, out, err = run_main(["download", "--data", str(home), "--from-zip", str(archive), "--no-ons",
                               "--force", "cumbria"], capsys)
    assert code == 2 and "no street files for cumbria" in err
    code, out, err = run_main(["download", "--data", str(home), "--archive", "2025-13"], capsys)
    assert code == 2 and "--archive '2025-13' is not a month" in err


def test_roads_download_gives_the_maps_a_road_layer(server, tmp_path, capsys):
    """`download --roads` fetches the OS Open Roads zip (here a small GeoPackage built by the test), extracts it to
    roads/, and the maps' road reader finds the lines; a missing product is a manual step and a non-zero exit."""
    import geopandas as gpd

    from hotspots.io.roads import read_roads

    x0, y0 = 515_000, 205_000
    roads = gpd.GeoDataFrame({"name_1": ["High Street", "Station Road"], "road_classification": ["A Road", "Unclassified"]},
                             geometry=[shapely.LineString([(x0, y0), (x0 + 800, y0 + 300)]),
                                       shapely.LineString([(x0 + 100, y0 + 500), (x0 + 900, y0 + 500)])], crs=27700)
    gpkg = tmp_path / "oproad_gb.gpkg"
    roads.to_file(gpkg, layer="road_link")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(gpkg, "Data/oproad_gb.gpkg")
        zf.writestr("Doc/licence.txt", "Open Government Licence v3")
    Replay.roads = buf.getvalue()
    archive = tmp_path / "latest.zip"
    archive.write_bytes(_archive())
    home = tmp_path / "home"
    base = ["download", "--data", str(home), "--from-zip", str(archive), "--no-ons", "--roads"]
    code, out, err = run_main(base + ["--roads-url", f"{server}/roads/oproad_gpkg_gb.zip"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (home / "roads").iterdir()) == ["oproad_gb.gpkg"]
    got = read_roads(home, (x0 - 100, y0 - 100, x0 + 1000, y0 + 1000))
    assert got is not None and sorted(got["name"]) == ["High Street", "Station Road"]
    assert "roads/oproad_gb.gpkg" in (home / "SHA256SUMS").read_text()
    # the product missing at the source: the rest is written, a manual step is printed, exit non-zero
    Replay.roads = b""
    other = tmp_path / "home2"
    code, out, err = run_main(["download", "--data", str(other), "--from-zip", str(archive), "--no-ons", "--roads",
                               "--roads-url", f"{server}/roads/oproad_gpkg_gb.zip"], capsys)
    assert code != 0 and "OS Open Roads" in out + err and "manual step" in out + err
    assert (other / "police_uk" / "hertfordshire").is_dir() and not (other / "roads").exists()
