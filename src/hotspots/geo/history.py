"""police.uk history to force-month Parquet partitions, one file at a time (out of core).

:func:`build_history` streams the police.uk street-level files of a data home
(every force found, or those asked for) into the partitions that
:func:`hotspots.geo.national.aggregate_partitions` aggregates.  Each
force-month is read with the toolkit's own reader
(:func:`hotspots.io.police_uk.read_police_uk`: parsing, validation,
projection to British National Grid, row accounting), its LSOA codes are put
on the 2021 geography (:func:`hotspots.io.lsoa.harmonise_lsoa`), and it is
written and forgotten: memory holds one force-month at a time (the largest,
the Met's, is about 100,000 rows), never the history.

Every row read is written or counted under a reason of
:data:`hotspots.schema.DROP_REASONS`; ``build.json`` in the partitions folder
holds the accounting (totals, per file, per reason) and the LSOA
harmonisation counts, and the build refuses to finish if it does not balance.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hotspots._errors import AccountingError, DataNotFoundError, InputFileError
from hotspots.geo.boundaries import _read_lsoa11_lookup, find_file, read_boundary
from hotspots.geo._lookups import ons_columns
from hotspots.geo.national import PARTITION_COLUMNS, write_partition
from hotspots.io._files import find_police_files
from hotspots.io.lsoa import harmonise_lsoa
from hotspots.io.police_uk import read_police_uk

__all__ = ["build_history", "partition_months", "BUILD_FILE"]

#: the accounting of a build, in the partitions folder
BUILD_FILE = "build.json"
_LSOA_STATS = ("published_2021", "mapped_2011_one_to_one", "split_by_location", "split_lowest_code", "unknown_code", "blank")


def build_history(data_dir: str | os.PathLike, root: str | os.PathLike, *, forces: Sequence[str] | None = None,
                  first_month: str | None = None, last_month: str | None = None,
                  progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Write every police.uk force-month of a data home as a Parquet partition, one file at a time.

    Parameters
    ----------
    data_dir
        The data home (``police_uk/<force>/street/YYYY-MM-<force>-street.csv[.gz]``,
        zip archives too), with the LSOA 2011 -> 2021 lookup and, for LSOAs
        split in 2021, the LSOA 2021 polygons (``lookups/``, ``boundaries/``).
    root
        Partitions folder to (re)write: ``force=<slug>/month=<YYYY-MM>/part-0.parquet``
        (columns :data:`hotspots.geo.national.PARTITION_COLUMNS`) and
        :data:`BUILD_FILE`.  It is written beside as ``<root>.building`` and
        swapped in at the end, so a failed build leaves the previous one intact.
        An existing ``root`` that is not a history build is refused.
    forces
        police.uk force slugs to keep; default every force found.
    first_month, last_month
        Inclusive ``YYYY-MM`` range of the files to read.
    progress
        Optional ``progress(done, total, label)``, called before each force-month.

    Returns
    -------
    dict
        ``rows_read``, ``rows_written``, ``dropped`` (rows by reason),
        ``lsoa`` (rows by harmonisation method), ``forces``, ``months``,
        ``partitions``, ``files``, ``seconds`` and ``root``; the same is in
        ``root/build.json`` with the accounting of every file.

    Raises
    ------
    InputFileError
        No police.uk street files, an unreadable or inconsistent file (see
        :func:`~hotspots.io.police_uk.read_police_uk`), or ``root`` is a
        folder that is not a history build.
    DataNotFoundError
        The LSOA 2011 -> 2021 lookup is missing from the data home.

    Notes
    -----
    Duplicate Crime IDs are found within each force-month (police.uk
    publishes a crime in the month it was recorded); a repeat across months
    is kept in both.  Rows without coordinates, outside Great Britain or with
    an unknown crime type are dropped as in ``hotspots run``; a row is not
    dropped for lying outside its force (the national totals keep it where it
    is), and a row whose LSOA code is blank or unknown is written with
    ``lsoa21_code = ""`` (it counts in the lattice totals, and in the LSOA
    table under the empty code).
    """
    t0 = time.perf_counter()
    data_dir, root = Path(data_dir), Path(root)
    police = data_dir / "police_uk"
    skipped: list[dict[str, str]] = []
    sources = find_police_files([police if police.is_dir() else data_dir], forces=forces, first_month=first_month,
                                last_month=last_month, skipped=skipped)
    groups: dict[tuple[str, str], list[Path]] = {}
    for src in sources:
        if src.force and src.month:
            paths = groups.setdefault((src.force, src.month), [])
            if src.path not in paths:
                paths.append(src.path)
    if not groups:
        raise InputFileError(f"no police.uk street-level files under {police if police.is_dir() else data_dir}"
                             + (f" for force(s) {', '.join(forces)}" if forces else ""),
                             hint="files must be named YYYY-MM-<force>-street.csv[.gz]; run `hotspots info`")
    if root.exists() and (not root.is_dir() or any(root.iterdir())) and not (root / BUILD_FILE).is_file():
        raise InputFileError(f"{root} exists and is not a history build (no {BUILD_FILE}); it would be replaced",
                             hint="give an empty or new folder for the partitions")
    lookup, lookup_path = _read_lsoa11_lookup(data_dir)
    polygons = _split_polygons(data_dir, lookup)
    tmp = root.with_name(root.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    totals: dict[str, Any] = {"rows_read": 0, "rows_written": 0, "dropped": {}, "lsoa": dict.fromkeys(_LSOA_STATS, 0)}
    files: list[dict] = []
    try:
        info = _build(groups, tmp, root, lookup, lookup_path, polygons, totals, files, skipped, progress, t0)
    except BaseException:  # a failed build leaves no half-written copy behind (the previous build is untouched)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if root.exists():
        shutil.rmtree(root)
    tmp.rename(root)
    return info


def _build(groups, tmp, root, lookup, lookup_path, polygons, totals, files, skipped, progress, t0) -> dict:
    """Write every force-month partition under ``tmp`` and its build.json; the accounting of :func:`build_history`."""
    for i, ((force, month), paths) in enumerate(sorted(groups.items())):
        if progress:
            progress(i, len(groups), f"{force} {month}")
        res = read_police_uk(paths, forces=[force], first_month=month, last_month=month)
        points, lsoa_stats = harmonise_lsoa(res.points, lookup, lsoa21_polygons=polygons)
        res.accounting.check(points)
        write_partition(tmp, force, month, points[list(PARTITION_COLUMNS)])
        acc = res.accounting.to_dict()
        totals["rows_read"] += acc["rows_read"]
        totals["rows_written"] += len(points)
        for reason, n in acc["dropped"].items():
            totals["dropped"][reason] = totals["dropped"].get(reason, 0) + int(n)
        for k in _LSOA_STATS:
            totals["lsoa"][k] += int(lsoa_stats.get(k, 0))
        files += [{k: f[k] for k in ("path", "force", "month", "rows_read", "kept", "dropped", "sha256")} for f in acc["files"]]
    if progress:
        progress(len(groups), len(groups), "done")
    dropped = sum(totals["dropped"].values())
    if totals["rows_written"] + dropped != totals["rows_read"]:
        raise AccountingError(f"history build does not balance: read {totals['rows_read']:,}, written "
                              f"{totals['rows_written']:,}, dropped {dropped:,} (a bug in hotspots, please report it)")
    info = {**totals, "dropped": dict(sorted(totals["dropped"].items(), key=lambda kv: -kv[1])),
            "forces": sorted({f for f, _ in groups}), "months": sorted({m for _, m in groups}),
            "partitions": len(groups), "files": len(files), "seconds": round(time.perf_counter() - t0, 2),
            "root": str(root), "lookup": str(lookup_path),
            "split_polygons": None if polygons is None else len(polygons)}
    (tmp / BUILD_FILE).write_text(json.dumps({**info, "per_file": files, "skipped": skipped}, indent=1))
    return info


def _split_polygons(data_dir: Path, lookup):
    """LSOA 2021 polygons of the 2021 LSOAs that split a 2011 LSOA (None without a polygon file).

    Only these are needed (a split 2011 code is resolved by the point's position); the
    rest of the national file is not kept in memory.
    """
    per_11 = lookup.groupby("lsoa11_code")["lsoa21_code"].transform("nunique")
    split_codes = set(lookup.loc[per_11.to_numpy() > 1, "lsoa21_code"])
    try:
        path = find_file(data_dir, "lsoa21")
    except DataNotFoundError:  # splits then go to the lowest code, counted as split_lowest_code
        return None
    gdf = ons_columns(read_boundary(path, name="LSOA 2021 boundary file"))
    if "lsoa21_code" not in gdf:
        return None
    return gdf.loc[gdf["lsoa21_code"].isin(split_codes), ["lsoa21_code", "geometry"]].reset_index(drop=True)


def partition_months(root: str | os.PathLike) -> dict[str, list[str]]:
    """Months present per force in a partitions folder (from the folder names)."""
    out: dict[str, list[str]] = {}
    for folder in sorted(Path(root).glob("force=*/month=*")):
        if any(folder.glob("*.parquet")):
            out.setdefault(folder.parent.name.split("=", 1)[1], []).append(folder.name.split("=", 1)[1])
    return out

