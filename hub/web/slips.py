"""The tips slip (办事提醒: what to bring next time) as a print command for a printing
device: the kiosk's pre-review tips, and the clerk's "returned for materials" at a window
(hub/web/returns.py). ESC/POS by hub/render/escpos.py `render_tips` in the centre's slip
Chinese ([centre] slip_chinese: zh_CN or zh_TW) with English under each line; the plain
`lines` beside it for a device that cannot take the bytes.
"""

from __future__ import annotations

import base64
from typing import Any

from ...protocol import ow_protocol as proto
from ...protocol.ow_device import CMD
from ..app.tickets import BOARD_MAX_PAYLOAD, PRINT_TTL, slip_chinese
from ..devices import Publish
from ..render.escpos import render_tips
from ..render.escpos import words as slip_words
from .site import Site
from .traditional import Traditional


def tips_publish(site: Site, traditional: Traditional, device: str,
                 missing: list[dict[str, Any]], url: str, cmd_id: str) -> Publish:
    """`missing`: per item {zh, en, materials: [{zh, en}, ...]} (Simplified names: the
    centre's Traditional ones are looked up here when it prints Traditional)."""
    name = site.hub.centre.catalog.name
    chinese = slip_chinese(site.hub)
    tw = chinese == "zh_TW"

    def zh(text: str) -> str:
        return traditional.of(text) if tw else text

    centre_zh = name.traditional if tw else name.zh
    escpos = render_tips({
        "centre_zh": centre_zh, "centre_en": name.en, "qr": url, "chinese": chinese,
        "items": [{"zh": zh(m["zh"]), "en": m["en"], "missing": [
            {"zh": zh(x["zh"]), "en": x["en"]} for x in m["materials"]]} for m in missing]})
    lines = [centre_zh, f"{slip_words(chinese)['tips']} / What to bring"]
    for m in missing:
        lines.append(f"【{zh(m['zh'])}】")
        lines += [f"□ {zh(x['zh'])}" for x in m["materials"]]
    cmd = {"id": cmd_id, "ttl": PRINT_TTL, "type": "print", "ticket": "tips", "lines": lines,
           "qr": url, "escpos": base64.b64encode(escpos).decode("ascii")}
    payload = proto.encode(CMD, cmd)
    if len(payload) > BOARD_MAX_PAYLOAD:
        del cmd["escpos"]
        payload = proto.encode(CMD, cmd)
    return Publish(proto.device_topic(site.hub.centre_id, device, CMD), payload)
