"""The clerk console (one window) and the back-office specialist's help console (吹哨).

The clerk's page follows the live channel `staff-window/{n}`: the window, the current
resident's ticket with its items, the checklist of required materials, the documents
captured for it and the resident's earlier visits (by the resident token, which is never
shown), the queue this window serves and the window's last help request. In a city, the
open cases elsewhere in the city of the resident at the window, or of the card last tapped
at its node (`city`, hub/web/console_city.py: asked in the background, never waited for).

Every action (POST /console/{action}) names the window it was pressed for (`window` in the
body): the hub acts there if the user may (their own window, or any with `console.any`) and
otherwise refuses with a reason in zh-CN and English, changing nothing. It never falls back
on the session's own window: a page open on window 5 must not act at window 3.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..core import commands as c
from ..core import desk
from ..core.help_requests import Help, HelpAnswer, default_department
from ..core.model import HelpRequest, Ticket, TicketState
from ..core.rejected import Rejected
from ..core.window_queue import upcoming
from ..store.accounts import Session
from ..store.files import FileStore, day_of
from . import auth
from .console_city import CityPanel
from .returns import Returns
from .staff import Staff, _json, error

ACTIONS = ("call", "recall", "skip", "transfer", "start", "complete", "pause", "resume",
           "open", "close", "help", "priority", "return", "call_ticket")
QUEUE_LIST = 50  # waiting tickets listed on the console (the count says how many in all)
# refusals of what the request said (400), not of the state it met (409)
BAD_INPUT = frozenset({"bad_reason", "note_required", "bad_note", "bad_field"})
NEXT_LIST = 8  # the tickets this window would call next, in that order (window_queue.py)


def _text(t: Any) -> dict[str, str]:
    return {"zh": t.zh, "en": t.en}


class Console:
    def __init__(self, staff: Staff) -> None:
        self.staff = staff
        self.site = staff.site
        self.hub = staff.site.hub
        self.returns = Returns(self.site)  # pre-review, 多问一句, 退回补材料
        self.city = CityPanel(self.site)  # the resident's cases elsewhere in the city
        # "now": the server's clock, for the page's skew; alone it is no change to send
        self.site.live.channel("staff-window", self.window_snapshot, volatile=("now",))
        self.site.live.channel("staff-help", self.help_snapshot, volatile=("now",))
        # the queues shared by windows alike, for one pass of the live views (_queue_of)
        self._queues: tuple[Hashable, set[int], dict[Hashable, Any]] | None = None

    # ---- which window ------------------------------------------------------------------
    def window_of(self, request: Request, s: Session, asked: Any = None) -> int | None:
        """The window this session acts for; `asked` (a query or body field) only counts
        for a role that may use any window's console."""
        windows = self.hub.centre.windows
        if asked not in (None, "") and auth.may(s.account.role, "console.any"):
            with contextlib.suppress(TypeError, ValueError):
                if int(asked) in windows:
                    return int(asked)
            return None
        if s.window in windows:
            return s.window
        if auth.may(s.account.role, "console.any"):
            return min(windows)
        return None

    def refuse_window(self, s: Session, n: int) -> Response | None:
        """Why this session may not act at window `n`, or None when it may."""
        if n not in self.hub.centre.windows:
            return _refusal(404, "unknown_window",
                            f"没有{n}号窗口 / there is no window {n}", window=n)
        if auth.may(s.account.role, "console.any") or n == s.window:
            return None
        own = s.window
        mine = (f"，您只能操作本人的{own}号窗口" if own is not None else "")
        mine_en = (f"; you act only at your own window {own}" if own is not None else "")
        return _refusal(403, "not_your_window",
                        f"无权操作{n}号窗口{mine} / you may not act at window {n}{mine_en}",
                        window=n, own=own)

    def refuse_ticket(self, n: int, ref: Any) -> Response | None:
        """Why a clerk at window `n` may not mark ticket `ref` priority here, or None: a
        ticket is marked from the queue of the window it waits for. What the core judges
        (waiting, already priority) the core refuses."""
        if not isinstance(ref, str) or not ref:
            return _refusal(400, "ticket_required",
                            "未指明号码 / 未指明號碼 / the action does not name its ticket")
        centre = self.hub.centre
        t = centre.find_ticket(ref)
        if (t is None or t.state is not TicketState.WAITING
                or _eligible(t, n, centre.windows[n].skills)):
            return None
        return _refusal(403, "not_in_queue",
                        f"{t.number}号不在{n}号窗口的队列中 / {t.number}號不在{n}號窗口的隊列中 / "
                        f"ticket {t.number} does not wait for window {n}",
                        window=n, ticket=t.number)

    # ---- pages -------------------------------------------------------------------------
    async def page(self, request: Request, s: Session) -> Response:
        n = self.window_of(request, s, request.query_params.get("window"))
        if n is None:
            return self.staff.page(request, s, "staff/denied.html", 403, permission="console")
        cat = self.hub.centre.catalog
        items = sorted(cat.items.values(), key=lambda i: i.id)
        return self.staff.page(request, s, "staff/console.html", window=n,
                               windows=sorted(self.hub.centre.windows), items=items,
                               departments=sorted(cat.departments.items()),
                               any_window=auth.may(s.account.role, "console.any"),
                               call_reasons=desk.CALL_REASONS, note_max=desk.NOTE_MAX,
                               pause_reasons=desk.PAUSE_REASONS,
                               pause_labels=_pause_labels(self.site.lang(request)),
                               city_panel=getattr(self.site, "city", None) is not None)

    async def state(self, request: Request, s: Session) -> Response:
        n = self.window_of(request, s, request.query_params.get("window"))
        if n is None:
            return error(403, "forbidden", "not your window")
        return JSONResponse(self.window_snapshot(str(n)))

    async def act(self, request: Request, s: Session) -> Response:
        action = request.path_params["action"]
        if action not in ACTIONS:
            return error(404, "unknown_action", f"no action {action!r}")
        body = await _json(request)
        # An action names the window it was pressed for: a page open on one window never
        # acts at another (the session's own window is no default to fall back on).
        n = _window_number(body.get("window"))
        if n is None:
            return _refusal(400, "window_required",
                            "操作未指明窗口，请刷新页面后重试 / the action does not name its "
                            "window: reload the page and try again")
        refused = self.refuse_window(s, n)
        if refused is None and action == "priority":
            refused = self.refuse_ticket(n, body.get("ticket"))
        if refused is not None:
            return refused
        w = self.hub.centre.windows[n]
        serving = self.hub.centre.tickets.get(w.ticket) if w.ticket else None
        try:
            cmd = self._command(action, n, body, s)
            await self.site.act(cmd)
        except Rejected as e:
            if action == "call_ticket":  # the facts (ticket, window) the page words it with
                return _refusal(400 if e.code in BAD_INPUT else 409, e.code, e.message,
                                **{k: v for k, v in e.detail.items()
                                   if k in ("ticket", "window", "item")})
            bad = e.code == "unknown_department" or (action == "pause" and e.code in BAD_INPUT)
            return error(400 if bad else 409, e.code, e.message)
        except (TypeError, ValueError) as e:
            return error(400, "bad_request", str(e))
        out = self.window_snapshot(str(n))
        if action == "return" and serving is not None:  # the tips slip (returns.py)
            out["returned"] = await self.returns.slip(request, n, serving)
        return JSONResponse(out)

    def _command(self, action: str, n: int, body: dict[str, Any], s: Session) -> c.Command:
        if action == "transfer":
            to_window = body.get("to_window")
            to_item = body.get("to_item") or None
            return c.Transfer(n, int(to_window) if to_window not in (None, "") else None,
                              str(to_item) if to_item else None, str(body.get("note", ""))[:200])
        if action == "skip":
            requeue = body.get("requeue")
            return c.Skip(n, None if requeue is None else bool(requeue))
        if action == "open":
            return c.OpenWindow(n, s.account.username)
        if action == "help":  # the core refuses it while this window's last one is open
            return Help(n, s.account.username, once=True,
                        department=self._help_department(n, body))
        if action == "priority":  # journaled with the clerk who marked it
            return c.MarkPriority(str(body["ticket"]), s.account.username)
        if action == "call_ticket":  # out of turn: why and who are journaled (core/desk.py)
            return desk.CallTicket(n, ticket=_str(body.get("ticket")),
                                   reason=_str(body.get("reason")),
                                   note=_str(body.get("note")).strip(), by=s.account.username)
        if action == "pause":  # a break, with its reason code (lunch, meeting, ...)
            return c.Pause(n, reason=_str(body.get("reason")))
        if action == "return":  # 退回补材料, journaled with the clerk (returns.py)
            return self.returns.command(n, body, s.account.username)
        simple = {"call": c.CallNext, "recall": c.Recall, "start": c.Start,
                  "complete": c.Complete, "pause": c.Pause, "resume": c.Resume,
                  "close": c.CloseWindow}
        return simple[action](n)

    def _help_department(self, n: int, body: dict[str, Any]) -> str | None:
        """The department a console's help call names (窗口吹哨 科室报到): the clerk's
        choice, or (no `department` in the body) the current ticket's item's; "" or null
        chosen: any department. Raises Rejected for one the catalog does not have."""
        if "department" not in body:
            return default_department(self.hub.centre, n)
        dept = body["department"]
        if dept in (None, ""):
            return None
        if not isinstance(dept, str) or dept not in self.hub.centre.catalog.departments:
            raise Rejected("unknown_department", f"没有“{dept}”这个科室 / 沒有「{dept}」這個科室"
                                                 f" / there is no department {dept!r}")
        return dept

    async def file(self, request: Request, s: Session) -> Response:
        """A captured document, for the clerk serving that resident (or an earlier visit)."""
        ticket, name = request.path_params["ticket"], request.path_params["name"]
        n = self.window_of(request, s, request.query_params.get("window"))
        files: FileStore | None = self.staff.files
        if n is None or files is None or day_of(ticket) is None:
            return error(404, "not_found", "no such file")
        if ticket not in self._visible_tickets(n):
            return error(403, "forbidden", "not a document of the resident at your window")
        for entry in files.list(ticket):
            if entry.file == name:
                return FileResponse(files.path_of(entry), media_type=entry.content_type,
                                    headers={"Cache-Control": "no-store"})
        return error(404, "not_found", "no such file")

    def _visible_tickets(self, n: int) -> set[str]:
        centre = self.hub.centre
        w = centre.windows[n]
        t = centre.tickets.get(w.ticket) if w.ticket else None
        if t is None:
            return set()
        out = {t.id}
        if t.resident:
            out |= {u.id for u in centre.tickets.values() if u.resident == t.resident}
            out |= {k.id for k in centre.cases.values() if k.resident == t.resident}
            out |= {k["id"] for k in self.hub.archived_cases_of(t.resident)}  # by SQL
        return out

    # ---- live snapshots ------------------------------------------------------------------
    def _files(self, ticket_id: str) -> list[dict[str, Any]]:
        files: FileStore | None = self.staff.files
        if files is None or day_of(ticket_id) is None:
            return []
        return [{"ticket": ticket_id, "file": f.file, "kind": f.kind, "bytes": f.bytes,
                 "type": f.content_type, "at": f.at} for f in files.list(ticket_id)]

    def window_snapshot(self, arg: str) -> dict[str, Any]:
        centre = self.hub.centre
        try:
            n = int(arg)
            w = centre.windows[n]
        except (ValueError, KeyError):
            return {"error": "unknown_window"}
        names = self.staff.names()
        cat = centre.catalog
        now = self.site.clock()
        out: dict[str, Any] = {
            "now": now,
            "window": {"number": n, "state": w.state.value, "clerk": w.clerk,
                       "clerk_name": names.get(w.clerk or "", w.clerk), "since": w.since,
                       "kind": w.kind, "pause_reason": w.pause_reason},
            "ticket": None,
        }
        t = centre.tickets.get(w.ticket) if w.ticket else None
        if t is not None:
            items = [t.item, *t.extra_items]
            materials = []
            for i in items:
                for m in cat.items[i].materials:
                    materials.append({"item": i, **_text(m.name), "required": m.required})
            visits: list[dict[str, Any]] = []
            if t.resident:
                for u in sorted(centre.tickets.values(), key=lambda u: u.serial):
                    if u.resident == t.resident and u.id != t.id:
                        visits.append({"ticket": u.id, "number": u.number, "day": u.day,
                                       "item": u.item, **_text(cat.items[u.item].name),
                                       "state": u.state.value, "files": self._files(u.id)})
                for k in sorted(centre.cases.values(), key=lambda k: k.opened_at):
                    if k.resident == t.resident and k.id != t.id:
                        visits.append({"ticket": k.id, "number": k.id.split("-")[-1],
                                       "day": day_of(k.id) or "", "item": k.item,
                                       **_text(cat.items[k.item].name), "state": k.state,
                                       "case": True, "due_day": k.due_day,
                                       "files": self._files(k.id)})
                # Closed cases archived out of memory (hub/store/history.py), by SQL.
                for a in self.hub.archived_cases_of(t.resident):
                    visits.append({"ticket": a["id"], "number": a["id"].split("-")[-1],
                                   "day": day_of(a["id"]) or "", "item": a["item"],
                                   **(_text(cat.items[a["item"]].name)
                                      if a["item"] in cat.items  # an item since retired
                                      else {"zh": a["item"], "en": a["item"]}),
                                   "state": a["state"],
                                   "case": True, "due_day": a["due_day"],
                                   "files": self._files(a["id"])})
            out["ticket"] = {
                "id": t.id, "number": t.number, "state": t.state.value,
                "priority": t.priority.value,
                "items": [{"id": i, **_text(cat.items[i].name),
                           "kind": cat.items[i].kind, "minutes": cat.items[i].minutes}
                          for i in items],
                "issued_at": t.issued_at,
                "waited_min": round(max(0.0, w.since - t.issued_at) / 60.0, 1),
                "recalls": t.recalls, "note": t.note,
                "transferred": any(h[1] == "transferred" for h in t.history),
                "known_resident": t.resident is not None,
                "materials": materials, "files": self._files(t.id), "visits": visits,
                **self.returns.view(t),  # the kiosk's pre-review, related items
            }
        city_panel = self.city.view(n)
        if city_panel is not None:  # a hub with [city] only
            out["city"] = city_panel
        out["queue"] = self._queue_of(n, now)
        reqs = [r for r in centre.help_requests.values() if r.window == n]
        out["help"] = _help_view(reqs[-1], names) if reqs else None
        # what the help button calls unless the clerk picks another (窗口吹哨 科室报到)
        out["help_department"] = default_department(centre, n)
        return out

    def _queue_of(self, n: int, now: float) -> dict[str, Any]:
        """Window `n`'s queue as its console shows it: how many wait, the longest wait, the
        ones sent to it, the first QUEUE_LIST waiting and the ones it would call next. Each
        is a walk of the whole queue (the next ones NEXT_LIST walks: the ordering policy
        asked once per place), 2-3 ms with ~950 waiting: 30 consoles rebuilt 4 times a
        second were most of what the live views cost the hub (issue 14). Windows of the
        same kind and skills that no ticket is sent to see the same queue: during one pass
        of the live flusher (the state as it was, to the second) it is walked, and its rows
        made, once for all of them; their snapshots share it (one object: a delta of it is
        then computed once for all their feeds, hub/web/livepatch.py `Memo`)."""
        centre = self.hub.centre
        w = centre.windows[n]
        key = (self.site.live.shared_key(self.hub.pos), int(now))
        if self._queues is None or self._queues[0] != key:
            sent = {u.target_window for u in centre.queue if u.target_window is not None}
            self._queues = (key, sent, {})
        _, sent, memo = self._queues
        alike = (w.kind, w.skills, n if n in sent else None)
        got = memo.get(alike)
        if got is None:
            got = memo[alike] = self._queue_view(n, now)
        return got  # type: ignore[no-any-return]

    def _queue_view(self, n: int, now: float) -> dict[str, Any]:
        """Window `n`'s queue, walked for it (`_queue_of`: for the windows alike)."""
        centre = self.hub.centre
        cat = centre.catalog
        eligible = [u for u in centre.queue if _eligible(u, n, centre.windows[n].skills)]
        oldest = min((u.issued_at for u in eligible), default=None)

        def row(u: Ticket) -> dict[str, Any]:
            return {"id": u.id, "number": u.number, "priority": u.priority.value,
                    "item": u.item, **_text(cat.items[u.item].name),
                    "waited_min": round(max(0.0, now - u.issued_at) / 60.0, 1),
                    "appointment_at": u.appointment_at,  # a booking's slot (预约)
                    # a window alike with `n` has no ticket sent to it: False there too
                    "targeted": u.target_window == n}

        return {
            "waiting": len(eligible),
            "longest_min": 0.0 if oldest is None else round((now - oldest) / 60.0, 1),
            "mine": [u.number for u in eligible if u.target_window == n],
            # appointments, priority, then normal, each oldest first (who is called next
            # is the policy's): a clerk marks a resident priority from here
            "list": [row(u) for u in eligible[:QUEUE_LIST]],
            # who this window would call next, in order, if nothing else happened (the
            # ordering policy's own choice, window_queue.upcoming): any can be called out
            # of turn with a reason (POST /console/call_ticket)
            "next": [row(u) for u in upcoming(centre, n, now, NEXT_LIST)],
        }

    def help_snapshot(self, arg: str) -> dict[str, Any]:
        names = self.staff.names()
        centre = self.hub.centre
        reqs = list(centre.help_requests.values())
        open_ = [_help_view(r, names) for r in reqs if r.answered_at is None]
        done = [_help_view(r, names) for r in reqs[::-1] if r.answered_at is not None][:10]
        for v in open_:
            w = centre.windows.get(v["window"])
            t = centre.tickets.get(w.ticket) if w is not None and w.ticket else None
            if t is not None and t.state in (TicketState.CALLED, TicketState.SERVING):
                v["ticket"] = t.number
                v["item"] = _text(centre.catalog.items[t.item].name)
        return {"now": self.site.clock(), "open": open_, "answered": done}

    # ---- specialist --------------------------------------------------------------------
    async def specialist_page(self, request: Request, s: Session) -> Response:
        return self.staff.page(request, s, "staff/specialist.html")

    async def help_state(self, request: Request, s: Session) -> Response:
        return JSONResponse(self.help_snapshot(""))

    async def answer(self, request: Request, s: Session) -> Response:
        body = await _json(request)
        try:
            pos = int(body.get("request", ""))
            req = self.hub.centre.help_requests.get(pos)
            mine = s.account.department
            # a call to another department is theirs, here as on /department (help_desk.py)
            if (req is not None and req.department is not None and mine is not None
                    and req.department != mine and not auth.may(s.account.role, "floor")):
                return JSONResponse({"code": "not_your_department", "msg": (
                    f"这是{req.department}科室的求助，您属于{mine} / this call is for "
                    f"department {req.department}, not yours ({mine})"),
                    "department": req.department}, status_code=403)
            await self.site.act(HelpAnswer(pos, s.account.username))
        except Rejected as e:
            return error(409, e.code, e.message)
        except (TypeError, ValueError):
            return error(400, "bad_request", "request: the help request's number")
        req = self.hub.centre.help_requests.get(pos)
        return JSONResponse(_help_view(req, self.staff.names()))


def _eligible(t: Ticket, n: int, skills: frozenset[str]) -> bool:
    """Ticket `t` waits for window `n` (sent there, or for an item it serves)."""
    return t.target_window == n if t.target_window is not None else t.item in skills


def _pause_labels(lang: str) -> dict[str, str]:
    """Pause reason code -> its label in the page's language (unspecified under "")."""
    k = {"zh_CN": 0, "zh_TW": 1}.get(lang, 2)
    out = {code: labels[k] for code, labels in desk.PAUSE_REASONS.items()}
    out[""] = desk.UNSPECIFIED_LABEL[k]
    return out


def _str(value: Any) -> str:
    """A text field of a JSON body: a string as it is, anything else empty."""
    return value if isinstance(value, str) else ""


def _window_number(value: Any) -> int | None:
    """A window number from a JSON body: an integer or a string of digits, nothing else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _refusal(status: int, code: str, msg: str, **facts: Any) -> JSONResponse:
    """An action refused before it reached the core: the code and message (zh-CN / English)
    the page shows, and the facts (the window pressed for, the user's own) it words them
    with in the page's language."""
    return JSONResponse({"code": code, "msg": msg, **facts}, status_code=status)


def _help_view(r: HelpRequest | None, names: dict[str, str]) -> dict[str, Any]:
    if r is None:  # answered, and gone with a day's close since (the view of nothing)
        return {k: None for k in ("request", "window", "clerk", "clerk_name", "at",
                                  "answered_at", "by", "by_name", "answer_s", "department",
                                  "arrived_at", "resolved_at", "escalated_at")}
    return {
        "request": r.request, "window": r.window, "clerk": r.clerk,
        "clerk_name": names.get(r.clerk or "", r.clerk),
        "at": r.at, "answered_at": r.answered_at, "by": r.by,
        "by_name": names.get(r.by or "", r.by),
        "answer_s": None if r.answered_at is None else round(r.answered_at - r.at, 1),
        "department": r.department, "arrived_at": r.arrived_at,
        "resolved_at": r.resolved_at, "escalated_at": r.escalated_at,
    }


def routes(staff: Staff) -> list[BaseRoute]:
    con = Console(staff)
    g = staff.guard
    return [
        Route("/console", g("console")(con.page), methods=["GET"]),
        Route("/console/state", g("console")(con.state), methods=["GET"]),
        Route("/console/files/{ticket}/{name}", g("console")(con.file), methods=["GET"]),
        Route("/console/{action}", g("console")(con.act), methods=["POST"]),
        Route("/specialist", g("help.answer")(con.specialist_page), methods=["GET"]),
        Route("/specialist/state", g("help.answer")(con.help_state), methods=["GET"]),
        Route("/specialist/answer", g("help.answer")(con.answer), methods=["POST"]),
    ]
