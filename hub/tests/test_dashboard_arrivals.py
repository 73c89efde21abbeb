"""The dashboard's arrivals chart (hub/web/arrivals_view.py): past days' tickets counted per
half-hour by SQL on a real SQLite database, the forecast for today from them (the model with
enough days, the same weekday's mean with a few, none without), and the chart's slots."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert

from onewindow.hub.store.schema import history_tickets, metadata
from onewindow.hub.web.arrivals_view import chart, forecast_today, past_counts, slot_of

CST = dt.timezone(dt.timedelta(hours=8))
OFFSET = 480


def _ts(d: dt.date, hh: int, mm: int) -> float:
    return dt.datetime(d.year, d.month, d.day, hh, mm, tzinfo=CST).timestamp()


def _history(tmp_path: Path, days: list[dt.date], per_day: dict[tuple[int, int], int]):
    engine = create_engine(f"sqlite:///{tmp_path / 'h.db'}")
    metadata.create_all(engine, tables=[history_tickets])
    rows = []
    for d in days:
        day = d.strftime("%Y%m%d")
        for (hh, mm), n in per_day.items():
            for i in range(n):
                rows.append({"id": f"{day}-A{hh:02d}{mm:02d}{i:02d}", "day": day, "item": "X",
                             "priority": "normal", "state": "done",
                             "issued_at": _ts(d, hh, mm) + i, "one_window": True,
                             "extra_items": "", "returned": ""})
    with engine.begin() as conn:
        conn.execute(insert(history_tickets), rows)
    return engine


def _weekdays(last: dt.date, n: int) -> list[dt.date]:
    out: list[dt.date] = []
    d = last
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d -= dt.timedelta(days=1)
    return sorted(out)


def test_counts_per_half_hour_in_local_time(tmp_path):
    d = dt.date(2026, 11, 10)
    # 08:59 local is slot 17, 09:00 and 09:29 slot 18, 16:45 slot 33
    engine = _history(tmp_path, [d], {(8, 59): 1, (9, 0): 3, (9, 29): 2, (16, 45): 4})
    got = past_counts(engine, "20261101", "20261130", OFFSET)
    assert got == {"20261110": {17: 1, 18: 5, 33: 4}}
    assert past_counts(engine, "20261111", "20261130", OFFSET) == {}


def test_the_model_forecasts_today_from_enough_days(tmp_path):
    # a Tuesday two weeks in mid-November 2026 (no Chinese holiday near), 15 weekdays before
    today = dt.date(2026, 11, 17)
    days = _weekdays(today - dt.timedelta(days=1), 15)
    engine = _history(tmp_path, days, {(9, 0): 10, (9, 30): 6, (14, 0): 4})
    past = past_counts(engine, "20260801", "20261116", OFFSET)
    forecast, method, basis = forecast_today(today, past)
    assert (method, basis) == ("model", 15)
    # the same 20 residents every day: the model says about 20, shaped like the days
    assert abs(sum(forecast.values()) - 20) < 1.0
    assert abs(forecast[18] - 10) < 0.6 and abs(forecast[28] - 4) < 0.4


def test_a_few_days_give_the_same_weekdays_mean_and_none_no_forecast(tmp_path):
    today = dt.date(2026, 11, 17)  # Tuesday
    mon, tue = dt.date(2026, 11, 9), dt.date(2026, 11, 10)
    engine = _history(tmp_path, [mon], {(9, 0): 9})
    _history_more = {tue: {18: 4, 19: 2}}
    past = past_counts(engine, "20261101", "20261116", OFFSET)
    past.update({d.strftime("%Y%m%d"): c for d, c in _history_more.items()})
    forecast, method, basis = forecast_today(today, past)
    assert (method, basis) == ("mean", 1)  # Tuesdays only: Monday's 9 left out
    assert forecast == {18: 4.0, 19: 2.0}
    assert forecast_today(today, {}) == ({}, "none", 0)


def test_the_chart_spans_opening_hours_and_every_ticket():
    actual = Counter({slot_of(_ts(dt.date(2026, 11, 17), 8, 40), OFFSET): 2})  # before 9:00
    c = chart(actual, {18: 3.0, 19: 1.5}, (18, 34), now_slot=19)
    assert c["slots"][0] == "08:30" and c["slots"][-1] == "16:30"
    assert c["actual"][0] == 2 and sum(c["actual"]) == 2
    assert c["forecast"][1:3] == [3.0, 1.5]
    assert c["now"] == 2
    assert (c["actual_total"], c["forecast_total"], c["forecast_so_far"]) == (2, 4.5, 4.5)
    empty = chart(Counter(), {}, (18, 34), now_slot=40)
    assert empty["forecast"][0] is None and empty["now"] is None
    assert empty["forecast_total"] is None


def test_the_view_reads_past_days_off_the_loop_and_pokes_the_floor_when_done(tmp_path):
    """The first ask answers at once ("pending") and starts the read in a thread; once it is
    done the floor is told (in the loop) and the next ask has the forecast."""
    from onewindow.hub.catalog import load_catalog
    from onewindow.hub.core import commands as c
    from onewindow.hub.core.centre import Centre
    from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
    from onewindow.hub.web.arrivals_view import ArrivalsView

    today = dt.date(2026, 11, 17)
    engine = _history(tmp_path, _weekdays(today - dt.timedelta(days=1), 3), {(9, 0): 4})
    centre = Centre(load_catalog(None), CentreConfig("t", (WindowSpec(1),)))
    now = _ts(today, 9, 10)

    async def go():
        poked = asyncio.Event()
        view = ArrivalsView(engine, OFFSET, changed=poked.set)
        first = view.view(centre, now)
        assert first["method"] == "pending" and first["forecast_total"] is None
        await asyncio.wait_for(poked.wait(), 10)
        second = view.view(centre, now)
        # no Tuesday among them (Thu, Fri, Mon): the mean of all three
        assert (second["method"], second["basis_days"]) == ("mean", 3)
        assert second["forecast_total"] == 4.0 and second["now"] is not None
        assert second["slots"][second["now"]] == "09:00"
        # today's counts follow each ticket taken (kept between builds until one is)
        assert second["actual_total"] == 0
        centre.apply(c.TakeTicket("SOC-001"), now)
        centre.apply(c.TakeTicket("SOC-001"), now + 1900)  # the next half-hour
        third = view.view(centre, now + 1900)
        assert third["actual_total"] == 2
        assert third["actual"][third["slots"].index("09:00")] == 1
        assert third["actual"][third["slots"].index("09:30")] == 1

    asyncio.run(go())


def test_the_dashboard_forecasts_by_the_calendar_of_forecast_holidays(tmp_path):
    """centre.toml's [forecast] holidays reaches the dashboard (it forecast by mainland China's
    calendar whatever the centre said): a US centre's past days were three times as busy on
    the working day before each US public holiday; the day before Thanksgiving 2026 is
    forecast three times as busy by "US", as an ordinary day by the default "CN". Through
    the app as the hub builds it (create_app with the configuration read by from_dict), on
    the journal's SQLite database, read by a supervisor's GET /dashboard/state."""
    from argon2 import PasswordHasher
    from starlette.testclient import TestClient

    from onewindow.hub.app import HubApp
    from onewindow.hub.catalog import load_catalog
    from onewindow.hub.config import ConfigError, from_dict
    from onewindow.hub.core.centre import Centre
    from onewindow.hub.devices import Registry
    from onewindow.hub.store.accounts import Accounts
    from onewindow.hub.store.files import FileStore
    from onewindow.hub.store.journal import Journal
    from onewindow.hub.web.app import create_app
    from onewindow.hub.web.port import MemoryPort
    from onewindow.hub.web.site import Site

    from .test_staff_http import login

    today = dt.date(2026, 11, 25)  # Wednesday, before Thanksgiving (a working day in China)
    us_holidays = {dt.date(2026, 9, 7), dt.date(2026, 10, 12), dt.date(2026, 11, 11)}
    before = {dt.date(2026, 9, 4), dt.date(2026, 10, 9), dt.date(2026, 11, 10)}
    days = [d for d in _weekdays(today - dt.timedelta(days=1), 63) if d not in us_holidays]
    journal = Journal(f"sqlite:///{tmp_path / 'hub.db'}")
    rows = []
    for d in days:
        k = 3 if d in before else 1
        for (hh, mm), n in {(9, 0): 10 * k, (9, 30): 6 * k, (14, 0): 4 * k}.items():
            rows += [{"id": f"{d:%Y%m%d}-A{hh:02d}{mm:02d}{i:02d}", "day": f"{d:%Y%m%d}",
                      "item": "X", "priority": "normal", "state": "done",
                      "issued_at": _ts(d, hh, mm) + i, "one_window": True, "extra_items": "",
                      "returned": ""} for i in range(n)]
    with journal.engine.begin() as conn:
        conn.execute(insert(history_tickets), rows)
    now = _ts(today, 10, 0)

    class Port(MemoryPort):
        pass

    Port.journal = journal

    def forecast_total(forecast: dict[str, str] | None) -> float:
        toml: dict = {"centre": {"id": "t"}, "windows": [{"number": 1}]}
        if forecast is not None:
            toml["forecast"] = forecast
        config = from_dict(toml)
        hub = HubApp(Centre(load_catalog(None), config.centre), Registry([]), "b")
        site = Site(hub, Port(hub, lambda: now), lambda: now)
        site.accounts = Accounts(f"sqlite:///{tmp_path / (str(forecast) + '.db')}",
                                 PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        site.accounts.add("sup", "password-1", "supervisor", now=now)
        app = create_app(hub, FileStore(tmp_path / "files"), site=site, clock=lambda: now,
                         config=config)
        with TestClient(app) as cl:
            cl.get("/login")
            cl.headers["x-csrf-token"] = cl.cookies["ow_csrf"]
            assert login(cl, "sup", "password-1").status_code == 303
            deadline = time.monotonic() + 30  # the fit runs in a worker thread: until done
            while True:
                arrivals = cl.get("/dashboard/state").json()["arrivals"]
                if arrivals["method"] != "pending" or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
        assert arrivals["method"] == "model", arrivals
        return float(arrivals["forecast_total"])

    assert abs(forecast_total({"holidays": "US"}) - 60) < 3
    assert abs(forecast_total(None) - 20) < 3
    # an unknown calendar is the configuration's error, not a quiet fallback
    with pytest.raises(ConfigError, match="XX"):
        from_dict({"centre": {"id": "t"}, "windows": [{"number": 1}],
                   "forecast": {"holidays": "XX"}})
