"""The dashboard's per-window queue counts (hub/web/floor.py windows(), counted in one walk
of the queue) equal the rule they stand for, checked ticket by ticket on random centres:
a ticket sent to a window counts there only; any other counts at every window whose skills
hold its item."""

from onewindow.hub.core.model import WindowState
from onewindow.hub.web import floor

from .test_live_ahead import random_centre


def test_window_queue_counts_follow_the_rule():
    seen_sent = False
    for seed in range(40):
        centre, now = random_centre(seed)
        rows = {r["number"]: r for r in floor.windows(centre, now)}
        for n, w in centre.windows.items():
            want = sum(1 for u in centre.queue
                       if (u.target_window == n if u.target_window is not None
                           else u.item in w.skills))
            got = rows[n]["queue"]
            assert got == (None if w.state is WindowState.CLOSED else want), (seed, n)
        seen_sent |= any(u.target_window is not None for u in centre.queue)
    assert seen_sent
