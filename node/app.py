"""The window node: what each input means, as protocol events.

* keys: call, recall, skip, transfer, pause (toggles resume), help -> window events;
  rate_5 .. rate_1 (the five levels, 5 非常满意 .. 1 非常不满意) or the three keys
  rate_good / rate_fair / rate_poor (-> 5, 3, 1) -> `rate` of the ticket just served, with the clerk
  (the hub fills the clerk in from the window); capture -> a document-camera page
  uploaded to the hub against the current ticket.
* card tapped: at a window, `card` (the hub answers with the resident's tickets and open
  cases; at a window calling a pick-up ticket it signs the hand-over of the card's ready
  case off); at a kiosk, a booking's `checkin`, else `pickup` of the card's cases ready
  for pick-up, else `take` for the kiosk's item, tied to the resident, and the hub's
  `print` command goes to the kiosk's printer. A resident ID card of someone `[kiosk]
  priority_age` (60) or older takes a priority ticket: the age is worked out here from the
  birth date in the number against the node's own date, and only `priority: "priority"`
  is sent (never the birth date, the age or the number).
* ticket scanned: `scan` (the hub starts serving it if it was called here).

Inputs are injected (`Inputs`), so tests drive the real code with gpiozero's MockFactory,
pcscd with a virtual card, recorded evdev events and a fake camera source.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ..protocol import ow_protocol as proto
from .card import priority_class
from .config import NodeConfig
from .keys import KeyBridge, Lamps
from .link import NodeLink, Reply
from .scanner import ticket_ref

log = logging.getLogger("onewindow.node")

RATE_WINDOW_S = 180.0  # a served ticket may be rated this long after it left the window
# Rating keys -> the national five levels (好差评), always sent with scale 5: a five-key
# layout rate_5 非常满意 .. rate_1 非常不满意, or the three keys mapped onto it, good -> 5
# 非常满意, fair -> 3 基本满意, poor -> 1 非常不满意 (hub/core/ratings.py FROM_THREE).
SCORES = {"rate_5": 5, "rate_4": 4, "rate_3": 3, "rate_2": 2, "rate_1": 1,
          "rate_good": 5, "rate_fair": 3, "rate_poor": 1}
WINDOW_EVENTS = ("call", "recall", "skip", "transfer", "pause", "help")


# A booking of this card that cannot check in now (protocol/README.md `checkin`): said, and
# no walk-in ticket printed in its place (too early: the booked slot is still to come).
BOOKING_REFUSALS = ("too_early", "not_today", "already_checked_in", "booking_cancelled")

class CaptureError(Exception):
    """A capture that produced no page: `alert` names a device fault for the node's status
    ("camera": unplugged or dead), None when the camera is fine (no page in view)."""

    def __init__(self, msg: str, alert: str | None = None) -> None:
        super().__init__(msg)
        self.alert = alert


def local_date() -> date:
    """Today in the node's own time zone (the centre's: a Pi is set to local time)."""
    return datetime.now().astimezone().date()


@dataclass
class Inputs:
    """The node's peripherals; any may be None (a kiosk has no keys, a node no printer)."""

    bridge: KeyBridge | None = None
    lamps: Lamps | None = None
    cards: AsyncIterable[Any] | None = None  # card.CardEvent stream (a card.CardReader)
    scans: AsyncIterator[str] | None = None  # scanner.scans(...)
    capture: Callable[[], Any] | None = None  # async () -> (bytes, content_type, name)
    printer: Any | None = None  # has write(bytes) (python-escpos printer or a file)
    upload: Callable[..., Any] | None = None  # async (ticket, name, data, content_type)
    token: Callable[[str | bytes], str] | None = None  # card identity -> resident token
    today: Callable[[], date] = local_date  # a card holder's age is on this date


class NodeApp:
    def __init__(self, cfg: NodeConfig, link: NodeLink, inputs: Inputs) -> None:
        self.cfg, self.link, self.io = cfg, link, inputs
        self.state: str | None = None  # this window's state, from its retained display
        self.ticket: str | None = None  # its current ticket number
        self.to_rate: tuple[str, float] | None = None  # (ticket, left the window at)
        self.resident_view: dict[str, Any] | None = None  # the last card's tickets and cases
        self.city_cases: list[dict[str, Any]] | None = None  # the last kiosk card's, city-wide
        self.log: list[dict[str, Any]] = []  # what happened, newest last (bounded)
        if cfg.window is not None:
            link.follow(proto.display_topic(cfg.centre, cfg.window), self._on_display)
        link.on_command("show", self._on_show)
        link.on_command("print", self._on_print)

    async def run(self) -> None:
        tasks = [self.link.run()]
        if self.io.bridge is not None:
            tasks.append(self._keys())
        if self.io.cards is not None:
            tasks.append(self._each(self.io.cards, self.card, "card event"))
        if self.io.scans is not None:
            tasks.append(self._each(self.io.scans, self.scan, "scan"))
        await asyncio.gather(*tasks)

    def note(self, what: str, **fields: Any) -> None:
        entry = {"what": what, "at": time.time(), **fields}
        self.log.append(entry)
        del self.log[:-200]
        log.info("%s: %s %s", self.cfg.id, what, fields)

    def _verdict(self, what: str, reply: Reply | None, **fields: Any) -> bool:
        ok = reply is not None and reply[0] == "res"
        if reply is None:
            self.note(what, result="timeout", **fields)
        else:
            self.note(what, result=reply[0], reply=reply[1], **fields)
        if self.io.lamps is not None:
            self.io.lamps.show(ok)
        return ok

    # ---- the window's state ------------------------------------------------------------
    async def _on_display(self, payload: bytes) -> None:
        if payload:
            self._window(proto.decode("display", payload))

    async def _on_show(self, msg: dict[str, Any]) -> tuple[bool, str | None]:
        self._window(msg)
        return True, None

    def _window(self, msg: dict[str, Any]) -> None:
        if msg.get("window") != self.cfg.window:
            return
        ticket = msg.get("ticket")
        if self.ticket and ticket != self.ticket:
            self.to_rate = (self.ticket, time.monotonic())  # the resident just left
        self.state, self.ticket = msg["state"], ticket

    # ---- keys --------------------------------------------------------------------------
    async def _keys(self) -> None:
        assert self.io.bridge is not None
        while True:
            key = await self.io.bridge.next()
            try:
                await self.key(key)
            except Exception:  # one bad press must not end the node's key handling
                log.exception("%s: key %s failed", self.cfg.id, key)

    async def key(self, key: str) -> bool:
        if key in SCORES:
            return await self.rate(SCORES[key])
        if key == "capture":
            return await self.capture()
        if key not in WINDOW_EVENTS:
            self.note("key", key=key, result="unknown")
            return False
        if not self.link.online():
            return self._verdict(key, None, offline=True)
        fields: dict[str, Any] = {}
        typ = key
        if key == "pause" and self.state == "paused":
            typ = "resume"
        elif key == "transfer" and self.cfg.transfer_to is not None:
            fields["to_window"] = self.cfg.transfer_to
        elif key == "call" and self.state == "closed":
            # The first call of a shift opens the window, with this node's clerk.
            opening: dict[str, Any] = {"clerk": self.cfg.clerk} if self.cfg.clerk else {}
            await self.link.event("open", **opening)
        return self._verdict(typ, await self.link.event(typ, **fields))

    async def rate(self, score: int) -> bool:
        """The resident's rating of the service just given: the ticket being served, or
        the one that left this window in the last RATE_WINDOW_S seconds."""
        ticket = None
        if self.ticket and self.state == "serving":
            ticket = self.ticket
        elif self.to_rate and time.monotonic() - self.to_rate[1] < RATE_WINDOW_S:
            ticket = self.to_rate[0]
        if ticket is None:
            return self._verdict("rate", None, reason="no ticket to rate")
        ok = self._verdict("rate", await self.link.event("rate", ticket=ticket, score=score,
                                                         scale=5),
                           ticket=ticket, score=score)
        if ok and self.to_rate and self.to_rate[0] == ticket:
            self.to_rate = None  # one rating per service
        return ok

    # ---- document camera -----------------------------------------------------------------
    async def capture(self) -> bool:
        """Photograph the resident's paper, find and straighten the page, store it at the
        hub with the current ticket (and so with its case)."""
        if self.io.capture is None or self.io.upload is None:
            return self._verdict("capture", None, reason="no camera")
        if not self.ticket:
            return self._verdict("capture", None, reason="no current ticket")
        ticket = self.ticket
        try:
            data, content_type, name = await self.io.capture()
        except CaptureError as e:
            if e.alert:
                await self.link.set_alerts(sorted({*self.link.alerts, e.alert}))
            self.note("capture", result="failed", error=str(e), alert=e.alert)
            if self.io.lamps is not None:
                self.io.lamps.show(False)
            return False
        await self.link.set_alerts([a for a in self.link.alerts if a != "camera"])
        try:
            stored = await self.io.upload(ticket, name, data, content_type)
        except Exception as e:
            self.note("capture", result="upload", error=str(e), ticket=ticket)
            if self.io.lamps is not None:
                self.io.lamps.show(False)
            return False
        self.note("capture", result="stored", ticket=ticket, stored=stored)
        if self.io.lamps is not None:
            self.io.lamps.show(True)
        return True

    async def _each(self, source: AsyncIterable[Any], handle: Callable[[Any], Awaitable[bool]],
                    what: str) -> None:
        """Hands every card event or scan to its handler; one that fails is logged and the
        reader keeps going."""
        async for item in source:
            try:
                await handle(item)
            except Exception:
                log.exception("%s: %s failed", self.cfg.id, what)

    # ---- card reader -----------------------------------------------------------------------
    async def card(self, ev: Any) -> bool:
        if getattr(ev, "kind", "inserted") != "inserted":
            return False
        ident = ev.identity  # the card's identifier, or its contactless UID
        if ident is None or self.io.token is None:
            await self.link.set_alerts(sorted({*self.link.alerts, "card_unreadable"}))
            return self._verdict("card", None, reason=getattr(ev, "error", None)
                                 or "card has no readable number")
        await self.link.set_alerts([a for a in self.link.alerts if a != "card_unreadable"])
        resident = self.io.token(ident)  # the raw number stops here
        if self.cfg.role == "kiosk":
            # A resident who booked with this card checks in (an appointment ticket, first in
            # its slot, printed here); without a booking today the tap takes a ticket.
            # Any other answer (no booking today, a hub without bookings) takes a ticket.
            reply = await self.link.event("checkin", resident=resident)
            if reply is not None and (reply[0] == "res"
                                      or reply[1].get("code") in BOOKING_REFUSALS):
                return self._verdict("checkin", reply)
            # A result ready for pick-up (统一窗口出件): a pick-up ticket for all of this
            # card's ready cases, printed here. Nothing ready: a ticket as usual.
            reply = await self.link.event("pickup", resident=resident)
            # In a city the answer (ticket or refusal) lists the card's open cases anywhere
            # in the city (`city`: items, states, due days, centres; null when the city did
            # not answer), kept for the kiosk's screen beside what the tap printed.
            self.city_cases = reply[1].get("city") if reply is not None else None
            if reply is not None and reply[0] == "res":
                return self._verdict("pickup", reply)
            if reply is not None and reply[1].get("code") == "pickup_exists" \
                    and "ticket" in reply[1]:
                self.note("pickup", result="err", reply=reply[1])
                reply = await self.link.event("reprint", ticket=reply[1]["ticket"])
                return self._verdict("reprint", reply)
            # Only the class leaves the node: never the birth date, the age or the number.
            priority = priority_class(ev.ident, self.io.today(), self.cfg.priority_age)
            extra: dict[str, Any] = {"priority": priority} if priority else {}
            reply = await self.link.event("take", item=self.cfg.kiosk_item, resident=resident,
                                          **extra)
            if reply and reply[0] == "err" and reply[1]["code"] == "already_has_ticket" \
                    and "ticket" in reply[1]:
                # Tapping again means "I lost my slip": print the ticket they hold.
                self.note("take", result="err", reply=reply[1])
                reply = await self.link.event("reprint", ticket=reply[1]["ticket"])
                return self._verdict("reprint", reply)
            return self._verdict("take", reply, priority=priority or "normal")
        reply = await self.link.event("card", resident=resident)
        if reply is not None and reply[0] == "res":
            self.resident_view = {"tickets": reply[1].get("tickets", []),
                                  "cases": reply[1].get("cases", []),
                                  "city": reply[1].get("city")}
        return self._verdict("card", reply)

    # ---- ticket scanner --------------------------------------------------------------------
    async def scan(self, text: str) -> bool:
        ref = ticket_ref(text)
        if ref is None:
            return self._verdict("scan", None, reason="not one of our tickets",
                                 scanned=text[:40])
        return self._verdict("scan", await self.link.event("scan", ticket=ref), ticket=ref)

    # ---- kiosk printer -----------------------------------------------------------------------
    async def _on_print(self, msg: dict[str, Any]) -> tuple[bool, str | None]:
        if self.io.printer is None:
            return False, "no_printer"
        if "escpos" not in msg:
            return False, "no_escpos"
        data = base64.b64decode(msg["escpos"])
        try:
            await asyncio.to_thread(self.io.printer.write, data)
        except OSError as e:
            await self.link.set_alerts(sorted({*self.link.alerts, "printer_offline"}))
            self.note("print", result="printer", error=str(e), ticket=msg["ticket"])
            return False, "printer_offline"
        self.note("print", result="printed", ticket=msg["ticket"], bytes=len(data),
                  qr=msg.get("qr"))
        return True, None
