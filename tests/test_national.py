"""Out-of-core national aggregation (hotspots.geo.national): DuckDB and Dask give the totals a plain
in-memory group-by gives, on partitions written by force and month."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hotspots._errors import ConfigError, DataNotFoundError
from hotspots.geo.national import aggregate_partitions, read_totals, write_partition

TYPES = ["Burglary", "Drugs", "Anti-social behaviour", "Vehicle crime"]


@pytest.fixture(scope="module")
def partitions(tmp_path_factory):
    root = tmp_path_factory.mktemp("partitions")
    rng = np.random.default_rng(7)
    frames = []
    for force in ("kent", "essex", "surrey"):
        for month in ("2024-12", "2025-01", "2025-02"):
            n = int(rng.integers(500, 3000))
            pts = pd.DataFrame({
                "x": rng.uniform(500_000, 520_000, n).round(0), "y": rng.uniform(150_000, 170_000, n),
                "crime_type": rng.choice(TYPES, n), "lsoa21_code": rng.choice([f"E0100{i:04d}" for i in range(40)], n)})
            pts.loc[::97, "x"] = 500_250.0  # some points on a cell edge
            write_partition(root, force, month, pts)
            frames.append(pts.assign(month=month))
    return root, pd.concat(frames, ignore_index=True)


def _truth(rows: pd.DataFrame, cell: float):
    area = rows.groupby(["lsoa21_code", "month", "crime_type"]).size().rename("count").reset_index()
    cells = rows.assign(col=np.floor(rows["x"] / cell).astype("int64"), row=np.floor(rows["y"] / cell).astype("int64"))
    cells = cells.groupby(["col", "row", "month"]).size().rename("count").reset_index()
    return area, cells


def _same(a: pd.DataFrame, b: pd.DataFrame):
    a, b = (x.astype({"count": "int64"}).reset_index(drop=True) for x in (a, b))
    assert list(a.columns) == list(b.columns)
    for c in a.columns:
        assert (a[c].astype(str if a[c].dtype == object or str(a[c].dtype) == "str" else a[c].dtype).to_numpy()
                == b[c].astype(str if b[c].dtype == object or str(b[c].dtype) == "str" else b[c].dtype).to_numpy()).all(), c


@pytest.mark.parametrize("engine,scheduler", [("duckdb", None), ("dask", None), ("dask", "local:2")])
def test_totals_equal_an_in_memory_group_by(partitions, tmp_path, engine, scheduler):
    pytest.importorskip("duckdb")
    if engine == "dask":
        pytest.importorskip("dask.dataframe")
    if scheduler:
        pytest.importorskip("dask.distributed")
    root, rows = partitions
    info = aggregate_partitions(root, tmp_path / "out", cell_size=250.0, engine=engine, scheduler=scheduler)
    area, cells = read_totals(tmp_path / "out")
    want_area, want_cells = _truth(rows, 250.0)
    assert info["rows"] == len(rows) == int(area["count"].sum()) == int(cells["count"].sum())
    assert (info["area_rows"], info["cell_rows"]) == (len(want_area), len(want_cells))
    _same(area, want_area)
    _same(cells, want_cells)


def test_bad_input_is_named(tmp_path):
    pytest.importorskip("duckdb")
    with pytest.raises(DataNotFoundError, match="no force-month partitions"):
        aggregate_partitions(tmp_path, tmp_path / "out")
    write_partition(tmp_path, "kent", "2025-01", pd.DataFrame({"x": [1.0], "y": [1.0], "crime_type": ["Drugs"],
                                                               "lsoa21_code": ["E1"]}))
    with pytest.raises(ConfigError, match="engine must be"):
        aggregate_partitions(tmp_path, tmp_path / "out", engine="spark")
    with pytest.raises(ValueError, match="missing columns"):
        write_partition(tmp_path, "kent", "2025-02", pd.DataFrame({"x": [1.0]}))
