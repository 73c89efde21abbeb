"""Taking a number from the resident's own phone (远程取号): the entrance QR opens /remote.

    GET  /remote          the page: the items served here, a mobile number, take
    POST /remote/take     {item, phone} ->
        200 {id, number, ahead, wait, wait_lo, wait_hi, url, phone}   (phone masked)
        400 bad_field / bad_phone (the reason in the resident's language)
        403 remote_disabled ([remote] enabled = false)   404 unknown_item
        409 remote_closed / remote_stopped / remote_limit / already_has_ticket / ...
        429 rate_limited (per client address and per mobile number), Retry-After

The number is parsed (mainland mobiles only), sealed and hashed here (hub/notify/phones.py)
and only the sealed form and the keyed hash go into the journal; the page, the reply and
every log line show it masked (138****5678) at most. The centre's limits (opening hours,
closing margin, per resident per day) are the core's (hub/core/notices.py); the rate
limits are this adapter's and kept in memory only: they slow a script down, they decide
nothing that a replay would need.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..core import commands as c
from ..core.notices import RemoteRules
from ..core.rejected import Rejected
from ..notify.phones import PhoneError, mask, parse_phone
from .pubkit import ticket_url
from .ratelimit import Limiter, Rate, retry_after
from .site import Site

log = logging.getLogger("onewindow.hub.web")

PER_ADDRESS = Rate(burst=10, per_minute=10)  # takes tried per client address
PER_RESIDENT = Rate(burst=3, per_minute=3)  # per mobile number
LANGS = {"zh_CN": "zh-CN", "zh_TW": "zh-TW", "en": "en"}

_TEXT = {  # code -> (zh-CN, zh-TW, en)
    "remote_disabled": ("本中心未开通远程取号", "本中心未開通遠端取號",
                        "This centre does not issue numbers remotely"),
    "rate_limited": ("操作过于频繁，请稍后再试", "操作過於頻繁，請稍後再試",
                     "Too many tries: please wait a minute"),
    "bad_field": ("请选择事项并填写手机号码", "請選擇事項並填寫手機號碼",
                  "Choose an item and enter a mobile number"),
    "unknown_item": ("没有这个事项", "沒有這個事項", "No such item"),
    "unavailable": ("远程取号暂不可用，请到大厅取号", "遠端取號暫不可用，請到大廳取號",
                    "Remote tickets are not available now: please take one in the hall"),
}


class Remote:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.by_address = Limiter(PER_ADDRESS)
        self.by_resident = Limiter(PER_RESIDENT)

    def routes(self) -> list[BaseRoute]:
        return [Route("/remote", self.page),
                Route("/remote/take", self.take, methods=["POST"])]

    @property
    def rules(self) -> RemoteRules:
        config = getattr(self.site, "config", None)
        return config.remote if config is not None else RemoteRules()

    def _vault(self) -> Any:
        return getattr(self.site.port, "phone_vault", None)

    def items(self) -> list[Any]:
        centre = self.site.hub.centre
        return [i for i in centre.catalog.items.values() if i.id in centre._servable]

    async def page(self, request: Request) -> Response:
        enabled = self.rules.enabled and self._vault() is not None
        return self.site.render(request, "public/remote.html", enabled=enabled,
                                items=self.items() if enabled else [])

    def _error(self, lang: str, status: int, code: str, msg: str | None = None,
               **headers: str) -> JSONResponse:
        if msg is None:
            msg = _TEXT[code][("zh-CN", "zh-TW", "en").index(lang)]
        return JSONResponse({"code": code, "msg": msg}, status_code=status,
                            headers=headers or None)

    async def take(self, request: Request) -> Response:
        lang = LANGS.get(self.site.lang(request), "zh-CN")
        rules, vault = self.rules, self._vault()
        if not rules.enabled:
            return self._error(lang, 403, "remote_disabled")
        if vault is None:
            return self._error(lang, 503, "unavailable")
        now = self.site.clock()
        address = request.client.host if request.client is not None else "?"
        if wait := self.by_address.take(address, now):
            return self._error(lang, 429, "rate_limited", **{"Retry-After": retry_after(wait)})
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("item"), str) \
                or not isinstance(body.get("phone"), str):
            return self._error(lang, 400, "bad_field")
        item = self.site.hub.centre.catalog.item(body["item"])
        if item is None:
            return self._error(lang, 404, "unknown_item")
        try:
            phone = parse_phone(body["phone"])
        except PhoneError as e:
            return self._error(lang, 400, "bad_phone", e.text(lang))
        resident = "ph:" + vault.fingerprint(phone)
        if wait := self.by_resident.take(resident, now):
            return self._error(lang, 429, "rate_limited", **{"Retry-After": retry_after(wait)})
        cmd = c.RemoteTake(item.id, resident=resident, phone=vault.seal(phone).token,
                           lang=lang, per_day=rules.per_resident_per_day,
                           stop_minutes=rules.stop_minutes_before_close)
        try:
            await self.site.act(cmd)
        except Rejected as e:
            return self._error(lang, 409, e.code, _in(e.message, lang))
        centre = self.site.hub.centre
        t = centre.tickets[centre.active_by_resident[(resident, item.id)]]
        now = self.site.clock()
        est = self.site.hub.issue_waits.get(t.id) or self.site.hub.ticket_wait(t, now)
        minutes = est.minutes()
        log.info("remote ticket %s taken", t.number)
        return JSONResponse({
            "id": t.id, "number": t.number, "ahead": len(centre.ahead_of(t, now)),
            "wait": None if minutes is None else minutes[0],
            "wait_lo": None if minutes is None else minutes[1],
            "wait_hi": None if minutes is None else minutes[2],
            "item": {"zh": item.name.zh, "en": item.name.en},
            "url": ticket_url(self.site, request, t.id), "phone": mask(phone)})


def _in(message: str, lang: str) -> str:
    """A core refusal's text ("zh-CN / zh-TW / en", or "zh / en") in one language."""
    parts = [p.strip() for p in message.split(" / ")]
    if len(parts) == 3:
        return parts[("zh-CN", "zh-TW", "en").index(lang)]
    if len(parts) == 2:
        return parts[1] if lang == "en" else parts[0]
    return message


def routes(site: Site) -> list[BaseRoute]:
    return Remote(site).routes()
