"""Every mistake a person can make on the `onewindow` command line gets one clear line on
stderr and a non-zero exit, never a traceback (issue 18): the typer app's commands are
walked (an unknown option, a value that is not a number, a missing configuration, missing
required options), and hypothesis feeds bad dates, months, layouts, drills and weather to
the commands that take them; wrong and missing CSV and catalog files; `report` with a bad
month creates no database; `--help` shows bracketed words and every role."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.main import get_command
from typer.testing import CliRunner

from onewindow.hub.cli import app
from onewindow.hub.store.accounts import ROLES

ROOT = get_command(app)
RUN = CliRunner()
NUMBERS = (int, float)
FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def leaves(cmd: Any = ROOT, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    subs = getattr(cmd, "commands", None)
    if subs:
        for name, sub in subs.items():
            yield from leaves(sub, (*path, name))
    else:
        yield path, cmd


COMMANDS = list(leaves())


def options(cmd: Any) -> list[Any]:
    return [p for p in cmd.params if getattr(p, "opts", None) and p.name != "help"]


def annotation(p: Any) -> Any:
    return p.type_descriptor.annotation


def filled(cmd: Any, skip: str = "") -> list[str]:
    """Every required option with a placeholder (a number, a path that does not exist, or
    a word), and --config pointing nowhere: a command run with these must stop at once."""
    args: list[str] = []
    for p in options(cmd):
        if p.name == skip:
            continue
        if p.name == "config":
            args += [p.opts[0], "/nonexistent/centre.toml"]
        elif p.required:
            ann = annotation(p)
            args += [p.opts[0], "1" if ann in NUMBERS else
                     "/nonexistent/x" if ann is Path else "x"]
    return args


def mistake(args: list[str], cwd: Path | None = None) -> str:
    """Run `onewindow *args` in this process; assert it failed in one line; that line."""
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        res = RUN.invoke(app, args)
    finally:
        os.chdir(old)
    assert res.exception is None or isinstance(res.exception, SystemExit), (
        args, repr(res.exception))
    text = res.stdout + res.stderr
    lines = [line for line in text.splitlines() if line.strip()]
    assert res.exit_code != 0, (args, text)
    assert len(lines) == 1, (args, text)
    assert "Traceback" not in text
    return lines[0]


def ids(c: tuple[tuple[str, ...], Any]) -> str:
    return " ".join(c[0])


@pytest.mark.parametrize("command", COMMANDS, ids=ids)
def test_an_unknown_option_is_one_line(command):
    path, _ = command
    line = mistake([*path, "--no-such-option"])
    assert "--no-such-option" in line and " ".join(path) in line


@pytest.mark.parametrize("command", [c for c in COMMANDS
                                     if any(p.required for p in options(c[1]))], ids=ids)
def test_missing_required_options_are_one_line(command):
    path, _ = command
    line = mistake(list(path))  # an option, or an argument first (city-catalog publish FILE)
    assert "Missing option" in line or "Missing argument" in line, line


@pytest.mark.parametrize("command", [c for c in COMMANDS
                                     if any(p.name == "config" for p in options(c[1]))],
                         ids=ids)
def test_a_configuration_that_is_not_there_is_one_line(command):
    path, cmd = command
    line = mistake([*path, *filled(cmd)])
    # what it could not read, or the first placeholder it refused before reading it
    assert "/nonexistent/" in line or "--" in line, line


@pytest.mark.parametrize("command", [c for c in COMMANDS
                                     if any(p.name == "config" for p in options(c[1]))
                                     and c[0] != ("node",)],  # node.toml, not a centre's
                         ids=ids)
def test_a_configuration_naming_a_missing_catalog_is_one_line(command, tmp_path):
    path, cmd = command
    cfg = tmp_path / "centre.toml"
    cfg.write_text('[centre]\nid = "x"\ncatalog = "no-such-catalog.json"\n'
                   f'[store]\nurl = "sqlite:///{tmp_path / "j.db"}"\n'
                   "[[windows]]\nnumber = 1\n", encoding="utf-8")
    args = [a.replace("/nonexistent/centre.toml", str(cfg)) for a in filled(cmd)]
    line = mistake([*path, *args], cwd=tmp_path)
    assert "no-such-catalog.json" in line or "--" in line, line


def number_options() -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    for path, cmd in COMMANDS:
        for p in options(cmd):
            if annotation(p) in NUMBERS:
                yield path, cmd, p


@pytest.mark.parametrize("case", list(number_options()),
                         ids=lambda c: f"{' '.join(c[0])} {c[2].opts[0]}")
def test_a_number_option_given_a_word_is_one_line(case):
    path, cmd, p = case
    line = mistake([*path, *filled(cmd, skip=p.name), f"{p.opts[0]}=three"])
    assert p.opts[0] in line or "/nonexistent/" in line


def not_a_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return True
    return False


@FAST
@given(text=st.text(min_size=0, max_size=12))
def test_bad_dates_are_one_line(text):
    assume(not_a_date(text))
    assert "--day" in mistake(["sim", f"--day={text}"])
    assert "--start" in mistake(["sim", "--history", f"--start={text}"])
    assert "--week" in mistake(["plan", "--history", "/x.csv", f"--week={text}"])


def not_a_local_time(text: str) -> bool:
    try:
        return dt.time.fromisoformat(text).tzinfo is not None  # a zone: refused too
    except ValueError:
        return True


@FAST
@given(text=st.text(max_size=10))
def test_bad_times_of_day_are_one_line(text):
    assume(not_a_local_time(text))  # a local time of day would run the drill
    assert "--reopen-at" in mistake(["sim", "--drill", "reopen", f"--reopen-at={text}"])
    assert "--reopen-at" in mistake(["demo", "--drill", "reopen", f"--reopen-at={text}"])


@FAST
@given(word=st.text(max_size=12))
def test_unknown_layouts_drills_weather_and_modes_are_one_line(word):
    if word not in ("dedicated", "comprehensive", "mixed"):
        assert "--layout" in mistake(["sim", f"--layout={word}"])
        assert "--layout" in mistake(["demo", f"--layout={word}"])
    if word not in ("", "reopen"):
        assert "--drill" in mistake(["sim", f"--drill={word}"])
        assert "--drill" in mistake(["demo", f"--drill={word}"])
    if word not in ("dry", "rain"):
        assert "--weather" in mistake(["sim", f"--weather={word}"])
    if word not in ("", "warn", "stop", "off"):
        assert "--admission" in mistake(["demo", f"--admission={word}"])


@FAST
@given(month=st.one_of(st.text(max_size=9),
                       st.from_regex(r"\A20[0-9]{2}-(1[3-9]|00|[2-9][0-9])\Z")))
def test_a_month_that_does_not_parse_is_one_line_and_creates_no_database(month, tmp_path):
    assume(not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month))
    db = tmp_path / "journal.db"
    assert "--month" in mistake(["report", f"--month={month}", "--db", f"sqlite:///{db}"])
    assert not db.exists()


def test_report_on_a_database_that_is_not_there_creates_none(tmp_path):
    db = tmp_path / "nothing.db"
    assert "no such database" in mistake(["report", "--month", "2026-10", "--db",
                                          f"sqlite:///{db}"])
    assert not db.exists()


def test_missing_and_wrong_csv_and_catalog_files_are_one_line(tmp_path):
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n", encoding="utf-8")
    short = tmp_path / "short.csv"
    short.write_text("date,slot,count\n2026-11-23,09:00,5\n", encoding="utf-8")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    missing = tmp_path / "missing.csv"
    assert "no such file" in mistake(["plan", "--evaluate", str(missing)])
    assert "date,slot,count" in mistake(["plan", "--evaluate", str(wrong)])
    assert "open days" in mistake(["plan", "--evaluate", str(short)])
    mistake(["plan", "--evaluate", str(binary)])
    assert "no such file" in mistake(["plan", "--history", str(missing), "--week",
                                      "2026-11-30"])
    assert "date,slot,count" in mistake(["plan", "--history", str(wrong), "--week",
                                         "2026-11-30"])
    assert "--weather" in mistake(["plan", "--history", str(short), "--week", "2026-11-30",
                                   "--weather", str(missing)])
    assert "--history and --week" in mistake(["plan", "--week", "2026-11-30"])
    assert "--catalog" in mistake(["sim", "--catalog", str(missing)])
    assert "--catalog" in mistake(["sim", "--catalog", str(wrong)])  # not JSON


def test_the_installed_command_says_a_mistake_in_one_line_too(tmp_path):
    """The real process (the console script's module), not only the in-process runner."""
    for args in (["sim", "--day", "2026-02-30"], ["report", "--month", "13"],
                 ["nope"], ["user", "add", "-c", str(tmp_path / "none.toml"), "-u", "a",
                                  "-r", "admin"]):
        done = subprocess.run([sys.executable, "-m", "onewindow.hub.cli", *args],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert done.returncode != 0, args
        assert "Traceback" not in done.stdout + done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)
    assert list(tmp_path.iterdir()) == []  # nothing was created


@pytest.mark.parametrize("command", COMMANDS, ids=ids)
def test_help_shows_bracketed_words_as_written(command):
    path, cmd = command
    res = RUN.invoke(app, [*path, "--help"])
    assert res.exit_code == 0, res.output
    shown = " ".join(res.stdout.split())
    texts = [cmd.help or ""] + [p.help or "" for p in options(cmd)]
    for word in {w for t in texts for w in re.findall(r"\[[a-z_.]+\]", t)}:
        assert word in shown, (word, res.stdout)


def test_user_add_help_lists_every_role():
    res = RUN.invoke(app, ["user", "add", "--help"])
    shown = " ".join(res.stdout.split())
    for role in ROLES:
        assert role in shown, role


def test_the_scenario_and_city_commands_say_a_mistake_in_one_line(tmp_path, monkeypatch):
    """The commands added with the scenarios and the city tier (issues 19, 20): a missing
    file, a file that is not TOML, a URL that is none, an option value out of range, each
    one line and a non-zero exit (they were tracebacks, or retried a malformed NATS URL for
    ever as if the city were down); a server that refuses is one line too (exit 1)."""
    monkeypatch.setenv("OW_CITY_PASSWORD", "pw")
    monkeypatch.setenv("OW_CITY_TOKEN_KEY", "key")
    monkeypatch.setenv("OW_CITY_WEB_SECRET", "secret")
    missing, bad = tmp_path / "missing.toml", tmp_path / "bad.toml"
    bad.write_text("[centre\nid=", encoding="utf-8")
    centre = tmp_path / "centre.toml"
    centre.write_text(f'[centre]\nid = "c1"\n[store]\nurl = "sqlite:///{tmp_path / "j.db"}"\n'
                      "[[windows]]\nnumber = 1\n", encoding="utf-8")
    pairs, lonely = tmp_path / "pairs.txt", tmp_path / "lonely.txt"
    pairs.write_text("c1 pw\n", encoding="utf-8")
    lonely.write_text("# centres\nc1 pw\nc2\n", encoding="utf-8")
    nats, pg = "nats://127.0.0.1:1", "postgresql://127.0.0.1:1/city"
    for cmd in ("sim", "plan"):
        assert "no such file" in mistake([cmd, "--scenario", str(missing)])
        assert "not TOML" in mistake([cmd, "--scenario", str(bad)])
    assert "--option" in mistake(["plan", "--scenario", "docs/scenarios/cold-rain-lunch.toml",
                                  "--option", "nope"], cwd=Path(__file__).parents[2])
    export = ["city-export", "-c", str(centre), "--nats"]
    assert "bad.toml" in mistake(["city-export", "-c", str(bad), "--nats", nats])
    for url in ("not a url", "http://city:4222", "nats://city:port", "nats://city:4222/x"):
        assert "--nats" in mistake([*export, url])
        assert "--nats" in mistake(["city-ingest", "--nats", url, "--db", pg])
    assert "--password-file" in mistake([*export, nats, "--password-file", str(missing)])
    assert "--token-key-file" in mistake([*export, nats, "--token-key-file", str(missing)])
    assert "--snapshot-every" in mistake([*export, nats, "--snapshot-every", "0"])
    assert "--replicas" in mistake(["city-ingest", "--nats", nats, "--db", pg,
                                    "--replicas", "7"])
    assert "--secret-file" in mistake(["city-web", "--db", pg, "--secret-file", str(missing)])
    assert "--port" in mistake(["city-web", "--db", pg, "--port", "99999"])
    one_offs = (["city-user", "-u", "a", "-r", "city", "--password", "p"],
                ["city-centre", "--centre", "c1"], ["city-purge", "--resident-days", "30"])
    for url in ("nonsense", "mysql://u@h/db", "postgresql://u:hidden@h:port/db"):
        for argv in (["city-ingest", "--nats", nats], ["city-web"], *one_offs):
            line = mistake([*argv, "--db", url])
            assert "--db" in line and "not a PostgreSQL URL" in line and "hidden" not in line
    for argv in one_offs:  # nothing listens there: one line, the server's own words
        line = mistake([*argv, "--db", "postgresql://u:hidden@127.0.0.1:1/city"])
        assert "Connection refused" in line and "hidden" not in line
    assert "--role" in mistake(["city-user", "--db", pg, "-u", "a", "-r", "mayor",
                                "--password", "p"])
    assert "--resident-days" in mistake(["city-purge", "--db", pg, "--resident-days", "-5"])
    conf = ["city-nats-config", "--services", str(pairs), "--out", str(tmp_path / "out")]
    assert "--centres" in mistake([*conf, "--nodes", "n1=h:1:2:3", "--centres", str(missing)])
    assert "line 3" in mistake([*conf, "--nodes", "n1=h:1:2:3", "--centres", str(lonely)])
    for nodes in ("garbage", "n1=h:x:2:3", "n1=h:1:2", "n1=h:1:2:70000"):
        assert "--nodes" in mistake([*conf, "--nodes", nodes, "--centres", str(pairs)])
    assert "--out" in mistake([*conf[:-1], str(bad), "--nodes", "n1=h:1:2:3",
                               "--centres", str(pairs)])
    assert not (tmp_path / "out").exists()
