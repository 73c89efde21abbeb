"""The phone pages' batched "people ahead" (hub/web/ahead.py) is the core's own `ahead_of`,
counted: compared on centres built by random operations (priority and appointment tickets,
specialised items, windows with narrow skills, tickets transferred to one window)."""

import random

from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.model import TicketState
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.web.ahead import ahead_counts

T0 = 1_795_500_000.0


def random_centre(seed: int) -> tuple[Centre, float]:
    rng = random.Random(seed)
    cat = load_catalog(None)
    windows = (WindowSpec(1), WindowSpec(2), WindowSpec(3, skills=("social",)),
               WindowSpec(4, kind="card"), WindowSpec(5, kind="cash"), WindowSpec(6))
    centre = Centre(cat, CentreConfig("t", windows))
    now = T0
    for w in windows:
        if rng.random() < 0.85:
            centre.apply(c.OpenWindow(w.number), now)
    items = sorted(cat.items)
    popular = items[:6] + [i for i in items if cat.items[i].specialised]
    for _ in range(rng.randint(20, 120)):
        now += rng.uniform(0, 30)
        op = rng.random()
        try:
            if op < 0.75:
                prio = rng.choice(["normal"] * 6 + ["priority", "appointment"])
                at = now + rng.uniform(-1800, 1800) if prio == "appointment" else None
                centre.apply(c.TakeTicket(rng.choice(popular), priority=prio,
                                          appointment_at=at), now)
            elif op < 0.9:
                centre.apply(c.CallNext(rng.randint(1, 6)), now)
            else:
                n = rng.randint(1, 6)
                centre.apply(c.CallNext(n), now)
                centre.apply(c.Transfer(n, to_window=rng.randint(1, 6)), now)
        except Rejected:
            pass
    return centre, now


def test_batched_counts_equal_the_cores_ahead_of():
    compared = 0
    kinds: set[str] = set()
    for seed in range(40):
        centre, now = random_centre(seed)
        waiting = [t for t in centre.tickets.values() if t.state is TicketState.WAITING]
        kinds |= {t.priority.value for t in waiting}
        kinds |= {"targeted" for t in waiting if t.target_window is not None}
        kinds |= {"specialised" for t in waiting if centre.catalog.items[t.item].specialised}
        for at in (now, now + 600, now + 1200):  # appointment tiers turn with the clock
            got = ahead_counts(centre, waiting, at)
            want = {t.id: len(centre.ahead_of(t, at)) for t in waiting}
            assert got == want, seed
            compared += len(want)
    assert compared > 1000
    # the variety the comparison needs was there
    assert kinds == {"normal", "priority", "appointment", "targeted", "specialised"}, kinds
