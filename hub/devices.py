"""The device registry and each device's event sequence, as the hub sees them.

Pure like the core: the hub feeds it decoded messages and the time. Sequence rules follow
Sparkplug: each device numbers its events; the hub processes a number once, answers a
repeat of the last number with the very same reply (so a QoS 1 redelivery or a device retry
never issues two tickets), refuses older numbers, and treats a jump as lost state to resync.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["new", "repeat", "replayed", "gap"]


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
    last_seen: float = 0.0
    births: int = 0
    errors: int = 0

    def sequence(self, seq: int) -> Verdict:
        if seq == self.last_seq and self.last_reply:
            return "repeat"
        if seq <= self.last_seq:
            return "replayed"
        if self.last_seq and seq > self.last_seq + 1:
            return "gap"
        return "new"

    def note_status(self, msg: dict[str, Any], now: float) -> None:
        self.state = msg["state"]
        self.last_seen = now
        if msg["state"] in ("booting", "ready"):
            self.births += 1
            self.fw = msg.get("fw", self.fw)
            self.board = msg.get("board", self.board)
            self.alerts = tuple(msg.get("alerts", ()))
            self.uptime = msg.get("uptime", self.uptime)
            self.rssi = msg.get("rssi", self.rssi)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.spec.id, "role": self.spec.role, "window": self.spec.window,
            "board": self.board or self.spec.board, "state": self.state, "fw": self.fw,
            "alerts": list(self.alerts), "uptime": self.uptime, "rssi": self.rssi,
            "last_seen": self.last_seen, "last_seq": self.last_seq, "errors": self.errors,
        }


class Registry:
    def __init__(self, specs: list[DeviceSpec]) -> None:
        self.devices: dict[str, Device] = {}
        for spec in specs:
            if spec.id in self.devices:
                raise ValueError(f"device {spec.id!r} configured twice")
            self.devices[spec.id] = Device(spec)

    def get(self, dev: str) -> Device | None:
        return self.devices.get(dev)

    def at_window(self, window: int) -> list[Device]:
        return [d for d in self.devices.values() if d.spec.window == window]

    def with_role(self, role: str) -> list[Device]:
        return [d for d in self.devices.values() if d.spec.role == role]
