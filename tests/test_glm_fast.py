"""The evaluation's GLM (statsmodels' IRLS, each step by scaled normal equations) against statsmodels itself."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from statsmodels.genmod import families
from statsmodels.genmod.generalized_linear_model import GLM

from hotspots.evaluation import _glm
from hotspots.evaluation._glm import glm


def _panel(seed, n_areas=40, n_months=24, overdispersed=False):
    rng = np.random.default_rng(seed)
    area = np.repeat(np.arange(n_areas), n_months)
    month = np.tile(np.arange(n_months), n_areas)
    treated = area < n_areas // 4
    post = month >= n_months // 2
    level = rng.normal(1.0, 1.2, n_areas)[area] + rng.normal(0, 0.2, n_months)[month]
    mu = np.exp(level - 0.2 * (treated & post))
    y = rng.negative_binomial(2, 2 / (2 + mu)) if overdispersed else rng.poisson(mu)
    design = np.zeros((len(y), n_areas + n_months))
    design[:, 0] = 1.0
    design[area > 0, area[area > 0]] = 1.0
    design[month > 0, n_areas - 1 + month[month > 0]] = 1.0
    design[:, -1] = (treated & post) if seed % 2 else treated * month
    # as the evaluation does (panel._drop_empty): no area or month without crime, whose effect would diverge
    y[np.isin(area, np.flatnonzero(np.bincount(area, weights=y) == 0))] += 1
    y[np.isin(month, np.flatnonzero(np.bincount(month, weights=y) == 0))] += 1
    offset = rng.uniform(-0.1, 0.1, len(y)) if seed % 3 == 0 else np.zeros(len(y))
    return y.astype(float), design, offset, area


def _fits(y, design, offset, family, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(divide="ignore", invalid="ignore"):
            fast = glm(y, design, family=family, offset=offset).fit(**kwargs)
            slow = GLM(y, design, family=family, offset=offset).fit(**kwargs)
    return fast, slow


def _assert_same(fast, slow):
    assert fast.converged == slow.converged
    assert fast.fit_history["iteration"] == slow.fit_history["iteration"]
    np.testing.assert_allclose(fast.params, slow.params, rtol=1e-10, atol=1e-12)
    # the effect (last column) to 1e-10; the others to 1e-10 of the largest (with every area its own cluster,
    # an area effect's cluster-robust error is zero, and both are rounding noise of about 1e-14)
    np.testing.assert_allclose(fast.bse[-1], slow.bse[-1], rtol=1e-10)
    np.testing.assert_allclose(fast.bse, slow.bse, rtol=1e-10, atol=1e-10 * slow.bse.max())
    np.testing.assert_allclose(fast.mu, slow.mu, rtol=1e-10)
    np.testing.assert_allclose(fast.pearson_chi2, slow.pearson_chi2, rtol=1e-10)
    np.testing.assert_allclose(fast.llf, slow.llf, rtol=1e-10)
    assert fast.df_resid == slow.df_resid and fast.df_model == slow.df_model
    cov_fast, cov_slow = np.asarray(fast.cov_params()), np.asarray(slow.cov_params())
    np.testing.assert_allclose(cov_fast, cov_slow, rtol=1e-8, atol=1e-10 * np.abs(cov_slow).max())


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("cov", ["cluster", "nonrobust"])
def test_poisson_and_negbin_fits_are_statsmodels_fits(seed, cov):
    y, design, offset, area = _panel(seed, overdispersed=seed % 4 == 1)
    kwargs = {"cov_type": "cluster", "cov_kwds": {"groups": area}} if cov == "cluster" else {}
    for family in (families.Poisson(), families.NegativeBinomial(alpha=0.3)):
        fast, slow = _fits(y, design, offset, family, **kwargs)
        _assert_same(fast, slow)
    # the restricted model (no regressor of interest), as the wild bootstrap uses it
    fast, slow = _fits(y, design[:, :-1], offset, families.Poisson())
    _assert_same(fast, slow)


def test_small_and_sparse_panels():
    for seed in range(6):
        y, design, offset, area = _panel(100 + seed, n_areas=4 + seed, n_months=4)
        y[np.random.default_rng(seed).random(len(y)) < 0.5] = 0
        y[np.isin(area, np.flatnonzero(np.bincount(area, weights=y) == 0))] = 1
        month = np.tile(np.arange(4), 4 + seed)
        y[np.isin(month, np.flatnonzero(np.bincount(month, weights=y) == 0))] = 1
        effect = design[:, -1] > 0
        if y[effect].sum() == 0:  # the evaluation does not fit a panel with no crime in the treated-after rows
            y[np.flatnonzero(effect)[0]] = 1
        fast, slow = _fits(y, design, offset, families.Poisson(), cov_type="cluster", cov_kwds={"groups": area})
        _assert_same(fast, slow)


def test_an_effect_running_off_to_infinity_is_fitted_by_statsmodels(monkeypatch):
    """An area without crime (the evaluation drops them) has an effect going to minus infinity: not solved here.

    (The fallback restarts statsmodels' fit from its own start, so it gives what statsmodels gives.)
    """
    plain = []
    original = GLM._fit_irls
    monkeypatch.setattr(GLM, "_fit_irls", lambda self, *a, **k: plain.append(1) or original(self, *a, **k))
    y, design, offset, area = _panel(7)
    y[area == 3] = 0
    fast, slow = _fits(y, design, offset, families.Poisson(), cov_type="cluster", cov_kwds={"groups": area})
    assert plain == [1, 1] and fast.params[3] < -20  # here and in statsmodels' own fit
    np.testing.assert_array_equal(fast.params, slow.params)
    np.testing.assert_array_equal(fast.bse, slow.bse)


def test_rank_deficient_or_ill_conditioned_designs_are_fitted_by_statsmodels(monkeypatch):
    solved, plain = [], []
    original_solve, original_fit = _glm._solve, GLM._fit_irls
    monkeypatch.setattr(_glm, "_solve", lambda *a: solved.append(1) or original_solve(*a))
    monkeypatch.setattr(GLM, "_fit_irls", lambda self, *a, **k: plain.append(1) or original_fit(self, *a, **k))
    y, design, offset, area = _panel(5)
    collinear = np.column_stack([design, design[:, -1]])  # the regressor twice
    fast, slow = _fits(y, collinear, offset, families.Poisson())
    assert not solved and plain == [1, 1]  # rank-deficient: statsmodels' least squares, unchanged
    np.testing.assert_array_equal(fast.params, slow.params)
    nearly = design.copy()
    nearly[:, -1] = design[:, 1] + 1e-7 * np.random.default_rng(1).normal(size=len(y))  # full rank, hardly
    fast, slow = _fits(y, nearly, offset, families.Poisson())
    assert solved == [1] and plain == [1, 1, 1, 1]  # tried, refused, then statsmodels' own fit
    np.testing.assert_array_equal(fast.params, slow.params)


def test_solve_matches_lstsq_and_refuses_ill_conditioned():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 20)) * rng.uniform(0.01, 100, 20)
    b = rng.normal(size=300)
    x, _, _ = _glm._solve(a, b)
    np.testing.assert_allclose(x, np.linalg.lstsq(a, b, rcond=None)[0], rtol=1e-11, atol=1e-14)
    a[:, 3] = a[:, 2] * 2 + 1e-12 * rng.normal(size=300)
    assert _glm._solve(a, b) is None
