"""ONS lookups (private to :mod:`hotspots.geo`): column names and the LSOA → CSP key.

ONS publishes its lookups with upper-case column names that carry the vintage
(``LAD24CD``, ``CSP24NM``, ``LSOA21CD``); re-hosted copies often use
lower-case snake names (``ltla24_code``, ``csp24_name``).  Both are accepted:
:func:`ons_columns` renames the ONS style to the snake style, and
:func:`canonical_columns` picks the vintage a lookup holds when it is not the
one expected.

Community Safety Partnerships mostly follow current districts, but some still
follow districts abolished since 2019 (Cumbria, Northamptonshire,
Buckinghamshire, Dorset/BCP, East Suffolk): the ONS LAD → CSP lookup then lists
one district under several CSPs.  :func:`lsoa_csp` places each LSOA in its CSP
through the old district it was in (LSOA 2021 → LSOA 2011 → pre-2021 district),
matching old district names to CSP names.
"""

from __future__ import annotations

import re

import pandas as pd

from hotspots._errors import DataNotFoundError, InputFileError

#: ONS prefix -> snake prefix (``LAD24CD`` -> ``ltla24_code``)
_ONS_PREFIX = {"LAD": "ltla", "LTLA": "ltla", "CSP": "csp", "PFA": "pfa", "LSOA": "lsoa", "WD": "ward", "WARD": "ward",
               "MSOA": "msoa", "CTY": "cty", "UTLA": "utla", "RGN": "rgn", "CTRY": "ctry"}
_ONS_RE = re.compile(r"^(LAD|LTLA|CSP|PFA|LSOA|WD|WARD|MSOA|CTY|UTLA|RGN|CTRY)(\d{2})(CD|NM)$", re.IGNORECASE)
_SNAKE_RE = re.compile(r"^(ltla|lad|csp|pfa|lsoa|ward|wd)(\d{2})_(code|name)$", re.IGNORECASE)


def ons_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Rename ONS-style columns (``LAD24CD``, ``lad24nm``) to snake style (``ltla24_code``, ``ltla24_name``).

    Other columns (Welsh names ``LAD24NMW``, ``ObjectId``) are kept as they
    are; a byte-order mark on the first column name is removed.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame(columns=["\\ufeffLSOA21CD", "WD24CD", "WD24NM", "LAD24NMW", "lad24cd", "ObjectId"])
    >>> list(ons_columns(frame).columns)
    ['lsoa21_code', 'ward24_code', 'ward24_name', 'LAD24NMW', 'ltla24_code', 'ObjectId']
    """
    rename = {}
    for col in frame.columns:
        name = str(col).lstrip("\ufeff").strip()
        m = _ONS_RE.match(name)
        if m:
            name = f"{_ONS_PREFIX[m.group(1).upper()]}{m.group(2)}_{'code' if m.group(3).upper() == 'CD' else 'name'}"
        else:
            s = _SNAKE_RE.match(name)
            if s:
                prefix = {"lad": "ltla", "wd": "ward"}.get(s.group(1).lower(), s.group(1).lower())
                name = f"{prefix}{s.group(2)}_{s.group(3).lower()}"
        if name != col:
            rename[col] = name
    return frame.rename(columns=rename) if rename else frame


def canonical_columns(frame: pd.DataFrame, wanted: dict[str, str], path, *, what: str, hint: str) -> pd.DataFrame:
    """Rename the one column of another vintage to each wanted name (``ltla23_code`` -> ``ltla24_code``).

    ``wanted`` maps the name used inside hotspots to its family (``{"ltla24_code":
    "ltla"}``); a missing column is an :class:`InputFileError` naming the file.
    """
    frame = ons_columns(frame)
    rename = {}
    missing = []
    for name, family in wanted.items():
        if name in frame.columns:
            continue
        kind = name.rsplit("_", 1)[1]
        found = sorted(c for c in frame.columns if re.fullmatch(rf"{family}\d\d_{kind}", str(c)))
        if len(found) == 1:
            rename[found[0]] = name
        else:
            missing.append(name)
    if missing:
        raise InputFileError(
            f"{path}: the {what} has no column {', '.join(missing)} (columns: {', '.join(map(str, frame.columns))})",
            hint=hint,
        )
    return frame.rename(columns=rename)


def old_district_names(l11: pd.DataFrame, paths, read_csv) -> tuple[pd.DataFrame, dict[str, str]]:
    """(lsoa21_code, old_name) pairs from the LSOA11 → LSOA21 → LAD22 rows ``l11`` and every LSOA11 → LAD file present.

    Returns the pairs and the lookups used (``{"lookup_lsoa11_ltla18": path}``).
    """
    frames, used = [], {}
    if "ltla22_name" in l11:
        frames.append(l11[["lsoa21_code", "ltla22_name"]].rename(columns={"ltla22_name": "old_name"}))
    for p in paths:
        if not p.is_file():
            continue
        lk = ons_columns(read_csv(p))
        name = next((c for c in lk.columns if re.fullmatch(r"ltla\d\d_name", str(c))), None)
        if name is None or "lsoa11_code" not in lk:
            continue
        used[f"lookup_lsoa11_{name[:6]}"] = str(p)
        m = l11[["lsoa11_code", "lsoa21_code"]].merge(lk[["lsoa11_code", name]], on="lsoa11_code")
        frames.append(m[["lsoa21_code", name]].rename(columns={name: "old_name"}))
    old = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["lsoa21_code", "old_name"])
    return old, used


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", str(name).lower().replace("&", " and ")).strip()


def _csp_name_parts(name: str) -> set[str]:
    """A CSP name and the districts it lists: "Daventry and South Northamptonshire" -> both parts."""
    key = _key(name)
    return {key, *(p.strip() for p in re.split(r"\band\b|,", key) if p.strip())}


def lsoa_csp(lsoa_district: pd.Series, district_lookup: pd.DataFrame, old_districts: pd.DataFrame | None) -> tuple[pd.Series, dict]:
    """The CSP of each LSOA.

    Parameters
    ----------
    lsoa_district : pandas.Series
        LSOA 2021 code -> current district code (``ltla24_code``).
    district_lookup : pandas.DataFrame
        Rows of the LAD → CSP → PFA lookup (``ltla24_code``, ``csp24_code``,
        ``csp24_name``); a district under several CSPs is *split*.
    old_districts : pandas.DataFrame or None
        Columns ``lsoa21_code``, ``old_name``: the names of the districts each
        LSOA was in before the 2019–2023 reorganisations (several rows per LSOA
        are fine, one per lookup vintage).  Needed only for split districts.

    Returns
    -------
    csp : pandas.Series
        LSOA 2021 code -> CSP code, for every LSOA of ``lsoa_district``.
    notes : dict
        ``split_districts`` (codes), LSOAs placed ``by_old_district_name``,
        ``by_elimination`` (the one CSP of a split district no old district is
        named after, e.g. Christchurch → "Dorset") and ``ambiguous`` (several
        CSPs matched; the lowest code used).

    Raises
    ------
    DataNotFoundError
        A split district and no old-district lookup, or an LSOA whose CSP
        cannot be told from the lookups.

    Examples
    --------
    >>> import pandas as pd
    >>> lookup = pd.DataFrame({"ltla24_code": ["E06000063", "E06000063", "E07000001"],
    ...     "csp24_code": ["E22000031", "E22000033", "E22000999"], "csp24_name": ["Allerdale", "Carlisle", "Elsewhere"]})
    >>> lsoa_district = pd.Series({"L1": "E06000063", "L2": "E06000063", "L3": "E07000001"})
    >>> old = pd.DataFrame({"lsoa21_code": ["L1", "L2"], "old_name": ["Allerdale", "Carlisle"]})
    >>> csp, notes = lsoa_csp(lsoa_district, lookup, old)
    >>> csp.to_dict(), notes["split_districts"]
    ({'L1': 'E22000031', 'L2': 'E22000033', 'L3': 'E22000999'}, ['E06000063'])
    """
    per_district = district_lookup.groupby("ltla24_code")["csp24_code"].nunique()
    split = sorted(per_district.index[per_district > 1])
    whole = district_lookup[~district_lookup["ltla24_code"].isin(split)].drop_duplicates("ltla24_code")
    out = lsoa_district.map(whole.set_index("ltla24_code")["csp24_code"]).astype(object)
    notes = {"split_districts": split, "by_old_district_name": 0, "by_elimination": 0, "ambiguous": 0}
    if not split:
        return out.dropna().astype(str), notes
    if old_districts is None or old_districts.empty:
        raise DataNotFoundError(
            f"district(s) {', '.join(split)} are split between several Community Safety Partnerships (the CSPs follow "
            "districts abolished since 2019), and the data home has no LSOA 2011 → old district lookup to tell them apart",
            hint="add lookups/lookup_lsoa11_ltla18_en.csv.gz, lookup_lsoa11_ltla19_ew.csv.gz or lookup_lsoa11_ltla20_ew.csv.gz "
            "(ONS LSOA11 → LAD lookups) and lookups/lookup_lsoa11_lsoa21_ltla22_ew.csv.gz",
        )
    old = old_districts.assign(key=old_districts["old_name"].map(_key))[["lsoa21_code", "key"]].drop_duplicates()
    for district in split:
        cands = district_lookup[district_lookup["ltla24_code"] == district].drop_duplicates("csp24_code")
        parts = {row.csp24_code: _csp_name_parts(row.csp24_name) for row in cands.itertuples()}
        lsoas = lsoa_district.index[lsoa_district.to_numpy() == district]
        mine = old[old["lsoa21_code"].isin(lsoas)]
        matched = {}
        for code, keys in mine.groupby("lsoa21_code")["key"]:
            hits = sorted(c for c, p in parts.items() if p & set(keys))
            if hits:
                matched[code] = hits
        named = {c for hits in matched.values() for c in hits}
        left = sorted(set(parts) - named)
        for code in lsoas:
            hits = matched.get(code)
            if hits:
                out[code] = hits[0]
                notes["by_old_district_name"] += 1
                notes["ambiguous"] += len(hits) > 1
            elif len(left) == 1:
                out[code] = left[0]
                notes["by_elimination"] += 1
            else:
                names = sorted(mine.loc[mine["lsoa21_code"] == code, "key"])
                raise DataNotFoundError(
                    f"cannot tell which Community Safety Partnership LSOA {code} (district {district}) is in: its old "
                    f"district(s) {names or '(none in the lookups)'} match none of the CSPs "
                    + ", ".join(f"{c} {cands.set_index('csp24_code').loc[c, 'csp24_name']}" for c in sorted(parts)),
                    hint="add an LSOA 2011 → old district lookup (lookups/lookup_lsoa11_ltla18_en.csv.gz and "
                    "lookup_lsoa11_ltla19_ew.csv.gz) whose district names match the CSP names",
                )
    return out.dropna().astype(str), notes
