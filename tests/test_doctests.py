"""Every Examples section in the package runs (numpydoc ``>>>`` examples are doctests)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import hotspots

MODULES = sorted(m.name for m in pkgutil.walk_packages(hotspots.__path__, "hotspots.") if not m.name.endswith("__main__"))
#: modules whose examples need an optional extra (``pip install '.[national]'``): skipped, not failed, without it
NEEDS = {"hotspots.geo.national": "duckdb"}


@pytest.mark.parametrize("name", ["hotspots"] + MODULES)
def test_examples_run(name):
    if name in NEEDS:
        pytest.importorskip(NEEDS[name], reason=f"{name}'s examples need the optional {NEEDS[name]}")
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = finder.find(module, name)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name} (run: python -m doctest -v)"


def test_the_public_verbs_have_runnable_examples():
    """The notebook verbs each carry at least one example that runs."""
    finder = doctest.DocTestFinder()
    missing = []
    for name in hotspots.VERBS:
        fn = getattr(hotspots, name)
        examples = [t for t in finder.find(fn, name) if t.examples]
        if not examples:
            missing.append(name)
    assert missing == []
