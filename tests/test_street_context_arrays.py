"""``street_context`` by plain arrays against a verbatim copy of its pandas version, on synthetic inputs.

The inputs have ties in records (between names, points and tiers), a name at several points,
the same street name at points inside and outside patrol areas, kind-of-place names, records
without coordinates or a name, overlapping patrol areas, areas with no records, and maps with
no points or no names to label: the tables must match row for row, dtypes and index included.
"""

import numpy as np
import pandas as pd
import pytest
import shapely

from hotspots.detect import tables
from hotspots.detect._points import PointCodes


def _street_context_old(codes, rows: np.ndarray, area_geom, patrol_geoms, *, points_too: bool = True,
                   max_labels: int = tables.MAP_MAX_STREET_LABELS, near_m: float = tables.NEAR_PATROL_M
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Verbatim copy of ``street_context`` before the numpy rewrite (the reference)."""
    import shapely as _shapely

    empty_points = pd.DataFrame({"x": [], "y": [], "label": [], "count": []})
    empty_labels = pd.DataFrame({"x": [], "y": [], "label": [], "count": [], "in_patrol": [], "tier": []})
    if len(rows) == 0:
        return empty_points, empty_labels
    x, y, name = codes.x[rows], codes.y[rows], codes.name[rows]
    ok = np.isfinite(x) & np.isfinite(y) & (name >= 0)
    ok[ok] = _shapely.contains_xy(area_geom, x[ok], y[ok])
    if not ok.any():
        return empty_points, empty_labels
    pts = tables._point_counts(x[ok], y[ok], name[ok])
    pts["label"] = codes.names[pts["name"].to_numpy()]
    street = codes.is_street[pts["name"].to_numpy()]
    patrol = _shapely.union_all(list(patrol_geoms)) if len(patrol_geoms) else None
    px, py = pts["x"].to_numpy(), pts["y"].to_numpy()
    if patrol is not None:
        inside = _shapely.contains_xy(patrol, px, py)
        near = _shapely.contains_xy(_shapely.buffer(patrol, near_m), px, py)
    else:
        inside = near = np.zeros(len(pts), dtype=bool)
    pts["tier"] = np.where(inside, 2, np.where(near, 1, 0))
    # which patrol area holds each point inside one (the first that contains it)
    area_of = np.full(len(pts), -1, dtype=np.int64)
    for j, geom in enumerate(patrol_geoms):
        todo = inside & (area_of < 0)
        if todo.any():
            area_of[todo] = np.where(_shapely.contains_xy(geom, px[todo], py[todo]), j, -1)
    pts["area"] = area_of
    keep = street | inside
    # a street is labelled once (its records summed); each place ("Supermarket") at its own point
    key = np.where(street, pts["name"].to_numpy(), -1 - np.arange(len(pts)))
    cand = pts.assign(key=key)[keep]
    cand = cand.sort_values(["tier", "count"], ascending=[False, False], kind="stable")
    best = cand.drop_duplicates("key")  # the busiest point of each name, in the highest tier it reaches
    totals = cand.groupby("key")["count"].sum()
    labels = pd.DataFrame({"x": best["x"].to_numpy(), "y": best["y"].to_numpy(), "label": best["label"].to_numpy(),
                           "count": totals.reindex(best["key"]).to_numpy(), "in_patrol": best["tier"].to_numpy() == 2,
                           "tier": best["tier"].to_numpy(), "area": best["area"].to_numpy()})
    # inside patrol areas, each area's busiest name before any area's second: every area gets its name first
    labels = labels.sort_values(["area", "count"], ascending=[True, False], kind="stable")
    labels["turn"] = np.where(labels["tier"] == 2, labels.groupby("area").cumcount(), 0)
    labels = labels.sort_values(["tier", "turn", "count"], ascending=[False, True, False], kind="stable")
    labels = labels.drop(columns=["area", "turn"]).head(max_labels)
    points = pts[["x", "y", "label", "count"]] if points_too else empty_points
    return points.reset_index(drop=True), labels.reset_index(drop=True)


def _codes(seed: int, n: int) -> PointCodes:
    rng = np.random.default_rng(seed)
    # few distinct map points so that counts tie; some records share a point but not a name
    spots = rng.integers(0, 40, n)
    x = (spots % 8) * 250.0 + 100.0
    y = (spots // 8) * 250.0 + 100.0
    x[rng.random(n) < 0.03] = np.nan
    y[rng.random(n) < 0.03] = np.nan
    kinds = ["Road A", "Road B", "Road A", "Supermarket", "Parking Area", "Road C", "", None, "Road D"]
    location = [None if k is None else "On or near " + k for k in
                (kinds[(s + (i % 3 == 0) * rng.integers(0, 3)) % len(kinds)] for i, s in enumerate(spots))]
    pts = pd.DataFrame({"x": x, "y": y, "month": "2025-01", "crime_type": "Burglary", "location": location})
    return PointCodes.of(pts, pd.Series(dtype=float))


AREA = shapely.box(0, 0, 1500, 1300)
PATROLS = {
    "none": [],
    "one": [shapely.box(300, 300, 800, 800)],
    "overlapping": [shapely.box(300, 300, 800, 800), shapely.box(600, 100, 1100, 700), shapely.box(1200, 1000, 1300, 1100)],
    "empty area": [shapely.box(5000, 5000, 5100, 5100), shapely.box(0, 0, 600, 600)],
    "outside": [shapely.box(-900, -900, -800, -800)],
}


def _same(got, want):
    for a, b in zip(got, want):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        assert a.index.equals(b.index)
        assert list(a.dtypes) == list(b.dtypes)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("patrol", sorted(PATROLS))
@pytest.mark.parametrize("points_too", [True, False])
def test_street_context_matches_the_pandas_version(seed, patrol, points_too):
    codes = _codes(seed, 60 + 150 * seed)
    rows = np.arange(len(codes.x))
    for max_labels in (3, 900):
        want = _street_context_old(codes, rows, AREA, PATROLS[patrol], points_too=points_too, max_labels=max_labels)
        got = tables.street_context(codes, rows, AREA, PATROLS[patrol], points_too=points_too, max_labels=max_labels)
        _same(got, want)
    assert len(want[1]) > 0


def test_street_context_edge_cases_match_the_pandas_version():
    codes = _codes(5, 300)
    patrols = PATROLS["overlapping"]
    n = len(codes.x)
    kind_only = np.flatnonzero(~codes.is_street[np.maximum(codes.name, 0)] & (codes.name >= 0))
    cases = {
        "no rows": np.arange(0),
        "no coordinates": np.flatnonzero(~np.isfinite(codes.x)),
        "none in the area": np.flatnonzero(codes.x > 1500),
        "some in the area": np.flatnonzero(~np.isfinite(codes.x) | (codes.x > 1000)),
        "one record": np.arange(1),
        "reversed": np.arange(n)[::-1],
        "repeated rows": np.r_[np.arange(n), np.arange(0, n, 3)],
        "kinds of place only": kind_only,
    }
    for case, rows in cases.items():
        for geoms in (patrols, [], [shapely.box(-10, -10, 5000, 5000)]):
            _same(tables.street_context(codes, rows, AREA, geoms), _street_context_old(codes, rows, AREA, geoms))
        assert len(rows) or case == "no rows"
    # no names to label (only kinds of place, none inside a patrol area): an empty labels table
    got = tables.street_context(codes, kind_only, AREA, [])
    assert len(got[0]) and not len(got[1])
