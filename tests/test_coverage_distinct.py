""":func:`hotspots.geo.coverage.coverage` on Arrow text and per distinct code: the same answer as per record."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hotspots.geo.coverage import coverage


def _inputs(seed: int):
    rng = np.random.default_rng(seed)
    pool = [f"L{i}" for i in range(40)] + ["LX", "LY"]  # LX, LY: no district; L30.. in no LSOA table row
    codes = pd.Series(rng.choice(np.array(pool, dtype=object), 3000), dtype="str")
    codes.iloc[::53] = None
    lsoa_district = pd.Series({f"L{i}": f"D{i % 4}" for i in range(40)})
    lsoa_counts = pd.DataFrame({"area_code": [f"L{i}" for i in range(30)], "count": rng.integers(0, 90, 30)})
    district_counts = pd.DataFrame({"area_code": ["D0", "D1", "D2", "D3", "D0"], "count": [700, 650, 640, 10, 20]})
    counts = {"lsoa": lsoa_counts, "district": district_counts}
    mapping = {"lsoa": pd.Series({f"L{i}": f"L{i}" for i in range(30)}), "district": lsoa_district}
    return codes, counts, mapping, lsoa_district, {"D0": "Zero", "D1": "One"}


def test_coverage_on_arrow_text_is_the_object_path():
    for seed in range(4):
        codes, *rest = _inputs(seed)
        assert repr(coverage(codes, *rest)) == repr(coverage(np.asarray(codes, dtype=object), *rest))
        assert repr(coverage(codes, *rest)) == repr(coverage(list(codes), *rest))


def test_records_by_lsoa_code_are_counted_per_record():
    codes, counts, mapping, lsoa_district, names = _inputs(7)
    cov = coverage(codes, counts, mapping, lsoa_district, names)
    per_record = pd.Series(np.asarray(codes, dtype=object)).map(lsoa_district).value_counts()
    for row in cov["by_district"]:
        assert row["records_by_lsoa_code"] == int(per_record.get(row["district_code"], 0))
        assert type(row["records_by_lsoa_code"]) is int
    assert {r["district_code"] for r in cov["by_district"]} == {"D0", "D1", "D2", "D3"}
    assert any(w.startswith("district D3") for w in cov["warnings"])
