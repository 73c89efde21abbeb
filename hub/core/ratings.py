"""Residents' ratings of a service (满意 / 基本满意 / 不满意), one per ticket, checked
against the service they rate, and their part of the day's close.

The core keeps every rating given since the last day's close (`CentreState.ratings`: the
dashboard's day and what the next close hands to the history tables). A ticket served
across midnight and rated before it stays in the core while its rating leaves with its
day: `rated_carried` remembers it, so that it is not rated twice.
"""

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
    if is_rated(state, t.id):
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


def is_rated(state: CentreState, ticket: str) -> bool:
    """Whether the ticket (id) was rated already: a second rating is refused."""
    return ticket in state.ratings or ticket in state.rated_carried


def close_day(state: CentreState, new_day: str) -> tuple[Rating, ...]:
    """At a day's close (after the closed day's tickets left), the ratings given since the
    last close leave for the history tables, but for those of `new_day`'s own tickets (a
    clock set back a day: a ticket's id begins with its day). Replaces the containers,
    never mutates them (day_rollover.rollback)."""
    gone = tuple(r for r in state.ratings.values() if not r.ticket.startswith(new_day))
    if gone or state.rated_carried:
        held = state.tickets
        state.rated_carried = frozenset(
            k for k in (*state.rated_carried, *(r.ticket for r in gone)) if k in held)
        state.ratings = {k: r for k, r in state.ratings.items() if k.startswith(new_day)}
    return gone
