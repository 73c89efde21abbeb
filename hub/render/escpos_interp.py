"""An ESC/POS interpreter that follows the Epson ESC/POS reference, for tests and HIL checks.

It executes a byte stream the way an Epson-conformant printer with a GBK Chinese font
would, and records what lands on the paper: each printed line with its glyphs (character,
mode, size in dots, position), the QR codes, the cuts. ``escpos_image.render`` draws the
result so a test can look at it. The rules applied (Epson ESC/POS command reference):

* Character sizes are kept per mode. ANK (ASCII) characters are sized by ``ESC ! n``
  (bit 4 double height, bit 5 double width) and by ``GS ! n``; Kanji (Chinese) characters
  by ``FS ! n`` (bit 2 double width, bit 3 double height) and by ``GS ! n``. For each mode
  the last command received wins. ``ESC !`` never changes Kanji sizes and ``FS !`` never
  changes ANK sizes. ``GS ! n``: bits 0-2 height - 1, bits 4-6 width - 1 (1..8).
* ``FS &`` enters Kanji mode, ``FS .`` leaves it. In Kanji mode a byte 0x81-0xFE starts a
  two-byte GBK code (second byte 0x40-0x7E or 0x80-0xFE); bytes 0x20-0x7E stay ANK. A byte
  >= 0x80 outside Kanji mode, or a code that is not GBK (a four-byte GB18030 sequence, a
  code GBK leaves undefined) is an error: the printer would print boxes or garbage.
* Font A: ANK 12x24 dots, Kanji 24x24 dots (font B: ANK 9x17). The printable width is
  the paper's: 384 dots on 58 mm paper, 576 on 80 mm. A character that does not fit in
  what is left of the line starts a new line (the line "wraps").
* ``ESC a`` takes effect only at the beginning of a line. ``ESC @`` resets every setting.
* ``GS ( k`` (cn 49) stores and prints a QR code; ``GS V`` cuts.
* Strict lengths: an unknown command, a truncated one, or an argument out of the range the
  reference allows raises :class:`DecodeError`.

Why one module of 421 lines: it is one printer state machine (`_Printer`: sizes per mode, Kanji
mode, the line being set) driven by one command dispatch (`esc`, `fs`, `gs`, `gs_paren`), each
rule above checked against the branch that applies it; split by command prefix, that shared
state would have to travel between modules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

ESC, FS, GS = 0x1B, 0x1C, 0x1D
LF, CR = 0x0A, 0x0D

PAPER_58MM = 384  # printable dots at 203 dpi
PAPER_80MM = 576
KANJI_DOTS = 24  # font A Kanji cell: 24 x 24
ANK_FONTS = {0: (12, 24), 1: (9, 17)}  # font A, font B: width, height in dots
LINE_SPACING = 30  # ESC 2 default: 1/6 inch on the common 203 dpi Epson models


class DecodeError(ValueError):
    """The bytes are not what an Epson-conformant printer would print as intended."""


@dataclass(frozen=True, slots=True)
class Glyph:
    ch: str
    kanji: bool
    x: int  # left edge in dots, after alignment
    width: int  # dots
    height: int  # dots
    scale: tuple[int, int]  # (width, height) magnification
    bold: bool


@dataclass(slots=True)
class Line:
    glyphs: list[Glyph]
    y: int = 0  # top edge in dots from the start of the printout
    height: int = LINE_SPACING  # paper fed for this line
    align: int = 0  # 0 left, 1 centre, 2 right
    wrapped: bool = False  # continues the previous line: the text did not fit in one

    @property
    def text(self) -> str:
        return "".join(g.ch for g in self.glyphs)


@dataclass(frozen=True, slots=True)
class QrCode:
    data: str
    module: int  # dots per module
    ec: str  # error correction level L/M/Q/H
    y: int
    align: int


@dataclass(slots=True)
class Printout:
    paper: int
    rows: list[Line | QrCode] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # logical text runs, see decode()
    cuts: list[int] = field(default_factory=list)  # y of each cut
    height: int = 0  # paper fed so far, dots
    state: dict[str, object] = field(default_factory=dict)  # the modes left at the end

    @property
    def lines(self) -> list[Line]:
        return [r for r in self.rows if isinstance(r, Line)]

    @property
    def qrs(self) -> list[QrCode]:
        return [r for r in self.rows if isinstance(r, QrCode)]

    def lines_with(self, text: str) -> list[Line]:
        return [ln for ln in self.lines if text in ln.text]


_EC_LEVELS = {48: "L", 49: "M", 50: "Q", 51: "H"}


def _is_gbk_trail(b: int) -> bool:
    return 0x40 <= b <= 0x7E or 0x80 <= b <= 0xFE


class _Printer:
    """The printer's state while it consumes the stream."""

    def __init__(self, data: bytes, paper: int) -> None:
        self.data = data
        self.out = Printout(paper)
        self.i = 0
        self.run = bytearray()  # current logical text run, raw bytes
        self.run_kanji = False
        self.qr_data: str | None = None
        self.qr_module = 3
        self.qr_ec = "L"
        self.reset()
        self.pending: list[tuple[str, bool, int, int, int, int, bool]] = []
        self.line_align = self.align
        self.wrap_next = False  # the next line printed continues a wrapped one

    # ---- state ------------------------------------------------------------------------
    def reset(self) -> None:
        """ESC @ (and power on): every mode back to its default."""
        self.ank_w = self.ank_h = self.kanji_w = self.kanji_h = 1
        self.font = 0
        self.bold = False
        self.kanji = False
        self.align = 0
        self.spacing = LINE_SPACING
        self.left_margin = 0
        self.area = self.out.paper
        self.pending = []

    # ---- byte access --------------------------------------------------------------------
    def need(self, n: int) -> bytes:
        if self.i + n > len(self.data):
            raise DecodeError(f"truncated command at offset {self.i}")
        return self.data[self.i : self.i + n]

    def arg(self, n: int, ok: Callable[[int], bool], what: str) -> int:
        v = self.need(n + 1)[n]
        if not ok(v):
            raise DecodeError(f"{what} {v:#04x} out of range at offset {self.i}")
        return v

    # ---- text -----------------------------------------------------------------------------
    def end_run(self) -> None:
        if self.run:
            codec = "gbk" if self.run_kanji else "ascii"
            self.out.texts.append(self.run.decode(codec))
            self.run.clear()

    def put(self, ch: str, kanji: bool, raw: bytes) -> None:
        if self.run and self.run_kanji != self.kanji:
            self.end_run()
        self.run_kanji = self.kanji
        self.run += raw
        if kanji:
            w, h = KANJI_DOTS * self.kanji_w, KANJI_DOTS * self.kanji_h
            scale = (self.kanji_w, self.kanji_h)
        else:
            fw, fh = ANK_FONTS[self.font]
            w, h = fw * self.ank_w, fh * self.ank_h
            scale = (self.ank_w, self.ank_h)
        used = sum(p[2] for p in self.pending)
        if self.pending and used + w > self.area:
            self.print_line(wrapping=True)
        if not self.pending:
            self.line_align = self.align
        self.pending.append((ch, kanji, w, h, scale[0], scale[1], self.bold))

    def print_line(self, wrapping: bool = False, feed: int | None = None) -> None:
        """Print the buffer and feed one line (or ``feed`` dots)."""
        used = sum(p[2] for p in self.pending)
        offset = {0: 0, 1: (self.area - used) // 2, 2: self.area - used}[self.line_align]
        x = self.left_margin + max(0, offset)
        glyphs = []
        for ch, kanji, w, h, sw, sh, bold in self.pending:
            glyphs.append(Glyph(ch, kanji, x, w, h, (sw, sh), bold))
            x += w
        tallest = max((g.height for g in glyphs), default=0)
        height = feed if feed is not None else max(self.spacing, tallest)
        line = Line(glyphs, self.out.height, height, self.line_align, wrapped=self.wrap_next)
        self.out.rows.append(line)
        self.out.height += height
        self.wrap_next = wrapping
        self.pending = []
        self.line_align = self.align

    def kanji_char(self) -> None:
        lead = self.data[self.i]
        if self.i + 1 >= len(self.data):
            raise DecodeError(f"truncated GBK character at offset {self.i}")
        trail = self.data[self.i + 1]
        raw = bytes((lead, trail))
        if not (0x81 <= lead <= 0xFE and _is_gbk_trail(trail)):
            what = "four-byte GB18030" if 0x30 <= trail <= 0x39 else "not GBK"
            raise DecodeError(f"{what} bytes {self.data[self.i:self.i + 4]!r} at offset "
                              f"{self.i}: a GBK printer prints boxes and stray digits")
        try:
            ch = raw.decode("gbk")
        except UnicodeDecodeError:
            raise DecodeError(f"GBK code {raw.hex()} at offset {self.i} is undefined: "
                              "the printer's font has no glyph for it") from None
        self.put(ch, True, raw)
        self.i += 2

    # ---- the stream -----------------------------------------------------------------------
    def execute(self) -> Printout:
        data = self.data
        while self.i < len(data):
            b = data[self.i]
            if b == LF:
                self.end_run()
                self.print_line()
                self.i += 1
            elif b == CR:  # ignored: the printers run with auto line feed off
                self.i += 1
            elif b == ESC:
                self.esc(self.need(2)[1])
            elif b == FS:
                self.fs(self.need(2)[1])
            elif b == GS:
                self.gs(self.need(2)[1])
            elif b < 0x20 or b == 0x7F:
                raise DecodeError(f"unexpected control byte {b:#04x} at offset {self.i}")
            elif b >= 0x80:
                if not self.kanji:
                    raise DecodeError(f"non-ASCII byte {b:#04x} outside FS & (Kanji mode) "
                                      f"at offset {self.i}")
                self.kanji_char()
            else:
                self.put(chr(b), False, bytes((b,)))
                self.i += 1
        self.end_run()
        if self.pending:
            raise DecodeError(f"text {''.join(p[0] for p in self.pending)!r} is never "
                              "printed: no LF after it")
        self.out.state = {"ank": (self.ank_w, self.ank_h), "kanji_size": (self.kanji_w,
                          self.kanji_h), "kanji": self.kanji, "bold": self.bold,
                          "align": self.align, "font": self.font}
        return self.out

    def esc(self, c: int) -> None:
        n: int
        if c == ord("@"):
            if self.pending:
                raise DecodeError(f"ESC @ at offset {self.i} discards unprinted text")
            self.end_run()
            self.reset()
            self.i += 2
            return
        if c == ord("!"):
            n = self.arg(2, lambda v: True, "ESC !")
            self.font = n & 1
            self.bold = bool(n & 0x08)
            self.ank_h = 2 if n & 0x10 else 1
            self.ank_w = 2 if n & 0x20 else 1
        elif c in (ord("E"), ord("G")):
            self.bold = bool(self.arg(2, lambda v: True, "ESC E") & 1)
        elif c == ord("M"):
            self.font = self.arg(2, lambda v: v in (0, 1, 48, 49), "ESC M") & 1
        elif c == ord("a"):
            n = self.arg(2, lambda v: v in (0, 1, 2, 48, 49, 50), "ESC a") & 3
            if not self.pending:  # effective only at the beginning of a line
                self.align = self.line_align = n
            else:
                self.align = n
        elif c in (ord("-"), ord("{"), ord("t"), ord("R")):
            self.arg(2, lambda v: True, f"ESC {chr(c)}")
        elif c == ord("2"):
            self.spacing = LINE_SPACING
            self.i += 2
            return
        elif c == ord("3"):
            self.spacing = self.arg(2, lambda v: True, "ESC 3")
        elif c == ord("d"):
            n = self.arg(2, lambda v: True, "ESC d")
            self.end_run()
            if self.pending:
                self.print_line()
                n = max(0, n - 1)
            self.out.height += n * self.spacing
        elif c == ord("J"):
            n = self.arg(2, lambda v: True, "ESC J")
            self.end_run()
            if self.pending:
                self.print_line(feed=n)
            else:
                self.out.height += n
        else:
            raise DecodeError(f"unknown ESC {c:#04x} at offset {self.i}")
        self.i += 3

    def fs(self, c: int) -> None:
        if c in (ord("&"), ord(".")):
            self.end_run()
            self.kanji = c == ord("&")
            self.i += 2
            return
        if c == ord("!"):
            n = self.arg(2, lambda v: not v & 0x73, "FS !")  # only bits 2, 3, 7 defined
            self.kanji_w = 2 if n & 0x04 else 1
            self.kanji_h = 2 if n & 0x08 else 1
        elif c == ord("-"):
            self.arg(2, lambda v: v in (0, 1, 2, 48, 49, 50), "FS -")
        else:
            raise DecodeError(f"unknown FS {c:#04x} at offset {self.i}")
        self.i += 3

    def gs(self, c: int) -> None:
        if c == ord("!"):
            n = self.arg(2, lambda v: not v & 0x88, "GS !")  # 1..8 each way
            w, h = (n >> 4) + 1, (n & 7) + 1
            self.ank_w = self.kanji_w = w
            self.ank_h = self.kanji_h = h
            self.i += 3
        elif c in (ord("B"), ord("b")):
            self.arg(2, lambda v: True, f"GS {chr(c)}")
            self.i += 3
        elif c in (ord("L"), ord("W")):
            lo, hi = self.need(4)[2:4]
            v = lo | hi << 8
            if self.pending:
                raise DecodeError(f"GS {chr(c)} mid-line at offset {self.i}")
            if c == ord("L"):
                self.left_margin = v
            else:
                self.area = min(v, self.out.paper - self.left_margin)
            self.i += 4
        elif c == ord("V"):
            m = self.arg(2, lambda v: v in (0, 1, 48, 49, 65, 66), "GS V")
            if self.pending:
                raise DecodeError(f"GS V at offset {self.i} cuts before the line is printed")
            self.end_run()
            if m in (65, 66):  # GS V m n: feed n dots, then cut
                self.out.height += self.need(4)[3]
            self.i += 4 if m in (65, 66) else 3
            self.out.cuts.append(self.out.height)
        elif c == ord("("):
            self.gs_paren()
        else:
            raise DecodeError(f"unknown GS {c:#04x} at offset {self.i}")

    def gs_paren(self) -> None:
        head = self.need(5)
        if head[2] != ord("k"):
            raise DecodeError(f"unknown GS ( {head[2]:#04x} at offset {self.i}")
        n = head[3] | head[4] << 8
        body = self.data[self.i + 5 : self.i + 5 + n]
        if len(body) < n or n < 2:
            raise DecodeError(f"truncated GS ( k at offset {self.i}")
        cn, fn, args = body[0], body[1], body[2:]
        if cn != 49:
            raise DecodeError(f"GS ( k symbol {cn} is not QR at offset {self.i}")
        sizes = {65: 2, 67: 1, 69: 1, 81: 1}
        if fn in sizes and len(args) != sizes[fn]:
            raise DecodeError(f"GS ( k fn {fn} takes {sizes[fn]} bytes, has {len(args)}")
        if fn == 65:
            if args[0] not in (49, 50, 51) or args[1] != 0:
                raise DecodeError(f"QR model {args!r} out of range")
        elif fn == 67:
            if not 1 <= args[0] <= 16:
                raise DecodeError(f"QR module size {args[0]} out of range 1-16")
            self.qr_module = args[0]
        elif fn == 69:
            if args[0] not in _EC_LEVELS:
                raise DecodeError(f"QR error correction {args[0]} out of range 48-51")
            self.qr_ec = _EC_LEVELS[args[0]]
        elif fn == 80:
            if len(args) < 2 or args[0] != 48:
                raise DecodeError(f"QR store at offset {self.i} is malformed")
            try:
                self.qr_data = bytes(args[1:]).decode("ascii")
            except UnicodeDecodeError:
                raise DecodeError(f"QR data at offset {self.i} is not ASCII") from None
        elif fn == 81:
            if args[0] != 48 or self.qr_data is None:
                raise DecodeError(f"QR print at offset {self.i} with no stored data")
            if self.pending:
                raise DecodeError(f"QR print at offset {self.i} in the middle of a line")
            self.end_run()
            qr = QrCode(self.qr_data, self.qr_module, self.qr_ec, self.out.height, self.align)
            self.out.rows.append(qr)
            self.out.height += qr_modules(qr) * qr.module
        else:
            raise DecodeError(f"unknown QR function {fn} at offset {self.i}")
        self.i += 5 + n


def qr_modules(qr: QrCode) -> int:
    """Modules per side of the QR symbol (the printer's encoder picks the smallest
    version that holds the data at the chosen error correction level)."""
    return len(qr_matrix(qr))


def qr_matrix(qr: QrCode) -> list[list[bool]]:
    import qrcode  # pinned in pyproject.toml

    levels = {"L": qrcode.constants.ERROR_CORRECT_L, "M": qrcode.constants.ERROR_CORRECT_M,
              "Q": qrcode.constants.ERROR_CORRECT_Q, "H": qrcode.constants.ERROR_CORRECT_H}
    code = qrcode.QRCode(error_correction=levels[qr.ec], box_size=1, border=0)
    code.add_data(qr.data.encode("ascii"))
    code.make(fit=True)
    return code.get_matrix()


def interpret(data: bytes, paper: int = PAPER_58MM) -> Printout:
    """Run ``data`` through an Epson-conformant printer ``paper`` dots wide."""
    out = _Printer(bytes(data), paper).execute()
    for qr in out.qrs:
        if qr_modules(qr) * qr.module > paper:
            raise DecodeError(f"QR code {qr.data!r} is wider than the paper: not printed")
    return out
