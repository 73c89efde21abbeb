"""Staff pages behind a login: clerk console, back-office specialist, supervisor dashboard,
device fleet, cases, accounts; their routes and headers, assembled from the page modules.

    GET  /login  POST /login  POST /logout     sign in (rate-limited) and out (staff.py)
    GET  /staff                                           the role's home page (staff.py)
    GET  /console            POST /console/{action}       clerk: own window (console.py)
    GET  /specialist         POST /specialist/answer      help requests (console.py)
    GET  /department         POST /department/{answer|arrived|resolved}  help calls to one's
                             department, all for supervisors (help_desk.py)
    GET  /dashboard          POST /dashboard/windows/{n}/{open|close|skills}  (dashboard.py)
    GET  /fleet                                           device fleet (dashboard.py)
    GET  /cases              POST /cases/{case}/{action}  cases: reopen, close (cases.py)
    GET  /accounts           POST /accounts, /accounts/{username}   admin (staff.py)
    GET  /station  POST /station/cases, /station/handover   a community station (stations.py)
    GET  /stations/handovers  POST /stations/handovers/{batch}/receive   the centre's side
    live: /live/staff-window/{n}, staff-help, staff-dept/{department},
          staff-floor, staff-fleet (login + permission)

Every staff route names a permission (auth.py); logged out, a page redirects to /login and
anything else gets 401 JSON; a role without the permission gets 403. The page modules stand
on staff.py's `Staff` (sessions, permissions, the page frame) and this one on them: no page
module imports back.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import cases, console, dashboard, help_desk, stations
from .site import Site
from .staff import Staff

STAFF_PREFIXES = ("/login", "/logout", "/console", "/specialist", "/dashboard", "/fleet",
                  "/accounts", "/cases", "/live/staff-", "/department", "/station")


def routes(site: Site) -> list[BaseRoute]:
    staff = Staff(site)
    site.staff = staff  # type: ignore[attr-defined]
    g = staff.guard
    out: list[BaseRoute] = [
        Route("/login", staff.login_page, methods=["GET"]),
        Route("/login", staff.login, methods=["POST"]),
        Route("/logout", staff.logout, methods=["POST"]),
        Route("/staff", staff.home, methods=["GET"]),
        Route("/accounts", g("accounts")(staff.accounts_page), methods=["GET"]),
        Route("/accounts", g("accounts")(staff.accounts_add), methods=["POST"]),
        Route("/accounts/{username}", g("accounts")(staff.accounts_change), methods=["POST"]),
    ]
    out += console.routes(staff)
    out += dashboard.routes(staff)
    out += cases.routes(staff)
    out += stations.routes(staff)  # community stations (协管员代收)
    out += help_desk.routes(staff)  # help calls by department (窗口吹哨 科室报到)
    return out


class _Headers:
    """Staff pages: never cached, never framed, no referrer leaves the site."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(STAFF_PREFIXES):
            await self.app(scope, receive, send)
            return

        async def send_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-frame-options", b"DENY"),
                            (b"referrer-policy", b"same-origin"),
                            (b"x-content-type-options", b"nosniff")]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_headers)


def middleware(site: Site) -> list[Middleware]:
    return [Middleware(_Headers)]
