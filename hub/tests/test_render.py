"""Hub-side rendering: ESC/POS tickets (decoded back) and CJK bitmaps for framebuf."""

import contextlib
import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onewindow.hub.render.bitmap import pixel, text_bitmap, text_bitmap_b64, to_pbm
from onewindow.hub.render.escpos import fit, render_offline_head, render_ticket, words
from onewindow.hub.render.escpos_decode import DecodeError, decode
from onewindow.hub.render.escpos_image import save_png
from onewindow.hub.render.escpos_interp import PAPER_58MM, PAPER_80MM, Line, interpret

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


def test_chinese_is_gbk_inside_fs_blocks_and_never_utf8():
    raw = render_ticket(TICKET)
    assert "请留意叫号".encode("gbk") in raw and "社保卡补办".encode("gbk") in raw
    for line in [*ZH_LINES, "请", "号"]:
        assert line.encode("utf-8") not in raw
    # The interpreter refuses a byte >= 0x80 outside FS & ... FS . and any non-GBK code,
    # so a ticket that interprets at all is GBK in Kanji mode and ASCII elsewhere.
    out = interpret(raw)
    kanji = "".join(g.ch for ln in out.lines for g in ln.glyphs if g.kanji)
    assert "幸福街道社区服务中心" in kanji and "请留意叫号" in kanji
    assert not out.state["kanji"]  # Kanji mode left before the cut
    assert len(raw) < 64 * 1024


def _sizes(line):
    """{(kanji?, (w, h))} of a printed line's glyphs."""
    return {(g.kanji, g.scale) for g in line.glyphs}


@pytest.mark.parametrize("paper", [PAPER_58MM, PAPER_80MM])
def test_ticket_sizes_per_mode_on_an_epson_printer(paper, tmp_path):
    out = interpret(render_ticket({**TICKET, "wait_range": (8, 19)}), paper)
    save_png(out, tmp_path / f"ticket-{paper}.png")
    lines = [ln for ln in out.lines if ln.glyphs]
    texts = [ln.text for ln in lines]
    # Nothing wraps: every line of this ticket fits the paper at its size.
    assert not [ln.text for ln in out.lines if ln.wrapped]
    assert texts[:2] == ["幸福街道社区服务中心", "Xingfu Street Community Centre"]
    # The number is 4x in both directions...
    # (the QR's address under it has "A017" in it too)
    (number,) = [ln for ln in out.lines if ln.text == "A017"]
    assert _sizes(number) == {(False, (4, 4))}
    assert {g.width for g in number.glyphs} == {48} and {g.height for g in number.glyphs} == {96}
    # ...the item's Chinese name is double height (Kanji cells 24 x 48), its English 1x...
    (item,) = out.lines_with("社保卡补办")
    assert item.text == "社保卡补办" and _sizes(item) == {(True, (1, 2))}
    assert {(g.width, g.height) for g in item.glyphs} == {(24, 48)}
    # ...and every other line, Chinese or Latin, is back to normal size.
    for ln in lines:
        if ln is not number and ln is not item:
            assert {s for _, s in _sizes(ln)} == {(1, 1)}, (ln.text, _sizes(ln))
    for zh in ("前面还有5人", "预计等候约12分钟（8-19分钟）", "请留意叫号"):
        (ln,) = out.lines_with(zh)
        assert ln.text == zh and any(g.kanji for g in ln.glyphs)
    assert texts[-1] == "Please wait to be called"
    assert out.qrs[0].data == TICKET["qr"] and out.cuts
    assert (tmp_path / f"ticket-{paper}.png").stat().st_size > 1000


def test_a_long_line_wraps_by_the_paper_width_in_dots():
    sixteen = "一二三四五六七八九十百千万亿兆京"
    narrow = interpret(b"\x1b@\x1c&" + (sixteen + "零").encode("gbk") + b"\x1c.\n")
    assert [ln.text for ln in narrow.lines] == [sixteen, "零"]  # 17 x 24 > 384 dots
    assert [ln.wrapped for ln in narrow.lines] == [False, True]
    wide = interpret(b"\x1b@\x1c&" + (sixteen + "零").encode("gbk") + b"\x1c.\n", PAPER_80MM)
    assert [ln.text for ln in wide.lines] == [sixteen + "零"]
    ascii32 = interpret(b"\x1b@" + b"x" * 32 + b"\n")  # 32 x 12 = 384: fits exactly
    assert [ln.wrapped for ln in ascii32.lines] == [False]


def test_esc_bang_sizes_only_ascii_fs_bang_only_kanji_gs_bang_both():
    zh = "号".encode("gbk")
    out = interpret(b"\x1b@\x1b!\x30\x1c&A" + zh + b"\x1c.\n"  # ESC ! 2x2
                    + b"\x1b!\x00\x1c!\x0c\x1c&A" + zh + b"\x1c.\n"  # FS ! 2x2
                    + b"\x1c!\x00\x1d!\x33\x1c&A" + zh + b"\x1c.\n"  # GS ! 4x4
                    + b"\x1b!\x00\x1c&A" + zh + b"\x1c.\n")  # ESC ! 0 alone
    assert [[g.scale for g in ln.glyphs] for ln in out.lines] == [
        [(2, 2), (1, 1)],
        [(1, 1), (2, 2)],
        [(4, 4), (4, 4)],
        [(1, 1), (4, 4)],  # the reported bug: ESC ! 0 leaves Chinese at 4x4
    ]


def test_interpreter_is_strict_about_commands_and_gbk():
    for bad in (
        b"\x1b\x2a\x00",  # ESC * (bit image): never emitted
        b"\x1b!",  # truncated
        b"\x1d!\x88",  # GS ! magnification out of range
        b"\x1c!\x01",  # FS ! undefined bit
        b"\x1d(k\x03\x001C",  # truncated GS ( k
        "请".encode("gbk"),  # Chinese outside FS & ... FS .
        "𠀋".join(("\x1c&", "\x1c.\n")).encode("gb18030"),  # 4-byte GB18030
        "䶮".join(("\x1c&", "\x1c.\n")).encode("gb18030"),  # FE9F: GB18030-2005, not GBK
        b"abc",  # never printed: no LF
    ):
        with pytest.raises(DecodeError):
            interpret(bad)
    assert decode(b"\x1c&\xc7\xeb\x1c.\n")["texts"] == ["请"]


def test_unprintable_text_at_run_time_is_substituted_and_logged(caplog):
    with caplog.at_level(logging.WARNING, "onewindow.hub.render"):
        raw = render_ticket({**TICKET, "item_zh": "𠀋社保䶮", "item_en": "Caf\u00e9 \u263a"})
    texts = decode(raw)["texts"]
    assert "？社保？" in texts and "Cafe ?" in texts
    assert "U+2000B" in caplog.text and "U+4DAE" in caplog.text and "U+263A" in caplog.text


def test_tips_slip_enlarges_chinese_and_resets_both_modes():
    from onewindow.hub.render.escpos import render_tips

    out = interpret(render_tips({"centre_zh": "幸福街道社区服务中心", "centre_en": "Xingfu",
                                 "qr": "https://ow.example/tips/1", "items": [
                                     {"zh": "社保卡补办", "en": "Card", "missing": [
                                         {"zh": "身份证", "en": "ID card"}]}]}))
    (title,) = out.lines_with("办事提醒")
    assert _sizes(title) == {(True, (2, 2))}
    (material,) = out.lines_with("身份证")
    assert _sizes(material) == {(True, (2, 2))}
    (last,) = out.lines_with("材料齐全，一次办成")
    assert _sizes(last) == {(True, (1, 1))} and out.cuts


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
    out = interpret(raw)
    assert [ln.text for ln in out.lines if ln.glyphs] == decode(raw)["texts"]
    assert {g.scale for ln in out.lines for g in ln.glyphs} == {(1, 1)}
    # What the box appends starts from a known state: centred, normal size in both modes.
    assert out.state == {"ank": (1, 1), "kanji_size": (1, 1), "kanji": False, "bold": False,
                         "align": 1, "font": 0}
    assert "离线取号".encode() not in raw and len(raw) < 512
    # The catalog refuses such a name at load; should one reach here, it prints as ？.
    assert decode(render_offline_head("𠀋中心", ""))["texts"][0] == "？中心"
    assert decode(render_offline_head("中心", ""))["texts"][1] == "离线取号 请留意叫号"


def test_bitmap_b64_is_text_bitmap_cached():
    import base64

    w, h, b = text_bitmap_b64("请A017号到3号窗口")
    assert (w, h, base64.b64decode(b)) == text_bitmap("请A017号到3号窗口")
    assert text_bitmap_b64("请A017号到3号窗口") is text_bitmap_b64("请A017号到3号窗口")


def test_no_sample_catalog_ticket_wraps_and_english_breaks_between_words():
    """The printer wraps a line that is too wide wherever it runs out of dots, mid-word;
    the hub breaks long lines itself (58 mm: 32 ASCII or 16 Chinese columns at 1x)."""
    from onewindow.hub.catalog import load_catalog

    catalog = load_catalog()
    for item in catalog.items.values():
        ticket = {**TICKET, "centre_zh": catalog.name.zh, "centre_en": catalog.name.en,
                  "item_zh": item.name.zh, "item_en": item.name.en, "ahead": 123,
                  "wait_min": 125, "wait_range": (100, 160)}
        out = interpret(render_ticket(ticket))
        assert not [ln.text for ln in out.lines if ln.wrapped], item.id
        printed = [ln.text for ln in out.lines]
        for name in (catalog.name.en, item.name.en):
            words = [w for ln in printed for w in ln.split(" ")]
            assert all(w in words for w in name.split()), (name, printed)
        (zh,) = [ln for ln in out.lines if ln.glyphs and item.name.zh.startswith(ln.text)]
        assert {g.scale for g in zh.glyphs} == {(1, 2)}


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64), st.sampled_from([b"", b"\x1b", b"\x1c", b"\x1d", b"\x1d(k",
                                                  b"\x1dV", b"\x1c&", b"\x1d(k\x03\x001"]))
def test_interpreter_fails_only_with_decode_error(tail, prefix):
    """Any byte string: a printout or DecodeError, never another exception."""
    with contextlib.suppress(DecodeError):
        interpret(b"\x1b@" + prefix + tail)


def test_interpreter_truncations_found_by_reading_are_decode_errors():
    for bad in (b"\x1dVA", b"\x1dVB", b"\x1d(k\x04\x001P0\xff", b"\x1dL\x00"):
        with pytest.raises(DecodeError):
            interpret(b"\x1b@" + bad)


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("ab 12社保卡（）-"), max_size=60), st.sampled_from([1, 2, 4]))
def test_fit_breaks_into_pieces_that_fit_and_lose_nothing_but_spaces(text, width):
    text = " ".join(text.split())
    pieces = fit(text, width)
    raw = "".join(f"\x1c&{p}\x1c.\n" for p in pieces)
    out = interpret(b"\x1b@" + size_bytes(width) + raw.encode("gbk"))
    assert not [ln.text for ln in out.lines if ln.wrapped]  # each piece fits 58 mm
    assert {g.scale[0] for ln in out.lines for g in ln.glyphs} <= {width}
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")
    for word in re.findall(r"[!-~]+", text):  # an ASCII word or number is never cut...
        if len(word) * 12 * width <= 384:  # ...unless it is longer than a line
            assert any(word in p for p in pieces), (word, pieces)


def size_bytes(width):
    from onewindow.hub.render.escpos import size_commands

    return size_commands(width, 1)


@pytest.mark.parametrize("chinese, caption", [(None, "扫码或输入网址查看进度"),
                                              ("zh_TW", "掃碼或輸入網址查看進度")])
@pytest.mark.parametrize("paper", [PAPER_58MM, PAPER_80MM])
def test_the_ticket_s_qr_has_its_address_and_purpose_printed_under_it(paper, chinese, caption):
    """Issue 18: the QR code has a text label. Under it on the paper, the phone page's
    address without its scheme (a signed link, as the hub prints it: 57 characters, broken
    by the hub between whole pieces, never wrapped by the printer), then what it is for in
    the slip's Chinese and in English; the printer's own QR still carries the whole URL."""
    url = "https://ow.example.gov.cn/t/20261123-A017?k=ABCDEFGHJKMNPQRS"
    out = interpret(render_ticket({**TICKET, "qr": url, "chinese": chinese}), paper)
    assert not [ln.text for ln in out.lines if ln.wrapped]
    (qr,) = out.qrs
    assert qr.data == url
    under = [r for r in out.rows if isinstance(r, Line) and r.y > qr.y and r.glyphs]
    address = "".join(ln.text for ln in under[:-4])  # the address, in one or more lines
    assert address == "ow.example.gov.cn/t/20261123-A017?k=ABCDEFGHJKMNPQRS"
    assert all(ln.align == 1 for ln in under[:-4])
    texts = [ln.text for ln in under[-4:]]
    assert texts[:2] == [caption, "Scan or type to follow your turn"]
    assert texts[2:] == [words(chinese)["watch"], "Please wait to be called"]
    assert {g.scale for ln in under for g in ln.glyphs} == {(1, 1)}
    if chinese == "zh_TW":  # nothing Simplified on a Traditional slip
        assert "扫码或输入网址查看进度" not in [ln.text for ln in out.lines]


def test_a_slip_with_no_qr_has_no_label():
    texts = decode(render_ticket({**TICKET, "qr": ""}))["texts"]
    assert "Scan or type to follow your turn" not in texts and "扫码或输入网址查看进度" not in texts
