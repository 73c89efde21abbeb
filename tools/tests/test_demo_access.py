"""The demo tells a person where its pages are and how to log in, where they see it, while
it runs (issue 18): first in the live view, so a 80x24 terminal (which crops the bottom of a
taller view) still shows them; and at once, line by line, when its output is piped, not
only in the summary after Ctrl-C."""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from types import SimpleNamespace
from typing import Any, cast

import pytest
from rich.cells import cell_len
from rich.console import Console

from onewindow.tools import demo
from onewindow.tools.demo.run import access_lines
from onewindow.tools.demo.view import LiveView

from .test_demo import _hub_app

# Port 8080 when free: one worker runs every demo test (as tools/tests/test_demo.py).
pytestmark = pytest.mark.xdist_group("demo-port-8080")

WEB = re.compile(r"网页 web (http://127\.0\.0\.1:\d+) ")
LOGIN = re.compile(r"登录 login admin / (demo-[0-9a-f]{8})")


def test_an_80_by_24_terminal_shows_the_addresses_and_the_login():
    p = demo.plan(dt.date(2026, 11, 25), 8, "mixed")
    app = _hub_app(p)
    clock = demo.SimClock(p.day, 60)
    sim = SimpleNamespace(plan=p, day_over=False)
    console = Console(width=80, height=24, record=True, file=io.StringIO())
    footer = access_lines("http://127.0.0.1:8080", "demo-0123abcd")
    view = LiveView(cast(Any, SimpleNamespace(app=app)), clock, cast(Any, sim), console,
                    footer, "MQTT 127.0.0.1:1883 · 设备 20 devices · 日志 journal /tmp/x.db")
    console.print(view.render())
    lines = console.export_text().splitlines()
    assert len(lines) > 24  # taller than the terminal: the live view crops its bottom
    top = "\n".join(lines[:24])
    assert "http://127.0.0.1:8080  /hall  /kiosk?device=kiosk-1  /dashboard" in top
    assert "admin / demo-0123abcd" in top
    for line in footer.splitlines():  # each fits 80 columns: no wrap moves a part away
        assert cell_len(line) <= 80, line


def test_piped_the_demo_prints_its_addresses_and_login_while_it_runs(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "onewindow.hub.cli", "demo", "--minutes", "2", "--speed", "120",
         "--windows", "3"],  # --live is the default: piped, the command turns it off
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert proc.stdout is not None
    seen: list[str] = []
    web = password = None
    deadline = time.monotonic() + 60
    try:
        while (web is None or password is None) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if m := WEB.search(line):
                web = m.group(1)
            if m := LOGIN.search(line):
                password = m.group(1)
        assert web is not None and password is not None, "".join(seen)
        assert proc.poll() is None  # said while it runs, not in the summary at the end
        for page in ("/hall", "/login"):  # and the address works now
            with urllib.request.urlopen(web + page, timeout=10) as r:
                assert r.status == 200
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, "".join(seen) + out
    assert "Traceback" not in "".join(seen) + out
    assert "\x1b[" not in "".join(seen)  # plain lines, no terminal control codes
