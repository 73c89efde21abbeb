"""The device registry and each device's event sequence, as the hub sees them.

Pure like the core: the hub feeds it decoded messages and the time. Sequence rules follow
Sparkplug: each device numbers its events; the hub processes a number once, answers a
repeat of the last number with the very same reply (so a QoS 1 redelivery or a device retry
never issues two tickets), refuses older numbers, and treats a jump as lost state to resync.
"""

from __future__ import annotations

import base64
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

log = logging.getLogger("onewindow.hub")

Verdict = Literal["new", "repeat", "replayed", "gap"]
LOOKUP_EVERY = 2.0  # s: an id is looked up again at most this often (revocation delay)


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    id: str
    role: str
    window: int | None = None
    board: str = ""


@dataclass(slots=True)
class Publish:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass(slots=True)
class Device:
    spec: DeviceSpec
    state: str = "unknown"  # booting | ready | disconnected | lost, once heard from
    last_seq: int = 0
    last_reply: list[Publish] = field(default_factory=list)
    fw: str = ""
    board: str = ""
    alerts: tuple[str, ...] = ()
    uptime: int | None = None
    rssi: int | None = None
    last_seen: float = 0.0  # the last message from the device itself (0: none since start)
    births: int = 0
    errors: int = 0
    # Fleet health (hub/fleetwatch.py): when it went offline, and when it came back.
    offline_since: float | None = None
    reconnects: deque[float] = field(default_factory=lambda: deque(maxlen=64))

    def sequence(self, seq: int) -> Verdict:
        if seq == self.last_seq and self.last_reply:
            return "repeat"
        if seq <= self.last_seq:
            return "replayed"
        if self.last_seq and seq > self.last_seq + 1:
            return "gap"
        return "new"

    def note_status(self, msg: dict[str, Any], now: float, retained: bool = False) -> None:
        """A birth or a will. `last_seen` moves only for what the device itself sent now:
        not for a retained birth the broker hands over (sent whenever the device last
        connected, perhaps long before this hub started), nor for the `lost` will the
        broker publishes when it gave up on the device."""
        self._note_health(msg, now)
        self.state = msg["state"]
        if not retained and msg["state"] != "lost":
            self.last_seen = now
        if msg["state"] in ("booting", "ready"):
            self.births += 1
            self.fw = msg.get("fw", self.fw)
            self.board = msg.get("board", self.board)
            self.alerts = tuple(msg.get("alerts", ()))
            self.uptime = msg.get("uptime", self.uptime)
            self.rssi = msg.get("rssi", self.rssi)

    def _note_health(self, msg: dict[str, Any], now: float) -> None:
        """A reconnection is a birth after being offline, or one whose uptime went back
        (a reboot the broker had no time to report); not a rebirth or an alert update."""
        was_online = self.state in ("booting", "ready")
        if msg["state"] in ("booting", "ready"):
            rebooted = was_online and msg.get("uptime", 1 << 30) < (self.uptime or 0)
            if (self.state != "unknown" and not was_online) or rebooted:
                self.reconnects.append(now)
            self.offline_since = None
        elif was_online or self.offline_since is None:
            self.offline_since = now

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.spec.id, "role": self.spec.role, "window": self.spec.window,
            "board": self.board or self.spec.board, "state": self.state, "fw": self.fw,
            "alerts": list(self.alerts), "uptime": self.uptime, "rssi": self.rssi,
            "last_seen": self.last_seen, "last_seq": self.last_seq, "errors": self.errors,
        }


class Registry:
    def __init__(self, specs: list[DeviceSpec],
                 lookup: Callable[[str], DeviceSpec | None] | None = None,
                 listing: Callable[[], list[DeviceSpec]] | None = None) -> None:
        """`lookup`: reads one device from the fleet registry now (None: unknown or
        revoked), so a device provisioned while the hub runs is known without a restart.
        `listing`: reads every registered device at once (the hub's background refresh)."""
        self.devices: dict[str, Device] = {}
        self.lookup = lookup
        self.listing = listing
        # Set by the hub's runner, which reads the fleet registry itself, off its event
        # path: `wanted` ids before a batch, `listing` in the background. `resolve` then
        # reads memory only: a device event costs no SQL (a lookup on the path was
        # 0.15-0.5 ms on one event in 15 at ~300 calls/s, each device every 2 s).
        self.looked_up_elsewhere = False
        self._missed: dict[str, float] = {}  # unknown id -> when last looked up
        self._checked: dict[str, float] = {}  # known id -> when last looked up
        self._reads = 0  # reads of the fleet registry begun (`reading`)
        self._read: dict[str, int] = {}  # id -> the read its latest answer came from
        for spec in specs:
            if spec.id in self.devices:
                raise ValueError(f"device {spec.id!r} configured twice")
            self.devices[spec.id] = Device(spec)

    def get(self, dev: str) -> Device | None:
        return self.devices.get(dev)

    def resolve(self, dev: str, now: float, birth: bool = False) -> Device | None:
        """The device, looking its id up in the fleet registry at most every LOOKUP_EVERY s
        (and on every birth): an unknown one may have been provisioned, a known one revoked
        (dropped: a revocation holds within LOOKUP_EVERY, connected or not) or
        re-registered (it takes its new role and window). With `looked_up_elsewhere`, the
        map as the runner keeps it, and nothing read here."""
        if self.lookup is not None and not self.looked_up_elsewhere and (
                self.wanted(dev, now, birth) or self._stale(dev, now)):
            try:
                spec = self.lookup(dev)
            except Exception as e:  # the registry's database is away: keep what we know
                log.warning("device registry lookup of %s failed: %s", dev, e)
                return self.devices.get(dev)
            self.learn(dev, spec, now, self.reading())
        return self.devices.get(dev)

    def wanted(self, dev: str, now: float, birth: bool = False) -> bool:
        """Whether `dev`'s registration is to be read before its message is handled: an
        id not known (provisioned since; an id found unknown is asked again at most every
        LOOKUP_EVERY s), or, looked up here on the path, a birth."""
        if self.lookup is None:
            return False
        if dev in self.devices:
            return birth and not self.looked_up_elsewhere
        return now - self._missed.get(dev, -LOOKUP_EVERY) >= LOOKUP_EVERY

    def _stale(self, dev: str, now: float) -> bool:
        return dev in self.devices and (
            now - self._checked.get(dev, -LOOKUP_EVERY) >= LOOKUP_EVERY)

    def reading(self) -> int:
        """Number a read of the fleet registry as it begins (see `learn`)."""
        self._reads += 1
        return self._reads

    def learn(self, dev: str, spec: DeviceSpec | None, now: float, read: int) -> None:
        """What the fleet registry said of `dev` in read number `read` (`reading`): None
        drops it (unknown or revoked), a spec adds or updates it (a new role or window is
        a new device: its seq starts again). An answer from a read begun before the one
        already learned is older news and ignored (a background listing overtaken by a
        lookup)."""
        if read < self._read.get(dev, 0):
            return
        self._read[dev] = read
        if spec is None:
            self.devices.pop(dev, None)
            self._checked.pop(dev, None)
            self._missed[dev] = now
            if len(self._missed) > 10000:  # ids made up by a misbehaving client
                self._missed.clear()
                self._read = {d: n for d, n in self._read.items() if d in self.devices}
            return
        self._missed.pop(dev, None)
        self._checked[dev] = now
        known = self.devices.get(dev)
        if known is not None and known.spec == spec:
            return
        if known is not None and (known.spec.role, known.spec.window) == (spec.role,
                                                                          spec.window):
            known.spec = spec
            return
        self.devices[dev] = Device(spec)

    def refresh(self, specs: list[DeviceSpec], now: float, read: int) -> None:
        """Every registered device as `listing` read them (read number `read`): new ones
        are known before they say a word, changed ones updated, missing ones (revoked,
        removed) dropped."""
        listed = {s.id: s for s in specs}
        for dev in [d for d in self.devices if d not in listed]:
            self.learn(dev, None, now, read)
        for dev, spec in listed.items():
            self.learn(dev, spec, now, read)

    def export_seqs(self) -> dict[str, dict[str, Any]]:
        """Each device's last event seq and the reply it got, for a hub snapshot: a device
        retrying that seq after a restart must get the very same reply."""
        return {d.spec.id: {"last_seq": d.last_seq,
                            "last_reply": [[p.topic, base64.b64encode(p.payload).decode(),
                                            p.qos, p.retain] for p in d.last_reply]}
                for d in self.devices.values() if d.last_seq or d.last_reply}

    def restore_seqs(self, seqs: dict[str, dict[str, Any]]) -> None:
        """Load `export_seqs` output. A device no longer registered is left out, as a
        replay leaves out its records."""
        for dev_id, s in seqs.items():
            d = self.devices.get(dev_id)
            if d is not None:
                d.last_seq = int(s["last_seq"])
                d.last_reply = [Publish(t, base64.b64decode(b), int(q), bool(r))
                                for t, b, q, r in s["last_reply"]]

    def at_window(self, window: int) -> list[Device]:
        return [d for d in self.devices.values() if d.spec.window == window]

    def with_role(self, role: str) -> list[Device]:
        return [d for d in self.devices.values() if d.spec.role == role]
