"""A client configuration as a QR code, in SVG, for an app to show once."""

from __future__ import annotations

import io

import segno


def qr_svg(text: str) -> str:
    """The QR code of ``text`` as a standalone SVG document (error level L, as the CLI's)."""
    buffer = io.BytesIO()
    segno.make(text, error="l").save(buffer, kind="svg", xmldecl=False, scale=4)
    return buffer.getvalue().decode("utf-8")
