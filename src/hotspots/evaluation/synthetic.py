"""A reproducible synthetic monthly panel with a known patrol effect (for tests and examples)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from hotspots.evaluation._checks import _check_positive_number, _Problems, _short
from hotspots.months import MONTH_RE

__all__ = ["SYNTHETIC_COLUMNS", "synthetic_evaluation_data"]

#: Columns of :func:`synthetic_evaluation_data`, in order.
SYNTHETIC_COLUMNS = ["area", "role", "month", "post", "treated", "count"]


def synthetic_evaluation_data(
    *,
    n_treated: int = 26,
    n_control: int | None = None,
    months_before: int = 12,
    months_after: int = 12,
    effect: float = -0.30,
    recording_rise: float = 0.10,
    displacement: float = 0.0,
    base_rate: float = 20.0,
    overdispersion: float = 0.0,
    intervention_month: str = "2024-07",
    seed: int = 0,
) -> pd.DataFrame:
    """Reproducible synthetic monthly panel with a known patrol effect.

    Each area's expected monthly count is
    ``base_rate * area_level * season(month) * recording * treatment * displacement``:

    - ``area_level`` ~ Gamma(shape 4, mean 1): stable differences between areas;
    - ``season`` = 1 + 0.15 cos(2 pi (month - 7) / 12), shared by all areas;
    - ``recording`` = 1 before and ``1 + recording_rise`` after, in every area
      (the county-wide recording improvement);
    - ``treatment`` = ``1 + effect`` in treated areas after the start;
    - ``displacement`` = ``1 + displacement`` in buffer areas after the start.

    Counts are Poisson (gamma-Poisson with variance ``mu + overdispersion *
    mu^2`` when ``overdispersion > 0``).  The true IRR of treated vs control is
    ``1 + effect``; the raw treated before/after ratio is
    ``(1 + effect)(1 + recording_rise)``.

    Parameters
    ----------
    n_treated : int, default 26
        Treated areas; there is one buffer area per treated area.
    n_control : int, optional
        Control areas; ``None`` = same as ``n_treated``.
    months_before, months_after : int, default 12
        Months before and from ``intervention_month``.
    effect, recording_rise, displacement : float
        Proportional changes (> -1), see above.
    base_rate : float, default 20.0
        Mean monthly count per area before the start.
    overdispersion : float, default 0.0
        NB2 alpha of month-to-month extra-Poisson variation (0 = Poisson).
    intervention_month : str, default "2024-07"
        First after month, 'YYYY-MM' .
    seed : int, default 0
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SYNTHETIC_COLUMNS`: ``area`` ("T01", "B01", "C01", ...),
        ``role`` ("treated", "buffer", "control"), ``month`` ('YYYY-MM'),
        ``post`` (bool), ``treated`` (bool), ``count`` (int64).

    Examples
    --------
    >>> data = synthetic_evaluation_data(n_treated=3, months_before=2, months_after=2, seed=0)
    >>> data.shape
    (36, 6)
    >>> data["month"].unique().tolist()
    ['2024-05', '2024-06', '2024-07', '2024-08']
    """
    problems = _Problems("synthetic_evaluation_data")

    def whole(name: str, value: Any, minimum: int) -> None:
        if (not isinstance(value, (int, np.integer)) or isinstance(value, bool)
                or value < minimum):
            problems.add(f"{name}={_short(value)} is not a whole number >= {minimum}",
                         f"pass an integer >= {minimum} for {name}")

    whole("n_treated", n_treated, 1)
    if n_control is not None:
        whole("n_control", n_control, 1)
    whole("months_before", months_before, 1)
    whole("months_after", months_after, 1)
    whole("seed", seed, 0)
    for name, value in (("effect", effect), ("recording_rise", recording_rise),
                        ("displacement", displacement)):
        ok = (isinstance(value, (int, float, np.integer, np.floating))
              and not isinstance(value, bool) and math.isfinite(value) and value > -1)
        if not ok:
            problems.add(f"{name}={_short(value)} must be a proportional change > -1",
                         f"e.g. {name}=-0.30 for a 30% fall, 0.10 for a 10% rise")
    _check_positive_number("base_rate", base_rate, problems)
    _check_positive_number("overdispersion", overdispersion, problems, allow_zero=True)
    start = None
    if isinstance(intervention_month, str) and MONTH_RE.match(intervention_month):
        start = pd.Period(intervention_month, freq="M")
    else:
        problems.add(f"intervention_month={_short(intervention_month)} is not a month",
                     "use 'YYYY-MM', e.g. intervention_month='2024-07'")
    problems.raise_if_any()

    n_control = n_treated if n_control is None else int(n_control)
    # one random stream per role and phase, so that changing e.g. `displacement`
    # changes only the buffers' after-period counts and the rest stays identical
    level_rng, *phase_rngs = (np.random.default_rng(child)
                              for child in np.random.SeedSequence(seed).spawn(7))
    months = pd.period_range(start - months_before, periods=months_before + months_after,
                             freq="M")
    post = np.arange(months.size) >= months_before
    season = 1 + 0.15 * np.cos(2 * np.pi * (months.month.to_numpy() - 7) / 12)

    width = len(str(max(n_treated, n_control)))
    roles = (["treated"] * n_treated + ["buffer"] * n_treated + ["control"] * n_control)
    prefix = {"treated": "T", "buffer": "B", "control": "C"}
    areas, counter = [], {"treated": 0, "buffer": 0, "control": 0}
    for role in roles:
        counter[role] += 1
        areas.append(f"{prefix[role]}{counter[role]:0{width}d}")
    role_arr = np.array(roles)
    level_by_area = level_rng.gamma(shape=4.0, scale=0.25, size=role_arr.size)

    mean = base_rate * level_by_area[:, None] * season[None, :]
    mean = mean * np.where(post, 1 + recording_rise, 1.0)[None, :]
    mean = mean * np.where((role_arr == "treated")[:, None] & post[None, :], 1 + effect, 1.0)
    mean = mean * np.where((role_arr == "buffer")[:, None] & post[None, :], 1 + displacement, 1.0)
    counts = np.empty(mean.shape, dtype="int64")
    phases = [(role, phase) for role in ("treated", "buffer", "control")
              for phase in (False, True)]
    for (role, phase), rng in zip(phases, phase_rngs):
        cells = np.ix_(role_arr == role, post == phase)
        cell_mean = mean[cells]
        if overdispersion > 0:
            cell_mean = cell_mean * rng.gamma(shape=1 / overdispersion, scale=overdispersion,
                                              size=cell_mean.shape)
        counts[cells] = rng.poisson(cell_mean)

    n_areas, n_months = mean.shape
    return pd.DataFrame({
        "area": np.repeat(areas, n_months),
        "role": np.repeat(role_arr, n_months),
        "month": np.tile(months.strftime("%Y-%m"), n_areas),
        "post": np.tile(post, n_areas),
        "treated": np.repeat(role_arr == "treated", n_months),
        "count": counts.ravel().astype("int64"),
    })[SYNTHETIC_COLUMNS]
