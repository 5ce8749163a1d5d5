"""Calibrated inference (placebo-in-space, quasi-Poisson) and the verdict's decision table (issue 12)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from hotspots._errors import ValidationError
from hotspots.evaluation.inference import placebo_did, quasi_poisson_did
from hotspots.evaluation.verdict import DECISION_TABLE, MIN_AREAS, decide

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- decision table: one test per row
FELL = {"pct": -20.0, "low": -30.0, "high": -8.0}
BASE = {"n_areas": 26, "n_crimes": 3000.0, "rtm_verdict": "not explained by regression to the mean alone",
        "selected_on_counts": True, "pre_trend_verdict": "compatible", "panel_verdict": "fell"}


@pytest.mark.parametrize("row, changes, verdict", [
    (1, {"n_areas": MIN_AREAS - 1}, "too few areas to tell"),
    (2, {"n_crimes": 10.0}, "too few crimes to tell"),
    (3, {"low": float("nan")}, "not estimable"),
    (4, {"rtm_verdict": "worse than equally high untreated areas"}, "treated did worse than equally high places"),
    (5, {"pct": 30.0, "low": 10.0, "high": 50.0}, "increase"),
    (6, {"pct": 10.0, "low": -60.0, "high": 120.0}, "too few crimes to tell"),
    (7, {"pct": -5.0, "low": -15.0, "high": 6.0}, "no detectable change"),
    (8, {"rtm_verdict": "consistent with regression to the mean"}, "reduction not attributable"),
    (8, {"pre_trend_verdict": "treated areas were already trending differently"}, "reduction not attributable"),
    (8, {"panel_verdict": "no detectable change"}, "reduction not attributable"),
    (8, {"rtm_verdict": ""}, "reduction not attributable"),
    (9, {}, "credible reduction"),
    (9, {"rtm_verdict": "consistent with regression to the mean", "selected_on_counts": False}, "credible reduction"),
])
def test_decision_table_rows(row, changes, verdict):
    args = {**FELL, **BASE, **changes}
    d = decide(**args)
    assert (d.row, d.verdict) == (row, verdict)
    assert dict((r, v) for r, _, v in DECISION_TABLE)[row] == verdict
    if row == 8:
        assert d.reasons


def test_worse_than_equally_high_places_is_never_credited_even_with_a_big_fall():
    # the other force's case in issue 12: the DiD fell, the RTM check says treated did worse
    d = decide(pct=-40, low=-55, high=-20, n_areas=6, n_crimes=5000,
               rtm_verdict="worse than equally high untreated areas: ...", selected_on_counts=True)
    assert d.verdict == "treated did worse than equally high places"


# --------------------------------------------------------------------------- placebo machinery (synthetic)
def _null_world(rng, n_cells=600, months_b=4, months_a=4):
    """Cells with gamma-distributed (overdispersed) rates and an area-level shock: no effect anywhere."""
    level = rng.gamma(0.6, 15.0, n_cells)
    before = rng.poisson(level * months_b * rng.gamma(8, 1 / 8, n_cells))
    after = rng.poisson(level * months_a * rng.gamma(8, 1 / 8, n_cells))
    return before, after


def test_placebo_false_positive_rate_is_nominal_on_overdispersed_null_data():
    rng = np.random.default_rng(3)
    excl = poisson_excl = 0
    n_designs = 150
    for i in range(n_designs):
        b, a = _null_world(rng)
        busiest = np.argsort(-b)[:120]
        sel = rng.choice(busiest, 6, replace=False)
        rest = np.setdiff1d(np.arange(b.size), sel)
        res = placebo_did(b[sel], a[sel], b[rest].sum(), a[rest].sum(), b[rest], a[rest], n_draws=199, seed=i)
        excl += (res.pct_low > 0) or (res.pct_high < 0)
        qp = quasi_poisson_did(b[sel], a[sel], b[rest], a[rest])
        log_irr = np.log(a[sel].sum() / b[sel].sum()) - np.log(a[rest].sum() / b[rest].sum())
        se = np.sqrt(1 / a[sel].sum() + 1 / b[sel].sum() + 1 / a[rest].sum() + 1 / b[rest].sum())
        poisson_excl += abs(log_irr / se) > 1.96
        assert qp.dispersion >= 1
    # picked at a peak, the plain Poisson interval is badly miscalibrated; the placebo interval is not
    assert poisson_excl / n_designs > 0.3
    assert excl / n_designs <= 0.10


def test_placebo_finds_a_planted_fall_and_covers_it():
    rng = np.random.default_rng(4)
    found = covered = 0
    for i in range(60):
        b, a = _null_world(rng)
        sel = rng.choice(np.argsort(-b)[:120], 10, replace=False)
        a = a.copy()
        a[sel] = rng.binomial(a[sel], 0.6)  # -40 %
        rest = np.setdiff1d(np.arange(b.size), sel)
        res = placebo_did(b[sel], a[sel], b[rest].sum(), a[rest].sum(), b[rest], a[rest], n_draws=199, seed=i)
        found += res.pct_high < 0
        covered += res.pct_low <= -40 <= res.pct_high
    assert found >= 45 and covered >= 50


def test_placebo_is_seeded_and_records_its_draws():
    rng = np.random.default_rng(5)
    b, a = _null_world(rng)
    args = (b[:5], a[:5], b[5:].sum(), a[5:].sum(), b[5:], a[5:])
    r1, r2 = placebo_did(*args, n_draws=99, seed=7), placebo_did(*args, n_draws=99, seed=7)
    assert r1 == r2 and r1.n_draws == 99 and r1.seed == 7
    assert placebo_did(*args, n_draws=99, seed=8).pct_low != r1.pct_low


def test_placebo_says_when_there_are_too_few_comparable_places():
    res = placebo_did([50, 60], [40, 50], 1000, 1000, [40, 55, 61], [40, 50, 60], n_draws=99, seed=1)
    assert np.isnan(res.pct_low) and "too few comparable" in res.note
    d = decide(pct=res.pct_change, low=res.pct_low, high=res.pct_high, n_areas=3, n_crimes=200)
    assert d.verdict == "not estimable"


def test_placebo_with_no_untreated_places_is_not_an_error():
    res = placebo_did([50, 60, 70], [40, 50, 60], 1000, 1000, [], [], n_draws=99)
    assert np.isnan(res.pct_low) and "no untreated places" in res.note
    assert decide(pct=res.pct_change, low=res.pct_low, high=res.pct_high, n_areas=3, n_crimes=330).verdict == "not estimable"


def test_placebo_bad_input_names_the_argument():
    with pytest.raises(ValidationError, match="treated_before and treated_after"):
        placebo_did([1, 2], [1], 10, 10, [1, 2, 3], [1, 2, 3])
    with pytest.raises(ValidationError, match="n_draws"):
        placebo_did([1], [1], 10, 10, [1, 2, 3], [1, 2, 3], n_draws=0)


def test_quasi_poisson_matches_statsmodels_glm_with_pearson_scale():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(6)
    b, a = _null_world(rng, n_cells=80)
    keep = (a + b) > 0
    b, a = b[keep], a[keep]
    treated = np.zeros(b.size, bool)
    treated[:8] = True
    res = quasi_poisson_did(b[treated], a[treated], b[~treated], a[~treated])
    # long format: unit fixed effects, period effect, treated x after
    n = b.size
    y = np.concatenate([b, a])
    unit = np.tile(np.arange(n), 2)
    post = np.repeat([0.0, 1.0], n)
    X = np.column_stack([np.eye(n)[unit], post, post * np.tile(treated, 2)])
    fit = sm.GLM(y, X, family=sm.families.Poisson()).fit(scale="X2")
    beta, se = fit.params[-1], fit.bse[-1]
    assert res.pct_change == pytest.approx(100 * np.expm1(beta), rel=1e-6)
    # GLM's Pearson df is 2n - (n + 2) = n - 2, as in the closed form
    if fit.scale >= 1:
        assert res.pct_low == pytest.approx(100 * np.expm1(beta - 1.959964 * se), rel=1e-4)
        assert res.dispersion == pytest.approx(fit.scale, rel=1e-6)


# --------------------------------------------------------------------------- the calibration script
@pytest.mark.realdata
def test_calibration_script_quick_mode(tmp_path):
    spec = importlib.util.spec_from_file_location("calibrate_evaluation", ROOT / "scripts" / "calibrate_evaluation.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = mod.main(["--quick", "--sizes", "4", "--out", str(tmp_path / "calib.md")])
    assert len(rows) == 3 and all(r["designs"] == 5 for r in rows)
    text = (tmp_path / "calib.md").read_text()
    assert "reduction credited" in text and "| no effect (placebo) | 4 | 5 |" in text


# --------------------------------------------------------------------------- one test, inverted
def test_placebo_interval_and_p_value_always_agree():
    """The interval excludes no change exactly when the rank p-value is at most 5% (one test inverted)."""
    rng = np.random.default_rng(21)
    seen = set()
    for i in range(80):
        b, a = _null_world(rng, n_cells=300)
        sel = rng.choice(np.argsort(-b)[:80], 5, replace=False)
        a = a.copy()
        a[sel] = rng.binomial(a[sel], rng.uniform(0.55, 1.0))  # anything from no effect to a big fall
        rest = np.setdiff1d(np.arange(b.size), sel)
        res = placebo_did(b[sel], a[sel], b[rest].sum(), a[rest].sum(), b[rest], a[rest], n_draws=199, seed=i)
        excludes = bool(res.pct_low > 0 or res.pct_high < 0)
        assert excludes == (res.p_value <= 0.05), (i, res)
        seen.add(excludes)
    assert seen == {True, False}  # both sides of the test were exercised


def test_ring_counts_sum_the_eight_neighbours_present():
    from hotspots.evaluation.inference import ring_counts

    rows, cols = np.meshgrid(np.arange(3), np.arange(3), indexing="ij")
    vals = np.arange(9, dtype=float)
    ring = ring_counts(rows.ravel(), cols.ravel(), vals)
    assert ring[4] == vals.sum() - 4  # the centre: all eight others
    assert ring[0] == 1 + 3 + 4  # a corner: three neighbours
    both = ring_counts(rows.ravel(), cols.ravel(), np.column_stack([vals, 2 * vals]))
    assert np.array_equal(both[:, 1], 2 * ring)


def _ring_world(rng, side=40, months=4):
    """A side x side grid of cells with smooth overdispersed rates (neighbours alike) and no effect or displacement."""
    base = rng.gamma(0.7, 6.0, (side + 2, side + 2))
    smooth = sum(np.roll(np.roll(base, dr, 0), dc, 1) for dr in (-1, 0, 1) for dc in (-1, 0, 1))[1:-1, 1:-1] / 9
    level = (smooth * rng.gamma(3, 1 / 3, (side, side))).ravel()
    before = rng.poisson(level * months * rng.gamma(10, 0.1, level.size))
    after = rng.poisson(level * months * rng.gamma(10, 0.1, level.size))
    r, c = np.divmod(np.arange(side * side), side)
    return before, after, r, c


def test_buffer_control_is_unbiased_with_no_displacement():
    """Synthetic cells, treated = busy cells picked on the before period, buffers = their 8 neighbours, no
    displacement anywhere: the buffer interval (rings round equally busy untreated cells) excludes 0 at about the
    nominal rate, and the buffer estimate is centred on 0."""
    from hotspots.evaluation.inference import ring_counts

    rng = np.random.default_rng(33)
    excl, ests = 0, []
    n_designs = 120
    for i in range(n_designs):
        b, a, r, c = _ring_world(rng)
        sel = rng.choice(np.argsort(-b)[:150], 6, replace=False)
        near = (np.abs(r[:, None] - r[sel]) <= 1) & (np.abs(c[:, None] - c[sel]) <= 1)
        in_buf = near.any(axis=1)
        in_buf[sel] = False
        rest = ~in_buf
        rest[sel] = False
        pool = np.flatnonzero(rest)
        own = [np.flatnonzero(near[:, j] & in_buf) for j in range(sel.size)]
        db = np.array([b[o].sum() for o in own], float)
        da = np.array([a[o].sum() for o in own], float)
        ring = ring_counts(r[pool], c[pool], np.column_stack([b[pool], a[pool]]))
        res = placebo_did(b[sel], a[sel], b[rest].sum(), a[rest].sum(), b[pool], a[pool],
                          pool_history=ring[:, 0], treated_history=db, outcome=(db, da),
                          pool_outcome=(ring[:, 0], ring[:, 1]), n_draws=199, seed=i)
        excl += (res.pct_low > 0) or (res.pct_high < 0)
        ests.append(res.pct_change)
    assert excl / n_designs <= 0.10
    assert abs(np.median(ests)) < 3.0


def test_placebo_outcome_arguments_go_together():
    with pytest.raises(ValidationError, match="outcome and pool_outcome"):
        placebo_did([1, 2], [1, 2], 10, 10, [1, 2, 3], [1, 2, 3], outcome=([1, 2], [1, 2]))


def test_placebo_interval_is_widened_for_the_noise_of_the_placebo_median():
    """20 areas among the 120 busiest share stand-ins: the estimate (observed minus placebo median) varies
    more than one placebo set, and the widened interval's implied spread matches the estimates' real spread."""
    rng = np.random.default_rng(5)
    est, half, factor, excl = [], [], [], 0
    for i in range(150):
        b, a = _null_world(rng)
        sel = rng.choice(np.argsort(-b)[:120], 20, replace=False)
        rest = np.setdiff1d(np.arange(b.size), sel)
        res = placebo_did(b[sel], a[sel], b[rest].sum(), a[rest].sum(), b[rest], a[rest], n_draws=199, seed=i)
        e = np.log1p(res.pct_change / 100)
        est.append(e)
        half.append(np.log1p(res.pct_high / 100) - e)
        factor.append(res.centre_factor)
        excl += (res.pct_low > 0) or (res.pct_high < 0)
    implied_sd = np.mean(half) / 1.96
    assert np.mean(factor) > 1.05  # shared stand-ins: the median's own noise is not negligible
    assert 0.85 < implied_sd / np.std(est) < 1.2
    assert excl / 150 <= 0.08


# --------------------------------------------------------------------------- district clusters (shared changes)
def _district_world(rng, n_districts=20, per=40, sd_district=0.3):
    """Cells in districts; every cell of a district shares one after-period shock (no effect anywhere)."""
    district = np.repeat(np.arange(n_districts), per)
    level = rng.gamma(2.0, 40.0, district.size)
    shock = np.exp(rng.normal(0, sd_district, n_districts))[district]
    before = rng.poisson(level)
    after = rng.poisson(level * shock)
    return district, before, after


def test_district_variance_recovers_the_shared_component_and_is_zero_without_one():
    from hotspots.evaluation.inference import _district_variance

    rng = np.random.default_rng(3)
    est = {}
    for sd in (0.0, 0.25):
        vals = []
        for _ in range(30):
            d = np.repeat(np.arange(25), rng.integers(6, 12, 25))  # unequal district sizes
            level = rng.uniform(40, 60, d.size)
            e = rng.normal(0, sd, 25)[d] + rng.normal(0, 0.2, d.size)
            vals.append(_district_variance(e, level, level[:, None], d, 5, 20))
        est[sd] = float(np.mean(vals))
    assert est[0.0] < 0.004  # truncated at 0: a small positive mean
    assert 0.045 < est[0.25] < 0.08  # 0.25^2 = 0.0625
    assert np.isnan(_district_variance(np.zeros(6), np.ones(6), np.ones((6, 1)), np.zeros(6), 5, 3))  # one district


def _clustered_design(rng, per_district=4, n_chosen=3, sd_district=0.3):
    district, b, a = _district_world(rng, sd_district=sd_district)
    chosen = rng.choice(20, n_chosen, replace=False)
    sel = np.concatenate([rng.choice(np.flatnonzero(district == d), per_district, replace=False) for d in chosen])
    rest = np.setdiff1d(np.arange(b.size), sel)
    return district, sel, rest, (b[sel], a[sel], b[rest].sum(), a[rest].sum(), b[rest], a[rest])


def test_placebo_interval_covers_shared_district_changes_with_clusters():
    """Treated areas in 3 of 20 districts share their districts' changes; independent stand-ins do not.

    Without clusters the placebo interval excludes no change far too often; widened by the district design effect
    (the shared component estimated from the untreated places) it is near the nominal 5 %.
    """
    rng = np.random.default_rng(5)
    plain = clustered = 0
    n_sim = 150
    for i in range(n_sim):
        district, sel, rest, args = _clustered_design(rng)
        r0 = placebo_did(*args, n_draws=199, seed=i)
        r1 = placebo_did(*args, n_draws=199, seed=i, treated_cluster=district[sel], pool_cluster=district[rest])
        plain += bool(r0.pct_low > 0 or r0.pct_high < 0)
        clustered += bool(r1.pct_low > 0 or r1.pct_high < 0)
        assert r1.n_clusters == 3 and r1.cluster_factor > 1 and r1.pct_high - r1.pct_low > r0.pct_high - r0.pct_low
        assert (r1.p_value <= 0.05) == bool(r1.pct_low > 0 or r1.pct_high < 0)
    assert plain / n_sim > 0.15  # the placebo alone is far too narrow here
    assert 0.01 <= clustered / n_sim <= 0.08


def test_design_effect_is_one_when_areas_lie_in_different_districts():
    rng = np.random.default_rng(4)
    district, sel, rest, args = _clustered_design(rng, per_district=1, n_chosen=8)
    r0 = placebo_did(*args, n_draws=199, seed=3)
    r1 = placebo_did(*args, n_draws=199, seed=3, treated_cluster=district[sel], pool_cluster=district[rest])
    assert r1.cluster_factor == 1.0 and r1.district_sd > 0.1 and r1.n_clusters == 8
    assert (r1.pct_low, r1.pct_high, r1.p_value) == (r0.pct_low, r0.pct_high, r0.p_value)


def test_placebo_with_clusters_keeps_power_when_districts_do_not_share_changes():
    rng = np.random.default_rng(8)
    hits = 0
    for i in range(40):
        district, b, a = _district_world(rng, sd_district=0.0)
        sel = rng.choice(np.argsort(-b)[:200], 20, replace=False)
        a = a.copy()
        a[sel] = rng.binomial(a[sel], 0.7)  # a 30 % fall
        rest = np.setdiff1d(np.arange(b.size), sel)
        res = placebo_did(b[sel], a[sel], b[rest].sum(), a[rest].sum(), b[rest], a[rest], n_draws=199, seed=i,
                          treated_cluster=district[sel], pool_cluster=district[rest])
        hits += bool(res.pct_high < 0)
    assert hits >= 36


def _one_district_design():
    """Five treated areas all in district 4 of the synthetic world: (placebo_did args, district labels, treated, pool)."""
    district, b, a = _district_world(np.random.default_rng(2))
    sel = np.flatnonzero(district == 4)[:5]
    rest = np.setdiff1d(np.arange(b.size), sel)
    return (b[sel], a[sel], b[rest].sum(), a[rest].sum(), b[rest], a[rest]), district, sel, rest


def test_all_treated_areas_in_one_district_get_a_wider_interval_not_a_refusal():
    args, district, sel, rest = _one_district_design()
    plain = placebo_did(*args, n_draws=99, seed=1)
    res = placebo_did(*args, n_draws=99, seed=1, treated_cluster=district[sel], pool_cluster=district[rest])
    assert np.isfinite(res.pct_low) and np.isfinite(res.p_value) and res.n_clusters == 1
    assert res.cluster_factor > 1.2 and res.pct_high - res.pct_low > plain.pct_high - plain.pct_low
    assert "one district" in res.note and "cannot be told from a patrol effect" in res.note
    assert decide(pct=res.pct_change, low=res.pct_low, high=res.pct_high, n_areas=5, n_crimes=3000).verdict != "not estimable"


def test_one_district_study_area_says_the_district_component_is_not_estimable():
    args, district, sel, rest = _one_district_design()
    res = placebo_did(*args, n_draws=99, seed=1, treated_cluster=district[sel], pool_cluster=np.full(rest.size, 4))
    plain = placebo_did(*args, n_draws=99, seed=1)
    assert np.isnan(res.district_sd) and res.cluster_factor == 1.0 and (res.pct_low, res.pct_high) == (plain.pct_low, plain.pct_high)
    assert "could not be estimated" in res.note and "allows for" not in res.note


def test_pool_places_without_a_district_are_left_out():
    rng = np.random.default_rng(6)
    district, sel, rest, args = _clustered_design(rng)
    labels = district[rest].astype(object)
    labels[:40] = None  # the first district's untreated places have no label
    res = placebo_did(*args, n_draws=99, seed=1, treated_cluster=district[sel], pool_cluster=labels)
    assert np.isfinite(res.district_sd) and np.isfinite(res.pct_low)


def test_treated_cluster_needs_one_label_per_area():
    with pytest.raises(ValidationError, match="treated_cluster"):
        placebo_did([1, 2], [1, 2], 10, 10, [1, 2, 3], [1, 2, 3], treated_cluster=["a"], pool_cluster=[1, 1, 2])
    with pytest.raises(ValidationError, match="go together"):
        placebo_did([1, 2], [1, 2], 10, 10, [1, 2, 3], [1, 2, 3], treated_cluster=["a", "b"])


def test_unlabelled_places_neither_crash_nor_form_a_district():
    args, district, sel, rest = _one_district_design()
    # no pool place has a district: the district component is not estimable (no crash)
    res = placebo_did(*args, n_draws=99, seed=1, treated_cluster=district[sel], pool_cluster=[None] * rest.size)
    assert np.isnan(res.district_sd) and res.cluster_factor == 1.0 and "could not be estimated" in res.note
    # treated areas without a district share none: no widening, not "all in one district"
    res = placebo_did(*args, n_draws=99, seed=1, treated_cluster=[None, float("nan"), "", None, None],
                      pool_cluster=district[rest])
    plain = placebo_did(*args, n_draws=99, seed=1)
    assert res.cluster_factor == 1.0 and res.n_clusters == 5 and (res.pct_low, res.pct_high) == (plain.pct_low, plain.pct_high)
    assert "one district" not in res.note
