"""The points as plain arrays and integer codes, and location summaries (commonest streets) per group."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd

from hotspots.harm import harm_of
from hotspots.schema import BNG, WGS84

#: police.uk "On or near ..." place labels that are not street names
GENERIC_LOCATIONS = {
    "Parking Area", "Supermarket", "Petrol Station", "Shopping Area", "Sports/Recreation Area", "Pedestrian Subway",
    "Nightclub", "Police Station", "Park/Open Space", "Hospital", "Further/Higher Educational Building",
    "Theatre/Concert Hall", "Bus/Coach Station", "Prison", "Airport/Airfield", "Conference/Exhibition Centre",
    "Train Station", "Railway Station", "Cinema", "Hotel", "Bus Station", "Nursing Home",
}


def _lookup(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``table[codes]`` with code -1 (missing) mapping to False."""
    return np.append(table, False)[codes]


@dataclasses.dataclass
class PointCodes:
    """The points as plain arrays: coordinates, and integer codes for the text columns.

    The text columns are pyarrow-backed strings: converting or comparing them
    per selection, area and patrol area cost most of the stage's time.  They
    are factorised once; selections and periods become small lookup tables
    indexed by the codes.
    """

    x: np.ndarray
    y: np.ndarray
    month: np.ndarray  # code into month_labels, -1 when missing
    month_labels: np.ndarray
    crime_type: np.ndarray  # code into type_labels, -1 when missing
    type_labels: np.ndarray
    name: np.ndarray  # code into names: the location without "On or near ", -1 when that is empty
    names: np.ndarray
    is_street: np.ndarray  # per name: a street, not a generic place label
    harm: np.ndarray  # harm weight per point (NaN for ASB)

    @classmethod
    def of(cls, points: pd.DataFrame, harm_weights: pd.Series) -> PointCodes:
        month, month_labels = pd.factorize(points["month"])
        crime_type, type_labels = pd.factorize(points["crime_type"])
        location, location_labels = pd.factorize(points["location"], use_na_sentinel=False)
        stripped = pd.Series(location_labels).map(_strip_location)
        name_of_location, names = pd.factorize(stripped)
        names = np.asarray(names, dtype=object)
        empty = np.flatnonzero(names == "")
        if len(empty):
            name_of_location = np.where(name_of_location == empty[0], -1, name_of_location)
        return cls(
            x=points["x"].to_numpy(float), y=points["y"].to_numpy(float),
            month=month, month_labels=np.asarray(month_labels, dtype=object),
            crime_type=crime_type, type_labels=np.asarray(type_labels, dtype=object),
            name=name_of_location[location], names=names,
            is_street=np.array([n not in GENERIC_LOCATIONS and "/" not in n for n in names], dtype=bool),
            harm=harm_of(points["crime_type"], harm_weights),
        )

    def in_months(self, months: Sequence[str]) -> np.ndarray:
        """Per point: is its month one of ``months`` (as ``np.isin(month, months)``); read-only, kept per ``months``."""
        return self._kept("in_months", months, lambda: _lookup(np.isin(self.month_labels, list(months)), self.month))

    def of_types(self, crime_types: Sequence[str]) -> np.ndarray:
        """Per point: is its crime type one of ``crime_types``; read-only, kept per ``crime_types``."""
        return self._kept("of_types", crime_types,
                          lambda: _lookup(np.isin(self.type_labels, list(crime_types)), self.crime_type))

    def month_position(self, months: Sequence[str]) -> np.ndarray:
        """Per point: the position of its month in ``months`` (-1 when not there); read-only, kept per ``months``."""
        def build():
            pos = {m: i for i, m in enumerate(months)}
            table = np.array([pos.get(m, -1) for m in self.month_labels] + [-1], dtype=np.int64)
            return table[self.month]

        return self._kept("month_position", months, build)

    def _kept(self, kind: str, values: Sequence[str], build) -> np.ndarray:
        """``build()``, kept for the next call with the same text ``values`` (every selection and study area asks
        the same few questions of the same points); the array is read-only, as it is shared."""
        values = tuple(values)
        if not all(type(v) is str for v in values):  # only plain text keys are kept
            return build()
        memo = self.__dict__.setdefault("_memo", {})  # not a dataclass field: not compared, not copied
        key = (kind, values)
        out = memo.get(key)
        if out is None:
            if len(memo) >= 64:
                memo.clear()
            out = build()
            out.flags.writeable = False
            memo[key] = out
        return out


def _ranked_counts(group: np.ndarray, code: np.ndarray, n_codes: int):
    """Counts of ``code`` within each group, ordered as ``value_counts`` orders them.

    ``value_counts`` sorts by count, descending, ties in order of first
    appearance; rows with group or code -1 are left out.  Returns (group,
    code, count) sorted by group, then in that order.
    """
    keep = (group >= 0) & (code >= 0)
    key = group[keep].astype(np.int64) * n_codes + code[keep]
    unique, first, count = np.unique(key, return_index=True, return_counts=True)
    groups, codes = np.divmod(unique, n_codes)
    order = np.lexsort((first, -count, groups))
    return groups[order], codes[order], count[order]


def _group_bounds(groups: np.ndarray) -> list[tuple[int, int, int]]:
    """(group, start, end) of each run of equal values in sorted ``groups``."""
    if len(groups) == 0:
        return []
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    ends = np.r_[starts[1:], len(groups)]
    return list(zip(groups[starts].tolist(), starts.tolist(), ends.tolist()))


def _location_summaries(group: np.ndarray, codes: PointCodes, rows: np.ndarray, n_groups: int, k: int = 2
                        ) -> tuple[list[str], list[str]]:
    """Per group of points: (commonest street, "the k commonest location labels (count); ...").

    ``rows``: the points (positions in ``codes``, in the points' order) and
    ``group`` the group of each (-1: none).  Location texts lose "On or near ";
    they are ranked as ``value_counts`` ranks them (most frequent first, ties
    in order of first appearance); the street is the first that is not a
    generic place label (:data:`GENERIC_LOCATIONS`) nor a "/" junction, else
    the commonest label.  Groups without located points get ("", "").
    """
    street, top = [""] * n_groups, [""] * n_groups
    groups, name, count = _ranked_counts(group, codes.name[rows], len(codes.names))
    for g, start, end in _group_bounds(groups):
        streets = np.flatnonzero(codes.is_street[name[start:end]])
        street[g] = codes.names[name[start + streets[0]] if len(streets) else name[start]]
        top[g] = "; ".join(f"{codes.names[name[j]]} ({int(count[j])})" for j in range(start, min(end, start + k)))
    return street, top



def _strip_location(loc: str) -> str:
    loc = str(loc or "").strip()
    return loc[len("On or near "):].strip() if loc.lower().startswith("on or near ") else loc



def _lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude (rounded to 6 places) of BNG points, as :func:`_lonlat_reference` gives them.

    Finite coordinates go straight to the transformer ``GeoSeries.to_crs`` uses (the same
    ``Transformer.from_crs(..., always_xy=True)`` on the same coordinates, so the same numbers), without
    building points; anything else takes the reference route.
    """
    if len(x) == 0:
        return np.array([]), np.array([])
    xa, ya = np.asarray(x), np.asarray(y)
    if xa.dtype != np.float64 or ya.dtype != np.float64 or xa.ndim != 1 or xa.shape != ya.shape \
            or not (np.isfinite(xa).all() and np.isfinite(ya).all()):
        return _lonlat_reference(x, y)
    lon, lat = _bng_to_wgs84().transform(xa, ya)
    return np.round(np.asarray(lon, dtype=np.float64), 6), np.round(np.asarray(lat, dtype=np.float64), 6)


def _lonlat_reference(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_lonlat` through geopandas (points, ``to_crs``): the reference, and the route for odd input."""
    if len(x) == 0:
        return np.array([]), np.array([])
    pts = gpd.GeoSeries(gpd.points_from_xy(x, y), crs=BNG).to_crs(WGS84)
    return np.round(pts.x.to_numpy(), 6), np.round(pts.y.to_numpy(), 6)


@functools.lru_cache(maxsize=1)
def _bng_to_wgs84():
    """The transformer of ``GeoSeries.to_crs`` from BNG to WGS84 (geopandas: ``Transformer.from_crs``, always_xy)."""
    from pyproj import CRS, Transformer

    return Transformer.from_crs(CRS.from_user_input(BNG), CRS.from_user_input(WGS84), always_xy=True)

