"""The CSV writer's fast paths (:mod:`hotspots._csv_format`) give pandas' bytes exactly, or step aside."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from hotspots._csv_format import (
    _FORMULA_START,
    _arrow_columns,
    _formula_mask,
    csv_bytes,
    csv_text,
    excel_ready,
    neutralise_formulas,
)

TEXTS = ["plain", "with, comma", 'say "hi"', "two\nlines", "", " lead", "'=SUM(A1)", "£ – é", "#", "=1+1", "-5",
         "@x", "\tt", "+44", "é-", "2021-01"]


def _reference(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode("utf-8")


def _frame(seed: int = 0, n: int = 400, texts=TEXTS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    texts = np.array(texts, dtype=object)
    floats = rng.choice([0.1 + 0.2, 1e16, 1e-05, -0.0, 0.0, np.inf, -np.inf, np.nan, 123456789.0, 2.5, 5e-324], n)
    with_none = rng.choice(texts, n).astype(object)
    with_none[rng.random(n) < 0.2] = None
    arrow_none = pd.array(rng.choice(texts, n), dtype="str")
    arrow_none[rng.random(n) < 0.2] = None
    return pd.DataFrame({
        "text": rng.choice(texts, n), "text_missing": with_none,
        "arrow_text": pd.array(rng.choice(texts, n), dtype="string[pyarrow]"), "arrow_missing": arrow_none,
        "python_text": pd.array(rng.choice(texts, n), dtype="string[python]"),
        "count": rng.integers(-10**12, 10**12, n), "small": rng.integers(0, 255, n).astype(np.uint8),
        "big": rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2),
        "flag": rng.random(n) < 0.5, "rate": floats * rng.random(n), "f32": rng.random(n).astype(np.float32),
        "f16": rng.random(n).astype(np.float16), "plain_f": rng.random(n) * 10.0 ** rng.integers(-8, 20, n),
        'odd, "name"': rng.integers(0, 3, n),
    })


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_csv_bytes_are_what_pandas_writes(seed):
    df = _frame(seed)
    assert csv_bytes(df) == _reference(df)
    assert _arrow_columns(df, []) is not None  # the Arrow path really ran
    for n in (0, 1, 2):
        assert csv_bytes(df.head(n)) == _reference(df.head(n))
    assert b'"with, comma"' in csv_bytes(df) and b'"say ""hi"""' in csv_bytes(df) and b'"two\nlines"' in csv_bytes(df)


def test_csv_bytes_on_sliced_chunked_and_large_arrow_strings():
    df = _frame(3)
    sliced = df.iloc[37:311]  # Arrow arrays with an offset
    assert csv_bytes(sliced) == _reference(sliced)
    chunked = pd.concat([df.iloc[:150], df.iloc[150:]])  # several chunks per column
    assert isinstance(pa.array(chunked["arrow_text"].array), pa.ChunkedArray)
    assert csv_bytes(chunked) == _reference(chunked)
    large = df.assign(large=pd.array(pa.array(df["text"].tolist(), pa.large_string()), dtype=pd.ArrowDtype(pa.large_string())))
    assert csv_bytes(large) is None  # ArrowDtype columns are left to pandas, as before
    quiet = df[["count", "arrow_text"]].assign(arrow_text=pd.array(["a", "b"] * 200, dtype="str"))
    assert csv_bytes(quiet) == _reference(quiet)  # no cell needing quotes: Arrow's text as it is


def test_placeholders_cannot_collide_with_text():
    """Text holding a NUL (the placeholders' mark) or a carriage return leaves the Arrow path, with the same bytes."""
    for texts in (["a", "\x000\x00", "b, c"], ["x\x00y", "b, c"]):
        for dtype in (object, "str"):
            df = pd.DataFrame({"t": pd.array(texts * 3, dtype=dtype), "n": range(3 * len(texts))})
            assert _arrow_columns(df, []) is None
            assert csv_bytes(df) == _reference(df)
    df = pd.DataFrame({"t": pd.array(["carriage\rreturn", "x"], dtype="str"), "n": [1, 2]})
    assert csv_bytes(df) is None  # left to pandas, as csv_text does
    df = pd.DataFrame({"t": ["carriage\rreturn", "x"], "n": [1, 2]})
    assert csv_bytes(df) is None


def test_left_to_pandas_as_before():
    df = _frame(4, n=40)
    for frame in (df[["text"]], df.assign(when=pd.Timestamp("2025-01-01")), df.assign(cat=pd.Categorical(["a"] * 40)),
                  df.assign(mixed=[1, "a"] * 20), df.assign(nullable=pd.array([1, None] * 20, dtype="Int64"))):
        assert csv_bytes(frame) is None and csv_text(frame) is None


def test_float_text_is_numpys():
    """Doubles are written with Python's repr: the same text as numpy's (what pandas writes)."""
    rng = np.random.default_rng(5)
    bits = rng.integers(0, 2**63, 200_000, dtype=np.int64).view(np.float64)
    values = np.concatenate([bits[np.isfinite(bits)], rng.random(50_000) * 10.0 ** rng.integers(-30, 30, 50_000),
                             [0.0, -0.0, 1e16, 1e15, 9999999999999998.0, 1e-4, 1e-5, 5e-324, 1.7976931348623157e308]])
    assert list(map(repr, values.tolist())) == values.astype(str).tolist()
    df = pd.DataFrame({"v": values, "n": np.arange(len(values))})
    assert csv_bytes(df) == _reference(df)


def _mask_reference(s: pd.Series) -> np.ndarray:
    return (s.astype(str).str.startswith(_FORMULA_START) & s.notna()).to_numpy(dtype=bool)


def test_formula_mask_matches_pandas():
    df = _frame(6)
    for col in ("text", "text_missing", "arrow_text", "arrow_missing"):
        for s in (df[col], df[col].iloc[11:290], pd.concat([df[col].iloc[:100], df[col].iloc[100:]])):
            mask = _formula_mask(s)
            assert mask is not None and np.array_equal(mask, _mask_reference(s)), col
            assert mask.any()
    assert _formula_mask(pd.Series([-1, "a", None], dtype=object)) is None  # numbers: pandas' own path
    assert _formula_mask(pd.Series([], dtype="str")).shape == (0,)
    assert _formula_mask(pd.Series([None, None], dtype="str")).tolist() == [False, False]


def test_neutralise_and_excel_ready_unchanged():
    """The same frames as the column-by-column pandas code gave (dtypes included)."""
    df = _frame(7).assign(obj_mixed=pd.Series([-1, "=x", None, 2.5] * 100, dtype=object))

    def old_neutralise(frame):
        out = frame.copy()
        for col in out.columns:
            s = out[col]
            if s.dtype == object or pd.api.types.is_string_dtype(s):
                mask = s.astype(str).str.startswith(_FORMULA_START) & s.notna()
                if mask.any():
                    out[col] = s.astype(object).where(~mask, "'" + s.astype(str))
        return out

    pd.testing.assert_frame_equal(neutralise_formulas(df), old_neutralise(df))
    ready = excel_ready(df)
    assert ready["arrow_text"].str.startswith("=").sum() == 0
    assert csv_bytes(ready.drop(columns="obj_mixed")) == _reference(ready.drop(columns="obj_mixed"))


def test_excel_ready_by_position_is_the_same_and_leaves_the_input():
    """Floats rounded by position on a shallow copy: the frame the by-name loop on a deep copy gave, input untouched."""
    from hotspots._csv_format import round_significant

    df = _frame(8).assign(f32=np.linspace(0, 1, 400, dtype=np.float32), half=np.full(400, 0.123456789))

    def old_excel_ready(frame):
        out = neutralise_formulas(frame).copy()
        for col in out.columns:
            if pd.api.types.is_float_dtype(out[col]):
                out[col] = round_significant(out[col].to_numpy())
        return out

    before = df.copy(deep=True)
    pd.testing.assert_frame_equal(excel_ready(df), old_excel_ready(df))
    pd.testing.assert_frame_equal(df, before)  # nothing changed in the caller's frame


def test_write_csv_writes_the_mark_and_the_bytes(tmp_path):
    from hotspots._io import OutputDir

    df = _frame(8)
    out = OutputDir(tmp_path / "out")
    written = out.write_csv(df, "x.csv").read_bytes()
    with open(tmp_path / "ref.csv", "w", newline="", encoding="utf-8-sig") as fh:
        excel_ready(df).to_csv(fh, index=False)
    assert written == (tmp_path / "ref.csv").read_bytes()
    assert out.written[-1]["bytes"] == len(written)


def test_write_csv_of_a_frame_with_attrs_is_the_same_and_leaves_them(tmp_path):
    from hotspots._io import OutputDir

    df = _frame(8)
    with_attrs = df.copy()
    with_attrs.attrs = {"overdispersion": pd.DataFrame({"phi": [1.5, 2.0]}), "method": "x"}
    out = OutputDir(tmp_path / "out")
    plain = out.write_csv(df, "plain.csv").read_bytes()
    assert out.write_csv(with_attrs, "attrs.csv").read_bytes() == plain
    with open(tmp_path / "ref.csv", "w", newline="", encoding="utf-8-sig") as fh:
        excel_ready(with_attrs).to_csv(fh, index=False)  # the old path, attrs and all
    assert plain == (tmp_path / "ref.csv").read_bytes()
    assert set(with_attrs.attrs) == {"overdispersion", "method"}  # the caller's frame keeps its attrs


def _awkward_doubles(seed: int) -> np.ndarray:
    """Doubles of every magnitude and the edge cases of ``repr``'s layout (exponents, whole numbers, signed zeros)."""
    rng = np.random.default_rng(seed)
    scattered = 10 ** rng.uniform(-323, 308, 20_000) * rng.choice([-1, 1], 20_000)
    near = 10 ** rng.uniform(-7, 18, 50_000) * rng.choice([-1, 1], 50_000)
    edges = [0.0, -0.0, np.nan, np.inf, -np.inf, 5e-324, 1.7976931348623157e308, 1e-4, 9.999999999999999e-05, 1e15,
             999999999999999.9, 1e16, 9999999999999998.0, 123456789.0, 0.1, 1e-05, 2.0 ** 60, 5072423449598.591]
    return np.concatenate([scattered, near, np.round(near, 3), rng.integers(-10**7, 10**7, 5000).astype(float), edges])


@pytest.mark.parametrize("seed", [0, 1])
def test_float64_texts_are_repr(seed):
    from hotspots._csv_format import _float64_texts

    values = _awkward_doubles(seed)
    assert _float64_texts(values).to_pylist() == [None if v != v else repr(v) for v in values.tolist()]
    assert _float64_texts(np.zeros(0)).to_pylist() == []


def test_holds_byte_on_a_sliced_array():
    from hotspots._csv_format import _holds_byte

    texts = ["1e+16", "2.5", "", "e", "x.e", "nan", "3"]
    arr = pa.array(["pad"] + texts, pa.string()).slice(1)
    for byte in (b"e", b"."):
        assert _holds_byte(arr, byte).tolist() == [byte.decode() in t for t in texts]


def test_round_significant_is_the_power_and_mask_reference():
    """The lookup-table version against the formula it replaced (``10.0 ** decimals`` through the finite mask)."""
    from hotspots._csv_format import round_significant

    def reference(values, digits):
        v = np.array(values, dtype=float)
        ok = np.isfinite(v) & (v != 0)
        if not ok.any():
            return v
        mag = np.floor(np.log10(np.abs(v[ok])))
        decimals = np.maximum(digits - 1 - mag, 0).astype(int)
        small = decimals <= 22
        sub = v[ok]
        scale = 10.0 ** decimals[small]
        sub[small] = np.round(sub[small] * scale) / scale
        sub[~small] = [float(f"{x:.{digits}g}") for x in sub[~small]]
        v[ok] = sub
        return v

    values = _awkward_doubles(2)
    finite = values[np.isfinite(values) & (values != 0)]
    for v in (values, finite, finite[np.abs(finite) > 1e-10], np.array([np.nan, 0.0]), np.zeros(0)):
        for digits in (7, 3, 15):
            assert round_significant(v, digits).view(np.int64).tolist() == reference(v, digits).view(np.int64).tolist()


def test_float_columns_many_repeats_and_nan_as_pandas():
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"a": rng.choice([0.5, -0.0, 0.0, np.nan, 1e-05, 1e16, 3.0], 3000),
                       "b": _awkward_doubles(3)[:3000]})
    assert csv_bytes(df) == _reference(df)
