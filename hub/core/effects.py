"""What the core asks the outside world to do. Adapters turn these into MQTT, print, speech."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Case, HelpRequest, Rating


@dataclass(frozen=True, slots=True)
class Effect:
    pass


@dataclass(frozen=True, slots=True)
class TicketIssued(Effect):
    ticket: str  # ticket id
    ahead: int  # people likely served first; the wait itself is the app's WaitPredictor's
    source: str | None
    reprint: bool = False


@dataclass(frozen=True, slots=True)
class TicketVoided(Effect):
    """A ticket issued late for a press its device had served offline, replaced by `by`
    (the offline ticket's id). `window`: the window that had called it, now free."""

    ticket: str
    by: str
    window: int | None = None


@dataclass(frozen=True, slots=True)
class TicketCalled(Effect):
    ticket: str
    window: int
    recall: bool = False


@dataclass(frozen=True, slots=True)
class WindowChanged(Effect):
    window: int


@dataclass(frozen=True, slots=True)
class QueueChanged(Effect):
    pass


@dataclass(frozen=True, slots=True)
class CaseOpened(Effect):
    case: str
    due_day: str


@dataclass(frozen=True, slots=True)
class CaseChanged(Effect):
    case: str
    action: str
    state: str


@dataclass(frozen=True, slots=True)
class DayClosed(Effect):
    """`archived`: the cases closed by the end of `day`, which left the core's memory with
    it (their final state, for the history tables; a reopening brings one back); `ratings`
    and `helps`: the ratings given and the answered help requests that left with it."""

    day: str
    expired: tuple[str, ...]
    archived: tuple[Case, ...] = ()
    ratings: tuple[Rating, ...] = ()
    helps: tuple[HelpRequest, ...] = ()
    # The day's kiosk pre-reviews that ended without a ticket, of them with tips printed.
    kiosk_left: tuple[int, int] = (0, 0)


@dataclass(frozen=True, slots=True)
class Unreachable(Effect):
    """Waiting tickets that no open or paused window can serve any more."""

    tickets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BlockReserved(Effect):
    device: str


@dataclass(frozen=True, slots=True)
class RatingGiven(Effect):
    """A rating the core accepted: credited to `clerk`, who served `ticket` at `window`."""

    ticket: str
    score: int
    window: int
    clerk: str | None


@dataclass(frozen=True, slots=True)
class HelpRequested(Effect):
    """A help request the core journaled as `request` (its record's journal position)."""

    request: int
    window: int
    department: str | None = None


@dataclass(frozen=True, slots=True)
class HelpAnswered(Effect):
    request: int
    window: int
    by: str


@dataclass(frozen=True, slots=True)
class HelpProgressed(Effect):
    """A help request's later step (help_requests.py): `step` is "arrived", "resolved" or
    "escalated" (then `by` is None: the hub's decision, not a person's)."""

    request: int
    window: int
    step: str
    by: str | None
    department: str | None
