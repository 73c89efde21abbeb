"""The promised cases' state machine in the core (issue 17, hub/core/cases.py): routed to
the item's department at opening, returned for named materials with a reason, reassigned
with a reason, approved (ready for pick-up), handed over; every bad step refused with a
zh / en message and nothing changed; old journal records replay by their old rules."""

import copy
import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from onewindow.hub.core import commands as c
from onewindow.hub.core.catalog import Catalog
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.effects import CaseChanged, TicketIssued
from onewindow.hub.core.rejected import Rejected

from .catalogs import SMALL

CST = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=CST).timestamp()  # a Monday, 09:00


def catalog() -> Catalog:
    """SMALL with departments of their own: SOC-2 approved by 'pension' and with three
    materials; CIV-1 by its line's department 'civ'."""
    data: dict[str, Any] = copy.deepcopy(SMALL)
    data["departments"] = [{"id": d, "zh": z, "en": e} for d, z, e in (
        ("soc", "社保科", "Social"), ("med", "医保科", "Medical"), ("civ", "民政科", "Civil"),
        ("pension", "养老科", "Pensions"))]
    for item in data["items"]:
        if item["id"] == "SOC-2":
            item["department"] = "pension"
            item["materials"] = [{"zh": z, "en": e} for z, e in (
                ("身份证", "ID card"), ("户口簿", "Household register"),
                ("申请表", "Application form"))]
    return Catalog.from_dict(data)


def centre() -> Centre:
    core = Centre(catalog(), CentreConfig("t", (WindowSpec(1, "comprehensive"),)))
    core.apply(c.OpenWindow(1, clerk="wang"), T0)
    return core


def accept(core: Centre, item: str = "SOC-2", now: float = T0) -> str:
    """A promised item completed at window 1: its case id."""
    effects = core.apply(c.TakeTicket(item), now)
    tid = next(e.ticket for e in effects if isinstance(e, TicketIssued))
    core.apply(c.CallNext(1), now + 1)
    core.apply(c.Complete(1), now + 60)
    assert tid in core.cases
    return tid


def update(core: Centre, case: str, action: str, now: float = T0 + 600, **kw):
    kw.setdefault("by", "li")
    return core.apply(c.CaseUpdate(case, action, **kw), now)


def refused(core: Centre, cmd: c.CaseUpdate, code: str) -> Rejected:
    """`cmd` is refused with `code` and a message in Chinese and English, and the core's
    state is exactly as before."""
    before = core.to_dict()
    with pytest.raises(Rejected) as err:
        core.apply(cmd, T0 + 700)
    assert err.value.code == code
    assert " / " in err.value.message and any("\u4e00" <= ch <= "\u9fff"
                                              for ch in err.value.message)
    assert core.to_dict() == before
    return err.value


def test_a_case_opens_at_the_items_department():
    core = centre()
    assert core.cases[accept(core)].department == "pension"
    assert core.cases[accept(core, "CIV-1", T0 + 100)].department == "civ"  # its line


def test_the_whole_loop_returned_resubmitted_reassigned_approved_handed_over():
    core = centre()
    k = accept(core)
    case = core.cases[k]
    assert update(core, k, "returned", reason="户口簿页缺失", materials=(1, 2)) == [
        CaseChanged(k, "returned", "returned")]
    assert (case.state, case.return_reason, case.return_materials) == (
        "returned", "户口簿页缺失", (1, 2))
    update(core, k, "reassigned", reason="属社保科", department="soc")
    assert (case.state, case.department) == ("returned", "soc")  # the state stays
    update(core, k, "resubmitted")
    assert case.state == "open" and case.return_materials == (1, 2)  # the last return
    update(core, k, "approved", now=T0 + 900)
    assert (case.state, case.ready_at, case.closed_at) == ("ready", T0 + 900, None)
    update(core, k, "handed_over", now=T0 + 1000, by="card")
    assert (case.state, case.closed_at, case.handed_by) == ("closed", T0 + 1000, "card")
    update(core, k, "reopened", now=T0 + 1100)
    assert (case.state, case.ready_at, case.handed_by, case.closed_at) == (
        "open", None, None, None)
    update(core, k, "closed", now=T0 + 1200)  # closed directly, nothing to collect
    assert case.state == "closed" and case.closed_at == T0 + 1200


@pytest.mark.parametrize("cmd, code", [
    (c.CaseUpdate("K", "reassigned", "wrong desk", department="nowhere"), "unknown_department"),
    (c.CaseUpdate("K", "reassigned", "", department="soc"), "missing_reason"),
    (c.CaseUpdate("K", "reassigned", "again", department="pension"), "bad_field"),
    (c.CaseUpdate("K", "returned", "  ", materials=(0,)), "missing_reason"),
    (c.CaseUpdate("K", "returned", "missing page"), "missing_materials"),
    (c.CaseUpdate("K", "returned", "missing page", materials=(3,)), "unknown_material"),
    (c.CaseUpdate("K", "returned", "missing page", materials=(-1,)), "unknown_material"),
    (c.CaseUpdate("K", "returned", "missing page", materials=(0, 0)), "unknown_material"),
    (c.CaseUpdate("K", "approved", materials=(0,)), "bad_field"),
    (c.CaseUpdate("K", "approved", department="soc"), "bad_field"),
    (c.CaseUpdate("K", "approved", "x" * 501), "bad_field"),
    (c.CaseUpdate("K", "handed_over", by="li"), "bad_case_state"),  # open, not ready
    (c.CaseUpdate("K", "resubmitted", by="li"), "bad_case_state"),
    (c.CaseUpdate("K", "reopened", by="li"), "bad_case_state"),
    (c.CaseUpdate("K", "approve", by="li"), "bad_field"),  # no such action
    (c.CaseUpdate("nope", "approved", by="li"), "unknown_case"),
    (c.CaseUpdate("K", "approved", by=""), "bad_field"),
])
def test_bad_steps_are_refused_and_change_nothing(cmd, code):
    core = centre()
    k = accept(core)
    refused(core, replace(cmd, case=k if cmd.case == "K" else cmd.case), code)


def test_approve_only_an_open_case_and_hand_over_needs_who():
    core = centre()
    k = accept(core)
    update(core, k, "returned", reason="r", materials=(0,))
    e = refused(core, c.CaseUpdate(k, "approved", by="li"), "bad_case_state")
    assert "退回补正" in e.message and "returned" in e.message
    update(core, k, "resubmitted")
    update(core, k, "approved")
    refused(core, c.CaseUpdate(k, "approved", by="li"), "bad_case_state")
    refused(core, c.CaseUpdate(k, "reassigned", "x", department="soc", by="li"),
            "bad_case_state")  # ready: at the pick-up window, no department's
    refused(core, c.CaseUpdate(k, "closed", by="li"), "bad_case_state")
    refused(core, c.CaseUpdate(k, "handed_over"), "bad_field")  # nobody signed it off


def test_an_item_without_materials_is_returned_with_a_reason_alone():
    core = centre()
    k = accept(core, "CIV-1")
    refused(core, c.CaseUpdate(k, "returned", "x", materials=(0,), by="li"),
            "unknown_material")
    update(core, k, "returned", reason="签字不清")
    assert core.cases[k].return_materials == ()


def test_records_round_trip_and_old_records_replay_by_their_rules():
    cmd = c.CaseUpdate("K", "returned", "r", by="li", materials=(0, 2))
    rec = cmd.to_record()
    assert rec == {"op": "case", "case": "K", "action": "returned", "reason": "r",
                   "by": "li", "materials": (0, 2)}
    assert c.from_record(rec) == cmd
    # A record of the old page: no `by`, a return with no reason nor materials. It replays
    # as it was decided then, and is written back as it was.
    old = {"op": "case", "case": "K", "action": "returned", "reason": ""}
    back = c.from_record(old)
    assert back.before_loop and back.to_record() == old
    core = centre()
    k = accept(core)
    core.apply(c.from_record({**old, "case": k}), T0 + 600)
    assert core.cases[k].state == "returned"
    # The same step written today needs its reason: the marker is the `by` key.
    refused(core, c.from_record({**old, "case": k, "action": "reassigned", "by": None}),
            "missing_reason")


def test_an_archived_case_from_before_the_loop_is_reopened_at_its_items_department():
    core = centre()
    k = accept(core)
    update(core, k, "closed")
    core.apply(c.TakeTicket("SOC-1"), T0 + 2 * 86400)  # the day's close archives it
    assert k not in core.cases
    old = {"id": k, "ticket": k, "item": "SOC-2", "opened_at": T0 + 60,
           "due_day": "2026-11-30", "resident": None, "state": "closed",
           "closed_at": T0 + 600}
    core.apply(c.CaseUpdate(k, "reopened", restore=old), T0 + 2 * 86400 + 5)
    case = core.cases[k]
    assert (case.state, case.department, case.return_materials) == ("open", "pension", ())
    # A history row's department gone from the catalog, materials as the column holds them.
    update(core, k, "closed", now=T0 + 2 * 86400 + 6)
    core.apply(c.TakeTicket("SOC-1"), T0 + 4 * 86400)
    row = {**old, "department": "gone", "ready_at": None, "handed_by": None,
           "return_reason": "r", "return_materials": "0,2"}
    core.apply(c.CaseUpdate(k, "reopened", restore=row, by="li"), T0 + 4 * 86400 + 5)
    assert (core.cases[k].department, core.cases[k].return_materials) == ("pension", (0, 2))


def test_archived_data_of_the_wrong_shape_is_refused():
    core = centre()
    k = accept(core)
    update(core, k, "closed")
    core.apply(c.TakeTicket("SOC-1"), T0 + 2 * 86400)
    bad = {"id": k, "ticket": k, "item": "SOC-2", "opened_at": T0, "due_day": "2026-11-30",
           "resident": None, "state": "closed", "closed_at": T0, "ready_at": "soon"}
    refused(core, c.CaseUpdate(k, "reopened", restore=bad, by="li"), "bad_field")
    refused(core, c.CaseUpdate(k, "reopened", restore={**bad, "ready_at": None,
                                                       "colour": "red"}, by="li"),
            "bad_field")
