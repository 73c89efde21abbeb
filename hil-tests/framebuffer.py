"""Reading the sim board's framebuffer dumps, and what text looks like in framebuf's font.

The expected glyphs come from the MicroPython unix port's own framebuf (not from the app
code under test): `framebuf.FrameBuffer.text()` into a scratch buffer.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from onewindow.tools.testkit.fwsim import micropython_binary


def read_pbm(path) -> tuple[int, int, bytes]:
    data = Path(path).read_bytes()
    magic, dims, raster = data.split(b"\n", 2)
    assert magic == b"P4", magic
    w, h = (int(x) for x in dims.split())
    assert len(raster) == (w + 7) // 8 * h
    return w, h, raster


def pixel(w: int, data: bytes, x: int, y: int) -> int:
    return (data[y * ((w + 7) // 8) + x // 8] >> (7 - x % 8)) & 1


def font_text(text: str) -> tuple[int, int, bytes]:
    """`text` drawn by framebuf's built-in 8x8 font, as a MONO_HLSB buffer."""
    w = 8 * len(text)
    script = (
        "import framebuf\n"
        f"b = bytearray({(w + 7) // 8 * 8})\n"
        f"f = framebuf.FrameBuffer(b, {w}, 8, framebuf.MONO_HLSB)\n"
        f"f.text({text!r}, 0, 0, 1)\n"
        "print(b.hex())\n")
    out = subprocess.run([micropython_binary(), "-c", script], capture_output=True, text=True,
                         check=True, env=dict(os.environ, MICROPYPATH=".frozen"))
    return w, 8, bytes.fromhex(out.stdout.strip())


def region_matches(fb: tuple[int, int, bytes], glyphs: tuple[int, int, bytes], x0: int,
                   y0: int, inverted: bool = False) -> bool:
    """Does the framebuffer show `glyphs` with its top-left corner at (x0, y0)?"""
    fw, _, fdata = fb
    gw, gh, gdata = glyphs
    for y in range(gh):
        for x in range(gw):
            want = pixel(gw, gdata, x, y) ^ (1 if inverted else 0)
            if pixel(fw, fdata, x0 + x, y0 + y) != want:
                return False
    return True
