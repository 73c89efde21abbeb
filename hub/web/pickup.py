"""The resident's side of a promised case (承诺件) on the web: where the case stands, the
pick-up ticket at the kiosk (统一窗口出件), the slip of a case returned for correction, and
the window's hand-over.

    GET  /kiosk/pickup[?device=KIOSK]       the kiosk's pick-up screen (a field for the code)
    POST /kiosk/pickup  {device, code}      the case code from the slip or the phone page
        200 {state: "ready", id, number, url, windows, cases}  a pick-up ticket, printed
            on that kiosk; it goes to the pick-up window(s) (`[pickup] item`)
        200 {state: "returned", printed: true, materials, reason}  a returned case: its
            correction slip (which materials) is printed instead
        409 case_not_ready (at the back office; `due_day` said), pickup_exists (the
            ticket number), no_pickup (the centre has no [pickup] item)
        400 no_code / bad_code (forged or mistyped), 403 unknown_device, 429 rate_limited
    GET  /console/pickup/state?window=N      the console's case desk: the cases of the pick-up
        ticket at the window (to hand over), the cases it accepted today (to give the
        resident's number), and at a pick-up window the results uncollected for
        `[pickup] uncollected_days` (default 7) or more
    POST /console/pickup/handover  {case}   the clerk of the window calling or serving the
        case's pick-up ticket hands the result over: `handed_over` by the clerk
    POST /console/pickup/phone  {case, phone, lang}  the resident's mobile number for the
        case's notices, given at acceptance: sealed at once (hub/notify/phones.py), kept
        only sealed; answered masked (138****5678)

In a city (hub/city/features.py), every answer to a code also lists the resident's other
open cases anywhere in the city (`city`: item, state, due day, the approving and pick-up
centres; from the router's index of the card's token; never a name or number; `null`
outside a city or when the city does not answer), and the kiosk page shows them.

A card tap does the same over MQTT: a kiosk's `pickup` event with the card's resident
token (hub/app/device_commands.py), and at the pick-up window the node's `card` event
signs the hand-over off (`by: "card"`). Someone without the case's code or card gets a
clear refusal and nothing changes. Tries with a code are limited per client address
(guessing codes), giving back the successful ones (a kiosk serves many residents).
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ...protocol import ow_protocol as proto
from ...protocol.ow_device import CMD
from ..app.tickets import BOARD_MAX_PAYLOAD, PRINT_TTL, slip_chinese
from ..core import commands as c
from ..core import pickup, ratings
from ..core.model import Case
from ..core.rejected import Rejected
from ..devices import Publish
from ..render.case_slip import render_case_return
from . import auth
from .pubkit import qr_svg, ticket_url
from .ratelimit import Limiter, retry_after
from .ratelimit import Rate as LimitRate
from .site import Site

log = logging.getLogger("onewindow.hub.web")

KIOSK_ROLES = ("kiosk", "box")
KIOSK_COOKIE = "ow_kiosk"  # the kiosk's device id (hub/web/kiosk.py sets it)
# Case-code tries per client address: a burst of 10, then 6 a minute; successes are given
# back, so only wrong codes count.
CODE_LIMIT = LimitRate(10, 6.0)
STATE_WORDS = {  # the case states as the resident reads them: zh-CN, zh-TW, English
    "open": ("后台审批中", "後台審批中", "At the back office"),
    "returned": ("退回补正", "退回補正", "Returned for correction"),
    "ready": ("可领取", "可領取", "Ready for pick-up"),
    "closed": ("已领取办结", "已領取辦結", "Collected"),
}


def city_rows(centre: Any, rows: list[Any], skip: set[str],
              names: Callable[[str], dict[str, str] | None] | None = None
              ) -> list[dict[str, Any]]:
    """The router's rows of a card's cases (hub/city/router.py `cityq`) as the pages show
    them: items named from this centre's catalog, states in zh-CN, zh-TW and English; the
    centres (where the case is, who approves, where it is collected) by their ids and, as
    `<role>_name`, by the names `names` knows (the city features' `centre_name`; the id in
    each language when it knows none); the token and the version not passed on; the cases
    keyed in `skip` left out."""
    items = centre.catalog.items

    def named(cid: Any) -> dict[str, str] | None:
        if not cid:
            return None
        known = names(str(cid)) if names is not None else None
        return {lang: (known or {}).get(lang) or (known or {}).get("zh") or str(cid)
                for lang in ("zh", "zh_tw", "en")}

    out = []
    for r in rows:
        if not isinstance(r, dict) or str(r.get("key", "")) in skip:
            continue
        item = items.get(str(r.get("item")))
        words = STATE_WORDS.get(str(r.get("state")), (str(r.get("state")),) * 3)
        out.append({
            "key": str(r.get("key", "")), "state": r.get("state"),
            "state_zh": words[0], "state_zh_tw": words[1], "state_en": words[2],
            "item": {"zh": item.name.zh, "zh_tw": item.name.traditional,
                     "en": item.name.en} if item else
            {"zh": str(r.get("item")), "zh_tw": str(r.get("item")),
             "en": str(r.get("item"))},
            "due_day": r.get("due_day"), "approver": r.get("approver"),
            "pickup": r.get("pickup"), "centre": r.get("centre"),
            **{f"{role}_name": named(r.get(role)) for role in ("centre", "approver", "pickup")}})
    return out


class Refused(Exception):
    def __init__(self, status: int, code: str, msg: str, **extra: Any) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg, self.extra = status, code, msg, extra


def case_view(site: Site, case: Case, holder: bool) -> dict[str, Any]:
    """What the resident's phone page shows of their case: its state, the due day while
    at the back office, the materials to correct and the reason when returned, the
    pick-up window(s) when ready; the case code only to the ticket's holder. Nothing
    about who decided."""
    centre = site.hub.centre
    item = centre.catalog.items.get(case.item)
    words = STATE_WORDS.get(case.state, (case.state,) * 3)
    if case.state == "closed" and case.handed_by is None:  # closed with nothing to collect
        words = ("已办结", "已辦結", "Completed")
    out: dict[str, Any] = {
        "id": case.id, "number": case.ticket.rpartition("-")[2], "state": case.state,
        "state_zh": words[0], "state_zh_tw": words[1], "state_en": words[2],
        "item": {"zh": item.name.zh, "zh_tw": item.name.traditional, "en": item.name.en}
        if item else {"zh": case.item, "zh_tw": case.item, "en": case.item},
        "due_day": case.due_day, "materials": [], "reason": "", "windows": []}
    if case.state == "returned" and item is not None:
        mats = item.materials
        out["materials"] = [{"zh": mats[k].name.zh, "zh_tw": mats[k].name.traditional,
                             "en": mats[k].name.en}
                            for k in case.return_materials if 0 <= k < len(mats)]
        out["reason"] = case.return_reason
    if case.state == "ready":
        item_id = centre.config.pickup_item
        out["windows"] = pickup.pickup_windows(centre, item_id) if item_id else []
    if case.state == "closed" and case.closed_at is not None:
        out["closed_at"] = centre.local_time(case.closed_at).strftime("%Y-%m-%d %H:%M")
        out["collected"] = case.handed_by is not None  # handed over, not closed directly
    key = site.hub.booking_key
    # Given while the case is in progress (the page shows it once returned or ready): a
    # page opened earlier gets no code from the live feed, which everyone watching shares.
    if holder and key is not None and case.state != "closed":
        out["code"] = pickup.case_code(key, site.hub.centre_id, case.id)
    return out


class Pickups:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.tries = Limiter(CODE_LIMIT)
        self._print_n = itertools.count(1)

    def routes(self) -> list[BaseRoute]:
        staff = getattr(self.site, "staff", None)
        out: list[BaseRoute] = [Route("/kiosk/pickup", self.kiosk_page, methods=["GET"]),
                                Route("/kiosk/pickup", self.kiosk, methods=["POST"])]
        if staff is not None:
            g = staff.guard
            out += [Route("/console/pickup/state", g("console")(self.desk), methods=["GET"]),
                    Route("/console/pickup/handover", g("console")(self.handover),
                          methods=["POST"]),
                    Route("/console/pickup/phone", g("console")(self.phone),
                          methods=["POST"])]
        return out

    # ---- shared ------------------------------------------------------------------------
    async def _answer(self, fn: Any, *args: Any) -> Response:
        try:
            response: Response = await fn(*args)
            return response
        except Refused as e:
            return JSONResponse({"code": e.code, "msg": e.msg, **e.extra},
                                status_code=e.status,
                                headers={"Retry-After": str(e.extra["retry_after"])}
                                if "retry_after" in e.extra else None)
        except Rejected as e:
            status = 400 if e.code in ("bad_code", "bad_field", "other_centre") else 409
            extra = {k: v for k, v in e.detail.items() if k in ("ticket", "state")}
            return JSONResponse({"code": e.code, "msg": e.message, **extra},
                                status_code=status)

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Refused(400, "bad_json", "请求内容应为JSON对象 / the body must be a JSON object")
        return body

    # ---- the kiosk -----------------------------------------------------------------------
    async def kiosk_page(self, request: Request) -> Response:
        """The kiosk's pick-up screen: a field for the case code (typed, or the slip's QR
        read by the scanner as keystrokes). `?device=` or the kiosk's cookie."""
        dev = request.query_params.get("device") or request.cookies.get(KIOSK_COOKIE)
        d = self.site.hub.registry.get(dev or "")
        if d is None or d.spec.role not in KIOSK_ROLES:
            return self.site.render(request, "public/kiosk_error.html", status=400,
                                    device=request.query_params.get("device", ""))
        return self.site.render(request, "public/kiosk_pickup.html", device=dev)

    async def kiosk(self, request: Request) -> Response:
        return await self._answer(self._kiosk, request)

    async def _kiosk(self, request: Request) -> Response:
        hub = self.site.hub
        address = request.client.host if request.client is not None else "?"
        wait = self.tries.take(address, self.site.clock())
        if wait > 0:
            raise Refused(429, "rate_limited", "尝试过于频繁，请稍后再试 / 嘗試過於頻繁，請稍後再"
                          "試 / too many tries: please wait", retry_after=retry_after(wait))
        body = await self._body(request)
        device = body.get("device")
        d = hub.registry.get(device) if isinstance(device, str) else None
        if not isinstance(device, str) or d is None or d.spec.role not in KIOSK_ROLES:
            raise Refused(403, "unknown_device", "本机未登记为自助机 / 本機未登記為自助機 / this "
                          "kiosk is not registered as a kiosk or button box at this hub")
        code = body.get("code")
        if not isinstance(code, str) or not code.strip():
            raise Refused(400, "no_code", "请输入取件码 / 請輸入取件碼 / enter the case code")
        case_id = pickup.verify_code(hub.booking_key, hub.centre_id, code)
        case = hub.centre.cases.get(case_id)
        if case is None:
            raise Rejected("unknown_case", f"没有进行中的承诺件{case_id} / no case {case_id} in "
                                           "progress")
        elsewhere = await self.city_cases(case)
        if case.state == "returned":
            await self.site.send([self.return_slip(request, device, case)])
            self.tries.give_back(address, self.site.clock())
            view = case_view(self.site, case, holder=False)
            return JSONResponse({"state": "returned", "printed": True, "device": device,
                                 "materials": view["materials"], "reason": view["reason"],
                                 "city": elsewhere})
        if case.state == "open":
            raise Refused(409, "case_not_ready", f"承诺件{case_id}仍在审批中，预计{case.due_day}"
                                                 f"办结 / case {case_id} is still at the back "
                                                 f"office, due {case.due_day}", state="open",
                          city=elsewhere)
        item = hub.centre.config.pickup_item
        if not item:
            raise Rejected("no_pickup", "本中心未设置统一出件窗口，请咨询工作人员 / no pick-up "
                                        "window is set up here: please ask staff")
        await self.site.act(pickup.PickupTicket((case_id,), item, "code", source=device))
        self.tries.give_back(address, self.site.clock())
        t = next(reversed(hub.centre.tickets.values()))  # the ticket just issued
        tid = t.id
        url = ticket_url(self.site, request, tid)
        log.info("case %s: pick-up ticket %s by code", case_id, t.number)
        return JSONResponse({"state": "ready", "id": tid, "number": t.number, "url": url,
                             "qr": qr_svg(url, 5), "cases": [case_id], "device": device,
                             "windows": pickup.pickup_windows(hub.centre, item),
                             "city": elsewhere})

    async def city_cases(self, case: Case) -> list[dict[str, Any]] | None:
        """The resident's other open cases anywhere in the city, from the router's index
        of the card's token (hub/city/router.py): None outside a city, for a case of no
        card, or when the city does not answer. Items named from this centre's catalog;
        the token itself is not in the answer."""
        features = getattr(self.site, "city", None)
        if features is None or not case.resident:
            return None
        rows = await features.city_cases(case.resident)
        if rows is None:
            return None
        centre = self.site.hub.centre
        link = centre.city.link_of(case.id)
        # this very case left out: the answer says where it stands
        return city_rows(centre, rows, {link.key if link is not None
                                        else f"{features.me}/{case.id}"},
                         features.centre_name)

    def return_slip(self, request: Request, device: str, case: Case) -> Publish:
        """The print command of a returned case's slip for `device`."""
        hub = self.site.hub
        view = case_view(self.site, case, holder=True)
        tw = slip_chinese(hub) == "zh_TW"
        name = hub.centre.catalog.name
        url = ticket_url(self.site, request, case.ticket)
        escpos = render_case_return({
            "centre_zh": name.traditional if tw else name.zh, "centre_en": name.en,
            "number": view["number"], "item_zh": view["item"]["zh_tw" if tw else "zh"],
            "item_en": view["item"]["en"], "reason": view["reason"],
            "materials": [{"zh": m["zh_tw" if tw else "zh"], "en": m["en"]}
                          for m in view["materials"]],
            "code": view.get("code"), "qr": url, "chinese": "zh_TW" if tw else "zh_CN"})
        lines = [view["number"], view["state_zh"], *(f"□ {m['zh']}" for m in view["materials"])]
        cmd = {"id": f"{hub.boot}.case{next(self._print_n)}", "ttl": PRINT_TTL,
               "type": "print", "ticket": view["number"], "lines": lines, "qr": url,
               "escpos": base64.b64encode(escpos).decode("ascii")}
        payload = proto.encode(CMD, cmd)
        if len(payload) > BOARD_MAX_PAYLOAD:
            del cmd["escpos"]
            payload = proto.encode(CMD, cmd)
        return Publish(proto.device_topic(hub.centre_id, device, CMD), payload)

    # ---- the window ----------------------------------------------------------------------
    def _window(self, s: Any, body: dict[str, Any]) -> int:
        """The session's own window; another (`window` in the body) only for a role that
        may use any window's console, as on the console."""
        asked = body.get("window")
        n = s.window
        if asked not in (None, "") and auth.may(s.account.role, "console.any"):
            n = asked
        if not isinstance(n, int) or n not in self.site.hub.centre.windows:
            raise Refused(403, "no_window", "请先登录到一个窗口 / 請先登入到一個窗口 / log in "
                          "at a window first")
        return n

    async def desk(self, request: Request, s: Any) -> Response:
        return await self._answer(self._desk, request, s)

    async def _desk(self, request: Request, s: Any) -> Response:
        """The console's case desk for window `n`: the cases of the pick-up ticket it is
        calling or serving (to hand over), the cases it accepted today still in progress
        (to give the resident's number for notices: `phone` says whether one is kept, never
        which), and at a pick-up window the results uncollected for `[pickup]
        uncollected_days` or more."""
        centre = self.site.hub.centre
        n = self._window(s, {"window": request.query_params.get("window")})
        w = centre.windows[n]
        now = self.site.clock()
        t = centre.tickets.get(w.ticket) if w.ticket else None
        handing = [case_view(self.site, centre.cases[k], holder=False)
                   for k in pickup.cases_of_ticket(centre, w.ticket or "")
                   if k in centre.cases]
        accepted = []
        for k in centre.cases.values():
            kt = centre.tickets.get(k.ticket)
            if k.state != "closed" and kt is not None and ratings.served_window(kt) == n:
                contact = centre.contacts.get(k.ticket)
                accepted.append({**case_view(self.site, k, holder=False),
                                 "phone": contact is not None and contact.phone is not None})
        item = centre.config.pickup_item
        uncollected = []
        if item and n in pickup.pickup_windows(centre, item):
            days = centre.config.pickup_uncollected_days
            today = centre.local_date(now)
            for k in centre.cases.values():
                if k.state == "ready" and k.ready_at is not None:
                    waited = (today - centre.local_date(k.ready_at)).days
                    if waited >= days:
                        uncollected.append({**case_view(self.site, k, holder=False),
                                            "ready_day": centre.local_date(
                                                k.ready_at).isoformat(), "days": waited})
            uncollected.sort(key=lambda r: -r["days"])
        return JSONResponse({"window": n, "ticket": t.number if t is not None else None,
                             "handing": handing, "accepted": accepted,
                             "uncollected": uncollected})

    async def handover(self, request: Request, s: Any) -> Response:
        return await self._answer(self._handover, request, s)

    async def _handover(self, request: Request, s: Any) -> Response:
        body = await self._body(request)
        centre = self.site.hub.centre
        n = self._window(s, body)
        case_id = body.get("case")
        w = centre.windows[n]
        cases = pickup.cases_of_ticket(centre, w.ticket) if w.ticket else ()
        if not isinstance(case_id, str) or case_id not in cases:
            raise Refused(409, "not_at_window", f"{n}号窗口当前的出件号不含该承诺件 / the "
                          f"pick-up ticket at window {n} is not for case {case_id}")
        await self.site.act(c.CaseUpdate(case_id, "handed_over", by=s.account.username))
        return JSONResponse(case_view(self.site, centre.cases[case_id], holder=False))

    async def phone(self, request: Request, s: Any) -> Response:
        return await self._answer(self._phone, request, s)

    async def _phone(self, request: Request, s: Any) -> Response:
        from ..notify.phones import PhoneError, parse_phone

        body = await self._body(request)
        vault = getattr(self.site.port, "phone_vault", None)
        if vault is None:
            raise Refused(503, "no_vault", "本中心未启用短信通知 / notices by SMS are not set "
                          "up at this hub")
        case_id, lang = body.get("case"), body.get("lang", "zh-CN")
        n = self._window(s, body)
        centre = self.site.hub.centre
        case = centre.cases.get(case_id) if isinstance(case_id, str) else None
        t = centre.tickets.get(case.ticket) if case is not None else None
        if t is None or ratings.served_window(t) != n:  # given at acceptance, at the window
            raise Refused(409, "not_at_window", f"该承诺件不是今天在{n}号窗口受理的 / case "
                          f"{case_id} was not accepted at window {n} today")
        try:
            phone = parse_phone(body.get("phone", ""))
        except PhoneError as e:
            raise Refused(400, e.code, str(e)) from None
        await self.site.act(pickup.CaseContact(str(case_id), vault.seal(phone).token,
                                               str(lang)))
        return JSONResponse({"case": case_id, "phone": phone.masked, "lang": lang})


def routes(site: Site) -> list[BaseRoute]:
    return Pickups(site).routes()
