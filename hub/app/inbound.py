"""A message from a device, up to the core: its topic and payload decoded and checked
against the contract (protocol/ow_protocol.py), the device known (hub/devices.py), then by
leaf: a status (birth, will) updates the registry and answers a birth with the device's
whole state; an ack notes a refused command; an event goes through the seq rules (once,
a repeat gets the same reply, an older one an error, a jump a resync) and, as the command
it asks for (device_commands.py), becomes a journal record applied to the core
(records.py).

Failures here are answered and counted; anything unexpected goes up to the one boundary,
`HubApp.handle` (facade.py).
"""

from __future__ import annotations

import logging
from typing import Any

from ...protocol import ow_protocol as proto
from ...protocol.ow_device import ACK, CMD, EVT, STATUS
from ..core import commands as c
from ..core.rejected import Rejected
from ..devices import Device, Publish
from ..store.journal import Record
from . import admission
from .device_commands import to_command
from .outbound import block_cmd, dev_topic, device_state, err, to_device
from .records import apply_record, operate
from .state import AppState, Step, merged

log = logging.getLogger("onewindow.hub")

OFFLINE_BLOCK = 10  # numbers per prefix a button box may issue while the hub is away
DEVICE_LEAVES = (EVT, STATUS, ACK)  # what devices send the hub; the rest is the hub's own


def handle_message(app: AppState, topic: str, payload: bytes, now: float,
                   retained: bool) -> Step:
    parsed = proto.parse_topic(topic)
    if parsed is None or parsed[0] != app.centre_id or parsed[1] != "dev":
        log.warning("ignored message on foreign topic %s", topic)
        return Step()
    dev_id, leaf = parsed[2] or "", parsed[3]
    if leaf not in DEVICE_LEAVES:
        return Step()  # our own cmd/res/err echoes
    if leaf == STATUS and not payload:
        return Step()  # a technician clearing a retained birth (mosquitto_pub -r -n)
    try:
        msg = proto.decode(leaf, payload)
    except proto.ProtocolError as e:
        app.fleet.note_failure(dev_id, "protocol")
        return error(app, dev_id, e.code, e.msg, topic=topic, seq=seq_of(payload))
    if msg.get("dev") != dev_id:
        return error(app, dev_id, "dev_mismatch",
                     f"message names device {msg.get('dev')!r} on {dev_id!r}'s topic",
                     seq=msg.get("seq"))
    birth = leaf == STATUS and not retained and msg["state"] in ("booting", "ready")
    dev = app.registry.resolve(dev_id, now, birth)
    if dev is None:
        return error(app, dev_id, "unknown_device",
                     f"device {dev_id!r} is not registered at this hub (or was "
                     f"revoked); provision it", seq=msg.get("seq"))
    if leaf == STATUS:
        return _status(app, dev, msg, now, retained)
    if leaf == ACK:
        dev.last_seen = now  # the device answered: it is there (the fleet's "last seen")
        _ack(app, dev_id, msg, now)
        return Step()
    dev.last_seen = now  # an event: every press counts as seen, not only births
    return _event(app, dev, msg, now)


def _ack(app: AppState, dev_id: str, msg: dict[str, Any], now: float) -> None:
    if not msg["ok"] and msg.get("code") == "served_offline":
        # A late print for a press the box served offline: its offline ticket voids
        # this one when it arrives. Nothing for staff to reprint, so no alert.
        log.info("device %s refused print %s: press served offline", dev_id, msg["id"])
    elif not msg["ok"]:
        # The ticket stays journaled and valid; staff reprint it once the printer
        # is fixed. Kept for the console's alert list.
        log.warning("device %s refused command %s: %s", dev_id, msg["id"],
                    msg.get("code", "?"))
        app.refused.append({"dev": dev_id, "id": msg["id"], "code": msg.get("code"),
                            "at": now})


def _event(app: AppState, dev: Device, msg: dict[str, Any], now: float) -> Step:
    seq = msg["seq"]
    verdict = dev.sequence(seq)
    if verdict == "repeat":
        log.info("device %s repeated seq %d: same reply again", dev.spec.id, seq)
        return Step(publishes=list(dev.last_reply))
    if verdict == "replayed":
        return error(app, dev.spec.id, "replayed",
                     f"seq {seq} was already processed; last was {dev.last_seq}",
                     seq=seq, last=dev.last_seq)
    try:
        body = to_command(app, dev, msg)
    except Rejected as e:
        return _reject(app, dev, seq, e)
    rec = Record(app.pos + 1, now, dev.spec.id, seq, body)
    app.mutating = True  # from here a failure may leave the state half-changed
    try:
        publishes = apply_record(app, rec)
    except Rejected as e:
        if e.code != "day_full":
            return _reject(app, dev, seq, e)
        # a box has no screen: the refusal is printed too, with a QR to book another time
        slip = admission.full_slip(app, dev.spec.id, str(body.get("item")), seq, e.message,
                                   now)
        return _reject(app, dev, seq, e, [slip] if slip is not None else [])
    step = Step([rec], publishes)
    if body.get("op") == "take" and body.get("number"):
        app.pos = rec.pos
        step = merged(step, _top_up(app, dev.spec.id, now))
        publishes = step.publishes
    if verdict == "gap":
        log.info("device %s skipped from seq %d to %d: resync", dev.spec.id,
                 dev.last_seq, seq)
        publishes += device_state(app, dev, now)
    app.pos = max(app.pos, rec.pos)
    dev.last_seq = seq
    dev.last_reply = [p for p in publishes if to_device(p, dev.spec.id)]
    return Step(step.records, publishes)


def _reject(app: AppState, dev: Device, seq: int, e: Rejected,
            also: list[Publish] | None = None) -> Step:
    step = error(app, dev.spec.id, e.code, e.message, seq=seq, **e.detail)
    if also:
        step = Step(publishes=[*step.publishes, *also])
    dev.last_seq = seq
    dev.last_reply = list(step.publishes)
    return step


def _status(app: AppState, dev: Device, msg: dict[str, Any], now: float,
            retained: bool) -> Step:
    before, alerts = dev.state, dev.alerts
    dev.note_status(msg, now, retained)
    if retained:
        # An old birth kept by the broker: its seq is from then. The rebirth request
        # sent on connect brings a fresh one, and that one is answered.
        return Step()
    if msg["state"] == "lost":
        log.warning("device %s lost (was %s)", dev.spec.id, before)
    if dev.alerts != alerts and dev.alerts:
        log.warning("device %s alerts: %s", dev.spec.id, ", ".join(dev.alerts))
    if "seq" in msg and msg["seq"] < dev.last_seq:
        # A device that forgot its sequence (reflashed) learns where to continue.
        behind = err(app, dev.spec.id, "seq_behind", f"continue numbering after {dev.last_seq}",
                     last=dev.last_seq)
        return Step(publishes=[behind, *device_state(app, dev, now)])
    if msg["state"] == "ready":
        step = Step(publishes=device_state(app, dev, now))
        app.mutating = True  # a box's blocks are reserved in the core
        if dev.spec.role == "box":
            step = merged(step, _top_up(app, dev.spec.id, now, always=True))
        return step
    return Step()


def _top_up(app: AppState, dev: str, now: float, always: bool = False) -> Step:
    """Keep a button box's offline blocks full: on its birth and after it used some."""
    prefixes = tuple(sorted({line.prefix for line in app.centre.catalog.lines.values()}))
    step = operate(app, c.ReserveBlock(dev, prefixes, OFFLINE_BLOCK), now)
    if always and not any(p.topic == dev_topic(app, dev, CMD) for p in step.publishes):
        # Nothing new reserved: restate the blocks anyway (a rebooted box needs them, and
        # the hub's clock in `ts`).
        app.resync_n += 1
        step.publishes.append(block_cmd(app, dev, f"{app.boot}.b{app.resync_n}", now))
    return step


def error(app: AppState, dev: str, code: str, msg: str, topic: str | None = None,
          **fields: Any) -> Step:
    """Log once (with the topic when it says more than the device), count, answer."""
    if topic is None:
        log.warning("device %s: %s: %s", dev or "?", code, msg)
    else:
        log.warning("device %s on %s: %s: %s", dev or "?", topic, code, msg)
    device = app.registry.get(dev)
    if device is not None:
        device.errors += 1
    try:
        return Step(publishes=[err(app, dev, code, msg, **fields)])
    except proto.ProtocolError:
        return Step()  # the topic's device id is itself unusable: log only


def seq_of(payload: bytes) -> int | None:
    """The seq of a message we refuse, when it can be read at all and is within the
    contract's bounds: so the device knows which of its events the error answers."""
    try:
        seq = proto.parse(payload).get("seq")
    except (proto.ProtocolError, AttributeError, TypeError):
        return None
    return seq if type(seq) is int and 0 <= seq < proto.MAX_INT else None
