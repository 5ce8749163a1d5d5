"""The ``evaluate`` stage of ``hotspots run``: before/after evaluation and its report.

The stage reads ``[evaluation]`` (:mod:`hotspots.stages._evaluate_config`),
picks the treated areas and periods, records every automatic choice, calls
the analysis (:mod:`hotspots.evaluation`), writes ``evaluation/`` and has the
renderer (:mod:`hotspots.render.evaluation_report`) draw the report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hotspots.months import month_range

if TYPE_CHECKING:  # pragma: no cover
    from hotspots.stages.context import Context


def stage_evaluate(ctx: Context) -> dict[str, Any]:
    """Before/after evaluation of the treated areas; writes ``evaluation/`` under ``ctx.out``.

    Outputs: ``evaluation_summary.csv``, ``evaluation_areas.csv``,
    ``evaluation_monthly.csv``, ``treated_areas.gpkg`` (areas, buffers and
    controls, column ``role``) and ``evaluation_report.html``.
    """
    from hotspots.evaluation._analysis import _evaluate_areas
    from hotspots.render.evaluation_report import render_evaluation_report
    from hotspots.stages._evaluate_config import (
        DEFAULT_CRIME_TYPES,
        TREATED_AREA_SOURCES,
        _source_file,
        evaluation_config,
        resolve_crime_types,
        resolve_evaluation_periods,
    )

    settings = ctx.settings
    raw = settings.extra.get("evaluation", {}) or {}
    cfg = evaluation_config(raw, settings.crime_groups)
    record = settings.record_auto

    before, after, why = resolve_evaluation_periods(ctx.months_present, cfg.before, cfg.after)
    record("evaluation.periods", {"before": list(before.months), "after": list(after.months)}, why)
    names = cfg.crime_types or tuple(n for n in DEFAULT_CRIME_TYPES if n in settings.crime_groups) or ("Anti-social behaviour",)
    if not cfg.crime_types:
        record("evaluation.crime_types", list(names), "default: ASB and violence together (the groups of the config that exist), then each on its own")
    crime_types = resolve_crime_types(names, settings.crime_groups)
    primary = next(iter(crime_types))

    if cfg.areas:
        treated = _source_file(ctx, cfg)
        record("evaluation.areas", cfg.areas, "treated areas from the polygon file in the config / --areas")
    else:
        source = TREATED_AREA_SOURCES[cfg.selection]
        treated = source(ctx, cfg, before=before, crime_types=crime_types[primary], group_name=primary)
        record("evaluation.areas", f"illustrative: {cfg.selection}",
               "no areas file given, so the toolkit's own ILLUSTRATIVE areas are evaluated: " + treated.description)
    if "buffer_m" not in raw:
        record("evaluation.buffer_m", cfg.buffer_m, "default displacement buffer width")
    if "control" not in raw:
        record("evaluation.control", cfg.control, "default: the rest of the county excluding treated areas and buffers")
    if "placebo_draws" not in raw or "seed" not in raw:
        record("evaluation.placebo", {"draws": cfg.placebo_draws, "seed": cfg.seed},
               "the headline interval is calibrated on this many placebo sets of equally busy untreated cells, "
               "drawn with this seed (set [evaluation] placebo_draws / seed to change)")
    record("evaluation.panel_family", "poisson",
           "Poisson fixed effects with cluster-robust (by area) standard errors, valid under overdispersion; "
           "negative binomial reported as a sensitivity check")

    if len(treated.areas) > 100:  # minutes of work for thousands of areas: say what is going on
        ctx.progress.info(f"  {len(treated.areas):,} treated areas: buffers, controls and {len(crime_types)} crime "
                          "type(s), area by area ...")
    result = _evaluate_areas(
        ctx.points, treated, ctx.geography.districts,
        months_present=ctx.months_present, before=before, after=after, crime_types=crime_types,
        buffer_m=cfg.buffer_m, control=cfg.control, funding_gbp=cfg.funding_gbp,
        all_months=month_range(settings.first_month, settings.last_month), study_area=ctx.geography.force,
        placebo_draws=cfg.placebo_draws, seed=cfg.seed,
    )
    result.meta["programme"] = cfg.programme
    result.meta["published_figure"] = cfg.published_figure
    result.meta["config_notes"] = cfg.notes
    for key, (value, reason) in result.auto.items():
        record(f"evaluation.{key}", value, reason)
    result.meta["force_name"] = ctx.geography.force_name
    result.meta["period_reason"] = why
    result.meta["auto"] = {k: v for k, v in settings.auto.items() if k.startswith("evaluation.")}

    out = ctx.out
    out.write_csv(result.summary, "evaluation/evaluation_summary.csv")
    out.write_csv(result.areas_table, "evaluation/evaluation_areas.csv")
    out.write_csv(result.monthly, "evaluation/evaluation_monthly.csv")
    out.write_geo(result.geometries, "evaluation/treated_areas.gpkg")
    ctx.results["evaluation_result"] = result

    f = result.findings[0]
    summary = {
        "headline": result.headline,
        "areas": treated.description,
        "illustrative": treated.illustrative,
        "before": before.label, "after": after.label, "control": cfg.control, "buffer_m": cfg.buffer_m,
        "crime_type": f["crime_type"],
        "pct_change_vs_control": f["did"]["pct_change_vs_control"],
        "pct_low": f["did"]["pct_low"], "pct_high": f["did"]["pct_high"], "p_value": f["did"]["p_value"],
        "displacement": f["displacement_verdict"], "rtm": f["rtm_verdict"],
        "overall_verdict": f["overall_verdict"],
        "cost": (f["cost_sentence"] if f["overall_verdict"] == "credible reduction" else
                 f"not reported: nothing is credited to the patrols ({f['overall_verdict']})"),
        "placebo_draws": (f.get("calibrated") or {}).get("n_draws"), "placebo_seed": (f.get("calibrated") or {}).get("seed"),
    }
    ctx.results["evaluation"] = summary
    ctx.progress.info("  " + result.headline)
    out.write_text(render_evaluation_report(result), "evaluation/evaluation_report.html")
    return summary
