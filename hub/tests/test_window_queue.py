"""`window_queue.upcoming` (what the API lists for a window: hub/web/api.py) is the order the
window calls in: on the queue machine's random histories (takes, priority, transfers to a
window, specialised windows, pauses, recalls, skips, day roll-overs), the listing of each
open window equals the tickets a copy of the core calls there, call after call, and it
changes nothing."""

from __future__ import annotations

import copy
import datetime as dt

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import rule

from onewindow.hub.core import commands as c
from onewindow.hub.core.effects import TicketCalled
from onewindow.hub.core.model import WindowState
from onewindow.hub.core.policy import OrderingPolicy
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.core.window_queue import upcoming

from .test_core_properties import CST, QueueMachine


class ListingMachine(QueueMachine):
    @rule(window=st.sampled_from([1, 2, 3]), limit=st.integers(min_value=1, max_value=8))
    def listing_is_the_calling_order(self, window, limit):
        today = dt.datetime.fromtimestamp(self.now, CST).strftime("%Y%m%d")
        w = self.core.windows[window]
        if self.core.day != today or w.state in (WindowState.CLOSED, WindowState.PAUSED):
            return  # a call now would roll the day over first, or is refused
        before = self.core.to_dict()
        listed = [t.id for t in upcoming(self.core, window, self.now, limit)]
        assert self.core.to_dict() == before, "listing changed the state"
        assert len(listed) <= limit and len(set(listed)) == len(listed)
        twin = copy.deepcopy(self.core)
        called = []
        for _ in range(len(listed) + 1):
            try:
                effects = twin.apply(c.CallNext(window), self.now)
            except Rejected:
                break
            got = [e.ticket for e in effects if isinstance(e, TicketCalled)]
            if not got:
                break
            called.append(got[0])
        assert called[:len(listed)] == listed
        if len(listed) < limit:  # the listing was the whole queue for this window
            assert called == listed


class AgingListingMachine(ListingMachine):
    policy = OrderingPolicy(mode="aging", weights={"normal": 1.0, "priority": 3.0})


TestListing = ListingMachine.TestCase
TestListing.settings = settings(max_examples=60, stateful_step_count=40, deadline=None,
                                suppress_health_check=[HealthCheck.too_slow])
TestAgingListing = AgingListingMachine.TestCase
TestAgingListing.settings = settings(max_examples=40, stateful_step_count=40,
                                        deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow])
