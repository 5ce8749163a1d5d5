"""The small map of a CSP's busiest LSOAs written as SVG text directly (no matplotlib figure).

Draws what :func:`hotspots.render.outliers_charts.lsoa_map` drew with
matplotlib, laid out as matplotlib laid it out: the view is the extent of
the outlines plus matplotlib's 5% margins, the axes box shrunk to an equal
aspect and centred in its place (``Bbox.shrunk_to_aspect`` / ``anchored``),
the LSOA outlines (light), the busiest LSOAs filled by their funnel flag,
the CSP's outline, a number in a circle at each busiest LSOA's
representative point (matplotlib's ``circle`` box: padding 0.15 of the font
size around the text box) and the title above the axes.

:func:`lsoa_svg` returns ``None`` for what it does not draw (a geometry that
is not a polygon or multipolygon, an extent of zero width or height); the
caller then draws with matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hotspots.render._funnel_svg import TITLE_PAD, _metrics, _num, _text

WIDTH, HEIGHT = 2.6 * 72, 2.4 * 72
AXES = (0.0, 0.0, 1.0, 0.9)
MARGIN = 0.05
NUMBER_SIZE = 6.0
TITLE_SIZE = 7.0


def _rings(geometry) -> list[np.ndarray] | None:
    """Exterior then interior rings of each part, as outliers_charts._path builds them; None if not polygonal."""
    kind = getattr(geometry, "geom_type", None)
    if kind not in ("Polygon", "MultiPolygon") or geometry.is_empty:
        return None
    rings = []
    for part in getattr(geometry, "geoms", [geometry]):
        rings.append(np.asarray(part.exterior.coords)[:, :2])
        rings.extend(np.asarray(r.coords)[:, :2] for r in part.interiors)
    return rings


def _path(rings: Sequence[np.ndarray], to_svg: Any, *, closed: bool = True) -> str:
    """Rings as one SVG path (closed: the repeated last point becomes "z", as matplotlib writes a closed path)."""
    parts = []
    for ring in rings:
        xy = to_svg(ring)
        if closed:
            xy = xy[:-1]
        parts.append("M " + " L ".join(f"{_num(x)} {_num(y)}" for x, y in xy) + (" z" if closed else ""))
    return " ".join(parts)


def lsoa_svg(background: Sequence[Any], busiest: Sequence[tuple[int, Any, str]], outline: Any,
             title: str) -> bytes | None:
    """The map as SVG bytes, or None (see the module).

    ``background``: the LSOA outlines as drawn (normalised, empties left out);
    ``busiest``: (rank, geometry, fill colour) in drawing order; ``outline``:
    the CSP's outline (the union of its LSOAs).
    """
    from matplotlib.transforms import Bbox

    if "\n" in title or "\r" in title or not len(background):
        return None
    shapes = [_rings(g) for g in background]
    filled = [(rank, _rings(g), g, fill) for rank, g, fill in busiest]
    border = _rings(outline)
    if any(s is None for s in shapes) or any(f[1] is None for f in filled) or border is None:
        return None
    exteriors = [np.asarray(part.exterior.coords)[:, :2] for part in getattr(outline, "geoms", [outline])]
    every = np.concatenate([r for rings in shapes for r in rings] + [r for f in filled for r in f[1]] + exteriors)
    if not np.isfinite(every).all():
        return None
    (x0, y0), (x1, y1) = every.min(axis=0), every.max(axis=0)
    if not (x1 > x0 and y1 > y0):
        return None
    dx, dy = (x1 - x0) * MARGIN, (y1 - y0) * MARGIN
    x0, x1, y0, y1 = x0 - dx, x1 + dx, y0 - dy, y1 + dy
    # set_aspect("equal"), adjustable "box": the axes shrink to the data's aspect, centred where they were
    place = Bbox.from_bounds(*AXES)
    box = place.shrunk_to_aspect((y1 - y0) / (x1 - x0), place, HEIGHT / WIDTH).anchored("C", place)
    left, right = box.x0 * WIDTH, box.x1 * WIDTH
    top, bottom = HEIGHT * (1 - box.y1), HEIGHT * (1 - box.y0)

    def to_svg(xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=float)
        return np.column_stack([left + (xy[:, 0] - x0) / (x1 - x0) * (right - left),
                                bottom - (xy[:, 1] - y0) / (y1 - y0) * (bottom - top)])

    out = [f'<svg xmlns:xlink="http://www.w3.org/1999/xlink" width="{_num(WIDTH)}pt" height="{_num(HEIGHT)}pt" '
           f'viewBox="0 0 {_num(WIDTH)} {_num(HEIGHT)}" xmlns="http://www.w3.org/2000/svg" version="1.1">',
           '<defs><style type="text/css">*{stroke-linejoin: round; stroke-linecap: butt}</style>',
           f'<clipPath id="axes"><rect x="{_num(left)}" y="{_num(top)}" width="{_num(right - left)}" '
           f'height="{_num(bottom - top)}"/></clipPath></defs>',
           f'<path d="M 0 {_num(HEIGHT)} L {_num(WIDTH)} {_num(HEIGHT)} L {_num(WIDTH)} 0 L 0 0 z" style="fill: #ffffff"/>']
    clip = ' clip-path="url(#axes)"'
    out.append(f"<g{clip}>" + "".join(f'<path d="{_path(rings, to_svg)}" style="fill: #f7f7f7; stroke: #bbbbbb; '
                                      'stroke-width: 0.3"/>' for rings in shapes) + "</g>")
    for _, rings, _, fill in filled:
        out.append(f'<path d="{_path(rings, to_svg)}"{clip} style="fill: {fill}; stroke: #555555; stroke-width: 0.4; '
                   'stroke-linejoin: miter"/>')
    out.append(f'<path d="{_path(exteriors, to_svg, closed=False)}"{clip} style="fill: none; stroke: #333333; '
               'stroke-width: 0.8; stroke-linecap: square"/>')
    for rank, _, geometry, _ in filled:
        point = geometry.representative_point()
        (cx, cy), = to_svg(np.array([[point.x, point.y]]))
        label = str(rank)
        w, h, d = _metrics(label, NUMBER_SIZE, True)
        pad = 0.15 * NUMBER_SIZE
        radius = max(w + 2 * pad, h + 2 * pad) / 2
        out.append(f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="{_num(radius)}" style="fill: #ffffff; '
                   'stroke: #333333; stroke-width: 0.5; stroke-linejoin: miter"/>')
        out.append(_text(cx, cy + h / 2 - d, label, size=NUMBER_SIZE, bold=True, anchor="middle"))
    out.append(_text(left, top - TITLE_PAD, title, size=TITLE_SIZE, bold=True, anchor="start"))
    out.append("</svg>")
    return ('<?xml version="1.0" encoding="utf-8" standalone="no"?>\n' + "\n".join(out) + "\n").encode("utf-8")
