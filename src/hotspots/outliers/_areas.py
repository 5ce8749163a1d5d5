"""The area table every outlier table starts from: code, name and residents."""

from __future__ import annotations

import pandas as pd

from hotspots._errors import ValidationError


def area_info(areas: pd.DataFrame) -> pd.DataFrame:
    """``area_name, population`` indexed by ``area_code``; every population must be > 0, codes unique."""
    info = pd.DataFrame(areas[["area_code", "area_name", "population"]]).copy()
    info["population"] = pd.to_numeric(info["population"], errors="coerce").astype(float)
    bad = info[~(info["population"] > 0)]
    if len(bad):
        listed = ", ".join(f"{c} ({p})" for c, p in zip(bad["area_code"].head(5), bad["population"].head(5)))
        raise ValidationError(
            f"{len(bad)} area(s) have no resident population: {listed}",
            hint="rates per 1,000 residents need Census 2021 population for every area; check the population file",
        )
    if info["area_code"].duplicated().any():
        raise ValidationError("area codes repeat in the area table", hint="pass one row per area")
    return info.set_index("area_code")
