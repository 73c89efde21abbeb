"""The live pages' wait forecasts (hub/web/livewait.py): the hall's lines and every watched
phone ticket are read together at one journal position (one simulation: the forecast caches
one position) once per 5 s step, not for a call within the step, again when the step turns
or a window opens or closes. The hub's real core, forecast
and pages (public.routes) in this process with a clock the test moves; the streams are the
real LiveHub's, opened in an event loop."""

import asyncio

from onewindow.hub.app import HubApp
from onewindow.hub.app.waits import LIVE_WAIT_STEP
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import Registry
from onewindow.hub.web import public
from onewindow.hub.web.site import Site

T0 = 1_795_500_000.0 - 1_795_500_000.0 % LIVE_WAIT_STEP  # the start of a step


def test_hall_and_phones_read_their_waits_together_once_per_step():
    now = [T0]
    centre = Centre(load_catalog(), CentreConfig("w", tuple(WindowSpec(n) for n in (1, 2, 3))))
    hub = HubApp(centre, Registry([]), "b")
    site = Site(hub, None, lambda: now[0])
    public.routes(site)
    for n in (1, 2):
        hub.operate(c.OpenWindow(n), now[0])
    for _ in range(30):
        hub.operate(c.TakeTicket("SOC-001"), now[0])
    ids = list(centre.tickets)[-10:]
    asked = []  # (clock, journal position) of each forecast read the pages make
    for name in ("item_wait", "ticket_wait"):
        read = getattr(hub, name)

        def counted(*a, _read=read, **kw):
            asked.append((now[0], hub.pos))
            return _read(*a, **kw)

        setattr(hub, name, counted)

    async def open_pages() -> None:
        # ten phone pages and a hall screen open: the feeds their streams hold, each built
        for tid in ids:
            site.live._subscribe("ticket", tid)
        site.live._subscribe("hall", "")

    asyncio.run(open_pages())
    first = [site.live.snapshot("ticket", t) for t in ids]
    # the hall's 12 lines and the ten phones, read once, at one journal position: one
    # simulation (the forecast caches one position)
    lines = len(centre.catalog.lines)
    assert len(asked) == lines + 10 and len(set(asked)) == 1, asked
    assert all(s["wait"] is not None for s in first)
    now[0] += 1
    hub.operate(c.CallNext(1), now[0])  # a call within the step: people ahead move
    again = [site.live.snapshot("ticket", t) for t in ids]
    site.live.snapshot("hall")
    assert len(asked) == lines + 10  # nothing asked within the step
    assert [s["ahead"] for s in again] == [s["ahead"] - 1 for s in first]
    now[0] = T0 + LIVE_WAIT_STEP  # the step turns: one more, for all of them
    for t in ids:
        site.live.snapshot("ticket", t)
    site.live.snapshot("hall")
    refresh = asked[lines + 10:]
    assert len(refresh) == lines + 10 and len(set(refresh)) == 1, refresh
    hub.operate(c.OpenWindow(3), now[0])  # more windows: the waits change at once
    site.live.snapshot("hall")  # the hall and the phones together again
    assert len(asked) == 3 * (lines + 10) and len(set(asked[-(lines + 10):])) == 1
