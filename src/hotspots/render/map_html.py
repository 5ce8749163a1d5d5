"""The interactive hotspot map: a self-contained, offline HTML page (folium/Leaflet) of a :class:`MapView`."""

from __future__ import annotations

import functools
import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from hotspots.render._leaflet import _folium_classes, leaflet_assets, rendered_once
from hotspots.render._map_geometry import (
    _bng,
    _column,
    _display_of,
    _geometries,
    _kde_bands,
    _lonlat,
    _lonlats,
    _records,
    _to_display,
)
from hotspots.render.map_views import (
    CLUSTER_COLOUR,
    DISTRICT_COLOUR,
    GI_COLOURS,
    GI_LABELS,
    KDE_BANDS,
    MAP_BACKGROUND,
    MAP_POINT_COLOUR,
    OSM_ATTRIBUTION,
    OSM_TILES,
    PATROL_COLOUR,
    POPUP_FIELDS,
    POPUP_TECHNICAL,
    ROAD_COLOUR,
    STREET_LABEL_COLOUR,
    SIMPLIFY_AREA_M,
    SIMPLIFY_BOUNDARY_M,
    SIMPLIFY_CLUSTER_M,
    TOWN_CENTRE_COLOUR,
    WARD_COLOUR,
    WARD_LABEL_COLOUR,
    MapView,
    SelectionView,
    _esc,
    _fmt,
)
from hotspots.schema import BNG

__all__ = ["folium_map", "render_html"]


def _popup_rows(row: dict, fields) -> list[str]:
    lines = []
    for col, label in fields:
        if col not in row:
            continue
        val = row[col]
        if val is None or (isinstance(val, float) and math.isnan(val)) or val == "":
            continue
        text = f"{val:.1f}×" if col == "pai" and isinstance(val, (float, int)) and label.startswith("Crime per") else _fmt(val)
        lines.append(f"<tr><th>{_esc(label)}</th><td>{_esc(text)}</td></tr>")
    return lines


#: the patrol-area columns the pop-ups read (:func:`_popup_html`) and those the ranked list reads (:func:`_list_html`)
_POPUP_COLUMNS = ("rank", "name", *(c for c, _ in POPUP_FIELDS), *(c for c, _ in POPUP_TECHNICAL))
_LISTED = ("rank", "name", "count", "trend", "district_name", "show_district")


def _popup_html(row: dict) -> str:
    """A patrol area's pop-up: plain words first, the technical terms one click away."""
    title = f"{_esc(row.get('rank', ''))}. {_esc(row.get('name', ''))}"
    lines = [f"<div class='hs-pop'><b>{title}</b><table>", *_popup_rows(row, POPUP_FIELDS), "</table>"]
    technical = _popup_rows(row, POPUP_TECHNICAL)
    if technical:
        lines += ["<details><summary>Technical details</summary><table>", *technical, "</table></details>"]
    lines.append("</div>")
    return "".join(lines)


def _town_centre_rows(summary: pd.DataFrame | None) -> dict[str, list[dict]]:
    """The town-centre summary's rows by town centre, in their order."""
    rows: dict[str, list[dict]] = {}
    if summary is not None and len(summary):
        for r in _records(summary):
            if isinstance(r["town_centre_name"], str):
                rows.setdefault(r["town_centre_name"], []).append(r)
    return rows


def _town_centre_html(name: str, summary: dict[str, list[dict]], halves: tuple[str, str] | None = None) -> str:
    """Pop-up of a town centre: one row per crime selection (hotspots inside it); ``summary`` from _town_centre_rows."""
    rows = summary.get(name, [])
    if not rows:
        return ""
    change_head = f"{halves[1]} on {halves[0]}" if halves else "second half on first"
    out = [f"<div class='hs-pop'><b>{_esc(name)} town centre</b><table><tr><th>what</th><th>crimes</th>"
           f"<th>{_esc(change_head)}</th><th>hot squares</th><th>patrol areas</th></tr>"]
    for r in rows:
        change = r.get("change_h2_vs_h1_pct", np.nan)
        change = f"{change:+.0f}%" if isinstance(change, (float, int)) and np.isfinite(change) else "–"
        out.append(f"<tr><td>{_esc(r['selection'])}</td><td>{_esc(_fmt(r['count']))}</td><td>{_esc(change)}</td>"
                   f"<td>{_esc(_fmt(r['hot_cells']))}</td><td>{_esc(r.get('patrol_areas', '') or '–')}</td></tr>")
    out.append("</table></div>")
    return "".join(out)


def _list_html(selection: SelectionView) -> str:
    pa = selection.patrol_areas
    definition = f"<div class='hs-def'>{_esc(selection.definition)}</div>" if selection.definition else ""
    head = f"<div class='hs-sel'>Showing: <b>{_esc(selection.label or selection.name)}</b>{definition}</div>"
    if pa is None or len(pa) == 0:
        note = selection.note or "no significant hot spots, so no patrol areas"
        return head + f"<div class='hs-none'>{_esc(note)}</div>"
    items = []
    for r in _by_rank(pa, _LISTED):
        trend = f" · {_esc(r['trend'])}" if "trend" in r and isinstance(r["trend"], str) and r["trend"] else ""
        district = f" ({_esc(r['district_name'])})" if "district_name" in r and r.get("show_district", False) else ""
        items.append(f"<li data-rank='{int(r['rank'])}' tabindex='0' title='Show on the map'><b>{_esc(r['name'])}</b>"
                     f"{district}: {_esc(_fmt(r['count']))} crimes{trend}</li>")
    return (head + "<div class='hs-hint'>Tap a patrol area to show it on the map.</div><ol class='hs-list'>"
            + "".join(items) + "</ol>")


def _by_rank(pa: pd.DataFrame, columns) -> list[dict]:
    """``_records(pa.sort_values("rank"), columns)``: the records of distinct ranks put in order, no frame sorted."""
    records = _records(pa, columns)
    rank = _column(pa, "rank")
    if isinstance(rank, np.ndarray) and rank.dtype.kind in "iu" and len(np.unique(rank)) == len(rank):
        return [records[i] for i in np.argsort(rank).tolist()]  # one order only: no ties, nothing missing
    return _records(pa.sort_values("rank"), columns)


_CSS = """
.hs-panel{background:rgba(255,255,255,.96);padding:6px 9px;border-radius:5px;box-shadow:0 1px 5px rgba(0,0,0,.4);
  font:12px/1.35 Arial,Helvetica,sans-serif;color:#111;max-width:360px}
.hs-panel h1{font-size:15px;margin:0 0 2px 0}.hs-panel .hs-sub,.hs-def,.hs-hint{color:#444;margin-bottom:4px}
.hs-list{margin:3px 0 0 0;padding-left:22px;max-height:38vh;overflow-y:auto}
.hs-panel summary{cursor:pointer;font-weight:bold}.hs-panel details>summary h1{display:inline}
.hs-list li{margin:1px 0;cursor:pointer}.hs-list li:hover,.hs-list li:focus{background:#eef;outline:none}
.hs-legend .sw{display:inline-block;width:14px;height:11px;margin-right:5px;vertical-align:-1px;border:1px solid #777}
.hs-legend .row{white-space:nowrap}.hs-legend b{display:block;margin-top:3px}
.hs-pa-label div{background:#fff;border:2px solid #111;border-radius:50%;width:20px;height:20px;line-height:20px;
  text-align:center;font:bold 12px Arial,sans-serif;color:#111;box-shadow:0 0 3px #fff}
.hs-tc-label span,.hs-district-label span{display:block;text-align:center;white-space:nowrap;
  text-shadow:0 0 3px #fff,0 0 3px #fff,0 0 3px #fff}
.hs-tc-label{color:TC_COLOUR;font:bold 11px Arial,sans-serif;cursor:pointer}
.hs-pop{font:12px/1.35 Arial,Helvetica,sans-serif;color:#111}.hs-pop td,.hs-pop th{padding:1px 4px}
.hs-ward-label span{display:block;text-align:center;white-space:nowrap;color:WARD_LABEL;font:11px Arial,sans-serif;
  text-shadow:0 0 2px #fff,0 0 2px #fff,0 0 2px #fff}
.hs-street-label span{position:absolute;transform:translate(-50%,-50%);white-space:nowrap;color:STREET_LABEL;
  font:italic 11px Arial,sans-serif;text-shadow:0 0 2px #fff,0 0 2px #fff,0 0 3px #fff,0 0 3px #fff;pointer-events:none}
.hs-street-label.hs-in span{font-weight:bold;font-style:normal}
.leaflet-control-layers{font:12px/1.4 Arial,Helvetica,sans-serif}
.hs-district-label{color:#333;font:bold 13px Arial,sans-serif}
.hs-pop table{border-collapse:collapse}.hs-pop th{text-align:left;padding-right:8px;color:#444;font-weight:normal;
  vertical-align:top}.hs-pop td{max-width:260px}.hs-pop details{margin-top:4px;color:#333}
.hs-about pre{white-space:pre-wrap;font:10px/1.3 monospace;max-height:25vh;overflow-y:auto;margin:2px 0}
.hs-hide-pa .hs-pa,.hs-hide-pa .hs-pa-label{display:none}.hs-hide-gi .hs-gi{display:none}
.hs-hide-kde .hs-kde{display:none}.hs-hide-cluster .hs-cluster{display:none}
.hs-hide-streets .hs-street-label{display:none}
.leaflet-container{background:MAP_BG}
.hs-tip-tech{color:#444;font-size:11px}
@media (max-width:700px){.hs-panel{max-width:calc(100vw - 70px)}.hs-list{max-height:30vh}}
""".replace("TC_COLOUR", TOWN_CENTRE_COLOUR).replace("WARD_LABEL", WARD_LABEL_COLOUR).replace(
    "STREET_LABEL", STREET_LABEL_COLOUR).replace("MAP_BG", MAP_BACKGROUND)


def _legend_html(view: MapView, selection: SelectionView | None) -> str:
    """The legend of one selection: only the classes on its map, and the context layers the view has."""
    classes = list(GI_COLOURS) if selection is None or selection.classes is None else selection.classes
    rows = ["<b>Patrol areas</b>",
            f"<div class='row'><span class='sw' style='background:none;border:2px solid {PATROL_COLOUR}'></span>"
            "numbered: the busiest groups of hot spots</div>"]
    if classes:
        rows.append("<b>Hot and cold spots</b>")
    for cls in classes:
        rows.append(f"<div class='row'><span class='sw' style='background:{GI_COLOURS[cls]}'></span>"
                    f"{_esc(GI_LABELS[cls])}</div>")
    rows.append("<b>Streets</b>")
    if view.map_points is not None and len(view.map_points):
        rows.append(f"<div class='row'><span class='sw' style='background:{MAP_POINT_COLOUR};border-radius:50%;"
                    "width:6px;height:6px;margin:0 9px 0 4px'></span>police.uk map point (records are placed here)</div>")
    rows.append(f"<div class='row' style='color:{STREET_LABEL_COLOUR}'><i>Street name</i>, "
                "<span style='font-weight:bold'>in a patrol area</span></div>")
    if view.roads is not None and len(view.roads):
        rows.append(f"<div class='row'><span class='sw' style='background:none;border:0;border-top:3px solid "
                    f"{ROAD_COLOUR};height:0'></span>road</div>")
    if selection is not None and selection.grid is not None:
        rows.append("<details><summary>Density (off by default)</summary>")
        for _, colour, label in KDE_BANDS:
            rows.append(f"<div class='row'><span class='sw' style='background:{colour}'></span>{_esc(label)}</div>")
        rows.append("</details>")
    rows.append(f"<b>Other</b><div class='row'><span class='sw' style='background:{CLUSTER_COLOUR}'></span>"
                "cluster of crime locations (off by default)</div>")
    if view.town_centres is not None and len(view.town_centres):  # only what the map draws
        rows.append(f"<div class='row'><span class='sw' style='background:none;border:2px dashed {TOWN_CENTRE_COLOUR}'>"
                    "</span>town centre</div>")
    if view.wards is not None and len(view.wards):
        rows.append(f"<div class='row'><span class='sw' style='background:none;border:1px solid {WARD_COLOUR}'></span>ward</div>")
    return "<div class='hs-legend'>" + "".join(rows) + "</div>"


def _about_html(view: MapView, licence: str) -> str:
    """How the map was made (technical terms), data sources and the software licence, one click away."""
    tech = "".join(f"<div class='hs-sub'>{_esc(t)}</div>" for t in view.technical_notes)
    roads = ("<div class='hs-sub'>Roads: contains OS data © Crown copyright and database right (OGL v3).</div>"
             if view.roads is not None and len(view.roads) else "")
    return (f"<details class='hs-about'><summary>How this map was made</summary>{tech}"
            f"<div class='hs-sub'>Data: {_esc(view.source)}; boundaries: ONS, OGL v3, contains OS data © Crown "
            f"copyright and database right.</div>{roads}"
            "<details><summary>Software licence (Leaflet)</summary>"
            f"<pre>{_esc(licence)}</pre></details></details>")


def _gi_cell_properties(cells: gpd.GeoDataFrame, rows: np.ndarray, selection: str) -> list[dict]:
    """GeoJSON properties of the Gi* cells at positions ``rows``: class and tooltip (with the test behind the p-value)."""
    n = len(rows)

    def column(name: str, missing) -> list:
        """``cells[name].iloc[rows].tolist()``: the rows taken from the column's array, no Series made on the way."""
        if name not in cells:
            return [missing] * n
        col = _column(cells, name)  # the column's array, no Series made
        if isinstance(col, np.ndarray):  # a numpy column: Python scalars, as Series.tolist gives
            return col[rows].tolist()
        return col.take(rows).tolist()  # what .iloc takes and .tolist lists, for any other array

    classes = [str(c) for c in column("gi_class", "")]
    counts = column("count", np.nan)
    z = column("gi_z", np.nan)
    q = column("gi_q", np.nan)
    tests = [str(t) for t in column("gi_test", "")]
    name = _esc(selection)
    escaped: dict[str, str] = {}  # the same few labels and numbers come back cell after cell

    def esc(text: str) -> str:
        if text not in escaped:
            escaped[text] = _esc(text)
        return escaped[text]

    # the parts that depend on the class, the count or the test alone, made once per value
    heads: dict[str, tuple[str, bool]] = {}  # class -> the tip's start, and whether the class is hot
    counted: dict[tuple, str] = {}  # keyed with the type: 2 and 2.0 are one key, and _fmt may tell them apart
    tails = {t: f" ({words})</span>" for t, words in _GI_TEST_WORDS.items()}
    out = []
    for c, k, zi, qi, t in zip(classes, counts, z, q, tests):
        known = heads.get(c)
        if known is None:
            known = heads[c] = (f"{esc(GI_LABELS[c])}<br>{name}: ", c.startswith("hot"))
        head, hot = known
        key = (k.__class__, k)
        words = counted.get(key)
        if words is None:
            words = counted[key] = esc(_fmt(k))
        tip = f"{head}{words} in this square in the period"
        if hot and k == 0:
            tip += "<br>No crime in this square itself: hot because of its neighbours"
        # _fmt of a float, inline (digits, signs and points only: nothing html.escape changes)
        zf = float(zi)
        z_text = "–" if zf != zf else f"{zf:,.0f}" if abs(zf) >= 100 else f"{zf:,.2f}".rstrip("0").rstrip(".")
        tip += (f"<br><span class='hs-tip-tech'>Getis-Ord Gi* z = {z_text}, "
                f"false-discovery-rate q = {format(float(qi), '.2g')}")
        tip += tails.get(t, "</span>")
        out.append({"c": c, "tip": tip})
    return out


def _significant(gi_class) -> np.ndarray:
    """Positions of the cells whose ``gi_class`` (its values) is a class the map colours.

    ``Series.astype(str).isin(GI_COLOURS)``, each distinct value tested once
    (a missing value is never a class, whatever ``astype(str)`` makes of it).
    """
    codes, uniques = pd.factorize(gi_class)
    coloured = np.array([str(u) in GI_COLOURS for u in uniques] + [False], dtype=bool)  # [-1]: missing
    return np.flatnonzero(coloured[codes])


#: how the tooltip names the test behind a cell's p-value (``gi_test``)
_GI_TEST_WORDS = {"normal": "normal approximation", "exact_binomial": "exact binomial test"}


def _street_data(view: MapView) -> tuple[list, list]:
    """The police.uk map points and the street labels as compact rows for the page script (names escaped)."""
    points, labels = [], []
    if view.map_points is not None and len(view.map_points):
        mp = view.map_points
        latlon = _lonlats(mp["x"].to_numpy(float), mp["y"].to_numpy(float))
        points = [[lat, lon, int(n), _esc(lab)] for (lat, lon), n, lab in zip(latlon, mp["count"].tolist(),
                                                                            mp["label"].tolist())]
    if view.street_labels is not None and len(view.street_labels):
        sl = view.street_labels
        latlon = _lonlats(sl["x"].to_numpy(float), sl["y"].to_numpy(float))
        tiers = sl["tier"].tolist() if "tier" in sl else [2 if v else 0 for v in sl["in_patrol"].tolist()]
        labels = [[lat, lon, _esc(lab), int(tier)] for (lat, lon), lab, tier in zip(latlon, sl["label"].tolist(), tiers)]
    return points, labels


def _badges(pa: gpd.GeoDataFrame) -> list[list]:
    """Per patrol area: rank, the point its number marks and its bounds (lat/lon), for the page script."""
    if pa is None or len(pa) == 0:
        return []
    geoms = _bng(pa)
    reps = shapely.point_on_surface(geoms)
    bounds = shapely.bounds(geoms)
    sw = _lonlats(bounds[:, 0], bounds[:, 1])
    ne = _lonlats(bounds[:, 2], bounds[:, 3])
    at = _lonlats(shapely.get_x(reps), shapely.get_y(reps))
    return [[int(rank), lat, lon, s[0], s[1], n[0], n[1]]
            for rank, (lat, lon), s, n in zip(_column(pa, "rank").tolist(), at, sw, ne)]


@functools.lru_cache(maxsize=1)
def _page_template():
    """The page script's template, compiled once (compiling it took longer than rendering it)."""
    from jinja2 import Template

    from hotspots.render._map_script import PAGE_SCRIPT

    return Template(PAGE_SCRIPT)


def folium_map(view: MapView):
    """Build the folium map for one study area (no network needed to open it).

    Layers: one radio button per crime selection (its patrol areas, hot and
    cold squares, density bands and clusters), and check boxes for the layer
    kinds, the street context (police.uk map points and street names, roads
    when the data home has them), district/town-centre/ward outlines and,
    only when the view opts in, an OpenStreetMap background (needs internet).
    """
    import folium
    from branca.element import Element

    assets = leaflet_assets()
    fast = _folium_classes()
    area = view.study_area.to_crs(BNG)
    minx, miny, maxx, maxy = area.total_bounds
    sw, ne = _lonlat(minx, miny), _lonlat(maxx, maxy)
    m = fast.Map(location=[(sw[0] + ne[0]) / 2, (sw[1] + ne[1]) / 2], zoom_start=12, tiles=None,
                   control_scale=True, zoom_control=True)
    # offline: no CDN assets at all; Leaflet inlined
    m.default_js = []
    m.default_css = []
    root = m.get_root()
    # the same on every map: read as a template once, not once per map (Leaflet is 150 kB)
    root.header.add_child(fast.Raw(rendered_once(f"<style>{assets.css}</style>")), name="leaflet_css_inline")
    root.header.add_child(fast.Raw(rendered_once(f"<script>{assets.js}</script>")), name="leaflet_js_inline")
    root.header.add_child(fast.Raw(rendered_once(f"<style>{_CSS}</style>")), name="hotspots_css")
    root.header.add_child(Element(f"<title>{_esc(view.title)}</title>"), name="hotspots_title")

    panes = {"hs_kde": 405, "hs_gi": 410, "hs_roads": 412, "hs_bounds": 420, "hs_points": 425, "hs_cluster": 430,
             "hs_patrol": 440, "hs_labels": 610}
    for name, z in panes.items():
        fast.CustomPane(name, z_index=z, pointer_events=name not in ("hs_roads", "hs_labels")).add_to(m)

    # context layers -----------------------------------------------------------------
    context: list[tuple[str, Any, bool]] = []
    popups: list[tuple[str, str]] = []  # (marker variable, escaped HTML) bound in the page script
    bind_tip = folium.JsCode("function(f, layer){ if (f.properties.tip) { layer.bindTooltip(f.properties.tip, "
                             "{sticky: true}); } }")
    if view.roads is not None and len(view.roads):
        r = _to_display(view.roads[["name", "road_class", view.roads.geometry.name]], SIMPLIFY_AREA_M)
        fg = fast.FeatureGroup(name="Roads", show=True)
        fast.GeoJsonText([{} for _ in range(len(r))], r.texts,
                         style_function=lambda f: {"color": ROAD_COLOUR, "weight": 2, "opacity": 0.9,
                                                   "className": "hs-road"}, style_fixed=True,
                         pane="hs_roads", interactive=False).add_to(fg)
        fg.add_to(m)
        context.append(("Roads", fg, True))
    if view.wards is not None and len(view.wards):
        w = _to_display(view.wards, SIMPLIFY_BOUNDARY_M, memo=True)
        fg = fast.FeatureGroup(name="Ward outlines", show=True)
        fast.GeoJsonText([{"tip": f"Ward: {_esc(n)}"} for n in w.rows["area_name"]], w.texts,
                         style_function=lambda f: {"color": WARD_COLOUR, "weight": 0.8, "fill": False,
                                                   "className": "hs-ward"}, style_fixed=True,
                         on_each_feature=bind_tip, pane="hs_bounds").add_to(fg)
        if len(w) <= 80:  # names help orientation without a background map (district maps)
            reps = shapely.point_on_surface(_bng(view.wards))
            at = _lonlats(shapely.get_x(reps), shapely.get_y(reps))
            for name, (lat, lon) in zip(view.wards["area_name"], at):
                fast.Marker([lat, lon], icon=fast.DivIcon(html=f"<span>{_esc(name)}</span>", class_name="hs-ward-label",
                                                          icon_size=(120, 14), icon_anchor=(60, 7)),
                            interactive=False, keyboard=False).add_to(fg)
        fg.add_to(m)
        context.append(("Ward outlines", fg, True))
    if view.districts is not None and len(view.districts):
        d = _to_display(view.districts, SIMPLIFY_BOUNDARY_M, memo=True)
        fg = fast.FeatureGroup(name="District boundaries", show=True)
        fast.GeoJsonText([{"tip": f"District: {_esc(n)}"} for n in d.rows["area_name"]], d.texts,
                         style_function=lambda f: {"color": DISTRICT_COLOUR, "weight": 2.2, "fill": False},
                         style_fixed=True,
                         on_each_feature=bind_tip, pane="hs_bounds").add_to(fg)
        if len(d) > 1:
            reps = shapely.point_on_surface(_bng(view.districts))
            at = _lonlats(shapely.get_x(reps), shapely.get_y(reps))
            for name, (lat, lon) in zip(view.districts["area_name"], at):
                fast.Marker([lat, lon], icon=fast.DivIcon(html=f"<span>{_esc(name)}</span>", class_name="hs-district-label",
                                                          icon_size=(140, 18), icon_anchor=(70, 9)),
                            interactive=False, keyboard=False).add_to(fg)
        fg.add_to(m)
        context.append(("District boundaries", fg, True))
    if view.town_centres is not None and len(view.town_centres):
        t = _to_display(view.town_centres, SIMPLIFY_AREA_M, memo=True)
        props = [{"tip": f"Town centre: {_esc(n)}"} for n in t.rows["area_name"]]
        fg = fast.FeatureGroup(name="Town centres", show=True)
        fast.GeoJsonText(props, t.texts,
                         style_function=lambda f: {"color": TOWN_CENTRE_COLOUR, "weight": 2, "dashArray": "6 4",
                                                   "fill": False}, style_fixed=True,
                         on_each_feature=bind_tip, pane="hs_bounds").add_to(fg)
        # names just above the northern edge, clear of the patrol-area numbers inside
        tc_geoms = _bng(view.town_centres)
        tc_rows = _town_centre_rows(view.town_centre_summary)
        tops = _lonlats(shapely.get_x(shapely.centroid(tc_geoms)), shapely.bounds(tc_geoms)[:, 3])
        for name, (lat, lon) in zip(view.town_centres["area_name"], tops):
            summary = _town_centre_html(name, tc_rows, view.half_labels)
            marker = fast.Marker([lat, lon], icon=fast.DivIcon(html=f"<span>{_esc(name)}</span>", class_name="hs-tc-label",
                                                               icon_size=(160, 16), icon_anchor=(80, 17)),
                                 interactive=bool(summary), keyboard=False)
            marker.add_to(fg)
            if summary:
                popups.append((marker.get_name(), summary))
        fg.add_to(m)
        context.append(("Town centres", fg, True))
    # the study area outline always on top of the context
    a = _to_display(view.study_area, SIMPLIFY_BOUNDARY_M, memo=True)
    fast.GeoJsonText([{} for _ in range(len(a))], a.texts,
                     style_function=lambda f: {"color": DISTRICT_COLOUR, "weight": 3, "fill": False},
                     style_fixed=True,
                     pane="hs_bounds", interactive=False).add_to(m)

    # selections ------------------------------------------------------------------------
    default = view.default_selection or (view.selections[0].name if view.selections else None)
    default_label = default
    bases: list[tuple[str, Any]] = []
    lists: dict[str, str] = {}
    legends: dict[str, str] = {}
    badges: dict[str, list] = {}
    patrol_layers: list[tuple[str, str]] = []
    # a pop-up pans clear of the side panel on a laptop (on a phone the panels fold when it opens)
    bind_popup = folium.JsCode("function(f, layer){ if (f.properties.popup) { layer.bindPopup(f.properties.popup, "
                               "{maxWidth: Math.min(380, window.innerWidth - 60), autoPanPaddingTopLeft: "
                               "[window.innerWidth > 1000 ? Math.min(400, window.innerWidth * 0.3 + 20) : 10, 10]}); } "
                               "if (f.properties.tip) { layer.bindTooltip(f.properties.tip); } }")
    area_geom = shapely.union_all(area.geometry.values)
    for sel in view.selections:
        label = _esc(sel.label or sel.name)
        if sel.name == default:
            default_label = sel.label or sel.name
        fg = fast.FeatureGroup(name=label, overlay=False, show=(sel.name == default))
        cells = sel.cells
        # density (KDE) bands
        bands, band_geoms = _kde_bands(cells, sel.grid, area_geom)
        if len(bands):
            kept, _, band_texts = _display_of(band_geoms, SIMPLIFY_AREA_M)
            colours = {k: c for k, c, _ in KDE_BANDS}
            labels = {k: lab for k, _, lab in KDE_BANDS}
            props = [{"fill": colours[bands[i]], "tip": f"Density ({_esc(sel.name)}): {_esc(labels[bands[i]])}"}
                     for i in kept]
            fast.GeoJsonText(props, band_texts,
                             style_function=lambda f: {"color": f["properties"]["fill"], "weight": 0, "fillOpacity": 0.55,
                                                       "fillColor": f["properties"]["fill"], "className": "hs-kde"},
                             on_each_feature=bind_popup, pane="hs_kde", style_by="fill").add_to(fg)
        # significant Gi* cells only, at full strength (the legend swatches are the fills)
        if len(cells) and "gi_class" in cells:
            sig = _significant(_column(cells, "gi_class"))
            if len(sig):
                geoms, crs = _geometries(cells)
                kept, _, cell_texts = _display_of(geoms[sig], 0.0, crs if crs is not None else BNG, memo=True)
                props = _gi_cell_properties(cells, sig[kept], sel.name)
                fast.GeoJsonText(props, cell_texts,
                                 style_function=lambda f: {"color": GI_COLOURS[f["properties"]["c"]], "weight": 0.5,
                                                           "fillColor": GI_COLOURS[f["properties"]["c"]], "fillOpacity": 1.0,
                                                           "className": "hs-gi"},
                                 on_each_feature=bind_popup, pane="hs_gi", style_by="c").add_to(fg)
        # clusters
        if sel.clusters is not None and len(sel.clusters):
            c = _to_display(sel.clusters, SIMPLIFY_CLUSTER_M, memo=True)
            props = [{"tip": f"Cluster ({_esc(sel.name)}): {_esc(_fmt(r.get('count')))} crimes at "
                             f"{_esc(_fmt(r.get('n_locations')))} locations<br>{_esc(r.get('label', ''))}"}
                     for r in _records(c.rows, ("count", "n_locations", "label"))]
            fast.GeoJsonText(props, c.texts,
                             style_function=lambda f: {"color": CLUSTER_COLOUR, "weight": 1.5, "fillColor": CLUSTER_COLOUR,
                                                       "fillOpacity": 0.35, "className": "hs-cluster"}, style_fixed=True,
                             on_each_feature=bind_popup, pane="hs_cluster").add_to(fg)
        # patrol areas; their numbers are placed by the page script (clear of each other and of small areas)
        pa = sel.patrol_areas
        if pa is not None and len(pa):
            p = _to_display(pa, SIMPLIFY_AREA_M, memo=True)
            props = [{"popup": _popup_html(r), "tip": f"{_esc(r['rank'])}. {_esc(r['name'])}", "rank": int(r["rank"])}
                     for r in _records(p.rows, _POPUP_COLUMNS)]
            layer = fast.GeoJsonText(props, p.texts,
                                     style_function=lambda f: {"color": PATROL_COLOUR, "weight": 3, "fillColor": "#ffffff",
                                                               "fillOpacity": 0.08, "className": "hs-pa"}, style_fixed=True,
                                     on_each_feature=bind_popup, pane="hs_patrol")
            layer.add_to(fg)
            patrol_layers.append((label, layer.get_name()))
            badges[label] = _badges(pa)
        fg.add_to(m)
        # Leaflet's layer control inserts layer names as HTML: escaped above
        bases.append((label, fg))
        lists[label] = _list_html(sel)
        legends[label] = _legend_html(view, sel)

    tiles = None
    if view.web_tiles:  # opt-in only: the map is complete without a network
        tiles = folium.TileLayer(tiles=OSM_TILES, attr=OSM_ATTRIBUTION, name="OpenStreetMap background (needs internet)",
                                 overlay=True, show=False, max_zoom=19)
        tiles.add_to(m)

    points, street_labels = _street_data(view)
    sub = f"{_esc(view.period_label)} · data: {_esc(view.source)}"
    notes = "".join(f"<div class='hs-sub'>{_esc(n)}</div>" for n in view.notes)
    controls = fast.Macro()
    controls._template = _page_template()
    controls.map = m.get_name()
    controls.lists = lists
    controls.legends = legends
    controls.badges = badges
    controls.patrol_layers = patrol_layers
    controls.points = points
    controls.street_labels = street_labels
    controls.point_colour = MAP_POINT_COLOUR
    controls.popups = popups
    controls.bases = [(n, fg.get_name()) for n, fg in bases]
    controls.kinds = [("Patrol areas (numbered)", "pa", True), ("Hot and cold spots", "gi", True),
                      ("Density (KDE heat)", "kde", False), ("Clusters of crime locations", "cluster", False),
                      ("Street names", "streets", True)]
    controls.context = [(_esc(n), fg.get_name()) for n, fg, _ in context]
    controls.tiles = [("OpenStreetMap background (needs internet)", tiles.get_name())] if tiles is not None else []
    controls.default = _esc(default_label or "")
    controls.title = f"<h1>{_esc(view.title)}</h1>"
    controls.header = f"<div class='hs-sub'>{sub}</div>{notes}"
    controls.about = _about_html(view, assets.licence_text)
    controls.bounds = [[sw[0], sw[1]], [ne[0], ne[1]]]
    m.add_child(controls)
    return m


def render_html(view: MapView) -> str:
    """The complete, self-contained HTML of :func:`folium_map`."""
    return folium_map(view).get_root().render()
