"""The outliers analysis' faster paths against the code they replaced: period_totals_many, the simulated Ginis."""

import numpy as np
import pandas as pd
import pytest

from hotspots.outliers.tables import _period_totals_plain, period_totals, period_totals_many


def _counts(seed, n_areas=30, months=("2024-01", "2024-02", "2024-03", "2024-04", "2024-05"), string=True):
    rng = np.random.default_rng(seed)
    types = ["Burglary", "Robbery", "Drugs", "Violence and sexual offences", "Anti-social behaviour"]
    areas = [f"E0{rng.integers(10**6, 10**7)}" for _ in range(n_areas)]
    rows = [(a, m, t) for a in areas for m in months for t in types if rng.random() > 0.2]
    frame = pd.DataFrame(rows, columns=["area_code", "month", "crime_type"])
    frame["count"] = rng.poisson(3, len(frame)).astype(np.int64)
    frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    if string:
        for column in ("area_code", "month", "crime_type"):
            frame[column] = frame[column].astype("string")
    return frame


GROUPS = [
    {},
    {"All crime": ["Burglary", "Robbery", "Drugs", "Violence and sexual offences"], "ASB": ["Anti-social behaviour"]},
    {"Burglary": ["Burglary", "Robbery"], "Empty": ["Shoplifting"], "Twice": ["Drugs", "Drugs", "Robbery"]},
]


def _same(fast, reference):
    pd.testing.assert_frame_equal(fast, reference, check_exact=True)
    assert list(fast.dtypes) == list(reference.dtypes)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("groups", GROUPS)
@pytest.mark.parametrize("crime_types", [None, ["Burglary", "Drugs", "Robbery"], ["Burglary", "Shoplifting"]])
def test_period_totals_many_is_the_groupby_path(seed, groups, crime_types):
    counts = _counts(seed, string=seed % 2 == 0)
    periods = [("2024-01", "2024-02"), ("2024-03",), ("2024-04", "2024-05", "2025-01"), ()]
    fast = period_totals_many(counts, periods, groups=groups, crime_types=crime_types)
    types = sorted(crime_types) if crime_types is not None else sorted(counts["crime_type"].unique())
    for months, frame in zip(periods, fast):
        _same(frame, _period_totals_plain(counts, months, dict(groups), types))
        _same(period_totals(counts, months, groups=groups, crime_types=crime_types), frame)


def test_what_the_codes_do_not_cover_takes_the_groupby_path():
    counts = _counts(1)
    floats = counts.assign(count=counts["count"].astype(float))
    repeated = ["Burglary", "Burglary", "Drugs"]
    for frame, types in ((floats, None), (counts, repeated)):
        got = period_totals_many(frame, [("2024-01",)], groups=GROUPS[1], crime_types=types)[0]
        want = _period_totals_plain(frame, ("2024-01",), dict(GROUPS[1]),
                                    sorted(types) if types else sorted(frame["crime_type"].unique()))
        _same(got, want)


def _simulated_ginis_one_call_each(rng, n_units, n_events, simulations):
    """The simulated Ginis as they were: one ``rng.integers`` call per simulation."""
    from hotspots import concentration

    simulated = np.empty(simulations)
    batch = max(1, min(simulations, concentration._BATCH_DRAWS // max(n_events, 1)))
    for start in range(0, simulations, batch):
        stop = min(simulations, start + batch)
        draws = np.empty((stop - start, n_events), dtype=np.int64)
        for k in range(stop - start):
            draws[k] = rng.integers(0, n_units, size=n_events)
        draws += (np.arange(stop - start, dtype=np.int64) * n_units)[:, None]
        allocations = np.bincount(draws.ravel(), minlength=(stop - start) * n_units).reshape(stop - start, n_units)
        simulated[start:stop] = concentration._ginis_of_rows(allocations)
    return simulated


@pytest.mark.parametrize("n_units, n_events, simulations", [
    (1, 5, 10), (2, 1, 200), (3, 7, 200), (60, 333, 200), (75, 1001, 37), (700, 20001, 200), (7, 40_000, 120),
    (2**31 + 5, 3, 4), (2**32, 3, 3), (2**33, 3, 3)])
def test_simulated_ginis_one_call_per_batch_are_those_of_one_call_per_simulation(n_units, n_events, simulations,
                                                                                  monkeypatch):
    from hotspots import concentration

    if n_units > 10**6:  # (the allocation counts are not made for that many units: the draws alone are checked)
        a, b = np.random.default_rng(5), np.random.default_rng(5)
        got = a.integers(0, n_units, size=(simulations, n_events))
        want = np.stack([b.integers(0, n_units, size=n_events) for _ in range(simulations)])
        assert np.array_equal(got, want) and a.integers(0, 2**40) == b.integers(0, 2**40)
        return
    monkeypatch.setattr(concentration, "_BATCH_DRAWS", 50_000)  # several batches for the larger cases
    a, b = np.random.default_rng(12345), np.random.default_rng(12345)
    got = concentration._simulated_ginis(a, n_units, n_events, simulations)
    want = _simulated_ginis_one_call_each(b, n_units, n_events, simulations)
    assert got.tobytes() == want.tobytes()
    assert a.bit_generator.state == b.bit_generator.state  # the stream left where it was
