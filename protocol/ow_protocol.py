# OneWindow MQTT protocol v1: topic builders and message validation.
#
# This one file is imported by the CPython hub, nodes and tools and by the MicroPython
# firmware, so it uses only what both have: json, plain dicts and tuples, no typing, no
# dataclasses. protocol/README.md is its prose twin; vectors/*.json are shared test cases.
# Keep it small: on a board every name here costs RAM.

import json

VERSION = 1
MAX_PAYLOAD = 65536  # bytes; larger messages are refused unread
ROOT = "ow"

# Device roles
ROLES = ("led", "hall", "box", "keypad", "node", "kiosk")
# Device life-cycle states (Homie): lost is only ever sent by the broker, as the last will.
STATES = ("booting", "ready", "disconnected", "lost")
HUB_STATES = ("ready", "disconnected", "lost")
PRIORITIES = ("normal", "priority", "appointment")
WINDOW_STATES = ("closed", "idle", "calling", "serving", "paused")

# Event types a device may send, with the fields each adds to the common ones.
# Field spec: (name, type, required). Types: s str, i int, n number, b bool, l list, d dict.
_WIN = (("window", "i", False),)
EVENTS = {
    "take": (("item", "s", True), ("priority", "s", False), ("resident", "s", False),
             ("items", "l", False), ("appointment_at", "n", False),
             ("number", "s", False), ("taken_at", "n", False), ("for_seq", "i", False)),
    "call": _WIN,
    "recall": _WIN,
    "skip": _WIN + (("requeue", "b", False),),
    "start": _WIN,
    "complete": _WIN,
    "pause": _WIN,
    "resume": _WIN,
    "open": _WIN + (("clerk", "s", False),),
    "close": _WIN,
    "transfer": _WIN + (("to_window", "i", False), ("to_item", "s", False), ("note", "s", False)),
    "reprint": (("ticket", "s", True),),
    "help": _WIN,
    "rate": _WIN + (("ticket", "s", True), ("score", "i", True)),
    "scan": _WIN + (("ticket", "s", True),),
    "card": _WIN + (("resident", "s", True),),
}

# Commands the hub sends to one device (never retained; applied at most once by `id`).
# print.escpos and block.head are base64 ESC/POS bytes; show/display bmp is
# {"w": int, "h": int, "b": base64 MONO_HLSB} (see protocol/README.md).
COMMANDS = {
    "print": (("ticket", "s", True), ("lines", "l", False), ("escpos", "s", False),
              ("qr", "s", False), ("seq", "i", False)),
    "show": (("window", "i", True), ("rev", "i", True), ("state", "s", True),
             ("ticket", "s", False), ("text", "s", False), ("bmp", "d", False)),
    "indicate": (("led", "s", True), ("text", "s", False)),
    "rebirth": (),
    "block": (("blocks", "d", True), ("ts", "n", False), ("head", "s", False)),
}

# Over-the-air updates (protocol/README.md, 3.10): the hub offers a signed bundle on
# dev/{dev}/ota, the device pulls it chunk by chunk on dev/{dev}/otareq.
OTA_STATES = ("trial", "ok", "rollback")
OTA = {  # hub -> device, kind "ota"
    "offer": (("version", "s", True), ("size", "i", True), ("sha256", "s", True),
              ("sig", "s", True), ("chunk", "i", True), ("roles", "l", False),
              ("boards", "l", False), ("downgrade", "b", False)),
    "chunk": (("i", "i", True), ("off", "i", True), ("data", "s", True)),
    "cancel": (),
}
OTAREQ = {  # device -> hub, kind "otareq"
    "get": (("i", "i", True),),
    "done": (("version", "s", True),),
    "refused": (("code", "s", True), ("msg", "s", False)),
}

_COMMON = {
    "status": (("dev", "s", True), ("state", "s", True), ("role", "s", False),
               ("fw", "s", False), ("board", "s", False), ("window", "i", False),
               ("seq", "i", False), ("alerts", "l", False), ("uptime", "i", False),
               ("rssi", "i", False), ("ota", "s", False)),
    "ota": (("id", "s", True), ("type", "s", True)),
    "otareq": (("dev", "s", True), ("id", "s", True), ("type", "s", True)),
    "evt": (("dev", "s", True), ("seq", "i", True), ("type", "s", True), ("ts", "n", False)),
    "ack": (("dev", "s", True), ("id", "s", True), ("ok", "b", True), ("code", "s", False)),
    "cmd": (("id", "s", True), ("ttl", "n", True), ("type", "s", True)),
    "res": (("seq", "i", True), ("ok", "b", True), ("type", "s", True)),
    "err": (("code", "s", True), ("msg", "s", True), ("seq", "i", False), ("id", "s", False),
            ("last", "i", False)),
    "hub": (("state", "s", True), ("boot", "s", False), ("ts", "n", False)),
    "display": (("window", "i", True), ("rev", "i", True), ("state", "s", True),
                ("ticket", "s", False), ("text", "s", False), ("ts", "n", False),
                ("bmp", "d", False)),
    "hall": (("rev", "i", True), ("calls", "l", True)),
    "fleet": (("ts", "n", True), ("devices", "l", True), ("alerts", "l", True),
              ("online", "i", False), ("total", "i", False)),
}

_ENUMS = {
    ("status", "state"): STATES,
    ("status", "role"): ROLES,
    ("hub", "state"): HUB_STATES,
    ("display", "state"): WINDOW_STATES,
    ("evt", "priority"): PRIORITIES,
    ("status", "ota"): OTA_STATES,
}


class ProtocolError(Exception):
    """A message that breaks the contract. `code` is stable; `msg` says what to fix."""

    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code
        self.msg = msg


# ---- topics -------------------------------------------------------------------------

def _seg(name, value):
    value = str(value)
    if not value or len(value) > 32:
        raise ProtocolError("bad_id", name + " must be 1-32 characters")
    for ch in value:
        if not ("a" <= ch <= "z" or "0" <= ch <= "9" or ch == "-" or ch == "_"):
            raise ProtocolError("bad_id", name + " may use only a-z 0-9 - _: " + value)
    return value


def centre_root(centre):
    return ROOT + "/" + _seg("centre", centre)


def device_topic(centre, dev, leaf):
    """leaf: status | evt | ack | otareq (device -> hub), cmd | res | err | ota (hub ->
    device)."""
    return centre_root(centre) + "/dev/" + _seg("device", dev) + "/" + leaf


def hub_topic(centre):
    return centre_root(centre) + "/hub/status"


def display_topic(centre, window):
    return centre_root(centre) + "/win/" + str(int(window)) + "/display"


def hall_topic(centre):
    return centre_root(centre) + "/hall/calls"


def fleet_topic(centre):
    """The hub's retained device fleet summary, for staff tools (onewindow devices)."""
    return centre_root(centre) + "/hub/fleet"


def parse_topic(topic):
    """'ow/c1/dev/box-1/evt' -> ('c1', 'dev', 'box-1', 'evt'),
    'ow/c1/hub/status' -> ('c1', 'hub', None, 'status'); None if not ours."""
    parts = topic.split("/")
    if parts[0] != ROOT:
        return None
    if len(parts) == 5:
        return parts[1], parts[2], parts[3], parts[4]
    if len(parts) == 4:
        return parts[1], parts[2], None, parts[3]
    return None


# ---- messages -----------------------------------------------------------------------

def _check(kind, msg, specs):
    for name, typ, required in specs:
        if name not in msg:
            if required:
                raise ProtocolError("missing_field", kind + ": field '" + name + "' is required")
            continue
        value = msg[name]
        if typ == "s":
            ok = isinstance(value, str)
        elif typ == "i":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif typ == "n":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif typ == "b":
            ok = isinstance(value, bool)
        elif typ == "l":
            ok = isinstance(value, list)
        else:
            ok = isinstance(value, dict)
        if not ok:
            raise ProtocolError("bad_field", kind + ": field '" + name + "' has the wrong type")
        allowed = _ENUMS.get((kind, name))
        if allowed is not None and value not in allowed:
            raise ProtocolError("bad_field", kind + ": " + name + " may not be " + str(value))


def validate(kind, msg):
    """Check a decoded message of `kind` (a key of the contract). Returns msg or raises."""
    if not isinstance(msg, dict):
        raise ProtocolError("malformed", kind + ": a message is a JSON object")
    v = msg.get("v")
    if v != VERSION:
        raise ProtocolError("version", "protocol version " + str(v) + " is not supported; "
                            "this side speaks v" + str(VERSION))
    specs = _COMMON.get(kind)
    if specs is None:
        raise ProtocolError("unknown_kind", "no message kind " + str(kind))
    _check(kind, msg, specs)
    if kind == "ota" or kind == "otareq":
        extra = (OTA if kind == "ota" else OTAREQ).get(msg["type"])
        if extra is None:
            raise ProtocolError("unknown_type", kind + ": unknown type '" + msg["type"] + "'")
        _check(kind, msg, extra)
    if kind == "evt" or kind == "cmd" or kind == "res":
        table = COMMANDS if kind == "cmd" else EVENTS
        extra = table.get(msg["type"])
        if extra is None:
            raise ProtocolError("unknown_type", kind + ": unknown type '" + msg["type"] + "'")
        if kind != "res":
            _check(kind, msg, extra)
        if kind == "evt" and msg["seq"] < 1:
            raise ProtocolError("bad_field", "evt: seq starts at 1")
    if (kind == "evt" or kind == "otareq") and "dev" in msg:
        _seg("dev", msg["dev"])
    return msg


def decode(kind, payload):
    """bytes or str from the wire -> a validated dict, or ProtocolError."""
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError("too_large", "payload of " + str(len(payload)) +
                            " bytes exceeds " + str(MAX_PAYLOAD))
    try:
        if isinstance(payload, (bytes, bytearray)):
            payload = payload.decode("utf-8")
        msg = json.loads(payload)
    except (ValueError, UnicodeError):
        raise ProtocolError("malformed", kind + ": payload is not UTF-8 JSON")
    return validate(kind, msg)


def encode(kind, msg):
    """A dict -> UTF-8 JSON bytes, validated first so a bad message never leaves."""
    msg["v"] = VERSION
    validate(kind, msg)
    return json.dumps(msg).encode("utf-8")


# ---- builders used on both sides ------------------------------------------------------

def event(dev, seq, typ, **fields):
    fields["dev"] = dev
    fields["seq"] = seq
    fields["type"] = typ
    return fields


def command(cmd_id, typ, ttl, **fields):
    fields["id"] = cmd_id
    fields["type"] = typ
    fields["ttl"] = ttl
    return fields


def error(code, msg, **fields):
    fields["code"] = code
    fields["msg"] = msg
    return fields


def version_key(v):
    """A firmware version's order: its dotted numbers (0.10 is after 0.9); what follows them
    ("-rc1", "-ota") does not order versions. CPython and MicroPython alike."""
    nums = []
    for part in v.split("."):
        digits = ""
        for ch in part:
            if not "0" <= ch <= "9":
                break
            digits += ch
        nums.append(int(digits) if digits else 0)
        if len(digits) < len(part):
            break
    while nums and nums[-1] == 0:
        nums.pop()  # 1.0 == 1
    return nums


def newer(a, b):
    """Is version `a` later than version `b`? (OTA refuses to go back unless told to.)"""
    return version_key(a) > version_key(b)


def mask_name(name):
    """张三明 -> 张*明, 张三 -> 张*: what public screens may show of a name."""
    if not name:
        return ""
    if len(name) <= 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
