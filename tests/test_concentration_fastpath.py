"""The batched random baseline of gini_poisson_adjusted against the one-allocation-at-a-time loop it replaced."""

from __future__ import annotations

import numpy as np
import pytest

import hotspots.concentration as C
from hotspots.concentration import _gini_of_integer_counts, gini_poisson_adjusted


def _reference_simulated(n_units: int, n_events: int, simulations: int, seed: int) -> np.ndarray:
    """The loop as it was: one allocation, one Gini at a time."""
    rng = np.random.default_rng(seed)
    simulated = np.empty(simulations)
    for k in range(simulations):
        allocation = np.bincount(rng.integers(0, n_units, size=n_events), minlength=n_units)
        simulated[k] = _gini_of_integer_counts(allocation)
    return simulated


CASES = [(1, 1), (1, 7), (2, 1), (5, 3), (10, 1000), (97, 13), (400, 401), (1100, 5), (1100, 250_000), (30, 99_999)]


@pytest.mark.parametrize("n_units,n_events", CASES)
@pytest.mark.parametrize("simulations", [1, 2, 50])
def test_simulated_ginis_bit_identical(n_units, n_events, simulations):
    expected = _reference_simulated(n_units, n_events, simulations, 12345)
    got = C._simulated_ginis(np.random.default_rng(12345), n_units, n_events, simulations)
    assert got.tobytes() == expected.tobytes()


def test_batches_keep_the_stream(monkeypatch):
    """Several batches (a small batch bound) draw the same stream as one."""
    monkeypatch.setattr(C, "_BATCH_DRAWS", 1000)
    expected = _reference_simulated(300, 700, 9, 3)  # 1 simulation per batch
    assert C._simulated_ginis(np.random.default_rng(3), 300, 700, 9).tobytes() == expected.tobytes()
    monkeypatch.setattr(C, "_BATCH_DRAWS", 2500)  # 3 per batch, the last batch short
    expected = _reference_simulated(50, 800, 10, 4)
    assert C._simulated_ginis(np.random.default_rng(4), 50, 800, 10).tobytes() == expected.tobytes()


def test_rows_fall_back_when_sums_could_lose_exactness(monkeypatch):
    rows = np.random.default_rng(0).integers(0, 9, size=(4, 60))
    rows[2] = 0
    rows[2, 5] = 3
    expected = np.array([_gini_of_integer_counts(r) for r in rows])
    assert C._ginis_of_rows(rows).tobytes() == expected.tobytes()
    called = []
    original = C._gini_of_integer_counts
    monkeypatch.setattr(C, "_gini_of_integer_counts", lambda r: called.append(1) or original(r))
    assert C._ginis_of_rows(rows).tobytes() == expected.tobytes()
    assert called == []  # exact in int64: no row by row
    monkeypatch.setattr(C, "_EXACT", 100)  # n x total is 60 x ~240 here: beyond the (lowered) bound
    assert C._ginis_of_rows(rows).tobytes() == expected.tobytes()
    assert len(called) == 4


def test_gini_poisson_adjusted_on_real_shaped_counts():
    """Whole results equal to the loop's, on LSOA-like counts (many zeros, a long tail)."""
    rng = np.random.default_rng(7)
    for n_units, mean in ((1100, 0.3), (120, 40.0), (700, 3.0)):
        counts = rng.negative_binomial(1, 1 / (1 + mean), size=n_units)
        result = gini_poisson_adjusted(counts, simulations=50, seed=12345)
        simulated = _reference_simulated(n_units, int(counts.sum()), 50, 12345)
        assert result.gini_random_mean == float(simulated.mean())
        assert result.gini_random_sd == float(simulated.std(ddof=1))
