"""The document camera path: synthetic photographed pages through capture → detect → deskew →
encode, the camera sources' failure modes, and the upload client's retry rules."""

import asyncio
import socket

import cv2
import httpx
import numpy as np
import pytest

from onewindow.node import page as pagemod
from onewindow.node.camera import (
    CameraError,
    FakeSource,
    Picamera2Source,
    V4L2Source,
    capture_document,
    check_frame,
    open_source,
)
from onewindow.node.upload import UploadError, upload

from .pages import MARKER, blank_desk, photograph, render_page

# (angle in degrees, page height as a share of the frame's, corner jitter, seed)
CASES = [
    (0, 0.8, 0.02, 1), (-25, 0.75, 0.04, 2), (25, 0.7, 0.04, 3), (-12, 0.85, 0.03, 4),
    (7, 0.6, 0.05, 5), (-5, 0.5, 0.02, 6), (18, 0.9, 0.03, 7),
    (90, 0.8, 0.03, 8), (180, 0.8, 0.04, 9), (270, 0.75, 0.03, 10),
    (105, 0.7, 0.04, 11), (-80, 0.75, 0.03, 12), (195, 0.7, 0.04, 13), (163, 0.65, 0.02, 14),
]


def region(gray, fx0, fy0, fx1, fy1, inset=0.01):
    h, w = gray.shape
    return gray[round((fy0 + inset) * h):round((fy1 - inset) * h),
                round((fx0 + inset) * w):round((fx1 - inset) * w)]


def assert_upright_and_cropped(img):
    h, w = img.shape[:2]
    assert h > w and abs(h / w - pagemod.A4_ASPECT) < 0.01, img.shape
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    # no desk left around the page: every edge strip is paper
    strip = max(4, w // 60)
    for edge in (gray[:strip], gray[-strip:], gray[:, :strip], gray[:, -strip:]):
        assert edge.mean() > 170, [e.mean() for e in (gray[:strip], gray[-strip:])]
        assert np.percentile(edge, 5) > 110  # not even a sliver of dark desk
    # the marker is at the top-left, where the form has it, not at the bottom corners where
    # a page upside down (or mirrored by a wrong corner order) would have it
    x0, y0, x1, y1 = MARKER
    assert region(gray, x0, y0, x1, y1).mean() < 90
    for turned in ((1 - x1, 1 - y1, 1 - x0, 1 - y0), (x0, 1 - y1, x1, 1 - y0)):
        assert region(gray, *turned).mean() > 150


@pytest.mark.parametrize(("angle", "scale", "skew", "seed"), CASES)
async def test_camera_a_photographed_page_comes_out_upright_and_cropped(angle, scale, skew, seed):
    photo = photograph(render_page(seed), angle, scale=scale, skew=skew, seed=seed)
    doc = await capture_document(FakeSource([photo.image]))
    assert_upright_and_cropped(doc.page.image)
    # the corners found are where the page lies (to 1.5 % of the frame's diagonal)
    diag = float(np.hypot(*photo.image.shape[:2]))
    found = doc.page.corners
    for true in photo.corners:
        assert np.min(np.linalg.norm(found - true, axis=1)) < 0.015 * diag
    assert doc.content_type == "image/jpeg" and doc.ext == "jpg"
    decoded = cv2.imdecode(np.frombuffer(doc.data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == doc.page.image.shape
    assert_upright_and_cropped(decoded)  # what is uploaded, not just what was computed


async def test_camera_long_side_is_configurable_and_pdf_encodes():
    photo = photograph(render_page(3), 10, seed=3)
    doc = await capture_document(FakeSource([photo.image]), fmt="pdf", long_side=1200)
    assert doc.page.image.shape[0] == 1200
    assert doc.content_type == "application/pdf" and doc.ext == "pdf"
    assert doc.data.startswith(b"%PDF-") and b"/MediaBox" in doc.data
    with pytest.raises(ValueError):
        pagemod.encode(doc.page.image, "tiff")


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
async def test_camera_a_blank_desk_is_page_not_found(seed):
    with pytest.raises(pagemod.PageNotFound):
        await capture_document(FakeSource([blank_desk(seed)]))


async def test_camera_a_page_with_a_corner_out_of_view_is_not_a_page():
    img = photograph(render_page(1), 0, scale=0.8, seed=1).image
    shifted = np.roll(img, (img.shape[0] // 2, img.shape[1] // 2), axis=(0, 1))
    shifted[: img.shape[0] // 2] = blank_desk(1)[: img.shape[0] // 2]  # cut off: only a strip
    shifted[:, : img.shape[1] // 2] = blank_desk(1)[:, : img.shape[1] // 2]
    with pytest.raises(pagemod.PageNotFound):
        pagemod.detect(shifted[: img.shape[0] // 2 + 60])


async def test_camera_unplugged_mid_capture_is_a_camera_error_not_a_crash():
    photo = photograph(render_page(2), 5, seed=2)
    source = FakeSource([photo.image], fail_at=1)
    doc = await capture_document(source)
    assert doc.page.image.size
    with pytest.raises(CameraError, match="unplugged"):
        await capture_document(source)
    await source.close()
    with pytest.raises(CameraError):
        await source.capture()


def test_camera_frames_are_checked():
    with pytest.raises(CameraError):
        check_frame(None, "cam")
    with pytest.raises(CameraError):
        check_frame(np.zeros((0, 0, 3), np.uint8), "cam")
    with pytest.raises(CameraError):
        check_frame(np.zeros((4, 4, 3), np.float32), "cam")
    assert check_frame(np.zeros((4, 4), np.uint8), "cam").shape == (4, 4, 3)
    assert check_frame(np.zeros((4, 4, 4), np.uint8), "cam").shape == (4, 4, 3)


async def test_camera_v4l2_without_a_device_is_a_camera_error():
    cam = V4L2Source("/dev/video-onewindow-absent", open_timeout=5)
    with pytest.raises(CameraError, match="cannot open"):
        await cam.capture()
    await cam.close()
    assert isinstance(open_source("v4l2:/dev/video3"), V4L2Source)
    assert open_source("2").device == 2


async def test_camera_picamera2_off_a_pi_is_a_clear_camera_error():
    try:
        import picamera2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("picamera2 is installed here")
    cam = open_source("picamera2")
    assert isinstance(cam, Picamera2Source)
    with pytest.raises(CameraError, match="Raspberry Pi OS"):
        await cam.capture()


# ---- the upload client's rules (the hub side is hub/tests/test_web_upload.py) ----------------


def mock_client(replies):
    calls = []

    def handler(request):
        calls.append(request)
        reply = replies[min(len(calls), len(replies)) - 1]
        if isinstance(reply, Exception):
            raise reply
        return reply

    return httpx.AsyncClient(transport=httpx.MockTransport(handler)), calls


async def test_camera_upload_retries_connection_errors_then_succeeds():
    ok = httpx.Response(201, json={"ticket": "20261123-A001", "file": "1-ab.jpg", "bytes": 3,
                                   "sha256": "ab"})
    client, calls = mock_client([httpx.ConnectError("refused"), httpx.ReadTimeout("slow"),
                                 httpx.Response(503, json={"code": "busy", "msg": "later"}), ok])
    async with client:
        res = await upload("http://hub:8080/", "20261123-A001", "p.jpg", b"\xff\xd8\xff",
                           "image/jpeg", token="t0k", backoff=0.001, client=client)
    assert res["file"] == "1-ab.jpg" and len(calls) == 4
    req = calls[-1]
    assert str(req.url) == "http://hub:8080/api/tickets/20261123-A001/files"
    assert req.headers["authorization"] == "Bearer t0k"
    assert b'name="file"; filename="p.jpg"' in req.content and b"image/jpeg" in req.content


async def test_camera_upload_4xx_is_final():
    client, calls = mock_client([httpx.Response(404, json={"code": "unknown_ticket",
                                                           "msg": "no ticket A999 today"})])
    async with client:
        with pytest.raises(UploadError) as e:
            await upload("http://hub", "A999", "p.jpg", b"x", "image/jpeg", client=client,
                         backoff=0.001)
    assert e.value.status == 404 and e.value.code == "unknown_ticket" and len(calls) == 1
    assert "A999" in str(e.value)


async def test_camera_upload_to_an_absent_hub_gives_up_with_upload_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = asyncio.get_running_loop().time()
    with pytest.raises(UploadError) as e:
        await upload(f"http://127.0.0.1:{port}", "X", "p.jpg", b"x", "image/jpeg",
                     retries=2, backoff=0.01)
    assert e.value.code == "unreachable" and e.value.status is None
    assert asyncio.get_running_loop().time() - started < 5
