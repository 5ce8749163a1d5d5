"""The maps cache: drawn maps written back on a re-run with the same inputs, options and code, never stale.

The stage tests use the small synthetic study of test_hotspots_stage (a
county of two districts), drawn with images.
"""

from __future__ import annotations

import dataclasses

import pytest
from test_hotspots_stage import _ctx
from test_parallel import _comparable

from hotspots.detect.options import HotspotConfig
from hotspots.stages import _maps_cache as mc
from hotspots.stages import hotspots as hs
from hotspots.stages import _hotspots_maps as hm


# --------------------------------------------------------------------------- entries
def test_an_entry_gives_back_the_same_files_in_order(tmp_path):
    cache = mc.MapsCache(tmp_path)
    files = [("county.html", "<html>é</html>".encode()), ("county.png", bytes(range(256))), ("a.html", b"")]
    assert cache.load("k1") is None
    assert cache.store("k1", files) == tmp_path / "maps-k1"
    assert cache.load("k1") == files
    assert cache.load("k2") is None


@pytest.mark.parametrize("damage", ["bytes", "missing", "meta"])
def test_a_damaged_entry_is_a_miss_and_is_removed(tmp_path, damage):
    cache = mc.MapsCache(tmp_path)
    entry = cache.store("k", [("a.html", b"<html></html>"), ("a.png", b"\x89PNG")])
    if damage == "bytes":
        (entry / "a.png").write_bytes(b"\x89PNH")  # same size, other bytes
    elif damage == "missing":
        (entry / "a.html").unlink()
    else:
        (entry / "meta.json").write_text("{", encoding="utf-8")
    assert cache.load("k") is None
    assert not entry.exists()


def test_an_entry_naming_a_file_outside_it_is_refused(tmp_path):
    cache = mc.MapsCache(tmp_path)
    entry = cache.store("k", [("a.html", b"x")])
    (entry / "meta.json").write_text(
        '{"key": "k", "format": %d, "files": [{"name": "../x", "bytes": 1, "sha256": "0"}]}' % mc.FORMAT)
    assert cache.load("k") is None


def test_old_entries_are_evicted(tmp_path, monkeypatch):
    monkeypatch.setattr(mc, "KEEP", 2)
    cache = mc.MapsCache(tmp_path)
    for i in range(4):
        cache.store(f"k{i}", [("a.html", b"x")])
        (tmp_path / f"maps-k{i}" / "meta.json").touch()
    assert sorted(p.name for p in tmp_path.glob("maps-*")) == ["maps-k2", "maps-k3"]


# --------------------------------------------------------------------------- the key
def _districts():
    import geopandas as gpd
    import shapely

    return gpd.GeoDataFrame({"area_code": ["D1"], "area_name": ["Alpha"]},
                            geometry=[shapely.box(0, 0, 1000, 1000)], crs=27700)


def test_any_change_of_what_a_map_is_drawn_from_is_a_new_key(tmp_path):
    cfg = HotspotConfig()
    base = dict(inputs_digest="i", cfg=cfg, png=True, districts=_districts(), data_dir=tmp_path, code="c",
                all_cells=False)

    def key(**change):
        args = {**base, **change}
        return mc.maps_key(args.pop("inputs_digest"), args.pop("cfg"), **args)

    k = key()
    assert key() == k  # the same facts, the same key
    renamed = _districts()
    renamed.loc[0, "area_name"] = "Beta"
    moved = _districts()
    moved.geometry = moved.geometry.translate(1)
    changes = [key(inputs_digest="j"), key(code="d"), key(png=False), key(districts=renamed), key(districts=moved),
               key(all_cells=True),
               key(cfg=dataclasses.replace(cfg, top_n=cfg.top_n + 1)),
               key(cfg=dataclasses.replace(cfg, map_tiles=not cfg.map_tiles))]
    assert len(set(changes)) == len(changes) and k not in changes
    # a road file added, then changed
    (tmp_path / "roads").mkdir()
    road = tmp_path / "roads" / "roads.geojson"
    road.write_text('{"type": "FeatureCollection", "features": []}')
    with_road = key()
    road.write_text('{"type": "FeatureCollection", "features": [] }')
    assert len({k, with_road, key()}) == 3


# --------------------------------------------------------------------------- the stage
def _maps(ctx, comparable: bool = False) -> dict[str, bytes]:
    """The map files; ``comparable``: without folium's random element ids (a map drawn again has new ones)."""
    root = ctx.out.base / "maps"
    return {p.name: _comparable(p) if comparable else p.read_bytes() for p in sorted(root.iterdir())}


def _stage(tmp_path, name, **hotspots):
    ctx = _ctx(tmp_path / name, **hotspots)
    hs.stage_hotspots(ctx, maps=True, png=True)
    return ctx


def test_the_stage_writes_back_the_same_maps_and_draws_again_when_anything_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTSPOTS_CACHE", str(tmp_path / "cache"))
    cold = _stage(tmp_path, "cold")
    assert len(list((tmp_path / "cache").glob("maps-*"))) == 1
    drawn = _maps(cold)
    assert {n.rsplit(".", 1)[1] for n in drawn} == {"html", "png"} and len(drawn) == 6  # county and two districts

    real_build = hm.build_map_views

    def no_drawing(*args, **kwargs):
        raise AssertionError("maps drawn on a cache hit")

    monkeypatch.setattr(hm, "build_map_views", no_drawing)
    warm = _stage(tmp_path, "warm")
    assert _maps(warm) == drawn  # byte for byte, folium's ids too
    assert warm.results["hotspots"]["tables"].keys() == cold.results["hotspots"]["tables"].keys()
    # the manifest's list: the same files, in the same order, with the same sizes
    assert [w["path"] for w in warm.out.written if w["path"].startswith("maps/")] == \
        [w["path"] for w in cold.out.written if w["path"].startswith("maps/")]
    # grid_cells.gpkg written back on a hit: the same layers, rows and styles as the cold run's, stamped now
    assert [w["path"] for w in warm.out.written] == [w["path"] for w in cold.out.written]
    cold_cells, warm_cells = (tmp_path / n / "hotspots" / "grid_cells.gpkg" for n in ("cold", "warm"))
    assert _gpkg_rows(warm_cells) == _gpkg_rows(cold_cells)
    assert _last_changes(warm_cells) > _last_changes(cold_cells)

    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(hm, "build_map_views", counted)
    _stage(tmp_path, "fewer", top_n=2)  # another option: drawn again
    assert calls == [1]
    # a damaged entry: drawn again, the same maps, stored afresh
    for entry in (tmp_path / "cache").glob("maps-*"):
        for png in entry.glob("*.png"):
            png.write_bytes(b"garbage")
    again = _stage(tmp_path, "again")
    assert calls == [1, 1] and _maps(again, comparable=True) == _maps(cold, comparable=True)
    assert _stage(tmp_path, "last") and calls == [1, 1]  # stored again: a hit


def _gpkg_rows(path) -> dict:
    """Every table of a GeoPackage but ``gpkg_contents``' times: its rows (geometries as stored), and its schema."""
    import sqlite3

    con = sqlite3.connect(path)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        out = {"schema": con.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()}
        for t in tables:
            rows = con.execute(f'SELECT * FROM "{t}" ORDER BY rowid' if not t.startswith("rtree_")
                               else f'SELECT * FROM "{t}"').fetchall()
            if t == "gpkg_contents":
                rows = [r[:4] + r[5:] for r in rows]  # last_change: the time of writing
            out[t] = rows
        return out
    finally:
        con.close()


def _last_changes(path) -> str:
    """The earliest `last_change` of a GeoPackage's tables."""
    import sqlite3

    con = sqlite3.connect(path)
    try:
        return min(r[0] for r in con.execute("SELECT last_change FROM gpkg_contents"))
    finally:
        con.close()


def test_a_stored_geopackage_is_written_with_this_runs_time(tmp_path):
    import time

    import geopandas as gpd
    import shapely

    from hotspots._io import OutputDir

    out = OutputDir(tmp_path / "out")
    layer = gpd.GeoDataFrame({"n": [1, 2]}, geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 1, 2, 2)], crs=27700)
    out.write_geo_layers([("a", layer), ("b", layer)], "cells.gpkg")
    first = tmp_path / "out" / "cells.gpkg"
    time.sleep(0.01)
    again = tmp_path / "again.gpkg"
    mc.write_stored_gpkg(first.read_bytes(), again)
    assert _gpkg_rows(again) == _gpkg_rows(first)
    assert _last_changes(again) > _last_changes(first)
    assert len(_last_changes(again)) == len("2026-01-01T00:00:00.000Z") and _last_changes(again).endswith("Z")


def test_the_grid_cells_setting_is_part_of_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTSPOTS_CACHE", str(tmp_path / "cache"))
    _stage(tmp_path, "kept")
    ctx = _ctx(tmp_path / "all")
    ctx.settings.extra["outputs"] = {"grid_cells": "all"}
    hs.stage_hotspots(ctx, maps=True, png=True)
    assert len(list((tmp_path / "cache").glob("maps-*"))) == 2  # another file: drawn and stored again


def test_cache_off_never_reads_or_writes_maps(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTSPOTS_CACHE", "off")

    def forbidden(*args, **kwargs):
        raise AssertionError("the maps cache was used while off")

    for name in ("load", "store", "__init__"):
        monkeypatch.setattr(mc.MapsCache, name, forbidden)
    ctx = _stage(tmp_path, "out")
    assert len(_maps(ctx)) == 6
    assert "hotspots.maps_cache" not in ctx.progress.timings
