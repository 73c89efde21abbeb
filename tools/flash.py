"""`onewindow flash`: a board from the box to online, in one command.

    onewindow flash --config centre.toml --port /dev/ttyUSB0 --board esp32-devkitc \\
        --id led-3 --role led --window 3 [--micropython ESP32_GENERIC.bin] \\
        [--wifi-ssid .. --wifi-password ..] [--broker-host 192.168.10.2] [--timeout 60]

The steps, in order, each a small function that raises FlashError with what to do:

1. check the MicroPython image against the board (chip id / UF2 family) and the port
   (there, and not held by Thonny, screen or another mpremote);
2. write MicroPython: esptool on an ESP32, BOOTSEL + UF2 copy on a Pico W;
3. build the project firmware for the board (tools/firmware.py, .mpy) and copy it;
4. provision the device at the hub (hub/fleet; or take --device-config ow.json) and write
   ow.json to the board: only now, so a failure in 1-3 registers nothing;
5. restart the board while reading its console, and wait for its live birth on the broker.

A pass/fail table ends every run; the exit status is 0 only for a device that came online.

Why one module of 450 lines: what could stand alone already does (the image and port checks in
tools/flash_image.py, the console and broker watch in tools/flash_watch.py); what is left is the
five steps above in order, sharing `Options` and `Report`, with the undo of a half-done
provisioning in `_run`. tools/tests/test_flash.py replaces single steps by name on this module
(`copy_uf2`, `check_port`, ...), which a split would have to follow.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..hub import config as hub_config
from ..hub.mqtt.private_mosquitto import registry_changed
from ..protocol import ow_protocol as proto
from . import firmware
from .flash_image import BoardInfo, FlashError, board_info, check_image, check_port
from .flash_watch import SerialConsole, Watch, start_command, watch

ESPTOOL_BAUD = 460800
RP2_MOUNT_NAMES = ("RPI-RP2", "RP2350")  # the BOOTSEL drive of an RP2040 / RP2350
MOUNT_ROOTS = ("/media", "/run/media", "/mnt")
SETTLE_S = 2.0  # a freshly written MicroPython makes its filesystem before its REPL answers
WATCH_ROWS = ("boot", "Wi-Fi", "broker login", "hub")  # what the console and broker told


@dataclass(slots=True)
class Options:
    config: Path
    port: str
    board: str
    dev: str
    role: str
    window: int | None = None
    micropython: Path | None = None
    wifi_ssid: str | None = None
    wifi_password: str | None = None
    broker_host: str | None = None
    broker_port: int | None = None
    device_config: Path | None = None
    timeout: float = 60.0
    baud: int = ESPTOOL_BAUD
    mount: Path | None = None  # the Pico's BOOTSEL drive, when not found automatically


@dataclass(slots=True)
class Report:
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # step, PASS|FAIL|-, detail
    ok: bool = False

    def add(self, step: str, status: str, detail: str) -> None:
        self.rows.append((step, status, detail))


# ---- 1. checks ------------------------------------------------------------------------------

def check_device(opts: Options, info: BoardInfo) -> None:
    try:
        proto.device_topic("c", opts.dev, "status")
    except proto.ProtocolError as e:
        raise FlashError(f"--id {opts.dev!r}: {e.msg}") from e
    if opts.role not in proto.ROLES:
        raise FlashError(f"--role {opts.role!r}: one of {', '.join(proto.ROLES)}")
    if opts.role in ("led", "keypad") and opts.window is None:
        raise FlashError(f"a {opts.role} sits at a window: give --window N")
    if info.kind != "sim" and not opts.device_config and not opts.wifi_ssid:
        raise FlashError(f"{opts.board} joins Wi-Fi: give --wifi-ssid and --wifi-password")


# ---- 2. MicroPython ---------------------------------------------------------------------------

def esptool_commands(info: BoardInfo, port: str, image: Path, baud: int = ESPTOOL_BAUD
                     ) -> list[list[str]]:
    """esptool v5 (pinned in pyproject.toml): dashed sub-commands. Erase first: a board
    that ran other firmware keeps its old filesystem otherwise, and MicroPython would mount
    it as-is."""
    base = [_tool("esptool"), "--chip", info.chip, "--port", port, "--baud", str(baud)]
    return [[*base, "erase-flash"],
            [*base, "write-flash", "-z", hex(info.offset), str(image)]]


def write_esp32(info: BoardInfo, port: str, image: Path, baud: int) -> None:
    for cmd in esptool_commands(info, port, image, baud):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True)
        except FileNotFoundError as e:
            raise FlashError("esptool is not installed: pip install 'onewindow[tools]'") from e
        if r.returncode != 0:
            tail = (r.stdout + r.stderr).strip().splitlines()[-3:]
            raise FlashError(f"esptool {cmd[7]} failed: {' / '.join(tail)}. Hold BOOT, tap "
                             "EN, release BOOT to enter the download mode, or lower --baud")


def bootsel_command(port: str) -> list[str]:
    """MicroPython's `machine.bootloader()` through mpremote: the Pico reboots as a USB
    drive (RPI-RP2) without anyone pressing BOOTSEL."""
    return [_tool("mpremote"), "connect", port, "bootloader"]


def find_bootsel_drive(roots: tuple[str, ...] = MOUNT_ROOTS) -> Path | None:
    """A mounted BOOTSEL drive: it holds INFO_UF2.TXT."""
    for root in roots:
        base = Path(root)
        if not base.is_dir():
            continue
        for cand in [*base.glob("*"), *base.glob("*/*")]:
            if cand.name in RP2_MOUNT_NAMES and (cand / "INFO_UF2.TXT").exists():
                return cand
    return None


def wait_for(what: Callable[[], Any], timeout: float, step: float = 0.25) -> Any:
    end = time.monotonic() + timeout
    while True:
        got = what()
        if got or time.monotonic() >= end:
            return got
        time.sleep(step)


def _bootsel_drive(mount: Path | None) -> Path | None:
    if mount is not None:
        return mount if (mount / "INFO_UF2.TXT").exists() else None
    return find_bootsel_drive()


def write_rp2(port: str, image: Path, mount: Path | None, timeout: float = 20.0) -> None:
    """BOOTSEL, copy the UF2 (the drive flashes it and reboots), wait for the port."""
    target = _bootsel_drive(mount)
    if target is None:
        # Already MicroPython: ask it to reboot into BOOTSEL. A blank Pico is a drive already.
        subprocess.run(bootsel_command(port), capture_output=True)
        target = wait_for(lambda: _bootsel_drive(mount), timeout)
    if target is None:
        raise FlashError("no RPI-RP2 drive appeared: hold BOOTSEL while plugging the Pico in, "
                         "mount the drive (or pass --mount /path/to/RPI-RP2), and run again")
    copy_uf2(image, target)
    if not wait_for(lambda: Path(port).exists(), timeout):
        raise FlashError(f"the Pico did not come back on {port} after the UF2 copy: unplug "
                         "it, plug it in again, and check the image is MicroPython for Pico W")


def copy_uf2(image: Path, drive: Path) -> Path:
    dest = drive / image.name
    with image.open("rb") as src, dest.open("wb") as out:
        shutil.copyfileobj(src, out)
        out.flush()
    return dest


# ---- 3./4. firmware and config -------------------------------------------------------------------

# What over-the-air updates leave on a board (firmware/main.py): a fresh flash must not be
# "rolled back" to /prev by a trial left from before, nor keep modules an updated /app had.
OTA_LEFTOVERS = ("next", "prev", "ota.json", "ota.bin", "app")


def clear_update_state(port: str, resume: bool) -> None:
    base = [_tool("mpremote"), "connect", port, *(["resume"] if resume else [])]
    for name in OTA_LEFTOVERS:  # one call each: a missing one fails, and that is fine
        subprocess.run([*base, "fs", "rm", "-r", f":{name}"], capture_output=True)


def copy_firmware(opts: Options, info: BoardInfo, work: Path) -> int:
    image = work / "image"
    clear_update_state(opts.port, info.kind == "sim")
    try:
        files = firmware.build(opts.board, image)
    except (ValueError, RuntimeError, subprocess.CalledProcessError) as e:
        raise FlashError(f"building the firmware failed: {e}") from e
    _mpremote(lambda: firmware.deploy(opts.port, image, None, reset=False,
                                      resume=info.kind == "sim"), "copying the firmware")
    return len(files)


def write_config(opts: Options, info: BoardInfo, cfg: dict[str, Any], work: Path) -> None:
    path = work / "ow.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    empty = work / "config-only"
    empty.mkdir(exist_ok=True)
    _mpremote(lambda: firmware.deploy(opts.port, empty, path, reset=False,
                                      resume=info.kind == "sim"), "writing ow.json")


def _mpremote(run: Callable[[], None], what: str) -> None:
    try:
        run()
    except subprocess.CalledProcessError as e:
        raise FlashError(f"{what} with mpremote failed (exit {e.returncode}): is MicroPython "
                         "running on the board? press its reset button and run again") from e


def _revoke(registry: Any, hub: Any, dev: str) -> None:
    registry.revoke(hub, dev)
    registry_changed(hub)


def fleet_registry() -> Any:
    """hub/fleet's provisioning API, or None while this version has none."""
    try:
        from ..hub.fleet import registry
    except ImportError:
        return None
    return registry


@dataclass(slots=True)
class Provisioned:
    cfg: dict[str, Any]
    undo: Callable[[], None] | None  # revoke what this run registered; None: nothing new


def device_config(opts: Options, hub: hub_config.HubConfig, registry: Any) -> Provisioned:
    """The ow.json for the board: --device-config as given, or a fresh provisioning."""
    if opts.device_config is not None:
        try:
            cfg = json.loads(opts.device_config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise FlashError(f"cannot read --device-config {opts.device_config}: {e}") from e
        undo = None
    elif registry is None:
        raise FlashError("this hub has no provisioning yet (hub/fleet): pass --device-config "
                         "ow.json with the device's broker credentials")
    else:
        known = _registered(registry, hub, opts.dev)
        try:
            cfg = registry.provision(hub, opts.dev, opts.role, opts.window, opts.board,
                                     broker_host=opts.broker_host,
                                     broker_port=opts.broker_port)
        except Exception as e:  # the registry's own errors say what is wrong
            raise FlashError(f"provisioning {opts.dev} failed: {e}") from e
        registry_changed(hub)  # the board flashed next is let into the embedded broker
        undo = None if known else (lambda: _revoke(registry, hub, opts.dev))
    cfg = {**cfg, "board": opts.board}
    if cfg.get("dev") != opts.dev or cfg.get("centre") != hub.centre.centre_id:
        raise FlashError(f"the device config is for {cfg.get('dev')!r} at centre "
                         f"{cfg.get('centre')!r}, not {opts.dev!r} at "
                         f"{hub.centre.centre_id!r}")
    if opts.wifi_ssid:
        cfg["wifi"] = {"ssid": opts.wifi_ssid, "password": opts.wifi_password or ""}
    if opts.broker_host:
        cfg["broker"] = {**cfg.get("broker", {}), "host": opts.broker_host}
    if opts.broker_port:
        cfg["broker"] = {**cfg.get("broker", {}), "port": opts.broker_port}
    return Provisioned(cfg, undo)


def _registered(registry: Any, hub: hub_config.HubConfig, dev: str) -> bool:
    """Was `dev` an active device before this run (a fleet row or a centre.toml entry)?
    Then a failure must not revoke it: someone else's working board would lose its login."""
    with registry.Fleet(hub.database_url) as fleet:
        return registry.lookup(hub, fleet, dev) is not None


# ---- the run --------------------------------------------------------------------------------

def run(opts: Options, registry: Any = None, console_factory: Callable[..., Any] = SerialConsole
        ) -> Report:
    """Every step in order; the first failure ends the run (later rows say '-')."""
    report = Report()
    try:
        hub = hub_config.load(opts.config)
    except hub_config.ConfigError as e:
        report.add("configuration", "FAIL", str(e))
        return report
    if registry is None:
        registry = fleet_registry()
    steps = ["input", "image", "port", "MicroPython", "firmware", "device config", "online"]
    rows = [*steps[:-1], *WATCH_ROWS, "online"]
    try:
        _run(opts, hub, registry, console_factory, report)
    except FlashError as e:
        done = {r[0] for r in report.rows}
        failed = next(s for s in steps if s not in done)
        report.add(failed, "FAIL", str(e))
    for s in steps:
        if s not in {r[0] for r in report.rows}:
            report.add(s, "-", "not run")
    order = {s: i for i, s in enumerate(rows)}
    report.rows.sort(key=lambda r: order.get(r[0], len(rows)))
    return report


def _run(opts: Options, hub: hub_config.HubConfig, registry: Any,
         console_factory: Callable[..., Any], report: Report) -> None:
    info = board_info(opts.board)
    check_device(opts, info)
    report.add("input", "PASS", f"{opts.dev}: {opts.role} on {opts.board} ({info.chip})")
    if opts.micropython is not None:
        check_image(opts.micropython, opts.board)
        report.add("image", "PASS", f"{opts.micropython.name} is for {info.chip}")
    else:
        report.add("image", "-", "no --micropython: the board keeps its MicroPython")
    # A blank Pico (or one held in BOOTSEL) has no serial port until MicroPython runs.
    blank_pico = (info.kind == "rp2" and opts.micropython is not None
                  and not Path(opts.port).exists() and _bootsel_drive(opts.mount) is not None)
    if blank_pico:
        report.add("port", "-", f"the Pico is in BOOTSEL mode: {opts.port} comes with MicroPython")
    else:
        check_port(opts.port)
        report.add("port", "PASS", f"{opts.port} is free")
    if opts.micropython is not None:
        if info.kind == "esp32":
            write_esp32(info, opts.port, opts.micropython, opts.baud)
        else:
            write_rp2(opts.port, opts.micropython, opts.mount)
        time.sleep(SETTLE_S)
        if blank_pico:
            check_port(opts.port)
        report.add("MicroPython", "PASS", f"{opts.micropython.name} written")
    else:
        report.add("MicroPython", "-", "skipped")
    with tempfile.TemporaryDirectory(prefix="ow-flash-") as tmp:
        work = Path(tmp)
        n = copy_firmware(opts, info, work)
        report.add("firmware", "PASS", f"{n} files (.mpy) copied")
        prov = device_config(opts, hub, registry)
        try:
            write_config(opts, info, prov.cfg, work)
        except FlashError:
            if prov.undo is not None:  # nothing half-registered: the board has no config
                prov.undo()
                raise FlashError(f"writing ow.json failed; {opts.dev} was unregistered "
                                 "again, run flash once more") from None
            raise
        b = prov.cfg.get("broker", {})
        report.add("device config", "PASS", f"ow.json: {opts.dev} ({opts.role}"
                   f"{f', window {opts.window}' if opts.window else ''}), broker "
                   f"{b.get('host', '?')}:{b.get('port', 1883)}")
    check_online(opts, hub, info, console_factory, report)


def check_online(opts: Options, hub: hub_config.HubConfig, info: BoardInfo,
                 console_factory: Callable[..., Any], report: Report) -> None:
    try:
        console = console_factory(opts.port)
    except Exception as e:
        raise FlashError(f"cannot open {opts.port} to restart the board: {e}") from e
    try:
        w = asyncio.run(watch(console, hub, opts.dev, start_command(info.kind),
                              opts.timeout))
    finally:
        console.close()
    _online_rows(w, opts, report)


def _online_rows(w: Watch, opts: Options, report: Report) -> None:
    for check in WATCH_ROWS:
        f = w.findings.get(check)
        if f is not None:
            report.add(check, "PASS" if f.ok else "FAIL", f.detail)
    if w.broker_error:
        raise FlashError(w.broker_error)
    if w.birth is not None and "hub" not in w.findings:
        report.add("hub", "-", f"hub/status is {w.hub_state or 'absent'}: the device is "
                   "online, but no hub answers it until `onewindow hub` runs")
    if w.birth is not None and (w.failed is None or w.failed.check != "hub"):
        report.add("online", "PASS", f"birth on the broker after {w.elapsed:.1f} s: "
                   f"fw {w.birth.get('fw')}, board {w.birth.get('board')}")
        report.ok = True
        return
    f = w.failed
    hint = f.detail if f is not None else (
        "no birth and nothing telling on the console: check the board's power and Wi-Fi "
        "reach, and --broker-host")
    raise FlashError(f"{opts.dev} did not come online within {opts.timeout:g} s: {hint}")


def _tool(name: str) -> str:
    venv = firmware.REPO / ".venv" / "bin" / name
    return str(venv) if venv.exists() else (shutil.which(name) or name)


# ---- the command ----------------------------------------------------------------------------

def print_report(report: Report) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="onewindow flash")
    t.add_column("step")
    t.add_column("result")
    t.add_column("detail", overflow="fold")
    style = {"PASS": "green", "FAIL": "bold red", "-": "dim"}
    for step, status, detail in report.rows:
        t.add_row(step, f"[{style[status]}]{status}[/]", detail)
    c = Console()
    c.print(t)
    c.print("[bold green]PASS[/]: the device is online" if report.ok
            else "[bold red]FAIL[/]: see the failed step for what to do")


def register(app: Any) -> None:
    """Add `flash` to the `onewindow` typer app (hub/cli.py calls this)."""
    import typer

    @app.command()
    def flash(config: Path = typer.Option(..., "--config", "-c", help="centre.toml"),
              port: str = typer.Option(..., "--port", help="serial port, e.g. /dev/ttyUSB0"),
              board: str = typer.Option(..., "--board", help="esp32-devkitc | pico-w | sim"),
              dev: str = typer.Option(..., "--id", help="device id, e.g. led-3"),
              role: str = typer.Option(..., "--role", help="led | hall | box | keypad"),
              window: int | None = typer.Option(None, "--window"),
              micropython: Path | None = typer.Option(
                  None, "--micropython", help="MicroPython .bin (ESP32) or .uf2 (Pico W) to "
                  "write first"),
              wifi_ssid: str | None = typer.Option(None, "--wifi-ssid"),
              wifi_password: str | None = typer.Option(None, "--wifi-password"),
              broker_host: str | None = typer.Option(
                  None, "--broker-host", help="the broker's address as the board reaches it"),
              broker_port: int | None = typer.Option(None, "--broker-port"),
              device_config: Path | None = typer.Option(
                  None, "--device-config", help="ow.json to write instead of provisioning"),
              timeout: float = typer.Option(60.0, help="seconds to wait for the birth"),
              baud: int = typer.Option(ESPTOOL_BAUD, help="esptool baud rate"),
              mount: Path | None = typer.Option(None, help="the Pico's RPI-RP2 drive")) -> None:
        """Write MicroPython and the OneWindow firmware to a board, configure it, and check
        that it comes online (pass/fail table; exit 1 on failure)."""
        from ..hub.cliutil import centre_config

        centre_config(config)  # an unreadable centre.toml: one line, exit 2, before the table
        opts = Options(config, port, board, dev, role, window, micropython, wifi_ssid,
                       wifi_password, broker_host, broker_port, device_config, timeout, baud,
                       mount)
        report = run(opts)
        print_report(report)
        raise typer.Exit(0 if report.ok else 1)
