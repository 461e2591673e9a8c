"""QR codes as SVG, drawn by segno on the server, for crypto deposit addresses."""

from __future__ import annotations

import io
from functools import lru_cache

import segno


@lru_cache(maxsize=1_024)
def qr_svg(data: str) -> str:
    """An SVG document of `data` as a QR code (error correction M), quiet zone included."""
    out = io.BytesIO()
    segno.make_qr(data, error="m").save(
        out, kind="svg", scale=4, border=4, xmldecl=False, svgns=True, title=None
    )
    return out.getvalue().decode()
