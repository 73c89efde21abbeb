"""What every staff page stands on: sessions and permissions (`Staff.guard`), the staff page
frame and its navigation, display names; and the pages of its own: login, logout, accounts.

    GET  /login  POST /login  POST /logout     sign in (rate-limited) and out
    GET  /accounts           POST /accounts, /accounts/{username}             admin

The staff side as a whole (its routes and headers) is assembled in staffpages.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ..store.accounts import ABSOLUTE_S, ROLES, AccountError, Accounts, Session
from . import auth
from .floor import Targets
from .site import Site

Handler = Callable[[Request, Session], Awaitable[Response]]


def error(status: int, code: str, msg: str, **headers: str) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg}, status_code=status, headers=headers or None)


class Staff:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.config = getattr(site, "config", None)
        self.files = getattr(site, "files", None)
        accounts = getattr(site, "accounts", None)
        if accounts is None:
            if self.config is not None:
                url = self.config.database_url
            elif site.port.journal is not None:
                url = site.port.journal.url
            else:
                raise RuntimeError("the staff pages need site.accounts or a configuration")
            accounts = Accounts(url)
        self.accounts: Accounts = accounts
        self.limit = auth.RateLimit(site.clock)
        web = self.config.web if self.config is not None else None
        self.targets = (Targets(queue_limit=web.queue_alert, target_min=web.wait_target_min)
                        if web is not None else Targets())
        self._names: dict[str, str] = {}
        self._names_at = -1e9
        previous = getattr(site, "may_watch", None)

        def may_watch(request: Request, channel: str) -> bool:
            if channel.startswith("staff-"):
                return self.may_watch(request, channel)
            return previous(request, channel) if previous is not None else True

        site.may_watch = may_watch  # type: ignore[attr-defined]

    # ---- sessions and permissions ----------------------------------------------------------
    def session(self, request: Request, touch: bool = True) -> Session | None:
        return auth.session_of(request, self.accounts, self.site.clock(), touch)

    def names(self) -> dict[str, str]:
        """username -> display name, for the pages (refreshed every 10 s at most)."""
        now = time.monotonic()
        if now - self._names_at > 10:
            self._names = {a.username: a.display for a in self.accounts.list()}
            self._names_at = now
        return self._names

    def guard(self, permission: str) -> Callable[[Handler], Callable[[Request], Any]]:
        def wrap(fn: Handler) -> Callable[[Request], Any]:
            async def handler(request: Request) -> Response:
                s = self.session(request)
                wants_page = request.method == "GET" and "text/html" in request.headers.get(
                    "accept", "text/html")
                if s is None:
                    if wants_page:
                        target = request.url.path + (f"?{request.url.query}"
                                                     if request.url.query else "")
                        return RedirectResponse(f"/login?next={quote(target)}", 303)
                    return error(401, "login_required", "log in first")
                if not auth.may(s.account.role, permission):
                    if wants_page:
                        return self.page(request, s, "staff/denied.html", 403,
                                         permission=permission)
                    return error(403, "forbidden",
                                 f"a {s.account.role} may not do this ({permission})")
                return await fn(request, s)

            return handler

        return wrap

    def may_watch(self, request: Request, channel: str) -> bool:
        s = self.session(request, touch=False)
        if s is None:
            return False
        role = s.account.role
        if channel == "staff-window":
            if auth.may(role, "console.any"):
                return True
            return auth.may(role, "console") and request.path_params.get("arg") == str(s.window)
        need = {"staff-help": "help.answer", "staff-floor": "floor", "staff-fleet": "fleet"}
        return channel in need and auth.may(role, need[channel])

    def page(self, request: Request, s: Session | None, template: str, status: int = 200,
             **context: Any) -> Response:
        nav = []
        if s is not None:
            role = s.account.role
            for perm, href, label in (("console", "/console", "console"),
                                      ("help.answer", "/specialist", "specialist"),
                                      ("help.department", "/department", "department"),
                                      ("floor", "/dashboard", "dashboard"),
                                      ("fleet", "/fleet", "fleet"),
                                      ("cases", "/cases", "cases"),
                                      ("cases", "/stations/handovers", "handovers"),
                                      ("station", "/station", "station"),
                                      ("accounts", "/accounts", "accounts")):
                if auth.may(role, perm):
                    nav.append((href, label))
        response = self.site.render(request, template, status, me=s, nav=nav, **context)
        response.headers["Cache-Control"] = "no-store"
        return response

    # ---- login -----------------------------------------------------------------------------
    async def login_page(self, request: Request) -> Response:
        s = self.session(request)
        if s is not None and not request.query_params.get("next"):
            return RedirectResponse(auth.HOME[s.account.role], 303)
        return self.page(request, None, "staff/login.html", next=_local(
            request.query_params.get("next", "")), windows=sorted(self.site.hub.centre.windows))

    async def login(self, request: Request) -> Response:
        form = await request.form()
        username = str(form.get("username", "")).strip()[:64]
        password = str(form.get("password", ""))[:256]
        window_s = str(form.get("window", "")).strip()
        nxt = _local(str(form.get("next", "")))
        ip = auth.address(request)
        windows = sorted(self.site.hub.centre.windows)

        def again(status: int, message: str, **headers: str) -> Response:
            r = self.page(request, None, "staff/login.html", status, next=nxt, windows=windows,
                          error=message, username=username)
            r.headers.update(headers)
            return r

        wait = self.limit.retry_after(username, ip)
        if wait > 0:
            return again(429, "too_many", **{"Retry-After": str(int(wait) + 1)})
        account = await asyncio.to_thread(self.accounts.verify, username, password)
        if account is None:
            self.limit.failed(username, ip)
            return again(401, "bad_login")
        self.limit.succeeded(username, ip)
        window = account.window
        if account.role in ("clerk", "admin") and window is None and window_s:
            if not window_s.isdigit() or int(window_s) not in self.site.hub.centre.windows:
                return again(400, "bad_window")
            window = int(window_s)
        if account.role == "clerk" and window is None:
            return again(400, "choose_window")
        token = self.accounts.start_session(account, self.site.clock(), window)
        response = RedirectResponse(nxt or auth.HOME[account.role], 303)
        response.set_cookie(auth.SESSION_COOKIE, token, max_age=int(ABSOLUTE_S), httponly=True,
                            samesite="lax", secure=request.url.scheme == "https", path="/")
        return response

    async def logout(self, request: Request) -> Response:
        token = request.cookies.get(auth.SESSION_COOKIE)
        if token:
            self.accounts.end_session(token)
        response = RedirectResponse("/login", 303)
        response.delete_cookie(auth.SESSION_COOKIE, path="/")
        return response

    async def home(self, request: Request) -> Response:
        s = self.session(request)
        return RedirectResponse(auth.HOME[s.account.role] if s else "/login", 303)

    # ---- accounts (admin) --------------------------------------------------------------------
    async def accounts_page(self, request: Request, s: Session) -> Response:
        return self.page(request, s, "staff/accounts.html", accounts=self.accounts.list(),
                         roles=ROLES, windows=sorted(self.site.hub.centre.windows),
                         permissions=auth.ROLE_PERMISSIONS)

    async def accounts_add(self, request: Request, s: Session) -> Response:
        body = await _json(request)
        try:
            window = body.get("window")
            acc = await asyncio.to_thread(
                self.accounts.add, str(body.get("username", "")), str(body.get("password", "")),
                str(body.get("role", "")), str(body.get("display", "")),
                int(window) if window not in (None, "") else None, self.site.clock())
        except (AccountError, ValueError) as e:
            return error(400, "bad_account", str(e))
        self._names_at = -1e9
        return JSONResponse(acc.to_dict(), status_code=201)

    async def accounts_change(self, request: Request, s: Session) -> Response:
        username = request.path_params["username"]
        body = await _json(request)
        try:
            if "active" in body:
                if username == s.account.username and not body["active"]:
                    return error(400, "self", "you cannot disable your own account")
                self.accounts.set_active(username, bool(body["active"]))
            if body.get("password"):
                await asyncio.to_thread(self.accounts.set_password, username,
                                        str(body["password"]))
        except AccountError as e:
            return error(400, "bad_account", str(e))
        acc = self.accounts.get(username)
        return JSONResponse(acc.to_dict() if acc else {})


def _local(url: str) -> str:
    """Only a path on this site may follow a login (no open redirect)."""
    u = urlsplit(url)
    if u.scheme or u.netloc or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return ""
    return url


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
