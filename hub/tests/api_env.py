"""A hub's whole HTTP app with a real SQLite journal, for the other systems' API tests
(test_api_v1.py, test_api_schemathesis.py): the core decides in memory, the journal stores
each step before it counts as done (as the runner does), and API clients live in the same
database."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from onewindow.hub.app import HubApp, Step
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import booking as bk
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.notify.phones import PhoneVault
from onewindow.hub.store.api_clients import ApiClients
from onewindow.hub.store.files import FileStore
from onewindow.hub.store.journal import Journal
from onewindow.hub.web.app import create_app
from onewindow.hub.web.port import MemoryPort
from onewindow.hub.web.site import Site

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TZ = dt.timezone(dt.timedelta(hours=8))
MON = dt.datetime(2026, 11, 23, tzinfo=TZ)  # a Monday: open 09:00-17:00
SECRET = b"s" * 32
KEY = bk.derive_key(SECRET, "web")
VAULT = PhoneVault(SECRET, "web")
ALL = frozenset({"tickets:write", "tickets:read", "queue:call", "bookings:write"})


def at(h: int, m: int = 0, day: int = 0) -> float:
    return (MON + dt.timedelta(days=day, hours=h, minutes=m)).timestamp()


class JournalPort(MemoryPort):
    """Decided in memory, then journaled in SQLite before the answer (the runner's order)."""

    def __init__(self, hub: HubApp, clock: Any, journal: Journal) -> None:
        super().__init__(hub, clock)
        self.journal = journal  # type: ignore[misc]
        self.phone_vault = VAULT

    async def submit(self, cmd: c.Command) -> Step:
        step = await super().submit(cmd)
        self.journal.append(step.records)  # type: ignore[union-attr]
        return step


def make(tmp: Path, windows: tuple[int, ...] = (1, 2)) -> SimpleNamespace:
    clock = [at(10)]
    journal = Journal(f"sqlite:///{tmp / 'hub.db'}")
    centre = Centre(load_catalog(), CentreConfig("web", tuple(WindowSpec(n) for n in windows)))
    registry = Registry([DeviceSpec("kiosk-1", "kiosk"), DeviceSpec("kp-1", "keypad", 1)])
    hub = HubApp(centre, registry, "b1", "http://hub.example:8080/t/")
    hub.booking_key = KEY
    port = JournalPort(hub, lambda: clock[0], journal)
    site = Site(hub, port, clock=lambda: clock[0])
    app = create_app(hub, FileStore(tmp / "files"), port=port, site=site,
                     clock=lambda: clock[0])
    clients = ApiClients(journal.engine)
    return SimpleNamespace(clock=clock, journal=journal, hub=hub, port=port, site=site,
                           app=app, clients=clients, api=site.systems_api,  # type: ignore
                           client=TestClient(app))


def credential(env: SimpleNamespace, name: str, scopes: frozenset[str] = ALL,
               days: float = 30, burst: int = 1000, per_minute: float = 1000.0) -> str:
    now = env.clock[0]
    return str(env.clients.add(name, scopes, now + days * 86400, now, burst, per_minute))


def bearer(secret: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", **headers}
