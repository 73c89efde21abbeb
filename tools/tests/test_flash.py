"""`onewindow flash`: image and port checks, the exact esptool/UF2 steps, provisioning
without half-registered devices, and whole runs against a "board" that is the MicroPython
unix port's REPL on a pseudo-terminal (mpremote drives it), real Mosquitto and the hub.

Why one module of 438 lines: its sections follow tools/flash.py's steps in order (image, port,
the exact commands, the console, provisioning, whole runs), so each step's tests sit where the
step does; the fixtures (`write`, `centre_toml`, `peers`) and `_offline_steps` serve several
sections.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from onewindow.hub import config as hub_config
from onewindow.hub.cli import app
from onewindow.tools import flash
from onewindow.tools.flash_image import FlashError, check_image, check_port
from onewindow.tools.flash_watch import CREDENTIALS_HINT, classify
from onewindow.tools.testkit.ptyboard import PtyBoard
from onewindow.tools.testkit.testbed import HubProcess, Mosquitto, write_config

# ---- images -----------------------------------------------------------------------------


def esp_image(chip_id: int) -> bytes:
    """The first bytes of an ESP32 bootloader image: magic, segments, mode, size/freq,
    entry point, then the extended header with the chip id at byte 12."""
    head = bytes([0xE9, 3, 2, 0x20]) + struct.pack("<I", 0x40080000)
    ext = bytes([0xEE, 0, 0, 0]) + struct.pack("<H", chip_id) + bytes(10)
    return head + ext + bytes(64)


def uf2(family: int, blocks: int = 2) -> bytes:
    out = b""
    for i in range(blocks):
        hdr = struct.pack("<IIIIIIII", 0x0A324655, 0x9E5D5157, 0x2000, 0x10000000 + 256 * i,
                          256, i, blocks, family)
        out += hdr + bytes(476) + struct.pack("<I", 0x0AB16F30)
    return out


@pytest.fixture
def write(tmp_path):
    def _write(name: str, data: bytes) -> Path:
        p = tmp_path / name
        p.write_bytes(data)
        return p
    return _write


def test_esp32_image_for_an_esp32_passes(write):
    assert check_image(write("ESP32_GENERIC.bin", esp_image(0)), "esp32-devkitc").chip == "esp32"


def test_esp32s3_image_on_an_esp32_is_refused(write):
    with pytest.raises(FlashError, match="built for esp32s3, but esp32-devkitc is an esp32"):
        check_image(write("ESP32_GENERIC_S3.bin", esp_image(9)), "esp32-devkitc")


def test_uf2_for_an_esp32_is_refused(write):
    with pytest.raises(FlashError, match=r"UF2 file .*takes the ESP32 \.bin"):
        check_image(write("RPI_PICO_W.uf2", uf2(0xE48BFF56)), "esp32-devkitc")


def test_not_an_image_is_refused(write):
    with pytest.raises(FlashError, match="no 0xE9 magic"):
        check_image(write("notes.bin", b"hello world" * 10), "esp32-devkitc")


def test_pico_w_uf2_passes_and_rp2350_is_refused(write):
    assert check_image(write("RPI_PICO_W.uf2", uf2(0xE48BFF56)), "pico-w").chip == "rp2040"
    with pytest.raises(FlashError, match="UF2 for rp2350, but pico-w is an rp2040"):
        check_image(write("RPI_PICO2_W.uf2", uf2(0xE48BFF59)), "pico-w")


def test_esp_image_for_a_pico_and_a_broken_uf2_are_refused(write):
    with pytest.raises(FlashError, match=r"ESP32 image; pico-w takes a \.uf2"):
        check_image(write("ESP32_GENERIC.bin", esp_image(0)), "pico-w")
    broken = bytearray(uf2(0xE48BFF56))
    broken[512 + 508] ^= 0xFF
    with pytest.raises(FlashError, match="bad magic in the block at byte 512"):
        check_image(write("x.uf2", bytes(broken)), "pico-w")


def test_sim_board_takes_no_image_and_unknown_board_is_named(write):
    with pytest.raises(FlashError, match="unix port: there is no MicroPython image"):
        check_image(write("x.bin", esp_image(0)), "sim")
    with pytest.raises(FlashError, match="unknown board 'esp8266'"):
        check_image(write("x.bin", esp_image(0)), "esp8266")


# ---- the port -----------------------------------------------------------------------------


def test_missing_port_says_plug_it_in():
    with pytest.raises(FlashError, match="no device on /dev/ttyNOPE0: plug the board in"):
        check_port("/dev/ttyNOPE0")


def test_busy_port_names_the_holder_and_what_to_close():
    master, slave = pty.openpty()
    port = os.ttyname(slave)
    holder = os.open(port, os.O_RDWR | os.O_NOCTTY)
    try:
        check_port(port)  # free: passes, and leaves no lock behind
        check_port(port)
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as pyserial exclusive=True does
        with pytest.raises(FlashError, match=r"is busy.*close Thonny, screen, minicom"):
            check_port(port)
    finally:
        for fd in (holder, slave, master):
            os.close(fd)


# ---- the exact commands ----------------------------------------------------------------------


def test_esptool_commands_are_exact_and_the_pinned_esptool_knows_them(tmp_path):
    info = flash.board_info("esp32-devkitc")
    image = tmp_path / "fw.bin"
    cmds = flash.esptool_commands(info, "/dev/ttyUSB0", image)
    tool = flash._tool("esptool")
    base = [tool, "--chip", "esp32", "--port", "/dev/ttyUSB0", "--baud", "460800"]
    assert cmds == [[*base, "erase-flash"], [*base, "write-flash", "-z", "0x1000", str(image)]]
    for cmd in cmds:  # v5 spells them with dashes; a v4 CLI would refuse them
        r = subprocess.run([tool, cmd[7], "--help"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    r = subprocess.run([tool, "write-flash", "--help"], capture_output=True, text=True)
    assert "--compress" in r.stdout


def test_pico_bootsel_and_uf2_copy(tmp_path, write):
    assert flash.bootsel_command("/dev/ttyACM0") == [flash._tool("mpremote"), "connect",
                                                       "/dev/ttyACM0", "bootloader"]
    drive = tmp_path / "media" / "tech" / "RPI-RP2"
    drive.mkdir(parents=True)
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nBoard-ID: RPI-RP2\n")
    assert flash.find_bootsel_drive((str(tmp_path / "media"),)) == drive
    image = write("RPI_PICO_W.uf2", uf2(0xE48BFF56))
    port = tmp_path / "ttyACM0"
    port.touch()  # the board's port, back after the copy
    flash.write_rp2(str(port), image, drive, timeout=1)
    assert (drive / "RPI_PICO_W.uf2").read_bytes() == image.read_bytes()


def test_pico_that_never_shows_its_drive(tmp_path, write):
    image = write("RPI_PICO_W.uf2", uf2(0xE48BFF56))
    with pytest.raises(FlashError, match="no RPI-RP2 drive appeared: hold BOOTSEL"):
        flash.write_rp2(str(tmp_path / "ttyACM0"), image, tmp_path / "nowhere", timeout=0.3)


# ---- what the console says -------------------------------------------------------------------


def test_console_lines_become_findings():
    f = classify("owmqtt: CONNACK refused: bad user name or password")
    assert f is not None and not f.ok and f.detail == CREDENTIALS_HINT
    assert "re-run `onewindow provision`" in CREDENTIALS_HINT
    assert "broker-config" in CREDENTIALS_HINT
    f = classify("owmqtt: keeper: OSError(111,)", "10.0.0.2:1883")
    assert f is not None and f.check == "broker login" and "cannot reach 10.0.0.2:1883" in f.detail
    f = classify('{"ev": "wifi_retry", "status": 201, "delay_ms": 1000}')
    assert f is not None and f.check == "Wi-Fi" and not f.ok and "--wifi-ssid" in f.detail
    f = classify('{"ev": "wifi", "ip": "10.0.0.9", "rssi": -60}')
    assert f is not None and f.ok and "10.0.0.9" in f.detail
    f = classify('{"ev": "boot", "dev": "led-3", "role": "led", "board": "sim", "fw": "0.2.0"}')
    assert f is not None and f.check == "boot" and f.ok
    assert classify('{"ev": "up", "connects": 1}').ok  # type: ignore[union-attr]
    assert classify('{"ev": "fb", "n": 1}') is None
    assert classify("ImportError: no module named 'ow'").ok is False  # type: ignore[union-attr]


# ---- provisioning: nothing half-registered ---------------------------------------------------


class Recording:
    """The real hub/fleet registry, with its provision/revoke calls recorded."""

    def __init__(self) -> None:
        from onewindow.hub.fleet import registry

        self.real = registry
        self.Fleet = registry.Fleet
        self.lookup = registry.lookup
        self.calls: list[tuple[Any, ...]] = []

    def provision(self, config, dev_id, role, window, board, **kw):
        self.calls.append(("provision", dev_id, role, window, board, kw.get("broker_host")))
        return self.real.provision(config, dev_id, role, window, board, **kw)

    def revoke(self, config, dev_id):
        self.calls.append(("revoke", dev_id))
        return self.real.revoke(config, dev_id)

    def active(self, config, dev_id) -> bool:
        with self.Fleet(config.database_url) as fleet:
            return self.lookup(config, fleet, dev_id) is not None


@pytest.fixture
def centre_toml(tmp_path):
    return write_config(tmp_path / "centre.toml", "fl", 1883, tmp_path / "hub.db", windows=3)


def _offline_steps(monkeypatch, fail_write: bool) -> list[dict[str, Any]]:
    """Everything up to the board replaced, so only the order of registration and writing
    is under test."""
    written: list[dict[str, Any]] = []

    def write_config(opts, info, cfg, work):
        if fail_write:
            raise FlashError("writing ow.json with mpremote failed (exit 1)")
        written.append(cfg)

    monkeypatch.setattr(flash, "check_port", lambda port: None)
    monkeypatch.setattr(flash, "copy_firmware", lambda opts, info, work: 21)
    monkeypatch.setattr(flash, "write_config", write_config)
    monkeypatch.setattr(flash, "check_online", lambda *a: None)
    return written


def test_a_device_registered_by_this_run_is_revoked_when_its_config_cannot_be_written(
        monkeypatch, centre_toml):
    _offline_steps(monkeypatch, fail_write=True)
    reg = Recording()
    opts = flash.Options(centre_toml, "/dev/ttyX", "sim", "led-9", "led", 3,
                         broker_host="10.0.0.2")
    report = flash.run(opts, registry=reg)
    assert reg.calls == [("provision", "led-9", "led", 3, "sim", "10.0.0.2"),
                         ("revoke", "led-9")]
    row = dict((r[0], r) for r in report.rows)["device config"]
    assert row[1] == "FAIL" and "led-9 was unregistered again" in row[2]
    assert not report.ok
    assert not reg.active(hub_config.load(centre_toml), "led-9")


def test_an_earlier_registration_is_kept_and_a_good_write_gets_the_credentials(
        monkeypatch, centre_toml):
    _offline_steps(monkeypatch, fail_write=True)
    reg = Recording()  # led-3 is in centre.toml: someone's working board
    flash.run(flash.Options(centre_toml, "/dev/ttyX", "sim", "led-3", "led", 3), registry=reg)
    assert [c[0] for c in reg.calls] == ["provision"]  # no revoke of someone else's device
    assert reg.active(hub_config.load(centre_toml), "led-3")
    written = _offline_steps(monkeypatch, fail_write=False)
    reg = Recording()
    flash.run(flash.Options(centre_toml, "/dev/ttyX", "esp32-devkitc", "led-7", "led", 3,
                            wifi_ssid="hall", wifi_password="pw"), registry=reg)
    assert written[0]["broker"]["user"] == "led-7" and len(written[0]["broker"]["password"]) > 20
    assert written[0]["wifi"] == {"ssid": "hall", "password": "pw"}
    assert written[0]["board"] == "esp32-devkitc"


def test_failure_before_the_config_registers_nothing(monkeypatch, centre_toml, write):
    _offline_steps(monkeypatch, fail_write=False)
    reg = Recording()
    bad = write("ESP32_GENERIC_S3.bin", esp_image(9))
    report = flash.run(flash.Options(centre_toml, "/dev/ttyX", "esp32-devkitc", "led-3", "led",
                                     3, micropython=bad, wifi_ssid="x"), registry=reg)
    assert reg.calls == []
    assert [r[1] for r in report.rows if r[0] == "image"] == ["FAIL"]


def test_without_provisioning_a_device_config_is_needed(monkeypatch, centre_toml):
    _offline_steps(monkeypatch, fail_write=False)
    monkeypatch.setattr(flash, "fleet_registry", lambda: None)
    report = flash.run(flash.Options(centre_toml, "/dev/ttyX", "sim", "led-3", "led", 3))
    row = dict((r[0], r) for r in report.rows)["device config"]
    assert row[1] == "FAIL" and "--device-config" in row[2]


# ---- whole runs on the unix port -------------------------------------------------------------


@pytest.fixture
def peers(tmp_path):
    with Mosquitto(tmp_path / "broker") as broker:
        cfg = write_config(tmp_path / "centre.toml", "fl", broker.port, tmp_path / "hub.db",
                           windows=3)
        hub = HubProcess(cfg, tmp_path / "hub.log").start()
        try:
            yield broker, cfg
        finally:
            hub.stop()


def _ow_json(tmp_path: Path, port: int, **broker: Any) -> Path:
    p = tmp_path / "ow.json"
    p.write_text(json.dumps({"centre": "fl", "dev": "led-3", "role": "led", "window": 3,
                             "broker": {"host": "127.0.0.1", "port": port, **broker}}))
    return p


def test_flash_a_unix_port_board_over_a_pty(peers, tmp_path):
    broker, cfg = peers
    leftover = tmp_path / "board" / "next"  # an update interrupted before this flash
    leftover.mkdir(parents=True)
    (tmp_path / "board" / "ota.json").write_text('{"state": "trial", "tries": 1}')
    with PtyBoard(tmp_path / "board") as board:
        opts = flash.Options(cfg, board.port, "sim", "led-3", "led", 3,
                             device_config=_ow_json(tmp_path, broker.port), timeout=20)
        report = flash.run(opts)
    rows = {r[0]: r for r in report.rows}
    assert report.ok, report.rows
    assert rows["online"][1] == "PASS" and "fw 0.2.0, board sim" in rows["online"][2]
    assert rows["boot"][1] == rows["broker login"][1] == rows["hub"][1] == "PASS"
    flashed = tmp_path / "board"
    assert (flashed / "main.py").exists()
    assert [p.name for p in flashed.rglob("owmqtt.mpy")] == ["owmqtt.mpy"]  # compiled
    assert json.loads((flashed / "ow.json").read_text())["dev"] == "led-3"
    assert not leftover.exists() and not (flashed / "ota.json").exists()


def test_a_board_that_cannot_reach_the_broker_fails_in_time(peers, tmp_path):
    broker, cfg = peers
    with Mosquitto(tmp_path / "gone") as gone:
        dead_port = gone.port  # a port nobody listens on once this broker stops
    with PtyBoard(tmp_path / "board") as board:
        opts = flash.Options(cfg, board.port, "sim", "led-3", "led", 3,
                             device_config=_ow_json(tmp_path, dead_port), timeout=8)
        t0 = time.monotonic()
        report = flash.run(opts)
        took = time.monotonic() - t0
    rows = {r[0]: r for r in report.rows}
    assert not report.ok
    assert rows["online"][1] == "FAIL"
    assert "did not come online within 8 s" in rows["online"][2]
    assert f"cannot reach 127.0.0.1:{broker.port}" in rows["online"][2]
    assert took < 8 + 15  # the copy, then at most the timeout


def test_wrong_credentials_say_reprovision(tmp_path):
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pw), "led-3", "right"], check=True)
    # `user root`: started as root, Mosquitto would become `mosquitto` and could not read
    # pytest's private folder (the option is ignored when not started as root).
    conf = f"password_file {pw}\nuser root\n"
    with Mosquitto(tmp_path / "broker", extra_conf=conf) as broker:
        conf = tmp_path / "broker" / f"mosquitto-{broker.port}.conf"
        assert "allow_anonymous true" in conf.read_text()  # the watcher itself needs no login
        cfg = write_config(tmp_path / "centre.toml", "fl", broker.port, tmp_path / "hub.db",
                           windows=3)
        with PtyBoard(tmp_path / "board") as board:
            opts = flash.Options(cfg, board.port, "sim", "led-3", "led", 3, timeout=15,
                                 device_config=_ow_json(tmp_path, broker.port, user="led-3",
                                                        password="wrong"))
            report = flash.run(opts)
    rows = {r[0]: r for r in report.rows}
    assert rows["broker login"][1] == "FAIL"
    assert "wrong credentials" in rows["online"][2]
    assert "onewindow provision" in rows["online"][2]


def test_cli_missing_port_exit_1(centre_toml, tmp_path):
    r = CliRunner().invoke(app, ["flash", "--config", str(centre_toml), "--port",
                                 "/dev/ttyNOPE0", "--board", "sim", "--id", "led-3", "--role",
                                 "led", "--window", "3", "--device-config",
                                 str(_ow_json(tmp_path, 1883))])
    assert r.exit_code == 1
    assert "no device on /dev/ttyNOPE0" in r.output and "FAIL" in r.output


def test_flash_provisions_and_the_hub_accepts_it(tmp_path):
    """No --device-config: the device is provisioned (hub/fleet), gets its own broker
    account on the hub's embedded broker with accounts enforced, and the hub, which did not
    know it at start, accepts its birth."""
    from onewindow.hub.fleet.registry import Fleet
    from onewindow.tools.testkit.ports import quiet_port

    port = quiet_port(pair=True)
    cfg = write_config(tmp_path / "centre.toml", "fl", None, tmp_path / "hub.db", windows=3,
                       extra=f"\n[broker]\nembedded_port = {port}\nembedded_auth = true\n")
    with Fleet(hub_config.load(cfg).database_url) as fleet:
        fleet.secret(create=True)
    hub = HubProcess(cfg, tmp_path / "hub.log").start()
    try:
        with PtyBoard(tmp_path / "board") as board:
            report = flash.run(flash.Options(cfg, board.port, "sim", "led-7", "led", 3,
                                             broker_host="127.0.0.1", broker_port=port,
                                             timeout=25))
    finally:
        hub.stop()
    rows = {r[0]: r for r in report.rows}
    assert report.ok, report.rows
    assert rows["hub"][1] == "PASS" and rows["broker login"][1] == "PASS"
    written = json.loads((tmp_path / "board" / "ow.json").read_text())
    assert written["broker"]["user"] == "led-7" and written["broker"]["password"]


def test_a_device_the_hub_does_not_know_fails_with_what_to_do(peers, tmp_path):
    broker, cfg = peers
    ow = tmp_path / "ow.json"
    ow.write_text(json.dumps({"centre": "fl", "dev": "led-99", "role": "led", "window": 3,
                              "broker": {"host": "127.0.0.1", "port": broker.port}}))
    with PtyBoard(tmp_path / "board") as board:
        report = flash.run(flash.Options(cfg, board.port, "sim", "led-99", "led", 3,
                                         device_config=ow, timeout=20))
    rows = {r[0]: r for r in report.rows}
    assert not report.ok
    assert rows["hub"][1] == "FAIL" and "provision it" in rows["online"][2]


def test_a_blank_pico_in_bootsel_gets_micropython_then_its_port_is_checked(
        monkeypatch, centre_toml, tmp_path, write):
    written = _offline_steps(monkeypatch, fail_write=False)
    monkeypatch.setattr(flash, "check_port", check_port)  # the real one, once the port is back
    monkeypatch.setattr(flash, "SETTLE_S", 0)
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    (drive / "INFO_UF2.TXT").write_text("Board-ID: RPI-RP2\n")
    port = tmp_path / "ttyACM0"  # no port yet: the Pico is a USB drive
    copy = flash.copy_uf2

    def copy_and_reboot(image, target):
        out = copy(image, target)
        port.touch()  # MicroPython boots and its USB serial port appears
        return out

    monkeypatch.setattr(flash, "copy_uf2", copy_and_reboot)
    report = flash.run(flash.Options(centre_toml, str(port), "pico-w", "led-3", "led", 3,
                                     micropython=write("RPI_PICO_W.uf2", uf2(0xE48BFF56)),
                                     mount=drive, wifi_ssid="hall", device_config=_ow_json(
                                         tmp_path, 1883)))
    rows = {r[0]: r for r in report.rows}
    assert rows["port"][1] == "-" and "BOOTSEL" in rows["port"][2]
    assert rows["MicroPython"][1] == "PASS" and (drive / "RPI_PICO_W.uf2").exists()
    assert written and written[0]["board"] == "pico-w"
