"""The hub's garbage-collection policy: a full collection walks only what is new since the
previous one.

Why (issue 14, measured with a gc callback and a loop-callback timer in the hub under
tools/bench/bench_live.py): even with everything loaded at start-up frozen, full collections
paused the hub's loop for 43-75 ms during the call phase, walking 175,000-240,000 objects:
the web side started after the freeze, modules imported on first use, the day's tickets,
journal records and live views. Most of them live as long as the hub or the day. So after
every full collection its survivors are frozen too (gc.freeze: out of every later
collection's walk), and the next one only walks what survived the young generations since.

The cost: a cycle among frozen objects that dies later is not reclaimed while frozen. Once a
day (the first full collection after the centre's day changed) everything is unfrozen, so
that collection walks the whole heap once and frees what the day left behind.

A full collection still walks everything that survived since the previous one: after a
burst (a morning's takes, hundreds of pages connecting) 15-25 ms of CPU, which landed
among the calls that followed (issue 14, tools/bench/bench_live.py). So the hub also collects in
its calm moments (`collect_when_calm`): no message handled for CALM_S, something promoted
to the oldest generation since the last full collection, and that one COLLECT_EVERY_S ago.
Its survivors are frozen like any other's, and the next automatic one, a quarter of them
later, has little to walk. A centre's hub is calm between almost all of its events; under
a sustained burst with no gap it collects as before. COLLECT_EVERY_S was 5 s: under
bench_live the 300 pages connected within the 5 s after the start-up's last full collection,
so no calm one ran before the calls began, and the first automatic one (14-15 ms, logged
with a gc callback in the hub) landed among them; at 1 s it ran before them (2.7-8.6 ms).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

CALM_S = 0.05  # no message handled for this long: the hub is between events
COLLECT_EVERY_S = 1.0  # a full collection in a calm moment at most this often


class Collector:
    """Install with `start()` once the hub has loaded everything it lives with."""

    def __init__(self, day: Callable[[], str]) -> None:
        self.day = day  # the centre's current day: when it changes, one whole-heap walk
        self._day = day()
        self.full = 0  # full collections seen since start()
        self.whole = 0  # ... of them walking the whole heap (unfrozen first)
        self.calm = 0  # ... of them run in a calm moment (`collect_when_calm`)
        self._full_at = time.monotonic()

    def start(self) -> None:
        gc.collect()
        gc.freeze()
        if self._after not in gc.callbacks:
            gc.callbacks.append(self._after)

    def stop(self) -> None:
        if self._after in gc.callbacks:
            gc.callbacks.remove(self._after)

    async def collect_when_calm(self, activity: Callable[[], int],
                                calm: float = CALM_S, every: float = COLLECT_EVERY_S) -> None:
        """Run until cancelled: a full collection whenever the hub is calm (`activity`, a
        count of the messages handled, did not move for `calm` s), something reached the
        oldest generation since the last full collection, and that one is `every` s old."""
        seen = activity()
        while True:
            await asyncio.sleep(calm)
            now = activity()
            if (now == seen and gc.get_count()[2] > 0
                    and time.monotonic() - self._full_at >= every):
                self.calm += 1
                gc.collect()
            seen = now

    def _after(self, phase: str, info: dict[str, Any]) -> None:
        # Runs inside the collector (any thread, any allocation): only flags and list moves.
        if phase != "stop" or info.get("generation") != 2:
            return
        self.full += 1
        self._full_at = time.monotonic()
        try:
            day = self.day()
        except Exception:  # the app being rebuilt: keep today's
            day = self._day
        # A first day after none (a new journal) leaves nothing of a past day behind.
        if day != self._day and self._day:
            self.whole += 1
            gc.unfreeze()  # the next full collection walks everything once, then freezes
        else:
            gc.freeze()  # what survived this one: out of the next one's walk
        self._day = day
