"""Measures of the day's tickets that the staff floor (hub/web/floor.py), the simulator's
scores (hub/sim/metrics.py, hub/forecast/staffing.py) and the history store all report:
one definition each, so a p90 wait means the same on every screen and in every plan."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .model import Ticket, first_call


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100): a value that occurred, None for no values."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)]


def wait_minutes(t: Ticket) -> float | None:
    """Minutes from issue to the first call, None if never called."""
    fc = first_call(t)
    return None if fc is None else max(0.0, (fc[0] - t.issued_at) / 60.0)
