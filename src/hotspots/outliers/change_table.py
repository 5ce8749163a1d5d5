"""Change between two periods per area and crime type, judged against the rest of the parent area.

An area's change is compared with the change in the rest of its parent (the
rest of the county for a CSP, the rest of its CSP for an LSOA), which shares
force-wide recording changes: a ratio of rate ratios
(:func:`hotspots.outliers.change.change_vs_reference`) whose standard error is
widened for overdispersion per crime type, as the level analysis does, and
Benjamini-Hochberg q-values across all rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from hotspots.fdr import fdr_bh
from hotspots.geo.aggregate import Period
from hotspots.outliers._areas import area_info
from hotspots.outliers.change import change_vs_reference, rate_ratio_test
from hotspots.outliers.columns import CHANGE_COLUMNS, CHANGE_LEVEL
from hotspots.outliers.dispersion import overdispersion

#: :func:`change_table` column -> its name in the level tables (``outliers_district.csv``)
CHANGE_SUMMARY = {
    "count_before": "change_count_before",
    "count_after": "change_count_after",
    "pct_change": "pct_change",
    "ref_pct_change": "rest_pct_change",
    "pct_change_vs_reference": "pct_change_vs_rest",
    "pct_change_vs_reference_ci_lower": "pct_change_vs_rest_ci_lower",
    "pct_change_vs_reference_ci_upper": "pct_change_vs_rest_ci_upper",
    "q_vs_reference": "change_q",
    "change_flag": "change_flag",
}


def change_table(
    before: pd.DataFrame,
    after: pd.DataFrame,
    areas: pd.DataFrame,
    *,
    before_period: Period,
    after_period: Period,
    parent: pd.Series | None = None,
    parent_names: Mapping[str, str] | None = None,
    reference_label: str = "rest of the county",
    level: float = CHANGE_LEVEL,
) -> pd.DataFrame:
    """Change between two periods per area and crime type, judged against the rest of the parent area.

    Parameters
    ----------
    before, after
        :func:`period_totals` for the comparison period and for the matched
        months of the analysis period.
    areas
        ``area_code, area_name, population``.
    before_period, after_period
        The two periods (for their labels and month counts).
    parent
        area_code -> parent code (an LSOA's CSP).  None: one parent, the
        whole set of areas (the county).
    parent_names
        Parent code -> name, for the ``parent_name`` column.
    reference_label
        What the reference is called in the ``reference`` column.
    level
        Confidence level of the intervals and of the flag.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CHANGE_COLUMNS` (``area_type`` left empty for the caller):

        * ``rate_ratio`` = (after / (population x after months)) /
          (before / (population x before months)), with the exact conditional p
          and the Clopper-Pearson interval that inverts it
          (:func:`hotspots.outliers.change.rate_ratio_test`);
          ``pct_change`` = 100 (rate_ratio - 1);
        * ``ref_count_before/after``: the parent's total minus the area (the
          rest of the county, or of the CSP); ``ref_pct_change`` and
          ``parent_pct_change`` (the whole parent, area included) per month;
        * ``ratio_of_ratios`` = area change / reference change, its interval and
          ``p_vs_reference`` (:func:`hotspots.outliers.change.change_vs_reference`),
          both widened by ``sqrt(phi)`` for the crime type's overdispersion, and
          ``q_vs_reference`` (Benjamini-Hochberg over every row with a p);
        * ``change_flag``: ``up_vs_reference`` when the interval of the ratio of
          ratios lies above 1, ``down_vs_reference`` below 1, ``in_line``
          otherwise, ``not_estimable`` when a count is 0.

    Notes
    -----
    The rate ratio's exact p-value conditions on the total (a binomial test);
    the ratio of ratios is the interaction of a Poisson log-linear model on
    the 2 x 2 table (area / reference x before / after), with a Wald interval
    and p on the log scale (so the flag and the p-value always agree).  Its
    standard error assumes Poisson counts; areas' changes vary more than that
    (mean z² of the CSP ratio of ratios 1.2 to 22.7 by crime type in 2025
    Hertfordshire), so, per crime type, the overdispersion factor phi of the
    unadjusted z (10% winsorised, Spiegelhalter 2005) multiplies the variance
    when the chi-squared test says overdispersed, and the test and interval
    then use t on n - 1 degrees of freedom (crime types with fewer than
    :data:`MIN_ROWS_FOR_DISPERSION` estimable rows are left unadjusted).  The
    estimates per crime type are in ``attrs["change_dispersion"]``.
    Benjamini & Hochberg (1995) for the q-values.

    Examples
    --------
    >>> import pandas as pd
    >>> from hotspots.geo.aggregate import Period
    >>> areas = pd.DataFrame({"area_code": list("ABC"), "area_name": list("abc"), "population": [4000, 3000, 5000]})
    >>> before = pd.DataFrame({"area_code": list("ABC"), "crime_type": "Burglary", "is_group": False,
    ...                        "count": [20, 15, 30]})
    >>> after = before.assign(count=[40, 14, 28])
    >>> out = change_table(before, after, areas, before_period=Period("2024-01", ("2024-01",)),
    ...                    after_period=Period("2025-01", ("2025-01",)))
    >>> out[["area_code", "pct_change", "ref_pct_change", "change_flag"]].round(1)
      area_code  pct_change  ref_pct_change      change_flag
    0         A       100.0            -6.7  up_vs_reference
    1         B        -6.7            36.0          in_line
    2         C        -6.7            54.3          in_line
    """
    info = area_info(areas)
    codes = list(info.index)
    key = ["area_code", "crime_type"]
    b = before.set_index(key)["count"].rename("count_before")
    a = after.set_index(key)["count"].rename("count_after")
    table = pd.concat([b, a], axis=1).fillna(0).reset_index()
    table = table[table["area_code"].isin(codes)]
    groups = pd.concat([before, after])[["crime_type", "is_group"]].drop_duplicates("crime_type").set_index("crime_type")
    table["is_group"] = table["crime_type"].map(groups["is_group"]).astype(bool)
    table["population"] = table["area_code"].map(info["population"])
    if parent is None:
        table["parent_code"] = ""
    else:
        table["parent_code"] = table["area_code"].map(parent).fillna("")
    parent_totals = table.groupby(["parent_code", "crime_type"])[["count_before", "count_after"]].transform("sum")
    table["ref_count_before"] = parent_totals["count_before"] - table["count_before"]
    table["ref_count_after"] = parent_totals["count_after"] - table["count_after"]
    months_before, months_after = len(before_period.months), len(after_period.months)
    rr = rate_ratio_test(table["count_after"].to_numpy(), table["population"].to_numpy() * months_after,
                               table["count_before"].to_numpy(), table["population"].to_numpy() * months_before,
                               level=level)
    counts4 = (table["count_before"].to_numpy(), table["count_after"].to_numpy(),
               table["ref_count_before"].to_numpy(), table["ref_count_after"].to_numpy())
    unadjusted = change_vs_reference(*counts4, level=level)
    phi, df, dispersion = _change_dispersion(unadjusted["z"].to_numpy(), table["crime_type"].to_numpy())
    cv = change_vs_reference(*counts4, level=level, phi=phi, df=df)
    names_of_parents = dict(parent_names or {})
    per_month = months_before / months_after
    with np.errstate(divide="ignore", invalid="ignore"):
        ref_change = table["ref_count_after"].to_numpy() / table["ref_count_before"].to_numpy() * per_month
        parent_change = (parent_totals["count_after"].to_numpy() / parent_totals["count_before"].to_numpy()) * per_month
    out = pd.DataFrame({
        "area_type": "",
        "area_code": table["area_code"].to_numpy(),
        "area_name": table["area_code"].map(info["area_name"]).to_numpy(),
        "parent_code": table["parent_code"].to_numpy(),
        "parent_name": table["parent_code"].map(lambda code: names_of_parents.get(code, "")).to_numpy(),
        "crime_type": table["crime_type"].to_numpy(),
        "is_group": table["is_group"].to_numpy(),
        "before_period": before_period.label,
        "before_months": months_before,
        "after_period": after_period.label,
        "after_months": months_after,
        "count_before": table["count_before"].astype(np.int64).to_numpy(),
        "count_after": table["count_after"].astype(np.int64).to_numpy(),
        "population": table["population"].to_numpy(),
        "rate_before_per_1000": 1000.0 * table["count_before"].to_numpy() / table["population"].to_numpy(),
        "rate_after_per_1000": 1000.0 * table["count_after"].to_numpy() / table["population"].to_numpy(),
        "rate_ratio": rr["rate_ratio"].to_numpy(),
        "rate_ratio_ci_lower": rr["ci_lower"].to_numpy(),
        "rate_ratio_ci_upper": rr["ci_upper"].to_numpy(),
        "rate_ratio_p": rr["p"].to_numpy(),
        "pct_change": 100.0 * (rr["rate_ratio"].to_numpy() - 1.0),
        "reference": reference_label,
        "ref_count_before": table["ref_count_before"].astype(np.int64).to_numpy(),
        "ref_count_after": table["ref_count_after"].astype(np.int64).to_numpy(),
        "ref_pct_change": 100.0 * (ref_change - 1.0),
        "parent_pct_change": 100.0 * (parent_change - 1.0),
        "ratio_of_ratios": cv["ratio_of_ratios"].to_numpy(),
        "ratio_of_ratios_ci_lower": cv["ci_lower"].to_numpy(),
        "ratio_of_ratios_ci_upper": cv["ci_upper"].to_numpy(),
        "pct_change_vs_reference": cv["pct_change_vs_reference"].to_numpy(),
        "pct_change_vs_reference_ci_lower": cv["pct_ci_lower"].to_numpy(),
        "pct_change_vs_reference_ci_upper": cv["pct_ci_upper"].to_numpy(),
        "p_vs_reference": cv["p"].to_numpy(),
        "q_vs_reference": fdr_bh(cv["p"].to_numpy()),
        "reason": cv["reason"].to_numpy(),
    })
    lo, hi = out["ratio_of_ratios_ci_lower"], out["ratio_of_ratios_ci_upper"]
    out["change_flag"] = np.select([out["ratio_of_ratios"].isna(), lo > 1, hi < 1],
                                   ["not_estimable", "up_vs_reference", "down_vs_reference"], "in_line")
    both_zero = (out["count_before"] == 0) & (out["count_after"] == 0)
    out.loc[both_zero & (out["reason"] == ""), "reason"] = "no records in either period"
    result = out[CHANGE_COLUMNS].reset_index(drop=True)
    result.attrs["change_dispersion"] = dispersion
    return result


#: Fewest estimable rows of a crime type for its overdispersion to be estimated (below: phi = 1, stated).
MIN_ROWS_FOR_DISPERSION = 5


def _change_dispersion(z: np.ndarray, crime_type: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, dict]]:
    """Per crime type: the winsorised phi of the unadjusted z of log ratio of ratios, applied when overdispersed.

    Spiegelhalter (2005), section 5, as in the level analysis: ``phi`` is the
    mean squared 10%-winsorised z; it is applied (the standard error times
    ``sqrt(phi)``) only when ``n phi`` exceeds the 95% point of chi-squared
    on ``n - 1`` degrees of freedom; the test then refers ``z / sqrt(phi)``
    to t on ``n - 1`` degrees of freedom (phi is estimated from n areas).
    Returns phi and the degrees of freedom per row (inf: normal) and, per
    crime type, the estimate as a dict (``phi``, ``n``, ``overdispersed``,
    ``applied``, ``mean_z2``).
    """
    phi = np.ones(z.size)
    df = np.full(z.size, np.inf)
    summary: dict[str, dict] = {}
    for crime in pd.unique(crime_type):
        rows = np.flatnonzero(crime_type == crime)
        finite = rows[np.isfinite(z[rows])]
        if finite.size < MIN_ROWS_FOR_DISPERSION:
            summary[str(crime)] = {"phi": float("nan"), "n": int(finite.size), "overdispersed": False,
                                   "applied": 1.0, "mean_z2": float("nan")}
            continue
        od = overdispersion(z[finite], winsor=0.10)
        applied = od.phi if od.overdispersed and od.phi > 1.0 else 1.0
        phi[rows] = applied
        if applied > 1.0:
            df[rows] = od.n - 1
        summary[str(crime)] = {"phi": float(od.phi), "n": int(od.n), "overdispersed": bool(od.overdispersed),
                               "applied": float(applied), "mean_z2": float(np.mean(z[finite] ** 2))}
    return phi, df, summary


def change_summary(change: pd.DataFrame) -> pd.DataFrame:
    """The change columns a level table carries: ``area_code, crime_type`` and :data:`CHANGE_SUMMARY` renamed.

    Parameters
    ----------
    change
        A :func:`change_table`.

    Returns
    -------
    pandas.DataFrame
        ``area_code, crime_type, change_count_before, change_count_after,
        pct_change, rest_pct_change, pct_change_vs_rest,
        pct_change_vs_rest_ci_lower, pct_change_vs_rest_ci_upper, change_q,
        change_flag``, ready to merge into an :func:`hotspots.outliers.outlier_table`.
    """
    summary = change.set_index(["area_code", "crime_type"])[list(CHANGE_SUMMARY)]
    summary.columns = list(CHANGE_SUMMARY.values())
    return summary.reset_index()
