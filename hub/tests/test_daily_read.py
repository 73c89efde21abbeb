"""DailyRead (hub/web/daily.py): a day's value read once in a worker thread, the old value
answered meanwhile, a failed read tried again only after a while."""

from __future__ import annotations

import datetime as dt
import threading

from onewindow.hub.web import daily
from onewindow.hub.web.daily import DailyRead

MON, TUE = dt.date(2026, 11, 23), dt.date(2026, 11, 24)


def test_read_once_a_day_in_a_thread_the_old_value_meanwhile():
    gate, calls = threading.Event(), []

    def read(day):
        calls.append((day, threading.current_thread().name))
        gate.wait(5)
        return day.isoformat()

    r = DailyRead(read, "test")
    assert r.get(MON) is None  # started, not finished
    gate.set()
    r.settle()
    assert r.get(MON) == "2026-11-23" and r.generation == 1
    gate.clear()
    assert r.get(TUE) == "2026-11-23"  # the old value while Tuesday's is read
    assert r.get(TUE) == "2026-11-23" and len(calls) == 2  # one read, not one per ask
    gate.set()
    r.settle()
    assert r.get(TUE) == "2026-11-24" and len(calls) == 2
    assert {name for _, name in calls} == {"ow-daily-test"}  # never the caller's thread


def test_a_failed_read_is_tried_again_after_a_while(monkeypatch, caplog):
    clock = [100.0]
    monkeypatch.setattr(daily.time, "monotonic", lambda: clock[0])
    results = [OSError("database is locked"), "ok"]

    def read(day):
        out = results.pop(0)
        if isinstance(out, Exception):
            raise out
        return out

    r = DailyRead(read, "test")
    r.get(MON)
    r.settle()
    assert "test not read from the past days' tables: database is locked" in caplog.text
    assert r.get(MON) is None and results == ["ok"]  # not again at once
    clock[0] += daily.RETRY_S
    r.get(MON)
    r.settle()
    assert r.get(MON) == "ok"
