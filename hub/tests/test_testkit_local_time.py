"""The test kit's `offset_for_local`: tests that need a hall open for their whole run give
the centre a UTC offset at which it is noon (or closing in five minutes) when they start,
instead of fixed hours at UTC+8 that ended at 23:59 under a test started at 23:58."""

from __future__ import annotations

import datetime as dt

import pytest

from onewindow.hub.core.day_calendar import DayCalendar
from onewindow.tools.testkit.testbed import offset_for_local

UTC = dt.UTC


@pytest.mark.parametrize("utc", ["2026-12-05T15:58:30", "2026-12-05T00:00:00",
                                 "2026-12-05T23:59:59", "2026-12-05T04:00:10",
                                 "2026-12-05T11:59:00"])
@pytest.mark.parametrize("hhmm", ["12:00", "11:55"])
def test_the_offset_makes_it_that_local_time_whenever_the_test_runs(utc, hhmm):
    now = dt.datetime.fromisoformat(utc).replace(tzinfo=UTC).timestamp()
    offset = offset_for_local(hhmm, now)
    assert -720 <= offset <= 840  # an offset that exists, and the config takes
    local = dt.datetime.fromtimestamp(now, dt.timezone(dt.timedelta(minutes=offset)))
    assert f"{local:%H:%M}" == hhmm


def test_at_the_offset_for_noon_all_day_hours_stay_open_for_hours():
    """The instant that broke the tests: 23:58:30 at UTC+8. At the offset for noon the
    centre's 00:00-23:59 hours are open now and for the next eleven hours."""
    now = dt.datetime(2026, 12, 5, 23, 58, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    offset = offset_for_local("12:00", now.timestamp())
    cal = DayCalendar(offset, frozenset(), frozenset(),
                      (("00:00", "23:59"),) * 7)
    span = cal.opening_at(now.timestamp())
    assert span is not None and span[0] <= now.timestamp() and \
        span[1] - now.timestamp() > 11 * 3600
