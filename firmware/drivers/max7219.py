# max7219.py - MAX7219/MAX7221 LED driver: dot-matrix chains and 8-digit 7-segment.
#
# Written from the Maxim MAX7219 datasheet. Every transfer is one 16-bit word per chip,
# register address in the high byte, latched on the rising edge of CS (LOAD). In a daisy
# chain the first word clocked out ends in the chip furthest from the MCU, so one CS frame
# carries one word per chip, far chip first.
#
# Duck typing: `spi` needs write(buf); `cs` needs value(v) (machine.Pin, a Signal, or a
# test fake that records the bytes).

import framebuf
from micropython import const

_NOOP = const(0x00)
_DIGIT0 = const(0x01)  # digit registers 0x01..0x08
_DECODE = const(0x09)
_INTENSITY = const(0x0A)
_SCAN_LIMIT = const(0x0B)
_SHUTDOWN = const(0x0C)
_TEST = const(0x0F)


class _Chain:
    # n chips on one CS line; _buf holds one CS frame (2 bytes per chip).
    def __init__(self, spi, cs, n):
        self._spi = spi
        self._cs = cs
        self._n = n
        self._frame = bytearray(2 * n)
        cs.value(1)

    def _all(self, reg, val):
        # The same register write to every chip in the chain.
        f = self._frame
        for i in range(self._n):
            f[2 * i] = reg
            f[2 * i + 1] = val
        self._send()

    def _send(self):
        self._cs.value(0)
        self._spi.write(self._frame)
        self._cs.value(1)

    def _init(self, scan_limit, level):
        # Order from the datasheet's power-up notes: stay in shutdown while configuring,
        # so the panel never flashes the (random) power-on digit contents.
        self._all(_SHUTDOWN, 0)
        self._all(_TEST, 0)
        self._all(_DECODE, 0)  # no-decode: each digit register is a raw bit pattern
        self._all(_SCAN_LIMIT, scan_limit)
        self._all(_INTENSITY, level & 0x0F)
        for d in range(scan_limit + 1):
            self._all(_DIGIT0 + d, 0)
        self._all(_SHUTDOWN, 1)

    def brightness(self, level):
        """Intensity 0..15 (duty 1/32 .. 31/32)."""
        if not 0 <= level <= 15:
            raise ValueError("brightness 0..15")
        self._all(_INTENSITY, level)

    def poweroff(self):
        self._all(_SHUTDOWN, 0)

    def poweron(self):
        self._all(_SHUTDOWN, 1)


class _Panel:
    # What Matrix and Seg7 both pass on to their chain. A plain mixin: Matrix's native base
    # (FrameBuffer) comes first, which MicroPython allows beside one Python class.
    _chain: _Chain  # set by each subclass's __init__ (an annotation alone costs no RAM)

    def brightness(self, level):
        self._chain.brightness(level)

    def poweroff(self):
        self._chain.poweroff()

    def poweron(self):
        self._chain.poweron()


class Matrix(framebuf.FrameBuffer, _Panel):
    """8x8 modules in one chain, laid out in `rows` rows (row-major, module 0 at the top
    left and nearest the MCU). Width 8 * n_modules / rows, height 8 * rows; MONO_HLSB, so
    one framebuffer byte is one digit register of one module (bit 7 = leftmost column)."""

    def __init__(self, spi, cs, n_modules, rows=1, brightness=3):
        if n_modules % rows:
            raise ValueError("n_modules % rows")
        self._cols = n_modules // rows
        self.width = 8 * self._cols
        self.height = 8 * rows
        self.n = n_modules
        self.buf = bytearray(self.width * self.height // 8)
        super().__init__(self.buf, self.width, self.height, framebuf.MONO_HLSB)
        self._chain = _Chain(spi, cs, n_modules)
        self._chain._init(7, brightness)

    def show(self):
        # 8 CS frames: frame d sets digit register d of every module.
        ch = self._chain
        f = ch._frame
        buf = self.buf
        cols = self._cols
        n = self.n
        for d in range(8):
            for m in range(n):
                # Module m sits at (row m // cols, column m % cols); it is the
                # (n - 1 - m)-th word of the frame (far chip first).
                y = (m // cols) * 8 + d
                i = 2 * (n - 1 - m)
                f[i] = _DIGIT0 + d
                f[i + 1] = buf[y * cols + m % cols]
            ch._send()


# Segment bits in no-decode mode: D7=DP D6=A D5=B D4=C D3=D D2=E D1=F D0=G.
_FONT = {
    "0": 0x7E,
    "1": 0x30,
    "2": 0x6D,
    "3": 0x79,
    "4": 0x33,
    "5": 0x5B,
    "6": 0x5F,
    "7": 0x70,
    "8": 0x7F,
    "9": 0x7B,
    "A": 0x77,
    "B": 0x1F,  # b
    "C": 0x4E,
    "D": 0x3D,  # d
    "E": 0x4F,
    "F": 0x47,
    "H": 0x37,
    "L": 0x0E,
    "P": 0x67,
    "U": 0x3E,
    "-": 0x01,
    " ": 0x00,
}
_DP = const(0x80)


def seg_bits(s, digits=8):
    """Segment patterns for text s, leftmost digit first, padded/clipped to `digits`.
    A '.' lights the decimal point of the digit before it; unknown characters are blank."""
    out = bytearray(digits)
    i = 0
    for ch in s:
        if ch == "." and i:
            out[i - 1] |= _DP
            continue
        if i >= digits:
            break
        out[i] = _FONT.get(ch.upper(), 0)
        i += 1
    return out


class Seg7(_Panel):
    """One MAX7219 driving up to 8 common-cathode digits. DIG0 (register 1) is the
    rightmost digit, as on the common 8-digit modules."""

    def __init__(self, spi, cs, digits=8, brightness=8):
        if not 1 <= digits <= 8:
            raise ValueError("digits 1..8")
        self.digits = digits
        self._chain = _Chain(spi, cs, 1)
        self._chain._init(digits - 1, brightness)
        self.text = ""

    def show_text(self, s):
        bits = seg_bits(s, self.digits)
        n = self.digits
        f = self._chain._frame
        for i in range(n):
            f[0] = _DIGIT0 + n - 1 - i
            f[1] = bits[i]
            self._chain._send()
        self.text = s
