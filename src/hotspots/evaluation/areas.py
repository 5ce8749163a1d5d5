"""Treated areas, their displacement buffers and the pool of untreated cells for matched controls.

The toolkit's own *illustrative* treated areas (busiest grid cells merged into
patrol areas, or town centres named in the config) are built here from plain data; which one a run uses is the stage's
choice (``[evaluation] selection``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from hotspots._errors import DataNotFoundError, ValidationError
from hotspots.geo.aggregate import Period
from hotspots.geo.assign import assign_points
from hotspots.geo.grid import assign_to_cells, make_grid
from hotspots.months import human_period
from hotspots.schema import AREA_COLUMNS, BNG

__all__ = [
    "FULL_CELL_SHARE", "MAX_CELLS_PER_PATROL_AREA", "TreatedAreas", "as_treated_areas",
    "illustrative_patrol_areas", "make_buffers", "named_town_centres", "patrol_area_treatment",
    "town_centre_treatment",
]

#: Pool cells must be at least this share of a full cell to count as "the same size".
FULL_CELL_SHARE = 0.9
#: The largest illustrative patrol area, in grid cells.
MAX_CELLS_PER_PATROL_AREA = 4


@dataclasses.dataclass
class TreatedAreas:
    """Treated areas and how they were chosen.

    Attributes
    ----------
    areas : geopandas.GeoDataFrame
        ``AREA_COLUMNS`` (+ ``selection_count`` for illustrative patrol areas), EPSG:27700.
    source : str
        ``"file"``, ``"patrol_areas"``, ``"town_centres"``, ``"user"`` or a registered name.
    description : str
        How the areas were chosen, for the report.
    illustrative : bool
        True for the toolkit's own stand-in areas (not the real patrol areas).
    selected_on_counts : bool or None
        True: chosen on the before-period counts (regression to the mean
        expected); False: not chosen on counts; None: unknown (a user file).
    selection_period : Period, optional
        The months the areas were picked on, when known.
    """

    areas: gpd.GeoDataFrame  # AREA_COLUMNS (+ selection_count)
    source: str  # "file", "patrol_areas", "town_centres", or a registered name
    description: str
    illustrative: bool
    #: True: chosen on the before-period counts (regression to the mean expected);
    #: False: not chosen on counts; None: unknown (a user file)
    selected_on_counts: bool | None
    selection_period: Period | None = None


def illustrative_patrol_areas(
    points: pd.DataFrame,
    study_area: gpd.GeoDataFrame,
    districts: gpd.GeoDataFrame,
    *,
    months: Sequence[str],
    crime_types: Sequence[str],
    n_areas: int = 26,
    cell_m: float = 250.0,
    grid: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Illustrative patrol areas: the highest-count grid cells, contiguous cells merged.

    A simple, documented stand-in for hotspot patrol areas (the detect stage's
    ``patrol_areas`` can replace it through a polygon file or the evaluate
    stage's treated-area sources):

    1. count ``crime_types`` in ``months`` per ``cell_m`` grid cell (grid
       clipped to the study area); each cell belongs to the district holding
       its centre;
    2. per district, take cells in descending count; a cell touching (queen)
       an area already started joins it (up to
       :data:`MAX_CELLS_PER_PATROL_AREA` cells), otherwise it starts a new area;
       cells next to a full area are skipped;
    3. every district gets ``n_areas // n_districts`` areas (a force-wide
       programme usually patrols every district); the remaining places go
       to the highest-count areas anywhere.

    Parameters
    ----------
    points : pandas.DataFrame
        Points (``x``, ``y`` in EPSG:27700, ``month``, ``crime_type``; the
        optional ``location`` names the areas).
    study_area, districts : geopandas.GeoDataFrame
        The study area (the grid is clipped to it) and its districts
        (``area_code``, ``area_name``).
    months, crime_types : sequence of str
        What is counted to pick the cells.
    n_areas : int, default 26
        How many areas.
    cell_m : float, default 250.0
        Grid cell size in metres.
    grid : geopandas.GeoDataFrame, optional
        A ready-made grid (:func:`hotspots.geo.grid.make_grid`).

    Returns
    -------
    geopandas.GeoDataFrame
        An area table (``AREA_COLUMNS`` + ``selection_count``), codes
        ``IA01``... in descending count, names "<busiest street> (<district>)".
    """
    grid = make_grid(study_area, cell_m) if grid is None else grid
    sel = points[points["month"].isin(set(months)) & points["crime_type"].isin(set(crime_types))]
    cell = assign_to_cells(sel["x"].to_numpy(), sel["y"].to_numpy(), grid)
    counts = np.bincount(cell[cell >= 0], minlength=len(grid))
    centre_district = _district_of_xy(grid["x_centre"].to_numpy(), grid["y_centre"].to_numpy(), districts)
    rowcol = {(int(r), int(c)): i for i, (r, c) in enumerate(zip(grid["row"], grid["col"]))}
    n_districts = max(1, len(districts))
    per_district = n_areas // n_districts if n_areas >= n_districts else 0

    candidates = []  # (district, rank_in_district, seed_count, [cell positions])
    for code in districts["area_code"]:
        idx = np.flatnonzero((centre_district == code) & (counts > 0))
        order = idx[np.lexsort((grid["cell_id"].to_numpy()[idx], -counts[idx]))]
        areas: list[list[int]] = []
        owner: dict[int, int] = {}
        for pos in order:
            r, c = int(grid["row"].iloc[pos]), int(grid["col"].iloc[pos])
            adjacent = sorted({owner[n] for dr in (-1, 0, 1) for dc in (-1, 0, 1)
                               if (n := rowcol.get((r + dr, c + dc))) is not None and n in owner})
            if adjacent:
                open_area = next((a for a in adjacent if len(areas[a]) < MAX_CELLS_PER_PATROL_AREA), None)
                if open_area is not None:
                    areas[open_area].append(int(pos))
                    owner[int(pos)] = open_area
                continue
            if len(areas) >= n_areas:
                continue
            owner[int(pos)] = len(areas)
            areas.append([int(pos)])
        for rank, cells in enumerate(areas):
            candidates.append((code, rank, int(counts[cells[0]]), cells))
    chosen = [c for c in candidates if c[1] < per_district]
    rest = sorted((c for c in candidates if c[1] >= per_district), key=lambda c: (-c[2], c[0], c[1]))
    chosen += rest[: max(0, n_areas - len(chosen))]
    chosen.sort(key=lambda c: (-sum(int(counts[p]) for p in c[3]), c[0], c[1]))

    names = districts.set_index("area_code")["area_name"]
    loc = sel["location"].astype(str).str.replace(r"^On or near\s*", "", regex=True).to_numpy() if "location" in sel else None
    rows = []
    for i, (code, _rank, _seed, cells) in enumerate(chosen):
        geom = shapely.union_all(grid.geometry.values[cells])
        in_area = np.isin(cell, cells)
        street = ""
        if loc is not None and in_area.any():
            street = pd.Series(loc[in_area]).value_counts().index[0]
        street = street or f"cell {grid['cell_id'].iloc[cells[0]]}"
        rows.append({
            "area_code": f"IA{i + 1:02d}",
            "area_name": f"{street} ({names.get(code, code)})",
            "district_code": code,
            "selection_count": int(counts[cells].sum()),
            "geometry": geom,
        })
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=BNG) if rows else gpd.GeoDataFrame(
        {"area_code": [], "area_name": [], "district_code": [], "selection_count": []}, geometry=[], crs=BNG)
    return _as_area_table(gdf, "patrol_area", keep=("selection_count",))


def named_town_centres(town_centres: gpd.GeoDataFrame, names: Sequence[str]) -> gpd.GeoDataFrame:
    """The town centres of ``names`` from a town-centre layer.

    Parameters
    ----------
    town_centres : geopandas.GeoDataFrame
        A town-centre layer with ``area_name``.
    names : sequence of str
        The town centres to keep (e.g. ``[evaluation] town_centres`` of the config).

    Returns
    -------
    geopandas.GeoDataFrame
        The named town centres, ``area_type`` "town_centre".

    Raises
    ------
    DataNotFoundError
        When a named town centre is not in the layer.
    """
    found = town_centres[town_centres["area_name"].isin(names)]
    missing = sorted(set(names) - set(found["area_name"]))
    if missing:
        raise DataNotFoundError(
            f"town centre(s) {missing} are not in the town-centre layer ({len(town_centres)} areas)",
            hint="use the built-in town centres (geography.town_centres = \"\") or give polygons with --areas",
        )
    out = found.copy()
    out["area_type"] = "town_centre"
    return out.reset_index(drop=True)


def _as_area_table(gdf: gpd.GeoDataFrame, area_type: str, keep: Sequence[str] = ()) -> gpd.GeoDataFrame:
    out = gdf.copy()
    out["area_type"] = area_type
    for col, default in (("district_code", ""), ("population", np.nan)):
        if col not in out:
            out[col] = default
    out["area_km2"] = out.geometry.area / 1e6
    cols = AREA_COLUMNS[:-1] + [c for c in keep if c in out] + ["geometry"]
    return gpd.GeoDataFrame(out[cols].reset_index(drop=True), geometry="geometry", crs=BNG)


def _positions_of(values, positions: dict) -> np.ndarray:
    """``positions[v]`` for each value (``Series.map(positions)``), -1 where absent or missing; each distinct value looked up once."""
    codes, uniques = pd.factorize(values)
    return np.array([positions.get(u, -1) for u in uniques] + [-1], dtype=np.int64)[codes]


def _district_of_xy(x: np.ndarray, y: np.ndarray, districts: gpd.GeoDataFrame) -> np.ndarray:
    out = np.full(len(x), "", dtype=object)
    if len(x) == 0 or len(districts) == 0:
        return out
    pairs = assign_points(x, y, districts, exclusive=True)
    out[pairs["point"].to_numpy()] = districts["area_code"].to_numpy()[pairs["area"].to_numpy()]
    return out



def as_treated_areas(areas: gpd.GeoDataFrame, *, description: str = "", source: str = "user",
                     selected_on_counts: bool | None = None) -> TreatedAreas:
    """Treated areas from any polygon layer: codes and names added when missing, projected to EPSG:27700.

    Parameters
    ----------
    areas : geopandas.GeoDataFrame
        Treated polygons; ``area_code`` and ``area_name`` are optional
        (codes ``T01``, ``T02``... are generated; a missing name is the code).
        A layer in another CRS is reprojected to EPSG:27700.
    description : str, optional
        How the areas were chosen, for the report (default "<n> treated areas").
    source : str, default "user"
        A short name of where the areas came from.
    selected_on_counts : bool or None, default None
        True when the areas were picked on their recent counts (regression to
        the mean expected), False when not, None when unknown.

    Returns
    -------
    TreatedAreas

    Examples
    --------
    >>> from shapely import box
    >>> squares = gpd.GeoDataFrame(geometry=[box(0, 0, 500, 500), box(1000, 0, 1500, 500)], crs=BNG)
    >>> t = as_treated_areas(squares)
    >>> list(t.areas["area_code"]), list(t.areas["area_name"]), t.description
    (['T01', 'T02'], ['T01', 'T02'], '2 treated areas')
    """
    if not isinstance(areas, gpd.GeoDataFrame):
        raise ValidationError(f"as_treated_areas: areas must be a GeoDataFrame; got {type(areas).__name__}",
                              hint="read the polygons with geopandas.read_file")
    gdf = areas.copy()
    if gdf.crs is None:
        gdf = gdf.set_crs(BNG)
    elif gdf.crs != BNG:
        gdf = gdf.to_crs(BNG)
    width = max(2, len(str(len(gdf))))
    if "area_code" not in gdf:
        gdf["area_code"] = [f"T{i + 1:0{width}d}" for i in range(len(gdf))]
    gdf["area_code"] = gdf["area_code"].astype(str)
    if "area_name" not in gdf:
        gdf["area_name"] = gdf["area_code"]
    if gdf["area_code"].duplicated().any():
        raise ValidationError("as_treated_areas: area codes repeat: "
                              f"{sorted(gdf.loc[gdf['area_code'].duplicated(), 'area_code'].unique())[:5]}",
                              hint="give every treated area its own area_code (or drop the column)")
    table = _as_area_table(gdf, "user", keep=("selection_count",))
    return TreatedAreas(areas=table, source=source, description=description or f"{len(table)} treated areas",
                        illustrative=False, selected_on_counts=selected_on_counts)


def town_centre_treatment(town_centres: gpd.GeoDataFrame, names: Sequence[str], *, source_text: str = "") -> TreatedAreas:
    """Named town centres, as illustrative treated areas.

    Parameters
    ----------
    town_centres : geopandas.GeoDataFrame
        A town-centre layer with ``area_name``.
    names : sequence of str
        The town centres to evaluate.
    source_text : str, optional
        Where the names come from, for the description (e.g. "named in the programme's published results").

    Returns
    -------
    TreatedAreas
        Illustrative, not selected on counts (``selected_on_counts=False``).
    """
    if not names:
        raise ValidationError("town_centre_treatment: no town-centre names given",
                              hint="list them in [evaluation] town_centres, or give polygons with --areas")
    areas = named_town_centres(town_centres, names)
    return TreatedAreas(
        areas=areas, source="town_centres", illustrative=True, selected_on_counts=False,
        description=(f"the {len(areas)} town centres {source_text or 'named in the config'} ("
                     + ", ".join(areas["area_name"]) + "), using the toolkit's approximate town-centre circles"),
    )


def patrol_area_treatment(points: pd.DataFrame, study_area: gpd.GeoDataFrame, districts: gpd.GeoDataFrame, *,
                          period: Period, before: Period, crime_types: Sequence[str], group_name: str,
                          n_areas: int = 26, cell_m: float = 250.0) -> TreatedAreas:
    """Illustrative patrol areas picked on ``period`` (see :func:`illustrative_patrol_areas`), as treated areas.

    Parameters
    ----------
    points : pandas.DataFrame
        Points (``x``, ``y`` in EPSG:27700, ``month``, ``crime_type``, optional ``location``).
    study_area, districts : geopandas.GeoDataFrame
        The study area (the grid is clipped to it) and its districts.
    period : Period
        The months the areas are picked on.
    before : Period
        The evaluation's before period.
    crime_types : sequence of str
        The police.uk types counted to pick the areas.
    group_name : str
        Their name, for the description.
    n_areas : int, default 26
        How many areas.
    cell_m : float, default 250.0
        Grid cell size in metres.

    Returns
    -------
    TreatedAreas
        ``selected_on_counts`` is True when ``period`` overlaps ``before`` (the
        regression-to-the-mean check then tests what that selection alone would do).
    """
    areas = illustrative_patrol_areas(points, study_area, districts, months=period.months, crime_types=crime_types,
                                      n_areas=n_areas, cell_m=cell_m)
    overlap = set(period.months) & set(before.months)
    return TreatedAreas(
        areas=areas, source="patrol_areas", illustrative=True, selected_on_counts=bool(overlap),
        selection_period=period,
        description=(f"{len(areas)} illustrative patrol areas: the {cell_m:g} m grid cells with the most "
                     f"{group_name} in {human_period(period.label)} (touching cells merged, up to {MAX_CELLS_PER_PATROL_AREA} "
                     f"per area), at least {n_areas // max(1, len(districts))} in every district"),
    )


def make_buffers(areas: gpd.GeoDataFrame, buffer_m: float, study_area=None) -> gpd.GeoDataFrame:
    """Rings of ``buffer_m`` metres around each area, excluding every treated area.

    Each ring is ``area.buffer(buffer_m)`` minus the union of all treated
    areas, clipped to ``study_area`` when given.  Rings of neighbouring areas
    may overlap each other (per-area results count such crimes in both; the
    pooled buffer is their union).

    Parameters
    ----------
    areas : geopandas.GeoDataFrame
        Treated areas (``area_code``, ``area_name``, optional ``district_code``), EPSG:27700.
    buffer_m : float
        Ring width in metres.
    study_area : GeoDataFrame or shapely geometry, optional
        Clip the rings to this.

    Returns
    -------
    geopandas.GeoDataFrame
        One ring per area: ``area_code``, ``area_name``, ``district_code``, ``area_km2``.

    Examples
    --------
    >>> from shapely import box
    >>> a = gpd.GeoDataFrame({"area_code": ["A"], "area_name": ["a"]}, geometry=[box(0, 0, 100, 100)], crs=BNG)
    >>> ring = make_buffers(a, 50).geometry.iloc[0]
    >>> round(ring.area, -2), ring.intersection(box(0, 0, 100, 100)).area   # 2 x 100 x 50 x 2 + pi x 50^2
    (27800.0, 0.0)
    """
    geoms = _rings(np.asarray(areas.geometry.values), buffer_m, _clip_geometry(study_area))
    out = gpd.GeoDataFrame(
        {"area_code": areas["area_code"].to_numpy(), "area_name": areas["area_name"].to_numpy(),
         "district_code": areas["district_code"].to_numpy() if "district_code" in areas else ""},
        geometry=geoms, crs=BNG,
    )
    out["area_km2"] = out.geometry.area / 1e6
    return out


def _clip_geometry(study_area):
    if study_area is None:
        return None
    return study_area if isinstance(study_area, shapely.Geometry) else shapely.union_all(study_area.geometry.values)


def _rings(geoms: np.ndarray, buffer_m: float, clip) -> np.ndarray:
    """``buffer(g) - union(all geoms)``, clipped to ``clip``, for every ``g``: vectorised.

    The union of the treated areas is split into its separate pieces; each
    buffer is cut only by the pieces it touches (an STRtree query), not by
    the whole union: the same ring, but thousands of areas cost seconds, not
    minutes (differencing every buffer from the union of all areas scaled
    with n²).  Rings wholly inside ``clip`` are not intersected with it.
    """
    n = len(geoms)
    out = np.empty(n, dtype=object)
    if n == 0:
        return out
    buffered = shapely.buffer(geoms, buffer_m, quad_segs=16)
    pieces = shapely.get_parts(shapely.union_all(geoms))  # disjoint polygons
    pieces = pieces[shapely.get_type_id(pieces) == 3]
    ring_idx, piece_idx = shapely.STRtree(pieces).query(buffered, predicate="intersects")
    out[:] = buffered
    if len(ring_idx):
        order = np.argsort(ring_idx, kind="stable")
        ring_idx, piece_idx = ring_idx[order], piece_idx[order]
        cut, group = np.unique(ring_idx, return_inverse=True)
        out[cut] = shapely.difference(buffered[cut], shapely.multipolygons(pieces[piece_idx], indices=group))
    if clip is not None:
        shapely.prepare(clip)
        outside = ~shapely.contains(clip, out)
        if outside.any():
            out[outside] = shapely.intersection(out[outside], clip)
    return out


def _pool_grid(study_area_geom, cell_m: float, exclude_geom) -> gpd.GeoDataFrame:
    """Full-size grid cells of the study area that do not overlap treated areas or buffers."""
    grid = make_grid(study_area_geom, cell_m, crs=BNG)
    full = grid["cell_area_km2"].to_numpy() >= FULL_CELL_SHARE * grid["full_cell_km2"].to_numpy()
    overlaps = _overlap_area(np.asarray(grid.geometry.values), exclude_geom) > 1.0
    keep = full & ~overlaps
    out = grid.loc[keep].reset_index(drop=True)
    out.attrs["grid"] = grid.attrs["grid"]
    return out


def _overlap_area(cells: np.ndarray, geom, tile_cells: int = 16) -> np.ndarray:
    """``area(intersection(cell, geom))`` for every cell, fast when ``geom`` is one huge geometry.

    ``geom`` is prepared: cells it does not touch get 0 and cells wholly inside
    it their own area, without an overlay.  The cells on its edge are
    intersected in tiles of ``tile_cells`` x ``tile_cells`` cells with the part
    of ``geom`` inside the tile (one overlay with the whole geometry per tile,
    not per cell: with thousands of treated areas and their buffers the union
    has hundreds of thousands of vertices).
    """
    area = np.zeros(len(cells))
    if geom is None or geom.is_empty or len(cells) == 0:
        return area
    cand = shapely.STRtree(cells).query(geom)
    if len(cand) == 0:
        return area
    shapely.prepare(geom)
    cand = cand[shapely.intersects(geom, cells[cand])]
    inside = shapely.contains(geom, cells[cand])
    area[cand[inside]] = shapely.area(cells[cand[inside]])
    edge = cand[~inside]
    if len(edge) == 0:
        return area
    bounds = shapely.bounds(cells[edge])
    size = max(float(np.max(bounds[:, 2] - bounds[:, 0])), float(np.max(bounds[:, 3] - bounds[:, 1])), 1e-9) * tile_cells
    tile = np.floor(bounds[:, 0] / size).astype(np.int64) * 1_000_003 + np.floor(bounds[:, 1] / size).astype(np.int64)
    order = np.argsort(tile, kind="stable")
    edge, tile, bounds = edge[order], tile[order], bounds[order]
    starts = np.flatnonzero(np.r_[True, tile[1:] != tile[:-1], True])
    for a, b in zip(starts[:-1], starts[1:]):
        x0, y0 = bounds[a:b, 0].min(), bounds[a:b, 1].min()
        x1, y1 = bounds[a:b, 2].max(), bounds[a:b, 3].max()
        piece = shapely.intersection(geom, shapely.box(x0, y0, x1, y1))
        area[edge[a:b]] = shapely.area(shapely.intersection(cells[edge[a:b]], piece))
    return area


def _match_by_total(target: float, pool_before: np.ndarray, available: np.ndarray) -> list[int]:
    """Unused pool cells, largest first, whose before counts add up to about ``target``.

    A cell is taken when it brings the total closer to the target; cells are
    tried in descending count, so the best-matching high cells come first.
    """
    chosen: list[int] = []
    remaining = float(target)
    order = np.flatnonzero(available)
    order = order[np.argsort(-pool_before[order], kind="stable")]
    for i in order:
        if remaining <= 0.5:
            break
        v = float(pool_before[i])
        if v <= 0:
            break
        if v < 2 * remaining:
            chosen.append(int(i))
            remaining -= v
    return chosen
