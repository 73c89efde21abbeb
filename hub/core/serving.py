"""A window and its resident: call the next ticket (who is next is policy.choose's), call
again, skip a resident who did not come, transfer to another window or item, start and
complete the service. `finish` ends a service for every operation that does.
"""

from __future__ import annotations

from collections.abc import Callable

from . import commands as c
from .cases import open_case
from .catalog import COMPREHENSIVE
from .effects import Effect, QueueChanged, TicketCalled, WindowChanged
from .model import Ticket, TicketState, Window, WindowState
from .policy import choose
from .rejected import Rejected
from .state import CentreState


def call_next(state: CentreState, cmd: c.CallNext, now: float) -> list[Effect]:
    w = state.active_window(cmd.window)
    effects: list[Effect] = []
    if w.ticket is not None:
        # Keypads have one "next" key: pressing it means the current resident is done.
        effects += finish(state, state.current_ticket(w), TicketState.DONE, now, w)
    t = _pick(state, w, now)
    if t is None:
        if not effects:
            raise Rejected("queue_empty", "暂无等候 / nobody is waiting for this window")
        return [*effects, QueueChanged()]
    state.queue.remove(t)
    t.window = w.number
    t.mark(now, TicketState.CALLED, w.number)
    w.ticket, w.state, w.since = t.id, WindowState.CALLING, now
    return [*effects, TicketCalled(t.id, w.number), WindowChanged(w.number), QueueChanged()]


def recall(state: CentreState, cmd: c.Recall, now: float) -> list[Effect]:
    w = state.active_window(cmd.window)
    t = state.current_ticket(w)
    t.recalls += 1
    t.history.append((now, "recalled", w.number))
    return [TicketCalled(t.id, w.number, recall=True)]


def skip(state: CentreState, cmd: c.Skip, now: float) -> list[Effect]:
    w = state.active_window(cmd.window)
    t = state.current_ticket(w)
    if t.state is not TicketState.CALLED:
        raise Rejected("already_serving", f"{t.number}已在办理 / {t.number} is being served")
    requeue = state.policy.requeue_skipped if cmd.requeue is None else cmd.requeue
    if requeue and not t.requeued:
        t.history.append((now, "skipped", w.number))
        t.requeued = True
        w.ticket, w.state, w.since = None, WindowState.IDLE, now
        _requeue(state, t, now, order_key=now)  # back of the line, once
        return [WindowChanged(w.number), QueueChanged()]
    return [*finish(state, t, TicketState.NO_SHOW, now, w), QueueChanged()]


def transfer(state: CentreState, cmd: c.Transfer, now: float) -> list[Effect]:
    w = state.active_window(cmd.window)
    t = state.current_ticket(w)
    if (cmd.to_window is None) == (cmd.to_item is None):
        raise Rejected("bad_transfer", "transfer needs exactly one of to_window or to_item")
    before = {u.id for u in state.unreachable()}
    if cmd.to_window is not None:
        target = state.known_window(cmd.to_window)
        if target.number == w.number:
            raise Rejected("bad_transfer", "cannot transfer a ticket to its own window")
        if target.state is WindowState.CLOSED:
            raise Rejected("window_closed", f"{target.number}号窗口未开放 / "
                                            f"window {target.number} is closed")
        t.target_window = target.number
    else:
        item = state.known_item(cmd.to_item or "")
        if item.id not in state._servable:
            raise Rejected("not_served_here", f"no window here serves {item.id}")
        if t.resident:
            held = state.active_by_resident.get((t.resident, item.id))
            if held is not None and held != t.id:
                number = state.tickets[held].number
                raise Rejected("already_has_ticket",
                               f"该居民已有{number}号办理此事项 / the resident already "
                               f"holds ticket {number} for {item.id}", ticket=number)
            state.active_by_resident.pop((t.resident, t.item), None)
            state.active_by_resident[(t.resident, item.id)] = t.id
        t.item, t.target_window = item.id, None
    t.note = cmd.note
    t.history.append((now, "transferred", w.number))
    w.ticket, w.state, w.since = None, WindowState.IDLE, now
    # It keeps its number and its place: it has waited once already.
    _requeue(state, t, now, order_key=t.issued_at)
    return [WindowChanged(w.number), QueueChanged(), *state.newly_unreachable(before)]


def start(state: CentreState, cmd: c.Start, now: float) -> list[Effect]:
    w = state.active_window(cmd.window)
    t = state.current_ticket(w)
    if t.state is TicketState.SERVING:
        raise Rejected("already_serving", f"{t.number}已在办理 / {t.number} is being served")
    t.mark(now, TicketState.SERVING, w.number)
    w.state, w.since = WindowState.SERVING, now
    return [WindowChanged(w.number)]


def complete(state: CentreState, cmd: c.Complete, now: float) -> list[Effect]:
    w = state.active_window(cmd.window)
    return finish(state, state.current_ticket(w), TicketState.DONE, now, w)


def finish(state: CentreState, t: Ticket, end: TicketState, now: float, w: Window
           ) -> list[Effect]:
    """Ticket `t` leaves window `w` done or a no-show; a promised item done opens its case."""
    t.mark(now, end, w.number)
    t.window = None
    if t.resident:
        state.active_by_resident.pop((t.resident, t.item), None)
    w.ticket, w.state, w.since = None, WindowState.IDLE, now
    effects: list[Effect] = [WindowChanged(w.number)]
    # (returned for materials, prereview.py: nothing was accepted, no case opens)
    if (end is TicketState.DONE and not t.returned
            and state.catalog.items[t.item].kind == "promised"):
        effects.append(open_case(state, t, now))
    return effects


def _requeue(state: CentreState, t: Ticket, now: float, order_key: float) -> None:
    t.state, t.window, t.order_key = TicketState.WAITING, None, order_key
    t.history.append((now, TicketState.WAITING.value, None))
    state.queue.add(t)


def _eligible(w: Window) -> Callable[[Ticket], bool]:
    skills, number = w.skills, w.number

    def ok(t: Ticket) -> bool:
        if t.target_window is not None:
            return t.target_window == number
        return t.item in skills

    return ok


def _pick(state: CentreState, w: Window, now: float) -> Ticket | None:
    ok = _eligible(w)
    if w.kind != COMPREHENSIVE:
        # A specialised window serves its own items first, then helps out when idle.
        items, kind = state.catalog.items, w.kind

        def own(t: Ticket) -> bool:
            return ok(t) and kind in items[t.item].window_kinds

        t, streak = choose(state.queue, own, now, state.policy, state.streak)
        if t is not None:
            state.streak = streak
            return t
    t, state.streak = choose(state.queue, ok, now, state.policy, state.streak)
    return t
