"""A device's event, decoded and checked (inbound.py), as the core command it asks for: the
body of its journal record. Who may ask what is decided here (a keypad cannot take a
ticket, a device speaks for its own window only); what the command then does is the core's.
"""

from __future__ import annotations

from typing import Any

from ..core import commands as c
from ..core import help_requests
from ..core.booking import verify
from ..core.model import WindowState
from ..core.pickup import (
    MAX_CASES,
    READY,
    PickupTicket,
    cases_of_ticket,
    ready_cases,
    verify_code,
)
from ..core.rejected import Rejected
from ..devices import Device
from .state import AppState

WINDOW_ROLES = ("keypad", "node", "led")
TICKET_ROLES = ("box", "kiosk", "node")


def to_command(app: AppState, dev: Device, msg: dict[str, Any]) -> dict[str, Any]:
    """The record body of event `msg` of `dev`. Raises Rejected (nothing changed)."""
    typ, role = msg["type"], dev.spec.role
    if typ in ("take", "reprint"):
        if role not in TICKET_ROLES:
            raise Rejected("not_allowed", f"a {role} cannot issue tickets")
        if typ == "reprint":
            return c.Reprint(msg["ticket"], source=dev.spec.id).to_record()
        return c.TakeTicket(
            msg["item"], priority=msg.get("priority", "normal"),
            resident=msg.get("resident"), appointment_at=msg.get("appointment_at"),
            extra_items=tuple(msg.get("items", ())), source=dev.spec.id,
            number=msg.get("number"), taken_at=msg.get("taken_at"),
            request=msg["seq"], supersedes=msg.get("for_seq"),
        ).to_record()
    if typ == "checkin":  # a booking's check-in: answered like a take (a print)
        return _checkin(app, dev, msg)
    if typ == "pickup":  # a ready case's pick-up ticket: answered like a take (a print)
        return _pickup(app, dev, msg)
    window = _window_of(dev, msg)
    if typ == "rate":  # the core decides (Centre._rate); the record names the ticket's id
        t = app.centre.find_ticket(msg["ticket"])
        # `scale` absent: a three-level device (1 good, 2 ok, 3 bad; core/ratings.py)
        rate = c.Rate(window, t.id if t is not None else msg["ticket"], msg["score"],
                      msg.get("scale", 3))
        # `clerk` keeps the record as readable as before (journal readers, old tools);
        # the core names the clerk itself and a replay ignores this one.
        return {**rate.to_record(), "clerk": app.centre.windows[window].clerk}
    if typ == "help":  # the department asked for, else the current ticket's item's
        dept = msg.get("department") or help_requests.default_department(app.centre, window)
        return help_requests.Help(window, app.centre.windows[window].clerk,
                                  department=dept).to_record()
    if typ == "scan":
        return _scan(app, window, msg["ticket"])
    if typ == "card":
        handed = _hand_over(app, window, msg["resident"])
        if handed is not None:
            return handed
        return {"op": "card", "window": window, "resident": msg["resident"]}
    if typ == "transfer":
        return c.Transfer(window, msg.get("to_window"), msg.get("to_item"),
                          msg.get("note", "")).to_record()
    if typ == "skip":
        return c.Skip(window, msg.get("requeue")).to_record()
    if typ == "open":
        return c.OpenWindow(window, msg.get("clerk")).to_record()
    simple = {"close": c.CloseWindow, "call": c.CallNext, "recall": c.Recall, "start": c.Start,
              "complete": c.Complete, "pause": c.Pause, "resume": c.Resume}
    return simple[typ](window).to_record()


def _scan(app: AppState, window: int, ref: str) -> dict[str, Any]:
    """A ticket's QR code read at a window: start serving it if it was called here."""
    t = app.centre.find_ticket(ref.rstrip("/").rsplit("/", 1)[-1])
    if t is None:
        raise Rejected("unknown_ticket", f"不是今天的号 / {ref!r} is not a ticket of today")
    w = app.centre.windows[window]
    if w.ticket != t.id:
        raise Rejected("not_called_here", f"{t.number}未叫到{window}号窗口 / {t.number} is "
                                          f"not called to window {window} ({t.state.value})",
                       ticket=t.number)
    if w.state is WindowState.CALLING:
        return c.Start(window).to_record()
    return {"op": "scan", "window": window, "ticket": t.id}


def _checkin(app: AppState, dev: Device, msg: dict[str, Any]) -> dict[str, Any]:
    """A booking code (scanned QR or typed) or a card's resident token, from a kiosk or a
    box: the code's signature is checked here (the core never sees a key)."""
    if dev.spec.role not in TICKET_ROLES:
        raise Rejected("not_allowed", f"a {dev.spec.role} cannot check bookings in")
    code, resident = msg.get("code"), msg.get("resident")
    if (code is None) == (resident is None):
        raise Rejected("bad_field", "签到需要预约码或身份证 / 簽到需要預約碼或身分證 / check in "
                                    "with a booking code or a card (one of them)")
    booking = None
    if code is not None:
        if app.booking_key is None:
            raise Rejected("no_booking_key", "本中心未启用预约码 / 本中心未啟用預約碼 / booking "
                                             "codes are not set up at this hub")
        booking = verify(app.booking_key, app.centre_id, code)
    return c.CheckIn(booking=booking, resident=resident, source=dev.spec.id,
                     request=msg["seq"]).to_record()


def _pickup(app: AppState, dev: Device, msg: dict[str, Any]) -> dict[str, Any]:
    """A case code (the slip's QR or typed) or a card's resident token, from a kiosk or a
    box: a pick-up ticket for the case, or for all the card holder's ready cases
    (hub/core/pickup.py). The code's signature is checked here."""
    if dev.spec.role not in TICKET_ROLES:
        raise Rejected("not_allowed", f"a {dev.spec.role} cannot issue pick-up tickets")
    code, resident = msg.get("code"), msg.get("resident")
    if (code is None) == (resident is None):
        raise Rejected("bad_field", "取件需要取件码或身份证 / 取件需要取件碼或身分證 / pick up "
                                    "with a case code or a card (one of them)")
    item = app.centre.config.pickup_item
    if not item:
        raise Rejected("no_pickup", "本中心未设置统一出件窗口 / 本中心未設置統一出件窗口 / no "
                                    "pick-up window is set up here")
    if code is not None:
        case = verify_code(app.booking_key, app.centre_id, code)
        return PickupTicket((case,), item, "code", source=dev.spec.id,
                                   request=msg["seq"]).to_record()
    cases = ready_cases(app.centre, str(resident))[:MAX_CASES]
    if not cases:
        raise Rejected("no_ready_case", "没有可领取的办件 / 沒有可領取的辦件 / nothing of this "
                                        "card is ready for pick-up")
    return PickupTicket(tuple(cases), item, "card", resident=resident,
                               source=dev.spec.id, request=msg["seq"]).to_record()


def _hand_over(app: AppState, window: int, resident: str) -> dict[str, Any] | None:
    """A card tapped at a window calling or serving a pick-up ticket signs the hand-over
    of its next ready case off (`handed_over` by "card"); a card not the case's is
    refused. None: no pick-up ticket there, the tap is the usual look-up."""
    centre = app.centre
    w = centre.windows[window]
    cases = [centre.cases[k] for k in cases_of_ticket(centre, w.ticket or "")
             if k in centre.cases and centre.cases[k].state == READY]
    if not cases:
        return None
    mine = [k for k in cases if k.resident == resident]
    if not mine:
        raise Rejected("not_your_case", "这张卡不是该承诺件申请人的 / 這張卡不是該承諾件申請人"
                                        "的 / this card is not the applicant's of the case")
    return c.CaseUpdate(mine[0].id, "handed_over", by="card").to_record()


def _window_of(dev: Device, msg: dict[str, Any]) -> int:
    if dev.spec.role not in WINDOW_ROLES or dev.spec.window is None:
        raise Rejected("not_allowed", f"device {dev.spec.id} is not at a window")
    asked = msg.get("window")
    if asked is not None and asked != dev.spec.window:
        raise Rejected("wrong_window", f"device {dev.spec.id} belongs to window "
                                       f"{dev.spec.window}, not {asked}")
    return dev.spec.window
