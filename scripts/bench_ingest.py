#!/usr/bin/env python3
"""Benchmark the foundation on the real data home: ingest + geography + counts.

Times

* a cold process: ``python -m hotspots --quiet --data DATA --out TMP counts`` in a fresh
  interpreter (imports, reading 29 police.uk months, ONS geography, every count table),
  with the per-step times taken from the run's manifest;
* the same work in-process (``pipeline.prepare`` then ``pipeline.run(ctx, ["counts"])``),
  repeated, so import cost and warm caches can be told apart;
* ``read_police_uk`` alone (rows per second).

Prints the figures and appends them, with machine information (nproc, CPU model from
/proc/cpuinfo, memory, load average, library versions), to ``benchmarks/results.md``.

Usage::

    python scripts/bench_ingest.py                      # data home: $HOTSPOTS_DATA or ../shared/data
    python scripts/bench_ingest.py --repeat 3 --data /path/to/data-home
    python scripts/bench_ingest.py --no-append          # print only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def default_data() -> Path | None:
    for cand in (os.environ.get("HOTSPOTS_DATA"), ROOT.parent / "shared" / "data"):
        if cand and (Path(cand) / "police_uk").is_dir():
            return Path(cand).resolve()
    return None


def machine_info() -> dict[str, str]:
    info = {
        "nproc": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
        "cpu": platform.processor() or "unknown",
        "memory": "unknown",
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a",
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    libs = []
    for lib in ("hotspots", "pandas", "pyarrow", "geopandas", "shapely", "pyproj", "pyogrio"):
        try:
            libs.append(f"{lib} {version(lib)}")
        except Exception:
            pass
    info["libraries"] = ", ".join(libs)
    return info


def cold_process(data: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="hotspots-bench-") as out:
        cmd = [sys.executable, "-m", "hotspots", "--quiet", "--data", str(data), "--out", out, "counts"]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"`{' '.join(cmd)}` failed ({r.returncode}):\n{r.stderr}")
        manifest = json.loads((Path(out) / "manifest.json").read_text())
    acc = manifest["row_accounting"]
    return {"wall_s": wall, "steps": manifest["timings_s"], "rows_read": acc["rows_read"], "kept": acc["kept"],
            "files": len(manifest["inputs"]["police_files"])}


def in_process(data: Path) -> dict:
    from hotspots.config import load_config
    from hotspots.stages import Progress, prepare, run

    with tempfile.TemporaryDirectory(prefix="hotspots-bench-") as out:
        progress = Progress()
        t0 = time.perf_counter()
        ctx = prepare(load_config(), data=str(data), out=out, progress=progress)
        t1 = time.perf_counter()
        run(ctx, ["counts"])
        t2 = time.perf_counter()
    return {"prepare_s": t1 - t0, "counts_s": t2 - t1, "total_s": t2 - t0, "steps": dict(progress.timings),
            "rows_read": ctx.accounting.rows_read, "kept": ctx.accounting.kept}


def ingest_only(data: Path) -> dict:
    from hotspots.io.police_uk import read_police_uk

    t0 = time.perf_counter()
    res = read_police_uk([data / "police_uk"], forces=["hertfordshire"])
    dt = time.perf_counter() - t0
    return {"seconds": dt, "rows": res.accounting.rows_read, "rows_per_s": res.accounting.rows_read / dt,
            "files": len(res.accounting.files)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="data home (default: $HOTSPOTS_DATA, then ../shared/data)")
    ap.add_argument("--repeat", type=int, default=2, help="in-process repetitions (default 2)")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results.md", help="markdown file to append to")
    ap.add_argument("--no-append", action="store_true", help="print only, do not append to the results file")
    args = ap.parse_args(argv)
    data = args.data.resolve() if args.data else default_data()
    if data is None or not (data / "police_uk").is_dir():
        print("error: no data home found; pass --data DIR (a folder with police_uk/, boundaries/, lookups/, population/)",
              file=sys.stderr)
        return 2

    info = machine_info()
    print(f"data home: {data}")
    print(f"machine: {info['nproc']} CPU(s), {info['cpu']}, {info['memory']}, load {info['load_average']}")

    cold = cold_process(data)
    s = cold["steps"]
    print(f"cold process `hotspots counts`: {cold['wall_s']:.1f} s wall "
          f"(ingest {s.get('ingest', 0):.1f} s, geography {s.get('geography', 0):.1f} s, counts {s.get('counts', 0):.1f} s; "
          f"{cold['rows_read']:,} rows from {cold['files']} files, {cold['kept']:,} kept)")
    warm = []
    for i in range(args.repeat):
        w = in_process(data)
        warm.append(w)
        st = w["steps"]
        print(f"in-process run {i + 1}: {w['total_s']:.1f} s (ingest {st.get('ingest', 0):.1f} s, geography "
              f"{st.get('geography', 0):.1f} s, counts {w['counts_s']:.1f} s)")
    ing = ingest_only(data)
    print(f"read_police_uk alone: {ing['seconds']:.2f} s for {ing['rows']:,} rows in {ing['files']} files "
          f"({ing['rows_per_s']:,.0f} rows/s)")

    if not args.no_append:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        new = not args.results.exists()
        lines = []
        if new:
            lines += ["# Benchmarks", "", "Appended by `scripts/bench_ingest.py` (real Hertfordshire data home).", ""]
        lines += [
            f"## {time.strftime('%Y-%m-%d %H:%M')} - ingest + geography + counts",
            "",
            f"* machine: {info['nproc']} CPU(s) available, {info['cpu']}, {info['memory']} RAM; "
            f"load average at start {info['load_average']}",
            f"* {info['platform']}, Python {info['python']}; {info['libraries']}",
            f"* data: {cold['rows_read']:,} rows in {cold['files']} police.uk files, {cold['kept']:,} kept",
            "",
            "| run | total s | ingest s | geography s | counts s |",
            "|---|---:|---:|---:|---:|",
            f"| cold process (`python -m hotspots --quiet counts`, wall) | {cold['wall_s']:.1f} | {s.get('ingest', 0):.1f} | "
            f"{s.get('geography', 0):.1f} | {s.get('counts', 0):.1f} |",
        ]
        for i, w in enumerate(warm, 1):
            st = w["steps"]
            lines.append(f"| in-process run {i} | {w['total_s']:.1f} | {st.get('ingest', 0):.1f} | {st.get('geography', 0):.1f} | "
                         f"{w['counts_s']:.1f} |")
        lines += ["", f"`read_police_uk` alone: {ing['seconds']:.2f} s, {ing['rows_per_s']:,.0f} rows/s.", "", ""]
        with open(args.results, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines))
        print(f"appended to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
