"""Sparse-count hot spot figures of a run's outputs (issue 13), per selection.

Usage::

    python3 scripts/sparse_hotspot_figures.py OUTPUT_FOLDER [OUTPUT_FOLDER ...]
    python3 scripts/sparse_hotspot_figures.py --calibrate [SEEDS]

``--calibrate`` reruns the synthetic calibration quoted in the README (40 x 40
rural grid, Poisson 0.05 crimes per cell and month, 12 months; default 500
seeds, 200 for the space-time cube; about a minute): the share of pure-noise
runs with any hot cell (annual Gi*, q <= 0.10) or hot bin (space-time, q <
0.05), with the guarded test and with the normal approximation alone, and
how often planted one-cell clusters of 3, 6 and 12 crimes a month are hot.

Reads ``hotspots/grid_cells.gpkg`` (every layer, no geometry),
``hotspots/patrol_areas.csv`` and ``hotspots/emerging.csv`` of each output
folder and prints, per selection (county and district layers together):

* ``hot``, ``hot_99``, ``hot_95``, ``hot_90``: hot cells by class;
* ``hot_nbhd_le2``: hot cells whose queen neighbourhood (the cell and its 8
  neighbours in the same study area) holds 2 crimes or fewer (computed from
  the cells' counts, so it also works on outputs without ``gi_test``);
* ``hot_zero``: hot cells with no crime;
* ``pa_cells``, ``pa_empty``, ``pa_empty_not_bridge``: patrol-area cells,
  those with no crime, and those of them that do not bridge two
  crime-bearing cells of the same area (two such neighbours not touching
  each other);
* ``em_new``, ``em_sporadic``, ``em_hot``: emerging "new", "sporadic" and
  all hot-spot patterns.

Square grids only (the package's default).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio

QUEEN = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]


def _neighbourhood_sums(cells: pd.DataFrame) -> np.ndarray:
    """3 x 3 sums of ``count`` per study area, aligned with ``cells``."""
    out = np.zeros(len(cells))
    for _, part in cells.groupby(["study_area_type", "study_area_code"], sort=False):
        rows, cols = part["row"].to_numpy(), part["col"].to_numpy()
        r0, c0 = rows.min() - 1, cols.min() - 1
        raster = np.zeros((rows.max() - r0 + 2, cols.max() - c0 + 2))
        raster[rows - r0, cols - c0] = part["count"].to_numpy()
        total = np.zeros(len(part))
        for dr, dc in QUEEN:
            total += raster[rows - r0 + dr, cols - c0 + dc]
        out[cells.index.get_indexer(part.index)] = total
    return out


def _patrol_figures(cells: pd.DataFrame, patrol: pd.DataFrame) -> dict[str, int]:
    district = cells[cells["study_area_type"] == "district"]
    lookup = {(a, c): (int(r), int(k), int(n)) for a, c, r, k, n in zip(
        district["study_area_code"], district["cell_id"], district["row"], district["col"], district["count"])}
    n_cells = n_empty = n_not_bridge = 0
    for code, ids in zip(patrol["district_code"], patrol["cell_ids"]):
        members = [lookup[(code, i)] for i in str(ids).split(";")]
        bearing = {(r, c) for r, c, n in members if n > 0}
        n_cells += len(members)
        for r, c, n in members:
            if n > 0:
                continue
            n_empty += 1
            nb = [(r + dr, c + dc) for dr, dc in QUEEN if (dr, dc) != (0, 0) and (r + dr, c + dc) in bearing]
            apart = any(max(abs(a[0] - b[0]), abs(a[1] - b[1])) > 1 for i, a in enumerate(nb) for b in nb[i + 1:])
            n_not_bridge += not apart
    return {"pa_cells": n_cells, "pa_empty": n_empty, "pa_empty_not_bridge": n_not_bridge}


def _empty_hot_not_bridge(cells: pd.DataFrame, hot: np.ndarray) -> int:
    """Hot cells with no crime that do not link two crime-bearing hot cells which do not touch."""
    n = 0
    for _, part in cells.assign(_hot=hot).groupby(["study_area_type", "study_area_code"], sort=False):
        bearing = {(r, c) for r, c, k, h in zip(part["row"], part["col"], part["count"], part["_hot"]) if h and k > 0}
        for r, c, k, h in zip(part["row"], part["col"], part["count"], part["_hot"]):
            if not h or k > 0:
                continue
            nb = [(r + dr, c + dc) for dr, dc in QUEEN if (dr, dc) != (0, 0) and (r + dr, c + dc) in bearing]
            n += not any(max(abs(a[0] - b[0]), abs(a[1] - b[1])) > 1 for i, a in enumerate(nb) for b in nb[i + 1:])
    return n


def figures(folder: Path) -> pd.DataFrame:
    hotspots = folder / "hotspots"
    grid_path = hotspots / "grid_cells.gpkg"
    patrol = pd.read_csv(hotspots / "patrol_areas.csv")
    emerging = pd.read_csv(hotspots / "emerging.csv")
    rows = []
    # every grid layer (county and districts, per selection; not the layer_styles table), per selection; cells
    # left out of a slim grid_cells.gpkg have no crime, so the neighbourhood sums are unchanged
    layers = [pyogrio.read_dataframe(grid_path, layer=layer, read_geometry=False,
                                     columns=["study_area_type", "study_area_code", "selection", "cell_id", "row",
                                              "col", "count", "gi_class"])
              for layer, kind in pyogrio.list_layers(grid_path) if kind is not None]
    for selection, cells in pd.concat(layers, ignore_index=True).groupby("selection", sort=False):
        cells = cells.reset_index(drop=True)
        cls = cells["gi_class"].astype(str)
        hot = cls.str.startswith("hot").to_numpy()
        sums = _neighbourhood_sums(cells)
        em = emerging[emerging["selection"] == selection]["emerging_class"]
        rows.append({
            "selection": selection, "hot": int(hot.sum()),
            **{c: int((cls == c).sum()) for c in ("hot_99", "hot_95", "hot_90")},
            "hot_nbhd_le2": int((hot & (sums <= 2)).sum()), "hot_zero": int((hot & (cells["count"] == 0)).sum()),
            "hot_zero_not_bridge": _empty_hot_not_bridge(cells, hot),
            **_patrol_figures(cells, patrol[patrol["selection"] == selection]),
            "em_new": int((em == "new hot spot").sum()), "em_sporadic": int((em == "sporadic hot spot").sum()),
            "em_hot": int(em.str.endswith("hot spot").sum()),
        })
    table = pd.DataFrame(rows)
    total = table.drop(columns="selection").sum()
    return pd.concat([table, pd.DataFrame([{"selection": "TOTAL", **total.to_dict()}])], ignore_index=True)


def calibrate(seeds: int = 500) -> None:
    import scipy.sparse as sp

    from hotspots.detect.gistar import gi_star
    from hotspots.detect.gistar_st import gi_star_space_time

    side = 40
    band = sp.diags([1.0, 1.0, 1.0], [-1, 0, 1], shape=(side, side))
    w = sp.kron(band, band, format="csr")
    months = [f"2024-{m:02d}" for m in range(1, 13)]
    planted = {3: 10 * side + 10, 6: 20 * side + 25, 12: 30 * side + 8}

    def cube(seed, clusters=None):
        rng = np.random.default_rng(seed)
        x = rng.poisson(0.05, (12, side * side)).astype(float)
        for rate, cell in (clusters or {}).items():
            x[:, cell] += rng.poisson(rate, 12)
        return x

    st_seeds = min(seeds, 200)
    for test in ("auto", "normal"):
        any_hot = any_bin = 0
        for seed in range(seeds):
            x = cube(seed)
            any_hot += gi_star(x.sum(axis=0), w, test=test)["gi_class"].astype(str).str.startswith("hot").any()
            if seed < st_seeds:
                z, _, q, _ = gi_star_space_time(x, w, months=months, test=test)
                any_bin += bool(((q < 0.05) & (z > 0)).any())
        print(f"pure noise, test={test}: runs with any hot cell (annual, q<=0.10) {any_hot / seeds:.3f} "
              f"of {seeds}; any hot bin (space-time, q<0.05) {any_bin / st_seeds:.3f} of {st_seeds}")
    found = dict.fromkeys(planted, 0)
    for seed in range(seeds):
        hot = gi_star(cube(10_000 + seed, planted).sum(axis=0), w)["gi_class"].astype(str).str.startswith("hot")
        for rate, cell in planted.items():
            found[rate] += bool(hot.iloc[cell])
    print("planted clusters hot (annual):", {f"{r}/month": round(n / seeds, 3) for r, n in found.items()})


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    if argv[0] == "--calibrate":
        calibrate(int(argv[1]) if len(argv) > 1 else 500)
        return 0
    pd.set_option("display.width", 200)
    for folder in argv:
        print(f"== {folder}")
        print(figures(Path(folder)).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
