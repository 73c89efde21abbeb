"""The node's configuration: one TOML file, `onewindow node --config node.toml`.

```toml
[node]
id = "node-3"            # the device id registered at the hub ([[devices]] role = "node")
centre = "demo"
role = "node"            # "node": at a window; "kiosk": self-service card tap -> ticket
window = 3
clerk = "S1024"          # staff number of the clerk at this window (ratings go to them)
state_dir = "/var/lib/onewindow-node"
secret_file = "/etc/onewindow/centre.key"   # HMAC key: card numbers never leave the node

[broker]
host = "192.168.10.2"
port = 1883
user = "node-3"
password = "..."
# tls = true             # port 8883; `ca` (PEM) or ca_file: the centre's CA certificate
# ca_file = "/etc/onewindow/ca.crt"

[hub]
url = "http://192.168.10.2:8080"   # uploads of document-camera pages
token = "..."                      # this node's bearer token at the hub

[keys]                   # BCM GPIO numbers of the buttons (to ground, internal pull-ups)
call = 5
recall = 6
skip = 13
transfer = 19
pause = 26
help = 21
capture = 20
rate_good = 16           # three rating keys, counted on the national five-level scale:
rate_fair = 12           #   good -> 5 非常满意, fair -> 3 基本满意, poor -> 1 非常不满意;
rate_poor = 7            # or five keys instead, one per level (not both layouts):
# rate_5 = 16            # 非常满意
# rate_4 = 12            # 满意
# rate_3 = 7             # 基本满意
# rate_2 = 8             # 不满意
# rate_1 = 25            # 非常不满意

[leds]
ok = 23
err = 24
buzzer = 18

[scanner]
device = "/dev/input/by-id/usb-barcode-scanner-event-kbd"

[camera]
kind = "v4l2"            # "picamera2" | "v4l2"
device = 0

[kiosk]
item = "SOC-001"         # what a card tap at a kiosk takes a ticket for
priority_age = 60        # a resident ID card of someone this old or older takes a priority
                         # (爱心优先) ticket; 0: no priority by age. The birth date is read on
                         # the node and only the class "priority" is sent (node/card.py).
[printer]
kind = "file"            # "file" (a /dev/usb/lp0 style device) | "serial"
path = "/dev/usb/lp0"
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROLES = ("node", "kiosk")
MAX_PRIORITY_AGE = 120
KEYS = ("call", "recall", "skip", "transfer", "pause", "help", "capture",
        "rate_good", "rate_fair", "rate_poor", "rate_5", "rate_4", "rate_3", "rate_2", "rate_1")
THREE_RATING_KEYS = ("rate_good", "rate_fair", "rate_poor")
FIVE_RATING_KEYS = ("rate_5", "rate_4", "rate_3", "rate_2", "rate_1")


class NodeConfigError(ValueError):
    pass


@dataclass(frozen=True)
class NodeConfig:
    id: str
    centre: str
    role: str = "node"
    window: int | None = None
    state_dir: Path = Path(".")
    secret: bytes = b""
    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    broker_user: str | None = None
    broker_password: str | None = None
    broker_tls: bool = False
    broker_ca: str | None = None  # PEM text of the CA that signed the broker's certificate
    hub_url: str | None = None
    hub_token: str | None = None
    keys: dict[str, int] = field(default_factory=dict)
    leds: dict[str, int] = field(default_factory=dict)
    scanner: str | None = None
    camera: dict[str, Any] = field(default_factory=dict)
    kiosk_item: str | None = None
    priority_age: int = 60  # 0: a card never takes a priority ticket by age
    printer: dict[str, Any] = field(default_factory=dict)
    transfer_to: int | None = None
    clerk: str | None = None


def load(path: str | Path) -> NodeConfig:
    path = Path(path)
    with path.open("rb") as f:
        data = tomllib.load(f)
    return from_dict(data, path.parent)


def from_dict(data: dict[str, Any], base: Path = Path(".")) -> NodeConfig:
    node = data.get("node", {})
    for key in ("id", "centre"):
        if not node.get(key):
            raise NodeConfigError(f"[node] {key} is required")
    role = node.get("role", "node")
    if role not in ROLES:
        raise NodeConfigError(f"[node] role must be one of {', '.join(ROLES)}, not {role!r}")
    if role == "node" and not isinstance(node.get("window"), int):
        raise NodeConfigError("[node] window (a number) is required for a window node")
    keys = data.get("keys", {})
    unknown = set(keys) - set(KEYS)
    if unknown:
        raise NodeConfigError(f"[keys] unknown keys: {', '.join(sorted(unknown))}")
    if set(keys) & set(THREE_RATING_KEYS) and set(keys) & set(FIVE_RATING_KEYS):
        raise NodeConfigError("[keys] rating keys: either the three (rate_good, rate_fair, "
                              "rate_poor) or the five (rate_5 .. rate_1), not both")
    secret = node.get("secret", "").encode()
    if node.get("secret_file"):
        secret = (base / node["secret_file"]).read_bytes().strip()
    if len(secret) < 16:
        raise NodeConfigError("[node] secret_file (or secret) must hold at least 16 bytes: "
                              "it keys the hash that stands for a resident's card")
    broker, hub = data.get("broker", {}), data.get("hub", {})
    ca = broker.get("ca")
    if broker.get("ca_file"):
        ca = (base / broker["ca_file"]).read_text(encoding="ascii")
    kiosk = data.get("kiosk", {})
    if role == "kiosk" and not kiosk.get("item"):
        raise NodeConfigError("[kiosk] item is required for a kiosk")
    priority_age = kiosk.get("priority_age", 60)
    if isinstance(priority_age, bool) or not isinstance(priority_age, int) \
            or not 0 <= priority_age <= MAX_PRIORITY_AGE:
        raise NodeConfigError(f"[kiosk] priority_age must be a whole number of years from 0 "
                              f"(no priority by age) to {MAX_PRIORITY_AGE}, not {priority_age!r}")
    return NodeConfig(
        id=node["id"], centre=node["centre"], role=role, window=node.get("window"),
        state_dir=base / node.get("state_dir", "."), secret=secret,
        broker_host=broker.get("host", "127.0.0.1"),
        broker_port=broker.get("port", 8883 if broker.get("tls") else 1883),
        broker_user=broker.get("user"), broker_password=broker.get("password"),
        broker_tls=bool(broker.get("tls", False)), broker_ca=ca,
        hub_url=hub.get("url"), hub_token=hub.get("token"), keys=dict(keys),
        leds=dict(data.get("leds", {})), scanner=data.get("scanner", {}).get("device"),
        camera=dict(data.get("camera", {})), kiosk_item=kiosk.get("item"),
        priority_age=priority_age,
        printer=dict(data.get("printer", {})), transfer_to=node.get("transfer_to"),
        clerk=node.get("clerk"))
