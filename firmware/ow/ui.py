# Input and drawing helpers shared by the apps: debounced buttons, LED feedback and
# framebuf drawing of hub-rendered bitmaps next to board-drawn ASCII.

import asyncio
import time
from binascii import a2b_base64

import framebuf
from micropython import const

_STABLE = const(2)  # equal samples in a row that make a level change real
_CONFIRM_MS = const(2)  # gap between those samples
_LOCKOUT_MS = const(20)  # after an accepted change the contact bounces: ignore it
_MAX_PRESSES = const(8)  # presses queued while the app is busy; more are dropped
FONT = const(8)  # framebuf's built-in font is 8x8


class Buttons:
    """Debounced buttons: pin-likes whose value() is 1 while pressed. A level change counts
    after _STABLE equal samples _CONFIRM_MS apart, then the pin is left alone for
    _LOCKOUT_MS while it bounces. With `irq` (a board's button_irq) an edge wakes the
    scanner at once, so a press is seen in ~2 ms; without, pins are polled every poll_ms.
    Presses queue (bounded) until the app takes them."""

    def __init__(self, pins, poll_ms=5, irq=None):
        self.pins = pins
        self.poll_ms = poll_ms
        self._level = {}
        self._count = {}
        self._since = {}
        for name in pins:
            self._level[name] = 0
            self._count[name] = 0
            self._since[name] = time.ticks_add(time.ticks_ms(), -_LOCKOUT_MS)
        self._q = []
        self._evt = asyncio.Event()
        self._wake = None
        if irq is not None:
            self._wake = asyncio.ThreadSafeFlag()
            irq(self._wake.set)
        self.dropped = 0

    async def scan(self):
        while True:
            if self._sample():
                await asyncio.sleep_ms(_CONFIRM_MS)
            elif self._wake is not None:
                try:
                    await asyncio.wait_for_ms(self._wake.wait(), self.poll_ms)
                except asyncio.TimeoutError:
                    pass
            else:
                await asyncio.sleep_ms(self.poll_ms)

    def _sample(self):
        """One pass over the pins; True while some pin is settling or being confirmed."""
        pins, level, count, since = self.pins, self._level, self._count, self._since
        now = time.ticks_ms()
        busy = False
        for name in pins:
            if time.ticks_diff(now, since[name]) < _LOCKOUT_MS:
                busy = True
                continue
            v = 1 if pins[name].value() else 0
            if v == level[name]:
                count[name] = 0
                continue
            count[name] += 1
            busy = True
            if count[name] >= _STABLE:
                level[name] = v
                count[name] = 0
                since[name] = now
                if v:
                    self._press(name)
        return busy

    def _press(self, name):
        if len(self._q) >= _MAX_PRESSES:
            self.dropped += 1
            return
        self._q.append(name)
        self._evt.set()

    async def next(self):
        while not self._q:
            self._evt.clear()
            await self._evt.wait()
        return self._q.pop(0)


def board_buttons(board):
    """The board's buttons, scanned at its poll period and woken by its pin IRQs."""
    return Buttons(board.buttons or {}, board.poll_ms, getattr(board, "button_irq", None))


async def flash(leds, name, ms=300, times=1):
    """LED feedback: light `name` for ms, `times` times (no-op on boards without it)."""
    led = leds.get(name) if leds else None
    if led is None:
        return
    for i in range(times):
        led.value(1)
        await asyncio.sleep_ms(ms)
        led.value(0)
        if i + 1 < times:
            await asyncio.sleep_ms(ms)


def bitmap(bmp):
    """A hub-rendered {"w", "h", "b": base64 MONO_HLSB} bitmap as a FrameBuffer."""
    w, h = bmp["w"], bmp["h"]
    data = bytearray(a2b_base64(bmp["b"]))
    if len(data) != (w + 7) // 8 * h:
        raise ValueError("bitmap size")
    return framebuf.FrameBuffer(data, w, h, framebuf.MONO_HLSB), w, h


def text_right(fb, s, y, c=1):
    fb.text(s, fb.width - len(s) * FONT, y, c)


def text_centre(fb, s, y, c=1):
    fb.text(s, max(0, (fb.width - len(s) * FONT) // 2), y, c)


async def wait_event(evt, ms):
    """Sleep up to ms; True at once if evt is set meanwhile (a newer state to draw)."""
    try:
        await asyncio.wait_for_ms(evt.wait(), ms)
        return True
    except asyncio.TimeoutError:
        return False
