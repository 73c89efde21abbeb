"""The app layer without a broker: messages in, records and messages out."""

import datetime as dt

from onewindow.hub.app import HubApp
from onewindow.hub.core.centre import Centre, CentreConfig, WindowSpec
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.protocol import ow_protocol as proto

from .catalogs import small_catalog

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()


def app() -> HubApp:
    core = Centre(small_catalog(), CentreConfig("t1", (WindowSpec(1),)))
    return HubApp(core, Registry([DeviceSpec("kp-1", "keypad", 1),
                                  DeviceSpec("box-1", "box")]), "boot1")


def evt(a, dev, seq, typ, **f):
    return a.handle(proto.device_topic("t1", dev, "evt"),
                    proto.encode("evt", proto.event(dev, seq, typ, **f)), T0)


def status(a, dev, seq, retained):
    msg = proto.encode("status", {"dev": dev, "state": "ready", "role": "keypad", "seq": seq})
    return a.handle(proto.device_topic("t1", dev, "status"), msg, T0, retained=retained)


def test_an_old_retained_birth_is_noted_but_not_answered():
    a = app()
    evt(a, "kp-1", 1, "open")
    evt(a, "kp-1", 2, "pause")
    assert status(a, "kp-1", 0, retained=True).publishes == []
    fresh = status(a, "kp-1", 0, retained=False).publishes  # a reflashed device, now
    assert any(p.topic.endswith("/err") and b"seq_behind" in p.payload for p in fresh)
    assert any(p.topic.endswith("/cmd") for p in fresh)


def test_a_ticket_nobody_can_serve_yet_says_so_on_paper():
    a = app()  # window 1 is closed: nobody serves anything yet
    step = evt(a, "box-1", 1, "take", item="SOC-1")
    [printed] = [p for p in step.publishes if p.topic.endswith("/cmd")]
    lines = proto.decode("cmd", printed.payload)["lines"]
    assert any("请咨询工作人员" in line for line in lines)
    assert not any("-1 min" in line or "-1分钟" in line for line in lines)


def test_replay_rebuilds_state_and_the_last_reply_of_each_device():
    a = app()
    records = []
    records += evt(a, "box-1", 1, "take", item="SOC-1").records
    records += evt(a, "kp-1", 1, "open").records
    last = evt(a, "kp-1", 2, "call")
    records += last.records
    b = app()
    assert b.replay(records) == 3
    assert b.centre.to_dict() == a.centre.to_dict()
    assert b.window_rev == a.window_rev and b.pos == a.pos
    again = evt(b, "kp-1", 2, "call")  # a retry that crossed the restart
    assert again.records == [] and [p.payload for p in again.publishes] == [
        p.payload for p in last.publishes if "/dev/kp-1/" in p.topic]


def cmds(step, typ):
    return [proto.decode("cmd", p.payload) for p in step.publishes
            if p.topic.endswith("/cmd") and proto.decode("cmd", p.payload)["type"] == typ]


def test_a_button_box_gets_offline_blocks_and_its_offline_tickets_join_the_queue():
    a = app()
    birth = a.handle(proto.device_topic("t1", "box-1", "status"), proto.encode(
        "status", {"dev": "box-1", "state": "ready", "role": "box"}), T0)
    [block] = cmds(birth, "block")
    assert block["blocks"]["A"] == [[901, 910]] and len(birth.records) == 1
    evt(a, "kp-1", 1, "open")
    online = evt(a, "box-1", 1, "take", item="SOC-1")  # A001, pressed at T0
    offline = a.handle(proto.device_topic("t1", "box-1", "evt"), proto.encode("evt", proto.event(
        "box-1", 2, "take", item="SOC-1", number="A901", taken_at=T0 - 30)), T0 + 5)
    assert cmds(offline, "print") == []  # the box printed it while the hub was away
    res = [proto.decode("res", p.payload) for p in offline.publishes if p.topic.endswith("/res")]
    assert res[0]["ticket"] == "A901"
    assert cmds(online, "print")[0]["ticket"] == "A001"
    called = evt(a, "kp-1", 2, "call")
    assert [proto.decode("res", p.payload)["ticket"] for p in called.publishes
            if p.topic.endswith("/res")] == ["A901"]  # pressed first, called first
    blocks = []
    for i, n in enumerate(("A902", "A903", "A904", "A905", "A906")):
        step = a.handle(proto.device_topic("t1", "box-1", "evt"), proto.encode(
            "evt", proto.event("box-1", 3 + i, "take", item="SOC-1", number=n,
                               taken_at=T0)), T0 + 10)
        blocks += cmds(step, "block")
    # Topped up once, when half the block was used (A905), not on every ticket.
    assert [b["blocks"]["A"] for b in blocks] == [[[901, 910], [911, 920]]]
