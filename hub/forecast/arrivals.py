"""Arrival forecast per half-hour: a Poisson log-linear model fitted on counts from any source.

Input (the format `hub/sim/history.py` writes; any source may write it): the half-hourly CSV

    date,slot,count,open,weekday,holiday,adjusted_workday,post_holiday,rain,temp_c
    2026-11-23,08:30,21,1,0,,0,0,1,12.5

one row per half-hour slot of every open day (any slot length works: hourly counts too);
``date`` ISO, ``slot`` the slot's local start HH:MM, ``count`` residents who took a ticket.
Only ``date,slot,count`` are required: missing calendar columns are filled from the centre's
holiday calendar (hub/forecast/calendars.py: mainland China with 调休 by default, Hong Kong,
Taiwan, or any country of the `holidays` package), a missing ``rain`` means dry and a missing
``temp_c`` 20 °C; a ``rain`` other than 0/1/dry/rain (snow) is an error, not dry. Rows of
closed days (``open`` = 0) are skipped. A weather forecast file is ``date,rain,temp_c``.

The model (explainable: every coefficient is a multiplier with a name):

    E[count(day, slot)] = base x profile[weekday][slot] x weekday[dow] x adjusted_workday
                          x post_holiday x pre_holiday x bridge x holiday x month_start
                          x month_end x rain x heat^(degrees above 30 °C)
                          x cold^(degrees below 5 °C) x recent_level

`weekday` is relative to Wednesday (a weekday is left out when the history has fewer than two
ordinary open days on it: a weekend working day then counts as a Wednesday with the
adjusted-workday factor), `profile` sums to 1 over the day's slots, closed days (statutory
holidays, weekends that are not 调休 working days) get 0. It is a Poisson GLM with a log link
fitted by iteratively reweighted least squares (numpy) on day totals, each day weighted by its
recency (half-life HALF_LIFE_WEEKS), each flag only when the history has both values.
`recent_level` is the error-correction term: the median ratio of the last LEVEL_WEEKS weeks'
actual day totals to the fitted ones, shrunk towards 1. Prediction intervals are negative
binomial around the forecast, the over-dispersion estimated robustly on the last 8 weeks'
residuals (hub/forecast/backtest.py measures their coverage; docs/forecast.md has figures).

Why one module of 630 lines: the counts format, the model and its held-out evaluation are one
method: `evaluate` refits with `ArrivalForecaster.fit` on the very `Counts`/`Day` read here and
scores it against a noise floor under the same Poisson assumption the model makes; the format
and formula above specify all three. (The calendars and the rolling backtest against the
baselines are modules of their own: calendars.py, backtest.py.)
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
from .calendars import DEFAULT as DEFAULT_CALENDAR
from .calendars import HolidayCalendar, holiday_key

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
    holiday: bool = False  # open on a public holiday (a series that counts every day)
    pre_holiday: bool = False  # the working day before days off holding a holiday
    bridge: bool = False  # a working day between a holiday and a weekend
    month_start: bool = False  # the month's first 3 working days
    month_end: bool = False  # the month's last working day
    # Which holiday (holiday_key): on it, or just before / after the days off holding it.
    holiday_name: str = ""
    pre_name: str = ""
    post_name: str = ""

    @property
    def total(self) -> float:
        return float(sum(self.counts))

    @property
    def special(self) -> bool:
        """A holiday-affected day (reported apart): 调休 working day, a holiday, the day
        before or after one, a bridge day."""
        return (self.adjusted_workday or self.post_holiday or self.holiday or self.pre_holiday
                or self.bridge)


@dataclass(slots=True)
class Counts:
    slots: list[str]  # slot labels HH:MM in day order
    days: list[Day]  # open days, in date order
    closed: list[dt.date] = field(default_factory=list)


TRUE_WORDS = ("1", "true", "yes", "y", "rain")
FALSE_WORDS = ("", "0", "false", "no", "n", "dry")


def _flag(v: str | None, column: str = "") -> bool:
    text = str(v or "").strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS or not column:
        return False
    # A word the model has no effect for (snow, fog, ...) must not silently count as dry.
    raise ValueError(f"{column} {v!r}: 0/1 (或 dry/rain)；模型只区分下雨与否 / "
                     f"{column} {v!r}: 0/1 or dry/rain; the model knows rain and no rain only")


def load_counts(path: Path | str, calendar: HolidayCalendar | None = None) -> Counts:
    """Read a half-hourly counts CSV (see the module docstring). Calendar columns missing
    from the file come from `calendar` (default: mainland China)."""
    cal = calendar or HolidayCalendar.parse(DEFAULT_CALENDAR)
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
        fl = cal.flags(d)
        explicit = "adjusted_workday" in r and "post_holiday" in r  # the centre's own record
        days.append(Day(
            d, counts[d],
            adjusted_workday=_flag(r["adjusted_workday"]) if explicit else fl.adjusted_workday,
            post_holiday=_flag(r["post_holiday"]) if explicit else fl.post_holiday,
            rain=_flag(r.get("rain"), "rain"),
            temp_c=float(r["temp_c"]) if (r.get("temp_c") or "").strip() else 20.0,
            holiday=bool(fl.holiday), pre_holiday=fl.pre_holiday, bridge=fl.bridge,
            month_start=fl.month_start, month_end=fl.month_end,
            holiday_name=holiday_key(fl.holiday),
            pre_name=fl.pre_name if fl.pre_holiday else "",
            post_name=fl.post_name if (fl.post_holiday if not explicit else
                                       _flag(r["post_holiday"])) else ""))
    return Counts(slots, days, sorted(set(closed)))


def load_weather(path: Path | str) -> dict[dt.date, Weather]:
    """A weather forecast CSV: date,rain,temp_c (rain 0/1)."""
    out = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        for r in csv.DictReader(f):
            out[dt.date.fromisoformat(r["date"].strip())] = Weather(
                rain=_flag(r.get("rain"), "rain"),
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
        elif col in ("holiday", "pre_holiday", "bridge", "month_start", "month_end"):
            out.append(float(getattr(day, col)))
        elif "=" in col:  # one holiday's own effect, on top of the generic flag
            kind, name = col.split("=", 1)
            out.append(float(getattr(day, NAMED[kind]) == name))
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
                     ("holiday", lambda d: d.holiday),
                     ("pre_holiday", lambda d: d.pre_holiday),
                     ("bridge", lambda d: d.bridge),
                     ("month_start", lambda d: d.month_start),
                     ("month_end", lambda d: d.month_end),
                     ("rain", lambda d: d.rain),
                     ("heat", lambda d: d.temp_c > HEAT_FROM),
                     ("cold", lambda d: d.temp_c < COLD_FROM)):
        k = sum(1 for d in days if on(d))
        if 0 < k < len(days):
            cols.append(name)
    # A holiday seen at least twice gets its own multiplier (a festival street is busy on
    # Matariki, quiet on Christmas; the backlog after the Spring Festival is larger than after
    # Qingming), shrunk towards the generic flag's (NAMED_PRIOR_SD).
    for kind, attr in NAMED.items():
        generic = {"holiday": "holiday", "pre": "pre_holiday", "post": "post_holiday"}[kind]
        if generic not in cols:
            continue
        seen: dict[str, int] = {}
        for d in days:
            if getattr(d, attr):
                seen[getattr(d, attr)] = seen.get(getattr(d, attr), 0) + 1
        cols += [f"{kind}={n}" for n, k in sorted(seen.items()) if k >= 2]
    return cols


NAMED = {"holiday": "holiday_name", "pre": "pre_name", "post": "post_name"}
NAMED_PRIOR_SD = 0.1  # 10 %: wider let the Auckland series fit noise (docs/forecast.md)


def poisson_irls(x: np.ndarray, y: np.ndarray, iters: int = 50, tol: float = 1e-10,
                 weights: np.ndarray | None = None, penalty: np.ndarray | None = None
                 ) -> np.ndarray:
    """Maximum-likelihood coefficients of a Poisson GLM with log link (IRLS), each row's
    log-likelihood times its weight (default 1), minus penalty[j]/2 x beta[j]^2 (a normal
    prior at 0: shrinkage)."""
    beta = np.zeros(x.shape[1])
    mu = np.full(len(y), max(float(y.mean()), 1e-3))
    eta = np.log(mu)
    ridge = np.diag(1e-8 + (np.zeros(x.shape[1]) if penalty is None else penalty))
    w = np.ones(len(y)) if weights is None else weights
    for _ in range(iters):
        z = eta + (y - mu) / mu
        xw = x * (mu * w)[:, None]
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
    # The recent level: the last LEVEL_WEEKS weeks' actual residents over the model's fitted
    # ones, shrunk towards 1 (a move, a new service, a trend the calendar does not explain).
    level: float = 1.0
    # Over-dispersion (negative binomial: variance = mean + alpha mean^2) of day totals and
    # of half-hour counts, from the recent residuals: the prediction intervals.
    alpha_day: float = 0.0
    alpha_slot: float = 0.0
    calendar: str = DEFAULT_CALENDAR

    @classmethod
    def fit(cls, counts: Counts, calendar: HolidayCalendar | None = None,
            half_life_weeks: float | None = None, level_weeks: int | None = None,
            level_prior_days: float | None = None) -> ArrivalForecaster:
        """Fit on `counts`. Defaults: HALF_LIFE_WEEKS, LEVEL_WEEKS, LEVEL_PRIOR_DAYS (0 level
        weeks: no level term; half-life 0: every day weighs the same)."""
        days = counts.days
        if len(days) < 10:
            raise ValueError("need at least 10 open days of history to fit a forecast")
        hl = HALF_LIFE_WEEKS if half_life_weeks is None else half_life_weeks
        lw = LEVEL_WEEKS if level_weeks is None else level_weeks
        lp = LEVEL_PRIOR_DAYS if level_prior_days is None else level_prior_days
        last = days[-1].date
        age = np.array([(last - d.date).days for d in days], dtype=float)
        w = 0.5 ** (age / (7 * hl)) if hl > 0 else np.ones(len(days))
        cols = _columns(days)
        nc = len(cols)
        # The model is profile[slot] x exp(day effects): its Poisson likelihood splits into a
        # multinomial for the shares and a Poisson GLM on the day totals, fitted apart (the
        # same maximum, on days rather than days x slots rows).
        feats = np.array([_features(d, cols) for d in days]).reshape(len(days), nc)
        x = np.hstack([np.ones((len(days), 1)), feats])
        totals = np.array([d.total for d in days])
        beta = poisson_irls(x, totals, weights=w)
        named = np.array([0.0] + [1.0 if "=" in c else 0.0 for c in cols])
        if named.any():
            # A named holiday's coefficient has a normal prior at 0 (the generic flag's
            # effect) with sd NAMED_PRIOR_SD; under the quasi-Poisson likelihood (real day
            # totals vary phi times more than Poisson counts) that is a penalty phi / sd^2.
            mu = np.exp(x @ beta)
            phi = max(1.0, float(np.sum(w * (totals - mu) ** 2 / mu) /
                                 max(float(w.sum()) - x.shape[1], 1.0)))
            beta = poisson_irls(x, totals, weights=w, penalty=named * phi / NAMED_PRIOR_SD ** 2)
        slot_sums = np.sum(np.array([d.counts for d in days]) * w[:, None], axis=0)
        profile = slot_sums / slot_sums.sum() if slot_sums.sum() > 0 else \
            np.full(len(counts.slots), 1 / len(counts.slots))
        fc = cls(list(counts.slots), cols, float(math.exp(beta[0])), list(profile),
                 {c: float(b) for c, b in zip(cols, beta[1:], strict=True)}, len(days),
                 _weekday_profiles(days, profile), calendar=(calendar.code if calendar else
                                                              DEFAULT_CALENDAR))
        fitted = np.array([sum(fc.expected(d)) for d in days])
        recent = age < 7 * lw
        if lw > 0 and recent.any():
            # The median day's ratio, not the sums' ratio: one day of a street festival or a
            # system outage must not move next week's forecast. Shrunk towards 1 as if `lp`
            # more days had said exactly the model.
            ratios = np.log(np.maximum(totals[recent], 1.0) / np.maximum(fitted[recent], 1.0))
            n = len(ratios)
            fc.level = float(math.exp(float(np.median(ratios)) * n / (n + lp)))
        fc.alpha_day, fc.alpha_slot = _dispersion(days, fc, age < 7 * DISPERSION_WEEKS)
        return fc

    def effects(self) -> dict[str, float]:
        """Each fitted multiplier by name: weekday ratios to Wednesday, flags, per-degree
        factors (absent from the history: 1.0)."""
        out = {"base_daily": self.base}
        for w in range(7):
            out[f"weekday_{WEEKDAY_NAMES[w]}"] = math.exp(self.coef.get(f"weekday:{w}", 0.0))
        for name in ("adjusted_workday", "post_holiday", "pre_holiday", "bridge", "holiday",
                     "month_start", "month_end", "rain", "heat", "cold"):
            out[f"{name}_per_deg" if name in ("heat", "cold") else name] = math.exp(
                self.coef.get(name, 0.0))
        for c in self.columns:
            if "=" in c:  # a named holiday's own multiplier, on top of the generic one
                out[c] = math.exp(self.coef[c])
        out["recent_level"] = self.level
        return out

    def expected(self, day: Day, level: bool = False) -> list[float]:
        """Expected counts per slot; `level`: times the recent level (the forecast)."""
        eta = sum(self.coef[c] * v for c, v in zip(self.columns, _features(day, self.columns),
                                                     strict=True))
        total = self.base * math.exp(eta) * (self.level if level else 1.0)
        return [total * p for p in self.weekday_profile.get(day.date.weekday(), self.profile)]

    def predict(self, day: Day) -> list[float]:
        """The forecast per slot for a day: expected counts at the recent level."""
        return self.expected(day, level=True)

    def interval(self, day: Day, coverage: float = 0.8, draws: int = 4000
                 ) -> tuple[tuple[float, float], list[tuple[float, float]]]:
        """Central prediction intervals (day total, per slot) for `coverage` of the counts:
        negative binomial quantiles around the forecast, by simulation (fixed seed: the same
        answer every time)."""
        mu = np.array(self.predict(day))
        rng = np.random.default_rng(day.date.toordinal())
        lo_q, hi_q = (1 - coverage) / 2, 1 - (1 - coverage) / 2
        tot = _nb_draws(rng, np.array([mu.sum()]), self.alpha_day, draws)[:, 0]
        per = _nb_draws(rng, mu, self.alpha_slot, draws)
        slots = [(float(a), float(b)) for a, b in
                 zip(np.quantile(per, lo_q, axis=0), np.quantile(per, hi_q, axis=0),
                     strict=True)]
        return (float(np.quantile(tot, lo_q)), float(np.quantile(tot, hi_q))), slots

    def day_for(self, d: dt.date, weather: Weather, info: DayInfo | None = None) -> Day | None:
        info = info or day_info_for(d, HolidayCalendar.parse(self.calendar))
        if not info.open:
            return None
        f = HolidayCalendar.parse(self.calendar).flags(d)
        return Day(d, [0.0] * len(self.slots), info.adjusted_workday, info.post_holiday,
                   weather.rain, weather.temp_c, holiday=bool(f.holiday),
                   pre_holiday=f.pre_holiday, bridge=f.bridge, month_start=f.month_start,
                   month_end=f.month_end, holiday_name=holiday_key(f.holiday),
                   pre_name=f.pre_name if f.pre_holiday else "",
                   post_name=f.post_name if info.post_holiday else "")

    def forecast(self, d: dt.date, weather: Weather) -> list[float]:
        """Forecast residents per slot on date d (0 on a closed day)."""
        day = self.day_for(d, weather)
        return [0.0] * len(self.slots) if day is None else self.predict(day)


HALF_LIFE_WEEKS = 52.0  # recency weighting of the fit
LEVEL_WEEKS = 2  # the recent level's window
LEVEL_PRIOR_DAYS = 3.0  # its shrinkage towards 1, in days that say exactly the model
DISPERSION_WEEKS = 8  # the residuals the intervals are estimated on


def _nb_draws(rng: np.random.Generator, mu: np.ndarray, alpha: float, n: int) -> np.ndarray:
    """n draws of independent negative binomial counts with means mu (alpha 0: Poisson)."""
    lam = np.broadcast_to(mu, (n, len(mu)))
    if alpha > 1e-9:
        lam = rng.gamma(1 / alpha, alpha * lam)
    return rng.poisson(lam)


def _dispersion(days: list[Day], fc: ArrivalForecaster, recent: np.ndarray
                ) -> tuple[float, float]:
    """The NB alpha of day totals and of slot counts on the recent days, against the
    level-corrected fit (as the forecast would have said)."""
    rows = [(d, np.array(fc.predict(d))) for d, r in zip(days, recent, strict=True) if r]
    y = np.array([d.total for d, _ in rows])
    m = np.array([mu.sum() for _, mu in rows])
    ys = np.concatenate([np.array(d.counts) for d, _ in rows])
    ms = np.concatenate([mu for _, mu in rows])
    return _robust_alpha(y, m), _robust_alpha(ys, ms)


MEDIAN_CHI2_1 = 0.4549364  # the median of a squared standard normal


def _robust_alpha(y: np.ndarray, mu: np.ndarray) -> float:
    """The alpha at which the median squared residual scaled by the NB variance (mu + alpha
    mu^2) is that of a squared normal. A median, not the mean of squares: one street festival
    or outage day would otherwise widen every interval (the mean-square estimate made the
    "80 %" intervals hold 86-90 % of real day totals)."""
    keep = mu > 0
    y, mu = y[keep], mu[keep]
    if len(y) < 5:
        return 0.0

    def med(alpha: float) -> float:
        return float(np.median((y - mu) ** 2 / (mu + alpha * mu ** 2)))

    if med(0.0) <= MEDIAN_CHI2_1:
        return 0.0
    lo, hi = 0.0, 1.0
    while med(hi) > MEDIAN_CHI2_1 and hi < 1e3:
        hi *= 4
    for _ in range(60):  # bisection: med falls as alpha grows
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if med(mid) > MEDIAN_CHI2_1 else (lo, mid)
    return (lo + hi) / 2


def day_info_for(d: dt.date, calendar: HolidayCalendar) -> DayInfo:
    """The simulator's DayInfo of a date under a region's calendar."""
    f = calendar.flags(d)
    if not f.workday:
        return DayInfo(d, False, holiday=f.holiday)
    return DayInfo(d, True, adjusted_workday=f.adjusted_workday, post_holiday=f.post_holiday)


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
    cal = HolidayCalendar.parse(model.calendar)
    for k in range(7):
        d = monday + dt.timedelta(days=k)
        w = weather.get(d)
        out.append(DayForecast(d, day_info_for(d, cal), w or Weather(), w is None,
                               list(model.slots), model.forecast(d, w or Weather())))
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


def evaluate(counts: Counts, weeks: int = 8, min_history_days: int = 120,
             calendar: HolidayCalendar | None = None) -> Evaluation:
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
        fc = ArrivalForecaster.fit(past, calendar)
        week = [x for x in days if monday <= x.date < monday + dt.timedelta(days=7)]
        # Closed: listed with open = 0, or no rows; days past the end of the data are unknown,
        # not closed.
        ev.closed_days += min(7, (last - monday).days + 1) - len(week)
        for x in week:
            pred = fc.predict(x)
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
