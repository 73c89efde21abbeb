"""What a centre tells the city, as city records: plain dicts without personal data.

The exporter's replica (export.py) applies each journal record through the hub's own code
and calls `Mapper.after_apply` with what the core decided; the mapper turns that into city
records by whitelisting fields — ticket ids, item codes, windows, clerks' staff ids, times,
scores, counts. A resident appears only as `resident`, a keyed hash of the centre's own
card hash under the city's key (`resident_token`): the same resident gets the same token at
every centre, and nothing in it can be turned back into a card or ID number. No names, ID
numbers, phone numbers, notes or document contents ever cross.

A record: {"v": 1, "centre", "pos", "part", "kind", "day": "YYYY-MM-DD", "at": epoch s,
...kind's fields}; (centre, pos, part) is its identity (``Nats-Msg-Id``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Any

from ..core import effects as fx
from . import subjects as sj

VERSION = 1


def resident_token(key: bytes, resident: str | None) -> str | None:
    if not resident:
        return None
    return hmac.new(key, resident.encode(), hashlib.sha256).hexdigest()[:24]


def iso_day(day: str) -> str:
    """"YYYYMMDD" -> "YYYY-MM-DD"."""
    return f"{day[:4]}-{day[4:6]}-{day[6:8]}"


class Mapper:
    """Turns what the replica saw into city records for one journal position."""

    def __init__(self, centre: str, token_key: bytes) -> None:
        self.centre = sj.token(centre)
        self.key = token_key
        self.out: list[dict[str, Any]] = []
        self._pos = 0
        self._ts = 0.0

    def begin(self, pos: int, ts: float) -> None:
        self.out, self._pos, self._ts = [], pos, ts

    def _add(self, kind: str, day: str, **fields: Any) -> None:
        self.out.append({"v": VERSION, "centre": self.centre, "pos": self._pos,
                         "part": len(self.out), "kind": kind, "day": iso_day(day),
                         "at": fields.pop("at", self._ts), **fields})

    # ---- what the core decided ----------------------------------------------------------
    def effects(self, app: Any, effects: Sequence[fx.Effect], now: float) -> None:
        tickets = app.centre.tickets
        for e in effects:
            if isinstance(e, fx.TicketIssued) and not e.reprint:
                t = tickets.get(e.ticket)
                if t is not None:
                    self._add(sj.TICKET, t.day, at=t.issued_at, ev="issued", ticket=t.id,
                              item=t.item, priority=str(t.priority.value),
                              extra_items=len(t.extra_items),
                              booked=t.appointment_at is not None,
                              resident=resident_token(self.key, t.resident))
            elif isinstance(e, fx.TicketCalled):
                t = tickets.get(e.ticket)
                if t is not None:
                    calls = [h for h in t.history if h[1] == "called"]
                    first = len(calls) <= 1 and not e.recall
                    self._add(sj.TICKET, t.day, at=now, ev="called", ticket=t.id,
                              item=t.item, window=e.window, recall=e.recall,
                              wait_min=round(max(0.0, (now - t.issued_at) / 60.0), 2)
                              if first else None)
            elif isinstance(e, fx.TicketVoided):
                t = tickets.get(e.ticket)
                if t is not None:
                    self._add(sj.TICKET, t.day, at=now, ev="voided", ticket=t.id,
                              item=t.item, window=e.window)
            elif isinstance(e, fx.RatingGiven):
                day = e.ticket[:8] if e.ticket[:8].isdigit() else app.centre.day
                self._add(sj.RATING, day, at=now, ticket=e.ticket, score=e.score,
                          window=e.window, clerk=e.clerk)

    def services(self, day: str, rows: Iterable[dict[str, Any]]) -> None:
        for r in rows:
            self._add(sj.TICKET, r.get("day") or day, at=r["end"], ev="done",
                      ticket=r["ticket"], window=r["window"], clerk=r["clerk"],
                      items=r["items"], start=r["start"], end=r["end"])

    def case_events(self, day: str, rows: Iterable[dict[str, Any]]) -> None:
        for r in rows:
            self._add(sj.CASE, r.get("day") or day, at=r["at"], case=r["case"],
                      action=r["action"], item=r.get("item"),
                      department=r.get("department"), by=r.get("by"))

    def day_closed(self, facts: Any) -> None:
        """A day's close (hub/store/history.py DayFacts): its summary, ratings and bookings
        as counts; the one-trip count from its final ticket rows."""
        s = dict(facts.summary)
        rows = [r for r in facts.tickets if r["day"] == facts.day]
        served = [r for r in rows if r["state"] == "done"]
        s["one_trip"] = sum(1 for r in served if not r.get("returned"))
        s["returned"] = sum(1 for r in rows if r.get("returned"))
        scores = [int(r["score"]) for r in facts.ratings]
        s["ratings"] = len(scores)
        s["rating_sum"] = sum(scores)
        s["satisfied"] = sum(1 for x in scores if x >= 3)
        s["cases"] = len(facts.cases)
        s.pop("day", None)
        self._add(sj.DAY, facts.day, **s)
        for b in facts.bookings:
            b = dict(b)
            bday = str(b.pop("day"))
            self._add(sj.BOOKING, bday.replace("-", ""), **{
                k: v for k, v in b.items() if isinstance(v, int | float)})


def local_day(ts: float, utc_offset_minutes: int) -> str:
    tz = dt.timezone(dt.timedelta(minutes=utc_offset_minutes))
    return dt.datetime.fromtimestamp(ts, tz).strftime("%Y%m%d")
