"""The main job, stage by stage: what ``hotspots run`` does.

:func:`prepare` reads the data home once (ingest, LSOA harmonisation, study
area) into a :class:`Context`; each stage in :data:`STAGES` then writes its
outputs through ``ctx.out``, and :func:`write_manifest` records inputs,
parameters (including every automatic choice), outputs and the row
accounting.  The CLI only parses options and calls these functions.
"""

from __future__ import annotations

import dataclasses
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hotspots import __version__
from hotspots._io import OutputDir
from hotspots._parallel import fork_call
from hotspots.geo.aggregate import Period, Periods, add_groups, count_points, rates, reconcile_districts, resolve_periods
from hotspots.config import Settings, month_range, resolve_data_dir
from hotspots.geo.boundaries import Geography, assign_points
from hotspots.io.police_uk import Accounting, harmonise_lsoa, read_police_uk
from hotspots.schema import POLICE_UK_CRIME_TYPES

COUNT_AREA_TYPES = ("force", "district", "csp", "lsoa", "ward", "town_centre")


class Progress:
    """Step-by-step progress on stderr: ``[ingest] 29 files ... 2.9 s``."""

    def __init__(self, echo: Callable[[str], None] | None = None):
        self.echo = echo or (lambda msg: None)
        self.timings: dict[str, float] = {}
        #: the step running now; while stages run side by side each line is tagged with it
        self.current: str | None = None
        self.concurrent = False

    def step(self, name: str):
        return _Step(self, name)

    def info(self, msg: str) -> None:
        if self.concurrent and self.current:
            msg = f"[{self.current}]{msg}"
        self.echo(msg)


class _Step:
    def __init__(self, progress: Progress, name: str):
        self.p, self.name = progress, name

    def __enter__(self):
        self.t0 = time.perf_counter()
        self.p.current = self.name
        self.p.echo(f"[{self.name}] ...")
        return self

    def __exit__(self, exc_type, exc, tb):
        dt = time.perf_counter() - self.t0
        self.p.timings[self.name] = round(dt, 3)
        self.p.current = None
        if exc_type is None:
            self.p.echo(f"[{self.name}] done in {dt:.1f} s")
        return False


@dataclasses.dataclass
class Context:
    """Everything the stages share, computed once."""

    settings: Settings
    data_dir: Path
    out: OutputDir
    geography: Geography
    points: pd.DataFrame
    accounting: Accounting
    months_present: list[str]
    months_missing: list[str]
    periods: Periods
    progress: Progress
    lsoa_harmonisation: dict[str, int] = dataclasses.field(default_factory=dict)
    results: dict[str, Any] = dataclasses.field(default_factory=dict)
    _counts: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)
    #: how the last :func:`run` scheduled its stages (recorded in the manifest)
    schedule: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def crime_types(self) -> list[str]:
        return sorted(self.points["crime_type"].unique())

    def counts(self, area_type: str) -> pd.DataFrame:
        """Counts by area × month × crime type (computed once per area type)."""
        if area_type not in self._counts:
            geo = self.geography
            areas = geo.areas(area_type)
            lsoa_to_area = None
            if area_type == "ward":
                lsoa_to_area = geo.lsoa_ward_lookup.set_index("lsoa21_code")["ward24_code"]
            self._counts[area_type] = count_points(
                self.points, areas, months=self.months_present, crime_types=self.all_crime_types, lsoa_to_area=lsoa_to_area
            )
        return self._counts[area_type]

    @property
    def all_crime_types(self) -> list[str]:
        present = set(self.points["crime_type"].unique())
        return sorted(present | set(POLICE_UK_CRIME_TYPES)) if present <= set(POLICE_UK_CRIME_TYPES) else sorted(present)


def prepare(
    settings: Settings,
    *,
    data: str | None = None,
    out: str | None = None,
    progress: Progress | None = None,
) -> Context:
    """Ingest the data home for the configured forces and months, clip to the force area."""
    progress = progress or Progress()
    data_dir = resolve_data_dir(settings, data)
    out_dir = OutputDir(out or settings.output_dir)
    geo = Geography(data_dir, settings.force_area_code, settings.town_centres, settings.town_centre_name_column)

    with progress.step("ingest"):
        police_dir = data_dir / "police_uk"
        res = read_police_uk(
            [police_dir] if police_dir.is_dir() else [data_dir],
            forces=list(settings.forces),
            first_month=settings.first_month,
            last_month=settings.last_month,
            progress=None,
        )
        progress.info(f"  read {res.accounting.rows_read:,} rows from {len(res.accounting.files)} files")

    with progress.step("geography"):
        force_area = geo.force
        points, lsoa_stats = harmonise_lsoa(res.points, geo.lsoa11_lookup, lsoa21_polygons=geo.lsoa21[["area_code", "geometry"]].rename(columns={"area_code": "lsoa21_code"}))
        pairs = assign_points(points["x"].to_numpy(), points["y"].to_numpy(), force_area)
        inside = np.zeros(len(points), dtype=bool)
        inside[pairs["point"].to_numpy()] = True
        res.accounting.drop(points.loc[~inside, "source_file"], "outside_study_area")
        points = points.loc[inside].reset_index(drop=True)
        res.accounting.check(points)

    present = sorted(points["month"].unique())
    expected = month_range(settings.first_month, settings.last_month)
    missing = [m for m in expected if m not in set(present)]
    periods = resolve_periods(present, settings.current, settings.comparison)
    settings.record_auto("periods", {
        "current": list(periods.current.months),
        "comparison": list(periods.comparison.months) if periods.comparison else [],
        "change_current": list(periods.change_current.months) if periods.change_current else [],
    }, periods.reason)
    progress.info("  " + periods.reason)
    return Context(
        settings=settings, data_dir=data_dir, out=out_dir, geography=geo, points=points, accounting=res.accounting,
        months_present=present, months_missing=missing, periods=periods, progress=progress, lsoa_harmonisation=lsoa_stats,
    )


# --------------------------------------------------------------------------- stages
def stage_counts(ctx: Context) -> dict[str, Any]:
    """Count tables for every area type, rates for the analysis periods, reconciliation."""
    out = ctx.out
    geo = ctx.geography
    periods = [Period(f"all months {ctx.months_present[0]}..{ctx.months_present[-1]}", tuple(ctx.months_present)), ctx.periods.current]
    if ctx.periods.comparison is not None:
        periods.append(ctx.periods.comparison)
        if ctx.periods.change_current is not None and ctx.periods.change_current != ctx.periods.current:
            periods.append(ctx.periods.change_current)
    rate_frames = []
    for area_type in COUNT_AREA_TYPES:
        counts = ctx.counts(area_type)
        out.write_csv(counts, f"counts/counts_{area_type}.csv")
        with_groups = add_groups(counts, ctx.settings.crime_groups)
        rate_frames.append(rates(with_groups, geo.areas(area_type), periods))
    out.write_csv(pd.concat(rate_frames, ignore_index=True), "counts/rates.csv")
    for area_type in COUNT_AREA_TYPES:
        areas = geo.areas(area_type)
        out.write_geo(areas, f"areas/{area_type}.gpkg")

    lsoa_district = geo.lsoa_ward_lookup.set_index("lsoa21_code")["ltla24_code"]
    summary, table = reconcile_districts(ctx.points, geo.districts, lsoa_district)
    out.write_csv(table, "counts/reconciliation_districts.csv")
    ctx.results["reconciliation"] = summary
    ctx.progress.info(
        f"  districts: spatial join agrees with the published LSOA for {summary['agree']:,} of "
        f"{summary['located_rows_in_force_area']:,} located rows ({summary['agreement_share']:.2%})"
    )
    months = pd.DataFrame({"month": month_range(ctx.settings.first_month, ctx.settings.last_month)})
    per_month = ctx.points.groupby("month").size()
    months["rows_kept"] = months["month"].map(per_month).fillna(0).astype(int)
    months["present"] = months["rows_kept"] > 0
    out.write_csv(months, "counts/months.csv")
    return {"reconciliation": summary}


def stage_outliers(ctx: Context) -> dict[str, Any]:
    """CSP outlier tables (:mod:`hotspots.outliers`), then the report renders them."""
    from hotspots.outliers.tables import stage_outliers as run_outliers
    from hotspots.render.outliers_report import render_report

    summary = run_outliers(ctx)
    ctx.out.write_text(render_report(ctx.results["outliers"]), "outliers/csp_outlier_report.html")
    return summary


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


def stage_evaluate(ctx: Context) -> dict[str, Any]:
    """Before/after evaluation (:mod:`hotspots.evaluate`), then the Commissioner's report renders it."""
    from hotspots.evaluation._evaluate import stage_evaluate as run_evaluation
    from hotspots.render.evaluation_report import render_evaluation_report

    summary = run_evaluation(ctx)
    ctx.out.write_text(render_evaluation_report(ctx.results["evaluation_result"]), "evaluation/evaluation_report.html")
    return summary


#: stage name -> function(ctx) -> summary dict; run in this order by ``hotspots run``
STAGES: dict[str, Callable[[Context], dict[str, Any]]] = {
    "counts": stage_counts,
    "outliers": stage_outliers,
    "hotspots": stage_hotspots,
    "evaluate": stage_evaluate,
}


def run(ctx: Context, stages: list[str] | None = None) -> dict[str, Any]:
    """Run stages (default: all) and write the manifest.

    The hotspots stage is the longest and shares nothing with the others, so
    where there are two or more CPUs the other stages run beside it, in order,
    in a forked process (:func:`side_stages`); the outputs are the same either
    way.  ``HOTSPOTS_WORKERS=1`` runs everything here, one stage after another.
    """
    names = stages or list(STAGES)
    side = side_stages(names)
    ctx.progress.concurrent = bool(side)  # set before the fork: the child's lines are tagged too
    pending = fork_call(lambda: _run_side(ctx, side), name=" and ".join(side) + " stages") if side else None
    if pending is None:  # one CPU, or not Linux: everything here, in order
        side = []
        ctx.progress.concurrent = False
    main = [n for n in names if n not in side]
    summaries: dict[str, Any] = {}
    try:
        for name in main:
            with ctx.progress.step(name):
                summaries[name] = STAGES[name](ctx)
    except BaseException:
        if pending is not None:
            pending.cancel()
        raise
    if pending is not None:
        _merge_side(ctx, pending.result(), summaries)
    ctx.progress.concurrent = False
    ctx.schedule = {"stages": names, "side_by_side": [main, side] if side else [names]}
    write_manifest(ctx, stages=names, summaries={n: summaries[n] for n in names})
    return summaries


def side_stages(names: list[str]) -> list[str]:
    """The stages to run in a second process beside the hotspots stage (empty: run them all in turn here)."""
    if "hotspots" not in names or len(names) < 2:
        return []
    return [n for n in names if n != "hotspots"]


def _run_side(ctx: Context, names: list[str]) -> dict[str, Any]:
    """In the forked process: run ``names`` in turn; return everything the manifest and the caller need."""
    first_output = len(ctx.out.written)
    known_results = set(ctx.results)
    summaries = {}
    for name in names:
        with ctx.progress.step(name):
            summaries[name] = STAGES[name](ctx)
    return {
        "summaries": summaries,
        "written": ctx.out.written[first_output:],
        "auto": ctx.settings.auto,
        "sources": ctx.geography.sources,
        "timings": {n: ctx.progress.timings[n] for n in names},
        "results": {k: v for k, v in ctx.results.items() if k not in known_results},
    }


def _merge_side(ctx: Context, side: dict[str, Any], summaries: dict[str, Any]) -> None:
    summaries.update(side["summaries"])
    ctx.out.written.extend(side["written"])
    ctx.settings.auto.update(side["auto"])
    ctx.geography.sources.update(side["sources"])
    ctx.progress.timings.update(side["timings"])
    ctx.results.update(side["results"])


def write_manifest(ctx: Context, *, stages: list[str], summaries: dict[str, Any]) -> Path:
    """Write ``manifest.json``: inputs with checksums, parameters, accounting, outputs."""
    acc = ctx.accounting.to_dict()
    ctx.accounting.check(ctx.points)
    manifest = {
        "tool": "hotspots",
        "version": __version__,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "command": " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:]) if sys.argv else "",
        "stages": stages,
        "settings": ctx.settings.to_manifest(),
        "data_dir": str(ctx.data_dir),
        "inputs": {
            "police_files": [
                {k: f[k] for k in ("path", "force", "month", "rows_read", "sha256", "bytes", "encoding")} for f in acc["files"]
            ],
            "geography_files": ctx.geography.sources,
        },
        "months": {"present": ctx.months_present, "missing": ctx.months_missing},
        "lsoa_harmonisation": ctx.lsoa_harmonisation,
        "row_accounting": acc,
        "summaries": summaries,
        "timings_s": ctx.progress.timings,
        "schedule": ctx.schedule or {"stages": stages, "side_by_side": [stages]},
        "outputs": ctx.out.written,
    }
    return ctx.out.write_json(manifest, "manifest.json")
