"""The supervisor dashboard (live floor, alerts, day summary, the waits of priority and
normal tickets apart, window control) and the device fleet page (supervisors and
technicians). The numbers come from floor.py and hub/core/measures.py."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..app import admission
from ..core import booking, ratings
from ..core import commands as c
from ..core.centre import Centre
from ..core.measures import tier_waits
from ..core.rejected import Rejected
from ..store.accounts import Session
from . import floor, followups
from .arrivals_view import ArrivalsView
from .case_alerts import case_alerts
from .live import Pieces, drain
from .staff import Staff, _json, error
from .trips_view import TripsView

log = logging.getLogger("onewindow.hub")
HISTORY_DAYS = 30  # the dashboard's "last 30 days" (today not included)


class Dashboard:
    def __init__(self, staff: Staff) -> None:
        self.staff = staff
        self.site = staff.site
        self.hub = staff.site.hub
        # "now": the server's clock, for the page's skew; alone it is no change to send
        self.site.live.channel("staff-floor", self.floor_pieces, volatile=("now",))
        self.site.live.channel("staff-fleet", self.fleet_snapshot)
        # The fleet summary it shows is recomputed once a second (runner.FLEET_TICK); its
        # ages ("seen 3 s ago") change with every build: no need for more than one a second.
        self.site.live.pace("staff-fleet", 1.0)
        self._history_cache: tuple[dt.date | None, dict[str, Any] | None] = (None, None)
        self.trips = TripsView(self.site)  # pre-review, one trip (预审 / 一次办成)
        self.facts = floor.TicketFacts()  # each ticket's wait and one-window, kept
        # today's arrivals per half-hour beside the forecast (arrivals_view.py), by the
        # holiday calendar of centre.toml's [forecast] holidays (mainland China's without a
        # configuration)
        journal = self.site.port.journal
        config = staff.config
        self.arrivals = ArrivalsView(journal.engine if journal is not None else None,
                                     self.hub.centre.config.utc_offset_minutes,
                                     calendar_code=config.forecast_holidays
                                     if config is not None else None,
                                     changed=self.site.live.changed)

    def floor_snapshot(self, arg: str = "") -> dict[str, Any]:
        """The supervisors' floor now, whole (the JSON endpoints)."""
        return drain(self.floor_pieces(arg))

    def floor_pieces(self, arg: str = "") -> Pieces:
        """The floor built in pieces for the live view: a dozen parts, 3-7 ms in all with a
        full hall, were one piece of the hub's loop that a keypad's call arriving meanwhile
        waited behind (issue 14: tools/bench/bench_live.py); the flusher lets the hub's own
        work in between the parts (live.Pieces)."""
        centre, now = self.hub.centre, self.site.clock()
        qs = floor.queues(centre, now)
        yield
        # the day's summary walks today's tickets: the items served per window are counted
        # on the way (floor.TicketFacts)
        summary = {**floor.summary(centre, self.facts), **_ratings_today(centre)}
        yield
        snap: dict[str, Any] = {
            "now": now,
            "windows": floor.windows(centre, now, self.staff.names(), self.facts.served()),
            # residents per half-hour today, and the forecast for today
            "arrivals": self.arrivals.view(centre, now),
            "queues": qs,
            "lines": floor.lines(qs, centre),
        }
        yield
        snap["alerts"] = (floor.alerts(centre, qs, now, self.staff.targets)
                          + floor.device_alerts(self._fleet(now)["alerts"])
                          + case_alerts(centre, now))  # promised cases' deadlines
        snap["summary"] = summary
        # follow-ups of low ratings (差评整改) until closed (hub/web/followups.py)
        snap["followups"] = followups.rows(centre)
        yield
        # priority waits apart from normal ones (and booked ones), today
        snap["tiers"] = tier_waits(self.facts.today(centre), now, self.facts.wait)
        snap["history"] = self._history()
        snap["targets"] = {"queue_limit": self.staff.targets.queue_limit,
                           "target_min": self.staff.targets.target_min}
        yield
        # admission control: the mode, and how many more residents the open windows can
        # still call before closing (hub/app/admission.py)
        snap["admission"] = {"mode": admission.mode(self.hub),
                             "configured": self.hub.admission,
                             "switched": _switched(self.hub),
                             "can_serve": admission.can_serve(self.hub, now)}
        yield
        # booked vs walk-in per slot today (hub/core/booking.py today_load)
        snap["bookings"] = booking.today_load(centre, now)
        # pre-review that counts: today's and the last 30 days' (trips_view.py)
        snap["trips"] = self.trips.view()
        return snap

    def _history(self) -> dict[str, Any] | None:
        """The last HISTORY_DAYS closed days, by SQL from the history tables (past days are
        not in memory: hub/store/history.py). They change only when a day closes, so the
        query runs once a day, not on every update of the live floor."""
        journal = self.site.port.journal
        if journal is None:  # no journal (unit tests of the pages)
            return None
        today = self.hub.centre.local_date(self.site.clock())
        if self._history_cache[0] != today:
            from ..store.history import History

            first = (today - dt.timedelta(days=HISTORY_DAYS)).strftime("%Y%m%d")
            last = (today - dt.timedelta(days=1)).strftime("%Y%m%d")
            try:
                summary = History(journal.engine).summary(first, last)
            except Exception as e:  # storage away: the live floor goes on without it
                log.warning("dashboard history not read: %s", e)
                return None
            self._history_cache = (today, summary)
        return self._history_cache[1]

    def _fleet(self, now: float) -> dict[str, Any]:
        """The same summary the hub publishes on hub/fleet (hub/fleetwatch.py)."""
        return self.hub.fleet.summary(self.hub.registry.devices.values(), now)

    def fleet_snapshot(self, arg: str = "") -> dict[str, Any]:
        now = self.site.clock()
        fleet = self._fleet(now)
        devices = fleet["devices"]
        today = self.hub.centre.local_date(now)
        for v in devices:
            # how long ago, and when in the centre's own time (not the browser's zone);
            # None: nothing from the device itself since the hub started
            seen = v["last_seen"]
            v["seen_s"] = max(0, round(now - seen)) if seen else None
            local = self.hub.centre.local_time(seen) if seen else None
            v["seen_text"] = (None if local is None else f"{local:%H:%M:%S}"
                              if local.date() == today else f"{local:%Y-%m-%d %H:%M}")
        refused = [dict(r) for r in list(self.hub.refused)[-20:]][::-1]
        for r in refused:  # in the centre's time, as "last seen"
            r["at_text"] = f"{self.hub.centre.local_time(r['at']):%m-%d %H:%M:%S}"
        return {"now": now, "devices": devices, "refused": refused, "alerts": fleet["alerts"],
                "online": fleet["online"], "total": fleet["total"]}

    async def page(self, request: Request, s: Session) -> Response:
        cat = self.hub.centre.catalog
        lines = sorted(cat.lines.values(), key=lambda x: x.prefix)
        return self.staff.page(request, s, "staff/dashboard.html", lines=lines,
                               targets=self.staff.targets,
                               admission_mode=admission.mode(self.hub),
                               admission_switched=_switched_text(self.hub),
                               followups=followups.rows(self.hub.centre),
                               bookings=booking.today_load(self.hub.centre,
                                                           self.site.clock()))

    async def state(self, request: Request, s: Session) -> Response:
        return JSONResponse(self.floor_snapshot())

    async def admission(self, request: Request, s: Session) -> Response:
        """A supervisor switches admission control: {mode: "off" | "warn" | "stop"}.
        Journaled with who did it (hub/app/admission.py SetAdmission); answers the
        dashboard's admission part."""
        body = await _json(request)
        mode = body.get("mode")
        if mode not in ("off", "warn", "stop"):
            return error(400, "bad_mode", 'mode: one of "off", "warn", "stop" / '
                                          "模式应为 off、warn 或 stop")
        try:
            await self.site.act(admission.SetAdmission(mode, s.account.username))
        except Rejected as e:
            return error(409, e.code, e.message)
        log.info("admission control switched to %s by %s", mode, s.account.username)
        return JSONResponse(self.floor_snapshot()["admission"])

    async def fleet_page(self, request: Request, s: Session) -> Response:
        return self.staff.page(request, s, "staff/fleet.html")

    async def fleet_state(self, request: Request, s: Session) -> Response:
        return JSONResponse(self.fleet_snapshot())

    async def window(self, request: Request, s: Session) -> Response:
        action = request.path_params["action"]
        try:
            n = int(request.path_params["n"])
        except ValueError:
            return error(404, "unknown_window", "no such window")
        body = await _json(request)
        try:
            if action == "open":
                cmd: c.Command = c.OpenWindow(n, body.get("clerk") or None)
            elif action == "close":
                cmd = c.CloseWindow(n)
            elif action == "skills":
                skills = body.get("skills")
                if not isinstance(skills, list) or not all(isinstance(x, str) for x in skills):
                    return error(400, "bad_skills", "skills: a list of line or item ids")
                cmd = c.SetSkills(n, tuple(skills))
            else:
                return error(404, "unknown_action", f"no action {action!r}")
            await self.site.act(cmd)
        except Rejected as e:
            return error(409, e.code, e.message)
        return JSONResponse(self.floor_snapshot())


def _switched(hub: Any) -> dict[str, Any] | None:
    """Who switched admission control and when (with `at_text`, the centre's local time);
    None: as centre.toml says."""
    sw = admission.switched(hub)
    if sw is not None:
        sw["at_text"] = f"{hub.centre.local_time(sw['at']):%m-%d %H:%M}"
    return sw


def _switched_text(hub: Any) -> str | None:
    sw = _switched(hub)
    return None if sw is None else f"{sw['by']} · {sw['at_text']}"


def _ratings_today(centre: Centre) -> dict[str, Any]:
    """Today's ratings by level (5 非常满意 .. 1 非常不满意) and the state's 满意率,
    (非常满意 + 满意 + 基本满意) / all, over floor.summary's own count."""
    counts, rate = ratings.satisfaction(
        r.score for r in centre.ratings.values() if r.ticket.startswith(centre.day))
    return {"ratings_by_level": counts,
            "satisfaction_rate": round(rate, 3) if rate is not None else None}


def routes(staff: Staff) -> list[BaseRoute]:
    d = Dashboard(staff)
    g = staff.guard
    return [
        Route("/dashboard", g("floor")(d.page), methods=["GET"]),
        Route("/dashboard/state", g("floor")(d.state), methods=["GET"]),
        Route("/dashboard/windows/{n}/{action}", g("windows.manage")(d.window),
              methods=["POST"]),
        Route("/dashboard/admission", g("windows.manage")(d.admission), methods=["POST"]),
        Route("/fleet", g("fleet")(d.fleet_page), methods=["GET"]),
        Route("/fleet/state", g("fleet")(d.fleet_state), methods=["GET"]),
        *followups.routes(staff),
    ]
