"""A supervisor's day described in a TOML file, and the options to compare on it.

`onewindow sim --scenario day.toml` simulates the day and each `[[option]]` on the same
residents (common random numbers) and prints them side by side; `onewindow plan --scenario
day.toml` plans the windows per half-hour for it. The schema (docs/forecast.md, "Scenario
files", shows it whole; examples in docs/scenarios/):

    name = "Monday after National Day"   # a title (optional)
    date = "2026-10-08"                  # the day: its weekday and calendar (required)
    target_p90 = 20                      # minutes 90 % of waits stay within (20)
    seeds = 3                            # simulated days per option (1..50)
    pre_review = true                    # stage 11's kiosk pre-review (true)

    [arrivals]             # one of total / per_half_hour, or neither: the arrival model's
    total = 1800           #   day for the date and weather (weekday, 调休, after a holiday,
    # per_half_hour = [..] #   rain, cold/heat); per half-hour from 08:30, up to 16 numbers
    scale = 1.0            # multiplies the arrivals
    weather = "rain"       # dry | rain (volume: the model's effect, when no total is given)
    temp_c = 8
    [arrivals.lines]       # demand per department line relative to the usual mix
    social = 1.5

    [[windows]]            # the windows, in order (numbered from 1); or layout + window_count
    count = 10
    kind = "comprehensive" # a window kind of the catalog
    skills = ["*"]         # item or line ids (default: what the kind serves)
    lunch = "11:40"        # its clerks' lunch start ("none": no lunch; default: odd windows
    lunch_minutes = 30     #   11:40, even 12:25)

    [policy]               # who is called next (hub/core/policy.py)
    mode = "ratio"         # ratio | aging
    ratio = 2
    [admission]
    mode = "off"           # off | warn | stop (hub/sim/admission.py)

    [[option]]             # a variant to compare: any of layout, window_count, windows,
    name = "aging"         #   add_windows, arrivals, policy, admission, lunch (false: no
    policy = { mode = "aging" }  # lunch), pre_review; tables are merged over the day's

Every mistake is one `ScenarioError` line naming the file, the line (where it can be found)
and the field.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import re
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.catalog import COMPREHENSIVE, Catalog
from ..core.centre_config import CentreConfig, WindowSpec
from ..core.policy import OrderingPolicy
from .engine import LUNCH, LUNCH_MINUTES, DayOptions, Engine
from .metrics import DayMetrics, DayResult
from .model import (
    FIRST_SLOT,
    SLOT_MINUTES,
    ArrivalModel,
    Population,
    ResidentModel,
    Weather,
    calendar_sets,
    day_info,
    midnight,
    poisson,
)
from .policies import LAYOUTS, Layout, layout
from .prereview import PreReviewModel

TOP_KEYS = {"name", "date", "target_p90", "seeds", "pre_review", "layout", "window_count",
            "windows", "arrivals", "policy", "admission", "option"}
OPTION_KEYS = {"name", "layout", "window_count", "windows", "add_windows", "arrivals",
               "policy", "admission", "lunch", "pre_review"}
ARRIVAL_KEYS = {"total", "per_half_hour", "scale", "weather", "temp_c", "lines"}
WINDOW_KEYS = {"count", "kind", "skills", "lunch", "lunch_minutes"}
POLICY_KEYS = {"mode", "ratio", "weights"}
ADMISSION_KEYS = {"mode", "stop_quantile"}
WEATHERS = ("dry", "rain")
MAX_SLOTS = 16  # 08:30-16:30, the ticket machines' day


class ScenarioError(ValueError):
    """A scenario file that cannot be run: one line naming the file, line and field."""


@dataclass(frozen=True, slots=True)
class Option:
    """One variant of the day, resolved and checked."""

    name: str
    layout: Layout
    lunches: dict[int, tuple[dt.time, float]]
    slots: list[str]  # arrival half-hours (HH:MM)
    expected: list[float]  # residents expected per half-hour
    weather: Weather
    lines: dict[str, float]  # line popularity multipliers
    admission: str
    stop_quantile: float
    pre_review: bool

    @property
    def total(self) -> float:
        return sum(self.expected)

    def residents(self) -> ResidentModel:
        base = ResidentModel()
        pop = {k: v * self.lines.get(k, 1.0) for k, v in base.line_popularity.items()}
        for k, v in self.lines.items():
            pop.setdefault(k, v)
        return ResidentModel(line_popularity=pop)


@dataclass(frozen=True, slots=True)
class Scenario:
    path: Path
    name: str
    date: dt.date
    target: float
    seeds: int
    options: list[Option] = field(default_factory=list)


# ---- reading and checking ------------------------------------------------------------------

class _Where:
    """Finds the line of a field in the file's text, for the error message."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.lines = path, text.splitlines()

    def line(self, table: str | None, index: int, key: str | None) -> int | None:
        """The line of `key` in the `index`-th (0-based) [table] / [[table]] (None: the
        top level), or of the table's header, or None."""
        current: str | None = None
        seen: dict[str, int] = {}
        header_line = None
        for n, raw in enumerate(self.lines, start=1):
            s = raw.strip()
            m = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?", s)
            if m:
                current = m.group(1)
                seen[current] = seen.get(current, -1) + 1
                if table is not None and current == table and seen[current] == index:
                    header_line = n
                continue
            here = current == table and (table is None or seen.get(table) == index)
            if here and key is not None and re.match(rf"^{re.escape(key)}\s*=", s):
                return n
        return header_line

    def fail(self, where: str, msg: str, table: str | None = None, index: int = 0,
             key: str | None = None) -> ScenarioError:
        n = self.line(table, index, key)
        at = f"line {n}: " if n is not None else ""
        return ScenarioError(f"{self.path}: {at}{where}: {msg}")


def _time(text: object) -> dt.time:
    if not isinstance(text, str):
        raise ValueError("a time of day like \"11:40\"")
    try:
        t = dt.time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day like \"11:40\"") from None
    if t.tzinfo is not None:
        raise ValueError(f"{text!r}: a local time of day, no zone")
    return t


def _number(v: object, lo: float, hi: float, what: str, integer: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or (integer and
                                                                 not isinstance(v, int)):
        raise ValueError(f"{v!r} is not {'a whole number' if integer else 'a number'} ({what})")
    if not lo <= v <= hi:
        raise ValueError(f"{v!r} out of range ({what})")
    return float(v)


def load(path: Path, catalog: Catalog) -> Scenario:
    """The scenario in `path`, every field checked (ScenarioError: one line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(f"{path}: cannot be read ({e})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:  # its message names the line and column
        raise ScenarioError(f"{path}: not TOML: {e}") from None
    return parse(data, catalog, _Where(path, text))


def parse(data: dict[str, Any], catalog: Catalog, where: _Where) -> Scenario:
    for k in data:
        if k not in TOP_KEYS:
            raise where.fail(k, f"unknown field; known: {', '.join(sorted(TOP_KEYS))}",
                             key=k)
    if "date" not in data:
        raise where.fail("date", "missing: the day described, like date = \"2026-10-08\"")
    raw = data["date"]
    if isinstance(raw, dt.datetime) or not isinstance(raw, dt.date | str):
        raise where.fail("date", f"{raw!r} is not a date like 2026-10-08", key="date")
    try:
        d = raw if isinstance(raw, dt.date) else dt.date.fromisoformat(raw)
    except ValueError:
        raise where.fail("date", f"{raw!r} is not a date like 2026-10-08", key="date") from None
    try:
        target = _number(data.get("target_p90", 20.0), 1, 480, "minutes, 1..480")
    except ValueError as e:
        raise where.fail("target_p90", str(e), key="target_p90") from None
    try:
        seeds = int(_number(data.get("seeds", 3), 1, 50, "1..50", integer=True))
    except ValueError as e:
        raise where.fail("seeds", str(e), key="seeds") from None
    name = str(data.get("name", where.path.stem))
    if not day_info(d).open:
        raise where.fail("date", f"{d} is a closed day (weekend or holiday) in the mainland "
                         "calendar: pick a working day", key="date")
    base = {k: v for k, v in data.items() if k != "option"}
    options = [_option(base, {"name": "as described"}, catalog, where, d, None)]
    raw_opts = data.get("option", [])
    if not isinstance(raw_opts, list):
        raise where.fail("option", "give options as [[option]] tables", key="option")
    names = {"as described"}
    for i, o in enumerate(raw_opts):
        if not isinstance(o, dict):
            raise where.fail(f"option #{i + 1}", "not a table", "option", i)
        for k in o:
            if k not in OPTION_KEYS:
                raise where.fail(f"option #{i + 1}.{k}", "unknown field; known: "
                                 + ", ".join(sorted(OPTION_KEYS)), "option", i, k)
        nm = o.get("name")
        if not isinstance(nm, str) or not nm.strip():
            raise where.fail(f"option #{i + 1}.name", "missing: every option needs a name",
                             "option", i, "name")
        if nm in names:
            raise where.fail(f"option #{i + 1}.name", f"{nm!r} is used twice", "option", i,
                             "name")
        names.add(nm)
        merged = dict(base)
        for k, v in o.items():
            if k in ("arrivals", "policy", "admission") and isinstance(v, dict) and \
                    isinstance(base.get(k), dict):
                merged[k] = {**base[k], **v}
                if k == "arrivals":  # an option's total replaces the day's half-hours
                    for a, b in (("total", "per_half_hour"), ("per_half_hour", "total")):
                        if a in v and b not in v:
                            merged[k].pop(b, None)
            elif k == "add_windows":
                continue
            else:
                merged[k] = v
        if "windows" in o or "layout" in o or "window_count" in o:
            for k in ("windows", "layout", "window_count"):
                if k not in o:
                    merged.pop(k, None)
        if "add_windows" in o:
            extra = o["add_windows"]
            if not isinstance(extra, list):
                raise where.fail(f"option #{i + 1}.add_windows",
                                 "a list of window tables like [{count = 2}]",
                                 "option", i, "add_windows")
            if "windows" not in merged:
                raise where.fail(f"option #{i + 1}.add_windows", "the day has no [[windows]]"
                                 " to add to (it uses layout)", "option", i, "add_windows")
            merged["windows"] = [*merged["windows"], *extra]
        options.append(_option(merged, o, catalog, where, d, i))
    return Scenario(where.path, name, d, target, seeds, options)


def _option(data: dict[str, Any], own: dict[str, Any], catalog: Catalog, where: _Where,
            d: dt.date, index: int | None) -> Option:
    label = "" if index is None else f"option #{index + 1} ({own['name']}): "
    table = None if index is None else "option"
    idx = index or 0

    def fail(fld: str, msg: str, tab: str | None = None, key: str | None = None,
             tab_index: int = 0) -> ScenarioError:
        # a field the option sets is found in the option's table; else in the day's
        top = fld.split(".")[0].split("[")[0]
        if index is not None and top == "windows" and "windows" not in own and \
                "add_windows" in own:
            top = "add_windows"
        if index is not None and top in own:
            return where.fail(label + fld, msg, table, idx, top)
        return where.fail(label + fld, msg, tab, tab_index, key)

    # windows
    hol, work = calendar_sets(d - dt.timedelta(days=7), d + dt.timedelta(days=120))
    pol = _policy(data.get("policy", {}), fail)
    if "windows" in data:
        if "layout" in data or "window_count" in data:
            raise fail("windows", "give either [[windows]] or layout + window_count, not both")
        specs, lunches = _windows(data["windows"], catalog, fail)
        cfg = CentreConfig("sim", tuple(specs), pol, holidays=hol, workdays=work)
        lay = Layout("scenario", cfg, (None,) * len(specs))
    else:
        name = data.get("layout", "mixed")
        if name not in LAYOUTS:
            raise fail("layout", f"{name!r}: one of {', '.join(LAYOUTS)}", key="layout")
        if "window_count" not in data:
            raise fail("windows", "missing: describe the windows with [[windows]] tables or "
                       "give layout and window_count")
        try:
            n = int(_number(data["window_count"], 1, 200, "1..200", integer=True))
        except ValueError as e:
            raise fail("window_count", str(e), key="window_count") from None
        lay = layout(name, catalog, n, policy=pol, holidays=hol, workdays=work)
        lunches = {w.number: (LUNCH[(w.number + 1) % 2], LUNCH_MINUTES)
                   for w in lay.config.windows} if n >= 2 else {}
    if own.get("lunch", True) is False:
        lunches = {}
    elif "lunch" in own and own["lunch"] is not True:
        raise fail("lunch", "true or false (false: no lunch breaks)")
    # arrivals
    arr = data.get("arrivals", {})
    if not isinstance(arr, dict):
        raise fail("arrivals", "a table: [arrivals]")
    for k in arr:
        if k not in ARRIVAL_KEYS:
            raise fail(f"arrivals.{k}", "unknown field; known: " + ", ".join(
                sorted(ARRIVAL_KEYS)), "arrivals", k)
    wx_name = arr.get("weather", "dry")
    if wx_name not in WEATHERS:
        raise fail("arrivals.weather", f"{wx_name!r}: one of {', '.join(WEATHERS)} (the "
                   "arrival model knows no other weather)", "arrivals", "weather")
    try:
        temp = _number(arr.get("temp_c", 20.0), -40, 50, "°C, -40..50")
        scale = _number(arr.get("scale", 1.0), 0.01, 100, "0.01..100")
    except ValueError as e:
        key = "temp_c" if "°C" in str(e) else "scale"
        raise fail(f"arrivals.{key}", str(e), "arrivals", key) from None
    weather = Weather(rain=wx_name == "rain", temp_c=temp)
    model = ArrivalModel()
    first = dt.datetime.combine(d, FIRST_SLOT)
    if "total" in arr and "per_half_hour" in arr:
        raise fail("arrivals", "give total or per_half_hour, not both", "arrivals", "total")
    if "per_half_hour" in arr:
        ph = arr["per_half_hour"]
        if not isinstance(ph, list) or not 1 <= len(ph) <= MAX_SLOTS:
            raise fail("arrivals.per_half_hour", f"a list of 1 to {MAX_SLOTS} numbers, one per "
                       "half-hour from 08:30", "arrivals", "per_half_hour")
        try:
            expected = [_number(x, 0, 2000, "residents per half-hour, 0..2000") for x in ph]
        except ValueError as e:
            raise fail("arrivals.per_half_hour", str(e), "arrivals", "per_half_hour") from None
    else:
        usual = model.expected(day_info(d), weather)
        if "total" in arr:
            try:
                total = _number(arr["total"], 1, 20000, "residents in the day, 1..20000")
            except ValueError as e:
                raise fail("arrivals.total", str(e), "arrivals", "total") from None
            usual = [x * total / sum(usual) for x in usual]
        expected = usual
    expected = [x * scale for x in expected]
    slots = [(first + dt.timedelta(minutes=SLOT_MINUTES * k)).strftime("%H:%M")
             for k in range(len(expected))]
    lines = arr.get("lines", {})
    if not isinstance(lines, dict):
        raise fail("arrivals.lines", "a table of line = multiplier", "arrivals", "lines")
    for k, v in lines.items():
        if k not in catalog.lines:
            raise fail(f"arrivals.lines.{k}", "not a line of the catalog ("
                       + ", ".join(catalog.lines) + ")", "arrivals.lines", k)
        try:
            _number(v, 0, 100, "a multiplier, 0..100")
        except ValueError as e:
            raise fail(f"arrivals.lines.{k}", str(e), "arrivals.lines", k) from None
    # admission
    adm = data.get("admission", {})
    if not isinstance(adm, dict):
        raise fail("admission", "a table: [admission] mode = \"off\"")
    for k in adm:
        if k not in ADMISSION_KEYS:
            raise fail(f"admission.{k}", "unknown field; known: mode, stop_quantile",
                       "admission", k)
    mode = adm.get("mode", "off")
    if mode not in ("off", "warn", "stop"):
        raise fail("admission.mode", f"{mode!r}: one of off, warn, stop", "admission", "mode")
    try:
        sq = _number(adm.get("stop_quantile", 0.6), 0.1, 0.9, "0.1..0.9")
    except ValueError as e:
        raise fail("admission.stop_quantile", str(e), "admission", "stop_quantile") from None
    pre = data.get("pre_review", True)
    if not isinstance(pre, bool):
        raise fail("pre_review", "true or false", key="pre_review")
    return Option(str(own["name"]), lay, lunches, slots, expected, weather,
                  {k: float(v) for k, v in lines.items()}, mode, sq, pre)


def _policy(raw: object, fail: Any) -> OrderingPolicy:
    if not isinstance(raw, dict):
        raise fail("policy", "a table: [policy] mode = \"ratio\"")
    for k in raw:
        if k not in POLICY_KEYS:
            raise fail(f"policy.{k}", "unknown field; known: mode, ratio, weights", "policy", k)
    mode = raw.get("mode", "ratio")
    if mode not in ("ratio", "aging"):
        raise fail("policy.mode", f"{mode!r}: one of ratio, aging", "policy", "mode")
    try:
        ratio = int(_number(raw.get("ratio", 2), 1, 100, "1..100", integer=True))
    except ValueError as e:
        raise fail("policy.ratio", str(e), "policy", "ratio") from None
    weights = raw.get("weights", {"normal": 1.0, "priority": 3.0})
    if not isinstance(weights, dict) or set(weights) - {"normal", "priority"}:
        raise fail("policy.weights", "a table with normal and priority weights",
                   "policy", "weights")
    try:
        w = {k: _number(v, 0.01, 100, "a weight, 0.01..100") for k, v in weights.items()}
    except ValueError as e:
        raise fail("policy.weights", str(e), "policy", "weights") from None
    return OrderingPolicy(mode=mode, ratio=ratio, weights={"normal": 1.0, "priority": 3.0, **w})


def _windows(raw: object, catalog: Catalog, fail: Any
             ) -> tuple[list[WindowSpec], dict[int, tuple[dt.time, float]]]:
    if not isinstance(raw, list) or not raw:
        raise fail("windows", "one or more [[windows]] tables")
    specs: list[WindowSpec] = []
    lunches: dict[int, tuple[dt.time, float]] = {}
    known = set(catalog.items) | set(catalog.lines) | {"*"}
    for i, w in enumerate(raw):
        at = f"windows[{i + 1}]"

        def bad(key: str, msg: str, i: int = i, at: str = at) -> ScenarioError:
            return fail(f"{at}.{key}", msg, "windows", key, i)

        if not isinstance(w, dict):
            raise fail(at, "not a table", "windows", None, i)
        for k in w:
            if k not in WINDOW_KEYS:
                raise bad(k, "unknown field; known: " + ", ".join(sorted(WINDOW_KEYS)))
        try:
            count = int(_number(w.get("count", 1), 1, 200, "windows of this kind, 1..200",
                                integer=True))
        except ValueError as e:
            raise bad("count", str(e)) from None
        kind = w.get("kind", COMPREHENSIVE)
        if kind not in catalog.window_kinds:
            raise bad("kind", f"{kind!r} is not a window kind of the catalog ("
                      + ", ".join(catalog.window_kinds) + ")")
        skills = w.get("skills")
        if skills is not None:
            if not isinstance(skills, list) or not skills or \
                    not all(isinstance(x, str) for x in skills):
                raise bad("skills", "a list of item or line ids, or [\"*\"] for every item")
            unknown = [x for x in skills if x not in known]
            if unknown:
                raise bad("skills", f"{', '.join(map(repr, unknown))}: no such item or line "
                          "in the catalog")
        lunch_raw = w.get("lunch")
        try:
            minutes = _number(w.get("lunch_minutes", LUNCH_MINUTES), 0, 240, "0..240 minutes")
        except ValueError as e:
            raise bad("lunch_minutes", str(e)) from None
        start: dt.time | None
        if lunch_raw in ("none", "", False):
            start = None
        elif lunch_raw is None:
            start = dt.time(0)  # the usual: by the window's number
        else:
            try:
                start = _time(lunch_raw)
            except ValueError as e:
                raise bad("lunch", str(e) + " or \"none\"") from None
        for _ in range(count):
            n = len(specs) + 1
            specs.append(WindowSpec(n, kind, tuple(skills) if skills else None))
            if start is not None and minutes > 0:
                lunches[n] = ((LUNCH[(n + 1) % 2] if start == dt.time(0) and lunch_raw is None
                               else start), minutes)
    if len(specs) > 200:
        raise fail("windows", f"{len(specs)} windows: at most 200")
    return specs, lunches


# ---- running -------------------------------------------------------------------------------

def visits_for(opt: Option, d: dt.date, seed: int, population: Population) -> list[Any]:
    """The option's residents of seed `seed`: the same people for options with the same
    arrivals and mix (common random numbers)."""
    rng = random.Random(f"scenario:{seed}:{d.isoformat()}")
    times: list[float] = []
    for label, lam in zip(opt.slots, opt.expected, strict=True):
        h, m = label.split(":")
        t0 = (int(h) * 60 + int(m)) * 60
        k = poisson(rng, lam)
        times.extend(t0 + rng.random() * SLOT_MINUTES * 60 for _ in range(k))
    times.sort()
    return population.visits(times, rng, midnight(d))


def run_option(catalog: Catalog, sc: Scenario, opt: Option, seed: int) -> DayResult:
    admission = None
    if opt.admission != "off":
        from .admission import SimAdmission

        admission = SimAdmission(opt.admission, seed=seed, stop_quantile=opt.stop_quantile)
    residents = opt.residents()
    eng = Engine(catalog, opt.layout, residents=residents, clerk_seed=seed,
                 admission=admission, prereview=PreReviewModel() if opt.pre_review else None)
    visits = visits_for(opt, sc.date, seed, eng.population)
    return eng.run_day(sc.date, opt.weather, seed, visits=visits,
                       options=DayOptions(lunches=opt.lunches))


def run(catalog: Catalog, sc: Scenario) -> list[tuple[Option, list[DayResult]]]:
    """Every option on every seed; each result's extra["seconds"] is how long it took."""
    out = []
    for o in sc.options:
        rs = []
        for s in range(sc.seeds):
            t0 = time.perf_counter()
            r = run_option(catalog, sc, o, s)
            r.extra["seconds"] = time.perf_counter() - t0
            rs.append(r)
        out.append((o, rs))
    return out


def expected_note(opt: Option) -> str:
    peak = max(range(len(opt.expected)), key=lambda k: opt.expected[k])
    return (f"{opt.total:.0f} residents expected, busiest half-hour {opt.slots[peak]} "
            f"({math.ceil(opt.expected[peak])})")


def mean_of(ms: list[DayMetrics]) -> DayMetrics:
    from .metrics import mean_metrics

    return mean_metrics(ms)
