"""Maps an inspector can patrol from: street context offline, labels that never hide what they name, list to
zoom, phone layout, legend and contrast, roads from the data home, the Leaflet licence in every map."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from hotspots._errors import HotspotsError
from hotspots.detect._points import PointCodes
from hotspots.detect.tables import street_context
from hotspots.io.roads import read_roads
from hotspots.render import maps
from hotspots.render import map_html
from hotspots.render.map_views import GI_LABELS, MAP_BACKGROUND

from test_maps import X0, Y0, _view

STREETS = ["Alpha Road", "Beta Street", "Gamma Lane", "Delta Way", "Epsilon Close", "Zeta Avenue"]


def _street_points() -> pd.DataFrame:
    """police.uk-like records on map points along six streets, most near the hot centre, and a supermarket."""
    rows = []
    for i, street in enumerate(STREETS):
        for k in range(6):
            x, y = X0 + 1700 + i * 260, Y0 + 1300 + k * 260
            rows += [(x, y, f"On or near {street}")] * (1 + (i + k) % 4)
    rows += [(X0 + 2500, Y0 + 2000, "On or near Supermarket")] * 12
    pts = pd.DataFrame(rows, columns=["x", "y", "location"])
    return pts.assign(month="2025-01", crime_type="Shoplifting")


def _context_view(web_tiles: bool = False) -> maps.MapView:
    view = _view("plain")
    sel = view.selections[0]
    # two tiny patrol areas next to each other (a number is wider than either)
    tiny = gpd.GeoDataFrame({"patrol_area_id": ["D1-x-a", "D1-x-b"], "rank": [2, 3],
                             "name": ["Tiny one", "Tiny two"], "count": [20, 18]},
                            geometry=[shapely.box(X0 + 600, Y0 + 600, X0 + 700, Y0 + 700),
                                      shapely.box(X0 + 700, Y0 + 600, X0 + 800, Y0 + 700)], crs=27700)
    sel.patrol_areas = pd.concat([sel.patrol_areas, tiny], ignore_index=True)
    sel.classes = [c for c in maps.GI_COLOURS if c in set(sel.cells["gi_class"])]
    pts = _street_points()
    codes = PointCodes.of(pts, pd.Series(dtype=float))
    points, labels = street_context(codes, np.arange(len(pts)), view.study_area.geometry.iloc[0],
                                    list(sel.patrol_areas.geometry))
    view.map_points, view.street_labels, view.web_tiles = points, labels, web_tiles
    return view


def test_street_context_counts_every_record_and_orders_labels():
    view = _context_view()
    assert int(view.map_points["count"].sum()) == len(_street_points())
    labels = view.street_labels
    assert set(STREETS) <= set(labels["label"])
    assert list(labels["tier"]) == sorted(labels["tier"], reverse=True)  # inside patrol areas first
    # a kind of place is labelled only inside a patrol area; a street once
    assert labels["label"].value_counts().max() == 1
    assert labels.loc[labels["label"] == "Supermarket", "tier"].tolist() == [2]


def _srgb(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    channels = [int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_srgb(a), _srgb(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_text_colours_contrast_at_least_4_5_to_1():
    # every text colour of the map's stylesheet, against the white halo/panel and the map background
    colours = set(re.findall(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{3,6})\b", map_html._CSS))
    assert len(colours) >= 5
    for colour in colours:
        for background in ("#ffffff", MAP_BACKGROUND):
            assert _contrast(colour, background) >= 4.5, (colour, background, round(_contrast(colour, background), 2))
    assert _contrast("#777777", "#ffffff") < 4.5  # the check would catch the old ward-label grey


def test_legend_lists_only_the_classes_present():
    view = _context_view()
    present = view.selections[0].classes
    assert present and not any(c.startswith("cold") for c in present)  # one planted hot spot, no cold spots
    legend = map_html._legend_html(view, view.selections[0])
    for cls, label in GI_LABELS.items():
        assert (label in legend) == (cls in present), cls
    # outline layers too: "town centre" and "ward" only when the map draws them (a force without town centres)
    assert "town centre</div>" in legend and "ward</div>" in legend
    view.town_centres, view.wards = view.town_centres.iloc[:0], None
    bare = map_html._legend_html(view, view.selections[0])
    assert "town centre</div>" not in bare and "ward</div>" not in bare
    # the notebook verb computes the same from its cells
    page = maps.hotspot_map(view.selections[0].cells)
    assert "Cold spot" not in page.split("var legends")[1].split("\n")[0]


def test_leaflet_licence_in_every_map_and_tiles_only_on_request():
    page = maps.render_html(_context_view())
    assert "Copyright (c) 2010-2023, Volodymyr Agafonkin" in page and "BSD 2-Clause License" in page
    assert maps.OSM_TILES not in page
    assert maps.OSM_TILES in maps.render_html(_context_view(web_tiles=True))


def test_roads_from_the_data_home(tmp_path):
    (tmp_path / "roads").mkdir()
    roads = gpd.GeoDataFrame({"name_1": ["Alpha Road", "Far Away Road"], "road_classification": ["B Road", "A Road"]},
                             geometry=[shapely.LineString([(X0 + 100, Y0 + 100), (X0 + 2900, Y0 + 1900)]),
                                       shapely.LineString([(X0 + 90_000, Y0), (X0 + 91_000, Y0)])], crs=27700)
    roads.to_file(tmp_path / "roads" / "open_roads.gpkg", layer="road_link")
    got = read_roads(tmp_path, (X0, Y0, X0 + 5000, Y0 + 4000))
    assert got["name"].tolist() == ["Alpha Road"] and got.crs.to_epsg() == 27700
    assert read_roads(tmp_path / "nowhere", (X0, Y0, X0 + 1, Y0 + 1)) is None
    view = _context_view()
    view.roads = got
    assert "hs-road" in maps.render_html(view)
    assert maps.static_map_png(view)[:4] == b"\x89PNG"
    bad = tmp_path / "bad"
    (bad / "roads").mkdir(parents=True)
    no_crs = gpd.GeoDataFrame({"name": ["x"]}, geometry=[shapely.LineString([(0, 0), (1, 1)])])
    with pytest.warns(UserWarning, match="crs"):
        no_crs.to_file(bad / "roads" / "r.gpkg")
    with pytest.raises(HotspotsError, match="no coordinate reference system"):
        read_roads(bad, (0, 0, 10, 10))


@pytest.fixture(scope="module")
def context_page(tmp_path_factory):
    path = tmp_path_factory.mktemp("ctx") / "map.html"
    path.write_text(maps.render_html(_context_view()), encoding="utf-8")
    return path


_MAP = "window[Object.keys(window).find(k => k.startsWith('map_') && window[k] && window[k].getZoom)]"


def _rects(page, selector: str) -> list[list[float]]:
    return page.evaluate(f"""() => [...document.querySelectorAll({selector!r})]
        .filter(e => getComputedStyle(e).visibility != 'hidden')
        .map(e => {{ var r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }})
        .filter(r => r[2] > r[0])""")


def _overlap(a, b) -> bool:
    return a[0] < b[2] and a[2] > b[0] and a[1] < b[3] and a[3] > b[1]


@pytest.mark.browser
def test_street_names_shown_and_not_blank_around_them(context_page, tmp_path):
    from matplotlib import image

    from _browser import open_page

    with open_page(context_page, width=1366, height=768, wait_ms=900) as (page, events):
        shot = tmp_path / "laptop.png"
        page.screenshot(path=str(shot))
        streets = _rects(page, ".hs-street-label span")
        names = page.evaluate("() => [...document.querySelectorAll('.hs-street-label')]"
                              ".filter(e => e.style.display != 'none').map(e => e.textContent)")
        dots = page.evaluate("() => document.querySelectorAll('.leaflet-hs_points-pane canvas').length")
    assert events["page_errors"] == [] and events["console_errors"] == [] and events["blocked_requests"] == []
    assert len(streets) >= 3 and set(names) <= set(STREETS) | {"Supermarket"} and dots == 1
    pixels = np.asarray(image.imread(str(shot)), dtype=float)[..., :3]
    for left, top, right, bottom in streets[:3]:
        around = pixels[max(0, int(top) - 30):int(bottom) + 30, max(0, int(left) - 30):int(right) + 30]
        assert around.std() * 255 > 15  # a street name over a drawn map, not over blank paper
    for i, a in enumerate(streets):  # names never overlap each other
        assert not any(_overlap(a, b) for b in streets[i + 1:])


@pytest.mark.browser
def test_numbers_never_hide_small_areas_or_each_other(context_page):
    from _browser import open_page

    with open_page(context_page, width=1366, height=768, wait_ms=900) as (page, events):
        badges = _rects(page, ".hs-pa-label div")
        areas = _rects(page, "path.hs-pa:not(.hs-leader)")
        streets = _rects(page, ".hs-street-label span")
        moved = page.evaluate("() => document.querySelectorAll('.hs-pa-moved').length")
        leaders = page.evaluate("() => document.querySelectorAll('path.hs-leader').length")
    assert events["page_errors"] == []
    assert len(badges) == 3 and moved >= 2 and leaders == moved
    for i, a in enumerate(badges):
        assert not any(_overlap(a, b) for b in badges[i + 1:])
        assert not any(_overlap(a, s) for s in streets)
    small = [r for r in areas if r[2] - r[0] < 36 or r[3] - r[1] < 36]
    assert len(small) == 2
    for area in small:
        assert not any(_overlap(b, area) for b in badges)


@pytest.mark.browser
def test_list_entry_zooms_to_its_area(context_page):
    from _browser import open_page

    with open_page(context_page, width=1366, height=768, wait_ms=900) as (page, events):
        before = page.evaluate(f"() => {{ var m = {_MAP}; return [m.getZoom(), m.getCenter().lat, m.getCenter().lng]; }}")
        page.locator("#hs-list li[data-rank='3']").click()
        page.wait_for_timeout(900)
        after = page.evaluate(f"() => {{ var m = {_MAP}; return [m.getZoom(), m.getCenter().lat, m.getCenter().lng]; }}")
        popup = page.evaluate("() => (document.querySelector('.leaflet-popup-content') || {}).innerText || ''")
        popup_box = _rects(page, ".leaflet-popup-content-wrapper")
        panels = _rects(page, ".hs-panel")
    assert events["page_errors"] == []
    assert after[0] > before[0] + 1 and (after[1], after[2]) != (before[1], before[2])
    assert "Tiny two" in popup
    assert len(popup_box) == 1 and not any(_overlap(popup_box[0], p) for p in panels)  # not under a panel


@pytest.mark.browser
def test_phone_panels_fold_and_popups_open_above_them(context_page):
    from _browser import open_page

    with open_page(context_page, width=390, height=844, wait_ms=900) as (page, events):
        expanded = page.evaluate("() => document.querySelectorAll('.leaflet-control-layers-expanded').length")
        info_open = page.evaluate("() => document.querySelector('.hs-info details').open")
        page.locator(".hs-info summary").first.click()
        page.locator("#hs-list li[data-rank='1']").click()
        page.wait_for_timeout(900)
        popup = _rects(page, ".leaflet-popup-content-wrapper")
        panels = page.evaluate("""() => [...document.querySelectorAll('.hs-panel')].map(e => {
            var r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })""")
    assert events["page_errors"] == []
    assert expanded == 0 and info_open is False
    assert len(popup) == 1 and popup[0][2] <= 390
    assert not any(_overlap(popup[0], p) for p in panels)


def test_web_tiles_are_an_opt_in_setting():
    from types import SimpleNamespace

    from hotspots._errors import ConfigError
    from hotspots.stages._hotspots_config import hotspot_config

    def settings(**raw):
        return SimpleNamespace(extra={"hotspots": {"crime_types": ["Burglary"], **raw}}, crime_groups={},
                               source="test.toml")

    assert hotspot_config(settings()).map_tiles is False
    assert hotspot_config(settings(map_tiles=True)).map_tiles is True
    with pytest.raises(ConfigError, match="map_tiles = 'yes' must be true or false"):
        hotspot_config(settings(map_tiles="yes"))


def test_every_patrol_area_gets_its_busiest_name_first():
    import shapely as sh

    # area A: one street with many records and a second; area B: a quiet street
    rows = ([(100, 100, "On or near Busy Road")] * 50 + [(150, 150, "On or near Second Road")] * 40
            + [(900, 900, "On or near Quiet Lane")] * 3)
    pts = pd.DataFrame(rows, columns=["x", "y", "location"]).assign(month="2025-01", crime_type="Burglary")
    codes = PointCodes.of(pts, pd.Series(dtype=float))
    _, labels = street_context(codes, np.arange(len(pts)), sh.box(0, 0, 1000, 1000),
                               [sh.box(50, 50, 200, 200), sh.box(850, 850, 950, 950)])
    assert labels["label"].tolist() == ["Busy Road", "Quiet Lane", "Second Road"]


def test_every_text_of_the_png_lies_on_the_page(monkeypatch):
    """No word of the printable map runs off the A4 page (the legend title once did, at the right edge)."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    kept = []
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    try:
        assert maps.static_map_png(_context_view())[:4] == b"\x89PNG"
        (fig,) = kept
        renderer = fig.canvas.get_renderer()
        page = fig.bbox
        outside = [t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()
                   and (t.get_window_extent(renderer).x1 > page.x1 + 1 or t.get_window_extent(renderer).x0 < -1)]
        assert outside == []
    finally:
        for fig in kept:
            close(fig)


def test_patrol_areas_by_selection_are_the_filtered_rows():
    """_by_selection(frame)(sel) is frame[frame["selection"] == sel]: every selection, one not there, an empty table."""
    from geopandas.testing import assert_geodataframe_equal

    from hotspots.stages._hotspots_maps import _by_selection

    sels = ["All crime", "ASB", "Burglary", "ASB", "All crime", None, "ASB"]
    frame = gpd.GeoDataFrame({"selection": pd.array(sels, dtype="str"), "rank": range(7),
                              "name": [f"n{i}" for i in range(7)]},
                             geometry=[shapely.box(i, 0, i + 1, 1) for i in range(7)], crs=27700,
                             index=[10, 3, 7, 1, 0, 22, 5])
    frame.attrs["note"] = "kept"
    rows = _by_selection(frame)
    for sel in ["All crime", "ASB", "Burglary", "Vehicle crime"]:
        want = frame[frame["selection"] == sel]
        got = rows(sel)
        assert_geodataframe_equal(got, want, check_index_type=True)
        assert got.attrs == want.attrs and list(got.index) == list(want.index)
        assert got is not rows(sel)  # a new frame each time, as the filter gave
    empty = frame.iloc[:0]
    assert _by_selection(empty)("ASB") is empty


def test_collector_paused_while_a_map_is_drawn_and_restored(monkeypatch):
    import gc

    from hotspots.stages import _hotspots_maps

    seen = []
    monkeypatch.setattr(_hotspots_maps, "render_html", lambda view: seen.append(gc.isenabled()) or "<html>")
    monkeypatch.setattr(_hotspots_maps, "static_map_png", lambda view: seen.append(gc.isenabled()) or b"png")
    assert gc.isenabled()
    assert _hotspots_maps._draw(None, True) == ("<html>", b"png") and seen == [False, False]
    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError):  # restored after an error too
        with _hotspots_maps.collector_paused():
            1 / 0
    assert gc.isenabled()
    gc.disable()
    try:  # a collector the caller turned off stays off
        assert _hotspots_maps._draw(None, False) == ("<html>", None)
        assert not gc.isenabled()
    finally:
        gc.enable()
