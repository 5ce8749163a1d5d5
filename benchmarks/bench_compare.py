"""Side by side, in one child process: hotspots against the usual tools, same inputs, same answers.

    python benchmarks/bench_compare.py --points 6000000 --gi-side 300 --perm-side 100

* aggregation: ``aggregate.count_points(method="spatial", zeros=False)`` against
  ``geopandas.sjoin(predicate="intersects")`` + ``groupby().size()`` on the
  synthetic LSOA polygons; the counts are asserted identical (the sjoin side
  keeps the lowest area code for a point on a shared edge, the documented rule).
* Gi*: ``stats.gi_star`` (queen weights from ``grid.grid_weights``) against
  esda ``G_Local(star=True, transform="B")`` on a ``gi-side`` x ``gi-side``
  grid analytically (``permutations=0``) and with 999 permutations on a
  ``perm-side`` grid; z-scores asserted equal to 1e-9.  esda's first call in a
  process includes its numba compilation, reported separately.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import synth  # noqa: E402
from _util import Steps, maxrss_mb  # noqa: E402


def aggregation(n_points: int, step: Steps) -> dict:
    import geopandas as gpd

    from hotspots.geo.aggregate import count_points

    points, lsoa, _, _ = synth.load(synth.build(), n=n_points)
    with step("hotspots_count_points"):
        ours = count_points(points, lsoa, method="spatial", zeros=False)
    with step("sjoin_groupby"):
        gpts = gpd.GeoDataFrame(points[["month", "crime_type"]], geometry=gpd.points_from_xy(points["x"], points["y"]),
                                crs=lsoa.crs)
        joined = gpd.sjoin(gpts, lsoa[["area_code", "geometry"]], how="inner", predicate="intersects")
        # a point on a shared edge matches both areas: keep the lowest code, as count_points does
        joined = joined.sort_values("area_code").loc[lambda d: ~d.index.duplicated(keep="first")]
        theirs = joined.groupby(["area_code", "month", "crime_type"]).size().rename("count").reset_index()
    a = ours[["area_code", "month", "crime_type", "count"]].reset_index(drop=True)
    b = theirs.sort_values(["area_code", "month", "crime_type"]).reset_index(drop=True)
    identical = bool(len(a) == len(b) and (a["area_code"].to_numpy() == b["area_code"].to_numpy()).all()
                     and (a["month"].to_numpy() == b["month"].to_numpy()).all()
                     and (a["crime_type"].to_numpy() == b["crime_type"].to_numpy()).all()
                     and (a["count"].to_numpy() == b["count"].to_numpy()).all())
    assert identical, "count_points and sjoin+groupby disagree"
    return {"points": len(points), "polygons": len(lsoa), "rows": len(a), "identical_counts": identical,
            "ratio": round(step.steps["sjoin_groupby"]["wall_s"] / step.steps["hotspots_count_points"]["wall_s"], 1)}


def _planted_grid(side: int, seed: int = 7):
    """A side x side grid of 250 m cells with Poisson counts and planted clusters."""
    from shapely import box

    from hotspots.geo import grid_weights, make_grid

    grid = make_grid(box(0, 0, side * 250.0, side * 250.0), 250.0, crs="EPSG:27700")
    rng = np.random.default_rng(seed)
    rate = np.full(len(grid), 0.5)
    for _ in range(max(side // 20, 1)):
        r, c, radius = rng.integers(0, side, 2).tolist() + [rng.integers(2, 6)]
        near = (np.abs(grid["row"].to_numpy() - r) <= radius) & (np.abs(grid["col"].to_numpy() - c) <= radius)
        rate[near] += rng.uniform(2, 8)
    return grid, rng.poisson(rate).astype(float), grid_weights(grid), grid_weights(grid, include_self=False)


def gi_vs_esda(side: int, perm_side: int, step: Steps) -> dict:
    warnings.filterwarnings("ignore")
    from hotspots.detect.gistar import gi_star

    out = {}
    for label, n_side, perms in (("analytic", side, 0), ("perm999", perm_side, 999)):
        grid, values, w_self, w_plain = _planted_grid(n_side)
        with step(f"hotspots_gi_star_{label}"):
            ours = gi_star(values, w_self, correction=None)
        t0 = time.perf_counter()
        import libpysal
        from esda.getisord import G_Local

        esda_w = libpysal.weights.WSP(w_plain).to_W(silence_warnings=True)
        esda_w.transform = "B"
        build_w = time.perf_counter() - t0
        if perms and "esda_first_call_jit" not in step.steps:
            # numba compiles esda's permutation kernels on the first call in each process
            tiny, tiny_values, _, tiny_plain = _planted_grid(10)
            tw = libpysal.weights.WSP(tiny_plain).to_W(silence_warnings=True)
            with step("esda_first_call_jit"):
                G_Local(tiny_values, tw, transform="B", star=True, permutations=99, seed=1)
        with step(f"esda_G_Local_{label}", build_w_s=round(build_w, 2)):
            theirs = G_Local(values, esda_w, transform="B", star=True, permutations=perms, seed=12345)
        max_diff = float(np.max(np.abs(ours["gi_z"].to_numpy() - theirs.Zs)))
        assert max_diff < 1e-9, f"gi_star and esda z differ by {max_diff}"
        out[label] = {"cells": len(grid), "max_abs_z_diff": max_diff,
                      "ratio": round(step.steps[f"esda_G_Local_{label}"]["wall_s"]
                                     / max(step.steps[f"hotspots_gi_star_{label}"]["wall_s"], 1e-6), 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=6_000_000)
    ap.add_argument("--gi-side", type=int, default=300)
    ap.add_argument("--perm-side", type=int, default=100)
    a = ap.parse_args()
    step = Steps()
    result = {"aggregation": aggregation(a.points, step), "gi_star": gi_vs_esda(a.gi_side, a.perm_side, step)}
    result["steps"] = step.steps
    result["peak_rss_mb"] = round(maxrss_mb())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
