"""The broker a centre gets with no `[broker] url`, started the way `onewindow hub` starts it
(hub/serve.py `serve`): the promises the Paho MQTT 3.1.1 interoperability tests check.

* keepalive: a client that goes silent turns lost and its will is published;
* persistent sessions: a device with clean_session=False that is away gets its QoS 1
  command when it comes back;
* retained messages only per the client's own subscriptions and ACL;
* 50 clients connecting at once all connect and subscribe.

Each runs against the default (the hub's private Mosquitto) and the amqtt fallback
(`[broker] embedded = "amqtt"`, what a machine without the mosquitto binary gets), whose
gaps the plugin layer closes. The devices here are plain MQTT clients (aiomqtt, and a raw
socket for the silent one): the broker is what is under test, not the firmware.

Why one module of 471 lines: every test starts the broker a centre gets without configuring one,
as `onewindow hub` does, through the same `centre`, `device` and `hub_side` helpers: the first
half holds both brokers (`IMPLS`) to the interoperability promises, the second the private
Mosquitto's life. Split, the helpers would move to a conftest and that one broker's story would
read in pieces.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import struct
import time

import aiomqtt
import pytest

from onewindow.hub import config as hub_config
from onewindow.hub.config import embedded_hub_url
from onewindow.hub.fleet import registry
from onewindow.hub.mqtt.broker import EmbeddedBroker
from onewindow.hub.mqtt.private_mosquitto import (
    KEEPALIVE_CHECK_S,
    RELOAD_EVERY,
    BrokerStartError,
    PrivateMosquitto,
    data_dir,
    find_binary,
    registry_changed,
)
from onewindow.protocol import ow_protocol as proto
from onewindow.tools.simdevice import SimDevice
from onewindow.tools.testkit.ports import quiet_port
from onewindow.tools.testkit.testbed import HubProcess, write_config

from .test_hub_mqtt import serving

CENTRE = "bd"
KEEPALIVE = 1  # s, the silent client's


def centre(tmp_path, catalog, impl: str | None, auth: bool = False):
    """A centre.toml with no broker url: the embedded default (`impl` None) or the named
    embedded broker."""
    port = quiet_port(pair=True)
    extra = f"\n[broker]\nembedded_port = {port}\nembedded_auth = {str(auth).lower()}\n"
    if impl is not None:
        extra += f'embedded = "{impl}"\n'
    return hub_config.load(write_config(
        tmp_path / "centre.toml", CENTRE, None, tmp_path / "hub.db", windows=2,
        catalog=catalog, devices=[], extra=extra))


IMPLS = [pytest.param(None, id="default"), pytest.param("amqtt", id="amqtt-fallback")]


def topic(dev: str, leaf: str) -> str:
    return proto.device_topic(CENTRE, dev, leaf)


def hub_side(runner, identifier: str) -> aiomqtt.Client:
    """A client with the hub's own URL and account, as the staff tools connect."""
    b = runner.broker
    return aiomqtt.Client(b.host, b.port, username=b.username, password=b.password,
                          identifier=identifier, timeout=10)


def device(cfg, dev: str, clean: bool = True, **kw) -> aiomqtt.Client:
    """A device on the devices' port (embedded_port), with its account when provisioned."""
    user = password = None
    with registry.Fleet(cfg.database_url) as f:
        row = f.get(dev)
    if row is not None:
        b = registry.provision(cfg, dev, row.role, row.window, row.board)["broker"]
        user, password = b["user"], b["password"]
    return aiomqtt.Client("127.0.0.1", cfg.embedded_port, username=user, password=password,
                          identifier=dev, clean_session=clean, timeout=10, **kw)


def _utf8(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def connect_packet(client_id: str, keepalive: int, will_topic: str, will: bytes) -> bytes:
    """MQTT 3.1.1 CONNECT, clean session, with a QoS 1 will."""
    flags = 0x02 | 0x04 | 0x08
    body = _utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive)
    body += _utf8(client_id) + _utf8(will_topic) + _utf8(will)
    assert len(body) < 128
    return bytes([0x10, len(body)]) + body


@pytest.mark.parametrize("impl", IMPLS)
async def test_a_silent_client_turns_lost_and_its_will_is_published(
        tmp_path, small_catalog_file, impl) -> None:
    cfg = centre(tmp_path, small_catalog_file, impl)
    will_topic = topic("led-9", "status")
    async with serving(cfg) as runner, hub_side(runner, "watcher") as watcher:
        await watcher.subscribe(will_topic, qos=1)
        # A raw connection (asyncio streams: amqtt runs in this very loop).
        reader, writer = await asyncio.open_connection("127.0.0.1", cfg.embedded_port)
        try:
            writer.write(connect_packet("led-9", KEEPALIVE, will_topic, b'{"state":"lost"}'))
            await writer.drain()
            connack = await asyncio.wait_for(reader.readexactly(4), 5)
            assert connack == b"\x20\x02\x00\x00"  # CONNACK, accepted
            silent_since = time.monotonic()
            # ... and now nothing: no PINGREQ, the socket stays open.

            async def will_arrives() -> float:
                async for m in watcher.messages:
                    if m.topic.value == will_topic:
                        assert m.payload == b'{"state":"lost"}'
                        return time.monotonic() - silent_since
                raise AssertionError("watcher ended")

            # MQTT 3.1.1 §3.1.2.10: the server drops it after 1.5 x keepalive; Mosquitto 2.0
            # looks at keepalives only every ~6 s (KEEPALIVE_CHECK_S), amqtt here at once.
            slack = KEEPALIVE_CHECK_S if isinstance(runner.embedded_broker,
                                                    PrivateMosquitto) else 0.0
            waited = await asyncio.wait_for(will_arrives(), 1.5 * KEEPALIVE + slack + 1.0)
            assert waited >= KEEPALIVE - 0.1  # not dropped within its own keepalive
            assert await reader.read() == b""  # and the broker closed the connection
        finally:
            writer.close()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("auth", [False, True], ids=["anonymous", "accounts"])
async def test_a_persistent_device_gets_its_qos1_command_when_it_comes_back(
        tmp_path, small_catalog_file, impl, auth) -> None:
    cfg = centre(tmp_path, small_catalog_file, impl, auth)
    if auth:
        registry.provision(cfg, "kp-1", "keypad", 1, "sim")
    cmd = topic("kp-1", "cmd")
    async with serving(cfg) as runner:
        async with device(cfg, "kp-1", clean=False) as kp:
            await kp.subscribe(cmd, qos=1)
        # kp-1 is away now; the hub's side sends it a command, acknowledged by the broker.
        async with hub_side(runner, "sender") as sender:
            await sender.publish(cmd, b'{"op":"show","n":1}', qos=1)
        async with device(cfg, "kp-1", clean=False) as kp:  # back, without subscribing
            async with asyncio.timeout(5):
                async for m in kp.messages:
                    if b"rebirth" in m.payload:  # the hub's own request to a known device
                        continue
                    assert (m.topic.value, m.payload, m.qos) == (
                        cmd, b'{"op":"show","n":1}', 1)
                    break


@pytest.mark.parametrize("impl", IMPLS)
async def test_retained_messages_follow_the_clients_own_subscriptions_and_acl(
        tmp_path, small_catalog_file, impl) -> None:
    cfg = centre(tmp_path, small_catalog_file, impl, auth=True)
    for dev, role, window in (("led-1", "led", 1), ("led-2", "led", 2), ("kp-2", "keypad", 2)):
        registry.provision(cfg, dev, role, window, "sim")
    display1, display2 = (proto.display_topic(CENTRE, n) for n in (1, 2))
    kp2_status = topic("kp-2", "status")
    async with serving(cfg) as runner, hub_side(runner, "watcher") as watcher, \
            device(cfg, "led-2") as led2, device(cfg, "kp-2") as kp2:
        # Other clients hold subscriptions that match what led-1 must not see: led-2 its
        # window's display, the hub every device's status.
        await led2.subscribe(display2, qos=1)
        await watcher.subscribe(f"ow/{CENTRE}/#", qos=1)
        await kp2.publish(kp2_status, b'{"state":"online"}', qos=1, retain=True)
        seen: set[str] = set()
        async for m in watcher.messages:  # both displays and kp-2's status are retained now
            seen.add(m.topic.value)
            if {display1, display2, kp2_status} <= seen:
                break
        async with device(cfg, "led-1") as led1:
            await led1.subscribe(display1, qos=1)
            await led1.subscribe(topic("led-1", "cmd"), qos=1)
            # A marker after led-1's subscriptions: anything the broker sends led-1 on
            # connecting or subscribing arrives before it.
            await watcher.publish(topic("led-1", "cmd"), b"marker", qos=1)
            got = []
            async with asyncio.timeout(5):
                async for m in led1.messages:
                    if m.topic.value == topic("led-1", "cmd"):
                        break
                    got.append((m.topic.value, bool(m.retain)))
        assert got == [(display1, True)]


WAVES, WAVE = 3, 50  # three waves of 50, each connecting at once, the earlier staying on


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("auth", [False, True], ids=["anonymous", "accounts"])
async def test_fifty_clients_connecting_at_once_all_connect_and_subscribe(
        tmp_path, small_catalog_file, impl, auth) -> None:
    """Boards coming back together (power back, broker restarted)."""
    cfg = centre(tmp_path, small_catalog_file, impl, auth)
    waves = [[f"dev-{w}-{i}" for i in range(WAVE)] for w in range(WAVES)]
    if auth:
        for dev in (d for wave in waves for d in wave):
            registry.provision(cfg, dev, "keypad", window_of(dev), "sim")
    async with serving(cfg) as runner, contextlib.AsyncExitStack() as stack, \
            hub_side(runner, "sender") as sender:

        async def join(dev: str) -> aiomqtt.Client:
            c = await stack.enter_async_context(device(cfg, dev))
            # As a board does: its commands, its window's display and the hub's status
            # (retained: sent while others connect), then its own retained birth.
            await c.subscribe([(topic(dev, "cmd"), 1), (proto.hub_topic(CENTRE), 1),
                               (proto.display_topic(CENTRE, window_of(dev)), 1)])
            await c.publish(topic(dev, "status"), b'{"state":"online"}', qos=1, retain=True)
            return c

        async def first_command(c: aiomqtt.Client) -> bytes:
            async for m in c.messages:  # (the hub asks registered devices for a birth)
                if m.topic.value.endswith("/cmd") and b"rebirth" not in m.payload:
                    return bytes(m.payload)
            raise AssertionError("client ended")

        for ids in waves:
            clients = await asyncio.gather(*(join(d) for d in ids))
            for dev in ids:
                await sender.publish(topic(dev, "cmd"), dev.encode(), qos=1)
            got = await asyncio.wait_for(asyncio.gather(*(first_command(c) for c in clients)),
                                         10)
            assert got == [d.encode() for d in ids]


def window_of(dev: str) -> int:
    return 1 + int(dev.rsplit("-", 1)[1]) % 2


# ---- the private Mosquitto's life: supervised, reloaded, stopped with the hub -------------

needs_mosquitto = pytest.mark.skipif(find_binary() is None,
                                     reason="no mosquitto binary: the default is amqtt here")


async def restarted(broker: PrivateMosquitto, starts: int) -> None:
    async with broker.changed:
        await asyncio.wait_for(broker.changed.wait_for(lambda: broker.starts >= starts), 15)


@needs_mosquitto
async def test_the_default_broker_is_restarted_when_it_dies_and_stops_with_the_hub(
        tmp_path, small_catalog_file) -> None:
    cfg = centre(tmp_path, small_catalog_file, None, auth=True)
    registry.provision(cfg, "kp-1", "keypad", 1, "sim")
    b = registry.provision(cfg, "kp-1", "keypad", 1, "sim")["broker"]
    async with serving(cfg) as runner:
        broker = runner.embedded_broker
        assert isinstance(broker, PrivateMosquitto)
        first = broker.proc
        assert first is not None
        os.kill(first.pid, signal.SIGKILL)  # a crash
        await restarted(broker, 2)
        assert broker.proc is not first and broker.proc.returncode is None
        # The hub reconnects by itself and serves again (SimDevice resends until answered).
        async with SimDevice(CENTRE, "kp-1", "keypad", "127.0.0.1", cfg.embedded_port,
                             window=1, username=b["user"], password=b["password"]) as kp:
            res = await kp.send("open", clerk="gh-1", timeout=20)
            assert res["ok"] and res["window"] == 1
        last = broker.proc
    assert last.returncode is not None  # stopped with the hub, not left behind
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", cfg.embedded_port), timeout=1).close()
    conf = (data_dir(cfg) / "mosquitto.conf").read_text()
    assert f"listener {cfg.embedded_port} 127.0.0.1" in conf
    assert "persistence true" in conf and "allow_anonymous false" in conf


def revoke_in_the_database(cfg, dev: str) -> None:
    """The registry row changed by something that does not tell the broker (another
    tool, a restored backup): only the hub's own check of the registry sees it."""
    with registry.Fleet(cfg.database_url) as f:
        old = f.get(dev)
        f.put(dataclasses.replace(old, generation=old.generation + 1, revoked=True),
              existed=True)


@needs_mosquitto
@pytest.mark.parametrize("how", ["provision-revoke", "database"])
async def test_a_device_revoked_while_connected_is_dropped_by_the_reload(
        tmp_path, small_catalog_file, how) -> None:
    cfg = centre(tmp_path, small_catalog_file, None, auth=True)
    registry.provision(cfg, "led-1", "led", 1, "sim")
    registry.provision(cfg, "kp-1", "keypad", 1, "sim")
    async with serving(cfg) as runner, device(cfg, "kp-1") as kp:
        broker = runner.embedded_broker
        await kp.subscribe(topic("kp-1", "cmd"), qos=1)
        async with device(cfg, "led-1") as led:
            await led.subscribe(topic("led-1", "cmd"), qos=1)
            creds = registry.provision(cfg, "led-1", "led", 1, "sim")["broker"]
            if how == "database":
                revoke_in_the_database(cfg, "led-1")
            else:  # `onewindow provision --revoke`: the broker is reloaded at once
                registry.revoke(cfg, "led-1")
                registry_changed(cfg)

            async def dropped() -> None:
                async for _ in led.messages:
                    pass

            with pytest.raises(aiomqtt.MqttError):  # disconnected by the broker
                await asyncio.wait_for(dropped(), RELOAD_EVERY + 10)
        if how == "database":  # the hub's check found it and reloaded the broker
            async with broker.changed:
                await asyncio.wait_for(broker.changed.wait_for(lambda: broker.reloads >= 1),
                                       5)
        with pytest.raises(aiomqtt.MqttCodeError):  # and refused from now on
            async with aiomqtt.Client("127.0.0.1", cfg.embedded_port, identifier="led-1",
                                      username=creds["user"], password=creds["password"]):
                pass
        # Everyone else stayed: kp-1 still gets its commands.
        async with hub_side(runner, "sender") as sender:
            await sender.publish(topic("kp-1", "cmd"), b"still here", qos=1)
        async with asyncio.timeout(5):
            async for m in kp.messages:
                if m.payload == b"still here":
                    break


async def test_without_a_mosquitto_binary_the_hub_falls_back_to_amqtt_and_says_so(
        tmp_path, small_catalog_file, caplog) -> None:
    cfg = centre(tmp_path, small_catalog_file, None)
    cfg = dataclasses.replace(cfg, mosquitto=str(tmp_path / "no-such-mosquitto"))
    with caplog.at_level(logging.WARNING, logger="onewindow.broker"):
        async with serving(cfg) as runner, device(cfg, "kp-1") as kp:
            assert isinstance(runner.embedded_broker, EmbeddedBroker)
            await kp.subscribe(topic("kp-1", "cmd"), qos=1)
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "no mosquitto binary found" in warning and "known gaps" in warning
    assert "apt-get install mosquitto" in warning


async def test_embedded_mosquitto_without_its_binary_is_a_clear_error(
        tmp_path, small_catalog_file) -> None:
    cfg = dataclasses.replace(centre(tmp_path, small_catalog_file, "mosquitto"),
                              mosquitto=str(tmp_path / "no-such-mosquitto"))
    with pytest.raises(RuntimeError, match="no mosquitto binary"):
        async with serving(cfg):
            pass


async def process_exit(pid: int) -> None:
    """Until a process that is not our child ends (a pidfd turns readable)."""
    fd = os.pidfd_open(pid)
    loop = asyncio.get_running_loop()
    ended = loop.create_future()
    loop.add_reader(fd, lambda: None if ended.done() else ended.set_result(None))
    try:
        await ended
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def hub_ready(cfg, proc) -> None:
    """Until the hub process says it is ready on its broker's hub listener (the broker
    comes up with the hub: until then nothing listens)."""
    url = embedded_hub_url(cfg)
    while True:
        assert proc.poll() is None, "the hub exited"
        try:
            async with aiomqtt.Client(url.host, url.port, identifier="probe") as c:
                await c.subscribe(proto.hub_topic(CENTRE), qos=1)
                async for m in c.messages:
                    if b'"ready"' in m.payload:
                        return
        except aiomqtt.MqttError:
            await asyncio.sleep(0.05)  # another process: nothing to await but its port


@needs_mosquitto
async def test_a_hub_killed_outright_takes_its_broker_along_and_the_next_keeps_its_sessions(
        tmp_path, small_catalog_file) -> None:
    """SIGKILL gives the hub no chance to stop its broker: the broker goes anyway (it
    saves its sessions as it goes), and the next hub's broker binds the same ports and
    still holds the QoS 1 command queued for a device that was away."""
    cfg_path = tmp_path / "centre.toml"
    cfg = centre(tmp_path, small_catalog_file, None)
    cmd = topic("kp-1", "cmd")
    first = HubProcess(cfg_path, tmp_path / "hub1.log").start()
    try:
        await asyncio.wait_for(hub_ready(cfg, first.proc), 30)
        async with device(cfg, "kp-1", clean=False) as kp:
            await kp.subscribe(cmd, qos=1)
        url = embedded_hub_url(cfg)
        async with aiomqtt.Client(url.host, url.port, identifier="sender") as sender:
            await sender.publish(cmd, b"queued", qos=1)
        broker_pid = int((data_dir(cfg) / "mosquitto.pid").read_text())
        first.kill()
        await asyncio.wait_for(process_exit(broker_pid), 10)
    finally:
        first.kill()
    second = HubProcess(cfg_path, tmp_path / "hub2.log").start()
    try:
        await asyncio.wait_for(hub_ready(cfg, second.proc), 30)
        async with device(cfg, "kp-1", clean=False) as kp:
            m = await asyncio.wait_for(anext(aiter(kp.messages)), 5)
            assert (m.topic.value, m.payload) == (cmd, b"queued")
    finally:
        assert second.stop() == 0, (tmp_path / "hub2.log").read_text()


@needs_mosquitto
async def test_a_broker_that_cannot_start_stops_the_hub_with_its_reason(
        tmp_path, small_catalog_file) -> None:
    cfg = centre(tmp_path, small_catalog_file, None)
    with socket.socket() as taken:  # something else holds the devices' port
        taken.bind(("127.0.0.1", cfg.embedded_port))
        taken.listen()
        with pytest.raises(BrokerStartError, match="Address already in use"):
            async with serving(cfg):
                pass


def test_an_unknown_embedded_broker_is_a_configuration_error(tmp_path,
                                                             small_catalog_file) -> None:
    with pytest.raises(hub_config.ConfigError, match="embedded must be one of"):
        centre(tmp_path, small_catalog_file, "hivemq")


async def test_amqtt_loses_no_client_connecting_while_others_subscribe() -> None:
    """amqtt 0.12 walked its subscription table across awaits while it sent a connecting
    client retained messages; a client subscribing meanwhile raised "dictionary changed
    size during iteration" and the connecting one was dropped (41 of 200 here before the
    snapshot walk). Many retained messages make those awaits long: four waves of 50."""
    broker = EmbeddedBroker(quiet_port(pair=True))
    await broker.start()
    try:
        async with aiomqtt.Client(broker.host, broker.port, identifier="hub") as hub:
            await hub.subscribe(f"ow/{CENTRE}/dev/+/status", qos=1)
            await hub.publish(proto.hub_topic(CENTRE), b"up", qos=1, retain=True)
            for n in range(1, 9):
                await hub.publish(proto.display_topic(CENTRE, n), b"d" * 200, qos=1,
                                  retain=True)
            for n in range(50):
                await hub.publish(topic(f"old-{n}", "status"), b"s" * 100, qos=1, retain=True)

            async def board(dev: str, window: int) -> str:
                async with aiomqtt.Client(broker.host, broker.port, identifier=dev,
                                          timeout=10) as c:
                    await c.subscribe([(topic(dev, "cmd"), 1), (proto.hub_topic(CENTRE), 1),
                                       (proto.display_topic(CENTRE, window), 1)])
                    await c.publish(topic(dev, "status"), b"on", qos=1, retain=True)
                    return dev

            for wave in range(4):
                ids = [f"w{wave}-{i}" for i in range(50)]
                got = await asyncio.gather(*(board(d, 1 + i % 8) for i, d in enumerate(ids)),
                                           return_exceptions=True)
                assert got == ids, [g for g in got if not isinstance(g, str)][:3]
    finally:
        await broker.stop()
