"""Boundaries, lookups and population: the areas points are counted in.

Every area table has the columns :data:`hotspots.schema.AREA_COLUMNS` and is in
British National Grid (EPSG:27700).  Boundary files without a CRS are an error,
never guessed.

Which file serves which layer is listed in :data:`DATA_FILES`: the first
candidate present in the data home wins, and the choice is recorded.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import re
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from hotspots._errors import CRSError, DataNotFoundError, InputFileError
from hotspots._validate import _Problems
from hotspots.io._files import geojson_lines_with, preread_geojson
from hotspots.geo._lookups import canonical_columns, lsoa_csp, old_district_names, ons_columns
from hotspots.geo._town_centres import _check_town_centre_ids, _majority_area, default_town_centres  # noqa: F401 (re-exported)
from hotspots.schema import AREA_COLUMNS, BNG

log = logging.getLogger(__name__)

#: logical layer -> candidate paths inside the data home (first present wins).
#: ``hotspots download`` writes the first candidate of each.
DATA_FILES: dict[str, list[str]] = {
    "districts": [
        "boundaries/lad_bgc.geojson",
        "boundaries/herts_phei/ltla_cut.geojson",
        "boundaries/ons_via_geographr/lad_may2024_dissolved_from_lsoa21_bsc_ew.geojson.gz",
        # ultra-generalised (500 m): used only when nothing finer covers the force, with a warning
        "boundaries/ons_via_geographr/lad_may2024_buc_uk.geojson",
    ],
    "lsoa21": [
        "boundaries/lsoa21_bsc.geojson",
        "boundaries/ons_via_geographr/lsoa21_bsc_ew.geojson.gz",
        "boundaries/ons_via_geographr/lsoa21_bsc_herts_and_neighbours.geojson",
    ],
    "lookup_lsoa11_lsoa21": ["lookups/lookup_lsoa11_lsoa21_ltla22_ew.csv.gz", "lookups/lookup_lsoa11_lsoa21_ltla22_ew.csv"],
    "lookup_lsoa21_ward": ["lookups/lookup_lsoa21_ward24_ltla24_ew.csv.gz", "lookups/lookup_lsoa21_ward24_ltla24_ew.csv"],
    "lookup_district_csp_force": ["lookups/lookup_ltla24_csp24_pfa24_ew.csv", "lookups/lookup_ltla24_csp24_pfa24_ew.csv.gz"],
    "population_lsoa21": [
        "population/census2021_usual_residents_lsoa21_ew.csv.gz",
        "population/census2021_usual_residents_lsoa21_ew.csv",
    ],
}
#: LSOA 2011 -> pre-2021 district lookups (all present are used): where CSPs follow old districts
OLD_DISTRICT_LOOKUPS = [
    "lookups/lookup_lsoa11_ltla18_en.csv.gz", "lookups/lookup_lsoa11_ltla18_en.csv",
    "lookups/lookup_lsoa11_ltla19_ew.csv.gz", "lookups/lookup_lsoa11_ltla19_ew.csv",
    "lookups/lookup_lsoa11_ltla20_ew.csv.gz", "lookups/lookup_lsoa11_ltla20_ew.csv",
]
#: district files generalised so far (500 m) that points near edges land in the wrong district
_COARSE_DISTRICT_FILES = {"boundaries/ons_via_geographr/lad_may2024_buc_uk.geojson"}

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


def read_boundary(path: str | Path, *, layer: str | None = None, name: str = "boundary file",
                  where: str | None = None, lines_with: Sequence[str] = ()) -> gpd.GeoDataFrame:
    """Read a polygon file (GeoPackage, GeoJSON, Shapefile; also gzipped) and return it in EPSG:27700.

    Parameters
    ----------
    path : str or Path
        The boundary file.
    layer : str, optional
        Layer of a multi-layer file (GeoPackage); default the first.
    name : str, default "boundary file"
        What the file is, for error messages ("district boundary file", ...).
    where : str, optional
        An OGR SQL filter on the file's attributes (``"ltla24_code IN ('E06000063')"``),
        to read part of a national file; ignored when the file cannot apply it.
    lines_with : sequence of str, optional
        With ``where``: text every feature ``where`` keeps contains (its codes).
        A GeoJSON laid out one feature per line is first cut to the lines
        holding one (:func:`hotspots.io._files.geojson_lines_with`), so GDAL
        parses only those; ``where`` then picks the same features as from the
        whole file.

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
    source = f"/vsigzip/{path}" if path.suffix == ".gz" else path
    try:
        gdf = None
        subset = geojson_lines_with(path, lines_with) if where and lines_with else None
        for part in ([io.BytesIO(subset)] if subset is not None else []) + ([source] if where else []):
            try:
                gdf = gpd.read_file(part, layer=layer, engine="pyogrio", where=where)
                break
            except Exception:  # a filter on a column the file lacks: read it all
                gdf = None
        if gdf is None:
            gdf = gpd.read_file(source, layer=layer, engine="pyogrio")
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
def _read_lsoa11_lookup(data_dir: Path) -> tuple[pd.DataFrame, Path]:
    """The ONS LSOA 2011 -> 2021 lookup of a data home (columns ``lsoa11_code``, ``lsoa21_code``, ...) and its path."""
    path = find_file(data_dir, "lookup_lsoa11_lsoa21")
    return canonical_columns(_read_csv(path), {"lsoa11_code": "lsoa", "lsoa21_code": "lsoa"}, path,
                             what="LSOA 2011 → LSOA 2021 lookup",
                             hint="use the ONS LSOA11 → LSOA21 lookup (LSOA11CD, LSOA21CD)"), path


@dataclasses.dataclass
class Geography:
    """All areas of one police force (or several), loaded lazily from a data home.

    ``force_area_code`` is one ONS police force area code, or several (a list,
    or one string separated by commas, ``"E23000032,E23000004"``) for a study
    area of several forces.  Records are placed in LSOAs, wards, districts and
    CSPs by their (harmonised) LSOA code through :attr:`lsoa_district`,
    :attr:`lsoa_ward` and :attr:`lsoa_csp`; polygons serve maps, grids and
    points without a usable code.  :attr:`warnings` lists what a user should
    know about the files used (coarse boundaries, LSOAs without polygons).

    Examples
    --------
    >>> geo = Geography("../shared/data", "E23000027")   # doctest: +SKIP
    >>> geo.areas("district")[["area_code", "area_name", "population"]]   # doctest: +SKIP
    """

    data_dir: Path
    force_area_code: str | Sequence[str]
    town_centres_path: str = ""
    town_centre_name_column: str = "name"
    sources: dict[str, str] = dataclasses.field(default_factory=dict)
    #: one sentence per problem with the geography files (each names the fix)
    warnings: list[str] = dataclasses.field(default_factory=list)
    #: how CSPs were built from LSOAs (split districts, LSOAs placed by old district name)
    notes: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.data_dir = Path(self.data_dir)
        codes = self.force_area_code
        codes = re.split(r"[,;+\s]+", codes) if isinstance(codes, str) else list(codes)
        self.force_codes: list[str] = [str(c).strip() for c in codes if str(c).strip()]
        self.force_area_code = "+".join(self.force_codes)

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            log.warning("%s", message)

    def read_layers(self, names: Sequence[str]) -> dict[str, gpd.GeoDataFrame]:
        """The layers among ``names`` (``"lsoa21"``, ``"districts"``, ...) read so far, for a cache to keep."""
        return {name: self.__dict__[name] for name in names if name in self.__dict__}

    def restore_layers(self, layers: dict[str, gpd.GeoDataFrame], warnings: Sequence[str] = ()) -> None:
        """Take layers kept from an earlier read of the same files and settings (and its warnings): not read again."""
        for message in warnings:
            self._warn(message)
        self.__dict__.update(layers)

    # ---- lookups
    @cached_property
    def district_lookup(self) -> pd.DataFrame:
        """Rows of the LAD → CSP → PFA lookup for the force(s); a district split between CSPs has several rows."""
        path = find_file(self.data_dir, "lookup_district_csp_force")
        self.sources["lookup_district_csp_force"] = str(path)
        lk = canonical_columns(
            _read_csv(path), {f"{f}24_{k}": f for f in ("ltla", "csp", "pfa") for k in ("code", "name")}, path,
            what="district → CSP → police force area lookup",
            hint="use the ONS LAD → CSP → PFA lookup (columns LAD24CD, LAD24NM, CSP24CD, CSP24NM, PFA24CD, PFA24NM)",
        )
        unknown = [c for c in self.force_codes if c not in set(lk["pfa24_code"])]
        if unknown or not self.force_codes:
            raise DataNotFoundError(
                f"police force area {'+'.join(unknown) or repr(self.force_area_code)} is not in {path}",
                hint="set force_area_code in the config to ONS PFA code(s) such as E23000027 (Hertfordshire); "
                "the codes are in the pfa24_code column of that file",
            )
        return lk[lk["pfa24_code"].isin(self.force_codes)].reset_index(drop=True)

    @cached_property
    def lsoa11_lookup(self) -> pd.DataFrame:
        lookup, path = _read_lsoa11_lookup(self.data_dir)
        self.sources["lookup_lsoa11_lsoa21"] = str(path)
        return lookup

    @cached_property
    def lsoa_ward_lookup(self) -> pd.DataFrame:
        path = find_file(self.data_dir, "lookup_lsoa21_ward")
        self.sources["lookup_lsoa21_ward"] = str(path)
        return canonical_columns(
            _read_csv(path), {"lsoa21_code": "lsoa", "ward24_code": "ward", "ward24_name": "ward", "ltla24_code": "ltla"}, path,
            what="LSOA 2021 → ward → district lookup",
            hint="use the ONS LSOA21 → ward → LAD best-fit lookup (LSOA21CD, WD24CD, WD24NM, LAD24CD)")

    @cached_property
    def lsoa_population(self) -> pd.Series:
        path = find_file(self.data_dir, "population_lsoa21")
        self.sources["population_lsoa21"] = str(path)
        pop = ons_columns(_read_csv(path))
        return pd.to_numeric(pop.set_index("lsoa21_code")["census2021_usual_residents"], errors="coerce")

    @property
    def district_codes(self) -> list[str]:
        return sorted(self.district_lookup["ltla24_code"].unique())

    @property
    def force_name(self) -> str:
        names = self.district_lookup.drop_duplicates("pfa24_code").set_index("pfa24_code")["pfa24_name"]
        return " and ".join(str(names[c]) for c in self.force_codes)

    @cached_property
    def known_lsoa21(self) -> frozenset[str]:
        """Every LSOA 2021 code of England and Wales (the ward lookup's), to tell a usable code from a typo."""
        return frozenset(self.lsoa_ward_lookup["lsoa21_code"].to_numpy(dtype=object).tolist())  # (not a Python call per cell)

    @cached_property
    def lsoa_district(self) -> pd.Series:
        """LSOA 2021 code -> district code, for every LSOA of the force's districts (from the lookup, not polygons)."""
        lk = self.lsoa_ward_lookup.drop_duplicates("lsoa21_code")
        lk = lk[lk["ltla24_code"].isin(self.district_codes)]
        return pd.Series(lk["ltla24_code"].to_numpy(), index=pd.Index(lk["lsoa21_code"].to_numpy(), name="lsoa21_code"),
                         name="district_code").sort_index()

    @cached_property
    def lsoa_ward(self) -> pd.Series:
        """LSOA 2021 code -> ward code (ONS best fit), for the force's LSOAs."""
        lk = self.lsoa_ward_lookup.drop_duplicates("lsoa21_code").set_index("lsoa21_code")["ward24_code"]
        return lk.reindex(self.lsoa_district.index).dropna()

    @cached_property
    def lsoa_csp(self) -> pd.Series:
        """LSOA 2021 code -> CSP code, through the old districts where a district is split between CSPs."""
        per_district = self.district_lookup.groupby("ltla24_code")["csp24_code"].nunique()
        old = self._old_district_names(set(per_district.index[per_district > 1])) if (per_district > 1).any() else None
        csp, notes = lsoa_csp(self.lsoa_district, self.district_lookup, old)
        self.notes["csp"] = notes
        return csp

    def _old_district_names(self, districts: set[str]) -> pd.DataFrame:
        """(lsoa21_code, old_name): the pre-2023 districts of the LSOAs of ``districts`` in every lookup present."""
        lsoas = self.lsoa_district.index[self.lsoa_district.isin(districts)]
        try:
            l11 = self.lsoa11_lookup[self.lsoa11_lookup["lsoa21_code"].isin(lsoas)]
        except DataNotFoundError:  # no bridge to the 2011 lookups: lsoa_csp says what is missing
            return pd.DataFrame(columns=["lsoa21_code", "old_name"])
        old, used = old_district_names(l11, [self.data_dir / rel for rel in OLD_DISTRICT_LOOKUPS], _read_csv)
        self.sources.update(used)
        return old

    def preread_lsoa21(self) -> Callable[[], None]:
        """:func:`~hotspots.io._files.preread_geojson` of the file :attr:`lsoa21` reads (if not read yet and present)."""
        paths = [self.data_dir / rel for rel in DATA_FILES["lsoa21"] if (self.data_dir / rel).is_file()]
        return preread_geojson(paths[0]) if paths and "lsoa21" not in self.__dict__ else lambda: None

    # ---- layers
    @cached_property
    def lsoa21(self) -> gpd.GeoDataFrame:
        """LSOA 2021 polygons of the force's districts, with Census 2021 population."""
        path = find_file(self.data_dir, "lsoa21")
        self.sources["lsoa21"] = str(path)
        codes = ",".join(f"'{c}'" for c in self.district_codes)
        gdf = ons_columns(read_boundary(path, name="LSOA 2021 boundary file", where=f"ltla24_code IN ({codes})",
                                        lines_with=[f'"{c}"' for c in self.district_codes]))
        if "lsoa21_code" not in gdf:
            raise InputFileError(f"{path}: the LSOA 2021 boundary file has no lsoa21_code / LSOA21CD column",
                                 hint="use the ONS LSOA (December 2021) boundaries")
        gdf = gdf[gdf["lsoa21_code"].isin(self.lsoa_district.index)].drop_duplicates("lsoa21_code").copy()
        missing = self.lsoa_district.index.difference(gdf["lsoa21_code"])
        if len(missing):
            self._warn(
                f"{len(missing):,} of the {len(self.lsoa_district):,} LSOAs of the force have no polygon in {path} "
                f"(e.g. {', '.join(missing[:3])}): their records are counted in districts and CSPs but not in the LSOA and ward "
                "tables; add the national LSOA 2021 boundaries (boundaries/ons_via_geographr/lsoa21_bsc_ew.geojson.gz)")
        gdf["area_code"] = gdf["lsoa21_code"]
        gdf["area_name"] = gdf["lsoa21_name"] if "lsoa21_name" in gdf else gdf["lsoa21_code"]
        gdf["district_code"] = gdf["lsoa21_code"].map(self.lsoa_district)
        gdf["population"] = gdf["lsoa21_code"].map(self.lsoa_population).astype(float)
        return _area_frame(gdf, "lsoa")

    @cached_property
    def districts(self) -> gpd.GeoDataFrame:
        """District polygons: the finest file covering every district, else dissolved from the LSOA polygons."""
        gdf, source = None, ""
        self.district_codes  # noqa: B018 - an unknown force or missing lookup is reported first
        for rel in DATA_FILES["districts"]:
            p = self.data_dir / rel
            if not p.is_file():
                continue
            if rel in _COARSE_DISTRICT_FILES and self.lsoa_district.index.isin(self.lsoa21["area_code"]).all():
                break  # LSOA polygons cover the force: dissolve them rather than use 500 m outlines
            cand = ons_columns(read_boundary(p, name="district boundary file"))
            code_col = next((c for c in sorted(cand.columns, reverse=True) if re.fullmatch(r"ltla\d\d_code", str(c))),
                            "lad_code" if "lad_code" in cand else None)
            if code_col is not None and set(self.district_codes) <= set(cand[code_col]):
                gdf = cand[cand[code_col].isin(self.district_codes)].assign(area_code=lambda t, c=code_col: t[c])
                source = str(p)
                if rel in _COARSE_DISTRICT_FILES:
                    self._warn(f"district outlines come from {p}, generalised to 500 m, because no finer district file "
                               "covers the force: maps and grids near district edges are coarse (records are placed by "
                               "their LSOA code, not these outlines); add "
                               "boundaries/ons_via_geographr/lad_may2024_dissolved_from_lsoa21_bsc_ew.geojson.gz")
                break
        if gdf is None:
            lsoa = self.lsoa21
            if not self.lsoa_district.index.isin(lsoa["area_code"]).all() or lsoa.empty:
                raise DataNotFoundError(
                    f"no district boundary file in {self.data_dir} covers all districts of {self.force_area_code} "
                    f"({', '.join(self.district_codes)}), and the LSOA polygons do not cover them either",
                    hint="run `hotspots download` or add an ONS LAD boundary file (see data/README.md)",
                )
            gdf = lsoa[["district_code", "geometry"]].dissolve(by="district_code").reset_index()
            gdf["area_code"] = gdf["district_code"]
            source = f"dissolved from the LSOA 2021 polygons ({self.sources.get('lsoa21', '')})"
        self.sources["districts"] = source
        names = self.district_lookup.drop_duplicates("ltla24_code").set_index("ltla24_code")["ltla24_name"]
        gdf = gdf.copy()
        gdf["area_name"] = gdf["area_code"].map(names)
        gdf["district_code"] = gdf["area_code"]
        pop = self.lsoa_district.index.to_series().map(self.lsoa_population).groupby(self.lsoa_district).sum(min_count=1)
        gdf["population"] = gdf["area_code"].map(pop).astype(float)
        return _area_frame(gdf, "district")

    @cached_property
    def csps(self) -> gpd.GeoDataFrame:
        """Community Safety Partnerships: their LSOAs (:attr:`lsoa_csp`) give membership and population.

        Outlines: a CSP of whole districts is the union of its districts; a CSP
        that follows old districts (its district is split between CSPs) is the
        union of its LSOA polygons.
        """
        csp = self.lsoa_csp
        lk = self.district_lookup
        split = set(lk.loc[lk["ltla24_code"].isin(self.notes["csp"]["split_districts"]), "csp24_code"])
        whole = lk[~lk["csp24_code"].isin(split)].merge(
            self.districts[["area_code", "geometry"]], left_on="ltla24_code", right_on="area_code")
        parts = [gpd.GeoDataFrame(whole[["csp24_code", "ltla24_code"]], geometry=whole.geometry.values, crs=BNG)]
        lsoa = self.lsoa21
        lsoa = lsoa[lsoa["area_code"].map(csp).isin(split)]
        parts.append(gpd.GeoDataFrame({"csp24_code": lsoa["area_code"].map(csp).to_numpy(),
                                       "ltla24_code": lsoa["district_code"].to_numpy()}, geometry=lsoa.geometry.values, crs=BNG))
        g = pd.concat(parts, ignore_index=True).dissolve(
            by="csp24_code", aggfunc={"ltla24_code": lambda s: ";".join(sorted(set(s)))}).reset_index()
        no_polygon = sorted(set(csp) - set(g["csp24_code"]))
        if no_polygon:
            self._warn(f"CSP(s) {', '.join(no_polygon)} have no LSOA polygon, so they are left out of the CSP tables; "
                       "add the national LSOA 2021 boundaries (boundaries/ons_via_geographr/lsoa21_bsc_ew.geojson.gz)")
        names = lk.drop_duplicates("csp24_code").set_index("csp24_code")["csp24_name"]
        g["area_code"] = g["csp24_code"]
        g["area_name"] = g["csp24_code"].map(names)
        # a CSP spanning several districts has no single containing district
        g["district_code"] = np.where(g["ltla24_code"].str.contains(";"), "", g["ltla24_code"])
        pop = csp.index.to_series().map(self.lsoa_population).groupby(csp).sum(min_count=1)
        g["population"] = g["area_code"].map(pop).astype(float)
        return _area_frame(g, "csp")

    @cached_property
    def force(self) -> gpd.GeoDataFrame:
        """The study area: the union of the districts of the force(s), one row."""
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
        wl = self.lsoa_ward_lookup.drop_duplicates("lsoa21_code").set_index("lsoa21_code")
        g = lsoa.assign(ward_code=lsoa["area_code"].map(wl["ward24_code"]), ward_name=lsoa["area_code"].map(wl["ward24_name"]))
        g = g.dissolve(by="ward_code", aggfunc={"ward_name": "first", "population": "sum", "district_code": "first"}).reset_index()
        g["area_code"], g["area_name"] = g["ward_code"], g["ward_name"]
        return _area_frame(g, "ward")

    def lsoa_to_area(self, area_type: str) -> pd.Series | None:
        """LSOA 2021 code -> area code for the types counted by LSOA code (None for the others)."""
        if area_type == "lsoa":
            return pd.Series(self.lsoa_district.index, index=self.lsoa_district.index)
        if area_type == "ward":
            return self.lsoa_ward
        if area_type == "district":
            return self.lsoa_district
        if area_type == "csp":
            return self.lsoa_csp
        if area_type == "force":
            return pd.Series(self.force_area_code, index=self.lsoa_district.index)
        return None

    def csp_of(self, areas: gpd.GeoDataFrame) -> pd.Series:
        """The CSP holding most of each polygon's area ('' if none), indexed like ``areas``."""
        return pd.Series(_majority_area(areas, self.csps), index=areas.index, dtype=object)

    @cached_property
    def town_centres(self) -> gpd.GeoDataFrame:
        if self.town_centres_path == "builtin:hertfordshire":  # asked for by name (the Hertfordshire config)
            gdf = default_town_centres()
            self.sources["town_centres"] = "hotspots built-in approximate Hertfordshire town centres"
        elif not self.town_centres_path:  # none (the config's choice, or no file for this force): never another force's
            gdf = gpd.GeoDataFrame({"area_code": [], "area_name": [], "district_code": []}, geometry=[], crs=BNG)
            self.sources["town_centres"] = "none"
        else:
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
        gdf = gdf.copy()
        if len(gdf) and ("district_code" not in gdf or (gdf["district_code"] == "").all()):
            gdf["district_code"] = _majority_area(gdf, self.districts)
            inside = shapely.area(shapely.intersection(gdf.geometry.values, self.force.geometry.iloc[0])) / gdf.geometry.area
            outside = (gdf["district_code"] == "") | (inside.to_numpy() < 0.5)
            if outside.any():  # another force's towns (mostly outside: a national or neighbouring file): left out, and said
                self.sources["town_centres"] += f" ({int(outside.sum())} of {len(gdf)} outside the force area left out)"
                gdf = gdf.loc[~outside]
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
