"""Names signed under the centre's code key: what a resident holds to prove a booking or a
ticket is theirs, checked by the adapters before the core sees the name.

One mechanism for every use: HMAC-SHA256 of ``{purpose}|{centre}|{name}`` under the key
(booking.derive_key: from the centre's secret), base32 without padding, cut to a length
that fits where it is held. `purpose` separates the uses: a booking code's signature
("booking", booking.py) is no ticket token ("ticket"), though the key is the same. Pure:
the key is the adapter's; nothing here reads a clock or a file.

Ticket tokens (`ticket_token`): printed in the ticket's QR link (``/t/{id}?k={token}``) and
given with a kiosk's, a remote take's or a check-in's link. The phone page shows any
ticket read-only; what it can do to one (rate the service) needs its token, so a guessed
ticket id is not enough to rate someone else's service.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

from .rejected import Rejected

TICKET_TOKEN = 16  # base32 characters: 80 bits, with the endpoints rate-limited


def sign(key: bytes, purpose: str, centre: str, name: str) -> str:
    """The full signature (52 base32 characters) of `name` for `purpose` at `centre`."""
    mac = hmac.new(key, f"{purpose}|{centre}|{name}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode().rstrip("=")


def matches(key: bytes, purpose: str, centre: str, name: str, sig: Any, n: int) -> bool:
    """Whether `sig` is the first `n` characters of `name`'s signature (constant time)."""
    if not isinstance(sig, str) or len(sig) != n or not sig.isascii():
        return False
    return hmac.compare_digest(sig.encode(), sign(key, purpose, centre, name)[:n].encode())


@dataclass(frozen=True, slots=True)
class CodeFormat:
    """A kind of signed code a resident holds (a booking's, a case's): typed as
    ``{name}-{signature[:short]}``, or read from a QR code as
    ``{qr_prefix}/{centre}/{name}/{signature[:qr]}``. `forged` and `other_centre` are the
    refusals (zh-CN / zh-TW / en) of a code that does not verify or names another centre."""

    purpose: str
    qr_prefix: str
    short: int
    qr: int
    name: re.Pattern[str]
    forged: str
    other_centre: str
    max_len: int = 200

    def typed(self, key: bytes, centre: str, name: str) -> str:
        return f"{name}-{sign(key, self.purpose, centre, name)[:self.short]}"

    def qr_text(self, key: bytes, centre: str, name: str) -> str:
        return f"{self.qr_prefix}/{centre}/{name}/{sign(key, self.purpose, centre, name)[:self.qr]}"

    def verify(self, key: bytes, centre: str, text: Any) -> str:
        """The name inside a code, typed or the QR's text. Raises Rejected."""
        if not isinstance(text, str) or len(text) > self.max_len:
            raise Rejected("bad_code", self.forged)
        text = text.strip()
        if text.startswith(self.qr_prefix + "/"):
            parts = text.split("/")
            if len(parts) != 4:
                raise Rejected("bad_code", self.forged)
            if parts[1] != centre:
                raise Rejected("other_centre", self.other_centre)
            name, sig, n = parts[2], parts[3], self.qr
        else:
            name, _, sig = text.upper().rpartition("-")
            n = self.short
        if not self.name.match(name) or not matches(key, self.purpose, centre, name, sig, n):
            raise Rejected("bad_code", self.forged)
        return name


def ticket_token(key: bytes, centre: str, ticket_id: str) -> str:
    """The token of ticket `ticket_id` (its id, "20261123-A017"): what its QR link carries."""
    return sign(key, "ticket", centre, ticket_id)[:TICKET_TOKEN]


def ticket_token_ok(key: bytes | None, centre: str, ticket_id: str, token: Any) -> bool:
    """Whether `token` is ticket `ticket_id`'s. No key (a hub without a centre secret): no
    token is, so nothing that needs one can be done."""
    if key is None:
        return False
    return matches(key, "ticket", centre, ticket_id, token, TICKET_TOKEN)


def ticket_link(base: str, key: bytes | None, centre: str, ticket_id: str) -> str:
    """`base` + the ticket id, with its token when the hub has a key."""
    if key is None:
        return base + ticket_id
    return f"{base}{ticket_id}?k={ticket_token(key, centre, ticket_id)}"


__all__ = ["TICKET_TOKEN", "CodeFormat", "matches", "sign", "ticket_link", "ticket_token",
           "ticket_token_ok"]
