"""Emerging hot spots: ArcGIS-style patterns from per-month Gi* z-scores and p-values."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from hotspots._errors import ValidationError
from hotspots._validate import _Problems
from hotspots.detect.trend import _mann_kendall_z_p, mann_kendall

__all__ = ["EMERGING_PATTERNS", "emerging_hotspot_classes"]

#: Pattern labels of :func:`emerging_hotspot_classes`, in display order.
EMERGING_PATTERNS = [
    "new hot spot", "consecutive hot spot", "intensifying hot spot", "persistent hot spot",
    "diminishing hot spot", "sporadic hot spot", "oscillating hot spot", "historical hot spot",
    "new cold spot", "consecutive cold spot", "intensifying cold spot", "persistent cold spot",
    "diminishing cold spot", "sporadic cold spot", "oscillating cold spot", "historical cold spot",
    "no pattern detected",
]


def emerging_hotspot_classes(z: Any, p: Any, *, months: Any, trend_p: float = 0.05, alpha: float = 0.05,
                             final_share: float = 0.9) -> pd.DataFrame:
    """Emerging hot spot pattern of each cell from its monthly Gi* series.

    Follows ArcGIS Pro's "How Emerging Hot Spot Analysis works" (Esri): a bin is
    a *hot* bin when Gi* p < ``alpha`` and z > 0, a *cold* bin when p < ``alpha``
    and z < 0; the trend is a Mann-Kendall test (Mann 1945; Kendall 1975; ties
    corrected) on the cell's z-score series, significant when its p <
    ``trend_p``.  "90 percent" below is ``final_share``.

    Hot spot patterns (cold spot patterns are the mirror image, swapping hot
    and cold and the direction of the trend):

    * **new**: hot in the final time step, never a significant hot (or cold)
      spot before;
    * **consecutive**: a single uninterrupted run of at least two hot bins
      ending in the final time step, never significant before the run, and
      less than 90 % of the time steps hot;
    * **intensifying**: hot in at least 90 % of the time steps, including the
      final one, with a significant *increasing* trend in z;
    * **persistent**: hot in at least 90 % of the time steps, including the
      final one, with no significant trend;
    * **diminishing**: hot in at least 90 % of the time steps, including the
      final one, with a significant *decreasing* trend;
    * **sporadic**: hot in the final time step, on-again off-again before
      (hot bins before the final run), less than 90 % hot, never cold;
    * **oscillating**: hot in the final time step, with at least one cold bin
      earlier, less than 90 % hot;
    * **historical**: *not* hot in the final time step, but hot in at least
      90 % of the time steps;
    * **no pattern detected**: none of the above.

    The final time step decides the family first: a cell hot in its final step
    gets a hot pattern, cold -> a cold pattern, neither -> historical or no
    pattern (so a cell that was hot 90 % of the time and is cold now is an
    *oscillating cold spot*, not a historical hot spot).  ArcGIS's "new" only
    excludes earlier hot bins; like R's sfdep we also exclude earlier cold
    bins, which makes such a cell *oscillating*.

    With few observed months the 90 % rules dominate (a cell hot in its only
    observed month is "persistent"); ArcGIS asks for at least ten time steps,
    and so should the caller.

    Months missing from the data (NaN z and p) are **not** "not significant"
    months: every definition is applied to the observed months only -- the
    shares are of observed months, the final time step is the cell's last
    observed month (reported as ``final_month``), and the Mann-Kendall test
    uses the observed months.  A run is "consecutive" only over calendar-
    consecutive observed months: a gap (a NaN month, or a month absent from
    ``months``) ends the run, so hot bins before the gap count as earlier hot
    bins (making the cell sporadic rather than consecutive).

    Parameters
    ----------
    z, p : array-like of shape (n_cells, n_months)
        Gi* z-scores and p-values per cell and month (NaN where missing; z and
        p must be missing together).
    months : sequence of length n_months
        Month of each column ("YYYY-MM", Period or Timestamp), strictly
        increasing; used to find calendar gaps.
    trend_p : float, default 0.05
    alpha : float, default 0.05
        Significance level of a single bin (pass FDR-adjusted p-values to
        control multiple testing).
    final_share : float, default 0.9

    Returns
    -------
    DataFrame
        One row per cell (same order as ``z``): ``pattern``, ``mk_z``, ``mk_p``,
        ``n_sig_hot``, ``n_sig_cold``, ``n_observed_months``, ``final_month``.

    Examples
    --------
    >>> z = np.array([[0.1, 0.2, 0.1, 3.0],      # hot only in the last month
    ...               [3.0, 3.1, 3.2, 3.3],      # hot throughout
    ...               [3.0, np.nan, 0.1, 0.2]])  # hot once, gap, then not
    >>> p = np.where(np.abs(z) > 2, 0.001, 0.5); p[np.isnan(z)] = np.nan
    >>> out = emerging_hotspot_classes(z, p, months=["2024-01", "2024-02", "2024-03", "2024-04"])
    >>> out["pattern"].tolist()
    ['new hot spot', 'persistent hot spot', 'no pattern detected']
    >>> out["n_observed_months"].tolist()
    [4, 4, 3]
    """
    return pd.DataFrame(_emerging_columns(z, p, months=months, trend_p=trend_p, alpha=alpha,
                                          final_share=final_share))


def _emerging_columns(z: Any, p: Any, *, months: Any, trend_p: float = 0.05, alpha: float = 0.05,
                      final_share: float = 0.9) -> dict[str, np.ndarray]:
    """The columns of :func:`emerging_hotspot_classes` as arrays (the analysis takes them without the table)."""
    problems = _Problems("emerging_hotspot_classes")
    try:
        za = np.asarray(z.to_numpy() if isinstance(z, pd.DataFrame) else z, dtype=np.float64)
        pa = np.asarray(p.to_numpy() if isinstance(p, pd.DataFrame) else p, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError("z and p must be numeric arrays of shape (n_cells, n_months)",
                              hint="pass the Gi* z-scores and p-values as 2-D arrays") from None
    if za.ndim != 2 or za.shape != pa.shape:
        problems.add(f"z and p must be 2-D arrays of the same shape, got {za.shape} and {pa.shape}",
                     "pass cells as rows and months as columns")
    for name, value in (("trend_p", trend_p), ("alpha", alpha)):
        if not isinstance(value, (int, float)) or not 0 < value < 1:
            problems.add(f"{name} must be between 0 and 1, got {value!r}", f"e.g. {name}=0.05")
    if not isinstance(final_share, (int, float)) or not 0 < final_share <= 1:
        problems.add(f"final_share must be in (0, 1], got {final_share!r}", "use final_share=0.9 (ArcGIS)")
    try:
        ordinal, month_labels = _month_ordinals_labels(months)
    except (TypeError, ValueError) as exc:
        ordinal = month_labels = None
        problems.add(f"months could not be read as months: {exc}", "pass 'YYYY-MM' strings, one per column")
    problems.raise_if_any()
    if len(ordinal) != za.shape[1]:
        problems.add(f"months has {len(ordinal)} entries for {za.shape[1]} columns of z",
                     "pass one month per column")
    if len(ordinal) > 1 and (np.diff(ordinal) <= 0).any():
        problems.add("months must be strictly increasing (no repeats)", "sort the columns by month")
    observed = np.isfinite(za) & np.isfinite(pa)
    mismatch = np.isfinite(za) != np.isfinite(pa)
    if mismatch.any():
        problems.add(f"z and p are missing in different places ({int(mismatch.sum())} entries)",
                     "mark a month as missing with NaN in both z and p")
    valid_p = pa[np.isfinite(pa)]
    if valid_p.size and ((valid_p < 0) | (valid_p > 1)).any():
        problems.add("p has values outside [0, 1]", "pass p-values, not z-scores or percentages")
    problems.raise_if_any()

    n_cells, n_t = za.shape
    with np.errstate(invalid="ignore"):
        significant = observed & (pa < alpha)
        hot = significant & (za > 0)
        cold = significant & (za < 0)
    n_obs = observed.sum(axis=1)
    n_hot = hot.sum(axis=1)
    n_cold = cold.sum(axis=1)

    # final time step = last observed month of each cell
    has_obs = n_obs > 0
    final = np.where(has_obs, n_t - 1 - np.argmax(observed[:, ::-1], axis=1), 0)
    cells = np.arange(n_cells)
    final_hot = has_obs & hot[cells, final]
    final_cold = has_obs & cold[cells, final]

    # length of the run ending at each column: consecutive observed calendar
    # months, all hot (or all cold); a gap ends the run
    linked = np.zeros((n_cells, n_t), dtype=bool)
    if n_t > 1:
        linked[:, 1:] = observed[:, 1:] & observed[:, :-1] & (np.diff(ordinal) == 1)[None, :]
    final_hot_run = _run_at(hot, linked, final)
    final_cold_run = _run_at(cold, linked, final)

    mk_z, mk_p = _trend_z_p(np.where(observed, za, np.nan))
    with np.errstate(invalid="ignore"):
        trend_up = (mk_p < trend_p) & (mk_z > 0)
        trend_down = (mk_p < trend_p) & (mk_z < 0)
    tolerance = 1e-9
    mostly_hot = has_obs & (n_hot >= final_share * n_obs - tolerance)
    mostly_cold = has_obs & (n_cold >= final_share * n_obs - tolerance)

    pattern = np.full(n_cells, "no pattern detected", dtype=object)

    def assign(family, final_mask, mostly, n_same, n_other, run, rising, falling):
        other_before = n_other > 0
        same_before_run = (n_same - run) > 0
        rules = [
            (final_mask & mostly & rising, f"intensifying {family}"),
            (final_mask & mostly & falling, f"diminishing {family}"),
            (final_mask & mostly, f"persistent {family}"),
            (final_mask & other_before, f"oscillating {family}"),
            (final_mask & ~same_before_run & (run == 1), f"new {family}"),
            (final_mask & ~same_before_run & (run >= 2), f"consecutive {family}"),
            (final_mask, f"sporadic {family}"),
        ]
        done = np.zeros(n_cells, dtype=bool)
        for mask, label in rules:
            take = mask & ~done
            pattern[take] = label
            done |= take

    assign("hot spot", final_hot, mostly_hot, n_hot, n_cold, final_hot_run, trend_up, trend_down)
    # for cold spots, an intensifying trend is z falling further below zero
    assign("cold spot", final_cold, mostly_cold, n_cold, n_hot, final_cold_run, trend_down, trend_up)
    neither = has_obs & ~final_hot & ~final_cold
    pattern[neither & mostly_hot] = "historical hot spot"
    pattern[neither & mostly_cold] = "historical cold spot"

    final_month = np.where(has_obs, month_labels[final], "")
    return {
        "pattern": pattern.astype(str),
        "mk_z": mk_z,
        "mk_p": mk_p,
        "n_sig_hot": n_hot,
        "n_sig_cold": n_cold,
        "n_observed_months": n_obs,
        "final_month": final_month,
    }


def _run_at(flag: np.ndarray, linked: np.ndarray, final: np.ndarray) -> np.ndarray:
    """Length of the run of ``flag`` ending at column ``final`` of each row (0 when not flagged there).

    A run goes on through a column that is flagged and ``linked`` to a flagged previous column.  The run
    at ``final`` starts at the last start (flagged, not continuing) at or before it: the same whole
    numbers as stepping through the columns and counting.
    """
    n_cells, n_t = flag.shape
    if n_t == 0:
        return np.zeros(n_cells, dtype=np.int64)
    goes_on = np.zeros_like(flag)
    goes_on[:, 1:] = flag[:, 1:] & linked[:, 1:] & flag[:, :-1]
    column = np.arange(n_t, dtype=np.int64)
    last_start = np.maximum.accumulate(np.where(flag & ~goes_on, column, -1), axis=1)
    cells = np.arange(n_cells)
    return np.where(flag[cells, final], final - last_start[cells, final] + 1, 0).astype(np.int64)


def _run_at_reference(flag: np.ndarray, linked: np.ndarray, final: np.ndarray) -> np.ndarray:
    """:func:`_run_at` column by column (the definition; kept for the tests)."""
    run = np.zeros(flag.shape[0], dtype=np.int64)
    out = np.zeros(flag.shape[0], dtype=np.int64)
    for t in range(flag.shape[1]):
        run = np.where(flag[:, t], np.where(linked[:, t], run, 0) + 1, 0)
        out[final == t] = run[final == t]
    return out


def _trend_z_p(series: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mann-Kendall z and p of each row (:func:`hotspots.detect.trend.mann_kendall`; NaN under 3 observations).

    Months missing from every row are left out first: the test compares the observed values of a row in
    order, so the statistics are the same (its sums of signs and tie counts are whole numbers).
    """
    if series.shape[0] == 0 or series.shape[1] == 0:
        return np.full(series.shape[0], np.nan), np.full(series.shape[0], np.nan)
    some = ~np.isnan(series).all(axis=0)
    if some.any():
        series = series[:, some]
    fast = _mann_kendall_z_p(series)  # the same numbers, without the table (None: the checked route)
    if fast is not None:
        return fast
    mk = mann_kendall(series)
    return mk["mk_z"].to_numpy(np.float64), mk["mk_p"].to_numpy(np.float64)


def _month_ordinals_labels(months) -> tuple[np.ndarray, np.ndarray]:
    """Each month's ordinal (year * 12 + month) and its "YYYY-MM" label, as read by a monthly ``PeriodIndex``.

    Read once per distinct sequence of months given as text (every selection of the analysis passes the
    same); the arrays are read-only.  Raises TypeError or ValueError for what is not a month.
    """
    key = tuple(months)
    if all(type(m) is str for m in key):  # plain text: equal keys are the same text
        return _read_months_cached(key)
    return _read_months(list(key))


def _read_months(months: list) -> tuple[np.ndarray, np.ndarray]:
    periods = pd.PeriodIndex(pd.Series(list(months)).astype(str).str.slice(0, 7), freq="M")
    ordinal = (periods.year.to_numpy() * 12 + periods.month.to_numpy()).astype(np.int64)
    labels = periods.astype(str).to_numpy()
    ordinal.flags.writeable = False
    labels.flags.writeable = False
    return ordinal, labels


@functools.lru_cache(maxsize=32)
def _read_months_cached(months: tuple) -> tuple[np.ndarray, np.ndarray]:
    return _read_months(list(months))
