"""Follow-ups of low ratings (差评整改) for supervisors: the list (open ones first, then
those closed today) and closing one with a note. The core decides (hub/core/followups.py);
closing is journaled as `{op: "close_followup", ticket, by, note}` with the supervisor's
account and the time.

    GET  /dashboard/followups                  the page (permission "floor")
    GET  /dashboard/followups/state            the list as JSON
    POST /dashboard/followups/{ticket}/close   {"note": "..."} (JSON, or a form with csrf)

A form post is answered with a redirect to the page, a JSON post with the list; a refusal
(no such follow-up, closed already, no note) with 409/400 `{code, msg}`, nothing changed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..core import commands as c
from ..core import followups
from ..core.centre import Centre
from ..core.ratings import LEVELS
from ..core.rejected import Rejected
from ..store.accounts import Session
from .staff import Staff, error


def rows(centre: Centre) -> list[dict[str, Any]]:
    """The dashboard's follow-ups: ticket, window, clerk, item, level, time, comment."""
    out = []
    for f in followups.listing(centre):
        item = centre.catalog.items.get(f.item)
        zh, tw, en = LEVELS[f.score]
        out.append({
            "ticket": f.ticket, "number": f.number, "window": f.window, "clerk": f.clerk,
            "item": f.item, "item_zh": item.name.zh if item else f.item,
            "item_en": item.name.en if item else f.item,
            "score": f.score, "level_zh": zh, "level_tw": tw, "level_en": en,
            "at": f.at, "at_text": centre.local_time(f.at).strftime("%Y-%m-%d %H:%M"),
            "comment": f.comment, "open": f.open, "closed_by": f.closed_by, "note": f.note,
            "closed_at": f.closed_at,
            "closed_text": (centre.local_time(f.closed_at).strftime("%Y-%m-%d %H:%M")
                            if f.closed_at is not None else None),
        })
    return out


class Followups:
    def __init__(self, staff: Staff) -> None:
        self.staff = staff
        self.site = staff.site
        self.hub = staff.site.hub

    async def page(self, request: Request, s: Session) -> Response:
        return self.staff.page(request, s, "staff/followups.html",
                               followups=rows(self.hub.centre))

    async def state(self, request: Request, s: Session) -> Response:
        return JSONResponse({"followups": rows(self.hub.centre)})

    async def close(self, request: Request, s: Session) -> Response:
        ticket = request.path_params["ticket"]
        form = request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded")
        if form:
            fields = parse_qs((await request.body()).decode("utf-8", "replace"))
            note: Any = fields.get("note", [""])[0]
        else:
            try:
                body = await request.json()
            except ValueError:
                body = None
            note = body.get("note") if isinstance(body, dict) else None
            if not isinstance(note, str):
                return error(400, "bad_field", "a JSON object with the note: {\"note\": ...}")
        try:
            await self.site.act(c.CloseFollowup(ticket, s.account.username, note))
        except Rejected as e:
            return error(400 if e.code in ("bad_field", "note_required") else 409,
                         e.code, e.message)
        if form:
            return RedirectResponse("/dashboard/followups", status_code=303)
        return JSONResponse({"followups": rows(self.hub.centre)})


def routes(staff: Staff) -> list[BaseRoute]:
    f = Followups(staff)
    g = staff.guard
    return [
        Route("/dashboard/followups", g("floor")(f.page), methods=["GET"]),
        Route("/dashboard/followups/state", g("floor")(f.state), methods=["GET"]),
        Route("/dashboard/followups/{ticket}/close", g("floor")(f.close), methods=["POST"]),
    ]
