"""The hotspot map's page script (a Jinja macro for folium): panels, list, layer switches and label placement.

Display only.  The analysis hands over, in order, what to show: the patrol
areas by rank, the street names with those inside patrol areas first.  At
each zoom the script places them in that order on the screen:

* a patrol area's number sits on the area when the area is at least three
  numbers wide and tall and the spot is free; otherwise it moves just outside
  the area (the nearest free spot of a ring around it) with a leader line, so
  a number never hides the area it names or another number;
* then town-centre and district names, street names inside the patrol
  areas, ward names, street names around the patrol areas (from zoom 12)
  and the other streets (from zoom 14): each is shown only when it overlaps
  nothing already placed.

On a small screen (phone) the panels start folded, the layer switcher is
collapsed, and opening a pop-up folds the panels so the pop-up is never under
them.  Clicking (tapping) a patrol area in the list zooms the map to it and
opens its pop-up.
"""

PAGE_SCRIPT = """
{% macro script(this, kwargs) %}
(function(){
  var map = {{ this.map }};
  var small = window.innerWidth <= 700;
  var lists = {{ this.lists|tojson }};
  var legends = {{ this.legends|tojson }};
  var badgeData = {{ this.badges|tojson }};
  var pointData = {{ this.points|tojson }};
  var labelData = {{ this.street_labels|tojson }};
  var bases = {};
  {% for name, var in this.bases %}bases[{{ name|tojson }}] = {{ var }};
  {% endfor %}
  var patrol = {};
  {% for name, var in this.patrol_layers %}patrol[{{ name|tojson }}] = {{ var }};
  {% endfor %}
  var current = {{ this.default|tojson }};
  var kinds = {};
  {% for label, key, on in this.kinds %}
  kinds[{{ label|tojson }}] = L.layerGroup(); kinds[{{ label|tojson }}].hsKey = {{ key|tojson }};
  {% if on %}kinds[{{ label|tojson }}].addTo(map);{% else %}map.getContainer().classList.add('hs-hide-' + {{ key|tojson }});{% endif %}
  {% endfor %}
  // police.uk map points: one canvas for thousands of dots
  var points = L.layerGroup();
  if (pointData.length) {
    var canvas = L.canvas({pane: 'hs_points', padding: 0.2});
    pointData.forEach(function(p){
      L.circleMarker([p[0], p[1]], {renderer: canvas, radius: 2.2, weight: 0.6, color: '#ffffff',
        fillColor: {{ this.point_colour|tojson }}, fillOpacity: 0.9})
        .bindTooltip('On or near ' + p[3] + ': ' + p[2] + ' police.uk record' + (p[2] == 1 ? '' : 's')
                     + ' (all types)').addTo(points);
    });
    points.addTo(map);
  }
  var overlays = {};
  for (var k in kinds) { overlays[k] = kinds[k]; }
  if (pointData.length) overlays['police.uk map points'] = points;
  {% for name, var in this.context %}overlays[{{ name|tojson }}] = {{ var }};
  {% endfor %}
  {% for name, var in this.tiles %}overlays[{{ name|tojson }}] = {{ var }};
  {% endfor %}
  L.control.layers(bases, overlays, {collapsed: small, position: 'topright'}).addTo(map);
  map.on('overlayadd', function(e){ if (e.layer.hsKey) { map.getContainer().classList.remove('hs-hide-' + e.layer.hsKey); place(); } });
  map.on('overlayremove', function(e){ if (e.layer.hsKey) { map.getContainer().classList.add('hs-hide-' + e.layer.hsKey); place(); } });

  var info = L.control({position: 'topleft'});
  info.onAdd = function(){ var d = L.DomUtil.create('div', 'hs-panel hs-info');
    d.innerHTML = '<details' + (small ? '' : ' open') + '><summary>' + {{ this.title|tojson }} + '</summary>'
      + {{ this.header|tojson }} + '<div id="hs-list"></div>' + {{ this.about|tojson }} + '</details>';
    L.DomEvent.disableClickPropagation(d); L.DomEvent.disableScrollPropagation(d); return d; };
  info.addTo(map);
  var legend = L.control({position: 'bottomright'});
  legend.onAdd = function(){ var d = L.DomUtil.create('div', 'hs-panel hs-legend-panel');
    d.innerHTML = '<details' + (window.innerWidth > 900 ? ' open' : '') + '><summary>Legend</summary>'
      + '<div id="hs-legend-body"></div></details>';
    L.DomEvent.disableClickPropagation(d); L.DomEvent.disableScrollPropagation(d); return d; };
  legend.addTo(map);
  function showList(name){
    var el = document.getElementById('hs-list'); if (el) el.innerHTML = lists[name] || '';
    var lg = document.getElementById('hs-legend-body'); if (lg) lg.innerHTML = legends[name] || '';
  }
  showList(current);
  {% for var, html in this.popups %}{{ var }}.bindPopup({{ html|tojson }}, {maxWidth: Math.min(420, window.innerWidth - 60)});
  {% endfor %}
  map.on('baselayerchange', function(e){ current = e.name; showList(e.name); place(); });

  // the list zooms to its patrol area and opens its pop-up
  function zoomTo(rank){
    var layer = patrol[current]; if (!layer) return;
    layer.eachLayer(function(l){
      if (l.feature && l.feature.properties.rank == rank) {
        if (small) foldPanels();
        map.fitBounds(l.getBounds(), {maxZoom: 17, padding: [40, 40]});
        setTimeout(function(){ l.openPopup(); }, 350);
      }
    });
  }
  var listEl = document.getElementById('hs-list');
  function onList(e){ var li = e.target.closest ? e.target.closest('li[data-rank]') : null;
    if (li) zoomTo(parseInt(li.getAttribute('data-rank'), 10)); }
  listEl.addEventListener('click', onList);
  listEl.addEventListener('keydown', function(e){ if (e.key === 'Enter') onList(e); });

  // phones: a pop-up is never under the panels
  function foldPanels(){
    document.querySelectorAll('.hs-panel > details').forEach(function(d){ d.open = false; });
  }
  map.on('popupopen', function(){ if (window.innerWidth <= 700) foldPanels(); });

  // label placement: numbers first (on small areas or when crowded, outside with a leader line), then street names
  var badgeLayer = L.layerGroup().addTo(map);
  var streetMarkers = labelData.map(function(s){
    var m = L.marker([s[0], s[1]], {pane: 'hs_labels', interactive: false, keyboard: false,
      icon: L.divIcon({className: 'hs-street-label' + (s[3] == 2 ? ' hs-in' : ''), html: '<span>' + s[2] + '</span>',
                       iconSize: [0, 0]})});
    // the text is escaped HTML: its length in characters is near enough for an 11px label's width
    m.hsWidth = s[2].replace(/&[a-z#0-9]+;/g, 'x').length * 6.2 + 6; m.hsTier = s[3];
    return m;
  });
  var streetLayer = L.layerGroup(streetMarkers).addTo(map);
  var R = 12;
  function overlaps(b, boxes){
    for (var i = 0; i < boxes.length; i++) { var p = boxes[i];
      if (b[0] < p[2] && b[2] > p[0] && b[1] < p[3] && b[3] > p[1]) return true; }
    return false;
  }
  function place(){
    badgeLayer.clearLayers();
    var placed = [], areas = [];
    var c = map.getContainer();
    var showPa = !c.classList.contains('hs-hide-pa');
    var rows = showPa ? (badgeData[current] || []) : [];
    rows.forEach(function(b){
      var sw = map.latLngToContainerPoint([b[3], b[4]]), ne = map.latLngToContainerPoint([b[5], b[6]]);
      areas.push([Math.min(sw.x, ne.x), Math.min(sw.y, ne.y), Math.max(sw.x, ne.x), Math.max(sw.y, ne.y)]);
    });
    rows.forEach(function(b, i){
      var at = map.latLngToContainerPoint([b[1], b[2]]), a = areas[i];
      var w = a[2] - a[0], h = a[3] - a[1], pos = at, lead = false;
      function box(p){ return [p.x - R, p.y - R, p.x + R, p.y + R]; }
      if (w < 3 * R || h < 3 * R || overlaps(box(at), placed)) {
        var best = null;
        for (var ring = 1; ring <= 4 && !best; ring++) {
          var d = ring * (R + 4);
          var cands = [[a[2] + d, a[1] - d], [a[2] + d, (a[1] + a[3]) / 2], [a[2] + d, a[3] + d],
                       [(a[0] + a[2]) / 2, a[3] + d], [a[0] - d, a[3] + d], [a[0] - d, (a[1] + a[3]) / 2],
                       [a[0] - d, a[1] - d], [(a[0] + a[2]) / 2, a[1] - d]];
          for (var j = 0; j < cands.length; j++) {
            var p = L.point(cands[j][0], cands[j][1]);
            if (!overlaps(box(p), placed) && !overlaps(box(p), areas)) { best = p; break; }
          }
        }
        if (!best) { for (var ring2 = 1; ring2 <= 6 && !best; ring2++) { var p2 = L.point(a[2] + ring2 * 2 * R, a[1] - ring2 * R);
          if (!overlaps(box(p2), placed)) best = p2; } }
        pos = best || L.point(a[2] + R + 4, a[1] - R - 4); lead = true;
      }
      placed.push(box(pos));
      var ll = map.containerPointToLatLng(pos);
      if (lead) L.polyline([ll, map.containerPointToLatLng(at)], {color: '#111', weight: 1.5, pane: 'hs_labels',
                                                                 interactive: false, className: 'hs-pa hs-leader'}).addTo(badgeLayer);
      L.marker(ll, {pane: 'hs_labels', interactive: false, keyboard: false,
        icon: L.divIcon({className: 'hs-pa-label' + (lead ? ' hs-pa-moved' : ''), html: '<div>' + b[0] + '</div>',
                         iconSize: [24, 24], iconAnchor: [12, 12]})}).addTo(badgeLayer);
    });
    var z = map.getZoom(), size = map.getSize();
    var showStreets = !c.classList.contains('hs-hide-streets');
    // town-centre and district names (measured), then street names inside patrol areas, ward names, the other streets
    // the names drawn as folium markers: found by their icon's class, measured from their text
    var fixedKinds = {'hs-tc-label': [6.6, -17, -1], 'hs-district-label': [7.8, -9, 9], 'hs-ward-label': [6.0, -7, 7]};
    function fixed(cls){
      var spec = fixedKinds[cls];
      map.eachLayer(function(l){
        if (!(l instanceof L.Marker) || !l.options.icon || l.options.icon.options.className !== cls) return;
        var el = l.getElement(); if (!el) return;
        var p = map.latLngToContainerPoint(l.getLatLng()), w = el.textContent.length * spec[0] / 2 + 3;
        var b = [p.x - w, p.y + spec[1], p.x + w, p.y + spec[2]];
        var hide = overlaps(b, placed);
        el.style.visibility = hide ? 'hidden' : '';
        if (!hide) placed.push(b);
      });
    }
    function streets(tiers, minZoom){
      streetMarkers.forEach(function(m){
        if (tiers.indexOf(m.hsTier) < 0) return;
        var el = m.getElement(); if (!el) return;
        var show = showStreets && z >= minZoom[m.hsTier], shift = 0;
        if (show) {
          var p = map.latLngToContainerPoint(m.getLatLng());
          show = false;
          // on its point, else just above or below it (a name inside a patrol area may move, others may not)
          var shifts = m.hsTier == 2 ? [0, -14, 14] : [0];
          for (var k = 0; k < shifts.length && !show; k++) {
            var b = [p.x - m.hsWidth / 2, p.y - 8 + shifts[k], p.x + m.hsWidth / 2, p.y + 8 + shifts[k]];
            if (b[2] > 0 && b[0] < size.x && b[3] > 0 && b[1] < size.y && !overlaps(b, placed)) {
              show = true; shift = shifts[k]; placed.push(b);
            }
          }
        }
        el.style.display = show ? '' : 'none';
        if (el.firstChild) el.firstChild.style.marginTop = shift + 'px';
      });
    }
    var minZoom = {2: 0, 1: 12, 0: 14};
    fixed('hs-tc-label'); fixed('hs-district-label');
    streets([2], minZoom);
    fixed('hs-ward-label');
    streets([1, 0], minZoom);
  }
  map.on('zoomend moveend', place);

  // fit the study area closely (quarter zoom steps), clear of the panels on a laptop screen
  map.options.zoomSnap = 0.25;
  var wide = window.innerWidth > 1000;
  map.fitBounds({{ this.bounds|tojson }}, wide ? {paddingTopLeft: [Math.min(380, window.innerWidth * 0.3), 10],
                                                  paddingBottomRight: [250, 10]} : {padding: [10, 10]});
  place();
})();
{% endmacro %}
"""
