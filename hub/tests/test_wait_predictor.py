"""The per-ticket wait predictor (hub/forecast/wait.py): learning, the simulation from the
current state, determinism through the journal, and its accuracy on unseen simulated days."""

import bisect
import datetime as dt
from collections import deque

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.forecast import evaluate_wait as ev
from onewindow.hub.forecast.chain import successor
from onewindow.hub.forecast.paths import specialised_first
from onewindow.hub.forecast.wait import (
    BANDS,
    FACTORS,
    LOAD_EDGES,
    ServiceLearner,
    WaitPredictor,
    _percentiles,
    _quantile,
    dispatch_order,
    predictor_to_dict,
    restore_predictor,
    size_class,
)
from onewindow.protocol import ow_protocol as proto

from .catalogs import centre, small_catalog

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()


def test_learned_service_times_shrink_toward_the_catalog_then_follow_the_data():
    L = ServiceLearner()
    assert L.mean("A", 5) == 300.0  # nothing seen: the standard minutes
    L.observe("A", 5, 600.0)
    assert 300 < L.mean("A", 5) < 450  # one sample moves it a little
    for _ in range(200):
        L.observe("A", 5, 600.0)
    assert abs(L.mean("A", 5) - 600) < 20
    assert L.mean("B", 5) > 500  # an unseen item borrows the centre-wide ratio


# durations as timestamps 2e9 s apart can differ: none under a microsecond but 0
DURATIONS = st.one_of(st.floats(-60.0, 0.0), st.floats(1e-6, 3600.0))


@given(st.lists(st.tuples(st.integers(0, 7), DURATIONS), max_size=120), st.integers(0, 120))
def test_the_spread_kept_per_item_is_the_plain_sum_bit_for_bit(services, restore_at):
    """cv2 keeps one term per item instead of summing every item on each take: the figure
    is the plain loop's exactly, observed live or restored from the items (a snapshot)."""
    from onewindow.hub.forecast.wait import _Item

    def plain(learner: ServiceLearner) -> float:
        acc, dof = learner.cv0 ** 2 * learner.cv_n, learner.cv_n
        for s in learner.items.values():
            if s.n > 1:
                acc += s.m2 / s.mean ** 2
                dof += s.n - 1
        return acc / dof

    live = ServiceLearner()
    for k, (item, seconds) in enumerate(services):
        if k == restore_at:
            live = ServiceLearner(items={i: _Item(s.n, s.mean, s.m2)
                                         for i, s in live.items.items()})
        live.observe(f"item-{item}", 5.0, seconds)
        if k % 3 == 0:
            assert live.cv2() == plain(live)
    assert live.cv2() == plain(live)


def test_predictor_learns_from_completed_services():
    core = centre(windows=((1, "comprehensive"),), now=T0)
    p = WaitPredictor()
    now = T0
    for _ in range(30):
        core.apply(c.TakeTicket("SOC-1"), now)
        core.apply(c.CallNext(1), now)
        p.update(core, now)
        core.apply(c.Start(1), now + 30)
        now += 600  # 10 minutes from call to done, the catalog says 5
        core.apply(c.Complete(1), now)
        p.update(core, now)
    assert abs(p.learner.mean("SOC-1", 5) - 600) < 60


def test_queue_ahead_and_windows_make_the_wait_with_an_interval():
    core = centre(windows=((1, "comprehensive"), (2, "comprehensive")), now=T0)
    p = WaitPredictor()
    for _ in range(6):
        core.apply(c.TakeTicket("SOC-1"), T0)  # 5 minutes each, 2 windows
    last = list(core.queue)[-1]
    e = p.predict(core, last, T0, version=1)
    # Five ahead on two idle windows: the sixth starts after about 3 services.
    assert 10 < e.median < 20 and e.lo < e.median < e.hi
    first = next(iter(core.queue))
    assert p.predict(core, first, T0, version=1).median == 0  # a window is free
    core.apply(c.CloseWindow(2), T0)
    assert p.predict(core, last, T0, version=2).median > e.median * 1.5
    core.apply(c.CloseWindow(1), T0)
    assert not p.predict(core, last, T0, version=3).reachable
    assert p.probe(core, "SOC-1", T0, version=3).minutes() is None


def test_specialised_items_go_first_at_their_window_and_priority_interleaves():
    core = centre(windows=((1, "comprehensive"), (2, "card")), now=T0)
    p = WaitPredictor()
    for _ in range(5):
        core.apply(c.TakeTicket("SOC-1"), T0)
    card = core.apply(c.TakeTicket("CARD-1"), T0)[0].ticket
    # The card window serves its own item first, whatever the comprehensive queue.
    assert p.predict(core, core.tickets[card], T0, version=1).median < 1
    core.apply(c.TakeTicket("SOC-1", priority="priority"), T0)
    core.apply(c.TakeTicket("SOC-1", priority="priority"), T0)
    core.apply(c.TakeTicket("SOC-1", priority="priority"), T0)
    order = [t.priority.value for t in dispatch_order(core, T0)]
    assert order[:4] == ["priority", "priority", "normal", "priority"]  # ratio 2:1


def test_a_specialised_item_with_no_window_of_its_kind_open_waits_its_turn():
    """Comprehensive windows (serving every item: "*") call in plain dispatch order, card
    items too (hub/core/serving.py `_pick`): a card ticket there is not placed first. With
    the card window open, it is (the test above); closed again, it is not."""
    cfg = CentreConfig("t", (WindowSpec(1, skills=("*",)), WindowSpec(2, skills=("*",)),
                             WindowSpec(3, "card")))
    core = Centre(small_catalog(), cfg)
    for n in (1, 2):
        core.apply(c.OpenWindow(n), T0)
    for _ in range(8):
        core.apply(c.TakeTicket("SOC-1"), T0)
    card = core.tickets[core.apply(c.TakeTicket("CARD-1"), T0)[0].ticket]
    p = WaitPredictor()
    order = specialised_first(core, dispatch_order(core, T0))
    assert order[-1] is card and successor(core, card, T0) is None
    alone = p.predict(core, card, T0, version=1)
    assert alone.median > 10  # behind eight residents at two windows
    core.apply(c.OpenWindow(3), T0)
    assert specialised_first(core, dispatch_order(core, T0))[0] is card
    assert p.predict(core, card, T0, version=2).median < 1
    core.apply(c.CloseWindow(3), T0)
    assert specialised_first(core, dispatch_order(core, T0))[-1] is card


def test_the_interval_is_read_for_the_people_waiting_per_open_window():
    """The table's factor is the one of the predicted wait's band and of the centre's load
    now (people waiting, whatever their line, per window not closed: LOAD_EDGES); it is
    in the predictor's snapshot."""
    core = centre(windows=((1, "comprehensive"), (2, "comprehensive")), now=T0)
    p = WaitPredictor()
    table = FACTORS["comprehensive"][size_class(core.config)]
    band = bisect.bisect(BANDS, 10.0)
    seen = []
    for n in range(12):
        p.update(core, T0, "take")
        k = bisect.bisect(LOAD_EDGES, n / 2)
        assert p.load_class == k and p._scale(10.0) == (table[band][k],) * 2
        seen.append(k)
        core.apply(c.TakeTicket("SOC-1"), T0)
    assert seen[0] == 0 and seen[-1] == len(LOAD_EDGES)  # every class on the way
    core.apply(c.Pause(2), T0)  # a paused window still counts as open
    p.update(core, T0, "pause")
    assert p.load_class == bisect.bisect(LOAD_EDGES, 12 / 2)
    core.apply(c.CloseWindow(2), T0)  # a closed one does not
    p.update(core, T0, "close")
    assert p.load_class == bisect.bisect(LOAD_EDGES, 12 / 1)
    doc = predictor_to_dict(p)
    q = WaitPredictor()
    restore_predictor(q, doc)
    assert q.load_class == p.load_class and predictor_to_dict(q) == doc


def test_the_same_state_and_position_give_the_same_numbers():
    cat = load_catalog()
    core = Centre(cat, CentreConfig("t", tuple(WindowSpec(n) for n in range(1, 9))))
    for n in range(1, 9):
        core.apply(c.OpenWindow(n), T0)
    items = sorted(i.id for i in cat.items.values() if not i.specialised)[:40]
    for k in range(60):
        core.apply(c.TakeTicket(items[k % len(items)]), T0 + k)
    for n in range(1, 9):
        core.apply(c.CallNext(n), T0 + 60)
    p, q = WaitPredictor(), WaitPredictor()
    t = list(core.queue)[-1]
    a, b = p.predict(core, t, T0 + 90, 7), q.predict(core, t, T0 + 90, 7)
    assert a == b and a.median > 0
    assert p.predict(core, t, T0 + 90, 8) != a  # another journal position, other paths
    # (Its cost per ticket and per queue length: python -m onewindow.tools.bench.bench_take.)


def _busy_centre(waiting: int) -> tuple[Centre, list[str]]:
    cat = load_catalog()
    core = Centre(cat, CentreConfig("t", tuple(WindowSpec(n) for n in range(1, 9))))
    for n in range(1, 9):
        core.apply(c.OpenWindow(n), T0)
    items = sorted(i.id for i in cat.items.values() if not i.specialised)[:40]
    for k in range(waiting):
        core.apply(c.TakeTicket(items[k % len(items)]), T0 + k)
    for n in range(1, 9):
        core.apply(c.CallNext(n), T0 + waiting)
    return core, items


def test_a_take_extends_the_previous_takes_forecast_with_the_same_model():
    """Consecutive takes: the second is answered from the first one's forecast (no new
    simulation of the queue) and agrees with a full simulation of the same state."""
    core, items = _busy_centre(60)
    now = T0 + 100
    p = WaitPredictor(paths=4000)
    core.apply(c.TakeTicket(items[0]), now)
    p.update(core, now, "take")
    p.predict(core, list(core.queue)[-1], now, 70)  # full simulation at position 70
    core.apply(c.TakeTicket(items[1]), now + 2)
    p.update(core, now + 2, "take")
    t = list(core.queue)[-1]
    simulated = []
    real = p._simulate
    p._simulate = lambda *a: simulated.append(a) or real(*a)  # type: ignore[method-assign]
    chained = p.predict(core, t, now + 2, 71)
    assert simulated == []  # extended, not simulated
    full = WaitPredictor(paths=4000).predict(core, t, now + 2, 71)
    assert abs(chained.median - full.median) <= 0.05 * full.median + 0.5
    assert abs(chained.raw_hi - full.raw_hi) <= 0.08 * full.raw_hi + 0.5
    assert chained.lo < chained.median < chained.hi


def test_a_take_is_placed_whatever_it_is_and_what_changed_makes_a_refresh_due():
    """No take simulates the queue once a forecast stands (the hub's refresher simulates it
    again in the background, hub/tests/test_wait_refresh.py); one that cannot go at the end
    of the order, or a change the forecast does not expect, makes it due."""
    core, items = _busy_centre(30)
    now = T0 + 100
    p = WaitPredictor()
    calls = []
    real = p._simulate
    p._simulate = lambda *a: calls.append(a[2]) or real(*a)  # type: ignore[method-assign]
    v = 40
    due = []

    def op(cmd: c.Command, at: float, take: bool = False) -> None:
        nonlocal v
        v += 1
        core.apply(cmd, now + at)
        p.update(core, now + at, cmd.op)
        if take:
            t = max(core.tickets.values(), key=lambda t: t.serial)
            p.predict(core, t, now + at, v)
        due.append(p.refresh_due(core, now + at))

    op(c.TakeTicket(items[0]), 0, take=True)  # 41: nothing chained yet: simulated
    op(c.Start(1), 1)  # 42: expected by the forecast
    op(c.TakeTicket(items[1]), 2, take=True)  # 43: placed at the end
    op(c.Skip(2), 3)  # 44: a resident skipped: not expected
    op(c.TakeTicket(items[2]), 4, take=True)  # 45: placed into the stale forecast
    op(c.TakeTicket(items[3], priority="priority"), 5, take=True)  # 46: before the normal
    op(c.TakeTicket(items[4]), 6, take=True)  # 47
    core.apply(c.Skip(3), now + 7)  # 48: not reported to update at all
    v += 1
    op(c.TakeTicket(items[5]), 8, take=True)  # 49: the state moved behind its back
    op(c.TakeTicket(items[6]), 60, take=True)  # 50: a minute on: placed
    op(c.TakeTicket(items[7]), 200, take=True)  # 51: minutes on, nothing refreshed it
    assert calls == [41, 49, 51]
    assert due == [False, False, False, True, True, True, True, False, True, False]


def hub() -> HubApp:
    core = Centre(small_catalog(), CentreConfig("t1", (WindowSpec(1), WindowSpec(2))))
    return HubApp(core, Registry([DeviceSpec("kp-1", "keypad", 1), DeviceSpec("kp-2", "keypad", 2),
                                  DeviceSpec("box-1", "box")]), "boot1")


def evt(a, dev, seq, typ, at, **f):
    return a.handle(proto.device_topic("t1", dev, "evt"),
                    proto.encode("evt", proto.event(dev, seq, typ, **f)), at)


def test_take_reply_and_printed_ticket_carry_the_prediction_and_replay_prints_the_same():
    a = hub()
    records, seq = [], {"kp-1": 0, "kp-2": 0, "box-1": 0}

    def send(dev, typ, at, **f):
        seq[dev] += 1
        step = evt(a, dev, seq[dev], typ, at, **f)
        records.extend(step.records)
        return step

    send("kp-1", "open", T0)
    send("kp-2", "open", T0)
    replies, printed = [], []
    for k in range(12):
        step = send("box-1", "take", T0 + 20 * k, item="SOC-1")
        replies += [proto.decode("res", p.payload) for p in step.publishes
                    if p.topic.endswith("/res")]
        printed += [p.payload for p in step.publishes if p.topic.endswith("/cmd")]
        if k % 3 == 2:
            send("kp-1", "call", T0 + 20 * k + 5)
    last = replies[-1]
    assert last["wait"] > 0 and last["wait_lo"] <= last["wait"] <= last["wait_hi"]
    lines = proto.decode("cmd", printed[-1])["lines"]
    assert f"预计等候约{last['wait']}分钟（{last['wait_lo']}–{last['wait_hi']}分钟）" in \
        " ".join(lines)
    takes = [r.body for r in records if r.body["op"] == "take"]
    assert all(len(b["est"]) == 5 for b in takes)  # journaled: a replay does not simulate
    b = hub()
    b.replay(records)
    again = evt(b, "box-1", seq["box-1"], "take", T0 + 240, item="SOC-1")  # a retry
    assert [p.payload for p in again.publishes] == [
        p.payload for p in a.registry.get("box-1").last_reply]
    assert b.waits.learner == a.waits.learner
    t = list(a.centre.queue)[-1]
    assert a.ticket_wait(t, T0 + 300) == b.ticket_wait(b.centre.tickets[t.id], T0 + 300)


def test_unseen_simulated_days_beat_the_baselines_and_the_interval_covers():
    """The evaluation (python -m onewindow.hub.forecast.evaluate_wait) on a few days of
    seeds no parameter was tuned on; the full table is in docs/benchmarks.md."""
    s = ev.scores(ev.centre_days(load_catalog(), [7001, 7002, 7003]))
    assert s["n"] > 800
    assert s["mae_mc"] <= 0.7 * s["mae_naive"]  # >= 30% lower
    assert s["mae_mc"] < s["mae_hol"]
    assert 0.72 <= s["coverage"] <= 0.88
    m = ev.scores(ev.merge([ev.mms(seed, 4, 0.9) for seed in range(7001, 7007)]))
    assert m["mse_mc_mean"] <= 1.5 * m["mse_oracle"]
    assert m["mse_hol"] >= 1.4 * m["mse_oracle"]
    # The interval's factors are tuned on centre days (evaluate_wait --tune: breaks, lunch,
    # walks, lognormal service); plain M/M/s, short waits and none of those, is not one of
    # them. Its waits are mostly under 5 min with under 1.5 waiting per server, where the
    # centre days' factor is 0.31 (their simulated spread of short waits is about three
    # times what they need): the interval comes out narrower than 80% (74% here; 93% before
    # the specialised-first fix, when that factor was 0.91, inflated by card tickets at
    # comprehensive windows predicted minutes that waited an hour: docs/forecast.md).
    assert 0.65 <= m["coverage"] <= 0.97
    assert np.isfinite(m["mse_mc"])


def test_a_page_at_the_same_position_reads_the_takes_forecast():
    core, items = _busy_centre(30)
    now = T0 + 100
    p = WaitPredictor()
    core.apply(c.TakeTicket(items[0]), now)
    p.update(core, now, "take")
    taken = p.predict(core, list(core.queue)[-1], now, 40)
    calls = []
    real = p._simulate
    p._simulate = lambda *a: calls.append(a[2]) or real(*a)  # type: ignore[method-assign]
    hall = p.probe(core, items[0], now - now % 5, 40)  # the hall's 5 s step, same state
    assert calls == [] and hall.median >= taken.median
    p.probe(core, items[0], now + 60, 40)  # a minute on: simulated from then
    assert calls == [40]


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=300),
       st.floats(0.0, 1.0))
def test_the_calibration_quantile_is_numpys(xs, q):
    assert _quantile(deque(xs), q) == pytest.approx(float(np.quantile(np.array(xs), q)),
                                                    rel=1e-9, abs=1e-6)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=300))
def test_the_summary_percentiles_are_numpys(xs):
    want = np.percentile(np.array(xs), (10, 50, 90))
    got = _percentiles(np.sort(np.array(xs)), (0.1, 0.5, 0.9))
    assert got == pytest.approx(tuple(float(x) for x in want), rel=1e-9, abs=1e-6)
