"""The hub alive but frozen (a GC pause, a disk or database stall) across a press.

Real parts: Mosquitto, the hub process (stopped with SIGSTOP, resumed with SIGCONT), the
real box firmware on the MicroPython unix port. The box gives up on the hub after 5 s and
prints an offline number; the hub, once it runs again, still answers the press it had
buffered. One press must stay one ticket on paper and in the queue.
"""

from __future__ import annotations

import asyncio
import signal

import pytest
from test_hil_centre import call_all, printed_jobs

from onewindow.hub.config import load
from onewindow.hub.core.model import TicketState
from onewindow.hub.runner import build_app
from onewindow.hub.store.journal import Journal

pytestmark = pytest.mark.timeout(90)

STALL = 8.0  # s: the hub frozen, longer than the box's 5 s take timeout


async def test_hub_frozen_8_s_across_a_press_one_ticket_on_paper_and_in_the_queue(centre):
    box, kp = centre["box-1"], centre["kp-1"]
    hub = centre.hub.proc
    assert hub is not None
    loop = asyncio.get_running_loop()
    await box.press("b0")  # one ticket online first: the box has its blocks by then
    await box.wait("printed", lambda e: e["ticket"] == "A001")
    m = box.mark()
    hub.send_signal(signal.SIGSTOP)
    frozen_at = loop.time()
    try:
        await box.press("b0")
        took = await box.wait("take", since=m, timeout=STALL)
        assert (took["result"], took.get("ticket")) == ("offline", "A901"), took
        await box.wait("printed", lambda e: e["ticket"] == "A901", since=m)
        await asyncio.sleep(max(0.0, frozen_at + STALL - loop.time()))  # hold the stall
    finally:
        hub.send_signal(signal.SIGCONT)
    # The hub answers the buffered press late (A002); the box had served it offline and
    # refuses that print, then its A901 joins the queue and replaces A002.
    refused = await box.wait("refused", since=m, timeout=15)
    assert (refused["ticket"], refused["code"]) == ("A002", "served_offline"), refused
    joined = await box.wait("joined", lambda e: e["ticket"] == "A901", since=m, timeout=15)
    assert joined["result"] == "res", joined
    # On paper: exactly one ticket.
    assert [e["ticket"] for e in box.events[m:] if e["ev"] == "printed"] == ["A901"]
    assert len(printed_jobs(box)) == 2  # A001 before the stall, A901
    # In the hub: its state as rebuilt from its journal holds A901 waiting, A002 voided.
    config = load(centre.hub_config)
    journal = Journal(config.database_url)
    try:
        state = build_app(config, journal).centre
    finally:
        journal.close()
    assert [t.number for t in state.queue] == ["A001", "A901"]
    assert state.by_number["A002"].state is TicketState.VOIDED
    assert sorted(t.number for t in state.tickets.values()
                  if t.state is TicketState.WAITING) == ["A001", "A901"]
    # The window calls A001, then the stalled press's one ticket, and then nobody waits.
    assert await call_all(kp) == ["A001", "A901"]


async def test_a_box_rebooted_during_the_stall_still_refuses_the_late_ticket(centre):
    """What the box served offline is in flash with its offline book: a reboot between the
    offline ticket and the hub's late answer must not let the late ticket print."""
    box, kp = centre["box-1"], centre["kp-1"]
    hub = centre.hub.proc
    assert hub is not None
    await box.press("b0")
    await box.wait("printed", lambda e: e["ticket"] == "A001")
    m = box.mark()
    hub.send_signal(signal.SIGSTOP)
    try:
        await box.press("b0")
        await box.wait("printed", lambda e: e["ticket"] == "A901", since=m, timeout=STALL)
        box.kill()  # the plug pulled: nothing but flash survives
        await box.restart()
    finally:
        hub.send_signal(signal.SIGCONT)
    refused = await box.wait("refused", since=m, timeout=15)
    assert (refused["ticket"], refused["code"]) == ("A002", "served_offline"), refused
    await box.wait("joined", lambda e: e["ticket"] == "A901", since=m, timeout=15)
    assert [e["ticket"] for e in box.events[m:] if e["ev"] == "printed"] == ["A901"]
    assert await call_all(kp) == ["A001", "A901"]
