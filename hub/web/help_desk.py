"""The department page (窗口吹哨 科室报到): help calls from the windows, for the department
they call.

    GET  /department                          the page: one's own department's calls
    GET  /department/state                    the same as JSON
    POST /department/{answer|arrived|resolved}   {"request": n}: a step of one call
    live: /live/staff-dept/{department}  (or "*": every department, supervisors)

A specialist or back-office user sees the calls to their own department (their account's
department, hub/store/accounts.py) and the calls to no department in particular (a keypad's
press with nobody at the window, requests journaled before departments); a supervisor sees
all of them, the escalated ones first. A step on another department's call is refused
(403), before anything reaches the core; what the core judges (already answered, not
answered yet) it refuses itself (409).

The live channel is one feed per department watched, so its snapshot is built once per
change for all that department's pages and costs a walk over the calls the core holds
(the open ones and today's answered ones: tens, not thousands).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..core.help_requests import HelpAnswer, HelpArrive, HelpResolve
from ..core.model import HelpRequest, TicketState
from ..core.rejected import Rejected
from ..store.accounts import Session
from . import auth
from .staff import Staff, _json, error

CHANNEL = "staff-dept"
ALL = "*"  # the supervisors' feed: every department
STEPS = {"answer": HelpAnswer, "arrived": HelpArrive, "resolved": HelpResolve}
DONE_LIST = 20  # resolved calls listed, newest first


def _text(t: Any) -> dict[str, str]:
    return {"zh": t.zh, "en": t.en, "zh_tw": t.zh_tw}


def state_of(h: HelpRequest) -> str:
    if h.resolved_at is not None:
        return "resolved"
    if h.arrived_at is not None:
        return "arrived"
    return "answered" if h.answered_at is not None else "requested"


class HelpDesk:
    def __init__(self, staff: Staff) -> None:
        self.staff = staff
        self.site = staff.site
        self.hub = staff.site.hub
        # "now": the server's clock, for the page's skew; alone it is no change to send
        self.site.live.channel(CHANNEL, self.snapshot, volatile=("now",))
        previous = getattr(self.site, "may_watch", None)

        def may_watch(request: Request, channel: str) -> bool:
            if channel == CHANNEL:
                return self.may_watch(request)
            return previous(request, channel) if previous is not None else True

        self.site.may_watch = may_watch  # type: ignore[attr-defined]

    # ---- who sees what ---------------------------------------------------------------------
    @staticmethod
    def feed_of(s: Session) -> str:
        """The feed a session follows: every department for a supervisor, else its own
        ("" for an account with none: the calls to no department only)."""
        if auth.may(s.account.role, "floor"):
            return ALL
        return s.account.department or ""

    def may_watch(self, request: Request) -> bool:
        s = self.staff.session(request, touch=False)
        if s is None or not auth.may(s.account.role, "help.department"):
            return False
        feed = self.feed_of(s)
        return feed == ALL or request.path_params.get("arg", "") == feed

    @staticmethod
    def may_act(s: Session, h: HelpRequest) -> bool:
        return (auth.may(s.account.role, "floor") or h.department is None
                or h.department == s.account.department)

    # ---- the snapshot ------------------------------------------------------------------------
    def snapshot(self, arg: str) -> dict[str, Any]:
        centre = self.hub.centre
        names = self.staff.names()
        everyone = arg == ALL
        mine = [h for h in centre.help_requests.values()
                if everyone or h.department is None or h.department == arg]
        open_ = [self._view(h, names) for h in mine if h.resolved_at is None]
        if everyone:  # the escalated ones first, each group oldest first
            open_.sort(key=lambda v: (v["escalated_at"] is None, v["at"]))
        done = [self._view(h, names) for h in mine[::-1] if h.resolved_at is not None]
        depts = centre.catalog.departments
        return {
            "now": self.site.clock(), "department": arg,
            "department_name": _text(depts[arg]) if arg in depts else None,
            "open": open_, "done": done[:DONE_LIST],
            "escalated": sum(1 for v in open_ if v["escalated_at"] is not None
                             and v["answered_at"] is None),
        }

    def _view(self, h: HelpRequest, names: dict[str, str]) -> dict[str, Any]:
        centre = self.hub.centre
        dept = centre.catalog.departments.get(h.department or "")
        out: dict[str, Any] = {
            "request": h.request, "window": h.window,
            "clerk_name": names.get(h.clerk or "", h.clerk),
            "department": h.department,
            "department_name": _text(dept) if dept is not None else None,
            "state": state_of(h), "at": h.at, "escalated_at": h.escalated_at,
            "answered_at": h.answered_at, "by_name": names.get(h.by or "", h.by),
            "arrived_at": h.arrived_at,
            "arrived_by_name": names.get(h.arrived_by or "", h.arrived_by),
            "resolved_at": h.resolved_at,
            "resolved_by_name": names.get(h.resolved_by or "", h.resolved_by),
            "ticket": None, "item": None,
        }
        if h.resolved_at is None:  # who is at the window now (never the resident's name)
            w = centre.windows.get(h.window)
            t = centre.tickets.get(w.ticket) if w is not None and w.ticket else None
            if t is not None and t.state in (TicketState.CALLED, TicketState.SERVING):
                out["ticket"] = t.number
                out["item"] = _text(centre.catalog.items[t.item].name)
        return out

    # ---- pages and actions ------------------------------------------------------------------
    async def page(self, request: Request, s: Session) -> Response:
        feed = self.feed_of(s)
        depts = self.hub.centre.catalog.departments
        return self.staff.page(request, s, "staff/department.html", feed=feed,
                               department=depts.get(feed), supervisor=feed == ALL)

    async def state(self, request: Request, s: Session) -> Response:
        return JSONResponse(self.snapshot(self.feed_of(s)))

    async def step(self, request: Request, s: Session) -> Response:
        step = request.path_params["step"]
        if step not in STEPS:
            return error(404, "unknown_step", f"no step {step!r}: one of {', '.join(STEPS)}")
        body = await _json(request)
        raw = body.get("request")
        if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit():
            return error(400, "bad_request", "request: 求助编号 / the help call's number")
        pos = int(raw)
        h = self.hub.centre.help_requests.get(pos)
        if h is None:
            return error(404, "unknown_request", f"没有第{pos}号求助 / no help call {pos}")
        if not self.may_act(s, h):
            return JSONResponse({"code": "not_your_department", "msg": (
                f"这是{h.department}科室的求助，您属于{s.account.department or '无科室'} / "
                f"this call is for department {h.department}, not yours "
                f"({s.account.department or 'none'})"), "department": h.department},
                status_code=403)
        try:
            await self.site.act(STEPS[step](pos, s.account.username))
        except Rejected as e:
            return error(409, e.code, e.message)
        return JSONResponse(self.snapshot(self.feed_of(s)))


def routes(staff: Staff) -> list[BaseRoute]:
    desk = HelpDesk(staff)
    g = staff.guard("help.department")
    return [
        Route("/department", g(desk.page), methods=["GET"]),
        Route("/department/state", g(desk.state), methods=["GET"]),
        Route("/department/{step}", g(desk.step), methods=["POST"]),
    ]
