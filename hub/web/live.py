"""Live page updates over Server-Sent Events, built once per channel and fanned out.

Each open page holds one SSE stream on a channel ("hall", "ticket/<id>", "staff-floor", ...):
a channel name plus an argument. A channel's *feed* exists while someone watches it (a
ticket's feed only while its phone page is open). Every journaled step calls
`LiveHub.changed()`, which only bumps a version number: O(1) on the hub's path. One flusher
task rebuilds each stale feed's snapshot, serialises it once into an SSE frame, and hands
that same frame to every stream of the feed if it differs from the feed's last one.

Bursts are coalesced: a feed is rebuilt at most once per `interval` (leading edge: the
first change after a quiet spell goes out at once; trailing edge: the state after a burst
always goes out); a channel with many feeds (a phone page per resident) may be paced
slower. The flusher builds in slices of SLICE_S (feeds built in one slice see the same
state and share work: the phones' people-ahead walk, the wait simulation) and yields to
the loop between slices, so the hub's MQTT path never waits behind a row of snapshots;
after a pass it rests so that building takes at most BUDGET of the loop's time: with
hundreds of pages open on a busy machine the views lag a little more, the calls do not.

Snapshots are whole states, never deltas: a stream keeps only the newest frame it has not
sent yet (drop to latest), so a slow or stalled client costs one frame of memory and
delays no one; when it reads again it gets the latest state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

log = logging.getLogger("onewindow.hub.web")

Snapshot = Callable[[str], Any]  # channel argument ("" or e.g. a ticket id) -> JSON-able
KEEPALIVE_S = 15.0
INTERVAL_S = 0.25  # a feed's snapshot is rebuilt at most this often
# Builds in a row before the flusher yields. Feeds built in one slice see one state and share
# its prepared work (200 phone pages: one 1-4 ms queue walk, then ~20 us each); a slice
# shorter than that walk redid it for every page.
SLICE_S = 0.008
SLOW_S = 0.05  # a build this long is logged
BUDGET = 0.3  # the share of the hub's loop the flusher may take, averaged over a pass
MAX_ARG = 64  # a channel argument is an id: a ticket, a window number


class Stream:
    """One client's stream: the newest frame it has not been sent yet, nothing older."""

    __slots__ = ("dropped", "pending", "wake")

    def __init__(self) -> None:
        self.pending: bytes | None = None
        self.wake = asyncio.Event()
        self.dropped = 0  # frames replaced before this client took them (it was behind)

    def offer(self, frame: bytes) -> None:
        if self.pending is not None:
            self.dropped += 1
        self.pending = frame
        self.wake.set()


class Feed:
    """One channel and argument while watched: its latest frame and its streams."""

    __slots__ = ("arg", "built_at", "frame", "name", "streams", "version")

    def __init__(self, name: str, arg: str) -> None:
        self.name, self.arg = name, arg
        self.streams: set[Stream] = set()
        self.frame: bytes | None = None
        self.version = -1  # LiveHub.version when last built
        self.built_at = float("-inf")  # loop time of that build


def _log_failure(task: asyncio.Task[None]) -> None:
    """The flusher ended by a bug: say so (the next stream to open starts a new one)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("live views stopped", exc_info=task.exception())


class LiveHub:
    def __init__(self, interval: float = INTERVAL_S) -> None:
        self.channels: dict[str, Snapshot] = {}
        self.interval = interval
        self.version = 0
        self.feeds: dict[tuple[str, str], Feed] = {}
        self.paces: dict[str, float] = {}  # channels rebuilt less often than `interval`
        self.builds: Counter[str] = Counter()  # by channel name: what the views cost
        self.build_s = 0.0  # seconds spent building, in the flusher
        self._kick: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None

    def channel(self, name: str, snapshot: Snapshot) -> None:
        self.channels[name] = snapshot

    def pace(self, name: str, seconds: float) -> None:
        """Rebuild the feeds of channel `name` at most every `seconds` (>= interval)."""
        self.paces[name] = max(seconds, self.interval)

    def changed(self) -> None:
        """A step was committed: every feed is stale. Called on the hub's path: O(1)."""
        self.version += 1
        if self._kick is not None:
            self._kick.set()

    def snapshot(self, name: str, arg: str = "") -> Any:
        return self.channels[name](arg)

    # ---- building and fanning out ---------------------------------------------------------
    def _build(self, feed: Feed, now: float) -> None:
        """The feed's snapshot, built and serialised once, to all its streams if new."""
        feed.version, feed.built_at = self.version, now
        self.builds[feed.name] += 1
        try:
            data = json.dumps(self.snapshot(feed.name, feed.arg), ensure_ascii=False,
                              separators=(",", ":"))
        except Exception:  # one broken view must not stop the others
            log.exception("live channel %s/%s: snapshot failed", feed.name, feed.arg)
            return
        frame = f"event: {feed.name}\ndata: {data}\n\n".encode()
        if frame == feed.frame:
            return
        feed.frame = frame
        for s in feed.streams:
            s.offer(frame)

    async def _flush(self) -> None:
        """Rebuild stale feeds, each at most once per interval, while any feed exists."""
        loop = asyncio.get_running_loop()
        kick = self._kick
        assert kick is not None
        while self.feeds:
            kick.clear()  # before the scan: a change during it sets it again
            now = loop.time()
            due_next: float | None = None
            spent = sliced = 0.0
            # a channel's feeds one after another: in one slice they share prepared work
            for feed in sorted(self.feeds.values(), key=lambda f: f.name):
                if feed.version == self.version or not feed.streams:
                    continue
                due = feed.built_at + self.paces.get(feed.name, self.interval)
                if due > now:
                    due_next = due if due_next is None else min(due_next, due)
                    continue
                started = time.perf_counter()
                self._build(feed, now)
                took = time.perf_counter() - started
                if took > SLOW_S:  # the loop stood still for it: say which view
                    log.warning("live channel %s/%s: snapshot took %.0f ms", feed.name,
                                feed.arg, took * 1000)
                spent, sliced = spent + took, sliced + took
                if sliced >= SLICE_S:  # the hub's own work goes between slices of builds
                    sliced = 0.0
                    await asyncio.sleep(0)
                    now = loop.time()
            self.build_s += spent
            if spent:  # at most BUDGET of the loop's time: under load, views lag, calls don't
                await asyncio.sleep(spent * (1 / BUDGET - 1))
            timeout = None if due_next is None else max(0.0, due_next - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(kick.wait(), timeout)

    def _subscribe(self, name: str, arg: str) -> tuple[Feed, Stream]:
        key = (name, arg)
        feed = self.feeds.get(key)
        if feed is None:
            feed = self.feeds[key] = Feed(name, arg)
        stream = Stream()
        feed.streams.add(stream)
        if feed.frame is not None:  # the latest built; a newer one follows when due
            stream.offer(feed.frame)
        # A new feed is built by the flusher, in its slices and budget like any other: a
        # crowd of pages (re)connecting at once must not hold the loop for all their builds.
        if self._flusher is None or self._flusher.done():
            self._kick = asyncio.Event()
            self._flusher = asyncio.create_task(self._flush(), name="live-flusher")
            self._flusher.add_done_callback(_log_failure)
        elif feed.frame is None and self._kick is not None:
            self._kick.set()
        return feed, stream

    def _unsubscribe(self, feed: Feed, stream: Stream) -> None:
        feed.streams.discard(stream)
        if not feed.streams and self.feeds.get((feed.name, feed.arg)) is feed:
            del self.feeds[(feed.name, feed.arg)]  # nobody watches: no more builds
        if not self.feeds and self._kick is not None:
            self._kick.set()  # the flusher sees no feed and ends

    async def stream(self, name: str, arg: str) -> AsyncIterator[bytes]:
        feed, stream = self._subscribe(name, arg)
        try:
            yield b"retry: 1000\n\n"
            while True:
                if stream.pending is None:
                    stream.wake.clear()
                    try:
                        await asyncio.wait_for(stream.wake.wait(), KEEPALIVE_S)
                    except TimeoutError:
                        yield b": keepalive\n\n"  # a gone client shows up as a failed write
                        continue
                frame, stream.pending = stream.pending, None
                if frame is not None:
                    yield frame
        finally:
            self._unsubscribe(feed, stream)

    def response(self, name: str, arg: str, request: Request) -> Response:
        if len(arg) > MAX_ARG:
            return JSONResponse({"code": "bad_arg", "msg": f"channel argument over {MAX_ARG} "
                                 "characters"}, status_code=400)
        return StreamingResponse(self.stream(name, arg), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
