"""Naming patrol areas: a stable id from the peak cell, and a name from what is there.

An inspector reads a patrol area's name to know where to go, so the name is
the area's *dominant location*: the police.uk "On or near …" label holding the
most records, whatever its kind.  police.uk labels its anonymised map points
either by street ("On or near Cezanne Road") or by the kind of place at the
point ("On or near Supermarket", "On or near Hospital").  A place of that kind
is named with the commonest street among the area's records
("Supermarket, off Cezanne Road"): a supermarket that holds 283 of an area's
325 records is where the patrol goes, not the street with 20.

Wards and town centres come from the area's own district only: an area at a
district edge is never named after the nearest ward of the next district (or
force).
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import shapely

from hotspots._text import slug

__all__ = ["AreaNamer", "dominant_location", "stable_patrol_id"]


def stable_patrol_id(district_code: str, selection: str, cell_ids: Sequence[str], counts: Sequence[float]) -> str:
    """An id that does not depend on rank or run: district, selection and the area's peak cell.

    The peak (highest-count) cell anchors the id, so an area that grows or
    shrinks by a cell keeps its id; ties go to the smallest cell id.

    >>> stable_patrol_id("E07000103", "ASB", ["sq100_r010_c020", "sq100_r010_c021"], [5, 9])
    'E07000103-asb-sq100_r010_c021'
    """
    order = sorted(zip(cell_ids, counts), key=lambda t: (-float(t[1]), t[0]))
    return f"{district_code}-{slug(selection, empty='x')}-{order[0][0]}"


def dominant_location(ranked: Sequence[tuple[str, int]], is_street: Sequence[bool]) -> str:
    """The name of an area's commonest location, a place kind named with its street.

    Parameters
    ----------
    ranked : sequence of (label, count)
        The area's location labels without "On or near ", most records first.
    is_street : sequence of bool
        Per label: a street (or road number), not a kind of place
        ("Supermarket", "Parking Area") nor a junction.

    Returns
    -------
    str
        The commonest label; when it is a kind of place, followed by
        ", off <commonest street>" (when the area has a street label).
        ``""`` when there are no labels.

    Examples
    --------
    >>> dominant_location([("Supermarket", 283), ("Cezanne Road", 20), ("Monet Close", 9)], [False, True, True])
    'Supermarket, off Cezanne Road'
    >>> dominant_location([("High Street", 90), ("Supermarket", 40)], [True, False])
    'High Street'
    >>> dominant_location([("Hospital", 237)], [False])
    'Hospital'
    """
    if not ranked:
        return ""
    top, _ = ranked[0]
    if is_street[0]:
        return str(top)
    street = next((str(label) for (label, _), s in zip(ranked, is_street) if s), "")
    return f"{top}, off {street}" if street else str(top)


class AreaNamer:
    """The ward containing an area, the town centre it overlaps most, and its name: within one district.

    Parameters
    ----------
    wards : GeoDataFrame
        Ward polygons with ``area_code``, ``area_name`` and (to keep to one
        district) ``district_code``.
    town_centres : GeoDataFrame
        Town-centre polygons with ``area_name``.
    district_code : str, optional
        The district whose areas are named: only its wards are used (all
        wards when None or when ``wards`` has no ``district_code``).
    district_geometry : shapely geometry, optional
        Town centres that do not reach into the district (touching it is not enough) are left out.
    """

    def __init__(self, wards: gpd.GeoDataFrame, town_centres: gpd.GeoDataFrame, *, district_code: str | None = None,
                 district_geometry=None):
        if wards is not None and district_code is not None and "district_code" in wards:
            wards = wards[wards["district_code"].astype(str) == str(district_code)]
        if town_centres is not None and district_geometry is not None and len(town_centres):
            inside = shapely.area(shapely.intersection(np.asarray(town_centres.geometry.values), district_geometry))
            town_centres = town_centres[inside > 0]
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

    def name(self, geom, place: str) -> dict:
        """``ward_code``, ``ward_name``, ``town_centre`` and ``name`` of an area given its dominant location.

        The ward is the one of this district overlapping the area most (the
        nearest of this district's wards when none does).  The name is the
        place, after the town centre when the area lies in one
        ("Watford town centre: High Street"), else followed by the ward
        ("Supermarket, off Cezanne Road (Bedwell)").
        """
        ward_code = ward_name = tc = ""
        if self.wards is not None:
            near = np.flatnonzero(shapely.intersects(self.ward_geoms, geom))
            if len(near):
                overlap = shapely.area(shapely.intersection(self.ward_geoms[near], geom))
                i = near[int(np.argmax(overlap))]
            else:
                i = int(np.nanargmin(shapely.distance(self.ward_geoms, geom)))
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
            name = f"{tc} town centre" + (f": {place}" if place else "")
        elif place:
            name = place + (f" ({ward_name})" if ward_name else "")
        else:
            name = f"{ward_name} ward" if ward_name else ""
        return {"ward_code": ward_code, "ward_name": ward_name, "town_centre": tc, "name": name or "(unnamed)"}
