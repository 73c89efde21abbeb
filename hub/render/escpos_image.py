"""Draw an interpreted ESC/POS printout (escpos_interp.Printout) as the paper would look.

Each glyph is drawn in its base cell (ANK 12x24 or 9x17, Kanji 24x24) with the CJK font
the LED bitmaps use (bitmap.find_font: wqy-zenhei first), then magnified by whole dots as
a printer does; characters of one line share their bottom edge (the baseline), as on
Epson printers. For people to look at in tests: geometry assertions use the Printout.
"""

from __future__ import annotations

import functools
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .bitmap import find_font
from .escpos_interp import Glyph, Line, Printout, qr_matrix

MARGIN = 8  # white dots around the paper, so its edges show


@functools.lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont:
    path, index = find_font()
    return ImageFont.truetype(path, size, index=index)


@functools.lru_cache(maxsize=2048)
def _cell(ch: str, w: int, h: int, bold: bool) -> Image.Image:
    """One character at scale 1, ``w`` x ``h`` dots: ink = 0 (black) on 255. Glyphs share a
    baseline (set so a reference ideograph with Latin descenders is centred); a Latin glyph
    wider than its half-width cell is narrowed to fit, as a printer's ANK font is."""
    font = _font(h)
    _, top, _, bottom = font.getbbox("国gjA", anchor="ls")
    baseline = -top + (h - (bottom - top)) // 2
    wide = Image.new("L", (2 * h, h), 255)
    draw = ImageDraw.Draw(wide)
    for dx in (0, 1) if bold else (0,):
        draw.text((dx, baseline), ch, font=font, fill=0, anchor="ls")
    ink = wide.point(lambda v: 255 - v).getbbox()
    img = Image.new("L", (w, h), 255)
    if ink:
        left, right = ink[0], ink[2]
        glyph = wide.crop((left, 0, right, h))
        if glyph.width > w:
            glyph = glyph.resize((w, h), Image.Resampling.LANCZOS)
        img.paste(glyph, ((w - glyph.width) // 2, 0))
    return img.point(lambda v: 0 if v < 128 else 255)


def _draw_glyph(page: Image.Image, g: Glyph, line_top: int, tallest: int) -> None:
    base = _cell(g.ch, g.width // g.scale[0], g.height // g.scale[1], g.bold)
    big = base.resize((g.width, g.height), Image.Resampling.NEAREST)
    page.paste(big, (MARGIN + g.x, MARGIN + line_top + tallest - g.height))


def render(out: Printout) -> Image.Image:
    """The printout as a grey-scale image: paper white, ink black, cuts dashed."""
    page = Image.new("L", (out.paper + 2 * MARGIN, out.height + 2 * MARGIN), 255)
    draw = ImageDraw.Draw(page)
    draw.rectangle((MARGIN - 1, MARGIN - 1, MARGIN + out.paper, MARGIN + out.height),
                   outline=200)
    for row in out.rows:
        if isinstance(row, Line):
            tallest = max((g.height for g in row.glyphs), default=0)
            for g in row.glyphs:
                _draw_glyph(page, g, row.y, tallest)
            continue
        matrix = qr_matrix(row)
        side = len(matrix) * row.module
        x0 = MARGIN + {0: 0, 1: (out.paper - side) // 2, 2: out.paper - side}[row.align]
        for r, cols in enumerate(matrix):
            for c, dark in enumerate(cols):
                if dark:
                    x, y = x0 + c * row.module, MARGIN + row.y + r * row.module
                    draw.rectangle((x, y, x + row.module - 1, y + row.module - 1), fill=0)
    for y in out.cuts:
        for x in range(0, out.paper, 12):
            draw.line((MARGIN + x, MARGIN + y, MARGIN + x + 6, MARGIN + y), fill=120)
    return page


def save_png(out: Printout, path: str | Path) -> Path:
    path = Path(path)
    render(out).save(path)
    return path
