"""The HTTP API for the other systems a centre connects to (the city's government-service
platform, a mini-program or app back end, a booking site), versioned under /api/v1.

    GET    /api/v1/openapi.json            the OpenAPI 3 description (no credential)
    GET    /api/v1/items                   the catalog            (any valid credential)
    GET    /api/v1/lines                   lines, waiting, waits  (any valid credential)
    POST   /api/v1/tickets                 issue a ticket         tickets:write
    GET    /api/v1/tickets/{ticket}        state and estimate     tickets:read
    POST   /api/v1/windows/{n}/call        call the next ticket   queue:call
    GET    /api/v1/windows/{n}/queue       what the window calls next   queue:call
    GET    /api/v1/slots?item=&day=        booking slots          bookings:write
    POST   /api/v1/bookings                book                   bookings:write
    DELETE /api/v1/bookings/{code}         cancel                 bookings:write

Credentials (hub/store/api_clients.py): `Authorization: Bearer <secret>`; no, unknown,
expired or revoked → 401, a scope missing → 403, each JSON `{code, msg, msg_en}` with
`msg` in the request's language (Accept-Language; zh-CN by default). Each client has its
own token bucket (hub/web/ratelimit.py, its `burst`/`per_minute`); failed authentications
take from a bucket per client address. Over either: 429 with Retry-After.

Actions go the way every page's do, `Site.act` → the hub's port: decided by the core,
journaled before anything is published. The journal record names the client: `via:
"api:<name>"` (an adapter's key the core ignores, `from_record` reads only its fields), and
a ticket's `source` is "api:<name>" too. Bookings and slots are the booking pages' own
(hub/web/booking.py `Booking`: the resident token from the mobile number, the confirmation,
the slots) over the core's rules (hub/core/booking.py).

Privacy: responses carry what a printed ticket or the booking page already shows; no
resident token, phone number or name. The booking's phone number is kept only as its keyed
hash (as on the booking page), never echoed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..app import Step
from ..core import booking as bk
from ..core import commands as c
from ..core.model import BOOKED, Priority, Ticket, TicketState
from ..core.rejected import Rejected
from ..core.window_queue import MAX_LIST, upcoming
from ..store.api_clients import ApiClient, ApiClients
from ..store.journal import StorageUnavailable
from . import openapi
from .booking import BAD_REQUEST, Booking, Refused, in_language
from .hall import Hall
from .livewait import LiveWaits
from .pubkit import item_json, ticket_url
from .ratelimit import Limiter, Rate, retry_after
from .refusals import storage_unavailable
from .site import Site

log = logging.getLogger("onewindow.hub.web.api")

PREFIX = "/api/v1"
FAILED_AUTH = Rate(burst=20, per_minute=20)  # bad credentials per client address
LANG_PARAM = {"zh-CN": "zh_CN", "zh-TW": "zh_TW", "en": "en"}
_LANGS = ("zh_CN", "zh_TW", "en")
# The core's refusals that mean "no such thing" here (a forged booking code names none).
NOT_FOUND = ("unknown_item", "unknown_window", "unknown_booking", "bad_code")

_TEXT = {  # code -> (zh-CN, zh-TW, en)
    "no_token": ("缺少访问凭证（Authorization: Bearer …）",
                 "缺少存取憑證（Authorization: Bearer …）",
                 "no credential: send Authorization: Bearer <secret>"),
    "unknown_token": ("访问凭证无效", "存取憑證無效", "the credential is not valid"),
    "expired_token": ("访问凭证已过期，请联系中心管理员续期",
                      "存取憑證已過期，請聯絡中心管理員續期",
                      "the credential has expired: ask the centre's administrator to renew it"),
    "revoked_token": ("访问凭证已被撤销", "存取憑證已被撤銷", "the credential was revoked"),
    "missing_scope": ("此凭证无权执行该操作（需要权限 {scope}）",
                      "此憑證無權執行該操作（需要權限 {scope}）",
                      "this credential may not do that (it needs the scope {scope})"),
    "rate_limited": ("请求过于频繁，请稍后再试", "請求過於頻繁，請稍後再試",
                     "too many requests: wait and try again"),
    "bad_json": ("请求体须为 JSON 对象", "請求內容須為 JSON 物件",
                 "the body must be a JSON object"),
    "bad_field": ("字段 {field} 无效：{why}", "欄位 {field} 無效：{why}",
                  "field {field} is not valid: {why}"),
    "unknown_item": ("没有这个事项", "沒有這個事項", "no such item"),
    "unknown_ticket": ("今天没有这张号票", "今天沒有這張號票", "no such ticket today"),
    "bad_window": ("窗口号须为正整数", "窗口號須為正整數", "a window is a whole number ≥ 1"),
    "unknown_window": ("没有这个窗口", "沒有這個窗口", "no such window"),
    "key_reused": ("该 Idempotency-Key 今天已用于另一个取号请求",
                   "該 Idempotency-Key 今天已用於另一個取號請求",
                   "this Idempotency-Key was used today for another ticket request"),
    "api_unavailable": ("接口暂不可用（中心未配置数据库）", "介面暫不可用（中心未設定資料庫）",
                        "the API is not available: this hub keeps no database"),
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, headers: dict[str, str] | None = None,
                 **facts: Any) -> None:
        super().__init__(code)
        self.status, self.code, self.headers, self.facts = status, code, headers, facts


def say(code: str, lang: str, **facts: Any) -> str:
    return _TEXT[code][_LANGS.index(lang) if lang in _LANGS else 0].format(**facts)


@dataclass(frozen=True, slots=True)
class Attributed(c.Command):
    """A command as the API submits it: journaled as the command's own record plus `via`,
    the client that asked. A replay rebuilds the bare command (`commands.from_record`
    reads only its fields), so the core decides it exactly as before."""

    cmd: c.Command
    via: str

    def to_record(self) -> dict[str, Any]:
        return {**self.cmd.to_record(), "via": self.via}


Handler = Callable[[Request, ApiClient, str], Awaitable[Response]]


class Api:
    def __init__(self, site: Site, clients: ApiClients | None = None) -> None:
        self.site = site
        self._clients = clients
        self.booking = Booking(site)  # the booking pages' rules and answers
        self.hall = Hall(site)  # the hall's line waits
        self.waits = LiveWaits.of(site)
        self.failed = Limiter(FAILED_AUTH)
        self.limiters: dict[str, Limiter] = {}
        # A take's `request`: names the API's own take so the ticket it made is found
        # again after the await (other takes may be decided meanwhile). Grows across
        # restarts: it starts at the clock's milliseconds.
        self._takes = itertools.count(int(time.time() * 1000))

    # ---- plumbing ----------------------------------------------------------------------
    def clients(self) -> ApiClients | None:
        if self._clients is None:
            journal = self.site.port.journal
            if journal is not None:
                self._clients = ApiClients(journal.engine)
        return self._clients

    def routes(self) -> list[BaseRoute]:
        e = self.endpoint
        return [
            Route(f"{PREFIX}/openapi.json", self.description, methods=["GET"]),
            Route(f"{PREFIX}/items", e(None, self.items), methods=["GET"]),
            Route(f"{PREFIX}/lines", e(None, self.lines), methods=["GET"]),
            Route(f"{PREFIX}/tickets", e("tickets:write", self.take), methods=["POST"]),
            Route(f"{PREFIX}/tickets/{{ticket}}", e("tickets:read", self.ticket),
                  methods=["GET"]),
            Route(f"{PREFIX}/windows/{{window}}/call", e("queue:call", self.call),
                  methods=["POST"]),
            Route(f"{PREFIX}/windows/{{window}}/queue", e("queue:call", self.queue, "limit"),
                  methods=["GET"]),
            Route(f"{PREFIX}/slots", e("bookings:write", self.slots, "item", "day"),
                  methods=["GET"]),
            Route(f"{PREFIX}/bookings", e("bookings:write", self.book), methods=["POST"]),
            Route(f"{PREFIX}/bookings/{{code}}", e("bookings:write", self.cancel),
                  methods=["DELETE"]),
        ]

    def endpoint(self, scope: str | None, fn: Handler, *query: str
                 ) -> Callable[[Request], Awaitable[Response]]:
        """`fn` behind the credential check (and `scope`, when named); `query`: the query
        parameters it takes (any other is refused, as the description says)."""
        async def handle(request: Request) -> Response:
            lang = self.site.lang(request)
            try:
                client = self.authorise(request, scope)
                for name in request.query_params:
                    if name not in query:
                        raise ApiError(400, "bad_field", field=name or "?",
                                       why="unknown query parameter")
                return await fn(request, client, lang)
            except ApiError as e:
                return self.error(e.status, e.code, lang, e.headers, **e.facts)
            except Refused as e:  # the booking pages' own refusals
                msg = e.msg if e.msg is not None else self.booking._say(lang, e.code)
                en = e.msg if e.msg is not None else self.booking._say("en", e.code)
                return JSONResponse({"code": e.code, "msg": msg, "msg_en": en, **e.extra},
                                    status_code=e.status, headers=e.headers)
            except StorageUnavailable as e:  # nothing was decided: try again shortly
                log.warning("api %s refused: %s", request.url.path, e)
                return JSONResponse({"code": "storage_unavailable",
                                     "msg": storage_unavailable(lang),
                                     "msg_en": storage_unavailable("en")},
                                    status_code=503, headers={"Retry-After": "5"})
            except Rejected as e:  # the core said no: nothing changed
                status = 404 if e.code in NOT_FOUND else 400 if e.code in BAD_REQUEST else (
                    409)
                extra = {k: v for k, v in e.detail.items() if k in ("come_back", "ticket")}
                if "next" in e.detail:
                    extra["next"] = [self.booking._slot_json(n) for n in e.detail["next"]]
                return JSONResponse({"code": e.code, "msg": in_language(e.message, lang),
                                     "msg_en": in_language(e.message, "en"), **extra},
                                    status_code=status)

        return handle

    def error(self, status: int, code: str, lang: str, headers: dict[str, str] | None = None,
              **facts: Any) -> JSONResponse:
        return JSONResponse({"code": code, "msg": say(code, lang, **facts),
                             "msg_en": say(code, "en", **facts)},
                            status_code=status, headers=headers)

    def authorise(self, request: Request, scope: str | None) -> ApiClient:
        clients = self.clients()
        if clients is None:
            raise ApiError(503, "api_unavailable", {"Retry-After": "60"})
        now = self.site.clock()
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self._failed(request, now)
            raise ApiError(401, "no_token", {"WWW-Authenticate": "Bearer"})
        try:
            verdict = clients.authenticate(token.strip(), now)
        except SQLAlchemyError as e:  # the database is down: nothing decided, try again
            raise StorageUnavailable(f"api credentials: {type(e).__name__}") from e
        if verdict.client is None:
            self._failed(request, now)
            if verdict.name:
                log.info("api: %s credential of %s refused", verdict.reason, verdict.name)
            raise ApiError(401, f"{verdict.reason}_token",
                           {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        client = verdict.client
        # Limited before the scope is looked at: refused requests count too.
        rate = Rate(client.burst, client.per_minute)
        limiter = self.limiters.get(client.name)
        if limiter is None or limiter.rate != rate:
            limiter = self.limiters[client.name] = Limiter(rate, max_keys=1)
        wait = limiter.take(client.name, now)
        if wait:
            raise ApiError(429, "rate_limited", {"Retry-After": retry_after(wait)})
        if scope is not None and scope not in client.scopes:
            raise ApiError(403, "missing_scope", scope=scope)
        return client

    def _failed(self, request: Request, now: float) -> None:
        address = request.client.host if request.client is not None else "?"
        wait = self.failed.take(address, now)
        if wait:
            raise ApiError(429, "rate_limited", {"Retry-After": retry_after(wait)})

    async def act(self, client: ApiClient, cmd: c.Command) -> Step:
        step = await self.site.act(Attributed(cmd, f"api:{client.name}"))
        log.info("api %s: %s", client.name, cmd.op)
        return step

    @staticmethod
    async def body(request: Request, fields: dict[str, type]) -> dict[str, Any]:
        """The JSON object of the request: only `fields`, each of its type when present."""
        try:
            body = json.loads(await request.body() or b"null")
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            raise ApiError(400, "bad_json")
        for key, value in body.items():
            if key not in fields:
                raise ApiError(400, "bad_field", field=key, why="unknown field")
            if not isinstance(value, fields[key]):
                raise ApiError(400, "bad_field", field=key,
                               why=f"must be a {fields[key].__name__}")
        return body

    # ---- views -------------------------------------------------------------------------
    def item_ref(self, item_id: str) -> dict[str, Any]:
        item = self.site.hub.centre.catalog.items.get(item_id)
        if item is None:  # retired from the catalog since
            return {"id": item_id, "name": {"zh": item_id, "zh_tw": item_id, "en": item_id}}
        return {"id": item.id, "name": {"zh": item.name.zh, "zh_tw": item.name.traditional,
                                        "en": item.name.en}}

    def brief(self, t: Ticket) -> dict[str, Any]:
        return {"id": t.id, "number": t.number, "item": self.item_ref(t.item),
                "class": t.priority.value}

    @staticmethod
    def estimate(minutes: tuple[int, int, int] | None) -> dict[str, int] | None:
        if minutes is None:
            return None
        return {"minutes": minutes[0], "lo": minutes[1], "hi": minutes[2]}

    def window(self, request: Request) -> int:
        raw = request.path_params["window"]
        if not (raw.isascii() and raw.isdigit()) or int(raw) < 1 or len(raw) > 6:
            raise ApiError(400, "bad_window")
        n = int(raw)
        if n not in self.site.hub.centre.windows:
            raise ApiError(404, "unknown_window")
        return n

    # ---- endpoints ---------------------------------------------------------------------
    async def description(self, request: Request) -> Response:
        centre = self.site.hub.centre
        served = sorted(i for i in centre.catalog.items if i in centre._servable)
        examples: dict[str, Any] = {}
        if served:
            examples["item"] = served[0]
        if centre.windows:
            examples["window"] = min(centre.windows)
        return JSONResponse(openapi.document(examples))

    async def items(self, request: Request, client: ApiClient, lang: str) -> Response:
        centre = self.site.hub.centre
        bookable = {i.id for i in self.booking.bookable()} if self.booking._key() else set()
        out = []
        for item in centre.catalog.items.values():
            d = item_json(item, self.site)
            out.append({
                "id": item.id, "name": self.item_ref(item.id)["name"], "line": item.line,
                "kind": d["kind"], "promised_days": d["promised_days"],
                "minutes": d["minutes"], "served": item.id in centre._servable,
                "bookable": item.id in bookable, "conditions": d["conditions"],
                "materials": d["materials"], "related": d["related"]})
        return JSONResponse({"items": out})

    async def lines(self, request: Request, client: ApiClient, lang: str) -> Response:
        tw = {line.id: line.name.traditional
              for line in self.site.hub.centre.catalog.lines.values()}
        out = [{"line": w["line"], "name": {"zh": w["zh"], "zh_tw": tw.get(w["line"], w["zh"]),
                                            "en": w["en"]},
                "prefix": w["prefix"], "waiting": w["waiting"],
                "estimate": None if w["minutes"] is None else {
                    "minutes": w["minutes"], "lo": w["lo"], "hi": w["hi"]}}
               for w in self.hall.waits()]
        return JSONResponse({"lines": out})

    async def take(self, request: Request, client: ApiClient, lang: str) -> Response:
        body = await self.body(request, {"item": str, "priority": str, "lang": str})
        if "item" not in body:
            raise ApiError(400, "bad_field", field="item", why="required")
        priority = body.get("priority", "normal")
        if priority not in ("normal", "priority"):
            raise ApiError(400, "bad_field", field="priority", why="normal or priority")
        resident_lang = body.get("lang", "zh-CN")
        if resident_lang not in LANG_PARAM:
            raise ApiError(400, "bad_field", field="lang", why="zh-CN, zh-TW or en")
        centre = self.site.hub.centre
        item = centre.catalog.item(body["item"])
        if item is None:
            raise ApiError(404, "unknown_item")
        source, nonce = f"api:{client.name}", next(self._takes)
        key = request.headers.get("idempotency-key")
        if key is not None:
            if not 1 <= len(key) <= 64 or not key.isascii() or not key.isprintable():
                raise ApiError(400, "bad_field", field="Idempotency-Key",
                               why="1-64 printable ASCII characters")
            nonce = _keyed(client.name, key)
            held = self._held(source, nonce)
            if held is not None:
                if held.item != item.id or held.priority.value != priority:
                    raise ApiError(409, "key_reused")
                return self._issued(request, held, resident_lang, 200)
        await self.act(client, c.TakeTicket(item.id, priority=priority, source=source,
                                            request=nonce))
        held = self._held(source, nonce)
        if held is None:  # the take just decided made it: this would be a bug
            raise RuntimeError(f"the ticket of {source}'s take {nonce} is not found")
        return self._issued(request, held, resident_lang, 201)

    def _held(self, source: str, nonce: int) -> Ticket | None:
        """Today's ticket this client's take `nonce` made, if any (newest first: the
        take just decided is found at once)."""
        centre = self.site.hub.centre
        today = centre.calendar.day_id(self.site.clock())
        for t in reversed(centre.tickets.values()):
            if t.source == source and t.request == nonce and t.day == today:
                return t
        return None

    def _issued(self, request: Request, t: Ticket, resident_lang: str,
                status: int) -> Response:
        centre = self.site.hub.centre
        now = self.site.clock()
        waiting = t.state is TicketState.WAITING
        est = (self.site.hub.issue_waits.get(t.id) or self.site.hub.ticket_wait(t, now)
               if waiting else None)
        url = ticket_url(self.site, request, t.id)
        url += ("&" if "?" in url else "?") + f"lang={resident_lang}"
        return JSONResponse({
            "id": t.id, "number": t.number, "item": self.item_ref(t.item),
            "priority": t.priority is Priority.PRIORITY, "state": t.state.value,
            "ahead": len(centre.ahead_of(t, now)) if waiting else None,
            "estimate": self.estimate(est.minutes()) if est is not None else None,
            "status_url": url}, status_code=status)

    async def ticket(self, request: Request, client: ApiClient, lang: str) -> Response:
        centre = self.site.hub.centre
        ref = request.path_params["ticket"]
        t = centre.find_ticket(ref) if len(ref) <= 32 else None
        if t is None:
            raise ApiError(404, "unknown_ticket")
        ahead = estimate = None
        if t.state is TicketState.WAITING:
            ahead = len(centre.ahead_of(t, self.site.clock()))
            estimate = self.estimate(self.waits.ticket(t))
        return JSONResponse({
            "id": t.id, "number": t.number, "item": self.item_ref(t.item),
            "priority": t.priority is Priority.PRIORITY, "state": t.state.value,
            "window": t.window, "ahead": ahead, "estimate": estimate, "recalls": t.recalls})

    async def call(self, request: Request, client: ApiClient, lang: str) -> Response:
        n = self.window(request)
        await self.act(client, c.CallNext(n))
        centre = self.site.hub.centre
        w = centre.windows[n]
        t = centre.tickets.get(w.ticket) if w.ticket else None
        called = t if t is not None and t.state is TicketState.CALLED else None
        return JSONResponse({"window": n,
                             "called": None if called is None else self.brief(called)})

    async def queue(self, request: Request, client: ApiClient, lang: str) -> Response:
        n = self.window(request)
        raw = request.query_params.get("limit", "20")
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIST:
            raise ApiError(400, "bad_field", field="limit", why=f"a whole number 1..{MAX_LIST}")
        centre = self.site.hub.centre
        w = centre.windows[n]
        now = self.site.clock()
        waiting = upcoming(centre, n, now, int(raw))
        serving = centre.tickets.get(w.ticket) if w.ticket else None
        return JSONResponse({
            "window": n, "state": w.state.value,
            "serving": None if serving is None else self.brief(serving),
            "waiting": sum(1 for t in centre.queue if (
                t.target_window == n if t.target_window is not None else t.item in w.skills)),
            "next": [{**self.brief(t), "waited_s": round(max(0.0, now - t.issued_at), 1),
                      "appointment_at": t.appointment_at, "sent_here": t.target_window == n}
                     for t in waiting]})

    async def slots(self, request: Request, client: ApiClient, lang: str) -> Response:
        query = dict(request.query_params)
        if not query.get("item"):
            raise ApiError(400, "bad_field", field="item", why="required")
        day = query.get("day", "")
        if len(day) == 10 and day[4] == day[7] == "-":  # ISO (the description's format)
            query["day"] = day.replace("-", "")  # the booking pages' YYYYMMDD
        scope = {**request.scope, "query_string": urlencode(query).encode()}
        return await self.booking._slots(Request(scope, request.receive), lang)

    async def book(self, request: Request, client: ApiClient, lang: str) -> Response:
        key = self.booking._key()
        if key is None:
            raise Refused(503, "unavailable", headers={"Retry-After": "3600"})
        body = await self.body(request, {"item": str, "slot": str, "phone": str, "lang": str})
        for name in ("item", "slot", "phone"):
            if name not in body:
                raise ApiError(400, "bad_field", field=name, why="required")
        resident_lang = body.pop("lang", "zh-CN")
        if resident_lang not in LANG_PARAM:
            raise ApiError(400, "bad_field", field="lang", why="zh-CN, zh-TW or en")
        centre = self.site.hub.centre
        if centre.catalog.item(body["item"]) is None:
            raise ApiError(404, "unknown_item")
        # As the booking page: the number's keyed hash is the resident, the number sealed
        # (never in clear) is the booking's contact for its reminders, in the resident's
        # language.
        resident = self.booking._resident(request, body, lang)
        await self.act(client, c.Book(body["item"], body["slot"], resident,
                                      self.booking._sealed(body), resident_lang))
        b = max((b for b in centre.bookings.values() if b.resident == resident
                 and b.item == body["item"] and b.state == BOOKED),
                key=lambda b: int(b.code[1:]))
        return JSONResponse(self.booking._confirmation(key, b, lang), status_code=201)

    async def cancel(self, request: Request, client: ApiClient, lang: str) -> Response:
        key = self.booking._key()
        if key is None:
            raise Refused(503, "unavailable", headers={"Retry-After": "3600"})
        code = request.path_params["code"]
        name = bk.verify(key, self.site.hub.centre.config.centre_id, code)
        await self.act(client, c.CancelBooking(name))
        return JSONResponse({"cancelled": code.strip().upper()})


def _keyed(client: str, key: str) -> int:
    """The `request` a take with this client's Idempotency-Key carries: negative, so it
    never meets the counter's (positive) ones; 48 bits of a hash of client and key."""
    digest = hashlib.sha256(f"{client}\n{key}".encode()).digest()
    return -(int.from_bytes(digest[:6], "big") + 1)


def routes(site: Site) -> list[BaseRoute]:
    api = Api(site)
    site.systems_api = api  # type: ignore[attr-defined]  # its limits, for the tests
    return api.routes()
