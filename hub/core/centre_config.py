"""What a centre is configured with: its windows (kind and skills), ordering policy, UTC
offset and calendar exceptions. Read from the centre's TOML by hub/config.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from .catalog import COMPREHENSIVE
from .day_calendar import WEEKDAYS_9_TO_5, Hours
from .policy import OrderingPolicy


@dataclass(frozen=True, slots=True)
class WindowSpec:
    number: int
    kind: str = COMPREHENSIVE
    skills: tuple[str, ...] | None = None  # item or line ids; None: what the kind serves


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Monday to Friday 09:00-17:00; weekends closed unless a weekend is a working day (调休),
# which keeps Monday's hours.
DEFAULT_HOURS = WEEKDAYS_9_TO_5

__all__ = ["DAYS", "DEFAULT_HOURS", "CentreConfig", "Hours", "WindowSpec"]


@dataclass(frozen=True, slots=True)
class BookingRules:
    """[booking] in centre.toml."""

    slot_minutes: int = 30
    days_ahead: int = 7
    capacity: tuple[tuple[str, int], ...] = ()  # (line, bookings per slot) set explicitly

    def __post_init__(self) -> None:
        if not 5 <= self.slot_minutes <= 240:
            raise ValueError("[booking] slot_minutes must be 5..240")
        if not 0 <= self.days_ahead <= 60:
            raise ValueError("[booking] days_ahead must be 0..60")
        for line, n in self.capacity:
            if not isinstance(n, int) or n < 0:
                raise ValueError(f"[booking] capacity of {line}: a whole number >= 0")


@dataclass(frozen=True, slots=True)
class CentreConfig:
    centre_id: str
    windows: tuple[WindowSpec, ...]
    policy: OrderingPolicy = field(default_factory=OrderingPolicy)
    utc_offset_minutes: int = 480  # China Standard Time; the day rolls over at local midnight
    holidays: frozenset[str] = frozenset()  # ISO dates that are not working days
    workdays: frozenset[str] = frozenset()  # weekend dates that are working days (调休)
    # Opening hours per weekday, Monday first ([hours] in centre.toml); None: closed.
    hours: tuple[Hours | None, ...] = DEFAULT_HOURS
    # [booking]: slot length, days ahead, bookings per slot of a line (hub/core/booking.py).
    booking: BookingRules = field(default_factory=BookingRules)
    # [pickup] item: the catalog item of pick-up tickets (统一窗口出件, hub/core/pickup.py);
    # "" when the centre hands results out without them.
    pickup_item: str = ""
    # [pickup] uncollected_days: a ready result not collected for this many days is listed
    # at the pick-up window's console (统一窗口出件: uncollected results).
    pickup_uncollected_days: int = 7
