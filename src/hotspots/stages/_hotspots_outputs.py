"""Writing the hotspots tables under ``hotspots/`` (the stage decides what is written, and when)."""

from __future__ import annotations

import functools
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from hotspots._parallel import collector_paused
from hotspots._text import slug
from hotspots.detect.columns import GRID_CELL_COLUMNS
from hotspots.detect.results import AreaResult, Inputs
from hotspots.schema import BNG

__all__ = ["ARCGIS_FIELDS", "GRID_CELLS_KEEP", "arcgis_fields", "grid_cells_everything", "keep_cell", "write_grid_cells",
           "write_tables"]

#: ArcGIS Pro's field names (Hot Spot Analysis; Cluster and Outlier Analysis), added alongside ours in grid_cells.gpkg
ARCGIS_FIELDS = ["GiZScore", "GiPValue", "Gi_Bin", "LMiIndex", "LMiPValue", "COType"]
_GI_BIN = {"hot_99": 3, "hot_95": 2, "hot_90": 1, "not_significant": 0, "cold_90": -1, "cold_95": -2, "cold_99": -3}
_CO_TYPE = {"hotspot_HH": "HH", "coldspot_LL": "LL", "outlier_HL": "HL", "outlier_LH": "LH"}
#: what grid_cells.gpkg keeps by default (the ``[outputs] grid_cells`` config key; ``"all"`` keeps every cell)
GRID_CELLS_KEEP = ("significant_or_nonzero", "all")


def arcgis_fields(cells: pd.DataFrame) -> pd.DataFrame:
    """The ArcGIS-style fields of grid cells (:data:`ARCGIS_FIELDS`), from our columns.

    ``Gi_Bin`` is -3..3 from ``gi_class`` (so it carries the FDR correction, like
    ArcGIS's "Apply False Discovery Rate Correction"); ``GiPValue`` is the raw p;
    ``COType`` is ``HH``/``LL``/``HL``/``LH`` for significant local Moran cells and
    blank otherwise, as in ArcGIS.

    >>> cells = pd.DataFrame({"gi_z": [3.2, -2.0, 0.1], "gi_p": [0.0001, 0.04, 0.9],
    ...                       "gi_class": ["hot_99", "cold_95", "not_significant"], "moran_i": [1.5, 0.2, 0.0],
    ...                       "moran_p": [0.001, 0.03, 0.5], "moran_class": ["hotspot_HH", "outlier_LH", "not_significant"]})
    >>> arcgis_fields(cells)[["Gi_Bin", "COType"]].to_dict("list")
    {'Gi_Bin': [3, -2, 0], 'COType': ['HH', 'LH', '']}
    """
    return pd.DataFrame({
        "GiZScore": cells["gi_z"].to_numpy(dtype=float),
        "GiPValue": cells["gi_p"].to_numpy(dtype=float),
        "Gi_Bin": _by_value(cells["gi_class"], lambda v: _GI_BIN.get(v, 0), 0).astype("int16"),
        "LMiIndex": cells["moran_i"].to_numpy(dtype=float),
        "LMiPValue": cells["moran_p"].to_numpy(dtype=float),
        "COType": _by_value(cells["moran_class"], lambda v: _CO_TYPE.get(v, ""), "").astype(object),
    }, index=cells.index)


def _by_value(column: pd.Series, value_of, missing) -> np.ndarray:
    """``value_of`` of each entry of ``column`` as text (``missing`` for a missing entry), once per distinct value.

    The same as ``column.astype(str).map(...)`` with missing entries filled, without a lookup per row.
    """
    codes, uniques = pd.factorize(column, use_na_sentinel=True)  # missing -> -1 on every pandas (astype(str) would make "nan")
    table = np.array([value_of(str(u)) for u in uniques] + [missing])
    return table[codes]  # code -1 (missing): the last entry


def keep_cell(cells: pd.DataFrame) -> np.ndarray:
    """Cells ``grid_cells.gpkg`` keeps by default: a crime, a significant Gi* or local Moran class, a patrol area
    or an emerging-hot-spot pattern (the rest are empty, not-significant cells).

    >>> keep_cell(pd.DataFrame({"count": [0, 2, 0], "gi_class": ["not_significant"] * 2 + ["cold_95"],
    ...     "moran_class": ["not_significant"] * 3, "patrol_area_id": ["", None, ""],
    ...     "emerging_class": ["no pattern detected"] * 3})).tolist()
    [False, True, True]
    """
    keep = cells["count"].to_numpy() > 0
    keep |= _text_test(cells["gi_class"], lambda v: v != "not_significant", True,
                       lambda a, pc: pc.not_equal(a, "not_significant"))
    keep |= _text_test(cells["moran_class"], lambda v: v in _CO_TYPE, False,
                       lambda a, pc: pc.is_in(a, value_set=_arrow_text(tuple(_CO_TYPE), a.type)))
    keep |= _text_test(cells["patrol_area_id"], lambda v: v != "", False, lambda a, pc: pc.not_equal(a, ""), fill="")
    keep |= _text_test(cells["emerging_class"], lambda v: v != "no pattern detected", False,
                       lambda a, pc: pc.not_equal(a, "no pattern detected"))
    return keep


def _text_test(column: pd.Series, test, missing: bool, arrow_test, fill: str | None = None) -> np.ndarray:
    """``test`` of each entry as text (``missing`` for a missing one; with ``fill``, missing entries are ``fill``).

    An Arrow text column (the analysis's) is tested in Arrow (``arrow_test``, the same comparison), without
    factorizing it; any other column by :func:`_by_value`.
    """
    if isinstance(column.array, pd.arrays.ArrowStringArray):
        import pyarrow as pa
        import pyarrow.compute as pc

        data = getattr(column.array, "_pa_array", None)
        if isinstance(data, pa.ChunkedArray) and (pa.types.is_string(data.type) or pa.types.is_large_string(data.type)):
            if fill is not None:
                data = pc.fill_null(data, fill)
                missing = bool(test(fill))
            tested = pc.fill_null(arrow_test(data, pc), missing)
            return np.asarray(tested.to_numpy(zero_copy_only=False), dtype=bool).copy()
    if fill is not None:
        column = column.fillna(fill)
    return _by_value(column, test, missing)


@functools.lru_cache(maxsize=4)
def _arrow_text(values: tuple[str, ...], arrow_type):
    """The values as an Arrow array of ``arrow_type`` (a value set for ``pyarrow.compute.is_in``), made once."""
    import pyarrow as pa

    return pa.array(list(values), type=arrow_type)


def grid_cells_everything(settings) -> bool:
    """Whether ``[outputs] grid_cells = "all"`` asks for every cell (default: the slim file)."""
    return dict(settings.extra.get("outputs", {}) or {}).get("grid_cells", GRID_CELLS_KEEP[0]) == "all"


def write_grid_cells(out, inputs: Inputs, areas: list[AreaResult], *, everything: bool = False) -> dict[str, int]:
    """``hotspots/grid_cells.gpkg``: two layers per selection, ``<selection>_county`` and ``<selection>_districts``.

    The county grid and the district grids overlap, so they are never in one
    layer; the districts layer holds every district's grid (filter on
    ``study_area_code``).  By default only the cells of :func:`keep_cell` are
    written (``everything=True``, from ``[outputs] grid_cells = "all"`` or
    ``--all-cells``, writes every cell).  Each layer carries our columns, the
    ArcGIS fields (:func:`arcgis_fields`) and an embedded QGIS style on ``Gi_Bin``.
    Returns the cells written and left out, for the run summary.
    """
    with collector_paused():
        layers, counts = _grid_cell_layers(inputs, areas, everything)
        # the Arrow path of pyogrio writes the same features, in half the time
        out.write_geo_layers(layers, "hotspots/grid_cells.gpkg", use_arrow=True)
    return counts


def _grid_cell_layers(inputs: Inputs, areas: list[AreaResult], everything: bool) -> tuple[list, dict[str, int]]:
    layers = []
    written = left_out = 0
    for sel in inputs.selections:
        for kind, group in (("county", [a for a in areas if a.area.area_type == "county"]),
                            ("districts", [a for a in areas if a.area.area_type != "county"])):
            if not group:
                continue
            # every area's cells in one table (a concatenation of blocks, Arrow text as chunks), then the kept cells
            # in one take: a keep_cell and a take per layer rather than per area
            parts = [pd.DataFrame(a.selections[sel].cells, copy=False) for a in group]  # plain frames: no attrs copies
            if all(p.columns.equals(parts[0].columns) for p in parts):  # one table, then its columns in order
                cells = pd.concat(parts, ignore_index=True)[GRID_CELL_COLUMNS[:-1]]
            else:
                cells = pd.concat([p[GRID_CELL_COLUMNS[:-1]] for p in parts], ignore_index=True)
            keep = np.ones(len(cells), dtype=bool) if everything else keep_cell(cells)
            written += int(keep.sum())
            left_out += int((~keep).sum())
            cells = cells.take(np.flatnonzero(keep)).reset_index(drop=True)
            # each area's kept shapes (its grid in the order of its cells)
            ends = np.cumsum([len(p) for p in parts])
            shapes = np.concatenate([np.asarray(a.grid.geometry.values)[np.flatnonzero(k)]
                                     for a, k in zip(group, np.split(keep, ends[:-1]))])
            cells = pd.concat([cells, arcgis_fields(cells)], axis=1)
            # the CRS given once, with the shapes (given to the frame too, it is compared with theirs: slow in pyproj)
            layers.append((f"{slug(sel, empty='x')}_{kind}",
                           gpd.GeoDataFrame(cells, geometry=gpd.GeoSeries(shapes, crs=BNG))))
    return layers, {"grid_cells_written": written, "grid_cells_left_out": left_out}


def write_tables(out, tables: dict[str, Any]) -> None:
    """The tables of :func:`hotspots.detect.tables.hotspot_tables` (all but ``grid_cells.gpkg``), in a fixed order."""
    patrol = tables["patrol_areas"]
    out.write_geo(patrol, "hotspots/patrol_areas.gpkg")
    out.write_geo(patrol, "hotspots/patrol_areas.geojson")
    out.write_csv(pd.DataFrame(patrol.drop(columns="geometry")), "hotspots/patrol_areas.csv")
    out.write_csv(tables["patrol_area_crime_types"], "hotspots/patrol_area_crime_types.csv")
    if tables["patrol_area_hour_of_week"] is not None:
        out.write_csv(tables["patrol_area_hour_of_week"], "hotspots/patrol_area_hour_of_week.csv")
    out.write_csv(tables["clusters"], "hotspots/clusters.csv")
    out.write_csv(tables["emerging"], "hotspots/emerging.csv")
    out.write_csv(tables["stability"], "hotspots/stability.csv")
    out.write_csv(tables["town_centres"], "hotspots/town_centre_hotspots.csv")
    out.write_csv(tables["study_areas"], "hotspots/study_areas.csv")
