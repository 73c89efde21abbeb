"""Render a queue ticket to raw ESC/POS bytes for the button boxes' thermal printers.

python-escpos (its ``Dummy`` printer, which only collects bytes) does the layout:
alignment, character size, the native QR code and the cut. Chinese text never goes
through its text encoder: that one guesses a code page per character and would turn
CJK into ``?`` or into a Japanese/Korean page. Instead every Chinese line is written
as its own block::

    FS &  <GB18030 bytes>  FS .  LF

``FS &`` (0x1C 0x26) puts the Chinese printers (the GB18030/GBK firmwares sold in
China) into Chinese character mode, ``FS .`` (0x1C 0x2E) leaves it before any Latin
text. Latin lines are plain ASCII (accents are folded away), so the printer's
default code page prints them whatever it is.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Any

from escpos.printer import Dummy

FS_CHINESE_ON = b"\x1c\x26"  # FS &: select Chinese character mode
FS_CHINESE_OFF = b"\x1c\x2e"  # FS .: cancel Chinese character mode
LF = b"\n"

QR_SIZE = 6  # module size in dots: about 25 mm for a short URL on a 58/80 mm printer
MAX_TICKET_BYTES = 4096  # a ticket is ~0.5 KB; anything near this is a bug


def _zh(p: Dummy, text: str) -> None:
    """One line of Chinese, GB18030-encoded by us, bracketed by FS & / FS .."""
    text = " ".join(text.split())  # no stray LF/control bytes inside the block
    p._raw(FS_CHINESE_ON + text.encode("gb18030") + FS_CHINESE_OFF + LF)


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", " ".join(str(text).split()))
    return folded.encode("ascii", "ignore").decode("ascii")


def _en(p: Dummy, text: str) -> None:
    """One line of Latin text, ASCII only so no code-page guessing can happen."""
    p.text(_ascii(text) + "\n")


def wait_lines(wait_min: int | None, wait_range: tuple[int, int] | None = None
               ) -> tuple[str, str]:
    """The (Chinese, English) wait estimate lines: the point estimate and, when known, the
    80% interval, so a resident can judge whether to step out."""
    if wait_min is None:
        return "暂无开放窗口，请咨询工作人员", "No window open yet: ask staff"
    if wait_range is None:
        return f"预计等候约{int(wait_min)}分钟", f"About {int(wait_min)} min"
    lo, hi = (int(x) for x in wait_range)
    return (f"预计等候约{int(wait_min)}分钟（{lo}-{hi}分钟）",
            f"About {int(wait_min)} min ({lo}-{hi})")


def render_ticket(ticket: dict[str, Any]) -> bytes:
    """ESC/POS bytes for one printed ticket (see the module docstring for the layout).

    ``ticket`` keys: centre_zh, centre_en, number, item_zh, item_en, ahead, wait_min
    (int, or None when no window is open), optional wait_range ((low, high) minutes, the
    80% interval), issued_at, qr (URL).
    """
    p = Dummy()
    p.hw("INIT")  # ESC @: forget whatever the previous job left selected

    p.set(align="center", bold=True)
    _zh(p, ticket["centre_zh"])
    p.set_with_default(align="center")
    if ticket.get("centre_en"):
        _en(p, ticket["centre_en"])
    p.text("\n")

    p.set(align="center", bold=True, custom_size=True, width=4, height=4)
    _en(p, ticket["number"])
    p.set_with_default(align="center")
    p.text("\n")

    p.set(align="center", bold=True, double_height=True)
    _zh(p, ticket["item_zh"])
    p.set_with_default(align="center")
    if ticket.get("item_en"):
        _en(p, ticket["item_en"])
    p.text("\n")

    ahead = int(ticket["ahead"])
    _zh(p, f"前面还有{ahead}人")
    _en(p, f"{ahead} ahead")
    zh, en = wait_lines(ticket.get("wait_min"), ticket.get("wait_range"))
    _zh(p, zh)
    _en(p, en)
    _en(p, ticket["issued_at"])
    p.text("\n")

    if ticket.get("qr"):
        p.qr(str(ticket["qr"]), native=True, size=QR_SIZE)
        p.text("\n")

    _zh(p, "请留意叫号")
    _en(p, "Please wait to be called")
    p.cut()

    data = bytes(p.output)
    if len(data) > MAX_TICKET_BYTES:  # pragma: no cover - guards against layout bugs
        raise ValueError(f"ticket renders to {len(data)} bytes (limit {MAX_TICKET_BYTES})")
    return data


OFFLINE_ZH = "离线取号 请留意叫号"
OFFLINE_EN = "Offline ticket: watch the board"


@functools.lru_cache(maxsize=8)
def render_offline_head(centre_zh: str, centre_en: str = "") -> bytes:
    """ESC/POS bytes for the top of a ticket a button box prints while the hub is away.

    Init, the centre's Chinese name (bold, one GB18030 block), its English name, then
    离线取号 请留意叫号 / "Offline ticket: watch the board". It leaves the printer centred
    at normal size; the box appends the big number, the time and the cut itself.
    """
    p = Dummy()
    p.hw("INIT")
    p.set(align="center", bold=True)
    _zh(p, centre_zh)
    p.set_with_default(align="center")
    if centre_en:
        _en(p, centre_en)
    p.text("\n")
    _zh(p, OFFLINE_ZH)
    _en(p, OFFLINE_EN)
    return bytes(p.output)


MAX_TIPS_BYTES = 2600  # base64 in a `print` command must stay under the boards' 4 KB


def render_tips(tips: dict[str, Any]) -> bytes:
    """ESC/POS bytes for a kiosk's pre-review tips slip (办事提醒): what to bring next time.

    ``tips`` keys: centre_zh, centre_en, items: [{zh, en, missing: [{zh, en}, ...]}, ...],
    qr (URL of the tips page, optional). Plain words, large type: each missing material is
    a double-size Chinese line with a box to tick. Too long a slip loses its English lines
    first, then trailing materials (the QR page always has the whole list).
    """
    for english, cap in ((True, 99), (False, 99), (False, 6), (False, 3)):
        data = _tips(tips, english, cap)
        if len(data) <= MAX_TIPS_BYTES:
            return data
    return data


def _tips(tips: dict[str, Any], english: bool, cap: int) -> bytes:
    p = Dummy()
    p.hw("INIT")
    p.set(align="center", bold=True)
    _zh(p, tips["centre_zh"])
    p.set_with_default(align="center")
    if english and tips.get("centre_en"):
        _en(p, tips["centre_en"])
    p.text("\n")
    p.set(align="center", bold=True, double_height=True, double_width=True)
    _zh(p, "办事提醒")
    p.set_with_default(align="center")
    if english:
        _en(p, "What to bring")
    _zh(p, "下列材料请带齐后再来办理")
    p.text("\n")
    for item in tips["items"]:
        p.set(align="left", bold=True)
        _zh(p, f"【{item['zh']}】")
        p.set_with_default(align="left")
        if english and item.get("en"):
            _en(p, item["en"])
        missing = list(item.get("missing", ()))
        for m in missing[:cap]:
            p.set(align="left", double_height=True, double_width=True)
            _zh(p, f"□{m['zh']}")
            p.set_with_default(align="left")
            if english and m.get("en"):
                _en(p, f"  {m['en']}")
        if len(missing) > cap:
            _zh(p, f"……另有{len(missing) - cap}项，请扫码查看")
        p.text("\n")
    if tips.get("qr"):
        p.set_with_default(align="center")
        p.qr(str(tips["qr"]), native=True, size=QR_SIZE)
        _zh(p, "扫码查看完整清单")
        if english:
            _en(p, "Scan for the full list")
    p.set_with_default(align="center")
    _zh(p, "材料齐全，一次办成")
    p.cut()
    return bytes(p.output)
