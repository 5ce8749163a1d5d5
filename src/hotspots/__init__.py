"""hotspots: crime and ASB hotspots, CSP outliers and hotspot-patrol evaluation.

The toolkit does three jobs for police and community-safety analysts in England
and Wales, each a package of plain functions (data in, tables out) that the
``hotspots`` command wires together:

* **CSP outliers** (:mod:`hotspots.outliers`): rates per 1,000 residents,
  funnel limits with overdispersion, change against the rest of the county.
* **Hotspots and patrol areas** (:mod:`hotspots.detect`): Gi* with FDR, local
  Moran, KDE, clusters, emerging hot spots, numbered patrol areas, maps.
* **Evaluation** (:mod:`hotspots.evaluation`): difference-in-differences,
  displacement (WDQ, WDD), panel model, regression to the mean, cost.

Data come in through :mod:`hotspots.io` (police.uk files, force exports) and
:mod:`hotspots.geo` (boundaries, grids, counts), always in British National Grid
(EPSG:27700).  The verbs below are the notebook API; they are imported on first
use, so ``import hotspots`` stays cheap.

Examples
--------
Gi* hot spots for your own points in a few lines:

>>> import hotspots, shapely
>>> pts = hotspots.synthetic_points(seed=1)            # or hotspots.read_crimes("police_uk/")
>>> area = shapely.box(520_000, 210_000, 522_000, 212_000)   # a polygon in EPSG:27700
>>> cells = hotspots.find_hotspots(pts, area, cell_size=200)
>>> int(cells["count"].sum()) == len(pts)
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from hotspots._errors import (
    ConfigError,
    CRSError,
    DataNotFoundError,
    HotspotsError,
    InputFileError,
    ValidationError,
)
from hotspots._version import __version__

#: verb -> the module that defines it (imported on first use)
_VERBS = {
    # data in
    "read_crimes": "hotspots.io",
    "read_force_export": "hotspots.io",
    "read_boundary": "hotspots.geo",
    "count_in_areas": "hotspots.geo",
    "make_grid": "hotspots.geo",
    "synthetic_points": "hotspots.datasets",
    "synthetic_districts": "hotspots.datasets",
    "write_police_uk_sample": "hotspots.datasets",
    # hotspots and patrol areas
    "find_hotspots": "hotspots.detect",
    "patrol_areas": "hotspots.detect",
    "hotspot_map": "hotspots.render.maps",
    "gi_star": "hotspots.detect",
    "local_moran": "hotspots.detect",
    "kde_quartic": "hotspots.detect",
    "mann_kendall": "hotspots.detect",
    # CSP and area outliers
    "area_outliers": "hotspots.outliers",
    "funnel_limits": "hotspots.outliers",
    "overdispersion": "hotspots.outliers",
    "rate_ratio_test": "hotspots.outliers",
    # evaluation
    "evaluate_areas": "hotspots.evaluation",
    "did_rate_ratio": "hotspots.evaluation",
    "wdq": "hotspots.evaluation",
    "wdd": "hotspots.evaluation",
    # shared
    "fdr_bh": "hotspots.fdr",
}
#: the notebook verbs, in the order the documentation lists them
VERBS = tuple(_VERBS)

__all__ = [
    *VERBS,
    "VERBS",
    "HotspotsError",
    "ConfigError",
    "CRSError",
    "DataNotFoundError",
    "InputFileError",
    "ValidationError",
    "__version__",
]


def __getattr__(name: str):
    if name in _VERBS:
        value = getattr(importlib.import_module(_VERBS[name]), name)
        globals()[name] = value  # the next lookup is a plain attribute
        return value
    raise AttributeError(f"module 'hotspots' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for editors and type checkers; at run time the verbs load lazily
    from hotspots.detect import (  # noqa: F401
        find_hotspots, gi_star, kde_quartic, local_moran, mann_kendall, patrol_areas,
    )
    from hotspots.evaluation import did_rate_ratio, evaluate_areas, wdd, wdq  # noqa: F401
    from hotspots.datasets import synthetic_districts, synthetic_points, write_police_uk_sample  # noqa: F401
    from hotspots.fdr import fdr_bh  # noqa: F401
    from hotspots.geo import count_in_areas, make_grid, read_boundary  # noqa: F401
    from hotspots.io import read_crimes, read_force_export  # noqa: F401
    from hotspots.render.maps import hotspot_map  # noqa: F401
    from hotspots.outliers import area_outliers, funnel_limits, overdispersion, rate_ratio_test  # noqa: F401
