"""The simulator (stage 5): the real core driven by SimPy, known arrival effects, policies,
synthetic history in the journal, count CSVs."""

import datetime as dt
import random

import pytest

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.model import TicketState, WindowState
from onewindow.hub.devices import Registry
from onewindow.hub.sim.engine import DayOptions, Engine
from onewindow.hub.sim.history import read_counts, write_csv, write_history
from onewindow.hub.sim.metrics import Waits, mean_metrics, percentile, tally
from onewindow.hub.sim.model import ArrivalModel, Weather, at_local, day_info
from onewindow.hub.sim.policies import layout
from onewindow.hub.store.journal import Journal

MONDAY = dt.date(2026, 11, 23)
WEDNESDAY = dt.date(2026, 11, 25)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_a_day_drives_the_real_core_to_final_states(catalog):
    eng = Engine(catalog, layout("mixed", catalog, 6))
    r = eng.run_day(WEDNESDAY, Weather(), seed=3, scale=0.4)
    assert len(r.visits) > 100
    assert r.operations >= 4 * len(r.tickets)
    finals = {TicketState.DONE, TicketState.NO_SHOW}
    assert all(t.state in finals for t in r.tickets.values())
    assert len(eng.centre.queue) == 0
    assert all(w.state is WindowState.CLOSED and w.ticket is None
               for w in eng.centre.windows.values())
    for t in r.tickets.values():  # the history is a valid life: waiting ... called ... final
        states = [h[1] for h in t.history]
        assert states[0] == "waiting" and states[-1] in ("done", "no_show")
        assert [h[0] for h in t.history] == sorted(h[0] for h in t.history)
    assert {v.outcome for v in r.visits} <= {"done", "incomplete", "no_show"}
    m = r.metrics()
    assert 0 < m.mean_wait <= m.max_wait and 0.9 < m.one_window <= 1.0 and 0.8 < m.one_trip < 1


def test_a_live_tally_of_the_centre_agrees_with_the_engines_account_of_the_day(catalog):
    # The demo's screen counts the centre's tickets; `onewindow sim` counts the engine's
    # visits: at the end of a whole day both must tell the same story.
    eng = Engine(catalog, layout("mixed", catalog, 5))
    r = eng.run_day(WEDNESDAY, Weather(), seed=5, scale=0.3)
    m = r.metrics()
    live = tally(eng.centre, r.closed)
    assert live.issued == len(r.tickets) > 50
    assert (live.served, live.no_show) == (m.served, m.no_show)
    assert live.waiting == live.open_windows == 0 and live.longest_waiting == 0.0
    assert len(live.waits) == live.served + sum(1 for t in r.tickets.values()
                                                if t.state is TicketState.NO_SHOW)
    assert (live.waits.mean, live.waits.percentile(90), live.waits.longest) == \
        (m.mean_wait, m.p90_wait, m.max_wait)


def test_percentiles_are_nearest_rank_values_that_occurred():
    xs = [float(x) for x in range(10, 0, -1)]
    assert [percentile(xs, p) for p in (1, 10, 50, 90, 91, 100)] == [1, 1, 5, 9, 10, 10]
    assert percentile([], 90) == 0.0
    assert Waits([]).mean == Waits([]).longest == Waits([]).percentile(90) == 0.0
    assert Waits([3.0, 1.0, 2.0]).mean == 2.0


def test_same_seed_same_day_and_common_random_numbers(catalog):
    runs = [Engine(catalog, layout("comprehensive", catalog, 5)).run_day(
        WEDNESDAY, seed=7, scale=0.3) for _ in range(2)]
    assert runs[0].metrics() == runs[1].metrics()
    assert [t.to_dict() for t in runs[0].tickets.values()] == \
        [t.to_dict() for t in runs[1].tickets.values()]
    other = Engine(catalog, layout("dedicated", catalog, 5))
    a = [(v.at, v.item, v.z) for v in runs[0].visits]
    assert a == [(v.at, v.item, v.z) for v in other.visits_for(WEDNESDAY, Weather(), 7, 0.3)]


def test_arrival_effects_are_what_the_parameters_say():
    model = ArrivalModel(base_daily=400)
    rng = random.Random(1)

    def mean_count(d, w, n=300):
        info = day_info(d)
        return sum(len(model.arrival_times(info, w, rng)) for _ in range(n)) / n

    wed = mean_count(WEDNESDAY, Weather())
    assert wed == pytest.approx(400, rel=0.02)
    assert mean_count(MONDAY, Weather()) / wed == pytest.approx(1.25, rel=0.03)
    assert mean_count(WEDNESDAY, Weather(rain=True)) / wed == pytest.approx(0.8, rel=0.03)
    assert mean_count(WEDNESDAY, Weather(temp_c=35)) / wed == pytest.approx(0.9, rel=0.03)
    # China's calendar: National Day closed, the 调休 Saturday open, the day after busy.
    assert mean_count(dt.date(2026, 10, 1), Weather(), 5) == 0
    sat = day_info(dt.date(2026, 10, 10))
    assert sat.open and sat.adjusted_workday
    thu = day_info(dt.date(2026, 10, 8))
    assert thu.post_holiday
    assert mean_count(dt.date(2026, 10, 8), Weather()) / wed == pytest.approx(0.95 * 1.3,
                                                                             rel=0.03)
    # the half-hour shape
    slots = model.expected(day_info(WEDNESDAY), Weather())
    assert slots.index(max(slots)) == 3 and sum(slots) == pytest.approx(400)


def test_comprehensive_windows_beat_dedicated_ones(catalog):
    probe = Engine(catalog, layout("comprehensive", catalog, 8))
    days = [probe.visits_for(WEDNESDAY, Weather(), s, 0.7) for s in range(2)]
    result = {}
    for name in ("dedicated", "comprehensive", "mixed"):
        lay = layout(name, catalog, 8)
        result[name] = mean_metrics([
            Engine(catalog, lay, clerk_seed=s).run_day(
                WEDNESDAY, seed=s, visits=[v.fresh() for v in vs]).metrics()
            for s, vs in enumerate(days)])
    assert result["comprehensive"].mean_wait < result["dedicated"].mean_wait
    assert result["mixed"].mean_wait < result["dedicated"].mean_wait
    assert result["comprehensive"].one_window > result["dedicated"].one_window
    assert result["comprehensive"].visits == result["dedicated"].visits


def test_reopening_drill_clears_the_backlog(catalog):
    eng = Engine(catalog, layout("comprehensive", catalog, 7))
    r = eng.run_day(WEDNESDAY, seed=2, scale=0.5,
                    options=DayOptions(reopen_at=dt.time(10, 0)))
    backlog = max(w for ts, w, _ in r.monitor.series if ts <= r.opened + 60)
    assert backlog > 30
    cleared = r.monitor.cleared_at(r.opened + 120)
    assert cleared is not None and cleared < r.closed
    assert all(t.state in (TicketState.DONE, TicketState.NO_SHOW) for t in r.tickets.values())


def test_history_journal_replays_and_counts_round_trip(catalog, tmp_path):
    url = f"sqlite:///{tmp_path / 'hist.db'}"
    small = ArrivalModel(base_daily=60)
    h = write_history(catalog, url, dt.date(2026, 9, 28), dt.date(2026, 10, 12),
                      layout="mixed", windows=4, seed=5, arrivals=small)
    assert [d.info.open for d in h.days].count(True) == 6  # 9/28-30, 10/8-9, 调休 Sat 10/10
    journal = Journal(url)
    records = list(journal.read())
    assert len(records) == h.records
    assert {r.op for r in records} >= {"take", "call", "start", "complete", "open", "close",
                                       "pause", "resume", "rate"}
    assert all(r.dev for r in records if r.op not in ("rate", "case") or r.dev)
    app = HubApp(Centre(catalog, h.config), Registry([]), "test")
    assert app.replay(journal.read()) == len(records)
    journal.close()
    assert app.centre.to_dict() == h.centre.to_dict()
    assert len(app.centre.ratings) > 0 and app.centre.cases
    takes = sum(1 for r in records if r.op == "take")
    assert takes == sum(d.count for d in h.days)

    daily, slots = tmp_path / "daily.csv", tmp_path / "slots.csv"
    write_csv(h.days, daily, slots)
    rows = read_counts(daily)
    assert [r["date"] for r in rows] == [d.info.date.isoformat() for d in h.days]
    assert [r["count"] for r in rows] == [d.count for d in h.days]
    assert rows[3]["holiday"] == "National Day" and rows[3]["open"] == 0
    srows = read_counts(slots)
    assert len(srows) == 6 * 16 and srows[0]["slot"] == "08:30"
    by_day: dict[str, int] = {}
    for r in srows:
        by_day[r["date"]] = by_day.get(r["date"], 0) + r["count"]
    assert by_day == {r["date"]: r["count"] for r in rows if r["open"]}
    assert {r["rain"] for r in rows} <= {0, 1}


def test_an_engine_acting_on_a_centre_it_shares_serves_tickets_others_took(catalog):
    """The demo's shape: the Centre is someone else's (a live hub's), commands go through
    `act`, and a person may take a ticket the engine knows nothing about."""
    lay = layout("comprehensive", catalog, 2)
    centre = Centre(catalog, lay.config)
    acted: list[str] = []

    def act(cmd, now, dev):
        effects = [] if cmd.op == "rate" else centre.apply(cmd, now)
        acted.append(cmd.op)  # what was done: a refused call raised above
        return effects

    eng = Engine(catalog, lay, centre=centre, act=act)
    day = eng.start_day(WEDNESDAY, seed=4, scale=0.1,
                        options=DayOptions(start_at=dt.time(8, 50)))
    assert day.env.now == at_local(WEDNESDAY, dt.time(8, 50))
    stranger: list[str] = []

    def person():  # takes a ticket at the kiosk page at 10:00, behind the engine's back
        yield day.env.timeout(at_local(WEDNESDAY, dt.time(10, 0)) - day.env.now)
        e = centre.apply(c.TakeTicket("SOC-002", source="kiosk-1"), day.env.now)
        stranger.append(e[0].ticket)

    day.env.process(person())
    day.env.run()
    r = day.result()
    assert centre.tickets[stranger[0]].state is TicketState.DONE
    assert r.tickets[stranger[0]] is centre.tickets[stranger[0]]
    assert sum(1 for v in r.visits if v.ticket == stranger[0]) == 1
    assert acted.count("take") == sum(1 for v in r.visits if v.ticket) - 1
    assert "rate" in acted and eng.operations == len(acted) - acted.count("rate")
    with pytest.raises(ValueError):  # a Centre of other windows cannot be driven
        Engine(catalog, layout("comprehensive", catalog, 3), centre=centre)
