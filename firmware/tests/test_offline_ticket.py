"""The box's offline ticket, made by the real firmware on the MicroPython unix port and run
through the Epson ESC/POS interpreter (hub/render/escpos_interp.py) behind the hub's head.

The box prints the hub's `block.head` (render_offline_head) followed by `_plain_ticket`:
the number 4x in both directions, then every later line at normal size in BOTH character
modes (ASCII and Chinese), ASCII only (the box has no GBK encoder), a cut.
"""

import pytest

from onewindow.hub.render.escpos import render_offline_head
from onewindow.hub.render.escpos_image import save_png
from onewindow.hub.render.escpos_interp import PAPER_58MM, PAPER_80MM, interpret

pytestmark = pytest.mark.timeout(60)

HEAD = render_offline_head("幸福街道社区服务中心", "Xingfu Street Community Centre")


@pytest.fixture
async def bodies(mp):
    m = await mp("offline_ticket.py")
    e = await m.next("tickets", timeout=20)
    return [bytes.fromhex(h) for h in e["hex"]]


@pytest.mark.parametrize("paper", [PAPER_58MM, PAPER_80MM])
async def test_offline_ticket_sizes_and_reset_on_an_epson_printer(bodies, paper, tmp_path):
    out = interpret(HEAD + bodies[0], paper)
    save_png(out, tmp_path / "offline.png")
    texts = [ln.text for ln in out.lines if ln.glyphs]
    assert texts == ["幸福街道社区服务中心", "Xingfu Street Community Centre",
                     "离线取号 请留意叫号", "Offline ticket: watch the board",
                     "A901", "SOC-001", "2025-12-05 02:00"]
    assert not [ln.text for ln in out.lines if ln.wrapped]
    (number,) = out.lines_with("A901")
    assert {g.scale for g in number.glyphs} == {(4, 4)} and number.align == 1
    after = out.lines[out.lines.index(number) + 1:]
    assert {g.scale for ln in after for g in ln.glyphs} == {(1, 1)}
    # Both modes are back to normal size after the number, and Kanji mode is off: the
    # next job (or a Chinese line after the body) does not print 4x4.
    assert out.state["ank"] == out.state["kanji_size"] == (1, 1)
    assert out.state["kanji"] is False and out.state["bold"] is False
    assert len(out.cuts) == 1
    # A Chinese line straight after the body (no ESC @) prints at normal size.
    more = interpret(HEAD + bodies[0] + b"\x1c&" + "请留意叫号".encode("gbk") + b"\x1c.\n")
    assert {g.scale for g in more.lines_with("请留意叫号")[-1].glyphs} == {(1, 1)}


async def test_a_non_ascii_item_id_is_printed_as_question_marks_not_utf8(bodies):
    # The box has no GBK encoder: UTF-8 bytes outside Kanji mode print as garbage.
    out = interpret(HEAD + bodies[1])
    assert [ln.text for ln in out.lines if ln.glyphs][-2:] == ["??-1", "2025-12-05 02:01"]
