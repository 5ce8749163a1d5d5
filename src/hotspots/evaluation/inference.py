"""Calibrated inference for the headline difference-in-differences: placebo-in-space and quasi-Poisson.

The Poisson interval of a pooled rate ratio (:func:`~hotspots.evaluation.did.did_rate_ratio`)
assumes the treated total is Poisson.  Busy places vary far more than that
from one half-year to the next, and places picked because they were busy fall
back afterwards (regression to the mean), so on real data with no patrols that
interval excludes "no change" far more often than 5 %.

Two remedies, both computed from a unit x month count matrix built once:

* :func:`placebo_did` -- placebo-in-space (permutation) inference: the same
  estimator (pooled DiD log rate ratio of a set of places against the control)
  on many pseudo-treated sets of untreated places drawn by the same selection
  rule (each treated area replaced by a random one of the untreated places with
  the nearest before-period level, and older level when the data have it).
  The placebo distribution is what the estimator gives when nothing happened,
  including regression to the mean and the real variation between places; the
  calibrated estimate is the observed log ratio minus the placebo median; the
  p-value is its rank among the placebo deviations from that median, widened
  for the median's own noise (the stand-ins are a finite, shared set), and the
  interval is that one rank test inverted (it excludes 0 exactly when p <= 5 %).
  Given each area's and each untreated place's district (``treated_cluster``,
  ``pool_cluster``), the deviations are widened by a design effect for areas
  sharing a district: the busiest places of one district move together and
  independently drawn stand-ins do not (:func:`_district_variance`).
* :func:`quasi_poisson_did` -- the same rate ratio with the Poisson variance
  scaled by the Pearson dispersion of the unit-level before/after counts
  (a quasi-Poisson two-period model with unit effects, in closed form).

References
----------
.. [1] Abadie, A., Diamond, A. & Hainmueller, J. (2010). Synthetic control methods
   for comparative case studies. *JASA* 105, 493-505 (placebo-in-space inference).
.. [2] Conley, T. G. & Taber, C. R. (2011). Inference with "difference in differences"
   with a small number of policy changes. *Rev. Econ. Stat.* 93(1), 113-125.
.. [3] McCullagh, P. & Nelder, J. A. (1989). *Generalized Linear Models*, 2nd ed., section 6.2 (quasi-Poisson).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

# scipy.stats' norm, without importing scipy.stats
from hotspots._dist import norm_ppf, norm_sf
from hotspots._validate import _Problems

__all__ = ["DEFAULT_K", "MIN_PLACEBO_DRAWS", "PlaceboResult", "QuasiPoissonDiD", "cluster_text", "placebo_did",
           "quasi_poisson_did", "ring_counts"]

#: Untreated places each treated area can be replaced by, by default (its nearest in level).
DEFAULT_K = 20
#: Fewer distinct placebo sets than this cannot give a two-sided 95% interval.
MIN_PLACEBO_DRAWS = 39
#: Busiest untreated places per district whose shared change estimates the district variance component.
DISTRICT_TOP = 5


@dataclasses.dataclass(frozen=True)
class PlaceboResult:
    """Placebo-in-space inference for a pooled DiD rate ratio (see :func:`placebo_did`).

    Attributes
    ----------
    observed_log_irr : float
        The treated areas' pooled log rate ratio against the control.
    placebo_median_log_irr : float
        Median of the placebo log rate ratios (what no effect looks like: includes regression to the mean).
    pct_change, pct_low, pct_high : float
        Calibrated change (observed minus placebo median) and its interval, in %.
    p_value : float
        Two-sided rank p-value: share of placebos at least as far from the placebo median as the observed.
    n_draws : int
        Placebo sets drawn; ``n_distinct`` of them distinct.
    n_distinct : int
        Distinct placebo sets.
    k_candidates : int
        Untreated places each treated area could be replaced by.
    seed : int
        Random seed of the draws.
    level : float
        Interval level.
    match_ratio : float
        Mean before level of the placebo places divided by the treated areas' (1 = perfect match).
    note : str
        What limits the inference ("" when nothing to say).
    centre_factor : float
        Factor (>= 1) applied to the placebo deviations for the noise of the placebo median itself: the
        median is estimated from a finite set of stand-ins (shared by treated areas of similar level), so
        the calibrated estimate varies more than one placebo set does (see :func:`placebo_did`, Notes).
    cluster_factor : float
        Design effect (>= 1, a standard-deviation factor) applied to the placebo deviations for treated areas
        sharing a district (:func:`_district_variance`); 1 when they lie in different districts or no
        clusters are given.
    n_clusters : int
        Clusters (e.g. districts) holding the treated areas (0 when not given).
    district_sd : float
        Estimated standard deviation between districts of busy places' log changes (the shared component),
        nan when no clusters are given or it cannot be estimated.
    """

    observed_log_irr: float
    placebo_median_log_irr: float
    pct_change: float
    pct_low: float
    pct_high: float
    p_value: float
    n_draws: int
    n_distinct: int
    k_candidates: int
    seed: int
    level: float
    match_ratio: float
    note: str
    centre_factor: float = 1.0
    cluster_factor: float = 1.0
    n_clusters: int = 0
    district_sd: float = dataclasses.field(default=float("nan"), compare=False)  # nan when not given: not compared


@dataclasses.dataclass(frozen=True)
class QuasiPoissonDiD:
    """Rate-ratio DiD with a quasi-Poisson (overdispersion-scaled) interval (see :func:`quasi_poisson_did`)."""

    pct_change: float
    pct_low: float
    pct_high: float
    p_value: float
    dispersion: float
    df: int
    note: str


def cluster_text(res: PlaceboResult) -> str:
    """How the districts entered a :class:`PlaceboResult`'s interval, for the report's notes ("" if not used).

    >>> r = PlaceboResult(0.1, 0.0, 10.0, -5.0, 28.0, 0.2, 99, 99, 20, 1, 0.95, 1.0, "", 1.05, 1.3, 6, 0.08)
    >>> cluster_text(r)
    '; widened x1.30 for areas sharing a district (busy places of one district change together: sd 8.0% between districts)'
    """
    if res.n_clusters < 1 or not np.isfinite(res.district_sd):
        return ""
    if res.cluster_factor >= 1.005:
        return (f"; widened x{res.cluster_factor:.2f} for areas sharing a district (busy places of one district change "
                f"together: sd {100 * res.district_sd:.1f}% between districts)")
    return (f"; not widened for districts (areas in different districts, or busy places' changes differ little between "
            f"districts: sd {100 * res.district_sd:.1f}%)")


def _log_irr(rb: np.ndarray, ra: np.ndarray, cb: np.ndarray, ca: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(ra) - np.log(rb) - np.log(ca) + np.log(cb)


def ring_counts(rows: Any, cols: Any, counts: Any) -> np.ndarray:
    """For each grid cell, the sum of ``counts`` over its (up to 8) neighbouring cells present in the list.

    Parameters
    ----------
    rows, cols : array_like of int
        Grid row and column of each cell (cells absent from the list count as empty).
    counts : array_like
        One value per cell, or a cells x k array (summed column by column).

    Returns
    -------
    numpy.ndarray
        Same shape as ``counts``.

    Examples
    --------
    >>> ring_counts([0, 0, 1, 5], [0, 1, 1, 5], [1, 2, 4, 8]).tolist()
    [6.0, 5.0, 3.0, 0.0]
    """
    r = np.asarray(rows, int).ravel()
    c = np.asarray(cols, int).ravel()
    v = np.asarray(counts, float)
    flat = v.reshape(len(r), -1)
    if len(r) == 0:
        return np.zeros_like(v)
    r0, c0 = r - r.min() + 1, c - c.min() + 1
    board = np.zeros((r0.max() + 2, c0.max() + 2, flat.shape[1]))
    board[r0, c0] = flat
    out = np.zeros_like(flat)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr or dc:
                out += board[r0 + dr, c0 + dc]
    return out.reshape(v.shape)


def _rank_test(estimate: float, centred: np.ndarray, alpha: float) -> tuple[float, float]:
    """Two-sided rank p-value of ``estimate`` among ``centred`` placebo estimates, and the matching half-width.

    One test inverted: the interval ``estimate +/- half`` excludes 0 exactly when ``p <= alpha``
    (``half`` is the order statistic of ``|centred|`` that the rank test compares with).

    >>> p, half = _rank_test(0.5, np.linspace(-1, 1, 199), 0.05)
    >>> round(p, 3), round(half, 3), (p <= 0.05) == (abs(0.5) > half)
    (0.505, 0.96, True)
    """
    dev = np.sort(np.abs(centred))
    n = dev.size
    p = float((1 + np.sum(dev >= abs(estimate) - 1e-12)) / (n + 1))
    m = int(math.floor(alpha * (n + 1) + 1e-9)) - 1  # at most m placebos may be at least as extreme
    half = float(dev[n - 1 - m]) if 0 <= m < n else float("inf")
    return p, half


def _centre_factor(weights: np.ndarray, cands: np.ndarray) -> float:
    """Standard-deviation factor of (one placebo set minus the placebo centre) over one placebo set alone.

    The calibrated estimate is the observed log ratio minus the placebo centre, and the centre is itself
    noisy: it averages the ``k`` candidate stand-ins of each treated area, and treated areas of similar
    level share candidates (the busiest all share the same few).  With stand-ins of equal variance, the
    centre is ``sum_c u_c r_c`` with ``u_c = sum_j w_j [c in cands_j] / k`` and one placebo set is
    ``sum_j w_j r_j``, so the factor is ``sqrt(1 + sum u_c^2 / sum w_j^2)``.

    >>> round(_centre_factor(np.array([1.0, 1.0]), np.array([[0, 1, 2, 3], [0, 1, 2, 3]])), 4)  # shared: 1 + 2/4
    1.2247
    >>> round(_centre_factor(np.array([1.0, 1.0]), np.array([[0, 1, 2, 3], [4, 5, 6, 7]])), 4)  # disjoint: 1 + 1/4
    1.118
    """
    w = np.asarray(weights, float)
    w = w / w.sum() if w.sum() > 0 else np.full(w.size, 1.0 / max(w.size, 1))
    k = cands.shape[1]
    u = np.bincount(cands.ravel(), weights=np.repeat(w / k, k))
    return float(math.sqrt(1.0 + (u**2).sum() / max((w**2).sum(), 1e-300)))


def _cluster_labels(labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Cluster labels as text and where one is given (None, NaN and "" mean no district).

    >>> _cluster_labels(["a", None, float("nan"), "", 3])
    (array(['a', 'None', 'nan', '', '3'], dtype='<U4'), array([ True, False, False, False,  True]))
    """
    arr = np.asarray(labels, dtype=object).ravel()
    has = (arr == arr) & np.not_equal(arr, None) & np.not_equal(arr, "")  # NaN != NaN
    return arr.astype(str), has.astype(bool)


def _district_variance(log_ratio: np.ndarray, level: np.ndarray, feats: np.ndarray, cluster: np.ndarray, top: int,
                       k: int) -> float:
    """Between-district variance component of busy untreated places' residual log changes (method of moments).

    In each district the ``top`` busiest places (by ``level``) get a residual: their log change minus the mean
    log change of the ``k`` other places nearest in level (``feats``, as the stand-ins are matched).  The
    one-way random-effects ANOVA estimate ``max(0, (MSB - MSW) / n0)`` (unequal group sizes, ``n0 = (N -
    sum n_d^2 / N) / (G - 1)``) is the variance of a change shared by one district's busy places, i.e. their
    covariance.  ``nan`` with fewer than two districts.

    >>> rng = np.random.default_rng(0)
    >>> d = np.repeat(np.arange(30), 8); shock = rng.normal(0, 0.3, 30)[d]
    >>> lvl = rng.uniform(50, 60, d.size)
    >>> v = _district_variance(shock + rng.normal(0, 0.2, d.size), lvl, lvl[:, None], d, 8, 20)
    >>> 0.05 < v < 0.15   # 0.3^2 = 0.09
    True
    """
    codes = np.unique(cluster)
    if codes.size < 2:
        return float("nan")
    picks = np.concatenate([idx[np.argsort(-level[idx], kind="stable")[:top]]
                            for idx in (np.flatnonzero(cluster == c) for c in codes)])
    if picks.size <= codes.size:
        return float("nan")
    near = _candidates(feats[picks], feats, min(k + 1, len(level)))
    near = np.array([row[row != i][:k] for row, i in zip(near, picks)])
    e = log_ratio[picks] - log_ratio[near].mean(axis=1)
    _, g = np.unique(cluster[picks], return_inverse=True)
    n_g = np.bincount(g).astype(float)
    n, n_d = float(e.size), float(n_g.size)
    mean_g = np.bincount(g, weights=e) / n_g
    msb = (n_g * (mean_g - e.mean()) ** 2).sum() / (n_d - 1)
    msw = ((e - mean_g[g]) ** 2).sum() / (n - n_d)
    n0 = (n - (n_g**2).sum() / n) / (n_d - 1)
    return float(max(0.0, (msb - msw) / n0))


def _local_slope(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares slopes of ``y`` on the columns of ``x`` (with an intercept); 0 when not estimable."""
    X = np.column_stack([np.ones(len(x)), x])
    sw = np.sqrt(w)
    try:
        coef, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
    except np.linalg.LinAlgError:  # pragma: no cover
        return np.zeros(x.shape[1])
    beta = coef[1:]
    return np.where(np.isfinite(beta), beta, 0.0)


def _candidates(target: np.ndarray, pool: np.ndarray, k: int) -> np.ndarray:
    """For each row of ``target`` (areas x features), the ``k`` pool rows nearest in (square-root) level.

    The ``k`` first of a stable sort of the distances (ties in pool order): each row's ``k``-th smallest
    distance is found by a partition, and only the pool rows at most that far are sorted.
    """
    st, sp = np.sqrt(target), np.sqrt(pool)
    if st.ndim == 2 and sp.ndim == 2 and 0 < st.shape[1] < 8 and st.shape[1] == sp.shape[1]:
        # the features' distances added one after another: the sum numpy's reduction makes of fewer than 8 terms
        d = np.abs(st[:, None, 0] - sp[None, :, 0])
        for j in range(1, st.shape[1]):
            d += np.abs(st[:, None, j] - sp[None, :, j])
    else:
        d = np.abs(st[:, None, :] - sp[None, :, :]).sum(axis=2)
    n = d.shape[1]
    if not 0 < k < n or np.isnan(d).any():
        return np.argsort(d, axis=1, kind="stable")[:, :k]
    kth = np.partition(d, k - 1, axis=1)[:, k - 1]
    out = np.empty((d.shape[0], k), dtype=np.intp)
    for i, row in enumerate(d):
        near = np.flatnonzero(row <= kth[i])  # every row a stable sort puts first, and ties of the k-th (pool order)
        out[i] = near[np.argsort(row[near], kind="stable")[:k]]
    return out


def _draw_sets(cands: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """``n_draws`` x areas pool indices: one candidate per area, no place used twice in a set (vectorised)."""
    n_areas, k = cands.shape
    cols = np.arange(n_areas)
    sets = cands[cols, rng.integers(k, size=(n_draws, n_areas))]
    for _ in range(200):
        order = np.argsort(sets, axis=1, kind="stable")
        srt = np.take_along_axis(sets, order, axis=1)
        dup_sorted = np.zeros_like(sets, dtype=bool)
        dup_sorted[:, 1:] = srt[:, 1:] == srt[:, :-1]
        if not dup_sorted.any():
            break
        dup = np.zeros_like(dup_sorted)
        np.put_along_axis(dup, order, dup_sorted, axis=1)
        rows, pos = np.nonzero(dup)
        sets[rows, pos] = cands[pos, rng.integers(k, size=rows.size)]
    return sets


def placebo_did(
    treated_before: Any,
    treated_after: Any,
    control_before: float,
    control_after: float,
    pool_before: Any,
    pool_after: Any,
    *,
    pool_history: Any = None,
    treated_history: Any = None,
    pool_in_control: bool = True,
    match_on_before: bool = True,
    replace: bool = True,
    rescale: bool = True,
    bias_correct: bool = False,
    outcome: tuple[Any, Any] | None = None,
    pool_outcome: tuple[Any, Any] | None = None,
    treated_cluster: Any = None,
    pool_cluster: Any = None,
    n_draws: int = 999,
    k: int | None = None,
    seed: int = 20240601,
    level: float = 0.95,
) -> PlaceboResult:
    """Placebo-in-space inference for the pooled rate-ratio DiD of treated areas against a control.

    Parameters
    ----------
    treated_before, treated_after : array_like of int
        Counts of each treated area before and after.
    control_before, control_after : float
        Control totals before and after.
    pool_before, pool_after : array_like of int
        Counts of each untreated candidate place (e.g. grid cells outside the areas and buffers).
    pool_history, treated_history : array_like, optional
        Counts in older months (before the before period), matched on too when given; a
        places x k array matches on k more features (e.g. older history and the ring's level).
        Each is rescaled to the treated areas' before-period total, so it weighs as much as the before level.
    pool_in_control : bool, default True
        Whether the pool places are part of the control (then a placebo set's
        counts are taken out of the control for that draw).
    match_on_before : bool, default True
        Match on the before-period level (the selection rule when the areas
        were, or may have been, picked on their recent counts).  ``False``
        (areas not picked on counts): match on older history only, or draw
        from every untreated place when there is none.
    replace : bool, default True
        Whether a place may stand in for two treated areas in one set (the
        busiest treated areas have few equally busy untreated places; a close
        match matters more than distinct places).
    rescale : bool, default True
        Give each stand-in place the weight of the treated area it replaces
        (its after/before ratio times the treated area's before count), so
        a placebo set is dominated by the same few areas as the treated set.
    bias_correct : bool, default False
        With ``rescale``, shift each stand-in's log after/before ratio by the
        local slope of log ratio on (square-root) level times its level gap to
        the area it replaces (bias-corrected matching): the busiest treated
        areas have no equally busy stand-ins, and less busy ones regress less.
        Off by default: on real data it over-corrects (see ``benchmarks/calibration_evaluation.md``).
    outcome, pool_outcome : (array_like, array_like), optional
        Test the change of other counts than the matched ones: ``outcome`` =
        (before, after) per treated area (e.g. each area's displacement
        buffer) and ``pool_outcome`` = (before, after) per pool place (e.g.
        the ring of untreated places around it).  Stand-ins are still matched
        on the treated areas' own level, so a placebo buffer is the ring
        round an equally busy untreated place, with the same spatial
        clustering and the same selection at a peak as the real buffers.
    treated_cluster, pool_cluster : array_like, optional
        A cluster label (e.g. district code) per treated area and per pool place; give both or neither
        (pool places with no label, None / NaN / "", are left out of the district estimate).
        Busy places of one district share changes (its busiest places move together) that stand-ins drawn
        independently from the whole force do not reproduce: the placebo spread holds the between-district
        variance once per area, not the covariance of areas sharing a district.  The deviations are widened by
        the design effect ``sqrt(1 + s2_d * (sum_d W_d^2 - sum_j w_j^2) / V)`` (``w`` the areas' weights,
        ``W_d`` their sum in district d, ``V`` the placebo variance after ``centre_factor``, ``s2_d`` from
        :func:`_district_variance` on the pool's busiest places of each district).  It is 1 when the areas lie
        in different districts; with all areas in one district the interval includes the spread of
        district-wide changes, which cannot be told from an effect there (``note`` says so).
    n_draws : int, default 999
        Placebo sets drawn.
    k : int, optional
        Untreated places each treated area can be replaced by (its ``k``
        nearest in level).  Default :data:`DEFAULT_K`, at most the pool.
    seed : int
        Random seed (recorded in the result).
    level : float, default 0.95
        Interval level.

    Returns
    -------
    PlaceboResult

    Notes
    -----
    Valid when, with no effect, the treated set's log ratio is exchangeable
    with the placebo sets' (Conley & Taber 2011): true when the areas were
    picked by a rule the placebo draws mimic (busy places, matched on level).
    If the treated areas are busier than any untreated place, the match is
    poor and ``note`` says so.

    The estimate (observed minus placebo median) carries the noise of both
    terms; the median averages only the ``k`` candidates of each area, shared
    between areas of similar level, so the placebo deviations are widened by
    ``centre_factor`` (:func:`_centre_factor`) before the rank test.  On 1000
    real no-effect designs (Hertfordshire, 26 areas) this moved the interval's
    exclusion of 0 from 6.6 % to 5.0 % (``benchmarks/calibration_evaluation.md``).
    Stand-ins are drawn independently, so changes shared by treated areas of
    one district (its busiest places move together) are not reproduced: with
    areas picked as the busiest cells of each of half the districts the
    placebo interval alone excluded 0 in 8 % (10 areas) and 12 % (26 areas)
    of real no-effect designs.  With ``treated_cluster`` / ``pool_cluster``
    the deviations are widened by the district design effect (a variance
    factor ``1 + s2_d * sum_{j != l, same district} w_j w_l / V``, as for
    cluster samples, Kish 1965); see
    ``benchmarks/calibration_evaluation.md`` for the measured rates.

    Examples
    --------
    40 untreated places and 3 treated ones that fell by half:

    >>> rng = np.random.default_rng(0)
    >>> pb = rng.poisson(50, 40); pa = rng.poisson(50, 40)
    >>> res = placebo_did([50, 52, 48], [25, 26, 24], 5000, 5000, pb, pa, n_draws=199, seed=1)
    >>> res.pct_high < 0, res.p_value < 0.05, res.n_draws
    (True, True, 199)
    """
    problems = _Problems("placebo_did")
    arrs = {}
    for name, value in (("treated_before", treated_before), ("treated_after", treated_after),
                        ("pool_before", pool_before), ("pool_after", pool_after)):
        a = np.asarray(value, dtype=float).ravel()
        if (a.size == 0 and name.startswith("treated")) or not np.all(np.isfinite(a)) or (a < 0).any():
            problems.add(f"{name} must be non-negative counts (got {a.size} values)", "pass one count per place")
        arrs[name] = a
    if arrs["treated_before"].size != arrs["treated_after"].size:
        problems.add("treated_before and treated_after differ in length", "one count per treated area in each")
    if arrs["pool_before"].size != arrs["pool_after"].size:
        problems.add("pool_before and pool_after differ in length", "one count per pool place in each")
    if (outcome is None) != (pool_outcome is None):
        problems.add("outcome and pool_outcome go together", "give both (e.g. buffers and pool rings) or neither")
    elif outcome is not None and (len(np.ravel(outcome[0])) != arrs["treated_before"].size
                                  or len(np.ravel(pool_outcome[0])) != arrs["pool_before"].size):
        problems.add("outcome needs one count per treated area and pool_outcome one per pool place",
                     "pass (before, after) arrays of those lengths")
    if (treated_cluster is None) != (pool_cluster is None):
        problems.add("treated_cluster and pool_cluster go together", "give a district per treated area and per pool place")
    elif treated_cluster is not None and (np.asarray(treated_cluster).size != arrs["treated_before"].size
                                          or np.asarray(pool_cluster).size != arrs["pool_before"].size):
        problems.add(f"treated_cluster / pool_cluster have {np.asarray(treated_cluster).size} / "
                     f"{np.asarray(pool_cluster).size} labels for {arrs['treated_before'].size} treated areas and "
                     f"{arrs['pool_before'].size} pool places", "pass one cluster label (e.g. district code) per place")
    if not (isinstance(n_draws, (int, np.integer)) and n_draws >= 1):
        problems.add(f"n_draws={n_draws!r} must be a positive whole number", "use e.g. 999")
    if not 0 < level < 1:
        problems.add(f"level={level!r} must be between 0 and 1", "use e.g. 0.95")
    problems.raise_if_any()
    tb, ta, pb, pa = arrs["treated_before"], arrs["treated_after"], arrs["pool_before"], arrs["pool_after"]
    n_areas, n_pool = tb.size, pb.size
    nan = float("nan")
    if n_pool == 0:
        observed = float(_log_irr(np.array(tb.sum()), np.array(ta.sum()), np.array(float(control_before)),
                                  np.array(float(control_after))))
        return PlaceboResult(observed, nan, nan, nan, nan, nan, int(n_draws), 0, 0, int(seed), float(level), nan,
                             "no untreated places with crime to draw placebo sets from: the interval cannot be calibrated")
    feats_t, feats_p = ([tb], [pb]) if match_on_before else ([], [])
    if pool_history is not None and treated_history is not None:
        for ft, fp in zip(np.asarray(treated_history, float).reshape(n_areas, -1).T,
                          np.asarray(pool_history, float).reshape(n_pool, -1).T):
            # on the before period's scale (e.g. 24 months of history weigh as much as 4 before months, not 6 times
            # more): matching on history then breaks ties in level without overriding the selection variable
            f = tb.sum() / ft.sum() if match_on_before and ft.sum() > 0 and tb.sum() > 0 else 1.0
            feats_t.append(ft * f)
            feats_p.append(fp * f)
    if feats_t:
        k = int(min(n_pool, k if k is not None else DEFAULT_K))
        cands = _candidates(np.column_stack(feats_t), np.column_stack(feats_p), k)
    else:  # not picked on counts and no older history: any untreated place
        k = n_pool
        cands = np.tile(np.arange(n_pool), (n_areas, 1))
    rng = np.random.default_rng(seed)
    sets = (_draw_sets(cands, int(n_draws), rng) if not replace
            else cands[np.arange(n_areas), rng.integers(k, size=(int(n_draws), n_areas))])
    n_distinct = int(np.unique(np.sort(sets, axis=1), axis=0).shape[0]) if sets.size else len({()} if len(sets) else ())
    sb = pb[sets].sum(axis=1)
    # the quantities whose change is tested: the treated areas' own counts, or (buffers) their rings' counts
    if outcome is not None:
        ob, oa = (np.asarray(v, float).ravel() for v in outcome)
        qb, qa = (np.asarray(v, float).ravel() for v in pool_outcome)
    else:
        ob, oa, qb, qa = tb, ta, pb, pa
    osb, osa = qb[sets].sum(axis=1), qa[sets].sum(axis=1)
    cb = control_before - (osb if pool_in_control else 0.0)
    ca = control_after - (osa if pool_in_control else 0.0)
    if rescale:
        # each stand-in's after/before ratio, weighted by the treated unit's own before count, so the busiest
        # treated areas weigh as much in every placebo set as in the treated set
        log_ratio = np.log((qa + 0.5) / (qb + 0.5))
        adj = np.zeros(sets.shape)
        if bias_correct and feats_t:
            # bias-corrected matching (Abadie & Imbens 2011): a stand-in a little less busy than the area it replaces
            # regresses a little less; shift its log ratio by the local slope of log ratio on level times the gap
            xt, xp = np.sqrt(np.column_stack(feats_t)), np.sqrt(np.column_stack(feats_p))
            near = np.unique(cands)
            beta = _local_slope(xp[near], log_ratio[near], qb[near] + 0.5)
            adj = ((xt[:, None, :] - xp[sets.T]) @ beta).T
        ratio = np.exp(log_ratio[sets] + adj)
        placebo = np.log((ratio * ob).sum(axis=1) / max(ob.sum(), 1e-9)) - np.log(ca / cb)
    else:
        placebo = _log_irr(osb, osa, cb, ca)
    placebo = placebo[np.isfinite(placebo)]
    observed = float(_log_irr(np.array(ob.sum()), np.array(oa.sum()), np.array(float(control_before)),
                              np.array(float(control_after))))
    notes = []
    match_ratio = float(sb.mean() / tb.sum()) if tb.sum() else float("nan")
    if match_on_before and np.isfinite(match_ratio) and not 0.8 <= match_ratio <= 1.25:
        notes.append(f"the placebo places had {match_ratio:.0%} of the treated areas' before-period level: "
                     "no untreated places are as busy, so the calibration is approximate")
    nan = float("nan")
    if placebo.size < MIN_PLACEBO_DRAWS or n_distinct < MIN_PLACEBO_DRAWS or not np.isfinite(observed):
        notes.append(f"only {n_distinct} distinct placebo sets (at least {MIN_PLACEBO_DRAWS} are needed): "
                     "too few comparable untreated places to calibrate the interval")
        return PlaceboResult(observed, nan, nan, nan, nan, nan, int(n_draws), n_distinct, k, int(seed), float(level),
                             match_ratio, "; ".join(notes))
    med = float(np.median(placebo))
    est = observed - med
    # the null distribution of the estimate is that of (one placebo set - the placebo centre): the placebo
    # deviations widened by the centre's own noise; one rank test, inverted for the interval
    cf = _centre_factor(ob, cands)
    f, n_clusters, sd_d = 1.0, 0, nan
    if treated_cluster is not None:
        w = ob / ob.sum() if ob.sum() > 0 else np.full(n_areas, 1.0 / n_areas)
        t_lab, t_has = _cluster_labels(treated_cluster)
        t_lab = np.where(t_has, t_lab, [f"\0{i}" for i in range(t_lab.size)])  # no district: a cluster of its own
        _, g = np.unique(t_lab, return_inverse=True)
        n_clusters = int(g.max()) + 1
        shared = float((np.bincount(g, weights=w) ** 2).sum() - (w**2).sum())  # covariance terms of areas sharing one
        feats = np.column_stack(feats_p) if feats_p else qb[:, None]
        pc, has = _cluster_labels(pool_cluster)  # no district: left out
        var_d = _district_variance(np.log((qa + 0.5) / (qb + 0.5))[has], pb[has], feats[has], pc[has],
                                   max(DISTRICT_TOP, int(np.bincount(g).max())), k if feats_p else DEFAULT_K)
        sd_d = math.sqrt(var_d) if np.isfinite(var_d) else nan
        v_pl = cf**2 * float(np.var(placebo))
        if shared > 0 and np.isfinite(var_d) and v_pl > 0:
            f = math.sqrt(1.0 + var_d * shared / v_pl)
        if shared > 0 and not np.isfinite(var_d):
            notes.append("fewer than two districts with untreated places: changes shared by the busy places of one "
                         "district could not be estimated, and the interval does not allow for them")
        elif n_clusters == 1 and n_areas > 1:
            notes.append("all treated areas lie in one district: a change shared by that district's busy places cannot be "
                         "told from a patrol effect; the interval allows for such changes as they vary between districts")
    p, half = _rank_test(est / (cf * f), placebo - med, 1 - level)
    lo, hi = est - half * cf * f, est + half * cf * f
    return PlaceboResult(observed, med, 100 * math.expm1(est), 100 * math.expm1(lo), 100 * math.expm1(hi), p,
                         int(n_draws), n_distinct, k, int(seed), float(level), match_ratio, "; ".join(notes), cf, f,
                         n_clusters, sd_d)


def quasi_poisson_did(
    treated_before: Any, treated_after: Any, control_before: Any, control_after: Any, *, level: float = 0.95,
) -> QuasiPoissonDiD:
    """Pooled rate-ratio DiD with its interval widened by the quasi-Poisson dispersion.

    The two-period Poisson model with a fixed effect per place and a
    treated x after term has, conditional on each place's total ``n_i``,
    binomial after-shares ``a_i ~ Bin(n_i, pi_g)`` with ``pi_g`` the pooled
    after-share of group ``g`` (treated or control).  The Pearson dispersion
    ``phi = sum (a_i - n_i pi_g)^2 / (n_i pi_g (1 - pi_g)) / (N - 2)`` over the
    ``N`` places with counts scales the Poisson variance of the log rate ratio.
    ``phi`` is floored at 1 (never narrower than Poisson).

    Parameters
    ----------
    treated_before, treated_after : array_like
        Counts per treated area.
    control_before, control_after : array_like
        Counts per control place (e.g. grid cells of the rest of the county).
    level : float, default 0.95
        Interval level.

    Returns
    -------
    QuasiPoissonDiD

    Examples
    --------
    With little extra variation the interval is the Poisson one:

    >>> r = quasi_poisson_did([100, 100], [80, 80], [100] * 20, [100] * 20)
    >>> round(r.pct_change, 1), r.dispersion
    (-20.0, 1.0)
    """
    tb, ta, cb, ca = (np.asarray(v, float).ravel() for v in (treated_before, treated_after, control_before, control_after))
    nan = float("nan")
    if min(tb.sum(), ta.sum(), cb.sum(), ca.sum()) <= 0:
        return QuasiPoissonDiD(nan, nan, nan, nan, nan, 0, "a before or after total is zero")
    x2, n_units = 0.0, 0
    for b, a in ((tb, ta), (cb, ca)):
        n = a + b
        pi = a.sum() / n.sum()
        ok = n > 0
        x2 += float((((a - n * pi) ** 2)[ok] / (n[ok] * pi * (1 - pi))).sum())
        n_units += int(ok.sum())
    df = n_units - 2
    phi = max(1.0, x2 / df) if df > 0 else nan
    log_irr = math.log(ta.sum() / tb.sum()) - math.log(ca.sum() / cb.sum())
    se = math.sqrt(phi * (1 / ta.sum() + 1 / tb.sum() + 1 / ca.sum() + 1 / cb.sum()))
    if not np.isfinite(se):
        return QuasiPoissonDiD(100 * math.expm1(log_irr), nan, nan, nan, phi, df, "too few places to estimate the dispersion")
    zc = float(norm_ppf(0.5 + level / 2))
    p = float(2 * norm_sf(abs(log_irr / se)))
    return QuasiPoissonDiD(100 * math.expm1(log_irr), 100 * math.expm1(log_irr - zc * se), 100 * math.expm1(log_irr + zc * se),
                           p, phi, df, "" if phi > 1 else "no overdispersion detected (dispersion floored at 1)")
