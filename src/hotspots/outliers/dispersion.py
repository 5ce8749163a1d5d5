"""Overdispersion of z-scores: the winsorised phi, the chi-squared test and the additive tau2.

When areas are large, real differences between their rates exceed Poisson
chance and nearly every area falls outside plain funnel limits.
:func:`overdispersion` measures by how much (Spiegelhalter 2005), so that
:func:`hotspots.outliers.funnel.funnel_limits` can widen the limits.

References: Spiegelhalter (2005) "Handling over-dispersion of performance
indicators", Quality and Safety in Health Care 14:347-351; DerSimonian &
Laird (1986) "Meta-analysis in clinical trials", Controlled Clinical Trials
7:177-188.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

# scipy.stats' chi2, without importing scipy.stats
from hotspots._dist import chi2_ppf, chi2_sf
from hotspots._validate import _as_float, _first_bad, _is_real, _Problems

#: Significance level of the chi-squared test that decides whether the
#: overdispersion adjustment is applied (Spiegelhalter 2005, section 5).
OVERDISPERSION_TEST_LEVEL = 0.95

@dataclasses.dataclass(frozen=True)
class Overdispersion:
    """Result of :func:`overdispersion` (Spiegelhalter 2005, section 5).

    Attributes
    ----------
    phi : float
        Overdispersion factor: mean of the squared winsorised z-scores.
    n : int
        Number of units used (finite z-scores).
    statistic : float
        ``n * phi``, referred to chi-squared with ``n - 1`` degrees of freedom.
    df : int
        ``n - 1``.
    p_value : float
        Upper-tail chi-squared p-value of ``statistic``.
    critical_value : float
        ``chi2.ppf(0.95, n - 1)``.
    overdispersed : bool
        ``statistic > critical_value``: the adjustment is warranted.
    tau2 : float
        Additive random-effects variance on the indicator scale (NaN when no
        standard errors were given).
    winsor : float
        Fraction winsorised in each tail.
    z_lower, z_upper : float
        The winsorising limits (the ``winsor`` and ``1 - winsor`` quantiles).
    """

    phi: float
    n: int
    statistic: float
    df: int
    p_value: float
    critical_value: float
    overdispersed: bool
    tau2: float
    winsor: float
    z_lower: float
    z_upper: float

    def to_dict(self) -> dict[str, Any]:
        """Plain Python types, ready for JSON (run manifests) and ``DataFrame.attrs``."""
        return dataclasses.asdict(self)


def overdispersion(z: Any, *, winsor: float = 0.10, se: Any = None) -> Overdispersion:
    """Estimate overdispersion of z-scores (Spiegelhalter 2005).

    Parameters
    ----------
    z : array-like
        z-scores of the units under the null (e.g. from :func:`poisson_z`).
        NaN entries (units with no expected count) are skipped.
    winsor : float, default 0.10
        Fraction winsorised in each tail: z-scores below the ``winsor``
        quantile are set to it, those above the ``1 - winsor`` quantile are
        set to that (quantiles by linear interpolation, numpy's default and
        R's type 7, as in the NHS-R FunnelPlotR package).  0 disables it.
    se : array-like, optional
        Within-unit standard error of the indicator, one per z (for a
        standardised ratio O/E with target 1, ``sqrt(1 / E)``).  Needed for
        ``tau2``; without it ``tau2`` is NaN.

    Returns
    -------
    Overdispersion
        ``phi``, ``n``, the chi-squared test (``statistic``, ``p_value``,
        ``overdispersed``) and ``tau2``.  ``.to_dict()`` gives plain types.

    Notes
    -----
    Spiegelhalter (2005) "Handling over-dispersion of performance indicators",
    Quality and Safety in Health Care 14:347-351, and "Funnel plots for
    comparing institutional performance", Statistics in Medicine
    24:1185-1202:

    * ``phi = sum(zw**2) / n`` with ``zw`` the winsorised z-scores;
    * the units are overdispersed when ``n * phi`` exceeds the 95% point of
      chi-squared with ``n - 1`` degrees of freedom;
    * additive random effect (DerSimonian & Laird 1986 moment estimator):
      ``tau2 = max(0, (n * phi - (n - 1)) / (sum(w) - sum(w**2) / sum(w)))``
      with ``w = 1 / se**2``, on the scale of the indicator.

    Examples
    --------
    >>> z = [-3, -1, 0, 1, 2, 4, 0.5, -0.5, 1.5, -2]
    >>> od = overdispersion(z, se=[0.1] * 10)
    >>> round(od.phi, 4), od.overdispersed, round(od.tau2, 6)
    (2.2, True, 0.014444)
    """
    problems = _Problems("overdispersion")
    zz = _as_float(problems, "z", z)
    ss = None if se is None else _as_float(problems, "se", se)
    if not _is_real(winsor) or not (0 <= winsor < 0.5):
        problems.add(f"winsor must be a fraction in [0, 0.5); got {winsor!r}",
                     "Spiegelhalter (2005) uses winsor=0.10 (10% in each tail).")
    if zz is None or (se is not None and ss is None):
        problems.raise_if_any()
    zz = zz.ravel()
    if np.isinf(zz).any():
        problems.add(f"z has infinite values: {_first_bad(zz, np.isinf(zz))}",
                     "Units with zero expected count give NaN z, not inf: check how z was computed.")
    used = np.isfinite(zz)
    if ss is not None:
        ss = ss.ravel()
        if ss.shape != zz.shape:
            problems.add(f"se has {ss.size} values but z has {zz.size}", "Pass one standard error per z-score.")
        else:
            with np.errstate(invalid="ignore"):
                bad = used & ~(np.isfinite(ss) & (ss > 0))
            if bad.any():
                problems.add(f"se must be finite and > 0 where z is finite; it has {_first_bad(ss, bad)}",
                             "Standard errors come from the expected counts: se = sqrt(1 / E) for O/E.")
    if used.sum() < 2:
        problems.add(f"z needs at least 2 finite values; got {int(used.sum())}",
                     "Overdispersion compares units with each other: pass at least two units.")
    problems.raise_if_any()

    zf = zz[used]
    n = int(zf.size)
    z_lower, z_upper = np.quantile(zf, [winsor, 1.0 - winsor])
    zw = np.clip(zf, z_lower, z_upper)
    phi = float(np.sum(zw**2) / n)
    statistic = n * phi
    df = n - 1
    tau2 = math.nan
    if ss is not None:
        w = 1.0 / ss[used] ** 2
        tau2 = max(0.0, (statistic - df) / (w.sum() - (w**2).sum() / w.sum()))
    critical = float(chi2_ppf(OVERDISPERSION_TEST_LEVEL, df))
    return Overdispersion(
        phi=phi, n=n, statistic=float(statistic), df=df, p_value=float(chi2_sf(statistic, df)),
        critical_value=critical, overdispersed=bool(statistic > critical), tau2=float(tau2),
        winsor=float(winsor), z_lower=float(z_lower), z_upper=float(z_upper),
    )
