"""The foundation on the real Hertfordshire data home (29 police.uk months, ONS geography).

Uses the session fixture ``real_context`` (ingest + geography done once) and runs the
``counts`` stage once for the module.  Expected figures are recomputed here from the raw
files with the csv module, independently of hotspots, rather than hard-coded where possible.
"""

from __future__ import annotations

import csv
import gzip
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import shapely

from hotspots.io.police_uk import POLICE_UK_COLUMNS
from hotspots.schema import COUNT_COLUMNS, POLICE_UK_CRIME_TYPES, RATE_COLUMNS

pytestmark = pytest.mark.realdata


def raw_rows(street_dir: Path, months_prefix: str = ""):
    for p in sorted(street_dir.glob(f"{months_prefix}*-hertfordshire-street.csv.gz")):
        with gzip.open(p, "rt", encoding="utf-8", newline="") as fh:
            yield from csv.DictReader(fh)


@pytest.fixture(scope="module")
def street_dir(real_data_dir) -> Path:
    return real_data_dir / "police_uk" / "hertfordshire" / "street"


@pytest.fixture(scope="module")
def counted(real_context):
    """Run the counts stage once; return the context and its output folder."""
    from hotspots.stages import run

    run(real_context, ["counts"])
    return real_context, real_context.out.root


def test_all_files_read_and_accounting_balanced(real_context, street_dir):
    acc = real_context.accounting
    independent = sum(1 for _ in raw_rows(street_dir))
    assert independent == 249_470
    assert len(acc.files) == 29
    assert acc.rows_read == independent
    assert acc.kept == len(real_context.points)
    assert acc.kept + sum(acc.dropped_by_reason().values()) == acc.rows_read
    for f in acc.files.values():
        assert f.kept + sum(f.dropped.values()) == f.rows_read
        assert len(f.sha256) == 64 and f.encoding == "utf-8"
    acc.check(real_context.points)
    # rows without coordinates, recounted from the raw files
    no_xy = sum(1 for r in raw_rows(street_dir) if not r["Longitude"].strip())
    assert acc.dropped_by_reason()["no_coordinates"] == no_xy
    assert len(real_context.months_present) == 29
    assert real_context.months_missing[:2] == ["2022-02", "2022-03"] and len(real_context.months_missing) == 31


def test_periods_follow_the_hertfordshire_gap(real_context):
    p = real_context.periods
    assert p.current.label == "2025-01..2025-12"
    assert p.comparison.months == ("2024-01", "2024-02", "2024-03", "2024-04")
    assert p.change_current.months == ("2025-01", "2025-02", "2025-03", "2025-04")


def test_lsoa_codes_all_harmonised(real_context):
    stats = real_context.lsoa_harmonisation
    assert stats["unknown_code"] == 0
    pts = real_context.points
    assert (pts["lsoa21_code"] != "").all()
    # 2021-01..2022-01 publish LSOA 2011 codes: some were split and resolved by location
    assert stats["split_by_location"] > 0
    assert stats["split_by_location"] > stats["split_lowest_code"]


def test_district_reconciliation_agrees(counted):
    ctx, out = counted
    summary = ctx.results["reconciliation"]
    assert summary["agreement_share"] >= 0.99
    table = pd.read_csv(out / "counts" / "reconciliation_districts.csv")
    assert table["rows"].sum() == summary["disagree"]
    assert summary["agree"] + summary["disagree"] == summary["located_rows_in_force_area"]


def test_count_tables_written_with_zeros(counted):
    ctx, out = counted
    n_months = len(ctx.months_present)
    n_types = len(POLICE_UK_CRIME_TYPES)
    tables = {}
    for area_type in ("force", "district", "csp", "lsoa", "town_centre"):
        t = pd.read_csv(out / "counts" / f"counts_{area_type}.csv", dtype={"area_code": str, "month": str})
        assert list(t.columns) == COUNT_COLUMNS
        n_areas = len(ctx.geography.areas(area_type))
        assert len(t) == n_areas * n_months * n_types, area_type
        assert (t["count"] >= 0).all()
        tables[area_type] = t
    assert len(ctx.geography.areas("district")) == 10
    total = len(ctx.points)
    assert tables["force"]["count"].sum() == total  # points are clipped to the force area
    # districts and CSPs cover the same ground: equal totals, nearly all points
    assert tables["district"]["count"].sum() == tables["csp"]["count"].sum()
    assert tables["district"]["count"].sum() >= 0.999 * total
    assert tables["lsoa"]["count"].sum() >= 0.99 * total
    rates = pd.read_csv(out / "counts" / "rates.csv", nrows=5)
    assert list(rates.columns) == RATE_COLUMNS


def test_broxbourne_shoplifting_2025_against_the_raw_files(counted, street_dir):
    ctx, out = counted
    raw = [r for r in raw_rows(street_dir, "2025-") if r["Crime type"] == "Shoplifting"]
    published = sum(1 for r in raw if r["LSOA name"].startswith("Broxbourne"))
    broxbourne_lsoas = {r["LSOA code"] for r in raw if r["LSOA name"].startswith("Broxbourne")}
    assert 800 < published < 1100  # police.uk's own figure is 914

    districts = ctx.geography.districts
    code = districts.loc[districts["area_name"] == "Broxbourne", "area_code"].item()
    d = pd.read_csv(out / "counts" / "counts_district.csv", dtype={"month": str})
    spatial = d[(d["area_code"] == code) & (d["crime_type"] == "Shoplifting") & d["month"].str.startswith("2025")]["count"].sum()
    assert abs(spatial - published) <= max(5, 0.01 * published), (spatial, published)

    lsoa = pd.read_csv(out / "counts" / "counts_lsoa.csv", dtype={"month": str})
    by_code = lsoa[lsoa["area_code"].isin(broxbourne_lsoas) & (lsoa["crime_type"] == "Shoplifting")
                   & lsoa["month"].str.startswith("2025")]["count"].sum()
    # 2025 files carry LSOA 2021 codes: only points clipped by the force outline can be missing
    assert published - 5 <= by_code <= published


def test_every_town_centre_lies_in_its_district_and_has_crime_in_2025(counted):
    ctx, out = counted
    tcs = ctx.geography.town_centres
    districts = ctx.geography.districts.set_index("area_code")
    for tc in tcs.itertuples():
        assert tc.district_code in districts.index, tc.area_name
        district = districts.loc[tc.district_code, "geometry"]
        share = shapely.area(shapely.intersection(tc.geometry, district)) / tc.geometry.area
        assert share > 0.5, (tc.area_name, tc.district_code, share)
        assert district.contains(tc.geometry.centroid), tc.area_name
    t = pd.read_csv(out / "counts" / "counts_town_centre.csv", dtype={"month": str})
    per_tc = t[t["month"].str.startswith("2025")].groupby("area_code")["count"].sum()
    assert set(per_tc.index) == set(tcs["area_code"])
    assert (per_tc > 0).all(), per_tc[per_tc == 0]


def test_manifest_records_inputs_and_accounting(counted):
    import json

    ctx, out = counted
    m = json.loads((out / "manifest.json").read_text())
    assert m["row_accounting"]["balanced"] is True
    assert m["row_accounting"]["rows_read"] == 249_470
    assert len(m["inputs"]["police_files"]) == 29
    assert all(len(f["sha256"]) == 64 for f in m["inputs"]["police_files"])
    assert set(m["inputs"]["geography_files"]) >= {"districts", "lsoa21", "lookup_lsoa11_lsoa21", "population_lsoa21"}
    assert {o["path"] for o in m["outputs"]} >= {f"counts/counts_{t}.csv" for t in ("district", "csp", "lsoa", "town_centre")}


def test_point_columns_map_the_police_uk_header(real_context):
    # sanity: the reader keeps police.uk's own values, e.g. the crime types
    assert set(real_context.points["crime_type"]) <= set(POLICE_UK_CRIME_TYPES)
    assert set(POLICE_UK_COLUMNS.values()) - {"lon", "lat"} <= set(real_context.points.columns)
    counts = Counter(real_context.points["month"])
    assert min(counts.values()) > 4000
