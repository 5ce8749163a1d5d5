"""Naming patrol areas: a stable id from the peak cell, and a readable name from the ward, town centre and street."""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import shapely

from hotspots._text import slug

__all__ = ["AreaNamer", "stable_patrol_id"]


def stable_patrol_id(district_code: str, selection: str, cell_ids: Sequence[str], counts: Sequence[float]) -> str:
    """An id that does not depend on rank or run: district, selection and the area's peak cell.

    The peak (highest-count) cell anchors the id, so an area that grows or
    shrinks by a cell keeps its id; ties go to the smallest cell id.

    >>> stable_patrol_id("E07000103", "ASB", ["sq100_r010_c020", "sq100_r010_c021"], [5, 9])
    'E07000103-asb-sq100_r010_c021'
    """
    order = sorted(zip(cell_ids, counts), key=lambda t: (-float(t[1]), t[0]))
    return f"{district_code}-{slug(selection, empty='x')}-{order[0][0]}"


class AreaNamer:
    """Ward containing/nearest an area, the town centre it overlaps most, and a readable name."""

    def __init__(self, wards: gpd.GeoDataFrame, town_centres: gpd.GeoDataFrame):
        self.wards = wards if wards is not None and len(wards) else None
        self.town_centres = town_centres if town_centres is not None and len(town_centres) else None
        if self.wards is not None:
            self.ward_geoms = np.asarray(self.wards.geometry.values)
            self.ward_codes = self.wards["area_code"].astype(str).to_numpy()
            self.ward_names = self.wards["area_name"].astype(str).to_numpy()
        if self.town_centres is not None:
            self.tc_geoms = np.asarray(self.town_centres.geometry.values)
            self.tc_areas = shapely.area(self.tc_geoms)
            self.tc_names = self.town_centres["area_name"].astype(str).to_numpy()

    def name(self, geom, street: str) -> dict:
        rep = geom.representative_point()
        ward_code = ward_name = tc = ""
        if self.wards is not None:
            hit = np.flatnonzero(shapely.intersects(self.ward_geoms, rep))
            i = hit[0] if len(hit) else int(np.nanargmin(shapely.distance(self.ward_geoms, rep)))
            ward_code, ward_name = self.ward_codes[i], self.ward_names[i]
        if self.town_centres is not None:
            # only town centres touching the area can overlap it (the others' intersection is empty: area 0)
            overlap = np.zeros(len(self.tc_geoms))
            near = np.flatnonzero(shapely.intersects(self.tc_geoms, geom))
            overlap[near] = shapely.area(shapely.intersection(self.tc_geoms[near], geom))
            best = int(np.argmax(overlap))
            if overlap[best] > 0.2 * geom.area or overlap[best] > 0.5 * self.tc_areas[best]:
                tc = self.tc_names[best]
        if tc:
            name = f"{tc} town centre" + (f" – {street}" if street else "")
        else:
            name = (f"{street}, " if street else "") + (f"{ward_name} ward" if ward_name else "")
        return {"ward_code": ward_code, "ward_name": ward_name, "town_centre": tc, "name": name.strip(", ") or "(unnamed)"}
