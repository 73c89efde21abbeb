# buzzer.py - beeps and a two-tone chime on a passive buzzer (PWM), an active buzzer
# (plain on/off pin) or the sim board's tone sink.
#
# Duck typing, checked once in the constructor:
#   PWM-like:  freq(hz) and duty_u16(d)           (machine.PWM on ESP32, RP2)
#   tone sink: tone(freq, ms) (the sim board: records the beep, no timing of its own)
#   pin-like:  value(v)                           (active buzzer: frequency is fixed)

import asyncio

from micropython import const

_PWM = const(0)
_TONE = const(1)
_PIN = const(2)

# "Ding-dong": a falling major third, like a shop-door chime (E6 then C6).
_DING = const(1319)
_DONG = const(1047)


class Buzzer:
    def __init__(self, dev, volume=0x8000):
        self.dev = dev
        self.volume = volume  # PWM duty: 50 % is the loudest square wave
        if hasattr(dev, "duty_u16"):
            self._kind = _PWM
            dev.duty_u16(0)
        elif hasattr(dev, "tone"):
            self._kind = _TONE
        else:
            self._kind = _PIN
            dev.value(0)
        self._busy = False  # one sound at a time, never interleaved

    def _on(self, freq, ms):
        d = self.dev
        if self._kind == _PWM:
            d.freq(freq)
            d.duty_u16(self.volume)
        elif self._kind == _TONE:
            d.tone(freq, ms)
        else:
            d.value(1)

    def _off(self):
        if self._kind == _PWM:
            self.dev.duty_u16(0)
        elif self._kind == _PIN:
            self.dev.value(0)

    async def _beep(self, freq, ms):
        self._on(freq, ms)
        try:
            await asyncio.sleep_ms(ms)
        finally:
            self._off()  # also when cancelled: never leave the buzzer screaming

    # A sound asked for while another plays is dropped, not queued: calls can come faster
    # than chimes, and a queue of waiting sounds would grow the heap without bound.
    async def beep(self, freq=2000, ms=100):
        if self._busy:
            return
        self._busy = True
        try:
            await self._beep(freq, ms)
        finally:
            self._busy = False

    async def chime(self):
        if self._busy:
            return
        self._busy = True
        try:
            await self._beep(_DING, 250)
            await asyncio.sleep_ms(50)
            await self._beep(_DONG, 450)
        finally:
            self._busy = False
