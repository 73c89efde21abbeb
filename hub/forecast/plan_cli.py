"""`onewindow plan`: the weekly staffing plan (table, SVG chart, assumptions) and
`onewindow plan --evaluate counts.csv` (forecast accuracy on held-out weeks)."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from xml.sax.saxutils import escape

from rich.console import Console
from rich.table import Table

from ..core.catalog import Catalog
from ..sim.model import WEEKDAY_NAMES, Weather
from .arrivals import (
    ACCURACY_COLUMNS,
    ArrivalForecaster,
    DayForecast,
    Evaluation,
    accuracy_rows,
    evaluate,
    forecast_week,
    load_counts,
    load_weather,
)
from .calendars import HolidayCalendar
from .staffing import LEVEL, SHARE_OVER, DayPlan, handling_minutes, plan_day, plan_slots

console = Console()
if not console.is_terminal:
    console = Console(width=170)


def accuracy_table(ev: Evaluation) -> Table:
    t = Table(title=f"Forecast accuracy, {len(ev.weeks)} held-out weeks "
                    f"({ev.weeks[0]} … {ev.weeks[-1] + dt.timedelta(days=6)})")
    t.caption = ("fit on every day before each week, observed weather; holiday-affected: "
                 "调休 working days, holidays, days before/after them, bridge days; floor: "
                 "error of the " + ("true" if ev.truth else "forecast (plug-in)")
                 + " Poisson mean; "
                 f"{ev.closed_days} closed days forecast 0 and left out")
    for col in ACCURACY_COLUMNS:
        t.add_column(col, justify="left" if col in ("level", "days") else "right")
    for row in accuracy_rows(ev):
        t.add_row(*row)
    return t


def run_evaluate(path: Path, weeks: int = 8, calendar: HolidayCalendar | None = None
                 ) -> Evaluation:
    counts = load_counts(path, calendar)
    ev = evaluate(counts, weeks=weeks, calendar=calendar)
    console.print(accuracy_table(ev))
    fc = ArrivalForecaster.fit(counts, calendar)
    console.print(effects_line(fc))
    return ev


def effects_line(fc: ArrivalForecaster) -> str:
    e = fc.effects()
    parts = [f"base {e.pop('base_daily'):.0f}/day (dry 20 °C Wednesday)"]
    parts += [f"{k} ×{v:.3f}" for k, v in e.items() if abs(v - 1) > 1e-9]
    return f"fitted on {fc.days} open days: " + ", ".join(parts)


def plan_table(days: list[DayForecast], plans: dict[dt.date, DayPlan], target: float) -> Table:
    t = Table(title=f"Windows per half-hour (first cut Erlang C → after the simulation check; "
                    f"target: {LEVEL:.0%} of waits ≤ {target:g} min, queue ≤ 3 per window)")
    t.add_column("", justify="left")
    for f in days:
        tag = ("closed" + (f" {f.info.holiday}" if f.info.holiday else "")) if not f.info.open \
            else "调休" if f.info.adjusted_workday else "after holiday" if f.info.post_holiday \
            else ""
        wx = "" if not f.info.open else ("rain" if f.weather.rain else "dry") + \
            f" {f.weather.temp_c:g}°C" + ("?" if f.weather_assumed else "")
        t.add_column(f"{WEEKDAY_NAMES[f.date.weekday()]} {f.date:%m-%d}\n{wx}"
                     + (f"\n{tag}" if tag else ""), justify="right")
    t.add_row("residents", *[f"{f.total:.0f}" for f in days])
    for k, label in enumerate(plan_slots()):
        cells = []
        for f in days:
            p = plans.get(f.date)
            if p is None:
                cells.append("—")
                continue
            e, w = p.erlang[k], p.windows[k]
            cells.append(f"{w}" if w == e else f"{e}→[bold]{w}[/bold]")
        t.add_row(label, *cells)
    row = []
    for f in days:
        p = plans.get(f.date)
        row.append("—" if p is None else f"{p.window_hours:.0f}")
    t.add_row("window-hours", *row, end_section=True)
    t.add_row("sim p90 wait", *["—" if (p := plans.get(f.date)) is None else
                                f"{p.p90_wait:.1f}{'' if p.met else '!'}" for f in days])
    t.add_row("most waiting", *["—" if (p := plans.get(f.date)) is None else
                                f"{max(c.hall_max for c in p.checks):.0f}" for f in days])
    t.add_row("half-hours missing", *["—" if (p := plans.get(f.date)) is None else
                                      f"{len(p.missed)}" for f in days])
    t.add_row("book elsewhere", *["—" if (p := plans.get(f.date)) is None or p.cap is None
                                  else f"{p.to_rebook}" for f in days])
    return t


def missed_lines(plans: dict[dt.date, DayPlan]) -> list[str]:
    """Each day's half-hours that miss the targets after the last round, with the reason,
    and what an over-capacity day should book onto other days."""
    out = []
    for d, p in sorted(plans.items()):
        day = f"{WEEKDAY_NAMES[d.weekday()]} {d}"
        reasons = p.reasons()
        if reasons:
            out.append(f"{day}: {len(reasons)} half-hour(s) miss p90 ≤ {p.target:g} min after "
                       f"{p.rounds} round(s):")
            for k, why in reasons.items():
                c = p.checks[k]
                out.append(f"  {p.slots[k]}  p90 {c.p90_wait:.0f} min, {c.hall_mean:.0f} "
                           f"waiting (most {c.hall_max:.0f}), {p.windows[k]} windows — {why}")
        late = p.specialised_late()
        if late:
            out.append(f"{day}: met as a whole, but the specialised items wait longer than "
                       f"{p.target:g} min (their own windows: card, cash, pick-up):")
            out.extend(f"  {p.slots[k]}  {why}" for k, why in late.items())
        out.extend(f"{day}: {x}" for x in capacity_lines(p))
    return out


def capacity_lines(p: DayPlan) -> list[str]:
    if p.cap is None or p.capacity is None:
        return []
    out = []
    if p.to_rebook > 0:
        out.append(f"OVER CAPACITY: {p.expected_total:.0f} residents expected, {p.cap} "
                   f"windows can call {p.capacity} before closing ({p.service_minutes:.1f} "
                   f"min each, lunch taken; admission control's can_serve): book "
                   f"{p.to_rebook} residents onto other days")
    peaks = p.peak_excess()
    if peaks:
        out.append(f"at all {p.cap} windows, move {sum(peaks.values())} residents out of "
                   + ", ".join(f"{p.slots[k]} ({n})" for k, n in peaks.items())
                   + " to other half-hours or days to keep p90 within "
                   f"{p.target:g} min")
    return out


def day_table(p: DayPlan, title: str) -> Table:
    """One day's plan per half-hour: forecast, windows needed, the simulated waits and
    people waiting, and why a half-hour misses."""
    t = Table(title=title)
    t.caption = ("arrivals: forecast per half-hour (those before 09:00 spread over the first "
                 "hour); windows: Erlang C → staffed (lunch and the simulation check); "
                 "waiting: people in the hall, mean / most; on duty: windows open with the "
                 "clerk there")
    for col in ("half-hour", "arrivals", "Erlang", "windows", "on duty", "median wait",
                "p90 wait", "waiting", "misses because"):
        t.add_column(col, justify="left" if col in ("half-hour", "misses because")
                     else "right")
    reasons = p.reasons()
    late = p.specialised_late()
    for k, label in enumerate(p.slots):
        c = p.checks[k]
        r = p.rates[k]
        t.add_row(label, "—" if r is None else f"{r * 30:.0f}", f"{p.erlang[k]}",
                  f"{p.windows[k]}", f"{c.on_duty:.1f}", f"{c.median_wait:.0f}",
                  f"{c.p90_wait:.1f}" + ("" if c.met(p.target) else "!"),
                  f"{c.hall_mean:.0f} / {c.hall_max:.0f}",
                  reasons.get(k, "") or (f"(met; {late[k]})" if k in late else ""))
    t.add_row("day", f"{p.expected_total:.0f}", "", f"{p.window_hours:.0f} window-h", "", "",
              f"{p.p90_wait:.1f}", "", "met" if p.met else f"{len(reasons)} half-hour(s) miss",
              end_section=True)
    return t


def run_scenario_plan(catalog: Catalog, path: Path, option: str | None = None,
                      seeds: int | None = None) -> dict[str, DayPlan]:
    """`onewindow plan --scenario`: the windows per half-hour for the described day (its
    arrivals, its windows as the most that can be staffed, its lunch breaks), and for each
    of its options; the per-half-hour table of the day (or of `option`)."""
    import time

    from ..sim import scenario as sn

    sc = sn.load(path, catalog)
    names = [o.name for o in sc.options]
    if option is not None and option not in names:
        raise sn.ScenarioError(f"--option {option!r}: the scenario's options are "
                               + ", ".join(repr(n) for n in names))
    plans: dict[str, DayPlan] = {}
    t0 = time.perf_counter()
    done: dict[object, DayPlan] = {}
    same: dict[str, str] = {}
    for o in sc.options:
        # admission control and pre-review do not change the plan (it staffs for everyone
        # forecast): an option differing only in them shares the plan of the first
        key = (o.layout.config.windows, o.layout.config.policy.mode,
               o.layout.config.policy.ratio, tuple(sorted(o.lunches.items())),
               tuple(o.expected), tuple(sorted(o.lines.items())))
        if key in done:
            plans[o.name] = done[key]
            same[o.name] = next(n for n, q in plans.items() if q is done[key])
            continue
        plans[o.name] = done[key] = plan_day(
            catalog, sc.date, o.slots, o.expected, target=sc.target, seeds=seeds or sc.seeds,
            lay=o.layout, lunches=o.lunches, residents=o.residents())
    took = time.perf_counter() - t0
    shown = option or names[0]
    p = plans[shown]
    o = sc.options[names.index(shown)]
    console.print(f"{sc.name}: {sc.date} {WEEKDAY_NAMES[sc.date.weekday()]}; "
                  + sn.expected_note(o) + f"; at most {p.cap} windows ({o.layout.kinds}); "
                  f"{p.service_minutes:.1f} min per resident", highlight=False)
    console.print(day_table(p, f"Plan for {shown!r}: windows per half-hour (target: "
                               f"{LEVEL:.0%} of waits ≤ {sc.target:g} min, queue ≤ 3 per "
                               "window)"))
    for line in missed_lines({sc.date: p}):
        console.print(line, highlight=False)
    for name, q in plans.items():
        if name != shown and name not in same and (q.missed or q.to_rebook):
            console.print(f"option {name!r}:", highlight=False)
            for line in missed_lines({sc.date: q}):
                console.print("  " + line, highlight=False)
    if len(plans) > 1:
        t = Table(title="Every option planned (the same targets)")
        for col in ("option", "residents", "most windows", "window-hours", "p90 wait",
                    "half-hours missing", "book onto other days", "rounds", "seconds"):
            t.add_column(col, justify="left" if col == "option" else "right")
        for name, q in plans.items():
            if name in same:
                t.add_row(name, f"the plan of {same[name]!r} (admission and pre-review do not "
                          "change it)", *[""] * 7)
                continue
            t.add_row(name, f"{q.expected_total:.0f}", f"{max(q.windows)} of {q.cap}",
                      f"{q.window_hours:.0f}", f"{q.p90_wait:.1f}",
                      ", ".join(q.slots[k] for k in q.missed) or "none",
                      f"{q.to_rebook}", f"{q.rounds}", f"{q.seconds:.1f}")
        console.print(t)
    console.print(f"planned {len(plans)} option(s) in {took:.1f} s", highlight=False)
    return plans


def assumptions(s_minutes: float, target: float, seeds: int, days: list[DayForecast],
                fc: ArrivalForecaster) -> list[str]:
    assumed = [f"{f.date}" for f in days if f.weather_assumed and f.info.open]
    return [
        f"Arrivals: the Poisson log-linear forecast fitted on {fc.days} open days "
        f"(weekday, 调休, post-holiday, rain, temperature, half-hour profile); the calendar "
        f"is chinese-calendar's; weather from the file"
        + (f" (missing, assumed dry 20 °C: {', '.join(assumed)})" if assumed else "") + ".",
        f"Service: {s_minutes:.1f} minutes per resident at a window on average (catalog item "
        "mix as residents ask for it, lognormal service times, second items, missing "
        "materials, walk, wrap-up, no-shows).",
        f"Erlang C (M/M/n, steady state per half-hour): the fewest windows with "
        f"{LEVEL:.0%} of waits ≤ {target:g} min and a mean queue ≤ 3 per window; residents "
        "who come before 09:00 are spread over the first hour.",
        f"Check: the simulator (the real dispatch core, mixed layout with specialised card/"
        f"cash windows staffed first, lunch breaks, clerk speeds) on {seeds} seeds; a "
        f"half-hour misses when its p90 wait is over {target:g} min or the queue is over 3 "
        f"per window more than {SHARE_OVER:.0%} of it; windows are added to the half-hours "
        "that miss (more where a run of misses starts) until none miss, for at most 8 "
        "rounds; the half-hours still missing are named with the reason.",
        "Lunch: the staffed windows are raised so that those not at lunch are the Erlang "
        "number (half the clerks from 11:40, half from 12:25, 30 minutes).",
        "Windows open 09:00–17:00; a window in the plan is a clerk at it (breaks other than "
        "lunch not planned).",
    ]


def svg_chart(days: list[DayForecast], plans: dict[dt.date, DayPlan]) -> str:
    """Two panels: forecast residents per half-hour and windows per half-hour, a line per
    open day (written by hand: no plotting dependency)."""
    colours = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
    W, H, left, top, ph, gap = 760, 520, 60, 30, 190, 60
    slots = plan_slots()
    n = len(slots)
    x_of = [left + (W - left - 130) * k / (n - 1) for k in range(n)]
    open_days = [f for f in days if f.date in plans]
    rates = [[(r or 0.0) * 30 for r in plans[f.date].rates] for f in open_days]
    ymax_a = max([max(r) for r in rates] + [1.0]) * 1.1
    ymax_w = max([max(plans[f.date].windows) for f in open_days] + [1]) + 1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>']

    def panel(y0: float, title: str, ymax: float, series: list[list[float]], step: bool
              ) -> None:
        out.append(f'<text x="{left}" y="{y0 - 8}" font-size="13">{escape(title)}</text>')
        out.append(f'<rect x="{left}" y="{y0}" width="{x_of[-1] - left}" height="{ph}" '
                   'fill="none" stroke="#999"/>')
        for j in range(5):
            v = ymax * j / 4
            y = y0 + ph - ph * j / 4
            out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.0f}</text>')
            out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{x_of[-1]}" y2="{y:.1f}" '
                       'stroke="#eee"/>')
        for k in range(0, n, 2):
            out.append(f'<text x="{x_of[k]:.1f}" y="{y0 + ph + 14}" text-anchor="middle">'
                       f'{slots[k]}</text>')
        for i, ys in enumerate(series):
            pts = []
            for k, v in enumerate(ys):
                y = y0 + ph - ph * v / ymax
                if step and k:
                    pts.append(f"{x_of[k]:.1f},{y0 + ph - ph * ys[k - 1] / ymax:.1f}")
                pts.append(f"{x_of[k]:.1f},{y:.1f}")
            out.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke-width="2" '
                       f'stroke="{colours[i % len(colours)]}"/>')

    panel(top + 10, "Forecast residents per half-hour (by window half-hour)", ymax_a, rates,
          False)
    panel(top + 10 + ph + gap, "Windows staffed (after the simulation check)", ymax_w,
          [[float(w) for w in plans[f.date].windows] for f in open_days], True)
    for i, f in enumerate(open_days):
        y = top + 30 + 18 * i
        c = colours[i % len(colours)]
        out.append(f'<line x1="{W - 115}" y1="{y}" x2="{W - 95}" y2="{y}" stroke="{c}" '
                   'stroke-width="3"/>')
        out.append(f'<text x="{W - 90}" y="{y + 4}">{WEEKDAY_NAMES[f.date.weekday()]} '
                   f'{f.date:%m-%d}</text>')
    out.append("</svg>")
    return "\n".join(out)


def write_plan_csv(path: Path, days: list[DayForecast], plans: dict[dt.date, DayPlan]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["date", "slot", "arrivals_per_30min", "erlang_windows", "windows",
                    "sim_p90_wait", "sim_median_wait", "hall_waiting_mean",
                    "hall_waiting_most", "windows_on_duty", "misses_because"])
        for day in days:
            p = plans.get(day.date)
            if p is None:
                continue
            reasons = p.reasons()
            for k, label in enumerate(p.slots):
                c = p.checks[k]
                w.writerow([day.date.isoformat(), label, f"{(p.rates[k] or 0) * 30:.1f}",
                            p.erlang[k], p.windows[k], f"{c.p90_wait:.1f}",
                            f"{c.median_wait:.1f}", f"{c.hall_mean:.1f}", f"{c.hall_max:.1f}",
                            f"{c.on_duty:.1f}", reasons.get(k, "")])


def run_plan(catalog: Catalog, history: Path, weather: Path | None, week: dt.date,
             target: float = 20.0, out: Path | None = None, seeds: int = 3,
             layout_name: str = "mixed", calendar: HolidayCalendar | None = None,
             max_windows: int | None = None, day: dt.date | None = None
             ) -> dict[dt.date, DayPlan]:
    monday = week - dt.timedelta(days=week.weekday())
    counts = load_counts(history, calendar)
    fc = ArrivalForecaster.fit(counts, calendar)
    wx: dict[dt.date, Weather] = load_weather(weather) if weather else {}
    days = forecast_week(fc, monday, wx)
    s = handling_minutes(catalog)
    plans: dict[dt.date, DayPlan] = {}
    for f in days:
        if f.info.open:
            plans[f.date] = plan_day(catalog, f.date, f.slots, f.expected, target=target,
                                     seeds=seeds, layout_name=layout_name, service_minutes=s,
                                     max_windows=max_windows)
    console.print(effects_line(fc))
    console.print(plan_table(days, plans, target))
    for d in [day] if day is not None else []:
        if d in plans:
            console.print(day_table(plans[d], f"{WEEKDAY_NAMES[d.weekday()]} {d}: per "
                                              "half-hour"))
    console.print("[bold]Assumptions[/bold]")
    for line in assumptions(s, target, seeds, days, fc):
        console.print(f" • {line}")
    for line in missed_lines(plans):
        console.print(line, highlight=False)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "plan.svg").write_text(svg_chart(days, plans), encoding="utf-8")
        write_plan_csv(out / "plan.csv", days, plans)
        (out / "assumptions.txt").write_text(
            "\n".join(assumptions(s, target, seeds, days, fc)) + "\n", encoding="utf-8")
        console.print(f"plan → {out}/plan.csv, plan.svg, assumptions.txt")
    return plans
