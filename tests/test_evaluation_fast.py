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
    """The map whose label places come from ``_fix_transform`` (no draw) is the map a full draw, or
    ``draw_without_rendering``, gave before the labels were placed, byte for byte; and the transform is the same."""
    from matplotlib.figure import Figure

    from hotspots.render import evaluation_report as er
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
    matrices = []
    fix = er._fix_transform

    def fix_and_compare(ax):
        fix(ax)
        fixed = ax.transData.get_matrix().copy()
        ax.figure.draw_without_rendering()
        matrices.append((fixed, ax.transData.get_matrix().copy()))

    monkeypatch.setattr(er, "_fix_transform", fix_and_compare)
    assert area_map(result) == fast
    assert len(matrices) == 1 and np.array_equal(*matrices[0])
    monkeypatch.setattr(er, "_fix_transform", lambda ax: ax.figure.draw_without_rendering())
    assert area_map(result) == fast
    monkeypatch.setattr(Figure, "draw_without_rendering", lambda self: self.canvas.draw())
    assert area_map(result) == fast


def test_normal_tails_are_scipys():
    """``_two_sided_p`` and ``_z_crit`` call scipy's special functions directly: the same numbers and types as ``stats.norm``."""
    from scipy import stats

    from hotspots.evaluation._checks import _two_sided_p, _z_crit

    rng = np.random.default_rng(0)
    for v in [0.0, -0.0, 1.5, -2.3, np.inf, -np.inf, np.nan, 3, -7, np.int64(4), np.float32(1.7), True, 40.0, 1e-300,
              np.uint8(200), np.float64(-1.96)]:
        got, ref = _two_sided_p(v), 2.0 * stats.norm.sf(np.abs(v))
        assert type(got) is type(ref) and np.array_equal(got, ref, equal_nan=True), v
    arr = rng.normal(0, 5, 20_000)
    arr[::97] = np.nan
    for x in (arr, arr.astype(np.float32), rng.integers(-50, 50, 1000), arr.reshape(100, 200), [1.0, -2.0], arr[:0],
              pd.Series(arr[:50])):
        got, ref = _two_sided_p(x), 2.0 * stats.norm.sf(np.abs(x))
        assert type(got) is type(ref) and got.dtype == ref.dtype and got.shape == ref.shape
        assert np.array_equal(got, ref, equal_nan=True)
    for level in (0.95, 0.9, 0.99, 0.5, 0.999999, 0.8, np.float64(0.95), 1, 0):
        assert _z_crit(level) == float(stats.norm.ppf(0.5 + level / 2))


def test_count_scalar_shortcut_is_the_array_check():
    from hotspots.evaluation._checks import _count_array, _count_scalar, _Problems

    def reference(value):
        problems = _Problems("t")
        arr = _count_array("n", value, problems)
        if arr is None or (arr.ndim != 0 and arr.size != 1):
            return None
        return int(arr.reshape(()))

    for value in [0, 1, 7, 2**53, 2**53 + 1, -1, 3.0, 3.5, -0.0, float("nan"), float("inf"), np.int64(12), np.int32(5),
                  np.float64(9.0), np.float64(9.25), True, np.uint8(4), "3", [4], np.array(6), 10**20]:
        got = _count_scalar("n", value, _Problems("t"))
        assert got == reference(value) and type(got) is type(reference(value)), value
