"""ESC/POS bytes back to their text, for tests and hardware-in-the-loop checks.

A thin view over :mod:`onewindow.hub.render.escpos_interp`, which executes the bytes by
the Epson ESC/POS rules (sizes per mode, GBK in Kanji mode, strict command lengths) and
raises :class:`DecodeError` on anything an Epson-conformant printer would not print as
intended. Use ``interpret`` directly to check geometry (sizes, wrapping, QR).

``decode(data)`` returns ``{"texts": [...], "qr": str | None, "cut": bool}``: text runs
in order (a run ends at LF, at FS & / FS . or at a cut), GBK inside FS & ... FS . and
ASCII outside; the data of the last QR code printed; whether the paper is cut.
"""

from __future__ import annotations

from .escpos_interp import PAPER_58MM, DecodeError, interpret

__all__ = ["DecodeError", "decode"]


def decode(data: bytes, paper: int = PAPER_58MM) -> dict:
    out = interpret(data, paper)
    qrs = out.qrs
    return {"texts": out.texts, "qr": qrs[-1].data if qrs else None, "cut": bool(out.cuts)}
