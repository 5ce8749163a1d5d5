"""grid_cells.gpkg's layers (issue 18, second round): built from plain frames (one concatenation and one take
per layer), the same layers as the column-by-column way before."""

from __future__ import annotations

import types

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from hotspots.detect.columns import GRID_CELL_COLUMNS
from hotspots.schema import BNG
from hotspots.stages import _hotspots_outputs as outputs
from hotspots.stages._hotspots_outputs import arcgis_fields, keep_cell


def _reference(inputs, areas, everything=False):
    """write_grid_cells' layers as they were built before (a take per column of the GeoDataFrame)."""
    from hotspots._text import slug

    layers, written, left_out = [], 0, 0
    for sel in inputs.selections:
        for kind, group in (("county", [a for a in areas if a.area.area_type == "county"]),
                            ("districts", [a for a in areas if a.area.area_type != "county"])):
            if not group:
                continue
            parts, shapes = [], []
            for a in group:
                part = a.selections[sel].cells
                keep = np.ones(len(part), dtype=bool) if everything else keep_cell(part)
                written += int(keep.sum())
                left_out += int((~keep).sum())
                rows = np.flatnonzero(keep)
                parts.append(pd.DataFrame({c: part[c].array.take(rows) for c in GRID_CELL_COLUMNS[:-1]}))
                shapes.append(np.asarray(a.grid.geometry.values)[rows])
            cells = pd.concat(parts, ignore_index=True)
            cells = pd.concat([cells, arcgis_fields(cells)], axis=1)
            layers.append((f"{slug(sel, empty='x')}_{kind}",
                           gpd.GeoDataFrame(cells, geometry=gpd.GeoSeries(np.concatenate(shapes), crs=BNG), crs=BNG)))
    return layers, {"grid_cells_written": written, "grid_cells_left_out": left_out}


def _area(code: str, kind: str, n: int, seed: int, shuffled: bool = False):
    rng = np.random.default_rng(seed)
    grid = gpd.GeoDataFrame({"cell_id": [f"{code}_{i}" for i in range(n)]},
                            geometry=[shapely.box(i * 100, 0, i * 100 + 100, 100) for i in range(n)], crs=BNG)
    selections = {}
    for sel in ("All crime", "ASB"):
        cols = {}
        for c in GRID_CELL_COLUMNS[:-1]:
            if c in ("row", "col", "count"):
                cols[c] = rng.integers(0, 3, n)
            elif c in ("gi_class",):
                cols[c] = pd.array(rng.choice(["hot_99", "not_significant", "cold_95"], n), dtype="str")
            elif c == "moran_class":
                cols[c] = pd.array(rng.choice(["hotspot_HH", "not_significant", "outlier_LH"], n), dtype="str")
            elif c == "emerging_class":
                cols[c] = pd.array(rng.choice(["no pattern detected", "new hot spot"], n, p=[0.9, 0.1]), dtype="str")
            elif c == "patrol_area_id":
                cols[c] = pd.array(rng.choice(["", "P1", None], n, p=[0.8, 0.1, 0.1]), dtype="str")
            elif c in ("study_area_type", "study_area_code", "study_area_name", "selection", "cell_id", "gi_test",
                       "moran_quadrant", "town_centre"):
                cols[c] = pd.array([f"{c}{i % 4}" if i % 7 else None for i in range(n)], dtype="str")
            else:
                values = rng.normal(size=n)
                values[rng.random(n) < 0.1] = np.nan
                cols[c] = values
        cols["extra"] = np.arange(n)  # a column the file leaves out
        frame = pd.DataFrame(cols)
        if shuffled:  # columns in another order than the other areas'
            frame = frame[list(frame.columns[::-1])]
        cells = gpd.GeoDataFrame(frame, geometry=grid.geometry.values, crs=BNG)
        cells.attrs["grid"] = {"cell_size": 100.0, "x0": 0.0, "y0": 0.0, "shape": "square"}
        selections[sel] = types.SimpleNamespace(cells=cells)
    return types.SimpleNamespace(area=types.SimpleNamespace(area_type=kind), grid=grid, selections=selections)


class _Out:
    def write_geo_layers(self, layers, name, **kw):
        self.layers = layers


@pytest.mark.parametrize("everything", [False, True])
@pytest.mark.parametrize("shuffled", [False, True])
def test_layers_are_those_built_column_by_column(everything, shuffled):
    inputs = types.SimpleNamespace(selections={"All crime": (), "ASB": ()})
    areas = [_area("C", "county", 60, 1), _area("D1", "district", 40, 2), _area("D2", "district", 35, 3, shuffled),
             _area("D3", "district", 0, 4)]
    out = _Out()
    counts = outputs.write_grid_cells(out, inputs, areas, everything=everything)
    want_layers, want_counts = _reference(inputs, areas, everything)
    assert counts == want_counts
    assert [n for n, _ in out.layers] == [n for n, _ in want_layers]
    for (_, got), (_, want) in zip(out.layers, want_layers):
        assert list(got.columns) == list(want.columns) and list(got.dtypes) == list(want.dtypes)
        pd.testing.assert_frame_equal(pd.DataFrame(got.drop(columns="geometry")),
                                      pd.DataFrame(want.drop(columns="geometry")), check_exact=True)
        assert got.crs == want.crs and list(got.geometry.values) == list(want.geometry.values)
