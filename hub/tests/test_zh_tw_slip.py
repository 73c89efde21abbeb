"""Printed slips in Traditional Chinese: a centre with [centre] slip_chinese = "zh_TW" gets
its tickets, tips slips and offline ticket heads with the catalog's Traditional names and
Traditional fixed lines, still in GBK (the printers' firmware), decoded back by the
Epson-rule interpreter (hub/render/escpos_decode.py)."""

from __future__ import annotations

import base64
import calendar
import json

import pytest

from onewindow.hub.app import HubApp
from onewindow.hub.app.tickets import slip_chinese
from onewindow.hub.catalog import load_catalog
from onewindow.hub.config import ConfigError, from_dict
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.printable import printable
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.render.escpos import (
    WORDS,
    render_offline_head,
    render_ticket,
    wait_lines,
    words,
)
from onewindow.hub.render.escpos_decode import decode
from onewindow.hub.web.kiosk import Kiosk
from onewindow.hub.web.site import Site
from onewindow.hub.web.traditional import texts

from .test_zh_tw_catalog import simplified_in

NOW = calendar.timegm((2026, 11, 23, 2, 0, 0))  # Monday 10:00 in the centre (UTC+8)


def hub(chinese: str | None) -> HubApp:
    centre = Centre(load_catalog(), CentreConfig("tw", tuple(WindowSpec(n) for n in (1, 2))))
    app = HubApp(centre, Registry([DeviceSpec("box-1", "box"), DeviceSpec("kiosk-1", "kiosk")]),
                 "b1", "http://hub.example:8080/t/")
    if chinese is not None:
        app.slip_chinese = chinese  # type: ignore[attr-defined]  # what the runner sets
    return app


def printed(app: HubApp, item: str, **kw: object) -> tuple[dict, dict]:
    """The print command a take at box-1 sends, and its ESC/POS decoded."""
    step = app.operate(c.TakeTicket(item, source="box-1", **kw), NOW)  # type: ignore[arg-type]
    cmds = [json.loads(p.payload) for p in step.publishes if p.topic.endswith("/box-1/cmd")]
    (cmd,) = [m for m in cmds if m["type"] == "print"]
    return cmd, decode(base64.b64decode(cmd["escpos"]))


def test_every_traditional_character_a_slip_prints_is_in_gbk():
    """GBK, not Big5 nor GB18030: the Traditional fixed lines and every zh_tw of the sample
    catalog are two-byte GBK, so a Traditional slip needs no other printer mode."""
    chars = set("".join(WORDS["zh_TW"].values()))
    chars |= set("".join(t.zh_tw for t in texts(load_catalog())))
    assert len(chars) > 600
    assert [ch for ch in sorted(chars) if not printable(ch)] == []
    assert not simplified_in("".join(WORDS["zh_TW"].values()))


def test_slip_chinese_in_centre_toml():
    base = {"centre": {"id": "x"}, "windows": [{"number": 1}]}
    assert from_dict(base).slip_chinese == "zh_CN"
    tw = from_dict({**base, "centre": {"id": "x", "slip_chinese": "zh_TW"}})
    assert tw.slip_chinese == "zh_TW"
    for bad in ("zh-HK", "big5", 1):
        with pytest.raises(ConfigError, match="slip_chinese"):
            from_dict({**base, "centre": {"id": "x", "slip_chinese": bad}})
    with pytest.raises(ValueError, match="slip_chinese"):
        words("zh_HK")


def test_a_ticket_for_a_zh_tw_centre_prints_in_traditional():
    app = hub("zh_TW")
    assert slip_chinese(app) == "zh_TW"
    app.operate(c.OpenWindow(1), NOW)
    cmd, out = printed(app, "SOC-001", priority="priority")
    texts_ = out["texts"]
    assert texts_[0] == "示範街道社區事務受理服務中心"
    assert "城鄉居民養老保險參保登記" in texts_
    assert "前面還有0人" in texts_ and "請留意叫號" in texts_
    assert "愛心優先" in texts_ and "Priority" in texts_
    waits = [t for t in texts_ if t.startswith("預計等候約")]
    assert len(waits) == 1 and waits[0].endswith("分鐘）"), texts_
    assert not simplified_in("".join(texts_)), simplified_in("".join(texts_))
    assert out["cut"] and out["qr"] == cmd["qr"]
    # The lines for devices that render the ticket themselves say the same.
    assert cmd["lines"][0] == "示範街道社區事務受理服務中心"
    assert cmd["lines"][2] == "城鄉居民養老保險參保登記"
    assert cmd["lines"][4] == "前面還有0人 / 0 ahead"
    assert cmd["lines"][5].startswith("預計等候約")
    assert cmd["lines"][-1] == "愛心優先 / Priority"
    assert not simplified_in("".join(cmd["lines"]))


def test_no_window_open_in_traditional():
    zh, en = wait_lines(None, None, "zh_TW")
    assert zh == "暫無開放窗口，請洽詢工作人員" and en == "No window open yet: ask staff"
    out = decode(render_ticket({"centre_zh": "示範中心", "number": "A001", "item_zh": "社保",
                                "ahead": 2, "wait_min": None, "issued_at": "2026-11-23 10:00",
                                "chinese": "zh_TW"}))["texts"]
    assert "暫無開放窗口，請洽詢工作人員" in out and "前面還有2人" in out


def test_a_late_ticket_says_so_in_traditional_only():
    """Admission control's warning (mode "warn") on a Traditional slip: 預計無法在今日辦理,
    then English, with no Simplified line."""
    out = decode(render_ticket({"centre_zh": "示範中心", "number": "A001", "item_zh": "社保",
                                "ahead": 90, "wait_min": 400, "issued_at": "2026-11-23 16:00",
                                "chinese": "zh_TW", "late": True}))["texts"]
    assert "預計無法在今日辦理" in out and "Not likely to be served today" in out
    assert not simplified_in("".join(out))


def test_a_zh_cn_centre_prints_as_before():
    for app in (hub(None), hub("zh_CN")):
        cmd, out = printed(app, "SOC-001")
        assert out["texts"][0] == "示范街道社区事务受理服务中心"
        assert "城乡居民养老保险参保登记" in out["texts"] and "请留意叫号" in out["texts"]
        assert cmd["lines"][4] == "前面还有0人 / 0 ahead"
    legacy = render_ticket({"centre_zh": "中心", "number": "A001", "item_zh": "社保",
                            "ahead": 1, "wait_min": None, "issued_at": "2026-11-23 10:00"})
    assert "前面还有1人" in decode(legacy)["texts"]


def test_a_tips_slip_for_a_zh_tw_centre_prints_in_traditional():
    app = hub("zh_TW")
    kiosk = Kiosk(Site(app))
    items = [app.centre.catalog.items["SOC-001"]]
    pub = kiosk.tips_publish("kiosk-1", kiosk.missing(items, []), "http://hub.example/tips")
    cmd = json.loads(pub.payload)
    out = decode(base64.b64decode(cmd["escpos"]))["texts"]
    assert out[0] == "示範街道社區事務受理服務中心"
    assert "辦事提醒" in out and "下列材料請帶齊後再來辦理" in out
    assert "【城鄉居民養老保險參保登記】" in out and "□本人居民身份證" in out
    assert "□戶口簿" in out and "材料齊全，一次辦成" in out
    assert not simplified_in("".join(out))
    assert cmd["lines"][:3] == ["示範街道社區事務受理服務中心", "辦事提醒 / What to bring",
                                "【城鄉居民養老保險參保登記】"]


def test_an_offline_head_in_traditional():
    out = decode(render_offline_head("示範中心", "Demo", "zh_TW") + b"\x1dV\x00")["texts"]
    assert out == ["示範中心", "Demo", "離線取號 請留意叫號", "Offline ticket: watch the board"]
