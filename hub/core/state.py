"""CentreState: all of one centre's state, and the look-ups every operation shares.

The state lives in one object on purpose: a refused command must leave it exactly as it
was (day_rollover.savepoint copies its attributes), and a snapshot saves and restores it
whole (snapshot.py). The operations are functions over it in their own modules (issuing,
serving, window_admin, numbering, cases, ratings, help_requests); `Centre` (centre.py) adds
the entry point, `apply`, on top. Attributes with a leading underscore are derived (indexes
and caches rebuilt from the rest: a snapshot does not hold them).
"""

from __future__ import annotations

from typing import Any

from .catalog import Catalog, Item
from .centre_config import CentreConfig
from .city_book import CityBook
from .day_calendar import DayCalendar
from .effects import Effect, Unreachable
from .model import Booking, Case, Followup, HelpRequest, Rating, Ticket, Window, WindowState
from .policy import WaitingQueue
from .reach import ItemReach, item_reach, servable, ticket_reach, update_reach, window_skills
from .rejected import Rejected
from .station_book import Stations


class CentreState:
    def __init__(self, catalog: Catalog, config: CentreConfig) -> None:
        self.catalog = catalog
        self.config = config
        self.policy = config.policy
        self.calendar = DayCalendar(config.utc_offset_minutes, config.holidays,
                                    config.workdays, config.hours)
        self.day = ""
        self._day_span = (0.0, 0.0)  # [start, end) of self.day in epoch seconds
        self.tickets: dict[str, Ticket] = {}  # today's, by id
        self.by_number: dict[str, Ticket] = {}
        self.queue = WaitingQueue()
        self.counters: dict[str, int] = {}
        # Today's offline blocks: device -> prefix -> [first, last] ranges, newest last.
        self.blocks: dict[str, dict[str, list[tuple[int, int]]]] = {}
        self.offline_next: dict[str, int] = {}
        # Remote tickets' contacts (notices.Contact: the sealed number and language) and
        # the notices journaled as due (notices.Notice), by ticket id and notice id.
        self.contacts: dict[str, Any] = {}
        self.notices: dict[str, Any] = {}
        # Today's pick-up tickets (统一窗口出件): ticket id -> the ready cases it is for
        # (pickup.py); they leave with their tickets at the day's close.
        self.pickups: dict[str, tuple[str, ...]] = {}
        self.serial = 0
        self.streak = 0
        self.cases: dict[str, Case] = {}
        self.active_by_resident: dict[tuple[str, str], str] = {}
        # Ratings since the last day's close, by ticket id, in the order given; and the
        # tickets still held whose rating left with an earlier day (ratings.py).
        self.ratings: dict[str, Rating] = {}
        self.rated_carried: frozenset[str] = frozenset()
        # Follow-ups of low ratings (差评整改) by ticket id: open ones until closed, closed
        # ones for the day they were closed on (followups.py).
        self.followups: dict[str, Followup] = {}
        # Help requests by request (journal position), oldest first: the open ones and
        # those answered since the last day's close (help_requests.py).
        self.help_requests: dict[int, HelpRequest] = {}
        # Today's kiosk pre-reviews that ended without a ticket (prereview.py): (residents
        # who left to fetch missing materials, of whom with a tips slip printed).
        self.kiosk_left: tuple[int, int] = (0, 0)
        self.windows: dict[int, Window] = {}
        for spec in config.windows:
            if spec.number in self.windows:
                raise ValueError(f"window {spec.number} configured twice")
            skills = window_skills(catalog, spec, self.policy)
            self.windows[spec.number] = Window(spec.number, spec.kind, skills)
        self._reach: ItemReach = {}
        self._servable: frozenset[str] = frozenset()
        # mine -> other -> do they compete (people_ahead.count_ahead); valid for this reach
        self._share_rows: dict[str, dict[str, bool]] = {}
        self._refresh_reach()
        # Bookings (booking.py): every booking not yet finished on a past day, by its name;
        # the last name given; per day the counts (booking.COUNTS). Derived: the rules and
        # each line's capacity (from the configuration), when the next sweep is due.
        self.bookings: dict[str, Booking] = {}
        self.booking_serial = 0
        self.booking_counts: dict[str, list[int]] = {}
        self.booking_rules = config.booking
        self._configured_skills = [window_skills(catalog, s, self.policy)
                                   for s in config.windows]
        self._booking_capacity: dict[str, int] | None = None  # booking.capacities
        self._booking_due = float("inf")
        self._booking_day = ""
        # Community stations (协管员代收, stations.py): their submissions by idempotency key,
        # hand-over batches, and the serials naming station cases and batches.
        self.stations = Stations()
        # The city's features (city.py): cases linked across centres, the city's catalog.
        self.city = CityBook()

    # ---- reach -----------------------------------------------------------------------
    def _refresh_reach(self) -> None:
        """Every item's reach worked out again (skills changed, a snapshot restored)."""
        self._reach = item_reach(self.catalog, self.windows.values())
        self._share_rows = {}
        self._servable = servable(self.windows.values())

    def _update_reach(self, w: Window) -> None:
        """Window `w` opened or closed."""
        self._share_rows.clear()
        update_reach(self._reach, w)

    def reach(self, t: Ticket) -> frozenset[int]:
        """Windows (not closed) that may serve this waiting ticket."""
        return ticket_reach(self._reach, self.windows, t)

    def unreachable(self) -> list[Ticket]:
        return [t for t in self.queue if not self.reach(t)]

    def newly_unreachable(self, before: set[str]) -> list[Effect]:
        """`Unreachable` for the waiting tickets no window reaches now that were not in
        `before` (ids): what an operation reports after changing windows."""
        lost = tuple(t.id for t in self.unreachable() if t.id not in before)
        return [Unreachable(lost)] if lost else []

    # ---- look-ups --------------------------------------------------------------------
    def find_ticket(self, ref: str) -> Ticket | None:
        """Today's ticket by id ("20261123-A017") or number ("A017")."""
        return self.tickets.get(ref) or self.by_number.get(ref)

    def known_window(self, number: int) -> Window:
        w = self.windows.get(number)
        if w is None:
            raise Rejected("unknown_window", f"没有{number}号窗口 / no window {number}")
        return w

    def known_item(self, item_id: str) -> Item:
        item = self.catalog.item(item_id)
        if item is None:
            raise Rejected("unknown_item", f"未知事项 / unknown item {item_id!r}")
        return item

    def active_window(self, number: int) -> Window:
        """A window that is open and not paused: one that may call and serve."""
        w = self.known_window(number)
        if w.state is WindowState.CLOSED:
            raise Rejected("window_closed", f"{number}号窗口未开放 / window {number} is closed")
        if w.state is WindowState.PAUSED:
            raise Rejected("window_paused", f"{number}号窗口暂停中 / window {number} is paused")
        return w

    def current_ticket(self, w: Window) -> Ticket:
        """The ticket window `w` is calling or serving."""
        t = self.tickets.get(w.ticket) if w.ticket else None
        if t is None:
            raise Rejected("no_current_ticket",
                           f"{w.number}号窗口没有当前号 / window {w.number} has no current ticket")
        return t

    # ---- the whole state, for comparing states and for tests --------------------------
    def to_dict(self) -> dict[str, Any]:
        """All the state, derived indexes included: two cores with equal dicts answer every
        command alike (a refused command must leave it equal)."""
        q = self.queue
        return {
            "day": self.day,
            "serial": self.serial,
            "streak": self.streak,
            "counters": dict(sorted(self.counters.items())),
            "blocks": {d: {p: list(r) for p, r in sorted(b.items())}
                       for d, b in sorted(self.blocks.items())},
            "offline_next": dict(sorted(self.offline_next.items())),
            "contacts": {k: v.to_dict() for k, v in sorted(self.contacts.items())},
            "notices": {k: v.to_dict() for k, v in sorted(self.notices.items())},
            "pickups": {k: list(v) for k, v in sorted(self.pickups.items())},
            "tickets": {k: t.to_dict() for k, t in sorted(self.tickets.items())},
            "by_number": {n: t.id for n, t in sorted(self.by_number.items())},
            "active_by_resident": sorted([r, i, t] for (r, i), t in
                                         self.active_by_resident.items()),
            "queue": [t.id for t in q],
            "queue_by_item": dict(sorted(q.by_item.items())),
            "queue_targeted": q.targeted,
            "windows": {n: w.to_dict() for n, w in sorted(self.windows.items())},
            "cases": {k: v.to_dict() for k, v in sorted(self.cases.items())},
            "ratings": {k: r.to_dict() for k, r in sorted(self.ratings.items())},
            "rated_carried": sorted(self.rated_carried),
            "followups": {k: f.to_dict() for k, f in sorted(self.followups.items())},
            "help_requests": {k: h.to_dict() for k, h in sorted(self.help_requests.items())},
            "bookings": {k: b.to_dict() for k, b in sorted(self.bookings.items())},
            "booking_serial": self.booking_serial,
            "booking_counts": {d: list(v) for d, v in sorted(self.booking_counts.items())},
            "stations": {**self.stations.to_dict(),
                         "by_case": dict(sorted(self.stations.by_case.items()))},
            "kiosk_left": list(self.kiosk_left),
            "city": self.city.to_dict(),
        }
