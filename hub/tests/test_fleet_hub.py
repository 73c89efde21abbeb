"""The hub and its embedded broker with the fleet: devices provisioned while the hub runs
are served, revoked ones refused, and amqtt enforces the same rules as Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiomqtt
import pytest

from onewindow.hub import config as hub_config
from onewindow.hub.fleet import registry
from onewindow.hub.fleet.amqtt_plugins import Authority
from onewindow.hub.mqtt.broker import EmbeddedBroker
from onewindow.hub.mqtt.private_mosquitto import registry_changed
from onewindow.protocol import ow_protocol as proto
from onewindow.tools.simdevice import DeviceError, SimDevice
from onewindow.tools.testkit.ports import quiet_port
from onewindow.tools.testkit.testbed import write_config

from .test_hub_mqtt import serving

CENTRE = "f1"


def centre(tmp_path, catalog, broker_port=None, extra=""):
    return hub_config.load(write_config(
        tmp_path / "centre.toml", CENTRE, broker_port, tmp_path / "hub.db", windows=2,
        catalog=catalog, devices=[{"id": "box-1", "role": "box"}], extra=extra))


async def eventually(probe, timeout=15.0, pace=0.1):
    """Probe until `probe()` (async) returns something true, and return it. The hub's fleet
    caches are time-based (an unknown id looked up at most every 2 s, upload tokens and a
    connected device's account reread at most every 2 s): nothing announces the change, so
    the test probes the outcome instead of sleeping the interval. `pace` only spaces the
    probes (each one is a request to the hub); the probe's answer is what ends the wait."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await probe()
        if got:
            return got
        assert asyncio.get_running_loop().time() < deadline, f"{probe.__name__}: not by now"
        await asyncio.sleep(pace)


def sim(cfg, dev, role, window=None, port=None, password=None):
    """A SimDevice with its provisioned credentials (port: the config's broker), provisioned
    as `onewindow provision` does it: the hub's private broker reloaded at once."""
    b = registry.provision(cfg, dev, role, window, "sim")["broker"]
    registry_changed(cfg)
    return SimDevice(CENTRE, dev, role, "127.0.0.1", port or b["port"], window=window,
                     username=b["user"], password=password or b["password"])


async def test_a_device_provisioned_while_the_hub_runs_is_served_and_revoked_refused(
        tmp_path, mosquitto, small_catalog_file) -> None:
    cfg = centre(tmp_path, small_catalog_file, mosquitto.port)
    # Not registered yet: refused by the hub (this Mosquitto is anonymous).
    async with serving(cfg), SimDevice(CENTRE, "kp-7", "keypad", "127.0.0.1", mosquitto.port,
                                       window=2) as stranger:
        with pytest.raises(DeviceError) as e:
            await stranger.send("open", timeout=5)
        assert e.value.reply["code"] == "unknown_device"
        registry.provision(cfg, "kp-7", "keypad", 2, "sim")

        async def served():
            try:
                return await stranger.send("open", clerk="gh-7", timeout=5)
            except DeviceError as e:
                assert e.reply["code"] == "unknown_device", e.reply  # not served yet
                return None

        res = await eventually(served)
        assert res["ok"] and res["window"] == 2
        registry.revoke(cfg, "kp-7")

        async def refused():  # still connected, no new birth: refused all the same
            try:
                await stranger.send("call", timeout=5)
            except DeviceError as e:
                return e.reply["code"] == "unknown_device"
            return False

        await eventually(refused)


async def test_the_embedded_broker_enforces_accounts_once_the_centre_has_a_fleet(
        tmp_path, small_catalog_file) -> None:
    port = quiet_port(pair=True)
    cfg = centre(tmp_path, small_catalog_file,
                 extra=f"\n[broker]\nembedded_port = {port}\nembedded_auth = true\n")
    async with serving(cfg):
        # The hub itself connected with its derived account; now a device provisioned
        # after the start connects with its own and is served.
        async with sim(cfg, "kp-2", "keypad", 2) as kp:
            res = await kp.send("open", clerk="gh-2")
            assert res["ok"] and res["state"] == "idle"
            assert kp.shown is not None or await kp.next_command("show")
        with pytest.raises(aiomqtt.MqttCodeError):
            async with sim(cfg, "kp-1", "keypad", 1, password="WRONGPASSWORDWRONGPASSWORD1234"):
                pass
        with pytest.raises(aiomqtt.MqttCodeError):
            async with SimDevice(CENTRE, "box-1", "box", "127.0.0.1", port):  # anonymous
                pass


def test_embedded_auth_defaults(tmp_path, small_catalog_file) -> None:
    assert centre(tmp_path, small_catalog_file).embedded_auth is None
    cfg = centre(tmp_path, small_catalog_file, extra="\n[broker]\nembedded_auth = false\n")
    assert cfg.embedded_auth is False


# ---- the rules on amqtt, without a hub -------------------------------------------------------

@pytest.fixture
async def embedded(tmp_path, small_catalog_file):
    cfg = centre(tmp_path, small_catalog_file)
    for dev, role, window in (("led-1", "led", 1), ("kp-1", "keypad", 1)):
        registry.provision(cfg, dev, role, window, "esp32-devkitc")
    fleet = registry.Fleet(cfg.database_url)
    authority = Authority(cfg, fleet)
    broker = EmbeddedBroker(quiet_port(pair=True), authority.name)
    await broker.start()
    try:
        yield cfg, broker
    finally:
        await broker.stop()
        authority.close()
        fleet.close()


def account(cfg, dev):
    if dev == "hub":
        with registry.Fleet(cfg.database_url) as f:
            secret = f.secret()
        return registry.hub_user(CENTRE), registry.hub_password(secret, CENTRE)
    with registry.Fleet(cfg.database_url) as f:
        row = f.get(dev)
    b = registry.provision(cfg, dev, row.role, row.window, row.board)["broker"]
    return b["user"], b["password"]


def client(cfg, broker, dev, identifier=None, password=None, will=None):
    user, pw = account(cfg, dev)
    return aiomqtt.Client(broker.host, broker.port, username=user, password=password or pw,
                          identifier=identifier or user, timeout=5, will=will)


def topic(dev, leaf):
    return proto.device_topic(CENTRE, dev, leaf)


async def received(c, until, quiet=0.5):
    got = []

    async def read():
        async for m in c.messages:
            got.append(m.topic.value)
            if m.topic.value == until:
                return

    await asyncio.wait_for(read(), 5)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(read(), quiet)
    return got


async def test_embedded_refuses_bad_logins(embedded) -> None:
    cfg, broker = embedded
    async with client(cfg, broker, "led-1"), client(cfg, broker, "hub"):
        pass
    bad: list[dict[str, Any]] = [dict(password="WRONG"), dict(identifier="kp-1"),
           dict(will=aiomqtt.Will(topic("kp-1", "status"), b"{}", qos=1, retain=True))]
    for kw in bad:
        with pytest.raises(aiomqtt.MqttCodeError):
            async with client(cfg, broker, "led-1", **kw):
                pass
    with pytest.raises(aiomqtt.MqttCodeError):
        async with aiomqtt.Client(broker.host, broker.port, identifier="anon", timeout=5):
            pass
    user, pw = account(cfg, "led-1")
    registry.revoke(cfg, "led-1")  # the embedded broker reads the registry at each connect
    with pytest.raises(aiomqtt.MqttCodeError):
        async with aiomqtt.Client(broker.host, broker.port, username=user, password=pw,
                                  identifier=user, timeout=5):
            pass


async def test_embedded_enforces_the_topic_rules(embedded) -> None:
    cfg, broker = embedded
    async with client(cfg, broker, "hub") as hub, client(cfg, broker, "led-1") as led:
        await hub.subscribe(f"ow/{CENTRE}/#", qos=1)
        for t in (topic("kp-1", "evt"), topic("led-1", "cmd"), f"ow/{CENTRE}/hub/status",
                  f"ow/{CENTRE}/win/1/display", "ow/other/dev/led-1/evt"):
            await led.publish(t, b"{}", qos=1)
        await led.publish(topic("led-1", "evt"), b"{}", qos=1)
        assert await received(hub, topic("led-1", "evt")) == [topic("led-1", "evt")]
        for t in (topic("kp-1", "cmd"), f"ow/{CENTRE}/dev/+/cmd", f"ow/{CENTRE}/#",
                  topic("led-1", "cmd"), f"ow/{CENTRE}/win/1/display"):
            await led.subscribe(t, qos=1)
        await hub.publish(topic("kp-1", "cmd"), b"{}", qos=1)
        await hub.publish(f"ow/{CENTRE}/win/2/display", b"{}", qos=1)
        await hub.publish(f"ow/{CENTRE}/win/1/display", b"{}", qos=1)
        await hub.publish(topic("led-1", "cmd"), b"{}", qos=1)
        got = await received(led, topic("led-1", "cmd"))
        assert got == [f"ow/{CENTRE}/win/1/display", topic("led-1", "cmd")], got


async def test_a_provisioned_node_uploads_with_its_derived_token(
        tmp_path, mosquitto, small_catalog_file) -> None:
    from onewindow.node.upload import UploadError, upload

    cfg = centre(tmp_path, small_catalog_file, mosquitto.port,
                 extra='\n[web]\nhost = "127.0.0.1"\nport = 0\n')
    token = registry.provision(cfg, "node-1", "node", 1, "rpi")["hub_token"]
    # The hub logs in as ow-hub-f1 now (the centre has a fleet secret); this Mosquitto
    # takes any login.
    async with serving(cfg) as runner, sim(cfg, "box-1", "box", port=mosquitto.port) as box:
        number = (await box.send("take", item="SOC-1"))["ticket"]
        res = await upload(runner.web.url, number, "scan.pdf", b"%PDF-1.4\n%%EOF\n",
                           "application/pdf", token=token)
        assert res["bytes"] == 15
        with pytest.raises(UploadError):
            await upload(runner.web.url, number, "scan.pdf", b"%PDF-1.4\n%%EOF\n",
                         "application/pdf", token="0" * 40)
        # A node provisioned while the hub runs: its token works without a restart.
        later = registry.provision(cfg, "node-2", "node", 2, "rpi")["hub_token"]

        async def accepted():
            try:
                return await upload(runner.web.url, number, "scan2.pdf",
                                    b"%PDF-1.4\n%%EOF\n", "application/pdf", token=later)
            except UploadError as e:
                assert e.status in (401, 403), e  # refused: the hub has not reread the tokens
                return None

        res = await eventually(accepted)
        assert res["bytes"] == 15
        registry.revoke(cfg, "node-2")
        registry.revoke(cfg, "node-1")  # known at the start: revoked all the same

        async def both_refused():
            refused = 0
            for t in (later, token):
                try:
                    await upload(runner.web.url, number, "scan3.pdf", b"%PDF-1.4\n%%EOF\n",
                                 "application/pdf", token=t)
                except UploadError as e:
                    assert e.status in (401, 403), e
                    refused += 1
            return refused == 2

        await eventually(both_refused)


async def test_a_refused_login_cannot_plant_a_last_will(embedded) -> None:
    """amqtt copies a CONNECT's will into the live session of the same client id before any
    plugin is asked, and publishes it when it ends that session for the newcomer: a refused
    login must leave no will behind."""
    cfg, broker = embedded
    forged = aiomqtt.Will(topic("kp-1", "evt"), b'{"forged": true}', qos=1)
    async with client(cfg, broker, "hub") as hub, client(cfg, broker, "kp-1") as kp:
        await hub.subscribe(f"ow/{CENTRE}/#", qos=1)
        for user, pw in (("kp-1", "WRONG"), (None, None)):
            with pytest.raises(aiomqtt.MqttError):
                async with aiomqtt.Client(broker.host, broker.port, identifier="kp-1",
                                          username=user, password=pw, will=forged,
                                          clean_session=False, timeout=5):
                    pass
        # Not a wait for a condition: a planted will would be published when amqtt ends
        # kp-1's session, at a moment nothing announces. The pause gives that wrong event
        # the time to happen before the markers below close the window.
        await asyncio.sleep(0.5)
        with contextlib.suppress(aiomqtt.MqttError):  # amqtt may have ended kp-1's link
            await kp.publish(topic("kp-1", "ack"), b"{}", qos=1)
        async with client(cfg, broker, "led-1") as led:
            await led.publish(topic("led-1", "evt"), b"{}", qos=1)
            got = await received(hub, topic("led-1", "evt"))
    assert topic("kp-1", "evt") not in got, got


async def test_embedded_drops_a_device_revoked_while_connected(embedded) -> None:
    """Mosquitto disconnects a revoked device on the reload after broker-config; the
    embedded broker has no reload, so it reads a connected device's account again every
    RECHECK_S and stops its traffic."""
    cfg, broker = embedded
    async with client(cfg, broker, "hub") as hub, client(cfg, broker, "led-1") as led:
        await hub.subscribe(f"ow/{CENTRE}/#", qos=1)
        await led.publish(topic("led-1", "evt"), b"{}", qos=1)
        assert await received(hub, topic("led-1", "evt")) == [topic("led-1", "evt")]
        registry.revoke(cfg, "led-1")

        async def stopped():
            with contextlib.suppress(aiomqtt.MqttError):  # the broker may drop the link
                await led.publish(topic("led-1", "evt"), b"{}", qos=1)
            await hub.publish(topic("led-1", "ack"), b"{}", qos=1)  # a marker the hub reads
            got = await received(hub, topic("led-1", "ack"))
            assert got[-1:] == [topic("led-1", "ack")], got
            return got == [topic("led-1", "ack")]  # the revoked device's evt did not pass

        await eventually(stopped)
