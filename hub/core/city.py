"""The city's features in one centre's core (issue 20): cases across centres (全市通办) and
the city's published catalog. Pure, like the rest of the core: the adapter (hub/city/link.py)
carries what is decided here over the city's NATS JetStream engine and journals what
arrives; nothing here reads a clock or a socket.

Cases across centres. A promised case accepted at centre A (its origin) whose approving
department's back office sits at centre B, and whose result the resident collects at
centre C, is *linked*: every centre involved holds the very `Case` (at A under its own id,
at B and C under a local id, `{day}-c{serial}`) and a `Link` naming the three centres and
the case's city-wide `key` (``{origin}/{case id at A}``). One centre at a time may change
it — the authority: the approver's back office while it is open or returned (or closed:
a reopening), the pick-up centre while it is ready. A change there moves the link's
`version` on by one; the adapter sends the case as it now is, with its version, to the
other centres (the journal is the outbox: `sent` is the last version the city engine
acknowledged, journaled by `CitySent`, so a restart sends again whatever was not
acknowledged). A centre takes an arrival (`CityArrive`) only when its version is newer
than what it holds: a repeat is refused with nothing changed (and nothing journaled), so a
message delivered twice, or again after an outage, changes a centre once.

Only the resident token (the card path's keyed hash; never a name or number) and the
documents' sha256 digests travel with a case; the documents' bytes go through the city's
object store (hub/city/link.py).

The catalog. The city publishes catalog versions; a centre journals each it receives
(`CatalogOffer`, with the catalog's whole body, so a replay needs nothing else). A bad one
is refused at once and the refusal kept (`catalog_refused`); a good one waits
(`catalog_pending`) and is put in place at the next day's close (`switch_at_close`, from
day_rollover), checked again against what the centre then holds; the old one stays when
it does not fit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from . import commands as c
from .catalog import Catalog, CatalogError
from .city_book import CityBook, Link
from .effects import CaseChanged, Effect
from .model import Case
from .rejected import Rejected

if TYPE_CHECKING:
    from .state import CentreState

CENTRE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DIGEST = re.compile(r"^[0-9a-f]{64}$")
VERSION = re.compile(r"^[A-Za-z0-9._-]{1,40}$")
MAX_DOCS = 32
CITY_MARK = "c"  # local ids of cases that arrived from another centre: "20261206-c0001"
STATES = ("open", "returned", "ready", "closed")
# The Case fields that travel (the case as it is at the authority).
TRAVEL = ("item", "opened_at", "due_day", "resident", "state", "closed_at", "department",
          "ready_at", "handed_by", "return_reason", "return_materials")


# ---- commands ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CityRoute(c.Command):
    """At the case's origin: send promised case `case` (just accepted here) to the back
    office of centre `approver`, the result to be collected at centre `pickup`, with the
    documents stored with it (`documents`: sha256 of each, already in the city's object
    store)."""

    op: ClassVar[str] = "city_route"
    case: str
    approver: str
    pickup: str
    documents: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CityArrive(c.Command):
    """A linked case as another centre wrote it (`by`), at `version`: `fields` are the
    `TRAVEL` fields of the case there."""

    op: ClassVar[str] = "city_arrive"
    key: str
    origin: str
    approver: str
    pickup: str
    version: int
    by: str
    fields: dict[str, Any]
    documents: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CitySent(c.Command):
    """The city engine acknowledged version `version` of link `key` (the outbox's mark)."""

    op: ClassVar[str] = "city_sent"
    key: str
    version: int


@dataclass(frozen=True, slots=True)
class CatalogOffer(c.Command):
    """The city's catalog `version`, its whole body in `catalog` (the catalog JSON)."""

    op: ClassVar[str] = "catalog_offer"
    version: str
    catalog: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CityDocuments(c.Command):
    """At the origin: documents stored with a linked case since it was routed (corrected
    materials for a return, 补正), to travel with it. `documents`: sha256 of each."""

    op: ClassVar[str] = "city_documents"
    case: str
    documents: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CityDocsArrive(c.Command):
    """Elsewhere: the documents of linked case `key` as its origin lists them."""

    op: ClassVar[str] = "city_docs_arrive"
    key: str
    documents: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CityDocsSent(c.Command):
    """The city acknowledged the first `count` documents of link `key`."""

    op: ClassVar[str] = "city_docs_sent"
    key: str
    count: int


c.BY_OP.update({k.op: k for k in (CityRoute, CityArrive, CitySent, CatalogOffer,
                                  CityDocuments, CityDocsArrive, CityDocsSent)})
c._TUPLE_FIELDS.add("documents")


@dataclass(frozen=True, slots=True)
class CityCaseOut(Effect):
    """Link `key` has a version written here to send (the adapter reads the link)."""

    key: str


@dataclass(frozen=True, slots=True)
class CatalogRefused(Effect):
    version: str
    why: str


@dataclass(frozen=True, slots=True)
class CatalogApplied(Effect):
    version: str


# ---- cases ------------------------------------------------------------------------------
def authority(link: Link, state: str) -> str:
    """The centre that may change a linked case in `state`: the approver's back office
    while it is open (or closed: a reopening), the origin's window while it is returned
    for correction (补正: the resident brings the materials where the case was accepted,
    and the origin resubmits it), the pick-up centre while it is ready."""
    if state == "ready":
        return link.pickup
    return link.origin if state == "returned" else link.approver


def _centre(v: Any, what: str) -> str:
    if not isinstance(v, str) or not CENTRE.match(v):
        raise Rejected("bad_field", f"{what}: a centre id (letters, digits, _ or -)")
    return v


def _documents(docs: Any) -> tuple[str, ...]:
    if (not isinstance(docs, tuple) or len(docs) > MAX_DOCS or len(set(docs)) != len(docs)
            or not all(isinstance(d, str) and DIGEST.match(d) for d in docs)):
        raise Rejected("bad_field", f"documents: at most {MAX_DOCS} sha256 digests, each once")
    return docs


def route(state: CentreState, cmd: CityRoute, now: float) -> list[Effect]:
    me = state.config.centre_id
    book: CityBook = state.city
    approver = _centre(cmd.approver, "approver")
    pickup = _centre(cmd.pickup, "pickup")
    docs = _documents(cmd.documents)
    case = state.cases.get(cmd.case) if isinstance(cmd.case, str) else None
    if case is None:
        raise Rejected("unknown_case", f"没有承诺件{cmd.case} / no case {cmd.case}")
    if book.link_of(case.id) is not None:
        raise Rejected("city_routed", f"承诺件{case.id}已转往其他中心 / case {case.id} was "
                                      "routed already")
    if case.state != "open":
        raise Rejected("bad_case_state", f"承诺件{case.id}当前为{case.state}，不能转办 / case "
                                         f"{case.id} is {case.state}: only an open case is "
                                         "routed", state=case.state)
    if approver == me and pickup == me:
        raise Rejected("bad_field", "审批与领取都在本中心，无需转办 / approval and pick-up "
                                    "are both here: nothing to route")
    key = f"{me}/{case.id}"
    # the documents go with version 1 (before it): acknowledged with it
    book.links[key] = Link(key, case.id, me, approver, pickup, 1, 0, docs, len(docs))
    book.by_local[case.id] = key
    return [CityCaseOut(key)]


def arrive(state: CentreState, cmd: CityArrive, now: float) -> list[Effect]:
    me = state.config.centre_id
    book: CityBook = state.city
    if not isinstance(cmd.key, str) or "/" not in cmd.key or len(cmd.key) > 120:
        raise Rejected("bad_field", "key: {origin}/{case}")
    origin, approver, pickup = (_centre(cmd.origin, "origin"),
                                _centre(cmd.approver, "approver"), _centre(cmd.pickup, "pickup"))
    by = _centre(cmd.by, "by")
    if me not in (origin, approver, pickup) or by == me:
        raise Rejected("bad_field", "这件承诺件与本中心无关 / this case is not this centre's")
    if not cmd.key.startswith(origin + "/"):
        raise Rejected("bad_field", "key: does not name its origin")
    if type(cmd.version) is not int or cmd.version < 1:
        raise Rejected("bad_field", "version: a whole number from 1")
    docs = _documents(cmd.documents)
    link = book.links.get(cmd.key)
    if link is not None and cmd.version <= link.version:
        raise Rejected("city_repeat", f"已收到{cmd.key}第{link.version}版 / already at version "
                                      f"{link.version} of {cmd.key}", version=link.version)
    fields = _fields(state, cmd.fields)
    # Checked: from here on nothing can fail.
    if link is None:
        if origin == me:
            local = cmd.key.split("/", 1)[1]
        else:
            book.serial += 1
            local = f"{state.calendar.local_date(now).strftime('%Y%m%d')}-{CITY_MARK}" \
                    f"{book.serial:04d}"
        link = Link(cmd.key, local, origin, approver, pickup, cmd.version, cmd.version, docs,
                    len(docs))
        book.by_local[local] = cmd.key
    else:
        grown = tuple(dict.fromkeys((*link.documents, *docs)))
        link = replace(link, version=cmd.version, sent=cmd.version, documents=grown,
                       docs_sent=len(grown) if link.origin != me else link.docs_sent)
    book.links[cmd.key] = link
    case = state.cases.get(link.local)
    if case is None:
        state.cases[link.local] = Case(link.local, link.local, **fields)
    else:
        for name, value in fields.items():
            setattr(case, name, value)
    return [CaseChanged(link.local, "city_arrive", fields["state"])]


def _fields(state: CentreState, raw: Any) -> dict[str, Any]:
    """A travelling case's fields, checked against this centre's catalog."""
    if not isinstance(raw, dict) or set(raw) != set(TRAVEL):
        raise Rejected("bad_field", f"fields: exactly {', '.join(TRAVEL)}")
    item = state.catalog.items.get(raw["item"]) if isinstance(raw["item"], str) else None
    if item is None:
        raise Rejected("unknown_item", f"未知事项 / unknown item {raw['item']!r}")
    dept = raw["department"]
    if not isinstance(dept, str) or dept not in state.catalog.departments:
        dept = item.approver
    ok = (raw["state"] in STATES and type(raw["opened_at"]) in (int, float)
          and isinstance(raw["due_day"], str) and len(raw["due_day"]) == 10
          and (raw["resident"] is None or (isinstance(raw["resident"], str)
               and 8 <= len(raw["resident"]) <= 64))
          and all(type(raw[k]) in (int, float, type(None)) for k in ("closed_at", "ready_at"))
          and (raw["handed_by"] is None or isinstance(raw["handed_by"], str))
          and isinstance(raw["return_reason"], str)
          and isinstance(raw["return_materials"], list | tuple)
          and all(type(m) is int and 0 <= m < len(item.materials)
                  for m in raw["return_materials"]))
    if not ok:
        raise Rejected("bad_field", "fields: a field of the wrong type")
    return {**raw, "item": item.id, "department": dept,
            "return_materials": tuple(raw["return_materials"])}


def travelling(case: Case) -> dict[str, Any]:
    """The case's `TRAVEL` fields, as they go to the other centres (JSON-able)."""
    return {k: (list(getattr(case, k)) if k == "return_materials" else getattr(case, k))
            for k in TRAVEL}


def sent(state: CentreState, cmd: CitySent, now: float) -> list[Effect]:
    book: CityBook = state.city
    link = book.links.get(cmd.key) if isinstance(cmd.key, str) else None
    if link is None:
        raise Rejected("unknown_case", f"no linked case {cmd.key!r}")
    if type(cmd.version) is not int or not link.sent < cmd.version <= link.version:
        raise Rejected("city_repeat", f"version {cmd.version!r} of {cmd.key}: sent "
                                      f"{link.sent}, at {link.version}")
    book.links[cmd.key] = replace(link, sent=cmd.version)
    return []


def check_update(state: CentreState, case: Case, cmd: c.CaseUpdate) -> None:
    """cases.update_case's check for a linked case: only its authority changes it."""
    link = state.city.link_of(case.id)
    if link is None:
        return
    who = authority(link, case.state)
    if who != state.config.centre_id:
        raise Rejected("city_elsewhere",
                       f"承诺件{case.id}由{who}中心办理 / case {case.id} is in the hands of "
                       f"centre {who}", centre=who)
    if cmd.action == "reassigned":
        raise Rejected("city_elsewhere", "跨中心承诺件不能转办 / a case across centres is not "
                                         "reassigned (ask the city)")


def updated(state: CentreState, case: Case) -> list[Effect]:
    """A linked case changed here: its next version, to send."""
    book: CityBook = state.city
    link = book.link_of(case.id)
    if link is None:
        return []
    book.links[link.key] = replace(link, version=link.version + 1)
    return [CityCaseOut(link.key)]


def open_cases(state: CentreState, resident: str) -> list[tuple[Case, Link | None]]:
    """The resident's (card token's) cases held here that are not closed."""
    return [(k, state.city.link_of(k.id)) for k in state.cases.values()
            if k.resident == resident and k.state != "closed"]


# ---- the catalog ------------------------------------------------------------------------
def offer(state: CentreState, cmd: CatalogOffer, now: float) -> list[Effect]:
    """Never refused as a command (so a bad catalog's refusal is journaled with it): a
    catalog that does not parse, or does not fit this centre, is kept as refused."""
    book: CityBook = state.city
    version = cmd.version if isinstance(cmd.version, str) else ""
    if not VERSION.match(version):
        raise Rejected("bad_field", "version: 1-40 letters, digits, '.', '_' or '-'")
    if version == book.catalog_version or (book.catalog_pending
                                           and book.catalog_pending[0] == version):
        raise Rejected("city_repeat", f"catalog {version} is here already")
    why = fit(state, cmd.catalog)
    if why is not None:
        book.catalog_refused = (version, why)
        return [CatalogRefused(version, why)]
    book.catalog_pending = (version, cmd.catalog)
    return []


def parse(data: Any) -> Catalog:
    if not isinstance(data, dict):
        raise CatalogError("the catalog is not a JSON object")
    return Catalog.from_dict(data)


def fit(state: CentreState, data: Any) -> str | None:
    """Why catalog `data` cannot replace this centre's (None: it can)."""
    from .reach import window_skills

    try:
        cat = parse(data)
        for spec in state.config.windows:
            if spec.kind not in cat.window_kinds:
                raise CatalogError(f"window {spec.number}'s kind {spec.kind!r} is not in it")
            window_skills(cat, spec, state.policy)
    except (CatalogError, Rejected) as e:
        return str(e)[:300]
    pick = state.config.pickup_item
    if pick and pick not in cat.items:
        return f"the pick-up item {pick!r} is not in it"
    for line, _ in state.config.booking.capacity:
        if line not in cat.lines:
            return f"[booking] capacity's line {line!r} is not in it"
    held = {k.item for k in state.cases.values()} | {t.item for t in state.tickets.values()} \
        | {b.item for b in state.bookings.values()}
    gone = sorted(held - set(cat.items))
    if gone:
        return f"items still held here are not in it: {', '.join(gone[:5])}"
    return None


def switch_at_close(state: CentreState) -> list[Effect]:
    """At a day's close (day_rollover): the pending catalog put in place, when it still
    fits; replaces containers, never mutates them (the roll-over's savepoint)."""
    from .reach import window_skills

    if state.city.catalog_pending is None:
        return []
    state.city = book = state.city.copy()  # replaced: the roll-over's savepoint keeps the old
    version, data = book.catalog_pending or ("", {})
    book.catalog_pending = None
    why = fit(state, data)
    if why is not None:
        book.catalog_refused = (version, why)
        return [CatalogRefused(version, why)]
    use(state, version, data)
    for spec in state.config.windows:
        w = state.windows[spec.number]
        w.skills = window_skills(state.catalog, spec, state.policy)
    state._refresh_reach()
    return [CatalogApplied(version)]


def use(state: CentreState, version: str, data: dict[str, Any]) -> None:
    """Catalog `data` (checked) as the centre's, with everything derived from it."""
    from .reach import window_skills

    book: CityBook = state.city
    state.catalog = parse(data)
    book.catalog_version, book.catalog_data = version, data
    state._configured_skills = [window_skills(state.catalog, s, state.policy)
                                for s in state.config.windows]
    state._booking_capacity = None
    state._refresh_reach()


def add_documents(state: CentreState, cmd: CityDocuments, now: float) -> list[Effect]:
    book: CityBook = state.city
    link = book.link_of(cmd.case) if isinstance(cmd.case, str) else None
    if link is None or link.origin != state.config.centre_id:
        raise Rejected("unknown_case", f"没有从本中心转出的承诺件{cmd.case} / no case "
                                       f"{cmd.case} routed from here")
    docs = _documents(cmd.documents)
    grown = tuple(dict.fromkeys((*link.documents, *docs)))
    if len(grown) > MAX_DOCS:
        raise Rejected("bad_field", f"documents: at most {MAX_DOCS} with a case")
    if grown == link.documents:
        raise Rejected("city_repeat", "these documents travel with the case already")
    book.links[link.key] = replace(link, documents=grown)
    return [CityCaseOut(link.key)]


def docs_arrive(state: CentreState, cmd: CityDocsArrive, now: float) -> list[Effect]:
    book: CityBook = state.city
    link = book.links.get(cmd.key) if isinstance(cmd.key, str) else None
    if link is None:
        # Documents may come before the case (another subject): the case's first version
        # lists them too, so nothing is lost by refusing them here.
        raise Rejected("unknown_case", f"no linked case {cmd.key!r} here yet")
    docs = _documents(cmd.documents)
    grown = tuple(dict.fromkeys((*link.documents, *docs)))
    if len(grown) > MAX_DOCS:
        raise Rejected("bad_field", f"documents: at most {MAX_DOCS} with a case")
    if grown == link.documents:
        raise Rejected("city_repeat", "these documents are here already")
    book.links[link.key] = replace(link, documents=grown, docs_sent=len(grown))
    return []


def docs_sent(state: CentreState, cmd: CityDocsSent, now: float) -> list[Effect]:
    book: CityBook = state.city
    link = book.links.get(cmd.key) if isinstance(cmd.key, str) else None
    if link is None:
        raise Rejected("unknown_case", f"no linked case {cmd.key!r}")
    if type(cmd.count) is not int or not link.docs_sent < cmd.count <= len(link.documents):
        raise Rejected("city_repeat", f"documents of {cmd.key}: {cmd.count!r} acknowledged "
                                      f"already or not held")
    book.links[cmd.key] = replace(link, docs_sent=cmd.count)
    return []


HANDLERS: dict[type, Any] = {CityRoute: route, CityArrive: arrive, CitySent: sent,
                             CatalogOffer: offer, CityDocuments: add_documents,
                             CityDocsArrive: docs_arrive, CityDocsSent: docs_sent}


# ---- what travels -----------------------------------------------------------------------
def outgoing(state: CentreState, key: str) -> dict[str, Any] | None:
    """The message that carries link `key` as this centre holds it (None: its case left
    memory, closed and archived: nothing more to say about it)."""
    link = state.city.links.get(key)
    case = None if link is None else state.cases.get(link.local)
    if link is None or case is None:
        return None
    return {"key": link.key, "origin": link.origin, "approver": link.approver,
            "pickup": link.pickup, "version": link.version, "by": state.config.centre_id,
            "fields": travelling(case), "documents": list(link.documents)}


def arrival(msg: dict[str, Any]) -> CityArrive:
    """The command that takes message `msg` (from `outgoing`) at another centre."""
    try:
        return CityArrive(msg["key"], msg["origin"], msg["approver"], msg["pickup"],
                          msg["version"], msg["by"], msg["fields"],
                          tuple(msg.get("documents") or ()))
    except (KeyError, TypeError) as e:
        raise Rejected("bad_field", f"not a city case message ({e!r})") from e


def recipients(state: CentreState, key: str) -> tuple[str, ...]:
    """The other centres a version of link `key` goes to."""
    link = state.city.links[key]
    return tuple(x for x in link.centres() if x != state.config.centre_id)


def unsent(state: CentreState, case: str) -> bool:
    """Whether case `case` has a version (or documents) written here that the city has not
    acknowledged (it stays in memory past its closing day until it has)."""
    link = state.city.link_of(case)
    return link is not None and (link.sent < link.version
                                 or link.docs_sent < len(link.documents))


def notice_changes(state: CentreState, records: Any) -> list[tuple[str, str, bool]]:
    """The case notices arrivals call for (hub/app/notices.py): (local case id, the action
    a notice knows, whether the result is collected here) for each `city_arrive` record
    among `records` that brought a case to ready (approved) or returned. The centre that
    holds the resident's contact (the origin, where the case was accepted) sends them."""
    out = []
    for r in records:
        body = getattr(r, "body", r)
        if body.get("op") != "city_arrive":
            continue
        link = state.city.links.get(str(body.get("key")))
        action = {"ready": "approved", "returned": "returned"}.get(
            str((body.get("fields") or {}).get("state")))
        if link is not None and action is not None:
            out.append((link.local, action, link.pickup == state.config.centre_id))
    return out
