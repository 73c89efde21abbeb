"""Issue 16, ratings the way the state counts them (好差评): the five levels, the old
three-level keys and journal records mapped onto them (good -> 5 非常满意, ok -> 3 基本满意,
bad -> 1 非常不满意), an old journal replayed, the staff report's counts by level and its
满意率 = (非常满意 + 满意 + 基本满意) / all, and one rating per served ticket (hypothesis).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from onewindow.hub.app import HubApp
from onewindow.hub.core import commands as c
from onewindow.hub.core import ratings
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.effects import RatingGiven
from onewindow.hub.core.followups import FollowupOpened
from onewindow.hub.core.model import TicketState
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.report.staff import collect, compute
from onewindow.hub.store.journal import Record
from onewindow.protocol import ow_protocol as proto

from .catalogs import small_catalog

TZ = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ).timestamp()  # a Monday
FIXTURE = Path(__file__).with_name("ratings_three_level_journal.json")


def centre() -> Centre:
    return Centre(small_catalog(), CentreConfig("t1", (WindowSpec(1), WindowSpec(2))))


def app() -> HubApp:
    return HubApp(centre(), Registry([DeviceSpec("box-1", "box"),
                                      DeviceSpec("node-1", "node", 1),
                                      DeviceSpec("node-2", "node", 2)]), "boot1")


def served(core: Centre, n: int, at: float = T0) -> list[str]:
    """n tickets served at window 1 (clerk alice), done; their ids."""
    core.apply(c.OpenWindow(1, "alice"), at)
    ids = []
    for k in range(n):
        ids.append(core.apply(c.TakeTicket("SOC-1"), at + k)[0].ticket)  # type: ignore[attr-defined]
        core.apply(c.CallNext(1), at + k + 0.1)
        core.apply(c.Start(1), at + k + 0.2)
        core.apply(c.Complete(1), at + k + 0.3)
    return ids


# ---- the mapping ------------------------------------------------------------------------
def test_the_five_levels_and_the_three_level_keys_mapped_onto_them():
    assert [ratings.LEVELS[k][0] for k in (5, 4, 3, 2, 1)] == [
        "非常满意", "满意", "基本满意", "不满意", "非常不满意"]
    assert [ratings.level(s, 5) for s in (5, 4, 3, 2, 1)] == [5, 4, 3, 2, 1]
    # good -> 5 非常满意, ok -> 3 基本满意, bad -> 1 非常不满意
    assert [ratings.level(s, 3) for s in (1, 2, 3)] == [5, 3, 1]
    for score, scale in ((0, 5), (6, 5), (4, 3), (0, 3), (True, 5), (1.0, 5), ("5", 5),
                         (3, 4), (3, None), (1, True)):
        with pytest.raises(Rejected) as e:
            ratings.level(score, scale)
        assert e.value.code == "bad_field"
    counts, rate = ratings.satisfaction([5, 4, 3, 2, 1, 1, 3])
    assert counts == {5: 1, 4: 1, 3: 2, 2: 1, 1: 2} and rate == pytest.approx(4 / 7)
    assert ratings.satisfaction([]) == ({5: 0, 4: 0, 3: 0, 2: 0, 1: 0}, None)


def test_the_core_keeps_five_levels_and_maps_a_three_level_rating():
    core = centre()
    a, b, d = served(core, 3)
    core.apply(c.Rate(1, a, 4), T0 + 10)  # scale 5 by default
    core.apply(c.Rate(1, b, 1, scale=3), T0 + 11)  # a three-key "good"
    core.apply(c.Rate(1, d, 2, scale=3), T0 + 12)  # "ok"
    assert [(r.ticket, r.score) for r in core.ratings.values()] == [(a, 4), (b, 5), (d, 3)]
    before = core.to_dict()
    for cmd in (c.Rate(1, a, 5), c.Rate(1, "nope", 5)):
        with pytest.raises(Rejected):
            core.apply(cmd, T0 + 13)
    assert core.to_dict() == before


def test_records_with_and_without_scale():
    new = c.Rate(1, "20261123-A001", 2, comment="太慢").to_record()
    assert new == {"op": "rate", "window": 1, "ticket": "20261123-A001", "score": 2,
                   "scale": 5, "comment": "太慢"}
    assert c.from_record(new) == c.Rate(1, "20261123-A001", 2, 5, "太慢")
    assert "comment" not in c.Rate(1, "x", 5).to_record()
    old = {"op": "rate", "window": 1, "ticket": "20261123-A001", "score": 1, "clerk": "alice"}
    # no `scale`: written before the five levels (and before follow-ups, which its replay
    # does not open: a snapshot of that time holds none either)
    assert c.from_record(old) == c.Rate(1, "20261123-A001", 1, 3, before_followups=True)
    assert "before_followups" not in c.Rate(1, "x", 1, 3, before_followups=True).to_record()


def test_the_protocol_takes_five_levels_with_scale_and_three_without():
    def ok(**f):
        proto.decode("evt", proto.encode("evt", proto.event("node-1", 1, "rate",
                                                            ticket="A001", **f)))

    for f in ({"score": 5, "scale": 5}, {"score": 1, "scale": 5}, {"score": 3},
              {"score": 1, "scale": 3}):
        ok(**f)
    for f in ({"score": 4}, {"score": 4, "scale": 3}, {"score": 6, "scale": 5},
              {"score": 2, "scale": 4}, {"score": 0, "scale": 5}, {"score": 1, "scale": True}):
        with pytest.raises(proto.ProtocolError) as e:
            ok(**f)
        assert e.value.code == "bad_field"


def test_a_device_rating_with_scale_5_and_a_three_key_device_without():
    live = app()
    seq = {"box-1": 0, "node-1": 0}

    def ev(dev, typ, at, **f):
        seq[dev] += 1
        return live.handle(proto.device_topic("t1", dev, "evt"),
                           proto.encode("evt", proto.event(dev, seq[dev], typ, **f)), at)

    for k in range(2):
        ev("box-1", "take", T0 + k, item="SOC-1")
    ev("node-1", "open", T0 + 5, clerk="alice")
    rates = []
    for k, f in enumerate(({"score": 2, "scale": 5}, {"score": 1})):
        ev("node-1", "call", T0 + 10 + 10 * k)
        ev("node-1", "start", T0 + 11 + 10 * k)
        ev("node-1", "complete", T0 + 12 + 10 * k)
        step = ev("node-1", "rate", T0 + 13 + 10 * k, ticket=f"A00{k + 1}", **f)
        rates.append(step.records[0].body)
    # the record says which scale: a three-key device's score stays as it sent it
    assert [(b["score"], b["scale"]) for b in rates] == [(2, 5), (1, 3)]
    assert [r.score for r in live.centre.ratings.values()] == [2, 5]


# ---- an old journal -----------------------------------------------------------------------
def old_journal() -> list[Record]:
    d = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return [Record(p, ts, dev, seq, body) for p, ts, dev, seq, body in d["records"]]


def test_an_old_three_level_journal_replays_onto_the_five_levels():
    records = old_journal()
    assert all("scale" not in r.body for r in records if r.body["op"] == "rate")
    again = app()
    assert again.replay(records) == len(records)
    day = again.centre.day
    assert [(r.ticket[-4:], r.score, r.clerk) for r in again.centre.ratings.values()] == [
        ("A001", 5, "alice"), ("A002", 3, "bob"), ("A003", 1, "alice"), ("A004", 1, "bob"),
        ("A005", 5, "alice")]
    # The two old 不满意 (bad -> 1 非常不满意) open no follow-up: they were given before
    # follow-ups existed, and a snapshot taken then holds none, so a full replay must not
    # have any either (snapshot + tail = full replay; test_help_compat's old snapshots).
    assert again.centre.followups == {}
    # The same ratings journaled today by a three-key device (scale 3) do open them.
    now = app()
    now.replay(with_scale(records))
    assert sorted(now.centre.followups) == [f"{day}-A003", f"{day}-A004"]


def with_scale(records: list[Record]) -> list[Record]:
    """The records as today's hub journals a three-key device's ratings: with `scale` 3."""
    return [Record(r.pos, r.ts, r.dev, r.seq,
                   {**r.body, "scale": 3} if r.body["op"] == "rate" else r.body)
            for r in records]


def test_the_staff_report_counts_by_level_and_the_state_s_satisfaction_rate():
    records = with_scale(old_journal())  # three-key ratings given today: they open follow-ups
    live = app()
    live.replay(records)
    day = live.centre.day
    at = records[-1].ts
    # new five-level ratings beside the old ones: closing one follow-up
    step = live.operate(c.CloseFollowup(f"{day}-A003", "sup", "已回访，致歉"), at + 60)
    records += step.records
    core = live.centre
    facts = collect(records, core.catalog, core.config, T0 - 3600, at + 3600)
    report = compute(facts, core.catalog)
    cen = report.centre
    assert [cen[f"rated_{k}"] for k in (5, 4, 3, 2, 1)] == [2, 0, 1, 0, 2]
    assert cen["ratings"] == 5 and cen["satisfied"] == 3
    assert cen["rating_share"] == pytest.approx(3 / 5)  # (非常满意+满意+基本满意)/total
    assert (cen["followups_opened"], cen["followups_closed"], cen["followups_open"]) == (
        2, 1, 1)
    rows = {r.clerk: r for r in report.clerks}
    assert rows["alice"].levels == {5: 2, 4: 0, 3: 0, 2: 0, 1: 1}
    assert rows["alice"].rating_share == pytest.approx(2 / 3) and rows["alice"].followups == 1
    assert rows["bob"].levels == {5: 0, 4: 0, 3: 1, 2: 0, 1: 1} and rows["bob"].followups == 1
    assert facts.ignored_ratings == 0 and facts.rejected == 0


# ---- one rating per served ticket ---------------------------------------------------------
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["take", "serve", "call", "rate", "rate"]),
                          st.integers(0, 9), st.sampled_from([1, 2]),
                          st.sampled_from([(5, 5), (4, 5), (3, 5), (2, 5), (1, 5), (1, 3),
                                           (2, 3), (3, 3), (6, 5), (4, 3)])),
                min_size=5, max_size=60))
def test_one_rating_per_served_ticket(ops):
    core = Centre(small_catalog(), CentreConfig("t1", (WindowSpec(1), WindowSpec(2))))
    now = T0
    core.apply(c.OpenWindow(1, "alice"), now)
    core.apply(c.OpenWindow(2, "bob"), now)
    given_ = 0
    for kind, pick, window, (score, scale) in ops:
        now += 5
        try:
            if kind == "take":
                core.apply(c.TakeTicket("SOC-1"), now)
            elif kind == "call":
                core.apply(c.CallNext(window), now)
            elif kind == "serve":
                core.apply(c.CallNext(window), now)
                core.apply(c.Start(window), now + 1)
                core.apply(c.Complete(window), now + 2)
            else:
                ids = sorted(core.tickets) or ["none"]
                tid = ids[pick % len(ids)]
                t = core.tickets.get(tid)
                was_rated = ratings.is_rated(core, tid)
                ok_service = (t is not None and ratings.served_window(t) == window)
                before = core.to_dict()
                try:
                    effects = core.apply(c.Rate(window, tid, score, scale), now)
                except Rejected as e:
                    assert core.to_dict() == before
                    event(f"refused {e.code}")
                    continue
                assert ok_service and not was_rated and score <= scale
                assert t is not None and t.state in (TicketState.SERVING, TicketState.DONE)
                given_ += 1
                lvl = ratings.level(score, scale)
                assert [type(x) for x in effects] == (
                    [RatingGiven, FollowupOpened] if lvl <= 2 else [RatingGiven])
        except Rejected:
            pass
    assert len(core.ratings) == given_
    assert len(set(core.ratings)) == len(core.ratings)
    assert all(r.score in (1, 2, 3, 4, 5) for r in core.ratings.values())
    assert sorted(core.followups) == sorted(k for k, r in core.ratings.items() if r.score <= 2)
