"""Residents' ratings of a service on the national government-service scale (好差评), one
per ticket, checked against the service they rate, and their part of the day's close.

The five levels (`LEVELS`): 5 非常满意, 4 满意, 3 基本满意, 2 不满意, 1 非常不满意. The
satisfaction rate is counted the way the state counts it: 满意率 = (非常满意 + 满意 +
基本满意) / all ratings (`SATISFIED`, `satisfaction`). The old three-level keys and
journal records (`scale` 3: 1 满意 good, 2 基本满意 ok, 3 不满意 bad) map onto it as
good -> 5 非常满意, ok -> 3 基本满意, bad -> 1 非常不满意 (`FROM_THREE`): a three-key box
keeps working, and a journal written before replays into five-level ratings. A rating of
2 or 1 opens a follow-up (差评整改, followups.py).

The core keeps every rating given since the last day's close (`CentreState.ratings`: the
dashboard's day and what the next close hands to the history tables). A ticket served
across midnight and rated before it stays in the core while its rating leaves with its
day: `rated_carried` remembers it, so that it is not rated twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import commands as c
from . import followups
from .effects import Effect, RatingGiven
from .model import Rating, Ticket, TicketState
from .rejected import Rejected
from .state import CentreState

# level -> (zh-CN, zh-TW, English)
LEVELS: dict[int, tuple[str, str, str]] = {
    5: ("非常满意", "非常滿意", "Very satisfied"),
    4: ("满意", "滿意", "Satisfied"),
    3: ("基本满意", "基本滿意", "Fairly satisfied"),
    2: ("不满意", "不滿意", "Dissatisfied"),
    1: ("非常不满意", "非常不滿意", "Very dissatisfied"),
}
SATISFIED = (5, 4, 3)  # what the state's 满意率 counts
FOLLOW_UP = (2, 1)  # a rating that opens a 差评整改 follow-up
FROM_THREE = {1: 5, 2: 3, 3: 1}  # the old three-level score (1 good, 2 ok, 3 bad) -> level
COMMENT_MAX = 500  # characters of a resident's comment


def level(score: Any, scale: Any) -> int:
    """The five-level score of `score` on `scale` (5, or 3 for the old three-level keys
    and records). Raises Rejected (bad_field) for anything else."""
    if isinstance(score, bool) or isinstance(scale, bool) or not isinstance(score, int) \
            or scale not in (3, 5):
        raise Rejected("bad_field", "评分为1至5（5非常满意……1非常不满意） / score is 1-5 "
                                    "(5 very satisfied ... 1 very dissatisfied), scale 5 "
                                    "(or 3: 1 good, 2 ok, 3 bad)")
    if scale == 3:
        if score not in FROM_THREE:
            raise Rejected("bad_field", "三级评分为1满意、2基本满意或3不满意 / a three-level "
                                        "score is 1 good, 2 ok or 3 bad")
        return FROM_THREE[score]
    if score not in LEVELS:
        raise Rejected("bad_field", "评分为1至5（5非常满意……1非常不满意） / score is 1-5 "
                                    "(5 very satisfied ... 1 very dissatisfied)")
    return score


def satisfaction(scores: Iterable[int]) -> tuple[dict[int, int], float | None]:
    """Counts by level (5..1) and the state's 满意率: (5 + 4 + 3) / all; None if none."""
    counts = dict.fromkeys(sorted(LEVELS, reverse=True), 0)
    for s in scores:
        counts[s] += 1
    total = sum(counts.values())
    return counts, (sum(counts[k] for k in SATISFIED) / total if total else None)


def rate(state: CentreState, cmd: c.Rate, now: float) -> list[Effect]:
    """The operation `Rate`, tied to the service it rates: the ticket this window is
    serving, or one it completed at most `rating_window` ago; once per ticket."""
    w = state.known_window(cmd.window)
    score = level(cmd.score, cmd.scale)
    if not isinstance(cmd.comment, str) or len(cmd.comment) > COMMENT_MAX:
        raise Rejected("bad_field", f"意见最多{COMMENT_MAX}字 / a comment is text of at most "
                                    f"{COMMENT_MAX} characters")
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
    state.ratings[t.id] = Rating(t.id, score, w.number, w.clerk, now)
    effects: list[Effect] = [RatingGiven(t.id, score, w.number, w.clerk)]
    if score in FOLLOW_UP and not cmd.before_followups:
        effects.append(followups.open_for(state, t, score, w.number, w.clerk,
                                          cmd.comment.strip(), now))
    return effects


def served_window(t: Ticket) -> int | None:
    """The window that serves or served ticket `t` (what a rating of it is tied to), or
    None when it was not served (the phone page names no window: it asks this)."""
    if t.state is TicketState.SERVING:
        return t.window
    if t.state is TicketState.DONE:
        return next((h[2] for h in reversed(t.history) if h[1] == TicketState.DONE.value),
                    None)
    return None


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
