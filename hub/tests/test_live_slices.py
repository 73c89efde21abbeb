"""The live flusher's slices (issue 14): the hub's MQTT path waits for whatever the loop is
doing when a call arrives, so building views and waking their streams go in slices of about
a millisecond with the loop's other work between; work shared by the feeds of one pass
(the phones' people-ahead walk) is kept for the pass, and a feed built while the state
moved on is built again; a feed costly to build is rebuilt less often."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

from onewindow.hub.web.live import (
    FEED_SHARE,
    MAX_PACE_S,
    SLICE_S,
    WAKE_S,
    Feed,
    LiveHub,
    Stream,
)

FEEDS = 6
# streams per feed: waking them costs a slice's worth on its own, whatever the machine
STREAMS = int(SLICE_S / WAKE_S) + 1


def _open(live: LiveHub, args: list[str], streams: int) -> list[tuple[Feed, Stream]]:
    """`streams` streams on each feed; the first of each feed's, to read."""
    out = []
    for arg in args:
        out.append(live._subscribe("c", arg))
        for _ in range(streams - 1):
            live._subscribe("c", arg)
    return out


async def _frame(reader: tuple[Feed, Stream],
                 want: Callable[[bytes], bool] = lambda f: True) -> bytes:
    """The first frame offered to the stream (pending or to come) that `want`s."""
    feed, stream = reader
    async with asyncio.timeout(10):
        while True:
            await stream.wake.wait()
            stream.wake.clear()
            stream.pending = False
            if stream.sent != feed.seq:
                frame = feed.next_for(stream)
                if want(frame):
                    return frame


def test_a_pass_goes_in_slices_with_the_loops_other_work_between() -> None:
    log: list[str] = []

    async def scenario() -> None:
        live = LiveHub(interval=0.01)
        def snapshot(arg: str) -> dict[str, str]:
            log.append("build")
            return {"arg": arg}

        live.channel("c", snapshot)
        args = [f"f{i}" for i in range(FEEDS)]
        readers = _open(live, args, STREAMS)

        async def other_work() -> None:  # the MQTT path, say
            while True:
                log.append("turn")
                await asyncio.sleep(0)

        ticker = asyncio.create_task(other_work())
        for r in readers:
            await _frame(r)
        ticker.cancel()
        builds = [i for i, x in enumerate(log) if x == "build"]
        assert len(builds) == FEEDS and live.slices >= FEEDS
        # each feed's build woke a slice's worth of streams: the loop turned after each
        assert all("turn" in log[a:b] for a, b in itertools.pairwise(builds))

    asyncio.run(scenario())


def test_work_shared_over_a_pass_is_redone_when_the_state_moved() -> None:
    state = [0]
    walks: dict[Any, int] = {}

    async def scenario() -> None:
        live = LiveHub(interval=0.01)

        def snapshot(arg: str) -> dict[str, Any]:
            # a people-ahead walk for all the feeds of the channel, kept for the pass
            key = live.shared_key(state[0])
            if key not in walks:
                walks[key] = state[0]
            return {"arg": arg, "seen": walks[key]}

        live.channel("c", snapshot)
        args = [f"f{i}" for i in range(FEEDS)]
        readers = _open(live, args, STREAMS)
        first = await _frame(readers[0])  # the pass's first slice is done
        assert b'"seen":0' in first
        state[0] = 1  # a step committed while the pass goes on
        live.changed()
        for r in readers:  # every feed ends on the new state, the rest of the pass too
            await _frame(r, lambda f: b'"seen":1' in f)
        # one walk for the first pass (kept although the state moved during it), one after
        assert sorted(walks.values()) == [0, 1], walks

    asyncio.run(scenario())


def test_a_costly_feed_is_rebuilt_less_often() -> None:
    live = LiveHub(interval=0.25)
    live.pace("ticket", 0.5)
    cheap, costly, huge, phone = Feed("hall", ""), Feed("staff-floor", ""), Feed("x", ""), \
        Feed("ticket", "t1")
    cheap.cost, costly.cost, huge.cost, phone.cost = 0.0004, 0.004, 0.05, 0.00002
    assert live.pace_of(cheap) == 0.25  # its channel's interval
    assert live.pace_of(costly) == 0.004 / FEED_SHARE  # 1 % of the loop at most
    assert live.pace_of(huge) == MAX_PACE_S  # but every change shows within a second
    assert live.pace_of(phone) == 0.5  # a channel's own pace stands


def test_waiting_device_messages_go_before_the_next_slice() -> None:
    """Between slices the flusher asks whether device messages wait (the hub's MQTT socket
    or queue) and gives them the loop's turns first; saturated, it still goes on."""
    log: list[str] = []
    waiting = [3]  # three messages wait after the first slice

    def busy() -> bool:
        return waiting[0] > 0

    async def scenario() -> None:
        live = LiveHub(interval=0.01, busy=busy)

        def snapshot(arg: str) -> dict[str, str]:
            log.append("build")
            return {"arg": arg}

        live.channel("c", snapshot)
        readers = _open(live, [f"f{i}" for i in range(FEEDS)], STREAMS)

        async def hub_path() -> None:  # handles one waiting message per turn
            while True:
                if waiting[0] > 0 and "build" in log:
                    waiting[0] -= 1
                    log.append("message")
                await asyncio.sleep(0)

        task = asyncio.create_task(hub_path())
        for r in readers:
            await _frame(r)
        task.cancel()
        first_build, second_build = [i for i, x in enumerate(log) if x == "build"][:2]
        # every waiting message was handled before the second slice's build
        assert log[first_build:second_build].count("message") == 3
        assert live.yielded >= 1  # (without it: one message per slice boundary)

    asyncio.run(scenario())


def test_devices_that_never_stop_do_not_starve_the_views() -> None:
    async def scenario() -> None:
        live = LiveHub(interval=0.01, busy=lambda: True)
        live.channel("c", lambda arg: {"arg": arg})
        readers = _open(live, [f"f{i}" for i in range(FEEDS)], STREAMS)
        for r in readers:
            await _frame(r)
        assert live.yielded >= FEEDS - 1  # it yielded after each slice, and went on

    asyncio.run(scenario())


def test_a_snapshot_built_in_pieces_lets_the_loop_turn_between_them() -> None:
    """A costly view (the supervisors' floor) is built in pieces: a generator yielding
    between its parts. Each piece here takes a whole slice: the loop's other work (a
    keypad's call) runs between every two pieces, and the frame sent is the whole snapshot
    the generator returns; `LiveHub.snapshot` runs it to its end at once."""
    import time

    log: list[str] = []

    def pieces(arg: str) -> Any:
        parts = {}
        for k in range(4):
            log.append(f"piece{k}")
            end = time.perf_counter() + SLICE_S * 1.2  # a slice's worth of building
            while time.perf_counter() < end:
                pass
            parts[f"p{k}"] = k
            yield
        return {"arg": arg, **parts}

    async def scenario() -> None:
        live = LiveHub(interval=0.01)
        live.channel("c", pieces)
        (reader,) = _open(live, ["f"], 1)

        async def other_work() -> None:
            while True:
                log.append("turn")
                await asyncio.sleep(0)

        ticker = asyncio.create_task(other_work())
        frame = await _frame(reader)
        ticker.cancel()
        assert b'"p0":0,"p1":1,"p2":2,"p3":3' in frame
        at = [log.index(f"piece{k}") for k in range(4)]
        assert all("turn" in log[a:b] for a, b in itertools.pairwise(at)), log
        assert live.snapshot("c", "x") == {"arg": "x", "p0": 0, "p1": 1, "p2": 2, "p3": 3}
        assert live.slices >= 3

    asyncio.run(scenario())


def test_a_volatile_key_alone_sends_nothing_and_a_new_page_gets_it_fresh() -> None:
    """The server's clock in a snapshot (volatile): a change of it alone wakes no stream; the
    next real change goes out with the clock as it is then; a page opened meanwhile is sent
    the state with the fresh clock."""
    state = {"now": 1.0, "x": 0}

    async def scenario() -> None:
        live = LiveHub(interval=0.01)
        built = asyncio.Event()

        def snapshot(_arg: str) -> dict[str, Any]:
            built.set()  # the build and its publishing finish before anyone else runs
            return dict(state)

        live.channel("c", snapshot, volatile=("now",))
        (reader,) = _open(live, ["f"], 1)
        feed, stream = reader
        assert b'"now":1.0,"x":0' in await _frame(reader)
        state["now"] = 2.0
        built.clear()
        live.changed()
        await built.wait()  # rebuilt
        assert not stream.pending and feed.seq == 0  # nothing to send
        late = live._subscribe("c", "f")
        assert b'"now":2.0,"x":0' in await _frame(late)  # whole, the clock fresh
        state["now"], state["x"] = 3.0, 1
        live.changed()
        assert b'"now":3.0,"x":1' in await _frame(reader)

    asyncio.run(scenario())


def test_a_value_shared_by_many_feeds_is_serialised_once_per_pass(monkeypatch) -> None:
    """The clerk consoles alike share their queue (one object in each snapshot): a pass
    serialises it, and the items of its delta, once for all their feeds; every page still
    gets exactly its own snapshot (whole, or a delta that makes it)."""
    from onewindow.hub.web import live as live_module
    from onewindow.hub.web.livepatch import follow

    rows = 60  # a whole snapshot over DIFF_MIN_BYTES: its changes go as deltas
    state = {"head": 1}
    queue: dict[str, Any] = {}

    def shared_queue() -> list[dict[str, Any]]:
        if queue.get("head") != state["head"]:  # one object per state, as _queue_of
            queue["head"] = state["head"]
            queue["list"] = [{"id": f"A{n:03d}", "zh": "城乡居民养老保险参保登记"}
                             for n in range(state["head"], state["head"] + rows)]
        return queue["list"]  # type: ignore[no-any-return]

    def snapshot(arg: str) -> dict[str, Any]:
        return {"window": arg, "serving": f"A{state['head'] - 1:03d}", "queue": shared_queue()}

    # the queues and delta items serialised in each pass of the flusher, by identity
    made: list[list[int]] = []
    dumps, one_pass = live_module._dumps, LiveHub._pass

    def counted(value: Any) -> str:
        if isinstance(value, list) and value and isinstance(value[0], dict):  # rows
            made[-1].append(id(value))
        return dumps(value)

    async def counted_pass(self: LiveHub, loop: Any) -> Any:
        made.append([])
        return await one_pass(self, loop)

    monkeypatch.setattr(live_module, "_dumps", counted)
    monkeypatch.setattr(LiveHub, "_pass", counted_pass)

    async def scenario() -> None:
        live = LiveHub(interval=0.01)
        live.channel("c", snapshot)
        args = [str(n) for n in range(1, 7)]
        readers = _open(live, args, 1)
        pages: dict[str, Any] = {}

        async def read_all(head: int) -> None:
            for arg, reader in zip(args, readers, strict=True):
                want = json.loads(json.dumps(snapshot(arg)))
                while pages.get(arg) != want:  # frames in order, each applied as ow.js does
                    frame = await _frame(reader)
                    event = frame.split(b"event: ")[1].split(b"\n")[0].decode()
                    data = json.loads(frame.split(b"data: ")[1])
                    pages[arg] = follow(pages.get(arg), event, data)

        await read_all(1)  # the first frames: each snapshot serialised on its own
        for head in (2, 40, 200):  # one lost, many, all: a delta or the whole state
            made.clear()
            state["head"] = head
            live.changed()
            await read_all(head)
            # each once a pass for all the feeds built in it
            assert any(made) and all(len(p) == len(set(p)) for p in made), made

    asyncio.run(scenario())


def test_a_quiet_stream_is_sent_keepalives_without_a_timer_per_frame(monkeypatch) -> None:
    """A stream that sent nothing since the flusher's last sweep is sent an SSE comment at
    the next (a gone client shows up as a failed write); one that sends frames is not."""
    from onewindow.hub.web import live as live_module

    monkeypatch.setattr(live_module, "KEEPALIVE_S", 0.2)  # sweeps every 0.1 s
    state = {"x": 0}

    async def scenario() -> None:
        live = LiveHub(interval=0.01)
        live.channel("c", lambda arg: dict(state))
        quiet, busy = live.stream("c", "a"), live.stream("c", "b")
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(10):
            for s in (quiet, busy):
                assert await anext(s) == b"retry: 1000\n\n"
                assert b"event: c" in await anext(s)
            opened = loop.time()
            assert await anext(quiet) == b": keepalive\n\n"
            # quiet through one whole sweep period, at most two
            assert 0.1 <= loop.time() - opened <= 0.2 + 0.1
            got = []
            ends = loop.time() + 0.5
            while loop.time() < ends:  # changes one after another: frames, no keepalive
                state["x"] += 1
                live.changed()
                got.append(await anext(busy))
            # (the first may be the keepalive due from the quiet spell before)
            assert len(got) > 5 and all(f.startswith(b"id: ") for f in got[1:]), got
        await quiet.aclose()
        await busy.aclose()

    asyncio.run(scenario())
