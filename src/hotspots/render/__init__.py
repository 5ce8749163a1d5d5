"""Display only: the inspectors' maps and the HTML reports, from finished results.

Renderers take plain results (tables, dataclasses of tables, strings) and return
HTML text or PNG bytes; they compute no statistics, import no analysis package
and write no files (the stages write what they return).  ``tests/test_layering.py``
enforces this statically and during a real run.

Modules
-------
maps, map_html, map_png, map_views, _leaflet, _map_geometry
    Offline Leaflet maps (folium, Leaflet inlined) and printable PNGs.
outliers_report, outliers_wording, outliers_charts
    The CSP outlier report.
evaluation_report
    The evaluation report for the Commissioner.

Nothing is imported here: each renderer loads its own plotting libraries when used.
"""
