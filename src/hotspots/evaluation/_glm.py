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
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np
from scipy import linalg

__all__ = ["glm"]

#: the scaled normal equations are solved only when their reciprocal condition number is above this (the scaled
#: design's condition number below 1e4, so the solution is good to about 1e-12), otherwise by statsmodels' SVD
_MIN_RCOND = 1e-8
#: and only when the IRLS weights span less than this ratio (a weight near 0 is an effect running off to
#: minus infinity, where the iterations are at the mercy of rounding)
_MAX_WEIGHT_RATIO = 1e8


def glm(endog: np.ndarray, exog: np.ndarray, *, family: Any, offset: np.ndarray | None = None) -> Any:
    """``statsmodels.genmod.generalized_linear_model.GLM(endog, exog, family=family, offset=offset)``, fitted faster.

    ``.fit()`` (IRLS, the default options, any ``cov_type``) gives what
    statsmodels gives, to rounding (tested against it).
    """
    return _fast_glm_class()(endog, exog, family=family, offset=offset)


def _solve(wexog: np.ndarray, wendog: np.ndarray) -> tuple[np.ndarray, Any, np.ndarray] | None:
    """Least-squares solution of ``wexog @ x = wendog``, the Cholesky factor and scale; None when unsafe."""
    gram = wexog.T @ wexog
    scale = np.sqrt(np.diag(gram))
    if not (np.all(np.isfinite(gram)) and np.all(scale > 0)):
        return None
    try:
        factor = linalg.cho_factor(gram / scale[:, None] / scale[None, :], lower=False, check_finite=False)
    except linalg.LinAlgError:
        return None
    # the reciprocal condition number of the scaled normal equations (LAPACK's estimate from the factor)
    rcond, info = linalg.lapack.dpocon(factor[0], np.linalg.norm(gram / scale[:, None] / scale[None, :], 1))
    if info != 0 or not rcond > _MIN_RCOND:
        return None
    x = linalg.cho_solve(factor, (wexog.T @ wendog) / scale, check_finite=False) / scale
    x = x + linalg.cho_solve(factor, (wexog.T @ (wendog - wexog @ x)) / scale, check_finite=False) / scale
    return x, factor, scale


@functools.lru_cache(maxsize=1)
def _fast_glm_class() -> type:
    from statsmodels.genmod import generalized_linear_model as glm_module
    from statsmodels.regression import _tools as reg_tools
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

    class FastIRLSGLM(glm_module.GLM):
        """GLM whose IRLS solves each weighted least-squares step by the scaled normal equations."""

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
                wls_results = wls_mod.results(params)
                lin_pred = np.dot(exog, wls_results.params)
                lin_pred += self._offset_exposure
                mu = self.family.fitted(lin_pred)
                history = self._update_history(wls_results, mu, history)
                self.scale = self.estimate_scale(mu)
                if endog.squeeze().ndim == 1 and np.allclose(mu - endog, 0):
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
