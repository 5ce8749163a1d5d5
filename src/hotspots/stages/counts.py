"""The ``counts`` stage of ``hotspots run``: count tables, rates, reconciliation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hotspots.geo.aggregate import Period, add_groups, rates, reconcile_districts
from hotspots.months import month_range

if TYPE_CHECKING:
    from hotspots.stages.context import Context
import pandas as pd
from hotspots.months import month_range
from hotspots.stages.context import Context


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


COUNT_AREA_TYPES = ("force", "district", "csp", "lsoa", "ward", "town_centre")
