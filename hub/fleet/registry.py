"""The persistent device registry and the credentials derived from it.

A table `fleet_devices` in the hub's own database (the journal's URL, tables in
`store/schema.py`; SQLite or PostgreSQL through SQLAlchemy Core, like `store/accounts.py`)
and one random 32-byte centre secret in `fleet_secret`, created on first use. No password
is stored: each one is

    base32(HMAC-SHA256(secret, f"{dev_id}:{generation}"))[:32]   (160 bits)

so provisioning the same device again gives the same `ow.json`, and revoking bumps the
device's `generation`, which kills every credential of the old one. The HTTP upload token
of a window node or kiosk is derived the same way with a different label. Whoever can read
the hub's database can derive every password: protect it like the broker's password file.

The API that `onewindow provision` and `onewindow flash` call:

    provision(config: HubConfig, dev_id: str, role: str, window: int | None, board: str, *,
              broker_host: str | None = None, broker_port: int | None = None,
              tls: bool = False, force: bool = False) -> dict
        Registers the device (or confirms it, idempotently) and returns the config a board
        boots with (`ow.json`): centre, dev, role, board, window (when it has one),
        broker {host, port, user, password[, tls, ca]} and, for `node`/`kiosk`, hub_token.
        Unknown role, window not configured (or missing/extra for the role), id not
        topic-safe or reserved, an id registered with another role/window/board (unless
        force=True; that also bumps the generation), or a conflict with centre.toml's
        [[devices]] raise ProvisionError and write nothing.
    revoke(config, dev_id) -> FleetDevice      (`unprovision` is the same function)
        Marks the device revoked and bumps its generation: the hub refuses it at once, the
        broker after `onewindow broker-config` has rewritten its files and reloaded.
    rotate(config, dev_id) -> FleetDevice
        New credentials for an active device (generation + 1); reflash it.

The hub's account on the broker is `hub_user(centre)` = "ow-hub-{centre}" with a password
derived the same way; device ids starting "ow-hub" are refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from ...protocol import ow_protocol as proto
from ...protocol.ow_device import EVT
from ..config import BrokerURL, HubConfig
from ..devices import DeviceSpec
from ..store import db
from ..store.schema import fleet_devices as devices
from ..store.schema import fleet_secret as secret_table
from ..store.schema import metadata as metadata  # the one metadata, as before

SECRET_BYTES = 32
PASSWORD_CHARS = 32  # base32 characters: 160 bits
HUB_PREFIX = "ow-hub"
WINDOW_REQUIRED = ("led", "keypad", "node")  # their firmware shows or drives one window
NO_WINDOW = ("box", "hall")


class ProvisionError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class FleetDevice:
    id: str
    role: str
    window: int | None
    board: str
    generation: int = 0
    revoked: bool = False
    created: float = 0.0
    updated: float = 0.0

    @property
    def spec(self) -> DeviceSpec:
        return DeviceSpec(self.id, self.role, self.window, self.board)


# ---- derivation ----------------------------------------------------------------------------

def _mac(secret: bytes, label: str) -> bytes:
    return hmac.new(secret, label.encode(), hashlib.sha256).digest()


def device_password(secret: bytes, dev_id: str, generation: int) -> str:
    return base64.b32encode(_mac(secret, f"{dev_id}:{generation}")).decode()[:PASSWORD_CHARS]


def upload_token(secret: bytes, dev_id: str, generation: int) -> str:
    """A node's bearer token for the hub's HTTP uploads."""
    return _mac(secret, f"token:{dev_id}:{generation}").hex()[:40]


def hub_user(centre: str) -> str:
    return f"{HUB_PREFIX}-{centre}"


def hub_password(secret: bytes, centre: str) -> str:
    return device_password(secret, hub_user(centre), 0)


# ---- the store -----------------------------------------------------------------------------

class Fleet(db.Tables):
    """The fleet tables in the hub's database (a URL, or an engine shared with the journal)."""

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def secret(self, create: bool = False) -> bytes | None:
        """The centre's fleet secret; created (once, random) when `create`."""
        with self.engine.connect() as conn:
            row = conn.execute(select(secret_table.c.secret)
                               .where(secret_table.c.id == 1)).first()
        if row is not None:
            return bytes.fromhex(row.secret)
        if not create:
            return None
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(secret_table).values(
                    id=1, secret=secrets.token_bytes(SECRET_BYTES).hex(), created=time.time()))
        except IntegrityError:
            pass  # another process made it first: use theirs
        return self.secret()

    def get(self, dev_id: str) -> FleetDevice | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(devices).where(devices.c.id == dev_id)).first()
        return None if row is None else _device(row)

    def list(self) -> list[FleetDevice]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(devices).order_by(devices.c.id)).all()
        return [_device(r) for r in rows]

    def put(self, dev: FleetDevice, existed: bool) -> None:
        values = {"role": dev.role, "window": dev.window, "board": dev.board,
                  "generation": dev.generation, "revoked": dev.revoked, "updated": dev.updated}
        with self.engine.begin() as conn:
            if existed:
                conn.execute(update(devices).where(devices.c.id == dev.id).values(**values))
            else:
                conn.execute(insert(devices).values(id=dev.id, created=dev.created, **values))


def _device(row: Any) -> FleetDevice:
    return FleetDevice(row.id, row.role, row.window, row.board, int(row.generation),
                       bool(row.revoked), float(row.created), float(row.updated))


# ---- the centre's view: centre.toml's [[devices]] and the table together --------------------

@dataclass(frozen=True, slots=True)
class Account:
    """One broker account: a device (`spec`) or the hub (`spec` None)."""

    user: str
    password: str
    spec: DeviceSpec | None
    generation: int = 0


def active_specs(config: HubConfig, fleet: Fleet) -> list[DeviceSpec]:
    """Every device the centre knows: [[devices]] plus the table, minus the revoked (a row in
    the table wins over the TOML entry of the same id)."""
    rows = {d.id: d for d in fleet.list()}
    out = [d for d in config.devices if d.id not in rows]
    out += [d.spec for d in rows.values() if not d.revoked]
    return sorted(out, key=lambda s: s.id)


def lookup(config: HubConfig, fleet: Fleet, dev_id: str) -> DeviceSpec | None:
    """One device as `active_specs` would list it, read now."""
    row = fleet.get(dev_id)
    if row is not None:
        return None if row.revoked else row.spec
    return next((d for d in config.devices if d.id == dev_id), None)


def accounts(config: HubConfig, fleet: Fleet) -> list[Account]:
    """The hub and every active device, with their derived passwords (creates the secret)."""
    secret = fleet.secret(create=True)
    assert secret is not None
    centre = config.centre.centre_id
    gens = {d.id: d.generation for d in fleet.list()}
    out = [Account(hub_user(centre), hub_password(secret, centre), None)]
    for spec in active_specs(config, fleet):
        gen = gens.get(spec.id, 0)
        out.append(Account(spec.id, device_password(secret, spec.id, gen), spec, gen))
    return out


def upload_tokens(config: HubConfig, fleet: Fleet) -> dict[str, str]:
    """Derived bearer tokens (token -> device id) of the active nodes and kiosks."""
    secret = fleet.secret()
    if secret is None:
        return {}
    gens = {d.id: d.generation for d in fleet.list()}
    return {upload_token(secret, s.id, gens.get(s.id, 0)): s.id
            for s in active_specs(config, fleet) if s.role in ("node", "kiosk")}


# ---- provisioning --------------------------------------------------------------------------

def validate(config: HubConfig, dev_id: str, role: str, window: int | None, board: str) -> None:
    try:
        proto.device_topic(config.centre.centre_id, dev_id, EVT)
    except proto.ProtocolError as e:
        raise ProvisionError(f"device id {dev_id!r}: {e.msg}") from e
    if dev_id.startswith(HUB_PREFIX):
        raise ProvisionError(f"device ids starting {HUB_PREFIX!r} are the hub's")
    if role not in proto.ROLES:
        raise ProvisionError(f"unknown role {role!r}: one of {', '.join(proto.ROLES)}")
    if window is None and role in WINDOW_REQUIRED:
        raise ProvisionError(f"a {role} needs --window")
    if window is not None and role in NO_WINDOW:
        raise ProvisionError(f"a {role} has no window")
    numbers = sorted(w.number for w in config.centre.windows)
    if window is not None and window not in numbers:
        raise ProvisionError(f"window {window} is not configured (windows: "
                             f"{', '.join(map(str, numbers))})")
    if not board or len(board) > 64:
        raise ProvisionError("--board is required (e.g. esp32-devkitc, pico-w, rpi)")


def register(config: HubConfig, fleet: Fleet, dev_id: str, role: str, window: int | None,
             board: str, force: bool = False, now: float | None = None) -> FleetDevice:
    """Validate, then add or confirm the device's row. Nothing is written on an error."""
    validate(config, dev_id, role, window, board)
    now = time.time() if now is None else now
    toml = next((d for d in config.devices if d.id == dev_id), None)
    if toml is not None and (toml.role, toml.window) != (role, window):
        raise ProvisionError(
            f"{dev_id} is in centre.toml as {_describe(toml.role, toml.window)}: change or "
            f"remove its [[devices]] entry first")
    fleet.secret(create=True)
    old = fleet.get(dev_id)
    if old is None:
        dev = FleetDevice(dev_id, role, window, board, 0, False, now, now)
    elif old.revoked:  # a new device under an old name: new credentials, any role
        dev = FleetDevice(dev_id, role, window, board, old.generation + 1, False, old.created,
                          now)
    elif (old.role, old.window, old.board) == (role, window, board):
        return old  # idempotent: the same config again
    elif not force:
        raise ProvisionError(
            f"{dev_id} is registered as {_describe(old.role, old.window)} on {old.board}; "
            f"use --force to re-register it (its old credentials stop working)")
    else:
        dev = FleetDevice(dev_id, role, window, board, old.generation + 1, False, old.created,
                          now)
    fleet.put(dev, existed=old is not None)
    return dev


def _describe(role: str, window: int | None) -> str:
    return role + (f" at window {window}" if window is not None else "")


def device_config(config: HubConfig, fleet: Fleet, dev: FleetDevice, *,
                  broker_host: str | None = None, broker_port: int | None = None,
                  tls: bool = False) -> dict[str, Any]:
    """The `ow.json` a board boots with (a node's TOML is made from the same dict)."""
    secret = fleet.secret(create=True)
    assert secret is not None
    where = config.device_url or config.broker_url
    url = BrokerURL.parse(where) if where else None
    tls = tls or bool(url and url.tls)
    host = broker_host or (url.host if url else "127.0.0.1")
    if broker_port:
        port = broker_port
    elif url is not None:
        port = url.port if url.tls == tls else (8883 if tls else 1883)
    else:
        port = 8883 if tls else config.embedded_port
    broker: dict[str, Any] = {"host": host, "port": port, "user": dev.id,
                              "password": device_password(secret, dev.id, dev.generation)}
    if tls:
        broker["tls"] = True
        if config.broker_ca:
            with open(config.broker_ca, encoding="ascii") as f:
                broker["ca"] = f.read()
    cfg: dict[str, Any] = {"centre": config.centre.centre_id, "dev": dev.id, "role": dev.role,
                           "board": dev.board}
    if dev.window is not None:
        cfg["window"] = dev.window
    cfg["broker"] = broker
    if dev.role in ("node", "kiosk"):
        cfg["hub_token"] = upload_token(secret, dev.id, dev.generation)
    else:
        pubkey = _ota_pubkey(config)
        if pubkey:  # boards accept only updates signed with the centre's key
            cfg["ota_pubkey"] = pubkey
    return cfg


def _ota_pubkey(config: HubConfig) -> str | None:
    """The centre's OTA public key as a board's ow.json holds it, if the centre has one
    (`onewindow ota keygen`): the key file, or its .pub beside it."""
    from ..ota.bundle import public_key_for_config

    for path in (config.ota_key, config.ota_key and config.ota_key + ".pub"):
        if path and os.path.exists(path):
            return public_key_for_config(path)
    return None


def provision(config: HubConfig, dev_id: str, role: str, window: int | None, board: str, *,
              broker_host: str | None = None, broker_port: int | None = None,
              tls: bool = False, force: bool = False) -> dict[str, Any]:
    """Register (or confirm) a device and return its boot config; see the module docstring."""
    with Fleet(config.database_url) as fleet:
        dev = register(config, fleet, dev_id, role, window, board, force)
        out = device_config(config, fleet, dev, broker_host=broker_host,
                            broker_port=broker_port, tls=tls)
    return out


def provision_all(config: HubConfig, board: str = "-") -> dict[str, tuple[str, str]]:
    """Register every [[devices]] entry of centre.toml (a centre moving to accounts, the
    demo); returns id -> (broker user, password)."""
    out = {}
    for d in config.devices:
        b = provision(config, d.id, d.role, d.window, d.board or board)["broker"]
        out[d.id] = (b["user"], b["password"])
    return out


def revoke(config: HubConfig, dev_id: str) -> FleetDevice:
    """Lock a device out for good (its id may be provisioned again, with new credentials).
    Rows are never deleted: a deleted row would bring generation 0, and the first
    password, back to life."""
    with Fleet(config.database_url) as fleet:
        old = fleet.get(dev_id)
        now = time.time()
        if old is None:
            toml = next((d for d in config.devices if d.id == dev_id), None)
            if toml is None:
                raise ProvisionError(f"no device {dev_id!r} at this centre")
            dev = FleetDevice(dev_id, toml.role, toml.window, toml.board or "-", 1, True, now,
                              now)
        elif old.revoked:
            return old
        else:
            dev = FleetDevice(old.id, old.role, old.window, old.board, old.generation + 1, True,
                              old.created, now)
        fleet.put(dev, existed=old is not None)
    return dev


unprovision = revoke


def rotate(config: HubConfig, dev_id: str) -> FleetDevice:
    """New credentials for an active registered device."""
    with Fleet(config.database_url) as fleet:
        old = fleet.get(dev_id)
        if old is None or old.revoked:
            raise ProvisionError(f"{dev_id} is not an active registered device; provision it")
        dev = FleetDevice(old.id, old.role, old.window, old.board, old.generation + 1, False,
                          old.created, time.time())
        fleet.put(dev, existed=True)
    return dev


__all__ = ["Account", "Fleet", "FleetDevice", "ProvisionError", "accounts", "active_specs",
           "device_config", "device_password", "hub_password", "hub_user", "lookup",
           "provision", "provision_all", "revoke", "rotate", "unprovision", "upload_token",
           "upload_tokens"]
