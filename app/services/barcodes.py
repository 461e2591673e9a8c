"""Code 128 barcodes as SVG, drawn by python-barcode, for OXXO voucher references."""

from __future__ import annotations

import io
from functools import lru_cache

from barcode import Code128
from barcode.writer import SVGWriter


@lru_cache(maxsize=1_024)
def code128_svg(reference: str) -> str:
    """An SVG document of `reference` in Code 128, as store scanners read it."""
    out = io.BytesIO()
    Code128(reference, writer=SVGWriter()).write(
        out,
        options={"module_height": 12.0, "font_size": 8, "text_distance": 4.0, "compress": False},
    )
    return out.getvalue().decode()
