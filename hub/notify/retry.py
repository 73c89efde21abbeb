"""Bounded retries with backoff for a channel's retryable failures.

`RetryPolicy` is pure: attempt n (1-based) waits `first * factor**(n-1)`, capped at
`max_delay`, spread by ±`jitter` of itself with a random draw the caller passes. `deliver`
sends one notice through one channel: a `Sent` or `Permanent` outcome ends it at once,
a `Retryable` one is tried again after its delay until `attempts` sends were made; the
answer says how many were.

`RetryingChannel` wraps any channel with a policy and is itself a `Channel`, so the hub's
wiring can hold "SMS with retries" as one channel.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .channel import Channel, Notice, Outcome, Retryable

__all__ = ["Delivery", "RetryPolicy", "RetryingChannel", "deliver"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5  # sends in all, the first included
    first: float = 1.0  # seconds before the 2nd send
    factor: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.2  # ± this share of each delay

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("retry: attempts must be >= 1")
        if self.first < 0 or self.max_delay < 0 or self.factor < 1:
            raise ValueError("retry: first and max_delay >= 0, factor >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("retry: jitter must be in [0, 1)")

    def delay(self, attempt: int, draw: float) -> float:
        """Seconds to wait after the `attempt`-th send failed; `draw` in [0, 1)."""
        base = min(self.first * self.factor ** (attempt - 1), self.max_delay)
        return base * (1 + self.jitter * (2 * draw - 1))


@dataclass(frozen=True, slots=True)
class Delivery:
    outcome: Outcome
    attempts: int


async def deliver(channel: Channel, notice: Notice, policy: RetryPolicy, *,
                  sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                  draw: Callable[[], float] = random.random) -> Delivery:
    attempt = 0
    while True:
        attempt += 1
        outcome = await channel.send(notice)
        if not isinstance(outcome, Retryable) or attempt >= policy.attempts:
            if isinstance(outcome, Retryable):
                log.warning("notice %s via %s: gave up after %d attempts (%s)", notice.id,
                            channel.name, attempt, outcome.reason)
            return Delivery(outcome, attempt)
        wait = policy.delay(attempt, draw())
        log.info("notice %s via %s: %s, attempt %d of %d, next in %.2f s", notice.id,
                 channel.name, outcome.reason, attempt, policy.attempts, wait)
        await sleep(wait)


class RetryingChannel:
    """`channel` with `policy` applied: a `Channel` whose `send` retries."""

    def __init__(self, channel: Channel, policy: RetryPolicy) -> None:
        self.channel = channel
        self.policy = policy
        self.name = channel.name

    async def send(self, notice: Notice) -> Outcome:
        return (await deliver(self.channel, notice, self.policy)).outcome
