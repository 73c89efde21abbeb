"""The clerk console's city panel (issue 20, 全市通办) from the outside: the hub's batch path
(hub/runner.py, devices' events as they come over MQTT, a real SQLite journal), its web app
in the same loop (the console's live channel, GET /console/state and /console over HTTP),
and the city asked as hub/city/features.py asks it: an index that answers, one that is held
back, one that never answers, and the real thing (a NATS server, the router's index and its
`cityq` answerer, the centre's CityFeatures).

The panel lists the open cases elsewhere in the city of the resident at the window (the
current ticket's card, or a card tapped at the window's node), never the token; says
`asking` until the city answers and `unreachable` when it does not within CASES_WAIT_S,
while the hub goes on serving; and is not there at all without [city]."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import httpx
import pytest
from argon2 import PasswordHasher

from onewindow.hub import config as hub_config
from onewindow.hub.city import router
from onewindow.hub.city import subjects as sj
from onewindow.hub.city.features import CASES_WAIT_S, CityFeatures, CitySettings
from onewindow.hub.runner import HubRunner, build_app
from onewindow.hub.store.accounts import Accounts
from onewindow.hub.store.files import FileStore
from onewindow.hub.store.journal import Journal
from onewindow.hub.web.app import create_app
from onewindow.hub.web.console_city import TAP_KEEP_S
from onewindow.hub.web.site import Site
from onewindow.protocol import ow_protocol as proto
from onewindow.tools.testkit.nats_cluster import NatsCluster, centre_password
from onewindow.tools.testkit.testbed import write_config

CENTRE = "tap"
NOW = 1_795_000_000.0
PASSWORD = "password-1"
CARD = "c0ffee0c0ffee0c0ffee0c0ffee0c0ff"  # the resident's card token, the same city-wide
OTHER = "5eed5eed5eed5eed5eed5eed5eed5eed"
PROMISED = "SOC-003"  # 城乡居民养老金申领: a promised item (a case once completed)
ELSEWHERE = "c05/20261102-A001"


def status(token: str, key: str, state: str = "open", centre: str = "c05",
           pickup: str = "c07") -> dict[str, Any]:
    """A case's entry as the router's index holds it (features._statuses)."""
    return {"token": token, "centre": centre, "case": key.split("/")[1], "key": key,
            "item": PROMISED, "state": state, "due_day": "2026-11-23", "approver": centre,
            "pickup": pickup, "version": 1, "at": NOW}


class Index:
    """The city as hub/city/features.py's `city_cases(token)` answers: the router's rows by
    token (None: no answer); `held` keeps each answer back until set."""

    def __init__(self, rows: dict[str, list[dict[str, Any]]] | None) -> None:
        self.me, self.rows = CENTRE, rows
        self.asked: list[str] = []
        self.held = asyncio.Event()
        self.held.set()

    def centre_name(self, centre: str) -> dict[str, str] | None:
        return None  # no centre heard from: the rows name them by id

    async def city_cases(self, token: str) -> list[dict[str, Any]] | None:
        self.asked.append(token)
        await self.held.wait()
        return None if self.rows is None else self.rows.get(token, [])


def _message(dev: str, seq: int, typ: str, **fields: Any) -> aiomqtt.Message:
    payload = proto.encode("evt", proto.event(dev, seq, typ, **fields))
    return aiomqtt.Message(proto.device_topic(CENTRE, dev, "evt"), payload, qos=1,
                           retain=False, mid=1, properties=None)


class Hub:
    """The hub in process: devices' events through the runner's batch path, the web app on
    the same loop (as `serve` runs them), no broker (answers are kept as unsent)."""

    def __init__(self, tmp_path: Any) -> None:
        devices = [{"id": "kiosk-1", "role": "kiosk"},
                   {"id": "node-1", "role": "node", "window": 1},
                   {"id": "node-2", "role": "node", "window": 2}]
        cfg = hub_config.load(write_config(tmp_path / "centre.toml", CENTRE, None,
                                           tmp_path / "hub.db", windows=2, devices=devices))
        self.now = NOW
        self.journal = Journal(f"sqlite:///{tmp_path / 'hub.db'}")
        self.runner = HubRunner(build_app(cfg, self.journal), self.journal,
                                None, clock=lambda: self.now)  # type: ignore[arg-type]
        self.site = Site(self.runner.app, self.runner, lambda: self.now)
        self.accounts = Accounts(f"sqlite:///{tmp_path / 'accounts.db'}",
                                 PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        self.accounts.add("clerk1", PASSWORD, "clerk", window=1, now=NOW)
        self.site.accounts = self.accounts  # type: ignore[attr-defined]  # the staff pages'
        self.app = create_app(self.runner.app, FileStore(tmp_path / "files"), site=self.site,
                              clock=lambda: self.now, port=self.runner)
        self.seq: dict[str, int] = {}

    def in_city(self, city: Any) -> None:
        """What `serve` does with [city]: the pages and the devices' taps ask `city`."""
        self.site.city = city  # type: ignore[attr-defined]
        self.runner.card_cases = city.city_cases

    async def event(self, dev: str, typ: str, **fields: Any) -> dict[str, Any]:
        """A device's event, handled and committed: the hub's answer to it."""
        self.now += 5
        seq = self.seq[dev] = self.seq.get(dev, 0) + 1
        await self.runner._handle_batch([_message(dev, seq, typ, **fields)])
        for task in list(self.runner._tap_tasks):  # a card's answer waits for the city
            await task
        for p in reversed(self.runner._unsent):
            body = json.loads(p.payload)
            if p.topic.split("/")[-2] == dev and body.get("seq") == seq:
                return body  # type: ignore[no-any-return]
        raise AssertionError(f"{dev} {typ}: no answer")

    async def ticket(self, resident: str | None, item: str = "SOC-001") -> str:
        fields = {"item": item} if resident is None else {"item": item, "resident": resident}
        return str((await self.event("kiosk-1", "take", **fields))["ticket"])

    def panel(self, n: int) -> Any:
        return self.site.live.snapshot("staff-window", str(n)).get("city", "absent")

    async def clerk(self) -> httpx.AsyncClient:
        cl = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                               base_url="http://testserver")
        await cl.get("/login")
        csrf = cl.cookies["ow_csrf"]
        cl.headers["x-csrf-token"] = csrf
        r = await cl.post("/login", data={"username": "clerk1", "password": PASSWORD,
                                          "csrf": csrf, "next": ""}, follow_redirects=False)
        assert r.status_code == 303, r.text
        return cl

    def close(self) -> None:
        self.accounts.close()
        self.journal.close()


@pytest.fixture
async def hub(tmp_path):
    h = Hub(tmp_path)
    yield h
    h.close()


def desk_strings(page: str) -> dict[str, Any]:
    """The console's desk strings (console_desk.js reads them), in the page's language."""
    found = re.search(r'<script id="ow-desk-call-strings" type="application/json">(.*?)'
                      r'</script>', page, re.S)
    assert found is not None
    return json.loads(found.group(1))  # type: ignore[no-any-return]


async def frame_with(feed: AsyncIterator[bytes], *texts: bytes, within: float = 5.0) -> bytes:
    """The next frame of a live feed holding every one of `texts` (whole or a delta)."""
    async with asyncio.timeout(within):
        while True:
            frame = await anext(feed)
            if all(t in frame for t in texts):
                return frame


async def test_the_console_lists_the_residents_open_cases_elsewhere_in_the_city(hub):
    await hub.event("node-1", "open", clerk="clerk1")
    await hub.event("node-2", "open", clerk="clerk2")
    # A case of the card held here: the console lists it with the earlier visits already.
    here = hub.runner.app.centre.by_number[await hub.ticket(CARD, PROMISED)].id
    await hub.event("node-1", "call")
    await hub.event("node-1", "complete")
    assert hub.runner.app.centre.cases[here].state == "open"
    index = Index({CARD: [status(CARD, f"{CENTRE}/{here}", centre=CENTRE, pickup=CENTRE),
                          status(CARD, ELSEWHERE)],
                   OTHER: [status(OTHER, "c09/20261101-B004", "ready", "c09", CENTRE)]})
    index.held.clear()
    hub.in_city(index)
    await hub.ticket(CARD)
    feed = hub.site.live.stream("staff-window", "1")
    assert await anext(feed) == b"retry: 1000\n\n"
    await hub.event("node-1", "call")
    # Asked in the background: the view goes out at once, saying so.
    await frame_with(feed, b'"asking"')
    pos = hub.runner.app.pos
    index.held.set()
    frame = await frame_with(feed, ELSEWHERE.encode())
    panel = hub.panel(1)
    assert panel["state"] == "ok" and panel["source"] == "ticket"
    [row] = panel["cases"]  # not the case held here
    assert row["key"] == ELSEWHERE and row["item"]["zh"] == "城乡居民养老金申领"
    assert (row["state_zh"], row["state_zh_tw"], row["state_en"]) == (
        "后台审批中", "後台審批中", "At the back office")
    assert (row["due_day"], row["approver"], row["pickup"]) == ("2026-11-23", "c05", "c07")
    assert "token" not in row and CARD.encode() not in frame
    assert hub.runner.app.pos == pos  # the answer is no record: nothing journaled
    # Kept per token: the views built since asked nothing more.
    for _ in range(3):
        hub.panel(1)
    assert index.asked == [CARD]

    # Over HTTP: the console's state has the rows, never the token; the page has the panel.
    cl = await hub.clerk()
    r = await cl.get("/console/state")
    assert r.json()["city"]["cases"][0]["key"] == ELSEWHERE and CARD not in r.text
    for lang, heading, away in (("zh_CN", "本市其他中心办理中的事项", "全市系统无法连接"),
                                ("zh_TW", "本市其他中心辦理中的事項", "全市系統無法連接"),
                                ("en", "Open cases at other centres", "City not reachable")):
        page = (await cl.get(f"/console?lang={lang}")).text
        assert 'id="city-box"' in page and heading in page
        assert desk_strings(page)["city_unreachable"].startswith(away)
    await cl.aclose()

    # A card tapped at window 2's node before any ticket of it is called: its cases there.
    feed2 = hub.site.live.stream("staff-window", "2")
    await anext(feed2)
    answer = await hub.event("node-2", "card", resident=OTHER)
    assert answer["city"][0]["key"] == "c09/20261101-B004"  # the node's own answer, as before
    await frame_with(feed2, b"c09/20261101-B004")
    panel = hub.panel(2)
    assert panel["source"] == "card" and panel["cases"][0]["state_en"] == "Ready for pick-up"
    assert panel["cases"][0]["pickup"] == CENTRE and index.asked[-1] == OTHER
    assert hub.panel(1)["cases"][0]["key"] == ELSEWHERE  # window 1 keeps its own
    # The window calls its next ticket (a resident without a card): the tap is forgotten.
    await hub.ticket(None)
    await hub.event("node-2", "call")
    assert hub.panel(2) == {"state": "no_card", "source": None, "cases": []}
    # A tap is shown a few minutes at most.
    await hub.event("node-2", "card", resident=OTHER)
    assert hub.panel(2)["source"] == "card"
    hub.now += TAP_KEEP_S
    assert hub.panel(2)["state"] == "no_card"
    await feed.aclose()
    await feed2.aclose()


async def test_a_city_that_does_not_answer_is_said_so_and_the_hub_keeps_serving(hub):
    index = Index({CARD: [status(CARD, ELSEWHERE)]})
    index.held.clear()  # never answers
    hub.in_city(index)
    await hub.event("node-1", "open", clerk="clerk1")
    await hub.ticket(CARD)
    feed = hub.site.live.stream("staff-window", "1")
    await anext(feed)
    asked = time.monotonic()
    await hub.event("node-1", "call")
    await frame_with(feed, b'"asking"')
    # Meanwhile the hub serves as ever: a ticket is taken and answered, the view follows.
    took = time.monotonic()
    number = await hub.ticket(None)
    assert time.monotonic() - took < 1.0
    assert hub.site.live.snapshot("staff-window", "1")["queue"]["waiting"] == 1
    await frame_with(feed, b'"unreachable"', within=CASES_WAIT_S + 3.0)
    waited = time.monotonic() - asked
    assert CASES_WAIT_S - 0.2 <= waited <= CASES_WAIT_S + 3.0, waited
    assert hub.panel(1) == {"state": "unreachable", "source": "ticket", "cases": []}
    assert number and index.asked == [CARD]
    # A centre cut off from the city is answered at once (features.city_cases: None).
    index.rows = None
    index.held.set()
    await hub.event("node-2", "open", clerk="clerk2")
    await hub.event("node-2", "card", resident=OTHER)
    feed2 = hub.site.live.stream("staff-window", "2")
    await frame_with(feed2, b'"unreachable"', within=1.0)
    await feed.aclose()
    await feed2.aclose()


async def test_without_a_city_there_is_no_panel(hub):
    await hub.event("node-1", "open", clerk="clerk1")
    await hub.ticket(CARD)
    await hub.event("node-1", "call")
    assert hub.panel(1) == "absent"
    cl = await hub.clerk()
    r = await cl.get("/console/state")
    assert r.status_code == 200 and "city" not in r.json() and CARD not in r.text
    assert 'id="city-box"' not in (await cl.get("/console")).text
    await cl.aclose()


async def test_through_a_real_city_index_and_a_router_gone_silent(hub, tmp_path):
    """The real query path: a NATS server with the centres' production permissions, the
    router's index (a KV bucket) and its `cityq` answerer, the centre's CityFeatures. The
    centre that approves the case names itself in its waits (as every hub sends them), and
    the panel names it so; one that speaks for another centre is not believed."""
    with NatsCluster(tmp_path / "nats", centres=[CENTRE, "c05"], size=2) as cluster:
        admin = await cluster.connect()
        features = None
        try:
            kv = await router.index_bucket(admin.jetstream(), replicas=1)
            await router.merge(kv, status(CARD, ELSEWHERE))
            answering = await router.answer_queries(admin, kv)
            settings = CitySettings.from_table({
                "servers": cluster.urls, "user": sj.centre_user(CENTRE),
                "password": centre_password(CENTRE)})
            assert settings is not None
            features = CityFeatures(settings, hub.runner, FileStore(tmp_path / "files"),
                                    clock=lambda: hub.now)
            features.start()
            for _ in range(400):  # connected within 20 s
                if features.connected:
                    break
                await asyncio.sleep(0.05)
            assert features.connected
            # c05's hub sends its waits on its own subject (all it may publish there); the
            # body of one also claims to be c07's
            c05 = await cluster.connect_centre("c05")
            west = {"zh": "西区中心", "zh_tw": "西區中心", "en": "West Centre"}
            for centre, name in (("c07", {"zh": "冒名中心", "en": "Impostor"}), ("c05", west)):
                await c05.publish("citywaits.c05", json.dumps(
                    {"centre": centre, "at": NOW, "name": name, "url": "", "lines": {}}
                ).encode())
            await c05.flush()
            for _ in range(200):  # heard within 10 s
                if features.centre_name("c05") is not None:
                    break
                await asyncio.sleep(0.05)
            await c05.close()
            assert features.centre_name("c05") == west and features.centre_name("c07") is None
            hub.in_city(features)
            await hub.event("node-1", "open", clerk="clerk1")
            await hub.ticket(CARD)
            feed = hub.site.live.stream("staff-window", "1")
            await anext(feed)
            await hub.event("node-1", "call")
            frame = await frame_with(feed, ELSEWHERE.encode())
            assert CARD.encode() not in frame
            [row] = hub.panel(1)["cases"]
            assert row["approver"] == "c05" and row["approver_name"] == west
            assert row["pickup"] == "c07" and row["pickup_name"]["en"] == "c07"  # unheard

            # The router stops answering (a subscriber that never does stands in its place):
            # once the answer is old, the next view asks again and says the city is away.
            await answering.unsubscribe()
            await admin.subscribe("cityq.*", cb=_never_answer)
            await admin.flush()
            hub.now += 60
            asked = time.monotonic()
            await hub.ticket(None)  # a change: the view is built again, the city asked
            await frame_with(feed, b'"unreachable"', within=CASES_WAIT_S + 3.0)
            assert time.monotonic() - asked >= 1.5  # the request's own 2 s timeout
            await feed.aclose()
        finally:
            if features is not None:
                await features.close()
            await admin.close()


async def _never_answer(msg: Any) -> None:
    return None



class _Msg:
    def __init__(self, subject: str, data: bytes) -> None:
        self.subject, self.data = subject, data


async def test_centre_names_heard_are_bounded_and_a_bad_waits_message_changes_nothing(
        hub, tmp_path, monkeypatch):
    """What another centre's hub may send on its waits subject, however odd: only its own
    name is kept, trimmed; anything that is not a waits message of that centre is dropped
    and changes nothing (the link's callback never raises)."""
    settings = CitySettings.from_table({"servers": ["nats://127.0.0.1:1"]})
    assert settings is not None
    features = CityFeatures(settings, hub.runner, FileStore(tmp_path / "files"),
                            clock=lambda: hub.now)

    def waits(centre: Any, name: Any) -> bytes:
        return json.dumps({"centre": centre, "at": NOW, "name": name, "url": "",
                           "lines": {}}).encode()

    for subject, data in (
            ("citywaits.c05", b"[" * 100_000 + b"]" * 100_000),  # past the parser's depth
            ("citywaits.c05", b"\xff\xfe not json"),
            ("citywaits.c05", b"[1, 2]"),
            ("citywaits.c05", waits("c07", {"zh": "冒名"})),  # speaks for another centre
            ("citywaits.c05", waits(5, {"zh": "五"})),
            ("citywaits.c.05", waits("c.05", {"zh": "点"})),  # not a centre id
            ("citywaits.c05", waits("c05", "西区中心")),  # a name that is not per language
            ("citywaits.c05", waits("c05", {"fr": "Centre Ouest", "zh": ""}))):  # none kept
        await features._on_waits(_Msg(subject, data))
    assert features.names == {} and features.centre_name("c05") is None
    await features._on_waits(_Msg("citywaits.c05", waits(
        "c05", {"zh": "西" * 10_000, "en": "West Centre", "fr": "Centre Ouest"})))
    assert features.centre_name("c05") == {"zh": "西" * 80, "en": "West Centre"}
    # this centre names itself from its own catalog
    assert features.centre_name(CENTRE)["zh"] == hub.runner.app.centre.catalog.name.zh
    # a city of more centres than kept: the first ones keep their names, renamed as heard
    monkeypatch.setattr("onewindow.hub.city.features.MAX_NAMED", 3)
    for n in range(10):
        await features._on_waits(_Msg(f"citywaits.c{n:02d}", waits(f"c{n:02d}", {"zh": str(n)})))
    await features._on_waits(_Msg("citywaits.c05", waits("c05", {"zh": "西区中心"})))
    assert sorted(features.names) == ["c00", "c01", "c05"]
    assert features.centre_name("c05") == {"zh": "西区中心"}
