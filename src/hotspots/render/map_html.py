"""The interactive hotspot map: a self-contained, offline HTML page (folium/Leaflet) of a :class:`MapView`."""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from hotspots.render._leaflet import _folium_classes, leaflet_assets
from hotspots.render._map_geometry import (
    _feature_collection,
    _kde_bands,
    _lonlat,
    _lonlats,
    _to_display,
)
from hotspots.render.map_views import (
    CLUSTER_COLOUR,
    DISTRICT_COLOUR,
    GI_COLOURS,
    GI_LABELS,
    KDE_BANDS,
    OSM_ATTRIBUTION,
    OSM_TILES,
    PATROL_COLOUR,
    POPUP_FIELDS,
    SIMPLIFY_AREA_M,
    SIMPLIFY_BOUNDARY_M,
    SIMPLIFY_CLUSTER_M,
    TOWN_CENTRE_COLOUR,
    WARD_COLOUR,
    MapView,
    SelectionView,
    _esc,
    _fmt,
)
from hotspots.schema import BNG

__all__ = ["folium_map", "render_html"]


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
    """GeoJSON properties of the significant Gi* cells: class and tooltip (with the test behind the p-value)."""
    n = len(cells)
    classes = [str(c) for c in cells["gi_class"].tolist()]
    counts = cells["count"].tolist() if "count" in cells else [np.nan] * n
    z = cells["gi_z"].tolist() if "gi_z" in cells else [np.nan] * n
    q = cells["gi_q"].tolist() if "gi_q" in cells else [np.nan] * n
    tests = [str(t) for t in cells["gi_test"].tolist()] if "gi_test" in cells else [""] * n
    name = _esc(selection)
    out = []
    for c, k, zi, qi, t in zip(classes, counts, z, q, tests):
        tip = f"{_esc(GI_LABELS[c])}<br>{name}: {_esc(_fmt(k))} in this cell in the period"
        if c.startswith("hot") and k == 0:
            tip += "<br>No crime in this cell itself: hot because of its neighbours"
        tip += f"<br>Gi* z = {_esc(_fmt(float(zi)))}, FDR q = {_esc(format(float(qi), '.2g'))}"
        if t in _GI_TEST_WORDS:
            tip += f" ({_GI_TEST_WORDS[t]})"
        out.append({"c": c, "tip": tip})
    return out


#: how the tooltip names the test behind a cell's p-value (``gi_test``)
_GI_TEST_WORDS = {"normal": "normal approximation", "exact_binomial": "exact binomial test"}


def folium_map(view: MapView):
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
            shown = [c for c in ("gi_class", "count", "gi_z", "gi_q", "gi_test") if c in cells] + [cells.geometry.name]
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
    """The complete, self-contained HTML of :func:`folium_map`."""
    return folium_map(view).get_root().render()

