"""Chinese text to 1-bit bitmaps the LED boards blit with ``framebuf``.

The boards carry no CJK font (a usable one is megabytes), so the hub renders each
string with Pillow and a system CJK font and sends the bitmap. The layout is
``framebuf.MONO_HLSB``: ``height`` rows of ``ceil(width / 8)`` bytes, most
significant bit = leftmost pixel, a set bit = ink (lit LED). On the board::

    fb = framebuf.FrameBuffer(bytearray(data), w, h, framebuf.MONO_HLSB)
"""

from __future__ import annotations

import base64
import functools
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# (path, face index inside a .ttc); first one present wins.
FONT_CANDIDATES: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),  # Debian fonts-wqy-zenhei
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),  # fonts-noto-cjk: SC
    ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 2),
)
FONT_ENV = "ONEWINDOW_CJK_FONT"  # optional override: a .ttf/.otf/.ttc path (face 0)


class FontNotFoundError(RuntimeError):
    pass


def find_font() -> tuple[str, int]:
    override = os.environ.get(FONT_ENV)
    if override:
        if not os.path.isfile(override):
            raise FontNotFoundError(f"{FONT_ENV}={override!r}: no such file")
        return override, 0
    for path, index in FONT_CANDIDATES:
        if os.path.isfile(path):
            return path, index
    raise FontNotFoundError(
        "no CJK font found for rendering Chinese text; install the Debian package "
        "fonts-wqy-zenhei (apt-get install fonts-wqy-zenhei) or fonts-noto-cjk, "
        f"or point {FONT_ENV} at a CJK font file"
    )


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont:
    path, index = find_font()
    return ImageFont.truetype(path, size, index=index)


_REFERENCE = "国丨gjA"  # tallest ideograph ink plus Latin ascenders/descenders


@functools.lru_cache(maxsize=16)
def _baseline(font: ImageFont.FreeTypeFont, height: int) -> int:
    _, top, _, bottom = font.getbbox(_REFERENCE, anchor="ls")
    return int(-top + (height - (bottom - top)) // 2)


@functools.lru_cache(maxsize=4096)
def _glyph(ch: str, height: int) -> np.ndarray:
    """One character rendered alone: its pixels, `height` rows of its whole-pixel advance
    (uint8, 1 = ink). Cached: a centre's displays use a few dozen characters, so a new
    text costs one concatenation and one packing of its glyphs' columns."""
    font = _font(height)
    advance = max(1, round(font.getlength(ch)))
    img = Image.new("1", (advance, height), 0)
    ImageDraw.Draw(img).text((0, _baseline(font, height)), ch, font=font, fill=1, anchor="ls")
    pixels = np.array(img, dtype=np.uint8)
    pixels.flags.writeable = False  # shared by every text that uses the character
    return pixels


def text_bitmap(text: str, height: int = 16) -> tuple[int, int, bytes]:
    """Render ``text`` as one line, ``height`` pixels tall: ``(width, height, data)``.

    The font size equals ``height`` so ideographs fill the rows; the baseline is
    placed to centre the ink of a reference string (an ideograph plus Latin
    descenders) in the bitmap, which keeps every Chinese glyph whole.
    Rendering is not anti-aliased (mode "1"), which is what a 1-bit display wants.
    Characters are laid out on whole-pixel advances from a glyph cache (no kerning,
    which CJK text does not use): every call's new text costs ~0.01 ms, not a full
    FreeType layout, on the hub's call -> display path.
    """
    if height < 1:
        raise ValueError("height must be at least 1")
    if not text:
        return 1, height, bytes(height)
    pixels = np.concatenate([_glyph(ch, height) for ch in text], axis=1)
    width = pixels.shape[1]
    # packbits along rows is MONO_HLSB: rows padded to a byte, MSB first, 1 = ink.
    data = np.packbits(pixels, axis=1).tobytes()
    assert len(data) == (width + 7) // 8 * height
    return width, height, data


@functools.lru_cache(maxsize=256)
def text_bitmap_b64(text: str, height: int = 16) -> tuple[int, int, str]:
    """``text_bitmap`` with the data as standard base64, cached: a window's display is
    republished far more often than its text changes (every hub connect, every birth)."""
    width, height, data = text_bitmap(text, height)
    return width, height, base64.b64encode(data).decode("ascii")


def to_pbm(width: int, height: int, data: bytes) -> bytes:
    """A binary (P4) PBM of a MONO_HLSB buffer, for dumps and eyeballing (1 = black)."""
    if len(data) != (width + 7) // 8 * height:
        raise ValueError(f"{len(data)} bytes is not a {width}x{height} MONO_HLSB buffer")
    return b"P4\n%d %d\n" % (width, height) + bytes(data)


def pixel(width: int, data: bytes, x: int, y: int) -> int:
    """One pixel of a MONO_HLSB buffer, as framebuf.pixel() would read it."""
    return (data[y * ((width + 7) // 8) + x // 8] >> (7 - x % 8)) & 1
