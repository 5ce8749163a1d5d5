"""Hotspot maps for neighbourhood inspectors: offline HTML (folium/Leaflet) and PNG.

Display only: this module computes no statistics.  It receives the tables of
:mod:`hotspots.hotspots_stage` (grid cells with Gi* classes and KDE ranks,
patrol areas, clusters, boundaries) and draws them.

Offline
-------
Police networks block content-delivery networks, and folium loads Leaflet,
jQuery, Bootstrap and Font Awesome from CDNs by default.  These maps load
nothing: Leaflet's JavaScript and CSS are *inlined* into each HTML file (its
images as ``data:`` URIs), and only folium features that need nothing but
Leaflet are used (folium's ``Popup`` and ``GeoJsonPopup`` need jQuery or do
not escape values, so popups are bound here from pre-escaped HTML).  Leaflet
is read from an installed package (:func:`leaflet_assets`): the PyPI package
``django-js-lib-leaflet`` (the official Leaflet 1.9.4 build, BSD-2-Clause,
no dependencies; nothing of Django is imported), or Debian's
``libjs-leaflet``.  An OpenStreetMap background is offered as an optional
layer, off by default: the map is complete without it (district, town-centre
and ward outlines and labels give orientation).

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

import base64
import dataclasses
import functools
import html
import io
import math
import re
import types
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from hotspots._errors import HotspotsError
from hotspots.schema import BNG, WGS84

__all__ = [
    "LeafletAssets",
    "MapView",
    "SelectionView",
    "GI_COLOURS",
    "leaflet_assets",
    "hotspot_map",
    "render_html",
    "static_map_png",
    "write_maps",
    "slugify",
]

#: Gi* classes: hot reds, cold blues (ColorBrewer RdBu), strongest first.
GI_COLOURS = {
    "hot_99": "#b2182b",
    "hot_95": "#ef8a62",
    "hot_90": "#fddbc7",
    "cold_90": "#d1e5f0",
    "cold_95": "#67a9cf",
    "cold_99": "#2166ac",
}
GI_LABELS = {
    "hot_99": "Hot spot, 99% confidence",
    "hot_95": "Hot spot, 95% confidence",
    "hot_90": "Hot spot, 90% confidence",
    "cold_90": "Cold spot, 90% confidence",
    "cold_95": "Cold spot, 95% confidence",
    "cold_99": "Cold spot, 99% confidence",
}
#: KDE bands by the share of the study area's cells that are at least as dense.
KDE_BANDS = [(1.0, "#3f007d", "densest 1% of the area"), (5.0, "#6a51a3", "densest 5%"),
             (10.0, "#9e9ac8", "densest 10%"), (25.0, "#dadaeb", "densest 25%")]
PATROL_COLOUR = "#111111"
TOWN_CENTRE_COLOUR = "#1b7837"
CLUSTER_COLOUR = "#e08214"
DISTRICT_COLOUR = "#333333"
WARD_COLOUR = "#8c8c8c"

#: simplification tolerances in metres (BNG) for display
SIMPLIFY_BOUNDARY_M = 10.0
SIMPLIFY_AREA_M = 2.0
SIMPLIFY_CLUSTER_M = 8.0
#: patrol areas listed beside the PNG map
PNG_MAX_LISTED = 14
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'


# --------------------------------------------------------------------------- assets
@dataclasses.dataclass(frozen=True)
class LeafletAssets:
    """Leaflet's JavaScript and CSS, ready to inline."""

    js: str
    css: str
    version: str
    source: str
    licence: str = "BSD-2-Clause (Leaflet, (c) Volodymyr Agafonkin, CloudMade)"


_ASSET_CACHE: dict[str, LeafletAssets] = {}


def _asset_dirs() -> list[tuple[Path, str]]:
    dirs = []
    try:
        root = resources.files("js_lib_leaflet") / "static" / "js_lib_leaflet"
        dirs.append((Path(str(root)), "PyPI package django-js-lib-leaflet"))
    except ModuleNotFoundError:
        pass
    dirs.append((Path("/usr/share/javascript/leaflet"), "Debian package libjs-leaflet"))
    return dirs


def leaflet_assets() -> LeafletAssets:
    """Leaflet JS/CSS from an installed package, with images inlined as data URIs.

    Raises
    ------
    HotspotsError
        When no installed package ships Leaflet.
    """
    if "leaflet" in _ASSET_CACHE:
        return _ASSET_CACHE["leaflet"]
    for folder, source in _asset_dirs():
        js_path, css_path = folder / "leaflet.js", folder / "leaflet.css"
        if not (js_path.is_file() and css_path.is_file()):
            continue
        js = js_path.read_text(encoding="utf-8")
        # the source map is a developer aid; a file:// request for it is pointless offline
        js = re.sub(r"//# sourceMappingURL=\S+\s*$", "", js.rstrip()) + "\n"
        css = css_path.read_text(encoding="utf-8")

        def inline(match: re.Match) -> str:
            img = folder / match.group(1)
            if not img.is_file():
                return "none"
            data = base64.b64encode(img.read_bytes()).decode("ascii")
            return f"url(data:image/png;base64,{data})"

        css = re.sub(r"url\((images/[^)]+\.png)\)", inline, css)
        version = re.search(r"Leaflet (\d+\.\d+\.\d+)", js)
        assets = LeafletAssets(js=js, css=css, version=version.group(1) if version else "?", source=f"{source} ({folder})")
        if "</script" in js.lower() or "</style" in css.lower():
            raise HotspotsError(f"{js_path}: cannot be inlined safely", hint="reinstall django-js-lib-leaflet")
        _ASSET_CACHE["leaflet"] = assets
        return assets
    raise HotspotsError(
        "Leaflet is not installed, so offline maps cannot be written",
        hint="pip install django-js-lib-leaflet (a dependency of hotspots; it ships Leaflet's JS/CSS) "
        "or apt-get install libjs-leaflet",
    )


# --------------------------------------------------------------------------- inputs
@dataclasses.dataclass
class SelectionView:
    """Everything drawn for one crime selection (e.g. "ASB") in one study area.

    ``cells``: grid cells (EPSG:27700) with ``cell_id``, ``row``, ``col``,
    ``count``, ``gi_z``, ``gi_q``, ``gi_class`` and ``kde_top_pct`` (the share
    of the area's cells at least as dense, in %).  ``patrol_areas``: polygons
    with ``patrol_area_id``, ``rank``, ``name`` and the popup columns (any of
    :data:`POPUP_FIELDS`).  ``clusters``: polygons with ``cluster_id``,
    ``count``, ``n_locations``, ``label``.  ``grid``: the lattice parameters
    (``x0``, ``y0``, ``cell_size``, ``shape``) for the KDE contours.
    """

    name: str
    cells: gpd.GeoDataFrame
    patrol_areas: gpd.GeoDataFrame
    clusters: gpd.GeoDataFrame | None = None
    grid: dict | None = None
    note: str = ""


@dataclasses.dataclass
class MapView:
    """One map: a study area, its context layers and its crime selections."""

    slug: str
    title: str
    period_label: str
    study_area: gpd.GeoDataFrame
    selections: list[SelectionView]
    districts: gpd.GeoDataFrame | None = None
    town_centres: gpd.GeoDataFrame | None = None
    wards: gpd.GeoDataFrame | None = None
    default_selection: str | None = None
    source: str = "police.uk, OGL v3"
    notes: list[str] = dataclasses.field(default_factory=list)
    #: town centre × selection: ``town_centre_name, selection, count, change_h2_vs_h1_pct, hot_cells, patrol_areas``
    town_centre_summary: pd.DataFrame | None = None


#: patrol-area popup rows: column -> label (shown when the column is present)
POPUP_FIELDS = [
    ("district_name", "District"),
    ("main_location", "Main location"),
    ("ward_name", "Ward"),
    ("town_centre", "Town centre"),
    ("count", "Count (analysis period)"),
    ("trend", "Trend"),
    ("top_crime_types", "Top types (all recorded)"),
    ("harm_total", "Harm (CSS-weighted)"),
    ("area_km2", "Area (km²)"),
    ("pai", "Concentration (PAI)"),
    ("hour_of_week", "Busiest times"),
    ("patrol_area_id", "Id"),
]


def slugify(name: str) -> str:
    """File-name slug: ``"St Albans"`` -> ``"st-albans"``.

    >>> slugify("Welwyn Hatfield"), slugify("North Hertfordshire")
    ('welwyn-hatfield', 'north-hertfordshire')
    """
    s = re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-")
    return s or "area"


def _esc(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "–"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return str(value)


# --------------------------------------------------------------------------- geometry helpers
class _Display(NamedTuple):
    """Rows to draw and their display geometries (WGS84, simplified, on a 1e-6 degree grid)."""

    rows: pd.DataFrame
    geoms: np.ndarray

    def __len__(self) -> int:
        return len(self.geoms)


def _to_display(gdf: gpd.GeoDataFrame | None, tolerance_m: float) -> _Display:
    """Simplify in metres, project to WGS84, round to 6 decimal places (~0.1 m); empty results are dropped."""
    if gdf is None or len(gdf) == 0:
        return _Display(pd.DataFrame(), np.array([], dtype=object))
    geoms = np.asarray(gdf.geometry.values)
    if tolerance_m > 0:
        geoms = shapely.simplify(geoms, tolerance_m, preserve_topology=True)
    projected = gpd.GeoSeries(geoms, crs=gdf.crs if gdf.crs is not None else BNG).to_crs(WGS84)
    geoms = shapely.set_precision(np.asarray(projected.values), 1e-6)
    keep = ~shapely.is_empty(geoms)
    if keep.all():
        return _Display(gdf, geoms)
    return _Display(gdf.iloc[np.flatnonzero(keep)], geoms[keep])


def _round_coords(obj):
    if isinstance(obj, float):
        return round(obj, 6)
    if isinstance(obj, (list, tuple)):
        return [_round_coords(o) for o in obj]
    return obj


def _geojson_geometries(geoms: np.ndarray) -> list[dict]:
    """GeoJSON geometry dicts (``shapely.geometry.mapping`` with coordinates as rounded lists), all at once.

    Polygons and multipolygons (all the maps draw) go through numpy: their
    coordinates are already snapped to 1e-6 degrees by :func:`_to_display`,
    so rounding to 6 places changes nothing and ``np.round`` agrees with
    ``round``.  Anything else takes the general path.
    """
    out: list[dict | None] = [None] * len(geoms)
    type_id = shapely.get_type_id(geoms)
    polygonal = np.flatnonzero((type_id == 3) | (type_id == 6))
    if len(polygonal):
        parts, part_owner = shapely.get_parts(geoms[polygonal], return_index=True)
        rings, ring_owner = shapely.get_rings(parts, return_index=True)
        coords = np.round(shapely.get_coordinates(rings), 6).tolist()
        ends = np.cumsum(shapely.get_num_coordinates(rings)).tolist()
        ring_lists: list[list] = [[] for _ in range(len(parts))]
        start = 0
        for owner, end in zip(ring_owner.tolist(), ends):
            ring_lists[owner].append(coords[start:end])
            start = end
        part_lists: list[list] = [[] for _ in range(len(polygonal))]
        for owner, part in zip(part_owner.tolist(), ring_lists):
            part_lists[owner].append(part)
        for position, geom_index in enumerate(polygonal.tolist()):
            if type_id[geom_index] == 3:
                out[geom_index] = {"type": "Polygon", "coordinates": part_lists[position][0]}
            else:
                out[geom_index] = {"type": "MultiPolygon", "coordinates": part_lists[position]}
    for i in [i for i, g in enumerate(out) if g is None]:
        gj = shapely.geometry.mapping(geoms[i])
        out[i] = {"type": gj["type"], "coordinates": _round_coords(gj["coordinates"])}
    return out


def _feature_collection(display: _Display, props: list[dict]) -> dict:
    geometries = _geojson_geometries(display.geoms)
    features = [{"type": "Feature", "properties": p, "geometry": g} for g, p in zip(geometries, props)]
    return {"type": "FeatureCollection", "features": features}


def _lonlat(x: float, y: float) -> tuple[float, float]:
    return _lonlats([x], [y])[0]


def _lonlats(x: Sequence[float], y: Sequence[float]) -> list[tuple[float, float]]:
    """(lat, lon) of BNG points, rounded to 6 places, in one projection."""
    if len(x) == 0:
        return []
    pts = gpd.GeoSeries(gpd.points_from_xy(np.asarray(x, float), np.asarray(y, float)), crs=BNG).to_crs(WGS84)
    return [(round(lat, 6), round(lon, 6)) for lon, lat in zip(shapely.get_x(pts.values).tolist(),
                                                                shapely.get_y(pts.values).tolist())]


def _kde_bands(cells: pd.DataFrame, grid: dict | None, area_geom) -> gpd.GeoDataFrame:
    """Filled contours of the KDE rank field (display bands), clipped to the study area."""
    if grid is None or len(cells) == 0 or "kde_top_pct" not in cells or cells["kde_top_pct"].isna().all():
        return gpd.GeoDataFrame({"band": [], "geometry": []}, geometry="geometry", crs=BNG)
    import contourpy

    rows = cells["row"].to_numpy(int)
    cols = cells["col"].to_numpy(int)
    r0, c0 = rows.min(), cols.min()
    # one cell of padding so bands close inside the area
    arr = np.full((rows.max() - r0 + 3, cols.max() - c0 + 3), 100.0)
    arr[rows - r0 + 1, cols - c0 + 1] = cells["kde_top_pct"].fillna(100.0).to_numpy(float)
    s = float(grid["cell_size"])
    if grid.get("shape", "square") == "square" and {"x0", "y0"} <= set(grid):
        xs = grid["x0"] + (np.arange(arr.shape[1]) + c0 - 1 + 0.5) * s
        ys = grid["y0"] + (np.arange(arr.shape[0]) + r0 - 1 + 0.5) * s
    else:  # hexagons (or unknown lattice): approximate on cell centres
        xc = cells["x_centre"].to_numpy(float)
        yc = cells["y_centre"].to_numpy(float)
        xs = np.linspace(xc.min() - s, xc.max() + s, arr.shape[1])
        ys = np.linspace(yc.min() - s, yc.max() + s, arr.shape[0])
    gen = contourpy.contour_generator(xs, ys, arr, fill_type=contourpy.FillType.OuterOffset)
    out_geoms, out_band = [], []
    for top_pct, _, _ in KDE_BANDS:
        points, offsets = gen.filled(-1.0, top_pct)
        polys = []
        for pts, offs in zip(points, offsets):
            rings = [pts[offs[i]:offs[i + 1]] for i in range(len(offs) - 1)]
            rings = [r for r in rings if len(r) >= 4]
            if rings:
                polys.append(shapely.Polygon(rings[0], rings[1:]))
        if not polys:
            continue
        geom = shapely.make_valid(shapely.union_all(polys))
        if area_geom is not None:
            geom = shapely.intersection(geom, area_geom)
        if not geom.is_empty:
            out_geoms.append(geom)
            out_band.append(top_pct)
    return gpd.GeoDataFrame({"band": out_band, "geometry": out_geoms}, geometry="geometry", crs=BNG)


# --------------------------------------------------------------------------- HTML pieces
def _popup_html(row: dict) -> str:
    title = f"{_esc(row.get('rank', ''))}. {_esc(row.get('name', ''))}"
    lines = [f"<div class='hs-pop'><b>{title}</b><table>"]
    for col, label in POPUP_FIELDS:
        if col not in row:
            continue
        val = row[col]
        if val is None or (isinstance(val, float) and math.isnan(val)) or val == "":
            continue
        lines.append(f"<tr><th>{_esc(label)}</th><td>{_esc(_fmt(val))}</td></tr>")
    lines.append("</table></div>")
    return "".join(lines)


def _town_centre_html(name: str, summary: pd.DataFrame | None) -> str:
    """Pop-up of a town centre: one row per crime selection (hotspots inside it)."""
    if summary is None or len(summary) == 0:
        return ""
    rows = summary[summary["town_centre_name"] == name]
    if rows.empty:
        return ""
    out = [f"<div class='hs-pop'><b>{_esc(name)} town centre</b><table><tr><th>selection</th><th>count</th>"
           "<th>H2 vs H1</th><th>hot cells</th><th>district patrol areas</th></tr>"]
    for _, r in rows.iterrows():
        change = r.get("change_h2_vs_h1_pct", np.nan)
        change = f"{change:+.0f}%" if isinstance(change, (float, int)) and np.isfinite(change) else "–"
        out.append(f"<tr><td>{_esc(r['selection'])}</td><td>{_esc(_fmt(r['count']))}</td><td>{_esc(change)}</td>"
                   f"<td>{_esc(_fmt(r['hot_cells']))}</td><td>{_esc(r.get('patrol_areas', '') or '–')}</td></tr>")
    out.append("</table></div>")
    return "".join(out)


def _list_html(selection: SelectionView) -> str:
    pa = selection.patrol_areas
    head = f"<div class='hs-sel'>Showing: <b>{_esc(selection.name)}</b></div>"
    if pa is None or len(pa) == 0:
        note = selection.note or "no significant hot spots, so no patrol areas"
        return head + f"<div class='hs-none'>{_esc(note)}</div>"
    items = []
    for _, r in pa.sort_values("rank").iterrows():
        trend = f" · {_esc(r['trend'])}" if "trend" in r and isinstance(r["trend"], str) and r["trend"] else ""
        district = f" ({_esc(r['district_name'])})" if "district_name" in r and r.get("show_district", False) else ""
        items.append(f"<li><b>{_esc(r['name'])}</b>{district}: {_esc(_fmt(r['count']))}{trend}</li>")
    return head + "<ol class='hs-list'>" + "".join(items) + "</ol>"


_CSS = """
.hs-panel{background:rgba(255,255,255,.94);padding:6px 9px;border-radius:5px;box-shadow:0 1px 5px rgba(0,0,0,.4);
  font:12px/1.35 Arial,Helvetica,sans-serif;color:#111;max-width:360px}
.hs-panel h1{font-size:15px;margin:0 0 2px 0}.hs-panel .hs-sub{color:#444;margin-bottom:4px}
.hs-list{margin:3px 0 0 0;padding-left:22px;max-height:38vh;overflow-y:auto}
.hs-panel summary{cursor:pointer;font-weight:bold}.hs-panel details>summary h1{display:inline}.hs-list li{margin:1px 0}
.hs-legend .sw{display:inline-block;width:14px;height:11px;margin-right:5px;vertical-align:-1px;border:1px solid #777}
.hs-legend .row{white-space:nowrap}.hs-legend b{display:block;margin-top:3px}
.hs-pa-label div{background:#fff;border:2px solid #111;border-radius:50%;width:20px;height:20px;line-height:20px;
  text-align:center;font:bold 12px Arial,sans-serif;color:#111;box-shadow:0 0 3px #fff}
.hs-tc-label span,.hs-district-label span{display:block;text-align:center;white-space:nowrap;
  text-shadow:0 0 3px #fff,0 0 3px #fff,0 0 3px #fff}
.hs-tc-label{color:#1b7837;font:bold 11px Arial,sans-serif;cursor:pointer}
.hs-pop td,.hs-pop th{padding:1px 4px}
.hs-ward-label span{display:block;text-align:center;white-space:nowrap;color:#777;font:11px Arial,sans-serif;
  text-shadow:0 0 2px #fff,0 0 2px #fff}
.leaflet-control-layers{font:12px/1.4 Arial,Helvetica,sans-serif}
.hs-district-label{color:#333;font:bold 13px Arial,sans-serif}
.hs-pop table{border-collapse:collapse}.hs-pop th{text-align:left;padding-right:8px;color:#444;font-weight:normal;
  vertical-align:top}.hs-pop td{max-width:260px}
.hs-hide-pa .hs-pa,.hs-hide-pa .hs-pa-label{display:none}.hs-hide-gi .hs-gi{display:none}
.hs-hide-kde .hs-kde{display:none}.hs-hide-cluster .hs-cluster{display:none}
.leaflet-container{background:#f4f3ef}
"""


def _legend_html(view: MapView) -> str:
    rows = ["<b>Patrol areas</b>",
            f"<div class='row'><span class='sw' style='background:none;border:2px solid {PATROL_COLOUR}'></span>"
            "numbered, merged significant hot cells</div>", "<b>Gi* hot/cold spots (FDR-corrected)</b>"]
    for cls, colour in GI_COLOURS.items():
        rows.append(f"<div class='row'><span class='sw' style='background:{colour}'></span>{_esc(GI_LABELS[cls])}</div>")
    rows.append("<b>KDE heat (quartic)</b>")
    for _, colour, label in KDE_BANDS:
        rows.append(f"<div class='row'><span class='sw' style='background:{colour};opacity:.7'></span>{_esc(label)}</div>")
    rows.append(f"<b>Other</b><div class='row'><span class='sw' style='background:{CLUSTER_COLOUR};opacity:.6'></span>"
                "cluster of crime locations (DBSCAN)</div>")
    rows.append(f"<div class='row'><span class='sw' style='background:none;border:2px dashed {TOWN_CENTRE_COLOUR}'></span>"
                "town centre</div>")
    rows.append(f"<div class='row'><span class='sw' style='background:none;border:1px solid {WARD_COLOUR}'></span>ward</div>")
    return "<div class='hs-legend'>" + "".join(rows) + "</div>"


def _gi_cell_properties(cells: gpd.GeoDataFrame, selection: str) -> list[dict]:
    """GeoJSON properties of the significant Gi* cells: class and tooltip."""
    n = len(cells)
    classes = [str(c) for c in cells["gi_class"].tolist()]
    counts = cells["count"].tolist() if "count" in cells else [np.nan] * n
    z = cells["gi_z"].tolist() if "gi_z" in cells else [np.nan] * n
    q = cells["gi_q"].tolist() if "gi_q" in cells else [np.nan] * n
    name = _esc(selection)
    return [{"c": c, "tip": f"{_esc(GI_LABELS[c])}<br>{name}: {_esc(_fmt(k))} in the period"
                           f"<br>Gi* z = {_esc(_fmt(float(zi)))}, FDR q = {_esc(format(float(qi), '.2g'))}"}
            for c, k, zi, qi in zip(classes, counts, z, q)]


def preload() -> None:
    """Import what drawing a map needs (folium, matplotlib) and read Leaflet's files, once, here.

    The maps are drawn in forked worker processes: what this process has
    loaded they inherit instead of each loading it again (about 0.8 s each).
    The pipeline calls this while the analysis runs in other processes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401

    leaflet_assets()
    _folium_classes()


@functools.lru_cache(maxsize=1)
def _folium_classes() -> types.SimpleNamespace:
    """folium's GeoJson, FeatureGroup, Marker and DivIcon, each script rendered once.

    branca's ``MacroElement.render`` wraps every rendered script in
    ``Element(text)``, which compiles the text as a Jinja template a second
    time: for a layer that is megabytes of GeoJSON, and for a run's ~1,000
    label markers, that second compile was a third of the time spent on the
    maps.  These subclasses (and their ``.addTo`` and ``setIcon`` scripts)
    add the text as the second pass gives it back for text without template
    syntax: the same, newlines normalised and one trailing newline dropped
    (and a name holding "{{" is now shown as it is, not read as a template).
    """
    import folium
    from branca.element import Element, MacroElement
    from folium.elements import ElementAddToElement

    class _Text(Element):
        def __init__(self, text: str):
            super().__init__()
            lines = re.split(r"\r\n|\r|\n", str(text))
            if lines[-1] == "":
                del lines[-1]
            self._text = "\n".join(lines)

        def render(self, **kwargs) -> str:
            return self._text

    class _RenderedOnce(MacroElement):
        def render(self, **kwargs):
            figure = self.get_root()
            module = self._template.module
            for part in ("header", "html", "script"):
                macro = module.__dict__.get(part)
                if macro is not None:
                    getattr(figure, part).add_child(_Text(macro(self, kwargs)), name=self.get_name())
            for element in self._children.values():
                element.render(**kwargs)

    class AddTo(ElementAddToElement, _RenderedOnce):
        pass

    class _LayerRenderedOnce:
        """folium's Layer adds its ``.addTo(parent)`` script as an ElementAddToElement: add ours instead."""

        def render(self, **kwargs):
            if not self.show:
                return super().render(**kwargs)
            self.add_child(AddTo(element_name=self.get_name(), element_parent_name=self._parent.get_name()),
                           name=self.get_name() + "_add")
            self.show = False  # only Layer.render reads it: it adds nothing more
            try:
                return super().render(**kwargs)
            finally:
                self.show = True

    class GeoJson(_LayerRenderedOnce, folium.GeoJson, _RenderedOnce):
        pass

    class FeatureGroup(_LayerRenderedOnce, folium.FeatureGroup, _RenderedOnce):
        pass

    class DivIcon(folium.DivIcon, _RenderedOnce):
        pass

    class Marker(folium.Marker, _RenderedOnce):
        class SetIcon(folium.Marker.SetIcon, _RenderedOnce):
            pass

    return types.SimpleNamespace(GeoJson=GeoJson, FeatureGroup=FeatureGroup, DivIcon=DivIcon, Marker=Marker)


# --------------------------------------------------------------------------- the map
def hotspot_map(view: MapView):
    """Build the folium map for one study area (no network needed to open it).

    Layers: one radio button per crime selection (its patrol areas, Gi*
    cells, KDE bands and clusters), and check boxes for the layer kinds,
    district/town-centre/ward outlines and an optional OpenStreetMap
    background (needs internet; off by default).
    """
    import folium
    from branca.element import Element, MacroElement
    from jinja2 import Template

    assets = leaflet_assets()
    fast = _folium_classes()
    area = view.study_area.to_crs(BNG)
    minx, miny, maxx, maxy = area.total_bounds
    sw, ne = _lonlat(minx, miny), _lonlat(maxx, maxy)
    m = folium.Map(location=[(sw[0] + ne[0]) / 2, (sw[1] + ne[1]) / 2], zoom_start=12, tiles=None,
                   control_scale=True, zoom_control=True)
    # offline: no CDN assets at all; Leaflet inlined
    m.default_js = []
    m.default_css = []
    root = m.get_root()
    root.header.add_child(Element(f"<style>{assets.css}</style>"), name="leaflet_css_inline")
    root.header.add_child(Element(f"<script>{assets.js}</script>"), name="leaflet_js_inline")
    root.header.add_child(Element(f"<style>{_CSS}</style>"), name="hotspots_css")
    root.header.add_child(Element(f"<title>{_esc(view.title)}</title>"), name="hotspots_title")

    panes = {"hs_kde": 405, "hs_gi": 410, "hs_bounds": 420, "hs_cluster": 430, "hs_patrol": 440}
    for name, z in panes.items():
        folium.map.CustomPane(name, z_index=z, pointer_events=True).add_to(m)

    # context layers -----------------------------------------------------------------
    context: list[tuple[str, Any, bool]] = []
    popups: list[tuple[str, str]] = []  # (marker variable, escaped HTML) bound in the page script
    bind_tip = folium.JsCode("function(f, layer){ if (f.properties.tip) { layer.bindTooltip(f.properties.tip, "
                             "{sticky: true}); } }")
    if view.wards is not None and len(view.wards):
        w = _to_display(view.wards, SIMPLIFY_BOUNDARY_M)
        fc = _feature_collection(w, [{"tip": f"Ward: {_esc(n)}"} for n in w.rows["area_name"]])
        fg = fast.FeatureGroup(name="Ward outlines", show=True)
        fast.GeoJson(fc, style_function=lambda f: {"color": WARD_COLOUR, "weight": 0.8, "fill": False,
                                                   "className": "hs-ward"},
                     on_each_feature=bind_tip, pane="hs_bounds").add_to(fg)
        if len(w) <= 80:  # names help orientation without a background map (district maps)
            reps = view.wards.to_crs(BNG).geometry.representative_point()
            for name, (lat, lon) in zip(view.wards["area_name"], _lonlats(reps.x, reps.y)):
                fast.Marker([lat, lon], icon=fast.DivIcon(html=f"<span>{_esc(name)}</span>", class_name="hs-ward-label",
                                                          icon_size=(120, 14), icon_anchor=(60, 7)),
                            interactive=False, keyboard=False).add_to(fg)
        fg.add_to(m)
        context.append(("Ward outlines", fg, True))
    if view.districts is not None and len(view.districts):
        d = _to_display(view.districts, SIMPLIFY_BOUNDARY_M)
        fc = _feature_collection(d, [{"tip": f"District: {_esc(n)}"} for n in d.rows["area_name"]])
        fg = fast.FeatureGroup(name="District boundaries", show=True)
        fast.GeoJson(fc, style_function=lambda f: {"color": DISTRICT_COLOUR, "weight": 2.2, "fill": False},
                     on_each_feature=bind_tip, pane="hs_bounds").add_to(fg)
        if len(d) > 1:
            reps = view.districts.to_crs(BNG).geometry.representative_point()
            for name, (lat, lon) in zip(view.districts["area_name"], _lonlats(reps.x, reps.y)):
                fast.Marker([lat, lon], icon=fast.DivIcon(html=f"<span>{_esc(name)}</span>", class_name="hs-district-label",
                                                          icon_size=(140, 18), icon_anchor=(70, 9)),
                            interactive=False, keyboard=False).add_to(fg)
        fg.add_to(m)
        context.append(("District boundaries", fg, True))
    if view.town_centres is not None and len(view.town_centres):
        t = _to_display(view.town_centres, SIMPLIFY_AREA_M)
        props = [{"tip": f"Town centre: {_esc(n)}"} for n in t.rows["area_name"]]
        fg = fast.FeatureGroup(name="Town centres", show=True)
        fast.GeoJson(_feature_collection(t, props),
                     style_function=lambda f: {"color": TOWN_CENTRE_COLOUR, "weight": 2, "dashArray": "6 4",
                                               "fill": False},
                     on_each_feature=bind_tip, pane="hs_bounds").add_to(fg)
        # names just above the northern edge, clear of the patrol-area numbers inside
        tc_geoms = np.asarray(view.town_centres.to_crs(BNG).geometry.values)
        tops = _lonlats(shapely.get_x(shapely.centroid(tc_geoms)), shapely.bounds(tc_geoms)[:, 3])
        for name, (lat, lon) in zip(view.town_centres["area_name"], tops):
            summary = _town_centre_html(name, view.town_centre_summary)
            marker = fast.Marker([lat, lon], icon=fast.DivIcon(html=f"<span>{_esc(name)}</span>", class_name="hs-tc-label",
                                                               icon_size=(160, 16), icon_anchor=(80, 17)),
                                 interactive=bool(summary), keyboard=False)
            marker.add_to(fg)
            if summary:
                popups.append((marker.get_name(), summary))
        fg.add_to(m)
        context.append(("Town centres", fg, True))
    # the study area outline always on top of the context
    a = _to_display(view.study_area, SIMPLIFY_BOUNDARY_M)
    fast.GeoJson(_feature_collection(a, [{} for _ in range(len(a))]),
                 style_function=lambda f: {"color": DISTRICT_COLOUR, "weight": 3, "fill": False},
                 pane="hs_bounds", interactive=False).add_to(m)

    # selections ------------------------------------------------------------------------
    default = view.default_selection or (view.selections[0].name if view.selections else None)
    bases: list[tuple[str, Any]] = []
    lists: dict[str, str] = {}
    bind_popup = folium.JsCode("function(f, layer){ if (f.properties.popup) { layer.bindPopup(f.properties.popup, "
                               "{maxWidth: 380}); } if (f.properties.tip) { layer.bindTooltip(f.properties.tip); } }")
    area_geom = shapely.union_all(area.geometry.values)
    for sel in view.selections:
        fg = fast.FeatureGroup(name=sel.name, overlay=False, show=(sel.name == default))
        cells = sel.cells
        # KDE bands
        bands = _kde_bands(cells, sel.grid, area_geom)
        if len(bands):
            b = _to_display(bands, SIMPLIFY_AREA_M)
            colours = {k: c for k, c, _ in KDE_BANDS}
            labels = {k: lab for k, _, lab in KDE_BANDS}
            props = [{"fill": colours[k], "tip": f"KDE ({_esc(sel.name)}): {_esc(labels[k])}"} for k in b.rows["band"]]
            fast.GeoJson(_feature_collection(b, props),
                         style_function=lambda f: {"color": f["properties"]["fill"], "weight": 0, "fillOpacity": 0.55,
                                                   "fillColor": f["properties"]["fill"], "className": "hs-kde"},
                         on_each_feature=bind_popup, pane="hs_kde").add_to(fg)
        # Gi* significant cells only
        if len(cells) and "gi_class" in cells:
            shown = [c for c in ("gi_class", "count", "gi_z", "gi_q") if c in cells] + [cells.geometry.name]
            sig = cells.loc[cells["gi_class"].astype(str).isin(list(GI_COLOURS)).to_numpy(), shown]
            if len(sig):
                s = _to_display(sig, 0.0)
                props = _gi_cell_properties(s.rows, sel.name)
                fast.GeoJson(_feature_collection(s, props),
                             style_function=lambda f: {"color": GI_COLOURS[f["properties"]["c"]], "weight": 0.5,
                                                       "fillColor": GI_COLOURS[f["properties"]["c"]], "fillOpacity": 0.6,
                                                       "className": "hs-gi"},
                             on_each_feature=bind_popup, pane="hs_gi").add_to(fg)
        # clusters
        if sel.clusters is not None and len(sel.clusters):
            c = _to_display(sel.clusters, SIMPLIFY_CLUSTER_M)
            props = [{"tip": f"Cluster ({_esc(sel.name)}): {_esc(_fmt(r.get('count')))} crimes at "
                             f"{_esc(_fmt(r.get('n_locations')))} locations<br>{_esc(r.get('label', ''))}"}
                     for r in c.rows.drop(columns=c.rows.geometry.name).to_dict("records")]
            fast.GeoJson(_feature_collection(c, props),
                         style_function=lambda f: {"color": CLUSTER_COLOUR, "weight": 1.5, "fillColor": CLUSTER_COLOUR,
                                                   "fillOpacity": 0.35, "className": "hs-cluster"},
                         on_each_feature=bind_popup, pane="hs_cluster").add_to(fg)
        # patrol areas with numbered labels
        pa = sel.patrol_areas
        if pa is not None and len(pa):
            p = _to_display(pa, SIMPLIFY_AREA_M)
            props = [{"popup": _popup_html(r), "tip": f"{_esc(r['rank'])}. {_esc(r['name'])}"}
                     for r in p.rows.drop(columns=p.rows.geometry.name).to_dict("records")]
            fast.GeoJson(_feature_collection(p, props),
                         style_function=lambda f: {"color": PATROL_COLOUR, "weight": 3, "fillColor": "#ffffff",
                                                   "fillOpacity": 0.08, "className": "hs-pa"},
                         on_each_feature=bind_popup, pane="hs_patrol").add_to(fg)
            reps = pa.to_crs(BNG).geometry.representative_point()
            for rank, (lat, lon) in zip(pa["rank"].tolist(), _lonlats(reps.x, reps.y)):
                fast.Marker([lat, lon], icon=fast.DivIcon(html=f"<div>{_esc(int(rank))}</div>",
                                                          class_name="hs-pa-label", icon_size=(24, 24), icon_anchor=(12, 12)),
                            interactive=False, keyboard=False).add_to(fg)
        fg.add_to(m)
        # Leaflet's layer control inserts layer names as HTML: escape them
        bases.append((_esc(sel.name), fg))
        lists[_esc(sel.name)] = _list_html(sel)

    # OpenStreetMap background: optional, off by default, needs internet
    osm = folium.TileLayer(tiles=OSM_TILES, attr=OSM_ATTRIBUTION, name="OpenStreetMap background (needs internet)",
                           overlay=True, show=False, max_zoom=19)
    osm.add_to(m)

    title = _esc(view.title)
    sub = f"{_esc(view.period_label)} · data: {_esc(view.source)}"
    notes = "".join(f"<div class='hs-sub'>{_esc(n)}</div>" for n in view.notes)
    controls = MacroElement()
    controls._template = Template(
        """
        {% macro script(this, kwargs) %}
        (function(){
          var map = {{ this.map }};
          var lists = {{ this.lists|tojson }};
          var bases = {};
          {% for name, var in this.bases %}bases[{{ name|tojson }}] = {{ var }};
          {% endfor %}
          var kinds = {};
          {% for label, key, on in this.kinds %}
          kinds[{{ label|tojson }}] = L.layerGroup(); kinds[{{ label|tojson }}].hsKey = {{ key|tojson }};
          {% if on %}kinds[{{ label|tojson }}].addTo(map);{% else %}map.getContainer().classList.add('hs-hide-' + {{ key|tojson }});{% endif %}
          {% endfor %}
          var overlays = {};
          for (var k in kinds) { overlays[k] = kinds[k]; }
          {% for name, var in this.context %}overlays[{{ name|tojson }}] = {{ var }};
          {% endfor %}
          overlays[{{ this.osm_name|tojson }}] = {{ this.osm }};
          L.control.layers(bases, overlays, {collapsed: false, position: 'topright'}).addTo(map);
          map.on('overlayadd', function(e){ if (e.layer.hsKey) map.getContainer().classList.remove('hs-hide-' + e.layer.hsKey); });
          map.on('overlayremove', function(e){ if (e.layer.hsKey) map.getContainer().classList.add('hs-hide-' + e.layer.hsKey); });
          var info = L.control({position: 'topleft'});
          info.onAdd = function(){ var d = L.DomUtil.create('div', 'hs-panel hs-info');
            d.innerHTML = '<details open><summary>' + {{ this.title|tojson }} + '</summary>' + {{ this.header|tojson }}
              + '<div id="hs-list"></div></details>';
            L.DomEvent.disableClickPropagation(d); L.DomEvent.disableScrollPropagation(d); return d; };
          info.addTo(map);
          function showList(name){ var el = document.getElementById('hs-list'); if (el) el.innerHTML = lists[name] || ''; }
          showList({{ this.default|tojson }});
          {% for var, html in this.popups %}{{ var }}.bindPopup({{ html|tojson }}, {maxWidth: 420});
          {% endfor %}
          map.on('baselayerchange', function(e){ showList(e.name); });
          var legend = L.control({position: 'bottomright'});
          legend.onAdd = function(){ var d = L.DomUtil.create('div', 'hs-panel');
            d.innerHTML = '<details' + (window.innerWidth > 900 ? ' open' : '') + '><summary>Legend</summary>'
              + {{ this.legend|tojson }} + '</details>';
            L.DomEvent.disableClickPropagation(d); L.DomEvent.disableScrollPropagation(d); return d; };
          legend.addTo(map);
          // keep the study area clear of the panels on a laptop screen
          var wide = window.innerWidth > 1000;
          map.fitBounds({{ this.bounds|tojson }}, wide ? {paddingTopLeft: [Math.min(380, window.innerWidth * 0.3), 10],
                                                          paddingBottomRight: [250, 10]} : {});
        })();
        {% endmacro %}
        """
    )
    controls.map = m.get_name()
    controls.lists = lists
    controls.popups = popups
    controls.bases = [(n, fg.get_name()) for n, fg in bases]
    controls.kinds = [("Patrol areas (numbered)", "pa", True), ("Gi* hot/cold cells", "gi", True),
                      ("KDE heat", "kde", False), ("Clusters (DBSCAN)", "cluster", False)]
    controls.context = [(_esc(n), fg.get_name()) for n, fg, _ in context]
    controls.osm_name = "OpenStreetMap background (needs internet)"
    controls.osm = osm.get_name()
    controls.default = _esc(default or "")
    controls.title = f"<h1>{title}</h1>"
    controls.header = f"<div class='hs-sub'>{sub}</div>{notes}"
    controls.legend = _legend_html(view)
    controls.bounds = [[sw[0], sw[1]], [ne[0], ne[1]]]
    m.add_child(controls)
    return m


def render_html(view: MapView) -> str:
    """The complete, self-contained HTML of :func:`hotspot_map`."""
    return hotspot_map(view).get_root().render()


# --------------------------------------------------------------------------- static PNG
# GeoSeries.plot redraws the whole figure after each call (canvas.draw_idle): with a dozen layers that was
# most of a PNG's time.  These add the collections geopandas builds (normalised geometries, one compound path
# per polygon, one line per part) and the figure is drawn once, by savefig.
def _add_polygons(ax, geoms: np.ndarray, **style) -> None:
    """(Multi)polygons as one collection of paths: a compound path (exteriors and holes) per geometry.

    The paths are those of geopandas' PatchCollection of PathPatches, without building a patch per polygon.
    """
    from matplotlib.collections import PathCollection
    from matplotlib.path import Path

    geoms = shapely.normalize(geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))])
    if len(geoms) == 0:
        return
    paths = []
    for geom in geoms:
        rings = []
        for part in shapely.get_parts(geom):
            rings.append(Path(np.asarray(part.exterior.coords)[:, :2], closed=True))
            rings.extend(Path(np.asarray(ring.coords)[:, :2], closed=True) for ring in part.interiors)
        paths.append(Path.make_compound_path(*rings))
    ax.add_collection(PathCollection(paths, **style), autolim=True)


def _add_lines(ax, geoms: np.ndarray, **style) -> None:
    """(Multi)line strings as one LineCollection, a line per part."""
    from matplotlib.collections import LineCollection

    geoms = shapely.normalize(geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))])
    if len(geoms) == 0:
        return
    parts = shapely.get_parts(geoms)
    ax.add_collection(LineCollection([np.asarray(p.coords)[:, :2] for p in parts], **style), autolim=True)


def _wrap_once(text, renderer) -> None:
    """Replace ``wrap=True`` by the lines it would draw, measured once.

    matplotlib wraps a line by measuring it word by word, and it re-wraps on
    every layout.  A line that fits is kept whole by its rule (each shorter
    prefix fits too), so only lines too wide go through it.
    """
    text._renderer = renderer
    width = text._get_wrap_line_width()
    whole = text.get_text()
    lines = []
    for line in whole.split("\n"):
        if " " in line and text._get_rendered_text_width(line) > width:
            text.set_text(line)
            lines.append(text._get_wrapped_text())
        else:
            lines.append(line)
    text.set_text("\n".join(lines))
    text.set_wrap(False)


def static_map_png(view: MapView, selection: str | None = None, *, dpi: int = 130) -> bytes:
    """A printable PNG of one selection: hot cells, patrol areas, outlines, the ranked list."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.lines import Line2D

    name = selection or view.default_selection or (view.selections[0].name if view.selections else "")
    sel = next((s for s in view.selections if s.name == name), None)
    area = view.study_area.to_crs(BNG)
    fig = plt.figure(figsize=(11.69, 8.27), dpi=dpi)  # A4 landscape
    ax = fig.add_axes([0.01, 0.04, 0.64, 0.86])
    side = fig.add_axes([0.66, 0.04, 0.33, 0.86])
    side.axis("off")
    if view.wards is not None and len(view.wards):
        _add_lines(ax, shapely.boundary(np.asarray(view.wards.to_crs(BNG).geometry.values)), color=WARD_COLOUR,
                   linewidth=0.4, zorder=1)
    if view.districts is not None and len(view.districts):
        _add_lines(ax, shapely.boundary(np.asarray(view.districts.to_crs(BNG).geometry.values)), color=DISTRICT_COLOUR,
                   linewidth=1.0, zorder=4)
        if len(view.districts) > 1:
            for nm, pt in zip(view.districts["area_name"], view.districts.geometry.representative_point()):
                ax.annotate(str(nm), (pt.x, pt.y), ha="center", fontsize=7, color="#333", zorder=8,
                            bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.6})
    if sel is not None and len(sel.cells) and "gi_class" in sel.cells:
        cls = sel.cells["gi_class"].astype(str).to_numpy()
        cell_geoms = np.asarray(sel.cells.geometry.values)
        for key, colour in GI_COLOURS.items():
            _add_polygons(ax, cell_geoms[cls == key], facecolor=colour, linewidth=0, zorder=2)
    if view.town_centres is not None and len(view.town_centres):
        tc = view.town_centres.to_crs(BNG)
        _add_lines(ax, shapely.boundary(np.asarray(tc.geometry.values)), color=TOWN_CENTRE_COLOUR, linewidth=1.0,
                   linestyle="--", zorder=5)
    _add_lines(ax, shapely.boundary(np.asarray(area.geometry.values)), color=DISTRICT_COLOUR, linewidth=1.8, zorder=6)
    minx, miny, maxx, maxy = area.total_bounds
    pad = 0.03 * max(maxx - minx, maxy - miny)
    ax.set_xlim(minx - pad, maxx + pad)
    ax.set_ylim(miny - pad, maxy + pad)
    if view.town_centres is not None and len(view.town_centres):
        for nm, geom in zip(tc["area_name"], tc.geometry):
            c = geom.centroid
            if minx <= c.x <= maxx and miny <= c.y <= maxy:
                ax.annotate(str(nm), (c.x, geom.bounds[3]), ha="center", va="bottom", fontsize=7, color=TOWN_CENTRE_COLOUR,
                            zorder=8, bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7})
    pa = sel.patrol_areas if sel is not None else None
    lines = []
    if pa is not None and len(pa):
        pa = pa.to_crs(BNG).sort_values("rank")
        _add_lines(ax, shapely.boundary(np.asarray(pa.geometry.values)), color=PATROL_COLOUR, linewidth=1.8, zorder=7)
        for (_, r), pt in zip(pa.iterrows(), pa.geometry.representative_point()):
            ax.annotate(str(int(r["rank"])), (pt.x, pt.y), ha="center", va="center", fontsize=8, fontweight="bold",
                        zorder=9, bbox={"boxstyle": "circle,pad=0.2", "fc": "white", "ec": PATROL_COLOUR, "lw": 1.2})
            trend = f", {r['trend']}" if "trend" in r and isinstance(r["trend"], str) and r["trend"] else ""
            district = f" [{r['district_name']}]" if r.get("show_district", False) else ""
            lines.append(f"{int(r['rank'])}. {r['name']}{district}\n     {_fmt(r['count'])} in the period{trend}")
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    # scale bar
    span = maxx - minx
    bar = 10 ** math.floor(math.log10(span / 4))
    bar = bar * (5 if span / 4 / bar >= 5 else 2 if span / 4 / bar >= 2 else 1)
    x0, y0 = minx, miny - pad * 0.6
    ax.plot([x0, x0 + bar], [y0, y0], color="black", lw=3, zorder=9, solid_capstyle="butt")
    ax.annotate(f"{bar / 1000:g} km" if bar >= 1000 else f"{bar:g} m", (x0 + bar / 2, y0), xytext=(0, 4),
                textcoords="offset points", ha="center", fontsize=7)
    ax.annotate("N ↑", (0.97, 0.97), xycoords="axes fraction", ha="right", va="top", fontsize=9, fontweight="bold")
    fig.text(0.01, 0.965, view.title, fontsize=14, fontweight="bold", va="top")
    fig.text(0.01, 0.925, f"{name} · {view.period_label} · data: {view.source} · contains OS data © Crown copyright",
             fontsize=8.5, va="top", color="#333")
    handles = [Patch(facecolor=GI_COLOURS[k], label=GI_LABELS[k]) for k in GI_COLOURS]
    handles += [Line2D([], [], color=PATROL_COLOUR, lw=1.8, label="patrol area (numbered)"),
                Line2D([], [], color=TOWN_CENTRE_COLOUR, lw=1.0, ls="--", label="town centre"),
                Line2D([], [], color=WARD_COLOUR, lw=0.6, label="ward")]
    side.legend(handles=handles, loc="lower left", fontsize=7.5, frameon=False, title="Gi* (FDR-corrected)",
                title_fontsize=8)
    if len(lines) > PNG_MAX_LISTED:  # keep the list clear of the legend
        lines = lines[:PNG_MAX_LISTED] + [f"… and {len(lines) - PNG_MAX_LISTED} more (see patrol_areas.csv)"]
    text = "Patrol areas (ranked)\n\n" + ("\n".join(lines) if lines else (sel.note if sel is not None and sel.note
                                                                          else "No significant hot spots."))
    listing = side.text(0.0, 1.0, text, va="top", ha="left", fontsize=8, family="DejaVu Sans", wrap=True)
    _wrap_once(listing, fig.canvas.get_renderer())
    buf = io.BytesIO()
    # zlib level 3: the same pixels as the default (6), in less time and fewer bytes
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 3})
    plt.close(fig)
    return buf.getvalue()


# --------------------------------------------------------------------------- writing
def write_maps(out, views: Sequence[MapView], *, png: bool = True, progress=None,
               alongside: Callable[[], Any] | None = None) -> list[dict]:
    """Write ``maps/<slug>.html`` (and ``maps/<slug>.png``) for each view through an OutputDir.

    The maps are drawn in parallel worker processes where there are several
    CPUs (:func:`hotspots._parallel.process_map`); they are written here, in order.
    ``alongside`` is called in this process while the workers draw.
    """
    from hotspots._parallel import process_map

    leaflet_assets()  # read once, before the workers start

    def render(view: MapView) -> tuple[str, bytes | None]:
        return render_html(view), (static_map_png(view) if png else None)

    weights = [sum(len(s.cells) + 200 * len(s.patrol_areas if s.patrol_areas is not None else ())
                   for s in view.selections) for view in views]
    written = []
    for view, (page, image) in zip(views, process_map(render, views, weights=weights, alongside=alongside)):
        path = out.write_text(page, f"maps/{view.slug}.html")
        row = {"slug": view.slug, "html": f"maps/{view.slug}.html", "html_bytes": len(page.encode("utf-8"))}
        if image is not None:
            out.write_bytes(image, f"maps/{view.slug}.png")
            row["png"] = f"maps/{view.slug}.png"
        written.append(row)
        if progress is not None:
            progress.info(f"  map {path.name}: {row['html_bytes'] / 1e6:.2f} MB")
    return written


# --------------------------------------------------------------------------- map views
def build_map_views(ctx, inputs, cfg, county, district_results,
                    tables: dict[str, pd.DataFrame]) -> list:
    """Map views of the hotspots stage's results: one per district and one for the county."""
    from hotspots.detect._stage import MAP_MAX_CLUSTERS, slug

    geo = ctx.geography
    period = f"{ctx.periods.current.label}"
    patrol = tables["patrol_areas"]
    default = cfg.map_selection or next(iter(inputs.selections))
    ts_note = ("Hour-of-week profiles are in each patrol area's pop-up." if "datetime" in inputs.points.columns else
               "police.uk gives the month only: no times of day, so no hour-of-week profile.")
    views = []

    def view_for(res, title: str, slug_name: str, districts, wards, show_district: bool, patrol_sub):
        sels = []
        for sel, sres in res.selections.items():
            pa = patrol_sub[patrol_sub["selection"] == sel].copy() if len(patrol_sub) else patrol_sub
            if show_district and len(pa):
                pa["show_district"] = True
                # county view: rank within the county by the ranking value
                key = "harm_total" if cfg.rank_by == "harm" and sel != "ASB" else "count"
                pa = pa.sort_values(key, ascending=False).reset_index(drop=True)
                pa["rank"] = np.arange(1, len(pa) + 1)
            shapes = sres.cluster_shapes
            if len(shapes) > MAP_MAX_CLUSTERS:  # display only: the largest clusters (all are in clusters.csv)
                shapes = shapes.sort_values("count", ascending=False).head(MAP_MAX_CLUSTERS)
            sels.append(SelectionView(name=sel, cells=sres.cells, patrol_areas=pa, clusters=shapes,
                                              grid=res.grid.attrs.get("grid"), note=sres.note))
        study = gpd.GeoDataFrame({"area_name": [res.area.name]}, geometry=[res.area.geometry], crs=BNG)
        notes = [f"Grid {res.area.cell_size:,.0f} m cells; Gi* with FDR (Benjamini-Hochberg) across the area. "
                 f"Patrol areas: merged hot cells at ≥{cfg.patrol_confidence}% confidence, top {cfg.top_n} per district "
                 f"by {cfg.rank_by}.", ts_note]
        return MapView(slug=slug_name, title=title, period_label=period, study_area=study, selections=sels,
                               districts=districts, town_centres=_clip(geo.town_centres, res.area.geometry),
                               town_centre_summary=_tc_summary(tables["town_centres"]),
                               wards=wards, default_selection=default, notes=notes)

    county_title = f"{county.area.name}: crime hotspots and patrol areas"
    views.append(view_for(county, county_title, "county", geo.districts, None, True, patrol))
    for res in district_results:
        wards = geo.wards[geo.wards["district_code"] == res.area.code]
        sub = patrol[patrol["district_code"] == res.area.code] if len(patrol) else patrol
        d = geo.districts[geo.districts["area_code"] == res.area.code]
        views.append(view_for(res, f"{res.area.name}: crime hotspots and patrol areas", slug(res.area.name), d, wards,
                              False, sub))
    return views


def _tc_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Town-centre rows for the map pop-ups, with patrol areas shown by their rank (ids are long)."""
    out = table.copy()
    out["patrol_areas"] = out["patrol_areas"].fillna("").str.replace(r"(#\d+) [^;]+", r"\1", regex=True)
    return out


def _clip(gdf: gpd.GeoDataFrame, geom) -> gpd.GeoDataFrame:
    if gdf is None or len(gdf) == 0:
        return gdf
    return gdf[gdf.geometry.intersects(geom)]
