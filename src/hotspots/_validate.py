"""Argument validation shared by every public function: collect all problems, raise once.

A function makes a :class:`_Problems` collector named after itself, runs the
``_check_*`` helpers (each records a message naming the argument, the bad
value and a hint for the fix), then calls :meth:`_Problems.raise_if_any`.
One error lists every problem in one format::

    make_grid: cell_size must be ...
    make_grid: 2 problems: (1) cell_size must be ...; (2) shape must be ...

Validation never uses ``assert`` (it vanishes under ``python -O``).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from hotspots._errors import CRSError, HotspotsError, ValidationError


class _Problems:
    """Collects argument problems so that one error lists all of them.

    Examples
    --------
    >>> problems = _Problems("make_grid")
    >>> problems.add("cell_size must be > 0; got -5", "Use e.g. cell_size=250.")
    >>> problems.add("shape must be 'square' or 'hex'; got 'triangle'", "Use shape='square'.")
    >>> try:
    ...     problems.raise_if_any()
    ... except ValidationError as error:
    ...     print(error.args[0])
    make_grid: 2 problems: (1) cell_size must be > 0; got -5; (2) shape must be 'square' or 'hex'; got 'triangle'
    """

    def __init__(self, function: str):
        self.function = function
        self.messages: list[str] = []
        self.hints: list[str] = []

    def add(self, message: str, hint: str) -> None:
        self.messages.append(message)
        if hint not in self.hints:
            self.hints.append(hint)

    def raise_if_any(self, error_class: type[HotspotsError] = ValidationError) -> None:
        """Raise ``error_class`` (default :class:`ValidationError`) listing every problem, if any."""
        if not self.messages:
            return
        if len(self.messages) == 1:
            text = f"{self.function}: {self.messages[0]}"
        else:
            listed = "; ".join(f"({i}) {m}" for i, m in enumerate(self.messages, 1))
            text = f"{self.function}: {len(self.messages)} problems: {listed}"
        raise error_class(text, hint=" ".join(self.hints))


def _is_real(value: Any) -> bool:
    """A real scalar (Python or numpy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _first_bad(values: np.ndarray, bad: np.ndarray) -> str:
    positions = np.flatnonzero(bad.ravel())
    first = positions[0]
    return f"{positions.size} value(s), first {values.ravel()[first].item()!r} at position {first}"


def _as_float(problems: _Problems, name: str, value: Any) -> np.ndarray | None:
    """``value`` as a float array, or None (and a recorded problem)."""
    try:
        if isinstance(value, (pd.Series, pd.Index, pd.DataFrame)):
            return value.to_numpy(dtype=float, na_value=np.nan)
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        problems.add(
            f"{name} must be numeric; got {type(value).__name__} {str(value)[:60]!r}",
            f"Pass {name} as numbers (a list, numpy array or pandas Series).",
        )
        return None


def _check_counts(problems: _Problems, name: str, x: np.ndarray, *, allow_nan: bool = False,
                  integer: bool = True) -> None:
    if not allow_nan and np.isnan(x).any():
        problems.add(
            f"{name} has missing values: {_first_bad(x, np.isnan(x))}",
            f"Fill missing {name} with 0 when there were none, or drop those units.",
        )
    if np.isinf(x).any():
        problems.add(f"{name} has infinite values: {_first_bad(x, np.isinf(x))}",
                     f"Check how {name} was computed.")
    with np.errstate(invalid="ignore"):
        negative = x < 0
        fractional = np.isfinite(x) & (x != np.round(x))
    if negative.any():
        problems.add(f"{name} must be >= 0; it has negative {_first_bad(x, negative)}",
                     f"Counts cannot be negative: check how {name} was computed.")
    if integer and fractional.any():
        problems.add(
            f"{name} must be whole counts; it has non-integer {_first_bad(x, fractional)}",
            "Poisson methods need event counts; pass harm-weighted values to a rate, not here.",
        )


def _check_positive(problems: _Problems, name: str, x: np.ndarray) -> None:
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(x) & (x > 0))
    if bad.any():
        problems.add(f"{name} must be finite and > 0; it has {_first_bad(x, bad)}",
                     f"Remove units with no {name} (or fix the missing values) before testing.")


def _check_level(problems: _Problems, name: str, value: Any) -> None:
    ok = _is_real(value)
    if not ok or not (0.0 < float(value) < 1.0):
        problems.add(f"{name} must be a probability strictly between 0 and 1; got {value!r}",
                     f"For example {name}=0.95 for a 95% level.")


def _check_levels(problems: _Problems, name: str, levels: Any) -> tuple[float, ...]:
    if isinstance(levels, (int, float)) and not isinstance(levels, bool):
        levels = (levels,)
    try:
        values = tuple(levels)
    except TypeError:
        problems.add(f"{name} must be a sequence of probabilities; got {levels!r}",
                     f"For example {name}=(0.95, 0.998).")
        return ()
    before = len(problems.messages)
    if not values:
        problems.add(f"{name} is empty", f"For example {name}=(0.95, 0.998).")
    for value in values:
        _check_level(problems, name, value)
    if len(problems.messages) > before:
        return ()
    labels = [level_label(v) for v in values]
    if len(set(labels)) != len(labels):
        problems.add(f"{name} has repeated levels: {values!r}", f"List each level in {name} once.")
        return ()
    return tuple(float(v) for v in values)


def _check_choice(problems: _Problems, name: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        problems.add(f"{name} must be one of {list(choices)!r}; got {value!r}",
                     f"Choose {name} from {list(choices)!r}.")


def _check_int(problems: _Problems, name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        problems.add(f"{name} must be an integer >= {minimum}; got {value!r}",
                     f"Pass {name} as a whole number, e.g. {name}={max(minimum, 1)}.")


def _broadcast(problems: _Problems, arrays: dict[str, np.ndarray]) -> list[np.ndarray] | None:
    try:
        return list(np.broadcast_arrays(*arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
        problems.add(f"arguments have incompatible shapes: {shapes}",
                     "Pass arrays of the same length (one value per unit), or scalars.")
        return None


def _as_coordinates(problems: _Problems, name: str, values: Any) -> np.ndarray:
    """``values`` as a 1-D float array of coordinates (a scalar becomes one value); problems recorded."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        problems.add(f"{name} must be numeric, got {type(values).__name__}",
                     f"Pass {name} as a 1-D array of numbers (metres, EPSG:27700).")
        return np.empty(0)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        problems.add(f"{name} must be 1-D, got shape {array.shape}", f"Pass {name} as a flat array.")
        return array.reshape(-1)
    return array


def _check_xy(problems: _Problems, x: Any, y: Any, names: tuple[str, str] = ("x", "y")
              ) -> tuple[np.ndarray, np.ndarray]:
    """Eastings and northings as two 1-D float arrays of one length; problems recorded."""
    xa = _as_coordinates(problems, names[0], x)
    ya = _as_coordinates(problems, names[1], y)
    if xa.shape != ya.shape:
        problems.add(f"{names[0]} and {names[1]} differ in length ({xa.size} vs {ya.size})",
                     "Pass one easting and one northing per point.")
    return xa, ya


def _looks_like_lonlat(x: np.ndarray, y: np.ndarray) -> bool:
    """All finite coordinates are within +-180 / +-90 (and there is at least one)."""
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.any():
        return False
    xf, yf = x[finite], y[finite]
    return bool((np.abs(xf) <= 180).all() and (np.abs(yf) <= 90).all())


def _check_xy_metres(x: np.ndarray, y: np.ndarray, study_bounds=None) -> None:
    """Raise CRSError when coordinates look like longitude/latitude degrees.

    With ``study_bounds`` (the study area's bounds in metres), only when the
    study area itself lies outside the range of degrees.

    Examples
    --------
    >>> _check_xy_metres(np.array([530_000.0]), np.array([210_000.0]))   # metres: fine
    >>> _check_xy_metres(np.array([-0.34]), np.array([51.75]))
    Traceback (most recent call last):
    ...
    hotspots._errors.CRSError: x/y look like longitude/latitude in degrees ...
    """
    if study_bounds is not None:
        minx, miny, maxx, maxy = study_bounds
        if not (minx > 180 or maxx < -180 or miny > 90 or maxy < -90):
            return
    if x.size and _looks_like_lonlat(x, y):
        raise CRSError(
            "x/y look like longitude/latitude in degrees (all |x| <= 180 and |y| <= 90), "
            "but metres in British National Grid were expected",
            hint="project the points to EPSG:27700 first, e.g. gdf.to_crs(27700)",
        )


def _index_for(n: int, *candidates: Any) -> pd.Index:
    """The index of the first pandas input with n rows, else a RangeIndex."""
    for value in candidates:
        if isinstance(value, (pd.Series, pd.DataFrame)) and len(value.index) == n:
            return value.index
    return pd.RangeIndex(n)


def level_label(level: float) -> str:
    """Column-name label of a confidence level: 0.95 -> ``"95"``, 0.998 -> ``"998"``.

    Examples
    --------
    >>> level_label(0.95), level_label(0.998), level_label(0.9)
    ('95', '998', '90')
    """
    return f"{float(level) * 100:g}".replace(".", "")
