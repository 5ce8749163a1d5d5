"""Argument checks shared by the detection functions (on top of :mod:`hotspots._validate`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from hotspots._validate import _Problems

BNG = "EPSG:27700"


def _positive_number(value: Any, name: str, problems: _Problems, hint: str) -> None:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
          and math.isfinite(value) and value > 0)
    if not ok:
        problems.add(f"{name} must be a positive number, got {value!r}", hint)


def _weights_array(weights: Any, n: int, name: str, problems: _Problems) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    try:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        problems.add(f"{name} must be numeric", f"pass {name} as one non-negative number per point")
        return np.ones(n)
    if w.size != n:
        problems.add(f"{name} has {w.size} values for {n} points", f"pass one {name} value per point")
        return np.ones(n)
    if not np.isfinite(w).all() or (w < 0).any():
        problems.add(f"{name} must be finite and non-negative (found {int((~np.isfinite(w) | (w < 0)).sum())} "
                     f"bad values)", f"fill or drop the bad {name} values first")
    return w


def _require_finite_xy(x: np.ndarray, y: np.ndarray, problems: _Problems) -> None:
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        problems.add(f"{int(bad.sum())} points have missing or non-finite coordinates",
                     "drop (and count) records without coordinates before this step")



def _array_for(values: Any, n: int, name: str, problems: _Problems, *, dtype=np.float64):
    if values is None:
        return None
    array = np.asarray(values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else values)
    if array.ndim != 1 or array.size != n:
        problems.add(f"{name} has shape {array.shape}, expected one value per grid cell ({n})",
                     f"pass {name} aligned with the grid's rows")
        return None
    if dtype is not None:
        try:
            array = array.astype(dtype)
        except (TypeError, ValueError):
            problems.add(f"{name} must be numeric", f"pass {name} as numbers aligned with the grid")
            return None
        if not np.isfinite(array).all():
            problems.add(f"{name} has {int((~np.isfinite(array)).sum())} missing or non-finite values",
                         "fill them (e.g. 0 for counts) before calling")
    return array


def _maybe_int(series: pd.Series) -> pd.Series:
    values = series.to_numpy(np.float64)
    if np.all(values == np.round(values)):
        return series.astype(np.int64)
    return series

