"""Side by side, in one child process: hotspots against the usual tools, same inputs, same answers.

    python benchmarks/bench_compare.py --points 6000000 --gi-side 300 --perm-side 100

* aggregation: ``aggregate.count_points(method="spatial", zeros=False)`` against
  ``geopandas.sjoin(predicate="intersects")`` + ``groupby().size()`` on the
  synthetic LSOA polygons; the counts are asserted identical (the sjoin side
  keeps the lowest area code for a point on a shared edge, the documented rule).
* Gi*: ``gi_star`` (queen weights from ``grid_weights``) against esda
  ``G_Local(star=True, transform="B", permutations=0)`` on a ``gi-side`` x
  ``gi-side`` grid: both analytic, z-scores asserted equal to 1e-9.  (hotspots
  has no permutation Gi*; its p-values are analytic, so there is no
  permutation ratio to give for Gi*.)
* Local Moran with 999 conditional permutations on a ``perm-side`` grid, both
  sides: ``local_moran(permutations=999, refine=False, correction=None)``
  against esda ``Moran_Local(transformation="r", permutations=999)``; the
  statistic I is asserted equal to 1e-9 and the share of cells whose 0.05
  significance agrees is reported (the random draws differ).  esda's first
  permutation call in a process is timed separately: with numba it includes
  the compilation of esda's kernels (or loading numba's cache), without numba
  (``numba_installed`` says which) there is nothing to compile.
* KDE: ``kde_quartic`` (linear binning + FFT) against the exact direct sum of
  the same quartic kernel over the points within ``h`` of each lattice node
  (scipy ``cKDTree.sparse_distance_matrix``), ``kde-points`` points in a
  40 km square, h = 1 km, 100 m lattice; the largest difference relative to
  the peak is reported (the binning error, O((cell/h)^2)).
* Clustering: ``cluster_locations(method="dbscan")`` (unique locations weighted
  by count) against sklearn ``DBSCAN`` on the expanded raw points (one row per
  crime), ``cluster-points`` crimes, eps 150 m, 20 crimes, clusters under 20
  crimes relabelled noise on both sides; number of clusters and the adjusted
  Rand index of the two labellings reported (border points reachable from two
  clusters may go either way).
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
            "ratio": round(step.steps["sjoin_groupby"]["cpu_s"] / step.steps["hotspots_count_points"]["cpu_s"], 1)}


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


def gi_vs_esda(side: int, step: Steps) -> dict:
    warnings.filterwarnings("ignore")
    import libpysal
    from esda.getisord import G_Local

    from hotspots.detect.gistar import gi_star

    grid, values, w_self, w_plain = _planted_grid(side)
    with step("hotspots_gi_star_analytic"):
        ours = gi_star(values, w_self, correction=None)
    t0 = time.perf_counter()
    esda_w = libpysal.weights.WSP(w_plain).to_W(silence_warnings=True)
    esda_w.transform = "B"
    build_w = time.perf_counter() - t0
    with step("esda_G_Local_analytic", build_w_s=round(build_w, 2)):
        theirs = G_Local(values, esda_w, transform="B", star=True, permutations=0)
    max_diff = float(np.max(np.abs(ours["gi_z"].to_numpy() - theirs.Zs)))
    assert max_diff < 1e-9, f"gi_star and esda z differ by {max_diff}"
    return {"cells": len(grid), "max_abs_z_diff": max_diff,
            "ratio": round(step.steps["esda_G_Local_analytic"]["cpu_s"]
                           / max(step.steps["hotspots_gi_star_analytic"]["cpu_s"], 1e-6), 1)}


def moran_vs_esda(side: int, step: Steps) -> dict:
    """Local Moran with 999 permutations on both sides."""
    import importlib.util

    warnings.filterwarnings("ignore")
    import libpysal
    from esda.moran import Moran_Local

    from hotspots.detect.moran import local_moran

    grid, values, _, w_plain = _planted_grid(side)
    with step("hotspots_local_moran_perm999"):
        ours = local_moran(values, w_plain, permutations=999, refine=False, correction=None)
    esda_w = libpysal.weights.WSP(w_plain).to_W(silence_warnings=True)
    tiny, tiny_values, _, tiny_plain = _planted_grid(10)
    tw = libpysal.weights.WSP(tiny_plain).to_W(silence_warnings=True)
    numba = importlib.util.find_spec("numba") is not None
    with step("esda_first_permutation_call", numba_installed=numba):
        Moran_Local(tiny_values, tw, transformation="r", permutations=99, seed=1)
    with step("esda_Moran_Local_perm999"):
        theirs = Moran_Local(values, esda_w, transformation="r", permutations=999, seed=12345)
    i_col = next(c for c in ours.columns if c in ("moran_i", "local_i", "I", "lisa_i"))
    max_diff = float(np.max(np.abs(ours[i_col].to_numpy() - theirs.Is)))
    assert max_diff < 1e-9, f"local_moran and esda I differ by {max_diff}"
    p_col = next(c for c in ours.columns if c in ("p_value", "moran_p", "p_sim", "p"))
    agree = float(np.mean((ours[p_col].to_numpy() <= 0.05) == (theirs.p_sim <= 0.05)))
    return {"cells": len(grid), "max_abs_i_diff": max_diff, "significance_agreement": round(agree, 4),
            "numba_installed": numba,
            "ratio": round(step.steps["esda_Moran_Local_perm999"]["cpu_s"]
                           / max(step.steps["hotspots_local_moran_perm999"]["cpu_s"], 1e-6), 1)}


def _busiest_square(side_m: float, n_points: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The synthetic crimes (up to ``n_points``) of the ``side_m`` square centred on the busiest 1 km square,
    and the square's lower-left corner."""
    points, _, _, _ = synth.load(synth.build())
    x, y = points["x"].to_numpy(), points["y"].to_numpy()
    key = np.floor(x / 1000) * 1e6 + np.floor(y / 1000)
    vals, counts = np.unique(key, return_counts=True)
    best = vals[np.argmax(counts)]
    x0, y0 = (best // 1e6) * 1000 - side_m / 2, (best % 1e6) * 1000 - side_m / 2
    inside = (x >= x0) & (x < x0 + side_m) & (y >= y0) & (y < y0 + side_m)
    return x[inside][:n_points], y[inside][:n_points], x0, y0


def kde_vs_direct(n_points: int, step: Steps) -> dict:
    """kde_quartic against the exact direct sum of the same kernel."""
    from scipy.spatial import cKDTree

    from hotspots.detect.kde import kde_quartic

    x, y, x0, y0 = _busiest_square(40_000, n_points)
    h, cell = 1000.0, 100.0
    bounds = (x0, y0, x0 + 40_000, y0 + 40_000)
    with step("hotspots_kde_quartic", points=len(x)):
        ours = kde_quartic(x, y, bandwidth=h, cell_size=cell, bounds=bounds).density
    with step("direct_quartic_sum_ckdtree"):
        nodes = ours[["x_centre", "y_centre"]].to_numpy()
        d = cKDTree(nodes).sparse_distance_matrix(cKDTree(np.column_stack([x, y])), h, output_type="coo_matrix")
        k = 3 / (np.pi * h * h) * (1 - (d.data / h) ** 2) ** 2
        direct = np.bincount(d.row, weights=k, minlength=len(nodes)) * 1e6
    ours_v = ours["density_per_km2"].to_numpy()
    rel = float(np.max(np.abs(ours_v - direct)) / direct.max())
    return {"points": int(len(x)), "nodes": int(len(nodes)), "bandwidth_m": h, "cell_m": cell,
            "max_diff_relative_to_peak": rel,
            "ratio": round(step.steps["direct_quartic_sum_ckdtree"]["cpu_s"]
                           / max(step.steps["hotspots_kde_quartic"]["cpu_s"], 1e-6), 1)}


def clusters_vs_dbscan(n_points: int, step: Steps) -> dict:
    """cluster_locations (weighted unique locations) against sklearn DBSCAN on the raw points."""
    from sklearn.cluster import DBSCAN
    from sklearn.metrics import adjusted_rand_score

    from hotspots.detect.clusters import cluster_locations

    x, y, _, _ = _busiest_square(30_000, n_points)
    with step("hotspots_cluster_locations", points=len(x)):
        locations, clusters = cluster_locations(x, y, method="dbscan", eps_m=150.0, min_crimes=20)
    with step("sklearn_DBSCAN_raw_points"):
        raw = DBSCAN(eps=150.0, min_samples=20).fit_predict(np.column_stack([x, y]))
        sizes = np.bincount(raw[raw >= 0]) if (raw >= 0).any() else np.zeros(0, int)
        raw = np.where((raw >= 0) & (sizes[np.maximum(raw, 0)] >= 20), raw, -1) if len(sizes) else raw
    # our labels back on the raw points
    lab = locations.set_index(["x", "y"])["cluster"]
    ours = lab.reindex(pd.MultiIndex.from_arrays([x, y])).to_numpy()
    return {"points": int(len(x)), "unique_locations": len(locations), "clusters_hotspots": int(len(clusters)),
            "clusters_sklearn": int(len(np.unique(raw[raw >= 0]))),
            "adjusted_rand_index": round(float(adjusted_rand_score(ours, raw)), 6),
            "ratio": round(step.steps["sklearn_DBSCAN_raw_points"]["cpu_s"]
                           / max(step.steps["hotspots_cluster_locations"]["cpu_s"], 1e-6), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=6_000_000)
    ap.add_argument("--gi-side", type=int, default=300)
    ap.add_argument("--perm-side", type=int, default=100)
    ap.add_argument("--kde-points", type=int, default=200_000)
    ap.add_argument("--cluster-points", type=int, default=20_000)
    ap.add_argument("--only", nargs="+", choices=("aggregation", "gi_star", "moran", "kde", "clusters"))
    a = ap.parse_args()
    step = Steps()
    parts = {"aggregation": lambda: aggregation(a.points, step), "gi_star": lambda: gi_vs_esda(a.gi_side, step),
             "moran": lambda: moran_vs_esda(a.perm_side, step), "kde": lambda: kde_vs_direct(a.kde_points, step),
             "clusters": lambda: clusters_vs_dbscan(a.cluster_points, step)}
    result = {name: fn() for name, fn in parts.items() if not a.only or name in a.only}
    result["steps"] = step.steps
    result["peak_rss_mb"] = round(maxrss_mb())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
