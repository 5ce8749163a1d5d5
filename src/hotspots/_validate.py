"""TODO: module docstring (moved from hotspots.stats)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any
import numpy as np
import pandas as pd
from hotspots._errors import ValidationError


class _Problems:
    """Collects argument problems so that one error lists all of them."""

    def __init__(self, function: str):
        self.function = function
        self.messages: list[str] = []
        self.hints: list[str] = []

    def add(self, message: str, hint: str) -> None:
        self.messages.append(message)
        if hint not in self.hints:
            self.hints.append(hint)

    def raise_if_any(self) -> None:
        if not self.messages:
            return
        if len(self.messages) == 1:
            text = f"{self.function}: {self.messages[0]}"
        else:
            listed = "; ".join(f"({i}) {m}" for i, m in enumerate(self.messages, 1))
            text = f"{self.function}: {len(self.messages)} problems: {listed}"
        raise ValidationError(text, hint=" ".join(self.hints))


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
