"""Patrol areas are named by what is there, with names from their own district only."""

from __future__ import annotations

import geopandas as gpd
import shapely

from hotspots.detect.naming import AreaNamer, dominant_location


def test_a_dominant_facility_names_the_area_with_its_street():
    # the case: a supermarket holds 283 of 325 records; the commonest *street* holds 20
    ranked = [("Supermarket", 283), ("Cezanne Road", 20), ("Delta Gain", 14), ("Monet Close", 8)]
    assert dominant_location(ranked, [False, True, True, True]) == "Supermarket, off Cezanne Road"
    ranked = [("Hospital", 237), ("Parking Area", 40), ("Banbury Street", 30)]
    assert dominant_location(ranked, [False, False, True]) == "Hospital, off Banbury Street"


def test_a_street_that_holds_most_names_the_area_alone():
    assert dominant_location([("High Street", 90), ("Supermarket", 40)], [True, False]) == "High Street"
    assert dominant_location([("Hospital", 12)], [False]) == "Hospital"
    assert dominant_location([], []) == ""


def _two_districts():
    # district A: x 0..1000; district B: x 1000..2000; one ward each
    wards = gpd.GeoDataFrame({"area_code": ["WA", "WB"], "area_name": ["Alpha", "Beta"], "district_code": ["A", "B"]},
                             geometry=[shapely.box(0, 0, 1000, 1000), shapely.box(1000, 0, 2000, 1000)], crs=27700)
    towns = gpd.GeoDataFrame({"area_name": ["Betaton"]}, geometry=[shapely.box(1000, 0, 1600, 1000)], crs=27700)
    return wards, towns


def test_ward_and_town_centre_come_from_the_areas_own_district():
    wards, towns = _two_districts()
    # an area of district A, mostly across the boundary (a cell grid does not follow it)
    area = shapely.box(900, 400, 1300, 600)
    namer_all = AreaNamer(wards, towns)
    assert namer_all.name(area, "Supermarket, off Cezanne Road")["ward_name"] == "Beta"  # what an unfiltered namer does
    namer = AreaNamer(wards, towns, district_code="A", district_geometry=shapely.box(0, 0, 1000, 1000))
    got = namer.name(area, "Supermarket, off Cezanne Road")
    assert got["ward_code"] == "WA" and got["ward_name"] == "Alpha"
    assert got["town_centre"] == ""  # Betaton lies in district B
    assert got["name"] == "Supermarket, off Cezanne Road (Alpha)"
    # an area outside every ward of its district still gets its own district's nearest ward
    assert namer.name(shapely.box(1500, 400, 1600, 500), "")["name"] == "Alpha ward"


def test_town_centre_leads_the_name_when_the_area_lies_in_it():
    wards, towns = _two_districts()
    namer = AreaNamer(wards, towns, district_code="B", district_geometry=shapely.box(1000, 0, 2000, 1000))
    got = namer.name(shapely.box(1100, 100, 1300, 300), "High Street")
    assert got["town_centre"] == "Betaton" and got["name"] == "Betaton town centre: High Street"
