"""The estimate of a ticket taken now, from the per-item counts (people_ahead.estimate_new,
what the supervisors' floor shows per item) equals the estimate of the ticket once taken,
walked (people_ahead.estimate), on random queues: every tier, transfers to one window,
calls, skips with requeue, windows closing. Where the counts cannot tell (a ticket sent to
one window, one ordered after now), it says so (None) rather than guess."""

from __future__ import annotations

import contextlib
import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.effects import TicketIssued
from onewindow.hub.core.rejected import Rejected

from .catalogs import small_catalog

CST = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=CST).timestamp()  # a Monday
ITEMS = ["SOC-1", "SOC-2", "MED-1", "CIV-1", "CARD-1"]
WINDOWS = ((1, "comprehensive"), (2, "comprehensive"), (3, "card"))

step = st.one_of(
    st.tuples(st.just("take"), st.sampled_from(ITEMS),
              st.sampled_from(["normal", "normal", "priority", "appointment"]),
              st.integers(-1800, 3600)),
    st.tuples(st.just("call"), st.sampled_from([1, 2, 3])),
    st.tuples(st.just("skip"), st.sampled_from([1, 2, 3])),
    st.tuples(st.just("transfer"), st.sampled_from([1, 2, 3]), st.sampled_from([1, 2, 3])),
    st.tuples(st.just("close"), st.sampled_from([1, 2, 3])),
    st.tuples(st.just("wait"), st.integers(1, 900)),
)


def apply(core: Centre, s: tuple, now: float) -> None:
    kind = s[0]
    if kind == "take":
        at = now + s[3] if s[2] == "appointment" else None
        cmd: c.Command = c.TakeTicket(s[1], priority=s[2], appointment_at=at)
    elif kind == "call":
        cmd = c.CallNext(s[1])
    elif kind == "skip":
        cmd = c.Skip(s[1], requeue=True)
    elif kind == "transfer":
        cmd = c.Transfer(s[1], to_window=s[2])
    elif kind == "close":
        cmd = c.CloseWindow(s[1])
    else:
        return
    with contextlib.suppress(Rejected):  # refused (nothing to call...): nothing changed
        core.apply(cmd, now)


def check(steps: list[tuple], item: str) -> tuple[bool, int] | None:
    """Run `steps`, then compare the counted estimate of a ticket for `item` with the walked
    estimate of that ticket once taken; (answered from the counts, people ahead), or None
    when no window serves the item any more."""
    core = Centre(small_catalog(), CentreConfig(
        "t", tuple(WindowSpec(n, k) for n, k in WINDOWS)))
    now = T0
    for n, _ in WINDOWS:
        core.apply(c.OpenWindow(n, clerk=f"clerk{n}"), now)
    for s in steps:
        now += s[1] if s[0] == "wait" else 1
        apply(core, s, now)
    now += 1
    new = core.estimate_new(item, now)
    try:
        effects = core.apply(c.TakeTicket(item), now)
    except Rejected:
        return None  # no window serves the item any more: nothing to compare
    [issued] = [e for e in effects if isinstance(e, TicketIssued)]
    walked = core.estimate(core.tickets[issued.ticket], now)
    if new is None:
        q = core.queue
        assert q.targeted or any(u.order_key >= now for u in q.appointment) or any(
            u.order_key >= now for u in [*q.normal, *q.priority] if u.id != issued.ticket)
    else:
        assert new[0] == walked[0]
        assert new[1] == walked[1] or abs(new[1] - walked[1]) < 1e-9  # inf: no window
    return new is not None, walked[0]


@settings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=40), st.sampled_from(ITEMS))
def test_a_new_tickets_estimate_from_counts_equals_the_walk(steps, item) -> None:
    check(steps, item)


def test_both_ways_on_chosen_queues() -> None:
    """A queue of every tier answered from the counts, and a transfer that needs the walk."""
    queue = [("take", "SOC-1", "normal", 0), ("take", "SOC-2", "priority", 0),
             ("take", "MED-1", "normal", 0), ("take", "SOC-1", "appointment", -600),
             ("take", "CARD-1", "normal", 0)]
    assert check(queue, "SOC-1") == (True, 5)  # all five share a comprehensive window
    called = [*queue, ("take", "SOC-1", "normal", 0), ("call", 1), ("transfer", 1, 2)]
    got = check(called, "SOC-2")
    assert got is not None and got[0] is False
