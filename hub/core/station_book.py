"""The community stations' part of the centre's state (`CentreState.stations`): what each
station submitted (by its idempotency key) and the batches of paper originals handed over.
The operations on it are in stations.py; this module holds only the data, so that state.py
can hold it without importing the operations (which take the state)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Submission:
    key: str
    station: str
    case: str
    digest: str
    by: str
    at: float  # when the hub took it (the record's time)
    collected_at: float | None = None
    batch: str | None = None  # the hand-over batch that took its papers

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Batch:
    id: str  # "H0001"
    station: str
    cases: tuple[str, ...]
    sent_at: float
    sent_by: str
    received_at: float | None = None
    received_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cases"] = list(self.cases)
        return d


class Stations:
    """The stations' part of the centre's state (`CentreState.stations`)."""

    def __init__(self) -> None:
        self.submissions: dict[str, Submission] = {}  # by key, in the order taken
        self.batches: dict[str, Batch] = {}  # by id, in the order sent
        self.serial = 0  # the last station case's number
        self.batch_serial = 0
        self.by_case: dict[str, str] = {}  # case id -> key (derived)

    def pending(self, station: str) -> list[Submission]:
        """The station's submissions whose papers it still holds, oldest first."""
        return [s for s in self.submissions.values()
                if s.station == station and s.batch is None]

    def of_station(self, station: str) -> list[Submission]:
        return [s for s in self.submissions.values() if s.station == station]

    def to_dict(self) -> dict[str, Any]:
        return {"submissions": [s.to_dict() for s in self.submissions.values()],
                "batches": [b.to_dict() for b in self.batches.values()],
                "serial": self.serial, "batch_serial": self.batch_serial}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Stations:
        """From `to_dict` (None: a snapshot taken before stations: none)."""
        out = cls()
        if not d:
            return out
        for s in d["submissions"]:
            sub = Submission(**s)
            out.submissions[sub.key] = sub
            out.by_case[sub.case] = sub.key
        for b in d["batches"]:
            out.batches[b["id"]] = Batch(**{**b, "cases": tuple(b["cases"])})
        out.serial, out.batch_serial = int(d["serial"]), int(d["batch_serial"])
        return out
