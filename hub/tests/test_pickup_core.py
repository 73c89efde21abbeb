"""The resident's side of the case loop in the core (issue 17, hub/core/pickup.py and the
case notices of hub/core/notices.py): signed case codes, pick-up tickets by code or by
card for ready cases only and only to their holder, the case's contact and its notices
(returned for material, ready for pick-up) each once per return or approval, kept across
the day's close while the case is held, and all of it in the snapshot."""

import copy
import datetime as dt
from typing import Any

import pytest

from onewindow.hub.core import commands as c
from onewindow.hub.core import notices, pickup
from onewindow.hub.core.catalog import Catalog
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.effects import TicketIssued
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.core.snapshot import centre_state, restore_centre

from .catalogs import SMALL

CST = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=CST).timestamp()  # a Monday, 09:00
KEY = b"k" * 32
CARD = "card-token-of-the-applicant"
PHONE = "p1.sealed-number"


def catalog() -> Catalog:
    data: dict[str, Any] = copy.deepcopy(SMALL)
    data["window_kinds"].append({"id": "pickup", "zh": "取件窗口", "en": "Pick-up window"})
    data["items"].append({"id": "PICK", "line": "civ", "zh": "领取办结证照", "en": "Pick-up",
                          "kind": "instant", "minutes": 2, "window_kinds": ["pickup"]})
    for item in data["items"]:
        if item["id"] == "SOC-2":
            item["materials"] = [{"zh": z, "en": e} for z, e in (
                ("身份证", "ID card"), ("户口簿", "Household register"),
                ("申请表", "Application form"))]
    return Catalog.from_dict(data)


def centre() -> Centre:
    core = Centre(catalog(), CentreConfig("t", (WindowSpec(1, "comprehensive"),
                                                WindowSpec(7, "pickup")),
                                          pickup_item="PICK"))
    core.apply(c.OpenWindow(1, clerk="wang"), T0)
    core.apply(c.OpenWindow(7, clerk="zhao"), T0)
    return core


def accept(core: Centre, now: float = T0, resident: str | None = CARD) -> str:
    effects = core.apply(c.TakeTicket("SOC-2", resident=resident), now)
    tid = next(e.ticket for e in effects if isinstance(e, TicketIssued))
    core.apply(c.CallNext(1), now + 1)
    core.apply(c.Complete(1), now + 60)
    return tid


def act(core: Centre, case: str, action: str, now: float, **kw) -> None:
    core.apply(c.CaseUpdate(case, action, by="li", **kw), now)


def refused(core: Centre, cmd: c.Command, code: str, now: float = T0 + 5000) -> Rejected:
    before = core.to_dict()
    with pytest.raises(Rejected) as err:
        core.apply(cmd, now)
    assert err.value.code == code
    assert core.to_dict() == before
    return err.value


def test_a_case_code_names_its_case_and_a_forged_one_is_refused():
    code = pickup.case_code(KEY, "t", "20261123-A001")
    assert code.startswith("20261123-A001-") and len(code) == len("20261123-A001-") + 8
    assert pickup.verify_code(KEY, "t", code) == "20261123-A001"
    assert pickup.verify_code(KEY, "t", code.lower()) == "20261123-A001"  # typed lower case
    qr = pickup.case_qr(KEY, "t", "20261123-A001")
    assert pickup.verify_code(KEY, "t", qr) == "20261123-A001"
    forged = code[:-1] + ("A" if code[-1] != "A" else "B")
    for bad in (forged, "20261123-A002-" + code[-8:], "", None, "x" * 500,
                pickup.case_code(b"o" * 32, "t", "20261123-A001")):
        with pytest.raises(Rejected) as err:
            pickup.verify_code(KEY, "t", bad)
        assert err.value.code == "bad_code"
    with pytest.raises(Rejected) as err:
        pickup.verify_code(KEY, "t", pickup.case_qr(KEY, "other", "20261123-A001"))
    assert err.value.code == "other_centre"
    with pytest.raises(Rejected) as err:
        pickup.verify_code(None, "t", code)
    assert err.value.code == "no_case_key"


def test_pick_up_by_code_or_card_for_a_ready_case_only_and_only_its_holders_card():
    core = centre()
    case = accept(core)
    ask = pickup.PickupTicket((case,), "PICK", "code", source="kiosk-1")
    err = refused(core, ask, "case_not_ready")
    assert "不能领取" in err.message and "not ready" in err.message
    act(core, case, "approved", T0 + 3600)
    refused(core, pickup.PickupTicket((case,), "PICK", "card", resident="someone-else"),
            "not_your_case")
    refused(core, pickup.PickupTicket((case,), "PICK", "card"), "not_your_case")
    refused(core, pickup.PickupTicket(("20261123-Z999",), "PICK", "code"), "unknown_case")
    refused(core, pickup.PickupTicket((case,), "PICK", "bank"), "bad_field")
    effects = core.apply(pickup.PickupTicket((case,), "PICK", "card", resident=CARD,
                                             source="kiosk-1"), T0 + 3700)
    tid = next(e.ticket for e in effects if isinstance(e, TicketIssued))
    t = core.tickets[tid]
    assert t.item == "PICK" and t.source == "kiosk-1" and core.pickups[tid] == (case,)
    assert core.reach(t) == {7}  # the pick-up window, not the comprehensive one
    err = refused(core, ask, "pickup_exists")
    assert err.detail["ticket"] == t.number
    assert pickup.pickup_windows(core, "PICK") == [7]
    # called at the pick-up window and handed over, signed off by the card
    core.apply(c.CallNext(7), T0 + 3800)
    assert core.windows[7].ticket == tid
    act(core, case, "handed_over", T0 + 3900)
    assert core.cases[case].state == "closed" and core.cases[case].closed_at == T0 + 3900


def test_a_card_covers_all_the_residents_ready_cases_on_one_ticket():
    core = centre()
    first, second = accept(core), accept(core, T0 + 120)
    other = accept(core, T0 + 240, resident="another-card")
    for k in (first, second, other):
        act(core, k, "approved", T0 + 3600)
    assert pickup.ready_cases(core, CARD) == [first, second]
    effects = core.apply(pickup.PickupTicket(tuple(pickup.ready_cases(core, CARD)), "PICK",
                                             "card", resident=CARD), T0 + 3700)
    tid = next(e.ticket for e in effects if isinstance(e, TicketIssued))
    assert core.pickups[tid] == (first, second) and pickup.ready_cases(core, CARD) == []


def test_case_notices_once_per_return_and_approval_and_only_with_a_contact():
    core = centre()
    case = accept(core, resident=None)
    act(core, case, "returned", T0 + 600, reason="照片不清晰", materials=(0, 2))
    assert notices.case_due(core, [(case, "returned")], 7) == []  # no contact yet
    refused(core, pickup.CaseContact(case, "13812345678"), "bad_field")  # never in clear
    refused(core, pickup.CaseContact(case, PHONE, "fr"), "bad_field")
    core.apply(pickup.CaseContact(case, PHONE, "zh-TW"), T0 + 610)
    due = notices.case_due(core, [(case, "returned")], 7)
    assert [(d.kind, d.occurrence, d.materials) for d in due] == [
        ("case_returned", 0, (0, 2))]
    core.apply(due[0], T0 + 611)
    refused(core, due[0], "notice_exists")
    n = core.notices[notices.notice_id(case, "case_returned", 0)]
    assert n.channels == {"sms": "due", "page": "due"} and notices.wanted(core, n)
    act(core, case, "resubmitted", T0 + 700)
    assert not notices.wanted(core, n)  # no longer returned: dropped if still unsent
    act(core, case, "returned", T0 + 800, reason="仍缺申请表", materials=(2,))
    again = notices.case_due(core, [(case, "returned")], 7)
    assert [(d.occurrence, d.materials) for d in again] == [(1, (2,))]
    core.apply(again[0], T0 + 801)
    act(core, case, "resubmitted", T0 + 900)
    act(core, case, "approved", T0 + 1000)
    ready = notices.case_due(core, [(case, "approved"), (case, "resubmitted")], 7)
    assert [(d.kind, d.window, d.occurrence) for d in ready] == [("ready_for_pickup", 7, 0)]
    core.apply(ready[0], T0 + 1001)
    assert notices.pending(core) and all(
        nid.startswith(f"n1:{case}:") for nid, _ in notices.pending(core))


def test_a_case_contact_and_notices_stay_over_the_days_close_and_in_the_snapshot():
    core = centre()
    case = accept(core, resident=None)
    core.apply(pickup.CaseContact(case, PHONE), T0 + 100)
    act(core, case, "approved", T0 + 200)
    core.apply(notices.case_due(core, [(case, "approved")], 7)[0], T0 + 201)
    core.apply(pickup.PickupTicket((case,), "PICK", "code"), T0 + 300)
    core.apply(c.TakeTicket("SOC-1"), T0 + 86400)  # the next day: yesterday closes
    assert case not in core.tickets and case in core.contacts
    assert notices.notice_id(case, "ready_for_pickup", 0) in core.notices
    assert core.pickups == {}  # the pick-up ticket left with its day
    restored = Centre(core.catalog, core.config)
    restore_centre(restored, centre_state(core))
    assert restored.to_dict() == core.to_dict()
    # a new pick-up ticket today
    effects = restored.apply(pickup.PickupTicket((case,), "PICK", "code"), T0 + 86500)
    tid = next(e.ticket for e in effects if isinstance(e, TicketIssued))
    restored2 = Centre(core.catalog, core.config)
    restore_centre(restored2, centre_state(restored))
    assert restored2.to_dict() == restored.to_dict() and restored2.pickups[tid] == (case,)
    # closed: its contact leaves at the next close
    act(restored2, case, "handed_over", T0 + 86600)
    restored2.apply(c.TakeTicket("SOC-1"), T0 + 2 * 86400)
    assert case not in restored2.contacts and not restored2.notices


def test_records_replay_to_the_same_state():
    core = centre()
    case = accept(core, resident=None)
    cmds = [pickup.CaseContact(case, PHONE, "en"),
            pickup.PickupTicket((case,), "PICK", "card", resident="x")]
    for cmd in cmds:
        rebuilt = c.from_record(cmd.to_record())
        assert rebuilt == cmd
    due = notices.CaseNoticeDue(case, "case_returned", 1, (0, 2), None, ("sms", "page"))
    assert c.from_record(due.to_record()) == due


@pytest.mark.parametrize(("table", "message"), [
    ({"item": 7}, "[pickup] item"),
    ({"items": "GEN-099"}, "unknown key"),
    ({"item": "GEN-099", "uncollected_days": 0}, "uncollected_days"),
    ({"item": "GEN-099", "uncollected_days": True}, "uncollected_days"),
    ({"item": "NOPE-1"}, "not an item of the catalog"),
])
def test_bad_pickup_settings_are_configuration_errors(table, message):
    from onewindow.hub.catalog import load_catalog
    from onewindow.hub.config import ConfigError, check, from_dict

    data = {"centre": {"id": "t"}, "windows": [{"number": 1}], "pickup": table}
    with pytest.raises(ConfigError) as err:
        check(from_dict(data), load_catalog())
    assert message in str(err.value)
    ok = from_dict({**data, "pickup": {"item": "GEN-099", "uncollected_days": 3}})
    assert (ok.centre.pickup_item, ok.centre.pickup_uncollected_days) == ("GEN-099", 3)
