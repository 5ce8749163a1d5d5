"""The records cache (hotspots.io.cache): a re-run on the same inputs reuses the prepared records,
gives the same outputs, and any change of an input file or of a setting the records depend on is a miss.

The data home is a small copy of the real one: two Hertfordshire months copied (so that they can be
changed), the boundaries, lookups and populations linked (and one lookup copied where a test changes it).
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from hotspots.config import load_config
from hotspots.stages import prepare
from hotspots.stages.run import run

ROOT = Path(__file__).resolve().parents[1]
MONTHS = ("2025-01", "2025-02")


@pytest.fixture
def home(real_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HOTSPOTS_CACHE", str(tmp_path / "cache"))
    home = tmp_path / "home"
    street = home / "police_uk" / "hertfordshire" / "street"
    street.mkdir(parents=True)
    for m in MONTHS:
        shutil.copy(real_data_dir / "police_uk" / "hertfordshire" / "street" / f"{m}-hertfordshire-street.csv.gz", street)
    for folder in ("boundaries", "lookups", "population", "town_centres"):
        (home / folder).symlink_to(real_data_dir / folder, target_is_directory=True)
    return home


def _settings(**changes):
    return load_config().replace(**{"first_month": MONTHS[0], "last_month": MONTHS[-1], "current": None, "comparison": None,
                                    **changes})


def _prepare(home, out, **changes):
    ctx = prepare(_settings(**changes), data=str(home), out=str(out))
    return ctx, "ingest" not in ctx.progress.timings  # a hit neither reads nor assigns


def test_same_inputs_hit_and_give_identical_records_and_outputs(home, tmp_path):
    first, hit1 = _prepare(home, tmp_path / "out1")
    second, hit2 = _prepare(home, tmp_path / "out2")
    assert (hit1, hit2) == (False, True)
    assert len(list((tmp_path / "cache").glob("records-*"))) == 1
    pd.testing.assert_frame_equal(first.points, second.points)
    assert first.accounting.to_dict() == second.accounting.to_dict()
    assert first.accounting.kept == len(second.points) > 10_000
    assert list(first.geography.sources.items()) == list(second.geography.sources.items())
    assert first.lsoa_harmonisation == second.lsoa_harmonisation
    for ctx in (first, second):
        run(ctx, ["counts"])
    compared = subprocess.run([sys.executable, str(ROOT / "scripts" / "compare_outputs.py"), str(tmp_path / "out1"),
                               str(tmp_path / "out2")], capture_output=True, text=True)
    assert compared.returncode == 0, compared.stdout + compared.stderr


def test_a_changed_police_file_is_a_miss(home, tmp_path):
    before, _ = _prepare(home, tmp_path / "out")
    path = home / "police_uk" / "hertfordshire" / "street" / f"{MONTHS[-1]}-hertfordshire-street.csv.gz"
    lines = gzip.decompress(path.read_bytes()).decode().splitlines(keepends=True)
    path.write_bytes(gzip.compress("".join(lines[:-1]).encode()))  # the last record removed
    after, hit = _prepare(home, tmp_path / "out")
    assert not hit
    assert after.accounting.rows_read == before.accounting.rows_read - 1
    again, hit = _prepare(home, tmp_path / "out")
    assert hit and again.accounting.rows_read == after.accounting.rows_read


def test_a_changed_geography_file_is_a_miss(home, real_data_dir, tmp_path):
    _prepare(home, tmp_path / "out")
    (home / "lookups").unlink()
    shutil.copytree(real_data_dir / "lookups", home / "lookups")
    _, hit = _prepare(home, tmp_path / "out")
    assert hit  # a byte-for-byte copy: same checksums
    name = next(p for p in (home / "lookups").iterdir() if p.name.endswith(".csv.gz"))
    name.write_bytes(gzip.compress(gzip.decompress(name.read_bytes()), mtime=1))  # same rows, other bytes
    _, hit = _prepare(home, tmp_path / "out")
    assert not hit


def test_a_changed_setting_or_a_new_file_is_a_miss(home, tmp_path):
    _prepare(home, tmp_path / "out")
    one_month, hit = _prepare(home, tmp_path / "out", last_month=MONTHS[0])
    assert not hit and one_month.months_present == [MONTHS[0]]
    (home / "police_uk" / "notes.txt").write_text("not a police file")  # listed as skipped in the accounting
    ctx, hit = _prepare(home, tmp_path / "out")
    assert not hit and any(s["path"].endswith("notes.txt") for s in ctx.accounting.skipped)


def test_a_damaged_entry_is_a_miss_and_the_cache_can_be_off(home, tmp_path, monkeypatch):
    _prepare(home, tmp_path / "out")
    (entry,) = (tmp_path / "cache").glob("records-*")
    (entry / "points.parquet").write_bytes(b"not parquet")
    ctx, hit = _prepare(home, tmp_path / "out")
    assert not hit and len(ctx.points) > 10_000
    monkeypatch.setenv("HOTSPOTS_CACHE", "off")
    shutil.rmtree(tmp_path / "cache")
    _, hit = _prepare(home, tmp_path / "out")
    _, hit2 = _prepare(home, tmp_path / "out")
    assert (hit, hit2) == (False, False) and not (tmp_path / "cache").exists()
    monkeypatch.delenv("HOTSPOTS_CACHE")  # default: beside the output folder
    _prepare(home, tmp_path / "runs" / "out")
    _, hit = _prepare(home, tmp_path / "runs" / "out")
    assert hit and len(list((tmp_path / "runs" / ".hotspots-cache").glob("records-*"))) == 1


def test_links_back_up_and_broken_links_do_not_break_the_key(home, tmp_path):
    street = home / "police_uk" / "hertfordshire" / "street"
    (street / "loop").symlink_to(street, target_is_directory=True)  # read once by the reader and by the key
    (street / "dangling").symlink_to(tmp_path / "nowhere")
    first, hit1 = _prepare(home, tmp_path / "out")
    second, hit2 = _prepare(home, tmp_path / "out")
    assert (hit1, hit2) == (False, True)
    assert first.accounting.to_dict() == second.accounting.to_dict()
    assert any(s["reason"] == "broken symbolic link" for s in second.accounting.skipped)


def test_a_hit_restores_the_geography_layers_without_reading_boundary_files(home, tmp_path, monkeypatch):
    from geopandas.testing import assert_geodataframe_equal

    import hotspots.geo.boundaries as boundaries

    first, _ = _prepare(home, tmp_path / "out1")
    (entry,) = (tmp_path / "cache").glob("records-*")
    assert sorted(p.name for p in entry.glob("layer-*")) == ["layer-districts.parquet", "layer-lsoa21.parquet"]

    def no_read(*args, **kwargs):
        raise AssertionError("a boundary file was read on a cache hit")

    monkeypatch.setattr(boundaries, "read_boundary", no_read)
    second, hit = _prepare(home, tmp_path / "out2")
    assert hit
    for name in ("lsoa21", "districts"):
        fresh, cached = getattr(first.geography, name), getattr(second.geography, name)
        assert_geodataframe_equal(fresh, cached, check_crs=True)
        assert cached.attrs == fresh.attrs and cached.crs.srs == fresh.crs.srs
        assert list(cached.dtypes) == list(fresh.dtypes)
    assert second.geography.warnings == first.geography.warnings
    assert list(first.geography.sources.items()) == list(second.geography.sources.items())


def test_a_changed_boundary_file_is_a_miss_and_its_layer_is_read_again(home, real_data_dir, tmp_path):
    import json

    first, _ = _prepare(home, tmp_path / "out")
    lsoa_path = Path(first.geography.sources["lsoa21"])
    rel = lsoa_path.relative_to(home)
    gone = str(first.geography.lsoa21["area_code"].iloc[0])
    (home / "boundaries").unlink()
    shutil.copytree(real_data_dir / "boundaries", home / "boundaries")
    _, hit = _prepare(home, tmp_path / "out")
    assert hit  # a byte-for-byte copy: same checksums, the stored layers serve
    target = home / rel
    opener = gzip.open if target.suffix == ".gz" else open
    with opener(target, "rt") as f:
        doc = json.load(f)
    n = len(doc["features"])
    doc["features"] = [ft for ft in doc["features"] if gone not in json.dumps(ft["properties"])]
    assert len(doc["features"]) == n - 1
    target.chmod(0o644)
    with opener(target, "wt") as f:
        json.dump(doc, f)
    after, hit = _prepare(home, tmp_path / "out")
    assert not hit
    assert gone not in set(after.geography.lsoa21["area_code"])
    assert len(after.geography.lsoa21) == len(first.geography.lsoa21) - 1
    assert any("have no polygon" in w for w in after.geography.warnings)
    again, hit = _prepare(home, tmp_path / "out")
    assert hit and len(again.geography.lsoa21) == len(after.geography.lsoa21)
    assert again.geography.warnings == after.geography.warnings


def test_a_damaged_layer_is_a_miss(home, tmp_path):
    first, _ = _prepare(home, tmp_path / "out")
    (entry,) = (tmp_path / "cache").glob("records-*")
    (entry / "layer-lsoa21.parquet").write_bytes(b"not parquet")
    ctx, hit = _prepare(home, tmp_path / "out")
    assert not hit and len(ctx.geography.lsoa21) == len(first.geography.lsoa21)


def test_a_failed_prepare_forgets_the_lsoa_file_read_ahead(home, tmp_path, monkeypatch):
    """Bad input stops ``prepare`` after the national LSOA file began to be read ahead: its bytes are not kept."""
    from hotspots._errors import HotspotsError
    from hotspots.io import _files

    monkeypatch.setenv("HOTSPOTS_CACHE", "off")
    _files._PREREAD.clear()
    street = home / "police_uk" / "hertfordshire" / "street"
    bad = street / f"{MONTHS[0]}-hertfordshire-street.csv.gz"
    bad.write_bytes(gzip.compress(b"not,a,police.uk,header\n1,2,3,4\n"))
    with pytest.raises(HotspotsError):
        prepare(_settings(), data=str(home), out=str(tmp_path / "out"))
    assert _files._PREREAD == {}
