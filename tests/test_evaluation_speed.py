"""The evaluation's faster paths give, bit for bit, what the plain ones give (and the report's charts the same pixels).

Each shortcut is checked against the code it replaced, kept here as the
reference: statsmodels' GLM (through ``_glm.glm``) for :func:`fit_glm`, the
separate ``panel_effect`` / ``pre_trend_check`` calls for the shared panel,
pandas groupbys for the checks by integer codes, a full stable sort for the
placebo candidates, ``savefig(bbox_inches="tight")`` with Pillow's encoder
for the report's PNGs.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import math
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.genmod import families

from hotspots.evaluation import _glm
from hotspots.evaluation._glm import CountFit, fit_glm, glm
from tests.test_glm_fast import _panel as _glm_panel


def _bits(value) -> bytes:
    a = np.ascontiguousarray(np.atleast_1d(np.asarray(value)))
    return a.dtype.str.encode() + str(a.shape).encode() + a.tobytes()


def _same_fit(fast, slow) -> None:
    for attr in ("params", "bse", "mu", "pearson_chi2", "df_resid", "df_model", "normalized_cov_params"):
        assert _bits(getattr(fast, attr)) == _bits(getattr(slow, attr)), attr
        assert type(getattr(fast, attr)) is type(getattr(slow, attr)) or attr in ("params", "bse", "mu"), attr
    assert fast.converged == slow.converged
    assert fast.fit_history["iteration"] == slow.fit_history["iteration"]
    assert _bits(fast.fit_history["deviance"]) == _bits(slow.fit_history["deviance"])


# --------------------------------------------------------------------------- fit_glm: statsmodels' GLM fit, bit for bit
@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("overdispersed", [False, True])
def test_fit_glm_is_the_statsmodels_glm_fit_bit_for_bit(seed, overdispersed):
    y, design, offset, area = _glm_panel(seed, n_areas=12 + 3 * seed, n_months=8 + 2 * seed, overdispersed=overdispersed)
    for family in (families.Poisson(), families.NegativeBinomial(alpha=0.2 + seed / 10)):
        for groups in (area, None):
            cov = {} if groups is None else {"cov_type": "cluster", "cov_kwds": {"groups": groups}}
            with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
                warnings.simplefilter("ignore")
                slow = glm(y, design, family=family, offset=offset).fit(**cov)
                fast = fit_glm(y, design, family=family, offset=offset, cov_groups=groups)
            assert isinstance(fast, CountFit)
            _same_fit(fast, slow)
            assert np.array_equal(np.asarray(fast.cov_params()), np.asarray(slow.cov_params()))


def test_fit_glm_hands_what_it_does_not_reproduce_to_statsmodels():
    y, design, offset, area = _glm_panel(3)
    deficient = np.column_stack([design, design[:, -1]])  # a repeated column: not of full rank
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        for args, kwargs in [((y, deficient), {}), ((y.astype(int), design), {}),
                             ((y, design), {"offset": offset.astype(np.float32)}),
                             ((y, design), {"cov_groups": list(area)})]:
            fam = families.Poisson()
            got = fit_glm(*args, family=fam, **kwargs)
            assert not isinstance(got, CountFit)
        gaussian = fit_glm(y, design, family=families.Gaussian())
        assert not isinstance(gaussian, CountFit)
        np.testing.assert_array_equal(gaussian.params, glm(y, design, family=families.Gaussian()).fit().params)


def test_an_irls_step_the_normal_equations_cannot_take_goes_to_statsmodels(monkeypatch):
    y, design, offset, area = _glm_panel(5)
    monkeypatch.setattr(_glm, "_solve", lambda wexog, wendog: None)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        got = fit_glm(y, design, family=families.Poisson(), offset=offset, cov_groups=area)
    assert not isinstance(got, CountFit) and got.mle_settings["wls_method"] == "lstsq"


def test_glm_given_the_rank_is_the_model_that_computes_it():
    y, design, offset, _ = _glm_panel(1)
    rank = np.linalg.matrix_rank(design)
    plain, given = glm(y, design, family=families.Poisson(), offset=offset), \
        glm(y, design, family=families.Poisson(), offset=offset, rank=rank)
    for attr in ("df_model", "df_resid", "wnobs"):
        assert getattr(given, attr) == getattr(plain, attr) and type(getattr(given, attr)) is type(getattr(plain, attr))


def test_the_evaluation_fits_without_importing_statsmodels_glm():
    code = ("import sys\n"
            "from hotspots.evaluation.panel import panel_effect\n"
            "from hotspots.evaluation.synthetic import synthetic_evaluation_data\n"
            "p = synthetic_evaluation_data(n_treated=8, seed=1)\n"
            "panel_effect(p[p['role'] != 'buffer']); panel_effect(p[p['role'] != 'buffer'], family='negbin')\n"
            "print('statsmodels.genmod.generalized_linear_model' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- the panel: shared fits and checks
def _reference_fit(frame, regressor, *, family, cluster, wild=True):
    """The fixed-effects fit as it was: statsmodels' GLM (``_glm.glm``) for each fit, the Poisson fit made again for
    the negative binomial, a wild bootstrap whenever the family is Poisson and clustered."""
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

    from hotspots.evaluation._panel_fit import wild_score_p

    area_codes, areas = pd.factorize(frame["area"], sort=True)
    period_codes, periods = pd.factorize(frame["period"], sort=True)
    n, n_areas, n_periods = len(frame), len(areas), len(periods)
    design = np.zeros((n, n_areas + n_periods))
    rows = np.arange(n)
    design[:, 0] = 1.0
    design[rows[area_codes > 0], area_codes[area_codes > 0]] = 1.0
    design[rows[period_codes > 0], n_areas - 1 + period_codes[period_codes > 0]] = 1.0
    design[:, -1] = regressor
    y = frame["y"].to_numpy(float)
    offset = np.asarray(frame["offset"], dtype=float) * np.ones(n)
    kw = {"cov_type": "cluster", "cov_kwds": {"groups": area_codes}} if cluster else {}
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", PerfectSeparationWarning)
        result = glm(y, design, family=families.Poisson(), offset=offset).fit(**kw)
        notes, nb_alpha = [], float("nan")
        if family == "negbin":
            mu = result.mu
            nb_alpha = float(np.sum((y - mu) ** 2 - y) / np.sum(mu ** 2))
            if not nb_alpha > 1e-8:
                notes.append(f"no overdispersion found (alpha estimate {nb_alpha:.3g}); "
                             "the negative binomial fit is effectively Poisson")
                nb_alpha = 1e-8
            result = glm(y, design, family=families.NegativeBinomial(alpha=nb_alpha), offset=offset).fit(**kw)
        if not result.converged:
            notes.append("the model did not converge; treat the estimate with caution")
        p_wild = float("nan")
        if cluster and family == "poisson" and wild:
            restricted = glm(y, design[:, :-1], family=families.Poisson(), offset=offset).fit()
            p_wild = wild_score_p(y, design, np.asarray(restricted.mu), area_codes)
    return {"coef": float(np.asarray(result.params)[-1]), "se": float(np.asarray(result.bse)[-1]),
            "nb_alpha": nb_alpha,
            "dispersion": float(result.pearson_chi2 / result.df_resid) if result.df_resid > 0 else float("nan"),
            "n_obs": n, "n_areas": n_areas, "n_periods": n_periods,
            "cov_type": "cluster-robust by area" if cluster else "model-based", "notes": notes, "p_wild": p_wild}


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return _bits(a) == _bits(b)
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, BaseException):
        return type(a) is type(b) and str(a) == str(b)
    return type(a) is type(b) and a == b


def _synthetic_frame(seed: int, n_treated: int = 8) -> pd.DataFrame:
    from hotspots.evaluation.panel import _prepare_panel
    from hotspots.evaluation._checks import _Problems
    from hotspots.evaluation.synthetic import synthetic_evaluation_data

    panel = synthetic_evaluation_data(n_treated=n_treated, seed=seed)
    panel = panel[panel["role"] != "buffer"]
    return _prepare_panel(_Problems("t"), panel, area_col="area", period_col="month", count_col="count",
                          treated_col="treated", post_col="post", exposure_col=None, family="poisson",
                          cluster=True, level=0.95)


@pytest.mark.parametrize("seed", range(4))
def test_shared_fits_are_the_fits_made_one_by_one(seed):
    from hotspots.evaluation._panel_fit import _fit_families, _fit_fixed_effects
    from hotspots.evaluation.panel import _drop_empty

    frame, _ = _drop_empty(_synthetic_frame(seed, n_treated=3 + seed))
    regressor = (frame["treated"] & frame["post"]).to_numpy(float)
    for cluster in (True, False):
        both = _fit_families(frame, regressor, ("poisson", "negbin"), cluster=cluster)
        for family in ("poisson", "negbin"):
            ref = _reference_fit(frame, regressor, family=family, cluster=cluster)
            assert _same(both[family], ref), family
            assert _same(_fit_fixed_effects(frame, regressor, family=family, cluster=cluster), ref)
        no_wild = _fit_fixed_effects(frame, regressor, family="poisson", cluster=cluster, wild=False)
        ref = _reference_fit(frame, regressor, family="poisson", cluster=cluster, wild=False)
        assert _same(no_wild, ref) and math.isnan(no_wild["p_wild"])


def _panel_frame(counts, n_treated, months, after_start):
    """The panel ``tables._panel`` builds."""
    units = list(range(len(counts)))
    return pd.DataFrame({
        "area": np.repeat([f"u{u}" for u in units], len(months)),
        "month": np.tile(months, len(units)),
        "count": np.asarray(counts).ravel().astype(np.int64),
        "treated": np.repeat([True] * n_treated + [False] * (len(units) - n_treated), len(months)),
    }).assign(post=lambda f: f["month"] >= after_start)


@pytest.mark.parametrize("case", ["plain", "empty units and months", "no treated crime after", "two months before"])
def test_the_panel_checked_once_gives_the_three_calls(case):
    from hotspots.evaluation.panel import panel_effect, panel_effects_and_pre_trend, pre_trend_check

    rng = np.random.default_rng(7)
    months = [f"2023-{m:02d}" for m in range(1, 13)] + [f"2024-{m:02d}" for m in range(1, 7)]
    counts = rng.poisson(rng.gamma(2.0, 3.0, (24, 1)), (24, len(months)))
    after = "2024-01"
    if case == "empty units and months":
        counts[[3, 15]] = 0
        counts[:, 5] = 0
    elif case == "no treated crime after":
        counts[:6, 12:] = 0
    elif case == "two months before":
        months, counts, after = months[10:], counts[:, 10:], "2024-01"
    frame = _panel_frame(counts, 6, months, after)
    shared = panel_effects_and_pre_trend(frame)
    calls = [lambda: panel_effect(frame), lambda: panel_effect(frame, family="negbin"), lambda: pre_trend_check(frame)]
    for got, call in zip(shared, calls):
        try:
            want = call()
        except Exception as exc:  # noqa: BLE001  (the same exception either way)
            want = exc
        assert _same(got, want)


def test_a_panel_that_fails_a_check_is_left_to_the_public_functions():
    from hotspots.evaluation.panel import panel_effects_and_pre_trend

    frame = _panel_frame(np.ones((4, 6), int), 2, [f"2024-{m:02d}" for m in range(1, 7)], "2024-04")
    assert panel_effects_and_pre_trend(pd.concat([frame, frame.iloc[:1]])) is None  # a repeated (area, month)
    assert panel_effects_and_pre_trend(frame.assign(post=False)) is None  # no after months


def test_checks_and_drops_by_codes_are_the_groupbys():
    from hotspots.evaluation.panel import _consistent, _drop_empty, _drop_empty_grouped

    rng = np.random.default_rng(3)
    for trial in range(30):
        n_a, n_p = rng.integers(1, 8, 2)
        f = pd.DataFrame({"area": np.repeat([f"a{i}" for i in range(n_a)], n_p),
                          "period": np.tile([f"2024-{m + 1:02d}" for m in range(n_p)], n_a),
                          "y": rng.poisson(0.6, n_a * n_p).astype(float),
                          "treated": np.repeat(rng.random(n_a) < 0.4, n_p),
                          "post": np.tile(rng.random(n_p) < 0.5, n_a), "offset": 0.0})
        if trial % 5 == 1:
            f = f.sample(frac=1.0, random_state=trial)  # any row order
        if trial % 5 == 2:
            f = pd.concat([f, f.iloc[:1]])
        if trial % 5 == 3:
            f.iloc[0, f.columns.get_loc("treated")] = not f["treated"].iloc[0]
        if trial % 5 == 4:
            f.iloc[-1, f.columns.get_loc("post")] = not f["post"].iloc[-1]
        grouped = (not f.duplicated(["area", "period"]).any() and (f.groupby("area")["treated"].nunique() <= 1).all()
                   and (f.groupby("period")["post"].nunique() <= 1).all())
        assert _consistent(f) == grouped
        got, ref = _drop_empty(f), _drop_empty_grouped(f)
        pd.testing.assert_frame_equal(got[0], ref[0])
        assert got[1] == ref[1]


def test_month_numbers_of_month_labels_are_pandas():
    from hotspots.evaluation._checks import _Problems
    from hotspots.evaluation.panel import _month_number, _yyyy_mm_numbers

    labels = pd.Series(["2024-01", "2023-12", "1999-07", "2024-01", "2101-10"])
    for values in (labels, labels.astype(object), labels.astype("str")):
        got = _yyyy_mm_numbers(values)
        stamps = pd.to_datetime(values)
        assert _bits(got) == _bits((stamps.dt.year * 12 + stamps.dt.month).to_numpy(float))
        assert _bits(_month_number(values, "month", _Problems("t"))) == _bits(got)
    for other in (pd.Series(["2024-1", "2024-01"]), pd.Series(["2024-13"]), pd.Series(["2024-01-05"]),
                  pd.Series(["0000-01"]), pd.Series([202401, 202402]), pd.Series(["2024-01", None]),
                  pd.Series(pd.to_datetime(["2024-01-01"])), pd.Series([], dtype=object)):
        assert _yyyy_mm_numbers(other) is None


# --------------------------------------------------------------------------- placebo inference
def test_placebo_candidates_are_the_first_of_a_stable_sort():
    from hotspots.evaluation.inference import _candidates

    rng = np.random.default_rng(11)
    for trial in range(40):
        n_t, n_p, n_f = rng.integers(1, 12), rng.integers(1, 300), rng.integers(1, 10)
        target = rng.integers(0, 6, (n_t, n_f)).astype(float)  # small integers: many ties
        pool = rng.integers(0, 6, (n_p, n_f)).astype(float)
        if trial % 4 == 0:
            pool[rng.integers(0, n_p, 5)] = target[0]  # exact ties at distance 0
        k = int(rng.integers(1, n_p + 2))
        d = np.abs(np.sqrt(target)[:, None, :] - np.sqrt(pool)[None, :, :]).sum(axis=2)
        want = np.argsort(d, axis=1, kind="stable")[:, :k]
        got = _candidates(target, pool, k)
        assert got.dtype == want.dtype and np.array_equal(got, want), (trial, k)


def test_distinct_placebo_sets_are_counted_as_sorted_tuples():
    rng = np.random.default_rng(2)
    for n_areas in (1, 3, 20):
        sets = rng.integers(0, 6, (500, n_areas))
        assert int(np.unique(np.sort(sets, axis=1), axis=0).shape[0]) == len({tuple(sorted(s)) for s in sets.tolist()})


def test_rate_ratios_in_one_call_are_those_of_separate_calls():
    from hotspots.evaluation.did import did_rate_ratio

    rng = np.random.default_rng(4)
    a = [rng.integers(0, 400, 30) for _ in range(4)]
    b = [rng.integers(0, 40, 30) for _ in range(4)]
    both = did_rate_ratio(*(np.concatenate([x, y]) for x, y in zip(a, b)))
    for part, rows in ((did_rate_ratio(*a), both.iloc[:30]), (did_rate_ratio(*b), both.iloc[30:])):
        for col in part.columns:
            assert _bits(part[col].to_numpy()) == _bits(rows[col].to_numpy()) if part[col].dtype.kind == "f" \
                else list(part[col]) == list(rows[col])
    one = did_rate_ratio([120, 80], [100, 95], [4000, 300], [4400, 310])
    for i, args in enumerate([(120, 100, 4000, 4400), (80, 95, 300, 310)]):
        single = did_rate_ratio(*args).iloc[0]
        assert all(_same(single[c], one.iloc[i][c]) for c in one.columns)


def test_areas_well_inside_the_study_area_are_not_clipped():
    import shapely
    from shapely.geometry import box

    from hotspots.evaluation.tables import _clip_to

    study = box(0, 0, 10_000, 10_000)
    inside = np.array([box(100 * i, 100, 100 * i + 90, 190) for i in range(1, 20)])
    clipped, lost = _clip_to(inside, study)
    ref = 1 - shapely.area(shapely.intersection(inside, study)) / shapely.area(inside)
    assert clipped is None and not (lost > 0.01).any() and not (ref > 0.01).any()
    straddling = np.append(inside, box(9_900, 100, 10_100, 300))
    clipped, lost = _clip_to(straddling, box(0, 0, 10_000, 10_000))
    ref = 1 - shapely.area(shapely.intersection(straddling, study)) / shapely.area(straddling)
    assert clipped is not None and _bits(lost) == _bits(ref) and (lost > 0.01).sum() == 1


def test_an_area_beyond_the_study_area_is_clipped_and_said_so():
    from shapely.geometry import box

    from hotspots.evaluation._analysis import _evaluate_areas
    from hotspots.evaluation.areas import TreatedAreas
    from hotspots.geo.aggregate import Period
    from tests.test_evaluate import AFTER, BEFORE, GROUPS, MONTHS, _districts, _treated, synthetic_points

    districts, treated = _districts(), _treated()
    points = synthetic_points(treated, districts)
    treated.loc[5, "geometry"] = box(19_800, 4000, 20_300, 4500)  # half beyond the east edge
    result = _evaluate_areas(points, TreatedAreas(areas=treated, source="file", description="squares",
                                                  illustrative=False, selected_on_counts=False),
                             districts, months_present=MONTHS, before=Period("b", tuple(BEFORE)),
                             after=Period("a", tuple(AFTER)), crime_types=GROUPS)
    assert any("1 treated area(s) extend beyond the study area" in n for n in result.meta["notes"])
    km2 = result.areas_table.drop_duplicates("area_code").set_index("area_code")["area_km2"]
    assert km2["T6"] == pytest.approx(0.2 * 0.5) and km2["T1"] == pytest.approx(0.25)


# --------------------------------------------------------------------------- the report's PNGs
def _old_png(fig, *, close: bool = True) -> str:
    """The report's PNG as it was made: ``savefig(bbox_inches="tight")`` at 130 dpi, Pillow's encoder
    (``close=False``: the figure is kept, as ``_monthly_charts`` asks)."""
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from hotspots.render._agg_text import FastTextCanvas

    buf = io.BytesIO()
    canvas = FastTextCanvas(fig)  # the same text drawing as before, matplotlib's own print_png
    assert type(canvas).print_png is FigureCanvasAgg.print_png
    fig.savefig(buf, format="png", dpi=130, bbox_inches="tight")
    if close:
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _pixels(b64: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGBA"))


@pytest.fixture(scope="module")
def evaluation_result():
    from hotspots.evaluation._analysis import _evaluate_areas
    from hotspots.evaluation.areas import TreatedAreas
    from hotspots.geo.aggregate import Period
    from hotspots.months import month_range
    from tests.test_evaluate import AFTER, BEFORE, GROUPS, MONTHS, _districts, _treated, synthetic_points

    districts, treated = _districts(), _treated(["Town Centre", "A much longer area name, Ward 12", "Area 3",
                                                   "Area 4", "Area 5", "Area 6"])
    return _evaluate_areas(
        synthetic_points(treated, districts), TreatedAreas(areas=treated, source="file", description="squares",
                                                           illustrative=False, selected_on_counts=False),
        districts, months_present=MONTHS, before=Period("b", tuple(BEFORE)), after=Period("a", tuple(AFTER)),
        crime_types=GROUPS, all_months=month_range("2023-01", "2025-04"))


def test_report_charts_and_map_have_the_pixels_tight_savefig_gave(evaluation_result, monkeypatch):
    from hotspots.render import evaluation_report as er

    res = evaluation_result
    charts = {ct: er.monthly_chart(res.monthly, ct, res.meta) for ct in res.meta["crime_types"]}
    charts["map"] = er.area_map(res)
    monkeypatch.setattr(er, "_png", _old_png)
    monkeypatch.setattr(er, "_png_canvas_class", lambda: __import__("hotspots.render._agg_text",
                                                                     fromlist=["x"]).FastTextCanvas)
    before = {ct: er.monthly_chart(res.monthly, ct, res.meta) for ct in res.meta["crime_types"]}
    before["map"] = er.area_map(res)
    for name, b64 in charts.items():
        new, old = _pixels(b64), _pixels(before[name])
        assert new.shape == old.shape and np.array_equal(new, old), name
        assert b64 != before[name]  # (encoded without Pillow's row filters: other bytes, the same image)
