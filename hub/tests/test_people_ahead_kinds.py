"""People ahead of a specialised item's ticket (a card, a cash payment): only the tickets of
its kind while a specialised window of that kind serves it (such a window calls its own
items first, hub/core/serving.py `_pick`), everyone waiting for its windows in tier and
order where none is open (comprehensive windows call in plain dispatch order, whatever the
item). What the resident's ticket prints (`TicketIssued.ahead`), the pages show
(`ahead_of`) and the supervisors' floor reads (`estimate_new`) follow the windows."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.effects import TicketCalled, TicketIssued
from onewindow.hub.core.model import TicketState
from onewindow.hub.core.rejected import Rejected

from .catalogs import small_catalog

T0 = 1_800_000_000.0


def _hall(*specs: WindowSpec, open_: tuple[int, ...]) -> Centre:
    core = Centre(small_catalog(), CentreConfig("t", specs))
    for n in open_:
        core.apply(c.OpenWindow(n, clerk=f"clerk{n}"), T0)
    return core


def _take(core: Centre, item: str, now: float) -> tuple[str, int]:
    issued = [e for e in core.apply(c.TakeTicket(item), now) if isinstance(e, TicketIssued)]
    return issued[0].ticket, issued[0].ahead


def _ahead(core: Centre, tid: str, now: float) -> int:
    t = core.tickets[tid]
    n = core.count_ahead(t, now)
    assert len(core.ahead_of(t, now)) == n
    return n


def test_comprehensive_hall_a_card_ticket_waits_behind_everyone_and_is_called_so() -> None:
    # Two windows that serve every item, no card window: they call in plain order.
    core = _hall(WindowSpec(1, skills=("*",)), WindowSpec(2, skills=("*",)), open_=(1, 2))
    for i in range(10):
        _take(core, "SOC-1", T0 + i)
    est = core.estimate_new("CARD-1", T0 + 10)
    assert est is not None and est[0] == 10
    card, printed = _take(core, "CARD-1", T0 + 10)
    assert printed == 10
    assert _ahead(core, card, T0 + 10) == 10
    # The windows agree: ten residents are called before the card ticket.
    called: list[str] = []
    now = T0 + 20
    while core.tickets[card].state is TicketState.WAITING:
        for w in (1, 2):
            for e in core.apply(c.CallNext(w), now):
                if isinstance(e, TicketCalled):
                    called.append(e.ticket)
            now += 60
    assert called.index(card) == 10


def test_a_card_window_open_then_closed_then_paused() -> None:
    # Two comprehensive windows serving every item and a card window (which, as policy
    # allows by default, helps with comprehensive items when it has no card ticket).
    core = _hall(WindowSpec(1, skills=("*",)), WindowSpec(2, skills=("*",)),
                 WindowSpec(3, "card"), open_=(1, 2, 3))
    for i in range(10):
        _take(core, "SOC-1", T0 + i)
    _take(core, "CARD-1", T0 + 10)
    card, printed = _take(core, "CARD-1", T0 + 11)
    now = T0 + 12
    assert printed == 1  # the card window open: only the card ticket before it
    assert _ahead(core, card, now) == 1
    est = core.estimate_new("CARD-1", now)
    assert est is not None and est[0] == 2

    core.apply(c.CloseWindow(3), now)  # the card window closes: the count follows
    assert _ahead(core, card, now) == 11
    est = core.estimate_new("CARD-1", now)
    assert est is not None and est[0] == 12

    core.apply(c.OpenWindow(3, clerk="clerk3"), now)  # and opens again
    assert _ahead(core, card, now) == 1

    # Paused, it comes back and serves its own first again (the reach holds a paused
    # window; the forecast's `own_window_kinds` counts every window not closed too).
    core.apply(c.Pause(3), now)
    assert _ahead(core, card, now) == 1
    core.apply(c.Resume(3), now)
    # The windows agree: the card window calls both card tickets first.
    first = [e.ticket for e in core.apply(c.CallNext(3), now + 1)
             if isinstance(e, TicketCalled)]
    second = [e.ticket for e in core.apply(c.CallNext(3), now + 2)
              if isinstance(e, TicketCalled)]
    assert second == [card] and first != [card]


def test_a_ticket_sent_to_a_comprehensive_window_waits_its_turn_there() -> None:
    # The card window is open, but a card ticket transferred to window 1 is called by
    # window 1 alone, in plain order: everyone waiting there is ahead of it.
    core = _hall(WindowSpec(1, skills=("*",)), WindowSpec(3, "card"), open_=(1, 3))
    card, _ = _take(core, "CARD-1", T0)
    core.apply(c.CallNext(3), T0 + 1)  # the card window calls it ...
    for i in range(4):
        _take(core, "SOC-1", T0 + 2 + i)
    core.apply(c.Transfer(3, to_window=1), T0 + 10)  # ... and sends it to window 1
    t = core.tickets[card]
    assert t.state is TicketState.WAITING and t.target_window == 1
    want = len([u for u in core.queue if u is not t and u.sort_key < t.sort_key])
    assert _ahead(core, card, T0 + 10) == want


WINDOWS = (WindowSpec(1, skills=("*",)), WindowSpec(2), WindowSpec(3, "card"),
           WindowSpec(4, "cash"))
ITEMS = ("SOC-1", "MED-1", "CARD-1", "CASH-1")
STEP = st.one_of(
    st.tuples(st.just("take"), st.sampled_from(ITEMS), st.sampled_from(["normal", "priority"])),
    st.tuples(st.sampled_from(["open", "close", "pause", "resume", "call"]),
              st.sampled_from([1, 2, 3, 4]), st.just("")),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(opened=st.sets(st.sampled_from([1, 2, 3, 4])), steps=st.lists(STEP, max_size=40))
def test_counts_equal_the_walk_as_windows_open_close_and_pause(opened, steps) -> None:
    """count_ahead's per-item cache (`_share_rows`) follows the windows: after every step,
    for every waiting ticket, count_ahead == len(ahead_of); a new ticket prints what
    estimate_new said just before (when it answers)."""
    core = _hall(*WINDOWS, open_=tuple(sorted(opened)))
    now = T0
    ops = {"open": lambda n: c.OpenWindow(n, clerk=f"c{n}"), "close": c.CloseWindow,
           "pause": c.Pause, "resume": c.Resume, "call": c.CallNext}
    for op, arg, prio in steps:
        now += 30
        try:
            if op == "take":
                est = core.estimate_new(arg, now) if prio == "normal" else None
                effects = core.apply(c.TakeTicket(arg, prio), now)
                printed = next(e.ahead for e in effects if isinstance(e, TicketIssued))
                if est is not None:
                    assert printed == est[0]
            else:
                core.apply(ops[op](arg), now)
        except Rejected:
            continue
        for t in core.queue:
            assert core.count_ahead(t, now) == len(core.ahead_of(t, now))
