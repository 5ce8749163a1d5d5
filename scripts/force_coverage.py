#!/usr/bin/env python3
"""Per force: do hotspots' district, CSP, LSOA and ward tables cover police.uk's own LSOA assignment?

For each force this script

1. writes a config (a copy of the shipped one with the force's slug, its ONS
   police force area code from the data home's LAD → CSP → PFA lookup, and the
   first month present) and runs ``hotspots run --stage counts`` into
   ``OUT/<force>/`` (skip with ``--no-run`` to reuse earlier outputs);
2. independently of hotspots' reader, reads the force's police.uk street files
   with pandas, keeps rows with coordinates (first occurrence of a Crime ID),
   puts 2011 LSOA codes on 2021 (ONS lookup; a split 2011 LSOA counts when all
   its 2021 parts are in one district) and totals the rows by the district of
   their published LSOA code;
3. prints, per district, that total beside hotspots' district total and their
   agreement (smaller / larger), then the coverage of each area table:
   records counted / records whose published LSOA is in the force.

Usage::

    PYTHONPATH=src python3 scripts/force_coverage.py --data ../shared/data --out /tmp/coverage \
        [--force cumbria --force kent ...] [--no-run]

Exit status 1 when a district agrees for less than 99.5% or an LSOA, ward,
district or CSP table covers less than 99% of the force's located records.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "src" / "hotspots" / "configs" / "hertfordshire.toml"
FORCES = ["hertfordshire", "cumbria", "kent", "merseyside", "south-wales"]
STREET = re.compile(r"(\d{4}-\d{2})-(.+)-street\.csv(\.gz)?$")


def force_code(data: Path, slug: str) -> str:
    lk = pd.read_csv(data / "lookups" / "lookup_ltla24_csp24_pfa24_ew.csv", dtype=str)
    key = slug.replace("-", " ").lower()
    hit = lk.loc[lk["pfa24_name"].str.lower().str.replace("&", "and") == key, "pfa24_code"].unique()
    if len(hit) != 1:
        sys.exit(f"force {slug!r}: no single police force area named so in the lookup")
    return str(hit[0])


def street_files(data: Path, slug: str) -> list[Path]:
    return sorted(p for p in (data / "police_uk" / slug).rglob("*") if (m := STREET.search(p.name)) and m.group(2) == slug)


def run_counts(data: Path, out: Path, slug: str, code: str, first: str) -> None:
    text = SHIPPED.read_text()
    text = re.sub(r'(?m)^forces = .*$', f'forces = ["{slug}"]', text)
    text = re.sub(r'(?m)^force_area_code = .*$', f'force_area_code = "{code}"', text)
    text = re.sub(r'(?m)^first = .*$', f'first = "{first}"', text)
    text = re.sub(r'(?m)^name = .*$', f'name = "{slug}"', text)
    cfg = out / f"{slug}.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(text)
    env = {**os.environ, "HOTSPOTS_WORKERS": "1", "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "hotspots", "--config", str(cfg), "--data", str(data), "--out", str(out / slug),
           "run", "--stage", "counts"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")


def by_published_lsoa(data: Path, slug: str, districts: set[str]) -> tuple[pd.Series, pd.Series, dict]:
    """Records whose published LSOA is in the force: (LSOA 2021 code per record, district per record, notes)."""
    rows = pd.concat([pd.read_csv(p, dtype=str, keep_default_na=False,
                                  usecols=["Crime ID", "Longitude", "Latitude", "LSOA code"]) for p in street_files(data, slug)],
                     ignore_index=True)
    notes = {"rows": len(rows)}
    rows = rows[(rows["Longitude"].str.strip() != "") & (rows["Latitude"].str.strip() != "")]
    dup = rows["Crime ID"].ne("") & rows["Crime ID"].duplicated()
    notes["located"], notes["duplicate_crime_id"] = len(rows), int(dup.sum())
    rows = rows[~dup]
    ward = pd.read_csv(data / "lookups" / "lookup_lsoa21_ward24_ltla24_ew.csv.gz", dtype=str)
    l21_district = ward.drop_duplicates("lsoa21_code").set_index("lsoa21_code")["ltla24_code"]
    l11 = pd.read_csv(data / "lookups" / "lookup_lsoa11_lsoa21_ltla22_ew.csv.gz", dtype=str)
    l11 = l11.assign(d=l11["lsoa21_code"].map(l21_district))
    one_district = l11.groupby("lsoa11_code")["d"].agg(lambda s: s.iloc[0] if s.nunique() == 1 else "ambiguous")
    candidates = l11.groupby("lsoa11_code")["d"].agg(lambda s: sorted(set(s)))
    one_lsoa21 = l11.groupby("lsoa11_code")["lsoa21_code"].agg(lambda s: s.iloc[0] if s.nunique() == 1 else "")
    code = rows["LSOA code"].str.strip()
    is21 = code.isin(l21_district.index)
    district = code.map(l21_district).where(is21, code.map(one_district))
    lsoa21 = code.where(is21, code.map(one_lsoa21))
    inside = district.isin(districts)
    notes["in_force_by_code"] = int(inside.sum())
    split = (district == "ambiguous") & code.map(candidates).map(lambda c: isinstance(c, list) and bool(set(c) & districts))
    notes["lsoa11_split_across_districts"] = int(split.sum())
    # a 2011 LSOA split between districts: police.uk's code cannot say which; each candidate district may hold the row
    notes["split_candidates"] = code[split].map(candidates).explode().value_counts()
    return lsoa21[inside], district[inside], notes


def measure(data: Path, out: Path, slug: str, run: bool) -> bool:
    code = force_code(data, slug)
    months = sorted(STREET.search(p.name).group(1) for p in street_files(data, slug))
    if run:
        run_counts(data, out, slug, code, months[0])
    lk = pd.read_csv(data / "lookups" / "lookup_ltla24_csp24_pfa24_ew.csv", dtype=str)
    mine = lk[lk["pfa24_code"] == code]
    names = mine.drop_duplicates("ltla24_code").set_index("ltla24_code")["ltla24_name"]
    lsoa21, district, notes = by_published_lsoa(data, slug, set(names.index))
    n = len(district)
    counts = {t: pd.read_csv(out / slug / "counts" / f"counts_{t}.csv", dtype={"area_code": str})
              for t in ("district", "csp", "lsoa", "ward", "force")}
    ours = counts["district"].groupby("area_code")["count"].sum()
    theirs = district.value_counts()
    print(f"\n## {slug} ({code}), {months[0]}..{months[-1]}: {notes['rows']:,} rows, {notes['located']:,} with coordinates, "
          f"{notes['duplicate_crime_id']:,} repeated Crime IDs, {n:,} with a published LSOA in the force"
          + (f"; {notes['lsoa11_split_across_districts']:,} rows carry a 2011 LSOA code split between districts (column "
             "'split 2011': the district total agrees fully anywhere from 'by LSOA code' to that plus these)"
             if notes["lsoa11_split_across_districts"] else ""))
    print(f"{'district':<11} {'name':<28} {'by LSOA code':>12} {'split 2011':>10} {'hotspots':>10} {'agreement':>9}")
    ok = True
    for d in sorted(names.index):
        a, b = int(theirs.get(d, 0)), int(ours.get(d, 0))
        extra = int(notes["split_candidates"].get(d, 0))
        agree = 1.0 if a <= b <= a + extra else (min(a, b) if b < a else a + extra) / max(a, b) if max(a, b) else 1.0
        ok &= agree >= 0.995
        print(f"{d:<11} {names[d][:28]:<28} {a:>12,} {extra:>10,} {b:>10,} {agree:>9.2%}")
    n += notes["lsoa11_split_across_districts"]  # coverage: of every record whose published LSOA is in the force
    print(f"{'area table':<11} {'':<28} {'counted':>12} {'':>10} {'of':>10} {'coverage':>9}")
    for t in ("lsoa", "ward", "district", "csp", "force"):
        c = int(counts[t]["count"].sum())
        share = c / n if n else float("nan")
        ok &= t == "force" or share >= 0.99
        print(f"{t:<11} {counts[t]['area_code'].nunique():>6} areas{'':<16} {c:>12,} {'':>10} {n:>10,} {share:>9.2%}")
    known = lsoa21[lsoa21 != ""]
    in_lsoa_table = known.isin(set(counts["lsoa"]["area_code"])).mean() if len(known) else float("nan")
    print(f"records with a one-to-one 2021 LSOA whose LSOA is an area of the LSOA table: {in_lsoa_table:.2%}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=Path("/tmp/force_coverage"))
    ap.add_argument("--force", action="append", help="police.uk force slug (repeatable); default the five in the data home")
    ap.add_argument("--no-run", action="store_true", help="reuse OUT/<force>/counts from an earlier run")
    args = ap.parse_args()
    ok = True
    for slug in args.force or FORCES:
        ok &= measure(args.data.resolve(), args.out, slug, not args.no_run)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
