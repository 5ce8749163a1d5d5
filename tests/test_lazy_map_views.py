"""Map views made where the maps are drawn (``build_map_views(lazy=True)``) are the views made beforehand."""

from __future__ import annotations

import pytest
from test_hotspots_stage import _ctx
from test_parallel import _FOLIUM_ID

from hotspots.stages import _hotspots_maps as hm
from hotspots.stages.hotspots import stage_hotspots


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    ctx = _ctx(tmp_path_factory.mktemp("lazy"))
    stage_hotspots(ctx, maps=False)
    return ctx


def _views(ctx, lazy: bool):
    res = ctx.results["hotspots"]
    return hm.build_map_views(ctx, res["inputs"], res["config"], res["county"], res["districts"], res["tables"],
                              lazy=lazy)


def test_lazy_views_draw_the_same_pages_and_images(results):
    eager, lazy = _views(results, False), _views(results, True)
    assert [type(v) for v in lazy] == [hm.LazyView] * len(eager) and len(eager) >= 3  # the county and two districts
    assert [v.slug for v in lazy] == [v.slug for v in eager]
    for made, view in zip(lazy, eager):
        page, image = hm._draw(made.make(), True)
        page0, image0 = hm._draw(view, True)
        # folium gives its elements random ids on each draw: the pages agree but for those
        assert _FOLIUM_ID.sub(b"ID", page.encode()) == _FOLIUM_ID.sub(b"ID", page0.encode()) and image == image0


def test_lazy_weights_order_the_maps_as_their_views_would(results):
    eager, lazy = _views(results, False), _views(results, True)
    by_view = [hm._weight(v) for v in eager]
    by_lazy = [hm._weight(v) for v in lazy]
    assert by_lazy[1:] == by_view[1:]  # districts: their cells and patrol areas, exactly
    assert by_lazy[0] >= by_view[0] > 0  # the county: its rows before the county ranking keeps the top ones


def test_write_maps_takes_lazy_views(results, tmp_path):
    from test_parallel import _comparable

    from hotspots._io import OutputDir

    eager, lazy = _views(results, False), _views(results, True)
    a = hm.write_maps(OutputDir(tmp_path / "a"), eager[:2], png=True)
    b = hm.write_maps(OutputDir(tmp_path / "b"), lazy[:2], png=True)
    assert [r["slug"] for r in a] == [r["slug"] for r in b]
    for ra, rb in zip(a, b):
        assert (tmp_path / "a" / ra["png"]).read_bytes() == (tmp_path / "b" / rb["png"]).read_bytes()
        assert _comparable(tmp_path / "a" / ra["html"]) == _comparable(tmp_path / "b" / rb["html"])
