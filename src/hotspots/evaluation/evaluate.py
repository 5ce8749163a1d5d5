"""The notebook verb: :func:`evaluate_areas`, a before/after evaluation from plain data.

It accepts what a notebook user has to hand (a points table, a GeoDataFrame
of treated polygons, periods as ``"YYYY-MM..YYYY-MM"`` strings or lists of
months) and hands the evaluation proper to
:func:`hotspots.evaluation._analysis._evaluate_areas`, which the pipeline's
``evaluate`` stage calls directly with the objects it has already built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from hotspots._validate import _Problems
from hotspots.evaluation._analysis import CONTROLS, _evaluate_areas
from hotspots.evaluation.areas import TreatedAreas, as_treated_areas
from hotspots.evaluation.tables import EvaluationResult
from hotspots.geo.aggregate import Period
from hotspots.months import is_month, month_range
from hotspots.schema import BNG

__all__ = ["evaluate_areas"]

_PERIOD_HINT = 'Give a period as "YYYY-MM..YYYY-MM", one "YYYY-MM" or a list of "YYYY-MM" months.'


def _as_period(problems: _Problems, name: str, value: Any, present: Sequence[str]) -> Period | None:
    """``value`` as a :class:`Period` of the months present, or None (and a recorded problem)."""
    if isinstance(value, Period):
        return Period(value.label, tuple(m for m in value.months if m in set(present)))
    if isinstance(value, str):
        first, _, last = value.partition("..")
        last = last or first
        if not (is_month(first) and is_month(last)) or first > last:
            problems.add(f"{name}={value!r} is not a period of months", _PERIOD_HINT)
            return None
        return Period.from_range(first, last, present)
    if isinstance(value, Sequence) and value and all(is_month(m) for m in value):
        months = sorted(set(value))
        label = months[0] if len(months) == 1 else f"{months[0]}..{months[-1]}"
        return Period(label, tuple(m for m in months if m in set(present)))
    problems.add(f"{name}={value!r} is not a period of months", _PERIOD_HINT)
    return None


def _as_crime_types(value: Any, points: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    if value is None:
        types = tuple(sorted(points["crime_type"].astype(str).unique()))
        return {"All crime and ASB" if len(types) > 1 else (types[0] if types else "crime"): types}
    if isinstance(value, str):
        return {value: (value,)}
    if isinstance(value, Mapping):
        return {str(k): (v,) if isinstance(v, str) else tuple(v) for k, v in value.items()}
    return {str(v): (str(v),) for v in value}


def evaluate_areas(
    points: pd.DataFrame,
    treated: gpd.GeoDataFrame | TreatedAreas,
    *,
    before: str | Sequence[str] | Period,
    after: str | Sequence[str] | Period,
    study_area: gpd.GeoDataFrame | shapely.Geometry | None = None,
    districts: gpd.GeoDataFrame | None = None,
    crime_types: str | Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    buffer_m: float = 250.0,
    control: str = "rest_of_county",
    funding_gbp: float | None = None,
    months_present: Sequence[str] | None = None,
    harm_weights: pd.Series | None = None,
    pool_cell_m: float | None = None,
    selected_on_counts: bool | None = None,
) -> EvaluationResult:
    """Did crime fall in the treated areas, relative to a comparison, and did it move next door?

    A before/after evaluation of place-based patrols:
    rate-ratio difference-in-differences against a control (pooled and per
    area), a Poisson fixed-effects panel with a pre-trend check, displacement
    into a ring of ``buffer_m`` metres around each area (weighted displacement
    quotient, total net effect and the weighted displacement difference
    test), a harm-weighted change for crimes, a regression-to-the-mean check
    against equally high untreated places, and (with ``funding_gbp``) the
    cost per crime prevented.  Every effect is relative to the control,
    because recorded crime is rising county-wide as recording improves.

    Parameters
    ----------
    points : pandas.DataFrame
        One row per crime or ASB record: ``x``, ``y`` (EPSG:27700 metres),
        ``month`` (``"YYYY-MM"``) and ``crime_type``; a GeoDataFrame works too.
        Points outside the study area should be removed first.
    treated : geopandas.GeoDataFrame or TreatedAreas
        The treated (patrolled) polygons; ``area_code`` and ``area_name`` are
        optional (codes ``T01``... are generated).  Reprojected to EPSG:27700.
    before, after : str, list of str or Period
        The periods compared: ``"2024-01..2024-06"``, one month
        ``"2024-03"``, or a list of months.  Only months present in the data
        are used; ideally the same calendar months a year apart.
    study_area : GeoDataFrame or shapely geometry, optional
        The area the data cover (buffers and controls are clipped to it).
        Default: the union of ``districts``.  One of the two is required.
    districts : GeoDataFrame, optional
        District polygons (``area_code``, ``area_name``) that make up the
        study area; needed for ``control="rest_of_district"``.  Default: the
        study area as one district.
    crime_types : str, list of str or dict, optional
        What to count.  A dict maps a name to its police.uk types (e.g.
        ``{"ASB": ["Anti-social behaviour"]}``); a list evaluates each type on
        its own; the first entry is the headline.  Default: every type in
        ``points`` together.
    buffer_m : float, default 250.0
        Width of the displacement buffer around each area, in metres.
    control : {"rest_of_county", "rest_of_district", "matched"}
        The comparison: the rest of the study area, each area's own district,
        or untreated grid cells matched on before-period counts.
    funding_gbp : float, optional
        Annual cost of the patrols, pro-rated to the after period, for the
        cost per crime prevented.
    months_present : list of str, optional
        Months with data (default: the months in ``points``); missing months
        are gaps, never zeros.
    harm_weights : pandas.Series, optional
        Harm weight per police.uk type (default
        :func:`hotspots.harm.load_harm_weights`).
    pool_cell_m : float, optional
        Cell size for matched controls and the regression-to-the-mean pool
        (default: about the treated areas' median size).
    selected_on_counts : bool, optional
        Whether the areas were picked on their recent counts (then regression
        to the mean is expected); ``None`` = unknown.  Ignored when
        ``treated`` is a :class:`TreatedAreas`.

    Returns
    -------
    EvaluationResult
        ``summary`` (one row per crime type and measure), ``areas_table`` (per
        area), ``monthly`` (treated, buffer and control by month),
        ``geometries`` (areas, buffers, controls), ``findings`` (numbers and
        plain-English sentences per crime type), ``headline``, ``meta``, and
        ``auto``: the automatic choices made, name -> (value, reason).

    Notes
    -----
    The weighted displacement quotient and total net effect follow Bowers &
    Johnson (2003); the weighted displacement difference test follows Wheeler
    & Ratcliffe (2018) and, as that test requires, uses matched control cells
    of similar size.  Sentences never claim more than the interval supports:
    an interval including no change is "no detectable change", and a fall is
    only credited to the patrols when it survives the regression-to-the-mean,
    pre-trend and all-months checks.

    References
    ----------
    .. [1] Bowers, K. J. & Johnson, S. D. (2003). Measuring the geographical
       displacement and diffusion of benefit effects of crime prevention
       activity. *Journal of Quantitative Criminology* 19(3), 275-301.
    .. [2] Wheeler, A. P. & Ratcliffe, J. H. (2018). A simple weighted
       displacement difference test to evaluate place based crime
       interventions. *Crime Science* 7:11.

    Examples
    --------
    Six 500 m squares (not picked on their counts) in a 6 km study area, with
    a third fewer records in the squares after patrols started (synthetic data):

    >>> import numpy as np, geopandas as gpd
    >>> from shapely import box
    >>> rng = np.random.default_rng(1)
    >>> months = [f"2024-{m:02d}" for m in range(1, 7)]
    >>> squares = [box(1000 + 1500 * (i % 3), 1500 + 2000 * (i // 3), 1500 + 1500 * (i % 3), 2000 + 2000 * (i // 3))
    ...            for i in range(6)]
    >>> rows = []
    >>> for month in months:
    ...     after = month >= "2024-04"
    ...     n = rng.poisson(900)
    ...     rows.append(pd.DataFrame({"x": rng.uniform(0, 6000, n), "y": rng.uniform(0, 6000, n)}).assign(month=month))
    ...     for sq in squares:
    ...         x0, y0, x1, y1 = sq.bounds
    ...         k = rng.poisson(40 if after else 60)
    ...         rows.append(pd.DataFrame({"x": rng.uniform(x0, x1, k), "y": rng.uniform(y0, y1, k)}).assign(month=month))
    >>> points = pd.concat(rows, ignore_index=True).assign(crime_type="Anti-social behaviour")
    >>> result = evaluate_areas(points, gpd.GeoDataFrame(geometry=squares, crs="EPSG:27700"),
    ...                         before="2024-01..2024-03", after="2024-04..2024-06", study_area=box(0, 0, 6000, 6000),
    ...                         selected_on_counts=False)
    >>> result.findings[0]["effect_sentence"]
    'anti-social behaviour fell 30% (95% CI 9–47%) relative to the rest of the county'
    >>> result.findings[0]["overall_verdict"], sorted(result.auto)
    ('credible reduction', ['matched_controls', 'pool_cell_m'])
    """
    problems = _Problems("evaluate_areas")
    for name, value in (("points", points),):
        if not isinstance(value, pd.DataFrame):
            problems.add(f"{name} must be a DataFrame; got {type(value).__name__}",
                         "Pass the records as a DataFrame with x, y, month and crime_type.")
        else:
            missing = [c for c in ("x", "y", "month", "crime_type") if c not in value.columns]
            if missing:
                problems.add(f"{name} lacks column(s) {missing}", "Points need x, y (EPSG:27700), month and crime_type.")
    if not isinstance(treated, (gpd.GeoDataFrame, TreatedAreas)):
        problems.add(f"treated must be a GeoDataFrame of polygons; got {type(treated).__name__}",
                     "Read the treated areas with geopandas.read_file.")
    if study_area is None and districts is None:
        problems.add("give study_area or districts", "The study area bounds the buffers and the control.")
    if control not in CONTROLS:
        problems.add(f"control must be one of {list(CONTROLS)}; got {control!r}", f"Choose control from {list(CONTROLS)}.")
    problems.raise_if_any()
    present = sorted(set(months_present) if months_present is not None else set(points["month"].astype(str)))
    b = _as_period(problems, "before", before, present)
    a = _as_period(problems, "after", after, present)
    if b is not None and not b.months:
        problems.add(f"the before period {b.label} has no months in the data", _PERIOD_HINT)
    if a is not None and not a.months:
        problems.add(f"the after period {a.label} has no months in the data", _PERIOD_HINT)
    if b is not None and a is not None and b.months and a.months and b.months[-1] >= a.months[0]:
        problems.add(f"the before period {b.label} must end before the after period {a.label} starts",
                     "Swap or move the periods.")
    problems.raise_if_any()
    if not isinstance(treated, TreatedAreas):
        treated = as_treated_areas(treated, selected_on_counts=selected_on_counts)
    if districts is None:
        geom = study_area if isinstance(study_area, shapely.Geometry) else shapely.union_all(study_area.geometry.values)
        districts = gpd.GeoDataFrame({"area_code": ["study_area"], "area_name": ["study area"]}, geometry=[geom], crs=BNG)
    return _evaluate_areas(
        points, treated, districts, months_present=present, before=b, after=a,
        crime_types=_as_crime_types(crime_types, points), buffer_m=buffer_m, control=control,
        funding_gbp=funding_gbp, harm_weights=harm_weights, pool_cell_m=pool_cell_m,
        all_months=month_range(present[0], present[-1]), study_area=study_area,
    )
