"""The fleet's "last seen" (issue 18): the last message a device itself sent — a birth, an
event, an ack — and not the retained birth the broker hands a starting hub (sent whenever
the device last connected) nor the `lost` will the broker publishes for it."""

from __future__ import annotations

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.protocol import ow_protocol as proto

T0 = 1_795_500_000.0


def _hub() -> HubApp:
    return HubApp(Centre(load_catalog(None), CentreConfig("t1", (WindowSpec(1),))),
                  Registry([DeviceSpec("kp-1", "keypad", 1)]), "b1")


def _status(app: HubApp, state: str, at: float, retained: bool = False) -> None:
    app.handle(proto.device_topic("t1", "kp-1", "status"),
               proto.encode("status", {"dev": "kp-1", "state": state, "role": "keypad",
                                       "fw": "0.2.0"}), at, retained=retained)


def test_last_seen_is_what_the_device_sent_itself():
    app = _hub()
    dev = app.registry.devices["kp-1"]
    _status(app, "ready", T0 - 3600, retained=True)  # the broker's copy of an old birth
    assert dev.state == "ready" and dev.last_seen == 0.0
    _status(app, "ready", T0)  # the device says it now
    assert dev.last_seen == T0
    app.handle(proto.device_topic("t1", "kp-1", "evt"),
               proto.encode("evt", proto.event("kp-1", 1, "open")), T0 + 300)
    assert dev.last_seen == T0 + 300  # a press is a sign of life too
    _status(app, "lost", T0 + 900)  # the broker gave up on it: not a sighting
    assert dev.state == "lost" and dev.last_seen == T0 + 300
