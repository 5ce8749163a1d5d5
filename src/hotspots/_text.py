"""Text helpers shared by the analysis and the renderers."""

from __future__ import annotations

import re


def slug(name: object, *, empty: str = "area") -> str:
    """A file- and id-safe slug: lower case, runs of other characters as one ``-``.

    >>> slug("Night-time economy"), slug("Welwyn Hatfield"), slug("St Albans")
    ('night-time-economy', 'welwyn-hatfield', 'st-albans')
    >>> slug("?!", empty="x")
    'x'
    """
    return re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-") or empty
