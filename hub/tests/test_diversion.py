"""Diversion in the core (issue 20, hub/core/diversion.py): this centre's waits per line,
the nearby centres nearest first and flagged when less busy, stale ones left out, and the
nearest centre with a free booking slot."""

import json

from hypothesis import given
from hypothesis import strategies as st

from onewindow.hub.core import commands as c
from onewindow.hub.core import diversion as dv

from .catalogs import centre

T0 = 1_795_400_000.0


def waits(name: str, at: float, minutes: float | None, free: float | None = None,
          line: str = "soc") -> dv.Waits:
    return dv.Waits(name, at, {line: dv.LineWait(3, minutes, free)}, {"zh": name, "en": name})


def test_own_waits_count_the_queue_per_line_and_round_trip() -> None:
    core = centre(now=T0)
    for item in ("SOC-1", "SOC-1", "MED-1"):
        core.apply(c.TakeTicket(item), T0 + 1)
    w = dv.own_waits(core, T0 + 2, "http://here")
    assert (w.lines["soc"].waiting, w.lines["med"].waiting, w.lines["civ"].waiting) == (2, 1, 0)
    assert w.lines["soc"].minutes is not None and w.lines["soc"].minutes > 0
    assert dv.Waits.from_dict(json.loads(json.dumps(w.to_dict()))) == w


def test_nearby_nearest_first_stale_left_out_shorter_flagged() -> None:
    own = waits("A", T0, 40.0)
    neighbours = [dv.Neighbour("C", 3.0), dv.Neighbour("B", 1.0), dv.Neighbour("D", 0.5)]
    heard = {"B": waits("B", T0 - 5, 35.0), "C": waits("C", T0 - 1, 10.0),
             "D": waits("D", T0 - dv.STALE_S - 1, 0.0)}  # D: not heard from lately
    near = dv.nearby(own, neighbours, heard, T0)
    assert [(n.centre, n.shorter) for n in near] == [("B", False), ("C", True)]


def test_nearest_free_slot_prefers_here_then_the_nearest() -> None:
    neighbours = [dv.Neighbour("B", 1.0), dv.Neighbour("C", 3.0)]
    heard = {"B": waits("B", T0, 5.0, free=T0 + 7200), "C": waits("C", T0, 5.0, free=T0 + 600)}
    here = waits("A", T0, 5.0, free=T0 + 9000)
    assert dv.nearest_free("soc", here, neighbours, heard, T0).centre == "A"
    full = waits("A", T0, 5.0, free=None)
    best = dv.nearest_free("soc", full, neighbours, heard, T0)
    assert (best.centre, best.km, best.slot) == ("B", 1.0, T0 + 7200)
    assert dv.nearest_free("med", full, neighbours, heard, T0) is None


@given(st.lists(st.tuples(st.sampled_from("BCDEF"), st.floats(0, 20), st.one_of(
    st.none(), st.floats(0, 120)), st.floats(0, 120)), max_size=8))
def test_nearby_is_sorted_and_never_stale(rows) -> None:
    neighbours = {n: dv.Neighbour(n, km) for n, km, _, _ in rows}
    heard = {n: waits(n, T0 - age, m) for n, _, m, age in rows}
    near = dv.nearby(waits("A", T0, 30.0), list(neighbours.values()), heard, T0)
    assert [n.km for n in near] == sorted(n.km for n in near)
    assert all(T0 - heard[n.centre].at <= dv.STALE_S for n in near)
    assert all(n.shorter == (n.minutes is not None and n.minutes + dv.SHORTER_BY <= 30.0)
               for n in near)
