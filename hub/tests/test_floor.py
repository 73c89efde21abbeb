"""The supervisor's numbers (hub/web/floor.py, pure), closing a window reroutes its own
queue (core), and help requests with their answers survive a replay of the journal."""

import datetime as dt

from onewindow.hub.app import HubApp
from onewindow.hub.core import commands as c
from onewindow.hub.core.help_requests import Help, HelpAnswer
from onewindow.hub.core.model import HelpRequest, Rating
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.devices import Registry
from onewindow.hub.web import floor

from .catalogs import centre

# a Tuesday, 09:00 in China
T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()
MIN = 60.0


def test_percentile_nearest_rank():
    assert floor.percentile([], 90) is None
    assert floor.percentile([5.0], 90) == 5.0
    assert floor.percentile([float(i) for i in range(1, 11)], 90) == 9.0
    assert floor.percentile([float(i) for i in range(1, 11)], 100) == 10.0


def test_day_summary():
    core = centre(now=T0)
    for _ in range(5):
        core.apply(c.TakeTicket("SOC-1"), T0)
    a, b, d, *_ = sorted(core.tickets.values(), key=lambda t: t.serial)
    # A001: called at 1 after 10 min, served there
    core.apply(c.CallNext(1), T0 + 10 * MIN)
    core.apply(c.Complete(1), T0 + 15 * MIN)
    # A002: called at 2 after 20 min, transferred to window 1, served there
    core.apply(c.CallNext(2), T0 + 20 * MIN)
    core.apply(c.Transfer(2, to_window=1, note="needs 1"), T0 + 21 * MIN)
    core.apply(c.CallNext(1), T0 + 22 * MIN)
    core.apply(c.Complete(1), T0 + 30 * MIN)
    # A003: called after 30 min, never came (skipped twice: no-show)
    core.apply(c.CallNext(2), T0 + 30 * MIN)
    core.apply(c.Skip(2, requeue=False), T0 + 33 * MIN)
    core.ratings = {r.ticket: r for r in (
        Rating(a.id, 1, 1, None, T0), Rating(b.id, 3, 1, None, T0),
        Rating("20201231-A001", 3, 1, None, T0))}  # another day: not counted
    core.help_requests = {1: HelpRequest(1, 1, None, T0 + 5 * MIN, T0 + 7 * MIN, "li"),
                          2: HelpRequest(2, 2, None, T0 + 40 * MIN)}
    s = floor.summary(core)
    assert s["tickets"] == 5 and s["served"] == 2 and s["no_shows"] == 1 and s["waiting"] == 2
    assert s["avg_wait_min"] == 20.0  # 10, 20, 30
    assert s["p90_wait_min"] == 30.0
    assert s["one_window_rate"] == 0.5  # A001 yes, A002 transferred
    assert s["satisfaction_rate"] == 0.5 and s["ratings"] == 2
    assert (s["help_requests"], s["help_answered"], s["help_avg_answer_s"]) == (2, 1, 120.0)
    assert floor.one_window(a) and not floor.one_window(b) and not floor.one_window(d)


def test_empty_day_has_no_rates():
    s = floor.summary(centre(now=T0))
    assert s["tickets"] == 0 and s["avg_wait_min"] is None and s["one_window_rate"] is None
    assert s["satisfaction_rate"] is None


def test_alerts_for_long_queues_long_waits_unreachable_and_help():
    core = centre(windows=((1, "comprehensive"), (2, "card")), now=T0)
    for i in range(4):
        core.apply(c.TakeTicket("SOC-1"), T0 + i)
    core.apply(c.TakeTicket("MED-1"), T0)
    core.apply(c.CloseWindow(2), T0)
    now = T0 + 25 * MIN
    qs = floor.queues(core, now)
    by = {q["item"]: q for q in qs}
    assert by["SOC-1"]["waiting"] == 4 and by["SOC-1"]["longest_min"] == 25.0
    assert by["SOC-1"]["estimate_min"] > 0
    # no estimate shorter than a wait already observed: the first in line waited 25 min
    assert by["SOC-1"]["estimate_min"] >= by["SOC-1"]["longest_min"]
    assert by["MED-1"]["estimate_min"] >= by["MED-1"]["longest_min"]
    core.apply(Help(1, request=1), now - 60 * MIN)
    core.apply(HelpAnswer(1, "li"), now - 59 * MIN)
    core.apply(Help(1, request=2), now - 6 * MIN)
    al = floor.alerts(core, qs, now, floor.Targets(queue_limit=3, target_min=20))
    kinds = sorted((a["kind"], a.get("item", a.get("window"))) for a in al)
    assert kinds == [("help", 1), ("queue", "SOC-1"), ("wait", "MED-1"), ("wait", "SOC-1")]
    # under the targets: quiet
    quiet = floor.alerts(core, floor.queues(core, T0 + 60), T0 + 60,
                         floor.Targets(queue_limit=5, target_min=20))
    assert quiet == []
    assert floor.lines(qs, core) == [
        {"line": "soc", "zh": "社保", "en": "Social", "prefix": "A", "waiting": 4,
         "longest_min": 25.0, "estimate_min": by["SOC-1"]["estimate_min"]},
        {"line": "med", "zh": "医保", "en": "Medical", "prefix": "B", "waiting": 1,
         "longest_min": 25.0, "estimate_min": by["MED-1"]["estimate_min"]}]


def test_an_estimate_is_never_shorter_than_the_longest_wait_now():
    """Two residents of one item waited 40 min while the only window was paused; it
    resumes: the model's estimate counts on its speed, the floor on what was seen."""
    core = centre(windows=((1, "comprehensive"),), now=T0)
    core.apply(c.TakeTicket("SOC-1"), T0)
    core.apply(c.TakeTicket("SOC-1"), T0 + 60)
    q = floor.queues(core, T0 + 40 * MIN)[0]
    assert q["longest_min"] == 40.0
    assert q["estimate_min"] == 40.0 and q["estimate_floored"]
    q = floor.queues(core, T0 + 2 * MIN)[0]
    assert q["estimate_min"] >= q["longest_min"] == 2.0


def test_unreachable_alert():
    core = centre(now=T0)
    core.apply(c.TakeTicket("SOC-1"), T0)
    core.apply(c.CloseWindow(1), T0)
    core.apply(c.CloseWindow(2), T0)
    al = floor.alerts(core, floor.queues(core, T0 + 1), T0 + 1)
    assert [a["kind"] for a in al] == ["unreachable"]


def test_closing_a_window_reroutes_its_own_queue():
    core = centre(windows=((1, "comprehensive"), (2, "comprehensive"), (3, "comprehensive")),
                  now=T0)
    core.apply(c.TakeTicket("SOC-1"), T0)
    core.apply(c.TakeTicket("SOC-1"), T0 + 1)
    core.apply(c.CallNext(1), T0 + 2)
    t = core.tickets[core.windows[1].ticket]
    core.apply(c.Transfer(1, to_window=2, note="for 2"), T0 + 3)
    assert t.target_window == 2
    core.apply(c.CloseWindow(2), T0 + 4)
    assert t.target_window is None and t in core.queue and not core.unreachable()
    assert (T0 + 4, "rerouted", 2) in t.history
    core.apply(c.CallNext(3), T0 + 5)
    assert core.windows[3].ticket == t.id  # it kept its place: first in line


def test_help_requests_and_answers_replay(tmp_path):
    from onewindow.hub.catalog import load_catalog
    from onewindow.hub.core.centre import Centre
    from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
    from onewindow.hub.store.journal import Journal

    def fresh():
        core = Centre(load_catalog(None), CentreConfig("t", (WindowSpec(1), WindowSpec(2))))
        return HubApp(core, Registry([]), "b")

    journal = Journal(f"sqlite:///{tmp_path}/j.db")
    app = fresh()
    for cmd, now in ((c.OpenWindow(1, "wang"), T0), (Help(1, "wang"), T0 + 10),
                     (Help(2, None), T0 + 20)):
        journal.append(app.operate(cmd, now).records)
    asked = next(iter(app.centre.help_requests))
    step = app.operate(HelpAnswer(asked, "li"), T0 + 70)
    journal.append(step.records)
    before = app.pos
    for bad in (HelpAnswer(asked, "zhou"), HelpAnswer(999, "li"), Help(9, "x")):
        try:
            app.operate(bad, T0 + 80)
            raise AssertionError(f"{bad} accepted")
        except Rejected:
            pass
    assert app.pos == before
    again = fresh()
    again.replay(journal.read())
    assert again.centre.help_requests == app.centre.help_requests
    first, second = again.centre.help_requests.values()
    assert (first.window, first.clerk, first.by) == (1, "wang", "li")
    assert first.answered_at - first.at == 60
    assert second.answered_at is None
    journal.close()


def test_items_served_per_window_follow_the_tickets_and_the_day():
    """A completed ticket counts its items (the first and those added) at the window that
    completed it; one transferred counts where it ended; a new day starts from nothing."""
    core = centre(windows=((1, "comprehensive"), (2, "comprehensive")), now=T0)
    core.apply(c.TakeTicket("SOC-1", extra_items=("SOC-2",)), T0)
    core.apply(c.TakeTicket("SOC-1"), T0 + 1)
    core.apply(c.TakeTicket("SOC-1"), T0 + 2)
    facts = floor.TicketFacts()
    floor.summary(core, facts)
    assert facts.served() == {}
    core.apply(c.CallNext(1), T0 + 5 * MIN)
    core.apply(c.Complete(1), T0 + 10 * MIN)  # two items at window 1
    core.apply(c.CallNext(2), T0 + 11 * MIN)
    core.apply(c.Transfer(2, to_window=1, note="to 1"), T0 + 12 * MIN)
    core.apply(c.CallNext(1), T0 + 13 * MIN)
    core.apply(c.Complete(1), T0 + 20 * MIN)  # transferred: served at 1
    core.apply(c.CallNext(2), T0 + 21 * MIN)  # called, not served yet
    floor.summary(core, facts)
    assert facts.served() == {1: 3}
    core.apply(c.Complete(2), T0 + 25 * MIN)
    floor.summary(core, facts)
    assert facts.served() == {1: 3, 2: 1}
    rows = {w["number"]: w["served"] for w in floor.windows(core, T0 + 26 * MIN,
                                                              served=facts.served())}
    assert rows == {1: 3, 2: 1}
    # the next day: nothing served yet
    core.apply(c.TakeTicket("SOC-1"), T0 + 24 * 3600)
    floor.summary(core, facts)
    assert facts.served() == {}
