"""Pick-up of a ready case (统一窗口出件) from the outside, in process with the real core and
a real SQLite journal: the kiosk's POST /kiosk/pickup by the case code (a pick-up ticket
printed on the kiosk, for the pick-up window), a returned case's correction slip printed
instead, the phone page's view of the case (the code only to the ticket's holder); the
card path as the devices speak it (a kiosk's `pickup` event with the card's resident token,
the window node's `card` signing the hand-over off); and the refusals: forged or mistyped
codes, another resident's card, a case not ready, a second ticket, each with a clear
message and the state and the journal unchanged."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware

from onewindow.hub.app import HubApp, Step
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import booking as bk
from onewindow.hub.core import commands as c
from onewindow.hub.core import pickup
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.signing import ticket_token
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.store.journal import Journal
from onewindow.hub.web import pickup as web_pickup
from onewindow.hub.web import public
from onewindow.hub.web.port import MemoryPort
from onewindow.hub.web.site import CSRFMiddleware, Site
from onewindow.protocol import ow_protocol as proto

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TZ = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=TZ).timestamp()  # a Monday
KEY = bk.derive_key(b"s" * 32, "pk")
CARD = "a" * 32  # the applicant's card token (node/card.py resident_token)
OTHER = "b" * 32
ITEM = "SOC-003"  # 城乡居民养老金申领: promised, four materials


class JournalPort(MemoryPort):
    """Decided in memory, then journaled in SQLite before anything is published (kept
    here), as the hub process's runner does."""

    def __init__(self, hub: HubApp, clock: Any, journal: Journal) -> None:
        super().__init__(hub, clock)
        self.journal_ = journal
        self.published: list[Any] = []

    async def submit(self, cmd: c.Command) -> Step:
        step = await super().submit(cmd)
        self.journal_.append(step.records)
        self.published += step.publishes
        return step

    async def send(self, publishes: list[Any]) -> None:
        self.published += publishes


@pytest.fixture
def env(tmp_path: Path):
    clock = [T0]
    journal = Journal(f"sqlite:///{tmp_path / 'hub.db'}")
    centre = Centre(load_catalog(), CentreConfig(
        "pk", (WindowSpec(1), WindowSpec(7, "pickup")), pickup_item="GEN-099"))
    registry = Registry([DeviceSpec("kiosk-1", "kiosk"), DeviceSpec("kp-1", "keypad", 1),
                         DeviceSpec("node-7", "node", 7)])
    hub = HubApp(centre, registry, "b1", "http://hub.example:8080/t/")
    hub.booking_key = KEY
    port = JournalPort(hub, lambda: clock[0], journal)
    site = Site(hub, port, clock=lambda: clock[0])
    app = Starlette(routes=[*public.routes(site), *web_pickup.routes(site)],
                    middleware=[Middleware(CSRFMiddleware)])
    client = TestClient(app)
    client.get("/kiosk?device=kiosk-1")
    client.headers["X-CSRF-Token"] = client.cookies["ow_csrf"]
    env = SimpleNamespace(client=client, site=site, hub=hub, clock=clock, journal=journal,
                          port=port)
    for n in (1, 7):
        act(env, c.OpenWindow(n, clerk=f"clerk{n}"))
    yield env
    journal.close()


def act(env: Any, cmd: c.Command) -> None:
    env.clock[0] += 10
    env.hub.pos = env.hub.pos  # the same app the port submits to
    env.port.journal_.append(env.hub.operate(cmd, env.clock[0]).records)


def accepted(env: Any, resident: str | None = CARD) -> str:
    """A promised item taken (by card when `resident`), served and completed at window 1:
    its case id."""
    act(env, c.TakeTicket(ITEM, resident=resident, source="kiosk-1"))
    tid = next(reversed(env.hub.centre.tickets.values())).id
    act(env, c.CallNext(1))
    act(env, c.Complete(1))
    assert env.hub.centre.cases[tid].state == "open"
    return tid


def device(env: Any, dev: str, seq: int, typ: str, **f: Any) -> tuple[str, dict[str, Any]]:
    """A device's event as it arrives over MQTT: (the answer's leaf, its body); the
    records journaled like the runner does."""
    env.clock[0] += 10
    step = env.hub.handle(proto.device_topic("pk", dev, "evt"),
                          proto.encode("evt", proto.event(dev, seq, typ, **f)), env.clock[0])
    env.journal.append(step.records)
    env.port.published += step.publishes
    for p in step.publishes:
        leaf = p.topic.rsplit("/", 1)[-1]
        if p.topic.split("/")[-2] == dev and leaf in ("res", "err"):
            return leaf, json.loads(p.payload)
    raise AssertionError(f"no answer to {typ}")


def journal_ops(env: Any) -> list[str]:
    return [r.body["op"] for r in env.journal.read()]


def unchanged(env: Any):
    """A context: the core's state and the journal are the same after as before."""
    class Same:
        def __enter__(self) -> None:
            self.state = env.hub.centre.to_dict()
            self.ops = journal_ops(env)

        def __exit__(self, *exc: object) -> None:
            if exc[0] is None:
                assert env.hub.centre.to_dict() == self.state
                assert journal_ops(env) == self.ops
    return Same()


def printed(env: Any, dev: str = "kiosk-1") -> list[dict[str, Any]]:
    return [proto.decode("cmd", p.payload) for p in env.port.published
            if p.topic == proto.device_topic("pk", dev, "cmd")]


def test_pick_up_by_case_code_at_the_kiosk(env):
    case = accepted(env)
    code = pickup.case_code(KEY, "pk", case)
    post = lambda body: env.client.post("/kiosk/pickup", json=body)  # noqa: E731
    with unchanged(env):  # still at the back office
        r = post({"device": "kiosk-1", "code": code})
        assert r.status_code == 409 and r.json()["code"] == "case_not_ready"
        assert "审批中" in r.json()["msg"] and "back office" in r.json()["msg"]
    act(env, c.CaseUpdate(case, "approved", by="li"))
    forged = code[:-1] + ("A" if code[-1] != "A" else "B")
    with unchanged(env):
        for body, status, err in (
                ({"device": "kiosk-1", "code": forged}, 400, "bad_code"),
                ({"device": "kiosk-1", "code": f"{case}-"}, 400, "bad_code"),
                ({"device": "kiosk-1", "code": ""}, 400, "no_code"),
                ({"device": "kp-1", "code": code}, 403, "unknown_device"),
                ({"device": "kiosk-1", "code": pickup.case_qr(KEY, "other", case)}, 400,
                 "other_centre")):
            r = post(body)
            assert (r.status_code, r.json()["code"]) == (status, err), r.text
            assert " / " in r.json()["msg"]
    n_printed = len(printed(env))
    r = post({"device": "kiosk-1", "code": code.lower()})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["state"] == "ready" and got["cases"] == [case] and got["windows"] == [7]
    t = env.hub.centre.tickets[got["id"]]
    assert t.item == "GEN-099" and env.hub.centre.pickups[t.id] == (case,)
    assert len(printed(env)) == n_printed + 1 and printed(env)[-1]["ticket"] == t.number
    assert journal_ops(env)[-1] == "pickup"
    with unchanged(env):
        r = post({"device": "kiosk-1", "code": code})
        assert r.status_code == 409 and r.json()["code"] == "pickup_exists"
        assert r.json()["ticket"] == t.number


def test_a_returned_case_prints_its_correction_slip_at_the_kiosk(env):
    case = accepted(env)
    act(env, c.CaseUpdate(case, "returned", reason="户口簿复印件不清晰", materials=(1,),
                          by="li"))
    item = env.hub.centre.catalog.items[ITEM]
    with unchanged(env):  # printing changes no state
        r = env.client.post("/kiosk/pickup", json={"device": "kiosk-1",
                                                   "code": pickup.case_code(KEY, "pk", case)})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "returned"
    assert r.json()["materials"] == [{"zh": item.materials[1].name.zh,
                                      "zh_tw": item.materials[1].name.traditional,
                                      "en": item.materials[1].name.en}]
    slip = printed(env)[-1]
    assert f"□ {item.materials[1].name.zh}" in slip["lines"]
    escpos = base64.b64decode(slip["escpos"])
    assert item.materials[1].name.zh.encode("gbk") in escpos
    assert "户口簿复印件不清晰".encode("gbk") in escpos
    assert pickup.case_code(KEY, "pk", case).encode() in escpos


def page_case(env: Any, url: str) -> dict[str, Any]:
    """The case as the phone page's first render has it (OW_TICKET.case)."""
    page = env.client.get(url)
    assert page.status_code == 200
    m = re.search(r"const OW_TICKET = (.*?);\n", page.text)
    assert m is not None
    return dict(json.loads(m.group(1))["case"])


def test_the_phone_page_shows_the_case_and_its_code_to_the_holder_only(env):
    case = accepted(env)
    k = ticket_token(KEY, "pk", case)
    snap = env.site.live.channels["ticket"](case)
    assert snap["case"]["state"] == "open" and snap["case"]["due_day"]
    act(env, c.CaseUpdate(case, "returned", reason="申请表未签字", materials=(0, 3),
                          by="li"))
    snap = env.site.live.channels["ticket"](case)
    item = env.hub.centre.catalog.items[ITEM]
    assert [m["zh"] for m in snap["case"]["materials"]] == [
        item.materials[0].name.zh, item.materials[3].name.zh]
    assert snap["case"]["reason"] == "申请表未签字" and "code" not in snap["case"]
    code = pickup.case_code(KEY, "pk", case)
    page = page_case(env, f"/t/{case}?k={k}")
    assert page["code"] == code and page["reason"] == "申请表未签字"
    stranger = env.client.get(f"/t/{case}")
    assert stranger.status_code == 200 and code not in stranger.text
    assert "code" not in page_case(env, f"/t/{case}?k={k[::-1]}")
    act(env, c.CaseUpdate(case, "resubmitted", by="li"))
    act(env, c.CaseUpdate(case, "approved", by="li"))
    # the next day: the ticket left with its day, the page follows the case
    env.clock[0] += 86400
    act(env, c.TakeTicket("SOC-001"))
    assert case not in env.hub.centre.tickets
    snap = env.site.live.channels["ticket"](case)
    assert snap["found"] and snap["case"]["state"] == "ready" and snap["case"]["windows"] == [7]
    assert page_case(env, f"/t/{case}?k={k}")["code"] == code


def test_pick_up_by_card_and_hand_over_signed_by_the_card(env):
    first, second = accepted(env), accepted(env)
    mine_not_ready = accepted(env)
    for k in (first, second):
        act(env, c.CaseUpdate(k, "approved", by="li"))
    with unchanged(env):
        leaf, body = device(env, "kiosk-1", 1, "pickup", resident=OTHER)
        assert (leaf, body["code"]) == ("err", "no_ready_case")
        leaf, body = device(env, "kiosk-1", 2, "pickup")
        assert (leaf, body["code"]) == ("err", "bad_field")
        leaf, body = device(env, "kp-1", 1, "pickup", resident=CARD)
        assert (leaf, body["code"]) == ("err", "not_allowed")
    leaf, body = device(env, "kiosk-1", 3, "pickup", resident=CARD)
    assert leaf == "res", body
    t = env.hub.centre.by_number[body["ticket"]]
    assert env.hub.centre.pickups[t.id] == (first, second)  # one ticket, one wait
    assert printed(env)[-1]["ticket"] == t.number
    assert mine_not_ready not in env.hub.centre.pickups[t.id]
    with unchanged(env):  # both have their ticket now
        leaf, body = device(env, "kiosk-1", 4, "pickup", resident=CARD)
        assert (leaf, body["code"]) == ("err", "no_ready_case")
    act(env, c.CallNext(7))
    assert env.hub.centre.windows[7].ticket == t.id
    with unchanged(env):
        leaf, body = device(env, "node-7", 1, "card", resident=OTHER)
        assert (leaf, body["code"]) == ("err", "not_your_case")
    device(env, "node-7", 2, "card", resident=CARD)
    device(env, "node-7", 3, "card", resident=CARD)
    for k in (first, second):
        case = env.hub.centre.cases[k]
        assert case.state == "closed" and case.handed_by == "card"
        assert case.closed_at is not None
    handed = [r.body for r in env.journal.read() if r.body.get("action") == "handed_over"]
    assert [(b["case"], b["by"]) for b in handed] == [(first, "card"), (second, "card")]
    # the third tap: nothing left to hand over, the usual look-up
    leaf, body = device(env, "node-7", 4, "card", resident=CARD)
    assert leaf == "res" and body["type"] == "card"


def test_the_kiosks_pick_up_screen(env):
    page = env.client.get("/kiosk/pickup?device=kiosk-1&lang=zh_CN")
    assert page.status_code == 200 and 'id="pickup-form"' in page.text
    assert "kiosk_pickup.js" in page.text
    assert env.client.get("/kiosk/pickup?device=kp-1").status_code == 400  # not a kiosk
    home = env.client.get("/kiosk?device=kiosk-1&lang=zh_CN")
    assert 'href="/kiosk/pickup"' in home.text and "领取办结材料" in home.text


def test_the_holder_leaves_a_number_for_the_cases_notices_on_the_phone_page(env):
    from onewindow.hub.notify.phones import PhoneVault

    case = accepted(env, resident=None)
    k = ticket_token(KEY, "pk", case)
    assert page_case(env, f"/t/{case}?k={k}")["phone_kept"] is False
    with unchanged(env):
        r = env.client.post(f"/t/{case}/phone", json={"phone": "13812345678"})
        assert r.status_code == 403 and r.json()["code"] == "bad_token"
        r = env.client.post(f"/t/{case}/phone", json={"phone": "13812345678", "k": k})
        assert r.status_code == 503  # no secret yet: nothing to seal with
    env.port.phone_vault = PhoneVault(b"s" * 32, "pk")
    with unchanged(env):
        r = env.client.post(f"/t/{case}/phone", json={"phone": "021-12345678", "k": k})
        assert r.status_code == 400 and "手机号码" in r.json()["msg"]
    r = env.client.post(f"/t/{case}/phone", json={"phone": "13812345678", "k": k,
                                                  "lang": "en"})
    assert r.status_code == 200 and r.json()["phone"] == "138****5678"
    contact = env.hub.centre.contacts[case]
    assert contact.lang == "en" and contact.phone and "13812345678" not in contact.phone
    assert page_case(env, f"/t/{case}?k={k}")["phone_kept"] is True
    assert "13812345678" not in str([r.body for r in env.journal.read()])


def test_a_case_closed_directly_is_completed_not_collected(env):
    case = accepted(env)
    act(env, c.CaseUpdate(case, "closed", by="li"))
    view = env.site.live.channels["ticket"](case)["case"]
    assert (view["state_zh"], view["collected"]) == ("已办结", False)
    act(env, c.CaseUpdate(case, "reopened", by="li"))
    act(env, c.CaseUpdate(case, "approved", by="li"))
    act(env, c.CaseUpdate(case, "handed_over", by="zhao"))
    view = env.site.live.channels["ticket"](case)["case"]
    assert (view["state_zh"], view["collected"]) == ("已领取办结", True)


class CityIndex:
    """What the kiosk asks of hub/city/features.py's CityFeatures: `city_cases(token)`
    answers as the router's index does (features._statuses rows, closed ones left out);
    None when the city does not answer. `centre_name`: the centres heard from (their waits
    name them)."""

    def __init__(self, rows: list[dict[str, Any]] | None) -> None:
        self.me, self.rows = "pk", rows
        self.asked: list[str] = []
        self.names = {"west": {"zh": "西区中心", "zh_tw": "西區中心", "en": "West Centre"}}

    def centre_name(self, centre: str) -> dict[str, str] | None:
        return self.names.get(centre)

    async def city_cases(self, token: str) -> list[dict[str, Any]] | None:
        self.asked.append(token)
        return self.rows


def test_a_code_at_the_kiosk_lists_the_cards_open_cases_across_the_city(env):
    case, second, no_card = accepted(env), accepted(env), accepted(env, resident=None)
    code = pickup.case_code(KEY, "pk", case)
    here = {"token": CARD, "centre": "pk", "case": case, "key": f"pk/{case}",
            "item": ITEM, "state": "open", "due_day": "2026-11-30", "approver": "pk",
            "pickup": "pk", "version": 0}
    east = {"token": CARD, "centre": "east", "case": "20261120-A007",
            "key": "west/20261120-A007", "item": "SOC-003", "state": "ready",
            "due_day": "2026-11-27", "approver": "east", "pickup": "west", "version": 3}
    index = CityIndex([here, east])
    env.site.city = index
    r = env.client.post("/kiosk/pickup", json={"device": "kiosk-1", "code": code})
    assert r.status_code == 409 and r.json()["code"] == "case_not_ready"
    assert index.asked == [CARD] and CARD not in r.text  # asked by token, never shown
    (other,) = r.json()["city"]  # this very case is the answer itself
    assert other["key"] == "west/20261120-A007" and other["pickup"] == "west"
    # named as the city's centres name themselves; one not heard from, by its id
    assert other["pickup_name"] == {"zh": "西区中心", "zh_tw": "西區中心", "en": "West Centre"}
    assert other["approver_name"] == {"zh": "east", "zh_tw": "east", "en": "east"}
    assert other["item"]["zh"] == "城乡居民养老金申领" and other["state_en"] == "Ready for pick-up"
    assert other["due_day"] == "2026-11-27" and "token" not in other
    act(env, c.CaseUpdate(case, "approved", by="li"))
    r = env.client.post("/kiosk/pickup", json={"device": "kiosk-1", "code": code})
    assert r.status_code == 200 and [x["key"] for x in r.json()["city"]] == [east["key"]]
    # The city not answering, or a case of no card: nothing to show, and said so (null).
    index.rows = None
    act(env, c.CaseUpdate(second, "returned", reason="不清晰", materials=(1,), by="li"))
    r = env.client.post("/kiosk/pickup", json={"device": "kiosk-1",
                                               "code": pickup.case_code(KEY, "pk", second)})
    assert r.status_code == 200 and r.json()["state"] == "returned"
    assert r.json()["city"] is None
    index.rows, index.asked = [east], []
    act(env, c.CaseUpdate(no_card, "approved", by="li"))
    r = env.client.post("/kiosk/pickup", json={"device": "kiosk-1",
                                               "code": pickup.case_code(KEY, "pk", no_card)})
    assert r.status_code == 200 and r.json()["city"] is None and index.asked == []
    page = env.client.get("/kiosk/pickup?device=kiosk-1&lang=zh_TW")
    assert 'id="p-city"' in page.text and "您在本市其他中心還有辦理中的事項" in page.text


def test_outside_a_city_the_kiosk_answers_no_city_cases(env):
    case = accepted(env)
    act(env, c.CaseUpdate(case, "approved", by="li"))
    r = env.client.post("/kiosk/pickup", json={"device": "kiosk-1",
                                               "code": pickup.case_code(KEY, "pk", case)})
    assert r.status_code == 200 and r.json()["city"] is None
