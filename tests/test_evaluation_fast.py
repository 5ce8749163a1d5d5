"""The evaluation's shortcuts give what the plain pandas code gives."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hotspots.evaluation.areas import _positions_of


def test_positions_of_is_series_map():
    positions = {"2025-01": 0, "2025-02": 1, "E07": 2}
    for values in (pd.Series(["2025-02", "2025-01", "2024-12", None, "2025-02"], dtype="str"),
                   pd.Series(["2025-02", "x", None, "E07"], dtype=object),
                   np.array(["", "E07", "E07", "Z"], dtype=object), pd.Series([], dtype="str")):
        got = _positions_of(values, positions)
        ref = pd.Series(values, dtype=object).map(positions)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, ref.fillna(-1).to_numpy().astype(np.int64))
