"""The other systems' API (/api/v1, hub/web/api.py) by example, in process with the real
core and a real SQLite journal: each endpoint's answer, each error (401 for no, unknown,
expired and revoked credentials, 403 for a missing scope, 429 per client and per address,
400/404/409 for bad input and refusals) with nothing changed, the journal naming the
client, replay of those records, the credentials' store (only a digest kept) and the
`onewindow api-client` command."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import Registry
from onewindow.hub.notify.channel import PhoneRef
from onewindow.hub.notify.phones import parse_phone
from onewindow.hub.store.api_clients import ApiClientError, ApiClients, end_of_day, parse_scopes
from onewindow.hub.store.schema import api_clients as table
from onewindow.hub.web.api import PREFIX
from onewindow.hub.web.ratelimit import Limiter, Rate

from .api_env import VAULT, at, bearer, credential, make

PHONE = "13812345678"


@pytest.fixture
def env(tmp_path: Path):
    e = make(tmp_path)
    e.secret = credential(e, "city")
    e.h = bearer(e.secret)
    yield e
    e.journal.close()


def records(env: SimpleNamespace) -> list[dict]:
    return [r.body for r in env.journal.read()]


def open_window(env: SimpleNamespace, n: int = 1) -> None:
    env.port.journal.append(env.hub.operate(c.OpenWindow(n), env.clock[0]).records)


def take(env: SimpleNamespace, item: str = "SOC-001", **body) -> dict:
    r = env.client.post(f"{PREFIX}/tickets", json={"item": item, **body}, headers=env.h)
    assert r.status_code == 201, r.text
    return r.json()


# ---- the description ----------------------------------------------------------------

def test_openapi_is_served_without_a_credential_and_names_every_route(env):
    r = env.client.get(f"{PREFIX}/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    served = {(route.path, m) for route in env.api.routes() for m in route.methods
              if m != "HEAD" and not route.path.endswith("openapi.json")}
    described = {(p, m.upper()) for p, ops in doc["paths"].items() for m in ops}
    assert described == served
    for ops in doc["paths"].values():
        for op in ops.values():
            assert op["security"] == [{"bearer": []}]
            assert {"401", "429"} <= set(op["responses"])
            if op["x-scope"]:
                assert "403" in op["responses"]
    # the examples are this centre's: an item it serves, one of its windows
    body = doc["paths"][f"{PREFIX}/tickets"]["post"]["requestBody"]
    assert body["content"]["application/json"]["example"]["item"] in env.hub.centre._servable


# ---- credentials ----------------------------------------------------------------------

def test_no_unknown_expired_or_revoked_credential_is_refused_401(env):
    url = f"{PREFIX}/items"
    r = env.client.get(url)
    assert (r.status_code, r.json()["code"]) == (401, "no_token")
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["msg"].startswith("缺少访问凭证") and "Bearer" in r.json()["msg_en"]
    r = env.client.get(url, headers={"Authorization": f"Basic {env.secret}"})
    assert (r.status_code, r.json()["code"]) == (401, "no_token")
    r = env.client.get(url, headers=bearer(env.secret + "x", **{"Accept-Language": "en"}))
    assert (r.status_code, r.json()["code"]) == (401, "unknown_token")
    assert r.json()["msg"] == "the credential is not valid"
    old = credential(env, "old", days=1)
    assert env.client.get(url, headers=bearer(old)).status_code == 200
    env.clock[0] += 86400
    r = env.client.get(url, headers=bearer(old, **{"Accept-Language": "zh-TW"}))
    assert (r.status_code, r.json()["code"]) == (401, "expired_token")
    assert "過期" in r.json()["msg"]
    gone = credential(env, "gone")
    env.clients.revoke("gone", env.clock[0])
    r = env.client.get(url, headers=bearer(gone))
    assert (r.status_code, r.json()["code"]) == (401, "revoked_token")


def test_a_missing_scope_is_refused_403_and_changes_nothing(env):
    reader = bearer(credential(env, "reader", frozenset({"tickets:read"})))
    before = len(records(env))
    r = env.client.post(f"{PREFIX}/tickets", json={"item": "SOC-001"}, headers=reader)
    assert (r.status_code, r.json()["code"]) == (403, "missing_scope")
    assert "tickets:write" in r.json()["msg"] and "tickets:write" in r.json()["msg_en"]
    for method, url in (("post", f"{PREFIX}/windows/1/call"), ("get", f"{PREFIX}/windows/1/queue"),
                        ("post", f"{PREFIX}/bookings"), ("get", f"{PREFIX}/slots?item=SOC-001"),
                        ("delete", f"{PREFIX}/bookings/B0001-AAAAAA")):
        assert getattr(env.client, method)(url, headers=reader).status_code == 403
    assert env.client.get(f"{PREFIX}/lines", headers=reader).status_code == 200
    assert len(records(env)) == before and not env.hub.centre.tickets


def test_each_client_has_its_own_rate_limit_and_bad_credentials_one_per_address(env):
    small = bearer(credential(env, "small", burst=2, per_minute=6))
    assert [env.client.get(f"{PREFIX}/lines", headers=small).status_code
            for _ in range(3)] == [200, 200, 429]
    r = env.client.get(f"{PREFIX}/lines", headers=small)
    assert r.json()["code"] == "rate_limited" and r.headers["retry-after"] == "10"
    assert env.client.get(f"{PREFIX}/lines", headers=env.h).status_code == 200  # another client
    env.clock[0] += 10
    assert env.client.get(f"{PREFIX}/lines", headers=small).status_code == 200
    env.api.failed = Limiter(Rate(3, 1.0))
    codes = [env.client.get(f"{PREFIX}/lines", headers=bearer("owk_guess")).status_code
             for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    assert env.client.get(f"{PREFIX}/lines", headers=env.h).status_code == 200  # still served


# ---- tickets --------------------------------------------------------------------------

def test_issue_a_ticket_journaled_with_the_client(env):
    open_window(env)
    first = take(env)
    t = take(env, "SOC-003", priority="priority", lang="en")
    assert t["number"] == "A002" and t["priority"] is True and t["state"] == "waiting"
    assert t["item"]["id"] == "SOC-003" and t["item"]["name"]["en"]
    assert t["ahead"] == 0  # a priority ticket goes before the normal one
    assert t["estimate"] is not None and t["estimate"]["lo"] <= t["estimate"]["minutes"] \
        <= t["estimate"]["hi"]
    assert t["status_url"].startswith(f"http://hub.example:8080/t/{t['id']}?k=")
    assert t["status_url"].endswith("&lang=en")
    assert env.client.get(t["status_url"].replace("http://hub.example:8080", "")
                          ).status_code == 200
    takes = [b for b in records(env) if b["op"] == "take"]
    assert [b["via"] for b in takes] == ["api:city", "api:city"]
    assert env.hub.centre.tickets[first["id"]].source == "api:city"


@pytest.mark.parametrize("body,status,code", [
    (b"not json", 400, "bad_json"),
    (b"[1, 2]", 400, "bad_json"),
    (b"{}", 400, "bad_field"),
    (b'{"item": 5}', 400, "bad_field"),
    (b'{"item": "SOC-001", "extra": 1}', 400, "bad_field"),
    (b'{"item": "SOC-001", "priority": "vip"}', 400, "bad_field"),
    (b'{"item": "SOC-001", "lang": "fr"}', 400, "bad_field"),
    (b'{"item": "NOPE-1"}', 404, "unknown_item"),
])
def test_bad_ticket_requests_are_refused_and_change_nothing(env, body, status, code):
    before = len(records(env))
    r = env.client.post(f"{PREFIX}/tickets", content=body,
                        headers={**env.h, "Content-Type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (status, code)
    assert r.json()["msg"] and r.json()["msg_en"]
    assert len(records(env)) == before and not env.hub.centre.tickets


def test_a_refusal_of_the_core_is_409_in_the_request_language(tmp_path):
    env = make(tmp_path, windows=())  # no window: nothing is served here
    h = bearer(credential(env, "city", days=1), **{"Accept-Language": "en"})
    r = env.client.post(f"{PREFIX}/tickets", json={"item": "SOC-001"}, headers=h)
    assert (r.status_code, r.json()["code"]) == (409, "not_served_here")
    assert r.json()["msg"] == r.json()["msg_en"] == "no window here serves SOC-001"
    assert not list(env.journal.read())
    env.journal.close()


def test_read_a_ticket_by_id_or_number(env):
    open_window(env)
    a, b = take(env), take(env)
    r = env.client.get(f"{PREFIX}/tickets/{b['id']}", headers=env.h)
    got = r.json()
    assert r.status_code == 200 and got["state"] == "waiting" and got["ahead"] == 1
    assert got["window"] is None and got["estimate"] is not None and got["recalls"] == 0
    assert set(got) == {"id", "number", "item", "priority", "state", "window", "ahead",
                        "estimate", "recalls"}  # nothing of the resident
    assert env.client.get(f"{PREFIX}/tickets/{b['number']}", headers=env.h).json() == got
    env.client.post(f"{PREFIX}/windows/1/call", headers=env.h)
    got = env.client.get(f"{PREFIX}/tickets/{a['number']}", headers=env.h).json()
    assert (got["state"], got["window"], got["ahead"], got["estimate"]) == ("called", 1, None,
                                                                            None)
    r = env.client.get(f"{PREFIX}/tickets/A999", headers=env.h)
    assert (r.status_code, r.json()["code"]) == (404, "unknown_ticket")


# ---- windows --------------------------------------------------------------------------

def test_call_and_the_window_queue(env):
    r = env.client.post(f"{PREFIX}/windows/1/call", headers=env.h)
    assert (r.status_code, r.json()["code"]) == (409, "window_closed")
    open_window(env)
    r = env.client.post(f"{PREFIX}/windows/1/call", headers=env.h)
    assert (r.status_code, r.json()["code"]) == (409, "queue_empty")
    tickets = [take(env, item) for item in ("SOC-001", "MED-001", "SOC-004")]
    take(env, "SOC-006", priority="priority")
    q = env.client.get(f"{PREFIX}/windows/1/queue?limit=2", headers=env.h).json()
    assert q["window"] == 1 and q["state"] == "idle" and q["serving"] is None
    assert q["waiting"] == 4 and len(q["next"]) == 2
    assert q["next"][0]["class"] == "priority"
    # The listing is the order the window calls in.
    order = [t["id"] for t in env.client.get(f"{PREFIX}/windows/1/queue",
                                             headers=env.h).json()["next"]]
    called = []
    for _ in range(4):
        r = env.client.post(f"{PREFIX}/windows/1/call", headers=env.h)
        assert r.status_code == 200
        called.append(r.json()["called"]["id"])
        q = env.client.get(f"{PREFIX}/windows/1/queue", headers=env.h).json()
        assert q["serving"]["id"] == called[-1] and q["state"] == "calling"
    assert called == order and set(order) >= {t["id"] for t in tickets}
    r = env.client.post(f"{PREFIX}/windows/1/call", headers=env.h)  # finishes the last one
    assert r.status_code == 200 and r.json() == {"window": 1, "called": None}
    calls = [b for b in records(env) if b["op"] == "call"]
    assert len(calls) == 5 and {b["via"] for b in calls} == {"api:city"}


@pytest.mark.parametrize("path,status,code", [
    ("windows/9/call", 404, "unknown_window"),
    ("windows/x/call", 400, "bad_window"),
    ("windows/0/call", 400, "bad_window"),
    ("windows/9/queue", 404, "unknown_window"),
    ("windows/1/queue?limit=0", 400, "bad_field"),
    ("windows/1/queue?limit=101", 400, "bad_field"),
    ("windows/1/queue?limit=x", 400, "bad_field"),
])
def test_bad_window_requests(env, path, status, code):
    method = env.client.post if path.endswith("call") else env.client.get
    r = method(f"{PREFIX}/{path}", headers=env.h)
    assert (r.status_code, r.json()["code"]) == (status, code)
    assert not records(env)


# ---- catalog and lines ----------------------------------------------------------------

def test_items_and_lines(env):
    items = env.client.get(f"{PREFIX}/items", headers=env.h).json()["items"]
    assert len(items) == len(env.hub.centre.catalog.items)
    soc = next(i for i in items if i["id"] == "SOC-001")
    assert soc["served"] and soc["bookable"] and soc["materials"][0]["required"] is True
    lines = env.client.get(f"{PREFIX}/lines", headers=env.h).json()["lines"]
    assert {x["line"] for x in lines} == set(env.hub.centre.catalog.lines)
    assert all(x["estimate"] is None for x in lines)  # no window open
    open_window(env)
    take(env)
    social = next(x for x in env.client.get(f"{PREFIX}/lines", headers=env.h).json()["lines"]
                  if x["line"] == "social")
    assert social["waiting"] == 1 and social["prefix"] == "A"
    assert social["estimate"]["minutes"] >= 0


# ---- bookings -------------------------------------------------------------------------

def test_book_and_cancel(env):
    s = env.client.get(f"{PREFIX}/slots?item=SOC-001&day=2026-11-24", headers=env.h).json()
    assert s["day"] == "20261124" and s["slots"][0]["free"] > 0
    slot = s["slots"][0]["slot"]
    r = env.client.post(f"{PREFIX}/bookings", json={"item": "SOC-001", "slot": slot,
                                                    "phone": PHONE, "lang": "zh-TW"},
                        headers=env.h)
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["day"] == "2026-11-24" and got["time"] == "09:00"
    assert got["qr_text"].startswith("OWB1/web/B0001/") and PHONE not in r.text
    again = env.client.post(f"{PREFIX}/bookings", json={"item": "SOC-001", "slot": slot,
                                                        "phone": PHONE}, headers=env.h)
    assert again.status_code == 409  # one booking per resident, item and day (the core's)
    r = env.client.delete(f"{PREFIX}/bookings/{got['code']}", headers=env.h)
    assert r.status_code == 200 and r.json() == {"cancelled": got["code"]}
    r = env.client.delete(f"{PREFIX}/bookings/{got['code']}", headers=env.h)
    assert (r.status_code, r.json()["code"]) == (409, "booking_cancelled")
    r = env.client.delete(f"{PREFIX}/bookings/B0001-AAAAAA", headers=env.h)
    assert (r.status_code, r.json()["code"]) == (404, "bad_code")
    mine = [b for b in records(env) if b["op"] in ("book", "cancel_booking")]
    assert [b["via"] for b in mine] == ["api:city", "api:city"]
    assert PHONE not in str(records(env))  # only its keyed hash
    assert mine[0]["resident"].startswith("ph:")
    # the number sealed for the booking's reminders, in the resident's language
    assert mine[0]["phone"].startswith("p1.") and mine[0]["lang"] == "zh-TW"
    assert VAULT.open(PhoneRef(mine[0]["phone"])) == parse_phone(PHONE)


@pytest.mark.parametrize("body,status,code", [
    ({"item": "SOC-001", "slot": "web/social/20261124/0900"}, 400, "bad_field"),
    ({"item": "SOC-001", "slot": "web/social/20261124/0900", "phone": "123"}, 400,
     "bad_phone"),
    ({"item": "SOC-001", "slot": "web/social/20261124/0900", "phone": PHONE, "card": "x"},
     400, "bad_field"),
    ({"item": "NOPE", "slot": "web/social/20261124/0900", "phone": PHONE}, 404,
     "unknown_item"),
    ({"item": "SOC-001", "slot": "web/social/20261124/0900", "phone": PHONE, "lang": "fr"},
     400, "bad_field"),
    ({"item": "SOC-001", "slot": "web/social/20261122/0900", "phone": PHONE}, 409,
     "past_day"),
    ({"item": "SOC-001", "slot": "web/social/0900", "phone": PHONE}, 400,
     "bad_slot"),
])
def test_bad_bookings_are_refused(env, body, status, code):
    r = env.client.post(f"{PREFIX}/bookings", json=body, headers=env.h)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert not records(env) and not env.hub.centre.bookings


def test_slots_errors(env):
    for query, status, code in (("", 400, "bad_field"), ("?item=NOPE", 404, "unknown_item"),
                                ("?item=SOC-001&day=2026", 400, "bad_day"),
                                ("?item=SOC-001&day=2026-02-30", 400, "bad_day"),
                                ("?item=SOC-001&day=20261122", 409, "not_a_booking_day")):
        r = env.client.get(f"{PREFIX}/slots{query}", headers=env.h)
        assert (r.status_code, r.json()["code"]) == (status, code)


# ---- the journal ----------------------------------------------------------------------

def test_the_clients_records_replay_to_the_same_state(env):
    open_window(env)
    for item in ("SOC-001", "MED-001", "SOC-004"):
        take(env, item)
    env.client.post(f"{PREFIX}/windows/1/call", headers=env.h)
    slot = env.client.get(f"{PREFIX}/slots?item=SOC-001&day=20261124",
                          headers=env.h).json()["slots"][0]["slot"]
    env.client.post(f"{PREFIX}/bookings", json={"item": "SOC-001", "slot": slot,
                                                "phone": PHONE}, headers=env.h)
    again = HubApp(Centre(load_catalog(), CentreConfig("web", (WindowSpec(1), WindowSpec(2)))),
                   Registry([]), "b2")
    again.replay(env.journal.read())
    assert again.centre.to_dict() == env.hub.centre.to_dict()


# ---- the store and the command --------------------------------------------------------

def test_the_store_keeps_only_a_digest_and_refuses_bad_credentials(env):
    with env.journal.engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.name == "city")).one()
    assert row.token == hashlib.sha256(env.secret.encode()).hexdigest()
    assert env.secret not in str(tuple(row))
    now = env.clock[0]
    with pytest.raises(ApiClientError, match="exists"):
        env.clients.add("city", frozenset({"tickets:read"}), now + 60, now)
    with pytest.raises(ApiClientError, match="scopes"):
        parse_scopes("tickets:write,admin")
    with pytest.raises(ApiClientError, match="name"):
        env.clients.add("a b", frozenset({"tickets:read"}), now + 60, now)
    with pytest.raises(ApiClientError, match="over"):
        end_of_day("2026-11-22", 480, now)
    with pytest.raises(ApiClientError, match="days ahead"):
        end_of_day("2036-01-01", 480, now)
    with pytest.raises(ApiClientError, match="not a date"):
        end_of_day("30/06/2027", 480, now)
    assert end_of_day("2026-11-23", 480, now) == at(24)  # through that local day
    new = env.clients.rotate("city", now)
    assert env.clients.authenticate(env.secret, now).reason == "unknown"
    assert env.clients.authenticate(new, now).client.name == "city"


def test_the_api_client_command(tmp_path):
    toml = tmp_path / "centre.toml"
    toml.write_text(f'[centre]\nid = "web"\n[store]\nurl = "sqlite:///{tmp_path}/hub.db"\n'
                    '[[windows]]\nnumber = 1\n')
    from onewindow.hub.cli import app

    run = CliRunner().invoke
    r = run(app, ["api-client", "add", "-c", str(toml), "--name", "city-platform",
                  "--scopes", "tickets:write,tickets:read", "--expires", "2099-01-01"])
    assert r.exit_code == 1 and "days ahead" in r.output
    r = run(app, ["api-client", "add", "-c", str(toml), "--name", "city-platform",
                  "--scopes", "tickets:write,tickets:read,queue:call,bookings:write",
                  "--expires", "2027-06-30"])
    assert r.exit_code == 0, r.output
    secret = r.stdout.strip().splitlines()[-1]
    assert secret.startswith("owk_") and len(secret) == 47
    clients = ApiClients(f"sqlite:///{tmp_path}/hub.db")
    import time
    assert clients.authenticate(secret, time.time()).client.scopes == frozenset(
        {"tickets:write", "tickets:read", "queue:call", "bookings:write"})
    r = run(app, ["api-client", "list", "-c", str(toml)])
    assert "city-platform" in r.stdout and "2027-06-30" in r.stdout and "active" in r.stdout
    assert secret not in r.stdout
    r = run(app, ["api-client", "add", "-c", str(toml), "--name", "x1", "--scopes", "root",
                  "--expires", "2027-06-30"])
    assert r.exit_code == 1 and "scopes" in r.output and "Traceback" not in r.output
    r = run(app, ["api-client", "revoke", "-c", str(toml), "--name", "city-platform"])
    assert r.exit_code == 0
    assert clients.authenticate(secret, time.time()).reason == "revoked"
    r = run(app, ["api-client", "revoke", "-c", str(toml), "--name", "city-platform"])
    assert r.exit_code == 1 and "revoked already" in r.output
    r = run(app, ["api-client", "rotate", "-c", str(toml), "--name", "nobody"])
    assert r.exit_code == 1
    clients.close()


def test_unknown_query_parameters_are_refused(env):
    r = env.client.get(f"{PREFIX}/windows/1/queue?limit=1&x=1", headers=env.h)
    assert (r.status_code, r.json()["code"]) == (400, "bad_field") and "x" in r.json()["msg_en"]
    assert env.client.get(f"{PREFIX}/lines?lang=en", headers=env.h).status_code == 400


def test_a_database_outage_is_503_and_refused_requests_count_against_the_limit(env,
                                                                               monkeypatch):
    from sqlalchemy.exc import OperationalError

    def down(*args, **kwargs):
        raise OperationalError("select", {}, Exception("connection refused"))

    reader = bearer(credential(env, "reader", frozenset({"tickets:read"}), burst=2,
                               per_minute=1))
    for status in (403, 403, 429):  # a scope refused still takes from the bucket
        r = env.client.post(f"{PREFIX}/tickets", json={"item": "SOC-001"}, headers=reader)
        assert r.status_code == status
    monkeypatch.setattr(env.api.clients(), "authenticate", down)
    r = env.client.get(f"{PREFIX}/lines", headers={**env.h, "Accept-Language": "en"})
    assert (r.status_code, r.json()["code"]) == (503, "storage_unavailable")
    assert r.headers["retry-after"] == "5" and r.json()["msg_en"]


def test_an_idempotency_key_makes_a_repeated_take_answer_the_same_ticket(env):
    open_window(env)
    key = {**env.h, "Idempotency-Key": "order-7731"}
    first = env.client.post(f"{PREFIX}/tickets", json={"item": "SOC-001"}, headers=key)
    assert first.status_code == 201
    again = env.client.post(f"{PREFIX}/tickets", json={"item": "SOC-001"}, headers=key)
    assert again.status_code == 200 and again.json() == first.json()
    assert sum(1 for b in records(env) if b["op"] == "take") == 1
    r = env.client.post(f"{PREFIX}/tickets", json={"item": "MED-001"}, headers=key)
    assert (r.status_code, r.json()["code"]) == (409, "key_reused")
    # another client's same key is its own; no key: a new ticket each time
    other = bearer(credential(env, "other"), **{"Idempotency-Key": "order-7731"})
    assert env.client.post(f"{PREFIX}/tickets", json={"item": "SOC-001"},
                           headers=other).status_code == 201
    assert take(env)["number"] == "A003"
    # called since: the repeat says where it is now
    env.client.post(f"{PREFIX}/windows/1/call", headers=env.h)
    again = env.client.post(f"{PREFIX}/tickets", json={"item": "SOC-001"}, headers=key)
    assert again.status_code == 200
    assert (again.json()["state"], again.json()["ahead"]) == ("called", None)
    # the next day the key is free again
    env.clock[0] += 86400
    r = env.client.post(f"{PREFIX}/tickets", json={"item": "SOC-001"}, headers=key)
    assert r.status_code == 201 and r.json()["id"] != first.json()["id"]
    r = env.client.post(f"{PREFIX}/tickets", json={"item": "SOC-001"},
                        headers={**env.h, "Idempotency-Key": "x" * 65})
    assert (r.status_code, r.json()["code"]) == (400, "bad_field")
