"""The `onewindow` command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..tools import devices as devices_cli
from ..tools import flash as flash_cli
from . import case_cli
from .city import cli as city_cli
from .cliutil import (
    CONFIG_ERROR_EXIT,
    OneLineErrors,
    centre_config,
    fail,
    load_or_exit,
    plain_help,
    until_signal,
)
from .fleet import cli as fleet_cli
from .ota import cli as ota_cli
from .store import api_client_cli
from .store import commands as store_commands

if TYPE_CHECKING:
    import datetime as dt

    from .core.catalog import Catalog
    from .store.accounts import Accounts

app = typer.Typer(help="OneWindow queue management: hub, demo and tools.",
                  no_args_is_help=True, add_completion=False, cls=OneLineErrors,
                  rich_markup_mode=None)


def _logging(verbose: bool) -> None:
    """One line per event on stderr (hub/logsetup.py), as the hub logs."""
    from .logsetup import configure

    configure(logging.DEBUG if verbose else logging.INFO)


@app.command()
def hub(config: Path = typer.Option(..., "--config", "-c", help="centre.toml"),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging"),
        log_json: bool = typer.Option(False, "--log-json",
                                      help="log one JSON object per line (as [log] "
                                           "format = \"json\")")) -> None:
    """Run the hub for one centre (embedded broker unless [broker] url is set)."""
    from . import opsconfig, startmsg
    from .config import ConfigError
    from .logsetup import configure
    from .mqtt.private_mosquitto import BrokerStartError
    from .preflight import check_centre, check_ports
    from .serve import serve
    from .web import ListenError

    cfg = centre_config(config)
    ops = load_or_exit(opsconfig.load, config, ConfigError)
    configure("DEBUG" if verbose else ops.log.level, "json" if log_json else ops.log.format)
    load_or_exit(lambda _: check_centre(cfg), config, ConfigError)
    load_or_exit(lambda _: check_ports(cfg), config, ConfigError)

    from .web import metrics

    metrics.process_access = ops.metrics  # /metrics: loopback only unless [metrics] token

    def ready(runner) -> None:  # type: ignore[no-untyped-def]
        banner = asyncio.get_running_loop().create_task(say_ready(runner), name="hub-banner")
        banners.add(banner)
        banner.add_done_callback(banners.discard)

    banners: set[asyncio.Task[None]] = set()

    async def say_ready(runner) -> None:  # type: ignore[no-untyped-def]
        """The banner once the hub is connected to its broker (or, after 10 s, saying it is
        not yet): what it serves and how to log in."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runner.connected.wait(), startmsg.CONNECT_WAIT)
        admins = await asyncio.to_thread(startmsg.count_admins, cfg.database_url)
        typer.echo("\n".join(startmsg.ready_lines(cfg, config, runner, admins)))

    try:
        asyncio.run(until_signal(lambda stop: serve(cfg, stop, ready=ready)))
    except (ListenError, ConfigError, BrokerStartError) as e:
        # e.g. remote takes configured, no secret yet; a port taken after the check
        typer.echo(f"无法启动 / cannot start: {e}", err=True)
        raise typer.Exit(CONFIG_ERROR_EXIT) from e


@app.command()
def node(config: Path = typer.Option(..., "--config", "-c", help="node.toml"),
         verbose: bool = typer.Option(False, "--verbose", "-v")) -> None:
    """Run a Raspberry Pi window node (or kiosk): keys, card reader, scanner, camera."""
    import tomllib

    from ..node import config as node_config
    from ..node.main import run

    _logging(verbose)
    cfg = load_or_exit(node_config.load, config,
                       (node_config.NodeConfigError, OSError, tomllib.TOMLDecodeError))
    asyncio.run(until_signal(lambda stop: run(cfg, stop)))


@app.command()
def demo(minutes: float = typer.Option(0, help="stop after this many real minutes (0: run "
                                                "until the day is over or Ctrl-C)"),
         speed: float = typer.Option(60.0, help="simulated seconds per real second"),
         windows: int = typer.Option(8, help="windows in the simulated centre"),
         live: bool = typer.Option(True, help="live terminal view (rich)"),
         seed: int = typer.Option(1),
         layout: str = typer.Option("mixed", help="dedicated | comprehensive | mixed"),
         drill: str = typer.Option("", help="'reopen': windows closed until --reopen-at "
                                            "while tickets are taken"),
         reopen_at: str = typer.Option("10:30", help="the reopening drill's time (HH:MM)"),
         bookings: bool = typer.Option(True, help="residents also book ahead, check in at "
                                                  "the kiosk and take numbers remotely"),
         admission: str = typer.Option("", help="admission control's mode: warn | stop "
                                                "| off (default: the hub's, warn)"),
         load: float = typer.Option(1.0, help="residents relative to a usual day (1.2: "
                                              "20 % more, to see admission control act)")
         ) -> None:
    """A whole simulated centre's day on the embedded broker, people by the simulator's
    engine: no setup needed."""
    import datetime as dt
    import sys

    from ..tools.demo import run_demo
    from ..tools.demo.scenario import plan as demo_plan
    from .sim.policies import LAYOUTS

    logging.basicConfig(level=logging.WARNING)
    at = _time_of_day(reopen_at, "--reopen-at")
    _one_of(layout, LAYOUTS, "--layout")
    _one_of(drill, ("", "reopen"), "--drill")
    _one_of(admission, ("", "warn", "stop", "off"), "--admission")
    if speed <= 0:
        fail(f"--speed {speed:g}: simulated seconds per real second, more than 0")
    if not 1 <= windows <= 99:
        fail(f"--windows {windows}: from 1 to 99")
    if not 0 < load <= 10:
        fail(f"--load {load:g}: more than 0, at most 10")
    if minutes < 0:
        fail(f"--minutes {minutes:g}: 0 (until the day is over) or more")
    try:  # the drill's time against the day's hours
        demo_plan(dt.date(2026, 11, 25), windows, layout, drill, at)
    except ValueError as e:
        fail(str(e))
    # Piped or redirected, a live view would reach the reader only when it ends: print
    # the addresses, the login and progress lines as they come instead.
    live = live and sys.stdout.isatty()
    asyncio.run(until_signal(lambda stop: run_demo(
        stop, minutes=minutes, speed=speed, windows=windows, live=live, seed=seed,
        layout_name=layout, drill=drill, reopen_at=at, bookings=bookings,
        admission=admission, load=load)))


user_app = typer.Typer(help="Staff accounts (stored in the hub's database).",
                       no_args_is_help=True)
app.add_typer(user_app, name="user")


@contextlib.contextmanager
def _accounts(config: Path) -> Iterator[Accounts]:
    """The hub's staff accounts, closed after use; a refused change (AccountError) is said
    on stderr and ends the command with exit status 1."""
    from .store.accounts import AccountError, Accounts

    accounts = Accounts(centre_config(config).database_url)
    try:
        yield accounts
    except AccountError as e:
        typer.echo(f"错误 / error: {e}", err=True)
        raise typer.Exit(1) from e
    finally:
        accounts.close()


def _password(stdin: bool) -> str:
    import sys

    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@user_app.command("add")
def user_add(config: Path = typer.Option(..., "--config", "-c", help="centre.toml"),
             username: str = typer.Option(..., "--username", "-u"),
             role: str = typer.Option(
                 ..., "--role", "-r",
                 help="clerk | specialist | backoffice | supervisor | technician | admin "
                      "| station"),
             department: str | None = typer.Option(
                 None, "--department", "-d",
                 help="a backoffice user's or specialist's department (the catalog's)"),
             station: str | None = typer.Option(
                 None, "--station", "-s",
                 help="a station account's community station ([stations.names] when listed)"),
             display: str = typer.Option("", "--display", help="name shown on the pages"),
             window: int | None = typer.Option(None, "--window", "-w",
                                               help="a clerk's fixed window"),
             password_stdin: bool = typer.Option(False, "--password-stdin",
                                                 help="read the password from stdin")) -> None:
    """Create a staff account (the password is asked for, or read from stdin)."""
    import time

    if department is not None:
        from .catalog import load_catalog

        catalog = load_catalog(centre_config(config).catalog_path)
        if department not in catalog.departments:
            raise typer.BadParameter(
                f"no department {department!r}; the catalog has "
                f"{', '.join(catalog.departments)}", param_hint="--department")
    if station is not None:
        listed = centre_config(config).stations.names
        if listed and station not in listed:
            raise typer.BadParameter(
                f"no station {station!r}; [stations.names] has {', '.join(listed)}",
                param_hint="--station")
    with _accounts(config) as accounts:
        acc = accounts.add(username, _password(password_stdin), role, display, window,
                           time.time(), department, station)
    typer.echo(f"added {acc.username} ({acc.role}"
               f"{f', window {acc.window}' if acc.window else ''}"
               f"{f', department {acc.department}' if acc.department else ''}"
               f"{f', station {acc.station}' if acc.station else ''})")


@user_app.command("list")
def user_list(config: Path = typer.Option(..., "--config", "-c", help="centre.toml")) -> None:
    """List staff accounts."""
    with _accounts(config) as accounts:
        for a in accounts.list():
            typer.echo(f"{a.username}\t{a.display}\t{a.role}\t{a.window or '-'}\t"
                       f"{a.department or a.station or '-'}\t"
                       f"{'active' if a.active else 'disabled'}")


@user_app.command("passwd")
def user_passwd(config: Path = typer.Option(..., "--config", "-c", help="centre.toml"),
                username: str = typer.Option(..., "--username", "-u"),
                password_stdin: bool = typer.Option(False, "--password-stdin")) -> None:
    """Set a new password (ends the user's sessions)."""
    with _accounts(config) as accounts:
        accounts.set_password(username, _password(password_stdin))
    typer.echo(f"password of {username} changed")


@user_app.command("disable")
def user_disable(config: Path = typer.Option(..., "--config", "-c", help="centre.toml"),
                 username: str = typer.Option(..., "--username", "-u"),
                 enable: bool = typer.Option(False, "--enable", help="enable it again")) -> None:
    """Disable (or --enable) an account; disabling ends its sessions."""
    with _accounts(config) as accounts:
        accounts.set_active(username, enable)
    typer.echo(f"{username} {'enabled' if enable else 'disabled'}")


@app.command()
def sim(day: str = typer.Option("2026-11-23", help="the simulated day (ISO date)"),
        weather: str = typer.Option("dry", help="dry | rain"),
        temp: float = typer.Option(20.0, help="the day's temperature, °C"),
        layout: str = typer.Option("mixed", help="dedicated | comprehensive | mixed"),
        windows: int = typer.Option(12, help="windows open at 09:00"),
        seed: int = typer.Option(0),
        scale: float = typer.Option(1.0, help="multiply the arrival model's volume"),
        compare: bool = typer.Option(False, "--compare", help="every layout and window count "
                                     "on the same seeds: how many windows of which kind"),
        min_windows: int = typer.Option(6), max_windows: int = typer.Option(16),
        seeds: int = typer.Option(3, help="seeds per comparison cell"),
        target_p90: float = typer.Option(20.0, help="comparison target: p90 wait, minutes"),
        drill: str = typer.Option("", help="'reopen': closed 09:00 until --reopen-at"),
        reopen_at: str = typer.Option("10:30"),
        history: bool = typer.Option(False, "--history", help="write synthetic history"),
        months: int = typer.Option(3), start: str = typer.Option("2026-07-01"),
        db: str = typer.Option("sqlite:///sim_history.db", help="journal URL for --history"),
        csv_dir: Path = typer.Option(None, help="--history: also write arrival-count CSVs"),
        catalog: Path = typer.Option(None, help="catalog JSON (default: the sample)"),
        bookings: bool = typer.Option(False, "--bookings", help="a day: residents also book "
                                      "ahead and take numbers by phone (hub/sim/bookings.py)"),
        days: int = typer.Option(1, min=1, help="a day: run this many working days from "
                                 "--day, residents sent away for materials coming back "
                                 "(hub/sim/prereview.py); the last is shown"),
        admission: bool = typer.Option(False, "--admission", help="a day at --load times "
                                       "the centre's capacity, admission control off, warn "
                                       "and stop (hub/sim/admission.py)"),
        load: float = typer.Option(1.2, help="--admission: arrivals relative to capacity"),
        stop_quantile: float = typer.Option(0.6, help="--admission: the quantile of the "
                                            "wait stop judges on (0.1..0.9)"),
        policy: str = typer.Option("ratio", help="a day or --compare: who is called next, "
                                   "ratio (priority tickets, then a normal one) | aging"),
        ratio: int = typer.Option(2, help="--policy ratio: priority tickets in a row"),
        admission_mode: str = typer.Option("off", help="a day: admission control, off | "
                                           "warn | stop (hub/sim/admission.py)"),
        lunch: bool = typer.Option(True, help="a day or --compare: lunch breaks (half the "
                                   "clerks from 11:40, half from 12:25)"),
        scenario: Path = typer.Option(None, "--scenario", help="a described day (TOML, "
                                      "docs/forecast.md 'Scenario files'): it and its "
                                      "options side by side")
        ) -> None:
    """Simulate a centre with the real dispatch core: a day, a policy comparison, a drill,
    a described day with its options (--scenario), or months of synthetic history in a hub
    journal."""
    from .sim import cli as s
    from .sim.model import Weather
    from .sim.policies import LAYOUTS

    d = _date(day, "--day")
    _one_of(weather, ("dry", "rain"), "--weather")
    _one_of(layout, LAYOUTS, "--layout")
    _one_of(drill, ("", "reopen"), "--drill")
    _one_of(policy, ("ratio", "aging"), "--policy")
    _one_of(admission_mode, ("off", "warn", "stop"), "--admission-mode")
    if not 1 <= ratio <= 100:
        fail(f"--ratio {ratio}: priority tickets in a row, 1 to 100")
    at = _time_of_day(reopen_at, "--reopen-at")
    first = _date(start, "--start")
    for name, n, low in (("--windows", windows, 1), ("--min-windows", min_windows, 1),
                         ("--max-windows", max_windows, min_windows), ("--seeds", seeds, 1),
                         ("--months", months, 1)):
        if n < low:
            fail(f"{name} {n}: at least {low}")
    if not 0 < scale <= 100 or not -40 <= temp <= 50 or target_p90 <= 0:
        fail("--scale more than 0 (at most 100), --temp from -40 to 50 °C, "
             "--target-p90 more than 0")
    cat = _catalog(catalog)
    w = Weather(rain=weather == "rain", temp_c=temp)
    opts = s.RunOptions(policy=policy, ratio=ratio, lunch=lunch, admission=admission_mode)
    if scenario is not None:
        from .sim.scenario import ScenarioError

        _readable(scenario, "--scenario")
        try:
            s.scenario_report(cat, scenario)
        except ScenarioError as e:
            fail(str(e))
        return
    if admission:
        if not 0 < load <= 10 or not 0.1 <= stop_quantile <= 0.9:
            fail("--load more than 0 (at most 10), --stop-quantile from 0.1 to 0.9")
        s.admission_figure(cat, d, windows, load, seed, stop_quantile)
    elif history:
        s.history(cat, db, first, months, layout, windows, seed, csv_dir)
    elif compare:
        s.compare(cat, d, w, min_windows, max_windows, seeds, scale, s.Targets(target_p90),
                  opts)
    elif drill:
        try:
            s.drill_reopen(cat, d, w, layout, windows, seed, scale, at)
        except ValueError as e:  # a reopening outside the day's hours
            fail(str(e))
    else:
        from .sim.bookings import AheadModel

        s.run_one(cat, d, w, layout, windows, seed, scale,
                  bookings=AheadModel() if bookings else None, days=days, opts=opts)


@app.command()
def report(month: str = typer.Option(..., "--month", help="the month, e.g. 2026-10"),
           config: Path = typer.Option(None, "--config", "-c",
                                       help="centre.toml (windows, database, [report])"),
           db: str = typer.Option(None, "--db", help="journal URL (default: the config's)"),
           out: Path = typer.Option(Path("report"), "--out", help="output folder"),
           weight: list[str] = typer.Option([], "--weight", help="a dimension's weight, "
                                            "e.g. --weight quality=2 (repeatable)"),
           catalog: Path = typer.Option(None, help="catalog JSON (default: the config's)"),
           charts: bool = typer.Option(True, help="matplotlib charts in the HTML"),
           replay: bool = typer.Option(False, "--replay", help="replay the whole journal "
                                       "instead of reading the past days' tables")) -> None:
    """The five-dimension staff report of a month: HTML (centre summary, one section per
    clerk) and CSV (clerks, items, centre). Read by SQL from the past days' tables when
    they hold the whole month, else by replaying the journal."""
    import datetime as dt

    from .report.cli import ReportError, run

    try:  # before any database is opened: a bad month creates nothing
        dt.date.fromisoformat(f"{month}-01")
        if len(month) != 7:
            raise ValueError(month)
    except ValueError:
        fail(f"--month {month!r}: a month like 2026-10")
    if config is None and db is None:
        fail("give --config centre.toml or --db URL")
    _existing_database(db if db is not None else centre_config(config).database_url)
    try:
        weights = {k.strip(): float(v) for k, v in (x.split("=", 1) for x in weight)}
        r = run(config, db, month, out, catalog, weights, charts, replay)
    except (ReportError, ValueError) as e:
        typer.echo(f"错误 / error: {e}", err=True)
        raise typer.Exit(2) from e
    c = r.centre
    typer.echo(f"{month}: {c['clerks']} clerks, {c['services']} services, {c['quantity']} "
               f"items → {out}/index.html, clerks.csv, items.csv, centre.csv")


@app.command()
def plan(history: Path = typer.Option(None, help="half-hourly arrival counts CSV "
                                      "(date,slot,count,...; see onewindow sim --csv-dir)"),
         weather: Path = typer.Option(None, help="weather forecast CSV: date,rain,temp_c"),
         week: str = typer.Option("", help="a day of the week to plan (ISO date)"),
         target: float = typer.Option(20.0, help="minutes 90% of waits stay within"),
         out: Path = typer.Option(None, help="also write plan.csv, plan.svg, assumptions.txt"),
         seeds: int = typer.Option(3, help="simulated seeds per check"),
         evaluate: Path = typer.Option(None, "--evaluate", help="counts CSV: print forecast "
                                       "accuracy on held-out weeks instead"),
         weeks: int = typer.Option(8, help="--evaluate: held-out weeks"),
         catalog: Path = typer.Option(None, help="catalog JSON (default: the sample)"),
         holidays: str = typer.Option(None, "--holidays", help="holiday calendar: CN "
                                      "(mainland, 调休; default), HK, TW or a country code "
                                      "of the holidays package (default: the config's "
                                      "[forecast] holidays)"),
         config: Path = typer.Option(None, "--config", "-c",
                                     help="centre.toml ([forecast] holidays)"),
         scenario: Path = typer.Option(None, "--scenario", help="plan a described day "
                                       "(TOML, docs/forecast.md 'Scenario files') instead "
                                       "of a forecast week"),
         option: str = typer.Option(None, "--option", help="--scenario: show this option's "
                                    "per-half-hour table (default: the day as described)"),
         max_windows: int = typer.Option(None, "--max-windows", help="the centre's windows: "
                                         "at most this many staffed; an over-capacity day "
                                         "says how many residents to book elsewhere"),
         day: str = typer.Option(None, "--day", help="also print this day's per-half-hour "
                                 "table (ISO date in the week)")) -> None:
    """Weekly staffing plan: arrivals forecast, windows per half-hour (Erlang C checked by
    simulation), a described day's plan (--scenario), or the forecast's accuracy
    (--evaluate)."""
    import datetime as dt

    from .forecast import plan_cli
    from .forecast.calendars import CalendarError, HolidayCalendar, from_config

    if weeks < 1 or seeds < 1 or target <= 0:
        fail("--weeks and --seeds at least 1, --target more than 0 minutes")
    if max_windows is not None and not 1 <= max_windows <= 200:
        fail(f"--max-windows {max_windows}: from 1 to 200")
    if option is not None and scenario is None:
        fail("--option needs --scenario")
    if scenario is not None:
        from .sim.scenario import ScenarioError

        _readable(scenario, "--scenario")
        cat = _catalog(catalog)
        try:
            plan_cli.run_scenario_plan(cat, scenario, option,
                                       seeds if seeds != 3 else None)
        except ScenarioError as e:
            fail(str(e))
        return
    if config is not None:
        _readable(config, "--config")
    try:
        cal = HolidayCalendar.parse(holidays) if holidays is not None else from_config(config)
    except (CalendarError, ValueError) as e:  # tomllib's TOMLDecodeError is a ValueError
        fail(f"{'--holidays' if holidays is not None else f'--config {config}'}: {e}")
    # The CSVs are the user's: a missing file, a wrong one or too short a history is said
    # in one line (the reader's own words name the file and what is missing).
    if evaluate is not None:
        _readable(evaluate, "--evaluate")
        try:
            plan_cli.run_evaluate(evaluate, weeks, cal)
        except (ValueError, KeyError, UnicodeDecodeError) as e:
            hint = ("; give a longer history, about 9 months with the held-out weeks "
                    "(onewindow sim --history --months 9)" if "days of history" in str(e)
                    else "")
            fail(f"--evaluate {evaluate}: {_why(e)}{hint}")
        return
    if history is None or not week:
        fail("--history and --week are needed (or --evaluate)")
    monday = _date(week, "--week")
    one = None
    if day is not None:
        one = _date(day, "--day")
        start = monday - dt.timedelta(days=monday.weekday())
        if not start <= one < start + dt.timedelta(days=7):
            fail(f"--day {day}: not in the week of {start} (Monday to Sunday)")
    _readable(history, "--history")
    if weather is not None:
        _readable(weather, "--weather")
    cat = _catalog(catalog)
    try:
        plan_cli.run_plan(cat, history, weather, monday, target, out, seeds, calendar=cal,
                          max_windows=max_windows, day=one)
    except (ValueError, KeyError, UnicodeDecodeError) as e:
        fail(f"--history {history} / --weather {weather}: {_why(e)}")


def _date(text: str, option: str) -> dt.date:
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r}: a date like 2026-11-23")


def _time_of_day(text: str, option: str) -> dt.time:
    import datetime as dt

    try:
        at = dt.time.fromisoformat(text)  # "10:30": a time of day, no date or zone
    except ValueError:
        fail(f"{option} {text!r}: a time of day like 10:30")
    if at.tzinfo is not None:
        fail(f"{option} {text!r}: a local time of day like 10:30, no zone")
    return at


def _one_of(value: str, choices: tuple[str, ...], option: str) -> None:
    if value not in choices:
        fail(f"{option} {value!r}: one of {', '.join(c for c in choices if c)}")


def _readable(path: Path, option: str) -> None:
    if not path.is_file():
        fail(f"{option} {path}: no such file")


def _why(e: Exception) -> str:
    return f"no column {e}" if isinstance(e, KeyError) else str(e)


def _catalog(path: Path | None) -> Catalog:
    """The catalog JSON given (default: the sample), or one line saying why it cannot be."""
    import json

    from .catalog import load_catalog

    if path is not None:
        _readable(path, "--catalog")
    try:
        return load_catalog(path)
    except (ValueError, KeyError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as e:
        fail(f"--catalog {path}: {_why(e)}")


def _existing_database(url: str) -> None:
    """A SQLite journal named for reading must exist: opening one that does not would
    create it, empty."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        u = make_url(url)
    except ArgumentError:
        fail(f"{url!r}: not a database URL (sqlite:///journal.db, postgresql+psycopg://...)")
    if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:") \
            and not Path(str(u.database)).is_file():
        fail(f"{url}: no such database")


# Technicians' and operators' commands live in their own modules and add themselves here.
for _module in (flash_cli, devices_cli, fleet_cli, ota_cli, store_commands, api_client_cli,
                case_cli, city_cli):
    _module.register(app)

plain_help(app)  # every group, including those the modules above added

if __name__ == "__main__":
    app()
