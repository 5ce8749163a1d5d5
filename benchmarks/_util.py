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


def run_measured(cmd: list[str], **kwargs) -> dict:
    """Run a command: wall time, CPU time (user + sys) and peak RSS of that child alone (wait4)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(kwargs.get("env") or {})}, cwd=kwargs.get("cwd"))
    out_chunks, err_chunks = [], []
    def pump(stream, sink):
        for line in stream:
            sink.append(line)

    threads = [threading.Thread(target=pump, args=(proc.stdout, out_chunks)),
               threading.Thread(target=pump, args=(proc.stderr, err_chunks))]
    for t in threads:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    for t in threads:
        t.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "cmd": [str(c) for c in cmd],
        "returncode": proc.returncode,
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "maxrss_mb": round(usage.ru_maxrss / 1024, 1),
        "stdout": "".join(out_chunks),
        "stderr": "".join(err_chunks),
    }


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
