"""Help calls in the staff report (窗口吹哨 科室报到, issue 17): how fast each department
responds, per department: time to answer, to arrive at the window and to resolve (p50 and
p90, nearest rank), how many calls and how many went to the supervisors unanswered first.

The facts come from the journal's help records (`HelpLog`, fed by `collect`'s replay: a
help record says who and when, so nothing needs the core's state) or from the past days'
table `history_help` (`from_history`); both keep the calls asked in the period that were
answered, as the table holds only those (an unanswered call stays in the hub's memory,
and has no response time yet).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core import help_requests
from ..core.catalog import Catalog
from ..core.measures import percentile
from ..store.journal import Record

ANY = ""  # the department of a call to no department in particular
HELP_OPS = frozenset(help_requests.OPS)  # the records a HelpLog reads


@dataclass(slots=True)
class HelpFact:
    request: int
    department: str | None
    at: float
    answered_at: float | None = None
    arrived_at: float | None = None
    resolved_at: float | None = None
    escalated_at: float | None = None


class HelpLog:
    """The help calls of a journal, step by step as its records tell them."""

    def __init__(self) -> None:
        self.calls: dict[int, HelpFact] = {}

    def see(self, rec: Record) -> None:
        body, ts = rec.body, rec.ts
        op = body.get("op")
        if op == "help":
            self.calls[rec.pos] = HelpFact(rec.pos, body.get("department"), ts)
            return
        f = self.calls.get(body.get("request", -1))
        if f is None:
            return
        if op in ("help_answer", "help_arrive") and f.answered_at is None:
            f.answered_at = ts  # arriving unanswered answers it (help_requests.arrive)
        if op == "help_arrive":
            f.arrived_at = ts
        elif op == "help_resolve":
            f.resolved_at = ts
        elif op == "help_escalate":
            f.escalated_at = ts

    def facts(self, start: float, end: float) -> list[HelpFact]:
        return [f for f in self.calls.values()
                if start <= f.at < end and f.answered_at is not None]


def from_history(rows: Iterable[Sequence[Any]], start: float, end: float) -> list[HelpFact]:
    """The same facts from `History.report_rows`' "helps" rows."""
    return [HelpFact(int(pos), dept, at, answered, arrived, resolved, escalated)
            for pos, dept, at, answered, arrived, resolved, escalated in rows
            if start <= at < end and answered is not None]


@dataclass(frozen=True, slots=True)
class HelpRow:
    department: str  # "" (ANY): calls to no department in particular
    name_zh: str
    name_en: str
    calls: int  # answered calls asked in the period
    escalated: int  # of them, escalated before the answer
    answer_p50: float | None  # seconds from the call
    answer_p90: float | None
    arrive_p50: float | None
    arrive_p90: float | None
    resolve_p50: float | None
    resolve_p90: float | None


FIELDS = tuple(HelpRow.__dataclass_fields__)


def help_table(facts: Iterable[HelpFact], catalog: Catalog) -> list[HelpRow]:
    by: dict[str, list[HelpFact]] = defaultdict(list)
    for f in facts:
        by[f.department or ANY].append(f)
    out = []
    for dept in sorted(by):
        fs = by[dept]

        def took(attr: str, fs: list[HelpFact] = fs) -> list[float]:
            return [max(0.0, getattr(f, attr) - f.at) for f in fs
                    if getattr(f, attr) is not None]

        answer, arrive, resolve = took("answered_at"), took("arrived_at"), took("resolved_at")
        name = catalog.departments.get(dept)
        out.append(HelpRow(
            dept, name.zh if name else ("任意科室" if dept == ANY else dept),
            name.en if name else ("any department" if dept == ANY else dept),
            len(fs), sum(1 for f in fs if f.escalated_at is not None),
            percentile(answer, 50), percentile(answer, 90),
            percentile(arrive, 50), percentile(arrive, 90),
            percentile(resolve, 50), percentile(resolve, 90)))
    return out
