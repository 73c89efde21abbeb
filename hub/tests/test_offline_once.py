"""One press is one ticket, whatever the timing (issue 13, item 3).

A button box that got no answer within 5 s prints an offline number and later submits it
with `for_seq`: the take event it replaces. Whichever of the two the hub sees second must
know of the first: a late online ticket for that press is voided when the offline one
arrives, and a take that arrives after its offline replacement is refused as replayed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal

import pytest

from onewindow.hub.app import HubApp
from onewindow.hub.config import load
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.effects import (
    QueueChanged,
    TicketCalled,
    TicketIssued,
    TicketVoided,
    WindowChanged,
)
from onewindow.hub.core.model import TicketState, WindowState
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.runner import build_app
from onewindow.hub.store.journal import Journal
from onewindow.protocol import ow_protocol as proto
from onewindow.tools.simdevice import DeviceError, SimDevice
from onewindow.tools.testkit.testbed import HubProcess, write_config

from .catalogs import small_catalog
from .test_durability import wait_hub_ready

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()


# ---- the core ------------------------------------------------------------------------------

def core() -> Centre:
    centre = Centre(small_catalog(), CentreConfig("t1", (WindowSpec(1), WindowSpec(2))))
    centre.apply(c.OpenWindow(1, clerk="wang"), T0)
    centre.apply(c.ReserveBlock("box-1", ("A", "B"), 10), T0)
    return centre


def online(centre: Centre, request: int, now: float = T0 + 8) -> str:
    [issued] = [e for e in centre.apply(c.TakeTicket("SOC-1", source="box-1", request=request),
                                        now) if isinstance(e, TicketIssued)]
    return issued.ticket


def offline(number: str, request: int, supersedes: int | None,
            taken_at: float = T0 + 5) -> c.TakeTicket:
    return c.TakeTicket("SOC-1", source="box-1", number=number, taken_at=taken_at,
                        request=request, supersedes=supersedes)


def test_the_offline_ticket_voids_the_late_online_one_for_the_same_press():
    centre = core()
    late = online(centre, request=7)  # the hub woke up and answered seq 7 late: A001
    effects = centre.apply(offline("A901", request=8, supersedes=7), T0 + 9)
    voided = [e for e in effects if isinstance(e, TicketVoided)]
    assert voided == [TicketVoided(late, "20261123-A901", None)]
    assert any(isinstance(e, TicketIssued) and e.ticket == "20261123-A901" for e in effects)
    assert any(isinstance(e, QueueChanged) for e in effects)
    assert [t.number for t in centre.queue] == ["A901"]  # one press, one ticket queued
    assert centre.tickets[late].state is TicketState.VOIDED
    assert centre.by_number["A001"].state is TicketState.VOIDED  # A001 is never reissued
    assert online(centre, request=9) == "20261123-A002"


def test_a_voided_ticket_that_was_already_called_leaves_its_window():
    centre = core()
    late = online(centre, request=7)
    centre.apply(c.CallNext(1), T0 + 9)  # the clerk called A001: nobody holds that paper
    assert centre.windows[1].ticket == late
    effects = centre.apply(offline("A901", request=8, supersedes=7), T0 + 10)
    assert TicketVoided(late, "20261123-A901", 1) in effects
    assert WindowChanged(1) in effects
    w = centre.windows[1]
    assert (w.state, w.ticket) == (WindowState.IDLE, None)
    assert [e.ticket for e in centre.apply(c.CallNext(1), T0 + 11)
            if isinstance(e, TicketCalled)] == ["20261123-A901"]


def test_a_ticket_already_being_served_is_not_voided_the_offline_one_still_joins():
    centre = core()
    late = online(centre, request=7)
    centre.apply(c.CallNext(1), T0 + 9)
    centre.apply(c.Start(1), T0 + 10)
    effects = centre.apply(offline("A901", request=8, supersedes=7), T0 + 11)
    assert not [e for e in effects if isinstance(e, TicketVoided)]
    assert centre.tickets[late].state is TicketState.SERVING
    assert [t.number for t in centre.queue] == ["A901"]


def test_a_ticket_served_then_transferred_is_not_voided_either():
    centre = core()
    centre.apply(c.OpenWindow(2, clerk="li"), T0)
    late = online(centre, request=7)
    centre.apply(c.CallNext(1), T0 + 9)
    centre.apply(c.Start(1), T0 + 10)
    centre.apply(c.Transfer(1, to_window=2), T0 + 11)  # waiting again, for window 2
    centre.apply(offline("A901", request=8, supersedes=7), T0 + 12)
    assert centre.tickets[late].state is TicketState.WAITING
    assert sorted(t.number for t in centre.queue) == ["A001", "A901"]


def test_an_offline_take_for_a_request_never_answered_just_joins():
    centre = core()
    effects = centre.apply(offline("A901", request=8, supersedes=7), T0 + 9)
    assert not [e for e in effects if isinstance(e, TicketVoided)]
    assert [t.number for t in centre.queue] == ["A901"]


def test_the_same_seq_from_another_device_is_not_voided():
    centre = core()
    centre.apply(c.TakeTicket("SOC-1", source="box-2", request=7), T0 + 8)
    centre.apply(offline("A901", request=8, supersedes=7), T0 + 9)
    assert [t.number for t in centre.queue] == ["A901", "A001"]  # both kept, by press time


@pytest.mark.parametrize("cmd, code", [
    (offline("A950", request=8, supersedes=7), "not_reserved"),
    (offline("A901", request=8, supersedes=8), "bad_field"),  # must name an earlier event
    (c.TakeTicket("SOC-1", source="box-1", request=8, supersedes=7), "bad_field"),  # online
])
def test_a_refused_offline_take_voids_nothing(cmd, code):
    centre = core()
    online(centre, request=7)
    before = centre.to_dict()
    with pytest.raises(Rejected) as e:
        centre.apply(cmd, T0 + 9)
    assert e.value.code == code
    assert centre.to_dict() == before


def test_the_resident_of_the_voided_ticket_may_hold_the_offline_one():
    centre = core()
    centre.apply(c.TakeTicket("SOC-1", source="box-1", request=7, resident="r1"), T0 + 8)
    cmd = c.TakeTicket("SOC-1", source="box-1", number="A901", taken_at=T0 + 5, request=8,
                       supersedes=7, resident="r1")
    centre.apply(cmd, T0 + 9)
    assert centre.active_by_resident[("r1", "SOC-1")] == "20261123-A901"


def test_the_voiding_take_round_trips_through_its_journal_record():
    cmd = offline("A901", request=8, supersedes=7)
    assert c.from_record(cmd.to_record()) == cmd
    old = {"op": "take", "item": "SOC-1", "source": "box-1"}  # journaled before this field
    assert c.from_record(old) == c.TakeTicket("SOC-1", source="box-1")


# ---- the app: device events in, journal records and messages out ----------------------

def app() -> HubApp:
    centre = Centre(small_catalog(), CentreConfig("t1", (WindowSpec(1),)))
    return HubApp(centre, Registry([DeviceSpec("kp-1", "keypad", 1),
                                    DeviceSpec("box-1", "box")]), "boot1")


def evt(a: HubApp, dev: str, seq: int, typ: str, now: float = T0, **f):
    return a.handle(proto.device_topic("t1", dev, "evt"),
                    proto.encode("evt", proto.event(dev, seq, typ, **f)), now)


def birth(a: HubApp, now: float = T0):
    return a.handle(proto.device_topic("t1", "box-1", "status"), proto.encode(
        "status", {"dev": "box-1", "state": "ready", "role": "box"}), now)


def decoded(step, leaf: str) -> list[dict]:
    return [proto.decode(leaf, p.payload) for p in step.publishes if p.topic.endswith("/" + leaf)]


def test_app_late_online_ticket_then_offline_take_one_ticket_and_replay_agrees():
    a = app()
    records = list(birth(a).records)
    records += evt(a, "kp-1", 1, "open").records
    # The hub was stalled 8 s: the box's take seq 1 is answered late, with A001.
    late = evt(a, "box-1", 1, "take", now=T0 + 8, item="SOC-1")
    records += late.records
    [printed] = [m for m in decoded(late, "cmd") if m["type"] == "print"]
    assert (printed["ticket"], printed["seq"]) == ("A001", 1)  # the box can refuse it
    # Meanwhile the box printed A901; it submits it for seq 1 as event 2.
    joined = evt(a, "box-1", 2, "take", now=T0 + 9, item="SOC-1", number="A901",
                 taken_at=T0 + 5, for_seq=1)
    records += joined.records
    [res] = decoded(joined, "res")
    assert res["ticket"] == "A901"
    assert not [m for m in decoded(joined, "cmd") if m["type"] == "print"]
    [take] = [r for r in joined.records if r.body["op"] == "take"]
    assert (take.body["request"], take.body["supersedes"]) == (2, 1)  # in the same record
    assert [t.number for t in a.centre.queue] == ["A901"]
    assert a.centre.by_number["A001"].state is TicketState.VOIDED
    b = app()
    b.replay(records)
    assert b.centre.to_dict() == a.centre.to_dict()
    called = evt(a, "kp-1", 2, "call", now=T0 + 10)
    assert [m.get("ticket") for m in decoded(called, "res")] == ["A901"]


def test_app_a_called_voided_ticket_leaves_the_display_and_the_hall():
    a = app()
    birth(a)
    evt(a, "kp-1", 1, "open")
    evt(a, "box-1", 1, "take", now=T0 + 8, item="SOC-1")
    evt(a, "kp-1", 2, "call", now=T0 + 8.5)  # A001 is on the boards
    joined = evt(a, "box-1", 2, "take", now=T0 + 9, item="SOC-1", number="A901",
                 taken_at=T0 + 5, for_seq=1)
    [display] = decoded(joined, "display")
    assert display["state"] == "idle" and "ticket" not in display
    [hall] = [proto.decode("hall", p.payload) for p in joined.publishes
              if p.topic == proto.hall_topic("t1")]
    assert [x["ticket"] for x in hall["calls"]] == []


def test_app_offline_take_first_then_the_late_original_is_refused_as_replayed():
    a = app()
    birth(a)
    evt(a, "kp-1", 1, "open")
    joined = evt(a, "box-1", 2, "take", now=T0 + 9, item="SOC-1", number="A901",
                 taken_at=T0 + 5, for_seq=1)
    assert decoded(joined, "res")[0]["ticket"] == "A901"
    before = a.centre.to_dict()
    late = evt(a, "box-1", 1, "take", now=T0 + 10, item="SOC-1")
    assert late.records == []
    [err] = decoded(late, "err")
    assert (err["code"], err["seq"]) == ("replayed", 1)
    assert not decoded(late, "cmd")
    assert a.centre.to_dict() == before
    assert [t.number for t in a.centre.queue] == ["A901"]


def test_app_a_print_refused_as_served_offline_is_no_alert_for_staff():
    a = app()

    def ack(cmd_id: str, code: str) -> None:
        a.handle(proto.device_topic("t1", "box-1", "ack"), proto.encode(
            "ack", {"dev": "box-1", "id": cmd_id, "ok": False, "code": code}), T0)

    ack("3.0", "served_offline")
    assert list(a.refused) == []  # nothing to reprint: the offline ticket replaces it
    ack("4.0", "paper_out")
    assert [r["code"] for r in a.refused] == ["paper_out"]


# ---- the reference device over a real Mosquitto, the hub process frozen ------------------

async def test_simdevice_box_across_a_frozen_hub_one_ticket(tmp_path, mosquitto,
                                                            small_catalog_file):
    """tools/simdevice.py keeps the firmware's promise: the hub process is SIGSTOPped for
    8 s across a take, the SimDevice box serves it offline, refuses the late print and its
    offline ticket replaces the late one."""
    cfg_path = write_config(tmp_path / "centre.toml", "t1", mosquitto.port, tmp_path / "hub.db",
                            windows=1, catalog=small_catalog_file)
    hub = HubProcess(cfg_path, tmp_path / "hub.log").start()
    try:
        await wait_hub_ready(mosquitto.port)
        async with SimDevice("t1", "box-1", "box", "127.0.0.1", mosquitto.port) as box, \
                SimDevice("t1", "kp-1", "keypad", "127.0.0.1", mosquitto.port, window=1) as kp:
            await box.next_command("block", timeout=10)  # its offline numbers
            assert (await box.take("SOC-1", "A"))["ticket"] == "A001"
            assert hub.proc is not None
            loop = asyncio.get_running_loop()
            hub.proc.send_signal(signal.SIGSTOP)
            frozen_at = loop.time()
            try:
                got = await box.take("SOC-1", "A")
                assert got == {"ticket": "A901", "offline": True}
                await asyncio.sleep(max(0.0, frozen_at + 8.0 - loop.time()))  # the stall
            finally:
                hub.proc.send_signal(signal.SIGCONT)
            late = await asyncio.wait_for(box.refusals.get(), 15)
            assert (late["ticket"], late["seq"]) == ("A002", 2)
            [joined] = await box.submit_offline()
            assert joined["ticket"] == "A901" and joined["ok"], joined
            assert [p["ticket"] for p in box.printed] == ["A001"]  # A901: the box's own
            await kp.send("open")
            assert (await kp.send("call"))["ticket"] == "A001"
            assert (await kp.send("call"))["ticket"] == "A901"
            assert "ticket" not in await kp.send("call")  # A901 done; nobody else waits
            with pytest.raises(DeviceError) as e:
                await kp.send("call")
            assert e.value.code == "queue_empty"
        config = load(cfg_path)
        journal = Journal(config.database_url)
        try:
            state = build_app(config, journal).centre
        finally:
            journal.close()
        assert state.by_number["A002"].state is TicketState.VOIDED
        assert state.by_number["A901"].state is TicketState.DONE
    finally:
        hub.stop()
