"""The hub loop's side of the wait forecast: simulating the queue again in the background, in
slices between the hub's messages, so that a take never does (hub/forecast/chain.py).

`WaitRefresher.step` does one slice of work: begin a refresh when the predictor says the
standing forecast is stale, advance the running one by one step (`REFRESH_SLICE` tickets,
~0.1-0.3 ms with 1,000 waiting), or land it when done. It holds the hub app, not its
predictor: a rebuilt state (`HubApp.reload`, a storage recovery) brings a new predictor, and
a refresh of the old one is dropped. A refresh that an unexpected operation made stale (a
window paused, a ticket skipped) is dropped at once and begun again from the new state.

Scheduling is the caller's: `run` is the hub's task (a slice per turn of the loop, then
asleep until the predictor says a refresh is due or the forecast ages); tests, benchmarks
and the evaluation call `step` or `run_pending` themselves, between the operations they
drive, as the loop would.

In the hub a slice runs only when no message waits (`busy`: the MQTT link's `waiting`).
A slice begun in the turn a message arrived in ran before the message was read, and the
next one before it was handled (both were ready ahead of it): a call that came during a
refresh waited up to two slices, 0.3-0.7 ms each with ~1,000 waiting, measured in
tools/bench/bench_hub.py (issue 14, the call -> display tail).

Why slices in the loop and not a worker thread: the simulation is mostly Python between
small numpy calls, so a thread holds the GIL nearly all the time it runs, and a message
arriving meanwhile waits for the GIL up to the switch interval (5 ms) per hand-over;
measured in tools/bench/bench_take.py (a take's p99 while a refresh runs in a thread, against the
slices' cost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from ..core.centre import Centre
from .wait import REFRESH_SLICE, Forecast, Refresh, WaitPredictor

IDLE_CHECK = 1.0  # s: asleep at most this long (a rebuilt app's new predictor is noticed)
# s: while a message waits, the slice is put off this long (a timer, not the next turn: a
# hub whose messages wait on storage coming back must not spin its loop on them)
BUSY_PAUSE = 0.0005
BUSY_MAX = 0.2  # s: ... but a slice runs at least this often while a refresh is under way
SWEEP = 256  # arrays of a replaced forecast freed per step

log = logging.getLogger(__name__)


class Hub(Protocol):
    """What the refresher reads of the hub app (hub/app/facade.py HubApp)."""

    waits: WaitPredictor
    centre: Centre
    pos: int


class WaitRefresher:
    def __init__(self, hub: Hub, clock: Callable[[], float],
                 chunk: int = REFRESH_SLICE, busy: Callable[[], bool] = lambda: False) -> None:
        self.hub, self.clock, self.chunk = hub, clock, chunk
        self.busy = busy  # a message waits: `run` puts its next slice off (module doc)
        self.deferred = 0  # ... how many times
        self.job: tuple[WaitPredictor, Refresh] | None = None
        self.done: Forecast | None = None  # the running refresh's result, landed next step
        self.litter: Forecast | None = None  # the one it replaced, freed a piece per step
        self.slices = 0  # steps run
        self.landed = 0  # refreshes adopted
        self.dropped = 0  # ... and given up (the state moved in a way they do not expect)

    def step(self) -> bool:
        """One slice of work; False when there was none (nothing is due)."""
        waits = self.hub.waits
        if self.litter is not None:
            self._sweep(self.litter)
            return True
        if self.job is not None:
            owner, r = self.job
            if owner is not waits or not waits.current(r):
                self.job, self.done = None, None
                self.dropped += 1
        if self.job is None:
            now = self.clock()
            if not waits.refresh_due(self.hub.centre, now):
                return False
            self.job = (waits, waits.refresh(self.hub.centre, now, self.hub.pos, self.chunk))
            self.slices += 1
            return True
        r = self.job[1]
        self.slices += 1
        if self.done is None:
            try:
                next(r.steps)
            except StopIteration as done:
                self.done = done.value
            return True
        # Landing is a step of its own: it replaces (frees) the old forecast, thousands of
        # arrays with a long queue.
        fc, self.job, self.done = self.done, None, None
        if waits.land(r, fc, self.hub.centre):
            self.landed += 1
            self.litter = waits.replaced()
        else:
            self.dropped += 1
        return True

    def _sweep(self, fc: Forecast, piece: int = SWEEP) -> None:
        """Free a piece of a replaced forecast (its last holder is this refresher)."""
        if fc.starts:
            for _ in range(min(piece, len(fc.starts))):
                fc.starts.popitem()
        elif fc.plan:
            del fc.plan[-piece:]
        elif fc.marks:
            del fc.marks[-piece // 8:]
        else:
            self.litter = None

    def run_pending(self) -> int:
        """Every slice due now, one after the other (as an idle loop would run them); how
        many."""
        n = 0
        while self.step():
            n += 1
        return n

    async def run(self) -> None:
        """The hub's task: a forecast first, at once if there is none (so the first takes,
        queued while the hub was away, find one), then a slice per turn of the loop while a
        refresh is due or under way and no message waits (`busy`; put off for at most
        BUSY_MAX, so a flood with no gap cannot starve it), asleep otherwise. A failing
        refresh is logged and tried again a while later: the takes go on being placed
        into the forecast there is (and with none, simulate), the hub does not stop for
        it."""
        wake = asyncio.Event()
        attached: WaitPredictor | None = None
        first = self.hub.waits.chain.chain is None
        loop = asyncio.get_running_loop()
        put_off = None  # loop time of the first of the slices put off in a row
        while True:
            waits = self.hub.waits
            if waits is not attached:
                waits.chain.on_stale = wake.set
                attached = waits
            try:
                if first:
                    first = False
                    self.run_pending()
                elif self.busy():
                    put_off = put_off or loop.time()
                    if loop.time() - put_off < BUSY_MAX:
                        self.deferred += 1
                        await asyncio.sleep(BUSY_PAUSE)
                        continue
                put_off = None
                worked = self.step()
            except Exception:
                log.exception("wait forecast: refresh at position %d failed", self.hub.pos)
                self.job = self.done = self.litter = None
                await asyncio.sleep(IDLE_CHECK)
                continue
            if worked:
                await asyncio.sleep(0)  # the hub's messages between slices
                continue
            wake.clear()
            timeout = min(max(waits.refresh_at() - self.clock(), 0.0), IDLE_CHECK)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)
