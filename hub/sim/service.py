"""Service times: lognormal around the catalog's standard minutes, per clerk speed.

A certificate print or a PIN reset (standard 2 minutes) takes 1-2 minutes; the long
cross-department applications (standard 25-35 minutes) about 30. The draw for a visit is
made once (`Visit.z`), so every layout sees the same work; the clerk's speed and whether
the item is outside the clerk's home line scale it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from ..core.catalog import Item


@dataclass(frozen=True, slots=True)
class Clerk:
    name: str
    speed: float  # multiplies service times: 0.9 is a quick clerk
    home_line: str | None  # the department line the clerk came from (None: all lines)


@dataclass(frozen=True, slots=True)
class ServiceModel:
    sigma: float = 0.45  # lognormal spread of one service around its median
    certificate_minutes: float = 1.5  # median of items whose standard is <= 2 minutes
    cross_department_minutes: float = 30.0  # median of items whose standard is >= 25
    clerk_sigma: float = 0.12  # spread of clerk speeds
    generalist_penalty: float = 1.05  # an item outside the clerk's home line
    missing_minutes: float = 3.0  # telling a resident what is missing (一次性告知)
    walk_median: float = 25.0  # seconds from the call to the window
    walk_sigma: float = 0.5
    absent_wait: float = 50.0  # seconds a clerk waits before a recall, and again to skip
    wrap_up: float = 15.0  # seconds between complete and the next call
    lower: float = 0.25  # clamp a draw to [lower, upper] x its median
    upper: float = 4.0

    def median_minutes(self, item: Item) -> float:
        if item.minutes <= 2:
            return self.certificate_minutes
        if item.minutes >= 25:
            return self.cross_department_minutes
        return item.minutes

    def seconds(self, item: Item, z: float, clerk: Clerk) -> float:
        med = self.median_minutes(item) * 60.0 * clerk.speed
        if clerk.home_line is not None and item.line != clerk.home_line:
            med *= self.generalist_penalty
        f = math.exp(self.sigma * z)
        return med * min(self.upper, max(self.lower, f))

    def mean_minutes(self, item: Item) -> float:
        """Expected minutes (for planning: lognormal mean, clamping ignored)."""
        return self.median_minutes(item) * math.exp(self.sigma ** 2 / 2)

    def walk(self, z: float) -> float:
        return min(120.0, max(5.0, self.walk_median * math.exp(self.walk_sigma * z)))

    def clerks(self, n: int, seed: int, home_lines: list[str | None]) -> list[Clerk]:
        """Clerk i of a centre: the same person (speed) for the same seed and index."""
        out = []
        for i in range(n):
            rng = random.Random(f"clerk:{seed}:{i}")
            speed = math.exp(rng.gauss(0.0, self.clerk_sigma))
            out.append(Clerk(f"clerk-{i + 1:02d}", speed, home_lines[i] if i < len(home_lines)
                             else None))
        return out
