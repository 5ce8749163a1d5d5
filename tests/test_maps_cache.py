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
    base = dict(inputs_digest="i", cfg=cfg, png=True, districts=_districts(), data_dir=tmp_path, code="c")

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
    assert (tmp_path / "warm" / "hotspots" / "grid_cells.gpkg").is_file()  # written on a hit too

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


def test_cache_off_never_reads_or_writes_maps(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTSPOTS_CACHE", "off")

    def forbidden(*args, **kwargs):
        raise AssertionError("the maps cache was used while off")

    for name in ("load", "store", "__init__"):
        monkeypatch.setattr(mc.MapsCache, name, forbidden)
    ctx = _stage(tmp_path, "out")
    assert len(_maps(ctx)) == 6
    assert "hotspots.maps_cache" not in ctx.progress.timings
