"""Issue 16, admission control ("honest capacity"): the pure verdict (hypothesis: more waiting
never turns "late" into "ok"; outside the hours it is "closed") and the capacity left; the
[admission] config; at the hub, a take in mode "stop" refused with err day_full and nothing
journaled, in mode "warn" issued with the verdict kept in its record and the warning printed,
a replay printing the very same bytes; the kiosk saying it before issuing (GET
/kiosk/admission, the item page's banner and booking link); the dashboard's numbers.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware

from onewindow.hub.app import HubApp
from onewindow.hub.app import admission as gate
from onewindow.hub.catalog import load_catalog
from onewindow.hub.config import ConfigError, from_dict
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.forecast import admission as adm
from onewindow.hub.forecast.wait import NO_WINDOW, Estimate
from onewindow.hub.render.escpos_decode import decode
from onewindow.hub.store.journal import Record
from onewindow.hub.web import public
from onewindow.hub.web.site import CSRFMiddleware, Site
from onewindow.protocol import ow_protocol as proto

from .catalogs import small_catalog
from .test_staff_http import Env

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TZ = dt.timezone(dt.timedelta(hours=8))
DAY = dt.date(2026, 11, 23)  # a Monday: open 09:00-17:00 (the default hours)
OPEN = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ).timestamp()
CLOSE = dt.datetime(2026, 11, 23, 17, 0, tzinfo=TZ).timestamp()
LATE_LINE = "预计无法在今日办理 / 預計無法在今日辦理 / Not likely to be served today"


def est(hi: float, med: float | None = None) -> Estimate:
    m = hi / 2 if med is None else med
    return Estimate(m, m, 0.0, hi, 0.0, hi)


# ---- the pure decision --------------------------------------------------------------------
@given(now=st.floats(OPEN - 3 * 3600, CLOSE + 3600),
       a=st.floats(0, 2000), b=st.floats(0, 2000))
def test_more_waiting_never_turns_late_into_ok(now, a, b):
    lo, hi = sorted((a, b))
    less, more = (adm.decide(now, est(x), (OPEN, CLOSE)) for x in (lo, hi))
    assert less in adm.VERDICTS and more in adm.VERDICTS
    if less == adm.LATE:
        assert more == adm.LATE
    if less == adm.CLOSED or more == adm.CLOSED:
        assert less == more == adm.CLOSED and now >= CLOSE


@given(now=st.floats(OPEN - 3600, CLOSE - 1), hi=st.floats(0, 600))
def test_late_exactly_when_the_slow_end_of_the_interval_reaches_closing(now, hi):
    v = adm.decide(now, est(hi), (OPEN, CLOSE))
    assert v == (adm.LATE if max(now + hi * 60, OPEN) >= CLOSE else adm.OK)


def test_closed_days_and_after_closing_are_closed_and_no_estimate_is_ok():
    assert adm.decide(OPEN, est(1), None) == adm.CLOSED  # a holiday, a Sunday
    assert adm.decide(CLOSE, est(0), (OPEN, CLOSE)) == adm.CLOSED
    assert adm.decide(CLOSE + 60, NO_WINDOW, (OPEN, CLOSE)) == adm.CLOSED
    assert adm.decide(OPEN - 600, NO_WINDOW, (OPEN, CLOSE)) == adm.OK  # windows not open yet
    with pytest.raises(ValueError):
        adm.decide(math.nan, est(1), (OPEN, CLOSE))
    with pytest.raises(ValueError):
        adm.decide(OPEN, est(1), (CLOSE, OPEN))


@given(now=st.floats(OPEN, CLOSE + 600),
       free=st.lists(st.floats(OPEN - 600, CLOSE + 600), max_size=12),
       later=st.floats(0, 7200), occ=st.floats(60, 1800))
def test_capacity_left_falls_as_windows_free_later_and_is_zero_when_closed(now, free, later,
                                                                          occ):
    n = adm.can_serve(now, CLOSE, free, occ)
    assert 0 <= n <= sum(math.ceil((CLOSE - OPEN) / occ) for _ in free)
    assert adm.can_serve(now, CLOSE, [f + later for f in free], occ) <= n
    assert adm.can_serve(now, None, free, occ) == 0
    if now >= CLOSE:
        assert n == 0


def test_modes():
    assert adm.refused("stop", "late") and adm.refused("stop", "closed")
    assert not adm.refused("stop", "ok") and not adm.refused("warn", "late")
    assert adm.warned("warn", "late") and not adm.warned("off", "late")
    with pytest.raises(ValueError):
        adm.refused("loose", "late")
    zh, tw, en = adm.message("late").split(" / ")
    assert zh.startswith("今日号源已满") and tw.startswith("今日號源已滿") and "book" in en


# ---- the config ---------------------------------------------------------------------------
BASE = {"centre": {"id": "t1"}, "windows": [{"number": 1}]}


def test_admission_config_defaults_to_warn_and_accepts_the_three_modes():
    assert from_dict(BASE).admission == "warn"
    for mode in ("warn", "stop", "off"):
        assert from_dict({**BASE, "admission": {"mode": mode}}).admission == mode


@pytest.mark.parametrize("table", [{"mode": "strict"}, {"mode": 1}, {"mode": ["stop"]},
                                   {"mod": "stop"}, "stop"])
def test_bad_admission_config_is_a_clear_error(table):
    with pytest.raises(ConfigError, match=r"\[admission\]"):
        from_dict({**BASE, "admission": table})


# ---- at the hub -----------------------------------------------------------------------------
def app(mode: str = "warn") -> HubApp:
    core = Centre(small_catalog(), CentreConfig("t1", (WindowSpec(1), WindowSpec(2))))
    a = HubApp(core, Registry([DeviceSpec("kp-1", "keypad", 1),
                               DeviceSpec("box-1", "box")]), "boot1")
    a.admission = mode
    return a


def evt(a: HubApp, dev: str, seq: int, typ: str, at: float, **f):
    return a.handle(proto.device_topic("t1", dev, "evt"),
                    proto.encode("evt", proto.event(dev, seq, typ, **f)), at)


def late_day(mode: str) -> tuple[HubApp, list[Record], float]:
    """One window open since 09:00; at 16:20 thirty residents of 5-minute items are
    waiting: a new one would be called long after closing."""
    a = app(mode)
    records = evt(a, "kp-1", 1, "open", OPEN).records
    at = CLOSE - 40 * 60
    for k in range(30):
        records += a.operate(c.TakeTicket("SOC-1", source=None), at + k).records
    return a, records, at + 60


def printed(step) -> dict:
    [cmd] = [proto.decode("cmd", p.payload) for p in step.publishes
             if p.topic.endswith("/cmd")]
    return cmd


def test_early_in_the_day_a_take_is_ok_and_its_record_and_ticket_are_unchanged():
    for mode in ("warn", "stop"):
        a = app(mode)
        evt(a, "kp-1", 1, "open", OPEN)
        assert gate.verdict(a, "SOC-1", OPEN + 60) == "ok"
        step = evt(a, "box-1", 1, "take", OPEN + 60, item="SOC-1")
        [rec] = step.records
        assert "adm" not in rec.body
        assert LATE_LINE not in printed(step)["lines"]


def test_stop_refuses_a_late_take_with_day_full_and_journals_nothing():
    a, _, at = late_day("stop")
    assert gate.verdict(a, "SOC-1", at) == "late"
    before, pos = a.centre.to_dict(), a.pos
    step = evt(a, "box-1", 1, "take", at, item="SOC-1")
    assert step.records == []
    [err] = [proto.decode("err", p.payload) for p in step.publishes
           if p.topic.endswith("/err")]  # (and the day-full slip: test_day_full_slip.py)
    assert err["code"] == "day_full" and err["seq"] == 1
    zh, tw, en = err["msg"].split(" / ")
    assert zh.startswith("今日号源已满") and tw.startswith("今日號源已滿") and "book" in en
    assert a.centre.to_dict() == before and a.pos == pos
    # the same event again gets the same answer; an offline ticket the box printed itself
    # still joins (it exists on paper), and so does a booking's appointment ticket
    assert evt(a, "box-1", 1, "take", at, item="SOC-1").publishes == step.publishes
    assert a.centre.to_dict() == before
    booked = a.operate(c.TakeTicket("SOC-1", priority="appointment", appointment_at=at,
                                    source="box-1"), at)
    assert booked.records and "adm" not in booked.records[0].body


def test_stop_refuses_after_closing_as_closed():
    a = app("stop")
    evt(a, "kp-1", 1, "open", OPEN)
    step = evt(a, "box-1", 1, "take", CLOSE + 60, item="SOC-1")
    assert step.records == []
    [err] = [proto.decode("err", p.payload) for p in step.publishes
           if p.topic.endswith("/err")]  # (and the day-full slip: test_day_full_slip.py)
    assert err["code"] == "day_full" and err["msg"].startswith("今日已停止办理")


def test_off_issues_without_asking():
    a, _, at = late_day("off")
    step = evt(a, "box-1", 1, "take", at, item="SOC-1")
    assert "adm" not in step.records[0].body
    assert LATE_LINE not in printed(step)["lines"]


def test_warn_issues_keeps_the_verdict_in_the_record_and_a_replay_prints_the_same_bytes():
    a, records, at = late_day("warn")
    step = evt(a, "box-1", 1, "take", at, item="SOC-1")
    [rec] = step.records
    assert rec.body["adm"] == "late"
    cmd = printed(step)
    assert cmd["lines"][-1] == LATE_LINE
    texts = decode(base64.b64decode(cmd["escpos"]))["texts"]
    assert "预计无法在今日办理" in texts and "預計無法在今日辦理" in texts
    assert "Not likely to be served today" in texts
    # A replay never decides again: another mode, a later clock, the same ticket printed.
    b = app("off")
    b.replay([*records, rec])
    assert [p.payload for p in b.registry.get("box-1").last_reply] == \
        [p.payload for p in step.publishes if p.topic.split("/")[3] == "box-1"]
    assert b.centre.to_dict() == a.centre.to_dict()


def test_the_dashboard_capacity_left_shrinks_as_the_queue_grows():
    a = app()
    evt(a, "kp-1", 1, "open", OPEN)
    at = OPEN + 3600
    empty = gate.can_serve(a, at)
    assert empty > 0
    for k in range(20):
        a.operate(c.TakeTicket("SOC-1"), at + k)
    assert 0 <= gate.can_serve(a, at + 30) < empty
    assert gate.can_serve(a, CLOSE + 1) == 0


# ---- the kiosk ------------------------------------------------------------------------------
def kiosk(mode: str, clock: list[float]):
    cat = load_catalog()
    centre = Centre(cat, CentreConfig("web", (WindowSpec(1),)))
    registry = Registry([DeviceSpec("kiosk-1", "kiosk"), DeviceSpec("kp-1", "keypad", 1)])
    hub = HubApp(centre, registry, "b1", "http://hub.example:8080/t/")
    hub.admission = mode
    hub.booking_key = b"k" * 32  # this centre takes bookings: the kiosk may offer one
    site = Site(hub, None, lambda: clock[0])
    client = TestClient(Starlette(routes=public.routes(site),
                                  middleware=[Middleware(CSRFMiddleware)]))
    client.get("/kiosk?device=kiosk-1")
    client.headers["X-CSRF-Token"] = client.cookies["ow_csrf"]
    hub.operate(c.OpenWindow(1, "wang"), OPEN)
    return client, hub


TAKE = {"device": "kiosk-1", "item": "SOC-001", "have": ["本人居民身份证", "户口簿"]}


def test_the_kiosk_says_it_before_issuing_and_links_to_booking():
    clock = [OPEN + 60]
    client, hub = kiosk("stop", clock)
    r = client.get("/kiosk/admission?item=SOC-001")
    assert r.status_code == 200
    assert r.json() == {"item": "SOC-001", "mode": "stop", "verdict": "ok", "refuse": False,
                        "warn": False, "book": "/book?item=SOC-001"}
    page = client.get("/kiosk/item/SOC-001").text
    assert 'id="admission"' not in page
    assert client.get("/kiosk/admission?item=NOPE").status_code == 404

    clock[0] = CLOSE + 60  # after closing: refused, said on the page and by the endpoint
    r = client.get("/kiosk/admission?item=SOC-001").json()
    assert r["verdict"] == "closed" and r["refuse"] is True
    page = client.get("/kiosk/item/SOC-001").text
    assert "今日已停止办理" in page and 'href="/book?item=SOC-001"' in page
    assert 'id="check" class="big" disabled' in page
    n = len(hub.centre.tickets)
    r = client.post("/kiosk/take", json=TAKE)
    assert r.status_code == 409 and r.json()["code"] == "day_full"
    assert len(hub.centre.tickets) == n
    # A centre that takes no bookings (no secret yet) offers another day instead.
    hub.booking_key = None
    assert client.get("/kiosk/admission?item=SOC-001").json()["book"] is None
    page = client.get("/kiosk/item/SOC-001").text
    assert "/book?item=" not in page and "请改日（工作日）再来办理。" in page


def test_the_kiosk_item_page_warns_in_each_language():
    clock = [CLOSE - 60]
    client, hub = kiosk("warn", clock)
    for k in range(10):
        hub.operate(c.TakeTicket("SOC-001"), CLOSE - 600 + k)
    assert client.get("/kiosk/admission?item=SOC-001").json()["warn"] is True
    zh = client.get("/kiosk/item/SOC-001?lang=zh-CN").text
    assert "预计无法在今日办理" in zh and "改为预约办理" in zh
    tw = client.get("/kiosk/item/SOC-001?lang=zh-TW").text
    assert "預計無法在今日辦理" in tw and "改為預約辦理" in tw
    en = client.get("/kiosk/item/SOC-001?lang=en").text
    assert "Not likely to be served today" in en and "Book a time instead" in en
    assert 'id="check" class="big">' in en  # warned, not stopped: the ticket is offered
    r = client.post("/kiosk/take", json=TAKE)
    assert r.status_code == 200
    assert next(reversed(hub.centre.tickets.values())).id == r.json()["id"]


def test_the_dashboard_shows_the_capacity_left_and_the_mode(tmp_path):
    env = Env(tmp_path)
    env.now = OPEN + 3600
    env.hub.admission = "stop"
    env.act(c.OpenWindow(1, "wang"))
    sup = env.client("sup")
    s = sup.get("/dashboard/state").json()["admission"]
    assert s["mode"] == "stop" and s["can_serve"] > 0
    page = sup.get("/dashboard", headers={"accept": "text/html"}).text
    assert "今日还能办理的人数" in page and "停止：不再取号，引导预约" in page
    env.now = CLOSE + 60
    r = env.client("sup").get("/dashboard/state")  # a new session: the first one timed out
    assert r.status_code == 200, r.text
    assert r.json()["admission"]["can_serve"] == 0
