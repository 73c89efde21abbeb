"""The rollout of one firmware version to a set of boards, as a pure state machine.

Waves: one canary first; only once it reports the new version healthy (its birth says
`fw` = the version and `ota` = "ok": it has been connected to a ready hub for its stable
period after the swap) are the others offered the bundle, `wave` at a time, each wave after
the previous one is healthy. Any refusal, rollback or timeout fails the rollout: no further
device is offered anything, and the ones still fetching are told to cancel.

No I/O and no clock: every call gets `now`, and returns the actions for the adapter
(hub/ota/mqtt.py) to carry out: ("offer", dev) or ("cancel", dev).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...protocol.ow_protocol import newer

PENDING, OFFERED, FETCHING, APPLYING, HEALTHY, FAILED, SKIPPED = (
    "pending", "offered", "fetching", "applying", "healthy", "failed", "skipped")
ACTIVE = (OFFERED, FETCHING, APPLYING)

Action = tuple[str, str]


@dataclass(slots=True)
class Target:
    dev: str
    state: str = PENDING
    reason: str = ""
    offered_at: float | None = None
    chunks: int = 0  # chunks requested so far
    birth: dict[str, Any] | None = None


@dataclass
class Rollout:
    version: str
    devices: list[str]  # in rollout order: the first eligible one is the canary
    boards: list[str] | None = None  # board files the bundle carries (None: any)
    downgrade: bool = False  # the bundle may take boards back to an older version
    wave: int = 5
    timeout: float = 300.0  # seconds from offer to healthy, per device
    status: str = "waiting"  # waiting | running | done | failed
    reason: str = ""
    waves: list[list[str]] = field(default_factory=list)
    current: int = -1
    log: list[tuple[float, str, str]] = field(default_factory=list)  # (now, dev, what)

    def __post_init__(self) -> None:
        if self.wave < 1:
            raise ValueError("wave must be at least 1")
        self.targets = {d: Target(d) for d in self.devices}

    # ---- what the adapter tells us ------------------------------------------------------
    def start(self, now: float) -> list[Action]:
        """Decide who takes part from the births seen so far, then offer the canary."""
        eligible = []
        for d in self.devices:
            t = self.targets[d]
            b = t.birth
            if b is None or b.get("state") not in ("booting", "ready"):
                self._set(t, SKIPPED, now, "offline (no ready birth)")
            elif self.boards is not None and _board(b.get("board")) not in self.boards:
                self._set(t, SKIPPED, now, f"board {b.get('board')!r} not in the bundle")
            elif b.get("fw") == self.version and b.get("ota") in (None, "ok"):
                self._set(t, HEALTHY, now, "already runs this version")
            elif (not self.downgrade and b.get("fw") and b["fw"] != self.version
                  and not newer(self.version, str(b["fw"]))):
                self._set(t, SKIPPED, now, f"runs {b['fw']}, not older than {self.version} "
                                           "(--allow-downgrade to go back)")
            else:
                eligible.append(d)
        if eligible:
            self.waves = [eligible[:1]] + [eligible[i:i + self.wave]
                                           for i in range(1, len(eligible), self.wave)]
        self.status = "running"
        return self._advance(now)

    def on_birth(self, dev: str, msg: dict[str, Any], now: float) -> list[Action]:
        t = self.targets.get(dev)
        if t is None:
            return []
        t.birth = msg
        if t.state not in ACTIVE or msg.get("state") != "ready":
            return []
        fw, ota = msg.get("fw"), msg.get("ota")
        if fw == self.version and ota == "ok":
            self._set(t, HEALTHY, now, "healthy")
            return self._advance(now)
        if fw == self.version and ota == "trial":
            if t.state != APPLYING:
                self._set(t, APPLYING, now, "on trial")
            return []
        if t.state == APPLYING and ota == "rollback":
            return self._fail(t, now, "rolled back to " + str(fw))
        return []

    def on_request(self, dev: str, msg: dict[str, Any], now: float) -> list[Action]:
        """An otareq from `dev` (already checked to carry this rollout's offer id)."""
        t = self.targets.get(dev)
        if t is None or t.state not in ACTIVE:
            return []
        typ = msg.get("type")
        if typ == "get":
            t.chunks = max(t.chunks, int(msg.get("i", 0)) + 1)
            if t.state == OFFERED:
                self._set(t, FETCHING, now, "fetching")
        elif typ == "done":
            self._set(t, APPLYING, now, "verified, rebooting into " + self.version)
        elif typ == "refused":
            why = str(msg.get("code", "?"))
            if msg.get("msg"):
                why += ": " + str(msg["msg"])
            return self._fail(t, now, "refused (" + why + ")")
        return []

    def tick(self, now: float) -> list[Action]:
        for t in self.targets.values():
            if t.state in ACTIVE and t.offered_at is not None \
                    and now - t.offered_at > self.timeout:
                return self._fail(t, now, f"not healthy within {self.timeout:g} s")
        return []

    def may_serve(self, dev: str) -> bool:
        """Answer this device's chunk requests?"""
        t = self.targets.get(dev)
        return self.status == "running" and t is not None and t.state in (OFFERED, FETCHING)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")

    # ---- inside ---------------------------------------------------------------------------
    def _set(self, t: Target, state: str, now: float, what: str) -> None:
        t.state = state
        t.reason = what
        self.log.append((now, t.dev, what))

    def _advance(self, now: float) -> list[Action]:
        if self.status != "running":
            return []
        if self.current >= 0 and any(self.targets[d].state != HEALTHY
                                     for d in self.waves[self.current]):
            return []
        self.current += 1
        if self.current >= len(self.waves):
            self.status = "done"
            return []
        acts = []
        for d in self.waves[self.current]:
            t = self.targets[d]
            t.offered_at = now
            b = t.birth or {}
            if b.get("fw") == self.version and b.get("ota") == "trial":
                # Swapped already (an earlier rollout was interrupted): wait for its verdict.
                self._set(t, APPLYING, now, "already on trial with " + self.version)
                continue
            self._set(t, OFFERED, now, f"offered {self.version} (wave {self.current + 1} "
                                       f"of {len(self.waves)})")
            acts.append(("offer", d))
        return acts

    def _fail(self, t: Target, now: float, why: str) -> list[Action]:
        self._set(t, FAILED, now, why)
        if self.status != "running":
            return []
        self.status = "failed"
        self.reason = f"{t.dev}: {why}"
        acts = []
        for o in self.targets.values():
            if o.state in (OFFERED, FETCHING):
                self._set(o, FAILED, now, "cancelled: rollout stopped")
                acts.append(("cancel", o.dev))
        return acts


def _board(name: Any) -> str:
    return str(name or "").replace("-", "_")
