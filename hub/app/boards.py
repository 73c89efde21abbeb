"""What the boards show: a window's display (its LED board, its Pi node) and the hall board's
list of calls, as retained MQTT messages. `rev` is the journal position of the last change,
so a restarted hub republishes identical messages and a board ignores older ones.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

from ...protocol import ow_protocol as proto
from ..core.model import WindowState
from ..devices import Publish
from ..render.bitmap import FontNotFoundError, text_bitmap_b64
from .state import AppState, Call

log = logging.getLogger("onewindow.hub")

BMP_HEIGHT = 16  # rows of the Chinese bitmap in `display`/`show`


def display_msg(app: AppState, number: int) -> dict[str, Any]:
    """Window `number`'s display: its state, the ticket it calls or serves, and the text in
    Chinese (also as a bitmap) and English."""
    w = app.centre.windows[number]
    msg: dict[str, Any] = {"window": number, "rev": app.window_rev.get(number, 0),
                           "state": w.state.value}
    t = app.centre.tickets.get(w.ticket) if w.ticket else None
    if t is not None:
        msg["ticket"] = t.number
        msg["text"] = f"请{t.number}号到{number}号窗口 / {t.number} to window {number}"
    elif w.state is WindowState.PAUSED:
        msg["text"] = "暂停服务 / Paused"
    elif w.state is WindowState.CLOSED:
        msg["text"] = "暂停受理 / Closed"
    if "text" in msg:
        bmp = bitmap(app, msg["text"].split(" / ")[0])
        if bmp is not None:
            msg["bmp"] = bmp
    return msg


def bitmap(app: AppState, zh: str) -> dict[str, Any] | None:
    """The Chinese half of a display text as a MONO_HLSB bitmap for the boards, which
    carry no CJK font. Cached by text: displays are republished far more often than
    they change. None (and a warning, once) when the hub has no CJK font."""
    try:
        w, h, b = text_bitmap_b64(zh, BMP_HEIGHT)
    except FontNotFoundError as e:
        if not app.font_warned:
            log.warning("displays go out without bitmaps: %s", e)
            app.font_warned = True
        return None
    return {"w": w, "h": h, "b": b}


def display_publish(app: AppState, number: int) -> Publish:
    return Publish(proto.display_topic(app.centre_id, number),
                   proto.encode("display", display_msg(app, number)), retain=True)


def hall_publish(app: AppState) -> Publish:
    """The hall board's list, byte for byte what proto.encode makes of it, with each call's
    entry checked against the contract and encoded once (`_call_json`), not on every
    change: every call's step builds this (the runner then sends at most ten a second,
    hub/mqtt/coalesce.py), and checking and encoding the whole list each time cost 25 us
    of every call, now 12 (eight calls listed, one new; issue 14)."""
    rev, calls = app.hall_rev, app.calls
    if len(calls) <= _HALL_MAX and type(rev) is int and 0 <= rev < proto.MAX_INT:
        body = ", ".join([_call_json(x) for x in calls])
        payload = f'{{"rev": {rev}, "calls": [{body}], "v": {proto.VERSION}}}'.encode()
    else:  # outside the contract: proto.encode says how
        payload = proto.encode("hall", {"rev": rev, "calls": [_entry(x) for x in calls]})
    return Publish(proto.hall_topic(app.centre_id), payload, retain=True)


_HALL_MAX = 8  # entries a hall message may list (the contract's "c" type)


def _entry(call: Call) -> dict[str, Any]:
    return {"ticket": call.ticket, "window": call.window, "ts": call.at}


@functools.lru_cache(maxsize=4 * _HALL_MAX)
def _call_json(call: Call) -> str:
    """One entry of the hall's list, checked as the contract checks it, as JSON."""
    entry = _entry(call)
    proto.validate("hall", {"v": proto.VERSION, "rev": 0, "calls": [entry]})
    return json.dumps(entry)
