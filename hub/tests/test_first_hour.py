"""A newcomer's first hour with `onewindow hub` (issue 18): on a machine where Mosquitto
already listens on the default 1883 and something holds 8080, the hub says in one line which
port is taken and which setting moves it, and creates nothing; a hub that starts prints what
it serves (broker, web address, configuration, journal) and how to log in.

The ports are held by the test itself (a listening socket), so the test does not depend on
the machine's own Mosquitto."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from onewindow.hub.cliutil import CONFIG_ERROR_EXIT
from onewindow.tools.testkit.ports import quiet_port
from onewindow.tools.testkit.testbed import terminate, write_config

HUB = [sys.executable, "-m", "onewindow.hub.cli", "hub", "--config"]


@contextmanager
def held(port: int, host: str = "127.0.0.1") -> Iterator[socket.socket]:
    """A program listening on `port`, as the system's Mosquitto would."""
    with socket.socket() as s:
        s.bind((host, port))
        s.listen()
        yield s


def centre(tmp_path: Path, broker: int, web: int, extra: str = "") -> Path:
    """A centre on the embedded broker (no [broker] url) with a web side."""
    return write_config(tmp_path / "centre.toml", "fh", None, tmp_path / "hub.db",
                        windows=2, extra=f"\n[broker]\nembedded_port = {broker}\n"
                                         f"\n[web]\nport = {web}\n{extra}")


def refused(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HUB, str(cfg)], capture_output=True, text=True, timeout=60,
                          cwd=cfg.parent)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == CONFIG_ERROR_EXIT, done.stderr[-2000:]
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_busy_broker_port_names_the_port_and_the_setting_and_creates_nothing(tmp_path):
    port = quiet_port(pair=True)
    cfg = centre(tmp_path, port, quiet_port())
    with held(port):
        line = one_line(refused(cfg))
    assert f"port {port}" in line and "[broker] embedded_port" in line
    assert not (tmp_path / "hub.db").exists()  # nothing was started or created
    assert not (tmp_path / "hub-broker").exists()


def test_a_busy_hub_listener_names_embedded_hub_port(tmp_path):
    port = quiet_port(pair=True)
    cfg = centre(tmp_path, port, quiet_port())
    with held(port + 1):  # the default hub listener: embedded_port + 1
        line = one_line(refused(cfg))
    assert f"port {port + 1}" in line and "[broker] embedded_hub_port" in line


def test_a_busy_web_port_names_web_port_even_on_all_interfaces(tmp_path):
    web = quiet_port()
    cfg = write_config(tmp_path / "centre.toml", "fh", None, tmp_path / "hub.db", windows=2,
                       extra=f"\n[broker]\nembedded_port = {quiet_port(pair=True)}\n"
                             f'\n[web]\nhost = "0.0.0.0"\nport = {web}\n')
    with held(web):  # something on 127.0.0.1:web; the hub wants 0.0.0.0:web
        line = one_line(refused(cfg))
    assert f"port {web}" in line and "[web] port" in line


def test_one_port_given_twice_is_refused(tmp_path):
    port = quiet_port(pair=True)
    cfg = centre(tmp_path, port, port + 1)
    line = one_line(refused(cfg))
    assert "[web] port" in line and "twice" in line


def test_a_hub_that_starts_says_what_it_serves_and_how_to_log_in(tmp_path):
    broker, web = quiet_port(pair=True), quiet_port()
    cfg = centre(tmp_path, broker, web)
    proc = subprocess.Popen([*HUB, str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # blocks until the hub says it is ready (or exits)
        assert first.startswith("OneWindow hub fh ready"), (first, proc.stderr)
        banner = [proc.stdout.readline().strip() for _ in range(6)]
    finally:
        terminate(proc, 10)
    text = "\n".join(banner)
    assert f"config   {cfg.resolve()}" in text
    assert f"journal  sqlite:///{(tmp_path / 'hub.db').resolve()}" in text
    assert (f"devices mqtt://127.0.0.1:{broker}, hub and staff tools "
            f"mqtt://127.0.0.1:{broker + 1}") in text
    assert f"http://127.0.0.1:{web}/login" in text and f"http://127.0.0.1:{web}/hall" in text
    assert f"http://127.0.0.1:{web}/metrics" in text
    # no account yet: the banner gives the command that makes the first admin
    assert f"onewindow user add -c {cfg} -u admin -r admin" in text


def test_a_hub_whose_broker_is_not_there_says_so_in_its_banner(tmp_path):
    """[broker] url naming a port nobody listens on: the hub still serves its pages, and its
    banner says it is not connected yet, after CONNECT_WAIT, instead of waiting silently."""
    dead, web = quiet_port(), quiet_port()
    cfg = write_config(tmp_path / "centre.toml", "fh", dead, tmp_path / "hub.db", windows=2,
                       extra=f"\n[web]\nport = {web}\n")
    proc = subprocess.Popen([*HUB, str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        banner = first + "".join(proc.stdout.readline() for _ in range(3))
    finally:
        terminate(proc, 10)
    assert first.startswith("OneWindow hub fh ready"), first
    assert f"mqtt://127.0.0.1:{dead}" in banner and "NOT connected yet" in banner, banner


def test_a_bad_log_or_metrics_setting_is_one_line(tmp_path):
    for extra, said in (('[log]\nformat = "xml"\n', "[log] format"),
                        ('[log]\nlevel = "LOUD"\n', "[log] level"),
                        ('[metrics]\ntoken = "short"\n', "[metrics] token"),
                        ("[metrics]\nenabled = 3\n", "[metrics] enabled"),
                        ("[metrics]\npath = 1\n", "unknown key")):
        cfg = centre(tmp_path, quiet_port(pair=True), quiet_port(), extra)
        line = one_line(refused(cfg))
        assert said in line, line
        assert not (tmp_path / "hub.db").exists()


def test_catalog_and_window_mistakes_are_one_line_before_anything_starts(tmp_path):
    """A catalog that is not there or does not parse, a window of an unknown kind or with
    a skill naming nothing, a device at a window not configured: one line, exit 2, and no
    journal or broker folder created (hub/preflight.py check_centre)."""
    (tmp_path / "broken.json").write_text('{"version": ', encoding="utf-8")
    (tmp_path / "partial.json").write_text('{"version": 1}', encoding="utf-8")
    cases = (
        ('catalog = "missing.json"', "", "missing.json"),
        ('catalog = "broken.json"', "", "broken.json"),
        ('catalog = "partial.json"', "", "window_kinds"),
        ("", 'kind = "weird"', "unknown kind 'weird'"),
        ("", 'skills = ["NO-SUCH-ITEM"]', "NO-SUCH-ITEM"),
        ("", '[[devices]]\nid = "kp-9"\nrole = "keypad"\nwindow = 9', "window 9"),
    )
    for centre_line, window_lines, said in cases:
        cfg = tmp_path / "centre.toml"
        cfg.write_text(f'[centre]\nid = "fh"\n{centre_line}\n[store]\n'
                       f'url = "sqlite:///{tmp_path / "hub.db"}"\n[broker]\n'
                       f"embedded_port = {quiet_port(pair=True)}\n[[windows]]\nnumber = 1\n"
                       f"{window_lines}\n", encoding="utf-8")
        line = one_line(refused(cfg))
        assert said in line, line
        assert not (tmp_path / "hub.db").exists()
        assert not (tmp_path / "hub-broker").exists()
