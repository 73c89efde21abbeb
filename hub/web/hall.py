"""The hall screen: the current call large, recent calls, estimated waits per department
line (等候时间预告), and the spoken announcement of each call, queued in the browser.

Live channel "hall" (no argument), snapshot::

    {"rev": 123,                       # journal position of the last call
     "calls": [{"id": "1763861000123-A017-3", "ticket": "A017", "window": 3,
                "ts": 1763861000.123, "zh": "请A017号到3号窗口办理业务",
                "en": "Number A017, please go to window 3",
                "priority": false}, ...],     # newest first, <= 8; true: 优先 shown
     "waits": [{"line": "social", "zh": "社会保险", "zh_tw": "社會保險" | "",
                "en": "Social insurance", "prefix": "A",
                "waiting": 5, "minutes": 12 | null,           # null: no window open
                "lo": 8 | null, "hi": 17 | null}, ...]}       # its 80% interval

A line's wait is the predicted wait (hub/forecast/wait.py) of a resident taking a ticket for
its representative item now, behind everyone already waiting; refreshed every 5 s or when
windows open or close (livewait.py), while calls and waiting counts follow every change.

A priority ticket's call carries `priority` and the board shows 优先 beside its number:
nothing more about the resident (not why) reaches the hall.

A call's id is new for every call and every recall of a ticket, so the page announces each
exactly once. /hall/voice/{id}.wav speaks only a call still in that list.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..core.catalog import COMPREHENSIVE
from ..core.model import Priority
from .livewait import LiveWaits
from .site import Site
from .tts import Voice, display_en, display_zh, spoken

log = logging.getLogger("onewindow.hub.web")


def call_id(ticket: str, window: int, at: float) -> str:
    return f"{int(at * 1000)}-{ticket}-{window}"


class Hall:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.voice = Voice()
        self.waits_cache = LiveWaits.of(site)  # refreshed every 5 s, not per call
        catalog = site.hub.centre.catalog
        # One representative item per line for its wait forecast: a comprehensive one, the
        # kind of window most of the line's residents queue for.
        self.rep: dict[str, str] = {}
        for item in catalog.items.values():
            if item.line not in self.rep or (
                    COMPREHENSIVE in item.window_kinds
                    and COMPREHENSIVE not in catalog.items[self.rep[item.line]].window_kinds):
                self.rep[item.line] = item.id
        self.waits_cache.items.update(self.rep.values())

    def routes(self) -> list[BaseRoute]:
        return [Route("/hall", self.page), Route("/hall/voice/{call}.wav", self.speech)]

    # ---- live state --------------------------------------------------------------------
    def calls(self) -> list[dict[str, Any]]:
        by_number = self.site.hub.centre.by_number
        out = []
        for c in self.site.hub.calls:
            # Today's ticket of that number, if issued before the call (a call kept from
            # yesterday is not today's ticket of the same number).
            t = by_number.get(c.ticket)
            priority = t is not None and t.issued_at <= c.at and t.priority is Priority.PRIORITY
            out.append({"id": call_id(c.ticket, c.window, c.at), "ticket": c.ticket,
                        "window": c.window, "ts": c.at, "zh": display_zh(c.ticket, c.window),
                        "en": display_en(c.ticket, c.window), "priority": priority})
        return out

    def waits(self) -> list[dict[str, Any]]:
        centre = self.site.hub.centre
        waiting: dict[str, int] = {}
        for t in centre.queue:
            line_id = centre.catalog.items[t.item].line
            waiting[line_id] = waiting.get(line_id, 0) + 1
        out = []
        for line in centre.catalog.lines.values():
            rep = self.rep.get(line.id)
            if rep is None:
                continue
            minutes = self.waits_cache.item(rep)
            point, lo, hi = minutes if minutes is not None else (None, None, None)
            out.append({"line": line.id, "zh": line.name.zh, "zh_tw": line.name.zh_tw,
                        "en": line.name.en,
                        "prefix": line.prefix, "waiting": waiting.get(line.id, 0),
                        "minutes": point, "lo": lo, "hi": hi})
        return out

    def snapshot(self, _arg: str = "") -> dict[str, Any]:
        return {"rev": self.site.hub.hall_rev, "calls": self.calls(), "waits": self.waits()}

    # ---- pages -------------------------------------------------------------------------
    async def page(self, request: Request) -> Response:
        voice = request.query_params.get("voice", "zh")
        langs = ["zh", "en"] if voice in ("en", "zh,en", "both") else (
            [] if voice == "off" else ["zh"])
        return self.site.render(request, "public/hall.html", snap=self.snapshot(),
                                voices=langs)

    async def speech(self, request: Request) -> Response:
        wanted = request.path_params["call"]
        lang = request.query_params.get("lang", "zh")
        if lang not in ("zh", "en"):
            return Response("unknown language", status_code=404)
        for c in self.site.hub.calls:
            if call_id(c.ticket, c.window, c.at) == wanted:
                break
        else:
            return Response("no such recent call", status_code=404)
        try:
            wav = await self.voice.wav(spoken(c.ticket, c.window, lang), lang)
        except (OSError, RuntimeError, TimeoutError) as e:
            log.warning("announcement for %s: %s", wanted, e)
            return Response("speech engine unavailable", status_code=503)
        return Response(wav, media_type="audio/wav",
                        headers={"Cache-Control": "public, max-age=3600"})
