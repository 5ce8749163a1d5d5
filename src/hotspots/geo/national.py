"""All police.uk history on one machine, out of core: force-month Parquet partitions aggregated by DuckDB.

A national multi-year run does not hold every row in memory (about 6 million
rows a year since 2010).  The records are kept as Parquet partitions the way
police.uk publishes them, one per force and month
(``<root>/force=<slug>/month=<YYYY-MM>/part-0.parquet``, columns
:data:`PARTITION_COLUMNS`), and an established engine does the out-of-core
group-by:

* :func:`aggregate_partitions` with ``engine="duckdb"`` (default): one DuckDB
  query per table, streamed over the partitions with a memory limit (DuckDB
  spills to disk beyond it);
* ``engine="dask"``: the same tables with ``dask.dataframe`` on a Dask
  scheduler (a ``distributed`` cluster when ``scheduler`` is given: an
  address, or ``"local:N"`` for a local cluster of N single-threaded workers),
  for when one machine is not enough.

Both write the same two tables (identical totals, tested): counts by
LSOA 2021 x month x crime type, and counts by cell of the national square
lattice x month (cell ``(col, row) = (floor(x / s), floor(y / s))``, the
lattice every square grid of cell size ``s`` shares, see
:mod:`hotspots.geo.grid`).  Statistics then run once on these totals, never on
the rows.  Both engines are optional dependencies (``pip install
hotspots[national]``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hotspots._errors import ConfigError, DataNotFoundError

__all__ = ["PARTITION_COLUMNS", "write_partition", "aggregate_partitions", "read_totals"]

#: columns of a partition file (force and month are in the folder names)
PARTITION_COLUMNS = ("x", "y", "crime_type", "lsoa21_code")
BY_AREA = "by_lsoa_month_type.parquet"
BY_CELL = "by_cell_month.parquet"


def write_partition(root: str | os.PathLike, force: str, month: str, points: pd.DataFrame) -> Path:
    """Write one force-month partition (atomically); returns its path.

    Examples
    --------
    >>> import tempfile
    >>> pts = pd.DataFrame({"x": [1.0], "y": [2.0], "crime_type": ["Burglary"], "lsoa21_code": ["E01000001"]})
    >>> with tempfile.TemporaryDirectory() as root:
    ...     write_partition(root, "kent", "2025-01", pts).relative_to(root).as_posix()
    'force=kent/month=2025-01/part-0.parquet'
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    missing = [c for c in PARTITION_COLUMNS if c not in points]
    if missing:
        raise ValueError(f"partition {force} {month}: missing columns {missing}; need {list(PARTITION_COLUMNS)}")
    folder = Path(root) / f"force={force}" / f"month={month}"
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table({
        "x": pa.array(points["x"].to_numpy(np.float64)),
        "y": pa.array(points["y"].to_numpy(np.float64)),
        "crime_type": pa.array(points["crime_type"].astype(str).to_numpy(object), pa.string()),
        "lsoa21_code": pa.array(points["lsoa21_code"].astype(str).to_numpy(object), pa.string()),
    })
    path = folder / "part-0.parquet"
    tmp = folder / ".part-0.parquet.tmp"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    return path


def _glob(root: Path) -> str:
    if not any(root.glob("force=*/month=*/*.parquet")):
        raise DataNotFoundError(f"no force-month partitions under {root}",
                                hint="write them with hotspots.geo.national.write_partition "
                                     "(<root>/force=<slug>/month=<YYYY-MM>/part-0.parquet)")
    return str(root / "force=*" / "month=*" / "*.parquet")


def aggregate_partitions(root: str | os.PathLike, out: str | os.PathLike, *, cell_size: float = 250.0,
                         engine: str = "duckdb", memory_limit: str = "3GB", threads: int | None = None,
                         scheduler: str | None = None) -> dict[str, Any]:
    """Count the partitions' rows by LSOA x month x crime type and by lattice cell x month.

    Parameters
    ----------
    root
        Folder of ``force=<slug>/month=<YYYY-MM>/*.parquet`` partitions.
    out
        Folder for the two tables (:data:`BY_AREA`, :data:`BY_CELL`, Parquet).
    cell_size
        Lattice spacing in metres (the cells of every square grid of this size).
    engine : {"duckdb", "dask"}
    memory_limit
        DuckDB's memory limit (it spills to ``out/.duckdb-tmp`` beyond it); per
        worker for a local Dask cluster.
    threads
        DuckDB threads (default: the CPUs this process may use).
    scheduler
        Dask only: a scheduler address, or ``"local:N"`` for a local cluster of N
        single-threaded worker processes; ``None`` uses Dask's default
        (threads in this process).

    Returns
    -------
    dict
        ``rows`` (rows read), ``area_rows`` and ``cell_rows`` (rows of the two
        tables), ``seconds``, ``engine``, and the two tables' paths.

    Examples
    --------
    >>> import tempfile
    >>> pts = pd.DataFrame({"x": [10.0, 260.0, 270.0], "y": [10.0, 10.0, 20.0],
    ...                     "crime_type": ["Burglary"] * 3, "lsoa21_code": ["E1", "E1", "E2"]})
    >>> with tempfile.TemporaryDirectory() as root:
    ...     _ = write_partition(root, "kent", "2025-01", pts)
    ...     info = aggregate_partitions(root, root + "/totals")
    ...     by_area, by_cell = read_totals(root + "/totals")
    >>> info["rows"], by_area["count"].tolist(), by_cell[["col", "row", "count"]].values.tolist()
    (3, [2, 1], [[0, 0, 1], [1, 0, 2]])
    """
    root, out = Path(root), Path(out)
    pattern = _glob(root)
    if not (isinstance(cell_size, (int, float)) and cell_size > 0):
        raise ConfigError(f"cell_size must be a positive number of metres, got {cell_size!r}", hint="e.g. cell_size=250")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if engine == "duckdb":
        info = _duckdb(pattern, out, float(cell_size), memory_limit, threads)
    elif engine == "dask":
        info = _dask(root, out, float(cell_size), memory_limit, scheduler)
    else:
        raise ConfigError(f"engine must be 'duckdb' or 'dask', got {engine!r}", hint="use engine='duckdb'")
    return {**info, "engine": engine, "seconds": round(time.perf_counter() - t0, 3),
            "by_area": str(out / BY_AREA), "by_cell": str(out / BY_CELL)}


def _duckdb(pattern: str, out: Path, cell: float, memory_limit: str, threads: int | None) -> dict:
    try:
        import duckdb
    except ImportError as exc:
        raise ConfigError("the national aggregation needs DuckDB", hint="pip install 'hotspots[national]'") from exc
    con = duckdb.connect()
    try:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"SET threads = {int(threads or len(os.sched_getaffinity(0)))}")
        con.execute(f"SET temp_directory = '{out / '.duckdb-tmp'}'")
        con.execute("SET preserve_insertion_order = false")
        src = f"read_parquet('{pattern}', hive_partitioning = true)"
        rows = con.execute(f"SELECT count(*) FROM {src}").fetchone()[0]
        con.execute(f"""COPY (SELECT lsoa21_code, CAST(month AS VARCHAR) AS month, crime_type, count(*) AS count
                        FROM {src} GROUP BY ALL ORDER BY ALL) TO '{out / BY_AREA}' (FORMAT parquet)""")
        con.execute(f"""COPY (SELECT CAST(floor(x / {cell}) AS BIGINT) AS col, CAST(floor(y / {cell}) AS BIGINT) AS row,
                               CAST(month AS VARCHAR) AS month, count(*) AS count
                        FROM {src} GROUP BY ALL ORDER BY ALL) TO '{out / BY_CELL}' (FORMAT parquet)""")
        area_rows = con.execute(f"SELECT count(*) FROM '{out / BY_AREA}'").fetchone()[0]
        cell_rows = con.execute(f"SELECT count(*) FROM '{out / BY_CELL}'").fetchone()[0]
    finally:
        con.close()
    return {"rows": int(rows), "area_rows": int(area_rows), "cell_rows": int(cell_rows)}


def _dask(root: Path, out: Path, cell: float, memory_limit: str, scheduler: str | None) -> dict:
    try:
        import dask.dataframe as dd
    except ImportError as exc:
        raise ConfigError("engine='dask' needs dask", hint="pip install 'dask[dataframe,distributed]'") from exc
    client = cluster = None
    if scheduler:
        from dask.distributed import Client, LocalCluster

        if scheduler.startswith("local:"):
            cluster = LocalCluster(n_workers=int(scheduler.split(":", 1)[1]), threads_per_worker=1,
                                   memory_limit=memory_limit, processes=True, dashboard_address=None)
            client = Client(cluster)
        else:
            client = Client(scheduler)
    try:
        import dask

        # files of a few thousand rows each: several files per task (~64 MB), or task overhead dominates
        df = dd.read_parquet(str(root), columns=list(PARTITION_COLUMNS) + ["month"], dataset={"partitioning": "hive"},
                             blocksize="64MiB", aggregate_files=True)
        # dictionary-encoded strings arrive as categoricals whose categories differ by partition: plain strings
        df = df.assign(month=df["month"].astype(str), lsoa21_code=df["lsoa21_code"].astype(str),
                       crime_type=df["crime_type"].astype(str), col=(df["x"] // cell).astype("int64"),
                       row=(df["y"] // cell).astype("int64"))
        by_area = df.groupby(["lsoa21_code", "month", "crime_type"]).size(split_out=8).rename("count").reset_index()
        by_cell = df.groupby(["col", "row", "month"]).size(split_out=8).rename("count").reset_index()
        writes = [frame.to_parquet(str(out / (name + ".dask")), write_index=False, overwrite=True, compute=False)
                  for frame, name in ((by_area, BY_AREA), (by_cell, BY_CELL))]
        rows, *_ = dask.compute(df.shape[0], *writes)  # one pass over the partitions
        rows = int(rows)
        area_rows, cell_rows = (_sorted_single_file(out, name) for name in (BY_AREA, BY_CELL))
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    return {"rows": rows, "area_rows": area_rows, "cell_rows": cell_rows}


def _sorted_single_file(out: Path, name: str) -> int:
    """Dask's partitioned output as one sorted file, as DuckDB writes it (DuckDB sorts it, out of core)."""
    import duckdb

    con = duckdb.connect()
    try:
        keys = "lsoa21_code, month, crime_type" if name == BY_AREA else "col, row, month"
        con.execute(f"""COPY (SELECT {keys}, CAST(count AS BIGINT) AS count FROM read_parquet('{out / (name + '.dask')}/*.parquet')
                        ORDER BY ALL) TO '{out / name}' (FORMAT parquet)""")
        return int(con.execute(f"SELECT count(*) FROM '{out / name}'").fetchone()[0])
    finally:
        con.close()


def read_totals(out: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables written by :func:`aggregate_partitions` (small enough for memory: totals, not rows)."""
    out = Path(out)
    return pd.read_parquet(out / BY_AREA), pd.read_parquet(out / BY_CELL)
