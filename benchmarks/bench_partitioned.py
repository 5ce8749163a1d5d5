"""All police.uk history out of core, and point-in-polygon counting beside DuckDB spatial and SedonaDB.

    python benchmarks/bench_partitioned.py --years 10 --rows-per-year 6000000     # the issue-18 workload
    python benchmarks/bench_partitioned.py --years 1 --rows-per-year 1000000      # a documented fraction

Every measured step runs in its own clean child process (:func:`_util.run_measured`: CPU, peak RSS of the
largest process, sampled peak PSS of the whole process tree).

1. **generate**: ``years`` x ``rows-per-year`` synthetic crimes, partitioned by force and month as
   ``force=<slug>/month=<YYYY-MM>/part-0.parquet`` (the layout of :mod:`hotspots.geo.national`).  Year k
   draws its crimes with replacement from the seeded national workload (``synth.py``: 6 M crimes on
   634,000 map points) with ``default_rng(seed + 1000 + k)``, so every machine builds the same data.
   Built once into ``$HOTSPOTS_BENCH_CACHE``.
2. **duckdb**: :func:`hotspots.geo.national.aggregate_partitions` (DuckDB, memory limit 3 GB, 2 threads):
   counts by LSOA x month x crime type and by 250 m lattice cell x month.
3. **dask**: the same with ``engine="dask"`` on a local ``distributed`` cluster of 2 single-threaded
   worker processes; the totals are compared with DuckDB's (identical, or the benchmark fails).
4. **pip**: ``pip-points`` points (the first crimes of the national workload) counted into the 35,000
   synthetic LSOA polygons by hotspots (``assign_points`` + ``bincount``), by DuckDB spatial
   (``ST_Contains`` join) and by SedonaDB (``ST_Contains`` join), each on the raw points and on the
   distinct locations weighted by their counts; counts per polygon compared with hotspots'.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import synth  # noqa: E402
from _util import child_json, run_measured  # noqa: E402

HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- children
def generate(root: Path, years: int, rows_per_year: int) -> dict:
    import geopandas as gpd
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = synth.build()
    z = np.load(base / "points.npz")
    lsoa = gpd.read_parquet(base / "lsoa.parquet")
    districts = gpd.read_parquet(base / "districts.parquet")
    dist_index = {c: i for i, c in enumerate(districts["area_code"])}
    lsoa_force = districts["force"].to_numpy()[[dist_index[c] for c in lsoa["district_code"]]]
    forces, force_code = np.unique(lsoa_force, return_inverse=True)
    lsoa_codes = pa.array(lsoa["area_code"].to_numpy(object), pa.string())
    types = pa.array(list(synth.CRIME_TYPES), pa.string())
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    files = 0
    for k in range(years):
        rng = np.random.default_rng(synth.Spec().seed + 1000 + k)
        pick = rng.integers(0, len(z["loc"]), rows_per_year)
        loc, month, ctype = z["loc"][pick], z["month"][pick], z["ctype"][pick]
        lsoa_i = z["loc_lsoa"][loc]
        force = force_code[lsoa_i]
        order = np.lexsort((month, force))
        key = force[order].astype(np.int64) * 100 + month[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        ends = np.r_[starts[1:], len(key)]
        for a, b in zip(starts, ends):
            sel = order[a:b]
            f, m = forces[force[sel[0]]], f"{2015 + k}-{int(month[sel[0]]) + 1:02d}"
            folder = tmp / f"force={f}" / f"month={m}"
            folder.mkdir(parents=True, exist_ok=True)
            table = pa.table({
                "x": z["loc_x"][loc[sel]], "y": z["loc_y"][loc[sel]],
                "crime_type": pa.DictionaryArray.from_arrays(pa.array(ctype[sel].astype(np.int32)), types),
                "lsoa21_code": pa.DictionaryArray.from_arrays(pa.array(lsoa_i[sel].astype(np.int32)), lsoa_codes),
            })
            pq.write_table(table, folder / "part-0.parquet", compression="zstd")
            files += 1
        print(f"  year {k + 1}/{years}: {rows_per_year:,} rows", file=sys.stderr, flush=True)
    tmp.rename(root)
    info = {"rows": years * rows_per_year, "partitions": files, "years": years, "forces": int(len(forces))}
    (root / "done.json").write_text(json.dumps(info))
    return info


def aggregate(root: Path, out: Path, engine: str) -> dict:
    from hotspots.geo.national import aggregate_partitions

    kw = {"scheduler": "local:2", "memory_limit": "2.5GB"} if engine == "dask" else {"threads": 2, "memory_limit": "3GB"}
    return aggregate_partitions(root, out, cell_size=250.0, engine=engine, **kw)


def _pip_inputs(n: int):
    points, lsoa, _, _ = synth.load(synth.build(), n=n)
    return points["x"].to_numpy(), points["y"].to_numpy(), lsoa


def pip(engine: str, n: int, distinct: bool, tmp: Path) -> dict:
    """Counts per polygon (in the order of the LSOA table) by one engine; timed from data in memory/Parquet."""
    x, y, lsoa = _pip_inputs(n)
    timings = {}
    if engine == "hotspots":
        from hotspots.geo import assign_points

        t = time.process_time()
        pairs = assign_points(x, y, lsoa)
        counts = np.bincount(pairs["area"].to_numpy(), minlength=len(lsoa))
        timings["count_cpu_s"] = time.process_time() - t
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pts, polys = tmp / "points.parquet", tmp / "polygons.parquet"
        if not pts.exists():
            pq.write_table(pa.table({"x": x, "y": y}), pts)
            pq.write_table(pa.table({"i": np.arange(len(lsoa)), "wkb": lsoa.geometry.to_wkb().to_numpy()}), polys)
        src = (f"(SELECT x, y, count(*) AS n FROM read_parquet('{pts}') GROUP BY x, y)" if distinct
               else f"(SELECT x, y, 1 AS n FROM read_parquet('{pts}'))")
        t = time.process_time()
        if engine == "duckdb":
            import duckdb
            import duckdb_extension_spatial

            con = duckdb.connect()
            ext = Path(duckdb_extension_spatial.__file__).parent / "extensions" / f"v{duckdb.__version__}" / "spatial.duckdb_extension"
            con.execute(f"LOAD '{ext}'")
            con.execute("SET threads = 2")
            con.execute(f"CREATE TABLE polys AS SELECT i, ST_GeomFromWKB(wkb) AS g FROM read_parquet('{polys}')")
            con.execute(f"CREATE TABLE pts AS SELECT ST_Point(x, y) AS p, n FROM {src}")
            res = con.execute("SELECT i, sum(n) FROM pts JOIN polys ON ST_Contains(g, p) GROUP BY i").fetchall()
        else:
            import sedonadb

            sd = sedonadb.connect()
            sd.read_parquet(str(polys)).to_view("polys_raw")
            sd.read_parquet(str(pts)).to_view("pts_raw")
            sd.sql("SELECT i, ST_GeomFromWKB(wkb) AS g FROM polys_raw").to_view("polys")
            sub = src.replace(f"read_parquet('{pts}')", "pts_raw")
            sd.sql(f"SELECT ST_Point(x, y) AS p, n FROM {sub}").to_view("pts")
            res = sd.sql("SELECT i, sum(n) AS c FROM pts JOIN polys ON ST_Contains(g, p) GROUP BY i").to_pandas()
            res = list(zip(res["i"], res["c"]))
        counts = np.zeros(len(lsoa), np.int64)
        for i, c in res:
            counts[int(i)] = int(c)
        timings["count_cpu_s"] = time.process_time() - t
    np.save(tmp / f"counts-{engine}-{'distinct' if distinct else 'raw'}.npy", counts)
    return {"points": int(n), "polygons": int(len(lsoa)), "total": int(counts.sum()), **timings}


# --------------------------------------------------------------------------- the section
def _child(*args) -> dict:
    res = run_measured([sys.executable, str(HERE / "bench_partitioned.py"), *map(str, args)])
    out = child_json(res)
    out.update({k: res[k] for k in ("wall_s", "cpu_s", "maxrss_mb", "tree_pss_peak_mb", "load_avg_1min")})
    return out


def _identical_totals(a: Path, b: Path) -> bool:
    import duckdb

    from hotspots.geo.national import BY_AREA, BY_CELL

    con = duckdb.connect()
    for name in (BY_AREA, BY_CELL):
        q = (f"SELECT count(*) FROM ((SELECT * FROM '{a / name}' EXCEPT ALL SELECT * FROM '{b / name}') UNION ALL "
             f"(SELECT * FROM '{b / name}' EXCEPT ALL SELECT * FROM '{a / name}'))")
        if con.execute(q).fetchone()[0] != 0:
            return False
    return True


def run(years: int, rows_per_year: int, pip_points: int = 6_000_000, engines=("duckdb", "dask")) -> dict:
    cache = synth.cache_root() / f"history-{years}x{rows_per_year}-v1"
    out: dict = {"years": years, "rows_per_year": rows_per_year, "path": str(cache)}
    if not (cache / "done.json").exists():
        out["generate"] = _child("generate", cache, years, rows_per_year)
    info = json.loads((cache / "done.json").read_text())
    out.update(rows=info["rows"], partitions=info["partitions"])
    work = Path(str(cache) + "-out")
    shutil.rmtree(work, ignore_errors=True)
    out["aggregations"] = {}
    for engine in engines:
        print(f"   aggregate with {engine}", flush=True)
        out["aggregations"][engine] = _child("aggregate", cache, work / engine, engine)
    if {"duckdb", "dask"} <= set(engines):
        out["identical_totals"] = _identical_totals(work / "duckdb", work / "dask")
        assert out["identical_totals"], "DuckDB and Dask totals differ"
    if not pip_points:
        shutil.rmtree(work, ignore_errors=True)
        return out
    pip_dir = work / "pip"
    pip_dir.mkdir(parents=True, exist_ok=True)
    engines_pip = {}
    for engine in ("hotspots", "duckdb", "sedonadb"):
        for distinct in ((False,) if engine == "hotspots" else (False, True)):
            label = engine + (" (distinct locations)" if distinct else "")
            print(f"   point in polygon: {label}", flush=True)
            try:
                engines_pip[label] = _child("pip", engine, pip_points, int(distinct), pip_dir)
            except Exception as exc:  # a peer that fails is reported, not fatal
                engines_pip[label] = {"error": f"{type(exc).__name__}: {str(exc)[-300:]}"}
    ours = np.load(pip_dir / "counts-hotspots-raw.npy")
    for label, r in engines_pip.items():
        f = pip_dir / f"counts-{label.split()[0]}-{'distinct' if 'distinct' in label else 'raw'}.npy"
        if "error" not in r and f.exists():
            theirs = np.load(f)
            r["identical"] = bool((theirs == ours).all())
            r["polygons_differing"] = int((theirs != ours).sum())
    out["pip"] = {"points": pip_points, "polygons": 35_000, "engines": engines_pip}
    shutil.rmtree(work, ignore_errors=True)
    return out


def to_markdown(r: dict) -> list[str]:
    lines = ["", f"Out-of-core national history: {r['rows']:,} synthetic rows ({r['years']} year(s) x {r['rows_per_year']:,}) "
             f"in {r['partitions']:,} force-month Parquet partitions (`bench_partitioned.py`); each step a clean child:", "",
             "| step | wall | CPU | peak RSS (largest process) | peak PSS (process tree) | load |", "|---|---|---|---|---|---|"]
    for name, x in [("generate", r.get("generate"))] + [(f"aggregate: {k}", v) for k, v in r["aggregations"].items()]:
        if x:
            lines.append(f"| {name} | {x['wall_s']:.1f} s | {x['cpu_s']:.1f} s | {x['maxrss_mb']:,.0f} MB | "
                         f"{x['tree_pss_peak_mb']:,.0f} MB | {x['load_avg_1min']:.1f} |")
    if "identical_totals" in r:
        lines.append(f"\nDuckDB and Dask (local cluster, 2 workers) totals identical: {r['identical_totals']}.")
    p = r.get("pip")
    if not p:
        return lines
    lines += ["", f"{p['points']:,} points counted into {p['polygons']:,} polygons (each engine a clean child; the count "
              "CPU is the join and group-by alone, after loading):", "",
              "| engine | wall (child) | CPU (child) | count CPU | peak RSS | identical counts |", "|---|---|---|---|---|---|"]
    for label, x in p["engines"].items():
        if "error" in x:
            lines.append(f"| {label} | failed: `{x['error'][:120]}` | | | | |")
        else:
            lines.append(f"| {label} | {x['wall_s']:.1f} s | {x['cpu_s']:.1f} s | {x['count_cpu_s']:.2f} s | "
                         f"{x['maxrss_mb']:,.0f} MB | {x.get('identical')} ({x.get('polygons_differing', '-')} polygons differ) |")
    return lines


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("generate", "aggregate", "pip"):
        cmd, args = sys.argv[1], sys.argv[2:]
        if cmd == "generate":
            res = generate(Path(args[0]), int(args[1]), int(args[2]))
        elif cmd == "aggregate":
            res = aggregate(Path(args[0]), Path(args[1]), args[2])
        else:
            res = pip(args[0], int(args[1]), bool(int(args[2])), Path(args[3]))
        print(json.dumps(res))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--years", type=int, default=1)
    ap.add_argument("--rows-per-year", type=int, default=1_000_000)
    ap.add_argument("--pip-points", type=int, default=6_000_000)
    ap.add_argument("--engines", nargs="+", default=["duckdb", "dask"])
    a = ap.parse_args()
    r = run(a.years, a.rows_per_year, a.pip_points, tuple(a.engines))
    print("\n".join(to_markdown(r)))
    print(json.dumps(r))


if __name__ == "__main__":
    main()
