"""Closed cases (承诺件) after they left the core's memory: found among the closed days not
yet written or in the history tables (`CaseArchive`), reopened with their fields carried in
the command, and listed in a resident's card look-up.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..core import commands as c
from ..core.rejected import Rejected
from ..store.history import case_from_row
from .state import AppState

ARCHIVED_IN_CARD = 20  # a card look-up's newest archived (closed) cases


def archived_case(app: AppState, case_id: str) -> dict[str, Any] | None:
    """A closed case that left the core: from the days not yet written, else by SQL."""
    for f in reversed(app.closed_days):
        for row in f.cases:
            if row["id"] == case_id:
                return case_from_row(row)
    return app.case_archive.case(case_id) if app.case_archive is not None else None


def archived_cases_of(app: AppState, resident: str) -> list[dict[str, Any]]:
    """A resident's archived cases (those back in memory, reopened, left out)."""
    found: dict[str, dict[str, Any]] = {}
    if app.case_archive is not None:
        found = {r["id"]: r for r in app.case_archive.cases_of(resident)}
    for f in app.closed_days:
        found.update({r["id"]: case_from_row(r)
                      for r in f.cases if r["resident"] == resident})
    return [r for r in found.values() if r["id"] not in app.centre.cases]


def with_restore(app: AppState, cmd: c.Command) -> c.Command:
    """A staff action on a case that is closed: reopening carries the case's fields
    (`restore`), so the core can take it back even when the day's close has archived
    it (also if that close happens with this very command) and a replay needs no SQL;
    any other action is refused here with a clear message, nothing changed."""
    if not isinstance(cmd, c.CaseUpdate) or cmd.restore is not None:
        return cmd
    case = app.centre.cases.get(cmd.case)
    if case is not None and case.state != "closed":
        return cmd
    data = case.to_dict() if case is not None else archived_case(app, cmd.case)
    if data is None:
        return cmd  # the core answers unknown_case
    if cmd.action != "reopened":
        where = "" if case is not None else "，已归档"
        where_en = "" if case is not None else " and archived"
        raise Rejected("bad_case_state",
                       f"承诺件{cmd.case}已办结{where}，只能重新打开 / case {cmd.case} "
                       f"is closed{where_en}: it can only be reopened, not {cmd.action}")
    return replace(cmd, restore=data)


def resident_view(app: AppState, resident: str) -> dict[str, Any]:
    """A card read at a window: the resident's tickets of today and cases."""
    tickets = [{"ticket": t.number, "id": t.id, "item": t.item, "state": t.state.value}
               for t in app.centre.tickets.values() if t.resident == resident]
    cases = [{"id": k.id, "item": k.item, "due_day": k.due_day, "state": k.state}
             for k in app.centre.cases.values() if k.resident == resident]
    # Closed ones archived by SQL (the resident index), oldest first, before those in
    # memory (opened later, or reopened); the newest few only, so that years of visits
    # keep the reply well inside the protocol's bounds (protocol/README.md, res.cases).
    old = [{"id": k["id"], "item": k["item"], "due_day": k["due_day"],
            "state": k["state"]}
           for k in archived_cases_of(app, resident)[-ARCHIVED_IN_CARD:]]
    return {"tickets": tickets, "cases": old + cases}
