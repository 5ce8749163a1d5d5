"""Tables that put an area's level in context: harm, concentration and the monthly series.

* :func:`harm_table`: harm-weighted counts and rates (:mod:`hotspots.harm`;
  ASB is counted, never weighted);
* :func:`concentration_table`: share of each CSP's crime in its busiest 5% and
  10% of LSOAs, Gini and chance-corrected Gini;
* :func:`monthly_rates`: monthly counts and rates per area for trend charts,
  missing months kept as gaps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hotspots.geo.aggregate import add_groups
from hotspots.harm import load_harm_weights
from hotspots.months import month_range
from hotspots.outliers._areas import area_info
from hotspots.outliers.columns import (
    GINI_SEED,
    GINI_SIMULATIONS,
    MONTHLY_COLUMNS,
    TOP_SHARES,
)
from hotspots.concentration import _top_shares, concentration, gini_poisson_adjusted


def harm_table(
    totals: pd.DataFrame,
    areas: pd.DataFrame,
    *,
    groups: Mapping[str, Sequence[str]] | None = None,
    weights: pd.Series | None = None,
) -> pd.DataFrame:
    """Harm-weighted counts and rates per area and crime type (ASB counted, never weighted).

    Parameters
    ----------
    totals
        :func:`period_totals` (categories and groups).
    areas
        ``area_code, population``.
    groups
        Crime-type groups: a group's harm is the sum of its members' harm
        (members without a weight, such as ASB, add nothing).
    weights
        Harm weight per category (:func:`hotspots.harm.load_harm_weights`).

    Returns
    -------
    pandas.DataFrame
        ``area_code, crime_type, harm`` (count x weight, summed over a group's
        members), ``harm_per_1000`` (harm per 1,000 residents),
        ``county_harm_per_1000`` (all areas pooled), ``harm_ratio``
        (harm_per_1000 / county_harm_per_1000; for a single category it equals
        the count ratio, since the weight cancels).  NaN where no member has a
        weight (ASB).  ``attrs["unweighted"]``: crime types without a weight.

    Notes
    -----
    The shipped weights are indicative category-level averages of the ONS
    Crime Severity Score offence weights (average sentencing days per
    offence); see :mod:`hotspots.harm` for their derivation and limits.

    Examples
    --------
    >>> import pandas as pd
    >>> areas = pd.DataFrame({"area_code": ["A", "B"], "area_name": ["Ash", "Birch"], "population": [4000, 3000]})
    >>> totals = pd.DataFrame({"area_code": ["A", "B"], "crime_type": "Burglary", "is_group": False, "count": [8, 3]})
    >>> harm_table(totals, areas, weights=pd.Series({"Burglary": 350.0})).round(2)
      area_code crime_type    harm  harm_per_1000  county_harm_per_1000  harm_ratio
    0         A   Burglary  2800.0          700.0                 550.0        1.27
    1         B   Burglary  1050.0          350.0                 550.0        0.64
    """
    weights = load_harm_weights() if weights is None else weights
    groups = dict(groups or {})
    info = area_info(areas)
    types = totals[~totals["is_group"]]
    weight = types["crime_type"].map(weights).astype(float)
    harm_types = types.assign(harm=types["count"].to_numpy() * weight.to_numpy())[["area_code", "crime_type", "harm"]]
    frames = [harm_types]
    for name, members in groups.items():
        sub = harm_types[harm_types["crime_type"].isin(list(members))]
        g = sub.groupby("area_code")["harm"].sum(min_count=1).reindex(info.index).rename("harm").reset_index()
        g["crime_type"] = name
        frames.append(g[["area_code", "crime_type", "harm"]])
    out = pd.concat(frames, ignore_index=True)
    out["population"] = out["area_code"].map(info["population"])
    out["harm_per_1000"] = 1000.0 * out["harm"] / out["population"]
    county = out.groupby("crime_type", sort=False).agg(harm=("harm", lambda s: s.sum(min_count=1)),
                                                       population=("population", "sum"))
    county_rate = 1000.0 * county["harm"] / county["population"]
    out["county_harm_per_1000"] = out["crime_type"].map(county_rate)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["harm_ratio"] = np.where(out["county_harm_per_1000"] > 0,
                                     out["harm_per_1000"] / out["county_harm_per_1000"], np.nan)
    out.attrs["unweighted"] = sorted(set(types.loc[weight.isna().to_numpy(), "crime_type"]))
    return out[["area_code", "crime_type", "harm", "harm_per_1000", "county_harm_per_1000", "harm_ratio"]]


def _share_label(share: float) -> str:
    return f"top{share * 100:g}".replace(".", "_")


def concentration_table(
    lsoa_totals: pd.DataFrame,
    lsoa_parent: pd.Series,
    parent_names: Mapping[str, str],
    *,
    top_shares: Sequence[float] = TOP_SHARES,
    county: tuple[str, str] | None = None,
    simulations: int = GINI_SIMULATIONS,
    seed: int = GINI_SEED,
) -> pd.DataFrame:
    """How concentrated each CSP's crime is in its busiest LSOAs.

    Parameters
    ----------
    lsoa_totals
        :func:`period_totals` of LSOAs (zeros included: quiet LSOAs are part of
        the denominator).
    lsoa_parent
        LSOA code -> CSP code.
    parent_names
        CSP code -> name.
    top_shares
        Fractions of LSOAs (default the top 5% and 10%).
    county
        ``(code, name)``: add a row for all LSOAs together.
    simulations, seed
        For the chance-corrected Gini (:func:`hotspots.concentration.gini_poisson_adjusted`).

    Returns
    -------
    pandas.DataFrame
        ``area_type`` (csp, or force for the county row), ``area_code,
        area_name, crime_type, is_group, n_lsoas, count`` (LSOA-based total),
        per share ``lsoas_topN`` (ceil(N% x n_lsoas)), ``count_topN``,
        ``share_topN`` (:func:`hotspots.concentration.concentration`), then ``gini``,
        ``gini_random_mean`` (the Gini of the same number of crimes spread at
        random) and ``gini_adjusted`` ((gini - random) / (1 - random)).

    Notes
    -----
    Weisburd (2015) "The law of crime concentration and the criminology of
    place", Criminology 53:133-157; Bernasco & Steenbeek (2017) "More places
    than crimes: implications for evaluating the law of crime concentration
    at place", Journal of Quantitative Criminology 33:451-467.

    Examples
    --------
    >>> import pandas as pd
    >>> lsoas = pd.DataFrame({"area_code": ["L1", "L2", "L3", "L4", "L5", "L6"], "crime_type": "Burglary",
    ...                       "is_group": False, "count": [10, 0, 1, 4, 4, 4]})
    >>> parent = pd.Series({"L1": "X", "L2": "X", "L3": "X", "L4": "Y", "L5": "Y", "L6": "Y"})
    >>> table = concentration_table(lsoas, parent, {"X": "Xville", "Y": "Yton"}, top_shares=(0.34,))
    >>> table[["area_name", "n_lsoas", "count", "lsoas_top34", "share_top34", "gini"]].round(3)
      area_name  n_lsoas  count  lsoas_top34  share_top34   gini
    0    Xville        3     11            2        1.000  0.606
    1      Yton        3     12            2        0.667  0.000
    """
    data = lsoa_totals.assign(parent=lsoa_totals["area_code"].map(lsoa_parent))
    data = data[data["parent"].notna()]
    units: list[tuple[str, str, str, pd.DataFrame]] = [
        ("csp", code, parent_names.get(code, code), sub) for code, sub in data.groupby("parent", sort=True)
    ]
    if county is not None:
        units.append(("force", county[0], county[1], data))
    counts = data["count"].to_numpy(dtype=float)
    plain = (bool(len(counts)) and bool(np.isfinite(counts).all() and (counts >= 0).all())
             and not isinstance(data["crime_type"].dtype, pd.CategoricalDtype))
    rows = []
    for area_type, code, name, sub in units:
        parts = _by_crime_type(sub) if plain else (
            (crime_type, part["count"].to_numpy(dtype=float), part["is_group"].iloc[0])
            for crime_type, part in sub.groupby("crime_type", sort=False))
        for crime_type, values, is_group in parts:
            row: dict[str, Any] = {"area_type": area_type, "area_code": code, "area_name": name,
                                   "crime_type": crime_type, "is_group": bool(is_group),
                                   "n_lsoas": int(values.size), "count": int(values.sum())}
            if plain:  # counts checked once above: concentration's columns without a frame per group
                in_top = zip(*_top_shares(values, tuple(top_shares)))
            else:  # concentration checks (and reports) each group's counts
                conc = concentration(values, top_shares=tuple(top_shares))
                in_top = zip(conc["units_in_top"].to_numpy(), conc["count_in_top"].to_numpy(),
                             conc["share_of_total"].to_numpy())
            for share, (units_in_top, count, share_of_total) in zip(top_shares, in_top):
                label = _share_label(share)
                row[f"lsoas_{label}"] = int(units_in_top)
                row[f"count_{label}"] = int(count)
                row[f"share_{label}"] = float(share_of_total)
            gb = gini_poisson_adjusted(values.astype(np.int64), simulations=simulations, seed=seed)
            row.update(gini=gb.gini, gini_random_mean=gb.gini_random_mean, gini_adjusted=gb.gini_adjusted)
            rows.append(row)
    out = pd.DataFrame(rows)
    share_cols = [c for s in top_shares for c in (f"lsoas_{_share_label(s)}", f"count_{_share_label(s)}",
                                                   f"share_{_share_label(s)}")]
    return out[["area_type", "area_code", "area_name", "crime_type", "is_group", "n_lsoas", "count", *share_cols,
                "gini", "gini_random_mean", "gini_adjusted"]]


def _by_crime_type(sub: pd.DataFrame):
    """``sub.groupby("crime_type", sort=False)`` as (crime type, counts as float, first is_group), in plain numpy.

    Groups in order of first appearance and rows in their order within each
    group, as that groupby gives them; rows without a crime type are left out,
    as it leaves them out.
    """
    codes, names = pd.factorize(sub["crime_type"], sort=False)
    counts = sub["count"].to_numpy(dtype=float)
    is_group = sub["is_group"].to_numpy()
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    for k, name in enumerate(names):
        rows = order[bounds[k]:bounds[k + 1]]
        yield name, counts[rows], is_group[rows[0]]


def monthly_rates(
    counts: pd.DataFrame,
    areas: pd.DataFrame,
    *,
    months_present: Sequence[str],
    groups: Mapping[str, Sequence[str]] | None = None,
    crime_types: Sequence[str] | None = None,
    county: tuple[str, str] | None = None,
) -> pd.DataFrame:
    """Monthly counts and rates per area, every calendar month from the first to the last present.

    Parameters
    ----------
    counts
        Long counts by area x month x crime type (:data:`hotspots.schema.COUNT_COLUMNS`).
    areas
        ``area_code, area_name, population``.
    months_present
        Months with data; the calendar runs from the first to the last.
    groups
        Crime-type groups, added as extra crime types.
    crime_types
        Categories or group names to keep (default all).
    county
        ``(code, name)``: add the total of all areas as one more area.

    Returns
    -------
    pandas.DataFrame
        :data:`MONTHLY_COLUMNS`.  Months missing from the data keep a row with
        ``count``/``rate_per_1000`` NaN and ``present = False``, so a chart
        draws a gap instead of a line across them.

    Examples
    --------
    >>> import pandas as pd
    >>> areas = pd.DataFrame({"area_code": ["A"], "area_name": ["Ash"], "population": [4000]})
    >>> counts = pd.DataFrame({"area_code": "A", "month": ["2025-01", "2025-03"], "crime_type": "Burglary",
    ...                        "count": [3, 5]})
    >>> monthly_rates(counts, areas, months_present=["2025-01", "2025-03"])[["month", "count", "rate_per_1000", "present"]]
         month  count  rate_per_1000  present
    0  2025-01    3.0           0.75     True
    1  2025-02    NaN            NaN    False
    2  2025-03    5.0           1.25     True
    """
    groups = dict(groups or {})
    info = area_info(areas)
    present = sorted(set(months_present))
    calendar = month_range(present[0], present[-1])
    long = add_groups(counts[["area_code", "month", "crime_type", "count"]], groups)
    if crime_types is not None:
        long = long[long["crime_type"].isin(list(crime_types))]
    long = long[long["area_code"].isin(info.index)]
    long = long.groupby(["area_code", "crime_type", "month"])["count"].sum().astype(float).reset_index()
    if county is not None:
        tot = long.groupby(["crime_type", "month"])["count"].sum().reset_index().assign(area_code=county[0])
        long = pd.concat([long, tot], ignore_index=True)
    names = info["area_name"].to_dict()
    population = info["population"].to_dict()
    if county is not None:
        names[county[0]] = county[1]
        population[county[0]] = float(info["population"].sum())
    codes = list(info.index) + ([county[0]] if county is not None else [])
    types = list(dict.fromkeys(long["crime_type"]))
    full = pd.MultiIndex.from_product([codes, types, calendar], names=["area_code", "crime_type", "month"])
    out = long.set_index(["area_code", "crime_type", "month"])["count"].reindex(full).reset_index()
    out["present"] = out["month"].isin(present)
    out.loc[~out["present"], "count"] = np.nan
    out.loc[out["present"], "count"] = out.loc[out["present"], "count"].fillna(0.0)
    out["area_name"] = out["area_code"].map(names)
    out["population"] = out["area_code"].map(population)
    out["rate_per_1000"] = 1000.0 * out["count"] / out["population"]
    return out[MONTHLY_COLUMNS]
