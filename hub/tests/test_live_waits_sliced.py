"""The pages' wait simulation in slices (issue 14): `WaitPredictor.simulation` placed in
steps gives the very numbers of one run, of the state it started from, whatever happens
between slices; the live pages, when the waits need a simulation (a window opened), keep the
previous waits while it runs as a task in the hub's loop, then show the new ones and rebuild
their feeds. The hub's real core, forecast and pages (public.routes) in this process with a
clock the test moves, in a real event loop."""

from __future__ import annotations

import asyncio

import numpy as np

from onewindow.hub.app import HubApp
from onewindow.hub.app.waits import LIVE_WAIT_STEP
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import Registry
from onewindow.hub.forecast.wait import Forecast, WaitPredictor
from onewindow.hub.web import public
from onewindow.hub.web.livewait import SLICE, LiveWaits
from onewindow.hub.web.site import Site

T0 = 1_795_500_000.0 - 1_795_500_000.0 % LIVE_WAIT_STEP  # the start of a step


def _centre(waiting: int) -> Centre:
    centre = Centre(load_catalog(), CentreConfig("w", tuple(WindowSpec(n) for n in (1, 2, 3))))
    for n in (1, 2):
        centre.apply(c.OpenWindow(n), T0)
    items = ("SOC-001", "CIV-008", "ELD-004")
    for k in range(waiting):
        centre.apply(c.TakeTicket(items[k % 3]), T0 + k * 0.01)
    return centre


def _same(a: Forecast, b: Forecast) -> bool:
    return (a.starts.keys() == b.starts.keys()
            and all(np.array_equal(a.starts[k], b.starts[k]) for k in a.starts)
            and np.array_equal(a.free, b.free) and a.cols == b.cols)


def test_a_simulation_in_slices_is_the_one_of_the_state_it_started_from():
    centre = _centre(300)
    now, version = T0 + 10, 301
    whole = WaitPredictor()._simulate(centre, now, version)
    steps = WaitPredictor().simulation(centre, now, version, chunk=50)
    next(steps)  # everything it reads of the centre is read by now
    centre.apply(c.OpenWindow(3), now)  # the state moves on between slices
    centre.apply(c.CallNext(1), now)
    pauses = 1
    while True:
        try:
            next(steps)
            pauses += 1
        except StopIteration as done:
            sliced = done.value
            break
    assert pauses == 300 // 50 - 1  # six slices, a pause between each two
    assert _same(sliced, whole)
    assert not _same(whole, WaitPredictor()._simulate(centre, now, version))  # state moved


def test_pages_keep_their_waits_while_a_simulation_runs_then_show_the_new_ones():
    now = [T0]
    centre = _centre(3 * SLICE + 10)
    hub = HubApp(centre, Registry([]), "b")
    site = Site(hub, None, lambda: now[0])
    public.routes(site)
    ids = list(centre.tickets)[-5:]
    rep = "SOC-001"

    async def scenario() -> None:
        for tid in ids:
            site.live._subscribe("ticket", tid)
        site.live._subscribe("hall", "")
        waits = LiveWaits.of(site)
        before = waits.item(rep)  # the first read: at once
        phones = [site.live.snapshot("ticket", t)["wait"] for t in ids]
        assert before is not None and waits.refreshed == 1 and waits.sliced == 0

        now[0] += 1
        hub.operate(c.OpenWindow(3), now[0])  # a window opens: the waits need simulating
        version = site.live.version
        assert waits.item(rep) == before  # the previous waits meanwhile, no stall
        task = waits._task
        assert task is not None and not task.done()
        turns = 0  # the loop's other work between slices
        while not task.done():
            await asyncio.sleep(0)
            turns += 1
        assert turns >= 3  # (3 * SLICE + 10 tickets: four slices)
        assert waits.sliced == 1 and site.live.version > version  # the feeds rebuild
        after = waits.item(rep)
        assert after is not None and after[0] < before[0]  # three windows now, not two
        # the numbers a read at once gives at this position
        fresh = WaitPredictor()._simulate(centre, now[0] - now[0] % LIVE_WAIT_STEP, hub.pos)
        assert after == hub.waits.probe_in(fresh, centre, rep, T0).minutes()
        again = [site.live.snapshot("ticket", t)["wait"] for t in ids]
        assert all(a < b for a, b in zip(again, phones, strict=True))
        assert waits.refreshed == 2  # nothing more until the step turns

        now[0] = T0 + LIVE_WAIT_STEP  # the step turns, nothing unexpected happened: the
        waits.item(rep)  # standing forecast is read at once, no task
        assert waits.refreshed == 3 and waits.sliced == 1 and waits._task is task

    asyncio.run(scenario())
