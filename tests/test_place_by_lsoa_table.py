""":func:`hotspots.geo.assign.place_by_lsoa` decides per distinct code: the same codes and methods as per record."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import box

from hotspots.geo.assign import _isin, place_by_lsoa


def _reference(code, known, study):
    """The per-record formula the table replaced."""
    code = np.asarray(code, dtype=object)
    usable = _isin(code, known)
    inside = usable & _isin(code, study)
    out = np.where(inside, code, "").astype(object)
    how = np.where(inside, "lsoa_code", np.where(usable, "lsoa_code_outside", "location_outside")).astype(object)
    return out, how


def test_place_by_lsoa_is_the_per_record_formula():
    rng = np.random.default_rng(0)
    pool = np.array(["E01000001", "E01000002", "E01000003", "W01000009", "", " E01000001", "E09999999", np.nan], dtype=object)
    code = pool[rng.integers(0, len(pool), 5000)]
    x, y = rng.uniform(-500, 2500, 5000), rng.uniform(-500, 1500, 5000)
    study = pd.Index(["E01000001", "E01000002"])
    known = {"E01000001", "E01000002", "E01000003", "W01000009"}
    empty = gpd.GeoDataFrame({"area_code": []}, geometry=[], crs=27700)
    out, how = place_by_lsoa(code, x, y, study, known, empty)  # no polygons: the code alone decides
    ref_out, ref_how = _reference(code, known, study)
    assert out.dtype == object and how.dtype == object
    assert out.tolist() == ref_out.tolist() and how.tolist() == ref_how.tolist()

    polys = gpd.GeoDataFrame({"area_code": ["E01000001", "E01000002"]},
                             geometry=[box(0, 0, 1000, 1000), box(1000, 0, 2000, 1000)], crs=27700)
    out, how = place_by_lsoa(code, x, y, study, known, polys)
    moved = (ref_how == "location_outside") & (how == "location")
    assert moved.any()
    assert (out[~moved] == ref_out[~moved]).all() and (how[~moved] == ref_how[~moved]).all()
    assert set(out[moved]) <= {"E01000001", "E01000002"}


def test_place_by_lsoa_of_no_records():
    empty = gpd.GeoDataFrame({"area_code": []}, geometry=[], crs=27700)
    out, how = place_by_lsoa(np.array([], dtype=object), np.zeros(0), np.zeros(0), pd.Index([]), set(), empty)
    assert out.tolist() == [] and how.tolist() == []
