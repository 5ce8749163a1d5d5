"""Wording of the CSP outlier report: plain-English sentences from rows already chosen and ordered.

Formatting only: every number comes from the finished outlier tables
(:class:`hotspots.outliers.OutlierResults`), and which rows are told, in what
order, and whether a change "stands out" (``change_notable``) were decided by
:mod:`hotspots.outliers.highlights`; nothing here tests, selects or ranks
anything.  An outlier is a prompt to look, not a verdict, and the wording
says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

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


def signed_pct(pct: float, digits: int = 0) -> str:
    """A percentage with its sign (a true minus), ``0%`` when it rounds to zero, ``–`` when not a number.

    >>> signed_pct(18.2), signed_pct(-4.56, 1), signed_pct(0.2), signed_pct(float("nan"))
    ('+18%', '−4.6%', '0%', '–')
    """
    if not math.isfinite(pct):
        return "–"
    if round(abs(pct), digits) == 0:
        return "0%"
    return f"{pct:+.{digits}f}%".replace("-", "−")


def change_clause(row: Mapping[str, Any]) -> str:
    """``it rose 18% against a rise of 6% in the rest of the county, a difference that stands out``.

    Whether the difference stands out is the row's ``change_notable``
    (:func:`hotspots.outliers.highlights.change_notable`), not decided here.
    """
    pct = float(row.get("pct_change", np.nan))
    rest = float(row.get("rest_pct_change", np.nan))
    if not math.isfinite(pct):
        return ""
    if abs(pct) < 0.5 and math.isfinite(rest) and abs(rest) < 0.5:
        return "it was unchanged, as in the rest of the county"
    text = f"it {_moved(pct)} against {_movement(rest)} in the rest of the county"
    flag = row.get("change_flag", "")
    gap = float(row.get("pct_change_vs_rest", np.nan))
    if flag in ("up_vs_reference", "down_vs_reference"):
        if bool(row.get("change_notable", False)):
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
            f"({signed_pct(float(row['pct_change_vs_rest']))} relative to the rest of the county; 95% interval "
            f"{signed_pct(float(row['pct_change_vs_rest_ci_lower']))} to {signed_pct(float(row['pct_change_vs_rest_ci_upper']))}).")


def stand_out(told: pd.DataFrame | Sequence[Mapping[str, Any]], *, name: str, with_change: bool = True) -> list[str]:
    """The "what stands out" sentences for one CSP, from its rows of ``OutlierResults.highlights``.

    ``told`` is :func:`hotspots.outliers.highlights.stand_out_rows` for the
    CSP, already in telling order: level rows (told one by one while
    ``in_sentence``, the rest listed in one line), else the largest
    differences (described as such), then the changes that stand out on their
    own (only ``with_change``: when the report has a comparison period).
    ``told`` may also be those rows as records (``to_dict("records")``, the
    same sentences): the report reads them once for every CSP.
    """
    records = told.to_dict("records") if isinstance(told, pd.DataFrame) else list(told)
    out: list[str] = []
    levels = [r for r in records if r["kind"] == "level"]
    for record in levels:
        if bool(record["in_sentence"]):
            out.append(level_sentence(record, name=name, with_change=with_change))
    listed = [r["crime_type"] for r in levels if not bool(r["in_sentence"])]
    if listed:
        rest = ", ".join(type_phrase(t) for t in listed)
        out.append(f"Also outside the 95% limits: {rest} (see the table).")
    if not levels:
        largest = [r for r in records if r["kind"] == "largest"]
        parts = [f"{type_phrase(str(r['crime_type']))} ({relative_to_county(float(r['ratio']))})" for r in largest]
        text = (f"Nothing in {name} is outside the 95% limits once the usual spread between the county's CSPs is "
                "allowed for.")
        if parts:
            text += " The largest differences from the county are in " + " and ".join(parts) + "."
        out.append(text)
    if with_change:
        changes = [r for r in records if r["kind"] == "change"]
        for record in changes:
            if bool(record["in_sentence"]):
                out.append(change_sentence(record))
        listed = [r["crime_type"] for r in changes if not bool(r["in_sentence"])]
        if listed:
            rest = ", ".join(type_phrase(t) for t in listed)
            out.append(f"Also changing differently from the rest of the county: {rest} (see the table).")
    return out
