"""Inspectors' maps: offline (no CDN), escaped, small, and really rendering in headless Chromium."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from hotspots._text import slug
from hotspots.render import maps as maps
from hotspots.stages._hotspots_maps import write_maps
from hotspots._io import OutputDir
from hotspots.geo import grid_weights, make_grid
from hotspots.detect.gistar import gi_star

PAYLOAD = "<img src=x onerror=alert(1)>"
X0, Y0 = 510_000.0, 196_000.0


def _view(payload: str = PAYLOAD) -> maps.MapView:
    area = gpd.GeoDataFrame({"area_name": ["Testshire " + payload]},
                            geometry=[shapely.box(X0, Y0, X0 + 5000, Y0 + 4000)], crs=27700)
    grid = make_grid(area, 250, crs=27700)
    rng = np.random.default_rng(0)
    counts = rng.poisson(2, len(grid)).astype(float)
    dist = np.hypot(grid["x_centre"] - (X0 + 2500), grid["y_centre"] - (Y0 + 2000))
    counts += np.where(dist < 600, 25, 0)
    gi = gi_star(counts, grid_weights(grid))
    cells = grid.assign(count=counts, gi_z=gi["gi_z"].to_numpy(), gi_q=gi["gi_q"].to_numpy(),
                        gi_class=gi["gi_class"].astype(str).to_numpy())
    cells["kde_top_pct"] = pd.Series(-counts).rank(method="max", pct=True).to_numpy() * 100
    hot = cells[cells["gi_class"].str.startswith("hot")]
    patrol = gpd.GeoDataFrame(
        {"patrol_area_id": ["D1-all-crime-sq250_r008_c010"], "rank": [1], "name": ["Centre " + payload],
         "count": [int(hot["count"].sum())], "trend": ["rising (H2 vs H1 +10%)"],
         "top_crime_types": ["Shoplifting 40; " + payload], "district_name": ["Testshire"]},
        geometry=[shapely.union_all(hot.geometry.values)], crs=27700)
    clusters = gpd.GeoDataFrame({"cluster_id": [1], "count": [50], "n_locations": [8], "label": ["On or near " + payload]},
                                geometry=[shapely.Point(X0 + 2500, Y0 + 2000).buffer(300)], crs=27700)
    town = gpd.GeoDataFrame({"area_name": ["Town " + payload]}, geometry=[shapely.Point(X0 + 2400, Y0 + 2100).buffer(500)],
                            crs=27700)
    wards = gpd.GeoDataFrame({"area_name": ["Ward " + payload, "East ward"]},
                             geometry=[shapely.box(X0, Y0, X0 + 2500, Y0 + 4000), shapely.box(X0 + 2500, Y0, X0 + 5000, Y0 + 4000)],
                             crs=27700)
    sels = [maps.SelectionView("All crime", cells, patrol, clusters, grid.attrs["grid"]),
            maps.SelectionView("ASB " + payload, cells.iloc[:0], patrol.iloc[:0], None, grid.attrs["grid"],
                               note="no significant hot spots")]
    summary = pd.DataFrame({"town_centre_name": ["Town " + payload], "selection": ["All crime"], "count": [120],
                            "change_h2_vs_h1_pct": [12.5], "hot_cells": [9], "patrol_areas": ["#1 " + payload]})
    return maps.MapView("testshire", "Testshire " + payload, "2025-01..2025-12", area, sels, districts=area,
                        town_centres=town, wards=wards, town_centre_summary=summary)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = OutputDir(tmp_path_factory.mktemp("maps"))
    rows = write_maps(out, [_view()])
    return out.root / rows[0]["html"], out.root / rows[0]["png"], rows[0]


def _without_library(page: str) -> str:
    assets = maps.leaflet_assets()
    assert assets.js in page and assets.css in page, "Leaflet must be inlined"
    return page.replace(assets.js, "").replace(assets.css, "")


def test_leaflet_inlined_from_an_installed_package():
    assets = maps.leaflet_assets()
    assert assets.version.startswith("1.")
    assert "url(images/" not in assets.css  # images inlined as data URIs
    assert "sourceMappingURL" not in assets.js


def test_no_external_resources(written):
    page = written[0].read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=", page, re.I)
    assert not re.search(r"<link[^>]+href=", page, re.I)
    rest = _without_library(page)
    urls = set(re.findall(r"https?://[^\s\"'<>\\)]+", rest))
    # the only URLs left: the optional OpenStreetMap tile template and its attribution link
    assert urls <= {maps.OSM_TILES, "https://www.openstreetmap.org/copyright"}, urls


def test_data_strings_are_escaped(written):
    page = written[0].read_text(encoding="utf-8")
    assert PAYLOAD not in page
    assert "<img" not in _without_library(page).lower()


def test_sizes_and_png(written):
    html_path, png_path, row = written
    assert row["html_bytes"] == html_path.stat().st_size < 5_000_000
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_only_significant_cells_drawn():
    view = _view("plain")
    page = maps.render_html(view)
    n_sig = int(view.selections[0].cells["gi_class"].isin(list(maps.GI_COLOURS)).sum())
    assert 0 < n_sig < len(view.selections[0].cells)
    assert page.count('"c": "hot_') + page.count('"c": "cold_') == n_sig


def test_slugify():
    assert slug("St Albans") == "st-albans"
    assert slug("Three Rivers") == "three-rivers"


def _pixel_std(path) -> float:
    from matplotlib import image

    pixels = np.asarray(image.imread(str(path)), dtype=float)[..., :3]  # PNG: floats in [0, 1]
    return float(pixels.std() * 255)


@pytest.mark.browser
def test_map_renders_offline_in_chromium(written, tmp_path):
    from _browser import open_page

    with open_page(written[0], wait_ms=800) as (page, events):
        shot = tmp_path / "map.png"
        page.screenshot(path=str(shot))
        dom = page.evaluate("""() => ({
            paths: document.querySelectorAll('.leaflet-pane path').length,
            gi: document.querySelectorAll('path.hs-gi').length,
            patrol: document.querySelectorAll('path.hs-pa').length,
            labels: document.querySelectorAll('.hs-pa-label').length,
            imgs: document.querySelectorAll('img[src="x"]').length,
            radios: document.querySelectorAll('.leaflet-control-layers-base input').length,
            list: document.getElementById('hs-list').innerText,
            title: document.querySelector('.hs-info h1').innerText})""")
        # switch to the second selection and back; open the patrol-area pop-up
        page.locator(".leaflet-control-layers-base label").nth(1).click()
        page.wait_for_timeout(200)
        other = page.evaluate("() => document.getElementById('hs-list').innerText")
        page.locator(".leaflet-control-layers-base label").nth(0).click()
        page.wait_for_timeout(200)
        page.locator("path.hs-pa").first.click(force=True)
        page.wait_for_timeout(300)
        popup = page.evaluate("() => (document.querySelector('.leaflet-popup-content') || {}).innerText || ''")
        page.locator(".leaflet-popup-close-button").click()
        page.locator(".hs-tc-label").first.click()
        page.wait_for_timeout(300)
        tc_popup = page.evaluate("() => (document.querySelector('.leaflet-popup-content') || {}).innerText || ''")
        imgs_after = page.evaluate("() => document.querySelectorAll('img[src=\"x\"]').length")
    assert events["page_errors"] == [] and events["console_errors"] == []
    assert events["blocked_requests"] == []  # nothing tried to load from the network
    assert events["dialogs"] == []  # the payload never ran
    assert dom["imgs"] == 0 and imgs_after == 0
    assert dom["gi"] > 0 and dom["patrol"] == 1 and dom["labels"] == 1 and dom["radios"] == 2
    assert PAYLOAD in dom["list"] and PAYLOAD in dom["title"]  # shown as text
    assert "no significant hot spots" in other
    assert PAYLOAD in popup
    assert "Town " + PAYLOAD + " town centre" in tc_popup and "#1 " + PAYLOAD in tc_popup
    assert _pixel_std(shot) > 10


@pytest.mark.browser
def test_map_without_data_still_renders(tmp_path):
    from _browser import open_page

    view = _view("plain")
    view.selections = [maps.SelectionView("All crime", view.selections[0].cells.iloc[:0],
                                          view.selections[0].patrol_areas.iloc[:0], None, None, note="nothing")]
    out = OutputDir(tmp_path)
    row = write_maps(out, [view], png=False)[0]
    with open_page(out.root / row["html"]) as (page, events):
        n = page.evaluate("() => document.querySelectorAll('.leaflet-pane path').length")
    assert events["page_errors"] == [] and n > 0


def test_hotspot_map_of_find_hotspots_cells():
    from shapely.geometry import box

    from hotspots.datasets import synthetic_points
    from hotspots.detect import find_hotspots, patrol_areas

    cells = find_hotspots(synthetic_points(seed=2), box(520_000, 210_000, 522_000, 212_000), cell_size=200)
    page = maps.hotspot_map(cells, patrol_areas=patrol_areas(cells), title="Test <b>map</b>")
    assert "<title>Test &lt;b&gt;map&lt;/b&gt;</title>" in page
    n_sig = int(cells["gi_class"].isin(list(maps.GI_COLOURS)).sum())
    assert n_sig > 0 and page.count('"c": "hot_') + page.count('"c": "cold_') == n_sig
    assert "PA-01" in page and "<script src=" not in page
    # numbers are placed by the page script from the patrol areas' data: none without patrol areas
    assert "var badgeData = {};" in maps.hotspot_map(cells) and "var badgeData = {};" not in page
