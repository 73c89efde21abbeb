# printer.py - ESC/POS thermal printer on a UART: non-blocking writes and real-time status.
#
# write() streams in small chunks and yields to asyncio between them, so a long bitmap
# ticket never stalls MQTT keepalives or button scanning. A UART's write() may accept
# fewer bytes than offered, or return None when its TX buffer is full (non-blocking UARTs,
# hardware flow control): the rest is retried after a short sleep, and a printer that
# accepts nothing for `stall_ms` makes write() raise OSError.
#
# status() uses the real-time status transmission DLE EOT n (10 04 n): the printer answers
# with one byte even while offline, out of paper or with the cover open. Every status byte
# has bits 1 and 4 set and bits 0 and 7 clear; anything else on the line is ignored.
#
# Duck typing: `uart` needs write(buf) -> int | None, read(n) -> bytes | None, any() -> int.
#
# write_b64() prints the hub's ticket (base64 text in its print command) by decoding it a
# chunk at a time into one buffer allocated with the Printer (at boot) and reused: a ticket
# is never copied whole into RAM. Large short-lived copies are what fragment a board's heap.
#
# ESC/POS the box composes itself (the offline ticket) follows the Epson rules the hub's
# tickets follow (hub/render/escpos.py): character sizes are per mode, ESC ! sizes ASCII
# only, FS ! Chinese only, GS ! both, the last command received wins per mode. So an
# enlarged line sets all three and is followed by all three at 0.

import asyncio
import time

from micropython import const

_DLE = const(0x10)
_EOT = const(0x04)
_CHUNK = const(64)
_POLL_MS = const(5)
_FIXED_MASK = const(0x93)  # bits 7, 4, 1, 0
_FIXED = const(0x12)  # bits 4 and 1 set
_PAD = const(0x3D)  # "="

# n = 1 printer status
_OFFLINE = const(0x08)
# n = 2 offline cause
_COVER_OPEN = const(0x04)
_PAPER_STOP = const(0x20)
# n = 4 roll paper sensor
_NEAR_END = const(0x0C)
_PAPER_END = const(0x60)


SIZE_4X = b"\x1b!\x30\x1c!\x0c\x1d!\x33"  # ESC !, FS ! (2x2), GS ! 4x4: both modes
SIZE_NORMAL = b"\x1b!\x00\x1c!\x00\x1d!\x00"  # ESC ! 0, FS ! 0, GS ! 0: both at 1x

# base64 character -> its 6 bits; 0xFF for anything else (built once, at import)
_B64 = bytearray(b"\xff" * 256)
for _i, _c in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"):
    _B64[_c] = _i


def _b64_check(src):
    """The byte count src (bytes of base64 text) stands for; ValueError unless it is whole
    quads of base64 characters, padding last."""
    n = len(src)
    if n % 4:
        raise ValueError("base64 length %d" % n)
    pad = 2 if n and src[n - 2] == _PAD else 1 if n and src[n - 1] == _PAD else 0
    if pad == 2 and src[n - 1] != _PAD:
        raise ValueError("base64 padding")
    dec = _B64
    for i in range(n - pad):
        if dec[src[i]] > 63:
            raise ValueError("base64 character at %d" % i)
    return n // 4 * 3 - pad


def _b64_into(src, i, end, out):
    """Decode src[i:end] (checked, whole quads) into out; the byte count."""
    dec, o = _B64, 0
    while i < end:
        a = dec[src[i]]  # one name at a time: a 4-tuple assignment would allocate
        b = dec[src[i + 1]]
        c = src[i + 2]
        d = src[i + 3]
        out[o] = (a << 2) | (b >> 4)
        o += 1
        if c == _PAD:
            break
        c = dec[c]
        out[o] = ((b & 15) << 4) | (c >> 2)
        o += 1
        if d == _PAD:
            break
        out[o] = ((c & 3) << 6) | dec[d]
        o += 1
        i += 4
    return o


def ascii_bytes(text):
    """text as printable ASCII, "?" for anything else: the box has no GBK encoder, and
    UTF-8 bytes outside the printer's Chinese mode print as garbage."""
    return bytes(ord(c) if 0x20 <= ord(c) <= 0x7E else 0x3F for c in text)


class Printer:
    def __init__(self, uart, chunk=_CHUNK, timeout_ms=200, stall_ms=5000):
        self.uart = uart
        self.chunk = chunk
        self.timeout_ms = timeout_ms
        self.stall_ms = stall_ms
        self._req = bytearray((_DLE, _EOT, 0))
        self._buf = bytearray(chunk // 3 * 3)  # write_b64's decoded chunk, for every ticket
        self._bufv = memoryview(self._buf)
        self.lock = asyncio.Lock()  # status requests must not split a write

    async def write(self, data):
        """Send all of data; returns the byte count. Raises OSError on a stalled UART."""
        async with self.lock:
            return await self._write(data)

    async def write_b64(self, text):
        """Send the bytes base64 `text` (str or bytes) stands for, decoded a chunk at a time
        into the Printer's own buffer; returns the byte count. ValueError before anything is
        sent if it is not base64. One loop, no call per chunk: nothing is allocated per
        chunk either (a coroutine per call would be)."""
        src = memoryview(text)
        size = _b64_check(src)
        uart, buf, bufv = self.uart, self._buf, self._bufv
        step = len(buf) // 3 * 4  # base64 characters that fill the buffer
        n, i, total = len(src), 0, 0
        async with self.lock:
            while i < n:
                k = _b64_into(src, i, i + step if i + step < n else n, buf)
                i += step
                off = 0
                t0 = time.ticks_ms()
                while off < k:
                    w = uart.write(buf if not off and k == len(buf) else bufv[off:k])
                    if w:
                        off += w
                        t0 = time.ticks_ms()
                        await asyncio.sleep_ms(0)
                    else:
                        self._stalled(t0, total + off, size)
                        await asyncio.sleep_ms(10)
                total += k
        return total

    def _stalled(self, t0, off, n):
        if time.ticks_diff(time.ticks_ms(), t0) > self.stall_ms:
            raise OSError("printer stalled at %d/%d" % (off, n))

    async def _write(self, data):
        mv = memoryview(data)
        n = len(mv)
        off = 0
        t0 = time.ticks_ms()
        while off < n:
            w = self.uart.write(mv[off : off + self.chunk])
            if w:
                off += w
                t0 = time.ticks_ms()
                await asyncio.sleep_ms(0)
            else:
                self._stalled(t0, off, n)
                await asyncio.sleep_ms(10)
        return n

    def _drain(self):
        # Discard stale input (late answers of an earlier timed-out request).
        u = self.uart
        while u.any():
            if not u.read(u.any()):
                break

    async def _ask(self, n):
        self._req[2] = n
        await self._write(self._req)
        u = self.uart
        t0 = time.ticks_ms()
        while time.ticks_diff(time.ticks_ms(), t0) < self.timeout_ms:
            if u.any():
                b = u.read(1)
                if b and (b[0] & _FIXED_MASK) == _FIXED:
                    return b[0]
            else:
                await asyncio.sleep_ms(_POLL_MS)
        return None

    async def status(self):
        """{"online", "paper_out", "cover_open", "paper_near_end"} or None on timeout."""
        async with self.lock:
            self._drain()
            s1 = await self._ask(1)
            if s1 is None:
                return None
            s2 = await self._ask(2)
            s4 = await self._ask(4)
        if s2 is None or s4 is None:
            return None
        return {
            "online": not s1 & _OFFLINE,
            "paper_out": bool(s4 & _PAPER_END) or bool(s2 & _PAPER_STOP),
            "cover_open": bool(s2 & _COVER_OPEN),
            "paper_near_end": bool(s4 & _NEAR_END),
        }


def alerts(status):
    """Alert strings for the device status message; None (no answer) -> printer_offline."""
    if status is None:
        return ["printer_offline"]
    out = []
    for k in ("paper_out", "cover_open"):
        if status[k]:
            out.append(k)
    if status["paper_near_end"] and not status["paper_out"]:
        out.append("paper_near_end")  # the near-end sensor also trips when paper is out
    if not status["online"] and not (status["paper_out"] or status["cover_open"]):
        out.append("printer_offline")
    return out
