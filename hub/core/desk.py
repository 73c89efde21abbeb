"""The clerk's desk (issue 18): calling one waiting ticket out of turn, with a reason, and
the reasons a window pauses for.

* `CallTicket`: the clerk `by` at `window` calls waiting ticket `ticket` (its id or today's
  number) rather than the one the ordering policy would pick: a resident who came back
  with the missing materials, an elderly or disabled resident, a booking that arrived.
  The record, `{op: "call_ticket", window, ticket, reason, note, by}`, keeps why and who.
  Refused, with nothing changed, when the ticket is not waiting, when this window cannot
  serve it (sent to another window, or an item outside the window's skills), when the
  window may not call (closed, paused) or the reason is not one of `CALL_REASONS` (reason
  `other` needs a note of at most `NOTE_MAX` characters). Like `CallNext`, a ticket still
  at the window is finished first (done): the console's call key means "next resident".
  The priority streak is not touched: who the policy picks next stays its own business.
* Pause reasons (`PAUSE_REASONS`): `commands.Pause.reason`, kept on the window while it is
  paused (`Window.pause_reason`). A pause journaled without one (a keypad's key, journals
  written before reasons) has reason "" and is reported as `UNSPECIFIED`.

Codes are stable (journaled, reported); the labels are zh-CN, zh-TW and English.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from . import commands as c
from .effects import Effect, QueueChanged, TicketCalled, WindowChanged
from .model import TicketState, WindowState
from .rejected import Rejected
from .serving import finish
from .state import CentreState

# code -> (zh-CN, zh-TW, English)
CALL_REASONS: dict[str, tuple[str, str, str]] = {
    "returned_materials": ("补齐材料返回", "補齊材料返回", "Came back with the materials"),
    "elderly_disabled": ("老弱病残孕", "老弱病殘孕", "Elderly, disabled or pregnant"),
    "booking_arrived": ("预约已到", "預約已到", "Booked resident arrived"),
    "transferred_back": ("转办回本窗口", "轉辦回本窗口", "Sent back to this window"),
    "other": ("其他", "其他", "Other"),
}
PAUSE_REASONS: dict[str, tuple[str, str, str]] = {
    "lunch": ("午休用餐", "午休用餐", "Lunch"),
    "meeting": ("会议", "會議", "Meeting"),
    "training": ("培训", "培訓", "Training"),
    "system": ("系统故障", "系統故障", "System problem"),
    "other": ("其他", "其他", "Other"),
}
UNSPECIFIED = "unspecified"  # a pause journaled without a reason (keypad, older journals)
UNSPECIFIED_LABEL = ("未注明", "未註明", "Not given")
NOTE_MAX = 100  # characters of the free text beside a reason


def pause_label(code: str) -> tuple[str, str, str]:
    return PAUSE_REASONS.get(code) or UNSPECIFIED_LABEL


@dataclass(frozen=True, slots=True)
class CallTicket(c.WindowCommand):
    """Call `ticket` (id or today's number) at `window` out of turn, for `reason` (a code
    of CALL_REASONS; `note`: free text, required for "other"), by the clerk `by`."""

    op: ClassVar[str] = "call_ticket"
    ticket: str = ""
    reason: str = ""
    note: str = ""
    by: str | None = None


c.BY_OP[CallTicket.op] = CallTicket


def call_ticket(state: CentreState, cmd: CallTicket, now: float) -> list[Effect]:
    if cmd.reason not in CALL_REASONS:
        raise Rejected("bad_reason", f"未知的叫号理由 {cmd.reason!r} / 未知的叫號理由 / "
                                     f"unknown reason {cmd.reason!r}: one of "
                                     f"{', '.join(CALL_REASONS)}")
    note = cmd.note if isinstance(cmd.note, str) else ""
    if len(note) > NOTE_MAX:
        raise Rejected("bad_note", f"说明不超过{NOTE_MAX}字 / 說明不超過{NOTE_MAX}字 / "
                                   f"the note is longer than {NOTE_MAX} characters")
    if cmd.reason == "other" and not note.strip():
        raise Rejected("note_required", "选择“其他”时请写明理由 / 選擇「其他」時請寫明理由 / "
                                        "reason \"other\" needs a note")
    if not isinstance(cmd.by, str) or not cmd.by.strip():
        raise Rejected("bad_field", "未指明操作人 / 未指明操作人 / the clerk (by) is missing")
    w = state.active_window(cmd.window)
    ref = cmd.ticket
    t = state.find_ticket(ref) if isinstance(ref, str) and ref else None
    if t is None:
        raise Rejected("unknown_ticket", f"今日没有{ref}号 / 今日沒有{ref}號 / "
                                         f"no ticket {ref} today", ticket=ref)
    if t.state is not TicketState.WAITING:
        raise Rejected("not_waiting", f"{t.number}号不在等候中 / {t.number}號不在等候中 / "
                                      f"ticket {t.number} is not waiting",
                       ticket=t.number, state=t.state.value)
    if t.target_window is not None and t.target_window != w.number:
        raise Rejected("not_for_window",
                       f"{t.number}号已转至{t.target_window}号窗口 / "
                       f"{t.number}號已轉至{t.target_window}號窗口 / ticket {t.number} "
                       f"was sent to window {t.target_window}",
                       ticket=t.number, window=t.target_window)
    if t.target_window is None and t.item not in w.skills:
        raise Rejected("not_served_here",
                       f"{w.number}号窗口不办理{t.item} / {w.number}號窗口不辦理{t.item} / "
                       f"window {w.number} does not serve {t.item}",
                       ticket=t.number, item=t.item, window=w.number)
    effects: list[Effect] = []
    if w.ticket is not None:  # as CallNext: the resident at the window is done
        effects += finish(state, state.current_ticket(w), TicketState.DONE, now, w)
    state.queue.remove(t)
    t.window = w.number
    t.mark(now, TicketState.CALLED, w.number)
    w.ticket, w.state, w.since = t.id, WindowState.CALLING, now
    return [*effects, TicketCalled(t.id, w.number), WindowChanged(w.number), QueueChanged()]
