"""Calendar months as ``"YYYY-MM"`` strings: ranges, runs and readable labels.

The one place that knows how months are written, counted and shown; police.uk
publishes data by month, so every period in the toolkit is a list of these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

#: a police.uk month, ``"2025-01"``
MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

MONTH_ABBR = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def is_month(value: object) -> bool:
    """True for a ``"YYYY-MM"`` string.

    >>> is_month("2025-01"), is_month("2025-13"), is_month(202501)
    (True, False, False)
    """
    return isinstance(value, str) and bool(MONTH_RE.match(value))


def month_number(month: str) -> int:
    """Months since year 0: consecutive months differ by 1.

    >>> month_number("2025-01") - month_number("2024-12")
    1
    """
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def month_from_number(number: int) -> str:
    """Inverse of :func:`month_number`.

    >>> month_from_number(month_number("2024-12") + 1)
    '2025-01'
    """
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


def shift_month(month: str, months: int) -> str:
    """``month`` moved by ``months`` (negative: earlier).

    >>> shift_month("2025-01", -12), shift_month("2024-11", 3)
    ('2024-01', '2025-02')
    """
    return month_from_number(month_number(month) + months)


def month_range(first: str, last: str) -> list[str]:
    """All months from ``first`` to ``last`` inclusive.

    >>> month_range("2024-11", "2025-02")
    ['2024-11', '2024-12', '2025-01', '2025-02']
    """
    return [month_from_number(n) for n in range(month_number(first), month_number(last) + 1)]


def month_runs(months: Iterable[str]) -> list[tuple[str, str]]:
    """Sorted, distinct months as runs of consecutive months ``(first, last)``.

    >>> month_runs(["2024-02", "2021-01", "2021-02", "2024-01", "2025-06"])
    [('2021-01', '2021-02'), ('2024-01', '2024-02'), ('2025-06', '2025-06')]
    """
    runs: list[tuple[str, str]] = []
    for m in sorted(set(months)):
        if runs and month_number(m) == month_number(runs[-1][1]) + 1:
            runs[-1] = (runs[-1][0], m)
        else:
            runs.append((m, m))
    return runs


def month_ranges(months: Iterable[str]) -> str:
    """Compact text for a set of months, runs joined (``"(none)"`` when empty).

    >>> month_ranges(["2024-02", "2021-01", "2021-02", "2024-01", "2025-06"])
    '2021-01..2021-02, 2024-01..2024-02, 2025-06'
    """
    runs = month_runs(months)
    if not runs:
        return "(none)"
    return ", ".join(a if a == b else f"{a}..{b}" for a, b in runs)


def months_label(months: Sequence[str]) -> str:
    """Readable label for a list of months.

    >>> months_label(["2025-01", "2025-02", "2025-03", "2025-04"])
    'Jan–Apr 2025'
    >>> months_label(["2024-11", "2024-12", "2025-01"])
    'Nov 2024–Jan 2025'
    >>> months_label(["2025-03"])
    'Mar 2025'
    >>> months_label(["2025-01", "2025-03"])
    '2 months, Jan–Mar 2025'
    """
    months = sorted(months)
    if not months:
        return "no months"
    first, last = months[0], months[-1]
    contiguous = month_number(last) - month_number(first) + 1 == len(months)
    text = _span_label(first, last)
    return text if contiguous else f"{len(months)} months, {text}"


def human_period(label: str) -> str:
    """A ``"first..last"`` (or one-month) label in words.

    >>> human_period("2024-01..2024-04"), human_period("2024-11..2025-02"), human_period("2025-03")
    ('Jan–Apr 2024', 'Nov 2024–Feb 2025', 'Mar 2025')
    """
    first, _, last = label.partition("..")
    return _span_label(first, last or first)


def _span_label(first: str, last: str) -> str:
    fy, fm = int(first[:4]), int(first[5:7])
    ly, lm = int(last[:4]), int(last[5:7])
    if (fy, fm) == (ly, lm):
        return f"{MONTH_ABBR[fm - 1]} {fy}"
    if fy == ly:
        return f"{MONTH_ABBR[fm - 1]}–{MONTH_ABBR[lm - 1]} {fy}"
    return f"{MONTH_ABBR[fm - 1]} {fy}–{MONTH_ABBR[lm - 1]} {ly}"
