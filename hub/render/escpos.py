"""Render a queue ticket to raw ESC/POS bytes for the button boxes' thermal printers.

The bytes follow the Epson ESC/POS command reference, so they print the same on Epson
printers and on the Epson-compatible printers sold in China (whose firmwares are often
more lenient, which is why a lenient-only layout can look right on one and wrong on the
other). The rules this module relies on, with the command reference's sections:

* Two character modes with separate sizes. ANK (ASCII) characters are sized by ``ESC !``
  (bits 4/5: double height/width) and ``GS !``; Kanji (Chinese) characters by ``FS !``
  (bits 2/3: double width/height) and ``GS !``; per mode the last command received wins.
  ``ESC !`` never changes Chinese, ``FS !`` never changes ASCII. So every enlarged line
  sets all three (``ESC !``, ``FS !``, then ``GS !``) and every enlarged line is followed
  by ``ESC ! 0``, ``FS ! 0`` and ``GS ! 0``: normal size in both modes. (Resetting with
  ``ESC ! 0`` alone left Chinese at 4x4 after the big number on Epson printers.)
* ``FS &`` enters Kanji (Chinese) mode, ``FS .`` leaves it. A line containing Chinese is
  one block ``FS & [FS ! n] <GBK bytes> FS . LF``; ASCII inside the block prints as ANK.
* GBK, not GB18030: most Chinese thermal printers run a GBK firmware. A character outside
  GBK (a four-byte GB18030 character such as 𠀋, or 䶮 which only GB18030-2005 gives a
  two-byte code) would print as boxes and stray digits. The catalog refuses such text at
  load (hub/core/catalog.py); text that still reaches this module is printed with ？ in
  its place and logged (hub/core/printable.py decides what is printable).
* Latin lines are plain ASCII (accents folded away, anything else ``?`` and logged), so
  the printer's default code page prints them whatever it is.
* ``ESC @`` first: nothing the previous job selected survives. ``ESC a`` is set before a
  line's first character (it only takes effect at the beginning of a line).
* Widths (font A): ASCII 12 dots, Chinese 24, times the size, on 384 dots (58 mm paper)
  or 576 (80 mm). A printer wraps a line that does not fit wherever it runs out of dots,
  mid-word; so the hub breaks every line itself to fit 58 mm (the narrower paper), between
  words and never inside an ASCII word or number. ``ESC a`` centres each piece.
* QR: ``GS ( k`` model 2, module size, error correction L, store, print. Cut: ``GS V 0``.

``hub/render/escpos_interp.py`` executes these rules (and refuses anything else), and
``escpos_image.py`` draws its result; hub/tests/test_render.py checks the geometry.
"""

from __future__ import annotations

import functools
import logging
import unicodedata
from typing import Any

from ..core.printable import ASCII_SUBSTITUTE, describe, substitute, unprintable

log = logging.getLogger("onewindow.hub.render")

INIT = b"\x1b@"  # ESC @
FS_CHINESE_ON = b"\x1c\x26"  # FS &: select Kanji (Chinese) character mode
FS_CHINESE_OFF = b"\x1c\x2e"  # FS .: cancel Kanji character mode
LF = b"\n"
CUT = b"\x1bd\x06\x1dV\x00"  # ESC d 6 (feed past the cutter), GS V 0 (full cut)
LEFT, CENTRE = 0, 1

PAPER_DOTS = 384  # 58 mm paper at 203 dpi; 80 mm printers (576 dots) get shorter lines
ANK_DOTS, KANJI_DOTS = 12, 24  # font A cell widths
QR_SIZE = 6  # module size in dots: about 25 mm for a short URL on a 58/80 mm printer
MAX_TICKET_BYTES = 4096  # a ticket is ~0.5 KB; anything near this is a bug


def size_commands(width: int, height: int) -> bytes:
    """Character size ``width`` x ``height`` (1-8) for BOTH modes: ESC ! (ASCII) and
    FS ! (Chinese) carry what they can express (1 or 2), GS ! last sets both exactly."""
    esc = (0x20 if width > 1 else 0) | (0x10 if height > 1 else 0)
    fs = (0x04 if width > 1 else 0) | (0x08 if height > 1 else 0)
    gs = (width - 1) << 4 | (height - 1)
    return bytes((0x1B, 0x21, esc, 0x1C, 0x21, fs, 0x1D, 0x21, gs))


NORMAL_SIZE = size_commands(1, 1)  # ESC ! 0, FS ! 0, GS ! 0: both modes back to 1x


def _gbk_text(text: str) -> tuple[str, str | None]:
    """``text`` printable in GBK (an unprintable character becomes ？), and the warning
    to log when something was replaced."""
    bad = unprintable(text)
    if not bad:
        return text, None
    return substitute(text), (f"ticket text {text!r}: "
                              f"{', '.join(describe(ch) for ch in bad)} not in GBK, printed as ？")


def substitute_logged(text: str) -> str:
    """``text`` printable in GBK: an unprintable character becomes ？ and is logged."""
    text, warning = _gbk_text(text)
    if warning:
        log.warning("%s", warning)
    return text


def _ascii_text(text: str) -> tuple[str, str | None]:
    """Latin text as printable ASCII (accents folded away, anything else ``?``), and the
    warning to log when something was replaced."""
    folded = unicodedata.normalize("NFKD", " ".join(str(text).split()))
    out, bad = [], []
    for ch in folded:
        if " " <= ch <= "~":
            out.append(ch)
        elif unicodedata.combining(ch):
            continue
        else:
            out.append(ASCII_SUBSTITUTE)
            bad.append(describe(ch))
    if not bad:
        return "".join(out), None
    return "".join(out), f"ticket text {text!r}: {', '.join(bad)} not ASCII, printed as ?"


def _ascii(text: str) -> str:
    """Latin text as printable ASCII: accents folded away, anything else ``?`` (logged)."""
    text, warning = _ascii_text(text)
    if warning:
        log.warning("%s", warning)
    return text


def _tokens(text: str) -> list[str]:
    """Breakable units: a run of ASCII non-space characters (a word, a number), a space,
    or one non-ASCII character (a line of Chinese may break after any ideograph)."""
    out: list[str] = []
    for ch in text:
        if " " < ch <= "~" and out and " " < out[-1][-1] <= "~":
            out[-1] += ch
        else:
            out.append(ch)
    return out


def fit(text: str, width: int, dots: int = PAPER_DOTS) -> list[str]:
    """``text`` broken into lines no wider than ``dots`` at ``width`` magnification:
    between words or ideographs, a space at a break dropped, an over-long word cut."""
    def w(s: str) -> int:
        return sum(ANK_DOTS if ch <= "~" else KANJI_DOTS for ch in s) * width

    if w(text) <= dots:  # nearly every line: one measure, no breaking
        return [text.rstrip()]
    lines, cur, cur_w = [], "", 0
    for tok in _tokens(text):
        tok_w = w(tok)
        if cur_w + tok_w <= dots:
            cur, cur_w = cur + tok, cur_w + tok_w
            continue
        if cur.strip():
            lines.append(cur.rstrip())
        cur = "" if tok == " " else tok
        while w(cur) > dots:  # a word longer than the line: cut it
            n = len(cur)
            while n > 1 and w(cur[:n]) > dots:
                n -= 1
            lines.append(cur[:n])
            cur = cur[n:]
        cur_w = w(cur)
    if cur.strip() or not lines:
        lines.append(cur.rstrip())
    return lines


@functools.lru_cache(maxsize=4096)
def _line_bytes(text: str, align: int, bold: bool, size: tuple[int, int],
                chinese: bool) -> tuple[bytes, str | None]:
    """One line's bytes (Slip.line), and the warning its text gives. Cached: most of a
    ticket's lines (the centre, the item, the fixed words) repeat from ticket to ticket,
    and measuring, breaking and GBK-checking them was a third of a take's cost in the hub
    (bench_hub's durable path)."""
    text = " ".join(text.split())  # no stray LF/control bytes inside the line
    text, warning = _gbk_text(text) if chinese else _ascii_text(text)
    out = bytearray(b"\x1ba" + bytes((align,)))
    sized = size != (1, 1)
    if sized:
        out += size_commands(*size)
    if bold:
        out += b"\x1bE\x01"  # after ESC !, whose bit 3 would otherwise win
    for piece in fit(text, size[0]):
        if chinese:
            out += FS_CHINESE_ON + piece.encode("gbk") + FS_CHINESE_OFF + LF
        else:
            out += piece.encode("ascii") + LF
    if sized:
        out += NORMAL_SIZE
    if bold:
        out += b"\x1bE\x00"
    return bytes(out), warning


class Slip:
    """ESC/POS for one slip, a line at a time; each line sets and resets its own modes."""

    def __init__(self) -> None:
        self.out = bytearray(INIT)

    def line(self, text: str, *, align: int = CENTRE, bold: bool = False,
             size: tuple[int, int] = (1, 1), chinese: bool = False) -> None:
        """One printed line. ``chinese``: GBK inside FS & ... FS . (ASCII in it prints
        as ASCII); otherwise folded to ASCII. A replaced character is logged every time
        the line is printed."""
        data, warning = _line_bytes(str(text), align, bold, size, chinese)
        if warning:
            log.warning("%s", warning)
        self.out += data

    def zh(self, text: str, **kw: Any) -> None:
        self.line(text, chinese=True, **kw)

    def blank(self) -> None:
        self.out += LF

    def qr(self, url: str, align: int = CENTRE) -> None:
        """Native QR (GS ( k, symbol 49): model 2, module size, error correction L, store,
        print. Printable ASCII only: a URL."""
        data = _ascii(url).encode("ascii")
        n = len(data) + 3
        self.out += b"\x1ba" + bytes((align,))
        self.out += b"\x1d(k\x04\x001A2\x00"  # fn 65: model 2
        self.out += b"\x1d(k\x03\x001C" + bytes((QR_SIZE,))  # fn 67: module size
        self.out += b"\x1d(k\x03\x001E0"  # fn 69: error correction L
        self.out += b"\x1d(k" + bytes((n & 0xFF, n >> 8)) + b"1P0" + data  # fn 80: store
        self.out += b"\x1d(k\x03\x001Q0"  # fn 81: print

    def qr_labelled(self, url: str, caption_zh: str, caption_en: str) -> None:
        """The QR with its text under it (issue 18: every QR code has a text label): the
        address without its scheme (what a resident types when the camera will not read the
        code; the hub's fit breaks it to the paper), then what it is for, Chinese and
        English."""
        self.qr(url)
        self.line(short_address(url))
        self.zh(caption_zh)
        self.line(caption_en)

    def cut(self) -> bytes:
        self.out += CUT
        return bytes(self.out)


def short_address(url: str) -> str:
    """A QR's address as printed under it: without "https://" or "http://" (a browser
    puts it back), the rest as it is."""
    for scheme in ("https://", "http://"):
        if url.startswith(scheme):
            return url[len(scheme):]
    return url


# A priority ticket's words (render_ticket): zh-CN, zh-TW, English.
PRIORITY_ZH, PRIORITY_ZH_TW, PRIORITY_EN = "爱心优先", "愛心優先", "Priority"
# A slip's Chinese: a centre prints in Simplified (zh_CN, the default) or Traditional
# (zh_TW; [centre] slip_chinese in centre.toml). Every character of both is in GBK (checked
# by hub/tests/test_zh_tw_slip.py): GBK holds the Traditional forms of its CJK block, so a
# Traditional slip prints on the same GBK printers, with no Big5 or GB18030 mode.
SLIP_CHINESE = ("zh_CN", "zh_TW")
WORDS = {
    "zh_CN": {"ahead": "前面还有{n}人", "no_window": "暂无开放窗口，请咨询工作人员",
              "wait": "预计等候约{n}分钟", "wait_range": "预计等候约{n}分钟（{lo}-{hi}分钟）",
              "watch": "请留意叫号", "scan": "扫码或输入网址查看进度", "priority": PRIORITY_ZH,
              "priority_more": f"{PRIORITY_ZH_TW} / {PRIORITY_EN}",
              "offline": "离线取号 请留意叫号",
              "tips": "办事提醒", "tips_bring": "下列材料请带齐后再来办理",
              "tips_more": "……另有{n}项，请扫码查看", "tips_scan": "扫码查看完整清单",
              "tips_end": "材料齐全，一次办成",
              "full": "今日号源已满", "closed": "今日已停止办理",
              "book": "请扫码预约其他时间", "later": "请改日（工作日）再来办理"},
    "zh_TW": {"ahead": "前面還有{n}人", "no_window": "暫無開放窗口，請洽詢工作人員",
              "wait": "預計等候約{n}分鐘", "wait_range": "預計等候約{n}分鐘（{lo}-{hi}分鐘）",
              "watch": "請留意叫號", "scan": "掃碼或輸入網址查看進度",
              "priority": PRIORITY_ZH_TW, "priority_more": PRIORITY_EN,
              "offline": "離線取號 請留意叫號",
              "tips": "辦事提醒", "tips_bring": "下列材料請帶齊後再來辦理",
              "tips_more": "……另有{n}項，請掃碼查看", "tips_scan": "掃碼查看完整清單",
              "tips_end": "材料齊全，一次辦成",
              "full": "今日號源已滿", "closed": "今日已停止辦理",
              "book": "請掃碼預約其他時間", "later": "請改日（工作日）再來辦理"},
}


SCAN_EN = "Scan or type to follow your turn"  # 32 columns: one line on 58 mm paper


def words(chinese: str | None) -> dict[str, str]:
    """The fixed Chinese lines of a slip in `chinese` (zh_CN when None)."""
    if chinese is None:
        return WORDS["zh_CN"]
    if chinese not in WORDS:
        raise ValueError(f"slip_chinese must be one of {', '.join(SLIP_CHINESE)}, "
                         f"not {chinese!r}")
    return WORDS[chinese]


# A ticket issued though it is not likely to be called before closing (admission control
# in mode "warn", hub/forecast/admission.py).
LATE_ZH, LATE_ZH_TW = "预计无法在今日办理", "預計無法在今日辦理"
LATE_EN = "Not likely to be served today"


def wait_lines(wait_min: int | None, wait_range: tuple[int, int] | None = None,
               chinese: str | None = None) -> tuple[str, str]:
    """The (Chinese, English) wait estimate lines: the point estimate and, when known, the
    80% interval, so a resident can judge whether to step out. `chinese`: zh_CN | zh_TW."""
    w = words(chinese)
    if wait_min is None:
        return w["no_window"], "No window open yet: ask staff"
    if wait_range is None:
        return w["wait"].format(n=int(wait_min)), f"About {int(wait_min)} min"
    lo, hi = (int(x) for x in wait_range)
    return (w["wait_range"].format(n=int(wait_min), lo=lo, hi=hi),
            f"About {int(wait_min)} min ({lo}-{hi})")


def render_ticket(ticket: dict[str, Any]) -> bytes:
    """ESC/POS bytes for one printed ticket (see the module docstring for the rules).

    ``ticket`` keys: centre_zh, centre_en, number, item_zh, item_en, ahead, wait_min
    (int, or None when no window is open), optional wait_range ((low, high) minutes, the
    80% interval), issued_at, qr (URL), optional priority (True: a priority ticket, which
    gets 爱心优先 large under its number, then the Traditional and English words), optional
    late (True: not likely to be served today, said in bold under the wait), optional
    extra_items ([{zh, en}, ...]: the other items the ticket covers, under its item), optional
    chinese ("zh_CN" default, or "zh_TW": the fixed lines in Traditional, 愛心優先 then
    the English word; the caller passes the names in Traditional).
    """
    w = words(ticket.get("chinese"))
    s = Slip()
    s.zh(ticket["centre_zh"], bold=True)
    if ticket.get("centre_en"):
        s.line(ticket["centre_en"])
    s.blank()
    s.line(ticket["number"], bold=True, size=(4, 4))
    if ticket.get("priority"):
        s.zh(w["priority"], bold=True, size=(2, 2))
        s.zh(w["priority_more"])
    s.blank()
    s.zh(ticket["item_zh"], bold=True, size=(1, 2))  # double height, Chinese and ASCII
    if ticket.get("item_en"):
        s.line(ticket["item_en"])
    for x in ticket.get("extra_items", ()):  # 多问一句: every item the ticket covers
        s.zh(f"+ {x['zh']}", bold=True)
        if x.get("en"):
            s.line(f"  {x['en']}")
    s.blank()
    ahead = int(ticket["ahead"])
    s.zh(w["ahead"].format(n=ahead))
    s.line(f"{ahead} ahead")
    zh, en = wait_lines(ticket.get("wait_min"), ticket.get("wait_range"), ticket.get("chinese"))
    s.zh(zh)
    s.line(en)
    if ticket.get("late"):
        if ticket.get("chinese") == "zh_TW":  # a Traditional slip: no Simplified line
            s.zh(LATE_ZH_TW, bold=True)
        else:
            s.zh(LATE_ZH, bold=True)
            s.zh(LATE_ZH_TW)
        s.line(LATE_EN)
    s.line(ticket["issued_at"])
    s.blank()
    if ticket.get("qr"):  # the phone page, its address under the code
        s.qr_labelled(str(ticket["qr"]), w["scan"], SCAN_EN)
        s.blank()
    s.zh(w["watch"])
    s.line("Please wait to be called")
    data = s.cut()
    if len(data) > MAX_TICKET_BYTES:  # pragma: no cover - guards against layout bugs
        raise ValueError(f"ticket renders to {len(data)} bytes (limit {MAX_TICKET_BYTES})")
    return data


OFFLINE_ZH = "离线取号 请留意叫号"
OFFLINE_EN = "Offline ticket: watch the board"


def render_day_full(slip: dict[str, Any]) -> bytes:
    """ESC/POS bytes for the slip a box or kiosk prints when a press is refused because the
    day cannot serve it (admission control, mode "stop"; hub/app/admission.py): a resident
    at a box has no screen, so the paper says it, and where the centre takes bookings, a QR
    to book another time.

    ``slip`` keys: centre_zh, centre_en, item_zh, item_en, closed (bool: closed for today
    rather than full), book (URL, or None), at (local time), chinese (zh_CN | zh_TW).
    """
    w = words(slip.get("chinese"))
    s = Slip()
    s.zh(slip["centre_zh"], bold=True)
    if slip.get("centre_en"):
        s.line(slip["centre_en"])
    s.blank()
    s.zh(w["closed"] if slip["closed"] else w["full"], bold=True, size=(2, 2))
    s.line("Closed for today" if slip["closed"] else "Today is fully booked")
    s.blank()
    s.zh(slip["item_zh"])
    if slip.get("item_en"):
        s.line(slip["item_en"])
    s.blank()
    if slip.get("book"):
        s.zh(w["book"])
        s.line("Scan to book another time")
        s.qr(str(slip["book"]))
    else:
        s.zh(w["later"])
        s.line("Please come back on another working day")
    s.blank()
    s.line(slip["at"])
    return s.cut()


@functools.lru_cache(maxsize=8)
def render_offline_head(centre_zh: str, centre_en: str = "", chinese: str | None = None
                        ) -> bytes:
    """ESC/POS bytes for the top of a ticket a button box prints while the hub is away.

    Init, the centre's Chinese name (bold, one GBK block), its English name, then
    离线取号 请留意叫号 / "Offline ticket: watch the board". It leaves the printer centred,
    at normal size in both modes, out of Kanji mode, not bold; the box appends the big
    number, the time and the cut itself (firmware/ow/apps/box.py ``_plain_ticket``).
    ``chinese``: zh_CN (default) or zh_TW: 離線取號 請留意叫號 (the name as passed).
    """
    s = Slip()
    s.zh(centre_zh, bold=True)
    if centre_en:
        s.line(centre_en)
    s.blank()
    s.zh(words(chinese)["offline"])
    s.line(OFFLINE_EN)
    return bytes(s.out)


MAX_TIPS_BYTES = 2600  # base64 in a `print` command must stay under the boards' 4 KB


def render_tips(tips: dict[str, Any]) -> bytes:
    """ESC/POS bytes for a kiosk's pre-review tips slip (办事提醒): what to bring next time.

    ``tips`` keys: centre_zh, centre_en, items: [{zh, en, missing: [{zh, en}, ...]}, ...],
    qr (URL of the tips page, optional), optional chinese (zh_CN default | zh_TW: the fixed
    lines in Traditional; the caller passes the names in Traditional). Plain words, large
    type: each missing material is
    a double-size Chinese line with a box to tick. Too long a slip loses its English lines
    first, then trailing materials (the QR page always has the whole list).
    """
    for english, cap in ((True, 99), (False, 99), (False, 6), (False, 3)):
        data = _tips(tips, english, cap)
        if len(data) <= MAX_TIPS_BYTES:
            return data
    return data


def _tips(tips: dict[str, Any], english: bool, cap: int) -> bytes:
    w = words(tips.get("chinese"))
    s = Slip()
    s.zh(tips["centre_zh"], bold=True)
    if english and tips.get("centre_en"):
        s.line(tips["centre_en"])
    s.blank()
    s.zh(w["tips"], bold=True, size=(2, 2))
    if english:
        s.line("What to bring")
    s.zh(w["tips_bring"])
    s.blank()
    for item in tips["items"]:
        s.zh(f"【{item['zh']}】", align=LEFT, bold=True)
        if english and item.get("en"):
            s.line(item["en"], align=LEFT)
        missing = list(item.get("missing", ()))
        for m in missing[:cap]:
            s.zh(f"□{m['zh']}", align=LEFT, size=(2, 2))
            if english and m.get("en"):
                s.line(f"  {m['en']}", align=LEFT)
        if len(missing) > cap:
            s.zh(w["tips_more"].format(n=len(missing) - cap), align=LEFT)
        s.blank()
    if tips.get("qr"):
        s.qr(str(tips["qr"]))
        s.zh(w["tips_scan"])
        if english:
            s.line("Scan for the full list")
    s.zh(w["tips_end"])
    return s.cut()
