"""The patrol areas the hotspot detection finds, as the evaluation's treated areas (one set of patrol areas).

:func:`detected_patrol_treatment` runs the patrol-area steps of
:func:`hotspots.detect.analysis.analyse_area` (grid of the district's cell
size, Gi* with FDR, empty hot cells kept only as bridges, busiest cores of
large regions, contiguous cells merged, at least ``min_count`` crimes, top N
per district, stable ids and names from
:func:`hotspots.detect._patrol_build.describe_patrol_areas`) on the
evaluation's *before* period, so the treated areas are those an analyst
would have drawn from the data available when patrols started, with the
same ids (``PA-...``) and names as the inspectors' maps.  The other columns
of the hotspot analysis (local Moran, KDE, clusters, emerging classes) do
not change the patrol areas and are not computed here.
"""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from hotspots._errors import DataNotFoundError
from hotspots.detect._patrol_build import describe_patrol_areas
from hotspots.detect.gistar import gi_star
from hotspots.detect.options import HotspotConfig
from hotspots.detect.patrol import demote_empty_hot_cells
from hotspots.detect.results import Inputs, SelectionResult
from hotspots.evaluation.areas import TreatedAreas, _as_area_table
from hotspots.geo.aggregate import Period
from hotspots.geo.grid import assign_to_cells, make_grid
from hotspots.geo.weights import grid_weights
from hotspots.months import human_period
from hotspots.schema import ASB, BNG

__all__ = ["detected_patrol_areas", "detected_patrol_treatment"]


def detected_patrol_areas(inputs: Inputs, cfg: HotspotConfig, selection: str, *, grids: dict | None = None,
                          brief: bool = False) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Patrol areas of every district of ``inputs`` for ``selection`` over ``inputs.current``.

    Parameters
    ----------
    inputs : hotspots.detect.results.Inputs
        Points, districts (with their cell sizes), wards and town centres;
        ``current`` is the period the areas are picked on.
    cfg : hotspots.detect.options.HotspotConfig
        The hotspot options (patrol confidence, ``top_n``, ``min_count``, size cap, ranking).
    selection : str
        A key of ``inputs.selections``.
    grids : dict, optional
        District code -> the district's grid already made (``make_grid`` of its geometry, cell size and
        ``cfg.shape``, as the hotspots stage makes it); the others are made here.
    brief : bool, default False
        Only the columns ``patrol_area_id``, ``name``, ``district_code``, ``count`` and ``geometry``
        (the same values; the crime types, trends and the rest are not made).

    Returns
    -------
    areas : geopandas.GeoDataFrame
        The detect stage's patrol-area table (``patrol_area_id``, ``name``,
        ``district_code``, ``count``, ...), all districts together.
    notes : list of str
        Per district without patrol areas, why.
    """
    members = inputs.selections[selection]
    codes = inputs.codes
    in_cur = codes.in_months(inputs.current) & codes.of_types(members)
    asb_only = all(m == ASB for m in members)
    frames, notes = [], []
    # only the points of the period are read (their cells), so only they are assigned to each district's cells
    period = np.flatnonzero(codes.in_months(inputs.current))
    x, y = codes.x[period], codes.y[period]
    for area in inputs.districts:
        grid = (grids or {}).get(area.code)
        if grid is None:
            grid = make_grid(area.geometry, area.cell_size, shape=cfg.shape, crs=BNG)
        n = len(grid)
        cell = np.full(len(codes.x), -1, dtype=np.int64)
        near = _near(x, y, area)
        cell[period[near]] = assign_to_cells(x[near], y[near], grid)
        cur = in_cur & (cell >= 0)
        counts = np.bincount(cell[cur], minlength=n).astype(float)
        harm = np.full(n, np.nan) if asb_only else np.bincount(cell[cur], weights=np.nan_to_num(codes.harm[cur]),
                                                               minlength=n)
        gi = demote_empty_hot_cells(grid, gi_star(counts, grid_weights(grid, neighbourhood="queen", include_self=True)),
                                    counts)
        # the columns the patrol areas are read from, without building the cells table (only its areas are kept)
        columns = {"count": counts.astype(np.int64), "harm": harm, "gi_z": gi["gi_z"].to_numpy(),
                   "gi_class": gi["gi_class"], "patrol_area_id": np.full(n, "", dtype=object)}
        res = SelectionResult(cells=None, clusters=pd.DataFrame(), cluster_shapes=gpd.GeoDataFrame(),
                              emerging=pd.DataFrame(), stability={})
        describe_patrol_areas(res, inputs, grid, cell, cur, members, selection, area, cfg, columns=columns,
                              brief=brief)
        if res.patrol_areas is not None and len(res.patrol_areas):
            frames.append(res.patrol_areas)
        else:
            notes.append(f"{area.name}: {res.note or 'no patrol areas'}")
    if not frames:
        return gpd.GeoDataFrame({"patrol_area_id": [], "name": [], "district_code": [], "count": []}, geometry=[],
                                crs=BNG), notes
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=BNG), notes


def _near(x: np.ndarray, y: np.ndarray, area) -> np.ndarray:
    """Positions of the points within two cells of the district's bounds: the only ones that can be in its cells."""
    minx, miny, maxx, maxy = shapely.bounds(area.geometry)
    margin = 2.0 * float(area.cell_size)
    return np.flatnonzero((x >= minx - margin) & (x <= maxx + margin) & (y >= miny - margin) & (y <= maxy + margin))


def detected_patrol_treatment(inputs: Inputs, cfg: HotspotConfig, selection: str, *, period: Period,
                              before: Period, max_areas: int | None = None, grids: dict | None = None) -> TreatedAreas:
    """The hotspot detection's patrol areas picked on ``period``, as treated areas (ids and names as on the maps).

    Parameters
    ----------
    inputs : hotspots.detect.results.Inputs
        As for :func:`detected_patrol_areas`; ``current`` is replaced by ``period``.
    cfg : hotspots.detect.options.HotspotConfig
        The hotspot options.
    selection : str
        The hotspot selection whose patrol areas are evaluated.
    period : Period
        The months the areas are picked on (default in the stage: the before period).
    before : Period
        The evaluation's before period (``selected_on_counts`` when they overlap).
    max_areas : int, optional
        Keep at most this many areas (highest count first); default all.
    grids : dict, optional
        As for :func:`detected_patrol_areas`: the districts' grids already made.

    Returns
    -------
    TreatedAreas
        ``area_code`` = ``patrol_area_id``, ``area_name`` = the map's name,
        ``selection_count`` = the count in ``period``.

    Raises
    ------
    DataNotFoundError
        When no district has a patrol area in ``period``.
    """
    inputs = dataclasses.replace(inputs, current=tuple(period.months), selections={selection: inputs.selections[selection]},
                                 _codes=inputs._codes)
    # only the ids, names, districts, counts and shapes are read
    pa, notes = detected_patrol_areas(inputs, cfg, selection, grids=grids, brief=True)
    if len(pa) == 0:
        raise DataNotFoundError(
            f"the hotspot detection finds no patrol areas for {selection} in {period.label}: " + "; ".join(notes[:3]),
            hint="give the treated areas as a polygon file ([evaluation] areas / --areas) or pick another period")
    pa = pa.sort_values(["count", "patrol_area_id"], ascending=[False, True], kind="stable")
    if max_areas is not None:
        pa = pa.head(max_areas)
    table = gpd.GeoDataFrame({"area_code": pa["patrol_area_id"].astype(str).to_numpy(),
                              "area_name": pa["name"].astype(str).to_numpy(),
                              "district_code": pa["district_code"].astype(str).to_numpy(),
                              "selection_count": pa["count"].astype(int).to_numpy()},
                             geometry=pa.geometry.to_numpy(), crs=BNG)
    table = _as_area_table(table, "patrol_area", keep=("selection_count",))
    n_dist = table["district_code"].nunique()
    desc = (f"{len(table)} patrol areas found by the hotspot detection for {selection} in {human_period(period.label)} "
            f"(significant Gi* hot cells merged, top {cfg.top_n} per district, {n_dist} of {len(inputs.districts)} "
            "districts; the same ids and names as the inspectors' maps)")
    if notes:
        desc += "; none in " + ", ".join(n.split(":")[0] for n in notes)
    return TreatedAreas(areas=table, source="hotspot_patrol_areas", description=desc, illustrative=True,
                        selected_on_counts=bool(set(period.months) & set(before.months)), selection_period=period)
