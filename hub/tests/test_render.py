"""Hub-side rendering: ESC/POS tickets (decoded back) and CJK bitmaps for framebuf."""

import re

import pytest

from onewindow.hub.render.bitmap import pixel, text_bitmap, text_bitmap_b64, to_pbm
from onewindow.hub.render.escpos import render_offline_head, render_ticket
from onewindow.hub.render.escpos_decode import DecodeError, decode

TICKET = {
    "centre_zh": "幸福街道社区服务中心",
    "centre_en": "Xingfu Street Community Centre",
    "number": "A017",
    "item_zh": "社保卡补办",
    "item_en": "Social security card",
    "ahead": 5,
    "wait_min": 12,
    "issued_at": "2026-11-23 09:41",
    "qr": "https://ow.example/t/A017",
}

ZH_LINES = [
    "幸福街道社区服务中心",
    "社保卡补办",
    "前面还有5人",
    "预计等候约12分钟",
    "暂无开放窗口，请咨询工作人员",
    "请留意叫号",
]


def test_ticket_decodes_to_its_content():
    out = decode(render_ticket(TICKET))
    texts = out["texts"]
    assert texts[0] == "幸福街道社区服务中心"
    assert "A017" in texts
    assert texts.index("A017") < texts.index("社保卡补办") < texts.index("Social security card")
    assert "前面还有5人" in texts and "5 ahead" in texts
    assert "预计等候约12分钟" in texts and "About 12 min" in texts
    assert "2026-11-23 09:41" in texts
    assert texts[-2:] == ["请留意叫号", "Please wait to be called"]
    assert out["qr"] == "https://ow.example/t/A017"
    assert out["cut"] is True


def test_chinese_is_gb18030_inside_fs_blocks_and_never_utf8():
    raw = render_ticket(TICKET)
    # FS & 请留意叫号 FS .
    assert b"\x1c\x26\xc7\xeb\xc1\xf4\xd2\xe2\xbd\xd0\xba\xc5\x1c\x2e" in raw
    assert "社保卡补办".encode("gb18030") in raw
    # (A regex for "any UTF-8 CJK" would false-positive: GB18030 pairs can look alike.)
    for line in [*ZH_LINES, "请", "号"]:
        assert line.encode("utf-8") not in raw
    # Every non-ASCII byte sits inside an FS & ... FS . block.
    outside = re.sub(rb"\x1c&.*?\x1c\.", b"", raw, flags=re.S)
    qr_free = re.sub(rb"\x1d\(k..1P0[ -~]*", b"", outside, flags=re.S)
    assert all(b < 0x80 for b in qr_free.replace(b"\x1d!3", b""))
    # ...and each block is one whole line: FS & text FS . LF, so Chinese mode is always
    # left before any Latin text or command.
    blocks = re.findall(rb"\x1c&([^\x00-\x1f]*)\x1c\.\n", raw)
    assert len(blocks) == raw.count(b"\x1c&") == 5
    assert [b.decode("gb18030") for b in blocks] == [
        "幸福街道社区服务中心",
        "社保卡补办",
        "前面还有5人",
        "预计等候约12分钟",
        "请留意叫号",
    ]
    assert len(raw) < 64 * 1024


def test_the_80_percent_interval_is_printed_in_both_languages():
    out = decode(render_ticket({**TICKET, "wait_range": (8, 19)}))
    assert "预计等候约12分钟（8-19分钟）" in out["texts"]
    assert "About 12 min (8-19)" in out["texts"]


def test_no_window_open_wait_text():
    out = decode(render_ticket({**TICKET, "wait_min": None}))
    assert "暂无开放窗口，请咨询工作人员" in out["texts"]
    assert "No window open yet: ask staff" in out["texts"]
    assert not any("分钟" in t for t in out["texts"])


def test_latin_lines_are_folded_to_ascii():
    out = decode(render_ticket({**TICKET, "item_en": "Café permit\nrenewal", "qr": ""}))
    assert "Cafe permit renewal" in out["texts"]
    assert out["qr"] is None


def test_decoder_rejects_unknown_commands_and_stray_high_bytes():
    with pytest.raises(DecodeError):
        decode(b"\x1b\x2a\x00")  # ESC * (bit image) is never emitted
    with pytest.raises(DecodeError):
        decode("请".encode("gb18030"))  # Chinese outside FS & ... FS .
    assert decode(b"\x1c&\x81\x30\x81\x30\x1c.")["texts"] == ["\x80"]  # 4-byte GB18030


def ink(w, h, data):
    return {(x, y) for y in range(h) for x in range(w) if pixel(w, data, x, y)}


def test_bitmap_shape_and_ink():
    w, h, data = text_bitmap("A017 → 3号窗口")
    assert h == 16
    assert len(data) == (w + 7) // 8 * h
    assert 80 < w < 160
    dots = ink(w, h, data)
    assert dots and len(dots) < w * h // 2
    # The last glyph (口) is CJK: its 16-pixel cell at the right end has ink.
    assert any(x >= w - 16 for x, _ in dots)


def test_one_is_a_single_horizontal_stroke_and_bits_are_msb_first():
    w, h, data = text_bitmap("一")
    dots = ink(w, h, data)
    rows = {y for _, y in dots}
    cols = {x for x, _ in dots}
    assert len(rows) <= 2, rows  # one stroke, at most 2 px thick at 16 px
    assert len(cols) >= w * 3 // 4  # ...spanning the glyph cell
    assert min(rows) > 2 and max(rows) < h - 2  # in the middle, not at an edge
    # 一 then 丨: the vertical stroke must land in the right half, one column wide.
    w, h, data = text_bitmap("一丨")
    right = {(x, y) for x, y in ink(w, h, data) if x >= w // 2}
    assert len({x for x, _ in right}) <= 2 and len({y for _, y in right}) >= h // 2


def test_bitmap_other_heights():
    for height in (12, 24):
        w, h, data = text_bitmap("号", height)
        assert h == height and len(data) == (w + 7) // 8 * h and any(data)


def test_to_pbm():
    w, h, data = text_bitmap("号")
    pbm = to_pbm(w, h, data)
    assert pbm.startswith(b"P4\n%d %d\n" % (w, h))
    assert pbm.endswith(data) and len(pbm) == len(b"P4\n%d %d\n" % (w, h)) + len(data)
    with pytest.raises(ValueError):
        to_pbm(w, h, data[:-1])


def test_offline_head_decodes_and_leaves_the_rest_to_the_box():
    raw = render_offline_head("幸福街道社区服务中心", "Xingfu Street Community Centre")
    assert raw.startswith(b"\x1b@")  # ESC @: init
    assert decode(raw) == {
        "texts": [
            "幸福街道社区服务中心",
            "Xingfu Street Community Centre",
            "离线取号 请留意叫号",
            "Offline ticket: watch the board",
        ],
        "qr": None,
        "cut": False,
    }
    blocks = re.findall(rb"\x1c&([^\x00-\x1f]*)\x1c\.\n", raw)
    assert [b.decode("gb18030") for b in blocks] == ["幸福街道社区服务中心", "离线取号 请留意叫号"]
    assert "离线取号".encode() not in raw and len(raw) < 512
    assert decode(render_offline_head("中心", ""))["texts"][1] == "离线取号 请留意叫号"


def test_bitmap_b64_is_text_bitmap_cached():
    import base64

    w, h, b = text_bitmap_b64("请A017号到3号窗口")
    assert (w, h, base64.b64decode(b)) == text_bitmap("请A017号到3号窗口")
    assert text_bitmap_b64("请A017号到3号窗口") is text_bitmap_b64("请A017号到3号窗口")
