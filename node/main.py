"""`onewindow node --config node.toml`: the node's real peripherals wired to NodeApp."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any

from .app import CaptureError, Inputs, NodeApp
from .config import NodeConfig
from .link import NodeLink

log = logging.getLogger("onewindow.node")


class DevicePrinter:
    """A kiosk's ESC/POS printer as a device file (/dev/usb/lp0) or a serial port: the
    hub already rendered the ticket, so the bytes go straight through python-escpos."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from escpos.printer import File, Serial

        if spec.get("kind", "file") == "serial":
            self._p = Serial(devfile=spec["path"], baudrate=spec.get("baud", 9600))
        else:
            self._p = File(devfile=spec.get("path", "/dev/usb/lp0"))

    def write(self, data: bytes) -> None:
        self._p._raw(data)
        with contextlib.suppress(AttributeError):
            self._p.device.flush()


def build_inputs(cfg: NodeConfig, loop: asyncio.AbstractEventLoop) -> tuple[Inputs, list[Any]]:
    """Inputs from the config; what to close at the end. Each part is optional: a missing
    section means the node has no such peripheral."""
    from .card import PcscReader, resident_token
    from .keys import KeyBridge, Keys, Lamps

    closing: list[Any] = []
    io = Inputs(token=functools.partial(resident_token, cfg.secret))
    if cfg.keys:
        io.bridge = KeyBridge(loop)
        closing.append(Keys(cfg.keys, io.bridge))
    if cfg.leds:
        io.lamps = Lamps(cfg.leds)
        closing.append(io.lamps)
    io.cards = PcscReader()
    if cfg.scanner:
        from .scanner import open_device, scans

        io.scans = scans(open_device(cfg.scanner).async_read_loop())
    if cfg.camera and cfg.hub_url:
        from .camera import open_source
        from .upload import upload

        source = open_source(f"{cfg.camera.get('kind', 'v4l2')}:{cfg.camera.get('device', 0)}")
        io.capture = functools.partial(capture_page, source, cfg.camera.get("format", "jpeg"))
        io.upload = functools.partial(_upload, upload, cfg.hub_url, cfg.hub_token)
    if cfg.printer:
        io.printer = DevicePrinter(cfg.printer)
    return io, closing


async def capture_page(source: Any, fmt: str = "jpeg") -> tuple[bytes, str, str]:
    """One document-camera page: (data, content type, file name), or CaptureError."""
    from .camera import CameraError, capture_document
    from .page import PageNotFound

    try:
        doc = await capture_document(source, fmt)
    except CameraError as e:
        raise CaptureError(f"camera: {e}", alert="camera") from e
    except PageNotFound as e:
        raise CaptureError(f"no page in view: {e}") from e
    return doc.data, doc.content_type, f"page.{doc.ext}"


async def _upload(upload: Any, hub_url: str, token: str | None, ticket: str, name: str,
                  data: bytes, content_type: str) -> dict[str, Any]:
    return await upload(hub_url, ticket, name, data, content_type, token)


async def run(cfg: NodeConfig, stop: asyncio.Event) -> None:
    io, closing = build_inputs(cfg, asyncio.get_running_loop())
    app = NodeApp(cfg, NodeLink(cfg), io)
    if io.cards is not None:
        await io.cards.start()  # type: ignore[attr-defined]
    task = asyncio.create_task(app.run(), name="node")
    try:
        await stop.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if io.cards is not None:
            await io.cards.close()  # type: ignore[attr-defined]
        for part in closing:
            part.close()
