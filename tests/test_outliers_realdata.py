"""The CSP outlier stage on the real Hertfordshire data (shared session context), plus the report in Chromium."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from hotspots.stages.outliers import stage_outliers
import hotspots.outliers as O

pytestmark = pytest.mark.realdata

CSP_NAMES = {"Broxbourne", "Dacorum", "East Hertfordshire", "Hertsmere", "North Hertfordshire", "St Albans",
             "Stevenage", "Three Rivers", "Watford", "Welwyn Hatfield"}


@pytest.fixture(scope="module")
def outliers_run(real_context):
    """Run the stage once (writes under the session's output directory)."""
    summary = stage_outliers(real_context)
    return real_context, summary, real_context.results["outliers"]


def test_outputs_written_with_documented_columns(outliers_run):
    ctx, summary, _ = outliers_run
    folder = ctx.out.root / "outliers"
    expected = {"outliers_district.csv": O.DISTRICT_COLUMNS, "outliers_lsoa.csv": O.LSOA_COLUMNS,
                "outliers_change.csv": O.CHANGE_COLUMNS, "concentration.csv": O.CONCENTRATION_COLUMNS}
    for name, columns in expected.items():
        header = pd.read_csv(folder / name, nrows=2)
        assert list(header.columns) == columns, name
    import pyogrio

    info = pyogrio.read_info(folder / "outliers_district.gpkg")
    assert info["crs"].endswith("27700")
    assert (folder / "csp_outlier_report.html").stat().st_size > 100_000
    assert summary["period"] == "2025-01..2025-12"
    assert summary["change"] == "2025-01..2025-04 vs 2024-01..2024-04"


def test_district_table_against_counts(outliers_run):
    ctx, _, res = outliers_run
    district = res.district
    assert set(district["area_name"]) == CSP_NAMES
    counts = ctx.counts("csp")
    months = set(ctx.periods.current.months)
    shop = counts[(counts["crime_type"] == "Shoplifting") & counts["month"].isin(months)]
    observed = shop.groupby("area_code")["count"].sum()
    population = ctx.geography.csps.set_index("area_code")["population"]
    rows = district[district["crime_type"] == "Shoplifting"].set_index("area_code")
    assert (rows["count"] == observed.reindex(rows.index)).all()
    rate = observed.sum() / population.sum()
    np.testing.assert_allclose(rows["county_rate_per_1000"], 1000 * rate)
    z = (observed - rate * population) / np.sqrt(rate * population)
    np.testing.assert_allclose(rows["z"], z.reindex(rows.index))
    lo, hi = np.quantile(z, [0.1, 0.9])
    np.testing.assert_allclose(rows["phi"], np.mean(np.clip(z, lo, hi) ** 2))
    np.testing.assert_allclose(rows["z_adjusted"], rows["z"] / np.sqrt(rows["phi"]))


def test_adjustment_reduces_flags_on_real_data(outliers_run):
    _, summary, res = outliers_run
    # With 10 large CSPs nearly every rate beats Poisson chance; the adjustment keeps only the unusual ones.
    assert summary["district_cells"] == 190
    assert summary["district_cells_flagged_unadjusted"] > 100
    assert summary["district_cells_flagged_adjusted"] < 40
    assert summary["phi_district"]["All crime"] > 10


def test_lsoas_reconcile_with_csps(outliers_run):
    ctx, _, res = outliers_run
    lsoa = res.lsoa
    assert lsoa["area_code"].nunique() == len(ctx.geography.lsoa21)
    all_crime = lsoa[lsoa["crime_type"] == "All crime"].groupby("csp_code")["count"].sum()
    csp = res.district[res.district["crime_type"] == "All crime"].set_index("area_code")["count"]
    # LSOA counts use police.uk's LSOA code, CSP counts the map position: within 1% of each other
    np.testing.assert_allclose(all_crime.reindex(csp.index), csp, rtol=0.01)


def test_real_change_against_statsmodels(outliers_run):
    import statsmodels.api as sm

    ctx, _, res = outliers_run
    counts = ctx.counts("csp")
    before = counts[counts["month"].isin(ctx.periods.comparison.months) & (counts["crime_type"] == "Burglary")]
    after = counts[counts["month"].isin(ctx.periods.change_current.months) & (counts["crime_type"] == "Burglary")]
    b = before.groupby("area_code")["count"].sum()
    a = after.groupby("area_code")["count"].sum()
    code = res.district.loc[res.district["area_name"] == "Watford", "area_code"].iloc[0]
    y = np.array([b[code], a[code], b.sum() - b[code], a.sum() - a[code]], dtype=float)
    X = sm.add_constant(np.column_stack([[1, 1, 0, 0], [0, 1, 0, 1], [0, 1, 0, 0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.GLM(y, X, family=sm.families.Poisson()).fit()
    row = res.change[(res.change["area_type"] == "csp") & (res.change["area_code"] == code)
                     & (res.change["crime_type"] == "Burglary")].iloc[0]
    assert row["ratio_of_ratios"] == pytest.approx(math.exp(fit.params[3]), rel=1e-6)
    # the p-value allows for the overdispersion of the CSPs' changes when there is any (phi > 1: z / sqrt(phi) on t, n - 1 df)
    from scipy import stats

    from hotspots.outliers.change_table import change_table

    b_all = before.assign(is_group=False).groupby(["area_code", "crime_type", "is_group"])["count"].sum().reset_index()
    a_all = after.assign(is_group=False).groupby(["area_code", "crime_type", "is_group"])["count"].sum().reset_index()
    disp = change_table(b_all, a_all, ctx.geography.csps, before_period=ctx.periods.comparison,
                        after_period=ctx.periods.change_current).attrs["change_dispersion"]["Burglary"]
    z = fit.params[3] / fit.bse[3]
    expected = fit.pvalues[3] if disp["applied"] == 1.0 else 2 * stats.t.sf(abs(z) / math.sqrt(disp["applied"]), disp["n"] - 1)
    assert row["p_vs_reference"] == pytest.approx(expected, rel=1e-4)
    assert row["before_period"] == "2024-01..2024-04" and row["after_period"] == "2025-01..2025-04"


def test_concentration_real(outliers_run):
    _, _, res = outliers_run
    conc = res.concentration
    county = conc[(conc["area_type"] == "force") & (conc["crime_type"] == "All crime")].iloc[0]
    assert county["n_lsoas"] > 700
    assert 0.05 < county["share_top5"] < county["share_top10"] < 1


@pytest.mark.browser
def test_real_report_in_chromium(outliers_run, tmp_path):
    from _browser import open_page

    ctx, _, _ = outliers_run
    path = ctx.out.root / "outliers" / "csp_outlier_report.html"
    with open_page(path, width=1280, height=900) as (page, events):
        assert events["page_errors"] == []
        assert events["blocked_requests"] == []
        assert events["console_errors"] == []
        sections = page.locator("section.csp")
        assert sections.count() == 10
        names = {sections.nth(i).locator("h2").inner_text() for i in range(10)}
        assert names == CSP_NAMES
        per_section = page.evaluate("""Array.from(document.querySelectorAll('section.csp')).map(s => ({
            headings: Array.from(s.querySelectorAll('h3')).map(h => h.textContent.trim()),
            sentences: s.querySelectorAll('ul.stand-out li').length,
            charts: s.querySelectorAll('img.chart').length}))""")
        for info in per_section:
            for heading in ("What stands out", "Funnel plots", "Monthly trend", "Busiest LSOAs (all crime)", "Caveats"):
                assert heading in info["headings"]
            assert info["sentences"] >= 1 and info["charts"] >= 2
        assert page.locator("#matrix tbody tr").count() == 10
        # every chart decoded and drew (broken images have naturalWidth 0)
        broken = page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length")
        assert broken == 0
        page.locator("#overview").screenshot(path=str(tmp_path / "overview.png"))
        sections.nth(0).screenshot(path=str(tmp_path / "csp_first.png"))
        page.emulate_media(media="print")
        assert page.evaluate(
            "getComputedStyle(document.querySelector('section.csp')).breakBefore") in ("page", "always")
    assert (tmp_path / "overview.png").stat().st_size > 10_000


def test_funnel_plots_written_directly_match_matplotlib(outliers_run):
    """Every funnel plot of the real report: the direct SVG shows the texts, dots and ticks matplotlib drew."""
    from test_report_charts import _assert_same_funnel

    _, _, res = outliers_run
    for code, crime_type in zip(res.funnel_picks["area_code"], res.funnel_picks["crime_type"]):
        _assert_same_funnel(res.funnels[res.funnels["crime_type"] == crime_type],
                            res.district[res.district["crime_type"] == crime_type], code, crime_type)
