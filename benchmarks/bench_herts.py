"""The real Hertfordshire run end to end, in fresh processes, and its maps in headless Chromium.

Three fresh ``hotspots run`` processes, each started by :func:`_util.run_measured` (a clean child: its
CPU and peak memory only):

* ``cold``: default workers, an empty cache folder (the run parses, projects and assigns, analyses and
  draws, and fills the records, area and maps caches);
* ``cached``: default workers, the same cache folder (a re-run on the same data: parsing, the study areas'
  analyses and the map drawing are read back; counts, outliers, evaluation, tables and ``grid_cells.gpkg``
  are computed and written again);
* ``workers1``: ``HOTSPOTS_WORKERS=1`` and ``HOTSPOTS_CACHE=off``: every piece of work in one process, the
  CPU figure of the issue-18 target.

``cpu_probe_s`` times a fixed single-threaded job before and after (:func:`_util.cpu_probe`): on a slow
spell of the shared machine every figure is slower.  Stage timings come from ``manifest.json``.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import ROOT, cpu_probe, run_measured  # noqa: E402

DATA = Path(__import__("os").environ.get("HOTSPOTS_DATA", ROOT.parent / "shared" / "data"))


def hotspots_run(out: Path, **env) -> dict:
    res = run_measured(["hotspots", "--data", str(DATA), "--out", str(out), "--quiet", "run"], env=env)
    if res["returncode"] != 0:
        raise RuntimeError(f"hotspots run failed:\n{res['stderr'][-3000:]}")
    manifest = json.loads((out / "manifest.json").read_text())
    return {"wall_s": res["wall_s"], "cpu_s": res["cpu_s"], "maxrss_mb": res["maxrss_mb"],
            "tree_pss_peak_mb": res["tree_pss_peak_mb"], "load_avg_1min": res["load_avg_1min"], "env": env,
            "rows_read": manifest["row_accounting"]["rows_read"], "stages": manifest.get("timings_s", {})}


def map_load_times(out: Path) -> list[dict]:
    """Open each ``maps/*.html`` in headless Chromium (network blocked, as tests/_browser.py)."""
    pages = sorted((out / "maps").glob("*.html")) if (out / "maps").is_dir() else []
    if not pages:
        return []
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]
    results = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=args)
        try:
            for html in pages:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                errors, blocked = [], []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:", "blob:", "about:"))
                           else (blocked.append(r.request.url), r.abort()))
                t0 = time.perf_counter()
                page.goto(html.resolve().as_uri(), wait_until="load")
                loaded = time.perf_counter() - t0
                drawn = None
                try:  # polygons drawn by Leaflet (SVG paths or canvas)
                    page.wait_for_selector("path.leaflet-interactive, .leaflet-overlay-pane canvas", state="attached", timeout=10_000)
                    drawn = time.perf_counter() - t0
                except Exception:
                    pass
                results.append({"map": html.name, "bytes": html.stat().st_size, "load_s": round(loaded, 3),
                                "drawn_s": round(drawn, 3) if drawn else None, "page_errors": len(errors),
                                "blocked_requests": len(blocked)})
                page.close()
        finally:
            browser.close()
    return results


def run() -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="hotspots-bench-herts-"))
    try:
        probe_before = cpu_probe()
        cache = str(tmp / "cache")
        cold = hotspots_run(tmp / "cold", HOTSPOTS_CACHE=cache)
        cached = hotspots_run(tmp / "cached", HOTSPOTS_CACHE=cache)
        workers1 = hotspots_run(tmp / "workers1", HOTSPOTS_WORKERS="1", HOTSPOTS_CACHE="off")
        probe_after = cpu_probe()
        maps = map_load_times(tmp / "cached")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"data": str(DATA), "cold": cold, "cached": cached, "workers1": workers1, "maps": maps,
            "cpu_probe_s": [probe_before, probe_after]}


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
