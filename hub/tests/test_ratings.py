"""Ratings tied to service: one rating per served ticket, from the window that served it,
within the policy's rating time after completion. Through `HubApp.handle` with real
protocol messages, then through the staff report that counts them."""

from __future__ import annotations

import datetime as dt

import pytest

from onewindow.hub.app import HubApp
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.policy import OrderingPolicy
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.report.staff import collect, compute
from onewindow.hub.store.journal import Record
from onewindow.protocol import ow_protocol as proto

from .catalogs import small_catalog

CST = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=CST).timestamp()  # a Monday, 09:00
RATING_TIME = OrderingPolicy().rating_window


def config() -> CentreConfig:
    return CentreConfig("t1", (WindowSpec(1), WindowSpec(2)))


def hub() -> HubApp:
    return HubApp(Centre(small_catalog(), config()),
                  Registry([DeviceSpec("node-1", "node", 1), DeviceSpec("kp-2", "keypad", 2),
                            DeviceSpec("box-1", "box")]), "boot1")


class Devices:
    """Each device's own seq counter, and every journaled record (the hub's journal)."""

    def __init__(self, app: HubApp) -> None:
        self.app = app
        self.seq: dict[str, int] = {}
        self.journal: list[Record] = []

    def send(self, dev: str, typ: str, now: float, **fields) -> tuple[str, dict]:
        """("res" or "err", the decoded answer to the device)."""
        seq = self.seq[dev] = self.seq.get(dev, 0) + 1
        step = self.app.handle(proto.device_topic("t1", dev, "evt"),
                               proto.encode("evt", proto.event(dev, seq, typ, **fields)), now)
        self.journal += step.records
        [(leaf, msg)] = [(leaf, proto.decode(leaf, p.payload)) for p in step.publishes
                         for leaf in ("res", "err") if p.topic == proto.device_topic(
                             "t1", dev, leaf)]
        assert msg["seq"] == seq
        return leaf, msg


def served_day(d: Devices) -> dict[str, str]:
    """A001 served at window 1 (node-1, clerk alice), A002 at window 2 (kp-2, bob), A003
    still waiting. Returns the numbers."""
    for _ in range(3):
        d.send("box-1", "take", T0, item="SOC-1")
    d.send("node-1", "open", T0, clerk="alice")
    d.send("kp-2", "open", T0, clerk="bob")
    assert d.send("node-1", "call", T0 + 10)[1]["ticket"] == "A001"
    d.send("node-1", "start", T0 + 20)
    d.send("node-1", "complete", T0 + 300)
    assert d.send("kp-2", "call", T0 + 30)[1]["ticket"] == "A002"
    d.send("kp-2", "complete", T0 + 400)  # served without `start`: a keypad's usual way
    return {"alice": "A001", "bob": "A002", "waiting": "A003"}


def refused(d: Devices, dev: str, now: float, ticket: str, score: int = 1) -> str:
    """Rate and expect an `err` that changes nothing: no record, same state, same ratings."""
    before, pos = d.app.centre.to_dict(), d.app.pos
    leaf, msg = d.send(dev, "rate", now, ticket=ticket, score=score)
    assert leaf == "err", msg
    assert d.app.centre.to_dict() == before and d.app.pos == pos
    assert not any(r.body.get("op") == "rate" and r.seq == d.seq[dev] for r in d.journal)
    return msg["code"]


def test_one_rating_per_served_ticket_from_its_window_in_time():
    d = Devices(hub())
    n = served_day(d)
    assert d.send("node-1", "rate", T0 + 310, ticket=n["alice"], score=1)[0] == "res"
    assert refused(d, "node-1", T0 + 320, n["alice"], 3) == "already_rated"
    assert refused(d, "node-1", T0 + 330, n["waiting"]) == "not_served"
    assert refused(d, "node-1", T0 + 340, n["bob"]) == "served_elsewhere"
    assert refused(d, "node-1", T0 + 350, "Z999") == "unknown_ticket"
    assert refused(d, "kp-2", T0 + 400 + RATING_TIME + 1, n["bob"]) == "rating_closed"
    assert d.send("kp-2", "rate", T0 + 400 + RATING_TIME, ticket=n["bob"], score=3)[0] == "res"
    # A device event without `scale` is the old three-level score (1 good, 3 bad), which
    # the core keeps on the five-level scale: 1 -> 5 非常满意, 3 -> 1 非常不满意.
    assert [(r.ticket[-4:], r.score, r.window, r.clerk) for r in d.app.centre.ratings.values()] \
        == [("A001", 5, 1, "alice"), ("A002", 1, 2, "bob")]
    assert sorted(d.app.centre.to_dict()["ratings"]) == sorted(
        d.app.centre.find_ticket(x).id for x in (n["alice"], n["bob"]))


def test_a_ticket_being_served_may_be_rated_once_and_not_again_after_it_is_done():
    d = Devices(hub())
    d.send("box-1", "take", T0, item="SOC-1")
    d.send("node-1", "open", T0, clerk="alice")
    d.send("node-1", "call", T0)
    assert refused(d, "node-1", T0 + 5, "A001") == "not_served"  # called, not yet served
    d.send("node-1", "start", T0 + 10)
    assert d.send("node-1", "rate", T0 + 60, ticket="A001", score=2)[0] == "res"
    d.send("node-1", "complete", T0 + 120)
    assert refused(d, "node-1", T0 + 130, "A001") == "already_rated"


def test_a_no_show_cannot_be_rated():
    d = Devices(hub())
    d.send("box-1", "take", T0, item="SOC-1")
    d.send("node-1", "open", T0, clerk="alice")
    d.send("node-1", "call", T0)
    d.send("node-1", "skip", T0 + 60, requeue=False)
    assert refused(d, "node-1", T0 + 70, "A001") == "not_served"


def test_the_staff_report_counts_only_the_ratings_tied_to_service():
    """The case of the issue: 4 ratings sent for 2 served tickets used to give alice 25 %."""
    d = Devices(hub())
    n = served_day(d)
    d.send("node-1", "rate", T0 + 310, ticket=n["alice"], score=1)
    d.send("node-1", "rate", T0 + 311, ticket=n["alice"], score=3)  # again
    d.send("node-1", "rate", T0 + 312, ticket=n["bob"], score=3)  # bob's resident
    d.send("node-1", "rate", T0 + 313, ticket=n["waiting"], score=3)  # never served
    d.send("kp-2", "rate", T0 + 420, ticket=n["bob"], score=2)
    rates = [r for r in d.journal if r.body["op"] == "rate"]
    assert len(rates) == 2
    facts = collect(d.journal, small_catalog(), config(), T0 - 3600, T0 + 86400)
    assert facts.rejected == 0
    rows = {r.clerk: r for r in compute(facts, small_catalog()).clerks}
    assert (rows["alice"].ratings, rows["alice"].satisfied, rows["alice"].rating_share) == \
        (1, 1, 1.0)
    # bob's one rating is the three-level 2 (ok), i.e. 3 基本满意: the state's 满意率 counts
    # 非常满意 + 满意 + 基本满意, so it is a satisfied one.
    assert (rows["bob"].ratings, rows["bob"].satisfied, rows["bob"].rating_share) == \
        (1, 1, 1.0)


def test_a_restarted_hub_replays_its_ratings_and_still_refuses_a_second_one():
    d = Devices(hub())
    n = served_day(d)
    d.send("node-1", "rate", T0 + 310, ticket=n["alice"], score=1)
    again = hub()
    again.replay(d.journal)
    assert again.centre.to_dict() == d.app.centre.to_dict()
    assert again.centre.ratings == d.app.centre.ratings
    d2 = Devices(again)
    d2.seq = dict(d.seq)
    d2.journal = list(d.journal)
    assert refused(d2, "node-1", T0 + 320, n["alice"]) == "already_rated"


def legacy(pos: int, ts: float, dev: str, seq: int, ticket: str, score: int, window: int,
           clerk: str) -> Record:
    """A `rate` record as the hub wrote it before ratings were tied to service."""
    return Record(pos, ts, dev, seq, {"op": "rate", "ticket": ticket, "score": score,
                                      "window": window, "clerk": clerk})


def test_an_old_journal_with_unchecked_ratings_still_replays():
    """Old journals hold ratings the hub no longer accepts (twice, another window's, never
    served): they still load; those that are tied to a service count, the others are left
    out of the ratings and of the staff report, and the replay goes on."""
    d = Devices(hub())
    served_day(d)
    pos, seq = d.app.pos, d.seq["node-1"]
    day = d.app.centre.day
    old = [legacy(pos + 1, T0 + 310, "node-1", seq + 1, f"{day}-A001", 1, 1, "alice"),
           legacy(pos + 2, T0 + 311, "node-1", seq + 2, f"{day}-A001", 3, 1, "alice"),
           legacy(pos + 3, T0 + 312, "node-1", seq + 3, f"{day}-A002", 3, 1, "alice"),
           legacy(pos + 4, T0 + 313, "node-1", seq + 4, f"{day}-A003", 3, 1, "alice")]
    records = d.journal + old
    again = hub()
    assert again.replay(records) == len(records)
    # The old record's 1 (good, no `scale`: three-level) replays as 5 非常满意.
    assert [(r.ticket, r.score) for r in again.centre.ratings.values()] == [(f"{day}-A001", 5)]
    assert again.registry.get("node-1").last_seq == seq + 4
    facts = collect(records, small_catalog(), config(), T0 - 3600, T0 + 86400)
    rows = {r.clerk: r for r in compute(facts, small_catalog()).clerks}
    assert (rows["alice"].ratings, rows["alice"].rating_share) == (1, 1.0)
    assert rows["bob"].ratings == 0
    assert (facts.ignored_ratings, facts.rejected) == (3, 0)


def test_the_core_rate_command_checks_on_its_own():
    core = Centre(small_catalog(), config())
    core.apply(c.OpenWindow(1, clerk="alice"), T0)
    core.apply(c.TakeTicket("SOC-1"), T0)
    core.apply(c.CallNext(1), T0)
    core.apply(c.Complete(1), T0 + 60)
    tid = core.find_ticket("A001").id
    # Scale 5 (the default): 4 满意, a level that opens no follow-up, so one effect.
    [given] = core.apply(c.Rate(1, tid, 4), T0 + 70)
    assert (given.ticket, given.score, given.window, given.clerk) == (tid, 4, 1, "alice")
    before = core.to_dict()
    for bad, code in ((c.Rate(1, "A001", 2), "already_rated"),
                      (c.Rate(1, "A001", 6), "bad_field"), (c.Rate(1, "A001", 0), "bad_field"),
                      (c.Rate(1, "A001", 4, scale=3), "bad_field"),  # three-level: 1-3
                      (c.Rate(1, "A001", 5, scale=4), "bad_field"),
                      (c.Rate(1, "A001", True), "bad_field"),
                      (c.Rate(7, "A001", 1), "unknown_window")):
        with pytest.raises(Rejected) as e:
            core.apply(bad, T0 + 80)
        assert e.value.code == code
        assert core.to_dict() == before
