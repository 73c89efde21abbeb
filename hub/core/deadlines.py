"""Deadlines that someone watches (issue 17): which promised cases are past their promised
day (overdue), due within a few working days (due soon), or approved and not collected
for some days (uncollected, 统一窗口出件), per department.

Pure, like the rest of the core: the caller gives today (the centre's local date) and the
clock; the centre's calendar (holidays, worked weekends 调休) counts the working days. The
dashboard's alerts, the /cases page's flags and `onewindow cases overdue` read these.

A case is the back office's to finish while it is `open` or `returned`: those can be
overdue or due soon. A `ready` case met its promise (the result waits at the pick-up
window); it is watched for being collected instead. Closed cases are done.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .day_calendar import DayCalendar
from .model import Case

DUE_SOON_WORKDAYS = 2  # "due soon": the promised day is today or within this many workdays
UNCOLLECTED_DAYS = 7  # "uncollected": ready this many days ago or more ([pickup])
PENDING = ("open", "returned")  # the back office's to finish


@dataclass(frozen=True, slots=True)
class Watch:
    """The thresholds: working days ahead that count as due soon; days since a result
    became ready (its local day) from which it is listed as uncollected: centre.toml's
    [pickup] uncollected_days, as the pick-up window's console lists them."""

    due_soon_workdays: int = DUE_SOON_WORKDAYS
    uncollected_days: int = UNCOLLECTED_DAYS

    @classmethod
    def of(cls, config: Any) -> Watch:
        """The centre's (its CentreConfig)."""
        return cls(uncollected_days=getattr(config, "pickup_uncollected_days",
                                            UNCOLLECTED_DAYS))


def flag(case: Case, today: dt.date, horizon: dt.date, calendar: DayCalendar,
         watch: Watch = Watch()) -> str | None:
    """"overdue", "due_soon", "uncollected" or None. `horizon`: the last day that counts
    as due soon (`soon_until`), worked out once for many cases."""
    if case.state in PENDING:
        due = dt.date.fromisoformat(case.due_day)
        if due < today:
            return "overdue"
        if due <= horizon:
            return "due_soon"
        return None
    if case.state == "ready" and case.ready_at is not None \
            and waited(calendar, case.ready_at, today) >= watch.uncollected_days:
        return "uncollected"
    return None


def waited(calendar: DayCalendar, ready_at: float, today: dt.date) -> int:
    """Days from the day a result became ready to today."""
    return (today - calendar.local_date(ready_at)).days


def soon_until(calendar: DayCalendar, today: dt.date, watch: Watch = Watch()) -> dt.date:
    """The last promised day that is "due soon" today: `due_soon_workdays` working days on."""
    return calendar.add_workdays(today, watch.due_soon_workdays)


def overdue_days(calendar: DayCalendar, due: dt.date, today: dt.date) -> int:
    """Working days past the promised day (0 on it): what the daily list says."""
    n, d = 0, due
    while d < today:
        d += dt.timedelta(days=1)
        if calendar.is_workday(d):
            n += 1
    return n


@dataclass(frozen=True, slots=True)
class Watched:
    """One flagged case, for the lists."""

    case: str
    item: str
    department: str
    due_day: str
    state: str
    flag: str
    days: int  # overdue: working days late; uncollected: days since ready; due soon: 0


def watched(cases: Iterable[Case], calendar: DayCalendar, now: float,
            watch: Watch = Watch()) -> list[Watched]:
    """Every flagged case, by department, then overdue first (the latest first), due
    soon, uncollected (the oldest first)."""
    today = calendar.local_date(now)
    horizon = soon_until(calendar, today, watch)
    out = []
    for k in cases:
        f = flag(k, today, horizon, calendar, watch)
        if f is None:
            continue
        if f == "overdue":
            days = overdue_days(calendar, dt.date.fromisoformat(k.due_day), today)
        elif f == "uncollected":
            days = waited(calendar, k.ready_at or now, today)
        else:
            days = 0
        out.append(Watched(k.id, k.item, k.department, k.due_day, k.state, f, days))
    order = {"overdue": 0, "due_soon": 1, "uncollected": 2}
    out.sort(key=lambda w: (w.department, order[w.flag], -w.days if w.flag != "due_soon"
                            else 0, w.due_day, w.case))
    return out


def counts(rows: Iterable[Watched]) -> dict[tuple[str, str], int]:
    """(department, flag) -> how many: the dashboard's alerts."""
    out: dict[tuple[str, str], int] = {}
    for w in rows:
        out[(w.department, w.flag)] = out.get((w.department, w.flag), 0) + 1
    return out
