"""The dashboard's alerts for promised cases (issue 17, deadlines that someone watches):
per department, how many of its cases are past their promised day, due within the next
working days, or ready and not collected (hub/core/deadlines.py). Each alert reads like
the floor's others ({kind, zh, en, zh_tw, waiting}: the department's name and the count)
and links to that department's queue on /cases."""

from __future__ import annotations

from typing import Any

from ..core import deadlines
from ..core.centre import Centre

KINDS = {"overdue": "cases_overdue", "due_soon": "cases_due_soon",
         "uncollected": "cases_uncollected"}


def case_alerts(centre: Centre, now: float,
                watch: deadlines.Watch | None = None) -> list[dict[str, Any]]:
    """One alert per (department, flag) with at least one case, overdue first; the
    thresholds by default the centre's ([pickup] uncollected_days)."""
    watch = watch or deadlines.Watch.of(centre.config)
    rows = deadlines.watched(centre.cases.values(), centre.calendar, now, watch)
    counts = deadlines.counts(rows)
    out = []
    for flag in ("overdue", "due_soon", "uncollected"):
        for (dept, f), n in sorted(counts.items()):
            if f != flag:
                continue
            name = centre.catalog.departments.get(dept)
            out.append({"kind": KINDS[flag], "department": dept,
                        "zh": name.zh if name else dept, "en": name.en if name else dept,
                        "zh_tw": name.traditional if name else dept, "waiting": n,
                        "href": f"/cases?department={dept}"})
    return out
