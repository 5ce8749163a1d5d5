"""``_glm._solve`` (the scaled normal equations made once) gives what it gave with them made twice, bit for bit."""

from __future__ import annotations

import numpy as np
from scipy import linalg

from hotspots.evaluation import _glm


def _old_solve(wexog, wendog):
    """``_solve`` as it was, verbatim (the scaled gram made for the factor and again for its norm)."""
    gram = wexog.T @ wexog
    scale = np.sqrt(np.diag(gram))
    if not (np.all(np.isfinite(gram)) and np.all(scale > 0)):
        return None
    try:
        factor = linalg.cho_factor(gram / scale[:, None] / scale[None, :], lower=False, check_finite=False)
    except linalg.LinAlgError:
        return None
    rcond, info = linalg.lapack.dpocon(factor[0], np.linalg.norm(gram / scale[:, None] / scale[None, :], 1))
    if info != 0 or not rcond > _glm._MIN_RCOND:
        return None
    x = linalg.cho_solve(factor, (wexog.T @ wendog) / scale, check_finite=False) / scale
    x = x + linalg.cho_solve(factor, (wexog.T @ (wendog - wexog @ x)) / scale, check_finite=False) / scale
    return x, factor, scale


def test_solve_is_the_old_solve():
    rng = np.random.default_rng(3)
    n, areas, periods = 600, 20, 30
    a, p = rng.integers(0, areas, n), rng.integers(0, periods, n)
    design = np.zeros((n, areas + periods))
    design[:, 0] = 1
    design[np.flatnonzero(a > 0), a[a > 0]] = 1
    design[np.flatnonzero(p > 0), areas - 1 + p[p > 0]] = 1
    design[:, -1] = rng.random(n) > 0.5
    collinear = design.copy()
    collinear[:, -1] = collinear[:, 1]  # singular: both give None
    for x in (design, collinear, np.zeros((n, 3))):
        w = np.sqrt(rng.gamma(2.0, 1.5, n))
        wexog, wendog = w[:, None] * x, w * rng.normal(1.0, 0.5, n)
        new, old = _glm._solve(wexog, wendog), _old_solve(wexog, wendog)
        assert (new is None) == (old is None)
        if new is not None:
            assert new[0].tobytes() == old[0].tobytes() and new[2].tobytes() == old[2].tobytes()
            assert new[1][0].tobytes() == old[1][0].tobytes() and new[1][1] == old[1][1]
    assert _glm._solve(w[:, None] * design, w) is not None  # (the full-rank case was solved)
