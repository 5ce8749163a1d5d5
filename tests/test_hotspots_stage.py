"""The hotspots stage on synthetic data with a planted cluster (fast; no real data)."""

from __future__ import annotations

import dataclasses
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from hotspots.stages.hotspots import stage_hotspots
import shapely

from hotspots.detect import columns as hs_columns
from hotspots.detect.naming import stable_patrol_id
from hotspots.stages import hotspots as hs
from hotspots._errors import ConfigError
from hotspots._io import OutputDir
from hotspots.geo.aggregate import resolve_periods
from hotspots.config import load_config
from hotspots.stages import Progress

X0, Y0 = 500_000.0, 200_000.0
PLANT = (X0 + 1_550.0, Y0 + 2_450.0)  # inside district A, inside the town centre
MONTHS = ["2024-01", "2024-02", "2024-03", "2024-04"] + [f"2025-{m:02d}" for m in range(1, 13)]
TYPES = ["Anti-social behaviour", "Violence and sexual offences", "Burglary", "Shoplifting", "Vehicle crime"]


def _areas():
    a = shapely.box(X0, Y0, X0 + 3_000, Y0 + 5_000)
    b = shapely.box(X0 + 3_000, Y0, X0 + 6_000, Y0 + 5_000)
    districts = gpd.GeoDataFrame({"area_type": "district", "area_code": ["D0001", "D0002"], "area_name": ["Alpha", "Beta"],
                                  "district_code": ["D0001", "D0002"], "population": 1000.0, "area_km2": 15.0},
                                 geometry=[a, b], crs=27700)
    force = gpd.GeoDataFrame({"area_type": "force", "area_code": ["F01"], "area_name": ["Testshire"], "district_code": "",
                              "population": 2000.0, "area_km2": 30.0}, geometry=[shapely.union_all([a, b])], crs=27700)
    wards = gpd.GeoDataFrame(
        {"area_type": "ward", "area_code": ["W1", "W2", "W3", "W4"], "area_name": ["Northgate", "Southgate", "Eastfield", "Westfield"],
         "district_code": ["D0001", "D0001", "D0002", "D0002"], "population": 500.0, "area_km2": 7.5},
        geometry=[shapely.box(X0, Y0 + 2_000, X0 + 3_000, Y0 + 5_000), shapely.box(X0, Y0, X0 + 3_000, Y0 + 2_000),
                  shapely.box(X0 + 3_000, Y0 + 2_500, X0 + 6_000, Y0 + 5_000), shapely.box(X0 + 3_000, Y0, X0 + 6_000, Y0 + 2_500)],
        crs=27700)
    towns = gpd.GeoDataFrame({"area_type": "town_centre", "area_code": ["TC01"], "area_name": ["Alphaton"],
                              "district_code": ["D0001"], "population": np.nan, "area_km2": 0.8},
                             geometry=[shapely.Point(PLANT).buffer(500)], crs=27700)
    return force, districts, wards, towns


def _points(seed: int = 1) -> pd.DataFrame:
    """Background on a 100 m lattice of snapped locations plus a planted cluster near PLANT."""
    rng = np.random.default_rng(seed)
    frames = []
    locs = np.array([(X0 + 50 + 100 * i, Y0 + 50 + 100 * j) for i in range(60) for j in range(50)])
    for month in MONTHS:
        n = 500
        pick = rng.integers(0, len(locs), n)
        frames.append(pd.DataFrame({"x": locs[pick, 0], "y": locs[pick, 1], "month": month,
                                    "crime_type": rng.choice(TYPES, n), "location": "On or near Some Lane"}))
        k = 60 if month >= "2025-07" else 40  # rising in the second half
        dx = rng.choice([-100.0, 0.0, 100.0], k)
        dy = rng.choice([-100.0, 0.0, 100.0], k)
        frames.append(pd.DataFrame({"x": PLANT[0] + dx, "y": PLANT[1] + dy, "month": month,
                                    "crime_type": rng.choice(["Anti-social behaviour", "Violence and sexual offences"], k),
                                    "location": rng.choice(["On or near High Street", "On or near Nightclub"], k)}))
    return pd.concat(frames, ignore_index=True)


@dataclasses.dataclass
class _Geo:
    force: gpd.GeoDataFrame
    districts: gpd.GeoDataFrame
    wards: gpd.GeoDataFrame
    town_centres: gpd.GeoDataFrame


@dataclasses.dataclass
class _Ctx:
    settings: object
    geography: _Geo
    points: pd.DataFrame
    months_present: list
    periods: object
    out: OutputDir
    progress: Progress
    results: dict = dataclasses.field(default_factory=dict)


def _ctx(tmp_path, points=None, **hotspots):
    settings = load_config()
    extra = dict(settings.extra)
    extra["hotspots"] = {"crime_types": ["All crime", "ASB", "Burglary"], "cell_size": 100, "permutations": 99,
                         **hotspots}
    settings = settings.replace(extra=extra, auto={})
    force, districts, wards, towns = _areas()
    pts = _points() if points is None else points
    present = sorted(pts["month"].unique())
    return _Ctx(settings=settings, geography=_Geo(force, districts, wards, towns), points=pts, months_present=present,
                periods=resolve_periods(present), out=OutputDir(tmp_path), progress=Progress())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    ctx = _ctx(tmp_path_factory.mktemp("hs"))
    summary = stage_hotspots(ctx, png=False)
    return ctx, summary


def test_planted_cluster_is_patrol_area_one(run):
    ctx, _ = run
    pa = ctx.results["hotspots"]["tables"]["patrol_areas"]
    top = pa[(pa["selection"] == "ASB") & (pa["district_code"] == "D0001") & (pa["rank"] == 1)]
    assert len(top) == 1
    assert top.geometry.iloc[0].buffer(1).contains(shapely.Point(PLANT))
    assert top["town_centre"].iloc[0] == "Alphaton"
    assert top["name"].iloc[0].startswith("Alphaton town centre")
    assert "High Street" in top["name"].iloc[0]
    assert top["ward_name"].iloc[0] == "Northgate"
    assert top["trend"].iloc[0].startswith("rising")
    assert np.isnan(top["harm_total"].iloc[0])  # ASB has no harm weight


def test_no_patrol_areas_in_the_flat_district(run):
    ctx, _ = run
    pa = ctx.results["hotspots"]["tables"]["patrol_areas"]
    beta = pa[pa["district_code"] == "D0002"]
    # uniform background: at most a few chance areas, never more than top_n per selection
    assert beta.groupby("selection").size().max() <= 5 if len(beta) else True
    assert (pa.groupby(["district_code", "selection"]).size() <= 5).all()


def test_output_files_and_columns(run):
    ctx, summary = run
    root = ctx.out.root / "hotspots"
    expected = {"patrol_areas.csv": hs_columns.PATROL_AREA_COLUMNS, "clusters.csv": hs_columns.CLUSTER_COLUMNS,
                "emerging.csv": hs_columns.EMERGING_COLUMNS, "stability.csv": hs_columns.STABILITY_COLUMNS,
                "town_centre_hotspots.csv": hs_columns.TOWN_CENTRE_COLUMNS}
    for name, columns in expected.items():
        df = pd.read_csv(root / name)
        assert list(df.columns) == columns, name
    import pyogrio

    from hotspots.stages._hotspots_outputs import ARCGIS_FIELDS

    layers = [name for name, _ in pyogrio.list_layers(root / "grid_cells.gpkg")]
    assert layers == ["all_crime_county", "all_crime_districts", "asb_county", "asb_districts", "burglary_county",
                      "burglary_districts", "layer_styles"]
    cells = gpd.read_file(root / "grid_cells.gpkg", layer="asb_districts")
    assert list(cells.columns) == hs_columns.GRID_CELL_COLUMNS[:-1] + ARCGIS_FIELDS + ["geometry"]
    assert set(cells["study_area_type"]) == {"district"}
    assert set(gpd.read_file(root / "grid_cells.gpkg", layer="asb_county")["study_area_type"]) == {"county"}
    gj = json.loads((root / "patrol_areas.geojson").read_text())
    assert gj["features"] and abs(gj["features"][0]["geometry"]["coordinates"][0][0][0]) < 5  # WGS84
    assert (ctx.out.root / "maps" / "county.html").is_file() and (ctx.out.root / "maps" / "alpha.html").is_file()
    assert summary["patrol_areas"] > 0


def test_counts_preserved_and_gi_classes(run):
    ctx, _ = run
    res = ctx.results["hotspots"]
    county_cells = res["county"].selections["All crime"].cells
    pts = ctx.points
    all_crime = set(ctx.settings.crime_groups["All crime"])
    n_current = int((pts["month"].str.startswith("2025") & pts["crime_type"].isin(all_crime)).sum())
    assert int(county_cells["count"].sum()) == n_current
    hot = county_cells[county_cells["gi_class"].str.startswith("hot")]
    assert hot.geometry.buffer(1).contains(shapely.Point(PLANT)).any()


def test_emerging_uses_nan_for_missing_months(run):
    ctx, _ = run
    em = ctx.results["hotspots"]["tables"]["emerging"]
    # 2024-05..2024-12 are missing: 24-month span, 16 present
    assert len(em) > 0 and "no pattern detected" not in set(em["emerging_class"])
    planted = em[em["study_area_code"] == "D0001"]
    assert planted["emerging_class"].str.contains("hot spot").any()
    assert (em["n_observed_months"] == 16).all() and (em["n_missing_months"] == 8).all()
    assert set(em["final_month"]) == {"2025-12"}


def test_stability_rows(run):
    ctx, _ = run
    st = ctx.results["hotspots"]["tables"]["stability"]
    assert len(st) == 3 * 3  # county + 2 districts, 3 selections
    assert st["period_a"].eq("2024-01..2024-04").all() and st["period_b"].eq("2025-01..2025-04").all()
    assert st["jaccard"].between(0, 1).all()
    assert (st["share_top_10pct"] >= st["share_top_1pct"]).all()


def test_patrol_ids_stable_across_runs_and_row_order(tmp_path, run):
    ctx, _ = run
    shuffled = ctx.points.sample(frac=1.0, random_state=3).reset_index(drop=True)
    ctx2 = _ctx(tmp_path, points=shuffled)
    hs.run_hotspots(ctx2)
    a = ctx.results["hotspots"]["tables"]["patrol_areas"]
    b = ctx2.results["hotspots"]["tables"]["patrol_areas"]
    cols = ["patrol_area_id", "rank", "count", "n_cells", "name"]
    pd.testing.assert_frame_equal(a[cols].reset_index(drop=True), b[cols].reset_index(drop=True))


def test_stable_id_anchors_on_peak_cell():
    ida = stable_patrol_id("D1", "ASB", ["c1", "c2", "c3"], [1, 9, 2])
    idb = stable_patrol_id("D1", "ASB", ["c2", "c3", "c4"], [9, 2, 1])
    assert ida == idb == "D1-asb-c2"


def test_cell_size_recorded(run):
    ctx, summary = run
    assert summary["cell_size_m"]["Alpha"] == 100.0
    assert "hotspots.cell_size_m" in ctx.settings.auto


def test_auto_cell_size_respects_floor(tmp_path):
    ctx = _ctx(tmp_path)
    extra = dict(ctx.settings.extra)
    extra["hotspots"] = {k: v for k, v in extra["hotspots"].items() if k != "cell_size"}
    ctx.settings = ctx.settings.replace(extra=extra)
    inputs = hs.build_inputs(ctx, hs.hotspot_config(ctx.settings))
    assert inputs.districts[0].cell_size == 100.0  # 3 km / 50 = 60 m -> the 100 m floor
    assert "floor" in inputs.districts[0].cell_size_reason


def test_hour_of_week_only_with_times(tmp_path, run):
    ctx, _ = run
    pa = ctx.results["hotspots"]["tables"]["patrol_areas"]
    assert pa["hour_of_week"].str.contains("not available").all()
    pts = _points()
    rng = np.random.default_rng(2)
    days = rng.integers(1, 28, len(pts))
    hours = np.where(rng.random(len(pts)) < 0.7, 23, rng.integers(0, 24, len(pts)))
    pts["datetime"] = pd.to_datetime([f"{m}-{d:02d} {h:02d}:30" for m, d, h in zip(pts["month"], days, hours)])
    ctx2 = _ctx(tmp_path, points=pts)
    hs.run_hotspots(ctx2)
    pa2 = ctx2.results["hotspots"]["tables"]["patrol_areas"]
    assert pa2["hour_of_week"].str.contains("23:00").any()
    assert (tmp_path / "hotspots" / "patrol_area_hour_of_week.csv").is_file()


def test_bad_config_reports_every_problem(tmp_path):
    ctx = _ctx(tmp_path, shape="triangle", top_n=0, crime_types=["Nonsense"], cell_size=20)
    with pytest.raises(ConfigError) as err:
        hs.hotspot_config(ctx.settings)
    msg = str(err.value.message)
    for word in ("shape", "top_n", "cell_size"):
        assert word in msg
