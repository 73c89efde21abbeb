"""`HubApp`: the hub's application layer as one object, MQTT messages in, journal records and
MQTT messages out, and the one boundary for per-message failures (`handle`).

Still free of I/O and clocks: `handle` gets a topic, a payload and the time, and returns a
`Step`: records the runner must make durable first, then messages it may publish. The
asyncio runner (hub/runner.py), the web side, the tests and the simulator all drive this
same object. Each method hands its job to the module that does it (hub/app/__init__.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from ...protocol import ow_protocol as proto
from ..core import commands as c
from ..core.model import Ticket
from ..devices import Device, Publish
from ..forecast.wait import Estimate
from ..store.journal import Record
from . import case_archive, outbound, records, replay, waits
from .inbound import handle_message, seq_of
from .state import AppState, Step

log = logging.getLogger("onewindow.hub")

INT64 = 2**63  # the journal's BIGINT columns (pos, seq)


class HubApp(AppState):
    # ---- messages from devices: the one failure boundary --------------------------------
    def handle(self, topic: str, payload: bytes, now: float, retained: bool = False) -> Step:
        """One message in, a Step out; never raises. `retained`: the broker replayed a stored
        message (a device's old birth) on our subscribe, rather than the device saying it now.

        The one boundary for per-message failures: whatever goes wrong with a single message
        (decoding, the core, building its record, rendering) is logged once, counted, answered
        with `err` `internal` where the device is addressable, and the message dropped with no
        record. Should it fail after the state began to change, `damaged` is set: the runner
        then rebuilds the state from the journal (`reload`), as a restart would."""
        self.mutating = False
        try:
            step = handle_message(self, topic, payload, now, retained)
            for rec in step.records:
                _check_storable(rec)
            return step
        except Exception:
            return self._failed(topic, payload)

    def _failed(self, topic: str, payload: bytes) -> Step:
        parsed = proto.parse_topic(topic) if isinstance(topic, str) else None
        dev_id = (parsed[2] or "") if parsed is not None else ""
        if self.mutating:
            self.damaged = True
        log.exception("message on %s from device %s failed inside the hub; dropped, no "
                      "record kept; %s", topic, dev_id or "?",
                      "state may have changed: rebuilding it from the journal"
                      if self.mutating else "state unchanged")
        self.fleet.note_failure(dev_id, "internal")
        device = self.registry.get(dev_id) if dev_id else None
        if device is not None:
            device.errors += 1
        try:
            return Step(publishes=[outbound.err(
                self, dev_id, "internal", "内部错误，此事件未处理 / internal error: this event "
                "was not processed; the hub logged it", seq=seq_of(payload))])
        except Exception:  # logged above; an unusable topic id cannot be answered
            return Step()

    # ---- operator actions (supervisor, CLI, web, simulator) -----------------------------
    def operate(self, cmd: c.Command, now: float) -> Step:
        """An operation that comes from staff software rather than a device. Raises Rejected."""
        return records.operate(self, cmd, now)

    # ---- the journal: start-up, snapshots, repair (replay.py) ---------------------------
    def replay(self, records: Iterable[Record], replies: Mapping[str, int] | None = None) -> int:
        return replay.replay(self, records, replies)

    def snapshot(self, case_columns: bool = False) -> dict[str, Any]:
        return replay.snapshot(self, case_columns)

    def restore(self, snap: dict[str, Any]) -> None:
        replay.restore(self, snap)

    def reload(self, records: Iterable[Record], snap: dict[str, Any] | None = None) -> int:
        return replay.reload(self, records, snap)

    # ---- state for devices and the broker (outbound.py) ---------------------------------
    def device_state(self, dev: Device, now: float) -> list[Publish]:
        return outbound.device_state(self, dev, now)

    def retained_state(self, now: float) -> list[Publish]:
        return outbound.retained_state(self, now)

    def rebirth_requests(self) -> list[Publish]:
        return outbound.rebirth_requests(self)

    def birth(self, now: float, state: str = "ready") -> Publish:
        return outbound.birth(self, now, state)

    def will(self) -> Publish:
        return outbound.will(self)

    # ---- what the pages read (waits.py, case_archive.py) --------------------------------
    def ticket_wait(self, t: Ticket, now: float, version: int | None = None) -> Estimate:
        return waits.ticket_wait(self, t, now, version)

    def item_wait(self, item: str, now: float) -> Estimate:
        return waits.item_wait(self, item, now)

    def archived_case(self, case_id: str) -> dict[str, Any] | None:
        return case_archive.archived_case(self, case_id)

    def archived_cases_of(self, resident: str) -> list[dict[str, Any]]:
        return case_archive.archived_cases_of(self, resident)


def _check_storable(rec: Record) -> None:
    """A record the journal would refuse must fail here, for this one message, and not in
    the batch's commit, where it would take every other message of the batch with it."""
    if not (0 < rec.pos < INT64 and (rec.seq is None or 0 <= rec.seq < INT64)):
        raise ValueError(f"record {rec.pos}: pos/seq {rec.seq} outside the journal's range")
    if (rec.dev is not None and len(rec.dev) > 64) or len(str(rec.body.get("op"))) > 32:
        raise ValueError(f"record {rec.pos}: dev or op too long for the journal")
    json.dumps(rec.body)  # TypeError: a value the journal cannot write
