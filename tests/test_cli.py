"""The ``hotspots`` command: help texts with examples, ``info``, ``counts`` on a tiny data home, errors.

The tiny data home (built in tmp_path) has two Hertfordshire districts as 15 km squares
(St Albans E07000240 west of x = 520,000, Welwyn Hatfield E07000241 east of it), four LSOAs,
three police.uk months (.csv, .csv.gz and a .zip) and six rows per month of which four are
inside the force area.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import csv
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from pyproj import Transformer
from shapely.geometry import box, mapping

from hotspots.cli import cli, main
from hotspots.geo.boundaries import DATA_FILES, default_town_centres
from hotspots.schema import AREA_COLUMNS, COUNT_COLUMNS, POLICE_UK_STREET_HEADER, RATE_COLUMNS

DISTRICTS = {
    "E07000240": ("St Albans", "E22000240", box(505000, 200000, 520000, 215000)),
    "E07000241": ("Welwyn Hatfield", "E22000241", box(520000, 200000, 535000, 215000)),
}
LSOAS = {  # code: (district, polygon, population)
    "E01990001": ("E07000240", box(505000, 200000, 512500, 215000), 1500),
    "E01990002": ("E07000240", box(512500, 200000, 520000, 215000), 1600),
    "E01990003": ("E07000241", box(520000, 200000, 527500, 215000), 1700),
    "E01990004": ("E07000241", box(527500, 200000, 535000, 215000), 1800),
}
# (easting, northing, crime type, LSOA code, has id); St Albans town centre is around (514683, 207304)
ROWS = [
    (514683, 207304, "Burglary", "E01990002", True),
    (508000, 203000, "Shoplifting", "E01990001", True),
    (525000, 210000, "Anti-social behaviour", "E01990003", False),
    (533000, 214000, "Vehicle crime", "E01990004", True),
    (545000, 210000, "Burglary", "E01000001", True),   # outside the force area
    (None, None, "Drugs", "", True),                  # no coordinates
]
MONTHS = ["2024-01", "2025-01", "2025-02"]
TO_LONLAT = Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True)


def police_csv(month: str) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(POLICE_UK_STREET_HEADER)
    for i, (e, n, ctype, lsoa, has_id) in enumerate(ROWS):
        lon, lat = ("", "") if e is None else (f"{v:.6f}" for v in TO_LONLAT.transform(e, n))
        cid = hashlib.sha256(f"{month}-{i}".encode()).hexdigest() if has_id else ""
        w.writerow([cid, month, "Hertfordshire Constabulary", "Hertfordshire Constabulary", lon, lat,
                    "On or near High Street", lsoa, f"{lsoa} name", ctype, "", ""])
    return buf.getvalue()


def _geojson(path: Path, features) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fc = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::27700"}},
          "features": [{"type": "Feature", "properties": p, "geometry": mapping(g)} for p, g in features]}
    path.write_text(json.dumps(fc))


def make_home(root: Path) -> Path:
    street = root / "police_uk" / "hertfordshire" / "street"
    street.mkdir(parents=True)
    (street / "2025-01-hertfordshire-street.csv").write_text(police_csv("2025-01"))
    (street / "2025-02-hertfordshire-street.csv.gz").write_bytes(gzip.compress(police_csv("2025-02").encode()))
    with zipfile.ZipFile(root / "police_uk" / "2024-01.zip", "w") as zf:
        zf.writestr("2024-01/2024-01-hertfordshire-street.csv", police_csv("2024-01"))
    _geojson(root / DATA_FILES["districts"][0],
             [({"LAD24CD": c, "LAD24NM": name}, geom) for c, (name, _, geom) in DISTRICTS.items()])
    _geojson(root / DATA_FILES["lsoa21"][0],
             [({"lsoa21_code": c, "lsoa21_name": f"{c} name"}, g) for c, (_, g, _) in LSOAS.items()])
    (root / "lookups").mkdir()
    (root / "population").mkdir()
    pd.DataFrame(
        [(c, name, csp, name, "E23000027", "Hertfordshire") for c, (name, csp, _) in DISTRICTS.items()]
        + [("E06000032", "Luton", "E22000032", "Luton", "E23000026", "Bedfordshire")],
        columns=["ltla24_code", "ltla24_name", "csp24_code", "csp24_name", "pfa24_code", "pfa24_name"],
    ).to_csv(root / DATA_FILES["lookup_district_csp_force"][0], index=False)
    pd.DataFrame([(c, f"{c} name", c, f"{c} name", d, DISTRICTS[d][0]) for c, (d, _, _) in LSOAS.items()],
                 columns=["lsoa11_code", "lsoa11_name", "lsoa21_code", "lsoa21_name", "ltla22_code", "ltla22_name"],
                 ).to_csv(root / DATA_FILES["lookup_lsoa11_lsoa21"][1], index=False)
    pd.DataFrame([(c, f"{c} name", f"W{d[-3:]}", f"{DISTRICTS[d][0]} ward", d, DISTRICTS[d][0]) for c, (d, _, _) in LSOAS.items()],
                 columns=["lsoa21_code", "lsoa21_name", "ward24_code", "ward24_name", "ltla24_code", "ltla24_name"],
                 ).to_csv(root / DATA_FILES["lookup_lsoa21_ward"][1], index=False)
    pd.DataFrame([(c, pop) for c, (_, _, pop) in LSOAS.items()], columns=["lsoa21_code", "census2021_usual_residents"],
                 ).to_csv(root / DATA_FILES["population_lsoa21"][1], index=False)
    return root


@pytest.fixture
def home(tmp_path) -> Path:
    return make_home(tmp_path / "home")


def run_main(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ex:
        main(args)
    out = capsys.readouterr()
    return ex.value.code, out.out, out.err


# --------------------------------------------------------------------------- help (docs test)
@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help_with_an_example(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Example" in text, f"`hotspots {name} --help` has no example"
    example = text.split("Example", 1)[1]
    assert f"hotspots" in example and name in example, f"the example of {name} does not show `hotspots ... {name}`"
    assert cli.commands[name].help and len(cli.commands[name].help.split("\n", 1)[0]) > 10  # a real one-line summary


def test_group_help_lists_every_command():
    text = CliRunner().invoke(cli, ["--help"]).output
    assert "Examples" in text
    for name in cli.commands:
        assert name in text


# --------------------------------------------------------------------------- info / counts
def test_info_describes_the_data_home(home, tmp_path, capsys):
    code, out, err = run_main(["--data", str(home), "--out", str(tmp_path / "out"), "info"], capsys)
    assert code == 0, err
    assert f"data home: {home.resolve()}" in out
    assert "force hertfordshire: 3 months 2024-01..2025-02, 18 rows" in out
    assert "missing months (11): 2024-02..2024-12" in out
    assert "rows read 18 from 3 file(s); kept 15" in out  # info applies no study area
    assert "no_coordinates" in out
    assert f"districts: {DATA_FILES['districts'][0]}" in out
    assert "lookup_lsoa11_lsoa21: lookups/lookup_lsoa11_lsoa21_ltla22_ew.csv" in out


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_counts_writes_the_contract_tables_and_a_balanced_manifest(home, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, out, err = run_main(["--data", str(home), "--out", str(out_dir), "counts"], capsys)
    assert code == 0, err
    assert "[ingest] done" in err and "[counts] done" in err
    assert "rows read 18 from 3 file(s); kept 12" in out

    n_town_centres = len(default_town_centres())  # the built-in Hertfordshire set
    for area_type, n_areas in {"force": 1, "district": 2, "csp": 2, "lsoa": 4, "ward": 2, "town_centre": n_town_centres}.items():
        table = pd.read_csv(out_dir / "counts" / f"counts_{area_type}.csv", dtype={"month": str})
        assert list(table.columns) == COUNT_COLUMNS, area_type
        assert table["area_code"].nunique() == n_areas, area_type
        # every area x month x crime type (14 police.uk categories, 3 months), zeros included
        assert len(table) == n_areas * 3 * 14, area_type
        assert sorted(table["month"].unique()) == MONTHS
    district = pd.read_csv(out_dir / "counts" / "counts_district.csv")
    assert district.groupby("area_code")["count"].sum().to_dict() == {"E07000240": 6, "E07000241": 6}
    assert pd.read_csv(out_dir / "counts" / "counts_force.csv")["count"].sum() == 12
    lsoa = pd.read_csv(out_dir / "counts" / "counts_lsoa.csv")
    assert lsoa.groupby("area_code")["count"].sum().to_dict() == {c: 3 for c in LSOAS}
    tc = pd.read_csv(out_dir / "counts" / "counts_town_centre.csv")
    assert tc.groupby("area_code")["count"].sum().to_dict()["TC02"] == 3  # St Albans: one burglary a month
    assert tc["count"].sum() == 3

    rates_table = pd.read_csv(out_dir / "counts" / "rates.csv")
    assert list(rates_table.columns) == RATE_COLUMNS
    sa = rates_table[(rates_table["area_code"] == "E07000240") & (rates_table["crime_type"] == "Burglary")
                     & rates_table["period"].str.startswith("all months")].iloc[0]
    assert sa["count"] == 3 and sa["population"] == 3100
    assert sa["rate_per_1000"] == pytest.approx(3 / 3100 * 1000)
    assert sa["rate_per_km2"] == pytest.approx(3 / 225)
    assert {"All crime", "ASB"} <= set(rates_table["crime_type"])

    months = pd.read_csv(out_dir / "counts" / "months.csv")
    assert months.set_index("month").loc["2025-01", "rows_kept"] == 4
    assert months["present"].sum() == 3
    recon = pd.read_csv(out_dir / "counts" / "reconciliation_districts.csv")
    assert len(recon) == 0  # every located point's LSOA is in the district it lies in

    import geopandas as gpd

    for area_type in ("district", "csp", "lsoa", "town_centre"):
        g = gpd.read_file(out_dir / "areas" / f"{area_type}.gpkg", layer=area_type)
        assert list(g.columns) == AREA_COLUMNS and g.crs.to_epsg() == 27700

    manifest = json.loads((out_dir / "manifest.json").read_text())
    acc = manifest["row_accounting"]
    assert acc["balanced"] is True
    assert acc["rows_read"] == 18 and acc["kept"] == 12
    assert acc["dropped"] == {"outside_study_area": 3, "no_coordinates": 3}
    assert acc["kept"] + sum(acc["dropped"].values()) == acc["rows_read"]
    for f in acc["files"]:
        assert f["kept"] + sum(f["dropped"].values()) == f["rows_read"] == 6
    police = manifest["inputs"]["police_files"]
    assert len(police) == 3
    for f in police:
        assert len(f["sha256"]) == 64 and f["bytes"] > 0
    assert any("!2024-01/2024-01-hertfordshire-street.csv" in f["path"] for f in police)
    assert set(manifest["inputs"]["geography_files"]) >= {"districts", "lsoa21", "lookup_district_csp_force"}
    outputs = {o["path"]: o for o in manifest["outputs"]}
    assert "counts/counts_district.csv" in outputs and "areas/csp.gpkg" in outputs
    for rel, o in outputs.items():
        assert _sha256(out_dir / rel) == o["sha256"], rel
    assert manifest["months"]["present"] == MONTHS
    assert "periods" in manifest["settings"]["auto"]
    # nothing half-written is left behind
    assert not list(out_dir.rglob("*.part*"))


# --------------------------------------------------------------------------- errors
def _assert_one_clear_error(code, err, *needles):
    assert code != 0
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert any(ln.startswith("hint:") for ln in err.splitlines()), err
    assert "Traceback" not in err


def test_missing_data_dir(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    code, out, err = run_main(["--data", str(missing), "--out", str(tmp_path / "o"), "info"], capsys)
    _assert_one_clear_error(code, err, "data directory not found", str(missing))
    assert code == 2


def test_truncated_gz(home, tmp_path, capsys):
    gz = home / "police_uk" / "hertfordshire" / "street" / "2025-02-hertfordshire-street.csv.gz"
    gz.write_bytes(gz.read_bytes()[:-40])
    code, out, err = run_main(["--data", str(home), "--out", str(tmp_path / "o"), "counts"], capsys)
    _assert_one_clear_error(code, err, "truncated or corrupt", gz.name)
    assert "download the file again" in err


def test_wrong_header(home, tmp_path, capsys):
    p = home / "police_uk" / "hertfordshire" / "street" / "2025-01-hertfordshire-street.csv"
    p.write_text(p.read_text().replace("Longitude,Latitude", "Lon,Lat", 1))
    code, out, err = run_main(["--data", str(home), "--out", str(tmp_path / "o"), "counts"], capsys)
    _assert_one_clear_error(code, err, "header lacks column(s) ['Longitude', 'Latitude']", p.name)


def test_boundary_without_crs(home, tmp_path, capsys):
    lad = home / DATA_FILES["districts"][0]
    fc = json.loads(lad.read_text())
    del fc["crs"]
    lad.write_text(json.dumps(fc))
    code, out, err = run_main(["--data", str(home), "--out", str(tmp_path / "o"), "counts"], capsys)
    _assert_one_clear_error(code, err, "no usable CRS", lad.name)
    assert "EPSG:27700" in err


def test_verbose_shows_the_traceback(tmp_path, capsys):
    code, out, err = run_main(["--verbose", "--data", str(tmp_path / "nowhere"), "info"], capsys)
    assert code == 2
    assert "Traceback" in err and "DataNotFoundError" in err
    assert "error: data directory not found" in err


def test_unknown_stage_is_a_usage_error(home, tmp_path, capsys):
    code, out, err = run_main(["--data", str(home), "--out", str(tmp_path / "o"), "run", "--stage", "nope"], capsys)
    assert code == 2 and "Traceback" not in err
    assert "'nope' is not one of 'counts', 'outliers', 'hotspots', 'evaluate'" in err


def test_stage_help_lists_the_stages_in_order():
    from hotspots.cli import STAGE_NAMES
    from hotspots.stages import STAGES

    assert list(STAGE_NAMES) == list(STAGES)
    text = CliRunner().invoke(cli, ["run", "--help"], terminal_width=200).output
    assert "--stage [counts|outliers|hotspots|evaluate]" in text


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_options_before_or_after_the_command(home, tmp_path, capsys, where):
    """`hotspots counts --out x` works as `hotspots --out x counts` (the issue: "No such option '--out'")."""
    opts = ["--data", str(home), "--out", str(tmp_path / where), "-q"]
    args = opts + ["counts"] if where == "before" else ["counts"] + opts
    code, out, err = run_main(args, capsys)
    assert code == 0, err
    assert (tmp_path / where / "counts" / "counts_district.csv").is_file()
    assert err == ""  # -q after the command is quiet too
    # after the command wins over before
    code, out, err = run_main(["--out", str(tmp_path / "ignored"), "counts", "--data", str(home),
                               "--out", str(tmp_path / "wins"), "-q"], capsys)
    assert code == 0 and (tmp_path / "wins" / "manifest.json").is_file() and not (tmp_path / "ignored").exists()


def test_module_entry_point_runs(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "hotspots", "--data", str(tmp_path / "nowhere"), "info"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.startswith("error: data directory not found") and "hint:" in r.stderr


def test_config_paths_are_relative_to_the_config_file(home, tmp_path, capsys, monkeypatch):
    """A config's relative data_dir/output_dir resolve against its folder, whatever the working folder."""
    from hotspots.config import default_config_path, load_config

    cfg_dir = tmp_path / "project"
    cfg_dir.mkdir()
    (cfg_dir / "home").symlink_to(home)
    text = default_config_path().read_text(encoding="utf-8")
    text = text.replace('data_dir = "../shared/data"', 'data_dir = "home"').replace('output_dir = "output"', 'output_dir = "results"')
    (cfg_dir / "mine.toml").write_text(text, encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = run_main(["--config", "../project/mine.toml", "-q", "counts"], capsys)
    assert code == 0, err
    assert (cfg_dir / "results" / "counts" / "counts_district.csv").is_file()
    assert not (elsewhere / "results").exists()
    # the shipped default keeps its working-folder-relative data_dir (the README runs it from the repository root),
    # also when named explicitly
    assert load_config().data_dir == "../shared/data"
    assert load_config(default_config_path()).data_dir == "../shared/data"
    assert load_config(str(cfg_dir / "mine.toml")).data_dir == str(cfg_dir / "home")


def test_outputs_section_is_checked(tmp_path, capsys):
    from hotspots.config import default_config_path

    cfg = tmp_path / "bad.toml"
    cfg.write_text(default_config_path().read_text(encoding="utf-8").replace(
        'grid_cells = "significant_or_nonzero"', 'grid_cells = "everything"\ngrid_cell = "all"'), encoding="utf-8")
    code, out, err = run_main(["--config", str(cfg), "info"], capsys)
    assert code == 2
    assert "outputs.grid_cells = 'everything' must be one of 'significant_or_nonzero', 'all'" in err
    assert "unknown key in [outputs] 'grid_cell' (did you mean 'grid_cells'?)" in err


def test_progress_bar_on_a_terminal_only(home, tmp_path, capsys):
    """A bar (tqdm) over the steps when stderr is a terminal; plain lines in a log; nothing with -q."""
    import io as _io

    from hotspots import cli as cli_module
    from hotspots.stages import Progress

    stream = _io.StringIO()
    bar = cli_module._bar_progress(Progress, stream, refresh_s=0.05)
    try:
        with bar.step("ingest"):
            bar.info("  read 12 rows")
        with bar.step("counts"):
            pass
        assert bar.bar.n == 2 and bar.timings.keys() == {"ingest", "counts"}
    finally:
        bar.close()
        cli_module._BARS.clear()
    text = stream.getvalue()
    assert "[ingest] ..." in text and "  read 12 rows" in text and "[counts] done in" in text
    assert "hotspots: counts running, 1 step(s) done [00:0" in text  # the bar itself was drawn
    assert not cli_module._is_terminal(_io.StringIO())
    # a non-terminal run (this test's captured stderr) gets no bar: no carriage-return redraws in the log
    code, out, err = run_main(["--data", str(home), "--out", str(tmp_path / "o"), "counts"], capsys)
    assert code == 0 and "[counts] done in" in err and "\r" not in err and "step(s) done" not in err
    code, out, err = run_main(["--data", str(home), "--out", str(tmp_path / "o"), "counts", "-q"], capsys)
    assert code == 0 and err == ""


def test_all_cells_switch_sets_the_outputs_key():
    from hotspots.cli import _Obj
    from hotspots.stages._hotspots_outputs import grid_cells_everything

    obj = _Obj(None, None, None, False, True)
    assert not grid_cells_everything(obj.settings())  # the shipped default: the slim file
    obj.all_cells = True
    assert grid_cells_everything(obj.settings())
    for cmd in ("run", "map"):
        assert "--all-cells" in CliRunner().invoke(cli, [cmd, "--help"]).output
