"""Provisioned firmware on a Mosquitto that checks every login and topic: the real firmware
on the unix port boots from the ow.json `provision` returned, the hub process connects with
its own derived account, and a ticket goes all the way round; then the same over TLS."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from onewindow.hub import config as hub_config
from onewindow.hub.fleet import registry
from onewindow.tools.testkit.fwsim import BOX_BUTTONS, FirmwareProcess
from onewindow.tools.testkit.testbed import FleetMosquitto, HubProcess, make_test_ca, write_config

pytestmark = pytest.mark.timeout(90)


async def wait_log(fw: FirmwareProcess, text: str, timeout: float = 10.0) -> str:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        for line in fw.log:
            if text in line:
                return line
        await asyncio.sleep(0.05)
    raise AssertionError(f"{fw.name}: no {text!r} in {fw.log[-15:]}")


def centre_toml(tmp_path: Path, centre: str, hub_url: str, device_url: str,
                ca: Path | None = None) -> Path:
    """The production layout: the hub on the broker's loopback hub listener, the devices on
    theirs (`device_url`: what `provision` writes into ow.json)."""
    extra = f'\n[broker]\nurl = "{hub_url}"\ndevice_url = "{device_url}"\n'
    if ca is not None:
        extra += f'ca = "{ca}"\n'
    return write_config(tmp_path / "centre.toml", centre, None, tmp_path / "hub.db",
                        windows=1, devices=[], extra=extra)


@contextlib.asynccontextmanager
async def a_box_served(broker: FleetMosquitto, path: Path, box_cfg: dict,
                       tmp_path: Path) -> AsyncIterator[list[FirmwareProcess]]:
    """The broker and the hub process up, and a box booted from its provisioned ow.json
    printing A001. Yields the boards: those the test adds are stopped with it at the end."""
    hub = HubProcess(path, tmp_path / "hub.log")
    boards: list[FirmwareProcess] = []
    with broker:
        try:
            hub.start()
            box = FirmwareProcess({**box_cfg, "buttons": BOX_BUTTONS}, tmp_path / "box-1")
            boards.append(box)
            await box.start()
            await box.wait("hub", lambda e: e["state"] == "ready", timeout=15)
            m = box.mark()
            await box.press("b0")
            assert (await box.wait("printed", since=m, timeout=10))["ticket"] == "A001"
            yield boards
        finally:
            await asyncio.gather(*(b.stop() for b in boards), return_exceptions=True)
            hub.stop()


async def test_provisioned_firmware_is_served_through_an_auth_broker(tmp_path) -> None:
    broker = FleetMosquitto(None, tmp_path / "broker")
    path = centre_toml(tmp_path, "hil", f"mqtt://127.0.0.1:{broker.hub_port}",
                       f"mqtt://127.0.0.1:{broker.port}")
    cfg = broker.config = hub_config.load(path)
    box_cfg = registry.provision(cfg, "box-1", "box", None, "sim")
    kp_cfg = registry.provision(cfg, "kp-1", "keypad", 1, "sim")
    assert box_cfg["broker"]["port"] == broker.port and box_cfg["broker"]["user"] == "box-1"
    async with a_box_served(broker, path, box_cfg, tmp_path) as boards:
        # A wrong password: refused at CONNACK, never up.
        bad = {**kp_cfg, "broker": {**kp_cfg["broker"], "password": "A" * 32}}
        thief = FirmwareProcess(bad, tmp_path / "thief")
        boards.append(thief)
        await thief.start(wait_ready=False)
        await wait_log(thief, "CONNACK refused")
        assert thief.find("up") is None
        # The real keypad's credentials work: it calls the box's ticket.
        kp = FirmwareProcess(kp_cfg, tmp_path / "kp-1")
        boards.append(kp)
        await kp.start()
        await kp.wait("hub", lambda e: e["state"] == "ready", timeout=15)
        m = kp.mark()
        await kp.press("call")
        key = await kp.wait("key", lambda e: e.get("event") == "call", since=m, timeout=10)
        assert key["result"] == "ok" and key["ticket"] == "A001", key
    log = (tmp_path / "hub.log").read_text()
    assert "unknown_device" not in log and "not authorised" not in log.lower(), log[-2000:]
    assert "Traceback" not in log, log[-2000:]


async def test_provisioned_firmware_and_the_hub_over_tls(tmp_path) -> None:
    """The devices on Mosquitto's TLS listener (ssl on the unix port, the CA from ow.json),
    the hub over TLS too (mqtts:// with the centre's CA); a board given another CA refuses
    the broker."""
    certs = make_test_ca(tmp_path / "ca")
    broker = FleetMosquitto(None, tmp_path / "broker", cert_dir=certs)
    url = f"mqtts://127.0.0.1:{broker.tls_port}"
    path = centre_toml(tmp_path, "tls", url, url, certs / "ca.crt")
    cfg = broker.config = hub_config.load(path)
    box_cfg = registry.provision(cfg, "box-1", "box", None, "sim")
    assert box_cfg["broker"]["tls"] is True and box_cfg["broker"]["port"] == broker.tls_port
    assert box_cfg["broker"]["ca"].startswith("-----BEGIN CERTIFICATE-----")
    async with a_box_served(broker, path, box_cfg, tmp_path) as boards:
        other = make_test_ca(tmp_path / "other")
        fake = {**box_cfg, "broker": {**box_cfg["broker"],
                                      "ca": (other / "ca.crt").read_text()}}
        doubter = FirmwareProcess({**fake, "buttons": BOX_BUTTONS}, tmp_path / "doubter")
        boards.append(doubter)
        await doubter.start(wait_ready=False)
        await wait_log(doubter, "not correctly signed by the trusted CA")
        assert doubter.find("up") is None
    # The hub's only broker URL is the TLS listener: the printed ticket went through it.
    assert "Traceback" not in (tmp_path / "hub.log").read_text()
