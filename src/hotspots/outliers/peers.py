"""Peer (most-similar-group) comparison: an area's rate against the mean rate of its peers.

The Home Office most-similar groups are not open data, so the user supplies
them as a CSV (:func:`read_peer_groups`); :func:`peer_comparison` joins them to
an :func:`hotspots.outliers.outlier_table`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from hotspots._errors import InputFileError


def read_peer_groups(path: str | Path, *, aliases: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Read a most-similar-group table: ``area_code, peer_group`` or ``area_code, peer_code``.

    The Home Office most-similar groups are not open data, so the user
    supplies them.  ``area_code, peer_group``: areas sharing a group are each
    other's peers.  ``area_code, peer_code``: one row per (area, peer) pair.

    Parameters
    ----------
    path
        CSV file.
    aliases
        Code -> code used in the analysis (district codes E07... -> CSP codes
        E22... in Hertfordshire, where each district is a CSP).

    Returns
    -------
    pandas.DataFrame
        ``area_code, peer_code, peer_group`` (one row per pair; ``peer_group``
        empty for the pair format).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "msg.csv"
    ...     _ = path.write_text("area_code,peer_group\\nA,g\\nB,g\\nC,h\\n")
    ...     read_peer_groups(path)
      area_code peer_code peer_group
    0         A         B          g
    1         B         A          g
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"peer-group table not found: {path}",
                             hint="set [outliers] peer_groups in the config to a CSV with area_code,peer_group "
                                  "or area_code,peer_code (or leave it empty)")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises many types for a bad CSV
        raise InputFileError(f"{path}: cannot read the peer-group table ({exc})",
                             hint="a CSV with columns area_code,peer_group or area_code,peer_code") from exc
    table.columns = [str(c).strip().lower() for c in table.columns]
    if "area_code" not in table.columns or not ({"peer_group", "peer_code"} & set(table.columns)):
        raise InputFileError(f"{path}: expected columns area_code and peer_group (or peer_code); "
                             f"got {list(table.columns)}",
                             hint="area_code,peer_group: one row per area; area_code,peer_code: one row per pair")
    alias = dict(aliases or {})
    table = table.assign(area_code=table["area_code"].str.strip().map(lambda c: alias.get(c, c)))
    table = table[table["area_code"] != ""]
    if "peer_code" in table.columns:
        pairs = table.assign(peer_code=table["peer_code"].str.strip().map(lambda c: alias.get(c, c)), peer_group="")
        pairs = pairs[(pairs["peer_code"] != "") & (pairs["peer_code"] != pairs["area_code"])]
    else:
        members = table.assign(peer_group=table["peer_group"].str.strip())
        members = members[members["peer_group"] != ""]
        pairs = members.merge(members, on="peer_group", suffixes=("", "_peer"))
        pairs = pairs.rename(columns={"area_code_peer": "peer_code"})
        pairs = pairs[pairs["peer_code"] != pairs["area_code"]]
    return pairs[["area_code", "peer_code", "peer_group"]].drop_duplicates().reset_index(drop=True)


def peer_comparison(table: pd.DataFrame, peers: pd.DataFrame | None) -> pd.DataFrame:
    """Rate relative to the peer-group mean, per area and crime type.

    Parameters
    ----------
    table
        :func:`outlier_table` rows (``area_code, crime_type, rate_per_1000``).
    peers
        :func:`read_peer_groups` pairs, or None.

    Returns
    -------
    pandas.DataFrame
        ``area_code, crime_type, peer_group, n_peers, peer_codes`` (";"-joined,
        only peers found in ``table``), ``peer_mean_rate_per_1000`` (the
        unweighted mean of the peers' rates, the area itself excluded) and
        ``ratio_to_peer_mean`` (rate / peer mean).  Empty strings / NaN for
        areas without peers.  ``attrs["unmatched"]``: codes in the peer table
        that are not analysed areas (their rates are unknown, so they are
        left out of the means).

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"area_code": list("ABC"), "crime_type": "Burglary", "rate_per_1000": [4.0, 2.0, 6.0]})
    >>> peers = pd.DataFrame({"area_code": ["A", "A"], "peer_code": ["B", "C"], "peer_group": ""})
    >>> peer_comparison(table, peers)[["area_code", "n_peers", "peer_mean_rate_per_1000", "ratio_to_peer_mean"]]
      area_code  n_peers  peer_mean_rate_per_1000  ratio_to_peer_mean
    0         A        2                      4.0                 1.0
    1         B        0                      NaN                 NaN
    2         C        0                      NaN                 NaN
    """
    base = table[["area_code", "crime_type", "rate_per_1000"]].copy()
    empty = base.assign(peer_group="", n_peers=0, peer_codes="", peer_mean_rate_per_1000=np.nan,
                        ratio_to_peer_mean=np.nan)
    empty.attrs["unmatched"] = []
    if peers is None or peers.empty:
        return empty.drop(columns="rate_per_1000")
    known = set(base["area_code"])
    unmatched = sorted((set(peers["area_code"]) | set(peers["peer_code"])) - known)
    pairs = peers[peers["area_code"].isin(known) & peers["peer_code"].isin(known)]
    rate = base.set_index(["area_code", "crime_type"])["rate_per_1000"]
    joined = pairs.merge(base.rename(columns={"area_code": "peer_code", "rate_per_1000": "peer_rate"}), on="peer_code")
    agg = joined.groupby(["area_code", "crime_type"]).agg(
        n_peers=("peer_code", "nunique"), peer_codes=("peer_code", lambda s: ";".join(sorted(set(s)))),
        peer_mean_rate_per_1000=("peer_rate", "mean"))
    group_label = pairs.groupby("area_code")["peer_group"].agg(lambda s: ";".join(sorted({g for g in s if g})))
    out = empty.drop(columns=["n_peers", "peer_codes", "peer_mean_rate_per_1000"]).set_index(["area_code", "crime_type"])
    out = out.join(agg, how="left")
    out["n_peers"] = out["n_peers"].fillna(0).astype(np.int64)
    out["peer_codes"] = out["peer_codes"].fillna("")
    out = out.reset_index()
    out["peer_group"] = out["area_code"].map(group_label).fillna("")
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = out["peer_mean_rate_per_1000"].to_numpy(dtype=float)
        own = rate.reindex(pd.MultiIndex.from_frame(out[["area_code", "crime_type"]])).to_numpy(dtype=float)
        out["ratio_to_peer_mean"] = np.where(mean > 0, own / mean, np.nan)
    out = out[["area_code", "crime_type", "peer_group", "n_peers", "peer_codes", "peer_mean_rate_per_1000",
               "ratio_to_peer_mean"]]
    out.attrs["unmatched"] = unmatched
    return out
