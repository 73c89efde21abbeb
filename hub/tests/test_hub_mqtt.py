"""The hub over a real Mosquitto: devices are SimDevices on their own MQTT connections."""

import asyncio
import contextlib
import dataclasses
import json
import sqlite3

import aiomqtt
import pytest

from onewindow.hub import config as hub_config
from onewindow.hub.serve import serve
from onewindow.protocol import ow_protocol as proto
from onewindow.tools.simdevice import DeviceError, SimDevice
from onewindow.tools.testkit.testbed import write_config

CENTRE = "t1"


@contextlib.asynccontextmanager
async def serving(cfg):
    """`onewindow hub` in this process for a HubConfig, once connected to its broker."""
    stop = asyncio.Event()
    made = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(cfg, stop, ready=made.set_result))

    async def connected():
        runner = await made
        await runner.connected.wait()
        return runner

    up = asyncio.create_task(connected())
    # whichever comes first: connected, or serve() ending (its error is the test's failure)
    await asyncio.wait({up, task}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        up.cancel()
        task.result()
    if not up.done():
        up.cancel()
        stop.set()
        raise AssertionError("the hub did not connect")
    try:
        yield up.result()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def running_hub(tmp_path, port, catalog, database_url=None, **kw):
    cfg_path = write_config(tmp_path / "centre.toml", CENTRE, port, tmp_path / "hub.db",
                            catalog=catalog, **kw)
    cfg = hub_config.load(cfg_path)
    if database_url is not None:
        cfg = dataclasses.replace(cfg, database_url=database_url)
    async with serving(cfg) as runner:
        yield runner


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
        printed = await box.next_command("print")
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
    # the box's offline block (on its birth), take, open, call, call (the refused one is not)
    assert journal_rows(tmp_path) == 5


async def test_bad_input_gets_a_clear_error_and_changes_nothing(
        tmp_path, mosquitto, small_catalog_file):
    async with running_hub(tmp_path, mosquitto.port, small_catalog_file), \
            device(mosquitto.port, "box-1", "box") as box, \
            device(mosquitto.port, "kp-1", "keypad", 1) as kp, \
            device(mosquitto.port, "intruder", "box") as stranger:
        await box.send("take", item="SOC-1")
        rows = journal_rows(tmp_path)

        async def expect(dev, payload, seq, code):
            with pytest.raises(DeviceError) as e:
                await dev.send_raw(payload, seq, timeout=5)
            assert e.value.code == code, e.value.reply
            assert e.value.reply["msg"]  # a sentence a technician can act on

        async def expect_err_topic(dev, payload, code):
            before = len(dev.errors)
            await dev.publish("evt", payload)
            for _ in range(200):
                if len(dev.errors) > before:
                    break
                await asyncio.sleep(0.01)
            assert dev.errors[-1]["code"] == code

        await expect_err_topic(box, b'{"v": 1, "dev": "box-1", "seq":', "malformed")
        await expect_err_topic(box, json.dumps({"v": 7, "dev": "box-1", "seq": 9,
                                                "type": "take", "item": "SOC-1"}).encode(),
                               "version")
        assert box.errors[-1]["seq"] == 9  # the device can tell which event was refused
        await expect_err_topic(box, b'{"v":1,"pad":"' + b"x" * 70000 + b'"}', "too_large")
        ev = lambda d, s, t, **f: proto.encode("evt", proto.event(d, s, t, **f))  # noqa: E731
        await expect(stranger, ev("intruder", 1, "take", item="SOC-1"), 1, "unknown_device")
        await expect(box, ev("box-1", 2, "take", item="NOPE"), 2, "unknown_item")
        await expect(kp, ev("kp-1", 1, "call", window=2), 1, "wrong_window")
        await kp.send("open")
        await kp.send("call")
        rows = journal_rows(tmp_path)
        await expect(kp, ev("kp-1", 4, "transfer", to_window=99), 4, "unknown_window")
        await expect(box, ev("box-1", 1, "take", item="SOC-1"), 1, "replayed")
        await expect(kp, ev("kp-1", 5, "take", item="SOC-1"), 5, "not_allowed")
        await expect_err_topic(box, ev("kp-1", 9, "call"), "dev_mismatch")
        assert journal_rows(tmp_path) == rows
        # ...and the hub is still up and serving.
        res = await box.send("take", item="MED-1")
        assert res["ticket"] == "B001"


async def test_a_repeated_seq_gets_the_same_reply_and_one_ticket(
        tmp_path, mosquitto, small_catalog_file):
    async with running_hub(tmp_path, mosquitto.port, small_catalog_file), \
            device(mosquitto.port, "box-1", "box") as box:
        payload = proto.encode("evt", proto.event("box-1", 1, "take", item="SOC-1"))
        first = await box.send_raw(payload, 1)
        again = await box.send_raw(payload, 1)  # as a QoS 1 redelivery or a retry would
        assert first == again and first["ticket"] == "A001"
        prints = [await box.next_command("print")]
        # A marker: the hub answers events in order, so once this refusal is back, a print
        # the repeat might have re-sent would have arrived too.
        with pytest.raises(DeviceError) as e:
            await box.send("take", item="NOPE")
        assert e.value.code == "unknown_item"
        assert all(c["type"] != "print" for c in box.commands._queue), \
            "the repeat re-sent the print command as a new one"
        assert len(box.printed) == 1 and prints[0]["id"] in box.applied
        assert journal_rows(tmp_path) == 2  # the box's offline block and one take
        assert (await box.send("take", item="SOC-1"))["ticket"] == "A002"


async def test_birth_and_seq_gap_resend_the_full_state(tmp_path, mosquitto, small_catalog_file):
    async with running_hub(tmp_path, mosquitto.port, small_catalog_file), \
            device(mosquitto.port, "box-1", "box") as box, \
            device(mosquitto.port, "kp-2", "keypad", 2) as kp:
        await box.send("take", item="SOC-1")
        await kp.send("open")
        await kp.send("call")
        async with device(mosquitto.port, "led-2", "led", 2) as led:
            cmd = await asyncio.wait_for(led.commands.get(), 5)  # sent on its birth
            assert cmd["type"] == "show" and cmd["ticket"] == "A001" and cmd["window"] == 2
        while not kp.commands.empty():  # what it was sent on its own birth
            kp.commands.get_nowait()
        kp.seq += 10  # as after a reboot that persisted a higher water mark
        await kp.send("recall")
        cmd = await asyncio.wait_for(kp.commands.get(), 5)
        assert cmd["ticket"] == "A001" and cmd["state"] == "calling"


async def test_a_restarted_hub_asks_every_device_to_rebirth_and_resyncs_it(
        tmp_path, mosquitto, small_catalog_file):
    async with running_hub(tmp_path, mosquitto.port, small_catalog_file), \
            device(mosquitto.port, "box-1", "box") as box, \
            device(mosquitto.port, "kp-1", "keypad", 1) as kp:
        await box.send("take", item="SOC-1")
        await kp.send("open")
        await kp.send("call")
    # The board is up before the hub: only a rebirth request can get it its state.
    async with device(mosquitto.port, "led-1", "led", 1) as led, \
            running_hub(tmp_path, mosquitto.port, small_catalog_file):
        seen = []
        async with asyncio.timeout(5):
            while not any(c["type"] == "show" and c.get("ticket") == "A001" for c in seen):
                seen.append(await led.commands.get())
        assert any(c["type"] == "rebirth" for c in seen)


async def test_a_refused_print_keeps_the_ticket_and_is_reported(
        tmp_path, mosquitto, small_catalog_file):
    async with running_hub(tmp_path, mosquitto.port, small_catalog_file) as runner, \
            device(mosquitto.port, "box-1", "box") as box:
        res = await box.send("take", item="SOC-1")
        cmd = await box.next_command("print")
        await box.publish("ack", proto.encode("ack", {"dev": "box-1", "id": cmd["id"],
                                                      "ok": False, "code": "paper_out"}))
        await box.publish_status("ready", alerts=["paper_out"])
        for _ in range(100):
            if runner.app.refused and runner.app.registry.get("box-1").alerts:
                break
            await asyncio.sleep(0.02)
        assert runner.app.refused[-1]["code"] == "paper_out"
        assert runner.app.registry.get("box-1").alerts == ("paper_out",)
        assert runner.app.centre.find_ticket(res["ticket"]).state.value == "waiting"
        again = await box.send("reprint", ticket=res["ticket"])
        assert again["ticket"] == res["ticket"]
        reprint = await box.next_command("print")
        assert reprint["type"] == "print" and reprint["ticket"] == res["ticket"]
