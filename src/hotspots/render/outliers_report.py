"""Render the CSP outlier report: one self-contained HTML file, no statistics computed here.

Input: :class:`hotspots.outliers.OutlierResults` (tables and metadata).  Output:
HTML that works offline (charts are SVG drawn with matplotlib, embedded as
``data:`` URIs; CSS inline; no scripts), prints cleanly (one page break per
CSP section) and escapes every data-derived string (Jinja2 autoescaping; the
sentences below are plain text, never markup).

The plain-English "what stands out" sentences are built here from numbers
already in the tables: this module formats, it does not test anything.  An
outlier is a prompt to look, not a verdict, and the wording says so.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from hotspots import __version__
from hotspots.months import month_ranges as config_month_ranges

TEMPLATE = "outliers.html.j2"

FLAG_TEXT = {
    "high_998": "high (99.8%)",
    "high_95": "high (95%)",
    "within": "within",
    "low_95": "low (95%)",
    "low_998": "low (99.8%)",
    "no_records": "no records",
}
FLAG_LIMIT_TEXT = {
    "high_998": "above the 99.8% limit even allowing for overdispersion",
    "high_95": "above the 95% limit allowing for overdispersion (within the 99.8% limit)",
    "low_95": "below the 95% limit allowing for overdispersion (within the 99.8% limit)",
    "low_998": "below the 99.8% limit even allowing for overdispersion",
}
FLAG_ORDER = {"high_998": 0, "low_998": 0, "high_95": 1, "low_95": 1}
COLOURS = {"high_998": "#b2182b", "high_95": "#f4a582", "within": "#ffffff", "low_95": "#92c5de",
           "low_998": "#2166ac", "no_records": "#eeeeee"}
HIGHLIGHT = "#d95f02"
#: Areas smaller than this (m2) are labelled outside their polygon on the map.
SMALL_AREA_M2 = 60e6
MAX_LEVEL_SENTENCES = 6
MAX_CHANGE_SENTENCES = 3
MAX_FUNNELS = 6
TOP_LSOAS = 10
CHANGE_Q = 0.05

MONTH_ABBR = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


# =============================================================================
# Wording helpers (formatting only)
# =============================================================================


def months_label(months: Sequence[str]) -> str:
    """Readable label for a list of months.

    >>> months_label(["2025-01", "2025-02", "2025-03", "2025-04"])
    'Jan–Apr 2025'
    >>> months_label(["2024-11", "2024-12", "2025-01"])
    'Nov 2024–Jan 2025'
    >>> months_label(["2025-03"])
    'Mar 2025'
    """
    months = sorted(months)
    if not months:
        return "no months"
    first, last = months[0], months[-1]
    fy, fm = int(first[:4]), int(first[5:7])
    ly, lm = int(last[:4]), int(last[5:7])
    contiguous = (ly * 12 + lm) - (fy * 12 + fm) + 1 == len(months)
    if len(months) == 1:
        return f"{MONTH_ABBR[fm - 1]} {fy}"
    if fy == ly:
        text = f"{MONTH_ABBR[fm - 1]}–{MONTH_ABBR[lm - 1]} {fy}"
    else:
        text = f"{MONTH_ABBR[fm - 1]} {fy}–{MONTH_ABBR[lm - 1]} {ly}"
    return text if contiguous else f"{len(months)} months, {text}"


def month_ranges(months: Sequence[str]) -> str:
    """Months as ranges (:func:`hotspots.config.month_ranges`), or "" when there are none (the sentence is left out)."""
    return config_month_ranges(months) if len(months) else ""


def possessive(name: str) -> str:
    """``Watford’s``, ``St Albans’``."""
    return f"{name}’" if name.endswith("s") else f"{name}’s"


def type_phrase(crime_type: str) -> str:
    """Crime type inside a sentence: lower case unless it starts with an acronym.

    >>> type_phrase("Shoplifting"), type_phrase("ASB and violence"), type_phrase("All crime")
    ('shoplifting', 'ASB and violence', 'all crime')
    """
    if len(crime_type) > 1 and crime_type[1].islower():
        return crime_type[0].lower() + crime_type[1:]
    return crime_type


def crime_noun(crime_type: str) -> str:
    """``recorded crime`` for the all-crime group, else the crime type in a sentence.

    >>> crime_noun("All crime"), crime_noun("Violence")
    ('recorded crime', 'recorded violence')
    """
    if crime_type.lower() == "all crime":
        return "recorded crime"
    return f"recorded {type_phrase(crime_type)}"


def _sentence_start(text: str) -> str:
    return text[:1].upper() + text[1:]


def relative_to_county(ratio: float) -> str:
    """``2.4 times the county rate`` / ``24% above`` / ``35% below the county rate``.

    >>> relative_to_county(2.36), relative_to_county(1.24), relative_to_county(0.646)
    ('2.4 times the county rate', '24% above the county rate', '35% below the county rate')
    """
    if ratio >= 1.5:
        return f"{ratio:.1f} times the county rate"
    pct = 100.0 * (ratio - 1.0)
    if abs(pct) < 0.5:
        return "the same as the county rate"
    return f"{abs(pct):.0f}% {'above' if pct > 0 else 'below'} the county rate"


def _moved(pct: float) -> str:
    if not math.isfinite(pct):
        return "could not be compared"
    if abs(pct) < 0.5:
        return "was unchanged"
    return f"{'rose' if pct > 0 else 'fell'} {abs(pct):.0f}%"


def _movement(pct: float) -> str:
    if not math.isfinite(pct):
        return "no comparable change"
    if abs(pct) < 0.5:
        return "no change"
    return f"a {'rise' if pct > 0 else 'fall'} of {abs(pct):.0f}%"


def _signed(pct: float, digits: int = 0) -> str:
    if not math.isfinite(pct):
        return "–"
    if round(abs(pct), digits) == 0:
        return "0%"
    return f"{pct:+.{digits}f}%".replace("-", "−")


def change_clause(row: Mapping[str, Any]) -> str:
    """``it rose 18% against a rise of 6% in the rest of the county, a difference that stands out``."""
    pct = float(row.get("pct_change", np.nan))
    rest = float(row.get("rest_pct_change", np.nan))
    if not math.isfinite(pct):
        return ""
    if abs(pct) < 0.5 and math.isfinite(rest) and abs(rest) < 0.5:
        return "it was unchanged, as in the rest of the county"
    text = f"it {_moved(pct)} against {_movement(rest)} in the rest of the county"
    flag = row.get("change_flag", "")
    q = float(row.get("change_q", np.nan))
    gap = float(row.get("pct_change_vs_rest", np.nan))
    if flag in ("up_vs_reference", "down_vs_reference"):
        if math.isfinite(q) and q < CHANGE_Q:
            text += ", a difference that stands out"
        else:
            text += ", a difference that could be chance given how many comparisons are made"
    elif flag == "in_line":
        if math.isfinite(gap) and abs(gap) < 5:
            text += ", in line with the county"
        else:
            text += ", a difference within what chance would give"
    return text


def rate_subject(crime_type: str) -> str:
    """What a rate is of, in a sentence: ``shoplifting``, ``night-time economy crime``.

    >>> rate_subject("Night-time economy"), rate_subject("Violence"), rate_subject("Neighbourhood crime")
    ('night-time economy crime', 'violence', 'neighbourhood crime')
    """
    phrase = type_phrase(crime_type)
    nouns = ("crime", "violence", "asb", "behaviour", "theft", "offences", "burglary", "robbery", "shoplifting",
             "drugs", "order", "arson", "weapons")
    return phrase if any(n in phrase.lower() for n in nouns) else f"{phrase} crime"


def level_sentence(row: Mapping[str, Any], *, name: str, with_change: bool = True) -> str:
    """One sentence for a crime type outside the (overdispersion-adjusted) funnel limits."""
    text = (f"{possessive(name)} {rate_subject(str(row['crime_type']))} rate is "
            f"{relative_to_county(float(row['ratio']))} "
            f"({row['rate_per_1000']:.1f} vs {row['county_rate_per_1000']:.1f} per 1,000 residents), "
            f"{FLAG_LIMIT_TEXT[str(row['flag'])]}")
    if with_change:
        clause = change_clause(row)
        if clause:
            text += "; " + clause
    return text + "."


def change_sentence(row: Mapping[str, Any]) -> str:
    """A change that stands out against the rest of the county while the level does not."""
    pct = float(row["pct_change"])
    return (f"{_sentence_start(rate_subject(str(row['crime_type'])))} {_moved(pct)} against "
            f"{_movement(float(row['rest_pct_change']))} in the rest of the county, a difference that stands out "
            f"({_signed(float(row['pct_change_vs_rest']))} relative to the rest of the county; 95% interval "
            f"{_signed(float(row['pct_change_vs_rest_ci_lower']))} to {_signed(float(row['pct_change_vs_rest_ci_upper']))}).")


def stand_out(rows: pd.DataFrame, *, name: str, with_change: bool = True) -> list[str]:
    """The "what stands out" sentences for one CSP, from its rows of ``outliers_district``.

    ``rows`` should exclude duplicated single-category groups and crime types
    with no records.  Order: 99.8% before 95%, then by |z_adjusted|; then up
    to three changes that stand out on their own (q < 0.05); when nothing is
    outside the limits, the largest differences, described as such.
    """
    out: list[str] = []
    flagged = rows[rows["flag"].isin(list(FLAG_LIMIT_TEXT))].copy()
    flagged["order"] = flagged["flag"].map(FLAG_ORDER)
    flagged["size"] = -flagged["z_adjusted"].abs()
    flagged = flagged.sort_values(["order", "size"])
    for record in flagged.head(MAX_LEVEL_SENTENCES).to_dict("records"):
        out.append(level_sentence(record, name=name, with_change=with_change))
    if len(flagged) > MAX_LEVEL_SENTENCES:
        rest = ", ".join(type_phrase(t) for t in flagged["crime_type"].iloc[MAX_LEVEL_SENTENCES:])
        out.append(f"Also outside the 95% limits: {rest} (see the table).")
    if not len(flagged):
        top = rows.assign(size=-rows["z_adjusted"].abs()).sort_values("size").head(2)
        parts = [f"{type_phrase(str(r['crime_type']))} ({relative_to_county(float(r['ratio']))})"
                 for r in top.to_dict("records")]
        text = (f"Nothing in {name} is outside the 95% limits once the usual spread between the county's CSPs is "
                "allowed for.")
        if parts:
            text += " The largest differences from the county are in " + " and ".join(parts) + "."
        out.append(text)
    if with_change and "change_flag" in rows:
        changes = rows[rows["change_flag"].isin(["up_vs_reference", "down_vs_reference"])
                       & (rows["change_q"] < CHANGE_Q) & ~rows["flag"].isin(list(FLAG_LIMIT_TEXT))]
        changes = changes.sort_values("change_q")
        for record in changes.head(MAX_CHANGE_SENTENCES).to_dict("records"):
            out.append(change_sentence(record))
        if len(changes) > MAX_CHANGE_SENTENCES:
            rest = ", ".join(type_phrase(t) for t in changes["crime_type"].iloc[MAX_CHANGE_SENTENCES:])
            out.append(f"Also changing differently from the rest of the county: {rest} (see the table).")
    return out


# =============================================================================
# Charts (matplotlib, Agg via Figure: no global backend state)
# =============================================================================


def _mpl_text(text: Any) -> str:
    """Data-derived text for matplotlib: ``$`` would start mathtext."""
    return str(text).replace("$", r"\$")


def _svg_uri(fig, *, tight: bool = False) -> str:
    buffer = io.BytesIO()
    # charts place their axes explicitly; "tight" (an extra draw) only where the extent is unknown
    fig.savefig(buffer, format="svg", bbox_inches="tight" if tight else None, pad_inches=0.04,
                metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    # no layout engine (constrained layout costs a draw per chart): axes are placed by hand
    return Figure(figsize=(width, height))


def _rc():
    import matplotlib

    return matplotlib.rc_context({
        "svg.fonttype": "none", "font.family": "DejaVu Sans", "font.size": 7.5, "axes.titlesize": 8.5,
        "axes.spines.top": False, "axes.spines.right": False, "axes.titleweight": "bold", "svg.hashsalt": "hotspots",
        "axes.edgecolor": "#777777", "xtick.color": "#444444", "ytick.color": "#444444",
    })


def funnel_chart(funnel: pd.DataFrame, rows: pd.DataFrame, *, highlight: str, title: str) -> str:
    """Funnel plot for one crime type: rate per 1,000 vs residents, this CSP highlighted.

    Shaded band and dashed lines: 95% limits allowing for overdispersion; solid
    lines: 99.8% allowing for overdispersion; dotted: 99.8% Poisson-only limits.
    """
    with _rc():
        fig = _figure(3.2, 2.35)
        ax = fig.add_axes((0.155, 0.165, 0.815, 0.735))
        x = funnel["population"].to_numpy() / 1000.0
        ax.fill_between(x, funnel["rate_lower_95_adjusted"], funnel["rate_upper_95_adjusted"], color="#ececec", lw=0)
        for side in ("lower", "upper"):
            ax.plot(x, funnel[f"rate_{side}_95_adjusted"], color="#666666", lw=0.8, ls="--")
            ax.plot(x, funnel[f"rate_{side}_998_adjusted"], color="#333333", lw=0.9)
            ax.plot(x, funnel[f"rate_{side}_998"], color="#999999", lw=0.7, ls=":")
        county_rate = float(funnel["county_rate_per_1000"].iloc[0])
        ax.axhline(county_rate, color="#1b6ca8", lw=0.9)
        others = rows[rows["area_code"] != highlight]
        ax.scatter(others["population"] / 1000.0, others["rate_per_1000"], s=13, color="#8a8a8a", zorder=3, lw=0)
        me = rows[rows["area_code"] == highlight]
        if len(me):
            record = me.iloc[0]
            colour = COLOURS.get(str(record["flag"]), HIGHLIGHT)
            if colour in ("#ffffff", "#eeeeee"):
                colour = HIGHLIGHT
            px, py = record["population"] / 1000.0, record["rate_per_1000"]
            ax.scatter([px], [py], s=42, color=colour, edgecolor="black", lw=0.8, zorder=4)
            right = px > x.min() + 0.6 * (x.max() - x.min())
            ax.annotate(_mpl_text(record["area_name"]), (px, py), xytext=(-6 if right else 6, 3),
                        textcoords="offset points", fontsize=7, fontweight="bold", ha="right" if right else "left")
        ax.set_title(_mpl_text(title), loc="left")
        ax.set_xlabel("residents (thousands)")
        ax.set_ylabel("per 1,000 residents")
        ax.set_xlim(x.min(), x.max())
        highest = float(rows["rate_per_1000"].max())
        top = max(highest * 1.12, float(funnel["rate_upper_95_adjusted"].max()) * 1.05)
        top = max(top, min(float(funnel["rate_upper_998_adjusted"].max()) * 1.03, 2.5 * max(highest, county_rate)))
        ax.set_ylim(0, top)
        ax.grid(axis="y", color="#f0f0f0", lw=0.5)
        return _svg_uri(fig)


def trend_chart(monthly: pd.DataFrame, *, area_code: str, county_code: str, types: Sequence[str],
                area_name: str, county_name: str) -> str:
    """Monthly rate per 1,000 residents, this CSP against the county; missing months are gaps, shaded."""
    with _rc():
        fig = _figure(9.6, 2.3)
        ax = fig.add_axes((0.06, 0.11, 0.93, 0.74))
        calendar = sorted(monthly["month"].unique())
        position = {m: i for i, m in enumerate(calendar)}
        styles = [("#1b6ca8", "#8fb3d3"), ("#7b3294", "#c2a5cf")]
        xs = np.arange(len(calendar))
        for crime_type, (dark, light) in zip(types, styles):
            for code, colour, ls, label in ((area_code, dark, "-", area_name), (county_code, light, "--", county_name)):
                series = monthly[(monthly["area_code"] == code) & (monthly["crime_type"] == crime_type)]
                y = series.set_index("month")["rate_per_1000"].reindex(calendar).to_numpy(dtype=float)
                ax.plot(xs, y, color=colour, ls=ls, lw=1.4 if code == area_code else 1.0,
                        label=_mpl_text(f"{label}: {crime_type}"))
                # a month with data between two missing months has no line: show it as a dot
                isolated = np.isfinite(y) & ~np.isfinite(np.r_[np.nan, y[:-1]]) & ~np.isfinite(np.r_[y[1:], np.nan])
                ax.plot(xs[isolated], y[isolated], "o", color=colour, ms=2.5)
        present = monthly.drop_duplicates("month").set_index("month")["present"].reindex(calendar).fillna(False)
        gaps = [position[m] for m in calendar if not bool(present[m])]
        for start, stop in _runs(gaps):
            ax.axvspan(start - 0.5, stop + 0.5, color="#f4f4f4", lw=0, zorder=0)
            if stop - start >= 3:
                ax.text((start + stop) / 2, 0.5, "no data", transform=ax.get_xaxis_transform(), ha="center",
                        va="center", color="#999999", fontsize=7)
        ticks = [i for i, m in enumerate(calendar) if m.endswith("-01")]
        ax.set_xticks(ticks, [calendar[i][:4] for i in ticks])
        ax.set_xlim(-0.5, len(calendar) - 0.5)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("per 1,000 residents per month")
        ax.grid(axis="y", color="#eeeeee", lw=0.5)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.02), ncol=4, frameon=False, fontsize=7,
                  handlelength=2.2, borderaxespad=0.0)
        return _svg_uri(fig)


def _runs(values: Iterable[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for v in sorted(values):
        if runs and v == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], v)
        else:
            runs.append((v, v))
    return runs


def choropleth(areas, rows: pd.DataFrame, *, title: str) -> str:
    """CSP map coloured by rate per 1,000 residents, each labelled with its name and rate.

    Labels sit at each polygon's pole of inaccessibility (so a CSP wrapped
    around another, like Three Rivers around Watford, is labelled in its own
    body) with a white halo so they stay legible on any fill.
    """
    import matplotlib as mpl
    from matplotlib import patheffects
    from shapely.ops import polylabel

    with _rc():
        fig = _figure(5.4, 4.8)
        ax = fig.add_axes((0.0, 0.0, 0.84, 0.93))
        data = areas.merge(rows[["area_code", "rate_per_1000"]], on="area_code", how="left")
        data = data.set_geometry(data.geometry.simplify(60))
        values = data["rate_per_1000"].to_numpy(dtype=float)
        norm = mpl.colors.Normalize(vmin=np.nanmin(values) * 0.95, vmax=np.nanmax(values) * 1.02)
        cmap = mpl.colormaps["YlOrRd"]
        data.plot(ax=ax, color=[cmap(norm(v)) for v in values], edgecolor="white", linewidth=1.0)
        halo = [patheffects.withStroke(linewidth=2.2, foreground="white")]
        anchors, small_ones = [], []
        for record in data.itertuples():
            geometry = record.geometry
            if geometry.geom_type == "MultiPolygon":
                geometry = max(geometry.geoms, key=lambda g: g.area)
            point = polylabel(geometry, tolerance=50)
            label = _mpl_text(f"{record.area_name}\n{record.rate_per_1000:.1f}")
            if geometry.area < SMALL_AREA_M2:
                small_ones.append((label, point))
            else:
                anchors.append((point.x, point.y))
                ax.annotate(label, (point.x, point.y), ha="center", va="center", fontsize=7.2, color="#111111",
                            path_effects=halo)
        # small areas: label outside with a leader line, in the direction farthest from other labels
        minx, miny, maxx, maxy = data.total_bounds
        reach = 0.13 * max(maxx - minx, maxy - miny)
        for label, point in small_ones:
            best, best_gap = None, -1.0
            for angle in np.deg2rad(np.arange(0, 360, 30)):
                cx, cy = point.x + reach * np.cos(angle), point.y + reach * np.sin(angle)
                gap = min((math.hypot(cx - x, cy - y) for x, y in anchors), default=reach)
                if gap > best_gap:
                    best, best_gap = (cx, cy), gap
            anchors.append(best)
            ax.annotate(label, (point.x, point.y), xytext=best, ha="center", va="center", fontsize=7.2,
                        color="#111111", path_effects=halo,
                        arrowprops={"arrowstyle": "-", "color": "#444444", "lw": 0.7, "shrinkA": 6, "shrinkB": 1})
        ax.set_axis_off()
        ax.set_aspect("equal")
        ax.set_title(_mpl_text(title), loc="left")
        cax = fig.add_axes((0.86, 0.25, 0.025, 0.5))
        bar = fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), cax=cax)
        bar.set_label("per 1,000 residents")
        return _svg_uri(fig, tight=True)


# =============================================================================
# Template context
# =============================================================================


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


def _csp_context(code: str, results, rows: pd.DataFrame, meta: Mapping[str, Any]) -> dict[str, Any]:
    name = str(rows["area_name"].iloc[0])
    after = months_label(meta["change_after"]["months"]) if meta.get("change_after") else None
    before = months_label(meta["change_before"]["months"]) if meta.get("change_before") else None
    shown = rows[rows["flag"] != "no_records"]
    sentences = stand_out(shown, name=name, with_change=bool(after and before))
    headline = meta["headline"]
    head = rows[rows["crime_type"] == headline]
    head_row = head.iloc[0].to_dict() if len(head) else None

    context_lines: list[str] = []
    if head_row is not None and math.isfinite(float(head_row.get("harm_ratio", np.nan))):
        context_lines.append(
            f"Weighted by harm, {possessive(name)} {crime_noun(headline)} is {float(head_row['harm_ratio']):.2f} times "
            f"the county level, against {float(head_row['ratio']):.2f} times by count "
            f"(harm weights {meta['harm_version']}; ASB is counted, not weighted).")
    conc = results.concentration
    mine = conc[(conc["area_code"] == code) & (conc["crime_type"] == headline)]
    county_conc = conc[(conc["area_type"] == "force") & (conc["crime_type"] == headline)]
    if len(mine):
        c = mine.iloc[0]
        text = (f"Its busiest 5% of LSOAs ({int(c['lsoas_top5'])} of {int(c['n_lsoas'])}) hold "
                f"{100 * c['share_top5']:.0f}% of its {crime_noun(headline)}, the busiest 10% hold "
                f"{100 * c['share_top10']:.0f}%")
        if len(county_conc):
            k = county_conc.iloc[0]
            text += f" (county-wide: {100 * k['share_top5']:.0f}% and {100 * k['share_top10']:.0f}%)"
        context_lines.append(text + ".")
    lsoa_rows = results.lsoa[(results.lsoa["csp_code"] == code) & (results.lsoa["crime_type"] == headline)]
    if len(lsoa_rows):
        high = int((lsoa_rows["flag"] == "high_998").sum())
        context_lines.append(
            f"{high} of its {len(lsoa_rows)} LSOAs {'is' if high == 1 else 'are'} above the 99.8% limit for "
            f"{type_phrase(headline)} against the county rate, even allowing for overdispersion.")
    if head_row is not None and int(head_row.get("n_peers", 0) or 0) > 0:
        context_lines.append(
            f"Against its peer group ({head_row['peer_group'] or head_row['peer_codes']}), its "
            f"{type_phrase(headline)} rate is {float(head_row['ratio_to_peer_mean']):.2f} times the peer mean "
            f"({float(head_row['rate_per_1000']):.1f} vs {float(head_row['peer_mean_rate_per_1000']):.1f} per 1,000).")

    # funnel plots for what stands out (else the headline type)
    flagged = shown[shown["flag"].isin(list(FLAG_LIMIT_TEXT))].copy()
    flagged["order"] = flagged["flag"].map(FLAG_ORDER)
    flagged["size"] = -flagged["z_adjusted"].abs()
    funnel_types = list(flagged.sort_values(["order", "size"])["crime_type"].head(MAX_FUNNELS))
    funnel_note = ""
    if not funnel_types:
        funnel_types = [headline]
        funnel_note = f"Nothing stands out, so the {type_phrase(headline)} funnel is shown for context."
    funnels = []
    district = results.district
    for crime_type in funnel_types:
        curve = results.funnels[results.funnels["crime_type"] == crime_type]
        points = district[district["crime_type"] == crime_type]
        if len(curve):
            funnels.append({"crime_type": crime_type,
                            "uri": funnel_chart(curve, points, highlight=code, title=crime_type)})

    trend = trend_chart(results.monthly, area_code=code, county_code=meta["county_code"], types=meta["trend_types"],
                        area_name=name, county_name=meta["county_name"])

    table = []
    for record in rows.to_dict("records"):
        table.append({
            "crime_type": record["crime_type"], "is_group": bool(record["is_group"]),
            "count": _int(record["count"]), "rate": _fmt(record["rate_per_1000"]),
            "county_rate": _fmt(record["county_rate_per_1000"]), "ratio": _fmt(record["ratio"], 2),
            "flag": str(record["flag"]), "flag_text": FLAG_TEXT.get(str(record["flag"]), str(record["flag"])),
            "flag_unadjusted": str(record["flag_unadjusted"]),
            "flag_unadjusted_text": FLAG_TEXT.get(str(record["flag_unadjusted"]), str(record["flag_unadjusted"])),
            "small": bool(record["small_numbers"]),
            "pct_change": _signed(float(record["pct_change"])) if "pct_change" in record else "–",
            "rest_pct_change": _signed(float(record["rest_pct_change"])) if "rest_pct_change" in record else "–",
            "vs_rest": _signed(float(record["pct_change_vs_rest"])) if "pct_change_vs_rest" in record else "–",
            "change_flag": str(record.get("change_flag", "") or ""),
            "change_mark": ({"up_vs_reference": "▲", "down_vs_reference": "▼"}.get(str(record.get("change_flag")), "")
                            if float(record.get("change_q", np.nan)) < CHANGE_Q else ""),
            "harm_ratio": _fmt(record["harm_ratio"], 2),
            "peer_ratio": _fmt(record["ratio_to_peer_mean"], 2),
        })

    top = lsoa_rows.sort_values(["count", "area_code"], ascending=[False, True]).head(TOP_LSOAS)
    lsoa_all = results.lsoa[(results.lsoa["csp_code"] == code) & ~results.lsoa["is_group"]]
    biggest = (lsoa_all.sort_values(["count", "crime_type"], ascending=[False, True])
               .drop_duplicates("area_code").set_index("area_code"))
    top_lsoas = []
    for record in top.to_dict("records"):
        big = biggest.loc[record["area_code"]] if record["area_code"] in biggest.index else None
        top_lsoas.append({
            "rank": int(record["rank_in_csp"]), "name": record["area_name"], "code": record["area_code"],
            "count": _int(record["count"]), "rate": _fmt(record["rate_per_1000"]), "ratio": _fmt(record["ratio"], 1),
            "flag": str(record["flag"]), "flag_text": FLAG_TEXT.get(str(record["flag"]), str(record["flag"])),
            "share": _fmt(100 * float(record["share_of_csp"]), 1),
            "biggest": f"{big['crime_type']} ({int(big['count']):,})" if big is not None else "–",
        })

    caveats = []
    small = shown[shown["small_numbers"]]
    if len(small):
        listed = ", ".join(f"{type_phrase(t)} (expected {e:.0f})" for t, e in zip(small["crime_type"], small["expected"]))
        caveats.append(f"Small numbers: {listed}. With fewer than {meta['small_expected']:.0f} crimes expected, a rate "
                       "moves a lot by chance; the funnel limits use exact Poisson probabilities for these.")
    if head_row is not None and after and before and math.isfinite(float(head_row.get("pct_change", np.nan))):
        county_change = results.change[(results.change["area_type"] == "csp") & (results.change["crime_type"] == headline)]
        county_pct = float(county_change["parent_pct_change"].iloc[0]) if len(county_change) else np.nan
        note = meta.get("recording_note") or ("Recorded crime also changes when recording practice changes, not only "
                                              "when crime does.")
        caveats.append(f"Recording changes: {crime_noun(headline)} across {meta['county_name']} changed "
                       f"{_signed(county_pct)} between {before} and {after}. {note} Every change in this report is "
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
        "n_lsoas": len(lsoa_rows), "sentences": sentences, "context_lines": context_lines, "funnels": funnels,
        "funnel_note": funnel_note, "trend": trend, "table": table, "top_lsoas": top_lsoas, "caveats": caveats,
        "has_peers": bool(meta.get("peers_given")),
    }


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def build_context(results) -> dict[str, Any]:
    """Everything the template shows, as plain strings and numbers."""
    meta = results.meta
    district = _display_rows(results.district, meta)
    order = [t for t in meta["crime_types"] if t not in meta.get("single_type_groups", [])]
    csps = (district[["area_code", "area_name"]].drop_duplicates().sort_values("area_name").to_dict("records"))
    after = months_label(meta["change_after"]["months"]) if meta.get("change_after") else None
    before = months_label(meta["change_before"]["months"]) if meta.get("change_before") else None

    cells = district.set_index(["area_code", "crime_type"])
    matrix = []
    for csp in csps:
        row_cells = []
        for crime_type in order:
            key = (csp["area_code"], crime_type)
            if key not in cells.index:
                row_cells.append({"text": "", "flag": "no_records", "title": ""})
                continue
            r = cells.loc[key]
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

    live = district[district["flag"] != "no_records"]
    counts = {
        "cells": len(live),
        "adjusted_95": int((live["flag"] != "within").sum()),
        "adjusted_998": int(live["flag"].isin(["high_998", "low_998"]).sum()),
        "unadjusted_95": int((live["flag_unadjusted"] != "within").sum()),
        "unadjusted_998": int(live["flag_unadjusted"].isin(["high_998", "low_998"]).sum()),
    }
    headline = meta["headline"]
    head_rows = results.district[results.district["crime_type"] == headline]
    choropleth_uri = choropleth(results.areas, head_rows,
                                title=f"{headline}: recorded rate per 1,000 residents, {months_label(meta['period']['months'])}")
    county_change = None
    if after and before:
        cc = results.change[(results.change["area_type"] == "csp") & (results.change["crime_type"] == headline)]
        if len(cc):
            county_change = _signed(float(cc["parent_pct_change"].iloc[0]), 1)

    sections = []
    for csp in csps:
        rows = district[district["area_code"] == csp["area_code"]]
        rows = rows.set_index("crime_type").reindex([t for t in order if t in set(rows["crime_type"])]).reset_index()
        sections.append(_csp_context(csp["area_code"], results, rows, meta))

    od = results.overdispersion
    od_rows = []
    for crime_type in order:
        c = od[(od["area_type"] == "csp") & (od["crime_type"] == crime_type)]
        lsoa_od = od[(od["area_type"] == "lsoa") & (od["crime_type"] == crime_type)]
        if not len(c):
            continue
        c = c.iloc[0]
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
        "order": order, "matrix": matrix, "county_rates": county_rates, "counts": counts, "headline": headline,
        "choropleth": choropleth_uri, "county_change": county_change, "sections": sections,
        "od_rows": od_rows, "adjustment": meta["adjustment"], "harm_rows": harm_rows,
        "harm_version": meta["harm_version"], "sources": sorted((meta.get("sources") or {}).items()),
        "police_files": meta.get("police_files"), "rows_kept": _int(meta.get("rows_kept")),
        "peer_source": meta.get("peer_source") or "", "peers_unmatched": meta.get("peers_unmatched", []),
        "peers_given": bool(meta.get("peers_given")),
        "groups": meta["groups"], "small_expected": _fmt(meta["small_expected"], 0),
        "version": __version__, "generated": dt.datetime.now().strftime("%d %B %Y %H:%M"),
        "colours": COLOURS, "flag_text": FLAG_TEXT,
    }


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("hotspots", "templates"),
        autoescape=True,  # every {{ }} is HTML-escaped, whatever the template file is called
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_report(results) -> str:
    """The CSP outlier report as one self-contained HTML string."""
    return _environment().get_template(TEMPLATE).render(**build_context(results))
