"""Rate-ratio difference-in-differences for before/after counts (vectorised, one row per area).

Notation (as in ``methods.md``): **R** = treated (response) area, **C** =
control (comparison) area; suffix *b* / *a* = before / after.  Before and
after periods should be seasonally matched (same calendar months) and of
equal length.

Why a comparison is always needed: recorded crime changes force-wide for
reasons unrelated to any patrol (for example improving crime recording), so
a raw before/after change in the treated areas mixes the patrol effect with
the recording change.  Every estimate here is relative to a comparison that
shares the recording change.

References
----------
.. [4] Rothman, K. J., Greenland, S. & Lash, T. L. (2008). *Modern Epidemiology*,
   3rd ed., ch. 14 (Wald interval for a ratio of Poisson rates).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from hotspots.evaluation._checks import (
    _check_level,
    _count_array,
    _Problems,
    _shared_index,
    _short,
    _two_sided_p,
    _z_crit,
)

__all__ = ["DID_COLUMNS", "SMALL_COUNT", "did_rate_ratio", "harm_did"]

#: Columns of :func:`did_rate_ratio`, in order.
DID_COLUMNS = [
    "r_before", "r_after", "c_before", "c_after",
    "irr", "irr_low", "irr_high",
    "log_irr", "se_log_irr", "z", "p_value",
    "pct_change_vs_control", "pct_low", "pct_high",
    "level", "zero_correction", "note",
]


#: Counts below this make the normal approximation of a log rate ratio rough.
SMALL_COUNT = 5


def did_rate_ratio(
    r_before: Any,
    r_after: Any,
    c_before: Any,
    c_after: Any,
    *,
    level: float = 0.95,
    zero_correction: float | None = None,
) -> pd.DataFrame:
    """Rate-ratio difference-in-differences: treated change relative to control.

    ``IRR = (Ra / Rb) / (Ca / Cb)``; ``SE(log IRR) = sqrt(1/Ra + 1/Rb + 1/Ca + 1/Cb)``
    (Wald, Poisson counts [4]_).  ``IRR < 1`` means crime in the treated area fell
    relative to the control; ``pct_change_vs_control = 100 * (IRR - 1)``.

    Vectorised: scalars give one row, equal-length arrays (one entry per area)
    give one row per area.  pandas Series inputs keep their index.

    Parameters
    ----------
    r_before, r_after : int or array_like of int
        Recorded crimes in the treated area(s), before and after.
    c_before, c_after : int or array_like of int
        Recorded crimes in the control area(s), same periods.
    level : float, default 0.95
        Confidence level of the interval (two-sided).
    zero_correction : {None, 0.5}, default None
        What to do with rows containing a zero count.  ``None``: report NaN and
        say why in ``note`` (the log ratio is undefined).  ``0.5``: add 0.5 to
        all four counts of those rows only (Haldane-Anscombe), which biases the
        IRR towards 1; the row's ``zero_correction`` column records it.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`DID_COLUMNS`: the four counts as given; ``irr``,
        ``irr_low``, ``irr_high``; ``log_irr``, ``se_log_irr``; ``z`` and
        two-sided ``p_value`` for IRR = 1; ``pct_change_vs_control`` with
        ``pct_low`` / ``pct_high``; ``level``; ``zero_correction`` (0 or 0.5
        added to this row); ``note`` ("" when nothing to say).

    Notes
    -----
    The interval assumes the four counts are Poisson.  Counts pooled over many
    areas and months are usually overdispersed, which makes this interval too
    narrow; with a monthly per-area panel prefer :func:`panel_effect`
    (cluster-robust by area).  Use seasonally matched periods of equal length.

    References
    ----------
    .. [4] Rothman, Greenland & Lash (2008), *Modern Epidemiology*, 3rd ed., ch. 14.

    Examples
    --------
    Treated areas fell from 200 to 150 while recorded crime in the control rose
    from 1000 to 1100 (the recording change):

    >>> out = did_rate_ratio(200, 150, 1000, 1100)
    >>> print(f"{out.loc[0, 'irr']:.3f} {out.loc[0, 'pct_change_vs_control']:.1f}%")
    0.682 -31.8%
    >>> print(f"{out.loc[0, 'pct_low']:.1f}% to {out.loc[0, 'pct_high']:.1f}%")
    -45.7% to -14.3%
    >>> did_rate_ratio([10, 0], [5, 3], [100, 100], [110, 110])["note"].str[:22].tolist()
    ['', 'zero count in r_before']
    """
    problems = _Problems("did_rate_ratio")
    inputs = {"r_before": r_before, "r_after": r_after,
              "c_before": c_before, "c_after": c_after}
    index = _shared_index(inputs, problems)
    arrays = {name: _count_array(name, value, problems) for name, value in inputs.items()}
    _check_level(problems, "level", level)
    if zero_correction is not None and (
        isinstance(zero_correction, bool) or zero_correction != 0.5
    ):
        problems.add(
            f"zero_correction={_short(zero_correction)} is not supported",
            "use zero_correction=None (zero counts give NaN) or zero_correction=0.5",
        )
    if all(a is not None for a in arrays.values()):
        try:
            np.broadcast_shapes(*(a.shape for a in arrays.values()))
        except ValueError:
            shapes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
            problems.add(f"the counts have incompatible shapes ({shapes})",
                         "pass scalars or arrays of equal length (one entry per area)")
    problems.raise_if_any()

    rb, ra, cb, ca = (a.ravel() for a in np.broadcast_arrays(*arrays.values()))
    n = rb.size
    if index is not None and len(index) != n:
        index = None
    names = list(inputs)
    zero = np.column_stack([rb == 0, ra == 0, cb == 0, ca == 0])
    has_zero = zero.any(axis=1)
    correction = np.where(has_zero & (zero_correction is not None),
                          float(zero_correction or 0.0), 0.0)
    undefined = has_zero & (correction == 0.0)
    counts = [x + correction for x in (rb, ra, cb, ca)]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_irr = (np.log(counts[1]) - np.log(counts[0])
                   - np.log(counts[3]) + np.log(counts[2]))
        se = np.sqrt(sum(1.0 / x for x in counts))
    log_irr[undefined] = np.nan
    se[undefined] = np.nan
    zc = _z_crit(level)
    z = log_irr / se
    p = _two_sided_p(z)
    irr, low, high = np.exp(log_irr), np.exp(log_irr - zc * se), np.exp(log_irr + zc * se)

    notes = []
    smallest = np.min(np.column_stack([rb, ra, cb, ca]), axis=1)
    for i in range(n):
        parts = []
        zero_names = ", ".join(nm for nm, is_zero in zip(names, zero[i]) if is_zero)
        if undefined[i]:
            parts.append(
                f"zero count in {zero_names}: the rate ratio's log and standard error "
                "are undefined; pool more areas or months, or pass zero_correction=0.5"
            )
        elif correction[i]:
            parts.append(
                f"zero count in {zero_names}: 0.5 added to all four counts "
                "(Haldane-Anscombe); estimate biased towards 1, interval approximate"
            )
        if not undefined[i] and smallest[i] < SMALL_COUNT:
            parts.append(
                f"smallest count is {smallest[i]:g} (< {SMALL_COUNT}): the normal "
                "approximation behind the interval and p-value is rough"
            )
        notes.append("; ".join(parts))

    out = pd.DataFrame(
        {
            "r_before": rb, "r_after": ra, "c_before": cb, "c_after": ca,
            "irr": irr, "irr_low": low, "irr_high": high,
            "log_irr": log_irr, "se_log_irr": se, "z": z, "p_value": p,
            "pct_change_vs_control": 100.0 * (irr - 1.0),
            "pct_low": 100.0 * (low - 1.0), "pct_high": 100.0 * (high - 1.0),
            "level": float(level), "zero_correction": correction,
            "note": pd.Series(notes, dtype=object).to_numpy(),
        },
        index=index,
    )
    for col in ("r_before", "r_after", "c_before", "c_after"):
        out[col] = out[col].astype("int64")
    return out[DID_COLUMNS]


def harm_did(rb: float, ra: float, cb: float, ca: float, vrb: float, vra: float, vcb: float, vca: float,
             *, level: float = 0.95) -> dict[str, float]:
    """Harm-weighted rate-ratio DiD: ``(Ha/Hb) / (HCa/HCb)`` with a delta-method interval.

    ``H = sum_k w_k N_k`` is a weighted sum of Poisson counts, so
    ``Var(H) = sum_k w_k^2 N_k`` (estimated by ``v`` = that sum over the
    observed counts) and ``Var(log H) ~ v / H^2`` (delta method; as for
    directly standardised rates, Fay & Feuer 1997, *Stat. Med.* 16, 791-801).

    Parameters
    ----------
    rb, ra : float
        Harm in the treated areas before and after.
    cb, ca : float
        Harm in the control before and after.
    vrb, vra, vcb, vca : float
        Their variances (sums of squared weight times count).
    level : float, default 0.95
        Confidence level of the interval.

    Returns
    -------
    dict
        ``irr``, ``low`` and ``high`` (% change), ``pct``, ``z``, ``p``; all NaN
        when a total is zero.

    Examples
    --------

    >>> r = harm_did(2000, 1400, 20000, 22000, 2000 * 200, 1400 * 200, 20000 * 200, 22000 * 200)
    >>> round(r["pct"], 1), r["low"] < r["pct"] < r["high"]
    (-36.4, True)
    """
    nan = float("nan")
    out = {"irr": nan, "low": nan, "high": nan, "pct": nan, "z": nan, "p": nan}
    if min(rb, ra, cb, ca) <= 0:
        return out
    log_irr = math.log(ra / rb) - math.log(ca / cb)
    se = math.sqrt(vra / ra**2 + vrb / rb**2 + vca / ca**2 + vcb / cb**2)
    zc = _z_crit(level)  # norm.ppf(0.5 + level / 2)
    z = log_irr / se if se > 0 else nan
    irr = math.exp(log_irr)
    out.update(irr=irr, low=100 * (math.exp(log_irr - zc * se) - 1), high=100 * (math.exp(log_irr + zc * se) - 1),
               pct=100 * (irr - 1), z=z, p=float(_two_sided_p(z)) if se > 0 else nan)
    return out
