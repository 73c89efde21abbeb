"""Booking (预约) with check-in, the core's rules (hub/core/booking.py): slots inside the
opening hours, capacity per line and slot, one booking per resident, item and day,
cancellation, check-in early / in time / late, no-shows released and counted; and the
journal: replay and snapshot plus tail give the same state."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onewindow.hub.app import HubApp
from onewindow.hub.core import booking as bk
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.model import Priority
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.core.snapshot import centre_state, restore_centre
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.store import snapshot as snap_mod
from onewindow.hub.store.journal import Record
from onewindow.hub.store.snapshot import decode as snap_decode
from onewindow.hub.store.snapshot import encode as snap_encode
from onewindow.protocol import ow_protocol as proto

from .catalogs import small_catalog

TZ = dt.timezone(dt.timedelta(hours=8))
MON = dt.date(2026, 11, 23)
T0 = dt.datetime(2026, 11, 23, 8, 0, tzinfo=TZ).timestamp()  # Monday, before opening
CATALOG = small_catalog()


def at(d: dt.date, hhmm: str) -> float:
    return dt.datetime.combine(d, dt.time.fromisoformat(hhmm), TZ).timestamp()


def slot(d: dt.date, hhmm: str, line: str = "soc", centre: str = "t1") -> str:
    return f"{centre}/{line}/{d:%Y%m%d}/{hhmm.replace(':', '')}"


def core(windows: int = 2) -> Centre:
    cfg = CentreConfig("t1", tuple(WindowSpec(n) for n in range(1, windows + 1)))
    centre = Centre(CATALOG, cfg)
    centre.apply(c.OpenWindow(1, "wang"), T0)
    return centre


def refused(centre: Centre, cmd: c.Command, now: float, code: str) -> Rejected:
    before = centre.to_dict()
    with pytest.raises(Rejected) as e:
        centre.apply(cmd, now)
    assert e.value.code == code, e.value.message
    assert centre.to_dict() == before
    assert e.value.message.count(" / ") >= 2  # zh-CN / zh-TW / English
    return e.value


def book(centre: Centre, resident: str, hhmm: str, now: float = T0, d: dt.date = MON,
         item: str = "SOC-1") -> str:
    centre.apply(c.Book(item, slot(d, hhmm, CATALOG.items[item].line), resident), now)
    return f"B{centre.booking_serial:04d}"


def test_slots_lie_within_opening_hours_and_capacity_comes_from_the_windows():
    centre = core(windows=2)
    slots = bk.day_slots(centre, MON)
    assert slots[0] == at(MON, "09:00") and slots[-1] == at(MON, "16:30") and len(slots) == 16
    assert bk.day_slots(centre, dt.date(2026, 11, 28)) == []  # Saturday: closed
    assert bk.capacity(centre, "soc") == 2  # both comprehensive windows serve social items
    refused(centre, c.Book("SOC-1", slot(MON, "08:30"), "r1"), T0, "no_such_slot")
    refused(centre, c.Book("SOC-1", slot(MON, "09:10"), "r1"), T0, "no_such_slot")
    refused(centre, c.Book("SOC-1", slot(dt.date(2026, 11, 28), "09:00"), "r1"), T0,
            "no_such_slot")


def test_bad_input_is_refused_with_nothing_changed():
    centre = core()
    book(centre, "r1", "10:00")
    cases = [
        (c.Book("SOC-1", "garbage", "r2"), "bad_slot"),
        (c.Book("SOC-1", "t1/soc/20261399/0900", "r2"), "bad_date"),
        (c.Book("SOC-1", slot(MON, "09:00", centre="other"), "r2"), "other_centre"),
        (c.Book("SOC-1", slot(MON, "09:00", line="med"), "r2"), "wrong_line"),
        (c.Book("SOC-1", slot(dt.date(2026, 11, 20), "09:00"), "r2"), "past_day"),
        (c.Book("SOC-1", slot(dt.date(2026, 12, 7), "09:00"), "r2"), "too_far"),
        (c.Book("NOPE", slot(MON, "09:00"), "r2"), "unknown_item"),
        (c.Book("SOC-1", slot(MON, "09:00"), ""), "bad_resident"),
        (c.Book("SOC-2", slot(MON, "11:00"), "r1"), None),  # another item: allowed
        (c.Book("SOC-1", slot(MON, "11:00"), "r1"), "already_booked"),
        (c.CancelBooking("B9999"), "unknown_booking"),
        (c.CheckIn(), "bad_field"),
        (c.CheckIn(booking="B0001", resident="r1"), "bad_field"),
    ]
    for cmd, code in cases:
        if code is None:
            centre.apply(cmd, T0)
        else:
            refused(centre, cmd, T0, code)
    refused(centre, c.Book("SOC-1", slot(MON, "09:00"), "r2"), at(MON, "09:15"), "past_slot")


def test_a_full_slot_is_refused_with_the_next_free_ones_offered():
    centre = core(windows=2)
    book(centre, "r1", "09:00")
    book(centre, "r2", "09:00")
    book(centre, "r3", "09:30")
    book(centre, "r4", "09:30")
    e = refused(centre, c.Book("SOC-1", slot(MON, "09:00"), "r5"), T0, "slot_full")
    assert e.detail["next"] == [slot(MON, "10:00"), slot(MON, "10:30"), slot(MON, "11:00")]
    # another line's slot has its own capacity
    centre.apply(c.Book("MED-1", slot(MON, "09:00", "med"), "r5"), T0)


def test_cancel_frees_the_place_and_the_residents_one_booking():
    centre = core(windows=1)
    code = book(centre, "r1", "09:00")
    refused(centre, c.Book("SOC-1", slot(MON, "09:00"), "r2"), T0, "slot_full")
    refused(centre, c.CancelBooking(code, resident="r2"), T0, "not_yours")
    centre.apply(c.CancelBooking(code, resident="r1"), T0 + 1)
    refused(centre, c.CancelBooking(code), T0 + 2, "booking_cancelled")
    book(centre, "r2", "09:00")
    book(centre, "r1", "09:30")
    assert bk.counts_of(centre, "20261123") == {"booked": 3, "cancelled": 1, "checked_in": 0,
                                                "late": 0, "no_show": 0}


def test_check_in_early_in_time_late_and_once():
    centre = core(windows=2)
    a = book(centre, "r1", "10:00")
    b = book(centre, "r2", "10:00")
    e = refused(centre, c.CheckIn(booking=a), at(MON, "09:49"), "too_early")
    assert e.detail["come_back"] == "09:50" and "09:50" in e.message
    # a walk-in came first; the booked resident checks in and goes ahead of it in the slot
    centre.apply(c.TakeTicket("SOC-1"), at(MON, "09:51"))
    centre.apply(c.CheckIn(booking=a), at(MON, "09:52"))
    t = centre.tickets[centre.bookings[a].ticket]
    assert t.priority is Priority.APPOINTMENT and t.appointment_at == at(MON, "10:00")
    refused(centre, c.CheckIn(booking=a), at(MON, "09:53"), "already_checked_in")
    centre.apply(c.CallNext(1), at(MON, "09:54"))
    assert centre.windows[1].ticket == t.id  # first in its slot
    # by card, late: a normal ticket; the booking was a no-show first, then came late
    centre.apply(c.TakeTicket("MED-1"), at(MON, "10:16"))  # any command: the sweep runs
    assert centre.bookings[b].state == bk.NO_SHOW
    assert bk.counts_of(centre, "20261123")["no_show"] == 1
    centre.apply(c.CheckIn(resident="r2"), at(MON, "10:20"))
    late = centre.tickets[centre.bookings[b].ticket]
    assert late.priority is Priority.NORMAL and centre.bookings[b].state == bk.LATE
    assert bk.counts_of(centre, "20261123") == {"booked": 2, "cancelled": 0, "checked_in": 1,
                                                "late": 1, "no_show": 0}
    refused(centre, c.CheckIn(resident="r3"), at(MON, "10:21"), "no_booking")


def test_a_future_days_booking_cannot_check_in_today():
    centre = core()
    code = book(centre, "r1", "09:00", d=MON + dt.timedelta(days=1))
    refused(centre, c.CheckIn(booking=code), at(MON, "09:00"), "not_today")


def test_signed_codes_verify_and_forged_ones_do_not():
    key = bk.derive_key(b"s" * 32, "t1")
    short, qr = bk.short_code(key, "t1", "B0012"), bk.qr_text(key, "t1", "B0012")
    assert bk.verify(key, "t1", short) == "B0012" == bk.verify(key, "t1", qr)
    assert bk.verify(key, "t1", " " + short.lower() + " ") == "B0012"
    other = bk.derive_key(b"x" * 32, "t1")
    for text in (bk.short_code(other, "t1", "B0012"), "B0013" + short[5:], qr[:-1] + "A",
                 "OWB1/t1/B0012", "", None, "x" * 500, bk.qr_text(other, "t1", "B0012")):
        with pytest.raises(Rejected) as e:
            bk.verify(key, "t1", text)
        assert e.value.code == "bad_code"
    with pytest.raises(Rejected) as e:
        bk.verify(key, "t1", bk.qr_text(key, "t2", "B0012"))
    assert e.value.code == "other_centre"


# ---- properties -----------------------------------------------------------------------
RES = ("r1", "r2", "r3", "r4", "r5", "r6")
DAYS = (MON, MON + dt.timedelta(days=1))
HHMM = ("09:00", "09:30", "10:00", "10:30")


def ops(data, n: int) -> list[tuple[float, c.Command]]:
    out, now = [], T0
    for _ in range(n):
        now += data.draw(st.floats(0, 1800))
        kind = data.draw(st.sampled_from(["book"] * 4 + ["cancel", "checkin", "card", "take",
                                                           "call"]))
        code = f"B{data.draw(st.integers(1, 12)):04d}"
        if kind == "book":
            item = data.draw(st.sampled_from(["SOC-1", "SOC-2", "MED-1"]))
            cmd: c.Command = c.Book(item, slot(data.draw(st.sampled_from(DAYS)),
                                               data.draw(st.sampled_from(HHMM)),
                                               CATALOG.items[item].line),
                                    data.draw(st.sampled_from(RES)))
        elif kind == "cancel":
            cmd = c.CancelBooking(code)
        elif kind == "checkin":
            cmd = c.CheckIn(booking=code)
        elif kind == "card":
            cmd = c.CheckIn(resident=data.draw(st.sampled_from(RES)))
        elif kind == "take":
            cmd = c.TakeTicket("SOC-1")
        else:
            cmd = c.CallNext(1)
        out.append((now, cmd))
    return out


def check_invariants(centre: Centre, now: float) -> None:
    places: dict[tuple[str, float], int] = {}
    mine: dict[tuple[str, str, str], int] = {}
    for b in centre.bookings.values():
        if b.state in bk.TAKEN:
            places[(b.line, b.slot)] = places.get((b.line, b.slot), 0) + 1
        if b.state in bk.ACTIVE:
            key = (b.resident, b.item, b.day)
            mine[key] = mine.get(key, 0) + 1
        if b.state == bk.BOOKED and b.day == centre.day:  # swept at every command
            assert b.slot + centre.policy.appointment_grace > now
    for (line, _), n in places.items():
        assert n <= bk.capacity(centre, line)
    assert all(n == 1 for n in mine.values())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_capacity_and_one_per_resident_hold_and_replay_and_snapshots_agree(data):
    centre = core(windows=1)
    done: list[tuple[float, c.Command]] = []
    for now, cmd in ops(data, data.draw(st.integers(5, 60))):
        before = centre.to_dict()
        try:
            centre.apply(cmd, now)
        except Rejected:
            assert centre.to_dict() == before
            continue
        done.append((now, cmd))
        check_invariants(centre, now)
    # a full replay of the accepted commands, through their journal records
    again = core(windows=1)
    for now, cmd in done:
        again.apply(c.from_record(json.loads(json.dumps(cmd.to_record()))), now)
    assert again.to_dict() == centre.to_dict()
    # a snapshot at any point, then the tail
    cut = data.draw(st.integers(0, len(done)))
    upto = core(windows=1)
    for now, cmd in done[:cut]:
        upto.apply(cmd, now)
    restored = Centre(CATALOG, upto.config)
    restore_centre(restored, json.loads(json.dumps(centre_state(upto))))
    assert restored.to_dict() == upto.to_dict()
    for now, cmd in done[cut:]:
        restored.apply(cmd, now)
    assert restored.to_dict() == centre.to_dict()


# ---- the app: journal records, device check-in, snapshot through the store's codec ----
def app() -> HubApp:
    centre = Centre(CATALOG, CentreConfig("t1", (WindowSpec(1), WindowSpec(2))))
    return HubApp(centre, Registry([DeviceSpec("box-1", "box"),
                                    DeviceSpec("kp-1", "keypad", 1)]), "boot1")


def evt(a: HubApp, dev: str, seq: int, typ: str, now: float, **f):
    return a.handle(proto.device_topic("t1", dev, "evt"),
                    proto.encode("evt", proto.event(dev, seq, typ, **f)), now)


def test_journaled_device_check_in_prints_and_a_restart_gives_the_same_state():
    live = app()
    live.booking_key = key = bk.derive_key(b"k" * 32, "t1")
    records: list[Record] = []
    records += live.operate(c.Book("SOC-1", slot(MON, "10:00"), "r1"), T0).records
    records += live.operate(c.Book("SOC-1", slot(MON, "10:00"), "r2"), T0 + 1).records
    assert records[0].body == {"op": "book", "item": "SOC-1", "slot": slot(MON, "10:00"),
                               "resident": "r1"}
    step = evt(live, "box-1", 1, "checkin", at(MON, "09:40"),
               code=bk.qr_text(key, "t1", "B0001"))
    assert not step.records  # too early: refused, nothing journaled
    (err,) = [p for p in step.publishes if p.topic.endswith("/err")]
    assert json.loads(err.payload)["code"] == "too_early"
    step = evt(live, "box-1", 2, "checkin", at(MON, "09:55"), code="B0001-XXXXXX")
    assert not step.records and json.loads(step.publishes[0].payload)["code"] == "bad_code"
    step = evt(live, "box-1", 3, "checkin", at(MON, "09:55"),
               code=bk.qr_text(key, "t1", "B0001"))
    records += step.records
    kinds = {json.loads(p.payload).get("type") for p in step.publishes}
    assert {"take", "print"} <= kinds  # answered like a take: res and the print command
    assert records[-1].body["op"] == "checkin" and records[-1].body["booking"] == "B0001"
    step = evt(live, "box-1", 4, "checkin", at(MON, "09:56"),
               code=bk.qr_text(key, "t1", "B0001"))
    assert not step.records  # a replayed code
    records += evt(live, "box-1", 5, "checkin", at(MON, "09:57"), resident="r2").records
    records += evt(live, "kp-1", 1, "open", at(MON, "10:00"), clerk="wang").records
    records += evt(live, "kp-1", 2, "call", at(MON, "10:01")).records
    assert live.centre.bookings["B0002"].state == bk.CHECKED_IN

    replayed = app()
    replayed.replay([Record(r.pos, r.ts, r.dev, r.seq, json.loads(json.dumps(r.body)))
                     for r in records])
    assert replayed.centre.to_dict() == live.centre.to_dict()
    for cut in range(len(records) + 1):
        upto = app()
        upto.replay(records[:cut])
        stored, _ = snap_encode(upto.snapshot())
        restored = app()
        restored.restore(snap_decode(stored, hashlib.sha256(stored).hexdigest(),
                                     snap_mod.CODEC))
        restored.replay(records[cut:])
        assert restored.centre.to_dict() == live.centre.to_dict()
