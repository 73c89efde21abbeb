"""Retention: personal data kept no longer than docs/privacy.md says, and a purge that
removes what is past it, journaled as a record of its own.

What the purge touches (`[retention]` in centre.toml, defaults below):

* Resident tokens (keyed hashes of a card, `resident` in `take` and `card` records, and
  in `station_case` records: a community station's case, hub/core/stations.py): a
  `card` record's token is blanked once its day is `resident_days` old. A `take` record's
  token is removed once its day is that old *and* the same token appears in nothing newer:
  no take within the period, no open case, no case closed within the period. Why this
  rule: a token still in use (an open promised item, a recent visit) must stay, since the
  clerk's card lookup and the one-ticket-per-item rule read it; and a token removed is then
  removed everywhere, so a replay of the purged journal rebuilds exactly the state the
  rewritten snapshots hold (no case or ticket keeps a token its take record lost).
  Replay does not depend on removed tokens: they only refuse a second active ticket of the
  same resident, and the journal holds only commands that were accepted.
* The same token in bookings and check-ins (`book`, `cancel_booking`, `checkin`: a
  booking's day is its slot's), card pick-ups (`pickup`) and cases linked from another
  centre (`city_arrive`): under the same rule, and removed from them with the rest. Each
  is rewritten so that its replay needs no token (`TOKEN_OPS` below); a check-in by card
  names the booking it checked in instead (`_Bookings`).
* Residents' comments on ratings (`comment` in `rate` records, and a follow-up's copy in
  snapshots): blanked once the rating's day is `resident_days` old; the score stays.
* Phone numbers of remote tickets (`phone` in `remote_take` records, sealed; the contact
  beside the ticket in snapshots): removed once the ticket's day is `resident_days` old,
  with the take's resident token (a keyed hash of the number) under the rule above. They
  serve the ticket's notices only, which ended with its day. Likewise a booking's sealed
  number (`phone` in `book` records: its reminders), once the booking's day is that old,
  and the number given for a promised case's notices (`phone` in `case_contact` records),
  once the record's day is that old and the case is no longer in progress.
* Documents (hub/store/files.py): a ticket's photos and PDFs are deleted `materials_days`
  after its day, or, when the ticket became a promised item (case), that long after the
  case closed; never while the case is open.
* Closed cases leave the hub's memory at the day's close after their closing, for the
  history table `history_cases` (hub/store/history.py): the plan reads them there too (the
  core's memory wins for a case in both: reopened), so an archived case keeps its token
  and its documents for as long as one in memory would. A token removed is removed from
  that table and from the `restore` payloads of reopening records as well.

A purge is one transaction: the rewritten journal records (each marked `purged` with the
purge record's position), the rewritten snapshots, and the purge record (`op: purge`,
what was removed, counts, the cut-off dates). The documents are deleted after it commits;
a purge interrupted in between leaves documents the next purge deletes.

The purge writes the journal: it runs while the hub is stopped (the hub assigns journal
positions itself; see `onewindow purge`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from ..core.model import Case
from .journal import Journal, journal

OP = "purge"


class RetentionError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Retention:
    """`[retention]`: days personal data is kept (docs/privacy.md says why these)."""

    resident_days: int = 180  # resident tokens in past tickets and card look-ups
    materials_days: int = 30  # documents, after the ticket's day or its case's closing

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> Retention:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(table) - known)
        if unknown:
            raise RetentionError(f"[retention]: unknown key(s) {', '.join(unknown)}; known: "
                                 f"{', '.join(sorted(known))}")
        values = {}
        for key, value in table.items():
            if type(value) is not int or value < 1:
                raise RetentionError(f"[retention] {key} must be a whole number of days "
                                     f">= 1, not {value!r}")
            values[key] = value
        return cls(**values)


@dataclass(slots=True)
class Plan:
    """What a purge removes (the body of its journal record, minus the bookkeeping)."""

    residents_before: str  # ISO dates: records of earlier days are past retention
    materials_before: str
    take_records: int = 0  # take records whose token is removed (and station cases')
    booking_records: int = 0  # book, cancel_booking and check-in records likewise
    case_records: int = 0  # card pick-ups and linked cases (city_arrive) likewise
    card_records: int = 0  # card records whose token is blanked
    tokens: int = 0  # distinct tokens removed
    phones: int = 0  # sealed phone numbers removed (remote takes)
    comments: int = 0  # residents' rating comments blanked (free text: it may name them)
    snapshots: int = 0  # snapshots rewritten without them
    tickets_with_documents: int = 0
    documents: int = 0
    document_bytes: int = 0
    # Not in the record: what to do.
    rewrite: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)
    token_set: set[str] = field(default_factory=set, repr=False)
    phone_set: set[str] = field(default_factory=set, repr=False)
    comment_set: set[str] = field(default_factory=set, repr=False)
    doc_dirs: list[Path] = field(default_factory=list, repr=False)

    def record(self, retention: Retention) -> dict[str, Any]:
        body = {k: v for k, v in asdict(self).items()
                if k not in ("rewrite", "token_set", "phone_set", "comment_set",
                             "doc_dirs")}
        return {"op": OP, **body, "retention": asdict(retention)}

    def describe(self) -> str:
        return (f"resident tokens of days before {self.residents_before}: "
                f"{self.tokens} tokens in {self.take_records} tickets, "
                f"{self.booking_records} booking records, {self.case_records} pick-ups "
                f"and linked cases, and "
                f"{self.card_records} card look-ups, {self.phones} sealed phone numbers, "
                f"{self.comments} rating comments, "
                f"{self.snapshots} snapshots rewritten; "
                f"documents of days before {self.materials_before}: {self.documents} "
                f"({self.document_bytes / 1e6:.1f} MB) of {self.tickets_with_documents} "
                f"tickets")


def _closed_at(conn: Connection) -> dict[str, float]:
    """Each case's last closing time, for cases whose last action closed them."""
    out: dict[str, float] = {}
    rows = conn.execute(select(journal.c.ts, journal.c.body).where(journal.c.op == "case")
                        .order_by(journal.c.pos))
    for ts, body in rows:
        b = json.loads(body)
        if b.get("action") == "closed":
            out[b["case"]] = ts
        else:
            out.pop(b.get("case"), None)
    return out


# Records that hold a resident token (a card's keyed hash, or a phone's: "ph:..."), and
# must lose it when the token goes, each so that a replay reaches the same outcome without
# it: a take's is dropped (take, remote_take), a station case's, a booking's, a card
# pick-up's and a linked case's (city_arrive `fields`) set to null, a cancellation's
# dropped (it only checked the booking was the resident's), and a check-in by card names
# the booking it checked in instead (`_Bookings`). `card` look-ups are blanked by their
# own rule (their day), whatever the token's.
TOKEN_OPS = ("take", "remote_take", "station_case", "book", "cancel_booking", "checkin",
             "pickup", "city_arrive", "card")
BOOKING_OPS = ("book", "cancel_booking", "checkin")


def _token(op: str, b: dict[str, Any]) -> Any:
    if op == "city_arrive":
        fields = b.get("fields")
        return fields.get("resident") if isinstance(fields, dict) else None
    return b.get("resident")


class _Bookings:
    """Which booking each check-in by card checked in, read from the journal's booking
    records as the core decides it (hub/core/booking.py: codes B0001, B0002, ... in the
    order bookings were accepted, which is the journal's; a card checks in its booking of
    that day not cancelled nor checked in, the slot nearest the time, then the lower code),
    so the record can name its booking once the token is gone."""

    def __init__(self, tz: dt.tzinfo) -> None:
        self.tz = tz
        self.serial = 0
        self.books: dict[str, list[Any]] = {}  # code -> [resident, day, slot start, open]
        self.resolved: dict[int, str] = {}  # check-in record position -> booking code

    def apply(self, pos: int, ts: float, op: str, b: dict[str, Any]) -> None:
        if op == "book":
            self.serial += 1
            day, hhmm = [*str(b.get("slot", "")).rsplit("/", 2), "", ""][1:3]
            try:
                start = dt.datetime.strptime(day + hhmm, "%Y%m%d%H%M").replace(
                    tzinfo=self.tz).timestamp()
            except ValueError:
                start = float("nan")  # never matched: its check-ins stay unresolved
            self.books[f"B{self.serial:04d}"] = [b.get("resident"), day, start, True]
        elif op == "cancel_booking" or (op == "checkin" and b.get("booking")):
            if b.get("booking") in self.books:
                self.books[b["booking"]][3] = False
        elif op == "checkin" and b.get("resident"):
            today = dt.datetime.fromtimestamp(ts, self.tz).strftime("%Y%m%d")
            mine = [(abs(start - ts), code) for code, (r, day, start, open_) in
                    self.books.items() if open_ and r == b["resident"] and day == today]
            if mine:
                code = min(mine)[1]
                self.books[code][3] = False
                self.resolved[pos] = code

    def agrees(self, held: Iterable[Any]) -> bool:
        """The bookings the core holds are the ones read here (else no check-in is
        rewritten: a journal that does not start at the centre's first booking)."""
        return all(b.code in self.books and self.books[b.code][0] == b.resident
                   for b in held)


def plan(j: Journal, cases: Iterable[Any], files_dir: str | Path, retention: Retention,
         now: float, utc_offset_minutes: int = 480, state: Any = None) -> Plan:
    """What a purge at `now` removes. `cases`: the core's cases (Centre.cases.values()) of
    the hub's current state; `state`: that state (its tickets' and bookings' tokens are in
    use), when there is one."""
    tz = dt.timezone(dt.timedelta(minutes=utc_offset_minutes))
    today = dt.datetime.fromtimestamp(now, tz).date()
    res_day = today - dt.timedelta(days=retention.resident_days)
    mat_day = today - dt.timedelta(days=retention.materials_days)
    res_ts = dt.datetime.combine(res_day, dt.time(), tz).timestamp()
    cut = res_day.strftime("%Y%m%d")
    out = Plan(res_day.isoformat(), mat_day.isoformat())
    with j.engine.connect() as conn:
        cases = _with_archived(conn, list(cases))
        # When each closed case closed: its own `closed_at` (a hand-over, a case closed
        # at another centre and arrived, a plain close), else, for a case closed before
        # closing times were kept, its last `closed` record.
        closed = _closed_at(conn)
        closed.update({k.id: k.closed_at for k in cases
                       if k.state == "closed" and getattr(k, "closed_at", None) is not None})
        # Tokens still in use: a record of the period (a take, a booking of a day within
        # it, a check-in ...), open cases, cases closed within the period, the state's.
        keep: set[str] = set()
        for k in cases:
            if k.resident and (k.state != "closed" or closed.get(k.id, now) >= res_ts):
                keep.add(k.resident)
        if state is not None:
            keep.update(t.resident for t in state.tickets.values() if t.resident)
            keep.update(b.resident for b in state.bookings.values() if b.resident)
        books = _Bookings(tz)
        old: list[tuple[int, str, dict[str, Any]]] = []  # past the period, with a token
        for pos, ts, op, body in conn.execute(
                select(journal.c.pos, journal.c.ts, journal.c.op, journal.c.body)
                .where(journal.c.op.in_(TOKEN_OPS), journal.c.body.like('%"resident"%'))
                .order_by(journal.c.pos)):
            b = json.loads(body)
            if op in BOOKING_OPS:
                books.apply(pos, ts, op, b)
            token = _token(op, b)
            # A booking's day is its slot's (bookings open days ahead), others' their own.
            day = (str(b.get("slot", "")).rsplit("/", 2)[-2:-1] or [""])[0] if op == "book" \
                else dt.datetime.fromtimestamp(ts, tz).strftime("%Y%m%d")
            if op == "remote_take" and b.get("phone") and day < cut:
                # a remote take's sealed number: it served the day's notices
                out.phone_set.add(b.pop("phone"))
                out.rewrite[pos] = b
            if not isinstance(token, str) or not token:
                continue  # none, or blanked by an earlier purge
            if day >= cut:
                if op != "card":  # a look-up changes no state: it keeps nothing
                    keep.add(token)
            else:
                old.append((pos, op, b))
        if not books.agrees(state.bookings.values() if state is not None else ()):
            books.resolved.clear()
        for pos, op, b in old:  # a check-in that cannot name its booking keeps the token
            if op == "checkin" and not b.get("booking") and pos not in books.resolved:
                keep.add(b["resident"])
        for pos, op, b in old:
            token = _token(op, b)
            if op == "card":
                b["resident"] = ""  # a look-up changes no state: its token goes at once
                out.card_records += 1
            elif token in keep:
                continue
            elif op in ("take", "remote_take"):
                del b["resident"]
                out.take_records += 1
            elif op == "station_case":  # a field the command always has: None
                b["resident"] = None
                out.take_records += 1
            elif op == "book":
                b["resident"] = None
                out.booking_records += 1
            elif op == "cancel_booking":
                del b["resident"]
                out.booking_records += 1
            elif op == "checkin":
                b["booking"], b["resident"] = books.resolved[pos], None
                out.booking_records += 1
            elif op == "pickup":
                b["resident"] = None
                out.case_records += 1
            else:  # city_arrive: the case as another centre sent it
                b["fields"]["resident"] = None
                out.case_records += 1
            if op != "card":
                out.token_set.add(token)
            out.rewrite[pos] = b
        # A booking's sealed number (its reminders, hub/core/reminders.py): removed once
        # the booking's day (its slot's, not the day it was made) is past retention.
        for pos, body in conn.execute(select(journal.c.pos, journal.c.body).where(
                journal.c.op == "book", journal.c.body.like('%"phone"%'))):
            b = out.rewrite.get(pos) or json.loads(body)
            slot_day = str(b.get("slot", "")).rsplit("/", 2)[-2:-1]
            if b.get("phone") and slot_day and slot_day[0] < cut:
                out.phone_set.add(b.pop("phone"))
                out.rewrite[pos] = b
        # A case's contact (hub/core/pickup.py CaseContact: the number given for its
        # notices, sealed): it serves the case's notices, which end with the case, so it is
        # removed once the case is closed (or gone) and the record's day is past
        # retention; never while the case is in progress. Replay keeps the contact, with
        # no number (page notices only), as the rewritten snapshots hold it.
        in_progress = {k.id for k in cases if k.state != "closed"}
        for pos, body in conn.execute(select(journal.c.pos, journal.c.body).where(
                journal.c.op == "case_contact", journal.c.ts < res_ts,
                journal.c.body.like('%"phone"%'))):
            b = out.rewrite.get(pos) or json.loads(body)
            if b.get("phone") and b.get("case") not in in_progress:
                out.phone_set.add(b["phone"])
                b["phone"] = None
                out.rewrite[pos] = b
        # A resident's comment on a rating is free text (it may hold a name or a number):
        # blanked like a token once its day is past retention; the score stays.
        for pos, body in conn.execute(select(journal.c.pos, journal.c.body).where(
                journal.c.op == "rate", journal.c.ts < res_ts,
                journal.c.body.like('%"comment"%'))):
            b = out.rewrite.get(pos) or json.loads(body)
            if b.get("comment"):
                out.comment_set.add(b["comment"])
                b["comment"] = ""
                out.rewrite[pos] = b
                out.comments += 1
    out.tokens = len(out.token_set)
    out.phones = len(out.phone_set)
    _plan_documents(out, Path(files_dir), cases, closed, mat_day, tz)
    return out


def _with_archived(conn: Connection, held: list[Any]) -> list[Any]:
    """The core's cases and the archived ones (history_cases) not among them."""
    from .history import CASE_COLUMNS, case_from_row
    from .schema import history_cases as archived

    ids = {k.id for k in held}
    out = list(held)
    for row in conn.execute(select(*[archived.c[n] for n in CASE_COLUMNS])):
        if row.id not in ids:
            out.append(Case(**case_from_row(row)))  # the loop's fields as the core has them
    return out


def _plan_documents(out: Plan, root: Path, cases: list[Any], closed: dict[str, float],
                    before: dt.date, tz: dt.tzinfo) -> None:
    if not root.is_dir():
        return
    by_id = {k.id: k for k in cases}
    limit = before.strftime("%Y%m%d")
    for day_dir in sorted(root.iterdir()):
        if not (day_dir.is_dir() and day_dir.name.isdigit() and day_dir.name < limit):
            continue
        for ticket_dir in sorted(day_dir.iterdir()):
            case = by_id.get(ticket_dir.name)
            if case is not None:
                if case.state != "closed" or case.id not in closed:
                    continue  # the case is open: its materials are its evidence
                if dt.datetime.fromtimestamp(closed[case.id], tz).date() >= before:
                    continue
            docs = [p for p in ticket_dir.rglob("*") if p.is_file() and p.name != "index.jsonl"]
            out.tickets_with_documents += 1
            out.documents += len(docs)
            out.document_bytes += sum(p.stat().st_size for p in docs)
            out.doc_dirs.append(ticket_dir)


def _without(value: Any, tokens: set[str]) -> Any:
    """`value` with every string that is one of `tokens` replaced by None: a snapshot's
    state as a replay of the purged journal builds it (a ticket or case whose take record
    lost its token has resident None)."""
    if isinstance(value, str):
        return None if value in tokens else value
    if isinstance(value, list):
        return [_without(v, tokens) for v in value]
    if isinstance(value, dict):
        return {k: _without(v, tokens) for k, v in value.items()}
    return value


def _blank_comments(value: Any, comments: set[str]) -> Any:
    """`value` with every `comment` field that holds one of `comments` blanked to "", as a
    replay of the rewritten rate records builds it (a follow-up keeps its empty comment)."""
    if isinstance(value, list):
        return [_blank_comments(v, comments) for v in value]
    if isinstance(value, dict):
        return {k: "" if k == "comment" and v in comments else _blank_comments(v, comments)
                for k, v in value.items()}
    return value


def purge(j: Journal, p: Plan, retention: Retention, now: float) -> int:
    """Carry out plan `p`: one transaction for the journal (rewritten records and the purge
    record) and the snapshots, then the documents. The purge record's position."""
    from .schema import snapshot
    from .snapshot import decode, encode

    with j.engine.begin() as conn:
        last = conn.execute(select(journal.c.pos).order_by(journal.c.pos.desc())
                            .limit(1)).scalar()
        pos = int(last or 0) + 1
        if p.token_set:
            _forget_in_cases(conn, p, pos)
        for at, body in p.rewrite.items():
            body["purged"] = pos
            conn.execute(update(journal).where(journal.c.pos == at).values(
                body=json.dumps(body, ensure_ascii=False, separators=(",", ":"))))
        gone = p.token_set | p.phone_set
        if gone or p.comment_set:
            rows = conn.execute(select(snapshot.c.pos, snapshot.c.sha256, snapshot.c.codec,
                                       snapshot.c.data)).all()
            for row in rows:
                try:
                    state = decode(bytes(row.data), row.sha256, row.codec)
                except ValueError:
                    continue  # unusable anyway: start-up passes over it
                if not _mentions(state, gone | p.comment_set):
                    continue
                data, _ = encode(_blank_comments(_without(state, gone), p.comment_set))
                conn.execute(update(snapshot).where(snapshot.c.pos == row.pos).values(
                    data=data, sha256=hashlib.sha256(data).hexdigest()))
                p.snapshots += 1
        conn.execute(insert(journal).values(pos=pos, ts=now, dev=None, seq=None, op=OP,
                                            body=json.dumps(p.record(retention),
                                                            ensure_ascii=False,
                                                            separators=(",", ":"))))
    for d in p.doc_dirs:
        shutil.rmtree(d, ignore_errors=True)
        if d.parent.is_dir() and not any(d.parent.iterdir()):
            d.parent.rmdir()
    return pos


def _forget_in_cases(conn: Connection, p: Plan, pos: int) -> None:
    """The removed tokens out of archived cases, past days' tickets (0006: the one-trip
    rate's) and the reopening records that restored a case (their `restore` holds the
    case's resident), as a replay of the purged journal has it."""
    from .schema import history_cases as archived
    from .schema import history_tickets

    tokens = sorted(p.token_set)
    for i in range(0, len(tokens), 500):
        for table in (archived, history_tickets):
            conn.execute(update(table).where(table.c.resident.in_(tokens[i:i + 500]))
                         .values(resident=None))
    for at, body in conn.execute(select(journal.c.pos, journal.c.body).where(
            journal.c.op == "case", journal.c.body.like('%"restore"%'))):
        b = json.loads(body)
        restore = b.get("restore")
        if isinstance(restore, dict) and restore.get("resident") in p.token_set:
            restore["resident"] = None
            b["purged"] = pos
            conn.execute(update(journal).where(journal.c.pos == at).values(
                body=json.dumps(b, ensure_ascii=False, separators=(",", ":"))))


def _mentions(state: Any, tokens: set[str]) -> bool:
    text = json.dumps(state, ensure_ascii=False)
    return any(t in text for t in tokens)


__all__ = ["OP", "Plan", "Retention", "RetentionError", "compact", "plan", "purge"]


def compact(j: Journal) -> None:
    """Make the removed tokens unreadable on disk too: rewritten rows leave their old
    versions in free pages (SQLite) or dead tuples (PostgreSQL) until vacuumed."""
    if j.engine.dialect.name == "sqlite":
        with j.engine.connect() as conn:
            conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        with j.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # the past days' tables too: the purge set their tokens to null
            for table in ("journal", "snapshot", "history_tickets", "history_cases"):
                conn.exec_driver_sql(f"VACUUM FULL {table}")
