"""Booking (预约) pages: a resident books an item, a day and a slot on the phone (H5) or the
kiosk, gets a booking code and its QR, cancels with the code, and checks in at the kiosk by
scanning the QR (the kiosk's scanner types its text into a field).

    GET  /book[?item=ID][&device=KIOSK]   the page: item, day, a free slot, who you are
    GET  /book/slots.json?item=&day=YYYYMMDD
        200 {item, day, days: [{day, label}], slots: [{slot, time, free}]}
    POST /book           {item, slot, phone, id_number?} | {item, slot, id_number, phone?}
                         | {item, slot, device, card}
        200 {code, qr_text, qr, item, day, time, checkin_from, checkin_to}
    POST /book/cancel    {code}                              200 {cancelled: code}
    GET  /book/notices.json?code=   the booking's reminders shown on its page (the phone
        page's notice channel, hub/core/reminders.py): 200 {booking, state, notices}
    GET  /kiosk/checkin[?device=KIOSK]    the kiosk's check-in page (a field for the scanner)
    POST /kiosk/checkin  {device, code}
        200 {id, number, late, appointment_at, url}   the ticket, printed on that device
        409 too_early {come_back: "HH:MM"} / not_today / already_checked_in / ...

Errors are JSON {code, msg}: msg in the page's language (zh-CN, zh-TW, en); the core's
refusals (hub/core/booking.py) carry all three and the one asked for is picked here, this
adapter's own are gettext strings (locale/*/LC_MESSAGES/booking.po). A refusal changes
nothing: the core decides before anything is journaled.

Who books: a mobile number, parsed and never kept in clear (hub/notify/phones.py: its keyed
fingerprint, "ph:<hmac>", is the resident token, as for remote takes; sealed, it is kept for
the booking's reminders, hub/core/reminders.py, and purged with retention); at the kiosk also the
card's resident token as the kiosk's card reader gives it (never the ID number). On the
phone the resident may also type their ID number (hub/web/resident_id.py): the hub hashes
it at once into the token their card gives at a kiosk (the nodes' card key, [stations]
card_key_file) and that token is the booking's resident, so tapping the card checks the
booking in; the number itself is dropped, never journaled or kept. The codes
are signed under the app's `booking_key` (derived from the centre's secret by serve()): a
forged one is refused before the core sees it, a used one by the core.

Rate limits (hub/web/ratelimit.py, [booking.limits]): every booking, cancel and check-in
try takes a token of its client address (a successful check-in gives it back: a kiosk
checks in many residents from one address, and what needs slowing there is guessing); a
booking also takes one of its resident token, a check-in one of the booking's resident.
Refused: 429 with Retry-After, nothing decided.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..core import booking as bk
from ..core import commands as c
from ..core.model import Priority
from ..core.rejected import Rejected
from ..notify.dispatcher import page_notices
from ..notify.phones import PhoneError, parse_phone
from . import i18n, resident_id
from .pubkit import qr_svg, ticket_url
from .ratelimit import BookingLimits, Limiter, retry_after
from .site import Site

log = logging.getLogger("onewindow.hub.web")

KIOSK_COOKIE = "ow_kiosk"  # the kiosk pages' device cookie (hub/web/kiosk.py)
KIOSK_ROLES = ("kiosk", "box")
PHONE_LANG = {"zh_CN": "zh-CN", "zh_TW": "zh-TW", "en": "en"}
_CARD = re.compile(r"^[A-Za-z0-9:_.=+/-]{8,128}$")
_DAY = re.compile(r"^\d{8}$")
# Core refusals that say the request itself is malformed (else 409: the state says no).
BAD_REQUEST = ("bad_code", "bad_slot", "bad_date", "bad_resident", "bad_field")


def _(message: str) -> str:
    """Marks a msgid for `pybabel extract`; translated in `Booking._say`."""
    return message


MESSAGES = {  # this adapter's refusals: code -> msgid
    "bad_json": _("The request is not valid. Please reload the page."),
    "bad_field": _("Choose an item and a time, and enter a mobile number."),
    "bad_day": _("That is not a valid date."),
    "not_a_booking_day": _("Bookings are not taken for that day."),
    "unknown_item": _("No such item."),
    "not_bookable": _("This item cannot be booked here."),
    "unavailable": _("Booking is not available at this centre right now."),
    "bad_card": _("The card could not be read. Please tap it again."),
    "unknown_device": _("This kiosk is not registered at this hub."),
    "rate_limited": _("Too many tries. Please wait a moment and try again."),
    "no_code": _("Scan or enter a booking code."),
}


class Refused(Exception):
    def __init__(self, status: int, code: str, msg: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(code)
        self.status, self.code, self.msg = status, code, msg
        self.headers, self.extra = headers, extra


def in_language(message: str, lang: str) -> str:
    """A core refusal's text ("zh-CN / zh-TW / en") in the page's language."""
    parts = [p.strip() for p in message.split(" / ")]
    if len(parts) >= 3:
        return parts[("zh_CN", "zh_TW", "en").index(lang) if lang in i18n.LANGUAGES else 0]
    if len(parts) == 2:
        return parts[1] if lang == "en" else parts[0]
    return message


class Booking:
    def __init__(self, site: Site) -> None:
        self.site = site
        config = getattr(site, "config", None)
        limits = getattr(config, "booking_limits", None) or BookingLimits()
        self.by_address = Limiter(limits.address)
        self.by_resident = Limiter(limits.resident)
        self.card_key = _card_key(config)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/book", self.page, methods=["GET"]),
            Route("/book", self.book, methods=["POST"]),
            Route("/book/slots.json", self.slots),
            Route("/book/cancel", self.cancel, methods=["POST"]),
            Route("/book/notices.json", self.notices),
            Route("/kiosk/checkin", self.checkin_page, methods=["GET"]),
            Route("/kiosk/checkin", self.checkin, methods=["POST"]),
        ]

    # ---- what the pages share ---------------------------------------------------------
    @property
    def centre(self) -> Any:
        return self.site.hub.centre

    def _key(self) -> bytes | None:
        key = getattr(self.site.hub, "booking_key", None)
        return key if isinstance(key, bytes) else None

    def _vault(self) -> Any:
        return getattr(self.site.port, "phone_vault", None)

    def _device(self, request: Request, given: Any = None) -> str | None:
        dev = given if given is not None else (
            request.query_params.get("device") or request.cookies.get(KIOSK_COOKIE))
        d = self.site.hub.registry.get(dev) if isinstance(dev, str) else None
        return dev if d is not None and d.spec.role in KIOSK_ROLES else None

    def bookable(self) -> list[Any]:
        """Items a resident can book here: served by a configured window, with capacity."""
        c_ = self.centre
        return [i for i in c_.catalog.items.values()
                if i.id in c_._servable and bk.capacity(c_, i.line) > 0]

    def _say(self, lang: str, code: str) -> str:
        return i18n.translations(lang).gettext(MESSAGES[code])

    async def _answer(self, request: Request, fn: Any) -> Response:
        lang = self.site.lang(request)
        try:
            response: Response = await fn(request, lang)
            return response
        except Refused as e:
            msg = e.msg if e.msg is not None else self._say(lang, e.code)
            return JSONResponse({"code": e.code, "msg": msg, **e.extra},
                                status_code=e.status, headers=e.headers)
        except Rejected as e:
            extra = {k: v for k, v in e.detail.items() if k in ("next", "come_back")}
            if "next" in extra:
                extra["next"] = [self._slot_json(n) for n in extra["next"]]
            status = 400 if e.code in BAD_REQUEST else 409
            return JSONResponse({"code": e.code, "msg": in_language(e.message, lang),
                                 **extra}, status_code=status)

    def _limit(self, limiter: Limiter, key: str) -> None:
        wait = limiter.take(key, self.site.clock())
        if wait > 0:
            log.info("booking: rate limited (%s)", "address" if limiter is self.by_address
                     else "resident")
            raise Refused(429, "rate_limited", headers={"Retry-After": retry_after(wait)})

    def _address(self, request: Request) -> str:
        return request.client.host if request.client is not None else "?"

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Refused(400, "bad_json")
        return body

    def _slot_json(self, name: str) -> dict[str, Any]:
        day, hhmm = name.split("/")[-2:]
        return {"slot": name, "day": day, "time": f"{hhmm[:2]}:{hhmm[2:]}"}

    # ---- pages ------------------------------------------------------------------------
    async def page(self, request: Request) -> Response:
        kiosk = self._device(request)
        enabled = self._key() is not None and (self._vault() is not None or kiosk is not None)
        items = self.bookable() if enabled else []
        chosen = request.query_params.get("item", "")
        if chosen not in {i.id for i in items}:
            chosen = items[0].id if items else ""
        response = self.site.render(
            request, "public/book.html", enabled=enabled, items=items, chosen=chosen,
            kiosk=kiosk, phone_ok=self._vault() is not None,
            id_ok=self.card_key is not None and kiosk is None,
            early=int(self.centre.policy.appointment_early // 60),
            grace=int(self.centre.policy.appointment_grace // 60))
        if kiosk is not None and request.query_params.get("device") == kiosk:
            response.set_cookie(KIOSK_COOKIE, kiosk, max_age=10 * 365 * 86400, samesite="lax")
        return response

    async def checkin_page(self, request: Request) -> Response:
        kiosk = self._device(request)
        if kiosk is None:
            return self.site.render(request, "public/kiosk_error.html", status=400,
                                    device=request.query_params.get("device", ""))
        response = self.site.render(request, "public/book_checkin.html", device=kiosk,
                                    enabled=self._key() is not None)
        if request.query_params.get("device") == kiosk:
            response.set_cookie(KIOSK_COOKIE, kiosk, max_age=10 * 365 * 86400, samesite="lax")
        return response

    # ---- slots ------------------------------------------------------------------------
    async def slots(self, request: Request) -> Response:
        return await self._answer(request, self._slots)

    async def _slots(self, request: Request, lang: str) -> Response:
        c_ = self.centre
        item = c_.catalog.item(request.query_params.get("item", ""))
        if item is None:
            raise Refused(404, "unknown_item")
        if item.id not in {i.id for i in self.bookable()}:
            raise Refused(409, "not_bookable")
        now = self.site.clock()
        days = bk.bookable_days(c_, now)
        raw = request.query_params.get("day", "")
        if raw:
            if not _DAY.match(raw):
                raise Refused(400, "bad_day")
            try:
                day = dt.date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
            except ValueError:
                raise Refused(400, "bad_day") from None
            if day not in days:
                raise Refused(409, "not_a_booking_day")
        else:  # the first day with a free slot
            day = next((d for d in days if any(
                t < cap for _, cap, t in bk.free_slots(c_, item.id, d, now))),
                days[0] if days else c_.calendar.local_date(now))
        slots = [{"slot": bk.slot_name(c_, item.line, s),
                  "time": f"{c_.calendar.local_time(s):%H:%M}", "free": max(0, cap - t)}
                 for s, cap, t in bk.free_slots(c_, item.id, day, now)]
        return JSONResponse({
            "item": item.id, "day": f"{day:%Y%m%d}",
            "days": [{"day": f"{d:%Y%m%d}", "label": _day_label(d, lang)} for d in days],
            "slots": slots})

    # ---- book and cancel --------------------------------------------------------------
    async def book(self, request: Request) -> Response:
        return await self._answer(request, self._book)

    async def _book(self, request: Request, lang: str) -> Response:
        key = self._key()
        if key is None:
            raise Refused(503, "unavailable")
        self._limit(self.by_address, self._address(request))
        body = await self._body(request)
        item, slot = body.get("item"), body.get("slot")
        if not isinstance(item, str) or not isinstance(slot, str):
            raise Refused(400, "bad_field")
        resident = self._resident(request, body, lang)
        self._limit(self.by_resident, resident)
        await self.site.act(c.Book(item, slot, resident, self._sealed(body),
                                   PHONE_LANG.get(lang, "zh-CN")))
        b = self.centre.bookings[f"B{self.centre.booking_serial:04d}"]  # bk.book names it
        return JSONResponse(self._confirmation(key, b, lang))

    def _resident(self, request: Request, body: dict[str, Any], lang: str) -> str:
        """The resident token: a kiosk card's token; on the phone the card token of the ID
        number typed (so a card tap checks the booking in), else the phone's fingerprint."""
        phone, card, ident = body.get("phone"), body.get("card"), body.get("id_number")
        if card is not None:
            if self._device(request, body.get("device")) is None:
                raise Refused(403, "unknown_device")
            if not isinstance(card, str) or not _CARD.match(card):
                raise Refused(400, "bad_card")
            return card
        token = None
        if ident is not None and ident != "":
            try:
                token = resident_id.token(self.card_key, ident)
            except resident_id.IdError as e:
                raise Refused(400 if e.code == "bad_id" else 409, e.code,
                              e.text(PHONE_LANG.get(lang, "zh-CN"))) from None
        if token is not None and (phone is None or phone == ""):
            return token
        vault = self._vault()
        if vault is None:
            raise Refused(503, "unavailable")
        if not isinstance(phone, str):
            raise Refused(400, "bad_field")
        try:
            fingerprint = "ph:" + str(vault.fingerprint(parse_phone(phone)))
        except PhoneError as e:
            raise Refused(400, "bad_phone", e.text(PHONE_LANG.get(lang, "zh-CN"))) from None
        return token if token is not None else fingerprint

    def _sealed(self, body: dict[str, Any]) -> str | None:
        """The phone number given (already checked by `_resident`), sealed for the
        booking's reminders (hub/core/reminders.py); None without one. Only the sealed
        token is journaled."""
        phone, vault = body.get("phone"), self._vault()
        if body.get("card") is not None or not isinstance(phone, str) or not phone.strip() \
                or vault is None:
            return None
        return str(vault.seal(parse_phone(phone)).token)

    def _confirmation(self, key: bytes, b: bk.Booking, lang: str) -> dict[str, Any]:
        c_ = self.centre
        item = c_.catalog.items[b.item]
        qr = bk.qr_text(key, c_.config.centre_id, b.code)
        early, grace = c_.policy.appointment_early, c_.policy.appointment_grace
        local = c_.calendar.local_time(b.slot)
        return {
            "code": bk.short_code(key, c_.config.centre_id, b.code), "qr_text": qr,
            "qr": qr_svg(qr, 5), "item": _name(item.name, lang),
            "day": f"{local:%Y-%m-%d}", "time": f"{local:%H:%M}",
            "checkin_from": f"{c_.calendar.local_time(b.slot - early):%H:%M}",
            "checkin_to": f"{c_.calendar.local_time(b.slot + grace):%H:%M}"}

    async def cancel(self, request: Request) -> Response:
        return await self._answer(request, self._cancel)

    async def _cancel(self, request: Request, lang: str) -> Response:
        key = self._key()
        if key is None:
            raise Refused(503, "unavailable")
        self._limit(self.by_address, self._address(request))
        body = await self._body(request)
        code = body.get("code")
        if not isinstance(code, str) or not code.strip():
            raise Refused(400, "no_code")
        name = bk.verify(key, self.centre.config.centre_id, code)
        await self.site.act(c.CancelBooking(name))
        return JSONResponse({"cancelled": code.strip().upper()})

    # ---- the booking's page notices (reminders) ----------------------------------------
    async def notices(self, request: Request) -> Response:
        return await self._answer(request, self._notices)

    async def _notices(self, request: Request, lang: str) -> Response:
        key = self._key()
        if key is None:
            raise Refused(503, "unavailable")
        # Asked every half minute by an open confirmation page: only the tries that fail
        # (a guessed or forged code) count against the address, as at the kiosk.
        self._limit(self.by_address, self._address(request))
        code = request.query_params.get("code", "")
        if not code.strip():
            raise Refused(400, "no_code")
        name = bk.verify(key, self.centre.config.centre_id, code)
        b = self.centre.bookings.get(name)
        if b is None:
            raise Rejected("unknown_booking", "没有此预约 / 沒有此預約 / no such booking")
        self.by_address.give_back(self._address(request), self.site.clock())
        return JSONResponse({"booking": name, "state": b.state,
                             "notices": page_notices(self.site.hub, name)})

    # ---- check-in at the kiosk --------------------------------------------------------
    async def checkin(self, request: Request) -> Response:
        return await self._answer(request, self._checkin)

    async def _checkin(self, request: Request, lang: str) -> Response:
        key = self._key()
        if key is None:
            raise Refused(503, "unavailable")
        self._limit(self.by_address, self._address(request))
        body = await self._body(request)
        device = self._device(request, body.get("device"))
        if device is None:
            raise Refused(403, "unknown_device")
        code = body.get("code")
        if not isinstance(code, str) or not code.strip():
            raise Refused(400, "no_code")
        name = bk.verify(key, self.centre.config.centre_id, code)
        held = self.centre.bookings.get(name)
        if held is not None:
            self._limit(self.by_resident, held.resident)
        await self.site.act(c.CheckIn(booking=name, source=device))
        # A kiosk checks in many residents from one address: only the tries that fail
        # (a guessed or wrong code) count against it.
        self.by_address.give_back(self._address(request), self.site.clock())
        b = self.centre.bookings[name]
        t = self.centre.tickets[b.ticket]
        late = t.priority is not Priority.APPOINTMENT
        log.info("booking %s checked in: ticket %s%s", name, t.number,
                 " (late: a normal ticket)" if late else "")
        return JSONResponse({
            "id": t.id, "number": t.number, "late": late,
            "slot": f"{self.centre.calendar.local_time(b.slot):%H:%M}",
            "item": _name(self.centre.catalog.items[b.item].name, lang),
            "url": ticket_url(self.site, request, t.id), "device": device})


def _card_key(config: Any) -> bytes | None:
    """The nodes' card key ([stations] card_key_file), read once; None without it (the
    page then does not offer the ID number). A key file that cannot be read is said in
    the log and the field is not offered: bookings by phone still work."""
    stations = getattr(config, "stations", None)
    if stations is None:
        return None
    try:
        key = stations.card_key()
    except ValueError as e:
        log.warning("booking: no check-in by ID card: %s", e)
        return None
    return key if isinstance(key, bytes) else None


def _name(text: Any, lang: str) -> str:
    if lang == "zh_TW":
        return str(text.traditional)
    return str(text.zh if lang == "zh_CN" or not text.en else text.en)


_WEEK = {"zh_CN": "一二三四五六日", "zh_TW": "一二三四五六日"}


def _day_label(d: dt.date, lang: str) -> str:
    if lang in _WEEK:
        return f"{d.month}月{d.day}日 周{_WEEK[lang][d.weekday()]}" if lang == "zh_CN" \
            else f"{d.month}月{d.day}日 週{_WEEK[lang][d.weekday()]}"
    return f"{d:%a} {d.day} {d:%b}"


def routes(site: Site) -> list[BaseRoute]:
    return Booking(site).routes()
