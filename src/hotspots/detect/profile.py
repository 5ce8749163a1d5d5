"""Counts by area x weekday x hour, for records that carry a time of day."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hotspots._errors import ValidationError

__all__ = ["hour_of_week_profile"]

_DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def hour_of_week_profile(timestamps: Any, area_ids: Any) -> pd.DataFrame:
    """Counts by area x weekday x hour, for records that carry a time of day.

    police.uk data has only the month; this is for force extracts with
    timestamps.  Time-zone-aware timestamps are converted to Europe/London;
    naive ones are taken as UK local time.  Records without a timestamp or an
    area are not counted, and how many were left out is reported in
    ``attrs["dropped"]``.  ``attrs["n_exact_midnight"]`` counts timestamps at
    exactly 00:00:00, often a placeholder for an unknown time: a spike at
    hour 0 should be read with that in mind.

    Returns
    -------
    DataFrame
        Every area x 168 hours of the week (zeros included), sorted:
        ``area_id, weekday`` (0 = Monday), ``day`` ("Mon"...), ``hour`` (0-23),
        ``hour_of_week`` (0-167, Monday 00:00 = 0), ``count``.

    Examples
    --------
    >>> ts = pd.to_datetime(["2024-03-04 22:15", "2024-03-04 22:50", "2024-03-10 03:00"])
    >>> out = hour_of_week_profile(ts, ["A", "A", "B"])
    >>> len(out), int(out["count"].sum())
    (336, 3)
    >>> out.loc[out["count"] > 0, ["area_id", "day", "hour", "count"]].values.tolist()
    [['A', 'Mon', 22, 2], ['B', 'Sun', 3, 1]]
    """
    stamps = pd.Series(pd.to_datetime(pd.Series(timestamps).reset_index(drop=True), errors="coerce"))
    areas = pd.Series(area_ids).reset_index(drop=True)
    if len(stamps) != len(areas):
        raise ValidationError(f"timestamps ({len(stamps)}) and area_ids ({len(areas)}) differ in length",
                              hint="pass one area id per record")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("Europe/London")
    missing_time = stamps.isna()
    missing_area = areas.isna() & ~missing_time
    keep = ~missing_time & ~areas.isna()
    kept = stamps[keep]
    frame = pd.DataFrame({
        "area_id": areas[keep].to_numpy(),
        "weekday": kept.dt.day_of_week.to_numpy(np.int64),
        "hour": kept.dt.hour.to_numpy(np.int64),
    })
    counts = frame.groupby(["area_id", "weekday", "hour"]).size()
    area_values = pd.unique(areas[keep])
    try:
        area_values = np.sort(area_values)
    except TypeError:
        pass
    full = pd.MultiIndex.from_product([area_values, range(7), range(24)], names=["area_id", "weekday", "hour"])
    out = counts.reindex(full, fill_value=0).rename("count").reset_index()
    out["count"] = out["count"].astype(np.int64)
    out.insert(2, "day", [_DAY_NAMES[d] for d in out["weekday"]])
    out.insert(4, "hour_of_week", out["weekday"] * 24 + out["hour"])
    out.attrs["dropped"] = {"missing_timestamp": int(missing_time.sum()), "missing_area": int(missing_area.sum())}
    midnight = kept.dt.hour.eq(0) & kept.dt.minute.eq(0) & kept.dt.second.eq(0)
    out.attrs["n_exact_midnight"] = int(midnight.sum())
    return out
