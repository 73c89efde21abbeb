"""The fleet on real parts: the hub's retained summary on `ow/{centre}/hub/fleet` and
`onewindow devices`, with the firmware on the unix port: a box out of paper, a board
killed (offline after `[fleet] offline_after`), a box whose broker link keeps dropping,
and the hub itself gone (the table falls back to the devices' births)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import Any

import aiomqtt
import pytest

from onewindow.tools.testkit.fwsim import BOX_BUTTONS, FirmwareProcess
from onewindow.tools.testkit.ports import quiet_port
from onewindow.tools.testkit.testbed import HubProcess, Mosquitto, write_config

pytestmark = pytest.mark.timeout(120)
FLEET = "[fleet]\noffline_after = 2\nreconnects = 2\nreconnect_window = 120\n"


class Cutter:
    """A TCP proxy in front of the broker that can drop every connection through it, the
    way a flaky Wi-Fi link does (no DISCONNECT: the broker publishes the will)."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = quiet_port()
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> Cutter:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        return self

    async def _client(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection("127.0.0.1", self.upstream)
        self.writers += [w, uw]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(4096):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(r, uw), pipe(ur, w))

    def cut(self) -> None:
        for w in self.writers:
            w.transport.abort()
        self.writers = []

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()


async def summary_until(port: int, pred, timeout: float = 20.0) -> dict[str, Any]:
    """The first fleet summary (retained or live) for which pred holds."""
    last = None
    async with aiomqtt.Client("127.0.0.1", port) as c:
        await c.subscribe("ow/fl/hub/fleet", qos=1)
        end = time.monotonic() + timeout
        messages = c.messages.__aiter__()
        while time.monotonic() < end:
            try:
                msg = await asyncio.wait_for(messages.__anext__(), end - time.monotonic())
            except TimeoutError:
                break
            last = json.loads(bytes(msg.payload))  # type: ignore[arg-type]
            if pred(last):
                return last
    raise AssertionError(f"no such fleet summary within {timeout} s; last: {last}")


def alerts(s: dict[str, Any]) -> set[tuple[str, str]]:
    return {(a["dev"], a["what"]) for a in s["alerts"]}


async def devices_cli(cfg) -> tuple[int, dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "onewindow.hub.cli", "devices", "--config", str(cfg), "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode in (0, 1), err.decode()
    return proc.returncode, json.loads(out)


async def test_fleet_summary_alerts_and_the_devices_table(tmp_path):
    with Mosquitto(tmp_path / "broker") as broker:
        cfg = write_config(tmp_path / "centre.toml", "fl", broker.port, tmp_path / "hub.db",
                           windows=1, extra=FLEET,
                           devices=[{"id": "box-1", "role": "box"},
                                    {"id": "kp-1", "role": "keypad", "window": 1}])
        hub = HubProcess(cfg, tmp_path / "hub.log").start()
        cutter = await Cutter(broker.port).start()
        box = FirmwareProcess({"centre": "fl", "dev": "box-1", "role": "box",
                               "buttons": BOX_BUTTONS,
                               "broker": {"host": "127.0.0.1", "port": cutter.port}},
                              tmp_path / "box-1")
        kp = FirmwareProcess({"centre": "fl", "dev": "kp-1", "role": "keypad", "window": 1,
                              "broker": {"host": "127.0.0.1", "port": broker.port}},
                             tmp_path / "kp-1")
        try:
            await asyncio.gather(box.start(), kp.start())
            s = await summary_until(broker.port, lambda s: s["online"] == 2)
            assert alerts(s) == set()
            code, table = await devices_cli(cfg)
            assert code == 0 and table["source"] == "hub"
            rows = {r["id"]: r for r in table["devices"]}
            assert rows["box-1"]["board"] == "sim" and rows["box-1"]["fw"]
            assert rows["kp-1"]["window"] == 1 and rows["kp-1"]["online"]

            # Out of paper: the box finds out when someone presses for a ticket.
            await box.ctl("paper out")
            await box.press("b0")
            await summary_until(broker.port, lambda s: ("box-1", "paper_out") in alerts(s))
            await box.ctl("paper ok")

            # A board killed: its will at once, the alert after offline_after (2 s).
            kp.kill()
            t0 = time.monotonic()
            s = await summary_until(broker.port, lambda s: ("kp-1", "offline") in alerts(s))
            assert 1.5 < time.monotonic() - t0 < 8
            code, table = await devices_cli(cfg)
            assert code == 1
            assert {(a["dev"], a["what"]) for a in table["alerts"]} >= {("kp-1", "offline")}

            # The box's link drops three times: more than `reconnects = 2`.
            for _ in range(3):
                up = box.mark()
                cutter.cut()
                await box.wait("up", since=up, timeout=15)
            s = await summary_until(broker.port, lambda s: ("box-1", "reconnects") in alerts(s))
            row = next(r for r in s["devices"] if r["id"] == "box-1")
            assert row["reconnects"] >= 3 and row["online"]

            # The hub gone: the table comes from the devices' own births, and says so.
            hub.stop()
            code, table = await devices_cli(cfg)
            assert table["source"] == "births" and table["hub"] == "disconnected"
            rows = {r["id"]: r for r in table["devices"]}
            assert rows["box-1"]["online"] and not rows["kp-1"]["online"]
            assert code == 1
        finally:
            await asyncio.gather(box.stop(), kp.stop(), return_exceptions=True)
            await cutter.stop()
            hub.stop()
