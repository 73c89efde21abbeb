"""The last step of `onewindow flash`: restart the board while reading its serial console,
and wait for its birth on the broker.

Two witnesses, because each alone misleads: the broker says *that* the device came online
(its live, non-retained `ready` birth), the console says *why not* (Wi-Fi retries, a
refused CONNACK, a traceback). `classify` turns console lines into findings; it is pure
and tested on the lines the firmware really prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from ..hub.config import HubConfig
from ..protocol import ow_protocol as proto
from .hubmqtt import client as mqtt_client
from .hubmqtt import hub_broker

CREDENTIALS_HINT = ("wrong credentials: the broker refused the device's user name or "
                    "password: re-run `onewindow provision` (new credentials in ow.json) or "
                    "`onewindow broker-config` (reload the broker's password file), then flash "
                    "again")


@dataclass(frozen=True, slots=True)
class Finding:
    check: str  # the table row: boot, Wi-Fi, broker login, hub
    ok: bool
    detail: str


def classify(line: str, broker: str = "the broker") -> Finding | None:
    """One console line -> what it tells about the device, or None."""
    if "CONNACK refused" in line:
        if "user name or password" in line or "not authorised" in line:
            return Finding("broker login", False, CREDENTIALS_HINT)
        return Finding("broker login", False, f"{broker} refused the connection "
                       f"({line.split('refused:', 1)[-1].strip()})")
    if "owmqtt: keeper: OSError" in line:
        return Finding("broker login", False, f"the device cannot reach {broker} "
                       f"({line.split('keeper:', 1)[-1].strip()}): check --broker-host is "
                       "this network's address of the broker and that it listens there")
    if line.startswith("Traceback") or line.startswith("ImportError") or "Error:" in line[:40]:
        return Finding("boot", False, f"the firmware stopped: {line.strip()[:160]}")
    if not line.startswith("{"):
        return None
    try:
        ev = json.loads(line)
    except ValueError:
        return None
    kind = ev.get("ev")
    if kind == "boot":
        return Finding("boot", True, f"{ev.get('board')} fw {ev.get('fw')} as "
                       f"{ev.get('dev')} ({ev.get('role')})")
    if kind == "wifi":
        return Finding("Wi-Fi", True, f"joined, ip {ev.get('ip')}, rssi {ev.get('rssi')} dBm")
    if kind == "wifi_retry":
        return Finding("Wi-Fi", False, f"cannot join the network (status {ev.get('status')}):"
                       " check --wifi-ssid/--wifi-password and that it is a 2.4 GHz network "
                       "in reach")
    if kind == "up":
        return Finding("broker login", True, f"connected to {broker}")
    if kind == "err" and ev.get("code") == "unknown_device":
        return Finding("hub", False, "the hub does not know this device: provision it (or add "
                       "it to centre.toml [[devices]]) and restart the hub")
    if kind == "crash":
        return Finding("boot", False, f"the app crashed: {ev.get('err')}")
    return None


class SerialConsole:
    """A board's serial port read line by line on a thread (pyserial blocks)."""

    def __init__(self, port: str, baud: int = 115200) -> None:
        import serial  # pyserial, installed with mpremote

        self.serial = serial.Serial(port, baud, timeout=0.2, exclusive=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="flash-console", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                chunk = self.serial.read(256)
            except Exception:  # the port went away (board reset over USB): stop reading
                return
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode(errors="replace").strip("\r\n >")
                if line:
                    self.log.append(line)
                    self.lines.put(line)

    def write(self, data: bytes) -> None:
        self.serial.write(data)
        self.serial.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        with contextlib.suppress(Exception):
            self.serial.close()


def start_command(board_kind: str) -> bytes:
    """What to type at the board's REPL to run main.py with the config just written.
    A real board soft-resets (Ctrl-D), which runs main.py and keeps the USB serial port.
    The unix port has no soft reset (Ctrl-D ends it) and does not run main.py by itself,
    so the sim board is told to run it (main.py sets up its own import path)."""
    interrupt = b"\r\x03\x03\x02"  # stop a running program, leave raw REPL
    if board_kind == "sim":
        return interrupt + b"exec(open('main.py').read())\r"
    return interrupt + b"\x04"


@dataclass(slots=True)
class Watch:
    findings: dict[str, Finding] = field(default_factory=dict)
    birth: dict[str, Any] | None = None
    broker_error: str | None = None
    hub_state: str | None = None
    elapsed: float = 0.0

    def note(self, f: Finding) -> None:
        # A success never hides an earlier failure of the same check (a refused login,
        # then an accepted one, is a pass; the other way round is a fail).
        old = self.findings.get(f.check)
        if old is None or f.ok or old.ok:
            self.findings[f.check] = f

    @property
    def failed(self) -> Finding | None:
        """The failure that explains why there is no birth, most specific first."""
        for check in ("broker login", "hub", "Wi-Fi", "boot"):
            f = self.findings.get(check)
            if f is not None and not f.ok:
                return f
        return None


async def watch(console: SerialConsole | None, config: HubConfig, dev: str,
                start: bytes | None, timeout: float, grace: float = 3.0) -> Watch:
    """Subscribe to the device's status and err first (only live births count, so an old
    retained one from a previous flash cannot pass), then restart the board, then wait for
    a `ready` birth until `timeout`, and `grace` seconds more for the hub's refusal of an
    unknown device. A refused login ends the wait early: the broker will keep refusing."""
    w = Watch()
    broker = hub_broker(config)
    centre = config.centre.centre_id
    label = f"{broker.host}:{broker.port}"
    t0 = time.monotonic()
    try:
        async with mqtt_client(config, broker, f"ow-flash-{dev}-{int(t0) % 100000}") as client:
            for topic in (proto.device_topic(centre, dev, "status"),
                          proto.device_topic(centre, dev, "err"), proto.hub_topic(centre)):
                await client.subscribe(topic, qos=1)
            if console is not None and start is not None:
                console.write(start)
            await _wait(client, console, w, dev, label, t0 + timeout, grace)
    except aiomqtt.MqttError as e:
        w.broker_error = (f"cannot watch the broker at {label} ({e}): check [broker] url "
                          "in centre.toml and that the broker runs")
    _drain(console, w, label)
    w.elapsed = time.monotonic() - t0
    return w


def _drain(console: SerialConsole | None, w: Watch, label: str) -> None:
    if console is None:
        return
    while True:
        try:
            line = console.lines.get_nowait()
        except queue.Empty:
            return
        f = classify(line, label)
        if f is not None:
            w.note(f)


async def _wait(client: aiomqtt.Client, console: SerialConsole | None, w: Watch, dev: str,
                label: str, deadline: float, grace: float) -> None:
    messages = client.messages.__aiter__()
    while time.monotonic() < deadline:
        _drain(console, w, label)
        f = w.failed
        if f is not None and f.check in ("broker login", "hub"):
            return
        try:
            msg = await asyncio.wait_for(messages.__anext__(), 0.2)
        except TimeoutError:
            continue
        payload = bytes(msg.payload)  # type: ignore[arg-type]
        topic = msg.topic.value
        with contextlib.suppress(proto.ProtocolError):
            if topic.endswith("/hub/status"):
                w.hub_state = proto.decode("hub", payload)["state"]
            elif topic.endswith("/err"):
                err = proto.decode("err", payload)
                if err["code"] == "unknown_device":
                    w.note(classify('{"ev": "err", "code": "unknown_device"}')
                           or Finding("hub", False, err["msg"]))
            elif not msg.retain:  # a retained birth is from before this flash
                status = proto.decode("status", payload)
                if status["dev"] == dev and status["state"] == "ready" and w.birth is None:
                    w.birth = status
                    # The hub answers a birth at once; wait briefly for a refusal.
                    deadline = min(deadline, time.monotonic() + grace)
    if w.birth is not None and w.hub_state == "ready" and "hub" not in w.findings:
        w.note(Finding("hub", True, "the hub accepted the birth"))
