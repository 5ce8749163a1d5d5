"""make_grid's clipping intersects only the cells the boundary crosses: the same grid as intersecting them all."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box

from hotspots.geo import _lattice
from hotspots.geo import grid as gridmod
from hotspots.geo._study_area import _polygonal_parts


def _reference_clip_cells(geometry, rows, cols, params):
    """_clip_cells as it was: every candidate cell intersected with its quadtree piece of the area."""
    polys = _lattice._cell_polygons(rows, cols, params)
    out = np.empty(len(rows), dtype=object)
    if len(rows) == 0:
        return out
    cx, cy = _lattice._centres(rows, cols, params)
    margin = params["cell_size"]

    def recurse(piece, idx):
        if len(idx) <= 64 or shapely.get_num_coordinates(piece) <= 256:
            out[idx] = shapely.intersection(polys[idx], piece)
            return
        xs, ys = cx[idx], cy[idx]
        midx, midy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
        east, north = xs >= midx, ys >= midy
        for quadrant in ((~east & ~north), (east & ~north), (~east & north), (east & north)):
            sel = idx[quadrant]
            if len(sel) == 0:
                continue
            if len(sel) == len(idx):
                out[sel] = shapely.intersection(polys[sel], piece)
                return
            window = shapely.box(cx[sel].min() - margin, cy[sel].min() - margin,
                                 cx[sel].max() + margin, cy[sel].max() + margin)
            sub = shapely.intersection(piece, window)
            if sub.is_empty:
                out[sel] = shapely.Polygon()
            else:
                recurse(sub, sel)

    recurse(geometry, np.arange(len(rows)))
    return _polygonal_parts(out)


def _areas():
    rng = np.random.default_rng(7)
    out = []
    for n, radius in ((12, 900.0), (400, 2500.0), (1500, 4000.0)):  # few and many vertices (the quadtree splits)
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        r = radius * rng.uniform(0.6, 1.0, n)
        out.append(Polygon(np.column_stack([530_000 + r * np.cos(angles), 210_000 + r * np.sin(angles)])))
    # edges on cell edges, a hole, and two parts touching at a corner
    out.append(box(530_000, 210_000, 531_000, 210_600).difference(box(530_200, 210_200, 530_400, 210_400)))
    out.append(shapely.union_all([box(0, 0, 300, 300), box(300, 300, 700, 500)]))
    return out


@pytest.mark.parametrize("shape", ["square", "hex"])
@pytest.mark.parametrize("which", range(5))
def test_grid_is_the_same_as_intersecting_every_candidate_cell(monkeypatch, shape, which):
    area = _areas()[which]
    for size in (100.0, 250.0):
        gridmod._MEMO.clear()
        fast = gridmod.make_grid(area, size, shape=shape, crs="EPSG:27700")
        gridmod._MEMO.clear()
        with monkeypatch.context() as m:
            m.setattr(gridmod, "_clip_cells", _reference_clip_cells)
            slow = gridmod.make_grid(area, size, shape=shape, crs="EPSG:27700")
        gridmod._MEMO.clear()
        assert len(fast) == len(slow) > 0
        for column in fast.columns.drop("geometry"):
            np.testing.assert_array_equal(fast[column].to_numpy(), slow[column].to_numpy(), err_msg=column)
        assert [g.wkb for g in fast.geometry] == [g.wkb for g in slow.geometry]
        assert fast.attrs == slow.attrs
