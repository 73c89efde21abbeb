"""Notices in the core (hub/core/notices.py): which are due when, each kind once per ticket,
none for a ticket already called ("near") or no longer waiting or called, outcomes settled
once; and the journal: a full replay and a snapshot plus the tail rebuild the same state,
over random days (hypothesis), through the app as the hub runs it (hub/app/notices.py)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onewindow.hub.app import HubApp
from onewindow.hub.app.notices import due_step
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core import notices
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.model import TicketState, first_call
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.devices import Registry

TZ = dt.timezone(dt.timedelta(hours=8))
MON_10 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=TZ).timestamp()  # a Monday, open 9-17
RULES = notices.NoticeRules(near_ahead=2, near_minutes=0)
CATALOG = load_catalog()
PHONE = "p1.sealed-number-stand-in"


def centre() -> Centre:
    return Centre(CATALOG, CentreConfig("t", tuple(WindowSpec(n) for n in (1, 2))))


def app() -> HubApp:
    return HubApp(centre(), Registry([]), "b1")


def remote(item: str = "SOC-001", who: str = "ph:aa", **kw) -> c.RemoteTake:
    return c.RemoteTake(item, resident=who, phone=PHONE, **kw)


def settle_all(a: HubApp, now: float) -> None:
    for nid, ch in notices.pending(a.centre):
        a.operate(c.NoticeOutcome(nid, ch, "sent", 1), now)


# ---- the rules -------------------------------------------------------------------------------
def test_near_once_when_few_are_ahead_then_called_once_and_never_near_after_a_call():
    a = app()
    a.operate(c.OpenWindow(1), MON_10)
    for i in range(4):
        a.operate(c.TakeTicket("SOC-001"), MON_10 + i)
    a.operate(remote(), MON_10 + 5)
    tid = next(reversed(a.centre.tickets))
    assert due_step(a, RULES, ("page", "sms"), MON_10 + 6).records == []  # 4 ahead
    a.operate(c.CallNext(1), MON_10 + 10)
    assert due_step(a, RULES, ("page", "sms"), MON_10 + 11).records == []  # 3 ahead
    a.operate(c.CallNext(1), MON_10 + 20)
    [rec] = due_step(a, RULES, ("page", "sms"), MON_10 + 21).records
    assert json.loads(json.dumps(rec.body)) == {
        "op": "notice", "ticket": tid, "kind": "near", "ahead": 2,
        "minutes": rec.body["minutes"], "window": None, "channels": ["page", "sms"]}
    a.operate(c.CallNext(1), MON_10 + 30)  # 1 ahead: near was due already
    assert due_step(a, RULES, ("page", "sms"), MON_10 + 31).records == []
    a.operate(c.CallNext(1), MON_10 + 40)
    a.operate(c.CallNext(1), MON_10 + 50)  # the remote ticket, at window 1
    [called] = due_step(a, RULES, ("page", "sms"), MON_10 + 51).records
    assert called.body["kind"] == "called" and called.body["window"] == 1
    a.operate(c.Recall(1), MON_10 + 60)
    assert due_step(a, RULES, ("page", "sms"), MON_10 + 61).records == []
    assert sorted(n.kind for n in a.centre.notices.values()) == ["called", "near"]


def test_a_ticket_called_before_near_was_due_never_gets_near_even_when_requeued():
    a = app()
    a.operate(c.OpenWindow(1), MON_10)
    for i in range(5):
        a.operate(c.TakeTicket("SOC-001"), MON_10 + i)
    a.operate(remote(), MON_10 + 5)
    tid = next(reversed(a.centre.tickets))
    # a clerk marks it priority and calls it in the same batch: near was never due
    a.operate(c.MarkPriority(tid, by="clerk"), MON_10 + 6)
    a.operate(c.CallNext(1), MON_10 + 10)
    assert a.centre.tickets[tid].state is TicketState.CALLED
    a.operate(c.Skip(1, requeue=True), MON_10 + 20)  # waiting again, called once
    assert a.centre.tickets[tid].state is TicketState.WAITING
    kinds = [r.body["kind"] for r in due_step(a, RULES, ("page",), MON_10 + 21).records]
    assert "near" not in kinds


@pytest.mark.parametrize("end", ["no_show", "done"])
def test_nothing_is_due_for_a_ticket_no_longer_waiting_or_called(end):
    a = app()
    a.operate(c.OpenWindow(1), MON_10)
    a.operate(remote(), MON_10)
    tid = next(reversed(a.centre.tickets))
    a.operate(c.CallNext(1), MON_10 + 1)
    if end == "no_show":
        a.operate(c.Skip(1, requeue=False), MON_10 + 2)
    else:
        a.operate(c.Start(1), MON_10 + 2)
        a.operate(c.Complete(1), MON_10 + 3)
    assert a.centre.tickets[tid].state.value == end
    assert due_step(a, RULES, ("page", "sms"), MON_10 + 4).records == []


def test_a_due_notice_whose_ticket_moved_on_is_no_longer_wanted():
    a = app()
    a.operate(c.OpenWindow(1), MON_10)
    a.operate(remote(), MON_10)
    [rec] = due_step(a, RULES, ("page",), MON_10 + 1).records
    n = a.centre.notices[notices.notice_id(rec.body["ticket"], "near")]
    assert notices.wanted(a.centre, n)
    a.operate(c.CallNext(1), MON_10 + 2)
    assert not notices.wanted(a.centre, n)  # called: "near" would come too late
    assert notices.pending(a.centre) == [(n.id, "page")]


def test_outcomes_settle_once_and_bad_ones_change_nothing():
    a = app()
    a.operate(c.OpenWindow(1), MON_10)
    a.operate(remote(), MON_10)
    due_step(a, RULES, ("page", "sms"), MON_10 + 1)
    [nid] = a.centre.notices
    before = a.centre.to_dict()
    for bad in (c.NoticeOutcome("n1:nope:near:0", "sms", "sent"),
                c.NoticeOutcome(nid, "fax", "sent"),
                c.NoticeOutcome(nid, "sms", "delivered-maybe"),
                c.NoticeDue(next(iter(a.centre.contacts)), "near", channels=("page",)),
                c.NoticeDue(next(iter(a.centre.contacts)), "called", channels=("pigeon",)),
                c.NoticeDue("20261123-Z999", "near", channels=("page",))):
        with pytest.raises(Rejected):
            a.operate(bad, MON_10 + 2)
        assert a.centre.to_dict() == before
    a.operate(c.NoticeOutcome(nid, "sms", "failed", 5), MON_10 + 3)
    with pytest.raises(Rejected) as e:
        a.operate(c.NoticeOutcome(nid, "sms", "sent", 1), MON_10 + 4)
    assert e.value.code == "notice_settled"
    assert notices.pending(a.centre) == [(nid, "page")]


def test_contacts_and_notices_leave_with_the_day():
    a = app()
    a.operate(c.OpenWindow(1), MON_10)
    a.operate(remote(), MON_10)
    due_step(a, RULES, ("page",), MON_10 + 1)
    assert a.centre.contacts and a.centre.notices
    a.operate(c.TakeTicket("SOC-001"), MON_10 + 86400)  # Tuesday
    assert a.centre.contacts == {} and a.centre.notices == {}


# ---- random days: the rules hold, and the journal rebuilds the same state -----------------
OPS = st.one_of(
    st.tuples(st.just("take"), st.sampled_from(["SOC-001", "SOC-003"])),
    st.tuples(st.just("remote"), st.sampled_from(["ph:a", "ph:b", "ph:c", "ph:d"])),
    st.tuples(st.just("call"), st.sampled_from([1, 2])),
    st.tuples(st.just("skip"), st.sampled_from([1, 2])),
    st.tuples(st.just("serve"), st.sampled_from([1, 2])),
    st.tuples(st.just("settle"), st.sampled_from(["sent", "failed", "dropped"])),
    st.tuples(st.just("wait"), st.sampled_from([60, 600, 3600, 6 * 3600])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(OPS, min_size=1, max_size=60), cut=st.integers(0, 200))
def test_random_days_once_per_kind_never_late_and_replay_and_snapshot_agree(ops, cut):
    a = app()
    now = MON_10
    journal = []
    snap = None

    def run(cmd: c.Command) -> None:
        try:
            step = a.operate(cmd, now)
        except Rejected:
            return
        journal.extend(step.records)
        due = due_step(a, RULES, ("page", "sms"), now)
        for rec in due.records:  # each due notice: the rule held when it became due
            t = a.centre.tickets[rec.body["ticket"]]
            if rec.body["kind"] == "near":
                assert t.state is TicketState.WAITING and first_call(t) is None
            else:
                assert t.state is TicketState.CALLED
        journal.extend(due.records)

    for w in (1, 2):
        run(c.OpenWindow(w))
    for op, arg in ops:
        if op == "take":
            run(c.TakeTicket(arg))
        elif op == "remote":
            run(c.RemoteTake("SOC-001", resident=arg, phone=PHONE, per_day=2))
        elif op == "call":
            run(c.CallNext(arg))
        elif op == "skip":
            run(c.Skip(arg))
        elif op == "serve":
            run(c.Start(arg))
            run(c.Complete(arg))
        elif op == "settle":
            for nid, ch in notices.pending(a.centre)[:2]:
                run(c.NoticeOutcome(nid, ch, arg, 1))
        else:
            now += arg
        if snap is None and len(journal) >= cut:
            snap = json.loads(json.dumps(a.snapshot()))
    ids = [r.body["ticket"] + r.body["kind"] for r in journal if r.body["op"] == "notice"]
    assert len(ids) == len(set(ids))  # each kind once per ticket
    for n in a.centre.notices.values():
        assert all(s in ("due", "sent", "failed", "dropped") for s in n.channels.values())

    full = app()
    full.replay(journal)
    assert full.centre.to_dict() == a.centre.to_dict()
    if snap is not None:
        part = app()
        part.restore(snap)
        part.replay([r for r in journal if r.pos > snap["pos"]])
        assert part.centre.to_dict() == a.centre.to_dict()
