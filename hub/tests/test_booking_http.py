"""Booking (预约) over HTTP, in process with the real core and a real SQLite journal: the
[booking] configuration, the pages (/book on the phone and the kiosk, /kiosk/checkin), a
booking's code and QR, cancel, check-in by the QR's text at the kiosk (printed on the
kiosk's device), and the abuse cases: past or malformed dates, another centre's or line's
slots, a second booking for the item and day, forged and replayed codes, check-in outside
the window, each refused in the resident's language with the state and the journal
unchanged; the rate limits per client address and per resident, and a script that tries to
book every slot."""

from __future__ import annotations

import datetime as dt
import json
import re
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware

from onewindow.hub.app import HubApp, Step
from onewindow.hub.catalog import load_catalog
from onewindow.hub.config import ConfigError, check, from_dict
from onewindow.hub.core import booking as bk
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import BookingRules, CentreConfig, WindowSpec
from onewindow.hub.core.model import Priority
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.notify.phones import PhoneVault, parse_phone
from onewindow.hub.store.journal import Journal
from onewindow.hub.web import booking, public
from onewindow.hub.web.port import MemoryPort
from onewindow.hub.web.ratelimit import BookingLimits, Limiter, LimitError, Rate
from onewindow.hub.web.site import CSRFMiddleware, Site

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TZ = dt.timezone(dt.timedelta(hours=8))
MON = dt.datetime(2026, 11, 23, tzinfo=TZ)  # a Monday: open 09:00-17:00
SECRET = b"s" * 32
KEY = bk.derive_key(SECRET, "web")
VAULT = PhoneVault(SECRET, "web")
NUMBER = "13812345678"


def at(h: int, m: int = 0, day: int = 0) -> float:
    return (MON + dt.timedelta(days=day, hours=h, minutes=m)).timestamp()


class JournalPort(MemoryPort):
    """Decided in memory, then journaled in SQLite before anything is 'published' (kept
    here), as the hub process's runner does."""

    def __init__(self, hub: HubApp, clock, journal: Journal) -> None:
        super().__init__(hub, clock)
        self.journal_ = journal
        self.published: list = []

    async def submit(self, cmd: c.Command) -> Step:
        step = await super().submit(cmd)
        self.journal_.append(step.records)
        self.published += step.publishes
        return step


@pytest.fixture
def env(tmp_path: Path):
    clock = [at(10)]
    journal = Journal(f"sqlite:///{tmp_path / 'hub.db'}")
    centre = Centre(load_catalog(), CentreConfig("web", tuple(WindowSpec(n) for n in (1, 2))))
    registry = Registry([DeviceSpec("kiosk-1", "kiosk"), DeviceSpec("kp-1", "keypad", 1)])
    hub = HubApp(centre, registry, "b1", "http://hub.example:8080/t/")
    hub.booking_key = KEY
    port = JournalPort(hub, lambda: clock[0], journal)
    port.phone_vault = VAULT  # type: ignore[attr-defined]
    site = Site(hub, port, clock=lambda: clock[0])
    site.config = SimpleNamespace(booking_limits=BookingLimits(  # type: ignore[attr-defined]
        Rate(1000, 1000.0), Rate(1000, 1000.0)))
    app = Starlette(routes=[*public.routes(site), *booking.routes(site)],
                    middleware=[Middleware(CSRFMiddleware)])
    client = TestClient(app)
    client.get("/book")
    client.headers["X-CSRF-Token"] = client.cookies["ow_csrf"]
    yield SimpleNamespace(client=client, site=site, clock=clock, journal=journal, port=port,
                          app=app)
    journal.close()


def slot(h: int, m: int = 0, day: int = 0, line: str = "social", centre: str = "web") -> str:
    d = (MON + dt.timedelta(days=day)).strftime("%Y%m%d")
    return f"{centre}/{line}/{d}/{h:02d}{m:02d}"


def book(env, s: str, phone: str = NUMBER, item: str = "SOC-001", **kw):
    return env.client.post("/book", json={"item": item, "slot": s, "phone": phone}, **kw)


def state(env) -> dict:
    return env.site.hub.centre.to_dict()


def journal_len(env) -> int:
    return sum(1 for _ in env.journal.read())


# ---- configuration --------------------------------------------------------------------

BASE = {"centre": {"id": "web"}, "windows": [{"number": 1}, {"number": 2}]}


def test_booking_config_is_parsed_into_the_centre_and_its_limits():
    cfg = from_dict({**BASE, "booking": {"slot_minutes": 15, "days_ahead": 3,
                                         "capacity": {"social": 4},
                                         "limits": {"address": {"burst": 3, "per_minute": 2}}}})
    assert cfg.centre.booking == BookingRules(15, 3, (("social", 4),))
    assert cfg.booking_limits.address == Rate(3, 2)
    assert cfg.booking_limits.resident == BookingLimits().resident
    assert from_dict(BASE).centre.booking == BookingRules()
    centre = Centre(load_catalog(), cfg.centre)
    assert bk.capacity(centre, "social") == 4
    assert bk.capacity(centre, "housing") == 2  # not named: the windows that serve the line
    assert bk.day_slots(centre, MON.date())[:2] == [at(9), at(9, 15)]


@pytest.mark.parametrize("table,words", [
    ({"slot_minutes": 1}, "slot_minutes must be 5..240"),
    ({"slot_minutes": "30"}, "slot_minutes = '30': a whole number"),
    ({"days_ahead": 61}, "days_ahead must be 0..60"),
    ({"days_ahead": True}, "a whole number"),
    ({"capacity": 3}, "capacity: a table of line = bookings per slot"),
    ({"capacity": {"social": -1}}, "capacity social = -1"),
    ({"capacity": {"social": 1.5}}, "capacity social = 1.5"),
    ({"slots": 3}, "unknown key(s) slots"),
    ({"limits": {"address": {"burst": 0}}}, "[booking.limits] address: burst = 0"),
    ({"limits": {"resident": {"per_minute": -1}}}, "[booking.limits] resident: per_minute"),
    ({"limits": {"everyone": {}}}, "unknown key(s) everyone"),
    ({"limits": {"address": {"rate": 1}}}, "unknown key(s) rate"),
])
def test_bad_booking_config_is_a_clear_error(table, words):
    with pytest.raises(ConfigError) as e:
        from_dict({**BASE, "booking": table})
    assert words in str(e.value)


def test_a_capacity_for_a_line_the_catalog_lacks_is_refused_at_start():
    cfg = from_dict({**BASE, "booking": {"capacity": {"NOPE": 2}}})
    with pytest.raises(ConfigError, match="'NOPE' is not a line of the catalog"):
        check(cfg, load_catalog())


# ---- the token bucket -----------------------------------------------------------------

def test_the_token_bucket_allows_a_burst_then_refills_at_its_rate():
    lim = Limiter(Rate(3, 6.0))  # one token back every 10 s
    assert [lim.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert lim.take("a", 0.0) == pytest.approx(10.0)
    assert lim.take("b", 0.0) == 0.0  # another key has its own bucket
    assert lim.take("a", 5.0) == pytest.approx(5.0)  # refused tries take nothing
    assert lim.take("a", 10.0) == 0.0
    assert lim.take("a", 10.0) > 0
    assert lim.take("a", 1000.0) == 0.0  # refilled, never beyond the burst
    assert [lim.take("a", 1000.0) for _ in range(3)][-1] > 0


def test_the_limiter_forgets_full_buckets_and_stays_bounded():
    lim = Limiter(Rate(2, 60.0), max_keys=100)
    for k in range(1000):
        lim.take(f"k{k}", float(k))
    assert len(lim) <= 100
    with pytest.raises(LimitError):
        Rate(0, 1.0)
    with pytest.raises(LimitError):
        Rate(1, 0)


# ---- pages ----------------------------------------------------------------------------

def test_the_booking_page_in_each_language_preselects_the_item(env):
    zh = env.client.get("/book?item=SOC-003&lang=zh-CN").text
    assert "预约办理" in zh and 'id="phone"' in zh and 'id="card"' not in zh
    assert re.search(r'<option value="SOC-003" selected>', zh)
    tw = env.client.get("/book?lang=zh-TW").text
    assert "預約辦理" in tw and "预约" not in tw.replace("預約", "")
    en = env.client.get("/book?lang=en").text
    assert "Book a time" in en and "预约办理" not in en
    assert 'class="phone book"' in zh  # the H5 layout
    kiosk = env.client.get("/book?device=kiosk-1").text
    assert 'class="kiosk book"' in kiosk and 'id="card"' in kiosk
    checkin = env.client.get("/kiosk/checkin?device=kiosk-1&lang=zh-CN").text
    assert "预约签到" in checkin and 'id="code"' in checkin and "autofocus" in checkin
    assert env.client.get("/kiosk/checkin?device=nope").status_code == 400
    assert 'href="/kiosk/checkin"' in env.client.get("/kiosk?device=kiosk-1").text


def test_without_a_key_or_vault_booking_says_it_is_unavailable(env):
    env.site.hub.booking_key = None
    assert 'id="closed"' in env.client.get("/book").text
    r = book(env, slot(11))
    assert r.status_code == 503 and r.json()["code"] == "unavailable"
    assert r.json()["msg"] == "本中心暂不提供预约。"


def test_slots_list_the_bookable_days_and_the_free_slots(env):
    r = env.client.get("/book/slots.json?item=SOC-001")
    got = r.json()
    assert r.status_code == 200 and got["day"] == "20261123"
    assert [d["day"] for d in got["days"]] == ["20261123", "20261124", "20261125",
                                               "20261126", "20261127", "20261130"]
    assert got["days"][0]["label"] == "11月23日 周一"
    # from the slot still open for check-in (10:00 is inside 09:30's grace? no: 09:45 end)
    assert got["slots"][0] == {"slot": slot(10), "time": "10:00", "free": 2}
    assert got["slots"][-1]["time"] == "16:30"
    assert book(env, slot(10)).status_code == 200
    again = env.client.get("/book/slots.json?item=SOC-003&day=20261123").json()
    assert again["slots"][0]["free"] == 1  # the line's capacity is shared by its items
    for bad, code in (("2026-11-24", "bad_day"), ("20261131", "bad_day"),
                      ("20261122", "not_a_booking_day"), ("20261128", "not_a_booking_day"),
                      ("20261215", "not_a_booking_day")):
        r = env.client.get(f"/book/slots.json?item=SOC-001&day={bad}")
        assert r.json()["code"] == code and r.status_code in (400, 409), bad
    assert env.client.get("/book/slots.json?item=NOPE").status_code == 404


# ---- book, cancel, check in ------------------------------------------------------------

def test_a_booking_gives_a_signed_code_and_qr_and_keeps_no_clear_number(env):
    r = book(env, slot(11, 30, day=1))
    assert r.status_code == 200, r.text
    got = r.json()
    assert re.fullmatch(r"B0001-[A-Z2-7]{6}", got["code"])
    assert got["qr_text"] == bk.qr_text(KEY, "web", "B0001")
    assert got["qr"].startswith("<svg") and (got["day"], got["time"]) == ("2026-11-24", "11:30")
    assert (got["checkin_from"], got["checkin_to"]) == ("11:20", "11:45")
    b = env.site.hub.centre.bookings["B0001"]
    assert b.resident == "ph:" + VAULT.fingerprint(parse_phone(NUMBER))
    everything = json.dumps(state(env)) + json.dumps(
        [r.body for r in env.journal.read()], default=str)
    assert NUMBER not in everything and "5678" not in everything
    assert [r.op for r in env.journal.read()] == ["book"]


def test_a_booking_made_at_the_kiosk_by_card(env):
    r = env.client.post("/book", json={"item": "SOC-001", "slot": slot(14), "device": "kiosk-1",
                                       "card": "card:0123456789abcdef"})
    assert r.status_code == 200, r.text
    assert env.site.hub.centre.bookings["B0001"].resident == "card:0123456789abcdef"
    for body, code in (({"device": "kp-1", "card": "card:0123456789abcdef"}, "unknown_device"),
                       ({"device": "kiosk-1", "card": "短"}, "bad_card")):
        before = state(env)
        r = env.client.post("/book", json={"item": "SOC-003", "slot": slot(14), **body})
        assert r.json()["code"] == code and state(env) == before


def test_check_in_by_the_qr_text_prints_an_appointment_ticket_on_the_kiosk(env):
    env.site.hub.operate(c.OpenWindow(1), env.clock[0])
    qr = book(env, slot(11)).json()["qr_text"]
    env.site.hub.operate(c.TakeTicket("SOC-001"), at(10, 40))  # a walk-in before
    env.clock[0] = at(10, 52)
    r = env.client.post("/kiosk/checkin", json={"device": "kiosk-1", "code": qr})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["late"] is False and got["slot"] == "11:00" and got["number"] == "A002"
    t = env.site.hub.centre.tickets[got["id"]]
    assert t.priority is Priority.APPOINTMENT and t.appointment_at == at(11)
    prints = [json.loads(p.payload) for p in env.port.published
              if p.topic.endswith("/dev/kiosk-1/cmd")]
    assert prints and prints[-1]["type"] == "print" and prints[-1]["ticket"] == "A002"
    # it goes first in its slot: the walk-in A001 waits
    env.site.hub.operate(c.CallNext(1), at(11, 1))
    assert env.site.hub.centre.windows[1].ticket == t.id
    # the same code again (a replay) is refused, nothing changes
    before, n = state(env), journal_len(env)
    r = env.client.post("/kiosk/checkin", json={"device": "kiosk-1", "code": qr})
    assert r.status_code == 409 and r.json()["code"] == "already_checked_in"
    assert state(env) == before and journal_len(env) == n


def test_too_early_says_when_to_come_back_and_late_gives_a_normal_ticket(env):
    qr = book(env, slot(11)).json()["qr_text"]
    short = book(env, slot(12), item="SOC-003").json()["code"]
    env.clock[0] = at(10, 30)
    before, n = state(env), journal_len(env)
    for lang, msg in (("zh-CN", "请于10:50后再来签到"), ("zh-TW", "請於10:50後再來簽到"),
                      ("en", "come back at 10:50 to check in")):
        r = env.client.post(f"/kiosk/checkin?lang={lang}",
                            json={"device": "kiosk-1", "code": qr})
        assert r.status_code == 409 and r.json() == {
            "code": "too_early", "msg": msg, "come_back": "10:50"}
    assert state(env) == before and journal_len(env) == n
    env.clock[0] = at(12, 20)  # 20 minutes late: a normal ticket
    r = env.client.post("/kiosk/checkin", json={"device": "kiosk-1", "code": short.lower()})
    assert r.status_code == 200 and r.json()["late"] is True
    assert env.site.hub.centre.tickets[r.json()["id"]].priority is Priority.NORMAL


def test_cancel_with_the_code_frees_the_slot_and_a_second_cancel_is_refused(env):
    code = book(env, slot(11)).json()["code"]
    r = env.client.post("/book/cancel", json={"code": code})
    assert r.status_code == 200 and r.json() == {"cancelled": code}
    assert env.site.hub.centre.bookings["B0001"].state == bk.CANCELLED
    before, n = state(env), journal_len(env)
    r = env.client.post("/book/cancel?lang=en", json={"code": code})
    assert r.status_code == 409 and r.json()["msg"] == "the booking is cancelled"
    assert state(env) == before and journal_len(env) == n
    assert book(env, slot(11)).status_code == 200  # the day's booking was released


def test_bookings_survive_a_restart_by_replaying_the_journal(env):
    book(env, slot(11))
    book(env, slot(11), phone="13912345678")
    fresh = HubApp(Centre(load_catalog(), CentreConfig(
        "web", tuple(WindowSpec(n) for n in (1, 2)))), Registry([]), "b2")
    fresh.reload(env.journal.read())
    assert fresh.centre.to_dict()["bookings"] == state(env)["bookings"]


# ---- abuse: each refused in the resident's language, nothing changed ----------------------

@pytest.mark.parametrize("body,code,msgs", [
    ({"slot": slot(10, day=-1)}, "past_day", ("已过去的日期", "in the past")),
    ({"slot": slot(9)}, "past_slot", ("09:00时段已过", "has passed")),
    ({"slot": "web/social/2026-11-24/1100"}, "bad_slot", ("时段格式不对", "malformed")),
    ({"slot": "web/social/20261131/1100"}, "bad_date", ("日期或时间无效", "no such date")),
    ({"slot": slot(11, 10)}, "no_such_slot", ("不是可预约时段", "not a booking slot")),
    ({"slot": slot(18)}, "no_such_slot", ("不是可预约时段", "not a booking slot")),
    ({"slot": slot(11, day=8)}, "too_far", ("只能预约7天内", "7 days ahead")),
    ({"slot": slot(11, centre="other")}, "other_centre", ("不属于本中心", "another centre")),
    ({"slot": slot(11, line="housing")}, "wrong_line", ("不属于此事项的条线", "line housing")),
    ({"item": "NOPE"}, "unknown_item", ("未知事项", "unknown item")),
    ({"phone": "12345"}, "bad_phone", ("手机号码", "mobile number")),
    ({"phone": "010-12345678"}, "bad_phone", ("座机", "landlines")),
    ({"slot": 5}, "bad_field", ("请选择事项和时段", "Choose an item")),
    ({"phone": None}, "bad_field", ("请选择事项和时段", "Choose an item")),
])
def test_bad_bookings_are_refused_in_the_residents_language_changing_nothing(
        env, body, code, msgs):
    before, n = state(env), journal_len(env)
    full = {"item": "SOC-001", "slot": slot(11), "phone": NUMBER, **body}
    zh = env.client.post("/book", json=full)
    en = env.client.post("/book?lang=en", json=full)
    assert zh.status_code in (400, 404, 409) and zh.json()["code"] == code
    assert msgs[0] in zh.json()["msg"] and msgs[1] in en.json()["msg"], (zh.text, en.text)
    assert "/" not in zh.json()["msg"] or code == "bad_slot"  # one language, not three
    assert state(env) == before and journal_len(env) == n


def test_a_second_booking_for_the_item_and_day_and_a_full_slot_are_refused(env):
    assert book(env, slot(11)).status_code == 200
    before, n = state(env), journal_len(env)
    r = book(env, slot(15), phone="+86 138 1234 5678", params={"lang": "zh-TW"})
    assert r.status_code == 409 and r.json() == {
        "code": "already_booked", "msg": "您當天已預約此事項"}
    assert state(env) == before and journal_len(env) == n
    assert book(env, slot(11), phone="13912345678").status_code == 200  # capacity 2
    r = book(env, slot(11), phone="13712345678", params={"lang": "en"})
    assert r.status_code == 409 and r.json()["code"] == "slot_full"
    assert r.json()["msg"] == "the 11:00 slot is full"
    assert [n["time"] for n in r.json()["next"]] == ["11:30", "12:00", "12:30"]
    assert state(env)["bookings"] == {**before["bookings"],
                                      "B0002": state(env)["bookings"]["B0002"]}


@pytest.mark.parametrize("code", [
    "B0001-AAAAAA", "B0001", "OWB1/web/B0001/AAAAAAAAAAAAAAAA", "B0001-AAAAAA-", "",
    "x" * 300, "OWB1/web/B0001", "OWB1/other/B0001/AAAAAAAAAAAAAAAA",
])
def test_forged_codes_are_refused_at_check_in_and_cancel(env, code):
    book(env, slot(11))
    env.clock[0] = at(10, 55)
    before, n = state(env), journal_len(env)
    forged = bk.qr_text(bk.derive_key(b"t" * 32, "web"), "web", "B0001")
    for c_ in (code, forged):
        for url in ("/kiosk/checkin", "/book/cancel"):
            r = env.client.post(url + "?lang=en", json={"device": "kiosk-1", "code": c_})
            assert r.status_code in (400, 409), (url, c_, r.text)
            assert r.json()["code"] in ("bad_code", "other_centre", "no_code"), r.text
    assert state(env) == before and journal_len(env) == n


def test_check_in_needs_a_registered_kiosk_and_another_days_booking_waits(env):
    qr = book(env, slot(11, day=1)).json()["qr_text"]
    before = state(env)
    r = env.client.post("/kiosk/checkin", json={"device": "kp-1", "code": qr})
    assert r.status_code == 403 and r.json()["code"] == "unknown_device"
    r = env.client.post("/kiosk/checkin?lang=zh-TW", json={"device": "kiosk-1", "code": qr})
    assert r.status_code == 409 and r.json()["code"] == "not_today"
    assert r.json()["msg"] == "預約日期是11-24 11:00"
    assert state(env) == before


# ---- rate limits ----------------------------------------------------------------------

def limited(env, address: Rate, resident: Rate):
    env.site.config = SimpleNamespace(booking_limits=BookingLimits(address, resident))
    app = Starlette(routes=booking.routes(env.site), middleware=[Middleware(CSRFMiddleware)])
    client = TestClient(app)
    client.get("/book")
    client.headers["X-CSRF-Token"] = client.cookies["ow_csrf"]
    return client


def test_a_script_that_books_every_slot_is_stopped(env):
    """One client address, a fresh number for each slot of the week: it gets the burst,
    then 429s (Retry-After) that book nothing."""
    client = limited(env, Rate(5, 2.0), Rate(3, 1.0))
    got = client.get("/book/slots.json?item=SOC-001").json()
    names = [s["slot"] for d in got["days"] for s in client.get(
        f"/book/slots.json?item=SOC-001&day={d['day']}").json()["slots"]]
    assert len(names) > 80
    codes = []
    for k, name in enumerate(names):
        r = client.post("/book", json={"item": "SOC-001", "slot": name,
                                       "phone": f"1381234{k:04d}"})
        codes.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) >= 1
            assert r.json() == {"code": "rate_limited", "msg": "操作过于频繁，请稍后再试。"}
    assert codes.count(200) == 5 and codes.count(429) == len(names) - 5
    assert len(env.site.hub.centre.bookings) == 5 and journal_len(env) == 5
    env.clock[0] += 30  # the bucket refills at 2 a minute: one more
    assert client.post("/book", json={"item": "SOC-003", "slot": names[-1],
                                      "phone": "13912345678"}).status_code == 200


def test_one_resident_trying_many_slots_is_limited_per_resident(env):
    client = limited(env, Rate(100, 100.0), Rate(3, 1.0))
    codes = [client.post("/book", json={"item": "SOC-001", "slot": slot(11, 30 * (k % 2)),
                                        "phone": NUMBER}).status_code for k in range(6)]
    assert codes == [200, 409, 409, 429, 429, 429]
    assert len(env.site.hub.centre.bookings) == 1


def test_check_in_guessing_is_rate_limited_per_address(env):
    client = limited(env, Rate(4, 1.0), Rate(4, 1.0))
    codes = [client.post("/kiosk/checkin", json={"device": "kiosk-1",
                                                 "code": f"B0001-AAAAA{k}"}).status_code
             for k in range(8)]
    assert codes == [400] * 4 + [429] * 4


# ---- the supervisors' dashboard and the staff report ------------------------------------

def test_the_dashboard_shows_booked_and_walk_in_per_slot_today(tmp_path):
    from .test_staff_http import Env

    e = Env(tmp_path, windows=(1, 2))
    try:
        e.now = at(10, 50)
        resident = iter(f"r{k}" for k in range(10))
        for h, m in ((11, 0), (11, 0), (11, 30), (12, 0)):
            e.act(c.Book("SOC-001", slot(h, m, centre="t"), next(resident)))
        e.act(c.CancelBooking("B0004"))
        e.act(c.TakeTicket("SOC-003"))  # a walk-in during 10:30-11:00
        e.act(c.CheckIn(booking="B0001", source=None))
        e.now = at(11, 5)
        e.act(c.TakeTicket("SOC-004"))  # a walk-in during 11:00-11:30
        e.now = at(11, 50)  # 11:00's window closed: B0002 is a no-show
        cl = e.client("sup")
        rows = {r["slot"]: r for r in cl.get("/dashboard/state").json()["bookings"]}
        assert rows["10:30"] == {"slot": "10:30", "capacity": sum(
            e.hub.centre._booking_capacity.values()), "booked": 0, "checked_in": 0,
            "no_show": 0, "walk_in": 1}
        assert {k: rows["11:00"][k] for k in ("booked", "checked_in", "no_show", "walk_in")} \
            == {"booked": 2, "checked_in": 1, "no_show": 1, "walk_in": 1}
        assert rows["11:30"]["booked"] == 1 and rows["12:00"]["booked"] == 0  # cancelled
        page = cl.get("/dashboard?lang=zh-CN", headers={"accept": "text/html"}).text
        assert "今日各时段预约与现场取号" in page and 'data-slot="11:00"' in page
        assert "/static/book_dashboard.js" in page
    finally:
        e.site.accounts.close()


def test_the_staff_report_counts_booked_checked_in_and_no_shows_per_day(env):
    from onewindow.hub.report.staff import collect, compute, month_span

    env.site.hub.operate(c.OpenWindow(1), env.clock[0])
    for s, phone in ((slot(11), NUMBER), (slot(11), "13912345678"),
                     (slot(11, 30), "13712345678"), (slot(12), "13612345678"),
                     (slot(11, day=1), NUMBER)):
        assert book(env, s, phone=phone).status_code == 200
    env.client.post("/book/cancel", json={"code": bk.short_code(KEY, "web", "B0004")})
    env.clock[0] = at(10, 55)
    assert env.client.post("/kiosk/checkin", json={
        "device": "kiosk-1", "code": bk.qr_text(KEY, "web", "B0001")}).status_code == 200
    env.clock[0] = at(11, 50)  # B0002 (11:00) missed; B0003 (11:30) late: a normal ticket
    assert env.client.post("/kiosk/checkin", json={
        "device": "kiosk-1", "code": bk.qr_text(KEY, "web", "B0003")}).json()["late"] is True
    start, end = month_span("2026-11")
    config = CentreConfig("web", tuple(WindowSpec(n) for n in (1, 2)))
    facts = collect(env.journal.read(), load_catalog(), config, start, end)
    assert facts.bookings == {
        "2026-11-23": {"booked": 4, "cancelled": 1, "checked_in": 1, "late": 1, "no_show": 1},
        "2026-11-24": {"booked": 1, "cancelled": 0, "checked_in": 0, "late": 0, "no_show": 0}}
    centre = compute(facts, load_catalog(), month="2026-11").centre
    assert (centre["bookings_booked"], centre["bookings_checked_in"], centre["bookings_late"],
            centre["bookings_no_show"], centre["bookings_cancelled"]) == (5, 1, 1, 1, 1)
    december = collect(env.journal.read(), load_catalog(), config, *month_span("2026-12"))
    assert december.bookings == {}


def test_a_kiosk_checking_in_many_residents_is_not_limited_by_its_successes(env):
    """Many residents check in at one kiosk (one address): the successes give their
    address token back; the wrong codes among them still count."""
    qrs = [book(env, slot(11), phone=p).json()["qr_text"] for p in (NUMBER, "13912345678")]
    client = limited(env, Rate(3, 1.0), Rate(100, 100.0))
    env.clock[0] = at(10, 55)
    got = [client.post("/kiosk/checkin", json={"device": "kiosk-1", "code": q}).status_code
           for q in qrs]
    assert got == [200, 200]
    bad = [client.post("/kiosk/checkin", json={"device": "kiosk-1", "code": "B0009-AAAAAA"})
           .status_code for _ in range(4)]
    assert bad == [400, 400, 400, 429]
