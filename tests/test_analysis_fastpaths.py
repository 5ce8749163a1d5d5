"""Fast paths of the per-area analysis (issue 18, second round) against the code they replace.

Each fast path is compared with its reference route on the real data (one district, every selection) and on
edge cases: the patrol areas described from the columns vs from the cells table, the class counts, lon/lat
without geopandas, the kept point lookups, the one-value text columns, the empty cluster tables, and the
area cache's group reading and column comparison.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest

from hotspots.detect import _area_cache as ac
from hotspots.detect import _area_steps as steps
from hotspots.detect._patrol_build import describe_patrol_areas
from hotspots.detect._points import PointCodes, _lonlat, _lonlat_reference
from hotspots.detect.analysis import _class_counts, _text_of, analyse_area
from hotspots.detect.results import SelectionResult


@pytest.fixture(scope="module")
def real(real_context):
    from hotspots.stages import hotspots as hs

    cfg = hs.hotspot_config(real_context.settings)
    inputs = hs.build_inputs(real_context, cfg)
    district = min(inputs.districts, key=lambda d: d.geometry.area)
    return inputs, cfg, district, analyse_area(inputs, district, cfg, patrol=True)


def _same_frame(a, b):
    assert type(a) is type(b)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert [str(t) for t in a.dtypes] == [str(t) for t in b.dtypes]


# --------------------------------------------------------------------------- patrol areas from the columns
def test_patrol_areas_from_the_columns_are_those_from_the_cells_table(real):
    inputs, cfg, district, result = real
    from hotspots.geo import grid as gridmod

    codes = inputs.codes
    grid = result.grid
    cell = gridmod.assign_to_cells(codes.x, codes.y, grid)
    checked = 0
    for sel, members in inputs.selections.items():
        got = result.selections[sel]
        cur = (cell >= 0) & codes.of_types(members) & codes.in_months(inputs.current)
        cells = got.cells.copy()
        cells["patrol_area_id"] = pd.array([""] * len(cells), dtype=cells["patrol_area_id"].dtype)
        ref = SelectionResult(cells=cells, clusters=got.clusters, cluster_shapes=got.cluster_shapes,
                              emerging=got.emerging, stability=got.stability)
        describe_patrol_areas(ref, inputs, grid, cell, cur, members, sel, district, cfg)  # the reference route
        assert ref.note == got.note
        _same_frame(ref.cells, got.cells)
        for field in ("patrol_areas", "patrol_counts", "patrol_hours"):
            u, v = getattr(ref, field), getattr(got, field)
            assert (u is None) == (v is None), field
            if u is not None:
                _same_frame(u, v)
        checked += got.patrol_areas is not None and len(got.patrol_areas) > 0
    assert checked  # some selection has patrol areas


def test_summary_class_counts_are_the_text_columns_counts(real):
    _, _, _, result = real
    for res in result.selections.values():
        cls, moran = res.cells["gi_class"], res.cells["moran_class"]
        assert res.summary["hot_99"] == int((cls == "hot_99").sum())
        assert res.summary["hot_90"] == int((cls == "hot_90").sum())
        assert res.summary["cold_cells"] == int(cls.str.startswith("cold").sum())
        assert res.summary["moran_hotspot_HH"] == int((moran == "hotspot_HH").sum())
        assert type(res.summary["cold_cells"]) is int


@pytest.mark.parametrize("values", [[], ["hot_99"], ["cold_95", "hot_99", "cold_99", "not_significant", "hot_99"]])
def test_class_counts_of_a_categorical(values):
    cat = pd.Series(pd.Categorical(values, categories=["hot_99", "cold_99", "cold_95", "not_significant", "hot_90"]))
    counts = _class_counts(cat)
    text = pd.Series(_text_of(cat))
    for label in cat.cat.categories:
        assert counts[label] == int((text == label).sum())


# --------------------------------------------------------------------------- lon/lat
def test_lonlat_is_the_geopandas_route_on_real_points(real):
    inputs, _, _, _ = real
    codes = inputs.codes
    rng = np.random.default_rng(3)
    pick = rng.choice(len(codes.x), 5000, replace=False)
    for x, y in ((codes.x[pick], codes.y[pick]), (np.round(codes.x[pick], 1), np.round(codes.y[pick], 1))):
        lon, lat = _lonlat(x, y)
        rlon, rlat = _lonlat_reference(x, y)
        assert lon.tobytes() == rlon.tobytes() and lat.tobytes() == rlat.tobytes()


@pytest.mark.parametrize("case", ["empty", "one", "int", "nan", "list"])
def test_lonlat_edge_cases_match_the_reference(case):
    x, y = {"empty": (np.array([]), np.array([])), "one": (np.array([530000.0]), np.array([210000.0])),
            "int": (np.array([530000, 531000]), np.array([210000, 211000])),
            "nan": (np.array([530000.0, np.nan]), np.array([210000.0, 211000.0])),
            "list": ([530000.0, 520000.5], [210000.0, 200000.25])}[case]
    got, ref = _lonlat(x, y), _lonlat_reference(x, y)
    for a, b in zip(got, ref):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


# --------------------------------------------------------------------------- kept lookups of the points
def test_point_lookups_kept_are_the_fresh_ones(real):
    inputs, _, _, _ = real
    codes = PointCodes.of(inputs.points, inputs.harm_weights)
    fresh = PointCodes.of(inputs.points, inputs.harm_weights)
    months = list(inputs.current)
    for _ in range(2):  # built, then kept
        a = codes.in_months(months)
        assert not a.flags.writeable
        np.testing.assert_array_equal(a, np.isin(np.asarray(inputs.points["month"], dtype=object), months))
        np.testing.assert_array_equal(codes.month_position(months), fresh.month_position(tuple(months)))
        for members in inputs.selections.values():
            np.testing.assert_array_equal(codes.of_types(members),
                                          np.isin(np.asarray(inputs.points["crime_type"], dtype=object), list(members)))
    # the same texts asked as different questions are kept apart
    assert codes.in_months(months).dtype == bool and codes.month_position(months).dtype == np.int64
    assert codes.in_months(months[:1]).sum() < codes.in_months(months).sum()
    with pytest.raises(ValueError):
        codes.in_months(months)[0] = True  # shared: read-only


# --------------------------------------------------------------------------- small tables
@pytest.mark.parametrize("n", [0, 1, 5])
def test_one_value_text_columns_are_what_a_scalar_gives(n):
    ref = pd.DataFrame({"a": "Watford", "b": np.arange(n)})
    got = pd.DataFrame({"a": steps._text("Watford", n), "b": np.arange(n)})
    _same_frame(got, ref)


@pytest.mark.parametrize("value", ["Watford", "", "St Albans \u00e9\u2013x", "E07000098"])
@pytest.mark.parametrize("n", [0, 1, 7, 40_000])
def test_text_from_buffers_is_the_reference_column(value, n):
    """_text lays out the Arrow buffers itself: the same dtype, Arrow type, chunks and values as the reference,
    and a column of it is independent of another (setting one leaves the other)."""
    import pyarrow as pa

    got, ref = steps._text(value, n), steps._text_reference(value, n)
    assert type(got) is type(ref) and got.dtype == ref.dtype
    assert got._pa_array.type == ref._pa_array.type == pa.large_string()
    assert got._pa_array.equals(ref._pa_array) and got._pa_array.num_chunks == ref._pa_array.num_chunks
    assert pa.array(got).validate(full=True) is None
    _same_frame(pd.DataFrame({"a": got}), pd.DataFrame({"a": value, "b": np.arange(n)})[["a"]])
    if n:
        other = steps._text(value, n)
        got[0] = "changed"
        assert other[0] == value and got[0] == "changed"


def test_empty_cluster_tables_are_the_reference_and_independent():
    t1, s1 = steps._no_clusters()
    ref_t, ref_s = steps._no_clusters_reference()
    _same_frame(t1.copy(), ref_t)
    _same_frame(s1.copy(), ref_s)
    assert s1.crs == ref_s.crs and s1.geometry.name == ref_s.geometry.name


def test_cluster_and_emerging_tables_keep_their_dtypes(real):
    _, _, _, result = real
    for res in result.selections.values():
        for table in (res.clusters, res.emerging):
            if table is res.clusters and not len(table):
                continue  # no clusters: the empty reference table (object columns)
            for name in ("study_area_type", "study_area_code", "study_area_name", "selection"):
                assert str(table[name].dtype) == str(pd.Series(["x"]).dtype)
                if len(table):
                    assert set(table[name]) == {str(table[name].iloc[0])}


# --------------------------------------------------------------------------- the area cache
def test_area_cache_round_trip_of_a_real_area(real, tmp_path):
    inputs, cfg, district, result = real
    cache = ac.AreaCache(tmp_path / "cache")
    key = ac.area_key(ac.inputs_fingerprint(inputs), district, cfg, patrol=True, code="c")
    assert cache.store(key, result) is not None
    hit = cache.load(key, district)
    assert ac.result_differences(result, hit) == []
    for sel, res in result.selections.items():
        for field in dataclasses.fields(SelectionResult):
            u, v = getattr(res, field.name), getattr(hit.selections[sel], field.name)
            if isinstance(u, pd.DataFrame):
                assert type(u) is type(v) and u.index.equals(v.index) and type(v.index) is pd.RangeIndex
                pd.testing.assert_frame_equal(pd.DataFrame(u.drop(columns=u.geometry.name) if hasattr(u, "geometry")
                                                           else u),
                                              pd.DataFrame(v.drop(columns=v.geometry.name) if hasattr(v, "geometry")
                                                           else v), check_exact=True)


def test_cache_comparer_sees_differences_in_every_kind_of_column():
    base = pd.DataFrame({"i": np.arange(4), "f": np.linspace(0, 1, 4), "t": ["a", "b", "c", "d"],
                         "o": pd.Series([[1], [2], [3], [4]], dtype=object), "d": pd.date_range("2025-01-01", periods=4),
                         "c": pd.Categorical(["x", "y", "x", "y"])})
    assert ac._frame_differences(base, base.copy(), "t") == []
    changes = {"i": [0, 1, 2, 5], "f": [0.0, 1 / 3, 2 / 3, np.nextafter(1.0, 0)], "t": ["a", "b", "c", "e"],
               "o": pd.Series([[1], [2], [3], [5]], dtype=object), "d": pd.date_range("2025-01-02", periods=4),
               "c": pd.Categorical(["x", "y", "y", "y"])}
    for name, values in changes.items():
        other = base.copy()
        other[name] = values
        assert ac._frame_differences(base, other, "t"), name
    neg = base.copy()
    neg["f"] = [-0.0, 1 / 3, 2 / 3, 1.0]
    assert ac._frame_differences(base, neg, "t")  # bit for bit: -0.0 is not 0.0


def test_group_rows_read_once_are_the_per_table_reading(real, tmp_path):
    """Each stored table file (Arrow IPC) converted to pandas once and sliced gives what converting each table's rows
    gave."""
    import pyarrow as pa

    inputs, cfg, district, result = real
    cache = ac.AreaCache(tmp_path / "c2")
    key = "k" * 64
    entry = cache.store(key, copy.copy(result))
    meta = __import__("json").loads((entry / "meta.json").read_text())
    for desc in meta["tables"]:
        if "group" not in desc:
            continue
        table = pa.ipc.open_file(pa.BufferReader((entry / desc["file"]).read_bytes())).read_all()
        ref = table.slice(desc["start"], desc["stop"] - desc["start"]).to_pandas()
        whole = table.to_pandas()
        got = whole.iloc[desc["start"]:desc["stop"]]
        got.index = pd.RangeIndex(desc["stop"] - desc["start"])
        pd.testing.assert_frame_equal(got, ref, check_exact=True)
        assert [str(t) for t in got.dtypes] == [str(t) for t in ref.dtypes]
        assert isinstance(pa.Table.from_pandas(got, preserve_index=False), pa.Table)


# --------------------------------------------------------------------------- emerging classes as text, quantiles
@pytest.mark.parametrize("case", ["mostly", "none", "all_other", "empty", "object"])
def test_text_of_labels_is_the_plain_conversion(case):
    rng = np.random.default_rng(7)
    labels = np.array(["no pattern detected", "sporadic hot spot", "new hot spot", "persistent cold spot"])
    values = {"mostly": labels[rng.choice(4, 5000, p=[0.9, 0.05, 0.03, 0.02])],
              "none": labels[np.zeros(10, dtype=int)], "all_other": labels[rng.choice([1, 2], 50)],
              "empty": np.array([], dtype=str), "object": labels[[0, 1, 2]].astype(object)}[case]
    got = steps._text_of_labels(values, "no pattern detected")
    ref = pd.array(values, dtype=steps._TEXT)
    assert got.dtype == ref.dtype and got._pa_array.type == ref._pa_array.type and got.equals(ref)


def _weighted_quantiles_reference(values, weights, qs):
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    keep = w > 0
    v, w = v[keep], w[keep]
    centres = np.cumsum(w) - 0.5 * w
    total = w.sum()
    return [float(np.interp(q * total, centres, v)) for q in qs]


@pytest.mark.parametrize("case", ["real", "ties", "zeros", "nan", "weights", "one"])
def test_weighted_quantiles_with_equal_weights_are_the_stable_sort(real, case):
    from hotspots.detect.kde import _weighted_quantiles

    inputs = real[0]
    rng = np.random.default_rng(11)
    x = inputs.codes.x[rng.choice(len(inputs.codes.x), 20000, replace=False)]
    values = {"real": x, "ties": np.round(x, -2), "zeros": np.r_[np.zeros(5), -np.zeros(5), np.arange(1.0, 4.0)],
              "nan": np.r_[x[:50], np.nan], "weights": x[:500], "one": x[:1]}[case]
    weights = np.full(len(values), 0.5) if case != "weights" else rng.integers(1, 4, len(values)).astype(float)
    qs = (0.5, 0.1, 0.9, 0.25, 0.75)
    got = _weighted_quantiles(values, weights, qs)
    ref = _weighted_quantiles_reference(values, weights, qs)
    assert np.array_equal(np.array(got), np.array(ref), equal_nan=True)
    assert [np.signbit(g) for g in got] == [np.signbit(r) for r in ref]


# --------------------------------------------------------------------------- Mann-Kendall without the table
@pytest.mark.parametrize("seed", range(3))
def test_mann_kendall_numbers_without_the_table_are_the_tables(seed):
    from hotspots.detect.trend import _mann_kendall_z_p, mann_kendall

    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(400, 13)), 1)  # ties
    x[rng.random(x.shape) < 0.2] = np.nan  # gaps
    x[:5, 2:] = np.nan  # short rows (NaN)
    x[5] = 1.0  # all tied
    z, p = _mann_kendall_z_p(x)
    mk = mann_kendall(x)
    assert z.tobytes() == mk["mk_z"].to_numpy(np.float64).tobytes()
    assert p.tobytes() == mk["mk_p"].to_numpy(np.float64).tobytes()


def test_mann_kendall_numbers_leave_odd_input_to_the_checked_route():
    from hotspots.detect.trend import _mann_kendall_z_p

    assert _mann_kendall_z_p(np.array([[1.0, np.inf, 2.0]])) is None
    assert _mann_kendall_z_p(np.array([[1, 2, 3]])) is None
    assert _mann_kendall_z_p(np.array([1.0, 2.0, 3.0])) is None
    assert _mann_kendall_z_p(np.zeros((3, 0))) is None


@pytest.mark.parametrize("kind", ["text", "object", "int"])
def test_rows_of_a_column_are_the_numpy_rows_as_a_table_gets_them(kind):
    values = {"text": pd.Series(["a", "bb", "c", "d"], dtype=steps._TEXT),
              "object": pd.Series(["a", "bb", "c", "d"], dtype=object), "int": pd.Series([1, 2, 3, 4])}[kind]
    for rows in (np.array([2, 0, 3], dtype=np.int64), np.array([], dtype=np.int64)):
        got = pd.DataFrame({"c": steps._rows_of(values, rows)})
        ref = pd.DataFrame({"c": values.to_numpy()[rows]})
        _same_frame(got, ref)
        if kind == "text" and len(rows):
            assert got["c"].array._pa_array.type == ref["c"].array._pa_array.type


def test_tables_already_in_order_are_kept():
    table = pd.DataFrame({"a": [1], "b": [2]})
    assert steps._in_order(table, ["a", "b"]) is table
    _same_frame(steps._in_order(table, ["b", "a"]), table[["b", "a"]])


# --------------------------------------------------------------------------- empty hot cells demoted by codes
def _demote_reference(gi, demote):
    out = gi.copy()
    if demote.any():
        if isinstance(out["gi_test"].dtype, pd.CategoricalDtype) and "empty_cell" not in out["gi_test"].cat.categories:
            out["gi_test"] = out["gi_test"].cat.add_categories(["empty_cell"])
        out.loc[demote, "gi_class"] = "not_significant"
        out.loc[demote, "gi_test"] = "empty_cell"
    return out


@pytest.mark.parametrize("case", ["real", "has_empty_cell", "index", "text"])
def test_demoted_by_codes_is_the_loc_route(real, case):
    from hotspots.detect import patrol as pm
    from hotspots.detect.gistar import gi_star
    from hotspots.geo.weights import grid_weights

    inputs, _, _, result = real
    grid = result.grid
    counts = result.selections["All crime"].cells["count"].to_numpy().astype(float)
    gi = gi_star(counts, grid_weights(grid, neighbourhood="queen", include_self=True))
    if case == "has_empty_cell":
        gi["gi_test"] = gi["gi_test"].cat.add_categories(["empty_cell"])
    elif case == "index":
        gi.index = pd.RangeIndex(5, 5 + len(gi))
    elif case == "text":
        gi["gi_class"] = gi["gi_class"].astype(str)
    hot = pm._starts_with_hot(gi["gi_class"])
    keep, _ = pm.bridge_cells(grid, hot, counts)
    demote = hot & ~keep
    assert demote.any()
    got = pm.demote_empty_hot_cells(grid, gi, counts)
    ref = _demote_reference(gi, demote)
    _same_frame(got, ref)
    for name in ("gi_class", "gi_test"):
        if isinstance(ref[name].dtype, pd.CategoricalDtype):
            assert got[name].dtype == ref[name].dtype
            assert list(got[name].cat.categories) == list(ref[name].cat.categories)
            np.testing.assert_array_equal(got[name].cat.codes, ref[name].cat.codes)


# --------------------------------------------------------------------------- adaptive radii in two rounds
def _adaptive_radii_reference(x, y, w, *, k, h_min, h_max):
    import math

    from scipy.spatial import cKDTree

    from hotspots.detect._bandwidth import LADDER, _unique_locations

    if x.size == 0:
        return np.zeros(0)
    unique, inverse = _unique_locations(np.asarray(x, float), np.asarray(y, float))
    weight = np.bincount(inverse, weights=w, minlength=len(unique))
    n_loc = len(unique)
    positive = weight > 0
    radius = np.full(n_loc, h_max, dtype=float)
    if positive.sum() >= 1 and weight.sum() >= k:
        tree = cKDTree(unique[positive])
        w_pos = weight[positive]
        q = int(min(positive.sum(), max(1, math.ceil(k / max(w_pos.min(), 1e-12)))))
        q = min(q, int(positive.sum()), 4096)
        dist, idx = tree.query(unique, k=q, distance_upper_bound=h_max)
        dist, idx = np.atleast_2d(dist.reshape(n_loc, -1)), np.atleast_2d(idx.reshape(n_loc, -1))
        found = idx < positive.sum()
        held = np.cumsum(np.where(found, w_pos[np.minimum(idx, positive.sum() - 1)], 0.0), axis=1)
        reached = held >= k - 1e-9
        first = np.argmax(reached, axis=1)
        ok = reached.any(axis=1)
        radius[ok] = dist[ok, first[ok]]
    radius = np.clip(radius, h_min, h_max)
    rung = np.round(np.log(radius / h_min) / math.log(LADDER))
    laddered = np.minimum(h_min * LADDER ** rung, h_max)
    laddered = np.where(radius >= h_max, h_max, laddered)
    return laddered[inverse]


def test_adaptive_radii_are_the_single_query_on_real_points(real):
    from hotspots.detect._bandwidth import adaptive_radii, neighbour_count

    inputs = real[0]
    codes = inputs.codes
    for members in list(inputs.selections.values())[:4]:
        pick = np.flatnonzero(codes.of_types(members) & codes.in_months(inputs.current))
        x, y = codes.x[pick], codes.y[pick]
        w = np.ones(len(x))
        k = neighbour_count(len(x))
        for h_min, h_max in ((400.0, 3000.0), (200.0, 800.0)):
            got = adaptive_radii(x, y, w, k=k, h_min=h_min, h_max=h_max)
            ref = _adaptive_radii_reference(x, y, w, k=k, h_min=h_min, h_max=h_max)
            assert got.tobytes() == ref.tobytes()


@pytest.mark.parametrize("case", ["ties", "weights", "fractional", "zeros", "short", "few", "lattice"])
def test_adaptive_radii_edge_cases_are_the_single_query(case):
    from hotspots.detect._bandwidth import adaptive_radii

    rng = np.random.default_rng(5)
    n = 3000
    x, y = np.round(rng.normal(0, 800, n), -1), np.round(rng.normal(0, 800, n), -1)  # snapped: ties everywhere
    w, k = np.ones(n), 40
    if case == "weights":
        w = rng.integers(1, 6, n).astype(float)
    elif case == "fractional":
        w = rng.uniform(0.3, 3.0, n)
    elif case == "zeros":
        w = rng.integers(0, 3, n).astype(float)
    elif case == "short":
        k = 10**6  # never reached
    elif case == "few":
        x, y, w, k = x[:30], y[:30], w[:30], 12
    elif case == "lattice":  # equal distances in every direction
        g = np.arange(-20, 21) * 100.0
        x, y = np.repeat(g, len(g)), np.tile(g, len(g))
        w = rng.integers(1, 4, len(x)).astype(float)
    got = adaptive_radii(x, y, w, k=k, h_min=150.0, h_max=2500.0)
    ref = _adaptive_radii_reference(x, y, w, k=k, h_min=150.0, h_max=2500.0)
    assert got.tobytes() == ref.tobytes()


# --------------------------------------------------------------------------- local Moran: few cells counted directly
@pytest.mark.parametrize("seed", range(4))
def test_direct_counts_are_the_switch_layout_counts(seed):
    from hotspots.detect import moran

    rng = np.random.default_rng(seed)
    n, card = int(rng.integers(5, 400)), int(rng.integers(1, 9))
    perms = int(rng.integers(1, 3000)) if seed < 3 else 300_000 // card  # the last: one cell per block
    values = rng.poisson(0.5 + seed, n).astype(np.int64)
    draws = moran._refine_ids(n - 1, card, perms, seed, 2)
    cells = np.sort(rng.choice(n, int(rng.integers(1, min(n, 40))), replace=False))
    threshold = rng.integers(0, 3 * card + 1, cells.size)
    flat = draws.ravel()
    ref = moran._count_at_least(values, moran._SwitchLayout(cells, draws, keep=values[flat] != values[flat + 1]),
                                threshold)
    got = moran._count_direct(values, draws, cells, threshold)
    for a, b in zip(got, ref):
        assert a.dtype == np.int64
        np.testing.assert_array_equal(a, b)


def test_local_moran_with_direct_counts_is_the_layout_only(real, monkeypatch):
    from hotspots.detect import moran
    from hotspots.geo.weights import grid_weights

    inputs, cfg, _, result = real
    w = grid_weights(result.grid, neighbourhood="queen", include_self=True)
    for sel in ("All crime", "Burglary"):
        counts = result.selections[sel].cells["count"].to_numpy().astype(float)
        got = moran.local_moran(counts, w, permutations=cfg.permutations, seed=cfg.seed)
        with monkeypatch.context() as m:
            m.setattr(moran, "_DIRECT_MAX_CELLS", 0)
            ref = moran.local_moran(counts, w, permutations=cfg.permutations, seed=cfg.seed)
        _same_frame(got, ref)
        assert got.attrs == ref.attrs
