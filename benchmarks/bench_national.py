"""The national-scale workload, run in a child process so its peak memory is its own.

    python benchmarks/bench_national.py --points 6000000 [--ingest all|N] [--only-core]

Prints one JSON line: per-step wall and CPU seconds, sizes, and the peak RSS.
Steps (all on the seeded synthetic England-and-Wales workload, see synth.py):

* ``ingest_csv``: ``ingest.read_police_uk`` on the police.uk-format CSVs of
  all 43 forces (``--ingest all``) or the first N forces; the ingested points
  then feed the steps below (as in a real run);
* ``assign_lsoa``: ``geography.assign_points`` to the 35,000 LSOA polygons;
* ``count_lsoa_spatial``: ``aggregate.count_points(method="spatial")`` to the
  LSOA polygons, the full long table with zeros (35,000 x 12 x 14 rows);
* ``count_lsoa_code``, ``count_district``: the default methods;
* ``make_grid``: the 250 m grid clipped to the land mask;
* ``grid_counts``: ``grid.assign_to_cells`` + ``np.bincount``;
* ``grid_weights``, ``gi_star_fdr``: queen weights and Gi* with BH-FDR;
* ``kde``: ``detect.kde_quartic`` on the grid, weighted unique locations;
* ``cluster``: ``detect.cluster_locations`` (DBSCAN on unique locations).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import synth  # noqa: E402
from _util import Steps, maxrss_mb  # noqa: E402


def run(n_points: int, *, ingest: str | None, only_core: bool, cell_size: float = 250.0) -> dict:
    t_start = time.perf_counter()
    step = Steps()
    root = synth.build(synth.Spec(), csv=ingest is not None, log=lambda m: print(m, flush=True))
    from hotspots.geo.aggregate import count_points
    from hotspots.geo.assign import assign_points

    points, lsoa, districts, mask = synth.load(root, n=None if ingest else n_points)
    info = {"lsoas": len(lsoa), "districts": len(districts), "land_km2": round(mask.area / 1e6)}
    if ingest:
        from hotspots.io.police_uk import read_police_uk

        forces = None if ingest == "all" else [f"force-{i:02d}" for i in range(1, int(ingest) + 1)]
        del points
        gc.collect()
        with step("ingest_csv") as s:
            res = read_police_uk([root / "police_uk"], forces=forces)
            s["rows"] = res.accounting.rows_read
        points = res.points
        # the synthetic CSVs publish 2021 LSOA codes; a real run harmonises them here
        points["lsoa21_code"] = points["lsoa_code"]
        info["ingest_rss_mb"] = round(maxrss_mb())
        del res
        gc.collect()
    n = len(points)
    info["points"] = n
    x, y = points["x"].to_numpy(), points["y"].to_numpy()

    with step("assign_lsoa"):
        pairs = assign_points(x, y, lsoa)
    info["assigned_lsoa"] = len(pairs)
    del pairs
    with step("count_lsoa_spatial") as s:
        counts = count_points(points, lsoa, method="spatial")
        s["rows_out"] = len(counts)
    del counts
    if not only_core:
        with step("count_lsoa_code") as s:
            s["rows_out"] = len(count_points(points, lsoa))
        with step("count_district") as s:
            s["rows_out"] = len(count_points(points, districts))

    from hotspots.geo import grid as gridmod
    from hotspots.geo import grid_weights
    from hotspots.detect.gistar import gi_star

    with step("make_grid") as s:
        grid = gridmod.make_grid(mask, cell_size, crs="EPSG:27700")
        s["cells"] = len(grid)
    info["cells"] = len(grid)
    with step("grid_counts"):
        cell = gridmod.assign_to_cells(x, y, grid)
        cell_counts = np.bincount(cell[cell >= 0], minlength=len(grid))
    info["points_in_grid"] = int(cell_counts.sum())
    with step("grid_weights"):
        w = grid_weights(grid)
    with step("gi_star_fdr") as s:
        gi = gi_star(cell_counts.astype(float), w)
        s["hot_99"] = int((gi["gi_class"] == "hot_99").sum())
    del w, gi
    gc.collect()

    if not only_core:
        import hotspots.detect as detect
        with step("kde") as s:
            kde = detect.kde_quartic(x, y, grid=grid)
            s["bandwidth_m"] = round(float(kde.bandwidth_m), 1)
        del kde
        with step("cluster") as s:
            locations, clusters = detect.cluster_locations(x, y)
            s["unique_locations"] = len(locations)
            s["clusters"] = len(clusters)
    info["total_wall_s"] = round(time.perf_counter() - t_start, 2)
    info["steps_wall_s"] = round(sum(v["wall_s"] for v in step.steps.values()), 2)
    info["steps_cpu_s"] = round(sum(v["cpu_s"] for v in step.steps.values()), 2)
    info["peak_rss_mb"] = round(maxrss_mb())
    return {"info": info, "steps": step.steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=6_000_000)
    ap.add_argument("--ingest", default=None, help="'all' or a number of forces: start from the police.uk CSVs")
    ap.add_argument("--only-core", action="store_true", help="skip KDE, clustering and the extra counts (scaling runs)")
    a = ap.parse_args()
    print(json.dumps(run(a.points, ingest=a.ingest, only_core=a.only_core)))


if __name__ == "__main__":
    main()
