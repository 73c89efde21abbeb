"""Priority from the button box (爱心优先: 60 or older, disabled, pregnant), on real parts.

The real firmware box on the MicroPython unix port with a priority button (`priority_button`
in its ow.json), a real Mosquitto and the hub process: a resident presses the priority button
and then an item button; the hub journals a priority take, the box prints the ticket, and the
clerk's keypad calls it under the centre's ordering policy (the ratio rule by default).
"""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from onewindow.hub.core.policy import OrderingPolicy
from onewindow.hub.render.escpos_decode import decode
from onewindow.tools.testkit.fwsim import SimCentre

pytestmark = pytest.mark.timeout(120)

PRIO_KEY = "b2"  # BOX_BUTTONS are b0 and b1: the box's third button
PRIO_MARK = "爱心优先 愛心優先"


def printed_jobs(box) -> list[bytes]:
    """The printer UART capture split into tickets, without the status requests."""
    data = re.sub(rb"\x10\x04[\x01-\x04]", b"", (box.workdir / "printer.bin").read_bytes())
    jobs = data.split(b"\x1dV\x00")
    return [j + b"\x1dV\x00" for j in jobs[:-1]]


def journal_takes(centre: SimCentre) -> list[dict]:
    db = sqlite3.connect(centre.workdir / "hub.db")
    try:
        rows = db.execute("select body from journal where op = 'take' order by pos").fetchall()
    finally:
        db.close()
    return [json.loads(body) for (body,) in rows]


async def call_all(kp) -> list[str]:
    """Call until the queue is empty: the tickets in the order the window got them."""
    got = []
    while True:
        m = kp.mark()
        await kp.press("call")
        e = await kp.wait("key", lambda e: e.get("event") == "call", since=m, timeout=10)
        if e["result"] != "ok":
            assert e.get("code") == "queue_empty", e
            return got
        if e.get("ticket"):
            got.append(e["ticket"])


async def arm(box) -> None:
    """Press the priority button: armed, the busy LED lit."""
    m = box.mark()
    await box.press(PRIO_KEY)
    e = await box.wait("priority", since=m)
    assert e["armed"] is True, e
    await box.wait("led", lambda e: e["name"] == "busy" and e["on"], since=m)


async def take(box, key: str = "b0") -> dict:
    """Press an item button: the box's verdict on the take (online or offline)."""
    m = box.mark()
    await box.press(key)
    return await box.wait("take", since=m, timeout=10)


async def test_priority_press_prints_a_priority_ticket_called_under_the_ratio_rule(tmp_path):
    ratio = OrderingPolicy().ratio  # write_config sets no [policy]: the default, ratio 2
    assert OrderingPolicy().mode == "ratio" and ratio == 2
    async with SimCentre(tmp_path, windows=1, box={"priority_button": PRIO_KEY}) as c:
        box, kp = c["box-1"], c["kp-1"]
        for n in ("A001", "A002"):
            e = await take(box)
            assert e["result"] == "ok" and e["ticket"] == n and e.get("priority") is None, e
            await box.wait("printed", lambda e, n=n: e["ticket"] == n)
        for n in ("A003", "A004", "A005"):
            await arm(box)
            m = box.mark()
            e = await take(box)
            assert e["result"] == "ok" and e["ticket"] == n and e["priority"] == "priority", e
            off = await box.wait("priority", since=m)
            assert off["armed"] is False and off["why"] == "take", off
            await box.wait("led", lambda e: e["name"] == "busy" and not e["on"], since=m)
            await box.wait("printed", lambda e, n=n: e["ticket"] == n, since=m)
        assert [t["priority"] for t in journal_takes(c)] == ["normal"] * 2 + ["priority"] * 3
        assert all(t["source"] == "box-1" for t in journal_takes(c))
        # The priority button is no item button: no ticket of its own, nothing unmapped.
        assert box.find("take", lambda e: e.get("result") == "unmapped") is None
        assert len(printed_jobs(box)) == 5
        # Two priority tickets (ratio), then the oldest normal one, then priority again.
        assert await call_all(kp) == ["A003", "A004", "A001", "A005", "A002"]


async def test_priority_disarms_by_itself_and_by_a_second_press(tmp_path):
    arm_ms = 400
    box_cfg = {"priority_button": PRIO_KEY, "priority_arm_ms": arm_ms}
    async with SimCentre(tmp_path, windows=1, box=box_cfg) as c:
        box = c["box-1"]
        m = box.mark()
        await arm(box)
        armed = box.find("priority", since=m)
        assert armed is not None
        off = await box.wait("priority", lambda e: e["armed"] is False, since=m, timeout=5)
        assert off["why"] == "timeout"
        assert off["t"] - armed["t"] >= arm_ms / 1000 * 0.9, "disarmed before its time"
        await box.wait("led", lambda e: e["name"] == "busy" and not e["on"], since=m)
        e = await take(box)  # after the arm time: a normal ticket
        assert e["result"] == "ok" and e["ticket"] == "A001" and e.get("priority") is None, e

        await arm(box)
        m = box.mark()
        await box.press(PRIO_KEY)  # the same button again: not priority after all
        off = await box.wait("priority", since=m)
        assert off["armed"] is False and off["why"] == "press", off
        e = await take(box, "b1")
        assert e["result"] == "ok" and e["ticket"] == "B001" and e.get("priority") is None, e
        assert [t["priority"] for t in journal_takes(c)] == ["normal", "normal"]


async def test_offline_priority_ticket_is_marked_and_joins_as_priority(tmp_path):
    async with SimCentre(tmp_path, windows=1, box={"priority_button": PRIO_KEY}) as c:
        box, kp = c["box-1"], c["kp-1"]
        await box.wait("block")  # the hub's offline numbers are in the box
        m = box.mark()
        c.hub.kill()  # the broker publishes the hub's will: lost
        await box.wait("hub", lambda e: e["state"] == "lost", since=m)
        e = await take(box)  # a normal offline ticket first
        assert e["result"] == "offline" and e["ticket"] == "A901" and e["priority"] is None, e
        await arm(box)
        e = await take(box)
        assert e["result"] == "offline" and e["ticket"] == "A902", e
        assert e["priority"] == "priority", e
        await box.wait("printed", lambda e: e["ticket"] == "A902", since=m)
        normal, prio = (decode(j) for j in printed_jobs(box))
        assert "A901" in normal["texts"] and PRIO_MARK not in normal["texts"]
        assert "Priority" not in normal["texts"]
        assert "A902" in prio["texts"] and PRIO_MARK in prio["texts"] and prio["cut"]
        assert "Priority" in prio["texts"]
        # Back online: both join, the priority one as priority.
        m = box.mark()
        c.hub.start()
        for n, cls in (("A901", None), ("A902", "priority")):
            j = await box.wait("joined", lambda e, n=n: e["ticket"] == n, since=m, timeout=15)
            assert j["result"] == "res" and j["priority"] == cls, j
        takes = {t["number"]: t["priority"] for t in journal_takes(c)}
        assert takes == {"A901": "normal", "A902": "priority"}
        # The later priority ticket is called before the earlier normal one.
        assert await call_all(kp) == ["A902", "A901"]
