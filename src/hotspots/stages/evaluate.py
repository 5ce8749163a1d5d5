"""The ``evaluate`` stage of ``hotspots run``: before/after evaluation and its report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hotspots.stages.context import Context


def stage_evaluate(ctx: Context) -> dict[str, Any]:
    """Before/after evaluation (:mod:`hotspots.evaluate`), then the Commissioner's report renders it."""
    from hotspots.evaluation._evaluate import stage_evaluate as run_evaluation
    from hotspots.render.evaluation_report import render_evaluation_report

    summary = run_evaluation(ctx)
    ctx.out.write_text(render_evaluation_report(ctx.results["evaluation_result"]), "evaluation/evaluation_report.html")
    return summary
