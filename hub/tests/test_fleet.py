"""The fleet registry, provisioning, the derived credentials and the broker's rules."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from onewindow.hub import config as hub_config
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.fleet import acl, mosquitto, registry
from onewindow.hub.fleet.cli import node_toml
from onewindow.hub.store import db
from onewindow.node import config as node_config
from onewindow.tools.testkit.testbed import write_config


@pytest.fixture
def cfg(tmp_path):
    path = write_config(tmp_path / "centre.toml", "c1", 1883, tmp_path / "hub.db", windows=2,
                        devices=[{"id": "box-1", "role": "box"},
                                 {"id": "kp-1", "role": "keypad", "window": 1}])
    return hub_config.load(path)


def _rows(config):
    engine = db.open_database(config.database_url)
    with engine.connect() as conn:
        devs = conn.execute(select(registry.devices).order_by(registry.devices.c.id)).all()
        secrets = conn.execute(select(func.count()).select_from(registry.secret_table)).scalar()
    engine.dispose()
    return [tuple(r) for r in devs], secrets


def test_provision_is_idempotent_and_returns_the_boot_config(cfg) -> None:
    a = registry.provision(cfg, "led-1", "led", 1, "esp32-devkitc")
    rows = _rows(cfg)
    b = registry.provision(cfg, "led-1", "led", 1, "esp32-devkitc")
    assert a == b and _rows(cfg) == rows
    assert a["centre"] == "c1" and a["dev"] == "led-1" and a["role"] == "led"
    assert a["window"] == 1 and a["board"] == "esp32-devkitc"
    broker = a["broker"]
    assert (broker["host"], broker["port"], broker["user"]) == ("127.0.0.1", 1883, "led-1")
    assert len(broker["password"]) == 32 and "tls" not in broker
    other = registry.provision(cfg, "led-2", "led", 2, "pico-w", broker_host="10.0.0.2",
                               broker_port=1884)
    assert other["broker"]["password"] != broker["password"]
    assert (other["broker"]["host"], other["broker"]["port"]) == ("10.0.0.2", 1884)
    tls = registry.provision(cfg, "led-2", "led", 2, "pico-w", broker_host="b", tls=True)
    assert tls["broker"]["tls"] is True and tls["broker"]["port"] == 8883
    assert "window" not in registry.provision(cfg, "box-2", "box", None, "esp32-devkitc")


@pytest.mark.parametrize("args, message", [
    (("led-9", "printer", 1, "x"), "unknown role"),
    (("led-9", "led", 7, "x"), "window 7 is not configured"),
    (("led-9", "led", None, "x"), "needs --window"),
    (("box-9", "box", 1, "x"), "has no window"),
    (("LED 9", "led", 1, "x"), "device id"),
    (("led/9", "led", 1, "x"), "device id"),
    (("ow-hub-c1", "led", 1, "x"), "the hub's"),
    (("led-9", "led", 1, ""), "--board"),
    (("kp-1", "keypad", 2, "x"), "centre.toml"),  # [[devices]] says window 1
    (("led-1", "led", 2, "x"), "--force"),  # registered at window 1 below
    (("led-1", "keypad", 1, "x"), "--force"),
    (("led-1", "led", 1, "pico-w"), "--force"),
])
def test_refusals_are_clear_and_write_nothing(cfg, args, message) -> None:
    registry.provision(cfg, "led-1", "led", 1, "esp32-devkitc")
    before = _rows(cfg)
    with pytest.raises(registry.ProvisionError, match=message):
        registry.provision(cfg, *args)
    assert _rows(cfg) == before


def test_a_refusal_on_a_fresh_centre_does_not_even_create_the_secret(cfg) -> None:
    with pytest.raises(registry.ProvisionError):
        registry.provision(cfg, "led-9", "led", 5, "x")
    assert _rows(cfg) == ([], 0)


def test_force_reregisters_with_new_credentials(cfg) -> None:
    old = registry.provision(cfg, "led-1", "led", 1, "esp32-devkitc")
    new = registry.provision(cfg, "led-1", "led", 2, "esp32-devkitc", force=True)
    assert new["window"] == 2 and new["broker"]["password"] != old["broker"]["password"]


def test_revoke_and_rotate_change_the_password_and_the_hub_view(cfg) -> None:
    first = registry.provision(cfg, "node-1", "node", 1, "rpi")
    assert first["hub_token"]
    with registry.Fleet(cfg.database_url) as fleet:
        assert registry.lookup(cfg, fleet, "node-1") == DeviceSpec("node-1", "node", 1, "rpi")
        assert set(registry.upload_tokens(cfg, fleet).values()) == {"node-1"}
    dev = registry.rotate(cfg, "node-1")
    assert dev.generation == 1 and not dev.revoked
    rotated = registry.provision(cfg, "node-1", "node", 1, "rpi")
    assert rotated["broker"]["password"] != first["broker"]["password"]
    assert rotated["hub_token"] != first["hub_token"]
    dev = registry.revoke(cfg, "node-1")
    assert dev.revoked and dev.generation == 2
    assert registry.revoke(cfg, "node-1").generation == 2  # revoking twice changes nothing
    with registry.Fleet(cfg.database_url) as fleet:
        assert registry.lookup(cfg, fleet, "node-1") is None
        assert registry.upload_tokens(cfg, fleet) == {}
        users = [a.user for a in registry.accounts(cfg, fleet)]
    assert users == ["ow-hub-c1", "box-1", "kp-1"]
    # The name may be used again, by a new device with new credentials.
    again = registry.provision(cfg, "node-1", "kiosk", None, "rpi")
    assert again["broker"]["password"] not in (first["broker"]["password"],
                                               rotated["broker"]["password"])
    with pytest.raises(registry.ProvisionError):
        registry.rotate(cfg, "nobody")


def test_revoking_a_toml_device_overrides_centre_toml(cfg) -> None:
    registry.revoke(cfg, "kp-1")
    with registry.Fleet(cfg.database_url) as fleet:
        assert [s.id for s in registry.active_specs(cfg, fleet)] == ["box-1"]
        assert registry.lookup(cfg, fleet, "kp-1") is None
        assert registry.lookup(cfg, fleet, "box-1") == DeviceSpec("box-1", "box")
    with pytest.raises(registry.ProvisionError, match="no device"):
        registry.revoke(cfg, "ghost")


def test_the_secret_is_made_once_and_kept(cfg) -> None:
    with registry.Fleet(cfg.database_url) as fleet:
        assert fleet.secret() is None
        s = fleet.secret(create=True)
        assert s is not None and len(s) == 32
        assert fleet.secret(create=True) == s


def test_registry_finds_devices_provisioned_later_and_drops_revoked_ones() -> None:
    table: dict[str, DeviceSpec] = {}
    calls: list[str] = []

    def find(dev_id: str) -> DeviceSpec | None:
        calls.append(dev_id)
        return table.get(dev_id)

    table["kp-1"] = DeviceSpec("kp-1", "keypad", 1)
    reg = Registry([table["kp-1"]], find)
    assert reg.resolve("kp-1", 0.0) is reg.get("kp-1") and calls == ["kp-1"]
    assert reg.resolve("kp-1", 1.9) is reg.get("kp-1") and calls == ["kp-1"]  # within 2 s
    assert reg.resolve("led-5", 0.0) is None
    assert reg.resolve("led-5", 1.0) is None and calls == ["kp-1", "led-5"]  # not again yet
    table["led-5"] = DeviceSpec("led-5", "led", 5)
    assert reg.resolve("led-5", 2.5).spec.window == 5
    assert reg.resolve("led-5", 2.6) is reg.get("led-5")
    del table["led-5"]  # revoked
    assert reg.resolve("led-5", 3.0) is not None  # an event: no lookup per message
    assert reg.resolve("led-5", 3.0, birth=True) is None and reg.get("led-5") is None
    del table["kp-1"]  # revoked while connected, no birth: dropped within 2 s all the same
    assert reg.resolve("kp-1", 1.5) is not None
    assert reg.resolve("kp-1", 4.1) is None and reg.get("kp-1") is None


def test_rules_match_and_cover() -> None:
    assert acl.matches("ow/c/#", "ow/c/dev/a/evt")
    assert acl.matches("ow/c/dev/+/evt", "ow/c/dev/a/evt")
    assert not acl.matches("ow/c/dev/a/evt", "ow/c/dev/b/evt")
    assert not acl.matches("ow/c/#", "ow/d/dev/a/evt")
    assert acl.covers("ow/c/#", "ow/c/dev/+/evt")
    assert not acl.covers("ow/c/dev/a/cmd", "ow/c/dev/+/cmd")
    assert not acl.covers("ow/c/dev/a/cmd", "ow/c/#")
    g = acl.device_grant("c", DeviceSpec("led-3", "led", 3))
    assert g.may_publish("ow/c/dev/led-3/evt") and g.may_publish("ow/c/dev/led-3/otareq")
    assert not g.may_publish("ow/c/dev/led-3/cmd") and not g.may_publish("ow/c/hub/status")
    assert not g.may_publish("ow/c/dev/kp-3/evt") and not g.may_publish("ow/c/win/3/display")
    assert g.may_receive("ow/c/win/3/display") and g.may_receive("ow/c/dev/led-3/ota")
    assert not g.may_receive("ow/c/win/4/display") and not g.may_receive("ow/c/hall/calls")
    assert not g.may_subscribe("ow/c/#") and not g.may_subscribe("ow/c/dev/+/cmd")
    hall = acl.device_grant("c", DeviceSpec("hall-1", "hall"))
    assert hall.may_receive("ow/c/hall/calls") and not hall.may_receive("ow/c/win/1/display")
    box = acl.device_grant("c", DeviceSpec("box-1", "box"))
    assert box.read == ("ow/c/dev/box-1/cmd", "ow/c/dev/box-1/res", "ow/c/dev/box-1/err",
                        "ow/c/dev/box-1/ota", "ow/c/hub/status")


def test_password_hash_is_mosquitto_passwd_format() -> None:
    h = mosquitto.password_hash("secret", b"\x00" * 12)
    parts = h.split("$")
    assert parts[:3] == ["", "7", "101"] and len(parts) == 5
    assert len(parts[3]) == 16 and len(parts[4]) == 88  # base64 of 12 and 64 bytes


def test_broker_files_are_stable_and_private(cfg, tmp_path) -> None:
    registry.provision(cfg, "led-1", "led", 1, "esp32-devkitc")
    out = tmp_path / "broker"
    files, changed = mosquitto.write(cfg, out)
    assert changed == ["passwd", "acl", "mosquitto.conf"] and files.users == 4
    assert mosquitto.write(cfg, out)[1] == []  # same fleet, same bytes
    st = (out / "passwd").stat()
    gid = mosquitto._broker_group()  # root: group mosquitto, which Mosquitto drops to
    assert (st.st_mode & 0o777, st.st_gid if gid is not None else None) == (
        (0o600, None) if gid is None else (0o640, gid))
    users = [line.split(":")[0] for line in (out / "passwd").read_text().splitlines()]
    assert users == ["ow-hub-c1", "box-1", "kp-1", "led-1"]
    conf = (out / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "use_username_as_clientid true" in conf
    registry.revoke(cfg, "led-1")
    assert mosquitto.write(cfg, out)[1] == ["passwd", "acl"]
    assert "led-1" not in (out / "passwd").read_text() + (out / "acl").read_text()


def test_node_toml_loads_as_a_node_config(cfg, tmp_path) -> None:
    dev = registry.provision(cfg, "node-1", "node", 1, "rpi", broker_host="10.0.0.2")
    text = node_toml(dev, "http://10.0.0.2:8080").replace(
        'secret_file = "/etc/onewindow/centre.key"', 'secret = "0123456789abcdef0123"')
    (tmp_path / "node.toml").write_text(text)
    nc = node_config.load(tmp_path / "node.toml")
    assert (nc.id, nc.role, nc.window, nc.centre) == ("node-1", "node", 1, "c1")
    assert (nc.broker_host, nc.broker_user) == ("10.0.0.2", "node-1")
    assert nc.broker_password == dev["broker"]["password"] and nc.hub_token == dev["hub_token"]


def test_cli_provision_revoke_and_broker_config(cfg, tmp_path) -> None:
    path = tmp_path / "centre.toml"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "onewindow.hub.cli", *args],
                              capture_output=True, text=True, timeout=60)

    out = run("provision", "-c", str(path), "--id", "led-2", "--role", "led", "--window", "2",
              "--board", "esp32-devkitc", "--out", str(tmp_path / "ow.json"))
    assert out.returncode == 0, out.stderr
    written = json.loads((tmp_path / "ow.json").read_text())
    assert written == registry.provision(cfg, "led-2", "led", 2, "esp32-devkitc")
    printed = run("provision", "-c", str(path), "--id", "led-2", "--role", "led", "--window",
                  "2", "--board", "esp32-devkitc")
    assert json.loads(printed.stdout) == written
    wifi = run("provision", "-c", str(path), "--id", "led-2", "--role", "led", "--window", "2",
               "--board", "esp32-devkitc", "--wifi-ssid", "大厅", "--wifi-password", "pw-1")
    assert json.loads(wifi.stdout) == {**written, "wifi": {"ssid": "大厅", "password": "pw-1"}}
    bad = run("provision", "-c", str(path), "--id", "led-2", "--role", "led", "--window", "9",
              "--board", "esp32-devkitc")
    assert bad.returncode == 1 and "window 9 is not configured" in bad.stderr
    out = run("broker-config", "-c", str(path), "--out", str(tmp_path / "b"))
    assert out.returncode == 0 and "4 accounts" in out.stdout, out.stderr
    assert run("provision", "-c", str(path), "--revoke", "led-2").returncode == 0
    out = run("broker-config", "-c", str(path), "--out", str(tmp_path / "b"))
    assert "3 accounts" in out.stdout and "passwd, acl" in out.stdout
    listed = run("provision", "-c", str(path), "--list").stdout
    assert "led-2" in listed and "revoked" in listed


def test_the_registry_on_postgresql(cfg) -> None:
    import dataclasses

    from onewindow.tools.testkit.testbed import Postgres

    with Postgres() as pg:
        pcfg = dataclasses.replace(cfg, database_url=pg.url)
        a = registry.provision(pcfg, "led-1", "led", 1, "esp32-devkitc")
        assert registry.provision(pcfg, "led-1", "led", 1, "esp32-devkitc") == a
        with pytest.raises(registry.ProvisionError):
            registry.provision(pcfg, "led-1", "led", 2, "esp32-devkitc")
        dev = registry.revoke(pcfg, "led-1")
        assert dev.revoked and dev.generation == 1
        with registry.Fleet(pcfg.database_url) as fleet:
            assert registry.lookup(pcfg, fleet, "led-1") is None
            assert [x.user for x in registry.accounts(pcfg, fleet)] == ["ow-hub-c1", "box-1",
                                                                          "kp-1"]


def test_boards_are_provisioned_with_the_centres_ota_key(cfg, tmp_path) -> None:
    """Without the key a board refuses every update (no_key): provisioning carries it, from
    ota_key.pem beside centre.toml (or its .pub, where the private key is kept elsewhere)."""
    from onewindow.hub.ota.bundle import keygen, public_key_for_config

    assert cfg.ota_key == str(tmp_path / "ota_key.pem")
    assert "ota_pubkey" not in registry.provision(cfg, "led-1", "led", 1, "sim")
    pub = keygen(tmp_path / "ota_key.pem")
    board = registry.provision(cfg, "led-1", "led", 1, "sim")
    assert board["ota_pubkey"] == public_key_for_config(tmp_path / "ota_key.pem")
    assert "ota_pubkey" not in registry.provision(cfg, "node-1", "node", 1, "rpi")  # no OTA
    (tmp_path / "ota_key.pem").unlink()  # only the public half on the hub machine
    assert registry.provision(cfg, "led-1", "led", 1, "sim")["ota_pubkey"] == \
        public_key_for_config(pub)
