"""scripts/compare_outputs.py, the proof that a refactoring left ``hotspots run`` unchanged, can fail."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pyogrio
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from compare_outputs import compare  # noqa: E402

from test_cli import make_home, run_main  # noqa: E402


@pytest.fixture(scope="module")
def one_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    home = make_home(root / "home")
    out = root / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOTSPOTS_WORKERS", "1")
        from hotspots.cli import main

        with pytest.raises(SystemExit) as ex:
            main(["--data", str(home), "--out", str(out), "--quiet", "run"])
    assert ex.value.code == 0
    return out


def test_a_copy_is_the_same_and_a_second_run_too(one_run, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(one_run, copy)
    assert compare(one_run, copy)[0] == []
    home = one_run.parent / "home"  # the same inputs (their paths are in the manifest)
    code, _, err = run_main(["--data", str(home), "--out", str(tmp_path / "again"), "--quiet", "run"], capsys)
    assert code == 0, err
    problems, n = compare(one_run, tmp_path / "again")
    assert problems == [] and n > 30


def test_changed_csv_gpkg_and_missing_files_are_reported(one_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(one_run, copy)
    csv = copy / "counts" / "counts_district.csv"
    csv.write_text(csv.read_text().replace(",1\n", ",2\n", 1))
    gpkg = copy / "areas" / "district.gpkg"
    frame = pyogrio.read_dataframe(gpkg)
    frame.loc[0, "area_name"] = "Changed"
    pyogrio.write_dataframe(frame, gpkg, layer=pyogrio.list_layers(gpkg)[0][0])
    (copy / "counts" / "months.csv").unlink()
    problems, _ = compare(one_run, copy)
    text = "\n".join(problems)
    assert "counts/counts_district.csv: bytes differ" in text
    assert "areas/district.gpkg" in text and "attributes differ" in text
    assert "only in" in text and "months.csv" in text
