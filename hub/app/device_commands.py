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


def _window_of(dev: Device, msg: dict[str, Any]) -> int:
    if dev.spec.role not in WINDOW_ROLES or dev.spec.window is None:
        raise Rejected("not_allowed", f"device {dev.spec.id} is not at a window")
    asked = msg.get("window")
    if asked is not None and asked != dev.spec.window:
        raise Rejected("wrong_window", f"device {dev.spec.id} belongs to window "
                                       f"{dev.spec.window}, not {asked}")
    return dev.spec.window
