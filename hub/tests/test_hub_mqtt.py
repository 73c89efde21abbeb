"""The hub over a real Mosquitto: devices are SimDevices on their own MQTT connections."""

import asyncio
import contextlib
import json
import sqlite3

import aiomqtt
import pytest

from onewindow.hub import config as hub_config
from onewindow.hub.runner import serve
from onewindow.protocol import ow_protocol as proto
from onewindow.tools.simdevice import DeviceError, SimDevice
from onewindow.tools.testbed import write_config

CENTRE = "t1"


@contextlib.asynccontextmanager
async def running_hub(tmp_path, port, catalog, **kw):
    cfg_path = write_config(tmp_path / "centre.toml", CENTRE, port, tmp_path / "hub.db",
                            catalog=catalog, **kw)
    cfg = hub_config.load(cfg_path)
    stop = asyncio.Event()
    runners = []
    task = asyncio.create_task(serve(cfg, stop, ready=runners.append))
    for _ in range(500):
        if runners and runners[0].connected.is_set():
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield runners[0]
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def journal_rows(tmp_path):
    with sqlite3.connect(tmp_path / "hub.db") as db:
        return db.execute("select count(*) from journal").fetchone()[0]


def device(port, dev, role, window=None):
    return SimDevice(CENTRE, dev, role, "127.0.0.1", port, window=window)


async def next_display(sub, window, want=lambda m: True, timeout=5.0):
    topic = proto.display_topic(CENTRE, window)
    async with asyncio.timeout(timeout):
        async for m in sub.messages:
            if m.topic.value == topic:
                msg = json.loads(m.payload)
                if want(msg):
                    return msg
    raise AssertionError("no display")


async def test_take_call_and_the_window_board_follows(tmp_path, mosquitto, small_catalog_file):
    async with running_hub(tmp_path, mosquitto.port, small_catalog_file), \
            device(mosquitto.port, "box-1", "box") as box, \
            device(mosquitto.port, "kp-1", "keypad", 1) as kp, \
            aiomqtt.Client("127.0.0.1", mosquitto.port) as sub:
        await sub.subscribe(f"ow/{CENTRE}/win/+/display", qos=1)
        res = await box.send("take", item="SOC-1")
        assert res["ticket"] == "A001" and res["ok"] and res["ahead"] == 0
        printed = await asyncio.wait_for(box.commands.get(), 5)
        assert printed["type"] == "print" and printed["ticket"] == "A001"
        assert printed["qr"].endswith("A001") and "A001" in printed["lines"]
        await kp.send("open", clerk="王*芳")
        res = await kp.send("call")
        assert res["ticket"] == "A001" and res["state"] == "calling"
        shown = await next_display(sub, 1, lambda m: m.get("ticket") == "A001")
        assert shown["state"] == "calling" and "1号窗口" in shown["text"]
        res = await kp.send("call")  # A001 completes; nobody else waits
        assert res["state"] == "idle" and "ticket" not in res
        with pytest.raises(DeviceError) as e:
            await kp.send("call")
        assert e.value.code == "queue_empty"
    assert journal_rows(tmp_path) == 4  # take, open, call, call (the refused one is not)
