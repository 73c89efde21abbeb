"""The ticket scanner: a USB barcode/QR reader in keyboard-wedge mode, read with evdev.

The scanner "types" what it reads and presses Enter. We grab its input device (so the
text does not also land in whatever has focus) and turn key-down events back into the
string. A string that is not one of our tickets is reported and dropped.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from typing import Any

EV_KEY = 1
KEY_DOWN = 1
MAX_LEN = 256  # a scan longer than this is not ours; reset rather than grow

# evdev key codes (linux/input-event-codes.h) of what a QR ticket code can contain.
_PLAIN = {2: "1", 3: "2", 4: "3", 5: "4", 6: "5", 7: "6", 8: "7", 9: "8", 10: "9", 11: "0",
          12: "-", 13: "=", 16: "q", 17: "w", 18: "e", 19: "r", 20: "t", 21: "y", 22: "u",
          23: "i", 24: "o", 25: "p", 30: "a", 31: "s", 32: "d", 33: "f", 34: "g", 35: "h",
          36: "j", 37: "k", 38: "l", 39: ";", 44: "z", 45: "x", 46: "c", 47: "v", 48: "b",
          49: "n", 50: "m", 51: ",", 52: ".", 53: "/", 57: " "}
_SHIFTED = {2: "!", 3: "@", 4: "#", 5: "$", 6: "%", 7: "^", 8: "&", 9: "*", 10: "(", 11: ")",
            12: "_", 13: "+", 39: ":", 51: "<", 52: ">", 53: "?"}
_SHIFT = (42, 54)
_ENTER = (28, 96)

# A ticket's QR code holds its status URL ".../t/20261123-A017", with the ticket's token
# "?k=..." when the hub signs tickets (hub/core/signing.py); a clerk may also type the id
# or the number.
TICKET = re.compile(r"(?:^|/t/)(\d{8}-[A-Z]\d{3,4}|[A-Z]\d{3,4})/?(?:\?k=[A-Z2-7]+)?$")


class WedgeDecoder:
    """Key events in, scanned strings out (one per Enter)."""

    def __init__(self) -> None:
        self._buf: list[str] = []
        self._shift = False

    def feed(self, type_: int, code: int, value: int) -> str | None:
        if type_ != EV_KEY:
            return None
        if code in _SHIFT:
            self._shift = value != 0  # down or autorepeat: held
            return None
        if value != KEY_DOWN:
            return None
        if code in _ENTER:
            text, self._buf = "".join(self._buf), []
            return text or None
        ch = (_SHIFTED.get(code) if self._shift else None) or _PLAIN.get(code)
        if ch is not None:
            self._buf.append(ch.upper() if self._shift and ch.isalpha() else ch)
        if len(self._buf) > MAX_LEN:
            self._buf = []
        return None


def ticket_ref(text: str) -> str | None:
    """The ticket id or number a scan names, or None if it is not one of ours."""
    m = TICKET.search(text.strip())
    return m.group(1) if m else None


async def scans(events: AsyncIterator[Any] | Iterable[Any]) -> AsyncIterator[str]:
    """Scanned strings from evdev events (`InputDevice.async_read_loop()`, or recorded)."""
    decoder = WedgeDecoder()
    if hasattr(events, "__aiter__"):
        async for e in events:  # type: ignore[union-attr]
            text = decoder.feed(e.type, e.code, e.value)
            if text is not None:
                yield text
    else:
        for e in events:  # type: ignore[union-attr]
            text = decoder.feed(e.type, e.code, e.value)
            if text is not None:
                yield text


def open_device(path: str) -> Any:
    """The scanner's evdev device, grabbed so its keystrokes go only to us."""
    import evdev

    dev = evdev.InputDevice(path)
    dev.grab()
    return dev
