"""Who may publish and read what on the broker: one implementation of the rules, used to
write Mosquitto's ACL file and by the embedded broker's topic plugin (`amqtt_plugins.py`).

A device writes only its own device→hub topics and reads only its own hub→device topics,
the hub's status and, by role, its window's display (led, keypad, node, kiosk with a
window) or the hall list (hall). The hub's account reads and writes its centre's tree.
Nothing else: no wildcards for devices, no other centre, no `$SYS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...protocol import ow_protocol as proto
from ...protocol.ow_device import ACK, CMD, ERR, EVT, OTA, OTAREQ, RES, STATUS
from ..devices import DeviceSpec

DEVICE_WRITES = (STATUS, EVT, ACK, OTAREQ)  # device -> hub leaves
DEVICE_READS = (CMD, RES, ERR, OTA)  # hub -> device leaves


@dataclass(frozen=True, slots=True)
class Grant:
    """What one broker account may do: topic filters it may write and read."""

    user: str
    write: tuple[str, ...]
    read: tuple[str, ...]

    def may_publish(self, topic: str) -> bool:
        return any(matches(f, topic) for f in self.write)

    def may_receive(self, topic: str) -> bool:
        return any(matches(f, topic) for f in self.read)

    def may_subscribe(self, topic_filter: str) -> bool:
        """A subscription must lie inside one read filter (a device may not subscribe to
        `ow/c/dev/+/cmd` and hope delivery is filtered)."""
        return any(covers(f, topic_filter) for f in self.read)


def device_grant(centre: str, spec: DeviceSpec) -> Grant:
    own = [proto.device_topic(centre, spec.id, leaf) for leaf in DEVICE_READS]
    own.append(proto.hub_topic(centre))
    if spec.window is not None and spec.role != "hall":
        own.append(proto.display_topic(centre, spec.window))
    if spec.role == "hall":
        own.append(proto.hall_topic(centre))
    return Grant(spec.id, tuple(proto.device_topic(centre, spec.id, leaf)
                                for leaf in DEVICE_WRITES), tuple(own))


def hub_grant(centre: str, user: str) -> Grant:
    tree = proto.centre_root(centre) + "/#"
    return Grant(user, (tree,), (tree,))


def matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic matching: does `topic` fall under `topic_filter` (with + and #)?"""
    f, t = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(f):
        if part == "#":
            return True
        if i >= len(t) or (part != "+" and part != t[i]):
            return False
    return len(f) == len(t)


def covers(granted: str, wanted: str) -> bool:
    """Is every topic the filter `wanted` can match also matched by `granted`?"""
    g, w = granted.split("/"), wanted.split("/")
    for i, part in enumerate(g):
        if part == "#":
            return True
        if i >= len(w):
            return False
        if part == "+":
            if w[i] == "#":
                return False
            continue
        if part != w[i]:
            return False
    return len(g) == len(w)


def mosquitto_acl(grants: list[Grant]) -> str:
    """Mosquitto's acl_file: one `user` block per account, exact topics for devices."""
    lines = ["# Written by `onewindow broker-config`: do not edit, rerun it.",
             "# Devices: their own topics only. The hub: its centre's tree.", ""]
    for g in grants:
        lines.append(f"user {g.user}")
        both = [t for t in g.write if t in g.read]
        lines += [f"topic readwrite {t}" for t in both]
        lines += [f"topic write {t}" for t in g.write if t not in both]
        lines += [f"topic read {t}" for t in g.read if t not in both]
        lines.append("")
    return "\n".join(lines)
