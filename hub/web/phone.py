"""The resident's phone page, opened from the ticket's QR code: /t/{ticket_id}.

Live channel "ticket", argument the ticket id, snapshot::

    {"found": true, "id": "20261123-A017", "number": "A017",
     "items": [{"zh": ..., "en": ...}, ...],
     "state": "waiting" | "called" | "serving" | "done" | "no_show" | "expired",
     "window": 3 | null, "ahead": 4 | null, "wait": 12 | null,
     "wait_lo": 8 | null, "wait_hi": 17 | null, "recalls": 0,
     "priority": false,               # true: a priority ticket (优先 beside the number)
     "can_rate": false, "rated": false}  # the service may be rated here / was rated

`wait` is the predicted wait in minutes (median of the Monte-Carlo paths, see
hub/forecast/wait.py) and `wait_lo`-`wait_hi` its 80% interval; all null when no open
window serves the ticket. The wait is refreshed every 5 s or when windows open or close
(livewait.py); state, window and people ahead follow every change.
    {"found": false}                  # not a ticket of today (or not any more)

A remote ticket's snapshot also lists the notices sent to this page, `notices`: [{"id",
"kind", "zh_CN", "zh_TW", "en"}] (hub/notify/dispatcher.py `page_notices`); phone.js shows
each once, with a sound, a vibration and a system notification where allowed.

After service (serving, or done within the policy's `rating_window`) the page offers the
five levels of the national 好差评 scale and an optional comment: POST /t/{ticket}/rate
`{"score": 1..5, "comment": "..."}` journals the core's `Rate` (scale 5) for the window
that served it; the core's refusals (rated already, too late ...) come back as 409
`{code, msg}` and change nothing. A 不满意/非常不满意 opens a follow-up for supervisors.

Who may act on a ticket: its holder. The ticket's link carries its token, `?k=` (an HMAC
of the ticket id under the centre's code key, core/signing.py), printed in its QR code and
given by the kiosk, a remote take and a check-in. /t/{ticket} without it (or with a wrong
one) shows the ticket read-only; POST /t/{ticket}/rate needs it (`k` in the query or the
JSON body): 403 `bad_token` otherwise, nothing changed. Tries are limited per client
address (RATE_LIMIT, token buckets of web/ratelimit.py): 429 `rate_limited` with
Retry-After, so ticket ids and tokens cannot be tried in bulk.

A promised item's ticket also carries its case after service, `case` (null otherwise):
{"id", "number", "state": open | returned | ready | closed, "state_zh", "state_zh_tw",
"state_en", "item", "due_day", "materials": [{zh, zh_tw, en}] (returned: what to correct,
from the catalog), "reason" (returned), "windows" (ready: the pick-up windows)}, and to
the ticket's holder (the page opened with `k`) the case code (`code`) to show or type at
the kiosk, and whether a number is kept for its notices (`phone_kept`). The holder may give
one: POST /t/{ticket}/phone `{"phone", "lang", "k"}` (sealed at once, answered masked;
403 without the token, 400 for a number that is not a mainland mobile, 409 for a case no
longer in progress). The page stays after the ticket's day while the case is held: it
follows the case ("state": "done").

Only what the printed ticket already says: no resident token, no clerk, no history, and of
priority only that it is (not why, nor who marked it).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..core import commands as c
from ..core import ratings, signing
from ..core.model import Case, Priority, Ticket, TicketState
from ..core.pickup import CaseContact
from ..core.rejected import Rejected
from ..notify.dispatcher import page_notices
from .ahead import ahead_counts
from .livewait import LiveWaits
from .pickup import case_view
from .ratelimit import Limiter, retry_after
from .ratelimit import Rate as LimitRate
from .site import Site

PACE_S = 0.5
# Rating tries per client address: a burst of 10, then 6 a minute (a family rating its
# tickets from one phone is well within; guessing tokens is not).
RATE_LIMIT = LimitRate(10, 6.0)


class Phone:
    def __init__(self, site: Site) -> None:
        self.site = site
        # One feed per watched ticket: hundreds on an ordinary day. Twice a second is still
        # "at once" on a phone.
        site.live.pace("ticket", PACE_S)
        # the waits of all watched tickets from one simulation, refreshed every 5 s
        self.waits = LiveWaits.of(site)
        self.waits.watched = self.watched
        # people ahead of all watched tickets, from one walk of the queue per state
        self._ahead: tuple[tuple[Hashable, int], dict[str, int]] | None = None
        self.rate_tries = Limiter(RATE_LIMIT)  # per client address (memory only)

    def watched(self) -> list[str]:
        return [arg for name, arg in self.site.live.feeds if name == "ticket"]

    def ahead(self, t: Ticket, now: float) -> int:
        # one walk per pass of the live flusher (live.py); tiers turn at whole seconds
        key = (self.site.live.shared_key(self.site.hub.pos), int(now))
        if self._ahead is None or self._ahead[0] != key or t.id not in self._ahead[1]:
            tickets = self.site.hub.centre.tickets
            watched = [u for u in (tickets.get(i) for i in {t.id, *self.watched()})
                       if u is not None and u.state is TicketState.WAITING]
            self._ahead = (key, ahead_counts(self.site.hub.centre, watched, now))
        return self._ahead[1][t.id]

    def routes(self) -> list[BaseRoute]:
        return [Route("/t/{ticket}", self.page),
                Route("/t/{ticket}/rate", self.rate, methods=["POST"]),
                Route("/t/{ticket}/phone", self.case_phone, methods=["POST"])]

    def snapshot(self, ticket_id: str) -> dict[str, Any]:
        centre = self.site.hub.centre
        t = centre.tickets.get(ticket_id)
        case = centre.cases.get(ticket_id)
        if t is None:
            if case is None:
                return {"found": False}
            return self._case_only(case)
        items = [centre.catalog.items[i] for i in (t.item, *t.extra_items)
                 if i in centre.catalog.items]
        ahead = wait = lo = hi = None
        if t.state is TicketState.WAITING:
            now = self.site.clock()
            ahead = self.ahead(t, now)
            minutes = self.waits.ticket(t)
            if minutes is not None:
                wait, lo, hi = minutes
        return {"found": True, "id": t.id, "number": t.number,
                # the notices sent to this page (remote tickets: hub/notify/dispatcher.py)
                "notices": page_notices(self.site.hub, t.id),
                "items": [{"zh": i.name.zh, "en": i.name.en} for i in items],
                "state": t.state.value, "window": t.window, "ahead": ahead, "wait": wait,
                "wait_lo": lo, "wait_hi": hi, "recalls": t.recalls,
                "priority": t.priority is Priority.PRIORITY, **self._rating(t),
                # a promised item's case after service (hub/web/pickup.py `case_view`)
                "case": case_view(self.site, case, holder=False) if case else None}

    def _case_only(self, case: Case) -> dict[str, Any]:
        """A case whose ticket left with its day: the page follows the case."""
        item = self.site.hub.centre.catalog.items.get(case.item)
        return {"found": True, "id": case.ticket, "number": case.ticket.rpartition("-")[2],
                "notices": page_notices(self.site.hub, case.ticket),
                "items": [{"zh": item.name.zh, "en": item.name.en}] if item else [],
                "state": "done", "window": None, "ahead": None, "wait": None,
                "wait_lo": None, "wait_hi": None, "recalls": 0, "priority": False,
                "rated": False, "can_rate": False,
                "case": case_view(self.site, case, holder=False)}

    def _rating(self, t: Ticket) -> dict[str, bool]:
        centre = self.site.hub.centre
        rated = ratings.is_rated(centre, t.id)
        window = ratings.served_window(t)
        ended = (t.history[-1][0] if t.state is TicketState.DONE and t.history else None)
        in_time = ended is None or self.site.clock() - ended <= centre.policy.rating_window
        return {"rated": rated, "can_rate": window is not None and not rated and in_time}

    def holder(self, ticket_id: str, token: Any) -> bool:
        """Whether `token` is ticket `ticket_id`'s (its QR link's `k`)."""
        hub = self.site.hub
        return signing.ticket_token_ok(hub.booking_key, hub.centre_id, ticket_id, token)

    def _too_many_tries(self, request: Request) -> Response | None:
        """429 when this client address has used up its tries (ratings and phone numbers
        share one budget per address: both need the ticket's token, guessing which is
        what the limit stops)."""
        address = request.client.host if request.client is not None else "?"
        wait = self.rate_tries.take(address, self.site.clock())
        if not wait:
            return None
        return JSONResponse(
            {"code": "rate_limited", "msg": "尝试过于频繁，请稍后再试 / 嘗試過於頻繁，請稍後"
                                            "再試 / too many tries: please wait"},
            status_code=429, headers={"Retry-After": retry_after(wait)})

    async def rate(self, request: Request) -> Response:
        """The resident's rating from the phone page (the five levels, a comment): only
        with the ticket's token, and a bounded number of tries per client address."""
        refused = self._too_many_tries(request)
        if refused is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            body = None
        ticket_id = request.path_params["ticket"]
        token = request.query_params.get("k")
        if token is None and isinstance(body, dict):
            token = body.get("k")
        if not self.holder(ticket_id, token):
            # the same answer for a ticket that is not today's: ids are not probed here
            return JSONResponse(
                {"code": "bad_token", "msg": "请扫描您票上的二维码后评价 / 請掃描您票上的二維碼"
                                             "後評價 / open this page from the QR code on "
                                             "your ticket to rate"}, status_code=403)
        t = self.site.hub.centre.tickets.get(ticket_id)
        if t is None:
            return JSONResponse({"code": "unknown_ticket", "msg": "no such ticket today"},
                                status_code=404)
        if not isinstance(body, dict):
            return JSONResponse({"code": "bad_field", "msg": "a JSON object: score, comment"},
                                status_code=400)
        score, comment = body.get("score"), body.get("comment", "")
        window = ratings.served_window(t)
        try:
            if not isinstance(comment, str):
                raise Rejected("bad_field", "comment: text")
            level = ratings.level(score, 5)
            if window is None:
                raise Rejected("not_served", f"{t.number} was not served: nothing to rate")
            await self.site.act(c.Rate(window, t.id, level, 5, comment.strip()))
        except Rejected as e:
            status = 400 if e.code == "bad_field" else 409
            return JSONResponse({"code": e.code, "msg": e.message}, status_code=status)
        return JSONResponse({"ok": True, **self.snapshot(t.id)})

    async def case_phone(self, request: Request) -> Response:
        """The resident's own mobile number for their case's notices (returned for
        material, ready for pick-up), from the phone page: only with the ticket's token,
        tries limited per client address like ratings; sealed at once (never kept or
        answered in clear: masked)."""
        from ..notify.phones import PhoneError, parse_phone

        refused = self._too_many_tries(request)
        if refused is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"code": "bad_field", "msg": "a JSON object: phone, lang, k"},
                                status_code=400)
        ticket_id = request.path_params["ticket"]
        if not self.holder(ticket_id, body.get("k", request.query_params.get("k"))):
            return JSONResponse(
                {"code": "bad_token", "msg": "请扫描您票上的二维码后登记 / 請掃描您票上的二維碼"
                                             "後登記 / open this page from the QR code on "
                                             "your ticket"}, status_code=403)
        vault = getattr(self.site.port, "phone_vault", None)
        if vault is None:
            return JSONResponse({"code": "no_vault", "msg": "本中心未启用短信通知 / notices "
                                 "by SMS are not set up at this hub"}, status_code=503)
        lang = body.get("lang", "zh-CN")
        try:
            phone = parse_phone(body.get("phone", ""))
            await self.site.act(CaseContact(ticket_id, vault.seal(phone).token, str(lang)))
        except PhoneError as e:
            return JSONResponse({"code": e.code, "msg": str(e)}, status_code=400)
        except Rejected as e:
            return JSONResponse({"code": e.code, "msg": e.message},
                                status_code=400 if e.code == "bad_field" else 409)
        return JSONResponse({"phone": phone.masked, "lang": lang})

    async def page(self, request: Request) -> Response:
        ticket_id = request.path_params["ticket"]
        snap = self.snapshot(ticket_id)
        if not snap["found"]:
            return self.site.render(request, "public/not_found.html", status=404)
        # Read-only without the ticket's token: the rating is not offered (phone.js).
        holder = self.holder(ticket_id, request.query_params.get("k"))
        snap = {**snap, "holder": holder, "can_rate": snap["can_rate"] and holder}
        case = self.site.hub.centre.cases.get(ticket_id)
        if holder and case is not None:  # the case code only to the ticket's holder
            contact = self.site.hub.centre.contacts.get(case.ticket)
            snap["case"] = {**case_view(self.site, case, holder=True),
                            "phone_kept": contact is not None and contact.phone is not None}
        return self.site.render(request, "public/ticket.html", snap=snap)
