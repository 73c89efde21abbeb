"""`onewindow demo`: the whole thing as a user runs it, and its pure helpers."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys

import pytest

from onewindow.tools import demo


def _number(label: str, text: str) -> int:
    m = re.search(rf"{label}:\s*(\d+)", text)
    assert m is not None, f"no {label!r} in the output:\n{text}"
    return int(m.group(1))


def test_demo_runs_a_morning_and_prints_its_summary() -> None:
    # 0.15 real minutes at 120x: 08:50 to about 09:08, the windows open at 09:00.
    cmd = [sys.executable, "-m", "onewindow.hub.cli", "demo", "--minutes", "0.15",
           "--speed", "120", "--no-live"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=90,
                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    issued = _number("Tickets issued", out.stdout)
    served = _number("Tickets served", out.stdout)
    waiting = _number("Still waiting", out.stdout)
    assert issued > 0, text
    assert served > 0, text
    assert served + waiting <= issued, text
    assert re.search(r"90th percentile wait:\s*\d+\.\d+ min", out.stdout), text
    assert "09:0" in out.stdout, "no progress line after the windows opened:\n" + text
    for bad in ("Traceback", "Task was destroyed", "never awaited", "Device errors"):
        assert bad not in text, text


def test_demo_day_is_the_most_recent_weekday() -> None:
    assert demo.demo_day(dt.date(2026, 11, 23)) == dt.date(2026, 11, 23)  # a Monday
    assert demo.demo_day(dt.date(2026, 11, 28)) == dt.date(2026, 11, 27)  # Sat -> Fri
    assert demo.demo_day(dt.date(2026, 11, 29)) == dt.date(2026, 11, 27)  # Sun -> Fri


def test_clock_starts_at_0850_china_time_and_runs_at_speed() -> None:
    clock = demo.SimClock(dt.date(2026, 11, 23), speed=600)
    start = clock()
    assert clock.local(start).strftime("%Y-%m-%d %H:%M %z") == "2026-11-23 08:50 +0800"
    assert clock() == start  # stopped until go(): the hub starts on 08:50 sharp
    clock.go()
    assert clock._t0 is not None
    clock._t0 -= 1.0  # started one real second ago
    assert 600 <= clock() - start <= 640
    with pytest.raises(ValueError):
        demo.SimClock(dt.date(2026, 11, 23), speed=0)


def test_arrivals_peak_mid_morning_and_stop_before_closing() -> None:
    clock = demo.SimClock(dt.date(2026, 11, 23), speed=60)

    def rate(h: int, m: int) -> float:
        return demo.arrival_rate(clock.at(dt.time(h, m)), clock, 1.0) * 3600

    assert rate(10, 0) > rate(9, 0) > 0
    assert rate(10, 0) > rate(12, 15)
    assert rate(10, 0) == max(rate(h, m) for h in range(8, 17) for m in (0, 15, 30, 45))
    assert rate(16, 50) == 0


def test_window_layout() -> None:
    assert demo.window_kinds(4) == ["comprehensive"] * 4
    assert demo.window_kinds(8) == ["comprehensive"] * 6 + ["card", "cash"]
    cfg = demo.demo_config(8, 1883, demo.Path("/tmp/x.db"))
    roles = [d["role"] for d in cfg["devices"]]
    assert roles.count("box") == 2 and roles.count("kiosk") == 1
    assert roles.count("keypad") == 8 and roles.count("led") == 8


def test_clerk_names_are_masked() -> None:
    names = demo.clerk_names(8, demo.random.Random(1))
    assert len(set(names)) == 8
    assert all("*" in n and len(n) in (2, 3) for n in names)
