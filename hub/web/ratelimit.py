"""Token buckets for the residents' endpoints (booking, cancel, check-in): per client
address and per resident token, so a script that tries to book every slot is slowed to a
trickle while a resident who mistypes a code twice is not.

A bucket holds at most `burst` tries and refills at `per_minute`; a try takes one token or,
with none left, is refused with the seconds until one is back (the 429's Retry-After).
Pure: the caller gives `now`. Buckets live in memory only: they slow a caller down and
decide nothing a journal replay would need. Full buckets are forgotten, so memory follows
the callers of the last few minutes, and at most `max_keys` are kept (a flood of fresh
addresses makes the oldest be forgotten, never an error).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


class LimitError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Rate:
    burst: int = 10  # tries at once
    per_minute: float = 5.0  # tokens back per minute

    def __post_init__(self) -> None:
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or \
                not 1 <= self.burst <= 10000:
            raise LimitError(f"burst = {self.burst!r}: a whole number 1..10000")
        if isinstance(self.per_minute, bool) or not isinstance(self.per_minute, int | float) \
                or not 0 < self.per_minute <= 100000:
            raise LimitError(f"per_minute = {self.per_minute!r}: a number > 0")

    @classmethod
    def from_table(cls, name: str, table: Any, default: Rate) -> Rate:
        if table is None:
            return default
        if not isinstance(table, dict):
            raise LimitError(f"[booking.limits] {name}: a table {{ burst = N, per_minute = M }}")
        unknown = set(table) - {"burst", "per_minute"}
        if unknown:
            raise LimitError(f"[booking.limits] {name}: unknown key(s) "
                             f"{', '.join(sorted(unknown))}; only burst and per_minute")
        try:
            return cls(table.get("burst", default.burst),
                       table.get("per_minute", default.per_minute))
        except LimitError as e:
            raise LimitError(f"[booking.limits] {name}: {e}") from None


@dataclass(frozen=True, slots=True)
class BookingLimits:
    """[booking.limits]: `address` (per client address) and `resident` (per resident
    token), each { burst, per_minute }."""

    address: Rate = Rate(10, 5.0)
    resident: Rate = Rate(5, 2.0)

    @classmethod
    def from_table(cls, table: Any) -> BookingLimits:
        if table is None:
            return cls()
        if not isinstance(table, dict):
            raise LimitError("[booking.limits] must be a table")
        unknown = set(table) - {"address", "resident"}
        if unknown:
            raise LimitError(f"[booking.limits]: unknown key(s) {', '.join(sorted(unknown))}; "
                             "only address and resident")
        d = cls()
        return cls(Rate.from_table("address", table.get("address"), d.address),
                   Rate.from_table("resident", table.get("resident"), d.resident))


class Limiter:
    """One token bucket per key."""

    def __init__(self, rate: Rate, max_keys: int = 50000) -> None:
        self.rate = rate
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def _tokens(self, key: str, now: float) -> float:
        got = self._buckets.get(key)
        if got is None:
            return float(self.rate.burst)
        tokens, at = got
        refill = max(0.0, now - at) * self.rate.per_minute / 60.0
        return min(float(self.rate.burst), tokens + refill)

    def take(self, key: str, now: float) -> float:
        """0.0: allowed (one token taken). Else refused: the seconds until a token is back
        (nothing taken)."""
        tokens = self._tokens(key, now)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) * 60.0 / self.rate.per_minute
        self._buckets.pop(key, None)  # re-inserted last: the dict stays oldest-first
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self.max_keys:
            self._forget(now)
        return 0.0

    def give_back(self, key: str, now: float) -> None:
        """Return the token a try took (one that turned out not to need limiting: a
        kiosk's successful check-in), never beyond the burst."""
        got = self._buckets.get(key)
        if got is not None:
            self._buckets[key] = (min(float(self.rate.burst), self._tokens(key, now) + 1.0),
                                  now)

    def _forget(self, now: float) -> None:
        full = [k for k in self._buckets if self._tokens(k, now) >= self.rate.burst]
        for k in full:
            del self._buckets[k]
        while len(self._buckets) > self.max_keys:
            del self._buckets[next(iter(self._buckets))]

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after(seconds: float) -> str:
    """A Retry-After header's whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
