"""The monthly report's pre-review section (预审 / 一次办成): residents the kiosk sent away
to fetch a missing material before a ticket (wasted waits avoided), tickets taken with
materials missing, tickets returned at the window for materials, the one-trip rate and the
repeat visits for the same item within N days (by resident token): hub/store/trips.py says
how each is counted.

Two paths, like the rest of the report: the past days' tables (`from_tables`, by SQL), or
the journal's replay (`TripLog`, fed by `staff.collect`), which must agree.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Engine

from ..core.centre import Centre
from ..core.effects import DayClosed, Effect
from ..core.model import Ticket
from ..store import trips
from ..store.history import ticket_rows


def _days(start: float, end: float, utc_offset_minutes: int) -> tuple[str, str]:
    tz = dt.timezone(dt.timedelta(minutes=utc_offset_minutes))
    return (dt.datetime.fromtimestamp(start, tz).strftime("%Y%m%d"),
            dt.datetime.fromtimestamp(end - 1, tz).strftime("%Y%m%d"))


def from_tables(engine: Engine, start: float, end: float, utc_offset_minutes: int,
                within: int = trips.WITHIN_DAYS) -> dict[str, Any]:
    first, last = _days(start, end, utc_offset_minutes)
    return trips.prereview_summary(engine, first, last, within)


class TripLog:
    """What a replay shows of the period's days: the tickets as each day closes (what the
    history tables get then) and the day's kiosk turn-aways, from the period's first day
    less `within` days (the look-back) on."""

    def __init__(self, start: float, end: float, utc_offset_minutes: int,
                 within: int = trips.WITHIN_DAYS) -> None:
        self.first, self.last = _days(start, end, utc_offset_minutes)
        self.within = within
        self.lo = trips._shift(self.first, -within)
        self.rows: dict[str, dict[str, Any]] = {}  # by ticket id: the latest close's
        self.left = [0, 0]

    def see(self, before: Mapping[str, Ticket], effects: list[Effect]) -> None:
        """`before`: the core's tickets before the command (the core replaces the dict
        when a day closes, so this one still holds the closed day's)."""
        for e in effects:
            if isinstance(e, DayClosed) and self.lo <= e.day <= self.last:
                # every ticket held, as the app's day close writes them (a service across
                # midnight is written again, as it ended, at the next close)
                self._keep(ticket_rows(before.values()))
                if e.day >= self.first:
                    self.left = [self.left[0] + e.kiosk_left[0],
                                 self.left[1] + e.kiosk_left[1]]

    def _keep(self, rows: list[dict[str, Any]]) -> None:
        self.rows.update((r["id"], r) for r in rows if self.lo <= r["day"] <= self.last)

    def stats(self, centre: Centre) -> dict[str, Any]:
        """The period's figures; the core's current day counts when it is in the period
        and still open (its close lies past the replay's end)."""
        left = list(self.left)
        self._keep(ticket_rows(centre.tickets.values()))
        rows = list(self.rows.values())
        if centre.day and self.first <= centre.day <= self.last:
            left = [left[0] + centre.kiosk_left[0], left[1] + centre.kiosk_left[1]]
        inside = [r for r in rows if r["day"] >= self.first]
        out = trips.trip_stats([r for r in rows if r.get("resident")], self.first,
                               self.within)
        out.update(tickets=len(inside),
                   reviewed=sum(r["review"] is not None for r in inside),
                   queued_anyway=sum(r["review"] == "queued_anyway" for r in inside),
                   returned=sum(bool(r["returned"]) for r in inside),
                   kiosk_left=left[0], kiosk_left_tips=left[1])
        return out


def trips_section(stats: Mapping[str, Any] | None) -> list[str]:
    """The HTML section (zh-CN with English)."""
    if not stats:
        return []
    rate = stats.get("one_trip_rate")
    n = stats["within_days"]
    rows = [
        ("自助机预审后未取号 Sent away at the kiosk before a ticket (wasted waits avoided)",
         f"{stats['kiosk_left']} (其中打印提示单 tips printed {stats['kiosk_left_tips']})"),
        ("经预审取号 Tickets taken after a kiosk pre-review", stats["reviewed"]),
        ("缺材料仍取号 Queued anyway with materials missing", stats["queued_anyway"]),
        ("窗口退回补材料 Returned at the window for materials", stats["returned"]),
        (f"一次办成率 One-trip rate (no return for materials in the {n} days before)",
         "–" if rate is None else
         f"{rate:.1%} ({stats['one_trip']}/{stats['served_with_token']})"),
        (f"{n}日内同一事项再次到访 Repeat visits for the same item within {n} days",
         f"{stats['repeat_visits']} / {stats['with_token']}"),
    ]
    out = ["<h2>预审与一次办成 <small>Pre-review and one trip</small></h2><table>"]
    out += [f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
            for k, v in rows]
    out.append("</table><p class='explain'>一次办成率与再次到访按居民标识（刷卡、预约、"
               "手机取号的脱敏标识）计算，无标识的号不计入。 The one-trip rate and the repeat "
               f"visits follow resident tokens (card, booking, phone; keyed hashes): of the "
               f"month's {stats['tickets']} tickets, {stats['with_token']} carry one.</p>")
    return out
