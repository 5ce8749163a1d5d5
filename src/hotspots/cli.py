"""The ``hotspots`` command: a thin layer over the library.

User errors (bad input, missing data, bad options) print one line and a hint
and exit non-zero; ``--verbose`` shows the traceback.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

import click

from hotspots._errors import HotspotsError
from hotspots._version import __version__

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
#: the stages of ``hotspots run``, in order (``hotspots.stages.STAGES``; named here so ``--help`` needs no import)
STAGE_NAMES = ("counts", "outliers", "hotspots", "evaluate")


def _echo(msg: str) -> None:
    click.echo(msg, err=True)


class _Obj:
    def __init__(self, config, data, out, verbose, quiet):
        self.config, self.data, self.out, self.verbose, self.quiet = config, data, out, verbose, quiet
        #: ``--all-cells``: every grid cell in grid_cells.gpkg (``[outputs] grid_cells = "all"``)
        self.all_cells = False

    def settings(self, sections: bool = True):
        """The config, every section checked (one message for every problem); ``sections=False`` for the top level only."""
        from hotspots.config import load_config
        from hotspots.stages.run import check_settings

        settings = load_config(self.config, sections=check_settings if sections else None)
        if self.all_cells:
            outputs = {**dict(settings.extra.get("outputs", {}) or {}), "grid_cells": "all"}
            settings = settings.replace(extra={**settings.extra, "outputs": outputs})
        return settings

    def progress(self):
        from hotspots.stages import Progress

        if self.quiet:
            return Progress(None)
        if _is_terminal(sys.stderr):
            return _bar_progress(Progress, sys.stderr)
        return Progress(_echo)


def _is_terminal(stream) -> bool:
    """A progress bar only on a terminal: a log file or a pipe gets the plain lines, without bar redraws."""
    try:
        return stream.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):
        return False


def _bar_progress(base, stream, *, refresh_s: float = 1.0):
    """A :class:`hotspots.stages.Progress` that also shows a bar over the run's steps (tqdm), with elapsed time.

    The bar counts the steps (ingest, geography, then each stage) finished in this
    process and ticks every ``refresh_s`` seconds while a long step runs; the
    progress lines are printed above it.  A forked worker (stages run side by
    side) prints its lines plainly and never draws the bar.
    """
    from tqdm import tqdm

    class BarProgress(base):
        def __init__(self):
            super().__init__(self._write)
            self._owner = os.getpid()
            self.bar = tqdm(total=None, desc="hotspots: starting", file=stream, leave=False, dynamic_ncols=True,
                            bar_format="{desc} [{elapsed}]")
            self._stop = threading.Event()
            threading.Thread(target=self._tick, daemon=True, name="hotspots-progress").start()

        def _write(self, msg: str) -> None:
            if os.getpid() == self._owner and not self.bar.disable:
                self.bar.write(msg, file=stream)
                if msg.startswith("[") and msg.endswith(" ...") and "]" in msg:
                    self.bar.set_description_str(f"hotspots: {msg[1:msg.index(']')]} running, {self.bar.n} step(s) done",
                                                 refresh=True)
                elif msg.startswith("[") and " done in " in msg:
                    self.bar.update(1)
                    self.bar.set_description_str(f"hotspots: {self.bar.n} step(s) done", refresh=True)
            else:  # a forked worker: clear the parent's bar line first, the parent redraws it
                print(f"\r\x1b[K{msg}", file=stream, flush=True)

        def _tick(self) -> None:
            while not self._stop.wait(refresh_s):
                if not self.bar.disable:
                    self.bar.refresh()

        def close(self) -> None:
            self._stop.set()
            self.bar.close()

    progress = BarProgress()
    _BARS.append(progress)
    return progress


#: progress bars of this process, closed when the command ends
_BARS: list = []


#: (names, keyword, click options) of the global options; every command accepts them too, before or after its name
_GLOBAL_OPTIONS = (
    (("--config", "-c"), "config", {"type": click.Path(dir_okay=False),
                                    "help": "TOML config (default: the shipped hertfordshire.toml)."}),
    (("--data", "-d"), "data", {"type": click.Path(file_okay=False),
                                "help": "Data home (default: $HOTSPOTS_DATA, then data_dir in the config)."}),
    (("--out", "-o"), "out", {"type": click.Path(file_okay=False),
                              "help": "Output directory (default: output_dir in the config)."}),
    (("--verbose", "-v"), "verbose", {"is_flag": True, "default": None, "help": "Show debug logging and full tracebacks."}),
    (("--quiet", "-q"), "quiet", {"is_flag": True, "default": None, "help": "Only print errors and the final summary."}),
)


def _set_global(ctx, param, value):
    """Callback of a global option given after the command's name: it overrides the one given before."""
    if value is not None:
        obj = ctx.find_object(_Obj)
        if obj is not None:
            setattr(obj, param.name, value)
            if param.name == "verbose" and value:
                logging.getLogger().setLevel(logging.DEBUG)
    return value


def global_options(f):
    """Accept the global options after a command's name too (``hotspots map --out x``), as users expect."""
    for names, key, kw in reversed(_GLOBAL_OPTIONS):
        f = click.option(*names, key, expose_value=False, callback=_set_global, **kw)(f)
    return f


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="hotspots")
@click.option("--config", "-c", type=click.Path(dir_okay=False), help="TOML config (default: the shipped hertfordshire.toml).")
@click.option("--data", "-d", type=click.Path(file_okay=False), help="Data home (default: $HOTSPOTS_DATA, then data_dir in the config).")
@click.option("--out", "-o", type=click.Path(file_okay=False), help="Output directory (default: output_dir in the config).")
@click.option("--verbose", "-v", is_flag=True, help="Show debug logging and full tracebacks.")
@click.option("--quiet", "-q", is_flag=True, help="Only print errors and the final summary.")
@click.pass_context
def cli(ctx, config, data, out, verbose, quiet):
    """Crime and ASB hotspots, CSP outliers and hotspot-patrol evaluation.

    The options above (--config, --data, --out, -v, -q) also work after the
    command's name: `hotspots map --out x` is `hotspots --out x map`.

    \b
    Examples:
      hotspots info                       # what data is in the data home
      hotspots init --force kent          # a starter config for any force: then hotspots -c kent.toml run
      hotspots run                        # the whole job on the default Hertfordshire config
      hotspots counts --data ../shared/data --out out
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = _Obj(config, data, out, verbose, quiet)


@cli.command()
@global_options
@click.pass_obj
def info(obj):
    """Show what the data home holds: forces, months present and missing, rows.

    \b
    Example:
      hotspots --data ../shared/data info
    """
    import pandas as pd

    from hotspots.config import resolve_data_dir
    from hotspots.io.police_uk import read_police_uk
    from hotspots.months import month_range, month_ranges

    settings = obj.settings()
    data_dir = resolve_data_dir(settings, obj.data)
    click.echo(f"data home: {data_dir}  ({settings.auto['data_dir'][1]})")
    police = data_dir / "police_uk"
    res = read_police_uk([police if police.is_dir() else data_dir], forces=None)
    files = pd.DataFrame([{"force": f.force, "month": f.month, "rows_read": f.rows_read} for f in res.accounting.files.values()])
    for force, sub in files.groupby("force"):
        months = sorted(sub["month"])
        full = month_range(months[0], months[-1])
        missing = [m for m in full if m not in set(months)]
        click.echo(f"force {force}: {len(months)} months {months[0]}..{months[-1]}, {int(sub['rows_read'].sum()):,} rows")
        if missing:
            click.echo(f"  missing months ({len(missing)}): {month_ranges(missing)}")
    for line in res.accounting.summary_lines():
        click.echo(line)
    from hotspots.geo.boundaries import DATA_FILES

    for layer, cands in DATA_FILES.items():
        found = next((c for c in cands if (data_dir / c).is_file()), None)
        click.echo(f"{layer}: {found or 'MISSING (run hotspots download)'}")


def _prepare(obj, *, defer_records_store: bool = False, while_reading=None):
    from hotspots._command import prepare_for_command

    return prepare_for_command(obj, defer_records_store=defer_records_store, while_reading=while_reading)


def _summary(ctx) -> None:
    for bar in _BARS:  # the bar goes before the summary lines
        bar.close()
    for line in ctx.accounting.summary_lines():
        click.echo(line)
    for name, skip in ctx.results.get("skipped_stages", {}).items():  # stages the data cannot support (exit 0)
        click.echo(f"stage {name} SKIPPED (its outputs are not written): {skip['reason']}")
    click.echo(f"outputs in {ctx.out.root} (manifest.json lists every file)")


@cli.command()
@global_options
@click.pass_obj
def counts(obj):
    """Write count tables by area × month × crime type, and rates.

    \b
    Writes under --out: counts/counts_<area_type>.csv (force, district, csp,
    lsoa, ward, town_centre), counts/rates.csv, counts/reconciliation_districts.csv,
    counts/months.csv, areas/<area_type>.gpkg and manifest.json.

    \b
    Example:
      hotspots --out out counts
    """
    from hotspots.stages import run

    ctx = _prepare(obj)
    run(ctx, ["counts"])
    _summary(ctx)


@cli.command(name="run")
@click.option("--stage", "stages", multiple=True, type=click.Choice(STAGE_NAMES),
              help="Run only these stages (repeatable); default: all, in this order.")
@click.option("--all-cells", is_flag=True,
              help="Write every grid cell to hotspots/grid_cells.gpkg (default: cells with a crime or a significant result).")
@global_options
@click.pass_obj
def run_cmd(obj, stages, all_cells):
    """Run the whole job on the configured data (the default Hertfordshire config).

    \b
    Example:
      hotspots run
      hotspots --config my_force.toml --out results run --stage counts
    """
    from hotspots.stages._hotspots_config import map_preloader

    obj.all_cells = all_cells
    chosen = [s for s in STAGE_NAMES if s in stages] or None
    # the records cache is written by run(), beside the hotspots stage
    ctx = _prepare(obj, defer_records_store=True, while_reading=lambda settings: map_preloader(settings, chosen))
    from hotspots.stages import run

    # the side stages' analysis results stay in their process: the command writes outputs, it never reads them
    run(ctx, chosen, side_results=False)
    _summary(ctx)


@cli.command(name="init")
@click.option("--force", "forces", multiple=True, required=True,
              help="Force: police.uk name (kent, south-wales), ONS code or a region; repeat for one area of several.")
@click.option("--output", type=click.Path(dir_okay=False), help="Config file to write (default: <force>.toml here).")
@click.pass_obj
def init_cmd(obj, forces, output):
    """Write a starter config for any police force of England and Wales, from the data home.

    \b
    Example:
      hotspots --data ../shared/data init --force kent
      hotspots --config kent.toml run
    """
    from hotspots.config import resolve_data_dir
    from hotspots.init_config import write_starter_config

    path, cfg = write_starter_config(resolve_data_dir(obj.settings(sections=False), obj.data), forces, output)
    click.echo(f"wrote {path}: {cfg.name} ({', '.join(f.pfa_code for f in cfg.forces)}), "
               f"{cfg.districts['ltla24_code'].nunique()} districts, months {cfg.months[0]}..{cfg.months[-1]}; "
               f"next: hotspots --config {path} run")


@cli.command()
@click.option("--force", "forces", multiple=True, default=["hertfordshire"], show_default=True,
              help="police.uk force slug (repeatable); a wrong name lists the known forces.")
@click.option("--archive", type=str, default="latest", show_default=True, help="police.uk archive month YYYY-MM, or 'latest'.")
@click.option("--from-zip", type=click.Path(exists=True, dir_okay=False), help="Use an already downloaded police.uk archive instead of the network.")
@click.option("--no-ons", is_flag=True, help="Skip the ONS boundaries, lookups and population.")
@click.option("--roads", is_flag=True, help="Also fetch OS Open Roads (GB, about 0.5 GB) for the maps' road layer.")
@click.option("--roads-url", default=None, metavar="URL", help="Mirror of the OS Open Roads GeoPackage zip.")
@click.option("--refresh", is_flag=True, help="Fetch every file again, even those whose checksum still matches.")
@click.option("--police-url", default=None, metavar="URL", help="Mirror of https://data.police.uk/data/archive.")
@click.option("--ons-url", default=None, metavar="URL",
              help="Mirror of the ONS ArcGIS services (https://services1.arcgis.com/.../rest/services).")
@click.option("--nomis-url", default=None, metavar="URL", help="Mirror of https://www.nomisweb.co.uk/api/v01/dataset.")
@global_options
@click.pass_obj
def download(obj, forces, archive, from_zip, no_ons, roads, roads_url, refresh, police_url, ons_url, nomis_url):
    """Build a complete data home for a force: police.uk, ONS boundaries and lookups, Census population.

    The only command that uses the network. The data home is --data, else
    $HOTSPOTS_DATA. ONS services are paged (no partial files), every reply is
    checked, SHA256SUMS and download_manifest.json record what was fetched, an
    interrupted archive download resumes, and files already complete are not
    fetched again. A file that cannot be fetched gets an exact manual step.

    \b
    Example:
      hotspots download --data ~/hotspots-data --force hertfordshire
      hotspots download --data ~/hotspots-data --force kent --from-zip ~/Downloads/latest.zip
      hotspots download --data ~/hotspots-data --force kent --roads   # and OS Open Roads for the maps
    """
    import os

    from hotspots.io import download as dl

    target = obj.data or os.environ.get("HOTSPOTS_DATA")
    if not target:
        raise click.UsageError("say where the data home goes: --data DIR, or set $HOTSPOTS_DATA")
    bases = {k: v for k, v in {"police_base": police_url, "ons_base": ons_url, "nomis_base": nomis_url,
                                "roads_url": roads_url}.items() if v}
    written = dl.download_all(Path(target), forces=list(forces), archive=archive, from_zip=from_zip, ons=not no_ons, roads=roads,
                              refresh=refresh, echo=(lambda m: None) if obj.quiet else _echo, **bases)
    click.echo(f"wrote {len(written)} file(s) under {target}; check it with: hotspots --data {target} info")


def _month_range_option(value: str | None, name: str):
    if not value:
        return None
    parts = value.split("..")
    return parts if len(parts) == 2 else value  # a bad value is reported with every other problem (check_settings)


@cli.command()
@click.option("--areas", type=click.Path(exists=True, dir_okay=False), help="Polygon file of the treated (patrol) areas; default: illustrative areas.")
@click.option("--name-column", help="Column of --areas holding the area names.")
@click.option("--selection", type=click.Choice(["hotspot_patrol_areas", "patrol_areas", "town_centres"]), help="Illustrative areas when no --areas is given.")
@click.option("--before", help="Before period YYYY-MM..YYYY-MM (default: seasonally matched from the data).")
@click.option("--after", help="After period YYYY-MM..YYYY-MM (default: seasonally matched from the data).")
@click.option("--buffer-m", type=float, help="Displacement buffer width in metres (default 250).")
@click.option("--control", type=click.Choice(["rest_of_county", "rest_of_district", "matched"]), help="Comparison area (default rest_of_county).")
@click.option("--crime-type", "crime_types", multiple=True, help="Crime type or group to evaluate (repeatable).")
@click.option("--funding", type=float, help="Funding in pounds a year, for cost per crime prevented (0 = none).")
@global_options
@click.pass_obj
def evaluate(obj, areas, name_column, selection, before, after, buffer_m, control, crime_types, funding):
    """Before/after evaluation of hotspot patrol areas (the programme named in [evaluation]).

    Compares crime in the treated areas before and after against a comparison
    area, checks displacement into buffers and regression to the mean, and
    gives cost per crime prevented. Options override [evaluation] in the config.
    Without --areas the toolkit's own ILLUSTRATIVE areas are evaluated.

    \b
    Writes under --out: evaluation/evaluation_report.html, evaluation_summary.csv,
    evaluation_areas.csv, evaluation_monthly.csv, treated_areas.gpkg, manifest.json.

    \b
    Example:
      hotspots --out out evaluate --areas op_hotspot.gpkg --name-column name \\
          --before 2024-01..2024-04 --after 2025-01..2025-04 --funding 1000000
    """
    from hotspots.stages import prepare, run

    overrides = {
        "areas": areas, "name_column": name_column, "selection": selection,
        "before": _month_range_option(before, "--before"), "after": _month_range_option(after, "--after"),
        "buffer_m": buffer_m, "control": control, "crime_types": list(crime_types) or None, "funding_gbp": funding,
    }
    settings = obj.settings(sections=False)
    table = dict(settings.extra.get("evaluation", {}) or {})
    table.update({k: v for k, v in overrides.items() if v is not None})
    settings = settings.replace(extra={**settings.extra, "evaluation": table})
    from hotspots.stages.run import check_settings

    check_settings(settings)  # the options and every section, before any data is read
    ctx = prepare(settings, data=obj.data, out=obj.out, progress=obj.progress(), staged=True)
    summaries = run(ctx, ["evaluate"])
    if obj.quiet:  # otherwise the stage's progress line has already shown it
        click.echo(summaries["evaluate"]["headline"])
    click.echo(f"report: {ctx.out.root / 'evaluation' / 'evaluation_report.html'}")
    _summary(ctx)


@cli.group(name="report")
def report_group():
    """Write the HTML reports (each with its CSV/GeoPackage tables).

    \b
    Example:
      hotspots --out out report outliers
    """


@report_group.command(name="outliers")
@click.option("--peer-groups", type=click.Path(exists=True, dir_okay=False),
              help="Most-similar-group CSV (area_code,peer_group or area_code,peer_code); overrides [outliers] peer_groups.")
@click.option("--adjustment", type=click.Choice(["multiplicative", "additive"]),
              help="Overdispersion adjustment of the funnel limits (default multiplicative: sqrt(phi)).")
@global_options
@click.pass_obj
def report_outliers(obj, peer_groups, adjustment):
    """CSP outlier report: where each CSP (and LSOA) stands out against the county, by crime type.

    Rates per 1,000 residents for the analysis period (default: the latest 12
    months), funnel-plot limits at 95% and 99.8% with the overdispersion
    adjustment, change against the seasonally matched months judged against
    the rest of the county, harm-weighted rates, concentration in LSOAs and,
    with a peer table, the ratio to the peer-group mean.

    \b
    Writes under --out: outliers/csp_outlier_report.html, outliers_district.csv,
    outliers_lsoa.csv, outliers_change.csv, concentration.csv,
    outliers_district.gpkg, manifest.json.

    \b
    Example:
      hotspots --out out report outliers
      hotspots --out out report outliers --peer-groups msg.csv
    """
    from hotspots.stages import run

    ctx = _prepare(obj)
    overrides = {k: v for k, v in {"peer_groups": peer_groups, "adjustment": adjustment}.items() if v is not None}
    if overrides:
        table = {**dict(ctx.settings.extra.get("outliers", {}) or {}), **overrides}
        ctx.settings = ctx.settings.replace(extra={**ctx.settings.extra, "outliers": table})
    summaries = run(ctx, ["outliers"])
    s = summaries["outliers"]
    click.echo(f"{s['district_cells_flagged_adjusted']} of {s['district_cells']} CSP x crime-type rates outside the 95% "
               f"limits allowing for overdispersion ({s['district_cells_flagged_unadjusted']} on Poisson limits alone)")
    click.echo(f"report: {ctx.out.root / 'outliers' / 'csp_outlier_report.html'}")
    _summary(ctx)


@cli.command(name="map")
@click.option("--district", "districts", multiple=True,
              help="Only these districts (name or ONS code; repeatable); default: every district. The county map is always written.")
@click.option("--no-png", is_flag=True, help="Skip the printable PNG maps (faster).")
@click.option("--all-cells", is_flag=True,
              help="Write every grid cell to hotspots/grid_cells.gpkg (default: cells with a crime or a significant result).")
@global_options
@click.pass_obj
def map_cmd(obj, districts, no_png, all_cells):
    """Hotspot maps and patrol areas for neighbourhood inspectors.

    Runs the hotspots stage (Gi* hot spots with FDR, KDE, clusters, emerging
    hot spots, numbered patrol areas) and writes maps/<district>.html, which
    open offline in any browser (nothing is loaded from the internet), a
    printable maps/<district>.png, maps/county.html, and the tables under
    hotspots/ (patrol_areas.csv/.gpkg/.geojson, grid_cells.gpkg, clusters.csv,
    emerging.csv, stability.csv, town_centre_hotspots.csv). Settings: the
    [hotspots] section of the config (crime_types, cell_size, rank_by, top_n).

    \b
    Example:
      hotspots --out out map
      hotspots --out out map --district Watford --district "St Albans" --no-png
    """
    from hotspots.stages import write_manifest
    from hotspots.stages.hotspots import stage_hotspots

    obj.all_cells = all_cells
    ctx = _prepare(obj)
    with ctx.progress.step("hotspots"):
        summary = stage_hotspots(ctx, districts=list(districts) or None, maps=True, png=not no_png)
    write_manifest(ctx, stages=["hotspots"], summaries={"hotspots": summary})
    click.echo(f"{summary['patrol_areas']} patrol areas: {ctx.out.root / 'hotspots' / 'patrol_areas.csv'}")
    click.echo(f"maps: {ctx.out.root / 'maps'} ({', '.join(f'{k}.html' for k in summary.get('maps', {}))})")
    _summary(ctx)


@cli.group(name="history")
def history_group():
    """All police.uk history out of core: force-month Parquet partitions, national totals, Gi* per year.

    \b
    Example:
      hotspots --data ../shared/data --out out history build && hotspots --out out history analyse
    """


def _history_paths(obj, partitions):
    from hotspots.config import resolve_data_dir

    settings = obj.settings(sections=False)
    out = Path(obj.out or settings.output_dir) / "history"
    return resolve_data_dir(settings, obj.data), out, Path(partitions) if partitions else out / "partitions"


_PARTITIONS = click.option("--partitions", type=click.Path(file_okay=False), help="Partitions folder (default: <out>/history/partitions).")


@history_group.command(name="build")
@click.option("--force", "forces", multiple=True, help="police.uk force slug (repeatable); default: every force found.")
@click.option("--months", help="Month range YYYY-MM..YYYY-MM of the files to read; default: all.")
@_PARTITIONS
@global_options
@click.pass_obj
def history_build(obj, forces, months, partitions):
    """Stream every police.uk street file of the data home into force-month Parquet partitions.

    One force-month in memory at a time; every row read is written or counted under a reason (build.json).

    \b
    Example:
      hotspots --data ../shared/data --out out history build --force kent --months 2024-01..2025-12
    """
    from hotspots.geo.history import build_history

    data_dir, _, root = _history_paths(obj, partitions)
    first, last = (months.split("..", 1) + [None])[:2] if months else (None, None)
    if months and (not last or len(first) != 7 or len(last) != 7):
        raise click.BadParameter(f"{months!r}: give YYYY-MM..YYYY-MM", param_hint="--months")
    echo = (lambda d, t, label: None) if obj.quiet else (lambda d, t, label: _echo(f"[{d}/{t}] {label}") if d % 12 == 0 or d == t else None)
    info = build_history(data_dir, root, forces=list(forces) or None, first_month=first, last_month=last, progress=echo)
    click.echo(f"rows read {info['rows_read']:,} from {info['files']} file(s); written {info['rows_written']:,} to "
               f"{info['partitions']} partitions ({len(info['forces'])} force(s), {len(info['months'])} month(s)) in {root}")
    for reason, n in info["dropped"].items():
        click.echo(f"  dropped {n:,}: {reason}")
    click.echo("  LSOA 2021 codes: " + ", ".join(f"{k} {v:,}" for k, v in info["lsoa"].items() if v))


@history_group.command(name="analyse")
@click.option("--engine", type=click.Choice(["duckdb", "dask"]), default="duckdb", show_default=True, help="Group-by engine.")
@click.option("--scheduler", help="Dask scheduler address, or local:N for a local cluster of N workers (implies --engine dask).")
@click.option("--cell-size", type=click.FloatRange(min=1), default=250.0, show_default=True, help="Lattice cell side in metres.")
@click.option("--memory-limit", default="3GB", show_default=True, help="DuckDB memory limit (per worker for a local Dask cluster).")
@_PARTITIONS
@global_options
@click.pass_obj
def history_analyse(obj, engine, scheduler, cell_size, memory_limit, partitions):
    """Aggregate the partitions to national totals and run Gi* with FDR on each year's totals.

    \b
    Writes under <out>/history: by_lsoa_month_type.parquet, by_cell_month.parquet, periods.csv,
    gi_star_cells.parquet, hot_cold_cells.csv, lsoa_period_totals.parquet, history.json.

    \b
    Example:
      hotspots --out out history analyse --scheduler local:2
    """
    from hotspots.detect.history import analyse_history

    data_dir, out, root = _history_paths(obj, partitions)
    info = analyse_history(root, out, data_dir=data_dir, engine="dask" if scheduler else engine, scheduler=scheduler,
                           cell_size=cell_size, memory_limit=memory_limit, progress=None if obj.quiet else _echo)
    for p in info["periods"]:
        click.echo(f"{p['period']}: {p['months_used']} month(s), {p['cells']:,} cells, {p['crimes_in_study_area']:,} crimes "
                   f"({p['crimes_outside_study_area']:,} outside the study area); hot spots (q<=0.05) "
                   f"{p['hot_99'] + p['hot_95']:,}, cold spots {p['cold_99'] + p['cold_95']:,}")
    click.echo(f"tables in {out} (periods.csv, gi_star_cells.parquet, hot_cold_cells.csv)")


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler or ``kill`` stopping the run), handled like Ctrl-C: partial files are removed."""


def _on_sigterm(signum, frame):
    # once: a second SIGTERM must not interrupt the clean-up the first one started (a worker whose
    # multi-threaded parent was killed can get its parent-death signal more than once)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


def _handle_sigterm() -> bool:
    """Turn SIGTERM into :class:`Terminated` (main thread only, and only if nobody else set a handler).

    Worker processes forked later inherit it, so a stopped worker also removes its half-written file.
    Returns whether the handler was installed (:func:`main` puts the default back when it returns).
    """
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)
        return True
    return False


_STOPPED = "{}: the output folder was not changed (a run's outputs replace the previous ones only when it finishes)"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user errors into one clear line."""
    from hotspots._parallel import single_thread_blas

    single_thread_blas()
    verbose = "-v" in (argv or sys.argv[1:]) or "--verbose" in (argv or sys.argv[1:])
    installed = _handle_sigterm()
    try:
        _main(argv, verbose)
    finally:
        for bar in _BARS:
            bar.close()
        _BARS.clear()
        from hotspots._io import abort_unpublished

        abort_unpublished()  # a run that did not finish: its staging folder goes, --out stays as it was
        if installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _main(argv: list[str] | None, verbose: bool) -> None:
    try:
        cli.main(args=argv, prog_name="hotspots", standalone_mode=False)
    except HotspotsError as exc:
        if verbose:
            traceback.print_exc()
        click.echo(f"error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, Terminated):
            click.echo(_STOPPED.format("terminated (SIGTERM)"), err=True)
            sys.exit(143)
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Terminated:
        click.echo(_STOPPED.format("terminated (SIGTERM)"), err=True)
        sys.exit(143)
    except KeyboardInterrupt:
        click.echo(_STOPPED.format("interrupted"), err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: say so, show the traceback
        traceback.print_exc()
        click.echo(f"internal error: {type(exc).__name__}: {exc} (a bug in hotspots; please report it with --verbose output)", err=True)
        sys.exit(1)
    sys.exit(0)
