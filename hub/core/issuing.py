"""Issuing tickets: a take (a number from the hub, or the one a button box printed offline,
which voids the late ticket of the same press) and a reprint of a ticket still active.
"""

from __future__ import annotations

from . import commands as c
from .effects import Effect, QueueChanged, TicketIssued, TicketVoided, Unreachable, WindowChanged
from .model import Priority, Ticket, TicketState, WindowState
from .numbering import next_number, offline_number
from .people_ahead import count_ahead
from .prereview import review_of
from .rejected import Rejected
from .state import CentreState


def take_ticket(state: CentreState, cmd: c.TakeTicket, now: float) -> list[Effect]:
    item = state.known_item(cmd.item)
    for extra in cmd.extra_items:
        state.known_item(extra)
    try:
        priority = Priority(cmd.priority)
    except ValueError:
        raise Rejected("bad_priority", f"unknown priority class {cmd.priority!r}") from None
    if priority is Priority.APPOINTMENT and cmd.appointment_at is None:
        raise Rejected("bad_priority", "an appointment ticket needs appointment_at")
    if item.id not in state._servable:
        raise Rejected("not_served_here",
                       f"本中心无窗口办理{item.name.zh} / no window here serves {item.id}")
    replaced = _superseded(state, cmd)  # checked before anything changes
    review = review_of(state, cmd)
    if cmd.resident:
        held = state.active_by_resident.get((cmd.resident, item.id))
        if held is not None and (replaced is None or held != replaced.id):
            number = state.tickets[held].number
            raise Rejected("already_has_ticket",
                           f"您已有{number}号 / you already hold ticket {number}",
                           ticket=number)
    if cmd.number is not None:
        number, issued = offline_number(state, cmd, item.prefix, now)
    else:
        number, issued = next_number(state, item.prefix), now
    state.serial += 1
    t = Ticket(
        id=f"{state.day}-{number}", number=number, day=state.day, item=item.id,
        priority=priority, issued_at=issued, order_key=issued, serial=state.serial,
        extra_items=tuple(cmd.extra_items), resident=cmd.resident,
        appointment_at=cmd.appointment_at, source=cmd.source, request=cmd.request,
        review=review,
    )
    effects: list[Effect] = []
    if replaced is not None:
        effects += _void(state, replaced, t, now)
    t.history.append((issued, TicketState.WAITING.value, None))
    state.tickets[t.id] = t
    state.by_number[number] = t
    state.queue.add(t)
    if cmd.resident:
        state.active_by_resident[(cmd.resident, item.id)] = t.id
    effects += [TicketIssued(t.id, count_ahead(state, t, now), cmd.source), QueueChanged()]
    if not state.reach(t):
        effects.append(Unreachable((t.id,)))
    return effects


def _superseded(state: CentreState, cmd: c.TakeTicket) -> Ticket | None:
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
    for t in reversed(state.tickets.values()):  # rare: only offline tickets ask
        if t.source == cmd.source and t.request == cmd.supersedes and t.day == state.day:
            # Waiting again after a transfer, it was served once: someone holds it.
            served = any(s == TicketState.SERVING.value for _, s, _ in t.history)
            if t.state in (TicketState.WAITING, TicketState.CALLED) and not served:
                return t
            return None
    return None


def _void(state: CentreState, t: Ticket, by: Ticket, now: float) -> list[Effect]:
    window = t.window if t.state is TicketState.CALLED else None
    if t.state is TicketState.WAITING:
        state.queue.remove(t)
    effects: list[Effect] = []
    if window is not None:
        w = state.windows[window]
        if w.ticket == t.id:
            w.ticket, w.state, w.since = None, WindowState.IDLE, now
        effects.append(WindowChanged(window))
    t.window = None
    t.mark(now, TicketState.VOIDED, window)
    if t.resident and state.active_by_resident.get((t.resident, t.item)) == t.id:
        del state.active_by_resident[(t.resident, t.item)]
    return [TicketVoided(t.id, by.id, window), *effects]


def reprint(state: CentreState, cmd: c.Reprint, now: float) -> list[Effect]:
    t = state.find_ticket(cmd.ticket)
    if t is None or t.state not in (TicketState.WAITING, TicketState.CALLED):
        raise Rejected("unknown_ticket",
                       f"没有可补打的{cmd.ticket}号 / no active ticket {cmd.ticket}")
    t.history.append((now, "reprinted", None))
    ahead = count_ahead(state, t, now) if t.state is TicketState.WAITING else 0
    return [TicketIssued(t.id, ahead, cmd.source, reprint=True)]
