"""Help requests (吹哨): a clerk calls a back-office specialist to the window, and the
specialist answers. Commands, their operations and their part of the day's close.

A request is named by the journal position of the record that asked: answers quote it, the
console and the history tables (`history_helps.pos`) use it. The core cannot see positions,
so the adapter that journals a `Help` gives it its record's position (`numbered`), and the
record itself does not repeat it: journals written before help moved into the core hold
the same records. That is also why these two commands are not in `commands.BY_OP`: a replay
that rebuilds commands from record bodies alone (the staff report) passes them by, as it
always has.

Neither command rolls the day over (`DAYLESS`, Centre.apply): a help record never reached
the core before, so an old journal rolls over at the next other record, and a replay of it
shows the same day at every position. A request is no business of the day's queue anyway:
one left open outlives its day.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from . import commands as c
from .effects import Effect, HelpAnswered, HelpRequested
from .model import HelpRequest
from .rejected import Rejected
from .state import CentreState


@dataclass(frozen=True, slots=True)
class Help(c.Command):
    """A clerk asks for a specialist: from the console (`clerk`: the user) or with a
    keypad's or node's `help` key (`clerk`: the window's clerk). `request`: its record's
    journal position (`numbered`). `once`: refuse while this window's last request is
    still open (the console's button; a keypad's press always asks again). Neither is
    journaled: a request accepted once is accepted again on replay."""

    op: ClassVar[str] = "help"
    window: int
    clerk: str | None = None
    request: int = 0
    once: bool = False

    def to_record(self) -> dict[str, Any]:
        return {"window": self.window, "clerk": self.clerk, "op": self.op}


@dataclass(frozen=True, slots=True)
class HelpAnswer(c.Command):
    """A specialist (`by`) answers the help request `request`."""

    op: ClassVar[str] = "help_answer"
    request: int
    by: str


OPS: dict[str, type[Help] | type[HelpAnswer]] = {Help.op: Help, HelpAnswer.op: HelpAnswer}
DAYLESS = frozenset(OPS.values())


def numbered(cmd: c.Command, pos: int) -> c.Command:
    """`cmd` as journaled at `pos`: a Help takes the position as its request's name."""
    return replace(cmd, request=pos) if isinstance(cmd, Help) else cmd


def from_record(body: dict[str, Any], pos: int) -> Help | HelpAnswer:
    """The command of a help record journaled at `pos` (the inverse of `to_record`)."""
    if body["op"] == Help.op:
        return Help(body["window"], body.get("clerk"), request=pos)
    return HelpAnswer(body["request"], body["by"])


def ask(state: CentreState, cmd: Help, now: float) -> list[Effect]:
    """The operation `Help`: a new request, open until answered."""
    w = state.known_window(cmd.window)
    if type(cmd.request) is not int or cmd.request <= 0 or cmd.request in state.help_requests:
        raise Rejected("bad_field", f"求助编号无效 / help request number {cmd.request!r} is "
                                    f"not a new journal position")
    if cmd.once and any(h.window == w.number and h.answered_at is None
                        for h in state.help_requests.values()):
        raise Rejected("help_pending", "已在等待专家 / already waiting for a specialist")
    state.help_requests[cmd.request] = HelpRequest(cmd.request, w.number, cmd.clerk, now)
    return [HelpRequested(cmd.request, w.number)]


def answer(state: CentreState, cmd: HelpAnswer, now: float) -> list[Effect]:
    """The operation `HelpAnswer`: once per request, while it is in the core."""
    req = state.help_requests.get(cmd.request)
    if req is None:
        raise Rejected("unknown_request", f"没有第{cmd.request}号求助 / no help request "
                                          f"{cmd.request}")
    if req.answered_at is not None:
        raise Rejected("already_answered", f"{req.by}已应答 / answered by {req.by} already")
    state.help_requests[cmd.request] = replace(req, answered_at=now, by=cmd.by)
    return [HelpAnswered(cmd.request, req.window, cmd.by)]


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
