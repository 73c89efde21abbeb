"""Breaks at the windows (issue 18): how many pauses and how many paused minutes each clerk
took, per reason (core/desk.py PAUSE_REASONS: lunch, meeting, training, system, other; a
pause journaled without a reason, by a keypad's key or before reasons, is `unspecified`).

A pause is read off the core around each command, as a service is (report/staff.py
ServiceWatch): the window was paused before the command and is not after it (resumed or
closed). It belongs to the clerk at the window when it began, and counts in the period its
end falls in. Its minutes run to its end, but never past the end of the local day it began
on: a window left paused overnight and closed next morning counts no night. A pause still
running at the end of the journal is not counted (it has no end yet).

`PauseWatch` is the one definition: the staff report's replay (`staff.collect`) and the
hub's day close (hub/app/day_close.py, into `history_pauses`) both use it, so the table
path of the report equals its replay.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core import commands as c
from ..core import desk
from ..core.centre import Centre
from ..core.model import WindowState

Before = tuple[int, str, str, float]  # window, clerk, reason, since


@dataclass(frozen=True, slots=True)
class PauseFact:
    window: int
    clerk: str
    reason: str  # a PAUSE_REASONS code, or desk.UNSPECIFIED
    start: float
    end: float  # when it ended, at most the end of the local day it began on

    @property
    def minutes(self) -> float:
        return max(0.0, self.end - self.start) / 60.0

    def row(self, day: str) -> dict[str, Any]:
        """A history_pauses row, `day`: the local day it ended (whose close writes it)."""
        return {"day": day, "window": self.window, "clerk": self.clerk,
                "reason": self.reason, "start": self.start, "end": self.end}


class PauseWatch:
    @staticmethod
    def before(centre: Centre, cmd: c.Command) -> Before | None:
        if isinstance(cmd, c.WindowCommand):
            w = centre.windows.get(cmd.window)
            if w is not None and w.state is WindowState.PAUSED:
                return (w.number, w.clerk or f"window-{w.number}",
                        w.pause_reason or desk.UNSPECIFIED, w.since)
        return None

    @staticmethod
    def after(centre: Centre, before: Before | None, ts: float) -> PauseFact | None:
        """The pause the command ended, if it ended one."""
        if before is None:
            return None
        n, clerk, reason, since = before
        if centre.windows[n].state is WindowState.PAUSED:
            return None
        _, (_, day_end) = centre.calendar.day_of(since)
        return PauseFact(n, clerk, reason, since, min(ts, day_end))


def from_rows(rows: Iterable[Any], start: float, end: float) -> list[PauseFact]:
    """The period's pauses from history_pauses rows (those ending in [start, end))."""
    return [PauseFact(int(r.window), str(r.clerk), str(r.reason), float(r.start),
                      float(r.end)) for r in rows if start <= r.end < end]


def by_clerk(pauses: Sequence[PauseFact]) -> dict[str, dict[str, tuple[int, float]]]:
    """clerk -> reason -> (pauses, paused minutes), reasons in PAUSE_REASONS order."""
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0, 0.0]))
    for p in pauses:
        a = acc[p.clerk][p.reason]
        a[0] += 1
        a[1] += p.minutes
    order = {k: i for i, k in enumerate((*desk.PAUSE_REASONS, desk.UNSPECIFIED))}
    return {clerk: {r: (int(v[0]), round(v[1], 1))
                    for r, v in sorted(d.items(), key=lambda kv: order.get(kv[0], 99))}
            for clerk, d in sorted(acc.items())}


def reasons_seen(pauses: Sequence[PauseFact]) -> list[str]:
    """The reasons the period's pauses name, in PAUSE_REASONS order (unspecified last)."""
    seen = {p.reason for p in pauses}
    return [r for r in (*desk.PAUSE_REASONS, desk.UNSPECIFIED) if r in seen] + sorted(
        seen - {*desk.PAUSE_REASONS, desk.UNSPECIFIED})


def label(reason: str) -> tuple[str, str, str]:
    """zh-CN, zh-TW, English."""
    return desk.PAUSE_REASONS.get(reason) or desk.UNSPECIFIED_LABEL
