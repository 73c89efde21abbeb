"""The same checks against a real board on a serial port (`pytest hil-tests --port
/dev/ttyUSB0`). Skipped, saying so, when no board is attached.

The board gets the image tools/firmware.py builds for it, an ow.json making it window 1's
LED board, and joins a Mosquitto and hub started here; a keypad simulated over MQTT calls
and the board's serial log (the same JSON lines the sim board prints) must show the ticket.
Wi-Fi and the address the board reaches this machine on come from the environment:
OW_WIFI_SSID, OW_WIFI_PASSWORD, OW_BROKER_HOST, and OW_BOARD (default esp32-devkitc);
OW_MICROPYTHON (a .bin or .uf2) makes the `onewindow flash` test write MicroPython first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from pathlib import Path

import pytest

from onewindow.tools.firmware import build, deploy
from onewindow.tools.simdevice import SimDevice
from onewindow.tools.testkit.ports import quiet_port
from onewindow.tools.testkit.testbed import HubProcess, Mosquitto, write_config

pytestmark = pytest.mark.timeout(300)


def _lines(port: str, until: float):
    import serial  # pyserial, installed with mpremote

    with serial.Serial(port, 115200, timeout=0.5) as s:
        while time.monotonic() < until:
            line = s.readline().decode(errors="replace").strip()
            if line.startswith("{"):
                try:
                    yield json.loads(line)
                except ValueError:
                    continue


def _wait_serial(port: str, ev: str, pred, timeout: float) -> dict:
    for e in _lines(port, time.monotonic() + timeout):
        if e.get("ev") == ev and pred(e):
            return e
    raise AssertionError(f"board on {port}: no {ev} within {timeout} s")


@pytest.fixture
def lan() -> tuple[dict, str]:
    """The board's network (it must reach this machine's broker) and its board file."""
    env = {k: os.environ.get(k) for k in ("OW_WIFI_SSID", "OW_WIFI_PASSWORD",
                                           "OW_BROKER_HOST")}
    if not all(env.values()):
        pytest.skip("set OW_WIFI_SSID, OW_WIFI_PASSWORD and OW_BROKER_HOST for a real board")
    return env, os.environ.get("OW_BOARD", "esp32-devkitc")


@contextlib.contextmanager
def lan_centre(tmp_path):
    """Mosquitto with a listener on the LAN for the board, and a hub on it."""
    lan_port = quiet_port()
    with Mosquitto(tmp_path / "broker", extra_conf=f"listener {lan_port} 0.0.0.0\n"
                   "allow_anonymous true") as broker:
        cfg_path = write_config(tmp_path / "centre.toml", "hil", broker.port,
                                tmp_path / "hub.db", windows=1)
        hub = HubProcess(cfg_path, tmp_path / "hub.log").start()
        try:
            yield broker, lan_port, cfg_path
        finally:
            hub.stop()


async def test_real_led_board_shows_a_call(board_port, lan, tmp_path):
    env, board = lan
    with lan_centre(tmp_path) as (broker, lan_port, _cfg):
        image = tmp_path / "image"
        build(board, image)
        ow = tmp_path / "ow.json"
        ow.write_text(json.dumps({
            "centre": "hil", "dev": "led-1", "role": "led", "window": 1, "board": board,
            "broker": {"host": env["OW_BROKER_HOST"], "port": lan_port},
            "wifi": {"ssid": env["OW_WIFI_SSID"], "password": env["OW_WIFI_PASSWORD"]}}))
        deploy(board_port, image, ow)
        _wait_serial(board_port, "up", lambda e: True, 60)
        async with SimDevice("hil", "box-1", "box", "127.0.0.1", broker.port) as box, \
                SimDevice("hil", "kp-1", "keypad", "127.0.0.1", broker.port,
                          window=1) as kp:
            await box.send("take", item="SOC-001")
            await kp.send("open")
            reply = await kp.send("call")
        drawn = await asyncio.to_thread(
            _wait_serial, board_port, "draw",
            lambda e: e.get("ticket") == reply["ticket"], 10)
        assert drawn["state"] == "calling"


def test_real_board_onewindow_flash(board_port, lan, tmp_path):
    """`onewindow flash` end to end on the attached board: MicroPython (when OW_MICROPYTHON
    names an image), the firmware, ow.json, then its birth on the broker: PASS."""
    from onewindow.tools import flash

    env, board = lan
    image = os.environ.get("OW_MICROPYTHON")
    with lan_centre(tmp_path) as (_broker, lan_port, cfg_path):
        ow = tmp_path / "ow.json"
        ow.write_text(json.dumps({"centre": "hil", "dev": "led-1", "role": "led",
                                  "window": 1, "board": board,
                                  "broker": {"host": env["OW_BROKER_HOST"],
                                             "port": lan_port}}))
        report = flash.run(flash.Options(
            cfg_path, board_port, board, "led-1", "led", 1,
            micropython=Path(image) if image else None,
            wifi_ssid=env["OW_WIFI_SSID"], wifi_password=env["OW_WIFI_PASSWORD"],
            device_config=ow, timeout=90))
        flash.print_report(report)
        assert report.ok, report.rows
