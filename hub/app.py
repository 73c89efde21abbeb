"""The hub's application layer: MQTT messages in, journal records and MQTT messages out.

Still free of I/O and clocks: `handle` gets a topic, a payload and the time, and returns a
`Step`: records the runner must make durable first, then messages it may publish. The
asyncio runner (`runner.py`), the tests and the simulator all drive this same object.
"""

from __future__ import annotations

import base64
import json
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from ..protocol import ow_protocol as proto
from .core import commands as c
from .core import help_requests
from .core.centre import Centre
from .core.effects import (
    BlockReserved,
    CaseOpened,
    DayClosed,
    Effect,
    HelpRequested,
    QueueChanged,
    RatingGiven,
    TicketCalled,
    TicketIssued,
    TicketVoided,
    Unreachable,
    WindowChanged,
)
from .core.model import Ticket, TicketState, WindowState
from .core.rejected import Rejected
from .core.snapshot import centre_state, restore_centre
from .devices import Device, Publish, Registry
from .fleetwatch import FleetWatch
from .forecast.wait import (
    NO_WINDOW,
    Estimate,
    WaitPredictor,
    predictor_to_dict,
    restore_predictor,
)
from .render.bitmap import FontNotFoundError, text_bitmap_b64
from .render.escpos import render_offline_head, render_ticket
from .report.staff import ServiceWatch
from .store.history import CASE_COLUMNS, DayFacts, day_bounds, day_summary, ticket_rows
from .store.journal import Record

log = logging.getLogger("onewindow.hub")

HALL_CALLS = 8  # calls the hall board lists
PRINT_TTL = 30.0  # s: a ticket printed later than this would confuse the queue
SHOW_TTL = 60.0
OFFLINE_BLOCK = 10  # numbers per prefix a button box may issue while the hub is away
WINDOW_ROLES = ("keypad", "node", "led")
TICKET_ROLES = ("box", "kiosk", "node")
BOARD_MAX_PAYLOAD = 4096  # bytes: the largest MQTT message the boards' client accepts
LIVE_WAIT_STEP = 5.0  # s: pages share one wait simulation per journal position and step
BMP_HEIGHT = 16  # rows of the Chinese bitmap in `display`/`show`


def _encode(kind: str, msg: dict[str, Any]) -> bytes:
    return proto.encode(kind, msg)


@dataclass(slots=True)
class Step:
    records: list[Record] = field(default_factory=list)
    publishes: list[Publish] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Call:
    ticket: str
    window: int
    at: float


ARCHIVED_IN_CARD = 20  # a card look-up's newest archived (closed) cases


class CaseArchive(Protocol):
    """Where closed cases go when they leave the core (hub/store/history.py History)."""

    def case(self, case_id: str) -> dict[str, Any] | None: ...

    def cases_of(self, resident: str) -> list[dict[str, Any]]: ...

    def closed_cases(self, first: str, last: str, limit: int = 100, offset: int = 0
                     ) -> tuple[int, list[dict[str, Any]]]: ...


class HubApp:
    def __init__(self, centre: Centre, registry: Registry, boot: str,
                 status_url: str = "http://localhost:8080/t/") -> None:
        self.centre = centre
        self.registry = registry
        self.centre_id = centre.config.centre_id
        self.boot = boot  # distinguishes this process's command ids from earlier ones
        self.status_url = status_url
        self.pos = 0
        self.calls: deque[Call] = deque(maxlen=HALL_CALLS)
        # Journal position of each window's and the hall's last change: a board keeps the
        # highest `rev` it has seen, and a restarted hub republishes identical messages.
        self.window_rev: dict[int, int] = {}
        self.hall_rev = 0
        self.refused: deque[dict[str, Any]] = deque(maxlen=100)  # commands devices refused
        self.fleet = FleetWatch(self.centre_id)  # the device summary and fleet alerts
        self._resync_n = 0
        self._replaying = False
        self._quiet = False  # replaying a record whose reply is not kept: no messages
        self._mutating = False  # a message being handled has begun to change the state
        self.damaged = False  # ... and then failed: the runner rebuilds it from the journal
        self._font_warned = False
        # Per-ticket waits: learned from the journal's own history, seeded by its position,
        # so a replayed hub prints the same numbers.
        self.waits = WaitPredictor()
        self.issue_waits: dict[str, Estimate] = {}  # recent tickets: the wait they printed
        self.snapshot_pos = 0  # journal position of the latest stored snapshot (runner.py)
        # Past days leave memory at their close (hub/store/history.py): the closed days not
        # yet written, and the sink that writes them (the runner's build_app sets it).
        self.closed_days: list[DayFacts] = []
        # Today's services and case events, as the staff report reads them (report.staff).
        self.services: list[dict[str, Any]] = []
        self.case_events: list[dict[str, Any]] = []
        self.history_sink: Callable[[list[DayFacts]], None] | None = None
        # Closed cases archived in the history tables (History: `case`, `cases_of`; the
        # runner's build_app sets it): read to reopen one and for a resident's cases.
        self.case_archive: CaseArchive | None = None
        self._bounds: tuple[str, float, float] = ("", 0.0, 0.0)  # centre.day's [start, end)

    # ---- start-up ----------------------------------------------------------------------
    def replay(self, records: Iterable[Record], replies: Mapping[str, int] | None = None) -> int:
        """Rebuild state from the journal (after `restore`, from the snapshot's position on).

        Nothing is rendered but device replies: the last reply of each device is refilled so
        that a retry crossing a hub restart still gets its original answer. `replies`: each
        device's last journal position among `records` (`SnapshotStore.last_by_device`);
        only those records are rendered. None: every device record is (`reload`)."""
        n = 0
        self._replaying = True
        try:
            for rec in records:
                self.pos = rec.pos
                keep = rec.dev is not None and rec.seq is not None and (
                    replies is None or replies.get(rec.dev) == rec.pos)
                self._quiet = not keep
                publishes = self._apply_record(rec)
                if rec.dev is not None and rec.seq is not None:
                    dev = self.registry.get(rec.dev)
                    if dev is not None:
                        dev.last_seq = max(dev.last_seq, rec.seq)
                        if keep:
                            dev.last_reply = [p for p in publishes if _to_device(p, rec.dev)]
                n += 1
        finally:
            self._replaying = self._quiet = False
        return n

    def snapshot(self) -> dict[str, Any]:
        """All the state a replay up to `pos` rebuilds, as plain data (hub/store/snapshot.py
        stores it): the core, the app's own, the wait predictor's learned state and each
        device's last seq and reply."""
        return {
            "pos": self.pos,
            "centre": centre_state(self.centre),
            "app": {
                "calls": [[x.ticket, x.window, x.at] for x in self.calls],
                "window_rev": [[n, r] for n, r in self.window_rev.items()],
                "hall_rev": self.hall_rev,
                "services": [dict(r) for r in self.services],
                "case_events": [dict(r) for r in self.case_events],
                "closed_days": [asdict(f) for f in self.closed_days],  # not yet written
                "refused": list(self.refused),
                "issue_waits": {k: [e.median, e.mean, e.lo, e.hi, e.raw_lo, e.raw_hi]
                                for k, e in self.issue_waits.items()},
            },
            "waits": predictor_to_dict(self.waits),
            "devices": self.registry.export_seqs(),
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Load a `snapshot()` into this app, freshly made for the same centre (nothing
        replayed yet). Raises (KeyError, ValueError, TypeError) on a snapshot that does not
        fit; the caller then falls back to an older one or a full replay on a fresh app."""
        a = snap["app"]
        restore_centre(self.centre, snap["centre"])
        restore_predictor(self.waits, snap["waits"])
        self.pos = int(snap["pos"])
        self.calls = deque((Call(t, w, at) for t, w, at in a["calls"]), maxlen=HALL_CALLS)
        self.window_rev = {int(n): int(r) for n, r in a["window_rev"]}
        self.hall_rev = int(a["hall_rev"])
        # Snapshots older than the past days' tables have none of these.
        self.services = [dict(r) for r in a.get("services", [])]
        self.case_events = [dict(r) for r in a.get("case_events", [])]
        self.closed_days = [DayFacts(**f) for f in a.get("closed_days", [])]
        self.refused = deque(a["refused"], maxlen=self.refused.maxlen)
        self.issue_waits = {k: Estimate(*v) for k, v in a["issue_waits"].items()}
        self.registry.restore_seqs(snap["devices"])

    def _apply_record(self, rec: Record, live: c.Command | None = None) -> list[Publish]:
        """`live`: the command as `operate` was given it, where it says more than its record
        (a console's Help refused while one is open)."""
        body = rec.body
        if body["op"] == "scan":
            return [self._res(rec.dev, rec.seq, "scan", **self._result(rec))] if rec.dev else []
        if body["op"] == "rate" and self._replaying:
            try:
                effects = self._apply_core(c.from_record(body), rec.ts)
            except Rejected as e:
                # Only a journal written before ratings were tied to service holds a rating
                # the core refuses (a second one, another window's, a ticket never served):
                # it stays out of the ratings, and the replay goes on.
                log.info("journal %d: old rating of %s left out: %s", rec.pos,
                         body.get("ticket"), e.code)
                return [self._res(rec.dev, rec.seq, "rate")] if rec.dev else []
            return self._render(effects, rec)
        if body["op"] in help_requests.OPS:  # the core decides; the record's position names it
            cmd = (help_requests.numbered(live, rec.pos) if live is not None
                   else help_requests.from_record(body, rec.pos))
            effects = self._apply_core(cmd, rec.ts)
            return [self._res(rec.dev, rec.seq, "help") for e in effects
                    if isinstance(e, HelpRequested) and rec.dev]  # a bare res (3.3)
        if body["op"] == "card":
            return [self._res(rec.dev, rec.seq, "card", **self._resident_view(body["resident"]))]
        if body["op"] == "purge":  # an audit record (hub/store/retention.py): no state
            return []
        effects = self._apply_core(c.from_record(body), rec.ts)
        return self._render(effects, rec)

    def _apply_core(self, cmd: c.Command, now: float) -> list[Effect]:
        """The core's apply; when it closes a day, that day's tickets, ratings and answered
        help requests leave memory for the history tables (captured before: the core drops
        the day's tickets as it rolls over)."""
        day = self.centre.day
        if day and self._bounds[0] != day:
            self._bounds = (day, *day_bounds(day, self.centre.config.utc_offset_minutes))
        closing = bool(day) and not (self._bounds[1] <= now < self._bounds[2])
        held = ticket_rows(self.centre.tickets.values()) if closing else None
        before = ServiceWatch.before(self.centre, cmd)
        effects = self.centre.apply(cmd, now)
        closed = next((e for e in effects if isinstance(e, DayClosed)), None) \
            if held is not None else None
        if held is not None and closed is not None:
            self._close_history(day, held, closed)
        self._note_service(cmd, before, effects, now)
        return effects

    def _note_service(self, cmd: c.Command, before: Any, effects: list[Effect],
                      now: float) -> None:
        service, opened = ServiceWatch.after(self.centre, before, effects, now)
        today = self.centre.day
        if service is not None:
            self.services.append({
                "ticket": service.ticket, "day": today, "window": service.window,
                "clerk": service.clerk, "items": ",".join(service.items),
                "start": service.start, "end": service.end})
        for e in opened:
            self.case_events.append({"case": e.case, "at": now, "action": "accepted",
                                     "day": today, "item": e.item, "clerk": e.clerk})
        if isinstance(cmd, c.CaseUpdate):
            self.case_events.append({"case": cmd.case, "at": now, "action": cmd.action,
                                     "day": today, "item": None, "clerk": None})

    def _close_history(self, day: str, held: list[dict[str, Any]], closed: DayClosed) -> None:
        """The history tables' rows of what left the core with the day (`closed`)."""
        gone = [{"ticket": r.ticket, "day": r.ticket[:8], "score": r.score, "window": r.window,
                 "clerk": r.clerk, "at": r.at} for r in closed.ratings]
        helps = [{"pos": h.request, "day": self.centre.local_date(h.at).strftime("%Y%m%d"),
                  "window": h.window, "clerk": h.clerk, "at": h.at,
                  "answered_at": h.answered_at, "by": h.by} for h in closed.helps]
        self.closed_days.append(DayFacts(day, day_summary(day, held), held, gone, helps,
                                         self.services, self.case_events,
                                         [{**k.to_dict(), "day": day} for k in closed.archived]))
        self.services, self.case_events = [], []
        if self.history_sink is not None:
            self.history_sink(self.closed_days)

    # ---- archived cases ------------------------------------------------------------------
    def archived_case(self, case_id: str) -> dict[str, Any] | None:
        """A closed case that left the core: from the days not yet written, else by SQL."""
        for f in reversed(self.closed_days):
            for row in f.cases:
                if row["id"] == case_id:
                    return {n: row[n] for n in CASE_COLUMNS}
        return self.case_archive.case(case_id) if self.case_archive is not None else None

    def archived_cases_of(self, resident: str) -> list[dict[str, Any]]:
        """A resident's archived cases (those back in memory, reopened, left out)."""
        found: dict[str, dict[str, Any]] = {}
        if self.case_archive is not None:
            found = {r["id"]: r for r in self.case_archive.cases_of(resident)}
        for f in self.closed_days:
            found.update({r["id"]: {n: r[n] for n in CASE_COLUMNS}
                          for r in f.cases if r["resident"] == resident})
        return [r for r in found.values() if r["id"] not in self.centre.cases]

    def _with_restore(self, cmd: c.Command) -> c.Command:
        """A staff action on a case that is closed: reopening carries the case's fields
        (`restore`), so the core can take it back even when the day's close has archived
        it (also if that close happens with this very command) and a replay needs no SQL;
        any other action is refused here with a clear message, nothing changed."""
        if not isinstance(cmd, c.CaseUpdate) or cmd.restore is not None:
            return cmd
        case = self.centre.cases.get(cmd.case)
        if case is not None and case.state != "closed":
            return cmd
        data = case.to_dict() if case is not None else self.archived_case(cmd.case)
        if data is None:
            return cmd  # the core answers unknown_case
        if cmd.action != "reopened":
            where = "" if case is not None else "，已归档"
            where_en = "" if case is not None else " and archived"
            raise Rejected("bad_case_state",
                           f"承诺件{cmd.case}已办结{where}，只能重新打开 / case {cmd.case} "
                           f"is closed{where_en}: it can only be reopened, not {cmd.action}")
        return replace(cmd, restore=data)

    # ---- messages from devices -----------------------------------------------------------
    def handle(self, topic: str, payload: bytes, now: float, retained: bool = False) -> Step:
        """One message in, a Step out; never raises. `retained`: the broker replayed a stored
        message (a device's old birth) on our subscribe, rather than the device saying it now.

        The one boundary for per-message failures: whatever goes wrong with a single message
        (decoding, the core, building its record, rendering) is logged once, counted, answered
        with `err` `internal` where the device is addressable, and the message dropped with no
        record. Should it fail after the state began to change, `damaged` is set: the runner
        then rebuilds the state from the journal (`reload`), as a restart would."""
        self._mutating = False
        try:
            step = self._handle(topic, payload, now, retained)
            for rec in step.records:
                _check_storable(rec)
            return step
        except Exception:
            return self._failed(topic, payload)

    def _failed(self, topic: str, payload: bytes) -> Step:
        parsed = proto.parse_topic(topic) if isinstance(topic, str) else None
        dev_id = (parsed[2] or "") if parsed is not None else ""
        if self._mutating:
            self.damaged = True
        log.exception("message on %s from device %s failed inside the hub; dropped, no "
                      "record kept; %s", topic, dev_id or "?",
                      "state may have changed: rebuilding it from the journal"
                      if self._mutating else "state unchanged")
        self.fleet.note_failure(dev_id, "internal")
        device = self.registry.get(dev_id) if dev_id else None
        if device is not None:
            device.errors += 1
        try:
            return Step(publishes=[self._err_publish(
                dev_id, "internal", "内部错误，此事件未处理 / internal error: this event was "
                "not processed; the hub logged it", seq=_seq_of(payload))])
        except Exception:  # logged above; an unusable topic id cannot be answered
            return Step()

    def reload(self, records: Iterable[Record], snap: dict[str, Any] | None = None) -> int:
        """Rebuild the state from the journal after a failure left it possibly half-changed
        (`damaged`): a fresh app's state, replayed, as a restart would. What is not in the
        journal stays: the device registry (and each device's last seq and reply, since
        refusals use up seqs without a record), fleet health, refused commands, this boot.
        `snap`: a stored snapshot to start from (`records` are then those after it), so a
        failed message does not cost a replay of the whole history."""
        keep = {dev.spec.id: (dev.last_seq, dev.last_reply)
                for dev in self.registry.devices.values()}
        fresh = type(self)(Centre(self.centre.catalog, self.centre.config), self.registry,
                           self.boot, self.status_url)
        kept = ("registry", "fleet", "refused", "boot", "status_url", "_resync_n",
                "_font_warned", "history_sink", "closed_days", "snapshot_pos", "case_archive")
        for name, value in vars(fresh).items():
            if name not in kept:
                setattr(self, name, value)
        if snap is not None:
            self.restore(snap)
        n = self.replay(records)
        for dev in self.registry.devices.values():
            if dev.spec.id in keep:
                dev.last_seq, dev.last_reply = keep[dev.spec.id]
        self.damaged = False
        log.warning("state rebuilt from %d journal records after a failed message", n)
        return n

    def _handle(self, topic: str, payload: bytes, now: float, retained: bool) -> Step:
        parsed = proto.parse_topic(topic)
        if parsed is None or parsed[0] != self.centre_id or parsed[1] != "dev":
            log.warning("ignored message on foreign topic %s", topic)
            return Step()
        dev_id, leaf = parsed[2] or "", parsed[3]
        if leaf not in ("evt", "status", "ack"):
            return Step()  # our own cmd/res/err echoes
        if leaf == "status" and not payload:
            return Step()  # a technician clearing a retained birth (mosquitto_pub -r -n)
        try:
            msg = proto.decode(leaf, payload)
        except proto.ProtocolError as e:
            self.fleet.note_failure(dev_id, "protocol")
            return self._error(dev_id, e.code, e.msg, topic=topic, seq=_seq_of(payload))
        if msg.get("dev") != dev_id:
            return self._error(dev_id, "dev_mismatch",
                               f"message names device {msg.get('dev')!r} on {dev_id!r}'s topic",
                               seq=msg.get("seq"))
        birth = leaf == "status" and not retained and msg["state"] in ("booting", "ready")
        dev = self.registry.resolve(dev_id, now, birth)
        if dev is None:
            return self._error(dev_id, "unknown_device",
                               f"device {dev_id!r} is not registered at this hub (or was "
                               f"revoked); provision it", seq=msg.get("seq"))
        if leaf == "status":
            return self._status(dev, msg, now, retained)
        if leaf == "ack":
            if not msg["ok"] and msg.get("code") == "served_offline":
                # A late print for a press the box served offline: its offline ticket voids
                # this one when it arrives. Nothing for staff to reprint, so no alert.
                log.info("device %s refused print %s: press served offline", dev_id, msg["id"])
            elif not msg["ok"]:
                # The ticket stays journaled and valid; staff reprint it once the printer
                # is fixed. Kept for the console's alert list.
                log.warning("device %s refused command %s: %s", dev_id, msg["id"],
                            msg.get("code", "?"))
                self.refused.append({"dev": dev_id, "id": msg["id"], "code": msg.get("code"),
                                     "at": now})
            return Step()
        return self._event(dev, msg, now)

    def _event(self, dev: Device, msg: dict[str, Any], now: float) -> Step:
        seq = msg["seq"]
        verdict = dev.sequence(seq)
        if verdict == "repeat":
            log.info("device %s repeated seq %d: same reply again", dev.spec.id, seq)
            return Step(publishes=list(dev.last_reply))
        if verdict == "replayed":
            return self._error(dev.spec.id, "replayed",
                               f"seq {seq} was already processed; last was {dev.last_seq}",
                               seq=seq, last=dev.last_seq)
        try:
            body = self._to_command(dev, msg)
        except Rejected as e:
            return self._reject(dev, seq, e)
        rec = Record(self.pos + 1, now, dev.spec.id, seq, body)
        self._mutating = True  # from here a failure may leave the state half-changed
        try:
            publishes = self._apply_record(rec)
        except Rejected as e:
            return self._reject(dev, seq, e)
        step = Step([rec], publishes)
        if body.get("op") == "take" and body.get("number"):
            self.pos = rec.pos
            step = self._merge(step, self._top_up(dev.spec.id, now))
            publishes = step.publishes
        if verdict == "gap":
            log.info("device %s skipped from seq %d to %d: resync", dev.spec.id,
                     dev.last_seq, seq)
            publishes += self.device_state(dev, now)
        self.pos = max(self.pos, rec.pos)
        dev.last_seq = seq
        dev.last_reply = [p for p in publishes if _to_device(p, dev.spec.id)]
        return Step(step.records, publishes)

    def _reject(self, dev: Device, seq: int, e: Rejected) -> Step:
        step = self._error(dev.spec.id, e.code, e.message, seq=seq, **e.detail)
        dev.last_seq = seq
        dev.last_reply = list(step.publishes)
        return step

    def _to_command(self, dev: Device, msg: dict[str, Any]) -> dict[str, Any]:
        typ, role = msg["type"], dev.spec.role
        if typ in ("take", "reprint"):
            if role not in TICKET_ROLES:
                raise Rejected("not_allowed", f"a {role} cannot issue tickets")
            if typ == "reprint":
                return c.Reprint(msg["ticket"], source=dev.spec.id).to_record()
            return c.TakeTicket(
                msg["item"], priority=msg.get("priority", "normal"),
                resident=msg.get("resident"), appointment_at=msg.get("appointment_at"),
                extra_items=tuple(msg.get("items", ())), source=dev.spec.id,
                number=msg.get("number"), taken_at=msg.get("taken_at"),
                request=msg["seq"], supersedes=msg.get("for_seq"),
            ).to_record()
        window = self._window_of(dev, msg)
        if typ == "rate":  # the core decides (Centre._rate); the record names the ticket's id
            t = self.centre.find_ticket(msg["ticket"])
            rate = c.Rate(window, t.id if t is not None else msg["ticket"], msg["score"])
            # `clerk` keeps the record as readable as before (journal readers, old tools);
            # the core names the clerk itself and a replay ignores this one.
            return {**rate.to_record(), "clerk": self.centre.windows[window].clerk}
        if typ == "help":
            return {"op": "help", "window": window, "clerk": self.centre.windows[window].clerk}
        if typ == "scan":
            return self._scan(window, msg["ticket"])
        if typ == "card":
            return {"op": "card", "window": window, "resident": msg["resident"]}
        if typ == "transfer":
            return c.Transfer(window, msg.get("to_window"), msg.get("to_item"),
                              msg.get("note", "")).to_record()
        if typ == "skip":
            return c.Skip(window, msg.get("requeue")).to_record()
        if typ == "open":
            return c.OpenWindow(window, msg.get("clerk")).to_record()
        simple = {"close": c.CloseWindow, "call": c.CallNext, "recall": c.Recall, "start": c.Start,
                  "complete": c.Complete, "pause": c.Pause, "resume": c.Resume}
        return simple[typ](window).to_record()

    def _scan(self, window: int, ref: str) -> dict[str, Any]:
        """A ticket's QR code read at a window: start serving it if it was called here."""
        t = self.centre.find_ticket(ref.rstrip("/").rsplit("/", 1)[-1])
        if t is None:
            raise Rejected("unknown_ticket", f"不是今天的号 / {ref!r} is not a ticket of today")
        w = self.centre.windows[window]
        if w.ticket != t.id:
            raise Rejected("not_called_here", f"{t.number}未叫到{window}号窗口 / {t.number} is "
                                              f"not called to window {window} ({t.state.value})",
                           ticket=t.number)
        if w.state is WindowState.CALLING:
            return c.Start(window).to_record()
        return {"op": "scan", "window": window, "ticket": t.id}

    def _resident_view(self, resident: str) -> dict[str, Any]:
        tickets = [{"ticket": t.number, "id": t.id, "item": t.item, "state": t.state.value}
                   for t in self.centre.tickets.values() if t.resident == resident]
        cases = [{"id": k.id, "item": k.item, "due_day": k.due_day, "state": k.state}
                 for k in self.centre.cases.values() if k.resident == resident]
        # Closed ones archived by SQL (the resident index), oldest first, before those in
        # memory (opened later, or reopened); the newest few only, so that years of visits
        # keep the reply well inside the protocol's bounds (protocol/README.md, res.cases).
        old = [{"id": k["id"], "item": k["item"], "due_day": k["due_day"],
                "state": k["state"]}
               for k in self.archived_cases_of(resident)[-ARCHIVED_IN_CARD:]]
        return {"tickets": tickets, "cases": old + cases}

    def _window_of(self, dev: Device, msg: dict[str, Any]) -> int:
        if dev.spec.role not in WINDOW_ROLES or dev.spec.window is None:
            raise Rejected("not_allowed", f"device {dev.spec.id} is not at a window")
        asked = msg.get("window")
        if asked is not None and asked != dev.spec.window:
            raise Rejected("wrong_window", f"device {dev.spec.id} belongs to window "
                                           f"{dev.spec.window}, not {asked}")
        return dev.spec.window

    def _status(self, dev: Device, msg: dict[str, Any], now: float, retained: bool) -> Step:
        before, alerts = dev.state, dev.alerts
        dev.note_status(msg, now)
        if retained:
            # An old birth kept by the broker: its seq is from then. The rebirth request
            # sent on connect brings a fresh one, and that one is answered.
            return Step()
        if msg["state"] == "lost":
            log.warning("device %s lost (was %s)", dev.spec.id, before)
        if dev.alerts != alerts and dev.alerts:
            log.warning("device %s alerts: %s", dev.spec.id, ", ".join(dev.alerts))
        if "seq" in msg and msg["seq"] < dev.last_seq:
            # A device that forgot its sequence (reflashed) learns where to continue.
            behind = self._err_publish(dev.spec.id, "seq_behind",
                                       f"continue numbering after {dev.last_seq}",
                                       last=dev.last_seq)
            return Step(publishes=[behind, *self.device_state(dev, now)])
        if msg["state"] == "ready":
            step = Step(publishes=self.device_state(dev, now))
            self._mutating = True  # a box's blocks are reserved in the core
            if dev.spec.role == "box":
                step = self._merge(step, self._top_up(dev.spec.id, now, always=True))
            return step
        return Step()

    def _top_up(self, dev: str, now: float, always: bool = False) -> Step:
        """Keep a button box's offline blocks full: on its birth and after it used some."""
        prefixes = tuple(sorted({line.prefix for line in self.centre.catalog.lines.values()}))
        step = self.operate(c.ReserveBlock(dev, prefixes, OFFLINE_BLOCK), now)
        if always and not any(p.topic == self._dev_topic(dev, "cmd") for p in step.publishes):
            # Nothing new reserved: restate the blocks anyway (a rebooted box needs them, and
            # the hub's clock in `ts`).
            self._resync_n += 1
            step.publishes.append(self._block_cmd(dev, f"{self.boot}.b{self._resync_n}", now))
        return step

    def _block_cmd(self, dev: str, cmd_id: str, now: float) -> Publish:
        """`ts`: the hub's clock, for boxes without an RTC to stamp offline `taken_at`;
        `head`: the ESC/POS top of an offline ticket (the box adds number, time, cut)."""
        name = self.centre.catalog.name
        head = base64.b64encode(render_offline_head(name.zh, name.en)).decode("ascii")
        cmd = {"id": cmd_id, "ttl": SHOW_TTL, "type": "block",
               "blocks": self.centre.offline_blocks(dev), "ts": now, "head": head}
        return Publish(self._dev_topic(dev, "cmd"), _encode("cmd", cmd))

    @staticmethod
    def _merge(a: Step, b: Step) -> Step:
        return Step(a.records + b.records, a.publishes + b.publishes)

    # ---- operator actions (supervisor, CLI, simulator) -------------------------------------
    def operate(self, cmd: c.Command, now: float) -> Step:
        """An operation that comes from staff software rather than a device. Raises Rejected."""
        cmd = self._with_restore(cmd)
        rec = Record(self.pos + 1, now, None, None, cmd.to_record())
        publishes = self._apply_record(rec, cmd)
        self.pos = rec.pos
        return Step([rec], publishes)

    # ---- state for devices -----------------------------------------------------------------
    def device_state(self, dev: Device, now: float) -> list[Publish]:
        """Everything a device must show, as absolute state: sent on birth, gap and restart."""
        out: list[Publish] = []
        if dev.spec.window is not None and dev.spec.window in self.centre.windows:
            self._resync_n += 1
            show = self._display_msg(dev.spec.window)
            show.update(id=f"{self.boot}.s{self._resync_n}", ttl=SHOW_TTL, type="show")
            out.append(Publish(self._dev_topic(dev.spec.id, "cmd"), _encode("cmd", show)))
        if dev.spec.role == "hall":
            out.append(self._hall_publish(now))
        return out

    def retained_state(self, now: float) -> list[Publish]:
        """All retained topics, republished whenever the hub (re)connects to a broker: a
        broker that lost its retained store must not leave any board wrong."""
        out = [self._display_publish(n) for n in sorted(self.centre.windows)]
        out.append(self._hall_publish(now))
        out.append(self.birth(now))
        return out

    def rebirth_requests(self) -> list[Publish]:
        """Sparkplug's rebirth: on every hub (re)start ask each device to publish its birth
        again, so each gets its full state from the hub that now holds the truth."""
        self._resync_n += 1
        out = []
        for dev in self.registry.devices:
            cmd = {"id": f"{self.boot}.r{self._resync_n}", "ttl": SHOW_TTL, "type": "rebirth"}
            out.append(Publish(self._dev_topic(dev, "cmd"), _encode("cmd", cmd)))
        return out

    def birth(self, now: float, state: str = "ready") -> Publish:
        msg = {"state": state, "boot": self.boot, "ts": now}
        return Publish(proto.hub_topic(self.centre_id), _encode("hub", msg), retain=True)

    def will(self) -> Publish:
        return Publish(proto.hub_topic(self.centre_id), _encode("hub", {"state": "lost"}),
                       retain=True)

    # ---- rendering effects -------------------------------------------------------------------
    def _render(self, effects: list[Effect], rec: Record) -> list[Publish]:
        out: list[Publish] = []
        windows: set[int] = set()
        hall = False
        k = 0
        # Quiet (a replayed record whose reply nobody will ask for): the state changes
        # alone, no message is built (tickets, bitmaps and JSON were most of replay's time).
        loud = not self._quiet
        self.waits.update(self.centre, rec.ts, rec.body.get("op"))
        for e in effects:
            if isinstance(e, TicketIssued):
                t = self.centre.tickets[e.ticket]
                est = self._issue_wait(t, rec)
                if not e.reprint:
                    self.waits.issued(t, est)
                self.issue_waits[t.id] = est
                while len(self.issue_waits) > 1000:
                    self.issue_waits.pop(next(iter(self.issue_waits)))
                if next(iter(self.issue_waits)) not in self.centre.tickets:  # a past day's
                    self.issue_waits = {k: v for k, v in self.issue_waits.items()
                                        if k in self.centre.tickets}
                if rec.dev is not None and loud:
                    out.append(self._res(rec.dev, rec.seq, rec.body["op"] if e.reprint
                                         else "take", ticket=t.number, ahead=e.ahead,
                                         **_wait_fields(est)))
                source = self.registry.get(e.source) if e.source else None
                offline = rec.body.get("number") is not None  # the box printed it itself
                if source is not None and source.spec.role in ("box", "kiosk") and not offline:
                    if loud:
                        out.append(self._print(source.spec.id, t.id, e, est, rec, k))
                    k += 1
            elif isinstance(e, TicketCalled):
                t = self.centre.tickets[e.ticket]
                self.calls.appendleft(Call(t.number, e.window, rec.ts))
                windows.add(e.window)
                hall = True
            elif isinstance(e, TicketVoided):
                # Replaced by the offline ticket of the same press: nobody holds it, so it
                # leaves the hall's calls (its window, if any, comes as WindowChanged).
                number = self.centre.tickets[e.ticket].number
                kept = [x for x in self.calls if x.ticket != number]
                if len(kept) != len(self.calls):
                    self.calls = deque(kept, maxlen=HALL_CALLS)
                    hall = True
                if not self._replaying:
                    log.info("ticket %s voided: replaced by offline %s", number,
                             self.centre.tickets[e.by].number)
            elif isinstance(e, WindowChanged):
                windows.add(e.window)
            elif isinstance(e, Unreachable) and not self._replaying:
                log.warning("tickets no open window can serve: %s", ", ".join(e.tickets))
            elif isinstance(e, DayClosed) and not self._replaying:
                log.info("day %s closed; %d tickets expired", e.day, len(e.expired))
            elif isinstance(e, BlockReserved):
                if loud:
                    out.append(self._block_cmd(e.device, f"{rec.pos}.{k}", rec.ts))
                k += 1
            elif isinstance(e, RatingGiven):
                if rec.dev is not None and loud:
                    out.append(self._res(rec.dev, rec.seq, "rate"))  # a bare res (3.3)
            elif isinstance(e, CaseOpened | QueueChanged):
                pass
        if rec.dev is not None and loud and not any(_is_res(p) for p in out):
            out.append(self._res(rec.dev, rec.seq, rec.body["op"], **self._result(rec)))
        for n in windows:
            self.window_rev[n] = rec.pos
        if hall:
            self.hall_rev = rec.pos
        if not self._replaying:  # a replay keeps replies to devices only (`replay`)
            out += [self._display_publish(n) for n in sorted(windows)]
            if hall:
                out.append(self._hall_publish(rec.ts))
        return out

    def ticket_wait(self, t: Ticket, now: float, version: int | None = None) -> Estimate:
        """A waiting ticket's predicted wait (0 once called) at journal position `version`
        (default: the latest)."""
        if t.state is not TicketState.WAITING:
            return Estimate(0.0, 0.0, 0.0, 0.0)
        if version is None:  # a page asking live: one simulation per state and 5 s
            version, now = self.pos, now - now % LIVE_WAIT_STEP
        return self.waits.predict(self.centre, t, now, version)

    def _issue_wait(self, t: Ticket, rec: Record) -> Estimate:
        """The wait a take or reprint answers with. Computed once, then kept in the record's
        body (`est`: median, low, high, and the simulated 10th/90th percentiles; [] for no
        window) before it is journaled, so a replay neither reruns the simulation nor can
        print anything else."""
        saved = rec.body.get("est")
        if isinstance(saved, list):
            if len(saved) == 5:
                med, lo, hi, raw_lo, raw_hi = (float(x) for x in saved)
                return Estimate(med, med, lo, hi, raw_lo, raw_hi)
            return NO_WINDOW
        est = self.ticket_wait(t, rec.ts, rec.pos)
        if t.state is TicketState.WAITING:
            rec.body["est"] = ([est.median, est.lo, est.hi, est.raw_lo, est.raw_hi]
                               if est.reachable else [])
        return est

    def item_wait(self, item: str, now: float) -> Estimate:
        """The wait of a resident taking a ticket for `item` now (the hall's forecast)."""
        return self.waits.probe(self.centre, item, now - now % LIVE_WAIT_STEP, self.pos)

    def _result(self, rec: Record) -> dict[str, Any]:
        window = rec.body.get("window")
        w = self.centre.windows.get(window) if isinstance(window, int) else None
        if w is None:
            return {}
        t = self.centre.tickets.get(w.ticket) if w.ticket else None
        return {"window": w.number, "state": w.state.value,
                **({"ticket": t.number} if t else {})}

    def _print(self, dev: str, ticket_id: str, e: TicketIssued, est: Estimate, rec: Record,
               k: int) -> Publish:
        t = self.centre.tickets[ticket_id]
        item = self.centre.catalog.items[t.item]
        when = self.centre.local_time(rec.ts).strftime("%Y-%m-%d %H:%M")
        name = self.centre.catalog.name
        minutes = est.minutes()
        if minutes is None:
            wait = "暂无开放窗口，请咨询工作人员 / no window open for this yet: ask staff"
        else:
            point, lo, hi = minutes
            wait = (f"预计等候约{point}分钟（{lo}–{hi}分钟） / "
                    f"about {point} min ({lo}-{hi})")
        lines = [name.zh, t.number, item.name.zh, item.name.en,
                 f"前面还有{e.ahead}人 / {e.ahead} ahead", wait, when]
        qr = self.status_url + t.id
        escpos = render_ticket({
            "centre_zh": name.zh, "centre_en": name.en, "number": t.number,
            "item_zh": item.name.zh, "item_en": item.name.en, "ahead": e.ahead,
            "wait_min": None if minutes is None else minutes[0],
            "wait_range": None if minutes is None else minutes[1:],
            "issued_at": when, "qr": qr})
        cmd: dict[str, Any] = {
            "id": f"{rec.pos}.{k}", "ttl": PRINT_TTL, "type": "print", "ticket": t.number,
            "lines": lines, "qr": qr, "escpos": base64.b64encode(escpos).decode("ascii")}
        if rec.dev == dev and rec.seq is not None:
            # The event it answers: a device that printed an offline ticket for that event
            # meanwhile refuses this one (one press, one ticket).
            cmd["seq"] = rec.seq
        # escpos over the contract's bound (proto.LONG) could not reach a board either
        too_long = len(cmd["escpos"]) > proto.LONG
        payload = b"" if too_long else _encode("cmd", cmd)
        if too_long or len(payload) > BOARD_MAX_PAYLOAD:  # a catalog text far longer than any
            log.warning("print %s: over the boards' limit of %d bytes; sent without escpos",
                        t.number, BOARD_MAX_PAYLOAD)
            del cmd["escpos"]
            payload = _encode("cmd", cmd)
        return Publish(self._dev_topic(dev, "cmd"), payload)

    def _display_msg(self, number: int) -> dict[str, Any]:
        w = self.centre.windows[number]
        msg: dict[str, Any] = {"window": number, "rev": self.window_rev.get(number, 0),
                               "state": w.state.value}
        t = self.centre.tickets.get(w.ticket) if w.ticket else None
        if t is not None:
            msg["ticket"] = t.number
            msg["text"] = f"请{t.number}号到{number}号窗口 / {t.number} to window {number}"
        elif w.state is WindowState.PAUSED:
            msg["text"] = "暂停服务 / Paused"
        elif w.state is WindowState.CLOSED:
            msg["text"] = "暂停受理 / Closed"
        if "text" in msg:
            bmp = self._bmp(msg["text"].split(" / ")[0])
            if bmp is not None:
                msg["bmp"] = bmp
        return msg

    def _bmp(self, zh: str) -> dict[str, Any] | None:
        """The Chinese half of a display text as a MONO_HLSB bitmap for the boards, which
        carry no CJK font. Cached by text: displays are republished far more often than
        they change. None (and a warning, once) when the hub has no CJK font."""
        try:
            w, h, b = text_bitmap_b64(zh, BMP_HEIGHT)
        except FontNotFoundError as e:
            if not self._font_warned:
                log.warning("displays go out without bitmaps: %s", e)
                self._font_warned = True
            return None
        return {"w": w, "h": h, "b": b}

    def _display_publish(self, number: int) -> Publish:
        return Publish(proto.display_topic(self.centre_id, number),
                       _encode("display", self._display_msg(number)), retain=True)

    def _hall_publish(self, now: float) -> Publish:
        calls = [{"ticket": x.ticket, "window": x.window, "ts": x.at} for x in self.calls]
        return Publish(proto.hall_topic(self.centre_id),
                       _encode("hall", {"rev": self.hall_rev, "calls": calls}), retain=True)

    def _dev_topic(self, dev: str, leaf: str) -> str:
        return proto.device_topic(self.centre_id, dev, leaf)

    def _res(self, dev: str | None, seq: int | None, typ: str, **fields: Any) -> Publish:
        msg = {"seq": seq, "ok": True, "type": typ, **fields}
        return Publish(self._dev_topic(dev or "", "res"), _encode("res", msg))

    def _err_publish(self, dev: str, code: str, msg: str, **fields: Any) -> Publish:
        body = {"code": code, "msg": msg,
                **{k: v for k, v in fields.items() if v is not None and k in _ERR_FIELDS}}
        return Publish(self._dev_topic(dev, "err"), _encode("err", body))

    def _error(self, dev: str, code: str, msg: str, topic: str | None = None,
               **fields: Any) -> Step:
        """Log once (with the topic when it says more than the device), count, answer."""
        if topic is None:
            log.warning("device %s: %s: %s", dev or "?", code, msg)
        else:
            log.warning("device %s on %s: %s: %s", dev or "?", topic, code, msg)
        device = self.registry.get(dev)
        if device is not None:
            device.errors += 1
        try:
            return Step(publishes=[self._err_publish(dev, code, msg, **fields)])
        except proto.ProtocolError:
            return Step()  # the topic's device id is itself unusable: log only


_ERR_FIELDS = ("seq", "id", "last", "ticket")


INT64 = 2**63  # the journal's BIGINT columns (pos, seq)


def _check_storable(rec: Record) -> None:
    """A record the journal would refuse must fail here, for this one message, and not in
    the batch's commit, where it would take every other message of the batch with it."""
    if not (0 < rec.pos < INT64 and (rec.seq is None or 0 <= rec.seq < INT64)):
        raise ValueError(f"record {rec.pos}: pos/seq {rec.seq} outside the journal's range")
    if (rec.dev is not None and len(rec.dev) > 64) or len(str(rec.body.get("op"))) > 32:
        raise ValueError(f"record {rec.pos}: dev or op too long for the journal")
    json.dumps(rec.body)  # TypeError: a value the journal cannot write


def _seq_of(payload: bytes) -> int | None:
    """The seq of a message we refuse, when it can be read at all and is within the
    contract's bounds: so the device knows which of its events the error answers."""
    try:
        seq = proto.parse(payload).get("seq")
    except (proto.ProtocolError, AttributeError, TypeError):
        return None
    return seq if type(seq) is int and 0 <= seq < proto.MAX_INT else None


def _wait_fields(est: Estimate) -> dict[str, int]:
    """`wait` (-1: no open window) and, when there is one, the 80% interval."""
    minutes = est.minutes()
    if minutes is None:
        return {"wait": -1}
    point, lo, hi = minutes
    return {"wait": point, "wait_lo": lo, "wait_hi": hi}


def _to_device(p: Publish, dev: str) -> bool:
    return f"/dev/{dev}/" in p.topic


def _is_res(p: Publish) -> bool:
    return p.topic.endswith("/res")
