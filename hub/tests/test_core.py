"""The dispatch core, operation by operation, with the orderings centres argue about."""

import copy
import datetime as dt

import pytest

from onewindow.hub.core import commands as c
from onewindow.hub.core.effects import (
    CaseOpened,
    DayClosed,
    TicketCalled,
    TicketIssued,
    Unreachable,
)
from onewindow.hub.core.model import TicketState, WindowState
from onewindow.hub.core.policy import OrderingPolicy
from onewindow.hub.core.rejected import Rejected

from .catalogs import centre

CST = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=CST).timestamp()  # a Monday, 09:00


def take(core, item="SOC-1", now=T0, **kw):
    effects = core.apply(c.TakeTicket(item, **kw), now)
    issued = [e for e in effects if isinstance(e, TicketIssued)]
    return core.tickets[issued[0].ticket]


def call(core, window, now=T0):
    effects = core.apply(c.CallNext(window), now)
    called = [e for e in effects if isinstance(e, TicketCalled)]
    return core.tickets[called[0].ticket].number if called else None


def test_numbers_run_per_prefix_and_restart_next_day():
    core = centre()
    assert [take(core, "SOC-1").number, take(core, "MED-1").number,
            take(core, "SOC-2").number] == ["A001", "B001", "A002"]
    tomorrow = T0 + 86400
    effects = core.apply(c.TakeTicket("SOC-1"), tomorrow)
    closed = [e for e in effects if isinstance(e, DayClosed)]
    assert closed and len(closed[0].expired) == 3
    assert core.tickets[effects[-2].ticket].number == "A001"
    assert core.day == "20261124"


def test_fifo_within_a_class_and_skill_routing():
    core = centre(windows=((1, "comprehensive"), (2, "card")))
    for item in ("SOC-1", "CARD-1", "MED-1", "CARD-1"):
        take(core, item)
    # Window 2 (card) serves its own items first, in arrival order.
    assert call(core, 2) == "A002"
    assert call(core, 1) == "A001"
    # Comprehensive windows never get card-only items.
    assert call(core, 1) == "B001"
    assert call(core, 2) == "A003"  # current one completes, the next card ticket comes
    # Nothing left for window 1 (card item is not in its skills); its ticket completes.
    core.apply(c.Complete(1), T0)
    with pytest.raises(Rejected) as e:
        core.apply(c.CallNext(1), T0)
    assert e.value.code == "queue_empty"


def test_specialised_window_helps_only_when_idle_and_only_if_configured():
    core = centre(windows=((1, "comprehensive"), (2, "card")))
    take(core, "SOC-1")
    assert call(core, 2) == "A001"  # idle card window helps with a comprehensive item
    strict = centre(windows=((1, "comprehensive"), (2, "card")),
                    policy=OrderingPolicy(specialised_helps=False))
    take(strict, "SOC-1")
    with pytest.raises(Rejected):
        strict.apply(c.CallNext(2), T0)


def test_ratio_policy_two_priority_then_one_normal():
    core = centre(windows=((1, "comprehensive"),), policy=OrderingPolicy(mode="ratio", ratio=2))
    for i in range(4):
        take(core, "SOC-1", now=T0 + i)  # A001..A004 normal
    for i in range(4):
        take(core, "MED-1", now=T0 + 10 + i, priority="priority")  # B001..B004
    order = [call(core, 1, now=T0 + 100 + i) for i in range(8)]
    assert order == ["B001", "B002", "A001", "B003", "B004", "A002", "A003", "A004"]


def test_aging_policy_lets_a_long_wait_beat_a_fresh_priority_ticket():
    policy = OrderingPolicy(mode="aging", weights={"normal": 1.0, "priority": 3.0})
    core = centre(windows=((1, "comprehensive"),), policy=policy)
    take(core, "SOC-1", now=T0)  # waited 1000 s at call time -> score 1000
    take(core, "MED-1", now=T0 + 900, priority="priority")  # waited 100 s -> score 300
    take(core, "MED-1", now=T0 + 500, priority="priority")  # B002 waited 500 -> 1500
    assert call(core, 1, now=T0 + 1000) == "B002"
    assert call(core, 1, now=T0 + 1000) == "A001"  # 1000 beats 3 x 100
    assert call(core, 1, now=T0 + 1000) == "B001"


def test_priority_never_starves_normal_under_ratio():
    core = centre(windows=((1, "comprehensive"),))
    take(core, "SOC-1", now=T0)
    served = []
    for i in range(10):
        take(core, "MED-1", now=T0 + 1 + i, priority="priority")
        served.append(call(core, 1, now=T0 + 100 + i))
    assert "A001" in served[:3]


def test_appointment_goes_first_near_its_slot_but_queues_normally_when_early():
    core = centre(windows=((1, "comprehensive"),))
    take(core, "SOC-1", now=T0)
    appt = take(core, "MED-1", now=T0 + 5, priority="appointment", appointment_at=T0 + 3600)
    take(core, "SOC-1", now=T0 + 10)
    # An hour early: it waits in arrival order.
    assert call(core, 1, now=T0 + 20) == "A001"
    assert call(core, 1, now=T0 + 21) == appt.number
    core2 = centre(windows=((1, "comprehensive"),))
    take(core2, "SOC-1", now=T0)
    a2 = take(core2, "MED-1", now=T0 + 5, priority="appointment", appointment_at=T0 + 300)
    assert call(core2, 1, now=T0 + 60) == a2.number  # within 10 min of the slot


def test_skip_requeues_once_at_the_back_then_no_show():
    core = centre(windows=((1, "comprehensive"),))
    first = take(core, "SOC-1", now=T0)
    take(core, "SOC-1", now=T0 + 1)
    assert call(core, 1, now=T0 + 10) == "A001"
    core.apply(c.Skip(1), T0 + 20)
    assert first.state is TicketState.WAITING
    assert call(core, 1, now=T0 + 30) == "A002"
    core.apply(c.Complete(1), T0 + 40)
    assert call(core, 1, now=T0 + 50) == "A001"
    core.apply(c.Skip(1), T0 + 60)
    assert first.state is TicketState.NO_SHOW
    assert core.windows[1].state is WindowState.IDLE


def test_transfer_keeps_the_number_and_its_place():
    core = centre(windows=((1, "comprehensive"), (2, "comprehensive")))
    t = take(core, "SOC-1", now=T0)
    take(core, "SOC-1", now=T0 + 1)
    assert call(core, 1, now=T0 + 10) == "A001"
    core.apply(c.Transfer(1, to_window=2, note="需要专人"), T0 + 20)
    assert t.state is TicketState.WAITING and t.number == "A001"
    assert call(core, 1, now=T0 + 30) == "A002"  # window 1 may not take it back
    assert call(core, 2, now=T0 + 31) == "A001"
    core.apply(c.Transfer(2, to_item="CIV-1"), T0 + 40)
    assert t.item == "CIV-1" and t.target_window is None and t.number == "A001"


def test_one_active_ticket_per_resident_and_item():
    core = centre()
    take(core, "SOC-1", resident="tok1")
    with pytest.raises(Rejected) as e:
        core.apply(c.TakeTicket("SOC-1", resident="tok1"), T0 + 1)
    assert e.value.code == "already_has_ticket" and e.value.detail["ticket"] == "A001"
    take(core, "MED-1", resident="tok1")  # a different item is fine
    call(core, 1)
    core.apply(c.Complete(1), T0 + 5)
    take(core, "SOC-1", resident="tok1", now=T0 + 6)  # served: may take again


@pytest.mark.parametrize("cmd", [
    c.TakeTicket("NOPE"), c.TakeTicket("SOC-1", priority="vip"), c.TakeTicket("CASH-1"),
    c.CallNext(9), c.Recall(1), c.Skip(1), c.Start(1), c.Complete(1), c.Resume(1),
    c.Transfer(1, to_window=2), c.Reprint("Z999"), c.SetSkills(1, ("NOPE",)),
    c.OpenWindow(1),
])
def test_rejections_change_nothing(cmd):
    core = centre()
    take(core, "SOC-1")
    before = copy.deepcopy(core.to_dict())
    with pytest.raises(Rejected):
        core.apply(cmd, T0 + 1)
    assert core.to_dict() == before


def test_closing_the_last_window_for_an_item_reports_its_tickets_unreachable():
    core = centre(windows=((1, "comprehensive"), (2, "card")),
                  policy=OrderingPolicy(specialised_helps=False))
    t = take(core, "CARD-1")
    effects = core.apply(c.CloseWindow(2), T0 + 1)
    assert Unreachable((t.id,)) in effects
    assert core.unreachable() == [t]
    core.apply(c.OpenWindow(2), T0 + 2)
    assert core.unreachable() == []


def test_promised_item_opens_a_case_due_in_working_days():
    core = centre()
    take(core, "SOC-2")  # promised, 5 working days
    call(core, 1)
    core.apply(c.Start(1), T0 + 60)
    effects = core.apply(c.Complete(1), T0 + 600)
    case = next(e for e in effects if isinstance(e, CaseOpened))
    assert case.due_day == "2026-11-30"  # Mon + 5 working days skips the weekend


def test_call_next_completes_the_current_ticket():
    core = centre(windows=((1, "comprehensive"),))
    a, b = take(core, "SOC-1"), take(core, "SOC-1")
    call(core, 1)
    call(core, 1, now=T0 + 300)
    assert a.state is TicketState.DONE and b.state is TicketState.CALLED


def test_recall_and_reprint_and_pause():
    core = centre(windows=((1, "comprehensive"),))
    t = take(core, "SOC-1")
    take(core, "SOC-1")
    [e] = core.apply(c.Reprint("A002", source="box1"), T0 + 1)
    assert e.reprint and e.source == "box1" and e.ahead == 1
    call(core, 1)
    [called] = core.apply(c.Recall(1), T0 + 30)
    assert called == TicketCalled(t.id, 1, recall=True)
    with pytest.raises(Rejected) as err:
        core.apply(c.Pause(1), T0 + 31)
    assert err.value.code == "window_busy"
    core.apply(c.Complete(1), T0 + 40)
    core.apply(c.Pause(1), T0 + 41)
    with pytest.raises(Rejected) as err:
        core.apply(c.CallNext(1), T0 + 42)
    assert err.value.code == "window_paused"


def test_estimate_counts_only_tickets_sharing_windows():
    core = centre(windows=((1, "comprehensive"), (2, "card")),
                  policy=OrderingPolicy(specialised_helps=False))
    take(core, "CARD-1")
    take(core, "CARD-1")
    t = take(core, "SOC-1")
    ahead, wait = core.estimate(t, T0)
    assert ahead == 0 and wait == 0
    card = take(core, "CARD-1")
    ahead, wait = core.estimate(card, T0)
    assert ahead == 2 and wait == pytest.approx(8.0)


def test_a_promised_case_outlives_its_day_while_numbers_restart():
    core = centre(windows=((1, "comprehensive"),))
    t = take(core, "CIV-1")  # promised, 10 working days
    call(core, 1)
    core.apply(c.Complete(1), T0 + 900)
    next_day = T0 + 86400
    assert take(core, "CIV-1", now=next_day).number == "C001"
    case = core.cases[t.id]
    assert case.state == "open" and case.due_day == "2026-12-07"
    assert t.id not in core.tickets  # yesterday's tickets left the live state; the case stays


def test_a_specialised_item_is_not_behind_the_comprehensive_queue():
    core = centre(windows=((1, "comprehensive"), (2, "comprehensive"), (3, "cash")))
    for _ in range(20):
        take(core, "SOC-1")
    cash = take(core, "CASH-1")
    assert core.estimate(cash, T0) == (0, 0.0)
    assert call(core, 3) == cash.number  # and indeed it is called first


def test_offline_blocks_join_in_arrival_order_and_never_collide():
    core = centre(windows=((1, "comprehensive"),))
    core.apply(c.ReserveBlock("box-1", ("A",), size=4), T0)
    assert core.offline_blocks("box-1") == {"A": [[901, 904]]}
    take(core, "SOC-1", now=T0 + 100)  # online: A001
    # The box lost the hub at T0+50 and issued A901 itself; it reports it later.
    late = take(core, "SOC-1", now=T0 + 200, number="A901", taken_at=T0 + 50, source="box-1")
    assert late.number == "A901"
    assert call(core, 1, now=T0 + 300) == "A901"  # pressed earlier, served earlier
    for bad, code in (("A901", "duplicate_number"), ("A905", "not_reserved"),
                      ("B901", "not_reserved")):
        with pytest.raises(Rejected) as e:
            core.apply(c.TakeTicket("SOC-1", number=bad, taken_at=T0 + 60, source="box-1"),
                       T0 + 400)
        assert e.value.code == code
    with pytest.raises(Rejected):  # another box may not use box-1's numbers
        core.apply(c.TakeTicket("SOC-1", number="A902", taken_at=T0, source="box-2"), T0 + 1)
    # Topping up: half or more left -> nothing new; then a fresh range after the first.
    assert core.apply(c.ReserveBlock("box-1", ("A",), size=4), T0 + 500) == []
    for n in ("A902", "A903"):
        take(core, "SOC-1", now=T0 + 600, number=n, taken_at=T0 + 550, source="box-1")
    core.apply(c.ReserveBlock("box-1", ("A",), size=4), T0 + 700)
    assert core.offline_blocks("box-1") == {"A": [[901, 904], [905, 908]]}
    core.apply(c.ReserveBlock("box-2", ("A",), size=4), T0 + 700)
    assert core.offline_blocks("box-2") == {"A": [[909, 912]]}
