"""What a plain ``pip install hotspots-police`` gets: the package data and the declared dependencies."""

from __future__ import annotations

import ast
import fnmatch
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "hotspots"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
#: import name -> distribution name, where they differ
DIST_OF = {"sklearn": "scikit-learn", "yaml": "pyyaml"}


def test_every_data_file_is_packaged():
    """A file the package reads at run time (the default config, templates, tables) is in the wheel."""
    globs = PYPROJECT["tool"]["setuptools"]["package-data"]["hotspots"]
    data = [p.relative_to(PKG).as_posix() for p in PKG.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert "configs/hertfordshire.toml" in data
    missing = [f for f in data if not any(fnmatch.fnmatch(f, g) and f.count("/") == g.count("/") for g in globs)]
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"


def test_every_imported_library_is_declared():
    declared = {re.split(r"[<>=!~ \[]", d, maxsplit=1)[0].lower().replace("_", "-") for d in PYPROJECT["project"]["dependencies"]}
    imported = set()
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m not in ("hotspots", "__future__")}
    # an optional engine (duckdb, dask for the national out-of-core path) may come from an extra other than "test"
    optional = {re.split(r"[<>=!~ \[]", d, maxsplit=1)[0].lower().replace("_", "-")
                for extra, deps in PYPROJECT["project"].get("optional-dependencies", {}).items() if extra != "test" for d in deps}
    undeclared = sorted(m for m in third_party if DIST_OF.get(m, m).lower().replace("_", "-") not in declared | optional)
    assert not undeclared, f"imported but not in [project] dependencies: {undeclared}"
    assert {"threadpoolctl", "tqdm"} <= declared
    assert PYPROJECT["project"]["name"] == "hotspots-police"
    assert PYPROJECT["project"]["scripts"] == {"hotspots": "hotspots._entry:command"}
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
