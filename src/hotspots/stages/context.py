"""The main job, stage by stage: what ``hotspots run`` does.

:func:`prepare` reads the data home once (ingest, LSOA harmonisation, study
area) into a :class:`Context`; each stage in :data:`STAGES` then writes its
outputs through ``ctx.out``, and :func:`write_manifest` records inputs,
parameters (including every automatic choice), outputs and the row
accounting.  The CLI only parses options and calls these functions.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from hotspots._io import OutputDir
from hotspots.geo import Periods, count_points, resolve_periods
from hotspots.config import Settings, resolve_data_dir, resolve_town_centres
from hotspots.months import month_range
from hotspots.geo import Geography
from hotspots.geo.assign import place_by_lsoa
from hotspots.io import Accounting, harmonise_lsoa, read_police_uk
from hotspots.io.accounting import check_kept_share
from hotspots.io.ingest_ahead import IngestAhead, reader_call
from hotspots.io.police_uk import check_force_area
from hotspots.schema import POLICE_UK_CRIME_TYPES


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
    #: writes the prepared records into the records cache, where :func:`prepare` left that to the caller
    #: (``defer_records_store=True``; :func:`hotspots.stages.run.run` does it beside the hotspots stage)
    pending_records_store: Callable[[], Any] | None = dataclasses.field(default=None, repr=False)
    #: the columns :func:`count_points` reads, text as categoricals (factorized once for every area type)
    _count_input: tuple[pd.DataFrame, pd.DataFrame] | None = dataclasses.field(default=None, repr=False)

    @property
    def crime_types(self) -> list[str]:
        return sorted(self.points["crime_type"].unique())

    def counts(self, area_type: str) -> pd.DataFrame:
        """Counts by area × month × crime type (computed once per area type)."""
        if area_type not in self._counts:
            geo = self.geography
            self._counts[area_type] = count_points(
                self._counted_points(), geo.areas(area_type), months=self.months_present, crime_types=self.all_crime_types,
                lsoa_to_area=geo.lsoa_to_area(area_type),
            )
        return self._counts[area_type]

    def _counted_points(self) -> pd.DataFrame:
        """What :func:`count_points` reads of the points: the same counts, the text columns coded once, not per area type."""
        points = self.points
        if self._count_input is None or self._count_input[0] is not points:  # (made again for a new points frame)
            self._count_input = (points, pd.DataFrame({
                c: points[c].astype("category") if c in ("month", "crime_type", "lsoa21_code") else points[c]
                for c in ("x", "y", "month", "crime_type", "lsoa21_code")
            }))
        return self._count_input[1]

    def coverage(self) -> dict[str, Any]:
        """Share of the located records each area table counts, per area type and per district (computed once).

        Plain data (:func:`hotspots.geo.coverage.coverage`), handed to the
        manifest and the reports; its ``warnings`` also list the geography
        files' problems.
        """
        if "coverage" not in self.results:
            from hotspots.geo.coverage import coverage

            geo = self.geography
            types = ("force", "district", "csp", "lsoa", "ward")
            cov = coverage(self.points["lsoa21_code"], {t: self.counts(t) for t in types},
                           {t: geo.lsoa_to_area(t) for t in types}, geo.lsoa_district,
                           dict(zip(geo.districts["area_code"], geo.districts["area_name"])))
            cov["geography_warnings"] = list(geo.warnings)
            cov["placement"] = {k: v for k, v in self.lsoa_harmonisation.items() if k.startswith("placed_by_")}
            cov["csp_from_lsoas"] = dict(geo.notes.get("csp", {}))
            self.results["coverage"] = cov
        return self.results["coverage"]

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
    staged: bool = False,
    defer_records_store: bool = False,
    ingest_ahead: IngestAhead | None = None,
    while_reading: Callable[[], Any] | None = None,
) -> Context:
    """Ingest the data home for the configured forces and months, clip to the force area.

    With ``staged=True`` (the ``hotspots`` command) outputs are written into a
    staging folder and swapped in when the manifest is written, and a lock
    keeps a second run out of the same output folder (see :class:`OutputDir`).
    Prepared records the records cache does not hold yet are written into it
    here, or, with ``defer_records_store=True`` (``hotspots run``), by
    :func:`hotspots.stages.run.run` (in its second process, beside the
    hotspots stage, where there is one): ``ctx.pending_records_store``.
    ``ingest_ahead``: the police.uk files being read in a child process
    (:mod:`hotspots.io.ingest_ahead`, the command's); taken where they would be
    read here, or stopped.  ``while_reading`` is called while this process
    would otherwise wait for it (``hotspots run``: the map libraries imported,
    for the processes it forks to inherit).
    """
    try:
        return _prepare(settings, data, out, progress, staged, defer_records_store, ingest_ahead, while_reading)
    finally:
        if ingest_ahead is not None:
            ingest_ahead.cancel()  # not taken: a cache hit, or an error before the files were read


def _prepare(settings, data, out, progress, staged, defer_records_store, ingest_ahead, while_reading) -> Context:
    progress = progress or Progress()
    data_dir = resolve_data_dir(settings, data)
    out_dir = OutputDir(out or settings.output_dir, staged=staged)
    town_centres, town_centre_column = resolve_town_centres(settings, data_dir)  # never another force's
    codes = settings.force_area_codes if len(settings.force_area_codes) > 1 else settings.force_area_code  # several forces
    geo = Geography(data_dir, codes, town_centres, town_centre_column)

    cached, store = _records_cache(settings, data_dir, out_dir, geo, progress)
    if cached is not None:
        return _context(settings, data_dir, out_dir, geo, progress, *cached)
    forget_lsoa21 = geo.preread_lsoa21()  # its file decompressed on a thread while the police.uk files are read
    try:  # the bytes read ahead are forgotten whatever happens (bad input raises in between; a notebook goes on)
        call = reader_call(settings, data_dir)
        if ingest_ahead is not None and ingest_ahead.pending:
            _read_placing_layers(geo)  # while the child process reads the police.uk files
            if while_reading is not None and ingest_ahead.reading:
                while_reading()
        with progress.step("ingest"):
            res = ingest_ahead.take(call) if ingest_ahead is not None else None
            if res is None:
                res = read_police_uk(**call)
            progress.info(f"  read {res.accounting.rows_read:,} rows from {len(res.accounting.files)} files")
            check_force_area(res.accounting, settings.force_area_codes or (settings.force_area_code,))  # files vs config

        with progress.step("geography"):
            lsoa_polygons = geo.lsoa21
            forget_lsoa21()
            points, lsoa_stats = harmonise_lsoa(res.points, geo.lsoa11_lookup, lsoa21_polygons=lsoa_polygons[["area_code", "geometry"]].rename(columns={"area_code": "lsoa21_code"}))
            # records are placed by police.uk's own LSOA code; polygons only for points without a usable one
            code, how = place_by_lsoa(points["lsoa21_code"].to_numpy(), points["x"].to_numpy(), points["y"].to_numpy(),
                                      geo.lsoa_district.index, geo.known_lsoa21, lsoa_polygons)
            points["lsoa21_code"] = code
            placed = pd.Series(how).value_counts()
            lsoa_stats.update({f"placed_by_{k}": int(placed.get(k, 0)) for k in ("lsoa_code", "location")})
            res.accounting.drop(points.loc[how == "lsoa_code_outside", "source_file"], "lsoa_outside_force_area")
            res.accounting.drop(points.loc[how == "location_outside", "source_file"], "outside_study_area")
            points = points.loc[code != ""].reset_index(drop=True)
            res.accounting.check(points)
            progress.info(f"  {len(points):,} records in the study area: {lsoa_stats['placed_by_lsoa_code']:,} by their published "
                          f"LSOA code, {lsoa_stats['placed_by_location']:,} by location (no usable LSOA code)")
    finally:
        forget_lsoa21()
    ctx = _context(settings, data_dir, out_dir, geo, progress, points, res.accounting, lsoa_stats)
    write = store(points, res.accounting, lsoa_stats)  # after _context: the geography is read in the same order as uncached
    if defer_records_store:
        ctx.pending_records_store = write
    else:
        write()
    return ctx


def _read_placing_layers(geo) -> None:
    """Read the layers that place the records, in the order the placing reads them (a problem is reported there)."""
    for name in ("lsoa21", "lsoa11_lookup", "lsoa_district", "known_lsoa21"):
        try:
            getattr(geo, name)
        except Exception:  # noqa: BLE001 -- read again where it is used, which raises it after the files' own errors
            return


def _records_cache(settings, data_dir, out_dir, geo, progress):
    """The prepared records from the cache (:mod:`hotspots.io.cache`), or ``None`` and a function that stores them."""
    from hotspots.stages._records_cache import cached_records

    return cached_records(settings, data_dir, out_dir.root, geo, progress)


def _context(settings, data_dir, out_dir, geo, progress, points, accounting, lsoa_stats) -> Context:
    for warning in geo.warnings:
        progress.info(f"  WARNING: {warning}")
    present = sorted(points["month"].unique())
    expected = month_range(settings.first_month, settings.last_month)
    missing = [m for m in expected if m not in set(present)]
    if (low := check_kept_share(accounting)) is not None:  # raises when a wrong force area kept almost nothing
        progress.info(f"  WARNING: {low}")
        settings.record_auto("row_accounting.warning", low, "fewer than 90% of the rows read were kept")
    _check_periods_have_data(settings, present)
    periods = resolve_periods(present, settings.current, settings.comparison)
    settings.record_auto("periods", {
        "current": list(periods.current.months),
        "comparison": list(periods.comparison.months) if periods.comparison else [],
        "change_current": list(periods.change_current.months) if periods.change_current else [],
    }, periods.reason)
    progress.info("  " + periods.reason)
    n_towns = len(geo.town_centres)  # said, because they name patrol areas and get their own counts
    progress.info(f"  town centres: {n_towns} from {geo.sources['town_centres']}; {settings.auto['town_centres'][1]}")
    return Context(
        settings=settings, data_dir=data_dir, out=out_dir, geography=geo, points=points, accounting=accounting,
        months_present=present, months_missing=missing, periods=periods, progress=progress, lsoa_harmonisation=lsoa_stats,
    )


def _check_periods_have_data(settings: Settings, present: list[str]) -> None:
    """A configured period without any data would give empty maps and tables that look like "no crime"."""
    from hotspots._errors import ConfigError
    from hotspots.months import month_ranges

    if not present:
        raise ConfigError(
            f"no crimes inside the force area in {settings.first_month}..{settings.last_month}",
            hint="check periods.first/periods.last and force_area_code in the config; `hotspots info` lists the months in the data home",
        )
    for label, rng in (("periods.current", settings.current), ("periods.comparison", settings.comparison)):
        if rng and not [m for m in month_range(*rng) if m in set(present)]:
            raise ConfigError(
                f"{label} = {list(rng)} has no data: the data home holds {month_ranges(present)}",
                hint=f"set {label} to months the data holds (or [] to choose automatically)",
            )


# --------------------------------------------------------------------------- stages


