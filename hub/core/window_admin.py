"""Staffing a window: open it (or change its clerk), close it, pause and resume it, and
set what it serves. Opening, closing and new skills change the reach (reach.py); tickets
that lose every window are reported `Unreachable`.
"""

from __future__ import annotations

from . import commands as c
from .desk import PAUSE_REASONS
from .effects import Effect, QueueChanged, WindowChanged
from .model import Window, WindowState
from .reach import expand_skills
from .rejected import Rejected
from .state import CentreState


def open_window(state: CentreState, cmd: c.OpenWindow, now: float) -> list[Effect]:
    w = state.known_window(cmd.window)
    if w.state is not WindowState.CLOSED:
        if cmd.clerk and cmd.clerk != w.clerk:
            w.clerk = cmd.clerk  # a shift change at an open window
            return [WindowChanged(w.number)]
        raise Rejected("already_open", f"{w.number}号窗口已开放 / window {w.number} is open")
    w.state, w.clerk, w.since = WindowState.IDLE, cmd.clerk, now
    state._update_reach(w)
    return [WindowChanged(w.number), QueueChanged()]


def close_window(state: CentreState, cmd: c.CloseWindow, now: float) -> list[Effect]:
    w = state.known_window(cmd.window)
    if w.state is WindowState.CLOSED:
        raise Rejected("window_closed", f"{w.number}号窗口未开放 / window {w.number} is closed")
    _require_free(w)
    before = {u.id for u in state.unreachable()}
    w.state, w.clerk, w.since, w.pause_reason = WindowState.CLOSED, None, now, None
    # Its own queue (tickets transferred to it) goes back to every window that serves
    # their items, in their place: nobody waits for a window that is gone.
    for t in [t for t in state.queue if t.target_window == w.number]:
        state.queue.retarget(t, None)
        t.history.append((now, "rerouted", w.number))
    state._update_reach(w)
    return [WindowChanged(w.number), QueueChanged(), *state.newly_unreachable(before)]


def pause(state: CentreState, cmd: c.Pause, now: float) -> list[Effect]:
    reason = cmd.reason
    if reason and reason not in PAUSE_REASONS:
        raise Rejected("bad_reason", f"未知的暂停原因 {reason!r} / 未知的暫停原因 / "
                                     f"unknown pause reason {reason!r}: one of "
                                     f"{', '.join(PAUSE_REASONS)}")
    w = state.active_window(cmd.window)
    _require_free(w)
    w.state, w.since, w.pause_reason = WindowState.PAUSED, now, reason or ""
    return [WindowChanged(w.number)]


def resume(state: CentreState, cmd: c.Resume, now: float) -> list[Effect]:
    w = state.known_window(cmd.window)
    if w.state is not WindowState.PAUSED:
        raise Rejected("not_paused",
                       f"{w.number}号窗口未暂停 / window {w.number} is not paused")
    w.state, w.since, w.pause_reason = WindowState.IDLE, now, None
    return [WindowChanged(w.number)]


def set_skills(state: CentreState, cmd: c.SetSkills, now: float) -> list[Effect]:
    w = state.known_window(cmd.window)
    skills = expand_skills(state.catalog, cmd.skills)
    if not skills:
        raise Rejected("bad_skills", "a window needs at least one item")
    before = {u.id for u in state.unreachable()}
    w.skills = skills
    state._refresh_reach()
    return [WindowChanged(w.number), QueueChanged(), *state.newly_unreachable(before)]


def _require_free(w: Window) -> None:
    if w.ticket is not None:
        raise Rejected("window_busy", f"请先办结当前号 / finish the current ticket "
                                      f"at window {w.number} first")
