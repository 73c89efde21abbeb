"""The document camera (高拍仪): frame sources behind one small interface, and the capture path.

A source is anything with `async capture() -> numpy BGR image` and `async close()`:

* `Picamera2Source`: a Raspberry Pi camera through picamera2. picamera2 needs libcamera's
  Python bindings, which exist only on Raspberry Pi OS (apt `python3-picamera2`; create the
  venv with `--system-site-packages`), so it is imported when the source opens, not before.
* `V4L2Source`: a USB document camera through OpenCV on /dev/videoN, the kind most centres
  already own. A failed open or read (unplugged, in use by another program) is a
  `CameraError`; the next capture reopens the device, so plugging it back in just works.
* `FakeSource(images)`: hands out given frames, for tests; `fail_at=n` makes the n-th capture
  fail like an unplugged camera.

`capture_document(source)` is the whole path a key press starts: frame → find the page →
flatten and turn upright → JPEG or PDF. The image work runs in a worker thread so the node's
MQTT session and keypads stay responsive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from . import page as pagemod

log = logging.getLogger("onewindow.node.camera")


class CameraError(Exception):
    """The camera cannot give a frame: absent, unplugged, busy or broken."""


class Source(Protocol):
    async def capture(self) -> np.ndarray: ...

    async def close(self) -> None: ...


def check_frame(frame: Any, what: str) -> np.ndarray:
    """Every source's frames pass here: a BGR uint8 image or a `CameraError`."""
    if frame is None or not isinstance(frame, np.ndarray) or frame.size == 0:
        raise CameraError(f"{what}: no image (camera unplugged or not delivering frames)")
    if frame.ndim == 2:
        import cv2

        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.dtype != np.uint8:
        raise CameraError(f"{what}: unexpected frame {frame.shape} {frame.dtype}")
    if frame.shape[2] == 4:  # picamera2's XBGR8888 and friends
        frame = np.ascontiguousarray(frame[:, :, :3])
    return frame


class FakeSource:
    """Frames from a list (cycled), through the same checks as a real camera's."""

    def __init__(self, images: Iterable[np.ndarray], fail_at: int | None = None,
                 delay: float = 0.0) -> None:
        self.images = list(images)
        self.fail_at = fail_at  # 0-based index of the capture that fails ("unplugged")
        self.delay = delay
        self.count = 0
        self.closed = False

    async def capture(self) -> np.ndarray:
        n = self.count
        self.count += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.closed:
            raise CameraError("fake camera: closed")
        if self.fail_at is not None and n >= self.fail_at:
            raise CameraError("fake camera: unplugged mid-capture (read failed)")
        if not self.images:
            raise CameraError("fake camera: no images")
        return check_frame(self.images[n % len(self.images)].copy(), "fake camera")

    async def close(self) -> None:
        self.closed = True


class V4L2Source:
    """A USB (UVC) document camera via OpenCV's V4L2 backend."""

    def __init__(self, device: int | str = 0, width: int = 1920, height: int = 1080,
                 flush: int = 2, open_timeout: float = 5.0) -> None:
        self.device = device  # 0, or "/dev/video0"
        self.width, self.height = width, height
        self.flush = flush  # stale frames the driver may have queued before the key press
        self.open_timeout = open_timeout
        self._cap: Any = None
        self._lock = asyncio.Lock()

    def _open(self) -> Any:
        import cv2

        cap = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"camera {self.device}: cannot open (not plugged in, or in use)")
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return cap

    def _read(self) -> np.ndarray:
        if self._cap is None:
            self._cap = self._open()
        cap = self._cap
        for _ in range(self.flush):
            cap.grab()
        ok, frame = cap.read()
        if not ok or frame is None:
            self._release()
            raise CameraError(f"camera {self.device}: read failed (unplugged?)")
        return frame

    def _release(self) -> None:
        if self._cap is not None:
            try:
                self._cap.release()
            finally:
                self._cap = None

    async def capture(self) -> np.ndarray:
        async with self._lock:
            try:
                frame = await asyncio.wait_for(asyncio.to_thread(self._read), self.open_timeout)
            except TimeoutError as e:
                raise CameraError(f"camera {self.device}: no frame in "
                                  f"{self.open_timeout:.0f} s") from e
            return check_frame(frame, f"camera {self.device}")

    async def close(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self._release)


class Picamera2Source:
    """A Raspberry Pi camera module via picamera2 (Raspberry Pi OS only)."""

    def __init__(self, camera_num: int = 0, size: tuple[int, int] = (2304, 1296)) -> None:
        self.camera_num = camera_num
        self.size = size
        self._cam: Any = None
        self._lock = asyncio.Lock()

    def _open(self) -> Any:
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found]
        except ImportError as e:
            raise CameraError(
                "picamera2 is not available: it needs libcamera's Python bindings, which only "
                "Raspberry Pi OS ships (apt install python3-picamera2, and a venv made with "
                "--system-site-packages); use a V4L2 (USB) camera elsewhere") from e
        try:
            cam = Picamera2(self.camera_num)
            # "RGB888" in libcamera's naming is B, G, R in memory: OpenCV's order.
            cam.configure(cam.create_still_configuration(
                main={"size": self.size, "format": "RGB888"}))
            cam.start()
        except Exception as e:  # libcamera raises RuntimeError/IndexError for absent cameras
            raise CameraError(f"Pi camera {self.camera_num}: cannot start: {e}") from e
        return cam

    def _read(self) -> np.ndarray:
        if self._cam is None:
            self._cam = self._open()
        try:
            return self._cam.capture_array("main")
        except Exception as e:
            self._stop()
            raise CameraError(f"Pi camera {self.camera_num}: capture failed: {e}") from e

    def _stop(self) -> None:
        if self._cam is not None:
            try:
                self._cam.stop()
                self._cam.close()
            except Exception:  # closing a camera that already went away
                log.debug("Pi camera close failed", exc_info=True)
            finally:
                self._cam = None

    async def capture(self) -> np.ndarray:
        async with self._lock:
            frame = await asyncio.to_thread(self._read)
            return check_frame(frame, f"Pi camera {self.camera_num}")

    async def close(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self._stop)


def open_source(spec: str) -> Source:
    """A source from a node.toml setting: "picamera2", "picamera2:1", "v4l2:/dev/video0",
    "/dev/video2" or a device number."""
    if spec.startswith("picamera2"):
        _, _, num = spec.partition(":")
        return Picamera2Source(int(num or 0))
    dev: int | str = spec.removeprefix("v4l2:")
    if isinstance(dev, str) and dev.isdigit():
        dev = int(dev)
    return V4L2Source(dev)


@dataclass(frozen=True, slots=True)
class Document:
    data: bytes
    content_type: str  # image/jpeg | application/pdf
    ext: str  # jpg | pdf
    page: pagemod.Page
    timings: dict[str, float] = field(default_factory=dict)  # s per step


def process(frame: np.ndarray, fmt: str = "jpeg",
            long_side: int = pagemod.LONG_SIDE) -> Document:
    """Find, flatten, turn upright and encode the page in a frame (blocking: CPU work)."""
    t0 = time.perf_counter()
    page = pagemod.detect(frame, long_side)
    t1 = time.perf_counter()
    data, ctype, ext = pagemod.encode(page.image, fmt)
    t2 = time.perf_counter()
    return Document(data, ctype, ext, page, {"detect": t1 - t0, "encode": t2 - t1})


async def capture_document(source: Source, fmt: str = "jpeg",
                           long_side: int = pagemod.LONG_SIDE) -> Document:
    """One key press: a frame from `source`, processed into an upright page, encoded.
    Raises `CameraError` (no frame) or `page.PageNotFound` (a frame, but no page in it)."""
    t0 = time.perf_counter()
    frame = await source.capture()
    t1 = time.perf_counter()
    doc = await asyncio.to_thread(process, frame, fmt, long_side)
    doc.timings["capture"] = t1 - t0
    return doc


__all__ = ["CameraError", "Document", "FakeSource", "Picamera2Source", "Source", "V4L2Source",
           "capture_document", "check_frame", "open_source", "process"]
