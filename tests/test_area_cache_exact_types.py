"""The area cache's cheap check (hotspots.detect._area_tables._exact_by_types, used by hotspots.detect._area_cache).

An entry is kept only once it is shown to give back exactly what the analysis gave. Where every table is of
types Arrow stores bit for bit, that is shown from the types (no read-back); anything else is read back and
compared value by value, as before. Checked here:

* the hotspot analysis' own results take the cheap path, and a hit is still identical (an independent asserter);
* the cheap check never says "exact" where the read-back comparison finds a difference (hypothesis, over
  frames of many dtypes and awkward values: NaNs of other bits, -0.0, infinities, missing text, text in
  python storage, objects, categoricals, dates, empty frames);
* a NaN of other bits (x86's 0/0) and an object column fall back to the read-back comparison, which then keeps
  or refuses the entry as before.

Synthetic data of tests/test_hotspots_stage.py (no real data).
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_area_cache import _assert_same_result, _key, analysed  # noqa: F401 -- the fixture

from hotspots.detect import _area_cache as ac

NEGATIVE_NAN = np.array([0xFFF8000000000000], dtype=np.uint64).view(np.float64)[0]


def _read_back_calls(monkeypatch) -> list:
    calls = []
    real = ac._read_entry
    monkeypatch.setattr(ac, "_read_entry", lambda *a, **k: calls.append(a) or real(*a, **k))
    return calls


@pytest.mark.parametrize("which", ["county", "district"])
def test_the_analysis_results_are_shown_exact_by_their_types(analysed, tmp_path, monkeypatch, which):  # noqa: F811
    inputs, cfg, results = analysed
    result = results[which]
    calls = _read_back_calls(monkeypatch)
    cache = ac.AreaCache(tmp_path)
    key = _key(inputs, result.area, cfg, patrol=which == "district")
    assert cache.store(key, result) is not None
    assert calls == []  # not read back: shown exact by the types
    hit = cache.load(key, result.area)
    assert len(calls) == 1  # the load
    _assert_same_result(result, hit)


def _with_cells_value(result, value):
    """A copy of ``result`` with one float value of the first selection's cells set to ``value``."""
    changed = copy.deepcopy(result)
    sel = next(iter(changed.selections.values()))
    cells = sel.cells
    column = next(c for c in cells.columns if cells[c].dtype == np.float64)
    values = cells[column].to_numpy().copy()
    values[0] = value
    cells[column] = values
    return changed


def test_a_nan_of_other_bits_is_read_back_and_not_kept(analysed, tmp_path, monkeypatch):  # noqa: F811
    inputs, cfg, results = analysed
    result = _with_cells_value(results["district"], NEGATIVE_NAN)
    calls = _read_back_calls(monkeypatch)
    cache = ac.AreaCache(tmp_path)
    assert cache.store(_key(inputs, result.area, cfg), result) is None  # Arrow gives back a NaN of other bits
    assert len(calls) == 1  # it was compared value by value
    assert [p for p in tmp_path.iterdir()] == []


def test_an_ordinary_nan_stays_on_the_cheap_path(analysed, tmp_path, monkeypatch):  # noqa: F811
    inputs, cfg, results = analysed
    result = _with_cells_value(results["district"], np.nan)
    calls = _read_back_calls(monkeypatch)
    cache = ac.AreaCache(tmp_path)
    key = _key(inputs, result.area, cfg)
    assert cache.store(key, result) is not None and calls == []
    _assert_same_result(result, cache.load(key, result.area))


@pytest.mark.parametrize("values, kept", [([b"a", b"b"], True), (["a", "b"], False)])
def test_an_object_column_is_compared_value_by_value(analysed, tmp_path, monkeypatch, values, kept):  # noqa: F811
    """Bytes come back as they were (kept); text in an object column comes back as pandas' text type (not kept)."""
    inputs, cfg, results = analysed
    result = copy.deepcopy(results["district"])
    sel = next(iter(result.selections.values()))
    n = len(sel.cells)
    sel.cells["note"] = pd.Series(values * (n // 2) + values[:1] * (n % 2), dtype=object)
    assert sel.cells["note"].dtype == object
    calls = _read_back_calls(monkeypatch)
    cache = ac.AreaCache(tmp_path)
    key = _key(inputs, result.area, cfg)
    assert (cache.store(key, result) is not None) is kept
    assert len(calls) == 1  # read back and compared
    if kept:
        _assert_same_result(result, cache.load(key, result.area))


# --------------------------------------------------------------------------- never "exact" when it is not
_FLOATS = st.one_of(st.floats(allow_nan=False), st.sampled_from([np.nan, NEGATIVE_NAN, -0.0, np.inf, -np.inf]))
_TEXT = st.one_of(st.none(), st.text(max_size=4))


def _floats(values, dtype: str) -> np.ndarray:
    with np.errstate(over="ignore"):  # large doubles become infinities in float32, as they would in the analysis
        out = np.array(values, "float64").astype(dtype)
    return out


def _column(kind: str, n: int):
    if kind == "int64":
        return st.lists(st.integers(-2**63, 2**63 - 1), min_size=n, max_size=n).map(lambda v: np.array(v, "int64"))
    if kind == "uint8":
        return st.lists(st.integers(0, 255), min_size=n, max_size=n).map(lambda v: np.array(v, "uint8"))
    if kind == "bool":
        return st.lists(st.booleans(), min_size=n, max_size=n).map(lambda v: np.array(v, bool))
    if kind in ("float64", "float32"):
        return st.lists(_FLOATS, min_size=n, max_size=n).map(lambda v: _floats(v, kind))
    if kind == "str":
        return st.lists(_TEXT, min_size=n, max_size=n).map(lambda v: pd.array(v, dtype="str"))
    if kind == "str_python":
        return st.lists(_TEXT, min_size=n, max_size=n).map(lambda v: pd.array(v, dtype=pd.StringDtype("python")))
    if kind == "object":
        return st.lists(st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=2)), min_size=n, max_size=n).map(
            lambda v: np.array(v + [None], dtype=object)[:-1])
    if kind == "category":
        return st.lists(st.sampled_from(["a", "b", None]), min_size=n, max_size=n).map(
            lambda v: pd.Categorical(v))
    if kind == "datetime":
        return st.lists(st.one_of(st.none(), st.integers(0, 2**40)), min_size=n, max_size=n).map(
            lambda v: pd.to_datetime([None if x is None else x for x in v], unit="s"))
    raise AssertionError(kind)


KINDS = ["int64", "uint8", "bool", "float64", "float32", "str", "str_python", "object", "category", "datetime"]


@st.composite
def _frames(draw):
    n = draw(st.integers(0, 6))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4))
    data = {f"c{i}": draw(_column(kind, n)) for i, kind in enumerate(kinds)}
    frame = pd.DataFrame(data)
    if draw(st.booleans()):
        frame.attrs = {"note": draw(st.text(max_size=3)), "n": draw(st.integers(-3, 3))}
    return frame


def _exact_and_back(frame: pd.DataFrame):
    """(what the cheap check says, the value-by-value comparison's differences) for ``frame`` stored on its own."""
    try:
        plain, desc = ac._plain(frame, None)
        table = pa.Table.from_pandas(plain, preserve_index=False)
    except (ac.NotStorable, pa.ArrowException, TypeError, ValueError):
        return None, None  # not storable at all: never kept either way
    desc["file"] = "t.arrow"
    exact = ac._exact_by_types([(frame, desc)], {"t.arrow": table}, None)
    try:
        back = ac._restore(table.to_pandas(), desc, None)
    except ValueError:
        return exact, ["does not restore"]
    return exact, ac._frame_differences(frame, back, "t")


@settings(max_examples=300, deadline=None)
@given(_frames())
def test_the_cheap_check_never_calls_a_changed_table_exact(frame):
    exact, differences = _exact_and_back(frame)
    if exact:
        assert differences == [], (frame.dtypes.to_dict(), differences)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 30), st.lists(st.sampled_from(["int64", "uint8", "bool", "float64", "float32", "str"]),
                                    min_size=1, max_size=5), st.randoms(use_true_random=False))
def test_the_cheap_check_takes_ordinary_tables(n, kinds, rnd):
    """Integers, booleans, floats (NaN of Arrow's bits), Arrow-backed text (missing values too): shown exact."""
    data = {}
    for i, kind in enumerate(kinds):
        if kind == "str":
            data[f"c{i}"] = pd.array([None if rnd.random() < 0.2 else str(rnd.random()) for _ in range(n)], dtype="str")
        elif kind in ("float64", "float32"):
            data[f"c{i}"] = np.array([np.nan if rnd.random() < 0.2 else rnd.uniform(-1e9, 1e9) for _ in range(n)],
                                     dtype=kind)
        elif kind == "bool":
            data[f"c{i}"] = np.array([rnd.random() < 0.5 for _ in range(n)])
        else:
            data[f"c{i}"] = np.array([rnd.randint(0, 200) for _ in range(n)], dtype=kind)
    exact, differences = _exact_and_back(pd.DataFrame(data))
    assert exact is True and differences == []


def test_text_in_python_storage_and_dates_are_not_taken_on_trust():
    frame = pd.DataFrame({"t": pd.array(["a", None], dtype=pd.StringDtype("python")),
                          "d": pd.to_datetime(["2024-01-01", None])})
    for column in frame.columns:
        exact, _ = _exact_and_back(frame[[column]])
        assert exact is False, column
