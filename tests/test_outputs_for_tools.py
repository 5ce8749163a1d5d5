"""Outputs as the analyst's tools open them: Excel (CSV encoding, rounding), QGIS (layer styles), ArcGIS fields."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from hotspots._io import CSV_SIGNIFICANT_DIGITS, OutputDir

NAME = "Bishop's Stortford town centre – Potter Street"


def excel_decode(raw: bytes) -> str:
    """What Excel shows for a double-clicked CSV: UTF-8 if the file starts with a BOM, else the Windows code page."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8")
    return raw.decode("cp1252", errors="replace")


def test_csv_opens_in_excel_with_dashes_and_pounds_intact(tmp_path):
    out = OutputDir(tmp_path / "out")
    df = pd.DataFrame({"area_name": [NAME], "cost": ["£1,250 per crime prevented"], "count": [12],
                       "rate": [3 / 3100 * 1000], "p": [1.234567890123e-9], "population": [1_234_567.0]})
    path = out.write_csv(df, "t/table.csv")
    raw = path.read_bytes()
    text = excel_decode(raw)
    assert NAME in text and "£1,250" in text
    assert "â€“" not in text and "Â£" not in text
    # the same bytes without the mark would show the mojibake the issue reported: the test can fail
    assert "â€“" in excel_decode(raw[3:]) and "Â£" in excel_decode(raw[3:])
    # decimals are rounded for reading, whole numbers and integers untouched; pandas reads the BOM as a BOM
    back = pd.read_csv(path)
    assert list(back.columns) == list(df.columns)
    assert text.splitlines()[1].split(",")[-3:] == ["0.9677419", "1.234568e-09", "1234567.0"]
    assert back["rate"].iloc[0] == pytest.approx(df["rate"].iloc[0], rel=10.0 ** -(CSV_SIGNIFICANT_DIGITS - 1))
    assert back["count"].iloc[0] == 12


def test_every_csv_of_a_run_has_the_mark(tmp_path):
    """Every CSV goes through the one writer: a counts run on the tiny data home writes only marked CSVs."""
    from test_cli import make_home
    from hotspots.cli import main

    home = make_home(tmp_path / "home")
    with pytest.raises(SystemExit) as ex:
        main(["--data", str(home), "--out", str(tmp_path / "o"), "-q", "counts"])
    assert ex.value.code == 0
    csvs = sorted((tmp_path / "o").rglob("*.csv"))
    assert len(csvs) >= 8
    for path in csvs:
        assert path.read_bytes().startswith(b"\xef\xbb\xbf"), path


def test_round_significant_keeps_precision_where_it_matters():
    from hotspots._io import round_significant

    v = np.array([51.752345678, -0.34123456789, 523456.789, 0.05, 1e-300, np.nan, np.inf, -2.5e-7])
    r = round_significant(v)
    assert r[0] == 51.75235 and r[1] == -0.3412346 and r[2] == 523456.8 and r[3] == 0.05
    assert r[4] == 1e-300 and np.isnan(r[5]) and np.isinf(r[6]) and r[7] == -2.5e-7
    assert np.all(np.abs(r[:5] - v[:5]) <= np.abs(v[:5]) * 5e-7)
