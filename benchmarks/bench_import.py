"""Import cost and time to the first statistic, each in a fresh process."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import run_measured  # noqa: E402

FIRST_STATISTIC = r"""
import json, time
t0 = time.perf_counter()
import hotspots.detect.gistar, hotspots.geo
t1 = time.perf_counter()
import numpy as np
from shapely import box
grid = hotspots.geo.make_grid(box(0, 0, 25_000, 25_000), 250, crs="EPSG:27700")
w = hotspots.geo.grid_weights(grid)
values = np.random.default_rng(1).poisson(2.0, len(grid)).astype(float)
t2 = time.perf_counter()
hotspots.detect.gistar.gi_star(values, w)
t3 = time.perf_counter()
hotspots.detect.gistar.gi_star(values, w)
t4 = time.perf_counter()
print(json.dumps({"import_stats_grid_s": t1 - t0, "grid_100x100_and_weights_s": t2 - t1,
                  "first_gi_star_s": t3 - t2, "second_gi_star_s": t4 - t3, "cells": len(grid)}))
"""


def _importtime(module: str) -> dict:
    res = run_measured([sys.executable, "-X", "importtime", "-c", f"import {module}"])
    rows = []
    for line in res["stderr"].splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m:
            rows.append((int(m.group(2)), int(m.group(1)), len(m.group(3)), m.group(4)))
    total = next((cum for cum, _, _, name in rows if name == module), None)
    # heaviest top-level packages (a package's cumulative time includes what it imports)
    top = []
    for r in sorted(rows, reverse=True):
        name = r[3]
        if name.startswith("hotspots") or name in ("site", "encodings") or any(
                name.startswith(t[3] + ".") or t[3].startswith(name + ".") for t in top):
            continue
        top.append(r)
        if len(top) == 6:
            break
    return {"module": module, "process_wall_s": res["wall_s"], "cumulative_s": total / 1e6 if total else None,
            "top_cumulative": {name: round(cum / 1e6, 3) for cum, _, _, name in top}}


def run() -> dict:
    out = {"importtime": [_importtime(m) for m in ("hotspots", "hotspots.cli", "hotspots.stages", "hotspots.outliers",
                                                   "hotspots.geo", "hotspots.detect", "hotspots.evaluation")]}
    res = run_measured([sys.executable, "-c", FIRST_STATISTIC])
    first = json.loads(res["stdout"].strip().splitlines()[-1])
    first["process_wall_s"] = res["wall_s"]
    out["first_statistic"] = {k: round(v, 3) if isinstance(v, float) else v for k, v in first.items()}
    res = run_measured(["hotspots", "--help"])
    out["cli_help_wall_s"] = res["wall_s"]
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
