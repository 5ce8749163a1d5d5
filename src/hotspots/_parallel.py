"""Worker processes for CPU-bound work that is independent: study areas, maps, whole stages.

Two tools, both built on ``fork`` (Linux): the workers see the parent's data
without copying it, and only results travel back (pickled).

* :func:`process_map` shares a list of items out among worker processes;
* :func:`fork_call` runs one function in a child process while this process
  gets on with something else (``hotspots run`` runs the counts, outliers and
  evaluation stages beside the hotspots stage this way).

Where forking cannot help or is not safe (one CPU, Windows, macOS) both run
the work here, in order, with the same results.  The environment variable
``HOTSPOTS_WORKERS`` caps the number of processes (``1``: no worker processes).

**Never more busy processes than CPUs.**  Every process that computes holds
one CPU: the first process holds its own, and the others take a token from a
semaphore of the free CPUs (:func:`_cpu_tokens`, ``max_workers() - 1`` of
them) shared by every process forked from it.  :func:`fork_call` starts its
child only if a token is free (otherwise the work runs here, in order), and
the child gives it back when it ends.  :func:`process_map` lends its own CPU
to its workers while it waits for them and hands out one more item for each
token it can take, as tokens come free (say, when the side stages of
``hotspots run`` finish), so on two CPUs the hotspots stage's workers and the
side-stage process never run three at once.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from hotspots._errors import ConfigError

_FORKED: dict[str, Any] = {}
#: the CPU tokens (see the module docstring): the semaphore, the process that made it, its live forked children
_CPU: dict[str, Any] = {"sem": None, "owner": None, "children": []}


#: BLAS thread pools held to one thread in the command-line process (and the workers it forks), unless the user
#: set them: the toolkit's matrix products are small, and OpenBLAS starting and spinning its threads cost more
#: CPU than the sums (about 2.5 s of a Hertfordshire run's 27 s of CPU); parallelism comes from the worker processes.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def single_thread_blas() -> None:
    """Set :data:`BLAS_THREAD_VARIABLES` to 1 where the user has not set them; call before numpy is imported.

    >>> single_thread_blas(); os.environ["OPENBLAS_NUM_THREADS"] != ""
    True
    """
    for name in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")


#: how many :func:`long_lived_scope` blocks are open in this process
_GC_SCOPE = [0]


class long_lived_scope:
    """``with long_lived_scope():`` -- inside, what the run has built stays out of the garbage collector's way.

    On entry, and at each :func:`keep_long_lived`, every object then alive is
    frozen (:func:`gc.freeze`): the collector's full passes no longer walk the
    records, the geography and the analysis results again and again (the
    Hertfordshire run's collector time, one process: 0.76 s -> 0.40 s).  On leaving the outermost block
    they are unfrozen, so a long-lived process (a notebook, the tests) collects
    them as before.  Objects freed by reference counting are freed at once
    either way; only cyclic garbage among frozen objects waits for the end.
    """

    def __enter__(self):
        _GC_SCOPE[0] += 1
        gc.freeze()
        return self

    def __exit__(self, *exc) -> None:
        _GC_SCOPE[0] -= 1
        if _GC_SCOPE[0] == 0:
            gc.unfreeze()


@contextlib.contextmanager
def collector_paused():
    """Python's cyclic garbage collector held off inside the block (a report's charts, a map, a large table).

    Drawing a figure or a map makes tens of thousands of short-lived container
    objects, so the collector would run hundreds of times, each pass walking the
    objects still in use (the whole analysis).  The figures are cyclic garbage
    that the first collection after the block frees; what is drawn or written is
    unchanged.  A collector the caller disabled stays disabled.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def keep_long_lived() -> None:
    """Inside :class:`long_lived_scope`, freeze every object now alive (the results just built); else nothing."""
    if _GC_SCOPE[0]:
        gc.freeze()


def _unfreeze() -> None:
    """After a fork: unfreeze what was frozen for it, unless a :class:`long_lived_scope` keeps it frozen."""
    if not _GC_SCOPE[0]:
        gc.unfreeze()


def _cpu_tokens():
    """The semaphore of CPUs free for one more busy process (shared with forked children).

    Made afresh by a process that has no live child holding a token (so a
    token lost with a killed child, or a changed ``HOTSPOTS_WORKERS``, does not
    outlive the run that had it); forked children use their parent's.
    """
    st = _CPU
    if st["sem"] is None or (st["owner"] == os.getpid() and not any(c.is_alive() for c in st["children"])):
        st.update(sem=multiprocessing.get_context("fork").Semaphore(max(max_workers() - 1, 0)), owner=os.getpid(),
                  children=[])
    return st["sem"]


def _cpu_count() -> int:
    """CPUs this process may use (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class WorkersSettingError(ConfigError, ValueError):
    """``$HOTSPOTS_WORKERS`` is set to something other than a whole number >= 1 (a ValueError too)."""


def workers_cap() -> int | None:
    """The process cap ``$HOTSPOTS_WORKERS`` sets (None: unset or empty, every CPU).

    Raises
    ------
    WorkersSettingError
        (a :class:`ValueError` and a :class:`~hotspots._errors.ConfigError`) when the
        variable is not a whole number >= 1, e.g. ``one`` or ``0``: a mistyped cap is
        never silently read as "every CPU".

    Examples
    --------
    >>> os.environ["HOTSPOTS_WORKERS"] = " 2 "
    >>> workers_cap()
    2
    >>> os.environ["HOTSPOTS_WORKERS"] = "one"
    >>> try:
    ...     workers_cap()
    ... except ValueError as exc:
    ...     print(exc.message)
    $HOTSPOTS_WORKERS = 'one' is not a whole number of processes >= 1
    >>> del os.environ["HOTSPOTS_WORKERS"]
    """
    cap = os.environ.get("HOTSPOTS_WORKERS", "").strip()
    if not cap:
        return None
    if not (cap.isascii() and cap.isdigit() and int(cap) >= 1):
        raise WorkersSettingError(f"$HOTSPOTS_WORKERS = {cap!r} is not a whole number of processes >= 1",
                                  hint="set HOTSPOTS_WORKERS to 1, 2, ... (or unset it to use every CPU)")
    return int(cap)


def max_workers() -> int:
    """Processes worth running at once: the CPUs this process may use, capped by ``HOTSPOTS_WORKERS``.

    1 where forking is not available or not safe (anything but Linux).  A
    ``HOTSPOTS_WORKERS`` that is not a whole number >= 1 raises
    :class:`WorkersSettingError` (a ValueError), on every platform.
    """
    cap = workers_cap()
    if not sys.platform.startswith("linux"):
        return 1
    workers = _cpu_count()
    if cap is not None:
        workers = min(workers, cap)
    return max(workers, 1)


def process_map(function, items: Sequence, *, weights: Sequence[float] | None = None,
                alongside: Callable[[], Any] | None = None) -> list:
    """``[function(item) for item in items]``, shared out among worker processes when that can help.

    The study areas (and the maps) are independent and CPU-bound: on two
    cores, two processes take about half the time, where threads would not
    (most of the work holds the GIL).  Workers are forked, so they see this
    process's data without copying it; only each result comes back
    (pickled).  On one CPU, with one item, or off Linux (no ``fork`` on
    Windows; not safe on macOS), it runs here, item by item.  ``function``
    need not be picklable.  Items are handed out heaviest first (by
    ``weights``) to keep the workers busy; results come back in item order.
    ``alongside``, if given, is called here while the workers work (before
    the items where there are no workers): this process would otherwise wait.
    Meanwhile a thread hands the items out as workers finish theirs (with
    this process's CPU kept for ``alongside``), so no worker waits for it.
    """
    workers = min(max_workers(), len(items))
    if workers < 2:
        if alongside is not None:
            alongside()
        return [function(item) for item in items]
    tokens = _cpu_tokens()
    order = sorted(range(len(items)), key=lambda i: -weights[i]) if weights is not None else list(range(len(items)))
    results: list = [None] * len(items)
    _FORKED["task"] = (function, items)
    # the workers' garbage collector would write to every object they inherit, copying the memory pages
    # they share with this process (about a quarter more time): frozen objects are left alone
    gc.freeze()
    running: dict = {}  # future -> "own" (this process's CPU, lent while it waits) or "token"
    own_free = alongside is None
    try:
        # an executor, not a Pool: a worker that dies (out of memory) fails the run instead of hanging it
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                 initializer=_pool_worker_init, initargs=(os.getpid(),)) as pool:
            # the executor forks its processes at its first item: hand it one now, so that they are forked here,
            # before the thread of _while_handing_out exists (a fork from that thread, while this one imports or
            # writes files, would copy locks held half-way into the workers)
            pool.submit(_nothing)

            def hand_out() -> None:
                nonlocal own_free
                while order and len(running) < workers:
                    if own_free:
                        own_free, slot = False, "own"
                    elif tokens.acquire(block=False):
                        slot = "token"
                    else:
                        return
                    running[pool.submit(_run_forked, order.pop(0))] = slot

            def settle(timeout: float) -> None:
                """Take in the items done within ``timeout`` s, give their CPUs back, hand out more."""
                nonlocal own_free
                done, _ = wait(list(running), timeout=timeout, return_when=FIRST_COMPLETED)
                for future in done:
                    slot = running.pop(future)
                    if slot == "own":
                        own_free = True
                    else:
                        tokens.release()
                    i, result = future.result()
                    results[i] = result
                hand_out()  # also takes tokens given back by other processes meanwhile

            try:
                hand_out()
                if alongside is not None:
                    # the items are handed out from a thread meanwhile: a worker that is done gets its next item
                    # at once, not when ``alongside`` returns (this process's CPU is not lent to them until then)
                    _while_handing_out(alongside, settle, lambda: bool(running))
                    own_free = True
                    hand_out()
                while running:
                    settle(0.2)
            except BaseException:
                for future, slot in running.items():
                    future.cancel()
                    if slot == "token":
                        tokens.release()
                running.clear()
                raise
    finally:
        _unfreeze()
        _FORKED.clear()
    return results


def _while_handing_out(alongside: Callable[[], Any], settle: Callable[[float], None],
                       busy: Callable[[], bool]) -> None:
    """Call ``alongside()`` here while a thread calls ``settle`` (waits for items and hands out more) until it returns.

    Until then only the thread touches the items' state (``alongside`` does not); an error in either is raised
    here, after both have stopped.  ``busy()``: whether items are running (else the thread looks for a free CPU
    every 0.05 s).
    """
    import threading

    stop = threading.Event()
    errors: list[BaseException] = []

    def pump() -> None:
        try:
            while not stop.is_set():
                if busy():
                    settle(0.05)
                else:
                    settle(0)  # nothing running: hands out an item if a CPU has come free
                    stop.wait(0.05)
        except BaseException as exc:  # noqa: BLE001 -- raised in the calling thread
            errors.append(exc)

    thread = threading.Thread(target=pump, name="hotspots-hand-out", daemon=True)
    thread.start()
    try:
        alongside()
    finally:
        stop.set()
        thread.join()
    if errors:
        raise errors[0]


def _nothing() -> None:
    """An item that does nothing (it makes the executor start its processes)."""


def _run_forked(i: int):
    function, items = _FORKED["task"]
    return i, function(items[i])


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a child process (shown with ``--verbose``)."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


class Forked:
    """A function running in a forked child process; :meth:`result` waits for what it returns."""

    def __init__(self, function: Callable[[], Any], name: str, tokens=None):
        self.name = name
        mp = multiprocessing.get_context("fork")
        self._recv, send = mp.Pipe(duplex=False)
        self._process = mp.Process(target=_child, args=(function, send, os.getpid(), tokens), name=f"hotspots-{name}",
                                   daemon=True)
        gc.freeze()  # as in process_map: the child's collector leaves the inherited objects alone
        try:
            self._process.start()
        finally:
            _unfreeze()
        send.close()  # this end lives in the child only: when the child ends, recv() sees end-of-file

    def result(self) -> Any:
        """The function's return value, or its exception raised here (with the child's traceback as cause)."""
        try:
            message = self._recv.recv()
        except EOFError:
            self._process.join()
            raise RuntimeError(
                f"the worker process for {self.name} stopped without a result (exit code {self._process.exitcode}; "
                "a negative code is a signal, -9 usually means the machine ran out of memory)"
            ) from None
        finally:
            self._recv.close()
        self._process.join()
        if message[0] == "ok":
            return message[1]
        _, exc, text = message
        raise exc from RemoteTraceback(text)

    def cancel(self, timeout: float = 10.0) -> None:
        """Stop the child (used when this process fails first): SIGTERM, then SIGKILL after ``timeout`` s.

        Under the ``hotspots`` command SIGTERM raises an exception in the child, which removes any file
        it was half-way through writing before it exits.
        """
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._recv.close()


def _die_with_parent(parent: int, sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send this process ``sig`` when its parent dies (however it dies, even SIGKILL).

    Without it a child would run on, and write files, after the run it belongs to has gone.
    """
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(sig))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux, or no prctl: nothing to do
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), sig)


def _pool_worker_init(parent: int) -> None:
    """Pool workers write no files and hold only their current item: on SIGTERM, or when the parent dies, they stop."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent, signal.SIGKILL)


def _child(function: Callable[[], Any], conn, parent: int, tokens=None) -> None:
    _die_with_parent(parent)
    try:
        message = ("ok", function())
    except BaseException as exc:  # noqa: BLE001 -- every failure goes back to the parent, which raises it
        message = ("error", exc, traceback.format_exc())
    finally:
        if tokens is not None:
            tokens.release()  # this process's CPU is free for the others (its result is small to send)
    try:
        conn.send(message)
    except Exception as exc:  # noqa: BLE001 -- e.g. a result that cannot be pickled
        conn.send(("error", RuntimeError(f"the result could not be sent back from the worker process: {exc}"),
                   traceback.format_exc()))
    finally:
        conn.close()


def fork_call(function: Callable[[], Any], *, name: str) -> Forked | None:
    """Start ``function()`` in a forked child process; ``None`` where that cannot help (see :func:`max_workers`).

    The child shares this process's memory as it was at the fork (copy on
    write); what it changes in memory stays in the child, so ``function``
    must return everything the parent needs.  Files it writes are written.
    """
    if max_workers() < 2:
        return None
    tokens = _cpu_tokens()
    if not tokens.acquire(block=False):  # every CPU is busy: run it here, in order
        return None
    try:
        forked = Forked(function, name, tokens)
    except BaseException:
        tokens.release()
        raise
    _CPU["children"].append(forked._process)
    return forked
