"""Argument checks shared by the evaluation statistics (counts, numbers, p-values).

Every problem is collected in a :class:`hotspots._validate._Problems` and
raised once, so one error lists all of them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

# scipy.stats' norm, without importing scipy.stats
from hotspots._dist import norm_ppf, norm_sf
from hotspots._validate import _check_level, _Problems

__all__ = ["_Problems", "_check_level"]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_COUNT_HINT = (
    "pass crime counts totalled over each period (whole numbers >= 0, not rates, "
    "averages or missing values); areas with no recorded crime are 0"
)


def _count_array(name: str, value: Any, problems: _Problems) -> np.ndarray | None:
    """Non-negative whole-number counts as a float array, or None (problem noted)."""
    if isinstance(value, (str, bytes)):
        problems.add(f"{name}={_short(value)} is text, not a count", _COUNT_HINT)
        return None
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        problems.add(f"{name}={_short(value)} is not numeric", _COUNT_HINT)
        return None
    if arr.size == 0:
        problems.add(f"{name} is empty", "pass at least one count")
        return None
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(arr) | (arr < 0) | (arr != np.round(arr))
    if bad.any():
        first = float(arr[bad].flat[0])
        if arr.size == 1:
            problems.add(f"{name}={first:g} is not a whole number >= 0", _COUNT_HINT)
        else:
            problems.add(f"{name} has {int(bad.sum())} value(s) that are not whole numbers "
                         f">= 0 (first: {first:g})", _COUNT_HINT)
        return None
    return arr


def _count_scalar(name: str, value: Any, problems: _Problems) -> int | None:
    # a whole number >= 0 that a double holds exactly: what the checks below would return, without an array
    if type(value) in (int, np.int64, np.int32) and 0 <= value <= 2**53:
        return int(value)
    if type(value) in (float, np.float64) and value.is_integer() and 0 <= value <= 2**53:
        return int(value)
    arr = _count_array(name, value, problems)
    if arr is None:
        return None
    if arr.ndim != 0 and arr.size != 1:
        problems.add(
            f"{name} has {arr.size} values; this function takes one total per area type",
            "sum the per-area counts first (use did_rate_ratio for one row per area)",
        )
        return None
    return int(arr.reshape(()))



def _check_positive_number(name: str, value: Any, problems: _Problems, *,
                           allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and math.isfinite(float(value)) and (
        float(value) >= 0 if allow_zero else float(value) > 0
    )
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        problems.add(f"{name}={_short(value)} must be a finite number {bound}",
                     f"pass a number {bound} for {name}")


def _z_crit(level: float) -> float:
    """``stats.norm.ppf(0.5 + level / 2)``: its ``ndtri`` called directly (scipy's wrapper costs ~0.2 ms a call)."""
    q = 0.5 + level / 2.0
    if isinstance(q, float) and 0.0 < q < 1.0:
        return float(special.ndtri(q))
    return float(norm_ppf(q))


def _two_sided_p(z: Any) -> Any:
    """``2 * stats.norm.sf(|z|)``, the same numbers and types: its ``ndtr`` called directly for real numbers."""
    a = np.abs(z)
    x = np.asarray(a)
    if x.dtype.kind in "fiu" and x.dtype.itemsize <= 8 and not isinstance(a, (pd.Series, pd.Index, pd.DataFrame)):
        return 2.0 * special.ndtr(-x.astype(np.float64))  # norm.sf(x) is ndtr(-x) (0-d in, numpy scalar out)
    return 2.0 * norm_sf(a)


def _fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "p undefined"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _shared_index(inputs: dict[str, Any], problems: _Problems) -> pd.Index | None:
    """Index of the pandas Series among ``inputs``; all Series must agree."""
    series = {k: v for k, v in inputs.items() if isinstance(v, pd.Series)}
    if not series:
        return None
    first_name, first = next(iter(series.items()))
    for name, s in series.items():
        if not s.index.equals(first.index):
            problems.add(
                f"{name} and {first_name} are Series with different indexes, so rows "
                "would be paired by position, not by area",
                "align them first, e.g. c_after = c_after.reindex(r_before.index)",
            )
    return first.index



def _scalar_counts(problems: _Problems, **values: Any) -> dict[str, int]:
    out = {name: _count_scalar(name, value, problems) for name, value in values.items()}
    return out  # type: ignore[return-value]  (None only when problems will raise)
