"""The device registry is read off the hub's event path (issue 14): the hub process reads
the fleet registry in a thread (all devices every LOOKUP_EVERY s, an unknown id before its
batch), and a device event runs no SQL on the registry in the event loop's thread."""

from __future__ import annotations

import threading

from sqlalchemy import event

from onewindow.hub import config as hub_config
from onewindow.hub.devices import LOOKUP_EVERY, DeviceSpec, Registry
from onewindow.hub.fleet import registry as fleet
from onewindow.tools.simdevice import DeviceError, SimDevice
from onewindow.tools.testkit.testbed import write_config

from .test_fleet_hub import eventually
from .test_hub_mqtt import serving

CENTRE = "r1"


def test_an_answer_older_than_the_one_learned_is_ignored() -> None:
    reg = Registry([DeviceSpec("kp-1", "keypad", 1)], lookup=lambda dev: None,
                   listing=lambda: [])
    listing = reg.reading()  # a background listing begins: kp-1 registered at window 1
    lookup = reg.reading()  # meanwhile kp-1 re-registered at window 2, read by a lookup
    reg.learn("kp-1", DeviceSpec("kp-1", "keypad", 2), 0.0, lookup)
    reg.refresh([DeviceSpec("kp-1", "keypad", 1)], 0.0, listing)  # the listing lands last
    assert reg.devices["kp-1"].spec.window == 2
    reg.refresh([DeviceSpec("led-3", "led", 3)], 1.0, reg.reading())  # kp-1 revoked since
    assert set(reg.devices) == {"led-3"}  # known before it says a word


def test_in_the_runners_hands_resolve_reads_memory_only() -> None:
    asked: list[str] = []

    def lookup(dev: str) -> DeviceSpec | None:
        asked.append(dev)
        return None

    reg = Registry([DeviceSpec("kp-1", "keypad", 1)], lookup)
    reg.looked_up_elsewhere = True
    assert reg.resolve("kp-1", 10 * LOOKUP_EVERY, birth=True) is reg.devices["kp-1"]
    assert reg.resolve("ghost", 0.0) is None and asked == []
    assert reg.wanted("ghost", 0.0) and not reg.wanted("kp-1", 0.0, birth=True)
    reg.learn("ghost", None, 0.0, reg.reading())
    assert not reg.wanted("ghost", LOOKUP_EVERY / 2) and reg.wanted("ghost", LOOKUP_EVERY)


async def test_device_events_run_no_registry_sql_in_the_loop(
        tmp_path, mosquitto, small_catalog_file) -> None:
    cfg = hub_config.load(write_config(
        tmp_path / "centre.toml", CENTRE, mosquitto.port, tmp_path / "hub.db", windows=2,
        catalog=small_catalog_file, devices=[{"id": "box-1", "role": "box"},
                                             {"id": "kp-1", "role": "keypad", "window": 1}]))
    async with serving(cfg) as runner:
        loop_thread = threading.get_ident()
        reads: list[bool] = []  # per statement on the registry table: in the loop's thread?

        def seen(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
            if "fleet_devices" in statement:
                reads.append(threading.get_ident() == loop_thread)

        event.listen(runner.journal.engine, "before_cursor_execute", seen)
        try:
            async with SimDevice(CENTRE, "box-1", "box", "127.0.0.1", mosquitto.port) as box, \
                    SimDevice(CENTRE, "kp-1", "keypad", "127.0.0.1", mosquitto.port,
                              window=1) as kp:
                await kp.send("open", clerk="c1")
                # Events over more than one refresh period: the devices stay known, and the
                # registry is read meanwhile, in a thread.
                async def refreshed() -> bool:
                    await box.take("SOC-1", "A")
                    await kp.send("call")
                    return len(reads) >= 2
                await eventually(refreshed, timeout=4 * LOOKUP_EVERY, pace=0.05)
                # Provisioned while the hub runs: served on its very first message (a birth
                # from an unknown id is looked up before its batch), in a thread too.
                fleet.provision(cfg, "kp-2", "keypad", 2, "sim")
                async with SimDevice(CENTRE, "kp-2", "keypad", "127.0.0.1",
                                     mosquitto.port, window=2) as kp2:
                    assert (await kp2.send("open", clerk="c2"))["ok"]
                fleet.revoke(cfg, "kp-2")

                async def refused() -> bool:  # no new birth: the background refresh drops it
                    try:
                        await kp2_again.send("call", timeout=5)
                    except DeviceError as e:
                        return e.reply["code"] == "unknown_device"
                    return False

                async with SimDevice(CENTRE, "kp-2", "keypad", "127.0.0.1", mosquitto.port,
                                     window=2, seq=10) as kp2_again:
                    await eventually(refused, timeout=4 * LOOKUP_EVERY, pace=0.1)
        finally:
            event.remove(runner.journal.engine, "before_cursor_execute", seen)
    assert reads and not any(reads), reads
