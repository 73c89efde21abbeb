"""Community stations (协管员代收): a community assistant opens a promised case for a resident
at a neighbourhood station, and later hands the paper originals over to the centre in a
counted batch. Commands, their operations and their state.

* `StationSubmit`: a case opened on the resident's behalf. It goes to the back office like a
  window's case: the item's department (`Item.approver`), due `promised_days` working days
  after the hub received it. The station names each submission with an idempotency key of
  its own making (it may send one while its link is down, and send it again when it does
  not hear the answer), and the adapter gives a digest of the submission's content
  (item, resident token, materials, photos). A key seen before is refused with nothing
  changed, saying which case it opened: the same content not yet handed over is a repeat
  (`station_repeat`: the adapter answers the earlier result, so a resubmission never
  duplicates); other content under the key is an edit (`station_edited`); and once the
  case was handed over (`station_handed_over`) the station holds no more papers for it.
* `StationHandOver`: the station sends its cases not yet handed over as one batch of
  paper originals, with the count the assistant made of the bundles; a count that is not
  the number of those cases is refused.
* `StationReceive`: the centre counts the batch on arrival; a count that is not the batch's
  is refused, else the batch is received (who, when).

Kept: every submission's key (what it opened, its digest, its batch) and every batch, for
as long as the journal: a year of a busy station is a few thousand small rows, and a key
forgotten would let an old queued submission open a second case. The case itself is the
core's `Case` (cases.py) and leaves memory as any other (day_rollover.py); which station
opened it is `Submission.station`, looked up through `by_case`.

The commands live here and join `commands.BY_OP` when this module is imported (centre.py
does), so a journal replayed by record bodies (the staff report) applies them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from . import commands as c
from .effects import CaseOpened, Effect
from .model import Case
from .rejected import Rejected
from .station_book import Batch, Stations, Submission

if TYPE_CHECKING:
    from .state import CentreState

STATION_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")  # a UUID or any random token of the station's
DIGEST = re.compile(r"^[0-9a-f]{64}$")  # sha256, hex
MAX_PHOTOS = 12
MAX_MATERIALS = 64
AHEAD_S = 600.0  # a station's clock may run this far ahead of the hub's
CASE_MARK = "s"  # station case ids: "20261205-s0001": ticket numbers are upper case


@dataclass(frozen=True, slots=True)
class StationSubmit(c.Command):
    """A case opened at community station `station` by its account `by`, for `item`.
    `key`: the station's idempotency key; `digest`: sha256 (hex) of the submission's
    content, made by the adapter (hub/web/stations.py `content_digest`); `resident`: the
    resident token (the card path's keyed hash of the ID number; never the number; None
    once `onewindow purge` removed it from the record, past retention);
    `materials`: indices into the item's catalog materials the assistant checked;
    `photos`: sha256 of each photo stored with the case; `collected_at`: when the
    assistant pressed submit on the station (earlier than the record when it was queued
    offline)."""

    op: ClassVar[str] = "station_case"
    station: str
    key: str
    item: str
    resident: str | None
    digest: str
    by: str
    materials: tuple[int, ...] = ()
    photos: tuple[str, ...] = ()
    collected_at: float | None = None


@dataclass(frozen=True, slots=True)
class StationHandOver(c.Command):
    """Station `station` (its account `by`) sends its paper originals not yet handed over,
    `count` bundles by the assistant's count."""

    op: ClassVar[str] = "station_handover"
    station: str
    count: int
    by: str


@dataclass(frozen=True, slots=True)
class StationReceive(c.Command):
    """The centre (`by`) receives hand-over `batch`, `count` bundles by its own count."""

    op: ClassVar[str] = "station_receive"
    batch: str
    count: int
    by: str


c.BY_OP.update({k.op: k for k in (StationSubmit, StationHandOver, StationReceive)})
c._TUPLE_FIELDS.update({"materials", "photos"})


@dataclass(frozen=True, slots=True)
class StationCaseOpened(Effect):
    case: str
    station: str
    key: str


@dataclass(frozen=True, slots=True)
class HandedOver(Effect):
    batch: str
    station: str
    count: int


@dataclass(frozen=True, slots=True)
class HandOverReceived(Effect):
    batch: str
    station: str


def _station(station: Any) -> str:
    if not isinstance(station, str) or not STATION_ID.match(station):
        raise Rejected("bad_field", "站点编号无效 / station: 1-32 letters, digits, _ or -")
    return station


def _count(count: Any) -> int:
    if type(count) is not int or not 0 < count <= 10000:
        raise Rejected("bad_field", "份数须为正整数 / count: a whole number above 0")
    return count


def submit(state: CentreState, cmd: StationSubmit, now: float) -> list[Effect]:
    """The operation `StationSubmit`: checked whole before anything changes."""
    book: Stations = state.stations
    station = _station(cmd.station)
    if not isinstance(cmd.key, str) or not KEY.match(cmd.key):
        raise Rejected("bad_field", "提交编号无效 / key: 8-64 letters, digits, _ or -")
    if not isinstance(cmd.digest, str) or not DIGEST.match(cmd.digest):
        raise Rejected("bad_field", "digest: sha256, 64 hex digits")
    earlier = book.submissions.get(cmd.key)
    if earlier is not None:
        _refuse_again(earlier, station, cmd.digest)
    item = state.known_item(cmd.item) if isinstance(cmd.item, str) else None
    if item is None:
        raise Rejected("unknown_item", "未知事项 / unknown item")
    # None only in a record `onewindow purge` took the token out of, past its retention
    # (hub/store/retention.py): the station page always sends one.
    if cmd.resident is not None and (not isinstance(cmd.resident, str)
                                     or not 8 <= len(cmd.resident) <= 64):
        raise Rejected("bad_field", "缺少居民标识 / resident: the resident token is required")
    if not isinstance(cmd.by, str) or not cmd.by:
        raise Rejected("bad_field", "by: the station account")
    mats = cmd.materials
    if (not isinstance(mats, tuple) or len(mats) > MAX_MATERIALS
            or any(type(k) is not int or not 0 <= k < len(item.materials) for k in mats)
            or len(set(mats)) != len(mats)):
        raise Rejected("unknown_material", f"材料序号无效 / materials: indices of {item.id}'s "
                                           f"{len(item.materials)} materials, each once")
    missing = [k for k, m in enumerate(item.materials) if m.required and k not in mats]
    if missing:
        names = "、".join(item.materials[k].name.zh for k in missing)
        raise Rejected("materials_missing", f"缺少必需材料：{names} / required materials "
                                            f"missing: "
                       + ", ".join(item.materials[k].name.en for k in missing),
                       missing=missing)
    photos = cmd.photos
    if (not isinstance(photos, tuple) or not 0 < len(photos) <= MAX_PHOTOS
            or not all(isinstance(p, str) and DIGEST.match(p) for p in photos)):
        raise Rejected("bad_field", f"须附材料照片 / photos: 1-{MAX_PHOTOS} photos of the "
                                    "materials (sha256 each)")
    at = cmd.collected_at
    if at is not None and (type(at) not in (int, float) or not math.isfinite(at)
                           or at > now + AHEAD_S):
        raise Rejected("bad_field", "collected_at: a time not after the hub's")
    # Checked: from here on nothing can fail.
    book.serial += 1
    day = state.calendar.local_date(now)
    case_id = f"{day.strftime('%Y%m%d')}-{CASE_MARK}{book.serial:04d}"
    due = state.calendar.add_workdays(day, item.promised_days).isoformat()
    state.cases[case_id] = Case(case_id, case_id, item.id, now, due, cmd.resident,
                                department=item.approver)
    book.submissions[cmd.key] = Submission(cmd.key, station, case_id, cmd.digest, cmd.by,
                                           now, None if at is None else float(at))
    book.by_case[case_id] = cmd.key
    return [CaseOpened(case_id, due), StationCaseOpened(case_id, station, cmd.key)]


def _refuse_again(earlier: Submission, station: str, digest: str) -> None:
    case = earlier.case
    if earlier.station != station or earlier.digest != digest:
        raise Rejected("station_edited",
                       f"该提交已受理为{case}，内容不得更改 / this submission was already taken "
                       f"as case {case}: its content cannot change (start a new one)",
                       case=case)
    if earlier.batch is not None:
        raise Rejected("station_handed_over",
                       f"{case}的原件已随{earlier.batch}移交，不能再次提交 / case {case} was "
                       f"handed over in {earlier.batch}: it cannot be submitted again",
                       case=case, batch=earlier.batch)
    raise Rejected("station_repeat", f"已受理为{case} / already taken as case {case}",
                   case=case)


def hand_over(state: CentreState, cmd: StationHandOver, now: float) -> list[Effect]:
    book: Stations = state.stations
    station = _station(cmd.station)
    count = _count(cmd.count)
    pending = book.pending(station)
    if not pending:
        raise Rejected("nothing_to_hand_over", "没有待移交的原件 / no papers left to hand over")
    if count != len(pending):
        raise Rejected("count_mismatch", f"清点{count}份，待移交{len(pending)}份，不符 / counted "
                                         f"{count}, but {len(pending)} cases await hand-over",
                       expected=len(pending))
    if not isinstance(cmd.by, str) or not cmd.by:
        raise Rejected("bad_field", "by: the station account")
    book.batch_serial += 1
    batch = Batch(f"H{book.batch_serial:04d}", station, tuple(s.case for s in pending), now,
                  cmd.by)
    book.batches[batch.id] = batch
    for s in pending:
        book.submissions[s.key] = replace(s, batch=batch.id)
    return [HandedOver(batch.id, station, count)]


def receive(state: CentreState, cmd: StationReceive, now: float) -> list[Effect]:
    book: Stations = state.stations
    batch = book.batches.get(cmd.batch) if isinstance(cmd.batch, str) else None
    if batch is None:
        raise Rejected("unknown_batch", f"没有移交批次{cmd.batch} / no hand-over {cmd.batch}")
    count = _count(cmd.count)
    if batch.received_at is not None:
        raise Rejected("already_received", f"{batch.id}已于此前签收 / {batch.id} was received "
                                           "already")
    if count != len(batch.cases):
        raise Rejected("count_mismatch", f"清点{count}份，批次为{len(batch.cases)}份，不符 / "
                                         f"counted {count}, but the batch holds "
                                         f"{len(batch.cases)}", expected=len(batch.cases))
    if not isinstance(cmd.by, str) or not cmd.by:
        raise Rejected("bad_field", "by: who received it")
    book.batches[batch.id] = replace(batch, received_at=now, received_by=cmd.by)
    return [HandOverReceived(batch.id, batch.station)]


HANDLERS: dict[type, Any] = {StationSubmit: submit, StationHandOver: hand_over,
                             StationReceive: receive}
