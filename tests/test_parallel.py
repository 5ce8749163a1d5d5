"""Worker processes (:mod:`hotspots._parallel`) and the side-by-side stage schedule of ``hotspots run``.

``hotspots run`` runs the counts, outliers and evaluation stages in a forked
process beside the hotspots stage.  These tests check that this changes
nothing a user sees: the same files with the same contents, the same manifest
(inputs, settings, automatic choices, outputs), errors raised with their hints,
and no process left behind when either side fails.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
from pathlib import Path

import pytest

from hotspots import _parallel
from hotspots._errors import ConfigError
from hotspots._parallel import RemoteTraceback, fork_call, max_workers, process_map

from test_cli import make_home, run_main


@pytest.fixture
def two_cpus(monkeypatch):
    """Behave as on the 2-core CI machine whatever this machine has (forking works on one CPU too)."""
    monkeypatch.setattr(_parallel, "_cpu_count", lambda: 2)
    monkeypatch.delenv("HOTSPOTS_WORKERS", raising=False)


# --------------------------------------------------------------------------- the primitives
def test_fork_call_returns_what_the_function_returns(two_cpus):
    data = list(range(1000))
    pending = fork_call(lambda: (os.getpid(), sum(data)), name="sum")
    assert pending is not None
    child_pid, total = pending.result()
    assert total == 499500
    assert child_pid != os.getpid()  # it really ran in another process


def test_fork_call_changes_stay_in_the_child(two_cpus):
    box = {"value": 1}

    def change():
        box["value"] = 2
        return box["value"]

    assert fork_call(change, name="change").result() == 2
    assert box["value"] == 1


def test_fork_call_raises_the_childs_error_with_its_hint_and_traceback(two_cpus):
    def fail():
        raise ConfigError("bad [evaluation] buffer_m = -1", hint="use a positive number of metres")

    pending = fork_call(fail, name="failing")
    with pytest.raises(ConfigError) as info:
        pending.result()
    assert info.value.hint == "use a positive number of metres"
    assert "bad [evaluation] buffer_m" in str(info.value)
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "in fail" in str(info.value.__cause__)  # the child's own traceback, for --verbose


def test_fork_call_reports_a_child_that_dies(two_cpus):
    pending = fork_call(lambda: os.kill(os.getpid(), signal.SIGKILL), name="doomed")
    with pytest.raises(RuntimeError, match=r"doomed stopped without a result \(exit code -9"):
        pending.result()


def test_fork_call_reports_a_result_that_cannot_travel(two_cpus):
    pending = fork_call(lambda: (lambda: None), name="unpicklable")
    with pytest.raises(RuntimeError, match="could not be sent back"):
        pending.result()


def test_cancel_stops_the_child(two_cpus):
    import time

    pending = fork_call(lambda: time.sleep(60), name="sleeper")
    pending.cancel()
    assert pending._process.exitcode == -signal.SIGTERM
    assert not pending._process.is_alive()


def test_one_worker_means_no_worker_processes(monkeypatch):
    monkeypatch.setenv("HOTSPOTS_WORKERS", "1")
    assert max_workers() == 1
    assert fork_call(lambda: 1, name="x") is None
    pids = process_map(lambda i: os.getpid(), [1, 2, 3])
    assert set(pids) == {os.getpid()}


def test_process_map_keeps_item_order(two_cpus):
    items = list(range(12))
    out = process_map(lambda i: (i * i, os.getpid()), items, weights=[(i * 7) % 5 for i in items])
    assert [v for v, _ in out] == [i * i for i in items]
    assert os.getpid() not in {pid for _, pid in out}


# --------------------------------------------------------------------------- hotspots run, side by side
_TIMESTAMP = re.compile(rb"\d{1,2} [A-Z][a-z]+ \d{4} \d{2}:\d{2}")
_FOLIUM_ID = re.compile(rb"[0-9a-f]{32}")


def _comparable(path: Path) -> bytes:
    """A file's content without what differs between any two runs (report timestamps, folium's random ids)."""
    data = path.read_bytes()
    if path.suffix == ".html":
        data = _FOLIUM_ID.sub(b"ID", _TIMESTAMP.sub(b"TIME", data))
    return data


def _run(home: Path, out: Path, capfd, monkeypatch, workers: str) -> tuple[str, dict]:
    monkeypatch.setenv("HOTSPOTS_WORKERS", workers)
    monkeypatch.setenv("HOTSPOTS_CACHE", "off")  # both runs do all the work (the records cache: test_cache.py)
    code, stdout, err = run_main(["--data", str(home), "--out", str(out), "run"], capfd)
    assert code == 0, err
    return err, json.loads((out / "manifest.json").read_text())


def test_run_side_by_side_gives_the_same_outputs_and_manifest_as_one_after_another(tmp_path, capfd, monkeypatch,
                                                                                     two_cpus):
    home = make_home(tmp_path / "home")
    err_serial, serial = _run(home, tmp_path / "serial", capfd, monkeypatch, "1")
    err_side, side = _run(home, tmp_path / "side", capfd, monkeypatch, "2")

    stages = ["counts", "outliers", "hotspots", "evaluate"]
    assert serial["schedule"] == {"stages": stages, "side_by_side": [stages]}
    # the side process takes the other stages in order; this process takes those not begun once hotspots is done
    here, beside = side["schedule"]["side_by_side"]
    assert side["schedule"]["stages"] == stages and here[0] == "hotspots"
    assert beside + here[1:] == ["counts", "outliers", "evaluate"] and beside
    _assert_same_runs(tmp_path / "serial", tmp_path / "side", serial, side)
    # progress lines from the two processes are tagged with their stage
    assert re.search(r"^\[outliers\] ", err_side, re.M) and re.search(r"^\[hotspots\]  ", err_side, re.M)
    assert not re.search(r"^\[hotspots\]  ", err_serial, re.M)  # one at a time: no tags needed


def test_side_stages_not_begun_when_hotspots_is_done_run_here(tmp_path, capfd, monkeypatch, two_cpus):
    """A warm re-run's hotspots stage ends first: the stages still waiting run in this process, same outputs."""
    import time

    import sys

    from hotspots.stages import run as run_function

    run_module = sys.modules[run_function.__module__]  # the module (its name is also the function's)

    home = make_home(tmp_path / "home")
    _, serial = _run(home, tmp_path / "serial", capfd, monkeypatch, "1")
    flag = tmp_path / "evaluate-begun"
    real = dict(run_module.STAGES)

    def held_counts(ctx):  # the side process stays in its first stage until this process has begun the last
        deadline = time.monotonic() + 300
        while not flag.exists():
            assert time.monotonic() < deadline, "the evaluation was never begun beside the side process"
            time.sleep(0.05)
        return real["counts"](ctx)

    def marked_evaluate(ctx):
        flag.touch()
        return real["evaluate"](ctx)

    monkeypatch.setitem(run_module.STAGES, "counts", held_counts)
    monkeypatch.setitem(run_module.STAGES, "evaluate", marked_evaluate)
    _, side = _run(home, tmp_path / "side", capfd, monkeypatch, "2")
    assert side["schedule"]["side_by_side"] == [["hotspots", "outliers", "evaluate"], ["counts"]]
    _assert_same_runs(tmp_path / "serial", tmp_path / "side", serial, side)


def _assert_same_runs(serial_dir: Path, side_dir: Path, serial: dict, side: dict) -> None:
    """The side-by-side run's manifest and files are those of the run one stage after another."""
    import geopandas as gpd
    import pyogrio

    stages = ["counts", "outliers", "hotspots", "evaluate"]
    # what the side process learnt comes back: summaries, automatic choices, geography files it read, timings
    for key in ("stages", "settings", "inputs", "months", "row_accounting", "lsoa_harmonisation"):
        assert side[key] == serial[key], key
    assert list(side["summaries"]) == stages
    assert _same_but_seconds(side, serial)
    assert set(side["timings_s"]) == set(serial["timings_s"]) >= set(stages)
    assert any(k.startswith("evaluation.") for k in side["settings"]["auto"])  # chosen in either process
    assert [w["path"] for w in side["outputs"]] == _listed_in_stage_order(serial["outputs"])
    # every file listed, once, with the bytes and checksum of the file on disk; the same files as one by one
    listed = {w["path"]: w for w in side["outputs"]}
    assert len(listed) == len(side["outputs"])
    assert set(listed) == {w["path"] for w in serial["outputs"]}
    on_disk = {str(p.relative_to(side_dir)) for p in side_dir.rglob("*") if p.is_file()}
    assert on_disk - {"manifest.json"} == set(listed)
    # the same contents: CSV, JSON and PNG byte for byte, HTML but for timestamps and folium ids, GeoPackage by layer
    for rel in sorted(listed):
        a, b = serial_dir / rel, side_dir / rel
        if a.suffix == ".gpkg":
            for layer, geometry_type in pyogrio.list_layers(a):
                x, y = gpd.read_file(a, layer=layer), gpd.read_file(b, layer=layer)
                if geometry_type is None:  # the layer_styles table (QGIS styles): attributes only
                    assert x.equals(y), (rel, layer)
                    continue
                assert x.drop(columns="geometry").equals(y.drop(columns="geometry")), (rel, layer)
                assert x.geometry.geom_equals_exact(y.geometry, 0).all(), (rel, layer)
        else:
            assert _comparable(a) == _comparable(b), rel


def _listed_in_stage_order(outputs: list[dict]) -> list[str]:
    """The paths of a one-process run's outputs in the order a side-by-side run lists them: hotspots first."""
    folders = {"hotspots": ("hotspots", "maps")}
    first = [w["path"] for w in outputs if w["path"].split("/", 1)[0] in folders["hotspots"]]
    return first + [w["path"] for w in outputs if w["path"] not in first]


def _same_but_seconds(a: dict, b: dict) -> bool:
    def strip(s):
        s = json.loads(json.dumps(s))
        s.get("hotspots", {}).pop("seconds", None)
        return s

    return strip(a["summaries"]) == strip(b["summaries"])


def test_an_error_in_the_side_stages_fails_the_run_with_its_hint(tmp_path, capfd, monkeypatch, two_cpus):
    from hotspots import stages as pipeline
    def bad_evaluate(ctx):
        raise ConfigError("the treated-areas file has no polygons", hint="check --areas")

    monkeypatch.setitem(pipeline.STAGES, "evaluate", bad_evaluate)
    home = make_home(tmp_path / "home")
    code, _, err = run_main(["--data", str(home), "--out", str(tmp_path / "o"), "run"], capfd)
    assert code == 2
    assert "the treated-areas file has no polygons" in err and "check --areas" in err
    assert not (tmp_path / "o" / "manifest.json").exists()
    assert multiprocessing.active_children() == []


def test_an_error_in_the_hotspots_stage_stops_the_side_process(tmp_path, capfd, monkeypatch, two_cpus):
    from hotspots import stages as pipeline
    def slow_outliers(ctx):
        import time

        time.sleep(60)  # would hold the run for a minute if the side process were not stopped
        return {}

    def bad_hotspots(ctx):
        raise ConfigError("no grid cells in the study area", hint="choose a smaller cell_size")

    monkeypatch.setitem(pipeline.STAGES, "outliers", slow_outliers)
    monkeypatch.setitem(pipeline.STAGES, "hotspots", bad_hotspots)
    home = make_home(tmp_path / "home")
    code, _, err = run_main(["--data", str(home), "--out", str(tmp_path / "o"), "run"], capfd)
    assert code == 2 and "no grid cells in the study area" in err
    assert multiprocessing.active_children() == []


# --------------------------------------------------------------------------- stopping a run: SIGTERM, SIGKILL
_SLOW_RUN = r"""
import sys, time
sys.path.insert(0, {tests!r})
from hotspots import stages as pipeline
from hotspots import _parallel

_parallel._cpu_count = lambda: 2

def slow_outliers(ctx):
    # a side stage in the middle of writing a file: SIGTERM must leave no part-file behind
    with ctx.out.atomic("outliers/slow.csv", "w") as fh:
        fh.write("a,b\n")
        ctx.progress.info("  writing")
        time.sleep(120)
    return {{}}

def slow_hotspots(ctx):
    ctx.progress.info("  working")
    time.sleep(120)
    return {{}}

pipeline.STAGES["outliers"] = slow_outliers
pipeline.STAGES["hotspots"] = slow_hotspots
pipeline.STAGES["evaluate"] = lambda ctx: {{}}
from hotspots.cli import main
main(["--data", {home!r}, "--out", {out!r}, "run"])
"""


def _start_slow_run(tmp_path: Path):
    import subprocess
    import sys
    import time

    home = make_home(tmp_path / "home")
    out = tmp_path / "out"
    script = tmp_path / "slow_run.py"
    script.write_text(_SLOW_RUN.format(tests=str(Path(__file__).parent), home=str(home), out=str(out)))
    env = {k: v for k, v in os.environ.items() if k != "HOTSPOTS_WORKERS"}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env)
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # both processes are inside their stages once both have said so
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        text = "".join(lines)
        if "[outliers]  writing" in text and "[hotspots]  working" in text:
            return proc, out
    proc.kill()
    raise AssertionError("the slow run never reached its stages:\n" + "".join(lines))


def _group_left(pgid: int, wait_s: float = 10.0) -> list[str]:
    import subprocess
    import time

    deadline = time.monotonic() + wait_s
    while True:
        left = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True).stdout.split()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def _part_files(out: Path) -> list[str]:
    return [str(p) for p in out.rglob("*") if p.is_file() and (".part" in p.name or p.name.startswith("."))]


def test_sigterm_stops_every_process_and_leaves_no_part_files(tmp_path):
    proc, out = _start_slow_run(tmp_path)
    os.kill(proc.pid, signal.SIGTERM)  # the main process only, as a scheduler or `kill` would
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM)" in err
    assert _group_left(proc.pid) == []
    assert _part_files(out) == []
    assert not (out / "outliers" / "slow.csv").exists() and not (out / "manifest.json").exists()


def test_a_killed_run_leaves_no_worker_behind(tmp_path):
    proc, out = _start_slow_run(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)  # cannot be caught: the side process must notice by itself
    proc.wait(timeout=30)
    assert _group_left(proc.pid) == []
    # the side process (which got SIGTERM when its parent died) removed its own part-file
    assert [p.name for p in out.rglob("*") if "slow" in p.name] == []


def test_shared_geography_is_read_before_the_fork_and_a_bad_layer_left_to_its_stage():
    """The layers both processes use are read once in the parent; one that fails is not read further, nor raised."""
    from types import SimpleNamespace

    from hotspots._errors import DataNotFoundError
    from hotspots.stages import run as run_module

    read = []

    class Geography:
        def __getattr__(self, name):
            read.append(name)
            if name == "wards":
                raise DataNotFoundError("no ward lookup")
            return name

    stages_run = __import__("sys").modules[run_module.__module__]
    stages_run._read_shared_geography(SimpleNamespace(geography=Geography()))
    assert read == ["force", "districts", "wards"]  # stopped at the failing layer, which its stage reports
    assert set(stages_run.SHARED_LAYERS) >= {"force", "districts", "wards"}


def test_long_lived_scope_freezes_what_is_alive_and_forks_inside_it_leave_it_frozen():
    import gc

    from hotspots._parallel import keep_long_lived, long_lived_scope, process_map

    gc.unfreeze()
    keep_long_lived()  # outside a scope: nothing
    assert gc.get_freeze_count() == 0
    with long_lived_scope():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        made = [[i] for i in range(5000)]  # new objects: not frozen until keep_long_lived
        keep_long_lived()
        # (slack: a thread of the test runner, pytest-xdist's, frees a few frozen objects meanwhile)
        assert gc.get_freeze_count() >= frozen + 5000 - 100
        with long_lived_scope():  # nested: leaving it unfreezes nothing
            pass
        assert gc.get_freeze_count() >= frozen + 5000 - 100
        before = gc.get_freeze_count()
        assert process_map(lambda x: x * 2, [1, 2, 3]) == [2, 4, 6]  # forks (where it can) leave the scope's freeze
        # unfreezing would empty the permanent generation; a few frozen objects may die meanwhile (freed by their
        # reference counts, as another test's leftovers can be), so the count is compared with some slack
        assert gc.get_freeze_count() >= max(before - 100, frozen)
    assert gc.get_freeze_count() == 0
    assert len(made) == 5000
