"""Leaflet inlined (offline maps) and folium's elements rendered once: the machinery of :mod:`hotspots.render.map_html`."""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import operator
import re
import types
from pathlib import Path

from hotspots._errors import HotspotsError

__all__ = ["LeafletAssets", "leaflet_assets", "preload"]


@dataclasses.dataclass(frozen=True)
class LeafletAssets:
    """Leaflet's JavaScript and CSS, ready to inline, and its licence text (shown in every map)."""

    js: str
    css: str
    version: str
    source: str
    licence: str = "BSD-2-Clause (Leaflet, (c) Volodymyr Agafonkin, CloudMade)"
    licence_text: str = ""


_ASSET_CACHE: dict[str, LeafletAssets] = {}
#: Leaflet as published on npm (``leaflet@1.9.4``), vendored with its LICENSE; see SOURCE.md there
VENDORED = Path(__file__).resolve().parent / "_vendor" / "leaflet"


def leaflet_assets() -> LeafletAssets:
    """Leaflet JS/CSS vendored in this package, with images inlined as data URIs.

    Raises
    ------
    HotspotsError
        When the vendored files are missing (a broken installation).
    """
    if "leaflet" in _ASSET_CACHE:
        return _ASSET_CACHE["leaflet"]
    folder = VENDORED
    js_path, css_path, licence_path = folder / "leaflet.js", folder / "leaflet.css", folder / "LICENSE"
    if not (js_path.is_file() and css_path.is_file() and licence_path.is_file()):
        raise HotspotsError(f"{folder}: Leaflet's files are missing, so offline maps cannot be written",
                            hint="reinstall hotspots (the package ships Leaflet under render/_vendor/leaflet)")
    js = js_path.read_text(encoding="utf-8")
    # the source map is a developer aid; a file:// request for it is pointless offline
    js = re.sub(r"//# sourceMappingURL=\S+\s*$", "", js.rstrip()) + "\n"
    css = css_path.read_text(encoding="utf-8")

    def inline(match: re.Match) -> str:
        img = folder / match.group(1)
        if not img.is_file():
            return "none"
        data = base64.b64encode(img.read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{data})"

    css = re.sub(r"url\((images/[^)]+\.png)\)", inline, css)
    version = re.search(r"Leaflet (\d+\.\d+\.\d+)", js)
    if "</script" in js.lower() or "</style" in css.lower():
        raise HotspotsError(f"{js_path}: cannot be inlined safely", hint="reinstall hotspots")
    assets = LeafletAssets(js=js, css=css, version=version.group(1) if version else "?",
                           source=f"npm package leaflet, vendored ({folder})",
                           licence_text=licence_path.read_text(encoding="utf-8"))
    _ASSET_CACHE["leaflet"] = assets
    return assets


def preload() -> None:
    """Import what drawing a map needs (folium, matplotlib) and read Leaflet's files, once, here.

    The maps are drawn in forked worker processes: what this process has
    loaded they inherit instead of each loading it again (about 0.8 s each).
    The pipeline calls this while the analysis runs in other processes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401

    leaflet_assets()
    _folium_classes()


#: where a GeoJsonText layer's data goes in folium's script, while the script is written
_DATA_SLOT = "hotspots-geojson-data-9f4c2b"
#: the feature id standing for all the ids of one style in the styler's ``case`` labels, while the script is written
_CASE_SLOT = "hotspots-case-9f4c2b"


@functools.lru_cache(maxsize=1)
def _folium_classes() -> types.SimpleNamespace:
    """folium's Map, CustomPane, GeoJson, FeatureGroup, Marker and DivIcon, each script rendered once; and three helpers.

    branca's ``MacroElement.render`` wraps every rendered script in
    ``Element(text)``, which compiles the text as a Jinja template a second
    time: for a layer that is megabytes of GeoJSON, and for a run's ~1,000
    label markers, that second compile was a third of the time spent on the
    maps.  These subclasses (and their ``.addTo`` and ``setIcon`` scripts)
    add the text as the second pass gives it back for text without template
    syntax: the same, newlines normalised and one trailing newline dropped
    (and a name holding "{{" is now shown as it is, not read as a template).

    Also: ``GeoJsonText`` (a GeoJson layer given its geometries as GeoJSON
    text, made once per geometry), ``Macro`` (any macro element rendered
    once, such as the page script) and ``Raw`` (text already rendered).
    """
    import folium
    from branca.element import Element, MacroElement
    from branca.utilities import _camelify
    from folium.elements import ElementAddToElement

    class _Text(Element):
        def __init__(self, text: str):
            super().__init__()
            # Jinja's lexer: every \r\n, \r and \n a \n, and one newline at the end dropped
            text = str(text)
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            self._text = text[:-1] if text.endswith("\n") else text

        def render(self, **kwargs) -> str:
            return self._text

    camel = functools.lru_cache(maxsize=64)(_camelify)  # branca's get_name camelifies the class name each call

    class _RenderedOnce(MacroElement):
        def get_name(self) -> str:
            # docstring inherited: branca's name, the camelified class name made once per name
            return camel(self._name) + "_" + self._id

        def render(self, **kwargs):
            figure = self.get_root()
            module = self._template.module
            for part in ("header", "html", "script"):
                macro = module.__dict__.get(part)
                if macro is not None:
                    getattr(figure, part).add_child(self._part(part, macro, kwargs), name=self.get_name())
            for element in self._children.values():
                element.render(**kwargs)

        def _part(self, part: str, macro, kwargs) -> Element:
            return _Text(macro(self, kwargs))

    class AddTo(ElementAddToElement, _RenderedOnce):
        pass

    class _LayerRenderedOnce:
        """folium's Layer adds its ``.addTo(parent)`` script as an ElementAddToElement: add ours instead."""

        def render(self, **kwargs):
            if not self.show:
                return super().render(**kwargs)
            self.add_child(AddTo(element_name=self.get_name(), element_parent_name=self._parent.get_name()),
                           name=self.get_name() + "_add")
            self.show = False  # only Layer.render reads it: it adds nothing more
            try:
                return super().render(**kwargs)
            finally:
                self.show = True

    class GeoJson(_LayerRenderedOnce, folium.GeoJson, _RenderedOnce):
        pass

    class GeoJsonText(GeoJson):
        """A GeoJson layer whose geometries come as GeoJSON text (made once, see ``_map_geometry._to_display``).

        folium writes the layer's data with Jinja's ``tojson`` (``json.dumps``
        with sorted keys, then ``<``, ``>``, ``&`` and ``'`` escaped): this
        writes the same text, each feature's geometry as given, instead of
        re-serialising every coordinate.  folium still sees each feature's
        properties (for its style map and the ``id`` it may add).

        ``style_by``: the one property the style function reads.  folium
        calls the style function and serialises its result for every feature
        (thousands of grid squares); with ``style_by`` that is done once per
        value of the property, giving folium's style map unchanged.
        ``style_fixed``: the style function reads nothing of the feature (one
        style for the layer, such as roads and outlines): called once.
        """

        def __init__(self, properties: list[dict], geometry_texts: list[str], *, style_by: str | None = None,
                     style_fixed: bool = False, **kwargs):
            if len(properties) != len(geometry_texts):
                raise ValueError(f"{len(properties)} features' properties for {len(geometry_texts)} geometries")
            features = [{"type": "Feature", "properties": p} for p in properties]
            super().__init__({"type": "FeatureCollection", "features": features}, **kwargs)
            self._geometry_texts = geometry_texts
            self._style_by = style_by
            self._style_fixed = style_fixed and style_by is None
            self._styled = False  # the style map is made: folium's render is told there is no style to map

        def _style_map(self) -> dict | None:
            """folium's ``GeoJsonStyleMapper.get_style_map``, the style worked out once per ``style_by`` value."""
            from folium.features import GeoJsonStyleMapper

            keys: dict = {}
            mapping: dict = {}
            path = self.feature_identifier.split(".")[1:]
            for feature in self.data["features"]:
                value = None if self._style_fixed else feature["properties"][self._style_by]
                if value not in keys:
                    style = self.style_function(feature)
                    if any(isinstance(v, MacroElement) for v in style.values()):
                        return None  # folium renders these first: leave it to folium
                    keys[value] = GeoJsonStyleMapper._to_key(style)
                mapping.setdefault(keys[value], []).append(functools.reduce(operator.getitem, path, feature))
            GeoJsonStyleMapper._set_default_key(mapping)
            return mapping

        def render(self, **kwargs):
            if ((self._style_by is None and not self._style_fixed) or not self.style or self.highlight
                    or not self.data["features"]):
                return super().render(**kwargs)
            style_map = self._style_map()
            if style_map is None:
                return super().render(**kwargs)
            self.style_map, self.style, self._styled = style_map, False, True
            try:
                return super().render(**kwargs)
            finally:
                self.style, self._styled = True, False

        def _data_text(self) -> str:
            encode = json.JSONEncoder(sort_keys=True).encode  # json.dumps(..., sort_keys=True), set up once
            features = self.data["features"]
            allowed = {"type", "properties", "id"}
            for feature in features:
                if not feature.keys() <= allowed:
                    raise ValueError(f"unexpected feature keys {sorted(feature)}")
            quote = json.encoder.encode_basestring_ascii
            idents = [(', "id": ' + (quote(f["id"]) if type(f["id"]) is str else encode(f["id"]))) if "id" in f else ""
                      for f in features]
            properties = _properties_texts([f["properties"] for f in features], encode)
            # tojson's escapes, made on the ids and properties alone (the geometry texts have none of
            # those characters: the last pass over the whole text only checks that, copying nothing)
            idents, properties = _escaped(idents), _escaped(properties)
            parts = [f'{{"geometry": {geometry}{ident}, "properties": {props}, "type": "Feature"}}'
                     for geometry, ident, props in zip(self._geometry_texts, idents, properties)]
            text = '{"features": [' + ", ".join(parts) + '], "type": "FeatureCollection"}'
            return _escape(text)

        def _case_slots(self) -> tuple[dict | None, dict[str, str]]:
            """The styler's ``case`` labels of each style, written here instead of by the template, one by one.

            folium's styler template writes ``case {{ id|tojson }}: `` for every
            feature not in the default style (thousands of grid squares); here
            the style map given to the template holds one placeholder id per
            style, and the labels of its ids are written at once, as ``tojson``
            writes them (``json.dumps``, then ``<``, ``>``, ``&`` and ``'``
            escaped).  Returns the real style map (None when nothing was
            swapped: ids other than str and int) and {placeholder label: labels}.
            """
            style_map = getattr(self, "style_map", None)
            if not self.style or self.highlight or not isinstance(style_map, dict):
                return None, {}
            slotted, cases = {}, {}
            for i, (style, ids) in enumerate(style_map.items()):
                if style == "default":
                    slotted[style] = ids
                    continue
                if not isinstance(ids, list) or not all(type(v) is str or type(v) is int for v in ids):
                    return None, {}
                slot = f"{_CASE_SLOT}-{i}"
                slotted[style] = [slot]
                labels = "".join(f"case {_json_id(v)}: " for v in ids)
                cases[f"case {_json_id(slot)}: "] = labels
            self.style_map = slotted
            return style_map, cases

        def _whole_data(self) -> dict:
            """The layer's data as folium would hold it, geometries included."""
            features = [dict(f, geometry=json.loads(g)) for f, g in zip(self.data["features"], self._geometry_texts)]
            return dict(self.data, features=features)

        def _part(self, part: str, macro, kwargs) -> Element:
            if self._styled:  # the template writes the styler from the style map made above
                self.style, self._styled = True, False
                try:
                    return self._part(part, macro, kwargs)
                finally:
                    self.style, self._styled = False, True
            if part != "script":
                return super()._part(part, macro, kwargs)
            data, self.data = self.data, _DATA_SLOT
            style_map, cases = self._case_slots()
            try:
                out = super()._part(part, macro, kwargs)
            finally:
                self.data = data
                if style_map is not None:
                    self.style_map = style_map
            if any(out._text.count(needle) != 1 for needle in cases):  # a folium whose template differs
                data, self.data = self.data, _DATA_SLOT
                try:
                    out = super()._part(part, macro, kwargs)
                finally:
                    self.data = data
            else:
                for needle, text in cases.items():
                    out._text = out._text.replace(needle, text)
            slot = json.dumps(_DATA_SLOT)
            if out._text.count(slot) != 1:  # a folium whose template differs: let it write the whole data itself
                data, self.data = self.data, self._whole_data()
                try:
                    return super()._part(part, macro, kwargs)
                finally:
                    self.data = data
            # the slot is swapped in after _Text's newline normalisation: JSON text holds no raw newline
            out._text = out._text.replace(slot, self._data_text())
            return out

    class FeatureGroup(_LayerRenderedOnce, folium.FeatureGroup, _RenderedOnce):
        pass

    class DivIcon(folium.DivIcon, _RenderedOnce):
        pass

    class Marker(folium.Marker, _RenderedOnce):
        class SetIcon(folium.Marker.SetIcon, _RenderedOnce):
            pass

    class _Checked(_RenderedOnce):
        """Rendered once unless the text holds template syntax (then read as a template, as branca does)."""

        def _part(self, part: str, macro, kwargs) -> Element:
            text = macro(self, kwargs)
            if "{{" in text or "{%" in text or "{#" in text:
                return Element(text)
            return _Text(text)

    class Map(folium.Map, _Checked):
        pass

    class CustomPane(folium.map.CustomPane, _Checked):
        pass

    class Raw(Element):
        """Text added as it is (already rendered)."""

        def __init__(self, text: str):
            super().__init__()
            self._text = text

        def render(self, **kwargs) -> str:
            return self._text

    return types.SimpleNamespace(GeoJson=GeoJson, GeoJsonText=GeoJsonText, FeatureGroup=FeatureGroup, DivIcon=DivIcon,
                                 Marker=Marker, Macro=_RenderedOnce, Raw=Raw, Map=Map, CustomPane=CustomPane)


def _json_id(value: str | int) -> str:
    """Jinja's ``tojson`` of a feature id (a str or an int): ``json.dumps``, then ``<``, ``>``, ``&``, ``'`` escaped."""
    text = json.encoder.encode_basestring_ascii(value) if type(value) is str else int.__repr__(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("'", "\\u0027")


def _escape(text: str) -> str:
    """What Jinja's ``tojson`` does to ``json.dumps``' text: ``<``, ``>``, ``&`` and ``'`` as ``\\u00XX``."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("'", "\\u0027")


def _escaped(texts: list[str]) -> list[str]:
    """:func:`_escape` of each JSON text (one line each, as json writes it), in four passes over them all."""
    if not texts:
        return texts
    joined = "\n".join(texts)
    if joined.count("\n") != len(texts) - 1:  # a text of more than one line (not json's): each on its own
        return [_escape(t) for t in texts]
    escaped = _escape(joined)
    return texts if escaped is joined else escaped.split("\n")


def _properties_texts(properties: list[dict], encode) -> list[str]:
    """:func:`_text_dict_json` of each feature's properties, column by column when they share str keys and values.

    A layer's features have the same keys (a grid square's class and tip):
    each key is quoted once and the values of a key are quoted together.
    """
    if not properties:
        return []
    first = properties[0]
    keys = sorted(first) if all(type(k) is str for k in first) else None
    if keys is None or not all(p.keys() == first.keys() for p in properties):
        return [_text_dict_json(p, encode) for p in properties]
    if not keys:
        return ["{}"] * len(properties)
    columns = [[p[k] for p in properties] for k in keys]
    if not all(type(v) is str for column in columns for v in column):
        return [_text_dict_json(p, encode) for p in properties]
    quote = json.encoder.encode_basestring_ascii
    quoted = [list(map(quote, column)) for column in columns]
    heads = [quote(k) + ": " for k in keys]
    if len(keys) == 1:
        return ["{" + heads[0] + a + "}" for a in quoted[0]]
    if len(keys) == 2:
        return ["{" + heads[0] + a + ", " + heads[1] + b + "}" for a, b in zip(*quoted)]
    return ["{" + ", ".join(h + v for h, v in zip(heads, row)) + "}" for row in zip(*quoted)]


def _text_dict_json(props: dict, encode) -> str:
    """``encode(props)`` (``json.dumps(props, sort_keys=True)``), written directly when every key and value is a str.

    The pop-up and tip properties of a map's features are str to str: each is
    written as ``json`` writes it (keys sorted, ``", "`` and ``": "`` between,
    strings through json's own ASCII string encoder), without setting up an
    encoder per feature (tens of thousands of grid squares).  Anything else goes to ``encode``.
    """
    if all(type(k) is str and type(v) is str for k, v in props.items()):
        quote = json.encoder.encode_basestring_ascii
        return "{" + ", ".join(f"{quote(k)}: {quote(props[k])}" for k in sorted(props)) + "}"
    return encode(props)


@functools.lru_cache(maxsize=8)
def rendered_once(text: str) -> str:
    """What branca's ``Element(text)`` renders (the text read as a Jinja template), for a text every map adds."""
    from branca.element import Element

    return Element(text).render()

