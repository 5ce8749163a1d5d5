"""Shared fixtures. Real data come from ../shared/data (or $HOTSPOTS_DATA); never copied into the project."""

from __future__ import annotations

import os
from pathlib import Path

# Many small statsmodels fits on a 2-core machine: multi-threaded BLAS only thrashes.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _real_data_dir() -> Path | None:
    for cand in (os.environ.get("HOTSPOTS_DATA"), ROOT.parent / "shared" / "data"):
        if cand and (Path(cand) / "police_uk").is_dir():
            return Path(cand).resolve()
    return None


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    d = _real_data_dir()
    if d is None:
        pytest.skip("real data home not found (../shared/data or $HOTSPOTS_DATA)")
    return d


@pytest.fixture(scope="session")
def real_context(real_data_dir, tmp_path_factory):
    """The default Hertfordshire configuration prepared once for the session (ingest + geography)."""
    from hotspots.config import load_config
    from hotspots.stages import prepare

    settings = load_config()
    out = tmp_path_factory.mktemp("real_out")
    return prepare(settings, data=str(real_data_dir), out=str(out))
