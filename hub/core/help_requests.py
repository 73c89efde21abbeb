"""Help requests (吹哨): a clerk calls a back-office specialist to the window, and the
specialist answers. Commands, their operations and their part of the day's close.

A request is named by the journal position of the record that asked: answers quote it, the
console and the history tables (`history_helps.pos`) use it. The core cannot see positions,
so the adapter that journals a `Help` gives it its record's position (`numbered`), and the
record itself does not repeat it: journals written before help moved into the core hold
the same records. That is also why these commands are not in `commands.BY_OP`: a replay
that rebuilds commands from record bodies alone (the staff report) passes them by, as it
always has.

No help command rolls the day over (`DAYLESS`, Centre.apply): a help record never reached
the core before, so an old journal rolls over at the next other record, and a replay of it
shows the same day at every position. A request is no business of the day's queue anyway:
one left open outlives its day.

窗口吹哨 科室报到 (issue 17): a request names the catalog department (科室) it calls, which
the adapter chose and journaled (the console's choice, or by default the department of the
item of the ticket at the window, `default_department`); records written before have none
and replay as they did (a request to nobody in particular). After the answer it goes
through `arrived` (the specialist is at the window) and `resolved`, each a record with who
and when. One still unanswered after the centre's `[help] escalate_after_s` goes to the
supervisors: the core has no clock, so the hub (hub/helpwatch.py) asks `due_escalations`
when that time has passed and journals each `HelpEscalate` it returns, as notices are
journaled as due (notices.py); a replay applies the record and never decides anew.

A request leaves the core at a day's close once answered, as before, whatever step it had
reached: a call answered and never marked resolved does not linger for days.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from . import commands as c
from .effects import Effect, HelpAnswered, HelpProgressed, HelpRequested
from .model import HelpRequest
from .rejected import Rejected
from .state import CentreState


@dataclass(frozen=True, slots=True)
class Help(c.Command):
    """A clerk asks for a specialist: from the console (`clerk`: the user) or with a
    keypad's or node's `help` key (`clerk`: the window's clerk). `department`: the catalog
    department called (None: any, as requests before departments). `request`: its
    record's journal position (`numbered`). `once`: refuse while this window's last
    request is still unanswered (the console's button; a keypad's press always asks
    again). Neither of these two is journaled: a request accepted once is accepted again
    on replay."""

    op: ClassVar[str] = "help"
    window: int
    clerk: str | None = None
    request: int = 0
    once: bool = False
    department: str | None = None

    def to_record(self) -> dict[str, Any]:
        d: dict[str, Any] = {"window": self.window, "clerk": self.clerk, "op": self.op}
        if self.department is not None:  # records without it stay as they always were
            d["department"] = self.department
        return d


@dataclass(frozen=True, slots=True)
class HelpAnswer(c.Command):
    """A specialist (`by`) answers the help request `request`: they are on their way."""

    op: ClassVar[str] = "help_answer"
    request: int
    by: str


@dataclass(frozen=True, slots=True)
class HelpArrive(c.Command):
    """The specialist `by` is at the window (answering it too, if nobody had)."""

    op: ClassVar[str] = "help_arrive"
    request: int
    by: str


@dataclass(frozen=True, slots=True)
class HelpResolve(c.Command):
    """`by` marks the matter settled: the request's last step."""

    op: ClassVar[str] = "help_resolve"
    request: int
    by: str


@dataclass(frozen=True, slots=True)
class HelpEscalate(c.Command):
    """Unanswered for the centre's escalation time: the request goes to the supervisors.
    The hub's decision (hub/helpwatch.py), journaled with the time it passed."""

    op: ClassVar[str] = "help_escalate"
    request: int


HelpCommand = Help | HelpAnswer | HelpArrive | HelpResolve | HelpEscalate
OPS: dict[str, type[HelpCommand]] = {
    k.op: k for k in (Help, HelpAnswer, HelpArrive, HelpResolve, HelpEscalate)}
DAYLESS = frozenset(OPS.values())


def numbered(cmd: c.Command, pos: int) -> c.Command:
    """`cmd` as journaled at `pos`: a Help takes the position as its request's name."""
    return replace(cmd, request=pos) if isinstance(cmd, Help) else cmd


def from_record(body: dict[str, Any], pos: int) -> HelpCommand:
    """The command of a help record journaled at `pos` (the inverse of `to_record`)."""
    op = body["op"]
    if op == Help.op:
        return Help(body["window"], body.get("clerk"), request=pos,
                    department=body.get("department"))
    if op == HelpEscalate.op:
        return HelpEscalate(body["request"])
    return OPS[op](body["request"], body["by"])  # type: ignore[call-arg]


def default_department(state: CentreState, window: int) -> str | None:
    """The department a help call from `window` goes to unless the clerk says otherwise:
    the one that approves the item of the ticket called or served there (Item.approver);
    None when the window has no ticket (the call is to any department)."""
    w = state.windows.get(window)
    t = state.tickets.get(w.ticket) if w is not None and w.ticket else None
    item = state.catalog.item(t.item) if t is not None else None
    return item.approver if item is not None else None


def ask(state: CentreState, cmd: Help, now: float) -> list[Effect]:
    """The operation `Help`: a new request, open until answered."""
    w = state.known_window(cmd.window)
    if type(cmd.request) is not int or cmd.request <= 0 or cmd.request in state.help_requests:
        raise Rejected("bad_field", f"求助编号无效 / help request number {cmd.request!r} is "
                                    f"not a new journal position")
    dept = cmd.department
    if dept is not None and dept not in state.catalog.departments:
        raise Rejected("unknown_department", f"没有“{dept}”这个科室 / 沒有「{dept}」這個科室 / "
                                             f"there is no department {dept!r}")
    if cmd.once and any(h.window == w.number and h.answered_at is None
                        for h in state.help_requests.values()):
        raise Rejected("help_pending", "已在等待专家 / already waiting for a specialist")
    state.help_requests[cmd.request] = HelpRequest(cmd.request, w.number, cmd.clerk, now,
                                                   department=dept)
    return [HelpRequested(cmd.request, w.number, dept)]


def _held(state: CentreState, request: int) -> HelpRequest:
    req = state.help_requests.get(request)
    if req is None:
        raise Rejected("unknown_request", f"没有第{request}号求助 / no help request {request}")
    return req


def answer(state: CentreState, cmd: HelpAnswer, now: float) -> list[Effect]:
    """The operation `HelpAnswer`: once per request, while it is in the core."""
    req = _held(state, cmd.request)
    if req.answered_at is not None:
        raise Rejected("already_answered", f"{req.by}已应答 / answered by {req.by} already")
    state.help_requests[cmd.request] = replace(req, answered_at=now, by=cmd.by)
    return [HelpAnswered(cmd.request, req.window, cmd.by)]


def arrive(state: CentreState, cmd: HelpArrive, now: float) -> list[Effect]:
    """The operation `HelpArrive`: once; a specialist who comes without answering first
    answers by coming (the answer's time is the arrival's)."""
    req = _held(state, cmd.request)
    if req.arrived_at is not None:
        raise Rejected("already_arrived", f"{req.arrived_by}已到窗口 / {req.arrived_by} is at "
                                          f"the window already")
    effects: list[Effect] = []
    if req.answered_at is None:
        req = replace(req, answered_at=now, by=cmd.by)
        effects.append(HelpAnswered(cmd.request, req.window, cmd.by))
    state.help_requests[cmd.request] = replace(req, arrived_at=now, arrived_by=cmd.by)
    effects.append(HelpProgressed(cmd.request, req.window, "arrived", cmd.by, req.department))
    return effects


def resolve(state: CentreState, cmd: HelpResolve, now: float) -> list[Effect]:
    """The operation `HelpResolve`: once, after an answer (an unanswered call is answered
    or escalated, never closed unseen)."""
    req = _held(state, cmd.request)
    if req.resolved_at is not None:
        raise Rejected("already_resolved", f"{req.resolved_by}已处理完毕 / resolved by "
                                           f"{req.resolved_by} already")
    if req.answered_at is None:
        raise Rejected("not_answered", "尚未应答，不能标记为已解决 / 尚未應答，不能標記為已解決 / "
                                       "not answered yet: it cannot be resolved")
    state.help_requests[cmd.request] = replace(req, resolved_at=now, resolved_by=cmd.by)
    return [HelpProgressed(cmd.request, req.window, "resolved", cmd.by, req.department)]


def escalate(state: CentreState, cmd: HelpEscalate, now: float) -> list[Effect]:
    """The operation `HelpEscalate`: an unanswered request, once."""
    req = _held(state, cmd.request)
    if req.answered_at is not None:
        raise Rejected("already_answered", f"{req.by}已应答 / answered by {req.by} already")
    if req.escalated_at is not None:
        raise Rejected("already_escalated", "已上报值班长 / escalated already")
    state.help_requests[cmd.request] = replace(req, escalated_at=now)
    return [HelpProgressed(cmd.request, req.window, "escalated", None, req.department)]


def due_escalations(state: CentreState, after_s: float, now: float) -> list[HelpEscalate]:
    """The requests unanswered for `after_s` seconds at `now` and not escalated yet."""
    return [HelpEscalate(h.request) for h in state.help_requests.values()
            if h.answered_at is None and h.escalated_at is None and now - h.at >= after_s]


def next_escalation(state: CentreState, after_s: float) -> float | None:
    """When the next request falls due for escalation (epoch seconds), or None."""
    return min((h.at + after_s for h in state.help_requests.values()
                if h.answered_at is None and h.escalated_at is None), default=None)


def close_day(state: CentreState, new_day: str) -> tuple[HelpRequest, ...]:
    """At a day's close, the answered requests asked before `new_day` leave for the history
    tables; an open one stays, since its answer may come on a later day. Replaces the
    container, never mutates it (day_rollover.rollback)."""
    gone = tuple(h for h in state.help_requests.values()
                 if h.answered_at is not None and _asked(state, h) != new_day)
    if gone:
        left = {h.request for h in gone}
        state.help_requests = {k: h for k, h in state.help_requests.items() if k not in left}
    return gone


def _asked(state: CentreState, h: HelpRequest) -> str:
    return state.calendar.local_date(h.at).strftime("%Y%m%d")
