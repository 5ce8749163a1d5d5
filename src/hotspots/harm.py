"""Harm weights per police.uk category: an editable, versioned table.

Counts treat a shoplifting and a robbery alike; harm weighting does not.  No
official mapping from police.uk categories to harm exists, so hotspots ships
``data/harm_weights.csv`` (version :data:`HARM_TABLE_VERSION`):

* **Derivation.**  Each weight is an indicative category-level average of the
  ONS Crime Severity Score (CSS) offence weights (average sentencing days per
  offence, ONS "Research outputs: Crime Severity Score"), mixing the offences
  inside a police.uk category by their rough national volumes, rounded.  The
  ``basis`` column says which offences and what mix.
* **Limits.**  police.uk categories are coarse (violence with injury and
  common assault share one category); the mix differs by place; the weights
  are approximate and should be checked against the current ONS CSS weights
  table before operational use.  Results depend on these choices: report
  harm-weighted figures beside counts, never instead of them.
* **ASB is not weighted**: it is not a notifiable crime; report it by count.

Pass your own table (same columns) with ``path=`` to change any weight, e.g.
a Cambridge Crime Harm Index derivation.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from hotspots._errors import InputFileError

HARM_TABLE_VERSION = "2026.1-css-indicative"


def load_harm_weights(path: str | Path | None = None) -> pd.Series:
    """Harm weight per police.uk category (NaN for ASB), indexed by crime type.

    >>> w = load_harm_weights()
    >>> float(w["Robbery"]) > float(w["Shoplifting"]), bool(np.isnan(w["Anti-social behaviour"]))
    (True, True)
    """
    src = Path(path) if path else Path(str(resources.files("hotspots") / "data" / "harm_weights.csv"))
    try:
        table = pd.read_csv(src)
    except Exception as exc:
        raise InputFileError(f"{src}: cannot read the harm table ({exc})", hint="columns: crime_type,harm_weight,basis") from exc
    if not {"crime_type", "harm_weight"} <= set(table.columns):
        raise InputFileError(f"{src}: harm table needs columns crime_type, harm_weight", hint="see the shipped data/harm_weights.csv")
    weights = pd.to_numeric(table["harm_weight"], errors="coerce")
    if (weights < 0).any():
        raise InputFileError(f"{src}: negative harm weights", hint="weights are severity scores >= 0")
    out = pd.Series(weights.to_numpy(dtype=float), index=table["crime_type"].astype(str), name="harm_weight")
    out.attrs["version"] = HARM_TABLE_VERSION if path is None else f"user:{src}"
    return out


def harm_of(crime_type: pd.Series, weights: pd.Series | None = None) -> np.ndarray:
    """Harm weight of each record (NaN for ASB and unweighted types)."""
    w = load_harm_weights() if weights is None else weights
    return crime_type.map(w).to_numpy(dtype=float)
