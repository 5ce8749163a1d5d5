"""The monthly trend chart of the CSP outlier report written as SVG text directly (no matplotlib figure).

Draws what :func:`hotspots.render.outliers_charts.trend_chart` drew with
matplotlib, laid out as matplotlib laid it out (see
:mod:`hotspots.render._funnel_svg` for the shared rules): the same axes box,
the y range matplotlib's autoscaling gives (0 to the highest value plus 5% of
the data range), its automatic y ticks, the year ticks, the shaded months
without data, the dots for isolated months and the legend of one row above
the axes (matplotlib's legend spacing: border 0.4, handle 2.2, handle to
text 0.8, column spacing 2.0 font sizes; entries aligned on their baseline).

:func:`trend_svg` returns ``None`` for what it does not draw as matplotlib
would (no finite value, a flat series, tick labels needing an offset, more
than one legend row, text of several lines, a legend label starting with
an underscore); the caller then draws with matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from hotspots.render._funnel_svg import (
    LABEL_PAD,
    TICK_LENGTH,
    TICK_PAD,
    TICK_SIZE,
    _chart_start,
    _num,
    _scales,
    _text,
    _ticks,
)
from hotspots.render._funnel_svg import _metrics as metrics

WIDTH, HEIGHT = 9.6 * 72, 2.3 * 72
AXES = (0.06, 0.11, 0.93, 0.74)
LEGEND_SIZE = 7.0
LEGEND_COLUMNS = 4


def _segments(xs: np.ndarray, ys: np.ndarray) -> str:
    """A path through the finite points, broken at the missing ones (as matplotlib breaks a line at NaN)."""
    parts = []
    run: list[str] = []
    for x, y in zip(xs, ys):
        if math.isfinite(y):
            run.append(f"{_num(x)} {_num(y)}")
            continue
        if len(run) > 1:
            parts.append("M " + " L ".join(run))
        run = []
    if len(run) > 1:
        parts.append("M " + " L ".join(run))
    return " ".join(parts)


def _stroke(colour: str, dashed: bool, width: float) -> str:
    if dashed:
        return (f"fill: none; stroke-dasharray: {_num(3.7 * width)},{_num(1.6 * width)}; stroke-dashoffset: 0; "
                f"stroke: {colour}; stroke-width: {_num(width)}")
    return f"fill: none; stroke: {colour}; stroke-width: {_num(width)}; stroke-linecap: square"


def trend_svg(years: Sequence[tuple[int, str]], n_months: int,
              series: Sequence[tuple[np.ndarray, str, bool, float, str]], gaps: Sequence[tuple[int, int]]) -> bytes | None:
    """The trend chart as SVG bytes, or None when it is not drawn here (see the module).

    ``years``: (month index, label) of each January; ``n_months``: months on
    the axis; ``series``: (rate per month with NaN for none, colour, dashed,
    line width, legend label) in drawing order; ``gaps``: (first, last) month
    index of each run of months without data.
    """
    if not series or len(series) > LEGEND_COLUMNS or n_months < 1:
        return None
    values = np.concatenate([np.asarray(s[0], dtype=float) for s in series])
    finite = values[np.isfinite(values)]
    if not finite.size:
        return None
    low, high = float(finite.min()), float(finite.max())
    if not high > low or high <= 0:
        return None
    top = high + 0.05 * (high - low)  # matplotlib's 5% margin; the bottom is set to 0
    labels = [s[4] for s in series] + [label for _, label in years]
    if any("\n" in t or "\r" in t for t in labels) or any(s[4].startswith("_") for s in series):
        return None  # several lines; a label matplotlib's legend leaves out (a leading underscore)

    left, right = AXES[0] * WIDTH, (AXES[0] + AXES[2]) * WIDTH
    bottom, upper = HEIGHT * (1 - AXES[1]), HEIGHT * (1 - AXES[1] - AXES[3])
    xmin, xmax = -0.5, n_months - 0.5

    sx, sy = _scales(xmin, xmax, top, left, right, upper, bottom)

    yticks = _ticks(0.0, top, bottom - upper, 2)
    if yticks is None or not yticks[0]:
        return None

    out = _chart_start(WIDTH, HEIGHT, left, right, upper, bottom)
    clip = ' clip-path="url(#axes)"'
    for start, stop in gaps:  # months without data, shaded behind everything
        a, b = float(sx(start - 0.5)), float(sx(stop + 0.5))
        out.append(f'<path d="M {_num(a)} {_num(bottom)} L {_num(b)} {_num(bottom)} L {_num(b)} {_num(upper)} '
                   f'L {_num(a)} {_num(upper)} z"{clip} style="fill: #f4f4f4"/>')

    tick_style = "fill: none; stroke: #444444; stroke-width: 0.8"
    label_top = bottom + TICK_LENGTH + TICK_PAD
    for index, label in years:
        if not xmin <= index <= xmax:
            continue
        px = float(sx(index))
        out.append(f'<path d="M {_num(px)} {_num(bottom)} L {_num(px)} {_num(bottom + TICK_LENGTH)}" style="{tick_style}"/>')
        _, h, d = metrics(label, TICK_SIZE)
        out.append(_text(px, label_top + h - d, label, size=TICK_SIZE, anchor="middle", fill="#444444"))
    label_right = left - TICK_LENGTH - TICK_PAD
    leftmost = label_right
    for value, label in zip(*yticks):
        py = float(sy(value))
        out.append(f'<path d="M {_num(left)} {_num(py)} L {_num(right)} {_num(py)}"{clip} '
                   'style="fill: none; stroke: #eeeeee; stroke-width: 0.5; stroke-linecap: square"/>')
        out.append(f'<path d="M {_num(left - TICK_LENGTH)} {_num(py)} L {_num(left)} {_num(py)}" style="{tick_style}"/>')
        w, h, d = metrics(label, TICK_SIZE)
        out.append(_text(label_right, py + (h - d) / 2, label, size=TICK_SIZE, anchor="end", fill="#444444"))
        leftmost = min(leftmost, label_right - w)
    ylabel = "per 1,000 residents per month"
    _, h, d = metrics(ylabel, TICK_SIZE)
    out.append(_text(leftmost - LABEL_PAD - d, (upper + bottom) / 2, ylabel, size=TICK_SIZE, anchor="middle", rotate=90))

    xs = sx(np.arange(n_months))
    for y, colour, dashed, width, _ in series:
        y = np.asarray(y, dtype=float)
        path = _segments(xs, sy(y))
        if path:
            out.append(f'<path d="{path}"{clip} style="{_stroke(colour, dashed, width)}"/>')
        # a month with data between two missing months has no line: a dot
        isolated = np.isfinite(y) & ~np.isfinite(np.r_[np.nan, y[:-1]]) & ~np.isfinite(np.r_[y[1:], np.nan])
        if isolated.any():
            out.append(f"<g{clip}>" + "".join(
                f'<circle cx="{_num(a)}" cy="{_num(b)}" r="1.25" style="fill: {colour}; stroke: {colour}; '
                'stroke-width: 1"/>' for a, b in zip(xs[isolated], sy(y[isolated]))) + "</g>")
    spine = "fill: none; stroke: #777777; stroke-width: 0.8; stroke-linejoin: miter; stroke-linecap: square"
    out.append(f'<path d="M {_num(left)} {_num(bottom)} L {_num(left)} {_num(upper)}" style="{spine}"/>')
    out.append(f'<path d="M {_num(left)} {_num(bottom)} L {_num(right)} {_num(bottom)}" style="{spine}"/>')
    for start, stop in gaps:
        if stop - start >= 3:
            _, h, d = metrics("no data", 7.0)
            out.append(_text(float(sx((start + stop) / 2)), (upper + bottom) / 2 + h / 2 - d, "no data", size=7,
                             anchor="middle", fill="#999999"))

    # the legend: one row above the axes, its bottom at 1.02 of the axes height
    fs = LEGEND_SIZE
    descent = max(metrics(s[4], fs)[2] for s in series)  # the row's entries share a baseline
    baseline = upper - 0.02 * (bottom - upper) - 0.4 * fs - descent
    x = left + 0.4 * fs
    for _, colour, dashed, width, label in series:
        handle_y = baseline - 0.35 * fs
        out.append(f'<path d="M {_num(x)} {_num(handle_y)} L {_num(x + 1.1 * fs)} {_num(handle_y)} '
                   f'L {_num(x + 2.2 * fs)} {_num(handle_y)}" style="{_stroke(colour, dashed, width)}"/>')
        text_x = x + 2.2 * fs + 0.8 * fs
        out.append(_text(text_x, baseline, label, size=fs, anchor="start"))
        x = text_x + metrics(label, fs)[0] + 2.0 * fs
    out.append("</svg>")
    return ('<?xml version="1.0" encoding="utf-8" standalone="no"?>\n' + "\n".join(out) + "\n").encode("utf-8")
