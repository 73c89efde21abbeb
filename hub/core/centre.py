"""The dispatch core: one centre's tickets and windows.

Pure: no I/O and no clock. Every operation gets `now` (epoch seconds) from the caller, so the
hub, the journal replay and the simulator drive the very same code. An operation either
raises `Rejected` having changed nothing, or mutates the state and returns its effects.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from . import commands as c
from .catalog import COMPREHENSIVE, Catalog, Item
from .effects import (
    BlockReserved,
    CaseChanged,
    CaseOpened,
    DayClosed,
    Effect,
    QueueChanged,
    RatingGiven,
    TicketCalled,
    TicketIssued,
    TicketVoided,
    Unreachable,
    WindowChanged,
)
from .model import (
    Case,
    Priority,
    Rating,
    Ticket,
    TicketState,
    Window,
    WindowState,
)
from .policy import OrderingPolicy, WaitingQueue, choose


class Rejected(Exception):
    """An operation the core refuses. `code` is stable and machine-readable."""

    def __init__(self, code: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail


@dataclass(frozen=True, slots=True)
class WindowSpec:
    number: int
    kind: str = COMPREHENSIVE
    skills: tuple[str, ...] | None = None  # item or line ids; None: what the kind serves


@dataclass(frozen=True, slots=True)
class CentreConfig:
    centre_id: str
    windows: tuple[WindowSpec, ...]
    policy: OrderingPolicy = field(default_factory=OrderingPolicy)
    utc_offset_minutes: int = 480  # China Standard Time; the day rolls over at local midnight
    holidays: frozenset[str] = frozenset()  # ISO dates that are not working days
    workdays: frozenset[str] = frozenset()  # weekend dates that are working days (调休)


OFFLINE_BASE = 901  # offline numbers per prefix start here: A901.. tells staff "offline"


class Centre:
    def __init__(self, catalog: Catalog, config: CentreConfig) -> None:
        self.catalog = catalog
        self.config = config
        self.policy = config.policy
        self._tz = dt.timezone(dt.timedelta(minutes=config.utc_offset_minutes))
        self.day = ""
        self._day_span = (0.0, 0.0)  # [start, end) of self.day in epoch seconds
        self.tickets: dict[str, Ticket] = {}  # today's, by id
        self.by_number: dict[str, Ticket] = {}
        self.queue = WaitingQueue()
        self.counters: dict[str, int] = {}
        # Today's offline blocks: device -> prefix -> [first, last] ranges, newest last.
        self.blocks: dict[str, dict[str, list[tuple[int, int]]]] = {}
        self.offline_next: dict[str, int] = {}
        self.serial = 0
        self.streak = 0
        self.cases: dict[str, Case] = {}
        self.active_by_resident: dict[tuple[str, str], str] = {}
        self.ratings: dict[str, Rating] = {}  # by ticket id, while the ticket is kept
        self.windows: dict[int, Window] = {}
        for spec in config.windows:
            if spec.number in self.windows:
                raise ValueError(f"window {spec.number} configured twice")
            self.windows[spec.number] = Window(spec.number, spec.kind, self._skills(spec))
        self._reach: dict[str, frozenset[int]] = {}
        # mine -> other -> do they compete (count_ahead); valid for the current reach
        self._share_rows: dict[str, dict[str, bool]] = {}
        self._workdays_cache: dict[tuple[dt.date, int], dt.date] = {}
        self._refresh_reach()

    # ---- configuration helpers -------------------------------------------------------
    def _skills(self, spec: WindowSpec) -> frozenset[str]:
        if spec.skills is None:
            own = self.catalog.items_for_kind(spec.kind)
            if spec.kind != COMPREHENSIVE and self.policy.specialised_helps:
                return own | self.catalog.items_for_kind(COMPREHENSIVE)
            return own
        return self._expand_skills(spec.skills)

    def _expand_skills(self, names: tuple[str, ...]) -> frozenset[str]:
        out: set[str] = set()
        for name in names:
            if name == "*":
                out.update(self.catalog.items)
            elif name in self.catalog.lines:
                out.update(i.id for i in self.catalog.items.values() if i.line == name)
            elif name in self.catalog.items:
                out.add(name)
            else:
                raise Rejected("unknown_item", f"未知事项 / unknown item or line {name!r}")
        return frozenset(out)

    def _update_reach(self, w: Window) -> None:
        """One window opened or closed: only the reach of its own items changes."""
        serving = w.state is not WindowState.CLOSED
        self._share_rows.clear()
        for item in w.skills:
            r = self._reach[item]
            if serving and w.number not in r:
                self._reach[item] = r | {w.number}
            elif not serving and w.number in r:
                self._reach[item] = r - {w.number}

    def _refresh_reach(self) -> None:
        """Which not-closed windows can serve each item (paused ones come back)."""
        reach: dict[str, set[int]] = {i: set() for i in self.catalog.items}
        for w in self.windows.values():
            if w.state is not WindowState.CLOSED:
                for item in w.skills:
                    reach[item].add(w.number)
        self._reach = {k: frozenset(v) for k, v in reach.items()}
        self._share_rows = {}
        # Items some window (open or not) serves: what a ticket may be taken for.
        self._servable = frozenset().union(*(w.skills for w in self.windows.values()))

    # ---- time ------------------------------------------------------------------------
    def local_time(self, now: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(now, self._tz)

    def local_date(self, now: float) -> dt.date:
        return self.local_time(now).date()

    def is_workday(self, d: dt.date) -> bool:
        iso = d.isoformat()
        if iso in self.config.holidays:
            return False
        return d.weekday() < 5 or iso in self.config.workdays

    def add_workdays(self, start: dt.date, days: int) -> dt.date:
        key = (start, days)
        hit = self._workdays_cache.get(key)
        if hit is None:
            hit = self._workdays_cache[key] = self._add_workdays(start, days)
        return hit

    def _add_workdays(self, start: dt.date, days: int) -> dt.date:
        d = start
        while days > 0:
            d += dt.timedelta(days=1)
            if self.is_workday(d):
                days -= 1
        return d

    # ---- queries ---------------------------------------------------------------------
    def find_ticket(self, ref: str) -> Ticket | None:
        return self.tickets.get(ref) or self.by_number.get(ref)

    def reach(self, t: Ticket) -> frozenset[int]:
        """Windows (not closed) that may serve this waiting ticket."""
        if t.target_window is not None:
            w = self.windows.get(t.target_window)
            if w is None or w.state is WindowState.CLOSED:
                return frozenset()
            return frozenset((t.target_window,))
        return self._reach.get(t.item, frozenset())

    def unreachable(self) -> list[Ticket]:
        return [t for t in self.queue if not self.reach(t)]

    def _tier(self, t: Ticket, now: float) -> int:
        if t.priority is Priority.APPOINTMENT and t.appointment_at is not None:
            p = self.policy
            at = t.appointment_at
            if at - p.appointment_early <= now <= at + p.appointment_grace:
                return 0
            return 2
        return 1 if t.priority is Priority.PRIORITY else 2

    def ahead_of(self, t: Ticket, now: float) -> list[Ticket]:
        """Waiting tickets likely served before `t`: same windows, earlier tier or order."""
        mine = self.reach(t)
        tier, key = self._tier(t, now), t.sort_key
        items = self.catalog.items
        # A specialised window serves its own kind first: for a card or cash item, only
        # tickets of that kind are ahead, however long the comprehensive queue is.
        own = set(items[t.item].window_kinds) if items[t.item].specialised else None
        shares: dict[str, bool] = {}  # by item: most waiting tickets share a few items
        out = []
        for u in self.queue:
            if u is t:
                continue
            if u.target_window is None:
                share = shares.get(u.item)
                if share is None:
                    share = not self._reach[u.item].isdisjoint(mine) and (
                        own is None or not own.isdisjoint(items[u.item].window_kinds))
                    shares[u.item] = share
            else:
                share = u.target_window in mine
            if not share:
                continue
            ut = self._tier(u, now)
            if ut < tier or (ut == tier and u.sort_key < key):
                out.append(u)
        return out

    def count_ahead(self, t: Ticket, now: float) -> int:
        """len(ahead_of(t, now)), without walking the queue in the common case: a new
        normal ticket, newest of all, with no ticket sent to one window. Then everyone
        waiting for an item that shares a window with t is ahead of it, whatever the tier."""
        q = self.queue
        if (t.priority is not Priority.NORMAL or t.target_window is not None or q.targeted
                or not q.normal or q.normal[-1] is not t):
            return len(self.ahead_of(t, now))
        key = t.sort_key
        if any(u.sort_key > key for u in q.appointment):  # an off-slot one taken later
            return len(self.ahead_of(t, now))
        row = self._share_rows.get(t.item)
        if row is None:
            row = self._share_rows[t.item] = {}
        n = 0
        for item, k in q.by_item.items():
            share = row.get(item)
            if share is None:
                share = row[item] = self._shares(t.item, item)
            if share:
                n += k
        return n - 1 if row.get(t.item) else n  # not t itself

    def _shares(self, mine: str, other: str) -> bool:
        """Do tickets for `other` compete with a ticket for `mine` (see ahead_of)?"""
        items = self.catalog.items
        own = items[mine].window_kinds if items[mine].specialised else None
        return not self._reach[other].isdisjoint(self._reach.get(mine, frozenset())) and (
            own is None or not set(own).isdisjoint(items[other].window_kinds))

    def estimate(self, t: Ticket, now: float) -> tuple[int, float]:
        """(people ahead, minutes to wait) from the standard minutes of those ahead."""
        ahead = self.ahead_of(t, now)
        reach = self.reach(t)
        if not reach:
            return len(ahead), float("inf")
        items, windows, tickets = self.catalog.items, self.windows, self.tickets
        work = sum(items[u.item].minutes for u in ahead)
        for n in reach:  # what the windows' current residents still need
            w = windows[n]
            cur = tickets.get(w.ticket) if w.ticket is not None else None
            if cur is not None:
                left = items[cur.item].minutes - (now - w.since) / 60.0
                if left > 0:
                    work += left
        return len(ahead), work / len(reach)

    # ---- the one entry point ---------------------------------------------------------
    def apply(self, cmd: c.Command, now: float) -> list[Effect]:
        handler = _HANDLERS.get(type(cmd))
        if handler is None:
            raise Rejected("unknown_op", f"unknown operation {cmd.op!r}")
        if self._day_span[0] <= now < self._day_span[1]:
            return handler(self, cmd, now)
        # Only near midnight (or on the first call) is the date worth formatting. A new day
        # is judged on the new day's state (yesterday's queue expired, numbers restarted),
        # so the roll-over comes first, but it belongs to the command: if the command is
        # refused, yesterday is put back as it was and the next accepted command rolls over
        # instead. Why not a roll-over record of its own, or checking on a copy: the journal
        # holds only accepted commands, so a replay rolls over at the very same record
        # without any new record kind (old journals, the simulator and the report replay
        # drive `apply` alone), and a copy of the whole day for every command near
        # midnight would cost far more than this savepoint, which is cheap because
        # `_close_day` replaces containers rather than mutating them.
        saved = self._savepoint()
        effects: list[Effect] = []
        try:
            local = self.local_date(now)
            start = dt.datetime.combine(local, dt.time(), self._tz)
            self._day_span = (start.timestamp(), (start + dt.timedelta(days=1)).timestamp())
            day = local.strftime("%Y%m%d")
            if day != self.day:
                if self.day:
                    effects.append(self._close_day())
                self.day = day
            effects.extend(handler(self, cmd, now))
        except BaseException:
            self._rollback(saved)
            raise
        return effects

    def _savepoint(self) -> tuple[dict[str, Any], list[tuple[Window, Window]]]:
        """What a day roll-over may change: every attribute (the containers it replaces)
        and the windows' fields (it sets calling windows idle in place)."""
        return dict(vars(self)), [(w, copy.copy(w)) for w in self.windows.values()]

    def _rollback(self, saved: tuple[dict[str, Any], list[tuple[Window, Window]]]) -> None:
        attrs, windows = saved
        vars(self).clear()
        vars(self).update(attrs)
        for w, old in windows:
            for f in fields(Window):
                setattr(w, f.name, getattr(old, f.name))

    def _close_day(self) -> DayClosed:
        """Local midnight: numbers restart; whoever still waits is expired, not carried over.

        It must replace the containers it changes, never mutate them in place (windows
        aside): `apply` undoes a roll-over whose command is refused by putting the old
        ones back (the stateful property test checks this across midnights)."""
        expired = []
        for t in list(self.tickets.values()):
            if t.state in (TicketState.WAITING, TicketState.CALLED):
                expired.append(t.id)
        old = self.day
        for w in self.windows.values():
            if w.state is WindowState.CALLING:
                w.state, w.ticket = WindowState.IDLE, None
        self.tickets = {k: t for k, t in self.tickets.items() if t.state is TicketState.SERVING}
        self.by_number = {}
        self.queue = WaitingQueue()
        self.counters = {}
        self.blocks = {}
        self.offline_next = {}
        self.streak = 0
        self.active_by_resident = {
            (t.resident, t.item): t.id for t in self.tickets.values() if t.resident
        }
        # A rating goes with its ticket: one still being served may yet be rated once.
        self.ratings = {k: r for k, r in self.ratings.items() if k in self.tickets}
        # Closed cases leave memory (the app writes them to the history tables): the core
        # holds what is still open, returned, or closed on the day now closing.
        archived = tuple(k for k in self.cases.values() if k.state == "closed")
        if archived:
            self.cases = {i: k for i, k in self.cases.items() if k.state != "closed"}
        return DayClosed(old, tuple(expired), archived)

    # ---- helpers ---------------------------------------------------------------------
    def _window(self, number: int) -> Window:
        w = self.windows.get(number)
        if w is None:
            raise Rejected("unknown_window", f"没有{number}号窗口 / no window {number}")
        return w

    def _item(self, item_id: str) -> Item:
        item = self.catalog.item(item_id)
        if item is None:
            raise Rejected("unknown_item", f"未知事项 / unknown item {item_id!r}")
        return item

    def _open_window(self, number: int) -> Window:
        w = self._window(number)
        if w.state is WindowState.CLOSED:
            raise Rejected("window_closed", f"{number}号窗口未开放 / window {number} is closed")
        if w.state is WindowState.PAUSED:
            raise Rejected("window_paused", f"{number}号窗口暂停中 / window {number} is paused")
        return w

    def _current(self, w: Window) -> Ticket:
        t = self.tickets.get(w.ticket) if w.ticket else None
        if t is None:
            raise Rejected("no_current_ticket",
                           f"{w.number}号窗口没有当前号 / window {w.number} has no current ticket")
        return t

    def _finish(self, t: Ticket, state: TicketState, now: float, w: Window) -> list[Effect]:
        t.mark(now, state, w.number)
        t.window = None
        if t.resident:
            self.active_by_resident.pop((t.resident, t.item), None)
        w.ticket, w.state, w.since = None, WindowState.IDLE, now
        effects: list[Effect] = [WindowChanged(w.number)]
        if state is TicketState.DONE and self.catalog.items[t.item].kind == "promised":
            item = self.catalog.items[t.item]
            due = self.add_workdays(self.local_date(now), item.promised_days)
            self.cases[t.id] = Case(t.id, t.id, t.item, now, due.isoformat(), t.resident)
            effects.append(CaseOpened(t.id, due.isoformat()))
        return effects

    def _requeue(self, t: Ticket, now: float, order_key: float) -> None:
        t.state, t.window, t.order_key = TicketState.WAITING, None, order_key
        t.history.append((now, TicketState.WAITING.value, None))
        self.queue.add(t)

    def _eligible(self, w: Window) -> Callable[[Ticket], bool]:
        skills, number = w.skills, w.number

        def ok(t: Ticket) -> bool:
            if t.target_window is not None:
                return t.target_window == number
            return t.item in skills

        return ok

    def _pick(self, w: Window, now: float) -> Ticket | None:
        ok = self._eligible(w)
        if w.kind != COMPREHENSIVE:
            # A specialised window serves its own items first, then helps out when idle.
            items, kind = self.catalog.items, w.kind

            def own(t: Ticket) -> bool:
                return ok(t) and kind in items[t.item].window_kinds

            t, streak = choose(self.queue, own, now, self.policy, self.streak)
            if t is not None:
                self.streak = streak
                return t
        t, self.streak = choose(self.queue, ok, now, self.policy, self.streak)
        return t

    def _newly_unreachable(self, before: set[str]) -> list[Effect]:
        lost = tuple(t.id for t in self.unreachable() if t.id not in before)
        return [Unreachable(lost)] if lost else []

    # ---- operations ------------------------------------------------------------------
    def _take(self, cmd: c.TakeTicket, now: float) -> list[Effect]:
        item = self._item(cmd.item)
        for extra in cmd.extra_items:
            self._item(extra)
        try:
            priority = Priority(cmd.priority)
        except ValueError:
            raise Rejected("bad_priority", f"unknown priority class {cmd.priority!r}") from None
        if priority is Priority.APPOINTMENT and cmd.appointment_at is None:
            raise Rejected("bad_priority", "an appointment ticket needs appointment_at")
        if item.id not in self._servable:
            raise Rejected("not_served_here",
                           f"本中心无窗口办理{item.name.zh} / no window here serves {item.id}")
        replaced = self._superseded(cmd)  # checked before anything changes
        if cmd.resident:
            held = self.active_by_resident.get((cmd.resident, item.id))
            if held is not None and (replaced is None or held != replaced.id):
                number = self.tickets[held].number
                raise Rejected("already_has_ticket",
                               f"您已有{number}号 / you already hold ticket {number}",
                               ticket=number)
        if cmd.number is not None:
            number, issued = self._offline_number(cmd, item.prefix, now)
        else:
            number, issued = self._next_number(item.prefix), now
        self.serial += 1
        t = Ticket(
            id=f"{self.day}-{number}", number=number, day=self.day, item=item.id,
            priority=priority, issued_at=issued, order_key=issued, serial=self.serial,
            extra_items=tuple(cmd.extra_items), resident=cmd.resident,
            appointment_at=cmd.appointment_at, source=cmd.source, request=cmd.request,
        )
        effects: list[Effect] = []
        if replaced is not None:
            effects += self._void(replaced, t, now)
        t.history.append((issued, TicketState.WAITING.value, None))
        self.tickets[t.id] = t
        self.by_number[number] = t
        self.queue.add(t)
        if cmd.resident:
            self.active_by_resident[(cmd.resident, item.id)] = t.id
        effects += [TicketIssued(t.id, self.count_ahead(t, now), cmd.source), QueueChanged()]
        if not self.reach(t):
            effects.append(Unreachable((t.id,)))
        return effects

    def _superseded(self, cmd: c.TakeTicket) -> Ticket | None:
        """The ticket issued today for the take this offline ticket replaces, if it can
        still be voided. A device's take and its offline fallback are one request: when
        the hub answered the first only after the device had printed an offline number,
        the late ticket was never handed out (the device refuses its print) and must not
        be called. One already being served is left alone: a resident is at the window."""
        if cmd.supersedes is None:
            return None
        if cmd.number is None:
            raise Rejected("bad_field", "for_seq only comes with an offline ticket's number")
        if cmd.request is not None and cmd.supersedes >= cmd.request:
            raise Rejected("bad_field", f"for_seq {cmd.supersedes} must name an earlier event "
                                        f"than {cmd.request}")
        for t in reversed(self.tickets.values()):  # rare: only offline tickets ask
            if t.source == cmd.source and t.request == cmd.supersedes and t.day == self.day:
                # Waiting again after a transfer, it was served once: someone holds it.
                served = any(s == TicketState.SERVING.value for _, s, _ in t.history)
                if t.state in (TicketState.WAITING, TicketState.CALLED) and not served:
                    return t
                return None
        return None

    def _void(self, t: Ticket, by: Ticket, now: float) -> list[Effect]:
        window = t.window if t.state is TicketState.CALLED else None
        if t.state is TicketState.WAITING:
            self.queue.remove(t)
        effects: list[Effect] = []
        if window is not None:
            w = self.windows[window]
            if w.ticket == t.id:
                w.ticket, w.state, w.since = None, WindowState.IDLE, now
            effects.append(WindowChanged(window))
        t.window = None
        t.mark(now, TicketState.VOIDED, window)
        if t.resident and self.active_by_resident.get((t.resident, t.item)) == t.id:
            del self.active_by_resident[(t.resident, t.item)]
        return [TicketVoided(t.id, by.id, window), *effects]

    def _next_number(self, prefix: str) -> str:
        n = self.counters.get(prefix, 0) + 1
        while f"{prefix}{n:03d}" in self.by_number or self._reserved(prefix, n):
            n += 1  # a very busy day ran into the offline range: step over it
        self.counters[prefix] = n
        return f"{prefix}{n:03d}"

    def _reserved(self, prefix: str, n: int) -> bool:
        return any(a <= n <= b for dev in self.blocks.values()
                   for a, b in dev.get(prefix, ()))

    def _offline_number(self, cmd: c.TakeTicket, prefix: str, now: float) -> tuple[str, float]:
        number = cmd.number or ""
        ranges = self.blocks.get(cmd.source or "", {}).get(prefix, [])
        digits = number[len(prefix):]
        if not (number.startswith(prefix) and digits.isdigit()
                and any(a <= int(digits) <= b for a, b in ranges)):
            raise Rejected("not_reserved", f"{number} is not in a block reserved today for "
                                           f"{cmd.source} (prefix {prefix})")
        if number in self.by_number:
            raise Rejected("duplicate_number", f"{number} was issued already today")
        taken = cmd.taken_at if cmd.taken_at is not None else now
        if taken > now or self.local_date(taken).strftime("%Y%m%d") != self.day:
            raise Rejected("bad_field", "taken_at must be earlier today")
        return number, taken

    def _reserve(self, cmd: c.ReserveBlock, now: float) -> list[Effect]:
        if not 1 <= cmd.size <= 99:
            raise Rejected("bad_field", "a block holds 1-99 numbers")
        prefixes = {line.prefix for line in self.catalog.lines.values()}
        unknown = [p for p in cmd.prefixes if p not in prefixes]
        if unknown:
            raise Rejected("bad_field", f"unknown ticket prefixes {unknown}")
        mine = self.blocks.setdefault(cmd.device, {})
        changed = False
        for prefix in cmd.prefixes:
            ranges = mine.setdefault(prefix, [])
            unused = sum(1 for a, b in ranges for n in range(a, b + 1)
                         if f"{prefix}{n:03d}" not in self.by_number)
            if unused * 2 > cmd.size:
                continue  # enough left: the box keeps numbering where it is
            first = max(self.offline_next.get(prefix, OFFLINE_BASE),
                        self.counters.get(prefix, 0) + 1)
            ranges.append((first, first + cmd.size - 1))
            self.offline_next[prefix] = first + cmd.size
            changed = True
        return [BlockReserved(cmd.device)] if changed else []

    def offline_blocks(self, device: str) -> dict[str, list[list[int]]]:
        """The device's unused reserved numbers, as ranges: what its block command states."""
        out: dict[str, list[list[int]]] = {}
        for prefix, ranges in sorted(self.blocks.get(device, {}).items()):
            free = [[a, b] for a, b in ranges
                    if any(f"{prefix}{n:03d}" not in self.by_number for n in range(a, b + 1))]
            if free:
                out[prefix] = free
        return out

    def _call(self, cmd: c.CallNext, now: float) -> list[Effect]:
        w = self._open_window(cmd.window)
        effects: list[Effect] = []
        if w.ticket is not None:
            # Keypads have one "next" key: pressing it means the current resident is done.
            effects += self._finish(self._current(w), TicketState.DONE, now, w)
        t = self._pick(w, now)
        if t is None:
            if not effects:
                raise Rejected("queue_empty", "暂无等候 / nobody is waiting for this window")
            return [*effects, QueueChanged()]
        self.queue.remove(t)
        t.window = w.number
        t.mark(now, TicketState.CALLED, w.number)
        w.ticket, w.state, w.since = t.id, WindowState.CALLING, now
        return [*effects, TicketCalled(t.id, w.number), WindowChanged(w.number), QueueChanged()]

    def _recall(self, cmd: c.Recall, now: float) -> list[Effect]:
        w = self._open_window(cmd.window)
        t = self._current(w)
        t.recalls += 1
        t.history.append((now, "recalled", w.number))
        return [TicketCalled(t.id, w.number, recall=True)]

    def _skip(self, cmd: c.Skip, now: float) -> list[Effect]:
        w = self._open_window(cmd.window)
        t = self._current(w)
        if t.state is not TicketState.CALLED:
            raise Rejected("already_serving", f"{t.number}已在办理 / {t.number} is being served")
        requeue = self.policy.requeue_skipped if cmd.requeue is None else cmd.requeue
        if requeue and not t.requeued:
            t.history.append((now, "skipped", w.number))
            t.requeued = True
            w.ticket, w.state, w.since = None, WindowState.IDLE, now
            self._requeue(t, now, order_key=now)  # back of the line, once
            return [WindowChanged(w.number), QueueChanged()]
        return [*self._finish(t, TicketState.NO_SHOW, now, w), QueueChanged()]

    def _transfer(self, cmd: c.Transfer, now: float) -> list[Effect]:
        w = self._open_window(cmd.window)
        t = self._current(w)
        if (cmd.to_window is None) == (cmd.to_item is None):
            raise Rejected("bad_transfer", "transfer needs exactly one of to_window or to_item")
        before = {u.id for u in self.unreachable()}
        if cmd.to_window is not None:
            target = self._window(cmd.to_window)
            if target.number == w.number:
                raise Rejected("bad_transfer", "cannot transfer a ticket to its own window")
            if target.state is WindowState.CLOSED:
                raise Rejected("window_closed", f"{target.number}号窗口未开放 / "
                                                f"window {target.number} is closed")
            t.target_window = target.number
        else:
            item = self._item(cmd.to_item or "")
            if item.id not in self._servable:
                raise Rejected("not_served_here", f"no window here serves {item.id}")
            if t.resident:
                held = self.active_by_resident.get((t.resident, item.id))
                if held is not None and held != t.id:
                    number = self.tickets[held].number
                    raise Rejected("already_has_ticket",
                                   f"该居民已有{number}号办理此事项 / the resident already "
                                   f"holds ticket {number} for {item.id}", ticket=number)
                self.active_by_resident.pop((t.resident, t.item), None)
                self.active_by_resident[(t.resident, item.id)] = t.id
            t.item, t.target_window = item.id, None
        t.note = cmd.note
        t.history.append((now, "transferred", w.number))
        w.ticket, w.state, w.since = None, WindowState.IDLE, now
        # It keeps its number and its place: it has waited once already.
        self._requeue(t, now, order_key=t.issued_at)
        return [WindowChanged(w.number), QueueChanged(), *self._newly_unreachable(before)]

    def _start(self, cmd: c.Start, now: float) -> list[Effect]:
        w = self._open_window(cmd.window)
        t = self._current(w)
        if t.state is TicketState.SERVING:
            raise Rejected("already_serving", f"{t.number}已在办理 / {t.number} is being served")
        t.mark(now, TicketState.SERVING, w.number)
        w.state, w.since = WindowState.SERVING, now
        return [WindowChanged(w.number)]

    def _complete(self, cmd: c.Complete, now: float) -> list[Effect]:
        w = self._open_window(cmd.window)
        return self._finish(self._current(w), TicketState.DONE, now, w)

    def _pause(self, cmd: c.Pause, now: float) -> list[Effect]:
        w = self._open_window(cmd.window)
        _require_free(w)
        w.state, w.since = WindowState.PAUSED, now
        return [WindowChanged(w.number)]

    def _resume(self, cmd: c.Resume, now: float) -> list[Effect]:
        w = self._window(cmd.window)
        if w.state is not WindowState.PAUSED:
            raise Rejected("not_paused",
                           f"{w.number}号窗口未暂停 / window {w.number} is not paused")
        w.state, w.since = WindowState.IDLE, now
        return [WindowChanged(w.number)]

    def _open(self, cmd: c.OpenWindow, now: float) -> list[Effect]:
        w = self._window(cmd.window)
        if w.state is not WindowState.CLOSED:
            if cmd.clerk and cmd.clerk != w.clerk:
                w.clerk = cmd.clerk  # a shift change at an open window
                return [WindowChanged(w.number)]
            raise Rejected("already_open", f"{w.number}号窗口已开放 / window {w.number} is open")
        w.state, w.clerk, w.since = WindowState.IDLE, cmd.clerk, now
        self._update_reach(w)
        return [WindowChanged(w.number), QueueChanged()]

    def _close(self, cmd: c.CloseWindow, now: float) -> list[Effect]:
        w = self._window(cmd.window)
        if w.state is WindowState.CLOSED:
            raise Rejected("window_closed", f"{w.number}号窗口未开放 / window {w.number} is closed")
        _require_free(w)
        before = {u.id for u in self.unreachable()}
        w.state, w.clerk, w.since = WindowState.CLOSED, None, now
        # Its own queue (tickets transferred to it) goes back to every window that serves
        # their items, in their place: nobody waits for a window that is gone.
        for t in [t for t in self.queue if t.target_window == w.number]:
            self.queue.retarget(t, None)
            t.history.append((now, "rerouted", w.number))
        self._update_reach(w)
        return [WindowChanged(w.number), QueueChanged(), *self._newly_unreachable(before)]

    def _set_skills(self, cmd: c.SetSkills, now: float) -> list[Effect]:
        w = self._window(cmd.window)
        skills = self._expand_skills(cmd.skills)
        if not skills:
            raise Rejected("bad_skills", "a window needs at least one item")
        before = {u.id for u in self.unreachable()}
        w.skills = skills
        self._refresh_reach()
        return [WindowChanged(w.number), QueueChanged(), *self._newly_unreachable(before)]

    def _reprint(self, cmd: c.Reprint, now: float) -> list[Effect]:
        t = self.find_ticket(cmd.ticket)
        if t is None or t.state not in (TicketState.WAITING, TicketState.CALLED):
            raise Rejected("unknown_ticket",
                           f"没有可补打的{cmd.ticket}号 / no active ticket {cmd.ticket}")
        t.history.append((now, "reprinted", None))
        ahead = self.count_ahead(t, now) if t.state is TicketState.WAITING else 0
        return [TicketIssued(t.id, ahead, cmd.source, reprint=True)]

    def _case(self, cmd: c.CaseUpdate, now: float) -> list[Effect]:
        rule = c.CASE_ACTIONS.get(cmd.action)
        if rule is None:
            raise Rejected("bad_field", f"unknown case action {cmd.action!r}; one of "
                                        f"{', '.join(c.CASE_ACTIONS)}")
        if cmd.restore is not None and cmd.action != "reopened":
            raise Rejected("bad_field", "restore goes with a reopening only")
        case = self.cases.get(cmd.case)
        readmit = case is None and cmd.restore is not None
        if readmit:
            case = self._archived_case(cmd.case, cmd.restore or {})
        if case is None:
            raise Rejected("unknown_case", f"没有承诺件{cmd.case} / no case {cmd.case}")
        before, after = rule
        if case.state not in before:
            raise Rejected("bad_case_state", f"承诺件{case.id}状态为{case.state} / case "
                                             f"{case.id} is {case.state}: cannot be "
                                             f"{cmd.action}")
        if readmit:
            self.cases[case.id] = case
        case.state = after
        case.closed_at = now if after == "closed" else None
        return [CaseChanged(case.id, cmd.action, after)]

    def _archived_case(self, case_id: str, data: dict[str, Any]) -> Case:
        """An archived case from a reopening's `restore` (its fields as archived), checked
        before anything changes: the core takes back only a closed case it could have held."""
        names = {f.name for f in fields(Case)}
        try:
            if set(data) != names:
                raise ValueError(f"fields {sorted(set(data) ^ names)}")
            case = Case(**data)
            if case.id != case_id or case.state != "closed":
                raise ValueError("not the closed case reopened")
            if case.item not in self.catalog.items:
                raise ValueError(f"unknown item {case.item!r}")
            if not (isinstance(case.ticket, str) and isinstance(case.due_day, str)
                    and type(case.opened_at) in (int, float)
                    and (case.resident is None or isinstance(case.resident, str))):
                raise ValueError("a field of the wrong type")
        except (TypeError, ValueError) as e:
            raise Rejected("bad_field", f"承诺件{case_id}的归档数据无效 / case {case_id}: "
                                        f"unusable archived data ({e})") from e
        return case

    def _rate(self, cmd: c.Rate, now: float) -> list[Effect]:
        """A resident's rating, tied to the service it rates: the ticket this window is
        serving, or one it completed at most `rating_window` ago; once per ticket."""
        w = self._window(cmd.window)
        if cmd.score not in (1, 2, 3) or isinstance(cmd.score, bool):
            raise Rejected("bad_field", "评分为1满意、2基本满意或3不满意 / score is 1 "
                                        "satisfied, 2 fair or 3 dissatisfied")
        t = self.find_ticket(cmd.ticket)
        if t is None:
            raise Rejected("unknown_ticket",
                           f"没有今天的{cmd.ticket}号 / no ticket {cmd.ticket} today")
        if t.id in self.ratings:
            raise Rejected("already_rated", f"{t.number}已评价 / {t.number} was rated already",
                           ticket=t.number)
        if t.state is TicketState.SERVING:
            window, ended = t.window, None
        elif t.state is TicketState.DONE:
            ended, _, window = next(h for h in reversed(t.history)
                                    if h[1] == TicketState.DONE.value)
        else:
            raise Rejected("not_served", f"{t.number}未办理，不能评价 / {t.number} was not "
                                         f"served ({t.state.value}): nothing to rate",
                           ticket=t.number)
        if window != w.number:
            raise Rejected("served_elsewhere", f"{t.number}不是在{w.number}号窗口办理的 / "
                                               f"{t.number} was not served at window "
                                               f"{w.number}", ticket=t.number)
        limit = self.policy.rating_window
        if ended is not None and now - ended > limit:
            raise Rejected("rating_closed", f"{t.number}办结已超过{limit / 60:g}分钟，不能再评价 / "
                                            f"{t.number} ended more than {limit / 60:g} "
                                            f"min ago: too late to rate", ticket=t.number)
        self.ratings[t.id] = Rating(t.id, cmd.score, w.number, w.clerk, now)
        return [RatingGiven(t.id, cmd.score, w.number, w.clerk)]

    # ---- snapshot (for comparing states and for tests) -----------------------------
    def to_dict(self) -> dict[str, Any]:
        """All the state, derived indexes included: two cores with equal dicts answer every
        command alike (a refused command must leave it equal)."""
        q = self.queue
        return {
            "day": self.day,
            "serial": self.serial,
            "streak": self.streak,
            "counters": dict(sorted(self.counters.items())),
            "blocks": {d: {p: list(r) for p, r in sorted(b.items())}
                       for d, b in sorted(self.blocks.items())},
            "offline_next": dict(sorted(self.offline_next.items())),
            "tickets": {k: t.to_dict() for k, t in sorted(self.tickets.items())},
            "by_number": {n: t.id for n, t in sorted(self.by_number.items())},
            "active_by_resident": sorted([r, i, t] for (r, i), t in
                                         self.active_by_resident.items()),
            "queue": [t.id for t in q],
            "queue_by_item": dict(sorted(q.by_item.items())),
            "queue_targeted": q.targeted,
            "windows": {n: w.to_dict() for n, w in sorted(self.windows.items())},
            "cases": {k: v.to_dict() for k, v in sorted(self.cases.items())},
            "ratings": {k: r.to_dict() for k, r in sorted(self.ratings.items())},
        }


def _require_free(w: Window) -> None:
    if w.ticket is not None:
        raise Rejected("window_busy", f"请先办结当前号 / finish the current ticket "
                                      f"at window {w.number} first")


_HANDLERS: dict[type, Callable[[Centre, Any, float], list[Effect]]] = {
    c.TakeTicket: Centre._take,
    c.ReserveBlock: Centre._reserve,
    c.CallNext: Centre._call,
    c.Recall: Centre._recall,
    c.Skip: Centre._skip,
    c.Transfer: Centre._transfer,
    c.Start: Centre._start,
    c.Complete: Centre._complete,
    c.Pause: Centre._pause,
    c.Resume: Centre._resume,
    c.OpenWindow: Centre._open,
    c.CloseWindow: Centre._close,
    c.SetSkills: Centre._set_skills,
    c.Reprint: Centre._reprint,
    c.CaseUpdate: Centre._case,
    c.Rate: Centre._rate,
}
