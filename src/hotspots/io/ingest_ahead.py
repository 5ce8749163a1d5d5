"""The police.uk files read in a second process while the command starts up.

A cold ``hotspots`` run begins with a second or more of imports (the
geospatial and statistical libraries) and then reads the police.uk files, on
one CPU, while the other CPU of a two-CPU machine has nothing to do.  The
command (:func:`hotspots._command.start_for_command`) therefore starts the reading in a
forked child process as soon as the top of its config is read
(:func:`start`), before the rest of the libraries are imported and while the
geography is read, and :func:`hotspots.stages.prepare` takes what the child
read (:meth:`IngestAhead.take`) where it would otherwise read the files itself.

What is read is the same: the child makes the very call to
:func:`hotspots.io.police_uk.read_police_uk` that ``prepare`` makes, and the
result travels back pickled.  A file's error is raised where ``prepare``
reads the files, with its message and hint, so the order of what is reported
does not change.  Nothing is started when it cannot help: one CPU (or
``HOTSPOTS_WORKERS=1``), or a records cache that already holds this run's
records (:mod:`hotspots.io.cache`).  A child whose call differs from the one
``prepare`` makes (the settings were changed in between) is stopped and the
files are read here; so is one that dies without a result.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

from hotspots._parallel import Forked, RemoteTraceback, fork_call

__all__ = ["IngestAhead", "reader_call", "start", "stopped_on_error"]


def reader_call(settings, data_dir: Path) -> dict[str, Any]:
    """The keyword arguments ``prepare`` gives :func:`~hotspots.io.police_uk.read_police_uk` for these settings."""
    from hotspots.io.cache import police_paths

    return {"paths": police_paths(Path(data_dir)), "forces": list(settings.forces),
            "first_month": settings.first_month, "last_month": settings.last_month, "progress": None}


class IngestAhead:
    """A child process reading the police.uk files (:func:`start`); ``prepare`` takes its result or stops it."""

    def __init__(self, call: dict[str, Any], forked: Forked):
        self.call = call
        self._forked: Forked | None = forked
        self._outcome: list = []
        # the result is received on a thread as soon as the child sends it (the pipe holds 64 KB: the child
        # waits for a reader), so its transfer overlaps what this process does meanwhile
        self._receiver = threading.Thread(target=self._receive, name="hotspots-ingest-receiver", daemon=True)
        self._receiver.start()

    def _receive(self) -> None:
        try:
            self._outcome.append(("ok", self._forked.result()))
        except BaseException as exc:  # noqa: BLE001 -- raised by take(), in the order of a run reading here
            self._outcome.append(("error", exc))

    def _wait(self) -> tuple:
        self._receiver.join()
        return self._outcome[0]

    @property
    def pending(self) -> bool:
        """Whether the child's result has been neither taken nor given up."""
        return self._forked is not None

    @property
    def reading(self) -> bool:
        """Whether the child is still at work (its result not yet received)."""
        return self._forked is not None and self._receiver.is_alive()

    def take(self, call: dict[str, Any]):
        """The child's :class:`~hotspots.io.accounting.IngestResult` for ``call``, or ``None`` (read it here).

        ``None`` when ``call`` is not the one the child made (the child is stopped) or when the
        child stopped without a result.  An error of the reading itself (a bad file) is raised here.
        """
        forked, self._forked = self._forked, None
        if forked is None:
            return None
        if _comparable(call) != _comparable(self.call):
            _stop(forked)
            self._wait()
            return None
        status, value = self._wait()
        if status == "ok":
            return value
        if isinstance(value, Exception) and isinstance(value.__cause__, RemoteTraceback):  # the reader's own error
            raise value  # (a bad file): as if read here
        return None  # the child died (say, killed): read the files here, which reports any real problem

    def cancel(self) -> None:
        """Stop the child if its result was not taken (a cache hit, or an error before the files were read)."""
        forked, self._forked = self._forked, None
        if forked is not None:
            _stop(forked)
            self._wait()


def _stop(forked: Forked) -> None:
    """Stop the child; the receiving thread then sees the pipe's end and ends."""
    process = forked._process
    if process.is_alive():
        process.terminate()
        process.join(10)
    if process.is_alive():
        process.kill()
    process.join()


def _comparable(call: dict[str, Any]) -> dict[str, Any]:
    return {**call, "paths": [os.path.abspath(p) for p in call["paths"]]}


def start(settings, data_dir: Path, out_root: Path) -> IngestAhead | None:
    """Start reading the police.uk files for ``settings`` in a child process, or ``None`` where that cannot help.

    ``out_root``: the run's output folder (:func:`hotspots.io.cache.cache_folder` finds the records cache beside it).
    """
    from hotspots._parallel import max_workers

    if max_workers() < 2:
        return None
    if _cached(settings, Path(data_dir), Path(out_root)):
        return None
    call = reader_call(settings, data_dir)

    def read():
        from hotspots.io.police_uk import read_police_uk

        return read_police_uk(**call)

    forked = fork_call(read, name="police.uk files")
    return IngestAhead(call, forked) if forked is not None else None


@contextlib.contextmanager
def stopped_on_error(ahead: IngestAhead | None):
    """``with stopped_on_error(ahead):`` -- an error inside stops the child (``ahead`` may be None)."""
    try:
        yield ahead
    except BaseException:
        if ahead is not None:
            ahead.cancel()
        raise


def _cached(settings, data_dir: Path, out_root: Path) -> bool:
    """Whether the records cache holds this run's records (then ``prepare`` reads nothing)."""
    from hotspots.io.cache import RecordsCache, cache_folder, run_records_key

    folder = cache_folder(out_root)
    if folder is None:
        return False
    try:
        return RecordsCache(folder).holds(run_records_key(settings, data_dir, out_root))
    except Exception:  # noqa: BLE001 -- ``prepare`` reports a key it cannot make; reading ahead is only a guess
        return False
