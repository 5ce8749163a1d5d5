"""Drawing shortcuts of the report charts (hotspots.render.outliers_charts) give the figures they replace."""

from __future__ import annotations

import gc
import io

import geopandas as gpd
import pytest
from shapely.geometry import MultiPolygon, Polygon, box

from hotspots.render import outliers_charts as C


def _svg(draw) -> bytes:
    with C._rc():
        fig = C._figure(2.6, 2.4)
        ax = fig.add_axes((0.0, 0.0, 1.0, 0.9))
        draw(ax)
        ax.set_axis_off()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def test_plot_polygons_draws_what_geoseries_plot_draws():
    # clockwise exterior (geopandas normalises ring order), a hole, a multipolygon and an empty geometry
    holed = Polygon([(0, 0), (0, 10), (10, 10), (10, 0)], [[(2, 2), (4, 2), (4, 4), (2, 4)]])
    multi = MultiPolygon([box(12, 0, 15, 3), box(16, 5, 20, 9)])
    shapes = gpd.GeoDataFrame({"area_code": ["a", "b", "c", "d"]},
                              geometry=[holed, multi, box(0, 12, 5, 20), Polygon()], crs="EPSG:27700")
    style = {"edgecolor": "#bbbbbb", "linewidth": 0.3}
    expected = _svg(lambda ax: shapes.plot(ax=ax, color="#f7f7f7", **style))
    got = _svg(lambda ax: C._plot_polygons(ax, shapes.geometry, facecolor="#f7f7f7", **style))
    assert b"<path" in got
    assert got == expected


def test_plot_polygons_with_a_colour_per_shape_draws_what_geoseries_plot_draws():
    holed = Polygon([(0, 0), (0, 10), (10, 10), (10, 0)], [[(2, 2), (4, 2), (4, 4), (2, 4)]])
    multi = MultiPolygon([box(12, 0, 15, 3), box(16, 5, 20, 9)])
    shapes = gpd.GeoDataFrame({"area_code": ["a", "b", "c", "d"]},
                              geometry=[holed, Polygon(), multi, box(0, 12, 5, 20)], crs="EPSG:27700")
    colours = [(1.0, 0.9, 0.6, 1.0), (0.5, 0.5, 0.5, 1.0), (0.9, 0.3, 0.1, 1.0), (0.7, 0.0, 0.1, 1.0)]
    style = {"edgecolor": "white", "linewidth": 1.0}
    expected = _svg(lambda ax: shapes.plot(ax=ax, color=colours, **style))
    got = _svg(lambda ax: C._plot_polygons(ax, shapes.geometry, facecolor=colours, **style))
    assert got.count(b"<path") >= 3 and b"#808080" not in got  # the empty shape's colour is not drawn
    assert got == expected


def test_choropleth_is_the_map_geopandas_drew(monkeypatch):
    import sys

    import pandas as pd

    areas = gpd.GeoDataFrame(
        {"area_code": ["E1", "E2", "E3", "E4"], "area_name": ["North", "Small $town", "East", "Holed"]},
        geometry=[box(0, 20_000, 20_000, 40_000), box(20_000, 20_000, 24_000, 24_000),
                  MultiPolygon([box(25_000, 0, 40_000, 18_000), box(41_000, 0, 45_000, 5_000)]),
                  Polygon([(0, 0), (0, 18_000), (20_000, 18_000), (20_000, 0)],
                          [[(5_000, 5_000), (9_000, 5_000), (9_000, 9_000), (5_000, 9_000)]])],
        crs="EPSG:27700")
    rows = pd.DataFrame({"area_code": ["E1", "E2", "E3", "E4"], "rate_per_1000": [12.5, 40.1, 7.25, 20.0]})
    got = C.choropleth(areas, rows, title="Violence: rate")

    def geopandas_plot(ax, geometries, *, facecolor, **style):  # the call choropleth made before
        gpd.GeoDataFrame(geometry=geometries).plot(ax=ax, color=facecolor, **style)

    monkeypatch.setattr(C, "_plot_polygons", geopandas_plot)
    assert got == C.choropleth(areas, rows, title="Violence: rate")
    assert "matplotlib.pyplot" in sys.modules  # (the reference's geopandas imported it)


def test_collector_paused_restores_the_collector_state():
    from hotspots._parallel import collector_paused

    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("drawing failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # a collector the caller disabled stays disabled
    finally:
        gc.enable()


# ----------------------------------------------------------------------------- the funnel plot as direct SVG
import base64  # noqa: E402
import re  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from test_outliers import synthetic  # noqa: E402,F401  (the synthetic results, a fixture)

_TEXT = re.compile(r'<text style="([^"]*)" x="([-\d.e]+)" y="([-\d.e]+)" transform="rotate\(([-\d]+)[^>]*>([^<]*)</text>')
_MARKER = re.compile(r'<path id="(m[0-9a-f]+)" d="M 0 ([-\d.]+) \nC')
_USE = re.compile(r'<use xlink:href="#(m[0-9a-f]+)" x="([-\d.e]+)" y="([-\d.e]+)" style="fill: (#[0-9a-f]+)')
_TICK = re.compile(r'<path id="(m[0-9a-f]+)" d="M 0 0 \nL ([-\d.]+) ([-\d.]+) \n"')
_CIRCLE = re.compile(r'<circle cx="([-\d.e]+)" cy="([-\d.e]+)" r="([-\d.e]+)"[^>]*style="fill: (#[0-9a-f]+)')
_OWN_TICK = re.compile(r'<path d="M ([-\d.e]+) ([-\d.e]+) L ([-\d.e]+) ([-\d.e]+)" style="fill: none; stroke: #444444')


def _decode(uri: str) -> str:
    return base64.b64decode(uri.split(",", 1)[1]).decode("utf-8")


def _drawn(svg: str, *, own: bool) -> dict:
    """What a funnel plot shows, comparable between matplotlib's SVG and the direct one (3 decimals, points)."""
    r3 = lambda v: round(float(v), 3)  # noqa: E731
    texts = sorted((t, style, r3(x), r3(y), rot.lstrip("-")) for style, x, y, rot, t in _TEXT.findall(svg))
    if own:
        dots = sorted((r3(x), r3(y), r3(r), fill) for x, y, r, fill in _CIRCLE.findall(svg))
        ticks = sorted(tuple(sorted([(r3(a), r3(b)), (r3(c), r3(d))])) for a, b, c, d in _OWN_TICK.findall(svg))
    else:
        radius = {m: float(r) for m, r in _MARKER.findall(svg)}
        tick = {m: (float(a), float(b)) for m, a, b in _TICK.findall(svg)}
        uses = _USE.findall(svg)
        dots = sorted((r3(x), r3(y), r3(radius[m]), fill) for m, x, y, fill in uses if m in radius)
        ticks = sorted(tuple(sorted([(r3(x), r3(y)), (r3(float(x) + tick[m][0]), r3(float(y) + tick[m][1]))]))
                       for m, x, y, _ in uses if m in tick)
    clip = re.search(r'<rect x="([-\d.]+)" y="([-\d.]+)" width="([-\d.]+)" height="([-\d.]+)"', svg).groups()
    return {"texts": texts, "dots": dots, "ticks": ticks, "clip": tuple(r3(v) for v in clip)}


def _both(curve, rows, highlight, title):
    reference = C._funnel_chart_mpl(curve, rows, highlight=highlight, title=title)
    direct = C._funnel_svg_or_none(curve, rows, highlight=highlight, title=title)
    return _decode(reference), direct


def _assert_same_funnel(curve, rows, highlight, title):
    reference, direct = _both(curve, rows, highlight, title)
    assert direct is not None
    want, got = _drawn(reference, own=False), _drawn(direct.decode("utf-8"), own=True)
    assert want["texts"] and want["dots"] and want["ticks"]
    assert got == want
    assert C.funnel_chart(curve, rows, highlight=highlight, title=title) == (
        "data:image/svg+xml;base64," + base64.b64encode(direct).decode("ascii"))


def _funnel_inputs(res, crime_type):
    return res.funnels[res.funnels["crime_type"] == crime_type], res.district[res.district["crime_type"] == crime_type]


def test_funnel_svg_draws_what_matplotlib_draws(synthetic):  # noqa: F811
    res = synthetic["results"]
    for code, crime_type in zip(res.funnel_picks["area_code"], res.funnel_picks["crime_type"]):
        curve, rows = _funnel_inputs(res, crime_type)
        _assert_same_funnel(curve, rows, code, crime_type)
    curve, rows = _funnel_inputs(res, res.funnel_picks["crime_type"].iloc[0])
    for code in rows["area_code"]:  # every CSP highlighted in turn: names left and right of their dot
        _assert_same_funnel(curve, rows, code, "Title & <more> $5")
    _assert_same_funnel(curve, rows, "not a CSP", "nobody highlighted")
    odd = rows.assign(area_name=[f"A&B <{i}> 'x' \"y\" $z$" for i in range(len(rows))])
    _assert_same_funnel(curve, odd, rows["area_code"].iloc[1], "escaped names")
    scaled = curve.assign(**{c: curve[c] * 1000 for c in curve.columns if c.startswith("rate_")},
                          county_rate_per_1000=curve["county_rate_per_1000"] * 1000)
    _assert_same_funnel(scaled, rows.assign(rate_per_1000=rows["rate_per_1000"] * 1000), rows["area_code"].iloc[0],
                        "rates in the thousands")


def test_funnel_svg_falls_back_to_matplotlib(synthetic):  # noqa: F811
    res = synthetic["results"]
    curve, rows = _funnel_inputs(res, res.funnel_picks["crime_type"].iloc[0])
    code = rows["area_code"].iloc[0]
    gappy = curve.copy()
    gappy.iloc[3, gappy.columns.get_loc("rate_upper_998")] = np.nan
    tiny = curve.assign(**{c: curve[c] * 1e-7 for c in curve.columns if c.startswith("rate_")},
                        county_rate_per_1000=curve["county_rate_per_1000"] * 1e-7)  # ticks need a power of ten
    cases = [(gappy, rows), (curve, rows.assign(rate_per_1000=np.where(np.arange(len(rows)) == 2, np.nan, rows["rate_per_1000"]))),
             (curve.assign(population=100_000.0), rows),
             (tiny, rows.assign(rate_per_1000=rows["rate_per_1000"] * 1e-7)),
             (curve, rows.assign(area_name=["two\nlines"] * len(rows)))]
    for funnel, points in cases:
        assert C._funnel_svg_or_none(funnel, points, highlight=code, title="t") is None
        assert C.funnel_chart(funnel, points, highlight=code, title="t") == \
            C._funnel_chart_mpl(funnel, points, highlight=code, title="t")


# ----------------------------------------------------------------------------- the trend chart as direct SVG
def _monthly(missing: set[int], n: int = 36, seed: int = 5, scale: float = 1.0) -> pd.DataFrame:
    """A monthly table as monthly_rates gives it: two areas x two types, the ``missing`` month indexes absent."""
    rng = np.random.default_rng(seed)
    months = [f"{2023 + i // 12}-{i % 12 + 1:02d}" for i in range(n)]
    rows = []
    for code in ("E22000001", "E23000001"):
        for crime_type, level in (("All crime", 6.0), ("Anti-social behaviour", 1.5)):
            for i, month in enumerate(months):
                rate = np.nan if i in missing else scale * level * rng.uniform(0.7, 1.3)
                rows.append({"area_code": code, "crime_type": crime_type, "month": month, "rate_per_1000": rate,
                             "present": i not in missing})
    return pd.DataFrame(rows)


def _trend_pair(monthly, **kw):
    kw = {"area_code": "E22000001", "county_code": "E23000001", "types": ["All crime", "Anti-social behaviour"],
          "area_name": "Alpha & <Beta>", "county_name": "Testshire", **kw}
    return _decode(C._trend_chart_mpl(monthly, **kw)), _decode(C.trend_chart(monthly, **kw))


def _assert_same_trend(monthly, **kw):
    reference, direct = _trend_pair(monthly, **kw)
    assert "Matplotlib" in reference and "Matplotlib" not in direct  # the direct SVG is the one compared
    want, got = _drawn(reference, own=False), _drawn(direct, own=True)
    assert want["texts"] and want["ticks"]
    assert got == want
    return want


def test_trend_svg_draws_what_matplotlib_draws(synthetic):  # noqa: F811
    res = synthetic["results"]
    meta = res.meta
    for code in res.csp_summary["area_code"]:
        _assert_same_trend(res.monthly, area_code=code, county_code=meta["county_code"], types=meta["trend_types"],
                           area_name=str(code), county_name=meta["county_name"])
    # long and short gaps ("no data" on runs of 4 months or more), isolated months drawn as dots
    drawn = _assert_same_trend(_monthly({0, 5, 6, 7, 8, 9, 11, 13, 20, 35}))
    assert len(drawn["dots"]) == 4 * 2 and sum(t[0] == "no data" for t in drawn["texts"]) == 1
    _assert_same_trend(_monthly(set(), n=13))
    _assert_same_trend(_monthly({3}, scale=300.0), types=["All crime"])  # one type: two legend entries
    _assert_same_trend(_monthly(set(range(12, 24)), scale=0.01), area_name="Ünïcödé $x$ Ågård")


def test_trend_svg_falls_back_to_matplotlib():
    kw = {"area_code": "E22000001", "county_code": "E23000001", "types": ["All crime"], "area_name": "A",
          "county_name": "C"}
    flat = _monthly(set()).assign(rate_per_1000=2.0)
    tiny = _monthly(set(), scale=1e-7)
    cases = [(flat, kw), (tiny, kw), (_monthly(set(range(36))), kw), (_monthly(set()), dict(kw, area_name="two\nlines")),
             (_monthly(set()), dict(kw, area_name="_hidden"))]  # matplotlib's legend leaves "_..." labels out
    for monthly, args in cases:
        expected = C._trend_chart_mpl(monthly, **args)
        assert C.trend_chart(monthly, **args) == expected


# ----------------------------------------------------------------------------- the LSOA map as direct SVG
_PATH = re.compile(r'<path d="([^"]*)"[^>]*style="([^"]*)"')


def _map_drawn(svg: str) -> dict:
    """Texts, number circles (centre, radius), filled polygons (vertices) and the axes box of an LSOA map."""
    r3 = lambda v: round(float(v), 3)  # noqa: E731
    texts = sorted((t, style, r3(x), r3(y)) for style, x, y, _, t in _TEXT.findall(svg))
    circles, polygons = [], []
    for d, style in _PATH.findall(svg):
        numbers = np.array([float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", d)]).reshape(-1, 2)
        if style.startswith("fill: #ffffff; stroke: #333333"):  # matplotlib's circle box, as a path
            (x0, y0), (x1, y1) = numbers.min(axis=0), numbers.max(axis=0)
            circles.append((r3((x0 + x1) / 2), r3((y0 + y1) / 2), r3((x1 - x0) / 2)))
        elif "#f7f7f7" in style or "#555555" in style:
            polygons.append((style.split(";")[0], tuple(map(tuple, numbers.round(3)))))
    circles += [(r3(x), r3(y), r3(r)) for x, y, r, fill in _CIRCLE.findall(svg) if fill == "#ffffff"]
    clip = re.search(r'<rect x="([-\d.]+)" y="([-\d.]+)" width="([-\d.]+)" height="([-\d.]+)"', svg).groups()
    return {"texts": texts, "circles": sorted(circles), "polygons": sorted(polygons),
            "clip": tuple(r3(v) for v in clip)}


def _assert_same_map(lsoas, busiest, title):
    reference = _decode(C._lsoa_map_mpl(lsoas, busiest, title=title))
    direct = _decode(C.lsoa_map(lsoas, busiest, title=title))
    assert "Matplotlib" in reference and "Matplotlib" not in direct
    want, got = _map_drawn(reference), _map_drawn(direct)
    assert want["texts"] and want["polygons"]
    assert got == want
    return want


def _places(lsoas):
    return lsoas[["area_code", "geometry"]]


def test_lsoa_svg_draws_what_matplotlib_draws(synthetic):  # noqa: F811
    res = synthetic["results"]
    lsoas = synthetic["lsoas"]
    busiest = res.busiest_lsoas
    for code, part in busiest.groupby("csp_code"):
        mine = lsoas[lsoas["area_code"].isin(res.lsoa.loc[res.lsoa["csp_code"] == code, "area_code"])]
        drawn = _assert_same_map(_places(mine), list(zip(part["rank_in_csp"], part["area_code"], part["flag"])),
                                 f"{code}: busiest LSOAs, numbered")
        assert len(drawn["circles"]) == len(part)
    # a hole, a multipolygon, a tall and a wide extent, every flag colour, a code not on the map, escaped text
    holed = Polygon([(0, 0), (0, 1000), (1000, 1000), (1000, 0)], [[(200, 200), (400, 200), (400, 400), (200, 400)]])
    multi = MultiPolygon([box(1200, 0, 1500, 300), box(1600, 500, 2000, 900)])
    for scale_y in (1.0, 6.0):
        shapes = gpd.GeoDataFrame({"area_code": ["a", "b", "c", "d", "e"]},
                                  geometry=[holed, multi, box(0, 1200, 500, 2000 * scale_y), box(2100, 0, 2300, 80),
                                            box(300, 2100 * scale_y, 900, 2300 * scale_y)], crs="EPSG:27700")
        flags = ["high_998", "high_95", "within", "low_95", "low_998", "no_records"]
        busy = [(i + 1, code, flag) for i, (code, flag) in enumerate(zip(["b", "a", "c", "zz", "d", "e"], flags))]
        drawn = _assert_same_map(shapes, busy, "Title & <escaped> 'quotes' $x$")
        assert len(drawn["circles"]) == 5


def test_lsoa_svg_falls_back_to_matplotlib():
    from shapely.geometry import Point

    shapes = gpd.GeoDataFrame({"area_code": ["a", "b"]}, geometry=[box(0, 0, 10, 10), box(20, 0, 30, 10)],
                              crs="EPSG:27700")
    with_point = gpd.GeoDataFrame({"area_code": ["a", "p"]}, geometry=[box(0, 0, 10, 10), Point(50, 50).buffer(0.5)
                                                                       .boundary], crs="EPSG:27700")
    flat = gpd.GeoDataFrame({"area_code": ["a"]}, geometry=[Polygon([(0, 0), (10, 0), (5, 0)])], crs="EPSG:27700")
    for frame, busy, title in ((shapes, [(1, "a", "high_95")], "two\nlines"), (with_point, [(1, "a", "within")], "t"),
                               (flat, [], "t")):
        try:
            expected = C._lsoa_map_mpl(frame, busy, title=title)
        except Exception as exc:  # matplotlib cannot draw it either: the same error
            with pytest.raises(type(exc)):
                C.lsoa_map(frame, busy, title=title)
            continue
        assert C.lsoa_map(frame, busy, title=title) == expected


def test_trend_inputs_equal_the_pandas_cut(synthetic):  # noqa: F811
    res = synthetic["results"]
    keys = [(code, t) for code in list(res.monthly["area_code"].unique()) + ["nowhere"]
            for t in list(res.monthly["crime_type"].unique()) + ["no such type"]]
    tables = [res.monthly, _monthly({0, 5, 6, 7, 8, 9, 11, 13, 20, 35}),
              _monthly({2}).sample(frac=1.0, random_state=3),  # rows in any order
              _monthly({2}).astype({"present": "boolean"}),  # not plain bool: the pandas cut
              _monthly({4}).astype({"area_code": object}).assign(
                  area_code=lambda f: f["area_code"].where(f.index != 7, None))]  # a missing code: the pandas cut
    for monthly in tables:
        calendar = sorted(monthly["month"].unique())
        these = keys if monthly is res.monthly else [(c, t) for c in ("E22000001", "E23000001", "x")
                                                     for t in ("All crime", "Anti-social behaviour")]
        got_rates, got_gaps = C._trend_inputs(monthly, calendar, these)
        want_rates, want_gaps = C._trend_inputs_pandas(monthly, calendar, these)
        assert got_gaps == want_gaps
        assert len(got_rates) == len(want_rates) == len(these)
        for got, want in zip(got_rates, want_rates):
            np.testing.assert_array_equal(got, want)
    twice = pd.concat([_monthly(set()), _monthly(set()).iloc[:1]], ignore_index=True)  # a month twice
    with pytest.raises(ValueError):
        C._trend_inputs_pandas(twice, sorted(twice["month"].unique()), [("E22000001", "All crime")])
    with pytest.raises(ValueError):
        C._trend_inputs(twice, sorted(twice["month"].unique()), [("E22000001", "All crime")])
