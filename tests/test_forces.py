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

import pytest

from test_cli import make_home, run_main

#: words that must not appear in another force's outputs
HERTS_WORDS = re.compile(r"hertford|herts|operation hotspot|14\.5\s*%|82\.5\s*%|recording is improving", re.I)


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
