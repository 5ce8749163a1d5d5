"""Rates of the crime types and their groups straight from the count table (the ``counts`` stage's shortcut).

:func:`group_rates` is ``rates(add_groups(counts, groups), areas, periods)``:
the same frame, without building the table of group rows (a third larger
than the counts for LSOAs) and factorizing it again.  Each count row adds its
count to its own crime type and to every group that holds that type, per
period; a (area, type or group) row is there when at least one row of the
period contributes to it, as the groupby of :func:`rates` makes it.  Any
input the shortcut does not reproduce exactly goes the long way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hotspots.geo.aggregate import Period, _with_rates, add_groups, rates
from hotspots.schema import COUNT_COLUMNS

__all__ = ["group_rates"]

_AREA_KEYS = ["area_type", "area_code", "area_name"]


def group_rates(counts: pd.DataFrame, groups: dict[str, Sequence[str]], areas: pd.DataFrame,
                periods: Sequence[Period]) -> pd.DataFrame:
    """``rates(add_groups(counts, groups), areas, periods)``, the same frame, faster."""
    fast = _group_rates(counts, groups, areas, periods)
    return fast if fast is not None else rates(add_groups(counts, groups), areas, periods)


def _text_or_int(column: pd.Series) -> bool:
    dtype = column.dtype
    return (isinstance(dtype, pd.StringDtype) or (isinstance(dtype, np.dtype) and dtype.kind in "iu")) \
        and not column.isna().any()


def _group_rates(counts, groups, areas, periods) -> pd.DataFrame | None:
    if (not len(periods) or not len(counts) or list(counts.columns) != COUNT_COLUMNS
            or counts["count"].dtype != np.int64 or not isinstance(counts["crime_type"].dtype, pd.StringDtype)
            or not all(_text_or_int(counts[c]) for c in _AREA_KEYS + ["month", "crime_type"])):
        return None
    count = counts["count"].to_numpy()
    if count.min() < 0 or int(count.sum()) >= 2**53:  # sums added as doubles below: exact below 2**53
        return None
    # areas numbered in the order the groupby of rates sorts them (each key column sorted, in mixed radix)
    combined, radix = np.zeros(len(counts), dtype=np.int64), 1
    for k in reversed(_AREA_KEYS):
        code, values = pd.factorize(counts[k], sort=True)
        if radix * max(len(values), 1) >= 2**62:
            return None
        combined += code.astype(np.int64) * radix
        radix *= max(len(values), 1)
    area, combos = pd.factorize(combined, sort=True)  # areas numbered in sorted order
    first_row = np.empty(len(combos), dtype=np.int64)
    first_row[area[::-1]] = np.arange(len(area) - 1, -1, -1)  # the first row of each area
    # the crime types and group names, sorted as the groupby sorts the crime_type column of add_groups' table
    type_code, type_values = pd.factorize(counts["crime_type"])
    type_values = [str(v) for v in np.asarray(type_values, dtype=object)]
    member = np.zeros((len(type_values), len(groups)), dtype=np.int64)  # type -> the groups holding it
    for g, (name, group) in enumerate(groups.items()):
        group = list(group)
        if not isinstance(name, str) or not all(isinstance(m, str) for m in group):
            return None
        member[:, g] = [v in set(group) for v in type_values]
        if not member[:, g].any():
            return None  # a group without rows: add_groups' empty frame is left to the long way
    label_code, labels = pd.factorize(pd.array(type_values + list(groups), dtype=counts["crime_type"].dtype), sort=True)
    n_areas, n_types, n_labels = len(combos), len(type_values), len(labels)
    cell = area.astype(np.int64) * n_types + type_code
    month_code, month_values = pd.factorize(counts["month"])
    month_values = pd.Series(month_values)
    frames = []
    for p in periods:
        sel = month_values.isin(p.months).to_numpy()[month_code]  # counts["month"].isin(p.months)
        if not sel.any():
            return None  # rates makes an empty frame for the period: the long way
        rows = np.bincount(cell[sel], minlength=n_areas * n_types).reshape(n_areas, n_types)
        sums = np.bincount(cell[sel], weights=count[sel].astype(np.float64), minlength=n_areas * n_types)
        sums = sums.astype(np.int64).reshape(n_areas, n_types)
        table = np.zeros((n_areas, n_labels), dtype=np.int64)
        there = np.zeros((n_areas, n_labels), dtype=np.int64)
        # each type's own column, then each group's (a group named as a type adds into that type's column)
        np.add.at(table.T, label_code[:n_types], sums.T)
        np.add.at(there.T, label_code[:n_types], rows.T)
        np.add.at(table.T, label_code[n_types:], (sums @ member).T)
        np.add.at(there.T, label_code[n_types:], (rows @ member).T)
        present = np.flatnonzero(there.ravel() > 0)
        a, lab = present // n_labels, present % n_labels
        g = pd.DataFrame({k: counts[k].array.take(first_row[a]) for k in _AREA_KEYS})  # as rates takes a row of each key
        g["crime_type"] = labels.take(lab)
        g["count"] = table.ravel()[present]
        g["period"] = p.label
        g["months"] = len(p.months)
        frames.append(g)
    if not frames:
        return None
    out = pd.concat(frames, ignore_index=True)
    return _with_rates(out, areas[["area_code", "population", "area_km2"]].set_index("area_code"))
