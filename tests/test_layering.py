"""The data flow runs one way (docs/architecture): a module imports only modules earlier in the chain.

ingest -> grid -> geography -> aggregate -> stats/evaluate_stats -> detect -> outliers/hotspots_stage
-> evaluate -> maps/report_* -> pipeline -> cli.  Shared helpers (_errors, schema, config, _io, harm, _parallel)
may be imported anywhere.  Imports inside functions count too; ``if TYPE_CHECKING:`` imports do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "hotspots"

SHARED = {"_errors", "schema", "config", "_io", "harm", "_parallel", "__init__"}
RANK = {
    "download": 0,
    "ingest": 1,
    "grid": 2,
    "geography": 3,
    "aggregate": 4,
    "stats": 5,
    "evaluate_stats": 5,
    "detect": 6,
    "outliers": 7,
    "hotspots_stage": 7,
    "evaluate": 8,
    "maps": 9,
    "report_outliers": 9,
    "report_evaluation": 9,
    "pipeline": 10,
    "cli": 11,
    "__main__": 12,
}
RENDERERS = {"maps", "report_outliers", "report_evaluation"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    type_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(n) for n in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hotspots."):
            found.add(node.module.split(".")[1])
    return found


def test_every_module_is_placed_in_the_chain():
    modules = {p.stem for p in SRC.glob("*.py")}
    assert modules - SHARED - set(RANK) == set()


def test_imports_only_flow_forward():
    problems = []
    for path in SRC.glob("*.py"):
        mod = path.stem
        if mod in SHARED:
            allowed_rank = -1  # shared helpers import only other shared helpers
        else:
            allowed_rank = RANK[mod]
        for dep in _imports(path):
            if dep in SHARED or dep == "__version__":
                continue
            if dep not in RANK:
                problems.append(f"{mod} imports unknown module {dep}")
            elif mod in SHARED or RANK[dep] >= allowed_rank and dep != mod:
                if not (RANK.get(dep, 99) < allowed_rank):
                    problems.append(f"{mod} (rank {allowed_rank}) imports {dep} (rank {RANK[dep]})")
    assert problems == []


def test_renderers_compute_no_statistics():
    """maps and reports receive tables; they never import the statistics modules."""
    for mod in RENDERERS:
        deps = _imports(SRC / f"{mod}.py")
        assert not deps & {"stats", "evaluate_stats", "detect", "aggregate"}, (mod, deps)
