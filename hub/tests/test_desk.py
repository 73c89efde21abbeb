"""The clerk's desk in the core (hub/core/desk.py): calling a specific waiting ticket with a
reason, pausing with a reason code; both journaled, replayed and snapshotted alike.

The stateful machine adds these two operations to the queue machine's random runs
(test_core_properties.QueueMachine, with its invariants: none lost, none served twice, ...)
and at the end of each run replays the accepted commands from their journal records into a
fresh core and restores a snapshot of the final state: all three must be equal.
"""

import json

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import rule

from onewindow.hub.core import commands as c
from onewindow.hub.core import desk
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.effects import TicketCalled
from onewindow.hub.core.model import TicketState, WindowState
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.core.snapshot import centre_state, restore_centre

from .catalogs import centre
from .test_core_properties import ITEMS, T0, QueueMachine


def _take(core, item, now, **kw):
    core.apply(c.TakeTicket(item, **kw), now)
    return max(core.tickets.values(), key=lambda t: t.serial)


def test_call_a_specific_ticket_out_of_turn_and_the_record_keeps_why_and_who():
    core = centre()
    first = _take(core, "SOC-1", 10)
    second = _take(core, "SOC-1", 20)
    cmd = desk.CallTicket(1, ticket=second.number, reason="returned_materials", by="li")
    effects = core.apply(cmd, 30)
    assert TicketCalled(second.id, 1) in effects
    assert second.state is TicketState.CALLED and core.windows[1].ticket == second.id
    assert first.state is TicketState.WAITING and first in list(core.queue)
    record = cmd.to_record()
    assert record == {"op": "call_ticket", "window": 1, "ticket": second.number,
                      "reason": "returned_materials", "note": "", "by": "li"}
    assert c.from_record(json.loads(json.dumps(record))) == cmd
    # the next call is the policy's again: the first ticket (and the one at the window is done)
    core.apply(c.CallNext(1), 40)
    assert second.state is TicketState.DONE and first.state is TicketState.CALLED


@pytest.mark.parametrize("case, code", [
    ("called", "not_waiting"),
    ("done", "not_waiting"),
    ("unknown", "unknown_ticket"),
    ("item", "not_served_here"),
    ("targeted", "not_for_window"),
    ("reason", "bad_reason"),
    ("other", "note_required"),
    ("long", "bad_note"),
    ("nobody", "bad_field"),
    ("paused", "window_paused"),
    ("closed", "window_closed"),
])
def test_refusals_change_nothing(case, code):
    core = centre(windows=((1, "comprehensive"), (2, "comprehensive"), (3, "card")))
    t = _take(core, "SOC-1", 10)
    u = _take(core, "SOC-1", 11)
    kw = {"window": 1, "ticket": t.number, "reason": "elderly_disabled", "by": "li"}
    if case == "called":
        core.apply(c.CallNext(2), 12)  # t is at window 2
    elif case == "done":
        core.apply(c.CallNext(2), 12)
        core.apply(c.Complete(2), 13)
    elif case == "unknown":
        kw["ticket"] = "Z999"
    elif case == "item":  # comprehensive window 1 does not serve the card item
        kw["ticket"] = _take(core, "CARD-1", 12).number
    elif case == "targeted":  # sent to window 2 by a transfer
        core.apply(c.CallNext(2), 12)
        core.apply(c.Transfer(2, to_window=3), 13)
        kw["window"] = 1
    elif case == "reason":
        kw["reason"] = "vip"
    elif case == "other":
        kw["reason"], kw["note"] = "other", "   "
    elif case == "long":
        kw["reason"], kw["note"] = "other", "x" * (desk.NOTE_MAX + 1)
    elif case == "nobody":
        kw["by"] = ""
    elif case == "paused":
        core.apply(c.Pause(1, reason="lunch"), 12)
    elif case == "closed":
        core.apply(c.CloseWindow(1), 12)
    before = core.to_dict()
    with pytest.raises(Rejected) as e:
        core.apply(desk.CallTicket(**kw), 20)
    assert e.value.code == code
    assert core.to_dict() == before
    assert u.state is TicketState.WAITING


def test_other_with_a_note_and_a_busy_window_finishes_its_resident_first():
    core = centre()
    a = _take(core, "SOC-1", 10)
    b = _take(core, "SOC-1", 11)
    core.apply(c.CallNext(1), 12)
    core.apply(c.Start(1), 13)
    core.apply(desk.CallTicket(1, ticket=b.id, reason="other", note="家属代办", by="li"), 20)
    assert a.state is TicketState.DONE and b.state is TicketState.CALLED


def test_pause_reason_kept_while_paused_and_old_records_replay_unspecified():
    core = centre()
    core.apply(c.Pause(1, reason="training"), 10)
    assert core.windows[1].pause_reason == "training"
    assert core.windows[1].to_dict()["pause_reason"] == "training"
    core.apply(c.Resume(1), 20)
    assert core.windows[1].pause_reason is None
    # a keypad's pause and a journal written before reasons: no `reason` key
    assert c.Pause(2).to_record() == {"op": "pause", "window": 2}
    old = c.from_record({"op": "pause", "window": 2})
    assert old == c.Pause(2, reason="")
    core.apply(old, 30)
    assert core.windows[2].state is WindowState.PAUSED and core.windows[2].pause_reason == ""
    assert desk.pause_label("") == desk.UNSPECIFIED_LABEL
    with pytest.raises(Rejected) as e:
        core.apply(c.Pause(1, reason="nap"), 40)
    assert e.value.code == "bad_reason" and core.windows[1].state is WindowState.IDLE
    core.apply(c.Pause(1, reason="lunch"), 50)
    core.apply(c.CloseWindow(1), 60)
    assert core.windows[1].pause_reason is None


def test_snapshot_before_pause_reasons_restores_a_paused_window_unspecified():
    core = centre()
    core.apply(c.Pause(1, reason="meeting"), 10)
    snap = json.loads(json.dumps(centre_state(core)))
    for w in snap["windows"].values():
        del w["pause_reason"]  # as a snapshot taken before reasons
    fresh = Centre(core.catalog, core.config)
    restore_centre(fresh, snap)
    assert fresh.windows[1].pause_reason == "" and fresh.windows[2].pause_reason is None


class DeskMachine(QueueMachine):
    """The queue machine with calls of a specific ticket and pauses with reasons."""

    def __init__(self):
        super().__init__()
        self.accepted: list[tuple[dict, float]] = [
            (c.OpenWindow(n, clerk=f"clerk{n}").to_record(), T0) for n in (1, 2, 3)]

    def _do(self, cmd):
        before = self.core.to_dict()
        effects = super()._do(cmd)
        if self.core.to_dict() != before or effects:
            self.accepted.append((cmd.to_record(), self.now))
        return effects

    @rule(window=st.sampled_from([1, 2, 3]), pick=st.integers(min_value=0, max_value=40),
          reason=st.sampled_from([*desk.CALL_REASONS, "bogus"]),
          note=st.sampled_from(["", "带齐了"]))
    def call_specific(self, window, pick, reason, note):
        # mostly a waiting ticket, sometimes any of today's (called, done, ...)
        pool = sorted(self._waiting() if pick % 4 else self.core.tickets.values(),
                      key=lambda t: t.serial)
        ref = pool[pick % len(pool)].number if pool else "A001"
        w = self.core.windows[window]
        t = self.core.find_ticket(ref)
        can = (t is not None and t.state is TicketState.WAITING and bool(self._waiting())
               and w.state not in (WindowState.CLOSED, WindowState.PAUSED)
               and reason in desk.CALL_REASONS and (reason != "other" or note)
               and (t.target_window == window if t.target_window is not None
                    else t.item in w.skills))
        effects = self._do(desk.CallTicket(window, ticket=ref, reason=reason, note=note,
                                           by="clerk"))
        called = [e.ticket for e in effects if isinstance(e, TicketCalled)]
        if can:
            assert called == [t.id] and self.core.windows[window].ticket == t.id
        else:
            assert not called

    @rule(window=st.sampled_from([1, 2, 3]),
          reason=st.sampled_from(["", *desk.PAUSE_REASONS]))
    def pause_with_reason(self, window, reason):
        self._do(c.Pause(window, reason=reason))
        w = self.core.windows[window]
        assert (w.pause_reason is not None) == (w.state is WindowState.PAUSED)

    def teardown(self):
        # replayed from the records, as the hub does at start-up
        fresh = Centre(self.core.catalog, self.core.config)
        for record, at in self.accepted:
            fresh.apply(c.from_record(json.loads(json.dumps(record))), at)
        assert fresh.to_dict() == self.core.to_dict()
        restored = Centre(self.core.catalog, self.core.config)
        restore_centre(restored, json.loads(json.dumps(centre_state(self.core))))
        assert restored.to_dict() == self.core.to_dict()


TestDeskMachine = DeskMachine.TestCase
TestDeskMachine.settings = settings(max_examples=40, stateful_step_count=40, deadline=None,
                                    suppress_health_check=[HealthCheck.too_slow])
assert ITEMS  # the machine's items (small_catalog)
