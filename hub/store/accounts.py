"""Staff accounts and their login sessions, in the hub's own database (the journal's URL,
tables of their own in schema.py; SQLite or PostgreSQL through SQLAlchemy Core).

Passwords are argon2id hashes (argon2-cffi's PasswordHasher defaults). Sessions live on the
server: the browser holds a random token, the table its SHA-256, so a database leak gives no
usable cookie, and logout or a disabled account ends a session at once. A session ends
after `IDLE_S` without a request or `ABSOLUTE_S` after login, whichever comes first. Every
call takes `now` from the caller, so tests drive expiry with their own clock.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from . import db
from .schema import staff_accounts as accounts
from .schema import staff_sessions as sessions

ROLES = ("clerk", "specialist", "supervisor", "technician", "backoffice", "admin", "station")
DEPARTMENT_ROLES = ("specialist", "backoffice")  # roles that belong to a department
# A community station (协管员代收, hub/web/stations.py): a community assistant's login acts
# for exactly one station, named by `station`.
STATION_ROLE = "station"
_STATION = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
IDLE_S = 30 * 60.0
ABSOLUTE_S = 12 * 3600.0
TOUCH_S = 60.0  # write `seen` at most once a minute per session
MIN_PASSWORD = 8
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")


class AccountError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    display: str
    role: str
    window: int | None
    active: bool = True
    department: str | None = None  # a back-office user's or specialist's department (科室)
    station: str | None = None  # a station account's community station (协管员代收)

    def to_dict(self) -> dict[str, Any]:
        return {"username": self.username, "display": self.display, "role": self.role,
                "window": self.window, "active": self.active, "department": self.department,
                "station": self.station}


@dataclass(frozen=True, slots=True)
class Session:
    account: Account
    window: int | None  # the window this session acts for (clerks), else None
    created: float
    seen: float


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts(db.Tables):
    def __init__(self, url: str | Engine, hasher: PasswordHasher | None = None) -> None:
        super().__init__(url)
        self.hasher = hasher or PasswordHasher()
        # The hash an unknown user's password is checked against, made at the first login
        # (of anyone, so known and unknown names still cost the same): argon2 takes 64 MiB
        # for it, and every start of the hub (its banner counts the admins) and every CLI
        # command opening the accounts paid that spike for nothing (start-up RSS 178 MiB).
        self._dummy: str | None = None

    # ---- accounts --------------------------------------------------------------------
    def add(self, username: str, password: str, role: str, display: str = "",
            window: int | None = None, now: float = 0.0,
            department: str | None = None, station: str | None = None) -> Account:
        """A new account. `department`: the catalog department (科室) a back-office user or
        specialist belongs to; the caller checks it names one (`Catalog.departments`).
        `station`: the community station a `station` account acts for (required for it,
        refused for every other role); the caller checks it against the centre's list
        where the centre keeps one ([stations] in centre.toml)."""
        if not _USERNAME.match(username):
            raise AccountError("username: 2-64 letters, digits or . _ @ -")
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}")
        if window is not None and role != "clerk":
            raise AccountError("only a clerk has a window")
        if department is not None and role not in DEPARTMENT_ROLES:
            raise AccountError(f"only a {' or '.join(DEPARTMENT_ROLES)} belongs to a department")
        if department is not None and not (0 < len(department) <= 32):
            raise AccountError("department: 1-32 characters")
        if (station is None) != (role != STATION_ROLE):
            raise AccountError("a station account needs --station <id>, and only a station "
                               "account has one")
        if station is not None and not _STATION.match(station):
            raise AccountError("station: 1-32 letters, digits, _ or -")
        _check_password(password)
        acc = Account(username, display or username, role, window, True, department, station)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(accounts).values(
                    username=username, display=acc.display, role=role, window=window,
                    department=department, station=station,
                    hash=self.hasher.hash(password), active=True,
                    created=now))
        except IntegrityError as e:
            raise AccountError(f"user {username!r} exists already") from e
        return acc

    def get(self, username: str) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(accounts).where(accounts.c.username == username)).first()
        return None if row is None else _account(row)

    def list(self) -> list[Account]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(accounts).order_by(accounts.c.username)).all()
        return [_account(r) for r in rows]

    def set_department(self, username: str, department: str | None) -> None:
        """Move a back-office user or specialist to another department (None: none)."""
        acc = self.get(username)
        if acc is None:
            raise AccountError(f"no user {username!r}")
        if department is not None and acc.role not in DEPARTMENT_ROLES:
            raise AccountError(f"only a {' or '.join(DEPARTMENT_ROLES)} belongs to a department")
        with self.engine.begin() as conn:
            conn.execute(update(accounts).where(accounts.c.username == username)
                         .values(department=department))

    def set_password(self, username: str, password: str) -> None:
        _check_password(password)
        with self.engine.begin() as conn:
            n = conn.execute(update(accounts).where(accounts.c.username == username)
                             .values(hash=self.hasher.hash(password))).rowcount
            conn.execute(delete(sessions).where(sessions.c.username == username))
        if not n:
            raise AccountError(f"no user {username!r}")

    def set_active(self, username: str, active: bool) -> None:
        with self.engine.begin() as conn:
            n = conn.execute(update(accounts).where(accounts.c.username == username)
                             .values(active=active)).rowcount
            if not active:
                conn.execute(delete(sessions).where(sessions.c.username == username))
        if not n:
            raise AccountError(f"no user {username!r}")

    def verify(self, username: str, password: str) -> Account | None:
        """The active account if the password is right. Slow on purpose (argon2), and as
        slow for an unknown user, so timing does not tell which usernames exist."""
        if self._dummy is None:
            self._dummy = self.hasher.hash(secrets.token_hex(8))
        with self.engine.connect() as conn:
            row = conn.execute(select(accounts).where(accounts.c.username == username)).first()
        stored = row.hash if row is not None else self._dummy
        try:
            self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or not row.active:
            return None
        if self.hasher.check_needs_rehash(stored):
            with self.engine.begin() as conn:
                conn.execute(update(accounts).where(accounts.c.username == username)
                             .values(hash=self.hasher.hash(password)))
        return _account(row)

    # ---- sessions --------------------------------------------------------------------
    def start_session(self, account: Account, now: float, window: int | None = None) -> str:
        """A new session; returns the token for the cookie (stored only as its digest)."""
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            # Forget this user's expired sessions while here.
            conn.execute(delete(sessions).where(
                (sessions.c.username == account.username)
                & ((sessions.c.seen < now - IDLE_S) | (sessions.c.created < now - ABSOLUTE_S))))
            conn.execute(insert(sessions).values(
                token=_digest(token), username=account.username,
                window=window if window is not None else account.window,
                created=now, seen=now))
        return token

    def session(self, token: str | None, now: float, touch: bool = True) -> Session | None:
        """The live session of this token, or None (unknown, expired, account disabled)."""
        if not token or len(token) > 128:
            return None
        key = _digest(token)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(sessions.c.window, sessions.c.created, sessions.c.seen,
                       accounts.c.username, accounts.c.display, accounts.c.role,
                       accounts.c.window.label("home"), accounts.c.active,
                       accounts.c.department, accounts.c.station)
                .join(accounts, accounts.c.username == sessions.c.username)
                .where(sessions.c.token == key)).first()
        if row is None:
            return None
        if (not row.active or now - row.seen > IDLE_S or now - row.created > ABSOLUTE_S
                or now < row.created - 300):
            self.end_session(token)
            return None
        if touch and now - row.seen >= TOUCH_S:
            with self.engine.begin() as conn:
                conn.execute(update(sessions).where(sessions.c.token == key).values(seen=now))
        acc = Account(row.username, row.display, row.role, row.home, row.active,
                      row.department, row.station)
        return Session(acc, row.window, row.created, now if touch else row.seen)

    def end_session(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.token == _digest(token)))


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")


def _account(row: Any) -> Account:
    return Account(row.username, row.display, row.role, row.window, bool(row.active),
                   row.department, row.station)


__all__ = ["ABSOLUTE_S", "DEPARTMENT_ROLES", "IDLE_S", "ROLES", "STATION_ROLE", "Account",
           "AccountError", "Accounts", "Session"]
