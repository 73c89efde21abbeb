"""The slip of a case returned for correction (退回补正通知单): which of the item's catalog
materials to correct or bring, the back office's reason, the case code to show or type at
the kiosk when coming back, and the QR of the resident's phone page.

Same slip machinery as the tickets and the tips slip (escpos.Slip): Chinese lines in GBK
through the FS/GS modes, English lines in ASCII. Catalog names are printable by
construction (the catalog refuses what the printer cannot print); the reason is free text
typed by the back office, so characters outside GBK print as ？ (core/printable.py).
"""

from __future__ import annotations

from typing import Any

from ..core.printable import substitute
from .escpos import LEFT, MAX_TIPS_BYTES, Slip

__all__ = ["render_case_return"]

_WORDS = {
    "zh_CN": {"title": "退回补正通知", "case": "办件编号", "bring": "请补正或补交以下材料：",
              "reason": "原因", "code": "取件码", "scan": "扫码查看办理进度",
              "end": "补正后请携带材料到窗口提交"},
    "zh_TW": {"title": "退回補正通知", "case": "辦件編號", "bring": "請補正或補交以下材料：",
              "reason": "原因", "code": "取件碼", "scan": "掃碼查看辦理進度",
              "end": "補正後請攜帶材料到窗口提交"},
}
REASON_CHARS = 120  # printed; the phone page has it whole


def render_case_return(slip: dict[str, Any]) -> bytes:
    """ESC/POS bytes. ``slip`` keys: centre_zh, centre_en, number (the ticket number the
    case was accepted under), item_zh, item_en, reason, materials: [{zh, en}], code (the
    case code), qr (the phone page's URL), chinese (zh_CN | zh_TW). Too long a slip loses
    its English lines first (the phone page has everything)."""
    data = b""
    for english in (True, False):
        data = _slip(slip, english)
        if len(data) <= MAX_TIPS_BYTES:
            break
    return data


def _slip(d: dict[str, Any], english: bool) -> bytes:
    w = _WORDS.get(str(d.get("chinese")), _WORDS["zh_CN"])
    s = Slip()
    s.zh(d["centre_zh"], bold=True)
    if english and d.get("centre_en"):
        s.line(d["centre_en"])
    s.blank()
    s.zh(w["title"], bold=True, size=(2, 2))
    if english:
        s.line("Returned for correction")
    s.zh(f"{w['case']} {d['number']}  {d['item_zh']}", align=LEFT)
    if english and d.get("item_en"):
        s.line(f"Case {d['number']}: {d['item_en']}", align=LEFT)
    s.blank()
    s.zh(w["bring"], align=LEFT, bold=True)
    if english:
        s.line("Please correct or bring:", align=LEFT)
    for m in d.get("materials", ()):
        s.zh(f"□{m['zh']}", align=LEFT, size=(2, 2))
        if english and m.get("en"):
            s.line(f"  {m['en']}", align=LEFT)
    reason = substitute(str(d.get("reason") or ""))[:REASON_CHARS]
    if reason:
        s.blank()
        s.zh(f"{w['reason']}：{reason}", align=LEFT)
    s.blank()
    if d.get("code"):
        s.zh(f"{w['code']}", align=LEFT)
        s.line(str(d["code"]), align=LEFT, bold=True)
    if d.get("qr"):
        s.qr(str(d["qr"]))
        s.zh(w["scan"])
    s.zh(w["end"])
    return s.cut()
