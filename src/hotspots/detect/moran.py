"""Local Moran's I (Anselin 1995) with seeded conditional permutations and FDR.

:func:`local_moran` gives each cell's local I, its pseudo p-value from
conditional permutations (fast exact paths for binary weights), the
FDR-adjusted q and the quadrant (HH, LL, HL, LH) of significant cells.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from hotspots._validate import (
    _as_float,
    _check_choice,
    _check_int,
    _check_level,
    _first_bad,
    _index_for,
    _Problems,
)
from hotspots.detect._draws import choice_rows, rows_with_repeat
from hotspots.detect.gistar import _check_weights
from hotspots.fdr import _significance

#: Upper bound on the number of simulated values held in memory at once by the
#: local Moran permutation kernel (cells x permutations x max neighbours).
_PERMUTATION_CHUNK_ELEMENTS = 2_000_000


#: Largest cardinality handled by the local Moran lookup kernel (a table of 2**k sums per permutation).
_LOOKUP_MAX_NEIGHBOURS = 8


MORAN_QUADRANTS = ("HH", "LH", "LL", "HL", "isolated", "none")


MORAN_CLASSES = ("hotspot_HH", "coldspot_LL", "outlier_HL", "outlier_LH", "not_significant", "isolated")


@functools.lru_cache(maxsize=32)
def _permutation_ids(population: int, size: int, permutations: int, seed: int) -> np.ndarray:
    """(permutations, size) indices drawn without replacement from range(population).

    One draw per permutation, shared by all cells (as in esda's ``crand``):
    cell i maps index j to j + (j >= i), i.e. draws from the other n - 1 cells.
    Cached read-only: every crime selection on one grid uses the same draws.
    """
    ids = choice_rows(population, size, permutations, seed)  # all rows at once: the same numbers
    if ids is None:
        rng = np.random.default_rng(seed)
        ids = np.empty((permutations, size), dtype=np.int64)
        for row in range(permutations):  # loop over permutations, not cells; each draw is O(size)
            ids[row] = rng.choice(population, size=size, replace=False)
    ids.flags.writeable = False
    return ids


#: First-stage p at or below which a cell gets the second permutation stage.
REFINE_BELOW = 0.01

#: Default cap on the second-stage permutations.
MAX_REFINE_PERMUTATIONS = 500_000


@functools.lru_cache(maxsize=8)
def _refine_ids(population: int, size: int, permutations: int, seed: int, stage: int = 2) -> np.ndarray:
    """(permutations, size) distinct indices per row from range(population), for the second stage.

    Drawn vectorised (uniform integers, rows with a repeat redrawn: each row
    is a uniform draw without replacement) from a stream independent of the
    first stage's and of each other (``SeedSequence([seed, stage])``).  Cached read-only.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, stage]))
    ids = rng.integers(0, population, size=(permutations, size), dtype=np.int64)
    while True:
        repeat = rows_with_repeat(ids)
        if repeat.size == 0:
            break
        ids[repeat] = rng.integers(0, population, size=(repeat.size, size), dtype=np.int64)
    ids.flags.writeable = False
    return ids


def local_moran(
    values: Any,
    weights: Any,
    *,
    permutations: int = 999,
    seed: int = 12345,
    alpha: float = 0.05,
    correction: str | None = "fdr_bh",
    refine: bool = True,
    max_permutations: int = MAX_REFINE_PERMUTATIONS,
) -> pd.DataFrame:
    """Local Moran's I (LISA) with seeded conditional permutation inference, refined where FDR needs it.

    Parameters
    ----------
    values : array-like
        One value per cell; finite.
    weights : scipy.sparse matrix, shape (n, n)
        Spatial weights (binary contiguity in this package).  Any diagonal
        (self-weight) is dropped and rows are standardised to sum to 1, so
        the same matrix can be passed as to :func:`gi_star`.
    permutations : int, default 999
        Conditional permutations per cell (>= 1); the smallest attainable
        p-value is ``1 / (permutations + 1)``.
    seed : int, default 12345
        Seed of the permutation draws (numpy ``default_rng``); the same seed
        and inputs give the same p-values.
    alpha : float, default 0.05
        Significance level of ``moran_class``.
    correction : {"fdr_bh", None}, default "fdr_bh"
        Benjamini-Hochberg across all cells with neighbours; None uses p.
    refine : bool, default True
        With ``correction="fdr_bh"``: give the cells whose first-stage p is
        at most :data:`REFINE_BELOW` further, independent runs of up to
        ``ceil(m / alpha)`` permutations (m cells with neighbours; at most
        ``max_permutations``), so that a p-value small enough for
        Benjamini-Hochberg across m cells can be reached (see Notes).  False keeps the
        first stage only (p floored at ``1 / (permutations + 1)``).
    max_permutations : int, default 500,000
        Cap on the permutations of a later run.

    Returns
    -------
    pandas.DataFrame
        ``moran_i`` (local I), ``moran_lag`` (spatial lag of the standardised
        values), ``moran_p`` (pseudo p-value), ``moran_q`` (BH q, or p),
        ``moran_quadrant`` (categorical: ``HH``, ``LH``, ``LL``, ``HL``,
        ``isolated`` for cells without neighbours, ``none`` for constant
        input) and ``moran_class`` (categorical: ``hotspot_HH``,
        ``coldspot_LL``, ``outlier_HL``, ``outlier_LH`` when significant at
        ``alpha``, else ``not_significant``; ``isolated``).  Islands get NaN
        I, p and q.  ``attrs["local_moran"]`` records the first-stage
        permutations, the cells refined, each later run and the smallest
        attainable p.

    Notes
    -----
    Anselin (1995) "Local indicators of spatial association - LISA",
    Geographical Analysis 27:93-115.  With z the standardised values and W
    row-standardised without self, ``I_i = (n - 1) z_i (W z)_i / sum(z**2)``
    (esda's scaling; equal to esda ``Moran_Local(y, w).Is``).  Quadrants as
    esda: HH when ``z_i > 0`` and lag > 0, LH, LL, HL; zero counts as low.

    Conditional permutation: for each permutation one set of ``max
    neighbours`` cells is drawn without replacement and shared by all cells,
    each cell skipping itself (esda's scheme), so cell i's neighbours are
    replaced by a random sample of the other n - 1 values.  The pseudo
    p-value is esda's ``p_sim`` (esda calls it "directed"): ``(M + 1) /
    (permutations + 1)`` with M the number of permuted I at least as extreme
    as the observed in the direction of the nearer tail.  Permuted values
    equal to the observed one (frequent with integer counts) count as
    extreme in both tails here; esda counts them in the upper tail only.
    The directed p-value is about half the two-sided one (esda's own
    warning); together with the FDR correction this is the GeoDa convention.

    Why a second stage: with 999 permutations no p-value is below 0.001,
    while Benjamini-Hochberg across m cells needs ``p <= k alpha / m`` for
    the k-th smallest; over 1,500 to 12,000 cells (0.05 / 12,000 = 4e-6) a
    single cluster can never be significant, and 74 of the 77 2025
    Hertfordshire maps had none.  Sequential scheme: the first stage screens
    every cell; the cells with ``p <= REFINE_BELOW`` (the only ones that
    could be significant after BH unless over 1% of cells are) get fresh,
    independent draws (another seed stream), ``M = ceil(m / alpha) / 16``
    of them at first; the cells still at that run's floor ``1 / (M + 1)``
    get another fresh run with 4 x M draws, and so on up to
    ``ceil(m / alpha)`` (floor about ``alpha / m``: a cell whose
    neighbourhood is never matched can pass BH even when it is the only
    one) -- stopping early once the cells at the floor are numerous enough
    to pass BH at it (k cells at ``1 / (M + 1) <= k alpha / m``).  Each
    cell's p comes from its last run alone, whose draws are independent of
    the runs that selected it: a valid permutation p-value.  The other cells
    keep their first-stage p (> 0.01).

    Cost: cells x permutations x max neighbours draws, processed in blocks
    (about 0.2 s for 1,600 cells with 999 permutations); the later runs
    only for the refined cells (``attrs["local_moran"]["refine_rounds"]``:
    (permutations, cells) per run).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> band = sp.diags([1.0, 1.0], [-1, 1], shape=(6, 6))
    >>> queen = sp.kron(band + sp.identity(6), band + sp.identity(6), format="csr") - sp.identity(36)
    >>> counts = np.zeros(36)
    >>> counts[[0, 1, 6, 7]] = 10.0                          # a corner cluster
    >>> result = local_moran(counts, queen, permutations=99, seed=1, correction=None)
    >>> result.loc[[0, 7, 35], ["moran_quadrant", "moran_class"]].astype(str)
       moran_quadrant      moran_class
    0              HH       hotspot_HH
    7              HH       hotspot_HH
    35             LL  not_significant
    """
    problems = _Problems("local_moran")
    x = _as_float(problems, "values", values)
    _check_int(problems, "permutations", permutations, 1)
    _check_int(problems, "seed", seed, 0)
    _check_level(problems, "alpha", alpha)
    _check_choice(problems, "correction", correction, ("fdr_bh", None))
    _check_int(problems, "max_permutations", max_permutations, 1)
    if x is None:
        problems.raise_if_any()
    if x.ndim != 1 or x.size < 3:
        problems.add(f"values must be 1-D with at least 3 cells; got shape {x.shape}",
                     "Pass one value per cell (flatten a 2-D raster in the order the weights use).")
    elif not np.isfinite(x).all():
        problems.add(f"values must be finite; it has {_first_bad(x, ~np.isfinite(x))}",
                     "Cells outside the study area must be dropped, not set to NaN.")
    w = _check_weights(problems, weights, x.size if x.ndim == 1 else None)
    problems.raise_if_any()

    n = x.size
    w, island = _row_standardised(w)

    index = _index_for(n, values)
    quadrant_codes = np.full(n, MORAN_QUADRANTS.index("none"), dtype=np.int8)
    class_codes = np.full(n, MORAN_CLASSES.index("not_significant"), dtype=np.int8)
    quadrant_codes[island] = MORAN_QUADRANTS.index("isolated")
    class_codes[island] = MORAN_CLASSES.index("isolated")
    moran_i = np.where(island, np.nan, 0.0)
    lag = np.where(island, np.nan, 0.0)
    p = np.where(island, np.nan, 1.0)

    spread = x.std()
    if np.ptp(x) > 0:
        z = (x - x.mean()) / spread
        lag = np.where(island, np.nan, w @ z)
        scaling = (n - 1) / np.sum(z * z)
        moran_i = np.where(island, np.nan, scaling * z * lag)
        high, high_lag = z > 0, lag > 0
        for name, mask in (("HH", high & high_lag), ("LH", ~high & high_lag),
                           ("LL", ~high & ~high_lag), ("HL", high & ~high_lag)):
            quadrant_codes[mask & ~island] = MORAN_QUADRANTS.index(name)
        cells = np.flatnonzero(~island)
        if cells.size:
            p[cells] = _moran_permutation_p(z, w, moran_i, scaling, cells, permutations, seed, x=x)
    second, refined, rounds = 0, 0, []
    if refine and correction == "fdr_bh" and np.ptp(x) > 0:
        m = int((~island).sum())
        target = min(int(max_permutations), max(int(permutations), math.ceil(m / alpha)))
        chosen = np.flatnonzero(~island & (p <= REFINE_BELOW))
        refined = int(chosen.size)
        draws = max(int(permutations), math.ceil(target / 16))
        stage = 2
        while chosen.size and target > permutations:
            draws = min(draws, target)
            p[chosen] = _moran_permutation_p(z, w, moran_i, scaling, chosen, draws, seed, x=x, stage=stage)
            rounds.append((int(draws), int(chosen.size)))
            second = draws
            at_floor = chosen[p[chosen] <= 1.0 / (draws + 1) * (1 + 1e-9)]
            # done when no cell is at the floor, the floor is what BH needs, or those at it pass BH anyway
            if at_floor.size == 0 or draws >= target or at_floor.size * alpha / m >= 1.0 / (draws + 1):
                break
            chosen, draws, stage = at_floor, draws * 4, stage + 1
    q = _significance(p, correction)

    significant = (q <= alpha) & ~island
    for quadrant, label in (("HH", "hotspot_HH"), ("LL", "coldspot_LL"), ("HL", "outlier_HL"),
                            ("LH", "outlier_LH")):
        class_codes[significant & (quadrant_codes == MORAN_QUADRANTS.index(quadrant))] = MORAN_CLASSES.index(label)
    df = pd.DataFrame(
        {"moran_i": moran_i, "moran_lag": lag, "moran_p": p, "moran_q": q,
         "moran_quadrant": pd.Categorical.from_codes(quadrant_codes, dtype=_categories(MORAN_QUADRANTS)),
         "moran_class": pd.Categorical.from_codes(class_codes, dtype=_categories(MORAN_CLASSES))},
        index=index,
    )
    df.attrs["local_moran"] = {"permutations": int(permutations), "seed": int(seed), "alpha": float(alpha),
                               "correction": correction, "islands": int(island.sum()), "n": int(n),
                               "refined_cells": refined, "second_stage_permutations": int(second),
                               "refine_rounds": rounds, "refine_below": REFINE_BELOW,
                               "smallest_p": 1.0 / ((second if rounds else permutations) + 1)}
    return df


def _row_standardised_reference(w: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """``w`` without its diagonal, rows standardised to sum to 1, and the islands (rows without neighbours)."""
    w = (w - sp.diags(w.diagonal())).tocsr()
    w.eliminate_zeros()
    w.sort_indices()
    row_sum = np.asarray(w.sum(axis=1)).ravel()
    cardinality = np.diff(w.indptr)
    island = cardinality == 0
    w = (sp.diags(np.where(island, 0.0, 1.0 / np.where(island, 1.0, row_sum))) @ w).tocsr()
    return w, island


#: The weights last standardised, (shape, indptr, indices, data) copies -> result: every crime selection of a
#: study area passes the same weights.
_STANDARDISED: list[tuple[tuple, tuple[sp.csr_matrix, np.ndarray]]] = []


def _row_standardised(w: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """:func:`_row_standardised_reference`, reused while the weights are equal (their arrays compared).

    The sparse arithmetic cost more per call than the comparison; the result is read only here.
    """
    for (shape, indptr, indices, data), result in _STANDARDISED:
        if (shape == w.shape and np.array_equal(indptr, w.indptr) and np.array_equal(indices, w.indices)
                and np.array_equal(data, w.data)):
            return result
    result = _row_standardised_reference(w)
    _STANDARDISED.insert(0, ((w.shape, w.indptr.copy(), w.indices.copy(), w.data.copy()), result))
    del _STANDARDISED[2:]
    return result


@functools.lru_cache(maxsize=4)
def _categories(categories: tuple[str, ...]) -> pd.CategoricalDtype:
    """The (unordered) dtype of a class column, built once: checking the categories per call costs more."""
    return pd.CategoricalDtype(list(categories))


def _moran_permutation_p(z: np.ndarray, w: sp.csr_matrix, observed: np.ndarray, scaling: float,
                         cells: np.ndarray, permutations: int, seed: int, *, x: np.ndarray | None = None,
                         stage: int = 1) -> np.ndarray:
    """Directed pseudo p-values for ``cells`` (conditional permutation with esda's shared draws).

    ``x``: the raw values (``z`` standardises them); when they are whole
    numbers the counting kernel is used where it is provably exact.
    ``stage`` 2 draws from the independent second-stage stream.
    """
    n = z.size
    cardinality = np.diff(w.indptr)
    max_card = int(cardinality.max())
    ids = (_permutation_ids(n - 1, max_card, permutations, seed) if stage == 1
           else _refine_ids(n - 1, max_card, permutations, seed, stage))
    row_first = w.data[np.minimum(w.indptr[:-1], max(w.nnz - 1, 0))]
    equal_in_row = bool(np.all(w.data == np.repeat(row_first, cardinality)))
    if not equal_in_row:
        return _moran_p_padded(z, w, observed, scaling, cells, ids, permutations)
    p = np.full(cells.size, np.nan)
    if x is not None and np.all(x == np.round(x)) and np.abs(x).max() < 2.0**40:
        p = _moran_p_counting(x, z, w, observed, scaling, cells, ids, permutations, seed, stage)
    rest = np.flatnonzero(np.isnan(p))
    if rest.size:
        kernel = _moran_p_lookup if max_card <= _LOOKUP_MAX_NEIGHBOURS else _moran_p_padded
        p[rest] = kernel(z, w, observed, scaling, cells[rest], ids, permutations)
    return p


def _moran_p_counting(x, z, w, observed, scaling, cells, ids, permutations, seed, stage=1) -> np.ndarray:
    """The permutation kernel for whole-number values and equal weights in each row; NaN where not proven exact.

    With equal weights, a permuted local I differs from the observed one by
    ``scaling * z_i * w_i * (S - S_obs) / sd``, where S is the sum of the
    drawn values and S_obs that of the cell's neighbours.  For whole numbers
    both sums are integers, so each comparison of the padded kernel (with
    its 1e-10 tolerance) is a comparison of two integers -- exactly so when
    one unit of S moves I by far more than the tolerance, and the rounding
    of the float arithmetic stays far inside it.  Those bounds are checked
    per cell; cells that fail them (none in practice) get NaN and go to the
    float kernel.  The integers allow counting without visiting every
    (cell, permutation) pair: see :func:`_count_at_least`.
    """
    eps = np.finfo(float).eps
    values = np.round(x).astype(np.int64)
    cardinality = np.diff(w.indptr)
    weight = w.data[np.minimum(w.indptr[:-1], max(w.nnz - 1, 0))]
    neighbour_sum = sp.csr_matrix((np.ones(w.nnz, dtype=np.int64), w.indices, w.indptr), shape=w.shape) @ values
    card, wt, obs = cardinality[cells], weight[cells], observed[cells]
    slope = np.abs(scaling * z[cells]) * wt  # |d I / d S| * sd
    tolerance = 1e-10 * np.maximum(1.0, np.abs(obs))
    rounding = 16.0 * (card + 6) * eps * slope * card * np.abs(z).max()
    exact = (rounding < 0.5 * tolerance) & (slope / x.std() > 2.0 * (tolerance + rounding))
    p = np.full(cells.size, np.nan)
    for c in np.unique(card[exact]):
        members = np.flatnonzero(exact & (card == c))
        chosen = np.ascontiguousarray(cells[members], dtype=np.int64)
        draws = ids[:, :int(c)]
        if chosen.size <= _DIRECT_MAX_CELLS:  # a few cells (the later refining rounds): their sums directly
            at_least, at_most = _count_direct(values, draws, chosen, neighbour_sum[chosen])
        else:
            # only the switches that change a sum are laid out (with counts, most neighbouring cells are equal)
            flat = draws.ravel()
            layout = _SwitchLayout(chosen, draws, keep=values[:-1][flat] != values[1:][flat])
            at_least, at_most = _count_at_least(values, layout, neighbour_sum[chosen])
        p[members] = (np.minimum(at_least, at_most) + 1.0) / (permutations + 1.0)
    return p



def _drawn_sums(values: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """``values[draws].sum(axis=1)`` column by column (numpy's reduction over a short last axis is slow).
    Whole numbers: the same sums."""
    total = values[draws[:, 0]]
    for k in range(1, draws.shape[1]):
        total += values[draws[:, k]]
    return total


class _SwitchLayout:
    """Where the draws of one cardinality class switch, by block of cells; see :func:`_count_at_least`.

    ``keep`` (a mask over ``draws.ravel()``): only these switches are laid out; the others must change no
    sum (a draw ``t`` with ``values[t] == values[t + 1]``: most of them with counts, whose neighbouring
    cells are mostly equal), so the counts are the same with less work.  Built per call (the mask
    depends on the values; the build costs less than the switches it saves).
    """

    def __init__(self, cells: np.ndarray, draws: np.ndarray, keep: np.ndarray | None = None):
        permutations, card = draws.shape
        n_cells = cells.size
        block = max(4, int(math.sqrt(4.0 * n_cells / card)))
        starts = cells[::block]
        self.n_blocks = starts.size
        self.block_of_cell = np.arange(n_cells) // block
        self.draws = draws
        self.flat = draws.ravel()
        perm = np.repeat(np.arange(permutations), card)
        if keep is not None:
            kept = np.flatnonzero(keep)
            self.flat, perm = self.flat[kept], perm[kept]
        switch_at = self.flat + 1
        in_block = np.searchsorted(starts, switch_at, side="left") - 1  # -1: before the first block
        self.switch_row = (in_block + 1) * permutations + perm
        # switches inside a block, in order of position (the block grows with the position)
        inside = np.flatnonzero(in_block >= 0)
        self.by_position = inside[_stable_order(switch_at[inside])]
        b, at, pm = in_block[self.by_position], switch_at[self.by_position], perm[self.by_position]
        self.base_index = (b, pm)
        # the same switches grouped by (block, permutation), in order of position within each group: they are
        # in order of position already, so a stable sort by permutation, then by block, keeps it in each group
        span_pos = np.int64(max(int(cells.max()) if n_cells else 0, int(switch_at.max()) if switch_at.size else 0) + 2)
        by_perm = _stable_order(pm)
        self.by_perm = by_perm[_stable_order(b[by_perm])]
        gb, gp = b[self.by_perm], pm[self.by_perm]
        group_start = np.r_[True, (gb[1:] != gb[:-1]) | (gp[1:] != gp[:-1])][:gb.size]
        self.start_index = np.maximum.accumulate(np.where(group_start, np.arange(gb.size), 0))
        # each cell: the switches of its block at or before its position
        switch_key = b * span_pos + at
        first = np.searchsorted(switch_key, self.block_of_cell * span_pos, side="left")
        last = np.searchsorted(switch_key, self.block_of_cell * span_pos + cells, side="right")
        counts = last - first
        total = int(counts.sum())
        pair_start = np.cumsum(counts) - counts
        self.owner = np.repeat(np.arange(n_cells), counts)
        self.switch_of_pair = np.arange(total) - np.repeat(pair_start, counts) + np.repeat(first, counts)
        self.with_pairs = np.flatnonzero(counts)  # pairs of a cell are contiguous: sums by reduceat
        self.pair_start = pair_start[self.with_pairs]


def _stable_order(key: np.ndarray) -> np.ndarray:
    """``np.argsort(key, kind="stable")`` of non-negative integers; as 16-bit keys (a radix sort) when they fit."""
    if key.size and 0 <= key.min() and key.max() < 2**16:
        return np.argsort(key.astype(np.uint16), kind="stable")
    return np.argsort(key, kind="stable")


def _count_at_least(values: np.ndarray, layout: _SwitchLayout, threshold: np.ndarray):
    """For each cell i (ascending): how many permutations p have S_pi >= / <= ``threshold[i]``.

    ``S_pi = sum_k values[t + (t >= i)]`` over the draws ``t = draws[p, k]``.
    As i grows, a draw switches once from ``values[t + 1]`` to ``values[t]``
    (at i = t + 1), so the sums of consecutive cells differ in only a few
    permutations.  Cells are taken in blocks: the P sums at each block's first
    cell are sorted once (one binary search per cell counts them), and each
    cell adds the switches between its block's first cell and itself, each a
    change of one permutation's sum from ``before`` to ``after``.  Work is
    about P * (cells / block + block * draws per cell) instead of P * cells.
    """
    draws, flat = layout.draws, layout.flat
    permutations = draws.shape[0]
    n_blocks, block_of_cell = layout.n_blocks, layout.block_of_cell
    delta = values[:-1][flat] - values[1:][flat]
    # the sums at each block's first cell: all draws shifted, plus the switches before it
    switched = np.bincount(layout.switch_row, weights=delta, minlength=(n_blocks + 1) * permutations)
    base = switched.reshape(n_blocks + 1, permutations)[:-1].astype(np.int64)
    for row in range(1, n_blocks):  # cumulative over blocks row by row (np.cumsum on axis 0 strides: slower)
        base[row] += base[row - 1]
    base += _drawn_sums(values[1:], draws)
    low = min(int(base.min()), int(threshold.min())) - 1
    span = max(int(base.max()), int(threshold.max())) - low + 2
    key = block_of_cell * span + (threshold - low)
    skipped = block_of_cell * permutations
    if n_blocks * span <= 4 * base.size:
        # few distinct sums (the usual case with counts): a cumulative histogram per block, rows offset into
        # one array, gives the counts of sums <= / < each key -- the binary searches' numbers, without a sort
        keyed = base - low
        keyed += (np.arange(n_blocks, dtype=np.int64) * span)[:, None]
        below = np.cumsum(np.bincount(keyed.ravel(), minlength=n_blocks * span))
        at_least = permutations - (below[key - 1] - skipped)
        at_most = below[key] - skipped
    else:
        # sorted per block, rows offset into one ascending array: counts by binary search
        narrow = np.int16 if span < 2**15 else np.int32 if span < 2**31 else np.int64
        # sorted values only (no order of equal keys is used): a radix sort for 16-bit keys
        ordered = np.sort((base - low).astype(narrow), axis=1, kind="stable").astype(np.int64)
        ordered += (np.arange(n_blocks, dtype=np.int64) * span)[:, None]
        ordered = ordered.ravel()
        at_least = permutations - (np.searchsorted(ordered, key, side="left") - skipped)
        at_most = np.searchsorted(ordered, key, side="right") - skipped
    # switches inside a block: the permutation's sum before and after each (earlier switches of the same
    # permutation in the block included)
    step = delta[layout.by_position]
    grouped = step[layout.by_perm]
    running = np.cumsum(grouped)
    start = layout.start_index
    earlier = np.empty_like(running)
    earlier[layout.by_perm] = running - grouped - (running[start] - grouped[start])
    before = base[layout.base_index] + earlier
    after = before + step
    if layout.owner.size:
        switch, cell_of, start = layout.switch_of_pair, layout.with_pairs, layout.pair_start
        limit = threshold[layout.owner]
        b, a = before[switch], after[switch]
        gained = (a >= limit).view(np.int8) - (b >= limit).view(np.int8)
        at_least[cell_of] += np.add.reduceat(gained, start, dtype=np.int64)
        gained = (a <= limit).view(np.int8) - (b <= limit).view(np.int8)
        at_most[cell_of] += np.add.reduceat(gained, start, dtype=np.int64)
    return at_least, at_most


#: Up to this many cells of one cardinality, :func:`_count_direct` (work cells x draws) beats laying out
#: every switch of the draws (:class:`_SwitchLayout`, work draws x a sort).
_DIRECT_MAX_CELLS = 16


def _count_direct(values: np.ndarray, draws: np.ndarray, cells: np.ndarray, threshold: np.ndarray):
    """:func:`_count_direct_reference` without gathering cells x P x draws values: the sums with every draw
    shifted (``values[t + 1]``), plus the change ``values[t] - values[t + 1]`` of each draw ``t < i``.
    Whole numbers: the same sums, the same counts."""
    permutations, card = draws.shape
    shifted = values[draws + 1]
    base = _drawn_sums(values[1:], draws)
    change = values[draws] - shifted
    if np.abs(change).max(initial=0) < 2**31 // max(card, 1):
        change = change.astype(np.int32)  # (a sum of card of them fits too)
    at_least = np.empty(cells.size, dtype=np.int64)
    at_most = np.empty(cells.size, dtype=np.int64)
    # one draw position at a time (cells x P each): no cells x P x draws temporaries, no reduction over the
    # short draws axis; integer sums, so the order of addition does not matter
    by_draw, change = np.ascontiguousarray(draws.T), np.ascontiguousarray(change.T)
    block = max(1, _PERMUTATION_CHUNK_ELEMENTS // max(1, permutations))
    for start in range(0, cells.size, block):
        chunk = cells[start:start + block, None]
        sums = np.repeat(base[None, :], chunk.size, axis=0)
        for k in range(card):
            sums += (by_draw[k] < chunk) * change[k]
        limit = threshold[start:start + block, None]
        at_least[start:start + block] = (sums >= limit).sum(axis=1)
        at_most[start:start + block] = (sums <= limit).sum(axis=1)
    return at_least, at_most


def _count_direct_reference(values: np.ndarray, draws: np.ndarray, cells: np.ndarray, threshold: np.ndarray):
    """:func:`_count_at_least` by its definition: each cell's P sums of whole numbers, compared with its threshold."""
    permutations, card = draws.shape
    at_least = np.empty(cells.size, dtype=np.int64)
    at_most = np.empty(cells.size, dtype=np.int64)
    block = max(1, _PERMUTATION_CHUNK_ELEMENTS // max(1, permutations * card))
    for start in range(0, cells.size, block):
        chunk = cells[start:start + block]
        sums = values[draws[None, :, :] + (draws[None, :, :] >= chunk[:, None, None])].sum(axis=2)
        limit = threshold[start:start + block, None]
        at_least[start:start + block] = (sums >= limit).sum(axis=1)
        at_most[start:start + block] = (sums <= limit).sum(axis=1)
    return at_least, at_most


def _count_extreme(permuted_i: np.ndarray, observed: np.ndarray, permutations: int) -> np.ndarray:
    """esda's directed p from permuted I (cells x permutations); ties with the observed count in both tails."""
    obs = observed[:, None]
    tolerance = 1e-10 * np.maximum(1.0, np.abs(obs))
    larger = (permuted_i >= obs - tolerance).sum(axis=1)
    smaller = (permuted_i <= obs + tolerance).sum(axis=1)
    return (np.minimum(larger, smaller) + 1.0) / (permutations + 1.0)


def _moran_p_lookup(z, w, observed, scaling, cells, ids, permutations) -> np.ndarray:
    """The permutation kernel for rows whose neighbour weights are all equal (row-standardised contiguity).

    For cell i, permutation p draws ``ids[p, k]`` (k < the cell's cardinality c)
    and uses the value of cell ``ids[p, k] + (ids[p, k] >= i)``: either
    ``z[ids]`` or ``z[ids + 1]``.  Which of the two is a bit per draw, the same
    for every cell between two consecutive drawn ids, so a running bitmask
    over the cells (one cumulative sum) and a table of the 2**c possible sums
    per permutation give every permuted lag without gathering
    cells x permutations x c values.  Same draws, same arithmetic per draw
    (``value * weight`` summed over k in draw order) as the padded kernel.
    """
    n = z.size
    max_card = ids.shape[1]
    cardinality = np.diff(w.indptr)
    weight = w.data[np.minimum(w.indptr[:-1], max(w.nnz - 1, 0))]
    # mask[i, p]: bit k set when ids[p, k] < i (the draw is not shifted past cell i).  Each bit is added
    # once, so no byte exceeds 255 and the cumulative sum can run on 8 bytes at a time (no carries).
    width = -(-permutations // 8) * 8
    steps = np.zeros((n + 1, width), dtype=np.uint8)
    perm_of = np.broadcast_to(np.arange(permutations)[:, None], ids.shape)
    bit_of = np.broadcast_to((1 << np.arange(max_card, dtype=np.uint8))[None, :], ids.shape).astype(np.uint8)
    steps[ids + 1, perm_of] = bit_of  # ids are distinct within a permutation: no collisions
    words = steps.view(np.uint64)
    np.cumsum(words, axis=0, out=words)
    mask = steps[:n, :permutations]
    unshifted, shifted = z[ids], z[ids + 1]
    p = np.empty(cells.size)
    card_w = np.stack([cardinality[cells], weight[cells]], axis=1)
    groups, group_of = np.unique(card_w, axis=0, return_inverse=True)
    group_of = group_of.reshape(-1)
    rows = np.arange(permutations)[None, :]
    for g, (card, wt) in enumerate(groups):
        card = int(card)
        # table[p, b] = sum_k (unshifted if bit k of b else shifted)[p, k] * wt, summed in draw order
        table = np.zeros((permutations, 1))
        for k in range(card):
            table = np.concatenate([table + shifted[:, k:k + 1] * wt, table + unshifted[:, k:k + 1] * wt], axis=1)
        flat = table.ravel()
        member = np.flatnonzero(group_of == g)
        low_bits = np.uint8((1 << card) - 1)
        block = max(1, _PERMUTATION_CHUNK_ELEMENTS // permutations)
        for start in range(0, member.size, block):
            pos = member[start:start + block]
            chunk = cells[pos]
            bits = mask[chunk] & low_bits
            permuted_lag = flat[rows * (1 << card) + bits]
            permuted_i = scaling * z[chunk, None] * permuted_lag
            p[pos] = _count_extreme(permuted_i, observed[chunk], permutations)
    return p


def _moran_p_padded(z, w, observed, scaling, cells, ids, permutations) -> np.ndarray:
    """The general permutation kernel (any weights): gathers the drawn values, blocks of cells at a time."""
    max_card = ids.shape[1]
    block = max(1, _PERMUTATION_CHUNK_ELEMENTS // (permutations * max_card))
    p = np.empty(cells.size)
    for start in range(0, cells.size, block):
        chunk = cells[start:start + block]
        sub = w[chunk]
        # Neighbour weights padded to max_card columns (zeros beyond each cell's cardinality).
        counts = np.diff(sub.indptr)
        column = np.arange(sub.nnz) - np.repeat(sub.indptr[:-1], counts)
        padded = np.zeros((chunk.size, max_card))
        padded[np.repeat(np.arange(chunk.size), counts), column] = sub.data
        # Cell i draws from the other n - 1 cells: index j maps to j + (j >= i).
        drawn = ids[None, :, :] + (ids[None, :, :] >= chunk[:, None, None])
        permuted_lag = np.einsum("cpk,ck->cp", z[drawn], padded)
        permuted_i = scaling * z[chunk, None] * permuted_lag
        p[start:start + block] = _count_extreme(permuted_i, observed[chunk], permutations)
    return p
