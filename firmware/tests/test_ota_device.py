"""The device side of OTA on the MicroPython unix port, without a network: the RSA check a
board makes with one pow() (against signatures made by CPython's cryptography) and the boot
loader's update state machine after power cuts. The whole update over MQTT is in
hil-tests/test_hil_ota.py."""

import base64
import hashlib
from pathlib import Path

from onewindow.hub.ota.bundle import Bundle, keygen, load_private_key, public_key_for_config, sign

REPO = Path(__file__).resolve().parents[2]


async def test_signatures_and_loader_on_micropython(mp, tmp_path):
    key = tmp_path / "k.pem"
    keygen(key)
    other = tmp_path / "o.pem"
    keygen(other)
    pub = public_key_for_config(key)
    data = b"OWB1 some bundle bytes"
    b = Bundle(data, {"version": "1"})
    good = sign(b, load_private_key(key))
    digest = hashlib.sha256(data).hexdigest()
    bad_digest = hashlib.sha256(data + b"!").hexdigest()
    flipped = bytearray(base64.b64decode(good))
    flipped[100] ^= 1
    cases = [
        {"digest": digest, "sig": good, "key": pub},  # valid
        {"digest": bad_digest, "sig": good, "key": pub},  # other content
        {"digest": digest, "sig": base64.b64encode(bytes(flipped)).decode(), "key": pub},
        {"digest": digest, "sig": sign(b, load_private_key(other)), "key": pub},  # other key
        {"digest": digest, "sig": base64.b64encode(b"\x00" * 255).decode(), "key": pub},
    ]
    flash = tmp_path / "flash"
    flash.mkdir()
    m = await mp("ota_units.py", {"sigs": cases, "main": str(REPO / "firmware" / "main.py"),
                                  "root": str(flash)})
    r = await m.next("ota_units", timeout=30)
    assert r["sigs"] == [True, False, False, False, False]
    loader = r["loader"]
    state = {"state": "trial", "version": "2", "prev": "1", "tries": 1}
    # (each folder's file v holds the folder's name at the start of the case)
    assert loader["cut_mid_swap"] == ["next", "prev", True, state]
    assert loader["rollback"] == ["prev", None, False,
                                  {"state": "rollback", "version": "1", "failed": "2"}]
    assert loader["cut_after_swap"] == ["app", "prev", True]
    assert loader["rollback_to_base"] == [None, None, False]
    assert loader["ok"] == ["app", False, True]
    print("verify on the unix port:", r["verify_ms"], "ms")
