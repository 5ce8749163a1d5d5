"""The funnel quantiles computed for every level at once, on the distribution kernels, are the ones each
``poisson_ppf``/``poisson_cdf``/``poisson_pmf`` call gave (kept here as the reference), bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hotspots._validate import level_label
from hotspots.outliers import funnel
from hotspots.outliers.funnel import (
    _funnel_limits_columns,
    _funnel_limits_sharing,
    _funnel_outliers_data,
    _poisson_interpolated_quantile,
    _poisson_interpolated_quantiles,
    funnel_limits,
    funnel_outliers,
)

RNG = np.random.default_rng(20261203)
PROBS = [0.001, 0.025, 0.975, 0.999, 0.5, 1e-9, 1 - 1e-12]


def _bits(a):
    return np.asarray(a, dtype=float).view(np.int64)


def test_quantiles_at_once_equal_one_call_per_probability(monkeypatch):
    means = np.concatenate([RNG.gamma(0.5, 50.0, 3000), 10 ** RNG.uniform(-8, 6, 3000), [1e-3, 1.0, 2.0, 1e6]])
    fallbacks = []
    monkeypatch.setattr(funnel, "_poisson_interpolated_quantile",
                        lambda p, m: fallbacks.append(p) or _poisson_interpolated_quantile(p, m))
    got = _poisson_interpolated_quantiles(PROBS, means)
    assert not fallbacks  # the kernels' path was taken
    assert len(got) == len(PROBS)
    for p, values in zip(PROBS, got):
        assert np.array_equal(_bits(values), _bits(_poisson_interpolated_quantile(p, means))), p


@pytest.mark.parametrize("means", [np.array([5e-324, 3.0]), np.array([1e15]), np.array([0.0, 4.0]),
                                   np.array([np.nan, 2.0]), np.zeros(0)])
def test_quantiles_outside_the_kernels_path_as_before(means):
    for p, values in zip(PROBS[:4], _poisson_interpolated_quantiles(PROBS[:4], means)):
        want = _poisson_interpolated_quantile(p, means)
        assert values.shape == want.shape
        assert np.array_equal(values, want, equal_nan=True)


def _reference_limits(expected, levels, target=1.0):
    """funnel_limits' exact limits as they were: two quantile calls per level."""
    e = np.atleast_1d(np.asarray(expected, dtype=float)).ravel()
    valid = np.isfinite(e) & (e > 0)
    safe = np.where(valid, e, 1.0)
    out = {"expected": e}
    for level in levels:
        tail = (1.0 - level) / 2
        lower = _poisson_interpolated_quantile(tail, target * safe) / safe
        upper = _poisson_interpolated_quantile(1.0 - tail, target * safe) / safe
        lower = target - 1.0 * (target - lower)
        upper = target + 1.0 * (upper - target)
        out[f"lower_{level_label(level)}"] = np.where(valid, np.maximum(lower, 0.0), np.nan)
        out[f"upper_{level_label(level)}"] = np.where(valid, upper, np.nan)
    return pd.DataFrame(out)


@pytest.mark.parametrize("levels", [(0.95, 0.998), (0.9,), (0.998, 0.8, 0.95)])
def test_funnel_limits_equal_the_per_level_quantiles(levels):
    expected = np.concatenate([[0.0, np.nan, -1.0, 1e-9, 0.3, 1.0, 17.0, 1e5, np.inf], RNG.gamma(0.7, 40.0, 400)])
    for target in (1.0, 1.3):
        got = funnel_limits(expected, levels=levels, target=target)
        pd.testing.assert_frame_equal(got, _reference_limits(expected, levels, target), check_exact=True)


def test_limit_columns_are_the_frames_columns():
    expected = RNG.gamma(0.7, 40.0, 50)
    variants = [{}, {"adjustment": "multiplicative", "phi": 2.5}, {"adjustment": "additive", "tau2": 0.03}]
    e_flat, columns = _funnel_limits_columns(expected, variants)
    frames = _funnel_limits_sharing(expected, variants)
    assert np.array_equal(e_flat, expected)
    for cols, frame in zip(columns, frames):
        assert list(cols) == list(frame.columns)
        for name, values in cols.items():
            assert np.array_equal(values, frame[name].to_numpy(), equal_nan=True)
    assert _funnel_limits_sharing(expected, []) == []


@pytest.mark.parametrize("adjustment", ["multiplicative", "additive"])
def test_funnel_outliers_data_is_the_frame(adjustment):
    for spread in (0.0, 0.5):
        n = 40
        population = RNG.integers(1_000, 3_000, n).astype(float)
        observed = RNG.poisson(0.05 * population * RNG.lognormal(0.0, spread, n)).astype(float)
        names = [f"A{i}" for i in range(n)]
        frame = funnel_outliers(observed, population, names=names, adjustment=adjustment)
        data, index, attrs, categories = _funnel_outliers_data(observed, population, names=names,
                                                               adjustment=adjustment)
        assert list(data) == list(frame.columns) and index.equals(frame.index) and attrs == frame.attrs
        for name, values in data.items():
            if name.startswith("flag"):
                assert list(frame[name].cat.categories) == categories
                assert np.array_equal(values, frame[name].cat.codes.to_numpy())
            elif name == "area":
                assert list(values) == list(frame[name])
            else:
                assert np.array_equal(values, frame[name].to_numpy(), equal_nan=True)
