"""Any force by configuration alone: runs that complete what they can, no Hertfordshire text, guards.

The small data home is the one of ``test_cli`` (two Hertfordshire districts as
squares) with its 2024 month removed: one year of data, so the evaluation has no
seasonally matched before/after months.  The real-data tests run ``hotspots
init`` then ``hotspots run`` (restricted stages) for the five forces in
``../shared/data`` and read every output for Hertfordshire words.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from test_cli import make_home, run_main

#: words that must not appear in another force's outputs ("Hertford Road" is a street in Liverpool and St Helens)
HERTS_WORDS = re.compile(r"hertfordshire|operation hotspot|14\.5\s*%|82\.5\s*%|recording is improving", re.I)


def one_year_home(root: Path) -> Path:
    home = make_home(root)
    (home / "police_uk" / "2024-01.zip").unlink()  # 2025-01 and 2025-02 only
    return home


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


# --------------------------------------------------------------------------- a run completes what it can
def test_a_stage_the_data_cannot_support_is_skipped_and_the_run_succeeds(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOTSPOTS_WORKERS", "1")
    out = tmp_path / "out"
    # an earlier run on two years of data left an evaluation in the output folder
    code, _, err = run_main(["--data", str(make_home(tmp_path / "two_years")), "--out", str(out), "run",
                             "--stage", "counts", "--stage", "evaluate"], capsys)
    assert code == 0, err
    assert (out / "evaluation" / "evaluation_report.html").is_file()

    code, stdout, err = run_main(["--data", str(one_year_home(tmp_path / "home")), "--out", str(out), "run"], capsys)
    assert code == 0, err
    assert "stage evaluate SKIPPED (its outputs are not written): no seasonally matched before/after months" in stdout
    assert "[evaluate] SKIPPED" in err and "set [evaluation] before and after" in err
    m = _manifest(out)
    assert list(m["skipped"]) == ["evaluate"] and "seasonally matched" in m["skipped"]["evaluate"]["reason"]
    assert m["stages_run"] == ["counts", "outliers", "hotspots"] and "evaluate" not in m["summaries"]
    folders = {o["path"].split("/")[0] for o in m["outputs"]}
    assert {"counts", "outliers", "hotspots", "maps"} <= folders and "evaluation" not in folders
    assert not (out / "evaluation").exists()  # the earlier run's evaluation does not stay beside this manifest
    for o in m["outputs"]:
        assert (out / o["path"]).is_file()


def test_a_stage_asked_for_by_name_that_cannot_run_exits_2_after_writing_the_rest(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOTSPOTS_WORKERS", "1")
    out = tmp_path / "out"
    code, stdout, err = run_main(["--data", str(one_year_home(tmp_path / "home")), "--out", str(out), "run",
                                  "--stage", "counts", "--stage", "evaluate"], capsys)
    assert code == 2
    assert "error: stage evaluate could not run: no seasonally matched before/after months" in err
    assert "hint: set [evaluation] before and after" in err
    m = _manifest(out)
    assert m["stages_run"] == ["counts"] and list(m["skipped"]) == ["evaluate"]
    assert (out / "counts" / "counts_district.csv").is_file() and not (out / "evaluation").exists()

    code, _, err = run_main(["--data", str(tmp_path / "home"), "--out", str(tmp_path / "out2"), "evaluate"], capsys)
    assert code == 2 and "stage evaluate could not run" in err


def test_a_run_with_every_stage_possible_skips_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOTSPOTS_WORKERS", "1")
    out = tmp_path / "out"
    code, stdout, err = run_main(["--data", str(make_home(tmp_path / "home")), "--out", str(out), "run",
                                  "--stage", "counts", "--stage", "evaluate"], capsys)
    assert code == 0, err
    assert _manifest(out)["skipped"] == {} and "SKIPPED" not in stdout + err


# --------------------------------------------------------------------------- guards
def _config(tmp_path: Path, home: Path, *, forces: str = '["hertfordshire"]', code: str = "E23000027",
            town_centres: str = "") -> Path:
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'name = "test"\ndata_dir = "{home}"\nforces = {forces}\nforce_area_code = "{code}"\n'
                   '[periods]\nfirst = "2024-01"\nlast = "2025-02"\n'
                   '[crime_groups]\n"All crime" = ["Burglary", "Shoplifting", "Vehicle crime"]\n'
                   f'[geography]\ntown_centres = "{town_centres}"\n')
    return cfg


def _move_force(home: Path, slug: str, falls_within: str, shift_m: float = 0.0, lsoa: bool = True) -> None:
    """Rewrite the small home's files as another force's (folder, file names, ``Falls within``), optionally moved."""
    import csv
    import io

    from pyproj import Transformer

    from test_cli import MONTHS, police_csv

    to_bng = Transformer.from_crs("EPSG:4326", "EPSG:27700", always_xy=True)
    to_ll = Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True)
    (home / "police_uk" / "2024-01.zip").unlink()
    for f in (home / "police_uk" / "hertfordshire" / "street").iterdir():
        f.unlink()
    street = home / "police_uk" / slug / "street"
    street.mkdir(parents=True, exist_ok=True)
    for month in MONTHS:
        rows = list(csv.reader(io.StringIO(police_csv(month))))
        for r in rows[1:]:
            r[2] = r[3] = falls_within
            if r[4] and shift_m:
                e, n = to_bng.transform(float(r[4]), float(r[5]))
                r[4], r[5] = (f"{v:.6f}" for v in to_ll.transform(e + shift_m, n))
            if not lsoa:
                r[7] = ""
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        (street / f"{month}-{slug}-street.csv").write_text(buf.getvalue())


def test_files_of_another_force_than_the_force_area_are_refused(tmp_path, capsys):
    home = make_home(tmp_path / "home")
    _move_force(home, "kent-police", "Kent Police")  # a folder name police.uk does not use, so the config cannot tell
    code, _, err = run_main(["--data", str(home), "--config", str(_config(tmp_path, home, forces='["kent-police"]')), "--out",
                             str(tmp_path / "o"), "counts"], capsys)
    assert code == 2
    assert ("error: the police.uk files' rows fall within Kent Police (18 rows, force area E23000032), but "
            "force_area_code is E23000027 (Hertfordshire)") in err
    assert 'hint: set force_area_code = "E23000032"' in err and not (tmp_path / "o" / "manifest.json").exists()


def test_a_config_naming_a_force_with_another_forces_area_is_refused_before_reading(tmp_path, capsys):
    home = make_home(tmp_path / "home")
    code, _, err = run_main(["--data", str(home), "--config", str(_config(tmp_path, home, forces='["kent"]')), "--out", str(tmp_path / "o"),
                             "counts"], capsys)
    assert code == 2 and "forces includes 'kent' (Kent Police, force area E23000032) but force_area_code is E23000027" in err
    assert "[ingest]" not in err


def test_keeping_almost_nothing_of_what_was_read_is_an_error_with_the_reasons(tmp_path, capsys):
    home = make_home(tmp_path / "home")
    _move_force(home, "hertfordshire", "Hertfordshire Constabulary", shift_m=60_000, lsoa=False)  # all 60 km east
    code, _, err = run_main(["--data", str(home), "--config", str(_config(tmp_path, home)), "--out", str(tmp_path / "o"), "counts"], capsys)
    assert code == 2
    line = next(ln for ln in err.splitlines() if ln.startswith("error:"))
    assert line.startswith("error: kept 0 of 18 rows read (0.0%); dropped 15 outside_study_area")
    assert "dropped 3 no_coordinates" in line and "force_area_code" in err


def test_a_small_kept_share_is_a_loud_warning(tmp_path, capsys):
    home = make_home(tmp_path / "home")  # 4 of 6 rows a month inside, 1 outside, 1 without coordinates
    out = tmp_path / "o"
    code, _, err = run_main(["--data", str(home), "--config", str(_config(tmp_path, home)), "--out", str(out), "counts"], capsys)
    assert code == 0, err
    line = next(ln for ln in err.splitlines() if "WARNING: kept" in ln)
    assert line.startswith("  WARNING: kept 12 of 18 rows read (66.7%); dropped 3 ")
    assert "dropped 3 outside_study_area" in line and "dropped 3 no_coordinates" in line
    assert "kept 12 of 18" in _manifest(out)["settings"]["auto"]["row_accounting.warning"]["value"]


# --------------------------------------------------------------------------- town centres
def _towns_file(path: Path) -> None:
    import geopandas as gpd
    from shapely.geometry import Point

    path.parent.mkdir(parents=True, exist_ok=True)
    gpd.GeoDataFrame({"TCITY15NM": ["Inside Town", "Far Away City"], "TCITY15CD": ["J01000001", "J01000002"]},
                     geometry=[Point(514683, 207304).buffer(900), Point(300000, 400000).buffer(900)],
                     crs=27700).to_file(path)


def test_no_town_centre_file_means_none_and_says_so(tmp_path, capsys):
    home = make_home(tmp_path / "home")
    out = tmp_path / "o"
    code, _, err = run_main(["--data", str(home), "--config", str(_config(tmp_path, home)), "--out", str(out), "counts"], capsys)
    assert code == 0, err
    assert "town centres: 0 from none; none: no town-centre file in the config and no ONS Major Towns" in err
    tc = pd.read_csv(out / "counts" / "counts_town_centre.csv")
    assert len(tc) == 0 and list(tc.columns)[:2] == ["area_type", "area_code"]
    m = _manifest(out)
    assert m["inputs"]["geography_files"]["town_centres"] == "none"
    assert m["settings"]["auto"]["town_centres"]["value"] == ""


def test_the_data_homes_ons_towns_inside_the_force_area_are_used(tmp_path, capsys):
    home = make_home(tmp_path / "home")
    _towns_file(home / "town_centres" / "ons_major_towns_cities_dec2015.geojson")
    out = tmp_path / "o"
    code, _, err = run_main(["--data", str(home), "--config", str(_config(tmp_path, home)), "--out", str(out), "counts"], capsys)
    assert code == 0, err
    assert "town centres: 1 from " in err and "(1 of 2 outside the force area left out)" in err
    tc = pd.read_csv(out / "counts" / "counts_town_centre.csv")
    assert set(tc["area_name"]) == {"Inside Town"} and tc["count"].sum() == 3  # the St Albans burglary, each month


def test_none_and_unknown_built_in_town_centres(tmp_path, capsys):
    from hotspots._errors import ConfigError
    from hotspots.config import load_config, resolve_town_centres

    home = make_home(tmp_path / "home")
    _towns_file(home / "town_centres" / "ons_major_towns_cities_dec2015.geojson")
    out = tmp_path / "o"
    code, _, err = run_main(["--data", str(home), "--config", str(_config(tmp_path, home, town_centres="none")), "--out", str(out), "counts"],
                            capsys)
    assert code == 0 and 'town centres: 0 from none; none: town_centres = "none"' in err
    with pytest.raises(ConfigError, match="'builtin:kent' is not a built-in set; built in: builtin:hertfordshire"):
        load_config(_config(tmp_path, home, town_centres="builtin:kent"))
    # the markers also when a config's relative paths are made absolute against its folder
    settings = load_config(_config(tmp_path, home, town_centres=str(tmp_path / "builtin:hertfordshire")))
    assert settings.town_centres == "builtin:hertfordshire"
    assert resolve_town_centres(settings, home) == ("builtin:hertfordshire", "name")
    settings = load_config(_config(tmp_path, home, town_centres=str(tmp_path / "none")))
    assert resolve_town_centres(settings, home) == ("", "")


def test_the_hertfordshire_town_centres_are_asked_for_by_name_only_in_its_config():
    from hotspots.config import default_config_path, load_config

    assert load_config(default_config_path()).town_centres == "builtin:hertfordshire"
    src = Path(__file__).resolve().parents[1] / "src" / "hotspots"
    users = [p for p in src.rglob("*") if p.is_file() and p.suffix in (".py", ".toml", ".j2")
             and "builtin:hertfordshire" in p.read_text()]
    assert sorted(p.name for p in users) == ["boundaries.py", "config.py", "hertfordshire.toml"]


# --------------------------------------------------------------------------- the five forces of the real data home
FORCES = {"hertfordshire": "E23000027", "cumbria": "E23000002", "kent": "E23000032", "merseyside": "E23000004",
          "south-wales": "W15000003"}


def _strings(obj, skip_prefixes: tuple[str, ...]):
    """Every string in a JSON value, except paths into the data home (they name its other forces' folders)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(k, skip_prefixes)
            yield from _strings(v, skip_prefixes)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v, skip_prefixes)
    elif isinstance(obj, str) and not obj.startswith(skip_prefixes):
        yield obj


def herts_words_in_outputs(out: Path, data_dir: Path) -> dict[str, list[str]]:
    """Hertfordshire words in every output file (HTML, CSV, GeoJSON, GeoPackage text, the manifest)."""
    found: dict[str, list[str]] = {}
    prefixes = (str(data_dir), str(data_dir.resolve()), os.path.realpath(data_dir))
    for path in sorted(out.rglob("*")):
        if not path.is_file():
            continue
        if path.name == "manifest.json":
            manifest = json.loads(path.read_text())
            manifest["row_accounting"].pop("skipped", None)  # the data home's inventory: its other forces' files
            text = "\n".join(_strings(manifest, prefixes))
        else:
            text = path.read_bytes().decode("utf-8", errors="ignore")
        hits = sorted({m.group(0) for m in HERTS_WORDS.finditer(text)})
        if hits:
            found[str(path.relative_to(out))] = hits
    return found


def _needs_lsoa_geography() -> None:
    """Cumbria's split districts and other forces' LSOAs need the geography built from LSOAs (issue 17 part A)."""
    pytest.importorskip("hotspots.geo.coverage", reason="needs the LSOA-based geography of issue 17 part A (wip/i17a)")


def _init_and_run(force: str, data_dir: Path, tmp_path: Path, capsys, stages: list[str]) -> tuple[Path, dict, str]:
    code, stdout, err = run_main(["--data", str(data_dir), "init", "--force", force, "--output",
                                  str(tmp_path / f"{force}.toml")], capsys)
    assert code == 0, err
    out = tmp_path / "out"
    args = ["--config", str(tmp_path / f"{force}.toml"), "--out", str(out), "run"]
    for s in stages:
        args += ["--stage", s]
    code, stdout, err = run_main(args, capsys)
    assert code == 0, err
    return out, _manifest(out), stdout + err


@pytest.mark.realdata
@pytest.mark.parametrize("force", list(FORCES))
def test_init_then_counts_with_no_edits(force, real_data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOTSPOTS_WORKERS", "1")
    monkeypatch.delenv("HOTSPOTS_DATA", raising=False)  # the data home written by init is the one used
    if force == "cumbria":
        _needs_lsoa_geography()
    out, m, text = _init_and_run(force, real_data_dir, tmp_path, capsys, ["counts"])
    assert m["settings"]["force_area_code"] == FORCES[force] and m["settings"]["forces"] == [force]
    assert m["skipped"] == {} and "row_accounting.warning" not in m["settings"]["auto"]
    acc = m["row_accounting"]
    assert acc["balanced"] and acc["kept"] >= 0.95 * acc["rows_read"], acc["dropped"]
    by_force = pd.read_csv(out / "counts" / "counts_force.csv")
    assert by_force["count"].sum() == acc["kept"]
    district = pd.read_csv(out / "counts" / "counts_district.csv")
    assert district["count"].sum() == acc["kept"]  # every kept record is in one of the force's districts
    if force != "hertfordshire":
        assert herts_words_in_outputs(out, real_data_dir) == {}
        assert "town centres: 0 from" in text  # the data home's towns are all in or near Hertfordshire


@pytest.mark.realdata
def test_a_metropolitan_forces_outputs_have_no_hertfordshire_words(real_data_dir, tmp_path, capsys, monkeypatch):
    """Merseyside: counts, outliers and hotspots (maps included) from `init` with no edits, every output read.

    (Kent's hotspot stage takes about 4 minutes here, Merseyside's under one; Kent's counts are read above.)
    """
    _needs_lsoa_geography()
    monkeypatch.setenv("HOTSPOTS_WORKERS", "1")
    monkeypatch.delenv("HOTSPOTS_DATA", raising=False)
    out, m, _ = _init_and_run("merseyside", real_data_dir, tmp_path, capsys, ["counts", "outliers", "hotspots"])
    assert m["stages_run"] == ["counts", "outliers", "hotspots"]
    assert {o["path"].split("/")[0] for o in m["outputs"]} >= {"counts", "outliers", "hotspots", "maps"}
    report = (out / "outliers" / "csp_outlier_report.html").read_text()
    assert "Merseyside" in report and "Liverpool" in report
    assert herts_words_in_outputs(out, real_data_dir) == {}


@pytest.mark.realdata
def test_a_one_year_real_data_home_skips_the_evaluation_with_its_reason(real_data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOTSPOTS_WORKERS", "1")
    home = tmp_path / "home"
    street = home / "police_uk" / "kent" / "street"
    street.mkdir(parents=True)
    for sub in ("boundaries", "lookups", "population", "town_centres"):
        if (real_data_dir / sub).exists():
            (home / sub).symlink_to(real_data_dir / sub)
    for f in sorted((real_data_dir / "police_uk" / "kent" / "street").glob("2025-*")):
        (street / f.name).symlink_to(f)
    code, _, err = run_main(["--data", str(home), "init", "--force", "kent", "--output", str(tmp_path / "kent.toml")], capsys)
    assert code == 0, err
    out = tmp_path / "out"
    code, stdout, err = run_main(["--config", str(tmp_path / "kent.toml"), "--data", str(home), "--out", str(out), "run",
                                  "--stage", "counts", "--stage", "evaluate"], capsys)
    assert code == 2  # the evaluation was asked for by name (README: exit codes); `hotspots run` alone exits 0
    assert "stage evaluate could not run: no seasonally matched before/after months" in err
    assert "[evaluate] SKIPPED" in err
    m = _manifest(out)
    assert m["stages_run"] == ["counts"] and list(m["skipped"]) == ["evaluate"]
    assert m["months"]["present"] == [f"2025-{i:02d}" for i in range(1, 13)]
    assert (out / "counts" / "rates.csv").is_file() and not (out / "evaluation").exists()
