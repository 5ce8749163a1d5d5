"""The hotspots stage keeps a study area's tables as analysed when it runs in this process (one worker).

The shapes are taken out of the cell tables only for the trip back from a worker process
(``_without_cell_shapes``, undone by ``_with_cell_shapes``); analysed here, the round trip would copy every
table to the same frames.  Checked: the round trip gives the same result as the tables left as they are
(so leaving them out changes nothing downstream), and the stage's results are those of ``analyse_area``.
Synthetic data of tests/test_hotspots_stage.py (no real data).
"""

from __future__ import annotations

import copy

import geopandas as gpd
import pytest
from test_area_cache import _assert_same_result
from test_hotspots_stage import _ctx

from hotspots.detect.analysis import analyse_area
from hotspots.stages import hotspots as hs


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    ctx = _ctx(tmp_path_factory.mktemp("in_process"))
    cfg = hs.hotspot_config(ctx.settings)
    inputs = hs.build_inputs(ctx, cfg)
    return ctx, inputs, cfg, analyse_area(inputs, inputs.districts[0], cfg, patrol=True)


def test_the_round_trip_gives_the_tables_as_analysed(analysed):
    _, _, _, result = analysed
    assert any(s.patrol_areas is not None and len(s.patrol_areas) for s in result.selections.values())
    back = hs._with_cell_shapes(hs._without_cell_shapes(copy.deepcopy(result)))
    _assert_same_result(result, back)


def test_the_stage_in_this_process_keeps_the_analysed_tables(analysed, monkeypatch):
    ctx, inputs, cfg, result = analysed
    monkeypatch.setenv("HOTSPOTS_WORKERS", "1")
    monkeypatch.setenv("HOTSPOTS_CACHE", "off")
    stripped = []
    real = hs._without_cell_shapes
    monkeypatch.setattr(hs, "_without_cell_shapes", lambda r: stripped.append(r) or real(r))
    hs.run_hotspots(ctx, grid_cells=False)
    assert stripped == []  # nothing taken out: the analysis ran here
    res = ctx.results["hotspots"]
    for sel in res["districts"][0].selections.values():
        assert isinstance(sel.cells, gpd.GeoDataFrame)
    _assert_same_result(result, res["districts"][0])
