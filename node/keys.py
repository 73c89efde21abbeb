"""GPIO keys and lamps with gpiozero, bridged into asyncio.

gpiozero calls `when_pressed` from its own pin-watching thread on a real Pi (and from the
caller's thread with its MockFactory in tests), so every callback goes through
`loop.call_soon_threadsafe` into a bounded asyncio queue: the node's logic runs only on
the event loop, whichever thread pressed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("onewindow.node")

MAX_PENDING = 8  # presses waiting for the app; a stuck app drops presses, not memory
BOUNCE_S = 0.02  # gpiozero's own debounce


class KeyBridge:
    """Thread-safe press intake: `press(name)` from any thread, `await next()` on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[str] = asyncio.Queue(MAX_PENDING)
        self.dropped = 0

    def press(self, name: str) -> None:
        self.loop.call_soon_threadsafe(self._put, name)

    def _put(self, name: str) -> None:
        try:
            self.queue.put_nowait(name)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("key %s dropped: %d presses already waiting", name, MAX_PENDING)

    async def next(self) -> str:
        return await self.queue.get()


class Keys:
    """The node's buttons (BCM pin numbers, wired to ground) feeding a KeyBridge."""

    def __init__(self, pins: dict[str, int], bridge: KeyBridge,
                 pin_factory: Any | None = None) -> None:
        from gpiozero import Button

        self.buttons = {}
        for name, pin in pins.items():
            b = Button(pin, pull_up=True, bounce_time=BOUNCE_S, pin_factory=pin_factory)
            b.when_pressed = lambda _b=None, n=name: bridge.press(n)
            self.buttons[name] = b

    def close(self) -> None:
        for b in self.buttons.values():
            b.close()


class Lamps:
    """Status LEDs and the buzzer: `ok`, `err` lamps and a `buzzer` (all optional)."""

    def __init__(self, pins: dict[str, int], pin_factory: Any | None = None) -> None:
        from gpiozero import LED, Buzzer

        self.leds = {n: LED(p, pin_factory=pin_factory) for n, p in pins.items()
                     if n != "buzzer"}
        self.buzzer = (Buzzer(pins["buzzer"], pin_factory=pin_factory)
                       if "buzzer" in pins else None)

    def show(self, ok: bool) -> None:
        """Blink the verdict of a key press (gpiozero's own background thread times it)."""
        led = self.leds.get("ok" if ok else "err")
        if led is not None:
            led.blink(on_time=0.3, off_time=0.2, n=1 if ok else 2)
        if not ok and self.buzzer is not None:
            self.buzzer.beep(on_time=0.15, off_time=0.1, n=1)

    def close(self) -> None:
        for led in self.leds.values():
            led.close()
        if self.buzzer is not None:
            self.buzzer.close()
