"""statsmodels' GLM fitted by its own IRLS, each weighted least-squares step solved faster.

statsmodels solves every IRLS step with ``numpy.linalg.lstsq`` (an SVD of the
weighted design) and the last one again by the pseudo-inverse.  The panels
of the evaluation have thousands of rows and a hundred area and month
dummies, so those SVDs were most of the evaluation's model fitting.
:func:`glm` returns a statsmodels ``GLM`` whose IRLS is statsmodels' own
(the same start, updates, deviance history and stopping rule, and the same
``GLMResults`` built at the end, so standard errors, cluster-robust
covariances and every statistic are computed by statsmodels) with each step
solved instead by the normal equations of the column-scaled design
(Cholesky, then one step of iterative refinement against the design
itself), which gives the least-squares solution to rounding.  A design that
is not of full column rank, or whose scaled normal equations are
ill-conditioned, and any option this module does not reproduce, are fitted
by statsmodels unchanged.

:func:`fit_glm` makes the same fit without statsmodels' ``GLM`` class,
whose module takes about 0.2 s to import (its formula machinery, some 200
modules): statsmodels' family objects and its cluster sandwich, every other
line as statsmodels computes it, so each number is the one ``glm(...).fit()``
gives, bit for bit (tested).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np
from scipy import linalg

__all__ = ["CountFamily", "CountFit", "fit_glm", "glm"]

#: the scaled normal equations are solved only when their reciprocal condition number is above this (the scaled
#: design's condition number below 1e4, so the solution is good to about 1e-12), otherwise by statsmodels' SVD
_MIN_RCOND = 1e-8
#: and only when the IRLS weights span less than this ratio (a weight near 0 is an effect running off to
#: minus infinity, where the iterations are at the mercy of rounding)
_MAX_WEIGHT_RATIO = 1e8


def glm(endog: np.ndarray, exog: np.ndarray, *, family: Any, offset: np.ndarray | None = None,
        rank: Any = None) -> Any:
    """``statsmodels.genmod.generalized_linear_model.GLM(endog, exog, family=family, offset=offset)``, fitted faster.

    ``.fit()`` (IRLS, the default options, any ``cov_type``) gives what
    statsmodels gives, to rounding (tested against it).  ``rank``: the rank of
    ``exog`` as ``numpy.linalg.matrix_rank`` gives it, when the caller has it
    from an earlier model on the same ``exog`` (``model.df_model + 1``): the
    model is then made without that SVD, with the same ``df_model`` and
    ``df_resid``.
    """
    cls = _fast_glm_class()
    model = cls.__new__(cls)
    model._known_rank = rank
    model.__init__(endog, exog, family=family, offset=offset)
    return model


def _solve(wexog: np.ndarray, wendog: np.ndarray) -> tuple[np.ndarray, Any, np.ndarray] | None:
    """Least-squares solution of ``wexog @ x = wendog``, the Cholesky factor and scale; None when unsafe."""
    gram = wexog.T @ wexog
    scale = np.sqrt(np.diag(gram))
    if not (np.all(np.isfinite(gram)) and np.all(scale > 0)):
        return None
    scaled = gram / scale[:, None] / scale[None, :]  # (made once: the factor and its condition number read it)
    try:
        factor = linalg.cho_factor(scaled, lower=False, check_finite=False)
    except linalg.LinAlgError:
        return None
    # the reciprocal condition number of the scaled normal equations (LAPACK's estimate from the factor)
    rcond, info = linalg.lapack.dpocon(factor[0], np.linalg.norm(scaled, 1))
    if info != 0 or not rcond > _MIN_RCOND:
        return None
    x = linalg.cho_solve(factor, (wexog.T @ wendog) / scale, check_finite=False) / scale
    x = x + linalg.cho_solve(factor, (wexog.T @ (wendog - wexog @ x)) / scale, check_finite=False) / scale
    return x, factor, scale


class _Params:
    """What ``GLM._update_history`` reads of a WLS result: its ``params``."""

    __slots__ = ("params",)

    def __init__(self, params: np.ndarray) -> None:
        self.params = params


@functools.lru_cache(maxsize=1)
def _fast_glm_class() -> type:
    from statsmodels.genmod import generalized_linear_model as glm_module
    from statsmodels.regression import _tools as reg_tools
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

    class FastIRLSGLM(glm_module.GLM):
        """GLM whose IRLS solves each weighted least-squares step by the scaled normal equations."""

        _known_rank = None

        def initialize(self):
            rank = self._known_rank
            if rank is None or self.freq_weights is not None:
                return super().initialize()
            # GLM.initialize (statsmodels 0.14-0.15) with the rank given instead of np.linalg.matrix_rank(self.exog)
            self.df_model = rank - 1
            self.wnobs = self.exog.shape[0]
            self.df_resid = self.exog.shape[0] - self.df_model - 1

        def _fit_irls(self, start_params=None, maxiter=100, tol=1e-8, scale=None, cov_type="nonrobust",
                      cov_kwds=None, use_t=None, **kwargs):
            def plain():
                return super(FastIRLSGLM, self)._fit_irls(
                    start_params=start_params, maxiter=maxiter, tol=tol, scale=scale, cov_type=cov_type,
                    cov_kwds=cov_kwds, use_t=use_t, **kwargs)

            exog, endog = self.exog, self.endog
            k = exog.shape[1]
            if (start_params is not None or maxiter < 1 or set(kwargs) - {"atol", "rtol", "tol_criterion"}
                    or self.df_model + 1 != k or endog.ndim != 1):
                return plain()
            atol = kwargs.get("atol")
            rtol = kwargs.get("rtol", 0.0)
            atol = tol if atol is None else atol
            # from here on, statsmodels' GLM._fit_irls (0.14-0.15) with the default wls_method="lstsq"
            zeros = np.zeros(k)  # (not start_params: plain() passes that on)
            mu = self.family.starting_mu(endog)
            lin_pred = self.family.predict(mu)
            self.scale = self.estimate_scale(mu)
            dev = self.family.deviance(endog, mu, self.var_weights, self.freq_weights, self.scale)
            if np.isnan(dev):
                return plain()  # statsmodels raises its own error
            history = dict(params=[np.inf, zeros], deviance=[np.inf, dev])
            converged = False
            criterion = history[kwargs.get("tol_criterion", "deviance")]
            for iteration in range(maxiter):
                self.weights = self.iweights * self.n_trials * self.family.weights(mu)
                wlsendog = lin_pred + self.family.link.deriv(mu) * (endog - mu) - self._offset_exposure
                wls_mod = reg_tools._MinimalWLS(wlsendog, exog, self.weights, check_endog=True, check_weights=True)
                weights = np.asarray(self.weights)
                solved = _solve(wls_mod.wexog, wls_mod.wendog) if weights.min() * _MAX_WEIGHT_RATIO > weights.max() \
                    else None
                if solved is None:
                    return plain()  # starts again from the start, as statsmodels would
                params, factor, col_scale = solved
                # (statsmodels makes the WLS results here, residuals and scale too, and reads only their params)
                lin_pred = np.dot(exog, params)
                lin_pred += self._offset_exposure
                mu = self.family.fitted(lin_pred)
                history = self._update_history(_Params(params), mu, history)
                self.scale = self.estimate_scale(mu)
                # np.allclose(mu - endog, 0): |mu - endog| <= 1e-8 everywhere (NaN is not close)
                if endog.squeeze().ndim == 1 and bool(np.all(np.abs(mu - endog) <= 1e-8)):
                    warnings.warn("Perfect separation or prediction detected, parameter may not be identified",
                                  category=PerfectSeparationWarning, stacklevel=2)
                converged = glm_module._check_convergence(criterion, iteration + 1, atol, rtol)
                if converged:
                    break
            self.mu = mu
            # statsmodels solves the last step again by the pseudo-inverse: the same parameters, and (X'WX)^-1
            normalized_cov = linalg.cho_solve(factor, np.eye(k), check_finite=False) / col_scale[:, None] \
                / col_scale[None, :]
            results = glm_module.GLMResults(self, params, normalized_cov, self.scale, cov_type=cov_type,
                                            cov_kwds=cov_kwds, use_t=use_t)
            results.method = "IRLS"
            results.mle_settings = {"wls_method": "lstsq", "optimizer": "IRLS"}
            history["iteration"] = iteration + 1
            results.fit_history = history
            results.converged = converged
            return glm_module.GLMResultsWrapper(results)

    return FastIRLSGLM


# --------------------------------------------------------------------------- the count families without statsmodels
#: statsmodels.genmod.families' FLOAT_EPS, the floor of its clipped means
_FLOAT_EPS = np.finfo(float).eps


def _clean(x: Any) -> Any:
    """``Family._clean`` / ``Log._clean`` / ``varfuncs.NegativeBinomial._clean``: clipped into (0, inf)."""
    return np.clip(x, _FLOAT_EPS, np.inf)


class _LogLink:
    """``statsmodels.genmod.families.links.Log``, line for line (0.14-0.15)."""

    def __call__(self, p: Any) -> Any:
        return np.log(_clean(p))

    def inverse(self, z: Any) -> Any:
        return np.exp(z)

    def deriv(self, p: Any) -> Any:
        return 1.0 / _clean(p)

    def deriv2(self, p: Any) -> Any:
        p = _clean(p)
        return -1.0 / p**2


class _PoissonVariance:
    """``varfuncs.mu`` (``Power(power=1.0)``), line for line."""

    power = 1.0

    def __call__(self, mu: Any) -> Any:
        return np.power(np.fabs(mu), self.power)

    def deriv(self, mu: Any) -> Any:
        der = self.power * np.fabs(mu) ** (self.power - 1)
        der[np.flatnonzero(mu < 0)] *= -1
        return der


class _NegativeBinomialVariance:
    """``varfuncs.NegativeBinomial(alpha)``, line for line."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def __call__(self, mu: Any) -> Any:
        p = _clean(mu)
        return p + self.alpha * p**2

    def deriv(self, mu: Any) -> Any:
        p = _clean(mu)
        return 1 + 2 * self.alpha * p


class CountFamily:
    """statsmodels' ``Poisson()`` or ``NegativeBinomial(alpha=alpha)`` family with its log link, without importing it.

    ``statsmodels.genmod.families`` imports ``scipy.stats`` (its links module),
    about half a second of CPU in each process that fits a panel; what
    :func:`fit_glm` reads of a family (``starting_mu``, ``predict``,
    ``fitted``, ``weights``, ``deviance``, ``link.deriv``/``deriv2``,
    ``variance`` and its ``deriv``) is computed here as statsmodels computes it
    (0.14-0.15), so the fit is the same, bit for bit (tested against
    statsmodels' families).  ``alpha=None``: Poisson.
    :meth:`statsmodels_family` gives statsmodels' own family, for the fits
    :func:`fit_glm` hands to statsmodels.
    """

    def __init__(self, alpha: float | None = None) -> None:
        self.alpha = None if alpha is None else 1.0 * alpha  # (NegativeBinomial: "make it at least float")
        self.link = _LogLink()
        self.variance = _PoissonVariance() if alpha is None else _NegativeBinomialVariance(self.alpha)

    def statsmodels_family(self) -> Any:
        from statsmodels.genmod import families

        return families.Poisson() if self.alpha is None else families.NegativeBinomial(alpha=self.alpha)

    def starting_mu(self, y: np.ndarray) -> np.ndarray:
        return (y + y.mean()) / 2.0

    def weights(self, mu: np.ndarray) -> np.ndarray:
        return 1.0 / (self.link.deriv(mu) ** 2 * self.variance(mu))

    def fitted(self, lin_pred: np.ndarray) -> np.ndarray:
        return self.link.inverse(lin_pred)

    def predict(self, mu: np.ndarray) -> np.ndarray:
        return self.link(mu)

    def _resid_dev(self, endog: np.ndarray, mu: np.ndarray) -> np.ndarray:
        endog_mu = _clean(endog / mu)
        if self.alpha is None:  # Poisson._resid_dev
            resid_dev = endog * np.log(endog_mu) - (endog - mu)
            return 2 * resid_dev
        endog_alpha = endog + 1 / self.alpha  # NegativeBinomial._resid_dev
        mu_alpha = mu + 1 / self.alpha
        resid_dev = endog * np.log(endog_mu)
        resid_dev -= endog_alpha * np.log(endog_alpha / mu_alpha)
        return 2 * resid_dev

    def deviance(self, endog: np.ndarray, mu: np.ndarray, var_weights: Any = 1.0, freq_weights: Any = 1.0,
                 scale: float = 1.0) -> Any:
        resid_dev = self._resid_dev(endog, mu)
        return np.sum(resid_dev * freq_weights * var_weights / scale)


# --------------------------------------------------------------------------- the same fit without statsmodels' GLM
class CountFit:
    """What the evaluation reads of a fitted GLM: the attributes of statsmodels' ``GLMResults`` of the same names.

    Made by :func:`fit_glm` with statsmodels' own arithmetic, operation for
    operation, so each number is the one ``glm(...).fit(...)`` gives, bit for bit.
    """

    __slots__ = ("params", "bse", "mu", "converged", "pearson_chi2", "df_model", "df_resid", "fit_history",
                 "normalized_cov_params", "cov_params_default", "cov_type", "scale")

    def cov_params(self) -> np.ndarray:
        return self.cov_params_default


class _SandwichModel:
    """The model side of statsmodels' ``GLM`` that ``sandwich_covariance.cov_cluster`` reads: ``score_obs`` and
    ``hessian``, for a family with scale 1 (Poisson, negative binomial), no weights, no exposure; each line as
    ``GLM.score_factor``, ``GLM.hessian_factor``, ``GLM.hessian`` and ``GLM.predict`` compute it (0.14-0.15)."""

    def __init__(self, endog, exog, family, offset, iweights, n_trials) -> None:
        self.endog, self.exog, self.family, self.offset = endog, exog, family, offset
        self.iweights, self.n_trials = iweights, n_trials

    def predict(self, params):
        offset = 0.0 if self.offset is None else self.offset
        linpred = np.dot(self.exog, params) + offset + 0.0  # (+ exposure: none)
        return self.family.fitted(linpred)

    def score_factor(self, params, scale=None):
        mu = self.predict(params)
        score_factor = (self.endog - mu) / self.family.link.deriv(mu)
        score_factor /= self.family.variance(mu)
        score_factor *= self.iweights * self.n_trials
        return score_factor  # (scale 1: not divided)

    def score_obs(self, params, scale=None):
        score_factor = self.score_factor(params, scale=scale)
        return score_factor[:, None] * self.exog

    def hessian_factor(self, params):
        mu = self.predict(params)
        eim_factor = 1 / (self.family.link.deriv(mu) ** 2 * self.family.variance(mu))
        eim_factor *= self.iweights * self.n_trials
        score_factor = self.score_factor(params, scale=1.0)
        tmp = self.family.variance(mu) * self.family.link.deriv2(mu)
        tmp += self.family.variance.deriv(mu) * self.family.link.deriv(mu)
        tmp = score_factor * tmp
        tmp /= self.iweights * self.n_trials
        return eim_factor * (1 + tmp)  # observed information (scale 1)

    def hessian(self, params, scale=None, observed=None):
        tmp = np.empty_like(self.exog, dtype=float)
        factor = self.hessian_factor(params)
        np.multiply(self.exog.T, factor, out=tmp.T)
        return -tmp.T.dot(self.exog)


class _SandwichResults:
    """``results.model`` and ``results.params``: what ``cov_cluster`` reads of a results object."""

    def __init__(self, model: _SandwichModel, params: np.ndarray) -> None:
        self.model, self.params = model, params


def fit_glm(endog: np.ndarray, exog: np.ndarray, *, family: Any, offset: np.ndarray | None = None,
            cov_groups: np.ndarray | None = None, rank: Any = None) -> Any:
    """``glm(endog, exog, family=family, offset=offset, rank=rank).fit(**cov)``, bit for bit, without statsmodels' GLM.

    ``cov`` is ``cov_type="cluster", cov_kwds={"groups": cov_groups}`` when
    ``cov_groups`` is given, else the default (model-based).  statsmodels'
    ``generalized_linear_model`` takes about 0.2 s to import (its formula
    machinery and 200 modules) and a model and its results cost milliseconds of
    set-up each; for a Poisson or negative binomial family (scale 1) with an
    offset or none, a float design of full column rank and IRLS steps the
    normal equations solve (:func:`_solve`), the fit here is made with
    statsmodels' family objects and its cluster sandwich
    (``sandwich_covariance.cov_cluster``) and every other line as statsmodels
    computes it, so the parameters, standard errors, fitted means, Pearson
    chi-square, degrees of freedom, convergence and history are the same
    numbers.  Anything else is fitted by ``glm(...).fit(...)`` and its
    results returned.

    Returns a :class:`CountFit` (or statsmodels' results).
    """
    fit_kwargs: dict[str, Any] = {} if cov_groups is None else {"cov_type": "cluster", "cov_kwds": {"groups": cov_groups}}

    def statsmodels_fit() -> Any:
        fam = family.statsmodels_family() if type(family) is CountFamily else family
        return glm(endog, exog, family=fam, offset=offset, rank=rank).fit(**fit_kwargs)

    def reproduced(fam: Any) -> bool:
        if type(fam) is CountFamily:
            return True  # (statsmodels' families not imported: they import scipy.stats)
        from statsmodels.genmod import families

        return type(fam) in (families.Poisson, families.NegativeBinomial) and type(fam.link) is families.links.Log

    endog, exog = np.asarray(endog), np.asarray(exog)
    if (not reproduced(family)
            or endog.dtype != np.float64 or exog.dtype != np.float64 or endog.ndim != 1 or exog.ndim != 2
            or exog.shape[0] != endog.shape[0] or exog.shape[1] < 1
            or (offset is not None and (np.asarray(offset).dtype != np.float64 or np.shape(offset) != endog.shape))
            or (cov_groups is not None and not (isinstance(cov_groups, np.ndarray) and cov_groups.shape == endog.shape))):
        return statsmodels_fit()
    offset = None if offset is None else np.asarray(offset)
    n, k = exog.shape
    if rank is None:
        rank = np.linalg.matrix_rank(exog)  # GLM.initialize
    df_model = rank - 1
    if df_model + 1 != k:
        return statsmodels_fit()
    freq_weights, var_weights = np.ones(n), np.ones(n)
    iweights = np.asarray(freq_weights * var_weights)
    n_trials = np.ones(n)
    offset_exposure = offset if offset is not None else 0.0
    # GLM._fit_irls (statsmodels 0.14-0.15) as FastIRLSGLM runs it, default options, scale 1
    maxiter, atol, rtol = 100, 1e-8, 0.0
    zeros = np.zeros(k)
    mu = family.starting_mu(endog)
    lin_pred = family.predict(mu)
    scale = 1.0
    dev = family.deviance(endog, mu, var_weights, freq_weights, scale)
    if np.isnan(dev):
        return statsmodels_fit()  # statsmodels raises its own error
    history = dict(params=[np.inf, zeros], deviance=[np.inf, dev])
    converged = False
    criterion = history["deviance"]
    msg = "NaN, inf or invalid value detected in {0}, estimation infeasible."
    for iteration in range(maxiter):
        weights = iweights * n_trials * family.weights(mu)
        wlsendog = lin_pred + family.link.deriv(mu) * (endog - mu) - offset_exposure
        w_half = np.sqrt(weights)  # _MinimalWLS(wlsendog, exog, weights, check_endog=True, check_weights=True)
        if not np.all(np.isfinite(w_half)):
            raise ValueError(msg.format("weights"))
        if not np.all(np.isfinite(wlsendog)):
            raise ValueError(msg.format("endog"))
        wendog = w_half * wlsendog
        wexog = np.asarray(w_half)[:, None] * exog
        weights = np.asarray(weights)
        solved = _solve(wexog, wendog) if weights.min() * _MAX_WEIGHT_RATIO > weights.max() else None
        if solved is None:
            return statsmodels_fit()  # from the start, as statsmodels (through FastIRLSGLM) would
        params, factor, col_scale = solved
        lin_pred = np.dot(exog, params)
        lin_pred += offset_exposure
        mu = family.fitted(lin_pred)
        history["params"].append(params)
        history["deviance"].append(family.deviance(endog, mu, var_weights, freq_weights, scale))
        if endog.squeeze().ndim == 1 and bool(np.all(np.abs(mu - endog) <= 1e-8)):
            from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

            warnings.warn("Perfect separation or prediction detected, parameter may not be identified",
                          category=PerfectSeparationWarning, stacklevel=2)
        converged = bool(np.allclose(criterion[iteration + 1], criterion[iteration + 2], atol=atol, rtol=rtol))
        if converged:
            break
    history["iteration"] = iteration + 1
    normalized_cov = linalg.cho_solve(factor, np.eye(k), check_finite=False) / col_scale[:, None] / col_scale[None, :]
    res = CountFit()
    res.params, res.normalized_cov_params, res.scale = params, normalized_cov, 1.0
    res.converged, res.fit_history = converged, history
    res.df_model, res.df_resid = df_model, exog.shape[0] - df_model - 1
    model = _SandwichModel(endog, exog, family, offset, iweights, n_trials)
    if cov_groups is None:
        res.cov_type, res.cov_params_default = "nonrobust", normalized_cov * 1.0
    else:
        from statsmodels.stats import sandwich_covariance as sw

        groups = cov_groups  # (get_robustcov_results: one-dimensional groups, passed on as they are)
        res.cov_type = "cluster"
        res.cov_params_default = sw.cov_cluster(_SandwichResults(model, params), groups, use_correction=True,
                                                crv_type="cluster")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res.bse = np.sqrt(np.diag(res.cov_params_default))
    res.mu = model.predict(params)
    chisq = (endog - res.mu) ** 2 / family.variance(res.mu)
    chisq *= iweights * 1
    res.pearson_chi2 = np.sum(chisq)
    return res
