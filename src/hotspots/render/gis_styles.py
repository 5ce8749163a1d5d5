"""Layer styles for the GeoPackages: QGIS ``.qml`` and OGC SLD text, so a layer opens styled.

A GeoPackage carries its styles in a ``layer_styles`` table (the convention QGIS
reads and writes: one row per layer with ``styleQML`` and ``styleSLD``); the
writer (:meth:`hotspots._io.OutputDir.write_geo`) stores what :func:`style_for`
returns.  The symbols follow the conventions analysts know:

* Gi* hot spots: ArcGIS Pro's *Hot Spot Analysis* colours on ``Gi_Bin``
  (-3 cold 99% … +3 hot 99%), not-significant cells hollow;
* patrol areas: a red outline, labelled with the patrol-area number;
* CSP outliers: the funnel-plot flag, above the limits red, below blue;
* anything else: a plain outline, so nothing opens as grey squares.

Only text is built here; the categories and values come from the analysis.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from xml.sax.saxutils import escape, quoteattr

__all__ = ["GI_BIN_STYLE", "style_for", "qml_categorized", "qml_single", "sld_categorized"]

#: (Gi_Bin, label, RGB) — ArcGIS Pro's Hot Spot Analysis palette
GI_BIN_STYLE: tuple[tuple[int, str, str], ...] = (
    (3, "Hot spot, 99% confidence", "215,48,39"),
    (2, "Hot spot, 95% confidence", "237,117,81"),
    (1, "Hot spot, 90% confidence", "250,185,132"),
    (0, "Not significant", ""),
    (-1, "Cold spot, 90% confidence", "192,204,190"),
    (-2, "Cold spot, 95% confidence", "132,158,186"),
    (-3, "Cold spot, 99% confidence", "69,117,181"),
)
_FLAG_COLOURS = {"high": ("215,48,39", "250,185,132"), "low": ("69,117,181", "132,158,186")}
_QML_HEAD = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"


def _options(props: dict[str, str]) -> str:
    return ('<Option type="Map">' + "".join(f'<Option name={quoteattr(k)} type="QString" value={quoteattr(v)}/>'
                                           for k, v in props.items()) + "</Option>")


def _symbol(name: str, geometry: str, fill: str, outline: str = "80,80,80", width: str = "0.1") -> str:
    """One QGIS symbol: a fill (``fill`` '' = hollow), a line or a marker."""
    if geometry == "line":
        layer = ("SimpleLine", {"line_color": f"{outline},255", "line_width": width, "line_width_unit": "MM"})
    elif geometry == "point":
        layer = ("SimpleMarker", {"color": f"{fill or outline},255", "size": "2", "outline_color": "50,50,50,255"})
    else:
        layer = ("SimpleFill", {"color": f"{fill or '255,255,255'},{200 if fill else 0}", "style": "solid" if fill else "no",
                                "outline_color": f"{outline},255", "outline_width": width, "outline_width_unit": "MM",
                                "outline_style": "solid"})
    kind = {"line": "line", "point": "marker"}.get(geometry, "fill")
    return (f'<symbol type="{kind}" name={quoteattr(name)} alpha="1" clip_to_extent="1" force_rhr="0">'
            f'<layer class="{layer[0]}" enabled="1" locked="0" pass="0">{_options(layer[1])}</layer></symbol>')


def _labeling(field: str) -> str:
    return ('<labeling type="simple"><settings calloutType="simple">'
            f'<text-style fieldName={quoteattr(field)} isExpression="0" fontSize="9" fontWeight="75" textColor="0,0,0,255">'
            '<text-buffer bufferDraw="1" bufferSize="1" bufferColor="255,255,255,255"/></text-style>'
            '<placement placement="1"/><rendering obstacle="1"/></settings></labeling>')


def qml_categorized(column: str, categories: Sequence[tuple[object, str, str]], *, geometry: str = "polygon",
                    label_field: str | None = None) -> str:
    """QGIS style: one colour per value of ``column`` (``categories``: value, legend label, ``"R,G,B"`` or '' hollow).

    >>> qml = qml_categorized("Gi_Bin", GI_BIN_STYLE)
    >>> 'attr="Gi_Bin"' in qml and qml.count("<category ") == 7
    True
    """
    cats = "".join(f'<category value={quoteattr(str(v))} symbol="{i}" label={quoteattr(label)} render="true"/>'
                   for i, (v, label, _) in enumerate(categories))
    symbols = "".join(_symbol(str(i), geometry, rgb, outline=rgb or "160,160,160") for i, (_, _, rgb) in enumerate(categories))
    return (_QML_HEAD + f'<qgis version="3.28.0" styleCategories="Symbology|Labeling" labelsEnabled="{int(bool(label_field))}">'
            f'<renderer-v2 type="categorizedSymbol" attr={quoteattr(column)} enableorderby="0" forceraster="0" symbollevels="0">'
            f"<categories>{cats}</categories><symbols>{symbols}</symbols></renderer-v2>"
            + (_labeling(label_field) if label_field else "") + "</qgis>\n")


def qml_single(*, geometry: str = "polygon", outline: str = "80,80,80", width: str = "0.3", fill: str = "",
               label_field: str | None = None) -> str:
    """QGIS style: one symbol for every feature (an outline unless ``fill``), optionally labelled.

    >>> "singleSymbol" in qml_single(outline="200,0,0", label_field="patrol_area_id")
    True
    """
    return (_QML_HEAD + f'<qgis version="3.28.0" styleCategories="Symbology|Labeling" labelsEnabled="{int(bool(label_field))}">'
            '<renderer-v2 type="singleSymbol" enableorderby="0" forceraster="0" symbollevels="0">'
            f"<symbols>{_symbol('0', geometry, fill, outline=outline, width=width)}</symbols></renderer-v2>"
            + (_labeling(label_field) if label_field else "") + "</qgis>\n")


def _sld_symbolizer(geometry: str, fill: str, outline: str, width: float) -> str:
    hexed = lambda rgb: "#" + "".join(f"{int(c):02x}" for c in rgb.split(","))  # noqa: E731
    stroke = (f'<se:Stroke><se:SvgParameter name="stroke">{hexed(outline)}</se:SvgParameter>'
              f'<se:SvgParameter name="stroke-width">{width}</se:SvgParameter></se:Stroke>')
    if geometry == "line":
        return f"<se:LineSymbolizer>{stroke}</se:LineSymbolizer>"
    if geometry == "point":
        return (f'<se:PointSymbolizer><se:Graphic><se:Mark><se:WellKnownName>circle</se:WellKnownName><se:Fill>'
                f'<se:SvgParameter name="fill">{hexed(fill or outline)}</se:SvgParameter></se:Fill></se:Mark>'
                "<se:Size>6</se:Size></se:Graphic></se:PointSymbolizer>")
    paint = f'<se:Fill><se:SvgParameter name="fill">{hexed(fill)}</se:SvgParameter></se:Fill>' if fill else ""
    return f"<se:PolygonSymbolizer>{paint}{stroke}</se:PolygonSymbolizer>"


def sld_categorized(layer: str, column: str | None, categories: Iterable[tuple[object, str, str]], *,
                    geometry: str = "polygon", outline: str = "160,160,160") -> str:
    """OGC SLD 1.1 text: a rule per category of ``column`` (``column=None``: one rule, the first category's symbol).

    >>> sld = sld_categorized("hot", "Gi_Bin", GI_BIN_STYLE)
    >>> sld.count("<se:Rule>"), "<ogc:Literal>3</ogc:Literal>" in sld
    (7, True)
    """
    rules = []
    for value, label, rgb in categories:
        where = ("" if column is None else
                 f"<ogc:Filter><ogc:PropertyIsEqualTo><ogc:PropertyName>{escape(column)}</ogc:PropertyName>"
                 f"<ogc:Literal>{escape(str(value))}</ogc:Literal></ogc:PropertyIsEqualTo></ogc:Filter>")
        rules.append(f"<se:Rule><se:Name>{escape(label)}</se:Name>{where}"
                     f"{_sld_symbolizer(geometry, rgb, rgb or outline, 1)}</se:Rule>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<StyledLayerDescriptor version="1.1.0" '
            'xmlns="http://www.opengis.net/sld" xmlns:ogc="http://www.opengis.net/ogc" '
            'xmlns:se="http://www.opengis.net/se" xmlns:xlink="http://www.w3.org/1999/xlink">'
            f"<NamedLayer><se:Name>{escape(layer)}</se:Name><UserStyle><se:Name>{escape(layer)}</se:Name>"
            f"<se:FeatureTypeStyle>{''.join(rules)}</se:FeatureTypeStyle></UserStyle></NamedLayer></StyledLayerDescriptor>\n")


def _flag_categories(flags: Sequence[str]) -> list[tuple[str, str, str]]:
    """Funnel flags (``high_998``, ``high_95``, ``within``, ``low_95``, ``low_998``) -> legend entries."""
    out = []
    for flag in flags:
        side, _, level = str(flag).partition("_")
        if side in _FLAG_COLOURS:
            widest = level == max((str(f).partition("_")[2] for f in flags if str(f).startswith(side + "_")), key=len)
            pct = f"{level[:2]}.{level[2:]}" if len(level) > 2 else level
            out.append((flag, f"{'Above' if side == 'high' else 'Below'} the {pct}% limits",
                        _FLAG_COLOURS[side][0 if widest else 1]))
        else:
            out.append((flag, "Within the limits", ""))
    return out


def style_for(layer: str, columns: Sequence[str], geometry: str = "polygon", *,
              flags: Sequence[str] = ()) -> tuple[str, str, str]:
    """``(style name, QML, SLD)`` for a layer, chosen by its columns (see the module notes).

    ``flags``: the values of an outliers layer's ``flag`` column, in legend order.

    >>> name, qml, sld = style_for("all_crime_county", ["cell_id", "Gi_Bin", "GiZScore"])
    >>> name, 'attr="Gi_Bin"' in qml
    ('Gi* hot spots (ArcGIS Hot Spot Analysis colours)', True)
    >>> style_for("patrol_areas", ["patrol_area_id", "rank", "pai"])[0]
    'Patrol areas'
    """
    cols = set(columns)
    if "Gi_Bin" in cols:
        return ("Gi* hot spots (ArcGIS Hot Spot Analysis colours)", qml_categorized("Gi_Bin", GI_BIN_STYLE, geometry=geometry),
                sld_categorized(layer, "Gi_Bin", GI_BIN_STYLE, geometry=geometry))
    if {"patrol_area_id", "rank"} <= cols:
        return ("Patrol areas", qml_single(geometry=geometry, outline="200,0,0", width="0.6", label_field="patrol_area_id"),
                sld_categorized(layer, None, [("", "Patrol area", "")], geometry=geometry, outline="200,0,0"))
    if {"flag", "ratio"} <= cols and flags:
        cats = _flag_categories(flags)
        return ("Funnel-plot outliers (allowing for overdispersion)", qml_categorized("flag", cats, geometry=geometry),
                sld_categorized(layer, "flag", cats, geometry=geometry))
    return ("Outline", qml_single(geometry=geometry), sld_categorized(layer, None, [("", layer, "")], geometry=geometry))
