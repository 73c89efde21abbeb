"""Pick-up of a ready case's result (统一窗口出件) and the resident's contact for a case.

A case approved by its department is `ready` (hub/core/cases.py). The resident proves it
is theirs at the kiosk, by the case code on their slip or phone page (signed like booking
codes: `case_code`, checked by the adapter) or by tapping the ID card the case was opened
with (its resident token, compared here), and gets a pick-up ticket: an ordinary ticket
for the centre's pick-up item (`[pickup] item` in centre.toml, e.g. the catalog's
"领取办结证照/材料"), so it queues, is called and shown like any ticket, at the windows
whose skills hold that item (the pick-up window(s), `pickup_windows`). `pickups` remembers
which case(s) each of today's pick-up tickets is for; the clerk there hands the result
over (the case action `handed_over`, by the clerk or signed off by the card).

A card tap covers all of the resident's ready cases that have no pick-up ticket yet (one
ticket, one wait); a code covers its own case. The pick-up item is journaled in the
record (`item`), so a replay issues the same ticket after centre.toml changed.

`CaseContact`: the phone number a resident gives for a case's notices (returned for
material, ready for pick-up), sealed by the adapter (hub/notify/phones.py) before it gets
here; it is kept as the case's ticket's `notices.Contact`, which stays while the case is
held (notices.close_day).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from . import commands as c
from . import issuing, signing
from .catalog import COMPREHENSIVE
from .effects import Effect, TicketIssued
from .model import ACTIVE_TICKET_STATES
from .rejected import Rejected
from .state import CentreState

READY = "ready"
QR_PREFIX = "OWC1"
CODES = signing.CodeFormat(
    "case", QR_PREFIX, short=8,  # base32 characters after the case id: 40 bits, rate-limited
    qr=16, name=re.compile(r"^\d{8}-[A-Z0-9]{1,12}$"), max_len=120,
    forged="取件码无效 / 取件碼無效 / the case code is not valid",
    other_centre="这是其他中心的取件码 / 這是其他中心的取件碼 / a case code of another centre")
BY = ("code", "card")
MAX_CASES = 20  # on one pick-up ticket


@dataclass(frozen=True, slots=True)
class PickupTicket(c.Command):
    """A pick-up ticket for ready `cases`, asked `by` "code" (the adapter checked the
    case code's signature) or "card" (`resident`, the card's token, must be each case's).
    `item`: the centre's pick-up item when it was asked. `source`/`request`: the kiosk or
    box that asked and its event seq, as for a take."""

    op: ClassVar[str] = "pickup"
    cases: tuple[str, ...]
    item: str
    by: str
    resident: str | None = None
    source: str | None = None
    request: int | None = None


@dataclass(frozen=True, slots=True)
class CaseContact(c.Command):
    """The sealed phone number (a `p1.` PhoneRef token) and language for `case`'s
    notices, given at acceptance (by the clerk, or by the resident on the phone page)."""

    op: ClassVar[str] = "case_contact"
    case: str
    phone: str | None  # None: removed by a purge (hub/store/retention.py) after the case
    lang: str = "zh-CN"


c.BY_OP.update({k.op: k for k in (PickupTicket, CaseContact)})
c._TUPLE_FIELDS.add("cases")


# ---- case codes (checked by the adapters; the core never sees a key) ---------------------
def case_code(key: bytes, centre: str, case: str) -> str:
    """What the resident types: the case id and 8 signature characters."""
    return CODES.typed(key, centre, case)


def case_qr(key: bytes, centre: str, case: str) -> str:
    """What the slip's QR code holds: `OWC1/{centre}/{case}/{sig}`."""
    return CODES.qr_text(key, centre, case)


def verify_code(key: bytes | None, centre: str, text: Any) -> str:
    """The case id inside a case code (typed or the QR's text). Raises Rejected."""
    if key is None:
        raise Rejected("no_case_key", "本中心未启用取件码 / 本中心未啟用取件碼 / case codes are "
                                      "not set up at this hub")
    return CODES.verify(key, centre, text)


# ---- operations -------------------------------------------------------------------------
def pickup_ticket(state: CentreState, cmd: PickupTicket, now: float) -> list[Effect]:
    if cmd.by not in BY:
        raise Rejected("bad_field", f"by {cmd.by!r}: one of {', '.join(BY)}")
    if not cmd.cases or len(cmd.cases) > MAX_CASES or len(set(cmd.cases)) != len(cmd.cases):
        raise Rejected("bad_field", f"cases: 1..{MAX_CASES} case ids, each once")
    if cmd.by == "code" and len(cmd.cases) != 1:
        raise Rejected("bad_field", "a case code names one case")
    state.known_item(cmd.item)
    for cid in cmd.cases:
        case = state.cases.get(cid)
        if case is None:
            raise Rejected("unknown_case", f"没有承诺件{cid} / 沒有承諾件{cid} / no case {cid}")
        # Both without a token: a record whose token a purge removed from it and from
        # the case (hub/store/retention.py), replayed; a live card always has one.
        purged = cmd.resident is None and case.resident is None
        if cmd.by == "card" and not purged and (not cmd.resident
                                                or case.resident != cmd.resident):
            raise Rejected("not_your_case", "这张卡不是该承诺件申请人的 / 這張卡不是該承諾件申請"
                                            "人的 / this card is not the applicant's of the "
                                            "case")
        if case.state != READY:
            raise Rejected("case_not_ready", f"承诺件{cid}尚不能领取 / 承諾件{cid}尚不能領取 / "
                                             f"case {cid} is not ready for pick-up "
                                             f"({case.state})", state=case.state)
        held = ticket_of(state, cid)
        if held is not None:
            number = state.tickets[held].number
            raise Rejected("pickup_exists", f"已取出件号{number} / 已取出件號{number} / "
                                            f"pick-up ticket {number} is already issued",
                           ticket=number)
    effects = issuing.take_ticket(state, c.TakeTicket(cmd.item, source=cmd.source,
                                                      request=cmd.request), now)
    issued = next(e for e in effects if isinstance(e, TicketIssued))
    state.pickups[issued.ticket] = tuple(cmd.cases)
    return effects


def case_contact(state: CentreState, cmd: CaseContact, now: float) -> list[Effect]:
    from .notices import LANGS, Contact

    if cmd.lang not in LANGS:
        raise Rejected("bad_field", f"lang {cmd.lang!r}: one of {', '.join(LANGS)}")
    if cmd.phone is not None and (not isinstance(cmd.phone, str)
                                  or not cmd.phone.startswith("p1.")):
        raise Rejected("bad_field", "phone: not a sealed number")
    case = state.cases.get(cmd.case)
    if case is None or case.state == "closed":
        raise Rejected("unknown_case", f"没有进行中的承诺件{cmd.case} / no case {cmd.case} in "
                                       "progress")
    state.contacts[case.ticket] = Contact(case.ticket, cmd.phone, cmd.lang)
    return []


def close_day(state: CentreState) -> None:
    """The day closed: pick-up tickets leave with their tickets (a case still ready gets
    a new one when the resident comes back). Replaces the container."""
    state.pickups = {k: v for k, v in state.pickups.items() if k in state.tickets}


# ---- queries ----------------------------------------------------------------------------
def ticket_of(state: CentreState, case: str) -> str | None:
    """Today's active pick-up ticket of `case`, if any."""
    for tid, cases in state.pickups.items():
        t = state.tickets.get(tid)
        if case in cases and t is not None and t.state in ACTIVE_TICKET_STATES:
            return tid
    return None


def cases_of_ticket(state: CentreState, ticket: str) -> tuple[str, ...]:
    return state.pickups.get(ticket, ())


def ready_cases(state: CentreState, resident: str) -> list[str]:
    """The resident's ready cases without an active pick-up ticket, oldest first."""
    return [k.id for k in state.cases.values()
            if k.resident == resident and k.state == READY and ticket_of(state, k.id) is None]


def pickup_windows(state: CentreState, item: str) -> list[int]:
    """Where pick-up tickets are served: the windows whose skills hold the pick-up item and
    that are not comprehensive (the pick-up windows proper), else all that serve it."""
    serving = [w for w in state.windows.values() if item in w.skills]
    own = [w.number for w in serving if w.kind != COMPREHENSIVE]
    return sorted(own or [w.number for w in serving])
