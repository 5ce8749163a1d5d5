"""``hotspots evaluate --areas`` with thousands of user polygons: time and peak memory in a clean child process.

Builds ``--n`` (default 10,000) realistic, seeded treated-area polygons over
Hertfordshire and runs ``hotspots evaluate --areas <file>`` on the real data
under ``/usr/bin/time -v`` (wall time and the child's peak resident memory),
with ``HOTSPOTS_WORKERS=1``.  The polygons:

* centres drawn from the locations of real recorded crimes (2025 files), so
  they sit where patrol areas would: in the towns, along the main roads;
* irregular star-shaped outlines (9 to 16 vertices, radius 60 to 260 m, like
  a few streets or an estate), a tenth of them two-part multipolygons;
* some overlap each other (allowed: a crime inside two areas counts in both);
* a code and a name column (``--name-column name``).

Usage::

    python3 benchmarks/bench_areas.py                 # 10,000 polygons, appends to results.md
    python3 benchmarks/bench_areas.py --n 2000 --no-record
    python3 benchmarks/bench_areas.py --n 2000 --profile /tmp/areas.prof --no-record   # cProfile the child

Nothing is written inside the project except the ``results.md`` section.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import ROOT, machine_info  # noqa: E402

DATA = Path(os.environ.get("HOTSPOTS_DATA", ROOT.parent / "shared" / "data"))
TARGET_S, TARGET_GB = 120.0, 3.0


def build_polygons(n: int, path: Path, seed: int = 16) -> dict:
    """Write ``n`` seeded polygons (EPSG:27700 GeoPackage, columns ``code``, ``name``) to ``path``."""
    import geopandas as gpd
    import pandas as pd
    import shapely
    from pyproj import Transformer

    files = sorted((DATA / "police_uk" / "hertfordshire" / "street").glob("2025-*-hertfordshire-street.csv*"))
    if not files:
        raise SystemExit(f"no 2025 Hertfordshire street files under {DATA}/police_uk/hertfordshire/street")
    lonlat = pd.concat([pd.read_csv(f, usecols=["Longitude", "Latitude"]) for f in files]).dropna().to_numpy()
    x, y = Transformer.from_crs(4326, 27700, always_xy=True).transform(lonlat[:, 0], lonlat[:, 1])
    from hotspots.config import load_config
    from hotspots.geo.boundaries import Geography

    force = Geography(DATA, load_config(None).force_area_code).force.geometry.iloc[0]
    shapely.prepare(force)
    rng = np.random.default_rng(seed)

    def star(x0: float, y0: float) -> shapely.Polygon:
        k = int(rng.integers(9, 17))
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        r = rng.uniform(60, 260) * rng.uniform(0.65, 1.0, k)
        return shapely.Polygon(np.c_[x0 + r * np.cos(ang), y0 + r * np.sin(ang)])

    geoms = []
    while len(geoms) < n:
        i = int(rng.integers(0, len(x)))
        x0, y0 = x[i] + rng.normal(0, 40), y[i] + rng.normal(0, 40)
        g = star(x0, y0)
        if len(geoms) % 10 == 9:  # a two-part area (e.g. an estate and its shopping parade)
            g = shapely.union(g, star(x0 + rng.uniform(-600, 600), y0 + rng.uniform(-600, 600)))
        if force.contains(g):  # areas inside the force (the evaluation clips to it)
            geoms.append(g)
    gdf = gpd.GeoDataFrame({"code": [f"PA{i + 1:05d}" for i in range(n)], "name": [f"Patrol area {i + 1}" for i in range(n)]},
                           geometry=geoms, crs=27700)
    gdf.to_file(path, driver="GPKG", engine="pyogrio")
    union = shapely.union_all(shapely.make_valid(gdf.geometry.values))
    return {"n": n, "vertices_mean": round(float(shapely.get_num_coordinates(gdf.geometry.values).mean()), 1),
            "area_km2_median": round(float(np.median(gdf.geometry.area)) / 1e6, 4),
            "union_km2": round(union.area / 1e6, 1), "bytes": path.stat().st_size}


def run_evaluate(areas: Path, out: Path, profile: str | None = None) -> dict:
    """``hotspots evaluate --areas`` in a clean child under /usr/bin/time -v: wall, peak RSS, exit code."""
    cmd = [sys.executable]
    if profile:
        cmd += ["-m", "cProfile", "-o", profile]
    cmd += ["-m", "hotspots", "--data", str(DATA), "--out", str(out), "evaluate", "--areas", str(areas), "--name-column", "name"]
    env = {**os.environ, "HOTSPOTS_WORKERS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", proc.stderr).group(1))
    system = float(re.search(r"System time \(seconds\): ([\d.]+)", proc.stderr).group(1))
    progress = [line for line in proc.stderr.splitlines() if not line.startswith("\t")]
    return {"returncode": proc.returncode, "wall_s": round(wall, 1), "cpu_s": round(user + system, 1),
            "maxrss_gb": round(rss_kb / 2**20, 2), "stdout": proc.stdout.strip(), "stderr_head": progress[:40],
            "cmd": " ".join(cmd)}


def record(poly: dict, res: dict, info: dict) -> None:
    met = res["returncode"] == 0 and res["wall_s"] < TARGET_S and res["maxrss_gb"] < TARGET_GB
    lines = [
        "", f"## {info['date_utc']} UTC, `bench_areas.py --n {poly['n']}`", "",
        f"Machine: {info['nproc']} cores ({info['cpu_model']}), {info['ram_gib']} GiB RAM, Python {info['python']}; "
        f"load average {info['load_avg_start'][0]:.1f} at start, {os.getloadavg()[0]:.1f} at end (shared cores).",
        f"Polygons: {poly['n']:,} seeded star-shaped areas around real 2025 crime locations, {poly['vertices_mean']} "
        f"vertices on average, median {poly['area_km2_median']} km², union {poly['union_km2']} km², "
        f"{poly['bytes'] / 1e6:.1f} MB GeoPackage.",
        "Command (clean child process, `HOTSPOTS_WORKERS=1`, measured by `/usr/bin/time -v`): "
        f"`hotspots --data <data> --out <tmp> evaluate --areas <polygons.gpkg> --name-column name`.", "",
        "| measurement | target | wall | CPU | peak RSS | exit | met |", "|---|---|---|---|---|---|---|",
        f"| `evaluate --areas`, {poly['n']:,} polygons | < {TARGET_S:.0f} s, < {TARGET_GB:.0f} GB | {res['wall_s']} s | "
        f"{res['cpu_s']} s | {res['maxrss_gb']} GB | {res['returncode']} | {'yes' if met else 'NO'} |", "",
        f"Wall above CPU means the child waited for a core (load average {info['load_avg_start'][0]:.1f} at the start).", "",
    ]
    with open(ROOT / "benchmarks" / "results.md", "a", encoding="utf-8") as fh:
        fh.write("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="number of polygons (default 10,000)")
    ap.add_argument("--no-record", action="store_true", help="print only; do not append to results.md")
    ap.add_argument("--profile", help="cProfile the child into this file")
    ap.add_argument("--keep", help="folder to keep the polygons and outputs in (default: a temporary folder)")
    args = ap.parse_args(argv)
    info = machine_info()
    with tempfile.TemporaryDirectory(prefix="bench_areas_") as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        poly = build_polygons(args.n, folder / "polygons.gpkg")
        print(f"built {args.n:,} polygons in {time.perf_counter() - t0:.1f} s: {poly}", flush=True)
        res = run_evaluate(folder / "polygons.gpkg", folder / "out", args.profile)
    print("\n".join(res["stderr_head"]))
    print(res["stdout"])
    print(f"exit {res['returncode']}: wall {res['wall_s']} s, CPU {res['cpu_s']} s, peak RSS {res['maxrss_gb']} GB "
          f"(target < {TARGET_S:.0f} s and < {TARGET_GB:.0f} GB)")
    if not args.no_record:
        record(poly, res, info)
    return 0 if res["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
