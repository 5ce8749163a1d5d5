"""hotspots: crime and ASB hotspots, CSP outliers and hotspot-patrol evaluation."""

__version__ = "0.1.0"
