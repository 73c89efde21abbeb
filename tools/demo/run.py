"""`onewindow demo`: a whole simulated centre's day on this machine, with no setup.

Everything is real except the people and the clock: the hub runs with the embedded broker
and a SQLite journal in a temporary folder, and every keypad, LED board, button box, kiosk
and the hall board is a `SimDevice` speaking protocol v1 over MQTT. The people are the
simulator's (`hub/sim`): its arrival model, residents, clerks and window layouts, run by the
same `Engine` processes as `onewindow sim`, acting through the devices (actuation.py). Time
runs `speed` times faster than real time from 08:50 China time on the most recent working
day, for the hub and the people alike (scenario.py). This module starts the hub, the devices
and the people, watches them on the terminal (view.py) and stops them cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from ...hub.config import from_dict
from ...hub.core.centre import Centre
from ...hub.fleet.registry import provision_all
from ...hub.mqtt.broker import LOOPBACK, free_port
from ...hub.runner import HubRunner
from ...hub.serve import serve
from ...hub.sim.metrics import DayResult, tally
from ...hub.web import ListenError
from ..simdevice import SimDevice
from .actuation import Simulation
from .scenario import CENTRE_ID, REOPEN_AT, Plan, SimClock, clerk_names, demo_config, demo_day, plan
from .view import LiveView, ahead_counts, ahead_lines, progress_line, summary

SUMMARY_EVERY = 300.0  # simulated seconds between progress lines without the live view
SUMMARY_MIN_REAL = 2.0  # ... but not more often than this, in real seconds


@dataclass(slots=True)
class DemoRun:
    """What a demo run leaves: the engine's account of the day and the hub's final state."""

    day: DayResult
    centre: Centre
    errors: Counter[str]


async def run_demo(stop: asyncio.Event, minutes: float = 0, speed: float = 60.0,
                   windows: int = 8, live: bool = True, seed: int = 1,
                   layout_name: str = "mixed", drill: str = "",
                   reopen_at: dt.time = REOPEN_AT, workdir: Path | None = None,
                   bookings: bool = False, admission: str = "", load: float = 1.0
                   ) -> DemoRun | None:
    """Run the demo until `stop` is set, `minutes` real minutes have passed (if > 0) or the
    simulated day is over. Cleans up after itself (the journal stays in `workdir` if given)
    and prints a summary. `bookings`: residents also book ahead and take numbers remotely
    (hub/sim/bookings.py; `onewindow demo` does unless --no-bookings); `admission`: the
    centre's [admission] mode (warn | stop | off; "": the hub's default); `load`: the day's
    residents relative to the usual (1.2: 20 % more, to see admission control act)."""
    console = Console(highlight=False)
    if speed <= 0 or not 1 <= windows <= 99 or not 0 < load <= 10 or \
            admission not in ("", "warn", "stop", "off"):
        console.print("speed must be positive, windows between 1 and 99, load in (0, 10] "
                      "and admission warn, stop or off")
        return None
    clock = SimClock(demo_day(), speed)
    try:
        day_plan = plan(clock.day, windows, layout_name, drill, reopen_at)
    except ValueError as e:  # an unknown layout or drill, a reopening out of hours
        console.print(str(e))
        return None
    day_plan = dataclasses.replace(day_plan, scale=day_plan.scale * load)
    hub_log = logging.getLogger("onewindow.hub")
    level = hub_log.level
    # Every "nobody is waiting" answer and every ticket taken before the windows open is a
    # hub warning; in a demo they are the normal course of things and would tear up the screen.
    hub_log.setLevel(logging.ERROR)
    try:
        web_port = _web_port()
        for attempt in range(1, PORT_TRIES + 1):
            try:
                with _folder(workdir) as folder:
                    return await _run(stop, console, clock, day_plan, folder, minutes, live,
                                      seed, bookings, admission, web_port)
            except ListenError:
                # The port was free a moment ago and is taken now (another demo starting,
                # or a client's connection on a port from the ephemeral range): another one
                if attempt == PORT_TRIES:
                    raise
                web_port = free_port()
        return None
    finally:
        hub_log.setLevel(level)


@contextlib.contextmanager
def _folder(workdir: Path | None) -> Any:
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    with tempfile.TemporaryDirectory(prefix="onewindow-demo-") as tmp:
        yield Path(tmp)


async def _run(stop: asyncio.Event, console: Console, clock: SimClock, p: Plan, folder: Path,
               minutes: float, live: bool, seed: int, bookings: bool = False,
               admission: str = "", web_port: int = 8080) -> DemoRun | None:
    port = free_port()
    db = folder / "journal.db"
    config = from_dict(demo_config(p.layout, port, db, web_port, admission))
    # Broker accounts for the devices, as `onewindow provision` makes them: the embedded
    # broker then checks every login and topic, the production path (docs/security.md).
    accounts = provision_all(config, "sim")
    password = _demo_account(f"sqlite:///{db}")
    hub_stop = asyncio.Event()
    runners: list[HubRunner] = []
    hub = asyncio.create_task(serve(config, hub_stop, clock=clock, ready=runners.append),
                              name="demo-hub")
    sim: Simulation | None = None
    runner: HubRunner | None = None
    try:
        async with contextlib.AsyncExitStack() as devices:
            runner = await _hub_ready(hub, runners, stop)
            if runner is None:
                return None
            sims = await _connect(devices, config.devices, port, accounts)
            rng = random.Random(seed)
            sim = Simulation(runner, clock, p, sims, seed,
                             clerk_names(len(p.layout.config.windows), rng), bookings)
            footer = access_lines(f"http://{LOOPBACK}:{web_port}", password)
            where = (f"MQTT {LOOPBACK}:{port} · 设备 {len(sims)} devices · 日志 journal {db}")
            if not live:
                print(_banner(runner, clock, p, len(sims), port), flush=True)
                print(footer, flush=True)
                print(where, flush=True)
            clock.go()
            sim.start()
            deadline = time.monotonic() + minutes * 60 if minutes > 0 else None
            view = LiveView(runner, clock, sim, console, footer, where) if live else None
            await _watch(stop, deadline, hub, sim, clock, view, console)
            await sim.stop()
    finally:
        if sim is not None:
            await sim.stop()
        await _stop_hub(hub, hub_stop, console)
    if runner is None or sim is None:
        return None
    day = sim.result()
    centre = runner.app.centre
    ahead = ahead_lines(ahead_counts(centre, clock()), runner.app.admission, _warned(db),
                        sim.actuator.refused["day_full"])
    print(summary(clock, tally(centre, clock()), day, sim.errors,
                  [r.to_dict() for r in centre.ratings.values()], p.drill, ahead), flush=True)
    return DemoRun(day, centre, sim.errors)


def access_lines(web: str, password: str) -> str:
    """Where a person opens the demo's pages and how to log in: two lines that fit 80
    columns, shown first (above the live view, or printed at once when the output is not a
    terminal) so they are seen while the demo runs, not only after Ctrl-C."""
    return (f"网页 web {web}  /hall  /kiosk?device=kiosk-1  /dashboard\n"
            f"登录 login admin / {password}   ·   Ctrl-C 退出 quit")


def _banner(runner: HubRunner, clock: SimClock, p: Plan, devices: int, port: int) -> str:
    name = runner.app.centre.catalog.name
    drill = (f"; drill: windows closed until {p.options.reopen_at:%H:%M}" if p.drill else "")
    return (f"OneWindow demo: {name.zh} / {name.en}; {len(p.layout.config.windows)} windows "
            f"({p.layout.name}: {p.layout.kinds}), {devices} devices on MQTT "
            f"{LOOPBACK}:{port}, ×{clock.speed:g} from {clock.local():%Y-%m-%d %H:%M}{drill}")


async def _stop_hub(hub: asyncio.Task[None], hub_stop: asyncio.Event, console: Console) -> None:
    hub_stop.set()
    try:
        await asyncio.wait_for(asyncio.shield(hub), 15)
    except TimeoutError:
        hub.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await hub
    except ListenError:
        pass  # its web port was taken: run_demo tries another
    except Exception as e:  # the hub failed; say so rather than hide it
        console.print(f"hub stopped with an error: {e!r}")


def _warned(db: Path) -> int:
    """Tickets the hub issued with admission control's warning (the take records' verdict,
    hub/app/admission.py), from the demo's journal."""
    from ...hub.app import admission
    from ...hub.store.journal import Journal

    journal = Journal(f"sqlite:///{db}")
    try:
        return sum(1 for r in journal.read() if r.op == "take" and admission.late(r))
    finally:
        journal.close()


PORT_TRIES = 5  # web ports tried before the demo gives up


def _web_port() -> int:
    """8080 when it is free (the address a user expects), else any free port."""
    import socket

    with socket.socket() as s:
        try:
            s.bind((LOOPBACK, 8080))
            return 8080
        except OSError:
            return free_port()


def _demo_account(db_url: str) -> str:
    """An admin account for the demo's staff pages; its password is printed."""
    import secrets

    from ...hub.store.accounts import Accounts

    password = "demo-" + secrets.token_hex(4)
    accounts = Accounts(db_url)
    try:
        if accounts.get("admin") is None:
            accounts.add("admin", password, "admin", "演示管理员 Demo admin")
        else:  # a demo run again in the same folder: a fresh password all the same
            accounts.set_password("admin", password)
    finally:
        accounts.close()
    return password


async def _hub_ready(hub: asyncio.Task[None], runners: list[HubRunner],
                     stop: asyncio.Event, timeout: float = 20.0) -> HubRunner | None:
    deadline = time.monotonic() + timeout
    while not (runners and runners[0].connected.is_set()):
        if hub.done():
            hub.result()  # raises what stopped it
            raise RuntimeError("the hub stopped before it was ready")
        if stop.is_set():
            return None
        if time.monotonic() > deadline:
            raise TimeoutError(f"the hub was not ready within {timeout:g} s")
        await asyncio.sleep(0.02)
    return runners[0]


async def _connect(stack: contextlib.AsyncExitStack, specs: Any, port: int,
                   accounts: dict[str, tuple[str, str]]) -> dict[str, SimDevice]:
    devs = {d.id: SimDevice(CENTRE_ID, d.id, d.role, LOOPBACK, port, window=d.window,
                            username=accounts[d.id][0], password=accounts[d.id][1])
            for d in specs}

    async def one(dev: SimDevice) -> None:
        await dev.__aenter__()
        stack.push_async_exit(dev.__aexit__)

    await asyncio.gather(*(one(d) for d in devs.values()))
    return devs


async def _watch(stop: asyncio.Event, deadline: float | None, hub: asyncio.Task[None],
                 sim: Simulation, clock: SimClock, view: LiveView | None,
                 console: Console) -> None:
    def over() -> bool:
        return (stop.is_set() or hub.done() or sim.day_over
                or (deadline is not None and time.monotonic() >= deadline))

    async def tick(seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        for dev in sim.devices.values():  # nobody reads the boards' commands: drop them
            while not dev.commands.empty():
                dev.commands.get_nowait()
            dev.printed.clear()

    if view is not None:
        # Rendered from the event loop, not rich's refresh thread: the centre's state is
        # only ever read between the hub's steps.
        with Live(view.render(), console=console, auto_refresh=False,
                  vertical_overflow="crop") as screen:
            while not over():
                await tick(0.25)
                screen.update(view.render(), refresh=True)
            if sim.day_over:
                await tick(2.0)  # let the last screen be seen
        return
    stats_at = clock()
    real_at = time.monotonic()
    windows = len(sim.centre.windows)
    last = ""

    def show() -> None:
        nonlocal last
        line = progress_line(clock, tally(sim.centre, clock()), windows)
        if line != last:
            print(line, flush=True)
            last = line

    while not over():
        await tick(0.25)
        if clock() - stats_at >= SUMMARY_EVERY and time.monotonic() - real_at >= SUMMARY_MIN_REAL:
            stats_at, real_at = clock(), time.monotonic()
            show()
    show()
