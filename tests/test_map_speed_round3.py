"""The maps' third round of shortcuts (issue 18) against the long way: the same text, the same layouts, the same pixels.

* GeoJSON text of polygons written by ``str`` of their coordinate lists against ``json.dumps`` of the dicts;
* the str-to-str properties of a feature written directly against ``json.dumps(..., sort_keys=True)``;
* branca's element names (camelified class name) made once per name against branca's ``get_name``;
* the line metrics the fast-text renderer gives ``Text._get_layout`` against matplotlib's own lookup.
"""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import shapely

from hotspots.render import _map_geometry as geometry


def _long_way(geoms) -> list[str]:
    return [json.dumps(g, sort_keys=True) for g in geometry._geojson_geometries(np.asarray(geoms, dtype=object))]


def _cases() -> dict[str, list]:
    square = shapely.box(-0.30, 51.70, -0.29, 51.71)
    holed = shapely.box(-0.5, 51.5, -0.4, 51.6).difference(shapely.box(-0.46, 51.54, -0.44, 51.56))
    multi = shapely.MultiPolygon([shapely.box(0.1, 51.8, 0.2, 51.9), holed])
    # the Greenwich meridian: repr writes 1e-05 and -0.0 in its own way, and so does json
    meridian = shapely.Polygon([(-0.0, 51.7), (0.00001, 51.7), (0.000123, 51.71), (-0.000045, 51.71123)])
    return {"square": [square], "holed": [holed], "multi": [multi, square], "meridian": [meridian],
            "many": [shapely.box(x, 51.0, x + 0.001, 51.001) for x in np.linspace(-0.4, 0.2, 50)]}


@pytest.mark.parametrize("case", list(_cases()))
def test_polygon_text_is_json_dumps(case):
    geoms = shapely.set_precision(np.asarray(_cases()[case], dtype=object), 1e-6)
    written = geometry._polygon_texts(geoms)
    assert written == _long_way(geoms)
    assert geometry._geojson_texts(geoms) == written


def test_polygon_text_leaves_the_rest_to_json():
    """Lines, empty geometries and non-finite coordinates are not its business: None, and json writes them."""
    line = shapely.LineString([(0.1, 51.0), (0.2, 51.1)])
    assert geometry._polygon_texts(np.array([shapely.box(0, 51, 0.1, 51.1), line], dtype=object)) is None
    assert geometry._polygon_texts(np.array([shapely.Polygon()], dtype=object)) is None
    with np.errstate(invalid="ignore"):
        nan = shapely.Polygon([(0.1, 51.0), (np.nan, 51.1), (0.2, 51.2)])
    assert geometry._polygon_texts(np.array([nan], dtype=object)) is None
    assert geometry._polygon_texts(np.array([], dtype=object)) == []
    mixed = np.array([shapely.box(0, 51, 0.1, 51.1), line], dtype=object)
    assert geometry._geojson_texts(mixed) == _long_way(mixed)


def test_polygon_text_fails_when_broken(monkeypatch):
    """The comparison can fail: a writer one digit short is caught."""
    geoms = np.asarray(_cases()["many"], dtype=object)
    expected = _long_way(geoms)
    real_round = np.round
    monkeypatch.setattr(geometry.np, "round", lambda a, d: real_round(a, d - 1))
    assert geometry._polygon_texts(geoms) != expected


def test_polygon_text_of_real_boundaries(real_context):
    """Wards, districts and town centres of the data home, displayed as the maps display them."""
    geo = real_context.geography
    for frame, tolerance in ((geo.wards, 10.0), (geo.districts, 10.0), (geo.town_centres, 2.0)):
        if frame is None or not len(frame):
            continue
        display = geometry._to_display(frame, tolerance)
        assert len(display) and display.texts == _long_way(display.geoms)


def test_text_properties_are_json_dumps():
    from hotspots.render._leaflet import _text_dict_json

    encode = json.JSONEncoder(sort_keys=True).encode
    cases = [{}, {"tip": "<b>Hot</b> & 'cold' \"q\" é ß \u2028 \\ \n\t"}, {"z": "1", "a": "é", "c": "x"},
             {"popup": "x", "rank": 3}, {"c": None}, {"tip": "only"}]
    for props in cases:
        assert _text_dict_json(props, encode) == encode(props), props
    assert _text_dict_json({"rank": 3}, lambda d: "from encode") == "from encode"


def test_element_names_are_branca_names():
    from branca.element import MacroElement

    from hotspots.render._leaflet import _folium_classes

    fast = _folium_classes()
    for element in (fast.FeatureGroup(name="x"), fast.DivIcon(html="<b>x</b>"), fast.Macro(),
                    fast.Marker([51.7, -0.3]), fast.GeoJsonText([{}], ['{"coordinates": [0, 0], "type": "Point"}'])):
        assert element.get_name() == MacroElement.get_name(element)
        element._name = "SomeOtherName"
        assert element.get_name() == MacroElement.get_name(element) and element.get_name().startswith("some_other_name_")


def _layouts(monkeypatch, use_hook: bool):
    """Text layouts (bbox, lines, box) and pixels of a figure drawn through a FastTextCanvas."""
    from hotspots.render import _agg_text
    from hotspots.render._agg_text import FastTextCanvas, FastTextRenderer

    if not use_hook:  # matplotlib's own lookup: the renderer says it has no metrics
        monkeypatch.setattr(FastTextRenderer, "_get_font_height_metrics", lambda self, prop: (None, None, None))
    _agg_text._HEIGHTS.clear()
    fig = plt.figure(figsize=(4, 3), dpi=130)
    canvas = FastTextCanvas(fig)
    texts = [fig.text(0.05, 0.9, "Patrol areas (ranked)\n\n1. High Street\n     12 in the period", fontsize=8),
             fig.text(0.05, 0.5, "Bold name", fontsize=7, fontweight="bold",
                      bbox={"boxstyle": "round,pad=0.05", "fc": "white", "ec": "none"}),
             fig.text(0.5, 0.3, "Italic\nname", fontsize=5.5, fontstyle="italic", family="serif"),
             fig.text(0.5, 0.1, "Mono", fontsize=9, family="monospace", rotation=30)]
    renderer = canvas.get_renderer()
    layouts = []
    for t in texts:
        bbox, info, descent = t._get_layout(renderer)
        layouts.append((tuple(bbox.bounds), [(line, wad, tuple(xy)) for line, wad, xy in info], descent))
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba()).copy()
    plt.close(fig)
    return layouts, pixels


def test_font_height_metrics_are_matplotlibs(monkeypatch):
    from matplotlib.text import Text

    if "_get_font_height_metrics" not in Text._get_layout.__code__.co_names:
        pytest.skip("this matplotlib does not ask the renderer for line metrics")
    fast_layouts, fast_pixels = _layouts(monkeypatch, use_hook=True)
    own_layouts, own_pixels = _layouts(monkeypatch, use_hook=False)
    assert fast_layouts == own_layouts
    assert np.array_equal(fast_pixels, own_pixels)


def test_font_height_metrics_break_visibly(monkeypatch):
    """The comparison can fail: metrics with the line gap lost give other layouts."""
    from matplotlib.text import Text

    from hotspots.render import _agg_text

    if "_get_font_height_metrics" not in Text._get_layout.__code__.co_names:
        pytest.skip("this matplotlib does not ask the renderer for line metrics")
    own_layouts, _ = _layouts(monkeypatch, use_hook=False)
    monkeypatch.undo()
    real = _agg_text._font_height_metrics
    monkeypatch.setattr(_agg_text, "_font_height_metrics", lambda prop, dpi: real(prop, dpi)[:2] + (0.0,))
    broken_layouts, _ = _layouts(monkeypatch, use_hook=True)
    assert broken_layouts != own_layouts


def _grid_cases() -> np.ndarray:
    rng = np.random.default_rng(7)
    quads = []
    for x, y in rng.uniform((-0.5, 51.6), (0.2, 52.0), (60, 2)):
        dx, dy = rng.uniform(0.0005, 0.004, 2)
        quads.append(shapely.Polygon([(x, y), (x + dx, y + 1e-5), (x + dx, y + dy), (x, y + dy)]))
    quads += [shapely.reverse(q) for q in quads[:30]]  # anticlockwise too
    wiggly = shapely.Polygon([(0.1 + 0.01 * np.cos(a), 51.8 + 0.006 * np.sin(a)) for a in np.linspace(0, 6.2, 40)])
    merging = shapely.Polygon([(0.1, 51.8), (0.1000001, 51.8000001), (0.11, 51.8), (0.11, 51.81)])  # two vertices merge
    tie = shapely.Polygon([(0.5, 51.5), (0.5000005, 51.5), (0.51, 51.51), (0.5, 51.51)])  # 0.5000005 is a tie
    holed = shapely.box(-0.5, 51.5, -0.4, 51.6).difference(shapely.box(-0.46, 51.54, -0.44, 51.56))
    thin = shapely.Polygon([(0.3, 51.3), (0.31, 51.3), (0.3000004, 51.3000002), (0.30, 51.3000004)])  # invalid once rounded
    others = [wiggly, merging, tie, holed, shapely.MultiPolygon([shapely.box(0, 51, 0.1, 51.1)]), thin,
              shapely.Polygon(), shapely.LineString([(0.1, 51.0), (0.2, 51.1)])]
    return np.array(quads + others, dtype=object)


def test_on_grid_is_set_precision():
    geoms = _grid_cases()
    assert geometry._grid_rule_holds()
    ours = geometry._on_grid(geoms)
    assert shapely.to_wkb(ours).tolist() == shapely.to_wkb(shapely.set_precision(geoms, 1e-6)).tolist()
    _, fitting = geometry._simple_on_grid(geoms[:90])
    assert fitting.all()  # the quadrilaterals were done by the rule, not handed back to GEOS


def test_on_grid_of_real_boundaries(real_context):
    geo = real_context.geography
    for frame in (geo.wards, geo.districts, geo.town_centres):
        if frame is None or not len(frame):
            continue
        for tolerance in (2.0, 10.0):
            geoms = geometry._project(shapely.simplify(np.asarray(frame.to_crs(27700).geometry.values), tolerance))
            for batch in (geoms, shapely.reverse(geoms)):
                expected = shapely.to_wkb(shapely.set_precision(batch, 1e-6)).tolist()
                assert shapely.to_wkb(geometry._on_grid(batch)).tolist() == expected


def test_on_grid_fails_when_broken(monkeypatch):
    """The comparison can fail: rings left starting where they started are caught, and so is a wrong rule check."""
    geoms = _grid_cases()
    expected = shapely.to_wkb(shapely.set_precision(geoms, 1e-6)).tolist()
    real_where = np.where
    monkeypatch.setattr(geometry.np, "where", lambda c, a, b: real_where(c, a, a))
    geometry._grid_rule_holds.cache_clear()
    try:
        assert not geometry._grid_rule_holds()  # the check at first use sees it ...
        assert shapely.to_wkb(geometry._on_grid(geoms)).tolist() == expected  # ... and GEOS does it all
        monkeypatch.setattr(geometry, "_grid_rule_holds", lambda: True)
        assert shapely.to_wkb(geometry._on_grid(geoms)).tolist() != expected
    finally:
        monkeypatch.undo()
        geometry._grid_rule_holds.cache_clear()


@pytest.mark.parametrize("kind", ["numpy", "nullable", "categorical", "object"])
def test_gi_cell_columns_taken_from_arrays_are_the_series_values(kind):
    """The Gi* tips read their columns from the arrays: the same tips as cell by cell, for any column type."""
    import pandas as pd

    from hotspots.render.map_html import _gi_cell_properties
    from tests.test_map_render_shortcuts import _gi_tips_before

    n = 30
    rng = np.random.default_rng(9)
    classes = rng.choice(["hot_99", "hot_95", "cold_90"], n)
    frame = pd.DataFrame({"gi_class": classes, "count": rng.integers(0, 300, n), "gi_z": rng.normal(0, 3, n),
                          "gi_q": rng.random(n), "gi_test": rng.choice(["normal", "exact_binomial"], n)})
    if kind == "nullable":
        frame["count"] = frame["count"].astype("Int64")
        frame["gi_z"] = frame["gi_z"].astype("Float64")
    elif kind == "categorical":
        frame["gi_class"] = frame["gi_class"].astype("category")
        frame["gi_test"] = frame["gi_test"].astype("category")
    elif kind == "object":
        frame["gi_class"] = frame["gi_class"].astype(object)
    rows = np.flatnonzero(rng.random(n) < 0.7)[::-1].copy()  # any order
    assert _gi_cell_properties(frame, rows, "ASB") == _gi_tips_before(frame, rows, "ASB")
