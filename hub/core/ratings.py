"""Residents' ratings of a service (满意 / 基本满意 / 不满意), one per ticket, checked
against the service they rate."""

from __future__ import annotations

from . import commands as c
from .effects import Effect, RatingGiven
from .model import Rating, TicketState
from .rejected import Rejected
from .state import CentreState


def rate(state: CentreState, cmd: c.Rate, now: float) -> list[Effect]:
    """The operation `Rate`, tied to the service it rates: the ticket this window is
    serving, or one it completed at most `rating_window` ago; once per ticket."""
    w = state.known_window(cmd.window)
    if cmd.score not in (1, 2, 3) or isinstance(cmd.score, bool):
        raise Rejected("bad_field", "评分为1满意、2基本满意或3不满意 / score is 1 "
                                    "satisfied, 2 fair or 3 dissatisfied")
    t = state.find_ticket(cmd.ticket)
    if t is None:
        raise Rejected("unknown_ticket",
                       f"没有今天的{cmd.ticket}号 / no ticket {cmd.ticket} today")
    if t.id in state.ratings:
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
    limit = state.policy.rating_window
    if ended is not None and now - ended > limit:
        raise Rejected("rating_closed", f"{t.number}办结已超过{limit / 60:g}分钟，不能再评价 / "
                                        f"{t.number} ended more than {limit / 60:g} "
                                        f"min ago: too late to rate", ticket=t.number)
    state.ratings[t.id] = Rating(t.id, cmd.score, w.number, w.clerk, now)
    return [RatingGiven(t.id, cmd.score, w.number, w.clerk)]
