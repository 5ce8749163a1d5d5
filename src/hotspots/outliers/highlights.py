"""What the CSP outlier report tells, decided here: the rows to tell, the funnel plots, the busiest LSOAs.

Every choice behind the report's sentences and short lists is made on the
finished outlier tables by this module, never by the renderer
(:mod:`hotspots.render.outliers_report` words and draws what it is given):

* which CSP x crime-type rows "stand out" and in what order
  (:func:`stand_out_rows`): rates outside the funnel limits allowing for
  overdispersion, 99.8% before 95%, then by ``|z_adjusted|``; when nothing is
  outside them, the two largest differences, told as such; then the changes
  that stand out while the level does not, smallest q-value first;
* when a change against the rest of the county "stands out"
  (:func:`change_notable`: flagged up or down *and* Benjamini-Hochberg
  q-value below :data:`CHANGE_Q`, so one threshold for the sentences and the
  table's ▲/▼ marks);
* which funnel plots each CSP section shows (:func:`funnel_picks`);
* the busiest LSOAs of each CSP with their biggest crime type
  (:func:`busiest_lsoas`) and, per CSP, how many LSOAs are above the 99.8%
  limit (:func:`csp_summary`, which also fixes the order of the sections).

:func:`report_highlights` runs them all; :func:`hotspots.outliers.analyse_outliers`
puts the tables in :class:`~hotspots.outliers.OutlierResults`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hotspots.outliers.columns import FLAG_NO_RECORDS

#: a change "stands out" when its Benjamini-Hochberg q-value is below this (and it is flagged up or down)
CHANGE_Q = 0.05
#: telling order of the flags outside the adjusted funnel limits: 99.8% before 95%
FLAG_ORDER = {"high_998": 0, "low_998": 0, "high_95": 1, "low_95": 1}
#: the change flags of a change that differs from the rest of the county
CHANGED = ("up_vs_reference", "down_vs_reference")
#: level rows told in a sentence of their own (the rest are listed in one line)
MAX_LEVEL_SENTENCES = 6
#: change rows told in a sentence of their own (the rest are listed in one line)
MAX_CHANGE_SENTENCES = 3
#: when nothing is outside the limits, how many of the largest differences are named
LARGEST = 2
#: funnel plots per CSP section
MAX_FUNNELS = 6
#: busiest LSOAs listed per CSP
TOP_LSOAS = 10

#: :func:`stand_out_rows`: the rows to tell, in telling order, with the numbers the sentences quote.
HIGHLIGHT_COLUMNS = [
    "area_code", "order", "kind", "in_sentence", "crime_type", "flag", "z_adjusted", "ratio", "rate_per_1000",
    "county_rate_per_1000", "pct_change", "rest_pct_change", "pct_change_vs_rest", "pct_change_vs_rest_ci_lower",
    "pct_change_vs_rest_ci_upper", "change_flag", "change_q", "change_notable",
]
#: :func:`funnel_picks`: the funnel plots of each CSP section, in order.
FUNNEL_PICK_COLUMNS = ["area_code", "order", "crime_type", "reason"]
#: :func:`notable_changes`: every CSP x crime-type change that stands out.
NOTABLE_CHANGE_COLUMNS = ["area_code", "crime_type", "change_flag", "change_q"]
#: :func:`busiest_lsoas`: the busiest LSOAs of each CSP for one crime type, with their biggest category.
BUSIEST_LSOA_COLUMNS = [
    "csp_code", "order", "area_code", "area_name", "crime_type", "rank_in_csp", "count", "rate_per_1000", "ratio",
    "flag", "share_of_csp", "biggest_type", "biggest_count",
]
#: :func:`csp_summary`: one row per CSP in report order.
CSP_SUMMARY_COLUMNS = ["area_code", "area_name", "order", "crime_type", "n_lsoas", "lsoas_high_998"]


def change_notable(rows: pd.DataFrame) -> pd.Series:
    """Whether each row's change against the rest of the county stands out.

    A change stands out when ``change_flag`` is up or down against the
    reference (its 95% interval excludes no difference) and its
    Benjamini-Hochberg q-value ``change_q`` is below :data:`CHANGE_Q`; a
    flagged change with a larger q-value could be chance given how many
    comparisons are made.

    Parameters
    ----------
    rows : DataFrame
        Rows of ``outliers_district`` (``change_flag``, ``change_q``).

    Returns
    -------
    Series of bool
        Aligned with ``rows``; False where there is no change (NaN q-value)
        or no change columns (no comparison period).

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"change_flag": ["up_vs_reference", "down_vs_reference", "in_line", ""],
    ...                      "change_q": [0.01, 0.2, 0.01, float("nan")]})
    >>> change_notable(rows).tolist()
    [True, False, False, False]
    """
    if "change_flag" not in rows or "change_q" not in rows:
        return pd.Series(False, index=rows.index, dtype=bool)
    q = pd.to_numeric(rows["change_q"], errors="coerce")
    return (rows["change_flag"].isin(CHANGED) & (q < CHANGE_Q)).astype(bool)


def flagged_in_order(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows outside the adjusted funnel limits in telling order: 99.8% before 95%, then by ``|z_adjusted|``.

    Parameters
    ----------
    rows : DataFrame
        Rows of ``outliers_district`` (``flag``, ``z_adjusted``).

    Returns
    -------
    DataFrame
        The flagged rows, reordered (ties keep their input order).

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"crime_type": ["A", "B", "C", "D"], "flag": ["high_95", "within", "low_998", "high_95"],
    ...                      "z_adjusted": [2.1, 0.3, -3.5, -2.6]})
    >>> flagged_in_order(rows)["crime_type"].tolist()
    ['C', 'D', 'A']
    """
    flagged = rows[rows["flag"].isin(list(FLAG_ORDER))]
    order = flagged["flag"].map(FLAG_ORDER)
    size = -flagged["z_adjusted"].abs()
    position = np.lexsort((size.to_numpy(dtype=float), order.to_numpy(dtype=float)))
    return flagged.iloc[position]


def _sized(rows: pd.DataFrame) -> pd.DataFrame:
    """Largest ``|z_adjusted|`` first (ties in input order, NaN last)."""
    size = -rows["z_adjusted"].abs()
    return rows.iloc[np.argsort(size.to_numpy(dtype=float), kind="stable")]


def stand_out_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows one CSP section tells under "What stands out", in telling order.

    Parameters
    ----------
    rows : DataFrame
        One CSP's rows of ``outliers_district`` in the report's crime-type
        order, without duplicated single-category groups; rows with no
        records are left out here.  ``crime_type``, ``flag`` and
        ``z_adjusted`` are needed; other columns of :data:`HIGHLIGHT_COLUMNS`
        that are missing are NaN in the result.

    Returns
    -------
    DataFrame
        :data:`HIGHLIGHT_COLUMNS`.  ``kind`` is ``"level"`` (outside the
        adjusted funnel limits: 99.8% before 95%, then by ``|z_adjusted|``),
        ``"largest"`` (only when no level row: the :data:`LARGEST` largest
        ``|z_adjusted|``, which are *not* outside the limits) or
        ``"change"`` (a change that stands out, :func:`change_notable`, while
        the level is within the limits; smallest q-value first).
        ``in_sentence`` is False for the level rows after the first
        :data:`MAX_LEVEL_SENTENCES` and the change rows after the first
        :data:`MAX_CHANGE_SENTENCES` (listed together, not told one by one).
        ``order`` is the telling order from 0.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"area_code": "X", "crime_type": ["Burglary", "Robbery", "Theft"],
    ...     "flag": ["within", "high_95", "within"], "z_adjusted": [0.4, 2.2, -1.0], "ratio": [1.1, 1.6, 0.8],
    ...     "rate_per_1000": [1.1, 1.6, 0.8], "county_rate_per_1000": 1.0, "pct_change": [30.0, 5.0, -2.0],
    ...     "rest_pct_change": 1.0, "pct_change_vs_rest": [28.7, 4.0, -3.0], "pct_change_vs_rest_ci_lower": 0.0,
    ...     "pct_change_vs_rest_ci_upper": 1.0, "change_q": [0.001, 0.5, 0.9],
    ...     "change_flag": ["up_vs_reference", "in_line", "in_line"]})
    >>> stand_out_rows(rows)[["order", "kind", "crime_type", "change_notable"]].values.tolist()
    [[0, 'level', 'Robbery', False], [1, 'change', 'Burglary', True]]
    """
    rows = rows[rows["flag"] != FLAG_NO_RECORDS]
    parts = []
    flagged = flagged_in_order(rows)
    if len(flagged):
        parts.append(flagged.assign(kind="level", in_sentence=np.arange(len(flagged)) < MAX_LEVEL_SENTENCES))
    else:
        parts.append(_sized(rows).head(LARGEST).assign(kind="largest", in_sentence=True))
    notable = change_notable(rows)
    changes = rows[notable & ~rows["flag"].isin(list(FLAG_ORDER))]
    if len(changes):
        changes = changes.iloc[np.argsort(pd.to_numeric(changes["change_q"]).to_numpy(dtype=float), kind="stable")]
    parts.append(changes.assign(kind="change", in_sentence=np.arange(len(changes)) < MAX_CHANGE_SENTENCES))
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=bool if c in ("in_sentence", "change_notable") else object)
                             for c in HIGHLIGHT_COLUMNS})
    told = pd.concat(parts, ignore_index=True)
    told["order"] = np.arange(len(told), dtype=np.int64)
    told["in_sentence"] = told["in_sentence"].astype(bool)
    told["change_notable"] = change_notable(told)
    return told.reindex(columns=HIGHLIGHT_COLUMNS)


def funnel_picks(rows: pd.DataFrame, *, headline: str) -> pd.DataFrame:
    """The funnel plots one CSP section shows: what stands out, else the headline crime type for context.

    Parameters
    ----------
    rows : DataFrame
        One CSP's rows of ``outliers_district`` (as for :func:`stand_out_rows`).
    headline : str
        The report's headline crime type.

    Returns
    -------
    DataFrame
        :data:`FUNNEL_PICK_COLUMNS`: up to :data:`MAX_FUNNELS` crime types
        outside the adjusted limits in telling order (``reason``
        ``"outside_limits"``), or the headline type alone (``"headline"``).

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"area_code": "X", "crime_type": ["A", "B"], "flag": ["within", "within"],
    ...                      "z_adjusted": [0.1, 0.2]})
    >>> funnel_picks(rows, headline="All crime")[["crime_type", "reason"]].values.tolist()
    [['All crime', 'headline']]
    """
    code = rows["area_code"].iloc[0] if len(rows) else ""
    types = list(flagged_in_order(rows[rows["flag"] != FLAG_NO_RECORDS])["crime_type"].head(MAX_FUNNELS))
    reason = "outside_limits"
    if not types:
        types, reason = [headline], "headline"
    return pd.DataFrame({"area_code": code, "order": np.arange(len(types), dtype=np.int64), "crime_type": types,
                         "reason": reason}, columns=FUNNEL_PICK_COLUMNS)


def notable_changes(rows: pd.DataFrame) -> pd.DataFrame:
    """Every CSP x crime-type change that stands out (:func:`change_notable`), whatever the level.

    Parameters
    ----------
    rows : DataFrame
        Rows of ``outliers_district``.

    Returns
    -------
    DataFrame
        :data:`NOTABLE_CHANGE_COLUMNS`, in the order of ``rows``.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"area_code": ["X", "Y"], "crime_type": "Robbery",
    ...                      "change_flag": ["down_vs_reference", "in_line"], "change_q": [0.02, 0.6]})
    >>> notable_changes(rows).values.tolist()
    [['X', 'Robbery', 'down_vs_reference', 0.02]]
    """
    return rows.loc[change_notable(rows), NOTABLE_CHANGE_COLUMNS].reset_index(drop=True)


def busiest_lsoas(lsoa: pd.DataFrame, *, crime_type: str, top: int = TOP_LSOAS) -> pd.DataFrame:
    """The busiest LSOAs of each CSP for one crime type, each with its biggest single category.

    Parameters
    ----------
    lsoa : DataFrame
        ``outliers_lsoa`` (every crime type: the biggest category is found
        among the rows that are not groups).
    crime_type : str
        The crime type (or group) to rank by, usually the headline type.
    top : int
        LSOAs per CSP.

    Returns
    -------
    DataFrame
        :data:`BUSIEST_LSOA_COLUMNS`: per CSP (``csp_code``), the ``top``
        LSOAs with the most ``crime_type`` (most first; ties by LSOA code),
        ``order`` from 0, and ``biggest_type`` / ``biggest_count``: the
        category with the most records in that LSOA (ties alphabetically;
        ``""`` / NaN when the LSOA has no category rows).  LSOAs outside
        every CSP are left out.

    Examples
    --------
    >>> import pandas as pd
    >>> lsoa = pd.DataFrame({"csp_code": "C", "area_code": ["L1", "L2", "L1", "L2", "L1", "L2"],
    ...     "area_name": ["One", "Two"] * 3, "crime_type": ["All crime"] * 2 + ["Burglary"] * 2 + ["Drugs"] * 2,
    ...     "is_group": [True, True, False, False, False, False], "count": [9, 12, 4, 10, 5, 2],
    ...     "rank_in_csp": [2, 1, 2, 1, 1, 2], "rate_per_1000": 1.0, "ratio": 1.0, "flag": "within",
    ...     "share_of_csp": 0.5})
    >>> busiest_lsoas(lsoa, crime_type="All crime")[["area_code", "count", "biggest_type", "biggest_count"]].values.tolist()
    [['L2', 12, 'Burglary', 10], ['L1', 9, 'Drugs', 5]]
    """
    rows = lsoa[(lsoa["crime_type"] == crime_type) & (lsoa["csp_code"] != "")]
    rows = rows.sort_values(["count", "area_code"], ascending=[False, True])
    chosen = rows.groupby("csp_code", sort=False).head(top).copy()
    chosen["order"] = chosen.groupby("csp_code", sort=False).cumcount().astype(np.int64)
    categories = lsoa[~lsoa["is_group"].astype(bool)]
    biggest = (categories.sort_values(["count", "crime_type"], ascending=[False, True])
               .drop_duplicates("area_code").set_index("area_code"))
    chosen["biggest_type"] = chosen["area_code"].map(biggest["crime_type"]).fillna("").astype(str)
    chosen["biggest_count"] = chosen["area_code"].map(biggest["count"])
    return chosen[BUSIEST_LSOA_COLUMNS].reset_index(drop=True)


def csp_summary(district: pd.DataFrame, lsoa: pd.DataFrame, *, crime_type: str) -> pd.DataFrame:
    """One row per CSP in report order (by name), with how many of its LSOAs are above the 99.8% limit.

    Parameters
    ----------
    district : DataFrame
        ``outliers_district`` rows (the CSPs to report).
    lsoa : DataFrame
        ``outliers_lsoa``.
    crime_type : str
        The crime type the LSOAs are counted for (the headline type).

    Returns
    -------
    DataFrame
        :data:`CSP_SUMMARY_COLUMNS`: ``order`` (sections by CSP name),
        ``n_lsoas`` (LSOAs with a ``crime_type`` row) and ``lsoas_high_998``
        (of those, above the 99.8% limit allowing for overdispersion).

    Examples
    --------
    >>> import pandas as pd
    >>> district = pd.DataFrame({"area_code": ["B", "A"], "area_name": ["Bravo", "Alpha"]})
    >>> lsoa = pd.DataFrame({"csp_code": ["A", "A", "B"], "crime_type": "All crime",
    ...                      "flag": ["high_998", "within", "high_95"]})
    >>> csp_summary(district, lsoa, crime_type="All crime")[["area_code", "n_lsoas", "lsoas_high_998"]].values.tolist()
    [['A', 2, 1], ['B', 1, 0]]
    """
    csps = district[["area_code", "area_name"]].drop_duplicates().sort_values("area_name", kind="stable")
    rows = lsoa[lsoa["crime_type"] == crime_type]
    n = rows.groupby("csp_code").size()
    high = (rows["flag"] == "high_998").groupby(rows["csp_code"]).sum()
    out = csps.reset_index(drop=True)
    out["order"] = np.arange(len(out), dtype=np.int64)
    out["crime_type"] = crime_type
    out["n_lsoas"] = out["area_code"].map(n).fillna(0).astype(np.int64)
    out["lsoas_high_998"] = out["area_code"].map(high).fillna(0).astype(np.int64)
    return out[CSP_SUMMARY_COLUMNS]


def report_highlights(district: pd.DataFrame, lsoa: pd.DataFrame, *, crime_types: Sequence[str],
                      single_type_groups: Sequence[str] = (), headline: str) -> dict[str, pd.DataFrame]:
    """Everything the CSP outlier report selects, for every CSP: see the module docstring.

    Parameters
    ----------
    district, lsoa : DataFrame
        ``outliers_district`` and ``outliers_lsoa``.
    crime_types : sequence of str
        The report's crime-type order (categories and groups).
    single_type_groups : sequence of str
        Groups that are one category (their rows repeat it): not told twice.
    headline : str
        The headline crime type.

    Returns
    -------
    dict of DataFrame
        ``csp_summary`` (:func:`csp_summary`), ``highlights``
        (:func:`stand_out_rows` for each CSP), ``funnel_picks``,
        ``notable_changes`` and ``busiest_lsoas`` (for ``headline``).
    """
    shown = district[~district["crime_type"].isin(list(single_type_groups))]
    order = [t for t in crime_types if t not in set(single_type_groups)]
    summary = csp_summary(shown, lsoa, crime_type=headline)
    slim = shown[[c for c in HIGHLIGHT_COLUMNS if c in shown.columns]]   # the columns told (faster to take)
    by_csp = dict(tuple(slim.groupby("area_code", sort=False)))
    told, picks = [], []
    for code in summary["area_code"]:
        rows = by_csp[code]
        rows = rows.set_index("crime_type").reindex([t for t in order if t in set(rows["crime_type"])]).reset_index()
        told.append(stand_out_rows(rows))
        picks.append(funnel_picks(rows, headline=headline))
    told = [t for t in told if len(t)]
    highlights = (pd.concat(told, ignore_index=True) if told else stand_out_rows(shown.iloc[:0]))
    return {
        "csp_summary": summary,
        "highlights": highlights,
        "funnel_picks": (pd.concat(picks, ignore_index=True) if picks
                         else pd.DataFrame(columns=FUNNEL_PICK_COLUMNS)),
        "notable_changes": notable_changes(shown),
        "busiest_lsoas": busiest_lsoas(lsoa, crime_type=headline),
    }
