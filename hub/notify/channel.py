"""Notice channels: one interface for every way a resident is told something.

A `Notice` is what the hub's core decides to say ("your turn is near", "called to window 3",
a booking reminder, "ready for pick-up", "returned for material"); a `Channel` carries it
(SMS over SMPP in `smpp.py`, the phone page, a centre's own platform) and answers with an
`Outcome`:

* `Sent` — the gateway took it, with the gateway's message id(s);
* `Retryable` — it did not, but the same notice may go again later (throttled, connection
  lost, gateway busy): `retry.py` bounds how often and how soon;
* `Permanent` — it never will (invalid destination, refused content): do not retry.

`Notice.id` is the idempotence key. It is derived from journaled facts only
(`notice_id`: ticket, kind, occurrence), so the hub that replays its journal after a restart
computes the same id and can tell a notice it already sent from a new one. The recipient
is a `PhoneRef` (the number sealed by `phones.PhoneVault`), never the clear number: no
notice, repr or log line carries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, get_args

__all__ = ["KINDS", "LANGS", "Channel", "Kind", "Lang", "Notice", "NoticeError", "Outcome",
           "Permanent", "PhoneRef", "Retryable", "Sent", "Texts", "notice_id"]

Kind = Literal["near", "called", "booking_reminder", "ready_for_pickup", "case_returned"]
KINDS: tuple[str, ...] = get_args(Kind)
Lang = Literal["zh-CN", "zh-TW", "en"]
LANGS: tuple[str, ...] = get_args(Lang)


class NoticeError(ValueError):
    """A notice that cannot be built; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class PhoneRef:
    """A phone number sealed with the centre's key (`phones.PhoneVault.seal`): an opaque
    token, safe to journal and to pass around. Only the vault opens it."""

    token: str

    def __post_init__(self) -> None:
        if not isinstance(self.token, str) or not self.token.startswith("p1."):
            raise NoticeError("recipient: not a sealed phone reference (p1.…)")

    def __repr__(self) -> str:
        return "PhoneRef(<sealed>)"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Texts:
    """One notice's text in each public language (zh-CN first, then zh-TW, then English)."""

    zh_cn: str
    zh_tw: str
    en: str

    def __post_init__(self) -> None:
        for lang, text in zip(LANGS, (self.zh_cn, self.zh_tw, self.en), strict=True):
            if not isinstance(text, str) or not text.strip():
                raise NoticeError(f"text {lang}: empty")

    def get(self, lang: str) -> str:
        if lang == "zh-CN":
            return self.zh_cn
        if lang == "zh-TW":
            return self.zh_tw
        if lang == "en":
            return self.en
        raise NoticeError(f"language {lang!r}: not one of {', '.join(LANGS)}")


def notice_id(ticket_id: str, kind: str, occurrence: int = 0) -> str:
    """The journal-stable id of a ticket's `occurrence`-th notice of `kind` (a recall is a
    second "called": occurrence 1). Same facts, same id, before and after a restart."""
    if not ticket_id or ":" in ticket_id:
        raise NoticeError(f"ticket id {ticket_id!r}: empty or contains ':'")
    if kind not in KINDS:
        raise NoticeError(f"kind {kind!r}: not one of {', '.join(KINDS)}")
    if isinstance(occurrence, bool) or not isinstance(occurrence, int) or occurrence < 0:
        raise NoticeError(f"occurrence {occurrence!r}: not a whole number >= 0")
    return f"n1:{ticket_id}:{kind}:{occurrence}"


@dataclass(frozen=True, slots=True)
class Notice:
    id: str
    ticket_id: str
    kind: Kind
    texts: Texts
    recipient: PhoneRef
    lang: Lang = "zh-CN"  # the language the resident chose; a channel sends this one

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise NoticeError("id: empty")
        if not isinstance(self.ticket_id, str) or not self.ticket_id:
            raise NoticeError("ticket_id: empty")
        if self.kind not in KINDS:
            raise NoticeError(f"kind {self.kind!r}: not one of {', '.join(KINDS)}")
        if self.lang not in LANGS:
            raise NoticeError(f"lang {self.lang!r}: not one of {', '.join(LANGS)}")
        if not isinstance(self.texts, Texts):
            raise NoticeError("texts: not a Texts")
        if not isinstance(self.recipient, PhoneRef):
            raise NoticeError("recipient: not a PhoneRef")

    @property
    def text(self) -> str:
        return self.texts.get(self.lang)


@dataclass(frozen=True, slots=True)
class Sent:
    message_ids: tuple[str, ...]  # the gateway's id for each part, in order

    @property
    def message_id(self) -> str:
        return self.message_ids[0]


@dataclass(frozen=True, slots=True)
class Retryable:
    reason: str


@dataclass(frozen=True, slots=True)
class Permanent:
    reason: str


Outcome = Sent | Retryable | Permanent


class Channel(Protocol):
    """One way of reaching a resident. `send` never raises for a delivery problem: it
    answers with an `Outcome`. Sending the same `Notice.id` again after `Sent` is the
    caller's mistake to avoid (the hub journals what it sent)."""

    name: str

    async def send(self, notice: Notice) -> Outcome: ...
