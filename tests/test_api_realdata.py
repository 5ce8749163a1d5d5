"""The notebook API on real data: police.uk files to Gi* cells for a real district in a few lines."""

from __future__ import annotations

import pytest

import hotspots

pytestmark = pytest.mark.realdata


def test_five_lines_from_police_uk_files_to_hot_cells(real_data_dir):
    points = hotspots.read_crimes(real_data_dir / "police_uk" / "hertfordshire", first_month="2025-01",
                                  last_month="2025-12")
    districts = hotspots.read_boundary(real_data_dir / "boundaries/ons_via_geographr/lad_may2024_buc_uk.geojson")
    watford = districts[districts["ltla24_name"] == "Watford"]
    cells = hotspots.find_hotspots(points, watford)
    patrols = hotspots.patrol_areas(cells)

    # every 2025 record inside Watford is in exactly one cell
    inside = hotspots.count_in_areas(points, watford.assign(area_code="E07000103", area_name="Watford")[
        ["area_code", "area_name", "geometry"]])
    assert int(cells["count"].sum()) == int(inside["count"].sum()) > 5000
    assert cells.crs.to_epsg() == 27700 and cells.attrs["cell_size"] >= 100
    hot = cells[cells["gi_class"].astype(str).str.startswith("hot")]
    assert len(hot) > 0 and hot["count"].sum() > 0.2 * cells["count"].sum()
    assert len(patrols) >= 1 and patrols["count"].iloc[0] > 0
    # accounting travels with the points: nothing lost silently
    acc = points.attrs["accounting"]
    assert acc["rows_read"] == acc["kept"] + acc["rows_dropped"] == len(points) + sum(acc["dropped"].values())
    assert acc["balanced"]
