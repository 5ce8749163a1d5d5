"""The printable hotspot map: an A4 PNG (matplotlib) of one selection of a :class:`MapView`."""

from __future__ import annotations

import math

import numpy as np
import shapely

from hotspots.render._map_geometry import _bng, _records
from hotspots.render.map_views import (
    DISTRICT_COLOUR,
    GI_COLOURS,
    GI_LABELS,
    MAP_POINT_COLOUR,
    PATROL_COLOUR,
    PNG_MAX_LISTED,
    ROAD_COLOUR,
    STREET_LABEL_COLOUR,
    TOWN_CENTRE_COLOUR,
    WARD_COLOUR,
    WARD_LABEL_COLOUR,
    MapView,
    _fmt,
)

__all__ = ["static_map_png"]


# GeoSeries.plot redraws the whole figure after each call (canvas.draw_idle): with a dozen layers that was
# most of a PNG's time.  These add the collections geopandas builds (normalised geometries, one compound path
# per polygon, one line per part) and the figure is drawn once, by savefig.  They are added without updating
# the data limits (``autolim``: the extent of every vertex, then an autoscale before each next layer, ~5% of a
# map): the map sets its view limits itself (set_xlim/set_ylim turn autoscaling off), and an aspect adjusted
# by the box does not read the data limits, so they never reach a pixel.
def _add_polygons(ax, geoms: np.ndarray, **style) -> None:
    """(Multi)polygons as one collection of paths: a compound path (exteriors and holes) per geometry.

    The paths are those of geopandas' PatchCollection of PathPatches, without building a patch per polygon.
    """
    from matplotlib.collections import PathCollection

    geoms = shapely.normalize(geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))])
    if len(geoms) == 0:
        return
    ax.add_collection(PathCollection(_polygon_paths(geoms), **style), autolim=False)


def _polygon_paths(geoms: np.ndarray) -> list:
    """A compound Path per (multi)polygon: each ring closed (its last point coded CLOSEPOLY), exterior then holes.

    ``Path.make_compound_path(*(Path(ring, closed=True) for each ring))``, the vertices and codes made for all
    the rings at once.  Anything but polygons and multipolygons, or an empty part, goes the long way.
    """
    from matplotlib.path import Path

    type_id = shapely.get_type_id(geoms)
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    if not np.isin(type_id, (3, 6)).all() or shapely.is_empty(parts).any():
        return [_polygon_path_long(geom) for geom in geoms]
    rings, ring_of = shapely.get_rings(parts, return_index=True)  # per part: exterior, then its holes
    sizes = shapely.get_num_coordinates(rings)
    if (sizes < 2).any():
        return [_polygon_path_long(geom) for geom in geoms]
    coords = shapely.get_coordinates(rings)
    codes = np.full(len(coords), Path.LINETO, dtype=Path.code_type)
    ends = np.cumsum(sizes)
    codes[ends - sizes] = Path.MOVETO
    codes[ends - 1] = Path.CLOSEPOLY
    # where each geometry's vertices end (its rings are consecutive)
    geom_of_ring = part_of[ring_of]
    geom_ends = np.searchsorted(geom_of_ring, np.arange(len(geoms)), side="right")
    cut = np.concatenate(([0], ends))[geom_ends].tolist()
    starts = [0] + cut[:-1]
    return [Path(coords[a:b], codes[a:b]) for a, b in zip(starts, cut)]


def _polygon_path_long(geom):
    from matplotlib.path import Path

    rings = []
    for part in shapely.get_parts(geom):
        rings.append(Path(np.asarray(part.exterior.coords)[:, :2], closed=True))
        rings.extend(Path(np.asarray(ring.coords)[:, :2], closed=True) for ring in part.interiors)
    return Path.make_compound_path(*rings)


def _add_lines(ax, geoms: np.ndarray, **style) -> None:
    """(Multi)line strings as one LineCollection, a line per part."""
    from matplotlib.collections import LineCollection

    geoms = shapely.normalize(geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))])
    if len(geoms) == 0:
        return
    parts = shapely.get_parts(geoms)
    ax.add_collection(LineCollection([np.asarray(p.coords)[:, :2] for p in parts], **style), autolim=False)


def _plot(ax, xs: list, ys: list, **style) -> None:
    """The line ``ax.plot(xs, ys, color=..., **style)`` adds, added without ``plot``'s argument parsing.

    For one line with its colour given (the colour cycle is not used):
    ``plot`` makes ``Line2D(array(xs), array(ys), **style)`` and adds it with
    ``add_line``; its autoscale request is moot here (the limits are set).
    About half of a leader line's cost.
    """
    from matplotlib.lines import Line2D

    ax.add_line(Line2D(np.atleast_1d(np.asarray(xs, dtype=float)), np.atleast_1d(np.asarray(ys, dtype=float)),
                       **style))


def _wrap_once(text, renderer) -> None:
    """Replace ``wrap=True`` by the lines it would draw, measured once.

    matplotlib wraps a line by measuring it word by word, and it re-wraps on
    every layout.  A line that fits is kept whole by its rule (each shorter
    prefix fits too), so only lines too wide are wrapped, by :func:`_wrap_line`.
    """
    text._renderer = renderer
    width = text._get_wrap_line_width()
    whole = text.get_text()
    lines = []

    def fits(words: str) -> bool:
        return text._get_rendered_text_width(words) <= width

    for line in whole.split("\n"):
        if " " in line and not fits(line):
            lines.append("\n".join(_wrap_line(line.split(" "), fits)))
        else:
            lines.append(line)
    text.set_text("\n".join(lines))
    text.set_wrap(False)


def _wrap_line(words: list[str], fits) -> list[str]:
    """The lines matplotlib's wrap makes of one line's words (``Text._get_wrapped_text``), found by halving.

    Its rule: each line takes words while they fit (at least one word), so a
    line ends before the first prefix of the words left that is too wide.
    matplotlib measures the prefixes one word longer each time, a string of
    the line's length each (a few milliseconds a line); a prefix one word
    longer is never narrower (the glyphs before it keep their places), so
    halving the range finds the same prefix with a few measures.
    """
    out = []
    while words:
        if len(words) == 1 or fits(" ".join(words)):
            out.append(" ".join(words))
            break
        lo, hi = 2, len(words)  # the first too-wide prefix (of lo..hi words) is in this range; hi words are too wide
        while lo < hi:
            mid = (lo + hi) // 2
            if fits(" ".join(words[:mid])):
                lo = mid + 1
            else:
                hi = mid
        out.append(" ".join(words[:lo - 1]))
        words = words[lo - 1:]
    return out


def static_map_png(view: MapView, selection: str | None = None, *, dpi: int = 130) -> bytes:
    """A printable PNG of one selection: hot cells, patrol areas, outlines, the ranked list."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from hotspots.render._agg_text import FastTextCanvas
    from hotspots.render._png import canvas_png

    name = selection or view.default_selection or (view.selections[0].name if view.selections else "")
    sel = next((s for s in view.selections if s.name == name), None)
    area = _bng(view.study_area)
    fig = plt.figure(figsize=(11.69, 8.27), dpi=dpi)  # A4 landscape
    FastTextCanvas(fig)  # text drawn a string at a time (see _agg_text), for the wrapping and the savefig
    ax = fig.add_axes([0.01, 0.04, 0.64, 0.86])
    if view.wards is not None and len(view.wards):
        _add_lines(ax, shapely.boundary(_bng(view.wards)), color=WARD_COLOUR,
                   linewidth=0.4, zorder=1)
    if view.roads is not None and len(view.roads):
        _add_lines(ax, _bng(view.roads), color=ROAD_COLOUR, linewidth=0.6, zorder=1.5)
    if view.map_points is not None and len(view.map_points):
        ax.scatter(view.map_points["x"].to_numpy(float), view.map_points["y"].to_numpy(float), s=0.6,
                   color=MAP_POINT_COLOUR, linewidths=0, zorder=3)
    if view.districts is not None and len(view.districts):
        _add_lines(ax, shapely.boundary(_bng(view.districts)), color=DISTRICT_COLOUR,
                   linewidth=1.0, zorder=4)
    if sel is not None and len(sel.cells) and "gi_class" in sel.cells:
        cls = sel.cells["gi_class"].astype(str).to_numpy()
        cell_geoms = np.asarray(sel.cells.geometry.values)
        for key, colour in GI_COLOURS.items():
            _add_polygons(ax, cell_geoms[cls == key], facecolor=colour, linewidth=0, zorder=2)
    if view.town_centres is not None and len(view.town_centres):
        _add_lines(ax, shapely.boundary(_bng(view.town_centres)), color=TOWN_CENTRE_COLOUR, linewidth=1.0,
                   linestyle="--", zorder=5)
    _add_lines(ax, shapely.boundary(area), color=DISTRICT_COLOUR, linewidth=1.8, zorder=6)
    minx, miny, maxx, maxy = shapely.total_bounds(area).tolist()
    pad = 0.03 * max(maxx - minx, maxy - miny)
    ax.set_xlim(minx - pad, maxx + pad)
    ax.set_ylim(miny - pad, maxy + pad)
    pa = sel.patrol_areas if sel is not None else None
    lines = []
    badges: list[tuple[int, float, float, tuple]] = []
    if pa is not None and len(pa):
        pa = pa.sort_values("rank")
        pa_geoms = _bng(pa)
        _add_lines(ax, shapely.boundary(pa_geoms), color=PATROL_COLOUR, linewidth=1.8, zorder=7)
        reps = shapely.point_on_surface(pa_geoms)
        listed = _records(pa, ("rank", "name", "count", "trend", "district_name", "show_district"))  # what is read
        for r, x, y, bounds in zip(listed, shapely.get_x(reps).tolist(), shapely.get_y(reps).tolist(),
                                   shapely.bounds(pa_geoms).tolist()):
            badges.append((int(r["rank"]), x, y, tuple(bounds)))
            trend = f", {r['trend']}" if "trend" in r and isinstance(r["trend"], str) and r["trend"] else ""
            district = f" [{r['district_name']}]" if r.get("show_district", False) else ""
            lines.append(f"{int(r['rank'])}. {r['name']}{district}\n     {_fmt(r['count'])} in the period{trend}")
    ax.set_aspect("equal")
    _place_labels(ax, view, badges)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    # scale bar
    span = maxx - minx
    bar = 10 ** math.floor(math.log10(span / 4))
    bar = bar * (5 if span / 4 / bar >= 5 else 2 if span / 4 / bar >= 2 else 1)
    x0, y0 = minx, miny - pad * 0.6
    _plot(ax, [x0, x0 + bar], [y0, y0], color="black", linewidth=3, zorder=9, solid_capstyle="butt")
    ax.annotate(f"{bar / 1000:g} km" if bar >= 1000 else f"{bar:g} m", (x0 + bar / 2, y0), xytext=(0, 4),
                textcoords="offset points", ha="center", fontsize=7)
    ax.annotate("N ↑", (0.97, 0.97), xycoords="axes fraction", ha="right", va="top", fontsize=9, fontweight="bold")
    fig.text(0.01, 0.965, view.title, fontsize=14, fontweight="bold", va="top")
    shown = (sel.label or sel.name) if sel is not None else name
    fig.text(0.01, 0.925, f"{shown} · {view.period_label} · data: {view.source} · contains OS data © Crown copyright",
             fontsize=8.5, va="top", color="#333")
    classes = list(GI_COLOURS) if sel is None or sel.classes is None else sel.classes
    handles = [Patch(facecolor=GI_COLOURS[k], label=GI_LABELS[k]) for k in classes]
    handles += [Line2D([], [], color=PATROL_COLOUR, lw=1.8, label="patrol area (numbered)")]
    if view.town_centres is not None and len(view.town_centres):  # only what the map draws
        handles.append(Line2D([], [], color=TOWN_CENTRE_COLOUR, lw=1.0, ls="--", label="town centre"))
    if view.wards is not None and len(view.wards):
        handles.append(Line2D([], [], color=WARD_COLOUR, lw=0.6, label="ward"))
    if view.map_points is not None and len(view.map_points):
        handles.append(Line2D([], [], ls="", marker="o", ms=2, color=MAP_POINT_COLOUR,
                              label="police.uk map point (records are placed here)"))
    if view.roads is not None and len(view.roads):
        handles.append(Line2D([], [], color=ROAD_COLOUR, lw=1.2, label="road (OS Open Roads)"))
    if len(lines) > PNG_MAX_LISTED:  # keep the list clear of the legend
        lines = lines[:PNG_MAX_LISTED] + [f"… and {len(lines) - PNG_MAX_LISTED} more (see patrol_areas.csv)"]
    text = "Patrol areas (ranked)\n\n" + ("\n".join(lines) if lines else (sel.note if sel is not None and sel.note
                                                                          else "No significant hot spots."))
    _side_panel(fig, handles, text)
    # the pixels savefig draws, encoded without Pillow's row filters (see _png): a third of the encoding time
    png = canvas_png(fig)
    plt.close(fig)
    return png



#: where the legend and the ranked list go, in figure coordinates (left, bottom, width, height)
SIDE_PANEL = (0.66, 0.04, 0.33, 0.86)
#: tests: the side panel drawn in an Axes, the long way (see _side_panel)
USE_SIDE_AXES = False


def _side_panel(fig, handles: list, text: str) -> None:
    """The legend (at the bottom) and the ranked list (at the top, wrapped) of the panel right of the map.

    They are drawn as in an Axes with its axis off filling :data:`SIDE_PANEL`
    (``ax.legend(...)``, ``ax.text(0, 1, ...)``), without making that Axes:
    with its axis off it draws nothing of its own, and making one (ticks,
    spines, labels) cost 15 ms a map.  The legend is anchored on the box the
    Axes would have had; the list is the Text ``ax.text`` made (not clipped)
    in its data coordinates, limits 0 to 1, which are its axes coordinates:
    the same numbers.  They draw after the map's Axes, as that Axes did, the
    list before the legend (their z-orders).  :data:`USE_SIDE_AXES` (tests)
    makes the Axes, the long way.
    """
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox, BboxTransformTo, TransformedBbox

    legend = dict(handles=handles, loc="lower left", fontsize=7.5, frameon=False,
                  title="Coloured squares: much more (red) or less (blue)\ncrime than around them",  # two lines: one ran off the page
                  title_fontsize=8)
    listing = dict(va="top", ha="left", fontsize=8, family="DejaVu Sans", wrap=True)
    if USE_SIDE_AXES:
        side = fig.add_axes(list(SIDE_PANEL))
        side.axis("off")
        _layout_once_per_draw(side.legend(**legend))
        shown = side.text(0.0, 1.0, text, **listing)
    else:
        box = Bbox.from_bounds(*SIDE_PANEL)
        _layout_once_per_draw(fig.legend(bbox_to_anchor=box, **legend))
        shown = fig.add_artist(Text(0.0, 1.0, text, transform=BboxTransformTo(TransformedBbox(box, fig.transSubfigure)),
                                    clip_on=False, **listing))
    _wrap_once(shown, fig.canvas.get_renderer())



def _layout_once_per_draw(legend) -> None:
    """Each box of the legend laid out once per draw of the legend, not once per box above it: the same numbers.

    ``OffsetBox.draw`` lays a box out (its bbox and its children's offsets,
    from its children's bboxes, recursively), then draws each child, which
    lays itself out again: the legend's nested boxes (the title and the
    columns, a row per entry, a handle and a label each) were laid out once
    per level above them, and once more for the legend's extent, about a
    tenth of a map.  Nothing a layout reads changes while the legend draws
    (the offsets set on the way are added after), so the first layout of
    each box (the packers; a label's box is measured by its row's) is kept
    until that draw ends.  Outside a draw of the legend they lay out as ever.
    """
    from matplotlib.offsetbox import PackerBase, PaddedBox

    drawing: dict = {}  # while the legend draws: box -> its layout; None otherwise
    state = {"on": False}
    stack = [legend._legend_box]
    while stack:
        box = stack.pop()
        stack.extend(box.get_children())
        if isinstance(box, (PackerBase, PaddedBox)):
            def layout(renderer, own=box._get_bbox_and_child_offsets, box=box):
                if not state["on"]:
                    return own(renderer)
                known = drawing.get(box)
                if known is None or known[0] is not renderer:
                    known = drawing[box] = (renderer, own(renderer))
                return known[1]

            box._get_bbox_and_child_offsets = layout
    draw = legend.draw

    def draw_laid_out_once(renderer):
        state["on"] = True
        drawing.clear()
        try:
            return draw(renderer)
        finally:
            state["on"] = False
            drawing.clear()

    legend.draw = draw_laid_out_once


def _place_labels(ax, view: MapView, badges: list[tuple[int, float, float, tuple]]) -> None:
    """Patrol-area numbers, then street names inside/around the areas, then ward names: none over another.

    A number sits on its area when the area is at least three numbers wide and
    tall and the spot is free, else just outside it with a leader line.
    Street names come in the order the analysis gives (inside patrol areas
    first); any that would overlap a placed label is left out.
    """
    ax.apply_aspect()
    to_px = ax.transData.transform
    to_data = ax.transData.inverted().transform
    placed = _Boxes()  # the labels placed so far
    radius = 7.0  # pixels at the figure's dpi, about the drawn circle

    areas = []
    for _, _, _, (x0, y0, x1, y1) in badges:
        (px0, py0), (px1, py1) = to_px([(x0, y0), (x1, y1)])
        areas.append((px0, py0, px1, py1))
    area_boxes = _Boxes(areas)
    for (rank, x, y, _), a in zip(badges, areas):
        at = to_px([(x, y)])[0]
        pos, lead = at, False

        def box(p):
            return (p[0] - radius, p[1] - radius, p[0] + radius, p[1] + radius)

        if a[2] - a[0] < 4 * radius or a[3] - a[1] < 4 * radius or not placed.free(box(at)):
            lead = True
            pos = (a[2] + radius + 3, a[3] + radius + 3)
            for ring in range(1, 5):
                d = ring * (radius + 3)
                cands = [(a[2] + d, a[3] + d), (a[2] + d, (a[1] + a[3]) / 2), (a[2] + d, a[1] - d),
                         ((a[0] + a[2]) / 2, a[1] - d), (a[0] - d, a[1] - d), (a[0] - d, (a[1] + a[3]) / 2),
                         (a[0] - d, a[3] + d), ((a[0] + a[2]) / 2, a[3] + d)]
                found = next((c for c in cands if placed.free(box(c)) and area_boxes.free(box(c))), None)
                if found is not None:
                    pos = found
                    break
        placed.add(box(pos))
        px, py = to_data([pos])[0]
        if lead:
            _plot(ax, [px, x], [py, y], color=PATROL_COLOUR, linewidth=0.8, zorder=8.5)
        ax.annotate(str(rank), (px, py), ha="center", va="center", fontsize=7, fontweight="bold", zorder=9,
                    bbox={"boxstyle": "circle,pad=0.2", "fc": "white", "ec": PATROL_COLOUR, "lw": 1.0})
    halo = {"boxstyle": "round,pad=0.05", "fc": "white", "ec": "none", "alpha": 0.75}
    dpi_scale = ax.figure.dpi / 72.0
    bbox = ax.get_window_extent()  # nothing is drawn while the labels are placed
    left, right, bottom, top = bbox.x0, bbox.x1, bbox.y0, bbox.y1
    names = _LabelBatch(ax, ha="center", va="center", zorder=8, bbox=halo)

    def text(label, x, y, size, colour, weight="normal", style="normal", p=None) -> None:
        if p is None:  # the point in pixels (given for street names: transformed all at once, the same numbers)
            p = to_px([(x, y)])[0]
        w = len(label) * size * 0.55 * dpi_scale / 2 + 2
        h = size * dpi_scale / 2 + 1
        b = (p[0] - w, p[1] - h, p[0] + w, p[1] + h)
        if b[0] < left or b[2] > right or b[1] < bottom or b[3] > top or not placed.free(b):
            return
        placed.add(b)
        # a Text at the point draws what an Annotation of it draws (the point is inside the axes: checked above)
        names.add(x, y, label, size, colour, weight, style)

    if view.districts is not None and len(view.districts) > 1:
        reps = shapely.point_on_surface(_bng(view.districts))
        for nm, x, y in zip(view.districts["area_name"], shapely.get_x(reps).tolist(), shapely.get_y(reps).tolist()):
            text(str(nm), x, y, 7, "#333333")
    if view.town_centres is not None and len(view.town_centres):  # names just above each centre's northern edge
        tc = _bng(view.town_centres)
        # (not named ``top``: that is the axes' top edge in pixels, which text() checks every label against)
        for nm, x, north in zip(view.town_centres["area_name"], shapely.get_x(shapely.centroid(tc)).tolist(),
                                shapely.bounds(tc)[:, 3].tolist()):
            text(str(nm), x, north, 7, TOWN_CENTRE_COLOUR)
    labels = view.street_labels
    tiers = labels["tier"].tolist() if labels is not None and "tier" in labels else []
    if labels is not None and len(labels):
        street_px = to_px(np.column_stack((labels["x"].to_numpy(float), labels["y"].to_numpy(float))))
        # the values iterating the columns gives, as lists (iterating Arrow-backed strings is slow), read once
        street = list(zip(labels["label"].tolist(), labels["x"].tolist(), labels["y"].tolist(),
                          tiers or [2] * len(labels), street_px.tolist()))
        for lab, x, y, tier, p in street:
            if tier == 2:
                text(str(lab), x, y, 5.5, STREET_LABEL_COLOUR, weight="bold", p=p)
    if view.wards is not None and len(view.wards) <= 80:
        reps = shapely.point_on_surface(_bng(view.wards))
        for nm, x, y in zip(view.wards["area_name"], shapely.get_x(reps).tolist(), shapely.get_y(reps).tolist()):
            text(str(nm), x, y, 6, WARD_LABEL_COLOUR)
    if labels is not None and len(labels):
        for lab, x, y, tier, p in street:
            if tier == 1:
                text(str(lab), x, y, 5, STREET_LABEL_COLOUR, style="italic", p=p)
    names.add_to_axes()


class _Boxes:
    """Boxes ``(x0, y0, x1, y1)`` (pixels); :meth:`free`: does a box overlap none of them?

    The test of the list it replaced (overlap: each side strictly past the
    other's), asked only of the boxes sharing a cell of a grid with the box: a
    district map tries a few thousand names against hundreds placed.  Boxes
    that overlap share a cell (a point of the overlap lies in one cell, which
    both boxes span).  A box with a NaN overlaps nothing (its comparisons are
    false) and is not kept; one with an infinite side, or spanning very many
    cells, is kept in a list asked every time.
    """

    CELL = 64.0  # pixels: about a street name's width
    MAX_CELLS = 4096

    def __init__(self, boxes=()):
        self.cells: dict[tuple[int, int], list[tuple[float, float, float, float]]] = {}
        self.odd: list[tuple[float, float, float, float]] = []
        for b in boxes:
            self.add(b)

    def _span(self, b):
        """The cells' column and row ranges *b* spans; None for a NaN; () for an infinite or huge box."""
        x0, y0, x1, y1 = b
        if not (x0 == x0 and y0 == y0 and x1 == x1 and y1 == y1):
            return None
        if not all(map(math.isfinite, b)):
            return ()
        c = self.CELL
        i0, i1, j0, j1 = math.floor(x0 / c), math.floor(x1 / c), math.floor(y0 / c), math.floor(y1 / c)
        if (i1 - i0 + 1) * (j1 - j0 + 1) > self.MAX_CELLS or i1 < i0 or j1 < j0:
            return ()
        return range(i0, i1 + 1), range(j0, j1 + 1)

    def add(self, b) -> None:
        b = tuple(map(float, b))
        span = self._span(b)
        if span is None:
            return
        if span == ():
            self.odd.append(b)
            return
        cols, rows = span
        cells = self.cells
        for i in cols:
            for j in rows:
                cells.setdefault((i, j), []).append(b)

    def free(self, b) -> bool:
        x0, y0, x1, y1 = b = tuple(map(float, b))
        for o in self.odd:
            if x0 < o[2] and x1 > o[0] and y0 < o[3] and y1 > o[1]:
                return False
        span = self._span(b)
        if span is None:
            return True
        if span == ():  # asked of every box kept
            return not any(x0 < o[2] and x1 > o[0] and y0 < o[3] and y1 > o[1]
                           for o in [o for boxes in self.cells.values() for o in boxes])
        cols, rows = span
        cells = self.cells
        for i in cols:
            for j in rows:
                for o in cells.get((i, j), ()):
                    if x0 < o[2] and x1 > o[0] and y0 < o[3] and y1 > o[1]:
                        return False
        return True


class _LabelBatch:
    """Map labels drawn, in the order added, by one Text whose position, string and font change for each.

    Each is drawn exactly as ``ax.text(x, y, label, **common, fontsize=..., color=..., fontweight=...,
    fontstyle=...)`` draws it (its halo box, then its string), at the batch's place in the drawing order
    (its z-order; artists of equal z-order in the order added): a district map places several hundred street
    names, and making a Text with its box for each took longer than drawing it.  ``USE_TEXTS`` (tests)
    makes one Text each, the long way.
    """

    USE_TEXTS = False

    def __init__(self, ax, **common):
        self.ax, self.common, self.rows = ax, common, []

    def add(self, x, y, label, size, colour, weight, style) -> None:
        if self.USE_TEXTS:
            self.ax.text(x, y, label, fontsize=size, color=colour, fontweight=weight, fontstyle=style, **self.common)
        else:
            self.rows.append((x, y, label, size, colour, weight, style))

    def add_to_axes(self) -> None:
        if not self.rows:
            return
        from matplotlib.artist import Artist

        ax = self.ax
        first = self.rows[0]
        # the Text ax.text makes, kept out of the axes' children (the batch draws it)
        proto = ax.text(first[0], first[1], first[2], fontsize=first[3], color=first[4], fontweight=first[5],
                        fontstyle=first[6], **self.common)
        try:
            proto.remove()
            proto.axes, proto.figure = ax, ax.figure  # remove() unhooked them; the Text draws with them
            proto.stale_callback = None
        except Exception:  # noqa: BLE001 - a matplotlib that will not have it: a Text each, the long way
            kept = proto in ax.texts  # remove() refused: the first name stays, as ax.text made it
            for x, y, label, size, colour, weight, style in (self.rows[1:] if kept else self.rows):
                ax.text(x, y, label, fontsize=size, color=colour, fontweight=weight, fontstyle=style, **self.common)
            return
        rows = self.rows

        layout = type(proto)._get_layout

        class Batch(Artist):
            def draw(self, renderer):
                if not self.get_visible():
                    return
                try:
                    for x, y, label, size, colour, weight, style in rows:
                        proto.set_position((x, y))
                        proto.set_text(label)
                        proto.set_fontsize(size)
                        proto.set_color(colour)
                        proto.set_fontweight(weight)
                        proto.set_fontstyle(style)
                        # a Text with a box lays itself out twice per draw (for the box, then the string), the
                        # same layout: made once here (it depends on the string and font, not the position)
                        laid_out = layout(proto, renderer)
                        proto._get_layout = lambda _renderer, laid_out=laid_out: laid_out
                        proto.draw(renderer)
                finally:
                    proto.__dict__.pop("_get_layout", None)
                self.stale = False

        batch = Batch()
        batch.set_zorder(proto.get_zorder())
        ax.add_artist(batch)

