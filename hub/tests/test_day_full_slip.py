"""A press refused because the day cannot serve it (admission control, mode "stop") is
printed too: a button box has no screen. The slip says the day is full or closed, in the
centre's Chinese and English, with a QR to book another time where the centre takes
bookings (else: come back another working day); a repeat of the press gets the same slip
command, which the box prints once (command ids). A keypad's refusal prints nothing."""

from __future__ import annotations

import base64
import datetime as dt
import json

from onewindow.hub.app import HubApp
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.render.escpos_decode import decode
from onewindow.protocol import ow_protocol as proto

from .catalogs import small_catalog

CST = dt.timezone(dt.timedelta(hours=8))
SUNDAY = dt.datetime(2026, 11, 22, 10, 0, tzinfo=CST).timestamp()  # closed by default


def hub(booking: bool, chinese: str = "zh_CN") -> HubApp:
    core = Centre(small_catalog(), CentreConfig("t1", (WindowSpec(1),)))
    app = HubApp(core, Registry([DeviceSpec("box-1", "box"), DeviceSpec("kp-1", "keypad", 1)]),
                 "boot1", "http://hub.local:8080/t/")
    app.admission = "stop"
    app.slip_chinese = chinese
    app.booking_key = b"k" * 32 if booking else None
    return app


def press(app: HubApp, seq: int, dev: str = "box-1"):
    return app.handle(proto.device_topic("t1", dev, "evt"), proto.encode(
        "evt", proto.event(dev, seq, "take", item="SOC-1")), SUNDAY)


def commands(step) -> list[dict]:
    return [json.loads(p.payload) for p in step.publishes if p.topic.endswith("/cmd")]


def test_a_refused_press_prints_the_day_full_slip_with_a_booking_qr() -> None:
    app = hub(booking=True)
    step = press(app, 1)
    [reply] = [json.loads(p.payload) for p in step.publishes if p.topic.endswith("/err")]
    assert reply["code"] == "day_full" and reply["seq"] == 1
    [cmd] = commands(step)
    assert cmd["type"] == "print" and cmd["qr"] == "http://hub.local:8080/book?item=SOC-1"
    slip = decode(base64.b64decode(cmd["escpos"]))
    text = " ".join(slip["texts"])
    assert "今日已停止办理" in text and "请扫码预约其他时间" in text
    assert slip["qr"] == "http://hub.local:8080/book?item=SOC-1"
    assert app.centre.tickets == {}  # refused: nothing issued
    again = press(app, 1)  # the box did not hear the answer: the same reply, the same slip
    assert commands(again) == [cmd]


def test_without_bookings_the_slip_says_come_back_and_in_traditional() -> None:
    app = hub(booking=False, chinese="zh_TW")
    [cmd] = commands(press(app, 1))
    assert "qr" not in cmd
    text = " ".join(decode(base64.b64decode(cmd["escpos"]))["texts"])
    assert "今日已停止辦理" in text and "請改日（工作日）再來辦理" in text
    assert "今日已停止办理" not in text


def test_a_keypads_refusal_prints_nothing() -> None:
    app = hub(booking=True)
    step = app.handle(proto.device_topic("t1", "kp-1", "evt"), proto.encode(
        "evt", proto.event("kp-1", 1, "take", item="SOC-1")), SUNDAY)
    assert commands(step) == []
