"""The ``outliers`` stage of ``hotspots run``: CSP outlier tables and report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hotspots.stages.context import Context


def stage_outliers(ctx: Context) -> dict[str, Any]:
    """CSP outlier tables (:mod:`hotspots.outliers`), then the report renders them."""
    from hotspots.outliers.tables import stage_outliers as run_outliers
    from hotspots.render.outliers_report import render_report

    summary = run_outliers(ctx)
    ctx.out.write_text(render_report(ctx.results["outliers"]), "outliers/csp_outlier_report.html")
    return summary
