"""The console's case desk over HTTP (hub/web/pickup.py), in process with the staff login:
the resident's number given at acceptance (only at the window that accepted the case,
sealed, answered masked, a bad number refused), the clerk's hand-over at the pick-up
window (only for the called pick-up ticket's cases), and the results uncollected for
[pickup] uncollected_days listed at the pick-up window only. Refusals change nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core import pickup
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import Registry
from onewindow.hub.notify.phones import PhoneVault
from onewindow.hub.store.accounts import Accounts
from onewindow.hub.store.files import FileStore
from onewindow.hub.web.app import create_app
from onewindow.hub.web.site import Site

from .test_staff_http import login

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TZ = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=TZ).timestamp()  # a Monday
PASSWORD = "s3cret-pass"
ITEM = "SOC-003"


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.now = T0
        core = Centre(load_catalog(None), CentreConfig(
            "t", (WindowSpec(1), WindowSpec(2), WindowSpec(5, "pickup")),
            pickup_item="GEN-099", pickup_uncollected_days=7))
        self.hub = HubApp(core, Registry([]), "b")
        self.site = Site(self.hub, None, lambda: self.now)
        self.site.port.phone_vault = PhoneVault(b"s" * 32, "t")  # type: ignore[attr-defined]
        self.site.accounts = Accounts(  # type: ignore[attr-defined]
            f"sqlite:///{tmp_path}/hub.db",
            PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        for user, window in (("clerk1", 1), ("clerk2", 2), ("clerk5", 5)):
            self.site.accounts.add(user, PASSWORD, "clerk", window=window,  # type: ignore
                                   now=T0)
        self.app = create_app(self.hub, FileStore(tmp_path / "files"), site=self.site,
                              clock=lambda: self.now)

    def act(self, cmd: c.Command) -> None:
        self.now += 10
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, self.site.act(cmd)).result(timeout=10)

    def client(self, user: str, window: int) -> TestClient:
        cl = TestClient(self.app)
        cl.get("/login")
        cl.headers["x-csrf-token"] = cl.cookies["ow_csrf"]
        assert login(cl, user, password=PASSWORD, window=window).status_code == 303
        return cl


@pytest.fixture
def env(tmp_path: Path):
    e = Env(tmp_path)
    for n in (1, 5):
        e.act(c.OpenWindow(n, f"clerk{n}"))
    yield e
    e.site.accounts.close()  # type: ignore[attr-defined]


def accepted(env: Env) -> str:
    env.act(c.TakeTicket(ITEM))
    tid = next(reversed(env.hub.centre.tickets.values())).id
    env.act(c.CallNext(1))
    env.act(c.Complete(1))
    return tid


def desk(cl: TestClient) -> dict[str, Any]:
    r = cl.get("/console/pickup/state")
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_the_number_is_given_at_the_accepting_window_only(env):
    case = accepted(env)
    clerk1, clerk2 = env.client("clerk1", 1), env.client("clerk2", 2)
    assert [(k["id"], k["phone"]) for k in desk(clerk1)["accepted"]] == [(case, False)]
    assert desk(clerk2)["accepted"] == []
    before = env.hub.centre.to_dict()
    r = clerk2.post("/console/pickup/phone", json={"case": case, "phone": "13812345678"})
    assert r.status_code == 409 and r.json()["code"] == "not_at_window"
    r = clerk1.post("/console/pickup/phone", json={"case": case, "phone": "0101234567"})
    assert r.status_code == 400 and "手机号码" in r.json()["msg"]
    r = clerk1.post("/console/pickup/phone", json={"case": case, "phone": "13812345678",
                                                   "lang": "fr"})
    assert r.status_code == 400 and r.json()["code"] == "bad_field"
    assert env.hub.centre.to_dict() == before
    r = clerk1.post("/console/pickup/phone", json={"case": case, "phone": "138 1234 5678",
                                                   "lang": "zh-TW"})
    assert r.status_code == 200 and r.json()["phone"] == "138****5678"
    contact = env.hub.centre.contacts[case]
    assert contact.phone is not None and contact.phone.startswith("p1.")
    assert "13812345678" not in contact.phone and contact.lang == "zh-TW"
    assert [(k["id"], k["phone"]) for k in desk(clerk1)["accepted"]] == [(case, True)]


def test_the_clerk_hands_over_the_called_pick_up_tickets_cases(env):
    case, other = accepted(env), accepted(env)
    for k in (case, other):
        env.act(c.CaseUpdate(k, "approved", by="li"))
    env.act(pickup.PickupTicket((case,), "GEN-099", "code"))
    clerk5 = env.client("clerk5", 5)
    r = clerk5.post("/console/pickup/handover", json={"case": case})
    assert r.status_code == 409 and r.json()["code"] == "not_at_window"  # not called yet
    env.act(c.CallNext(5))
    state = desk(clerk5)
    assert [k["id"] for k in state["handing"]] == [case]
    before = env.hub.centre.to_dict()
    r = clerk5.post("/console/pickup/handover", json={"case": other})
    assert r.status_code == 409 and env.hub.centre.to_dict() == before
    r = env.client("clerk1", 1).post("/console/pickup/handover", json={"case": case})
    assert r.status_code == 409  # window 1 calls no pick-up ticket
    r = clerk5.post("/console/pickup/handover", json={"case": case})
    assert r.status_code == 200 and r.json()["state"] == "closed", r.text
    k = env.hub.centre.cases[case]
    assert k.handed_by == "clerk5" and k.closed_at == env.now
    assert env.hub.centre.cases[other].state == "ready"


def test_uncollected_results_are_listed_at_the_pick_up_window(env):
    case = accepted(env)
    env.act(c.CaseUpdate(case, "approved", by="li"))
    assert desk(env.client("clerk5", 5))["uncollected"] == []  # ready today
    env.now += 8 * 86400
    clerk5, clerk1 = env.client("clerk5", 5), env.client("clerk1", 1)  # logged in anew
    [row] = desk(clerk5)["uncollected"]
    assert row["id"] == case and row["days"] == 8
    assert desk(clerk1)["uncollected"] == []  # not a pick-up window
