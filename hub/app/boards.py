"""What the boards show: a window's display (its LED board, its Pi node) and the hall board's
list of calls, as retained MQTT messages. `rev` is the journal position of the last change,
so a restarted hub republishes identical messages and a board ignores older ones.
"""

from __future__ import annotations

import logging
from typing import Any

from ...protocol import ow_protocol as proto
from ..core.model import WindowState
from ..devices import Publish
from ..render.bitmap import FontNotFoundError, text_bitmap_b64
from .state import AppState

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
    calls = [{"ticket": x.ticket, "window": x.window, "ts": x.at} for x in app.calls]
    return Publish(proto.hall_topic(app.centre_id),
                   proto.encode("hall", {"rev": app.hall_rev, "calls": calls}), retain=True)
