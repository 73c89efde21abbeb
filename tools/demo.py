"""`onewindow demo`: a whole simulated centre's day on this machine, with no setup.

Everything is real except the people and the clock: the hub runs with the embedded broker
and a SQLite journal in a temporary folder, and every keypad, LED board, button box, kiosk
and the hall board is a `SimDevice` speaking protocol v1 over MQTT. The people are the
simulator's (`hub/sim`): its arrival model, residents, clerks and window layouts, run by the
same `Engine` processes as `onewindow sim`. Only their hands differ: each command the engine
decides is sent as the matching event by the device it names (a box or the kiosk takes a
ticket, a keypad calls, starts, completes, transfers, pauses, rates ...) to the real hub,
and the engine reads the hub's answer. Time runs `speed` times faster than real time from
08:50 China time on the most recent working day, for the hub and the people alike.

The live view reads the hub's state directly from `runner.app.centre`: it runs in the same
process, and a demo screen is allowed to look behind the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
import random
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import aiomqtt
import simpy
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..hub.catalog import SAMPLE, load_catalog
from ..hub.config import from_dict
from ..hub.core import commands as c
from ..hub.core.centre import Centre, Rejected
from ..hub.core.effects import TicketIssued
from ..hub.core.model import Ticket, TicketState, WindowState
from ..hub.fleet.registry import provision_all
from ..hub.mqtt.broker import LOOPBACK, free_port
from ..hub.runner import HubRunner, serve
from ..hub.sim.engine import Day, DayOptions, DayResult, Engine, Rating
from ..hub.sim.model import CST, ArrivalModel, Weather, at_local, day_info
from ..hub.sim.policies import Layout, layout
from ..protocol import ow_protocol as proto
from .simdevice import DeviceError, SimDevice

log = logging.getLogger("onewindow.demo")

CENTRE_ID = "demo"
WEEKDAYS_ZH = "一二三四五六日"

START = dt.time(8, 50)  # the simulation starts ten minutes before the windows open
DRILLS = ("", "reopen")
REOPEN_AT = dt.time(10, 30)
# Residents per window on an ordinary Wednesday (the arrival model adds the weekday, so a
# Monday is busier): windows about 85 % busy, queues that come and go.
VISITS_PER_WINDOW = 37.0
REPLY_TIMEOUT = 15.0  # real s the engine waits for the hub (a device retries within that)
MAX_AHEAD = 60.0  # simulated s the clock may run ahead of the engine's next event
# Commands whose refusal the engine handles itself (a take refused, nobody waiting, no
# window for a transfer); any other refusal is a surprise and is counted as a device error.
ENGINE_HANDLES = (c.TakeTicket, c.CallNext, c.Transfer)

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = ("丽芳", "建国", "晓燕", "志强", "美玲", "秀英", "文静", "海波", "慧敏", "晓东",
         "春梅", "立新", "玉兰", "振华", "雪梅", "志明", "桂英", "伟", "敏", "静")

STATE_LABEL = {
    WindowState.CLOSED: ("未开放 Closed", "dim"),
    WindowState.IDLE: ("空闲 Idle", "green"),
    WindowState.CALLING: ("叫号中 Calling", "bold yellow"),
    WindowState.SERVING: ("办理中 Serving", "cyan"),
    WindowState.PAUSED: ("暂停 Paused", "magenta"),
}
SUMMARY_EVERY = 300.0  # simulated seconds between progress lines without the live view
SUMMARY_MIN_REAL = 2.0  # ... but not more often than this, in real seconds


# ---- time -------------------------------------------------------------------------------

def demo_day(today: dt.date | None = None) -> dt.date:
    """Today in China if the centre opens today, else the working day before."""
    d = today or dt.datetime.now(CST).date()
    while not day_info(d).open:
        d -= dt.timedelta(days=1)
    return d


class SimClock:
    """Simulated epoch seconds: `start` until `go()`, then `speed` seconds per real second,
    but never more than MAX_AHEAD past `engine` (the engine's next event, set by `drive`):
    at speeds the hub's answers cannot keep up with, time waits for the people rather than
    running on without them (and past midnight, where the hub would close the day). Both
    bounds only grow, so the clock never goes back."""

    def __init__(self, day: dt.date, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.day = day
        self.speed = speed
        self.start = self.at(START)
        self.engine = math.inf
        self._t0: float | None = None

    def at(self, t: dt.time) -> float:
        return at_local(self.day, t)

    def go(self) -> None:
        self._t0 = time.monotonic()

    def __call__(self) -> float:
        if self._t0 is None:
            return self.start
        return min(self.start + (time.monotonic() - self._t0) * self.speed,
                   self.engine + MAX_AHEAD)

    def local(self, ts: float | None = None) -> dt.datetime:
        return dt.datetime.fromtimestamp(self() if ts is None else ts, CST)

    def real_until(self, ts: float) -> float:
        """Real seconds until the clock shows `ts` (<= 0: it has)."""
        return (ts - self()) / self.speed


# ---- the centre ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Plan:
    """The simulated day: its date, the window layout, the engine's options and volume."""

    day: dt.date
    layout: Layout
    options: DayOptions
    scale: float
    weather: Weather
    last_ticket: dt.time  # when arrivals stop (the ticket machines stop issuing)

    def at(self, t: dt.time) -> float:
        return at_local(self.day, t)

    @property
    def open_at(self) -> float:
        return self.at(self.options.reopen_at or self.options.open_at)

    @property
    def drill(self) -> bool:
        return self.options.reopen_at is not None


def plan(day: dt.date, windows: int, layout_name: str = "mixed", drill: str = "",
         reopen_at: dt.time = REOPEN_AT) -> Plan:
    """`drill="reopen"`: the windows stay closed until `reopen_at` while residents keep
    taking tickets (the engine's reopening drill), then work off the backlog."""
    if drill not in DRILLS:
        raise ValueError(f"unknown drill {drill!r}; one of: reopen")
    opts = DayOptions(start_at=START, reopen_at=reopen_at if drill == "reopen" else None)
    if drill and not opts.open_at < reopen_at < opts.close_at:
        raise ValueError(f"the drill reopens between {opts.open_at:%H:%M} and "
                         f"{opts.close_at:%H:%M}")
    lay = layout(layout_name, load_catalog(), windows, centre_id=CENTRE_ID)
    arrivals = ArrivalModel()  # the engine's default
    return Plan(day, lay, opts, windows * VISITS_PER_WINDOW / arrivals.base_daily, Weather(),
                arrivals.end())


def demo_config(lay: Layout, port: int, db: Path, web_port: int | None = None
                ) -> dict[str, Any]:
    """The hub's configuration: the layout's windows, and a keypad and an LED board at each."""
    devices: list[dict[str, Any]] = [
        {"id": "box-1", "role": "box"}, {"id": "box-2", "role": "box"},
        {"id": "kiosk-1", "role": "kiosk"}, {"id": "hall-1", "role": "hall"},
    ]
    windows = []
    for w in lay.config.windows:
        devices.append({"id": f"kp-{w.number}", "role": "keypad", "window": w.number})
        devices.append({"id": f"led-{w.number}", "role": "led", "window": w.number})
        skills = {} if w.skills is None else {"skills": list(w.skills)}
        windows.append({"number": w.number, "kind": w.kind, **skills})
    web = {} if web_port is None else {
        "web": {"host": LOOPBACK, "port": web_port}}
    status = {} if web_port is None else {"status_url": f"http://{LOOPBACK}:{web_port}/t/"}
    return {
        **web,
        "centre": {"id": CENTRE_ID, **status},
        "store": {"url": f"sqlite:///{db}"},
        "broker": {"embedded_port": port},
        "windows": windows,
        "devices": devices,
    }


def kind_names() -> dict[str, tuple[str, str]]:
    """Window kind id -> (zh, en), from the sample catalog (the core keeps only the ids)."""
    try:
        raw = json.loads(resources.files("onewindow.hub.catalog").joinpath(SAMPLE)
                         .read_text(encoding="utf-8"))
        return {k["id"]: (k["zh"], k["en"]) for k in raw["window_kinds"]}
    except (OSError, ValueError, KeyError):
        return {}


def clerk_names(n: int, rng: random.Random) -> list[str]:
    pool = [s + g for s in SURNAMES for g in GIVEN]
    rng.shuffle(pool)
    return [proto.mask_name(name) for name in pool[:n]]


# ---- the engine's hands: commands as device events -------------------------------------------

_WINDOW_EVENTS: dict[type[c.Command], str] = {
    c.CallNext: "call", c.Recall: "recall", c.Start: "start", c.Complete: "complete",
    c.Pause: "pause", c.Resume: "resume", c.CloseWindow: "close",
}


def device_event(cmd: c.Command, centre: Centre) -> tuple[str, dict[str, Any]]:
    """(type, fields) of the event a device sends for `cmd`: the inverse of the mapping in
    `HubApp._to_command`, so the hub journals the very command the engine decided."""
    if isinstance(cmd, c.TakeTicket):
        return "take", _present(item=cmd.item, priority=cmd.priority, resident=cmd.resident,
                                appointment_at=cmd.appointment_at,
                                items=list(cmd.extra_items) or None)
    if isinstance(cmd, Rating):  # a window device rates by the number it shows
        return "rate", {"window": cmd.window, "ticket": centre.tickets[cmd.ticket].number,
                        "score": cmd.score}
    if isinstance(cmd, c.OpenWindow):
        return "open", _present(window=cmd.window, clerk=cmd.clerk)
    if isinstance(cmd, c.Skip):
        return "skip", _present(window=cmd.window, requeue=cmd.requeue)
    if isinstance(cmd, c.Transfer):
        return "transfer", _present(window=cmd.window, to_window=cmd.to_window,
                                    to_item=cmd.to_item, note=cmd.note)
    typ = _WINDOW_EVENTS.get(type(cmd))
    if typ is None or not isinstance(cmd, c.WindowCommand):
        raise ValueError(f"no device event for {cmd.op!r}")
    return typ, {"window": cmd.window}


def _present(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


class Actuator:
    """The engine's `act`: called in the engine's thread, it has the named device send the
    command's event from the event loop and blocks until the hub answers. A take answers
    with the ticket the hub issued; a refusal the engine expects becomes `Rejected`, as the
    core would raise it; any other failure is counted and the engine carries on."""

    def __init__(self, loop: asyncio.AbstractEventLoop, devices: dict[str, SimDevice],
                 centre: Centre, timeout: float = REPLY_TIMEOUT) -> None:
        self.loop, self.devices, self.centre, self.timeout = loop, devices, centre, timeout
        self.errors: Counter[str] = Counter()

    def __call__(self, cmd: c.Command, now: float, dev: str | None) -> list[Any]:
        typ, fields = device_event(cmd, self.centre)
        device = self.devices[dev or ""]
        fut = asyncio.run_coroutine_threadsafe(device.send(typ, **fields), self.loop)
        try:
            reply = fut.result(self.timeout)
        except DeviceError as e:
            if isinstance(cmd, ENGINE_HANDLES):
                raise Rejected(str(e.code), str(e)) from None
            self.errors[str(e.code)] += 1
            return []
        except (TimeoutError, aiomqtt.MqttError) as e:
            fut.cancel()
            self.errors[type(e).__name__] += 1
            if isinstance(cmd, ENGINE_HANDLES):
                raise Rejected("no_answer", str(e)) from None
            return []
        if isinstance(cmd, c.TakeTicket):
            # The hub applied the take before it answered, so the number is in its state.
            t = self.centre.by_number[reply["ticket"]]
            return [TicketIssued(t.id, int(reply.get("ahead", 0)),
                                 float(reply.get("wait", -1)), dev)]
        return []


def drive(env: simpy.Environment, clock: SimClock, stop: threading.Event) -> None:
    """Step the engine's day (in a worker thread) as the demo clock reaches each event.

    A plain Environment stepped against the one clock the hub also reads, rather than
    simpy.rt.RealtimeEnvironment: its sleeps cannot be interrupted by Ctrl-C, and it would
    keep a second start time of its own. The hub stamps each operation with that clock:
    never earlier than the engine's time, and at most MAX_AHEAD later (see SimClock)."""
    while not stop.is_set():
        t = env.peek()
        if t == math.inf:
            return  # every window closed and nobody is coming: the day is over
        clock.engine = t  # a float store: atomic, read by the event loop's thread
        ahead = clock.real_until(t)
        if ahead > 0:
            stop.wait(ahead)
            continue
        env.step()


class Simulation:
    """The simulator's day acted out on the demo's devices, stepped in a worker thread.

    The engine thread reads the hub's Centre (it looks up the ticket a call brought, the
    ticket a number names, a window's state) while the event loop thread mutates it. That
    is safe enough here: every read is a single dict lookup or attribute read, atomic under
    the GIL; the windows dict never changes size; and what the engine reads right after a
    command was settled by the hub before it answered, with nobody else acting on those
    windows (unless a demo user presses buttons on the web pages, which the actuator
    survives). All the engine's own state stays in its thread until it has finished."""

    def __init__(self, runner: HubRunner, clock: SimClock, p: Plan,
                 devices: dict[str, SimDevice], seed: int, clerks: list[str]) -> None:
        self.centre = runner.app.centre
        self.clock = clock
        self.plan = p
        self.devices = devices
        self.actuator = Actuator(asyncio.get_running_loop(), devices, self.centre)
        self.engine = Engine(self.centre.catalog, p.layout, centre=self.centre,
                             act=self.actuator, clerk_seed=seed)
        # The same clerks (speeds, home lines) under names fit for the screen.
        self.engine.clerks = {n: replace(k, name=name) for (n, k), name
                              in zip(sorted(self.engine.clerks.items()), clerks, strict=True)}
        self.day: Day = self.engine.start_day(p.day, p.weather, seed, scale=p.scale,
                                              options=p.options)
        self._stop = threading.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def errors(self) -> Counter[str]:
        return self.actuator.errors

    def start(self) -> None:
        self._task = asyncio.create_task(
            asyncio.to_thread(drive, self.day.env, self.clock, self._stop), name="demo-engine")

    @property
    def day_over(self) -> bool:
        return self._task is not None and self._task.done()

    async def finished(self) -> None:
        """Until the engine's day is over (run to its end, or failed: `stop` says which)."""
        if self._task is not None:
            await asyncio.wait({self._task})

    async def stop(self) -> None:
        """Stop the engine after its current command (the hub must still be running)."""
        self._stop.set()
        if self._task is None:
            return
        try:
            await self._task
        except Exception:
            log.exception("the simulated people stopped with an error")
            self.errors["crashed"] += 1
        self._task = None

    def result(self) -> DayResult:
        """The engine's account of the day (call after `stop`)."""
        return self.day.result()


# ---- views ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Stats:
    issued: int
    served: int
    no_show: int
    waiting: int
    waits: list[float]  # minutes from issue to first call, of every ticket called
    longest: float  # minutes, of those still waiting
    open_windows: int

    @property
    def average(self) -> float:
        return sum(self.waits) / len(self.waits) if self.waits else 0.0

    @property
    def average_text(self) -> str:
        return f"{self.average:.1f}" if self.waits else "—"

    def percentile(self, p: float) -> float:
        if not self.waits:
            return 0.0
        xs = sorted(self.waits)
        return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]


def first_call(t: Ticket) -> float | None:
    for ts, state, _window in t.history:
        if state == TicketState.CALLED.value:
            return ts
    return None


def centre_stats(centre: Centre, now: float) -> Stats:
    waits = []
    served = no_show = 0
    for t in centre.tickets.values():
        if t.state is TicketState.DONE:
            served += 1
        elif t.state is TicketState.NO_SHOW:
            no_show += 1
        called = first_call(t)
        if called is not None:
            waits.append((called - t.issued_at) / 60.0)
    waiting = list(centre.queue)
    longest = max(((now - t.issued_at) / 60.0 for t in waiting), default=0.0)
    open_windows = sum(w.state is not WindowState.CLOSED for w in centre.windows.values())
    return Stats(len(centre.tickets), served, no_show, len(waiting), waits, longest,
                 open_windows)



class LiveView:
    def __init__(self, runner: HubRunner, clock: SimClock, sim: Simulation,
                 console: Console, footer: str) -> None:
        self.app = runner.app
        self.centre = runner.app.centre
        self.clock = clock
        self.sim = sim
        self.console = console
        self.footer = footer
        self.kinds = window_labels(self.centre)

    def render(self) -> RenderableType:
        now = self.clock()
        stats = centre_stats(self.centre, now)
        windows, queues, calls = self._windows(now), self._queues(now), self._calls()
        if self.console.width >= 120:
            lower = Table.grid(padding=(0, 1), expand=True)
            lower.add_column(ratio=1)
            lower.add_column(width=42)
            lower.add_row(queues, calls)
            parts: list[RenderableType] = [self._header(now, stats), windows, lower]
        else:
            parts = [self._header(now, stats), windows, queues, calls]
        parts.append(Text(self.footer, style="dim"))
        return Group(*parts)

    def _header(self, now: float, s: Stats) -> RenderableType:
        name = self.centre.catalog.name
        local = self.clock.local(now)
        phase = day_phase(self.sim, now)
        top = Text.assemble(
            ("模拟时间 Simulated time  ", "dim"),
            (f"{local:%Y-%m-%d} 周{WEEKDAYS_ZH[local.weekday()]} {local:%a}  ", ""),
            (f"{local:%H:%M:%S}", "bold bright_white"),
            (f"   ×{self.clock.speed:g}   ", "dim"), (phase, "green"))
        cells = [
            ("已取号 Issued", str(s.issued), "bright_white"),
            ("已办结 Served", str(s.served), "green"),
            ("等候中 Waiting", str(s.waiting), "yellow"),
            ("平均等候 Avg wait",
             f"{s.average:.1f} 分 min" if s.waits else "—", "bright_white"),
            ("最长等候 Longest", f"{s.longest:.0f} 分 min",
             "red" if s.longest >= 45 else "bright_white"),
            ("开放窗口 Open", f"{s.open_windows}/{len(self.centre.windows)}", "cyan"),
        ]
        grid = Table.grid(expand=True, padding=(0, 1))
        for _ in cells:
            grid.add_column(justify="center")
        grid.add_row(*[Text(label, style="dim") for label, _, _ in cells])
        grid.add_row(*[Text(value, style=f"bold {style}") for _, value, style in cells])
        title = Text.assemble((name.zh, "bold"), "  ", (name.en, "dim"))
        return Panel(Group(top, grid), title=title, box=box.ROUNDED, border_style="blue")

    def _windows(self, now: float) -> RenderableType:
        table = Table(title="窗口 Windows", title_style="bold", box=box.SIMPLE_HEAVY,
                      expand=True, pad_edge=False)
        table.add_column("窗口\nNo.", justify="right", no_wrap=True)
        table.add_column("类型\nKind", no_wrap=True)
        table.add_column("工作人员\nClerk", no_wrap=True)
        table.add_column("状态\nState", no_wrap=True)
        table.add_column("当前号\nTicket", no_wrap=True)
        table.add_column("事项\nItem", overflow="ellipsis", no_wrap=True, ratio=1)
        table.add_column("时长\nMin", justify="right", no_wrap=True)
        for n, w in sorted(self.centre.windows.items()):
            label, style = STATE_LABEL[w.state]
            kind = self.kinds[n]
            t = self.centre.tickets.get(w.ticket) if w.ticket else None
            number = Text("")
            item = ""
            if t is not None:
                number = Text(t.number, style="bold")
                if t.priority.value == "priority":
                    number.append(" 优先", style="yellow")
                item = self.centre.catalog.items[t.item].name.zh
            minutes = "" if w.state is WindowState.CLOSED else f"{(now - w.since) / 60:.0f}"
            table.add_row(f"{n}号", kind, w.clerk or "—", Text(label, style=style), number,
                          item, minutes)
        return table

    def _queues(self, now: float) -> RenderableType:
        table = Table(title="各条线等候 Queues by line", title_style="bold",
                      box=box.SIMPLE_HEAVY, expand=True, pad_edge=False)
        table.add_column("条线\nLine", no_wrap=True)
        table.add_column("等候\nWaiting", justify="right", no_wrap=True)
        table.add_column("最长\nLongest", justify="right", no_wrap=True)
        table.add_column("预计\nEst.", justify="right", no_wrap=True)
        table.add_column("等候最多事项\nTop item", overflow="ellipsis", no_wrap=True, ratio=1)
        by_line: dict[str, list[Ticket]] = {}
        items = self.centre.catalog.items
        for t in self.centre.queue:
            by_line.setdefault(items[t.item].line, []).append(t)
        for line in sorted(self.centre.catalog.lines.values(), key=lambda x: x.prefix):
            waiting = by_line.get(line.id)
            if not waiting:
                continue
            last = max(waiting, key=lambda t: t.serial)
            _, est = self.centre.estimate(last, now)
            longest = max(now - t.issued_at for t in waiting) / 60
            top, count = Counter(t.item for t in waiting).most_common(1)[0]
            table.add_row(
                Text.assemble((line.prefix, "bold"), f" {line.name.zh}"),
                str(len(waiting)),
                Text(f"{longest:.0f} 分", style="red" if longest >= 45 else ""),
                "待开窗" if est == float("inf") else f"≈{est:.0f} 分",
                f"{items[top].name.zh} ×{count}")
        if not by_line:
            table.add_row(Text("暂无等候 Nobody waiting", style="dim"), "", "", "", "")
        return table

    def _calls(self) -> RenderableType:
        calls = list(self.app.calls)  # newest first
        lines = []
        for k, call in enumerate(calls):
            when = self.clock.local(call.at)
            text = Text(f"{when:%H:%M}  ", style="dim")
            text.append(f"请{call.ticket}号到{call.window}号窗口办理业务",
                        style="bold bright_white" if k == 0 else "")
            if any(c.ticket == call.ticket for c in calls[k + 1:]):
                text.append(" 再次", style="yellow")  # a recall, or called again after 过号
            lines.append(text)
        if not lines:
            lines.append(Text("暂无叫号 No calls yet", style="dim"))
        return Panel(Group(*lines), title="最近叫号 Recent calls", box=box.ROUNDED,
                     border_style="yellow")


def window_labels(centre: Centre) -> dict[int, str]:
    """What each window serves, for the screen: its kind, or its lines (a dedicated window)."""
    kinds, lines = kind_names(), centre.catalog.lines
    out = {}
    for w in centre.config.windows:
        if w.skills and w.skills != ("*",):
            out[w.number] = "、".join(lines[x].name.zh if x in lines else x for x in w.skills)
        else:
            out[w.number] = kinds.get(w.kind, (w.kind, ""))[0]
    return out


def day_phase(sim: Simulation, now: float) -> str:
    p = sim.plan
    if sim.day_over:
        return "今日已结束 Closed for the day"
    if now < p.open_at:
        if p.drill and now >= p.at(p.options.open_at):
            until = f"{p.options.reopen_at:%H:%M}"
            return f"演练：暂停受理，{until}恢复 Drill: closed until {until}"
        return "开门前 Before opening"
    if now >= p.at(p.options.close_at):
        return "停止取号，办完为止 Finishing the queue"
    if now >= p.at(p.last_ticket):
        return "停止取号 No more tickets"
    return "受理中 Open"


def progress_line(clock: SimClock, stats: Stats, windows: int) -> str:
    return (f"{clock.local():%H:%M}  已取号 issued {stats.issued} · 已办结 served "
            f"{stats.served} · 等候 waiting {stats.waiting} · 开放窗口 open "
            f"{stats.open_windows}/{windows} · 平均等候 avg wait {stats.average_text} min · "
            f"最长 longest {stats.longest:.0f} min")


def summary(clock: SimClock, stats: Stats, day: DayResult | None, errors: Counter[str],
            ratings: list[Any], drill: bool = False) -> str:
    begin, end = clock.local(clock.start), clock.local()
    out = [
        "── 演示小结 / Demo summary ──",
        f"模拟时段 Simulated: {begin:%Y-%m-%d %H:%M} – {end:%H:%M} (×{clock.speed:g})",
        *([] if day is None else engine_lines(day, drill)),
        f"已取号 Tickets issued: {stats.issued}",
        f"已办结 Tickets served: {stats.served}",
        f"过号 No-shows: {stats.no_show}",
        f"仍在等候 Still waiting: {stats.waiting}",
        f"平均等候 Average wait: {stats.average:.1f} min",
        f"90%等候 90th percentile wait: {stats.percentile(90):.1f} min",
    ]
    if ratings:
        good = sum(1 for r in ratings if r.get("score") == 1)
        out.append(f"满意率 Satisfied: {100 * good / len(ratings):.0f}% of {len(ratings)}")
    if errors:
        odd = ", ".join(f"{k} {v}" for k, v in sorted(errors.items()))
        out.append(f"设备报错 Device errors: {odd}")
    return "\n".join(out)


def engine_lines(day: DayResult, drill: bool) -> list[str]:
    """The simulator's side: the layout, who came, and the drill's backlog."""
    came = [v for v in day.visits if v.ticket is not None or v.outcome == "rejected"]
    refused = sum(1 for v in came if v.outcome == "rejected")
    out = [f"窗口布局 Layout: {day.layout}, {day.windows} windows",
           f"来访居民 Residents arrived: {len(came)}"
           + (f" (未取到号 refused a ticket: {refused})" if refused else "")]
    if drill:
        backlog = max((w for ts, w, _ in day.monitor.series if ts <= day.opened + 60),
                      default=0)
        out.append(f"演练 Drill: 窗口{_hm(day.opened)}才开放 windows opened at "
                   f"{_hm(day.opened)}, 积压 backlog {backlog}")
    return out


def _hm(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, CST).strftime("%H:%M")


# ---- the command ---------------------------------------------------------------------------

@dataclass(slots=True)
class DemoRun:
    """What a demo run leaves: the engine's account of the day and the hub's final state."""

    day: DayResult
    centre: Centre
    errors: Counter[str]


async def run_demo(stop: asyncio.Event, minutes: float = 0, speed: float = 60.0,
                   windows: int = 8, live: bool = True, seed: int = 1,
                   layout_name: str = "mixed", drill: str = "",
                   reopen_at: dt.time = REOPEN_AT, workdir: Path | None = None
                   ) -> DemoRun | None:
    """Run the demo until `stop` is set, `minutes` real minutes have passed (if > 0) or the
    simulated day is over. Cleans up after itself (the journal stays in `workdir` if given)
    and prints a summary."""
    console = Console(highlight=False)
    if speed <= 0 or not 1 <= windows <= 99:
        console.print("speed must be positive and windows between 1 and 99")
        return None
    clock = SimClock(demo_day(), speed)
    try:
        day_plan = plan(clock.day, windows, layout_name, drill, reopen_at)
    except ValueError as e:  # an unknown layout or drill, a reopening out of hours
        console.print(str(e))
        return None
    hub_log = logging.getLogger("onewindow.hub")
    level = hub_log.level
    # Every "nobody is waiting" answer and every ticket taken before the windows open is a
    # hub warning; in a demo they are the normal course of things and would tear up the screen.
    hub_log.setLevel(logging.ERROR)
    try:
        with _folder(workdir) as folder:
            return await _run(stop, console, clock, day_plan, folder, minutes, live, seed)
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
               minutes: float, live: bool, seed: int) -> DemoRun | None:
    port = free_port()
    web_port = _web_port()
    db = folder / "journal.db"
    config = from_dict(demo_config(p.layout, port, db, web_port))
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
                             clerk_names(len(p.layout.config.windows), rng))
            web = f"http://{LOOPBACK}:{web_port}"
            footer = (f"大屏 hall {web}/hall · 取号机 kiosk {web}/kiosk?device=kiosk-1 · "
                      f"主管 supervisor {web}/dashboard (admin / {password})\n"
                      f"MQTT {LOOPBACK}:{port} · 设备 {len(sims)} devices · 日志 journal "
                      f"{db} · Ctrl-C 退出 quit")
            if not live:
                print(_banner(runner, clock, p, len(sims), port), flush=True)
                print(footer, flush=True)
            clock.go()
            sim.start()
            deadline = time.monotonic() + minutes * 60 if minutes > 0 else None
            view = LiveView(runner, clock, sim, console, footer) if live else None
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
    print(summary(clock, centre_stats(centre, clock()), day, sim.errors, runner.app.ratings,
                  p.drill), flush=True)
    return DemoRun(day, centre, sim.errors)


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
    except Exception as e:  # the hub failed; say so rather than hide it
        console.print(f"hub stopped with an error: {e!r}")


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

    from ..hub.store.accounts import Accounts

    password = "demo-" + secrets.token_hex(4)
    accounts = Accounts(db_url)
    try:
        accounts.add("admin", password, "admin", "演示管理员 Demo admin")
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
        line = progress_line(clock, centre_stats(sim.centre, clock()), windows)
        if line != last:
            print(line, flush=True)
            last = line

    while not over():
        await tick(0.25)
        if clock() - stats_at >= SUMMARY_EVERY and time.monotonic() - real_at >= SUMMARY_MIN_REAL:
            stats_at, real_at = clock(), time.monotonic()
            show()
    show()
