"""What the supervisor sees, computed from the core's state: pure functions of the Centre
(its ratings and help requests too) and `now` (no I/O, no clock), unit-tested on their own.

* `queues`: per item waiting now, the longest wait and the wait a new ticket would face.
* `alerts`: a queue longer than `queue_limit`, a wait past `target_min`, tickets no open
  window can serve, a help request unanswered for long.
* `summary`: the day: tickets, served, no-shows, average and 90th-percentile wait (issue to
  first call), one-window rate (served at the first window they were called to, never
  transferred), 满意率 (the state's satisfaction rate on the five-level 好差评 scale:
  (非常满意 + 满意 + 基本满意) / all ratings, levels 5, 4, 3: core.ratings.SATISFIED),
  help answer times.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.centre import Centre
from ..core.desk import PAUSE_REASONS, UNSPECIFIED_LABEL
from ..core.measures import percentile, wait_minutes
from ..core.model import Ticket, TicketState, WindowState, one_window
from ..core.ratings import satisfaction

QUEUE_LIMIT = 3  # more waiting than this for one item: alert
TARGET_MIN = 20.0  # a wait longer than this: alert
HELP_LIMIT_MIN = 5.0  # a help request unanswered this long: alert


@dataclass(frozen=True, slots=True)
class Targets:
    queue_limit: int = QUEUE_LIMIT
    target_min: float = TARGET_MIN
    help_limit_min: float = HELP_LIMIT_MIN


def _today(centre: Centre) -> list[Ticket]:
    return [t for t in centre.tickets.values() if t.day == centre.day]


def queues(centre: Centre, now: float) -> list[dict[str, Any]]:
    """Per item with someone waiting: count, longest wait (min), a new ticket's estimate."""
    by_item: dict[str, list[Ticket]] = {}
    for t in centre.queue:
        by_item.setdefault(t.item, []).append(t)
    out: list[dict[str, Any]] = []
    for item_id, waiting in by_item.items():
        item = centre.catalog.items[item_id]
        last = max(waiting, key=lambda t: t.sort_key)
        # what a ticket taken now would face: from the per-item counts, else (a ticket
        # sent to one window, a booking for later) what the last in line faces, walked
        new = centre.estimate_new(item_id, now)
        _, est = new if new is not None else centre.estimate(last, now)
        longest = round(max((now - t.issued_at) / 60.0 for t in waiting), 1)
        # No estimate shorter than a wait already observed: the first in line has waited
        # `longest` and is not called yet, so a ticket taken now, behind it, faces at least
        # as much (the head-of-line delay; the model's own figure may assume windows that
        # have not been calling).
        floored = est != float("inf") and est < longest
        out.append({
            "item": item_id, "zh": item.name.zh, "en": item.name.en, "line": item.line,
            "waiting": len(waiting),
            "longest_min": longest,
            # what the last in line faces: about what a ticket taken now would
            "estimate_min": None if est == float("inf") else round(max(est, longest), 1),
            "estimate_floored": floored,
            "reachable": bool(centre.reach(last)),
        })
    out.sort(key=lambda q: (-q["waiting"], -q["longest_min"]))
    return out


def lines(qs: Iterable[dict[str, Any]], centre: Centre) -> list[dict[str, Any]]:
    """The per-item queues added up per department line: waiting, the longest current
    wait, and the longest estimate of its items (None: one of them has no open window)."""
    out: dict[str, dict[str, Any]] = {}
    for q in qs:
        line = centre.catalog.lines[q["line"]]
        agg = out.setdefault(q["line"], {"line": q["line"], "zh": line.name.zh,
                                         "en": line.name.en, "prefix": line.prefix,
                                         "waiting": 0, "longest_min": 0.0,
                                         "estimate_min": 0.0})
        agg["waiting"] += q["waiting"]
        agg["longest_min"] = max(agg["longest_min"], q["longest_min"])
        # the line's slowest item: what a new ticket of that line may face at most
        if agg["estimate_min"] is not None:
            agg["estimate_min"] = (None if q["estimate_min"] is None
                                   else max(agg["estimate_min"], q["estimate_min"]))
    return sorted(out.values(), key=lambda x: x["prefix"])


def alerts(centre: Centre, qs: Sequence[dict[str, Any]], now: float,
           targets: Targets = Targets()) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for q in qs:
        if not q["reachable"]:
            out.append({"kind": "unreachable", "item": q["item"], "zh": q["zh"], "en": q["en"],
                        "waiting": q["waiting"]})
        if q["waiting"] > targets.queue_limit:
            out.append({"kind": "queue", "item": q["item"], "zh": q["zh"], "en": q["en"],
                        "waiting": q["waiting"], "limit": targets.queue_limit})
        if q["longest_min"] > targets.target_min:
            out.append({"kind": "wait", "item": q["item"], "zh": q["zh"], "en": q["en"],
                        "longest_min": q["longest_min"], "target_min": targets.target_min})
    for r in centre.help_requests.values():
        if r.answered_at is None and (now - r.at) / 60.0 > targets.help_limit_min:
            out.append({"kind": "help", "window": r.window,
                        "waiting_min": round((now - r.at) / 60.0, 1)})
    return out


def device_alerts(fleet_alerts: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fleet's alerts (hub/fleetwatch.py: offline, printer, reconnects) in this list."""
    return [{"kind": "device", **a} for a in fleet_alerts]


class TicketFacts:
    """What the floor works out of each ticket's history (its wait to the first call, and
    whether it was served at one window), kept per ticket until its history grows: the
    supervisors' floor is rebuilt on every change, and walking every history of the day's
    3,000 tickets was most of a 4-10 ms build, one piece the loop could not slice (the
    calls arriving meanwhile waited: tools/bench/bench_live.py). Forgets the tickets that
    left the centre's memory at the next walk after a day's close."""

    def __init__(self) -> None:
        # id -> (history length, state, wait, one window, window that completed it, items)
        self._by_id: dict[str, tuple[int, TicketState, float | None, bool, int | None,
                                     int]] = {}
        self._day: str | None = None
        # items served today per window, kept up as tickets' facts change: counting them
        # afresh walked the day's tickets once more per build (2.3 ms for 3,000)
        self._served: Counter[int] = Counter()

    def of(self, t: Ticket) -> tuple[float | None, bool]:
        n = len(t.history)
        got = self._by_id.get(t.id)
        if got is None or got[0] != n or got[1] is not t.state:
            if got is not None and got[4] is not None:
                self._served[got[4]] -= got[5]
            done = [w for _, state, w in t.history if state == "done"]
            at = done[-1] if done and t.state is TicketState.DONE else None
            got = (n, t.state, wait_minutes(t), one_window(t), at, 1 + len(t.extra_items))
            if at is not None:
                self._served[at] += got[5]
            self._by_id[t.id] = got
        return got[2], got[3]

    def served(self) -> Counter[int]:
        """Items served today per window (a ticket counts its first item and those added at
        the window, at the window that completed it), as of the last walk of the day's
        tickets (`summary` walks them all)."""
        return +self._served

    def wait(self, t: Ticket) -> float | None:
        return self.of(t)[0]

    def today(self, centre: Centre) -> list[Ticket]:
        """The day's tickets; a new day forgets the last one's."""
        if centre.day != self._day:
            self._by_id.clear()
            self._served.clear()
            self._day = centre.day
        return _today(centre)


def summary(centre: Centre, facts: TicketFacts | None = None) -> dict[str, Any]:
    facts = facts or TicketFacts()
    today = facts.today(centre)
    waits = [w for t in today if (w := facts.wait(t)) is not None]
    done = [t for t in today if t.state is TicketState.DONE]
    scores = [r.score for r in centre.ratings.values() if r.ticket.startswith(centre.day)]
    _, rate = satisfaction(scores)  # (5 非常满意 + 4 满意 + 3 基本满意) / all
    helps = [h for h in centre.help_requests.values()
             if centre.day and centre.local_date(h.at).strftime("%Y%m%d") == centre.day]
    answered = [h.answered_at - h.at for h in helps if h.answered_at is not None]
    return {
        "day": centre.day,
        "tickets": len(today),
        "served": len(done),
        "no_shows": sum(1 for t in today if t.state is TicketState.NO_SHOW),
        "waiting": len(centre.queue),
        "avg_wait_min": round(sum(waits) / len(waits), 1) if waits else None,
        "p90_wait_min": None if not waits else round(percentile(waits, 90) or 0.0, 1),
        "one_window_rate": (round(sum(1 for t in done if facts.of(t)[1]) / len(done), 3)
                            if done else None),
        "ratings": len(scores),
        "satisfaction_rate": round(rate, 3) if rate is not None else None,
        "help_requests": len(helps),
        "help_answered": len(answered),
        "help_avg_answer_s": round(sum(answered) / len(answered), 1) if answered else None,
    }


def _pause_label(code: str | None) -> dict[str, str]:
    zh, tw, en = PAUSE_REASONS.get(code or "", UNSPECIFIED_LABEL)
    return {"zh": zh, "zh_tw": tw, "en": en}


def windows(centre: Centre, now: float, names: dict[str, str] | None = None,
            served: Counter[int] | None = None) -> list[dict[str, Any]]:
    """Every window: state (with the pause's reason, when the core keeps one), clerk,
    current ticket, how long in this state, queue it serves, items served today."""
    names = names or {}
    served = served if served is not None else Counter()
    # The queue counted once, by item and by the window a ticket was sent to: the dashboard
    # is rebuilt several times a second, and a walk of the queue per window cost 10 ms with
    # 30 windows and 500 waiting.
    by_item: Counter[str] = Counter()
    sent_to: Counter[int] = Counter()
    for u in centre.queue:
        if u.target_window is not None:
            sent_to[u.target_window] += 1
        else:
            by_item[u.item] += 1
    out = []
    for n, w in sorted(centre.windows.items()):
        t = centre.tickets.get(w.ticket) if w.ticket else None
        lines = centre.catalog.lines_of(w.skills)
        eligible = sent_to[n] + sum(k for i, k in by_item.items() if i in w.skills)
        out.append({
            "number": n, "kind": w.kind, "state": w.state.value, "clerk": w.clerk,
            # a paused window's reason code (core/desk.py: lunch, meeting, ...; "": none
            # given) and its words, as the console and the report say it
            "pause_reason": w.pause_reason if w.state is WindowState.PAUSED else None,
            "pause_label": _pause_label(w.pause_reason) if w.state is WindowState.PAUSED
            else None,
            "served": served[n],
            "clerk_name": names.get(w.clerk or "", w.clerk),
            "ticket": t.number if t else None, "item": t.item if t else None,
            "since_min": round(max(0.0, now - w.since) / 60.0, 1) if w.since else None,
            "queue": None if w.state is WindowState.CLOSED else eligible,
            "skills": len(w.skills),
            "lines": list(lines),
            "all_lines": len(lines) == len(centre.catalog.lines),
            "line_names": [{"prefix": ln.prefix, "zh": ln.name.zh, "en": ln.name.en}
                           for ln in sorted((centre.catalog.lines[x] for x in lines),
                                            key=lambda ln: ln.prefix)],
        })
    return out
