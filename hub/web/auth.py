"""Who may do what on the staff side, the login rate limit, and the request's session.

The permission table is the one place roles are decided: a page or action names the
permission it needs, never a role.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from ..store.accounts import ROLES, Accounts, Session

SESSION_COOKIE = "ow_staff"

# permission -> what it allows
PERMISSIONS = {
    "console": "the clerk console of one's own window and its actions, help (吹哨)",
    "console.any": "the clerk console of any window",
    "help.answer": "the specialist console: see and answer help requests",
    "help.department": "the department page: help calls to one's department (all: supervisors)",
    "floor": "the supervisor dashboard: live floor, alerts, day summary",
    "windows.manage": "open and close windows, change a window's skills",
    "fleet": "the device fleet: boards and nodes, online, firmware, signal, errors",
    "accounts": "staff accounts: list, create, disable",
    "cases": "promised items (承诺件) of one's department (all: no department): return for "
             "correction, reassign, approve, hand over, close, reopen, their documents; "
             "receive a community station's hand-over of paper originals",
    "station": "a community station's page (协管员代收): open cases for residents at one's own "
               "station, see only its cases, hand over their paper originals",
}
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "clerk": frozenset({"console"}),
    "specialist": frozenset({"help.answer", "help.department"}),
    "supervisor": frozenset({"floor", "windows.manage", "fleet", "cases", "help.department"}),
    "backoffice": frozenset({"cases", "help.department"}),
    "technician": frozenset({"fleet"}),
    # Not "station": an admin has no station, and a station's cases are its own.
    "admin": frozenset(PERMISSIONS) - {"station"},
    "station": frozenset({"station"}),
}
assert set(ROLE_PERMISSIONS) == set(ROLES)
HOME = {"clerk": "/console", "specialist": "/specialist", "supervisor": "/dashboard",
        "technician": "/fleet", "admin": "/dashboard", "backoffice": "/cases",
        "station": "/station"}


def may(role: str, permission: str) -> bool:
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


@dataclass
class RateLimit:
    """At most `limit` failed logins per key (username + address) in `window_s`; and, so
    that one address cannot try many usernames, `limit * 4` per address."""

    clock: Callable[[], float]
    limit: int = 5
    window_s: float = 300.0
    _fails: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, key: str) -> deque[float]:
        q = self._fails.get(key)
        if q is None:
            return deque()
        cut = self.clock() - self.window_s
        while q and q[0] <= cut:
            q.popleft()
        if not q:
            del self._fails[key]
        return q

    def _keys(self, username: str, address: str) -> list[tuple[str, int]]:
        return [(f"u:{username.lower()}|{address}", self.limit), (f"a:{address}", self.limit * 4)]

    def retry_after(self, username: str, address: str) -> float:
        """0 when a login may be tried now, else seconds until it may."""
        wait = 0.0
        for key, limit in self._keys(username, address):
            q = self._recent(key)
            if len(q) >= limit:
                wait = max(wait, q[len(q) - limit] + self.window_s - self.clock())
        return wait

    def failed(self, username: str, address: str) -> None:
        now = self.clock()
        for key, _ in self._keys(username, address):
            self._fails.setdefault(key, deque()).append(now)
        if len(self._fails) > 10000:  # a flood of names: drop the stalest keys
            for key in sorted(self._fails, key=lambda k: self._fails[k][-1])[:5000]:
                del self._fails[key]

    def succeeded(self, username: str, address: str) -> None:
        self._fails.pop(self._keys(username, address)[0][0], None)


def address(request: Request) -> str:
    return request.client.host if request.client else "?"


def session_of(request: Request, accounts: Accounts, now: float,
               touch: bool = True) -> Session | None:
    """The request's staff session (cached on the request), or None when logged out."""
    if "ow.session" not in request.scope:
        request.scope["ow.session"] = accounts.session(
            request.cookies.get(SESSION_COOKIE), now, touch=touch)
    return request.scope["ow.session"]  # type: ignore[no-any-return]
