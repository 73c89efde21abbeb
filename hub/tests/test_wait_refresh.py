"""The wait forecast off the reply path (issue 14, stage 8): a take is placed into the standing
forecast and never simulates the queue; the queue is simulated again in the background, in
slices (hub/forecast/refresh.py), and that result is adopted only if it still stands for the
state it read, with the tickets taken meanwhile placed into it again: then it is exactly what a
simulation run at once at that position would have given. The real core, predictor and hub
app; the refresher's scheduling is driven by the test (its steps, a clock the test moves).

Why one module of 506 lines: the tests share one rig (`Run`, `_busy`, `_cmd`, `_finish`,
`_same`) and one claim, that a refresh landed in steps equals a simulation run at once; the
hub's side (the refresher in a real loop, the last section) is that claim again with the real
app.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre, Rejected
from onewindow.hub.core.effects import TicketIssued
from onewindow.hub.core.model import Ticket
from onewindow.hub.core.policy import OrderingPolicy
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.forecast import evaluate_wait as ev
from onewindow.hub.forecast import refresh
from onewindow.hub.forecast.chain import successor
from onewindow.hub.forecast.paths import Forecast, dispatch_order, specialised_first
from onewindow.hub.forecast.refresh import WaitRefresher
from onewindow.hub.forecast.wait import Estimate, WaitPredictor
from onewindow.protocol import ow_protocol as proto

from .catalogs import centre

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()
WINDOWS = ((1, "comprehensive"), (2, "comprehensive"), (3, "comprehensive"), (4, "card"),
           (5, "cash"))
ITEMS = ("SOC-1", "SOC-2", "MED-1", "CIV-1", "CARD-1", "CASH-1")  # CARD-1, CASH-1: specialised


class Run:
    """A centre and predictors fed the same journal: each accepted operation is the next
    position, reported to every predictor's `update`; a take is answered (`predict`) by
    each. `waits`, `centre` and `pos` are what the refresher reads of a hub."""

    def __init__(self, preds: list[WaitPredictor], policy: OrderingPolicy | None = None
                 ) -> None:
        self.centre = centre(WINDOWS, policy, now=T0)
        self.preds, self.waits = preds, preds[0]
        self.pos, self.now = 0, T0
        self.answers: list[list[Estimate]] = []

    def op(self, cmd: c.Command, step: float = 1.0) -> Ticket | None:
        self.now += step
        try:
            effects = self.centre.apply(cmd, self.now)
        except Rejected:
            return None  # refused: not journaled, no position
        self.pos += 1
        for p in self.preds:
            p.update(self.centre, self.now, cmd.op)
        issued = [e.ticket for e in effects if isinstance(e, TicketIssued)]
        if not issued:
            return None
        t = self.centre.tickets[issued[0]]
        self.answers.append([p.predict(self.centre, t, self.now, self.pos) for p in self.preds])
        return t

    def primed(self) -> Run:
        """Every predictor with a forecast of the current state (as the refresher's first
        run leaves it)."""
        for p in self.preds:
            p.adopt(p.forecast(self.centre, self.now, self.pos), self.pos, self.now)
        return self


def _cmd(o: tuple, now: float) -> c.Command:
    kind, a, b, minutes = o
    if kind == "take":
        if b == "appointment":  # its slot: due now, or not (then it queues as normal)
            return c.TakeTicket(a, priority=b, appointment_at=now + 60 * minutes)
        return c.TakeTicket(a, priority=b)
    return {"call": c.CallNext, "start": c.Start, "complete": c.Complete}[kind](a)


TAKES = st.tuples(st.just("take"), st.sampled_from(ITEMS),
                  st.sampled_from(("normal",) * 4 + ("priority", "appointment")),
                  st.integers(-40, 40))
SERVICE = st.tuples(st.sampled_from(("call", "start", "complete")), st.integers(1, 5),
                    st.none(), st.just(0))
EXPECTED_OPS = st.lists(st.one_of(TAKES, TAKES, SERVICE), max_size=30)
POLICIES = st.builds(OrderingPolicy, mode=st.sampled_from(("ratio", "aging")),
                     ratio=st.integers(1, 3))


def _same(a: Forecast, b: Forecast) -> bool:
    return (a.order == b.order and a.starts.keys() == b.starts.keys()
            and all(np.array_equal(a.starts[k], b.starts[k]) for k in a.starts)
            and np.array_equal(a.free, b.free) and a.cols == b.cols)


def _finish(steps) -> Forecast:  # type: ignore[no-untyped-def]
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=POLICIES, before=EXPECTED_OPS,
       during=st.lists(st.one_of(TAKES, TAKES, SERVICE), min_size=5, max_size=30),
       slices=st.lists(st.integers(0, 3), min_size=30, max_size=30), chunk=st.integers(1, 8))
def test_a_background_refresh_lands_as_a_refresh_run_at_once_would(policy, before, during,
                                                                   slices, chunk):
    a, b = WaitPredictor(paths=32), WaitPredictor(paths=32)
    run = Run([a, b], policy).primed()
    for o in before:
        run.op(_cmd(o, run.now), 2.0)
    # `a` begins a refresh of this state, in steps; `b` simulates the same state at once.
    r = a.refresh(run.centre, run.now, run.pos, chunk)
    b.adopt(b.forecast(run.centre, run.now, run.pos), run.pos, run.now)
    steps, result = r.steps, None
    for o, k in zip(during, slices, strict=False):
        for _ in range(k):  # the loop's slices between the hub's messages
            if result is None:
                try:
                    next(steps)
                except StopIteration as done:
                    result = done.value
        run.op(_cmd(o, run.now), 2.0)  # takes, calls, services: all expected
    assert a.current(r)
    fc = result if result is not None else _finish(steps)
    assert a.land(r, fc, run.centre)
    ca, cb = a.chain.chain, b.chain.chain
    assert ca is not None and cb is not None
    assert _same(ca.fc, cb.fc)
    assert (ca.version, ca.n, ca.exact) == (cb.version, cb.n, cb.exact)
    for t in run.centre.queue:  # what a page or the next take reads from it
        assert a.predict(run.centre, t, run.now, run.pos) == b.predict(run.centre, t, run.now,
                                                                         run.pos)


def _busy(preds: list[WaitPredictor], waiting: int = 40) -> Run:
    run = Run(preds)
    for k in range(waiting):
        run.op(c.TakeTicket(ITEMS[k % 4]), 0.5)
    for n in (1, 2, 3):
        run.op(c.CallNext(n))
    return run.primed()


@pytest.mark.parametrize("unexpected", [
    c.Pause(4), c.Skip(2), c.CloseWindow(5), c.Transfer(1, to_window=2), c.OpenWindow(5),
], ids=lambda cmd: cmd.op)
def test_a_refresh_made_stale_by_an_unexpected_operation_is_not_adopted(unexpected):
    a, b = WaitPredictor(paths=32), WaitPredictor(paths=32)
    run = _busy([a, b])
    if unexpected.op == "open":
        run.op(c.CloseWindow(5))
        WaitRefresher(run, lambda: run.now).run_pending()
    before, pos = a.chain.chain, run.pos
    r = a.refresh(run.centre, run.now, run.pos)
    next(r.steps)
    run.op(c.TakeTicket("SOC-2"))  # expected: it would be placed into the refresh again
    run.op(unexpected)
    assert run.pos == pos + 2  # both accepted
    assert not a.current(r)
    assert not a.land(r, _finish(r.steps), run.centre)  # nothing adopted
    assert a.chain.chain is before and a.refresh_due(run.centre, run.now)
    # The refresher drops such a refresh, and simulates the new state instead.
    refresher = WaitRefresher(run, lambda: run.now)
    refresher.job = (a, a.refresh(run.centre, run.now, run.pos))
    run.op(c.Resume(4) if unexpected.op == "pause" else c.Pause(4))
    assert refresher.run_pending() > 0
    assert refresher.dropped == 1 and refresher.landed == 1
    fresh = b.forecast(run.centre, run.now, run.pos)
    assert _same(a.chain.chain.fc, fresh) and not a.refresh_due(run.centre, run.now)


def test_a_refresh_older_than_the_standing_forecast_is_not_adopted():
    a = WaitPredictor(paths=32)
    run = _busy([a])
    r = a.refresh(run.centre, run.now, run.pos)
    run.op(c.Complete(1), 40.0)  # expected...
    t = next(iter(run.centre.queue))
    # ...but a page asked, past EXTEND_AGE: it simulated the newer state.
    a.predict(run.centre, t, run.now, run.pos)
    newer = a.chain.chain
    assert newer is not None and newer.version == run.pos
    assert a.current(r) and not a.land(r, _finish(r.steps), run.centre)
    assert a.chain.chain is newer


def test_a_replaced_predictor_drops_the_refresh_of_the_old_one():
    a = WaitPredictor(paths=32)
    run = _busy([a])
    refresher = WaitRefresher(run, lambda: run.now)
    run.op(c.Pause(4))
    assert run.pos == 44 and refresher.step() and refresher.job is not None
    run.waits = fresh = WaitPredictor(paths=32)  # a rebuilt hub app's (HubApp.reload)
    refresher.run_pending()
    assert refresher.dropped == 1 and refresher.landed == 1
    assert fresh.chain.chain is not None and a.refresh_due(run.centre, run.now)


def test_takes_are_placed_in_bounded_time_and_never_simulate_the_queue() -> None:
    """Count, not time: after the first forecast, no take simulates the queue, whatever it
    is (priority, appointment, specialised item, offline) and whatever happened before it;
    what it cannot place at the end of the order makes a refresh due."""
    p = WaitPredictor(paths=32)
    run = _busy([p], waiting=30)
    run.op(c.ReserveBlock("box-1", ("A",), 5))
    [offline] = run.centre.offline_blocks("box-1")["A"]
    simulated = p.simulated
    script: list[tuple[c.Command, bool]] = [
        (c.TakeTicket("SOC-1"), False),  # the end of the order: the forecast stays exact
        (c.Start(1), False),
        (c.TakeTicket("MED-1", priority="priority"), True),  # before the normal ones
        (c.TakeTicket("SOC-2"), False),  # the priority one is placed before it: the end
        (c.Skip(2), True),  # a resident skipped: not expected
        (c.TakeTicket("CARD-1"), True),  # specialised: before the comprehensive ones
        (c.TakeTicket("CIV-1", priority="appointment", appointment_at=T0 + 120), True),
        (c.TakeTicket("SOC-1", extra_items=("MED-1",)), False),
        (c.TakeTicket("SOC-1", source="box-1", number=f"A{offline[0]}", taken_at=T0,
                      request=1), True),  # an offline ticket, pressed long ago
    ]
    for cmd, due in script:
        placed = len(run.answers)
        run.op(cmd)
        if cmd.op == "take":
            assert len(run.answers) == placed + 1 and run.answers[-1][0].reachable
        assert p.refresh_due(run.centre, run.now) == due, cmd
        WaitRefresher(run, lambda: run.now).run_pending()  # the refresher catches up
    assert p.simulated == simulated
    run.now += 200  # nothing refreshed the forecast for minutes (no refresher: a tool)
    run.op(c.TakeTicket("SOC-1"), 0.0)
    assert p.simulated == simulated + 1  # older than PLACE_AGE: simulated at once instead


@pytest.mark.parametrize("take", [
    c.TakeTicket("MED-1", priority="priority"),
    c.TakeTicket("CARD-1"),
    c.TakeTicket("SOC-2", priority="appointment", appointment_at=T0 + 50),
    c.TakeTicket("SOC-1"),
], ids=("priority", "specialised", "appointment", "normal"))
def test_a_ticket_placed_into_the_forecast_waits_as_a_simulation_of_the_queue_says(take):
    """Placed before others (from the checkpoint before its place, not from `free`), a
    ticket's wait is that of a simulation of the whole queue with it: same model, other
    paths, so within sampling error."""
    p = WaitPredictor(paths=4000)
    run = Run([p])
    for k in range(36):
        run.op(c.TakeTicket(ITEMS[k % 6], priority="priority" if k % 9 == 4 else "normal"),
               0.5)
    for n, _ in WINDOWS:
        run.op(c.CallNext(n))
    run.primed()
    simulated = p.simulated
    t = run.op(take)
    assert t is not None and p.simulated == simulated
    placed = run.answers[-1][0]
    full = WaitPredictor(paths=4000).predict(run.centre, t, run.now, run.pos)
    assert full.median > 1  # every window busy: a real wait to compare
    assert abs(placed.median - full.median) <= 0.06 * full.median + 0.5
    assert abs(placed.raw_hi - full.raw_hi) <= 0.08 * full.raw_hi + 0.5


def _reference_order(core: Centre, now: float) -> list[Ticket]:
    """The dispatch order as the predictor computed it before stage 8: every ticket's tier
    (Centre._tier), each tier sorted, then priority and normal interleaved."""
    tiers: dict[int, list[Ticket]] = {0: [], 1: [], 2: []}
    for u in core.queue:
        tiers[core._tier(u, now)].append(u)
    prio = sorted(tiers[1], key=lambda u: u.sort_key)
    normal = sorted(tiers[2], key=lambda u: u.sort_key)
    out = sorted(tiers[0], key=lambda u: (u.appointment_at or 0.0, u.serial))
    policy = core.policy
    if policy.mode != "ratio" or not prio or not normal:
        return out + prio + normal
    i = j = 0
    streak = core.streak
    while i < len(prio) and j < len(normal):
        if streak < policy.ratio:
            out.append(prio[i])
            i += 1
            streak += 1
        else:
            out.append(normal[j])
            j += 1
            streak = 0
    return out + prio[i:] + normal[j:]


MIXED_TAKES = st.tuples(st.just("take"), st.sampled_from(ITEMS),
                        st.sampled_from(("normal", "priority", "appointment")),
                        st.integers(-40, 40))


@settings(max_examples=300, deadline=None)
@given(policy=POLICIES, ops=st.lists(st.one_of(MIXED_TAKES, MIXED_TAKES, SERVICE),
                                     min_size=20, max_size=80), appointments=st.booleans())
def test_a_take_goes_where_a_simulation_would_place_it(policy, ops, appointments):
    """`successor` (O(1) for the newest normal or priority ticket when no appointment
    waits) is the ticket after the new one in the order a simulation places the queue in;
    `dispatch_order` is the order the predictor always used."""
    run = Run([WaitPredictor(paths=8)], policy)  # the core alone is driven here
    for o in ops:
        if o[2] == "appointment" and not appointments:
            continue
        run.now += 7
        try:
            effects = run.centre.apply(_cmd(o, run.now), run.now)
        except Rejected:
            continue
        order = _reference_order(run.centre, run.now)
        assert dispatch_order(run.centre, run.now) == order
        ids = [u.id for u in specialised_first(run.centre, order)]
        for e in effects:
            if isinstance(e, TicketIssued):
                t = run.centre.tickets[e.ticket]
                i = ids.index(t.id)
                want = ids[i + 1] if i + 1 < len(ids) else None
                assert successor(run.centre, t, run.now) == want


def test_the_evaluation_drives_the_predictor_as_the_hubs_refresher_would():
    """evaluate_wait runs a refresh only when a take reads it (`Background`); running each
    one through the hub's refresher instead gives the very same predictions."""
    catalog = load_catalog()
    lazy, eager = (ev.centre_days(catalog, [7001], warmup=0, eager=e) for e in (False, True))
    assert len(lazy.pred) > 300 and lazy.pred == eager.pred and lazy.actual == eager.actual
    lazy, eager = (ev.mms(7001, 4, 0.9, hours=2.0, eager=e) for e in (False, True))
    assert len(lazy.pred) > 50 and lazy.pred == eager.pred


# ---- the hub: its app, and the refresher in a real event loop -----------------------------
def _hub() -> HubApp:
    core = centre(WINDOWS, open_all=False, now=T0)
    devices = [DeviceSpec(f"kp-{n}", "keypad", n) for n, _ in WINDOWS]
    return HubApp(core, Registry([*devices, DeviceSpec("box-1", "box")]), "boot1")


class Devices:
    def __init__(self, app: HubApp) -> None:
        self.app = app
        self.seq: dict[str, int] = {}

    def send(self, dev: str, typ: str, at: float, **f):  # type: ignore[no-untyped-def]
        """As the runner does: the message handled, its replies sent, then the predictor
        told of its record (`settle_waits`: which wakes the refresher of a stale forecast)."""
        self.seq[dev] = self.seq.get(dev, 0) + 1
        step = self.app.handle(proto.device_topic(self.app.centre_id, dev, "evt"),
                               proto.encode("evt", proto.event(dev, self.seq[dev], typ, **f)),
                               at)
        self.app.settle_waits()
        return step


def test_in_the_hub_no_take_simulates_the_queue_while_refreshes_run_between_messages():
    """Takes of every kind and the operations around them through `HubApp.handle`, the
    refresher's slices run between the messages as the hub's loop runs them (sometimes
    none: takes land while a refresh is under way or due): no `handle` simulates the
    queue, every take is answered with its wait, and the refreshes land or, made stale,
    are begun again."""
    app = _hub()
    now = [T0]
    refresher = WaitRefresher(app, lambda: now[0])
    dev = Devices(app)
    for n, _ in WINDOWS:
        dev.send(f"kp-{n}", "open", now[0], clerk=f"c{n}")
    refresher.run_pending()  # the refresher's first run (HubRunner: before any message)
    rng = random.Random(14)
    during = takes = 0
    for _ in range(400):
        now[0] += rng.choice((0.2, 1.0, 3.0))
        r = rng.random()
        if r < 0.45:
            kind = rng.choice(("normal",) * 6 + ("priority", "appointment"))
            fields = {"item": rng.choice(ITEMS)}
            if kind != "normal":
                fields["priority"] = kind
            if kind == "appointment":
                fields["appointment_at"] = now[0] + rng.uniform(-1200, 1200)
            if rng.random() < 0.1:
                fields["items"] = ["MED-1"]
            msg, dev_id = "take", "box-1"
        else:
            n = rng.randint(1, 5)
            dev_id = f"kp-{n}"
            msg = rng.choice(("call",) * 5 + ("start",) * 4 + ("complete",) * 4
                             + ("pause", "resume", "skip", "transfer"))
            fields = {"window": n}
            if msg == "transfer":
                fields["to_window"] = rng.randint(1, 3)
        under_way = refresher.job is not None or app.waits.refresh_due(app.centre, now[0])
        before = app.waits.simulated
        step = dev.send(dev_id, msg, now[0], **fields)
        assert app.waits.simulated == before, f"{msg} simulated the queue"
        if msg == "take":
            res = [proto.decode("res", p.payload) for p in step.publishes
                   if p.topic.endswith("/res")]
            assert len(res) == 1 and res[0]["ok"] is True
            if res[0]["wait"] >= 0:
                assert res[0]["wait_lo"] <= res[0]["wait"] <= res[0]["wait_hi"]
            takes += 1
            during += under_way
        for _ in range(rng.choice((0, 0, 1, 3, 100))):  # the loop's turns between messages
            if not refresher.step():
                break
    assert takes > 150 and len(app.centre.queue) > 20
    assert during > 20  # takes answered while a refresh was due or under way
    assert refresher.landed > 20 and refresher.dropped > 0


def test_the_refresher_task_refreshes_between_the_hubs_messages_in_the_loop():
    """`run`, as HubRunner starts it: a forecast at once when there is none, then woken by
    an operation the forecast does not expect, a slice per turn of the loop, the hub's
    messages handled in between (and placed into the old forecast meanwhile)."""
    app = _hub()
    dev = Devices(app)
    now = T0
    for n, _ in WINDOWS:
        dev.send(f"kp-{n}", "open", now, clerk=f"c{n}")
    for k in range(120):
        now += 0.5
        dev.send("box-1", "take", now, item=ITEMS[k % 4])
    assert app.waits.simulated == 1  # the first take: no forecast at all yet
    app.waits = WaitPredictor()  # as a hub just started: nothing simulated yet
    refresher = WaitRefresher(app, lambda: now)

    async def scenario() -> None:
        nonlocal now
        task = asyncio.create_task(refresher.run(), name="hub-waits")
        await asyncio.sleep(0)
        assert app.waits.chain.chain is not None and refresher.landed == 1  # primed
        now += 1
        dev.send("kp-1", "pause", now, window=1)  # not expected: a refresh is due...
        assert app.waits.refresh_due(app.centre, now)
        turns = 0
        while refresher.landed == 1:
            await asyncio.sleep(0)  # ...and runs in slices, the loop free in between
            turns += 1
            if turns == 3:
                now += 0.1
                step = dev.send("box-1", "take", now, item="SOC-1")  # meanwhile: placed
                assert any(p.topic.endswith("/res") for p in step.publishes)
            assert turns < 1000
        assert turns > 120 // 8  # one step per turn: reading, ordering, 8 tickets each
        assert refresher.landed == 2 and app.waits.simulated == 0
        assert not app.waits.refresh_due(app.centre, now)
        task.cancel()

    asyncio.run(scenario())


def test_the_refresher_puts_its_slices_off_while_a_message_waits(monkeypatch):
    """In the hub, `busy` is the MQTT link's `waiting`: no slice runs while a message waits
    (it would run before the message is read and handled), the refresh goes on once none
    does; and a flood with no gap puts it off for at most BUSY_MAX a slice, not for ever."""
    app = _hub()
    dev = Devices(app)
    now = T0
    for n, _ in WINDOWS:
        dev.send(f"kp-{n}", "open", now, clerk=f"c{n}")
    for k in range(120):
        now += 0.5
        dev.send("box-1", "take", now, item=ITEMS[k % 4])
    app.waits = WaitPredictor()
    waiting = [False]
    refresher = WaitRefresher(app, lambda: now, busy=lambda: waiting[0])

    async def scenario() -> None:
        nonlocal now
        task = asyncio.create_task(refresher.run(), name="hub-waits")
        await asyncio.sleep(0)
        assert refresher.landed == 1  # the first forecast at once, messages or not
        now += 1
        dev.send("kp-1", "pause", now, window=1)  # a refresh is due...
        waiting[0] = True  # ... while messages wait
        slices = refresher.slices
        for _ in range(20):
            await asyncio.sleep(0.001)
        assert refresher.slices == slices and refresher.deferred > 0
        waiting[0] = False
        for _ in range(1000):
            if refresher.landed == 2:
                break
            await asyncio.sleep(0)
        assert refresher.landed == 2

        monkeypatch.setattr(refresh, "BUSY_MAX", 0.002)
        waiting[0] = True  # a flood that never lets up
        now += 1
        dev.send("kp-2", "pause", now, window=2)
        for _ in range(5000):  # at most ~5 s
            if refresher.landed == 3:
                break
            await asyncio.sleep(0.001)
        assert refresher.landed == 3 and refresher.deferred > 120 // 8
        task.cancel()

    asyncio.run(scenario())
