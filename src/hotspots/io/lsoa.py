"""LSOA vintages: fill each point's 2021 LSOA code from the code police.uk published.

police.uk publishes 2011 LSOA codes for older months and 2021 codes for newer
ones; :func:`harmonise_lsoa` puts every point on the 2021 geography.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["harmonise_lsoa"]


def harmonise_lsoa(
    points: pd.DataFrame,
    lookup: pd.DataFrame,
    *,
    lsoa21_polygons=None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Fill ``lsoa21_code`` from the published LSOA code (2011 or 2021 vintage).

    Parameters
    ----------
    points : pandas.DataFrame
        Points with ``lsoa_code`` (as published) and ``x``/``y`` (EPSG:27700).
    lookup : pandas.DataFrame
        Columns ``lsoa11_code``, ``lsoa21_code``: the ONS LSOA11 -> LSOA21
        best-fit lookup, one row per pair.
    lsoa21_polygons : GeoDataFrame, optional
        LSOA 2021 polygons with ``lsoa21_code`` in EPSG:27700, used to resolve
        a 2011 LSOA split into several 2021 LSOAs by the point's position.

    Returns
    -------
    points : pandas.DataFrame
        A copy of ``points`` with ``lsoa21_code`` filled (``""`` for a blank
        or unknown code).
    stats : dict of str to int
        Points by method: ``published_2021``, ``mapped_2011_one_to_one``,
        ``split_by_location``, ``split_lowest_code``, ``unknown_code``, ``blank``.

    Notes
    -----
    2021 codes pass through.  A 2011 LSOA split into several 2021 LSOAs goes
    to the candidate containing the point; without polygons, or when the
    point lies in none of the candidates, the candidate with the lowest code
    is used and counted.

    Examples
    --------
    >>> import pandas as pd
    >>> lookup = pd.DataFrame({"lsoa11_code": ["E01000001", "E01000002", "E01000002"],
    ...                        "lsoa21_code": ["E01000001", "E01035001", "E01035002"]})
    >>> pts = pd.DataFrame({"lsoa_code": ["E01000001", "E01000002", "", "E01035002"],
    ...                     "x": 0.0, "y": 0.0})
    >>> out, stats = harmonise_lsoa(pts, lookup)
    >>> out["lsoa21_code"].tolist()
    ['E01000001', 'E01035001', '', 'E01035002']
    >>> stats["split_lowest_code"], stats["blank"], stats["published_2021"]
    (1, 1, 2)
    """
    pts = points.copy(deep=False)  # copy-on-write: adding lsoa21_code below leaves ``points`` untouched
    if not pts.index.is_unique:  # (labels are looked up below) worked on positions, the column put back in place
        done, stats = harmonise_lsoa(points.reset_index(drop=True), lookup, lsoa21_polygons=lsoa21_polygons)
        pts["lsoa21_code"] = pd.Series(done["lsoa21_code"].to_numpy(), index=pts.index, dtype=done["lsoa21_code"].dtype)
        return pts, stats
    # every step but the split by location is a function of the code alone: done once per distinct code
    # (a few thousand) and spread to the points by their number
    number, distinct = pd.factorize(pts["lsoa_code"].astype(str))
    values = [v.strip() for v in np.asarray(distinct, dtype=object)] + [np.nan]  # number -1 (missing): the NaN
    code = pd.Series(values, dtype=object)
    out, split, stats, lk, n_targets = _by_code(code, lookup)
    counts = np.bincount(np.where(number < 0, len(values) - 1, number), minlength=len(values))  # points per code
    stats = {k: int(counts[v].sum()) for k, v in stats.items()}
    stats["split_by_location"] = stats["split_lowest_code"] = 0
    stats = {k: stats[k] for k in STAT_NAMES}
    point_out = out.to_numpy()[number]
    at = np.flatnonzero(split.to_numpy()[number])
    if len(at):
        split_idx = pts.index[at]
        chosen = _split_codes(pts, pd.Series(code.to_numpy()[number[at]], index=split_idx), split_idx, lk, lsoa21_polygons, stats)
        point_out[at] = chosen.to_numpy()
    pts["lsoa21_code"] = pd.Series(point_out, index=pts.index, dtype=object).astype(str)
    return pts, stats


#: the methods counted by :func:`harmonise_lsoa`, in its order
STAT_NAMES = ("published_2021", "mapped_2011_one_to_one", "split_by_location", "split_lowest_code", "unknown_code", "blank")


def _by_code(code: pd.Series, lookup: pd.DataFrame):
    """For each code (stripped text, or NaN): its 2021 code ("" for now when split or unknown), whether it is a
    split 2011 code, the codes (as boolean masks) behind each count, the lookup pairs and targets per 2011 code."""
    # object strings: isin/map use pandas' hash table, whereas isin on arrow strings
    # converts the 35,000 lookup codes one by one in every call (1.8 s for Hertfordshire)
    lk = lookup[["lsoa11_code", "lsoa21_code"]].drop_duplicates()
    valid21 = set(lk["lsoa21_code"].to_numpy(dtype=object).tolist())  # (not iterating the Series: a Python call per cell)
    n_targets = lk.groupby("lsoa11_code")["lsoa21_code"].nunique()
    one_to_one = lk[lk["lsoa11_code"].map(n_targets) == 1].set_index("lsoa11_code")["lsoa21_code"]

    is21 = code.isin(valid21)
    # built whole: setting code[is21] into a blank Series by mask aligns the index (0.3 s)
    out = pd.Series(np.where(is21.to_numpy(), code.to_numpy(), ""), index=code.index, dtype=object)
    rest = ~is21 & (code != "")
    mapped = code[rest].map(one_to_one)
    ok = mapped.notna()
    out[mapped.index[ok]] = mapped[ok]
    known = code[mapped.index].isin(n_targets.index)
    split = pd.Series(False, index=code.index)
    split[mapped.index[~ok & known]] = True
    unknown = pd.Series(False, index=code.index)
    unknown[mapped.index[~ok & ~known]] = True
    stats = {"published_2021": is21.to_numpy(), "mapped_2011_one_to_one": ok.reindex(code.index, fill_value=False).to_numpy(),
             "unknown_code": unknown.to_numpy(), "blank": (code == "").to_numpy()}
    return out, split, stats, lk, n_targets


def _split_codes(pts: pd.DataFrame, code: pd.Series, split_idx, lk: pd.DataFrame, lsoa21_polygons, stats: dict) -> pd.Series:
    """The 2021 code of each point (labels ``split_idx``) whose 2011 ``code`` was split: the candidate holding the
    point, else the lowest candidate code (counted in ``stats``)."""
    cands = lk[lk["lsoa11_code"].isin(code[split_idx].unique())]
    chosen = pd.Series("", index=split_idx, dtype=object)
    if lsoa21_polygons is not None and len(lsoa21_polygons):
        import shapely

        poly = lsoa21_polygons.drop_duplicates("lsoa21_code").set_index("lsoa21_code").geometry
        pairs = pd.DataFrame({"idx": split_idx, "lsoa11_code": code[split_idx].to_numpy()}).merge(cands, on="lsoa11_code")
        pairs = pairs[pairs["lsoa21_code"].isin(poly.index)].sort_values(["idx", "lsoa21_code"])
        if len(pairs):
            geoms = np.asarray(poly.reindex(pairs["lsoa21_code"]).values)
            shapely.prepare(geoms)
            inside = shapely.intersects_xy(
                geoms, pts.loc[pairs["idx"], "x"].to_numpy(float), pts.loc[pairs["idx"], "y"].to_numpy(float)
            )
            first = pairs[inside].drop_duplicates("idx")
            chosen[first["idx"].to_numpy()] = first["lsoa21_code"].to_numpy()
    lowest = cands.groupby("lsoa11_code")["lsoa21_code"].min()
    by_loc = chosen != ""
    stats["split_by_location"] = int(by_loc.sum())
    stats["split_lowest_code"] = int((~by_loc).sum())
    chosen[~by_loc] = code[chosen.index[~by_loc]].map(lowest)
    return chosen
