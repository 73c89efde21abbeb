"""The device fleet as the hub sees it: the summary it publishes (retained) on
`ow/{centre}/hub/fleet` and the technicians' alerts. Pure: the registry and `now` in,
plain dicts out (no clock, no I/O), so the rules are tested on their own and the same
numbers feed `onewindow devices`, the fleet page and the supervisor dashboard.

Alerts (each `{"dev", "what", ...}`):

* `offline`: a device not online (lost, disconnected, or never heard from since the hub
  started) for more than `offline_after` seconds;
* `paper_out`, `cover_open`, `printer_offline`: a button box's printer alerts, as the box
  reports them in its birth (firmware/drivers/printer.py `alerts`); `paper_near_end` is
  left out on purpose: the box still prints, and staff change the roll at the next lull;
* `reconnects`: more than `reconnects` reconnections within `reconnect_window` seconds,
  a flapping Wi-Fi or broker link. A reconnection is a birth after the device was offline;
  the rebirths the hub asks for and births that only update alerts do not count.

Messages the hub dropped at its boundary (hub/app/facade.py `handle`) are counted too: per device
(`failures` in its row, by the device id of the topic) and for the hub (`failures`:
`protocol` for messages that break the contract, `internal` for ones the hub failed on).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..protocol import ow_protocol as proto
from .devices import Device, Publish

ONLINE = ("ready", "booting")
PRINTER_ALERTS = ("paper_out", "cover_open", "printer_offline")
VOLATILE = ("ts", "uptime", "last_seen")  # change without anything happening
FAILURE_IDS = 1024  # device ids counted one by one; a flood of made-up ids shares "?"


@dataclass(frozen=True, slots=True)
class FleetRules:
    offline_after: float = 60.0  # s
    reconnects: int = 3  # more reconnections than this ...
    reconnect_window: float = 600.0  # ... within this many seconds: alert

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> FleetRules:
        """centre.toml `[fleet]` (other fleet settings may share the table)."""
        d = cls()
        return cls(float(table.get("offline_after", d.offline_after)),
                   int(table.get("reconnects", d.reconnects)),
                   float(table.get("reconnect_window", d.reconnect_window)))


def online(d: Device) -> bool:
    return d.state in ONLINE


def offline_for(d: Device, now: float, started: float) -> float | None:
    """Seconds the device has been offline, None while online. A device never heard from
    counts from the hub's start: the broker hands the hub every retained birth at once."""
    if online(d):
        return None
    since = d.offline_since if d.offline_since is not None else started
    return max(0.0, now - since)


def recent_reconnects(d: Device, now: float, rules: FleetRules) -> int:
    return sum(1 for t in d.reconnects if now - t <= rules.reconnect_window)


def device_alerts(d: Device, now: float, started: float, rules: FleetRules
                  ) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    off = offline_for(d, now, started)
    if off is not None and off > rules.offline_after:
        out.append({"dev": d.spec.id, "what": "offline", "state": d.state,
                    "seconds": round(off)})
    if off is None:  # an offline box's last alerts are stale: offline says it all
        out += [{"dev": d.spec.id, "what": a} for a in d.alerts if a in PRINTER_ALERTS]
    n = recent_reconnects(d, now, rules)
    if n > rules.reconnects:
        out.append({"dev": d.spec.id, "what": "reconnects", "count": n,
                    "minutes": round(rules.reconnect_window / 60)})
    return out


def device_row(d: Device, now: float, started: float, rules: FleetRules) -> dict[str, Any]:
    row = d.to_dict()
    off = offline_for(d, now, started)
    row.update(online=off is None, offline_s=None if off is None else round(off),
               reconnects=recent_reconnects(d, now, rules), births=d.births)
    return row


def summary(devices: Iterable[Device], now: float, started: float, rules: FleetRules
            ) -> dict[str, Any]:
    """What `ow/{centre}/hub/fleet` carries: every device, the alerts, the counts."""
    devs = sorted(devices, key=lambda d: d.spec.id)
    rows = [device_row(d, now, started, rules) for d in devs]
    alerts = [a for d in devs for a in device_alerts(d, now, started, rules)]
    return {"ts": now, "online": sum(1 for r in rows if r["online"]), "total": len(rows),
            "offline_after": rules.offline_after, "devices": rows, "alerts": alerts}


def fingerprint(s: dict[str, Any]) -> Any:
    """The summary without what changes by itself (clock, uptime, offline seconds): the
    hub republishes when this changes, not every second."""
    rows = [{k: v for k, v in r.items() if k not in (*VOLATILE, "offline_s")}
            for r in s["devices"]]
    alerts = [{k: v for k, v in a.items() if k != "seconds"} for a in s["alerts"]]
    return (rows, alerts, s.get("failures"))


class FleetWatch:
    """Publishes the summary, retained, when it changes: at most once a second (a centre
    booting forty boards at once makes one message a second, not forty), and every
    REFRESH seconds anyway so readers see a fresh `ts` and offline durations."""

    MIN_INTERVAL = 1.0
    REFRESH = 30.0

    def __init__(self, centre: str, rules: FleetRules | None = None) -> None:
        self.topic = proto.fleet_topic(centre)
        self.rules = rules or FleetRules()
        self.started: float | None = None  # the first time asked: the hub's start
        self._last: Any = None
        self._at = float("-inf")
        self.failures = {"protocol": 0, "internal": 0}
        self.failed_by_dev: dict[str, int] = {}

    def note_failure(self, dev: str, kind: str) -> None:
        """A message from `dev` (the topic's id, maybe unknown) dropped at the boundary;
        `kind`: protocol | internal."""
        self.failures[kind] = self.failures.get(kind, 0) + 1
        if dev not in self.failed_by_dev and len(self.failed_by_dev) >= FAILURE_IDS:
            dev = "?"
        self.failed_by_dev[dev] = self.failed_by_dev.get(dev, 0) + 1

    def summary(self, devices: Iterable[Device], now: float) -> dict[str, Any]:
        if self.started is None:
            self.started = now
        s = summary(devices, now, self.started, self.rules)
        for row in s["devices"]:
            row["failures"] = self.failed_by_dev.get(row["id"], 0)
        s["failures"] = dict(self.failures)
        return s

    def update(self, devices: Iterable[Device], now: float, force: bool = False
               ) -> list[Publish]:
        """[] or the one retained message to publish now. `force`: on every (re)connect,
        as the broker may have lost its retained store."""
        s = self.summary(devices, now)
        fp = fingerprint(s)
        if not force and (now - self._at < self.MIN_INTERVAL
                          or (fp == self._last and now - self._at < self.REFRESH)):
            return []
        self._last, self._at = fp, now
        return [Publish(self.topic, proto.encode("fleet", s), retain=True)]
