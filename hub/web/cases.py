"""The back office's page for promised items (承诺件): every case the windows accepted, its
deadline, and the back office's word on it (returned 退件, resubmitted, corrected 补正,
closed 办结, reopened). Each action is the core's `CaseUpdate`, journalled like any other
operation; the staff report counts returned, corrected and reopened cases against the
clerk who accepted them (hub/report/).

Cases in progress (and those closed today) are the core's, in memory. A closed case leaves
memory at the next day's close for the history tables (`history_cases`): those are listed
by SQL, a page at a time, filtered by the days they were closed (`closed_from`,
`closed_to`, `page` in the query), and can still be reopened."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..core import commands as c
from ..core.model import Case
from ..core.rejected import Rejected
from ..store.accounts import Session
from ..store.history import CASE_COLUMNS
from .staff import Staff, _json, error

REASON_MAX = 200  # characters: a reason is a line in the journal, not a document
STATE_ORDER = {"returned": 0, "open": 1, "closed": 2}  # what needs the back office first
ARCHIVE_PAGE = 50  # archived cases per page
ARCHIVE_DAYS = 30  # the closed list's default range: the last 30 days


class BadQuery(ValueError):
    pass


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

    def archived(self, first: dt.date, last: dt.date, page: int) -> dict[str, Any]:
        """One page of the cases archived at the close of days first..last, newest first,
        by SQL; those back in memory (reopened) are the core's and left out. Cases whose
        day is not yet written (a storage outage) come first, on page 1."""
        hub, today = self.hub, self.hub.centre.local_date(self.site.clock()).isoformat()
        a, b = first.strftime("%Y%m%d"), last.strftime("%Y%m%d")
        pending = [r for f in hub.closed_days for r in f.cases if a <= r["day"] <= b]
        total, rows = len(pending), pending if page == 1 else []
        if hub.case_archive is not None:
            n, stored = hub.case_archive.closed_cases(a, b, ARCHIVE_PAGE,
                                                      (page - 1) * ARCHIVE_PAGE)
            total, rows = total + n, rows + stored
        held = hub.centre.cases
        out = [{**self.view(Case(**{k: r[k] for k in CASE_COLUMNS}), today), "archived": True}
               for r in rows if r["id"] not in held]
        return {"rows": out, "total": total, "page": page,
                "pages": max(1, -(-total // ARCHIVE_PAGE)),
                "closed_from": first.isoformat(), "closed_to": last.isoformat()}

    def _query(self, request: Request) -> tuple[dt.date, dt.date, int]:
        q = request.query_params
        today = self.hub.centre.local_date(self.site.clock())
        try:
            last = dt.date.fromisoformat(q.get("closed_to") or today.isoformat())
            first = dt.date.fromisoformat(
                q.get("closed_from") or (last - dt.timedelta(days=ARCHIVE_DAYS)).isoformat())
        except ValueError as e:
            raise BadQuery("closed_from, closed_to: dates as YYYY-MM-DD") from e
        page = q.get("page") or "1"
        if not page.isdigit() or int(page) < 1 or first > last:
            raise BadQuery("page: 1, 2, ...; closed_from no later than closed_to")
        return first, last, int(page)

    async def page(self, request: Request, s: Session) -> Response:
        try:
            first, last, page = self._query(request)
        except BadQuery as e:
            return error(400, "bad_field", f"查询条件无效 / bad query: {e}")
        return self.staff.page(request, s, "staff/cases.html", cases=self.rows(),
                               archived=self.archived(first, last, page))

    async def update(self, request: Request, s: Session) -> Response:
        case_id, action = request.path_params["case"], request.path_params["action"]
        body = await _json(request)
        reason = str(body.get("reason", "")).strip()
        if len(reason) > REASON_MAX:
            return error(400, "bad_field", f"reason: at most {REASON_MAX} characters")
        materials = body.get("materials") or []
        if not (isinstance(materials, list) and len(materials) <= 50
                and all(type(m) is int for m in materials)):
            return error(400, "bad_field", "材料须为编号列表 / materials: a list of numbers")
        department = str(body.get("department") or "")
        try:
            await self.site.act(c.CaseUpdate(case_id, action, reason, by=s.account.username,
                                             department=department,
                                             materials=tuple(materials)))
        except Rejected as e:
            status = 404 if e.code == "unknown_case" else 409
            return error(status, e.code, e.message)
        case = self.hub.centre.cases[case_id]  # reopened: back in memory
        today = self.hub.centre.local_date(self.site.clock()).isoformat()
        return JSONResponse(self.view(case, today))


def routes(staff: Staff) -> list[BaseRoute]:
    k = Cases(staff)
    g = staff.guard
    return [
        Route("/cases", g("cases")(k.page), methods=["GET"]),
        Route("/cases/{case}/{action}", g("cases")(k.update), methods=["POST"]),
    ]
