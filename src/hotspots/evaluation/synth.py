"""Synthetic control for the treated areas together: a robustness check on the headline estimate.

The treated areas' monthly total, as an index of its pre-period mean, is
matched by a weighted average (non-negative weights summing to one) of the
same index for untreated donor places, fitted on the pre-period months only
(Abadie, Diamond & Hainmueller 2010).  The effect is the treated index over
the synthetic index in the after months, minus one.  Inference is by
placebo-in-space: every donor in turn is treated as if patrolled and fitted
from the others; the p-value is the treated areas' rank among all of them by
the ratio of after-period to pre-period fit error (RMSPE).

References
----------
.. [1] Abadie, A., Diamond, A. & Hainmueller, J. (2010). Synthetic control methods
   for comparative case studies. *JASA* 105, 493-505.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from scipy.optimize import nnls

from hotspots.evaluation.inference import DEFAULT_K, _candidates

__all__ = ["SyntheticControl", "placebo_donors", "synthetic_control"]

#: Donors kept (the busiest untreated places before), and the most placebo fits made.
MAX_DONORS = 40
#: Placebos whose pre-period RMSPE exceeds this multiple of the treated's are left out of the p-value.
MAX_PRE_RMSPE_RATIO = 5.0
#: Fewer usable placebos than this: no p-value.
MIN_PLACEBOS = 19


@dataclasses.dataclass(frozen=True)
class SyntheticControl:
    """A synthetic-control estimate (see :func:`synthetic_control`).

    Attributes
    ----------
    pct_change : float
        Treated over synthetic in the after months, minus one, in %.
    pre_rmspe : float
        Root mean squared gap between the treated and synthetic index before (index points, 100 = pre mean).
    post_rmspe : float
        The same after.
    p_value : float
        Placebo-in-space rank p-value of the post/pre RMSPE ratio (treated among treated + donors whose
        pre-period fit is within :data:`MAX_PRE_RMSPE_RATIO` times the treated's); NaN when fewer than
        :data:`MIN_PLACEBOS` such donors.
    n_donors : int
        Donor places.
    weights : dict
        Donor label -> weight, the donors with weight over 1% (largest first).
    note : str
        What limits the estimate ("" when nothing to say).
    """

    pct_change: float
    pre_rmspe: float
    post_rmspe: float
    p_value: float
    n_donors: int
    weights: dict
    note: str


def placebo_donors(treated_before: Any, pool_before: Any, pool_monthly: Any, *, treated_history: Any = None,
                   pool_history: Any = None, n_sets: int = MAX_DONORS, k: int = DEFAULT_K, seed: int = 0) -> np.ndarray:
    """Donor series made like the treated total: each is a placebo set of equally busy untreated places.

    Each treated area is replaced by a random one of the ``k`` untreated places nearest in before-period level
    (and older history, on the before period's scale), weighted by the area's before count over the stand-in's,
    as :func:`hotspots.evaluation.inference.placebo_did` does; the set's monthly total is one donor.  Donors
    then share the treated total's size, noise and selection at a peak, which single cells do not.

    Returns
    -------
    numpy.ndarray
        ``n_sets`` x months.

    Examples
    --------
    >>> pool = np.arange(1, 31)[:, None] * np.ones((1, 6))
    >>> placebo_donors([10, 20], pool[:, 0] * 4, pool, n_sets=3, k=2).shape
    (3, 6)
    >>> placebo_donors([10, 20], [], np.zeros((0, 6))).shape
    (0, 6)
    """
    tb = np.asarray(treated_before, float).ravel()
    pb = np.asarray(pool_before, float).ravel()
    if pb.size == 0 or tb.size == 0:  # no untreated places: no donors
        return np.zeros((0, np.shape(pool_monthly)[-1] if np.ndim(pool_monthly) == 2 else 0))
    series = np.asarray(pool_monthly, float).reshape(pb.size, -1)
    ft, fp = [tb], [pb]
    if treated_history is not None and pool_history is not None:
        for a, b in zip(np.asarray(treated_history, float).reshape(tb.size, -1).T,
                        np.asarray(pool_history, float).reshape(pb.size, -1).T):
            f = tb.sum() / a.sum() if a.sum() > 0 and tb.sum() > 0 else 1.0
            ft.append(a * f)
            fp.append(b * f)
    k = int(min(k, pb.size))
    cands = _candidates(np.column_stack(ft), np.column_stack(fp), k)
    rng = np.random.default_rng(seed)
    sets = cands[np.arange(tb.size), rng.integers(k, size=(n_sets, tb.size))]
    weights = tb[None, :] / (pb[sets] + 0.5)
    return np.einsum("sa,sam->sm", weights, series[sets])


def _fit(target: np.ndarray, donors: np.ndarray) -> np.ndarray:
    """Non-negative donor weights summing to one that best match ``target`` (least squares, via NNLS)."""
    scale = 1e3 * max(1.0, float(np.abs(target).max()))
    a = np.vstack([donors, np.full(donors.shape[1], scale)])
    b = np.concatenate([target, [scale]])
    w, _ = nnls(a, b, maxiter=50 * donors.shape[1])
    return w / w.sum() if w.sum() > 0 else np.full(donors.shape[1], 1 / donors.shape[1])


def _index(series: np.ndarray, pre: np.ndarray) -> np.ndarray:
    base = series[..., pre].mean(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100 * series / base


def synthetic_control(treated: Any, donors: Any, pre: Any, post: Any, *, labels: Any = None) -> SyntheticControl:
    """Synthetic control of a monthly treated total from donor places, with placebo-in-space inference.

    Parameters
    ----------
    treated : array_like
        The treated areas' total per month (months with data only).
    donors : array_like
        Donors x months counts of untreated places (the busiest :data:`MAX_DONORS` are kept).
    pre, post : array_like of bool
        Which months are before the patrols (fitted on) and after (the effect).
    labels : sequence of str, optional
        Donor labels for the reported weights.

    Returns
    -------
    SyntheticControl

    Examples
    --------
    Donors that share a common trend; the treated total falls by a third after month 12:

    >>> rng = np.random.default_rng(2)
    >>> trend = np.linspace(1, 1.3, 18)
    >>> donors = rng.poisson(300 * trend * rng.uniform(0.8, 1.2, (30, 1)))
    >>> treated = rng.poisson(400 * trend * np.where(np.arange(18) >= 12, 2 / 3, 1))
    >>> pre, post = np.arange(18) < 12, np.arange(18) >= 12
    >>> sc = synthetic_control(treated, donors, pre, post)
    >>> -40 < sc.pct_change < -25, sc.p_value < 0.05, sc.n_donors
    (True, True, 30)
    """
    y = np.asarray(treated, float).ravel()
    d = np.asarray(donors, float).reshape(-1, y.size)
    pre, post = np.asarray(pre, bool).ravel(), np.asarray(post, bool).ravel()
    labels = list(labels) if labels is not None else [str(i) for i in range(d.shape[0])]
    nan = float("nan")
    keep = np.flatnonzero(d[:, pre].sum(axis=1) > 0)
    keep = keep[np.argsort(-d[keep][:, pre].sum(axis=1), kind="stable")][:MAX_DONORS]
    if pre.sum() < 3 or post.sum() < 1 or keep.size < 5 or y[pre].sum() <= 0:
        return SyntheticControl(nan, nan, nan, nan, int(keep.size), {},
                                "too few pre-period months (3 needed) or donors (5 needed) for a synthetic control")
    units = np.vstack([y[None, :], d[keep]])
    idx = _index(units, pre)
    ratios, fits = [], []
    for i in range(units.shape[0]):
        # the treated areas are fitted from the donors; each placebo donor from the other donors, never the treated
        others = np.array([j for j in range(1, units.shape[0]) if j != i])
        w = _fit(idx[i, pre], idx[others][:, pre].T)
        synth = w @ idx[others]
        gap = idx[i] - synth
        pre_e, post_e = math.sqrt(np.mean(gap[pre] ** 2)), math.sqrt(np.mean(gap[post] ** 2))
        ratios.append(post_e / max(pre_e, 1e-9))
        fits.append((w, synth, pre_e, post_e, others))
    w, synth, pre_e, post_e, others = fits[0]
    pct = 100 * (idx[0, post].mean() / synth[post].mean() - 1)
    # placebos the donors cannot fit (pre-period RMSPE over 5 times the treated's) say nothing about the treated
    # areas' ratio and are left out (Abadie et al. 2010); too few left: no p-value
    pre_errs = np.array([f[2] for f in fits])
    usable = np.flatnonzero(pre_errs <= MAX_PRE_RMSPE_RATIO * max(pre_e, 1e-9))
    ratios = np.asarray(ratios)[usable]
    p = float(np.mean(ratios >= ratios[0] - 1e-12)) if usable.size >= MIN_PLACEBOS + 1 else nan
    order = np.argsort(-w, kind="stable")
    weights = {labels[keep[others[j] - 1]]: round(float(w[j]), 3) for j in order if w[j] > 0.01}
    notes = []
    if not np.isfinite(p):
        notes.append(f"only {usable.size - 1} donors fit their own pre-period within {MAX_PRE_RMSPE_RATIO:g} times the "
                     f"treated areas' error (single places are much noisier than the areas together): no placebo p-value")
    donor_pre_sd = float(np.std(idx[1:, pre]))
    if pre_e > 0.5 * donor_pre_sd:
        notes.append(f"poor pre-period fit (RMSPE {pre_e:.1f} index points against a donor spread of {donor_pre_sd:.1f}): "
                     "the synthetic comparison does not track the treated areas before the patrols")
    return SyntheticControl(float(pct), float(pre_e), float(post_e), p, int(keep.size), weights, "; ".join(notes))
