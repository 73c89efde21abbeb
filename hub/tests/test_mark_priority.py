"""Issue 16, the staff side of priority: a clerk marks a waiting ticket priority (爱心优先).

The core's rules (the tier it moves to, its place kept by issue time, who may be marked),
each refusal leaving the state exactly as it was; the journal record naming the clerk, and
replay and snapshot giving the same state (also on random journals, beside
test_snapshot's); the console's route with its permissions; the printed ticket, the hall and
phone snapshots and the dashboard's waits by tier.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from onewindow.hub.app import HubApp
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.measures import tier_waits
from onewindow.hub.core.model import Priority, TicketState
from onewindow.hub.core.policy import OrderingPolicy
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.core.snapshot import centre_state, restore_centre
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.render.escpos import render_ticket
from onewindow.hub.render.escpos_decode import decode
from onewindow.hub.store import snapshot as snap_mod
from onewindow.hub.store.journal import Record
from onewindow.hub.store.snapshot import decode as snap_decode
from onewindow.hub.store.snapshot import encode as snap_encode
from onewindow.protocol import ow_protocol as proto

from . import test_core_properties as props
from .catalogs import small_catalog
from .test_snapshot import Driver, assert_restore_plus_tail_equals, fresh, run_ops
from .test_staff_http import Env

TZ = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ).timestamp()  # a Monday


def centre(ratio: int = 2) -> Centre:
    cfg = CentreConfig("t1", (WindowSpec(1), WindowSpec(2)),
                       OrderingPolicy(mode="ratio", ratio=ratio))
    core = Centre(small_catalog(), cfg)
    core.apply(c.OpenWindow(1, "wang"), T0)
    return core


def take(core: Centre, at: float, priority: str = "normal", **kw) -> str:
    before = set(core.tickets)
    core.apply(c.TakeTicket("SOC-1", priority=priority, **kw), at)
    (tid,) = set(core.tickets) - before
    return tid


def refused(core: Centre, cmd: c.Command, at: float, code: str) -> None:
    before = core.to_dict()
    with pytest.raises(Rejected) as e:
        core.apply(cmd, at)
    assert e.value.code == code, e.value.message
    assert core.to_dict() == before  # nothing changed
    assert " / " in e.value.message  # zh-CN / zh-TW / English


# ---- the core ---------------------------------------------------------------------------
def test_a_marked_ticket_joins_the_priority_tier_in_its_place_by_issue_time():
    core = centre()
    a1 = take(core, T0 + 10)
    a2 = take(core, T0 + 20)
    p3 = take(core, T0 + 30, "priority")
    a4 = take(core, T0 + 40)
    assert core.apply(c.MarkPriority(core.tickets[a2].number, "wang"), T0 + 50) != []
    t = core.tickets[a2]
    assert t.priority is Priority.PRIORITY and t.order_key == T0 + 20
    assert t.history[-1] == (T0 + 50, "prioritised", None)
    # issued before the resident who pressed priority: ahead of them in the tier
    assert [u.id for u in core.queue.priority] == [a2, p3]
    assert [u.id for u in core.queue.normal] == [a1, a4]
    # ratio 2: two priority tickets, then a normal one, whatever the normal ones' age
    called = []
    for k in range(4):
        effects = core.apply(c.CallNext(1), T0 + 60 + k)
        called.append(core.windows[1].ticket)
        assert effects
    assert called == [a2, p3, a1, a4]


def test_only_a_waiting_normal_ticket_of_today_can_be_marked():
    core = centre()
    a1 = take(core, T0)
    a2 = take(core, T0 + 1)
    p3 = take(core, T0 + 2, "priority")
    b4 = take(core, T0 + 3, "appointment", appointment_at=T0 + 3600)
    core.apply(c.CallNext(1), T0 + 5)  # p3 first (priority)
    core.apply(c.CallNext(1), T0 + 6)  # p3 done, a1 called
    assert core.tickets[p3].state is TicketState.DONE
    assert core.tickets[a1].state is TicketState.CALLED
    now = T0 + 10
    refused(core, c.MarkPriority("A999", "wang"), now, "unknown_ticket")
    refused(core, c.MarkPriority("20261122-A002", "wang"), now, "unknown_ticket")
    refused(core, c.MarkPriority(a1, "wang"), now, "not_waiting")  # called
    refused(core, c.MarkPriority(p3, "wang"), now, "not_waiting")  # served
    refused(core, c.MarkPriority(b4, "wang"), now, "appointment_ticket")
    refused(core, c.MarkPriority(a2, ""), now, "bad_field")  # who did it is required
    refused(core, c.MarkPriority(a2, "  "), now, "bad_field")
    core.apply(c.MarkPriority(a2, "wang"), now)
    refused(core, c.MarkPriority(a2, "li"), now + 1, "already_priority")
    refused(core, c.MarkPriority(core.tickets[a2].number, "li"), now + 1, "already_priority")
    # tomorrow, yesterday's waiting ticket has expired: refused, and no roll-over is kept
    a5 = take(core, now + 2)
    tomorrow = T0 + 86400
    refused(core, c.MarkPriority(a5, "wang"), tomorrow, "unknown_ticket")
    assert core.day == "20261123"


def test_the_record_names_the_clerk_and_rebuilds_the_command():
    cmd = c.MarkPriority("20261123-A002", "wang")
    rec = cmd.to_record()
    assert rec == {"op": "mark_priority", "ticket": "20261123-A002", "by": "wang"}
    assert c.from_record(json.loads(json.dumps(rec))) == cmd


def test_a_skipped_ticket_keeps_its_place_when_marked_and_a_no_show_cannot_be_marked():
    core = centre()
    a1 = take(core, T0)
    a2 = take(core, T0 + 1)
    core.apply(c.CallNext(1), T0 + 5)  # a1
    core.apply(c.Skip(1, requeue=True), T0 + 6)  # back of the line once, order key T0+6
    core.apply(c.MarkPriority(a1, "wang"), T0 + 7)
    assert core.tickets[a1].order_key == T0 + 6
    core.apply(c.CallNext(1), T0 + 8)
    assert core.windows[1].ticket == a1
    core.apply(c.Skip(1), T0 + 9)  # the second skip: a no-show
    assert core.tickets[a1].state is TicketState.NO_SHOW
    refused(core, c.MarkPriority(a1, "wang"), T0 + 10, "not_waiting")
    assert core.tickets[a2].priority is Priority.NORMAL


# ---- journal, replay, snapshot ----------------------------------------------------------
def app() -> HubApp:
    core = Centre(small_catalog(), CentreConfig("t1", (WindowSpec(1), WindowSpec(2))))
    return HubApp(core, Registry([DeviceSpec("kp-1", "keypad", 1),
                                  DeviceSpec("box-1", "box")]), "boot1")


def evt(a: HubApp, dev: str, seq: int, typ: str, at: float, **f):
    return a.handle(proto.device_topic("t1", dev, "evt"),
                    proto.encode("evt", proto.event(dev, seq, typ, **f)), at)


def test_journaled_with_the_clerk_and_replay_and_snapshot_give_the_same_state():
    live = app()
    records: list[Record] = []
    for seq in range(1, 4):
        records += evt(live, "box-1", seq, "take", T0 + seq, item="SOC-1").records
    step = live.operate(c.MarkPriority("20261123-A002", "wang"), T0 + 10)
    (rec,) = step.records
    assert rec.dev is None and rec.body == {"op": "mark_priority",
                                            "ticket": "20261123-A002", "by": "wang"}
    records += step.records
    before = live.centre.to_dict()
    with pytest.raises(Rejected):  # refused: no record, nothing changed
        live.operate(c.MarkPriority("A002", "li"), T0 + 11)
    assert live.centre.to_dict() == before and live.pos == rec.pos
    records += evt(live, "kp-1", 1, "open", T0 + 12, clerk="wang").records
    records += evt(live, "kp-1", 2, "call", T0 + 13).records
    assert live.centre.tickets[live.centre.windows[1].ticket].number == "A002"

    replayed = app()
    replayed.replay([Record(r.pos, r.ts, r.dev, r.seq, json.loads(json.dumps(r.body)))
                     for r in records])
    assert replayed.centre.to_dict() == live.centre.to_dict()
    # a snapshot taken after the mark, through the store's codec, then the tail
    upto = app()
    upto.replay(records[:4])
    stored, _ = snap_encode(upto.snapshot())
    restored = app()
    restored.restore(snap_decode(stored, hashlib.sha256(stored).hexdigest(), snap_mod.CODEC))
    assert restored.centre.tickets["20261123-A002"].priority is Priority.PRIORITY
    restored.replay(records[4:])
    assert restored.centre.to_dict() == live.centre.to_dict()
    # the core's own half alone
    core = Centre(live.centre.catalog, live.centre.config)
    restore_centre(core, json.loads(json.dumps(centre_state(live.centre))))
    assert core.to_dict() == live.centre.to_dict()


def mark(d: Driver, ticket: str, by: str) -> None:
    try:
        step = d.app.operate(c.MarkPriority(ticket, by), d.now)
    except Rejected:
        return
    d.records += [Record(r.pos, r.ts, r.dev, r.seq, json.loads(json.dumps(r.body)))
                  for r in step.records]


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_restore_plus_tail_equals_a_full_replay_with_marks(data):
    """test_snapshot's property on journals that also mark tickets priority."""
    d = Driver()
    marked = 0
    for _ in range(data.draw(st.integers(4, 12))):
        run_ops(data, d, data.draw(st.integers(3, 15)))
        refs = [*sorted(d.app.centre.tickets), "A001", "nope"]
        ref = data.draw(st.sampled_from(refs))
        n = len(d.records)
        mark(d, ref, data.draw(st.sampled_from(["wang", "li", ""])))
        marked += len(d.records) - n
        event(f"marked: {len(d.records) - n}")
    records = d.records
    full = fresh()
    full.replay(records)
    assert sum(r.body["op"] == "mark_priority" for r in records) == marked
    assert_restore_plus_tail_equals(full, records, data, d.now)


class MarkingMachine(props.QueueMachine):
    """test_core_properties' queue invariants (FIFO within a class, the ratio rule, nothing
    lost, refusals change nothing) with clerks marking tickets priority among the rest."""

    @precondition(lambda self: self.issued)
    @rule(pick=st.integers(min_value=0, max_value=40), by=st.sampled_from(["wang", "wang", ""]))
    def mark(self, pick, by):
        ticket = self.issued[pick % len(self.issued)]
        t = self.core.tickets.get(ticket)
        markable = (t is not None and by and t.priority is Priority.NORMAL
                    and t in self._waiting())
        refusals = self.rejected
        self._do(c.MarkPriority(ticket, by))
        assert (self.rejected == refusals) == bool(markable), (ticket, by)
        event(f"mark {'accepted' if markable else 'refused'}")
        if markable:
            assert t.priority is Priority.PRIORITY and t.state is TicketState.WAITING


TestMarkingMachine = MarkingMachine.TestCase
TestMarkingMachine.settings = settings(max_examples=200, stateful_step_count=60, deadline=None,
                                       suppress_health_check=[HealthCheck.too_slow])


# ---- what shows it ----------------------------------------------------------------------
TICKET = {"centre_zh": "测试中心", "centre_en": "Test centre", "number": "A017",
          "item_zh": "社保卡挂失", "item_en": "Social security card", "ahead": 3,
          "wait_min": 12, "wait_range": (8, 17), "issued_at": "2026-11-23 09:00",
          "qr": "http://hub.local/t/20261123-A017"}


def test_a_priority_ticket_prints_its_line_and_a_normal_one_does_not():
    texts = decode(render_ticket({**TICKET, "priority": True}))["texts"]
    assert "爱心优先" in texts and "愛心優先 / Priority" in texts
    assert texts.index("A017") < texts.index("爱心优先") < texts.index("社保卡挂失")
    for plain in ({**TICKET, "priority": False}, TICKET):
        texts = decode(render_ticket(plain))["texts"]
        assert not any("优先" in t or "Priority" in t for t in texts)


def test_the_box_print_command_of_a_priority_ticket_says_so():
    a = app()
    evt(a, "kp-1", 1, "open", T0)
    for seq, prio in ((1, "normal"), (2, "priority")):
        step = evt(a, "box-1", seq, "take", T0 + seq, item="SOC-1",
                   **({"priority": prio} if prio != "normal" else {}))
        [cmd] = [proto.decode("cmd", p.payload) for p in step.publishes
                 if p.topic.endswith("/cmd")]
        texts = decode(base64.b64decode(cmd["escpos"]))["texts"]
        assert ("爱心优先" in texts) is (prio == "priority")
        assert (cmd["lines"][-1] == "爱心优先 / Priority") is (prio == "priority")
        assert cmd["lines"][1] == cmd["ticket"]


def test_tier_waits_count_each_tier_apart():
    core = centre(ratio=1)
    a1 = take(core, T0)
    take(core, T0 + 60, "priority")
    a3 = take(core, T0 + 120)
    core.apply(c.MarkPriority(a3, "wang"), T0 + 180)
    core.apply(c.CallNext(1), T0 + 600)  # the priority pressed at T0+60: waited 9 min
    today = [t for t in core.tickets.values() if t.day == core.day]
    w = tier_waits(today, T0 + 900)
    assert w["priority"] == {"waiting": 1, "longest_waiting_min": 13.0, "called": 1,
                             "p90_wait_min": 9.0, "max_wait_min": 9.0}
    assert w["normal"] == {"waiting": 1, "longest_waiting_min": 15.0, "called": 0,
                           "p90_wait_min": None, "max_wait_min": None}
    assert w["appointment"]["waiting"] == 0
    assert core.tickets[a1].priority is Priority.NORMAL


# ---- over HTTP: the console's route, the public snapshots, the dashboard ------------------
@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.site.accounts.close()


def ticket_id(env, number: str) -> str:
    return env.hub.centre.by_number[number].id


def test_the_console_marks_a_ticket_in_its_queue_and_the_journal_names_the_clerk(env):
    steps = []
    env.site.port.subscribe(steps.append)
    for _ in range(3):
        env.act(c.TakeTicket("SOC-001"))
    env.act(c.OpenWindow(1, "clerk1"))
    cl = env.client("clerk1")
    s = cl.get("/console/state").json()
    assert [(u["number"], u["priority"]) for u in s["queue"]["list"]] == [
        ("A001", "normal"), ("A002", "normal"), ("A003", "normal")]
    a3 = ticket_id(env, "A003")
    r = cl.post("/console/priority", json={"window": 1, "ticket": a3})
    assert r.status_code == 200, r.text
    assert [(u["number"], u["priority"]) for u in r.json()["queue"]["list"]] == [
        ("A003", "priority"), ("A001", "normal"), ("A002", "normal")]
    assert steps[-1].records[0].body == {"op": "mark_priority", "ticket": a3, "by": "clerk1"}
    # the public snapshots show that it is priority, and nothing more
    phone = env.site.live.snapshot("ticket", a3)
    assert phone["priority"] is True
    assert env.site.live.snapshot("ticket", ticket_id(env, "A001"))["priority"] is False
    assert not {"by", "history", "resident", "clerk"} & set(phone)
    r = cl.post("/console/call", json={"window": 1})
    assert r.json()["ticket"]["number"] == "A003" and r.json()["ticket"]["priority"] == "priority"
    (call_,) = env.site.live.snapshot("hall")["calls"]
    assert call_["ticket"] == "A003" and call_["priority"] is True
    page = env.client().get("/hall").text
    assert 'id="now-prio"' in page and 'id="now-prio" hidden' not in page
    assert "优先" in env.client().get(f"/t/{a3}").text


def test_the_console_route_refuses_with_reasons_and_changes_nothing(env):
    for _ in range(3):
        env.act(c.TakeTicket("SOC-001"))
    env.act(c.OpenWindow(1, "clerk1"))
    env.act(c.OpenWindow(2, "clerk2"))
    env.act(c.CallNext(1))  # A001
    env.act(c.Transfer(1, to_window=2))  # A001 waits for window 2 only
    env.act(c.CallNext(1))  # A002
    a1, a2, a3 = (ticket_id(env, n) for n in ("A001", "A002", "A003"))
    before = env.hub.centre.to_dict()
    clerk = env.client("clerk1")
    cases = [
        (env.client(), {"window": 1, "ticket": a3}, 401, None),  # logged out
        (env.client("sup"), {"window": 1, "ticket": a3}, 403, None),  # no console
        (env.client("spec"), {"window": 1, "ticket": a3}, 403, None),
        (clerk, {"window": 2, "ticket": a3}, 403, "not_your_window"),
        (clerk, {"ticket": a3}, 400, "window_required"),
        (clerk, {"window": 1}, 400, "ticket_required"),
        (clerk, {"window": 1, "ticket": 3}, 400, "ticket_required"),
        (clerk, {"window": 1, "ticket": a1}, 403, "not_in_queue"),  # sent to window 2
        (clerk, {"window": 1, "ticket": a2}, 409, "not_waiting"),  # being called
        (clerk, {"window": 1, "ticket": "A999"}, 409, "unknown_ticket"),
    ]
    for cl, body, status, code in cases:
        r = cl.post("/console/priority", json=body, follow_redirects=False)
        assert r.status_code == status, (body, r.text)
        if code is not None:
            assert r.json()["code"] == code, r.text
        assert env.hub.centre.to_dict() == before, body
    # without the CSRF header: refused too
    bare = env.client("clerk1")
    del bare.headers["x-csrf-token"]
    assert bare.post("/console/priority", json={"window": 1, "ticket": a3}).status_code == 403
    assert env.hub.centre.to_dict() == before
    # the clerk of window 2 marks A001 there; marking it again is refused
    other = env.client("clerk2")
    assert other.post("/console/priority", json={"window": 2, "ticket": a1}).status_code == 200
    again = other.post("/console/priority", json={"window": 2, "ticket": a1})
    assert again.status_code == 409 and again.json()["code"] == "already_priority"
    # an admin may act at any window's console
    admin = env.client("admin")
    assert admin.post("/console/priority", json={"window": 1, "ticket": a3}).status_code == 200
    assert env.hub.centre.tickets[a3].priority is Priority.PRIORITY


def test_the_dashboard_shows_the_waits_of_each_tier(env):
    env.act(c.TakeTicket("SOC-001"))
    env.act(c.TakeTicket("SOC-001", priority="priority"))
    env.now += 300
    sup = env.client("sup")
    s = sup.get("/dashboard/state").json()
    assert s["tiers"]["priority"]["waiting"] == 1 and s["tiers"]["normal"]["waiting"] == 1
    assert s["tiers"]["priority"]["longest_waiting_min"] == 5.0
    page = sup.get("/dashboard", headers={"accept": "text/html"}).text
    assert "今日优先号与普通号等候" in page and 'data-tier="priority"' in page
