"""``hotspots init``: a starter config for any force, from the data home; force names; the force-area guard.

The small data home is built here: a LAD → CSP → PFA lookup with Kent's and
Cumbria's real codes (Cumbria's districts split between CSPs that follow the
old districts), LSOA populations and a few police.uk file names.  The real
data home gives the per-force checks (marked ``realdata``).
"""

from __future__ import annotations

import csv
import gzip
import re
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from hotspots._errors import ConfigError, DataNotFoundError
from hotspots.cli import main
from hotspots.config import load_config
from hotspots.init_config import starter_config, write_starter_config
from hotspots.io.forces import find_forces, force_for_code, force_for_falls_within, police_forces
from hotspots.schema import POLICE_UK_STREET_HEADER
from hotspots.stages.run import check_settings

LOOKUP_ROWS = [  # ltla24_code, ltla24_name, csp24_code, csp24_name, pfa24_code, pfa24_name
    ("E07000107", "Dartford", "E22000139", "Dartford and Gravesham", "E23000032", "Kent"),
    ("E07000109", "Gravesham", "E22000139", "Dartford and Gravesham", "E23000032", "Kent"),
    ("E06000035", "Medway", "E22000143", "Medway", "E23000032", "Kent"),
    ("E06000063", "Cumberland", "E22000031", "Allerdale", "E23000002", "Cumbria"),
    ("E06000063", "Cumberland", "E22000033", "Carlisle", "E23000002", "Cumbria"),
    ("E06000064", "Westmorland and Furness", "E22000035", "Eden", "E23000002", "Cumbria"),
    ("W06000015", "Cardiff", "W22000029", "Cardiff", "W15000003", "South Wales"),
]
POPULATION = {"E07000107": 1000, "E07000109": 2000, "E06000035": 3000, "E06000063": 400, "E06000064": 500, "W06000015": 700}


def small_home(root: Path, months: dict[str, list[str]], *, ons_columns: bool = False) -> Path:
    (root / "lookups").mkdir(parents=True)
    header = ["LAD24CD", "LAD24NM", "CSP24CD", "CSP24NM", "PFA24CD", "PFA24NM"] if ons_columns else \
        ["ltla24_code", "ltla24_name", "csp24_code", "csp24_name", "pfa24_code", "pfa24_name"]
    with open(root / "lookups" / "lookup_ltla24_csp24_pfa24_ew.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(LOOKUP_ROWS)
    (root / "population").mkdir()
    rows = [{"lsoa21_code": f"X{i}{j}", "census2021_usual_residents": pop / 2, "ltla24_code": code}
            for i, (code, pop) in enumerate(POPULATION.items()) for j in range(2)]
    pd.DataFrame(rows).to_csv(root / "population" / "census2021_usual_residents_lsoa21_ew.csv.gz", index=False)
    for force, ms in months.items():
        folder = root / "police_uk" / force / "street"
        folder.mkdir(parents=True)
        for m in ms:
            with gzip.open(folder / f"{m}-{force}-street.csv.gz", "wt") as fh:
                fh.write(",".join(POLICE_UK_STREET_HEADER) + "\n")
    return root


# --------------------------------------------------------------------------- force names
def test_the_force_table_has_43_forces_with_unique_codes_and_slugs():
    forces = police_forces()
    assert len(forces) == 43
    assert len({f.pfa_code for f in forces}) == 43 and len({f.police_uk_force for f in forces}) == 43
    assert sum(f.region == "Wales" for f in forces) == 4 and all(f.pfa_code.startswith("W") == (f.region == "Wales") for f in forces)


@pytest.mark.parametrize("name, slug", [
    ("kent", "kent"), ("Kent Police", "kent"), ("SOUTH WALES", "south-wales"), ("south_wales", "south-wales"),
    ("W15000003", "south-wales"), ("Metropolitan Police Service", "metropolitan"), ("Devon & Cornwall", "devon-and-cornwall"),
    ("city of london", "city-of-london"), ("Hertfordshire Constabulary", "hertfordshire"),
])
def test_a_force_is_found_by_slug_name_or_code(name, slug):
    assert [f.police_uk_force for f in find_forces([name])] == [slug]


def test_a_region_gives_its_forces_once_each_in_order():
    got = [f.police_uk_force for f in find_forces(["North West", "merseyside"])]
    assert got == ["cumbria", "lancashire", "merseyside", "greater-manchester", "cheshire"]


def test_an_unknown_force_lists_the_closest_first_then_every_force():
    with pytest.raises(ConfigError) as err:
        find_forces(["merseysid"])
    msg = err.value.message
    assert msg.startswith("unknown police force 'merseysid'; closest: merseyside,")
    listed = msg.split("forces known: ", 1)[1].split(";")[0].split(", ")
    assert len(listed) == 43 and "thames-valley" in listed


def test_falls_within_and_code_lookups():
    assert force_for_falls_within("  kent police ").police_uk_force == "kent"
    assert force_for_falls_within("Police Service of Northern Ireland") is None
    assert force_for_code("W15000003").falls_within == "South Wales Police"
    assert force_for_code("E23000099") is None


# --------------------------------------------------------------------------- starter config (small home)
def test_starter_config_runs_through_the_config_checks(tmp_path):
    home = small_home(tmp_path / "home", {"kent": ["2024-01", "2024-03", "2025-02"], "essex": ["2025-01"]})
    path, cfg = write_starter_config(home, ["kent"], tmp_path / "kent.toml")
    settings = load_config(path, sections=check_settings)  # every section checked, as the command does
    assert settings.forces == ("kent",) and settings.force_area_code == "E23000032"
    assert (settings.first_month, settings.last_month) == ("2024-01", "2025-02")  # from the files present (not Essex's)
    assert Path(settings.data_dir) == home.absolute() and settings.town_centres == ""
    assert set(settings.crime_groups) >= {"All crime", "ASB"}
    text = path.read_text()
    assert "2024-02, 2024-04..2025-01" in text  # the missing months are named
    assert "district E06000035 Medway (3,000)" in text and "CSP E22000139 Dartford and Gravesham: Dartford, Gravesham" in text
    assert "3 districts, 2 CSPs, 6,000 residents" in text
    assert not re.search(r"hertford|operation hotspot|82\.5|14\.5", text, re.I)


def test_split_districts_and_welsh_codes_and_ons_column_names(tmp_path):
    home = small_home(tmp_path / "home", {"cumbria": ["2025-01"], "south-wales": ["2025-01"]}, ons_columns=True)
    cfg = starter_config(home, ["cumbria"])
    assert "Cumberland, Westmorland and Furness: split between CSPs" in cfg.text or "Cumberland: split" in cfg.text
    assert "CSP E22000031 Allerdale: Cumberland" in cfg.text and "2 districts, 3 CSPs, 900 residents" in cfg.text
    wales = starter_config(home, ["South Wales Police"])
    raw = tomllib.loads(wales.text)
    assert raw["force_area_code"] == "W15000003" and raw["forces"] == ["south-wales"]


def test_several_forces_give_one_study_area(tmp_path):
    home = small_home(tmp_path / "home", {"kent": ["2024-01", "2025-01"], "cumbria": ["2025-01", "2025-06"]})
    path, cfg = write_starter_config(home, ["kent", "cumbria"], tmp_path / "two.toml")
    raw = tomllib.loads(path.read_text())
    assert raw["name"] == "Kent and Cumbria" and raw["forces"] == ["kent", "cumbria"]
    assert raw["force_area_code"] == ["E23000032", "E23000002"]
    assert (raw["periods"]["first"], raw["periods"]["last"]) == ("2024-01", "2025-06")
    settings = load_config(path, sections=check_settings)
    assert settings.force_area_codes == ("E23000032", "E23000002") and settings.force_area_code == "E23000032"


def test_no_files_or_no_lookup_is_a_clear_error(tmp_path):
    home = small_home(tmp_path / "home", {"kent": ["2025-01"]})
    with pytest.raises(DataNotFoundError, match="no police.uk street files for cumbria") as err:
        starter_config(home, ["kent", "cumbria"])
    assert "hotspots download --force cumbria" in err.value.hint
    with pytest.raises(DataNotFoundError, match="lookup_ltla24_csp24_pfa24_ew.csv is missing"):
        starter_config(tmp_path, ["kent"])
    with pytest.raises(DataNotFoundError, match=r"E23000031 \(Surrey\) not in"):
        starter_config(home, ["surrey"])


# --------------------------------------------------------------------------- the command
def test_init_command_writes_then_refuses_to_overwrite(tmp_path, capsys, monkeypatch):
    home = small_home(tmp_path / "home", {"kent": ["2025-01"]})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as ex:
        main(["--data", str(home), "init", "--force", "kent"])
    out = capsys.readouterr()
    assert ex.value.code == 0 and "wrote kent.toml: Kent (E23000032), 3 districts" in out.out
    assert "hotspots --config kent.toml run" in out.out
    before = (tmp_path / "kent.toml").read_text()
    with pytest.raises(SystemExit) as ex:
        main(["--data", str(home), "init", "--force", "kent"])
    out = capsys.readouterr()
    assert ex.value.code == 2 and "error: kent.toml already exists" in out.err and "--output" in out.err
    assert (tmp_path / "kent.toml").read_text() == before
    with pytest.raises(SystemExit) as ex:
        main(["--data", str(home), "init", "--force", "kentt", "--output", "x.toml"])
    out = capsys.readouterr()
    assert ex.value.code == 2 and "unknown police force 'kentt'; closest: kent," in out.err
    assert not (tmp_path / "x.toml").exists()


# --------------------------------------------------------------------------- the guard in the config
def test_another_forces_area_code_is_an_error_naming_the_right_one(tmp_path):
    home = small_home(tmp_path / "home", {"kent": ["2025-01"]})
    path, _ = write_starter_config(home, ["kent"], tmp_path / "kent.toml")
    path.write_text(path.read_text().replace('force_area_code = "E23000032"', 'force_area_code = "E23000027"'))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "forces includes 'kent' (Kent Police, force area E23000032) but force_area_code is E23000027 (Hertfordshire)" \
        in err.value.message
    assert 'set force_area_code = "E23000032"' in str(err.value)
    path.write_text(path.read_text().replace('force_area_code = "E23000027"', 'force_area_code = "Kent"'))
    with pytest.raises(ConfigError, match="must be an ONS police force area code"):
        load_config(path)


# --------------------------------------------------------------------------- the real data home
@pytest.mark.realdata
def test_the_force_table_agrees_with_the_ons_lookup(real_data_dir):
    lk = pd.read_csv(real_data_dir / "lookups" / "lookup_ltla24_csp24_pfa24_ew.csv", dtype=str)
    ons = dict(zip(lk["pfa24_code"], lk["pfa24_name"]))
    assert {f.pfa_code: f.pfa_name for f in police_forces()} == ons


@pytest.mark.realdata
@pytest.mark.parametrize("force, code, districts", [
    ("hertfordshire", "E23000027", 10), ("cumbria", "E23000002", 2), ("kent", "E23000032", 13),
    ("merseyside", "E23000004", 5), ("south-wales", "W15000003", 7),
])
def test_init_on_the_real_data_home(real_data_dir, tmp_path, force, code, districts):
    path, cfg = write_starter_config(real_data_dir, [force], tmp_path / f"{force}.toml")
    settings = load_config(path, sections=check_settings)
    assert settings.forces == (force,) and settings.force_area_code == code
    assert cfg.districts["ltla24_code"].nunique() == districts
    files = sorted((real_data_dir / "police_uk" / force / "street").glob("*-street.csv*"))
    assert (settings.first_month, settings.last_month) == (files[0].name[:7], files[-1].name[:7])
    if force != "hertfordshire":
        assert not re.search(r"hertford", path.read_text(), re.I) and settings.town_centres == ""
    else:  # the shipped approximate town centres, by name
        assert settings.town_centres == "builtin:hertfordshire"
