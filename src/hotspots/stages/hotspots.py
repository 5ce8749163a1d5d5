"""The ``hotspots`` stage of ``hotspots run``: grid hotspots, patrol areas, inspectors' maps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hotspots.stages.context import Context


def stage_hotspots(ctx: Context, *, districts=None, maps: bool | None = None, png: bool = True) -> dict[str, Any]:
    """Grid hotspots and patrol areas (:mod:`hotspots.hotspots_stage`), then the inspectors' maps."""
    from hotspots.detect._stage import hotspot_config, run_hotspots

    draw = maps if maps is not None else hotspot_config(ctx.settings).maps
    preload = None
    if draw:
        from hotspots.render.maps import preload
    summary = run_hotspots(ctx, districts=districts, defer_grid_cells=True, while_analysing=preload)
    res = ctx.results["hotspots"]
    write_grid_cells = res.pop("write_grid_cells")
    if draw:
        from hotspots.render.maps import build_map_views, write_maps

        views = build_map_views(ctx, res["inputs"], res["config"], res["county"], res["districts"], res["tables"])
        # the largest table is written here while worker processes draw the maps
        written = write_maps(ctx.out, views, png=png, progress=ctx.progress, alongside=write_grid_cells)
        summary["maps"] = {w["slug"]: w["html_bytes"] for w in written}
    else:
        write_grid_cells()
    return summary
