"""Shared helpers for the benchmarks: machine facts, timing, child processes."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def machine_info() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    versions = {}
    for name in ("numpy", "pandas", "pyarrow", "shapely", "geopandas", "scipy", "sklearn", "pyproj", "esda"):
        try:
            from importlib.metadata import version

            versions[name] = version("scikit-learn" if name == "sklearn" else name)
        except Exception:
            versions[name] = "-"
    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu,
        "ram_gib": round(mem_kb / 2**20, 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_avg_start": os.getloadavg(),
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
        "versions": versions,
    }


def maxrss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_LAUNCH = r"""
import json, os, sys
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
print(pid, file=open(sys.argv[1] + ".pid", "w"), flush=True)
_, status, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"utime": ru.ru_utime, "stime": ru.ru_stime, "maxrss_kb": ru.ru_maxrss,
               "code": os.waitstatus_to_exitcode(status)}, f)
"""


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
                ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _tree_pss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            pass
    return total / 1024


def run_measured(cmd: list[str], **kwargs) -> dict:
    """Run a command in a clean child: wall, CPU (user + sys) and peak memory of that child alone.

    The command is started by a small launcher process (``python -S``, ~10 MB)
    with ``posix_spawn``, and its resource usage is read there with ``wait4``:
    a child forked from this (possibly large) process would report this
    process's peak as its own (Linux carries the peak resident size across
    ``fork`` and ``exec``).  ``maxrss_mb`` is the peak RSS of the largest single
    process of the command's tree (``ru_maxrss`` of the command and the
    workers it waited for); ``tree_pss_peak_mb`` is the peak of the summed
    proportional set size (PSS: shared pages divided among their sharers) of the
    whole tree, sampled every 0.5 s (the tree listed every 2 s), i.e. the memory the run held at once.
    """
    import tempfile

    fd, report = tempfile.mkstemp(prefix="bench-", suffix=".json")
    os.close(fd)
    os.unlink(report)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-S", "-c", _LAUNCH, report, *map(str, cmd)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(kwargs.get("env") or {})},
                            cwd=kwargs.get("cwd"))
    out_chunks, err_chunks = [], []
    peak = [0.0]
    done = threading.Event()

    def pump(stream, sink):
        for line in stream:
            sink.append(line)

    def sample():
        # every 0.5 s; the process tree is listed again every 2 s (walking /proc costs the sampler CPU
        # that the measured command would otherwise have on a busy machine)
        tree, listed = [], 0.0
        while not done.wait(0.5):
            try:
                child = int(Path(report + ".pid").read_text())
            except (OSError, ValueError):
                continue
            if time.monotonic() - listed > 2.0:
                tree, listed = _descendants(child), time.monotonic()
            peak[0] = max(peak[0], _tree_pss_mb(tree))

    threads = [threading.Thread(target=pump, args=(proc.stdout, out_chunks)),
               threading.Thread(target=pump, args=(proc.stderr, err_chunks)), threading.Thread(target=sample)]
    for t in threads:
        t.start()
    proc.wait()
    wall = time.perf_counter() - t0
    done.set()
    for t in threads:
        t.join()
    try:
        usage = json.loads(Path(report).read_text())
    finally:
        for f in (report, report + ".pid"):
            with contextlib.suppress(OSError):
                os.unlink(f)
    return {
        "cmd": [str(c) for c in cmd],
        "returncode": usage["code"],
        "wall_s": round(wall, 3),
        "cpu_s": round(usage["utime"] + usage["stime"], 3),
        "maxrss_mb": round(usage["maxrss_kb"] / 1024, 1),
        "tree_pss_peak_mb": round(peak[0], 1),
        "load_avg_1min": os.getloadavg()[0],
        "stdout": "".join(out_chunks),
        "stderr": "".join(err_chunks),
    }


def launcher_floor_mb() -> float:
    """Peak RSS reported for ``true`` run through :func:`run_measured`: the floor under every figure."""
    return run_measured(["true"])["maxrss_mb"]


class Steps:
    """Wall and CPU time (all threads of this process) of named steps."""

    def __init__(self):
        self.steps: dict[str, dict] = {}

    @contextlib.contextmanager
    def __call__(self, name: str, **info):
        t0, c0 = time.perf_counter(), time.process_time()
        yield info
        self.steps[name] = {"wall_s": round(time.perf_counter() - t0, 3), "cpu_s": round(time.process_time() - c0, 3), **info}
        print(f"  {name:38s} {self.steps[name]['wall_s']:8.2f} s wall {self.steps[name]['cpu_s']:8.2f} s cpu", flush=True)


def child_json(result: dict) -> dict:
    """The JSON a benchmark child printed as its last stdout line."""
    lines = [line for line in result["stdout"].splitlines() if line.startswith("{")]
    if result["returncode"] != 0 or not lines:
        raise RuntimeError(f"benchmark child failed ({result['returncode']}): {' '.join(result['cmd'])}\n"
                           + result["stderr"][-3000:])
    return json.loads(lines[-1])


_PROBE = r"""
import time, numpy as np, pandas as pd
rng = np.random.default_rng(0)
x = rng.random(2_000_000)
codes = rng.integers(0, 5000, 1_000_000)
words = pd.Series(rng.integers(0, 300, 200_000)).astype(str)
best = float("inf")
for _ in range(3):
    t = time.perf_counter()
    np.sort(x)
    pd.DataFrame({"k": codes, "v": x[:1_000_000]}).groupby("k")["v"].agg(["sum", "mean", "max"])
    (words + "_x").str.upper().value_counts()
    total = 0
    for i in range(1_500_000):
        total += i % 7
    best = min(best, time.perf_counter() - t)
print(best)
"""


def cpu_probe() -> float:
    """Seconds a fixed single-threaded job (numpy sort, pandas groupby and strings, a Python loop) takes now.

    The dev and CI machines are shared virtual machines whose CPU speed
    drifts through the day (the same Hertfordshire run has measured from 27 to
    42 CPU seconds).  Recorded next to the timings so that runs on a slow
    spell and a quiet one can be told apart; lower is faster.
    """
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    return round(float(out.stdout.strip()), 3)
