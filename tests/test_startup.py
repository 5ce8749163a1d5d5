"""Cheaper start-up and output writing, same results.

* Gi*'s exact binomial guard takes SciPy's binomial tails from the ufuncs behind
  ``scipy.stats.binom`` without importing :mod:`scipy.stats`: the same numbers, bit for bit.
* Checking the configuration and importing the stages import neither the evaluation nor scipy.stats
  (the process that runs the hotspots stage beside the others never needs them).
* GeoPackages are written without an fsync per commit: the same file content; GDAL's settings restored.
* ``run(..., side_results=False)`` (the command) leaves the side stages' results in their process.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from hotspots.detect.gistar import _binom_cdf, _binom_sf, _exact_guard

SRC = Path(__file__).resolve().parents[1] / "src"


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(((a.view(np.int64) == b.view(np.int64)) | (np.isnan(a) & np.isnan(b))).all())


def test_binomial_tails_are_scipy_stats_bit_for_bit():
    rng = np.random.default_rng(18)
    for trial in range(60):
        m = 2000
        n = rng.integers(0, 3000, m).astype(float)
        k = rng.integers(-2, 80, m) if trial % 2 else (rng.random(m) * n).astype(np.int64)
        p = rng.random(m) ** rng.uniform(1, 8)
        if trial % 3 == 0:  # outside the parameter space: NaN as SciPy gives
            n[rng.random(m) < 0.05] = rng.choice([np.nan, -1.0, 2.5, np.inf])
            p[rng.random(m) < 0.05] = rng.choice([0.0, 1.0, -0.1, 1.1, np.nan])
        assert _same_bits(_binom_sf(k - 1, n, p), stats.binom.sf(k - 1, n, p))
        assert _same_bits(_binom_cdf(k, n, p), stats.binom.cdf(k, n, p))
    k = np.array([-np.inf, -1.0, 0.0, 0.5, 3.0, 4.0, 9.0, np.inf, np.nan])
    n, p = np.full(k.size, 4.0), np.full(k.size, 0.3)
    assert _same_bits(_binom_sf(k, n, p), stats.binom.sf(k, n, p))
    assert _same_bits(_binom_cdf(k, n, p), stats.binom.cdf(k, n, p))
    empty = np.zeros(0)
    assert _binom_sf(empty.astype(np.int64), empty, empty).shape == (0,)


def test_exact_guard_is_the_same_as_with_scipy_stats(monkeypatch):
    """The guard on a sparse grid: p and test codes equal to those computed with scipy.stats.binom."""
    import hotspots.detect.gistar as gistar

    rng = np.random.default_rng(5)
    s = rng.poisson(0.7, (3, 4000)).astype(float)
    share = rng.choice([4 / 4000, 6 / 4000, 9 / 4000], (3, 4000))
    z = rng.normal(0, 2, (3, 4000))
    p_normal = 2 * stats.norm.sf(np.abs(z))
    for alternative in ("two-sided", "greater", "less"):
        fast = _exact_guard(z, p_normal, s, share, np.array([900.0, 1200.0, 40.0]), alternative, 3)
        with monkeypatch.context() as m:
            m.setattr(gistar, "_binom_sf", lambda k, n, p: stats.binom.sf(k, n, p))
            m.setattr(gistar, "_binom_cdf", lambda k, n, p: stats.binom.cdf(k, n, p))
            reference = _exact_guard(z, p_normal, s, share, np.array([900.0, 1200.0, 40.0]), alternative, 3)
        assert _same_bits(fast[0], reference[0]) and (fast[1] == reference[1]).all()


_IMPORTS = r"""
import json, sys
from hotspots.config import load_config
from hotspots.stages.run import check_settings
import hotspots.detect, hotspots.stages
check_settings(load_config(None))
print(json.dumps(sorted(m for m in sys.modules if m in ("scipy.stats", "hotspots.evaluation", "hotspots.outliers"))))
"""


def test_config_check_and_stages_import_no_evaluation_nor_scipy_stats():
    out = subprocess.run([sys.executable, "-c", _IMPORTS], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_config_check_still_checks_the_evaluation_section():
    from hotspots._errors import ConfigError
    from hotspots.config import load_config
    from hotspots.stages.run import check_settings

    settings = load_config(None)
    bad = settings.replace(extra={**settings.extra, "evaluation": {**settings.extra["evaluation"], "control": "nearby"}})
    with pytest.raises(ConfigError, match="evaluation.control"):
        check_settings(bad)


def test_the_config_s_controls_are_the_evaluation_s():
    from hotspots.evaluation import CONTROLS
    from hotspots.stages._evaluate_config import CONTROLS as CONFIG_CONTROLS

    assert CONFIG_CONTROLS == CONTROLS


def _content(path: Path) -> list[str]:
    import re

    con = sqlite3.connect(path)
    try:  # the whole database, but the times GDAL records when it writes
        return [re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "<time>", line) for line in con.iterdump()]
    finally:
        con.close()


def test_geopackage_without_fsync_is_the_same_file_and_gdal_settings_come_back(tmp_path, monkeypatch):
    import geopandas as gpd
    import pyogrio
    import shapely

    import hotspots._io as io_
    from hotspots._io import OutputDir

    gdf = gpd.GeoDataFrame({"name": ["a", "b", "=c"], "gi_z": [1.5, np.nan, -2.0], "Gi_Bin": [3, 0, -2]},
                           geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1), shapely.box(5, 5, 7, 6)],
                           crs=27700)
    layers = [("all crime", gdf), ("asb", gdf.iloc[:2]), ("asb", gdf.iloc[2:])]
    pyogrio.set_gdal_config_options({"OGR_SQLITE_JOURNAL": "TRUNCATE"})  # a caller's own setting
    try:
        OutputDir(tmp_path / "fast").write_geo_layers(layers, "x.gpkg", use_arrow=True)
        assert pyogrio.get_gdal_config_option("OGR_SQLITE_JOURNAL") == "TRUNCATE"
        assert pyogrio.get_gdal_config_option("OGR_SQLITE_SYNCHRONOUS") is None
        monkeypatch.setattr(io_, "_GPKG_WRITE_OPTIONS", {})  # GDAL's defaults: an fsync per commit
        pyogrio.set_gdal_config_options({"OGR_SQLITE_JOURNAL": None})
        OutputDir(tmp_path / "synced").write_geo_layers(layers, "x.gpkg", use_arrow=True)
    finally:
        pyogrio.set_gdal_config_options({"OGR_SQLITE_JOURNAL": None})
    fast, synced = tmp_path / "fast" / "x.gpkg", tmp_path / "synced" / "x.gpkg"
    assert _content(fast) == _content(synced)
    assert fast.read_bytes()[:100] == synced.read_bytes()[:100]  # the header: same format, no WAL
    assert [name for name, _ in pyogrio.list_layers(fast)] == ["all_crime", "asb", "asb_2", "layer_styles"]


def test_side_results_stay_in_the_side_process(monkeypatch):
    """``side_results=False``: the forked stages' ``ctx.results`` are not sent back; the rest is."""
    from types import SimpleNamespace

    import hotspots.stages.run  # noqa: F401  (the module; ``hotspots.stages.run`` the name is the function)

    run_module = sys.modules["hotspots.stages.run"]
    ctx = SimpleNamespace(results={"before": 1}, out=SimpleNamespace(written=[]), settings=SimpleNamespace(auto={}),
                          geography=SimpleNamespace(sources={}), progress=SimpleNamespace(timings={}),
                          pending_records_store=None)

    def fake_stage(c, name, summaries, skipped, parts=None):
        c.results[name] = {"big": "result"}
        summaries[name] = {"ok": True}

    monkeypatch.setattr(run_module, "_run_stage", fake_stage)
    kept = run_module._run_side(ctx, run_module.SideQueue(["counts", "outliers"]))
    ctx.results = {"before": 1}
    left = run_module._run_side(ctx, run_module.SideQueue(["counts", "outliers"]), results=False)
    assert kept["ran"] == left["ran"] == ["counts", "outliers"]
    assert kept["results"] == {"counts": {"big": "result"}, "outliers": {"big": "result"}}
    assert left["results"] == {} and left["summaries"] == kept["summaries"]
