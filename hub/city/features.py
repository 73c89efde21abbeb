"""A centre hub's side of the city features (issue 20): cases across centres, the city's
catalog, diversion. The decisions are the core's (hub/core/city.py, hub/core/diversion.py);
this adapter carries them over the city's NATS JetStream cluster, reconnecting forever, and
never blocks the hub: a centre cut off from the city works as before and catches up.

What travels, under hub/city/subjects.py's names (a centre's NATS user may publish only
under ``city.<centre>.>``; the city's router, hub/city/router.py, forwards):

- ``city.<me>.xcase`` a linked case's version written here (header ``Ow-To``: the other
  centres; ``Nats-Msg-Id: <key>:<version>``). The journal is the outbox: the core's links
  say which versions the city has not acknowledged (`CityBook.unsent`); after the stream's
  acknowledgement the hub journals `CitySent`, so a restart sends again what was not
  acknowledged, and the stream's dedupe window plus the core's versions keep a repeat from
  changing anything.
- ``city.<me>.xdoc`` a document of a routed case (its bytes in parts of `DOC_PART`), sent
  before the case's first version; ``Nats-Msg-Id: doc:<sha256>:<part>:<key>``.
- ``city.<me>.catalog`` the catalog version this centre runs, and the last one it refused.
- ``citydown.<me>.xcase|xdoc`` read through the durable consumer ``down-<me>``: an arrival
  is journaled (`CityArrive`) and then acknowledged; a repeat is refused by the core with
  nothing journaled, and acknowledged.
- ``cityall.catalog`` read through ``all-<me>``: a city catalog version, journaled as a
  `CatalogOffer` (the core refuses a bad one, keeping the old; a good one is put in place
  at the day's close).
- ``city.<me>.xstatus`` each case of a card as it changes (token, city-wide key, state,
  version: no name or number), which the router indexes; ``cityq.<me>`` asks the router
  for a card's open cases anywhere in the city (GET /city/cases).
- ``citywaits.<centre>`` plain NATS (not stored: a wait is only worth its last value): this
  centre's waits every `waits_every_s`, and the neighbours' (``[city] neighbours``). Every
  centre's waits also carry its name: the hub keeps each centre's name as last heard
  (`centre_name`), so the pages name the centres of a resident's cases elsewhere in the
  city instead of showing their ids. A waits message counts only on its own centre's
  subject (the cluster lets a centre publish only its own).

[city] in centre.toml::

    [city]
    servers = ["nats://city-1:4222", "nats://city-2:4222", "nats://city-3:4222"]
    user = "centre-c01"
    password = "..."
    public_url = "https://c01.example.gov.cn"   # this centre's pages, for diversion links
    waits_every_s = 5
    departments = { pension = "c02" }          # departments whose back office is elsewhere
    neighbours = [ { id = "c02", km = 2.4 }, { id = "c03", km = 3.1 } ]
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import city, diversion
from ..core.rejected import Rejected
from ..store.journal import StorageUnavailable
from . import subjects as sj

log = logging.getLogger("onewindow.hub.city")

DOC_PART = 256 * 1024  # bytes of a document per message (the cluster's max_payload is 1 MB)
OUTBOX_TICK = 1.0  # s: the outbox looks again this often (and at once after a case step)
FETCH = 20
XCASE, XDOC, XDOCS, CATALOG, XSTATUS = "xcase", "xdoc", "xdocs", "catalog", "xstatus"
DOCS_TICK = 2.0  # s: how often the origin looks for documents added to its routed cases
INDEX_BUCKET = "CITY_CASES"  # the router's index of cards' cases (hub/city/router.py)
TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")  # a card's resident token, as a KV key
# What a card's cases in the city (`city_cases`) are waited for at most, by a device's
# answer (hub/runner.py; the device waits 5 s) and the clerk console (hub/web/console_city.py).
CASES_WAIT_S = 2.5
INDEX_TICK = 1.0  # s
OWN_FRESH_S = 1.0  # this centre's waits, worked out again at most this often
SLOTS_FRESH_S = 30.0  # ... and its free booking slots
MAX_NAMED = 5000  # centres whose names are kept (a city has ~220)
NAME_CHARS = 80  # of a centre's name, in each language
NAME_LANGS = ("zh", "zh_tw", "en")


def json_object(data: bytes | str) -> dict[str, Any]:
    """A city message's body: a JSON object, else ValueError. What another centre sent
    may be anything: a list, a string, bytes that are not UTF-8, or arrays nested past the
    parser's depth (RecursionError, made a ValueError here), and is dropped, never retried."""
    try:
        body = json.loads(data)
    except RecursionError as e:
        raise ValueError("nested deeper than a city message is") from e
    if not isinstance(body, dict):
        raise ValueError(f"a JSON {type(body).__name__}, not an object")
    return body


def waits_subject(centre: str) -> str:
    return f"citywaits.{sj.token(centre)}"


@dataclass(frozen=True, slots=True)
class CitySettings:
    servers: tuple[str, ...]
    user: str | None = None
    password: str | None = None
    public_url: str = ""
    waits_every_s: float = 5.0
    departments: dict[str, str] = field(default_factory=dict)  # department -> centre
    neighbours: tuple[diversion.Neighbour, ...] = ()

    @classmethod
    def from_table(cls, t: dict[str, Any]) -> CitySettings | None:
        """[city] of centre.toml; None when there is none (no city: an island)."""
        if not t or not t.get("servers"):
            return None
        known = {"servers", "user", "password", "public_url", "waits_every_s", "departments",
                 "neighbours"}
        unknown = set(t) - known
        if unknown:
            log.debug("[city] keys for other parts of the city tier: %s", sorted(unknown))
        servers = t["servers"]
        servers = (servers,) if isinstance(servers, str) else tuple(servers)
        neighbours = tuple(diversion.Neighbour(sj.token(str(n["id"])), float(n.get("km", 0)))
                           for n in t.get("neighbours", ()))
        departments = {str(k): sj.token(str(v)) for k, v in t.get("departments", {}).items()}
        return cls(servers, t.get("user"), t.get("password"), str(t.get("public_url", "")),
                   float(t.get("waits_every_s", 5.0)), departments, neighbours)


class CityFeatures:
    """Started by `serve` when centre.toml has [city]; `port` is the HubRunner (submit,
    subscribe, app), `files` the hub's FileStore."""

    def __init__(self, settings: CitySettings, port: Any, files: Any,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings, self.port, self.files, self.clock = settings, port, files, clock
        self.me = port.app.centre_id
        self.heard: dict[str, diversion.Waits] = {}
        self.names: dict[str, dict[str, str]] = {}  # centre id -> its name, as last heard
        self.connected = False
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._nc: Any = None
        self._docs_sent: set[tuple[str, str]] = set()
        self._reported: tuple[str, Any] | None = None
        self._indexed: dict[str, dict[str, Any]] = {}  # case id -> its status last sent
        self._own: diversion.Waits | None = None
        self._slots: tuple[float, dict[str, float | None]] | None = None
        self.incoming = Path(files.root) / "city-incoming"
        self.arrived = 0  # arrivals journaled (GET /city/status)
        self.repeats = 0  # repeats refused by the core (not journaled)
        port.subscribe(self._after_step)

    # ---- the hub's side ------------------------------------------------------------------
    @property
    def centre(self) -> Any:
        return self.port.app.centre

    def _after_step(self, step: Any) -> None:
        if any(r.op in ("city_route", "case", "city_arrive", "catalog_offer")
               for r in step.records) or not step.records:
            self._wake.set()

    def approver_of(self, case_id: str) -> str | None:
        """The centre whose back office approves case `case_id` ([city] departments), or
        None when it is this centre's own."""
        case = self.centre.cases.get(case_id)
        if case is None:
            return None
        return self.settings.departments.get(case.department)

    async def route(self, case_id: str, pickup: str) -> Any:
        """Route a case accepted here to its department's centre, the result collected at
        `pickup` (the resident's choice): its documents go with it."""
        approver = self.approver_of(case_id) or self.me
        case = self.centre.cases.get(case_id)
        docs: tuple[str, ...] = ()
        if case is not None:
            listed = await asyncio.to_thread(self.files.list, case.ticket)
            docs = tuple(dict.fromkeys(f.sha256 for f in listed))
        step = await self.port.submit(city.CityRoute(case_id, approver, pickup, docs))
        self._wake.set()
        return step

    def own(self) -> diversion.Waits:
        """This centre's waits, worked out at most every OWN_FRESH_S (pages ask it on every
        load) and its free booking slots at most every SLOTS_FRESH_S (a walk of the
        bookings)."""
        now = self.clock()
        if self._own is not None and now - self._own.at < OWN_FRESH_S:
            return self._own
        if self._slots is None or now - self._slots[0] >= SLOTS_FRESH_S:
            self._slots = (now, diversion.free_slots(self.centre, now))
        self._own = diversion.own_waits(self.centre, now, self.settings.public_url,
                                        self._slots[1])
        return self._own

    def centre_name(self, centre: str) -> dict[str, str] | None:
        """Centre `centre`'s name (zh, zh_tw, en) as its waits last said it; this centre's
        own from its catalog; None for a centre not heard from since the hub started."""
        if centre == self.me:
            return self.own().name or None
        return self.names.get(centre)

    def nearby(self) -> list[diversion.Nearby]:
        return diversion.nearby(self.own(), list(self.settings.neighbours), self.heard,
                                self.clock())

    def nearest_free(self, line: str) -> diversion.FreeSlot | None:
        return diversion.nearest_free(line, self.own(), list(self.settings.neighbours),
                                      self.heard, self.clock())

    # ---- the connection ------------------------------------------------------------------
    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._run(), name="city-link"))

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()

    async def _run(self) -> None:
        import nats

        async def disconnected() -> None:
            self.connected = False
            log.warning("city: disconnected from the city tier; working alone, catching up "
                        "on return")

        async def reconnected() -> None:
            self.connected = True
            self._wake.set()
            log.info("city: connected again")

        async def error(e: Exception) -> None:
            log.debug("city: %s", e)

        while True:
            try:
                self._nc = await nats.connect(
                    servers=list(self.settings.servers), user=self.settings.user,
                    password=self.settings.password, inbox_prefix=sj.inbox_prefix(self.me),
                    max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=2,
                    disconnected_cb=disconnected, reconnected_cb=reconnected,
                    error_cb=error, allow_reconnect=True)
                break
            except Exception as e:  # the city is away at start: keep trying, quietly
                log.warning("city: cannot reach the city tier (%s); retrying", e)
                await asyncio.sleep(2.0)
        self.connected = True
        nc = self._nc
        js = nc.jetstream()
        await nc.subscribe("citywaits.*", cb=self._on_waits)
        loops = [self._outbox(js), self._inbox(js, sj.STREAM_DOWN, sj.down_durable(self.me)),
                 self._inbox(js, sj.STREAM_ALL, f"all-{sj.token(self.me)}"), self._waits(nc),
                 self._report(js), self._index(js), self._documents()]
        await asyncio.gather(*loops)

    # ---- out -----------------------------------------------------------------------------
    async def _outbox(self, js: Any) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), OUTBOX_TICK)
            self._wake.clear()
            if not self.connected or not self.port.storage_available():
                continue
            for link in self.centre.city.unsent():
                try:
                    await self._send(js, link)
                except Exception as e:
                    log.warning("city: case %s not sent yet (%s); again shortly", link.key, e)
                    break

    async def _send(self, js: Any, link: city.Link) -> None:
        to = city.recipients(self.centre, link.key)
        if link.origin == self.me and (link.sent == 0 or link.docs_sent < len(link.documents)):
            for sha in link.documents:
                await self._send_doc(js, link, sha, to)
        if link.origin == self.me and link.docs_sent < len(link.documents):
            n = len(link.documents)
            await js.publish(sj.record(self.me, XDOCS),
                             json.dumps({"key": link.key,
                                         "documents": list(link.documents)}).encode(),
                             headers={"Nats-Msg-Id": f"{link.key}:docs:{n}",
                                      "Ow-To": ",".join(to)}, timeout=5)
            with contextlib.suppress(Rejected):
                await self.port.submit(city.CityDocsSent(link.key, n))
        if link.sent >= link.version:
            return
        msg = city.outgoing(self.centre, link.key)
        if msg is None:
            return
        version = msg["version"]
        await js.publish(sj.record(self.me, XCASE), json.dumps(msg).encode(),
                         headers={"Nats-Msg-Id": f"{link.key}:{version}",
                                  "Ow-To": ",".join(to)}, timeout=5)
        with contextlib.suppress(Rejected):  # marked already: sent twice before the mark
            await self.port.submit(city.CitySent(link.key, version))

    async def _send_doc(self, js: Any, link: city.Link, sha: str, to: tuple[str, ...]) -> None:
        if (link.key, sha) in self._docs_sent:
            return
        case = self.centre.cases.get(link.local)
        entry = None
        if case is not None:
            entry = next((f for f in await asyncio.to_thread(self.files.list, case.ticket)
                          if f.sha256 == sha), None)
        if entry is None:
            log.warning("city: document %s of %s is not stored here; sent without it", sha,
                        link.key)
            return
        data = await asyncio.to_thread(self.files.path_of(entry).read_bytes)
        parts = max(1, -(-len(data) // DOC_PART))
        ext = entry.file.rsplit(".", 1)[-1]
        for k in range(parts):
            body = {"key": link.key, "sha256": sha, "part": k, "parts": parts, "ext": ext,
                    "content_type": entry.content_type,
                    "data": base64.b64encode(data[k * DOC_PART:(k + 1) * DOC_PART]).decode()}
            await js.publish(sj.record(self.me, XDOC), json.dumps(body).encode(),
                             headers={"Nats-Msg-Id": f"doc:{sha}:{k}:{link.key}",
                                      "Ow-To": ",".join(to)}, timeout=5)
        self._docs_sent.add((link.key, sha))

    def _statuses(self) -> dict[str, dict[str, Any]]:
        """Every case of a card held here, as the city's index holds it."""
        out = {}
        book = self.centre.city
        for k in self.centre.cases.values():
            if not k.resident or not TOKEN.match(k.resident):
                continue
            link = book.link_of(k.id)
            out[k.id] = {"token": k.resident, "centre": self.me, "case": k.id,
                         "key": link.key if link else f"{self.me}/{k.id}", "item": k.item,
                         "state": k.state, "due_day": k.due_day,
                         "approver": link.approver if link else self.me,
                         "pickup": link.pickup if link else self.me,
                         "version": link.version if link else 0}
        return out

    async def _index(self, js: Any) -> None:
        """Cards' cases to the city's index as they change (gone from memory: closed)."""
        while True:
            await asyncio.sleep(INDEX_TICK)
            if not self.connected or not self.port.storage_available():
                continue
            now = self._statuses()
            for cid, old in list(self._indexed.items()):
                if cid not in now and old["state"] != "closed":
                    now[cid] = {**old, "state": "closed"}
            try:
                for cid, body in now.items():
                    last = self._indexed.get(cid)
                    if last is not None and {**last, "at": 0} == {**body, "at": 0}:
                        continue
                    body = {**body, "at": self.clock()}
                    await js.publish(sj.record(self.me, XSTATUS), json.dumps(body).encode(),
                                     headers={"Nats-Msg-Id": f"{self.me}:xs:{cid}:"
                                                             f"{self.port.app.pos}"},
                                     timeout=5)
                    self._indexed[cid] = body
            except Exception as e:
                log.debug("city: case index not sent (%s)", e)

    async def city_cases(self, token: str) -> list[dict[str, Any]] | None:
        """The card's open cases anywhere in the city (None: the city did not answer)."""
        if self._nc is None or not self.connected or not TOKEN.match(token):
            return None
        try:
            msg = await self._nc.request(f"cityq.{self.me}", json.dumps({"token": token})
                                         .encode(), timeout=2)
            return list(json.loads(msg.data)["cases"])
        except Exception as e:
            log.debug("city: cases of a card not answered (%s)", e)
            return None

    async def _documents(self) -> None:
        """Documents stored at the origin with a routed case after it was routed (the
        corrected materials of a return, 补正) join it: journaled, then sent."""
        while True:
            await asyncio.sleep(DOCS_TICK)
            if not self.port.storage_available():
                continue
            for link in list(self.centre.city.links.values()):
                case = self.centre.cases.get(link.local)
                if link.origin != self.me or case is None or case.state == "closed":
                    continue
                listed = await asyncio.to_thread(self.files.list, case.ticket)
                shas = tuple(dict.fromkeys(f.sha256 for f in listed))
                if set(shas) <= set(link.documents):
                    continue
                try:
                    await self.port.submit(city.CityDocuments(link.local, shas))
                    self._wake.set()
                except Rejected as e:
                    log.info("city: documents of %s not added: %s", link.key, e.code)
                except StorageUnavailable:
                    break

    async def _report(self, js: Any) -> None:
        """The catalog version this centre runs (and the last refused) to the city."""
        while True:
            book = self.centre.city
            now = (book.catalog_version, book.catalog_refused)
            if self.connected and now != self._reported:
                body = {"centre": self.me, "version": book.catalog_version or "file",
                        "refused": list(book.catalog_refused) if book.catalog_refused else None,
                        "pending": book.catalog_pending[0] if book.catalog_pending else None}
                digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
                try:
                    await js.publish(sj.record(self.me, CATALOG), json.dumps(body).encode(),
                                     headers={"Nats-Msg-Id": f"{self.me}:catalog:{digest[:16]}"},
                                     timeout=5)
                    self._reported = now
                except Exception as e:
                    log.debug("city: catalog report not sent (%s)", e)
            await asyncio.sleep(2.0)

    async def _waits(self, nc: Any) -> None:
        while True:
            if self.connected:
                try:
                    w = self.own()
                    await nc.publish(waits_subject(self.me), json.dumps(w.to_dict()).encode())
                except Exception as e:
                    log.debug("city: waits not published (%s)", e)
            await asyncio.sleep(self.settings.waits_every_s)

    async def _on_waits(self, msg: Any) -> None:
        try:
            w = diversion.Waits.from_dict(json_object(msg.data))
            # the subject is the sender's own (the cluster's permissions); the body must
            # say the same centre, or one centre could speak for another
            if msg.subject != waits_subject(w.centre):
                return
        except (ValueError, KeyError, TypeError, AttributeError):
            return  # not a waits message: dropped
        name = {k: v[:NAME_CHARS] for k, v in w.name.items() if k in NAME_LANGS and v}
        if name and (w.centre in self.names or len(self.names) < MAX_NAMED):
            self.names[w.centre] = name
        if any(n.centre == w.centre for n in self.settings.neighbours):
            self.heard[w.centre] = w

    # ---- in ------------------------------------------------------------------------------
    async def _inbox(self, js: Any, stream: str, durable: str) -> None:
        from nats.errors import TimeoutError as NatsTimeout

        psub = None
        while psub is None:
            try:
                # its replies come to the centre's own inbox prefix (the connection's)
                psub = await js.pull_subscribe_bind(durable, stream)
            except Exception as e:
                log.warning("city: consumer %s on %s not ready (%s); retrying", durable,
                            stream, e)
                await asyncio.sleep(2.0)
        while True:
            try:
                msgs = await psub.fetch(FETCH, timeout=2)
            except (NatsTimeout, TimeoutError):
                continue
            except Exception as e:
                log.debug("city: fetch from %s: %s", durable, e)
                await asyncio.sleep(1.0)
                continue
            for m in msgs:
                if await self._take(m):
                    await m.ack()
                else:
                    with contextlib.suppress(Exception):
                        await m.nak(delay=2)

    async def _take(self, m: Any) -> bool:
        """Handle one message from the city: True once it may be acknowledged (journaled, or
        a repeat, or unusable), False to have it delivered again (storage away)."""
        kind = m.subject.rsplit(".", 1)[-1]
        try:
            body: Any = json_object(m.data)
        except ValueError as e:
            log.error("city: unreadable %s message dropped: %s", kind, e)
            return True
        try:
            if kind == XCASE:
                await self.port.submit(city.arrival(body))
                self.arrived += 1
                await self._attach_docs()
            elif kind == XDOC:
                await asyncio.to_thread(self._stage_doc, body)
                await self._attach_docs()
            elif kind == XDOCS:
                await self.port.submit(city.CityDocsArrive(str(body.get("key")),
                                                           tuple(body.get("documents") or ())))
                await self._attach_docs()
            elif kind == CATALOG:
                await self.port.submit(city.CatalogOffer(str(body.get("version")),
                                                         body.get("catalog")))
                refused = self.centre.city.catalog_refused
                if refused and refused[0] == body.get("version"):
                    log.error("city: catalog %s refused, the old one kept: %s", *refused)
            return True
        except Rejected as e:
            if e.code == "city_repeat":
                self.repeats += 1
            else:
                log.error("city: %s message refused: %s", kind, e)
            return True
        except StorageUnavailable:
            return False
        except Exception:
            log.exception("city: %s message not handled", kind)
            return False

    def _stage_doc(self, body: dict[str, Any]) -> None:
        sha = str(body["sha256"])
        if not city.DIGEST.match(sha):
            return
        self.incoming.mkdir(parents=True, exist_ok=True)
        done = self.incoming / f"{sha}.json"
        if done.exists():
            return
        part, parts = int(body["part"]), int(body["parts"])
        (self.incoming / f"{sha}.{part}").write_bytes(base64.b64decode(body["data"]))
        chunks = [self.incoming / f"{sha}.{k}" for k in range(parts)]
        if all(p.exists() for p in chunks):
            data = b"".join(p.read_bytes() for p in chunks)
            if hashlib.sha256(data).hexdigest() != sha:
                log.error("city: document %s does not match its digest; dropped", sha)
                for p in chunks:
                    p.unlink(missing_ok=True)
                return
            (self.incoming / f"{sha}.bin").write_bytes(data)
            done.write_text(json.dumps({"ext": str(body["ext"])[:8],
                                        "content_type": str(body["content_type"])[:100]}))
            for p in chunks:
                p.unlink(missing_ok=True)

    async def _attach_docs(self) -> None:
        """Documents that arrived, stored with the arrived cases that name them."""
        for link in list(self.centre.city.links.values()):
            if link.origin == self.me or not link.documents:
                continue
            case = self.centre.cases.get(link.local)
            if case is None:
                continue
            await asyncio.to_thread(self._attach, case.ticket, link.documents)

    def _attach(self, ticket: str, docs: tuple[str, ...]) -> None:
        have = {f.sha256 for f in self.files.list(ticket)}
        for sha in docs:
            meta = self.incoming / f"{sha}.json"
            if sha in have or not meta.exists():
                continue
            m = json.loads(meta.read_text())
            self.files.save(ticket, (self.incoming / f"{sha}.bin").read_bytes(), m["ext"],
                            m["content_type"], kind="city")

    def status(self) -> dict[str, Any]:
        book = self.centre.city
        return {"centre": self.me, "connected": self.connected,
                "catalog_version": book.catalog_version or "file",
                "catalog_pending": book.catalog_pending[0] if book.catalog_pending else None,
                "catalog_refused": list(book.catalog_refused) if book.catalog_refused else None,
                "unsent": [k.key for k in book.unsent()], "arrived": self.arrived,
                "repeats": self.repeats, "links": len(book.links),
                "heard": sorted(self.heard), "named": sorted(self.names)}
