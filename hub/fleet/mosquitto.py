"""Mosquitto's password file, ACL file and a config snippet, written from the fleet.

The password file uses Mosquitto 2's own `$7$` format (PBKDF2-SHA512, 12-byte salt, 64-byte
hash, base64), computed here with hashlib so the hub machine needs no `mosquitto_passwd`
(Mosquitto usually runs elsewhere, and calling a tool per device is slow and brittle).
The salt is derived from the fleet secret, so rerunning `broker-config` writes identical
files when nothing changed. 101 iterations is `mosquitto_passwd`'s own default; the
passwords are 160 random bits, so stretching them adds nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from ..config import HubConfig
from .acl import Grant, device_grant, hub_grant, mosquitto_acl
from .registry import Fleet, accounts

ITERATIONS = 101
LOOPBACK = "127.0.0.1"
SALT_BYTES = 12


def password_hash(password: str, salt: bytes, iterations: int = ITERATIONS) -> str:
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return (f"$7${iterations}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    passwd: str
    acl: str
    conf: str
    users: int


@dataclass(frozen=True, slots=True)
class Listeners:
    """Mosquitto's listeners. Devices connect to `port` (and `tls_port`), where the client
    id is replaced by the username, so no device can take another's session. The hub's
    account runs several clients (the hub, an OTA rollout, `onewindow devices`), each with
    its own client id: they use `hub_port`, loopback only by default, where ids are kept."""

    port: int = 1883
    bind: str | None = None  # None: every address
    tls_port: int | None = None
    cert_dir: Path | None = None  # ca.crt, server.crt, server.key (default: the out dir)
    hub_port: int | None = 1884
    hub_bind: str = "127.0.0.1"


def build(config: HubConfig, fleet: Fleet, out_dir: Path,
          listeners: Listeners = Listeners()) -> BrokerFiles:
    """The three files' contents. `out_dir` is where they will live (the conf names them)."""
    secret = fleet.secret(create=True)
    assert secret is not None
    centre = config.centre.centre_id
    lines, grants = [], []
    for acc in accounts(config, fleet):
        salt = hmac.new(secret, f"salt:{acc.user}:{acc.generation}".encode(),
                        hashlib.sha256).digest()[:SALT_BYTES]
        lines.append(f"{acc.user}:{password_hash(acc.password, salt)}")
        grants.append(hub_grant(centre, acc.user) if acc.spec is None
                      else device_grant(centre, acc.spec))
    return BrokerFiles("\n".join(lines) + "\n", mosquitto_acl(grants),
                       conf_snippet(out_dir, listeners), len(lines))


def conf_snippet(out_dir: Path, listeners: Listeners = Listeners()) -> str:
    d, li = out_dir.resolve(), listeners
    at = f" {li.bind}" if li.bind else ""
    text = [
        "# OneWindow broker settings, written by `onewindow broker-config`.",
        "# Include it from /etc/mosquitto/mosquitto.conf:  include_dir /etc/mosquitto/conf.d",
        "# (or copy it there). Reload after each broker-config: kill -HUP <mosquitto pid>.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {d / 'passwd'}",
        f"acl_file {d / 'acl'}",
        "set_tcp_nodelay true",
        "max_inflight_messages 1000",
        "",
        "# Devices. Plain MQTT: keep it on the centre's own LAN (or drop it once every",
        "# device speaks TLS). A device gets its username as client id, whatever it sent.",
        f"listener {li.port}{at}",
        "use_username_as_clientid true",
    ]
    if li.tls_port is not None:
        c = (li.cert_dir or d).resolve()
        text += [
            "",
            "# Devices over TLS (docs/security.md makes the CA and the server certificate).",
            f"listener {li.tls_port}{at}",
            "use_username_as_clientid true",
            f"cafile {c / 'ca.crt'}",
            f"certfile {c / 'server.crt'}",
            f"keyfile {c / 'server.key'}",
            "tls_version tlsv1.2",
        ]
    if li.hub_port is not None:
        text += [
            "",
            "# The hub and the staff tools on this machine ([broker] url =",
            f"# \"mqtt://127.0.0.1:{li.hub_port}\"): same accounts and ACL, client ids kept.",
            f"listener {li.hub_port} {li.hub_bind}",
        ]
    return "\n".join(text) + "\n"


def private_conf(out_dir: Path, port: int, hub_port: int, accounts: bool) -> str:
    """The configuration of the hub's own Mosquitto (no `[broker] url`,
    hub/mqtt/private_mosquitto.py): both listeners on 127.0.0.1 only, persistence in
    `out_dir`, logging to stderr (the hub reads it) and to mosquitto.log there. With
    `accounts`, the same files and listeners as `broker-config` writes; without,
    anonymous (a centre with no fleet secret yet)."""
    d = out_dir.resolve()
    head = [
        "# OneWindow's embedded broker, written by the hub at each start: do not edit",
        "# (set [broker] url to run a Mosquitto of your own).",
        # A hub run as root: Mosquitto would drop to user `mosquitto`, which may not enter
        # the hub's data directory. It runs as the hub's own user instead.
        "user root" if os.geteuid() == 0 else "",
        "persistence true",
        f"persistence_location {d}/",
        "autosave_interval 30",
        "log_dest stderr",
        f"log_dest file {d / 'mosquitto.log'}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
        "log_timestamp false",
    ]
    if accounts:
        snippet = conf_snippet(d, Listeners(port=port, bind=LOOPBACK, hub_port=hub_port,
                                            hub_bind=LOOPBACK))
        body = [line for line in snippet.splitlines() if not line.startswith("#")]
    else:
        body = ["per_listener_settings false", "allow_anonymous true",
                "set_tcp_nodelay true", "max_inflight_messages 1000",
                f"listener {port} {LOOPBACK}", f"listener {hub_port} {LOOPBACK}"]
    return "\n".join(line for line in head if line) + "\n" + "\n".join(body) + "\n"


def write_atomic(path: Path, text: str, mode: int = 0o600, gid: int | None = None) -> bool:
    """Replace `path` with `text` in one rename (Mosquitto never reads half a file).
    Returns whether the content changed."""
    try:
        if path.read_text(encoding="utf-8") == text:
            _own(path, mode, gid)
            return False
    except OSError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    _own(tmp, mode, gid)
    os.replace(tmp, path)
    return True


def _own(path: Path, mode: int, gid: int | None) -> None:
    if gid is not None:
        os.chown(path, -1, gid)
    os.chmod(path, mode)


def _broker_group() -> int | None:
    """Run as root, Mosquitto drops to the `mosquitto` user before reading its files: the
    password file then goes to group mosquitto, 0640. Otherwise it stays the caller's, 0600."""
    if os.geteuid() != 0:
        return None
    import grp

    try:
        return grp.getgrnam("mosquitto").gr_gid
    except KeyError:
        return None


def write(config: HubConfig, out_dir: Path, listeners: Listeners = Listeners()
          ) -> tuple[BrokerFiles, list[str]]:
    """Write passwd, acl and mosquitto.conf into `out_dir`; the names of those changed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with Fleet(config.database_url) as fleet:
        files = build(config, fleet, out_dir, listeners)
    gid = _broker_group()
    changed = [name for name, text, mode, g in (
        ("passwd", files.passwd, 0o600 if gid is None else 0o640, gid),
        ("acl", files.acl, 0o644, None), ("mosquitto.conf", files.conf, 0o644, None))
        if write_atomic(out_dir / name, text, mode, g)]
    return files, changed


def reload(pid: int) -> None:
    """Mosquitto rereads password_file and acl_file on SIGHUP."""
    os.kill(pid, signal.SIGHUP)


def read_pid(pidfile: Path) -> int:
    return int(pidfile.read_text().strip())


__all__ = ["BrokerFiles", "Grant", "Listeners", "build", "conf_snippet", "password_hash",
           "private_conf", "read_pid", "reload", "write", "write_atomic"]
