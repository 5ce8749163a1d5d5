#!/usr/bin/env python3
"""Fuzz the input readers for a fixed time budget.

Feeds ``read_police_uk`` (random bytes, and police.uk-format files mutated byte by byte,
field by field, gzipped, zipped and truncated), ``read_force_export`` (mutated exports with
random column mappings) and ``read_boundary`` (random and mutated GeoJSON) with hypothesis-
generated input, and checks that

* the only exceptions are :class:`hotspots._errors.HotspotsError` subclasses (user errors
  with a message and a hint), never a crash from pandas/pyarrow/csv/GDAL/shapely, and never
  ``AccountingError`` (which is a hotspots bug);
* what is returned is sane: balanced row accounting, finite BNG coordinates, valid polygons.

Usage::

    python scripts/fuzz_readers.py                # 60 s
    python scripts/fuzz_readers.py --seconds 120  # longer
    python scripts/fuzz_readers.py --seconds 30 --target boundary

Exit status 0 when no failure was found, 1 otherwise (each failure is printed with the
shrunk input that reproduces it).  Real police.uk rows from the data home ($HOTSPOTS_DATA
or ../shared/data) are used as mutation seeds when present; nothing is copied anywhere.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from hotspots._errors import AccountingError, HotspotsError
from hotspots.geo.boundaries import read_boundary
from hotspots.io import ColumnMapping, read_force_export, read_police_uk
from hotspots.schema import POINT_COLUMNS, POLICE_UK_STREET_HEADER

ROOT = Path(__file__).resolve().parents[1]
NAME = "2025-01-hertfordshire-street.csv"

# --------------------------------------------------------------------------- seeds
SYNTHETIC_ROWS = [
    ["a1", "2025-01", "Hertfordshire Constabulary", "Hertfordshire Constabulary", "-0.340000", "51.752700",
     "On or near High Street", "E01023800", "St Albans 001A", "Burglary", "Under investigation", ""],
    ["", "2025-01", "Hertfordshire Constabulary", "Hertfordshire Constabulary", "-0.205000", "51.802000",
     "On or near Parkway", "E01023801", "Welwyn Hatfield 001A", "Anti-social behaviour", "", ""],
    ["a3", "2025-01", "Hertfordshire Constabulary", "Hertfordshire Constabulary", "", "",
     "No location", "", "", "Violence and sexual offences", "Unable to prosecute suspect", ""],
]


def real_seed_rows(limit: int = 40) -> list[list[str]]:
    for cand in (os.environ.get("HOTSPOTS_DATA"), ROOT.parent / "shared" / "data"):
        if not cand:
            continue
        files = sorted((Path(cand) / "police_uk").rglob("*-street.csv.gz"))
        if files:
            with gzip.open(files[-1], "rt", encoding="utf-8", newline="") as fh:
                reader = csv.reader(fh)
                next(reader)
                return [row for _, row in zip(range(limit), reader)]
    return []


def csv_text(rows, header=POLICE_UK_STREET_HEADER) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


TRICKY = ["", " ", '"', '""', ",", "\n", "\r\n", "\r", "\x00", "\ufeff", "nan", "NaN", "inf", "-inf", "1e309", "-0",
          "0", "0.0", "51.75", "-0.34", "515000", "207000", "2025-01", "2025-13", "0000-00", "9999-12", "Burglary",
          "Anti-social behaviour", "Shoplifting", "E01000001", "x" * 300, "\u00e9\u00a3", "\udcff"[:0] + "\u2013",
          "=cmd|' /C calc'!A0", "0x10", "1_000", "  51.7 ", "51,75"]

# --------------------------------------------------------------------------- strategies
mutation = st.one_of(
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 50)),
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("dup"), st.integers(0, 10**6), st.integers(1, 200)),
    st.tuples(st.just("special"), st.integers(0, 10**6), st.sampled_from([b'"', b",", b"\n", b"\r", b"\x00", b"\xff", b"\xe9", b"\xef\xbb\xbf"])),
)


# most inputs get no byte-level mutation, so the deeper code paths are reached too
mutations = st.one_of(st.just([]), st.just([]), st.lists(mutation, min_size=1, max_size=5))


def mutate(data: bytes, ops) -> bytes:
    buf = bytearray(data)
    for op, pos, arg in ops:
        p = pos % (len(buf) + 1)
        if op == "insert" or op == "special":
            buf[p:p] = arg
        elif op == "delete":
            del buf[p:p + arg]
        elif op == "flip" and buf:
            buf[p % len(buf)] = arg
        elif op == "dup":
            buf[p:p] = buf[p:p + arg]
    return bytes(buf)


def police_rows(seed_rows):
    field = st.one_of(st.sampled_from(TRICKY), st.text(max_size=20))
    random_row = st.lists(field, min_size=0, max_size=14)
    seed_row = st.sampled_from(seed_rows).flatmap(
        lambda r: st.lists(st.tuples(st.integers(0, 11), field), max_size=3).map(
            lambda edits: [v if i not in dict(edits) else dict(edits)[i] for i, v in enumerate(r)]
        )
    )
    return st.lists(st.one_of(seed_row, seed_row, random_row), max_size=25)


def headers():
    return st.one_of(
        st.just(POLICE_UK_STREET_HEADER),
        st.just(POLICE_UK_STREET_HEADER),
        st.just(POLICE_UK_STREET_HEADER),
        st.permutations(POLICE_UK_STREET_HEADER).map(list),
        st.lists(st.sampled_from(POLICE_UK_STREET_HEADER + ["Extra", "", " Month "]), min_size=0, max_size=14),
    )


def csv_payloads(seed_rows):
    structured = st.tuples(headers(), police_rows(seed_rows)).map(lambda hr: csv_text(hr[1], hr[0]).encode("utf-8", "surrogatepass"))
    encodings = st.sampled_from(["utf-8", "cp1252", "utf-16", "latin-1"])
    reencoded = st.tuples(police_rows(seed_rows), encodings).map(
        lambda re_: csv_text(re_[0]).encode(re_[1], errors="replace"))
    base = st.one_of(structured, structured, reencoded, st.binary(max_size=3000))
    return st.tuples(base, mutations).map(lambda bm: mutate(*bm))


PACKAGING = ["csv", "csv", "gz", "gz_truncated", "zip", "zip_gz", "zip_truncated", "random_zip"]


def write_police(tmp: Path, payload: bytes, packaging: str, cut: int) -> Path:
    if packaging == "csv":
        p = tmp / NAME
        p.write_bytes(payload)
    elif packaging in ("gz", "gz_truncated"):
        p = tmp / (NAME + ".gz")
        data = gzip.compress(payload)
        p.write_bytes(data[: max(0, len(data) - 1 - cut % max(1, len(data)))] if packaging == "gz_truncated" else data)
    elif packaging == "random_zip":
        p = tmp / "download.zip"
        p.write_bytes(b"PK\x03\x04" + payload)
    else:
        p = tmp / "download.zip"
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            member = "2025-01/" + NAME + (".gz" if packaging == "zip_gz" else "")
            zf.writestr(member, gzip.compress(payload) if packaging == "zip_gz" else payload)
            zf.writestr("2025-01/2025-01-bedfordshire-street.csv", payload[:100])
        data = buf.getvalue()
        p.write_bytes(data[: len(data) - 1 - cut % max(1, len(data))] if packaging == "zip_truncated" else data)
    return p


def coord():
    return st.one_of(
        st.floats(-1e7, 1e7, allow_nan=False, allow_infinity=False),
        st.floats(-0.6, 0.2), st.floats(51.5, 52.1),
        st.floats(500_000, 540_000), st.floats(190_000, 250_000),
        st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, 0.0, -180.0, 180.0, 90.0, -90.0]),
    )


def rings():
    return st.lists(st.lists(st.tuples(coord(), coord()).map(list), min_size=0, max_size=8), min_size=0, max_size=3)


def near_square():
    # closed rings around a BNG or lon/lat square, with jitter (often valid, sometimes bow-ties)
    return st.tuples(st.sampled_from([(515000.0, 207000.0, 1000.0), (-0.34, 51.75, 0.01)]),
                     st.lists(st.floats(-1.5, 1.5), min_size=8, max_size=8)).map(
        lambda t: [[[t[0][0] + t[0][2] * (i % 2 == 0) + t[0][2] * t[1][2 * i] * 0.5, t[0][1] + t[0][2] * t[1][2 * i + 1] * 0.5]
                    for i in range(4)] + [[t[0][0] + t[0][2] + t[0][2] * t[1][0] * 0.5, t[0][1] + t[0][2] * t[1][1] * 0.5]]])


def geometries():
    poly = st.one_of(rings(), near_square(), near_square())
    return st.one_of(
        st.none(),
        poly.map(lambda r: {"type": "Polygon", "coordinates": r}),
        near_square().map(lambda r: {"type": "Polygon", "coordinates": r}),
        near_square().map(lambda r: {"type": "Polygon", "coordinates": r}),
        st.lists(poly, max_size=3).map(lambda rs: {"type": "MultiPolygon", "coordinates": rs}),
        st.tuples(coord(), coord()).map(lambda xy: {"type": "Point", "coordinates": list(xy)}),
        st.lists(st.tuples(coord(), coord()).map(list), max_size=5).map(lambda c: {"type": "LineString", "coordinates": c}),
        st.just({"type": "GeometryCollection", "geometries": []}),
        st.fixed_dictionaries({"type": st.sampled_from(["Polygon", "Nonsense", ""]), "coordinates": st.integers()}),
    )


CRS_NAMES = ["urn:ogc:def:crs:EPSG::27700", "EPSG:27700", "EPSG:4326", "urn:ogc:def:crs:OGC:1.3:CRS84", "EPSG:3857",
             "EPSG:4978", "EPSG:32630", "EPSG:2154", "EPSG:999999", "nonsense", "", "EPSG:7405", "EPSG:4277"]


def geojson_payloads():
    props = st.dictionaries(st.sampled_from(["code", "id", "name", "", "geometry", "area_code"]),
                            st.one_of(st.none(), st.integers(), st.text(max_size=10), st.floats(allow_nan=True)), max_size=4)
    named = lambda n: {"type": "name", "properties": {"name": n}}  # noqa: E731
    crs = st.one_of(st.none(), st.sampled_from(CRS_NAMES).map(named), st.sampled_from(CRS_NAMES[:4]).map(named),
                    st.sampled_from(CRS_NAMES[:4]).map(named), st.sampled_from(CRS_NAMES), st.just({"type": "bogus"}),
                    st.integers())
    fc = st.fixed_dictionaries(
        {"type": st.sampled_from(["FeatureCollection", "FeatureCollection", "Feature", "Polygon"]),
         "features": st.lists(st.fixed_dictionaries({"type": st.just("Feature"), "properties": props, "geometry": geometries()}), max_size=5)},
        optional={"crs": crs},
    )

    def dump(d):
        try:
            return json.dumps(d, allow_nan=True).encode()
        except (TypeError, ValueError):
            return b"{}"

    # plausible files: polygons (sometimes self-intersecting, sometimes null) with a usual CRS
    plausible = st.fixed_dictionaries(
        {"type": st.just("FeatureCollection"),
         "features": st.lists(st.fixed_dictionaries({"type": st.just("Feature"), "properties": props,
                                                     "geometry": st.one_of(near_square().map(lambda r: {"type": "Polygon", "coordinates": r}),
                                                                           st.none())}), min_size=1, max_size=4)},
        optional={"crs": st.sampled_from(CRS_NAMES[:5]).map(named)},
    )
    base = st.one_of(plausible.map(dump), plausible.map(dump), fc.map(dump), fc.map(dump), st.binary(max_size=500))
    return st.tuples(base, mutations).map(lambda bm: mutate(*bm))


# --------------------------------------------------------------------------- checks
def check_points(res) -> None:
    acc = res.accounting
    assert list(res.points.columns)[: len(POINT_COLUMNS)] == POINT_COLUMNS
    assert acc.kept == len(res.points)
    assert acc.kept + sum(acc.dropped_by_reason().values()) == acc.rows_read
    for f in acc.files.values():
        assert f.kept + sum(f.dropped.values()) == f.rows_read
    xy = res.points[["x", "y"]].to_numpy(dtype=float)
    assert np.isfinite(xy).all()
    assert ((xy[:, 0] >= 0) & (xy[:, 0] <= 700_000) & (xy[:, 1] >= 0) & (xy[:, 1] <= 1_300_000)).all()


def expect_user_error(call):
    """Run call; a HotspotsError (not AccountingError) is fine; anything else propagates."""
    try:
        return call()
    except AccountingError:
        raise
    except HotspotsError as exc:
        assert exc.message and exc.hint, f"{type(exc).__name__} without message or hint: {exc!r}"
        return None


class Runner:
    def __init__(self, seed_rows):
        self.seed_rows = seed_rows
        self.tmp = Path(tempfile.mkdtemp(prefix="hotspots-fuzz-"))
        self.examples = {"police_uk": 0, "force_export": 0, "boundary": 0}
        self.outcomes = {k: {"ok": 0, "user_error": 0} for k in self.examples}

    def fresh(self) -> Path:
        d = self.tmp / "case"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        return d

    def _count(self, target, res):
        self.examples[target] += 1
        self.outcomes[target]["ok" if res is not None else "user_error"] += 1

    def police_uk(self, cfg):
        @cfg
        @given(payload=csv_payloads(self.seed_rows), packaging=st.sampled_from(PACKAGING), cut=st.integers(0, 10**6),
               months=st.sampled_from([(None, None), ("2025-01", "2025-12"), ("2025-02", "2025-02")]))
        def fuzz_police_uk(payload, packaging, cut, months):
            d = self.fresh()
            p = write_police(d, payload, packaging, cut)
            res = expect_user_error(lambda: read_police_uk(p, first_month=months[0], last_month=months[1]))
            if res is not None:
                check_points(res)
            self._count("police_uk", res)

        fuzz_police_uk()

    def force_export(self, cfg):
        cols = ["ref", "E", "N", "when", "what", "where"]
        seed = ("ref,E,N,when,what,where\n1,515000,207000,04/03/2025 22:15,Burglary,High St\n"
                "2,-0.34,51.75,2025-03-05,Theft,Market\n3,,,2025-03-06T10:00Z,Burglary,\n")
        field = st.one_of(st.sampled_from(TRICKY), st.text(max_size=12))
        rows = st.lists(st.lists(field, min_size=0, max_size=7), max_size=15)
        payload = st.one_of(
            st.just(seed.encode()),
            rows.map(lambda rs: (",".join(cols) + "\n" + "".join(",".join(r) + "\n" for r in rs)).encode("utf-8", "surrogatepass")),
        )
        payload = st.tuples(payload, mutations).map(lambda bm: mutate(*bm))
        mapping = st.builds(
            ColumnMapping, x=st.sampled_from(["E", "N", "x"]), y=st.sampled_from(["N", "E"]), date=st.sampled_from(["when", "what"]),
            offence=st.sampled_from(["what", "where"]), id=st.sampled_from([None, "ref", "where"]),
            location=st.sampled_from([None, "where"]), coords=st.sampled_from(["bng", "lonlat", "bng", "latlon"]),
            date_format=st.sampled_from([None, None, "%d/%m/%Y %H:%M", "%Y-%m-%d", "%Q", ""]),
            crime_type_map=st.sampled_from([None, {"Burglary": "Burglary"}, {"Theft": "Other theft", "": "Drugs"}]),
            keep_unmapped=st.booleans(),
        )

        @cfg
        @given(payload=payload, mapping=mapping, gz=st.booleans())
        def fuzz_force_export(payload, mapping, gz):
            d = self.fresh()
            p = d / ("export.csv.gz" if gz else "export.csv")
            p.write_bytes(gzip.compress(payload) if gz else payload)
            res = expect_user_error(lambda: read_force_export(p, mapping))
            if res is not None:
                check_points(res)
            self._count("force_export", res)

        fuzz_force_export()

    def boundary(self, cfg):
        @cfg
        @given(payload=geojson_payloads(), suffix=st.sampled_from([".geojson", ".geojson", ".json", ".gpkg", ".shp"]))
        def fuzz_boundary(payload, suffix):
            d = self.fresh()
            p = d / ("areas" + suffix)
            p.write_bytes(payload)
            gdf = expect_user_error(lambda: read_boundary(p))
            if gdf is not None:
                assert gdf.crs.to_epsg() == 27700
                assert len(gdf) > 0
                assert gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).all()
                assert gdf.geometry.is_valid.all() and not gdf.geometry.is_empty.any()
                import shapely

                assert np.isfinite(shapely.get_coordinates(gdf.geometry.values)).all()
            self._count("boundary", gdf)

        fuzz_boundary()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="time budget (default 60)")
    ap.add_argument("--target", choices=["all", "police_uk", "force_export", "boundary"], default="all")
    ap.add_argument("--batch", type=int, default=100, help="hypothesis examples per batch (default 100)")
    args = ap.parse_args(argv)

    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)  # the readers log every repair and re-encoding
    try:
        from pyogrio import set_gdal_config_options

        set_gdal_config_options({"CPL_LOG": "/dev/null"})
    except Exception:  # pragma: no cover - cosmetic only
        pass

    seeds = real_seed_rows()
    runner = Runner(seeds + SYNTHETIC_ROWS)
    targets = ["police_uk", "force_export", "boundary"] if args.target == "all" else [args.target]
    # police_uk gets the biggest share: it reads the most varied input
    weights = {"police_uk": 2, "force_export": 1, "boundary": 2}
    schedule = [t for t in targets for _ in range(weights[t])]
    failures: list[tuple[str, str]] = []
    t0 = time.monotonic()
    i = 0
    print(f"fuzzing {', '.join(targets)} for {args.seconds:.0f} s "
          f"({len(seeds)} real police.uk rows as seeds{' - none found' if not seeds else ''})", flush=True)
    while time.monotonic() - t0 < args.seconds:
        target = schedule[i % len(schedule)]
        i += 1
        cfg = settings(max_examples=args.batch, deadline=None, database=None, derandomize=False,
                       suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink],
                       print_blob=True)
        try:
            getattr(runner, target)(cfg)
        except Exception as exc:  # hypothesis re-raises the shrunk failure
            tb = "".join(traceback.format_exception(exc))
            failures.append((target, tb))
            print(f"\nFAILURE in {target}:\n{tb}", flush=True)
            if len(failures) >= 5:
                break
    elapsed = time.monotonic() - t0
    shutil.rmtree(runner.tmp, ignore_errors=True)
    total = sum(runner.examples.values())
    print(f"\n{total:,} examples in {elapsed:.0f} s:")
    for t in targets:
        o = runner.outcomes[t]
        print(f"  {t:13s} {runner.examples[t]:6,} examples: {o['ok']:,} read, {o['user_error']:,} clear user errors (HotspotsError)")
    if failures:
        print(f"{len(failures)} failure(s) found (see above)")
        return 1
    print("no failures: every exception was a HotspotsError with a message and a hint")
    return 0


if __name__ == "__main__":
    sys.exit(main())
