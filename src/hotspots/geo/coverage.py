"""Coverage: what share of the located records each area table counts.

Every record kept in the study area has an LSOA 2021 code (its own, or from
its location when it had none).  An area table *covers* a record when the
record's LSOA maps to one of the table's areas; a record is missed when its
LSOA has no polygon, no ward in the lookup, or no CSP.  :func:`coverage`
measures this per area type and per district and words a warning, naming
what is missing and the fix, for anything below the thresholds.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["coverage", "COVERAGE_MIN", "DISTRICT_AGREEMENT_MIN"]

#: below this share of located records an area table draws a warning
COVERAGE_MIN = 0.99
#: below this share of a district's records (by LSOA code) its district total draws a warning
DISTRICT_AGREEMENT_MIN = 0.995

_FIX = {
    "lsoa": "add the national LSOA 2021 boundaries (boundaries/ons_via_geographr/lsoa21_bsc_ew.geojson.gz) to the data home",
    "ward": "use the national LSOA 2021 → ward lookup (lookups/lookup_lsoa21_ward24_ltla24_ew.csv.gz) and LSOA 2021 boundaries",
    "district": "use the national LSOA 2021 → ward → district lookup (lookups/lookup_lsoa21_ward24_ltla24_ew.csv.gz)",
    "csp": "use the ONS LAD → CSP → PFA lookup (lookups/lookup_ltla24_csp24_pfa24_ew.csv), the LSOA 2011 → old district "
           "lookups and the national LSOA 2021 boundaries",
    "force": "check force_area_code in the config",
}


def coverage(
    lsoa21_code: pd.Series,
    counts: Mapping[str, pd.DataFrame],
    lsoa_to_area: Mapping[str, pd.Series],
    lsoa_district: pd.Series,
    district_names: Mapping[str, str] | None = None,
) -> dict:
    """Share of the located records counted by each area table, and per district.

    Parameters
    ----------
    lsoa21_code : pandas.Series
        The LSOA 2021 code of every record kept in the study area.
    counts : mapping of str to DataFrame
        Count tables (:data:`hotspots.schema.COUNT_COLUMNS`) by area type.
    lsoa_to_area : mapping of str to pandas.Series
        LSOA code -> area code per area type, to name the LSOAs a table misses.
    lsoa_district : pandas.Series
        LSOA code -> district code (the ONS lookup): each district's records by LSOA code.
    district_names : mapping, optional
        District code -> name, for the table and warnings.

    Returns
    -------
    dict
        ``located_records``; ``by_area_type`` (per type: ``counted``,
        ``share``, ``missing_lsoas`` examples); ``by_district`` (rows:
        ``district_code``, ``district_name``, ``records_by_lsoa_code``,
        ``counted_in_district``, ``agreement``); ``warnings`` (sentences, each
        naming what is missing and the fix); the thresholds used.

    Examples
    --------
    >>> import pandas as pd
    >>> codes = pd.Series(["L1", "L1", "L2", "L3"])
    >>> lsoa_counts = pd.DataFrame({"area_code": ["L1", "L2"], "count": [2, 1]})
    >>> district_counts = pd.DataFrame({"area_code": ["D1", "D2"], "count": [3, 1]})
    >>> lsoa_district = pd.Series({"L1": "D1", "L2": "D1", "L3": "D2"})
    >>> cov = coverage(codes, {"lsoa": lsoa_counts, "district": district_counts},
    ...                {"lsoa": pd.Series({"L1": "L1", "L2": "L2"}), "district": lsoa_district}, lsoa_district)
    >>> cov["by_area_type"]["lsoa"]["share"], cov["by_area_type"]["district"]["share"]
    (0.75, 1.0)
    >>> cov["warnings"][0][:60]
    'LSOA table: 1 of 4 located records (25.00%) are in no LSOA, '
    """
    if isinstance(lsoa21_code, pd.Series) and isinstance(lsoa21_code.dtype, pd.StringDtype) \
            and lsoa21_code.dtype.storage == "pyarrow" and lsoa21_code.dtype.na_value is np.nan:
        # what the line below makes of Arrow text (the values through Python objects and back): kept as they are
        codes = pd.Series(lsoa21_code.array)
    else:
        codes = pd.Series(np.asarray(lsoa21_code, dtype=object))
    located = int(len(codes))
    per_lsoa = codes.value_counts()
    out: dict = {"located_records": located, "by_area_type": {}, "by_district": [], "warnings": [],
                 "coverage_min": COVERAGE_MIN, "district_agreement_min": DISTRICT_AGREEMENT_MIN}
    for area_type, table in counts.items():
        counted = int(table["count"].sum())
        share = counted / located if located else float("nan")
        mapping = lsoa_to_area.get(area_type)
        missing: list[str] = []
        if mapping is not None:
            area = per_lsoa.index.to_series().map(mapping)
            lost = per_lsoa[area.isna().to_numpy() | ~area.isin(set(table["area_code"].unique())).to_numpy()]
            missing = [str(c) for c in lost.sort_values(ascending=False).index[:5]]
        out["by_area_type"][area_type] = {"counted": counted, "share": share, "missing_lsoas": missing}
        if located and share < COVERAGE_MIN:
            label = area_type.upper() if area_type in ("lsoa", "csp") else area_type
            out["warnings"].append(
                f"{label} table: {located - counted:,} of {located:,} located records ({1 - share:.2%}) are in no "
                f"{label}" + (f", e.g. records in LSOA(s) {', '.join(missing)}" if missing else "")
                + f"; to fix: {_FIX.get(area_type, 'check the boundary files')}")
    if "district" in counts:
        names = dict(district_names or {})
        # the records per district by their code: each distinct code's count mapped, not every record
        # (``codes.map(lsoa_district).value_counts()``, which drops codes without a district as this does)
        code_district = pd.Series(per_lsoa.index).map(lsoa_district)
        by_code = pd.Series(per_lsoa.to_numpy()).groupby(code_district.to_numpy(dtype=object)).sum()
        counted = counts["district"].groupby("area_code")["count"].sum()
        for district in sorted(set(lsoa_district)):
            n = int(by_code.get(district, 0))
            c = int(counted.get(district, 0))
            agreement = min(c, n) / max(c, n) if max(c, n) else 1.0
            out["by_district"].append({"district_code": district, "district_name": names.get(district, ""),
                                       "records_by_lsoa_code": n, "counted_in_district": c, "agreement": agreement})
            if agreement < DISTRICT_AGREEMENT_MIN:
                out["warnings"].append(
                    f"district {district} {names.get(district, '')}: its total ({c:,}) agrees with the {n:,} records whose "
                    f"published LSOA is in it for only {agreement:.2%}; to fix: {_FIX['district']}")
    return out
