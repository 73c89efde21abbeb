"""The kiosk's QR code (hub/web/pubkit.py, a fixed data mask since issue 14) still encodes the
ticket's address: the SVG the kiosk answers with is drawn to pixels and read back with
OpenCV's QR decoder (no browser)."""

from __future__ import annotations

import re

import cv2  # opencv-python-headless: in the dev extras (the node's document camera)
import numpy as np
import pytest

from onewindow.hub.web.pubkit import qr_svg

from .test_public_api import HUKOU, ID_CARD, STATUS, env  # noqa: F401 (a fixture)


def rasterise(svg: str, px: int = 8) -> np.ndarray:
    """segno's inline SVG: one path of horizontal unit-height strokes ("M x y.5", "h n",
    relative "m dx dy"), the quiet zone included in its width."""
    size = int(re.search(r'width="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    scale = int(re.search(r"scale\((\d+)\)", svg).group(1))  # type: ignore[union-attr]
    modules = size // scale
    grid = np.zeros((modules, modules), dtype=bool)
    d = re.search(r'class="qrline"[^>]* d="([^"]+)"', svg).group(1)  # type: ignore[union-attr]
    x = y = 0.0
    for op, args in re.findall(r"([MmHh])([-\d.\s]+)", d):
        nums = [float(a) for a in args.split()]
        if op == "M":
            x, y = nums
        elif op == "m":
            x, y = x + nums[0], y + nums[1]
        else:
            end = x + nums[0]
            grid[int(y), int(x):int(end)] = True
            x = end
    img = np.where(grid, 0, 255).astype(np.uint8)
    return np.kron(img, np.ones((px, px), dtype=np.uint8))


def decode(svg: str) -> str:
    text, _points, _ = cv2.QRCodeDetector().detectAndDecode(rasterise(svg))
    return str(text)


@pytest.mark.parametrize("url", [
    "http://hub.example:8080/t/20261205-A017",
    "https://centre.example.gov.cn/t/20261231-C999",
    "http://192.168.1.10:8080/tips?items=SOC-001%2CSOC-005&device=kiosk-1",
])
def test_qr_svg_encodes_the_address(url: str) -> None:
    assert decode(qr_svg(url, 5)) == url


def test_the_kiosk_take_answers_with_a_qr_of_the_ticket_address(env) -> None:  # noqa: F811
    client, _site, _ = env
    body = {"device": "box-1", "item": "SOC-001", "have": [ID_CARD, HUKOU]}
    for _ in range(3):
        t = client.post("/kiosk/take", json=body).json()
        assert t["url"] == STATUS + t["id"]
        assert decode(t["qr"]) == t["url"]
