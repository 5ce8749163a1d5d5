"""The printable map's shortcuts (issue 18, second round) against the long way: the same pixels, the same choices.

* the PNG encoder (hotspots.render._png) against Pillow's, decoded pixel for pixel, and the map PNG
  against matplotlib's ``savefig``;
* text measured once per process (hotspots.render._agg_text) against RendererAgg's measure, and a figure drawn
  with measures made by earlier figures against one drawn cold;
"""

from __future__ import annotations

import io
import struct
import zlib

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from hotspots.render import map_png
from hotspots.render._png import canvas_png, png_bytes


def _decoded(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    image.load()
    return np.asarray(image.convert("RGBA"))


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out, i = [], 8
    while i < len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        kind, body = data[i + 4:i + 8], data[i + 8:i + 8 + n]
        (crc,) = struct.unpack(">I", data[i + 8 + n:i + 12 + n])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        out.append((kind, body))
        i += 12 + n
    return out


@pytest.mark.parametrize("case", ["opaque", "translucent", "one_pixel", "one_row", "noise"])
def test_png_bytes_decode_to_the_same_pixels(case):
    rng = np.random.default_rng(3)
    if case == "opaque":
        rgba = np.full((37, 53, 4), 255, np.uint8)
        rgba[5:20, 7:40, :3] = (178, 24, 43)
    elif case == "translucent":
        rgba = np.full((20, 30, 4), 255, np.uint8)
        rgba[3, 4] = (10, 20, 30, 128)
    elif case == "one_pixel":
        rgba = np.array([[[1, 2, 3, 255]]], np.uint8)
    elif case == "one_row":
        rgba = rng.integers(0, 256, (1, 17, 4), dtype=np.uint8)
    else:
        rgba = rng.integers(0, 256, (64, 48, 4), dtype=np.uint8)
    data = png_bytes(rgba, dpi=130, text={"Software": "test"})
    assert np.array_equal(_decoded(data), rgba)
    Image.open(io.BytesIO(data)).verify()  # Pillow's own checks of the chunks
    chunks = _chunks(data)
    kinds = [k for k, _ in chunks]
    assert kinds == [b"IHDR", b"tEXt", b"pHYs", b"IDAT", b"IEND"]
    assert chunks[0][1] == struct.pack(">IIBBBBB", rgba.shape[1], rgba.shape[0], 8, 6, 0, 0, 0)  # 8-bit RGBA
    image = Image.open(io.BytesIO(data))
    assert image.info["Software"] == "test"
    assert tuple(round(d) for d in image.info["dpi"]) == (130, 130)


def test_png_bytes_refuses_what_it_cannot_write():
    with pytest.raises(ValueError):
        png_bytes(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError):
        png_bytes(np.zeros((4, 4, 4), np.float32))


def _savefig_png(fig) -> bytes:
    """The long way: what the map wrote before (matplotlib's savefig, Pillow's encoder)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, pil_kwargs={"compress_level": 3})
    return buf.getvalue()


def test_canvas_png_has_savefig_pixels_and_metadata():
    from hotspots.render._agg_text import FastTextCanvas

    fig = plt.figure(figsize=(4, 3), dpi=130)
    FastTextCanvas(fig)
    ax = fig.add_axes([0.1, 0.1, 0.8, 0.8])
    ax.fill([0, 1, 1], [0, 0, 1], color="#b2182b")
    ax.text(0.2, 0.6, "label ↑ é", fontsize=8)
    ours = canvas_png(fig)
    theirs = _savefig_png(fig)
    plt.close(fig)
    assert np.array_equal(_decoded(ours), _decoded(theirs))
    mine, pillow = Image.open(io.BytesIO(ours)), Image.open(io.BytesIO(theirs))
    assert mine.size == pillow.size and mine.info["Software"] == pillow.info["Software"]
    assert mine.info["dpi"] == pillow.info["dpi"]


def test_map_png_has_the_pixels_savefig_gave(monkeypatch):
    """The printable map, whole, against the same figure saved by savefig."""
    from tests.test_maps import _view

    view = _view()
    ours = map_png.static_map_png(view)
    captured = {}

    def by_savefig(fig):
        captured["png"] = _savefig_png(fig)
        return captured["png"]

    monkeypatch.setattr("hotspots.render._png.canvas_png", by_savefig)
    theirs = map_png.static_map_png(view)
    assert theirs is captured["png"]
    assert np.array_equal(_decoded(ours), _decoded(theirs))


def test_text_measured_once_per_process_is_matplotlibs_measure():
    """Strings measured on an earlier figure: the same size as RendererAgg's, at every dpi and size."""
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    from hotspots.render import _agg_text
    from hotspots.render._agg_text import FastTextRenderer

    _agg_text._MEASURED.clear()
    strings = ["Patrol areas (ranked)", "1", "12", "N ↑", "lp", "Hot spot, 99% confidence", ""]
    props = [FontProperties(size=8), FontProperties(size=8, weight="bold"), FontProperties(size=5, style="italic")]
    for dpi in (130, 72, 130):
        fresh, plain = FastTextRenderer(200, 100, dpi), RendererAgg(200, 100, dpi)
        for s in strings:
            for prop in props:
                assert fresh.get_text_width_height_descent(s, prop, False) == \
                    plain.get_text_width_height_descent(s, prop, False), (s, prop, dpi)
        assert len(fresh._bitmaps) == len(strings) * len(props)  # kept for the draw
    # two dpis, each string and size once: the third renderer measured nothing anew
    assert len(_agg_text._MEASURED) == 2 * len(strings) * len(props)


def test_figure_drawn_with_measures_from_earlier_figures_is_the_same():
    """Pixels of a map figure whose strings were all measured before (by another figure) and of a cold one."""
    from hotspots.render import _agg_text
    from tests.test_maps import _view

    view = _view()
    _agg_text._MEASURED.clear()
    cold = map_png.static_map_png(view)
    assert _agg_text._MEASURED
    warm = map_png.static_map_png(view)
    assert np.array_equal(_decoded(cold), _decoded(warm))
    # an entry made with another font object is not used
    key, entry = next(iter(_agg_text._MEASURED.items()))
    _agg_text._MEASURED[key] = (object(), -1.0, -1.0, -1.0) + entry[4:]
    again = map_png.static_map_png(view)
    assert np.array_equal(_decoded(cold), _decoded(again))
    assert _agg_text._MEASURED[key][1] != -1.0


def test_labels_drawn_by_one_text_are_the_labels_drawn_one_text_each(monkeypatch):
    """Street, ward, district and town-centre names drawn by the batch: the pixels of a Text each."""
    import dataclasses

    import pandas as pd

    from tests.test_maps import X0, Y0, _view

    rng = np.random.default_rng(5)
    n = 300
    labels = pd.DataFrame({"x": X0 + rng.uniform(0, 5000, n), "y": Y0 + rng.uniform(0, 4000, n),
                           "label": [f"{'High' if i % 3 else 'Long Meadow'} Street {i} é" for i in range(n)],
                           "count": rng.integers(1, 40, n), "in_patrol": rng.random(n) < 0.3,
                           "tier": rng.choice([1, 2], n)})
    view = dataclasses.replace(_view(), street_labels=labels)
    batched = map_png.static_map_png(view)
    monkeypatch.setattr(map_png._LabelBatch, "USE_TEXTS", True)
    one_each = map_png.static_map_png(view)
    assert np.array_equal(_decoded(batched), _decoded(one_each))
    assert not np.array_equal(_decoded(batched), _decoded(map_png.static_map_png(_view())))  # labels were drawn
    monkeypatch.setattr(map_png._LabelBatch, "USE_TEXTS", False)
    from matplotlib.text import Text

    def refuse(self):
        raise NotImplementedError("cannot remove")

    monkeypatch.setattr(Text, "remove", refuse)  # a matplotlib where the batch cannot be made: a Text each
    assert np.array_equal(_decoded(map_png.static_map_png(view)), _decoded(one_each))


@pytest.mark.parametrize("width_in", [1.2, 2.5, 3.8])
def test_wrapping_by_halving_is_matplotlibs_wrap(width_in):
    """_wrap_once (halving) and matplotlib's word-by-word wrap give the same lines: listing-like lines, runs of
    spaces, one word wider than the column, words of every length."""
    from hotspots.render._agg_text import FastTextCanvas

    rng = np.random.default_rng(11)
    words = ["1,949", "in", "the", "period,", "no", "clear", "trend:", "+7%", "Jul–Dec", "on", "Jan–Jun", "2025",
             "Watford", "town", "centre:", "Shopping", "Area,", "off", "Wells", "Yard", "[Three", "Rivers]", "é", "W",
             "Supercalifragilisticexpialidociously-long-name"]
    lines = ["     1,949 in the period, no clear trend: +7% Jul–Dec on Jan–Jun 2025",
             "1. Watford town centre: Shopping Area, off Wells Yard [Watford]", "a  b   c", "", " ", "x",
             "Supercalifragilisticexpialidociously-long-name and more words after it"]
    lines += [" ".join(rng.choice(words, rng.integers(1, 25))) for _ in range(40)]
    for size in (8, 5.5):
        fig = plt.figure(figsize=(11.69, 8.27), dpi=130)
        FastTextCanvas(fig)
        side = fig.add_axes([0.99 - width_in / 11.69, 0.04, width_in / 11.69, 0.86])
        ours = side.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", fontsize=size, wrap=True)
        theirs = side.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", fontsize=size, wrap=True)
        renderer = fig.canvas.get_renderer()
        theirs._renderer = renderer
        want = theirs._get_wrapped_text()  # matplotlib's own, every line word by word
        map_png._wrap_once(ours, renderer)
        plt.close(fig)
        assert ours.get_text() == want
        assert want.count("\n") > len(lines)  # some lines were wrapped


def test_polygon_paths_at_once_are_the_paths_made_ring_by_ring():
    """_polygon_paths (all rings at once) against Path.make_compound_path of a closed Path per ring."""
    import shapely

    holed = shapely.box(0, 0, 4, 4).difference(shapely.box(1, 1, 2, 2)).difference(shapely.box(2.5, 2.5, 3, 3))
    shapes = [shapely.box(0, 0, 1, 1), holed, shapely.MultiPolygon([shapely.box(10, 0, 11, 1), holed]),
              shapely.Point(5, 5).buffer(2, quad_segs=3), shapely.box(1e5, 2e5, 1e5 + 250, 2e5 + 250)]
    cases = [shapes, shapes[:1], shapes[::-1],
             shapes + [shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.Polygon()])]]  # an empty part
    for case in cases:
        geoms = shapely.normalize(np.array(case, dtype=object))
        fast = map_png._polygon_paths(geoms)
        assert len(fast) == len(geoms)
        for geom, path in zip(geoms, fast):
            want = map_png._polygon_path_long(geom)
            assert path.vertices.dtype == want.vertices.dtype and np.array_equal(path.vertices, want.vertices)
            assert path.codes.dtype == want.codes.dtype and np.array_equal(path.codes, want.codes)
            assert path.should_simplify == want.should_simplify
    # not a polygon: the long way, which refuses it as before
    with pytest.raises(AttributeError):
        map_png._polygon_paths(np.array(shapes + [shapely.LineString([(0, 0), (1, 1)])], dtype=object))


def test_points_transformed_at_once_are_those_transformed_one_by_one():
    """Street names are placed from their points in pixels, all transformed at once: the same numbers."""
    fig = plt.figure(figsize=(11.69, 8.27), dpi=130)
    ax = fig.add_axes([0.01, 0.04, 0.64, 0.86])
    ax.set_xlim(503_123.4, 541_987.6)
    ax.set_ylim(187_654.3, 231_234.5)
    ax.set_aspect("equal")
    ax.apply_aspect()
    rng = np.random.default_rng(2)
    xs, ys = rng.uniform(500_000, 545_000, 2000), rng.uniform(185_000, 235_000, 2000)
    at_once = ax.transData.transform(np.column_stack((xs, ys)))
    one_by_one = np.array([ax.transData.transform([(x, y)])[0] for x, y in zip(xs.tolist(), ys.tolist())])
    plt.close(fig)
    assert np.array_equal(at_once, one_by_one)
