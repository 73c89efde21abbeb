"""Remote takes (远程取号) through POST /remote/take, in-process with the real core: opening
hours and the closing margin, one per resident per day, bad numbers and fields answered in
the resident's language changing nothing, the rate limits per client address and per
number, and the clear number nowhere in the state (only sealed, and a keyed hash)."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from types import SimpleNamespace

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.notices import REMOTE, RemoteRules
from onewindow.hub.devices import Registry
from onewindow.hub.notify.phones import PhoneVault, parse_phone
from onewindow.hub.web import public, remote
from onewindow.hub.web.site import CSRFMiddleware, Site

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TZ = dt.timezone(dt.timedelta(hours=8))
MON = dt.datetime(2026, 11, 23, tzinfo=TZ)  # a Monday: open 09:00-17:00


def at(h: int, m: int = 0, day: int = 0) -> float:
    return (MON + dt.timedelta(days=day, hours=h, minutes=m)).timestamp()


NUMBER = "13812345678"
VAULT = PhoneVault(b"s" * 32, "web")


@pytest.fixture
def env():
    clock = [at(10)]
    centre = Centre(load_catalog(), CentreConfig("web", tuple(WindowSpec(n) for n in (1, 2))))
    hub = HubApp(centre, Registry([]), "b1", "http://hub.example:8080/t/")
    site = Site(hub, clock=lambda: clock[0])
    site.port.phone_vault = VAULT  # type: ignore[attr-defined]
    site.config = SimpleNamespace(remote=RemoteRules(enabled=True))  # type: ignore[attr-defined]
    app = Starlette(routes=[*public.routes(site), *remote.routes(site)],
                    middleware=[Middleware(CSRFMiddleware)])
    client = TestClient(app)
    client.get("/remote")
    client.headers["X-CSRF-Token"] = client.cookies["ow_csrf"]
    hub.operate(c.OpenWindow(1), clock[0])
    return client, site, clock


def take(client, phone=NUMBER, item="SOC-001", **kw):
    return client.post("/remote/take", json={"item": item, "phone": phone}, **kw)


def test_a_remote_take_issues_a_ticket_and_keeps_the_number_only_sealed(env):
    client, site, _ = env
    r = take(client, "138 1234 5678")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["phone"] == "138****5678" and got["ahead"] == 0 and got["url"].endswith(got["id"])
    centre = site.hub.centre
    t = centre.tickets[got["id"]]
    assert t.source == REMOTE and t.resident == "ph:" + VAULT.fingerprint(parse_phone(NUMBER))
    contact = centre.contacts[t.id]
    assert VAULT.open(type(VAULT.seal(parse_phone(NUMBER)))(contact.phone)).national == NUMBER
    everything = json.dumps(centre.to_dict()) + json.dumps(site.hub.snapshot())
    assert NUMBER not in everything and "5678" not in everything.replace(t.id, "")


@pytest.mark.parametrize("when,code", [
    (at(8, 59), "remote_closed"),          # before opening
    (at(16, 0), "remote_stopped"),         # 60 minutes before closing
    (at(16, 59), "remote_stopped"),
    (at(17, 0), "remote_closed"),          # closed
    (at(10, day=5), "remote_closed"),      # Saturday
])
def test_outside_hours_or_too_near_closing_is_refused_and_changes_nothing(env, when, code):
    client, site, clock = env
    clock[0] = when
    before = site.hub.centre.to_dict()
    r = take(client)
    assert r.status_code == 409 and r.json()["code"] == code
    assert site.hub.centre.to_dict() == before


def test_one_remote_ticket_per_resident_per_day_in_the_residents_language(env):
    client, site, clock = env
    assert take(client).status_code == 200
    before = site.hub.centre.to_dict()
    r = take(client, "+86 138-1234-5678", item="SOC-003", params={"lang": "zh-TW"})
    assert r.status_code == 409 and r.json() == {"code": "remote_limit",
                                                 "msg": "每人每天最多遠端取號1次"}
    assert site.hub.centre.to_dict() == before
    assert take(client, "13912345678", item="SOC-003").status_code == 200  # someone else
    clock[0] = at(10, day=1)  # Tuesday: a new day
    assert take(client, item="SOC-003").status_code == 200


@pytest.mark.parametrize("phone,lang,msg", [
    ("", "zh-CN", "请输入手机号码"),
    ("12345", "en", "Enter a mobile number (11 digits starting with 1): landlines cannot "
                    "receive SMS"),
    ("+86 abc", "en", "The mobile number is not valid"),
    ("021 6123 4567", "zh-TW", "請填寫手機號碼（11位，1開頭），市話無法接收簡訊"),
    ("+1 415 555 2671", "en", "Only mainland China mobile numbers are accepted"),
    ("1" * 60, "zh-CN", "手机号码格式不正确"),
])
def test_a_number_that_does_not_parse_is_a_clear_error_changing_nothing(env, phone, lang, msg):
    client, site, _ = env
    before = site.hub.centre.to_dict()
    r = take(client, phone, params={"lang": lang})
    assert r.status_code == 400 and r.json() == {"code": "bad_phone", "msg": msg}
    assert site.hub.centre.to_dict() == before


@pytest.mark.parametrize("body,status,code", [
    ({"item": "SOC-001"}, 400, "bad_field"),
    ({"item": 7, "phone": NUMBER}, 400, "bad_field"),
    ({"item": "NOPE-1", "phone": NUMBER}, 404, "unknown_item"),
])
def test_bad_fields_change_nothing(env, body, status, code):
    client, site, _ = env
    before = site.hub.centre.to_dict()
    r = client.post("/remote/take", json=body)
    assert r.status_code == status and r.json()["code"] == code
    assert site.hub.centre.to_dict() == before


def test_rate_limited_per_number_and_per_client_address(env):
    client, site, clock = env
    for _ in range(3):  # one number: 3 tries a minute, whatever they answer
        assert take(client, item="SOC-003").status_code in (200, 409)
    r = take(client, item="SOC-003")
    assert r.status_code == 429 and r.json()["code"] == "rate_limited"
    assert int(r.headers["Retry-After"]) >= 1
    clock[0] += 61
    numbers = [f"1391234{n:04d}" for n in range(12)]
    codes = [take(client, p).status_code for p in numbers]
    assert codes[:10] == [200] * 10 and codes[10:] == [429, 429]  # one address: 10 a minute
    assert sum(1 for t in site.hub.centre.tickets.values() if t.source == REMOTE) == 11


def test_disabled_is_refused_and_the_page_says_so(env):
    client, site, _ = env
    site.config = SimpleNamespace(remote=RemoteRules(enabled=False))
    before = site.hub.centre.to_dict()
    r = take(client)
    assert r.status_code == 403 and r.json()["code"] == "remote_disabled"
    assert site.hub.centre.to_dict() == before
    assert "本中心未开通远程取号" in client.get("/remote").text


def test_the_page_offers_the_items_in_each_language(env):
    client, _, _ = env
    assert "手机远程取号" in client.get("/remote?lang=zh-CN").text
    assert "手機遠端取號" in client.get("/remote?lang=zh-TW").text
    page = client.get("/remote?lang=en").text
    assert "Take a number from your phone" in page and 'value="SOC-001"' in page


def test_purge_removes_sealed_numbers_past_retention_and_the_journal_still_replays(tmp_path):
    from onewindow.hub.store.journal import Journal
    from onewindow.hub.store.retention import Retention, plan, purge

    def fresh() -> HubApp:
        return HubApp(Centre(load_catalog(), CentreConfig(
            "web", tuple(WindowSpec(n) for n in (1, 2)))), Registry([]), "b1")

    a = fresh()
    j = Journal(f"sqlite:///{tmp_path / 'j.db'}")
    old, new = at(10, day=-200), at(10)
    sealed = {}
    j.append(a.operate(c.OpenWindow(1), old).records)
    for when, number in ((old, NUMBER), (new, "13912345678")):
        phone = parse_phone(number)
        sealed[number] = VAULT.seal(phone).token
        cmd = c.RemoteTake("SOC-001", "ph:" + VAULT.fingerprint(phone), sealed[number])
        j.append(a.operate(cmd, when).records)
    p = plan(j, [], tmp_path / "files", Retention(), at(12))
    assert (p.phones, p.take_records) == (1, 1)
    purge(j, p, Retention(), at(12))
    raw = json.dumps([r.body for r in j.read()])
    assert sealed[NUMBER] not in raw and sealed["13912345678"] in raw
    [gone] = [r for r in j.read() if r.body["op"] == "remote_take" and r.ts == old]
    assert "phone" not in gone.body and "resident" not in gone.body
    replayed = fresh()
    replayed.replay(list(j.read()))
    assert replayed.centre.to_dict() == a.centre.to_dict()
    j.close()
