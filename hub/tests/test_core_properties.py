"""Stateful property tests: random operation sequences must keep the queue's invariants.

The oracles here are written independently of the core's data structures: they look only at
tickets and windows, never at the core's internal queues.

The clock also jumps past local midnight (one day or several, over weekends and holidays)
with nothing applied, so the first command of a new day is a random one that the core may
refuse: every refusal, on any day, must leave `to_dict()` exactly as it was.
"""

import datetime as dt

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.effects import (
    DayClosed,
    RatingGiven,
    TicketCalled,
    TicketIssued,
    Unreachable,
)
from onewindow.hub.core.measures import tier_waits
from onewindow.hub.core.model import Priority, TicketState, WindowState
from onewindow.hub.core.policy import OrderingPolicy
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.web import floor

from .catalogs import small_catalog

CST = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=CST).timestamp()  # a Monday
# A holiday on a Wednesday and a worked Sunday (调休), so promised cases' due days and the
# day roll-over meet both.
HOLIDAYS = frozenset({"2026-11-25", "2026-12-01"})
WORKDAYS = frozenset({"2026-11-29"})
ITEMS = ["SOC-1", "SOC-2", "MED-1", "CIV-1", "CARD-1"]
WINDOWS = ((1, "comprehensive"), (2, "comprehensive"), (3, "card"))
FINISHED = {TicketState.DONE, TicketState.NO_SHOW}


class QueueMachine(RuleBasedStateMachine):
    policy = OrderingPolicy(mode="ratio", ratio=2)

    def __init__(self):
        super().__init__()
        cfg = CentreConfig("test", tuple(WindowSpec(n, k) for n, k in WINDOWS), self.policy,
                           holidays=HOLIDAYS, workdays=WORKDAYS)
        self.core = Centre(small_catalog(), cfg)
        for n, _ in WINDOWS:
            self.core.apply(c.OpenWindow(n, clerk=f"clerk{n}"), T0)
        self.now = T0
        self.issued: list[str] = []  # every ticket id ever acknowledged
        self.finished: set[str] = set()
        self.reported_unreachable: set[str] = set()
        self.priority_run = 0  # consecutive priority calls while a normal one was eligible
        self.ratings: list[RatingGiven] = []  # every rating the core accepted
        self.rejected = 0
        self.facts = floor.TicketFacts()  # the live floor's per-ticket figures, kept

    def _do(self, cmd):
        before = self.core.to_dict()
        try:
            effects = self.core.apply(cmd, self.now)
        except Rejected:
            self.rejected += 1
            assert self.core.to_dict() == before, f"the refused {cmd} changed the state"
            return []
        for e in effects:
            if isinstance(e, TicketIssued) and not e.reprint:
                self.issued.append(e.ticket)
            if isinstance(e, Unreachable):
                self.reported_unreachable.update(e.tickets)
            if isinstance(e, RatingGiven):
                self.ratings.append(e)
            if isinstance(e, DayClosed):
                self.priority_run = 0  # the ratio counter restarts with the day's queue
        return effects

    def _waiting(self):
        """Waiting tickets a call now may pick: none on a new day's first command, which
        expires the queue first (a ticket carried over midnight while being served may
        wait again later that day, so this is about the roll-over, not the ticket's day)."""
        today = dt.datetime.fromtimestamp(self.now, CST).strftime("%Y%m%d")
        if self.core.day != today:
            return []
        return [t for t in self.core.tickets.values() if t.state is TicketState.WAITING]

    @rule(dt_=st.floats(min_value=0, max_value=120))
    def tick(self, dt_):
        self.now += dt_

    @rule(item=st.sampled_from(ITEMS), prio=st.sampled_from(["normal", "normal", "priority"]),
          resident=st.sampled_from([None, None, "r1", "r2"]))
    def take(self, item, prio, resident):
        self._do(c.TakeTicket(item, priority=prio, resident=resident))

    @rule(window=st.sampled_from([1, 2, 3]))
    def call(self, window):
        w = self.core.windows[window]
        def ok(t):
            if t.target_window is not None:
                return t.target_window == window
            return t.item in w.skills

        eligible = [t for t in self._waiting() if ok(t)]
        own = [t for t in eligible if w.kind in self.core.catalog.items[t.item].window_kinds]
        pool = own if w.kind != "comprehensive" and own else eligible
        was_open = w.state not in (WindowState.CLOSED, WindowState.PAUSED)
        prev_done = {tid for tid, t in self.core.tickets.items() if t.state in FINISHED}
        effects = self._do(c.CallNext(window))
        called = [e for e in effects if isinstance(e, TicketCalled)]
        if not called:
            assert not (pool and was_open), "a window that could serve someone called nobody"
            return
        t = self.core.tickets[called[0].ticket]
        assert t.id not in prev_done, "a finished ticket was called again"
        # FIFO within its class, among the tickets this window may take.
        same_class = [u for u in pool if u.priority is t.priority]
        assert t is min(same_class, key=lambda u: (u.order_key, u.serial))
        # Ratio rule: no more than `ratio` priority calls in a row while a normal one waits.
        normal_waiting = any(u.priority is Priority.NORMAL for u in pool)
        if t.priority is Priority.PRIORITY and normal_waiting:
            self.priority_run += 1
        elif t.priority is Priority.NORMAL:
            self.priority_run = 0
        if self.policy.mode == "ratio":
            assert self.priority_run <= self.policy.ratio

    @rule(window=st.sampled_from([1, 2, 3]), op=st.sampled_from(
        ["recall", "skip", "start", "complete", "pause", "resume", "open", "close"]))
    def window_op(self, window, op):
        cls = {"recall": c.Recall, "skip": c.Skip, "start": c.Start, "complete": c.Complete,
               "pause": c.Pause, "resume": c.Resume, "open": c.OpenWindow,
               "close": c.CloseWindow}[op]
        self._do(cls(window))

    @rule(window=st.sampled_from([1, 2, 3]), to=st.sampled_from([1, 2, 3]),
          item=st.sampled_from([None, *ITEMS]))
    def transfer(self, window, to, item):
        self._do(c.Transfer(window, to_item=item) if item else c.Transfer(window, to_window=to))

    @precondition(lambda self: len(self.issued) > 3)
    @rule()
    def next_day(self):
        self.now += 86400
        self._do(c.TakeTicket("SOC-1"))

    @precondition(lambda self: len(self.issued) > 1)
    @rule(days=st.integers(min_value=1, max_value=9),
          at=st.floats(min_value=0, max_value=12 * 3600))
    def past_midnight(self, days, at):
        """The clock only: whatever comes next is the new day's first command."""
        midnight = dt.datetime.combine(
            dt.datetime.fromtimestamp(self.now, CST).date() + dt.timedelta(days=days),
            dt.time(), CST).timestamp()
        self.now = midnight + at

    @rule(item=st.sampled_from(["NOPE-1", "SOC-1"]), prio=st.sampled_from(["vip", "appointment"]))
    def take_refused(self, item, prio):
        self._do(c.TakeTicket(item, priority=prio))

    @rule(prefixes=st.sampled_from([("A",), ("A", "B"), ("Z",)]),
          size=st.integers(min_value=0, max_value=12))
    def reserve(self, prefixes, size):
        self._do(c.ReserveBlock("box-1", prefixes, size))

    @rule(number=st.integers(min_value=1, max_value=6))
    def reprint(self, number):
        self._do(c.Reprint(f"A{number:03d}"))

    @rule(window=st.sampled_from([1, 2, 3]), pick=st.integers(min_value=0, max_value=30),
          score=st.sampled_from([1, 2, 3, 0]))
    def rate(self, window, pick, score):
        """Any of the issued tickets, at any window: the core keeps only ratings of
        tickets this window served (or serves), once each, in time."""
        if not self.issued:
            return
        ticket = self.issued[pick % len(self.issued)]
        t = self.core.tickets.get(ticket)
        effects = self._do(c.Rate(window, ticket, score))
        if not any(isinstance(e, RatingGiven) for e in effects):
            return
        assert t is not None and 1 <= score <= 3
        served_here = [h for h in t.history if h[1] in ("serving", "done") and h[2] == window]
        assert served_here, "a rating of a ticket this window never served"
        if t.state is TicketState.DONE:
            done_at = max(h[0] for h in t.history if h[1] == "done")
            assert self.now - done_at <= self.policy.rating_window
        else:
            assert t.state is TicketState.SERVING and t.window == window

    @invariant()
    def the_floor_kept_per_ticket_is_the_floor_worked_out_afresh(self):
        """The supervisors' floor keeps each ticket's wait and one-window until its
        history grows (floor.TicketFacts): after any operation, across days, it says what
        a walk of every history says."""
        assert floor.summary(self.core, self.facts) == floor.summary(self.core)
        today = [t for t in self.core.tickets.values() if t.day == self.core.day]
        assert tier_waits(self.facts.today(self.core), self.now, self.facts.wait) \
            == tier_waits(today, self.now)

    @invariant()
    def one_rating_per_ticket(self):
        rated = [e.ticket for e in self.ratings]
        assert len(rated) == len(set(rated))

    @invariant()
    def none_lost_none_served_twice(self):
        core = self.core
        queue_ids = [t.id for t in core.queue]
        assert len(queue_ids) == len(set(queue_ids))
        on_windows = [w.ticket for w in core.windows.values() if w.ticket]
        assert len(on_windows) == len(set(on_windows)), "one ticket at two windows"
        for tid in self.issued:
            t = core.tickets.get(tid)
            if t is None:  # a past day: it must have been closed out, not dropped mid-service
                assert tid[:8] != core.day
                continue
            if t.state is TicketState.WAITING:
                assert tid in queue_ids
            elif t.state in (TicketState.CALLED, TicketState.SERVING):
                assert core.windows[t.window].ticket == tid
            else:
                assert t.state in FINISHED
        assert set(queue_ids) <= set(self.issued)

    @invariant()
    def people_ahead_counts_agree_with_the_queue_scan(self):
        core, q = self.core, self.core.queue
        untargeted: dict[str, int] = {}
        for t in q:
            if t.target_window is None:
                untargeted[t.item] = untargeted.get(t.item, 0) + 1
        assert q.by_item == untargeted
        assert q.targeted == sum(1 for t in q if t.target_window is not None)
        for t in q:  # the fast path where it applies, the scan elsewhere: the same count
            assert core.count_ahead(t, self.now) == len(core.ahead_of(t, self.now))

    @invariant()
    def numbers_unique_per_day(self):
        numbers = [t.number for t in self.core.tickets.values() if t.day == self.core.day]
        assert len(numbers) == len(set(numbers))

    @invariant()
    def every_waiting_ticket_is_reachable_or_reported(self):
        core = self.core
        for t in core.queue:
            servers = [w for w in core.windows.values() if w.state is not WindowState.CLOSED
                       and (w.number == t.target_window if t.target_window is not None
                            else t.item in w.skills)]
            if not servers:
                assert t.id in self.reported_unreachable
                assert t in core.unreachable()

    @invariant()
    def one_active_ticket_per_resident_and_item(self):
        seen = set()
        for t in self.core.tickets.values():
            if t.resident and t.state in (TicketState.WAITING, TicketState.CALLED,
                                          TicketState.SERVING):
                assert (t.resident, t.item) not in seen
                seen.add((t.resident, t.item))


class AgingMachine(QueueMachine):
    policy = OrderingPolicy(mode="aging", weights={"normal": 1.0, "priority": 3.0})

    @rule(window=st.sampled_from([1, 2]))
    def call_aging(self, window):
        w = self.core.windows[window]
        pool = [t for t in self._waiting()
                if (t.target_window == window if t.target_window is not None
                    else t.item in w.skills)]
        effects = self._do(c.CallNext(window))
        called = [e for e in effects if isinstance(e, TicketCalled)]
        if called:
            t = self.core.tickets[called[0].ticket]
            score = {Priority.NORMAL: 1.0, Priority.PRIORITY: 3.0}
            best = max(score[u.priority] * (self.now - u.order_key) for u in pool)
            assert score[t.priority] * (self.now - t.order_key) >= best - 1e-6


SETTINGS = settings(max_examples=150, stateful_step_count=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
TestQueueMachine = QueueMachine.TestCase
TestQueueMachine.settings = SETTINGS
TestAgingMachine = AgingMachine.TestCase
TestAgingMachine.settings = SETTINGS
