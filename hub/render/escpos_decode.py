"""A small ESC/POS decoder for tests and hardware-in-the-loop checks.

It understands exactly what :mod:`onewindow.hub.render.escpos` (through
python-escpos's ``Dummy``) emits and refuses anything else, so a change in the
emitted commands shows up as a test failure rather than as garbage text.

``decode(data)`` returns ``{"texts": [...], "qr": str | None, "cut": bool}``:
text segments in order (a segment ends at LF, at FS & / FS . or at a cut), decoded
as GB18030 inside FS & ... FS . blocks and as ASCII outside them.
"""

from __future__ import annotations

ESC, FS, GS = 0x1B, 0x1C, 0x1D
LF, CR, HT = 0x0A, 0x0D, 0x09

# Commands with a fixed number of argument bytes after the two command bytes.
_ESC_ARGS = {
    ord("@"): 0,  # initialise
    ord("!"): 1,  # print mode
    ord("E"): 1,  # bold
    ord("G"): 1,  # double strike
    ord("-"): 1,  # underline
    ord("M"): 1,  # font
    ord("a"): 1,  # alignment
    ord("t"): 1,  # code page
    ord("{"): 1,  # upside down
    ord("d"): 1,  # feed n lines
    ord("J"): 1,  # feed n dots
    ord("2"): 0,  # default line spacing
    ord("3"): 1,  # line spacing
    ord("R"): 1,  # international character set
    ord("$"): 2,  # absolute position
    ord("p"): 3,  # cash drawer pulse
}
_GS_ARGS = {
    ord("!"): 1,  # character size
    ord("B"): 1,  # reverse (white on black)
    ord("b"): 1,  # smoothing
    ord("L"): 2,  # left margin
    ord("W"): 2,  # print area width
}
_FS_ARGS = {
    ord("!"): 1,  # Chinese character print mode
    ord("-"): 1,  # Chinese underline
}


class DecodeError(ValueError):
    pass


def decode(data: bytes) -> dict:
    texts: list[str] = []
    qr: str | None = None
    cut = False
    chinese = False
    buf = bytearray()

    def flush() -> None:
        if buf:
            codec = "gb18030" if chinese else "ascii"
            try:
                texts.append(buf.decode(codec))
            except UnicodeDecodeError as exc:
                raise DecodeError(f"bad {codec} text {bytes(buf)!r}") from exc
            buf.clear()

    def need(i: int, n: int) -> None:
        if i + n > len(data):
            raise DecodeError(f"truncated command at offset {i}")

    i = 0
    while i < len(data):
        b = data[i]
        if b == LF:
            flush()
            i += 1
        elif b in (CR, HT):
            i += 1
        elif b == ESC:
            need(i, 2)
            c = data[i + 1]
            if c not in _ESC_ARGS:
                raise DecodeError(f"unknown ESC {c:#04x} at offset {i}")
            need(i, 2 + _ESC_ARGS[c])
            i += 2 + _ESC_ARGS[c]
        elif b == FS:
            need(i, 2)
            c = data[i + 1]
            if c == ord("&"):
                flush()
                chinese = True
                i += 2
            elif c == ord("."):
                flush()
                chinese = False
                i += 2
            elif c in _FS_ARGS:
                need(i, 2 + _FS_ARGS[c])
                i += 2 + _FS_ARGS[c]
            else:
                raise DecodeError(f"unknown FS {c:#04x} at offset {i}")
        elif b == GS:
            need(i, 2)
            c = data[i + 1]
            if c in _GS_ARGS:
                need(i, 2 + _GS_ARGS[c])
                i += 2 + _GS_ARGS[c]
            elif c == ord("V"):  # cut: GS V m, or GS V m n for m in 65/66
                need(i, 3)
                m = data[i + 2]
                flush()
                cut = True
                i += 4 if m in (65, 66) else 3
            elif c == ord("("):  # GS ( X pL pH <pL + 256*pH bytes>
                need(i, 5)
                fn_class = data[i + 2]
                n = data[i + 3] | data[i + 4] << 8
                need(i + 5, n)
                body = data[i + 5 : i + 5 + n]
                # GS ( k, cn = '1' (QR), fn = 'P' (80): store symbol data, m = '0'
                if fn_class == ord("k") and body[:2] == b"1P":
                    qr = body[3:].decode("utf-8")
                i += 5 + n
            else:
                raise DecodeError(f"unknown GS {c:#04x} at offset {i}")
        elif b < 0x20 or b == 0x7F:
            raise DecodeError(f"unexpected control byte {b:#04x} at offset {i}")
        elif b >= 0x80:
            if not chinese:
                raise DecodeError(f"non-ASCII byte {b:#04x} outside FS & at offset {i}")
            # GB18030: two bytes, or four when the second is a digit 0x30-0x39.
            n = 4 if i + 1 < len(data) and 0x30 <= data[i + 1] <= 0x39 else 2
            need(i, n)
            buf += data[i : i + n]
            i += n
        else:
            buf.append(b)
            i += 1
    flush()
    return {"texts": texts, "qr": qr, "cut": cut}
