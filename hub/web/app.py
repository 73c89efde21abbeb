"""The hub's HTTP API: documents from the window nodes' cameras, stored with the ticket/case.

    POST /api/tickets/{ticket}/files   multipart: `file` (image/jpeg | application/pdf,
                                       at most 10 MB), optional `kind` (default "page")
        201 {"ticket", "file", "bytes", "sha256"}   stored
        200 (same body)                             these bytes were already stored with it
        401 no or wrong bearer token (when any device has a token configured)
        404 no such ticket today, nor an open case by that id
        413 too large    415 not a JPEG or PDF    400 not a multipart upload with a `file`
    GET  /api/tickets/{ticket}/files   {"ticket", "files": [{file, bytes, sha256, ...}]}

`{ticket}` is a ticket id ("20261123-A017", as in the ticket's QR link), a number of today
("A017") or a case id. Errors are JSON {"code", "msg"}. The app runs in the hub's event loop,
so reading the Centre here is as safe as in the MQTT handler; file writes (fsync) go to a
worker thread.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..app import HubApp
from ..core.model import TicketState
from ..store.files import FileStore, day_of
from ..store.journal import StorageUnavailable
from .bodylimit import TooLarge, limited
from .port import HubPort
from .refusals import storage_unavailable
from .site import STATIC, CSRFMiddleware, Site

if TYPE_CHECKING:
    from ..config import HubConfig


log = logging.getLogger("onewindow.hub.web")

MAX_UPLOAD = 10 * 1024 * 1024  # bytes of file
MULTIPART_SLACK = 64 * 1024  # headers and boundaries around it
TYPES = {"image/jpeg": ("jpg", (b"\xff\xd8\xff",)), "application/pdf": ("pdf", (b"%PDF-",))}
KINDS = ("page", "photo", "document")


def error(status: int, code: str, msg: str, **headers: str) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg}, status_code=status, headers=headers or None)


class FilesAPI:
    def __init__(self, hub: HubApp, files: FileStore, tokens: Mapping[str, str],
                 clock: Callable[[], float] = time.time, max_bytes: int = MAX_UPLOAD,
                 lookup: Callable[[str], str | None] | None = None) -> None:
        self.hub = hub
        self.files = files
        self.tokens = dict(tokens)  # token -> device id
        # A token not in `tokens`: a node provisioned since the start (hub/fleet/hub.py).
        self.lookup = lookup
        self.clock = clock
        self.max_bytes = max_bytes

    # ---- helpers ---------------------------------------------------------------------
    def _device(self, request: Request) -> tuple[bool, str | None]:
        """(allowed, device id). With no tokens configured and no device registry (no
        provisioned centre), anyone on the network may post."""
        if not self.tokens and self.lookup is None:
            return True, None
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return False, None
        device = None
        for token, dev in self.tokens.items():  # compare all: no early exit to time
            if hmac.compare_digest(token.encode(), given.strip().encode()):
                device = dev
        if device is None and self.lookup is not None:
            device = self.lookup(given.strip())
        return device is not None, device

    def _resolve(self, ref: str) -> str | None:
        """The canonical id of today's ticket or an open case, or None. A closed case takes
        no documents, whether still in memory or archived (hub/store/history.py): only the
        core's memory is looked at, which holds every open case."""
        centre = self.hub.centre
        t = centre.find_ticket(ref)
        if t is not None:
            today = centre.local_date(self.clock()).strftime("%Y%m%d")
            # the core rolls the day lazily: a ticket of yesterday may still be in memory
            if t.day == today or t.state is TicketState.SERVING:
                return t.id
        case = centre.cases.get(ref)
        if case is not None and case.state == "open":
            return case.id
        return None

    # ---- endpoints -------------------------------------------------------------------
    async def post_file(self, request: Request) -> JSONResponse:
        ok, device = self._device(request)
        if not ok:
            return error(401, "unauthorized", "a valid device bearer token is required",
                         **{"WWW-Authenticate": "Bearer"})
        ref = request.path_params["ticket"]
        ticket = self._resolve(ref)
        if ticket is None or day_of(ticket) is None:
            return error(404, "unknown_ticket", f"no ticket {ref} today and no open case {ref}")
        limit = self.max_bytes + MULTIPART_SLACK
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            return error(413, "too_large", f"files up to {self.max_bytes} bytes")
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            return error(400, "not_multipart", "send multipart/form-data with a `file` part")
        body = Request(request.scope, limited(request.receive, limit))
        try:
            async with body.form(max_files=1, max_fields=4, max_part_size=1024) as form:
                upload = form.get("file")
                kind = form.get("kind") or "page"
                if not isinstance(upload, UploadFile):
                    return error(400, "no_file", "the multipart body has no `file` part")
                if not isinstance(kind, str) or kind not in KINDS:
                    return error(400, "bad_kind", f"kind must be one of {', '.join(KINDS)}")
                part_type = (upload.content_type or "").split(";")[0].strip().lower()
                if part_type not in TYPES:
                    return error(415, "unsupported_type",
                                 f"{part_type or 'no content type'}: send image/jpeg or "
                                 "application/pdf")
                data = await upload.read(self.max_bytes + 1)
        except TooLarge:
            return error(413, "too_large", f"files up to {self.max_bytes} bytes")
        except HTTPException as e:  # starlette's multipart parser: malformed body
            return error(400, "bad_multipart", str(e.detail))
        except MultiPartException as e:
            return error(400, "bad_multipart", e.message)
        if len(data) > self.max_bytes:
            return error(413, "too_large", f"files up to {self.max_bytes} bytes")
        ext, magics = TYPES[part_type]
        if not data.startswith(magics):
            return error(415, "unsupported_type", f"the bytes are not a {part_type} file")
        entry, created = await asyncio.to_thread(
            self.files.save, ticket, data, ext, part_type, kind, device, self.clock())
        log.info("%s %s for %s from %s (%d bytes)", "stored" if created else "already had",
                 entry.file, ticket, device or "?", entry.bytes)
        return JSONResponse({"ticket": ticket, "file": entry.file, "bytes": entry.bytes,
                             "sha256": entry.sha256}, status_code=201 if created else 200)

    async def list_files(self, request: Request) -> JSONResponse:
        ok, _ = self._device(request)
        if not ok:
            return error(401, "unauthorized", "a valid device bearer token is required",
                         **{"WWW-Authenticate": "Bearer"})
        ref = request.path_params["ticket"]
        ticket = self._resolve(ref) or (ref if day_of(ref) else None)
        if ticket is None:
            return error(404, "unknown_ticket", f"no ticket {ref} today and no open case {ref}")
        entries = await asyncio.to_thread(self.files.list, ticket)
        if not entries and self._resolve(ref) is None:
            return error(404, "unknown_ticket", f"no ticket or files for {ref}")
        files: list[dict[str, Any]] = [e.to_dict() for e in entries]
        return JSONResponse({"ticket": ticket, "files": files})


def create_app(hub: HubApp, files: FileStore, tokens: Mapping[str, str] | None = None,
               clock: Callable[[], float] = time.time, max_bytes: int = MAX_UPLOAD,
               port: HubPort | None = None, site: Site | None = None,
               config: HubConfig | None = None) -> Starlette:
    """The hub's whole HTTP side: the files API, live updates, the public pages (hall,
    kiosk, resident phone page) and the staff pages (console, dashboard)."""
    from ..city.features_web import routes as city_routes
    from . import api as systems_api
    from . import booking, landing, metrics, pickup, public, remote, staffpages

    site = site or Site(hub, port, clock)
    site.files = files  # type: ignore[attr-defined]  # the staff console lists them
    site.config = config  # type: ignore[attr-defined]  # database URL, alert targets
    api = FilesAPI(hub, files, tokens or {}, clock, max_bytes,
                   lookup=site.port.token_lookup)
    routes: list[BaseRoute] = [
        Route("/api/tickets/{ticket}/files", api.post_file, methods=["POST"]),
        Route("/api/tickets/{ticket}/files", api.list_files, methods=["GET"]),
        Route("/live/{channel}", _live(site)),
        Route("/live/{channel}/{arg}", _live(site)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        *public.routes(site),
        *remote.routes(site),  # /remote: a number from the resident's phone
        *booking.routes(site),  # /book, /kiosk/checkin: booking (hub/web/booking.py)
        *staffpages.routes(site),
        *landing.routes(site),  # /: who goes where; /favicon.ico (hub/web/landing.py)
        *pickup.routes(site),  # /kiosk/pickup, the window's hand-over (hub/web/pickup.py)
        *metrics.routes(site),  # /metrics: Prometheus text format (hub/web/metrics.py)
        *city_routes(site),  # /city/...: cases across centres, diversion (city/features_web.py)
        *systems_api.routes(site),  # /api/v1: other systems' API (hub/web/api.py)
    ]
    app = Starlette(routes=routes,
                    middleware=[*staffpages.middleware(site), Middleware(CSRFMiddleware)],
                    exception_handlers={StorageUnavailable: _storage_unavailable})
    app.state.site = site
    return app


async def _storage_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Any action while the journal cannot store (database down, disk full): nothing was
    decided; the page says so and the action can be pressed again in a moment."""
    log.warning("%s %s refused: %s", request.method, request.url.path, exc)
    lang = request.app.state.site.lang(request)  # the page's language (zh-CN, zh-TW, en)
    return JSONResponse({"code": "storage_unavailable", "msg": storage_unavailable(lang)},
                        status_code=503, headers={"Retry-After": "5"})


def _live(site: Site) -> Callable[[Request], Any]:
    async def live(request: Request) -> Any:
        channel = request.path_params["channel"]
        if channel not in site.live.channels:
            return error(404, "unknown_channel", f"no live channel {channel!r}")
        allowed = getattr(site, "may_watch", None)
        if allowed is not None and not allowed(request, channel):
            return error(403, "forbidden", f"channel {channel!r} needs a staff login")
        return site.live.response(channel, request.path_params.get("arg", ""), request)

    return live
