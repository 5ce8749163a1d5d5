"""Small synthetic data sets for examples, the tutorial and tests (no download, no real records).

Real data come from police.uk through :func:`hotspots.read_crimes`; these are
made up, seeded and tiny, with a known answer: :func:`synthetic_points` plants
one dense cluster in an otherwise even scatter, :func:`synthetic_districts`
gives a few districts with populations and one clearly high crime rate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["synthetic_points", "synthetic_districts", "write_police_uk_sample"]

BNG = "EPSG:27700"
_TYPES = ["Anti-social behaviour", "Violence and sexual offences", "Shoplifting", "Burglary"]


def synthetic_points(*, n: int = 600, cluster: int = 150, months=("2025-01", "2025-02", "2025-03"),
                     extent: float = 2000.0, origin=(520_000.0, 210_000.0), seed: int = 0):
    """Made-up crime points (EPSG:27700): an even scatter plus one planted cluster.

    Parameters
    ----------
    n : int
        Points spread evenly over the square ``extent`` × ``extent`` metres.
    cluster : int
        Extra points within 60 m of the square's centre (the hot spot to find).
    months : sequence of str
        Months assigned in turn (``"YYYY-MM"``).
    extent : float
        Side of the square, metres.
    origin : (float, float)
        South-west corner of the square, British National Grid metres.
    seed : int
        Random seed (the same seed gives the same points).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``x, y, month, crime_type, location, geometry`` (points, EPSG:27700).

    Examples
    --------
    >>> pts = synthetic_points(seed=1)
    >>> len(pts), pts.crs.to_epsg(), sorted(pts.columns)
    (750, 27700, ['crime_type', 'geometry', 'location', 'month', 'x', 'y'])
    """
    import geopandas as gpd

    rng = np.random.default_rng(seed)
    x0, y0 = origin
    xs = np.concatenate([rng.uniform(0, extent, n), extent / 2 + rng.uniform(-60, 60, cluster)]) + x0
    ys = np.concatenate([rng.uniform(0, extent, n), extent / 2 + rng.uniform(-60, 60, cluster)]) + y0
    total = n + cluster
    frame = pd.DataFrame({
        "x": xs.round(1),
        "y": ys.round(1),
        "month": [months[i % len(months)] for i in range(total)],
        "crime_type": [_TYPES[i % len(_TYPES)] for i in range(total)],
        "location": ["On or near High Street" if i >= n else "On or near Side Road" for i in range(total)],
    })
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["x"], frame["y"]), crs=BNG)


def synthetic_districts(*, seed: int = 0):
    """Six made-up districts side by side, with populations and monthly counts; "Beta" has twice the rate.

    Returns
    -------
    areas : geopandas.GeoDataFrame
        ``area_code, area_name, population, geometry`` (EPSG:27700).
    counts : pandas.DataFrame
        ``area_code, area_name, month, crime_type, count`` for 12 months of 2025 and
        two crime types (the shape of :func:`hotspots.count_in_areas`).

    Examples
    --------
    >>> areas, counts = synthetic_districts()
    >>> list(areas["area_name"])
    ['Alpha', 'Beta', 'Gamma', 'Delta', 'Epsilon', 'Zeta']
    >>> counts.groupby("area_name")["count"].sum().idxmax()
    'Beta'
    """
    import geopandas as gpd
    import shapely

    rng = np.random.default_rng(seed)
    names = ["Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta"]
    population = np.array([80_000, 95_000, 120_000, 60_000, 100_000, 140_000])
    areas = gpd.GeoDataFrame({
        "area_code": [f"E0700000{i}" for i in range(1, 7)],
        "area_name": names,
        "population": population,
    }, geometry=[shapely.box(500_000 + 10_000 * i, 205_000, 510_000 + 10_000 * i, 215_000) for i in range(6)], crs=BNG)
    rows = []
    for code, name, pop in zip(areas["area_code"], names, population):
        for crime_type, rate in (("Anti-social behaviour", 1.5), ("Burglary", 0.3)):
            monthly = rate * pop / 1000 * (2.0 if name == "Beta" else 1.0)
            for m in range(1, 13):
                rows.append((code, name, f"2025-{m:02d}", crime_type, int(rng.poisson(monthly))))
    counts = pd.DataFrame(rows, columns=["area_code", "area_name", "month", "crime_type", "count"])
    return areas, counts


def write_police_uk_sample(folder, points=None, *, force: str = "examplefolk"):
    """Write points as police.uk street-level files, one per month: ``<folder>/<force>/street/YYYY-MM-<force>-street.csv``.

    The layout and columns are those of a data.police.uk download, so the
    files read back with :func:`hotspots.read_crimes` exactly as real ones do
    (coordinates are written as WGS84 longitude/latitude, 6 decimals).

    Parameters
    ----------
    folder : str or Path
        Folder to write into (created if missing).
    points : DataFrame, optional
        ``x, y`` (EPSG:27700), ``month``, ``crime_type``, ``location``; default :func:`synthetic_points`.
    force : str
        Force name used in the folder and file names and the "Falls within" column.

    Returns
    -------
    list of Path
        The files written, by month.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     files = write_police_uk_sample(tmp)
    ...     [f.name for f in files]
    ['2025-01-examplefolk-street.csv', '2025-02-examplefolk-street.csv', '2025-03-examplefolk-street.csv']
    """
    import csv
    from pathlib import Path

    from pyproj import Transformer

    from hotspots.schema import POLICE_UK_STREET_HEADER

    points = synthetic_points() if points is None else points
    lon, lat = Transformer.from_crs(BNG, "EPSG:4326", always_xy=True).transform(
        points["x"].to_numpy(), points["y"].to_numpy())
    street = Path(folder) / force / "street"
    street.mkdir(parents=True, exist_ok=True)
    written = []
    falls_within = force.replace("-", " ").title() + " Police"
    for month in sorted(points["month"].unique()):
        path = street / f"{month}-{force}-street.csv"
        rows = np.flatnonzero((points["month"] == month).to_numpy())
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(POLICE_UK_STREET_HEADER)
            for i in rows:
                asb = points["crime_type"].iat[i] == "Anti-social behaviour"
                writer.writerow(["" if asb else f"{month}-{i:06d}", month, falls_within, falls_within,
                                 f"{lon[i]:.6f}", f"{lat[i]:.6f}", points["location"].iat[i], "", "",
                                 points["crime_type"].iat[i], "" if asb else "Under investigation", ""])
        written.append(path)
    return written
