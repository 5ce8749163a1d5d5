"""Fast paths of the per-area analysis (issue 18, fifth round) against the code they replace.

The top-percent ranks by one sort vs pandas' rank; the demoted Gi* frame as a shallow copy leaves the
input frame untouched and equals the deep copy's result.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from hotspots.detect.analysis import _top_pct, _top_pct_reference


@pytest.mark.parametrize("case", ["random", "ties", "zeros", "negative_zero", "one", "empty", "nan", "tiny"])
def test_top_pct_is_pandas_rank(case):
    rng = np.random.default_rng(5)
    values = {
        "random": rng.gamma(0.5, 3.0, 5000),
        "ties": np.round(rng.gamma(0.5, 3.0, 5000), 1),
        "zeros": np.where(rng.random(3000) < 0.7, 0.0, rng.random(3000)),
        "negative_zero": np.array([-0.0, 0.0, 1.5, 1.5, -0.0, 3.0, 1e-300]),
        "one": np.array([2.5]),
        "empty": np.array([]),
        "nan": np.array([1.0, np.nan, 0.0, 2.0, 1.0]),
        "tiny": np.array([5e-324, 1e-320, 5e-324, 0.0]),
    }[case]
    got, ref = _top_pct(values), _top_pct_reference(values)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    assert got.tobytes() == ref.tobytes()


def _square_grid(n_side):
    import shapely

    from hotspots.geo.grid import make_grid

    return make_grid(shapely.box(0, 0, 100 * n_side, 100 * n_side), 100, crs="EPSG:27700")


def test_demoted_frame_is_the_deep_copy_route_and_leaves_the_input_alone():
    from hotspots.detect.gistar import gi_star
    from hotspots.detect.patrol import demote_empty_hot_cells
    from hotspots.geo.weights import grid_weights

    grid = _square_grid(12)
    counts = np.zeros(len(grid))
    counts[[30, 31, 80, 82, 100]] = [40, 25, 30, 28, 3]
    gi = gi_star(counts, grid_weights(grid, neighbourhood="queen", include_self=True))
    before = gi.copy()
    got = demote_empty_hot_cells(grid, gi, counts)
    assert (got["gi_test"] == "empty_cell").any()  # the fast path ran
    pd.testing.assert_frame_equal(gi, before, check_exact=True)  # the input is unchanged
    assert repr(gi.attrs) == repr(before.attrs)
    # the reference: a deep copy, the classes set by .loc
    hot = before["gi_class"].astype(str).str.startswith("hot").to_numpy()
    from hotspots.detect.patrol import bridge_cells

    keep, _ = bridge_cells(grid, hot, counts)
    ref = before.copy()
    ref["gi_test"] = ref["gi_test"].cat.add_categories(["empty_cell"])
    ref.loc[hot & ~keep, "gi_class"] = "not_significant"
    ref.loc[hot & ~keep, "gi_test"] = "empty_cell"
    pd.testing.assert_frame_equal(got, ref, check_exact=True)
    assert repr(got.attrs) == repr(ref.attrs)
    # writing into the result does not reach the input
    got.loc[got.index[0], "gi_z"] = 99.0
    assert gi["gi_z"].iloc[0] == before["gi_z"].iloc[0]
    assert sp.issparse(grid_weights(grid, neighbourhood="queen", include_self=True))


def _keep_cell_reference(cells):
    from hotspots.stages._hotspots_outputs import _CO_TYPE, _by_value

    keep = cells["count"].to_numpy() > 0
    keep |= _by_value(cells["gi_class"], lambda v: v != "not_significant", True)
    keep |= _by_value(cells["moran_class"], lambda v: v in _CO_TYPE, False)
    keep |= _by_value(cells["patrol_area_id"].fillna(""), lambda v: v != "", False)
    keep |= _by_value(cells["emerging_class"], lambda v: v != "no pattern detected", False)
    return keep


@pytest.mark.parametrize("kind", ["arrow", "chunked_arrow", "text", "object", "python_str"])
def test_keep_cell_in_arrow_is_the_factorized_route(kind, monkeypatch):
    from hotspots.detect._area_steps import _TEXT
    from hotspots.stages import _hotspots_outputs as outputs
    from hotspots.stages._hotspots_outputs import keep_cell

    rng = np.random.default_rng(3)
    n = 4000

    def pick(options):
        return [options[i] for i in rng.integers(0, len(options), n)]

    columns = {
        "count": rng.integers(0, 3, n) * (rng.random(n) < 0.2),
        "gi_class": pick(["not_significant"] * 6 + ["hot_99", "cold_95", None, "empty"]),
        "moran_class": pick(["not_significant"] * 6 + ["hotspot_HH", "outlier_LH", "isolated", None, "HH"]),
        "patrol_area_id": pick([""] * 8 + ["PA-1", None, " "]),
        "emerging_class": pick(["no pattern detected"] * 6 + ["new hot spot", None, ""]),
    }
    dtype = {"arrow": pd.StringDtype("pyarrow"), "chunked_arrow": pd.StringDtype("pyarrow"), "text": _TEXT,
             "object": object, "python_str": pd.StringDtype("python")}[kind]
    cells = pd.DataFrame({k: (v if k == "count" else pd.array(v, dtype=dtype)) for k, v in columns.items()})
    if kind == "chunked_arrow":  # as the layers' concatenation of areas gives them
        cells = pd.concat([cells.iloc[:1000], cells.iloc[1000:2500], cells.iloc[2500:]], ignore_index=True)
        assert cells["gi_class"].array._pa_array.num_chunks == 3
    ref = _keep_cell_reference(cells)
    used = []
    real = outputs._by_value
    monkeypatch.setattr(outputs, "_by_value", lambda *a: used.append(1) or real(*a))
    got = keep_cell(cells)
    assert (len(used) == 0) == isinstance(cells["gi_class"].array, pd.arrays.ArrowStringArray)
    assert got.dtype == bool and ref.dtype == bool
    assert np.array_equal(got, ref)
    assert 0 < got.sum() < n


@pytest.mark.parametrize("case", ["classes", "one_category", "empty", "missing", "unused_categories"])
def test_text_of_a_categorical_is_the_pd_array_route(case):
    import pyarrow as pa

    from hotspots.detect.analysis import _text_of, _text_of_reference

    rng = np.random.default_rng(11)
    classes = ["hot_99", "hot_95", "not_significant", "cold_95", "isolated \u00e9"]
    values = {
        "classes": pd.Categorical(rng.choice(classes, 3000), categories=classes),
        "one_category": pd.Categorical(["x"] * 10),
        "empty": pd.Categorical([], categories=classes),
        "missing": pd.Categorical(["hot_99", None, "cold_95"], categories=classes),
        "unused_categories": pd.Categorical(["cold_95"] * 5, categories=classes),
    }[case]
    series = pd.Series(values)
    if case == "missing":
        with pytest.raises(Exception):  # noqa: B017 -- the reference cannot take a missing code either
            _text_of_reference(series)
        with pytest.raises(Exception):  # noqa: B017
            _text_of(series)
        return
    got, ref = _text_of(series), _text_of_reference(series)
    assert type(got) is type(ref) and got.dtype == ref.dtype
    assert got._pa_array.type == ref._pa_array.type == pa.large_string()
    assert got._pa_array.equals(ref._pa_array) and got._pa_array.num_chunks == ref._pa_array.num_chunks
    assert pa.array(got).validate(full=True) is None
    pd.testing.assert_series_equal(pd.Series(got), pd.Series(ref), check_exact=True)


@pytest.mark.parametrize("seed", range(6))
def test_peak_cell_is_the_pandas_sort_first(seed):
    from hotspots.detect.tables import _peak_cell, _peak_cell_reference

    rng = np.random.default_rng(seed)
    cases = [np.array([], dtype=np.int64), np.array([0]), np.zeros(9, dtype=np.int64), np.array([3, 7, 7, 1]),
             np.array([1.0, np.nan, 4.0]), np.array([np.nan, np.nan]), np.array([2.0, -0.0, 0.0, 2.0])]
    for _ in range(200):
        n = int(rng.integers(1, 60))
        values = rng.poisson(rng.uniform(0.1, 5), n)
        cases.append(values if rng.random() < 0.5 else values.astype(float))
    for counts in cases:
        assert _peak_cell(counts) == _peak_cell_reference(counts), counts
