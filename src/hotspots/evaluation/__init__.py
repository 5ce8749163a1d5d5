"""Before/after evaluation of place-based patrols: did crime fall, relative to a comparison, and did it move?

The verb is :func:`evaluate_areas` (points + treated polygons + before/after
periods in, an :class:`EvaluationResult` of plain tables and sentences out).
Nothing here knows the pipeline: the ``evaluate`` stage
(:mod:`hotspots.stages.evaluate`) reads the config, picks the treated areas,
writes the files and renders the report.

Contents
--------
evaluate       :func:`evaluate_areas`, the notebook verb
_analysis      the evaluation itself (counts per unit and month, every statistic)
areas          treated areas (:class:`TreatedAreas`, illustrative patrol areas, town centres), buffers, matching pool
hotspot_areas  the hotspot detection's patrol areas (same ids and names as the maps) as treated areas
inference      placebo-in-space calibrated DiD (one inverted rank test), quasi-Poisson DiD, ring counts for buffers
synth          synthetic control with placebo-in-space p (robustness)
tables         output columns (a contract) and :class:`EvaluationResult`
verdict        verdicts and plain-English sentences (:func:`classify_change`, :func:`describe_change`, ...)
did            rate-ratio difference-in-differences (:func:`did_rate_ratio`, :func:`harm_did`)
displacement   :func:`wdq`, :func:`total_net_effect`, :func:`wdd` (Bowers & Johnson 2003; Wheeler & Ratcliffe 2018)
panel          Poisson / negative-binomial fixed-effects panel, wild cluster bootstrap p, pre-trend check (statsmodels, lazily)
rtm            regression-to-the-mean check
cost           crimes prevented and cost per crime prevented
synthetic      a reproducible synthetic panel with a known effect
"""

from hotspots.evaluation._analysis import CONTROL_LABELS, CONTROLS
from hotspots.evaluation.areas import (
    TreatedAreas,
    as_treated_areas,
    illustrative_patrol_areas,
    make_buffers,
    named_town_centres,
    patrol_area_treatment,
    town_centre_treatment,
)
from hotspots.evaluation.cost import (
    CostPerCrime,
    CrimesPrevented,
    cost_per_crime_prevented,
    crimes_prevented_from_irr,
)
from hotspots.evaluation.did import did_rate_ratio, harm_did
from hotspots.evaluation.displacement import (
    TotalNetEffect,
    WDDResult,
    WDQResult,
    total_net_effect,
    wdd,
    wdq,
)
from hotspots.evaluation.evaluate import evaluate_areas
from hotspots.evaluation.inference import PlaceboResult, QuasiPoissonDiD, placebo_did, quasi_poisson_did
from hotspots.evaluation.panel import (
    PanelEffect,
    PreTrendCheck,
    panel_effect,
    pre_trend_check,
)
from hotspots.evaluation.rtm import RTMCheck, rtm_check
from hotspots.evaluation.synthetic import synthetic_evaluation_data
from hotspots.evaluation.tables import EvaluationResult
from hotspots.evaluation.verdict import (
    DECISION_TABLE,
    Decision,
    classify_change,
    decide,
    describe_change,
    describe_displacement,
    overall_verdict,
)

__all__ = [
    "CONTROLS",
    "CONTROL_LABELS",
    "CostPerCrime",
    "DECISION_TABLE",
    "Decision",
    "CrimesPrevented",
    "EvaluationResult",
    "PanelEffect",
    "PlaceboResult",
    "PreTrendCheck",
    "QuasiPoissonDiD",
    "RTMCheck",
    "TotalNetEffect",
    "TreatedAreas",
    "WDDResult",
    "WDQResult",
    "as_treated_areas",
    "classify_change",
    "cost_per_crime_prevented",
    "crimes_prevented_from_irr",
    "decide",
    "describe_change",
    "describe_displacement",
    "did_rate_ratio",
    "evaluate_areas",
    "harm_did",
    "illustrative_patrol_areas",
    "make_buffers",
    "named_town_centres",
    "overall_verdict",
    "panel_effect",
    "patrol_area_treatment",
    "placebo_did",
    "pre_trend_check",
    "quasi_poisson_did",
    "rtm_check",
    "synthetic_evaluation_data",
    "total_net_effect",
    "town_centre_treatment",
    "wdd",
    "wdq",
]
