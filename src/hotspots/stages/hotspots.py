"""The ``hotspots`` stage of ``hotspots run``: grid hotspots, patrol areas, inspectors' maps.

For the analysis period (``ctx.periods.current``) and each crime selection of
``[hotspots] crime_types``, for the county and for each district, the
analysis of :mod:`hotspots.detect` (:func:`~hotspots.detect.analysis.analyse_area`:
grid, Gi* with FDR, local Moran, KDE, clusters, emerging hot spots, stability,
patrol areas for districts) runs in worker processes on plain data; this
module reads the ``[hotspots]`` section, builds the inputs from the context,
records the automatic choices, writes the tables under ``hotspots/``
(:mod:`hotspots.stages._hotspots_outputs`) and the maps under ``maps/``
(:mod:`hotspots.stages._hotspots_maps`, drawn by :mod:`hotspots.render.maps`).

A study area analysed before on the same inputs, options and code is read
back from the area cache (:mod:`hotspots.detect._area_cache`, in the records
cache's folder; ``HOTSPOTS_CACHE=off`` turns them off) instead of analysed, and
maps drawn before from the same inputs, options and code are written back
from the maps cache (:mod:`hotspots.stages._maps_cache`) instead of drawn,
with the ``grid_cells.gpkg`` written beside them (stamped with this run's time).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd
import shapely

from hotspots._errors import ConfigError
from hotspots._parallel import keep_long_lived, process_map
from hotspots._text import slug
from hotspots.detect._area_cache import AreaCache, area_key, inputs_fingerprint
from hotspots.detect.analysis import analyse_area
from hotspots.detect.options import HotspotConfig, cell_size_for
from hotspots.detect.results import AreaResult, Inputs, StudyArea
from hotspots.detect.tables import hotspot_tables
from hotspots.harm import load_harm_weights
from hotspots.io.cache import cache_folder, code_digest
from hotspots.months import month_range
from hotspots.schema import BNG
from hotspots.stages._hotspots_config import hotspot_config, resolve_selections
from hotspots.stages._hotspots_outputs import grid_cells_everything, write_grid_cells, write_tables
from hotspots.stages._maps_cache import GRID_CELLS, write_stored_gpkg

if TYPE_CHECKING:
    from hotspots.stages.context import Context

__all__ = ["stage_hotspots", "run_hotspots", "build_inputs", "hotspot_config"]

#: where the grid cells are written (the maps cache keeps a copy with the maps: the same analyses, the same file)
_GRID_CELLS_OUT = "hotspots/grid_cells.gpkg"


def stage_hotspots(ctx: Context, *, districts=None, maps: bool | None = None, png: bool = True) -> dict[str, Any]:
    """Grid hotspots and patrol areas (:func:`run_hotspots`), then the inspectors' maps.

    The tables and ``grid_cells.gpkg``, the largest file, are written here
    while worker processes draw the maps.
    """
    draw = maps if maps is not None else hotspot_config(ctx.settings).maps
    preload = None
    if draw:
        from hotspots.render.maps import preload
    # only while worker processes analyse: where every study area is read back, nothing waits for them, and the maps
    # are loaded (preloaded then, just before drawing) only where the maps cache misses
    summary = run_hotspots(ctx, districts=districts, grid_cells=False, tables=False, while_analysing=preload)
    res = ctx.results["hotspots"]

    def tables_and_grid_cells(grid_cells: bool = True) -> None:  # in this order, as run_hotspots writes them
        write_tables(ctx.out, res["tables"])
        if grid_cells:
            write_grid_cells(ctx.out, res["inputs"], [res["county"]] + res["districts"],
                             everything=grid_cells_everything(ctx.settings))

    if draw:
        summary["maps"] = _maps(ctx, res, png, tables_and_grid_cells)
    else:
        tables_and_grid_cells()
    return summary


def _maps(ctx: Context, res: dict[str, Any], png: bool, tables_and_grid_cells: Callable[..., None]) -> dict[str, int]:
    """Draw and write the maps (the tables and ``grid_cells.gpkg`` are written meanwhile: ``tables_and_grid_cells``),
    or write them back from the maps cache.

    The maps cache (:mod:`hotspots.stages._maps_cache`) is used where the area
    cache is (its key starts from the same digest of the inputs); it is
    reported like the other caches: a progress line, and the seconds spent
    on it in the manifest's ``timings_s`` (``hotspots.maps_cache``).
    """
    from hotspots.stages._hotspots_maps import build_map_views, write_maps

    progress = ctx.progress
    cache, key = _maps_cache(ctx, res, png)
    if cache is not None:
        t0 = time.perf_counter()
        files = cache.load(key)
        progress.timings["hotspots.maps_cache"] = round(time.perf_counter() - t0, 3)
        if files is not None:
            stored = dict(files).get(GRID_CELLS)
            files = [(n, d) for n, d in files if n != GRID_CELLS]
            progress.info(f"  reused the {sum(n.endswith('.html') for n, _ in files)} drawn maps from {cache.folder}")
            tables_and_grid_cells(grid_cells=stored is None)
            if stored is not None:  # the file written with these maps (same analyses, settings and code), stamped with this run's time
                with ctx.out.atomic_path(_GRID_CELLS_OUT) as tmp:
                    write_stored_gpkg(stored, tmp)
            sizes = {}
            for name, data in files:
                path = ctx.out.write_bytes(data, f"maps/{name}")
                if name.endswith(".html"):
                    sizes[name[:-5]] = len(data)
                    progress.info(f"  map {path.name}: {len(data) / 1e6:.2f} MB")
            return sizes
    from hotspots.render.maps import preload

    preload()  # once: done already where the study areas were analysed (then this returns at once)
    # each view made by the process that draws its map (side by side on two or more CPUs), the same views
    views = build_map_views(ctx, res["inputs"], res["config"], res["county"], res["districts"], res["tables"], lazy=True)
    # the tables, and the largest of them, are written here while worker processes draw the maps
    written = write_maps(ctx.out, views, png=png, progress=progress, alongside=tables_and_grid_cells)
    if cache is not None:
        t0 = time.perf_counter()
        try:
            files = [(GRID_CELLS, (ctx.out.base / _GRID_CELLS_OUT).read_bytes())]
            files += [(Path(w[kind]).name, (ctx.out.base / w[kind]).read_bytes()) for w in written
                      for kind in ("html", "png") if kind in w]
        except OSError:
            files = None
        if files is not None:
            cache.store(key, files)  # never fails: an entry that cannot be written only costs time
        progress.timings["hotspots.maps_cache"] += round(time.perf_counter() - t0, 3)
    return {w["slug"]: w["html_bytes"] for w in written}


def _maps_cache(ctx: Context, res: dict[str, Any], png: bool):
    """``(cache, key)`` of the maps of this run, or ``(None, None)`` where the caches are off or keyless."""
    digest = res.get("inputs_digest")
    folder = cache_folder(ctx.out.root)
    if digest is None or folder is None:
        return None, None
    from hotspots.stages._maps_cache import MapsCache, maps_key

    try:
        key = maps_key(digest, res["config"], png=png, districts=ctx.geography.districts,
                       data_dir=getattr(ctx, "data_dir", None), code=code_digest(),
                       all_cells=grid_cells_everything(ctx.settings))
    except Exception as exc:  # noqa: BLE001 -- the cache only saves time
        ctx.progress.info(f"  maps cache not used: {type(exc).__name__}: {exc}")
        return None, None
    return MapsCache(folder), key


def build_inputs(ctx, cfg: HotspotConfig, *, districts: Sequence[str] | None = None) -> Inputs:
    """Collect the points, periods and areas the analysis needs from the pipeline context."""
    geo = ctx.geography
    keep = ["x", "y", "month", "crime_type", "location"] + (["datetime"] if "datetime" in ctx.points.columns else [])
    points = ctx.points[keep]
    present = tuple(ctx.months_present)
    periods = ctx.periods
    county_geom = shapely.union_all(geo.force.geometry.values)
    size, reason = cell_size_for(county_geom, cfg, patrol=False)
    county = StudyArea("county", str(geo.force["area_code"].iloc[0]), str(geo.force["area_name"].iloc[0]), county_geom,
                       size, reason)
    dists = []
    wanted = None if not districts else {d.lower() for d in districts}
    for _, d in geo.districts.iterrows():
        if wanted and d["area_name"].lower() not in wanted and d["area_code"].lower() not in wanted \
                and slug(d["area_name"], empty="x") not in wanted:
            continue
        size, reason = cell_size_for(d.geometry, cfg, patrol=True)
        dists.append(StudyArea("district", d["area_code"], d["area_name"], d.geometry, size, reason))
    if wanted and not dists:
        raise ConfigError(f"no district matches {sorted(districts)}",
                          hint="use a district name such as 'Watford' or its ONS code: "
                          + ", ".join(geo.districts["area_name"]))
    return Inputs(
        points=points,
        current=tuple(periods.current.months),
        comparison=tuple(periods.comparison.months) if periods.comparison else (),
        change_current=tuple(periods.change_current.months) if periods.change_current else (),
        months_all=tuple(month_range(present[0], present[-1])),
        months_present=present,
        county=county,
        districts=dists,
        wards=geo.wards,
        town_centres=geo.town_centres,
        selections=resolve_selections(cfg.crime_types, ctx.settings.crime_groups),
        harm_weights=load_harm_weights(),
    )


def run_hotspots(ctx: Context, *, districts: Sequence[str] | None = None, grid_cells: bool = True,
                 tables: bool = True, while_analysing: Callable[[], Any] | None = None) -> dict[str, Any]:
    """The hotspots analysis on a prepared context; writes the tables under ``hotspots/``.

    The results go to ``ctx.results["hotspots"]`` as plain data (``tables``,
    ``county``, ``districts``, ``inputs``, ``config``); the maps are drawn
    from them by :func:`stage_hotspots`.  ``grid_cells=False`` leaves the
    largest file, ``grid_cells.gpkg``, to the caller
    (:func:`hotspots.stages._hotspots_outputs.write_grid_cells`); ``tables=False`` leaves every table to the
    caller (:func:`~hotspots.stages._hotspots_outputs.write_tables`, then ``write_grid_cells``: the stage writes
    them while the maps are drawn).
    ``while_analysing`` is called in this process while worker processes
    analyse the study areas (the stage loads the map renderers then); not at
    all where every study area is read back from the area cache.
    """
    t0 = time.perf_counter()
    cfg = hotspot_config(ctx.settings)
    inputs = build_inputs(ctx, cfg, districts=districts)
    progress = ctx.progress
    sizes = {inputs.county.name: inputs.county.cell_size}
    reasons = {inputs.county.name: inputs.county.cell_size_reason}
    for d in inputs.districts:
        sizes[d.name] = d.cell_size
        reasons[d.name] = d.cell_size_reason
    for name, why in reasons.items():
        progress.info(f"  {name}: {why}")
    ctx.settings.record_auto("hotspots.cell_size_m", sizes,
                             "per study area: " + "; ".join(f"{k}: {v}" for k, v in reasons.items()))
    ctx.settings.record_auto("hotspots.settings", dataclasses.asdict(cfg), "[hotspots] in the config, defaults elsewhere")
    progress.info(f"  analysis period {ctx.periods.current.label}; selections: {', '.join(inputs.selections)}")

    jobs = [(inputs.county, False)] + [(d, True) for d in inputs.districts]
    cache, keys, done, digest = _cached_results(ctx, inputs, cfg, jobs)
    todo = [i for i in range(len(jobs)) if done[i] is None]
    if todo:
        inputs.codes  # noqa: B018 -- built once, before the workers start, so that they share it

    here = os.getpid()

    def analyse(i: int) -> tuple[AreaResult, float]:
        t = time.perf_counter()
        area, patrol = jobs[i]
        result = analyse_area(inputs, area, cfg, patrol=patrol)
        seconds = time.perf_counter() - t
        if cache is not None:
            cache.store(keys[i], result)  # never fails: an entry that cannot be written only costs time
        # the shapes are left out only for the trip back from a worker process: analysed here (one worker), the
        # tables are kept as they are (taking the shapes out and back copied every table, to the same frames)
        return (result if os.getpid() == here else _without_cell_shapes(result)), seconds

    computed = process_map(analyse, todo, weights=[_workload(inputs, jobs[i][0]) for i in todo],
                           alongside=while_analysing if todo else None)
    for i, (res, seconds) in zip(todo, computed):
        done[i] = (_with_cell_shapes(res), seconds)
        if cache is not None:
            progress.timings[f"hotspots.cache_miss: {jobs[i][0].name}"] = round(seconds, 3)
    keep_long_lived()  # the study areas' results live to the end of the run
    county = done[0][0]
    progress.info(f"  county grid: {len(county.grid):,} cells of {inputs.county.cell_size:,.0f} m")
    district_results = []
    for res, seconds in done[1:]:
        district_results.append(res)
        n_pa = sum(len(s.patrol_areas) for s in res.selections.values() if s.patrol_areas is not None)
        how = "reused" if seconds is None else f"{seconds:.1f} s"
        progress.info(f"  {res.area.name}: {len(res.grid):,} cells of {res.area.cell_size:,.0f} m, {n_pa} patrol areas "
                      f"({how})")
    hotspot = hotspot_tables(inputs, county, district_results)
    if tables:
        if grid_cells:
            write_grid_cells(ctx.out, inputs, [county] + district_results, everything=grid_cells_everything(ctx.settings))
        write_tables(ctx.out, hotspot)
    summary: dict[str, Any] = {
        "cell_size_m": sizes,
        "selections": list(inputs.selections),
        "patrol_areas": int(len(hotspot["patrol_areas"])),
        "timestamps": "datetime" in inputs.points.columns,
    }
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    ctx.results["hotspots"] = {"tables": hotspot, "county": county, "districts": district_results, "inputs": inputs,
                               "config": cfg, "inputs_digest": digest}
    return summary


# --------------------------------------------------------------------------- the area cache
def _cached_results(ctx: Context, inputs: Inputs, cfg: HotspotConfig, jobs: list[tuple[StudyArea, bool]]):
    """``(cache, keys, done, digest)``: the area cache (``None`` when off), each job's key, per job ``(result, None)``
    where the cache holds its result or ``None`` where it must be analysed (:mod:`hotspots.detect._area_cache`),
    and the inputs' digest (``None`` when the cache is off; the maps cache's key starts from it).

    Reported like the records cache: a progress line, and in the manifest's ``timings_s`` the seconds spent
    here (``hotspots.cache``) and, per study area, ``hotspots.cache_hit: <area>`` (seconds to read it back) or
    ``hotspots.cache_miss: <area>`` (seconds of analysis; the result is then stored).
    """
    done: list = [None] * len(jobs)
    folder = cache_folder(ctx.out.root)
    if folder is None:
        return None, [], done, None
    t0 = time.perf_counter()
    progress = ctx.progress
    try:
        digest, code = inputs_fingerprint(inputs), code_digest()
        keys = [area_key(digest, area, cfg, patrol=patrol, code=code) for area, patrol in jobs]
    except Exception as exc:  # noqa: BLE001 -- the cache only saves time
        progress.info(f"  area cache not used: {type(exc).__name__}: {exc}")
        return None, [], done, None
    cache = AreaCache(folder)
    for i, (area, _) in enumerate(jobs):
        t = time.perf_counter()
        result = cache.load(keys[i], area)
        if result is not None:
            done[i] = (result, None)
            progress.timings[f"hotspots.cache_hit: {area.name}"] = round(time.perf_counter() - t, 3)
    hits = sum(d is not None for d in done)
    progress.info(f"  reused the hotspot analyses of {hits} of {len(jobs)} study areas from {folder}" if hits
                  else f"  no stored hotspot analyses in {folder}")
    progress.timings["hotspots.cache"] = round(time.perf_counter() - t0, 3)
    return cache, keys, done, digest


# --------------------------------------------------------------------------- worker processes
def _without_cell_shapes(result: AreaResult) -> AreaResult:
    """The result with each selection's cells as a plain table: the shapes are the grid's, sent back once."""
    for sel in result.selections.values():
        cells = sel.cells
        sel.cells = pd.DataFrame(cells.drop(columns=cells.geometry.name))
        sel.cells.attrs = {"attrs": copy.deepcopy(cells.attrs), "position": cells.columns.get_loc(cells.geometry.name)}
    return result


def _with_cell_shapes(result: AreaResult) -> AreaResult:
    """Undo :func:`_without_cell_shapes`: the cell tables get the grid's shapes back, in their place."""
    shapes = result.grid.geometry
    for sel in result.selections.values():
        if isinstance(sel.cells, gpd.GeoDataFrame):
            continue
        cells, saved = sel.cells, sel.cells.attrs
        cells.insert(saved["position"], shapes.name, shapes.values)
        sel.cells = gpd.GeoDataFrame(cells, geometry=shapes.name, crs=BNG)
        sel.cells.attrs = saved["attrs"]
    return result


def _workload(inputs: Inputs, area: StudyArea) -> float:
    """Rough cost of analysing a study area, in grid cells: its cells, and a cell's worth per 20 points near it."""
    minx, miny, maxx, maxy = shapely.bounds(area.geometry)
    x, y = inputs.codes.x, inputs.codes.y
    near = int(((x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy)).sum())
    return area.geometry.area / area.cell_size**2 + near / 20
