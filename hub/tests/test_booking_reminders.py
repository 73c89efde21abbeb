"""Booking reminders (issue 16, hub/core/reminders.py): a booking made with a mobile number
(sealed; never clear) is reminded `reminder_minutes` before its slot and/or the day before
at `reminder_day_before`, each exactly once, through the notice channels; never for a
booking cancelled or checked in (one already due is dropped), nor one made after the
reminder's moment; the journal replays to the same state and a snapshot plus the tail too;
the words in zh-CN, zh-TW and English carry the booking's signed code; a purge removes the
sealed number once the booking's day is past retention. Through the hub process with SMPP
and a restart: test_booking_reminders_e2e.py."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from onewindow.hub.app import HubApp
from onewindow.hub.app.notices import due_step
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import booking as bk
from onewindow.hub.core import commands as c
from onewindow.hub.core import notices, reminders
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.devices import Registry
from onewindow.hub.notify.dispatcher import notice_texts, page_notices
from onewindow.hub.store.journal import Journal, Record
from onewindow.hub.store.retention import Retention, plan

TZ = dt.timezone(dt.timedelta(hours=8))
MON = dt.datetime(2026, 11, 23, tzinfo=TZ)  # a Monday; open 09:00-17:00 each weekday
RULES = notices.NoticeRules(reminder_minutes=60, reminder_day_before="18:00")
CHANNELS = ("page", "sms")
PHONE = "p1.sealed-number-stand-in"
KEY = bk.derive_key(b"s" * 32, "t")
CATALOG = load_catalog()


def at(day: int, h: int, m: int = 0) -> float:
    return (MON + dt.timedelta(days=day, hours=h, minutes=m)).timestamp()


def slot(day: int, h: int, m: int = 0) -> str:
    return f"t/social/{MON + dt.timedelta(days=day):%Y%m%d}/{h:02d}{m:02d}"


class Hub:
    """The app as the runner drives it: every step's records kept (the journal), and the
    notices asked for after each step and at any time (the runner's timer)."""

    def __init__(self) -> None:
        self.app = HubApp(Centre(CATALOG, CentreConfig("t", (WindowSpec(1), WindowSpec(2)))),
                          Registry([]), "b1")
        self.app.booking_key = KEY
        self.records: list[Record] = []

    def do(self, cmd: c.Command, now: float) -> None:
        self.records += self.app.operate(cmd, now).records

    def tick(self, now: float) -> list[tuple[str, int]]:
        """What the runner's timer journals at `now`: (booking, occurrence) per reminder."""
        step = due_step(self.app, RULES, CHANNELS, now)
        self.records += step.records
        return [(r.body["booking"], r.body["occurrence"]) for r in step.records
                if r.body["op"] == "booking_notice"]

    def settle(self, now: float) -> None:
        for nid, ch in notices.pending(self.app.centre):
            n = self.app.centre.notices[nid]
            outcome = "sent" if notices.wanted(self.app.centre, n) else "dropped"
            self.do(c.NoticeOutcome(nid, ch, outcome, 1), now)

    def outcomes(self) -> list[tuple[str, str, str]]:
        return [(r.body["notice"], r.body["channel"], r.body["outcome"]) for r in self.records
                if r.body["op"] == "notice_outcome"]


def test_the_day_before_and_the_lead_reminders_go_once_each_across_the_days_close():
    h = Hub()
    h.do(c.Book("SOC-001", slot(1, 10), "ph:aa", PHONE, "zh-TW"), at(0, 10))
    assert h.app.centre.contacts["B0001"].phone == PHONE
    assert h.tick(at(0, 17, 59)) == []
    assert h.tick(at(0, 18)) == [("B0001", reminders.DAY_BEFORE)]
    assert h.tick(at(0, 18, 1)) == []  # once
    h.settle(at(0, 18, 1))
    h.do(c.TakeTicket("SOC-003"), at(1, 8, 30))  # the day rolls over: the booking is held
    assert "B0001" in h.app.centre.contacts
    assert h.tick(at(1, 8, 59)) == []
    assert h.tick(at(1, 9)) == [("B0001", reminders.LEAD)]
    assert h.tick(at(1, 9, 30)) == []
    h.settle(at(1, 9, 1))
    assert sorted(h.outcomes()) == sorted(
        (notices.notice_id("B0001", reminders.KIND, occ), ch, "sent")
        for occ in (0, 1) for ch in CHANNELS)
    # once checked in, the contact and its notices leave at the next day's close
    h.do(c.OpenWindow(1), at(1, 9, 55))
    h.do(c.CheckIn(resident="ph:aa", source=None), at(1, 9, 55))
    h.do(c.TakeTicket("SOC-003"), at(2, 8, 30))
    assert "B0001" not in h.app.centre.contacts
    assert not [n for n in h.app.centre.notices.values() if n.ticket == "B0001"]


@pytest.mark.parametrize("end", ["cancel", "checkin"])
def test_nothing_for_a_booking_cancelled_or_checked_in_and_one_due_is_dropped(end):
    h = Hub()
    h.do(c.Book("SOC-001", slot(0, 14), "ph:aa", PHONE), at(0, 10))
    assert h.tick(at(0, 13)) == [("B0001", reminders.LEAD)]  # due, not yet sent
    if end == "cancel":
        h.do(c.CancelBooking("B0001"), at(0, 13, 1))
    else:
        h.do(c.OpenWindow(1), at(0, 13, 50))
        h.do(c.CheckIn(booking="B0001"), at(0, 13, 50))
    h.settle(at(0, 13, 51))
    assert {o for _, _, o in h.outcomes()} == {"dropped"}
    h.do(c.Book("SOC-003", slot(1, 14), "ph:aa", PHONE), at(0, 13, 52))
    if end == "cancel":
        h.do(c.CancelBooking("B0002"), at(0, 14))
    assert h.tick(at(0, 18)) == ([] if end == "cancel" else [("B0002", reminders.DAY_BEFORE)])


def test_none_for_a_booking_made_after_the_moment_without_a_phone_or_past_its_slot():
    h = Hub()
    h.do(c.Book("SOC-001", slot(0, 11), "ph:aa", PHONE), at(0, 10, 30))  # inside the hour
    h.do(c.Book("SOC-001", slot(0, 15), "ph:bb"), at(0, 10, 30))  # no number
    h.do(c.Book("SOC-001", slot(1, 9, 30), "ph:cc", PHONE), at(0, 19))  # after 18:00
    assert h.tick(at(0, 10, 59)) == [] and h.tick(at(0, 14, 30)) == []
    assert "B0002" not in h.app.centre.contacts
    assert h.tick(at(1, 8, 30)) == [("B0003", reminders.LEAD)]
    h.settle(at(1, 8, 30))
    assert h.tick(at(1, 9, 30)) == []  # the slot began


def test_off_when_configured_off_and_bad_settings_are_refused():
    h = Hub()
    h.do(c.Book("SOC-001", slot(1, 10), "ph:aa", PHONE), at(0, 10))
    off = notices.NoticeRules(reminder_minutes=0)
    assert reminders.due(h.app.centre, off, at(1, 9, 59), CHANNELS) == []
    for bad in ({"reminder_minutes": -1}, {"reminder_minutes": 2000},
                {"reminder_minutes": True}, {"reminder_day_before": "25:00"},
                {"reminder_day_before": "18h"}, {"reminder_day_before": 18}):
        with pytest.raises(notices.RulesError, match="reminder"):
            notices.NoticeRules.from_table(bad)
    r = notices.NoticeRules.from_table({"reminder_minutes": 30, "reminder_day_before": "19:30"})
    assert (r.reminder_minutes, r.reminder_day_before) == (30, "19:30")


def test_bad_commands_change_nothing():
    h = Hub()
    h.do(c.Book("SOC-001", slot(1, 10), "ph:aa", PHONE), at(0, 10))
    h.do(c.Book("SOC-003", slot(1, 10), "ph:bb"), at(0, 10))
    before = h.app.centre.to_dict()
    for cmd in (reminders.BookingReminderDue("B0009", 0, CHANNELS),  # unknown
                reminders.BookingReminderDue("B0002", 0, CHANNELS),  # no contact
                reminders.BookingReminderDue("B0001", 0, ("fax",)),
                reminders.BookingReminderDue("B0001", 2, CHANNELS),
                c.Book("SOC-003", slot(1, 11), "ph:cc", "13812345678"),  # not sealed
                c.Book("SOC-003", slot(1, 11), "ph:cc", PHONE, "fr")):
        with pytest.raises(Rejected):
            h.app.operate(cmd, at(0, 18))
    assert h.app.centre.to_dict() == before
    h.do(reminders.BookingReminderDue("B0001", 1, CHANNELS), at(0, 18))
    with pytest.raises(Rejected, match="already due"):
        h.app.operate(reminders.BookingReminderDue("B0001", 1, CHANNELS), at(0, 18))


def test_the_journal_replays_to_the_same_state_and_a_snapshot_plus_the_tail_too():
    h = Hub()
    h.do(c.Book("SOC-001", slot(1, 10), "ph:aa", PHONE, "en"), at(0, 10))
    h.tick(at(0, 18))
    cut = len(h.records)
    snap = json.loads(json.dumps(h.app.snapshot()))
    h.settle(at(0, 18, 1))
    h.do(c.TakeTicket("SOC-003"), at(1, 8, 30))
    h.tick(at(1, 9))
    replayed = HubApp(Centre(CATALOG, h.app.centre.config), Registry([]), "b2")
    replayed.replay(h.records)
    assert replayed.centre.to_dict() == h.app.centre.to_dict()
    restored = HubApp(Centre(CATALOG, h.app.centre.config), Registry([]), "b3")
    restored.restore(snap)
    restored.replay(h.records[cut:])
    assert restored.centre.to_dict() == h.app.centre.to_dict()
    assert notices.pending(restored.centre) == notices.pending(h.app.centre) != []


def test_the_words_in_three_languages_carry_the_signed_code_and_the_page_lists_them():
    h = Hub()
    h.do(c.Book("SOC-001", slot(1, 10, 30), "ph:aa", PHONE), at(0, 10))
    h.tick(at(0, 18))
    h.settle(at(0, 18))
    [n] = [n for n in h.app.centre.notices.values() if n.kind == reminders.KIND]
    code = bk.short_code(KEY, "t", "B0001")
    texts = notice_texts(h.app.centre, n, "某中心", KEY)
    assert texts.zh_cn == (f"【某中心】预约提醒：2026-11-24 10:30，预约码{code}。"
                           "请提前10分钟到中心签到。")
    assert texts.zh_tw.startswith("【某中心】預約提醒：2026-11-24 10:30，預約碼" + code)
    assert texts.en.startswith(f"【某中心】Booking reminder: 2026-11-24 10:30, code {code}.")
    [shown] = page_notices(h.app, "B0001")
    assert shown["kind"] == reminders.KIND and code in shown["zh_CN"] and PHONE not in str(shown)


def test_a_purge_removes_the_sealed_number_once_the_bookings_day_is_past_retention(tmp_path):
    j = Journal(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        h = Hub()
        h.do(c.Book("SOC-001", slot(1, 10), "ph:aa", PHONE), at(0, 10))
        h.do(c.Book("SOC-003", slot(4, 10), "ph:bb", "p1.another-sealed-one"), at(0, 10))
        j.append(h.records)
        # 3 days of retention, purged on day 6: the first booking's day (1) is past it,
        # the second's (4) is not, though both were made on day 0
        p = plan(j, [], tmp_path / "files", Retention(resident_days=3), at(6, 12))
        assert p.phone_set == {PHONE}
        [body] = p.rewrite.values()
        assert "phone" not in body and body["slot"] == slot(1, 10)
        replayed = HubApp(Centre(CATALOG, h.app.centre.config), Registry([]), "b2")
        replayed.replay([Record(r.pos, r.ts, r.dev, r.seq,
                                p.rewrite.get(r.pos, r.body)) for r in h.records])
        assert "B0001" not in replayed.centre.contacts and "B0002" in replayed.centre.contacts
    finally:
        j.close()
