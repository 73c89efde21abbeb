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
from typing import Any

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


__all__ = ["TICKET_TOKEN", "matches", "sign", "ticket_link", "ticket_token",
           "ticket_token_ok"]
