"""Hostile input and published outputs: no network, no writes outside --out, atomic files, safe CSVs."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Point

from hotspots._errors import ConfigError
from hotspots._io import OutputDir, neutralise_formulas

from test_cli import make_home, run_main

PAYLOAD_HTML = "<img src=x onerror=alert(1)>"
PAYLOAD_FORMULA = "=HYPERLINK(\"http://evil.example\",\"click\")"


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection or resolve a name fails the test."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


def _config(tmp_path: Path, home: Path, out: Path, town_centres: Path | None = None) -> Path:
    cfg = tmp_path / "cfg.toml"
    tc = f'town_centres = "{town_centres}"\n' if town_centres else ""
    cfg.write_text(
        f'name = "test"\ndata_dir = "{home}"\noutput_dir = "{out}"\nforces = ["hertfordshire"]\n'
        'force_area_code = "E23000027"\n[periods]\nfirst = "2024-01"\nlast = "2025-02"\n'
        '[crime_groups]\n"All crime" = ["Burglary", "Shoplifting", "Vehicle crime"]\n'
        f'[geography]\n{tc}town_centre_name_column = "name"\n'
    )
    return cfg


def test_counts_run_uses_no_network_and_neutralises_formulas(tmp_path, capsys, no_network):
    home = make_home(tmp_path / "home")
    # a user town-centre file whose names are hostile: a spreadsheet formula and an HTML payload
    tc = gpd.GeoDataFrame(
        {"name": [PAYLOAD_FORMULA, PAYLOAD_HTML], "code": ["T1", "T2"]},
        geometry=[Point(514683, 207304).buffer(800), Point(508000, 203000).buffer(800)],
        crs=27700,
    )
    tc_path = tmp_path / "tc.gpkg"
    tc.to_file(tc_path)
    out = tmp_path / "out"
    code, _, err = run_main(["--config", str(_config(tmp_path, home, out, tc_path)), "counts"], capsys)
    assert code == 0, err
    assert no_network == []
    table = pd.read_csv(out / "counts" / "counts_town_centre.csv", dtype=str, keep_default_na=False)
    names = set(table["area_name"])
    assert "'" + PAYLOAD_FORMULA in names          # neutralised: Excel shows text, runs nothing
    assert PAYLOAD_FORMULA not in names
    assert PAYLOAD_HTML in names                   # plain text in CSV is harmless; HTML escaping is tested per report
    # numbers are never altered by the neutralisation
    assert pd.to_numeric(table["count"]).ge(0).all()


def test_neutralise_leaves_numbers_and_safe_text_alone():
    df = pd.DataFrame({"t": ["@SUM(A1)", "+1", "-2", "\tx", "ok", None], "n": [-1.5, 2, 3, 4, 5, 6]})
    out = neutralise_formulas(df)
    assert out["t"].tolist()[:5] == ["'@SUM(A1)", "'+1", "'-2", "'\tx", "ok"]
    assert out["t"].isna().tolist()[5]
    assert out["n"].tolist() == df["n"].tolist()


@pytest.mark.parametrize("name", ["../escape.csv", "/etc/hotspots.csv", "a/../../escape.csv"])
def test_outputs_cannot_leave_the_output_directory(tmp_path, name):
    out = OutputDir(tmp_path / "out")
    with pytest.raises(ConfigError, match="outside the output directory"):
        out.write_text("x", name)
    assert not (tmp_path / "escape.csv").exists()


def test_symlink_inside_output_cannot_redirect_writes(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    out = OutputDir(tmp_path / "out")
    (out.root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ConfigError, match="outside"):
        out.write_text("x", "link/file.txt")
    assert list(outside.iterdir()) == []


def test_a_failed_write_leaves_no_partial_file(tmp_path):
    out = OutputDir(tmp_path / "out")
    out.write_text("complete report", "report.html")
    with pytest.raises(RuntimeError):
        with out.atomic("report.html") as fh:
            fh.write("half a rep")
            raise RuntimeError("crash mid-write")
    # the previous complete file is intact and no temporary file is left behind
    assert (out.root / "report.html").read_text() == "complete report"
    assert sorted(p.name for p in out.root.iterdir()) == ["report.html"]
    with pytest.raises(KeyboardInterrupt):
        with out.atomic("new.csv") as fh:
            fh.write("a,b\n1,")
            raise KeyboardInterrupt
    assert not (out.root / "new.csv").exists()
    assert sorted(p.name for p in out.root.iterdir()) == ["report.html"]


def test_manifest_lists_every_written_file_with_checksum(tmp_path, capsys):
    home = make_home(tmp_path / "home")
    out = tmp_path / "out"
    code, _, err = run_main(["--config", str(_config(tmp_path, home, out)), "counts"], capsys)
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    listed = {o["path"] for o in manifest["outputs"]}
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != "manifest.json"}
    assert on_disk == listed
    assert all(len(o["sha256"]) == 64 for o in manifest["outputs"])


def test_only_the_download_module_touches_the_network():
    """Static check: no analysis module imports a network library."""
    src = Path(__file__).resolve().parents[1] / "src" / "hotspots"
    offenders = []
    for path in src.glob("*.py"):
        if path.name == "download.py":
            continue
        text = path.read_text()
        for lib in ("urllib.request", "import requests", "http.client", "import socket", "urlopen"):
            if lib in text:
                offenders.append(f"{path.name}: {lib}")
    assert offenders == []
