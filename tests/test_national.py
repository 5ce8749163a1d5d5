"""Out-of-core national aggregation (hotspots.geo.national): DuckDB and Dask give the totals a plain
in-memory group-by gives, on partitions written by force and month; police.uk files of a data home
streamed to partitions with every row accounted for (hotspots.geo.history), and Gi* per year on the
national totals (hotspots.detect.history) equal to Gi* computed directly on the rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hotspots._errors import ConfigError, DataNotFoundError, InputFileError
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


# --------------------------------------------------------------------------- police.uk files -> partitions -> Gi*
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The tiny data home of test_cli (3 months of 6 rows: 1 without coordinates, 1 outside the force) built once."""
    pytest.importorskip("duckdb")
    from test_cli import make_home

    from hotspots.geo.history import build_history

    tmp = tmp_path_factory.mktemp("history")
    home = make_home(tmp / "home")
    info = build_history(home, tmp / "partitions")
    return home, tmp / "partitions", info


def test_build_writes_every_row_or_names_its_reason(built):
    import json

    home, root, info = built
    assert (info["rows_read"], info["rows_written"], info["dropped"]) == (18, 15, {"no_coordinates": 3})
    assert info["partitions"] == info["files"] == 3 and info["forces"] == ["hertfordshire"]
    assert info["months"] == ["2024-01", "2025-01", "2025-02"]  # a .zip member, a .csv and a .csv.gz
    saved = json.loads((root / "build.json").read_text())
    assert sum(f["rows_read"] for f in saved["per_file"]) == 18 and sum(f["kept"] for f in saved["per_file"]) == 15
    part = pd.read_parquet(root / "force=hertfordshire" / "month=2025-01" / "part-0.parquet")
    assert len(part) == 5 and list(part.columns) == ["x", "y", "crime_type", "lsoa21_code"]
    # codes harmonised to 2021; the code not in the lookup (another force's) is kept as a blank code, the row kept
    assert sorted(part["lsoa21_code"]) == ["", "E01990001", "E01990002", "E01990003", "E01990004"]
    assert info["lsoa"]["unknown_code"] == 3
    assert np.allclose(sorted(part["x"]), [508000, 514683, 525000, 533000, 545000], atol=1.0)


def test_build_replaces_its_own_folder_but_never_another(built, tmp_path):
    from hotspots.geo.history import build_history

    home, root, _ = built
    again = build_history(home, tmp_path / "p", forces=["hertfordshire"], first_month="2025-01", last_month="2025-02")
    assert again["months"] == ["2025-01", "2025-02"] and again["rows_read"] == 12
    again = build_history(home, tmp_path / "p", first_month="2025-02", last_month="2025-02")
    assert sorted(p.name for p in (tmp_path / "p" / "force=hertfordshire").iterdir()) == ["month=2025-02"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InputFileError, match="not a history build"):
        build_history(home, tmp_path / "other")
    with pytest.raises(InputFileError, match="no police.uk street-level files"):
        build_history(home, tmp_path / "q", forces=["kent"])



def test_a_failed_build_leaves_the_previous_build_and_no_half_written_copy(built, tmp_path, monkeypatch):
    import hotspots.geo.history as history

    home, _, _ = built
    history.build_history(home, tmp_path / "p", first_month="2025-02", last_month="2025-02")
    calls = []

    def fail_on_second(root, force, month, points):
        calls.append(month)
        if len(calls) == 2:
            raise OSError("disk full")
        return write_partition(root, force, month, points)

    monkeypatch.setattr(history, "write_partition", fail_on_second)
    with pytest.raises(OSError, match="disk full"):
        history.build_history(home, tmp_path / "p")
    assert not (tmp_path / "p.building").exists()
    assert sorted(p.name for p in (tmp_path / "p" / "force=hertfordshire").iterdir()) == ["month=2025-02"]

def test_gi_star_per_year_equals_gi_star_on_the_rows(built, tmp_path):
    """Totals by lattice cell, then Gi*, give what make_grid + assign_to_cells + gi_star give on the rows."""
    from hotspots.detect.gistar import gi_star
    from hotspots.detect.history import analyse_history
    from hotspots.geo import Geography, assign_to_cells, grid_weights, make_grid
    from hotspots.io.police_uk import read_police_uk

    home, root, _ = built
    info = analyse_history(root, tmp_path / "out", data_dir=home)
    periods = pd.read_csv(tmp_path / "out" / "periods.csv", dtype={"period": str})
    assert periods["period"].tolist() == ["2024", "2025"] and periods["months_used"].tolist() == [1, 2]
    assert periods["crimes_in_study_area"].tolist() == [4, 8] and periods["crimes_outside_study_area"].tolist() == [1, 2]
    assert info["aggregation"]["rows"] == 15
    cells = pd.read_parquet(tmp_path / "out" / "gi_star_cells.parquet")
    got = cells[cells["period"] == "2025"]
    # the same year computed directly from the rows, in memory
    rows = read_police_uk(home / "police_uk", first_month="2025-01", last_month="2025-12").points
    grid = make_grid(Geography(home, "E23000027").force, 250.0)
    cell = assign_to_cells(rows["x"].to_numpy(), rows["y"].to_numpy(), grid)
    counts = np.bincount(cell[cell >= 0], minlength=len(grid))
    want = gi_star(counts.astype(float), grid_weights(grid))
    params = grid.attrs["grid"]
    key = pd.DataFrame({"col": grid["col"] + round(params["x0"] / 250), "row": grid["row"] + round(params["y0"] / 250),
                        "count_direct": counts, "z_direct": want["gi_z"].to_numpy(), "class_direct": want["gi_class"].astype(str)})
    both = got.merge(key, on=["col", "row"], how="outer", indicator=True)
    assert (both["_merge"] == "both").all() and len(got) == len(grid)
    assert (both["count"] == both["count_direct"]).all()
    assert np.allclose(both["gi_z"], both["z_direct"]) and (both["gi_class"] == both["class_direct"]).all()
    assert (got["x_centre"] % 250 == 125).all() and (got["y_centre"] % 250 == 125).all()  # centres of lattice cells
    hot = pd.read_csv(tmp_path / "out" / "hot_cold_cells.csv")
    assert set(hot["gi_class"]) <= {"hot_99", "hot_95", "hot_90", "cold_90", "cold_95", "cold_99"}
    assert len(pd.read_parquet(tmp_path / "out" / "lsoa_period_totals.parquet")) > 0


def test_a_month_missing_for_one_force_is_left_out_of_that_year():
    from hotspots.detect.history import _periods

    got = list(_periods({"kent": ["2024-12", "2025-01", "2025-02"], "essex": ["2025-01"]}))
    assert got == [("2024", ["kent"], ["2024-12"], []), ("2025", ["essex", "kent"], ["2025-01"], [("2025-02", ["kent"])])]


def test_history_commands(tmp_path, capsys):
    pytest.importorskip("duckdb")
    from test_cli import make_home, run_main

    home = make_home(tmp_path / "home")
    code, out, err = run_main(["--data", str(home), "--out", str(tmp_path / "out"), "history", "build"], capsys)
    assert code == 0, err
    assert "rows read 18 from 3 file(s); written 15 to 3 partitions" in out and "dropped 3: no_coordinates" in out
    code, out, err = run_main(["--data", str(home), "--out", str(tmp_path / "out"), "history", "analyse"], capsys)
    assert code == 0, err
    assert "2025: 2 month(s)" in out and (tmp_path / "out" / "history" / "periods.csv").is_file()
    code, out, err = run_main(["--data", str(home), "--out", str(tmp_path / "none"), "history", "analyse"], capsys)
    assert code != 0 and "no force-month partitions" in err
