"""The city's part of a centre's state (`CentreState.city`) as data: the cases linked
across centres and the city's catalog as applied, offered or refused. Its own module so
that the state holds it without importing the behaviour (city.py), which reads the state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Link:
    key: str  # "{origin}/{case id at the origin}": the case's name across the city
    local: str  # the case's id at this centre
    origin: str
    approver: str  # the centre whose back office approves it
    pickup: str  # the centre where the resident collects the result
    version: int = 1
    sent: int = 0  # the last version the city engine acknowledged (this centre's writes)
    documents: tuple[str, ...] = ()  # sha256 of each document sent with the case
    # Documents are a set that only grows (`CityDocuments` at the origin, `CityDocsArrive`
    # elsewhere), apart from the versions: how many of them the city acknowledged.
    docs_sent: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["documents"] = list(self.documents)
        return d

    def centres(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.origin, self.approver, self.pickup)))


class CityBook:
    """The city's part of a centre's state (`CentreState.city`)."""

    def __init__(self) -> None:
        self.links: dict[str, Link] = {}  # by key, in the order made
        self.by_local: dict[str, str] = {}  # local case id -> key (derived)
        self.serial = 0  # the last local id given to an arrived case
        self.catalog_version = ""  # "": the centre's own catalog file
        self.catalog_data: dict[str, Any] | None = None  # the applied city catalog's body
        self.catalog_pending: tuple[str, dict[str, Any]] | None = None
        self.catalog_refused: tuple[str, str] | None = None  # (version, why)

    def to_dict(self) -> dict[str, Any]:
        return {"links": [k.to_dict() for k in self.links.values()], "serial": self.serial,
                "catalog_version": self.catalog_version, "catalog_data": self.catalog_data,
                "catalog_pending": (list(self.catalog_pending) if self.catalog_pending
                                    else None),
                "catalog_refused": (list(self.catalog_refused) if self.catalog_refused
                                    else None)}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> CityBook:
        out = cls()
        if not d:
            return out
        for raw in d["links"]:
            link = Link(**{**raw, "documents": tuple(raw["documents"])})
            out.links[link.key] = link
            out.by_local[link.local] = link.key
        out.serial = int(d["serial"])
        out.catalog_version = d["catalog_version"]
        out.catalog_data = d["catalog_data"]
        p, r = d["catalog_pending"], d["catalog_refused"]
        out.catalog_pending = (p[0], p[1]) if p else None
        out.catalog_refused = (r[0], r[1]) if r else None
        return out

    def link_of(self, case: str) -> Link | None:
        key = self.by_local.get(case)
        return None if key is None else self.links[key]

    def unsent(self) -> list[Link]:
        """Links whose latest version (or, at the origin, documents) this centre wrote and
        the city has not acknowledged."""
        return [k for k in self.links.values() if k.sent < k.version
                or k.docs_sent < len(k.documents)]

    def copy(self) -> CityBook:
        out = CityBook()
        vars_ = ("serial", "catalog_version", "catalog_data", "catalog_pending",
                 "catalog_refused")
        for name in vars_:
            setattr(out, name, getattr(self, name))
        out.links, out.by_local = dict(self.links), dict(self.by_local)
        return out
