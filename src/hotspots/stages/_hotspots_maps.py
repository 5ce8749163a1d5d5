"""The hotspots stage's maps: what each map shows (from the stage's results) and writing them under ``maps/``.

The renderers (:mod:`hotspots.render.maps`) draw a finished
:class:`~hotspots.render.maps.MapView` into an HTML string and PNG bytes;
this module builds the views (the county ranking and the clusters shown come
from :mod:`hotspots.detect.tables`), has the pages drawn in worker
processes and writes them through the output folder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import geopandas as gpd
import pandas as pd

from hotspots._parallel import process_map
from hotspots._text import slug
from hotspots.detect.tables import county_patrol_ranking, largest_clusters
from hotspots.render.maps import (
    MapView,
    SelectionView,
    leaflet_assets,
    render_html,
    static_map_png,
)
from hotspots.schema import BNG

__all__ = ["build_map_views", "write_maps"]


def _draw(view: MapView, png: bool) -> tuple[str, bytes | None]:
    return render_html(view), (static_map_png(view) if png else None)


def write_maps(out, views: Sequence[MapView], *, png: bool = True, progress=None,
               alongside: Callable[[], Any] | None = None) -> list[dict]:
    """Write ``maps/<slug>.html`` (and ``maps/<slug>.png``) for each view through an OutputDir.

    The maps are drawn in parallel worker processes where there are several
    CPUs (:func:`hotspots._parallel.process_map`); they are written here, in order.
    ``alongside`` is called in this process while the workers draw.
    """
    leaflet_assets()  # read once, before the workers start

    def render(view: MapView) -> tuple[str, bytes | None]:
        return _draw(view, png)

    weights = [sum(len(s.cells) + 200 * len(s.patrol_areas if s.patrol_areas is not None else ())
                   for s in view.selections) for view in views]
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


def build_map_views(ctx, inputs, cfg, county, district_results, tables: dict[str, pd.DataFrame]) -> list[MapView]:
    """Map views of the hotspots stage's results: one for the county, then one per district."""
    geo = ctx.geography
    period = f"{ctx.periods.current.label}"
    patrol = tables["patrol_areas"]
    default = cfg.map_selection or next(iter(inputs.selections))
    ts_note = ("Hour-of-week profiles are in each patrol area's pop-up." if "datetime" in inputs.points.columns else
               "police.uk gives the month only: no times of day, so no hour-of-week profile.")
    views = []

    def view_for(res, title: str, slug_name: str, districts, wards, show_district: bool, patrol_sub):
        sels = []
        for sel, sres in res.selections.items():
            if show_district:  # county view: ranked within the county by the ranking value
                pa = county_patrol_ranking(patrol_sub, selection=sel, rank_by=cfg.rank_by)
            else:
                pa = patrol_sub[patrol_sub["selection"] == sel].copy() if len(patrol_sub) else patrol_sub
            # the largest clusters only (all are in clusters.csv)
            shapes = largest_clusters(sres.cluster_shapes)
            sels.append(SelectionView(name=sel, cells=sres.cells, patrol_areas=pa, clusters=shapes,
                                      grid=res.grid.attrs.get("grid"), note=sres.note))
        study = gpd.GeoDataFrame({"area_name": [res.area.name]}, geometry=[res.area.geometry], crs=BNG)
        notes = [f"Grid {res.area.cell_size:,.0f} m cells; Gi* with FDR (Benjamini-Hochberg) across the area. "
                 f"Patrol areas: merged hot cells at ≥{cfg.patrol_confidence}% confidence, top {cfg.top_n} per district "
                 f"by {cfg.rank_by}.", ts_note]
        return MapView(slug=slug_name, title=title, period_label=period, study_area=study, selections=sels,
                       districts=districts, town_centres=_clip(geo.town_centres, res.area.geometry),
                       town_centre_summary=_tc_summary(tables["town_centres"]),
                       wards=wards, default_selection=default, notes=notes)

    county_title = f"{county.area.name}: crime hotspots and patrol areas"
    views.append(view_for(county, county_title, "county", geo.districts, None, True, patrol))
    for res in district_results:
        wards = geo.wards[geo.wards["district_code"] == res.area.code]
        sub = patrol[patrol["district_code"] == res.area.code] if len(patrol) else patrol
        d = geo.districts[geo.districts["area_code"] == res.area.code]
        views.append(view_for(res, f"{res.area.name}: crime hotspots and patrol areas", slug(res.area.name, empty="x"), d, wards,
                              False, sub))
    return views


def _tc_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Town-centre rows for the map pop-ups, with patrol areas shown by their rank (ids are long)."""
    out = table.copy()
    out["patrol_areas"] = out["patrol_areas"].fillna("").str.replace(r"(#\d+) [^;]+", r"\1", regex=True)
    return out


def _clip(gdf: gpd.GeoDataFrame, geom) -> gpd.GeoDataFrame:
    if gdf is None or len(gdf) == 0:
        return gdf
    return gdf[gdf.geometry.intersects(geom)]
