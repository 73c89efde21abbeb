"""The back office's page for promised items (承诺件): every case the windows accepted, its
deadline, and the back office's word on it (returned 退件, resubmitted, corrected 补正,
closed 办结, reopened). Each action is the core's `CaseUpdate`, journalled like any other
operation; the staff report counts returned, corrected and reopened cases against the
clerk who accepted them (hub/report/)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..core import commands as c
from ..core.centre import Rejected
from ..core.model import Case
from ..store.accounts import Session
from .staff import Staff, _json, error

REASON_MAX = 200  # characters: a reason is a line in the journal, not a document
STATE_ORDER = {"returned": 0, "open": 1, "closed": 2}  # what needs the back office first


def actions_for(state: str) -> list[str]:
    """The actions a case in `state` allows, in the core's own table's order."""
    return [a for a, (before, _) in c.CASE_ACTIONS.items() if state in before]


class Cases:
    def __init__(self, staff: Staff) -> None:
        self.staff = staff
        self.site = staff.site
        self.hub = staff.site.hub

    def view(self, case: Case, today: str) -> dict[str, Any]:
        item = self.hub.centre.catalog.items.get(case.item)
        return {
            "id": case.id, "ticket": case.ticket.rpartition("-")[2], "item": case.item,
            "item_zh": item.name.zh if item else case.item,
            "item_en": item.name.en if item else case.item,
            "opened_day": self.hub.centre.local_date(case.opened_at).isoformat(),
            "due_day": case.due_day, "state": case.state,
            "overdue": case.state != "closed" and case.due_day < today,
            "actions": actions_for(case.state),
        }

    def rows(self) -> list[dict[str, Any]]:
        today = self.hub.centre.local_date(self.site.clock()).isoformat()
        rows = [self.view(k, today) for k in self.hub.centre.cases.values()]
        rows.sort(key=lambda r: (STATE_ORDER.get(r["state"], 3), r["due_day"], r["id"]))
        return rows

    async def page(self, request: Request, s: Session) -> Response:
        return self.staff.page(request, s, "staff/cases.html", cases=self.rows())

    async def update(self, request: Request, s: Session) -> Response:
        case_id, action = request.path_params["case"], request.path_params["action"]
        reason = str((await _json(request)).get("reason", "")).strip()
        if len(reason) > REASON_MAX:
            return error(400, "bad_field", f"reason: at most {REASON_MAX} characters")
        try:
            await self.site.act(c.CaseUpdate(case_id, action, reason))
        except Rejected as e:
            status = 404 if e.code == "unknown_case" else 409
            return error(status, e.code, e.message)
        case = self.hub.centre.cases[case_id]
        today = self.hub.centre.local_date(self.site.clock()).isoformat()
        return JSONResponse(self.view(case, today))


def routes(staff: Staff) -> list[BaseRoute]:
    k = Cases(staff)
    g = staff.guard
    return [
        Route("/cases", g("cases")(k.page), methods=["GET"]),
        Route("/cases/{case}/{action}", g("cases")(k.update), methods=["POST"]),
    ]
