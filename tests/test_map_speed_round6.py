"""The maps' sixth round of shortcuts (issue 18) against the long way: the same text, the same geometries.

* GeoJSON coordinate text written by numpy (a byte table of digits) against ``str`` of the coordinate lists;
* contourpy's filled polygons made at once against ``Polygon(rings[0], rings[1:])`` one by one;
* a layer's str properties written column by column, and tojson's escapes made on the properties alone;
* a frame's column read as its array against ``frame[name]``; the significant cells, the ranked list;
* branca's second pass (newlines) and the map and panes rendered once against folium's own.
"""

from __future__ import annotations

import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from hotspots.render import _leaflet as leaflet
from hotspots.render import _map_geometry as geometry


def _str_way(coords: np.ndarray, sizes) -> list[str]:
    pairs = coords.tolist()
    ends = np.cumsum(sizes)
    return [str(pairs[e - s:e]) for s, e in zip(np.asarray(sizes).tolist(), ends.tolist())]


def _rings(values: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    values = np.round(values, 6)
    coords = values[: len(values) // 2 * 2].reshape(-1, 2)
    sizes, left = [], len(coords)
    while left:
        sizes.append(int(min(left, rng.integers(0, 30))))
        left -= sizes[-1]
    return coords, np.array(sizes, dtype=np.int64)


@pytest.fixture
def numpy_always(monkeypatch):
    monkeypatch.setattr(geometry, "_NUMPY_TEXT_FROM", 0)


@pytest.mark.parametrize("case", ["latitudes", "meridian", "uniform", "log", "edges", "large"])
def test_ring_texts_are_str_of_the_lists(case, numpy_always):
    """Every 1e-6 degree step of a latitude band and across the Greenwich meridian (-0.0, 1e-05), and more."""
    rng = np.random.default_rng(6)
    values = {
        "latitudes": np.arange(51_600_000, 51_900_000) / 1e6,
        "meridian": np.r_[np.arange(-300_000, 300_000) / 1e6, -np.arange(0, 3000) / 1e6, -0.0, 0.0],
        "uniform": rng.uniform(-180, 180, 400_000),
        "log": 10.0 ** rng.uniform(-8, 9, 200_000) * rng.choice([-1, 1], 200_000),
        "edges": np.array([0.0, -0.0, 1e-4, -1e-4, 9.9e-5, -9.9e-5, 1e-6, -1e-6, 5e-7, -5e-7, 0.5, 1.0, 10.0, 100.0,
                           99.999999, 999999999.999999, 123456789.5, 1e8, 1.0001, -51.0]),
        "large": rng.uniform(-1e12, 1e12, 400),  # beyond the table: str writes them all
    }[case]
    coords, sizes = _rings(rng.permutation(values), rng)
    assert geometry._ring_texts(coords, sizes) == _str_way(coords, sizes)


def test_ring_texts_of_empty_rings_and_no_rings(numpy_always):
    rng = np.random.default_rng(1)
    coords = np.round(rng.uniform(51, 52, (40, 2)), 6)
    sizes = np.array([0, 10, 0, 0, 30, 0])
    assert geometry._ring_texts(coords, sizes) == _str_way(coords, sizes)
    assert geometry._ring_texts(np.zeros((0, 2)), np.array([0, 0])) == ["[]", "[]"]


def test_ring_texts_of_few_pairs_are_str_s():
    """Below the threshold str writes them (the same text, cheaper for a few hundred pairs)."""
    rng = np.random.default_rng(2)
    coords = np.round(rng.uniform(-0.1, 0.1, (geometry._NUMPY_TEXT_FROM - 1, 2)), 6)
    sizes = np.array([len(coords)])
    assert geometry._ring_texts(coords, sizes) == _str_way(coords, sizes)


def test_ring_texts_fail_when_broken(numpy_always, monkeypatch):
    """The comparison can fail: digit tables one off are caught."""
    rng = np.random.default_rng(3)
    coords, sizes = _rings(rng.uniform(51, 52, 2000), rng)
    three, zeros = geometry._three_digits()
    monkeypatch.setattr(geometry, "_three_digits", lambda: (np.roll(three, 1, axis=0), zeros))
    assert geometry._ring_texts(coords, sizes) != _str_way(coords, sizes)


def test_polygon_texts_with_numpy_are_json_dumps(numpy_always):
    from tests.test_map_speed_round3 import _cases, _long_way

    geoms = shapely.set_precision(np.asarray([g for case in _cases().values() for g in case], dtype=object), 1e-6)
    assert geometry._polygon_texts(geoms) == _long_way(geoms)


def _polygons_one_by_one(points, offsets) -> list:
    polys = []
    for pts, offs in zip(points, offsets):
        rings = [pts[offs[i]:offs[i + 1]] for i in range(len(offs) - 1)]
        rings = [r for r in rings if len(r) >= 4]
        if rings:
            polys.append(shapely.Polygon(rings[0], rings[1:]))
    return polys


def test_contour_polygons_are_those_made_one_by_one():
    import contourpy

    rng = np.random.default_rng(4)
    field = rng.random((40, 50)).cumsum(axis=0).cumsum(axis=1)
    field = 100 * np.abs(np.sin(field / 50))
    gen = contourpy.contour_generator(np.arange(50.0), np.arange(40.0), field, fill_type=contourpy.FillType.OuterOffset)
    for top in (1.0, 5.0, 25.0, 60.0):
        points, offsets = gen.filled(-1.0, top)
        made = geometry._contour_polygons(points, offsets)
        assert shapely.to_wkb(made).tolist() == shapely.to_wkb(_polygons_one_by_one(points, offsets)).tolist()


def test_contour_polygons_drop_short_rings_as_before():
    """A shell of three points dropped makes the next ring the shell; a polygon left with none is dropped."""
    square = np.array([[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]], dtype=float)
    hole = np.array([[1, 1], [1, 2], [2, 2], [2, 1], [1, 1]], dtype=float)
    short = np.array([[9, 9], [9, 10], [10, 9]], dtype=float)
    open_ring = np.array([[5, 5], [6, 5], [6, 6], [5, 6]], dtype=float)  # closed by LinearRing
    points = [np.vstack([square, hole]), np.vstack([short, square]), short, np.vstack([open_ring, short, hole])]
    offsets = [np.array([0, 5, 10]), np.array([0, 3, 8]), np.array([0, 3]), np.array([0, 4, 7, 12])]
    made = geometry._contour_polygons(points, offsets)
    assert shapely.to_wkb(made).tolist() == shapely.to_wkb(_polygons_one_by_one(points, offsets)).tolist()
    assert len(made) == 3
    assert len(geometry._contour_polygons([short], [np.array([0, 3])])) == 0
    assert len(geometry._contour_polygons([], [])) == 0


def _text_dicts(properties):
    encode = json.JSONEncoder(sort_keys=True).encode
    return [leaflet._text_dict_json(p, encode) for p in properties]


@pytest.mark.parametrize("case", ["two", "one", "three", "empty", "mixed keys", "non-str", "reordered", "none"])
def test_properties_texts_are_those_made_one_by_one(case):
    rng = np.random.default_rng(5)
    tips = [f"tip <b>{i}</b> & 'q' \u00e9 \"x\" \\ \n" for i in rng.integers(0, 50, 30)]
    properties = {
        "two": [{"tip": t, "c": "hot_99"} for t in tips],
        "one": [{"tip": t} for t in tips],
        "three": [{"tip": t, "popup": t[::-1], "c": "x"} for t in tips],
        "empty": [{} for _ in tips],
        "mixed keys": [{"tip": t} if i % 2 else {"c": t} for i, t in enumerate(tips)],
        "non-str": [{"tip": t, "rank": i} for i, t in enumerate(tips)],
        "reordered": [{"tip": t, "c": "a"} if i % 2 else {"c": "b", "tip": t} for i, t in enumerate(tips)],
        "none": [],
    }[case]
    encode = json.JSONEncoder(sort_keys=True).encode
    assert leaflet._properties_texts(properties, encode) == _text_dicts(properties)


def test_escaped_texts_are_escaped_one_by_one():
    texts = ['{"tip": "a <br> & \'b\' >"}', "", '{"c": "plain"}', "<&>'"]
    assert leaflet._escaped(texts) == [leaflet._escape(t) for t in texts]
    plain = ['{"c": "x"}', '{"c": "y"}']
    assert leaflet._escaped(plain) == plain
    assert leaflet._escaped(["a\nb <", "c"]) == ["a\nb \\u003c", "c"]  # not json's: one by one
    assert leaflet._escaped([]) == []


def _folium_page(fast: bool, text: str | None = None) -> str:
    import folium

    from hotspots.render._leaflet import _folium_classes

    classes = _folium_classes()
    make_map = classes.Map if fast else folium.Map
    make_pane = classes.CustomPane if fast else folium.map.CustomPane
    m = make_map(location=[51.8, -0.2], zoom_start=12, tiles=None, control_scale=True, zoom_control=True)
    m._id = "0" * 32
    m.default_js, m.default_css = [], []
    for i, (name, z) in enumerate({"hs_kde": 405, "hs_labels": 610, text or "hs_gi": 410}.items()):
        pane = make_pane(name, z_index=z, pointer_events=name != "hs_labels")
        pane._id = f"{i:032d}"
        pane.add_to(m)
    m.get_root()._id = "f" * 32
    return m.get_root().render()


def test_map_and_panes_rendered_once_are_folium_s():
    assert _folium_page(True) == _folium_page(False)
    # a pane name holding template syntax is read as a template, as branca reads it
    assert _folium_page(True, "{{ 1 + 1 }}{# c #}") == _folium_page(False, "{{ 1 + 1 }}{# c #}")


def test_text_newlines_are_jinja_s():
    from branca.element import Element

    from hotspots.render._leaflet import _folium_classes

    classes = _folium_classes()
    rng = np.random.default_rng(7)
    for _ in range(300):
        text = "".join(rng.choice(list("ab\r\n "), int(rng.integers(0, 10))))
        macro = classes.Macro()
        part = macro._part("script", lambda this, kwargs, t=text: t, {})
        assert part.render() == Element(text).render(), repr(text)


def _frame() -> gpd.GeoDataFrame:
    n = 6
    frame = gpd.GeoDataFrame({
        "i": np.arange(n), "f": np.linspace(0, 1, n), "b": np.arange(n) % 2 == 0,
        "s": pd.array([f"s{i}" for i in range(n)], dtype="string"), "o": np.array(["a", None, 3, 4.5, "e", "f"], dtype=object),
        "c": pd.Categorical(list("xyxyxy")), "n": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
        "t": pd.date_range("2025-01-01", periods=n), "z": pd.date_range("2025-01-01", periods=n, tz="UTC"),
    }, geometry=[shapely.box(i, 0, i + 1, 1) for i in range(n)], crs="EPSG:27700")
    frame.attrs["grid"] = {"cell_size": 200.0}
    return frame


def test_columns_read_as_arrays_are_the_series_values():
    frame = _frame()
    for name in frame.columns:
        values = geometry._column(frame, name)
        expected = frame[name]._values
        assert type(values) is type(expected)
        assert values.tolist() == expected.tolist() if name != "geometry" else list(values) == list(expected)
    geoms, crs = geometry._geometries(frame)
    assert list(geoms) == list(np.asarray(frame.geometry.values)) and crs == frame.crs
    np.testing.assert_array_equal(geometry._numbers(frame, "n", float), frame["n"].to_numpy(float))
    np.testing.assert_array_equal(geometry._numbers(frame, "i", float), frame["i"].to_numpy(float))
    with pytest.raises(KeyError):
        geometry._column(frame, "missing")
    assert geometry._records(frame) == frame.drop(columns="geometry").to_dict("records")


@pytest.mark.parametrize("kind", ["string", "object", "category", "missing"])
def test_significant_cells_are_astype_str_isin(kind):
    from hotspots.render.map_html import _significant
    from hotspots.render.map_views import GI_COLOURS

    rng = np.random.default_rng(8)
    classes = list(GI_COLOURS) + ["not significant", "nan", "None"]
    values = rng.choice(classes, 200).tolist()
    if kind == "missing":
        values = [None if i % 7 == 0 else v for i, v in enumerate(values)]
    series = pd.Series(values, dtype={"string": "string", "object": object, "category": "category",
                                      "missing": "string"}[kind])
    expected = np.flatnonzero(series.astype(str).isin(list(GI_COLOURS)).to_numpy())
    assert _significant(series._values).tolist() == expected.tolist()


@pytest.mark.parametrize("ranks", [[3, 1, 2, 5, 4], [2, 1, 2, 1, 3], [3.0, 1.0, np.nan, 2.0, 5.0]])
def test_ranked_list_is_the_sorted_frame_s(ranks):
    from hotspots.render.map_html import _LISTED, _by_rank

    pa = pd.DataFrame({"rank": ranks, "name": list("abcde"), "count": [5, 4, 3, 2, 1]})
    assert repr(_by_rank(pa, _LISTED)) == repr(geometry._records(pa.sort_values("rank"), _LISTED))  # nan != nan


def test_jinja_split_is_what_text_replaces():
    """The newline rule _Text follows is re.split's over \\r\\n, \\r and \\n (the pattern it replaced)."""
    rng = np.random.default_rng(9)
    for _ in range(2000):
        text = "".join(rng.choice(list("a\r\n"), int(rng.integers(0, 8))))
        lines = re.split(r"\r\n|\r|\n", text)
        if lines[-1] == "":
            del lines[-1]
        fast = text.replace("\r\n", "\n").replace("\r", "\n")
        assert "\n".join(lines) == (fast[:-1] if fast.endswith("\n") else fast)


def test_gi_tips_with_z_written_inline_are_those_made_cell_by_cell():
    """The z of a tip written inline as _fmt writes a float: missing, infinite, large and rounding-edge values."""
    from hotspots.render.map_html import _gi_cell_properties
    from tests.test_map_render_shortcuts import _gi_tips_before

    z = [np.nan, np.inf, -np.inf, 0.0, -0.0, 99.995, 99.994999, 100.0, -100.0, 1e300, 0.005, -0.005, 1234.5, -3.1]
    n = len(z)
    frame = pd.DataFrame({"gi_class": ["hot_99", "cold_95"] * (n // 2), "count": np.arange(n), "gi_z": z,
                          "gi_q": np.linspace(0, 0.2, n), "gi_test": "normal"})
    rows = np.arange(n)
    assert _gi_cell_properties(frame, rows, "ASB & <b>") == _gi_tips_before(frame, rows, "ASB & <b>")
