"""A call's messages do not wait for the wait predictor to learn from it (issue 14): the
predictor hears of a record after the runner sent the record's messages, or at the latest
when anything reads it or the next record is applied, and ends in the same state as one told
at once (hub/app/state.py `learn_later`)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from onewindow.hub.app.replay import predictor_to_dict

from .test_wait_refresh import ITEMS, T0, WINDOWS, Devices, _hub


def _spied(app):  # type: ignore[no-untyped-def]
    heard: list[tuple[float, str | None]] = []
    update = app._waits.update

    def spy(centre, now, op=None):  # type: ignore[no-untyped-def]
        heard.append((now, op))
        update(centre, now, op)

    app._waits.update = spy
    return heard


def test_a_call_is_answered_before_the_predictor_hears_of_it_and_a_take_after():
    app = _hub()
    dev = Devices(app)
    for n, _ in WINDOWS:
        dev.send(f"kp-{n}", "open", T0, clerk=f"c{n}")
    dev.send("box-1", "take", T0 + 1, item="SOC-1")
    heard = _spied(app)
    dev.seq["kp-1"] += 1
    from onewindow.protocol import ow_protocol as proto
    step = app.handle(proto.device_topic(app.centre_id, "kp-1", "evt"),
                      proto.encode("evt", proto.event("kp-1", dev.seq["kp-1"], "call")), T0 + 2)
    assert any(p.topic.endswith("/display") for p in step.publishes)
    assert heard == []  # the display and the reply were built without it
    app.settle_waits()  # the runner, once they are sent
    assert heard == [(T0 + 2, "call")]
    app.settle_waits()
    assert heard == [(T0 + 2, "call")]  # once
    dev.send("box-1", "take", T0 + 3, item="SOC-1")
    assert heard[1] == (T0 + 3, "take")  # a take's wait reads it: heard before the reply


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1),
       st.lists(st.sampled_from([False] * 4 + [True]), min_size=60, max_size=60))
def test_told_late_or_at_once_the_predictor_ends_the_same(seed, settle_after):
    """One app settles after every message (the runner), the other only when the next
    record or a read needs it: the predictors' whole states are equal whenever read."""
    rng = random.Random(seed)
    apps = [_hub(), _hub()]
    devs = [Devices(a) for a in apps]
    devs[1].send = _lazy(devs[1])  # type: ignore[method-assign]
    now = T0
    for n, _ in WINDOWS:
        for d in devs:
            d.send(f"kp-{n}", "open", now, clerk=f"c{n}")
    for k in range(60):
        now += rng.uniform(1, 120)
        if rng.random() < 0.4:
            item = rng.choice(ITEMS)
            for d in devs:
                d.send("box-1", "take", now, item=item)
        else:  # a window's next step: call, start, complete; now and then a pause
            n = rng.choice(WINDOWS)[0]
            state = apps[0].centre.windows[n].state.value
            op = {"idle": "pause" if rng.random() < 0.3 else "call", "calling": "start",
                  "serving": "complete", "paused": "resume"}.get(state, "call")
            for d in devs:
                d.send(f"kp-{n}", op, now)
        if settle_after[k]:  # now and then something reads it (a page, a snapshot)
            assert predictor_to_dict(apps[0].waits) == predictor_to_dict(apps[1].waits)
    assert predictor_to_dict(apps[0].waits) == predictor_to_dict(apps[1].waits)


def _lazy(d: Devices):  # type: ignore[no-untyped-def]
    from onewindow.protocol import ow_protocol as proto

    def send(dev, typ, at, **f):  # type: ignore[no-untyped-def]
        d.seq[dev] = d.seq.get(dev, 0) + 1
        return d.app.handle(proto.device_topic(d.app.centre_id, dev, "evt"),
                            proto.encode("evt", proto.event(dev, d.seq[dev], typ, **f)), at)
    return send
