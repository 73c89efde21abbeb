"""What the hub app holds between messages, and the `Step` each message gives back.

`AppState` is plain state, as `CentreState` is the core's: the modules of this package are
functions over it, each doing one job (hub/app/__init__.py lists them in the order a message
goes through them), and `HubApp` (facade.py) is this state with those jobs as methods. Every
field is an instance attribute on purpose: a rebuild replaces them all at once
(replay.py `reload`; the runner's storage recovery swaps `vars()` of the whole object, which
the web side and the live views keep holding).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..core.centre import Centre
from ..devices import Publish, Registry
from ..fleetwatch import FleetWatch
from ..forecast.wait import Estimate, WaitPredictor
from ..store.history import DayFacts
from ..store.journal import Record

log = logging.getLogger("onewindow.hub")

HALL_CALLS = 8  # calls the hall board lists


@dataclass(slots=True)
class Step:
    """What one message (or staff action) made: records the runner must make durable
    first, then messages it may publish."""

    records: list[Record] = field(default_factory=list)
    publishes: list[Publish] = field(default_factory=list)


def merged(a: Step, b: Step) -> Step:
    return Step(a.records + b.records, a.publishes + b.publishes)


@dataclass(frozen=True, slots=True)
class Call:
    """One line of the hall board: a ticket called to a window, and when."""

    ticket: str
    window: int
    at: float


class CaseArchive(Protocol):
    """Where closed cases go when they leave the core (hub/store/history.py History)."""

    def case(self, case_id: str) -> dict[str, Any] | None: ...

    def cases_of(self, resident: str) -> list[dict[str, Any]]: ...

    def closed_cases(self, first: str, last: str, limit: int = 100, offset: int = 0,
                     department: str | None = None, items: Sequence[str] = ()
                     ) -> tuple[int, list[dict[str, Any]]]: ...


class AppState:
    # The key that signs booking codes (hub/core/booking.py derive_key), set by the web side
    # from the centre's secret; a class default, so it is no journal state and a `reload`
    # keeps what was set.
    booking_key: bytes | None = None

    # [admission] mode in centre.toml (hub/config.py, hub/app/admission.py): "warn" (issue
    # with a warning), "stop" (refuse, offer a booking) or "off". Configuration, not state:
    # the default here; whoever builds the app from centre.toml sets it on the instance.
    admission: str = "warn"
    # [admission] stop_quantile: the quantile of the wait "stop" judges on (configuration,
    # like `admission`; hub/forecast/admission.py quantile_for)
    admission_stop_quantile: float = 0.6
    # [centre] slip_chinese: "zh_CN" or "zh_TW", the Chinese printed tickets and slips use
    slip_chinese: str = "zh_CN"
    # Called with (command, effects, now) after each core apply (day_close.apply): the
    # city exporter's replica (hub/city/export.py) reads what the core decided. None in
    # the hub.
    effect_tap: Callable[[Any, list[Any], float], None] | None = None

    def __init__(self, centre: Centre, registry: Registry, boot: str,
                 status_url: str = "http://localhost:8080/t/") -> None:
        self.centre = centre
        self.registry = registry
        self.centre_id = centre.config.centre_id
        self.boot = boot  # distinguishes this process's command ids from earlier ones
        self.status_url = status_url
        self.pos = 0
        self.calls: deque[Call] = deque(maxlen=HALL_CALLS)
        # Journal position of each window's and the hall's last change: a board keeps the
        # highest `rev` it has seen, and a restarted hub republishes identical messages.
        self.window_rev: dict[int, int] = {}
        self.hall_rev = 0
        self.refused: deque[dict[str, Any]] = deque(maxlen=100)  # commands devices refused
        self.fleet = FleetWatch(self.centre_id)  # the device summary and fleet alerts
        self.resync_n = 0  # numbers the commands this boot sends of itself (show, block, ...)
        self.replaying = False
        self.quiet = False  # replaying a record whose reply is not kept: no messages
        self.mutating = False  # a message being handled has begun to change the state
        self.damaged = False  # ... and then failed: the runner rebuilds it from the journal
        self.font_warned = False
        # Per-ticket waits: learned from the journal's own history, seeded by its position,
        # so a replayed hub prints the same numbers. Read through `waits` (below).
        self._waits = WaitPredictor()
        # The latest record's (time, op), not yet told to the predictor (`learn_later`)
        self._waits_due: tuple[float, str | None] | None = None
        self.issue_waits: dict[str, Estimate] = {}  # recent tickets: the wait they printed
        self.snapshot_pos = 0  # journal position of the latest stored snapshot (runner.py)
        # Past days leave memory at their close (hub/store/history.py): the closed days not
        # yet written, and the sink that writes them (the runner's build_app sets it).
        self.closed_days: list[DayFacts] = []
        # Today's services and case events, as the staff report reads them (report.staff).
        self.services: list[dict[str, Any]] = []
        self.case_events: list[dict[str, Any]] = []
        # Today's ended pauses (history_pauses rows: hub/report/pauses.py), likewise.
        self.pauses: list[dict[str, Any]] = []
        self.history_sink: Callable[[list[DayFacts]], None] | None = None
        # Closed cases archived in the history tables (History: `case`, `cases_of`; the
        # runner's build_app sets it): read to reopen one and for a resident's cases.
        self.case_archive: CaseArchive | None = None
        self.day_bounds: tuple[str, float, float] = ("", 0.0, 0.0)  # centre.day's [start, end)
        # The admission mode a supervisor switched to from the dashboard, journaled
        # (hub/app/admission.py `switch`: {mode, by, at}); None: centre.toml's `admission`.
        self.admission_switch: dict[str, Any] | None = None

    # ---- the wait predictor, told of each record after the record's messages went out ----
    @property
    def waits(self) -> WaitPredictor:
        """The wait predictor, told first of the record it has not heard of yet."""
        if self._waits_due is not None:
            self.settle_waits()
        return self._waits

    @waits.setter
    def waits(self, predictor: WaitPredictor) -> None:
        self._waits, self._waits_due = predictor, None

    def learn_later(self, ts: float, op: str | None) -> None:
        """Tell the predictor of the record just applied to the core (`update`), at the
        latest when anything reads `waits`, or the next record is applied, or the runner has
        sent this batch's messages (`settle_waits`). Learning reads the core's state after
        the record, which only the next record changes; it is a sixth of a call's work and
        no message of the call needs it (a take's does: its wait reads `waits`, so it is
        told at once), so a window's display goes out before it (issue 14)."""
        if self._waits_due is not None:
            self.settle_waits()
        self._waits_due = (ts, op)

    def settle_waits(self) -> None:
        due, self._waits_due = self._waits_due, None
        if due is None:
            return
        try:
            self._waits.update(self.centre, due[0], due[1])
        except Exception:  # a forecast's learning: never the reason a message or page fails
            log.exception("the wait predictor could not learn the record at %s (%s); its "
                          "waits may be off until the next start-up", due[0], due[1])
