"""The app layer without a broker: messages in, records and messages out."""

import base64
import datetime as dt
import re

from onewindow.hub.app import HubApp
from onewindow.hub.app.boards import display_msg
from onewindow.hub.app.tickets import BOARD_MAX_PAYLOAD
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.render.bitmap import text_bitmap, text_bitmap_b64
from onewindow.hub.render.escpos_decode import decode
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


# ---- rendered bytes in commands and displays (ESC/POS, bitmaps) ---------------------------

def b64(s):
    return base64.b64decode(s, validate=True)


def sample_app() -> HubApp:
    """The shipped catalog: real centre names and the longest item names."""
    core = Centre(load_catalog(), CentreConfig("t1", (WindowSpec(1),)))
    return HubApp(core, Registry([DeviceSpec("kp-1", "keypad", 1),
                                  DeviceSpec("box-1", "box"), DeviceSpec("led-1", "led", 1)]),
                  "boot1")


def test_the_print_command_carries_the_ticket_as_escpos():
    a = app()
    evt(a, "kp-1", 1, "open")
    step = evt(a, "box-1", 1, "take", item="SOC-1")
    [cmd] = cmds(step, "print")
    raw = b64(cmd["escpos"])
    assert base64.b64encode(raw).decode() == cmd["escpos"]  # standard, padded, one line
    out = decode(raw)
    assert out["qr"] == cmd["qr"] == "http://localhost:8080/t/20261123-A001"
    assert out["cut"] is True
    texts = out["texts"]
    assert texts[0] == "测试中心" and "Test centre" in texts
    assert "A001" in texts and "事项SOC-1" in texts and "Item SOC-1" in texts
    assert "前面还有0人" in texts and "2026-11-23 09:00" in texts
    [wait] = [t for t in texts if t.startswith("预计等候约")]
    assert re.fullmatch(r"预计等候约(\d+)分钟（(\d+)-(\d+)分钟）", wait), wait  # point + 80%
    assert "事项SOC-1".encode("gb18030") in raw  # GB18030, not UTF-8
    assert cmd["lines"][1] == "A001"  # lines and qr stay for kiosks and simulators


def test_a_ticket_with_no_open_window_says_so_in_escpos_too():
    step = evt(app(), "box-1", 1, "take", item="SOC-1")
    texts = decode(b64(cmds(step, "print")[0]["escpos"]))["texts"]
    assert "暂无开放窗口，请咨询工作人员" in texts and not any("分钟" in t for t in texts)


def test_print_payload_of_the_longest_catalog_item_fits_a_board():
    a = sample_app()
    items = a.centre.catalog.items.values()
    longest = max(items, key=lambda i: len(i.name.zh.encode("gb18030")) * 3 + len(i.name.en))
    step = evt(a, "box-1", 1, "take", item=longest.id)
    [p] = [p for p in step.publishes if p.topic.endswith("/cmd")]
    msg = proto.decode("cmd", p.payload)
    assert "escpos" in msg and len(p.payload) < BOARD_MAX_PAYLOAD * 3 // 4, len(p.payload)
    assert longest.name.zh in decode(b64(msg["escpos"]))["texts"]


def test_display_and_show_carry_the_chinese_text_as_a_bitmap():
    a = app()
    evt(a, "box-1", 1, "take", item="SOC-1")
    closed = proto.decode("display", a.retained_state(T0)[0].payload)
    evt(a, "kp-1", 1, "open")
    idle = proto.decode("display", a.retained_state(T0)[0].payload)
    step = evt(a, "kp-1", 2, "call")
    [called] = [proto.decode("display", p.payload) for p in step.publishes
                if p.topic.endswith("/display")]
    [show] = cmds(status(a, "kp-1", 2, retained=False), "show")
    assert "bmp" not in idle and "text" not in idle  # idle: the board shows no Chinese
    for msg, zh in ((closed, "暂停受理"), (called, "请A001号到1号窗口"),
                    (show, "请A001号到1号窗口")):
        assert msg["text"].split(" / ")[0] == zh
        w, h, data = text_bitmap(zh, 16)
        assert msg["bmp"] == {"w": w, "h": h, "b": base64.b64encode(data).decode()}
        assert len(b64(msg["bmp"]["b"])) == (w + 7) // 8 * h and h == 16


def test_displays_stay_small_and_the_bitmap_is_rendered_once_per_text():
    a = sample_app()
    a.operate(c.OpenWindow(1, "k"), T0)
    a.operate(c.Pause(1), T0)
    text_bitmap_b64.cache_clear()
    for _ in range(50):
        msg = display_msg(a, 1)
    assert text_bitmap_b64.cache_info().misses == 1 and msg["text"] == "暂停服务 / Paused"
    assert proto.decode("display", a.retained_state(T0)[0].payload)["bmp"]["h"] == 16
    for _ in range(3):
        a.operate(c.TakeTicket(sorted(a.centre.catalog.items)[0]), T0)
    a.operate(c.Resume(1), T0)
    a.operate(c.CallNext(1), T0)
    msg = display_msg(a, 1)
    assert "bmp" in msg and len(proto.encode("display", msg)) < 1024


def test_the_block_command_carries_the_hub_clock_and_the_offline_ticket_head():
    a = sample_app()
    birth = a.handle(proto.device_topic("t1", "box-1", "status"), proto.encode(
        "status", {"dev": "box-1", "state": "ready", "role": "box"}), T0 + 1.5)
    [block] = cmds(birth, "block")
    assert block["ts"] == T0 + 1.5
    head = b64(block["head"])
    assert head.startswith(b"\x1b@")  # ESC @ first: the box's job starts clean
    assert decode(head) == {"texts": ["示范街道社区事务受理服务中心",
                                      # broken between words to fit 58 mm (32 columns)
                                      "Demo Street Community Affairs", "Service Centre",
                                      "离线取号 请留意叫号", "Offline ticket: watch the board"],
                            "qr": None, "cut": False}
    assert "示范街道社区事务受理服务中心".encode("gb18030") in head
    again = a.handle(proto.device_topic("t1", "box-1", "status"), proto.encode(
        "status", {"dev": "box-1", "state": "ready", "role": "box"}), T0 + 9)
    [block2] = cmds(again, "block")  # the same blocks, now as a resend: a fresh clock
    assert block2["ts"] == T0 + 9 and block2["head"] == block["head"]
    assert all(len(p.payload) < BOARD_MAX_PAYLOAD for p in birth.publishes + again.publishes)


def test_a_restarted_hub_republishes_identical_retained_displays_and_replies():
    a = app()
    records = []
    records += a.handle(proto.device_topic("t1", "box-1", "status"), proto.encode(
        "status", {"dev": "box-1", "state": "ready", "role": "box"}), T0).records
    records += evt(a, "kp-1", 1, "open").records
    take = evt(a, "box-1", 1, "take", item="SOC-1")
    records += take.records
    records += evt(a, "kp-1", 2, "call").records
    b = app()
    b.replay(records)
    assert [p.payload for p in b.retained_state(T0)[:-1]] == [
        p.payload for p in a.retained_state(T0)[:-1]]  # all but the hub birth (boot, ts)
    assert b"bmp" in b.retained_state(T0)[0].payload
    again = evt(b, "box-1", 1, "take", item="SOC-1")  # a retry across the restart
    assert [p.payload for p in again.publishes] == [
        p.payload for p in take.publishes if "/dev/box-1/" in p.topic]
    assert cmds(again, "print")[0]["escpos"]


def node_app() -> HubApp:
    core = Centre(small_catalog(), CentreConfig("t1", (WindowSpec(1), WindowSpec(2))))
    return HubApp(core, Registry([DeviceSpec("node-1", "node", 1), DeviceSpec("kp-2", "keypad", 2),
                                  DeviceSpec("box-1", "box")]), "boot1")


def replies(step, leaf):
    return [proto.decode(leaf, p.payload) for p in step.publishes if p.topic.endswith("/" + leaf)]


def test_a_scanned_ticket_starts_service_only_at_the_window_it_was_called_to():
    a = node_app()
    evt(a, "box-1", 1, "take", item="SOC-1", resident="tok-a")
    evt(a, "box-1", 2, "take", item="SOC-1")
    evt(a, "node-1", 1, "open")
    evt(a, "kp-2", 1, "open")
    [called] = replies(evt(a, "node-1", 2, "call"), "res")
    [other] = replies(evt(a, "kp-2", 2, "call"), "res")
    url = "http://hub.local/t/" + a.centre.find_ticket(called["ticket"]).id
    wrong = evt(a, "node-1", 3, "scan", ticket=other["ticket"])
    assert wrong.records == [] and replies(wrong, "err")[0]["code"] == "not_called_here"
    assert replies(evt(a, "node-1", 4, "scan", ticket="Z999"), "err")[0]["code"] == \
        "unknown_ticket"
    [started] = replies(evt(a, "node-1", 5, "scan", ticket=url), "res")
    assert started["state"] == "serving" and started["ticket"] == called["ticket"]
    [again] = replies(evt(a, "node-1", 6, "scan", ticket=called["ticket"]), "res")
    assert again["state"] == "serving"


def test_a_card_tapped_at_the_window_shows_the_residents_tickets():
    a = node_app()
    evt(a, "box-1", 1, "take", item="SOC-1", resident="tok-a")
    evt(a, "box-1", 2, "take", item="SOC-1", resident="tok-b")
    step = evt(a, "node-1", 1, "card", resident="tok-a")
    [res] = replies(step, "res")
    assert [t["ticket"] for t in res["tickets"]] == ["A001"] and res["cases"] == []
    assert len(step.records) == 1 and a.centre.to_dict() == node_app_after_two_takes()


def node_app_after_two_takes():
    b = node_app()
    evt(b, "box-1", 1, "take", item="SOC-1", resident="tok-a")
    evt(b, "box-1", 2, "take", item="SOC-1", resident="tok-b")
    return b.centre.to_dict()
