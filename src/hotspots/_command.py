"""How a command prepares its run: the police.uk files read ahead in a child process
(:mod:`hotspots.io.ingest_ahead`) while the stages are imported and the config checked, then
:func:`hotspots.stages.prepare`.  Called by :mod:`hotspots.cli`, below it in the layers.
"""

from __future__ import annotations

from pathlib import Path

from hotspots.io.ingest_ahead import IngestAhead, start, stopped_on_error

__all__ = ["prepare_for_command", "start_for_command"]


def prepare_for_command(obj, *, defer_records_store: bool = False, while_reading=None):
    """:func:`hotspots.stages.prepare` for the command's options ``obj`` (:class:`hotspots.cli._Obj`), staged.

    ``while_reading(settings)`` gives the function ``prepare`` calls while the files are read ahead (or None).
    """
    ahead = start_for_command(obj.config, obj.data, obj.out)  # before the stages and their libraries are imported
    with stopped_on_error(ahead):
        from hotspots.stages import prepare

        settings = obj.settings()  # every section checked, before any data is read here
        progress = obj.progress()
    return prepare(settings, data=obj.data, out=obj.out, progress=progress, staged=True,
                   defer_records_store=defer_records_store, ingest_ahead=ahead,
                   while_reading=while_reading(settings) if while_reading is not None else None)


def start_for_command(config, data, out) -> IngestAhead | None:
    """:func:`~hotspots.io.ingest_ahead.start` for a command's ``--config``, ``--data`` and ``--out``.

    From the top of the config only (the sections are checked by the command, after the start).
    ``None`` also when the config or the data home has a problem: the command reports it, in its order.
    """
    try:
        from hotspots.config import load_config, resolve_data_dir

        top = load_config(config, sections=None)
        data_dir = resolve_data_dir(top, data)
        out_root = Path(out or top.output_dir).expanduser().resolve()
        return start(top, data_dir, out_root)
    except Exception:  # noqa: BLE001 -- reading ahead only saves time
        return None
