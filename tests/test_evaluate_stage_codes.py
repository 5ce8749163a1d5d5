"""The evaluation's detected patrol areas reuse the hotspots stage's point codes only for the same points."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pandas as pd

from hotspots.detect._points import PointCodes
from hotspots.detect.results import Inputs
from hotspots.harm import load_harm_weights
from hotspots.stages._evaluate_config import _with_stage_codes


def _inputs(seed=0, n=300):
    rng = np.random.default_rng(seed)
    points = pd.DataFrame({
        "x": rng.uniform(0, 1000, n), "y": rng.uniform(0, 1000, n),
        "month": rng.choice(["2024-01", "2024-02", "2025-01"], n),
        "crime_type": rng.choice(["Anti-social behaviour", "Burglary", "Violence and sexual offences"], n),
        "location": rng.choice(["On or near High Street", "On or near Park", "On or near Mill Lane"], n),
    })
    return Inputs(points=points, current=("2025-01",), comparison=("2024-01",), change_current=("2025-01",),
                  months_all=("2024-01", "2024-02", "2025-01"), months_present=("2024-01", "2024-02", "2025-01"),
                  county=None, districts=[], wards=None, town_centres=None,
                  selections={"All crime": ("Burglary",)}, harm_weights=load_harm_weights())


def _same_codes(a: PointCodes, b: PointCodes) -> None:
    for field in dataclasses.fields(PointCodes):
        np.testing.assert_array_equal(getattr(a, field.name), getattr(b, field.name), err_msg=field.name)


def test_same_points_reuse_the_stage_codes():
    stage = _inputs()
    stage.codes  # noqa: B018 -- built by the stage
    ctx = SimpleNamespace(results={"hotspots": {"inputs": stage}})
    mine = _inputs()  # the evaluation's own build from the same context: equal points, new frames
    out = _with_stage_codes(ctx, mine)
    assert out._codes is stage._codes
    _same_codes(out.codes, PointCodes.of(mine.points, mine.harm_weights))  # what it would have built
    assert dataclasses.replace(out, _codes=None) == mine


def test_other_points_or_no_stage_build_their_own():
    stage = _inputs()
    stage.codes  # noqa: B018
    for ctx in (SimpleNamespace(results={}), SimpleNamespace(results={"hotspots": {"inputs": _inputs()}}),
                SimpleNamespace(results={"hotspots": {"inputs": stage}})):
        mine = _inputs(seed=1) if ctx.results.get("hotspots", {}).get("inputs") is stage else _inputs()
        out = _with_stage_codes(ctx, mine)
        assert out is mine and out._codes is None
        _same_codes(out.codes, PointCodes.of(mine.points, mine.harm_weights))
    changed = _inputs()
    changed.points.loc[5, "crime_type"] = "Burglary" if changed.points.loc[5, "crime_type"] != "Burglary" else "Violence and sexual offences"
    assert _with_stage_codes(SimpleNamespace(results={"hotspots": {"inputs": stage}}), changed)._codes is None
    other_harm = _inputs()
    other_harm = dataclasses.replace(other_harm, harm_weights=other_harm.harm_weights * 2)
    assert _with_stage_codes(SimpleNamespace(results={"hotspots": {"inputs": stage}}), other_harm)._codes is None
