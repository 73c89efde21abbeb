"""Live page updates over Server-Sent Events, built once per channel and fanned out.

Each open page holds one SSE stream on a channel ("hall", "ticket/<id>", "staff-floor", ...):
a channel name plus an argument. A channel's *feed* exists while someone watches it (a
ticket's feed only while its phone page is open). Every journaled step calls
`LiveHub.changed()`, which only bumps a version number: O(1) on the hub's path. One flusher
task rebuilds each stale feed's snapshot, serialises what changed once into an SSE frame,
and hands that same frame to every stream of the feed (nothing when nothing changed).

Bursts are coalesced: a feed is rebuilt at most once per `interval` (leading edge: the
first change after a quiet spell goes out at once; trailing edge: the state after a burst
always goes out); a channel with many feeds (a phone page per resident) may be paced
slower, and a feed that is costly to build is paced by its cost (FEED_SHARE).

The hub's MQTT path waits for whatever the loop is doing when a call arrives, so the
flusher works in slices of about SLICE_S and yields to the loop between them (issue 14:
8 ms slices put the call -> display p99 with 300 pages open at 1.5-1.9x the p99
without). A slice counts the feeds it built and the streams it woke: each woken stream
writes its frame in the loop's next turn (WAKE_S each), so 200 phone pages changed in one
slice were 10-15 ms of writes in one turn. Feeds built during one pass share work prepared
for the pass (`shared_key`: the phones' people-ahead walk), and are rebuilt again if the
state moved meanwhile. After a pass the flusher rests so that
building takes at most BUDGET of the loop's time: with hundreds of pages open on a busy
machine the views lag a little more, the calls do not.

A page gets the whole snapshot when it connects, then only what changed (hub/web/
livepatch.py: operations computed once per change for the feed and sent to each of its
streams that has the previous frame; ow.js applies them). A small snapshot (under
DIFF_MIN_BYTES: a phone's ticket) is sent whole every time, and so is a change that
touches most of a snapshot. Frames carry an SSE `id` (the feed's sequence), and a delta
names the frame it applies to: a page whose last frame is not that one reconnects and is
sent the whole state. A stream holds no frames, only which of the feed's it has sent
(drop to latest): a slow or stalled client costs no memory and delays no one; when it
reads again it is sent the latest state whole (or the latest delta when it missed none).
The whole frame is serialised only when a stream needs it (one that connects or fell
behind, or a keyframe every KEYFRAME_S): in a burst the flusher serialises the deltas.

Feeds of one pass may share parts of their snapshots: the 30 clerk consoles of windows
alike show one queue object (hub/web/console.py). Its delta is computed once for all of
them (livepatch.Memo) and its JSON, as a value of a snapshot or of a delta, made once
(`Fragments`, by identity, for the pass): at 400 calls/s a console's 50 listed tickets are
all new at every build, and diffing and serialising them per console were most of what the
views cost the hub (issue 14).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import json.encoder
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Generator, Hashable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from . import livepatch

log = logging.getLogger("onewindow.hub.web")

Snapshot = Callable[[str], Any]  # channel argument ("" or e.g. a ticket id) -> JSON-able
# A snapshot built in pieces: a generator that yields between them and returns the snapshot
# (`Pieces`). The flusher lets the hub's own work in between pieces as between feeds, so a
# costly view (the supervisors' floor: a dozen parts, 3-7 ms in all) is no longer one piece
# the calls arriving meanwhile wait behind. The parts may see the state a few steps apart;
# the feed is then stale and rebuilt at its next pace, as after any change.
Pieces = Generator[None, None, Any]
# A stream that sent nothing for about this long (between half of it and all of it) is sent
# an SSE comment: a gone client shows up as a failed write, a proxy sees the stream alive.
# The flusher sweeps the streams every half of it: no timer per stream per frame.
KEEPALIVE_S = 15.0
INTERVAL_S = 0.25  # a feed's snapshot is rebuilt at most this often
SLICE_S = 0.001  # the loop's time one slice of building and waking may take, about
# What one woken stream costs the loop's next turn: the generator's step, the ASGI send and
# the socket write of one frame (measured in the hub under tools/bench/bench_live.py: 50-75 us of
# CPU on the 2-core benchmark machine, busy).
WAKE_S = 50e-6
SLOW_S = 0.05  # a build this long is logged
BUDGET = 0.3  # the share of the hub's loop the flusher may take, averaged over a pass
# A feed is rebuilt at most as often as keeps its builds under this share of the loop: a
# 4-7 ms snapshot (the supervisors' floor, 33 KB) is one piece the loop cannot slice, and
# each one delays the calls arriving meanwhile; it goes out every 0.4-0.5 s, not 0.25 s.
FEED_SHARE = 0.01
MAX_PACE_S = 0.5  # ... but at least this often: every page shows each change within 1 s
MAX_ARG = 64  # a channel argument is an id: a ticket, a window number
# Between slices the flusher lets waiting device messages go first (`busy`: the hub's MQTT
# socket or queue has one), turn after turn of the loop, but at most this many turns in a
# row: saturated by calls, the views still move (each page sees each change within 1 s).
YIELD_TURNS = 64
# A snapshot whose whole frame is under this is sent whole: a delta saves little and costs
# its diff (a phone's ticket view, ~0.3 KB, 200 of them).
DIFF_MIN_BYTES = 2048
# A delta this large a share of the whole frame is sent as the whole frame instead.
DIFF_MAX_SHARE = 0.5
# At least this often a feed sends the whole state to every stream (a keyframe): whatever
# a page made of the deltas is replaced by the state itself.
KEYFRAME_S = 60.0


class Stream:
    """One client's stream: which of its feed's frames it was sent last, nothing more."""

    __slots__ = ("dropped", "pending", "ping", "quiet", "sent", "wake")

    def __init__(self) -> None:
        self.pending = False  # the feed has a frame this stream has not been sent
        self.sent = -1  # the feed's sequence number of the last frame sent (-1: none)
        self.wake = asyncio.Event()
        self.dropped = 0  # frames replaced before this client took them (it was behind)
        self.quiet = False  # nothing written since the flusher's last keepalive sweep
        self.ping = False  # a keepalive comment is to be written

    def sweep(self) -> None:
        """The flusher's keepalive sweep: quiet since the last one, it is sent a comment."""
        if self.quiet:
            self.ping = True
            self.wake.set()
        self.quiet = True

    def offer(self) -> None:
        if self.pending:
            self.dropped += 1
        self.pending = True
        self.wake.set()


class Feed:
    """One channel and argument while watched: its latest state and its streams."""

    __slots__ = ("arg", "built_at", "cost", "data", "delta", "frame", "keyed_at", "name",
                 "seq", "size", "snap", "streams", "version")

    def __init__(self, name: str, arg: str) -> None:
        self.name, self.arg = name, arg
        self.streams: set[Stream] = set()
        self.seq = -1  # the latest frame's sequence number (-1: none built yet)
        self.snap: Any = None  # the latest snapshot (what the next delta is computed from)
        self.frame: bytes | None = None  # its whole frame, once a stream needed it
        self.data: str | None = None  # the JSON of that frame, when serialised as built
        self.size = 0  # bytes of the last whole frame serialised
        self.delta: bytes | None = None  # seq - 1 -> seq, when sent as a delta
        self.keyed_at = float("-inf")  # loop time of the last whole frame sent to all
        self.version = -1  # LiveHub.version its last build showed (at least)
        self.built_at = float("-inf")  # loop time of that build
        self.cost = 0.0  # seconds that build took

    def whole(self) -> bytes:
        """The latest state's whole frame (serialised the first time it is asked for)."""
        if self.frame is None:
            self.frame = _frame(self.seq, self.name, _dumps(self.snap))
            self.size = len(self.frame)
        return self.frame

    def next_for(self, stream: Stream) -> bytes:
        """What `stream` is sent now: the delta when it has the frame before, else whole."""
        frame = (self.delta if self.delta is not None and stream.sent == self.seq - 1
                 else self.whole())
        stream.sent = self.seq
        return frame


def _alike(a: dict[str, Any], b: dict[str, Any], volatile: frozenset[str]) -> bool:
    """`a` and `b` are the same but for their `volatile` keys."""
    return a.keys() == b.keys() and all(
        k in volatile or livepatch.same(v, b[k]) for k, v in a.items())


def _encoder() -> Callable[[Any], str]:
    """json.dumps(value, ensure_ascii=False, separators=(",", ":")), the same text, without
    making an encoder per call (json.dumps makes a JSONEncoder, its encode a C encoder:
    3-5 us of a frame's ~1 for a delta's operation, and a delta has tens of them).
    Snapshots hold no cycles: the C encoder is made without the check for them."""
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python without json's C speed-ups
        return encoder.encode
    encode = make(None, encoder.default, json.encoder.encode_basestring, None, ":", ",",
                  False, False, True)
    join = "".join
    return lambda value: join(encode(value, 0))


_dumps = _encoder()


class Fragments:
    """The JSON of values that several feeds' snapshots share, serialised once for a pass of
    the flusher: the queue of the clerk consoles alike is one object in 30 snapshots, and
    so are the items of its delta (livepatch.Memo). By identity, holding each value so that
    no id is reused while the pass lasts; only lists and dicts (a scalar costs less to
    serialise than to look up)."""

    __slots__ = ("got", "hits")

    def __init__(self) -> None:
        self.got: dict[int, tuple[Any, str]] = {}
        self.hits = 0

    def json(self, value: Any) -> str:
        kind = type(value)
        if kind is not dict and kind is not list:
            return _dumps(value)
        got = self.got.get(id(value))
        if got is None:
            got = self.got[id(value)] = (value, _dumps(value))
        else:
            self.hits += 1
        return got[1]

    def whole(self, snap: Any) -> str:
        """`_dumps(snap)`, the same text, its top-level values from the shared ones."""
        if type(snap) is not dict or not all(type(k) is str for k in snap):
            return _dumps(snap)
        return "{" + ",".join(f"{_dumps(k)}:{self.json(v)}" for k, v in snap.items()) + "}"

    def delta(self, base: int, ops: list[livepatch.Op], limit: float) -> str | None:
        """`_dumps({"base": base, "ops": ops})`, the same text, the operations' values from
        the shared ones (an operation's path is its own); None once it is `limit`
        characters long (the whole snapshot is sent instead: the rest is not made)."""
        head = f'{{"base":{base},"ops":['
        parts = []
        size = len(head) + 1  # and "]}", less the first operation's comma
        for op in ops:
            values = op[2:]
            if any(type(x) is dict or type(x) is list for x in values):
                part = (f"[{_dumps(op[0])},{_dumps(op[1])}"
                        + "".join("," + self.json(x) for x in values) + "]")
            else:  # a scalar set, a deletion: as one
                part = _dumps(op)
            size += len(part) + 1
            if size >= limit:
                return None
            parts.append(part)
        return head + ",".join(parts) + "]}"


def _frame(seq: int, event: str, data: str) -> bytes:
    return f"id: {seq}\nevent: {event}\ndata: {data}\n\n".encode()


def _log_failure(task: asyncio.Task[None]) -> None:
    """The flusher ended by a bug: say so (the next stream to open starts a new one)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("live views stopped", exc_info=task.exception())


class LiveHub:
    def __init__(self, interval: float = INTERVAL_S,
                 busy: Callable[[], bool] = lambda: False) -> None:
        self.channels: dict[str, Snapshot] = {}
        self.volatile: dict[str, frozenset[str]] = {}
        self.busy = busy  # device messages wait: they go before the next slice
        self.yielded = 0  # turns of the loop the flusher gave them
        self.interval = interval
        self.version = 0
        self.feeds: dict[tuple[str, str], Feed] = {}
        self.paces: dict[str, float] = {}  # channels rebuilt less often than `interval`
        self.builds: Counter[str] = Counter()  # by channel name: what the views cost
        self.build_s = 0.0  # seconds spent building, in the flusher
        self.slices = 0  # slices the flusher's passes were cut into
        self._pass_version: int | None = None  # LiveHub.version a pass began at
        self._memo: livepatch.Memo | None = None  # deltas of shared lists, for a pass
        self._shared: Fragments | None = None  # JSON of shared values, for a pass
        self._kick: asyncio.Event | None = None
        self._new = asyncio.Event()  # a feed was opened: built without waiting for a pace
        self._flusher: asyncio.Task[None] | None = None

    def channel(self, name: str, snapshot: Snapshot, volatile: tuple[str, ...] = ()) -> None:
        """`volatile`: top-level keys of the snapshot that alone are no change to send (the
        server's clock, which pages read for their skew): a frame goes out when anything
        else changed, with them as they are then."""
        self.channels[name] = snapshot
        if volatile:
            self.volatile[name] = frozenset(volatile)

    def pace(self, name: str, seconds: float) -> None:
        """Rebuild the feeds of channel `name` at most every `seconds` (>= interval)."""
        self.paces[name] = max(seconds, self.interval)

    def changed(self) -> None:
        """A step was committed: every feed is stale. Called on the hub's path: O(1)."""
        self.version += 1
        if self._kick is not None:
            self._kick.set()

    def refresh(self, name: str, arg: str) -> None:
        """Feed (name, arg), if watched, is stale though no step was committed: what it
        shows came from elsewhere (the console's city panel, hub/web/console_city.py)."""
        feed = self.feeds.get((name, arg))
        if feed is not None:
            feed.version = -1  # no LiveHub.version: rebuilt at its next pace
            if self._kick is not None:
                self._kick.set()

    def snapshot(self, name: str, arg: str = "") -> Any:
        """The channel's snapshot now, whole (a built-in-pieces one run to its end)."""
        got = self.channels[name](arg)
        return drain(got) if isinstance(got, Generator) else got

    def shared_key(self, state: Hashable) -> Hashable:
        """What work shared by many views (the phones' people-ahead walk) is to be keyed
        on: during a pass of the flusher, the pass (its feeds are rebuilt again if the
        state moved meanwhile: one walk per pass, not one per slice); else `state`, the
        caller's own mark of the state (a page opened, a test)."""
        return ("state", state) if self._pass_version is None else ("pass",
                                                                    self._pass_version)

    def pace_of(self, feed: Feed) -> float:
        """How often `feed` may be rebuilt: its channel's pace, or slower when its last
        build was costly (FEED_SHARE), but at least every MAX_PACE_S."""
        pace = self.paces.get(feed.name, self.interval)
        return max(pace, min(MAX_PACE_S, feed.cost / FEED_SHARE))

    # ---- building and fanning out ---------------------------------------------------------
    async def _build(self, feed: Feed, now: float, sliced: float) -> tuple[int, float, float]:
        """The feed's snapshot, built and serialised once, to all its streams if new: the
        number of streams it woke, the seconds building took and the slice's time after it
        (a snapshot in pieces gives the loop its turns between them, as between feeds)."""
        feed.version = self.version if self._pass_version is None else self._pass_version
        feed.built_at = now
        self.builds[feed.name] += 1
        took = 0.0
        started = time.perf_counter()
        try:
            snap = self.channels[feed.name](feed.arg)
            if isinstance(snap, Generator):
                while True:
                    try:
                        next(snap)
                    except StopIteration as done:
                        snap = done.value
                        break
                    step = time.perf_counter() - started
                    took += step
                    sliced += step
                    if sliced >= SLICE_S:
                        sliced = 0.0
                        await self._between_slices()
                    started = time.perf_counter()
            sent = self._publish(feed, snap, now)
        except Exception:  # one broken view must not stop the others
            log.exception("live channel %s/%s: snapshot failed", feed.name, feed.arg)
            step = time.perf_counter() - started
            return 0, took + step, sliced + step
        step = time.perf_counter() - started
        took += step
        sliced += step
        if not sent:
            return 0, took, sliced
        for s in feed.streams:
            s.offer()
        return len(feed.streams), took, sliced + len(feed.streams) * WAKE_S

    def _publish(self, feed: Feed, snap: Any, now: float) -> bool:
        """Make `snap` the feed's latest frame, as a delta from the one before when that
        is worth it; False when it shows nothing new."""
        prev = feed.snap
        vol = self.volatile.get(feed.name)
        if vol and isinstance(prev, dict) and isinstance(snap, dict) and _alike(prev, snap, vol):
            # Nothing the pages show changed (the clock only): nothing is sent, but a page
            # that opens now is sent the fresh state (its clock skew from this one).
            feed.snap, feed.data, feed.frame = snap, None, None
            return False
        big = prev is not None and isinstance(snap, dict) and feed.size >= DIFF_MIN_BYTES
        shared = self._shared if self._shared is not None else Fragments()
        if big:
            ops = livepatch.diff(prev, snap, self._memo)
            if not ops:
                return False
            if now - feed.keyed_at < KEYFRAME_S:
                # against the last whole frame's size: a feed's size moves slowly
                data = shared.delta(feed.seq, ops, DIFF_MAX_SHARE * feed.size)
                if data is not None:
                    feed.seq += 1
                    feed.snap, feed.data, feed.frame = snap, None, None
                    feed.delta = _frame(feed.seq, "patch", data)
                    return True
        data = shared.whole(snap) if big else _dumps(snap)
        if not big and data == feed.data:
            return False
        feed.seq += 1
        feed.snap, feed.data, feed.delta = snap, data, None
        feed.frame = _frame(feed.seq, feed.name, data)
        feed.size = len(feed.frame)
        feed.keyed_at = now
        return True

    async def _between_slices(self) -> None:
        """The hub's own work goes between slices."""
        self.slices += 1
        await asyncio.sleep(0)
        await self._let_devices_first()

    async def _flush(self) -> None:
        """Rebuild stale feeds, each at most once per its pace, while any feed exists."""
        loop = asyncio.get_running_loop()
        kick = self._kick
        assert kick is not None
        sweep_at = loop.time() + KEEPALIVE_S / 2
        while self.feeds:
            if loop.time() >= sweep_at:  # keepalives for the streams quiet since the last
                for feed in self.feeds.values():
                    for stream in feed.streams:
                        stream.sweep()
                sweep_at = loop.time() + KEEPALIVE_S / 2
            kick.clear()  # before the scan: a change during it sets it again
            spent, due_next = await self._pass(loop)
            self.build_s += spent
            if spent:  # at most BUDGET of the loop's time: under load, views lag, calls don't
                await asyncio.sleep(spent * (1 / BUDGET - 1))
            until = sweep_at if due_next is None else min(due_next, sweep_at)
            if not kick.is_set():  # nothing changed since the pass began: until a change
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(kick.wait(), max(0.0, until - loop.time()))
            if kick.is_set() and due_next is not None and not self._new.is_set():
                # A change makes every feed stale, but none is due before the earliest
                # pace is over: no pass (a scan of every feed) per change in between; a
                # new feed (a page just opened) is built at once.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._new.wait(), max(0.0, until - loop.time()))

    async def _pass(self, loop: asyncio.AbstractEventLoop) -> tuple[float, float | None]:
        """One pass over the feeds, in slices: the seconds spent building, and when the
        earliest feed left stale is due."""
        now = loop.time()
        self._pass_version = self.version
        self._memo = livepatch.Memo()
        self._shared = Fragments()
        self._new.clear()
        spent = sliced = 0.0
        try:
            # a channel's feeds one after another: in one pass they share prepared work
            for feed in sorted(self.feeds.values(), key=lambda f: f.name):
                if feed.version == self.version or not feed.streams:
                    continue
                if feed.built_at + self.pace_of(feed) > now:
                    continue
                _, took, sliced = await self._build(feed, now, sliced)
                feed.cost = took
                if took > SLOW_S:  # the loop stood still for it: say which view
                    log.warning("live channel %s/%s: snapshot took %.0f ms", feed.name,
                                feed.arg, took * 1000)
                spent += took
                if sliced >= SLICE_S:  # the hub's own work goes between slices
                    sliced = 0.0
                    await self._between_slices()
                    now = loop.time()
        finally:
            self._pass_version = None
            self._memo = self._shared = None
        if sliced:
            self.slices += 1
        # The feeds left stale (not due yet, or built while the state moved on): the
        # earliest is due after its pace.
        due_next: float | None = None
        for feed in self.feeds.values():
            if feed.version != self.version and feed.streams:
                due = feed.built_at + self.pace_of(feed)
                due_next = due if due_next is None else min(due_next, due)
        return spent, due_next

    async def _let_devices_first(self) -> None:
        """A keypad's call read from the socket is handled a turn later, when the loop runs
        the hub's task: give it those turns before another slice delays it."""
        for _ in range(YIELD_TURNS):
            if not self.busy():
                return
            self.yielded += 1
            await asyncio.sleep(0)

    def _subscribe(self, name: str, arg: str) -> tuple[Feed, Stream]:
        key = (name, arg)
        feed = self.feeds.get(key)
        if feed is None:
            feed = self.feeds[key] = Feed(name, arg)
        stream = Stream()
        feed.streams.add(stream)
        if feed.seq >= 0:  # the latest built, whole; a newer one follows when due
            stream.offer()
        # A new feed is built by the flusher, in its slices and budget like any other: a
        # crowd of pages (re)connecting at once must not hold the loop for all their builds.
        if self._flusher is None or self._flusher.done():
            self._kick = asyncio.Event()
            self._flusher = asyncio.create_task(self._flush(), name="live-flusher")
            self._flusher.add_done_callback(_log_failure)
        elif feed.seq < 0 and self._kick is not None:
            self._new.set()
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
                if not (stream.pending or stream.ping):
                    stream.wake.clear()  # no timer: the flusher's sweep wakes it (keepalive)
                    await stream.wake.wait()
                if stream.pending:
                    stream.pending = False
                    if stream.sent != feed.seq:
                        stream.quiet = stream.ping = False
                        yield feed.next_for(stream)
                        continue
                if stream.ping:
                    stream.quiet = stream.ping = False
                    yield b": keepalive\n\n"  # a gone client shows up as a failed write
        finally:
            self._unsubscribe(feed, stream)

    def response(self, name: str, arg: str, request: Request) -> Response:
        if len(arg) > MAX_ARG:
            return JSONResponse({"code": "bad_arg", "msg": f"channel argument over {MAX_ARG} "
                                 "characters"}, status_code=400)
        return StreamingResponse(self.stream(name, arg), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def drain(pieces: Pieces) -> Any:
    """A snapshot built in pieces, run to its end at once: what it returns."""
    while True:
        try:
            next(pieces)
        except StopIteration as done:
            return done.value
