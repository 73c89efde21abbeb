"""Stateful property tests of help requests, their answers and ratings in the core
(hub/core/help_requests.py, ratings.py), across days.

The oracle is a model kept here from the commands the test sent and the core's answers,
not from the core's containers: which requests are open, answered, gone with a day; which
tickets were ever rated. Every refusal must leave `to_dict()` as it was; a snapshot of the
core (core/snapshot.py) must restore to the same state at any point.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from onewindow.hub.core import commands as c
from onewindow.hub.core import help_requests as hr
from onewindow.hub.core import ratings
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.effects import (
    DayClosed,
    HelpAnswered,
    HelpProgressed,
    HelpRequested,
    RatingGiven,
)
from onewindow.hub.core.help_requests import (
    Help,
    HelpAnswer,
    HelpArrive,
    HelpEscalate,
    HelpResolve,
)
from onewindow.hub.core.model import HelpRequest
from onewindow.hub.core.policy import OrderingPolicy
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.core.snapshot import centre_state, restore_centre

from .catalogs import small_catalog

CST = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=CST).timestamp()  # a Monday
WINDOWS = (1, 2)
SPECIALISTS = ("li", "zhou")


def local_day(now: float) -> str:
    return dt.datetime.fromtimestamp(now, CST).strftime("%Y%m%d")


class HelpMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        cfg = CentreConfig("test", tuple(WindowSpec(n) for n in WINDOWS),
                           OrderingPolicy(rating_window=300.0))
        self.core = Centre(small_catalog(), cfg)
        self.now = T0
        for n in WINDOWS:
            self.core.apply(c.OpenWindow(n, clerk=f"clerk{n}"), self.now)
        self.pos = 0  # the journal's last position: a request is named by a new one
        # The model: requests the core must hold (request -> HelpRequest as it should be),
        # and those that left with a day; tickets ever rated; ratings since the last close.
        self.held: dict[int, HelpRequest] = {}
        self.gone: dict[int, HelpRequest] = {}
        self.rated: set[str] = set()
        self.since_close: list[RatingGiven] = []
        self.issued: list[str] = []

    # ---- sending ---------------------------------------------------------------------
    def _do(self, cmd: c.Command) -> tuple[list, str | None]:
        """(effects, None) or ([], the refusal's code); a refusal changes nothing."""
        before, day = self.core.to_dict(), self.core.day
        try:
            effects = self.core.apply(cmd, self.now)
        except Rejected as refusal:
            assert self.core.to_dict() == before, f"the refused {cmd} changed the state"
            return [], refusal.code
        if isinstance(cmd, hr.HelpCommand):
            assert self.core.day == day, "a help command rolled the day over"
        for e in effects:
            if isinstance(e, DayClosed):
                self._closed(e)
            if isinstance(e, RatingGiven):
                self.rated.add(e.ticket)
                self.since_close.append(e)
        if isinstance(cmd, hr.HelpCommand):
            self.pos += 1  # journaled
        return effects, None

    def _closed(self, e: DayClosed) -> None:
        """What left with the day is exactly what the model says must."""
        new_day = self.core.day
        leave = {k: h for k, h in self.held.items()
                 if h.answered_at is not None and local_day(h.at) != new_day}
        assert {h.request: h for h in e.helps} == leave
        for k in leave:
            self.gone[k] = self.held.pop(k)
        assert [(r.ticket, r.score, r.window, r.clerk) for r in e.ratings] == [
            (r.ticket, r.score, r.window, r.clerk) for r in self.since_close]
        self.since_close = []

    # ---- help ------------------------------------------------------------------------
    @rule(window=st.sampled_from([*WINDOWS, 9]), once=st.booleans(),
          clerk=st.sampled_from([None, "clerk1", "wang"]),
          dept=st.sampled_from([None, "soc", "med", "nowhere"]))
    def ask(self, window: int, once: bool, clerk: str | None, dept: str | None) -> None:
        request = self.pos + 1
        effects, code = self._do(Help(window, clerk, request=request, once=once,
                                      department=dept))
        open_here = any(h.window == window and h.answered_at is None
                        for h in self.held.values())
        if window not in WINDOWS:
            assert code == "unknown_window"
        elif dept == "nowhere":
            assert code == "unknown_department"
        elif once and open_here:
            assert code == "help_pending"
        else:
            assert effects == [HelpRequested(request, window, dept)]
            self.held[request] = HelpRequest(request, window, clerk, self.now,
                                             department=dept)

    @rule(request=st.sampled_from([0, -1, 1, 2]))
    def ask_with_a_taken_number(self, request: int) -> None:
        """The adapter names each request by a new journal position; one the core holds, or
        none, is refused (that positions never repeat is the journal's promise)."""
        if request > 0 and request not in self.held:
            return
        assert self._do(Help(1, "x", request=request))[1] == "bad_field"

    @rule(pick=st.integers(min_value=0, max_value=40), by=st.sampled_from(SPECIALISTS))
    def answer(self, pick: int, by: str) -> None:
        request = pick % (self.pos + 2)  # now and then one that never was
        effects, code = self._do(HelpAnswer(request, by))
        h = self.held.get(request)
        if h is None:
            assert code == "unknown_request"  # never asked, or gone with its day
        elif h.answered_at is not None:
            assert code == "already_answered"
        else:
            assert effects == [HelpAnswered(request, h.window, by)]
            self.held[request] = replace(h, answered_at=self.now, by=by)

    @rule(pick=st.integers(min_value=0, max_value=40), by=st.sampled_from(SPECIALISTS),
          step=st.sampled_from(["arrive", "resolve", "escalate"]))
    def later_step(self, pick: int, by: str, step: str) -> None:
        """Arrived (answering too when nobody had), resolved (only once answered), escalated
        (only while unanswered): each once, refused otherwise with nothing changed."""
        request = pick % (self.pos + 2)
        cmd = {"arrive": HelpArrive(request, by), "resolve": HelpResolve(request, by),
               "escalate": HelpEscalate(request)}[step]
        effects, code = self._do(cmd)
        h = self.held.get(request)
        if h is None:
            assert code == "unknown_request"
            return
        if step == "arrive":
            if h.arrived_at is not None:
                assert code == "already_arrived"
                return
            answered = h.answered_at is None
            h = replace(h, answered_at=h.answered_at if not answered else self.now,
                        by=h.by if not answered else by, arrived_at=self.now, arrived_by=by)
            assert effects == [*([HelpAnswered(request, h.window, by)] if answered else []),
                               HelpProgressed(request, h.window, "arrived", by, h.department)]
        elif step == "resolve":
            if h.resolved_at is not None or h.answered_at is None:
                assert code == ("already_resolved" if h.resolved_at is not None
                                else "not_answered")
                return
            h = replace(h, resolved_at=self.now, resolved_by=by)
            assert effects == [HelpProgressed(request, h.window, "resolved", by,
                                              h.department)]
        else:
            if h.answered_at is not None or h.escalated_at is not None:
                assert code in ("already_answered", "already_escalated")
                return
            h = replace(h, escalated_at=self.now)
            assert effects == [HelpProgressed(request, h.window, "escalated", None,
                                              h.department)]
        self.held[request] = h

    @rule(after=st.sampled_from([60.0, 120.0, 600.0]))
    def escalations_due(self, after: float) -> None:
        """What the hub would journal now: exactly the unanswered, unescalated requests
        asked `after` seconds ago or more; and when the next one falls due."""
        due = hr.due_escalations(self.core, after, self.now)
        waiting = [h for h in self.held.values()
                   if h.answered_at is None and h.escalated_at is None]
        assert [d.request for d in due] == [h.request for h in waiting
                                            if self.now - h.at >= after]
        assert hr.next_escalation(self.core, after) == (
            min(h.at + after for h in waiting) if waiting else None)

    # ---- service and ratings -----------------------------------------------------------
    @rule(item=st.sampled_from(["SOC-1", "MED-1"]))
    def take(self, item: str) -> None:
        effects, _ = self._do(c.TakeTicket(item))
        self.issued += [e.ticket for e in effects if type(e).__name__ == "TicketIssued"]

    @rule(window=st.sampled_from(WINDOWS), op=st.sampled_from(["call", "start", "complete"]))
    def serve(self, window: int, op: str) -> None:
        self._do({"call": c.CallNext, "start": c.Start, "complete": c.Complete}[op](window))

    @rule(window=st.sampled_from(WINDOWS))
    def call_and_start(self, window: int) -> None:
        """The usual clerk's two presses: someone is being served (maybe across midnight)."""
        self.take("SOC-1")
        self._do(c.CallNext(window))
        self._do(c.Start(window))

    @rule(window=st.sampled_from(WINDOWS), pick=st.integers(min_value=0, max_value=30),
          score=st.sampled_from([1, 2, 3]))
    def rate(self, window: int, pick: int, score: int) -> None:
        if self.issued:
            self._rate(window, self.issued[pick % len(self.issued)], score)

    @rule(window=st.sampled_from(WINDOWS), score=st.sampled_from([1, 2, 3]))
    def rate_at_the_window(self, window: int, score: int) -> None:
        """The resident at the window rates (or the last one, again)."""
        ticket = self.core.windows[window].ticket or (self.issued[-1] if self.issued else None)
        if ticket is not None:
            self._rate(window, ticket, score)

    def _rate(self, window: int, ticket: str, score: int) -> None:
        rated_before = set(self.rated)
        same_day = local_day(self.now) == self.core.day  # else the day closes first
        again = ticket in rated_before and ticket in self.core.tickets and same_day
        effects, code = self._do(c.Rate(window, ticket, score))
        if again:
            assert code == "already_rated", "a ticket rated once was rated again"
        assert not effects or ticket not in rated_before, "a second rating was accepted"

    # ---- the clock -------------------------------------------------------------------
    @rule(dt_=st.floats(min_value=0, max_value=900))
    def tick(self, dt_: float) -> None:
        self.now += dt_

    @precondition(lambda self: self.pos > 0 or self.issued)
    @rule(days=st.integers(min_value=1, max_value=3), at=st.floats(min_value=0, max_value=600))
    def past_midnight(self, days: int, at: float) -> None:
        """Only the clock: the next command is the new day's first (a help does not close
        the day, anything else does)."""
        d = dt.datetime.fromtimestamp(self.now, CST).date() + dt.timedelta(days=days)
        self.now = dt.datetime.combine(d, dt.time(), CST).timestamp() + at

    # ---- invariants ------------------------------------------------------------------
    @invariant()
    def the_core_holds_what_the_model_holds(self) -> None:
        assert self.core.help_requests == self.held
        assert all(h.answered_at is None or h.answered_at >= h.at for h in self.held.values())

    @invariant()
    def a_ticket_is_rated_once_and_known_to_be(self) -> None:
        for tid in self.core.tickets:
            assert ratings.is_rated(self.core, tid) == (tid in self.rated)
        assert [r.ticket for r in self.core.ratings.values()] == [
            r.ticket for r in self.since_close]

    @invariant()
    def a_snapshot_restores_the_same_state(self) -> None:
        fresh = Centre(self.core.catalog, self.core.config)
        restore_centre(fresh, centre_state(self.core))
        assert fresh.to_dict() == self.core.to_dict()


TestHelpMachine = HelpMachine.TestCase
TestHelpMachine.settings = settings(max_examples=150, stateful_step_count=60, deadline=None,
                                    suppress_health_check=[HealthCheck.too_slow])


def test_the_console_asks_once_a_keypad_as_often_as_pressed():
    core = Centre(small_catalog(), CentreConfig("t", (WindowSpec(1),)))
    core.apply(Help(1, "bob", request=1), T0)
    core.apply(Help(1, "bob", request=2), T0 + 1)  # a keypad's second press
    try:
        core.apply(Help(1, "wang", request=3, once=True), T0 + 2)
        raise AssertionError("the console asked while a request was open")
    except Rejected as e:
        assert e.code == "help_pending" and e.message.index("等待") < e.message.index("wait")
    core.apply(HelpAnswer(1, "li"), T0 + 3)
    core.apply(HelpAnswer(2, "li"), T0 + 4)
    core.apply(Help(1, "wang", request=3, once=True), T0 + 5)
    assert [h.clerk for h in core.help_requests.values()] == ["bob", "bob", "wang"]
    # Neither the request's number nor `once` is journaled: the record is as it always was.
    assert Help(1, "wang", request=3, once=True).to_record() == {
        "window": 1, "clerk": "wang", "op": "help"}
