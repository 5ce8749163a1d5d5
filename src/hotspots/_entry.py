"""The ``hotspots`` command's process: :func:`hotspots.cli.main`, then an exit without the interpreter's tear-down.

A Hertfordshire run holds several hundred MB of small Python objects (frames,
geometries, strings).  When the command is done, every output is written,
closed and published, and the interpreter would then free those objects one
by one and tear its modules down: about a second of a run's time (measured
0.8-1 s on the 2-core development machine), spent after the last file was
written.  :func:`command` ends the process at once instead, after doing what
an ordinary exit does that anyone could see: the exit handlers are run (the
output folder's clean-up of an unpublished run, logging's flush,
multiprocessing's clean-up of child processes) and standard output and error
are flushed.  Where that cannot be done safely (an older or other Python
without ``atexit._run_exitfuncs``, a non-daemon thread still running) the
process exits the ordinary way.

Library use and the tests call :func:`hotspots.cli.main`, which exits the
ordinary way (``SystemExit``).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading

__all__ = ["command"]


def command() -> None:
    """Run the ``hotspots`` command line (``sys.argv``) and end the process with its exit code."""
    from hotspots.cli import main

    try:
        main()
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    exit_now(code)


def exit_now(code) -> None:
    """End the process with ``code`` as ``sys.exit(code)`` would, without freeing every object first.

    ``code``: an int, ``None`` (0) or anything else (printed to standard error, exit status 1), as ``sys.exit``.
    """
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if run_exit_handlers is None or others:  # an ordinary exit joins those threads; os._exit would kill them
        sys.exit(code)
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be written to it
            pass
    os._exit(code % 256)  # the status a shell sees, as for sys.exit(code)
