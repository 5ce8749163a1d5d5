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

import numpy as np
import pandas as pd

from hotspots._io import OutputDir
from hotspots.geo import Periods, count_points, resolve_periods
from hotspots.config import Settings, resolve_data_dir, resolve_town_centres
from hotspots.months import month_range
from hotspots.geo import Geography, assign_points
from hotspots.io import Accounting, harmonise_lsoa, read_police_uk
from hotspots.io.accounting import check_kept_share
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
    staged: bool = False,
) -> Context:
    """Ingest the data home for the configured forces and months, clip to the force area.

    With ``staged=True`` (the ``hotspots`` command) outputs are written into a
    staging folder and swapped in when the manifest is written, and a lock
    keeps a second run out of the same output folder (see :class:`OutputDir`).
    """
    progress = progress or Progress()
    data_dir = resolve_data_dir(settings, data)
    out_dir = OutputDir(out or settings.output_dir, staged=staged)
    town_centres, town_centre_column = resolve_town_centres(settings, data_dir)  # never another force's
    codes = settings.force_area_codes if len(settings.force_area_codes) > 1 else settings.force_area_code  # several forces
    geo = Geography(data_dir, codes, town_centres, town_centre_column)

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
        check_force_area(res.accounting, settings.force_area_codes or (settings.force_area_code,))  # files vs config

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
    if (low := check_kept_share(res.accounting)) is not None:  # raises when a wrong force area kept almost nothing
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
        settings=settings, data_dir=data_dir, out=out_dir, geography=geo, points=points, accounting=res.accounting,
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


