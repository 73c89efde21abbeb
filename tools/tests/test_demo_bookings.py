"""`onewindow demo` with bookings, remote tickets and admission control (issue 16): the
simulator's residents book ahead and check in at the kiosk (its `checkin` event with the
booking's signed code, over MQTT), take numbers from their phones, and the summary's new
lines are the real hub's figures: the journal it wrote and the state it ended in."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from onewindow.hub.core import booking
from onewindow.hub.store.journal import Journal, Record
from onewindow.tools import demo

# The demo's web side takes port 8080 when it is free: two demos at once (xdist's two
# workers) would both see it free. One worker runs every demo test.
pytestmark = pytest.mark.xdist_group("demo-port-8080")


def _journal(folder: Path) -> list[Record]:
    journal = Journal(f"sqlite:///{folder / 'journal.db'}")
    try:
        return list(journal.read())
    finally:
        journal.close()


def _line(out: str, label: str) -> str:
    m = re.search(rf"^{re.escape(label)}.*$", out, re.M)
    assert m is not None, f"no {label!r} line in the summary:\n{out}"
    return m.group(0)


def _ints(line: str) -> list[int]:
    return [int(x) for x in re.findall(r"(?<![\w.])(\d+)(?![\w.])", line)]


async def test_a_whole_day_with_bookings_shows_the_hubs_own_counts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = await demo.run_demo(asyncio.Event(), speed=3000, windows=3, live=False,
                              layout_name="comprehensive", workdir=tmp_path, bookings=True,
                              admission="warn")
    assert run is not None and not run.errors, run and run.errors
    out = capsys.readouterr().out
    records = _journal(tmp_path)
    ops = Counter(r.body["op"] for r in records)
    centre, visits = run.centre, run.day.visits
    day = centre.calendar.day_id(run.day.opened)

    # Bookings: made through the hub, checked in by the kiosk over MQTT with the signed code
    booked, checked_in, late, no_show = _ints(_line(out, "预约 Bookings:"))
    assert booked == ops["book"] == sum(v.ahead == "booked" for v in visits) > 3
    checkins = [r for r in records if r.body["op"] == "checkin"]
    assert checked_in + late == len(checkins) > 0
    assert {r.dev for r in checkins} == {"kiosk-1"} and all(r.seq for r in checkins)
    counts = booking.counts_of(centre, day)
    assert (counts["booked"], counts["checked_in"], counts["late"], counts["no_show"]) == (
        booked, checked_in, late, no_show)
    assert no_show == sum(v.arrival == "no_show" for v in visits)  # swept by the hub's core
    for r in checkins:  # each check-in's ticket is an appointment one in time, else normal
        b = centre.bookings[r.body["booking"]]
        t = centre.tickets[b.ticket]  # type: ignore[index]
        assert t.priority.value == ("appointment" if b.state == booking.CHECKED_IN
                                    else "normal")

    # Remote tickets and the notices the hub's own notifier handled on the page channel
    # (at 3000x a page notice often finds its ticket moved on: dropped, as the hub does)
    remote, near, called, sent, dropped = _ints(_line(out, "远程取号 Remote tickets:"))
    assert remote == ops["remote_take"] == sum(v.ahead == "remote" for v in visits) > 0
    due = Counter(r.body["kind"] for r in records if r.body["op"] == "notice")
    assert (near, called) == (due["near"], due["called"]) and called > 0
    went = Counter(r.body["outcome"] for r in records if r.body["op"] == "notice_outcome")
    assert (sent, dropped) == (went["sent"], went["dropped"])
    assert sent + dropped == near + called  # each due notice settled once

    # Admission control, mode warn: tickets issued with the warning are in the journal
    line = _line(out, "号源控制 Admission (warn):")
    warned, refused = _ints(line)
    assert warned == sum(1 for r in records if r.body["op"] == "take" and r.body.get("adm"))
    assert refused == 0  # warn never refuses

    # The day ran to its end and the hub issued exactly the visits' tickets
    assert set(centre.tickets) == {v.ticket for v in visits if v.ticket is not None}
    assert all(v.outcome in ("done", "incomplete", "no_show", "rejected", "booked_no_show")
               for v in visits), Counter(v.outcome for v in visits)


async def test_stop_mode_refusals_are_the_hubs_day_full_answers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Two windows and 2.5 times their usual day: the queue would run past closing, so the
    # hub refuses takes (err day_full) and the summary counts what it refused.
    run = await demo.run_demo(asyncio.Event(), speed=3000, windows=2, live=False,
                              workdir=tmp_path, bookings=True, admission="stop",
                              layout_name="comprehensive", load=2.5)
    assert run is not None
    out = capsys.readouterr().out
    warned, refused = _ints(_line(out, "号源控制 Admission (stop):"))
    records = _journal(tmp_path)
    assert warned == 0 and not any(r.body.get("adm") for r in records)
    rejected = sum(1 for v in run.day.visits if v.outcome == "rejected")
    # every refusal was the hub's day_full: a take (the visit refused), or a remote take
    # (the resident then walked in and asked again at the kiosk or a box)
    assert rejected > 0 and run.day.extra["ahead"]["remote_refused"] > 0
    assert refused == rejected + run.day.extra["ahead"]["remote_refused"], out


def test_the_command_line_demo_shows_bookings_by_default() -> None:
    cmd = [sys.executable, "-m", "onewindow.hub.cli", "demo", "--minutes", "0.15",
           "--speed", "240", "--no-live"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=90,
                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert out.returncode == 0, out.stdout + out.stderr
    booked = _ints(_line(out.stdout, "预约 Bookings:"))[0]
    assert booked > 0, out.stdout  # the day's bookings are made when it starts
    _line(out.stdout, "远程取号 Remote tickets:")
    _line(out.stdout, "号源控制 Admission (warn):")
    assert "Traceback" not in out.stdout + out.stderr
