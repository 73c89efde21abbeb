"""Credentials of the other systems a centre connects to (the city's government-service
platform, a mini-program or app back end, a booking site), in the hub's own database
(`api_clients` in schema.py, migration 0009).

A client is a name, scopes and an expiry. Its secret is a random token (`owk_` + 43
characters of `secrets.token_urlsafe(32)`, 256 bits) printed once when it is made or
rotated; the table keeps only its SHA-256, like the staff sessions' cookies
(hub/store/accounts.py): a copy of the database gives no usable secret. A slow hash
(argon2) buys nothing for 256 random bits and would cost every request ~50 ms.

Unlike FQM's API tokens, which never expire, every client expires (at the end of a local
day at most MAX_DAYS ahead) and carries scopes; a revoked one stays listed (who it was,
when revoked) and can no longer authenticate. `authenticate` says why a token is refused
(unknown, expired, revoked) so the API can answer each clearly. Every call takes `now`
from the caller.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from . import db
from .schema import api_clients as table

SCOPES = {
    "tickets:write": "issue tickets",
    "tickets:read": "read a ticket's state and estimate",
    "queue:call": "call the next ticket for a window and list a window's queue",
    "bookings:write": "book and cancel bookings",
}
PREFIX = "owk_"
MAX_DAYS = 3 * 366  # the longest a credential may be valid: renew, do not forget
TOUCH_S = 60.0  # `used` written at most once a minute per client
DEFAULT_BURST = 60
DEFAULT_PER_MINUTE = 120.0
_NAME = re.compile(r"^[A-Za-z0-9_.-]{2,64}$")


class ApiClientError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ApiClient:
    name: str
    scopes: frozenset[str]
    created: float
    expires: float
    revoked: float | None
    burst: int
    per_minute: float
    used: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "scopes": sorted(self.scopes), "created": self.created,
                "expires": self.expires, "revoked": self.revoked, "burst": self.burst,
                "per_minute": self.per_minute, "used": self.used}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a bearer token is: `client` when valid, else `reason` unknown | expired |
    revoked (and the client it named, for the log)."""

    client: ApiClient | None
    reason: str = ""
    name: str = ""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scopes(text: str) -> frozenset[str]:
    """`tickets:write,tickets:read` -> the set; unknown or no scopes refused."""
    scopes = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown or not scopes:
        raise ApiClientError(f"scopes: {', '.join(unknown) or 'none given'}; choose from "
                             f"{', '.join(SCOPES)}")
    return scopes


def end_of_day(day: str, utc_offset_minutes: int, now: float) -> float:
    """The epoch at which a credential valid through local date `day` (YYYY-MM-DD) ends:
    the next local midnight. Refused: not a date, already over, beyond MAX_DAYS."""
    try:
        d = dt.date.fromisoformat(day)
    except ValueError:
        raise ApiClientError(f"expires: {day!r} is not a date like 2027-06-30") from None
    tz = dt.timezone(dt.timedelta(minutes=utc_offset_minutes))
    end = dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), tz).timestamp()
    if end <= now:
        raise ApiClientError(f"expires: {day} is over already")
    if end - now > (MAX_DAYS + 1) * 86400:
        raise ApiClientError(f"expires: at most {MAX_DAYS} days ahead (renew it then)")
    return end


class ApiClients(db.Tables):
    def add(self, name: str, scopes: frozenset[str], expires: float, now: float,
            burst: int = DEFAULT_BURST, per_minute: float = DEFAULT_PER_MINUTE) -> str:
        """A new client; returns its secret (shown once, stored as its digest)."""
        if not _NAME.match(name):
            raise ApiClientError("name: 2-64 letters, digits or . _ -")
        if not scopes or not scopes <= set(SCOPES):
            raise ApiClientError(f"scopes: choose from {', '.join(SCOPES)}")
        if expires <= now:
            raise ApiClientError("expires: already over")
        if isinstance(burst, bool) or not 1 <= burst <= 10000:
            raise ApiClientError("burst: a whole number 1..10000")
        if not 0 < per_minute <= 100000:
            raise ApiClientError("per-minute: a number > 0 and <= 100000")
        secret = PREFIX + secrets.token_urlsafe(32)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(table).values(
                    name=name, token=digest(secret), scopes=",".join(sorted(scopes)),
                    created=now, expires=expires, revoked=None, burst=burst,
                    per_minute=float(per_minute), used=None))
        except IntegrityError as e:
            raise ApiClientError(f"client {name!r} exists already (rotate its secret, or "
                                 "give the new one another name)") from e
        return secret

    def get(self, name: str) -> ApiClient | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.name == name)).first()
        return None if row is None else _client(row)

    def list(self) -> list[ApiClient]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(table).order_by(table.c.name)).all()
        return [_client(r) for r in rows]

    def revoke(self, name: str, now: float) -> None:
        with self.engine.begin() as conn:
            n = conn.execute(update(table).where((table.c.name == name)
                                                 & table.c.revoked.is_(None))
                             .values(revoked=now)).rowcount
        if not n:
            raise ApiClientError(f"no client {name!r}, or revoked already")

    def rotate(self, name: str, now: float, expires: float | None = None) -> str:
        """A new secret for a client that is not revoked (the old one stops at once);
        optionally a new expiry. Returns the new secret."""
        secret = PREFIX + secrets.token_urlsafe(32)
        values: dict[str, Any] = {"token": digest(secret)}
        if expires is not None:
            if expires <= now:
                raise ApiClientError("expires: already over")
            values["expires"] = expires
        with self.engine.begin() as conn:
            n = conn.execute(update(table).where((table.c.name == name)
                                                 & table.c.revoked.is_(None))
                             .values(**values)).rowcount
        if not n:
            raise ApiClientError(f"no client {name!r}, or it is revoked (add a new one)")
        return secret

    def authenticate(self, token: str | None, now: float) -> Verdict:
        """The client a bearer token belongs to, if it may act now. The lookup is by the
        token's digest (an index), so its time says nothing about how close a guess was."""
        if not token or len(token) > 128:
            return Verdict(None, "unknown")
        with self.engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.token == digest(token))).first()
        if row is None:
            return Verdict(None, "unknown")
        client = _client(row)
        if client.revoked is not None:
            return Verdict(None, "revoked", client.name)
        if now >= client.expires:
            return Verdict(None, "expired", client.name)
        if client.used is None or now - client.used >= TOUCH_S:
            with self.engine.begin() as conn:
                conn.execute(update(table).where(table.c.name == client.name)
                             .values(used=now))
        return Verdict(client)


def _client(row: Any) -> ApiClient:
    return ApiClient(row.name, frozenset(s for s in row.scopes.split(",") if s), row.created,
                     row.expires, row.revoked, int(row.burst), float(row.per_minute), row.used)


__all__ = ["SCOPES", "ApiClient", "ApiClientError", "ApiClients", "Verdict", "end_of_day",
           "parse_scopes"]
