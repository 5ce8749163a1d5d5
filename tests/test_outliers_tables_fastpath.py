"""outlier_table joining plain arrays once gives the table the frame-per-crime-type version gave (kept here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hotspots.outliers._areas import area_info
from hotspots.outliers.columns import FLAG_NO_RECORDS, LEVELS, SMALL_EXPECTED, limit_columns
from hotspots.outliers.funnel import exact_poisson_interval, funnel_outliers
from hotspots.outliers.tables import outlier_table


def _reference_outlier_table(totals, areas, *, levels=LEVELS, adjustment="multiplicative",
                             small_expected=SMALL_EXPECTED):
    """outlier_table as it was: a frame per crime type, columns assigned one by one, then pd.concat."""
    info = area_info(areas)
    limits = limit_columns(levels)
    codes = list(info.index)
    population = info["population"].to_numpy()
    frames = []
    estimates = {}
    for crime_type, sub in totals.groupby("crime_type", sort=False):
        observed = sub.set_index("area_code")["count"].reindex(codes, fill_value=0).to_numpy(dtype=float)
        is_group = bool(sub["is_group"].iloc[0])
        if observed.sum() == 0:
            frame = pd.DataFrame({"area_code": codes, "count": observed, "population": population,
                                  "rate_per_1000": 0.0, "county_rate_per_1000": 0.0, "expected": 0.0})
            for column in ("ratio", "z", "p", "z_adjusted", *limits, "phi", "tau2"):
                frame[column] = np.nan
            frame["flag_unadjusted"] = FLAG_NO_RECORDS
            frame["flag"] = FLAG_NO_RECORDS
            frame["overdispersed"] = False
            frame["adjustment"] = "none"
        else:
            res = funnel_outliers(observed, population, names=codes, levels=levels, adjustment=adjustment)
            od = res.attrs["overdispersion"]
            frame = res.reset_index(drop=True).rename(columns={"area": "area_code", "observed": "count"})
            frame["flag_unadjusted"] = frame["flag_unadjusted"].astype(str)
            frame["flag"] = frame["flag"].astype(str)
            frame["county_rate_per_1000"] = res.attrs["reference_rate_per_1000"]
            frame["phi"] = od["phi"]
            frame["tau2"] = od["tau2"]
            frame["overdispersed"] = bool(od["overdispersed"])
            frame["adjustment"] = od["adjustment"] if od["applied"] else "none"
            estimates[crime_type] = {**od, "is_group": is_group,
                                     "county_rate_per_1000": res.attrs["reference_rate_per_1000"]}
        frame["crime_type"] = crime_type
        frame["is_group"] = is_group
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    out["area_name"] = out["area_code"].map(info["area_name"])
    lower, upper = exact_poisson_interval(out["count"].to_numpy(), level=0.95)
    out["rate_ci95_lower"] = 1000.0 * lower / out["population"]
    out["rate_ci95_upper"] = 1000.0 * upper / out["population"]
    out["count"] = out["count"].astype(np.int64)
    out["small_numbers"] = out["expected"] < small_expected
    out["rank_in_county"] = (out.groupby("crime_type", sort=False)["rate_per_1000"]
                             .rank(ascending=False, method="min").astype(np.int64))
    columns = ["area_code", "area_name", "crime_type", "is_group", "count", "population", "rate_per_1000",
               "rate_ci95_lower", "rate_ci95_upper", "county_rate_per_1000", "expected", "ratio", "z", "p",
               "z_adjusted", *limits, "flag_unadjusted", "flag", "phi", "tau2", "overdispersed",
               "adjustment", "small_numbers", "rank_in_county"]
    out = out[columns]
    out.attrs["overdispersion"] = estimates
    return out


def _inputs(seed=0, n_areas=9, types=("Burglary", "All crime", "Drugs", "Robbery", "ASB"), empty=("Robbery",)):
    rng = np.random.default_rng(seed)
    areas = pd.DataFrame({"area_code": [f"E{i:02d}" for i in range(n_areas)],
                          "area_name": [f"Area {i}" for i in range(n_areas)],
                          "population": rng.integers(20_000, 160_000, n_areas)})
    rows = []
    for t in types:
        for i, code in enumerate(areas["area_code"]):
            if t == "Drugs" and i == 3:
                continue  # an area without a row: count 0
            mean = 0.0 if t in empty else float(rng.gamma(2.0, 300.0))
            rows.append({"area_code": code, "crime_type": t, "is_group": t == "All crime",
                         "count": int(rng.poisson(mean))})
    return pd.DataFrame(rows), areas


def _assert_same(totals, areas, **kw):
    expected = _reference_outlier_table(totals, areas, **kw)
    got = outlier_table(totals, areas, **kw)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert list(got.attrs) == ["overdispersion"]
    assert pd.Series(got.attrs["overdispersion"]).to_dict().keys() == expected.attrs["overdispersion"].keys()
    for key, od in expected.attrs["overdispersion"].items():
        assert got.attrs["overdispersion"][key] == od
    return got


@pytest.mark.parametrize("adjustment", ["multiplicative", "additive"])
def test_outlier_table_equals_the_frame_per_type_version(adjustment):
    totals, areas = _inputs()
    got = _assert_same(totals, areas, adjustment=adjustment)
    assert (got["flag"] == FLAG_NO_RECORDS).sum() == 9  # the empty type went through its own branch
    assert got["overdispersed"].any() and not got["overdispersed"].all()
    _assert_same(totals, areas, adjustment=adjustment, levels=(0.9,))


def test_outlier_table_edge_cases():
    totals, areas = _inputs(seed=3, n_areas=2, types=("Burglary",), empty=())
    _assert_same(totals, areas)  # two areas, one type
    totals, areas = _inputs(seed=4, types=("Robbery",))
    _assert_same(totals, areas)  # every type without records
    totals, areas = _inputs(seed=5)
    _assert_same(totals[totals["crime_type"] == "Burglary"].assign(count=0).pipe(
        lambda t: pd.concat([t, totals[totals["crime_type"] != "Burglary"]])), areas)  # the first type empty
    with pytest.raises(ValueError) as want:
        _reference_outlier_table(totals.iloc[:0], areas)
    with pytest.raises(ValueError) as got:
        outlier_table(totals.iloc[:0], areas)
    assert str(got.value) == str(want.value)


# ----------------------------------------------------------------------------- funnel_outliers' frame built at once
from hotspots.outliers.funnel import _flag_against_limits  # noqa: E402


def _frame_column_by_column(df: pd.DataFrame, levels) -> pd.DataFrame:
    """The frame as funnel_outliers built it before: nine columns, then each limit and the flags assigned in turn."""
    first = ["area", "observed", "population", "rate_per_1000", "expected", "ratio", "z", "p", "z_adjusted"]
    old = pd.DataFrame({c: df[c].to_numpy() for c in first}, index=df.index)
    for column in [c for c in df.columns if c not in first and c not in ("flag_unadjusted", "flag")]:
        old[column] = df[column].to_numpy()
    ratio = df["ratio"].to_numpy()
    old["flag_unadjusted"] = _flag_against_limits(ratio, old, levels)
    old["flag"] = _flag_against_limits(ratio, old, levels, suffix="_adjusted")
    old.attrs = dict(df.attrs)
    return old


@pytest.mark.parametrize("adjustment", ["multiplicative", "additive"])
@pytest.mark.parametrize("levels", [(0.95, 0.998), (0.9,)])
def test_funnel_outliers_frame_as_before(adjustment, levels):
    rng = np.random.default_rng(11)
    population = rng.integers(5_000, 200_000, 40).astype(float)
    for spread in (0.0, 0.4):  # Poisson only (no adjustment applied) and overdispersed (adjusted)
        observed = rng.poisson(0.05 * population * rng.lognormal(0.0, spread, 40)).astype(float)
        got = funnel_outliers(observed, population, names=[f"A{i}" for i in range(40)], levels=levels,
                              adjustment=adjustment)
        pd.testing.assert_frame_equal(got, _frame_column_by_column(got, levels), check_exact=True)
        assert isinstance(got["flag"].dtype, pd.CategoricalDtype)
        limits = {c: got[c] for c in got.columns if c.startswith(("lower_", "upper_"))}  # a mapping or a frame
        assert (_flag_against_limits(got["ratio"].to_numpy(), limits, levels, suffix="_adjusted")
                == _flag_against_limits(got["ratio"].to_numpy(), got, levels, suffix="_adjusted")).all()


# ----------------------------------------------------------------------------- the report's per-CSP cuts
from test_outliers import synthetic  # noqa: E402,F401  (the synthetic results, a fixture)


def test_rows_of_equals_the_boolean_mask(synthetic):  # noqa: F811
    from hotspots.render.outliers_report import _Cuts

    res = synthetic["results"]
    cuts = _Cuts(res)
    lsoas = synthetic["lsoas"]
    frames = [(res.highlights, "area_code"), (res.concentration, "area_code"), (res.funnel_picks, "area_code"),
              (res.notable_changes, "area_code"), (res.busiest_lsoas, "csp_code"), (lsoas, "district_code")]
    for frame, column in frames:
        codes = list(dict.fromkeys(frame[column])) + ["not there"]
        assert len(codes) > 1 or column == "area_code"
        for code in codes:
            want = frame[frame[column] == code]
            got = cuts.rows_of(frame, column, code)
            pd.testing.assert_frame_equal(got, want, check_exact=True)
            assert type(got) is type(want)
    assert cuts.county_concentration("All crime").equals(
        res.concentration[(res.concentration["area_type"] == "force") & (res.concentration["crime_type"] == "All crime")])


# ----------------------------------------------------------------------------- funnel_curves' frames built at once
from hotspots._validate import level_label  # noqa: E402
from hotspots.outliers.columns import FUNNEL_COLUMNS  # noqa: E402
from hotspots.outliers.funnel import _funnel_limits_sharing, funnel_limits  # noqa: E402
from hotspots.outliers.tables import funnel_curves  # noqa: E402


def _reference_funnel_curves(table, *, levels=LEVELS, n_points=120, population_range=None):
    """funnel_curves as it was: a frame per crime type with its limit columns assigned one by one."""
    if population_range is None:
        population_range = (0.8 * float(table["population"].min()), 1.25 * float(table["population"].max()))
    grid = np.geomspace(max(population_range[0], 1.0), population_range[1], n_points)
    frames = []
    for crime_type, sub in table.groupby("crime_type", sort=False):
        first = sub.iloc[0]
        rate_1000 = float(first["county_rate_per_1000"])
        if not rate_1000 > 0:
            continue
        expected = rate_1000 / 1000.0 * grid
        if first["adjustment"] == "multiplicative":
            plain, adjusted = _funnel_limits_sharing(
                expected, [{}, {"adjustment": "multiplicative", "phi": float(first["phi"])}], levels=levels)
        elif first["adjustment"] == "additive":
            plain, adjusted = _funnel_limits_sharing(
                expected, [{}, {"adjustment": "additive", "tau2": float(first["tau2"])}], levels=levels)
        else:
            plain = funnel_limits(expected, levels=levels)
            adjusted = plain
        frame = pd.DataFrame({"crime_type": crime_type, "population": grid, "expected": expected,
                              "county_rate_per_1000": rate_1000})
        for level in levels:
            label = level_label(level)
            for side in ("lower", "upper"):
                frame[f"rate_{side}_{label}"] = plain[f"{side}_{label}"].to_numpy() * rate_1000
                frame[f"rate_{side}_{label}_adjusted"] = adjusted[f"{side}_{label}"].to_numpy() * rate_1000
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=FUNNEL_COLUMNS)
    return pd.concat(frames, ignore_index=True)[FUNNEL_COLUMNS]


@pytest.mark.parametrize("adjustment", ["multiplicative", "additive"])
def test_funnel_curves_as_before(adjustment):
    totals, areas = _inputs(seed=8)
    table = outlier_table(totals, areas, adjustment=adjustment)
    assert set(table["adjustment"]) >= {"none", adjustment}  # adjusted, unadjusted and empty types
    for kw in ({}, {"n_points": 5, "population_range": (10.0, 5e5)}):
        pd.testing.assert_frame_equal(funnel_curves(table, **kw), _reference_funnel_curves(table, **kw),
                                      check_exact=True)
    empty = table.assign(county_rate_per_1000=0.0)
    pd.testing.assert_frame_equal(funnel_curves(empty), _reference_funnel_curves(empty), check_exact=True)
