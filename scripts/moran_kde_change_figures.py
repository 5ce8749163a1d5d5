"""Figures of issue 13 (part 2): local Moran after FDR, the KDE bandwidth rule, CSP change flags with overdispersion.

Usage::

    hotspots --data /work/shared/data --out /tmp/out --quiet run
    python3 scripts/moran_kde_change_figures.py /tmp/out [--part moran|kde|change|all] [--before /tmp/old_out]

* moran: for each of the study area x selection maps in ``hotspots/grid_cells.gpkg``,
  re-runs :func:`hotspots.detect.moran.local_moran` on the cell counts with the
  first stage only (999 permutations, the old behaviour) and with the
  sequential second stage (the default), and prints the significant cells of
  each and the run time; for county ASB, also 20,000 plain permutations and
  the overlap of the HH cells.
* kde: the bandwidths of ``hotspots/study_areas.csv`` (and ``--before``'s),
  and a planted-cluster check on a real district's points.
* change: from ``outliers/outliers_change.csv`` (and ``--before``'s): flagged
  CSP x crime-type changes, flags/q/p disagreements with the interval, the
  mean z² of the CSP ratio of ratios by crime type and the phi applied.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp


def queen_from_rows_cols(row: np.ndarray, col: np.ndarray) -> sp.csr_matrix:
    """Binary queen contiguity (no self) between cells given by lattice (row, col)."""
    n = row.size
    key = {(int(r), int(c)): i for i, (r, c) in enumerate(zip(row, col))}
    src, dst = [], []
    for i, (r, c) in enumerate(zip(row, col)):
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                if dr or dc:
                    j = key.get((int(r) + dr, int(c) + dc))
                    if j is not None:
                        src.append(i)
                        dst.append(j)
    return sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))


def _need_every_cell(out: Path) -> None:
    """Local Moran needs the whole grid: a run with ``--all-cells`` (grid_cells.gpkg is slim by default)."""
    import json

    settings = json.loads((out / "manifest.json").read_text()).get("settings", {})
    if ((settings.get("extra") or {}).get("outputs") or {}).get("grid_cells") != "all":
        raise SystemExit(f"{out}: run `hotspots run --all-cells` first (its grid_cells.gpkg keeps only cells with a "
                         "crime or a result; local Moran needs every cell)")


def moran_figures(out: Path) -> None:
    import pyogrio

    from hotspots.detect.moran import local_moran

    path = out / "hotspots" / "grid_cells.gpkg"
    _need_every_cell(out)
    rows = []
    county_asb = None
    for layer, kind in pyogrio.list_layers(path):
        if kind is None:  # the layer_styles table
            continue
        cells = pyogrio.read_dataframe(path, layer=layer, read_geometry=False,
                                       columns=["study_area_name", "selection", "row", "col", "count"])
        for name, grid in cells.groupby("study_area_name", sort=False):
            w = queen_from_rows_cols(grid["row"].to_numpy(), grid["col"].to_numpy())
            counts = grid["count"].to_numpy(float)
            t0 = time.perf_counter()
            old = local_moran(counts, w, refine=False)
            t1 = time.perf_counter()
            new = local_moran(counts, w)
            t2 = time.perf_counter()
            sig_old = (old["moran_class"].astype(str).isin(["hotspot_HH", "coldspot_LL", "outlier_HL", "outlier_LH"]))
            sig_new = (new["moran_class"].astype(str).isin(["hotspot_HH", "coldspot_LL", "outlier_HL", "outlier_LH"]))
            meta = new.attrs["local_moran"]
            rows.append({"study_area": name, "selection": grid["selection"].iloc[0], "cells": len(grid),
                         "sig_999": int(sig_old.sum()), "sig_sequential": int(sig_new.sum()),
                         "HH_999": int((old["moran_class"] == "hotspot_HH").sum()),
                         "HH_sequential": int((new["moran_class"] == "hotspot_HH").sum()),
                         "refined": meta["refined_cells"], "second_stage": meta["second_stage_permutations"],
                         "s_999": round(t1 - t0, 2), "s_sequential": round(t2 - t1, 2)})
            if name == "Hertfordshire" and grid["selection"].iloc[0] == "ASB":
                county_asb = (counts, w, new)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(table.to_string(index=False))
    print(f"\nmaps: {len(table)}; with >= 1 significant cell: 999 permutations {int((table.sig_999 > 0).sum())}, "
          f"sequential {int((table.sig_sequential > 0).sum())}")
    print(f"significant cells over all maps: 999 permutations {int(table.sig_999.sum())} "
          f"(HH {int(table.HH_999.sum())}), sequential {int(table.sig_sequential.sum())} "
          f"(HH {int(table.HH_sequential.sum())})")
    print(f"total run time: 999 permutations {table.s_999.sum():.1f} s, sequential {table.s_sequential.sum():.1f} s "
          "(the sequential run includes its own first stage)")
    if county_asb is not None:
        counts, w, new = county_asb
        t0 = time.perf_counter()
        big = local_moran(counts, w, permutations=20_000, refine=False, seed=777)
        took = time.perf_counter() - t0
        hh_big = set(np.flatnonzero(big["moran_class"].to_numpy() == "hotspot_HH"))
        hh_new = set(np.flatnonzero(new["moran_class"].to_numpy() == "hotspot_HH"))
        print(f"\ncounty ASB: 20,000 plain permutations ({took:.1f} s): {len(hh_big)} HH cells; sequential: "
              f"{len(hh_new)} HH cells; in both: {len(hh_big & hh_new)}")


def change_figures(out: Path, label: str) -> None:
    path = out / "outliers" / "outliers_change.csv"
    if not path.exists():
        print(f"{label}: no {path}")
        return
    change = pd.read_csv(path)
    print(f"\n== change: {label} ({path})")
    for area_type, d in change.groupby("area_type"):
        flagged = d["change_flag"].isin(["up_vs_reference", "down_vs_reference"])
        lo, hi = d["ratio_of_ratios_ci_lower"], d["ratio_of_ratios_ci_upper"]
        excludes = (lo > 1) | (hi < 1)
        has_p = d["p_vs_reference"].notna()
        ror_disagree = int((excludes[has_p] != (d["p_vs_reference"][has_p] < 0.05)).sum())
        rr_has = d["rate_ratio_p"].notna() & d["rate_ratio_ci_lower"].notna()
        rr_excl = (d["rate_ratio_ci_lower"] > 1) | (d["rate_ratio_ci_upper"] < 1)
        rr_disagree = int((rr_excl[rr_has] != (d["rate_ratio_p"][rr_has] < 0.05)).sum())
        print(f"{area_type}: rows {len(d)}, flagged (interval excludes 1) {int(flagged.sum())} "
              f"(up {int((d.change_flag == 'up_vs_reference').sum())}, down "
              f"{int((d.change_flag == 'down_vs_reference').sum())}), q <= 0.05: "
              f"{int((d['q_vs_reference'] <= 0.05).sum())}; interval/p disagreements: ratio of ratios "
              f"{ror_disagree}, rate ratio {rr_disagree}")
    csp = change[change["area_type"] == "csp"].copy()
    if len(csp):
        z = np.log(csp["ratio_of_ratios"]) / ((np.log(csp["ratio_of_ratios_ci_upper"])
                                                - np.log(csp["ratio_of_ratios_ci_lower"])) / (2 * 1.959963984540054))
        csp["z2"] = z**2
        print("CSP mean z² of the ratio of ratios (as published) by crime type:")
        print(csp.groupby("crime_type")["z2"].mean().round(2).to_string())


def kde_figures(out: Path, label: str) -> None:
    path = out / "hotspots" / "study_areas.csv"
    if not path.exists():
        print(f"{label}: no {path}")
        return
    s = pd.read_csv(path)
    print(f"\n== KDE bandwidths: {label}")
    cols = ["study_area_name", "selection", "cell_size_m", "kde_bandwidth_m"]
    with pd.option_context("display.width", 250, "display.max_colwidth", 200, "display.max_rows", 200):
        print(s[cols].round(0).to_string(index=False))
        pick = s[(s.study_area_name == "East Hertfordshire") & s.selection.isin(["ASB", "Burglary"])]
        for _, r in pick.iterrows():
            print(f"{r.study_area_name} {r.selection}: {r.kde_bandwidth_reason}")


def planted_kde_figures(out: Path, district: str = "East Hertfordshire", layer: str = "asb_districts") -> None:
    """Plant rural clusters (72, 144, 163 crimes a year) in a real district's crimes; rank of the KDE at each."""
    import geopandas as gpd
    import pyogrio

    from hotspots.detect.kde import kde_cells, kde_quartic
    from hotspots.geo.grid import make_grid

    cells = pyogrio.read_dataframe(out / "hotspots" / "grid_cells.gpkg", layer=layer, read_geometry=False,
                                   columns=["study_area_name", "x_centre", "y_centre", "count"])
    cells = cells[cells["study_area_name"] == district]
    areas = gpd.read_file(out / "areas" / "district.gpkg", layer="district")
    geometry = areas.loc[areas["area_name"] == district].geometry.union_all()
    size = float(pd.read_csv(out / "hotspots" / "study_areas.csv").query("study_area_name == @district")
                 ["cell_size_m"].iloc[0])
    grid = make_grid(geometry, size, crs="EPSG:27700")
    # the crimes at their cell centres (the grid's snapping), one row per crime
    x = np.repeat(cells["x_centre"].to_numpy(), cells["count"].to_numpy().astype(int))
    y = np.repeat(cells["y_centre"].to_numpy(), cells["count"].to_numpy().astype(int))
    # rural sites: empty cells with no crime within 1.5 km, spread over the district
    empty = cells[cells["count"] == 0]
    busy = cells[cells["count"] > 0]
    from scipy.spatial import cKDTree

    far = cKDTree(busy[["x_centre", "y_centre"]].to_numpy()).query(empty[["x_centre", "y_centre"]].to_numpy())[0]
    rural = empty[far > 1_500].sample(3, random_state=1)
    sizes = [72, 144, 163]
    px, py = [x], [y]
    for (_, r), n in zip(rural.iterrows(), sizes):
        px.append(np.full(n, r.x_centre))
        py.append(np.full(n, r.y_centre))
    xa, ya = np.concatenate(px), np.concatenate(py)
    adaptive, _, reason = kde_cells(grid, np.column_stack([xa, ya]), size)
    single = kde_quartic(xa, ya, grid=grid)
    print(f"\n== planted rural clusters in {district} {layer} ({len(x)} crimes, cells {size:.0f} m)")
    print(f"adaptive: {reason}\nsingle: {single.bandwidth_reason}")
    for (_, r), n in zip(rural.iterrows(), sizes):
        at = int(np.argmin(np.hypot(grid["x_centre"] - r.x_centre, grid["y_centre"] - r.y_centre)))
        for label, dens in (("adaptive", adaptive), ("single", np.asarray(single.density))):
            top = (pd.Series(-dens).rank(method="max").to_numpy() / len(dens) * 100)[at]
            print(f"  cluster of {n} a year ({n / 12:.0f} a month) at ({r.x_centre:.0f}, {r.y_centre:.0f}): "
                  f"{label} KDE in the densest {top:.1f}% of cells")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="an output folder of `hotspots run`")
    parser.add_argument("--before", type=Path, help="an output folder of the previous version, for comparison")
    parser.add_argument("--part", default="all", choices=["all", "moran", "kde", "change"])
    args = parser.parse_args()
    if args.part in ("all", "change"):
        if args.before:
            change_figures(args.before, "before")
        change_figures(args.out, "after")
    if args.part in ("all", "kde"):
        if args.before:
            kde_figures(args.before, "before")
        kde_figures(args.out, "after")
        planted_kde_figures(args.out)
        planted_kde_figures(args.out, layer="burglary_districts")
    if args.part in ("all", "moran"):
        moran_figures(args.out)


if __name__ == "__main__":
    main()
