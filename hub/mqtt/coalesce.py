"""Coalescing a retained state topic that can change faster than anyone can read it.

The hall board's list of calls (`hall/calls`) is retained state: each message is the whole
list with its `rev`, so only the latest matters. At ~300 calls a second (30 windows in a
burst) the hub would publish it 300 times a second, a third of its publishes on the call
path, for a board that redraws and blinks at human speed. A `Coalescer` lets the first
change of a quiet spell through at once and then at most one message per `gap`: the
latest, sent when the gap ends. Nothing is lost that a board could show: every call stays in
the list (HALL_CALLS), and a reconnect republishes all retained state anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..devices import Publish

HALL_GAP = 0.1  # s: at most ten hall updates a second


class Coalescer:
    def __init__(self, topic: str, send: Callable[[Publish], None],
                 gap: float = HALL_GAP) -> None:
        self.topic, self.send, self.gap = topic, send, gap
        self.sent_at = -float("inf")  # loop time of the last message let through
        self.held: Publish | None = None  # the latest message, waiting for its turn
        self._timer: asyncio.TimerHandle | None = None
        self.coalesced = 0  # messages replaced by a later one before they went out

    def offer(self, p: Publish) -> bool:
        """True if `p` is this topic's and is taken care of (sent now or held for the end
        of the gap); False for any other topic (the caller sends it)."""
        if p.topic != self.topic:
            return False
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._timer is None and now - self.sent_at >= self.gap:
            self.sent_at = now
            self.send(p)
            return True
        if self.held is not None:
            self.coalesced += 1
        self.held = p
        if self._timer is None:
            self._timer = loop.call_at(self.sent_at + self.gap, self._release)
        return True

    def _release(self) -> None:
        self._timer = None
        p, self.held = self.held, None
        if p is not None:
            self.sent_at = asyncio.get_running_loop().time()
            self.send(p)

    def cancel(self) -> None:
        """Forget a held message (the hub is stopping; the next start republishes)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.held = None
