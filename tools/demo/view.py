"""The demo's terminal: the live screen (the centre's state read straight from the hub's
`Centre`: it runs in the same process, and a demo screen is allowed to look behind the
protocol), the progress lines without it, and the summary at the end. The figures come from
the simulator's statistics (hub/sim/metrics.py); this module only lays them out."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ...hub.catalog import SAMPLE
from ...hub.core import booking
from ...hub.core.centre import Centre
from ...hub.core.model import Ticket, WindowState
from ...hub.runner import HubRunner
from ...hub.sim.metrics import DayResult, Tally, tally
from ...hub.sim.model import local_hm
from .actuation import Simulation
from .scenario import SimClock

WEEKDAYS_ZH = "一二三四五六日"
STATE_LABEL = {
    WindowState.CLOSED: ("未开放 Closed", "dim"),
    WindowState.IDLE: ("空闲 Idle", "green"),
    WindowState.CALLING: ("叫号中 Calling", "bold yellow"),
    WindowState.SERVING: ("办理中 Serving", "cyan"),
    WindowState.PAUSED: ("暂停 Paused", "magenta"),
}


class LiveView:
    def __init__(self, runner: HubRunner, clock: SimClock, sim: Simulation,
                 console: Console, footer: str, where: str = "") -> None:
        self.app = runner.app
        self.centre = runner.app.centre
        self.clock = clock
        self.sim = sim
        self.console = console
        self.footer = footer  # the pages' addresses and login: shown first (access_lines)
        self.where = where  # broker, devices, journal: last, the first cropped
        self.kinds = window_labels(self.centre)

    def render(self) -> RenderableType:
        now = self.clock()
        stats = tally(self.centre, now)
        windows, queues, calls = self._windows(now), self._queues(now), self._calls()
        # The addresses and the login come first: a terminal of 24 lines crops the bottom
        # of a taller view, and they are what a person needs to try the pages.
        parts: list[RenderableType] = [Text(self.footer, style="bold")]
        if self.console.width >= 120:
            lower = Table.grid(padding=(0, 1), expand=True)
            lower.add_column(ratio=1)
            lower.add_column(width=42)
            lower.add_row(queues, calls)
            parts += [self._header(now, stats), windows, lower]
        else:
            parts += [self._header(now, stats), windows, queues, calls]
        if self.where:
            parts.append(Text(self.where, style="dim"))
        return Group(*parts)

    def _header(self, now: float, s: Tally) -> RenderableType:
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
             f"{s.waits.mean:.1f} 分 min" if s.waits else "—", "bright_white"),
            ("最长等候 Longest", f"{s.longest_waiting:.0f} 分 min",
             "red" if s.longest_waiting >= 45 else "bright_white"),
            ("开放窗口 Open", f"{s.open_windows}/{len(self.centre.windows)}", "cyan"),
        ]
        grid = Table.grid(expand=True, padding=(0, 1))
        for _ in cells:
            grid.add_column(justify="center")
        grid.add_row(*[Text(label, style="dim") for label, _, _ in cells])
        grid.add_row(*[Text(value, style=f"bold {style}") for _, value, style in cells])
        a = ahead_counts(self.centre, now)
        ahead = Text.assemble(
            ("预约 Booked ", "dim"), (str(a.booked), "bold"),
            ("  已签到 Checked in ", "dim"), (str(a.checked_in + a.late), "bold"),
            ("  未到 No-shows ", "dim"), (str(a.no_show), "bold"),
            ("  远程取号 Remote ", "dim"), (str(a.remote), "bold"),
            ("  通知 Notices ", "dim"), (str(a.near + a.called), "bold"),
            ("  号源控制 Admission ", "dim"), (self.app.admission, "bold"), justify="center")
        title = Text.assemble((name.zh, "bold"), "  ", (name.en, "dim"))
        return Panel(Group(top, grid, ahead), title=title, box=box.ROUNDED,
                     border_style="blue")

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


def kind_names() -> dict[str, tuple[str, str]]:
    """Window kind id -> (zh, en), from the sample catalog (the core keeps only the ids)."""
    try:
        raw = json.loads(resources.files("onewindow.hub.catalog").joinpath(SAMPLE)
                         .read_text(encoding="utf-8"))
        return {k["id"]: (k["zh"], k["en"]) for k in raw["window_kinds"]}
    except (OSError, ValueError, KeyError):
        return {}


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


def progress_line(clock: SimClock, stats: Tally, windows: int) -> str:
    average = f"{stats.waits.mean:.1f}" if stats.waits else "—"
    return (f"{clock.local():%H:%M}  已取号 issued {stats.issued} · 已办结 served "
            f"{stats.served} · 等候 waiting {stats.waiting} · 开放窗口 open "
            f"{stats.open_windows}/{windows} · 平均等候 avg wait {average} min · "
            f"最长 longest {stats.longest_waiting:.0f} min")


def summary(clock: SimClock, stats: Tally, day: DayResult | None, errors: Counter[str],
            ratings: list[Any], drill: bool = False, ahead: list[str] | None = None) -> str:
    begin, end = clock.local(clock.start), clock.local()
    out = [
        "── 演示小结 / Demo summary ──",
        f"模拟时段 Simulated: {begin:%Y-%m-%d %H:%M} – {end:%H:%M} (×{clock.speed:g})",
        *([] if day is None else engine_lines(day, drill)),
        f"已取号 Tickets issued: {stats.issued}",
        f"已办结 Tickets served: {stats.served}",
        f"过号 No-shows: {stats.no_show}",
        f"仍在等候 Still waiting: {stats.waiting}",
        f"平均等候 Average wait: {stats.waits.mean:.1f} min",
        f"90%等候 90th percentile wait: {stats.waits.percentile(90):.1f} min",
        *(ahead or []),
    ]
    if ratings:
        # 满意率 on the national five levels: 非常满意, 满意, 基本满意 (scores 5-3; a
        # three-key rating is kept as 5 / 3 / 1)
        good = sum(1 for r in ratings if (r.get("score") or 0) >= 3)
        out.append(f"满意率 Satisfied: {100 * good / len(ratings):.0f}% of {len(ratings)}")
    if errors:
        odd = ", ".join(f"{k} {v}" for k, v in sorted(errors.items()))
        out.append(f"设备报错 Device errors: {odd}")
    return "\n".join(out)


@dataclass(frozen=True, slots=True)
class AheadCounts:
    """Today's bookings (the core's counts), remote tickets, the notices due for them by
    kind and what became of them (sent, or dropped: the ticket moved on before it went)."""

    booked: int
    checked_in: int
    late: int
    no_show: int
    remote: int
    near: int
    called: int
    sent: int
    dropped: int


def ahead_counts(centre: Centre, now: float) -> AheadCounts:
    day = centre.calendar.day_id(now)
    counts = booking.counts_of(centre, day)
    remote = sum(1 for t in centre.tickets.values() if t.source == "remote" and t.day == day)
    due = Counter(n.kind for n in centre.notices.values())
    went = Counter(s for n in centre.notices.values() for s in n.channels.values())
    return AheadCounts(counts["booked"], counts["checked_in"], counts["late"],
                       counts["no_show"], remote, due["near"], due["called"], went["sent"],
                       went["dropped"])


def ahead_lines(a: AheadCounts, mode: str, warned: int, refused: int) -> list[str]:
    """The summary's bookings, remote tickets and admission control (the hub's figures)."""
    return [
        f"预约 Bookings: 已预约 booked {a.booked} · 已签到 checked in {a.checked_in} · "
        f"迟到 late {a.late} · 未到 no-shows {a.no_show}",
        f"远程取号 Remote tickets: {a.remote} · 通知 notices due: 临近 near {a.near}, "
        f"叫号 called {a.called} · 已发送 sent {a.sent} · 已作废 dropped {a.dropped}",
        f"号源控制 Admission ({mode}): 提示可能办不完 warned {warned} · "
        f"拒绝取号 refused {refused}",
    ]


def engine_lines(day: DayResult, drill: bool) -> list[str]:
    """The simulator's side: the layout, who came, and the drill's backlog."""
    came = [v for v in day.visits if v.ticket is not None or v.outcome == "rejected"]
    refused = sum(1 for v in came if v.outcome == "rejected")
    out = [f"窗口布局 Layout: {day.layout}, {day.windows} windows",
           f"来访居民 Residents arrived: {len(came)}"
           + (f" (未取到号 refused a ticket: {refused})" if refused else "")]
    if drill:
        opened = local_hm(day.opened)
        out.append(f"演练 Drill: 窗口{opened}才开放 windows opened at {opened}, "
                   f"积压 backlog {day.monitor.backlog(day.opened)}")
    return out
