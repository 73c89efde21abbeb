# OneWindow MQTT protocol v1: topic builders and message validation.
#
# This one file is imported by the CPython hub, nodes and tools and by the MicroPython
# firmware, so it uses only what both have: json, plain dicts and tuples, no typing, no
# dataclasses. protocol/README.md is its prose twin; vectors/*.json are shared test cases.
# Keep it small: on a board every name here costs RAM.
#
# Why one module of 436 lines: the message tables (EVENTS, COMMANDS, OTA, _COMMON, _RANGES) and
# the one validator that reads them (`validate`, `_check`, `_ok`) are the contract, kept true to
# protocol/README.md and vectors/*.json together; split, a field's spec and the code that
# enforces it would sit apart, and a board would load two modules where it loads one.

import json

VERSION = 1
MAX_PAYLOAD = 65536  # bytes; larger messages are refused unread
MAX_DEPTH = 8  # nested objects/arrays, counted on the raw bytes before parsing
# Bounds (protocol/README.md, 3): every int is 0 <= x < 2^53 unless _RANGES says tighter, so
# a JavaScript page reads it exactly; times are epoch seconds before 2100.
MAX_INT = 9007199254740992  # 2^53
MAX_TIME = 4102444800  # 2100-01-01T00:00Z
SHORT = 256  # characters of a string field
LONG = 4096  # characters of a base64 or message field (fits the boards' 4096-byte MQTT limit)
LIST = 32  # entries of a list of strings
ROOT = "ow"

# Device roles
ROLES = ("led", "hall", "box", "keypad", "node", "kiosk")
# Device life-cycle states (Homie): lost is only ever sent by the broker, as the last will.
STATES = ("booting", "ready", "disconnected", "lost")
HUB_STATES = ("ready", "disconnected", "lost")
PRIORITIES = ("normal", "priority", "appointment")
WINDOW_STATES = ("closed", "idle", "calling", "serving", "paused")

# Event types a device may send, with the fields each adds to the common ones.
# Field spec: (name, type, required). Types: s string (<= SHORT chars), S string (<= LONG),
# i int (_RANGES or 0..2^53), n number (finite, 0..2^53), t time (finite, 0..MAX_TIME),
# b bool, l list of <= LIST short strings, D list of <= 1024 objects, c hall calls (<= 8
# objects, _CALL), m bitmap object (_BMP), k offline blocks object (prefix -> [[first, last]]).
_WIN = (("window", "i", False),)
EVENTS = {
    "take": (("item", "s", True), ("priority", "s", False), ("resident", "s", False),
             ("items", "l", False), ("appointment_at", "t", False),
             ("number", "s", False), ("taken_at", "t", False), ("for_seq", "i", False)),
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
    "help": _WIN + (("department", "s", False),),
    "rate": _WIN + (("ticket", "s", True), ("score", "i", True), ("scale", "i", False)),
    "scan": _WIN + (("ticket", "s", True),),
    "card": _WIN + (("resident", "s", True),),
    "checkin": (("code", "s", False), ("resident", "s", False)),
    "pickup": (("code", "s", False), ("resident", "s", False)),
}

# Commands the hub sends to one device (never retained; applied at most once by `id`).
# print.escpos and block.head are base64 ESC/POS bytes; show/display bmp is
# {"w": int, "h": int, "b": base64 MONO_HLSB} (see protocol/README.md).
COMMANDS = {
    "print": (("ticket", "s", True), ("lines", "l", False), ("escpos", "S", False),
              ("qr", "s", False), ("seq", "i", False)),
    "show": (("window", "i", True), ("rev", "i", True), ("state", "s", True),
             ("ticket", "s", False), ("text", "s", False), ("bmp", "m", False)),
    "indicate": (("led", "s", True), ("text", "s", False)),
    "rebirth": (),
    "block": (("blocks", "k", True), ("ts", "t", False), ("head", "S", False)),
}

# What a `res` may carry besides seq, ok, type (protocol/README.md, 3.3), whatever its type.
RESULT = (("ticket", "s", False), ("ahead", "i", False), ("wait", "n", False),
          ("wait_lo", "n", False), ("wait_hi", "n", False), ("window", "i", False),
          ("state", "s", False), ("tickets", "D", False), ("cases", "D", False))

# Over-the-air updates (protocol/README.md, 3.10): the hub offers a signed bundle on
# dev/{dev}/ota, the device pulls it chunk by chunk on dev/{dev}/otareq.
OTA_STATES = ("trial", "ok", "rollback")
OTA = {  # hub -> device, kind "ota"
    "offer": (("version", "s", True), ("size", "i", True), ("sha256", "s", True),
              ("sig", "S", True), ("chunk", "i", True), ("roles", "l", False),
              ("boards", "l", False), ("downgrade", "b", False)),
    "chunk": (("i", "i", True), ("off", "i", True), ("data", "S", True)),
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
    "evt": (("dev", "s", True), ("seq", "i", True), ("type", "s", True), ("ts", "t", False)),
    "ack": (("dev", "s", True), ("id", "s", True), ("ok", "b", True), ("code", "s", False)),
    "cmd": (("id", "s", True), ("ttl", "n", True), ("type", "s", True)),
    "res": (("seq", "i", True), ("ok", "b", True), ("type", "s", True)),
    "err": (("code", "s", True), ("msg", "S", True), ("seq", "i", False), ("id", "s", False),
            ("last", "i", False)),
    "hub": (("state", "s", True), ("boot", "s", False), ("ts", "t", False)),
    "display": (("window", "i", True), ("rev", "i", True), ("state", "s", True),
                ("ticket", "s", False), ("text", "s", False), ("ts", "t", False),
                ("bmp", "m", False)),
    "hall": (("rev", "i", True), ("calls", "c", True)),
    "fleet": (("ts", "t", True), ("devices", "D", True), ("alerts", "D", True),
              ("online", "i", False), ("total", "i", False)),
}

_ENUMS = {
    ("status", "state"): STATES,
    ("status", "role"): ROLES,
    ("hub", "state"): HUB_STATES,
    ("display", "state"): WINDOW_STATES,
    ("evt", "priority"): PRIORITIES,
    ("status", "ota"): OTA_STATES,
    ("cmd", "state"): WINDOW_STATES,
    ("res", "state"): WINDOW_STATES,
}

# Tighter int bounds, by field name wherever it appears: [low, high).
_RANGES = {
    "window": (1, 10000), "to_window": (1, 10000), "score": (1, 6), "scale": (3, 6),
    "rssi": (-255, 256),
    "chunk": (1, 2049), "w": (1, 4097), "h": (1, 257),
    "wait": (-1, 100000), "wait_lo": (0, 100000), "wait_hi": (0, 100000),  # minutes; -1: none
}
_CALL = (("ticket", "s", True), ("window", "i", True), ("ts", "t", False))  # a hall entry
_BMP = (("w", "i", True), ("h", "i", True), ("b", "S", True))
_WHAT = {
    "s": "a string of at most 256 characters", "S": "a string of at most 4096 characters",
    "t": "a time, 0 <= x < 4102444800 (epoch s)",
    "b": "true or false", "l": "an array of at most 32 strings of at most 256 characters",
    "D": "an array of at most 1024 objects",
    "c": "an array of at most 8 {ticket, window, ts} objects",
    "m": "an object {w: 1-4096, h: 1-256, b: base64}",
    "k": "an object: prefix (1-8 chars) -> at most 64 [first, last] int pairs",
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

def _ok(name, typ, value):
    """Is `value` exactly of type `typ` and within its bounds? bool is not int, 1.0 is not 1;
    NaN and infinities fail every range."""
    t = type(value)
    if typ == "s" or typ == "S":
        return t is str and len(value) <= (SHORT if typ == "s" else LONG)
    if typ == "i":
        lo, hi = _RANGES.get(name, (0, MAX_INT))
        return t is int and lo <= value < hi
    if typ == "n":
        lo, hi = _RANGES.get(name, (0, MAX_INT))
        return (t is int or t is float) and lo <= value < hi
    if typ == "t":
        return (t is int or t is float) and 0 <= value < MAX_TIME
    if typ == "b":
        return t is bool
    if t is dict:
        if typ == "m":
            return _fits(value, _BMP)
        return typ == "k" and _blocks_ok(value)
    if t is not list and t is not tuple:
        return False
    if len(value) > (8 if typ == "c" else 1024 if typ == "D" else LIST):
        return False
    for x in value:
        if typ == "l":
            ok = type(x) is str and len(x) <= SHORT
        elif typ == "c":
            ok = type(x) is dict and _fits(x, _CALL)
        else:
            ok = typ == "D" and type(x) is dict
        if not ok:
            return False
    return True


def _fits(obj, specs):
    for name, typ, required in specs:
        if name in obj:
            if not _ok(name, typ, obj[name]):
                return False
        elif required:
            return False
    return True


def _blocks_ok(blocks):
    if len(blocks) > LIST:
        return False
    for prefix, ranges in blocks.items():
        if not 0 < len(prefix) <= 8 or type(ranges) is not list or len(ranges) > 64:
            return False
        for r in ranges:
            if (type(r) is not list or len(r) != 2 or not _ok("", "i", r[0])
                    or not _ok("", "i", r[1]) or r[0] > r[1]):
                return False
    return True


def _check(kind, msg, specs):
    for name, typ, required in specs:
        if name not in msg:
            if required:
                raise ProtocolError("missing_field", kind + ": field '" + name + "' is required")
            continue
        value = msg[name]
        if not _ok(name, typ, value):
            if typ == "i" or typ == "n":
                lo, hi = _RANGES.get(name, (0, MAX_INT))
                what = ("an integer, " if typ == "i" else "a finite number, ") + str(lo) + \
                    " <= x < " + ("2^53" if hi == MAX_INT else str(hi))
            else:
                what = _WHAT[typ]
            raise ProtocolError("bad_field", kind + ": field '" + name + "' must be " + what)
        allowed = _ENUMS.get((kind, name))
        if allowed is not None and value not in allowed:
            raise ProtocolError("bad_field", kind + ": " + name + " may not be " + str(value))


def _rate_ok(msg):
    # scale 5: the national five levels (5 very satisfied .. 1 very dissatisfied);
    # absent or 3: the three-level keys (1 good, 2 ok, 3 bad), mapped by the hub.
    scale = msg.get("scale", 3)
    return (scale == 3 or scale == 5) and msg["score"] <= scale


def validate(kind, msg):
    """Check a decoded message of `kind` (a key of the contract). Returns msg or raises."""
    if not isinstance(msg, dict):
        raise ProtocolError("malformed", kind + ": a message is a JSON object")
    v = msg.get("v")
    if type(v) is not int or v != VERSION:  # true and 1.0 equal 1 in Python: not here
        raise ProtocolError("version", "field 'v' must be the integer " + str(VERSION) +
                            ": this side speaks only v" + str(VERSION))
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
        _check(kind, msg, RESULT if kind == "res" else extra)
        if kind == "evt" and msg["seq"] < 1:
            raise ProtocolError("bad_field", "evt: seq starts at 1")
        if kind == "evt" and msg["type"] == "rate" and not _rate_ok(msg):
            raise ProtocolError("bad_field", "rate: score is 1-5 with scale 5, or 1-3 "
                                "(1 good, 2 ok, 3 bad) without scale or with scale 3")
    if (kind == "evt" or kind == "otareq") and "dev" in msg:
        _seg("dev", msg["dev"])
    return msg


def check_depth(payload):
    """Refuse JSON nested deeper than MAX_DEPTH, before any parser recurses into it: brackets
    outside strings are counted on the raw bytes (at once when there are few). Strings are
    skipped with find(), so a board's long base64 fields cost no loop."""
    if payload.count(b"[") + payload.count(b"{") <= MAX_DEPTH:
        return
    depth = 0
    i = 0
    n = len(payload)
    while i < n:
        c = payload[i]
        if c == 34:  # " opens a string: go to the quote that closes it
            while True:
                i = payload.find(b'"', i + 1)
                if i < 0:
                    return  # unterminated: the parser refuses it as malformed
                j = i - 1
                while payload[j] == 92:  # backslashes before it: an odd count escapes it
                    j -= 1
                if (i - j) % 2:
                    break
        elif c == 91 or c == 123:  # [ {
            depth += 1
            if depth > MAX_DEPTH:
                raise ProtocolError("too_deep", "JSON nested deeper than " + str(MAX_DEPTH))
        elif c == 93 or c == 125:
            depth -= 1
        i += 1


def _surrogate_escapes(payload):
    """Positions and halves (True: high D800-DBFF) of the \\uD800-\\uDFFF escapes, in order.
    A backslash preceded by an odd run of backslashes is itself escaped text, not an escape."""
    found = []
    for lead in (b"\\ud", b"\\uD"):
        i = payload.find(lead)
        while i >= 0:
            j = i - 1
            while j >= 0 and payload[j] == 92:
                j -= 1
            half = payload[i + 3:i + 4]
            if (i - 1 - j) % 2 == 0 and half and half in b"89abcdefABCDEF":
                found.append((i, half in b"89abAB"))
            i = payload.find(lead, i + 1)
    found.sort()
    return found


def _lone_surrogate(payload):
    """JSON's grammar lets a string hold half of a UTF-16 pair ("\\ud800"), which no UTF-8
    text can: CPython cannot encode it (journal, replies, pages) and MicroPython stores it
    as bytes no decoder takes. A pair (an emoji) is two adjacent escapes, high then low."""
    if payload.find(b"\\ud") < 0 and payload.find(b"\\uD") < 0:
        return False
    escapes = _surrogate_escapes(payload)
    k = 0
    while k < len(escapes):
        at, high = escapes[k]
        if not high or k + 1 == len(escapes):
            return True
        nxt, nxt_high = escapes[k + 1]
        if nxt_high or nxt != at + 6:
            return True
        k += 2
    return False


def _no_constant(name):
    raise ValueError(name + " is not JSON")


def parse(payload):
    """Wire bytes (or str) -> the parsed JSON value, within the size and depth bounds;
    ProtocolError otherwise. NaN and Infinity are not JSON (CPython's json would take them)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    elif type(payload) is not bytes:
        payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError("too_large", "payload of " + str(len(payload)) +
                            " bytes exceeds " + str(MAX_PAYLOAD))
    check_depth(payload)
    if _lone_surrogate(payload):
        raise ProtocolError("malformed", "a string holds half of a UTF-16 surrogate pair "
                            "(\\uD800-\\uDFFF not in a high-low pair): not text")
    try:
        text = payload.decode("utf-8")
        try:
            return json.loads(text, parse_constant=_no_constant)
        except TypeError:  # MicroPython: no keywords, and it refuses NaN by itself
            return json.loads(text)
    except (ValueError, UnicodeError):
        raise ProtocolError("malformed", "payload is not UTF-8 JSON")


def decode(kind, payload):
    """bytes or str from the wire -> a validated dict, or ProtocolError."""
    return validate(kind, parse(payload))


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
