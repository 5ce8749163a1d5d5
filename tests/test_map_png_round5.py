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
