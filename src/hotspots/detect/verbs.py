"""The notebook verbs of hotspot detection: :func:`find_hotspots` and :func:`patrol_areas`.

Points and a study area in, a GeoDataFrame out, with the same methods (and
the same columns, where they apply) as the ``hotspots`` command's
``grid_cells.gpkg`` and ``patrol_areas.gpkg``.  The map of the result is
:func:`hotspots.render.maps.hotspot_map`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from hotspots._errors import CRSError, ValidationError
from hotspots._validate import (
    _check_choice,
    _check_int,
    _check_levels,
    _check_xy,
    _check_xy_metres,
    _Problems,
)
from hotspots.detect.gistar import gi_star
from hotspots.detect.patrol import bridge_cells, core_cells, demote_empty_hot_cells, merge_hot_cells
from hotspots.geo.grid import assign_to_cells, choose_cell_size, make_grid
from hotspots.geo.weights import grid_weights
from hotspots.schema import BNG

__all__ = ["find_hotspots", "patrol_areas", "HOTSPOT_COLUMNS", "PATROL_COLUMNS"]

#: columns of :func:`find_hotspots` (before ``geometry``)
HOTSPOT_COLUMNS = ["cell_id", "row", "col", "x_centre", "y_centre", "cell_area_km2", "count", "gi_z", "gi_p", "gi_q",
                   "gi_test", "gi_class"]
#: columns of :func:`patrol_areas` (before ``geometry``)
PATROL_COLUMNS = ["patrol_area_id", "rank", "n_cells", "area_km2", "hot_region_km2", "count", "mean_gi_z", "max_gi_z",
                  "x_centroid", "y_centroid", "cell_ids"]
#: Gi* classes that may join a patrol area, by confidence
_PATROL_CLASSES = {90: ("hot_99", "hot_95", "hot_90"), 95: ("hot_99", "hot_95"), 99: ("hot_99",)}


def _is_bng(crs: Any) -> bool:
    return crs is not None and gpd.GeoSeries([], crs=crs).crs.to_epsg() == 27700


def _area_geometry(area: Any, problems: _Problems):
    """The study area as one shapely geometry in EPSG:27700 (CRS checked for GeoPandas input)."""
    if isinstance(area, (gpd.GeoDataFrame, gpd.GeoSeries)):
        if area.crs is not None and not _is_bng(area.crs):
            raise CRSError(f"find_hotspots: area is in {area.crs.to_string()}, not EPSG:27700",
                           hint="reproject it first: area.to_crs(27700)")
        if len(area) == 0:
            problems.add("area is empty", "Pass the study area's polygon(s).")
            return None
        return shapely.union_all(np.asarray(area.geometry.values))
    if isinstance(area, shapely.Geometry):
        return area
    problems.add(f"area must be a GeoDataFrame, GeoSeries or shapely polygon; got {type(area).__name__}",
                 "Pass the study area, e.g. hotspots.read_boundary(...) or shapely.box(xmin, ymin, xmax, ymax).")
    return None


def _point_xy(points: Any, problems: _Problems) -> tuple[np.ndarray, np.ndarray, pd.DataFrame | None]:
    if not isinstance(points, pd.DataFrame):
        problems.add(f"points must be a DataFrame or GeoDataFrame; got {type(points).__name__}",
                     "Pass a table of points with x and y columns (metres, EPSG:27700).")
        return np.empty(0), np.empty(0), None
    if isinstance(points, gpd.GeoDataFrame) and points.crs is not None and not _is_bng(points.crs):
        raise CRSError(f"find_hotspots: points are in {points.crs.to_string()}, not EPSG:27700",
                       hint="reproject them first: points.to_crs(27700)")
    if {"x", "y"} <= set(points.columns):
        x, y = _check_xy(problems, points["x"], points["y"])
    elif isinstance(points, gpd.GeoDataFrame):
        geoms = np.asarray(points.geometry.values)
        x, y = shapely.get_x(geoms), shapely.get_y(geoms)
    else:
        problems.add("points have neither x/y columns nor a geometry", "Pass x and y in metres (EPSG:27700).")
        return np.empty(0), np.empty(0), None
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float), points


def find_hotspots(points: Any, area: Any, *, cell_size: float | None = None,
                  crime_types: Sequence[str] | None = None, neighbourhood: str = "queen", fdr: bool = True,
                  levels: Sequence[float] = (0.90, 0.95, 0.99), shape: str = "square") -> gpd.GeoDataFrame:
    """Getis-Ord Gi* hot and cold spots of points on a grid over a study area.

    The points are counted in the cells of a grid clipped to ``area``
    (:func:`hotspots.geo.grid.make_grid`); each cell's Gi* z-score compares
    the crimes in it and its neighbours with the study area's mean
    (:func:`hotspots.detect.gistar.gi_star`, the cell itself included), and
    the p-values are corrected for testing every cell at once
    (Benjamini-Hochberg false discovery rate).  Points outside the area are
    not counted (reported in ``attrs``).

    Parameters
    ----------
    points : DataFrame or GeoDataFrame
        One row per crime with ``x``, ``y`` in metres (EPSG:27700) -- or a
        point geometry -- and ``crime_type`` when ``crime_types`` is given
        (:func:`hotspots.read_crimes` gives this).
    area : GeoDataFrame, GeoSeries or shapely geometry
        The study area in EPSG:27700 (several polygons are joined).
    cell_size : float, optional
        Cell side in metres.  ``None`` chooses it from the area (sfhotspot's
        rule, never below the 100 m snapping of police.uk locations:
        :func:`hotspots.geo.grid.choose_cell_size`); the choice and its
        reason are in ``attrs``.
    crime_types : sequence of str, optional
        Count only these crime types (default: every point).
    neighbourhood : {"queen", "rook"}, default "queen"
        Neighbours of a cell: the 8 around it (queen) or the 4 sharing an
        edge (rook); see :func:`hotspots.geo.weights.grid_weights`.
    fdr : bool, default True
        Benjamini-Hochberg correction across the area (``gi_q``); False
        classifies on the raw p-values (``gi_q = gi_p``).
    levels : sequence of float, default (0.90, 0.95, 0.99)
        Confidence levels of the classes.
    shape : {"square", "hex"}, default "square"

    Returns
    -------
    geopandas.GeoDataFrame
        One row per grid cell, in EPSG:27700, with the columns of
        ``grid_cells.gpkg`` that apply:

        * ``cell_id`` -- stable id from the lattice position (e.g.
          ``sq200_r003_c004``); ``row``, ``col`` -- lattice position;
        * ``x_centre``, ``y_centre`` -- cell centre (metres);
          ``cell_area_km2`` -- area of the cell inside the study area;
        * ``count`` -- points in the cell;
        * ``gi_z`` -- Gi* z-score (positive: more than the area's mean
          around the cell); ``gi_p`` -- two-sided p-value of the test used;
          ``gi_q`` -- FDR-adjusted p-value (``gi_p`` when ``fdr=False``);
        * ``gi_test`` -- ``normal`` (Gi*'s normal approximation),
          ``exact_binomial`` (the exact tail given the total, when it is the
          larger p) or ``below_minimum`` (under 3 crimes in the
          neighbourhood: never hot), see :func:`hotspots.detect.gistar.gi_star`;
        * ``gi_class`` -- ``hot_99``, ``hot_95``, ``hot_90``,
          ``not_significant``, ``cold_90``, ``cold_95``, ``cold_99`` (the
          strictest level whose alpha ``gi_q`` is at or below; labels follow
          ``levels``);
        * ``geometry`` -- the cell, clipped to the area.

        ``attrs``: ``cell_size``, ``cell_size_reason``, ``n_points``
        (counted), ``n_outside`` (points outside every cell), ``grid``
        (lattice parameters) and ``gi_star`` (the test's settings).

    Notes
    -----
    Getis & Ord (1992) "The analysis of spatial association by use of
    distance statistics", Geographical Analysis 24:189-206; Ord & Getis
    (1995) Geographical Analysis 27:286-306; Benjamini & Hochberg (1995)
    JRSS B 57:289-300.  The cell-size rule is sfhotspot's (Ashby 2023).
    Gi* is about a cell's *neighbourhood*: a cell with few crimes next to a
    busy one can be hot.  On sparse counts the normal approximation alone
    makes a neighbourhood of one or two crimes "significant"; the larger of
    the normal and the exact binomial p, and a minimum of 3 crimes in a hot
    neighbourhood, keep the false-discovery rate at its nominal level.  Merge hot cells into patrol areas with
    :func:`patrol_areas`; draw them with :func:`hotspots.render.maps.hotspot_map`.

    Examples
    --------
    >>> import shapely
    >>> from hotspots.datasets import synthetic_points
    >>> pts = synthetic_points(seed=1)                  # 750 points, a planted cluster at the centre
    >>> area = shapely.box(520_000, 210_000, 522_000, 212_000)
    >>> cells = find_hotspots(pts, area, cell_size=200)
    >>> len(cells), int(cells["count"].sum()), cells.attrs["cell_size"]
    (100, 750, 200.0)
    >>> cells.sort_values("gi_z").iloc[-1][["cell_id", "gi_class"]].tolist()
    ['sq200_r005_c004', 'hot_99']
    """
    problems = _Problems("find_hotspots")
    x, y, table = _point_xy(points, problems)
    geometry = _area_geometry(area, problems)
    _check_choice(problems, "neighbourhood", neighbourhood, ("queen", "rook"))
    _check_choice(problems, "shape", shape, ("square", "hex"))
    _check_choice(problems, "fdr", fdr, (True, False))
    confidence = _check_levels(problems, "levels", levels)
    if cell_size is not None and (isinstance(cell_size, bool) or not isinstance(cell_size, (int, float, np.number))
                                  or not np.isfinite(cell_size) or cell_size <= 0):
        problems.add(f"cell_size must be a positive number of metres; got {cell_size!r}", "For example cell_size=150.")
    if crime_types is not None and table is not None and "crime_type" not in table.columns:
        problems.add("crime_types needs a crime_type column in points", "Leave crime_types=None to count every point.")
    problems.raise_if_any()
    if geometry is None or geometry.is_empty or geometry.area <= 0:
        raise ValidationError("find_hotspots: area has no extent", hint="Pass the study area's polygon(s).")
    keep = np.isfinite(x) & np.isfinite(y)
    if crime_types is not None:
        keep &= table["crime_type"].isin(list(crime_types)).to_numpy()
    x, y = x[keep], y[keep]
    _check_xy_metres(x, y, geometry.bounds)
    if cell_size is None:
        size, reason = choose_cell_size(geometry)
    else:
        size, reason = float(cell_size), f"cell size {float(cell_size):,.0f} m given by the user"
    grid = make_grid(geometry, size, shape=shape, crs=BNG)
    if len(grid) < 2:
        raise ValidationError(f"find_hotspots: the grid has {len(grid)} cell(s); Gi* needs at least two",
                              hint="Use a smaller cell_size or a larger area.")
    cell = assign_to_cells(x, y, grid)
    counts = np.bincount(cell[cell >= 0], minlength=len(grid)).astype(float)
    weights = grid_weights(grid, neighbourhood=neighbourhood, include_self=True)
    gi = gi_star(counts, weights, correction="fdr_bh" if fdr else None,
                 alpha_levels=tuple(sorted(round(1.0 - c, 12) for c in confidence)))
    gi = demote_empty_hot_cells(grid, gi, counts)  # an empty cell is hot only where it bridges crime
    out = grid[["cell_id", "row", "col", "x_centre", "y_centre", "cell_area_km2"]].copy()
    out["count"] = counts.astype(np.int64)
    out["gi_z"] = gi["gi_z"].to_numpy()
    out["gi_p"] = gi["gi_p"].to_numpy()
    out["gi_q"] = gi["gi_q"].to_numpy()
    out["gi_test"] = gi["gi_test"].astype(str).to_numpy()
    out["gi_class"] = gi["gi_class"].astype(str).to_numpy()
    result = gpd.GeoDataFrame(out, geometry=grid.geometry.values, crs=BNG)
    result.attrs = {**grid.attrs, "cell_size": size, "cell_size_reason": reason, "n_points": int((cell >= 0).sum()),
                    "n_outside": int((cell < 0).sum()), "gi_star": gi.attrs.get("gi_star", {})}
    return result


def patrol_areas(cells: gpd.GeoDataFrame, *, confidence: int = 95, min_count: int = 1, top_n: int | None = 5,
                 max_area_km2: float = 0.5) -> gpd.GeoDataFrame:
    """Numbered patrol areas: significant hot cells merged into contiguous polygons, busiest first.

    The steps of the ``hotspots`` command's patrol areas, on the cells of
    :func:`find_hotspots`: cells hot at ``confidence`` or above are the
    candidates; a connected region of them larger than ``max_area_km2`` is
    cut down to its busiest cores (:func:`hotspots.detect.patrol.core_cells`,
    peeling the lowest Gi* z first); hot cells without crime are dropped
    unless they bridge two crime-bearing cells
    (:func:`hotspots.detect.patrol.bridge_cells`); the remaining cells are merged with their
    queen neighbours (:func:`hotspots.detect.patrol.merge_hot_cells`), areas
    with fewer than ``min_count`` crimes dropped, and the rest ranked by
    crimes (ties: the smallest member ``cell_id``), keeping ``top_n``.

    Parameters
    ----------
    cells : GeoDataFrame
        From :func:`find_hotspots` (``cell_id``, ``row``, ``col``,
        ``cell_area_km2``, ``count``, ``gi_z``, ``gi_class``; EPSG:27700).
    confidence : {90, 95, 99}, default 95
        Gi* confidence a cell needs to join an area.
    min_count : int, default 1
        Crimes an area needs (the command uses one a month of the period).
    top_n : int or None, default 5
        Areas kept (None: all).
    max_area_km2 : float, default 0.5
        Largest area, about a town centre a beat team can walk.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per area, by rank, in EPSG:27700: ``patrol_area_id``
        (``PA-01``, ``PA-02``, ... by rank), ``rank``, ``n_cells``,
        ``area_km2``, ``hot_region_km2`` (the connected hot region it was cut
        from), ``count``, ``mean_gi_z``, ``max_gi_z``, ``x_centroid``,
        ``y_centroid``, ``cell_ids`` (";"-separated) and ``geometry`` (the
        merged cells).

    Notes
    -----
    Gi* hot spots (Getis & Ord 1992) with FDR control mark where crime
    concentrates; hot spots policing is most effective on small, well-defined
    places (Braga et al. 2019, Campbell Systematic Reviews 15:e1046), hence
    the cap on an area's size.

    Examples
    --------
    >>> import shapely
    >>> from hotspots.datasets import synthetic_points
    >>> cells = find_hotspots(synthetic_points(seed=1), shapely.box(520_000, 210_000, 522_000, 212_000),
    ...                       cell_size=200)
    >>> areas = patrol_areas(cells)
    >>> areas[["patrol_area_id", "rank", "n_cells"]].values.tolist()[:1]
    [['PA-01', 1, 8]]
    >>> bool(areas.geometry.iloc[0].contains(shapely.Point(521_000, 211_000)))
    True
    """
    problems = _Problems("patrol_areas")
    if not isinstance(cells, gpd.GeoDataFrame):
        problems.add(f"cells must be a GeoDataFrame from find_hotspots; got {type(cells).__name__}",
                     "Pass the result of hotspots.find_hotspots(points, area).")
        problems.raise_if_any()
    missing = [c for c in ("cell_id", "row", "col", "cell_area_km2", "count", "gi_z", "gi_class") if c not in cells]
    if missing:
        problems.add(f"cells lacks the columns {missing}", "Pass the result of hotspots.find_hotspots(points, area).")
    _check_choice(problems, "confidence", confidence, (90, 95, 99))
    _check_int(problems, "min_count", min_count, 0)
    if top_n is not None:
        _check_int(problems, "top_n", top_n, 1)
    if isinstance(max_area_km2, bool) or not isinstance(max_area_km2, (int, float)) or not max_area_km2 > 0:
        problems.add(f"max_area_km2 must be a positive number; got {max_area_km2!r}", "For example max_area_km2=0.5.")
    problems.raise_if_any()
    cls = cells["gi_class"].astype(str).to_numpy(dtype=object)
    eligible = np.where(np.isin(cls, _PATROL_CLASSES[confidence]), cls, "not_significant")
    smallest_hot = cells["cell_area_km2"].to_numpy(float)[eligible != "not_significant"]
    if smallest_hot.size and smallest_hot.min() > max_area_km2:
        # every candidate cell alone is over the cap: an empty answer would read as "no hot spots"
        problems.add(f"the hot cells are {smallest_hot.min():.2f} km² or larger, over max_area_km2={max_area_km2!r}, "
                     "so no patrol area could be drawn",
                     "Use smaller cells (find_hotspots(..., cell_size=200)) or a larger max_area_km2.")
        problems.raise_if_any()
    z = cells["gi_z"].to_numpy(float)
    core, region_km2 = core_cells(cells, eligible != "not_significant", z, float(max_area_km2))
    core, _ = bridge_cells(cells, core, cells["count"].to_numpy(float))
    rows = np.flatnonzero(core)
    merged = merge_hot_cells(cells.iloc[rows], eligible[rows], counts=cells["count"].to_numpy()[rows], gi_z=z[rows])
    merged = merged[merged["count"] >= min_count].sort_values("rank")
    if top_n is not None:
        merged = merged.head(top_n)
    merged = merged.reset_index(drop=True)
    merged["rank"] = np.arange(1, len(merged) + 1)
    merged["patrol_area_id"] = [f"PA-{r:02d}" for r in merged["rank"]]
    position = pd.Series(np.arange(len(cells)), index=cells["cell_id"].astype(str).to_numpy())
    merged["hot_region_km2"] = [float(region_km2[position[ids.split(";")[0]]]) for ids in merged["cell_ids"]]
    return gpd.GeoDataFrame(merged[PATROL_COLUMNS], geometry=merged.geometry.values, crs=cells.crs)
