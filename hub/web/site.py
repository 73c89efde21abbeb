"""What every page handler shares: the hub, the way to act on it, templates and live updates.

Staff actions go through `Site.act`: the same `HubApp.operate` a device event goes through,
journaled by the process running the hub (its `HubPort`, hub/web/port.py) before anything is
published, so a click is as durable as a key press on a keypad and every open page hears of
it through `LiveHub`.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..app import Step
from ..core import commands as c
from ..devices import Publish
from . import i18n
from .live import LiveHub
from .port import HubPort, MemoryPort

if TYPE_CHECKING:
    from ..app import HubApp

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"  # served at /static (app.py)
LANG_COOKIE = "lang"
HTML_LANG = {"zh_CN": "zh-CN", "zh_TW": "zh-TW", "en": "en"}  # <html lang>: a BCP 47 tag
CSRF_COOKIE = "ow_csrf"
CSRF_HEADER = "x-csrf-token"
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def csrf_token(request: Request) -> str:
    """This browser's CSRF token (double-submit: a cookie the page echoes in a header or a
    form field). Made once per browser by CSRFMiddleware."""
    return str(request.scope.get("ow.csrf", ""))


class CSRFMiddleware:
    """Every unsafe request from a browser must carry the token from its own cookie, which
    another site's page cannot read. Device uploads under /api/ use bearer tokens instead."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        token = request.cookies.get(CSRF_COOKIE)
        fresh = token is None or len(token) != 43
        if token is None or fresh:
            token = secrets.token_urlsafe(32)
        scope["ow.csrf"] = token
        if scope["method"] in UNSAFE and not scope["path"].startswith("/api/"):
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent and request.headers.get("content-type", "").startswith(
                    "application/x-www-form-urlencoded"):
                sent = await _form_token(scope, receive)
            if fresh or not hmac.compare_digest(sent, token):
                response = JSONResponse({"code": "csrf", "msg": "missing or wrong CSRF token: "
                                         "reload the page"}, status_code=403)
                await response(scope, receive, send)
                return

        async def send_with_cookie(message: Message) -> None:
            if fresh and message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.append("set-cookie", f"{CSRF_COOKIE}={token}; Path=/; SameSite=Strict")
            await send(message)

        await self.app(scope, receive_replay(scope) or receive, send_with_cookie)


async def _form_token(scope: Scope, receive: Receive) -> str:
    """The `csrf` field of a urlencoded form; the body is kept for the handler."""
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    scope["ow.body"] = body
    values = parse_qs(body.decode("latin-1")).get("csrf", [""])
    return values[0]


def receive_replay(scope: Scope) -> Receive | None:
    body = scope.get("ow.body")
    if body is None:
        return None
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


class Site:
    def __init__(self, hub: HubApp, port: HubPort | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.hub = hub
        # The process running the hub (hub/web/port.py); none: actions decided in memory.
        self.port: HubPort = port if port is not None else MemoryPort(hub, clock)
        self.clock = clock
        self.live = LiveHub(busy=self.port.inbound_waiting)
        self.env = Environment(loader=FileSystemLoader(TEMPLATES),
                               autoescape=select_autoescape(("html", "xml")),
                               extensions=["jinja2.ext.i18n"])
        self.port.subscribe(lambda step: self.live.changed())

    async def act(self, cmd: c.Command) -> Step:
        """Apply a staff or kiosk action: journaled, then published. Raises Rejected, or
        StorageUnavailable (answered 503 by the app) while the journal cannot store: then
        nothing was decided, so nothing is undone."""
        return await self.port.submit(cmd)

    async def send(self, publishes: list[Publish]) -> None:
        """Publish messages that change no state (a kiosk's tips printout): nothing to
        journal, so straight to the broker. Without one (unit tests) they are dropped."""
        await self.port.send(publishes)

    def lang(self, request: Request) -> str:
        return i18n.pick(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE),
                         request.headers.get("accept-language"))

    def render(self, request: Request, template: str, status: int = 200,
               **context: Any) -> HTMLResponse:
        """A page in the request's language (?lang=en|zh-CN|zh-TW in any common spelling,
        remembered in a cookie; else the cookie, else the browser's Accept-Language)."""
        lang = self.lang(request)
        t = i18n.translations(lang)
        # Added to the environment at run time by jinja2's i18n extension.
        self.env.install_gettext_callables(  # type: ignore[attr-defined]
            t.gettext, t.ngettext, newstyle=True)
        html = self.env.get_template(template).render(
            request=request, lang=lang, html_lang=HTML_LANG.get(lang, "en"),
            centre=self.hub.centre.catalog.name, csrf=csrf_token(request), **context)
        response = HTMLResponse(html, status_code=status)
        if i18n.normalise(request.query_params.get("lang")) == lang:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
        return response
