"""The faster paths of the outliers stage and of ingest/geography give exactly what the plain code gave.

Each fast path is compared with the plain reference it replaced (kept here),
on random and edge-case inputs, with exact equality.  No real data.
"""

from __future__ import annotations

import gzip
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from hotspots._errors import ValidationError
from hotspots.concentration import concentration
from hotspots.geo.assign import _isin
from hotspots.geo.boundaries import read_boundary
from hotspots.io._files import geojson_lines_with
from hotspots.io._parse import _duplicated
from hotspots.io.lsoa import harmonise_lsoa
from hotspots.io.police_uk import _falls_within_counts
from hotspots.outliers.context_tables import concentration_table
from hotspots.outliers.funnel import _funnel_limits_sharing, funnel_limits, funnel_outliers
from hotspots.outliers.tables import funnel_curves, outlier_table

RNG = np.random.default_rng(20251202)
EXPECTED_EDGES = np.array([0.0, np.nan, -1.0, 1e-9, 0.3, 1.0, 2.5, 17.0, 400.0, 1e5, np.inf])


# ----------------------------------------------------------------------------- funnel limits
@pytest.mark.parametrize("method", ["exact", "normal"])
@pytest.mark.parametrize("levels", [(0.95, 0.998), (0.9,), (0.998, 0.8, 0.95)])
def test_shared_quantiles_equal_separate_funnel_limits(method, levels):
    expected = np.concatenate([EXPECTED_EDGES, RNG.gamma(0.7, 40.0, 300)])
    variants = [{}, {"adjustment": "multiplicative", "phi": 3.7}, {"adjustment": "additive", "tau2": 0.021},
                {"adjustment": "multiplicative", "phi": 0.4}]
    shared = _funnel_limits_sharing(expected, variants, levels=levels, method=method, target=1.3)
    for variant, frame in zip(variants, shared):
        alone = funnel_limits(expected, levels=levels, method=method, target=1.3, **variant)
        pd.testing.assert_frame_equal(frame, alone, check_exact=True)


def test_shared_quantiles_keep_index_and_checks():
    s = pd.Series([3.0, 9.0], index=["a", "b"])
    plain, mult = _funnel_limits_sharing(s, [{}, {"adjustment": "multiplicative", "phi": 2.0}])
    assert list(plain.index) == ["a", "b"] and list(mult.index) == ["a", "b"]
    with pytest.raises(ValidationError) as shared:
        _funnel_limits_sharing([3.0], [{}, {"adjustment": "multiplicative", "phi": 0.0}])
    with pytest.raises(ValidationError) as alone:
        funnel_limits([3.0], adjustment="multiplicative", phi=0.0)
    assert str(shared.value) == str(alone.value)
    with pytest.raises(ValidationError, match="phi=2.0 was given"):
        funnel_limits([3.0], phi=2.0)


def _funnel_outliers_reference(observed, population, levels, adjustment):
    """The limits funnel_outliers gave before: two funnel_limits calls."""
    from hotspots.outliers.dispersion import overdispersion

    o, pop = np.asarray(observed, float), np.asarray(population, float)
    expected = o.sum() / pop.sum() * pop
    z = (o - expected) / np.sqrt(expected)
    od = overdispersion(z, se=np.sqrt(1.0 / expected))
    plain = funnel_limits(expected, levels=levels)
    if not od.overdispersed:
        return plain, plain
    if adjustment == "multiplicative":
        return plain, funnel_limits(expected, levels=levels, adjustment="multiplicative", phi=od.phi)
    return plain, funnel_limits(expected, levels=levels, adjustment="additive", tau2=od.tau2)


@pytest.mark.parametrize("adjustment", ["multiplicative", "additive"])
@pytest.mark.parametrize("spread", [0.0, 0.4])  # Poisson only (usually not overdispersed), then overdispersed
def test_funnel_outliers_limits_equal_the_reference(adjustment, spread):
    for _ in range(5):
        n = int(RNG.integers(2, 60))
        population = RNG.integers(200, 20000, n).astype(float)
        rate = RNG.uniform(0.001, 0.05) * np.exp(spread * RNG.standard_normal(n))
        observed = RNG.poisson(rate * population)
        if observed.sum() == 0:
            observed[0] = 1
        levels = (0.95, 0.998)
        got = funnel_outliers(observed, population, levels=levels, adjustment=adjustment)
        plain, adjusted = _funnel_outliers_reference(observed, population, levels, adjustment)
        for column in ("lower_95", "upper_95", "lower_998", "upper_998"):
            np.testing.assert_array_equal(got[column].to_numpy(), plain[column].to_numpy())
            np.testing.assert_array_equal(got[f"{column}_adjusted"].to_numpy(), adjusted[column].to_numpy())


def test_funnel_curves_equal_separate_limits():
    areas = pd.DataFrame({"area_code": list("ABCDEFGH"), "area_name": list("abcdefgh"),
                          "population": [4000, 3000, 5000, 9000, 1200, 7000, 6500, 3100]})
    totals = pd.DataFrame({"area_code": list("ABCDEFGH") * 2, "crime_type": ["Burglary"] * 8 + ["Robbery"] * 8,
                           "is_group": False, "count": [80, 3, 170, 40, 1, 300, 12, 60, 1, 0, 2, 1, 0, 3, 1, 0]})
    for adjustment in ("multiplicative", "additive"):
        table = outlier_table(totals, areas, adjustment=adjustment)
        curves = funnel_curves(table, n_points=15)
        for crime_type, sub in curves.groupby("crime_type", sort=False):
            first = table[table["crime_type"] == crime_type].iloc[0]
            kw = {} if first["adjustment"] == "none" else (
                {"adjustment": "multiplicative", "phi": float(first["phi"])} if first["adjustment"] == "multiplicative"
                else {"adjustment": "additive", "tau2": float(first["tau2"])})
            rate = float(first["county_rate_per_1000"])
            plain = funnel_limits(sub["expected"].to_numpy())
            adjusted = funnel_limits(sub["expected"].to_numpy(), **kw)
            for column in ("lower_95", "upper_95", "lower_998", "upper_998"):
                side, label = column.split("_")
                np.testing.assert_array_equal(sub[f"rate_{side}_{label}"].to_numpy(), plain[column].to_numpy() * rate)
                np.testing.assert_array_equal(sub[f"rate_{side}_{label}_adjusted"].to_numpy(),
                                              adjusted[column].to_numpy() * rate)


# ----------------------------------------------------------------------------- concentration table
def test_concentration_table_top_shares_equal_concentration():
    codes = [f"L{i:03d}" for i in range(60)]
    parent = pd.Series(np.where(np.arange(60) < 25, "X", "Y"), index=codes)
    counts = np.concatenate([RNG.poisson(3.0, 60), np.zeros(60, dtype=int)])  # the second type has no records
    totals = pd.DataFrame({"area_code": codes * 2, "crime_type": ["Burglary"] * 60 + ["Robbery"] * 60,
                           "is_group": False, "count": counts})
    table = concentration_table(totals, parent, {"X": "Xville", "Y": "Yton"}, top_shares=(0.05, 0.1, 0.34),
                                county=("F", "Force"), simulations=5)
    for row in table.itertuples(index=False):
        part = totals[totals["crime_type"] == row.crime_type]
        if row.area_type == "csp":
            part = part[part["area_code"].map(parent) == row.area_code]
        ref = concentration(part["count"].to_numpy(dtype=float), top_shares=(0.05, 0.1, 0.34))
        for share, rec in zip(("5", "10", "34"), ref.itertuples(index=False)):
            assert getattr(row, f"lsoas_top{share}") == int(rec.units_in_top)
            assert getattr(row, f"count_top{share}") == int(rec.count_in_top)
            got, want = getattr(row, f"share_top{share}"), float(rec.share_of_total)
            assert (np.isnan(got) and np.isnan(want)) or got == want
    assert table["lsoas_top5"].dtype == np.int64 and table["share_top10"].dtype == np.float64


# ----------------------------------------------------------------------------- ingest helpers
def _codes(n, pool):
    return np.asarray(pool, dtype=object)[RNG.integers(0, len(pool), n)]


def test_isin_equals_series_isin():
    pool = [f"E01{i:06d}" for i in range(3000)] + ["", "W01000001", None, " E01000001"]
    values = _codes(20000, pool)
    members_set = frozenset(pool[:2000:3]) | {"W01000001"}
    members_index = pd.Index(pool[100:800])
    for members in (members_set, members_index, set(), pd.Index([], dtype=object)):
        np.testing.assert_array_equal(_isin(values, members), pd.Series(values).isin(members).to_numpy())
    assert _isin(np.array([], dtype=object), members_set).tolist() == []


def test_duplicated_equals_series_duplicated():
    pool = [f"{i:x}" for i in range(500)] + [""]
    for values in (_codes(5000, pool), np.array([], dtype=object), np.array(["a"], dtype=object)):
        for series in (pd.Series(values, dtype=object), pd.Series(values, dtype="str")):
            np.testing.assert_array_equal(_duplicated(series), series.duplicated(keep="first").to_numpy())
    with_missing = pd.Series(["a", None, "b", None, "a", "c"], dtype="str")
    np.testing.assert_array_equal(_duplicated(with_missing), with_missing.duplicated(keep="first").to_numpy())


def test_falls_within_counts_equal_np_unique():
    pool = ["Hertfordshire Constabulary", "Hertfordshire Constabulary ", " Herts", "", "None", "Kent Police"]
    for values in (pd.array(_codes(3000, pool), dtype="str"), _codes(3000, pool + [None]),
                   pd.array(["b", None, "a", "b"], dtype="str")):
        u, c = np.unique(np.asarray(values, dtype=object).astype(str), return_counts=True)
        reference = {str(v).strip(): int(k) for v, k in zip(u, c)}
        got = _falls_within_counts(values)
        assert got == reference and list(got) == list(reference)  # same counts, same order (the manifest's)


def _harmonise_reference(points, lookup):
    """The published-2021 and one-to-one part of harmonise_lsoa as it was (mask setting on a blank Series)."""
    code = points["lsoa_code"].astype(str).str.strip().astype(object)
    lk = lookup[["lsoa11_code", "lsoa21_code"]].drop_duplicates()
    out = pd.Series("", index=points.index, dtype=object)
    is21 = code.isin(set(lk["lsoa21_code"]))
    out[is21] = code[is21]
    return out


def test_harmonise_lsoa_published_codes_unchanged_on_any_index():
    lookup = pd.DataFrame({"lsoa11_code": ["E01000001", "E01000002", "E01000002", "E01000003"],
                           "lsoa21_code": ["E01000001", "E01035001", "E01035002", "E01035003"]})
    pool = ["E01000001", "E01000002", "E01035002", "E01000003", "", " E01035001 ", "X"]
    pts = pd.DataFrame({"lsoa_code": pd.array(_codes(400, pool), dtype="str"), "x": 0.0, "y": 0.0},
                       index=RNG.permutation(np.arange(1000, 1400)))
    out, stats = harmonise_lsoa(pts, lookup)
    ref = _harmonise_reference(pts, lookup)
    published = ref != ""
    assert out.index.equals(pts.index) and out["lsoa21_code"].dtype == pts["lsoa_code"].astype(str).dtype
    assert (out["lsoa21_code"][published] == ref[published]).all()
    assert stats["published_2021"] == int(published.sum())
    code = pts["lsoa_code"].str.strip()
    assert (out["lsoa21_code"][code == "E01000003"] == "E01035003").all()
    assert (out["lsoa21_code"][code.isin(["", "X"])] == "").all()


# ----------------------------------------------------------------------------- GeoJSON subset
def _write_geojson(path, n=40, pretty=False):
    codes = [f"E0700009{i % 4}" for i in range(n)]
    gdf = gpd.GeoDataFrame({"lsoa21_code": [f"E01{i:06d}" for i in range(n)], "ltla24_code": codes,
                            "note": [f"near E07000091 {i}" if i == 6 else "" for i in range(n)],
                            "size": np.arange(n) * 1.5},
                           geometry=[box(-0.4 + i * 0.01, 51.7, -0.39 + i * 0.01, 51.71) for i in range(n)], crs=4326)
    gdf.to_file(path, driver="GeoJSON", engine="pyogrio")
    if pretty:  # the same collection, another layout
        path.write_text(json.dumps(json.loads(path.read_text()), indent=2))
    return gdf


@pytest.mark.parametrize("gz", [False, True])
def test_boundary_read_through_line_subset_equals_whole_file(tmp_path, gz):
    path = tmp_path / "lsoa.geojson"
    _write_geojson(path)
    if gz:
        gz_path = tmp_path / "lsoa.geojson.gz"
        gz_path.write_bytes(gzip.compress(path.read_bytes()))
        path = gz_path
    for wanted in (["E07000092"], ["E07000090", "E07000093"]):
        where = "ltla24_code IN (" + ",".join(f"'{c}'" for c in wanted) + ")"
        whole = read_boundary(path, where=where)
        cut = read_boundary(path, where=where, lines_with=[f'"{c}"' for c in wanted])
        pd.testing.assert_frame_equal(pd.DataFrame(cut.drop(columns="geometry")),
                                      pd.DataFrame(whole.drop(columns="geometry")), check_exact=True)
        assert cut.crs == whole.crs and cut.attrs == whole.attrs
        assert (cut.geometry.to_wkb() == whole.geometry.to_wkb()).all()
    from hotspots._errors import InputFileError

    with pytest.raises(InputFileError, match="holds no polygons"):  # nothing kept: as from the whole file
        read_boundary(path, where="ltla24_code IN ('E07000099')", lines_with=['"E07000099"'])
    # a line holding the code in another field is parsed too, and the filter still drops it
    assert b"near E07000091 6" in geojson_lines_with(path, ["E07000091"])  # feature 6 is in E07000092
    kept = read_boundary(path, where="ltla24_code IN ('E07000091')", lines_with=["E07000091"])
    assert "E01000006" not in set(kept["lsoa21_code"]) and len(kept) == 10
    # a filter on a column the file lacks still reads the whole file
    missing = read_boundary(path, where="nothing IN ('E07000092')", lines_with=['"E07000092"'])
    assert len(missing) == 40


def test_line_subset_refuses_other_layouts(tmp_path):
    pretty = tmp_path / "pretty.geojson"
    _write_geojson(pretty, pretty=True)
    assert geojson_lines_with(pretty, ['"E07000092"']) is None
    where = "ltla24_code IN ('E07000092')"
    cut = read_boundary(pretty, where=where, lines_with=['"E07000092"'])
    assert len(cut) == 10 and len(read_boundary(pretty, where=where)) == 10
    line = tmp_path / "line.geojson"
    _write_geojson(line)
    assert geojson_lines_with(line, ['"E07000099"']) is None  # no line: the whole file decides
    assert geojson_lines_with(line, []) is None
    other = tmp_path / "line.json"
    other.write_bytes(line.read_bytes())
    assert geojson_lines_with(other, ['"E07000092"']) is None
    broken = tmp_path / "broken.geojson.gz"
    broken.write_bytes(b"\x1f\x8b not gzip")
    assert geojson_lines_with(broken, ['"E07000092"']) is None


# ----------------------------------------------------------------------------- crime-type groups
def _add_groups_reference(counts, groups):
    """add_groups as it was: a groupby per group."""
    frames = [counts]
    keys = [c for c in counts.columns if c not in ("crime_type", "count")]
    for name, members in groups.items():
        sub = counts[counts["crime_type"].isin(members)]
        g = sub.groupby(keys, sort=False, dropna=False)["count"].sum().reset_index()
        g["crime_type"] = name
        frames.append(g[counts.columns])
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("dtype", ["str", object])
def test_add_groups_equals_groupby_reference(dtype):
    from hotspots.geo.aggregate import add_groups

    types = ["Burglary", "Robbery", "Drugs", "Anti-social behaviour", "Other crime"]
    groups = {"All crime": ["Burglary", "Robbery", "Drugs", "Other crime"], "Violence": ["Robbery"],
              "Absent": ["Shoplifting"], "Mixed": ["Drugs", "Shoplifting", "Anti-social behaviour"]}
    n = 3000
    counts = pd.DataFrame({
        "area_type": "lsoa",
        "area_code": _codes(n, [f"E01{i:06d}" for i in range(40)]),
        "area_name": "",
        "month": _codes(n, [f"2024-{m:02d}" for m in range(1, 13)]),
        "crime_type": _codes(n, types),
        "count": RNG.poisson(2.0, n).astype(np.int64),
    })
    counts["area_name"] = "name of " + counts["area_code"]
    counts = counts.astype({c: dtype for c in ("area_type", "area_code", "area_name", "month", "crime_type")})
    from hotspots.geo.aggregate import _group_keys

    fast = _group_keys(counts, ["area_type", "area_code", "area_name", "month"])
    assert (fast is not None) == (dtype == "str")  # the fast path is the one tested (object keys: the groupby)
    for frame in (counts, counts.iloc[::-1], counts.iloc[:0], counts.assign(count=counts["count"].astype(float)),
                  counts.set_index(RNG.permutation(n) + 7), counts.drop(columns=["area_name", "month"]),
                  counts.assign(month=np.where(np.arange(n) % 9 == 0, None, counts["month"]))):
        got = add_groups(frame, groups)
        pd.testing.assert_frame_equal(got, _add_groups_reference(frame, groups), check_exact=True)


@pytest.mark.parametrize("dtype", ["str", object])
def test_rates_sums_equal_groupby_reference(dtype):
    from hotspots.geo.aggregate import Period, _sorted_key_codes, rates

    n = 4000
    codes = [f"E0{i % 3}{i:05d}" for i in range(50)] + ["e01", "Z", "a b", "É01"]  # mixed case and non-ASCII sort
    counts = pd.DataFrame({
        "area_type": _codes(n, ["lsoa", "csp"]),
        "area_code": _codes(n, codes),
        "area_name": _codes(n, ["Ash", "ash", "Birch", "Ångström", ""]),
        "month": _codes(n, [f"2024-{m:02d}" for m in range(1, 13)]),
        "crime_type": _codes(n, ["Burglary", "Robbery", "All crime", "anti-social"]),
        "count": RNG.poisson(3.0, n).astype(np.int64),
    }).astype({c: dtype for c in ("area_type", "area_code", "area_name", "month", "crime_type")})
    areas = pd.DataFrame({"area_code": codes, "population": RNG.integers(0, 3000, len(codes)).astype(float),
                          "area_km2": RNG.uniform(0, 3, len(codes))})
    periods = [Period("a", ("2024-01", "2024-02")), Period("none", ("2030-01",)), Period("all", tuple(f"2024-{m:02d}" for m in range(1, 13)))]
    with_missing = counts.copy()
    with_missing.loc[with_missing.index[::37], "area_name"] = None
    for frame in (counts, counts.iloc[::-1], with_missing, counts.assign(count=counts["count"].astype(float))):
        got = rates(frame, areas, periods)
        ref = []
        for p in periods:
            sub = frame[frame["month"].isin(p.months)]
            g = sub.groupby(["area_type", "area_code", "area_name", "crime_type"], sort=True)["count"].sum().reset_index()
            ref.append(g.assign(period=p.label, months=len(p.months)))
        ref = pd.concat(ref, ignore_index=True)
        pd.testing.assert_frame_equal(got[list(ref.columns)], ref, check_exact=True)
    fast = _sorted_key_codes(counts, ["area_type", "area_code", "area_name", "crime_type"])
    assert (fast is not None) == (dtype == "str")  # the fast path is the one tested (object keys: the groupby)


# ----------------------------------------------------------------------------- report context
from test_outliers import synthetic  # noqa: E402,F401  (the synthetic results, a fixture)


def test_report_context_cut_once_equals_cut_per_section(synthetic, monkeypatch):  # noqa: F811
    from hotspots.render import outliers_report as R

    calls = []
    for name in ("choropleth", "funnel_chart", "lsoa_map", "trend_chart"):
        monkeypatch.setattr(R, name, lambda *a, _n=name, **k: calls.append((_n, a, k)) or _n)
    res = synthetic["results"]
    ctx = R.build_context(res)
    meta = res.meta
    district = R._display_rows(res.district, meta)
    order = [t for t in meta["crime_types"] if t not in meta.get("single_type_groups", [])]
    for csp, section in zip(res.csp_summary.to_dict("records"), ctx["sections"]):
        rows = district[district["area_code"] == csp["area_code"]]
        rows = rows.set_index("crime_type").reindex([t for t in order if t in set(rows["crime_type"])]).reset_index()
        alone = R._csp_context(csp["area_code"], res, rows, meta, csp, None)  # its own cuts
        assert alone == section
        # every column the table reads, from the full rows as before
        for record, shown in zip(rows.to_dict("records"), section["table"]):
            assert shown["count"] == R._int(record["count"]) and shown["harm_ratio"] == R._fmt(record["harm_ratio"], 2)
            assert shown["pct_change"] == R.signed_pct(float(record["pct_change"]))
            assert shown["change_flag"] == str(record.get("change_flag", "") or "")
    for name, args, _ in calls:
        if name == "funnel_chart":  # the curve and points of its crime type, cut as before
            curve, points = args
            crime_type = curve["crime_type"].iloc[0]
            pd.testing.assert_frame_equal(curve, res.funnels[res.funnels["crime_type"] == crime_type])
            pd.testing.assert_frame_equal(points, res.district[res.district["crime_type"] == crime_type])
    od = res.overdispersion
    reference = []
    for crime_type in order:
        c = od[(od["area_type"] == "csp") & (od["crime_type"] == crime_type)]
        lsoa_od = od[(od["area_type"] == "lsoa") & (od["crime_type"] == crime_type)]
        if not len(c):
            continue
        c = c.iloc[0]
        reference.append({
            "crime_type": crime_type, "county_rate": R._fmt(c["county_rate_per_1000"], 2), "phi": R._fmt(c["phi"], 1),
            "statistic": R._fmt(c["statistic"], 0), "critical": R._fmt(c["critical_value"], 1),
            "applied": "yes" if c["applied"] else "no", "tau2": R._fmt(c["tau2"], 4),
            "lsoa_phi": R._fmt(lsoa_od["phi"].iloc[0], 2) if len(lsoa_od) else "–",
            "lsoa_applied": ("yes" if lsoa_od["applied"].iloc[0] else "no") if len(lsoa_od) else "–",
        })
    assert ctx["od_rows"] == reference and len(reference) > 3


def test_report_records_and_matrix_read_once_equal_the_frame_cuts(synthetic):  # noqa: F811
    from hotspots.render import outliers_report as R
    from hotspots.render import outliers_wording as W

    res = synthetic["results"]
    cuts = R._Cuts(res)
    codes = list(res.csp_summary["area_code"]) + ["E99999999"]  # and a code without rows
    told_any = False
    for code in codes:
        frame = cuts.rows_of(res.highlights, "area_code", code)
        records = cuts.records_of(res.highlights, "area_code", code)
        assert records == frame.to_dict("records")
        told_any |= bool(records)
        for with_change in (True, False):  # the sentences from the records are those from the frame
            assert (W.stand_out(records, name="X", with_change=with_change)
                    == W.stand_out(frame, name="X", with_change=with_change))
    assert told_any



def test_report_matrix_equals_the_multiindex_lookup(synthetic, monkeypatch):  # noqa: F811
    from hotspots.render import outliers_report as R

    for name in ("choropleth", "funnel_chart", "lsoa_map", "trend_chart"):
        monkeypatch.setattr(R, name, lambda *a, **k: "")
    res = synthetic["results"]
    ctx = R.build_context(res)
    meta = res.meta
    district = R._display_rows(res.district, meta)
    order = [t for t in meta["crime_types"] if t not in meta.get("single_type_groups", [])]
    names = dict(zip(district["area_code"], district["area_name"]))
    cells = district.set_index(["area_code", "crime_type"])  # the lookup the matrix used before
    reference = []
    for csp in res.csp_summary.to_dict("records"):
        name = names.get(csp["area_code"], csp["area_name"])
        row_cells = []
        for crime_type in order:
            key = (csp["area_code"], crime_type)
            if key not in cells.index:
                row_cells.append({"text": "", "flag": "no_records", "title": ""})
                continue
            r = cells.loc[key]
            flag = str(r["flag"])
            row_cells.append({
                "text": R._fmt(r["ratio"], 2), "flag": flag,
                "title": (f"{name} – {crime_type}: {R._fmt(r['rate_per_1000'])} per 1,000 vs county "
                          f"{R._fmt(r['county_rate_per_1000'])}; {R.FLAG_TEXT.get(flag, flag)} allowing for "
                          f"overdispersion; {R.FLAG_TEXT.get(str(r['flag_unadjusted']), '')} on Poisson limits alone"),
            })
        reference.append({"name": name, "anchor": f"csp-{csp['area_code']}", "cells": row_cells})
    assert ctx["matrix"] == reference
    assert any(c["flag"] != "no_records" for row in reference for c in row["cells"])
