"""Community stations (协管员代收): the station page, where a community assistant opens a
promised case for a resident, and the centre's side of the paper originals' hand-over.

    GET  /station                    the station page (tablet): look up an item, check its
                                     materials, photograph them, open the case
    GET  /station/search.json?q=     catalog search (the kiosk's, hub/web/search.py)
    GET  /station/items/{item}       an item's materials (the kiosk's pre-review list)
    GET  /station/catalog.json       every item with its materials: the page keeps it, so it
                                     can look items up while its link is down
    POST /station/cases              multipart: key, item, id_sealed, materials ("0,2"),
                                     collected_at, photo (1-12 JPEGs)
        201 {case, due_day, item, key}             opened
        200 (same, "repeat": true)                 this key opened it before: the earlier
                                                   result (a resubmission never duplicates)
        409 station_edited | station_handed_over   the key was used for other content, or
                                                   its case's papers were handed over
        400/413/415 bad input                      nothing changed
    GET  /station/cases              this station's cases only, and how many await hand-over
    POST /station/handover           {count}: the papers not yet handed over, as one batch
    GET  /stations/handovers         the centre: batches sent by the stations
    POST /stations/handovers/{batch}/receive   {count}: counted on arrival

A station account (`station` role) acts for its own station (`Account.station`); every
answer is about that station alone. The resident's ID number comes sealed to the hub
(idseal.py) and leaves this module only as the card path's resident token. Photos are
stored with the case (hub/store/files.py, as the window nodes' pages) after the case is
journaled; a resubmission stores them again, which the store dedupes, so a crash between
the two leaves no case without its photos once the station's queue retries.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..config import ConfigError
from ..core.rejected import Rejected
from ..core.stations import MAX_PHOTOS, StationHandOver, StationReceive, Stations, StationSubmit
from ..store.accounts import Session
from ..store.files import FileStore
from .bodylimit import TooLarge, limited
from .idseal import IdSeal, SealError
from .pubkit import item_json
from .search import Search
from .staff import Staff, _json, error
from .traditional import Traditional

log = logging.getLogger("onewindow.hub.web")

MAX_PHOTO = 10 * 1024 * 1024  # bytes, as a window node's upload (hub/web/app.py)
MAX_BODY = 48 * 1024 * 1024  # the whole submission: photos, fields, boundaries
JPEG = b"\xff\xd8\xff"
# Refusals that name the case the key opened (409); the others are bad input (400).
CONFLICTS = ("station_edited", "station_handed_over")


def content_digest(station: str, item: str, resident: str, materials: tuple[int, ...],
                   photos: tuple[str, ...]) -> str:
    """What a submission says, as one sha256: equal for a resubmission of the same queued
    entry, different for an edit. The resident token, not the seal (which is random)."""
    body = json.dumps([station, item, resident, sorted(materials), sorted(photos)],
                      separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


class BadSubmission(Exception):
    def __init__(self, status: int, code: str, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


class StationPages:
    def __init__(self, staff: Staff) -> None:
        self.staff = staff
        self.site = staff.site
        self.hub = staff.site.hub
        self.catalog = self.hub.centre.catalog
        self.search_index = Search(self.catalog)
        self.traditional = Traditional(self.catalog)
        config = staff.config
        self.names: dict[str, str] = dict(config.stations.names) if config is not None else {}
        self.seal: IdSeal | None = None
        try:
            key = config.stations.card_key() if config is not None else None
        except ValueError as e:  # said in one line at start (onewindow serve), not a trace
            raise ConfigError(str(e)) from e
        if key is not None:
            self.seal = IdSeal(key, self.hub.centre_id)

    @property
    def book(self) -> Stations:
        return self.hub.centre.stations  # type: ignore[no-any-return]

    @property
    def files(self) -> FileStore | None:
        return self.staff.files  # type: ignore[no-any-return]

    # ---- the station's own ---------------------------------------------------------------
    def _station(self, s: Session) -> str | None:
        return s.account.station

    def no_station(self) -> JSONResponse:
        return error(403, "no_station", "此账号不属于任何站点 / this account acts for no station")

    async def page(self, request: Request, s: Session) -> Response:
        station = self._station(s)
        if station is None:
            return self.staff.page(request, s, "staff/denied.html", 403, permission="station")
        return self.staff.page(request, s, "staff/station.html", station=station,
                               station_name=self.names.get(station, station),
                               seal_key=self.seal.public if self.seal else None)

    async def search(self, request: Request, s: Session) -> Response:
        q = request.query_params.get("q", "")[:40]
        return JSONResponse({"q": q, "items": self.traditional.annotate([
            {"id": i.id, "zh": i.name.zh, "en": i.name.en, "promised_days": i.promised_days}
            for i in self.search_index.search(q)])})

    async def item(self, request: Request, s: Session) -> Response:
        item = self.catalog.item(request.path_params["item"])
        if item is None:
            return error(404, "unknown_item", "未知事项 / unknown item")
        return JSONResponse(self.traditional.annotate(item_json(item, self.site)))

    async def catalog_json(self, request: Request, s: Session) -> Response:
        return JSONResponse({"items": self.traditional.annotate(
            [item_json(i, self.site) for i in self.catalog.items.values()])})

    def case_view(self, key: str) -> dict[str, Any]:
        sub = self.book.submissions[key]
        case = self.hub.centre.cases.get(sub.case)
        item = self.catalog.items.get(case.item) if case else None
        return self.traditional.annotate({
            "case": sub.case, "key": sub.key, "collected_at": sub.collected_at, "at": sub.at,
            "batch": sub.batch, "state": case.state if case else "archived",
            "due_day": case.due_day if case else None, "item": item.id if item else None,
            "zh": item.name.zh if item else "", "en": item.name.en if item else ""})

    async def cases(self, request: Request, s: Session) -> Response:
        station = self._station(s)
        if station is None:
            return self.no_station()
        rows = [self.case_view(x.key) for x in self.book.of_station(station)]
        batches = [b.to_dict() for b in self.book.batches.values() if b.station == station]
        return JSONResponse({"station": station, "cases": rows[::-1],
                             "pending": len(self.book.pending(station)),
                             "batches": batches[::-1]})

    async def submit(self, request: Request, s: Session) -> Response:
        station = self._station(s)
        if station is None:
            return self.no_station()
        try:
            key, cmd, photos = await self._read(request, station, s.account.username)
        except BadSubmission as e:
            return error(e.status, e.code, e.msg)
        repeat = False
        try:
            await self.site.act(cmd)
        except Rejected as e:
            if e.code in CONFLICTS:
                return JSONResponse({"code": e.code, "msg": e.message, **e.detail},
                                    status_code=409)
            if e.code != "station_repeat":
                return JSONResponse({"code": e.code, "msg": e.message, **e.detail},
                                    status_code=400)
            repeat = True  # nothing journaled: the earlier result
        sub = self.book.submissions[key]
        await self._store(sub.case, photos, s.account.username)
        case = self.hub.centre.cases.get(sub.case)
        body = {"case": sub.case, "key": key, "item": cmd.item, "repeat": repeat,
                "due_day": case.due_day if case else None}
        if not repeat:
            log.info("station %s opened case %s (%s, %d photos)", station, sub.case, cmd.item,
                     len(photos))
        return JSONResponse(body, status_code=200 if repeat else 201)

    async def _read(self, request: Request, station: str, by: str
                    ) -> tuple[str, StationSubmit, list[bytes]]:
        """The submission's command and photos, from its multipart body: checked here as
        far as the adapter can (sizes, types, the seal), the rest by the core."""
        if self.seal is None:
            raise BadSubmission(503, "no_card_key", "本中心未配置证件号密钥（[stations] "
                                "card_key_file），站点暂不能受理 / the centre has no [stations] "
                                "card_key_file: stations cannot take ID numbers")
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise BadSubmission(400, "not_multipart", "send multipart/form-data")
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY:
            raise BadSubmission(413, "too_large", f"a submission up to {MAX_BODY} bytes")
        body = Request(request.scope, limited(request.receive, MAX_BODY))
        photos: list[bytes] = []
        try:
            async with body.form(max_files=MAX_PHOTOS, max_fields=8,
                                 max_part_size=4096) as form:
                fields = {k: form.get(k) for k in ("key", "item", "id_sealed", "materials",
                                                   "collected_at")}
                for upload in form.getlist("photo"):
                    if not isinstance(upload, UploadFile):
                        raise BadSubmission(400, "bad_photo", "photo: a file part")
                    kind = (upload.content_type or "").split(";")[0].strip().lower()
                    data = await upload.read(MAX_PHOTO + 1)
                    if len(data) > MAX_PHOTO:
                        raise BadSubmission(413, "too_large", f"photos up to {MAX_PHOTO} bytes")
                    if kind != "image/jpeg" or not data.startswith(JPEG):
                        raise BadSubmission(415, "unsupported_type", "photos: JPEG images")
                    photos.append(data)
        except TooLarge as e:
            raise BadSubmission(413, "too_large", f"a submission up to {MAX_BODY} bytes") from e
        except HTTPException as e:
            raise BadSubmission(400, "bad_multipart", str(e.detail)) from e
        except MultiPartException as e:
            raise BadSubmission(400, "bad_multipart", e.message) from e
        if not all(isinstance(v, str) for k, v in fields.items() if k != "collected_at"):
            raise BadSubmission(400, "bad_field", "key, item, id_sealed and materials are "
                                "required text fields")
        key, item, sealed = str(fields["key"]), str(fields["item"]), str(fields["id_sealed"])
        try:
            materials = tuple(int(x) for x in str(fields["materials"]).split(",") if x)
        except ValueError as e:
            raise BadSubmission(400, "bad_field", "materials: indices like 0,2,3") from e
        collected = fields["collected_at"]
        at: float | None = None
        if isinstance(collected, str) and collected:
            try:
                at = float(collected)
            except ValueError:
                at = math.nan
            if not math.isfinite(at):
                raise BadSubmission(400, "bad_field", "collected_at: seconds since 1970")
        try:
            resident = self.seal.token(sealed)
        except SealError as e:
            raise BadSubmission(400, e.code, e.msg) from e
        digests = tuple(hashlib.sha256(p).hexdigest() for p in photos)
        cmd = StationSubmit(station, key, item, resident,
                            content_digest(station, item, resident, materials, digests), by,
                            materials, digests, at)
        return key, cmd, photos

    async def _store(self, case: str, photos: list[bytes], by: str) -> None:
        files = self.files
        if files is None:
            return  # a site without a file store (unit tests of the pages alone)
        now = self.site.clock()
        for data in photos:
            await asyncio.to_thread(files.save, case, data, "jpg", "image/jpeg", "photo",
                                    f"station:{by}", now)

    async def hand_over(self, request: Request, s: Session) -> Response:
        station = self._station(s)
        if station is None:
            return self.no_station()
        count = _count((await _json(request)).get("count"))
        if count is None:
            return error(400, "bad_field", "份数须为正整数 / count: a whole number above 0")
        try:
            await self.site.act(StationHandOver(station, count, s.account.username))
        except Rejected as e:
            return JSONResponse({"code": e.code, "msg": e.message, **e.detail},
                                status_code=409 if e.code == "count_mismatch" else 400)
        batch = list(self.book.batches.values())[-1]
        return JSONResponse(batch.to_dict(), status_code=201)

    # ---- the centre's side ------------------------------------------------------------
    async def handovers(self, request: Request, s: Session) -> Response:
        batches = [{**b.to_dict(), "count": len(b.cases),
                    "station_name": self.names.get(b.station, b.station)}
                   for b in reversed(self.book.batches.values())]
        if "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"batches": batches})
        return self.staff.page(request, s, "staff/handovers.html", batches=batches)

    async def receive(self, request: Request, s: Session) -> Response:
        batch = request.path_params["batch"]
        count = _count((await _json(request)).get("count"))
        if count is None:
            return error(400, "bad_field", "份数须为正整数 / count: a whole number above 0")
        try:
            await self.site.act(StationReceive(batch, count, s.account.username))
        except Rejected as e:
            status = {"unknown_batch": 404, "count_mismatch": 409,
                      "already_received": 409}.get(e.code, 400)
            return JSONResponse({"code": e.code, "msg": e.message, **e.detail},
                                status_code=status)
        return JSONResponse(self.book.batches[batch].to_dict())


def _count(value: Any) -> int | None:
    """A JSON count: a whole number (not a string, not true), else None; the core judges
    its range."""
    return value if type(value) is int else None


def routes(staff: Staff) -> list[BaseRoute]:
    p = StationPages(staff)
    g = staff.guard
    return [
        Route("/station", g("station")(p.page), methods=["GET"]),
        Route("/station/search.json", g("station")(p.search), methods=["GET"]),
        Route("/station/items/{item}", g("station")(p.item), methods=["GET"]),
        Route("/station/catalog.json", g("station")(p.catalog_json), methods=["GET"]),
        Route("/station/cases", g("station")(p.cases), methods=["GET"]),
        Route("/station/cases", g("station")(p.submit), methods=["POST"]),
        Route("/station/handover", g("station")(p.hand_over), methods=["POST"]),
        Route("/stations/handovers", g("cases")(p.handovers), methods=["GET"]),
        Route("/stations/handovers/{batch}/receive", g("cases")(p.receive), methods=["POST"]),
    ]
