"""Rows of ``Generator.choice(population, size, replace=False)`` drawn at once, the same numbers as row by row.

Local Moran's conditional permutations draw one set of distinct cells per
permutation from ``numpy.random.default_rng(seed)``, a thousand calls of
``rng.choice`` per study area (:func:`hotspots.detect.moran._permutation_ids`).
For a small sample from a larger population numpy takes Floyd's algorithm
then shuffles the sample, every step one bounded 32-bit draw (Lemire's
method) from the generator's stream of 32-bit halves.  :func:`choice_rows`
takes that stream once (``bit_generator.random_raw``) and makes the same
steps on all rows together.  Whenever it cannot be sure of numpy's numbers
(another algorithm for these sizes, a draw numpy would reject and redraw,
or numpy's rows differing on a check case) it returns None and the caller
draws row by row.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["choice_rows", "rows_with_repeat"]

_LOW = np.uint64(0xFFFFFFFF)


def choice_rows(population: int, size: int, permutations: int, seed: int) -> np.ndarray | None:
    """``np.stack([rng.choice(population, size, replace=False) for _ in range(permutations)])`` with
    ``rng = np.random.default_rng(seed)``, or None where not proven the same (then draw row by row)."""
    if not _floyd_applies(population, size) or permutations < 1 or not _matches_numpy():
        return None
    return _floyd_rows(population, size, permutations, seed)


def _floyd_applies(population: int, size: int) -> bool:
    """numpy's Floyd branch with one bounded 32-bit draw per step (each range at least 1 and below 2**32 - 1)."""
    return (1 <= size < population < 2**32 - 1
            and not (population > 10_000 and size > population // 50))  # else numpy's tail shuffle


def _floyd_rows(population: int, size: int, permutations: int, seed: int) -> np.ndarray | None:
    rng = np.random.default_rng(seed)
    steps = 2 * size - 1  # size draws of Floyd's algorithm, size - 1 of the shuffle
    total = permutations * steps
    raw = rng.bit_generator.random_raw((total + 1) // 2)
    halves = np.empty(2 * raw.size, dtype=np.uint64)  # next_uint32: the low half of each output, then the high
    halves[0::2] = raw & _LOW
    halves[1::2] = raw >> np.uint64(32)
    draws = halves[:total].reshape(permutations, steps)
    top = np.arange(population - size, population, dtype=np.uint64)  # step c draws from [0, top[c]]
    value = _bounded(draws[:, :size], top)
    if value is None:
        return None
    out = np.empty((permutations, size), dtype=np.int64)
    for c in range(size):  # a value already taken is replaced by top[c] (never taken: above all before)
        taken = (out[:, :c] == value[:, c:c + 1]).any(axis=1)
        out[:, c] = np.where(taken, int(top[c]), value[:, c])
    rows = np.arange(permutations)
    for k, i in enumerate(range(size - 1, 0, -1)):  # numpy's shuffle of the sample: swap i with [0, i]
        pick = _bounded(draws[:, size + k:size + k + 1], np.array([i], dtype=np.uint64))
        if pick is None:
            return None
        pick = pick[:, 0]
        held = out[:, i].copy()
        out[:, i] = out[rows, pick]
        out[rows, pick] = held
    return out


def _bounded(u: np.ndarray, top: np.ndarray) -> np.ndarray | None:
    """Lemire's bounded draw in [0, top] from 32-bit ``u`` (numpy's ``buffered_bounded_lemire_uint32``); None
    when any draw would be rejected (numpy would then take further numbers from the stream)."""
    span = top + np.uint64(1)
    product = u * span  # < 2**64: both below 2**32
    if ((product & _LOW) < (_LOW - top) % span).any():
        return None
    return (product >> np.uint64(32)).astype(np.int64)


def _rows_reference(population: int, size: int, permutations: int, seed: int) -> np.ndarray:
    """Row by row, as numpy draws them."""
    rng = np.random.default_rng(seed)
    out = np.empty((permutations, size), dtype=np.int64)
    for row in range(permutations):
        out[row] = rng.choice(population, size=size, replace=False)
    return out


@functools.lru_cache(maxsize=1)
def _matches_numpy() -> bool:
    """Whether this numpy draws as :func:`_floyd_rows` does (checked once per process on cases with many
    repeats in Floyd's steps, a small population and a large one)."""
    for population, size, permutations, seed in ((9, 8, 120, 1), (20, 8, 120, 2), (12_281, 8, 60, 3), (5, 1, 30, 4)):
        fast = _floyd_rows(population, size, permutations, seed)
        if fast is None or not np.array_equal(fast, _rows_reference(population, size, permutations, seed)):
            return False
    return True


#: Up to this many columns, :func:`rows_with_repeat` compares column pairs (size * (size - 1) / 2 of them).
_PAIRWISE_MAX_COLUMNS = 12


def rows_with_repeat(ids: np.ndarray) -> np.ndarray:
    """The rows of a 2-D integer array holding a value twice (ascending), as by sorting each row and comparing
    neighbours; by comparing column pairs when the rows are short (a sort along a short axis is slow)."""
    size = ids.shape[1]
    if size <= 1:
        return np.array([], int)
    if size > _PAIRWISE_MAX_COLUMNS:
        ordered = np.sort(ids, axis=1)
        return np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
    columns = np.ascontiguousarray(ids.T)
    repeat = np.zeros(ids.shape[0], dtype=bool)
    for a in range(size - 1):
        for b in range(a + 1, size):
            repeat |= columns[a] == columns[b]
    return np.flatnonzero(repeat)
