"""The cache of the per-area hotspot analysis (hotspots.detect._area_cache, used by the hotspots stage).

A hit gives exactly the AreaResult the analysis gave (every table, dtype, index, attrs, geometry and value);
any change of the points, the other inputs, the settings, the study area, the options or the code digest is a
miss; a damaged entry is a miss and is recomputed; ``HOTSPOTS_CACHE=off`` never reads or writes.
Synthetic data of tests/test_hotspots_stage.py (no real data).
"""

from __future__ import annotations

import dataclasses
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from test_hotspots_stage import _ctx, _points

from hotspots.detect import _area_cache as ac
from hotspots.detect.analysis import analyse_area
from hotspots.detect.results import SelectionResult
from hotspots.stages import hotspots as hs


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    ctx = _ctx(tmp_path_factory.mktemp("area_cache"))
    cfg = hs.hotspot_config(ctx.settings)
    inputs = hs.build_inputs(ctx, cfg)
    results = {"county": analyse_area(inputs, inputs.county, cfg, patrol=False),
               "district": analyse_area(inputs, inputs.districts[0], cfg, patrol=True)}
    return inputs, cfg, results


def _key(inputs, area, cfg, patrol=True, code="code-1"):
    return ac.area_key(ac.inputs_fingerprint(inputs), area, cfg, patrol=patrol, code=code)


def _assert_same_table(a, b, where):
    """An independent check (pandas' and geopandas' own asserters), not the cache's comparer."""
    assert type(a) is type(b), where
    assert list(a.columns) == list(b.columns) and list(a.dtypes.astype(str)) == list(b.dtypes.astype(str)), where
    assert a.index.equals(b.index) and type(a.index) is type(b.index), where
    assert repr(a.attrs) == repr(b.attrs), where
    if isinstance(a, gpd.GeoDataFrame):
        assert a.geometry.name == b.geometry.name and a.crs == b.crs and a.crs.srs == b.crs.srs, where
        for name in a.columns[a.dtypes.astype(str) == "geometry"]:
            assert list(shapely.to_wkb(a[name].values)) == list(shapely.to_wkb(b[name].values)), where
        a, b = pd.DataFrame(a.drop(columns=a.columns[a.dtypes.astype(str) == "geometry"])), \
            pd.DataFrame(b.drop(columns=b.columns[b.dtypes.astype(str) == "geometry"]))
    pd.testing.assert_frame_equal(a, b, check_exact=True, check_dtype=True)
    for name in a.columns[[t.kind == "f" if isinstance(t, np.dtype) else False for t in a.dtypes]]:
        assert a[name].to_numpy().tobytes() == b[name].to_numpy().tobytes(), where  # bit for bit (-0.0, NaN)


def _assert_same_result(a, b):
    assert ac.result_differences(a, b) == []
    _assert_same_table(a.grid, b.grid, "grid")
    assert list(a.selections) == list(b.selections)
    for sel in a.selections:
        for field in dataclasses.fields(SelectionResult):
            u, v = getattr(a.selections[sel], field.name), getattr(b.selections[sel], field.name)
            if isinstance(u, pd.DataFrame):
                _assert_same_table(u, v, f"{sel}.{field.name}")
            else:
                assert repr(u) == repr(v), f"{sel}.{field.name}"  # repr shows numpy scalar types too
    assert vars(a.area).keys() == vars(b.area).keys()


# --------------------------------------------------------------------------- a hit
def test_a_hit_gives_an_identical_area_result(analysed, tmp_path):
    inputs, cfg, results = analysed
    cache = ac.AreaCache(tmp_path / "cache")
    district = results["district"]
    assert any(s.patrol_areas is not None and len(s.patrol_areas) for s in district.selections.values())
    for name, result in results.items():
        key = _key(inputs, result.area, cfg, patrol=name == "district")
        assert cache.load(key, result.area) is None
        entry = cache.store(key, result)
        assert entry is not None and (entry / "meta.json").is_file()
        assert not list((tmp_path / "cache").glob(".tmp-*"))
        hit = cache.load(key, result.area)
        _assert_same_result(result, hit)
        assert hit.area is result.area
        # the same again, and the cells are GeoDataFrames with the grid's shapes
        again = cache.load(key, result.area)
        _assert_same_result(result, again)
        for sel in again.selections.values():
            assert list(shapely.to_wkb(sel.cells.geometry.values)) == list(shapely.to_wkb(again.grid.geometry.values))
    meta = json.loads((entry / "meta.json").read_text())
    assert all(name.endswith(".arrow") for name in meta["files"])  # tables as Arrow IPC, the rest JSON: no pickle


def test_the_comparer_sees_any_difference(analysed):
    _, _, results = analysed
    result = results["district"]
    sel = next(iter(result.selections))
    for change in ("float", "text", "geometry", "dtype", "summary"):
        copy = ac.AreaResult(area=result.area, grid=result.grid.copy(),
                             selections={k: dataclasses.replace(v) for k, v in result.selections.items()})
        target = copy.selections[sel]
        cells = target.cells.copy()
        if change == "float":
            cells.loc[cells.index[0], "gi_z"] = np.nextafter(cells["gi_z"].iloc[0], np.inf)
        elif change == "text":
            cells.loc[cells.index[-1], "gi_class"] = "hot_99" if cells["gi_class"].iloc[-1] != "hot_99" else "cold_99"
        elif change == "geometry":
            geoms = cells.geometry.values.copy()
            geoms[0] = shapely.affinity.translate(geoms[0], 1e-6)
            cells = cells.set_geometry(geoms)
        elif change == "dtype":
            cells["count"] = cells["count"].astype(float)
        else:
            target.summary = {**target.summary, "count": float(target.summary["count"])}
        target.cells = cells
        assert ac.result_differences(result, copy), change


# --------------------------------------------------------------------------- misses
def _with_points(inputs, points):
    return dataclasses.replace(inputs, points=points, _codes=None)


def test_any_change_of_inputs_area_options_or_code_is_a_miss(analysed):
    inputs, cfg, results = analysed
    area = results["district"].area
    base = _key(inputs, area, cfg)
    pts = inputs.points
    nudged = pts.copy()
    nudged.loc[5, "x"] = np.nextafter(nudged.loc[5, "x"], np.inf)
    retyped = pts.copy()
    retyped.loc[7, "crime_type"] = "Shoplifting" if retyped.loc[7, "crime_type"] != "Shoplifting" else "Burglary"
    remonthed = pts.copy()
    remonthed.loc[9, "month"] = "2024-02" if remonthed.loc[9, "month"] != "2024-02" else "2024-03"
    relocated = pts.copy()
    relocated.loc[11, "location"] = "On or near Other Lane"
    wards = inputs.wards.copy()
    wards.loc[wards.index[0], "area_name"] = "Renamed"
    ward_shapes = inputs.wards.copy()
    ward_shapes.geometry = ward_shapes.geometry.translate(0.001)
    towns = inputs.town_centres.copy()
    towns.loc[towns.index[0], "area_name"] = "Elsewhere"
    harm = inputs.harm_weights.copy()
    harm.iloc[1] = np.nextafter(harm.iloc[1], np.inf)  # (the first, ASB, has no weight)
    selections = dict(inputs.selections)
    first = next(iter(selections))
    selections[first] = selections[first][:-1]
    reordered = dict(reversed(list(inputs.selections.items())))
    other_area = {
        "cell size": dataclasses.replace(area, cell_size=area.cell_size + 0.5),
        "geometry": dataclasses.replace(area, geometry=shapely.affinity.translate(area.geometry, 0.01)),
        "name": dataclasses.replace(area, name=area.name + "x"),
        "code": dataclasses.replace(area, code=area.code + "x"),
        "reason": dataclasses.replace(area, cell_size_reason=area.cell_size_reason + "."),
    }
    variants = {
        "x of one point": _key(_with_points(inputs, nudged), area, cfg),
        "crime type of one point": _key(_with_points(inputs, retyped), area, cfg),
        "month of one point": _key(_with_points(inputs, remonthed), area, cfg),
        "location of one point": _key(_with_points(inputs, relocated), area, cfg),
        "one point fewer": _key(_with_points(inputs, pts.iloc[:-1]), area, cfg),
        "points reordered": _key(_with_points(inputs, pts.iloc[::-1].reset_index(drop=True)), area, cfg),
        "a timestamp column": _key(_with_points(inputs, pts.assign(datetime=pd.Timestamp("2025-01-01"))), area, cfg),
        "analysis months": _key(dataclasses.replace(inputs, current=inputs.current[1:]), area, cfg),
        "comparison months": _key(dataclasses.replace(inputs, comparison=inputs.comparison[1:]), area, cfg),
        "change months": _key(dataclasses.replace(inputs, change_current=inputs.change_current[1:]), area, cfg),
        "months present": _key(dataclasses.replace(inputs, months_present=inputs.months_present[1:]), area, cfg),
        "months all": _key(dataclasses.replace(inputs, months_all=inputs.months_all[1:]), area, cfg),
        "a selection's members": _key(dataclasses.replace(inputs, selections=selections), area, cfg),
        "selection order": _key(dataclasses.replace(inputs, selections=reordered), area, cfg),
        "ward name": _key(dataclasses.replace(inputs, wards=wards), area, cfg),
        "ward shapes": _key(dataclasses.replace(inputs, wards=ward_shapes), area, cfg),
        "town centre name": _key(dataclasses.replace(inputs, town_centres=towns), area, cfg),
        "no town centres": _key(dataclasses.replace(inputs, town_centres=towns.iloc[:0]), area, cfg),
        "harm weight": _key(dataclasses.replace(inputs, harm_weights=harm), area, cfg),
        "other districts": _key(dataclasses.replace(inputs, districts=inputs.districts[:1]), area, cfg),
        **{f"area {k}": _key(inputs, a, cfg) for k, a in other_area.items()},
        "seed": _key(inputs, area, dataclasses.replace(cfg, seed=cfg.seed + 1)),
        "permutations": _key(inputs, area, dataclasses.replace(cfg, permutations=cfg.permutations + 1)),
        "top_n": _key(inputs, area, dataclasses.replace(cfg, top_n=cfg.top_n + 1)),
        "rank_by": _key(inputs, area, dataclasses.replace(cfg, rank_by="harm")),
        "patrol": _key(inputs, area, cfg, patrol=False),
        "code": _key(inputs, area, cfg, code="code-2"),
    }
    same = [k for k, v in variants.items() if v == base]
    assert same == []
    assert len(set(variants.values())) == len(variants)


def test_the_key_does_not_depend_on_memory_layout(analysed, tmp_path):
    inputs, cfg, results = analysed
    area = results["district"].area
    base = _key(inputs, area, cfg)
    path = tmp_path / "points.parquet"
    inputs.points.to_parquet(path)
    read_back = pd.read_parquet(path)
    chunked = pd.concat([inputs.points.iloc[:100], inputs.points.iloc[100:]], ignore_index=True)
    for pts in (inputs.points.copy(), read_back, chunked):
        assert _key(_with_points(inputs, pts), area, cfg) == base
    assert _key(dataclasses.replace(inputs, wards=inputs.wards.copy()), area, cfg) == base


# --------------------------------------------------------------------------- damage, failures
@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "remove a table", "bad json", "another area"])
def test_a_damaged_entry_is_a_miss_and_is_removed(analysed, tmp_path, damage):
    inputs, cfg, results = analysed
    result = results["district"]
    cache = ac.AreaCache(tmp_path)
    key = _key(inputs, result.area, cfg)
    entry = cache.store(key, result)
    biggest = max(entry.glob("*.arrow"), key=lambda p: p.stat().st_size)
    if damage == "flip a byte":
        data = bytearray(biggest.read_bytes())
        data[len(data) // 2] ^= 0x01
        biggest.write_bytes(bytes(data))
    elif damage == "truncate":
        biggest.write_bytes(biggest.read_bytes()[:-100])
    elif damage == "remove a table":
        biggest.unlink()
    elif damage == "bad json":
        (entry / "meta.json").write_text((entry / "meta.json").read_text()[:-10])
    assert cache.load(key, results["county"].area if damage == "another area" else result.area) is None
    assert not entry.exists()
    assert cache.store(key, result) is not None  # recomputed results are stored again
    _assert_same_result(result, cache.load(key, result.area))


def test_a_store_that_fails_costs_only_time(analysed, tmp_path):
    inputs, cfg, results = analysed
    result = results["county"]
    key = _key(inputs, result.area, cfg, patrol=False)
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert ac.AreaCache(blocked).store(key, result) is None
    odd = ac.AreaResult(area=result.area, grid=result.grid,
                        selections={k: dataclasses.replace(v, summary={**v.summary, "x": object()})
                                    for k, v in result.selections.items()})
    cache = ac.AreaCache(tmp_path / "cache")
    assert cache.store(key, odd) is None  # cannot be stored exactly: not stored
    assert list((tmp_path / "cache").iterdir()) == []


def test_old_entries_are_evicted(analysed, tmp_path, monkeypatch):
    inputs, cfg, results = analysed
    monkeypatch.setattr(ac, "KEEP", 2)
    cache = ac.AreaCache(tmp_path)
    result = results["county"]
    keys = [_key(inputs, result.area, cfg, patrol=False, code=f"c{i}") for i in range(4)]
    for key in keys:
        cache.store(key, result)
    assert sorted(p.name for p in tmp_path.glob("areas-*")) == sorted(f"areas-{k[:40]}" for k in keys[-2:])


# --------------------------------------------------------------------------- the stage
def _stage(tmp_path, name, points=None):
    ctx = _ctx(tmp_path / name, points=points)
    hs.run_hotspots(ctx)
    return ctx


def _tables(ctx):
    root = ctx.out.base / "hotspots"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.csv"))}


def test_the_stage_reuses_every_area_and_writes_the_same_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTSPOTS_CACHE", str(tmp_path / "cache"))
    cold = _stage(tmp_path, "cold")
    names = [cold.results["hotspots"]["county"].area.name] + [d.area.name for d in cold.results["hotspots"]["districts"]]
    assert {f"hotspots.cache_miss: {n}" for n in names} <= set(cold.progress.timings)

    def no_analysis(*args, **kwargs):
        raise AssertionError("analysed on a cache hit")

    monkeypatch.setattr(hs, "analyse_area", no_analysis)
    warm = _stage(tmp_path, "warm")
    assert {f"hotspots.cache_hit: {n}" for n in names} <= set(warm.progress.timings)
    assert not any(k.startswith("hotspots.cache_miss") for k in warm.progress.timings)
    assert _tables(cold) == _tables(warm) != {}
    a, b = cold.results["hotspots"], warm.results["hotspots"]
    _assert_same_result(a["county"], b["county"])
    for x, y in zip(a["districts"], b["districts"]):
        _assert_same_result(x, y)
    monkeypatch.undo()
    # changed points: every area is analysed again
    monkeypatch.setenv("HOTSPOTS_CACHE", str(tmp_path / "cache"))
    changed = _stage(tmp_path, "changed", points=_points(seed=2))
    assert not any(k.startswith("hotspots.cache_hit") for k in changed.progress.timings)


def test_a_damaged_entry_is_recomputed_by_the_stage(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTSPOTS_CACHE", str(tmp_path / "cache"))
    cold = _stage(tmp_path, "cold")
    entries = sorted((tmp_path / "cache").glob("areas-*"))
    assert len(entries) == 3  # the county and two districts
    for path in entries[0].glob("*.arrow"):
        path.write_bytes(b"garbage")
    warm = _stage(tmp_path, "warm")
    misses = [k for k in warm.progress.timings if k.startswith("hotspots.cache_miss")]
    hits = [k for k in warm.progress.timings if k.startswith("hotspots.cache_hit")]
    assert (len(misses), len(hits)) == (1, 2)
    assert _tables(cold) == _tables(warm)
    assert len(list((tmp_path / "cache").glob("areas-*"))) == 3  # stored again


def test_cache_off_never_reads_or_writes(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTSPOTS_CACHE", "off")

    def forbidden(*args, **kwargs):
        raise AssertionError("the area cache was used while off")

    for name in ("load", "store", "__init__"):
        monkeypatch.setattr(ac.AreaCache, name, forbidden)
    monkeypatch.setattr(hs, "inputs_fingerprint", forbidden)
    ctx = _stage(tmp_path, "out")
    assert not any(k.startswith("hotspots.cache") for k in ctx.progress.timings)
    assert not (tmp_path / ".hotspots-cache").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("index", [None, False])
def test_a_table_file_reads_back_as_the_table(tmp_path, index):
    """The entry's table files (Arrow IPC) give back the same columns, dtypes, values and (kept) index."""
    import pyarrow as pa

    frame = pd.DataFrame({"code": pd.array(["a", None, "c"], dtype="str"), "n": np.array([1, 2, 3], dtype="int16"),
                          "x": [0.1, np.nan, -0.0], "flag": [True, False, True], "wkb": [b"\x01", b"", b"\x00\x02"],
                          "month": pd.to_datetime(["2024-01-01", "2024-02-01", None])},
                         index=pd.Index([5, 3, 9], name="cell"))
    path = tmp_path / "t.arrow"
    ac._write_table(frame, path, index=index)
    back = pa.ipc.open_file(pa.BufferReader(path.read_bytes())).read_all().to_pandas()
    expected = frame if index is None else frame.reset_index(drop=True)
    pd.testing.assert_frame_equal(back, expected, check_exact=True)
    assert back["x"].to_numpy().view(np.uint64).tolist() == expected["x"].to_numpy().view(np.uint64).tolist()  # -0.0
