"""The ``hotspots`` command's exit (``hotspots._entry``): the same output and status as an ordinary exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          timeout=120)


def _command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hotspots", *args], capture_output=True, text=True, timeout=120)


def _ordinary(*args: str) -> subprocess.CompletedProcess:
    return _python("import sys\nfrom hotspots.cli import main\nsys.argv = ['hotspots', *sys.argv[1:]]\nmain()\n", *args)


@pytest.mark.parametrize("args", [("--version",), ("--help",), ("run", "--help"),
                                  ("--data", "/nonexistent/hotspots-data-home", "run"),
                                  ("--config", "/nonexistent/hotspots.toml", "run"), ("no-such-command",)])
def test_the_command_prints_and_exits_as_an_ordinary_exit_does(args):
    fast, slow = _command(*args), _ordinary(*args)
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr)
    assert fast.stdout or fast.stderr  # something was said, and it came through the pipe (flushed)


def test_a_failing_command_keeps_its_status():
    done = _command("--data", "/nonexistent/hotspots-data-home", "run")
    assert done.returncode != 0 and "error" in done.stderr


def test_exit_handlers_run_before_the_process_ends():
    done = _python("""
        import atexit, sys
        atexit.register(lambda: print("handler ran", flush=False))
        sys.argv = ["hotspots", "--version"]
        from hotspots._entry import command
        command()
        print("not reached")
    """)
    assert done.returncode == 0
    assert "handler ran" in done.stdout and "not reached" not in done.stdout


def test_a_running_thread_is_waited_for_as_in_an_ordinary_exit():
    done = _python("""
        import sys, threading, time
        def late():
            time.sleep(0.5)
            print("thread done", flush=True)
        threading.Thread(target=late).start()
        sys.argv = ["hotspots", "--version"]
        from hotspots._entry import command
        command()
    """)
    assert done.returncode == 0 and "thread done" in done.stdout


@pytest.mark.parametrize(("code", "status", "said"), [(None, 0, ""), (0, 0, ""), (2, 2, ""), (256 + 3, 3, ""),
                                                       (-1, 255, ""), ("bad things", 1, "bad things")])
def test_exit_now_gives_the_status_sys_exit_gives(code, status, said):
    for how in ("from hotspots._entry import exit_now as leave", "from sys import exit as leave"):
        done = _python(f"{how}\nleave({code!r})\n")
        assert done.returncode == status and done.stderr.strip() == said, how
