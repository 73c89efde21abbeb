"""The fleet's accounts and ACLs on a real Mosquitto, run from the files broker-config
writes: what a device may and may not do, wrong passwords, revocation with a reload."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys

import aiomqtt
import pytest

from onewindow.hub import config as hub_config
from onewindow.hub.fleet import registry
from onewindow.tools.testkit.testbed import FleetMosquitto, write_config

CENTRE = "c1"
QUIET = 0.5  # s: after a marker has arrived, what was sent before it has too


@pytest.fixture
def fleet(tmp_path):
    broker = FleetMosquitto(None, tmp_path / "broker")
    cfg = hub_config.load(write_config(
        tmp_path / "centre.toml", CENTRE, broker.port, tmp_path / "hub.db", windows=2,
        devices=[{"id": "box-1", "role": "box"}]))
    broker.config = cfg
    for dev, role, window in (("led-1", "led", 1), ("kp-1", "keypad", 1), ("kp-2", "keypad", 2),
                              ("hall-1", "hall", None)):
        registry.provision(cfg, dev, role, window, "esp32-devkitc")
    with broker:
        yield broker


def creds(broker: FleetMosquitto, dev: str) -> tuple[str, str]:
    if dev == "hub":
        with registry.Fleet(broker.config.database_url) as f:
            secret = f.secret()
        assert secret is not None
        return registry.hub_user(CENTRE), registry.hub_password(secret, CENTRE)
    b = registry.provision(broker.config, dev, *_spec(broker, dev))["broker"]
    return b["user"], b["password"]


def _spec(broker: FleetMosquitto, dev: str) -> tuple[str, int | None, str]:
    with registry.Fleet(broker.config.database_url) as f:
        row = f.get(dev)
    assert row is not None
    return row.role, row.window, row.board


def client(broker: FleetMosquitto, dev: str, password: str | None = None,
           identifier: str | None = None) -> aiomqtt.Client:
    """Devices on the devices' listener, the hub on its own (loopback) listener."""
    user, pw = creds(broker, dev)
    return aiomqtt.Client("127.0.0.1", broker.hub_port if dev == "hub" else broker.port,
                          username=user, password=pw if password is None else password,
                          identifier=identifier or user, timeout=5)


RELOADED = "Reloading config."  # what Mosquitto logs on a SIGHUP


async def logged(broker: FleetMosquitto, line: str, times: int, timeout: float = 10.0) -> None:
    """Until Mosquitto's log holds `line` `times` times (its log is the only word it gives
    of a reload). The 20 ms step paces the reads of the file; the line ends the wait."""
    async with asyncio.timeout(timeout):
        while True:
            if broker.log().count(line) >= times:
                return
            await asyncio.sleep(0.02)


def topic(dev: str, leaf: str) -> str:
    return f"ow/{CENTRE}/dev/{dev}/{leaf}"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "onewindow.hub.cli", *args],
                          capture_output=True, text=True, timeout=60)


async def collect(c: aiomqtt.Client, until: str, timeout: float = 5.0) -> list[str]:
    """Topics received until a message on `until` (then QUIET more seconds)."""
    got: list[str] = []

    async def read() -> None:
        async for m in c.messages:
            got.append(m.topic.value)
            if m.topic.value == until:
                return

    await asyncio.wait_for(read(), timeout)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(read(), QUIET)
    return got


async def test_the_right_password_connects_and_others_are_refused(fleet) -> None:
    async with client(fleet, "led-1"):
        pass
    async with client(fleet, "hub"):
        pass
    for make in (lambda: client(fleet, "led-1", password="WRONGPASSWORD"),
                 lambda: client(fleet, "kp-1", password=creds(fleet, "led-1")[1]),
                 lambda: aiomqtt.Client("127.0.0.1", fleet.port, identifier="anon", timeout=5),
                 lambda: aiomqtt.Client("127.0.0.1", fleet.port, username="ghost",
                                        password="x", timeout=5)):
        with pytest.raises(aiomqtt.MqttCodeError) as e:
            async with make():
                pass
        assert "authori" in str(e.value).lower() or "password" in str(e.value).lower(), e.value


async def test_a_device_cannot_publish_as_another_or_as_the_hub(fleet) -> None:
    async with client(fleet, "hub") as hub, client(fleet, "led-1") as led:
        await hub.subscribe(f"ow/{CENTRE}/#", qos=1)
        forged = [topic("kp-1", "evt"), topic("kp-1", "status"), topic("led-1", "cmd"),
                  topic("kp-1", "cmd"), f"ow/{CENTRE}/hub/status", f"ow/{CENTRE}/win/1/display",
                  f"ow/{CENTRE}/hall/calls", "ow/other/dev/led-1/evt"]
        for t in forged:
            await led.publish(t, b"{}", qos=1)
        await led.publish(topic("led-1", "evt"), b"{}", qos=1)  # its own: the marker
        got = await collect(hub, topic("led-1", "evt"))
    assert got == [topic("led-1", "evt")]


async def test_a_device_cannot_read_another_devices_commands(fleet) -> None:
    async with client(fleet, "hub") as hub, client(fleet, "led-1") as led:
        for t in (topic("kp-1", "cmd"), f"ow/{CENTRE}/dev/+/cmd", f"ow/{CENTRE}/#",
                  f"ow/{CENTRE}/win/2/display", topic("led-1", "cmd")):
            await led.subscribe(t, qos=1)
        await hub.publish(topic("kp-1", "cmd"), b"{}", qos=1)
        await hub.publish(f"ow/{CENTRE}/win/2/display", b"{}", qos=1)
        await hub.publish(f"ow/{CENTRE}/win/1/display", b"{}", qos=1)  # its window: allowed
        await hub.publish(topic("led-1", "cmd"), b"{}", qos=1)
        got = await collect(led, topic("led-1", "cmd"))
    # Its own window's display and its own cmd only (each may come twice: through the
    # wildcard subscriptions Mosquitto accepted and through the exact one).
    assert set(got) == {f"ow/{CENTRE}/win/1/display", topic("led-1", "cmd")}, got


async def test_a_device_cannot_take_over_another_devices_session(fleet) -> None:
    async with client(fleet, "hub") as hub, client(fleet, "kp-1") as kp:
        await kp.subscribe(topic("kp-1", "cmd"), qos=1)
        # led-1 asks for kp-1's client id: the broker gives it its own (its username).
        async with client(fleet, "led-1", identifier="kp-1"):
            await hub.publish(topic("kp-1", "cmd"), b"{}", qos=1)
            assert await collect(kp, topic("kp-1", "cmd")) == [topic("kp-1", "cmd")]


async def test_a_revoked_device_is_locked_out_after_broker_config_and_reload(fleet) -> None:
    led_creds = creds(fleet, "led-1")
    async with client(fleet, "hub") as hub, client(fleet, "led-1") as led, \
            client(fleet, "kp-1") as kp:
        await hub.subscribe(f"ow/{CENTRE}/dev/+/evt", qos=1)
        await led.publish(topic("led-1", "evt"), b"{}", qos=1)
        assert await collect(hub, topic("led-1", "evt")) == [topic("led-1", "evt")]
        # What a technician runs: provision --revoke, then broker-config with --reload-pid.
        centre_toml = str(fleet.workdir.parent / "centre.toml")
        reloads = fleet.log().count(RELOADED)
        out = cli("provision", "-c", centre_toml, "--revoke", "led-1")
        assert out.returncode == 0, out.stderr
        out = cli("broker-config", "-c", centre_toml, "--out", str(fleet.workdir),
                  "--reload-pid", str(fleet.proc.pid))
        assert out.returncode == 0 and "passwd, acl" in out.stdout, out.stdout + out.stderr
        assert "reloaded" in out.stdout
        # The SIGHUP is handled in Mosquitto's next loop turn: it logs the reload, then
        # rereads passwd and acl before it reads any more traffic.
        await logged(fleet, RELOADED, reloads + 1)
        with contextlib.suppress(aiomqtt.MqttError):  # it may already be disconnected
            await led.publish(topic("led-1", "evt"), b"{}", qos=1)
        await kp.publish(topic("kp-1", "evt"), b"{}", qos=1)
        got = await collect(hub, topic("kp-1", "evt"))
        assert got == [topic("kp-1", "evt")], got
    with pytest.raises(aiomqtt.MqttCodeError):
        async with aiomqtt.Client("127.0.0.1", fleet.port, username=led_creds[0],
                                  password=led_creds[1], identifier="led-1", timeout=5):
            pass
    async with client(fleet, "kp-1"):  # the others still connect
        pass


async def test_staff_tools_share_the_hubs_account_without_taking_its_session(fleet) -> None:
    """On the hub's listener client ids are kept: an OTA rollout or `onewindow devices`
    logged in as the hub does not end the hub's own session."""
    user, pw = creds(fleet, "hub")
    async with client(fleet, "hub") as hub, client(fleet, "kp-1") as kp, \
            aiomqtt.Client("127.0.0.1", fleet.hub_port, username=user, password=pw,
                           identifier=f"ow-ota-{CENTRE}-1", timeout=5) as tool:
        await hub.subscribe(f"ow/{CENTRE}/dev/+/evt", qos=1)
        await tool.subscribe(f"ow/{CENTRE}/dev/+/evt", qos=1)
        await kp.publish(topic("kp-1", "evt"), b"{}", qos=1)
        assert await collect(hub, topic("kp-1", "evt")) == [topic("kp-1", "evt")]
        assert await collect(tool, topic("kp-1", "evt")) == [topic("kp-1", "evt")]
    # On the devices' listener the same login would have become client id ow-hub-c1.
    assert f"as ow-ota-{CENTRE}-1" in fleet.log()


async def test_a_last_will_on_another_devices_topic_never_arrives(fleet) -> None:
    """Mosquitto accepts the CONNECT but checks the will against the ACL when it is due."""
    import socket

    user, pw = creds(fleet, "led-1")
    async with client(fleet, "hub") as hub:
        await hub.subscribe(f"ow/{CENTRE}/#", qos=1)
        for will_topic in (topic("kp-1", "evt"), topic("led-1", "status")):
            c = aiomqtt.Client("127.0.0.1", fleet.port, username=user, password=pw,
                               identifier=user, timeout=5,
                               will=aiomqtt.Will(will_topic, b"{}", qos=1))
            await c.__aenter__()
            sock = c._client.socket()  # a pulled cable: no DISCONNECT, the will is due
            assert isinstance(sock, socket.socket)
            sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(Exception):
                await c.__aexit__(None, None, None)
        got = await collect(hub, topic("led-1", "status"))
    assert got == [topic("led-1", "status")], got  # its own will only
