"""`onewindow devices` without a broker: what it makes of the retained messages it reads,
the fallback when the hub is down, the table and the exit status. (With the real hub,
firmware and Mosquitto: hil-tests/test_hil_fleet_health.py.)"""

from __future__ import annotations

import io
import json

from rich.console import Console

from onewindow.hub.devices import Device, DeviceSpec
from onewindow.hub.fleetwatch import FleetWatch
from onewindow.tools import devices as cli
from onewindow.tools.testkit.testbed import write_config

T0 = 1_800_000_000.0


def hub_messages() -> list[tuple[str, bytes]]:
    box, kp = Device(DeviceSpec("box-1", "box")), Device(DeviceSpec("kp-1", "keypad", 1))
    box.note_status({"dev": "box-1", "state": "ready", "fw": "0.2.0", "board": "sim",
                     "alerts": ["paper_out"], "uptime": 4000, "rssi": -58}, T0)
    watch = FleetWatch("c1")
    watch.started = T0  # the hub started 100 s ago; kp-1 has not been heard from since
    [fleet] = watch.update([box, kp], T0 + 100, force=True)
    return [("ow/c1/hub/status", b'{"v": 1, "state": "ready", "boot": "ab"}'),
            (fleet.topic, fleet.payload),
            ("ow/c1/dev/box-1/status", b'{"v": 1, "dev": "box-1", "state": "ready", '
                                       b'"fw": "0.2.0", "board": "sim", "alerts": []}')]


def text(data) -> str:
    out = io.StringIO()
    Console(file=out, width=160).print(cli.render(data))
    return out.getvalue()


def test_the_hubs_summary_is_shown_while_the_hub_runs(tmp_path):
    cfg = write_config(tmp_path / "c.toml", "c1", 1883, tmp_path / "h.db", windows=1)
    view = cli.View()
    for topic, payload in hub_messages():
        assert view.take(topic, payload)
    assert not view.take("ow/c1/dev/box-1/status", b"")  # a cleared birth
    from onewindow.hub.config import load

    data = cli.table_data(view, load(cfg), T0 + 101)
    assert data["source"] == "hub" and (data["online"], data["total"]) == (1, 2)
    assert cli.exit_code(data) == 1  # kp-1 never came
    shown = text(data)
    assert "box-1" in shown and "-58 dBm" in shown and "paper_out" in shown
    assert "! box-1 paper out" in shown and "! kp-1 offline (unknown, 100s)" in shown
    json.dumps(data)  # --json prints this as it is


def test_without_a_hub_the_births_are_shown_and_it_says_so(tmp_path):
    cfg = write_config(tmp_path / "c.toml", "c1", 1883, tmp_path / "h.db", windows=1,
                       devices=[{"id": "box-1", "role": "box"},
                                {"id": "kp-1", "role": "keypad", "window": 1}])
    from onewindow.hub.config import load

    view = cli.View()
    for topic, payload in hub_messages():
        view.take(topic, payload)
    view.take("ow/c1/hub/status", b'{"v": 1, "state": "lost"}')
    data = cli.table_data(view, load(cfg), T0)
    assert data["source"] == "births" and data["hub"] == "lost"
    rows = {r["id"]: r for r in data["devices"]}
    assert rows["box-1"]["online"] and rows["kp-1"]["state"] == "unknown"
    assert cli.exit_code(data) == 1
    assert "the hub is not running (hub/status: lost)" in text(data)
    view.take("ow/c1/dev/kp-1/status", b'{"v": 1, "dev": "kp-1", "state": "ready"}')
    assert cli.exit_code(cli.table_data(view, load(cfg), T0)) == 0


async def test_watch_follows_the_fleet_live(tmp_path):
    """`--watch` over a real Mosquitto: the table changes as the hub's retained summary does
    (published here by the test in the hub's place, from the hub's own FleetWatch)."""
    import asyncio

    import aiomqtt

    from onewindow.hub.config import load
    from onewindow.tools.testkit.testbed import Mosquitto

    box, kp = Device(DeviceSpec("box-1", "box")), Device(DeviceSpec("kp-1", "keypad", 1))
    box.note_status({"dev": "box-1", "state": "ready", "fw": "0.2.0"}, T0)
    fleet = FleetWatch("c1")
    fleet.started = T0
    with Mosquitto(tmp_path / "broker") as broker:
        cfg = load(write_config(tmp_path / "c.toml", "c1", broker.port, tmp_path / "h.db",
                                windows=1))
        out = io.StringIO()
        watching = asyncio.create_task(cli.watch(
            cfg, Console(file=out, width=160, force_terminal=True),
            until=lambda d: d["source"] == "hub" and d["online"] == 2))
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="hub-stand-in") as hub:
            await hub.publish("ow/c1/hub/status", b'{"v": 1, "state": "ready", "boot": "ab"}',
                              qos=1, retain=True)
            [msg] = fleet.update([box, kp], T0 + 1, force=True)
            await hub.publish(msg.topic, msg.payload, qos=1, retain=True)
            # until the table shows the first summary (kp-1 listed, offline)
            async with asyncio.timeout(10):
                while "kp-1" not in out.getvalue():
                    assert not watching.done(), "watch ended before kp-1 was online"
                    await asyncio.sleep(0.02)  # the console is a buffer: read it again
            assert not watching.done()  # kp-1 is not online yet
            kp.note_status({"dev": "kp-1", "state": "ready", "fw": "0.2.0"}, T0 + 2)
            [msg] = fleet.update([box, kp], T0 + 2, force=True)
            await hub.publish(msg.topic, msg.payload, qos=1, retain=True)
            data = await asyncio.wait_for(watching, 10)
    assert data["source"] == "hub" and data["online"] == 2
    assert cli.exit_code(data) == 0
