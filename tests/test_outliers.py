"""Tests for hotspots.outliers and the CSP outlier report (hotspots.render.outliers_*) on small hand-built data.

Every number computed beyond hotspots.stats is checked against an independent
computation (numpy by hand, scipy, statsmodels)."""

from __future__ import annotations

import math
import re
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats as sps
from shapely.geometry import box
from statsmodels.stats.multitest import multipletests

import hotspots.outliers as O
from hotspots.outliers import highlights as H
from hotspots.render import outliers_report as R
from hotspots.render import outliers_wording as W
from hotspots._errors import InputFileError, ValidationError
from hotspots.geo.aggregate import Period

PAYLOAD = "<img src=x onerror=alert(1)>"
GROUPS = {"All crime": ["Burglary", "Shoplifting", "Robbery"], "ASB": ["Anti-social behaviour"]}
TYPES = ["Anti-social behaviour", "Burglary", "Robbery", "Shoplifting"]
MONTHS = ["2024-01", "2024-02", "2025-01", "2025-02", "2025-03", "2025-04"]


# --------------------------------------------------------------------------- builders
def make_areas(names=("Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot")):
    """CSPs as boxes, each with three LSOAs."""
    csp_rows, lsoa_rows = [], []
    for i, name in enumerate(names):
        code = f"E2200{i:04d}"
        district = f"E0700{i:04d}"
        csp_rows.append({"area_type": "csp", "area_code": code, "area_name": name, "district_code": district,
                         "population": 60_000.0 + 15_000 * i, "area_km2": 100.0,
                         "geometry": box(i * 10_000, 0, (i + 1) * 10_000, 10_000)})
        for j in range(3):
            lsoa_rows.append({"area_type": "lsoa", "area_code": f"E0100{i}{j:03d}", "area_name": f"{name} 00{j}",
                              "district_code": district, "population": 1500.0 + 100 * j, "area_km2": 1.0,
                              "geometry": box(i * 10_000 + j * 3000, 0, i * 10_000 + (j + 1) * 3000, 3000)})
    csps = gpd.GeoDataFrame(csp_rows, crs=27700)
    lsoas = gpd.GeoDataFrame(lsoa_rows, crs=27700)
    lsoa_to_csp = pd.Series({r["area_code"]: f"E2200{int(r['area_code'][5]):04d}" for r in lsoa_rows})
    return csps, lsoas, lsoa_to_csp


def make_counts(areas, *, seed=1, scale=1.0, months=MONTHS, types=TYPES):
    rng = np.random.default_rng(seed)
    base = {"Anti-social behaviour": 15, "Burglary": 3, "Robbery": 0.8, "Shoplifting": 6}
    rows = []
    for k, area in enumerate(areas.itertuples()):
        for month in months:
            for crime_type in types:
                mean = base[crime_type] * area.population / 1000 / 12 * scale * (1 + 0.25 * (k % 3))
                rows.append({"area_type": area.area_type, "area_code": area.area_code, "area_name": area.area_name,
                             "month": month, "crime_type": crime_type, "count": int(rng.poisson(mean))})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def synthetic():
    csps, lsoas, lsoa_to_csp = make_areas()
    csp_counts = make_counts(csps, seed=3)
    lsoa_counts = make_counts(lsoas, seed=4, scale=3.0)
    period = Period("2025-01..2025-04", tuple(MONTHS[2:]))
    res = O.analyse_outliers(
        csp_counts, lsoa_counts, csps, lsoas, lsoa_to_csp, period=period,
        comparison=Period("2024-01..2024-02", ("2024-01", "2024-02")),
        change_current=Period("2025-01..2025-02", ("2025-01", "2025-02")),
        groups=GROUPS, crime_types=TYPES, months_present=MONTHS, county=("E23000099", "Testshire"),
    )
    res.meta.update({"force_name": "Testshire", "periods_reason": "test periods", "months_missing": ["2024-03"],
                     "town_centres": {"E22000000": ["Alpha Town"]}})
    return {"csps": csps, "lsoas": lsoas, "lsoa_to_csp": lsoa_to_csp, "csp_counts": csp_counts,
            "lsoa_counts": lsoa_counts, "period": period, "results": res}


# --------------------------------------------------------------------------- period totals
def test_period_totals_sums_months_and_groups(synthetic):
    counts = synthetic["csp_counts"]
    totals = O.period_totals(counts, MONTHS[2:], groups=GROUPS, crime_types=TYPES)
    assert list(totals.columns) == ["area_code", "crime_type", "is_group", "count"]
    sub = counts[counts["month"].isin(MONTHS[2:])]
    for code in counts["area_code"].unique():
        mine = sub[sub["area_code"] == code]
        got = totals[totals["area_code"] == code].set_index("crime_type")["count"]
        assert got["All crime"] == mine[mine["crime_type"].isin(GROUPS["All crime"])]["count"].sum()
        assert got["Burglary"] == mine[mine["crime_type"] == "Burglary"]["count"].sum()
        assert got["ASB"] == got["Anti-social behaviour"]
    assert set(totals.loc[totals["is_group"], "crime_type"]) == set(GROUPS)
    assert list(totals["crime_type"].drop_duplicates())[:2] == list(GROUPS)


def test_period_totals_fills_zero_for_missing_group_members():
    counts = pd.DataFrame({"area_code": ["A", "B"], "month": "2025-01", "crime_type": "Burglary", "count": [2, 0]})
    totals = O.period_totals(counts, ["2025-01"], groups={"Theft": ["Robbery"]}, crime_types=["Burglary"])
    assert totals[totals["crime_type"] == "Theft"]["count"].tolist() == [0, 0]


# --------------------------------------------------------------------------- level
def _winsorised_phi(z):
    lo, hi = np.quantile(z, [0.1, 0.9])
    return float(np.mean(np.clip(z, lo, hi) ** 2))


def test_outlier_table_against_hand_computation(synthetic):
    res = synthetic["results"]
    table = res.district
    counts = synthetic["csp_counts"]
    sub = counts[counts["month"].isin(MONTHS[2:]) & (counts["crime_type"] == "Shoplifting")]
    observed = sub.groupby("area_code")["count"].sum()
    population = synthetic["csps"].set_index("area_code")["population"]
    rate = observed.sum() / population.sum()
    expected = rate * population
    z = (observed - expected) / np.sqrt(expected)
    rows = table[table["crime_type"] == "Shoplifting"].set_index("area_code")
    np.testing.assert_allclose(rows["county_rate_per_1000"], 1000 * rate)
    np.testing.assert_allclose(rows["rate_per_1000"], 1000 * observed / population)
    np.testing.assert_allclose(rows["expected"], expected)
    np.testing.assert_allclose(rows["ratio"], observed / expected)
    np.testing.assert_allclose(rows["z"], z)
    phi = _winsorised_phi(z.to_numpy())
    np.testing.assert_allclose(rows["phi"], phi)
    chi2_crit = sps.chi2.ppf(0.95, len(z) - 1)
    assert bool(rows["overdispersed"].iloc[0]) == (len(z) * phi > chi2_crit)
    # exact (Garwood) 95% interval of the rate, from scipy's chi-squared directly
    for code, k in observed.items():
        lower = sps.chi2.ppf(0.025, 2 * k) / 2 if k > 0 else 0.0
        upper = sps.chi2.ppf(0.975, 2 * k + 2) / 2
        assert rows.loc[code, "rate_ci95_lower"] == pytest.approx(1000 * lower / population[code])
        assert rows.loc[code, "rate_ci95_upper"] == pytest.approx(1000 * upper / population[code])
    # rank: 1 = highest rate
    expected_rank = (observed / population).rank(ascending=False, method="min").astype(int)
    assert rows["rank_in_county"].to_dict() == expected_rank.to_dict()
    assert (rows["small_numbers"] == (expected < O.SMALL_EXPECTED)).all()


def test_outlier_flags_match_limits(synthetic):
    table = synthetic["results"].district
    for suffix, column in (("", "flag_unadjusted"), ("_adjusted", "flag")):
        live = table[table[column] != O.FLAG_NO_RECORDS]
        high998 = live["ratio"] > live[f"upper_998{suffix}"]
        high95 = (live["ratio"] > live[f"upper_95{suffix}"]) & ~high998
        low998 = live["ratio"] < live[f"lower_998{suffix}"]
        low95 = (live["ratio"] < live[f"lower_95{suffix}"]) & ~low998
        assert (live.loc[high998, column] == "high_998").all()
        assert (live.loc[high95, column] == "high_95").all()
        assert (live.loc[low998, column] == "low_998").all()
        assert (live.loc[low95, column] == "low_95").all()
        assert (live.loc[~(high998 | high95 | low998 | low95), column] == "within").all()


def test_planted_outlier_flagged_and_overdispersion_widens():
    population = np.full(10, 100_000.0)
    observed = np.array([900, 1100, 1000, 950, 1050, 1200, 800, 1000, 1020, 3000])
    areas = pd.DataFrame({"area_code": [f"A{i}" for i in range(10)], "area_name": [f"a{i}" for i in range(10)],
                          "population": population})
    totals = pd.DataFrame({"area_code": areas["area_code"], "crime_type": "Shoplifting", "is_group": False,
                           "count": observed})
    table = O.outlier_table(totals, areas)
    assert table.loc[9, "flag"] == "high_998"
    assert (table["flag_unadjusted"] != "within").sum() >= (table["flag"] != "within").sum()
    assert table["adjustment"].iloc[0] == "multiplicative"
    width = table["upper_998_adjusted"] - 1
    np.testing.assert_allclose(width, np.sqrt(table["phi"]) * (table["upper_998"] - 1))


def test_no_records_type_is_kept_with_a_flag():
    areas = pd.DataFrame({"area_code": ["A", "B"], "area_name": ["a", "b"], "population": [1000.0, 2000.0]})
    totals = pd.DataFrame({"area_code": ["A", "B"], "crime_type": "Robbery", "is_group": False, "count": [0, 0]})
    table = O.outlier_table(totals, areas)
    assert (table["flag"] == O.FLAG_NO_RECORDS).all()
    assert table["ratio"].isna().all()


def test_missing_population_is_an_error():
    areas = pd.DataFrame({"area_code": ["A", "B"], "area_name": ["a", "b"], "population": [1000.0, np.nan]})
    totals = pd.DataFrame({"area_code": ["A", "B"], "crime_type": "Robbery", "is_group": False, "count": [1, 2]})
    with pytest.raises(ValidationError, match="no resident population"):
        O.outlier_table(totals, areas)


def test_overdispersion_summary_matches_table(synthetic):
    od = synthetic["results"].overdispersion
    table = synthetic["results"].district
    row = od[(od["area_type"] == "csp") & (od["crime_type"] == "All crime")].iloc[0]
    assert row["n"] == 6 and row["df"] == 5
    assert row["phi"] == pytest.approx(table[table["crime_type"] == "All crime"]["phi"].iloc[0])
    assert row["statistic"] == pytest.approx(6 * row["phi"])
    assert row["critical_value"] == pytest.approx(sps.chi2.ppf(0.95, 5))
    assert set(od["area_type"]) == {"csp", "lsoa"}


# --------------------------------------------------------------------------- funnel curves
def _interpolated_quantile(prob, mean):
    """Spiegelhalter (2005) appendix A.1.2, written independently with scipy."""
    r = sps.poisson.ppf(prob, mean)
    alpha = (sps.poisson.cdf(r, mean) - prob) / (sps.poisson.cdf(r, mean) - sps.poisson.cdf(r - 1, mean))
    return r - alpha


def test_funnel_curves_rate_limits(synthetic):
    table = synthetic["results"].district
    curves = O.funnel_curves(table, n_points=7)
    assert list(curves.columns) == O.FUNNEL_COLUMNS
    sub = curves[curves["crime_type"] == "Robbery"]
    row = table[table["crime_type"] == "Robbery"].iloc[0]
    rate = row["county_rate_per_1000"]
    for rec in sub.itertuples():
        e = rate / 1000 * rec.population
        upper = _interpolated_quantile(0.999, e) / e
        lower = max(_interpolated_quantile(0.001, e) / e, 0)
        assert rec.rate_upper_998 == pytest.approx(upper * rate)
        assert rec.rate_lower_998 == pytest.approx(lower * rate)
        if row["adjustment"] == "multiplicative":
            assert rec.rate_upper_998_adjusted == pytest.approx((1 + math.sqrt(row["phi"]) * (upper - 1)) * rate)
    assert sub["population"].min() == pytest.approx(0.8 * table["population"].min())
    assert sub["population"].max() == pytest.approx(1.25 * table["population"].max())


def test_funnel_curves_normal_limits_for_large_counts():
    areas = pd.DataFrame({"area_code": list("ABCD"), "area_name": list("abcd"), "population": [1e6] * 4})
    totals = pd.DataFrame({"area_code": list("ABCD"), "crime_type": "X", "is_group": False,
                           "count": [50_000, 50_100, 49_900, 50_000]})
    table = O.outlier_table(totals, areas)
    curves = O.funnel_curves(table, n_points=3)
    rate = 50_000 / 1e6
    for rec in curves.itertuples():
        e = rate * rec.population
        assert rec.rate_upper_95 == pytest.approx(1000 * rate * (1 + 1.959964 / math.sqrt(e)), rel=2e-3)


# --------------------------------------------------------------------------- change
def test_change_table_against_scipy_and_statsmodels(synthetic):
    change = synthetic["results"].change
    csp = change[change["area_type"] == "csp"]
    counts = synthetic["csp_counts"]
    before = counts[counts["month"].isin(["2024-01", "2024-02"])]
    after = counts[counts["month"].isin(["2025-01", "2025-02"])]
    b = before[before["crime_type"] == "Shoplifting"].groupby("area_code")["count"].sum()
    a = after[after["crime_type"] == "Shoplifting"].groupby("area_code")["count"].sum()
    rows = csp[csp["crime_type"] == "Shoplifting"].set_index("area_code")
    for code in b.index:
        rec = rows.loc[code]
        assert rec["count_before"] == b[code] and rec["count_after"] == a[code]
        assert rec["ref_count_before"] == b.sum() - b[code]
        assert rec["ref_count_after"] == a.sum() - a[code]
        # exact conditional test: a | a + b ~ Binomial(a + b, 1/2) for equal exposures
        p = sps.binomtest(int(a[code]), int(a[code] + b[code]), 0.5).pvalue
        assert rec["rate_ratio_p"] == pytest.approx(p, rel=1e-6)
        assert rec["pct_change"] == pytest.approx(100 * (a[code] / b[code] - 1))
        # ratio of ratios = interaction of a Poisson log-linear model on the 2x2 table
        y = np.array([b[code], a[code], b.sum() - b[code], a.sum() - a[code]], dtype=float)
        area = np.array([1, 1, 0, 0])
        post = np.array([0, 1, 0, 1])
        X = sm.add_constant(np.column_stack([area, post, area * post]))
        with warnings.catch_warnings():  # a saturated model: statsmodels warns about zero residual df
            warnings.simplefilter("ignore")
            fit = sm.GLM(y, X, family=sm.families.Poisson()).fit()
        assert rec["ratio_of_ratios"] == pytest.approx(math.exp(fit.params[3]), rel=1e-6)
        lo, hi = np.exp(fit.conf_int()[3])
        assert rec["ratio_of_ratios_ci_lower"] == pytest.approx(lo, rel=1e-5)
        assert rec["ratio_of_ratios_ci_upper"] == pytest.approx(hi, rel=1e-5)
        assert rec["p_vs_reference"] == pytest.approx(fit.pvalues[3], rel=1e-5)
        assert rec["ref_pct_change"] == pytest.approx(100 * ((a.sum() - a[code]) / (b.sum() - b[code]) - 1))
        assert rec["parent_pct_change"] == pytest.approx(100 * (a.sum() / b.sum() - 1))
        expected_flag = "up_vs_reference" if lo > 1 else "down_vs_reference" if hi < 1 else "in_line"
        assert rec["change_flag"] == expected_flag
    q = multipletests(csp["p_vs_reference"].dropna(), method="fdr_bh")[1]
    np.testing.assert_allclose(csp["q_vs_reference"].dropna(), q)


def test_change_table_rates_per_month_when_periods_differ():
    areas = pd.DataFrame({"area_code": ["A", "B"], "area_name": ["a", "b"], "population": [1000.0, 3000.0]})
    before = pd.DataFrame({"area_code": ["A", "B"], "crime_type": "X", "is_group": False, "count": [10, 30]})
    after = pd.DataFrame({"area_code": ["A", "B"], "crime_type": "X", "is_group": False, "count": [40, 60]})
    out = O.change_table(before, after, areas, before_period=Period("b", ("2024-01",)),
                         after_period=Period("a", ("2025-01", "2025-02")))
    a = out.set_index("area_code").loc["A"]
    assert a["rate_ratio"] == pytest.approx((40 / 2) / (10 / 1))          # per month, same residents
    assert a["ref_pct_change"] == pytest.approx(100 * ((60 / 2) / 30 - 1))
    assert a["parent_pct_change"] == pytest.approx(100 * ((100 / 2) / 40 - 1))
    assert a["ratio_of_ratios"] == pytest.approx((40 / 10) / (60 / 30))   # period lengths cancel
    # rate-ratio test with exposures population x months: binomial with p = 2/3
    central = 2 * min(sps.binomtest(40, 50, 2 / 3, alternative="less").pvalue,
                      sps.binomtest(40, 50, 2 / 3, alternative="greater").pvalue)
    assert a["rate_ratio_p"] == pytest.approx(min(1.0, central), rel=1e-6)


def test_change_zero_counts_not_estimable():
    areas = pd.DataFrame({"area_code": ["A", "B"], "area_name": ["a", "b"], "population": [1000.0, 1000.0]})
    before = pd.DataFrame({"area_code": ["A", "B"], "crime_type": "X", "is_group": False, "count": [0, 5]})
    after = pd.DataFrame({"area_code": ["A", "B"], "crime_type": "X", "is_group": False, "count": [0, 6]})
    out = O.change_table(before, after, areas, before_period=Period("b", ("1",)), after_period=Period("a", ("2",)))
    a = out.set_index("area_code").loc["A"]
    assert a["change_flag"] == "not_estimable"
    assert "zero count" in a["reason"]


def test_lsoa_change_reference_is_rest_of_csp(synthetic):
    change = synthetic["results"].change
    lsoa = change[(change["area_type"] == "lsoa") & (change["crime_type"] == "All crime")]
    for parent, sub in lsoa.groupby("parent_code"):
        total_before = sub["count_before"].sum()
        assert ((sub["ref_count_before"] + sub["count_before"]) == total_before).all()
        assert (sub["reference"] == "rest of the CSP").all()


# --------------------------------------------------------------------------- harm
def test_harm_table_by_hand():
    areas = pd.DataFrame({"area_code": ["A", "B"], "area_name": ["a", "b"], "population": [1000.0, 3000.0]})
    totals = pd.DataFrame({
        "area_code": ["A", "A", "A", "B", "B", "B"],
        "crime_type": ["Burglary", "Shoplifting", "Anti-social behaviour"] * 2,
        "is_group": False, "count": [2, 10, 50, 3, 30, 10],
    })
    weights = pd.Series({"Burglary": 350.0, "Shoplifting": 8.0, "Anti-social behaviour": np.nan})
    groups = {"All": ["Burglary", "Shoplifting", "Anti-social behaviour"]}
    out = O.harm_table(totals, areas, groups=groups, weights=weights).set_index(["area_code", "crime_type"])
    assert out.loc[("A", "Burglary"), "harm"] == 700
    assert out.loc[("A", "All"), "harm"] == 700 + 80          # ASB adds nothing
    assert math.isnan(out.loc[("A", "Anti-social behaviour"), "harm"])
    assert out.loc[("A", "All"), "harm_per_1000"] == pytest.approx(780.0)
    county = (780 + 3 * 350 + 30 * 8) / 4000 * 1000
    assert out.loc[("B", "All"), "county_harm_per_1000"] == pytest.approx(county)
    assert out.loc[("B", "All"), "harm_ratio"] == pytest.approx((1050 + 240) / 3000 * 1000 / county)
    # for one category the weight cancels: harm ratio = count ratio
    assert out.loc[("A", "Burglary"), "harm_ratio"] == pytest.approx((2 / 1000) / (5 / 4000))


def test_district_harm_columns_use_shipped_weights(synthetic):
    from hotspots.harm import load_harm_weights

    weights = load_harm_weights()
    table = synthetic["results"].district.set_index(["area_code", "crime_type"])
    code = "E22000001"
    expected = sum(table.loc[(code, t), "count"] * weights[t] for t in GROUPS["All crime"])
    assert table.loc[(code, "All crime"), "harm"] == pytest.approx(expected)
    assert table.loc[(code, "ASB"), "harm_ratio"] != table.loc[(code, "ASB"), "harm_ratio"]  # NaN


# --------------------------------------------------------------------------- concentration
def test_concentration_by_hand(synthetic):
    conc = synthetic["results"].concentration
    assert list(conc.columns) == O.CONCENTRATION_COLUMNS
    lsoa = synthetic["results"].lsoa
    for code in ["E22000002", "E23000099"]:
        row = conc[(conc["area_code"] == code) & (conc["crime_type"] == "All crime")].iloc[0]
        sub = lsoa[lsoa["crime_type"] == "All crime"]
        if code != "E23000099":
            sub = sub[sub["csp_code"] == code]
        values = np.sort(sub["count"].to_numpy())[::-1]
        n = values.size
        k5, k10 = math.ceil(0.05 * n), math.ceil(0.10 * n)
        assert row["n_lsoas"] == n and row["lsoas_top5"] == k5 and row["lsoas_top10"] == k10
        assert row["share_top10"] == pytest.approx(values[:k10].sum() / values.sum())
        # Gini by the mean-absolute-difference formula
        g = np.abs(values[:, None] - values[None, :]).sum() / (2 * n * n * values.mean())
        assert row["gini"] == pytest.approx(g)
    assert set(conc["area_type"]) == {"csp", "force"}


# --------------------------------------------------------------------------- peers
def test_peer_groups_group_format(tmp_path, synthetic):
    path = tmp_path / "msg.csv"
    path.write_text("area_code,peer_group\nE07000000,g1\nE22000001,g1\nE22000002,g1\nE22000003,g2\nE22000004,g2\n"
                    "E99999999,g2\n")
    aliases = {"E07000000": "E22000000"}
    peers = O.read_peer_groups(path, aliases=aliases)
    assert set(peers[peers["area_code"] == "E22000000"]["peer_code"]) == {"E22000001", "E22000002"}
    table = synthetic["results"].district
    out = O.peer_comparison(table, peers).set_index(["area_code", "crime_type"])
    rates = table.set_index(["area_code", "crime_type"])["rate_per_1000"]
    mean = (rates[("E22000001", "Burglary")] + rates[("E22000002", "Burglary")]) / 2
    assert out.loc[("E22000000", "Burglary"), "peer_mean_rate_per_1000"] == pytest.approx(mean)
    assert out.loc[("E22000000", "Burglary"), "ratio_to_peer_mean"] == pytest.approx(rates[("E22000000", "Burglary")] / mean)
    assert out.loc[("E22000000", "Burglary"), "peer_group"] == "g1"
    assert out.loc[("E22000003", "Burglary"), "n_peers"] == 1          # the unknown code is left out
    assert O.peer_comparison(table, peers).attrs["unmatched"] == ["E99999999"]
    assert out.loc[("E22000005", "Burglary"), "n_peers"] == 0
    assert math.isnan(out.loc[("E22000005", "Burglary"), "ratio_to_peer_mean"])


def test_peer_groups_pair_format_and_errors(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("area_code,peer_code\nA,B\nA,C\nA,A\nB,A\n")
    peers = O.read_peer_groups(path)
    assert sorted(map(tuple, peers[["area_code", "peer_code"]].to_numpy())) == [("A", "B"), ("A", "C"), ("B", "A")]
    with pytest.raises(InputFileError, match="not found"):
        O.read_peer_groups(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("code,group\nA,1\n")
    with pytest.raises(InputFileError, match="expected columns"):
        O.read_peer_groups(bad)


# --------------------------------------------------------------------------- monthly
def test_monthly_rates_keep_gaps(synthetic):
    monthly = synthetic["results"].monthly
    assert list(monthly.columns) == O.MONTHLY_COLUMNS
    calendar = sorted(monthly["month"].unique())
    assert calendar[0] == "2024-01" and calendar[-1] == "2025-04" and len(calendar) == 16
    gap = monthly[monthly["month"] == "2024-06"]
    assert (~gap["present"]).all() and gap["count"].isna().all() and gap["rate_per_1000"].isna().all()
    county = monthly[(monthly["area_code"] == "E23000099") & (monthly["month"] == "2025-01")
                     & (monthly["crime_type"] == "All crime")]["count"].iloc[0]
    counts = synthetic["csp_counts"]
    assert county == counts[(counts["month"] == "2025-01") & counts["crime_type"].isin(GROUPS["All crime"])]["count"].sum()


# --------------------------------------------------------------------------- whole analysis
def test_analysis_columns_and_shapes(synthetic):
    res = synthetic["results"]
    assert list(res.district.columns) == O.DISTRICT_COLUMNS
    assert list(res.lsoa.columns) == O.LSOA_COLUMNS
    assert list(res.change.columns) == O.CHANGE_COLUMNS
    assert len(res.district) == 6 * (len(TYPES) + len(GROUPS))
    assert len(res.lsoa) == 18 * (len(TYPES) + len(GROUPS))
    lsoa = res.lsoa
    share = lsoa.groupby(["csp_code", "crime_type"])["share_of_csp"].sum()
    np.testing.assert_allclose(share[share.notna()], 1.0)
    summary = res.summary()
    assert summary["district_cells"] == 6 * (len(TYPES) + 1)     # "ASB" repeats a category: counted once
    assert summary["district_cells_flagged_unadjusted"] >= summary["district_cells_flagged_adjusted"]


def test_results_independent_of_row_order(synthetic):
    csp_counts = synthetic["csp_counts"].sample(frac=1.0, random_state=7)
    res = O.analyse_outliers(
        csp_counts, synthetic["lsoa_counts"], synthetic["csps"], synthetic["lsoas"], synthetic["lsoa_to_csp"],
        period=synthetic["period"], groups=GROUPS, crime_types=TYPES, months_present=MONTHS)
    a = res.district.sort_values(["area_code", "crime_type"]).reset_index(drop=True)
    b = synthetic["results"].district.sort_values(["area_code", "crime_type"]).reset_index(drop=True)
    pd.testing.assert_series_equal(a["z_adjusted"], b["z_adjusted"])
    assert (a["change_flag"].isna() | (a["change_flag"] == "")).all()  # no comparison given: no change


def test_area_outliers_verb_matches_the_district_table(synthetic):
    """The notebook verb gives the CSP rows of outliers_district for the same counts and periods."""
    res = synthetic["results"]
    key = ["area_code", "crime_type"]
    district = res.district.set_index(key)
    table = O.area_outliers(synthetic["csp_counts"], synthetic["csps"], period="2025-01..2025-04",
                            groups=GROUPS, crime_types=TYPES).set_index(key)
    assert table.index.equals(district.index)
    assert "change_flag" not in table and (table["period"] == "2025-01..2025-04").all()
    level = [c for c in table.columns if c not in ("period",)]
    pd.testing.assert_frame_equal(table[level], district[level])
    # change: the verb measures the whole period against the comparison; the stage its matched months
    changed = O.area_outliers(synthetic["csp_counts"], synthetic["csps"], period=["2025-01", "2025-02"],
                              comparison=Period("2024-01..2024-02", ("2024-01", "2024-02")), groups=GROUPS,
                              crime_types=TYPES).set_index(key)
    columns = ["change_count_before", "change_count_after", "pct_change", "rest_pct_change", "pct_change_vs_rest",
               "pct_change_vs_rest_ci_lower", "pct_change_vs_rest_ci_upper", "change_q", "change_flag"]
    pd.testing.assert_frame_equal(changed[columns], district[columns])


def test_area_outliers_verb_defaults_and_validation(synthetic):
    table = O.area_outliers(synthetic["csp_counts"], synthetic["csps"])   # latest 12 months present
    assert (table["period"] == "2025-01..2025-04").all() and (table["months"] == 4).all()
    assert table["crime_type"].drop_duplicates().tolist() == TYPES
    with pytest.raises(ValidationError, match=r"^area_outliers: 2 problems: .*counts lacks column.*adjustment"):
        O.area_outliers(synthetic["csp_counts"].drop(columns="count"), synthetic["csps"], adjustment="both")
    with pytest.raises(ValidationError, match="period 2023-01..2023-03 has no months with data"):
        O.area_outliers(synthetic["csp_counts"], synthetic["csps"], period="2023-01..2023-03")
    with pytest.raises(ValidationError, match="comparison must be"):
        O.area_outliers(synthetic["csp_counts"], synthetic["csps"], comparison="last year")


# --------------------------------------------------------------------------- what the report tells (chosen by the analysis)
def _told_rows(flags, z, changes):
    """One CSP's district rows T0, T1, ... with ``changes``: {index: (change_flag, change_q)}, others in line."""
    n = len(flags)
    change = [changes.get(i, ("in_line", 0.9)) for i in range(n)]
    return pd.DataFrame({
        "area_code": "X", "crime_type": [f"T{i}" for i in range(n)], "flag": flags, "z_adjusted": z, "ratio": 1.5,
        "rate_per_1000": 3.0, "county_rate_per_1000": 2.0, "pct_change": 30.0, "rest_pct_change": 2.0,
        "pct_change_vs_rest": 27.5, "pct_change_vs_rest_ci_lower": 5.0, "pct_change_vs_rest_ci_upper": 50.0,
        "change_flag": [c[0] for c in change], "change_q": [c[1] for c in change]})


def test_stand_out_rows_order_limits_and_q_threshold():
    """Worked by hand: 99.8% before 95%, then |z_adjusted|; six level sentences; changes by q, q < 0.05 strictly."""
    flags = ["high_95", "low_998", "within", "high_998", "low_95", "high_95", "high_95", "low_95", "within",
             "within", "within", "no_records", "within"]
    z = [2.0, -3.6, 0.1, 3.2, -2.5, 2.9, 2.2, -2.05, 1.9, 0.2, -0.3, np.nan, 1.0]
    changes = {2: ("up_vs_reference", 0.049), 3: ("up_vs_reference", 0.01), 8: ("down_vs_reference", 0.05),
               9: ("up_vs_reference", 0.001), 10: ("down_vs_reference", 0.02), 11: ("up_vs_reference", 0.001),
               12: ("up_vs_reference", 0.03), 0: ("in_line", 0.001)}
    told = H.stand_out_rows(_told_rows(flags, z, changes))
    assert list(told.columns) == H.HIGHLIGHT_COLUMNS
    assert told["order"].tolist() == list(range(len(told)))
    levels = told[told["kind"] == "level"]
    assert levels["crime_type"].tolist() == ["T1", "T3", "T5", "T4", "T6", "T7", "T0"]
    assert levels["in_sentence"].tolist() == [True] * 6 + [False]
    moved = told[told["kind"] == "change"]
    # T8 (q = 0.05) is not below the threshold, T11 has no records, T3 is told as a level, T0 is in line
    assert moved["crime_type"].tolist() == ["T9", "T10", "T12", "T2"]
    assert moved["in_sentence"].tolist() == [True, True, True, False]
    assert told.set_index("crime_type")["change_notable"].to_dict() == {
        "T1": False, "T3": True, "T5": False, "T4": False, "T6": False, "T7": False, "T0": False,
        "T9": True, "T10": True, "T12": True, "T2": True}
    assert H.notable_changes(_told_rows(flags, z, changes))["crime_type"].tolist() == ["T2", "T3", "T9", "T10",
                                                                                       "T11", "T12"]
    picks = H.funnel_picks(_told_rows(flags, z, changes), headline="All crime")
    assert picks["crime_type"].tolist() == ["T1", "T3", "T5", "T4", "T6", "T7"]
    assert set(picks["reason"]) == {"outside_limits"}
    # the renderer words exactly these rows, in this order
    sentences = W.stand_out(told, name="X")
    assert len(sentences) == 6 + 1 + 3 + 1
    assert sentences[0].startswith("X’s T1 crime rate") and "T3 crime rate" in sentences[1]
    assert "a difference that stands out" in sentences[1]          # T3's change (q = 0.01) told with its level
    assert sentences[6] == "Also outside the 95% limits: T0 (see the table)."
    assert sentences[7].startswith("T9 crime rose 30%") and sentences[9].startswith("T12 crime")
    assert sentences[10] == "Also changing differently from the rest of the county: T2 (see the table)."
    # without a comparison period: no change sentences, no change clause
    assert len(W.stand_out(told, name="X", with_change=False)) == 7


def test_renderer_words_what_it_is_given():
    """Reordered or edited rows are told as given: the renderer does not re-select or re-rank."""
    told = H.stand_out_rows(_told_rows(["high_998", "high_95"], [3.5, 2.1], {}))
    reordered = told.iloc[::-1]
    assert [s.split(" crime")[0] for s in W.stand_out(reordered, name="X")] == ["X’s T1", "X’s T0"]
    assert W.stand_out(told.assign(in_sentence=False), name="X") == ["Also outside the 95% limits: T0, T1 (see the table)."]


def test_report_highlights_against_an_independent_selection(synthetic):
    res = synthetic["results"]
    shown = res.district[~res.district["crime_type"].isin(res.meta["single_type_groups"])]
    order = [t for t in res.meta["crime_types"] if t not in res.meta["single_type_groups"]]
    assert res.csp_summary["area_name"].tolist() == sorted(shown["area_name"].unique())
    for code in res.csp_summary["area_code"]:
        rows = [r for r in shown[shown["area_code"] == code].to_dict("records") if r["flag"] != "no_records"]
        rows.sort(key=lambda r: order.index(r["crime_type"]))
        flagged = [r for r in rows if r["flag"] not in ("within",)]
        flagged.sort(key=lambda r: (r["flag"] in ("high_95", "low_95"), -abs(r["z_adjusted"])))
        expected = [r["crime_type"] for r in flagged] or [r["crime_type"] for r in
                                                          sorted(rows, key=lambda r: -abs(r["z_adjusted"]))[:2]]
        mine = res.highlights[res.highlights["area_code"] == code]
        assert mine["crime_type"].tolist() == expected, code
        assert set(mine["kind"]) == ({"level"} if flagged else {"largest"})
        picks = res.funnel_picks[res.funnel_picks["area_code"] == code]["crime_type"].tolist()
        assert picks == (expected[:6] if flagged else [res.meta["headline"]])
    # busiest LSOAs: the LSOAs with most headline crime, each with its biggest category, by plain Python
    lsoa = res.lsoa
    head = lsoa[lsoa["crime_type"] == res.meta["headline"]]
    busiest = H.busiest_lsoas(lsoa, crime_type=res.meta["headline"], top=2)
    for code in res.csp_summary["area_code"]:
        mine = head[head["csp_code"] == code]
        top = sorted(zip(mine["count"], mine["area_code"]), key=lambda t: (-t[0], t[1]))[:2]
        got = busiest[busiest["csp_code"] == code]
        assert got["area_code"].tolist() == [c for _, c in top]
        assert got["order"].tolist() == [0, 1]
        for record in got.to_dict("records"):
            cats = lsoa[(lsoa["area_code"] == record["area_code"]) & ~lsoa["is_group"]]
            best = min(zip(cats["count"], cats["crime_type"]), key=lambda t: (-t[0], t[1]))
            assert (record["biggest_type"], record["biggest_count"]) == (best[1], best[0])
    assert len(res.busiest_lsoas) == min(3, H.TOP_LSOAS) * 6
    # LSOAs above the 99.8% limit per CSP: plant two and count them back
    planted = lsoa.copy()
    rows = planted.index[(planted["crime_type"] == "All crime") & (planted["csp_code"] == "E22000002")][:2]
    planted.loc[rows, "flag"] = "high_998"
    summary = H.csp_summary(shown, planted, crime_type="All crime").set_index("area_code")
    assert summary.loc["E22000002", "lsoas_high_998"] == 2
    assert summary.loc["E22000002", "n_lsoas"] == 3
    before = H.csp_summary(shown, lsoa, crime_type="All crime").set_index("area_code")
    assert summary.drop("E22000002")["lsoas_high_998"].equals(before.drop("E22000002")["lsoas_high_998"])


# --------------------------------------------------------------------------- wording
def test_wording_helpers():
    assert R.months_label(["2025-01", "2025-02", "2025-03", "2025-04"]) == "Jan–Apr 2025"
    assert R.months_label(["2024-01", "2024-03"]) == "2 months, Jan–Mar 2024"
    assert R.month_ranges(["2022-02", "2022-03", "2022-04", "2024-05"]) == "2022-02..2022-04, 2024-05"
    assert W.possessive("St Albans") == "St Albans’" and W.possessive("Watford") == "Watford’s"
    assert W.relative_to_county(2.36) == "2.4 times the county rate"
    assert W.relative_to_county(0.8) == "20% below the county rate"


def test_level_sentence_like_the_brief():
    row = {"crime_type": "Shoplifting", "ratio": 2.4, "rate_per_1000": 17.5, "county_rate_per_1000": 7.3,
           "flag": "high_998", "pct_change": 18.0, "rest_pct_change": 6.0, "change_flag": "up_vs_reference",
           "change_q": 0.01}
    row["change_notable"] = bool(H.change_notable(pd.DataFrame([row])).iloc[0])   # decided by the analysis
    text = W.level_sentence(row, name="Watford")
    assert text.startswith("Watford’s shoplifting rate is 2.4 times the county rate")
    assert "above the 99.8% limit even allowing for overdispersion" in text
    assert "it rose 18% against a rise of 6% in the rest of the county, a difference that stands out" in text
    # without a comparison period there is no change clause
    assert W.level_sentence(row, name="St Albans", with_change=False).endswith("allowing for overdispersion.")
    row_same = {**row, "pct_change": 0.2, "rest_pct_change": -0.1, "change_flag": "in_line"}
    assert "it was unchanged, as in the rest of the county" in W.level_sentence(row_same, name="Watford")
    # a flagged change the analysis did not find notable (q too large) is told as possibly chance
    row_chance = {**row, "change_q": 0.2}
    row_chance["change_notable"] = bool(H.change_notable(pd.DataFrame([row_chance])).iloc[0])
    assert not row_chance["change_notable"]
    assert "a difference that could be chance given how many comparisons" in W.level_sentence(row_chance, name="W")


def test_stand_out_wording_is_a_prompt_not_a_verdict(synthetic):
    res = synthetic["results"]
    verdicts = re.compile(r"\b(problem|failing|worst|bad|poor|crisis|alarming)\b", re.I)
    for code, rows in res.district.groupby("area_code"):
        sentences = W.stand_out(H.stand_out_rows(rows), name=rows["area_name"].iloc[0])
        assert sentences
        for s in sentences:
            assert not verdicts.search(s), s


def test_nothing_flagged_sentence():
    rows = pd.DataFrame({"crime_type": ["Burglary", "Robbery"], "ratio": [1.1, 0.7], "z_adjusted": [0.5, -1.2],
                         "flag": ["within", "within"], "change_flag": ["in_line", "in_line"], "change_q": [0.5, 0.6],
                         "rate_per_1000": [1, 1], "county_rate_per_1000": [1, 1]})
    told = H.stand_out_rows(rows)
    assert told["kind"].tolist() == ["largest", "largest"] and told["crime_type"].tolist() == ["Robbery", "Burglary"]
    text = W.stand_out(told, name="Alpha")
    assert text[0].startswith("Nothing in Alpha is outside the 95% limits")
    assert "robbery (30% below the county rate)" in text[0]


# --------------------------------------------------------------------------- rendering
@pytest.fixture(scope="module")
def payload_html(synthetic, tmp_path_factory):
    """The synthetic report with an area named like an XSS payload (rendered once for several tests).

    Three of the analysis's choices are edited too (:func:`test_report_shows_the_analysis_choices`): Delta's
    rows to tell reversed, Foxtrot's funnel plot switched to robbery, Echo's ASB change marked as notable.
    """
    import copy

    res = copy.deepcopy(synthetic["results"])
    for frame in (res.district, res.lsoa, res.areas):
        frame.loc[frame["area_name"] == "Alpha", "area_name"] = PAYLOAD
    res.lsoa["csp_name"] = res.lsoa["csp_name"].replace("Alpha", PAYLOAD)
    res.meta["peers_unmatched"] = [PAYLOAD]
    told = res.highlights
    delta = told["area_code"] == "E22000003"
    res.highlights = pd.concat([told[~delta], told[delta].iloc[::-1]], ignore_index=True)
    picks = res.funnel_picks
    res.funnel_picks = pd.concat([picks[picks["area_code"] != "E22000005"],
                                  pd.DataFrame([{"area_code": "E22000005", "order": 0, "crime_type": "Robbery",
                                                 "reason": "outside_limits"}])], ignore_index=True)
    res.notable_changes = pd.concat([res.notable_changes, pd.DataFrame([{
        "area_code": "E22000004", "crime_type": "Anti-social behaviour", "change_flag": "down_vs_reference",
        "change_q": 0.4}])], ignore_index=True)
    html = R.render_report(res)
    path = tmp_path_factory.mktemp("payload") / "report.html"
    path.write_text(html, encoding="utf-8")
    return html, path


def test_report_is_self_contained_and_escapes(payload_html):
    html, _ = payload_html
    assert PAYLOAD not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert html.count('class="csp"') == 6
    assert "@media print" in html and "break-before: page" in html


def _section(html: str, code: str) -> str:
    start = html.index(f'id="csp-{code}"')
    return html[start:html.index("</section>", start)]


def test_report_shows_the_analysis_choices(payload_html, synthetic):
    """The report follows the (edited) choices in the results; it selects and thresholds nothing itself."""
    html, _ = payload_html
    delta = _section(html, "E22000003")
    told = synthetic["results"].highlights
    types = told.loc[told["area_code"] == "E22000003", "crime_type"].tolist()
    assert len(types) >= 2
    firsts = [delta.index(f"Delta’s {W.rate_subject(t)} rate") for t in types]
    assert firsts == sorted(firsts, reverse=True)                  # told in the given (reversed) order
    foxtrot = _section(html, "E22000005")
    assert "Nothing stands out, so the" not in foxtrot and 'alt="Funnel plot of Robbery rates' in foxtrot
    echo = _section(html, "E22000004")
    assert echo.count("stands-out") == 1 and "▼" in echo.split("stands-out")[1][:40]
    bravo = _section(html, "E22000001")
    assert "stands-out" not in bravo and "Nothing stands out, so the all crime funnel" in bravo


def test_report_sections_and_charts(payload_html):
    html, _ = payload_html
    for name in ["Bravo", "Charlie", "Delta", "Echo", "Foxtrot"]:
        assert f"<h2>{name}</h2>" in html
    assert html.count("data:image/svg+xml;base64,") >= 6 * 2 + 1   # funnel + trend per CSP, the map
    assert "What stands out" in html and "Method notes" in html
    assert "Alpha Town town centre draws" in html


@pytest.mark.browser
def test_payload_renders_as_text_in_chromium(payload_html):
    from _browser import open_page

    _, path = payload_html
    with open_page(path) as (page, events):
        assert events["dialogs"] == []
        assert events["page_errors"] == []
        assert events["blocked_requests"] == []
        heading = page.locator("section.csp h2").first
        assert heading.inner_text() == PAYLOAD                 # shown as text, not an element
        assert page.locator("img[src='x']").count() == 0
        assert PAYLOAD in page.locator("#matrix").inner_text()
        page.wait_for_timeout(200)
        assert events["dialogs"] == []


def test_report_without_comparison_and_with_peers(synthetic, tmp_path):
    path = tmp_path / "msg.csv"
    path.write_text("area_code,peer_group\nE22000000,g\nE22000001,g\nE22000002,g\n")
    res = O.analyse_outliers(
        synthetic["csp_counts"], synthetic["lsoa_counts"], synthetic["csps"], synthetic["lsoas"],
        synthetic["lsoa_to_csp"], period=synthetic["period"], groups=GROUPS, crime_types=TYPES,
        months_present=MONTHS, peers=O.read_peer_groups(path))
    assert res.change.empty and res.meta["change_after"] is None
    html = R.render_report(res)
    assert "rest of county" not in html and "× peer mean" in html
    assert "Against its peer group (g)" in html
    assert html.count('class="csp"') == 6


def test_cli_help_and_stage_registered():
    from click.testing import CliRunner

    from hotspots.cli import cli
    from hotspots.stages import STAGES

    assert "outliers" in STAGES
    result = CliRunner().invoke(cli, ["report", "outliers", "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and "hotspots --out out report outliers" in result.output
