"""hotspots._dist against scipy.stats: the same numbers (bit for bit), NaN positions and result types."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from scipy import stats

from hotspots import _dist

SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, 1e-300, 1e-12, 1 - 1e-12, 2.0, 7.0, 1e6]
PROBS = np.array([np.nan, -0.5, 0.0, 5e-324, 1e-300, 1e-20, 1e-8, 0.001, 0.025, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9,
                  0.95, 0.975, 0.995, 0.999, 1 - 1e-12, 1.0, 1.5, np.inf])
REALS = np.array(SPECIAL + list(np.linspace(-40, 40, 161)) + [-1e10, 1e10, 5e-324])
COUNTS = np.array([np.nan, -np.inf, -3.0, -1.0, -0.5, 0.0, 0.3, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 17.0, 50.0, 99.0,
                   100.0, 101.0, 250.0, 1000.0, 12345.0, np.inf])
MEANS = np.array([np.nan, -1.0, 0.0, 1e-300, 1e-6, 0.1, 0.5, 1.0, 2.5, 10.0, 33.3, 100.0, 999.5, 1e5, np.inf])
DFS = np.array([np.nan, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 7.5, 30.0, 100.0, 1e4, 1e8, np.inf])


def same(actual, expected):
    assert type(actual) is type(expected), (type(actual), type(expected))
    if isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)
    # the same signs of zero as well
    np.testing.assert_array_equal(np.signbit(actual), np.signbit(expected))


def grid(*axes):
    return np.meshgrid(*axes, indexing="ij")


@pytest.mark.parametrize("name", ["cdf", "sf", "ppf", "isf"])
def test_norm(name):
    ours, theirs = getattr(_dist, f"norm_{name}"), getattr(stats.norm, name)
    values = PROBS if name in ("ppf", "isf") else REALS
    with np.errstate(all="ignore"):
        same(ours(values), theirs(values))
        same(ours(values.reshape(-1, 1)), theirs(values.reshape(-1, 1)))
        for v in values:
            same(ours(v), theirs(v))
            same(ours(float(v)), theirs(float(v)))
        same(ours([1, 2, 0]), theirs([1, 2, 0]))
        same(ours(np.array([], dtype=float)), theirs(np.array([], dtype=float)))
        same(ours(np.float32(0.3)), theirs(np.float32(0.3)))


@pytest.mark.parametrize("name, values", [("sf", REALS), ("isf", PROBS)])
def test_t(name, values):
    ours, theirs = getattr(_dist, f"t_{name}"), getattr(stats.t, name)
    x, d = grid(values, DFS)
    with np.errstate(all="ignore"):
        same(ours(x, d), theirs(x, d))
        same(ours(x[:, 5], 3.0), theirs(x[:, 5], 3.0))
        same(ours(0.025, 7.0), theirs(0.025, 7.0))
        same(ours(np.float64(1.3), np.inf), theirs(np.float64(1.3), np.inf))


@pytest.mark.parametrize("name, values", [("sf", REALS), ("ppf", PROBS)])
def test_chi2(name, values):
    ours, theirs = getattr(_dist, f"chi2_{name}"), getattr(stats.chi2, name)
    dfs = np.concatenate([DFS, 2 * COUNTS + 2, 2 * COUNTS])
    x, d = grid(values, dfs)
    with np.errstate(all="ignore"):
        same(ours(x, d), theirs(x, d))
        for df in (1, 7, 120, 3.5):
            same(ours(0.95, df), theirs(0.95, df))
            same(ours(np.float64(0.05), df), theirs(np.float64(0.05), df))
            same(ours(150.3, df), theirs(150.3, df))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # boost's root finding gives up on some grid points
@pytest.mark.parametrize("name", ["ppf", "isf"])
def test_beta(name):
    ours, theirs = getattr(_dist, f"beta_{name}"), getattr(stats.beta, name)
    shapes = np.concatenate([COUNTS, COUNTS + 1, [0.5, 1e-3]])
    q, a, b = grid(PROBS[::2], shapes, shapes)
    with np.errstate(all="ignore"):
        same(ours(q, a, b), theirs(q, a, b))
        same(ours(0.025, np.array([3.0, 0.0]), np.array([4.0, 2.0])),
             theirs(0.025, np.array([3.0, 0.0]), np.array([4.0, 2.0])))
        same(ours(0.025, 3.0, 4.0), theirs(0.025, 3.0, 4.0))


@pytest.mark.parametrize("name", ["pmf", "cdf", "sf", "ppf"])
def test_poisson(name):
    ours, theirs = getattr(_dist, f"poisson_{name}"), getattr(stats.poisson, name)
    values = PROBS if name == "ppf" else np.concatenate([COUNTS, COUNTS - 1, np.arange(0, 60.0)])
    means = np.concatenate([MEANS, np.linspace(0.05, 80, 97)])
    x, m = grid(values, means)
    with np.errstate(all="ignore"):
        same(ours(x, m), theirs(x, m))
        same(ours(values, 12.5), theirs(values, 12.5))
        same(ours(3, 2.5), theirs(3, 2.5))
        same(ours(np.array([0, 4, 9]), np.array([1.0, 4.0, 0.0])), theirs(np.array([0, 4, 9]), np.array([1.0, 4.0, 0.0])))
        for v in values[:30]:
            same(ours(v, 4.2), theirs(v, 4.2))


@pytest.mark.parametrize("name", ["cdf", "sf"])
def test_binom(name):
    ours, theirs = getattr(_dist, f"binom_{name}"), getattr(stats.binom, name)
    ks = np.concatenate([COUNTS, COUNTS - 1, np.arange(0, 30.0)])
    ns = np.concatenate([COUNTS, [2.5, 30.0, 31.0]])
    ps = np.array([np.nan, -0.1, 0.0, 1e-9, 0.1, 0.3, 0.5, 0.77, 0.99, 1.0, 1.2])
    k, n, p = grid(ks, ns, ps)
    with np.errstate(all="ignore"):
        same(ours(k, n, p), theirs(k, n, p))
        same(ours(3, 10, 0.4), theirs(3, 10, 0.4))
        same(ours(np.array([3, 0, 12]), np.array([10, 4, 12]), 0.25),
             theirs(np.array([3, 0, 12]), np.array([10, 4, 12]), 0.25))


@pytest.mark.filterwarnings("ignore:An input array is constant")
def test_spearmanr():
    rng = np.random.default_rng(7)
    for n in (2, 3, 5, 20, 200, 3000):
        for low in (1, 3, 50, 10**6):
            x = rng.integers(0, low + 1, n).astype(float)
            y = x + rng.integers(0, low + 1, n)
            expected = stats.spearmanr(x, y)
            if np.isnan(expected.statistic):
                continue
            rho, p = _dist.spearmanr(x, y)
            same(rho, expected.statistic)
            same(p, expected.pvalue)
            same(_dist.spearmanr(x, -y)[0], stats.spearmanr(x, -y).statistic)
    same(_dist.spearmanr([1.0, 2.0], [2.0, 1.0])[0], stats.spearmanr([1.0, 2.0], [2.0, 1.0]).statistic)
    assert np.isnan(_dist.spearmanr([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])).all()
    assert np.isnan(_dist.spearmanr([1.0, np.nan, 3.0], [1.0, 2.0, 3.0])).all()
    assert np.isnan(_dist.spearmanr([1.0], [2.0])).all()


# --------------------------------------------------------------------------- the count families without statsmodels'
def test_count_families_are_statsmodels_families_bit_for_bit():
    from statsmodels.genmod import families

    from hotspots.evaluation._glm import CountFamily

    rng = np.random.default_rng(3)
    mu = np.concatenate([[0.0, -0.0, 1e-300, 1e-17, 2.2e-16, 1.0, 7.5, 1e6, np.inf, np.nan, -2.0],
                         rng.gamma(0.5, 20.0, 500)])
    y = np.concatenate([[0.0, 0.0, 0.0, 1.0, 3.0, 0.0, 2.0, 1e6, 5.0, 1.0, 0.0], rng.poisson(10.0, 500)]).astype(float)
    lin = np.log(np.abs(mu) + 1.0) * np.sign(rng.normal(size=mu.size))
    for ours, theirs in ((CountFamily(), families.Poisson()),
                         (CountFamily(alpha=0.37), families.NegativeBinomial(alpha=0.37)),
                         (CountFamily(alpha=1e-8), families.NegativeBinomial(alpha=1e-8)),
                         (CountFamily(alpha=2), families.NegativeBinomial(alpha=2))):
        with np.errstate(all="ignore"):
            same(ours.starting_mu(y), theirs.starting_mu(y))
            for name in ("weights", "predict"):
                same(getattr(ours, name)(mu), getattr(theirs, name)(mu))
            same(ours.fitted(lin), theirs.fitted(lin))
            for name in ("deriv", "deriv2"):
                same(getattr(ours.link, name)(mu), getattr(theirs.link, name)(mu))
            same(ours.variance(mu), theirs.variance(mu))
            same(ours.variance.deriv(mu), theirs.variance.deriv(mu))
            same(ours.deviance(y, mu), theirs.deviance(y, mu))
            same(ours.deviance(y, mu, np.ones(y.size), np.ones(y.size), 1.0),
                 theirs.deviance(y, mu, np.ones(y.size), np.ones(y.size), 1.0))
        sm = ours.statsmodels_family()
        assert type(sm) is type(theirs) and getattr(sm, "alpha", None) == getattr(theirs, "alpha", None)


@pytest.mark.parametrize("seed", range(6))
def test_fit_glm_with_count_families_is_the_statsmodels_family_fit(seed):
    from statsmodels.genmod import families

    from hotspots.evaluation._glm import CountFamily, CountFit, fit_glm
    from tests.test_evaluation_speed import _same_fit
    from tests.test_glm_fast import _panel

    y, design, offset, area = _panel(seed, n_areas=10 + 3 * seed, n_months=8 + 2 * seed, overdispersed=seed % 2 == 1)
    for ours, theirs in ((CountFamily(), families.Poisson()),
                         (CountFamily(alpha=0.2 + seed / 10), families.NegativeBinomial(alpha=0.2 + seed / 10))):
        for groups in (area, None):
            with np.errstate(divide="ignore", invalid="ignore"):
                fast = fit_glm(y, design, family=ours, offset=offset, cov_groups=groups)
                reference = fit_glm(y, design, family=theirs, offset=offset, cov_groups=groups)
            assert isinstance(fast, CountFit) and isinstance(reference, CountFit)
            _same_fit(fast, reference)
            assert np.array_equal(np.asarray(fast.cov_params()), np.asarray(reference.cov_params()))
    # what fit_glm hands to statsmodels (here a design not of full rank) is fitted with statsmodels' family
    deficient = np.column_stack([design, design[:, -1]])
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = fit_glm(y, deficient, family=CountFamily(alpha=0.5), offset=offset)
        expected = fit_glm(y, deficient, family=families.NegativeBinomial(alpha=0.5), offset=offset)
    assert not isinstance(got, CountFit)
    np.testing.assert_array_equal(got.params, expected.params)


# --------------------------------------------------------------------------- what a run uses imports no scipy.stats
_PIECES = r"""
import sys, warnings
import numpy as np
warnings.simplefilter("ignore")
from hotspots.outliers import change, funnel, dispersion
from hotspots.evaluation import inference, _checks
from hotspots.evaluation.panel import panel_effects_and_pre_trend
from hotspots.evaluation.synthetic import synthetic_evaluation_data
from hotspots.detect.stability import top_k_stability
rng = np.random.default_rng(1)
e = rng.uniform(5, 500, 60); o = rng.poisson(e * rng.gamma(20, 1 / 20, 60))
funnel.funnel_outliers(o, e)
funnel.exact_poisson_interval([0, 3, 10])
dispersion.overdispersion((o - e) / np.sqrt(e))
change.rate_ratio_test(o, e, o[::-1], e[::-1])
change.change_vs_reference(o + 1, o[::-1] + 1, 1000, 1100, phi=1.5, df=20)
inference.quasi_poisson_did(o[:10], o[10:20], o[20:30], o[30:40])
_checks._z_crit(0.95); _checks._two_sided_p(np.array([1.0, 2.0]))
top_k_stability(rng.poisson(3, 400), rng.poisson(3, 400))
p = synthetic_evaluation_data(n_treated=8, seed=1)
panel_effects_and_pre_trend(p[p["role"] != "buffer"])
print("scipy.stats" in sys.modules, "statsmodels.genmod.families" in sys.modules)
"""


def test_what_a_run_computes_imports_no_scipy_stats():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(_PIECES)], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": f"{root / 'src'}", "PATH": "/usr/bin:/bin", "HOTSPOTS_WORKERS": "1"},
                         cwd=str(root))
    assert out.stdout.strip().splitlines()[-1] == "False False"


@pytest.mark.realdata
def test_a_run_imports_no_scipy_stats(real_data_dir, tmp_path):
    """``hotspots run`` (one process: the workers would inherit what it imports) without scipy.stats.

    The counts, outliers and evaluation stages are run (the evaluation picks its patrol areas with the hotspot
    analysis' code); the hotspots stage's modules are imported by the command all the same, and what the
    hotspots stage imports only when it computes (Spearman's rho for stability) is in the test above.  The
    hotspots stage itself is left out to keep the suite short (it is 14 of the run's 23 s).
    """
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = ("import atexit, runpy, sys\n"
            "atexit.register(lambda: print('SCIPY_STATS', 'scipy.stats' in sys.modules,"
            " 'statsmodels.genmod.families' in sys.modules))\n"
            f"sys.argv = ['hotspots', '--data', {str(real_data_dir)!r}, '--out', {str(tmp_path / 'out')!r}, '--quiet',"
            " 'run', '--stage', 'counts', '--stage', 'outliers', '--stage', 'evaluate']\n"
            "runpy.run_module('hotspots', run_name='__main__')\n")
    env = {"PYTHONPATH": f"{root / 'src'}", "PATH": "/usr/bin:/bin", "HOTSPOTS_WORKERS": "1", "HOTSPOTS_CACHE": "off",
           "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(root), env=env)
    lines = [line for line in out.stdout.splitlines() if line.startswith("SCIPY_STATS")]
    assert lines == ["SCIPY_STATS False False"], out.stderr[-2000:]
