"""Render the CSP outlier report: one self-contained HTML file, no statistics computed here.

Input: the finished :class:`hotspots.outliers.OutlierResults` (tables and
metadata; plain data).  Output:
HTML that works offline (charts are SVG, written directly or drawn with
matplotlib, embedded as ``data:`` URIs; CSS inline; no scripts), prints
cleanly (one page break per CSP section) and escapes every data-derived
string (Jinja2 autoescaping; the sentences below are plain text, never
markup).

The plain-English "what stands out" sentences
(:mod:`hotspots.render.outliers_wording`) and the charts
(:mod:`hotspots.render.outliers_charts`) are built from numbers already in the
tables, and what to tell, which funnel plots to draw, the busiest LSOAs and
the order of the sections were chosen by the analysis
(:mod:`hotspots.outliers.highlights`): this module arranges them for the
template, it does not test, select or rank anything.
The page is written by the ``outliers`` stage.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from hotspots._parallel import collector_paused
from hotspots._version import __version__
from hotspots.months import month_ranges as _month_ranges
from hotspots.months import months_label
from hotspots.render.outliers_charts import (
    COLOURS,
    choropleth,
    funnel_chart,
    lsoa_map,
    trend_chart,
)
from hotspots.render.outliers_wording import (
    FLAG_TEXT,
    crime_noun,
    possessive,
    signed_pct,
    stand_out,
    type_phrase,
)

TEMPLATE = "outliers.html.j2"


def month_ranges(months: Sequence[str]) -> str:
    """Months as ranges (:func:`hotspots.months.month_ranges`), or "" when there are none (the sentence is left out).

    >>> month_ranges(["2024-03", "2024-04", "2024-09"]), month_ranges([])
    ('2024-03..2024-04, 2024-09', '')
    """
    return _month_ranges(months) if len(months) else ""


def _fmt(value: Any, digits: int = 1) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(value):
        return "–"
    return f"{value:,.{digits}f}"


def _int(value: Any) -> str:
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "–"


def _display_rows(district: pd.DataFrame, meta: Mapping[str, Any]) -> pd.DataFrame:
    """Rows to show: no duplicate single-category groups (e.g. "ASB" = "Anti-social behaviour")."""
    return district[~district["crime_type"].isin(meta.get("single_type_groups", []))]


class _Cuts:
    """Parts of the results that several CSP sections read, each cut once with the same expression.

    The funnel curve and the CSP rows of a crime type, and the county's change
    for a crime type, are the same for every section that shows them.
    """

    def __init__(self, results):
        self.results = results
        self._cut: dict[tuple[str, str], Any] = {}

    def funnel(self, crime_type: str) -> pd.DataFrame:
        if ("funnel", crime_type) not in self._cut:
            funnels = self.results.funnels
            self._cut[("funnel", crime_type)] = funnels[funnels["crime_type"] == crime_type]
        return self._cut[("funnel", crime_type)]

    def district(self, crime_type: str) -> pd.DataFrame:
        if ("district", crime_type) not in self._cut:
            district = self.results.district
            self._cut[("district", crime_type)] = district[district["crime_type"] == crime_type]
        return self._cut[("district", crime_type)]

    def rows_of(self, frame: pd.DataFrame, column: str, code: str) -> pd.DataFrame:
        """``frame[frame[column] == code]``: the same rows in the same order, found by one grouping per frame."""
        key = ("rows_of", id(frame), column)
        if key not in self._cut:
            self._cut[key] = (frame, frame.groupby(column, sort=False).indices)  # the frame kept: its id stays its own
        positions = self._cut[key][1].get(code)
        return frame.iloc[positions] if positions is not None else frame.iloc[:0]

    def records_of(self, frame: pd.DataFrame, column: str, code: str) -> list[dict[str, Any]]:
        """``frame[frame[column] == code].to_dict("records")``: the same records in the same order, the frame read once."""
        key = ("records_of", id(frame), column)
        if key not in self._cut:
            grouped: dict[Any, list[dict[str, Any]]] = {}
            for record in frame.to_dict("records"):
                grouped.setdefault(record[column], []).append(record)
            self._cut[key] = (frame, grouped)  # the frame kept: its id stays its own
        return self._cut[key][1].get(code, [])

    def county_concentration(self, crime_type: str) -> pd.DataFrame:
        if ("county_concentration", crime_type) not in self._cut:
            conc = self.results.concentration
            self._cut[("county_concentration", crime_type)] = conc[(conc["area_type"] == "force")
                                                                   & (conc["crime_type"] == crime_type)]
        return self._cut[("county_concentration", crime_type)]

    def ward_of(self, places) -> dict:
        if ("ward_of", id(places)) not in self._cut:
            self._cut[("ward_of", id(places))] = (dict(zip(places["area_code"], places["ward_name"]))
                                                  if places is not None else {})
        return self._cut[("ward_of", id(places))]

    def county_change(self, crime_type: str) -> pd.DataFrame:
        if ("county_change", crime_type) not in self._cut:
            change = self.results.change
            self._cut[("county_change", crime_type)] = change[(change["area_type"] == "csp")
                                                              & (change["crime_type"] == crime_type)]
        return self._cut[("county_change", crime_type)]


#: the columns of a CSP's rows its table shows (the others are not read)
_TABLE_COLUMNS = ("crime_type", "is_group", "count", "rate_per_1000", "county_rate_per_1000", "ratio", "flag",
                  "flag_unadjusted", "small_numbers", "pct_change", "rest_pct_change", "pct_change_vs_rest",
                  "change_flag", "harm_ratio", "ratio_to_peer_mean")


#: the columns of the district table the matrix of cells reads
_MATRIX_COLUMNS = ("area_code", "crime_type", "flag", "ratio", "rate_per_1000", "county_rate_per_1000",
                   "flag_unadjusted")


def _csp_context(code: str, results, rows: pd.DataFrame, meta: Mapping[str, Any],
                 summary: Mapping[str, Any], places=None, cuts: _Cuts | None = None) -> dict[str, Any]:
    cuts = cuts or _Cuts(results)
    name = str(rows["area_name"].iloc[0])
    after = months_label(meta["change_after"]["months"]) if meta.get("change_after") else None
    before = months_label(meta["change_before"]["months"]) if meta.get("change_before") else None
    # the few columns the caveats read: a row filter of all of ``rows`` would copy every column of the table
    shown = rows[[c for c in ("crime_type", "flag", "small_numbers", "expected") if c in rows.columns]]
    shown = shown[shown["flag"] != "no_records"]
    told = cuts.records_of(results.highlights, "area_code", code)
    sentences = stand_out(told, name=name, with_change=bool(after and before))
    headline = meta["headline"]
    head = np.flatnonzero((rows["crime_type"] == headline).to_numpy())  # the first row of it, not a copy of the rows
    head_row = rows.iloc[head[0]].to_dict() if len(head) else None

    context_lines: list[str] = []
    if head_row is not None and math.isfinite(float(head_row.get("harm_ratio", np.nan))):
        context_lines.append(
            f"Weighted by harm, {possessive(name)} {crime_noun(headline)} is {float(head_row['harm_ratio']):.2f} times "
            f"the county level, against {float(head_row['ratio']):.2f} times by count "
            f"(harm weights {meta['harm_version']}; ASB is counted, not weighted).")
    conc = results.concentration
    mine = cuts.rows_of(conc, "area_code", code)
    mine = mine[mine["crime_type"] == headline]
    county_conc = cuts.county_concentration(headline)
    if len(mine):
        c = mine.iloc[0]
        text = (f"Its busiest 5% of LSOAs ({int(c['lsoas_top5'])} of {int(c['n_lsoas'])}) hold "
                f"{100 * c['share_top5']:.0f}% of its {crime_noun(headline)}, the busiest 10% hold "
                f"{100 * c['share_top10']:.0f}%")
        if len(county_conc):
            k = county_conc.iloc[0]
            text += f" (county-wide: {100 * k['share_top5']:.0f}% and {100 * k['share_top10']:.0f}%)"
        context_lines.append(text + ".")
    n_lsoas = int(summary["n_lsoas"])
    if n_lsoas:
        high = int(summary["lsoas_high_998"])
        context_lines.append(
            f"{high} of its {n_lsoas} LSOAs {'is' if high == 1 else 'are'} above the 99.8% limit for "
            f"{type_phrase(headline)} against the county rate, even allowing for overdispersion.")
    if head_row is not None and int(head_row.get("n_peers", 0) or 0) > 0:
        context_lines.append(
            f"Against its peer group ({head_row['peer_group'] or head_row['peer_codes']}), its "
            f"{type_phrase(headline)} rate is {float(head_row['ratio_to_peer_mean']):.2f} times the peer mean "
            f"({float(head_row['rate_per_1000']):.1f} vs {float(head_row['peer_mean_rate_per_1000']):.1f} per 1,000).")

    # funnel plots for what stands out (else the headline type), as the analysis picked them
    picks = cuts.rows_of(results.funnel_picks, "area_code", code)
    funnel_note = ""
    if (picks["reason"] == "headline").any():
        funnel_note = f"Nothing stands out, so the {type_phrase(headline)} funnel is shown for context."
    funnels = []
    for crime_type in picks["crime_type"]:
        curve = cuts.funnel(crime_type)
        points = cuts.district(crime_type)
        if len(curve):
            funnels.append({"crime_type": crime_type,
                            "uri": funnel_chart(curve, points, highlight=code, title=crime_type)})

    trend = trend_chart(results.monthly, area_code=code, county_code=meta["county_code"], types=meta["trend_types"],
                        area_name=name, county_name=meta["county_name"])

    notable = set(cuts.rows_of(results.notable_changes, "area_code", code)["crime_type"])
    table = []
    for record in rows[[c for c in rows.columns if c in _TABLE_COLUMNS]].to_dict("records"):
        table.append({
            "crime_type": record["crime_type"], "is_group": bool(record["is_group"]),
            "count": _int(record["count"]), "rate": _fmt(record["rate_per_1000"]),
            "county_rate": _fmt(record["county_rate_per_1000"]), "ratio": _fmt(record["ratio"], 2),
            "flag": str(record["flag"]), "flag_text": FLAG_TEXT.get(str(record["flag"]), str(record["flag"])),
            "flag_unadjusted": str(record["flag_unadjusted"]),
            "flag_unadjusted_text": FLAG_TEXT.get(str(record["flag_unadjusted"]), str(record["flag_unadjusted"])),
            "small": bool(record["small_numbers"]),
            "pct_change": signed_pct(float(record["pct_change"])) if "pct_change" in record else "–",
            "rest_pct_change": signed_pct(float(record["rest_pct_change"])) if "rest_pct_change" in record else "–",
            "vs_rest": signed_pct(float(record["pct_change_vs_rest"])) if "pct_change_vs_rest" in record else "–",
            "change_flag": str(record.get("change_flag", "") or ""),
            "change_mark": ({"up_vs_reference": "▲", "down_vs_reference": "▼"}.get(str(record.get("change_flag")), "")
                            if record["crime_type"] in notable else ""),
            "harm_ratio": _fmt(record["harm_ratio"], 2),
            "peer_ratio": _fmt(record["ratio_to_peer_mean"], 2),
        })

    busiest = cuts.rows_of(results.busiest_lsoas, "csp_code", code)
    busiest.attrs = {}  # not shown here, and pandas deep-copies a frame's attrs into every column it reads
    ward_of = cuts.ward_of(places)
    top_lsoas = []
    for record in busiest.to_dict("records"):
        ward = ward_of.get(record["area_code"], "")
        top_lsoas.append({
            "rank": int(record["rank_in_csp"]), "name": record["area_name"], "code": record["area_code"],
            "place": f"{ward} ward" if ward else "",
            "count": _int(record["count"]), "rate": _fmt(record["rate_per_1000"]), "ratio": _fmt(record["ratio"], 1),
            "flag": str(record["flag"]), "flag_text": FLAG_TEXT.get(str(record["flag"]), str(record["flag"])),
            "share": _fmt(100 * float(record["share_of_csp"]), 1),
            "biggest": (f"{record['biggest_type']} ({int(record['biggest_count']):,})" if record["biggest_type"]
                        else "–"),
        })

    district_code = str(rows["district_code"].iloc[0] or "")
    mine_places = cuts.rows_of(places, "district_code", district_code) if places is not None else None
    lsoa_figure = ""
    if mine_places is not None and len(mine_places) and top_lsoas:
        lsoa_figure = lsoa_map(mine_places, [(t["rank"], t["code"], t["flag"]) for t in top_lsoas],
                               title=f"{name}: busiest LSOAs, numbered")

    caveats = []
    small = shown[shown["small_numbers"]]
    if len(small):
        listed = ", ".join(f"{type_phrase(t)} (expected {e:.0f})" for t, e in zip(small["crime_type"], small["expected"]))
        caveats.append(f"Small numbers: {listed}. With fewer than {meta['small_expected']:.0f} crimes expected, a rate "
                       "moves a lot by chance; the funnel limits use exact Poisson probabilities for these.")
    if head_row is not None and after and before and math.isfinite(float(head_row.get("pct_change", np.nan))):
        county_change = cuts.county_change(headline)
        county_pct = float(county_change["parent_pct_change"].iloc[0]) if len(county_change) else np.nan
        note = meta.get("recording_note") or ("Recorded crime also changes when recording practice changes, not only "
                                              "when crime does.")
        caveats.append(f"Recording changes: {crime_noun(headline)} across {meta['county_name']} changed "
                       f"{signed_pct(county_pct)} between {before} and {after}. {note} Every change in this report is "
                       "therefore judged against the rest of the county, which shares force-wide recording changes, "
                       "never on its own.")
    towns = meta.get("town_centres", {}).get(code, [])
    if towns:
        centres = (f"{towns[0]} town centre draws" if len(towns) == 1
                   else f"The town centres of {_join(towns)} draw")
        caveats.append(f"Visitors: rates are per resident (Census 2021). {centres} shoppers, commuters and "
                       "night-time visitors, so "
                       "rates of shoplifting, theft, public order and violence there, in the LSOAs that contain "
                       "them and in the CSP overall overstate the risk to people who live here.")
    else:
        caveats.append("Visitors: rates are per resident (Census 2021); areas that draw shoppers, commuters or "
                       "night-time visitors have higher rates than the risk to residents.")
    if after and before:
        missing = meta.get("months_missing", [])
        gap = f" police.uk data for {month_ranges(missing)} are not in the data home." if missing else ""
        caveats.append(f"Months used for change: {after} against {before}, the same calendar months a year apart "
                       f"(seasonally matched).{gap}")
    caveats.append("An outlier is a prompt to look, not a verdict: it says a rate differs from the county by more "
                   "than the usual spread between CSPs, not why, and not whether anything is wrong.")
    return {
        "code": code, "name": name, "anchor": f"csp-{code}",
        "population": _int(rows["population"].iloc[0]), "district_code": str(rows["district_code"].iloc[0] or ""),
        "n_lsoas": n_lsoas, "sentences": sentences, "context_lines": context_lines, "funnels": funnels,
        "funnel_note": funnel_note, "trend": trend, "table": table, "top_lsoas": top_lsoas, "caveats": caveats,
        "lsoa_map": lsoa_figure,
        "has_peers": bool(meta.get("peers_given")),
    }


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def build_context(results, lsoa_places=None) -> dict[str, Any]:
    """Everything the template shows, as plain strings and numbers.

    ``lsoa_places``: LSOA outlines with ``area_code``, ``ward_name`` and
    ``district_code`` (from the stage), to name the busiest LSOAs by ward and
    draw them on a small map; without it the LSOAs are shown by name and code.
    """
    meta = results.meta
    district = _display_rows(results.district, meta)
    order = [t for t in meta["crime_types"] if t not in meta.get("single_type_groups", [])]
    names = dict(zip(district["area_code"], district["area_name"]))
    csps = [{**csp, "area_name": names.get(csp["area_code"], csp["area_name"])}  # in report order
            for csp in results.csp_summary.to_dict("records")]
    after = months_label(meta["change_after"]["months"]) if meta.get("change_after") else None
    before = months_label(meta["change_before"]["months"]) if meta.get("change_before") else None

    # the cell of each (CSP, crime type) as a record, the frame read once (one row each: the table's key)
    cells = {(r["area_code"], r["crime_type"]): r for r in district[list(_MATRIX_COLUMNS)].to_dict("records")}
    matrix = []
    for csp in csps:
        row_cells = []
        for crime_type in order:
            r = cells.get((csp["area_code"], crime_type))
            if r is None:
                row_cells.append({"text": "", "flag": "no_records", "title": ""})
                continue
            flag = str(r["flag"])
            row_cells.append({
                "text": _fmt(r["ratio"], 2), "flag": flag,
                "title": (f"{csp['area_name']} – {crime_type}: {_fmt(r['rate_per_1000'])} per 1,000 vs county "
                          f"{_fmt(r['county_rate_per_1000'])}; {FLAG_TEXT.get(flag, flag)} allowing for "
                          f"overdispersion; {FLAG_TEXT.get(str(r['flag_unadjusted']), '')} on Poisson limits alone"),
            })
        matrix.append({"name": csp["area_name"], "anchor": f"csp-{csp['area_code']}", "cells": row_cells})

    rates_by_type = district.drop_duplicates("crime_type").set_index("crime_type")["county_rate_per_1000"]
    county_rates = [_fmt(rates_by_type.get(t, np.nan), 1) for t in order]

    headline = meta["headline"]
    head_rows = results.district[results.district["crime_type"] == headline]
    choropleth_uri = choropleth(results.areas, head_rows,
                                title=f"{headline}: recorded rate per 1,000 residents, {months_label(meta['period']['months'])}")
    county_change = None
    if after and before:
        cc = results.change[(results.change["area_type"] == "csp") & (results.change["crime_type"] == headline)]
        if len(cc):
            county_change = signed_pct(float(cc["parent_pct_change"].iloc[0]), 1)

    sections = []
    cuts = _Cuts(results)
    for csp in csps:
        rows = district[district["area_code"] == csp["area_code"]]
        rows = rows.set_index("crime_type").reindex([t for t in order if t in set(rows["crime_type"])]).reset_index()
        sections.append(_csp_context(csp["area_code"], results, rows, meta, csp, lsoa_places, cuts))

    od = results.overdispersion
    od_rows = []
    first_row: dict[tuple[str, str], int] = {}  # the first row of each (area type, crime type), found in one pass
    for i, key in enumerate(zip(od["area_type"], od["crime_type"])):
        first_row.setdefault(key, i)
    for crime_type in order:
        if ("csp", crime_type) not in first_row:
            continue
        c = od.iloc[first_row[("csp", crime_type)]]
        lsoa_od = od.iloc[[first_row[("lsoa", crime_type)]]] if ("lsoa", crime_type) in first_row else od.iloc[:0]
        od_rows.append({
            "crime_type": crime_type, "county_rate": _fmt(c["county_rate_per_1000"], 2), "phi": _fmt(c["phi"], 1),
            "statistic": _fmt(c["statistic"], 0), "critical": _fmt(c["critical_value"], 1),
            "applied": "yes" if c["applied"] else "no", "tau2": _fmt(c["tau2"], 4),
            "lsoa_phi": _fmt(lsoa_od["phi"].iloc[0], 2) if len(lsoa_od) else "–",
            "lsoa_applied": ("yes" if lsoa_od["applied"].iloc[0] else "no") if len(lsoa_od) else "–",
        })
    harm_rows = [{"crime_type": k, "weight": "not weighted" if v is None else _fmt(v, 0)}
                 for k, v in meta["harm_weights"].items()]
    return {
        "title": f"Community Safety Partnership outliers: {meta.get('force_name') or meta['county_name']}",
        "county_name": meta["county_name"],
        "period_label": months_label(meta["period"]["months"]), "period_code": meta["period"]["label"],
        "change_after": after, "change_before": before,
        "periods_reason": meta.get("periods_reason", ""),
        "months_missing": month_ranges(meta.get("months_missing", [])),
        "months_present": month_ranges(meta.get("months_present", [])),
        "order": order, "matrix": matrix, "county_rates": county_rates, "counts": meta["flag_counts"],
        "headline": headline,
        "choropleth": choropleth_uri, "county_change": county_change, "sections": sections,
        "od_rows": od_rows, "adjustment": meta["adjustment"], "harm_rows": harm_rows,
        "harm_version": meta["harm_version"], "sources": sorted((meta.get("sources") or {}).items()),
        "police_files": meta.get("police_files"), "rows_kept": _int(meta.get("rows_kept")),
        "peer_source": meta.get("peer_source") or "", "peers_unmatched": meta.get("peers_unmatched", []),
        "peers_given": bool(meta.get("peers_given")),
        "groups": meta["groups"], "small_expected": _fmt(meta["small_expected"], 0),
        "group_notes": _group_notes(meta["groups"]),
        "version": __version__, "generated": dt.datetime.now().strftime("%d %B %Y %H:%M"),
        "colours": COLOURS, "flag_text": FLAG_TEXT,
    }


def _group_notes(groups: Mapping[str, Sequence[str]]) -> list[str]:
    """A sentence for each group called "All crime…" that leaves anti-social behaviour out (police.uk's includes it).

    >>> print(_group_notes({"All crime": ["Burglary", "Robbery"], "ASB": ["Anti-social behaviour"]})[0])
    "All crime" in this report is 2 police.uk crime types without anti-social behaviour (police.uk's "All crime" includes it); ASB is reported on its own.
    """
    notes = []
    for name, members in groups.items():
        if name.lower().startswith("all crime") and "Anti-social behaviour" not in members:
            notes.append(f'"{name}" in this report is {len(members)} police.uk crime types without anti-social '
                         f'behaviour (police.uk\'s "All crime" includes it); ASB is reported on its own.')
    return notes


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("hotspots", "templates"),
        autoescape=True,  # every {{ }} is HTML-escaped, whatever the template file is called
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_report(results, *, lsoa_places=None) -> str:
    """The CSP outlier report as one self-contained HTML string (``lsoa_places``: see :func:`build_context`)."""
    with collector_paused():  # about 40 figures: see collector_paused
        context = build_context(results, lsoa_places)
    return _environment().get_template(TEMPLATE).render(**context)
