"""`onewindow demo`: a whole simulated centre's day on this machine, with no setup.

Everything is real except the people and the clock: the hub runs with the embedded broker
and a SQLite journal in a temporary folder, and every keypad, LED board, button box, kiosk
and the hall board is a `SimDevice` speaking protocol v1 over MQTT. Simulated residents take
tickets at the boxes and the kiosk; simulated clerks open their windows at 09:00 and call,
start and complete tickets on their keypads. Time runs `speed` times faster than real time
from 08:50 China time on the most recent weekday, for the hub and the people alike.

The live view reads the hub's state directly from `runner.app.centre`: it runs in the same
process, and a demo screen is allowed to look behind the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import logging
import math
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import aiomqtt
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..hub.catalog import SAMPLE
from ..hub.config import from_dict
from ..hub.core.catalog import COMPREHENSIVE, Item
from ..hub.core.centre import Centre
from ..hub.core.model import Ticket, TicketState, WindowState
from ..hub.mqtt.broker import LOOPBACK, free_port
from ..hub.runner import HubRunner, serve
from ..protocol import ow_protocol as proto
from .simdevice import DeviceError, SimDevice

log = logging.getLogger("onewindow.demo")

CENTRE_ID = "demo"
CST = dt.timezone(dt.timedelta(hours=8), "CST")
WEEKDAYS_ZH = "一二三四五六日"

START = dt.time(8, 50)  # the simulation starts with the doors open, ten minutes early
OPEN = dt.time(9, 0)  # clerks open their windows
LAST_TICKET = dt.time(16, 45)  # the ticket machines stop issuing
CLOSE = dt.time(17, 0)  # clerks close once their queue is empty

# Arrivals per hour for eight windows (scaled with the window count), linear in between:
# a crowd at the door, the mid-morning peak, a lunch-time lull, a smaller afternoon peak.
ARRIVALS_PER_HOUR = (
    ((8, 50), 50), ((9, 0), 56), ((9, 30), 74), ((10, 0), 80), ((10, 30), 76),
    ((11, 0), 60), ((11, 30), 42), ((12, 0), 26), ((12, 30), 22), ((13, 0), 30),
    ((13, 30), 42), ((14, 0), 50), ((14, 30), 50), ((15, 0), 44), ((15, 30), 36),
    ((16, 0), 26), ((16, 30), 14), ((16, 45), 0),
)
DOOR_CROWD = 6  # residents already at the door at 08:50

# How many residents come for each department line, relative to one another. Within a
# line, quick items are asked for more often than long ones (a certificate or a card
# replacement is everyday business; a housing application is not).
LINE_POPULARITY = {
    "social": 3.2, "medical": 3.0, "household": 1.6, "general": 1.5, "civil": 1.2,
    "employment": 1.2, "elderly": 1.1, "health": 0.8, "family": 0.8, "housing": 0.6,
    "disability": 0.6, "veterans": 0.4,
}
PRIORITY_SHARE = {"elderly": 0.4, "disability": 0.4}  # priority residents per line
PRIORITY_DEFAULT = 0.08  # overall about one in ten
RESIDENT_TOKEN_SHARE = 0.15  # swiped an ID card at the kiosk
KIOSK_SHARE = 0.35
NO_SHOW_SHARE = 0.05  # not there when called (过号)
NO_SHOW_RETURNS = 0.5  # of those, come back and are called again after the requeue
PAUSE_SHARE = 0.025  # a short break after a ticket
RATING_SHARE = 0.55
RATINGS = ((1, 0.9), (2, 0.08), (3, 0.02))  # 满意 / 基本满意 / 不满意

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
    """Today in China if it is a weekday, else the Friday before."""
    d = today or dt.datetime.now(CST).date()
    while d.weekday() >= 5:
        d -= dt.timedelta(days=1)
    return d


class SimClock:
    """Simulated epoch seconds: `start` until `go()`, then `speed` seconds per real second."""

    def __init__(self, day: dt.date, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.day = day
        self.speed = speed
        self.start = self.at(START)
        self._t0: float | None = None

    def at(self, t: dt.time) -> float:
        return dt.datetime.combine(self.day, t, CST).timestamp()

    def go(self) -> None:
        self._t0 = time.monotonic()

    def __call__(self) -> float:
        if self._t0 is None:
            return self.start
        return self.start + (time.monotonic() - self._t0) * self.speed

    def local(self, ts: float | None = None) -> dt.datetime:
        return dt.datetime.fromtimestamp(self() if ts is None else ts, CST)

    async def sleep(self, seconds: float) -> None:
        """Sleep for simulated seconds."""
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    async def sleep_until(self, ts: float) -> None:
        await self.sleep(ts - self())


def arrival_rate(ts: float, clock: SimClock, scale: float) -> float:
    """Residents per simulated second at `ts`."""
    knots = [(clock.at(dt.time(h, m)), r) for (h, m), r in ARRIVALS_PER_HOUR]
    if ts <= knots[0][0]:
        rate = knots[0][1]
    elif ts >= knots[-1][0]:
        rate = knots[-1][1]
    else:
        for (t0, r0), (t1, r1) in itertools.pairwise(knots):
            if t0 <= ts < t1:
                rate = r0 + (r1 - r0) * (ts - t0) / (t1 - t0)
                break
    return rate * scale / 3600.0


# ---- the centre ---------------------------------------------------------------------------

def window_kinds(windows: int) -> list[str]:
    """Mostly comprehensive windows; from six windows on, a card window and a cash window."""
    if windows >= 6:
        return [COMPREHENSIVE] * (windows - 2) + ["card", "cash"]
    return [COMPREHENSIVE] * windows


def demo_config(windows: int, port: int, db: Path, web_port: int | None = None
                ) -> dict[str, Any]:
    devices: list[dict[str, Any]] = [
        {"id": "box-1", "role": "box"}, {"id": "box-2", "role": "box"},
        {"id": "kiosk-1", "role": "kiosk"}, {"id": "hall-1", "role": "hall"},
    ]
    for n in range(1, windows + 1):
        devices.append({"id": f"kp-{n}", "role": "keypad", "window": n})
        devices.append({"id": f"led-{n}", "role": "led", "window": n})
    web = {} if web_port is None else {
        "web": {"host": LOOPBACK, "port": web_port}}
    status = {} if web_port is None else {"status_url": f"http://{LOOPBACK}:{web_port}/t/"}
    return {
        **web,
        "centre": {"id": CENTRE_ID, **status},
        "store": {"url": f"sqlite:///{db}"},
        "broker": {"embedded_port": port},
        "windows": [{"number": n, "kind": k}
                    for n, k in enumerate(window_kinds(windows), start=1)],
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


def popularity(item: Item) -> float:
    return LINE_POPULARITY.get(item.line, 1.0) / item.minutes ** 0.7


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


@dataclass(slots=True)
class Resident:
    item: str
    priority: bool
    absent_calls: int  # calls the resident misses: 0 usually, 1 if back later, many if gone
    calls: int = 0


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


class Station:
    """A simulated device used by several simulated people: one key press at a time."""

    def __init__(self, dev: SimDevice) -> None:
        self.dev = dev
        self._lock = asyncio.Lock()

    async def send(self, typ: str, **fields: Any) -> dict[str, Any]:
        async with self._lock:
            return await self.dev.send(typ, **fields)


# ---- the simulation -------------------------------------------------------------------------

class Simulation:
    def __init__(self, runner: HubRunner, clock: SimClock, rng: random.Random,
                 devices: dict[str, SimDevice]) -> None:
        self.runner = runner
        self.centre = runner.app.centre
        self.clock = clock
        self.rng = rng
        self.devices = devices
        self.residents: dict[str, Resident] = {}  # by ticket number
        self.errors: Counter[str] = Counter()
        self.arrivals_done = False
        served_kinds = {w.kind for w in self.centre.windows.values()}
        self.items = [i for i in self.centre.catalog.items.values()
                      if served_kinds.intersection(i.window_kinds)]
        self.weights = [popularity(i) for i in self.items]
        self.scale = len(self.centre.windows) / 8.0
        self.tasks: set[asyncio.Task[None]] = set()
        self.stations: dict[str, Station] = {}

    def spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("demo task %s failed", task.get_name(), exc_info=task.exception())
            self.errors["crashed"] += 1

    def start(self, clerks: list[str]) -> None:
        self.spawn(self.arrivals(), "demo-arrivals")
        for n, name in zip(sorted(self.centre.windows), clerks, strict=True):
            self.spawn(self.clerk(n, name), f"demo-clerk-{n}")

    async def stop(self) -> None:
        while self.tasks:
            tasks = list(self.tasks)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def day_over(self) -> bool:
        return (self.arrivals_done and self.clock() >= self.clock.at(CLOSE)
                and all(w.state is WindowState.CLOSED for w in self.centre.windows.values()))

    # ---- residents ----
    async def arrivals(self) -> None:
        """A Poisson process whose rate follows the day's curve (thinning)."""
        clock, rng = self.clock, self.rng
        peak = max(r for _, r in ARRIVALS_PER_HOUR) * self.scale / 3600.0
        end = clock.at(LAST_TICKET)
        n = 0
        for _ in range(max(1, round(DOOR_CROWD * self.scale))):
            n += 1
            self.spawn(self.resident(), f"demo-resident-{n}")
            await clock.sleep(rng.uniform(3, 15))
        t = clock()
        while True:
            t += rng.expovariate(peak)
            if t >= end:
                break
            if rng.random() * peak > arrival_rate(t, clock, self.scale):
                continue
            await clock.sleep_until(t)
            n += 1
            self.spawn(self.resident(), f"demo-resident-{n}")
        self.arrivals_done = True

    async def resident(self) -> None:
        rng = self.rng
        item = rng.choices(self.items, self.weights)[0]
        priority = rng.random() < PRIORITY_SHARE.get(item.line, PRIORITY_DEFAULT)
        fields: dict[str, Any] = {"item": item.id}
        if priority:
            fields["priority"] = "priority"
        at_kiosk = rng.random() < KIOSK_SHARE
        if at_kiosk and rng.random() < RESIDENT_TOKEN_SHARE / KIOSK_SHARE:
            fields["resident"] = f"{rng.getrandbits(64):016x}"
        dev = self.devices["kiosk-1"] if at_kiosk else self.devices[rng.choice(("box-1",
                                                                                 "box-2"))]
        try:
            reply = await self.station(dev).send("take", **fields)
        except (DeviceError, TimeoutError, aiomqtt.MqttError) as e:
            self.errors[getattr(e, "code", None) or type(e).__name__] += 1
            return
        absent = 0
        gone = NO_SHOW_SHARE * (1 - NO_SHOW_RETURNS)
        if reply.get("wait", 0) > 60:
            gone += 0.1  # a long estimate on the slip: some leave and come back tomorrow
        r = rng.random()
        if r < gone:
            absent = 99
        elif r < gone + NO_SHOW_SHARE * NO_SHOW_RETURNS:
            absent = 1
        number = reply.get("ticket")
        if isinstance(number, str):
            self.residents[number] = Resident(item.id, priority, absent)

    def station(self, dev: SimDevice) -> Station:
        if dev.dev not in self.stations:
            self.stations[dev.dev] = Station(dev)
        return self.stations[dev.dev]

    # ---- clerks ----
    async def clerk(self, window: int, name: str) -> None:
        clock, rng = self.clock, self.rng
        keypad = self.station(self.devices[f"kp-{window}"])
        await clock.sleep_until(clock.at(OPEN) + rng.uniform(0, 60))
        while True:
            try:
                await keypad.send("open", clerk=name)
                break
            except DeviceError as e:
                if e.code == "already_open":
                    break
                self.errors[str(e.code)] += 1
                await clock.sleep(30)
            except (TimeoutError, aiomqtt.MqttError) as e:
                self.errors[type(e).__name__] += 1
                await clock.sleep(30)
        lunch = self._lunch_time(window)
        while True:
            try:
                if lunch is not None and clock() >= lunch:
                    lunch = None
                    await self._pause(keypad, lognormal(rng, 30 * 60, 0.15))
                    continue
                if not await self._serve_one(window, keypad):
                    return  # closed for the day
            except DeviceError as e:
                self.errors[str(e.code)] += 1
                if e.code == "window_paused":
                    with contextlib.suppress(DeviceError):
                        await keypad.send("resume")
                await clock.sleep(rng.uniform(10, 30))
            except (TimeoutError, aiomqtt.MqttError) as e:
                self.errors[type(e).__name__] += 1
                await clock.sleep(30)

    def _lunch_time(self, window: int) -> float | None:
        """Staggered lunch: half the windows at 11:40, the others at 12:25."""
        if len(self.centre.windows) < 2:
            return None
        base = self.clock.at(dt.time(11, 40) if window % 2 else dt.time(12, 25))
        return base + self.rng.uniform(0, 10 * 60)

    async def _pause(self, keypad: Station, seconds: float) -> None:
        await keypad.send("pause")
        await self.clock.sleep(seconds)
        await keypad.send("resume")

    async def _serve_one(self, window: int, keypad: Station) -> bool:
        """Call, wait for the resident, serve, complete. False once closed for the day."""
        clock, rng = self.clock, self.rng
        try:
            reply = await keypad.send("call")
        except DeviceError as e:
            if e.code != "queue_empty":
                raise
            if clock() >= clock.at(CLOSE):
                await keypad.send("close")
                return False
            await clock.sleep(rng.uniform(20, 45))  # nobody waiting: look up again soon
            return True
        number = reply.get("ticket")
        ticket = self.centre.by_number.get(number) if isinstance(number, str) else None
        if ticket is None:
            return True
        resident = self.residents.get(ticket.number)
        slow = 1.5 if resident is not None and resident.priority else 1.0
        if resident is not None:
            resident.calls += 1
            if resident.calls <= resident.absent_calls:
                await clock.sleep(rng.uniform(40, 60))
                await keypad.send("recall")
                await clock.sleep(rng.uniform(40, 60))
                await keypad.send("skip")  # 过号: back of the line once, then no-show
                return True
        await clock.sleep(min(120.0, max(8.0, lognormal(rng, 25.0 * slow, 0.5))))
        await keypad.send("start")
        minutes = self.centre.catalog.items[ticket.item].minutes
        service = lognormal(rng, 0.9 * minutes * 60 * (1.15 if slow > 1 else 1.0), 0.45)
        await clock.sleep(min(4 * minutes * 60, max(0.25 * minutes * 60, service)))
        await keypad.send("complete")
        if rng.random() < RATING_SHARE:
            score = rng.choices([s for s, _ in RATINGS], [w for _, w in RATINGS])[0]
            with contextlib.suppress(DeviceError):
                await keypad.send("rate", ticket=ticket.number, score=score)
        await clock.sleep(rng.uniform(5, 30))  # files the papers
        if rng.random() < PAUSE_SHARE:
            await self._pause(keypad, rng.uniform(2, 6) * 60)
        return True


# ---- views ------------------------------------------------------------------------------------

def _min(m: float) -> str:
    return "—" if m == float("inf") else f"{m:.0f}"


class LiveView:
    def __init__(self, runner: HubRunner, clock: SimClock, sim: Simulation,
                 console: Console, footer: str) -> None:
        self.app = runner.app
        self.centre = runner.app.centre
        self.clock = clock
        self.sim = sim
        self.console = console
        self.footer = footer
        self.kinds = kind_names()

    def render(self) -> RenderableType:
        now = self.clock()
        stats = centre_stats(self.centre, now)
        windows, queues, calls = self._windows(now), self._queues(now), self._calls()
        if self.console.width >= 120:
            lower: RenderableType = Table.grid(padding=(0, 1), expand=True)
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
        if now < self.clock.at(OPEN):
            phase = "开门前 Before opening"
        elif self.sim.day_over:
            phase = "今日已结束 Closed for the day"
        elif now >= self.clock.at(CLOSE):
            phase = "停止取号，办完为止 Finishing the queue"
        elif now >= self.clock.at(LAST_TICKET):
            phase = "停止取号 No more tickets"
        else:
            phase = "受理中 Open"
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
            kind = self.kinds.get(w.kind, (w.kind, ""))[0]
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


def progress_line(clock: SimClock, stats: Stats, windows: int) -> str:
    return (f"{clock.local():%H:%M}  已取号 issued {stats.issued} · 已办结 served "
            f"{stats.served} · 等候 waiting {stats.waiting} · 开放窗口 open "
            f"{stats.open_windows}/{windows} · 平均等候 avg wait {stats.average_text} min · "
            f"最长 longest {stats.longest:.0f} min")


def summary(clock: SimClock, stats: Stats, sim: Simulation | None, ratings: list[Any]
            ) -> str:
    begin, end = clock.local(clock.start), clock.local()
    out = [
        "── 演示小结 / Demo summary ──",
        f"模拟时段 Simulated: {begin:%Y-%m-%d %H:%M} – {end:%H:%M} (×{clock.speed:g})",
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
    if sim is not None and sim.errors:
        odd = ", ".join(f"{k} {v}" for k, v in sorted(sim.errors.items()))
        out.append(f"设备报错 Device errors: {odd}")
    return "\n".join(out)


# ---- the command ---------------------------------------------------------------------------

async def run_demo(stop: asyncio.Event, minutes: float = 0, speed: float = 60.0,
                   windows: int = 8, live: bool = True, seed: int = 1) -> None:
    """Run the demo until `stop` is set, `minutes` real minutes have passed (if > 0) or the
    simulated day is over. Cleans up after itself and prints a summary."""
    console = Console(highlight=False)
    if speed <= 0 or not 1 <= windows <= 99:
        console.print("speed must be positive and windows between 1 and 99")
        return
    rng = random.Random(seed)
    clock = SimClock(demo_day(), speed)
    hub_log = logging.getLogger("onewindow.hub")
    level = hub_log.level
    # Every "nobody is waiting" answer and every ticket taken before 09:00 is a hub warning;
    # in a demo they are the normal course of things and would tear up the screen.
    hub_log.setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="onewindow-demo-") as tmp:
        port = free_port()
        web_port = _web_port()
        db = Path(tmp) / "journal.db"
        config = from_dict(demo_config(windows, port, db, web_port))
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
                    return
                sims = await _connect(devices, config.devices, port)
                sim = Simulation(runner, clock, rng, sims)
                clerks = clerk_names(windows, rng)
                web = f"http://{LOOPBACK}:{web_port}"
                footer = (f"大屏 hall {web}/hall · 取号机 kiosk {web}/kiosk?device=kiosk-1 · "
                          f"主管 supervisor {web}/dashboard (admin / {password})\n"
                          f"MQTT {LOOPBACK}:{port} · 设备 {len(sims)} devices · 日志 journal "
                          f"{tmp}/journal.db · Ctrl-C 退出 quit")
                if not live:
                    name = runner.app.centre.catalog.name
                    print(f"OneWindow demo: {name.zh} / {name.en}; {windows} windows, "
                          f"{len(sims)} devices on MQTT {LOOPBACK}:{port}, "
                          f"×{speed:g} from {clock.local():%Y-%m-%d %H:%M}", flush=True)
                    print(footer, flush=True)
                clock.go()
                sim.start(clerks)
                deadline = time.monotonic() + minutes * 60 if minutes > 0 else None
                view = LiveView(runner, clock, sim, console, footer) if live else None
                await _watch(stop, deadline, hub, sim, clock, view, console)
                await sim.stop()
        finally:
            if sim is not None:
                await sim.stop()
            hub_stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(hub), 15)
            except TimeoutError:
                hub.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await hub
            except Exception as e:  # the hub failed; say so rather than hide it
                console.print(f"hub stopped with an error: {e!r}")
            hub_log.setLevel(level)
        if runner is not None:
            centre = runner.app.centre
            text = summary(clock, centre_stats(centre, clock()), sim, runner.app.ratings)
            print(text, flush=True)


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


async def _connect(stack: contextlib.AsyncExitStack, specs: Any, port: int
                   ) -> dict[str, SimDevice]:
    devs = {d.id: SimDevice(CENTRE_ID, d.id, d.role, LOOPBACK, port, window=d.window)
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
