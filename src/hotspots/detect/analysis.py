"""The hotspots analysis of one study area: grid, counts, Gi*, local Moran, KDE, clusters, emerging, patrol areas.

For the analysis period (``inputs.current``) and each crime selection, for
one study area (the county, or a district), :func:`analyse_area`:

1. lays a grid clipped to the study area (:func:`hotspots.geo.grid.make_grid`;
   the cell size is the study area's, chosen by
   :func:`hotspots.detect.options.cell_size_for`);
2. counts crimes and harm per cell; Getis-Ord Gi* (queen, self included;
   the larger of the normal and exact binomial p, no hot spot whose
   neighbourhood holds under 3 crimes) with Benjamini-Hochberg FDR across the
   study area; local Moran quadrants (seeded sequential permutations, enough
   for significance after FDR); quartic KDE with an adaptive (k-nearest-neighbour)
   radius capped by the two-axis normal-reference bandwidth; DBSCAN (or
   HDBSCAN) clusters on unique snapped locations weighted by their counts;
3. classifies emerging hot spots from a space-time Gi* per cell and month
   (neighbours in the same and the previous month) across the months present
   (missing months are NaN, never zeros); compares the top cells between
   the seasonally matched comparison months and measures the concentration
   of crime in the top 1/5/10% of cells;
4. for a district, builds patrol areas: significant hot cells (a connected
   region bigger than ``max_area_km2`` cut to its busiest cores,
   :func:`hotspots.detect.patrol.core_cells`), empty hot cells dropped unless
   they bridge two crime-bearing cells (:func:`hotspots.detect.patrol.bridge_cells`),
   contiguous cells merged, areas
   under ``min_count`` crimes dropped, ranked by count or harm, top N kept,
   stable ids, named from the containing ward, town centre and the commonest
   street, with counts by crime type, trend and harm (and an hour-of-week
   profile when the points have times).

It takes plain data (:class:`~hotspots.detect.results.Inputs`, a
:class:`~hotspots.detect.results.StudyArea` and the options) and returns an
:class:`~hotspots.detect.results.AreaResult`; it reads and writes nothing.
"""

from __future__ import annotations

import copy

import geopandas as gpd
import numpy as np
import pandas as pd

from hotspots.detect._area_steps import (
    _TEXT,
    _bincount,
    _clusters,
    _emerging,
    _stability,
    _text,
    _text_of_labels,
)
from hotspots.detect._patrol_build import describe_patrol_areas
from hotspots.detect._points import PointCodes
from hotspots.detect.gistar import gi_star
from hotspots.detect.kde import kde_cells
from hotspots.detect.moran import local_moran
from hotspots.detect.options import HotspotConfig
from hotspots.detect.patrol import demote_empty_hot_cells
from hotspots.detect.results import AreaResult, Inputs, SelectionResult, StudyArea
from hotspots.geo import grid as gridmod
from hotspots.geo.assign import assign_points
from hotspots.geo.weights import grid_weights
from hotspots.schema import ASB, BNG

__all__ = ["analyse_area"]


def _top_pct(values: np.ndarray) -> np.ndarray:
    """Share (%) of cells at least as high as each cell (1 = the densest 1%); 100 for zero density."""
    n = len(values)
    if n == 0:
        return np.array([])
    values = np.asarray(values, dtype=float)
    if np.isnan(values).any():
        ranks = pd.Series(-values).rank(method="max").to_numpy()
    else:
        # pandas' "max" rank of -v: how many values are >= v (one sort, no pandas); whole numbers, so the same floats
        ranks = (n - np.searchsorted(np.sort(values), values, side="left")).astype(float)
    out = ranks / n * 100.0
    return np.where(values > 0, out, 100.0)


def _top_pct_reference(values: np.ndarray) -> np.ndarray:
    """:func:`_top_pct` by pandas' rank (the tests' reference)."""
    n = len(values)
    if n == 0:
        return np.array([])
    ranks = pd.Series(-values).rank(method="max").to_numpy()
    out = ranks / n * 100.0
    return np.where(values > 0, out, 100.0)


def analyse_area(inputs: Inputs, area: StudyArea, cfg: HotspotConfig, *, patrol: bool) -> AreaResult:
    """Grid hotspots, KDE, clusters, emerging classes, stability (and patrol areas) for one study area; no I/O.

    Parameters
    ----------
    inputs : Inputs
        The points, periods, selections, wards, town centres and harm weights.
    area : StudyArea
        The study area, with its cell size.
    cfg : HotspotConfig
        The analysis options.
    patrol : bool
        Build patrol areas (districts: True; the county: False).

    Returns
    -------
    AreaResult
        The grid and, per selection, a :class:`~hotspots.detect.results.SelectionResult`:
        the cells (the columns of ``grid_cells.gpkg``), clusters and their
        shapes, emerging classes, the stability row, patrol areas with their
        crime types and hours, a note and the study-area summary row.
    """
    grid = gridmod.make_grid(area.geometry, area.cell_size, shape=cfg.shape, crs=BNG)
    n = len(grid)
    codes = inputs.codes
    cell = gridmod.assign_to_cells(codes.x, codes.y, grid)
    inside = cell >= 0
    weights = grid_weights(grid, neighbourhood="queen", include_self=True)
    in_current = codes.in_months(inputs.current)
    harm = codes.harm
    monthly = _MonthlyCounts(inputs, codes, cell, n)
    # the columns every selection's table shares (text columns built once: converting text is the slow part)
    shared = {"study_area_type": _text(area.area_type, n), "study_area_code": _text(area.code, n),
              "study_area_name": _text(area.name, n)}
    grid_columns = {c: grid[c].array for c in grid.columns}
    town_centre = pd.array(_town_centre_of_cells(grid, inputs.town_centres), dtype=_TEXT)
    no_patrol_area = _text("", n)
    results: dict[str, SelectionResult] = {}
    per_area: dict = {}  # what every selection shares: the space-time cube's weights, the patrol areas' namer
    for sel, members in inputs.selections.items():
        in_sel = inside & codes.of_types(members)
        # the selected points by position, found once (a mask over every point costs a pass over them per use);
        # those of the analysis period among them (ascending, as np.flatnonzero(in_sel & in_current) gives them)
        sel_rows = np.flatnonzero(in_sel)
        cur_rows = sel_rows[in_current[sel_rows]]
        cur_cells = cell[cur_rows]
        counts = _bincount(cur_cells, n)
        asb_only = all(m == ASB for m in members)
        harm_cells = np.full(n, np.nan) if asb_only else _bincount(cur_cells, n, np.nan_to_num(harm[cur_rows]))
        gi = demote_empty_hot_cells(grid, gi_star(counts, weights), counts)  # empty cells hot only as bridges
        moran = local_moran(counts, weights, permutations=cfg.permutations, seed=cfg.seed)
        # their columns read from frames without attrs (every column taken from a frame with attrs deep-copies them)
        gi, moran = pd.DataFrame(gi, copy=False), pd.DataFrame(moran, copy=False)
        kde, bandwidth, bw_reason = kde_cells(grid, np.column_stack([codes.x[cur_rows], codes.y[cur_rows]]),
                                              area.cell_size)
        pattern, emerging = _emerging(inputs, grid, weights, monthly.by_month_rows(sel_rows), area, sel,
                                      shared=per_area)
        columns = {
            **shared, "selection": _text(sel, n), **grid_columns,
            "count": counts.astype(np.int64), "harm": harm_cells,
            "gi_z": gi["gi_z"].to_numpy(), "gi_p": gi["gi_p"].to_numpy(), "gi_q": gi["gi_q"].to_numpy(),
            "gi_test": _text_of(gi["gi_test"]), "gi_class": _text_of(gi["gi_class"]),
            "moran_i": moran["moran_i"].to_numpy(), "moran_p": moran["moran_p"].to_numpy(),
            "moran_q": moran["moran_q"].to_numpy(),
            "moran_quadrant": _text_of(moran["moran_quadrant"]), "moran_class": _text_of(moran["moran_class"]),
            "kde_per_km2": kde, "kde_top_pct": _top_pct(kde),
            "emerging_class": _text_of_labels(pattern, "no pattern detected"),
            "town_centre": town_centre, "patrol_area_id": no_patrol_area,
        }
        clusters, shapes = _clusters(codes, cur_rows, area, sel, cfg)
        stab = _stability(inputs, grid, cell, sel_rows, counts, area, sel)
        res = SelectionResult(cells=None, clusters=clusters, cluster_shapes=shapes, emerging=emerging, stability=stab)
        if patrol:  # reads the columns, and sets the cells' patrol area ids, before the table is built
            # (its ``cur`` argument is not read: no mask of the period's points is made here)
            describe_patrol_areas(res, inputs, grid, cell, None, members, sel, area, cfg, shared=per_area,
                                  columns=columns)
        cells = gpd.GeoDataFrame(columns, index=grid.index, geometry="geometry", crs=BNG)
        cells.attrs = copy.deepcopy(grid.attrs)
        res.cells = cells
        cls, moran_cls = _class_counts(gi["gi_class"]), _class_counts(moran["moran_class"])
        res.summary = {
            "study_area_type": area.area_type, "study_area_code": area.code, "study_area_name": area.name,
            "selection": sel, "cell_size_m": area.cell_size, "cell_size_reason": area.cell_size_reason, "n_cells": n,
            "count": int(counts.sum()), "hot_99": cls.get("hot_99", 0), "hot_95": cls.get("hot_95", 0),
            "hot_90": cls.get("hot_90", 0), "cold_cells": sum(v for k, v in cls.items() if k.startswith("cold")),
            "moran_hotspot_HH": moran_cls.get("hotspot_HH", 0), "kde_bandwidth_m": bandwidth,
            "kde_bandwidth_reason": bw_reason, "clusters": len(clusters),
            "patrol_areas": len(res.patrol_areas) if res.patrol_areas is not None else (np.nan if not patrol else 0),
            "note": res.note,
        }
        results[sel] = res
    return AreaResult(area=area, grid=grid, selections=results)


class _MonthlyCounts:
    """Counts per cell and month (``inputs.months_all``) of a selection of points, in one bincount."""

    def __init__(self, inputs: Inputs, codes: PointCodes, cell: np.ndarray, n_cells: int):
        self.months = list(inputs.months_all)
        self.n_cells = n_cells
        self.cell = cell
        self.column = codes.month_position(self.months)

    def by_month(self, in_sel: np.ndarray) -> np.ndarray:
        """(n_cells, n_months) float counts of the selected points (months outside ``months_all`` left out)."""
        return self.by_month_rows(np.flatnonzero(in_sel))

    def by_month_rows(self, sel_idx: np.ndarray) -> np.ndarray:
        """:meth:`by_month` of the points at positions ``sel_idx`` (ascending)."""
        col = self.column[sel_idx]
        ok = col >= 0
        n, m = self.n_cells, len(self.months)
        flat = col[ok] * n + self.cell[sel_idx][ok]
        return np.bincount(flat, minlength=n * m).reshape(m, n).T.astype(float)


def _class_counts(categories: pd.Series) -> dict[str, int]:
    """Cells per class of a categorical column, by its text (as counting the column :func:`_text_of` makes)."""
    cat = categories.array
    codes = np.asarray(cat.codes)
    counts = np.bincount(codes[codes >= 0], minlength=len(cat.categories))
    out: dict[str, int] = {}
    for label, count in zip((str(c) for c in cat.categories), counts.tolist()):
        out[label] = out.get(label, 0) + int(count)
    return out


def _text_of(categories: pd.Series):
    """A categorical column as text (``.astype(str)``), by taking from its categories in Arrow."""
    import pyarrow as pa

    cat = categories.array
    codes = np.asarray(cat.codes)
    if codes.size and codes.min() < 0:  # a missing entry: the reference route
        return _text_of_reference(categories)
    # taken in the large_string type the text dtype holds, and wrapped without pd.array's conversion
    labels = pa.array([str(c) for c in cat.categories], type=pa.large_string())
    return pd.arrays.ArrowStringArray(labels.take(pa.array(codes)), dtype=_TEXT)


def _text_of_reference(categories: pd.Series):
    """:func:`_text_of` converted by ``pd.array`` (the tests' reference)."""
    import pyarrow as pa

    cat = categories.array
    labels = pa.array([str(c) for c in cat.categories])
    return pd.array(labels.take(pa.array(np.asarray(cat.codes))), dtype=_TEXT)


def _town_centre_of_cells(grid: gpd.GeoDataFrame, town_centres: gpd.GeoDataFrame) -> np.ndarray:
    out = np.full(len(grid), "", dtype=object)
    if town_centres is None or len(town_centres) == 0 or len(grid) == 0:
        return out
    pairs = assign_points(grid["x_centre"].to_numpy(), grid["y_centre"].to_numpy(), town_centres, exclusive=True)
    out[pairs["point"].to_numpy()] = town_centres["area_name"].to_numpy()[pairs["area"].to_numpy()]
    return out

