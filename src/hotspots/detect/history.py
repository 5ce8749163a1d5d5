"""Statistics on the national totals of police.uk history: Gi* per period on the national lattice.

:func:`analyse_history` aggregates the force-month partitions written by
:func:`hotspots.geo.history.build_history` (DuckDB, or Dask with a scheduler:
:func:`hotspots.geo.national.aggregate_partitions`), then runs the toolkit's
:func:`~hotspots.detect.gistar.gi_star` (queen weights, Benjamini-Hochberg FDR
across the whole study area) once per period on the totals by lattice cell,
never on the rows.

Periods are calendar years.  Forces publish different months, and a month
missing for one force would show as a cold spot there, so a year's totals use
the months present for *every* force that has data that year; the months left
out are listed in ``periods.csv``.  The study area of a year is the union of
those forces' areas (:attr:`hotspots.geo.Geography.force`), gridded with
:func:`~hotspots.geo.grid.make_grid` on the national lattice (cells outside it
are no data, not zeros); crimes located outside it are counted per period.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from hotspots._errors import DataNotFoundError
from hotspots.detect.gistar import gi_star
from hotspots.geo.boundaries import Geography
from hotspots.geo.grid import make_grid
from hotspots.geo.history import partition_months
from hotspots.geo.national import BY_AREA, BY_CELL, aggregate_partitions
from hotspots.geo.weights import grid_weights
from hotspots.io.forces import find_forces
from hotspots.schema import BNG

__all__ = ["analyse_history", "HISTORY_TABLES"]

#: tables written by :func:`analyse_history` besides the two totals of aggregate_partitions
HISTORY_TABLES = {
    "periods.csv": "one row per year: months used and left out, forces, cells, crimes in and outside the study area, "
                   "cells per Gi* class",
    "gi_star_cells.parquet": "every study-area cell per year: col, row (national lattice), x_centre, y_centre, count, "
                             "gi_z, gi_p, gi_q, gi_test, gi_class",
    "hot_cold_cells.csv": "the cells of gi_star_cells.parquet with a significant class (q <= 0.10)",
    "lsoa_period_totals.parquet": "counts by LSOA 2021 x year x crime type over the months used",
    "history.json": "what was done: engine, rows, periods, study area, timings",
}


def analyse_history(root: str | os.PathLike, out: str | os.PathLike, *, data_dir: str | os.PathLike,
                    engine: str = "duckdb", scheduler: str | None = None, cell_size: float = 250.0,
                    memory_limit: str = "3GB", threads: int | None = None,
                    progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Aggregate the history partitions and run Gi* with FDR on each year's national totals.

    Parameters
    ----------
    root
        Partitions folder of :func:`hotspots.geo.history.build_history`.
    out
        Folder for the totals (:data:`hotspots.geo.national.BY_AREA`,
        :data:`~hotspots.geo.national.BY_CELL`) and :data:`HISTORY_TABLES`.
    data_dir
        Data home with the boundaries and lookups of the forces found (the
        study area of each year).
    engine, scheduler, memory_limit, threads
        As :func:`hotspots.geo.national.aggregate_partitions` (``engine="dask"``
        with ``scheduler="local:2"`` or an address runs on a Dask cluster).
    cell_size
        Side of the square lattice cells in metres.
    progress
        Optional callable taking one line of text per step.

    Returns
    -------
    dict
        The content of ``history.json``: ``aggregation`` (engine, rows,
        seconds), ``periods`` (one dict per year, as ``periods.csv``),
        ``tables`` (paths) and ``seconds``.

    Raises
    ------
    DataNotFoundError
        No partitions under ``root``, or the boundaries of a force are missing.
    """
    t0 = time.perf_counter()
    say = progress or (lambda line: None)
    root, out = Path(root), Path(out)
    months_by_force = partition_months(root)
    if not months_by_force:
        raise DataNotFoundError(f"no force-month partitions under {root}",
                                hint="build them first: hotspots history build")
    say(f"aggregating {sum(map(len, months_by_force.values())):,} force-month partitions with {engine}")
    agg = aggregate_partitions(root, out, cell_size=cell_size, engine=engine, memory_limit=memory_limit,
                               threads=threads, scheduler=scheduler)
    say(f"  {agg['rows']:,} rows -> {agg['area_rows']:,} LSOA x month x type and {agg['cell_rows']:,} cell x month totals "
        f"in {agg['seconds']:.1f} s")
    s = float(cell_size)
    cells = {force: _force_cells(Path(data_dir), force, s) for force in sorted(months_by_force)}
    periods: list[dict] = []
    writers: dict[str, Any] = {}  # one period's table at a time: nationally, cells x years would not be small
    try:
        for year, forces, used, left_out in _periods(months_by_force):
            periods.append(_one_period(out, year, forces, used, left_out, cells, s, writers, first=not periods))
            say(f"Gi* {year}: {len(used)} month(s) used, {len(forces)} force(s), {periods[-1]['cells']:,} cells")
    finally:
        for writer in writers.values():
            writer.close()
    pd.DataFrame(periods).to_csv(out / "periods.csv", index=False)
    info = {"aggregation": agg, "cell_size": s, "crs": BNG, "periods": periods,
            "tables": {name: str(out / name) for name in (BY_AREA, BY_CELL, *HISTORY_TABLES)},
            "seconds": round(time.perf_counter() - t0, 2)}
    (out / "history.json").write_text(json.dumps(info, indent=1, default=str))
    return info


def _one_period(out: Path, year: str, forces: list[str], used: list[str], left_out, cells: dict, s: float,
                writers: dict, *, first: bool) -> dict:
    """Gi* on one year's totals; its rows appended to the tables; its line of periods.csv."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    study = pd.concat([cells[f] for f in forces], ignore_index=True).drop_duplicates(["col", "row"])
    totals = _cell_totals(out / BY_CELL, used)
    table = study.merge(totals, on=["col", "row"], how="left")
    table["count"] = table["count"].fillna(0).astype(np.int64)
    gi = gi_star(table["count"].to_numpy(np.float64), grid_weights(_lattice_grid(table, s)))
    table = pd.concat([table.reset_index(drop=True), gi.reset_index(drop=True)], axis=1)
    table.insert(0, "period", year)
    classes = table["gi_class"].value_counts()
    table["gi_class"] = table["gi_class"].astype(str)
    lsoa = _lsoa_totals(out / BY_AREA, used)
    lsoa.insert(0, "period", year)
    for name, frame in (("gi_star_cells.parquet", table), ("lsoa_period_totals.parquet", lsoa)):
        arrow = pa.Table.from_pandas(frame, preserve_index=False)
        if name not in writers:
            writers[name] = pq.ParquetWriter(out / name, arrow.schema)
        writers[name].write_table(arrow.cast(writers[name].schema))
    hot = table[table["gi_class"] != "not_significant"]
    hot.to_csv(out / "hot_cold_cells.csv", index=False, mode="w" if first else "a", header=first)
    in_study = int(table["count"].sum())
    return {"period": year, "months_used": len(used), "first_month": used[0], "last_month": used[-1],
            "months_left_out": "; ".join(f"{m} ({', '.join(fs)} only)" for m, fs in left_out),
            "forces": " ".join(forces), "cells": len(table), "crimes_in_study_area": in_study,
            "crimes_outside_study_area": int(totals["count"].sum()) - in_study,
            **{str(c): int(classes.get(c, 0)) for c in gi["gi_class"].cat.categories}}


def _periods(months_by_force: dict[str, list[str]]):
    """(year, forces with data that year, months present for all of them, [(month, forces having it)] left out)."""
    years = sorted({m[:4] for months in months_by_force.values() for m in months})
    for year in years:
        have = {f: {m for m in months if m[:4] == year} for f, months in months_by_force.items()}
        forces = sorted(f for f, ms in have.items() if ms)
        used = sorted(set.intersection(*(have[f] for f in forces)))
        every = sorted(set.union(*(have[f] for f in forces)))
        left_out = [(m, [f for f in forces if m in have[f]]) for m in every if m not in used]
        if used:
            yield year, forces, used, left_out


def _force_cells(data_dir: Path, force: str, s: float) -> pd.DataFrame:
    """The study-area cells of one force: national lattice col/row and centres."""
    pfa = find_forces([force])[0].pfa_code
    area = Geography(data_dir, pfa).force
    grid = make_grid(area, s)
    params = grid.attrs["grid"]
    col = grid["col"].to_numpy(np.int64) + int(round(params["x0"] / s))
    row = grid["row"].to_numpy(np.int64) + int(round(params["y0"] / s))
    return pd.DataFrame({"col": col, "row": row, "x_centre": (col + 0.5) * s, "y_centre": (row + 0.5) * s})


def _lattice_grid(table: pd.DataFrame, s: float) -> gpd.GeoDataFrame:
    """The cells as a grid that :func:`grid_weights` reads (lattice positions relative to the lowest cell)."""
    c0, r0 = int(table["col"].min()), int(table["row"].min())
    grid = gpd.GeoDataFrame({"cell_id": [f"sq{s:g}_r{r}_c{c}" for r, c in zip(table["row"], table["col"])],
                             "row": table["row"].to_numpy() - r0, "col": table["col"].to_numpy() - c0,
                             "x_centre": table["x_centre"].to_numpy(), "y_centre": table["y_centre"].to_numpy()},
                            geometry=gpd.points_from_xy(table["x_centre"], table["y_centre"]), crs=BNG)
    grid.attrs["grid"] = {"shape": "square", "cell_size": s, "x0": c0 * s, "y0": r0 * s,
                          "n_rows": int(grid["row"].max()) + 1, "n_cols": int(grid["col"].max()) + 1, "crs": BNG}
    return grid


def _cell_totals(path: Path, months: list[str]) -> pd.DataFrame:
    """Counts by lattice cell over ``months`` (read with a filter: one period's totals, not the history)."""
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=["col", "row", "count"], filters=[("month", "in", months)])
    g = t.group_by(["col", "row"]).aggregate([("count", "sum")]).to_pandas()
    return g.rename(columns={"count_sum": "count"}).astype({"col": np.int64, "row": np.int64, "count": np.int64})


def _lsoa_totals(path: Path, months: list[str]) -> pd.DataFrame:
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=["lsoa21_code", "crime_type", "count"], filters=[("month", "in", months)])
    g = t.group_by(["lsoa21_code", "crime_type"]).aggregate([("count", "sum")]).to_pandas()
    return g.rename(columns={"count_sum": "count"}).sort_values(["lsoa21_code", "crime_type"], ignore_index=True)
