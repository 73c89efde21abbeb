"""`onewindow demo`: the whole thing as a user runs it, the simulator's engine acting through
the simulated devices on the real hub, and the pure helpers."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import io
import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from rich.console import Console

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.config import from_dict
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.model import TicketState, WindowState
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.devices import Registry
from onewindow.hub.sim.engine import Engine, Rating
from onewindow.hub.sim.metrics import tally
from onewindow.hub.store.journal import Journal, Record
from onewindow.protocol import ow_protocol as proto
from onewindow.tools import demo
from onewindow.tools.demo.view import LiveView
from onewindow.tools.simdevice import DeviceError

# The demo's web side takes port 8080 when it is free: two demos at once (xdist's two
# workers) would both see it free. One worker runs every demo test.
pytestmark = pytest.mark.xdist_group("demo-port-8080")

TICKET_DEVICES = {"box-1", "box-2", "kiosk-1"}


def _number(label: str, text: str) -> int:
    m = re.search(rf"{label}:\s*(\d+)", text)
    assert m is not None, f"no {label!r} in the output:\n{text}"
    return int(m.group(1))


def test_demo_runs_a_morning_and_prints_its_summary() -> None:
    # 0.15 real minutes at 120x: 08:50 to about 09:08, the windows open at 09:00.
    cmd = [sys.executable, "-m", "onewindow.hub.cli", "demo", "--minutes", "0.15",
           "--speed", "120", "--no-live"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=90,
                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    issued = _number("Tickets issued", out.stdout)
    served = _number("Tickets served", out.stdout)
    waiting = _number("Still waiting", out.stdout)
    arrived = _number("Residents arrived", out.stdout)
    assert issued > 0, text
    assert served > 0, text
    assert served + waiting <= issued <= arrived, text
    assert "Layout: mixed, 8 windows" in out.stdout, text
    assert re.search(r"90th percentile wait:\s*\d+\.\d+ min", out.stdout), text
    assert "09:0" in out.stdout, "no progress line after the windows opened:\n" + text
    for bad in ("Traceback", "Task was destroyed", "never awaited", "Device errors"):
        assert bad not in text, text


def _journal(folder: Path) -> list[Record]:
    journal = Journal(f"sqlite:///{folder / 'journal.db'}")
    try:
        return list(journal.read())
    finally:
        journal.close()


async def test_a_whole_day_of_the_engine_goes_over_mqtt_and_agrees_with_the_hub(
        tmp_path: Path) -> None:
    run = await demo.run_demo(asyncio.Event(), speed=3000, windows=3, live=False,
                              layout_name="comprehensive", workdir=tmp_path)
    assert run is not None
    assert not run.errors
    visits, centre = run.day.visits, run.centre
    assert all(v.outcome in ("done", "incomplete", "no_show", "rejected") for v in visits), \
        Counter(v.outcome for v in visits)  # the day ran to its end: nobody left over
    taken = {v.ticket: v for v in visits if v.ticket is not None}
    assert len(taken) > 50
    assert set(taken) == set(centre.tickets)  # every ticket the hub issued is a visit's
    for tid, v in taken.items():
        hub_state = centre.tickets[tid].state
        want = TicketState.NO_SHOW if v.outcome == "no_show" else TicketState.DONE
        assert hub_state is want, (v, hub_state)
    assert all(w.state is WindowState.CLOSED for w in centre.windows.values())

    records = _journal(tmp_path)
    ops = Counter(r.body["op"] for r in records)
    # Every take and every window operation came from a simulated device over MQTT.
    takes = [r for r in records if r.body["op"] == "take"]
    assert len(takes) == len(taken)
    assert {r.dev for r in takes} == TICKET_DEVICES
    assert all(r.seq is not None for r in takes)
    window_ops = [r for r in records if r.body["op"] not in ("take", "reserve")]
    assert {r.dev for r in window_ops} == {f"kp-{n}" for n in centre.windows}
    # What the engine's people did is what the hub journaled, operation by operation.
    assert ops["complete"] == sum(v.outcome in ("done", "incomplete") for v in visits)
    assert ops["call"] == sum(v.calls for v in visits)
    assert ops["start"] == sum(len(v.windows) for v in visits)
    assert ops["recall"] == ops["skip"] == sum(min(v.calls, v.absent) for v in visits)
    assert ops["open"] == ops["close"] == 3
    assert ops["rate"] > 0 and ops["pause"] == ops["resume"] > 0  # lunch, at least
    # The hub acted when the engine decided: its clock never behind the engine's time, and
    # not far ahead either (the residents at the door at 08:50 came earlier).
    start = demo.SimClock(run.day.date, 1).start
    lags = [centre.tickets[tid].issued_at - max(v.at, start) for tid, v in taken.items()]
    assert min(lags) >= 0 and max(lags) <= demo.MAX_AHEAD, (min(lags), max(lags))


async def test_the_reopening_drill_keeps_every_window_closed_until_it_reopens(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 0.05 real minutes at 3000x: 08:50 to about 11:20.
    run = await demo.run_demo(asyncio.Event(), minutes=0.05, speed=3000, windows=4,
                              live=False, drill="reopen", reopen_at=dt.time(10, 0),
                              workdir=tmp_path)
    assert run is not None and not run.errors
    reopen = demo.plan(run.day.date, 4, drill="reopen", reopen_at=dt.time(10, 0)).open_at
    records = _journal(tmp_path)
    opens = [r for r in records if r.body["op"] == "open"]
    assert len(opens) == 4, "every window opened once the drill was over"
    assert all(r.ts >= reopen for r in opens)
    assert not [r for r in records if r.body["op"] == "call" and r.ts < reopen]
    backlog = [r for r in records if r.body["op"] == "take" and r.ts < reopen]
    assert len(backlog) > 10, "tickets were taken while the windows were closed"
    assert any(r.body["op"] == "complete" for r in records)
    out = capsys.readouterr().out
    assert "drill: windows closed until 10:00" in out
    backlog_line = re.search(r"windows opened at 10:00, 积压 backlog (\d+)", out)
    assert backlog_line is not None and int(backlog_line.group(1)) > 10, out


def _hub_app(p: demo.Plan) -> HubApp:
    """The hub's message handling, configured as the demo configures the hub."""
    config = from_dict(demo.demo_config(p.layout, 1883, Path("/unused.db")))
    return HubApp(Centre(load_catalog(), config.centre), Registry(list(config.devices)), "t")


def _send(app: HubApp, seqs: Counter[str], cmd: c.Command, now: float, dev: str
          ) -> tuple[str, dict[str, Any], Any]:
    """`cmd` sent to `app` as the event its device sends: (type, fields, the hub's step)."""
    typ, fields = demo.device_event(cmd, app.centre)
    seqs[dev] += 1
    payload = proto.encode("evt", proto.event(dev, seqs[dev], typ, **fields))
    return typ, fields, app.handle(proto.device_topic(demo.CENTRE_ID, dev, "evt"), payload, now)


def test_every_engine_command_is_journaled_as_decided_when_sent_by_its_device() -> None:
    """`device_event` is the inverse of the hub's event -> command mapping: a day of the
    engine's commands, each sent as its device's event to a HubApp, journals each command
    exactly as the engine decided it."""
    p = demo.plan(dt.date(2026, 11, 25), 3, "mixed")
    catalog = load_catalog()
    app = _hub_app(p)
    sent: list[tuple[c.Command, float, str]] = []
    own = Centre(catalog, p.layout.config)

    def act(cmd: c.Command, now: float, dev: str | None) -> list[Any]:
        effects = [] if isinstance(cmd, Rating) else own.apply(cmd, now)
        sent.append((cmd, now, dev or ""))
        return effects

    eng = Engine(catalog, p.layout, centre=own, act=act, clerk_seed=1)
    eng.run_day(p.day, seed=1, scale=0.15, options=p.options)
    kinds = Counter(type(cmd).__name__ for cmd, _, _ in sent)
    assert {"TakeTicket", "OpenWindow", "CallNext", "Start", "Complete", "Rating",
            "CloseWindow"} <= set(kinds), kinds
    seqs: Counter[str] = Counter()
    for cmd, now, dev in sent:
        typ, fields, step = _send(app, seqs, cmd, now, dev)
        [rec] = [r for r in step.records if r.dev == dev]
        body = {k: v for k, v in rec.body.items() if k != "est"}
        if isinstance(cmd, c.TakeTicket):  # the hub notes which device event asked
            cmd = dataclasses.replace(cmd, request=seqs[dev])
        # A rating comes from three-key devices (no `scale` in the event): journaled with
        # scale 3, which the core maps onto the five levels.
        want = ({"op": "rate", "ticket": cmd.ticket, "score": cmd.score,
                 "window": cmd.window, "clerk": cmd.clerk, "scale": 3}
                if isinstance(cmd, Rating)
                else cmd.to_record())
        assert body == want, (typ, fields)


def test_the_live_screen_shows_the_hubs_state_in_the_middle_of_a_morning() -> None:
    # The engine's morning up to 10:45 on a HubApp, its commands sent as the devices' events.
    p = demo.plan(dt.date(2026, 11, 25), 4, "mixed")
    app = _hub_app(p)
    own = Centre(load_catalog(), p.layout.config)
    seqs: Counter[str] = Counter()

    def act(cmd: c.Command, now: float, dev: str | None) -> list[Any]:
        effects = [] if isinstance(cmd, Rating) else own.apply(cmd, now)
        _send(app, seqs, cmd, now, dev or "")
        return effects

    eng = Engine(load_catalog(), p.layout, centre=own, act=act, clerk_seed=1)
    day = eng.start_day(p.day, p.weather, 1, scale=p.scale, options=p.options)
    now = p.at(dt.time(10, 45))
    while day.env.peek() < now:
        day.env.step()
    clock = demo.SimClock(p.day, 60)
    clock.start = now  # a clock that was never started shows its start
    sim = SimpleNamespace(plan=p, day_over=False)
    console = Console(width=140, record=True, file=io.StringIO())
    console.print(LiveView(cast(Any, SimpleNamespace(app=app)), clock, cast(Any, sim), console,
                           "the footer").render())
    screen = console.export_text()

    centre = app.centre
    live = tally(centre, now)
    assert live.issued > 20 and live.served > 0 and live.open_windows == 4
    assert "2026-11-25 周三 Wed" in screen and "10:45:00" in screen and "受理中 Open" in screen
    header = re.search(r"Issued.*Open\s*│\s*\n│\s*(.+?)\s*│", screen)
    assert header is not None, screen
    assert header.group(1).split() == [
        str(live.issued), str(live.served), str(live.waiting), f"{live.waits.mean:.1f}", "分",
        "min", f"{live.longest_waiting:.0f}", "分", "min", f"{live.open_windows}/4"]
    for n, w in centre.windows.items():  # every window, its clerk and its ticket
        row = next(line for line in screen.splitlines() if line.strip().startswith(f"{n}号"))
        assert str(w.clerk) in row, row
        if w.ticket is not None:
            assert centre.tickets[w.ticket].number in row, row
    [newest, *_] = app.calls
    assert f"请{newest.ticket}号到{newest.window}号窗口办理业务" in screen
    assert "the footer" in screen


class _RefusingDevice:
    """A device whose every event the hub refuses."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, typ: str, **fields: Any) -> dict[str, Any]:
        self.sent.append(typ)
        raise DeviceError({"code": "window_closed", "msg": "closed"})


async def test_a_refusal_the_engine_expects_is_rejected_any_other_is_counted() -> None:
    dev = _RefusingDevice()
    centre = Centre(load_catalog(), demo.plan(dt.date(2026, 11, 25), 2).layout.config)
    act = demo.Actuator(asyncio.get_running_loop(), {"kp-1": dev}, centre)  # type: ignore[dict-item]
    with pytest.raises(Rejected) as e:  # nobody to call: the engine waits for a ticket
        await asyncio.to_thread(act, c.CallNext(1), 0.0, "kp-1")
    assert e.value.code == "window_closed" and not act.errors
    # A window someone closed on the dashboard: the engine's clerk carries on.
    assert await asyncio.to_thread(act, c.Start(1), 0.0, "kp-1") == []
    assert act.errors == Counter({"window_closed": 1})
    assert dev.sent == ["call", "start"]


def test_the_hub_runs_the_layout_the_engine_simulates() -> None:
    for name in ("dedicated", "comprehensive", "mixed"):
        p = demo.plan(dt.date(2026, 11, 25), 8, name)
        cfg = demo.demo_config(p.layout, 1883, Path("/tmp/x.db"))
        roles = [d["role"] for d in cfg["devices"]]
        assert roles.count("box") == 2 and roles.count("kiosk") == 1
        assert roles.count("keypad") == 8 and roles.count("led") == 8
        assert from_dict(cfg).centre.windows == p.layout.config.windows
    mixed = demo.plan(dt.date(2026, 11, 25), 8)
    assert mixed.layout.kinds == "6 comprehensive + 1 card + 1 cash"
    assert mixed.options.reopen_at is None and mixed.open_at == mixed.at(dt.time(9, 0))
    with pytest.raises(ValueError):
        demo.plan(dt.date(2026, 11, 25), 8, drill="flood")


def test_demo_day_is_the_most_recent_working_day() -> None:
    assert demo.demo_day(dt.date(2026, 11, 23)) == dt.date(2026, 11, 23)  # a Monday
    assert demo.demo_day(dt.date(2026, 11, 28)) == dt.date(2026, 11, 27)  # Sat -> Fri
    assert demo.demo_day(dt.date(2026, 11, 29)) == dt.date(2026, 11, 27)  # Sun -> Fri


def test_clock_starts_at_0850_china_time_and_runs_at_speed() -> None:
    clock = demo.SimClock(dt.date(2026, 11, 23), speed=600)
    start = clock()
    assert clock.local(start).strftime("%Y-%m-%d %H:%M %z") == "2026-11-23 08:50 +0800"
    assert clock() == start  # stopped until go(): the hub starts on 08:50 sharp
    assert clock.real_until(start + 600) == pytest.approx(1.0)
    clock.go()
    assert clock._t0 is not None
    clock._t0 -= 1.0  # started one real second ago
    assert 600 <= clock() - start <= 640
    clock.engine = start + 100  # the engine is behind: time waits for it
    assert clock() == start + 100 + demo.MAX_AHEAD
    with pytest.raises(ValueError):
        demo.SimClock(dt.date(2026, 11, 23), speed=0)


def test_clerk_names_are_masked() -> None:
    names = demo.clerk_names(8, random.Random(1))
    assert len(set(names)) == 8
    assert all("*" in n and len(n) in (2, 3) for n in names)


async def test_the_demo_moves_to_another_port_when_its_web_port_is_taken_meanwhile(
        tmp_path: Path, monkeypatch) -> None:
    """8080 seen free, then taken before the hub listens (another demo starting): the demo
    runs on a free port instead of failing."""
    import socket

    from onewindow.tools.demo import run as demo_run

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setattr(demo_run, "_web_port", lambda: taken.getsockname()[1])
        run = await demo.run_demo(asyncio.Event(), minutes=0.02, speed=3000, windows=2,
                                  live=False, workdir=tmp_path / "demo")
    assert run is not None and not run.errors
