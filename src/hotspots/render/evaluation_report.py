"""The evaluation report (HTML): renders what :mod:`hotspots.evaluation` computed.

Display only: every number, sentence and count comes from the
:class:`hotspots.evaluation.EvaluationResult` (plain data: tables, dicts and
strings; this module imports nothing from the analysis); it formats numbers,
draws charts and a map with matplotlib (Agg, embedded as base64 PNG) and fills
the Jinja2 template ``templates/evaluation.html.j2`` with autoescaping on, so
area names from user files are always escaped.  The page is self-contained
(no scripts, no web fonts, no network) and prints on A4.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import io
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hotspots.months import human_period, month_ranges

if TYPE_CHECKING:  # pragma: no cover
    from hotspots.evaluation import EvaluationResult

REAL_AREAS_HINT = "hotspots evaluate --areas patrol_areas.gpkg --name-column name"
COLOURS = {"treated": "#c0392b", "buffer": "#e67e22", "control": "#2c6fbb", "county": "#7f8c8d", "matched": "#2c6fbb"}
#: how verdict codes (stable, in the CSVs) are shown to readers
VERDICT_LABEL = {
    "credible reduction": "reduction credited to the patrols",
    "reduction not attributable": "fall not attributable to the patrols",
    "treated did worse than equally high places": "did worse than equally high places",
}
VERDICT_CLASS = {
    "fell": "good", "credible reduction": "good", "rose": "bad", "increase": "bad",
    "no detectable change": "neutral", "too few crimes to tell": "neutral", "not estimable": "neutral",
    "reduction not attributable": "warn", "treated did worse than equally high places": "bad",
    "too few areas to tell": "neutral",
}


# --------------------------------------------------------------------------- number formatting
def fmt_pct(x: Any, digits: int = 0) -> str:
    """'−14%', '+9%', '0%'; '–' for missing (typographic minus).

    >>> fmt_pct(-14.2), fmt_pct(9), fmt_pct(0.04), fmt_pct(0.5), fmt_pct(float("nan"))
    ('−14%', '+9%', '0%', '+0.5%', '–')
    """
    if x is None or not np.isfinite(x):
        return "–"
    if digits == 0 and 0 < abs(float(x)) < 0.95:
        digits = 1
    v = round(float(x), digits)
    if v == 0:
        return "0%"
    s = f"{abs(v):.{digits}f}%"
    return ("−" if v < 0 else "+") + s


def fmt_ci(low: Any, high: Any) -> str:
    """'−19% to +9%'; empty when either end is missing.

    >>> fmt_ci(-19.2, 8.7), fmt_ci(None, 3)
    ('−19% to +9%', '')
    """
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return ""
    return f"{fmt_pct(low)} to {fmt_pct(high)}"


def fmt_int(x: Any) -> str:
    """'1,234'; '–' for missing.

    >>> fmt_int(1234.4), fmt_int(float("nan"))
    ('1,234', '–')
    """
    if x is None or not np.isfinite(x):
        return "–"
    return f"{x:,.0f}"


def fmt_p(p: Any) -> str:
    """A p-value: '< 0.001' or three decimals; '–' for missing.

    >>> fmt_p(0.0004), fmt_p(0.04321)
    ('< 0.001', '0.043')
    """
    if p is None or not np.isfinite(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def fmt_money(x: Any) -> str:
    """'£12,345'; '–' for missing.

    >>> fmt_money(12345.4), fmt_money(None)
    ('£12,345', '–')
    """
    if x is None or not np.isfinite(x):
        return "–"
    return f"£{x:,.0f}"


def _auto_value(value: Any) -> str:
    """Readable text for an automatic choice (lists of months as ranges, dicts as 'key: value')."""
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_auto_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, str) and len(v) == 7 and v[4] == "-" for v in value):
            return _ranges(value)
        return ", ".join(_auto_value(v) for v in value)
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


# --------------------------------------------------------------------------- charts
#: the charts' and the map's resolution
DPI = 130


def _png(fig, *, close: bool = True) -> str:
    """``fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")``, base64: the same pixels, drawn once.

    With ``bbox_inches="tight"`` matplotlib draws the whole figure (nothing
    rasterised) to lay it out, measures the tight box, then draws it again,
    cropped.  Here the tight box is measured (``Figure.get_tightbbox``, which
    lays the axes, ticks, titles and legend out itself) on the renderer that
    draw would use, padded by ``savefig.pad_inches`` as savefig pads it, and
    handed to ``savefig`` as the box to save: one draw.  The PNG is encoded
    by :func:`hotspots.render._png.png_bytes` (no row filters) through
    :class:`_PngCanvas`: the same pixels, fewer bytes, less time.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    canvas = fig.canvas if isinstance(fig.canvas, _png_canvas_class()) else _png_canvas_class()(fig)
    buf = io.BytesIO()
    with _dpi(fig, DPI), _fixed_ticks(fig):
        bbox = fig.get_tightbbox(canvas.get_renderer()).padded(matplotlib.rcParams["savefig.pad_inches"])
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches=bbox)
    if close:  # (a chart kept to be drawn again with other lines, see _monthly_charts, is closed there)
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


class _dpi:
    """The figure at ``dpi`` inside the block (as savefig sets it while it saves)."""

    def __init__(self, fig, dpi: float) -> None:
        self.fig, self.dpi, self.old = fig, dpi, fig.dpi

    def __enter__(self) -> None:
        self.fig.dpi = self.dpi

    def __exit__(self, *exc) -> None:
        self.fig.dpi = self.old


class _fixed_ticks:
    """The major ticks of every drawn axis, found once, as fixed ticks inside the block (the same ticks and labels).

    Measuring the tight box and drawing ask each axis for its ticks a dozen
    times (every tick-label box, the label and title positions), each time
    running its locator and formatter on the same limits; here they run once
    (limits, axis size and dpi are those of the draw) and the axes are given
    those locations and labels (``FixedLocator``/``FixedFormatter``) until
    the block ends, when the axis's own ticker is put back.  An axis whose
    formatter writes an offset ("1e3", "+2.5e4", drawn beside the axis) keeps
    its own ticker.
    """

    def __init__(self, fig) -> None:
        self.fig, self.saved = fig, []

    def __enter__(self) -> None:
        from matplotlib.axis import Ticker
        from matplotlib.ticker import FixedFormatter, FixedLocator

        for ax in self.fig.axes:
            if not ax.axison:
                continue
            for axis in (ax.xaxis, ax.yaxis):
                locs = axis.major.locator()
                labels = axis.major.formatter.format_ticks(locs)
                if axis.major.formatter.get_offset():
                    continue
                fixed = Ticker()
                fixed.locator, fixed.formatter = FixedLocator(locs), FixedFormatter(labels)
                fixed.locator.set_axis(axis)
                fixed.formatter.set_axis(axis)
                self.saved.append((axis, axis.major))
                axis.major = fixed

    def __exit__(self, *exc) -> None:
        for axis, major in self.saved:
            axis.major = major
        self.saved = []


@functools.lru_cache(maxsize=1)
def _png_canvas_class() -> type:
    """A :class:`~hotspots.render._agg_text.FastTextCanvas` whose PNG is encoded by ``png_bytes``."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from hotspots.render._agg_text import FastTextCanvas
    from hotspots.render._png import png_bytes

    class _PngCanvas(FastTextCanvas):
        def get_renderer(self):
            """FastTextCanvas.get_renderer, keeping the renderer of each size (and dpi) this canvas has drawn at.

            ``_png`` measures the tight box at the figure's size and draws at
            the cropped size, so a canvas switches between two renderers, and
            a chart drawn again (see ``_monthly_charts``) would make both
            anew: kept, matplotlib's text-metrics cache (keyed by renderer)
            and the renderer's glyph bitmaps serve the next chart.  A draw
            clears the renderer first, so the pixels are the same.
            """
            w, h = self.get_width_height(physical=True)
            key = w, h, self.figure.dpi
            kept = self.__dict__.setdefault("_kept_renderers", {})
            if self._lastKey != key and key in kept:
                self.renderer, self._lastKey = kept[key], key
            renderer = super().get_renderer()
            if key not in kept and len(kept) >= 4:  # (a few sizes at most: the full figure and its tight crops)
                kept.clear()
            kept[key] = renderer
            return renderer

        def print_png(self, filename_or_obj, *, metadata=None, pil_kwargs=None, **_savefig_options):
            """What FigureCanvasAgg.print_png writes, the same pixels, encoded without row filters.

            ``_savefig_options`` (face and edge colour, orientation, dpi, the
            bbox restore) are those FigureCanvasAgg.print_png is not given
            either (savefig has applied them to the figure).
            """
            FigureCanvasAgg.draw(self)
            text = {"Software": f"Matplotlib version{matplotlib.__version__}, https://matplotlib.org/"}
            text.update(metadata or {})
            filename_or_obj.write(png_bytes(np.asarray(self.buffer_rgba()), dpi=self.figure.dpi,
                                            text={k: v for k, v in text.items() if v is not None}))

    return _PngCanvas


def _safe_text(s: str) -> str:
    """Text for matplotlib: no mathtext ('$'), no control characters."""
    return "".join(ch for ch in str(s) if ch.isprintable()).replace("$", r"\$")


def monthly_chart(monthly: pd.DataFrame, crime_type: str, meta: dict[str, Any]) -> str:
    """Treated, buffer and control as an index (before-period average = 100); missing months are gaps."""
    return _monthly_charts(monthly, [crime_type], meta)[0]


#: the monthly chart's lines: column, legend label (``{control}``/``{buffer}`` from the meta), colour, width
_CHART_LINES = (("control_index", "control: {control}", COLOURS["control"], 1.6),
                ("buffer_index", "{buffer:g} m buffers", COLOURS["buffer"], 1.4),
                ("treated_index", "treated areas", COLOURS["treated"], 2.2))


def _monthly_charts(monthly: pd.DataFrame, crime_types: list[str], meta: dict[str, Any]) -> list[str]:
    """:func:`monthly_chart` of each crime type, the same PNGs; one figure drawn for all that share their months.

    The charts of the crime types differ only in their lines, title and y
    limits when their months, periods, gaps and missing index values are the
    same (the usual case: every crime type has a row per month), so after the
    first the figure is kept and only those are changed before it is saved
    again: the x axis, the shading, the legend and the ticks are not built
    again.  A crime type with other months, or without a finite index (whose
    y limits matplotlib chooses from the data), gets a figure of its own.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: list[str] = []
    fig = ax = lines = shared = None
    for crime_type in crime_types:
        d = monthly[monthly["crime_type"] == crime_type]
        values = d[[c for c, *_ in _CHART_LINES]].to_numpy(dtype=float)
        key = (d["month"].tolist(), d["period"].tolist(), d["in_data"].tolist(), np.isnan(values).tobytes())
        ylim = _chart_ylim(values)
        if fig is not None and ylim is not None and key == shared:
            for line, column in zip(lines, values.T):
                line.set_ydata(column)
            _chart_title(ax, crime_type)
            ax.set_ylim(*ylim)
        else:
            if fig is not None:
                plt.close(fig)
            fig, ax, lines = _chart_figure(d, crime_type, meta, values, ylim)
            shared = key if ylim is not None else None
        out.append(_png(fig, close=False))
    if fig is not None:
        plt.close(fig)
    return out


def _chart_ylim(values: np.ndarray) -> tuple[float, float] | None:
    """The y limits of a chart of ``values`` (rows = months, columns = lines); ``None`` without a finite value."""
    finite = values[np.isfinite(values)]
    return (max(0, finite.min() - 10), finite.max() + 25) if len(finite) else None


def _chart_title(ax, crime_type: str) -> None:
    ax.set_title(_safe_text(f"{crime_type}: monthly counts as an index of the before-period average"), fontsize=10,
                 loc="left", pad=16)


def _chart_figure(d: pd.DataFrame, crime_type: str, meta: dict[str, Any], values: np.ndarray,
                  ylim: tuple[float, float] | None):
    """The monthly chart of one crime type's rows ``d``: figure, axes and the lines (in ``_CHART_LINES`` order)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    d = d.copy()
    d["date"] = pd.to_datetime(d["month"] + "-01")
    fig, ax = plt.subplots(figsize=(9.2, 3.1))
    _png_canvas_class()(fig)  # a FastTextCanvas: plain text drawn a string at a time (see _agg_text)
    # shade periods; missing stretches are labelled, never drawn through
    for period, colour, label in (("before", "#dfe9f5", "before"), ("after", "#f9e1dc", "after"),
                                  ("after (trend)", "#fcf1ee", "later months")):
        sel = d[d["period"] == period]
        if len(sel):
            ax.axvspan(sel["date"].min(), sel["date"].max() + pd.offsets.MonthEnd(0), color=colour, zorder=0)
            ax.text(sel["date"].min(), 1.01, label, transform=ax.get_xaxis_transform(), fontsize=8, color="#444")
    gap = (~d["in_data"]).to_numpy()
    if gap.any():
        runs = np.flatnonzero(np.diff(np.r_[0, gap.astype(int), 0]))
        for start, stop in zip(runs[::2], runs[1::2]):
            x0, x1 = d["date"].iloc[start], d["date"].iloc[stop - 1] + pd.offsets.MonthEnd(0)
            ax.axvspan(x0, x1, facecolor="none", hatch="////", edgecolor="#d0d0d0", lw=0, zorder=0)
            if stop - start >= 3:
                ax.text(x0 + (x1 - x0) / 2, 0.5, "no data", transform=ax.get_xaxis_transform(), ha="center",
                        fontsize=8, color="#888")
    lines = []
    for col, label, colour, lw in _CHART_LINES:
        label = label.format(control=meta["control_label"], buffer=meta["buffer_m"])
        lines += ax.plot(d["date"], d[col], color=colour, lw=lw, label=_safe_text(label), marker="o", ms=2.5)
    ax.axhline(100, color="#999", lw=0.8, ls=":")
    ax.set_ylabel("index (before = 100)")
    _chart_title(ax, crime_type)
    ax.xaxis.set_major_locator(mdates.YearLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=8, frameon=False, loc="upper left", ncol=3)
    if ylim is not None:  # no finite index at all (too few records) leaves matplotlib's default limits
        ax.set_ylim(*ylim)
    return fig, ax, lines


def area_map(result: EvaluationResult) -> str:
    """Static map: districts, treated areas (numbered), buffers and any matched control cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import patheffects
    from matplotlib.patches import Patch

    g = result.geometries
    fig, ax = plt.subplots(figsize=(8.6, 8.0))
    _png_canvas_class()(fig)  # a FastTextCanvas (text drawn a string at a time, see _agg_text); before draw_idle is silenced
    # geopandas' .plot() asks for a redraw of the whole figure after each layer; savefig draws it once at the end
    fig.canvas.draw_idle = lambda *args, **kwargs: None
    result.districts.boundary.plot(ax=ax, color="#9aa5b1", lw=0.8)
    for _, row in result.districts.iterrows():
        p = row.geometry.representative_point()
        ax.text(p.x, p.y, _safe_text(row["area_name"]), fontsize=7, color="#52606d", ha="center", va="center", zorder=1,
                path_effects=[patheffects.withStroke(linewidth=2.5, foreground="white")])
    handles = []
    if result.meta["control"] == "matched" and (g["role"] == "matched_control").any():
        g[g["role"] == "matched_control"].plot(ax=ax, color=COLOURS["matched"], alpha=0.6, lw=0)
        handles.append(Patch(color=COLOURS["matched"], alpha=0.6, label="matched control cells"))
    g[g["role"] == "buffer"].plot(ax=ax, color=COLOURS["buffer"], alpha=0.55, lw=0)
    treated = g[g["role"] == "treated"]
    treated.plot(ax=ax, color=COLOURS["treated"], lw=0.3, edgecolor="#7b1d12")
    handles += [Patch(color=COLOURS["treated"], label="treated areas"),
                Patch(color=COLOURS["buffer"], alpha=0.55, label=f"{result.meta['buffer_m']:g} m buffers")]
    ax.set_axis_off()
    ax.set_aspect("equal")
    if len(treated) <= 200:  # every area labelled up to 200 (thousands are unreadable and take minutes to place)
        _label_areas(ax, fig, treated)
    # scale bar: 5 km
    x0, x1 = ax.get_xlim()
    y0, _ = ax.get_ylim()
    ax.plot([x0 + 1000, x0 + 6000], [y0 + 1000, y0 + 1000], color="#333", lw=2)
    ax.text(x0 + 3500, y0 + 1600, "5 km", ha="center", fontsize=7)
    ax.legend(handles=handles, loc="upper right", fontsize=8, frameon=True)
    return _png(fig)


def map_label(code: str, codes: list[str]) -> str:
    """The label of an area on the map: its code, or its position in the areas table when codes are long ids.

    >>> map_label("T02", ["T01", "T02"]), map_label("E07000103-all-crime-sq100_r017_c034", ["x" * 30, "E07000103-all-crime-sq100_r017_c034"])
    ('T02', '2')
    """
    return code if max(map(len, codes)) <= 8 else str(codes.index(code) + 1)


def _fix_transform(ax) -> None:
    """Fix ``ax``'s data -> pixel transform as drawing the figure would, without drawing (or laying out) anything.

    Of a draw, the transform depends on two steps only: the view limits
    (autoscaled from the plotted data) and, with an equal aspect, the axes
    box shrunk to it (``apply_aspect``, which reads the limits); the map has
    no layout engine or axes locator to move the axes.  A draw (even
    ``draw_without_rendering``) also lays out every text and turns the
    outlined district names into paths, only to throw them away.
    """
    ax.apply_aspect()


def _label_areas(ax, fig, treated) -> None:
    """Area codes beside each area, moved (with a leader line) so labels do not overlap each other."""
    _fix_transform(ax)
    to_px = ax.transData.transform
    placed: list[tuple[float, float, float, float]] = []
    offsets = [(5, 5), (5, -13), (-34, 5), (-34, -13), (5, 17), (-34, 17), (5, -25), (-34, -25),
               (18, 0), (-47, 0), (18, 28), (-47, 28), (18, -36), (-47, -36)]
    points_to_px = fig.dpi / 72.0
    codes = list(treated["area_code"])
    rows = sorted(treated.itertuples(), key=lambda r: (-r.geometry.centroid.y, r.geometry.centroid.x))
    for row in rows:
        c = row.geometry.centroid
        px, py = to_px((c.x, c.y))
        text = _safe_text(map_label(row.area_code, codes))
        w, h = (6.0 * len(text) + 4) * points_to_px, 10 * points_to_px
        choice = offsets[-1]
        for dx, dy in offsets:
            x0, y0 = px + dx * points_to_px, py + dy * points_to_px
            box = (x0, y0, x0 + w, y0 + h)
            if all(box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3] for b in placed):
                choice = (dx, dy)
                break
        x0, y0 = px + choice[0] * points_to_px, py + choice[1] * points_to_px
        placed.append((x0, y0, x0 + w, y0 + h))
        far = abs(choice[0]) > 6 or abs(choice[1]) > 14
        # an annotation whose point is in the axes is drawn; matplotlib checks that (a point-in-path test) each
        # time the label is measured or drawn, so a point well inside (more than 2 pixels) is marked as drawn
        # here; one nearer the edge is left to matplotlib's check
        inside = ax.bbox.x0 + 2 < px < ax.bbox.x1 - 2 and ax.bbox.y0 + 2 < py < ax.bbox.y1 - 2
        ax.annotate(text, (c.x, c.y), xytext=choice, textcoords="offset points", fontsize=6.5, color="#111",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8),
                    arrowprops=dict(arrowstyle="-", color="#555", lw=0.5) if far else None,
                    annotation_clip=False if inside else None)


# --------------------------------------------------------------------------- view model
def _key_rows(result: EvaluationResult) -> list[dict[str, str]]:
    s = result.summary
    rows = []
    for f in result.findings:
        ct = f["crime_type"]
        m = s[s["crime_type"] == ct].set_index("measure")

        def est(name: str) -> pd.Series | None:
            return m.loc[name] if name in m.index else None

        did = est("did_calibrated_pct_change")
        if did is None or not np.isfinite(did["low"]):
            did = est("did_pct_change")
        panel, rtm, buf = est("panel_pct_change"), est("rtm_rate_ratio_pct"), est("buffer_calibrated_pct_vs_control")
        if buf is None or not np.isfinite(buf["low"]):
            buf = est("buffer_pct_vs_control")
        harm = est("harm_pct_change")
        rows.append({
            "crime_type": ct,
            "before": fmt_int(f["treated_before"]), "after": fmt_int(f["treated_after"]),
            "raw": fmt_pct(f["raw_change_pct"]), "control": fmt_pct(f["control_change_pct"]),
            "did": fmt_pct(did["estimate"]) if did is not None else "–",
            "did_ci": fmt_ci(did["low"], did["high"]) if did is not None else "",
            "did_p": fmt_p(did["p_value"]) if did is not None else "–",
            "panel": fmt_pct(panel["estimate"]) if panel is not None else "–",
            "panel_ci": fmt_ci(panel["low"], panel["high"]) if panel is not None else "",
            "rtm": fmt_pct(rtm["estimate"]) if rtm is not None else "–",
            "rtm_ci": fmt_ci(rtm["low"], rtm["high"]) if rtm is not None else "",
            "buffer": fmt_pct(buf["estimate"]) if buf is not None else "–",
            "buffer_ci": fmt_ci(buf["low"], buf["high"]) if buf is not None else "",
            "harm": fmt_pct(harm["estimate"]) if harm is not None else "not weighted",
            "harm_ci": fmt_ci(harm["low"], harm["high"]) if harm is not None else "",
            "verdict": VERDICT_LABEL.get(f["overall_verdict"], f["overall_verdict"]),
            "verdict_class": VERDICT_CLASS.get(f["overall_verdict"], "neutral"),
        })
    return rows


def _area_rows(result: EvaluationResult, crime_type: str) -> list[dict[str, str]]:
    a = result.areas_table[result.areas_table["crime_type"] == crime_type]
    pooled = next(f["overall_verdict"] for f in result.findings if f["crime_type"] == crime_type)
    classes = dict(VERDICT_CLASS, fell="warn") if pooled == "reduction not attributable" else VERDICT_CLASS
    rows = []
    codes = list(a["area_code"])
    for _, r in a.iterrows():
        label = map_label(r["area_code"], codes)
        rows.append({
            "code": r["area_code"] if label == r["area_code"] else f"{label}. {r['area_code']}",
            "name": r["area_name"], "district": r["district_name"],
            "km2": f"{r['area_km2']:.2f}",
            "before": fmt_int(r["treated_before"]), "after": fmt_int(r["treated_after"]),
            "raw": fmt_pct(r["raw_change_pct"]),
            "did": fmt_pct(r["pct_change_vs_control"]), "did_ci": fmt_ci(r["pct_low"], r["pct_high"]),
            "verdict": r["verdict"], "verdict_class": classes.get(r["verdict"], "neutral"),
            "buffer": f"{fmt_int(r['buffer_before'])} → {fmt_int(r['buffer_after'])}",
            "buffer_rel": fmt_pct(r["buffer_pct_vs_control"]),
        })
    return rows


def build_view(result: EvaluationResult) -> dict[str, Any]:
    """Everything the template shows, as display strings (no statistics)."""
    meta = result.meta
    primary = result.findings[0]
    s = result.summary
    auto = [{"key": k.removeprefix("evaluation."), "value": _auto_value(v[0]) if isinstance(v, (tuple, list)) and len(v) == 2 else _auto_value(v),
             "reason": v[1] if isinstance(v, (tuple, list)) and len(v) == 2 else ""}
            for k, v in meta.get("auto", {}).items()]
    findings = []
    charts = _monthly_charts(result.monthly, [f["crime_type"] for f in result.findings], meta)
    for f, chart in zip(result.findings, charts):
        findings.append({**f, "verdict_class": VERDICT_CLASS.get(f["overall_verdict"], "neutral"),
                         "raw_pct": fmt_pct(f["raw_change_pct"]), "control_pct": fmt_pct(f["control_change_pct"]),
                         "chart": chart})
    prim_rows = s[s["crime_type"] == primary["crime_type"]].set_index("measure")
    cost_row = prim_rows.loc["cost_per_crime_prevented"] if "cost_per_crime_prevented" in prim_rows.index else None
    return {
        "title": f"{meta['programme']}: did the patrols reduce crime?" if meta.get("programme") else
                 "Did the patrols reduce crime?",
        "programme": meta.get("programme") or "",
        "published_figure": meta.get("published_figure") or "",
        "decision_table": [tuple(r) for r in meta.get("decision_table", [])],
        "config_notes": meta.get("config_notes") or "",
        "force": meta.get("force_name", ""),
        "generated": _dt.date.today().strftime("%d %B %Y"),
        "illustrative": meta["illustrative"],
        "source_description": meta["source_description"],
        "real_areas_hint": REAL_AREAS_HINT,
        "n_areas": meta["n_areas"],
        "headline": result.headline,
        "primary": findings[0],
        "findings": findings,
        "before": human_period(meta["before"]), "after": human_period(meta["after"]),
        "before_raw": meta["before"], "after_raw": meta["after"],
        "selection_period": human_period(meta["selection_period"]) if meta.get("selection_period") else "",
        "control_label": meta["control_label"], "control": meta["control"],
        "buffer_m": f"{meta['buffer_m']:g}",
        "pool_cell_m": f"{meta['pool_cell_m']:g}",
        "months_present": _ranges(meta["months_present"]),
        "months_missing": _ranges(meta["months_missing"]) if meta["months_missing"] else "",
        "panel_months": len(meta["panel_months"]),
        "funding": fmt_money(meta["funding_gbp"]) if meta.get("funding_gbp") else "",
        "funding_period": fmt_money(meta["funding_period"]) if meta.get("funding_period") else "",
        "cost_row": None if cost_row is None else {"estimate": fmt_money(cost_row["estimate"]), "low": fmt_money(cost_row["low"]),
                                                     "high": fmt_money(cost_row["high"]), "status": cost_row["verdict"]},
        "key_rows": _key_rows(result),
        "area_rows": _area_rows(result, primary["crime_type"]),
        "area_verdicts": result.area_verdicts.get(primary["crime_type"], {}),
        "map": area_map(result),
        "crime_types": meta["crime_types"],
        "harm_version": meta.get("harm_version", ""),
        "treated_km2": f"{meta['treated_km2']:.1f}", "buffer_km2": f"{meta['buffer_km2']:.1f}",
        "notes": meta.get("notes", []),
        "auto": auto,
        "files": [
            ("evaluation_summary.csv", "every figure in this report, one row per crime type and measure"),
            ("evaluation_areas.csv", "per-area counts, changes, difference-in-differences, displacement and harm"),
            ("evaluation_monthly.csv", "monthly counts in treated areas, buffers and control (gaps kept)"),
            ("treated_areas.gpkg", "treated areas, buffers and control areas for QGIS (column role)"),
        ],
    }


def _ranges(months) -> str:
    """'Jan 2021–Jan 2022, Jan–Apr 2024' for a list of months."""
    return ", ".join(human_period(r) for r in month_ranges(months).split(", ")) if months else "none"


def render_evaluation_report(result: EvaluationResult) -> str:
    """The self-contained HTML report (Jinja2, autoescaped).

    Parameters
    ----------
    result : EvaluationResult
        A finished evaluation (:func:`hotspots.evaluation.evaluate_areas`);
        ``meta`` may add ``force_name`` and ``auto`` (the run's automatic
        choices, name -> (value, reason)) for the report's header and method notes.

    Returns
    -------
    str
        The HTML page (no scripts, no network; charts and map inline as PNG).
    """
    import jinja2

    from hotspots._parallel import collector_paused

    text = (resources.files("hotspots") / "templates" / "evaluation.html.j2").read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = fmt_pct
    with collector_paused():  # the charts and the map: see collector_paused
        view = build_view(result)
    return env.from_string(text).render(**view)


__all__ = ["render_evaluation_report", "build_view", "monthly_chart", "area_map", "fmt_pct", "fmt_ci", "map_label"]
