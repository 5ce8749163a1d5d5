"""The fixed-effects count fits behind :mod:`hotspots.evaluation.panel`: the design, the fits and the wild bootstrap.

A dense design (an intercept, area and period dummies less the first of
each, one regressor), fitted by :func:`hotspots.evaluation._glm.fit_glm`
(statsmodels' GLM fit, the same numbers, without importing its GLM), with
single-threaded BLAS; the Poisson fit made once when the negative binomial's
alpha is taken from it.

References
----------
.. [7] Kline, P. & Santos, A. (2012). A score based approach to wild bootstrap
   inference. *Journal of Econometric Methods* 1(1), 23-41.
.. [8] Webb, M. D. (2023). Reworking wild bootstrap-based inference for clustered
   errors. *Canadian Journal of Economics* 56(3), 839-858 (six-point weights).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from hotspots._errors import ValidationError

try:  # installed with scikit-learn; optional here
    from threadpoolctl import ThreadpoolController, threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None
_blas_controller = functools.lru_cache(maxsize=1)(lambda: ThreadpoolController())

log = logging.getLogger("hotspots.evaluation.panel")

__all__ = ["MAX_DESIGN_CELLS", "WILD_DRAWS", "wild_score_p"]

#: A dense fixed-effects design larger than this (cells) is refused, not attempted.
MAX_DESIGN_CELLS = 50_000_000


def _fit_fixed_effects(frame: pd.DataFrame, regressor: np.ndarray, *, family: str,
                       cluster: bool, wild: bool = True) -> dict[str, Any]:
    """Count GLM with area and period dummies plus one regressor of interest.

    ``wild=False`` leaves out the wild cluster bootstrap p (``p_wild`` NaN), for a caller that does not report it.
    """
    fitted = _fit_families(frame, regressor, (family,), cluster=cluster, wild=wild)[family]
    if isinstance(fitted, BaseException):
        raise fitted
    return fitted


def _fit_families(frame: pd.DataFrame, regressor: np.ndarray, families_: tuple[str, ...], *, cluster: bool,
                  wild: bool = True) -> dict[str, dict[str, Any] | BaseException]:
    """:func:`_fit_fixed_effects` for each family of ``families_``, on one design, with the Poisson fit made once.

    The negative binomial's alpha comes from the Poisson fit, which the Poisson family reports: fitted once, the
    same fit (the same design, the same numbers) serves both.  Each family gets what ``_fit_fixed_effects`` returns
    for it, or the exception it raises.
    """
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

    # statsmodels' GLM fit, the same numbers, solved faster; statsmodels' Poisson and negative binomial families
    # computed as it computes them, without importing its families (and the scipy.stats they import)
    from hotspots.evaluation._glm import CountFamily, fit_glm

    area_codes, areas = pd.factorize(frame["area"], sort=True)
    period_codes, periods = pd.factorize(frame["period"], sort=True)
    n, n_areas, n_periods = len(frame), len(areas), len(periods)
    n_cols = n_areas + n_periods
    if n * n_cols > MAX_DESIGN_CELLS:
        raise ValidationError(
            f"panel too large for a dense fixed-effects design ({n} rows x {n_cols} "
            "area and period dummies)",
            hint="aggregate control areas into fewer comparison units, or use fewer areas",
        )
    design = np.zeros((n, n_cols))
    rows = np.arange(n)
    design[:, 0] = 1.0
    keep = area_codes > 0
    design[rows[keep], area_codes[keep]] = 1.0
    keep = period_codes > 0
    design[rows[keep], n_areas - 1 + period_codes[keep]] = 1.0
    design[:, -1] = regressor
    y = frame["y"].to_numpy(float)
    offset = np.asarray(frame["offset"], dtype=float) * np.ones(n)
    groups = area_codes if cluster else None  # cluster-robust by area, or model-based
    # the design's rank (one SVD, which GLM makes for every model): the Poisson and negative binomial fits share it,
    # and the restricted design (the last column left out) has one less when the design is well inside full rank
    rank: list[Any] = [None]
    restricted_rank = None
    if wild and cluster and "poisson" in families_ and n >= n_cols:
        with _single_threaded_blas():
            sv = np.linalg.svd(design, compute_uv=False)
        tol = sv.max(initial=0) * (max(design.shape) * np.finfo(sv.dtype).eps)  # np.linalg.matrix_rank's tolerance
        if sv.min(initial=np.inf) > 1e3 * tol:
            # every singular value far above the tolerance: the rank is the number of columns, and leaving a column
            # out keeps the others' singular values above the smallest (interlacing) and the tolerance no higher
            rank[0] = np.count_nonzero(sv > tol, axis=-1)
            restricted_rank = rank[0] - 1

    def fit(fam: Any) -> Any:
        with _single_threaded_blas(), warnings.catch_warnings():
            # areas/periods without crime were dropped, so "perfect separation"
            # here only flags saturated designs (e.g. a 2 x 2 table), not divergence
            warnings.simplefilter("ignore", PerfectSeparationWarning)
            with np.errstate(divide="ignore", invalid="ignore"):
                result = fit_glm(y, design, family=fam, offset=offset, cov_groups=groups, rank=rank[0])
                rank[0] = result.df_model + 1
                return result

    def summary(result: Any, notes: list[str], nb_alpha: float, p_wild: float) -> dict[str, Any]:
        if not result.converged:
            notes.append("the model did not converge; treat the estimate with caution")
        dispersion = (float(result.pearson_chi2 / result.df_resid)
                      if result.df_resid > 0 else float("nan"))
        return {
            "coef": float(np.asarray(result.params)[-1]),
            "se": float(np.asarray(result.bse)[-1]),
            "nb_alpha": nb_alpha, "dispersion": dispersion,
            "n_obs": n, "n_areas": n_areas, "n_periods": n_periods,
            "cov_type": "cluster-robust by area" if cluster else "model-based",
            "notes": notes, "p_wild": p_wild,
        }

    out: dict[str, dict[str, Any] | BaseException] = {}
    try:
        poisson = fit(CountFamily())
    except Exception as exc:  # every family starts with this fit: each raises what it raised
        return {family: exc for family in families_}
    for family in families_:
        try:
            if family == "negbin":
                # NB2 alpha by the Cameron-Trivedi auxiliary regression on the Poisson fit:
                # ((y - mu)^2 - y) / mu = alpha * mu + error, OLS through the origin.
                notes = []
                mu = poisson.mu
                nb_alpha = float(np.sum((y - mu) ** 2 - y) / np.sum(mu ** 2))
                if not nb_alpha > 1e-8:
                    notes.append(f"no overdispersion found (alpha estimate {nb_alpha:.3g}); "
                                 "the negative binomial fit is effectively Poisson")
                    nb_alpha = 1e-8
                log.info("negative binomial alpha estimated at %.4g", nb_alpha)
                result = fit(CountFamily(alpha=nb_alpha))
                out[family] = summary(result, notes, nb_alpha, float("nan"))
                continue
            p_wild = float("nan")
            if cluster and family == "poisson" and wild:
                # the restricted model (no effect: the null of no change), for the score bootstrap
                with _single_threaded_blas(), warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
                    warnings.simplefilter("ignore", PerfectSeparationWarning)
                    restricted = fit_glm(y, design[:, :-1], family=CountFamily(), offset=offset,
                                         rank=restricted_rank)
                    p_wild = wild_score_p(y, design, np.asarray(restricted.mu), area_codes)  # single-threaded BLAS too
            out[family] = summary(poisson, [], float("nan"), p_wild)
        except Exception as exc:
            out[family] = exc
    return out


#: wild bootstrap draws for :func:`wild_score_p`
WILD_DRAWS = 9999


def wild_score_p(y: np.ndarray, design: np.ndarray, mu0: np.ndarray, clusters: np.ndarray, *,
                 draws: int = WILD_DRAWS, seed: int = 20240601) -> float:
    """Wild cluster score-bootstrap p-value for the last column's coefficient being 0 in a Poisson GLM [7]_.

    The score of the last coefficient at the restricted fit ``mu0`` (the model
    without it), with the other columns partialled out, is summed by cluster;
    the studentised total is compared with its wild-bootstrap distribution
    (each cluster's score multiplied by a random weight: Rademacher with 12 or
    more clusters, Webb's six-point weights [8]_ with fewer).  Valid with few
    clusters and overdispersion, where cluster-robust z tests over-reject.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(30), 10)
    >>> X = np.column_stack([np.ones(300), (g < 15) & (np.tile(np.arange(10), 30) >= 5)])
    >>> y = rng.poisson(np.exp(1 + rng.normal(0, 0.3, 30))[g])
    >>> 0.05 < wild_score_p(y, X, np.full(300, y.mean()), g, draws=999) <= 1
    True
    """
    xd, xn = design[:, -1], design[:, :-1]
    w = mu0
    xtw = xn.T * w
    gamma = np.linalg.lstsq(xtw @ xn, xtw @ xd, rcond=None)[0]
    resid_x = xd - xn @ gamma
    score = resid_x * (y - mu0)
    codes, inv = np.unique(clusters, return_inverse=True)
    s_g = np.bincount(inv, weights=score, minlength=codes.size)
    denom = math.sqrt(float(np.sum(s_g ** 2)))
    if not denom > 0:
        return float("nan")
    t_obs = abs(float(s_g.sum())) / denom
    rng = np.random.default_rng(seed)
    if codes.size >= 12:
        wts = rng.choice([-1.0, 1.0], size=(draws, codes.size))
    else:
        six = np.sqrt([1.5, 1.0, 0.5])
        wts = rng.choice(np.concatenate([-six, six]), size=(draws, codes.size))
    t_star = np.abs(wts @ s_g) / np.sqrt((wts ** 2) @ (s_g ** 2))
    return float((1 + np.sum(t_star >= t_obs - 1e-12)) / (draws + 1))


def _single_threaded_blas() -> contextlib.AbstractContextManager[Any]:
    """These designs are small (thousands of rows, tens to hundreds of columns):
    multi-threaded OpenBLAS gains nothing on them, and on a busy machine its
    spinning threads made each fit about 100 times slower in testing."""
    if threadpool_limits is None:  # pragma: no cover
        return contextlib.nullcontext()
    return _blas_controller().limit(limits=1, user_api="blas")  # the libraries are looked up once, not per fit


