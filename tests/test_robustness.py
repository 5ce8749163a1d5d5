"""Hostile and careless use: the output folder always matches its manifest, concurrent runs, odd inputs.

Every case is built here on the tiny data home of tests/test_cli.py (``make_home``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hotspots._errors import ConfigError
from hotspots._io import OutputDir
from test_cli import make_home, police_csv, run_main


def folder_matches_manifest(out: Path) -> list[str]:
    """Problems: files listed in ``out/manifest.json`` that are missing or whose sha256 differs."""
    manifest = json.loads((out / "manifest.json").read_text())
    problems = []
    for o in manifest["outputs"]:
        p = out / o["path"]
        if not p.is_file():
            problems.append(f"missing {o['path']}")
        elif hashlib.sha256(p.read_bytes()).hexdigest() != o["sha256"]:
            problems.append(f"sha256 of {o['path']} differs")
    return problems


def _second_home(tmp_path: Path) -> Path:
    """Like make_home, with January 2025 one row shorter: every count table differs from the first home's."""
    home = make_home(tmp_path)
    f = home / "police_uk" / "hertfordshire" / "street" / "2025-01-hertfordshire-street.csv"
    f.write_text("".join(f.read_text().splitlines(keepends=True)[:-3]))
    return home


# --------------------------------------------------------------------------- killed runs
_KILLER = r"""
import json, os, random, signal, sys, time
sys.path.insert(0, {tests!r})
from hotspots.cli import main
import hotspots.stages, hotspots.stages.run, geopandas, pyogrio  # imported once: each run is a fork of this process
from test_robustness import folder_matches_manifest

homes, out, n = {homes!r}, {out!r}, {n}
rng = random.Random(20261202)

def one_run(home, delay=None, sig=None):
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        try:
            main(["--data", home, "--out", out, "--quiet", "run", "--stage", "counts"])
        except SystemExit as exc:
            os._exit(exc.code if isinstance(exc.code, int) else 1)
        os._exit(0)
    t0 = time.monotonic()
    if sig is not None:
        time.sleep(delay)
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), time.monotonic() - t0

code, full = one_run(homes[0])
assert code == 0, code
published = 0
results = []
sigs = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
for i in range(n):
    before = json.loads(open(os.path.join(out, "manifest.json")).read())["outputs"]
    sig = sigs[i % 3]
    delay = rng.uniform(0.0, full * 1.1)
    code, _ = one_run(homes[(i + 1) % 2], delay, sig)
    problems = folder_matches_manifest(__import__("pathlib").Path(out))
    after = json.loads(open(os.path.join(out, "manifest.json")).read())["outputs"]
    results.append({{"sig": int(sig), "delay": round(delay, 3), "code": code, "problems": problems,
                    "changed": before != after}})
code, _ = one_run(homes[0])
print(json.dumps({{"full_s": full, "final": code, "results": results,
                  "left": sorted(p for p in os.listdir(os.path.dirname(out)) if ".staging-" in p or ".old-" in p)}}))
"""


def test_a_run_killed_at_random_points_leaves_the_folder_matching_its_manifest(tmp_path):
    homes = [str(make_home(tmp_path / "a")), str(_second_home(tmp_path / "b"))]
    out = tmp_path / "out"
    script = tmp_path / "killer.py"
    script.write_text(_KILLER.format(tests=str(Path(__file__).parent), homes=homes, out=str(out), n=21))
    env = {**os.environ, "HOTSPOTS_WORKERS": "1"}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    results = report["results"]
    assert len(results) == 21
    bad = [r for r in results if r["problems"]]
    assert bad == [], bad
    # killed runs either stopped (130 SIGINT, 143 SIGTERM, -9 SIGKILL) or finished first (0) and published
    assert all(r["code"] in (0, 130, 143, -9) for r in results), results
    assert all(r["changed"] or r["code"] != 0 for r in results), results
    assert sum(r["code"] != 0 for r in results) >= 10, results  # most kills land while the run is working
    assert report["final"] == 0 and report["left"] == []  # the next run cleans up what SIGKILL left
    assert folder_matches_manifest(out) == []


# --------------------------------------------------------------------------- output folder
def test_a_late_error_leaves_the_previous_outputs_and_manifest(tmp_path, capsys, monkeypatch):
    home = make_home(tmp_path / "home")
    out = tmp_path / "out"
    code, _, err = run_main(["--data", str(home), "--out", str(out), "--quiet", "run", "--stage", "counts"], capsys)
    assert code == 0, err
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    from hotspots import stages
    from hotspots._errors import InputFileError

    def late_failure(ctx):
        ctx.out.write_text("half of a run", "counts/counts_force.csv")
        raise InputFileError("late problem", hint="fix it")

    monkeypatch.setitem(stages.STAGES, "outliers", late_failure)
    code, _, err = run_main(["--data", str(home), "--out", str(out), "--quiet", "run", "--stage", "counts",
                             "--stage", "outliers"], capsys)
    assert code == 2 and "late problem" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert folder_matches_manifest(out) == []
    assert [p.name for p in tmp_path.iterdir() if "staging" in p.name] == []


def test_a_second_run_into_the_same_folder_gets_a_clear_error(tmp_path, capsys):
    home = make_home(tmp_path / "home")
    out = tmp_path / "out"
    holder = OutputDir(out, staged=True)  # a run in progress
    try:
        code, _, err = run_main(["--data", str(home), "--out", str(out), "run", "--stage", "counts"], capsys)
    finally:
        holder.abort()
    assert code == 2
    assert f"error: another hotspots run (process {os.getpid()}) is writing to {out}" in err
    assert "hint: wait for it to finish, or choose another --out" in err
    assert "internal error" not in err and "Traceback" not in err
    code, _, err = run_main(["--data", str(home), "--out", str(out), "--quiet", "run", "--stage", "counts"], capsys)
    assert code == 0, err  # the lock goes with the run that held it


def test_staged_outputs_appear_only_when_published(tmp_path):
    out = OutputDir(tmp_path / "out", staged=True)
    out.write_text("a", "x/a.txt")
    assert not (tmp_path / "out").exists() and (out.base / "x" / "a.txt").read_text() == "a"
    out.publish()
    assert (tmp_path / "out" / "x" / "a.txt").read_text() == "a"
    again = OutputDir(tmp_path / "out", staged=True)  # keeps what it does not rewrite
    again.write_text("b", "b.txt")
    again.publish()
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.txt")) == ["b.txt", "x/a.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.hotspots-lock", "out"]


def test_temporary_names_are_unique(tmp_path):
    out = OutputDir(tmp_path / "out")
    with out.atomic_path("grid.gpkg") as a, out.atomic_path("grid.gpkg") as b:
        assert a != b and a.parent == b.parent
        a.write_text("1")
        b.write_text("2")
    assert (out.root / "grid.gpkg").exists() and not a.exists() and not b.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_a_read_only_output_folder_is_a_clear_error(tmp_path, capsys):
    home = make_home(tmp_path / "home")
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        code, _, err = run_main(["--data", str(home), "--out", str(out), "run", "--stage", "counts"], capsys)
    finally:
        out.chmod(0o755)
    assert code == 2 and "read-only" in err and "internal error" not in err


def test_a_full_disk_is_a_clear_error(tmp_path):
    import errno

    from hotspots._io import _write_error

    err = _write_error(tmp_path, OSError(errno.ENOSPC, "No space left on device"))
    assert isinstance(err, ConfigError)
    assert "No space left on device" in err.message and "free some disk space" in err.hint


def test_a_full_disk_during_a_write_is_a_clear_error(tmp_path):
    import errno

    out = OutputDir(tmp_path / "out")
    with pytest.raises(ConfigError, match="No space left") as info:
        with out.atomic("report.html") as fh:
            fh.write("half")
            raise OSError(errno.ENOSPC, "No space left on device")  # what write() raises on a full disk
    assert "free some disk space" in info.value.hint
    assert list(out.root.iterdir()) == []


# --------------------------------------------------------------------------- every accepted input is used or named
def _street(home: Path) -> Path:
    return home / "police_uk" / "hertfordshire" / "street"


def _run_counts(home: Path, out: Path, capsys) -> tuple[int, str, str]:
    return run_main(["--data", str(home), "--out", str(out), "run", "--stage", "counts"], capsys)


def _published(home: Path, out: Path, capsys) -> dict:
    """A first good run into ``out``: what a later failing run must leave alone."""
    code, _, err = run_main(["--data", str(home), "--out", str(out), "--quiet", "run", "--stage", "counts"], capsys)
    assert code == 0, err
    return {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_two_different_files_for_one_month_are_an_error_naming_both(tmp_path, capsys):
    home = make_home(tmp_path / "home")
    out = tmp_path / "out"
    before = _published(home, out, capsys)
    # an old partial download of January 2025 beside the revised one
    partial = "".join(police_csv("2025-01").splitlines(keepends=True)[:3])
    (_street(home) / "2025-01-hertfordshire-street.csv.gz").write_bytes(gzip.compress(partial.encode()))
    code, stdout, err = _run_counts(home, out, capsys)
    assert code == 2, err
    assert "two different files for hertfordshire 2025-01" in err
    assert "2025-01-hertfordshire-street.csv (6 rows)" in err and "2025-01-hertfordshire-street.csv.gz (2 rows)" in err
    assert "hint: keep the right one" in err and "internal error" not in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert folder_matches_manifest(out) == []


def test_the_same_month_twice_with_the_same_rows_is_used_once_and_named(tmp_path, capsys):
    home = make_home(tmp_path / "home")
    copy = _street(home) / "2025-01-hertfordshire-street (1).CSV"  # a browser's second download, odd capitals
    copy.write_text(police_csv("2025-01").replace("\n", "\r\n"))  # other line endings: same rows
    out = tmp_path / "out"
    code, stdout, err = _run_counts(home, out, capsys)
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    acc = manifest["row_accounting"]
    assert acc["dropped"]["duplicate_file"] == 6 and acc["rows_read"] == 24 and acc["kept"] == 12
    assert acc["balanced"]
    assert f"not used: {copy} (the same data as" in stdout
    assert folder_matches_manifest(out) == []


def test_rows_of_another_force_under_a_hertfordshire_name_are_an_error(tmp_path, capsys):
    home = make_home(tmp_path / "home")
    f = _street(home) / "2025-01-hertfordshire-street.csv"
    f.write_text(f.read_text().replace("Hertfordshire Constabulary", "Bedfordshire Police"))
    code, _, err = _run_counts(home, tmp_path / "out", capsys)
    assert code == 2
    assert f"{f}: the file name says force 'hertfordshire' but 6 of its 6 rows fall within 'Bedfordshire Police'" in err
    assert not (tmp_path / "out").exists()


def test_symlinked_folders_odd_names_and_skipped_files(tmp_path, capsys):
    home = make_home(tmp_path / "home")
    street = _street(home)
    # the months live elsewhere and are linked in; odd but unambiguous names
    elsewhere = tmp_path / "elsewhere" / "2025"
    elsewhere.mkdir(parents=True)
    (street / "2025-01-hertfordshire-street.csv").rename(elsewhere / "2025-01-HERTFORDSHIRE-street.CSV")
    (street / "2025-02-hertfordshire-street.csv.gz").rename(elsewhere / "2025-02-hertfordshire-street.csv.GZ")
    (street / "linked").symlink_to(elsewhere, target_is_directory=True)
    (street / "loop").symlink_to(street, target_is_directory=True)  # a link back up: read once
    (street / "2025-01-hertfordshire-outcomes.csv").write_text("Crime ID,Month\n")
    (street / "notes.txt").write_text("downloaded by hand")
    (street / "dangling").symlink_to(tmp_path / "nowhere")
    out = tmp_path / "out"
    code, stdout, err = _run_counts(home, out, capsys)
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    acc = manifest["row_accounting"]
    assert acc["rows_read"] == 18 and acc["kept"] == 12 and acc["balanced"]  # all three months, each once
    assert manifest["months"]["present"] == ["2024-01", "2025-01", "2025-02"]
    skipped = {Path(s["path"]).name: s["reason"] for s in acc["skipped"]}
    assert "outcomes" in skipped["2025-01-hertfordshire-outcomes.csv"]
    assert "not a police.uk street-level file name" in skipped["notes.txt"]
    assert skipped["dangling"] == "broken symbolic link"
    for name in ("2025-01-hertfordshire-outcomes.csv", "notes.txt", "dangling"):
        assert name in stdout
    assert folder_matches_manifest(out) == []


def test_crime_type_spellings_are_read_or_named(tmp_path, capsys):
    home = make_home(tmp_path / "home")
    f = _street(home) / "2025-01-hertfordshire-street.csv"
    text = f.read_text().replace("Anti-social behaviour", "Anti-Social Behaviour").replace("Shoplifting", "Shop lifting")
    f.write_text(text)
    out = tmp_path / "out"
    code, stdout, err = _run_counts(home, out, capsys)
    assert code == 0, err
    acc = json.loads((out / "manifest.json").read_text())["row_accounting"]
    assert acc["unknown_crime_types"] == {"Shop lifting": 1}
    assert acc["dropped"]["unknown_crime_type"] == 1
    assert "unknown crime types: 'Shop lifting' (1)" in stdout
    notes = next(x["notes"] for x in acc["files"] if x["path"] == str(f))
    assert "1 row(s) with crime type 'Anti-Social Behaviour' read as 'Anti-social behaviour'" in notes
    counts = __import__("pandas").read_csv(out / "counts" / "counts_force.csv")
    asb = counts[(counts["month"] == "2025-01") & (counts["crime_type"] == "Anti-social behaviour")]["count"].sum()
    assert asb == 1  # not 0


# --------------------------------------------------------------------------- unbounded input
_BOMB = r"""
import sys, json
from hotspots.io import read_police_uk
from hotspots._errors import InputFileError
try:
    read_police_uk({path!r})
    msg = None
except InputFileError as exc:
    msg = exc.message
# VmHWM: this process's peak (ru_maxrss would include the forking parent's, kept across exec)
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({{"msg": msg, "maxrss_mb": hwm / 1024}}))
"""


def test_a_gzip_bomb_stops_with_a_clear_error_in_bounded_memory(tmp_path):
    import zlib

    # 64 gzip members of 16 MiB of zeros each: 1 GiB decompressed from a ~1 MB file
    member = gzip.compress(b"\0" * (1 << 24), compresslevel=9)
    bomb = tmp_path / "2025-01-hertfordshire-street.csv.gz"
    bomb.write_bytes(member * 64)
    assert bomb.stat().st_size < 2_000_000 and zlib.crc32(member) != 0
    script = tmp_path / "bomb.py"
    script.write_text(_BOMB.format(path=str(bomb)))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["msg"] and "larger than 256 MiB when decompressed" in report["msg"] and str(bomb) in report["msg"]
    assert report["maxrss_mb"] < 1000, report


def test_a_zip_member_bomb_stops_too(tmp_path):
    from hotspots._errors import InputFileError
    from hotspots.io._files import Source, _read_bytes

    archive = tmp_path / "2025-01.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("2025-01/2025-01-hertfordshire-street.csv", b"\0" * (4 << 20))
    src = Source(archive, "2025-01/2025-01-hertfordshire-street.csv", "hertfordshire", "2025-01")
    with pytest.raises(InputFileError, match="larger than 1 MiB when decompressed"):
        _read_bytes(src, limit=1 << 20)
    assert len(_read_bytes(src, limit=8 << 20)) == 4 << 20


# --------------------------------------------------------------------------- configuration checked up front
_GOOD_CONFIG = (
    'name = "test"\nforces = ["hertfordshire"]\nforce_area_code = "E23000027"\n'
    '[periods]\nfirst = "2024-01"\nlast = "2025-02"\n'
    '[crime_groups]\n"All crime" = ["Burglary", "Shoplifting", "Vehicle crime"]\n"ASB" = ["Anti-social behaviour"]\n'
    '[hotspots]\ncrime_types = ["All crime"]\n'
)


def _config_run(tmp_path: Path, text: str, capsys, monkeypatch, env: dict | None = None) -> tuple[int, str, Path]:
    home = make_home(tmp_path / "home")
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(text)
    for k, v in (env or {}).items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "out"
    code, _, err = run_main(["--config", str(cfg), "--data", str(home), "--out", str(out), "run", "--stage", "counts"], capsys)
    return code, err, out


@pytest.mark.parametrize("text, env, expected", [
    (_GOOD_CONFIG + '[hotspot]\ncell_size = 250\n', {},
     ["unknown key or section 'hotspot' (did you mean 'hotspots'?); valid: name, data_dir"]),
    (_GOOD_CONFIG + '[outliers]\nadjustmnet = "additive"\n', {},
     ["unknown key(s) in [outliers]: ['adjustmnet']; valid: peer_groups, adjustment"]),
    (_GOOD_CONFIG.replace('last = "2025-02"', 'last = "2025-02"\ncurrent = ["2025-01", "2025-02"]\n'
                                              'comparison = ["2024-12", "2025-01"]'), {},
     ["periods.comparison = ['2024-12', '2025-01'] overlaps periods.current = ['2025-01', '2025-02']"]),
    (_GOOD_CONFIG.replace('forces = ["hertfordshire"]', "forces = 5"), {},
     ["forces = 5 must be a list of police.uk force slugs"]),
    (_GOOD_CONFIG.replace('[periods]\nfirst = "2024-01"\nlast = "2025-02"\n', 'periods = "2025"\n'), {},
     ["periods = '2025' must be a [section] table"]),
    ('hotspots = "x"\n' + _GOOD_CONFIG.replace('[hotspots]\ncrime_types = ["All crime"]\n', ""), {},
     ["hotspots = 'x' must be a [section] table"]),
    (_GOOD_CONFIG, {"HOTSPOTS_WORKERS": "one"}, ["$HOTSPOTS_WORKERS = 'one' is not a whole number of processes >= 1"]),
    (_GOOD_CONFIG + "cell_size = 100000\n", {},
     ["[hotspots] has 1 problem(s): cell_size = 100000 must be a number of metres between 100 and 5,000"]),
    (_GOOD_CONFIG.replace('"ASB" = ["Anti-social behaviour"]\n',
                          '"ASB" = ["Anti-social behaviour"]\n"Car crime" = ["Vehicle crime"]\n"car / crime" = ["Vehicle crime"]\n')
     .replace('crime_types = ["All crime"]', 'crime_types = ["Car crime", "car / crime", "ASB", "ASB"]'), {},
     ["crime_types 'Car crime' and 'car / crime' would share the layer and id prefix 'car-crime'",
      "crime_types lists 'ASB' twice"]),
    # several mistakes: one message listing all of them
    (_GOOD_CONFIG.replace('forces = ["hertfordshire"]', "forces = 5") + '[hotspot]\nx = 1\n[evaluation]\nbuffer_m = "wide"\n',
     {"HOTSPOTS_WORKERS": "0"},
     ["4 problems", "'hotspot'", "forces = 5", "HOTSPOTS_WORKERS = '0'", "evaluation.buffer_m = 'wide'"]),
])
def test_config_mistakes_are_one_clear_error_before_any_data_is_read(tmp_path, capsys, monkeypatch, text, env, expected):
    code, err, out = _config_run(tmp_path, text, capsys, monkeypatch, env)
    assert code == 2, err
    first = err.splitlines()[0]
    assert first.startswith(f"error: {tmp_path / 'cfg.toml'}: ")
    for e in expected:
        assert e in first, first
    assert "internal error" not in err and "Traceback" not in err and "[ingest]" not in err  # before any data is read
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert not out.exists()


def test_a_period_without_data_is_an_error_not_an_empty_map(tmp_path, capsys, monkeypatch):
    text = _GOOD_CONFIG.replace('last = "2025-02"', 'last = "2025-02"\ncurrent = ["2024-03", "2024-12"]')
    code, err, out = _config_run(tmp_path, text, capsys, monkeypatch)
    assert code == 2
    assert "periods.current = ['2024-03', '2024-12'] has no data: the data home holds 2024-01, 2025-01..2025-02" in err
    assert not out.exists()


def test_the_good_config_runs(tmp_path, capsys, monkeypatch):
    code, err, out = _config_run(tmp_path, _GOOD_CONFIG, capsys, monkeypatch)
    assert code == 0, err
    assert folder_matches_manifest(out) == []


# --------------------------------------------------------------------------- files in the wrong format
@pytest.mark.parametrize("kind, expected", [
    ("semicolon", "the columns are separated by semicolons"),
    ("xlsx", "an Excel workbook (or another zipped document), not a CSV file"),
])
def test_wrong_formats_name_the_cause(tmp_path, kind, expected):
    from hotspots._errors import InputFileError
    from hotspots.io import read_police_uk

    f = tmp_path / "2025-01-hertfordshire-street.csv"
    text = police_csv("2025-01")
    if kind == "semicolon":
        f.write_text(text.replace(",", ";"))
    else:
        buf = __import__("io").BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("[Content_Types].xml", "<Types/>")
        f.write_bytes(buf.getvalue())
    with pytest.raises(InputFileError) as info:
        read_police_uk(f)
    assert expected in info.value.message and str(f) in info.value.message
    assert len(info.value.message) < 600


def test_utf16_with_a_byte_order_mark_is_read(tmp_path):
    from hotspots.io import read_police_uk

    f = tmp_path / "2025-01-hertfordshire-street.csv"
    f.write_bytes(police_csv("2025-01").encode("utf-16"))
    res = read_police_uk(f)
    assert res.accounting.rows_read == 6 and len(res.points) == 5  # one row has no coordinates
    assert res.accounting.files[str(f)].encoding == "utf-16"


# --------------------------------------------------------------------------- library users get the same checks
def test_outlier_options_itself_rejects_unknown_keys_and_wrong_types():
    from types import SimpleNamespace

    from hotspots.stages.outliers import outlier_options

    with pytest.raises(ConfigError) as info:
        outlier_options(SimpleNamespace(extra={"outliers": {"adjustmnet": "additive", "harm_weights": 5,
                                                            "adjustment": "both"}}))
    msg = info.value.message
    assert "unknown key(s) in [outliers]: ['adjustmnet']" in msg
    assert "[outliers] harm_weights = 5 must be text" in msg
    assert "adjustment = 'both' must be" in msg
    with pytest.raises(ConfigError, match="must be a table"):
        outlier_options(SimpleNamespace(extra={"outliers": "x"}))
    assert outlier_options(SimpleNamespace(extra={})).adjustment == "multiplicative"


@pytest.mark.parametrize("value", ["one", "0", "-2", "1.5", "²"])
def test_a_bad_hotspots_workers_is_a_value_error_for_library_users(monkeypatch, value):
    from hotspots._parallel import max_workers, process_map

    monkeypatch.setenv("HOTSPOTS_WORKERS", value)
    with pytest.raises(ValueError, match=r"\$HOTSPOTS_WORKERS = .* is not a whole number of processes >= 1"):
        max_workers()
    with pytest.raises(ConfigError):  # also a HotspotsError: the CLI prints one line
        process_map(abs, [1, 2])


def test_a_good_hotspots_workers_caps_the_workers(monkeypatch):
    from hotspots._parallel import _cpu_count, max_workers

    monkeypatch.setenv("HOTSPOTS_WORKERS", " 1 ")
    assert max_workers() == 1
    monkeypatch.setenv("HOTSPOTS_WORKERS", "")
    assert max_workers() == (_cpu_count() if sys.platform.startswith("linux") else 1)


# --------------------------------------------------------------------------- many treated areas: vectorised, same answers
def _random_areas(n: int, seed: int):
    import numpy as np
    import shapely

    rng = np.random.default_rng(seed)
    geoms = []
    for _ in range(n):
        x0, y0, k = rng.uniform(0, 3000), rng.uniform(0, 3000), int(rng.integers(5, 12))
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        r = rng.uniform(40, 250) * rng.uniform(0.6, 1.0, k)
        geoms.append(shapely.Polygon(np.c_[x0 + r * np.cos(ang), y0 + r * np.sin(ang)]))
    geoms = shapely.make_valid(np.array(geoms, dtype=object))
    return geoms[shapely.get_type_id(geoms) == 3]  # as read_boundary leaves them: valid polygons


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_buffer_rings_match_the_direct_construction(seed):
    """Every ring = buffer minus the union of ALL treated areas, clipped: the vectorised rings are the same sets."""
    import numpy as np
    import shapely

    from hotspots.evaluation.areas import _rings

    geoms = _random_areas(60, seed)  # overlapping and touching areas, some near the clip edge
    clip = shapely.Polygon([(-200, -200), (3300, 0), (2800, 3100), (100, 2700)])
    union = shapely.union_all(geoms)
    expected = shapely.intersection(shapely.difference(shapely.buffer(geoms, 250, quad_segs=16), union), clip)
    got = _rings(geoms, 250.0, clip)
    assert shapely.area(shapely.symmetric_difference(got, expected)).max() < 1e-6
    assert shapely.area(shapely.intersection(got, union)).max() < 1e-6  # no ring covers a treated area
    assert shapely.is_valid(got).all() and not shapely.is_empty(got).any()
    unclipped = _rings(geoms, 250.0, None)
    assert np.allclose(shapely.area(unclipped), shapely.area(shapely.difference(shapely.buffer(geoms, 250, quad_segs=16),
                                                                                union)))


@pytest.mark.parametrize("tile_cells", [1, 3, 16])
def test_overlap_areas_match_the_direct_intersection(tile_cells):
    import numpy as np
    import shapely

    from hotspots.evaluation.areas import _overlap_area
    from hotspots.geo.grid import make_grid

    geoms = _random_areas(80, 7)
    union = shapely.union_all(np.r_[geoms, shapely.buffer(geoms[:10], 120)])
    study = shapely.Polygon([(-300, -100), (3400, 200), (3000, 3300), (0, 2900)])
    cells = np.asarray(make_grid(study, 150.0, crs=27700).geometry.values)
    got = _overlap_area(cells, union, tile_cells=tile_cells)
    expected = shapely.area(shapely.intersection(cells, union))
    assert np.abs(got - expected).max() < 1e-6
    assert (got > 1).sum() > 100 and (got == 0).sum() > 100 and ((got > 1) & (got < 150**2 - 1)).sum() > 50
    assert (_overlap_area(cells, shapely.Polygon()) == 0).all() and len(_overlap_area(cells[:0], union)) == 0


# --------------------------------------------------------------------------- the hostile-input corpus, through the CLI
def _semicolon(home, tmp):
    f = _street(home) / "2025-01-hertfordshire-street.csv"
    f.write_text(f.read_text().replace(",", ";"))
    return {}


def _xlsx(home, tmp):
    buf = __import__("io").BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # what "Save as Excel" then renaming to .csv gives
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
    (_street(home) / "2025-01-hertfordshire-street.csv").write_bytes(buf.getvalue())
    return {}


def _utf16(home, tmp):
    f = _street(home) / "2025-01-hertfordshire-street.csv"
    f.write_bytes(f.read_text().encode("utf-16"))
    return {"check": lambda manifest: [x["encoding"] for x in manifest["inputs"]["police_files"]
                                       if x["path"] == str(f)] == ["utf-16"]}


def _utf16_without_bom(home, tmp):
    f = _street(home) / "2025-01-hertfordshire-street.csv"
    f.write_bytes(f.read_text().encode("utf-16-le"))
    return {"check": lambda manifest: [x["encoding"] for x in manifest["inputs"]["police_files"]
                                       if x["path"] == str(f)] == ["utf-16-le"]}


def _tabs(home, tmp):  # Excel's "Unicode text": UTF-16 with tabs
    f = _street(home) / "2025-01-hertfordshire-street.csv"
    f.write_bytes(f.read_text().replace(",", "\t").encode("utf-16"))
    return {}


def _config(text, needs_data=False):
    def mutate(home, tmp):
        return {"config": text, "needs_data": needs_data}  # needs_data: the months present must be known first
    return mutate


def _town_centres(home, tmp):
    import geopandas as gpd
    from shapely.geometry import box

    path = tmp / "town_centres.gpkg"
    gpd.GeoDataFrame({"code": ["TC1", "TC1"], "name": ["Town", "Other"]},
                     geometry=[box(515000, 205000, 516000, 206000), box(516500, 205000, 517000, 206000)],
                     crs=27700).to_file(path)
    return {"config": _GOOD_CONFIG + f'[geography]\ntown_centres = "{path}"\n', "expect_path": path}


def _two_layers(home, tmp):
    import geopandas as gpd
    from shapely.geometry import box

    path = tmp / "patrols.gpkg"
    g = gpd.GeoDataFrame({"name": ["Beat 1"]}, geometry=[box(515000, 205000, 515500, 205500)], crs=27700)
    g.to_file(path, layer="beats_2025")
    g.to_file(path, layer="beats_2024")
    return {"args": ["evaluate", "--areas", str(path), "--name-column", "name"]}


def _evaluate_options(home, tmp):
    import geopandas as gpd
    from shapely.geometry import box

    path = tmp / "patrols.gpkg"
    gpd.GeoDataFrame({"name": ["Beat 1"]}, geometry=[box(515000, 205000, 515500, 205500)], crs=27700).to_file(path)
    return {"args": ["evaluate", "--areas", str(path), "--name-column", "beat", "--before", "2024",
                     "--buffer-m", "-5", "--crime-type", "Burglarry"]}


def _other_force(home, tmp):
    f = _street(home) / "2025-01-hertfordshire-street.csv"
    f.write_text(f.read_text().replace("Hertfordshire Constabulary", "Bedfordshire Police"))
    return {}


def _partial_month(home, tmp):
    partial = "".join(police_csv("2025-01").splitlines(keepends=True)[:3])
    (_street(home) / "2025-01-hertfordshire-street.csv.gz").write_bytes(gzip.compress(partial.encode()))
    return {}


_CORPUS = {
    # name: (build, exit code, message fragments, rows read by a successful run)
    "semicolon-separated file": (_semicolon, 2, ["2025-01-hertfordshire-street.csv", "separated by semicolons"], None),
    "Excel workbook named .csv": (_xlsx, 2, ["2025-01-hertfordshire-street.csv", "an Excel workbook"], None),
    "UTF-16 file": (_utf16, 0, [], 18),
    "UTF-16 file without a byte-order mark": (_utf16_without_bom, 0, [], 18),
    "tab-separated UTF-16 (Excel Unicode text)": (_tabs, 2, ["2025-01-hertfordshire-street.csv",
                                                              "the columns are separated by tabs"], None),
    "comparison period inside the analysis period": (
        _config(_GOOD_CONFIG.replace('last = "2025-02"', 'last = "2025-02"\ncurrent = ["2024-01", "2025-02"]\n'
                                                        'comparison = ["2025-01", "2025-01"]')),
        2, ["periods.comparison = ['2025-01', '2025-01'] overlaps periods.current"], None),
    "analysis period without data": (
        _config(_GOOD_CONFIG.replace('last = "2025-02"', 'last = "2025-02"\ncurrent = ["2024-03", "2024-12"]'), True),
        2, ["periods.current = ['2024-03', '2024-12'] has no data"], None),
    "forces = 5": (_config(_GOOD_CONFIG.replace('forces = ["hertfordshire"]', "forces = 5")), 2,
                   ["forces = 5 must be a list"], None),
    'periods = "2025"': (_config(_GOOD_CONFIG.replace('[periods]\nfirst = "2024-01"\nlast = "2025-02"\n', 'periods = "2025"\n')),
                         2, ["periods = '2025' must be a [section] table"], None),
    'hotspots = "x"': (_config('hotspots = "x"\n' + _GOOD_CONFIG.replace('[hotspots]\ncrime_types = ["All crime"]\n', "")),
                       2, ["hotspots = 'x' must be a [section] table"], None),
    "misspelt [outliers] key and [hotspot] section": (
        _config(_GOOD_CONFIG + '[hotspot]\nx = 1\n[outliers]\nadjustmnet = "additive"\n'), 2,
        ["2 problems", "'hotspot'", "unknown key(s) in [outliers]: ['adjustmnet']"], None),
    "100 km cells": (_config(_GOOD_CONFIG + "cell_size = 100000\n"), 2,
                     ["cell_size = 100000 must be a number of metres between 100 and 5,000"], None),
    "selections sharing a slug": (
        _config(_GOOD_CONFIG.replace('"ASB" = ["Anti-social behaviour"]\n',
                                     '"ASB" = ["Anti-social behaviour"]\n"Car crime" = ["Vehicle crime"]\n'
                                     '"CAR-CRIME" = ["Vehicle crime"]\n')
                .replace('crime_types = ["All crime"]', 'crime_types = ["Car crime", "CAR-CRIME"]')),
        2, ["'Car crime' and 'CAR-CRIME' would share the layer and id prefix 'car-crime'"], None),
    "HOTSPOTS_WORKERS=one": (lambda home, tmp: {"env": {"HOTSPOTS_WORKERS": "one"}}, 2,
                             ["$HOTSPOTS_WORKERS = 'one' is not a whole number of processes >= 1"], None),
    "town centres with a repeated code": (_town_centres, 2,
                                          ["town centres must have unique codes and names: code 'TC1' is used by features [1, 2]"],
                                          None),
    "--areas GeoPackage with two layers": (_two_layers, 2, ["holds 2 layers (beats_2025, beats_2024)"], None),
    "evaluate option mistakes": (_evaluate_options, 2,
                                 ["evaluation.buffer_m = -5.0 must be", "evaluation.before = ['2024'] must be",
                                  "unknown name(s) ['Burglarry']", "has no column 'beat'"], None),
    "another force's rows under a Hertfordshire name": (_other_force, 2,
                                                        ["6 of its 6 rows fall within 'Bedfordshire Police'"], None),
    "an old partial month beside the revised one": (_partial_month, 2, ["two different files for hertfordshire 2025-01"], None),
}


@pytest.mark.parametrize("name", sorted(_CORPUS))
def test_hostile_corpus(name, tmp_path, capsys, monkeypatch):
    """Each case after a good run into the same --out: the exit code, one clear message (no traceback, no
    "internal error"), the row accounting, and an output folder that matches its manifest (a failed run leaves
    the previous run's files untouched)."""
    build, code_expected, fragments, rows = _CORPUS[name]
    home = make_home(tmp_path / "home")
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(_GOOD_CONFIG)
    out = tmp_path / "out"
    code, _, err = run_main(["--config", str(cfg), "--data", str(home), "--out", str(out), "--quiet", "run",
                             "--stage", "counts"], capsys)
    assert code == 0, err
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    case = build(home, tmp_path) or {}
    if "config" in case:
        cfg.write_text(case["config"])
    for k, v in case.get("env", {}).items():
        monkeypatch.setenv(k, v)
    code, stdout, err = run_main(["--config", str(cfg), "--data", str(home), "--out", str(out)]
                                 + case.get("args", ["run", "--stage", "counts"]), capsys)
    assert code == code_expected, err
    assert "internal error" not in err and "Traceback" not in err
    manifest = json.loads((out / "manifest.json").read_text())
    acc = manifest["row_accounting"]
    assert acc["balanced"] and acc["rows_read"] == acc["kept"] + sum(acc["dropped"].values())
    assert folder_matches_manifest(out) == []
    if code_expected:
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and len(errors[0]) < 1500, err
        for fragment in fragments:
            assert fragment in errors[0], errors[0]
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # the previous run, untouched
        if case.get("args", ["run"])[0] == "evaluate" or "config" in case and not case.get("needs_data") \
                and "town_centres" not in case["config"]:
            assert "[ingest]" not in err  # found before any data was read
    else:
        assert acc["rows_read"] == rows and manifest != json.loads(before[out / "manifest.json"])
        for fragment in fragments:
            assert fragment in stdout + err
        assert case.get("check", lambda manifest: True)(manifest)


def test_an_unusable_areas_file_in_the_config_is_found_before_any_data_is_read(tmp_path):
    from hotspots.stages.run import _areas_file_problems

    assert _areas_file_problems(str(tmp_path / "nowhere.gpkg"))[0][0].endswith("'" + str(tmp_path / "nowhere.gpkg") + "': no such file")
    junk = tmp_path / "areas.gpkg"
    junk.write_text("not a GeoPackage")
    (message, hint), = _areas_file_problems(str(junk))
    assert "cannot be read as a polygon file" in message and "GeoPackage, GeoJSON or Shapefile" in hint
    _two_layers(None, tmp_path)
    (message, _), = _areas_file_problems(str(tmp_path / "patrols.gpkg"))
    assert "holds 2 layers (beats_2025, beats_2024)" in message
