"""Count points in areas: counts by area × month × crime type, rates, periods.

:func:`count_in_areas` is the notebook verb; :func:`count_points` is the
pipeline's counter under it.  :func:`resolve_periods` chooses the analysis and
comparison periods, :func:`rates` turns counts into rates per 1,000 residents
and per km², and :func:`reconcile_districts` compares the two ways of placing
a point in a district.

Two ways to place a point in an area, chosen per area type and recorded:

* ``spatial`` (town centre, grid, user polygons; force, district and CSP
  tables given without an LSOA mapping): the point's BNG coordinates against
  the polygons (:func:`hotspots.geo.assign.assign_points`; boundary rule
  documented there).
* ``lsoa_code`` (LSOA, ward; and force, district, CSP in ``hotspots run``,
  which passes :meth:`hotspots.geo.Geography.lsoa_to_area`): police.uk's own
  LSOA assignment, harmonised to 2021.  police.uk assigns LSOAs on
  full-resolution boundaries, whereas the open LSOA polygons are generalised
  to 200 m, so a spatial join would misplace points near LSOA edges.  Wards
  are LSOA best-fit aggregates; CSPs are built from LSOAs (some follow
  districts abolished since 2019).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd

from hotspots._errors import CRSError
from hotspots._validate import _check_xy_metres, _Problems
from hotspots.geo.assign import assign_points
from hotspots.months import month_range, shift_month
from hotspots.schema import BNG, COUNT_COLUMNS, RATE_COLUMNS

__all__ = ["count_in_areas", "count_points", "add_groups", "Period", "Periods", "resolve_periods", "rates",
           "reconcile_districts"]

SPATIAL_TYPES = {"force", "district", "csp", "town_centre", "grid", "user"}
OVERLAPPING_TYPES = {"town_centre", "user"}


def count_in_areas(
    points: pd.DataFrame,
    areas: gpd.GeoDataFrame,
    *,
    months: Sequence[str] | None = None,
    crime_types: Sequence[str] | None = None,
    lsoa_to_area: pd.Series | None = None,
) -> pd.DataFrame:
    """Count crimes by area, month and crime type, with zeros where none fell.

    Parameters
    ----------
    points : DataFrame or GeoDataFrame
        One row per crime with ``month`` and ``crime_type``; locations in
        ``x``/``y`` (eastings/northings, EPSG:27700), or, when those columns
        are absent, point ``geometry`` of a GeoDataFrame in EPSG:27700 (as
        from :func:`hotspots.read_crimes`).
    areas : GeoDataFrame
        Polygons in EPSG:27700 with a unique ``area_code``; ``area_name``
        (default: the code) and ``area_type`` (default ``"user"``) are
        optional.  Any area table of :data:`hotspots.schema.AREA_COLUMNS` works.
    months, crime_types : list of str, optional
        Every month and crime type to report, so that combinations without
        crimes appear with a zero count.  Default: those present in ``points``.
    lsoa_to_area : pandas.Series, optional
        For LSOA and ward areas, which are counted by each point's
        ``lsoa21_code`` rather than its location: maps an LSOA 2021 code to
        an ``area_code`` (default: the identity, for LSOAs).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`hotspots.schema.COUNT_COLUMNS` (``area_type``,
        ``area_code``, ``area_name``, ``month``, ``crime_type``, ``count``),
        one row per area × month × crime type, sorted by each.
        ``attrs["method"]`` says how points were placed: ``"spatial"`` or
        ``"lsoa_code"``.

    Raises
    ------
    CRSError
        ``points`` (a GeoDataFrame) or ``areas`` are not in EPSG:27700, or
        plain ``x``/``y`` look like longitude/latitude degrees.
    ValidationError
        Missing columns, or point geometry that is not points.

    Notes
    -----
    ``area_type`` chooses the method and boundary rule: LSOAs and wards use
    police.uk's published LSOA code (the open LSOA polygons are generalised,
    so a spatial join would misplace points near their edges); other types
    place the point in the polygons.  Partitions (force, district, csp,
    grid) count a point on a shared edge once, in the area with the lowest
    code; overlapping types (``town_centre``, ``user``) count it in every
    area that covers it.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd
    >>> from shapely.geometry import box
    >>> beats = gpd.GeoDataFrame({"area_code": ["north", "south"]},
    ...     geometry=[box(0, 500, 1000, 1000), box(0, 0, 1000, 500)], crs=27700)
    >>> crimes = pd.DataFrame({"x": [100.0, 200.0, 300.0], "y": [900.0, 800.0, 100.0],
    ...     "month": ["2025-01", "2025-02", "2025-02"], "crime_type": "Burglary"})
    >>> counts = count_in_areas(crimes, beats)
    >>> print(counts[["area_code", "month", "crime_type", "count"]].to_string(index=False))
    area_code   month crime_type  count
        north 2025-01   Burglary      1
        north 2025-02   Burglary      1
        south 2025-01   Burglary      0
        south 2025-02   Burglary      1
    >>> counts.attrs["method"]
    'spatial'
    """
    problems = _Problems("count_in_areas")
    if not isinstance(points, pd.DataFrame):
        problems.add(f"points must be a DataFrame or GeoDataFrame, got {type(points).__name__}",
                     "Pass the crimes as a table, e.g. from hotspots.read_crimes.")
    if not isinstance(areas, gpd.GeoDataFrame):
        problems.add(f"areas must be a GeoDataFrame, got {type(areas).__name__}",
                     "Read the polygons with hotspots.read_boundary or geopandas.read_file.")
    problems.raise_if_any()
    missing = [c for c in ("month", "crime_type") if c not in points.columns]
    if missing:
        problems.add(f"points lack the column(s) {missing}", "Points need a month (YYYY-MM) and a crime_type.")
    if "area_code" not in areas.columns:
        problems.add("areas lack an area_code column", "Add a unique code per polygon: areas['area_code'] = ...")
    elif areas["area_code"].duplicated().any():
        problems.add(f"areas repeat area_code(s) {sorted(areas.loc[areas['area_code'].duplicated(), 'area_code'])[:5]}",
                     "Give each polygon a unique area_code.")
    problems.raise_if_any()
    if areas.crs is None or areas.crs.to_epsg() != 27700:
        raise CRSError(f"areas are in {'no CRS' if areas.crs is None else areas.crs.to_string()}, but counts "
                       f"need British National Grid ({BNG})",
                       hint="project them first: areas.to_crs(27700), or read them with hotspots.read_boundary")
    if isinstance(points, gpd.GeoDataFrame) and (points.crs is None or points.crs.to_epsg() != 27700):
        raise CRSError(f"points are in {'no CRS' if points.crs is None else points.crs.to_string()}, but areas "
                       f"are in British National Grid ({BNG})",
                       hint="project them first: points.to_crs(27700)")
    if not {"x", "y"} <= set(points.columns):
        if not isinstance(points, gpd.GeoDataFrame):
            problems.add("points have neither x/y columns nor a geometry",
                         "Pass eastings/northings in x and y, or a GeoDataFrame of points.")
        elif len(points) and not (points.geom_type == "Point").all():
            problems.add("points have non-point geometries", "Pass one point per crime.")
        problems.raise_if_any()
        points = pd.DataFrame({"x": points.geometry.x.to_numpy(float), "y": points.geometry.y.to_numpy(float),
                               "month": points["month"].to_numpy(), "crime_type": points["crime_type"].to_numpy(),
                               "lsoa21_code": points["lsoa21_code"].to_numpy() if "lsoa21_code" in points else ""})
    else:
        _check_xy_metres(points["x"].to_numpy(float), points["y"].to_numpy(float))
    if "area_name" not in areas.columns or "area_type" not in areas.columns:
        areas = areas.assign(**{"area_name": areas["area_code"]} if "area_name" not in areas.columns else {},
                             **{"area_type": "user"} if "area_type" not in areas.columns else {})
    return count_points(points, areas, months=months, crime_types=crime_types, lsoa_to_area=lsoa_to_area)


def count_points(
    points: pd.DataFrame,
    areas: gpd.GeoDataFrame,
    *,
    months: Sequence[str] | None = None,
    crime_types: Sequence[str] | None = None,
    method: str | None = None,
    lsoa_to_area: pd.Series | None = None,
    zeros: bool = True,
) -> pd.DataFrame:
    """Counts by area × month × crime type.

    Parameters
    ----------
    points
        Points from :mod:`hotspots.io` (``x``, ``y``, ``month``,
        ``crime_type``, ``lsoa21_code``).
    areas
        An area table (:data:`hotspots.schema.AREA_COLUMNS`).
    months, crime_types
        Full list of months and types; with ``zeros=True`` every combination
        appears, with a zero count where no point fell.  Default: those present.
    method
        ``"spatial"`` or ``"lsoa_code"``; default ``"lsoa_code"`` when
        ``lsoa_to_area`` is given or for LSOAs and wards, else ``"spatial"``.
    lsoa_to_area
        For ``lsoa_code``: maps an LSOA 2021 code to an area code (identity
        for LSOAs; the ward, district or CSP lookup otherwise).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`hotspots.schema.COUNT_COLUMNS`.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd
    >>> from shapely.geometry import box
    >>> areas = gpd.GeoDataFrame({"area_type": "district", "area_code": ["A", "B"], "area_name": ["a", "b"],
    ...     "district_code": "", "population": [100.0, 200.0], "area_km2": 1.0},
    ...     geometry=[box(0, 0, 1000, 1000), box(1000, 0, 2000, 1000)], crs=27700)
    >>> pts = pd.DataFrame({"x": [10.0, 1000.0, 1500.0], "y": [10.0, 500.0, 500.0],
    ...     "month": "2025-01", "crime_type": "Burglary", "lsoa21_code": ""})
    >>> count_points(pts, areas, method="spatial")["count"].tolist()  # the edge point goes to A (lowest code)
    [2, 1]
    """
    area_type = str(areas["area_type"].iloc[0]) if len(areas) else "user"
    if method is None:
        method = "lsoa_code" if lsoa_to_area is not None or area_type not in SPATIAL_TYPES else "spatial"
    # Each counted point is (row of points, key): the key is an area row (spatial) or a distinct
    # LSOA code (lsoa_code), whose area code is key_code[key].  Counting is then a bincount of
    # integer codes; a groupby on three string columns is ~10x slower at national scale.
    if method == "spatial":
        pairs = assign_points(points["x"].to_numpy(), points["y"].to_numpy(), areas, exclusive=area_type not in OVERLAPPING_TYPES)
        rows = pairs["point"].to_numpy()
        key = pairs["area"].to_numpy()
        key_code = areas["area_code"].to_numpy()
    elif method == "lsoa_code":
        mapping = lsoa_to_area if lsoa_to_area is not None else pd.Series(areas["area_code"].to_numpy(), index=areas["area_code"].to_numpy())
        lsoa_key, lsoa_codes = pd.factorize(points["lsoa21_code"])
        mapped = pd.Series(lsoa_codes, dtype=object).map(mapping)
        ok = (mapped.notna() & mapped.isin(areas["area_code"])).to_numpy()
        rows = np.flatnonzero((lsoa_key >= 0) & ok[np.maximum(lsoa_key, 0)]) if len(ok) else np.zeros(0, dtype=np.int64)
        key = lsoa_key[rows]
        key_code = mapped.to_numpy()
    else:
        raise ValueError(f"method={method!r}")
    month_code, month_values = pd.factorize(points["month"])
    type_code, type_values = pd.factorize(points["crime_type"])
    month_code, type_code = month_code[rows], type_code[rows]
    if zeros:
        lists = [
            sorted(areas["area_code"]),
            sorted(months) if months is not None else sorted(points["month"].unique()),
            sorted(crime_types) if crime_types is not None else sorted(points["crime_type"].unique()),
        ]
    else:
        lists = [_sorted_present(key_code, key), _sorted_present(month_values, month_code), _sorted_present(type_values, type_code)]
    lists = [pd.Index(values) for values in lists]
    distinct = [values.unique() for values in lists]
    n_area, n_month, n_type = (len(values) for values in distinct)
    area = _positions(key, key_code, distinct[0])
    month = _positions(month_code, month_values, distinct[1])
    crime_type = _positions(type_code, type_values, distinct[2])
    valid = (area >= 0) & (month >= 0) & (crime_type >= 0)
    cell = (area[valid].astype(np.int64) * n_month + month[valid]) * n_type + crime_type[valid]
    n_cells = n_area * n_month * n_type
    if zeros:
        # every combination of the sorted lists (a repeated list item repeats its rows)
        per_cell = np.bincount(cell, minlength=n_cells)
        la, lm, lt = (len(values) for values in lists)
        ia = np.repeat(np.arange(la), lm * lt)
        im = np.tile(np.repeat(np.arange(lm), lt), la)
        it = np.tile(np.arange(lt), la * lm)
        at_a, at_m, at_t = (d.get_indexer(values) for d, values in zip(distinct, lists))
        count = per_cell[(at_a[ia] * n_month + at_m[im]) * n_type + at_t[it]] if n_cells else np.zeros(len(ia), dtype=np.int64)
        labels = lists
    else:
        if n_cells <= 4 * len(cell) + 1_000_000:
            per_cell = np.bincount(cell, minlength=n_cells)
            cells = np.flatnonzero(per_cell)
            count = per_cell[cells]
        else:  # a sparse table (fine grids): do not allocate every combination
            cells, count = np.unique(cell, return_counts=True)
        ia, im, it = cells // (n_type * n_month), (cells // n_type) % n_month, cells % n_type
        labels = distinct
    out = pd.DataFrame({"area_code": labels[0].take(ia), "month": labels[1].take(im), "crime_type": labels[2].take(it), "count": count})
    names = areas.set_index("area_code")["area_name"]
    out["area_name"] = pd.Series(labels[0]).map(names).take(ia).reset_index(drop=True)
    out["area_type"] = area_type
    out["count"] = out["count"].astype(np.int64)
    out = out[COUNT_COLUMNS]
    out.attrs["method"] = method
    return out


def _positions(codes: np.ndarray, values, categories: pd.Index) -> np.ndarray:
    """Position of ``values[codes]`` in ``categories`` (unique); -1 when absent or missing (code -1)."""
    where = categories.get_indexer(values) if len(values) else np.zeros(0, dtype=np.int64)
    return np.where(codes >= 0, where[np.maximum(codes, 0)], -1) if len(where) else np.full(len(codes), -1)


def _sorted_present(values, codes: np.ndarray) -> list:
    """The distinct non-missing ``values[codes]``, sorted (code -1: missing)."""
    used = np.bincount(codes[codes >= 0], minlength=len(values)) > 0
    return sorted(v for v in np.asarray(values, dtype=object)[used] if not pd.isna(v))


def add_groups(counts: pd.DataFrame, groups: dict[str, Sequence[str]]) -> pd.DataFrame:
    """Append rows for crime-type groups (sums of their member categories)."""
    frames = [counts]
    keys = [c for c in counts.columns if c not in ("crime_type", "count")]
    coded = _group_keys(counts, keys) if groups else None
    for name, members in groups.items():
        g = _group_sum(counts, keys, coded, members) if coded is not None else None
        if g is None:
            sub = counts[counts["crime_type"].isin(members)]
            g = sub.groupby(keys, sort=False, dropna=False)["count"].sum().reset_index()
        g["crime_type"] = name
        frames.append(g[counts.columns])
    return pd.concat(frames, ignore_index=True)


def _group_keys(counts: pd.DataFrame, keys: list[str]) -> tuple[np.ndarray, np.ndarray, pd.Index] | None:
    """For :func:`add_groups`' fast path: one integer per distinct key row, the crime-type codes and values.

    None (the groupby is used) unless the counts are int64 and every key
    column is text or integers without missing values: then summing by these
    codes gives exactly what the groupby gives.
    """
    if not keys or counts["count"].dtype != np.int64 or "crime_type" not in counts:
        return None
    key_code = np.zeros(len(counts), dtype=np.int64)
    for k in keys:
        column = counts[k]
        if not (isinstance(column.dtype, pd.StringDtype) or (isinstance(column.dtype, np.dtype) and column.dtype.kind in "iu")):
            return None
        if column.isna().any():
            return None
        code, values = pd.factorize(column)
        key_code, _ = pd.factorize(key_code * len(values) + code)  # renumbered: never overflows
    type_code, type_values = pd.factorize(counts["crime_type"], use_na_sentinel=False)
    return key_code.astype(np.int64), type_code, pd.Index(type_values)


def _group_sum(counts: pd.DataFrame, keys: list[str], coded, members) -> pd.DataFrame | None:
    """``counts[counts["crime_type"].isin(members)].groupby(keys, sort=False)["count"].sum().reset_index()``.

    The same frame (key rows in order of first appearance, int64 sums), by
    integer codes instead of a groupby on several string columns; None when
    no row is a member (the groupby then makes its empty frame).
    """
    key_code, type_code, type_values = coded
    rows = np.flatnonzero(type_values.isin(list(members))[type_code])
    if not len(rows):
        return None
    code = key_code[rows]
    present, first = np.unique(code, return_index=True)
    order = np.argsort(first, kind="stable")  # keys in order of first appearance, as groupby(sort=False)
    sums = np.zeros(int(code.max()) + 1, dtype=np.int64)
    np.add.at(sums, code, counts["count"].to_numpy()[rows])
    out = counts[keys].iloc[rows[first[order]]].reset_index(drop=True)
    out["count"] = sums[present[order]]
    return out


@dataclasses.dataclass(frozen=True)
class Period:
    """A labelled set of months, e.g. ``2025-01..2025-12``."""

    label: str
    months: tuple[str, ...]

    @classmethod
    def from_range(cls, first: str, last: str, present: Sequence[str] | None = None, label: str | None = None) -> "Period":
        months = [m for m in month_range(first, last) if present is None or m in set(present)]
        return cls(label or f"{first}..{last}", tuple(months))


@dataclasses.dataclass(frozen=True)
class Periods:
    """The analysis period, the comparison period and the months change is measured on.

    ``change_current`` is the part of ``current`` whose seasonally matched
    months are in ``comparison`` (all of ``current`` when the data allow).
    """

    current: Period
    comparison: Period | None
    change_current: Period | None
    reason: str


def resolve_periods(present: Sequence[str], current=None, comparison=None) -> Periods:
    """Choose the analysis and comparison periods and say why.

    Default analysis period: the latest 12 months present.  Default
    comparison: the same calendar months a year earlier; when only some are
    present, change is measured on the matched months only (seasonally matched,
    year on year), and the reason says so.  When none are present there is no
    comparison.

    >>> p = resolve_periods(["2024-01", "2024-02", "2025-01", "2025-02", "2025-03"])
    >>> p.current.label, p.comparison.months, p.change_current.months
    ('2024-04..2025-03', ('2024-01', '2024-02'), ('2025-01', '2025-02'))
    """
    present = sorted(set(present))
    if not present:
        raise ValueError("no months present")
    if current:
        cur = Period.from_range(current[0], current[1], present)
        why = f"analysis period {cur.label} from the config"
    else:
        last = present[-1]
        first = shift_month(last, -11)
        cur = Period.from_range(first, last, present)
        why = f"analysis period {cur.label}: the latest 12 months ({len(cur.months)} with data)"
    if comparison:
        comp = Period.from_range(comparison[0], comparison[1], present)
        return Periods(cur, comp, cur, why + f"; comparison {comp.label} from the config")
    earlier = {m: shift_month(m, -12) for m in cur.months}
    matched = [m for m in cur.months if earlier[m] in present]
    if not matched:
        return Periods(cur, None, None, why + "; no comparison: none of the same months a year earlier are in the data")
    comp = Period(f"{earlier[matched[0]]}..{earlier[matched[-1]]}", tuple(earlier[m] for m in matched))
    if len(matched) == len(cur.months):
        return Periods(cur, comp, cur, why + f"; comparison {comp.label}: the same months a year earlier")
    cur_matched = Period(f"{matched[0]}..{matched[-1]}", tuple(matched))
    why += (
        f"; change measured on {cur_matched.label} against {comp.label}: only {len(matched)} of the same months "
        "a year earlier are in the data, so change uses those seasonally matched months"
    )
    return Periods(cur, comp, cur_matched, why)


def rates(counts: pd.DataFrame, areas: pd.DataFrame, periods: Sequence[Period]) -> pd.DataFrame:
    """Counts summed over each period, with population and rates.

    ``rate_per_1000`` = count / population × 1000 over the period (for a
    12-month period, an annual rate); ``rate_per_km2`` = count / area.

    Columns :data:`hotspots.schema.RATE_COLUMNS`.
    """
    frames = []
    info = areas[["area_code", "population", "area_km2"]].set_index("area_code")
    keys = ["area_type", "area_code", "area_name", "crime_type"]
    coded = _sorted_key_codes(counts, keys) if len(periods) else None
    for p in periods:
        in_period = counts["month"].isin(p.months)
        g = _sorted_sums(counts, keys, coded, in_period.to_numpy()) if coded is not None else None
        if g is None:
            g = counts[in_period].groupby(keys, sort=True)["count"].sum().reset_index()
        g["period"] = p.label
        g["months"] = len(p.months)
        frames.append(g)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RATE_COLUMNS)
    return _with_rates(out, info)


def _with_rates(out: pd.DataFrame, info: pd.DataFrame) -> pd.DataFrame:
    """The period sums ``out`` with population, area and the two rates, as :func:`rates` returns them."""
    out["population"], out["area_km2"] = _area_info(out["area_code"], info)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rate_per_1000"] = np.where(out["population"] > 0, out["count"] / out["population"] * 1000.0, np.nan)
        out["rate_per_km2"] = np.where(out["area_km2"] > 0, out["count"] / out["area_km2"], np.nan)
    return out[RATE_COLUMNS]


def _area_info(codes: pd.Series, info: pd.DataFrame) -> tuple:
    """``codes.map(info[c]).astype(float)`` for population and area, each distinct code looked up once."""
    number, distinct = pd.factorize(codes)
    if (number < 0).any():
        return tuple(codes.map(info[c]).astype(float) for c in ("population", "area_km2"))
    distinct = pd.Series(distinct, dtype=codes.dtype)
    return tuple(distinct.map(info[c]).astype(float).to_numpy()[number] for c in ("population", "area_km2"))


def _sorted_key_codes(counts: pd.DataFrame, keys: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """For :func:`rates`: the distinct key rows of ``counts``, numbered, and their order in ``groupby(keys, sort=True)``.

    Each key column is factorized with ``sort=True``, as the groupby does, and
    the codes combined in mixed radix, so the combined codes sort as the
    groupby sorts its groups.  Returns per row the number of its key row in
    that order (-1 when a key is missing: the groupby drops it), and one row holding each key
    row.  None (the groupby is used) unless
    the counts are int64 and every key column is text or integers.
    """
    if counts["count"].dtype != np.int64 or not len(counts):
        return None
    combined, missing, radix = np.zeros(len(counts), dtype=np.int64), np.zeros(len(counts), dtype=bool), 1
    for k in reversed(keys):
        column = counts[k]
        if not (isinstance(column.dtype, pd.StringDtype) or (isinstance(column.dtype, np.dtype) and column.dtype.kind in "iu")):
            return None
        code, values = pd.factorize(column, sort=True)
        if radix * max(len(values), 1) >= 2**62:
            return None
        combined += code.astype(np.int64) * radix
        missing |= code < 0
        radix *= max(len(values), 1)
    valid = np.flatnonzero(~missing)
    _, first, rank = np.unique(combined[valid], return_index=True, return_inverse=True)
    number = np.full(len(counts), -1, dtype=np.int64)
    number[valid] = rank.ravel()
    return number, valid[first]


def _sorted_sums(counts: pd.DataFrame, keys: list[str], coded, selected: np.ndarray) -> pd.DataFrame | None:
    """``counts[selected].groupby(keys, sort=True)["count"].sum().reset_index()``, by :func:`_sorted_key_codes`.

    The same frame: the key rows present, in the groupby's sorted order, with
    int64 sums.  None when no row is selected (the groupby then makes its empty frame).
    """
    number, first = coded
    rows = np.flatnonzero(selected & (number >= 0))
    if not len(rows):
        return None
    ids = number[rows]
    n_keys = len(first)
    present = np.flatnonzero(np.bincount(ids, minlength=n_keys) > 0)  # np.unique numbered them in sorted order
    sums = np.zeros(n_keys, dtype=np.int64)
    np.add.at(sums, ids, counts["count"].to_numpy()[rows])
    out = counts[keys].iloc[first[present]].reset_index(drop=True)
    out["count"] = sums[present]
    return out


def reconcile_districts(points: pd.DataFrame, districts: gpd.GeoDataFrame, lsoa_district: pd.Series) -> tuple[dict, pd.DataFrame]:
    """Compare each point's district by spatial join with its district by LSOA code.

    Returns a summary (rows compared, agreeing, share) and a table of the
    disagreeing (spatial district, LSOA district) pairs with counts.
    """
    pairs = assign_points(points["x"].to_numpy(), points["y"].to_numpy(), districts, exclusive=True)
    spatial = pd.Series("", index=range(len(points)), dtype=object)
    spatial.iloc[pairs["point"].to_numpy()] = districts["area_code"].to_numpy()[pairs["area"].to_numpy()]
    code, distinct = pd.factorize(points["lsoa21_code"])  # each distinct code looked up once; -1 (missing): ""
    by_code = np.append(pd.Series(distinct).map(lsoa_district).fillna("").to_numpy(dtype=object), "")[code]
    compared = (spatial.to_numpy() != "")
    agree = compared & (spatial.to_numpy() == by_code)
    names = dict(zip(districts["area_code"], districts["area_name"]))
    dis = pd.DataFrame({"spatial_district": spatial.to_numpy()[compared & ~agree], "lsoa_district": by_code[compared & ~agree]})
    table = dis.value_counts().rename("rows").reset_index()
    table["spatial_district_name"] = table["spatial_district"].map(names)
    table["lsoa_district_name"] = table["lsoa_district"].map(names).fillna("(outside the force / no LSOA)")
    summary = {
        "located_rows_in_force_area": int(compared.sum()),
        "agree": int(agree.sum()),
        "disagree": int((compared & ~agree).sum()),
        "agreement_share": float(agree.sum() / compared.sum()) if compared.any() else float("nan"),
        "rule": "district by spatial join of the point (lowest code on shared edges) vs district of the "
        "published LSOA code (harmonised to 2021) through the ONS LSOA→LAD lookup",
    }
    return summary, table
