"""Promised cases (承诺件): opened when a window completes a promised item, due a number of
working days later; then the back office's word on them (`CaseUpdate`), including the
reopening of a case that has already left memory for the history tables.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from . import commands as c
from .effects import CaseChanged, CaseOpened, Effect
from .model import Case, Ticket
from .rejected import Rejected
from .state import CentreState


def open_case(state: CentreState, t: Ticket, now: float) -> CaseOpened:
    """Ticket `t`'s promised item accepted at a window: its case, due `promised_days`
    working days after today."""
    item = state.catalog.items[t.item]
    cal = state.calendar
    due = cal.add_workdays(cal.local_date(now), item.promised_days)
    state.cases[t.id] = Case(t.id, t.id, t.item, now, due.isoformat(), t.resident)
    return CaseOpened(t.id, due.isoformat())


def update_case(state: CentreState, cmd: c.CaseUpdate, now: float) -> list[Effect]:
    """The operation `CaseUpdate`: one step of `commands.CASE_ACTIONS`."""
    rule = c.CASE_ACTIONS.get(cmd.action)
    if rule is None:
        raise Rejected("bad_field", f"unknown case action {cmd.action!r}; one of "
                                    f"{', '.join(c.CASE_ACTIONS)}")
    if cmd.restore is not None and cmd.action != "reopened":
        raise Rejected("bad_field", "restore goes with a reopening only")
    case = state.cases.get(cmd.case)
    readmit = case is None and cmd.restore is not None
    if readmit:
        case = _archived_case(state, cmd.case, cmd.restore or {})
    if case is None:
        raise Rejected("unknown_case", f"没有承诺件{cmd.case} / no case {cmd.case}")
    before, after = rule
    if case.state not in before:
        raise Rejected("bad_case_state", f"承诺件{case.id}状态为{case.state} / case "
                                         f"{case.id} is {case.state}: cannot be "
                                         f"{cmd.action}")
    if readmit:
        state.cases[case.id] = case
    case.state = after
    case.closed_at = now if after == "closed" else None
    return [CaseChanged(case.id, cmd.action, after)]


def _archived_case(state: CentreState, case_id: str, data: dict[str, Any]) -> Case:
    """An archived case from a reopening's `restore` (its fields as archived), checked
    before anything changes: the core takes back only a closed case it could have held."""
    names = {f.name for f in fields(Case)}
    try:
        if set(data) != names:
            raise ValueError(f"fields {sorted(set(data) ^ names)}")
        case = Case(**data)
        if case.id != case_id or case.state != "closed":
            raise ValueError("not the closed case reopened")
        if case.item not in state.catalog.items:
            raise ValueError(f"unknown item {case.item!r}")
        if not (isinstance(case.ticket, str) and isinstance(case.due_day, str)
                and type(case.opened_at) in (int, float)
                and (case.resident is None or isinstance(case.resident, str))):
            raise ValueError("a field of the wrong type")
    except (TypeError, ValueError) as e:
        raise Rejected("bad_field", f"承诺件{case_id}的归档数据无效 / case {case_id}: "
                                    f"unusable archived data ({e})") from e
    return case
