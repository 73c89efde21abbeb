"""The back office's pages for promised items (承诺件, issue 17's case loop): each
department's queue of the cases the windows accepted, with their deadlines watched
(overdue, due soon, ready and not collected: hub/core/deadlines.py), and one case's page
with its steps (who and when), the documents captured for its ticket at the window (高拍仪
pages, uploads) and the back office's word on it: return for correction (补正) with a
reason and the item's materials to correct, resubmitted, corrected, reassign to another
department with a reason, approve (ready for pick-up, 统一窗口出件), hand over, close,
reopen. Each action is the core's `CaseUpdate` with the user (`by`), journalled like any
other operation; the staff report counts returned, corrected and reopened cases against
the clerk who accepted them (hub/report/).

Departments: an account with a department (a back-office user, a specialist) sees its own
department's cases only; asking for another's (its page, a document, an action, a filter)
is answered 403 with the reason and changes nothing. Supervisors and admins (no
department) see every department's, with a department filter.

Cases in progress (and those closed today) are the core's, in memory. A closed case leaves
memory at the next day's close for the history tables (`history_cases`): those are listed
by SQL, a page at a time, filtered by the days they were closed (`closed_from`,
`closed_to`, `page` in the query) and by department, and can still be reopened.

    GET  /cases                      the queue (?department=, ?closed_from=, ?page=)
    GET  /cases/{case}               one case: steps, documents, actions
    GET  /cases/{case}/files/{name}  a document captured for the case's ticket
    POST /cases/{case}/{action}      {reason, materials: [i, ...], department}
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..core import commands as c
from ..core import deadlines
from ..core.catalog import Text
from ..core.model import Case
from ..core.rejected import Rejected
from ..store.accounts import Session
from ..store.files import FileStore, day_of
from ..store.history import case_from_row
from .staff import Staff, _json, error

REASON_MAX = 200  # characters: a reason is a line in the journal, not a document
MATERIALS_MAX = 50
STATE_ORDER = {"returned": 0, "open": 1, "ready": 2, "closed": 3}  # what needs work first
FLAG_ORDER = {"overdue": 0, "due_soon": 1, "uncollected": 2}
QUEUE_PAGE = 50  # cases in progress per page of a queue (each row has its own form)
ARCHIVE_PAGE = 20  # archived cases per page (the queue comes first on the page)
WATCH_LISTED = 10  # cases named per department and flag in the deadlines section
ARCHIVE_DAYS = 30  # the closed list's default range: the last 30 days


class BadQuery(ValueError):
    pass


class OtherDepartment(Exception):
    """A case, document or filter of a department that is not the user's."""


def actions_for(state: str) -> list[str]:
    """The actions a case in `state` allows, in the core's own table's order."""
    return [a for a, (before, _) in c.CASE_ACTIONS.items() if state in before]


def text(t: Text | None, lang: str, fallback: str = "") -> str:
    if t is None:
        return fallback
    return t.en if lang == "en" else t.traditional if lang == "zh_TW" else t.zh


class Cases:
    def __init__(self, staff: Staff) -> None:
        self.staff = staff
        self.site = staff.site
        self.hub = staff.site.hub

    @property
    def watch_(self) -> deadlines.Watch:
        """The deadlines' thresholds ([pickup] uncollected_days of the centre's config)."""
        return deadlines.Watch.of(self.hub.centre.config)

    # ---- departments -------------------------------------------------------------------
    @staticmethod
    def scope(s: Session) -> str | None:
        """The department whose cases the user sees, or None: every department's."""
        return s.account.department or None

    def department_of(self, case: Case) -> str:
        """The case's department; an archived case from before departments were kept is
        its item's approver's."""
        if case.department:
            return case.department
        item = self.hub.centre.catalog.items.get(case.item)
        return item.approver if item is not None else ""

    def check(self, s: Session, case: Case) -> None:
        mine = self.scope(s)
        if mine is not None and self.department_of(case) != mine:
            raise OtherDepartment(self._denied(s, self.department_of(case)))

    def _denied(self, s: Session, dept: str) -> str:
        names = self.hub.centre.catalog.departments
        own = s.account.department or ""
        return (f"该承诺件属于{text(names.get(dept), 'zh_CN', dept)}，您只能查看和办理"
                f"{text(names.get(own), 'zh_CN', own)}的承诺件 / this belongs to "
                f"{text(names.get(dept), 'en', dept)}: you see and act on "
                f"{text(names.get(own), 'en', own)}'s cases only")

    # ---- views --------------------------------------------------------------------------
    def view(self, case: Case, today: dt.date, horizon: dt.date, now: float,
             lang: str = "zh_CN") -> dict[str, Any]:
        cat = self.hub.centre.catalog
        item = cat.items.get(case.item)
        dept = self.department_of(case)
        flag = deadlines.flag(case, today, horizon, self.hub.centre.calendar, self.watch_)
        mats = item.materials if item is not None else ()
        return {
            "id": case.id, "ticket": case.ticket.rpartition("-")[2], "item": case.item,
            "item_zh": item.name.zh if item else case.item,
            "item_en": item.name.en if item else case.item,
            "item_name": text(item.name if item else None, lang, case.item),
            "department": dept,
            "department_name": text(cat.departments.get(dept), lang, dept),
            "opened_day": self.hub.centre.local_date(case.opened_at).isoformat(),
            "due_day": case.due_day, "state": case.state,
            "overdue": flag == "overdue", "flag": flag,
            "ready_at": case.ready_at, "handed_by": case.handed_by,
            "return_reason": case.return_reason,
            "return_materials": [text(mats[i].name, lang) for i in case.return_materials
                                 if 0 <= i < len(mats)],
            "materials": [{"i": i, "name": text(m.name, lang), "required": m.required}
                          for i, m in enumerate(mats)],
            "actions": actions_for(case.state),
        }

    def _clock(self) -> tuple[float, dt.date, dt.date]:
        now = self.site.clock()
        cal = self.hub.centre.calendar
        today = cal.local_date(now)
        return now, today, deadlines.soon_until(cal, today, self.watch_)

    def rows(self, department: str | None, page: int = 1, lang: str = "zh_CN"
             ) -> tuple[int, list[dict[str, Any]]]:
        """(how many, one page of) the cases in memory of `department` (None: all), the
        most pressing first: overdue, due soon, returned, open by due day; then ready
        (uncollected first) and closed today."""
        now, today, horizon = self._clock()
        cal = self.hub.centre.calendar
        held = [k for k in self.hub.centre.cases.values()
                if department is None or self.department_of(k) == department]

        def key(k: Case) -> tuple[Any, ...]:
            f = deadlines.flag(k, today, horizon, cal, self.watch_)
            return (STATE_ORDER.get(k.state, 4) // 2, FLAG_ORDER.get(f or "", 3),
                    STATE_ORDER.get(k.state, 4), k.due_day, k.id)

        held.sort(key=key)
        start = (page - 1) * QUEUE_PAGE
        return len(held), [self.view(k, today, horizon, now, lang)
                           for k in held[start:start + QUEUE_PAGE]]

    def archived(self, first: dt.date, last: dt.date, page: int,
                 department: str | None = None, lang: str = "zh_CN") -> dict[str, Any]:
        """One page of the cases archived at the close of days first..last, newest first,
        by SQL; those back in memory (reopened) are the core's and left out. Cases whose
        day is not yet written (a storage outage) come first, on page 1."""
        hub = self.hub
        now, today, horizon = self._clock()
        a, b = first.strftime("%Y%m%d"), last.strftime("%Y%m%d")
        pending = [case_from_row(r) for f in hub.closed_days for r in f.cases
                   if a <= r["day"] <= b]
        if department is not None:
            pending = [r for r in pending if self.department_of(Case(**r)) == department]
        total, rows = len(pending), pending if page == 1 else []
        if hub.case_archive is not None:
            items = [i.id for i in hub.centre.catalog.items.values()
                     if i.approver == department] if department is not None else []
            n, stored = hub.case_archive.closed_cases(a, b, ARCHIVE_PAGE,
                                                      (page - 1) * ARCHIVE_PAGE,
                                                      department, items)
            total, rows = total + n, rows + stored
        held = hub.centre.cases
        out = [{**self.view(Case(**r), today, horizon, now, lang), "archived": True}
               for r in rows if r["id"] not in held]
        return {"rows": out, "total": total, "page": page,
                "pages": max(1, -(-total // ARCHIVE_PAGE)),
                "closed_from": first.isoformat(), "closed_to": last.isoformat()}

    def watch(self, department: str | None, lang: str = "zh_CN") -> list[dict[str, Any]]:
        """The deadlines section: per department, its overdue (the daily overdue list),
        due-soon and uncollected cases."""
        centre = self.hub.centre
        cases = [k for k in centre.cases.values()
                 if department is None or self.department_of(k) == department]
        out: dict[str, dict[str, Any]] = {}
        for w in deadlines.watched(cases, centre.calendar, self.site.clock(), self.watch_):
            dept = self.department_of(centre.cases[w.case])
            d = out.setdefault(dept, {
                "department": dept, "name": text(centre.catalog.departments.get(dept), lang,
                                                 dept),
                "overdue": [], "due_soon": [], "uncollected": [],
                "counts": dict.fromkeys(FLAG_ORDER, 0)})
            d["counts"][w.flag] += 1
            if len(d[w.flag]) >= WATCH_LISTED:
                continue  # counted, not listed: the queue has them all, most pressing first
            item = centre.catalog.items.get(w.item)
            d[w.flag].append({"case": w.case, "due_day": w.due_day, "days": w.days,
                              "state": w.state,
                              "item": text(item.name if item else None, lang, w.item)})
        return [out[k] for k in sorted(out)]

    # ---- one case -----------------------------------------------------------------------
    def find(self, case_id: str) -> Case | None:
        """A case in memory, or archived (by SQL or among the days not yet written)."""
        case = self.hub.centre.cases.get(case_id)
        if case is not None:
            return case
        row = self.hub.archived_case(case_id)
        return Case(**row) if row is not None else None

    def steps(self, case_id: str, lang: str = "zh_CN") -> list[dict[str, Any]]:
        """Who did what to the case, when: the past days' rows (SQL), the days not yet
        written and today's."""
        rows: list[dict[str, Any]] = []
        journal = self.site.port.journal
        if journal is not None:
            from ..store.history import History

            rows = History(journal.engine).case_steps(case_id)
        seen = {(r["at"], r["action"]) for r in rows}
        for e in [e for f in self.hub.closed_days for e in f.case_events] \
                + self.hub.case_events:
            if e["case"] == case_id and (e["at"], e["action"]) not in seen:
                rows.append(e)
        rows.sort(key=lambda r: r["at"])
        names = self.staff.names()
        cat = self.hub.centre.catalog
        out = []
        for r in rows:
            who = r.get("by") or r.get("clerk")
            out.append({"at": r["at"], "action": r["action"],
                        "when": self.hub.centre.calendar.local_time(r["at"])
                        .strftime("%Y-%m-%d %H:%M"),
                        "by": names.get(who or "", who) if who != "card" else "card",
                        "department": r.get("department"),
                        "department_name": text(cat.departments.get(r.get("department") or ""),
                                                lang, r.get("department") or "")})
        return out

    def documents(self, case: Case) -> list[dict[str, Any]]:
        files: FileStore | None = self.staff.files
        if files is None or day_of(case.ticket) is None:
            return []
        return [{"file": f.file, "kind": f.kind, "type": f.content_type, "bytes": f.bytes,
                 "image": f.content_type.startswith("image/"),
                 "url": f"/cases/{case.id}/files/{f.file}"} for f in files.list(case.ticket)]

    # ---- handlers -----------------------------------------------------------------------
    def _query(self, request: Request, s: Session) -> tuple[dt.date, dt.date, int, int,
                                                             str | None]:
        q = request.query_params
        today = self.hub.centre.local_date(self.site.clock())
        try:
            last = dt.date.fromisoformat(q.get("closed_to") or today.isoformat())
            first = dt.date.fromisoformat(
                q.get("closed_from") or (last - dt.timedelta(days=ARCHIVE_DAYS)).isoformat())
        except ValueError as e:
            raise BadQuery("closed_from, closed_to: dates as YYYY-MM-DD") from e
        page, queue_page = q.get("page") or "1", q.get("queue_page") or "1"
        if not (page.isdigit() and int(page) >= 1 and queue_page.isdigit()
                and int(queue_page) >= 1) or first > last:
            raise BadQuery("page, queue_page: 1, 2, ...; closed_from no later than "
                           "closed_to")
        dept = q.get("department") or None
        if dept is not None and dept not in self.hub.centre.catalog.departments:
            raise BadQuery(f"department: no department {dept!r}")
        mine = self.scope(s)
        if mine is not None:
            if dept is not None and dept != mine:
                raise OtherDepartment(self._denied(s, dept))
            dept = mine
        return first, last, int(page), int(queue_page), dept

    async def page(self, request: Request, s: Session) -> Response:
        try:
            first, last, page, queue_page, dept = self._query(request, s)
        except BadQuery as e:
            return error(400, "bad_field", f"查询条件无效 / bad query: {e}")
        except OtherDepartment as e:
            return error(403, "other_department", str(e))
        lang = self.site.lang(request)
        total, rows = self.rows(dept, queue_page, lang)
        cat = self.hub.centre.catalog
        return self.staff.page(
            request, s, "staff/cases.html", cases=rows, total=total, queue_page=queue_page,
            queue_pages=max(1, -(-total // QUEUE_PAGE)), department=dept,
            scoped=self.scope(s) is not None, watch=self.watch(dept, lang),
            departments=[(d, text(t, lang, d)) for d, t in cat.departments.items()],
            archived=self.archived(first, last, page, dept, lang))

    async def detail(self, request: Request, s: Session) -> Response:
        case = self.find(request.path_params["case"])
        if case is None:
            return error(404, "unknown_case", f"没有承诺件{request.path_params['case']} / no "
                                              f"case {request.path_params['case']}")
        try:
            self.check(s, case)
        except OtherDepartment as e:
            return error(403, "other_department", str(e))
        lang = self.site.lang(request)
        now, today, horizon = self._clock()
        cat = self.hub.centre.catalog
        return self.staff.page(
            request, s, "staff/case.html", case=self.view(case, today, horizon, now, lang),
            steps=self.steps(case.id, lang), documents=self.documents(case),
            departments=[(d, text(t, lang, d)) for d, t in cat.departments.items()])

    async def file(self, request: Request, s: Session) -> Response:
        """A document captured for the case's ticket: staff with the case's department."""
        case = self.find(request.path_params["case"])
        name = request.path_params["name"]
        files: FileStore | None = self.staff.files
        if case is None or files is None or day_of(case.ticket) is None:
            return error(404, "not_found", "没有该文件 / no such file")
        try:
            self.check(s, case)
        except OtherDepartment as e:
            return error(403, "other_department", str(e))
        for entry in files.list(case.ticket):
            if entry.file == name:
                return FileResponse(files.path_of(entry), media_type=entry.content_type,
                                    headers={"Cache-Control": "no-store"})
        return error(404, "not_found", "没有该文件 / no such file")

    async def update(self, request: Request, s: Session) -> Response:
        case_id, action = request.path_params["case"], request.path_params["action"]
        body = await _json(request)
        reason = str(body.get("reason") or "").strip()
        if len(reason) > REASON_MAX:
            return error(400, "bad_field", f"原因最多{REASON_MAX}字 / reason: at most "
                                           f"{REASON_MAX} characters")
        materials = body.get("materials") or []
        if not (isinstance(materials, list) and len(materials) <= MATERIALS_MAX
                and all(type(m) is int for m in materials)):
            return error(400, "bad_field", "材料须为编号列表 / materials: a list of numbers")
        department = body.get("department") or ""
        if not isinstance(department, str):
            return error(400, "bad_field", "科室须为编号 / department: an id")
        case = self.find(case_id)
        if case is not None:
            try:
                self.check(s, case)
            except OtherDepartment as e:
                return error(403, "other_department", str(e))
        try:
            await self.site.act(c.CaseUpdate(case_id, action, reason, by=s.account.username,
                                             department=department,
                                             materials=tuple(materials)))
        except Rejected as e:
            # 404 no such case; 409 not now (its state; an action the table does not
            # have); 400 the request's own fields (reason, materials, department)
            status = 404 if e.code == "unknown_case" else 409 if (
                e.code == "bad_case_state" or action not in c.CASE_ACTIONS) else 400
            return error(status, e.code, e.message)
        case = self.hub.centre.cases[case_id]  # reopened: back in memory
        now, today, horizon = self._clock()
        return JSONResponse(self.view(case, today, horizon, now, self.site.lang(request)))


def routes(staff: Staff) -> list[BaseRoute]:
    k = Cases(staff)
    g = staff.guard
    return [
        Route("/cases", g("cases")(k.page), methods=["GET"]),
        Route("/cases/{case}", g("cases")(k.detail), methods=["GET"]),
        Route("/cases/{case}/files/{name}", g("cases")(k.file), methods=["GET"]),
        Route("/cases/{case}/{action}", g("cases")(k.update), methods=["POST"]),
    ]
