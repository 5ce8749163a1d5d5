"""Run the hotspots benchmarks and record the results.

    python3 benchmarks/run.py --quick     # ~5 min once the synthetic data exist
    python3 benchmarks/run.py --full      # ~15 min; the first run also builds ~1.3 GB of CSVs (~3 min)

Appends a section to benchmarks/results.md, or to the file given with
--results-md (machine, load, every measurement against its target), and writes
the raw numbers to benchmarks/results/<date>-<mode>.json.  See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import HERE, child_json, cpu_probe, launcher_floor_mb, machine_info, run_measured  # noqa: E402

MODES = {
    "quick": {"national_points": 1_000_000, "ingest_forces": "7", "scaling": [100_000, 300_000, 1_000_000],
              "compare_points": 1_000_000, "gi_side": 300, "perm_side": 100,
              "partitioned_years": 1, "partitioned_rows_per_year": 1_000_000},
    "full": {"national_points": 6_000_000, "ingest_forces": "all", "scaling": [100_000, 300_000, 1_000_000, 3_000_000, 6_000_000],
             "compare_points": 6_000_000, "gi_side": 300, "perm_side": 100,
             "partitioned_years": 10, "partitioned_rows_per_year": 6_000_000},
}
SECTIONS = ("herts", "import", "national", "scaling", "compare", "partitioned")


def child(script: str, *args) -> dict:
    res = run_measured([sys.executable, str(HERE / script), *map(str, args)])
    out = child_json(res)
    out["child"] = {k: res[k] for k in ("wall_s", "cpu_s", "maxrss_mb", "tree_pss_peak_mb", "load_avg_1min")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_const", dest="mode", const="quick")
    mode.add_argument("--full", action="store_const", dest="mode", const="full")
    ap.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    ap.add_argument("--no-record", action="store_true", help="print, do not write results.md / results/*.json")
    ap.add_argument("--results-md", type=Path, default=HERE / "results.md",
                    help="markdown file the section is appended to (default benchmarks/results.md)")
    ap.add_argument("--history", nargs=2, type=int, metavar=("YEARS", "ROWS_PER_YEAR"),
                    help="size of the out-of-core national history (partitioned section); default by mode")
    ap.add_argument("--history-engines", nargs="+", default=["duckdb", "dask"], choices=["duckdb", "dask"],
                    help="engines of the out-of-core aggregation (partitioned section)")
    ap.add_argument("--pip-points", type=int, default=6_000_000,
                    help="points of the point-in-polygon comparison (partitioned section); 0 leaves it out")
    a = ap.parse_args()
    mode = a.mode or "quick"
    cfg = dict(MODES[mode])
    if a.history:
        cfg["partitioned_years"], cfg["partitioned_rows_per_year"] = a.history
    sections = a.only or SECTIONS
    results: dict = {"mode": mode, "config": cfg, "machine": machine_info(), "probes": {}}
    results["machine"]["launcher_floor_mb"] = launcher_floor_mb()
    t0 = time.perf_counter()

    import synth

    if {"national", "scaling", "compare"} & set(sections):
        print("== synthetic national workload", flush=True)
        t = time.perf_counter()
        root = synth.build(synth.Spec(), csv="national" in sections)
        results["synthetic"] = {**json.loads((root / "done.json").read_text()), "path": str(root),
                                "prepare_s": round(time.perf_counter() - t, 1)}

    def section(name, title, fn):
        if name not in sections:
            return
        print(f"== {title}", flush=True)
        results["probes"][name] = cpu_probe()  # the machine's speed just before this section
        try:
            results[name] = fn()
        except Exception as exc:  # record and go on: one broken section must not lose the others
            results.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"[-2000:]
            print(f"   FAILED: {results['errors'][name]}", flush=True)

    import bench_herts
    import bench_import

    section("herts", "Hertfordshire run (cold, warm) and maps", bench_herts.run)
    section("import", "import cost", bench_import.run)
    section("national", f"national workload from CSV (ingest {cfg['ingest_forces']} forces)",
            lambda: child("bench_national.py", "--points", cfg["national_points"], "--ingest", cfg["ingest_forces"]))

    def scaling():
        out = []
        for n in cfg["scaling"]:
            print(f"   {n:,} points", flush=True)
            out.append(child("bench_national.py", "--points", n))
        return out

    section("scaling", "scaling", scaling)
    section("compare", "against geopandas.sjoin and esda",
            lambda: child("bench_compare.py", "--points", cfg["compare_points"], "--gi-side", cfg["gi_side"],
                          "--perm-side", cfg["perm_side"]))
    section("partitioned", "out-of-core national history (Parquet partitions, DuckDB, Dask), point-in-polygon peers",
            lambda: __import__("bench_partitioned").run(cfg["partitioned_years"], cfg["partitioned_rows_per_year"],
                                                        a.pip_points, tuple(a.history_engines)))
    results["machine"]["load_avg_end"] = os.getloadavg()
    results["elapsed_s"] = round(time.perf_counter() - t0, 1)
    md = to_markdown(results)
    print(md)
    if not a.no_record:
        (HERE / "results").mkdir(exist_ok=True)
        stamp = results["machine"]["date_utc"].replace(" ", "T").replace(":", "")
        (HERE / "results" / f"{stamp}-{mode}.json").write_text(json.dumps(results, indent=1))
        with open(a.results_md, "a") as f:
            f.write("\n" + md)


# --------------------------------------------------------------------------- report
def _fmt(v, unit="s"):
    if v is None:
        return "-"
    return f"{v:,.2f} {unit}" if isinstance(v, float) else f"{v:,} {unit}"


def targets(r: dict) -> list[tuple[str, str, str, str, bool | None]]:
    """(what, target, measured wall, measured CPU, met) rows; met is judged on what the target names."""
    rows = []
    full = r["mode"] == "full"
    if "herts" in r:
        c, w1, ca = r["herts"]["cold"], r["herts"]["workers1"], r["herts"]["cached"]
        rows.append(("Hertfordshire `hotspots run`, `HOTSPOTS_WORKERS=1`, no cache: CPU", "< 20 s CPU", _fmt(w1["wall_s"]),
                     _fmt(w1["cpu_s"]), w1["cpu_s"] < 20))
        rows.append(("Hertfordshire `hotspots run`, default workers, cold cache: wall", "< 15 s", _fmt(c["wall_s"]),
                     _fmt(c["cpu_s"]), c["wall_s"] < 15))
        rows.append(("Hertfordshire `hotspots run`, default workers, warm cache (records, areas, maps): wall", "< 8 s", _fmt(ca["wall_s"]),
                     _fmt(ca["cpu_s"]), ca["wall_s"] < 8))
        maps = r["herts"]["maps"]
        if maps:
            worst = max(m["drawn_s"] if m["drawn_s"] is not None else float("inf") for m in maps)
            rows.append((f"map loaded and polygons drawn in headless Chromium (worst of {len(maps)} maps)", "< 2 s",
                         _fmt(worst), "-", worst < 2))
        else:
            rows.append(("map loads in headless Chromium", "< 2 s", "no maps/ in the run output yet", "-", None))
    if "import" in r:
        first = r["import"]["first_statistic"]
        rows.append(("fresh process: import stats+grid, first Gi* (100x100)", "no multi-second cost",
                     _fmt(first["process_wall_s"]), "-", first["process_wall_s"] < 2))
    if "national" in r:
        s, i = r["national"]["steps"], r["national"]["info"]
        tag = "" if full else f" ({i['points']:,} points, quick mode)"
        rows.append((f"aggregate {i['points']:,} points to {i['lsoas']:,} polygons (count_points){tag}", "< 8 s",
                     _fmt(s["count_lsoa_spatial"]["wall_s"]), _fmt(s["count_lsoa_spatial"]["cpu_s"]),
                     s["count_lsoa_spatial"]["wall_s"] < 8))
        rows.append((f"aggregate to the {i['cells']:,}-cell grid (assign_to_cells + bincount)", "< 0.5 s",
                     _fmt(s["grid_counts"]["wall_s"]), _fmt(s["grid_counts"]["cpu_s"]), s["grid_counts"]["wall_s"] < 0.5))
        gi_w = s["gi_star_fdr"]["wall_s"] + s["grid_weights"]["wall_s"]
        rows.append((f"Gi* + FDR on {i['cells']:,} cells (weights + gi_star)", "< 3 s", _fmt(gi_w),
                     _fmt(s["gi_star_fdr"]["cpu_s"] + s["grid_weights"]["cpu_s"]), gi_w < 3))
        rows.append((f"whole national workload{tag} (steps incl. ingest)", "< 60 s", _fmt(i["steps_wall_s"]),
                     _fmt(i["steps_cpu_s"]), i["steps_wall_s"] < 60))
        peak = r["national"]["child"]["maxrss_mb"]
        rows.append(("peak memory of the national workload", "< 6 GB", _fmt(peak / 1024, "GB"), "-", peak < 6 * 1024))
    if "compare" in r:
        c = r["compare"]
        if "aggregation" in c:
            agg = c["aggregation"]
            rows.append((f"count_points vs sjoin+groupby, {agg['points']:,} points (identical: {agg['identical_counts']}), CPU ratio",
                         ">= 3x", "-", f"{agg['ratio']}x", agg["ratio"] >= 3))
        if "gi_star" in c:
            gi = c["gi_star"]
            rows.append((f"gi_star vs esda G_Local, both analytic, {gi['cells']:,} cells (max z diff {gi['max_abs_z_diff']:.1e}), CPU ratio",
                         ">= 20x", "-", f"{gi['ratio']}x", gi["ratio"] >= 20))
    if "partitioned" in r:
        pt = r["partitioned"]
        for name, x in pt.get("aggregations", {}).items():
            what = (f"national history {pt['rows']:,} rows in {pt['partitions']:,} force-month Parquet partitions to LSOA x "
                    f"month x type and 250 m cell x month: {name}, peak tree PSS {x['tree_pss_peak_mb'] / 1024:.2f} GB")
            if name == "dask":  # the target: the same on a 2-worker local cluster, with identical totals
                same = pt.get("identical_totals")
                rows.append((what + f" (local cluster, 2 workers); totals identical to DuckDB's: {same}", "peak < 6 GB, identical",
                             _fmt(x["wall_s"]), _fmt(x["cpu_s"]),
                             None if same is None else x["tree_pss_peak_mb"] < 6 * 1024 and bool(same)))  # not compared: unjudged
            else:
                rows.append((what, "peak < 6 GB", _fmt(x["wall_s"]), _fmt(x["cpu_s"]), x["tree_pss_peak_mb"] < 6 * 1024))
        engines = pt.get("pip", {}).get("engines", {})
        ours = engines.get("hotspots", {})
        peers = {k: v for k, v in engines.items() if k != "hotspots" and "error" not in v}
        if ours and "error" not in ours and peers:
            best = min(peers, key=lambda k: peers[k]["count_cpu_s"])
            same = all(v.get("identical") for v in peers.values())
            rows.append((f"{pt['pip']['points']:,} points into {pt['pip']['polygons']:,} polygons: hotspots against the "
                         f"fastest peer ({best}), CPU of the count; identical counts: {same}",
                         "at least as fast", "-", f"{ours['count_cpu_s']:.2f} s vs {peers[best]['count_cpu_s']:.2f} s",
                         ours["count_cpu_s"] <= peers[best]["count_cpu_s"] and same))
    return rows


def to_markdown(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"## {m['date_utc']} UTC, `--{r['mode']}`",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu_model']}), {m['ram_gib']} GiB RAM, Python {m['python']}, {m['platform']}; "
        f"load average {m['load_avg_start'][0]:.1f} at start, {m['load_avg_end'][0]:.1f} at end "
        "(other processes share the cores: wall times above the CPU times mean waiting for a core).",
        "Every figure is measured in a clean child process started by a ~10 MB launcher (`_util.run_measured`): CPU is "
        "user + sys of the child and the workers it waited for; peak RSS is that of its largest single process "
        f"(the launcher's floor is {m.get('launcher_floor_mb', float('nan')):.1f} MB); tree PSS is the sampled peak of the "
        "whole process tree's proportional memory (sampled every 0.5 s). Speed probe (`_util.cpu_probe`, a fixed single-threaded job, lower is "
        "faster) before each section: " + ", ".join(f"{k} {v:.2f} s" for k, v in r.get("probes", {}).items()) + ".",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + f". Elapsed {r['elapsed_s']} s.",
        "",
        "| measurement | target | wall | CPU | met |",
        "|---|---|---|---|---|",
    ]
    for what, target, wall, cpu, met in targets(r):
        lines.append(f"| {what} | {target} | {wall} | {cpu} | {'yes' if met else ('n/a' if met is None else '**no**')} |")
    for name, err in r.get("errors", {}).items():
        lines.append(f"\nSection `{name}` failed: `{err.splitlines()[-1] if err.splitlines() else err}`")
    if "herts" in r:
        h = r["herts"]
        # the stages (the per-area entries, "hotspots.cache_hit: <area>" etc., are in the JSON, not the table)
        stages = [k for k in dict.fromkeys(k for run in ("cold", "cached", "workers1") if run in h
                                           for k in h[run]["stages"]) if ": " not in k]
        lines += ["", "Hertfordshire run (29 months, {:,} rows): wall / CPU / peak memory, and stage timings from manifest.json:".format(
            h["cold"]["rows_read"]), "", "| run | settings | wall | CPU | peak RSS | tree PSS | load | " + " | ".join(stages) + " |",
                  "|---|---|---|---|---|---|---|" + "---|" * len(stages)]
        for name in ("cold", "cached", "workers1"):
            if name not in h:
                continue
            x = h[name]
            env = " ".join(f"{k}={v if k != 'HOTSPOTS_CACHE' or v == 'off' else '<tmp>'}" for k, v in x.get("env", {}).items())
            lines.append(f"| {name} | `{env}` | {x['wall_s']:.1f} s | {x['cpu_s']:.1f} s | {x['maxrss_mb']:,.0f} MB | "
                         f"{x.get('tree_pss_peak_mb', 0):,.0f} MB | {x.get('load_avg_1min', float('nan')):.1f} | "
                         + " | ".join(f"{x['stages'].get(k, float('nan')):.2f}" for k in stages) + " |")
        if "cpu_probe_s" in h:
            lines.append(f"\nMachine speed probe (lower is faster): {h['cpu_probe_s'][0]:.2f} s before the runs, "
                         f"{h['cpu_probe_s'][1]:.2f} s after. With default workers the counts, outliers and evaluate stages "
                         "run in a second process beside hotspots, so their stage timings overlap.")
        if h["maps"]:
            lines += ["", "Maps of the cached run in headless Chromium (network blocked):", "",
                      "| map | size | load event | polygons drawn | page errors | blocked requests |", "|---|---|---|---|---|---|"]
            for mp in h["maps"]:
                lines.append(f"| `{mp['map']}` | {mp['bytes'] / 1e6:.1f} MB | {mp['load_s']} s | {mp['drawn_s']} s | "
                             f"{mp['page_errors']} | {mp['blocked_requests']} |")
    if "import" in r:
        lines += ["", "Import cost (fresh process each; `python -X importtime`):", "",
                  "| import | process wall | cumulative import | heaviest dependencies |", "|---|---|---|---|"]
        for row in r["import"]["importtime"]:
            deps = ", ".join(f"{k} {v:.2f}" for k, v in list(row["top_cumulative"].items())[:4])
            lines.append(f"| `{row['module']}` | {row['process_wall_s']:.2f} s | {row['cumulative_s'] or 0:.2f} s | {deps} |")
        f = r["import"]["first_statistic"]
        lines.append(f"\nFirst statistic in a fresh process: import stats+grid {f['import_stats_grid_s']} s, 100x100 grid + weights "
                     f"{f['grid_100x100_and_weights_s']} s, first gi_star {f['first_gi_star_s']} s (second {f['second_gi_star_s']} s); "
                     f"whole process {f['process_wall_s']} s. `hotspots --help`: {r['import']['cli_help_wall_s']} s.")
    if "national" in r:
        n = r["national"]
        lines += ["", f"National workload (synthetic England and Wales: {n['info']['points']:,} crimes, {n['info']['lsoas']:,} LSOA polygons, "
                  f"{n['info']['districts']} districts, {n['info']['cells']:,} cells of 250 m; peak RSS {n['child']['maxrss_mb']:,.0f} MB):", "",
                  "| step | wall | CPU | notes |", "|---|---|---|---|"]
        for name, s in n["steps"].items():
            notes = ", ".join(f"{k}={v}" for k, v in s.items() if k not in ("wall_s", "cpu_s"))
            lines.append(f"| {name} | {s['wall_s']:.2f} s | {s['cpu_s']:.2f} s | {notes} |")
    if r.get("scaling"):
        names = list(r["scaling"][-1]["steps"])
        lines += ["", "Scaling (each size in a fresh process; wall seconds, then peak RSS):", "",
                  "| points | " + " | ".join(names) + " | peak RSS |", "|---|" + "---|" * (len(names) + 1)]
        for s in r["scaling"]:
            lines.append(f"| {s['info']['points']:,} | " + " | ".join(f"{s['steps'][k]['wall_s']:.2f}" if k in s["steps"] else "-" for k in names)
                         + f" | {s['child']['maxrss_mb']:,.0f} MB |")
    if "compare" in r:
        c = r["compare"]
        lines += ["", "Side by side (one child process, same inputs; ratios are of CPU time):", "",
                  "| step | wall | CPU | notes |", "|---|---|---|---|"]
        for name, s in c["steps"].items():
            notes = ", ".join(f"{k}={v}" for k, v in s.items() if k not in ("wall_s", "cpu_s"))
            lines.append(f"| {name} | {s['wall_s']:.3f} s | {s['cpu_s']:.3f} s | {notes} |")
        if "gi_star" in c:
            lines.append(f"\nGi*, both analytic: {c['gi_star']['cells']:,} cells, {c['gi_star']['ratio']}x; z identical to "
                         f"{c['gi_star']['max_abs_z_diff']:.0e}.")
        if "moran" in c:
            mo = c["moran"]
            lines.append(f"Local Moran, both with 999 permutations: {mo['cells']:,} cells, {mo['ratio']}x; I identical to "
                         f"{mo['max_abs_i_diff']:.0e}; significance at 0.05 agrees on {mo['significance_agreement']:.1%} of cells "
                         f"(different random draws); numba installed: {mo['numba_installed']} (without it esda's first "
                         "permutation call compiles nothing).")
        if "kde" in c:
            k = c["kde"]
            lines.append(f"KDE: kde_quartic against the exact direct quartic sum ({k['points']:,} points, {k['nodes']:,} nodes, "
                         f"h {k['bandwidth_m']:.0f} m, {k['cell_m']:.0f} m lattice): {k['ratio']}x; largest difference "
                         f"{k['max_diff_relative_to_peak']:.1e} of the peak.")
        if "clusters" in c:
            k = c["clusters"]
            lines.append(f"Clusters: cluster_locations ({k['unique_locations']:,} unique locations) against sklearn DBSCAN on "
                         f"{k['points']:,} raw points: {k['ratio']}x; {k['clusters_hotspots']} vs {k['clusters_sklearn']} "
                         f"clusters, adjusted Rand index {k['adjusted_rand_index']}.")
    if "partitioned" in r:
        import bench_partitioned

        lines += bench_partitioned.to_markdown(r["partitioned"])
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
