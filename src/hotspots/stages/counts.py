"""The ``counts`` stage of ``hotspots run``: count tables, rates, reconciliation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hotspots.geo._group_rates import group_rates
from hotspots.geo.aggregate import Period, reconcile_districts
from hotspots.months import month_range

import pandas as pd

if TYPE_CHECKING:
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
        rate_frames.append(group_rates(counts, ctx.settings.crime_groups, geo.areas(area_type), periods))
    out.write_csv(pd.concat(rate_frames, ignore_index=True), "counts/rates.csv")
    for area_type in COUNT_AREA_TYPES:
        areas = geo.areas(area_type)
        out.write_geo(areas, f"areas/{area_type}.gpkg")

    cov = ctx.coverage()
    out.write_csv(pd.DataFrame(cov["by_district"]), "counts/coverage_districts.csv")
    shares = ", ".join(f"{t} {v['share']:.2%}" for t, v in cov["by_area_type"].items())
    ctx.progress.info(f"  coverage of the {cov['located_records']:,} located records: {shares}")
    for row in cov["by_district"]:
        ctx.progress.info(f"    {row['district_code']} {row['district_name']}: {row['counted_in_district']:,} counted, "
                          f"{row['records_by_lsoa_code']:,} by LSOA code ({row['agreement']:.2%})")
    for warning in cov["warnings"]:
        ctx.progress.info(f"  WARNING: {warning}")

    summary, table = reconcile_districts(ctx.points, geo.districts, geo.lsoa_district)
    out.write_csv(table, "counts/reconciliation_districts.csv")
    ctx.results["reconciliation"] = summary
    ctx.progress.info(
        f"  district outlines: a point-in-polygon join would agree with the published LSOA for {summary['agree']:,} of "
        f"{summary['located_rows_in_force_area']:,} located rows ({summary['agreement_share']:.2%}); counts use the LSOA code"
    )
    months = pd.DataFrame({"month": month_range(ctx.settings.first_month, ctx.settings.last_month)})
    per_month = ctx.points.groupby("month").size()
    months["rows_kept"] = months["month"].map(per_month).fillna(0).astype(int)
    months["present"] = months["rows_kept"] > 0
    out.write_csv(months, "counts/months.csv")
    return {"reconciliation": summary, "coverage": cov}


COUNT_AREA_TYPES = ("force", "district", "csp", "lsoa", "ward", "town_centre")
