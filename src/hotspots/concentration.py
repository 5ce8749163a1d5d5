"""Concentration of events across units: top-share, Gini and the chance-corrected Gini.

* :func:`concentration`: share of all events in the busiest x% of units
  (the "law of crime concentration", Weisburd 2015);
* :func:`gini`: Gini coefficient of events across units;
* :func:`gini_poisson_adjusted`: the Gini against the Gini of the same number
  of events spread at random (:class:`GiniBaseline`), which matters when
  events are sparse (Bernasco & Steenbeek 2017).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from hotspots._validate import (
    _as_float,
    _check_counts,
    _check_int,
    _Problems,
)


def _counts_1d(problems: _Problems, name: str, counts: Any, *, integer: bool) -> np.ndarray | None:
    arr = _as_float(problems, name, counts)
    if arr is None:
        return None
    if arr.ndim != 1 or arr.size == 0:
        problems.add(f"{name} must be 1-D and not empty; got shape {arr.shape}",
                     "Pass one count per unit (cell, street segment, place).")
        return None
    _check_counts(problems, name, arr, integer=integer)
    return arr


def _check_fractions(problems: _Problems, name: str, values: Any) -> tuple[float, ...]:
    try:
        fractions = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        problems.add(f"{name} must be a sequence of fractions in (0, 1]; got {values!r}",
                     f"For example {name}=(0.01, 0.05, 0.10).")
        return ()
    if not fractions or not all(0 < f <= 1 for f in fractions):
        problems.add(f"{name} must be non-empty fractions in (0, 1]; got {values!r}",
                     f"Give fractions of units, e.g. {name}=(0.01, 0.05, 0.10) for the top 1%, 5%, 10%.")
        return ()
    return fractions


def concentration(counts: Any, *, top_shares: Sequence[float] = (0.01, 0.05, 0.10)) -> pd.DataFrame:
    """Share of all events in the top x% of units (the "law of crime concentration").

    Parameters
    ----------
    counts : array-like
        Events per unit (cells, places), >= 0.  Include the units with zero
        events: they are part of the denominator.
    top_shares : sequence of float, default (0.01, 0.05, 0.10)
        Fractions of units, each in (0, 1].

    Returns
    -------
    pandas.DataFrame
        One row per share: ``top_fraction_of_units``, ``n_units``,
        ``units_in_top`` (``ceil(x * n)``), ``count_in_top``,
        ``share_of_total`` (NaN when there are no events).

    Notes
    -----
    Units are sorted by count, highest first; ties at the cut-off do not
    change the sum, so the result does not depend on how ties are broken.
    Weisburd (2015) "The law of crime concentration and the criminology of
    place", Criminology 53:133-157.  With fewer events than units the share
    is inflated by sparsity alone: see :func:`gini_poisson_adjusted`.

    Examples
    --------
    >>> concentration([50, 20, 10, 5, 5, 5, 3, 2, 0, 0], top_shares=(0.1, 0.25))
       top_fraction_of_units  n_units  units_in_top  count_in_top  share_of_total
    0                   0.10       10             1          50.0             0.5
    1                   0.25       10             3          80.0             0.8
    """
    problems = _Problems("concentration")
    arr = _counts_1d(problems, "counts", counts, integer=False)
    shares = _check_fractions(problems, "top_shares", top_shares)
    problems.raise_if_any()
    units, in_top, share = _top_shares(arr, shares)
    return pd.DataFrame({
        "top_fraction_of_units": shares,
        "n_units": arr.size,
        "units_in_top": units,
        "count_in_top": in_top,
        "share_of_total": share,
    })


def _top_shares(arr: np.ndarray, shares: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The columns of :func:`concentration` for checked counts: units in the top, their count, their share."""
    n = arr.size
    ordered = np.sort(arr)[::-1]
    cumulative = np.concatenate([[0.0], np.cumsum(ordered)])
    total = cumulative[-1]
    units = np.array([int(np.ceil(round(s * n, 9))) for s in shares])
    in_top = cumulative[units]
    return units, in_top, (in_top / total if total > 0 else np.full(in_top.shape, np.nan))


def gini(counts: Any) -> float:
    """Gini coefficient of events across units.

    Parameters
    ----------
    counts : array-like
        Events (or any non-negative amount) per unit, zeros included.

    Returns
    -------
    float
        ``G = sum_i (2i - n - 1) x_(i) / (n sum x)`` with x sorted ascending
        (0 = all units equal, ``1 - 1/n`` = everything in one unit); NaN when
        the total is 0.

    Notes
    -----
    The standard (biased) sample Gini, as ``DescTools::Gini(x, unbiased =
    FALSE)`` and Bernasco & Steenbeek (2017) equation 1.  Sparse counts
    inflate it: see :func:`gini_poisson_adjusted`.

    Examples
    --------
    >>> round(gini([10, 8, 2, 0, 0, 0, 0, 0, 0, 0]), 4)
    0.78
    """
    problems = _Problems("gini")
    arr = _counts_1d(problems, "counts", counts, integer=False)
    problems.raise_if_any()
    total = arr.sum()
    if total == 0:
        return math.nan
    n = arr.size
    ordered = np.sort(arr)
    return float(np.sum((2 * np.arange(1, n + 1) - n - 1) * ordered) / (n * total))


def _gini_of_integer_counts(counts: np.ndarray) -> float:
    """Gini from the histogram of integer counts: O(max count), no sort."""
    frequency = np.bincount(counts)
    value = np.arange(frequency.size, dtype=float)
    n = counts.size
    below = np.concatenate([[0], np.cumsum(frequency)[:-1]]).astype(float)
    total = float(np.dot(value, frequency))
    return float(np.sum(value * frequency * (2 * below + frequency - n)) / (n * total))


#: Simulations drawn and counted together: at most this many events x simulations per batch (memory bound).
_BATCH_DRAWS = 2_000_000
#: whole numbers up to this are exact in float64
_EXACT = 2**53


def _ginis_of_rows(allocations: np.ndarray) -> np.ndarray:
    """:func:`_gini_of_integer_counts` of each row of a 2-D array of integer counts, bit for bit.

    Every term of that sum is a whole number (value x frequency x (2 below +
    frequency - n)), so the sum is exact in int64 here and in float64 there
    whatever the order of summation, while it stays below 2**53; the one
    division is then the same.  Rows whose sums could reach 2**53 are handed
    to :func:`_gini_of_integer_counts`.
    """
    rows, n = allocations.shape
    width = int(allocations.max()) + 1 if allocations.size else 1
    frequency = np.bincount((allocations + (np.arange(rows, dtype=np.int64) * width)[:, None]).ravel(),
                            minlength=rows * width).reshape(rows, width)
    value = np.arange(width, dtype=np.int64)
    below = np.cumsum(frequency, axis=1) - frequency
    total = frequency @ value
    terms = value * frequency * (2 * below + frequency - n)
    out = np.empty(rows)
    # |2 below + frequency - n| <= n, so every term, partial sum and the divisor are at most n x total
    if n * int(total.max()) >= _EXACT:
        for k in range(rows):
            out[k] = _gini_of_integer_counts(allocations[k])
        return out
    out[:] = terms.sum(axis=1).astype(float) / (n * total.astype(float))
    return out


def _simulated_ginis(rng: np.random.Generator, n_units: int, n_events: int, simulations: int) -> np.ndarray:
    """Gini of ``simulations`` uniform random allocations of ``n_events`` to ``n_units``.

    The draws are one ``rng.integers(0, n_units, size=n_events)`` per simulation, in order; a batch of
    simulations is drawn by one call of ``size=(batch, n_events)``, the same random stream (numpy's bounded
    integers take their 32-bit or 64-bit words straight from the bit generator, whose buffered half-word
    carries over from one call to the next, so the draws of one call are those of consecutive calls), without
    a call per simulation; the Gini is done for a batch at once.  Each simulation's draws are counted by a
    bincount of their own (whole-number counts: the allocations of one bincount over the batch with each
    row's draws offset, without writing the offsets into every draw).
    """
    simulated = np.empty(simulations)
    batch = max(1, min(simulations, _BATCH_DRAWS // max(n_events, 1)))
    for start in range(0, simulations, batch):
        stop = min(simulations, start + batch)
        draws = rng.integers(0, n_units, size=(stop - start, n_events))
        allocations = np.empty((stop - start, n_units), dtype=np.intp)
        for row, drawn in enumerate(draws):
            allocations[row] = np.bincount(drawn, minlength=n_units)
        simulated[start:stop] = _ginis_of_rows(allocations)
    return simulated


@functools.lru_cache(maxsize=512)
def _random_baseline(n_units: int, n_events: int, simulations: int, seed: int) -> tuple[float, float]:
    """Mean and SD (NaN for one simulation) of :func:`_simulated_ginis` from ``default_rng(seed)``.

    They depend on nothing else, and a table asks for the same again (a group of one category repeats
    that category's counts): each is simulated once.
    """
    simulated = _simulated_ginis(np.random.default_rng(seed), n_units, n_events, simulations)
    return float(simulated.mean()), float(simulated.std(ddof=1)) if simulations > 1 else math.nan


@dataclasses.dataclass(frozen=True)
class GiniBaseline:
    """Result of :func:`gini_poisson_adjusted`.

    Attributes
    ----------
    gini : float
        Observed (standard) Gini.
    gini_generalised : float
        Bernasco & Steenbeek's generalised Gini (equals ``gini`` when there
        are at least as many events as units).
    gini_random_mean, gini_random_sd : float
        Mean and SD of the Gini of the same number of events spread
        uniformly at random over the units (multinomial), over the
        simulations.
    gini_adjusted : float
        ``(gini - gini_random_mean) / (1 - gini_random_mean)``: the share of
        the possible concentration beyond chance that is observed.
    n_units, n_events, simulations, seed : int
    """

    gini: float
    gini_generalised: float
    gini_random_mean: float
    gini_random_sd: float
    gini_adjusted: float
    n_units: int
    n_events: int
    simulations: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """Plain Python types, ready for JSON."""
        return dataclasses.asdict(self)


def gini_poisson_adjusted(counts: Any, *, simulations: int = 200, seed: int = 12345) -> GiniBaseline:
    """Gini against the concentration expected by chance when events are sparse.

    With fewer events than units (most grid cells have none) the raw Gini is
    high even if events fall completely at random.  This compares the
    observed Gini with the Gini of the same number of events spread at random.

    Parameters
    ----------
    counts : array-like
        Event counts per unit (whole numbers >= 0), zeros included.
    simulations : int, default 200
        Random allocations simulated (>= 1).
    seed : int, default 12345
        Seed of the simulations (numpy ``default_rng``).

    Returns
    -------
    GiniBaseline
        Observed ``gini``, ``gini_generalised`` (Bernasco & Steenbeek 2017),
        the random baseline ``gini_random_mean`` / ``gini_random_sd`` and the
        chance-corrected ``gini_adjusted``.  NaN values when there are no
        events.  ``.to_dict()`` gives plain types.

    Notes
    -----
    Bernasco & Steenbeek (2017) "More places than crimes: implications for
    evaluating the law of crime concentration at place", Journal of
    Quantitative Criminology 33:451-467: generalised Gini
    ``G' = max(1, n/N) (G - 1) + 1`` (compares with maximal equality given
    N events in n units rather than with perfect equality; as their R package
    lorenzgini with ``unbiased = FALSE``).  Random baseline after Levin,
    Rosenfeld & Deckard (2017, Journal of Quantitative Criminology
    33:635-647): events allocated uniformly at random (multinomial), and the
    chance-corrected ``(G - E[G]) / (1 - E[G])`` (0 = no more concentrated
    than chance, 1 = maximal), which is the value reported as
    ``gini_adjusted``.  Each simulation is O(N + n).

    Examples
    --------
    >>> counts = np.zeros(1000, dtype=int)
    >>> counts[:40] = 5                                  # 200 events in 40 of 1,000 cells
    >>> result = gini_poisson_adjusted(counts, simulations=50, seed=1)
    >>> round(result.gini, 3), round(result.gini_generalised, 3)
    (0.96, 0.8)
    >>> 0.8 < result.gini_random_mean < 0.85, 0.7 < result.gini_adjusted < 0.85
    (True, True)
    """
    problems = _Problems("gini_poisson_adjusted")
    arr = _counts_1d(problems, "counts", counts, integer=True)
    _check_int(problems, "simulations", simulations, 1)
    _check_int(problems, "seed", seed, 0)
    problems.raise_if_any()
    integer_counts = arr.astype(np.int64)
    n_units = int(arr.size)
    n_events = int(integer_counts.sum())
    if n_events == 0:
        return GiniBaseline(math.nan, math.nan, math.nan, math.nan, math.nan, n_units, 0, int(simulations), int(seed))
    observed = _gini_of_integer_counts(integer_counts)
    generalised = max(1.0, n_units / n_events) * (observed - 1.0) + 1.0
    random_mean, random_sd = _random_baseline(n_units, n_events, int(simulations), int(seed))
    adjusted = (observed - random_mean) / (1.0 - random_mean) if random_mean < 1 else math.nan
    return GiniBaseline(
        gini=observed, gini_generalised=float(generalised), gini_random_mean=random_mean,
        gini_random_sd=random_sd,
        gini_adjusted=float(adjusted), n_units=n_units, n_events=n_events, simulations=int(simulations),
        seed=int(seed),
    )
