"""Issue 18, fifth round: the printable map's drawing, cheaper, with the same pixels.

Each shortcut is checked against matplotlib's own way (or the code it
replaced).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.backends.backend_agg import RendererAgg  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402

from hotspots.render._agg_text import FastTextRenderer  # noqa: E402

PROPS = [dict(size=7), dict(size=5.5, weight="bold"), dict(size=5, style="italic"), dict(size=8, family="DejaVu Sans"),
         dict(size=8, family="monospace"), dict(size=14, weight="bold"), dict(size=7, family="serif")]


@pytest.mark.parametrize("props", PROPS)
def test_font_lookup_kept_by_the_renderer_is_matplotlibs(props):
    """The kept FT2Font is the object RendererAgg finds, cleared and sized the same, on every call."""
    ours, theirs = FastTextRenderer(50, 50, 130), RendererAgg(50, 50, 130)
    prop = FontProperties(**props)
    for _ in range(3):
        font = ours._prepare_font(prop)
        font.set_text("Hatfield 12", 0.0)
        mine = font.get_width_height(), font.fname
        other = theirs._prepare_font(prop)
        other.set_text("Hatfield 12", 0.0)
        assert other is font and (other.get_width_height(), other.fname) == mine
    prop.set_size(props["size"] * 2)  # a Text's properties change in place (the map's labels do)
    assert ours._prepare_font(prop) is theirs._prepare_font(prop)
    assert ours._prepare_font(prop).get_width_height() == (0, 0)  # cleared, as matplotlib's


def test_font_lookup_follows_the_rcparams():
    """An rcParam that chooses the font file (a family list) chooses it for the kept lookup too."""
    ours = FastTextRenderer(50, 50, 130)
    prop = FontProperties(size=7, family="sans-serif")
    before = ours._prepare_font(prop)
    with matplotlib.rc_context({"font.sans-serif": ["DejaVu Sans Mono"]}):
        inside = ours._prepare_font(prop)
        assert inside is RendererAgg(50, 50, 130)._prepare_font(prop)
        assert inside.family_name != before.family_name
    assert ours._prepare_font(prop) is before


def test_font_lookup_that_cannot_be_keyed_is_matplotlibs(monkeypatch):
    """Anything that will not make a key (an rcParam of a type that will not hash, say): matplotlib's lookup."""
    from hotspots.render import _agg_text

    def unkeyable():
        raise TypeError("unhashable type: 'dict'")

    monkeypatch.setattr(_agg_text, "_font_lookup_rc", unkeyable)
    ours = FastTextRenderer(50, 50, 130)
    prop = FontProperties(size=7)
    assert ours._prepare_font(prop) is RendererAgg(50, 50, 130)._prepare_font(prop)
    assert not ours._fonts


def _decoded(data: bytes):
    import io

    import numpy as np
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    return np.asarray(image.convert("RGBA"))


def _many_patrol_areas(view, n: int):
    """The view with *n* ranked patrol areas of long names (the list wraps and is cut at PNG_MAX_LISTED)."""
    import dataclasses

    import shapely

    sel = view.selections[0]
    one = sel.patrol_areas.iloc[[0] * n].reset_index(drop=True)
    x0, y0, _, _ = shapely.total_bounds(one.geometry.values)
    one["rank"] = range(1, n + 1)
    one["name"] = [f"Area {i}: Shopping Area, off a Rather Long Road Name Street ({'Town' * (i % 4)})" for i in range(n)]
    one["count"] = [500 - i for i in range(n)]
    one["geometry"] = [shapely.box(x0 + 150 * i, y0 + 100 * i, x0 + 150 * i + 120, y0 + 100 * i + 90) for i in range(n)]
    return dataclasses.replace(view, selections=[dataclasses.replace(sel, patrol_areas=one)] + list(view.selections[1:]))


@pytest.mark.parametrize("n_areas", [None, 3, 40])
def test_side_panel_without_axes_has_the_pixels_of_the_axes(monkeypatch, n_areas):
    """Legend and ranked list placed in the side Axes' box: the pixels the Axes drew, on every selection."""
    import numpy as np

    from hotspots.render import map_png
    from tests.test_maps import _view

    view = _view() if n_areas is None else _many_patrol_areas(_view(), n_areas)
    for sel in [s.name for s in view.selections]:
        fast = map_png.static_map_png(view, sel)
        monkeypatch.setattr(map_png, "USE_SIDE_AXES", True)
        axes = map_png.static_map_png(view, sel)
        monkeypatch.setattr(map_png, "USE_SIDE_AXES", False)
        assert np.array_equal(_decoded(fast), _decoded(axes)), sel


def test_side_panel_draws_legend_and_list_without_an_axes():
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from hotspots.render import map_png
    from hotspots.render._agg_text import FastTextCanvas

    fig = plt.figure(figsize=(11.69, 8.27), dpi=130)
    try:
        FastTextCanvas(fig)
        map_png._side_panel(fig, [Line2D([], [], label="ward")], "Patrol areas (ranked)\n\n" + "word " * 80)
        assert fig.axes == [] and len(fig.legends) == 1
        listing = fig.artists[0]
        assert not listing.get_wrap() and listing.get_text().count("\n") > 3  # wrapped once, into lines
        x, y = listing.get_transform().transform((0.0, 1.0))
        assert (x, y) == tuple(fig.transFigure.transform((0.66, 0.90)))
    finally:
        plt.close(fig)


def _overlaps_any(box, boxes) -> bool:
    """The test _place_labels made of every placed box (the reference)."""
    return any(box[0] < b[2] and box[2] > b[0] and box[1] < b[3] and box[3] > b[1] for b in boxes)


@pytest.mark.parametrize("seed", range(4))
def test_boxes_on_a_grid_answer_as_the_list_of_boxes(seed):
    """Random labels, some touching edge to edge, some odd (NaN, infinite, inverted, huge, negative): the same."""
    import numpy as np

    from hotspots.render.map_png import _Boxes

    rng = np.random.default_rng(seed)
    kept, grid = [], _Boxes()
    odd = [(np.nan, 0.0, 10.0, 10.0), (0.0, 0.0, np.inf, 5.0), (-np.inf, -np.inf, np.inf, np.inf),
           (50.0, 50.0, 40.0, 60.0), (-1e7, 100.0, 1e7, 101.0), (np.float64(-130.5), -64.0, -64.0, 0.0)]
    for k in range(3000):
        if k % 150 == 7:
            box = odd[(k // 150) % len(odd)]
        elif k % 5 == 0 and kept:  # edge to edge with a kept box: not an overlap
            o = kept[int(rng.integers(len(kept)))]
            box = (o[2], o[1], o[2] + 30.0, o[3]) if np.isfinite(o).all() else (1.0, 2.0, 3.0, 4.0)
        else:
            x, y = rng.uniform(-200, 1700, 2)
            w, h = rng.uniform(0.5, 120), rng.uniform(0.5, 20)
            box = (np.float64(x - w), np.float64(y - h), np.float64(x + w), np.float64(y + h))
        expected = not _overlaps_any(box, kept)
        assert grid.free(box) == expected, box
        if expected or k % 3 == 0:  # placed when free (as the labels are); some overlapping ones too
            kept.append(box)
            grid.add(box)


def test_line_added_without_plot_is_the_line_plot_adds():
    """_plot: the Line2D ax.plot makes (same data, style, clip, z-order) and the same pixels, limits as set."""
    import matplotlib.pyplot as plt
    import numpy as np

    from hotspots.render import map_png
    from hotspots.render._png import canvas_png

    images, lines = [], []
    for way in ("plot", "ours"):
        fig = plt.figure(figsize=(3, 2), dpi=130)
        ax = fig.add_axes([0.1, 0.1, 0.8, 0.8])
        ax.set_xlim(500_000.0, 510_000.0)
        ax.set_ylim(200_000.0, 206_000.0)
        ax.set_aspect("equal")
        for xs, ys, style in [([501_000.25, np.float64(509_500.0)], [np.float64(200_100.5), 205_000.0],
                               dict(color="#7b3294", linewidth=0.8, zorder=8.5)),
                              ([502_000.0, 502_000.0 + 2000], [200_500.0, 200_500.0],
                               dict(color="black", linewidth=3, zorder=9, solid_capstyle="butt")),
                              ([499_000.0, 511_000.0], [199_000.0, 207_000.0], dict(color="red", linewidth=1.8))]:
            if way == "plot":
                style = {("lw" if k == "linewidth" else k): v for k, v in style.items()}
                ax.plot(xs, ys, **style)
            else:
                map_png._plot(ax, xs, ys, **style)
        assert (ax.get_xlim(), ax.get_ylim()) == ((500_000.0, 510_000.0), (200_000.0, 206_000.0))
        lines.append([(ln.get_xydata().tolist(), ln.get_color(), ln.get_linewidth(), ln.get_zorder(),
                       ln.get_solid_capstyle(), ln.get_clip_box().bounds) for ln in ax.lines])
        images.append(_decoded(canvas_png(fig)))
        plt.close(fig)
    assert lines[0] == lines[1]
    assert np.array_equal(images[0], images[1])


def test_layers_added_without_data_limits_draw_the_same_map(monkeypatch):
    """The map's layers added with autolim=False: the pixels of the map whose layers updated the data limits."""
    import numpy as np
    from matplotlib.axes import Axes

    from hotspots.render import map_png
    from tests.test_maps import _view

    view = _many_patrol_areas(_view(), 6)
    asked = []
    original = Axes.add_collection

    def spy(self, collection, autolim=True, **kwargs):
        asked.append(autolim)
        return original(self, collection, autolim=autolim, **kwargs)

    monkeypatch.setattr(Axes, "add_collection", spy)
    ours = map_png.static_map_png(view)
    assert asked.count(False) >= 4  # wards, districts, cells, area outline, patrol areas ...

    def with_limits(self, collection, autolim=True, **kwargs):
        return original(self, collection, autolim=True, **kwargs)

    monkeypatch.setattr(Axes, "add_collection", with_limits)
    assert np.array_equal(_decoded(ours), _decoded(map_png.static_map_png(view)))


def test_legend_laid_out_once_per_draw_draws_the_same_map(monkeypatch):
    """The map with each legend box laid out once per draw: the pixels of matplotlib's repeated layouts."""
    import numpy as np

    from hotspots.render import map_png
    from tests.test_maps import _view

    view = _many_patrol_areas(_view(), 5)
    ours = map_png.static_map_png(view)
    monkeypatch.setattr(map_png, "_layout_once_per_draw", lambda legend: None)
    assert np.array_equal(_decoded(ours), _decoded(map_png.static_map_png(view)))


def test_legend_boxes_laid_out_once_per_draw_only_while_it_draws(monkeypatch):
    """Fewer layouts in a draw, the same extent after it, and a fresh layout in the next draw."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.offsetbox import HPacker, VPacker
    from matplotlib.patches import Patch

    from hotspots.render import map_png
    from hotspots.render._agg_text import FastTextCanvas

    calls = []
    for cls in (HPacker, VPacker):
        own = cls._get_bbox_and_child_offsets

        def counted(self, renderer, own=own):
            calls.append(self)
            return own(self, renderer)

        monkeypatch.setattr(cls, "_get_bbox_and_child_offsets", counted)
    counts = []
    for once in (False, True):
        fig = plt.figure(figsize=(6, 4), dpi=100)
        FastTextCanvas(fig)
        handles = [Patch(facecolor="red", label=f"class {i}") for i in range(5)]
        handles += [Line2D([], [], color="blue", lw=1.8, label="patrol area"), Line2D([], [], ls="", marker="o",
                                                                                    label="map point")]
        legend = fig.legend(handles=handles, loc="lower left", title="Two\nlines", ncols=2)
        if once:
            map_png._layout_once_per_draw(legend)
        renderer = fig.canvas.get_renderer()
        del calls[:]
        fig.canvas.draw()
        counts.append(len(calls))
        extent = legend.get_window_extent(renderer).bounds
        del calls[:]
        assert legend.get_window_extent(renderer).bounds == extent and calls  # laid out anew outside a draw
        del calls[:]
        fig.canvas.draw()
        assert len(calls) == counts[-1]  # the next draw lays out again (nothing kept from the last)
        plt.close(fig)
    boxes = 1 + 1 + 2 + 7  # the legend's box, the columns' box, two columns, a row per entry
    assert counts[1] == boxes < counts[0]


def test_labels_reaching_past_the_top_edge_are_left_out_after_town_centres():
    """A name whose box would cross the axes' top edge is not drawn, town centres or not.

    The town-centre loop once named its northern edge ``top``, the name of the
    axes' top edge (pixels) that every later label is checked against: after
    it, that check compared pixels with metres and let names run off the top.
    """
    from types import SimpleNamespace

    import geopandas as gpd
    import shapely
    from matplotlib.figure import Figure

    from hotspots.render import map_png

    x0, y0 = 510_000.0, 196_000.0
    fig = Figure(figsize=(4, 4), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(x0, x0 + 4000)
    ax.set_ylim(y0, y0 + 4000)
    ax.set_aspect("equal")
    town = gpd.GeoDataFrame({"area_name": ["Town"]}, geometry=[shapely.box(x0 + 200, y0 + 200, x0 + 600, y0 + 600)],
                            crs=27700)
    # a ward whose only point of the surface lies right at the top edge: its name's box crosses it
    top_ward = shapely.box(x0 + 1800, y0 + 3990, x0 + 2200, y0 + 4000)
    mid_ward = shapely.box(x0 + 2800, y0 + 1800, x0 + 3200, y0 + 2200)
    wards = gpd.GeoDataFrame({"area_name": ["Edge ward", "Middle ward"]}, geometry=[top_ward, mid_ward], crs=27700)
    view = SimpleNamespace(districts=None, town_centres=town, street_labels=None, wards=wards)
    old = map_png._LabelBatch.USE_TEXTS
    map_png._LabelBatch.USE_TEXTS = True  # a Text each, to read them back
    try:
        map_png._place_labels(ax, view, [])
    finally:
        map_png._LabelBatch.USE_TEXTS = old
    drawn = [t.get_text() for t in ax.texts]
    assert "Town" in drawn and "Middle ward" in drawn
    assert "Edge ward" not in drawn
