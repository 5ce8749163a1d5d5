"""gini_poisson_adjusted's random baseline, simulated once per (units, events, simulations, seed), is the
baseline simulated afresh on every call (kept here as the reference), bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest

import hotspots.concentration as C
from hotspots.concentration import _gini_of_integer_counts, gini_poisson_adjusted


def _reference(counts, simulations, seed):
    """gini_poisson_adjusted as it was: a fresh generator and simulation each call, one allocation at a time."""
    arr = np.asarray(counts, dtype=np.int64)
    n_units, n_events = arr.size, int(arr.sum())
    observed = _gini_of_integer_counts(arr)
    rng = np.random.default_rng(seed)
    simulated = np.array([_gini_of_integer_counts(np.bincount(rng.integers(0, n_units, size=n_events),
                                                               minlength=n_units)) for _ in range(simulations)])
    mean = float(simulated.mean())
    return (observed, mean, float(simulated.std(ddof=1)) if simulations > 1 else math.nan,
            float((observed - mean) / (1.0 - mean)) if mean < 1 else math.nan)


@pytest.mark.parametrize("simulations", [1, 2, 40])
def test_cached_baseline_equals_a_fresh_simulation(simulations):
    rng = np.random.default_rng(99)
    C._random_baseline.cache_clear()
    cases = [rng.poisson(3.0, 70), rng.poisson(0.2, 300), rng.poisson(40.0, 12), np.array([0, 0, 5])]
    for counts in cases + cases[::-1]:  # each case twice: simulated, then from the cache
        for seed in (12345, 7):
            got = gini_poisson_adjusted(counts, simulations=simulations, seed=seed)
            want = _reference(counts, simulations, seed)
            values = (got.gini, got.gini_random_mean, got.gini_random_sd, got.gini_adjusted)
            assert np.array_equal(np.array(values), np.array(want), equal_nan=True)
            assert (got.n_units, got.n_events, got.simulations, got.seed) == (counts.size, counts.sum(),
                                                                              simulations, seed)
    assert C._random_baseline.cache_info().hits >= len(cases) * 2


def test_same_totals_share_a_baseline_only():
    C._random_baseline.cache_clear()
    a = gini_poisson_adjusted(np.array([5, 0, 0, 1]), simulations=30, seed=1)
    b = gini_poisson_adjusted(np.array([2, 2, 1, 1]), simulations=30, seed=1)  # same units and events
    c = gini_poisson_adjusted(np.array([2, 2, 1, 1]), simulations=30, seed=2)
    assert a.gini_random_mean == b.gini_random_mean and a.gini != b.gini
    assert c.gini_random_mean != b.gini_random_mean
    assert C._random_baseline.cache_info().misses == 2
