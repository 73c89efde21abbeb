"""Crashes and outages with real processes: SIGKILL the hub under load, restart the broker."""

import asyncio
import collections
import json
import random

import aiomqtt

from onewindow.hub import config as hub_config
from onewindow.hub.runner import build_app
from onewindow.hub.store.journal import Journal
from onewindow.protocol import ow_protocol as proto
from onewindow.tools.simdevice import DeviceError, SimDevice
from onewindow.tools.testkit.ports import quiet_port
from onewindow.tools.testkit.testbed import HubProcess, Mosquitto, default_devices, write_config

from .test_hub_mqtt import CENTRE, running_hub

WINDOWS = 4
BOXES = 3


async def wait_hub_ready(port, boot_not=None, timeout=20.0):
    async with aiomqtt.Client("127.0.0.1", port) as sub:
        await sub.subscribe(proto.hub_topic(CENTRE), qos=1)
        async with asyncio.timeout(timeout):
            async for m in sub.messages:
                msg = json.loads(m.payload)
                if msg["state"] == "ready" and msg.get("boot") != boot_not:
                    return msg["boot"]


async def retained_displays(port):
    out = {}
    async with aiomqtt.Client("127.0.0.1", port) as sub:
        await sub.subscribe(f"ow/{CENTRE}/win/+/display", qos=1)
        await sub.subscribe(proto.hall_topic(CENTRE), qos=1)
        async with asyncio.timeout(5):
            async for m in sub.messages:
                out[m.topic.value] = json.loads(m.payload)
                if len(out) == WINDOWS + 1:
                    return out


async def test_sigkill_under_load_loses_nothing_and_reissues_no_number(tmp_path, mosquitto,
                                                                      small_catalog_file):
    devices = default_devices(WINDOWS) + [{"id": f"box-{i}", "role": "box"}
                                          for i in range(2, BOXES + 1)]
    cfg_path = write_config(tmp_path / "centre.toml", CENTRE, mosquitto.port,
                            tmp_path / "hub.db", windows=WINDOWS, devices=devices,
                            catalog=small_catalog_file)
    hub = HubProcess(cfg_path, tmp_path / "hub.log").start()
    boot = await wait_hub_ready(mosquitto.port)
    acked: list[str] = []
    calls = collections.Counter()
    rng = random.Random(7)
    stop = asyncio.Event()

    async def resident_flow(box):
        while not stop.is_set():
            res = await box.send("take", item=rng.choice(["SOC-1", "MED-1", "CIV-1"]),
                                 timeout=60, retry=0.5)
            acked.append(res["ticket"])
            await asyncio.sleep(rng.uniform(0, 0.02))

    async def clerk_flow(kp):
        await kp.send("open", timeout=60, retry=0.5)
        while not stop.is_set():
            try:
                res = await kp.send("call", timeout=60, retry=0.5)
                if "ticket" in res:
                    calls[res["ticket"]] += 1
            except DeviceError as e:
                assert e.code == "queue_empty", e.reply
            await asyncio.sleep(rng.uniform(0, 0.03))

    boxes = [SimDevice(CENTRE, f"box-{i}", "box", "127.0.0.1", mosquitto.port)
             for i in range(1, BOXES + 1)]
    kps = [SimDevice(CENTRE, f"kp-{n}", "keypad", "127.0.0.1", mosquitto.port, window=n)
           for n in range(1, WINDOWS + 1)]
    for d in boxes + kps:
        await d.__aenter__()
    flows = [asyncio.create_task(resident_flow(b)) for b in boxes]
    flows += [asyncio.create_task(clerk_flow(k)) for k in kps]
    kills = 0
    try:
        # The fault injector's timing (not waits): traffic for a random while, SIGKILL, a
        # random outage, restart; after the last one, traffic for a while longer.
        for _ in range(4):
            await asyncio.sleep(rng.uniform(0.4, 1.2))
            hub.kill()
            kills += 1
            await asyncio.sleep(rng.uniform(0.05, 0.4))
            hub.start()
            boot = await wait_hub_ready(mosquitto.port, boot_not=boot)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*flows), 60)
    finally:
        stop.set()
        for d in boxes + kps:
            await d.__aexit__(None, None, None)
    assert kills == 4 and len(acked) > 50

    # No number was issued twice, and every acknowledged ticket is in the durable state.
    assert len(acked) == len(set(acked)), "a ticket number was issued twice"
    journal = Journal(f"sqlite:///{tmp_path / 'hub.db'}")
    app = build_app(hub_config.load(cfg_path), journal)
    numbers = {t.number for t in app.centre.tickets.values()}
    assert set(acked) <= numbers, "an acknowledged ticket was lost"
    takes = sum(1 for r in journal.read() if r.op == "take")
    assert takes == len(acked), "a retried event issued a second ticket"
    assert all(n == 1 for n in calls.values()), "a resident was called twice"

    # The state a restart rebuilds is the state the hub had: retained displays identical.
    before = await retained_displays(mosquitto.port)
    hub.kill()
    hub.start()
    await wait_hub_ready(mosquitto.port, boot_not=boot)
    after = await retained_displays(mosquitto.port)
    assert after == before
    assert hub.stop() is not None
    journal.close()


async def test_broker_restart_that_loses_retained_state_leaves_no_board_wrong(
        tmp_path, small_catalog_file):
    port = quiet_port(pair=True)
    broker = Mosquitto(tmp_path / "b", port=port).start()
    try:
        async with running_hub(tmp_path, port, small_catalog_file) as runner:
            async with SimDevice(CENTRE, "box-1", "box", "127.0.0.1", port) as box, \
                    SimDevice(CENTRE, "kp-3", "keypad", "127.0.0.1", port, window=3) as kp:
                await box.send("take", item="SOC-1")
                await kp.send("open")
                await kp.send("call")
            broker.stop()  # persistence is off: every retained message is gone
            await asyncio.sleep(0.3)  # the outage's intended length
            broker = Mosquitto(tmp_path / "b", port=port).start()
            # Connected (again, or not yet noticed the outage): either way the display
            # state is republished on the reconnect, and the subscription below sees it.
            await asyncio.wait_for(runner.connected.wait(), 15)
            async with aiomqtt.Client("127.0.0.1", port) as sub:
                await sub.subscribe(proto.display_topic(CENTRE, 3), qos=1)
                async with asyncio.timeout(5):
                    async for m in sub.messages:
                        msg = json.loads(m.payload)
                        assert msg["ticket"] == "A001" and msg["state"] == "calling"
                        break
    finally:
        broker.stop()


async def test_embedded_broker_serves_devices(tmp_path, small_catalog_file):
    port = quiet_port(pair=True)
    cfg = write_config(tmp_path / "centre.toml", CENTRE, None, tmp_path / "hub.db",
                       catalog=small_catalog_file,
                       extra=f"\n[broker]\nembedded_port = {port}\n")
    hub = HubProcess(cfg, tmp_path / "hub.log").start()
    try:
        for _ in range(300):
            try:
                await wait_hub_ready(port, timeout=1)
                break
            except (aiomqtt.MqttError, TimeoutError, OSError):
                await asyncio.sleep(0.05)
        async with SimDevice(CENTRE, "box-1", "box", "127.0.0.1", port) as box, \
                SimDevice(CENTRE, "kp-1", "keypad", "127.0.0.1", port, window=1) as kp:
            assert (await box.send("take", item="MED-1"))["ticket"] == "B001"
            await kp.send("open")
            assert (await kp.send("call"))["ticket"] == "B001"
    finally:
        assert hub.stop() == 0, (tmp_path / "hub.log").read_text()
