"""CPU tokens (hotspots._parallel): never more busy processes than CPUs.

On two CPUs a side process started by ``fork_call`` holds the second CPU, so
``process_map`` runs one item at a time until the side process ends, then two.
Items and the side process report their start and end on the system-wide
monotonic clock (the same in every process on Linux).
"""

from __future__ import annotations

import os
import sys
import time

import pytest

from hotspots import _parallel
from hotspots._parallel import fork_call, process_map

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker processes are Linux-only")


@pytest.fixture
def cpus(monkeypatch):
    def set_cpus(n: int):
        monkeypatch.setattr(_parallel, "_cpu_count", lambda: n)
        monkeypatch.delenv("HOTSPOTS_WORKERS", raising=False)
    return set_cpus


def _busy(seconds: float) -> tuple[float, float, int]:
    start = time.monotonic()
    time.sleep(seconds)
    return start, time.monotonic(), os.getpid()


def _overlapping_pairs(intervals):
    return [(a, b) for i, a in enumerate(intervals) for b in intervals[i + 1:] if a[0] < b[1] and b[0] < a[1]]


def test_items_run_two_at_a_time_on_two_cpus(cpus):
    cpus(2)
    out = process_map(_busy, [0.4] * 4)
    assert len({pid for _, _, pid in out}) == 2
    assert _overlapping_pairs(out)  # two CPUs free: two items at once


def test_a_side_process_holds_a_cpu_until_it_ends(cpus):
    cpus(2)
    side = fork_call(lambda: _busy(1.2), name="side")
    assert side is not None
    items = process_map(_busy, [0.3] * 8)
    side_start, side_end, _ = side.result()
    pairs = _overlapping_pairs(items)
    # while the side process ran, one item at a time (three busy processes would oversubscribe two CPUs) ...
    assert all(max(a[0], b[0]) >= side_end for a, b in pairs), (side_end, items)
    # ... and two at a time once it had given its CPU back
    assert pairs


def test_no_second_side_process_when_every_cpu_is_busy(cpus):
    cpus(2)
    first = fork_call(lambda: _busy(0.5), name="first")
    second = fork_call(lambda: _busy(0.1), name="second")
    assert first is not None and second is None  # the caller runs the work itself, in order
    first.result()
    third = fork_call(lambda: _busy(0.1), name="third")  # the token came back with the first child
    assert third is not None
    third.result()


def test_a_failed_side_process_gives_its_cpu_back(cpus):
    cpus(2)

    def fail():
        raise ValueError("boom")

    side = fork_call(fail, name="failing")
    with pytest.raises(ValueError, match="boom"):
        side.result()
    items = process_map(_busy, [0.3] * 4)
    assert _overlapping_pairs(items)


def test_one_cpu_or_one_worker_runs_here(cpus, monkeypatch):
    cpus(1)
    assert fork_call(lambda: 1, name="x") is None
    assert {pid for _, _, pid in process_map(_busy, [0.01] * 3)} == {os.getpid()}
    cpus(2)
    monkeypatch.setenv("HOTSPOTS_WORKERS", "1")
    assert fork_call(lambda: 1, name="x") is None


def test_items_are_handed_out_while_alongside_runs(cpus):
    """``alongside`` keeps this process's CPU; the other CPU's worker gets its next item as soon as it is done
    (before, it waited for ``alongside`` to return), and never two items at once meanwhile."""
    cpus(2)
    window = []

    def alongside():
        start = time.monotonic()
        time.sleep(1.5)
        window.extend([start, time.monotonic()])

    items = process_map(_busy, [0.25] * 12, alongside=alongside)
    start, end = window
    during = [it for it in items if it[1] <= end]
    assert len(during) >= 3, (window, items)  # one after another on the free CPU, while alongside ran
    assert not _overlapping_pairs([it for it in items if it[0] < end]), (window, items)
    assert _overlapping_pairs(items)  # two at a time once alongside had given this process's CPU back


def test_the_workers_are_forked_before_alongside_runs(cpus):
    """With no CPU free at the start (a side process holds it), the first item is handed out by the thread of
    ``alongside``'s time; the workers must already exist then, forked by this thread (not by that one, while
    this one holds locks in ``alongside``)."""
    import multiprocessing
    import threading

    cpus(2)
    seen = []

    def alongside():
        seen.append((len(multiprocessing.active_children()), threading.active_count()))
        time.sleep(0.8)

    side = fork_call(lambda: _busy(0.4), name="side")
    assert side is not None
    before = len(multiprocessing.active_children())
    items = process_map(_busy, [0.1] * 6, alongside=alongside)
    side.result()
    assert len(items) == 6
    assert seen[0][0] >= before + 2, seen  # the pool's two workers were there before alongside began
