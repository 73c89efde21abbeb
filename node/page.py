"""Find the sheet of paper in a document-camera frame, flatten it, turn it upright, encode it.

The pipeline (all OpenCV, no model):

1. `find_page`: grayscale, blur, Otsu threshold (paper is brighter than the desk) closed to
   fill the text, the largest outer contour, simplified with `approxPolyDP` to 4 corners.
   A candidate must be convex, cover 8-99 % of the frame, fill its quadrilateral (a page, not
   a blob of desk texture) and be clearly brighter than what is around it; otherwise a Canny
   edge pass gets a second chance, and then `PageNotFound`.
2. `warp`: a perspective transform of those corners to an upright rectangle with the A4 aspect
   (long side `long_side` px, 1600 by default: ~140 dpi, plenty for a clerk to read a form).
3. `orient`: which of the four 90 degree turns is upright. Forms and letters put their weight
   at the top (a title, a header band, a logo) and align text to the left, so the turn whose
   top band holds the most ink, then the most ink on its left, wins.

Limits, honestly: the page must be lighter than the desk and all four corners in view (a
white sheet on a white desk, or a hand covering a corner, gives `PageNotFound`); only A4-like
sheets come out with the right aspect (an ID card or a receipt is stretched to A4); and the
orientation cue fails on pages with no heavier top (a page of uniform text upside down may
stay upside down; `Page.confidence` is low then). A text-direction model would be the next
step if centres need it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np

A4_ASPECT = 297.0 / 210.0  # long side / short side
LONG_SIDE = 1600
JPEG_QUALITY = 85
MIN_AREA, MAX_AREA = 0.08, 0.99  # of the frame
MIN_FILL = 0.85  # contour area / quadrilateral area
MIN_CONTRAST = 25.0  # grey levels between the page and its surroundings
BAND = 0.2  # share of the height that counts as the "top" in `orient`


class PageNotFound(Exception):
    """No sheet of paper is visible in the frame (or not all four of its corners)."""


@dataclass(frozen=True, slots=True)
class Page:
    image: np.ndarray  # BGR, upright, A4 aspect
    corners: np.ndarray  # 4x2 float32 in the frame: top-left, top-right, bottom-right, bottom-left
    rotation: int  # quarter turns (counter-clockwise) applied after the warp: 0..3
    confidence: float  # 0..1: how clearly the orientation cue decided


def order_corners(pts: np.ndarray) -> np.ndarray:
    """Four points in clockwise order starting from the one nearest the frame's top-left."""
    pts = np.asarray(pts, dtype=np.float32).reshape(4, 2)
    c = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])  # y down: increasing = clockwise
    pts = pts[np.argsort(angles)]
    start = int(np.argmin(pts.sum(axis=1)))
    return np.roll(pts, -start, axis=0)


def _quad_from(contour: np.ndarray) -> np.ndarray | None:
    hull = cv2.convexHull(contour)
    peri = cv2.arcLength(hull, True)
    for eps in (0.01, 0.02, 0.03, 0.05, 0.08):
        approx = cv2.approxPolyDP(hull, eps * peri, True)
        if len(approx) == 4:
            return approx.reshape(4, 2).astype(np.float32)
        if len(approx) < 4:
            return None
    return None


def _candidate(gray: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    h, w = gray.shape
    frame = float(h * w)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:3]:
        area = cv2.contourArea(contour)
        if not MIN_AREA * frame <= area <= MAX_AREA * frame:
            continue
        quad = _quad_from(contour)
        if quad is None or not cv2.isContourConvex(quad.reshape(4, 1, 2).astype(np.int32)):
            continue
        quad_area = cv2.contourArea(quad)
        if quad_area <= 0 or area / quad_area < MIN_FILL:
            continue
        inside = np.zeros_like(mask)
        cv2.fillConvexPoly(inside, quad.astype(np.int32), 255)
        ring = cv2.dilate(inside, np.ones((15, 15), np.uint8), iterations=2)
        ring[inside > 0] = 0
        if not ring.any():  # the page fills the frame: nothing to compare it with
            return order_corners(quad)
        if cv2.mean(gray, inside)[0] - cv2.mean(gray, ring)[0] < MIN_CONTRAST:
            continue
        return order_corners(quad)
    return None


def find_page(image: np.ndarray, work_width: int = 640) -> np.ndarray:
    """The page's four corners in `image` (clockwise from top-left), or `PageNotFound`."""
    if image is None or image.size == 0:
        raise PageNotFound("empty frame")
    h, w = image.shape[:2]
    scale = min(1.0, work_width / w)
    small = cv2.resize(image, (round(w * scale), round(h * scale)),
                       interpolation=cv2.INTER_AREA) if scale < 1.0 else image
    gray = small if small.ndim == 2 else cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    blur = cv2.GaussianBlur(gray, (7, 7), 0)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (9, 9))
    _, bright = cv2.threshold(blur, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, kernel, iterations=2)
    bright = cv2.morphologyEx(bright, cv2.MORPH_OPEN, kernel)
    quad = _candidate(blur, bright)
    if quad is None:  # uneven light: try the page's edges instead of its brightness
        edges = cv2.Canny(blur, 30, 90)
        edges = cv2.dilate(edges, kernel)
        filled = np.zeros_like(edges)
        contours, _ = cv2.findContours(edges, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(filled, contours, -1, 255, cv2.FILLED)
        quad = _candidate(blur, cv2.erode(filled, kernel))
    if quad is None:
        raise PageNotFound("no sheet of paper with four visible corners in the frame")
    return quad / scale


def warp(image: np.ndarray, corners: np.ndarray, long_side: int = LONG_SIDE) -> np.ndarray:
    """The quadrilateral flattened to an A4-aspect rectangle; landscape if it was wider."""
    tl, tr, br, bl = np.asarray(corners, dtype=np.float32)
    width = (np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2
    height = (np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2
    short = round(long_side / A4_ASPECT)
    w, h = (short, long_side) if height >= width else (long_side, short)
    dst = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(np.asarray(corners, dtype=np.float32), dst)
    return cv2.warpPerspective(image, m, (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)


def _ink(gray: np.ndarray) -> np.ndarray:
    """1.0 where there is ink, on a page shrunk for speed, a thin margin ignored."""
    small = cv2.resize(gray, (200, round(200 * gray.shape[0] / gray.shape[1])),
                       interpolation=cv2.INTER_AREA)
    m = max(2, small.shape[1] // 50)
    small = small[m:-m, m:-m]
    paper = float(np.percentile(small, 90))
    return (small < paper * 0.6).astype(np.float32)


def _score(ink: np.ndarray) -> float:
    h, w = ink.shape
    band = max(1, round(h * BAND))
    total = float(ink.sum()) or 1.0
    top, bottom = float(ink[:band].sum()), float(ink[-band:].sum())
    left, right = float(ink[:, : w // 2].sum()), float(ink[:, w - w // 2:].sum())
    return ((top - bottom) + 0.25 * (left - right)) / total


def orient(page: np.ndarray) -> tuple[int, float]:
    """Quarter turns (counter-clockwise, as `np.rot90`) that make the page upright, and how
    sure that is (0..1). A landscape warp is turned to portrait one way or the other."""
    gray = page if page.ndim == 2 else cv2.cvtColor(page, cv2.COLOR_BGR2GRAY)
    ink = _ink(gray)
    turns = (1, 3) if gray.shape[1] > gray.shape[0] else (0, 2)
    scores = {k: _score(np.rot90(ink, k)) for k in turns}
    best = max(turns, key=lambda k: scores[k])
    other = turns[1] if best == turns[0] else turns[0]
    confidence = min(1.0, (scores[best] - scores[other]) / 2.5)  # scores lie in +-1.25
    return best, confidence


def detect(image: np.ndarray, long_side: int = LONG_SIDE) -> Page:
    """Find, flatten and turn upright the page in a camera frame."""
    corners = find_page(image)
    flat = warp(image, corners, long_side)
    k, confidence = orient(flat)
    upright = np.ascontiguousarray(np.rot90(flat, k)) if k else flat
    return Page(upright, corners, k, confidence)


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def encode_pdf(image: np.ndarray, dpi: float | None = None) -> bytes:
    """One page PDF; the page size follows A4 when the image has the A4 aspect."""
    from PIL import Image

    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else image
    pil = Image.fromarray(rgb)
    if dpi is None:  # the short side is 210 mm
        dpi = min(pil.size) / (210 / 25.4)
    out = io.BytesIO()
    pil.save(out, format="PDF", resolution=dpi, quality=JPEG_QUALITY)
    return out.getvalue()


def encode(image: np.ndarray, fmt: str = "jpeg") -> tuple[bytes, str, str]:
    """(data, content type, file extension) for "jpeg" or "pdf"."""
    if fmt in ("jpeg", "jpg"):
        return encode_jpeg(image), "image/jpeg", "jpg"
    if fmt == "pdf":
        return encode_pdf(image), "application/pdf", "pdf"
    raise ValueError(f"unknown format {fmt!r}: use 'jpeg' or 'pdf'")


__all__ = ["A4_ASPECT", "Page", "PageNotFound", "detect", "encode", "encode_jpeg",
           "encode_pdf", "find_page", "order_corners", "orient", "warp"]
