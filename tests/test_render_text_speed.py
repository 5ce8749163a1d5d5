"""The fast text path of our own Agg figures (hotspots.render._agg_text) against matplotlib's own drawing."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backends.backend_agg import RendererAgg  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402
from PIL import Image  # noqa: E402

from hotspots.render import _agg_text  # noqa: E402
from hotspots.render._agg_text import FastTextCanvas, FastTextRenderer  # noqa: E402

#: Measured on the figure below (matplotlib 3.11.2): 2.0% of the pixels differ (all in text), mean |difference|
#: 0.79 of 255 per channel, and the differences sum to 0.17 of the text's ink (255 - darkest channel, summed).
#: The same strings drawn one pixel off: mean 1.43-1.66, ink ratio 0.31-0.36 (see the test below).
MAX_DIFFERING = 0.03
MAX_MEAN_ABS = 1.1
MAX_INK_RATIO = 0.25


def _figure(texts: bool = True):
    fig = plt.figure(figsize=(6, 4), dpi=130)
    ax = fig.add_axes([0.1, 0.2, 0.85, 0.7])
    ax.plot([0, 1, 2], [1, 3, 2])
    ax.set_xticks([0, 0.5, 1, 1.5, 2], ["zero", "half…", "one ↑", "1½ ©", "two"], rotation=35)
    ax.set_title("Title bold", fontweight="bold", fontsize=13)
    ax.text(0.5, 2.5, "italic text, small", fontstyle="italic", fontsize=6)
    ax.text(1.2, 1.5, "halo label", fontsize=8,
            bbox={"boxstyle": "round,pad=0.05", "fc": "white", "ec": "none", "alpha": 0.75})
    ax.text(0.2, 1.2, "vertical 90", rotation=90, fontsize=9)
    ax.text(1.5, 2.8, "math $x^2$", fontsize=9)
    fig.text(0.01, 0.97, "N ↑ · contains OS data © Crown copyright\nsecond line", fontsize=8.5, va="top",
             color="#333")
    return fig


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data))).astype(int)


def _close_enough(fast: np.ndarray, default: np.ndarray) -> bool:
    diff = np.abs(fast - default)
    ink = (255 - default[..., :3].min(axis=-1)).sum()
    return bool((diff.max(axis=-1) > 0).mean() <= MAX_DIFFERING and diff.mean() < MAX_MEAN_ABS
                and diff.max(axis=-1).sum() / ink < MAX_INK_RATIO)


def _default_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130)
    plt.close(fig)
    return buf.getvalue()


def _fast_png(fig):
    buf = io.BytesIO()
    canvas = FastTextCanvas.save(fig, buf, format="png", dpi=130)
    plt.close(fig)
    return buf.getvalue(), canvas.renderer


def test_fast_text_looks_like_matplotlib_and_is_used():
    default = _pixels(_default_png(_figure()))
    data, renderer = _fast_png(_figure())
    fast = _pixels(data)
    assert fast.shape == default.shape
    assert (fast != default).any() and _close_enough(fast, default)  # text pixels only: nearly identical
    # every string but the mathtext one drew the fast way (title, ticks, texts, the two lines)
    assert renderer.fast_calls >= 20 and renderer.fallback_calls == 1


@pytest.mark.parametrize("dx, dy", [(0, 1), (1, 0), (0, -1), (-1, 0)])
def test_a_string_drawn_off_by_a_pixel_fails_the_bound(monkeypatch, dx, dy):
    """The bounds above catch a misplaced string: the same fast path, one pixel off."""
    default = _pixels(_default_png(_figure()))
    real = FastTextRenderer._draw_text_whole

    def moved(self, gc, x, y, *args):
        return real(self, gc, x + dx, y + dy, *args)

    monkeypatch.setattr(FastTextRenderer, "_draw_text_whole", moved)
    assert not _close_enough(_pixels(_fast_png(_figure())[0]), default)


def test_measurement_is_matplotlibs():
    """Layout (wrapping, alignment, tight boxes) sees exactly the numbers RendererAgg gives."""
    fast, plain = FastTextRenderer(300, 200, 130), RendererAgg(300, 200, 130)
    for s in ["", " ", "Patrol areas (ranked)", "1,949 in the period…", "N ↑", "© Crown", "lp", "WAVE Ty",
              "שלום", "e\u0301", "x\u200dy"]:
        for prop in [FontProperties(size=8), FontProperties(size=5.5, weight="bold"),
                     FontProperties(size=14, style="italic"), FontProperties(family="DejaVu Sans", size=7)]:
            assert fast.get_text_width_height_descent(s, prop, False) == \
                plain.get_text_width_height_descent(s, prop, False), (s, prop)
    prop = FontProperties(size=9)
    assert fast.get_text_width_height_descent("$x^2$", prop, True) == \
        plain.get_text_width_height_descent("$x^2$", prop, True)


def test_reused_bitmap_is_the_one_drawn_afresh(monkeypatch):
    """The bitmap kept from measuring a string draws the same pixels as one made at draw time."""
    cached = _fast_png(_figure())[0]
    monkeypatch.setattr(FastTextRenderer, "get_text_width_height_descent", RendererAgg.get_text_width_height_descent)
    fresh, renderer = _fast_png(_figure())
    assert not renderer._bitmaps and renderer.fast_calls >= 20
    assert np.array_equal(_pixels(cached), _pixels(fresh))


def test_non_antialiased_text_is_drawn_afresh():
    with matplotlib.rc_context({"text.antialiased": False}):
        default = _pixels(_default_png(_figure()))
        data, renderer = _fast_png(_figure())
    assert renderer.fast_calls >= 20 and _close_enough(_pixels(data), default)


@pytest.mark.parametrize("breakage", ["method", "error"])
def test_without_the_method_everything_is_matplotlibs_own(monkeypatch, breakage):
    """A matplotlib without these FT2Font methods, or any error in the fast path: the default drawing, exactly."""
    default = _default_png(_figure())
    if breakage == "method":
        monkeypatch.setattr(_agg_text, "_FT2_METHODS", _agg_text._FT2_METHODS + ("no_such_method",))
    else:
        def broken():
            raise RuntimeError("no hinting here")
        monkeypatch.setattr(_agg_text, "_hinting_flag", broken)
    data, renderer = _fast_png(_figure())
    assert renderer.fast_calls == 0 and renderer.fallback_calls > 0
    assert np.array_equal(_pixels(data), _pixels(default))


def test_complex_scripts_go_to_matplotlib():
    assert _agg_text._plain("Hatfield · ↑ © …")
    assert not _agg_text._plain("שלום") and not _agg_text._plain("مرحبا")
    assert not _agg_text._plain("e\u0301") and not _agg_text._plain("x\u200dy")


def test_pyplot_figure_keeps_closing():
    before = set(plt.get_fignums())
    fig = plt.figure()
    canvas = FastTextCanvas(fig)
    assert fig.canvas is canvas and isinstance(canvas.get_renderer(), FastTextRenderer)
    fig.text(0.1, 0.5, "hello")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    assert set(plt.get_fignums()) == before
    assert buf.getvalue()[:4] == b"\x89PNG"


def test_save_puts_the_canvas_back():
    fig = plt.figure()
    old = fig.canvas
    FastTextCanvas.save(fig, io.BytesIO(), format="png")
    assert fig.canvas is old
    plt.close(fig)
