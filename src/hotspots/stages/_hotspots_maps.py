"""The hotspots stage's maps: what each map shows (from the stage's results) and writing them under ``maps/``.

The renderers (:mod:`hotspots.render.maps`) draw a finished
:class:`~hotspots.render.maps.MapView` into an HTML string and PNG bytes;
this module builds the views (the county ranking and the clusters shown come
from :mod:`hotspots.detect.tables`), has the pages drawn in worker
processes and writes them through the output folder.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from hotspots._parallel import collector_paused, process_map
from hotspots._text import slug
from hotspots.detect.tables import county_patrol_ranking, largest_clusters, street_context
from hotspots.io.roads import read_roads
from hotspots.months import human_period
from hotspots.render.maps import (
    MapView,
    SelectionView,
    leaflet_assets,
    render_html,
    static_map_png,
)
from hotspots.render.map_views import GI_COLOURS
from hotspots.schema import ASB, BNG

__all__ = ["build_map_views", "write_maps", "LazyView"]


def _draw(view: MapView, png: bool) -> tuple[str, bytes | None]:
    with collector_paused():
        return render_html(view), (static_map_png(view) if png else None)


class LazyView:
    """A map view made where its map is drawn: ``make()`` gives the :class:`MapView`.

    :func:`build_map_views` with ``lazy=True`` gives these, so that the
    views (their street context and county ranking, about a twentieth of a
    map's time) are made by the worker processes that draw the maps, side
    by side, instead of one after another before them.  ``slug`` names the
    files and ``weight`` orders the work (heaviest first), as a view's cells
    and patrol areas do.
    """

    def __init__(self, slug: str, weight: float, make: Callable[[], MapView]):
        self.slug, self.weight, self.make = slug, weight, make


def _weight(view) -> float:
    """The work of drawing a map, for handing the heaviest out first."""
    if isinstance(view, LazyView):
        return view.weight
    return sum(len(s.cells) + 200 * len(s.patrol_areas if s.patrol_areas is not None else ()) for s in view.selections)


def write_maps(out, views: Sequence[MapView], *, png: bool = True, progress=None,
               alongside: Callable[[], Any] | None = None) -> list[dict]:
    """Write ``maps/<slug>.html`` (and ``maps/<slug>.png``) for each view through an OutputDir.

    The maps are drawn in parallel worker processes where there are several
    CPUs (:func:`hotspots._parallel.process_map`); they are written here, in order.
    A view may be a :class:`LazyView`, made where it is drawn.
    ``alongside`` is called in this process while the workers draw.
    """
    leaflet_assets()  # read once, before the workers start

    def render(view) -> tuple[str, bytes | None]:
        return _draw(view.make() if isinstance(view, LazyView) else view, png)

    weights = [_weight(view) for view in views]
    written = []
    for view, (page, image) in zip(views, process_map(render, views, weights=weights, alongside=alongside)):
        path = out.write_text(page, f"maps/{view.slug}.html")
        row = {"slug": view.slug, "html": f"maps/{view.slug}.html", "html_bytes": len(page.encode("utf-8"))}
        if image is not None:
            out.write_bytes(image, f"maps/{view.slug}.png")
            row["png"] = f"maps/{view.slug}.png"
        written.append(row)
        if progress is not None:
            progress.info(f"  map {path.name}: {row['html_bytes'] / 1e6:.2f} MB")
    return written


def build_map_views(ctx, inputs, cfg, county, district_results, tables: dict[str, pd.DataFrame], *,
                    lazy: bool = False) -> list:
    """Map views of the hotspots stage's results: one for the county, then one per district.

    Besides the results, each view gets its street context: the police.uk map
    points of the analysis period with their "On or near …" names (the
    names inside patrol areas labelled first), and the roads under
    ``<data>/roads`` when there are any (:func:`hotspots.io.roads.read_roads`).
    ``lazy=True`` gives :class:`LazyView` s instead, each making its
    :class:`MapView` (the same) when asked, for :func:`write_maps` to make
    where it draws the map.
    """
    geo = ctx.geography
    if lazy:  # the layers every view reads, made here once (a forked worker would make its own copy each)
        geo.districts, geo.wards, geo.town_centres  # noqa: B018
    months = list(inputs.current)
    period = human_period(f"{months[0]}..{months[-1]}") if months else ""
    half = len(months) // 2
    halves = ((human_period(f"{months[0]}..{months[half - 1]}"), human_period(f"{months[-half]}..{months[-1]}"))
              if half else None)
    patrol = tables["patrol_areas"]
    if len(patrol) and halves:  # the trend in words, made once for all the maps' rows (a row's words are its own)
        patrol = patrol.assign(trend=[_trend_words(t, c, halves) for t, c in zip(patrol["trend"],
                                                                                   patrol["change_h2_vs_h1_pct"])])
    default = cfg.map_selection or next(iter(inputs.selections))
    ts_note = ("Busiest hours of the week are in each patrol area's pop-up." if "datetime" in inputs.points.columns else
               "police.uk gives the month only, so these maps cannot show times of day.")
    codes = inputs.codes
    rows = np.flatnonzero(codes.in_months(months))
    row_x, row_y = codes.x[rows], codes.y[rows]
    views = []
    tc_summary = _tc_summary(tables["town_centres"])  # the same for every map

    def view_for(res, title: str, slug_name: str, districts, wards, show_district: bool, patrol_sub):
        sels = []
        by_selection = _by_selection(patrol_sub)
        for sel, sres in res.selections.items():
            if show_district:  # county view: its rows of the selection ranked within the county by the ranking value
                pa = county_patrol_ranking(by_selection(sel), selection=sel, rank_by=cfg.rank_by)
            else:
                pa = by_selection(sel)  # a new frame
            # the largest clusters only (all are in clusters.csv)
            shapes = largest_clusters(sres.cluster_shapes)
            present = {str(c) for c in pd.unique(sres.cells["gi_class"])} if "gi_class" in sres.cells else set()
            label, definition = _selection_words(sel, inputs.selections.get(sel, ()))
            sels.append(SelectionView(name=sel, cells=sres.cells, patrol_areas=pa, clusters=shapes,
                                      grid=res.grid.attrs.get("grid"), note=sres.note,
                                      classes=[c for c in GI_COLOURS if c in present], label=label,
                                      definition=definition))
        study = gpd.GeoDataFrame({"area_name": [res.area.name]}, geometry=[res.area.geometry], crs=BNG)
        notes = [f"Coloured squares ({res.area.cell_size:,.0f} m): places with much more crime (red) or less (blue) "
                 "than their surroundings, beyond what chance would give. Numbered outlines: patrol areas, the busiest "
                 f"groups of red squares, up to {cfg.top_n} per district. Grey dots: the police.uk map points where "
                 "records are placed (each record is moved to the nearest of these for anonymity).", ts_note]
        technical = [f"Grid of {res.area.cell_size:,.0f} m cells ({res.area.cell_size_reason}). Hot and cold spots: "
                     "Getis-Ord Gi* (Ord & Getis 1995), queen neighbours, p-values corrected for multiple testing by the "
                     "false discovery rate (Benjamini-Hochberg) across the area.",
                     f"Patrol areas: contiguous hot cells at {cfg.patrol_confidence}% confidence or more, merged, "
                     f"ranked by {cfg.rank_by}; the top {cfg.top_n} per district and selection.",
                     (f"Trend: the second half of the period ({halves[1]}) against the first ({halves[0]}), with a "
                      "Mann-Kendall test on the monthly counts." if halves else "")]
        opening = by_selection(default)
        patrol_geoms = list(opening.geometry) if len(opening) else []
        # only the records in the area's bounding box can be in the area: the others are not tested against it
        minx, miny, maxx, maxy = res.area.geometry.bounds
        boxed = rows[(row_x >= minx) & (row_x <= maxx) & (row_y >= miny) & (row_y <= maxy)]
        points, labels = street_context(codes, boxed, res.area.geometry, patrol_geoms, points_too=not show_district,
                                        max_labels=400 if show_district else 900)
        data_dir = getattr(ctx, "data_dir", None)
        roads = None if show_district or data_dir is None else read_roads(data_dir, tuple(res.area.geometry.bounds))
        return MapView(slug=slug_name, title=title, period_label=period, study_area=study, selections=sels,
                       districts=districts, town_centres=_clip(geo.town_centres, res.area.geometry),
                       town_centre_summary=tc_summary,
                       wards=wards, default_selection=default, notes=notes, technical_notes=[t for t in technical if t],
                       map_points=points, street_labels=labels, roads=roads, web_tiles=bool(cfg.map_tiles),
                       half_labels=halves)

    def add(res, title: str, slug_name: str, districts, wards, show_district: bool, patrol_sub):
        args = (res, title, slug_name, districts, wards, show_district, patrol_sub)
        if not lazy:
            views.append(view_for(*args))
            return
        per_selection = patrol_sub["selection"].value_counts() if len(patrol_sub) else pd.Series(dtype=int)
        weight = sum(len(sres.cells) + 200 * int(per_selection.get(sel, 0)) for sel, sres in res.selections.items())
        views.append(LazyView(slug_name, weight, functools.partial(view_for, *args)))

    county_title = f"{county.area.name}: crime hotspots and patrol areas"
    add(county, county_title, "county", geo.districts, None, True, patrol)
    for res in district_results:
        wards = geo.wards[geo.wards["district_code"] == res.area.code]
        sub = patrol[patrol["district_code"] == res.area.code] if len(patrol) else patrol
        d = geo.districts[geo.districts["area_code"] == res.area.code]
        add(res, f"{res.area.name}: crime hotspots and patrol areas", slug(res.area.name, empty="x"), d, wards, False, sub)
    return views


def _by_selection(patrol: pd.DataFrame) -> Callable[[str], pd.DataFrame]:
    """``patrol[patrol["selection"] == sel]`` for any ``sel`` (``patrol`` itself when it is empty).

    The rows of every selection come from one grouping (a district map asks
    for each of its seven selections and the opening one; a filter each took
    every column of the table each time); a selection the grouping does not
    give is filtered the long way.
    """
    if not len(patrol):
        return lambda sel: patrol
    groups = dict(iter(patrol.groupby("selection", sort=False, observed=True)))

    def rows(sel: str) -> pd.DataFrame:
        found = groups.get(sel)
        return found.copy() if found is not None else patrol[patrol["selection"] == sel]

    return rows


def _trend_words(trend, change, halves: tuple[str, str]) -> str:
    """ "rising (H2 vs H1 +62%)" in words, the later half of the period first.

    >>> _trend_words("rising (H2 vs H1 +62%)", 62.0, ("Jan–Jun 2025", "Jul–Dec 2025"))
    'rising: +62% Jul–Dec on Jan–Jun 2025'
    """
    word = str(trend).split(" (")[0] if isinstance(trend, str) else ""
    if change is None or not np.isfinite(change):
        return word
    earlier, later = halves
    if later[-4:] == earlier[-4:]:  # "Jul–Dec on Jan–Jun 2025"
        later = later[:-5]
    return f"{word}: {change:+.0f}% {later} on {earlier}"


def _selection_words(name: str, members) -> tuple[str, str]:
    """The map's name for a selection and its definition: "All crime" that leaves ASB out says so everywhere."""
    members = tuple(members)
    if not members:
        return name, ""
    has_asb = ASB in members
    if "all crime" in name.lower() and not has_asb:
        return f"{name} (excl. ASB)", (f"{len(members)} police.uk crime types; anti-social behaviour (ASB) is not "
                                       "included (police.uk's \"All crime\" includes it): see the ASB layer")
    if len(members) == 1:
        return name, f"police.uk category: {members[0]}"
    return name, "police.uk categories: " + ", ".join(members)


def _tc_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Town-centre rows for the map pop-ups, with patrol areas shown by their rank (ids are long)."""
    out = table.copy()
    out["patrol_areas"] = out["patrol_areas"].fillna("").str.replace(r"(#\d+) [^;]+", r"\1", regex=True)
    return out


def _clip(gdf: gpd.GeoDataFrame, geom) -> gpd.GeoDataFrame:
    if gdf is None or len(gdf) == 0:
        return gdf
    return gdf[gdf.geometry.intersects(geom)]
