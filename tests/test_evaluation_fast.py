"""The evaluation's shortcuts give what the plain pandas code gives."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hotspots.evaluation.areas import _positions_of


def test_positions_of_is_series_map():
    positions = {"2025-01": 0, "2025-02": 1, "E07": 2}
    for values in (pd.Series(["2025-02", "2025-01", "2024-12", None, "2025-02"], dtype="str"),
                   pd.Series(["2025-02", "x", None, "E07"], dtype=object),
                   np.array(["", "E07", "E07", "Z"], dtype=object), pd.Series([], dtype="str")):
        got = _positions_of(values, positions)
        ref = pd.Series(values, dtype=object).map(positions)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, ref.fillna(-1).to_numpy().astype(np.int64))


def test_area_map_labels_placed_without_a_full_draw(monkeypatch):
    """The map laid out by ``draw_without_rendering`` (for the label placement) is the map a full draw gave, pixel for pixel."""
    from matplotlib.figure import Figure

    from hotspots.evaluation._analysis import _evaluate_areas
    from hotspots.evaluation.areas import TreatedAreas
    from hotspots.geo.aggregate import Period
    from hotspots.months import month_range
    from hotspots.render.evaluation_report import area_map
    from tests.test_evaluate import AFTER, BEFORE, GROUPS, MONTHS, _districts, _treated, synthetic_points

    districts, treated = _districts(), _treated()
    result = _evaluate_areas(
        synthetic_points(treated, districts), TreatedAreas(areas=treated, source="file", description="squares",
                                                           illustrative=False, selected_on_counts=False),
        districts, months_present=MONTHS, before=Period("b", tuple(BEFORE)), after=Period("a", tuple(AFTER)),
        crime_types=GROUPS, all_months=month_range("2023-01", "2025-04"))
    fast = area_map(result)
    monkeypatch.setattr(Figure, "draw_without_rendering", lambda self: self.canvas.draw())
    assert area_map(result) == fast
