"""Places for the CSP report's LSOAs: the ward each lies in, and simplified outlines for the small maps.

An LSOA code ("Broxbourne 008B E01023303") tells an analyst nothing about
where it is; the ward it lies in (ONS LSOA 2021 → ward lookup) does.  The
report's small maps draw each CSP's LSOAs with the busiest numbered.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

__all__ = ["lsoa_places"]

#: outline simplification for the small LSOA maps (metres; the maps are a few centimetres wide)
SIMPLIFY_M = 25.0


def lsoa_places(geography) -> gpd.GeoDataFrame | None:
    """LSOA code, name, ward name, district code and a simplified outline, for every LSOA of the force.

    None when the data home has no LSOA boundaries or ward lookup (the report then shows codes only).
    """
    try:
        lsoas = geography.lsoa21
        lookup = geography.lsoa_ward_lookup.drop_duplicates("lsoa21_code").set_index("lsoa21_code")
    except Exception:  # noqa: BLE001 - the report's place names are an aid; its numbers do not depend on them
        return None
    ward = lsoas["area_code"].map(lookup["ward24_name"]) if "ward24_name" in lookup else None
    geoms = shapely.simplify(np.asarray(lsoas.geometry.values), SIMPLIFY_M, preserve_topology=True)
    return gpd.GeoDataFrame({"area_code": lsoas["area_code"].to_numpy(), "area_name": lsoas["area_name"].to_numpy(),
                             "ward_name": ward.fillna("").to_numpy() if ward is not None else "",
                             "district_code": lsoas["district_code"].to_numpy()},
                            geometry=geoms, crs=lsoas.crs)
