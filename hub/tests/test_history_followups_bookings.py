"""Follow-ups (差评整改) and bookings (预约) in the past days' tables (hub/store/history.py):
the staff report read from the tables equals the replay's on days with follow-ups opened
and closed across days and bookings checked in, late and never come; and the supervisors'
day summary (hub/web/floor.py) counts 满意率 on the five levels."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from onewindow.hub.core import commands as c
from onewindow.hub.web import floor

from .catalogs import centre as core_centre
from .test_backup import pg_server  # noqa: F401 - a fixture (db_url's PostgreSQL)
from .test_history import db_url  # noqa: F401 - a fixture: SQLite, PostgreSQL
from .test_hub_mqtt import CENTRE

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


def test_report_from_the_tables_equals_the_replay_with_follow_ups_and_bookings(
        tmp_path, small_catalog_file, db_url):  # noqa: F811 - the fixture
    """Last month, on SQLite and PostgreSQL: follow-ups opened before it and closed in it,
    opened and closed on one day, opened on one day and closed two working days later,
    opened in it and closed only after it (open at its end); bookings made before it for
    its first working day, checked in, late, cancelled, and no-shows: one swept during its
    day, one swept by the next day's first record, and one on the month's last working
    day swept only by the record after the month. The tables hold each as the journal
    says, the report read from them equals the replay's, and a full replay (start-up
    without a snapshot, or `rebuild-history` over days written before migration 0003)
    writes the very same rows."""
    from onewindow.hub import config as hub_config
    from onewindow.hub.report.cli import build, load_source
    from onewindow.hub.runner import build_app
    from onewindow.hub.store import history as h
    from onewindow.hub.store.journal import Journal
    from onewindow.tools.testkit.testbed import default_devices, write_config

    from .test_retention import Driver

    devices = [*default_devices(2), {"id": "node-1", "role": "node", "window": 1},
               {"id": "node-2", "role": "node", "window": 2}]
    cfg = hub_config.load(write_config(
        tmp_path / "centre.toml", CENTRE, 1, tmp_path / "hub.db", windows=2, devices=devices,
        catalog=small_catalog_file, database_url=db_url))
    j = Journal(cfg.database_url)
    app = build_app(cfg, j)
    d = Driver(app, j)
    core = app.centre
    line = core.catalog.items["SOC-1"].line
    tz = dt.timezone(dt.timedelta(minutes=480))
    today = dt.datetime.now(tz).date()
    first = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)  # last month
    month = first.strftime("%Y-%m")
    after = (first + dt.timedelta(days=32)).replace(day=1)

    def workdays(start: dt.date, stop: dt.date, step: int = 1) -> list[dt.date]:
        out, x = [], start
        while (x < stop) if step > 0 else (x > stop):
            if core.is_workday(x):
                out.append(x)
            x += dt.timedelta(days=step)
        return out

    w = workdays(first, after)
    w0, w1, w2, w3, last = w[0], w[1], w[2], w[3], w[-1]
    before = workdays(first - dt.timedelta(days=1), first - dt.timedelta(days=15), -1)[0]

    def at(day: dt.date, hour: float) -> float:
        return dt.datetime.combine(day, dt.time(), tz).timestamp() + hour * 3600

    def served(t0: float, rate: int | None = None, kp: str = "kp-1") -> str:
        """A walk-in served at window 1 (kp-1) or 2 (kp-2); rated 3 (bad: 1 非常不满意,
        a follow-up) or 1 (good) if `rate`; its id."""
        number = d.send("node-1", "take", t0, item="SOC-1")["ticket"]
        return serve(number, t0, rate, kp)

    def serve(number: str, t0: float, rate: int | None = None, kp: str = "kp-1") -> str:
        d.send(kp, "call", t0 + 60)
        d.send(kp, "start", t0 + 90)
        d.send(kp, "complete", t0 + 300)
        tid = f"{core.local_date(t0):%Y%m%d}-{number}"
        if rate is not None:
            d.send("node-1" if kp == "kp-1" else "node-2", "rate", t0 + 400,
                   window=int(kp[-1]), ticket=tid, score=rate)
        return tid

    def book(made: float, day: dt.date, hhmm: str, resident: str) -> str:
        d.operate(c.Book("SOC-1", f"{CENTRE}/{line}/{day:%Y%m%d}/{hhmm}", resident), made)
        return f"B{core.booking_serial:04d}"

    def close(tid: str, when: float) -> None:
        d.operate(c.CloseFollowup(tid, "sup", f"已回访 {tid} / called back"), when)

    d.send("kp-1", "open", at(before, 8), clerk="wang")
    d.send("kp-2", "open", at(before, 8), clerk="li")
    f_before = served(at(before, 10), rate=3)  # opened before the month
    b_first = book(at(before, 11), w0, "0900", "r1")  # made before the month, for w0
    # w0: r1 checks in (appointment); r2 never comes and is swept at 10:00 the same day
    book(at(w0, 8), w0, "0930", "r2")
    number = checkin(d, core, b_first, at(w0, 9.05))
    serve(number, at(w0, 9.05))
    f_same = served(at(w0, 10), rate=3)
    f_later = served(at(w0, 10.5), rate=3, kp="kp-2")  # li's, closed on w2
    served(at(w0, 11), rate=1)  # a good rating: no follow-up
    close(f_same, at(w0, 15))
    # w1: the follow-up from before the month closed; r4 late (a normal ticket), r5
    # cancels, r3 books the last slot and never comes: no record after 16:45 on w1
    close(f_before, at(w1, 8.5))
    b_late = book(at(w1, 8), w1, "0900", "r4")
    b_cancel = book(at(w1, 8.1), w1, "1000", "r5")
    book(at(w1, 8.2), w1, "1630", "r3")
    d.operate(c.CancelBooking(b_cancel, "r5"), at(w1, 9))
    serve(checkin(d, core, b_late, at(w1, 9.4)), at(w1, 9.4))
    served(at(w1, 11))
    # w2: li's follow-up closed; w3: one opened and closed only after the month
    close(f_later, at(w2, 9))
    f_open = served(at(w3, 10), rate=3)
    # the month's last working day: a booking of its last slot nobody keeps
    book(at(last, 8), last, "1630", "r6")
    served(at(last, 9))
    # after the month: its last day closes, the follow-up from w3 is closed
    now = dt.datetime.combine(after, dt.time(9), tz).timestamp()
    served(max(now, at(after, 9)))
    close(f_open, max(now, at(after, 9)) + 600)

    hist = h.History(j.engine)
    rows = hist.report_rows(f"{before:%Y%m%d}", f"{after:%Y%m%d}")
    booked = {r.day: tuple(r)[1:] for r in rows["bookings"]}  # booked .. no_show
    assert booked[f"{w0:%Y%m%d}"] == (2, 0, 1, 0, 1)
    assert booked[f"{w1:%Y%m%d}"] == (3, 1, 0, 1, 1)  # the 16:30 no-show counted at w2
    assert booked[f"{last:%Y%m%d}"] == (1, 0, 0, 0, 1)  # swept after the month
    events = sorted((r.ticket, r.action, r.clerk) for r in rows["followups"])
    assert events == sorted([
        (f_before, "opened", "wang"), (f_before, "closed", "wang"),
        (f_same, "opened", "wang"), (f_same, "closed", "wang"),
        (f_later, "opened", "li"), (f_later, "closed", "li"),
        (f_open, "opened", "wang")])  # its closing day (today's) is not history yet
    with j.engine.connect() as conn:
        note = conn.execute(select(h.followups.c.by, h.followups.c.note).where(
            h.followups.c.ticket == f_later, h.followups.c.action == "closed")).one()
    assert tuple(note) == ("sup", f"已回访 {f_later} / called back")

    src = load_source(tmp_path / "centre.toml", None, None)
    sql, replayed = build(src, month), build(src, month, replay=True)
    for name in ("followups_opened", "followups_closed"):
        assert sorted(getattr(sql.facts, name)) == sorted(getattr(replayed.facts, name))
    assert sorted(sql.facts.followups_opened) == sorted(
        [(f_same, "wang"), (f_later, "li"), (f_open, "wang")])
    assert sorted(sql.facts.followups_closed) == sorted(
        [(f_before, "wang"), (f_same, "wang"), (f_later, "li")])
    assert sql.facts.followups_open == replayed.facts.followups_open == 1  # f_open
    assert sql.facts.bookings == replayed.facts.bookings
    assert sql.facts.bookings is not None and f"{before:%Y-%m-%d}" not in sql.facts.bookings
    assert sql.centre == replayed.centre and sql.clerks == replayed.clerks
    assert {k: sql.centre[f"bookings_{k}"] for k in ("booked", "cancelled", "checked_in",
                                                     "late", "no_show")} == {
        "booked": 6, "cancelled": 1, "checked_in": 1, "late": 1, "no_show": 3}
    assert (sql.centre["followups_opened"], sql.centre["followups_closed"]) == (3, 3)

    # A full replay writes the same rows; one over days written before migration 0003
    # (their new tables empty) fills them.
    written = _new_rows(j)
    build_app(cfg, j)
    assert _new_rows(j) == written
    with j.engine.begin() as conn:
        conn.execute(h.followups.delete())
        conn.execute(h.bookings.delete())
    build_app(cfg, j)
    assert _new_rows(j) == written
    j.close()


def checkin(d, core, code: str, when: float) -> str:
    """A booking checked in at a kiosk; the number of the ticket it issued."""
    d.operate(c.CheckIn(booking=code, source="kiosk-1"), when)
    tid = core.bookings[code].ticket
    return core.tickets[tid].number


def _new_rows(j) -> dict[str, list]:
    from onewindow.hub.store import history as h

    with j.engine.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(select(t)))
                for t in (h.followups, h.bookings)}


def test_a_no_show_swept_after_midnight_reaches_its_days_row(tmp_path, small_catalog_file):
    """A check-in window past midnight (hours to 23:59, 5-minute slots: the 23:50 slot's
    window ends at 00:05): the day closes at 00:02 before its booking is swept, the sweep at
    00:20 counts the no-show on that day, and the next day's close writes the day's row
    again with it."""
    from onewindow.hub import config as hub_config
    from onewindow.hub.runner import build_app
    from onewindow.hub.store import history as h
    from onewindow.hub.store.journal import Journal
    from onewindow.tools.testkit.testbed import write_config

    from .test_retention import Driver

    extra = '\n[hours]\nweekdays = "00:00-23:59"\n\n[booking]\nslot_minutes = 5\n'
    cfg = hub_config.load(write_config(tmp_path / "centre.toml", CENTRE, 1,
                                       tmp_path / "hub.db", windows=2, extra=extra,
                                       catalog=small_catalog_file))
    j = Journal(cfg.database_url)
    app = build_app(cfg, j)
    d, core = Driver(app, j), app.centre
    tz = dt.timezone(dt.timedelta(minutes=480))
    day = dt.datetime.now(tz).date() - dt.timedelta(days=10)
    while not (core.is_workday(day) and core.is_workday(day + dt.timedelta(days=1))):
        day -= dt.timedelta(days=1)
    midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz).timestamp()
    line = core.catalog.items["SOC-1"].line
    d.send("box-1", "take", midnight - 3600, item="SOC-1")
    d.operate(c.Book("SOC-1", f"{CENTRE}/{line}/{day:%Y%m%d}/2350", "r1"), midnight - 1800)
    d.send("box-1", "take", midnight + 120, item="SOC-1")  # closes the day, sweeps nothing
    hist = h.History(j.engine)
    key = f"{day:%Y%m%d}"

    def row() -> tuple:
        return next(tuple(r)[1:] for r in hist.report_rows(key, key)["bookings"])

    assert row() == (1, 0, 0, 0, 0)
    d.send("box-1", "take", midnight + 1200, item="SOC-1")  # 00:20: the no-show swept
    assert core.booking_counts[key] == [1, 0, 0, 0, 1]
    assert row() == (1, 0, 0, 0, 0)  # not yet: the next day has not closed
    d.send("box-1", "take", midnight + 86400 + 9 * 3600, item="SOC-1")
    assert row() == (1, 0, 0, 0, 1)
    j.close()
