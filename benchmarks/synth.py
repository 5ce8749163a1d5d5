"""A reproducible, national-scale synthetic workload (England and Wales size).

Everything is drawn from one seeded generator, so two machines build the same
data byte for byte (given the same numpy/shapely/pyproj versions):

* a land-like mask: a ~38-vertex outline of England and Wales in British
  National Grid, scaled to 151,000 km2 (the real land area);
* ~300 "towns" with Zipf-like sizes; ~750,000 unique map points (police.uk
  snaps every crime to one of ~750,000 anonymised points), 85% around towns
  and 15% rural, their coordinates rounded through lon/lat at 6 decimals as
  police.uk publishes them;
* 6,000,000 crimes a year drawn onto those map points with heavy-tailed
  weights (many crimes share one coordinate), 12 months, the 14 police.uk
  categories in roughly national proportions;
* 35,000 LSOA-like polygons: Voronoi cells of seeds drawn from the map points
  (small in towns, large in the country), clipped to the mask and densified
  to 200 m segments; 331 districts (unions of LSOAs around seeded centres)
  and 43 forces (unions of districts);
* police.uk-format CSVs (one per force-month) for the ingest benchmark.

Generated once into a cache folder outside the project (default
``$HOTSPOTS_BENCH_CACHE`` or ``/tmp/hotspots-bench``), keyed by the parameters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

BNG = "EPSG:27700"

#: England and Wales, roughly: (easting, northing) in metres, clockwise from Land's End.
OUTLINE = [
    (135000, 25000), (170000, 12000), (248000, 54000), (300000, 80000), (368000, 70000), (450000, 85000),
    (560000, 96000), (632000, 141000), (640000, 170000), (575000, 185000), (618000, 214000), (655000, 293000),
    (620000, 342000), (555000, 340000), (557000, 363000), (540000, 410000), (525000, 470000), (490000, 511000),
    (452000, 532000), (400000, 653000), (370000, 600000), (330000, 570000), (320000, 562000), (296000, 512000),
    (340000, 465000), (330000, 390000), (312000, 385000), (240000, 390000), (212000, 322000), (258000, 282000),
    (172000, 225000), (190000, 205000), (245000, 187000), (318000, 175000), (330000, 160000), (295000, 147000),
    (225000, 125000), (180000, 62000),
]
LAND_KM2 = 151_000.0

#: police.uk categories and rough national shares (2024).
CRIME_TYPES = {
    "Violence and sexual offences": 0.33,
    "Anti-social behaviour": 0.17,
    "Criminal damage and arson": 0.08,
    "Shoplifting": 0.07,
    "Public order": 0.07,
    "Other theft": 0.06,
    "Vehicle crime": 0.06,
    "Burglary": 0.045,
    "Drugs": 0.03,
    "Other crime": 0.02,
    "Theft from the person": 0.02,
    "Robbery": 0.012,
    "Bicycle theft": 0.012,
    "Possession of weapons": 0.008,
}
OUTCOMES = [
    "Investigation complete; no suspect identified",
    "Unable to prosecute suspect",
    "Under investigation",
    "Status update unavailable",
    "Local resolution",
]


@dataclasses.dataclass(frozen=True)
class Spec:
    points: int = 6_000_000
    locations: int = 750_000
    towns: int = 300
    lsoas: int = 35_000
    districts: int = 331
    forces: int = 43
    months: int = 12
    year: int = 2024
    seed: int = 20250601
    lsoa_segment_m: float = 200.0
    version: int = 2  # bump when the generator changes, so caches are rebuilt

    def key(self) -> str:
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def cache_root() -> Path:
    return Path(os.environ.get("HOTSPOTS_BENCH_CACHE", "/tmp/hotspots-bench"))


def mask_polygon():
    import shapely
    from shapely import affinity

    poly = shapely.Polygon(OUTLINE)
    factor = (LAND_KM2 * 1e6 / poly.area) ** 0.5
    return affinity.scale(poly, factor, factor, origin=poly.centroid)


def _inside(mask, x, y):
    import shapely

    shapely.prepare(mask)
    return shapely.contains_xy(mask, x, y)


def _sample_in_mask(rng, mask, n, draw):
    """Draw until n points fall inside the mask; draw(k) -> (x, y)."""
    xs, ys, have = [], [], 0
    while have < n:
        x, y = draw(int((n - have) * 1.3) + 16)
        ok = _inside(mask, x, y)
        xs.append(x[ok]), ys.append(y[ok])
        have += int(ok.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def build(spec: Spec = Spec(), root: Path | None = None, *, csv: bool = False, log=print) -> Path:
    """Generate (or reuse) the workload; returns its folder."""
    root = (root or cache_root()) / f"national-{spec.key()}"
    done = root / "done.json"
    if not done.exists():
        _build_core(spec, root, log)
    if csv and not (root / "police_uk" / "done").exists():
        _write_csv(spec, root, log)
    return root


def _build_core(spec: Spec, root: Path, log) -> None:
    import geopandas as gpd
    import shapely
    from pyproj import Transformer
    from scipy.spatial import cKDTree

    t0 = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    mask = mask_polygon()
    x0, y0, x1, y1 = mask.bounds

    # towns: Zipf-like sizes, spread growing with size (a city spreads ~15 km, a village ~1.5 km)
    tx, ty = _sample_in_mask(rng, mask, spec.towns, lambda k: (rng.uniform(x0, x1, k), rng.uniform(y0, y1, k)))
    size = 1.0 / np.arange(1, spec.towns + 1) ** 0.9
    rng.shuffle(size)
    sigma = np.clip(1500.0 * np.sqrt(size / size.min()), 1500.0, 15000.0)

    # unique map points: 85% around towns, 15% rural
    n_town = int(spec.locations * 0.85)

    def around_towns(k):
        t = rng.choice(spec.towns, size=k, p=size / size.sum())
        return tx[t] + rng.normal(0, 1, k) * sigma[t], ty[t] + rng.normal(0, 1, k) * sigma[t]

    lx_t, ly_t = _sample_in_mask(rng, mask, n_town, around_towns)
    lx_r, ly_r = _sample_in_mask(rng, mask, spec.locations - n_town, lambda k: (rng.uniform(x0, x1, k), rng.uniform(y0, y1, k)))
    lx, ly = np.concatenate([lx_t, lx_r]), np.concatenate([ly_t, ly_r])
    # through lon/lat at 6 decimals, as police.uk publishes them
    to_ll = Transformer.from_crs(BNG, "EPSG:4326", always_xy=True)
    to_bng = Transformer.from_crs("EPSG:4326", BNG, always_xy=True)
    lon, lat = to_ll.transform(lx, ly)
    lon, lat = np.round(lon, 6), np.round(lat, 6)
    lx, ly = to_bng.transform(lon, lat)
    lx, ly = np.asarray(lx), np.asarray(ly)
    keep = _inside(mask, lx, ly)
    lon, lat, lx, ly = lon[keep], lat[keep], lx[keep], ly[keep]
    n_loc = len(lx)
    log(f"  synth: {n_loc:,} map points ({time.perf_counter() - t0:.1f} s)")

    # LSOA-like polygons: Voronoi cells of seeds drawn from the map points, clipped to the mask
    seeds = rng.choice(n_loc, size=spec.lsoas, replace=False)
    sx = lx[seeds] + rng.normal(0, 30, spec.lsoas)
    sy = ly[seeds] + rng.normal(0, 30, spec.lsoas)
    ok = _inside(mask, sx, sy)
    sx, sy = np.where(ok, sx, lx[seeds]), np.where(ok, sy, ly[seeds])
    cells = shapely.voronoi_polygons(shapely.multipoints(np.c_[sx, sy]), extend_to=mask.buffer(10_000), ordered=True)
    cells = np.asarray(shapely.get_parts(cells))
    cells = shapely.intersection(cells, mask)
    cells = shapely.segmentize(cells, spec.lsoa_segment_m)
    assert len(cells) == spec.lsoas and not shapely.is_empty(cells).any()
    lsoa_code = np.array([f"E01{i:06d}" for i in range(1, spec.lsoas + 1)], dtype=object)

    # districts: LSOAs grouped by the nearest of 331 seeded centres; forces: districts by the nearest of 43
    dseeds = rng.choice(spec.lsoas, size=spec.districts, replace=False)
    _, lsoa_district = cKDTree(np.c_[sx[dseeds], sy[dseeds]]).query(np.c_[sx, sy])
    present = np.unique(lsoa_district)
    assert len(present) == spec.districts, "a district got no LSOA; change the seed"
    district_code = np.array([f"E07{i:06d}" for i in range(1, spec.districts + 1)], dtype=object)
    dgeoms = np.empty(spec.districts, dtype=object)
    for d in range(spec.districts):
        dgeoms[d] = shapely.union_all(cells[lsoa_district == d])
    dcx, dcy = shapely.get_coordinates(shapely.point_on_surface(dgeoms)).T
    fseeds = rng.choice(spec.districts, size=spec.forces, replace=False)
    _, district_force = cKDTree(np.c_[dcx[fseeds], dcy[fseeds]]).query(np.c_[dcx, dcy])
    force_slug = np.array([f"force-{i:02d}" for i in range(1, spec.forces + 1)], dtype=object)
    log(f"  synth: {spec.lsoas:,} LSOAs, {spec.districts} districts ({time.perf_counter() - t0:.1f} s)")

    # each map point's LSOA (the synthetic truth; police.uk publishes it per crime)
    tree = shapely.STRtree(cells)
    pairs = tree.query(shapely.points(lx, ly), predicate="intersects")
    loc_lsoa = np.full(n_loc, -1, dtype=np.int64)
    order = np.lexsort((pairs[1], pairs[0]))  # lowest LSOA wins on shared edges
    p0, p1 = pairs[0][order], pairs[1][order]
    first = np.r_[True, p0[1:] != p0[:-1]]
    loc_lsoa[p0[first]] = p1[first]
    assert (loc_lsoa >= 0).all(), "a map point lies in no LSOA"

    # crimes: heavy-tailed weights per map point, so many crimes share one coordinate
    weight = rng.lognormal(0.0, 1.3, n_loc)
    loc = rng.choice(n_loc, size=spec.points, p=weight / weight.sum())
    month = rng.integers(0, spec.months, spec.points).astype(np.int8)
    shares = np.array(list(CRIME_TYPES.values()))
    ctype = rng.choice(len(CRIME_TYPES), size=spec.points, p=shares / shares.sum()).astype(np.int8)
    log(f"  synth: {spec.points:,} crimes on {len(np.unique(loc)):,} map points ({time.perf_counter() - t0:.1f} s)")

    np.savez(
        root / "points.npz",
        loc=loc.astype(np.int32), month=month, ctype=ctype,
        loc_x=lx, loc_y=ly, loc_lon=lon, loc_lat=lat, loc_lsoa=loc_lsoa.astype(np.int32),
    )
    lsoa = gpd.GeoDataFrame(
        {"area_type": "lsoa", "area_code": lsoa_code, "area_name": [f"Synthetic {c[3:]}" for c in lsoa_code],
         "district_code": district_code[lsoa_district], "population": rng.integers(1000, 3000, spec.lsoas).astype(float)},
        geometry=cells, crs=BNG,
    )
    lsoa["area_km2"] = lsoa.area / 1e6
    districts = gpd.GeoDataFrame(
        {"area_type": "district", "area_code": district_code, "area_name": [f"District {i}" for i in range(1, spec.districts + 1)],
         "district_code": district_code, "force": force_slug[district_force],
         "population": lsoa.groupby("district_code")["population"].sum().reindex(district_code).to_numpy()},
        geometry=dgeoms, crs=BNG,
    )
    districts["area_km2"] = districts.area / 1e6
    lsoa.to_parquet(root / "lsoa.parquet")
    districts.to_parquet(root / "districts.parquet")
    gpd.GeoDataFrame({"name": ["land"]}, geometry=[mask], crs=BNG).to_parquet(root / "mask.parquet")
    stats = {
        "spec": dataclasses.asdict(spec),
        "map_points": int(n_loc),
        "map_points_used": int(len(np.unique(loc))),
        "lsoa_mean_vertices": float(shapely.get_num_coordinates(cells).mean()),
        "district_mean_vertices": float(shapely.get_num_coordinates(dgeoms).mean()),
        "land_km2": float(mask.area / 1e6),
        "build_s": round(time.perf_counter() - t0, 1),
    }
    (root / "done.json").write_text(json.dumps(stats, indent=1))
    log(f"  synth: built in {stats['build_s']} s -> {root}")


def load(root: Path, n: int | None = None):
    """(points DataFrame like ingest's output, lsoa, districts, mask) for the first n crimes."""
    import geopandas as gpd
    import pandas as pd

    z = np.load(root / "points.npz")
    loc = z["loc"] if n is None else z["loc"][:n]
    m = len(loc)
    month_labels = np.array([f"{2024}-{i:02d}" for i in range(1, 13)], dtype=object)
    type_labels = np.array(list(CRIME_TYPES), dtype=object)
    lsoa = gpd.read_parquet(root / "lsoa.parquet")
    districts = gpd.read_parquet(root / "districts.parquet")
    mask = gpd.read_parquet(root / "mask.parquet").geometry.iloc[0]
    codes = lsoa["area_code"].to_numpy(dtype=object)
    points = pd.DataFrame({
        "x": z["loc_x"][loc],
        "y": z["loc_y"][loc],
        "month": pd.array(month_labels[z["month"][:m]], dtype="str"),
        "crime_type": pd.array(type_labels[z["ctype"][:m]], dtype="str"),
        "lsoa21_code": pd.array(codes[z["loc_lsoa"][loc]], dtype="str"),
    })
    return points, lsoa, districts, mask


def _hex_ids(rng, n):
    table = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")
    raw = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    return table[raw].view("S64").ravel()


def _write_csv(spec: Spec, root: Path, log) -> None:
    """police.uk street-level CSVs, one per force-month: police_uk/<force>/YYYY-MM-<force>-street.csv."""
    import geopandas as gpd
    import pyarrow as pa
    import pyarrow.csv as pacsv

    t0 = time.perf_counter()
    z = np.load(root / "points.npz")
    lsoa = gpd.read_parquet(root / "lsoa.parquet")
    districts = gpd.read_parquet(root / "districts.parquet")
    rng = np.random.default_rng(spec.seed + 1)
    loc = z["loc"]
    n = len(loc)
    lsoa_of = z["loc_lsoa"][loc]
    dist_index = {c: i for i, c in enumerate(districts["area_code"])}
    lsoa_force = districts["force"].to_numpy()[[dist_index[c] for c in lsoa["district_code"]]]
    force = lsoa_force[lsoa_of]
    type_labels = np.array(list(CRIME_TYPES), dtype=object)
    is_asb = z["ctype"] == list(CRIME_TYPES).index("Anti-social behaviour")
    ids = _hex_ids(rng, n)
    outcome = rng.integers(0, len(OUTCOMES), n)
    n_loc = len(z["loc_x"])
    # strings per map point, formatted once
    lon_s = np.array([f"{v:.6f}" for v in z["loc_lon"]], dtype=object)
    lat_s = np.array([f"{v:.6f}" for v in z["loc_lat"]], dtype=object)
    street_s = np.array([f"On or near Street {s}" for s in rng.integers(0, 5000, n_loc)], dtype=object)
    out = root / "police_uk"
    month = z["month"]
    order = np.lexsort((month, force))
    key = force[order].astype(str).astype(object) + month[order].astype(str)
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], len(order)]
    lsoa_codes = lsoa["area_code"].to_numpy(dtype=object)
    lsoa_names = lsoa["area_name"].to_numpy(dtype=object)
    outcomes = np.array(OUTCOMES, dtype=object)
    rows = 0
    for a, b in zip(starts, ends):
        sel = np.sort(order[a:b])  # keep the crimes' generated order within a file
        f, mi = force[sel[0]], int(month[sel[0]])
        month_label = f"{spec.year}-{mi + 1:02d}"
        name = f.replace("-", " ").title() + " Police"
        asb = is_asb[sel]
        at = loc[sel]
        k = len(sel)
        table = pa.table({
            "Crime ID": pa.array(np.where(asb, b"", ids[sel])).cast(pa.string()),
            "Month": pa.array(np.full(k, month_label, dtype=object), pa.string()),
            "Reported by": pa.array(np.full(k, name, dtype=object), pa.string()),
            "Falls within": pa.array(np.full(k, name, dtype=object), pa.string()),
            "Longitude": pa.array(lon_s[at], pa.string()),
            "Latitude": pa.array(lat_s[at], pa.string()),
            "Location": pa.array(street_s[at], pa.string()),
            "LSOA code": pa.array(lsoa_codes[lsoa_of[sel]], pa.string()),
            "LSOA name": pa.array(lsoa_names[lsoa_of[sel]], pa.string()),
            "Crime type": pa.array(type_labels[z["ctype"][sel]], pa.string()),
            "Last outcome category": pa.array(np.where(asb, "", outcomes[outcome[sel]]), pa.string()),
            "Context": pa.array(np.full(k, "", dtype=object), pa.string()),
        })
        d = out / f
        d.mkdir(parents=True, exist_ok=True)
        pacsv.write_csv(table, d / f"{month_label}-{f}-street.csv", pacsv.WriteOptions(quoting_style="needed"))
        rows += k
    (out / "done").write_text(str(rows))
    log(f"  synth: wrote {rows:,} rows of police.uk CSV in {time.perf_counter() - t0:.1f} s -> {out}")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=Spec.points)
    ap.add_argument("--csv", action="store_true")
    a = ap.parse_args()
    print(build(Spec(points=a.points), csv=a.csv))
