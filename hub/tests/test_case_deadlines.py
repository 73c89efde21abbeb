"""Deadlines that someone watches (hub/core/deadlines.py): overdue, due soon and
uncollected cases by the centre's working days; the dashboard's alerts per department
(hub/web/case_alerts.py); the staff report's closed-loop dimension on the loop's real
steps (hub/report/staff.py)."""

import datetime as dt

from onewindow.hub.core import commands as c
from onewindow.hub.core import deadlines
from onewindow.hub.core.day_calendar import DayCalendar
from onewindow.hub.core.model import Case
from onewindow.hub.report.staff import CaseEvent, Facts, compute
from onewindow.hub.web.case_alerts import case_alerts

from .test_case_loop import CST, accept, catalog, centre, update

# A Friday; the Monday after is a holiday, so "two working days on" is Wednesday.
FRI = dt.datetime(2026, 11, 27, 10, 0, tzinfo=CST).timestamp()
CAL = DayCalendar(480, frozenset({"2026-11-30"}), frozenset())


def case(k: str, due: str, state: str = "open", ready_at: float | None = None) -> Case:
    return Case(k, k, "SOC-2", FRI - 86400 * 10, due, None, state, department="pension",
                ready_at=ready_at)


def test_flags_follow_the_calendar():
    today = CAL.local_date(FRI)
    horizon = deadlines.soon_until(CAL, today)
    assert horizon == dt.date(2026, 12, 2)  # Fri + 2 workdays, Monday a holiday
    assert deadlines.flag(case("a", "2026-11-26"), today, horizon, CAL) == "overdue"
    assert deadlines.flag(case("b", "2026-11-27"), today, horizon, CAL) == "due_soon"
    assert deadlines.flag(case("c", "2026-12-02", "returned"), today, horizon, CAL) == \
        "due_soon"
    assert deadlines.flag(case("d", "2026-12-03"), today, horizon, CAL) is None
    # a ready case met its promise; it is watched for being collected instead
    assert deadlines.flag(case("e", "2026-11-20", "ready", FRI - 6 * 86400), today, horizon,
                          CAL) is None
    # [pickup] uncollected_days (7 by default): ready a week ago, on the calendar
    assert deadlines.flag(case("f", "2026-11-20", "ready", FRI - 7 * 86400), today,
                          horizon, CAL) == "uncollected"
    assert deadlines.flag(case("f", "2026-11-20", "ready", FRI - 86400), today, horizon,
                          CAL, deadlines.Watch(uncollected_days=1)) == "uncollected"
    assert deadlines.flag(case("g", "2026-11-20", "closed"), today, horizon, CAL) is None


def test_the_watched_list_counts_working_days_late_per_department():
    rows = deadlines.watched([case("a", "2026-11-20"), case("b", "2026-11-26"),
                              case("c", "2026-12-01"),
                              case("f", "2026-11-20", "ready", FRI - 8 * 86400)], CAL, FRI)
    assert [(w.case, w.flag, w.days) for w in rows] == [
        ("a", "overdue", 5), ("b", "overdue", 1), ("c", "due_soon", 0),
        ("f", "uncollected", 8)]
    assert deadlines.counts(rows) == {("pension", "overdue"): 2, ("pension", "due_soon"): 1,
                                      ("pension", "uncollected"): 1}


def test_dashboard_alerts_name_the_department_and_count():
    core = centre()
    k = accept(core)
    core.cases[k].due_day = "2026-11-01"
    alerts = case_alerts(core, core._day_span[0] + 3600)
    assert alerts == [{"kind": "cases_overdue", "department": "pension", "zh": "养老科",
                       "en": "Pensions", "zh_tw": "养老科", "waiting": 1,
                       "href": "/cases?department=pension"}]
    update(core, k, "approved")
    assert case_alerts(core, core._day_span[0] + 3600) == []  # met: ready for pick-up


def test_closed_loop_quality_counts_each_defective_case_once_and_not_a_reassignment():
    ev = [CaseEvent(k, "SOC-2", "wang", "accepted", 1.0) for k in ("k1", "k2", "k3", "k4")]
    ev += [CaseEvent("k1", "SOC-2", "wang", a, 2.0) for a in ("returned", "resubmitted",
                                                               "returned", "resubmitted",
                                                               "approved", "handed_over")]
    ev += [CaseEvent("k2", "SOC-2", "wang", a, 2.0) for a in ("reassigned", "approved")]
    ev += [CaseEvent("k3", "SOC-2", "wang", "closed", 2.0)]
    facts = Facts(0.0, 10.0, cases=ev)
    report = compute(facts, catalog())
    [wang] = report.clerks
    assert (wang.cases, wang.returned, wang.defective_cases) == (4, 2, 1)
    assert wang.quality == 0.75  # one of four cases went back for correction
    centre_row = report.centre
    assert (centre_row["approved"], centre_row["handed_over"], centre_row["reassigned"],
            centre_row["closed"]) == (2, 1, 1, 2)
    assert c.CASE_DEFECTS == ("returned", "corrected", "reopened")
