"""Messages to devices that are not the rendering of an effect: the answer to an event
(`res`, `err`), a button box's offline blocks, a device's whole state on its birth, the
hub's own retained status and, on every (re)connect, all retained state and the rebirth
requests (Sparkplug): the hub, not the broker, is the source of truth.
"""

from __future__ import annotations

import base64
from typing import Any

from ...protocol import ow_protocol as proto
from ...protocol.ow_device import CMD, ERR, HUB, RES
from ..devices import Device, Publish
from ..render.escpos import render_offline_head
from .boards import display_msg, display_publish, hall_publish
from .state import AppState

SHOW_TTL = 60.0
ERR_FIELDS = ("seq", "id", "last", "ticket")  # the fields an `err` may carry


def dev_topic(app: AppState, dev: str, leaf: str) -> str:
    return proto.device_topic(app.centre_id, dev, leaf)


def res(app: AppState, dev: str | None, seq: int | None, typ: str, **fields: Any) -> Publish:
    """The answer to event `seq` of device `dev`: done (`ok`), with what it did."""
    msg = {"seq": seq, "ok": True, "type": typ, **fields}
    return Publish(dev_topic(app, dev or "", RES), proto.encode(RES, msg))


def err(app: AppState, dev: str, code: str, msg: str, **fields: Any) -> Publish:
    """A refusal or failure, with the fields of ERR_FIELDS given (None ones left out)."""
    body = {"code": code, "msg": msg,
            **{k: v for k, v in fields.items() if v is not None and k in ERR_FIELDS}}
    return Publish(dev_topic(app, dev, ERR), proto.encode(ERR, body))


def block_cmd(app: AppState, dev: str, cmd_id: str, now: float) -> Publish:
    """A button box's offline number blocks. `ts`: the hub's clock, for boxes without an
    RTC to stamp offline `taken_at`; `head`: the ESC/POS top of an offline ticket (the box
    adds number, time, cut)."""
    name = app.centre.catalog.name
    traditional = app.slip_chinese == "zh_TW"
    head = base64.b64encode(render_offline_head(name.traditional if traditional else name.zh,
                                                name.en, app.slip_chinese)).decode("ascii")
    cmd = {"id": cmd_id, "ttl": SHOW_TTL, "type": "block",
           "blocks": app.centre.offline_blocks(dev), "ts": now, "head": head}
    return Publish(dev_topic(app, dev, CMD), proto.encode(CMD, cmd))


def device_state(app: AppState, dev: Device, now: float) -> list[Publish]:
    """Everything a device must show, as absolute state: sent on birth, gap and restart."""
    out: list[Publish] = []
    if dev.spec.window is not None and dev.spec.window in app.centre.windows:
        app.resync_n += 1
        show = display_msg(app, dev.spec.window)
        show.update(id=f"{app.boot}.s{app.resync_n}", ttl=SHOW_TTL, type="show")
        out.append(Publish(dev_topic(app, dev.spec.id, CMD), proto.encode(CMD, show)))
    if dev.spec.role == "hall":
        out.append(hall_publish(app))
    return out


def retained_state(app: AppState, now: float) -> list[Publish]:
    """All retained topics, republished whenever the hub (re)connects to a broker: a
    broker that lost its retained store must not leave any board wrong."""
    out = [display_publish(app, n) for n in sorted(app.centre.windows)]
    out.append(hall_publish(app))
    out.append(birth(app, now))
    return out


def rebirth_requests(app: AppState) -> list[Publish]:
    """Sparkplug's rebirth: on every hub (re)start ask each device to publish its birth
    again, so each gets its full state from the hub that now holds the truth."""
    app.resync_n += 1
    out = []
    for dev in app.registry.devices:
        cmd = {"id": f"{app.boot}.r{app.resync_n}", "ttl": SHOW_TTL, "type": "rebirth"}
        out.append(Publish(dev_topic(app, dev, CMD), proto.encode(CMD, cmd)))
    return out


def birth(app: AppState, now: float, state: str = "ready") -> Publish:
    msg = {"state": state, "boot": app.boot, "ts": now}
    return Publish(proto.hub_topic(app.centre_id), proto.encode(HUB, msg), retain=True)


def will(app: AppState) -> Publish:
    return Publish(proto.hub_topic(app.centre_id), proto.encode(HUB, {"state": "lost"}),
                   retain=True)


def to_device(p: Publish, dev: str) -> bool:
    return f"/dev/{dev}/" in p.topic


def is_res(p: Publish) -> bool:
    return p.topic.endswith("/" + RES)
