"""Point-in-polygon assignment: which area(s) each point falls in.

Each distinct location is tested once (police.uk snaps crimes to ~750,000
map points), against prepared polygons found through a bucket index of their bounding boxes.  The
boundary rule is documented in :func:`assign_points`.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from hotspots._errors import CRSError
from hotspots.schema import BNG

__all__ = ["assign_points", "place_by_lsoa"]


def assign_points(x: np.ndarray, y: np.ndarray, areas: gpd.GeoDataFrame, *, exclusive: bool = True) -> pd.DataFrame:
    """Which area(s) each point falls in.

    Parameters
    ----------
    x, y : numpy.ndarray
        Point eastings and northings in EPSG:27700 (metres).  Points with a
        non-finite coordinate are in no area.
    areas : GeoDataFrame
        Polygons in EPSG:27700 with an ``area_code`` column (used to break
        ties when ``exclusive``).
    exclusive : bool, default True
        Count a point in one area only (partitions such as districts), or in
        every area that covers it (overlapping polygons).

    Returns
    -------
    pandas.DataFrame
        Pairs ``point`` (position in ``x``/``y``) and ``area`` (row position
        in ``areas``), ordered by point; points in no area are absent.

    Raises
    ------
    CRSError
        ``areas`` are not in EPSG:27700.

    Notes
    -----
    Boundary rule: a point on an edge is *covered* by each area it touches;
    with ``exclusive=True`` it goes to the area with the lowest ``area_code``
    among them, so it is counted once.  With ``exclusive=False`` (town
    centres, user polygons, which may overlap) it counts in every area that
    covers it.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> areas = gpd.GeoDataFrame({"area_code": ["B", "A"]},
    ...                          geometry=[box(1000, 0, 2000, 1000), box(0, 0, 1000, 1000)], crs=27700)
    >>> x, y = np.array([500.0, 1000.0, 5000.0]), np.array([500.0, 500.0, 500.0])
    >>> assign_points(x, y, areas).to_dict("list")   # the edge point goes to A, the lowest code
    {'point': [0, 1], 'area': [1, 1]}
    >>> assign_points(x, y, areas, exclusive=False).to_dict("list")
    {'point': [0, 1, 1], 'area': [1, 0, 1]}
    """
    if areas.crs is not None and str(areas.crs) != BNG and areas.crs.to_epsg() != 27700:
        raise CRSError(
            f"areas are in {areas.crs}, points are in {BNG}",
            hint="read boundaries with hotspots.geo.read_boundary, which projects them to EPSG:27700",
        )
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    geoms = np.asarray(areas.geometry.values)
    # police.uk snaps crimes to ~750,000 map points, so each distinct location is tested once
    # (6 million crimes a year sit on ~650,000 of them) and the answer is copied to its points.
    point_index, location, loc_x, loc_y = _distinct_locations(x, y)
    shapely.prepare(geoms)
    # candidates from a bucket index of the polygons' bounding boxes, grouped by polygon: the exact
    # test then runs polygon by polygon, which keeps each prepared index in cache (~5x faster than
    # point by point), and no point geometries are built (the test takes coordinates)
    loc_hit, area_hit = _bbox_candidates(loc_x, loc_y, shapely.bounds(geoms))
    hit = shapely.intersects_xy(geoms[area_hit], loc_x[loc_hit], loc_y[loc_hit])
    loc_hit, area_hit = loc_hit[hit], area_hit[hit]
    if exclusive:
        area_of_location = np.full(len(loc_x), -1, dtype=np.int64)
        single = np.bincount(loc_hit, minlength=len(loc_x))[loc_hit] == 1
        area_of_location[loc_hit[single]] = area_hit[single]
        if not single.all():  # locations on shared edges (or in overlapping polygons): the lowest area_code
            codes = areas["area_code"].to_numpy()
            rank = np.empty(len(codes), dtype=np.int64)
            rank[np.argsort(codes, kind="stable")] = np.arange(len(codes))
            loc_hit, area_hit = loc_hit[~single], area_hit[~single]
            order = np.lexsort((rank[area_hit], loc_hit))
            loc_hit, area_hit = loc_hit[order], area_hit[order]
            first = np.r_[True, loc_hit[1:] != loc_hit[:-1]]
            area_of_location[loc_hit[first]] = area_hit[first]
        area = area_of_location[location]
        inside = area >= 0
        # fresh arrays: no copy into one 2-D block (at 6 million points the copy costs more than the count)
        return pd.DataFrame({"point": point_index[inside].astype(np.int64), "area": area[inside]}, copy=False)
    order = np.lexsort((area_hit, loc_hit))
    loc_hit, area_hit = loc_hit[order], area_hit[order].astype(np.int64)
    per_location = np.bincount(loc_hit, minlength=len(loc_x))
    start = np.cumsum(per_location) - per_location
    per_point = per_location[location]
    offset = np.arange(int(per_point.sum())) - np.repeat(np.cumsum(per_point) - per_point, per_point)
    return pd.DataFrame(
        {
            "point": np.repeat(point_index, per_point).astype(np.int64),
            "area": area_hit[np.repeat(start[location], per_point) + offset],
        },
        copy=False,
    )


def _bbox_candidates(x: np.ndarray, y: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (point, polygon) whose point lies in the polygon's bounding box (edges included), by polygon.

    The polygons' boxes are spread over a square bucket lattice (bucket side about
    the median box side, widened until there are at most ~16 bucket entries per
    polygon); each point looks only at the polygons listed in its own bucket.  A
    point and a box that meets it always share the point's bucket (the bucket of
    a coordinate is monotone in it), so no pair is missed, and none is repeated.
    Polygons without a finite box (empty, missing) have no candidates.
    """
    empty = np.zeros(0, dtype=np.int64)
    ok = np.flatnonzero(np.isfinite(bounds).all(axis=1))
    if not len(ok) or not len(x):
        return empty, empty
    minx, miny, maxx, maxy = (bounds[ok, k] for k in range(4))
    x0, y0 = float(minx.min()), float(miny.min())
    side = max(float(np.median(np.maximum(maxx - minx, maxy - miny))), 1e-9)
    extent = max(float(maxx.max()) - x0, float(maxy.max()) - y0, 1e-9)
    while True:
        c0, c1 = np.floor((minx - x0) / side), np.floor((maxx - x0) / side)
        r0, r1 = np.floor((miny - y0) / side), np.floor((maxy - y0) / side)
        spans = (c1 - c0 + 1) * (r1 - r0 + 1)
        if spans.sum() <= 16 * len(ok) + 1_000_000 or side > extent:
            break
        side *= 2.0
    n_cols = int(c1.max()) + 1
    n_rows = int(r1.max()) + 1
    # every (polygon, bucket) entry, in polygon order
    width = (c1 - c0 + 1).astype(np.int64)
    spans = spans.astype(np.int64)
    entry_poly = np.repeat(np.arange(len(ok)), spans)
    k = np.arange(int(spans.sum())) - np.repeat(np.cumsum(spans) - spans, spans)
    entry_bucket = (r0.astype(np.int64)[entry_poly] + k // width[entry_poly]) * n_cols + c0.astype(np.int64)[entry_poly] + k % width[entry_poly]
    # points by bucket (points outside every box's bucket range have none)
    col, row = np.floor((x - x0) / side), np.floor((y - y0) / side)
    inside = (col >= 0) & (col < n_cols) & (row >= 0) & (row < n_rows)
    pts = np.flatnonzero(inside)
    bucket = row[pts].astype(np.int64) * n_cols + col[pts].astype(np.int64)
    order = np.argsort(bucket, kind="stable")
    pts, bucket = pts[order], bucket[order]
    start = np.searchsorted(bucket, entry_bucket, side="left")
    per_entry = np.searchsorted(bucket, entry_bucket, side="right") - start
    total = int(per_entry.sum())
    offset = np.arange(total) - np.repeat(np.cumsum(per_entry) - per_entry, per_entry)
    point = pts[np.repeat(start, per_entry) + offset]
    poly = np.repeat(entry_poly, per_entry)
    px, py = x[point], y[point]
    in_box = (px >= minx[poly]) & (px <= maxx[poly]) & (py >= miny[poly]) & (py <= maxy[poly])
    return point[in_box].astype(np.int64), ok[poly[in_box]].astype(np.int64)


_HASH_X = np.uint64(0x9E3779B97F4A7C15)
_HASH_Y = np.uint64(0xC2B2AE3D27D4EB4F)


def _distinct_locations(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct finite (x, y) locations.

    Returns ``point_index`` (positions of the finite points, ascending),
    ``location`` (each finite point's location number) and the locations'
    ``loc_x``, ``loc_y``.  Non-finite points are in no area and are left out.
    """
    finite = np.isfinite(x) & np.isfinite(y)
    point_index = np.flatnonzero(finite)
    xf, yf = (x + 0.0, y + 0.0) if len(point_index) == len(x) else (x[point_index] + 0.0, y[point_index] + 0.0)  # -0.0 -> 0.0
    # One 64-bit key from both coordinates' bits; equal keys are one location.  A key collision
    # (checked below: rare, as only the top 36-63 bits are compared) falls back to the exact complex key.
    with np.errstate(over="ignore"):
        key = xf.view(np.uint64) * _HASH_X
        key ^= (yf.view(np.uint64) + _HASH_X) * _HASH_Y
    index_bits = max(int(len(key) - 1).bit_length(), 1)
    if len(key) and index_bits <= 28:
        # the key's top bits and the point's position packed in one word: one plain sort (vectorised,
        # ~10x faster than a hash table or an argsort here) groups equal keys and gives the order
        packed = np.sort((key >> np.uint64(index_bits)) << np.uint64(index_bits) | np.arange(len(key), dtype=np.uint64))
        order = (packed & np.uint64((1 << index_bits) - 1)).astype(np.int64)
        high = packed >> np.uint64(index_bits)
        new = np.empty(len(high), dtype=bool)
        new[0] = True
        np.not_equal(high[1:], high[:-1], out=new[1:])
        location = np.empty(len(key), dtype=np.int64)
        location[order] = np.cumsum(new) - 1
        first = order[new]
        loc_x, loc_y = xf[first], yf[first]
    else:
        location, _ = pd.factorize(key)
        loc_x = np.empty(int(location.max()) + 1 if len(location) else 0)
        loc_y = np.empty_like(loc_x)
        loc_x[location], loc_y[location] = xf, yf
    if not (np.array_equal(loc_x[location], xf) and np.array_equal(loc_y[location], yf)):
        both = np.empty(len(xf), dtype=np.complex128)
        both.real, both.imag = xf, yf
        location, distinct = pd.factorize(both)
        loc_x, loc_y = distinct.real.copy(), distinct.imag.copy()
    return point_index, location, loc_x, loc_y


def place_by_lsoa(
    lsoa21_code: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    study_lsoas: pd.Index,
    known_lsoas,
    lsoa_polygons: gpd.GeoDataFrame,
) -> tuple[np.ndarray, np.ndarray]:
    """Place points in the study area by their published LSOA code; by location only without a usable code.

    Parameters
    ----------
    lsoa21_code : numpy.ndarray
        Each point's LSOA 2021 code as published (harmonised); ``""`` when blank.
    x, y : numpy.ndarray
        Point eastings and northings (EPSG:27700).
    study_lsoas : pandas.Index
        The LSOA 2021 codes of the study area.
    known_lsoas : set-like
        Every valid LSOA 2021 code; any other code (a typo, another country) is
        not usable and the point is placed by location.
    lsoa_polygons : GeoDataFrame
        The study area's LSOA polygons (``area_code``, EPSG:27700), for points
        without a usable code.

    Returns
    -------
    code : numpy.ndarray
        The LSOA 2021 code each point is counted in; ``""`` outside the study area.
    how : numpy.ndarray
        Per point: ``"lsoa_code"`` (its own code, in the study area),
        ``"location"`` (no usable code; inside an LSOA polygon),
        ``"lsoa_code_outside"`` (its code is another force's) or
        ``"location_outside"`` (no usable code and in no LSOA polygon).

    Notes
    -----
    police.uk assigns each record to an LSOA on full-resolution boundaries; the
    open LSOA polygons are generalised (200 m), so a point near an edge often
    lies in a neighbouring polygon.  The published code is therefore trusted
    wherever it is a real LSOA code.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd
    >>> from shapely.geometry import box
    >>> polys = gpd.GeoDataFrame({"area_code": ["E01000001"]}, geometry=[box(0, 0, 1000, 1000)], crs=27700)
    >>> code, how = place_by_lsoa(np.array(["E01000001", "", "E01999999", "W01000001"], dtype=object),
    ...     np.array([5000.0, 500.0, 9000.0, 500.0]), np.array([5000.0, 500.0, 9000.0, 500.0]),
    ...     pd.Index(["E01000001"]), {"E01000001", "W01000001"}, polys)
    >>> code.tolist(), how.tolist()
    (['E01000001', 'E01000001', '', ''], ['lsoa_code', 'location', 'location_outside', 'lsoa_code_outside'])
    """
    code = np.asarray(lsoa21_code, dtype=object)
    # each distinct code tested once, and the answers spread by a table: no fixed-width text array per
    # record turned back into objects
    number, distinct = pd.factorize(code, use_na_sentinel=False)
    usable_code = np.fromiter((u in known_lsoas for u in distinct), dtype=bool, count=len(distinct))
    inside_code = usable_code & np.fromiter((u in study_lsoas for u in distinct), dtype=bool, count=len(distinct))
    usable, inside = usable_code[number], inside_code[number]
    out = np.where(inside_code, np.asarray(distinct, dtype=object), "").astype(object)[number]
    how = np.array(["location_outside", "lsoa_code_outside", "lsoa_code"], dtype=object)[usable.astype(np.int8) + inside]
    rest = np.flatnonzero(~usable)
    if len(rest) and len(lsoa_polygons):
        pairs = assign_points(np.asarray(x, float)[rest], np.asarray(y, float)[rest], lsoa_polygons, exclusive=True)
        hit = rest[pairs["point"].to_numpy()]
        out[hit] = lsoa_polygons["area_code"].to_numpy()[pairs["area"].to_numpy()]
        how[hit] = "location"
    return out, how


def _isin(values: np.ndarray, members) -> np.ndarray:
    """``pd.Series(values).isin(members)``, each distinct value looked up once.

    The same answer, for a fraction of the time: the codes repeat (about 700
    distinct in 100,000s of records), and an Arrow string Series' ``isin``
    tests every row in Python.  ``members`` is anything with ``in`` (a set,
    a :class:`pandas.Index`).
    """
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)
    hit = np.fromiter((u in members for u in uniques), dtype=bool, count=len(uniques))
    return hit[codes]
