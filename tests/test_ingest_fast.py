"""Ingest shortcuts give what the code before them gave (the old code is kept here as the reference)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from hotspots.io.lsoa import harmonise_lsoa


def _reference_harmonise(
    points: pd.DataFrame,
    lookup: pd.DataFrame,
    *,
    lsoa21_polygons=None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The implementation before the per-code one (the reference)."""
    pts = points.copy(deep=False)  # copy-on-write: adding lsoa21_code below leaves ``points`` untouched
    # object strings: isin/map use pandas' hash table, whereas isin on arrow strings
    # converts the 35,000 lookup codes one by one in every call (1.8 s for Hertfordshire)
    code = pts["lsoa_code"].astype(str).str.strip().astype(object)
    lk = lookup[["lsoa11_code", "lsoa21_code"]].drop_duplicates()
    valid21 = set(lk["lsoa21_code"])
    n_targets = lk.groupby("lsoa11_code")["lsoa21_code"].nunique()
    one_to_one = lk[lk["lsoa11_code"].map(n_targets) == 1].set_index("lsoa11_code")["lsoa21_code"]

    is21 = code.isin(valid21)
    # built whole: setting code[is21] into a blank Series by mask aligns the index (0.3 s)
    out = pd.Series(np.where(is21.to_numpy(), code.to_numpy(), ""), index=pts.index, dtype=object)
    rest = ~is21 & (code != "")
    mapped = code[rest].map(one_to_one)
    ok = mapped.notna()
    out[mapped.index[ok]] = mapped[ok]
    split_idx = mapped.index[~ok & code[mapped.index].isin(n_targets.index)]
    unknown_idx = mapped.index[~ok & ~code[mapped.index].isin(n_targets.index)]
    stats = {
        "published_2021": int(is21.sum()),
        "mapped_2011_one_to_one": int(ok.sum()),
        "split_by_location": 0,
        "split_lowest_code": 0,
        "unknown_code": int(len(unknown_idx)),
        "blank": int((code == "").sum()),
    }
    if len(split_idx):
        cands = lk[lk["lsoa11_code"].isin(code[split_idx].unique())]
        chosen = pd.Series("", index=split_idx, dtype=object)
        if lsoa21_polygons is not None and len(lsoa21_polygons):
            import shapely

            poly = lsoa21_polygons.drop_duplicates("lsoa21_code").set_index("lsoa21_code").geometry
            pairs = pd.DataFrame({"idx": split_idx, "lsoa11_code": code[split_idx].to_numpy()}).merge(cands, on="lsoa11_code")
            pairs = pairs[pairs["lsoa21_code"].isin(poly.index)].sort_values(["idx", "lsoa21_code"])
            if len(pairs):
                geoms = np.asarray(poly.reindex(pairs["lsoa21_code"]).values)
                shapely.prepare(geoms)
                inside = shapely.intersects_xy(
                    geoms, pts.loc[pairs["idx"], "x"].to_numpy(float), pts.loc[pairs["idx"], "y"].to_numpy(float)
                )
                first = pairs[inside].drop_duplicates("idx")
                chosen[first["idx"].to_numpy()] = first["lsoa21_code"].to_numpy()
        lowest = cands.groupby("lsoa11_code")["lsoa21_code"].min()
        by_loc = chosen != ""
        stats["split_by_location"] = int(by_loc.sum())
        stats["split_lowest_code"] = int((~by_loc).sum())
        chosen[~by_loc] = code[chosen.index[~by_loc]].map(lowest)
        out[split_idx] = chosen
    pts["lsoa21_code"] = out.astype(str)
    return pts, stats


LOOKUP = pd.DataFrame({
    "lsoa11_code": ["E01000001", "E01000002", "E01000002", "E01000003", "E01000003", "E01000004", "E01000004"],
    "lsoa21_code": ["E01000001", "E01035001", "E01035002", "E01035003", "E01035004", "E01035005", "E01035005"],
})
POLYGONS = gpd.GeoDataFrame({"lsoa21_code": ["E01035001", "E01035002", "E01035003"]},
                            geometry=[box(0, 0, 10, 10), box(10, 0, 20, 10), box(0, 10, 10, 20)], crs=27700)


def _points(n: int = 2000, seed: int = 0, dtype="str") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    codes = np.array(["E01000001", "E01000002", " E01000002 ", "E01000003", "E01000004", "E01035002", "E01035005",
                      "", "  ", "E0999", "e01000002", "E01000002\t"], dtype=object)
    code = rng.choice(codes, n).astype(object)
    code[rng.random(n) < 0.05] = None
    return pd.DataFrame({"lsoa_code": pd.array(code, dtype=dtype), "x": rng.uniform(-2, 22, n), "y": rng.uniform(-2, 22, n)})


def _same(points, **kwargs):
    got, stats = harmonise_lsoa(points, LOOKUP, **kwargs)
    ref, ref_stats = _reference_harmonise(points, LOOKUP, **kwargs)
    pd.testing.assert_frame_equal(got, ref, check_exact=True)
    assert stats == ref_stats and list(stats) == list(ref_stats)
    return stats


@pytest.mark.parametrize("dtype", ["str", object])
@pytest.mark.parametrize("polygons", [None, POLYGONS])
def test_harmonise_by_code_is_the_point_by_point_code(dtype, polygons):
    points = _points(dtype=dtype)
    stats = _same(points, lsoa21_polygons=polygons)
    assert stats["split_lowest_code"] > 0 and stats["unknown_code"] > 0 and stats["blank"] > 0
    if polygons is not None:
        assert stats["split_by_location"] > 0
    shuffled = points.sample(frac=1.0, random_state=1)  # an index that is not 0..n-1
    _same(shuffled, lsoa21_polygons=polygons)
    _same(points.head(0), lsoa21_polygons=polygons)
    _same(points[points["lsoa_code"].isna()], lsoa21_polygons=polygons)


def test_harmonise_with_repeated_index_labels():
    points = _points(200, seed=3)
    points.index = np.repeat(np.arange(100), 2)
    got, stats = harmonise_lsoa(points, LOOKUP, lsoa21_polygons=POLYGONS)
    flat, flat_stats = _reference_harmonise(points.reset_index(drop=True), LOOKUP, lsoa21_polygons=POLYGONS)
    assert stats == flat_stats and got.index.equals(points.index)
    np.testing.assert_array_equal(got["lsoa21_code"].to_numpy(), flat["lsoa21_code"].to_numpy())


@pytest.mark.realdata
def test_harmonise_on_the_real_records(real_data_dir):
    from hotspots.config import load_config
    from hotspots.geo import Geography
    from hotspots.io import read_police_uk

    settings = load_config()
    res = read_police_uk([real_data_dir / "police_uk"], forces=list(settings.forces), first_month=settings.first_month,
                         last_month=settings.last_month)
    geo = Geography(real_data_dir, settings.force_area_code)
    polygons = geo.lsoa21[["area_code", "geometry"]].rename(columns={"area_code": "lsoa21_code"})
    got, stats = harmonise_lsoa(res.points, geo.lsoa11_lookup, lsoa21_polygons=polygons)
    ref, ref_stats = _reference_harmonise(res.points, geo.lsoa11_lookup, lsoa21_polygons=polygons)
    pd.testing.assert_frame_equal(got, ref, check_exact=True)
    assert stats == ref_stats and stats["mapped_2011_one_to_one"] > 0


@pytest.mark.realdata
def test_known_lsoa21_is_every_code_of_the_lookup(real_data_dir):
    from hotspots.config import load_config
    from hotspots.geo import Geography

    geo = Geography(real_data_dir, load_config().force_area_code)
    assert geo.known_lsoa21 == frozenset(iter(geo.lsoa_ward_lookup["lsoa21_code"])) and len(geo.known_lsoa21) > 30000


def _gzip_cases():
    import gzip
    import os

    body = os.urandom(3000) + b"Crime ID,Month\n" * 5000
    one = gzip.compress(body)
    return {
        "plain": one, "two members": one + gzip.compress(b"more"), "zero padded": one + b"\0" * 16,
        "truncated": one[:-20], "bad crc": one[:-8] + b"\1\2\3\4" + one[-4:], "garbage after": one + b"not gzip",
        "empty member": gzip.compress(b""),
    }


@pytest.mark.parametrize("case", list(_gzip_cases()))
def test_read_bytes_of_gzip_files_as_gzipfile_reads_them(tmp_path, monkeypatch, case):
    """The one-call decompression gives GzipFile's bytes, and every file it does not handle the same error as before."""
    from hotspots.io import _files

    path = tmp_path / "2025-01-hertfordshire-street.csv.gz"
    path.write_bytes(_gzip_cases()[case])
    src = _files.Source(path=path, force="hertfordshire", month="2025-01")

    def outcome(limit):
        try:
            return _files._read_bytes(src, limit=limit)
        except Exception as exc:  # noqa: BLE001 - compared below
            return (type(exc), str(exc))

    for limit in (1 << 20, 10_000):
        got = outcome(limit)
        with monkeypatch.context() as m:
            m.setattr(_files, "_gunzip", lambda raw, limit: None)  # the GzipFile path alone: the code before
            expected = outcome(limit)
        assert got == expected, case
    if case in ("plain", "empty member"):
        got = outcome(1 << 20)
        assert isinstance(got, bytes) and _files._gunzip(path.read_bytes(), 1 << 20) == got  # the new path ran


@pytest.mark.parametrize("malformed", [False, True])
def test_parse_on_one_thread_is_the_threaded_parse(monkeypatch, malformed):
    """Arrow's parse of a force-month on one thread: the same columns, row numbers and malformed-row count."""
    from hotspots.io import _parse
    from hotspots.io.accounting import FileAccount

    rng = np.random.default_rng(4)
    rows = []
    for i in range(60_000):
        kind = rng.random()
        if malformed and kind < 0.001:
            rows.append(f"id{i},2025-01,extra,field,x")
        elif kind < 0.01:
            rows.append(f'id{i},2025-01,"On or near\nTwo, Lines",E01000001')
        else:
            rows.append(f"id{i},2025-0{1 + i % 9},On or near Street {i % 97},E0100{i % 1000:04d}")
    text = "Crime ID,Month,Location,LSOA code\n" + "\n".join(rows) + "\n"
    results = []
    for threshold in (0, len(text) + 1):
        monkeypatch.setattr(_parse, "THREADED_PARSE_CHARS", threshold)
        account = FileAccount(path="x", force="f", month="2025-01", sha256="", bytes=0)
        header, cols, numbers = _parse._parse_csv_text(text, "x", account)
        assert isinstance(cols["Month"], np.ndarray) == malformed  # the Arrow parse (pandas strings) when well formed
        results.append((header, {h: np.asarray(v, dtype=object) for h, v in cols.items()}, numbers, account.rows_read,
                        dict(account.dropped), list(account.notes)))
    (h1, c1, n1, r1, d1, o1), (h2, c2, n2, r2, d2, o2) = results
    assert h1 == h2 and (r1, d1, o1) == (r2, d2, o2) and ("malformed_row" in d1) == malformed
    np.testing.assert_array_equal(n1, n2)
    for h in h1:
        np.testing.assert_array_equal(c1[h], c2[h])


def _needle_lines_reference(body: bytes, needles: list[bytes]) -> set[int]:
    starts: set[int] = set()
    for needle in needles:
        at = body.find(needle)
        while at >= 0:
            starts.add(body.rfind(b"\n", 0, at) + 1)
            at = body.find(needle, body.find(b"\n", at) + 1)
    return starts


def test_needle_lines_by_prefix_finds_every_line():
    from hotspots.io._files import _needle_lines

    rng = np.random.default_rng(9)
    alphabet = np.array(list(b"E0123x, \"AB"), dtype=np.uint8)
    for _ in range(200):
        lines = [bytes(rng.choice(alphabet, rng.integers(0, 40)).tolist()) for _ in range(rng.integers(1, 30))]
        body = b"\n".join(lines) + b"\n"
        needles = [b"E0" + bytes(rng.choice(alphabet, rng.integers(0, 3)).tolist()) for _ in range(rng.integers(1, 6))]
        assert _needle_lines(body, needles) == _needle_lines_reference(body, needles)
    body = b"E01a\nxE01ab\nE01\nzzE0\n"
    for needles in ([b"E01a", b"E01ab", b"E01"], [b"E01ab"], [b"E0", b"x"], [b"zzE0", b"E01"]):
        assert _needle_lines(body, needles) == _needle_lines_reference(body, needles)


@pytest.mark.realdata
def test_needle_lines_on_the_national_lsoa_file(real_data_dir):
    import gzip

    from hotspots.config import load_config
    from hotspots.geo import Geography
    from hotspots.io._files import _needle_lines

    path = real_data_dir / "boundaries" / "ons_via_geographr" / "lsoa21_bsc_ew.geojson.gz"
    if not path.is_file():
        pytest.skip("no national LSOA file")
    body = gzip.decompress(path.read_bytes())
    geo = Geography(real_data_dir, load_config().force_area_code)
    needles = [c.encode() for c in geo.lsoa_district.index]
    found = _needle_lines(body, needles)
    assert found == _needle_lines_reference(body, needles) and len(found) >= len(needles) > 500


@pytest.mark.parametrize("dtype", ["str", object])
def test_canonical_crime_types_from_distinct_values(dtype):
    """Known categories written otherwise are mapped and noted per file, as when every row was listed first."""
    from hotspots.io._parse import _canonical_crime_types
    from hotspots.io.accounting import Accounting, FileAccount

    values = ["Anti-social behaviour", "Anti-Social Behaviour", " anti-social  behaviour", "Burglary", "Made up", None,
              "shop_lifting", "SHOPLIFTING", "Shoplifting", "BURGLARY"]
    rng = np.random.default_rng(2)
    ctype = pd.Series(rng.choice(np.array(values, dtype=object), 500), dtype=dtype)
    files = pd.Series(rng.choice(["a.csv", "b.csv"], 500), dtype="str")
    accounting = Accounting()
    for f in ("a.csv", "b.csv"):
        accounting.add_file(FileAccount(path=f, force="x", month="2025-01", sha256="", bytes=0))
    out = _canonical_crime_types(ctype, files, ["Anti-social behaviour", "Burglary", "Shoplifting"], accounting)
    expected = ctype.replace({"Anti-Social Behaviour": "Anti-social behaviour", " anti-social  behaviour": "Anti-social behaviour",
                              "SHOPLIFTING": "Shoplifting", "BURGLARY": "Burglary"})
    pd.testing.assert_series_equal(out, expected)
    notes = accounting.files["a.csv"].notes + accounting.files["b.csv"].notes
    assert any("'SHOPLIFTING' read as 'Shoplifting'" in n for n in notes) and len(notes) == 8
    assert (out == "shop_lifting").any()  # not a known category written otherwise: left as it is


def _csv_cases() -> dict[str, bytes]:
    """Street-file bytes that take each path of the parse: Arrow's table, the exact Python parser, other encodings."""
    head = "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,Crime type\n"
    rows = [f"id{i},2025-01,Kent Police,Kent Police,0.{i % 97:02d},51.{i % 89:02d},On or near Café {i % 7},"
            f"E0100{i % 1000:04d},Maidstone 0{i % 9}A,Burglary\n" for i in range(3000)]
    body = head + "".join(rows)
    quoted = head + "".join(rows[:50]) + 'x1,2025-01,Kent Police,Kent Police,0.1,51.2,"On or near\nTwo, Lines",E01000001,n,Burglary\n'
    malformed = head + "".join(rows[:50]) + "x2,2025-01,extra\n" + "".join(rows[50:100])
    return {
        "utf-8": body.encode(), "byte-order mark": b"\xef\xbb\xbf" + body.encode(), "crlf": body.replace("\n", "\r\n").encode(),
        "quoted newline": quoted.encode(), "malformed row": malformed.encode(), "cp1252": body.encode("cp1252"),
        "utf-16": body.encode("utf-16"), "utf-16-le": body.encode("utf-16-le"), "bare cr": body.replace("\n", "\r").encode(),
        "spaced header": body.replace("Month,", " Month ,", 1).encode(), "repeated column": body.replace("Location", "Month", 1).encode(),
        "blank header": ("\n" + body).encode(), "empty": b"", "header only": head.encode(),
        "long header": ("," * 70_000 + "\n" + "".join(rows[:5])).encode(),
    }


@pytest.mark.parametrize("case", list(_csv_cases()))
def test_parse_ahead_gives_the_parse_of_the_text(case):
    """The bytes parsed on the read-ahead thread, then handed to _parse_csv_text: its result (or error) without them."""
    from hotspots.io import _parse
    from hotspots.io._files import _decode
    from hotspots.io.accounting import FileAccount

    data = _csv_cases()[case]

    def parse(ahead: bool):
        account = FileAccount(path="x", force="kent", month="2025-01", sha256="", bytes=len(data))
        try:
            text = _decode(data, "x", account)
            if not ahead:
                return _summary(_parse._parse_csv_text(text, "x", account), account)
            utf8 = (data[3:] if data[:3] == b"\xef\xbb\xbf" else data) if account.encoding == "utf-8" else None
            assert utf8 is None or utf8 == text.encode("utf-8")  # what the text would be encoded to
            return _summary(_parse._parse_csv_text(text, "x", account, utf8, _parse._parse_ahead(data)), account)
        except Exception as exc:  # noqa: BLE001 - compared below
            return (type(exc), str(exc))

    expected, got = parse(False), parse(True)
    assert got == expected
    if case in ("utf-8", "byte-order mark", "crlf", "quoted newline", "spaced header"):
        assert _parse._parse_ahead(data) is not None  # the table parsed ahead was the one used


def _summary(result, account):
    header, cols, numbers = result
    return (header, {h: np.asarray(v, dtype=object).tolist() for h, v in cols.items()}, numbers.tolist(),
            type(next(iter(cols.values()))).__name__, account.rows_read, dict(account.dropped), list(account.notes), account.encoding)


def _write_month_files(folder, months, broken=None) -> None:
    import gzip

    head = "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,Crime type,Last outcome category,Context\n"
    for k, month in enumerate(months):
        rows = [f"{'' if i % 5 == 0 else f'id{k}-{i % 900}'},{month},Kent Police,Kent Police,{0.5 + (i % 37) / 100:.4f},"
                f"{51.2 + (i % 41) / 100:.4f},On or near Road {i % 11},E0100{i % 300:04d},n,"
                f"{'Burglary' if i % 3 else 'Anti-social behaviour'},,\n" for i in range(1000 + 10 * k)]
        rows[7] = f"x,{month},Kent Police,Kent Police,,,On or near,E01000001,n,Burglary,,\n"  # no coordinates
        data = gzip.compress((head + "".join(rows)).encode())
        (folder / f"{month}-kent-street.csv.gz").write_bytes(data[:-30] if month == broken else data)


def test_read_police_uk_read_ahead_gives_the_serial_read(tmp_path, monkeypatch):
    """Files read and parsed a file ahead on a thread: the points, accounting and errors of one file after another."""
    from hotspots.io import police_uk

    months = [f"2024-{m:02d}" for m in range(1, 8)]
    _write_month_files(tmp_path, months)

    def serial(sources):
        for src in sources:
            yield src, lambda src=src: police_uk._read_and_hash(src)[:2] + (None,)  # parsed where handled (the code before)

    got = police_uk.read_police_uk(tmp_path)
    with monkeypatch.context() as m:
        m.setattr(police_uk, "_read_ahead", serial)
        expected = police_uk.read_police_uk(tmp_path)
    pd.testing.assert_frame_equal(got.points, expected.points)
    assert got.accounting.to_dict() == expected.accounting.to_dict() and len(got.points) > 5000

    broken = tmp_path / "broken"
    broken.mkdir()
    _write_month_files(broken, months, broken="2024-04")
    with pytest.raises(Exception) as err:
        police_uk.read_police_uk(broken)
    with monkeypatch.context() as m:
        m.setattr(police_uk, "_read_ahead", serial)
        with pytest.raises(Exception) as serial_err:
            police_uk.read_police_uk(broken)
    assert (type(err.value), str(err.value)) == (type(serial_err.value), str(serial_err.value))
    assert "2024-04-kent-street.csv.gz" in str(err.value)


@pytest.mark.parametrize("values", [
    ["Kent Police"] * 5, ["Kent Police", " ", "Essex Police", "Kent Police", "Surrey Police", "Essex Police"],
    ["Surrey Police", "Metropolitan Police Service", "Kent Police"] * 3, [],
])
def test_check_falls_within_on_arrow_strings_as_on_objects(values):
    """The Falls-within check on Arrow strings (no Python string per row): the outcome of the object-array check."""
    import pyarrow as pa

    from hotspots.io.police_uk import _check_falls_within

    def outcome(v):
        try:
            return _check_falls_within("x.csv", "kent", v)
        except Exception as exc:  # noqa: BLE001 - compared below
            return (type(exc), str(exc))

    arrow = pd.array(pa.array(values, type=pa.string()), dtype="str")
    assert outcome(arrow) == outcome(np.asarray(values, dtype=object))
    assert (outcome(arrow) is None) == (not {"Essex Police", "Surrey Police"} & set(values))
