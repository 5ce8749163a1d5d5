"""Data in: police.uk street-level files and force exports, read into points.

Every row read is either kept or counted under a named reason, and the
accounting proves ``kept + dropped == read``.  Points come out in British
National Grid (EPSG:27700), projected once, here.

Modules
-------
police_uk
    :func:`read_crimes` (the notebook verb: a GeoDataFrame of points) and
    :func:`read_police_uk` (points plus accounting, used by the pipeline).
force_export
    :func:`read_force_export` with a :class:`ColumnMapping` for a force's own CSV.
lsoa
    :func:`harmonise_lsoa`: 2011 and 2021 LSOA codes onto the 2021 geography.
accounting
    :class:`Accounting`, :class:`FileAccount`, :class:`IngestResult`.
download
    Fetching police.uk archives and ONS files (the only module that touches
    the network; not imported here).
_files, _parse
    Private: finding and decoding files; CSV parsing and row validation.
"""

from hotspots.io.accounting import Accounting, FileAccount, IngestResult
from hotspots.io.force_export import ColumnMapping, read_force_export
from hotspots.io.lsoa import harmonise_lsoa
from hotspots.io.police_uk import read_crimes, read_police_uk

__all__ = [
    "read_crimes",
    "read_police_uk",
    "read_force_export",
    "ColumnMapping",
    "harmonise_lsoa",
    "Accounting",
    "FileAccount",
    "IngestResult",
]
