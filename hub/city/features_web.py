"""The city features on a centre's web side (issue 20). Answered only when the hub runs
with [city] (hub/city/features.py); otherwise 404 `no_city` and nothing on the pages.

    GET  /city/status                  staff (cases): the link, the catalog version this
                                       centre runs, pending and refused, unsent versions
    POST /city/route {case, pickup}    staff (cases): a promised case accepted here goes to
                                       its department's centre ([city] departments), the
                                       result to be collected at `pickup` (the resident's
                                       choice: this centre or another)
    GET  /city/cases?resident=TOKEN    staff (cases): the card's open cases held here,
                                       those routed across centres included (`cases`),
                                       and anywhere in the city (`city`: the router's
                                       index; null when the city does not answer)
    GET  /city/nearby[?lang=]          public: nearby centres' current waits (diversion)
    GET  /city/book?line=LINE[&lang=]  public: the nearest centre with a free booking slot

The hall screen, the kiosk's home and the phone page show the nearby centres
(templates/public/city_nearby.html, through the `city_nearby` global set here); the
booking page, for each line fully booked here, the nearest centre with a free time
(templates/public/city_book.html, `city_book`).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..core import city, diversion
from ..core.rejected import Rejected

TEXT = {  # zh-CN, zh-TW, English
    "title": ("附近中心当前等候", "附近中心當前等候", "Nearby centres now"),
    "shorter": ("人少，可前往", "人少，可前往", "Shorter wait"),
    "minutes": ("约{}分钟", "約{}分鐘", "about {} min"),
    "closed": ("暂无窗口", "暫無窗口", "no window open"),
    "no_city": ("本中心未接入全市通办", "本中心未接入全市通辦",
                "this centre is not part of the city network"),
    "elsewhere": ("该事项由其他中心科室审批：", "該事項由其他中心科室審批：",
                  "Approved by a department at another centre:"),
    "pickup": ("领取中心", "領取中心", "Pick up at"),
    "send": ("转往审批中心", "轉往審批中心", "Send to the approving centre"),
    "routed": ("已转往", "已轉往", "Routed to"),
    "here": ("本中心", "本中心", "this centre"),
    "unsent": ("等待发送", "等待發送", "waiting to be sent"),
    "book_elsewhere": ("本中心已约满，附近可预约", "本中心已約滿，附近可預約",
                       "Fully booked here: free times nearby"),
}
LANGS = ("zh-CN", "zh-TW", "en")


def text(key: str, lang: str) -> str:
    """`lang`: the site's code (zh_CN, zh_TW, en; hub/web/i18n.py) or its BCP 47 tag."""
    lang = lang.replace("_", "-")
    return TEXT[key][LANGS.index(lang) if lang in LANGS else 0]


def _name(names: dict[str, str], lang: str, fallback: str) -> str:
    key = {"zh-CN": "zh", "zh-TW": "zh_tw", "en": "en"}.get(lang.replace("_", "-"), "zh")
    return names.get(key) or names.get("zh") or fallback


def nearby_view(features: Any, lang: str) -> dict[str, Any] | None:
    if features is None:
        return None
    rows = []
    for n in features.nearby():
        wait = (text("minutes", lang).format(round(n.minutes)) if n.minutes is not None
                else text("closed", lang))
        rows.append({"centre": n.centre, "name": _name(n.name, lang, n.centre), "km": n.km,
                     "waiting": n.waiting, "minutes": n.minutes, "wait": wait,
                     "shorter": n.shorter, "url": n.url})
    return {"title": text("title", lang), "shorter": text("shorter", lang), "centres": rows}


def book_view(features: Any, lang: str) -> dict[str, Any] | None:
    """The booking page's part (templates/public/city_book.html): each line with no free
    slot here, and the nearest centre with one (`diversion.nearest_free`)."""
    if features is None:
        return None
    centre = features.centre
    own = features.own()
    rows = []
    for line_id, line in centre.catalog.lines.items():
        lw = own.lines.get(line_id)
        if lw is None or lw.next_free is not None:
            continue
        best = features.nearest_free(line_id)
        if best is None:
            continue
        names = {"zh": line.name.zh, "zh_tw": line.name.traditional, "en": line.name.en}
        rows.append({"line": line_id, "line_name": _name(names, lang, line_id),
                     "centre": best.centre, "name": _name(best.name, lang, best.centre),
                     "km": best.km, "url": best.url,
                     "local": diversion.local_hhmm(best.slot,
                                                   centre.config.utc_offset_minutes)})
    return {"title": text("book_elsewhere", lang), "lines": rows}


def route_view(features: Any, case_id: str, lang: str) -> dict[str, Any] | None:
    """The case page's part (templates/staff/city_route.html): None for a case of this
    centre's own department and not routed."""
    if features is None or case_id not in features.centre.cases:
        return None
    words = {k: text(k, lang) for k in ("routed", "pickup", "elsewhere", "send", "unsent")}
    link = features.centre.city.link_of(case_id)
    if link is not None:
        return {"text": words, "routed": {"approver": link.approver, "pickup": link.pickup,
                                          "version": link.version,
                                          "unsent": link.sent < link.version}}
    approver = features.approver_of(case_id)
    if approver is None or features.centre.cases[case_id].state != "open":
        return None
    centres = [(features.me, f"{features.me} ({text('here', lang)})")]
    centres += [(n.centre, f"{n.centre} · {n.km} km") for n in features.settings.neighbours]
    return {"text": words, "approver": approver, "centres": centres, "routed": None}


def routes(site: Any) -> list[BaseRoute]:
    def features() -> Any:
        return getattr(site, "city", None)

    site.env.globals["city_nearby"] = lambda lang: nearby_view(features(), lang)
    site.env.globals["city_route"] = lambda case, lang: route_view(features(), case, lang)
    site.env.globals["city_book"] = lambda lang: book_view(features(), lang)

    def no_city(request: Request) -> JSONResponse:
        return JSONResponse({"code": "no_city", "msg": text("no_city", site.lang(request))},
                            status_code=404)

    async def status(request: Request, session: Any = None) -> Response:
        f = features()
        return no_city(request) if f is None else JSONResponse(f.status())

    async def route(request: Request, session: Any = None) -> Response:
        f = features()
        if f is None:
            return no_city(request)
        try:
            body = await request.json()
            case, pickup = str(body["case"]), str(body.get("pickup") or f.me)
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"code": "bad_request", "msg": "{case, pickup}"},
                                status_code=400)
        try:
            await f.route(case, pickup)
        except Rejected as e:
            status_code = 404 if e.code == "unknown_case" else 409
            return JSONResponse({"code": e.code, "msg": e.message}, status_code=status_code)
        link = f.centre.city.link_of(case)
        return JSONResponse({"key": link.key, "approver": link.approver,
                             "pickup": link.pickup, "documents": len(link.documents)})

    async def cases(request: Request, session: Any = None) -> Response:
        f = features()
        if f is None:
            return no_city(request)
        resident = request.query_params.get("resident", "")
        rows = []
        for k, link in city.open_cases(f.centre, resident) if resident else ():
            rows.append({"case": k.id, "item": k.item, "state": k.state, "due_day": k.due_day,
                         "key": link.key if link else f"{f.me}/{k.id}",
                         "approver": link.approver if link else f.me,
                         "pickup": link.pickup if link else f.me})
        anywhere = await f.city_cases(resident) if resident else []
        return JSONResponse({"centre": f.me, "cases": rows, "city": anywhere})

    async def nearby(request: Request) -> Response:
        view = nearby_view(features(), site.lang(request))
        return no_city(request) if view is None else JSONResponse(view)

    async def book(request: Request) -> Response:
        f = features()
        if f is None:
            return no_city(request)
        line = request.query_params.get("line", "")
        lang = site.lang(request)
        best = f.nearest_free(line)
        if best is None:
            return JSONResponse({"line": line, "found": False})
        offset = f.centre.config.utc_offset_minutes
        return JSONResponse({"line": line, "found": True, "centre": best.centre,
                             "name": _name(best.name, lang, best.centre), "km": best.km,
                             "slot": best.slot,
                             "local": diversion.local_hhmm(best.slot, offset),
                             "url": best.url})

    g = site.staff.guard
    return [
        Route("/city/status", g("cases")(status), methods=["GET"]),
        Route("/city/route", g("cases")(route), methods=["POST"]),
        Route("/city/cases", g("cases")(cases), methods=["GET"]),
        Route("/city/nearby", nearby, methods=["GET"]),
        Route("/city/book", book, methods=["GET"]),
    ]
