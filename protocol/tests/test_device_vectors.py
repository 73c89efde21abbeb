"""The device behaviour vectors (vectors/device.json), run by CPython and by the real
MicroPython unix port against protocol/ow_device.py: the module the boards' runtime, the Pi
node and tools/simdevice.py all use."""

import json
import os
import subprocess

from onewindow.protocol import ow_device

from . import check_device
from .test_vectors import PROTOCOL, VECTORS, _tool, on_micropython


def test_device_vectors_on_cpython():
    passed, failures = check_device.run(ow_device, str(VECTORS))
    assert failures == []
    assert passed == len(json.loads((VECTORS / "device.json").read_text()))


def test_device_vectors_on_micropython():
    out = on_micropython("check_device.py", VECTORS)
    assert out.returncode == 0, out.stdout + out.stderr
    cp_passed, _ = check_device.run(ow_device, str(VECTORS))
    assert out.stdout.strip().endswith(f"{cp_passed} passed, 0 failed")


def test_a_wrong_expectation_fails(tmp_path):
    # The runner has teeth: one expected seq changed, that vector fails on both interpreters.
    vectors = json.loads((VECTORS / "device.json").read_text())
    step = vectors[2]["steps"][0]
    assert step["out"] == [["save", 32], ["seq", 1]]
    step["out"] = [["save", 32], ["seq", 2]]
    (tmp_path / "device.json").write_text(json.dumps(vectors))
    passed, failures = check_device.run(ow_device, str(tmp_path))
    assert passed == len(vectors) - 1 and len(failures) == 1 and "step 0" in failures[0]
    out = on_micropython("check_device.py", tmp_path)
    assert out.returncode == 1 and out.stdout.strip().endswith(f"{passed} passed, 1 failed")


def test_device_module_runs_compiled_on_micropython(tmp_path):
    # As on a board: both modules compiled to .mpy, imported top-level, no source beside.
    for name in ("ow_protocol", "ow_device"):
        subprocess.run([_tool("mpy-cross"), "-o", str(tmp_path / f"{name}.mpy"),
                        str(PROTOCOL / f"{name}.py")], check=True, timeout=60)
    code = ("import ow_device as D\n"
            "d = D.Device('c1', 'kp-1', 'keypad', 0)\n"
            "a = d.event('call', 0, window=1)\n"
            "print(a[0][0], a[0][1], d.subs[-1])\n")
    out = subprocess.run([_tool("micropython"), "-c", code],
                         env=dict(os.environ, MICROPYPATH=str(tmp_path)),
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["send", "1", "ow/c1/hub/status"], out.stderr
