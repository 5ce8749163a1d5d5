"""The CSP report prints one CSP per A4 page, names its busiest LSOAs by ward with a small map, and labels
its funnel-plot dots; printed by real headless Chromium."""

from __future__ import annotations

import re

import pytest

from hotspots.render import outliers_report as R

from test_outliers import synthetic  # noqa: F401  (the module's synthetic results, a fixture)


def _places(lsoas):
    """LSOA outlines with a ward name each (what the stage hands over from the ONS lookup)."""
    return lsoas.assign(ward_name=[f"Ward of {name}" for name in lsoas["area_name"]])[
        ["area_code", "area_name", "ward_name", "district_code", "geometry"]]


@pytest.fixture(scope="module")
def printed(synthetic, tmp_path_factory):  # noqa: F811
    html = R.render_report(synthetic["results"], lsoa_places=_places(synthetic["lsoas"]))
    path = tmp_path_factory.mktemp("print") / "report.html"
    path.write_text(html, encoding="utf-8")
    return html, path


def test_busiest_lsoas_named_by_ward_with_a_small_map(printed, synthetic):  # noqa: F811
    html, _ = printed
    busiest = synthetic["results"].busiest_lsoas
    assert len(busiest)
    for name in busiest["area_name"]:
        assert f"<b>Ward of {name} ward</b>" in html
    assert html.count('class="lsoa-map"') == busiest["csp_code"].nunique()
    plain = R.render_report(synthetic["results"])  # without places: names and codes, no maps
    assert 'class="lsoa-map"' not in plain and "Ward of" not in plain


def test_funnel_dots_are_labelled(synthetic):  # noqa: F811
    import base64

    res = synthetic["results"]
    crime_type = res.funnel_picks["crime_type"].iloc[0]
    curve = res.funnels[res.funnels["crime_type"] == crime_type]
    rows = res.district[res.district["crime_type"] == crime_type]
    svg = base64.b64decode(R.funnel_chart(curve, rows, highlight="E22000000", title=crime_type).split(",", 1)[1])
    text = svg.decode("utf-8")
    others = [n for n in rows["area_name"] if n != "Alpha"]
    assert sum(name in text for name in others) >= len(others) - 1  # at most one crowded out


def _pdf_pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf))


@pytest.mark.browser
def test_report_prints_one_csp_per_a4_page(printed, synthetic, tmp_path):  # noqa: F811
    from _browser import open_page

    _, path = printed
    n_csps = synthetic["results"].csp_summary.shape[0]
    with open_page(path, width=1062, height=740) as (page, events):
        page.emulate_media(media="print")
        # A4 landscape less the page margins: 281 x 199 mm at 96 px per inch
        heights = page.evaluate("() => [...document.querySelectorAll('section.csp')].map("
                                "s => s.getBoundingClientRect().height)")
        pdf = page.pdf(prefer_css_page_size=True, print_background=True)
    assert events["page_errors"] == []
    assert len(heights) == n_csps and max(heights) < 199 / 25.4 * 96
    pages = _pdf_pages(pdf)
    (tmp_path / "report.pdf").write_bytes(pdf)
    # the overview (at most 2 pages), one page per CSP, the method notes (at most 3 pages)
    assert n_csps + 1 <= pages <= n_csps + 5, pages
    import shutil
    import subprocess

    if shutil.which("pdftotext"):
        firsts = []
        for number in range(1, pages + 1):
            text = subprocess.run(["pdftotext", "-f", str(number), "-l", str(number), str(tmp_path / "report.pdf"), "-"],
                                  capture_output=True, text=True, check=True).stdout
            firsts.append(next((line for line in text.splitlines() if line.strip()), ""))
        names = list(synthetic["results"].csp_summary["area_name"])
        for name in names:  # each CSP starts a page and has that page alone
            assert firsts.count(name) == 1, (name, firsts)
        starts = [firsts.index(name) for name in names]
        assert starts == list(range(starts[0], starts[0] + n_csps)), firsts
