"""Geography for any force, on small data homes built here: CSPs that follow old districts, Welsh codes,
ONS column names, several forces in one study area, records placed by police.uk's own LSOA code, coverage."""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from pyproj import Transformer
from shapely.geometry import box

from hotspots._errors import DataNotFoundError
from hotspots.geo.boundaries import DATA_FILES, OLD_DISTRICT_LOOKUPS, Geography
from hotspots.schema import POLICE_UK_STREET_HEADER

ROOT = Path(__file__).resolve().parents[1]

# lsoa: (district, district name, csp, csp name, pfa, pfa name, old district name, population)
LSOAS = {
    # Cumbria: both unitary districts split between CSPs that follow the six pre-2023 districts
    "E01100001": ("E06000063", "Cumberland", "E22000031", "Allerdale", "E23000002", "Cumbria", "Allerdale", 1000),
    "E01100002": ("E06000063", "Cumberland", "E22000033", "Carlisle", "E23000002", "Cumbria", "Carlisle", 1100),
    "E01100003": ("E06000064", "Westmorland and Furness", "E22000035", "Eden", "E23000002", "Cumbria", "Eden", 1200),
    "E01100004": ("E06000064", "Westmorland and Furness", "E22000032", "Barrow-in-Furness", "E23000002", "Cumbria",
                  "Barrow-in-Furness", 1300),
    # Dorset: BCP split between "Bournemouth" and "Dorset" (Christchurch, named after no CSP, is in "Dorset")
    "E01200001": ("E06000058", "Bournemouth, Christchurch and Poole", "E22000063", "Bournemouth", "E23000039", "Dorset",
                  "Bournemouth", 1400),
    "E01200002": ("E06000058", "Bournemouth, Christchurch and Poole", "E22000367", "Dorset", "E23000039", "Dorset",
                  "Christchurch", 1500),
    "E01200003": ("E06000059", "Dorset", "E22000367", "Dorset", "E23000039", "Dorset", "West Dorset", 1600),
    # South Wales: W-codes; Rhondda Cynon Taf + Merthyr Tydfil form CSP "Cwm Taf"
    "W01000001": ("W06000016", "Rhondda Cynon Taf", "W14000023", "Cwm Taf", "W15000003", "South Wales", "Rhondda Cynon Taf", 1700),
    "W01000002": ("W06000024", "Merthyr Tydfil", "W14000023", "Cwm Taf", "W15000003", "South Wales", "Merthyr Tydfil", 1800),
    "W01000003": ("W06000015", "Cardiff", "W14000015", "Cardiff", "W15000003", "South Wales", "Cardiff", 1900),
}
CODES = list(LSOAS)
#: old districts only in the LAD Apr-2018 lookup (the LSOA11 → LSOA21 → LAD22 lookup already has merged BCP)
LAD22_NAME = {c: ("Bournemouth, Christchurch and Poole" if v[0] == "E06000058" else v[6]) for c, v in LSOAS.items()}


def lsoa_box(code: str):
    i = CODES.index(code)
    x0, y0 = 300000 + 3000 * i, 400000
    return box(x0, y0, x0 + 2000, y0 + 2000)


def centre(code: str, dx: float = 0.0) -> tuple[float, float]:
    c = lsoa_box(code).centroid
    return c.x + dx, c.y


def build_home(home: Path, *, ons_names: bool = False, old_lookups: bool = True, drop_polygon: str | None = None) -> Path:
    (home / "lookups").mkdir(parents=True)
    (home / "population").mkdir()
    (home / "boundaries" / "ons_via_geographr").mkdir(parents=True)
    rows = sorted({v[:6] for v in LSOAS.values()})
    cols = ["ltla24_code", "ltla24_name", "csp24_code", "csp24_name", "pfa24_code", "pfa24_name"]
    if ons_names:  # as ONS publishes it, one vintage older for the district columns
        cols = ["LAD23CD", "LAD23NM", "CSP24CD", "CSP24NM", "PFA24CD", "PFA24NM"]
    pd.DataFrame(rows, columns=cols).to_csv(home / DATA_FILES["lookup_district_csp_force"][0], index=False)
    ward = pd.DataFrame([(c, f"{v[1]} 001", f"{c[0]}05{c[3:]}", f"{v[6]} ward", v[0], v[1]) for c, v in LSOAS.items()],
                        columns=["lsoa21_code", "lsoa21_name", "ward24_code", "ward24_name", "ltla24_code", "ltla24_name"])
    l11 = pd.DataFrame([(c, c, "U", c, LAD22_NAME[c], "E06000000") for c in LSOAS],
                       columns=["lsoa11_code", "lsoa11_name", "change_code", "lsoa21_code", "ltla22_name", "ltla22_code"])
    if ons_names:
        ward.columns = ["\ufeffLSOA21CD", "LSOA21NM", "WD24CD", "WD24NM", "LAD24CD", "LAD24NM"]
        l11.columns = ["LSOA11CD", "LSOA11NM", "CHGIND", "LSOA21CD", "LAD22NM", "LAD22CD"]
    ward.to_csv(home / DATA_FILES["lookup_lsoa21_ward"][1], index=False)
    l11.to_csv(home / DATA_FILES["lookup_lsoa11_lsoa21"][1], index=False)
    if old_lookups:
        old = pd.DataFrame([(c, c, v[6], "E07000000") for c, v in LSOAS.items() if c.startswith("E")],
                           columns=["lsoa11_code", "lsoa11_name", "ltla18_name", "ltla18_code"])
        if ons_names:
            old.columns = ["LSOA11CD", "LSOA11NM", "LAD18NM", "LAD18CD"]
        old.to_csv(home / OLD_DISTRICT_LOOKUPS[1], index=False)
    pd.DataFrame([(c, v[7]) for c, v in LSOAS.items()], columns=["lsoa21_code", "census2021_usual_residents"]).to_csv(
        home / DATA_FILES["population_lsoa21"][1], index=False)
    polys = gpd.GeoDataFrame(
        {"LSOA21CD" if ons_names else "lsoa21_code": CODES, "LSOA21NM" if ons_names else "lsoa21_name": [f"{c} name" for c in CODES]},
        geometry=[lsoa_box(c) for c in CODES], crs=27700).to_crs(4326)
    if drop_polygon:
        polys = polys[polys.iloc[:, 0] != drop_polygon]
    plain = home / "lsoa.geojson"
    polys.to_file(plain, driver="GeoJSON")
    national = home / DATA_FILES["lsoa21"][1]   # the national file's name: gzipped GeoJSON
    with open(plain, "rb") as src, gzip.open(national, "wb") as dst:
        shutil.copyfileobj(src, dst)
    plain.unlink()
    return home


@pytest.fixture(params=["snake", "ons"])
def home(request, tmp_path) -> Path:
    return build_home(tmp_path / "home", ons_names=request.param == "ons")


def test_csps_follow_old_districts_when_a_district_is_split(home):
    geo = Geography(home, "E23000002")
    assert geo.district_codes == ["E06000063", "E06000064"]
    assert geo.lsoa_csp.to_dict() == {c: LSOAS[c][2] for c in ("E01100001", "E01100002", "E01100003", "E01100004")}
    csp = geo.areas("csp").set_index("area_code")
    assert sorted(csp.index) == ["E22000031", "E22000032", "E22000033", "E22000035"]
    assert csp.loc["E22000033", "area_name"] == "Carlisle"
    assert csp.loc["E22000033", "population"] == 1100
    assert csp.loc["E22000033", "district_code"] == "E06000063"
    assert csp.loc["E22000033", "area_km2"] == pytest.approx(4.0, rel=1e-3)   # its one LSOA, 2 km x 2 km
    assert geo.notes["csp"]["split_districts"] == ["E06000063", "E06000064"]
    assert geo.notes["csp"]["by_old_district_name"] == 4
    # no district file in the home: districts are dissolved from the LSOA polygons, and say so
    assert geo.areas("district").set_index("area_code").loc["E06000063", "population"] == 2100
    assert "dissolved from the LSOA 2021 polygons" in geo.sources["districts"]


def test_the_one_csp_no_old_district_is_named_after_takes_the_rest(home):
    geo = Geography(home, "E23000039")
    assert geo.lsoa_csp.to_dict() == {"E01200001": "E22000063", "E01200002": "E22000367", "E01200003": "E22000367"}
    assert geo.notes["csp"]["by_elimination"] == 1
    csp = geo.areas("csp").set_index("area_code")
    assert csp.loc["E22000367", "district_code"] == ""          # spans BCP and Dorset
    assert csp.loc["E22000367", "population"] == 1500 + 1600


def test_welsh_codes(home):
    geo = Geography(home, "W15000003")
    assert geo.force_name == "South Wales"
    csp = geo.areas("csp").set_index("area_code")
    assert csp.loc["W14000023", "area_name"] == "Cwm Taf" and csp.loc["W14000023", "population"] == 1700 + 1800
    assert sorted(geo.areas("lsoa")["area_code"]) == ["W01000001", "W01000002", "W01000003"]
    assert sorted(geo.areas("ward")["area_code"]) == ["W05000001", "W05000002", "W05000003"]
    assert geo.notes["csp"]["split_districts"] == []


@pytest.mark.parametrize("codes", [["E23000002", "W15000003"], "E23000002,W15000003", "E23000002 + W15000003"])
def test_several_forces_in_one_study_area(home, codes):
    geo = Geography(home, codes)
    assert geo.force_codes == ["E23000002", "W15000003"]
    assert geo.force_name == "Cumbria and South Wales"
    assert len(geo.lsoa_district) == 7
    assert len(geo.areas("csp")) == 6
    force = geo.areas("force")
    assert force["area_code"].tolist() == ["E23000002+W15000003"]
    assert force["population"].iloc[0] == sum(v[7] for v in LSOAS.values() if v[4] in ("E23000002", "W15000003"))


def test_split_district_without_old_lookups_is_a_clear_error(tmp_path):
    home = build_home(tmp_path / "home", old_lookups=False)
    # the LSOA11 -> LSOA21 -> LAD22 lookup alone names Allerdale, Carlisle...: enough for Cumbria
    assert Geography(home, "E23000002").lsoa_csp["E01100002"] == "E22000033"
    (home / DATA_FILES["lookup_lsoa11_lsoa21"][1]).unlink()
    with pytest.raises(DataNotFoundError, match="split between several Community Safety Partnerships") as err:
        Geography(home, "E23000039").lsoa_csp
    assert "lookup_lsoa11_ltla18" in err.value.hint


def test_unknown_force_code_names_the_lookup(home):
    with pytest.raises(DataNotFoundError, match="E23000099") as err:
        Geography(home, ["E23000002", "E23000099"]).district_codes
    assert "pfa24_code" in err.value.hint


# --------------------------------------------------------------------------- a run on such a home
def police_rows(force_name: str, spec: list[tuple[str, float, float]], month: str) -> pd.DataFrame:
    to_lonlat = Transformer.from_crs(27700, 4326, always_xy=True)
    rows = []
    for i, (code, x, y) in enumerate(spec):
        lon, lat = to_lonlat.transform(x, y)
        rows.append([f"id-{force_name[:3]}-{month}-{i}", month, force_name, force_name, f"{lon:.6f}", f"{lat:.6f}",
                     "On or near X", code, f"{code} name" if code else "", "Burglary", "", ""])
    return pd.DataFrame(rows, columns=POLICE_UK_STREET_HEADER)


def config_for(tmp_path: Path, forces: list[str], codes: list[str] | str) -> Path:
    codes = [codes] if isinstance(codes, str) else codes
    text = (ROOT / "src" / "hotspots" / "configs" / "hertfordshire.toml").read_text()
    text = re.sub(r"(?m)^forces = .*$", "forces = [" + ", ".join(f'"{f}"' for f in forces) + "]", text)
    text = re.sub(r"(?m)^force_area_code = .*$", "force_area_code = [" + ", ".join(f'"{c}"' for c in codes) + "]", text)
    text = re.sub(r'(?m)^first = .*$', 'first = "2025-01"', text)
    text = re.sub(r'(?m)^last = .*$', 'last = "2025-02"', text)
    cfg = tmp_path / "two_forces.toml"
    cfg.write_text(text)
    return cfg


def test_run_places_records_by_their_lsoa_code_for_two_forces(tmp_path):
    from hotspots.config import load_config
    from hotspots.stages.context import prepare
    from hotspots.stages.counts import stage_counts

    home = build_home(tmp_path / "home")
    x1, y1 = centre("E01100001")
    spec_cumbria = [
        ("E01100001", x1, y1), ("E01100001", x1, y1),
        ("E01100002", x1, y1),                        # its point lies in Allerdale's polygon, its code says Carlisle
        ("", *centre("E01100002")),                   # no LSOA code: placed by location (Carlisle)
        ("E01100004", *centre("E01100004")),
        ("E01200001", *centre("E01200001")),          # another force's LSOA: left out, counted under its reason
        ("", 200000.0, 900000.0),                     # no code, in no LSOA of the study area
    ]
    spec_wales = [("W01000001", *centre("W01000001")), ("W01000002", *centre("W01000002")), ("W01000003", *centre("W01000003"))]
    street = home / "police_uk" / "cumbria" / "street"
    street.mkdir(parents=True)
    police_rows("Cumbria Constabulary", spec_cumbria, "2025-01").to_csv(street / "2025-01-cumbria-street.csv", index=False)
    elsewhere = tmp_path / "downloads" / "south-wales"      # a symbolic link to a folder kept elsewhere
    (elsewhere / "street").mkdir(parents=True)
    police_rows("South Wales Police", spec_wales, "2025-02").to_csv(elsewhere / "street" / "2025-02-south-wales-street.csv",
                                                                    index=False)
    (home / "police_uk" / "south-wales").symlink_to(elsewhere, target_is_directory=True)

    settings = load_config(config_for(tmp_path, ["cumbria", "south-wales"], ["E23000002", "W15000003"]))
    ctx = prepare(settings, data=str(home), out=str(tmp_path / "out"))
    acc = ctx.accounting.to_dict()
    assert acc["rows_read"] == 10 and acc["kept"] == 8
    assert acc["dropped"] == {"lsoa_outside_force_area": 1, "outside_study_area": 1}
    assert ctx.lsoa_harmonisation["placed_by_lsoa_code"] == 7 and ctx.lsoa_harmonisation["placed_by_location"] == 1

    summary = stage_counts(ctx)
    csp = ctx.counts("csp").groupby("area_code")["count"].sum().to_dict()
    assert csp == {"E22000031": 2, "E22000032": 1, "E22000033": 2, "E22000035": 0, "W14000015": 1, "W14000023": 2}
    district = ctx.counts("district").groupby("area_code")["count"].sum().to_dict()
    assert district == {"E06000063": 4, "E06000064": 1, "W06000015": 1, "W06000016": 1, "W06000024": 1}
    cov = summary["coverage"]
    assert cov["located_records"] == 8
    assert {t: v["share"] for t, v in cov["by_area_type"].items()} == {t: 1.0 for t in ("force", "district", "csp", "lsoa", "ward")}
    assert cov["warnings"] == [] and cov["csp_from_lsoas"]["split_districts"] == ["E06000063", "E06000064"]
    table = pd.read_csv(tmp_path / "out" / "counts" / "coverage_districts.csv")
    assert table["agreement"].tolist() == [1.0] * 5
    # the spatial join disagrees for the record whose point lies in Allerdale but whose LSOA is Carlisle's: same district
    assert summary["reconciliation"]["agree"] == 8


def test_missing_lsoa_polygons_are_a_warning_that_names_the_fix(tmp_path):
    from hotspots.config import load_config
    from hotspots.stages.context import prepare

    home = build_home(tmp_path / "home", drop_polygon="W01000003")
    # district outlines from a district file (ONS names), as the LSOA polygons no longer cover the force
    gpd.GeoDataFrame({"LAD24CD": [v[0] for v in LSOAS.values()], "LAD24NM": [v[1] for v in LSOAS.values()]},
                     geometry=[lsoa_box(c) for c in LSOAS], crs=27700).to_file(home / DATA_FILES["districts"][0])
    street = home / "police_uk" / "south-wales" / "street"
    street.mkdir(parents=True)
    spec = [("W01000001", *centre("W01000001"))] + [("W01000003", *centre("W01000003"))] * 3
    police_rows("South Wales Police", spec, "2025-01").to_csv(street / "2025-01-south-wales-street.csv", index=False)
    ctx = prepare(load_config(config_for(tmp_path, ["south-wales"], "W15000003")), data=str(home), out=str(tmp_path / "o"))
    assert any("have no polygon" in w and "lsoa21_bsc_ew.geojson.gz" in w for w in ctx.geography.warnings)
    cov = ctx.coverage()
    assert cov["by_area_type"]["lsoa"]["share"] == 0.25 and cov["by_area_type"]["lsoa"]["missing_lsoas"] == ["W01000003"]
    assert cov["by_area_type"]["district"]["share"] == 1.0     # districts and CSPs count by code, polygons or not
    assert cov["by_area_type"]["csp"]["share"] == 1.0
    lsoa_warning = next(w for w in cov["warnings"] if w.startswith("LSOA table"))
    assert "3 of 4 located records (75.00%)" in lsoa_warning and "W01000003" in lsoa_warning
    assert "lsoa21_bsc_ew.geojson.gz" in lsoa_warning
    assert ctx.geography.sources["districts"].endswith(DATA_FILES["districts"][0])


# --------------------------------------------------------------------------- real data: one month per force
REAL_FORCES = {"hertfordshire": "2022-01", "cumbria": "2025-02", "kent": "2025-03", "merseyside": "2025-03",
               "south-wales": "2024-02"}   # Hertfordshire's 2022 files carry 2011 LSOA codes; Cumbria's 2025-02 a Belfast row


@pytest.mark.parametrize("slug", list(REAL_FORCES))
def test_real_force_district_totals_follow_police_uk_lsoa_codes(slug, real_data_dir, tmp_path):
    from hotspots.config import load_config
    from hotspots.stages.context import prepare
    from hotspots.stages.counts import stage_counts

    month = REAL_FORCES[slug]
    lk = pd.read_csv(real_data_dir / "lookups" / "lookup_ltla24_csp24_pfa24_ew.csv", dtype=str)
    code = lk.loc[lk["pfa24_name"].str.lower() == slug.replace("-", " "), "pfa24_code"].iloc[0]
    text = (ROOT / "src" / "hotspots" / "configs" / "hertfordshire.toml").read_text()
    for key, value in (("forces", f'["{slug}"]'), ("force_area_code", f'"{code}"'), ("first", f'"{month}"'),
                       ("last", f'"{month}"')):
        text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    (tmp_path / "c.toml").write_text(text)
    ctx = prepare(load_config(tmp_path / "c.toml"), data=str(real_data_dir), out=str(tmp_path / "out"))
    cov = stage_counts(ctx)["coverage"]

    # police.uk's own assignment, read here without hotspots' reader: district of each published (2021) LSOA code
    raw = pd.read_csv(next((real_data_dir / "police_uk" / slug).rglob(f"{month}-{slug}-street.csv*")), dtype=str,
                      keep_default_na=False)
    raw = raw[(raw["Longitude"] != "") & ~(raw["Crime ID"].ne("") & raw["Crime ID"].duplicated())]
    ward = pd.read_csv(real_data_dir / "lookups" / "lookup_lsoa21_ward24_ltla24_ew.csv.gz", dtype=str)
    l21 = ward.drop_duplicates("lsoa21_code").set_index("lsoa21_code")["ltla24_code"]
    l11 = pd.read_csv(real_data_dir / "lookups" / "lookup_lsoa11_lsoa21_ltla22_ew.csv.gz", dtype=str)
    by_l11 = l11.assign(d=l11["lsoa21_code"].map(l21)).groupby("lsoa11_code")["d"]
    l11_district = by_l11.agg(lambda s: s.iloc[0] if s.nunique() == 1 else "")
    district = raw["LSOA code"].map(l21).fillna(raw["LSOA code"].map(l11_district))
    theirs = district[district.isin(ctx.geography.district_codes)].value_counts()
    # a 2011 LSOA split between districts: its code cannot say which; each candidate district may hold the record
    split = raw["LSOA code"][district == ""].map(by_l11.agg(lambda s: sorted(set(s)))).explode().value_counts()
    ours = ctx.counts("district").groupby("area_code")["count"].sum()
    assert sorted(ours.index) == ctx.geography.district_codes
    for d in ctx.geography.district_codes:
        a, b, extra = int(theirs.get(d, 0)), int(ours[d]), int(split.get(d, 0))
        assert a <= b <= a + extra or min(a, b) / max(a, b) >= 0.995, (slug, d, a, b, extra)
    assert cov["by_area_type"]["lsoa"]["share"] >= 0.99 and cov["by_area_type"]["ward"]["share"] >= 0.99
    assert cov["by_area_type"]["csp"]["share"] >= 0.99 and cov["warnings"] == []
    csp = ctx.counts("csp").groupby("area_code")["count"].sum()
    assert (csp > 0).all() and set(csp.index) == set(ctx.geography.district_lookup["csp24_code"])
    lsoas_per_csp = ctx.geography.lsoa_csp.value_counts()
    assert (lsoas_per_csp.reindex(csp.index) > 0).all()   # no CSP without LSOAs (the "0 LSOAs" report)
