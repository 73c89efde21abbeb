"""The firmware's heap budget: every role on the 32-bit unix port, heap capped at an ESP32's.

An ESP32 without PSRAM running current MicroPython grows its Python heap to about 112 KB and
leaves ~40 KB of its RAM to Wi-Fi and TLS (mbedTLS allocates outside the Python heap, as on
the unix port). A board's heap fails by fragmentation before it runs out: a TLS handshake
needs one free block of at least 16 KB. `HeapCentre` runs the real firmware, frozen into a
32-bit unix-port image (tools/testkit/mpbuild.py, firmware/manifest.py), for a box, a keypad, an LED
board and a hall board with `-X heapsize=` at the budget, all on a TLS broker listener, with
Mosquitto and the hub process; the test (firmware/tests/test_heap_budget.py) and the
benchmark (tools/bench/bench_firmware.py) drive it through calls and an over-the-air update, which
puts the new version in RAM (an update writes /app, which the loader puts in front of the
frozen modules).

A reading is the sim board's `heap` command: after a collection, the bytes in use, free, and
the largest free block.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...hub.config import BrokerURL
from ...hub.ota.bundle import build_bundle, keygen, load_private_key, public_key_for_config, sign
from ...hub.ota.mqtt import OtaServer
from ...hub.ota.rollout import Rollout
from .. import firmware
from . import mpbuild
from .fwsim import BOX_BUTTONS, FirmwareProcess
from .testbed import HubProcess, Mosquitto, make_test_ca, quiet_port, write_config

BUDGET = 112 * 1024  # an ESP32's MicroPython heap (no PSRAM), grown to its size
MARGIN = 0.20  # of the budget left free at the highest reading
TLS_BLOCK = 16 * 1024  # the contiguous block a TLS handshake needs
ROLES = {"box-1": "box", "kp-1": "keypad", "led-1": "led", "hall-1": "hall"}


@dataclass
class Reading:
    at: str  # "boot", "100 calls", ...
    alloc: int
    free: int
    largest: int


TROUBLE = ("MemoryError", "Traceback", "crash")  # log words of a board that ran short


@dataclass
class Board:
    fw: FirmwareProcess
    readings: list[Reading] = field(default_factory=list)
    trouble: list[str] = field(default_factory=list)  # its log lines with TROUBLE words
    _seen: int = 0

    def sweep(self, keep: int = 400) -> None:
        """Collect trouble from the log so far, then drop all but its last `keep` lines and
        events (a long run would fill memory with framebuffer dumps)."""
        log = self.fw.log
        self.trouble += [ln for ln in log[self._seen:] if any(w in ln for w in TROUBLE)]
        if len(log) > 10 * keep:
            del log[:-keep]
        self._seen = len(log)
        if len(self.fw.events) > 10 * keep:
            del self.fw.events[:-keep]

    def peak(self, phase: str = "") -> int:
        return max(r.alloc for r in self.readings if r.at.startswith(phase))


# Each press held and released for this long: past the firmware's debounce (ow/ui.py: a
# change is real after 2 samples 2 ms apart, then 20 ms of lockout, polled every 5 ms)
# with room to spare, and 1,100 calls take ~40 s less than at fwsim's finger-like 50 ms.
HOLD_S = 0.035
# The test's hold (firmware/tests/test_heap_budget.py). The hold does not decide whether the
# firmware sees a press: the sim pin (boards/sim.py, SimPin) shows each level set over the
# socket until the board has read it 3 times, and the debounce needs 2 equal samples, so a
# press and its release are both seen, in order, however short the hold. The heap figures
# come from the calls, not the sleeps; the benchmark keeps HOLD_S, so that its press ->
# ticket times stay comparable with docs/benchmarks.md.
QUICK_HOLD_S = 0.005

def frozen_binary() -> Path:
    """The 32-bit unix port with the firmware frozen (re-frozen from this tree; the set-up
    built the rest once: `python -m onewindow.tools.testkit.mpbuild`)."""
    if not (mpbuild.tree() / ".unpacked").exists():
        raise RuntimeError("the 32-bit MicroPython unix port is not built: run the set-up "
                           "(tools/dev.sh test, or python -m onewindow.tools.testkit.mpbuild)")
    return mpbuild.unix32(firmware.FIRMWARE / "manifest.py", board="sim")


class HeapCentre:
    def __init__(self, workdir: Path, binary: Path, cap: int = BUDGET,
                 hold: float = HOLD_S) -> None:
        self.workdir = Path(workdir)
        self.cap = cap
        self.hold = hold  # each press held, and released, this long
        certs = make_test_ca(self.workdir / "ca")
        self.tls_port = quiet_port()
        # Run as root, Mosquitto would drop to its own user, which cannot read the key.
        self.broker = Mosquitto(self.workdir / "broker", extra_conf=(
            ("user root\n" if os.geteuid() == 0 else "")
            + f"listener {self.tls_port} 127.0.0.1\ncafile {certs / 'ca.crt'}\n"
            f"certfile {certs / 'server.crt'}\nkeyfile {certs / 'server.key'}\n"))
        self.hub_config = write_config(self.workdir / "centre.toml", "heap", self.broker.port,
                                       self.workdir / "hub.db", windows=1)
        self.hub = HubProcess(self.hub_config, self.workdir / "hub.log")
        self.key = self.workdir / "ota_key.pem"
        keygen(self.key)
        flash = self.workdir / "flash"  # a board's flash before any update: the loader only
        flash.mkdir()
        shutil.copyfile(firmware.FIRMWARE / "main.py", flash / "main.py")
        ca = (certs / "ca.crt").read_text()
        argv = [str(binary), "-X", f"heapsize={cap}"]
        self.boards: dict[str, Board] = {}
        for dev, role in ROLES.items():
            cfg: dict[str, Any] = {
                "centre": "heap", "dev": dev, "role": role,
                "broker": {"host": "127.0.0.1", "port": self.tls_port, "tls": True, "ca": ca},
                "ota_pubkey": public_key_for_config(self.key), "ota_stable_s": 1.5,
                "ota_trial_s": 60}
            if role in ("keypad", "led"):
                cfg["window"] = 1
            if role == "box":
                cfg["buttons"] = BOX_BUTTONS
            self.boards[dev] = Board(FirmwareProcess(cfg, self.workdir / dev, image=flash,
                                                     micropython=argv))
        self.calls = 0
        self.waiting: list[str] = []  # tickets printed, not called yet (oldest first)
        self.ticket_s: list[float] = []  # box press -> whole ticket at the printer UART
        self.display_s: list[float] = []  # keypad press -> the LED board drew the number

    def __getitem__(self, dev: str) -> FirmwareProcess:
        return self.boards[dev].fw

    async def start(self) -> HeapCentre:
        self.broker.start()
        self.hub.start()
        await asyncio.gather(*(b.fw.start() for b in self.boards.values()))
        for b in self.boards.values():
            await b.fw.wait("hub", lambda e: e["state"] == "ready", timeout=20)
        return self

    async def stop(self) -> None:
        await asyncio.gather(*(b.fw.stop() for b in self.boards.values()),
                             return_exceptions=True)
        self.hub.stop()
        self.broker.stop()

    async def read(self, at: str) -> None:
        """One heap reading of every board."""
        for b in self.boards.values():
            m = b.fw.mark()
            await b.fw.ctl("heap")
            e = await b.fw.wait("heap", since=m, timeout=10)
            b.readings.append(Reading(at, int(e["alloc"]), int(e["free"]), int(e["largest"])))

    async def _take(self) -> None:
        """A resident presses the box's first button: the ticket is printed."""
        box = self["box-1"]
        m = box.mark()
        t0 = asyncio.get_running_loop().time()
        await box.press("b0", self.hold)
        printed = await box.wait("printed", since=m, timeout=10)
        self.ticket_s.append(printed["t"] - t0)
        self.waiting.append(printed["ticket"])

    async def _call(self) -> None:
        """The clerk presses call: the oldest ticket is called to the LED board (and the hall
        board)."""
        kp, led = self["kp-1"], self["led-1"]
        mk, ml = kp.mark(), led.mark()
        t0 = asyncio.get_running_loop().time()
        await kp.press("call", self.hold)
        key = await kp.wait("key", lambda e: e.get("event") == "call", since=mk, timeout=10)
        if key.get("result") != "ok" or key.get("ticket") != self.waiting[0]:
            raise AssertionError(f"call {self.calls + 1}: {key}, waiting {self.waiting}")
        self.waiting.pop(0)
        drawn = await led.wait("draw", lambda e: e.get("ticket") == key["ticket"], since=ml,
                               timeout=10)
        self.display_s.append(drawn["t"] - t0)
        self.calls += 1

    async def run_calls(self, n: int) -> None:
        """n residents, each taking a ticket and called: the next one takes hers while the
        clerk calls the one before (the boards are separate processes), so the presses,
        held and released as a finger would (fwsim: 50 ms each), overlap."""
        if not self.waiting:
            await self._take()
        for i in range(n):
            steps = [self._call()] + ([self._take()] if i < n - 1 else [])
            await asyncio.gather(*steps)
            for b in self.boards.values():
                b.sweep()

    async def update(self, version: str, images: Path) -> Rollout:
        """An over-the-air update of every board to `version` (a built image, .mpy in
        /app): the boards fetch, verify and stage it, reset and run it from RAM."""
        image = images / version
        firmware.build("sim", image, version=version)
        bundle = build_bundle(image, version, sorted(set(ROLES.values())))
        sig = sign(bundle, load_private_key(self.key))
        ro = Rollout(version, list(self.boards), boards=bundle.manifest["boards"],
                     wave=len(self.boards), timeout=120)
        server = OtaServer(BrokerURL("127.0.0.1", self.broker.port), "heap", ro, bundle, sig)
        await asyncio.wait_for(server.run(settle=0.5), 180)
        if ro.status == "done":  # every board runs the new version, healthy: ready again
            for b in self.boards.values():
                boot = b.fw.find("boot", lambda e: e.get("fw") == version)
                await b.fw.wait("hub", lambda e: e["state"] == "ready",
                                since=b.fw.events.index(boot) if boot else 0, timeout=20)
        for b in self.boards.values():
            b.sweep()
        return ro

    def trouble(self) -> dict[str, list[str]]:
        """Each board's log lines that say it ran short or crashed."""
        for b in self.boards.values():
            b.sweep()
        return {dev: b.trouble for dev, b in self.boards.items()}
