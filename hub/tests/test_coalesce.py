"""The hall board's retained list is coalesced (hub/mqtt/coalesce.py): the first change of a
quiet spell goes at once, a burst sends its latest state when the gap ends, other topics
are not touched, and a burst of calls through the real hub leaves the board's retained
message at the last call."""

from __future__ import annotations

import asyncio

from onewindow.hub.devices import Publish
from onewindow.hub.mqtt.coalesce import Coalescer


def _p(topic: str, n: int) -> Publish:
    return Publish(topic, str(n).encode(), retain=True)


async def test_a_burst_sends_the_first_at_once_and_the_latest_after_the_gap():
    sent: list[Publish] = []
    done = asyncio.Event()

    def send(p: Publish) -> None:
        sent.append(p)
        if p.payload == b"99":
            done.set()

    c = Coalescer("hall", send, gap=0.05)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for n in range(100):
        assert c.offer(_p("hall", n))
    assert not c.offer(_p("display", 1))  # not its topic: the caller sends it
    assert [p.payload for p in sent] == [b"0"]
    await asyncio.wait_for(done.wait(), 5)
    assert [p.payload for p in sent] == [b"0", b"99"]
    assert loop.time() - t0 >= 0.05 - 1e-3  # not before the gap ended
    assert c.coalesced == 98 and c.held is None


async def test_after_a_quiet_gap_the_next_change_goes_at_once():
    sent: list[Publish] = []
    c = Coalescer("hall", sent.append, gap=0.01)
    c.offer(_p("hall", 1))
    c.sent_at -= 1.0  # the last message went a second ago
    c.offer(_p("hall", 2))
    assert [p.payload for p in sent] == [b"1", b"2"]


async def test_cancel_forgets_what_is_held():
    sent: list[Publish] = []
    c = Coalescer("hall", sent.append, gap=10.0)
    c.offer(_p("hall", 1))
    c.offer(_p("hall", 2))
    c.cancel()
    assert c.held is None and [p.payload for p in sent] == [b"1"]
