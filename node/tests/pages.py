"""Synthetic "photographed pages": a rendered A4 form lying on a desk under a document camera.

`render_page` draws a form with Pillow: a black marker square at the top-left, a black header
band beside it, a title, paragraphs of left-aligned text, a table and a signature line.
`photograph` puts it on a textured, darker desk: scaled, rotated, with perspective skew (the
camera is not exactly above the page), uneven light, blur and sensor noise. It returns the
frame and where the page's corners landed, so tests can check what the pipeline found.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

PAGE_W, PAGE_H = 840, 1188  # A4 at ~100 dpi
# Fractions of the page: where the marker is, for tests to look for it in the output.
MARKER = (0.08, 0.05, 0.16, 0.11)  # x0, y0, x1, y1
HEADER = (0.20, 0.05, 0.92, 0.11)

WORDS = [
    "resident", "application", "form", "certificate", "household", "registration", "social",
    "security", "medical", "insurance", "pension", "subsidy", "address", "district",
    "committee", "signature", "date", "applicant", "number", "item", "window", "service",
    "centre", "documents", "copy", "original",
]


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without scalable default font
        return ImageFont.load_default()


def render_page(seed: int = 0, w: int = PAGE_W, h: int = PAGE_H) -> np.ndarray:
    """An upright A4 form, BGR."""
    rnd = random.Random(seed)
    img = Image.new("RGB", (w, h), (250, 250, 246))
    d = ImageDraw.Draw(img)
    box = lambda f: (round(f[0] * w), round(f[1] * h), round(f[2] * w), round(f[3] * h))  # noqa: E731
    d.rectangle(box(MARKER), fill=(0, 0, 0))
    d.rectangle(box(HEADER), fill=(20, 20, 20))
    x0 = box(HEADER)[0]
    d.text((x0 + 16, round(0.065 * h)), "APPLICATION FORM", fill=(255, 255, 255),
           font=_font(round(0.03 * h)))
    d.text((round(0.08 * w), round(0.14 * h)), f"Community Service Centre  No. {seed:04d}",
           fill=(10, 10, 10), font=_font(round(0.025 * h)))
    body = _font(round(0.016 * h))
    y = 0.20
    for _para in range(3):
        for _line in range(rnd.randint(3, 5)):
            n = rnd.randint(4, 8)
            d.text((round(0.08 * w), round(y * h)), " ".join(rnd.choice(WORDS) for _ in range(n)),
                   fill=(30, 30, 30), font=body)
            y += 0.028
        y += 0.02
    # a table
    top = round(y * h)
    for r in range(5):
        yy = top + r * round(0.03 * h)
        d.line((round(0.08 * w), yy, round(0.7 * w), yy), fill=(40, 40, 40), width=2)
    for xf in (0.08, 0.3, 0.5, 0.7):
        d.line((round(xf * w), top, round(xf * w), top + 4 * round(0.03 * h)),
               fill=(40, 40, 40), width=2)
    # the bottom: a signature line only
    d.line((round(0.55 * w), round(0.9 * h), round(0.9 * w), round(0.9 * h)), fill=(40, 40, 40),
           width=2)
    d.text((round(0.55 * w), round(0.91 * h)), "signature", fill=(60, 60, 60), font=body)
    return cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)


def desk(w: int = 1280, h: int = 960, seed: int = 0) -> np.ndarray:
    """A darker textured desk: wood-like grain, blotches and noise, BGR."""
    rng = np.random.default_rng(seed)
    base = np.array([55, 75, 95], np.float32) * rng.uniform(0.7, 1.3)  # brownish, BGR
    low = cv2.resize(rng.normal(0, 1, (12, 16)).astype(np.float32), (w, h),
                     interpolation=cv2.INTER_CUBIC)
    grain = np.sin(np.linspace(0, rng.uniform(40, 90), h, dtype=np.float32))[:, None]
    grain = grain + 0.4 * rng.normal(0, 1, (h, 1)).astype(np.float32)
    tex = 1.0 + 0.12 * low + 0.06 * grain
    img = base[None, None, :] * tex[:, :, None] + rng.normal(0, 6, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@dataclass(frozen=True, slots=True)
class Photo:
    image: np.ndarray  # BGR frame
    corners: np.ndarray  # where the page's TL, TR, BR, BL (of the upright page) landed
    angle: float


def photograph(page: np.ndarray, angle: float = 0.0, scale: float = 0.8, skew: float = 0.04,
               seed: int = 0, size: tuple[int, int] = (1280, 960)) -> Photo:
    """`page` lying on a desk, turned by `angle` degrees (counter-clockwise), its long side
    `scale` of the frame's height, corners jittered by up to `skew` of the page size."""
    rng = np.random.default_rng(seed)
    fw, fh = size
    ph, pw = page.shape[:2]
    s = scale * fh / ph
    src = np.array([[0, 0], [pw - 1, 0], [pw - 1, ph - 1], [0, ph - 1]], np.float32)
    rect = (src - [pw / 2, ph / 2]) * s
    t = np.deg2rad(angle)
    rot = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]], np.float32)
    dst = rect @ rot.T
    dst += rng.uniform(-skew, skew, (4, 2)) * [pw * s, ph * s]
    # all four corners in view, at least `margin` from the frame's edges (see page.py's limits)
    margin = 0.025 * fh
    lo, hi = dst.min(axis=0), dst.max(axis=0)
    room = np.array([fw, fh]) - 2 * margin - (hi - lo)
    if (room < 0).any():  # too big for the frame at this angle: shrink to fit
        dst *= min((fw - 2 * margin) / (hi - lo)[0], (fh - 2 * margin) / (hi - lo)[1])
        lo, hi = dst.min(axis=0), dst.max(axis=0)
        room = np.maximum(np.array([fw, fh]) - 2 * margin - (hi - lo), 0)
    dst = dst - lo + margin + rng.uniform(0, 1, 2) * room
    dst = dst.astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    scene = desk(fw, fh, seed)
    warped = cv2.warpPerspective(page, m, (fw, fh), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), m, (fw, fh))
    mask = cv2.GaussianBlur(mask, (3, 3), 0).astype(np.float32)[:, :, None] / 255
    img = warped.astype(np.float32) * mask + scene.astype(np.float32) * (1 - mask)
    # uneven light from one side, a slight defocus and sensor noise
    gx = np.linspace(rng.uniform(0.8, 0.95), rng.uniform(1.0, 1.08), fw, dtype=np.float32)
    img *= gx[None, :, None]
    # float32 in, float32 out: astype(copy=False) copies nothing, it only tells mypy the type
    img = cv2.GaussianBlur(img, (3, 3), 0.8).astype(np.float32, copy=False)
    img += rng.normal(0, 4, img.shape)
    return Photo(np.clip(img, 0, 255).astype(np.uint8), dst, angle)


def blank_desk(seed: int = 0, size: tuple[int, int] = (1280, 960)) -> np.ndarray:
    return desk(size[0], size[1], seed)
