"""Drawing shortcuts of the report charts (hotspots.render.outliers_charts) give the figures they replace."""

from __future__ import annotations

import gc
import io

import geopandas as gpd
import pytest
from shapely.geometry import MultiPolygon, Polygon, box

from hotspots.render import outliers_charts as C


def _svg(draw) -> bytes:
    with C._rc():
        fig = C._figure(2.6, 2.4)
        ax = fig.add_axes((0.0, 0.0, 1.0, 0.9))
        draw(ax)
        ax.set_axis_off()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def test_plot_polygons_draws_what_geoseries_plot_draws():
    # clockwise exterior (geopandas normalises ring order), a hole, a multipolygon and an empty geometry
    holed = Polygon([(0, 0), (0, 10), (10, 10), (10, 0)], [[(2, 2), (4, 2), (4, 4), (2, 4)]])
    multi = MultiPolygon([box(12, 0, 15, 3), box(16, 5, 20, 9)])
    shapes = gpd.GeoDataFrame({"area_code": ["a", "b", "c", "d"]},
                              geometry=[holed, multi, box(0, 12, 5, 20), Polygon()], crs="EPSG:27700")
    style = {"edgecolor": "#bbbbbb", "linewidth": 0.3}
    expected = _svg(lambda ax: shapes.plot(ax=ax, color="#f7f7f7", **style))
    got = _svg(lambda ax: C._plot_polygons(ax, shapes.geometry, facecolor="#f7f7f7", **style))
    assert b"<path" in got
    assert got == expected


def test_collector_paused_restores_the_collector_state():
    assert gc.isenabled()
    with C.collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), C.collector_paused():
        raise RuntimeError("drawing failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with C.collector_paused():
            pass
        assert not gc.isenabled()  # a collector the caller disabled stays disabled
    finally:
        gc.enable()
