"""The police.uk files read in a child process while the command starts up (:mod:`hotspots.io.ingest_ahead`)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from pathlib import Path

import pytest
from test_cli import make_home, run_main

from hotspots import _command, _parallel
from hotspots._errors import InputFileError
from hotspots.config import load_config
from hotspots.io import ingest_ahead
from hotspots.io.police_uk import read_police_uk


@pytest.fixture
def two_cpus(monkeypatch):
    monkeypatch.setattr(_parallel, "_cpu_count", lambda: 2)
    monkeypatch.delenv("HOTSPOTS_WORKERS", raising=False)
    monkeypatch.setenv("HOTSPOTS_CACHE", "off")


def _settings(home: Path):
    return load_config(None, sections=None)


def _alive(handle) -> bool:
    return handle._forked._process.is_alive() if handle._forked is not None else False


def test_the_child_reads_what_prepare_would_read(tmp_path, two_cpus):
    home = make_home(tmp_path / "home")
    settings = _settings(home)
    handle = ingest_ahead.start(settings, home, tmp_path / "out")
    assert handle is not None and handle.pending
    child_pid = handle._forked._process.pid
    call = ingest_ahead.reader_call(settings, home)
    got = handle.take(call)
    assert not handle.pending and child_pid != os.getpid()
    here = read_police_uk(**call)  # the same call made in this process
    assert got.points.equals(here.points)
    assert got.points.dtypes.equals(here.points.dtypes)
    assert got.accounting.summary_lines() == here.accounting.summary_lines()
    assert len(got.points) > 0


def test_another_call_stops_the_child_and_reads_here(tmp_path, two_cpus):
    home = make_home(tmp_path / "home")
    settings = _settings(home)
    handle = ingest_ahead.start(settings, home, tmp_path / "out")
    process = handle._forked._process
    call = {**ingest_ahead.reader_call(settings, home), "last_month": "2025-01"}
    assert handle.take(call) is None
    assert not process.is_alive() and not handle.pending


def test_a_bad_file_is_raised_by_take_with_the_readers_message(tmp_path, two_cpus):
    home = make_home(tmp_path / "home")
    bad = home / "police_uk" / "hertfordshire" / "street" / "2025-03-hertfordshire-street.csv"
    bad.write_text("not,a,police,file\n1,2,3,4\n")
    settings = _settings(home)
    call = ingest_ahead.reader_call(settings, home)
    with pytest.raises(InputFileError) as here:
        read_police_uk(**call)
    handle = ingest_ahead.start(settings, home, tmp_path / "out")
    with pytest.raises(InputFileError) as there:
        handle.take(call)
    assert str(there.value) == str(here.value) and there.value.hint == here.value.hint
    assert "2025-03-hertfordshire-street.csv" in str(there.value)


def test_a_child_that_dies_leaves_the_reading_to_this_process(tmp_path, two_cpus):
    home = make_home(tmp_path / "home")
    settings = _settings(home)
    handle = ingest_ahead.start(settings, home, tmp_path / "out")
    os.kill(handle._forked._process.pid, signal.SIGKILL)
    assert handle.take(ingest_ahead.reader_call(settings, home)) is None


def test_nothing_is_started_on_one_cpu_or_when_the_cache_holds_the_records(tmp_path, monkeypatch, capfd):
    home = make_home(tmp_path / "home")
    settings = _settings(home)
    monkeypatch.setenv("HOTSPOTS_WORKERS", "1")
    assert ingest_ahead.start(settings, home, tmp_path / "out") is None
    monkeypatch.setattr(_parallel, "_cpu_count", lambda: 2)
    monkeypatch.delenv("HOTSPOTS_WORKERS")
    cache = tmp_path / "cache"
    monkeypatch.setenv("HOTSPOTS_CACHE", str(cache))
    out = tmp_path / "out"
    handle = ingest_ahead.start(settings, home, out)
    assert handle is not None  # an empty cache: read ahead
    handle.cancel()
    assert not handle.pending
    code, _, err = run_main(["--data", str(home), "--out", str(out), "counts"], capfd)  # fills the cache
    assert code == 0, err
    assert ingest_ahead.start(settings, home, out) is None  # the cache holds them: nothing to read


def test_a_config_error_after_the_start_leaves_no_child(tmp_path, two_cpus, monkeypatch, capfd):
    """The child starts from the top of the config; a section's error is reported and the child is stopped."""
    home = make_home(tmp_path / "home")
    started = []
    real_start = ingest_ahead.start

    def recording_start(*args, **kwargs):
        started.append(real_start(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(_command, "start", recording_start)
    config = tmp_path / "bad.toml"
    from hotspots.config import default_config_path

    text = default_config_path().read_text()
    config.write_text(text.replace("[outliers]\n", "[outliers]\nno_such_setting = 1\n", 1))  # a section's error only
    code, _, err = run_main(["--config", str(config), "--data", str(home), "--out", str(tmp_path / "out"), "counts"],
                            capfd)
    assert code != 0 and "no_such_setting" in err
    assert started and started[0] is not None  # the child had been started
    assert not started[0].pending and not started[0]._forked
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("hotspots-police")]


def test_a_run_with_the_files_read_ahead_writes_what_a_run_without_writes(tmp_path, two_cpus, monkeypatch, capfd):
    home = make_home(tmp_path / "home")
    taken = []
    real_take = ingest_ahead.IngestAhead.take

    def recording_take(self, call):
        result = real_take(self, call)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(ingest_ahead.IngestAhead, "take", recording_take)
    code, _, err = run_main(["--data", str(home), "--out", str(tmp_path / "ahead"), "counts"], capfd)
    assert code == 0, err
    assert taken == [True]  # the child's records were used
    monkeypatch.setenv("HOTSPOTS_WORKERS", "1")
    code, _, err = run_main(["--data", str(home), "--out", str(tmp_path / "here"), "counts"], capfd)
    assert code == 0, err
    assert taken == [True]  # one CPU: nothing read ahead, nothing taken
    a = json.loads((tmp_path / "ahead" / "manifest.json").read_text())
    b = json.loads((tmp_path / "here" / "manifest.json").read_text())
    for key in ("inputs", "row_accounting", "lsoa_harmonisation", "summaries"):
        assert a[key] == b[key], key
    files = sorted(p.relative_to(tmp_path / "here") for p in (tmp_path / "here").rglob("*.csv"))
    assert files
    for rel in files:
        assert (tmp_path / "ahead" / rel).read_bytes() == (tmp_path / "here" / rel).read_bytes(), rel
