"""A faster way to draw plain text on our own Agg figures (no global change to matplotlib).

matplotlib 3.11 draws a string glyph by glyph from Python (``font._layout``,
then per glyph a numpy transform, a FreeType load and render and a
``draw_text_image``), where 3.10 laid the string out and rasterised it in C++
(``FT2Font.set_text`` + ``draw_glyphs_to_bitmap``) and drew it with one
``draw_text_image``.  A printable map spent about half its savefig in that.

A figure given a :class:`FastTextCanvas` (``FastTextCanvas(fig)``) is drawn
by a :class:`FastTextRenderer`, which draws plain text (not mathtext, not TeX)
the 3.10 way; no other figure is affected.  The glyphs and their layout are
the same (``set_text``, which 3.11 itself uses to measure text); the string's
origin is put on a whole pixel (glyphs keep their sub-pixel places within the
string) and rotated text is turned as one bitmap, so edge pixels of the text
differ by some levels of grey: the look of matplotlib <= 3.10.  The bitmap of
a string is made when the string is measured (the same ``set_text``) and
reused by the draw, so its glyphs are loaded once, not twice.  Anything
unusual -- mathtext, font features or a language set on the Text,
right-to-left, combining or formatting characters, a matplotlib without these
methods, any error -- is measured and drawn by matplotlib's own code: never
worse than the default, only slower.
"""

from __future__ import annotations

import math
import threading
import unicodedata
from typing import Any

import matplotlib as mpl
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg

__all__ = ["FastTextCanvas", "FastTextRenderer"]

try:  # 3.9+: the hinting flag for the current rcParams
    from matplotlib.backends.backend_agg import get_hinting_flag as _hinting_flag
except ImportError:  # pragma: no cover - a matplotlib without it draws the default way
    _hinting_flag = None

_FT2_METHODS = ("set_text", "draw_glyphs_to_bitmap", "get_bitmap_offset", "get_descent", "get_image")
_BIDI_COMPLEX = frozenset({"R", "AL", "AN", "RLE", "RLO", "LRE", "LRO", "PDF", "RLI", "LRI", "FSI", "PDI"})
_plain_cache: dict[str, bool] = {}
#: (string, size in points, dpi, hinting flags, id of the font) -> (font, width, height, descent, antialiased bitmap, its offset),
#: in 26.6 units as FT2Font gives them.  A string's layout costs ~25 microseconds a character (FreeType loads and
#: hints each glyph) and maps repeat theirs (legend, numbers, headings): measured once per process.  An entry is
#: used only for the very font object it was made with (``get_font`` hands out one object per font file and
#: settings; the entry holds it, so its id is never reused); emptied past _MEASURED_LIMIT entries.
_MEASURED: dict[tuple, tuple] = {}
_MEASURED_LIMIT = 4096


def _plain(s: str) -> bool:
    """True for a string the simple left-to-right layout draws as shaping would: no right-to-left,
    combining or formatting characters (those go through matplotlib's own path)."""
    if s.isascii():
        return True
    known = _plain_cache.get(s)
    if known is None:
        known = not any(unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Mc", "Cf")
                        or unicodedata.bidirectional(c) in _BIDI_COMPLEX for c in s)
        if len(_plain_cache) < 4096:
            _plain_cache[s] = known
    return known


class FastTextRenderer(RendererAgg):
    """A RendererAgg drawing plain text with one C++ rasterisation per string (matplotlib 3.10's method).

    ``fast_calls`` and ``fallback_calls`` count the strings drawn each way.
    """

    def __init__(self, width, height, dpi):
        super().__init__(width, height, dpi)
        self.fast_calls = 0
        self.fallback_calls = 0
        # string -> its antialiased bitmap, made when the string is measured (a Text measures each of its
        # lines before drawing it): drawing it then loads no glyph again.  Checked against the font object,
        # its size and the hinting flag; small, and dropped with the renderer.
        self._bitmaps: dict[tuple, tuple] = {}
        # font properties and the settings that choose a font file -> the FT2Font get_font gave for them
        self._fonts: dict[tuple, Any] = {}

    def _prepare_font(self, font_prop):
        """``RendererAgg._prepare_font`` (the FT2Font of *font_prop*, cleared, at its size), its lookup kept.

        matplotlib finds the font file (``findfont``: a copy of the properties
        per family, eleven rcParams, an environment variable) and the FT2Font
        object (``get_font``) on every measure and every draw of a string,
        about a third of a plain string's drawing.  This keeps the object
        ``get_font`` gave for the same properties, rcParams (those the lookup
        reads, :func:`_font_lookup_rc`) and thread, for the renderer's life;
        the font is cleared and sized as matplotlib does.  Unhashable properties: matplotlib's lookup.
        """
        try:
            key = (tuple(font_prop.__dict__.items()), _font_lookup_rc())
            font = self._fonts.get(key)
        except Exception:  # noqa: BLE001 - properties that will not hash: matplotlib's own lookup
            return super()._prepare_font(font_prop)
        if font is None:
            font = super()._prepare_font(font_prop)  # clears and sizes it too
            if len(self._fonts) >= 256:
                self._fonts.clear()
            self._fonts[key] = font
            return font
        font.clear()
        font.set_size(font_prop.get_size_in_points(), self.dpi)
        return font

    def get_text_width_height_descent(self, s, prop, ismath):
        # docstring inherited
        if ismath or _hinting_flag is None or not isinstance(s, str) or not _plain(s):
            return super().get_text_width_height_descent(s, prop, ismath)
        try:
            font = self._prepare_font(prop)
            flags = _hinting_flag()
            size = prop.get_size_in_points()
            key = (s, size, self.dpi, flags, id(font))
            known = _MEASURED.get(key)
            if known is not None and known[0] is font:  # measured before, on this or an earlier figure
                _, w, h, d, image, offset = known
            else:
                # RendererAgg's own measurement (3.9-3.11: set_text, get_width_height, get_descent) ...
                font.set_text(s, 0.0, flags=flags)
                w, h = font.get_width_height()
                d = font.get_descent()
                # ... and, from the same layout, the bitmap draw_text will want
                font.draw_glyphs_to_bitmap(antialiased=True)
                image, offset = font.get_image().copy(), font.get_bitmap_offset()
                if len(_MEASURED) >= _MEASURED_LIMIT:
                    _MEASURED.clear()
                _MEASURED[key] = (font, w, h, d, image, offset)
            if len(self._bitmaps) >= 2048:
                self._bitmaps.clear()
            self._bitmaps[(s, size, flags, id(font))] = (font, image, offset, d)
        except Exception:  # noqa: BLE001 - matplotlib's own measurement
            return super().get_text_width_height_descent(s, prop, ismath)
        return w / 64.0, h / 64.0, d / 64.0

    def _get_font_height_metrics(self, prop):
        """The line metrics ``Text._get_layout`` reads from the font's tables, looked up once per font and size.

        matplotlib (3.11) asks the renderer first and, given ``None``, finds
        the font and reads its ``OS/2`` (or ``hhea``) and ``head`` tables for
        every layout, twice per string with a box: this gives the numbers of
        that same computation (:func:`_font_height_metrics`), kept by the font
        properties, the dpi and the font rcParams that choose the font file.
        """
        try:
            key = (tuple(prop.__dict__.items()), self.dpi, _font_rc())
            known = _HEIGHTS.get(key)
        except Exception:  # noqa: BLE001 - unhashable properties: matplotlib's own lookup
            return None, None, None
        if known is None:
            known = _font_height_metrics(prop, self.dpi)
            if len(_HEIGHTS) >= 256:
                _HEIGHTS.clear()
            _HEIGHTS[key] = known
        return known

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        # docstring inherited
        if not ismath and self._draw_text_whole(gc, x, y, s, prop, angle, mtext):
            self.fast_calls += 1
            return None
        self.fallback_calls += 1
        return super().draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    def _draw_text_whole(self, gc, x, y, s, prop, angle, mtext) -> bool:
        """Draw *s* as one bitmap; False (nothing drawn) when it is a case for the default path."""
        if _hinting_flag is None or not isinstance(s, str) or not _plain(s):
            return False
        if mtext is not None and (_get(mtext, "get_fontfeatures") is not None
                                  or _get(mtext, "get_language") is not None):
            return False
        try:
            font = self._prepare_font(prop)
            if not all(hasattr(font, m) for m in _FT2_METHODS):
                return False
            flags = _hinting_flag()
            known = self._bitmaps.get((s, prop.get_size_in_points(), flags, id(font)))
            if known is not None and known[0] is font and gc.get_antialiased():
                _, image, (xo, yo), d = known
            else:
                # angle 0 here: the bitmap is rotated (in raster space) by draw_text_image
                font.set_text(s, 0, flags=flags)
                font.draw_glyphs_to_bitmap(antialiased=gc.get_antialiased())
                image = font.get_image()
                d = font.get_descent()
                xo, yo = font.get_bitmap_offset()
            d /= 64.0
            xo /= 64.0
            yo /= 64.0
            # the descent, turned with the text
            xd = d * math.sin(math.radians(angle))
            yd = d * math.cos(math.radians(angle))
            x = round(x + xo + xd)
            y = round(y + yo + yd)
            if image.size:
                self._renderer.draw_text_image(image, x, y + 1, angle, gc)
        except Exception:  # noqa: BLE001 - an unexpected font or API: matplotlib's own path draws it
            return False
        return True


#: (font properties, dpi, font rcParams) -> (min ascent, min descent, line gap) in pixels (see _font_height_metrics)
_HEIGHTS: dict[tuple, tuple] = {}


def _font_rc() -> tuple:
    """The rcParams matplotlib's ``findfont`` reads besides the font properties (its own cache key has them)."""
    import matplotlib as mpl

    return tuple(tuple(mpl.rcParams[key]) for key in ("font.serif", "font.sans-serif", "font.cursive",
                                                       "font.fantasy", "font.monospace"))


#: the rcParams ``findfont`` and ``get_font`` (matplotlib 3.11) read besides the font properties
_LOOKUP_RC = tuple(f"font.{key}" for key in ("family", "style", "variant", "weight", "stretch", "size", "serif",
                                             "sans-serif", "cursive", "fantasy", "monospace", "enable_last_resort"))
_LOOKUP_RC += ("text.kerning_factor", "text.hinting_factor")
_rc_value = dict.__getitem__  # an rcParam as stored (RcParams.__getitem__ checks for deprecated names first)


def _font_lookup_rc() -> tuple:
    """What besides the font properties chooses the FT2Font ``RendererAgg._prepare_font`` gets.

    The rcParams ``findfont`` and ``get_font`` read (lists as tuples, as
    ``findfont`` keys its cache) and the thread (``get_font`` gives each
    thread its own object).  Not ``MPL_IGNORE_SYSTEM_FONTS``: reading the
    environment cost more than the rest, and a renderer (a figure) does not
    see it change.
    """
    rc = mpl.rcParams
    values = [_rc_value(rc, key) for key in _LOOKUP_RC]
    return tuple([tuple(v) if type(v) is list else v for v in values]), threading.get_ident()


def _font_height_metrics(prop, dpi: float) -> tuple:
    """``Text._get_layout``'s font metrics (min ascent, min descent, line gap; matplotlib 3.11), the same steps.

    (None, None, None) for a font without the tables: ``Text._get_layout`` then measures the text itself.
    """
    from matplotlib.font_manager import fontManager, get_font

    font = get_font(fontManager._find_fonts_by_props(prop))
    possible = [("OS/2", "sTypoLineGap", "sTypoAscender", "sTypoDescender"), ("hhea", "lineGap", "ascent", "descent")]
    for table_name, linegap_key, ascent_key, descent_key in possible:
        table = font.get_sfnt_table(table_name)
        if table is None:
            continue
        fontsize = prop.get_size_in_points()
        units_per_em = font.get_sfnt_table("head")["unitsPerEm"]
        scale = 1 / units_per_em * fontsize * dpi / 72
        return table[ascent_key] * scale, -table[descent_key] * scale, table[linegap_key] * scale
    return None, None, None


def _get(obj: Any, name: str) -> Any:
    getter = getattr(obj, name, None)
    return getter() if callable(getter) else None


class FastTextCanvas(FigureCanvasAgg):
    """An Agg canvas whose renderer is a :class:`FastTextRenderer`.

    ``FastTextCanvas(fig)`` gives *fig* this canvas for good (later ``savefig``
    calls to PNG and ``fig.canvas.get_renderer()`` use it).  A pyplot figure
    still closes with ``plt.close(fig)``: its manager keeps the original
    canvas, whose ``figure`` is still *fig*.
    """

    @classmethod
    def save(cls, fig, fname, **kwargs) -> FastTextCanvas:
        """``fig.savefig(fname, **kwargs)`` for a raster (Agg) format, drawn through a FastTextCanvas.

        The figure's own canvas is put back afterwards.  Returns the canvas used
        (its ``renderer`` counts the strings drawn each way).
        """
        old = fig.canvas
        canvas = cls(fig)
        try:
            fig.savefig(fname, **kwargs)
        finally:
            fig.set_canvas(old)
        return canvas

    def get_renderer(self):
        w, h = self.get_width_height(physical=True)
        key = w, h, self.figure.dpi
        if self._lastKey != key or not isinstance(getattr(self, "renderer", None), FastTextRenderer):
            self.renderer = FastTextRenderer(w, h, self.figure.dpi)
            self._lastKey = key
        return self.renderer

