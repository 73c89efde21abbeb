"""Follow-ups (差评整改) and bookings (预约) in the past days' tables (hub/store/history.py):
the staff report read from the tables equals the replay's on days with follow-ups opened
and closed across days and bookings checked in, late and never come; and the supervisors'
day summary (hub/web/floor.py) counts 满意率 on the five levels."""

from __future__ import annotations

import datetime as dt

from onewindow.hub.core import commands as c
from onewindow.hub.web import floor

from .catalogs import centre as core_centre

T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()


def test_the_floor_summary_counts_levels_3_to_5_as_satisfied():
    """满意率 = (非常满意 + 满意 + 基本满意) / all: levels 5, 4, 3 satisfied, 2 and 1 not."""
    core = core_centre(now=T0)
    for k in range(5):
        core.apply(c.TakeTicket("SOC-1"), T0 + k)
    ids = [t.id for t in sorted(core.tickets.values(), key=lambda t: t.serial)]
    for k, score in enumerate((5, 4, 3, 2, 1)):
        core.apply(c.CallNext(1), T0 + 60 + 120 * k)  # the queue's first: ids[k]
        core.apply(c.Complete(1), T0 + 100 + 120 * k)
        core.apply(c.Rate(1, ticket=ids[k], score=score, scale=5), T0 + 110 + 120 * k)
    s = floor.summary(core)
    assert s["ratings"] == 5
    assert s["satisfaction_rate"] == 0.6  # 3 of 5: not 1/5 (score 1 only, the old rule)
    # a day of 非常不满意 only: 0, not 1 as the old rule (score 1 satisfied) said
    only_bad = core_centre(now=T0)
    only_bad.apply(c.TakeTicket("SOC-1"), T0)
    only_bad.apply(c.CallNext(1), T0 + 60)
    only_bad.apply(c.Complete(1), T0 + 120)
    tid = next(iter(only_bad.tickets))
    only_bad.apply(c.Rate(1, ticket=tid, score=1, scale=5), T0 + 130)
    assert floor.summary(only_bad)["satisfaction_rate"] == 0.0
