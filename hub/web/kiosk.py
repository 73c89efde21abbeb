"""The kiosk (and the 24-hour self-service terminal): a portrait touch screen in the hall.

Browse by department line or search; open an item; pre-review (预审): tick the materials you
have. A required one missing means no ticket is offered at first (a wasted wait helps no
one): the kiosk shows plain-language tips, a QR to the tips page and a "print tips" button,
and gives a ticket anyway only if the resident insists. "Ask one more question" (多问一句):
the item's related items can ride on the same ticket (`extra_items`). Priority (爱心优先:
60 or older, disabled, pregnant) is the resident's own choice on the item page: `priority:
true` takes a priority ticket, false or absent a normal one, anything else is refused.

The kiosk is `?device=<id>`: a registered `kiosk` (its printer) or `box` (the nearest
button box's printer); the id is remembered in a cookie so the language links keep it.
Taking a ticket goes through `Site.act(TakeTicket(source=device))`: journaled, and the hub
sends the `print` command to that device exactly as for a button press.
"""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..app import admission as admission_gate
from ..core import commands as c
from ..core.catalog import Catalog, Item
from ..core.model import Priority
from ..core.prereview import PreReview
from ..core.rejected import Rejected
from ..devices import Publish
from .pubkit import base_url, item_json, qr_svg, ticket_url
from .refusals import kiosk_refusal
from .related import Related
from .search import Search
from .site import Site
from .slips import tips_publish
from .traditional import Traditional

KIOSK_COOKIE = "ow_kiosk"
KIOSK_ROLES = ("kiosk", "box")
MAX_EXTRA = 5


class BadRequest(Exception):
    def __init__(self, code: str, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


class Kiosk:
    def __init__(self, site: Site) -> None:
        self.site = site
        self._catalog: Catalog | None = None  # what the search and names were built from
        self._catalog_parts(site.hub.centre.catalog)
        self._print_n = itertools.count(1)
        self.related = Related(site)  # 多问一句: the catalog's and the journal's

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/kiosk", self.home),
            Route("/kiosk/line/{line}", self.line),
            Route("/kiosk/search", self.search),
            Route("/kiosk/search.json", self.search_json),
            Route("/kiosk/item/{item}", self.item),
            Route("/kiosk/review", self.review, methods=["POST"]),
            Route("/kiosk/tips/print", self.print_tips, methods=["POST"]),
            Route("/kiosk/take", self.take, methods=["POST"]),
            Route("/kiosk/left", self.left, methods=["POST"]),
            Route("/kiosk/admission", self.admission),
            Route("/tips", self.tips_page),
        ]

    # ---- the device ------------------------------------------------------------------
    def device_ok(self, dev: str | None) -> bool:
        d = self.site.hub.registry.get(dev or "")
        return d is not None and d.spec.role in KIOSK_ROLES

    def _device(self, request: Request) -> str | None:
        dev = request.query_params.get("device") or request.cookies.get(KIOSK_COOKIE)
        return dev if self.device_ok(dev) else None

    def _catalog_parts(self, cat: Catalog) -> None:
        self._catalog = cat
        self._search = Search(cat)
        self._traditional = Traditional(cat)  # zh_tw beside zh in the pages' JSON

    @property
    def catalog(self) -> Catalog:
        """The centre's catalog now: a city catalog put in place at a day's close
        (hub/core/city.py) is listed, searched and named from then on."""
        cat = self.site.hub.centre.catalog
        if cat is not self._catalog:
            self._catalog_parts(cat)
        return cat

    @property
    def search_index(self) -> Search:
        self.catalog  # noqa: B018 - rebuilt first if the catalog changed
        return self._search

    @property
    def traditional(self) -> Traditional:
        self.catalog  # noqa: B018 - rebuilt first if the catalog changed
        return self._traditional

    def _page(self, request: Request, template: str, **ctx: Any) -> Response:
        dev = self._device(request)
        if dev is None:
            return self.site.render(request, "public/kiosk_error.html", status=400,
                                    device=request.query_params.get("device", ""))
        response = self.site.render(request, template, device=dev,
                                    lines=list(self.catalog.lines.values()), **ctx)
        if request.query_params.get("device") == dev:
            response.set_cookie(KIOSK_COOKIE, dev, max_age=10 * 365 * 86400, samesite="lax")
        return response

    # ---- pages -----------------------------------------------------------------------
    async def home(self, request: Request) -> Response:
        counts = {line: 0 for line in self.catalog.lines}
        for item in self.catalog.items.values():
            counts[item.line] += 1
        return self._page(request, "public/kiosk_home.html", counts=counts)

    async def line(self, request: Request) -> Response:
        line = self.catalog.lines.get(request.path_params["line"])
        if line is None:
            return self.site.render(request, "public/not_found.html", status=404, page=True)
        items = [i for i in self.catalog.items.values() if i.line == line.id]
        return self._page(request, "public/kiosk_list.html", line=line, items=items, q="")

    async def search(self, request: Request) -> Response:
        q = request.query_params.get("q", "")[:40]
        items = self.search_index.search(q)
        return self._page(request, "public/kiosk_list.html", line=None, items=items, q=q)

    async def search_json(self, request: Request) -> Response:
        q = request.query_params.get("q", "")[:40]
        return JSONResponse({"q": q, "items": [
            {"id": i.id, "zh": i.name.zh, "zh_tw": i.name.traditional, "en": i.name.en,
             "kind": i.kind,
             "promised_days": i.promised_days, "minutes": round(i.minutes), "line": i.line}
            for i in self.search_index.search(q)]})

    async def item(self, request: Request) -> Response:
        item = self.catalog.item(request.path_params["item"])
        if item is None:
            return self.site.render(request, "public/not_found.html", status=404, page=True)
        related = [r["item"] for r in self.related.of(item)]
        data = self.traditional.annotate({
            "item": item_json(item, self.site),
            "related": [item_json(r, self.site) for r in related]})
        return self._page(request, "public/kiosk_item.html", item=item,
                          line=self.catalog.lines[item.line], related=related, data=data,
                          admission=self.admission_view(item.id))

    # ---- admission control (hub/app/admission.py): said before a ticket is issued --------
    def admission_view(self, item: str) -> dict[str, Any]:
        """Whether a ticket for `item` taken now is expected to be served today: `verdict`
        ok | late | closed, `mode` warn | stop | off, `refuse` (a take would get err
        day_full), `warn` (it would be issued with the warning), `book` (the booking page)."""
        hub = self.site.hub
        mode = admission_gate.mode(hub)
        verdict = ("ok" if mode == "off"
                   else admission_gate.verdict(hub, item, self.site.clock()))
        return {"item": item, "mode": mode, "verdict": verdict,
                "refuse": mode == "stop" and verdict != "ok",
                "warn": mode == "warn" and verdict != "ok",
                # A booking is offered only where this hub takes bookings (its codes are
                # signed with the centre's secret): else "come back another day".
                "book": f"/book?item={quote(item)}" if hub.booking_key is not None else None}

    async def admission(self, request: Request) -> Response:
        item = self.catalog.item(request.query_params.get("item", ""))
        if item is None:
            return JSONResponse({"code": "unknown_item", "msg": "unknown item"},
                                status_code=404)
        return JSONResponse(self.admission_view(item.id))

    async def tips_page(self, request: Request) -> Response:
        ids = [i for i in request.query_params.get("items", "").split(",") if i][:1 + MAX_EXTRA]
        items = [self.catalog.items[i] for i in ids if i in self.catalog.items]
        if not items:
            return self.site.render(request, "public/not_found.html", status=404, page=True)
        miss = set(request.query_params.get("miss", "").split(","))
        rows = [{"item": it, "materials": [
            {"m": m, "missing": f"{it.id}.{k}" in miss} for k, m in enumerate(it.materials)]}
            for it in items]
        return self.site.render(request, "public/tips.html", rows=rows, marked=bool(miss - {""}))

    # ---- actions ---------------------------------------------------------------------
    async def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            raise BadRequest("bad_json", "the body is not JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("bad_json", "the body must be a JSON object")
        if not self.device_ok(body.get("device")):
            raise BadRequest("unknown_device", "this kiosk is not registered as a kiosk or "
                             "button box at this hub", 403)
        return body

    def _items(self, body: dict[str, Any]) -> list[Item]:
        main = body.get("item")
        extra = body.get("extra_items") or []
        if not isinstance(main, str) or not isinstance(extra, list) or not all(
                isinstance(x, str) for x in extra):
            raise BadRequest("bad_field", "item must be an item id, extra_items a list of ids")
        if len(extra) > MAX_EXTRA:
            raise BadRequest("bad_field", f"at most {MAX_EXTRA} more items on one ticket")
        ids = list(dict.fromkeys([main, *extra]))
        items = [self.catalog.item(i) for i in ids]
        if any(i is None for i in items):
            raise BadRequest("unknown_item", "unknown item", 404)
        return [i for i in items if i is not None]

    @staticmethod
    def _priority(body: dict[str, Any]) -> str:
        """The ticket's class from the body's `priority`: true, false or absent (normal)."""
        chosen = body.get("priority", False)
        if not isinstance(chosen, bool):
            raise BadRequest("bad_field", "priority must be true (a priority ticket: 60 or "
                             "older, disabled, pregnant) or false (a normal one)")
        return "priority" if chosen else "normal"

    def missing(self, items: list[Item], have: Any) -> list[dict[str, Any]]:
        """Per item, the required materials not ticked. `have`: material names (zh) ticked
        on the merged checklist; a material two items need is ticked once for both."""
        got = {h for h in have if isinstance(h, str)} if isinstance(have, list) else set()
        out = []
        for item in items:
            miss = [(k, m) for k, m in enumerate(item.materials)
                    if m.required and m.name.zh not in got]
            if miss:
                out.append({"item": item.id, "zh": item.name.zh, "en": item.name.en,
                            "keys": [f"{item.id}.{k}" for k, _ in miss],
                            "materials": [{"zh": m.name.zh, "en": m.name.en} for _, m in miss]})
        return out

    def tips_url(self, request: Request, items: list[Item],
                 missing: list[dict[str, Any]]) -> str:
        keys = ",".join(k for m in missing for k in m["keys"])
        ids = ",".join(i.id for i in items)
        return f"{base_url(self.site, request)}/tips?items={quote(ids)}&miss={quote(keys)}"

    async def _guard(self, request: Request, fn: Any) -> Response:
        try:
            return await fn(await self._body(request))
        except BadRequest as e:
            return JSONResponse({"code": e.code, "msg": e.msg}, status_code=e.status)

    async def review(self, request: Request) -> Response:
        async def run(body: dict[str, Any]) -> Response:
            items = self._items(body)
            missing = self.missing(items, body.get("have"))
            out: dict[str, Any] = {"ok": not missing, "missing": missing}
            if missing:
                url = self.tips_url(request, items, missing)
                out.update(tips_url=url, qr=qr_svg(url, 5))
            return JSONResponse(out)
        return await self._guard(request, run)

    async def print_tips(self, request: Request) -> Response:
        async def run(body: dict[str, Any]) -> Response:
            items = self._items(body)
            missing = self.missing(items, body.get("have"))
            if not missing:
                raise BadRequest("nothing_missing", "every required material is ticked", 409)
            device = body["device"]
            await self.site.send([self.tips_publish(device, missing,
                                                    self.tips_url(request, items, missing))])
            return JSONResponse({"printed": True, "device": device})
        return await self._guard(request, run)

    def tips_publish(self, device: str, missing: list[dict[str, Any]], url: str) -> Publish:
        return tips_publish(self.site, self.traditional, device, missing, url,
                            f"{self.site.hub.boot}.tips{next(self._print_n)}")

    # ---- pre-review journaled (hub/core/prereview.py) -----------------------------------
    def ticked(self, items: list[Item], have: Any) -> list[str]:
        """The materials ticked, as "ITEM.k" (a material two items need counts for both)."""
        got = {h for h in have if isinstance(h, str)} if isinstance(have, list) else set()
        return [f"{i.id}.{k}" for i in items for k, m in enumerate(i.materials)
                if m.name.zh in got]

    def review_record(self, items: list[Item], body: dict[str, Any]) -> dict[str, Any]:
        """The take's review as journaled: keys only, nothing about the resident."""
        missing = [k for m in self.missing(items, body.get("have")) for k in m["keys"]]
        return {"ticked": self.ticked(items, body.get("have")), "missing": missing,
                "tips": body.get("tips_printed") is True,
                "insisted": bool(missing) and body.get("insist") is True}

    async def left(self, request: Request) -> Response:
        """The resident left without a ticket to fetch what was missing (the kiosk's "I
        will come back" button, or its idle timeout on the tips): a wasted wait avoided."""
        async def run(body: dict[str, Any]) -> Response:
            items = self._items(body)
            review = self.review_record(items, body)
            if not review["missing"]:
                raise BadRequest("nothing_missing", "every required material is ticked", 409)
            try:
                await self.site.act(PreReview(
                    tuple(i.id for i in items), tuple(review["ticked"]),
                    tuple(review["missing"]), review["tips"], body["device"]))
            except Rejected as e:
                return JSONResponse({"code": e.code, "msg": e.message}, status_code=409)
            return JSONResponse({"left": True, "missing": review["missing"]})
        return await self._guard(request, run)

    async def take(self, request: Request) -> Response:
        async def run(body: dict[str, Any]) -> Response:
            items = self._items(body)
            priority = self._priority(body)
            missing = self.missing(items, body.get("have"))
            if missing and body.get("insist") is not True:
                raise BadRequest("materials_missing", "required materials are missing: "
                                 "see the tips, or insist to take a ticket anyway", 409)
            device = body["device"]
            cmd = c.TakeTicket(items[0].id, priority=priority,
                               extra_items=tuple(i.id for i in items[1:]), source=device,
                               review=self.review_record(items, body))
            try:
                await self.site.act(cmd)
            except Rejected as e:  # worded for the resident, in the page's language
                msg = kiosk_refusal(e.code, e.detail, items[0].name, self.site.lang(request),
                                    e.message)
                return JSONResponse({"code": e.code, "msg": msg}, status_code=409)
            centre = self.site.hub.centre
            t = next(reversed(centre.tickets.values()))
            now = self.site.clock()
            ahead = len(centre.ahead_of(t, now))
            est = self.site.hub.issue_waits.get(t.id) or self.site.hub.ticket_wait(t, now)
            minutes = est.minutes()  # as printed on the ticket
            url = ticket_url(self.site, request, t.id)
            return JSONResponse({
                "id": t.id, "number": t.number, "ahead": ahead,
                "priority": t.priority is Priority.PRIORITY,
                "wait": None if minutes is None else minutes[0],
                "wait_lo": None if minutes is None else minutes[1],
                "wait_hi": None if minutes is None else minutes[2],
                "items": [{"zh": i.name.zh, "zh_tw": i.name.traditional, "en": i.name.en}
                          for i in items],
                "url": url, "qr": qr_svg(url, 5), "device": device})
        return await self._guard(request, run)
