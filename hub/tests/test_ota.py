"""OTA on the hub side without a broker: the bundle format, the centre's key and the wave
rollout state machine. The update on real parts is hil-tests/test_hil_ota.py."""

from __future__ import annotations

import hashlib
import json
import stat

import pytest

from onewindow.hub.ota import public_key_for_config
from onewindow.hub.ota.bundle import (
    BundleError,
    build_bundle,
    keygen,
    load_private_key,
    parse_bundle,
    sign,
    verify,
)
from onewindow.hub.ota.rollout import Rollout
from onewindow.protocol import ow_protocol as P


def _image(tmp_path, board="sim"):
    app = tmp_path / "image" / "app"
    for rel, data in {"ow/runtime.mpy": b"\x4d\x06rt", "ow/__init__.mpy": b"",
                      "lib/owmqtt.mpy": b"mq" * 1000, f"boards/{board}.mpy": b"board",
                      "boards/__init__.mpy": b"", "ow_version.mpy": b"old"}.items():
        (app / rel).parent.mkdir(parents=True, exist_ok=True)
        (app / rel).write_bytes(data)
    (tmp_path / "image" / "main.py").write_text("# loader\n")
    return tmp_path / "image"


def test_bundle_layout_roundtrip_and_hashes(tmp_path):
    b = build_bundle(_image(tmp_path), "0.3.0", ["led"])
    assert b.data[:4] == b"OWB1"
    n = int.from_bytes(b.data[4:8], "big")
    man = json.loads(b.data[8:8 + n])
    assert man["version"] == "0.3.0" and man["roles"] == ["led"] and man["boards"] == ["sim"]
    paths = [f["p"] for f in man["files"]]
    # The app only: not the loader, not ow_version (the board writes it from the manifest).
    assert "main.py" not in paths and not any("ow_version" in p for p in paths)
    assert "lib/owmqtt.mpy" in paths
    for f in man["files"]:
        assert f["h"] == hashlib.sha256((tmp_path / "image" / "app" / f["p"])
                                        .read_bytes()).hexdigest()
    assert parse_bundle(b.data).manifest == man
    assert b.sha256 == hashlib.sha256(b.data).hexdigest()


def test_bundle_damage_is_found(tmp_path):
    data = bytearray(build_bundle(_image(tmp_path), "1").data)
    data[-5] ^= 1
    with pytest.raises(BundleError, match="sha256"):
        parse_bundle(bytes(data))
    with pytest.raises(BundleError, match="OWB1"):
        parse_bundle(b"PK\x03\x04")
    with pytest.raises(BundleError, match="not a firmware image"):
        build_bundle(tmp_path, "1")
    with pytest.raises(BundleError, match="bad version"):
        build_bundle(_image(tmp_path), "1 2")


def test_key_file_mode_signature_and_config_value(tmp_path):
    key = tmp_path / "keys" / "ota_key.pem"
    pub = keygen(key)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    with pytest.raises(BundleError, match="exists"):
        keygen(key)
    value = public_key_for_config(key)
    assert value == public_key_for_config(pub)  # from the private key or the .pub
    assert len(value) == 344  # base64 of a 2048-bit modulus
    b = build_bundle(_image(tmp_path), "1")
    sig = sign(b, load_private_key(key))
    assert verify(b, sig, value)
    other = build_bundle(_image(tmp_path), "2")
    assert not verify(other, sig, value)


def test_ota_messages_validate_both_ways():
    offer = {"id": "a1", "type": "offer", "version": "1", "size": 10, "sha256": "00",
             "sig": "AA==", "chunk": 2048}
    assert P.decode("ota", P.encode("ota", dict(offer)))["chunk"] == 2048
    with pytest.raises(P.ProtocolError) as e:
        P.validate("ota", {"v": 1, "id": "a1", "type": "chunk", "i": 0, "off": 0})
    assert e.value.code == "missing_field"
    with pytest.raises(P.ProtocolError) as e:
        P.validate("otareq", {"v": 1, "dev": "led-1", "id": "a1", "type": "put"})
    assert e.value.code == "unknown_type"
    with pytest.raises(P.ProtocolError) as e:
        P.validate("status", {"v": 1, "dev": "led-1", "state": "ready", "ota": "maybe"})
    assert e.value.code == "bad_field"
    assert P.device_topic("c1", "led-1", "otareq") == "ow/c1/dev/led-1/otareq"


# ---- the rollout state machine ---------------------------------------------------------------

def birth(fw="0.2.0", ota=None, board="sim", state="ready", alerts=()):
    b = {"state": state, "fw": fw, "board": board, "alerts": list(alerts)}
    if ota:
        b["ota"] = ota
    return b


def started(n=3, wave=2, timeout=100.0, births=None):
    devs = [f"led-{i}" for i in range(1, n + 1)]
    ro = Rollout("0.3.0", devs, boards=["sim"], wave=wave, timeout=timeout)
    for d in devs:
        b = (births or {}).get(d, birth())
        if b is not None:
            ro.on_birth(d, b, 0.0)
    return ro, ro.start(0.0)


def update(ro, dev, now):
    """What a good device says: fetch, done, trial birth, healthy birth."""
    assert ro.may_serve(dev)
    acts = ro.on_request(dev, {"type": "get", "i": 0}, now)
    acts += ro.on_request(dev, {"type": "done", "version": "0.3.0"}, now)
    acts += ro.on_birth(dev, birth("0.3.0", "trial"), now + 1)
    acts += ro.on_birth(dev, birth("0.3.0", "ok"), now + 2)
    return acts


def test_canary_first_then_waves():
    ro, acts = started(n=5, wave=2)
    assert acts == [("offer", "led-1")]
    assert ro.waves == [["led-1"], ["led-2", "led-3"], ["led-4", "led-5"]]
    assert ro.on_request("led-1", {"type": "get", "i": 0}, 1) == []
    assert ro.on_request("led-1", {"type": "done", "version": "0.3.0"}, 1) == []
    assert ro.on_birth("led-1", birth("0.3.0", "trial"), 2) == []  # on trial: not yet
    assert ro.on_birth("led-1", birth("0.3.0", "ok"), 3) == [("offer", "led-2"),
                                                              ("offer", "led-3")]
    assert update(ro, "led-2", 5) == []  # its wave is not through yet
    assert update(ro, "led-3", 6) == [("offer", "led-4"), ("offer", "led-5")]
    update(ro, "led-4", 9)
    update(ro, "led-5", 9)
    assert ro.status == "done" and ro.finished
    assert {t.state for t in ro.targets.values()} == {"healthy"}


def test_refusal_stops_and_cancels_the_wave():
    ro, _ = started(n=4, wave=3)
    update(ro, "led-1", 1)
    ro.on_request("led-2", {"type": "get", "i": 0}, 5)
    acts = ro.on_request("led-3", {"type": "refused", "code": "bad_hash"}, 6)
    assert ro.status == "failed" and ro.reason == "led-3: refused (bad_hash)"
    assert sorted(acts) == [("cancel", "led-2"), ("cancel", "led-4")]
    assert not ro.may_serve("led-2")
    assert ro.on_birth("led-4", birth("0.3.0", "ok"), 7) == []  # nothing after a failure


def test_canary_rollback_means_nobody_else_is_offered():
    ro, _ = started(n=3)
    ro.on_request("led-1", {"type": "done", "version": "0.3.0"}, 1)
    # The old version is back: its birth says rollback.
    acts = ro.on_birth("led-1", birth("0.2.0", "rollback", alerts=["ota_rollback"]), 20)
    assert acts == [] and ro.status == "failed" and "rolled back" in ro.reason
    assert [ro.targets[d].state for d in ("led-2", "led-3")] == ["pending", "pending"]


def test_an_old_rollback_birth_before_the_swap_is_not_a_failure():
    ro, _ = started(n=1, births={"led-1": birth("0.2.0", "rollback")})
    assert ro.on_birth("led-1", birth("0.2.0", "rollback"), 1) == []
    assert ro.status == "running"


def test_timeout_fails_the_device():
    ro, _ = started(n=2, timeout=30)
    assert ro.tick(29) == []
    ro.tick(31)
    assert ro.status == "failed" and "not healthy within 30 s" in ro.reason
    assert ro.targets["led-2"].state == "pending"


def test_offline_other_board_and_up_to_date_devices_are_left_alone():
    births = {"led-1": None, "led-2": birth(board="esp32-devkitc"),
              "led-3": birth("0.3.0", "ok"), "led-4": birth(state="lost"), "led-5": birth()}
    ro, acts = started(n=5, births=births)
    assert acts == [("offer", "led-5")]
    states = {d: t.state for d, t in ro.targets.items()}
    assert states == {"led-1": "skipped", "led-2": "skipped", "led-3": "healthy",
                      "led-4": "skipped", "led-5": "offered"}
    update(ro, "led-5", 1)
    assert ro.status == "done"


def test_nothing_to_do_is_done():
    ro, acts = started(n=2, births={"led-1": birth("0.3.0"), "led-2": birth("0.3.0", "ok")})
    assert acts == [] and ro.status == "done"


def test_a_board_already_on_trial_is_waited_for_not_offered_again():
    ro, acts = started(n=2, births={"led-1": birth("0.3.0", "trial"), "led-2": birth()})
    assert acts == [] and ro.targets["led-1"].state == "applying"
    assert ro.on_birth("led-1", birth("0.3.0", "ok"), 5) == [("offer", "led-2")]


def test_boards_on_a_newer_version_are_left_alone_unless_the_bundle_may_go_back():
    devs = ["led-1", "led-2"]
    births = {"led-1": birth("0.4.0", "ok"), "led-2": birth("0.2.0")}
    ro = Rollout("0.3.0", devs, boards=["sim"])
    for d in devs:
        ro.on_birth(d, births[d], 0.0)
    assert ro.start(0.0) == [("offer", "led-2")]
    assert ro.targets["led-1"].state == "skipped"
    assert "--allow-downgrade" in ro.targets["led-1"].reason
    back = Rollout("0.3.0", devs, boards=["sim"], downgrade=True)
    for d in devs:
        back.on_birth(d, births[d], 0.0)
    assert back.start(0.0) == [("offer", "led-1")]


def test_a_downgrade_bundle_says_so_in_its_signed_manifest(tmp_path):
    image = _image(tmp_path)
    plain, back = build_bundle(image, "0.1.0"), build_bundle(image, "0.1.0", downgrade=True)
    assert not plain.downgrade and "downgrade" not in plain.manifest
    assert back.downgrade and parse_bundle(back.data).manifest["downgrade"] is True
    assert plain.sha256 != back.sha256  # the flag is inside what the signature covers
