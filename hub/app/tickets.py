"""The print command for a ticket issued at a button box or kiosk: the ticket as the
printer's ESC/POS bytes (hub/render/escpos.py), plus its lines and QR link for devices that
render it themselves, within what a board's MQTT client can take.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from ...protocol import ow_protocol as proto
from ...protocol.ow_device import CMD
from ..core import signing
from ..core.effects import TicketIssued
from ..core.model import Priority
from ..devices import Publish
from ..forecast.wait import Estimate
from ..render.escpos import (
    LATE_EN,
    LATE_ZH,
    LATE_ZH_TW,
    PRIORITY_EN,
    PRIORITY_ZH,
    render_ticket,
)
from ..render.escpos import words as slip_words
from ..store.journal import Record
from .admission import late as admission_late
from .outbound import dev_topic
from .state import AppState

log = logging.getLogger("onewindow.hub")

PRINT_TTL = 30.0  # s: a ticket printed later than this would confuse the queue
BOARD_MAX_PAYLOAD = 4096  # bytes: the largest MQTT message the boards' client accepts


def slip_chinese(app: AppState) -> str:
    """The centre's [centre] slip_chinese ("zh_CN" | "zh_TW", hub/config.py), set on the
    app by hub/runner.py build_app from centre.toml."""
    return app.slip_chinese


def print_cmd(app: AppState, dev: str, ticket_id: str, e: TicketIssued, est: Estimate,
              rec: Record, k: int) -> Publish:
    """Print ticket `ticket_id` on device `dev`; `k`: the record's k-th command (its id)."""
    t = app.centre.tickets[ticket_id]
    item = app.centre.catalog.items[t.item]
    when = app.centre.local_time(rec.ts).strftime("%Y-%m-%d %H:%M")
    name = app.centre.catalog.name
    minutes = est.minutes()
    if minutes is None:
        wait = "暂无开放窗口，请咨询工作人员 / no window open for this yet: ask staff"
    else:
        point, lo, hi = minutes
        wait = (f"预计等候约{point}分钟（{lo}–{hi}分钟） / "
                f"about {point} min ({lo}-{hi})")
    priority = t.priority is Priority.PRIORITY
    chinese = slip_chinese(app)
    centre_zh, item_zh = name.zh, item.name.zh
    if chinese == "zh_TW":  # the catalog's Traditional names and fixed lines (escpos.WORDS)
        tw = slip_words(chinese)
        centre_zh, item_zh = name.traditional, item.name.traditional
        wait = (f"{tw['no_window']} / no window open for this yet: ask staff"
                if minutes is None else
                f"{tw['wait_range'].format(n=minutes[0], lo=minutes[1], hi=minutes[2])} / "
                f"about {minutes[0]} min ({minutes[1]}-{minutes[2]})")
    ahead_zh = slip_words(chinese)["ahead"].format(n=e.ahead)
    lines = [centre_zh, t.number, item_zh, item.name.en,
             f"{ahead_zh} / {e.ahead} ahead", wait, when]
    if priority:  # last, so the other lines keep their places for devices that read them
        zh = PRIORITY_ZH if chinese == "zh_CN" else slip_words(chinese)["priority"]
        lines.append(f"{zh} / {PRIORITY_EN}")
    # the other items the ticket covers (多问一句), after every line devices may read by
    # place: "+ 事项 / Item"
    extras = [app.centre.catalog.items[x] for x in t.extra_items
              if x in app.centre.catalog.items]
    extra_zh = [x.name.traditional if chinese == "zh_TW" else x.name.zh for x in extras]
    late = admission_late(rec)  # the verdict kept in the take's record
    if late:
        lines.append(f"{LATE_ZH_TW} / {LATE_EN}" if chinese == "zh_TW"
                     else f"{LATE_ZH} / {LATE_ZH_TW} / {LATE_EN}")
    lines += [f"+ {zh} / {x.name.en}" for zh, x in zip(extra_zh, extras, strict=True)]
    # the phone page's link with the ticket's token (core/signing.py): rating needs it
    qr = signing.ticket_link(app.status_url, app.booking_key, app.centre_id, t.id)
    escpos = render_ticket({
        "centre_zh": centre_zh, "centre_en": name.en, "number": t.number,
        "item_zh": item_zh, "item_en": item.name.en, "ahead": e.ahead, "chinese": chinese,
        "wait_min": None if minutes is None else minutes[0],
        "wait_range": None if minutes is None else minutes[1:],
        "issued_at": when, "qr": qr, "priority": priority, "late": late,
        "extra_items": [{"zh": zh, "en": x.name.en} for zh, x in zip(extra_zh, extras,
                                                                       strict=True)]})
    cmd: dict[str, Any] = {
        "id": f"{rec.pos}.{k}", "ttl": PRINT_TTL, "type": "print", "ticket": t.number,
        "lines": lines, "qr": qr, "escpos": base64.b64encode(escpos).decode("ascii")}
    if rec.dev == dev and rec.seq is not None:
        # The event it answers: a device that printed an offline ticket for that event
        # meanwhile refuses this one (one press, one ticket).
        cmd["seq"] = rec.seq
    # escpos over the contract's bound (proto.LONG) could not reach a board either
    too_long = len(cmd["escpos"]) > proto.LONG
    payload = b"" if too_long else proto.encode(CMD, cmd)
    if too_long or len(payload) > BOARD_MAX_PAYLOAD:  # a catalog text far longer than any
        log.warning("print %s: over the boards' limit of %d bytes; sent without escpos",
                    t.number, BOARD_MAX_PAYLOAD)
        del cmd["escpos"]
        payload = proto.encode(CMD, cmd)
    return Publish(dev_topic(app, dev, CMD), payload)
