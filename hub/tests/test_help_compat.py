"""Help requests, answers and ratings as the hub kept them before they moved into the core
(in hub/app.py, snapshot format 3) still load and show the same, and today's hub writes the
same journal for the same events.

`help_ratings_v3.json` was written by that hub (its commit is in the file's `about`) driving
`help_scenario.scenario`: the journal, each device's answers, three snapshots as that hub
stored them, what every journal position showed (help requests with their answers, the
ratings kept, which tickets may no longer be rated, the dashboard's day summary and help
alerts), the past days it handed to the history tables, and the staff report of the three
days. Nothing here is recomputed with the old code: the file is the old hub's word.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from onewindow.hub.app import HubApp
from onewindow.hub.core import help_requests, ratings
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.help_requests import Help, HelpAnswer
from onewindow.hub.report.staff import collect, compute
from onewindow.hub.store import snapshot as snap_mod
from onewindow.hub.store.history import DayFacts
from onewindow.hub.store.journal import Record
from onewindow.hub.web import dashboard, floor
from onewindow.protocol import ow_protocol as proto

from . import help_scenario as hs

OLD = json.loads((Path(__file__).parent / "help_ratings_v3.json").read_text(encoding="utf-8"))
ALERTS_AT = hs.at(2, 12, 0)

# The old hub rated on three levels (1 满意 good, 2 基本满意 ok, 3 不满意 bad); today's core
# keeps the national five levels and maps good -> 5 非常满意, ok -> 3 基本满意, bad -> 1
# 非常不满意 (issue 16). Written out here, not taken from the code under test.
FIVE = {1: 5, 2: 3, 3: 1}
SATISFIED_THEN = (1, 2)  # the old scores the state's 满意率 counts: (5 + 4 + 3) / all


def _rate(share: list[int]) -> float | None:
    """满意率 of old three-level scores, as today's hub reports it."""
    return round(sum(s in SATISFIED_THEN for s in share) / len(share), 3) if share else None


def now_records(old: list[list[Any]]) -> list[list[Any]]:
    """The old journal as today's hub writes it for the same events: a device's `rate`
    without `scale` is recorded with `scale` 3 (its score as sent, three-level); a keypad's
    `help` names the department of the item of the ticket at its window then (issue 17,
    窗口吹哨 科室报到: read off a replay of the old journal up to that record), none when
    the window had no ticket."""
    app = HubApp(Centre(hs.catalog(), hs.config()), hs.registry(), "boot1")
    out = []
    for pos, ts, dev, seq, body in old:
        now = body
        if body["op"] == "rate":
            now = {**body, "scale": 3}
        elif body["op"] == "help":
            dept = help_requests.default_department(app.centre, body["window"])
            now = body if dept is None else {**body, "department": dept}
        out.append([pos, ts, dev, seq, now])
        app.replay([Record(pos, ts, dev, seq, json.loads(json.dumps(body)))])
    return out


def estimates_apart(records: list[list[Any]]) -> list[list[Any]]:
    """The records with each take's journaled wait estimate (`est`, the five figures its
    slip printed, or none) checked for its form and left out: the figures follow the wait
    forecast's calibration (hub/forecast/wait_factors.json), which is tuned apart from the
    events this test is about."""
    out = []
    for pos, ts, dev, seq, body in records:
        if body.get("op") == "take" and "est" in body:
            est = body["est"]
            assert len(est) in (0, 5) and all(isinstance(x, int | float) for x in est), est
            body = {k: v for k, v in body.items() if k != "est"}
        out.append([pos, ts, dev, seq, body])
    return out


def now_position(then: dict[str, Any]) -> dict[str, Any]:
    """What an old position showed, as today's hub shows it: the ratings kept on the five
    levels, and the dashboard's day summary counting levels and the state's 满意率."""
    then = json.loads(json.dumps(then))
    old = [r[1] for r in then["ratings"] if r[0].startswith(then["day"])]
    then["ratings"] = [[r[0], FIVE[r[1]], *r[2:]] for r in then["ratings"]]
    assert then["summary"]["ratings"] == len(old)  # the old hub counted the same ratings
    levels = {str(k): sum(FIVE[s] == k for s in old) for k in (5, 4, 3, 2, 1)}
    then["summary"].update(satisfaction_rate=_rate(old), ratings_by_level=levels)
    return then


def now_history(old: list[dict[str, Any]], live: bool = False) -> list[dict[str, Any]]:
    """The past days handed to the history tables, their ratings on the five levels, and
    the two lists each day carries since: no bookings (there were none); follow-ups only
    when the scenario runs today (`live`): a three-key device's bad rating (1 非常不满意)
    opens one, while the old journal's ratings (no `scale`) open none."""
    def followups(f: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"ticket": r["ticket"], "day": f["day"], "window": r["window"],
                 "clerk": r["clerk"], "score": 1, "action": "opened", "at": r["at"],
                 "by": None, "note": None}
                for r in f["ratings"] if live and FIVE[r["score"]] <= 2]

    # help calls (issue 17): the department the hub names today (a keypad's help, live) or
    # none (the old journal's records), and no later step: the old hub had none
    depts = {r[0]: r[4].get("department") for r in now_records(OLD["records"])
             if r[4]["op"] == "help"} if live else {}
    steps = dict.fromkeys(("arrived_at", "arrived_by", "resolved_at", "resolved_by",
                           "escalated_at"))

    def helps(f: dict[str, Any]) -> list[dict[str, Any]]:
        return [{**h, "department": depts.get(h["pos"]), **steps} for h in f["helps"]]

    # pre-review (issue 17): nobody left the kiosk without a ticket, no ticket carries a
    # pre-review, a resident token or materials it was returned for (the old hub had none)
    prereview = {"resident": None, "review": None, "returned": ""}

    return [{**f, "summary": {**f["summary"], "kiosk_left": 0, "kiosk_left_tips": 0},
             "tickets": [{**t, **prereview} for t in f["tickets"]],
             "ratings": [{**r, "score": FIVE[r["score"]]} for r in f["ratings"]],
             "helps": helps(f), "followups": followups(f), "bookings": [],
             "pauses": []}  # breaks by reason (issue 18): the scenario pauses nowhere
            for f in old]


def now_report() -> tuple[dict[str, Any], list[list[Any]]]:
    """The old staff report with today's rating counts: every rating of the three days is
    in the old history rows; satisfied now also counts the old 2 (ok = 基本满意). The bad
    ones (1 非常不满意) open no follow-up: given before follow-ups existed (no `scale` in
    their records), like the old snapshots, which hold none."""
    rated = [r for f in OLD["history"] for r in f["ratings"]]
    scores = [r["score"] for r in rated]
    centre = {**OLD["report"]["centre"],
              "satisfied": sum(s in SATISFIED_THEN for s in scores),
              "rating_share": sum(s in SATISFIED_THEN for s in scores) / len(scores),
              **{f"rated_{k}": sum(FIVE[s] == k for s in scores) for k in (5, 4, 3, 2, 1)},
              "followups_opened": 0, "followups_closed": 0, "followups_open": 0,
              "pauses": 0, "paused_minutes": 0.0}  # the scenario pauses nowhere
    assert centre["rated_1"] == 1  # there was a bad one, which opened nothing
    clerks = []
    for clerk, services, n, _, _ in OLD["report"]["clerks"]:
        mine = [r["score"] for r in rated if r["clerk"] == clerk]
        assert len(mine) == n
        good = sum(s in SATISFIED_THEN for s in mine)
        clerks.append([clerk, services, n, good, good / n])
    return centre, clerks


def records() -> list[Record]:
    # A fresh copy each time: the app may add to a record's body (`est`) as it applies it.
    return [Record(pos, ts, dev, seq, json.loads(json.dumps(body)))
            for pos, ts, dev, seq, body in OLD["records"]]


class App:
    """A hub app of the scenario's centre, with its history sink's writes kept."""

    def __init__(self) -> None:
        self.app = HubApp(Centre(hs.catalog(), hs.config()), hs.registry(), "boot1")
        self.written: list[dict[str, Any]] = []
        self.app.history_sink = self._sink

    def _sink(self, pending: list[DayFacts]) -> None:
        self.written.extend(json.loads(json.dumps(asdict(f))) for f in pending)
        pending.clear()

    def observe(self) -> dict[str, Any]:
        """What the old hub's position showed, read from today's (the same keys)."""
        centre = self.app.centre
        helps = centre.help_requests.values()
        return json.loads(json.dumps({
            "pos": self.app.pos, "day": centre.day,
            "helps": [[h.request, h.window, h.clerk, h.at, h.answered_at, h.by]
                      for h in helps],
            "ratings": [[r.ticket, r.score, r.window, r.clerk, r.at]
                        for r in centre.ratings.values()],
            "rated": sorted(t for t in centre.tickets if ratings.is_rated(centre, t)),
            # what the dashboard shows: the floor's summary with today's rating counts
            "summary": {**floor.summary(centre), **dashboard._ratings_today(centre)},
            "help_alerts": floor.alerts(centre, [], ALERTS_AT),
        }))


class Live(App):
    """Drives the scenario through `handle` (devices) and `operate` (the console)."""

    def __init__(self) -> None:
        super().__init__()
        self.seq: dict[str, int] = {}
        self.records: list[Record] = []
        self.replies: list[list[Any]] = []
        self.labels: dict[str, int] = {}

    def evt(self, dev: str, typ: str, now: float, **fields: Any) -> tuple[str, dict[str, Any]]:
        seq = self.seq[dev] = self.seq.get(dev, 0) + 1
        step = self.app.handle(proto.device_topic("t1", dev, "evt"),
                               proto.encode("evt", proto.event(dev, seq, typ, **fields)), now)
        self.records += step.records
        [(leaf, msg)] = [(leaf, proto.decode(leaf, p.payload)) for p in step.publishes
                         for leaf in ("res", "err")
                         if p.topic == proto.device_topic("t1", dev, leaf)]
        self.replies.append([dev, typ, leaf, msg])
        if typ == "help" and leaf == "res":
            hhmm = dt.datetime.fromtimestamp(now, hs.CST).strftime("%H:%M")
            self.labels[f"{dev}@{hhmm}"] = step.records[0].pos
        return leaf, msg

    def help(self, label: str, window: int, clerk: str, now: float) -> None:
        step = self.app.operate(Help(window, clerk), now)
        self.records += step.records
        self.labels[label] = step.records[0].pos

    def answer(self, label: str, by: str, now: float) -> None:
        self.records += self.app.operate(HelpAnswer(self.labels[label], by), now).records

    def snap(self, label: str) -> None:
        pass


def test_the_same_events_write_the_same_journal_and_get_the_same_answers():
    live = Live()
    hs.scenario(live)
    assert estimates_apart(json.loads(json.dumps(
        [[r.pos, r.ts, r.dev, r.seq, r.body] for r in live.records]))) \
        == estimates_apart(now_records(OLD["records"]))  # as the journal stores them (JSON)
    assert json.loads(json.dumps(live.replies)) == OLD["replies"]
    assert live.labels == OLD["labels"]
    assert live.observe() == now_position(OLD["positions"][-1])
    assert live.written == now_history(OLD["history"], live=True)


def test_an_old_journal_shows_at_every_position_what_it_showed_then():
    a = App()
    for rec, then in zip(records(), OLD["positions"], strict=True):
        a.app.replay([rec])
        assert a.observe() == now_position(then), f"after record {rec.pos} ({rec.body['op']})"
    assert a.written == now_history(OLD["history"])
    now = json.loads(json.dumps(a.app.centre.to_dict()))
    # a ticket gained its pre-review and the materials it was returned for, by whom (issue 17)
    then = {**OLD["centre"], "tickets": {k: {**t, "review": None, "returned": [],
                                             "returned_by": None}
                                         for k, t in OLD["centre"]["tickets"].items()},
            # a window gained the reason it is paused for (issue 18): none is paused
            "windows": {n: {**w, "pause_reason": None}
                        for n, w in OLD["centre"]["windows"].items()}}
    assert {k: now[k] for k in OLD["centre"]} == then


def test_the_staff_report_of_an_old_journal_is_unchanged():
    report = compute(collect(records(), hs.catalog(), hs.config(), hs.at(0, 0, 0),
                             hs.at(3, 0, 0)), hs.catalog())
    centre, clerks = now_report()
    got = json.loads(json.dumps(report.centre))
    assert {k: got.get(k) for k in centre} == centre
    # counts the report gained since (bookings, ...): the old journal has none of them
    assert {k: v for k, v in got.items() if k not in centre and v != 0} == {}
    assert [[r.clerk, r.services, r.ratings, r.satisfied, r.rating_share]
            for r in report.clerks] == clerks


def _decoded(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored snapshot document through the store's own decoding (and migrations)."""
    data = zlib.compress(json.dumps(doc).encode())
    return snap_mod.decode(data, hashlib.sha256(data).hexdigest(), snap_mod.CODEC)


@pytest.mark.parametrize("label", sorted(OLD["snapshots"]))
def test_an_old_snapshot_loads_and_its_tail_replays_as_the_whole_journal(label):
    doc = OLD["snapshots"][label]
    assert doc["version"] == 3
    pos = doc["state"]["pos"]
    a = App()
    a.app.restore(_decoded(doc))
    assert a.observe() == now_position(OLD["positions"][pos - 1])
    for rec in records()[pos:]:
        a.app.replay([rec])
        assert a.observe() == now_position(OLD["positions"][rec.pos - 1]), \
            f"after record {rec.pos}"
    full = App()
    full.app.replay(records())
    mine, whole = a.app.snapshot(), full.app.snapshot()
    # The wait interval's calibration by day (2026-12-06) is not in a snapshot from before
    # it and cannot be rebuilt from one: restored, it starts afresh, as a new hub does
    # (what that hub printed: the table's interval alone), and learns from the days after
    # the snapshot; the whole journal replayed learns from every day. All else is equal.
    cal, whole_cal = mine["waits"].pop("calibration"), whole["waits"].pop("calibration")
    assert mine == whole
    assert cal["day"] == whole_cal["day"] and cal["days"] <= whole_cal["days"]
    if doc["state"]["centre"]["day"] == a.app.centre.day:  # no day began after it
        assert (cal["offset"], cal["days"]) == (0.0, 0)
    assert a.app.centre.to_dict() == full.app.centre.to_dict()
    # Past days closed after the snapshot are handed to the history as they were then.
    assert a.written == now_history(
        [f for f in OLD["history"] if f["day"] >= doc["state"]["centre"]["day"]])


def test_a_migrated_snapshot_keeps_no_second_copy_in_the_app():
    for doc in OLD["snapshots"].values():
        state = _decoded(doc)
        assert "ratings" not in state["app"] and "help_requests" not in state["app"]
        a = App()
        a.app.restore(state)
        assert not hasattr(a.app, "ratings") and not hasattr(a.app, "help_requests")
