"""Charts of the CSP outlier report: funnel plots, monthly trends and the CSP map, as SVG ``data:`` URIs.

Drawing only: the funnel limits, rates and monthly series come finished from
the outlier tables.  The funnel plots, trend charts and LSOA maps are written
as SVG text directly (:mod:`hotspots.render._funnel_svg`,
:mod:`hotspots.render._trend_svg`, :mod:`hotspots.render._lsoa_svg`: the
drawing matplotlib made, laid out by matplotlib's rules, at a few
milliseconds a chart); the CSP map, and any chart those do not handle, is
drawn with matplotlib (through :class:`matplotlib.figure.Figure`, so no
global backend state).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

#: fill of each funnel flag (matrix cells, the highlighted point on a funnel plot)
COLOURS = {"high_998": "#b2182b", "high_95": "#f4a582", "within": "#ffffff", "low_95": "#92c5de",
           "low_998": "#2166ac", "no_records": "#eeeeee"}
#: the highlighted CSP on a funnel plot when its flag colour is too pale to see
HIGHLIGHT = "#d95f02"
#: Titles are placed at the top of their axes (``y=1.0``) explicitly, which is where matplotlib's automatic
#: placement puts them on these charts (x tick labels at the bottom, no offset text on a y axis starting at 0
#: or hidden): given, it skips measuring every tick label of the y axis again on each draw.
TITLE_Y = 1.0
#: Areas smaller than this (m2) are labelled outside their polygon on the map.
SMALL_AREA_M2 = 60e6


def _mpl_text(text: Any) -> str:
    """Data-derived text for matplotlib: ``$`` would start mathtext."""
    return str(text).replace("$", r"\$")


def _svg_uri(fig, *, tight: bool = False) -> str:
    buffer = io.BytesIO()
    # charts place their axes explicitly; "tight" (an extra draw) only where the extent is unknown
    fig.savefig(buffer, format="svg", bbox_inches="tight" if tight else None, pad_inches=0.04,
                metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    # no layout engine (constrained layout costs a draw per chart): axes are placed by hand
    return Figure(figsize=(width, height))


def _rc():
    import matplotlib

    return matplotlib.rc_context({
        "svg.fonttype": "none", "font.family": "DejaVu Sans", "font.size": 7.5, "axes.titlesize": 8.5,
        "axes.spines.top": False, "axes.spines.right": False, "axes.titleweight": "bold", "svg.hashsalt": "hotspots",
        "axes.edgecolor": "#777777", "xtick.color": "#444444", "ytick.color": "#444444",
    })


def funnel_chart(funnel: pd.DataFrame, rows: pd.DataFrame, *, highlight: str, title: str) -> str:
    """Funnel plot for one crime type: rate per 1,000 vs residents, this CSP highlighted.

    Shaded band and dashed lines: 95% limits allowing for overdispersion; solid
    lines: 99.8% allowing for overdispersion; dotted: 99.8% Poisson-only limits.
    Written as SVG directly (:mod:`hotspots.render._funnel_svg`, the same
    drawing); with matplotlib (:func:`_funnel_chart_mpl`) where that does not apply.
    """
    svg = _funnel_svg_or_none(funnel, rows, highlight=highlight, title=title)
    if svg is not None:
        return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
    return _funnel_chart_mpl(funnel, rows, highlight=highlight, title=title)


def _funnel_svg_or_none(funnel: pd.DataFrame, rows: pd.DataFrame, *, highlight: str, title: str) -> bytes | None:
    from hotspots.render._funnel_svg import CURVES, funnel_svg

    codes = rows["area_code"].to_numpy()
    names = [str(n) for n in rows["area_name"]]
    if any("\n" in n or "\r" in n for n in names) or "\n" in str(title) or not len(funnel):
        return None
    mine = codes == highlight
    population = rows["population"].to_numpy(float) / 1000.0
    rate = rows["rate_per_1000"].to_numpy(float)
    me = None
    if mine.any():
        first = int(np.flatnonzero(mine)[0])
        colour = COLOURS.get(str(rows["flag"].iloc[first]), HIGHLIGHT)
        if colour in ("#ffffff", "#eeeeee"):
            colour = HIGHLIGHT
        me = (float(population[first]), float(rate[first]), names[first], colour)
    others = ~mine
    curves = {column: funnel[column].to_numpy(float) for column, *_ in CURVES}
    return funnel_svg(funnel["population"].to_numpy(float), curves, float(funnel["county_rate_per_1000"].iloc[0]),
                      (population[others], rate[others], [n for n, o in zip(names, others) if o]), me, str(title))


def _funnel_chart_mpl(funnel: pd.DataFrame, rows: pd.DataFrame, *, highlight: str, title: str) -> str:
    """:func:`funnel_chart` drawn with matplotlib (where the direct SVG does not apply; the reference in tests)."""
    with _rc():
        fig = _figure(3.2, 2.35)
        ax = fig.add_axes((0.155, 0.165, 0.815, 0.735))
        x = funnel["population"].to_numpy() / 1000.0
        ax.fill_between(x, funnel["rate_lower_95_adjusted"], funnel["rate_upper_95_adjusted"], color="#ececec", lw=0)
        for side in ("lower", "upper"):
            ax.plot(x, funnel[f"rate_{side}_95_adjusted"], color="#666666", lw=0.8, ls="--")
            ax.plot(x, funnel[f"rate_{side}_998_adjusted"], color="#333333", lw=0.9)
            ax.plot(x, funnel[f"rate_{side}_998"], color="#999999", lw=0.7, ls=":")
        county_rate = float(funnel["county_rate_per_1000"].iloc[0])
        ax.axhline(county_rate, color="#1b6ca8", lw=0.9)
        others = rows[rows["area_code"] != highlight]
        ax.scatter(others["population"] / 1000.0, others["rate_per_1000"], s=13, color="#8a8a8a", zorder=3, lw=0)
        me = rows[rows["area_code"] == highlight]
        labelled = others
        if len(me):
            record = me.iloc[0]
            colour = COLOURS.get(str(record["flag"]), HIGHLIGHT)
            if colour in ("#ffffff", "#eeeeee"):
                colour = HIGHLIGHT
            px, py = record["population"] / 1000.0, record["rate_per_1000"]
            ax.scatter([px], [py], s=42, color=colour, edgecolor="black", lw=0.8, zorder=4)
            right = px > x.min() + 0.6 * (x.max() - x.min())
            ax.annotate(_mpl_text(record["area_name"]), (px, py), xytext=(-6 if right else 6, 3),
                        textcoords="offset points", fontsize=7, fontweight="bold", ha="right" if right else "left")
        ax.set_title(_mpl_text(title), loc="left", y=TITLE_Y)
        ax.set_xlabel("residents (thousands)")
        ax.set_ylabel("per 1,000 residents")
        ax.set_xlim(x.min(), x.max())
        highest = float(rows["rate_per_1000"].max())
        top = max(highest * 1.12, float(funnel["rate_upper_95_adjusted"].max()) * 1.05)
        top = max(top, min(float(funnel["rate_upper_998_adjusted"].max()) * 1.03, 2.5 * max(highest, county_rate)))
        ax.set_ylim(0, top)
        ax.grid(axis="y", color="#f0f0f0", lw=0.5)
        _label_dots(ax, labelled["population"].to_numpy(float) / 1000.0, labelled["rate_per_1000"].to_numpy(float),
                    [str(n) for n in labelled["area_name"]], taken=[] if not len(me) else [(px, py)])
        return _svg_uri(fig)


def _label_dots(ax, xs, ys, names: Sequence[str], *, taken: Sequence[tuple[float, float]] = ()) -> None:
    """Name each dot in small grey type, on the side (right, left, above, below) that is clear of the others.

    Layout only: positions are compared in points on the page, not as data.
    """
    to_px = ax.transData.transform
    boxes = [(x - 28, y - 6, x + 28, y + 6) for x, y in (to_px(t) for t in taken)]  # the highlighted CSP's label
    dots = [tuple(to_px((x, y))) for x, y in zip(xs, ys)]
    boxes += [(x - 2, y - 2, x + 2, y + 2) for x, y in dots]
    scale = ax.figure.dpi / 72.0
    for (x, y), name in zip(dots, names):
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        width, height = len(name) * 3.1 * scale, 6.5 * scale
        options = [((3, 1), "left", (x + 3 * scale, y - height / 2, x + 3 * scale + width, y + height / 2)),
                   ((-3, 1), "right", (x - 3 * scale - width, y - height / 2, x - 3 * scale, y + height / 2)),
                   ((0, 5), "center", (x - width / 2, y + 2 * scale, x + width / 2, y + 2 * scale + height)),
                   ((0, -9), "center", (x - width / 2, y - 2 * scale - height, x + width / 2, y - 2 * scale))]
        for offset, ha, box in options:
            if not any(box[0] < b[2] and box[2] > b[0] and box[1] < b[3] and box[3] > b[1] for b in boxes):
                boxes.append(box)
                ax.annotate(_mpl_text(name), (ax.transData.inverted().transform((x, y))), xytext=offset,
                            textcoords="offset points", fontsize=5.5, color="#555555", ha=ha, va="bottom", zorder=3)
                break


def lsoa_map(lsoas, busiest: Sequence[tuple[int, str, str]], *, title: str) -> str:
    """A small map of one CSP's LSOAs with its busiest numbered and filled by their funnel flag.

    ``lsoas``: the CSP's LSOA outlines (``area_code``, geometry); ``busiest``:
    (rank, LSOA code, flag) as the analysis ranked them.  Written as SVG
    directly (:mod:`hotspots.render._lsoa_svg`, the same drawing); with
    matplotlib (:func:`_lsoa_map_mpl`) where that does not apply.
    """
    import shapely

    from hotspots.render._lsoa_svg import lsoa_svg

    shapes = dict(zip(lsoas["area_code"].astype(str).tolist(), lsoas.geometry))
    background = [g for g in shapely.normalize(np.asarray(lsoas.geometry, dtype=object))
                  if g is not None and not g.is_empty]
    filled = []
    for rank, code, flag in busiest:
        geometry = shapes.get(str(code))
        if geometry is None:
            continue
        colour = COLOURS.get(flag, "#ffffff")
        filled.append((rank, geometry, colour if colour not in ("#ffffff", "#eeeeee") else "#fde0c5"))
    outline = lsoas.geometry.union_all() if hasattr(lsoas.geometry, "union_all") else lsoas.unary_union
    svg = lsoa_svg(background, filled, outline, str(title))
    if svg is not None:
        return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
    return _lsoa_map_mpl(lsoas, busiest, title=title)


def _lsoa_map_mpl(lsoas, busiest: Sequence[tuple[int, str, str]], *, title: str) -> str:
    """:func:`lsoa_map` drawn with matplotlib (where the direct SVG does not apply; the reference in tests)."""
    with _rc():
        fig = _figure(2.6, 2.4)
        ax = fig.add_axes((0.0, 0.0, 1.0, 0.9))
        codes = lsoas["area_code"].astype(str).tolist()
        _plot_polygons(ax, lsoas.geometry, facecolor="#f7f7f7", edgecolor="#bbbbbb", linewidth=0.3)
        shapes = dict(zip(codes, lsoas.geometry))
        for rank, code, flag in busiest:
            geometry = shapes.get(str(code))
            if geometry is None:
                continue
            colour = COLOURS.get(flag, "#ffffff")
            fill = colour if colour not in ("#ffffff", "#eeeeee") else "#fde0c5"
            ax.add_patch(_patch(geometry, fill))
            point = geometry.representative_point()
            ax.annotate(str(rank), (point.x, point.y), ha="center", va="center", fontsize=6, fontweight="bold",
                        bbox={"boxstyle": "circle,pad=0.15", "fc": "white", "ec": "#333333", "lw": 0.5})
        outline = lsoas.geometry.union_all() if hasattr(lsoas.geometry, "union_all") else lsoas.unary_union
        ax.plot(*_outline_xy(outline), color="#333333", lw=0.8)
        ax.set_axis_off()
        ax.set_aspect("equal")
        ax.set_title(_mpl_text(title), loc="left", fontsize=7, y=TITLE_Y)
        return _svg_uri(fig)


def _plot_polygons(ax, geometries, **style) -> None:
    """Polygons as one collection, drawn exactly as ``GeoSeries.plot(color=...)`` draws them (same SVG).

    geopandas normalises the rings and builds a ``PathPatch`` per polygon only to
    take its path back out; this builds the same paths directly and, like
    geopandas, sets an equal aspect and rescales the view.  No axis labels are
    set: these maps have no axes to label.  A ``facecolor`` list (one colour per
    geometry, as ``GeoSeries.plot(color=[...])`` takes it) keeps the colours of
    the shapes drawn.  Geometries are in metres (a projected CRS: geopandas
    would stretch a geographic one).  (tests/test_report_charts.py compares the
    SVGs byte for byte.)
    """
    import shapely
    from matplotlib.collections import PathCollection

    class _GeoPandasPolyCollection(PathCollection):
        """Named as geopandas names its collection: the name is the SVG group's id, kept as it was."""

    shapes = shapely.normalize(np.asarray(geometries, dtype=object))
    kept = [i for i, geometry in enumerate(shapes) if geometry is not None and not geometry.is_empty]
    paths = [_path(shapes[i]) for i in kept]
    colours = style.get("facecolor")
    if colours is not None and not isinstance(colours, str) and len(colours) == len(shapes):
        style = {**style, "facecolor": np.take(colours, kept, axis=0)}  # a colour per shape, as geopandas takes them
    ax.set_aspect("equal")
    ax.add_collection(_GeoPandasPolyCollection(paths, **style), autolim=True)
    ax.autoscale_view()


def _path(geometry):
    """One compound path of a (multi)polygon's exterior and interior rings, as geopandas builds it."""
    from matplotlib.path import Path

    rings = []
    for part in getattr(geometry, "geoms", [geometry]):
        rings.append(Path(np.asarray(part.exterior.coords)[:, :2], closed=True))
        rings.extend(Path(np.asarray(r.coords)[:, :2], closed=True) for r in part.interiors)
    return Path.make_compound_path(*rings)


def _patch(geometry, colour: str):
    from matplotlib.patches import PathPatch

    return PathPatch(_path(geometry), facecolor=colour, edgecolor="#555555", lw=0.4)


def _outline_xy(geometry) -> tuple[list, list]:
    xs: list = []
    ys: list = []
    for part in getattr(geometry, "geoms", [geometry]):
        x, y = part.exterior.xy
        xs += list(x) + [np.nan]
        ys += list(y) + [np.nan]
    return xs, ys


def trend_chart(monthly: pd.DataFrame, *, area_code: str, county_code: str, types: Sequence[str],
                area_name: str, county_name: str) -> str:
    """Monthly rate per 1,000 residents, this CSP against the county; missing months are gaps, shaded.

    Written as SVG directly (:mod:`hotspots.render._trend_svg`, the same drawing); with matplotlib
    (:func:`_trend_chart_mpl`) where that does not apply.
    """
    from hotspots.render._trend_svg import trend_svg

    calendar = sorted(monthly["month"].unique())
    styles = [("#1b6ca8", "#8fb3d3"), ("#7b3294", "#c2a5cf")]
    lines = [(crime_type, code, colour, dashed, label) for crime_type, (dark, light) in zip(types, styles)
             for code, colour, dashed, label in ((area_code, dark, False, area_name),
                                                 (county_code, light, True, county_name))]
    rates, absent = _trend_inputs(monthly, calendar, [(code, crime_type) for crime_type, code, *_ in lines])
    series = [(y, colour, dashed, 1.4 if code == area_code else 1.0, f"{label}: {crime_type}")
              for y, (crime_type, code, colour, dashed, label) in zip(rates, lines)]
    gaps = _runs(absent)
    years = [(i, m[:4]) for i, m in enumerate(calendar) if m.endswith("-01")]
    svg = trend_svg(years, len(calendar), series, gaps) if len(calendar) else None
    if svg is not None:
        return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
    return _trend_chart_mpl(monthly, area_code=area_code, county_code=county_code, types=types,
                            area_name=area_name, county_name=county_name)


def _trend_inputs(monthly: pd.DataFrame, calendar: Sequence[str],
                  keys: Sequence[tuple[str, str]]) -> tuple[list[np.ndarray], list[int]]:
    """Each (area, crime type)'s rate per month of ``calendar`` (NaN where none) and the months without data.

    As :func:`_trend_inputs_pandas` (one filter, ``set_index`` and ``reindex`` per series), with
    plain arrays; that is used where a series repeats a month, a key is missing or ``present`` is
    not plain bool.
    """
    present = monthly["present"]
    if present.dtype != bool or monthly[["area_code", "crime_type", "month"]].isna().to_numpy().any():
        return _trend_inputs_pandas(monthly, calendar, keys)
    area = monthly["area_code"].to_numpy(dtype=object)
    kind = monthly["crime_type"].to_numpy(dtype=object)
    month = monthly["month"].to_numpy(dtype=object)
    rate = monthly["rate_per_1000"].to_numpy(dtype=float)
    position = {m: i for i, m in enumerate(calendar)}
    rates = []
    for code, crime_type in keys:
        rows = np.flatnonzero((area == code) & (kind == crime_type))
        at = [position[m] for m in month[rows]]
        if len(set(at)) != len(at):  # a month twice: reindex refuses it, as before
            return _trend_inputs_pandas(monthly, calendar, keys)
        y = np.full(len(calendar), np.nan)
        y[at] = rate[rows]
        rates.append(y)
    first: dict[Any, bool] = {}
    for m, flag in zip(month, present.to_numpy()):
        first.setdefault(m, bool(flag))
    return rates, [i for i, m in enumerate(calendar) if not first[m]]


def _trend_inputs_pandas(monthly: pd.DataFrame, calendar: Sequence[str],
                         keys: Sequence[tuple[str, str]]) -> tuple[list[np.ndarray], list[int]]:
    rates = []
    for code, crime_type in keys:
        part = monthly[(monthly["area_code"] == code) & (monthly["crime_type"] == crime_type)]
        rates.append(part.set_index("month")["rate_per_1000"].reindex(calendar).to_numpy(dtype=float))
    present = monthly.drop_duplicates("month").set_index("month")["present"].reindex(calendar).fillna(False)
    return rates, [i for i, m in enumerate(calendar) if not bool(present[m])]


def _trend_chart_mpl(monthly: pd.DataFrame, *, area_code: str, county_code: str, types: Sequence[str],
                     area_name: str, county_name: str) -> str:
    """:func:`trend_chart` drawn with matplotlib (where the direct SVG does not apply; the reference in tests)."""
    with _rc():
        fig = _figure(9.6, 2.3)
        ax = fig.add_axes((0.06, 0.11, 0.93, 0.74))
        calendar = sorted(monthly["month"].unique())
        position = {m: i for i, m in enumerate(calendar)}
        styles = [("#1b6ca8", "#8fb3d3"), ("#7b3294", "#c2a5cf")]
        xs = np.arange(len(calendar))
        for crime_type, (dark, light) in zip(types, styles):
            for code, colour, ls, label in ((area_code, dark, "-", area_name), (county_code, light, "--", county_name)):
                series = monthly[(monthly["area_code"] == code) & (monthly["crime_type"] == crime_type)]
                y = series.set_index("month")["rate_per_1000"].reindex(calendar).to_numpy(dtype=float)
                ax.plot(xs, y, color=colour, ls=ls, lw=1.4 if code == area_code else 1.0,
                        label=_mpl_text(f"{label}: {crime_type}"))
                # a month with data between two missing months has no line: show it as a dot
                isolated = np.isfinite(y) & ~np.isfinite(np.r_[np.nan, y[:-1]]) & ~np.isfinite(np.r_[y[1:], np.nan])
                ax.plot(xs[isolated], y[isolated], "o", color=colour, ms=2.5)
        present = monthly.drop_duplicates("month").set_index("month")["present"].reindex(calendar).fillna(False)
        gaps = [position[m] for m in calendar if not bool(present[m])]
        for start, stop in _runs(gaps):
            ax.axvspan(start - 0.5, stop + 0.5, color="#f4f4f4", lw=0, zorder=0)
            if stop - start >= 3:
                ax.text((start + stop) / 2, 0.5, "no data", transform=ax.get_xaxis_transform(), ha="center",
                        va="center", color="#999999", fontsize=7)
        ticks = [i for i, m in enumerate(calendar) if m.endswith("-01")]
        ax.set_xticks(ticks, [calendar[i][:4] for i in ticks])
        ax.set_xlim(-0.5, len(calendar) - 0.5)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("per 1,000 residents per month")
        ax.grid(axis="y", color="#eeeeee", lw=0.5)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.02), ncol=4, frameon=False, fontsize=7,
                  handlelength=2.2, borderaxespad=0.0)
        return _svg_uri(fig)


def _runs(values: Iterable[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for v in sorted(values):
        if runs and v == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], v)
        else:
            runs.append((v, v))
    return runs


def choropleth(areas, rows: pd.DataFrame, *, title: str) -> str:
    """CSP map coloured by rate per 1,000 residents, each labelled with its name and rate.

    Labels sit at each polygon's pole of inaccessibility (so a CSP wrapped
    around another, like Three Rivers around Watford, is labelled in its own
    body) with a white halo so they stay legible on any fill.
    """
    import matplotlib as mpl
    from matplotlib import patheffects
    from shapely.ops import polylabel

    with _rc():
        fig = _figure(5.4, 4.8)
        ax = fig.add_axes((0.0, 0.0, 0.84, 0.93))
        data = areas.merge(rows[["area_code", "rate_per_1000"]], on="area_code", how="left")
        data = data.set_geometry(data.geometry.simplify(60))
        values = data["rate_per_1000"].to_numpy(dtype=float)
        norm = mpl.colors.Normalize(vmin=np.nanmin(values) * 0.95, vmax=np.nanmax(values) * 1.02)
        cmap = mpl.colormaps["YlOrRd"]
        colours = [cmap(norm(v)) for v in values]
        if data.crs is not None and data.crs.is_geographic:  # geopandas stretches the aspect by latitude
            data.plot(ax=ax, color=colours, edgecolor="white", linewidth=1.0)
        else:  # what data.plot draws here, without importing pyplot (see _plot_polygons)
            _plot_polygons(ax, data.geometry, facecolor=colours, edgecolor="white", linewidth=1.0)
        halo = [patheffects.withStroke(linewidth=2.2, foreground="white")]
        anchors, small_ones = [], []
        for record in data.itertuples():
            geometry = record.geometry
            if geometry.geom_type == "MultiPolygon":
                geometry = max(geometry.geoms, key=lambda g: g.area)
            point = polylabel(geometry, tolerance=50)
            label = _mpl_text(f"{record.area_name}\n{record.rate_per_1000:.1f}")
            if geometry.area < SMALL_AREA_M2:
                small_ones.append((label, point))
            else:
                anchors.append((point.x, point.y))
                ax.annotate(label, (point.x, point.y), ha="center", va="center", fontsize=7.2, color="#111111",
                            path_effects=halo)
        # small areas: label outside with a leader line, in the direction farthest from other labels
        minx, miny, maxx, maxy = data.total_bounds
        reach = 0.13 * max(maxx - minx, maxy - miny)
        for label, point in small_ones:
            best, best_gap = None, -1.0
            for angle in np.deg2rad(np.arange(0, 360, 30)):
                cx, cy = point.x + reach * np.cos(angle), point.y + reach * np.sin(angle)
                gap = min((math.hypot(cx - x, cy - y) for x, y in anchors), default=reach)
                if gap > best_gap:
                    best, best_gap = (cx, cy), gap
            anchors.append(best)
            ax.annotate(label, (point.x, point.y), xytext=best, ha="center", va="center", fontsize=7.2,
                        color="#111111", path_effects=halo,
                        arrowprops={"arrowstyle": "-", "color": "#444444", "lw": 0.7, "shrinkA": 6, "shrinkB": 1})
        ax.set_axis_off()
        ax.set_aspect("equal")
        ax.set_title(_mpl_text(title), loc="left", y=TITLE_Y)
        cax = fig.add_axes((0.86, 0.25, 0.025, 0.5))
        bar = fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), cax=cax)
        bar.set_label("per 1,000 residents")
        return _svg_uri(fig, tight=True)
