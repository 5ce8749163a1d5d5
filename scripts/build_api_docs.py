#!/usr/bin/env python3
"""Write docs/api.md, the API reference, from the docstrings (numpydoc) of the public verbs.

usage: python3 scripts/build_api_docs.py [--check]

``--check`` writes nothing and exits 1 if docs/api.md is not what the
docstrings give today (the test suite runs it, so the page never goes stale).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "api.md"
PACKAGES = ["hotspots.io", "hotspots.geo", "hotspots.outliers", "hotspots.detect", "hotspots.evaluation",
            "hotspots.render", "hotspots.stages"]


def _signature(name: str, obj) -> str:
    try:
        sig = str(inspect.signature(obj))
    except (TypeError, ValueError):
        sig = "(...)"
    return f"{name}{sig}"


def build() -> str:
    import hotspots

    lines = [
        "# API reference",
        "",
        "Generated from the docstrings by `python3 scripts/build_api_docs.py`; do not edit by hand",
        "(`tests/test_docs.py` fails when this page and the docstrings disagree).",
        "",
        "```python",
        "import hotspots",
        "```",
        "",
        inspect.cleandoc(hotspots.__doc__),
        "",
        "## Verbs",
        "",
    ]
    lines += [f"- [`{name}`](#{name.replace('_', '-')})" for name in hotspots.VERBS]
    lines.append("")
    for name in hotspots.VERBS:
        obj = getattr(hotspots, name)
        lines += [f"### {name}", "", f"`hotspots.{_signature(name, obj)}`", "",
                  f"Defined in `{obj.__module__}`.", "", "```text", inspect.cleandoc(obj.__doc__ or "(no docstring)"),
                  "```", ""]
    lines += ["## Packages", ""]
    for package in PACKAGES:
        module = importlib.import_module(package)
        lines += [f"### `{package}`", "", inspect.cleandoc(module.__doc__ or "(no docstring)"), ""]
        exported = getattr(module, "__all__", [])
        if exported:
            lines += ["Exports: " + ", ".join(f"`{n}`" for n in exported), ""]
    lines += ["## Errors", "",
              "Every error a user can fix is a `hotspots.HotspotsError` with a `hint` saying what to do:",
              ""]
    for name in ("HotspotsError", "ConfigError", "CRSError", "DataNotFoundError", "InputFileError", "ValidationError"):
        lines.append(f"- `{name}`: {inspect.getdoc(getattr(hotspots, name)).splitlines()[0]}")
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = build()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is out of date: run python3 scripts/build_api_docs.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
