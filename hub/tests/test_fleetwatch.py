"""Fleet alerts and the fleet summary: pure rules, time passed in."""

from __future__ import annotations

import json

from onewindow.hub.devices import Device, DeviceSpec
from onewindow.hub.fleetwatch import FleetRules, FleetWatch, device_alerts, summary
from onewindow.protocol import ow_protocol as proto

RULES = FleetRules(offline_after=60, reconnects=3, reconnect_window=600)
T0 = 1_800_000_000.0


def dev(dev_id: str = "box-1", role: str = "box") -> Device:
    return Device(DeviceSpec(dev_id, role))


def status(d: Device, state: str, at: float, **fields) -> None:
    d.note_status({"dev": d.spec.id, "state": state, **fields}, at)


def whats(d: Device, now: float, started: float = T0) -> list[str]:
    return [a["what"] for a in device_alerts(d, now, started, RULES)]


def test_offline_only_after_the_grace_time():
    d = dev()
    status(d, "ready", T0, uptime=5)
    status(d, "lost", T0 + 10)
    assert d.offline_since == T0 + 10
    assert whats(d, T0 + 70) == []  # 60 s exactly: not yet
    alerts = device_alerts(d, T0 + 71, T0, RULES)
    assert alerts == [{"dev": "box-1", "what": "offline", "state": "lost", "seconds": 61}]
    status(d, "ready", T0 + 80, uptime=90)
    assert d.offline_since is None and whats(d, T0 + 500) == []


def test_a_device_never_heard_from_counts_from_the_hubs_start():
    d = dev("kp-1", "keypad")
    assert whats(d, T0 + 59) == []
    assert whats(d, T0 + 61) == ["offline"]
    assert device_alerts(d, T0 + 61, T0, RULES)[0]["state"] == "unknown"


def test_disconnected_keeps_its_first_offline_time():
    d = dev()
    status(d, "ready", T0)
    status(d, "disconnected", T0 + 1)
    status(d, "lost", T0 + 30)  # a later will does not restart the clock
    assert d.offline_since == T0 + 1


def test_printer_alerts_but_not_near_end_and_not_while_offline():
    d = dev()
    status(d, "ready", T0, alerts=["paper_out", "paper_near_end"])
    assert whats(d, T0 + 1) == ["paper_out"]
    status(d, "ready", T0 + 2, alerts=["cover_open"])
    assert whats(d, T0 + 3) == ["cover_open"]
    status(d, "lost", T0 + 4)
    assert whats(d, T0 + 5) == []  # its last alerts are stale; offline comes at 60 s


def test_reconnects_in_a_sliding_window():
    d = dev()
    status(d, "ready", T0, uptime=1)  # first birth: not a reconnection
    t = T0
    for _ in range(4):  # the link drops (will), then the device is back
        t += 20
        status(d, "lost", t)
        status(d, "ready", t + 2, uptime=int(t - T0))
    assert len(d.reconnects) == 4
    assert device_alerts(d, t + 3, T0, RULES)[-1] == {"dev": "box-1", "what": "reconnects",
                                                       "count": 4, "minutes": 10}
    assert whats(d, T0 + 20 + 2 + 601) == []  # the first one left the window: 3 is fine


def test_rebirths_and_alert_updates_are_not_reconnects_but_a_reboot_is():
    d = dev()
    status(d, "ready", T0, uptime=100)
    status(d, "ready", T0 + 5, uptime=105)  # the hub asked for a rebirth
    status(d, "ready", T0 + 9, uptime=109, alerts=["paper_out"])  # alert update
    assert list(d.reconnects) == []
    status(d, "ready", T0 + 12, uptime=2)  # rebooted before the broker noticed
    assert list(d.reconnects) == [T0 + 12]


def test_summary_and_its_rate_limited_retained_publish():
    box, kp = dev(), dev("kp-1", "keypad")
    status(box, "ready", T0, fw="0.2.0", board="sim", uptime=3, rssi=-60)
    w = FleetWatch("c1", RULES)
    s = w.summary([box, kp], T0)
    assert s["online"] == 1 and s["total"] == 2
    row = s["devices"][0]
    assert (row["id"], row["online"], row["fw"], row["rssi"]) == ("box-1", True, "0.2.0", -60)
    [p] = w.update([box, kp], T0, force=True)
    assert p.topic == "ow/c1/hub/fleet" and p.retain
    assert proto.decode("fleet", p.payload)["devices"][1]["id"] == "kp-1"
    assert w.update([box, kp], T0 + 5) == []  # nothing changed
    status(box, "ready", T0 + 6, uptime=9, alerts=["paper_out"])
    [p] = w.update([box, kp], T0 + 6)
    assert json.loads(p.payload)["alerts"] == [{"dev": "box-1", "what": "paper_out"}]
    status(box, "ready", T0 + 6.5, uptime=9, alerts=[])
    assert w.update([box, kp], T0 + 6.5) == []  # at most once a second ...
    assert len(w.update([box, kp], T0 + 7.1)) == 1  # ... but not lost
    assert w.update([box, kp], T0 + 20) == []
    assert len(w.update([box, kp], T0 + 37.2)) == 1  # a refresh now and then
    later = summary([box, kp], T0 + 61, T0, RULES)  # the keypad never came
    assert later["alerts"] == [{"dev": "kp-1", "what": "offline", "state": "unknown",
                                "seconds": 61}]


def test_rules_from_the_centre_toml_table():
    assert FleetRules.from_table({}) == FleetRules()
    r = FleetRules.from_table({"offline_after": 5, "reconnects": 2, "other": "x"})
    assert (r.offline_after, r.reconnects, r.reconnect_window) == (5.0, 2, 600.0)


def test_a_bad_fleet_setting_is_a_configuration_error():
    import pytest

    from onewindow.hub.config import ConfigError, from_dict

    base = {"centre": {"id": "c1"}, "windows": [{"number": 1}]}
    assert from_dict({**base, "fleet": {"offline_after": 5}}).fleet == {"offline_after": 5}
    with pytest.raises(ConfigError, match="soon"):
        from_dict({**base, "fleet": {"offline_after": "soon"}})
