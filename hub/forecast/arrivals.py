"""Arrival forecast per half-hour: a Poisson log-linear model fitted on counts from any source.

Input (the format `hub/sim/history.py` writes; any source may write it): the half-hourly CSV

    date,slot,count,open,weekday,holiday,adjusted_workday,post_holiday,rain,temp_c
    2026-11-23,08:30,21,1,0,,0,0,1,12.5

one row per half-hour slot of every open day; ``date`` ISO, ``slot`` the slot's local start
HH:MM, ``count`` residents who took a ticket. Only ``date,slot,count`` are required:
missing calendar columns are filled from the Chinese holiday calendar (`chinese-calendar`,
as the simulator does), a missing ``rain`` means dry and a missing ``temp_c`` 20 °C. Rows of
closed days (``open`` = 0) are skipped. A weather forecast file is ``date,rain,temp_c``
(rain 0/1).

The model (explainable: every coefficient is a multiplier with a name):

    E[count(day, slot)] = base x profile[slot] x weekday[dow] x adjusted_workday x post_holiday
                          x rain x heat^(degrees above 30 °C) x cold^(degrees below 5 °C)

`weekday` is relative to Wednesday (a weekday is left out when the history has fewer than two
ordinary open days on it: a weekend working day then counts as a Wednesday with the
adjusted-workday factor), `profile` sums to 1 over the day's slots, closed days (statutory
holidays, weekends that are not 调休 working days) get 0. It is a Poisson GLM with a log link
fitted by iteratively reweighted least squares (numpy), each flag only when the history has
both values.

Why one module of 477 lines: the counts format, the model and its held-out evaluation are one
method: `evaluate` refits with `ArrivalForecaster.fit` on the very `Counts`/`Day` read here and
scores it against a noise floor under the same Poisson assumption the model makes; the format
and formula above specify all three.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..sim.history import DayCounts, synthetic_weather
from ..sim.model import WEEKDAY_NAMES, ArrivalModel, DayInfo, Weather, day_info

REF_WEEKDAY = 2  # Wednesday
PROFILE_PRIOR_DAYS = 4.0  # how strongly a weekday's own day shape is pulled to the pooled one
HEAT_FROM = 30.0
COLD_FROM = 5.0


# ---- counts in, counts out -----------------------------------------------------------------

@dataclass(slots=True)
class Day:
    """One open day's counts per slot, with what the model needs to know about it."""

    date: dt.date
    counts: list[float]
    adjusted_workday: bool = False
    post_holiday: bool = False
    rain: bool = False
    temp_c: float = 20.0
    truth: list[float] | None = None  # known expected counts (synthetic history only)

    @property
    def total(self) -> float:
        return float(sum(self.counts))

    @property
    def special(self) -> bool:
        """A holiday-affected day (reported apart): 调休 working day or first after a closure."""
        return self.adjusted_workday or self.post_holiday


@dataclass(slots=True)
class Counts:
    slots: list[str]  # slot labels HH:MM in day order
    days: list[Day]  # open days, in date order
    closed: list[dt.date] = field(default_factory=list)


def _flag(v: str | None) -> bool:
    return str(v or "").strip().lower() in ("1", "true", "yes", "y", "rain")


def load_counts(path: Path | str) -> Counts:
    """Read a half-hourly counts CSV (see the module docstring)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: no rows")
    missing = {"date", "slot", "count"} - set(rows[0])
    if missing:
        raise ValueError(f"{path}: needs the half-hourly columns date,slot,count "
                         f"(missing {', '.join(sorted(missing))})")
    slots = sorted({r["slot"].strip().zfill(5) for r in rows})
    idx = {s: i for i, s in enumerate(slots)}
    by_date: dict[dt.date, dict[str, str]] = {}
    counts: dict[dt.date, list[float]] = {}
    closed: list[dt.date] = []
    for r in rows:
        d = dt.date.fromisoformat(r["date"].strip())
        if r.get("open", "1").strip() in ("0", "false"):
            closed.append(d)
            continue
        by_date.setdefault(d, r)
        counts.setdefault(d, [0.0] * len(slots))[idx[r["slot"].strip().zfill(5)]] += float(
            r["count"])
    days = []
    for d in sorted(counts):
        r = by_date[d]
        info = None
        if "adjusted_workday" not in r or "post_holiday" not in r:
            info = day_info(d)
        days.append(Day(
            d, counts[d],
            adjusted_workday=_flag(r["adjusted_workday"]) if info is None
            else info.adjusted_workday,
            post_holiday=_flag(r["post_holiday"]) if info is None else info.post_holiday,
            rain=_flag(r.get("rain")),
            temp_c=float(r["temp_c"]) if (r.get("temp_c") or "").strip() else 20.0))
    return Counts(slots, days, sorted(set(closed)))


def load_weather(path: Path | str) -> dict[dt.date, Weather]:
    """A weather forecast CSV: date,rain,temp_c (rain 0/1)."""
    out = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        for r in csv.DictReader(f):
            out[dt.date.fromisoformat(r["date"].strip())] = Weather(
                rain=_flag(r.get("rain")),
                temp_c=float(r["temp_c"]) if (r.get("temp_c") or "").strip() else 20.0)
    return out


def synthetic_days(start: dt.date, end: dt.date, seed: int = 0,
                   model: ArrivalModel | None = None) -> list[DayCounts]:
    """Counts drawn straight from the simulator's ArrivalModel (Poisson per slot, known
    effects) for every day in [start, end), with the simulator's synthetic weather."""
    model = model or ArrivalModel()
    rng = np.random.default_rng(seed)
    out = []
    d = start
    while d < end:
        info, w = day_info(d), synthetic_weather(d, seed)
        lam = model.expected(info, w) if info.open else [0.0] * len(model.shape)
        if info.open and model.day_sigma > 0:
            f = math.exp(rng.normal(-model.day_sigma ** 2 / 2, model.day_sigma))
            lam = [x * f for x in lam]  # one factor shared by the day's slots
        out.append(DayCounts(info, w, [int(x) for x in rng.poisson(lam)]))
        d += dt.timedelta(days=1)
    return out


def counts_from_days(days: list[DayCounts], model: ArrivalModel | None = None) -> Counts:
    """The same as writing `days` with history.write_csv and loading it (truth attached)."""
    from ..sim.history import slot_label

    model = model or ArrivalModel()
    n = len(days[0].slots)
    out = Counts([slot_label(k) for k in range(n)], [])
    for x in days:
        if not x.info.open:
            out.closed.append(x.info.date)
            continue
        out.days.append(Day(x.info.date, [float(c) for c in x.slots], x.info.adjusted_workday,
                            x.info.post_holiday, x.weather.rain, x.weather.temp_c,
                            truth=model.expected(x.info, x.weather)))
    return out


# ---- the model -----------------------------------------------------------------------------

def _features(day: Day, columns: list[str]) -> list[float]:
    out = []
    for col in columns:
        if col.startswith("weekday:"):
            out.append(float(day.date.weekday() == int(col[8:])))
        elif col == "adjusted_workday":
            out.append(float(day.adjusted_workday))
        elif col == "post_holiday":
            out.append(float(day.post_holiday))
        elif col == "rain":
            out.append(float(day.rain))
        elif col == "heat":
            out.append(max(0.0, day.temp_c - HEAT_FROM))
        elif col == "cold":
            out.append(max(0.0, COLD_FROM - day.temp_c))
    return out


def _columns(days: list[Day]) -> list[str]:
    cols = []
    for w in range(7):
        ordinary = sum(1 for d in days if d.date.weekday() == w and not d.adjusted_workday)
        if w != REF_WEEKDAY and ordinary >= 2:
            cols.append(f"weekday:{w}")
    for name, on in (("adjusted_workday", lambda d: d.adjusted_workday),
                     ("post_holiday", lambda d: d.post_holiday),
                     ("rain", lambda d: d.rain),
                     ("heat", lambda d: d.temp_c > HEAT_FROM),
                     ("cold", lambda d: d.temp_c < COLD_FROM)):
        k = sum(1 for d in days if on(d))
        if 0 < k < len(days):
            cols.append(name)
    return cols


def poisson_irls(x: np.ndarray, y: np.ndarray, iters: int = 50, tol: float = 1e-10
                 ) -> np.ndarray:
    """Maximum-likelihood coefficients of a Poisson GLM with log link (IRLS)."""
    beta = np.zeros(x.shape[1])
    mu = np.full(len(y), max(float(y.mean()), 1e-3))
    eta = np.log(mu)
    ridge = 1e-8 * np.eye(x.shape[1])
    for _ in range(iters):
        z = eta + (y - mu) / mu
        xw = x * mu[:, None]
        new = np.linalg.solve(x.T @ xw + ridge, xw.T @ z)
        eta = np.clip(x @ new, -30, 30)
        mu = np.exp(eta)
        if np.max(np.abs(new - beta)) < tol:
            beta = new
            break
        beta = new
    return beta


def _weekday_profiles(days: list[Day], pooled: np.ndarray) -> dict[int, list[float]]:
    out = {}
    mean_day = sum(d.total for d in days) / len(days)
    for w in range(7):
        own = [d for d in days if d.date.weekday() == w and not d.special]
        if not own:
            continue
        sums = np.sum([d.counts for d in own], axis=0)
        prior = PROFILE_PRIOR_DAYS * mean_day
        shares = (sums + prior * pooled) / (sums.sum() + prior)
        out[w] = list(shares)
    return out


@dataclass(slots=True)
class ArrivalForecaster:
    slots: list[str]
    columns: list[str]
    base: float  # expected residents on an ordinary dry 20 °C Wednesday
    profile: list[float]  # share of the day's residents per slot (sums to 1)
    coef: dict[str, float]  # log-multipliers by column
    days: int = 0  # open days fitted on
    # Per weekday, the day's shape when it differs (a Monday-morning rush): the weekday's
    # own shares, shrunk towards `profile` by PROFILE_PRIOR_DAYS days' worth of counts.
    weekday_profile: dict[int, list[float]] = field(default_factory=dict)

    @classmethod
    def fit(cls, counts: Counts) -> ArrivalForecaster:
        days = counts.days
        if len(days) < 10:
            raise ValueError("need at least 10 open days of history to fit a forecast")
        cols = _columns(days)
        ns, nc = len(counts.slots), len(cols)
        feats = np.array([_features(d, cols) for d in days]).reshape(len(days), nc)
        x = np.zeros((len(days) * ns, ns + nc))
        for s in range(ns):
            x[s::ns, s] = 1.0
        x[:, ns:] = np.repeat(feats, ns, axis=0)
        y = np.array([c for d in days for c in d.counts], dtype=float)
        beta = poisson_irls(x, y)
        slot_mean = np.exp(beta[:ns])
        base = float(slot_mean.sum())
        profile = slot_mean / base
        return cls(list(counts.slots), cols, base, list(profile),
                   {c: float(b) for c, b in zip(cols, beta[ns:], strict=True)}, len(days),
                   _weekday_profiles(days, profile))

    def effects(self) -> dict[str, float]:
        """Each fitted multiplier by name: weekday ratios to Wednesday, flags, per-degree
        factors (absent from the history: 1.0)."""
        out = {"base_daily": self.base}
        for w in range(7):
            out[f"weekday_{WEEKDAY_NAMES[w]}"] = math.exp(self.coef.get(f"weekday:{w}", 0.0))
        for name in ("adjusted_workday", "post_holiday", "rain", "heat", "cold"):
            out[f"{name}_per_deg" if name in ("heat", "cold") else name] = math.exp(
                self.coef.get(name, 0.0))
        return out

    def expected(self, day: Day) -> list[float]:
        eta = sum(self.coef[c] * v for c, v in zip(self.columns, _features(day, self.columns),
                                                     strict=True))
        total = self.base * math.exp(eta)
        return [total * p for p in self.weekday_profile.get(day.date.weekday(), self.profile)]

    def day_for(self, d: dt.date, weather: Weather, info: DayInfo | None = None) -> Day | None:
        info = info or day_info(d)
        if not info.open:
            return None
        return Day(d, [0.0] * len(self.slots), info.adjusted_workday, info.post_holiday,
                   weather.rain, weather.temp_c)

    def forecast(self, d: dt.date, weather: Weather) -> list[float]:
        """Expected residents per slot on date d (0 on a closed day)."""
        day = self.day_for(d, weather)
        return [0.0] * len(self.slots) if day is None else self.expected(day)


@dataclass(slots=True)
class DayForecast:
    date: dt.date
    info: DayInfo
    weather: Weather
    weather_assumed: bool  # not in the weather file: dry, 20 °C
    slots: list[str]
    expected: list[float]

    @property
    def total(self) -> float:
        return sum(self.expected)


def forecast_week(model: ArrivalForecaster, monday: dt.date,
                  weather: dict[dt.date, Weather]) -> list[DayForecast]:
    out = []
    for k in range(7):
        d = monday + dt.timedelta(days=k)
        w = weather.get(d)
        out.append(DayForecast(d, day_info(d), w or Weather(), w is None, list(model.slots),
                               model.forecast(d, w or Weather())))
    return out


# ---- accuracy on held-out weeks --------------------------------------------------------------

def poisson_mad(lam: float) -> float:
    """E|X - lam| for X ~ Poisson(lam): 2 e^-lam lam^(k+1) / k!, k = floor(lam)."""
    if lam <= 0:
        return 0.0
    k = math.floor(lam)
    return 2.0 * math.exp(-lam + (k + 1) * math.log(lam) - math.lgamma(k + 1))


@dataclass(slots=True)
class Score:
    """Sums for WAPE (sum |error| / sum actual) and MAPE (mean |error| / actual, actual > 0)."""

    abs_err: float = 0.0
    actual: float = 0.0
    ape: float = 0.0
    n_ape: int = 0
    n: int = 0

    def add(self, actual: float, pred: float) -> None:
        self.abs_err += abs(actual - pred)
        self.actual += actual
        self.n += 1
        if actual > 0:
            self.ape += abs(actual - pred) / actual
            self.n_ape += 1

    @property
    def wape(self) -> float:
        return self.abs_err / self.actual if self.actual else float("nan")

    @property
    def mape(self) -> float:
        return self.ape / self.n_ape if self.n_ape else float("nan")


@dataclass(slots=True)
class Floor:
    """The Poisson noise floor: the error of a forecast that knows the true mean."""

    mad: float = 0.0
    lam: float = 0.0
    rel: float = 0.0
    n: int = 0

    def add(self, lam: float) -> None:
        self.mad += poisson_mad(lam)
        self.lam += lam
        self.rel += poisson_mad(lam) / lam if lam > 0 else 0.0
        self.n += 1

    @property
    def wape(self) -> float:
        return self.mad / self.lam if self.lam else float("nan")

    @property
    def mape(self) -> float:  # E|X-lam|/lam, averaged (an approximation of MAPE's floor)
        return self.rel / self.n if self.n else float("nan")


GROUPS = ("ordinary", "holiday-affected", "all")
LEVELS = ("day", "half-hour")


@dataclass(slots=True)
class Evaluation:
    weeks: list[dt.date]
    truth: bool  # the floor uses the known true means (else the model's forecast)
    model: dict[tuple[str, str], Score] = field(default_factory=dict)
    baseline: dict[tuple[str, str], Score] = field(default_factory=dict)
    floor: dict[tuple[str, str], Floor] = field(default_factory=dict)
    closed_days: int = 0


def same_weekday_mean(history: list[Day], d: dt.date, weeks: int = 8) -> list[float]:
    """The baseline: mean per slot of the same weekday's open days in the last `weeks` weeks
    (no such day: all open days of those weeks)."""
    since = d - dt.timedelta(weeks=weeks)
    recent = [x for x in history if since <= x.date < d]
    same = [x for x in recent if x.date.weekday() == d.weekday()] or recent or history
    n = len(same[0].counts)
    return [sum(x.counts[s] for x in same) / len(same) for s in range(n)]


def evaluate(counts: Counts, weeks: int = 8, min_history_days: int = 120) -> Evaluation:
    """Rolling origin: for each of the last `weeks` whole weeks, fit on every day before its
    Monday and forecast the week (with the observed weather: a perfect weather forecast)."""
    days = counts.days
    if not days:
        raise ValueError("no open days")
    last = days[-1].date
    end_monday = last - dt.timedelta(days=last.weekday())
    if (last - end_monday).days < 4:  # the last week is not whole enough: leave it out
        end_monday -= dt.timedelta(weeks=1)
    mondays = [end_monday - dt.timedelta(weeks=k) for k in range(weeks - 1, -1, -1)]
    mondays = [m for m in mondays if sum(1 for x in days if x.date < m) >= min_history_days]
    if not mondays:
        raise ValueError(f"need {min_history_days} open days of history before a held-out week")
    truth = all(x.truth is not None for x in days)
    ev = Evaluation(mondays, truth)
    for g in GROUPS:
        for lv in LEVELS:
            ev.model[g, lv], ev.baseline[g, lv], ev.floor[g, lv] = Score(), Score(), Floor()
    for monday in mondays:
        past = Counts(counts.slots, [x for x in days if x.date < monday])
        fc = ArrivalForecaster.fit(past)
        week = [x for x in days if monday <= x.date < monday + dt.timedelta(days=7)]
        ev.closed_days += 7 - len(week)  # closed (listed with open = 0, or no rows)
        for x in week:
            pred = fc.expected(x)
            base = same_weekday_mean(past.days, x.date)
            lam = x.truth if x.truth is not None else pred
            for g in ("holiday-affected" if x.special else "ordinary", "all"):
                ev.model[g, "day"].add(x.total, sum(pred))
                ev.baseline[g, "day"].add(x.total, sum(base))
                ev.floor[g, "day"].add(sum(lam))
                for s in range(len(x.counts)):
                    ev.model[g, "half-hour"].add(x.counts[s], pred[s])
                    ev.baseline[g, "half-hour"].add(x.counts[s], base[s])
                    ev.floor[g, "half-hour"].add(lam[s])
    return ev


def accuracy_rows(ev: Evaluation) -> list[tuple[str, ...]]:
    """(level, days, n, model WAPE, baseline WAPE, floor WAPE, model MAPE, baseline MAPE,
    floor MAPE, model/floor) rows, percentages formatted."""
    rows: list[tuple[str, ...]] = []

    def pct(x: float) -> str:
        return "—" if math.isnan(x) else f"{x:.1%}"

    for lv in LEVELS:
        for g in GROUPS:
            m, b, f = ev.model[g, lv], ev.baseline[g, lv], ev.floor[g, lv]
            if not m.n:
                continue
            ratio = m.wape / f.wape if f.wape and not math.isnan(m.wape) else float("nan")
            rows.append((lv, g, str(m.n), pct(m.wape), pct(b.wape), pct(f.wape), pct(m.mape),
                         pct(b.mape), pct(f.mape),
                         "—" if math.isnan(ratio) else f"{ratio:.2f}×"))
    return rows


ACCURACY_COLUMNS = ("level", "days", "n", "WAPE model", "WAPE same-weekday", "WAPE floor",
                    "MAPE model", "MAPE same-weekday", "MAPE floor", "model / floor")
