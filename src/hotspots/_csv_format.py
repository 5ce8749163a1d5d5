"""CSV text as ``hotspots`` writes it (see :mod:`hotspots._io`): Excel-ready cells, pandas' bytes, built faster.

:func:`excel_ready` neutralises formulas and rounds decimals; :func:`csv_bytes`
gives ``df.to_csv(index=False)`` as UTF-8 bytes, written by Arrow's CSV writer
where every cell can go unquoted, else by :func:`csv_text` (the same text a
column at a time in Python), else ``None`` (left to pandas).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

#: significant digits kept for decimals in CSVs: far beyond what any figure here is known to, and
#: within pytest's default relative tolerance (1e-6) of the unrounded value
CSV_SIGNIFICANT_DIGITS = 7
#: the encoding of every CSV written: UTF-8 with a byte-order mark, which Excel needs to detect UTF-8
CSV_ENCODING = "utf-8-sig"


def round_significant(values, digits: int = CSV_SIGNIFICANT_DIGITS):
    """Float array rounded to ``digits`` significant digits (NaN, inf and zeros kept).

    Whole-number digits are never dropped (``123456789.4`` keeps ``123456789``).

    >>> round_significant([0.12345678901234566, 123456789.46, 1.23456789e-12, float("nan"), 0.0]).tolist()
    [0.1234568, 123456789.0, 1.234568e-12, nan, 0.0]
    """
    v = np.array(values, dtype=float)
    ok = np.isfinite(v) & (v != 0)
    every = ok.all()  # the usual column: no copies in and out through the mask
    if not every and not ok.any():
        return v
    sub = v if every else v[ok]
    mag = np.floor(np.log10(np.abs(sub)))
    decimals = np.maximum(digits - 1 - mag, 0).astype(int)
    small = decimals <= 22  # powers of ten up to 1e22 are exact doubles: one rounding, no new noise
    if small.all():
        scale = _POWERS_OF_TEN[decimals]
        sub = np.round(sub * scale) / scale
    else:
        scale = _POWERS_OF_TEN[decimals[small]]
        sub[small] = np.round(sub[small] * scale) / scale
        sub[~small] = [float(f"{x:.{digits}g}") for x in sub[~small]]
    if every:
        return sub
    v[ok] = sub
    return v


#: ``10.0 ** k`` for k = 0..22 (each exact), looked up rather than raised to a power for every cell
_POWERS_OF_TEN = 10.0 ** np.arange(23)


def excel_ready(df: pd.DataFrame, digits: int = CSV_SIGNIFICANT_DIGITS) -> pd.DataFrame:
    """Copy of ``df`` as written to CSV: formulas neutralised, decimals rounded to ``digits`` significant digits.

    >>> excel_ready(pd.DataFrame({"p": [0.012345678912], "n": [3], "s": ["=SUM(A1)"]})).to_dict("records")
    [{'p': 0.01234568, 'n': 3, 's': "'=SUM(A1)"}]
    """
    out = neutralise_formulas(df)
    for i, dtype in enumerate(out.dtypes):  # by position, from the dtypes: no Series made per column
        if pd.api.types.is_float_dtype(dtype):
            out.isetitem(i, round_significant(out.iloc[:, i].to_numpy(), digits))
    return out


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``df`` whose text cells cannot start a spreadsheet formula.

    >>> neutralise_formulas(pd.DataFrame({"a": ["=1+1", "ok", "-x"], "n": [-1, 2, 3]}))["a"].tolist()
    ["'=1+1", 'ok', "'-x"]
    """
    out = df.copy(deep=False)  # columns are replaced below, never changed in place: the caller's frame is kept
    for col in out.columns:
        s = out[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            mask = _formula_mask(s)
            if mask is None:
                mask = s.astype(str).str.startswith(_FORMULA_START) & s.notna()
            if mask.any():
                out[col] = s.astype(object).where(~mask, "'" + s.astype(str))
    return out


def _formula_mask(s: pd.Series):
    """``s.astype(str).str.startswith(_FORMULA_START) & s.notna()`` as a numpy array, for Arrow strings and
    text-only object columns (each distinct text once); None for any other column."""
    import numpy as np

    dtype = s.dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        import pyarrow as pa
        import pyarrow.compute as pc

        values = pa.array(s.array)
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            return None
        # the first byte of each cell (every formula start is ASCII, never part of a longer UTF-8 character)
        masks = []
        for chunk in (values.chunks if isinstance(values, pa.ChunkedArray) else [values]):
            n = len(chunk)
            offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64 if pa.types.is_large_string(chunk.type) else np.int32)
            offsets = offsets[chunk.offset:chunk.offset + n + 1]
            data = chunk.buffers()[2]
            data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
            filled = offsets[1:] > offsets[:-1]
            first = np.zeros(n, dtype=np.uint8)
            first[filled] = data[offsets[:-1][filled]]
            mask = _FORMULA_BYTES[first] & filled
            if chunk.null_count:
                mask &= np.asarray(pc.is_valid(chunk), dtype=bool)
            masks.append(mask)
        return np.concatenate(masks) if masks else np.zeros(0, dtype=bool)
    if dtype != object:
        return None
    codes, uniques = pd.factorize(s)
    if not all(type(u) is str for u in uniques):
        return None  # numbers and others: str() of equal values can differ (0.0 and -0.0)
    return np.array([u.startswith(_FORMULA_START) for u in uniques] + [False], dtype=bool)[codes]


#: which first bytes start a formula (:data:`_FORMULA_START`, all ASCII), looked up per cell
_FORMULA_BYTES = np.isin(np.arange(256), [ord(c) for c in _FORMULA_START])


def csv_text(df: pd.DataFrame) -> str | None:
    """``df.to_csv(index=False)``, the same text, built faster; ``None`` for a frame left to pandas.

    Columns of integers, booleans, floats (as pandas writes them: numpy's
    shortest repr, NaN empty) and text (quoted only where it holds a comma, a
    quote or a line break) are formatted a column at a time, each distinct text
    once; any other column (dates, categories, mixed objects, text with a
    carriage return) and one-column frames are left to pandas.

    >>> df = pd.DataFrame({"a": ["x", 'say "hi", then', None], "n": [1, 2, 3], "p": [0.5, float("nan"), 1e-05]})
    >>> csv_text(df) == df.to_csv(index=False)
    True
    """
    import numpy as np

    if df.shape[1] < 2 or not all(isinstance(c, str) and "\r" not in c for c in df.columns):
        return None
    columns = []
    for i in range(df.shape[1]):
        column, dtype = df.iloc[:, i], df.dtypes.iloc[i]
        if isinstance(dtype, np.dtype) and dtype.kind in "iub":
            values = column.to_numpy()
            columns.append(np.where(values, "True", "False").tolist() if dtype.kind == "b" else values.astype(str).tolist())
        elif isinstance(dtype, np.dtype) and dtype.kind == "f":
            # what pandas does for floats without a float_format (numpy's repr), once per distinct bit pattern
            values = column.to_numpy()
            codes, distinct = pd.factorize(values.view(f"i{values.itemsize}"))  # -0.0 and 0.0 kept apart
            distinct = distinct.view(values.dtype)
            text = distinct.astype(str).astype(object)
            text[np.isnan(distinct)] = ""
            columns.append(text[codes].tolist())
        elif dtype == object or isinstance(dtype, pd.StringDtype):
            codes, uniques = pd.factorize(column)
            uniques = np.asarray(uniques, dtype=object)
            if not all(type(u) is str and "\r" not in u for u in uniques):
                return None
            table = np.array([_csv_field(u) for u in uniques] + [""], dtype=object)
            columns.append(table[codes].tolist())  # code -1 (missing) takes the last entry, ""
        else:
            return None
    end = os.linesep  # as pandas ends lines (CRLF on Windows)
    rows = "".join(line + end for line in map(",".join, zip(*columns)))
    return ",".join(_csv_field(c) for c in df.columns) + end + rows


def csv_bytes(df: pd.DataFrame) -> bytes | None:
    """``df.to_csv(index=False)`` encoded as UTF-8 (no mark): the same bytes, written by Arrow's CSV writer.

    Arrow formats the integer columns and writes every cell unquoted; floats and
    booleans are formatted here as pandas writes them (each distinct value
    once) and handed over as dictionary columns, Arrow strings as they are.  A
    text cell that needs quotes (a comma, a quote, a line break) goes to Arrow
    as a numbered placeholder (``NUL number NUL``) replaced by the quoted text
    afterwards.  A frame with a column not handled here (or text holding a NUL
    or a carriage return) falls back to :func:`csv_text`; ``None`` for a frame
    left to pandas.

    >>> df = pd.DataFrame({"a": ["x", "y, z", None], "n": [1, 2, 3], "p": [0.5, float("nan"), 1e-05], "b": [True, False, True]})
    >>> csv_bytes(df) == df.to_csv(index=False).encode()
    True
    """
    if df.shape[1] < 2 or not all(isinstance(c, str) and "\r" not in c for c in df.columns):
        return None
    quoted: list[bytes] = []
    arrays = _arrow_columns(df, quoted)
    if arrays is not None:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        header = ",".join(_csv_field(c) for c in df.columns) + os.linesep
        try:
            table = pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])
            sink = pa.BufferOutputStream()
            pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="none", eol=os.linesep))
            body = sink.getvalue().to_pybytes()
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):  # not expected: the Python path below
            body = None
        if body is not None:
            if quoted:
                import re

                body = re.sub(rb"\x00(\d+)\x00", lambda m: quoted[int(m.group(1))], body)
            return header.encode("utf-8") + body
    text = csv_text(df)
    return None if text is None else text.encode("utf-8")


def _arrow_columns(df: pd.DataFrame, quoted: list[bytes]) -> list | None:
    """The columns of ``df`` as Arrow arrays whose unquoted CSV text is what pandas writes; None when one is not.

    Text cells that need quotes are replaced by placeholders numbering their quoted text, appended to ``quoted``.
    """
    import numpy as np
    import pyarrow as pa

    def dictionary(codes: np.ndarray, uniques) -> pa.DictionaryArray | None:
        texts = []
        for u in uniques:
            if type(u) is not str or "\r" in u or "\x00" in u:
                return None
            if "," in u or '"' in u or "\n" in u:
                texts.append(f"\x00{len(quoted)}\x00")
                quoted.append(_csv_field(u).encode("utf-8"))
            else:
                texts.append(u)
        return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32), mask=codes < 0), pa.array(texts, pa.string()))

    if df.attrs:  # each column taken out below would deep-copy them
        df = df.copy(deep=False)
        df.attrs = {}
    arrays = []
    # the dtypes once and each column from items(): df.dtypes builds a Series and df.iloc[:, i] takes the
    # indexing path, per column, which cost more than formatting a small frame
    for dtype, (_, column) in zip(df.dtypes.tolist(), df.items()):
        if isinstance(dtype, np.dtype) and dtype.kind in "iu":
            arrays.append(pa.array(column.to_numpy()))
        elif isinstance(dtype, np.dtype) and dtype.kind == "b":
            arrays.append(pa.DictionaryArray.from_arrays(pa.array(column.to_numpy().view(np.int8)),
                                                         pa.array(["False", "True"])))
        elif dtype == np.float64:
            values = column.to_numpy()
            codes, distinct = pd.factorize(values.view(np.int64))  # -0.0 and 0.0 kept apart
            distinct = distinct.view(np.float64)
            arrays.append(pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32), mask=np.isnan(distinct)[codes]),
                                                         _float64_texts(distinct)))
        elif isinstance(dtype, np.dtype) and dtype.kind == "f":
            values = column.to_numpy()
            codes, distinct = pd.factorize(values.view(f"i{values.itemsize}"))  # -0.0 and 0.0 kept apart
            distinct = distinct.view(values.dtype)
            # numpy's repr, as pandas writes floats without a float_format (Python's repr is the same for doubles)
            text = list(map(repr, distinct.tolist())) if distinct.dtype == np.float64 else distinct.astype(str).tolist()
            arrays.append(pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32), mask=np.isnan(distinct)[codes]),
                                                         pa.array(text, pa.string())))
        elif isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
            values = pa.array(column.array)  # nulls written empty, as pandas writes missing text
            if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
                return None
            if _may_need_quotes(values):
                codes, uniques = pd.factorize(column)
                values = dictionary(codes, np.asarray(uniques, dtype=object))
                if values is None:
                    return None
            arrays.append(values)
        elif dtype == object or isinstance(dtype, pd.StringDtype):
            codes, uniques = pd.factorize(column)
            values = dictionary(codes, np.asarray(uniques, dtype=object))
            if values is None:
                return None
            arrays.append(values)
        else:
            return None
    return arrays


def _float64_texts(values):
    """Doubles as Arrow strings of their ``repr`` (what pandas writes without a float_format), NaN null.

    Arrow's cast gives the same shortest round-trip digits as ``repr`` about
    five times faster, but lays them out differently: ``1`` for ``1.0``,
    ``0.00001`` for ``1e-05``, ``1e+15`` for ``1000000000000000.0`` and
    exponents for long numbers.  Where ``repr`` writes digits with a point
    (``1e-4 <= |x| < 1e16``) and Arrow wrote no exponent, Arrow's text is
    ``repr``'s less a ``.0`` on whole numbers, added here; every other
    finite value (few: CSV decimals are rounded to 7 significant digits) is
    formatted by ``repr``.

    >>> _float64_texts(np.array([1.0, -0.0, 1e-05, 0.25, 1e15, float("nan"), float("inf")])).to_pylist()
    ['1.0', '-0.0', '1e-05', '0.25', '1000000000000000.0', None, 'inf']
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    values = np.ascontiguousarray(values, dtype=np.float64)
    text = pc.cast(pa.array(values), pa.string())  # NaN from numpy is a value here ("nan"), made null below
    size = np.abs(values)
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore"):
        plain = ((size >= 1e-4) & (size < 1e15)) | (values == 0)
    plain &= ~_holds_byte(text, b"e")
    whole = plain & ~_holds_byte(text, b".")
    if whole.any():
        text = pc.if_else(pa.array(whole), pc.binary_join_element_wise(text, ".0", ""), text)
    other = finite & ~plain
    if other.any():
        text = pc.replace_with_mask(text, pa.array(other), pa.array(list(map(repr, values[other].tolist())), pa.string()))
    nan = np.isnan(values)
    if nan.any():
        text = pc.if_else(pa.array(nan), pa.scalar(None, pa.string()), text)
    return text


def _holds_byte(text, byte: bytes) -> np.ndarray:
    """Which cells of an Arrow string array (one chunk, no nulls) hold ``byte`` (ASCII), from its buffers.

    A numpy scan of the bytes, several times faster than ``pc.match_substring``.
    """
    import pyarrow as pa

    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64 if pa.types.is_large_string(text.type) else np.int32)
    offsets = offsets[text.offset:text.offset + len(text) + 1]
    data = text.buffers()[2]
    data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    at = np.flatnonzero(data[offsets[0]:offsets[-1]] == byte[0]) + offsets[0]
    out = np.zeros(len(text), dtype=bool)
    out[np.searchsorted(offsets, at, side="right") - 1] = True
    return out


def _may_need_quotes(values) -> bool:
    """Whether an Arrow string array's bytes hold a comma, quote, line break or NUL (anywhere in its buffers)."""
    chunks = values.chunks if hasattr(values, "chunks") else [values]
    for chunk in chunks:
        data = chunk.buffers()[2]
        if data is not None:
            raw = data.to_pybytes()
            if any(c in raw for c in (b",", b'"', b"\n", b"\r", b"\x00")):
                return True
    return False


def _csv_field(text: str) -> str:
    """A text cell as the csv module quotes it (``QUOTE_MINIMAL``, ``"\\n"`` line ends)."""
    return '"' + text.replace('"', '""') + '"' if ("," in text or '"' in text or "\n" in text) else text
