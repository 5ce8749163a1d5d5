"""Tests for hotspots.stats: each statistic against an independent reference.

References: hand computations (closed forms written out here), scipy,
statsmodels, and esda/libpysal (imported here only; the package never imports
them).  No real data, no network.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as sst

from hotspots.detect.gistar import GI_CLASSES_TWO_SIDED
from hotspots.fdr import _FDR_LOOKUP_MAX_DISTINCT
from hotspots import fdr as fdr_module
from hotspots.detect import moran as moran_module
from hotspots.concentration import _gini_of_integer_counts
from hotspots._errors import ValidationError
from hotspots.outliers.dispersion import overdispersion
from hotspots.outliers.funnel import exact_poisson_interval, funnel_limits, funnel_outliers, poisson_z
from hotspots.outliers.change import change_vs_reference, rate_ratio_test
from hotspots.concentration import concentration, gini, gini_poisson_adjusted
from hotspots.fdr import fdr_bh
from hotspots.detect.gistar import gi_star
from hotspots.detect.moran import local_moran
from hotspots.detect.trend import mann_kendall

Z975 = 1.959963984540054  # standard normal 97.5% point


def queen_lattice(rows: int, cols: int | None = None, *, self_weight: bool = True) -> sp.csr_matrix:
    """Queen contiguity on a rows x cols grid (row-major), optionally with self."""
    cols = rows if cols is None else cols
    band_r = sp.diags([1.0, 1.0, 1.0], [-1, 0, 1], shape=(rows, rows))
    band_c = sp.diags([1.0, 1.0, 1.0], [-1, 0, 1], shape=(cols, cols))
    w = sp.kron(band_r, band_c, format="csr")
    if not self_weight:
        w = (w - sp.identity(rows * cols, format="csr")).tocsr()
        w.eliminate_zeros()
    return w


def permute_weights(w: sp.csr_matrix, order: np.ndarray) -> sp.csr_matrix:
    """Weights for values[order]: rows and columns reordered together."""
    return w[order][:, order].tocsr()


# =============================================================================
# Poisson building blocks
# =============================================================================


def test_poisson_z_formula_and_nan_where_expected_not_positive():
    z = poisson_z([12, 5, 3, 4], [9.0, 5.0, 0.0, -1.0])
    np.testing.assert_allclose(z[:2], [1.0, 0.0])
    assert np.isnan(z[2]) and np.isnan(z[3])


def test_poisson_z_rejects_negative_counts():
    with pytest.raises(ValidationError, match="observed") as info:
        poisson_z([-1, 2], [1.0, 1.0])
    assert info.value.hint


def test_exact_poisson_interval_hand_values():
    # chi-squared with 2 df is exponential with mean 2, so for k = 0 and k = 1
    # the Garwood limits have closed forms: upper(0) = -ln(a/2), lower(1) = -ln(1 - a/2).
    lower, upper = exact_poisson_interval([0, 1, 10], level=0.95)
    assert lower[0] == 0.0
    assert upper[0] == pytest.approx(-math.log(0.025), rel=1e-12)
    assert lower[1] == pytest.approx(-math.log(0.975), rel=1e-12)
    # published Garwood interval for 10 events: 4.7954 to 18.3904
    assert lower[2] == pytest.approx(4.795389, abs=1e-6)
    assert upper[2] == pytest.approx(18.390356, abs=1e-6)


def test_exact_poisson_interval_scalar_nan_and_validation():
    lower, upper = exact_poisson_interval(3, 0.9)
    assert np.ndim(lower) == 0 and float(lower) < 3 < float(upper)
    lower, upper = exact_poisson_interval([np.nan])
    assert np.isnan(lower[0]) and np.isnan(upper[0])
    with pytest.raises(ValidationError) as info:
        exact_poisson_interval([1.5, -2], level=95)
    message = str(info.value)
    assert "count" in message and "level" in message and "3 problems" in message


# =============================================================================
# Overdispersion and funnel limits
# =============================================================================


def test_overdispersion_hand_example():
    z = [-3, -1, 0, 1, 2, 4, 0.5, -0.5, 1.5, -2]
    # 10th/90th percentiles (linear interpolation): -3 + 0.9 * 1 = -2.1 and 2 + 0.1 * 2 = 2.2
    winsorised = [-2.1, -1, 0, 1, 2, 2.2, 0.5, -0.5, 1.5, -2]
    phi = sum(v * v for v in winsorised) / 10  # = 22 / 10
    od = overdispersion(z, se=[0.1] * 10)
    assert od.z_lower == pytest.approx(-2.1) and od.z_upper == pytest.approx(2.2)
    assert od.phi == pytest.approx(phi) and od.phi == pytest.approx(2.2)
    assert od.n == 10 and od.df == 9
    assert od.statistic == pytest.approx(22.0)
    assert od.p_value == pytest.approx(sst.chi2.sf(22.0, 9))
    assert od.overdispersed is True  # 22 > chi2(9) 95% point 16.92
    # w = 1/0.1^2 = 100 each: sum w = 1000, sum w^2 / sum w = 100 -> tau2 = (22 - 9) / 900
    assert od.tau2 == pytest.approx(13 / 900)
    assert od.to_dict()["phi"] == pytest.approx(2.2)


def test_overdispersion_skips_nan_and_needs_two_units():
    od = overdispersion([1.0, np.nan, -1.0, 0.5], winsor=0.0)
    assert od.n == 3 and od.phi == pytest.approx((1 + 1 + 0.25) / 3)
    assert math.isnan(od.tau2)
    assert od.overdispersed is False
    with pytest.raises(ValidationError, match="at least 2"):
        overdispersion([1.0, np.nan])
    with pytest.raises(ValidationError, match="winsor"):
        overdispersion([1.0, 2.0, 3.0], winsor=0.6)


def _poisson_cdf_by_hand(r: int, mean: float) -> float:
    return sum(math.exp(-mean) * mean**k / math.factorial(k) for k in range(r + 1))


def test_funnel_limits_exact_hand_example():
    # Spiegelhalter's interpolated quantile for Poisson(10), p = 0.025:
    # F(3) = 0.0103 < 0.025 <= F(4) = 0.0293, so r = 4 and
    # alpha = (F(4) - 0.025) / (F(4) - F(3)); limit = (4 - alpha) / 10.
    f3, f4 = _poisson_cdf_by_hand(3, 10), _poisson_cdf_by_hand(4, 10)
    lower = (4 - (f4 - 0.025) / (f4 - f3)) / 10
    # upper: F(16) < 0.975 <= F(17)
    f16, f17 = _poisson_cdf_by_hand(16, 10), _poisson_cdf_by_hand(17, 10)
    assert f16 < 0.975 <= f17
    upper = (17 - (f17 - 0.975) / (f17 - f16)) / 10
    df = funnel_limits([10.0], levels=(0.95,))
    assert list(df.columns) == ["expected", "lower_95", "upper_95"]
    assert df["lower_95"].iloc[0] == pytest.approx(lower, rel=1e-10)
    assert df["upper_95"].iloc[0] == pytest.approx(upper, rel=1e-10)


def test_funnel_limits_normal_and_adjustments_hand_values():
    base = funnel_limits([100.0], levels=(0.95,), method="normal")
    assert base["lower_95"].iloc[0] == pytest.approx(1 - Z975 * 0.1)
    assert base["upper_95"].iloc[0] == pytest.approx(1 + Z975 * 0.1)
    mult = funnel_limits([100.0], levels=(0.95,), method="normal", adjustment="multiplicative", phi=4.0)
    assert mult["upper_95"].iloc[0] == pytest.approx(1 + 2 * Z975 * 0.1)
    add = funnel_limits([100.0], levels=(0.95,), method="normal", adjustment="additive", tau2=0.03)
    assert add["upper_95"].iloc[0] == pytest.approx(1 + Z975 * math.sqrt(0.01 + 0.03))
    assert add["lower_95"].iloc[0] == pytest.approx(1 - Z975 * math.sqrt(0.01 + 0.03))
    # target != 1: limits around the target, variance target / E
    tgt = funnel_limits([100.0], levels=(0.95,), method="normal", target=2.0)
    assert tgt["upper_95"].iloc[0] == pytest.approx(2 + Z975 * math.sqrt(2 / 100))


def test_funnel_limits_default_columns_floor_and_convergence():
    df = funnel_limits(pd.Series([0.5, 10.0, 1e6, 0.0], index=list("abcd")))
    assert list(df.columns) == ["expected", "lower_95", "upper_95", "lower_998", "upper_998"]
    assert list(df.index) == list("abcd")
    assert (df["lower_998"].iloc[:3] >= 0).all() and df["lower_998"].iloc[0] == 0.0
    assert df.iloc[3, 1:].isna().all()  # E = 0: no limits
    normal = funnel_limits([1e6], method="normal")
    np.testing.assert_allclose(df.iloc[2, 1:].to_numpy(float), normal.iloc[0, 1:].to_numpy(float), rtol=1e-4)
    assert (df["upper_998"] >= df["upper_95"]).iloc[:3].all()


def test_funnel_limits_rejects_ignored_overdispersion_arguments():
    with pytest.raises(ValidationError, match="adjustment='multiplicative'"):
        funnel_limits([10.0], phi=2.0)
    with pytest.raises(ValidationError) as info:
        funnel_limits([10.0], method="wald", levels=(0.95, 1.5))
    assert "method" in str(info.value) and "levels" in str(info.value)


# =============================================================================
# Area outliers
# =============================================================================


def ten_districts(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """10 districts with 80k-150k residents whose true rates differ by ~15%."""
    rng = np.random.default_rng(seed)
    population = rng.integers(80_000, 150_000, size=10).astype(float)
    true_rate = 0.06 * np.exp(rng.normal(0, 0.15, size=10))
    return rng.poisson(true_rate * population).astype(float), population


def test_area_outliers_ten_big_districts_adjustment_fixes_flags():
    observed, population = ten_districts()
    df = funnel_outliers(observed, population, names=[f"D{i}" for i in range(10)])
    flagged_unadjusted = (df["flag_unadjusted"] != "within").sum()
    flagged = (df["flag"] != "within").sum()
    assert flagged_unadjusted >= 8, df[["ratio", "flag_unadjusted"]]
    assert flagged <= 2, df[["ratio", "flag"]]
    od = df.attrs["overdispersion"]
    assert od["overdispersed"] and od["applied"] and od["adjustment"] == "multiplicative"
    assert od["phi"] > 10
    additive = funnel_outliers(observed, population, adjustment="additive")
    assert (additive["flag"] != "within").sum() <= 2
    assert additive.attrs["overdispersion"]["tau2"] > 0
    off = funnel_outliers(observed, population, adjust_overdispersion=False)
    assert (off["flag"] == off["flag_unadjusted"]).all()
    assert off.attrs["overdispersion"]["applied"] is False


def test_area_outliers_columns_and_values():
    observed = np.array([30.0, 10.0, 25.0, 15.0])
    population = np.array([10_000.0, 5_000.0, 8_000.0, 7_000.0])
    df = funnel_outliers(observed, population, names=list("ABCD"))
    expected_columns = [
        "area", "observed", "population", "rate_per_1000", "expected", "ratio", "z", "p", "z_adjusted",
        "lower_95", "upper_95", "lower_998", "upper_998",
        "lower_95_adjusted", "upper_95_adjusted", "lower_998_adjusted", "upper_998_adjusted",
        "flag_unadjusted", "flag",
    ]
    assert list(df.columns) == expected_columns
    rate = observed.sum() / population.sum()
    np.testing.assert_allclose(df["expected"], rate * population)
    np.testing.assert_allclose(df["rate_per_1000"], 1000 * observed / population)
    np.testing.assert_allclose(df["z"], (observed - rate * population) / np.sqrt(rate * population))
    # mid-p by hand for area A
    e = rate * population[0]
    mid_upper = sst.poisson.sf(30, e) + 0.5 * sst.poisson.pmf(30, e)
    mid_lower = sst.poisson.cdf(29, e) + 0.5 * sst.poisson.pmf(30, e)
    assert df["p"].iloc[0] == pytest.approx(min(1, 2 * min(mid_upper, mid_lower)))
    assert list(df["flag"].cat.categories) == ["high_998", "high_95", "within", "low_95", "low_998"]
    assert df.attrs["reference_rate_per_1000"] == pytest.approx(1000 * rate)
    given_rate = funnel_outliers(observed, population, reference_rate=0.002)
    np.testing.assert_allclose(given_rate["expected"], 0.002 * population)
    assert given_rate.attrs["reference_rate_source"] == "given"


def test_area_outliers_flags_against_limits_small_counts():
    # Not overdispersed: adjusted == unadjusted, and a clear excess is flagged.
    df = funnel_outliers([2, 3, 40, 2, 3], [1000, 1000, 1000, 1000, 1000], adjust_overdispersion=False)
    assert df["flag"].iloc[2] == "high_998"
    assert df["observed"].iloc[2] > df["expected"].iloc[2] * df["upper_998"].iloc[2]


def test_area_outliers_validation_lists_every_problem():
    with pytest.raises(ValidationError) as info:
        funnel_outliers([5, -1, 2.5], [100, 0, 50], names=["a", "b", "c"])
    message = str(info.value)
    assert "observed" in message and "population" in message and "problems" in message
    with pytest.raises(ValidationError, match="zero in every area"):
        funnel_outliers([0, 0], [10, 10])
    with pytest.raises(ValidationError, match="adjustment"):
        funnel_outliers([1, 2], [10, 10], adjustment="both")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 5000), st.integers(1_000, 200_000)), min_size=3, max_size=12),
       st.randoms(use_true_random=False))
def test_area_outliers_invariant_to_row_order(rows, rnd):
    observed = np.array([r[0] for r in rows], dtype=float)
    population = np.array([r[1] for r in rows], dtype=float)
    if observed.sum() == 0:
        observed[0] = 1
    order = list(range(len(rows)))
    rnd.shuffle(order)
    names = [f"area{i}" for i in range(len(rows))]
    a = funnel_outliers(observed, population, names=names)
    b = funnel_outliers(observed[order], population[order], names=[names[i] for i in order]).loc[names]
    numeric = a.select_dtypes("number").columns
    np.testing.assert_allclose(a[numeric].to_numpy(float), b[numeric].to_numpy(float), rtol=1e-9, equal_nan=True)
    assert (a["flag"].astype(str) == b["flag"].astype(str)).all()
    assert ((a["p"] >= 0) & (a["p"] <= 1)).all()


# =============================================================================
# Rate ratio and change against a reference
# =============================================================================


def _central_binom_p(k, n, p):
    return min(1.0, 2 * min(sst.binomtest(k, n, p, alternative="less").pvalue,
                            sst.binomtest(k, n, p, alternative="greater").pvalue))


def test_rate_ratio_hand_example_and_scipy_p():
    df = rate_ratio_test(30, 1000, 20, 2000)
    row = df.iloc[0]
    assert row["rate_ratio"] == pytest.approx(3.0)
    assert row["se_log"] == pytest.approx(math.sqrt(1 / 30 + 1 / 20))
    # Clopper-Pearson for pi = a / (a + b) (scipy), mapped to RR = pi / (1 - pi) * e_b / e_a
    ci = sst.binomtest(30, 50).proportion_ci(0.95, method="exact")
    assert row["ci_lower"] == pytest.approx(ci.low / (1 - ci.low) * 2, rel=1e-9)
    assert row["ci_upper"] == pytest.approx(ci.high / (1 - ci.high) * 2, rel=1e-9)
    assert row["p"] == pytest.approx(_central_binom_p(30, 50, 1 / 3), rel=1e-12)
    assert row["reason"] == ""


def test_rate_ratio_vectorised_p_matches_scipy_binomtest_and_interval_matches_p():
    rng = np.random.default_rng(3)
    a = np.concatenate([rng.integers(0, 60, 150), [0, 0, 7, 1, 500, 3]])
    b = np.concatenate([rng.integers(0, 60, 150), [5, 1, 0, 1, 430, 3]])
    ea = np.concatenate([rng.uniform(0.5, 3, 150), [1, 1, 1, 1, 1.3, 1]])
    eb = np.concatenate([rng.uniform(0.5, 3, 150), [1, 1, 1, 1, 1.0, 3]])
    df = rate_ratio_test(a, ea, b, eb)
    for i in range(a.size):
        if a[i] + b[i] == 0:
            assert math.isnan(df["p"].iloc[i])
            continue
        reference = _central_binom_p(int(a[i]), int(a[i] + b[i]), ea[i] / (ea[i] + eb[i]))
        assert df["p"].iloc[i] == pytest.approx(reference, rel=1e-9, abs=1e-15), i
    # the interval inverts the test: it excludes 1 exactly when p < 0.05
    has = df["p"].notna()
    excludes = (df["ci_lower"] > 1) | (df["ci_upper"] < 1)
    assert (excludes[has] == (df["p"][has] < 0.05)).all()
    assert excludes.sum() > 10 and (~excludes[has]).sum() > 10


def test_rate_ratio_zero_counts_give_reasons():
    df = rate_ratio_test([0, 4, 0], [1, 1, 1], [5, 0, 0], [1, 1, 1])
    assert df["rate_ratio"].iloc[0] == 0 and np.isinf(df["rate_ratio"].iloc[1])
    assert df["ci_lower"].iloc[0] == 0 and np.isinf(df["ci_upper"].iloc[1])
    pi_high = 1 - 0.025 ** (1 / 5)                       # Clopper-Pearson upper limit for 0 of 5
    assert df["ci_upper"].iloc[0] == pytest.approx(pi_high / (1 - pi_high), rel=1e-9)
    assert df["p"].iloc[0] == pytest.approx(_central_binom_p(0, 5, 0.5))
    assert "0" in df["reason"].iloc[0] and df["reason"].iloc[2] == "no events in either group"
    assert math.isnan(df["rate_ratio"].iloc[2]) and math.isnan(df["p"].iloc[2])
    with pytest.raises(ValidationError, match="exposure_b"):
        rate_ratio_test(1, 1, 1, 0)


def test_change_vs_reference_hand_example():
    df = change_vs_reference([100, 100], [150, 0], [1000, 1000], [1200, 1200])
    row = df.iloc[0]
    assert row["area_change"] == pytest.approx(1.5) and row["reference_change"] == pytest.approx(1.2)
    assert row["ratio_of_ratios"] == pytest.approx(1.25)
    assert row["pct_change_vs_reference"] == pytest.approx(25.0)
    se = math.sqrt(1 / 100 + 1 / 150 + 1 / 1000 + 1 / 1200)
    assert row["se_log"] == pytest.approx(se)
    z = math.log(1.25) / se
    assert row["z"] == pytest.approx(z)
    assert row["p"] == pytest.approx(2 * sst.norm.sf(z))
    assert row["ci_lower"] == pytest.approx(1.25 * math.exp(-Z975 * se))
    assert row["pct_ci_upper"] == pytest.approx(100 * (1.25 * math.exp(Z975 * se) - 1))
    zero = df.iloc[1]
    assert math.isnan(zero["ratio_of_ratios"]) and math.isnan(zero["p"])
    assert "area_after" in zero["reason"]


# =============================================================================
# Benjamini-Hochberg
# =============================================================================


@pytest.mark.parametrize("lookup_limit", [_FDR_LOOKUP_MAX_DISTINCT, 0])
def test_fdr_bh_equals_statsmodels(lookup_limit, monkeypatch):
    from statsmodels.stats.multitest import multipletests

    monkeypatch.setattr(fdr_module, "_FDR_LOOKUP_MAX_DISTINCT", lookup_limit)  # lookup and argsort paths
    rng = np.random.default_rng(11)
    continuous = np.concatenate([rng.random(500) ** 3, [0.0, 1.0, 0.5, 0.5, 0.5]])
    heavily_tied = np.concatenate([np.round(rng.random(3000), 2), np.ones(500)])  # like Gi* on counts
    for p in (continuous, heavily_tied):
        np.testing.assert_array_equal(fdr_bh(p), multipletests(p, method="fdr_bh")[1])
        with_nan = p.copy()
        with_nan[[3, 50, 400]] = np.nan
        q = fdr_bh(with_nan)
        finite = ~np.isnan(with_nan)
        np.testing.assert_array_equal(q[finite], multipletests(with_nan[finite], method="fdr_bh")[1])
        assert np.isnan(q[~finite]).all()
    assert fdr_bh(np.array([[0.01, 0.02], [0.03, 0.04]])).shape == (2, 2)
    with pytest.raises(ValidationError, match="p must lie in"):
        fdr_bh([0.5, 1.96])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.floats(0, 1), st.just(float("nan"))), min_size=1, max_size=60))
def test_fdr_bh_properties(p):
    p = np.array(p)
    q = fdr_bh(p)
    finite = ~np.isnan(p)
    assert np.array_equal(np.isnan(q), ~finite)
    assert ((q[finite] >= 0) & (q[finite] <= 1)).all()
    assert (q[finite] >= p[finite] - 1e-15).all()
    # monotone: a smaller p never gets a larger q
    order = np.argsort(p[finite], kind="stable")
    assert (np.diff(q[finite][order]) >= -1e-15).all()


# =============================================================================
# Gi*
# =============================================================================


@pytest.fixture(scope="module")
def lattice20():
    libpysal = pytest.importorskip("libpysal")
    return libpysal.weights.lat2W(20, 20, rook=False)


def test_gi_star_equals_esda_g_local_star(lattice20):
    esda = pytest.importorskip("esda")
    rng = np.random.default_rng(5)
    y = rng.poisson(3.0, 400).astype(float)
    y[45:48] += 12  # a small hot patch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = esda.G_Local(y, lattice20, transform="B", star=True, permutations=0)
    # esda's star=True with binary weights puts 1 on the diagonal
    np.testing.assert_array_equal(reference.w.sparse.diagonal(), np.ones(400))
    w_no_self = lattice20.sparse.tocsr().astype(float)
    ours = gi_star(y, w_no_self + sp.identity(400, format="csr"))
    np.testing.assert_allclose(ours["gi_z"], reference.Zs, rtol=0, atol=1e-6)
    via_flag = gi_star(y, w_no_self, include_self=True)
    np.testing.assert_allclose(via_flag["gi_z"], reference.Zs, rtol=0, atol=1e-6)
    # where the normal approximation is used, p is esda's normal p; test="normal" uses it everywhere
    normal = (ours["gi_test"] == "normal").to_numpy()
    assert normal.sum() > 100
    np.testing.assert_allclose(ours["gi_p"][normal], 2 * sst.norm.sf(np.abs(reference.Zs))[normal], atol=1e-12)
    everywhere = gi_star(y, w_no_self, include_self=True, test="normal")
    np.testing.assert_allclose(everywhere["gi_p"], 2 * sst.norm.sf(np.abs(reference.Zs)), atol=1e-12)
    assert (everywhere["gi_test"] == "normal").all()
    # elsewhere the exact binomial p is the larger one
    assert (ours["gi_p"] >= everywhere["gi_p"] - 1e-15).all()


def test_gi_star_rook_lattice_matches_esda():
    libpysal = pytest.importorskip("libpysal")
    esda = pytest.importorskip("esda")
    w = libpysal.weights.lat2W(12, 9, rook=True)
    y = np.random.default_rng(8).gamma(2.0, 3.0, 108)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = esda.G_Local(y, w, transform="B", star=True, permutations=0)
    ours = gi_star(y, w.sparse, include_self=True)
    np.testing.assert_allclose(ours["gi_z"], reference.Zs, atol=1e-6)


def test_gi_star_general_weights_match_direct_formula():
    rng = np.random.default_rng(2)
    n = 30
    dense = rng.random((n, n)) * (rng.random((n, n)) < 0.2)
    np.fill_diagonal(dense, rng.uniform(0.5, 2.0, n))
    x = rng.poisson(4, n).astype(float)
    xbar = x.mean()
    s = math.sqrt((x**2).sum() / n - xbar**2)
    w_sum = dense.sum(1)
    w_sq = (dense**2).sum(1)
    expected = (dense @ x - xbar * w_sum) / (s * np.sqrt((n * w_sq - w_sum**2) / (n - 1)))
    ours = gi_star(x, sp.csr_matrix(dense))
    np.testing.assert_allclose(ours["gi_z"], expected, rtol=1e-10)
    # include_self=True replaces the diagonal by 1
    dense_one = dense.copy()
    np.fill_diagonal(dense_one, 1.0)
    w_sum, w_sq = dense_one.sum(1), (dense_one**2).sum(1)
    expected_one = (dense_one @ x - xbar * w_sum) / (s * np.sqrt((n * w_sq - w_sum**2) / (n - 1)))
    np.testing.assert_allclose(gi_star(x, sp.csr_matrix(dense), include_self=True)["gi_z"], expected_one,
                               rtol=1e-10)


def test_gi_star_degenerate_cases_do_not_divide_by_zero():
    w = queen_lattice(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from 0/0
        constant = gi_star(np.full(16, 3.0), w)
        assert (constant["gi_z"] == 0).all() and (constant["gi_p"] == 1).all()
        assert (constant["gi_class"] == "not_significant").all()
        everyone = sp.csr_matrix(np.ones((5, 5)))  # every cell's neighbourhood is the whole area
        full = gi_star(np.array([1.0, 5.0, 2.0, 8.0, 0.0]), everyone)
        assert (full["gi_z"] == 0).all() and (full["gi_p"] == 1).all()


def test_gi_star_requires_self_weights_unless_asked():
    w = queen_lattice(5, self_weight=False)
    x = np.arange(25.0)
    with pytest.raises(ValidationError, match="include_self=True"):
        gi_star(x, w)
    with pytest.raises(ValidationError) as info:
        gi_star(np.array([1.0, np.nan, 2.0]), np.eye(3), alternative="both")
    message = str(info.value)
    assert "values" in message and "alternative" in message and "weights" in message
    with pytest.raises(ValidationError, match="n x n"):
        gi_star(x, queen_lattice(4))


def test_gi_star_alternatives_correction_and_classes():
    w = queen_lattice(10)
    rng = np.random.default_rng(4)
    x = rng.poisson(2, 100).astype(float)
    x[[44, 45, 54, 55]] = 15
    x[[0, 1, 10, 11]] = 0
    two = gi_star(x, w, correction=None, test="normal")
    np.testing.assert_array_equal(two["gi_q"], two["gi_p"])
    greater = gi_star(x, w, alternative="greater", correction=None, test="normal")
    less = gi_star(x, w, alternative="less", correction=None, test="normal")
    np.testing.assert_allclose(greater["gi_p"], sst.norm.sf(two["gi_z"]))
    np.testing.assert_allclose(less["gi_p"], sst.norm.cdf(two["gi_z"]))
    assert not greater["gi_class"].astype(str).str.startswith("cold").any()
    assert not less["gi_class"].astype(str).str.startswith("hot").any()
    corrected = gi_star(x, w)
    np.testing.assert_allclose(corrected["gi_q"], fdr_bh(corrected["gi_p"].to_numpy()))
    assert list(corrected["gi_class"].cat.categories) == list(GI_CLASSES_TWO_SIDED)
    # class rule: strictest alpha the q-value is at or below, sign from z
    q, z = corrected["gi_q"].to_numpy(), corrected["gi_z"].to_numpy()
    expected = np.where(q <= 0.01, "99", np.where(q <= 0.05, "95", np.where(q <= 0.10, "90", "")))
    labels = np.where(expected == "", "not_significant", np.where(z > 0, "hot_", "cold_") + expected)
    np.testing.assert_array_equal(corrected["gi_class"].astype(str).to_numpy(), labels)
    assert corrected.loc[44, "gi_class"] == "hot_99"


def test_gi_star_recovers_planted_hot_clusters():
    rows = cols = 40
    rng = np.random.default_rng(20240601)
    planted = np.zeros((rows, cols), dtype=bool)
    planted[5:10, 6:11] = True
    planted[25:30, 28:33] = True
    counts = rng.poisson(np.where(planted, 10.0, 2.0)).astype(float).ravel()
    result = gi_star(counts, queen_lattice(rows, cols))
    hot = result["gi_class"].isin(["hot_99", "hot_95"]).to_numpy()  # q <= 0.05, z > 0
    inside = planted.ravel()
    power = hot[inside].mean()
    false_positive_rate = hot[~inside].mean()
    assert power > 0.9, power
    assert false_positive_rate < 0.05, false_positive_rate


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(3, 8), st.integers(3, 8), st.integers(0, 2**32 - 1))
def test_gi_star_invariant_to_row_order(rows, cols, seed):
    rng = np.random.default_rng(seed)
    x = rng.poisson(rng.uniform(0.2, 5), rows * cols).astype(float)
    w = queen_lattice(rows, cols)
    order = rng.permutation(rows * cols)
    a = gi_star(x, w)
    b = gi_star(x[order], permute_weights(w, order))
    np.testing.assert_allclose(b["gi_z"], a["gi_z"].to_numpy()[order], atol=1e-9)
    np.testing.assert_allclose(b["gi_q"], a["gi_q"].to_numpy()[order], atol=1e-12)
    for column in ("gi_p", "gi_q"):
        assert ((a[column] >= 0) & (a[column] <= 1)).all()
    assert (a["gi_q"] >= a["gi_p"] - 1e-15).all()


# =============================================================================
# Local Moran
# =============================================================================

ESDA_QUADRANT = {1: "HH", 2: "LH", 3: "LL", 4: "HL"}


def test_local_moran_equals_esda_is_and_quadrants(lattice20):
    esda = pytest.importorskip("esda")
    y = np.random.default_rng(9).poisson(4.0, 400).astype(float)
    y[100:106] += 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = esda.Moran_Local(y, lattice20, permutations=0)
    ours = local_moran(y, lattice20.sparse, permutations=9)
    np.testing.assert_allclose(ours["moran_i"], reference.Is, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ours["moran_quadrant"].astype(str).to_numpy(),
                                  [ESDA_QUADRANT[q] for q in reference.q])
    # the same weights with self on the diagonal (as passed to gi_star) give the same I
    with_self = local_moran(y, lattice20.sparse + sp.identity(400), permutations=9)
    np.testing.assert_allclose(with_self["moran_i"], ours["moran_i"], atol=1e-12)


def test_local_moran_pseudo_p_equals_esda_p_sim_with_the_same_draws(lattice20, monkeypatch):
    esda = pytest.importorskip("esda")
    from esda.crand import vec_permutations

    y = np.random.default_rng(10).gamma(2.0, 2.0, 400)  # continuous: no ties with the observed I
    y[210:215] += 8
    seed, permutations = 77, 199
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = esda.Moran_Local(y, lattice20, permutations=permutations, seed=seed, n_jobs=1)
    # Use esda's own permutation draws, so only the kernel and the p-value rule are compared.
    monkeypatch.setattr(moran_module, "_permutation_ids",
                        lambda population, size, perms, sd: vec_permutations(size, population + 1, perms, sd))
    ours = local_moran(y, lattice20.sparse, permutations=permutations, seed=seed, correction=None)
    np.testing.assert_allclose(ours["moran_p"], reference.p_sim, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ours["moran_q"], ours["moran_p"])


def test_local_moran_seeded_reproducible_and_bounded():
    w = queen_lattice(8)
    y = np.random.default_rng(1).poisson(3, 64).astype(float)
    a = local_moran(y, w, permutations=99, seed=5, refine=False)
    b = local_moran(y, w, permutations=99, seed=5, refine=False)
    c = local_moran(y, w, permutations=99, seed=6, refine=False)
    pd.testing.assert_frame_equal(a, b)
    assert not np.array_equal(a["moran_p"], c["moran_p"])
    assert ((a["moran_p"] >= 1 / 100) & (a["moran_p"] <= 1)).all()
    assert (a["moran_q"] >= a["moran_p"] - 1e-15).all()
    # the second stage (default): p floored at 1 / (ceil(64 / 0.05) + 1) instead, still reproducible
    seq = local_moran(y, w, permutations=99, seed=5)
    pd.testing.assert_frame_equal(seq, local_moran(y, w, permutations=99, seed=5))
    assert ((seq["moran_p"] >= 1 / 1281) & (seq["moran_p"] <= 1)).all()
    assert 99 <= seq.attrs["local_moran"]["second_stage_permutations"] <= 1280


def test_local_moran_islands_constant_and_classes():
    w = queen_lattice(5, self_weight=False).tolil()
    w[12, :] = 0  # cell 12 loses its neighbours ...
    w[:, 12] = 0  # ... and is nobody's neighbour
    w = w.tocsr()
    y = np.arange(25.0)
    result = local_moran(y, w, permutations=49)
    assert math.isnan(result.loc[12, "moran_i"]) and math.isnan(result.loc[12, "moran_p"])
    assert result.loc[12, "moran_quadrant"] == "isolated" and result.loc[12, "moran_class"] == "isolated"
    assert result.drop(index=12)["moran_i"].notna().all()
    assert result.attrs["local_moran"]["islands"] == 1
    constant = local_moran(np.full(25, 2.0), w, permutations=9)
    assert (constant.drop(index=12)["moran_quadrant"] == "none").all()
    assert (constant.drop(index=12)["moran_p"] == 1).all()
    # significant cells take their quadrant's class; the rest are not_significant
    big = queen_lattice(12)
    counts = np.zeros(144)
    counts[[13, 14, 25, 26, 27, 37, 38]] = 20
    lisa = local_moran(counts, big, permutations=199, seed=3, correction=None)
    significant = lisa["moran_p"] <= 0.05
    mapping = {"HH": "hotspot_HH", "LL": "coldspot_LL", "HL": "outlier_HL", "LH": "outlier_LH"}
    expected = np.where(significant, lisa["moran_quadrant"].astype(str).map(mapping), "not_significant")
    np.testing.assert_array_equal(lisa["moran_class"].astype(str), expected)
    assert lisa.loc[26, "moran_class"] == "hotspot_HH"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(3, 7), st.integers(0, 2**32 - 1))
def test_local_moran_i_invariant_to_row_order(size, seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=size * size)
    w = queen_lattice(size, self_weight=False)
    order = rng.permutation(size * size)
    a = local_moran(y, w, permutations=19)
    b = local_moran(y[order], permute_weights(w, order), permutations=19)
    np.testing.assert_allclose(b["moran_i"], a["moran_i"].to_numpy()[order], atol=1e-9)
    np.testing.assert_array_equal(b["moran_quadrant"].astype(str), a["moran_quadrant"].astype(str).to_numpy()[order])
    assert ((b["moran_p"] > 0) & (b["moran_p"] <= 1)).all()


# =============================================================================
# Mann-Kendall
# =============================================================================


def test_mann_kendall_hand_example_with_ties():
    # 1 3 3 2 5: pairs from 1: + + + +; from 3: 0 - +; from 3: - +; from 2: + -> S = 5
    # one tie group of size 2: Var = [5*4*15 - 2*1*9] / 18 = 282 / 18
    result = mann_kendall([1, 3, 3, 2, 5]).iloc[0]
    assert result["mk_s"] == 5
    assert result["mk_var"] == pytest.approx(282 / 18)
    z = 4 / math.sqrt(282 / 18)
    assert result["mk_z"] == pytest.approx(z)
    assert result["mk_p"] == pytest.approx(2 * sst.norm.sf(z))
    # tau-b: 5 / sqrt(10 * (10 - 1))
    assert result["mk_tau"] == pytest.approx(5 / math.sqrt(90))
    assert result["mk_tau"] == pytest.approx(sst.kendalltau(np.arange(5), [1, 3, 3, 2, 5]).statistic)
    assert result["mk_trend"] == "no_trend" and result["mk_reason"] == ""


def test_mann_kendall_no_ties_against_scipy_kendalltau():
    rng = np.random.default_rng(12)
    x = np.cumsum(rng.normal(0.15, 1, 60))
    result = mann_kendall(x).iloc[0]
    reference = sst.kendalltau(np.arange(60), x, method="asymptotic")
    assert result["mk_tau"] == pytest.approx(reference.statistic, rel=1e-12)
    assert result["mk_s"] == pytest.approx(reference.statistic * 60 * 59 / 2)
    assert result["mk_var"] == pytest.approx(60 * 59 * 125 / 18)
    # scipy has no continuity correction; the p-values agree asymptotically
    assert abs(result["mk_p"] - reference.pvalue) < 0.01
    assert result["mk_trend"] == "increasing"


def test_mann_kendall_gaps_short_series_and_rows():
    table = np.array([
        [1, 2, np.nan, 4, 3, 6],
        [np.nan, 5, np.nan, np.nan, 4, np.nan],
        [2, 2, 2, 2, 2, 2],
        [6, 5, 4, 3, 2, 1],
    ])
    frame = pd.DataFrame(table, index=["c1", "c2", "c3", "c4"])
    result = mann_kendall(frame)
    assert list(result.index) == ["c1", "c2", "c3", "c4"]
    gapless = mann_kendall([1, 2, 4, 3, 6]).iloc[0]
    pd.testing.assert_series_equal(result.loc["c1"], gapless, check_names=False)
    assert result.loc["c1", "mk_n"] == 5
    assert math.isnan(result.loc["c2", "mk_z"]) and "fewer than 3" in result.loc["c2", "mk_reason"]
    assert result.loc["c3", "mk_z"] == 0 and result.loc["c3", "mk_p"] == 1
    assert result.loc["c4", "mk_s"] == -15 and result.loc["c4", "mk_trend"] == "decreasing"
    for i, label in enumerate(frame.index):
        single = mann_kendall(table[i]).iloc[0]
        pd.testing.assert_series_equal(result.loc[label], single, check_names=False)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 4).map(float), st.just(float("nan"))), min_size=3, max_size=15))
def test_mann_kendall_matches_pairwise_definition(values):
    x = np.array(values)
    kept = x[~np.isnan(x)]
    result = mann_kendall(x).iloc[0]
    if kept.size < 3:
        assert math.isnan(result["mk_s"])
        return
    s = sum(np.sign(kept[j] - kept[i]) for i in range(kept.size) for j in range(i + 1, kept.size))
    _, ties = np.unique(kept, return_counts=True)
    n = kept.size
    var = (n * (n - 1) * (2 * n + 5) - sum(t * (t - 1) * (2 * t + 5) for t in ties)) / 18
    assert result["mk_s"] == s
    assert result["mk_var"] == pytest.approx(var)
    assert 0 <= result["mk_p"] <= 1


# =============================================================================
# Concentration
# =============================================================================


def test_concentration_hand_example_and_ties():
    df = concentration([50, 20, 10, 5, 5, 5, 3, 2, 0, 0], top_shares=(0.1, 0.25, 0.5, 1.0))
    assert list(df.columns) == ["top_fraction_of_units", "n_units", "units_in_top", "count_in_top",
                                "share_of_total"]
    assert df["units_in_top"].tolist() == [1, 3, 5, 10]  # ceil(0.25 * 10) = 3
    assert df["count_in_top"].tolist() == [50, 80, 90, 100]
    assert df["share_of_total"].tolist() == [0.5, 0.8, 0.9, 1.0]
    # ceil must not be fooled by floating point: 0.07 * 100 = 7.000000000000001
    assert concentration(np.ones(100), top_shares=(0.07,))["units_in_top"].iloc[0] == 7
    assert math.isnan(concentration([0, 0, 0])["share_of_total"].iloc[0])
    with pytest.raises(ValidationError, match="top_shares"):
        concentration([1, 2], top_shares=(0.0, 1.5))


def test_gini_hand_examples():
    # lorenzgini / DescTools examples (Bernasco & Steenbeek 2017)
    assert gini([10, 8, 2, 0, 0, 0, 0, 0, 0, 0]) == pytest.approx(0.78)
    assert gini([5, 2, 1, 0, 0, 0, 0, 0, 0, 0]) == pytest.approx(0.8)
    assert gini([10] + [0] * 9) == pytest.approx(0.9)
    assert gini([4, 4, 4]) == 0
    assert math.isnan(gini([0, 0]))


def test_gini_poisson_adjusted_generalised_and_random_baseline():
    sparse_counts = np.array([5, 2, 1, 0, 0, 0, 0, 0, 0, 0])
    result = gini_poisson_adjusted(sparse_counts, simulations=50, seed=1)
    assert result.gini == pytest.approx(0.8)
    assert result.gini_generalised == pytest.approx(0.75)  # lorenzgini example
    # random allocation: the adjusted value is near 0; a planted concentration is far above it
    rng = np.random.default_rng(0)
    random_counts = np.bincount(rng.integers(0, 2000, 500), minlength=2000)
    random_result = gini_poisson_adjusted(random_counts, simulations=100, seed=2)
    assert random_result.gini > 0.75  # sparse counts alone give a high raw Gini
    assert abs(random_result.gini_adjusted) < 0.05
    planted = np.zeros(2000, dtype=int)
    planted[:25] = 20
    planted_result = gini_poisson_adjusted(planted, simulations=100, seed=2)
    assert planted_result.gini_adjusted > 0.9
    again = gini_poisson_adjusted(random_counts, simulations=100, seed=2)
    assert again == random_result
    assert random_result.to_dict()["n_events"] == 500
    empty = gini_poisson_adjusted([0, 0, 0])
    assert math.isnan(empty.gini) and empty.n_events == 0
    with pytest.raises(ValidationError, match="whole counts"):
        gini_poisson_adjusted([1.5, 2])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=50).filter(lambda v: sum(v) > 0))
def test_histogram_gini_equals_sorted_gini(values):
    assert _gini_of_integer_counts(np.array(values)) == pytest.approx(gini(values), abs=1e-12)


def test_gi_star_without_self_weights_is_a_clear_error_in_both_entry_points():
    """Zero diagonal with include_self=False (gi_star) or in the per-period kernel: one message, its own hint."""
    import scipy.sparse as sparse_

    from hotspots.detect.gistar import _gi_star_periods, gi_star
    from hotspots._errors import ValidationError as ValidationError_

    w = sparse_.csr_matrix(np.array([[0, 1.0], [1, 0]]))
    with pytest.raises(ValidationError_, match=r"no self-weight on the diagonal for 2 of 2 cells \(first at position 0\)") as a:
        gi_star(np.array([1.0, 2.0]), w, include_self=False)
    assert "include_self=True" in a.value.hint
    with pytest.raises(ValidationError_, match=r"no self-weight on the diagonal for 2 of 2 cells") as b:
        _gi_star_periods(np.array([[1.0, 2.0], [2.0, 3.0]]), w)
    assert "1 on the diagonal" in b.value.hint
