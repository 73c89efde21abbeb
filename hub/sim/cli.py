"""`onewindow sim`: one day, the policy comparison, a reopening drill, synthetic history."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..core.catalog import Catalog
from ..core.policy import OrderingPolicy
from .bookings import AheadModel, SimAhead
from .engine import DayOptions, Engine
from .metrics import DayMetrics, DayResult, mean_metrics
from .model import (
    WEEKDAY_NAMES,
    ArrivalModel,
    Visit,
    Weather,
    calendar_sets,
    day_info,
    local_hm,
)
from .policies import LAYOUTS, Layout, layout
from .prereview import PreReviewModel

console = Console()
if not console.is_terminal:
    console = Console(width=170)


@dataclass(frozen=True, slots=True)
class Targets:
    p90_wait: float = 20.0  # minutes
    share_over3: float = 0.10

    def met(self, m: DayMetrics) -> bool:
        return m.p90_wait <= self.p90_wait and m.share_over3 <= self.share_over3 and not m.expired


@dataclass(frozen=True, slots=True)
class RunOptions:
    """The CLI's policy, staffing and admission options for a day or a comparison."""

    policy: str = "ratio"  # ratio | aging (hub/core/policy.py)
    ratio: int = 2
    lunch: bool = True
    admission: str = "off"  # off | warn | stop (hub/sim/admission.py)

    def ordering(self) -> OrderingPolicy:
        return OrderingPolicy(mode="aging" if self.policy == "aging" else "ratio",
                              ratio=self.ratio)

    def day(self) -> DayOptions:
        return DayOptions(lunch=self.lunch)

    def label(self) -> str:
        return (f"policy {self.policy}" + (f" {self.ratio}:1" if self.policy == "ratio" else "")
                + ("" if self.lunch else ", no lunch")
                + (f", admission {self.admission}" if self.admission != "off" else ""))


def _layout(name: str, catalog: Catalog, n: int, d: dt.date,
            opts: RunOptions | None = None) -> Layout:
    hol, work = calendar_sets(d - dt.timedelta(days=7), d + dt.timedelta(days=120))
    return layout(name, catalog, n, holidays=hol, workdays=work,
                  policy=(opts or RunOptions()).ordering())


def describe_day(d: dt.date, weather: Weather, arrivals: ArrivalModel) -> str:
    info = day_info(d)
    eff = arrivals.effects(info, weather)
    what = ", ".join(f"{k} ×{v:.2f}" for k, v in eff.items() if v != 1.0) or "no effects"
    kind = (f"closed ({info.holiday or 'weekend'})" if not info.open else
            "adjusted workday" if info.adjusted_workday else "open")
    return (f"{d.isoformat()} {WEEKDAY_NAMES[d.weekday()]}, {kind}, "
            f"{'rain' if weather.rain else 'dry'} {weather.temp_c:g} °C: expected "
            f"{arrivals.day_mean(info, weather):.0f} residents ({what})")


def metrics_table(title: str, rows: list[tuple[str, DayMetrics]], targets: Targets | None = None
                  ) -> Table:
    t = Table(title=title)
    t.caption = ("waits and overtime in minutes; hall: people waiting in the hall, mean / "
                 "most at once, and the share of open time more than 3 waited; q>3/window: "
                 "share of open time some pool had more than 3 waiting per window")
    for col in ("layout", "visits", "median wait", "mean wait", "p90 wait", "max wait",
                "hall", "hall >3", "q>3/window", "served/h", "one-window", "one-trip",
                "overtime"):
        t.add_column(col, justify="left" if col == "layout" else "right")
    for label, m in rows:
        ok = targets is None or targets.met(m)
        t.add_row(label, f"{m.visits:.0f}", f"{m.median_wait:.1f}", f"{m.mean_wait:.1f}",
                  f"{m.p90_wait:.1f}", f"{m.max_wait:.0f}",
                  f"{m.hall_mean:.1f} / {m.longest_queue:.0f}", f"{m.hall_over3:.0%}",
                  f"{m.share_over3:.0%}", f"{m.throughput:.0f}",
                  f"{m.one_window:.1%}", f"{m.one_trip:.1%}", f"{m.last_close:.0f}",
                  style=None if ok else "dim")
    return t


def ahead_lines(m: DayMetrics) -> list[str]:
    """A day's bookings and remote tickets (hub/sim/bookings.py), as `run_one` prints them."""
    return [
        f"bookings: {m.booked:.0f} booked, {m.checked_in:.0f} checked in within the window, "
        f"{m.late_checkins:.0f} late (a normal ticket), {m.booking_no_show:.0f} no-shows, "
        f"{m.booking_full:.0f} found no slot left",
        f"remote tickets: {m.remote:.0f} ({m.remote_missed:.0f} never came); notices due: "
        f"near {m.notices_near:.0f}, called {m.notices_called:.0f}",
        f"mean wait to the first call: booked (from check-in) {m.appointment_wait:.1f} min, "
        f"walk-ins {m.walkin_wait:.1f} min",
    ]


def prereview_line(m: DayMetrics) -> str:
    """The day's pre-review (hub/sim/prereview.py), as `run_one` prints it."""
    return (f"pre-review: {m.kiosk_left:.0f} sent away at the kiosk before a ticket (wasted "
            f"waits avoided), {m.queued_anyway:.0f} queued anyway, {m.returned:.0f} returned "
            f"at the window for materials, {m.comebacks:.0f} back after being sent away; "
            f"one-trip rate {m.one_trip:.1%}")


def run_one(catalog: Catalog, d: dt.date, weather: Weather, name: str, windows: int,
            seed: int, scale: float, bookings: AheadModel | None = None, days: int = 1,
            opts: RunOptions | None = None) -> DayResult:
    """`bookings`: residents also book ahead and take numbers remotely (hub/sim/bookings.py).
    `days`: that many open days from `d` with the same centre, so residents sent away for a
    missing material come back on a later one (hub/sim/prereview.py); the last is shown.
    `opts`: the ordering policy, lunch breaks and admission control."""
    opts = opts or RunOptions()
    ahead = None if bookings is None else SimAhead(bookings, seed=seed)
    admission = None
    if opts.admission != "off":
        from .admission import SimAdmission

        admission = SimAdmission(opts.admission, seed=seed)
    eng = Engine(catalog, _layout(name, catalog, windows, d, opts), clerk_seed=seed,
                 ahead=ahead, prereview=PreReviewModel(), admission=admission)
    r = eng.run_day(d, weather, seed, scale=scale, options=opts.day())
    for _ in range(days - 1):
        console.print(f"{r.date.isoformat()}: " + prereview_line(r.metrics()), highlight=False)
        d = eng.centre.add_workdays(d, 1)
        r = eng.run_day(d, weather, seed, scale=scale, options=opts.day())
    console.print(describe_day(d, weather, eng.arrivals))
    lay = eng.layout
    console.print(metrics_table(f"{lay.name}: {lay.kinds}, windows open at 09:00; "
                                + opts.label(), [(f"{lay.name} ×{windows}", r.metrics())]))
    console.print(f"{r.operations} core operations; last window closed {local_hm(r.closed)}")
    console.print(prereview_line(r.metrics()), highlight=False)
    if ahead is not None:
        for line in ahead_lines(r.metrics()):
            console.print(line, highlight=False)
    return r


def compare(catalog: Catalog, d: dt.date, weather: Weather, lo: int, hi: int, seeds: int,
            scale: float, targets: Targets, opts: RunOptions | None = None
            ) -> dict[str, int | None]:
    """Every layout at every window count on the same residents (common random numbers)."""
    probe = Engine(catalog, _layout("comprehensive", catalog, 1, d))
    console.print(describe_day(d, weather, probe.arrivals))
    days: list[list[Visit]] = [probe.visits_for(d, weather, s, scale) for s in range(seeds)]
    rows: list[tuple[str, DayMetrics]] = []
    best: dict[str, int | None] = dict.fromkeys(LAYOUTS)
    kinds: dict[str, str] = {}
    for name in LAYOUTS:
        for n in range(lo, hi + 1):
            lay = _layout(name, catalog, n, d, opts)
            ms = []
            for s, visits in enumerate(days):
                eng = Engine(catalog, lay, clerk_seed=s)
                ms.append(eng.run_day(d, weather, s, visits=[v.fresh() for v in visits],
                                      options=(opts or RunOptions()).day()).metrics())
            m = mean_metrics(ms)
            rows.append((f"{name} ×{n}", m))
            if best[name] is None and targets.met(m):
                best[name], kinds[name] = n, lay.kinds
    console.print(metrics_table(
        f"Policy comparison, mean of {seeds} seeds (dim: misses p90 ≤ {targets.p90_wait:g} min "
        f"or queue > 3 more than {targets.share_over3:.0%} of the time)", rows, targets))
    for name in LAYOUTS:
        enough = best[name]
        console.print(f"  {name:>13}: " + (f"open {enough} windows at 09:00 ({kinds[name]})"
                                           if enough else f"more than {hi} windows needed"))
    return best


def drill_reopen(catalog: Catalog, d: dt.date, weather: Weather, name: str, windows: int,
                 seed: int, scale: float, reopen: dt.time, extra: tuple[int, ...] = (0, 2, 4)
                 ) -> None:
    """Rehearse a morning closure: tickets are issued from 08:30, windows open at `reopen`."""
    probe = Engine(catalog, _layout(name, catalog, windows, d))
    visits = probe.visits_for(d, weather, seed, scale)
    console.print(describe_day(d, weather, probe.arrivals))
    t = Table(title=f"Drill: closed 09:00–{reopen:%H:%M}, backlog, then reopening ({name})")
    for col in ("windows", "backlog at reopen", "queue ≤3/window at", "mean wait", "p90 wait",
                "max wait", "longest q", "last closes"):
        t.add_column(col, justify="right")
    runs: list[tuple[str, int]] = [("normal day", 0)] + [(f"+{x}", x) for x in extra]
    for k, more in runs:
        n = windows + more
        eng = Engine(catalog, _layout(name, catalog, n, d), clerk_seed=seed)
        opts = DayOptions() if k == "normal day" else DayOptions(reopen_at=reopen)
        r = eng.run_day(d, weather, seed, visits=[v.fresh() for v in visits], options=opts)
        m = r.metrics()
        t.add_row(f"{n}" + (" (normal day)" if k == "normal day" else ""),
                  "—" if k == "normal day" else str(r.monitor.backlog(r.opened)),
                  local_hm(r.monitor.cleared_at(r.opened + 120)), f"{m.mean_wait:.1f} min",
                  f"{m.p90_wait:.1f} min", f"{m.max_wait:.0f} min", f"{m.longest_queue:.0f}",
                  local_hm(r.closed))
    console.print(t)


def history(catalog: Catalog, db: str, start: dt.date, months: int, name: str, windows: int,
            seed: int, csv_dir: Path | None) -> None:
    from .history import add_months, write_csv, write_history

    end = add_months(start, months)
    ops = 0

    def progress(d: dt.date, n: int) -> None:
        nonlocal ops
        ops += n
        if d.day == 1 or d.weekday() == 0:
            console.print(f"  {d.isoformat()}  {ops} journal records", highlight=False)

    days = write_history(catalog, db, start, end, layout=name, windows=windows, seed=seed,
                         progress=progress, prereview=PreReviewModel()).days
    open_days = [x for x in days if x.info.open]
    console.print(f"{len(open_days)} open days of {len(days)}, "
                  f"{sum(x.count for x in days)} residents, {ops} journal records → {db}")
    if csv_dir is not None:
        csv_dir.mkdir(parents=True, exist_ok=True)
        write_csv(days, csv_dir / "arrivals_daily.csv", csv_dir / "arrivals_halfhour.csv")
        console.print(f"counts → {csv_dir}/arrivals_daily.csv, arrivals_halfhour.csv")


def admission_figure(catalog: Catalog, d: dt.date, windows: int, load: float, seed: int,
                     stop_quantile: float) -> list[tuple[str, DayMetrics]]:
    """Issue 16's figure: one day with `load` times the centre's capacity arriving, the
    same residents with admission control off, warn and stop (judged on `stop_quantile`
    of the wait, and for comparison on the slow end, 0.9). The real excess is what "off"
    leaves waiting at closing: the residents the windows did not reach."""
    from ..forecast import admission as adm
    from .admission import capacity, overloaded_day

    cap = capacity(catalog, windows, d, seed)
    rows = [(mode, overloaded_day(catalog, windows, d, mode, load, seed, cap, stop_quantile))
            for mode in ("off", "warn", "stop")]
    if stop_quantile != adm.HIGH:
        rows.append((f"stop q={adm.HIGH:g}", overloaded_day(catalog, windows, d, "stop", load,
                                                            seed, cap, adm.HIGH)))
    off = rows[0][1]
    t = Table(title=f"{d} · {windows} windows · {load:.0%} of capacity ({cap} residents "
                    f"reach a window by closing when the queue never empties) · stop judged "
                    f"on the {stop_quantile:g} quantile of the wait")
    for col in ("mode", "arrivals", "served", "turned away", "left warned",
                "waiting at closing", "served after closing"):
        t.add_column(col, justify="right")
    for name, m in rows:
        t.add_row(name, f"{m.visits:.0f}", f"{m.served:.0f}", f"{m.turned_away:.0f}",
                  f"{m.left_warned:.0f}", f"{m.waiting_at_close:.0f}",
                  f"{m.served_after_close:.0f}")
    console.print(t)
    console.print(f"real excess (left waiting at closing without admission control): "
                  f"{off.waiting_at_close:.0f}; stop turned away "
                  f"{rows[2][1].turned_away:.0f}")
    return rows


def scenario_report(catalog: Catalog, path: Path, detail: str | None = None) -> None:
    """`onewindow sim --scenario`: the day and its options side by side, per half-hour and
    per line (hub/sim/scenario.py)."""
    import time

    from ..forecast.staffing import plan_slots, slot_checks
    from . import scenario as sn

    sc = sn.load(path, catalog)
    t0 = time.perf_counter()
    results = sn.run(catalog, sc)
    took = time.perf_counter() - t0
    base = sc.options[0]
    console.print(f"{sc.name}: {sc.date} {WEEKDAY_NAMES[sc.date.weekday()]}, "
                  f"{'rain' if base.weather.rain else 'dry'} {base.weather.temp_c:g} °C; "
                  + sn.expected_note(base) + f"; {sc.seeds} seeds per option", highlight=False)
    ms = [(o, mean_metrics([r.metrics() for r in rs])) for o, rs in results]
    table = options_table(sc, ms)
    table.add_row("seconds to simulate", *[f"{sum(r.extra['seconds'] for r in rs):.1f}"
                                            for _, rs in results])
    console.print(table)
    slots = plan_slots()
    checks = [(o, slot_checks(rs, sc.date, slots, catalog)) for o, rs in results]
    console.print(halfhour_table(sc, slots, checks))
    console.print(lines_table(results))
    console.print(f"simulated {len(results)} options × {sc.seeds} seeds in {took:.1f} s",
                  highlight=False)


def options_table(sc: Any, ms: list[tuple[Any, DayMetrics]]) -> Table:
    target = getattr(sc, "target", 20.0)
    t = Table(title=f"Options side by side (mean of {getattr(sc, 'seeds', 1)} seeds; waits in "
                    f"minutes, to the first call; target p90 ≤ {target:g} min)")
    t.add_column("", justify="left")
    for o, _ in ms:
        t.add_column(getattr(o, "name", "?"), justify="right")
    rows: list[tuple[str, Any]] = [
        ("windows", lambda o, m: o.layout.kinds.replace(" + ", "+")),
        ("lunch breaks", lambda o, m: f"{len(o.lunches)} windows" if o.lunches else "none"),
        ("policy", lambda o, m: o.layout.config.policy.mode
         + (f" {o.layout.config.policy.ratio}:1" if o.layout.config.policy.mode == "ratio"
            else "")),
        ("admission", lambda o, m: o.admission),
        ("residents", lambda o, m: f"{m.visits:.0f}"),
        ("served", lambda o, m: f"{m.served:.0f}"),
        ("median wait", lambda o, m: f"{m.median_wait:.1f}"),
        ("p90 wait", lambda o, m: f"{m.p90_wait:.1f}" + ("" if m.p90_wait <= target else "!")),
        ("max wait", lambda o, m: f"{m.max_wait:.0f}"),
        ("hall: mean waiting", lambda o, m: f"{m.hall_mean:.1f}"),
        ("hall: p90 waiting", lambda o, m: f"{m.hall_p90:.0f}"),
        ("hall: most waiting", lambda o, m: f"{m.longest_queue:.0f}"),
        ("hall: >3 waiting", lambda o, m: f"{m.hall_over3:.0%} of the time"),
        ("one line: most waiting", lambda o, m: f"{m.line_longest:.0f}"),
        ("pool >3 per window", lambda o, m: f"{m.share_over3:.0%}"),
        ("one-trip rate", lambda o, m: f"{m.one_trip:.1%}"),
        ("sent away at kiosk", lambda o, m: f"{m.kiosk_left:.0f}"),
        ("turned away / left", lambda o, m: f"{m.turned_away:.0f} / {m.left_warned:.0f}"),
        ("waiting at 17:00", lambda o, m: f"{m.waiting_at_close:.0f}"),
        ("last window closes", lambda o, m: f"+{m.last_close:.0f} min"),
    ]
    for label, f in rows:
        t.add_row(label, *[f(o, m) for o, m in ms])
    return t


def halfhour_table(sc: Any, slots: list[str], checks: list[tuple[Any, list[Any]]]) -> Table:
    target = getattr(sc, "target", 20.0)
    t = Table(title="Per half-hour: p90 wait of the tickets taken in it (median) · people "
                    "waiting in the hall, mean / most · windows on duty")
    t.add_column("", justify="left")
    for o, _ in checks:
        t.add_column(getattr(o, "name", "?"), justify="right")
    for k, label in enumerate(slots):
        cells = []
        for _, cs in checks:
            c = cs[k]
            mark = "!" if c.p90_wait > target else ""
            cells.append(f"{c.p90_wait:.0f}{mark} ({c.median_wait:.0f}) · {c.hall_mean:.0f}/"
                         f"{c.hall_max:.0f} · {c.on_duty:.1f}")
        t.add_row(label, *cells)
    return t


def lines_table(results: list[tuple[Any, list[DayResult]]]) -> Table:
    t = Table(title="Per department line: most people waiting at once (mean of seeds)")
    t.add_column("line", justify="left")
    for o, _ in results:
        t.add_column(o.name, justify="right")
    lines = sorted({ln for _, rs in results for r in rs for ln in r.monitor.line_longest})
    for ln in lines:
        t.add_row(ln, *[f"{sum(r.monitor.line_longest.get(ln, 0) for r in rs) / len(rs):.1f}"
                        for _, rs in results])
    return t
