"""Running stages: the order, the side-by-side schedule and the run manifest."""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from hotspots._errors import DataNotFoundError
from hotspots._version import __version__
from hotspots._parallel import fork_call, long_lived_scope, max_workers
from hotspots.stages.context import Context
from hotspots.stages.counts import stage_counts
from hotspots.stages.evaluate import stage_evaluate
from hotspots.stages.hotspots import stage_hotspots
from hotspots.stages.outliers import stage_outliers


#: stage name -> function(ctx) -> summary dict; run in this order by ``hotspots run``
STAGES: dict[str, Callable[[Context], dict[str, Any]]] = {
    "counts": stage_counts,
    "outliers": stage_outliers,
    "hotspots": stage_hotspots,
    "evaluate": stage_evaluate,
}


#: output folders each stage writes: a skipped stage's folder is emptied, so no earlier run's files stay
#: beside a manifest that says the stage was skipped
STAGE_FOLDERS: dict[str, tuple[str, ...]] = {
    "counts": ("counts", "areas"), "outliers": ("outliers",), "hotspots": ("hotspots", "maps"), "evaluate": ("evaluation",),
}


class StageSkipped(DataNotFoundError):
    """A stage asked for by name could not run on this data (its reason is in the message); the others ran."""


def run(ctx: Context, stages: list[str] | None = None, *, side_results: bool = True) -> dict[str, Any]:
    """Run stages (default: all) and write the manifest; a stage that cannot run on the data is skipped.

    A stage that stops with :class:`~hotspots._errors.DataNotFoundError`
    (the data cannot support it: for example the evaluation when no month has
    the same month a year earlier, as in a one-year data home) is skipped:
    its reason is printed and recorded under ``skipped`` in the manifest, the
    folder it writes is left empty, and the other stages' outputs are written.
    With ``stages=None`` (everything, what ``hotspots run`` does) the run then
    succeeds; when the skipped stage was asked for by name, :class:`StageSkipped`
    is raised after the manifest is written (the command exits 2).  Any other
    error stops the run as before.

    The hotspots stage is the longest and shares nothing with the others, so
    where there are two or more CPUs the other stages run beside it, in order,
    in a forked process (:func:`side_stages`); those it has not begun when the
    hotspots stage is done (a warm re-run, whose analyses and maps are read
    back) run here meanwhile (:class:`SideQueue`).  The outputs, and the order
    the manifest lists them in, are the same either way.  ``HOTSPOTS_WORKERS=1``
    runs everything here, one stage after another.  Records that
    :func:`~hotspots.stages.context.prepare` left for the records cache
    (``defer_records_store=True``) are written first, by the side process
    where there is one (off the hotspots stage's path), else here.

    ``side_results=False`` (the ``hotspots`` command, which only writes the
    outputs) leaves the side stages' analysis results out of ``ctx.results``:
    they are not sent back from the forked process, so this process never
    imports the modules that define them (the outliers' and evaluation's, with
    scipy.stats).  Outputs, manifest and summaries are the same.
    """
    with long_lived_scope():  # the prepared records and geography, then the results, stay out of the collector's way
        return _run(ctx, stages, side_results)


def _run(ctx: Context, stages: list[str] | None, side_results: bool = True) -> dict[str, Any]:
    names = stages or list(STAGES)
    side = side_stages(names)
    if side and max_workers() >= 2 and "hotspots" in names:  # shared only when the hotspots stage runs here too
        _read_shared_geography(ctx)
    ctx.progress.concurrent = bool(side)  # set before the fork: the child's lines are tagged too
    queue = SideQueue(side) if side else None
    pending = fork_call(lambda: _run_side(ctx, queue, results=side_results), name=" and ".join(side) + " stages") \
        if side else None
    if pending is None:  # one CPU, or not Linux: everything here, in order
        side = []
        ctx.progress.concurrent = False
        store_records(ctx)
    else:
        ctx.pending_records_store = None  # the side process writes the records cache (it has them too)
    main = [n for n in names if n not in side]
    summaries: dict[str, Any] = {}
    skipped: dict[str, dict[str, str]] = {}
    first_output = len(ctx.out.written)
    parts: dict[str, list] = {}  # each stage's entries of ctx.out.written
    ran_here = list(main)
    try:
        for name in main:
            _run_stage(ctx, name, summaries, skipped, parts)
        # the side stages the side process has not begun yet are run here (it may still be busy with one)
        while pending is not None and (name := queue.take()) is not None:
            ran_here.append(name)
            _run_stage(ctx, name, summaries, skipped, parts)
    except BaseException:
        if pending is not None:
            pending.cancel()
        raise
    ran_beside = []
    if pending is not None:
        ran_beside = _merge_side(ctx, pending.result(), summaries, skipped, parts)
    # the outputs are listed in the same order whichever process wrote them: this process's stages, then the side's
    del ctx.out.written[first_output:]
    for name in main + side:
        ctx.out.written.extend(parts.get(name, ()))
    ctx.progress.concurrent = False
    ctx.schedule = {"stages": names, "side_by_side": [ran_here, ran_beside] if side else [names]}
    ctx.results["skipped_stages"] = {n: skipped[n] for n in names if n in skipped}  # for the command's summary
    for name in skipped:
        _clear_stage_outputs(ctx, name)
    write_manifest(ctx, stages=names, summaries={n: summaries[n] for n in names if n in summaries},
                   skipped={n: skipped[n] for n in names if n in skipped})
    if stages is not None and skipped:
        raise StageSkipped(
            "; ".join(f"stage {n} could not run: {s['reason']}" for n, s in skipped.items())
            + f" (the other stages' outputs are in {ctx.out.root})",
            hint="; ".join(s["hint"] for s in skipped.values() if s["hint"]) or None,
        )
    return summaries


def _run_stage(ctx: Context, name: str, summaries: dict[str, Any], skipped: dict[str, dict[str, str]],
               parts: dict[str, list] | None = None) -> None:
    """Run one stage into ``summaries``; a stage the data cannot support goes into ``skipped`` with its reason.

    ``parts`` (when given) gets the stage's entries of ``ctx.out.written``, under its name.
    """
    first_output = len(ctx.out.written)
    try:
        with ctx.progress.step(name):
            summaries[name] = STAGES[name](ctx)
    except DataNotFoundError as exc:
        del ctx.out.written[first_output:]
        skipped[name] = {"reason": exc.message, "hint": exc.hint or ""}
        ctx.progress.echo(f"[{name}] SKIPPED: {exc.message}" + (f" (to run it: {exc.hint})" if exc.hint else ""))
    if parts is not None:
        parts[name] = ctx.out.written[first_output:]


class SideQueue:
    """The side stages, each taken once, in order, by whichever process is free first.

    The forked side process takes them one after another; this process takes
    those still waiting once its own stages are done (a warm re-run, whose
    hotspots stage reads its analyses and maps back, finishes first).  The
    next position lives in shared memory made before the fork, under a lock.
    """

    def __init__(self, names: list[str]):
        import multiprocessing

        self.names = list(names)
        self._next = multiprocessing.get_context("fork").Value("i", 0)

    def take(self) -> str | None:
        """The next stage to run (``None``: all are taken)."""
        with self._next.get_lock():
            i = self._next.value
            if i >= len(self.names):
                return None
            self._next.value = i + 1
        return self.names[i]


def _clear_stage_outputs(ctx: Context, name: str) -> None:
    """Remove what a skipped stage (or an earlier run of it) left in its folders of this run's output."""
    import shutil

    folders = STAGE_FOLDERS.get(name, ())
    ctx.out.written[:] = [w for w in ctx.out.written if w["path"].split("/", 1)[0] not in folders]
    for folder in folders:
        path = ctx.out.base / folder
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)


def check_settings(settings, problems=None) -> None:
    """Check every section of the configuration and ``$HOTSPOTS_WORKERS`` before any data is read.

    ``load_config`` has checked the top level, ``[periods]``, ``[crime_groups]``
    and ``[geography]``; here the sections read by the stages (``[hotspots]``,
    ``[outliers]``, ``[evaluation]``) are checked by the stages' own readers,
    so a mistake stops the run at once rather than after minutes of work.
    One :class:`~hotspots._errors.ConfigError` lists every problem; with
    ``problems`` (a ``hotspots._validate._Problems``) they are added to it instead
    (``load_config(path, sections=check_settings)``).
    """
    from hotspots._errors import ConfigError
    from hotspots._parallel import workers_cap
    from hotspots._validate import _Problems

    own = problems is None
    if own:
        problems = _Problems(settings.source or "configuration")

    def hotspots_section():
        from hotspots.stages._hotspots_config import hotspot_config

        hotspot_config(settings)

    def outliers_section():
        from hotspots.stages.outliers import outlier_options

        outlier_options(settings)

    def evaluation_section():
        from hotspots.stages._evaluate_config import evaluation_config

        evaluation_config(settings.extra.get("evaluation", {}) or {}, settings.crime_groups)

    # each section's reader imported only when the section is there to check
    checks = (("workers", workers_cap), ("hotspots", hotspots_section), ("outliers", outliers_section),
              ("evaluation", evaluation_section))
    for section, check in checks:
        if section != "workers" and section not in settings.extra:  # defaults only: checked by the stage when it runs
            continue
        try:
            check()
        except ConfigError as exc:
            message = exc.message.removeprefix(f"{settings.source}: ") if settings.source else exc.message
            problems.add(" ".join(message.replace(":\n  - ", ": ").replace("\n  - ", "; ").split()),
                         _sentence(exc.hint or "See the shipped default config."))
    evaluation = settings.extra.get("evaluation", {}) or {}
    if isinstance(evaluation, dict) and isinstance(evaluation.get("areas"), str) and evaluation["areas"]:
        name_column = evaluation.get("name_column") if isinstance(evaluation.get("name_column"), str) else ""
        for message, hint in _areas_file_problems(evaluation["areas"], name_column):
            problems.add(message, _sentence(hint))
    if own:
        problems.raise_if_any(ConfigError)


def _sentence(text: str) -> str:
    """A hint as a sentence (hints from several checks are joined into one line)."""
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def _areas_file_problems(path: str, name_column: str = "") -> list[tuple[str, str]]:
    """(message, hint) for a treated-areas file that cannot be used: missing, unreadable, several layers,
    no such name column.  Reads only the file's layer list and field names, not its polygons."""
    import pyogrio

    where = f"evaluation.areas (--areas) = {path!r}"
    if not Path(path).is_file():
        return [(f"{where}: no such file", "check the path of the treated-areas polygon file")]
    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(path)]
        fields = [str(f) for f in pyogrio.read_info(path)["fields"]] if len(layers) == 1 else []
    except Exception as exc:  # pyogrio raises several types for files it cannot open
        first = str(exc).split(";")[0]
        return [(f"{where} cannot be read as a polygon file ({first})",
                 "use a GeoPackage, GeoJSON or Shapefile of the treated polygons")]
    if len(layers) != 1:
        return [(f"{where} holds {len(layers)} layers ({', '.join(layers) or 'none'}); which are the treated areas "
                 "cannot be told", "save the treated areas as a file of their own (QGIS: Export > Save Features As), "
                 "then give that file")]
    if name_column and name_column not in fields:
        return [(f"{where} has no column {name_column!r} (evaluation.name_column / --name-column); its columns are "
                 f"{fields}", "give the column that holds the area names, or leave it out to number the areas")]
    return []


def side_stages(names: list[str]) -> list[str]:
    """The stages to run in a second process beside the hotspots stage (empty: run them all in turn here)."""
    if "hotspots" not in names or len(names) < 2:
        return []
    return [n for n in names if n != "hotspots"]


#: geography layers both the hotspots stage and the side stages read: read once, before the fork, rather than in both
SHARED_LAYERS = ("force", "districts", "wards", "town_centres")


def _read_shared_geography(ctx: Context) -> None:
    """Read :data:`SHARED_LAYERS` (and what they are built from, such as the LSOA polygons) in this process.

    The forked side process inherits them instead of reading the same files
    again.  A layer that cannot be read is left alone: the stage that needs it
    reports the problem, in its own process, as without this step.
    """
    for name in SHARED_LAYERS:
        try:
            getattr(ctx.geography, name)
        except Exception:  # noqa: BLE001 -- reported by the stage that reads it
            return
    _lay_district_grids(ctx)


def _lay_district_grids(ctx: Context) -> None:
    """Lay the districts' hotspot grids here, so the forked processes inherit them (``make_grid`` keeps them).

    The hotspots stage's workers and the evaluation's detected patrol areas lay
    the same district grids; laid once before the fork, neither lays them again.
    Anything that fails is left to the stage that needs it to report.
    """
    from hotspots.detect.options import cell_size_for
    from hotspots.geo.grid import make_grid
    from hotspots.schema import BNG
    from hotspots.stages._hotspots_config import hotspot_config

    try:
        cfg = hotspot_config(ctx.settings)
        for geometry in ctx.geography.districts.geometry:
            make_grid(geometry, cell_size_for(geometry, cfg, patrol=True)[0], shape=cfg.shape, crs=BNG)
    except Exception:  # noqa: BLE001 -- reported by the stage that lays the grid
        return


def store_records(ctx: Context) -> None:
    """Write the prepared records into the records cache if :func:`~hotspots.stages.context.prepare` left that to
    the run (``ctx.pending_records_store``); once."""
    write = ctx.pending_records_store
    if write is not None:
        ctx.pending_records_store = None
        write()


def _run_side(ctx: Context, queue: SideQueue, *, results: bool = True) -> dict[str, Any]:
    """In the forked process: run the side stages as they are taken from ``queue``; return everything the manifest
    and the caller need.

    ``results=False``: without the stages' new ``ctx.results`` (see :func:`run`'s ``side_results``).
    """
    store_records(ctx)
    known_results = set(ctx.results)
    summaries: dict[str, Any] = {}
    skipped: dict[str, dict[str, str]] = {}
    parts: dict[str, list] = {}
    ran = []
    while (name := queue.take()) is not None:
        ran.append(name)
        _run_stage(ctx, name, summaries, skipped, parts)
    return {
        "ran": ran,
        "summaries": summaries,
        "skipped": skipped,
        "parts": parts,
        "auto": ctx.settings.auto,
        "sources": ctx.geography.sources,
        "timings": {n: ctx.progress.timings[n] for n in ran if n in ctx.progress.timings},
        "results": {k: v for k, v in ctx.results.items() if k not in known_results} if results else {},
    }


def _merge_side(ctx: Context, side: dict[str, Any], summaries: dict[str, Any], skipped: dict[str, Any],
                parts: dict[str, list]) -> list[str]:
    """Take in what the side process returned; returns the names of the stages it ran."""
    summaries.update(side["summaries"])
    skipped.update(side["skipped"])
    parts.update(side["parts"])
    for key, value in side["auto"].items():  # what this process recorded itself stays as it is
        ctx.settings.auto.setdefault(key, value)
    ctx.geography.sources.update(side["sources"])
    ctx.progress.timings.update(side["timings"])
    ctx.results.update(side["results"])
    return side["ran"]


def write_manifest(ctx: Context, *, stages: list[str], summaries: dict[str, Any],
                   skipped: dict[str, dict[str, str]] | None = None) -> Path:
    """Write ``manifest.json``: inputs with checksums, parameters, accounting, outputs.

    ``skipped`` (stage -> ``{"reason", "hint"}``) lists the stages that could
    not run on the data; it is always in the manifest (empty when every stage ran).

    The manifest is written last; for a staged output folder this also
    publishes the run (:meth:`hotspots._io.OutputDir.publish`).
    """
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
        "stages_run": [n for n in stages if n in summaries],
        "skipped": skipped or {},
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
    ctx.out.write_json(manifest, "manifest.json")
    ctx.out.publish()  # a staged run: the new outputs and their manifest replace the old ones at once
    return ctx.out.root / "manifest.json"
