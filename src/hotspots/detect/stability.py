"""Stability of the top cells across two periods, and prediction indices (hit rate, PAI, RRI)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from hotspots._validate import _Problems

__all__ = ["top_k_stability"]


def top_k_stability(counts_t1: Any, counts_t2: Any, *, top_share: float = 0.05,
                    cell_area: Any = None) -> dict:
    """How stable the top cells are across two periods, and how well period 1 predicts period 2.

    The top ``k = ceil(top_share * n_cells)`` cells of each period are those
    with the most crimes; ties at the cut-off go to the earlier cell (by
    Series index label when Series are given, else by position), so ``k`` is
    exact.

    * ``jaccard``: |top1 ∩ top2| / |top1 ∪ top2|;
    * ``spearman_rho``, ``spearman_p``: rank correlation of all cells' counts
      (``scipy.stats.spearmanr``, ties averaged);
    * ``hit_rate_t1``, ``hit_rate_t2``: share of period-1 / period-2 crimes in
      the period-1 top cells (n/N);
    * ``pai_t1``, ``pai_t2``: Prediction Accuracy Index (Chainey et al. 2008)
      ``(n/N) / (a/A)`` of the period-1 top cells in each period, where
      ``a/A`` is their share of the area (equal-area cells unless
      ``cell_area`` is given);
    * ``rri``: Recapture Rate Index (Levine 2008) ``pai_t2 / pai_t1``.

    Parameters
    ----------
    counts_t1, counts_t2 : array-like or Series
        Crimes per cell in each period, aligned (same cells, same order).
    top_share : float, default 0.05
    cell_area : array-like, optional
        Area of each cell (e.g. the clipped ``cell_area_km2``).

    Returns
    -------
    dict
        ``k, n_cells, top_share, area_share, jaccard, spearman_rho, spearman_p,
        hit_rate_t1, hit_rate_t2, pai_t1, pai_t2, rri``.

    Examples
    --------
    >>> out = top_k_stability([10, 8, 1, 0, 0, 1, 0, 0, 0, 0], [9, 2, 7, 0, 0, 0, 1, 0, 0, 1], top_share=0.2)
    >>> out["k"], out["jaccard"], round(out["hit_rate_t2"], 3), round(out["pai_t2"], 2)
    (2, 0.3333333333333333, 0.55, 2.75)
    """
    problems = _Problems("top_k_stability")
    labels = None
    if isinstance(counts_t1, pd.Series) and isinstance(counts_t2, pd.Series):
        if not counts_t1.index.equals(counts_t2.index):
            problems.add("counts_t1 and counts_t2 have different indexes",
                         "align them first, e.g. counts_t2 = counts_t2.reindex(counts_t1.index, fill_value=0)")
        labels = counts_t1.index
    first = np.asarray(counts_t1, dtype=np.float64).reshape(-1)
    second = np.asarray(counts_t2, dtype=np.float64).reshape(-1)
    if first.size != second.size:
        problems.add(f"counts_t1 and counts_t2 differ in length ({first.size} vs {second.size})",
                     "pass counts for the same cells in the same order")
    for name, values in (("counts_t1", first), ("counts_t2", second)):
        if not np.isfinite(values).all() or (values < 0).any():
            problems.add(f"{name} must be finite and non-negative", f"fill missing {name} with 0")
    if not isinstance(top_share, (int, float)) or not 0 < top_share <= 1:
        problems.add(f"top_share must be in (0, 1], got {top_share!r}", "e.g. top_share=0.05 (top 5% of cells)")
    area = None
    if cell_area is not None:
        area = np.asarray(cell_area, dtype=np.float64).reshape(-1)
        if area.size != first.size or not np.isfinite(area).all() or (area <= 0).any():
            problems.add("cell_area must be positive, one per cell", "pass grid['cell_area_km2']")
    if first.size == 0:
        problems.add("no cells given", "pass counts for at least one cell")
    problems.raise_if_any()

    n_cells = first.size
    k = max(1, math.ceil(top_share * n_cells - 1e-9))
    tiebreak = np.arange(n_cells) if labels is None else np.argsort(np.argsort(labels, kind="stable"))

    def top(values):
        return set(np.lexsort((tiebreak, -values))[:k].tolist())

    top1, top2 = top(first), top(second)
    jaccard = len(top1 & top2) / len(top1 | top2)
    if n_cells >= 2 and np.ptp(first) > 0 and np.ptp(second) > 0:
        # scipy.stats.spearmanr's numbers, without importing scipy.stats
        from hotspots._dist import spearmanr

        statistic, pvalue = spearmanr(first, second)
        rho, rho_p = float(statistic), float(pvalue)
    else:
        rho, rho_p = math.nan, math.nan
    chosen = np.fromiter(top1, dtype=np.int64)
    area_share = (k / n_cells) if area is None else float(area[chosen].sum() / area.sum())
    total1, total2 = first.sum(), second.sum()
    hit1 = float(first[chosen].sum() / total1) if total1 > 0 else math.nan
    hit2 = float(second[chosen].sum() / total2) if total2 > 0 else math.nan
    pai1, pai2 = hit1 / area_share, hit2 / area_share
    rri = pai2 / pai1 if pai1 and not math.isnan(pai1) else math.nan
    return {
        "k": int(k), "n_cells": int(n_cells), "top_share": float(top_share), "area_share": float(area_share),
        "jaccard": float(jaccard), "spearman_rho": rho, "spearman_p": rho_p,
        "hit_rate_t1": hit1, "hit_rate_t2": hit2, "pai_t1": float(pai1), "pai_t2": float(pai2), "rri": float(rri),
    }
