"""Before/after evaluation (hotspots.evaluation) on synthetic data with known effects.

Points are generated inside hand-built polygons: six 500 m treated squares in two 10 km
districts, their 250 m buffer rings, and the rest of the county.  After the start, recording
rises 10% everywhere, the treated areas fall 30% relative to that, and 20% extra crime is
displaced into the buffers.  The orchestration must recover those effects within its intervals.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box

from hotspots._errors import ConfigError, ValidationError
from hotspots.evaluation import (
    TreatedAreas,
    classify_change,
    describe_change,
    evaluate_areas,
    illustrative_patrol_areas,
    make_buffers,
    overall_verdict,
)
from hotspots.evaluation._analysis import _evaluate_areas
from hotspots.evaluation.areas import MAX_CELLS_PER_PATROL_AREA
from hotspots.evaluation.tables import (
    AREA_TABLE_COLUMNS,
    MONTHLY_COLUMNS,
    SUMMARY_COLUMNS,
)
from hotspots.geo.aggregate import Period
from hotspots.months import month_range
from hotspots.schema import AREA_COLUMNS, BNG
from hotspots.stages._evaluate_config import (
    evaluation_config,
    resolve_evaluation_periods,
)

ASB, VIOLENCE = "Anti-social behaviour", "Violence and sexual offences"
GROUPS = {"ASB and violence": (ASB, VIOLENCE), "ASB": (ASB,), "Violence": (VIOLENCE,)}
HISTORY = month_range("2023-01", "2023-12")
BEFORE = month_range("2024-01", "2024-04")
AFTER = month_range("2025-01", "2025-04")
MONTHS = HISTORY + BEFORE + AFTER  # 2024-05..2024-12 missing: a gap, as in the real data
EFFECT, RECORDING, DISPLACEMENT = 0.70, 1.10, 1.20
XSS = "<img src=x onerror=alert(1)>"


def _districts() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"area_code": ["D1", "D2"], "area_name": ["West", "East"]},
        geometry=[box(0, 0, 10_000, 10_000), box(10_000, 0, 20_000, 10_000)], crs=BNG,
    )


def _treated(names: list[str] | None = None) -> gpd.GeoDataFrame:
    corners = [(2000, 2000), (2000, 7000), (6000, 4500), (12_000, 2000), (12_000, 7000), (16_000, 4500)]
    names = names or [f"Area {i + 1}" for i in range(len(corners))]
    gdf = gpd.GeoDataFrame(
        {"area_type": "user", "area_code": [f"T{i + 1}" for i in range(len(corners))], "area_name": names,
         "district_code": ["D1"] * 3 + ["D2"] * 3, "population": np.nan},
        geometry=[box(x, y, x + 500, y + 500) for x, y in corners], crs=BNG,
    )
    gdf["area_km2"] = gdf.geometry.area / 1e6
    return gdf[AREA_COLUMNS]


def _sample_in(geom, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n uniform points inside a polygon (rejection sampling in its bounding box)."""
    xs, ys = [], []
    minx, miny, maxx, maxy = geom.bounds
    shapely.prepare(geom)
    while sum(map(len, xs)) < n:
        x = rng.uniform(minx, maxx, 4 * n + 16)
        y = rng.uniform(miny, maxy, 4 * n + 16)
        ok = shapely.contains_xy(geom, x, y)
        xs.append(x[ok])
        ys.append(y[ok])
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def synthetic_points(treated: gpd.GeoDataFrame, districts: gpd.GeoDataFrame, *, seed: int = 3) -> pd.DataFrame:
    """Monthly Poisson points: treated 40/area/month, buffers 30/area/month, rest of the county 2,400/month."""
    rng = np.random.default_rng(seed)
    buffers = make_buffers(treated, 250.0)
    county = shapely.union_all(districts.geometry.values)
    rest = shapely.difference(county, shapely.union_all(list(treated.geometry) + list(buffers.geometry)))
    zones = [(g, 40.0, "treated") for g in treated.geometry] + [(g, 30.0, "buffer") for g in buffers.geometry]
    zones.append((rest, 2400.0, "control"))
    frames = []
    for month in MONTHS:
        after = month in AFTER
        for geom, rate, role in zones:
            mu = rate * (RECORDING if after else 1.0)
            if after and role == "treated":
                mu *= EFFECT
            if after and role == "buffer":
                mu *= DISPLACEMENT
            n = rng.poisson(mu)
            x, y = _sample_in(geom, n, rng)
            frames.append(pd.DataFrame({"x": x, "y": y, "month": month,
                                        "crime_type": rng.choice([ASB, VIOLENCE], size=n)}))
    pts = pd.concat(frames, ignore_index=True)
    pts["location"] = "On or near Test Street"
    return pts


@pytest.fixture(scope="module")
def synthetic():
    districts = _districts()
    treated = _treated()
    points = synthetic_points(treated, districts)
    areas = TreatedAreas(areas=treated, source="file", description="six synthetic squares", illustrative=False,
                         selected_on_counts=False)
    result = _evaluate_areas(
        points, areas, districts, months_present=MONTHS, before=Period("2024-01..2024-04", tuple(BEFORE)),
        after=Period("2025-01..2025-04", tuple(AFTER)), crime_types=GROUPS, funding_gbp=600_000.0,
        all_months=month_range("2023-01", "2025-04"),
    )
    return {"districts": districts, "treated": treated, "points": points, "result": result}


def _measure(result, name: str, crime_type: str = "ASB and violence") -> pd.Series:
    s = result.summary
    return s[(s["crime_type"] == crime_type) & (s["measure"] == name)].iloc[0]


# --------------------------------------------------------------------------- known effects recovered
def test_did_recovers_treated_effect_despite_recording_rise(synthetic):
    res = synthetic["result"]
    raw = _measure(res, "raw_change_pct")["estimate"]
    did = _measure(res, "did_pct_change")
    # the raw change mixes the patrol effect with the recording rise: about 0.7 * 1.1 - 1 = -23%
    assert -32 < raw < -14
    assert did["low"] < 100 * (EFFECT - 1) < did["high"]
    assert did["verdict"] == "fell"
    assert _measure(res, "control_change_pct")["estimate"] == pytest.approx(100 * (RECORDING - 1), abs=4)


def test_panel_and_pre_trend(synthetic):
    res = synthetic["result"]
    panel = _measure(res, "panel_pct_change")
    assert panel["low"] < 100 * (EFFECT - 1) < panel["high"]
    assert _measure(res, "pre_trend_pct_per_month")["verdict"] == "no evidence of differing pre-trends"


def test_displacement_into_buffers_detected(synthetic):
    res = synthetic["result"]
    buf = _measure(res, "buffer_pct_vs_control")
    assert buf["low"] < 100 * (DISPLACEMENT - 1) < buf["high"]
    assert buf["low"] > 0
    assert _measure(res, "displacement_verdict")["verdict"] in ("displacement", "possible displacement")
    assert _measure(res, "wdq")["estimate"] < 0  # < 0 = displacement (Bowers & Johnson)
    assert _measure(res, "tne_buffer")["estimate"] < 0  # more than expected in the buffers
    assert res.findings[0]["displacement_verdict"] in ("displacement", "possible displacement")
    assert "displacement" in res.headline


def test_harm_cost_and_overall_verdict(synthetic):
    res = synthetic["result"]
    harm = _measure(res, "harm_pct_change")
    assert harm["low"] < 100 * (EFFECT - 1) < harm["high"]  # one harm weight per type, same effect
    assert _measure(res, "harm_pct_change", "Violence")["verdict"] == "fell"
    assert "harm_pct_change" not in set(res.summary.loc[res.summary["crime_type"] == "ASB", "measure"])  # ASB not weighted
    funding = _measure(res, "funding_pro_rata")["estimate"]
    assert funding == pytest.approx(600_000 * 4 / 12)  # pro-rated to the 4-month after period
    cost = _measure(res, "cost_per_crime_prevented")
    prevented = _measure(res, "crimes_prevented")
    assert cost["estimate"] == pytest.approx(funding / prevented["estimate"])
    assert cost["low"] < cost["estimate"] < cost["high"]
    assert res.findings[0]["overall_verdict"] == "credible reduction"
    assert res.headline.startswith("Across the 6 areas, ASB and violence fell")


def test_output_tables_have_documented_columns(synthetic):
    res = synthetic["result"]
    assert list(res.summary.columns) == SUMMARY_COLUMNS
    assert list(res.areas_table.columns) == AREA_TABLE_COLUMNS
    assert list(res.monthly.columns) == MONTHLY_COLUMNS
    assert len(res.areas_table) == 6 * 3
    # missing months are rows with no counts (gaps), never zeros
    gap = res.monthly[res.monthly["month"] == "2024-07"]
    assert (~gap["in_data"]).all() and gap["treated"].isna().all() and (gap["period"] == "no data").all()
    before = res.monthly[(res.monthly["period"] == "before") & (res.monthly["crime_type"] == "ASB and violence")]
    assert before["treated_index"].mean() == pytest.approx(100)


def test_counts_match_an_independent_spatial_count(synthetic):
    """Treated, buffer and control totals agree with a direct shapely count."""
    res, pts, treated = synthetic["result"], synthetic["points"], synthetic["treated"]
    g = res.geometries
    treated_u = shapely.union_all(g.loc[g["role"] == "treated"].geometry.values)
    buffer_u = shapely.union_all(g.loc[g["role"] == "buffer"].geometry.values)
    sel = pts[pts["month"].isin(BEFORE)]
    in_t = shapely.intersects_xy(treated_u, sel["x"], sel["y"])
    in_b = shapely.intersects_xy(buffer_u, sel["x"], sel["y"]) & ~in_t
    assert _measure(res, "treated_before")["estimate"] == in_t.sum()
    assert _measure(res, "buffer_before")["estimate"] == in_b.sum()
    assert _measure(res, "control_before")["estimate"] == (~in_t & ~in_b).sum()


# --------------------------------------------------------------------------- geometry
def test_buffer_rings_exclude_every_treated_area():
    # two areas 300 m apart: each one's 250 m ring reaches the other, which must be cut out
    areas = gpd.GeoDataFrame({"area_code": ["A", "B"], "area_name": ["a", "b"], "district_code": ""},
                             geometry=[box(0, 0, 500, 500), box(800, 0, 1300, 500)], crs=BNG)
    rings = make_buffers(areas, 250.0)
    treated_u = shapely.union_all(areas.geometry.values)
    for ring, area in zip(rings.geometry, areas.geometry):
        assert shapely.area(shapely.intersection(ring, treated_u)) < 1e-6
        assert ring.within(area.buffer(250.0 + 1e-6))
        assert ring.distance(area) < 1e-6  # the ring touches its own area
    assert rings.geometry.iloc[0].intersects(box(750, 100, 799, 400))  # the gap between A and B is buffer
    # clipped to the study area: nothing outside it
    clipped = make_buffers(areas, 250.0, box(-100, -100, 2000, 2000))
    assert clipped.geometry.iloc[0].bounds[0] >= -100 - 1e-9


def test_control_excludes_treated_areas_and_buffers(synthetic):
    g = synthetic["result"].geometries
    excluded = shapely.union_all(g.loc[g["role"].isin(["treated", "buffer"])].geometry.values)
    for role in ("control", "matched_control", "buffer_matched_control"):
        sub = g[g["role"] == role]
        assert len(sub), role
        assert shapely.area(shapely.intersection(shapely.union_all(sub.geometry.values), excluded)) < 1.0


def test_notebook_verb_takes_plain_polygons_and_month_strings(synthetic):
    """evaluate_areas: a GeoDataFrame without codes and "YYYY-MM..YYYY-MM" periods give the stage's numbers."""
    res = evaluate_areas(
        synthetic["points"], synthetic["treated"][["geometry"]], before="2024-01..2024-04", after=list(AFTER),
        districts=synthetic["districts"], crime_types=GROUPS, months_present=MONTHS, funding_gbp=600_000.0,
        selected_on_counts=False,
    )
    pd.testing.assert_frame_equal(res.summary, synthetic["result"].summary)
    assert res.areas_table["area_code"].unique().tolist() == ["T01", "T02", "T03", "T04", "T05", "T06"]
    assert list(res.auto) == ["pool_cell_m", "matched_controls", "funding_pro_rata"]
    assert res.area_verdicts == synthetic["result"].area_verdicts
    with pytest.raises(ValidationError) as err:
        evaluate_areas(synthetic["points"], synthetic["treated"], before="2024-13", after="2025-04..2025-01",
                       study_area=synthetic["districts"])
    assert err.value.message.startswith("evaluate_areas: 2 problems: (1) before='2024-13'")


@pytest.mark.parametrize("control", ["rest_of_district", "matched"])
def test_other_controls_recover_the_effect(synthetic, control):
    areas = TreatedAreas(areas=synthetic["treated"], source="file", description="six squares", illustrative=False,
                         selected_on_counts=False)
    res = _evaluate_areas(
        synthetic["points"], areas, synthetic["districts"], months_present=MONTHS,
        before=Period("b", tuple(BEFORE)), after=Period("a", tuple(AFTER)),
        crime_types={"ASB and violence": GROUPS["ASB and violence"]}, control=control,
    )
    did = _measure(res, "did_pct_change")
    assert did["low"] < 100 * (EFFECT - 1) < did["high"]
    if control == "matched":
        cells = res.geometries[res.geometries["role"] == "matched_control"]
        assert 6 <= len(cells) and cells["area_km2"].round(3).eq(0.25).all()  # same-size cells


# --------------------------------------------------------------------------- wording
def test_wording_never_claims_more_than_the_interval():
    comp = "the rest of the county"
    assert describe_change(-18.2, -26.1, -9.3, what="ASB", comparison=comp, n_crimes=900) == \
        "ASB fell 18% (95% CI 9–26%) relative to the rest of the county"
    crossing = describe_change(-6.0, -19.0, 9.0, what="ASB", comparison=comp, n_crimes=900)
    assert crossing.startswith("no detectable change") and "fell" not in crossing
    assert classify_change(-6.0, -19.0, 9.0, 900) == "no detectable change"
    assert classify_change(12.0, 3.0, 22.0, 900) == "rose"
    assert describe_change(-50, -90, 150, what="ASB", comparison=comp, n_crimes=9).startswith("too few")
    assert classify_change(-40, -80, 60, 400) == "too few crimes to tell"  # interval too wide to say anything
    assert classify_change(float("nan"), float("nan"), float("nan"), 400) == "not estimable"


def test_rtm_undermines_a_fall_when_areas_were_picked_on_counts():
    f = {"calibrated": {"pct_change": -20.0, "pct_low": -30.0, "pct_high": -9.0}, "n_areas": 6,
         "treated_before": 300, "treated_after": 200,
         "rtm_verdict": "consistent with regression to the mean", "pre_trend": None, "panel": None}
    picked = TreatedAreas(areas=_treated(), source="patrol_areas", description="", illustrative=True,
                          selected_on_counts=True)
    named = TreatedAreas(areas=_treated(), source="town_centres", description="", illustrative=True,
                         selected_on_counts=False)
    assert overall_verdict(f, picked)[0] == "reduction not attributable"
    assert overall_verdict(f, named)[0] == "credible reduction"


# --------------------------------------------------------------------------- settings
def test_config_validation_collects_every_problem():
    with pytest.raises(ConfigError) as err:
        evaluation_config({"control": "nearby", "buffer_m": "wide", "before": ["2024-13", "2024-04"],
                              "crime_types": ["Burglaries"], "colour": "red"}, GROUPS)
    assert "5 problem(s)" in err.value.message
    cfg = evaluation_config({"before": "2024-01..2024-04", "funding_gbp": 0}, GROUPS)
    assert cfg.before == ("2024-01", "2024-04") and cfg.funding_gbp is None


def test_periods_default_to_seasonally_matched_months():
    present = month_range("2021-01", "2022-01") + BEFORE + month_range("2025-01", "2025-12")
    before, after, why = resolve_evaluation_periods(present)
    assert before.months == tuple(BEFORE) and after.months == tuple(AFTER)
    assert "seasonally matched" in why
    b, a, _ = resolve_evaluation_periods(present, after=("2025-02", "2025-03"))
    assert b.months == ("2024-02", "2024-03")
    with pytest.raises(ConfigError):
        resolve_evaluation_periods(present, before=("2025-01", "2025-04"), after=("2024-01", "2024-04"))


def test_illustrative_patrol_areas_cover_every_district():
    districts = _districts()
    rng = np.random.default_rng(3)
    x = np.r_[rng.normal(2200, 60, 300), rng.normal(14_000, 60, 200), rng.uniform(0, 20_000, 500)]
    y = np.r_[rng.normal(2200, 60, 300), rng.normal(6000, 60, 200), rng.uniform(0, 10_000, 500)]
    pts = pd.DataFrame({"x": x, "y": y, "month": "2024-01", "crime_type": ASB, "location": "On or near Market Place"})
    areas = illustrative_patrol_areas(pts, districts, districts, months=["2024-01"], crime_types=[ASB], n_areas=4)
    assert len(areas) == 4 and set(areas["district_code"]) == {"D1", "D2"}
    assert areas["area_code"].tolist() == ["IA01", "IA02", "IA03", "IA04"]
    assert areas["area_name"].iloc[0] == "Market Place (West)"
    assert areas.geometry.iloc[0].contains(shapely.Point(2200, 2200))
    assert (areas["area_km2"] <= MAX_CELLS_PER_PATROL_AREA * 0.0625 + 1e-9).all()


# --------------------------------------------------------------------------- report
@pytest.fixture(scope="module")
def payload_report(tmp_path_factory):
    """The report for areas whose names carry an HTML/JS payload (a hostile polygon file)."""
    from hotspots.render.evaluation_report import render_evaluation_report

    districts = _districts()
    treated = _treated([XSS] + [f"Area {i}" for i in range(2, 7)])
    points = synthetic_points(treated, districts, seed=11)
    areas = TreatedAreas(areas=treated, source="file", description=f"areas from {XSS}.gpkg", illustrative=True,
                         selected_on_counts=None)
    res = _evaluate_areas(
        points, areas, districts, months_present=MONTHS, before=Period("2024-01..2024-04", tuple(BEFORE)),
        after=Period("2025-01..2025-04", tuple(AFTER)), crime_types=GROUPS, funding_gbp=1_000_000.0,
        all_months=month_range("2023-01", "2025-04"),
    )
    html = render_evaluation_report(res)
    path = tmp_path_factory.mktemp("report") / "evaluation_report.html"
    path.write_text(html, encoding="utf-8")
    return {"html": html, "path": path, "result": res}


def test_report_escapes_names_and_is_self_contained(payload_report):
    html = payload_report["html"]
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script" not in html.lower()
    assert "http://" not in html and "https://" not in html  # offline: nothing fetched
    assert "ILLUSTRATIVE" in html
    assert "data:image/png;base64," in html  # charts and map inline


def test_report_text_comes_from_the_configuration_not_the_code(payload_report):
    """Another force, no programme name: nothing Hertfordshire-specific in the title or text."""
    from hotspots.render.evaluation_report import render_evaluation_report

    html = payload_report["html"]  # meta has no programme (a non-Hertfordshire configuration)
    assert "Operation Hotspot" not in html
    assert "<h1>Did the patrols reduce crime?</h1>" in html
    res = payload_report["result"]
    res.meta["programme"] = "Project Nightwatch"
    try:
        named = render_evaluation_report(res)
    finally:
        res.meta.pop("programme")
    assert "<h1>Project Nightwatch: did the patrols reduce crime?</h1>" in named
    assert "Operation Hotspot" not in named


def test_report_claims_no_cost_unless_a_reduction_is_credited(payload_report):
    res = payload_report["result"]
    html = payload_report["html"]
    if res.findings[0]["overall_verdict"] != "credible reduction":
        assert "No cost per crime prevented is reported" in html
        assert "For reference only" not in html and "£" not in res.headline


@pytest.mark.browser
def test_report_in_chromium(payload_report, tmp_path):
    from _browser import open_page

    res = payload_report["result"]
    with open_page(payload_report["path"]) as (page, events):
        assert events["dialogs"] == [], "the area-name payload ran"
        assert events["page_errors"] == [] and events["blocked_requests"] == []
        headline = page.locator("#headline")
        assert headline.is_visible()
        assert headline.inner_text().strip() == res.headline
        assert page.locator("#illustrative").is_visible()
        assert page.locator("#areas").inner_text().count(XSS) == 1  # shown as text, not run
        shot = tmp_path / "evaluation_report.png"
        page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_cli_evaluate_help_has_an_example():
    from click.testing import CliRunner

    from hotspots.cli import cli

    out = CliRunner().invoke(cli, ["evaluate", "--help"])
    assert out.exit_code == 0
    assert "Example:" in out.output and "--areas" in out.output and "--funding" in out.output


def _detect_inputs(points, districts, months):
    from hotspots.detect.results import Inputs, StudyArea
    from hotspots.harm import load_harm_weights

    county = shapely.union_all(districts.geometry.values)
    towns = gpd.GeoDataFrame({"area_code": ["TC1"], "area_name": ["Westtown"]}, geometry=[box(1500, 1500, 3000, 3000)],
                             crs=BNG)
    return Inputs(
        points=points, current=tuple(months), comparison=(), change_current=(), months_all=tuple(MONTHS),
        months_present=tuple(MONTHS), county=StudyArea("county", "C", "County", county, 250.0, "test"),
        districts=[StudyArea("district", r.area_code, r.area_name, r.geometry, 250.0, "test")
                   for r in districts.itertuples()],
        wards=districts.assign(area_type="ward"), town_centres=towns, selections=dict(GROUPS),
        harm_weights=load_harm_weights())


def test_default_treated_areas_are_the_hotspot_detections_patrol_areas(synthetic):
    """One set of patrol areas: the evaluation's default areas are exactly the detect analysis's patrol areas for the
    before period (ids, names, shapes), as drawn on the maps."""
    from hotspots.detect.analysis import analyse_area
    from hotspots.detect.options import HotspotConfig
    from hotspots.evaluation.hotspot_areas import detected_patrol_treatment

    inputs = _detect_inputs(synthetic["points"], synthetic["districts"], BEFORE)
    cfg = HotspotConfig(crime_types=("ASB and violence",), permutations=99)
    before = Period("2024-01..2024-04", tuple(BEFORE))
    treated = detected_patrol_treatment(inputs, cfg, "ASB and violence", period=before, before=before)
    expected = []
    for d in inputs.districts:
        pa = analyse_area(inputs, d, cfg, patrol=True).selections["ASB and violence"].patrol_areas
        if pa is not None:
            expected.append(pa)
    expected = pd.concat(expected, ignore_index=True)
    got = treated.areas.set_index("area_code")
    assert sorted(got.index) == sorted(expected["patrol_area_id"])
    for _, row in expected.iterrows():
        assert got.loc[row["patrol_area_id"], "area_name"] == row["name"]
        assert got.loc[row["patrol_area_id"], "geometry"].equals(row.geometry)
    assert treated.selected_on_counts and treated.source == "hotspot_patrol_areas"
    # the six busy synthetic squares are what the detection finds
    assert len(got) >= 4 and got.geometry.intersects(shapely.union_all(synthetic["treated"].geometry.values)).all()


def test_summary_has_no_crimes_prevented_or_cost_unless_credited(payload_report):
    s = payload_report["result"].summary
    for f in payload_report["result"].findings:
        rows = s[(s["crime_type"] == f["crime_type"])
                 & s["measure"].isin(["crimes_prevented", "cost_per_crime_prevented", "cost_per_harm_unit_prevented"])]
        if f["overall_verdict"] != "credible reduction":
            assert rows["estimate"].isna().all() and (rows["verdict"] == "not reported").all(), rows
        else:
            assert rows["estimate"].notna().any()


def test_report_for_another_force_has_no_hertfordshire_text(payload_report):
    from hotspots.render.evaluation_report import render_evaluation_report

    html = payload_report["html"]
    for text in ("Hertfordshire", "Operation Hotspot", "14.5", "82.5", "Herts"):
        assert text not in html, text
    res = payload_report["result"]
    res.meta.update(published_figure='"−9% burglary" figure', config_notes="Recording changed in 2024.")
    try:
        html2 = render_evaluation_report(res)
    finally:
        res.meta.pop("published_figure")
        res.meta.pop("config_notes")
    assert "how the published &#34;−9% burglary&#34; figure was" in html2 and "Recording changed in 2024." in html2


def test_report_shows_the_decision_table_with_the_row_that_decided(payload_report):
    from hotspots.evaluation.verdict import DECISION_TABLE

    html = payload_report["html"]
    assert 'id="decision-table"' in html
    for row, _condition, verdict in DECISION_TABLE:
        assert f"<td>{row}</td>" in html and f"<td>{verdict}</td>" in html
    fired = payload_report["result"].findings[0]["overall_verdict"]
    assert f'class="fired"><td>' in html and fired in html


def test_key_figures_show_the_calibrated_buffer_interval_the_displacement_verdict_uses(payload_report):
    from hotspots.render.evaluation_report import _key_rows, fmt_ci

    res = payload_report["result"]
    s = res.summary.set_index(["crime_type", "measure"])
    for row in _key_rows(res):
        cal = s.loc[(row["crime_type"], "buffer_calibrated_pct_vs_control")]
        if np.isfinite(cal["low"]):
            assert row["buffer_ci"] == fmt_ci(cal["low"], cal["high"])
