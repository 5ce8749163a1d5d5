"""The data flow runs one way (architecture.md), statically and at run time.

Layers, lowest first (a module may import its own package and lower layers only)::

    shared helpers  _version datasets concentration _errors _validate _text months schema harm fdr _parallel
                    _csv_format _dist
    io              reading police.uk files and force exports, download
    geo             boundaries, assignment to areas, grids, weights, counts
    outliers detect analysis of the two area jobs (never each other)
    evaluation      may use detect and outliers analysis
    render          maps and reports: shared helpers only (they compute nothing)
    api             hotspots/__init__.py, hotspots/api.py: the notebook verbs
    config _io      parsing the run configuration, writing the output folder
    stages          the only code that knows the run context, settings and output folder
    _command        how a command prepares its run
    cli, __main__

Imports inside functions count; ``if TYPE_CHECKING:`` imports do not.  Renderers
are also read for what they call: no selecting, ranking, aggregating, binning or
significance thresholds (:func:`computing_calls`) outside a short allow-list of
display-only uses.  The checks also run at run time: importing any analysis or renderer module in a fresh
interpreter loads no module of a later layer, and a real ``hotspots run`` on a
small data home hands the renderers plain data only (no functions, contexts,
settings or output folders).  :func:`test_the_checker_catches_what_it_should`
shows the checker fails on an injected back-import and on a computing renderer.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import enum
import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "hotspots"

SHARED = {"_version", "datasets", "concentration", "_errors", "_validate", "_text", "months", "schema", "harm", "fdr", "_parallel",
          "_csv_format", "_dist"}
#: top-level module or package of hotspots -> layer
LAYER = {
    **{name: 0 for name in SHARED},
    "io": 1,
    "geo": 2,
    "outliers": 3,
    "detect": 3,
    "evaluation": 4,
    "render": 5,
    "__init__": 6,
    "api": 6,
    "config": 7,
    "init_config": 7,
    "_io": 7,
    "stages": 8,
    "_command": 9,  # how a command prepares its run (the files read ahead)
    "cli": 10,
    "_entry": 11,  # the command's process: runs cli.main, then ends the process
    "__main__": 12,
}
RENDER_MAY_IMPORT = SHARED
#: third-party statistics a renderer must not use (it draws finished results)
STATISTICS_LIBRARIES = {"scipy", "statsmodels", "sklearn", "esda", "libpysal"}
MAX_LINES = 650  # "about 600"

#: Calls (methods or functions, by name) that select, rank, aggregate or bin data: the analysis decides what a
#: report shows (e.g. hotspots.outliers.highlights), a renderer words and draws it.  ``sorted(..., key=...)``
#: counts too (ranking by a computed key); plain ``sorted(labels)`` and ``min``/``max`` for axis limits do not.
COMPUTING_CALLS = {
    "groupby", "rank", "nlargest", "nsmallest", "quantile", "percentile", "nanpercentile", "sort_values",
    "value_counts", "pivot_table", "crosstab", "agg", "aggregate", "rolling", "resample", "idxmax", "idxmin",
    "sum", "nansum", "mean", "nanmean", "median", "nanmedian", "std", "var", "cumsum", "cumcount", "nunique",
    "describe", "corr", "argsort", "lexsort", "cut", "qcut", "histogram", "digitize",
}
#: An ordering comparison (<, <=, >, >=) with a p- or q-value, or with a literal in (0, 0.2], is a significance
#: threshold: the analysis applies it (as a boolean column), the renderer reads the result.
P_OR_Q = re.compile(r"(?i)(\b|_)(p|q)(_?values?)?(\b|_)|\balpha\b")
#: Display-only uses in renderers, (module, function, call or "threshold") -> why it computes nothing.  Keep it short;
#: the test fails when an entry is no longer used.  The map entries are candidates to move (helper E's files).
RENDER_ALLOWED = {
    ("hotspots.render.map_html", "_by_rank", "argsort"):
        "lists patrol areas in the order of the analysis's own `rank` column (candidate to move: hand them over "
        "in rank order)",
    ("hotspots.render.map_html", "_by_rank", "sort_values"):
        "the same order, the long way, when the ranks are not distinct whole numbers",
    ("hotspots.render.map_png", "static_map_png", "sort_values"):
        "draws and numbers patrol areas in the order of the analysis's `rank` column (candidate to move)",
    ("hotspots.render._map_geometry", "_geojson_geometries", "cumsum"):
        "offsets of each ring in the flat coordinate array (geometry encoding, not data)",
    ("hotspots.render._map_geometry", "_simple_on_grid", "cumsum"):
        "offsets of each ring in the flat coordinate array (snapping display rings to the grid, not data)",
    ("hotspots.render._map_geometry", "_ring_texts", "cumsum"):
        "offsets of each ring's pairs, and of each pair's characters, in the GeoJSON text (encoding, not data)",
    ("hotspots.render._map_geometry", "_ring_texts", "sum"):
        "the characters of each coordinate pair's text (encoding, not data)",
    ("hotspots.render._map_geometry", "_contour_polygons", "cumsum"):
        "offsets of each contour polygon's points in the flat coordinate array (geometry encoding)",
    ("hotspots.render._map_geometry", "_contour_polygons", "sum"):
        "how many contour rings are kept (geometry encoding)",
    ("hotspots.render.map_png", "_polygon_paths", "cumsum"):
        "offsets of each ring's vertices in the flat coordinate array of the drawn squares (geometry encoding)",
    ("hotspots.render.outliers_report", "rows_of", "groupby"):
        "finds one CSP's rows (the rows of frame[frame[column] == code], in order) with one grouping per table; "
        "aggregates nothing",
    ("hotspots.render.evaluation_report", "_label_areas", "sorted"):
        "places area-code labels north to south so they do not overlap (layout, not a ranking of results)",
    ("hotspots.render.evaluation_report", "fmt_p", "threshold"):
        "formats a p-value for display ('< 0.001'); decides nothing",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def unit(module: str) -> str:
    """The layer unit of a dotted module name: ``hotspots.detect.kde`` -> ``detect``."""
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def imports_of(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module ``module`` imports (absolute dotted names), inside functions too, not under TYPE_CHECKING."""
    tree = ast.parse(source)
    type_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(n) for n in ast.walk(node))
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # "from hotspots import detect" imports the subpackage hotspots.detect
            for alias in node.names:
                found.add(f"{target}.{alias.name}")
    return found


def problems_of(module: str, deps: set[str], known: set[str]) -> list[str]:
    """Layering problems of one module given what it imports (``known``: every module of the package)."""
    me = unit(module)
    if me not in LAYER:
        return [f"{module}: not placed in a layer (add it to LAYER in tests/test_layering.py)"]
    problems = []
    for dep in sorted(deps):
        top = dep.split(".")[0]
        if me == "render" and top in STATISTICS_LIBRARIES:
            problems.append(f"{module}: a renderer imports {dep} (statistics belong in the analysis)")
        if top != "hotspots" or dep not in known or dep == module:
            continue
        other = unit(dep)
        if other == me or dep == "hotspots" and me == "__init__" or me in SHARED and other in SHARED:
            continue
        if me == "render" and other not in RENDER_MAY_IMPORT:
            problems.append(f"{module}: a renderer imports {dep} (renderers take finished results, shared helpers only)")
        elif LAYER[other] >= LAYER[me] and other != "__init__":
            problems.append(f"{module} (layer {LAYER[me]}) imports {dep} (layer {LAYER[other]}): the data flow runs one way")
        elif other == "__init__" and me not in ("cli", "__main__", "stages"):
            problems.append(f"{module} imports the public API package hotspots (import the module that defines it)")
    return problems


def computing_calls(source: str, module: str, *, allowed=None) -> list[str]:
    """What in a renderer's ``source`` computes (see :data:`COMPUTING_CALLS`, :data:`P_OR_Q`), minus ``allowed``.

    Each finding is ``"module:line function: call (code)"``; the enclosing function is the innermost ``def``.
    ``allowed`` defaults to :data:`RENDER_ALLOWED`.
    """
    allowed = RENDER_ALLOWED if allowed is None else allowed
    found = []

    def visit(node, function):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        what = None
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in COMPUTING_CALLS or name == "sorted" and any(k.arg == "key" for k in node.keywords):
                what = name
        elif isinstance(node, ast.Compare) and any(isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)) for op in node.ops):
            for operand in (node.left, *node.comparators):
                literal = (isinstance(operand, ast.Constant) and isinstance(operand.value, float)
                           and 0 < operand.value <= 0.2)
                if literal or P_OR_Q.search(ast.unparse(operand)):
                    what = "threshold"
        if what and (module, function, what) not in allowed:
            found.append(f"{module}:{node.lineno} {function}: {what} ({ast.unparse(node)[:70]})")
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(source), "<module>")
    return found


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PKG.rglob("*.py")}


def graph() -> dict[str, set[str]]:
    modules = all_modules()
    known = set(modules)
    return {m: {d for d in imports_of(p.read_text(), m, is_package=p.name == "__init__.py") if d in known and d != m}
            for m, p in modules.items()}


# --------------------------------------------------------------------------- static checks
def test_every_module_is_in_a_layer_and_imports_flow_one_way():
    modules = all_modules()
    known = set(modules)
    problems = []
    for m, p in sorted(modules.items()):
        problems += problems_of(m, imports_of(p.read_text(), m, is_package=p.name == "__init__.py"), known)
    assert problems == []


def test_no_import_cycles():
    g = graph()
    # Tarjan's strongly connected components
    index, low, on, stack, sccs, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    assert sccs == [], f"import cycles: {sccs}"


def test_modules_stay_small():
    long = {module_name(p): n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


def test_renderers_compute_nothing():
    """No renderer selects, ranks, aggregates or applies a significance threshold, beyond the allow-list."""
    modules = {m: p for m, p in all_modules().items() if unit(m) == "render"}
    assert len(modules) > 5
    problems = [f for m, p in sorted(modules.items()) for f in computing_calls(p.read_text(), m)]
    assert problems == [], "renderers that compute (move it into the analysis):\n" + "\n".join(problems)
    # every allow-list entry is still needed (else it would quietly allow a new use)
    everything = [f for m, p in modules.items() for f in computing_calls(p.read_text(), m, allowed={})]
    used = {(f.split(":")[0], f.split(" ")[1].rstrip(":"), f.split(" ")[2]) for f in everything}
    assert set(RENDER_ALLOWED) - used == set(), "allow-list entries no longer used: remove them"


def test_the_checker_catches_what_it_should():
    """Injected faults: each must be reported."""
    known = set(all_modules())
    analysis = "hotspots.evaluation.did"
    known |= {analysis, "hotspots.render.evaluation_report", "hotspots.stages.evaluate"}
    back = imports_of("def f():\n    from hotspots.stages import run\n", analysis)
    assert problems_of(analysis, back, known), "a back-import from analysis into the pipeline passed"
    report_into_analysis = imports_of("from hotspots.evaluation.did import did_rate_ratio\n",
                                      "hotspots.render.evaluation_report")
    assert problems_of("hotspots.render.evaluation_report", report_into_analysis, known), \
        "a renderer importing its analysis passed"
    computing = imports_of("from scipy import stats\n", "hotspots.render.evaluation_report")
    assert problems_of("hotspots.render.evaluation_report", computing, known), "a computing renderer passed"
    typing_only = imports_of("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from hotspots.stages import Context\n",
                             analysis)
    assert problems_of(analysis, typing_only, known) == []
    sideways = imports_of("import hotspots.detect.gistar\n", "hotspots.outliers.funnel")
    assert problems_of("hotspots.outliers.funnel", sideways, known), "outliers importing detect passed"
    # a renderer that computes, beyond its imports: selection, ranking, aggregation, thresholds
    wording = "hotspots.render.outliers_wording"
    for source in ("def stand_out(rows):\n    return rows.sort_values('z_adjusted').head(6)\n",
                   "def top(lsoa):\n    return lsoa.nlargest(10, 'count')\n",
                   "def high(lsoa):\n    return int((lsoa['flag'] == 'high_998').sum())\n",
                   "def share(df):\n    return df.groupby('csp_code')['count'].transform('sum')\n",
                   "import numpy as np\ndef bins(x):\n    return np.percentile(x, [20, 40, 60, 80])\n",
                   "def order(rows):\n    return sorted(rows, key=lambda r: -abs(r['z']))[:6]\n",
                   "def mark(row):\n    return '▲' if row['change_q'] < CHANGE_Q else ''\n",
                   "def mark(q):\n    return 'stands out' if q < 0.05 else ''\n",
                   "class R:\n    def rank(self, df):\n        return df['rate'].rank(ascending=False)\n"):
        assert computing_calls(source, wording), f"a computing renderer passed: {source!r}"
    # display-only code passes; an allowed use is allowed only where the allow-list says
    drawing = ("def chart(ax, rows):\n    ax.plot(rows['month'], rows['rate'])\n    ax.set_ylim(0, rows['rate'].max())\n"
               "    return f\"{rows['ratio'].iloc[0]:.1f} times\" if rows['ratio'].iloc[0] >= 1.5 else sorted(rows)\n")
    assert computing_calls(drawing, wording) == []
    listed = "def _by_rank(pa):\n    return pa.sort_values('rank')\n"
    assert computing_calls(listed, "hotspots.render.map_html") == []
    assert computing_calls(listed.replace("_by_rank", "_other"), "hotspots.render.map_html")
    assert computing_calls(listed, "hotspots.render.outliers_report")


# --------------------------------------------------------------------------- run time
_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(m for m in sys.modules if m.startswith("hotspots") or m.split(".")[0] in
                        ("scipy", "statsmodels", "sklearn"))))
"""


def _loaded_by(module: str) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    out = subprocess.run([sys.executable, "-c", _PROBE, module], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("package", ["hotspots.io", "hotspots.geo", "hotspots.outliers", "hotspots.detect",
                                     "hotspots.evaluation", "hotspots.render"])
def test_importing_a_layer_loads_nothing_later(package):
    """Transitively, at run time: what importing a package really loads (re-exports and lazy imports included)."""
    loaded = _loaded_by(package)
    mine = LAYER[unit(package)]
    later = [m for m in loaded if m.startswith("hotspots.") and unit(m) in LAYER and LAYER[unit(m)] > mine
             and unit(m) != "__init__"]
    assert later == [], f"importing {package} loads {later}"
    if package == "hotspots.render":
        assert not [m for m in loaded if m.startswith(("hotspots.io", "hotspots.geo", "hotspots.outliers",
                                                         "hotspots.detect", "hotspots.evaluation"))]
        assert not [m for m in loaded if m.split(".")[0] in STATISTICS_LIBRARIES]


_ALLOWED_LEAVES = (type(None), bool, int, float, complex, str, bytes, np.generic, dt.date, dt.datetime,
                   dt.timedelta, Path, enum.Enum, range)


def plain_data_problems(value, where: str = "result", seen=None) -> list[str]:
    """What in ``value`` is not plain data (functions, contexts, settings, output folders, open objects)."""
    import shapely
    from pyproj import CRS

    seen = set() if seen is None else seen
    if id(value) in seen:
        return []
    seen.add(id(value))
    if isinstance(value, _ALLOWED_LEAVES) or isinstance(value, (shapely.Geometry, CRS)):
        return []
    if isinstance(value, (pd.DataFrame, pd.Series, pd.Index)):
        frame = value.to_frame() if isinstance(value, pd.Series) else pd.DataFrame(index=value) if isinstance(
            value, pd.Index) else value
        out = []
        for col in frame.columns:
            if frame[col].dtype == object:
                bad = [v for v in frame[col].head(200) if callable(v)]
                if bad:
                    out.append(f"{where}[{col!r}] holds callables")
        return out
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return [p for i, v in enumerate(value.ravel()[:200]) for p in plain_data_problems(v, f"{where}[{i}]", seen)]
        return []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in plain_data_problems(v, f"{where}[{k!r}]", seen)]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [p for i, v in enumerate(value) for p in plain_data_problems(v, f"{where}[{i}]", seen)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__module__
        if name.startswith("hotspots.stages") or name in ("hotspots.config", "hotspots._io"):
            return [f"{where} is a {type(value).__name__} from {name} (pipeline objects stay in the stages)"]
        return [p for f in dataclasses.fields(value)
                for p in plain_data_problems(getattr(value, f.name), f"{where}.{f.name}", seen)]
    if callable(value) or isinstance(value, functools.partial):
        return [f"{where} is a callable ({value!r:.60})"]
    module = type(value).__module__
    if module.startswith(("geopandas", "pandas", "numpy", "shapely", "pyproj")):
        return []
    return [f"{where} is a {module}.{type(value).__name__} (not plain data)"]


def test_plain_data_checker_flags_what_it_should():
    from hotspots._io import OutputDir

    assert plain_data_problems({"a": [1, 2.0, "x"], "frame": pd.DataFrame({"v": [1]})}) == []
    assert plain_data_problems({"write": lambda: None})
    assert plain_data_problems([OutputDir.__init__])


def test_renderers_receive_plain_data_in_a_real_run(tmp_path, monkeypatch, capsys):
    """Every call into hotspots.render during ``hotspots run`` on a small data home gets plain data only."""
    from test_cli import make_home, run_main

    import hotspots.render as render_pkg
    import importlib
    import pkgutil

    monkeypatch.setenv("HOTSPOTS_WORKERS", "1")  # one process: the calls are seen here
    calls: list[tuple[str, list[str]]] = []

    def wrap(fn):
        @functools.wraps(fn)
        def recorded(*args, **kwargs):
            calls.append((f"{fn.__module__}.{fn.__name__}",
                          plain_data_problems(list(args) + list(kwargs.values()), f"{fn.__name__}(...)")))
            return fn(*args, **kwargs)
        return recorded

    #: renderer-internal steps that take what the renderer itself made, not data handed in
    internal = {("hotspots.render._png", "canvas_png"): "encodes the renderer's own matplotlib figure as PNG"}
    render_functions = {}
    for info in pkgutil.walk_packages(render_pkg.__path__, "hotspots.render."):
        mod = importlib.import_module(info.name)
        for name, obj in vars(mod).items():
            if callable(obj) and getattr(obj, "__module__", "") == info.name and not name.startswith("_") \
                    and not isinstance(obj, type) and (info.name, name) not in internal:
                render_functions[(info.name, name)] = obj
    for mod_name, mod in list(sys.modules.items()):
        if not mod_name.startswith("hotspots.") or mod is None:
            continue
        for name, obj in list(vars(mod).items()):
            if (getattr(obj, "__module__", None), getattr(obj, "__name__", None)) in render_functions \
                    and not isinstance(obj, type):
                monkeypatch.setattr(mod, name, wrap(obj))
    home = make_home(tmp_path / "home")
    code, _, err = run_main(["--data", str(home), "--out", str(tmp_path / "out"), "--quiet", "run"], capsys)
    assert code == 0, err
    assert calls, "no renderer was called"
    called = {c for c, _ in calls}
    assert any("report" in c for c in called) and any("map" in c for c in called), called
    bad = [(c, p) for c, p in calls if p]
    assert bad == []
