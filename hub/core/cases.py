"""Promised cases (承诺件): opened when a window completes a promised item, due a number of
working days later, at the back-office department (科室) that approves the item; then the
back office's word on them (`CaseUpdate`, the moves of `commands.CASE_ACTIONS`): returned
to the window for correction (补正) with the materials to correct, resubmitted, reassigned
to another department, approved (ready for pick-up, 统一窗口出件), handed over (closed),
closed directly, reopened, including the reopening of a case that has already left memory
for the history tables.

Every refusal is checked before anything changes, with a zh / en message.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from . import city
from . import commands as c
from .catalog import Item
from .effects import CaseChanged, CaseOpened, Effect
from .model import Case, Ticket
from .rejected import Rejected
from .state import CentreState

REASON_MAX = 500  # characters: a reason is a line in the journal, not a document
BY_MAX = 64  # an account's username, or "card"
# The fields a case had before the case loop (departments, pick-up, returns): an archived
# case journaled with only these (a reopening's `restore`) still replays.
OLD_FIELDS = frozenset(("id", "ticket", "item", "opened_at", "due_day", "resident", "state",
                        "closed_at"))


def open_case(state: CentreState, t: Ticket, now: float) -> CaseOpened:
    """Ticket `t`'s promised item accepted at a window: its case, due `promised_days`
    working days after today, at the item's department (routed: 分类审批)."""
    item = state.catalog.items[t.item]
    cal = state.calendar
    due = cal.add_workdays(cal.local_date(now), item.promised_days)
    state.cases[t.id] = Case(t.id, t.id, t.item, now, due.isoformat(), t.resident,
                             department=item.approver)
    return CaseOpened(t.id, due.isoformat())


def update_case(state: CentreState, cmd: c.CaseUpdate, now: float) -> list[Effect]:
    """The operation `CaseUpdate`: one step of `commands.CASE_ACTIONS`."""
    rule = c.CASE_ACTIONS.get(cmd.action)
    if rule is None:
        raise Rejected("bad_field", f"未知的承诺件操作{cmd.action!r} / unknown case action "
                                    f"{cmd.action!r}; one of {', '.join(c.CASE_ACTIONS)}")
    if cmd.restore is not None and cmd.action != "reopened":
        raise Rejected("bad_field", "恢复数据只能随重新打开提交 / restore goes with a "
                                    "reopening only")
    case = state.cases.get(cmd.case)
    readmit = case is None and cmd.restore is not None
    if readmit:
        case = _archived_case(state, cmd.case, cmd.restore or {})
    if case is None:
        raise Rejected("unknown_case", f"没有承诺件{cmd.case} / no case {cmd.case}")
    before, after = rule
    if case.state not in before:
        raise Rejected("bad_case_state",
                       f"承诺件{case.id}当前为“{STATE_ZH.get(case.state, case.state)}”，不能"
                       f"{ACTION_ZH.get(cmd.action, cmd.action)} / case {case.id} is "
                       f"{case.state}: cannot be {cmd.action}", state=case.state)
    _check(state, case, cmd)
    city.check_update(state, case, cmd)  # a case across centres: only its authority
    # Checked: from here on nothing can fail.
    if readmit:
        state.cases[case.id] = case
    _apply(case, cmd, now)
    if after != c.SAME:
        case.state = after
        case.closed_at = now if after == "closed" else None
    return [CaseChanged(case.id, cmd.action, case.state), *city.updated(state, case)]


STATE_ZH = {"open": "办理中", "returned": "退回补正", "ready": "待领取", "closed": "已办结"}
ACTION_ZH = {"returned": "退回补正", "resubmitted": "重新提交", "corrected": "更正受理",
             "reassigned": "转办", "approved": "审批通过", "handed_over": "领取办结",
             "closed": "办结", "reopened": "重新打开"}


def _check(state: CentreState, case: Case, cmd: c.CaseUpdate) -> None:
    """What each action needs beyond the state it starts from; raises Rejected."""
    if cmd.by is not None and not (isinstance(cmd.by, str) and 0 < len(cmd.by) <= BY_MAX):
        raise Rejected("bad_field", f"操作人无效 / by: a name of 1..{BY_MAX} characters")
    if not isinstance(cmd.reason, str) or len(cmd.reason) > REASON_MAX:
        raise Rejected("bad_field", f"原因最多{REASON_MAX}字 / reason: at most {REASON_MAX} "
                                    "characters")
    needs_reason = cmd.action == "reassigned" or (cmd.action == "returned"
                                                  and not cmd.before_loop)
    if needs_reason and not cmd.reason.strip():
        raise Rejected("missing_reason", f"{ACTION_ZH[cmd.action]}须写明原因 / "
                                         f"{cmd.action} needs a reason")
    if cmd.materials and cmd.action != "returned":
        raise Rejected("bad_field", "只有退回补正才列出材料 / materials go with a return only")
    if cmd.department and cmd.action != "reassigned":
        raise Rejected("bad_field", "只有转办才指定科室 / department goes with a "
                                    "reassignment only")
    if cmd.action == "returned" and not cmd.before_loop:
        _check_materials(state.catalog.items[case.item], cmd.materials)
    elif cmd.action == "reassigned":
        if cmd.department not in state.catalog.departments:
            raise Rejected("unknown_department",
                           f"没有科室{cmd.department!r} / no department {cmd.department!r}; "
                           f"one of {', '.join(state.catalog.departments)}")
        if cmd.department == case.department:
            raise Rejected("bad_field", f"承诺件{case.id}已在该科室 / case {case.id} is "
                                        f"already at {cmd.department}")
    elif cmd.action == "handed_over" and not cmd.by:
        raise Rejected("bad_field", "领取须记录经办人或刷卡 / a hand-over needs who signed "
                                    "it off (the clerk, or card)")


def _check_materials(item: Item, materials: tuple[int, ...]) -> None:
    n = len(item.materials)
    bad = [m for m in materials if type(m) is not int or not 0 <= m < n]
    if bad or len(set(materials)) != len(materials):
        which = f"0..{n - 1}" if n else "none"
        raise Rejected("unknown_material",
                       f"材料编号无效：{bad or '重复'}（该事项共{n}项材料） / materials "
                       f"{list(materials)}: the item's materials are {which}, each named "
                       "once", materials=list(materials))
    if n and not materials:
        raise Rejected("missing_materials", "退回补正须勾选要补正的材料 / a return names "
                                            "the materials to correct")


def _apply(case: Case, cmd: c.CaseUpdate, now: float) -> None:
    """The checked action's own fields (the state is set by the caller)."""
    if cmd.action == "returned":
        case.return_reason, case.return_materials = cmd.reason.strip(), tuple(cmd.materials)
    elif cmd.action == "reassigned":
        case.department = cmd.department
    elif cmd.action == "approved":
        case.ready_at = now
    elif cmd.action == "handed_over":
        case.handed_by = cmd.by
    elif cmd.action == "reopened":
        case.ready_at = case.handed_by = None  # back to the back office: approved again


def _archived_case(state: CentreState, case_id: str, data: dict[str, Any]) -> Case:
    """An archived case from a reopening's `restore` (its fields as archived), checked
    before anything changes: the core takes back only a closed case it could have held.
    A case archived before the case loop has the old fields only; a department missing,
    or no longer in the catalog, is the item's approver now."""
    names = {f.name for f in fields(Case)}
    try:
        if not OLD_FIELDS <= set(data) <= names:
            raise ValueError(f"fields {sorted(set(data) ^ names)}")
        case = Case(**data)
        if case.id != case_id or case.state != "closed":
            raise ValueError("not the closed case reopened")
        item = state.catalog.items.get(case.item)
        if item is None:
            raise ValueError(f"unknown item {case.item!r}")
        if not (isinstance(case.ticket, str) and isinstance(case.due_day, str)
                and type(case.opened_at) in (int, float)
                and (case.resident is None or isinstance(case.resident, str))
                and all(type(v) in (int, float, type(None))
                        for v in (case.closed_at, case.ready_at))
                and (case.handed_by is None or isinstance(case.handed_by, str))
                and isinstance(case.return_reason or "", str)):
            raise ValueError("a field of the wrong type")
        if not isinstance(case.department, str | None) \
                or case.department not in state.catalog.departments:
            case.department = item.approver
        case.return_reason = case.return_reason or ""
        case.return_materials = _materials(case.return_materials)
    except (TypeError, ValueError) as e:
        raise Rejected("bad_field", f"承诺件{case_id}的归档数据无效 / case {case_id}: "
                                    f"unusable archived data ({e})") from e
    return case


def _materials(v: Any) -> tuple[int, ...]:
    """Material indices as archived: a tuple or list (JSON), a comma-separated string (the
    history table's column), or None."""
    if v is None or v == "":
        return ()
    if isinstance(v, str):
        v = v.split(",")
    return tuple(int(x) for x in v)
