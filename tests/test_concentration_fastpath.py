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


# ----------------------------------------------------------------------------- concentration_table without frames
import pandas as pd  # noqa: E402

from hotspots.concentration import concentration  # noqa: E402
from hotspots.outliers import context_tables as CT  # noqa: E402


def _reference_concentration_table(lsoa_totals, lsoa_parent, parent_names, *, top_shares=(0.05, 0.10), county=None,
                                   simulations=50, seed=12345):
    """concentration_table as it was: a groupby per unit and a concentration() frame per group."""
    data = lsoa_totals.assign(parent=lsoa_totals["area_code"].map(lsoa_parent))
    data = data[data["parent"].notna()]
    units = [("csp", code, parent_names.get(code, code), sub) for code, sub in data.groupby("parent", sort=True)]
    if county is not None:
        units.append(("force", county[0], county[1], data))
    rows = []
    for area_type, code, name, sub in units:
        for crime_type, part in sub.groupby("crime_type", sort=False):
            values = part["count"].to_numpy(dtype=float)
            row = {"area_type": area_type, "area_code": code, "area_name": name, "crime_type": crime_type,
                   "is_group": bool(part["is_group"].iloc[0]), "n_lsoas": int(values.size), "count": int(values.sum())}
            conc = concentration(values, top_shares=tuple(top_shares))
            for share, (units_in_top, count, share_of_total) in zip(top_shares, zip(
                    conc["units_in_top"].to_numpy(), conc["count_in_top"].to_numpy(), conc["share_of_total"].to_numpy())):
                label = CT._share_label(share)
                row[f"lsoas_{label}"] = int(units_in_top)
                row[f"count_{label}"] = int(count)
                row[f"share_{label}"] = float(share_of_total)
            gb = gini_poisson_adjusted(values.astype(np.int64), simulations=simulations, seed=seed)
            row.update(gini=gb.gini, gini_random_mean=gb.gini_random_mean, gini_adjusted=gb.gini_adjusted)
            rows.append(row)
    out = pd.DataFrame(rows)
    share_cols = [c for s in top_shares for c in (f"lsoas_{CT._share_label(s)}", f"count_{CT._share_label(s)}",
                                                   f"share_{CT._share_label(s)}")]
    return out[["area_type", "area_code", "area_name", "crime_type", "is_group", "n_lsoas", "count", *share_cols,
                "gini", "gini_random_mean", "gini_adjusted"]]


def _lsoa_totals(seed=0, n_lsoas=40, types=("Burglary", "All crime", "Drugs", "ASB")):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_lsoas):
        order = list(types) if i % 3 else list(reversed(types))  # first appearance differs between CSPs
        for t in order:
            rows.append({"area_code": f"L{i:03d}", "crime_type": t, "is_group": t == "All crime",
                         "count": int(rng.negative_binomial(1, 0.2 if t == "All crime" else 0.6))})
    totals = pd.DataFrame(rows)
    parent = pd.Series({f"L{i:03d}": ("X" if i < 15 else "Y" if i < 33 else "Z") for i in range(n_lsoas - 2)})
    return totals, parent  # the last two LSOAs have no CSP


def _same_tables(totals, parent, **kw):
    names = {"X": "Xville", "Y": "Yton"}
    expected = _reference_concentration_table(totals, parent, names, **kw)
    got = CT.concentration_table(totals, parent, names, **kw)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    return got


def test_concentration_table_equals_the_frame_per_group_version(monkeypatch):
    totals, parent = _lsoa_totals()
    calls = []
    monkeypatch.setattr(CT, "_by_crime_type", lambda sub, _f=CT._by_crime_type: calls.append(1) or _f(sub))
    got = _same_tables(totals, parent, county=("E23", "Shire"))
    assert calls and len(got) == 4 * 4  # the fast path ran: three CSPs and the county, four types each
    _same_tables(totals, parent, top_shares=(0.01, 0.34, 1.0))
    zeros = totals.assign(count=np.where(totals["area_code"] < "L020", 0, totals["count"]))  # a CSP with no crime
    _same_tables(zeros, parent, county=("E23", "Shire"))
    gaps = totals.astype({"crime_type": object})
    gaps.loc[5, "crime_type"] = None  # a row without a crime type is left out, as groupby leaves it out
    _same_tables(gaps, parent)
    calls.clear()
    _same_tables(totals.astype({"crime_type": "category"}), parent)  # categorical: the groupby path
    assert not calls


def test_concentration_table_reports_bad_counts_as_before():
    """Negative or missing counts: the same error as before; fractional ones: the same table as before."""
    totals, parent = _lsoa_totals()
    for bad in (-1.0, np.nan, np.inf, 2.5):
        broken = totals.astype({"count": float})
        broken.loc[7, "count"] = bad
        try:
            expected = _reference_concentration_table(broken, parent, {})
        except Exception as exc:  # noqa: BLE001  (whatever it raised, the new code raises it too)
            with pytest.raises(type(exc)) as got:
                CT.concentration_table(broken, parent, {})
            assert str(got.value) == str(exc)
            continue
        pd.testing.assert_frame_equal(CT.concentration_table(broken, parent, {}), expected, check_exact=True)
