"""The map renderer's shortcuts write what folium and geopandas would write (issue 18: cheap maps, same files).

Each shortcut is compared with the long way on data chosen to exercise it: GeoJSON text written directly
against folium's own ``tojson`` (escaping, the ``id`` folium adds, the style map), the memoised display
geometry against a fresh computation, the one-transformer projection against ``GeoSeries.to_crs``.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from hotspots.render import _map_geometry as geometry
from hotspots.render._leaflet import _folium_classes

X0, Y0 = 510_000.0, 196_000.0


def _squares(n: int = 12) -> gpd.GeoDataFrame:
    boxes = [shapely.box(X0 + 250 * i, Y0 + 100 * (i % 3), X0 + 250 * (i + 1), Y0 + 250 + 100 * (i % 3))
             for i in range(n)]
    ring = shapely.box(X0, Y0 - 900, X0 + 900, Y0 - 100).difference(shapely.box(X0 + 300, Y0 - 600, X0 + 600, Y0 - 300))
    return gpd.GeoDataFrame({"name": [f"sq{i}" for i in range(n)] + ["ring"]}, geometry=boxes + [ring], crs=27700)


def _map_html(layer_factory) -> str:
    import folium

    m = folium.Map(location=[51.7, -0.3], tiles=None)
    m.default_js = []
    m.default_css = []
    layer_factory().add_to(m)
    return m.get_root().render()


def _normalised(html: str) -> str:
    import re

    ids: dict[str, str] = {}

    def renumber(match: re.Match) -> str:
        return match.group(1) + "_" + ids.setdefault(match.group(2), f"{len(ids):06d}")

    return re.sub(r"\b([a-z_]+)_([0-9a-f]{32})(?![0-9a-f])", renumber, html)


@pytest.mark.parametrize("tips", ["unique", "repeated", "none"])
def test_geojson_text_layer_writes_what_folium_writes(tips):
    """Same page as folium's GeoJson with the whole FeatureCollection, whichever identifier folium picks."""
    fast = _folium_classes()
    display = geometry._to_display(_squares(), 2.0)
    n = len(display)
    classes = ["hot_99", "hot_95", "cold_90"] * n
    if tips == "unique":  # folium keys its style map on the tip
        props = [{"c": classes[i], "tip": f"<b>square {i}</b> & 'more' é"} for i in range(n)]
    elif tips == "repeated":  # no unique property: folium adds an "id" to every feature
        props = [{"c": classes[i], "tip": "same <tip>"} for i in range(n)]
    else:
        props = [{} for _ in range(n)]

    def style(f):
        return {"color": {"hot_99": "#b2182b", "hot_95": "#ef8a62", "cold_90": "#d1e5f0"}.get(
            f["properties"].get("c"), "#000"), "weight": 0.5}

    def folium_layer():
        features = [{"type": "Feature", "properties": dict(p), "geometry": g}
                    for p, g in zip(props, geometry._geojson_geometries(display.geoms))]
        return fast.GeoJson({"type": "FeatureCollection", "features": features}, style_function=style, pane="p")

    def text_layer():
        return fast.GeoJsonText([dict(p) for p in props], display.texts, style_function=style, pane="p",
                                style_by="c" if tips != "none" else None)

    expected, written = _normalised(_map_html(folium_layer)), _normalised(_map_html(text_layer))
    assert "\\u003cb\\u003e" in expected or tips != "unique"  # the escaping was exercised
    assert written == expected


@pytest.mark.parametrize("tips", ["unique", "repeated", "none"])
def test_geojson_text_layer_of_one_style_writes_what_folium_writes(tips):
    """A layer of one style (``style_fixed``: the style function called once): folium's page, folium's styler."""
    fast = _folium_classes()
    display = geometry._to_display(_squares(), 2.0)
    n = len(display)
    props = ([{"tip": f"<b>square {i}</b> & 'more' é"} for i in range(n)] if tips == "unique" else
             [{"tip": "same <tip>"} for _ in range(n)] if tips == "repeated" else [{} for _ in range(n)])
    calls = []

    def style(f):
        calls.append(f)
        return {"color": "#333333", "weight": 2.2, "fill": False}

    def folium_layer():
        features = [{"type": "Feature", "properties": dict(p), "geometry": g}
                    for p, g in zip(props, geometry._geojson_geometries(display.geoms))]
        return fast.GeoJson({"type": "FeatureCollection", "features": features}, style_function=style, pane="p")

    def text_layer():
        return fast.GeoJsonText([dict(p) for p in props], display.texts, style_function=style, pane="p",
                                style_fixed=True)

    expected = _normalised(_map_html(folium_layer))
    calls.clear()
    written = _normalised(_map_html(text_layer))
    assert written == expected
    assert len(calls) <= 2  # folium's check of the function, and the style: not once per feature


def test_styler_case_labels_written_at_once_are_folium_s(monkeypatch):
    """The styler's ``case`` labels written at once (:meth:`_case_slots`): the page folium's template writes with
    every id given to it, for ids made by folium, ids that are tips to escape, and a style map the template
    would not know (left to it)."""
    from jinja2 import Template

    from hotspots.render import _leaflet

    tojson = Template("{{ value|tojson }}")
    for value in ["0", "12", "<b>a</b> & 'b' \"c\" é ☃", "", 0, 7, -3, 10**20]:
        assert _leaflet._json_id(value) == tojson.render(value=value), value
    fast = _folium_classes()
    display = geometry._to_display(_squares(40), 2.0)
    n = len(display)
    for props in ([{"c": ["hot_99", "hot_95", "cold_90", "hot_99"][i % 4], "tip": f"<i>{i}</i> & 'x'"} for i in range(n)],
                  [{"c": ["hot_99", "cold_90"][i % 2], "tip": "same"} for i in range(n)]):
        def layer(props=props):
            return fast.GeoJsonText([dict(p) for p in props], display.texts, pane="p", style_by="c",
                                    style_function=lambda f: {"color": {"hot_99": "#b2182b"}.get(f["properties"]["c"],
                                                                                                "#000")})

        made = []
        real = fast.GeoJsonText._case_slots
        monkeypatch.setattr(fast.GeoJsonText, "_case_slots", lambda self: made.append(real(self)) or made[-1])
        fast_page = _normalised(_map_html(layer))
        assert made and made[0][1] and sum(t.count("case ") for t in made[0][1].values()) >= n // 2  # labels written here
        monkeypatch.setattr(fast.GeoJsonText, "_case_slots", lambda self: (None, {}))
        assert fast_page == _normalised(_map_html(layer))  # the template writing each label
        monkeypatch.undo()


def test_geojson_text_layer_checks_its_inputs():
    fast = _folium_classes()
    with pytest.raises(ValueError, match="2 features' properties for 1 geometries"):
        fast.GeoJsonText([{}, {}], ['{"coordinates": [0, 0], "type": "Point"}'])


def test_memoised_display_is_the_display():
    """A geometry met before gets the same display geometry and text; empty results are still dropped."""
    frame = _squares()
    # an edge with a 5 m kink: kept at a 2 m tolerance, straightened at 10 m; a sliver that vanishes on the grid
    kinked = shapely.Polygon([(X0, Y0), (X0 + 400, Y0 + 5), (X0 + 800, Y0), (X0 + 800, Y0 + 600), (X0, Y0 + 600)])
    sliver = shapely.box(X0, Y0, X0 + 1e-3, Y0 + 1e-3)
    frame = pd.concat([frame, gpd.GeoDataFrame({"name": ["kinked", "sliver"]}, geometry=[kinked, sliver], crs=27700)],
                      ignore_index=True)
    fresh = geometry._to_display(frame, 2.0)
    geometry._MEMO.clear()
    first = geometry._to_display(frame, 2.0, memo=True)
    again = geometry._to_display(frame.iloc[::-1], 2.0, memo=True)  # all from the memo, other order
    assert len(fresh) == len(frame) - 1 and "sliver" not in list(fresh.rows["name"])
    assert first.texts == fresh.texts and list(first.rows["name"]) == list(fresh.rows["name"])
    assert again.texts == fresh.texts[::-1]
    assert all(shapely.equals_exact(a, b, 0) for a, b in zip(first.geoms, fresh.geoms))
    other = geometry._to_display(frame, 10.0, memo=True)  # the tolerance is part of the key
    assert other.texts == geometry._to_display(frame, 10.0).texts
    assert other.texts[-1] != fresh.texts[-1] and other.texts[:-1] == fresh.texts[:-1]


def test_projection_matches_geopandas():
    frame = _squares()
    geoms = np.asarray(frame.geometry.values)
    ours = geometry._project(geoms)
    theirs = np.asarray(frame.to_crs(4326).geometry.values)
    assert np.array_equal(shapely.get_coordinates(ours), shapely.get_coordinates(theirs))
    x, y = [530_000.5, 512_345.25], [210_000.0, 198_765.5]
    pts = gpd.GeoSeries(gpd.points_from_xy(x, y), crs=27700).to_crs(4326)
    assert geometry._lonlats(x, y) == [(round(la, 6), round(lo, 6)) for lo, la in zip(pts.x, pts.y)]


def test_records_are_to_dict_records():
    frame = _squares().assign(rank=range(13), share=np.linspace(0, 1, 13),
                              label=pd.array(["a", None] + ["b"] * 11, dtype="string"),
                              flag=pd.array([True, None] + [False] * 11, dtype="boolean"),
                              when=pd.to_datetime(["2025-01-01"] * 13), mixed=[np.int64(1), 2.5, None] + ["x"] * 10)
    assert geometry._records(frame) == frame.drop(columns="geometry").to_dict("records")


@pytest.mark.filterwarnings("ignore:DataFrame columns are not unique")
def test_records_of_some_columns_are_those_columns_of_the_records():
    """``only``: the records with just the named columns the frame has (absent names are not keys)."""
    frame = _squares().assign(rank=range(13), share=np.linspace(0, 1, 13),
                              label=pd.array(["a", None] + ["b"] * 11, dtype="string"))
    whole = frame.drop(columns="geometry").to_dict("records")
    for only in [("rank", "label"), ("rank", "trend", "name"), (), ("geometry", "share")]:
        keep = [c for c in frame.columns if c in only and c != "geometry"]
        assert geometry._records(frame, only) == [{c: r[c] for c in keep} for r in whole], only
    twice = pd.DataFrame([[1, 2, 3]], columns=["a", "a", "b"])  # repeated names: every column, as before
    assert geometry._records(twice, ("b",)) == twice.to_dict("records")


def _gi_tips_before(cells, rows, selection):
    """map_html._gi_cell_properties as it was (one f-string per cell, no per-value parts)."""
    from hotspots.render.map_html import _GI_TEST_WORDS
    from hotspots.render.map_views import GI_LABELS, _esc, _fmt

    n = len(rows)

    def column(name, missing):
        return cells[name].iloc[rows].tolist() if name in cells else [missing] * n

    out = []
    for c, k, zi, qi, t in zip([str(c) for c in column("gi_class", "")], column("count", np.nan),
                               column("gi_z", np.nan), column("gi_q", np.nan), [str(t) for t in column("gi_test", "")]):
        tip = f"{_esc(GI_LABELS[c])}<br>{_esc(selection)}: {_esc(_fmt(k))} in this square in the period"
        if c.startswith("hot") and k == 0:
            tip += "<br>No crime in this square itself: hot because of its neighbours"
        tip += (f"<br><span class='hs-tip-tech'>Getis-Ord Gi* z = {_esc(_fmt(float(zi)))}, "
                f"false-discovery-rate q = {_esc(format(float(qi), '.2g'))}")
        if t in _GI_TEST_WORDS:
            tip += f" ({_GI_TEST_WORDS[t]})"
        tip += "</span>"
        out.append({"c": c, "tip": tip})
    return out


@pytest.mark.parametrize("counts", ["int", "float", "missing"])
def test_gi_cell_tips_are_those_made_cell_by_cell(counts):
    from hotspots.render.map_html import _gi_cell_properties

    n = 40
    rng = np.random.default_rng(7)
    classes = rng.choice(["hot_99", "hot_95", "hot_90", "cold_90", "cold_95", "cold_99"], n)
    k = rng.integers(0, 4, n) * np.array([1, 1, 1, 150] * 10)  # zeros (hot with no crime), repeats, thousands
    if counts == "float":
        k = k.astype(float)
        k[3] = np.nan
    frame = pd.DataFrame({"gi_class": classes, "gi_z": rng.normal(0, 3, n), "gi_q": rng.random(n),
                          "gi_test": rng.choice(["normal", "exact_binomial", "other"], n)})
    if counts != "missing":
        frame["count"] = k
    rows = np.flatnonzero(rng.random(n) < 0.8)
    name = "ASB <b>& 'more'"
    assert _gi_cell_properties(frame, rows, name) == _gi_tips_before(frame, rows, name)


def test_preload_makes_what_every_worker_would_make():
    """preload (run before the map workers fork) leaves the transformer and the page template made."""
    from hotspots.render import map_html
    from hotspots.render.maps import preload
    from hotspots.schema import BNG

    geometry._transformer.cache_clear()
    map_html._page_template.cache_clear()
    preload()
    assert geometry._transformer.cache_info().currsize == 1 and map_html._page_template.cache_info().currsize == 1
    made = geometry._transformer(BNG), map_html._page_template()
    assert geometry._transformer.cache_info().hits == 1 and map_html._page_template.cache_info().hits == 1
    assert made[0] is geometry._transformer(BNG)
