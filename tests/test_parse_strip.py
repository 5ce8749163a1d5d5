"""The strip of the row checks (:func:`hotspots.io._parse._strip`) skips columns with nothing to strip, same result."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from hotspots.io._parse import _nothing_to_strip, _strip

CELLS = ["2021-01", "abc", "", " lead", "trail ", "\tt", "x\n", "é", "a\xa0", "\u2003b", "51.75", "-0.33", "mid dle"]


def _reference(values: pd.Series) -> pd.Series:
    return values.astype(str).str.strip()


@pytest.mark.parametrize("seed", range(6))
def test_strip_is_pandas_strip(seed):
    rng = np.random.default_rng(seed)
    cells = rng.choice(np.array(CELLS[: 3 + seed * 2], dtype=object), 500)
    for values in (pd.Series(cells, dtype="str"), pd.Series(cells, dtype=object),
                   pd.Series(pd.array(pa.chunked_array([cells[:200].tolist(), cells[200:].tolist()], pa.large_string()),
                                      dtype="str"))):
        out = _strip(values)
        assert out.tolist() == _reference(values).tolist()
        assert out.dtype == _reference(values).dtype


def test_nothing_to_strip_is_exact_where_it_says_so():
    clean = pd.Series(["2021-01", "", "abc", "x y"], dtype="str")
    assert _nothing_to_strip(clean)
    assert _nothing_to_strip(pd.Series(pd.array(pa.array(["pad ", "ok", "fine"], pa.large_string()).slice(1), dtype="str")))
    assert _nothing_to_strip(pd.Series(["", ""], dtype="str"))
    for cell in (" a", "a ", "\ta", "a\n", "é", "a\xa0", "\u2003"):
        assert not _nothing_to_strip(pd.Series(["ok", cell], dtype="str"))
    assert not _nothing_to_strip(pd.Series(["ok", None], dtype="str"))  # missing values: the pandas path
    assert not _nothing_to_strip(pd.Series(["ok"], dtype=object))
