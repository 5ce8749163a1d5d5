"""A PNG of a drawn Agg canvas, encoded here (zlib, no row filter) instead of by Pillow.

matplotlib's ``savefig(..., format="png")`` hands the RGBA buffer to
Pillow, whose encoder tries five row filters on every row and keeps the
best: for a printable map (1519 x 1075 pixels, flat colours) that was about
a fifth of the map's time.  Flat colours compress well unfiltered, so this
writes the RGBA rows as they are (filter 0): the same pixels, decoded, in
under half the time and fewer bytes (RGB would be smaller still, but taking
the alpha out of the buffer costs more than it saves).  The chunks are those
matplotlib writes: ``IHDR``, the ``Software`` text, ``pHYs`` (the dpi),
``IDAT``, ``IEND``.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["canvas_png", "png_bytes"]

#: zlib level: 3 was the level given to Pillow; unfiltered flat colours gain little from more
LEVEL = 3


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_bytes(rgba: np.ndarray, *, dpi: float | None = None, text: dict[str, str] | None = None,
              level: int = LEVEL) -> bytes:
    """PNG file (8-bit RGBA) of an ``(height, width, 4)`` uint8 RGBA array.

    ``text``: ``tEXt`` chunks (Latin-1 keys and values, as the PNG standard
    asks); ``dpi``: a ``pHYs`` chunk, in pixels per metre as Pillow writes it.
    """
    rgba = np.asarray(rgba)
    if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"an (height, width, 4) uint8 array is needed, not {rgba.dtype} {rgba.shape}")
    height, width = rgba.shape[:2]
    rows = np.empty((height, width * 4 + 1), dtype=np.uint8)
    rows[:, 0] = 0  # filter type 0 (none) on every row
    rows[:, 1:] = rgba.reshape(height, -1)
    parts = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))]
    for key, value in (text or {}).items():
        parts.append(_chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1")))
    if dpi is not None:
        per_metre = int(dpi / 0.0254 + 0.5)
        parts.append(_chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)))
    parts.append(_chunk(b"IDAT", zlib.compress(rows, level)))  # the array's buffer: no copy of its bytes
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


def canvas_png(fig) -> bytes:
    """The PNG ``fig.savefig(buf, format="png")`` would write for an Agg figure, with the same pixels.

    The figure is drawn at its own dpi, as ``savefig`` draws it when given no
    other dpi, face colour or bounding box; the ``Software`` text is
    matplotlib's.
    """
    import matplotlib

    canvas = fig.canvas
    canvas.draw()
    return png_bytes(np.asarray(canvas.buffer_rgba()), dpi=fig.dpi,
                     text={"Software": f"Matplotlib version{matplotlib.__version__}, https://matplotlib.org/"})
