"""Boundaries, lookups and population: the areas points are counted in.

Every area table has the columns :data:`hotspots.schema.AREA_COLUMNS` and is in
British National Grid (EPSG:27700).  Boundary files without a CRS are an error,
never guessed.

Which file serves which layer is listed in :data:`DATA_FILES`: the first
candidate present in the data home wins, and the choice is recorded.
"""

from __future__ import annotations

import dataclasses
import logging
from functools import cached_property
from importlib import resources
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from hotspots._errors import CRSError, DataNotFoundError, InputFileError
from hotspots._validate import _Problems
from hotspots.schema import AREA_COLUMNS, BNG

log = logging.getLogger(__name__)

#: logical layer -> candidate paths inside the data home (first present wins).
#: ``hotspots download`` writes the first candidate of each.
DATA_FILES: dict[str, list[str]] = {
    "districts": [
        "boundaries/lad_bgc.geojson",
        "boundaries/herts_phei/ltla_cut.geojson",
        "boundaries/ons_via_geographr/lad_may2024_buc_uk.geojson",
    ],
    "lsoa21": [
        "boundaries/lsoa21_bsc.geojson",
        "boundaries/ons_via_geographr/lsoa21_bsc_herts_and_neighbours.geojson",
    ],
    "lookup_lsoa11_lsoa21": ["lookups/lookup_lsoa11_lsoa21_ltla22_ew.csv.gz", "lookups/lookup_lsoa11_lsoa21_ltla22_ew.csv"],
    "lookup_lsoa21_ward": ["lookups/lookup_lsoa21_ward24_ltla24_ew.csv.gz", "lookups/lookup_lsoa21_ward24_ltla24_ew.csv"],
    "lookup_district_csp_force": ["lookups/lookup_ltla24_csp24_pfa24_ew.csv"],
    "population_lsoa21": [
        "population/census2021_usual_residents_lsoa21_ew.csv.gz",
        "population/census2021_usual_residents_lsoa21_ew.csv",
    ],
}

#: district code/name columns seen in ONS LAD files of different vintages
_LAD_CODE_COLS = ["ltla24_code", "LAD24CD", "lad24cd", "LAD23CD", "LAD22CD", "LAD21CD", "lad20cd", "LAD20CD", "lad_code"]
_LAD_NAME_COLS = ["ltla24_name", "LAD24NM", "lad24nm", "LAD23NM", "LAD22NM", "LAD21NM", "lad20nm", "LAD20NM", "lad_name"]

AREA_TYPES = ("force", "district", "csp", "lsoa", "ward", "town_centre")


# --------------------------------------------------------------------------- files
def find_file(data_dir: Path, layer: str) -> Path:
    """The first file of :data:`DATA_FILES` ``[layer]`` present in the data home (DataNotFoundError if none)."""
    for rel in DATA_FILES[layer]:
        p = Path(data_dir) / rel
        if p.is_file():
            return p
    raise DataNotFoundError(
        f"no {layer} file in the data home {data_dir}; looked for: " + ", ".join(DATA_FILES[layer]),
        hint="run `hotspots download --data DIR` on a machine with internet, or copy the file into place",
    )


def read_boundary(path: str | Path, *, layer: str | None = None, name: str = "boundary file") -> gpd.GeoDataFrame:
    """Read a polygon file (GeoPackage, GeoJSON, Shapefile) and return it in EPSG:27700.

    Parameters
    ----------
    path : str or Path
        The boundary file.
    layer : str, optional
        Layer of a multi-layer file (GeoPackage); default the first.
    name : str, default "boundary file"
        What the file is, for error messages ("district boundary file", ...).

    Returns
    -------
    geopandas.GeoDataFrame
        The file's columns and polygon geometry, projected to British National
        Grid.  ``attrs["repairs"]`` counts repaired or removed geometries and
        ``attrs["source"]`` is the path.

    Raises
    ------
    DataNotFoundError
        The file does not exist.
    CRSError
        The file has no CRS (never guessed), a GeoJSON claims longitude/latitude
        but holds metres, or it cannot be projected to EPSG:27700.
    InputFileError
        The file cannot be read, or holds no polygons.

    Notes
    -----
    A GeoJSON without a ``crs`` member is longitude/latitude by its
    specification (RFC 7946), so British National Grid metres in such a file
    are reported rather than read as degrees.  Invalid polygons are repaired
    with ``make_valid`` and empty or non-polygon geometries are removed; both
    are logged and recorded in ``attrs["repairs"]``.

    Examples
    --------
    >>> import os, tempfile
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> beats = gpd.GeoDataFrame({"name": ["Beat 1"]}, geometry=[box(-0.35, 51.74, -0.33, 51.76)], crs=4326)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     beats.to_file(os.path.join(folder, "beats.gpkg"))
    ...     areas = read_boundary(os.path.join(folder, "beats.gpkg"))
    >>> areas.crs.to_epsg(), areas["name"].tolist(), areas.attrs["repairs"]
    (27700, ['Beat 1'], {})
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{name} not found: {path}", hint="check the path")
    try:
        gdf = gpd.read_file(path, layer=layer, engine="pyogrio")
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InputFileError(
            f"{path}: cannot read as a boundary file ({exc})",
            hint="use GeoPackage, GeoJSON or Shapefile with polygon geometries",
        ) from exc
    if gdf.crs is None:
        raise CRSError(
            f"{path}: the {name} has no coordinate reference system",
            hint="set one in QGIS (Layer > Set CRS) or re-export with a .prj; British National Grid is EPSG:27700, "
            "GPS lon/lat is EPSG:4326",
        )
    repairs = {}
    empty = gdf.geometry.isna() | gdf.geometry.is_empty
    if empty.any():
        repairs["empty_geometries_removed"] = int(empty.sum())
        gdf = gdf.loc[~empty].copy()
    if gdf.crs.is_geographic and len(gdf):
        # GDAL reads a GeoJSON without a "crs" member as WGS84 (RFC 7946), so a
        # British National Grid export that lost its CRS arrives here as "degrees"
        x0, y0, x1, y1 = gdf.total_bounds
        if not (-180.0 <= x0 and x1 <= 180.0 and -90.0 <= y0 and y1 <= 90.0):
            raise CRSError(
                f"{path}: the {name} says its coordinates are longitude/latitude ({gdf.crs.name}) but they span "
                f"x {x0:.6g}..{x1:.6g}, y {y0:.6g}..{y1:.6g}; the file has no usable CRS",
                hint="values in the hundreds of thousands are British National Grid: set the CRS to EPSG:27700 "
                "(QGIS: Layer > Set CRS) and save as GeoPackage, which keeps the CRS",
            )
    source_crs = gdf.crs.name
    try:
        gdf = gdf.to_crs(BNG)
    except Exception as exc:  # pyproj raises its own error types
        raise CRSError(
            f"{path}: the {name} cannot be projected from {source_crs} to British National Grid ({exc})",
            hint="re-export the file in EPSG:27700 or EPSG:4326",
        ) from exc
    xy = shapely.get_coordinates(gdf.geometry.values)
    if not np.isfinite(xy).all():
        raise CRSError(
            f"{path}: some coordinates of the {name} cannot be projected from {source_crs} to British National "
            "Grid; they lie far outside Great Britain",
            hint="check the file's CRS; British National Grid is EPSG:27700, GPS lon/lat is EPSG:4326",
        )
    invalid = ~gdf.geometry.is_valid
    if invalid.any():
        repairs["invalid_geometries_repaired"] = int(invalid.sum())
        gdf.loc[invalid, "geometry"] = shapely.make_valid(gdf.geometry[invalid].values)
        # make_valid may return collections: keep polygonal parts only
        gdf["geometry"] = [_polygonal(g) for g in gdf.geometry]
    nonpoly = ~gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"]) | gdf.geometry.is_empty
    if nonpoly.any():
        repairs["non_polygon_geometries_removed"] = int(nonpoly.sum())
        gdf = gdf.loc[~nonpoly].copy()
    if gdf.empty:
        raise InputFileError(
            f"{path}: the {name} holds no polygons"
            + (" (" + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in repairs.items()) + ")" if repairs else ""),
            hint="areas must be polygons or multipolygons (not points or lines)",
        )
    if repairs:
        log.warning("%s: %s", path, ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in repairs.items()))
    gdf.attrs["repairs"] = repairs
    gdf.attrs["source"] = str(path)
    return gdf


def _polygonal(geom):
    if geom is None or geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, engine="pyarrow")
    except Exception as exc:
        raise InputFileError(f"{path}: cannot read ({exc})", hint="download the lookup again") from exc


def _area_frame(gdf: gpd.GeoDataFrame, area_type: str) -> gpd.GeoDataFrame:
    out = gdf.copy()
    out["area_type"] = area_type
    if "district_code" not in out:
        out["district_code"] = ""
    if "population" not in out:
        out["population"] = np.nan
    out["area_km2"] = out.geometry.area / 1e6
    out = out[AREA_COLUMNS]
    return gpd.GeoDataFrame(out.sort_values("area_code").reset_index(drop=True), geometry="geometry", crs=BNG)


# --------------------------------------------------------------------------- geography
@dataclasses.dataclass
class Geography:
    """All areas of one police force, loaded lazily from a data home.

    Examples
    --------
    >>> geo = Geography("../shared/data", "E23000027")   # doctest: +SKIP
    >>> geo.areas("district")[["area_code", "area_name", "population"]]   # doctest: +SKIP
    """

    data_dir: Path
    force_area_code: str
    town_centres_path: str = ""
    town_centre_name_column: str = "name"
    sources: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.data_dir = Path(self.data_dir)

    # ---- lookups
    @cached_property
    def district_lookup(self) -> pd.DataFrame:
        path = find_file(self.data_dir, "lookup_district_csp_force")
        self.sources["lookup_district_csp_force"] = str(path)
        lk = _read_csv(path)
        need = {"ltla24_code", "ltla24_name", "csp24_code", "csp24_name", "pfa24_code", "pfa24_name"}
        if not need <= set(lk.columns):
            raise InputFileError(f"{path}: expected columns {sorted(need)}", hint="use the ONS LAD24_CSP24_PFA24 lookup")
        mine = lk[lk["pfa24_code"] == self.force_area_code]
        if mine.empty:
            raise DataNotFoundError(
                f"police force area {self.force_area_code!r} is not in {path}",
                hint="set force_area_code in the config to an ONS PFA code such as E23000027 (Hertfordshire)",
            )
        return mine.reset_index(drop=True)

    @cached_property
    def lsoa11_lookup(self) -> pd.DataFrame:
        path = find_file(self.data_dir, "lookup_lsoa11_lsoa21")
        self.sources["lookup_lsoa11_lsoa21"] = str(path)
        return _read_csv(path)

    @cached_property
    def lsoa_ward_lookup(self) -> pd.DataFrame:
        path = find_file(self.data_dir, "lookup_lsoa21_ward")
        self.sources["lookup_lsoa21_ward"] = str(path)
        return _read_csv(path)

    @cached_property
    def lsoa_population(self) -> pd.Series:
        path = find_file(self.data_dir, "population_lsoa21")
        self.sources["population_lsoa21"] = str(path)
        pop = _read_csv(path)
        return pd.to_numeric(pop.set_index("lsoa21_code")["census2021_usual_residents"], errors="coerce")

    @property
    def district_codes(self) -> list[str]:
        return sorted(self.district_lookup["ltla24_code"])

    @property
    def force_name(self) -> str:
        return str(self.district_lookup["pfa24_name"].iloc[0])

    # ---- layers
    @cached_property
    def lsoa21(self) -> gpd.GeoDataFrame:
        """LSOA 2021 polygons of the force's districts, with Census 2021 population."""
        path = find_file(self.data_dir, "lsoa21")
        self.sources["lsoa21"] = str(path)
        gdf = read_boundary(path, name="LSOA 2021 boundary file")
        wl = self.lsoa_ward_lookup.set_index("lsoa21_code")
        if "ltla24_code" not in gdf:
            gdf["ltla24_code"] = gdf["lsoa21_code"].map(wl["ltla24_code"])
        gdf = gdf[gdf["ltla24_code"].isin(self.district_codes)].copy()
        gdf["area_code"] = gdf["lsoa21_code"]
        gdf["area_name"] = gdf["lsoa21_name"] if "lsoa21_name" in gdf else gdf["lsoa21_code"]
        gdf["district_code"] = gdf["ltla24_code"]
        gdf["population"] = gdf["lsoa21_code"].map(self.lsoa_population).astype(float)
        return _area_frame(gdf, "lsoa")

    @cached_property
    def districts(self) -> gpd.GeoDataFrame:
        path = None
        for rel in DATA_FILES["districts"]:
            p = self.data_dir / rel
            if not p.is_file():
                continue
            gdf = read_boundary(p, name="district boundary file")
            code_col = next((c for c in _LAD_CODE_COLS if c in gdf.columns), None)
            if code_col is None:
                continue
            if set(self.district_codes) <= set(gdf[code_col]):
                path = p
                break
        if path is None:
            raise DataNotFoundError(
                f"no district boundary file in {self.data_dir} covers all districts of {self.force_area_code}: "
                + ", ".join(self.district_codes),
                hint="run `hotspots download` or add an ONS LAD boundary file (see data/README.md)",
            )
        self.sources["districts"] = str(path)
        name_col = next((c for c in _LAD_NAME_COLS if c in gdf.columns), code_col)
        gdf = gdf[gdf[code_col].isin(self.district_codes)].copy()
        gdf["area_code"] = gdf[code_col]
        names = self.district_lookup.set_index("ltla24_code")["ltla24_name"]
        gdf["area_name"] = gdf["area_code"].map(names).fillna(gdf[name_col])
        gdf["district_code"] = gdf["area_code"]
        gdf["population"] = self._population_by(self.lsoa_ward_lookup, "ltla24_code").reindex(gdf["area_code"]).to_numpy()
        return _area_frame(gdf, "district")

    def _population_by(self, lookup: pd.DataFrame, column: str) -> pd.Series:
        lk = lookup[["lsoa21_code", column]].drop_duplicates("lsoa21_code")
        lk = lk.assign(population=lk["lsoa21_code"].map(self.lsoa_population))
        return lk.groupby(column)["population"].sum(min_count=1)

    @cached_property
    def csps(self) -> gpd.GeoDataFrame:
        """Community Safety Partnerships: districts dissolved with the LAD→CSP lookup."""
        d = self.districts.merge(
            self.district_lookup[["ltla24_code", "csp24_code", "csp24_name"]],
            left_on="area_code",
            right_on="ltla24_code",
        )
        g = d.dissolve(by="csp24_code", aggfunc={"csp24_name": "first", "population": "sum", "area_code": lambda s: ";".join(sorted(s))})
        g = g.reset_index().rename(columns={"csp24_code": "code", "csp24_name": "name", "area_code": "districts"})
        g["area_code"], g["area_name"] = g["code"], g["name"]
        # a CSP spanning several districts has no single containing district
        g["district_code"] = np.where(g["districts"].str.contains(";"), "", g["districts"])
        return _area_frame(g, "csp")

    @cached_property
    def force(self) -> gpd.GeoDataFrame:
        geom = shapely.union_all(self.districts.geometry.values)
        # union of generalised districts leaves slivers along shared edges; close them
        geom = shapely.buffer(shapely.buffer(geom, 1.0), -1.0)
        gdf = gpd.GeoDataFrame(
            {
                "area_code": [self.force_area_code],
                "area_name": [self.force_name],
                "population": [float(self.districts["population"].sum())],
            },
            geometry=[geom],
            crs=BNG,
        )
        return _area_frame(gdf, "force")

    @cached_property
    def wards(self) -> gpd.GeoDataFrame:
        """Wards (2024, best fit): LSOA 2021 polygons dissolved with the ONS best-fit lookup."""
        lsoa = self.lsoa21
        wl = self.lsoa_ward_lookup.set_index("lsoa21_code")
        g = lsoa.assign(ward_code=lsoa["area_code"].map(wl["ward24_code"]), ward_name=lsoa["area_code"].map(wl["ward24_name"]))
        g = g.dissolve(by="ward_code", aggfunc={"ward_name": "first", "population": "sum", "district_code": "first"}).reset_index()
        g["area_code"], g["area_name"] = g["ward_code"], g["ward_name"]
        return _area_frame(g, "ward")

    @cached_property
    def town_centres(self) -> gpd.GeoDataFrame:
        if self.town_centres_path:
            gdf = read_boundary(self.town_centres_path, name="town-centre file")
            col = self.town_centre_name_column
            if col not in gdf.columns:
                raise InputFileError(
                    f"{self.town_centres_path}: no column {col!r} for town-centre names; columns are {list(gdf.columns)}",
                    hint="set geography.town_centre_name_column in the config",
                )
            gdf["area_name"] = gdf[col].astype(str).str.strip().where(gdf[col].notna(), "")
            gdf["area_code"] = gdf["code"].astype(str) if "code" in gdf else [f"TC{i + 1:02d}" for i in range(len(gdf))]
            _check_town_centre_ids(gdf, self.town_centres_path, col)
            self.sources["town_centres"] = str(self.town_centres_path)
        else:
            gdf = default_town_centres()
            self.sources["town_centres"] = "hotspots built-in approximate Hertfordshire town centres"
        gdf = gdf.copy()
        if "district_code" not in gdf or (gdf["district_code"] == "").all():
            gdf["district_code"] = _majority_area(gdf, self.districts)
        # residents are a poor denominator for town centres (visitors): no population
        gdf["population"] = np.nan
        return _area_frame(gdf, "town_centre")

    def areas(self, area_type: str) -> gpd.GeoDataFrame:
        """The areas of one type: force, district, csp, lsoa, ward, town_centre."""
        table = {
            "force": lambda: self.force,
            "district": lambda: self.districts,
            "csp": lambda: self.csps,
            "lsoa": lambda: self.lsoa21,
            "ward": lambda: self.wards,
            "town_centre": lambda: self.town_centres,
        }
        problems = _Problems("Geography.areas")
        if area_type not in table:
            problems.add(f"area_type={area_type!r} is not known",
                         "Use one of: " + ", ".join(AREA_TYPES) + " (grids come from hotspots.geo.make_grid).")
        problems.raise_if_any()
        return table[area_type]()


def _check_town_centre_ids(gdf: gpd.GeoDataFrame, path, name_column: str) -> None:
    """Town centres are looked up by code and chosen by name: both must be unique and names not blank."""
    problems = []
    for col, what in (("area_code", "code"), ("area_name", f"name (column {name_column!r})")):
        values = gdf[col]
        repeated = values[values.duplicated(keep=False) & (values != "")]
        for value, rows in list(repeated.groupby(repeated, sort=True).groups.items())[:5]:
            problems.append(f"{what} {value!r} is used by features {[int(r) + 1 for r in rows]}")
    blank = np.flatnonzero((gdf["area_name"] == "").to_numpy())
    if len(blank):
        problems.append(f"features {[int(r) + 1 for r in blank[:10]]} have no name")
    if problems:
        raise InputFileError(f"{path}: town centres must have unique codes and names: " + "; ".join(problems),
                             hint="give every town-centre polygon its own code and name (or merge the duplicates into one "
                             "polygon), then run again")


def default_town_centres() -> gpd.GeoDataFrame:
    """The project's approximate Hertfordshire town centres (circles, EPSG:27700).

    Each is a circle around the town's main shopping street with the radius in
    ``town_centres_hertfordshire.csv``; see ``boundaries/README.md`` for the
    derivation and limits.  Replace with your own polygons via the config.
    """
    path = resources.files("hotspots") / "data" / "town_centres_hertfordshire.csv"
    table = pd.read_csv(str(path), dtype={"code": str, "district_code": str})
    pts = gpd.GeoSeries(gpd.points_from_xy(table["lon"], table["lat"]), crs="EPSG:4326").to_crs(BNG)
    geom = pts.buffer(table["radius_m"].to_numpy(), quad_segs=16)
    return gpd.GeoDataFrame(
        {"area_code": table["code"], "area_name": table["name"], "district_code": table["district_code"], "anchor": table["anchor"]},
        geometry=geom.values,
        crs=BNG,
    )


def read_user_areas(path: str | Path, *, name_column: str | None = None, area_type: str = "user") -> gpd.GeoDataFrame:
    """User polygons (hotspot areas, beats, estates) as an area table.

    Parameters
    ----------
    path : str or Path
        A polygon file with a CRS (see :func:`read_boundary`).
    name_column : str, optional
        Column holding the area names; default ``"area 1"``, ``"area 2"``, ...
    area_type : str, default "user"
        Written in the ``area_type`` column.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`hotspots.schema.AREA_COLUMNS` in EPSG:27700, sorted by
        ``area_code`` (from a ``code``, ``id`` or ``area_code`` column, else
        ``U001``, ``U002``, ...).

    Notes
    -----
    Overlapping polygons are allowed: a point inside two polygons counts in both.

    Examples
    --------
    >>> import os, tempfile
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> beats = gpd.GeoDataFrame({"beat": ["Town", "Park"]},
    ...     geometry=[box(515000, 205000, 516000, 206000), box(516000, 205000, 517000, 206000)], crs=27700)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     beats.to_file(os.path.join(folder, "beats.gpkg"))
    ...     areas = read_user_areas(os.path.join(folder, "beats.gpkg"), name_column="beat")
    >>> areas[["area_type", "area_code", "area_name", "area_km2"]].to_dict("records")
    [{'area_type': 'user', 'area_code': 'U001', 'area_name': 'Town', 'area_km2': 1.0}, {'area_type': 'user', 'area_code': 'U002', 'area_name': 'Park', 'area_km2': 1.0}]
    """
    gdf = read_boundary(path, name="area file")
    if name_column and name_column not in gdf.columns:
        raise InputFileError(
            f"{path}: no column {name_column!r}; columns are {[c for c in gdf.columns if c != 'geometry']}",
            hint="pass the column that holds the area names",
        )
    gdf["area_name"] = gdf[name_column].astype(str) if name_column else [f"area {i + 1}" for i in range(len(gdf))]
    code_col = next((c for c in ("code", "id", "area_code") if c in gdf.columns), None)
    gdf["area_code"] = gdf[code_col].astype(str) if code_col else [f"U{i + 1:03d}" for i in range(len(gdf))]
    if gdf["area_code"].duplicated().any():
        raise InputFileError(
            f"{path}: area codes repeat: {sorted(gdf.loc[gdf['area_code'].duplicated(), 'area_code'].unique())[:5]}",
            hint="give each polygon a unique code/id",
        )
    return _area_frame(gdf, area_type)


def _majority_area(gdf: gpd.GeoDataFrame, districts: gpd.GeoDataFrame) -> np.ndarray:
    """Code of the district holding most of each polygon's area ('' if none)."""
    out = np.full(len(gdf), "", dtype=object)
    for i, geom in enumerate(gdf.geometry.values):
        inter = shapely.area(shapely.intersection(districts.geometry.values, geom))
        if inter.max() > 0:
            out[i] = districts["area_code"].iloc[int(np.argmax(inter))]
    return out
