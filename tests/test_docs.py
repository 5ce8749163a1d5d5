"""The documentation runs: the tutorial's code, and the API reference is what the docstrings say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_tutorial_runs_from_top_to_bottom(tmp_path):
    text = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 4
    script = tmp_path / "tutorial.py"
    script.write_text("\n".join(blocks), encoding="utf-8")
    env = dict(os.environ, MPLBACKEND="Agg")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "hot cells" in run.stdout


def test_api_reference_is_up_to_date():
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_api_docs.py"), "--check"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_help_shows_the_documented_verb():
    out = subprocess.run([sys.executable, "-c", "import hotspots; help(hotspots.find_hotspots)"],
                         capture_output=True, text=True, env=dict(os.environ, PAGER="cat"))
    assert out.returncode == 0, out.stderr
    assert "Parameters" in out.stdout and "Examples" in out.stdout
