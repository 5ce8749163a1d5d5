"""The evaluation report's charts drawn the faster way are the PNGs the plain way gave, byte for byte.

The reference is the chart code as it was (one new figure per crime type,
every axis asking its own locator and formatter for its ticks at each
layout step), kept here verbatim.
"""

from __future__ import annotations

import base64
import contextlib
import io

import numpy as np
import pandas as pd
import pytest


def _pixels(b64: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGBA"))


@pytest.fixture(scope="module")
def evaluation_result():
    from hotspots.evaluation._analysis import _evaluate_areas
    from hotspots.evaluation.areas import TreatedAreas
    from hotspots.geo.aggregate import Period
    from hotspots.months import month_range
    from tests.test_evaluate import AFTER, BEFORE, GROUPS, MONTHS, _districts, _treated, synthetic_points

    districts, treated = _districts(), _treated()
    return _evaluate_areas(
        synthetic_points(treated, districts), TreatedAreas(areas=treated, source="file", description="squares",
                                                           illustrative=False, selected_on_counts=False),
        districts, months_present=MONTHS, before=Period("b", tuple(BEFORE)), after=Period("a", tuple(AFTER)),
        crime_types=GROUPS, all_months=month_range("2023-01", "2025-04"))


@pytest.fixture()
def plain_png(monkeypatch):
    """``_png`` without the fixed ticks: each axis runs its own locator and formatter whenever asked."""
    from hotspots.render import evaluation_report as er

    monkeypatch.setattr(er, "_fixed_ticks", lambda fig: contextlib.nullcontext())
    return er


def _old_monthly_chart(er, monthly: pd.DataFrame, crime_type: str, meta: dict) -> str:
    """``monthly_chart`` as it was (a figure of its own), verbatim."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    COLOURS, _safe_text = er.COLOURS, er._safe_text
    d = monthly[monthly["crime_type"] == crime_type].copy()
    d["date"] = pd.to_datetime(d["month"] + "-01")
    fig, ax = plt.subplots(figsize=(9.2, 3.1))
    er._png_canvas_class()(fig)
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
    for col, label, colour, lw in (
        ("control_index", f"control: {meta['control_label']}", COLOURS["control"], 1.6),
        ("buffer_index", f"{meta['buffer_m']:g} m buffers", COLOURS["buffer"], 1.4),
        ("treated_index", "treated areas", COLOURS["treated"], 2.2),
    ):
        ax.plot(d["date"], d[col], color=colour, lw=lw, label=_safe_text(label), marker="o", ms=2.5)
    ax.axhline(100, color="#999", lw=0.8, ls=":")
    ax.set_ylabel("index (before = 100)")
    ax.set_title(_safe_text(f"{crime_type}: monthly counts as an index of the before-period average"), fontsize=10,
                 loc="left", pad=16)
    ax.xaxis.set_major_locator(mdates.YearLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=8, frameon=False, loc="upper left", ncol=3)
    values = d[["treated_index", "buffer_index", "control_index"]].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if len(values):
        ax.set_ylim(max(0, values.min() - 10), values.max() + 25)
    return er._png(fig)


def _variants(monthly: pd.DataFrame) -> pd.DataFrame:
    """``monthly`` plus crime types a shared figure must not be used for: another gap, no finite index at all,
    and a series scaled up (other y ticks and tick-label widths) on the shared months."""
    cts = list(dict.fromkeys(monthly["crime_type"]))
    first = monthly[monthly["crime_type"] == cts[0]]
    gap = first.assign(crime_type="other gap")
    gap.loc[gap.index[3:6], ["in_data"]] = False
    gap.loc[gap.index[3:6], ["treated_index", "buffer_index", "control_index"]] = np.nan
    empty = first.assign(crime_type="no index", treated_index=np.nan, buffer_index=np.nan, control_index=np.nan)
    big = first.assign(crime_type="big", treated_index=first["treated_index"] * 40)
    return pd.concat([monthly, big, first.assign(crime_type="again"), gap, empty, first.assign(crime_type="after")],
                     ignore_index=True)


def test_monthly_charts_are_the_charts_drawn_one_figure_each(evaluation_result, plain_png):
    er, res = plain_png, evaluation_result
    monthly = _variants(res.monthly)
    cts = list(dict.fromkeys(monthly["crime_type"]))
    old = [_old_monthly_chart(er, monthly, ct, res.meta) for ct in cts]
    assert len(set(old)) == len(old)  # (all different charts)
    for got in (er._monthly_charts(monthly, cts, res.meta), [er.monthly_chart(monthly, ct, res.meta) for ct in cts]):
        assert got == old


def test_fixed_ticks_give_the_same_pngs(evaluation_result):
    """The report's charts and map with the ticks fixed once per PNG are those each axis's own ticker gave."""
    from hotspots.render import evaluation_report as er

    res = evaluation_result
    monthly = _variants(res.monthly)
    cts = list(dict.fromkeys(monthly["crime_type"]))
    fast = er._monthly_charts(monthly, cts, res.meta) + [er.area_map(res)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(er, "_fixed_ticks", lambda fig: contextlib.nullcontext())
        plain = [_old_monthly_chart(er, monthly, ct, res.meta) for ct in cts] + [er.area_map(res)]
    assert fast == plain


def test_fixed_ticks_leave_offset_axes_and_restore_tickers():
    """An axis whose labels need an offset keeps its own ticker; every ticker is put back after the block."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hotspots.render import evaluation_report as er

    def figure():
        fig, ax = plt.subplots(figsize=(4, 3))
        er._png_canvas_class()(fig)
        ax.plot([0, 1, 2], [1e6 + 1, 1e6 + 3, 1e6 + 2])
        return fig, ax

    fig, ax = figure()
    x_major, y_major = ax.xaxis.major, ax.yaxis.major
    with er._fixed_ticks(fig):
        assert ax.xaxis.major is not x_major and ax.yaxis.major is y_major  # (y: labels 1, 2, 3 with offset +1e6)
        assert list(ax.xaxis.major.locator()) == list(x_major.locator())
    assert ax.xaxis.major is x_major and ax.yaxis.major is y_major
    fast = er._png(fig)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(er, "_fixed_ticks", lambda fig: contextlib.nullcontext())
        plain = er._png(figure()[0])
    assert fast == plain and np.array_equal(_pixels(fast), _pixels(plain))


def test_area_map_labels_marked_inside_are_those_matplotlib_draws(evaluation_result, monkeypatch):
    """Labels whose point is well inside the axes skip matplotlib's point-in-axes check: the same map, and each
    label so marked is one that check would draw."""
    from matplotlib.axes import Axes

    from hotspots.render import evaluation_report as er

    fast = er.area_map(evaluation_result)
    annotate, marked = Axes.annotate, []

    def plain_annotate(self, text, xy, *args, annotation_clip=None, **kwargs):
        a = annotate(self, text, xy, *args, **kwargs)  # matplotlib's own check, as before
        if annotation_clip is False:
            marked.append(a)
        return a

    monkeypatch.setattr(Axes, "annotate", plain_annotate)
    assert er.area_map(evaluation_result) == fast
    assert marked and all(a._check_xy() for a in marked)


def test_png_canvas_keeps_its_renderers_and_the_same_pixels(evaluation_result, monkeypatch):
    """A chart drawn again on its kept renderers (see _PngCanvas.get_renderer) is the PNG fresh renderers give."""
    from hotspots.render import evaluation_report as er
    from hotspots.render._agg_text import FastTextCanvas

    res = evaluation_result
    monthly = _variants(res.monthly)
    cts = list(dict.fromkeys(monthly["crime_type"]))
    made = []
    canvas_class = er._png_canvas_class()
    original = FastTextCanvas.get_renderer

    def counted(self):
        before = getattr(self, "renderer", None)
        renderer = original(self)
        if renderer is not before:
            made.append(renderer)
        return renderer

    monkeypatch.setattr(FastTextCanvas, "get_renderer", counted)
    kept = er._monthly_charts(monthly, cts, res.meta)
    n_kept = len(made)

    def fresh(self):  # no renderer kept between sizes: each change of size makes a new one
        self.__dict__.pop("_kept_renderers", None)
        return counted(self)

    monkeypatch.setattr(canvas_class, "get_renderer", fresh)
    made.clear()
    assert er._monthly_charts(monthly, cts, res.meta) == kept
    assert n_kept < len(made)  # (the kept renderers were used: fewer made)
