"""The plain data of the hotspots analysis: study areas, inputs and results per study area and selection."""

from __future__ import annotations

import dataclasses
from typing import Any

import geopandas as gpd
import pandas as pd

from hotspots.detect._points import PointCodes

__all__ = ["StudyArea", "Inputs", "SelectionResult", "AreaResult"]


@dataclasses.dataclass
class StudyArea:
    area_type: str  # "county" | "district"
    code: str
    name: str
    geometry: Any
    cell_size: float
    cell_size_reason: str


@dataclasses.dataclass
class Inputs:
    """What the analysis needs from the pipeline context (also built by tests)."""

    points: pd.DataFrame  # x, y, month, crime_type, location (+ datetime)
    current: tuple[str, ...]
    comparison: tuple[str, ...]  # seasonally matched earlier months (may be empty)
    change_current: tuple[str, ...]
    months_all: tuple[str, ...]  # first..last month present, gaps included
    months_present: tuple[str, ...]
    county: StudyArea
    districts: list[StudyArea]
    wards: gpd.GeoDataFrame
    town_centres: gpd.GeoDataFrame
    selections: dict[str, tuple[str, ...]]
    harm_weights: pd.Series
    _codes: Any = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def codes(self) -> PointCodes:
        """The points as arrays and integer codes (built on first use)."""
        if self._codes is None:
            self._codes = PointCodes.of(self.points, self.harm_weights)
        return self._codes


@dataclasses.dataclass
class SelectionResult:
    cells: gpd.GeoDataFrame
    clusters: pd.DataFrame
    cluster_shapes: gpd.GeoDataFrame
    emerging: pd.DataFrame
    stability: dict
    patrol_areas: gpd.GeoDataFrame | None = None
    patrol_counts: pd.DataFrame | None = None
    patrol_hours: pd.DataFrame | None = None
    note: str = ""
    summary: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class AreaResult:
    area: StudyArea
    grid: gpd.GeoDataFrame
    selections: dict[str, SelectionResult]
