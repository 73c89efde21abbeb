"""The five-dimension staff report: pure computations from journal records.

The journal does not say which ticket a `call` picked: the dispatch core decided that. So
the records are replayed through the very `Centre` the hub runs (same catalog, same window
configuration) and the facts are read off the core's state around each record:

* a **service** — a ticket that became `done` at a window (by `complete`, or by `call`,
  the keypad's one "next" key): its clerk (the window's clerk at that moment), its items
  (the ticket's item plus its extra items), when service started (`start`, or the call
  when there was none) and ended;
* a **case** — a promised item (承诺件) the core opened on completion, owned by the clerk
  who accepted it; `case` records (`CaseUpdate`) returned / corrected / reopened count
  against that clerk whenever they happen, even for a case accepted in an earlier month;
* a **rating** — a `rate` record (`Rate`: `{window, ticket, score, scale}`, on the five
  levels of the national 好差评 scale, 5 非常满意 .. 1 非常不满意; records without `scale`
  are three-level and the core maps them: 1 -> 5, 2 -> 3, 3 -> 1) the core accepts:
  one per served ticket, from the window that served it, in time; credited to the clerk
  the core names. Ratings in journals written before that check that the core refuses (a
  second one, another window's ticket, a ticket never served) are left out and counted
  in `ignored_ratings`.

The five dimensions per clerk (`compute`):

1. quantity — items handled: the items of the clerk's completed services;
2. efficiency — Σ standard minutes ÷ Σ actual minutes (start → complete) of those
   services, > 1 is quicker than standard; services shorter than `short_share` of their
   standard (a resident told what is missing, 一次性告知) are left out and counted apart;
3. value-weighted workload — Σ item difficulty weights (the catalog's `weight`, or
   `[report.item_weights]`), so taking the hard items pays;
4. service rating — the state's 满意率: share of the clerk's ratings that are 非常满意,
   满意 or 基本满意 (scores 5, 4, 3 unless configured otherwise); the ratings are also
   counted by level (`levels`, centre `rated_5` .. `rated_1`), and the follow-ups low ones
   opened (差评整改: `followups_opened`, `followups_closed` in the period, `followups_open`
   at its end; per clerk `followups`);
5. closed-loop quality — 1 − defective cases ÷ promised cases the clerk accepted in the
   period: the clerk's cases (accepted in any month) that the back office returned for
   correction (补正: materials the window should have asked for), corrected or reopened
   in the period, each case once however many times (floor 0). A reassignment to another
   department (the catalog's routing) and a resubmission are not the clerk's defects; the
   events themselves are counted too (`returned`, `corrected`, `reopened`), and the centre
   counts approvals (ready for pick-up), hand-overs and reassignments.

Each dimension becomes a 0–100 score: quantity, value and efficiency relative to the
centre's best clerk (best = 100), rating and quality absolute (share × 100); a clerk with
no ratings or no promised cases gets the centre's share for that dimension. The
composite is the weighted mean of the five scores with the configured weights.

Why one module of 555 lines: it is the definition above, made code: the facts (`ServiceWatch`,
`collect`, `facts_from_history`) are what the five dimensions are computed from (`compute`,
`_score`), and a change to what counts as a service or a defect must be read with the formula
that counts it. hub/app/day_close.py keeps the same facts live through `ServiceWatch` from here.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core import booking as bk
from ..core import commands as c
from ..core.catalog import Catalog
from ..core.centre import Centre
from ..core.centre_config import CentreConfig
from ..core.effects import CaseOpened, RatingGiven, TicketIssued
from ..core.followups import FollowupClosed, FollowupOpened
from ..core.model import TicketState
from ..core.ratings import LEVELS, SATISFIED
from ..core.rejected import Rejected
from ..store.journal import Record
from .helps import HELP_OPS, HelpFact, HelpLog, HelpRow, from_history, help_table
from .pauses import PauseFact, PauseWatch
from .pauses import by_clerk as pauses_by_clerk
from .pauses import from_rows as pauses_from_rows
from .trips import TripLog

DIMENSIONS = ("quantity", "efficiency", "value", "rating", "quality")
LABELS = {
    "quantity": ("办件量", "Quantity"),
    "efficiency": ("办件效率", "Efficiency"),
    "value": ("价值加权工作量", "Value-weighted workload"),
    "rating": ("服务评价", "Service rating"),
    "quality": ("闭环质量", "Closed-loop quality"),
}


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """`[report]` in centre.toml (every key optional)."""

    weights: dict[str, float] = field(default_factory=lambda: dict.fromkeys(DIMENSIONS, 1.0))
    item_weights: dict[str, float] = field(default_factory=dict)  # item id -> difficulty
    satisfied: tuple[int, ...] = SATISFIED  # rating levels that count as satisfied (满意率)
    short_share: float = 0.25  # services shorter than this x standard: not in efficiency
    per_day: bool = False  # score quantity and value per day worked (part-timers)
    training_threshold: int = 500  # items a year that make an item a training priority
    open_days_per_year: int = 250

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReportSettings:
        w = dict.fromkeys(DIMENSIONS, 1.0)
        for k, v in (d.get("weights") or {}).items():
            if k not in DIMENSIONS:
                raise ValueError(f"[report.weights] {k!r}: one of {', '.join(DIMENSIONS)}")
            w[k] = float(v)
        if any(v < 0 for v in w.values()) or not sum(w.values()):
            raise ValueError("[report.weights] must be >= 0 and not all 0")
        return cls(
            weights=w,
            item_weights={str(k): float(v) for k, v in (d.get("item_weights") or {}).items()},
            satisfied=tuple(int(x) for x in d.get("satisfied", SATISFIED)),
            short_share=float(d.get("short_share", 0.25)),
            per_day=bool(d.get("per_day", False)),
            training_threshold=int(d.get("training_threshold", 500)),
            open_days_per_year=int(d.get("open_days_per_year", 250)),
        )


# ---- facts from the journal ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Service:
    ticket: str
    day: str  # local ISO date
    window: int
    clerk: str
    items: tuple[str, ...]
    start: float
    end: float

    @property
    def minutes(self) -> float:
        return max(0.0, self.end - self.start) / 60.0


@dataclass(frozen=True, slots=True)
class CaseEvent:
    case: str
    item: str
    clerk: str
    action: str  # "accepted" or a CaseUpdate action
    ts: float


@dataclass(frozen=True, slots=True)
class Rating:
    ticket: str
    clerk: str
    score: int
    ts: float


@dataclass(slots=True)
class Facts:
    start: float
    end: float
    services: list[Service] = field(default_factory=list)
    cases: list[CaseEvent] = field(default_factory=list)
    ratings: list[Rating] = field(default_factory=list)
    taken: Counter[str] = field(default_factory=Counter)  # items residents asked for
    open_days: set[str] = field(default_factory=set)
    records: int = 0
    rejected: int = 0  # records the replay refused (should be 0)
    ignored_ratings: int = 0  # old journals' ratings not tied to a service
    # follow-ups of low ratings (差评整改): (ticket, clerk) opened / closed in the period,
    # and how many were open at its end
    followups_opened: list[tuple[str, str]] = field(default_factory=list)
    followups_closed: list[tuple[str, str]] = field(default_factory=list)
    followups_open: int | None = None
    # bookings (预约) per local day ("2026-11-23") of the period: booked, cancelled,
    # checked_in, late, no_show as the core counted them (hub/core/booking.py COUNTS).
    # None: not known.
    bookings: dict[str, dict[str, int]] | None = field(default_factory=dict)
    # help calls asked in the period and answered (窗口吹哨 科室报到: hub/report/helps.py)
    helps: list[HelpFact] = field(default_factory=list)
    # pre-review and one trip (预审 / 一次办成: hub/report/trips.py); None: not known
    trips: dict[str, Any] | None = None
    # breaks at the windows, by reason (hub/report/pauses.py): those ending in the period
    pauses: list[PauseFact] = field(default_factory=list)


def clerk_name(clerk: str | None, window: int) -> str:
    return clerk or f"window-{window}"


def month_span(month: str, utc_offset_minutes: int = 480) -> tuple[float, float]:
    """[start, end) epoch seconds of a month ("2026-10") in the centre's local time."""
    y, m = (int(x) for x in month.split("-"))
    tz = dt.timezone(dt.timedelta(minutes=utc_offset_minutes))
    start = dt.datetime(y, m, 1, tzinfo=tz)
    end = dt.datetime(y + m // 12, m % 12 + 1, 1, tzinfo=tz)
    return start.timestamp(), end.timestamp()


class ServiceWatch:
    """Which service a command completed and which promised case it opened, read off the
    core around the command (the journal does not say which ticket a call picked). The one
    definition of a service: `collect` replays with it, and the hub (HubApp) keeps the same
    facts live for the past days' tables (hub/store/history.py)."""

    @staticmethod
    def before(centre: Centre, cmd: c.Command) -> tuple[Any, TicketState, int, str] | None:
        """The ticket at the command's window and its state, before the command."""
        if isinstance(cmd, c.WindowCommand):
            w = centre.windows.get(cmd.window)
            if w is not None and w.ticket is not None:
                t = centre.tickets.get(w.ticket)
                if t is not None:
                    return (t, t.state, w.number, clerk_name(w.clerk, w.number))
        return None

    @staticmethod
    def after(centre: Centre, before: tuple[Any, TicketState, int, str] | None,
              effects: Iterable[Any], ts: float) -> tuple[Service | None, list[CaseEvent]]:
        """The service the command completed (if any) and the cases it opened."""
        if before is None:
            return None, []
        t, state, n, clerk = before
        if state is TicketState.DONE or t.state is not TicketState.DONE:
            return None, []
        opened = [CaseEvent(e.case, t.item, clerk, "accepted", ts)
                  for e in effects if isinstance(e, CaseOpened)]
        return Service(t.id, centre.local_date(ts).isoformat(), n, clerk,
                       _items(t.item, t.extra_items), _service_start(t.history, n), ts), opened


def collect(records: Iterable[Record], catalog: Catalog, config: CentreConfig,
            start: float, end: float) -> Facts:
    """Replay the journal (from its beginning: case owners and the carried-over state need
    it) and keep the facts of [start, end)."""
    centre = Centre(catalog, config)
    facts = Facts(start, end)
    owner: dict[str, tuple[str, str]] = {}  # case id -> (clerk, item)
    help_log = HelpLog()  # help calls: their records say who and when (report/helps.py)
    trip_log = TripLog(start, end, config.utc_offset_minutes)  # pre-review (report/trips.py)
    for rec in records:
        ts, body = rec.ts, rec.body
        if ts >= end:
            # The first record after the period sweeps the bookings whose check-in window
            # ended before it (the core counts a no-show then): the last day's no-shows,
            # as the close of that day at this record counts them for the history tables.
            if bk.sweep_due(centre, ts):
                bk.sweep(centre, ts)
            break
        facts.records += 1
        op = body.get("op")
        inside = ts >= start
        if op in HELP_OPS:
            help_log.see(rec)
            continue
        cls = c.BY_OP.get(str(op))
        if cls is None:
            continue  # scan, card ...: nothing the report counts
        cmd = c.from_record(body)
        before = ServiceWatch.before(centre, cmd)
        paused = PauseWatch.before(centre, cmd)
        held = centre.tickets  # replaced, not emptied, when a day closes
        try:
            effects = centre.apply(cmd, ts)
        except Rejected:
            if isinstance(cmd, c.Rate):
                facts.ignored_ratings += 1
            else:
                facts.rejected += 1
            continue
        if inside:
            facts.ratings.extend(Rating(e.ticket, clerk_name(e.clerk, e.window), e.score, ts)
                                 for e in effects if isinstance(e, RatingGiven))
            for fx in effects:
                if isinstance(fx, FollowupOpened | FollowupClosed):
                    into = (facts.followups_opened if isinstance(fx, FollowupOpened)
                            else facts.followups_closed)
                    into.append((fx.ticket, clerk_name(fx.clerk, fx.window)))
        if inside:  # every ticket issued: taken, a booking's check-in, a remote take
            for fx in effects:
                t = centre.tickets.get(fx.ticket) if isinstance(fx, TicketIssued) \
                    and not fx.reprint else None
                if t is not None:
                    facts.taken.update(_items(t.item, t.extra_items))
                    facts.open_days.add(centre.local_date(ts).isoformat())
        trip_log.see(held, effects)
        pause = PauseWatch.after(centre, paused, ts)
        if pause is not None and inside:
            facts.pauses.append(pause)
        service, opened = ServiceWatch.after(centre, before, effects, ts)
        for e in opened:
            owner[e.case] = (e.clerk, e.item)
        if inside:
            facts.cases.extend(opened)
            if service is not None:
                facts.services.append(service)
        if isinstance(cmd, c.CaseUpdate) and inside:
            who, item = owner.get(cmd.case, ("unknown", ""))
            facts.cases.append(CaseEvent(cmd.case, item, who, cmd.action, ts))
    facts.followups_open = sum(1 for f in centre.followups.values() if f.open)
    facts.bookings = booking_days(centre, start, end)
    facts.helps = help_log.facts(start, end)
    facts.trips = trip_log.stats(centre)
    return facts


def booking_days(centre: Centre, start: float, end: float) -> dict[str, dict[str, int]]:
    """The core's booking counts per day of [start, end) (a booking counts on its slot's
    day; a no-show once the core swept it, at the first record past its check-in window;
    `collect` sweeps at the first record after the period)."""
    first = centre.local_date(start).strftime("%Y%m%d")
    last = centre.local_date(end - 1).strftime("%Y%m%d")
    return {_iso(day): bk.counts_of(centre, day) for day in sorted(centre.booking_counts)
            if first <= day <= last}


def facts_from_history(rows: dict[str, Sequence[Any]], start: float, end: float,
                       utc_offset_minutes: int) -> Facts:
    """The same facts `collect` reads off a replay, from the past days' tables
    (History.report_rows of the days around [start, end), local time `utc_offset_minutes`
    east of UTC: which days' booking counts are the period's)."""
    facts = Facts(start, end)
    tz = dt.timezone(dt.timedelta(minutes=utc_offset_minutes))
    first, last = (dt.datetime.fromtimestamp(x, tz).strftime("%Y%m%d") for x in (start, end - 1))
    for ticket, action, at, window, clerk in rows["followups"]:
        if start <= at < end:  # by when it happened, as the replay's effects
            into = facts.followups_opened if action == "opened" else facts.followups_closed
            into.append((ticket, clerk_name(clerk, window)))
    facts.followups_open = sum(1 for opened, closed in rows["followups_open"]
                               if opened < end and (closed is None or closed >= end))
    facts.bookings = {_iso(day): dict(zip(bk.COUNTS, (int(n) for n in counts), strict=True))
                      for day, *counts in rows["bookings"] if first <= day <= last}
    for r in rows["services"]:
        if start <= r.end < end:
            facts.services.append(Service(
                r.ticket, _iso(r.day), r.window,
                r.clerk, tuple(r.items.split(",")) if r.items else (), r.start, r.end))
    for ticket, clerk, window, score, at in rows["ratings"]:
        if start <= at < end:  # by when it was given, as in the journal
            facts.ratings.append(Rating(ticket, clerk_name(clerk, window), score, at))
    for case, action, at, item, clerk in rows["cases"]:
        if start <= at < end:
            facts.cases.append(CaseEvent(case, item or "", clerk or "unknown", action, at))
    facts.helps = from_history(rows.get("helps", ()), start, end)
    facts.pauses = pauses_from_rows(rows.get("pauses", ()), start, end)
    for day, item, extra, issued_at in rows["tickets"]:
        if start <= issued_at < end:
            facts.taken.update(_items(item, extra.split(",") if extra else ()))
            facts.open_days.add(_iso(day))
    return facts


def _iso(day: str) -> str:
    """"20261123" -> "2026-11-23"."""
    return f"{day[:4]}-{day[4:6]}-{day[6:]}"


def _items(item: str, extra: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((item, *extra)))


def _service_start(history: list[tuple[float, str, int | None]], window: int) -> float:
    """When this window's service began: its last `serving` mark, else its last call."""
    called = None
    for ts, state, w in reversed(history):
        if w != window:
            continue
        if state == "serving":
            return ts
        if state == "called":
            called = ts
            break
    return called if called is not None else history[-1][0]


# ---- the report ---------------------------------------------------------------------------
@dataclass(slots=True)
class ClerkRow:
    clerk: str
    windows: tuple[int, ...]
    days: int
    services: int
    quantity: int  # items handled
    standard_minutes: float  # of the services counted for efficiency
    actual_minutes: float
    short_services: int
    efficiency: float | None
    value: float
    mean_weight: float | None
    ratings: int
    satisfied: int
    rating_share: float | None
    cases: int  # promised cases accepted in the period
    returned: int
    corrected: int
    reopened: int
    quality: float | None
    scores: dict[str, float] = field(default_factory=dict)
    composite: float = 0.0
    rank: int = 0
    daily: dict[str, int] = field(default_factory=dict)  # day -> items
    levels: dict[int, int] = field(default_factory=dict)  # rating level (5..1) -> ratings
    followups: int = 0  # follow-ups (差评整改) the clerk's low ratings opened
    defective_cases: int = 0  # distinct cases with a returned/corrected/reopened event

    @property
    def defects(self) -> int:
        return self.returned + self.corrected + self.reopened


@dataclass(frozen=True, slots=True)
class ItemRow:
    item: str
    name_zh: str
    name_en: str
    line: str
    kind: str
    minutes: float
    weight: float
    handled: int
    taken: int
    annual: float  # handled, annualised
    training: bool


@dataclass(slots=True)
class Report:
    month: str
    settings: ReportSettings
    clerks: list[ClerkRow]
    items: list[ItemRow]
    centre: dict[str, Any]
    facts: Facts
    helps: list[HelpRow] = field(default_factory=list)  # response times per department
    # breaks: clerk -> reason -> (pauses, paused minutes) (hub/report/pauses.py)
    pauses: dict[str, dict[str, tuple[int, float]]] = field(default_factory=dict)


def item_weight(catalog: Catalog, settings: ReportSettings, item: str) -> float:
    w = settings.item_weights.get(item)
    if w is not None:
        return w
    it = catalog.item(item)
    return it.weight if it is not None else 1.0


def compute(facts: Facts, catalog: Catalog, settings: ReportSettings | None = None,
            month: str = "") -> Report:
    s = settings or ReportSettings()
    by_clerk: dict[str, list[Service]] = defaultdict(list)
    for sv in facts.services:
        by_clerk[sv.clerk].append(sv)
    ratings: dict[str, list[Rating]] = defaultdict(list)
    for r in facts.ratings:
        ratings[r.clerk].append(r)
    cases: dict[str, Counter[str]] = defaultdict(Counter)
    defective: dict[str, set[str]] = defaultdict(set)  # clerk -> cases with a defect
    for e in facts.cases:
        cases[e.clerk][e.action] += 1
        if e.action in c.CASE_DEFECTS:
            defective[e.clerk].add(e.case)
    names = sorted(set(by_clerk) | set(ratings) | {k for k in cases if k != "unknown"})
    rows = []
    for name in names:
        svs = by_clerk.get(name, [])
        std = act = 0.0
        short = 0
        value = 0.0
        qty = 0
        daily: Counter[str] = Counter()
        for sv in svs:
            qty += len(sv.items)
            daily[sv.day] += len(sv.items)
            value += sum(item_weight(catalog, s, i) for i in sv.items)
            standard = sum(catalog.items[i].minutes for i in sv.items if i in catalog.items)
            if sv.minutes < s.short_share * standard:
                short += 1
                continue
            std += standard
            act += sv.minutes
        rs = ratings.get(name, [])
        sat = sum(1 for r in rs if r.score in s.satisfied)
        cc = cases.get(name, Counter())
        accepted = cc["accepted"]
        defects = len(defective.get(name, ()))
        rows.append(ClerkRow(
            clerk=name, windows=tuple(sorted({sv.window for sv in svs})), days=len(daily),
            services=len(svs), quantity=qty, standard_minutes=std, actual_minutes=act,
            short_services=short, efficiency=std / act if act > 0 else None, value=value,
            mean_weight=value / qty if qty else None, ratings=len(rs), satisfied=sat,
            rating_share=sat / len(rs) if rs else None, cases=accepted,
            returned=cc["returned"], corrected=cc["corrected"], reopened=cc["reopened"],
            quality=max(0.0, 1.0 - defects / accepted) if accepted else None,
            daily=dict(sorted(daily.items())),
            levels=_levels(r.score for r in rs),
            followups=sum(1 for _, k in facts.followups_opened if k == name),
            defective_cases=defects,
        ))
    centre = _centre_summary(rows, facts)
    _score(rows, centre, s)
    return Report(month, s, rows, item_table(facts, catalog, s), centre, facts,
                  help_table(facts.helps, catalog), pauses_by_clerk(facts.pauses))


def _centre_summary(rows: list[ClerkRow], facts: Facts) -> dict[str, Any]:
    std = sum(r.standard_minutes for r in rows)
    act = sum(r.actual_minutes for r in rows)
    n_r = sum(r.ratings for r in rows)
    acc = sum(r.cases for r in rows)
    defects = sum(r.defective_cases for r in rows)
    return {
        "clerks": len(rows),
        "open_days": len(facts.open_days),
        "items_requested": sum(facts.taken.values()),
        "services": sum(r.services for r in rows),
        "quantity": sum(r.quantity for r in rows),
        "value": sum(r.value for r in rows),
        "efficiency": std / act if act else None,
        "short_services": sum(r.short_services for r in rows),
        "ratings": n_r,
        "satisfied": sum(r.satisfied for r in rows),
        "rating_share": sum(r.satisfied for r in rows) / n_r if n_r else None,
        "cases": acc,
        "returned": sum(r.returned for r in rows),
        "corrected": sum(r.corrected for r in rows),
        "reopened": sum(r.reopened for r in rows),
        "quality": max(0.0, 1.0 - defects / acc) if acc else None,
        # closed directly (办结) or handed over at the pick-up window (统一窗口出件)
        "closed": sum(1 for e in facts.cases if e.action in ("closed", "handed_over")),
        # the loop's other steps: approved (ready for pick-up), handed over, and sent to
        # another department (routing: not a defect of the accepting clerk)
        **{k: sum(1 for e in facts.cases if e.action == k)
           for k in ("approved", "handed_over", "reassigned")},
        # breaks at the windows (hub/report/pauses.py), all reasons
        "pauses": len(facts.pauses),
        "paused_minutes": round(sum(p.minutes for p in facts.pauses), 1),
        "rejected_records": facts.rejected,
        "ignored_ratings": facts.ignored_ratings,
        **{f"rated_{k}": sum(r.levels.get(k, 0) for r in rows) for k in LEVELS},
        "followups_opened": len(facts.followups_opened),
        "followups_closed": len(facts.followups_closed),
        "followups_open": facts.followups_open,
        # bookings in the period (per day: facts.bookings); None when not known
        **{f"bookings_{k}": None if facts.bookings is None
           else sum(d[k] for d in facts.bookings.values()) for k in bk.COUNTS},
    }


def _levels(scores: Iterable[int]) -> dict[int, int]:
    """Ratings by level, 5 非常满意 .. 1 非常不满意."""
    out = dict.fromkeys(sorted(LEVELS, reverse=True), 0)
    for x in scores:
        out[x] = out.get(x, 0) + 1
    return out


def _score(rows: list[ClerkRow], centre: dict[str, Any], s: ReportSettings) -> None:
    def per(r: ClerkRow, x: float) -> float:
        return x / r.days if s.per_day and r.days else x

    best = {
        "quantity": max((per(r, r.quantity) for r in rows), default=0.0),
        "value": max((per(r, r.value) for r in rows), default=0.0),
        "efficiency": max((r.efficiency or 0.0 for r in rows), default=0.0),
    }
    total_w = sum(s.weights.values())
    for r in rows:
        sc = {
            "quantity": _rel(per(r, r.quantity), best["quantity"]),
            "efficiency": _rel(r.efficiency if r.efficiency is not None
                               else centre["efficiency"] or 0.0, best["efficiency"]),
            "value": _rel(per(r, r.value), best["value"]),
            "rating": 100.0 * (r.rating_share if r.rating_share is not None
                               else centre["rating_share"] or 0.0),
            "quality": 100.0 * (r.quality if r.quality is not None
                                else centre["quality"] if centre["quality"] is not None
                                else 1.0),
        }
        r.scores = sc
        r.composite = sum(s.weights[k] * sc[k] for k in DIMENSIONS) / total_w
    for k, r in enumerate(sorted(rows, key=lambda r: -r.composite), start=1):
        r.rank = k


def _rel(x: float, best: float) -> float:
    return 100.0 * x / best if best > 0 and math.isfinite(x) else 0.0


def item_table(facts: Facts, catalog: Catalog, s: ReportSettings) -> list[ItemRow]:
    """Items handled in the period, annualised by open days: which pass the training
    threshold (500 a year by default)."""
    handled: Counter[str] = Counter()
    for sv in facts.services:
        handled.update(sv.items)
    days = len(facts.open_days) or 1
    out = []
    for item_id in set(handled) | set(facts.taken):
        it = catalog.item(item_id)
        annual = handled[item_id] / days * s.open_days_per_year
        out.append(ItemRow(
            item_id, it.name.zh if it else item_id, it.name.en if it else item_id,
            it.line if it else "", it.kind if it else "", it.minutes if it else 0.0,
            item_weight(catalog, s, item_id), handled[item_id], facts.taken[item_id],
            annual, annual >= s.training_threshold))
    out.sort(key=lambda r: (-r.handled, r.item))
    return out
