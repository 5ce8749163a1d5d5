"""Hotspot maps for neighbourhood inspectors: offline HTML (folium/Leaflet) and PNG.

Display only: these modules compute no statistics.  They receive finished
tables (grid cells with Gi* classes and KDE ranks, patrol areas, clusters,
boundaries), gathered in a :class:`MapView` by the ``hotspots`` stage
(:mod:`hotspots.stages._hotspots_maps`), and draw them; they return the page
(a string) or the image (bytes), and the stage writes the files.

Contents
--------
map_views      :class:`MapView`, :class:`SelectionView`, colours and labels
map_html       :func:`render_html`: the interactive map (folium/Leaflet), offline
map_png        :func:`static_map_png`: the printable A4 map
_leaflet       Leaflet's files inlined; folium's elements rendered once; :func:`preload`
_map_geometry  display geometry, GeoJSON, KDE contour bands
maps           this module: the above, and :func:`hotspot_map` for a notebook

Offline
-------
Police networks block content-delivery networks, and folium loads Leaflet,
jQuery, Bootstrap and Font Awesome from CDNs by default.  These maps load
nothing: Leaflet's JavaScript and CSS are *inlined* into each HTML file (its
images as ``data:`` URIs), and only folium features that need nothing but
Leaflet are used (folium's ``Popup`` and ``GeoJsonPopup`` need jQuery or do
not escape values, so popups are bound here from pre-escaped HTML).  Leaflet
is vendored in this package (:func:`leaflet_assets`; the npm package
``leaflet@1.9.4``, BSD-2-Clause, its LICENSE shipped beside it and shown in
every map's "About this map").  Street context needs no network either: the
police.uk map points themselves (the anonymised "On or near …" locations)
are drawn with their street names, and an optional vector road layer is read
from the data home (:mod:`hotspots.io.roads`).  An OpenStreetMap background
is an opt-in (``map_tiles`` in the config), off by default.

Safety
------
Every string that comes from the data (area, ward, town-centre and location
names, crime types) is HTML-escaped before it reaches the page, and JSON
embedded in ``<script>`` escapes ``<``, ``>`` and ``&``, so a name such as
``<img src=x onerror=alert(1)>`` is shown as text.

Size
----
Geometries are simplified (a few metres, below the ~100 m meaning of
police.uk locations), coordinates rounded to 6 decimal places (~0.1 m), and
only significant Gi* cells are drawn, so a district map stays well under
5 MB.
"""

from __future__ import annotations

import geopandas as gpd
import shapely

from hotspots.render._leaflet import LeafletAssets, leaflet_assets
from hotspots.render._leaflet import preload as _preload_libraries
from hotspots.render._map_geometry import _grid_rule_holds, _transformer
from hotspots.render.map_html import _page_template, folium_map, render_html
from hotspots.render.map_png import static_map_png
from hotspots.render.map_views import (
    GI_COLOURS,
    GI_LABELS,
    KDE_BANDS,
    OSM_TILES,
    POPUP_FIELDS,
    MapView,
    SelectionView,
)
from hotspots.schema import BNG

__all__ = [
    "LeafletAssets",
    "MapView",
    "SelectionView",
    "GI_COLOURS",
    "GI_LABELS",
    "KDE_BANDS",
    "OSM_TILES",
    "POPUP_FIELDS",
    "leaflet_assets",
    "preload",
    "folium_map",
    "render_html",
    "static_map_png",
    "hotspot_map",
]


def preload() -> None:
    """What drawing a map needs, made once here, before the map workers fork (they inherit it).

    :func:`hotspots.render._leaflet.preload` (folium, matplotlib, Leaflet's
    files), and the BNG -> WGS84 transformer and the page script's compiled
    template, about 0.05 s and 0.04 s of each worker's first map otherwise,
    and the grid-snapping rule's check.
    """
    _preload_libraries()
    _transformer(BNG)
    _page_template()
    _grid_rule_holds()


def hotspot_map(cells: gpd.GeoDataFrame, *, patrol_areas: gpd.GeoDataFrame | None = None, title: str | None = None,
                selection: str = "Crime", period: str = "", source: str = "police.uk, OGL v3",
                web_tiles: bool = False) -> str:
    """An interactive hotspot map of Gi* cells (and patrol areas) as one self-contained, offline HTML page.

    The same map the ``hotspots`` command writes to ``maps/``: significant
    Gi* cells coloured by class (hot reds, cold blues, by confidence),
    numbered patrol areas with pop-ups, and the ranked list beside them.
    Leaflet is inlined, so the page opens without a network (police
    networks block CDNs); no web-tile background unless ``web_tiles=True``.
    Save it with ``pathlib.Path("map.html").write_text(page, encoding="utf-8")``,
    or show it in Jupyter with ``IPython.display.HTML(page)``.

    Parameters
    ----------
    cells : GeoDataFrame
        Grid cells in EPSG:27700 with at least ``gi_class`` (from
        :func:`hotspots.find_hotspots`); ``count``, ``gi_z`` and ``gi_q`` are
        shown in the tooltips when present, and ``kde_top_pct`` (with
        ``row``/``col`` and the grid's ``attrs["grid"]``) adds KDE bands.
        The study area drawn is the union of the cells.
    patrol_areas : GeoDataFrame, optional
        Polygons in EPSG:27700 with ``rank`` and ``count`` (from
        :func:`hotspots.patrol_areas`); ``name`` is shown when present (else
        ``patrol_area_id``), and any of :data:`POPUP_FIELDS` in the pop-ups.
    title : str, optional
        Page and panel title (default ``"Crime hotspots"``).
    selection : str, default "Crime"
        Name of what the cells count (the layer's name).
    period, source : str
        Shown under the title.
    web_tiles : bool, default False
        Offer an OpenStreetMap background layer (off until ticked; needs internet).

    Returns
    -------
    str
        The complete HTML page (a string: nothing is written).

    Notes
    -----
    Display only: nothing is computed here beyond projecting and
    simplifying the shapes for display.  Names from the data are
    HTML-escaped.  Hot and cold spots follow Getis & Ord (1992) / Ord &
    Getis (1995) as classified by :func:`hotspots.gi_star`.

    Examples
    --------
    >>> import shapely
    >>> from hotspots.datasets import synthetic_points
    >>> from hotspots.detect import find_hotspots, patrol_areas
    >>> cells = find_hotspots(synthetic_points(seed=1), shapely.box(0, 0, 2000, 2000), cell_size=200)
    >>> page = hotspot_map(cells, patrol_areas=patrol_areas(cells), title="Example")
    >>> page.lstrip().startswith("<!DOCTYPE html>"), "<title>Example</title>" in page
    (True, True)
    """
    crs = cells.crs
    study = gpd.GeoDataFrame({"area_name": [title or "Study area"]},
                             geometry=[shapely.union_all(cells.geometry.values)], crs=crs)
    pa = patrol_areas
    if pa is not None and len(pa):
        pa = pa.copy()
        if "name" not in pa:
            pa["name"] = pa["patrol_area_id"] if "patrol_area_id" in pa else [f"Area {r}" for r in pa["rank"]]
    elif pa is None:
        pa = gpd.GeoDataFrame({"rank": [], "name": [], "count": []}, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    view = MapView(slug="map", title=title or "Crime hotspots", period_label=period, study_area=study,
                   selections=[SelectionView(name=selection, cells=cells, patrol_areas=pa,
                                             grid=cells.attrs.get("grid"), classes=_classes_present(cells))],
                   source=source, web_tiles=web_tiles)
    return render_html(view)


def _classes_present(cells: gpd.GeoDataFrame) -> list[str] | None:
    """The Gi* classes among the cells, strongest first (the legend lists only these)."""
    if "gi_class" not in cells:
        return None
    present = set(cells["gi_class"].astype(str))
    return [c for c in GI_COLOURS if c in present]
