"""The few ``scipy.stats`` distribution functions the package uses, without importing ``scipy.stats``.

Importing ``scipy.stats`` costs 0.4-0.75 s of CPU (its hundreds of
distributions are built at import), and a ``hotspots run`` imports it in the
main process and in every analysis worker, for a handful of ``ppf``, ``sf`` and
``cdf`` calls.  Each function here is the ``scipy.stats`` method of the same
name (``norm_ppf`` is ``scipy.stats.norm.ppf``, with ``loc=0, scale=1``) made
the way scipy (1.11-1.17) makes it: its generic ``rv_continuous`` /
``rv_discrete`` wrapper (argument check, support boundaries, NaN for bad
arguments, the kernel on the valid entries only, a 0-d result returned as a
numpy scalar) around the same ``scipy.special`` kernel that distribution's
``_cdf``/``_sf``/``_ppf``/``_isf`` calls.  The results are the same numbers and
types, bit for bit, edge cases included (tested against ``scipy.stats`` over
dense grids).  :func:`spearmanr` is ``scipy.stats.spearmanr`` for two 1-D
samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.special as sc
import scipy.special._ufuncs as scu  # scipy.stats' own private kernels (_beta_ppf, _binom_cdf, _binom_sf)

_BAD = np.nan  # rv_generic.badvalue


def _argsreduce(cond, *args):
    """``scipy.stats._distn_infrastructure.argsreduce``."""
    newargs = np.atleast_1d(*args)
    if not isinstance(newargs, (list, tuple)):
        newargs = (newargs,)
    if np.all(cond):
        *newargs, cond = np.broadcast_arrays(*newargs, cond)
        return [arg.ravel() for arg in newargs]
    s = cond.shape
    return [(arg if np.size(arg) == 1 else np.extract(cond, np.broadcast_to(arg, s))) for arg in newargs]


def _positive(*args):
    """``rv_generic._argcheck``: every shape parameter > 0 (1 when there are none)."""
    cond = 1
    for arg in args:
        cond = np.logical_and(cond, (np.asarray(arg) > 0))
    return cond


def _result(output):
    return output[()] if output.ndim == 0 else output


# --------------------------------------------------------------------------- rv_continuous (loc 0, scale 1)
def _c_cdf(kernel, support, argcheck, x, *args, upper=False):
    """``rv_continuous.cdf`` (``upper=False``) or ``.sf`` (``upper=True``)."""
    loc, scale = np.asarray(0), np.asarray(1)
    x = np.asarray(x)
    args = tuple(map(np.asarray, args))
    _a, _b = support(*args)
    dtyp = np.promote_types(x.dtype, np.float64)
    x = np.asarray((x - loc) / scale, dtype=dtyp)
    cond0 = argcheck(*args) & (scale > 0)
    with np.errstate(invalid="ignore"):
        cond1 = ((_a < x) & (x < _b)) & (scale > 0)
    cond2 = cond0 & (x <= _a) if upper else (x >= np.asarray(_b)) & cond0
    cond = cond0 & cond1
    output = np.zeros(np.shape(cond), dtyp)
    np.place(output, (1 - cond0) + np.isnan(x), _BAD)
    np.place(output, cond2, 1.0)
    if np.any(cond):
        goodargs = _argsreduce(cond, *((x,) + args))
        np.place(output, cond, kernel(*goodargs))
    return _result(output)


def _c_ppf(kernel, support, argcheck, q, *args, inverse_sf=False):
    """``rv_continuous.ppf`` (``inverse_sf=False``) or ``.isf`` (``inverse_sf=True``)."""
    q, loc, scale = np.asarray(q), np.asarray(0), np.asarray(1)
    args = tuple(map(np.asarray, args))
    _a, _b = support(*args)
    cond0 = argcheck(*args) & (scale > 0)  # (& loc == loc: loc is 0)
    cond1 = (0 < q) & (q < 1)
    cond2 = cond0 & (q == (1 if inverse_sf else 0))
    cond3 = cond0 & (q == (0 if inverse_sf else 1))
    cond = cond0 & cond1
    output = np.full(np.shape(cond), fill_value=_BAD)
    lower_bound = _a * scale + loc
    upper_bound = _b * scale + loc
    np.place(output, cond2, _argsreduce(cond2, lower_bound)[0])
    np.place(output, cond3, _argsreduce(cond3, upper_bound)[0])
    if np.any(cond):
        goodargs = _argsreduce(cond, *((q,) + args + (scale, loc)))
        scale, loc, goodargs = goodargs[-2], goodargs[-1], goodargs[:-2]
        np.place(output, cond, kernel(*goodargs) * scale + loc)
    return _result(output)


def _real_line(*args):
    return -np.inf, np.inf


def _half_line(*args):
    return 0.0, np.inf


def _unit(*args):
    return 0.0, 1.0


def norm_cdf(x: Any) -> Any:
    """``scipy.stats.norm.cdf(x)``."""
    return _c_cdf(sc.ndtr, _real_line, _positive, x)


def norm_sf(x: Any) -> Any:
    """``scipy.stats.norm.sf(x)``."""
    return _c_cdf(lambda v: sc.ndtr(-v), _real_line, _positive, x, upper=True)


def norm_ppf(q: Any) -> Any:
    """``scipy.stats.norm.ppf(q)``."""
    return _c_ppf(sc.ndtri, _real_line, _positive, q)


def norm_isf(q: Any) -> Any:
    """``scipy.stats.norm.isf(q)``."""
    return _c_ppf(lambda p: -sc.ndtri(p), _real_line, _positive, q, inverse_sf=True)


def t_sf(x: Any, df: Any) -> Any:
    """``scipy.stats.t.sf(x, df)``."""
    return _c_cdf(lambda v, d: sc.stdtr(d, -v), _real_line, _positive, x, df, upper=True)


def t_isf(q: Any, df: Any) -> Any:
    """``scipy.stats.t.isf(q, df)``."""
    return _c_ppf(lambda p, d: -sc.stdtrit(d, p), _real_line, _positive, q, df, inverse_sf=True)


def chi2_sf(x: Any, df: Any) -> Any:
    """``scipy.stats.chi2.sf(x, df)``."""
    return _c_cdf(lambda v, d: sc.chdtrc(d, v), _half_line, _positive, x, df, upper=True)


def chi2_ppf(q: Any, df: Any) -> Any:
    """``scipy.stats.chi2.ppf(q, df)``."""
    return _c_ppf(lambda p, d: 2 * sc.gammaincinv(d / 2, p), _half_line, _positive, q, df)


def beta_ppf(q: Any, a: Any, b: Any) -> Any:
    """``scipy.stats.beta.ppf(q, a, b)``."""
    return _c_ppf(scu._beta_ppf, _unit, _positive, q, a, b)


def beta_isf(q: Any, a: Any, b: Any) -> Any:
    """``scipy.stats.beta.isf(q, a, b)``."""
    return _c_ppf(lambda p, x, y: sc.betainccinv(x, y, p), _unit, _positive, q, a, b, inverse_sf=True)


# --------------------------------------------------------------------------- rv_discrete (loc 0)
def _d_pmf(kernel, support, argcheck, k, *args):
    """``rv_discrete.pmf``."""
    k, loc = np.asarray(k), np.asarray(0)
    args = tuple(map(np.asarray, args))
    _a, _b = support(*args)
    k = np.asarray(k - loc)
    cond0 = argcheck(*args)
    cond1 = (k >= _a) & (k <= _b)
    cond1 = cond1 & (np.floor(k) == k)  # rv_discrete._nonzero
    cond = cond0 & cond1
    output = np.zeros(np.shape(cond), "d")
    np.place(output, (1 - cond0) + np.isnan(k), _BAD)
    if np.any(cond):
        goodargs = _argsreduce(cond, *((k,) + args))
        np.place(output, cond, np.clip(kernel(*goodargs), 0, 1))
    return _result(output)


def _d_cdf(kernel, support, argcheck, k, *args):
    """``rv_discrete.cdf``."""
    k, loc = np.asarray(k), np.asarray(0)
    args = tuple(map(np.asarray, args))
    _a, _b = support(*args)
    k = np.asarray(k - loc)
    cond0 = argcheck(*args)
    cond1 = (k >= _a) & (k < _b)
    cond2 = (k >= _b)
    cond3 = np.isneginf(k)
    cond = cond0 & cond1 & np.isfinite(k)
    output = np.zeros(np.shape(cond), "d")
    np.place(output, cond2, 1.0)  # (cond2 * (cond0 == cond0): the same)
    np.place(output, cond3, 0.0)
    np.place(output, (1 - cond0) + np.isnan(k), _BAD)
    if np.any(cond):
        goodargs = _argsreduce(cond, *((k,) + args))
        np.place(output, cond, np.clip(kernel(*goodargs), 0, 1))
    return _result(output)


def _d_sf(kernel, support, argcheck, k, *args):
    """``rv_discrete.sf``."""
    k, loc = np.asarray(k), np.asarray(0)
    args = tuple(map(np.asarray, args))
    _a, _b = support(*args)
    k = np.asarray(k - loc)
    cond0 = argcheck(*args)
    cond1 = (k >= _a) & (k < _b)
    cond2 = ((k < _a) | np.isneginf(k)) & cond0
    cond = cond0 & cond1 & np.isfinite(k)
    output = np.zeros(np.shape(cond), "d")
    np.place(output, (1 - cond0) + np.isnan(k), _BAD)
    np.place(output, cond2, 1.0)
    if np.any(cond):
        goodargs = _argsreduce(cond, *((k,) + args))
        np.place(output, cond, np.clip(kernel(*goodargs), 0, 1))
    return _result(output)


def _d_ppf(kernel, support, argcheck, q, *args):
    """``rv_discrete.ppf``."""
    q, loc = np.asarray(q), np.asarray(0)
    args = tuple(map(np.asarray, args))
    _a, _b = support(*args)
    cond0 = argcheck(*args)  # (& loc == loc: loc is 0)
    cond1 = (q > 0) & (q < 1)
    cond2 = (q == 0) & cond0
    cond3 = (q == 1) & cond0
    cond = cond0 & cond1
    output = np.full(np.shape(cond), fill_value=_BAD, dtype="d")
    np.place(output, cond2, _argsreduce(cond2, _a - 1 + loc)[0])
    np.place(output, cond3, _argsreduce(cond3, _b + loc)[0])
    if np.any(cond):
        goodargs = _argsreduce(cond, *((q,) + args + (loc,)))
        loc, goodargs = goodargs[-1], goodargs[:-1]
        np.place(output, cond, kernel(*goodargs) + loc)
    return _result(output)


def _poisson_support(mu):
    return 0, np.inf


def _poisson_argcheck(mu):
    return mu >= 0


def _poisson_pmf(k, mu):
    return np.exp(sc.xlogy(k, mu) - sc.gammaln(k + 1) - mu)


def _poisson_ppf(q, mu):
    vals = np.ceil(sc.pdtrik(q, mu))
    vals1 = np.maximum(vals - 1, 0)
    temp = sc.pdtr(vals1, mu)
    return np.where(temp >= q, vals1, vals)


def poisson_pmf(k: Any, mu: Any) -> Any:
    """``scipy.stats.poisson.pmf(k, mu)``."""
    return _d_pmf(_poisson_pmf, _poisson_support, _poisson_argcheck, k, mu)


def poisson_cdf(k: Any, mu: Any) -> Any:
    """``scipy.stats.poisson.cdf(k, mu)``."""
    return _d_cdf(lambda x, m: sc.pdtr(np.floor(x), m), _poisson_support, _poisson_argcheck, k, mu)


def poisson_sf(k: Any, mu: Any) -> Any:
    """``scipy.stats.poisson.sf(k, mu)``."""
    return _d_sf(lambda x, m: sc.pdtrc(np.floor(x), m), _poisson_support, _poisson_argcheck, k, mu)


def poisson_ppf(q: Any, mu: Any) -> Any:
    """``scipy.stats.poisson.ppf(q, mu)``."""
    return _d_ppf(_poisson_ppf, _poisson_support, _poisson_argcheck, q, mu)


def _binom_support(n, p):
    return 0, n


def _binom_argcheck(n, p):
    return (n >= 0) & (n == np.round(n)) & (p >= 0) & (p <= 1)


def binom_cdf(k: Any, n: Any, p: Any) -> Any:
    """``scipy.stats.binom.cdf(k, n, p)``."""
    return _d_cdf(lambda x, m, pr: scu._binom_cdf(np.floor(x), m, pr), _binom_support, _binom_argcheck, k, n, p)


def binom_sf(k: Any, n: Any, p: Any) -> Any:
    """``scipy.stats.binom.sf(k, n, p)``."""
    return _d_sf(lambda x, m, pr: scu._binom_sf(np.floor(x), m, pr), _binom_support, _binom_argcheck, k, n, p)


# --------------------------------------------------------------------------- Spearman's rho
def _rank_average(x: np.ndarray) -> np.ndarray:
    """``scipy.stats.rankdata(x)`` of a 1-D array without NaN: ties get the average of their ranks."""
    n = x.shape[-1]
    j = np.argsort(x, axis=-1, kind="stable")
    ordinal = np.arange(1, n + 1, dtype=np.float64)
    y = x[j]
    first = np.concatenate([np.ones(1, dtype=bool), y[:-1] != y[1:]])
    indices = np.arange(n)[first]
    counts = np.diff(indices, append=np.asarray([n], dtype=indices.dtype))
    ranks = np.repeat(ordinal[first] + (counts.astype(np.float64) - 1) / 2, counts)
    out = np.empty_like(ranks)
    out[j] = ranks  # (the ranks are half-integers, exact: any order of filling them in gives the same numbers)
    return out


def spearmanr(x: Any, y: Any) -> tuple[float, float]:
    """``scipy.stats.spearmanr(x, y)`` of two 1-D samples: ``(statistic, pvalue)`` as numpy floats.

    NaN in either sample, fewer than two observations or a constant sample give ``(nan, nan)``, as scipy
    does (without its warning).
    """
    a = np.column_stack((np.asarray(x), np.asarray(y)))
    n_obs = a.shape[0]
    if n_obs <= 1 or (a[:, 0][0] == a[:, 0]).all() or (a[:, 1][0] == a[:, 1]).all():
        return np.nan, np.nan
    if a.dtype.kind in "fc" and np.isnan(a).any():
        return np.nan, np.nan
    a_ranked = np.apply_along_axis(_rank_average, 0, a)
    rs = np.corrcoef(a_ranked, rowvar=0)
    dof = n_obs - 2
    with np.errstate(divide="ignore"):
        t = rs * np.sqrt((dof / ((rs + 1.0) * (1.0 - rs))).clip(0))
    prob = 2 * sc.stdtr(dof, -np.abs(t))
    return rs[1, 0], prob[1, 0]
