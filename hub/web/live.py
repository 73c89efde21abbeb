"""Live page updates over Server-Sent Events.

Every journaled step (device events, staff actions) calls `LiveHub.changed()`. Each open
page holds one SSE stream on a named channel ("hall", "ticket:<id>", "floor", ...); on a
change every stream recomputes its channel's snapshot and sends it if it differs from what
that page last got. Snapshots are whole states, never deltas: a page that missed messages
(reconnect, slow phone) is right again with the next one. A stream's queue holds one
pending wake-up, so a slow client costs no memory.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

Snapshot = Callable[[str], Any]  # channel argument ("" or e.g. a ticket id) -> JSON-able
KEEPALIVE_S = 15.0


class LiveHub:
    def __init__(self) -> None:
        self.channels: dict[str, Snapshot] = {}
        self._waiters: set[asyncio.Event] = set()
        self.version = 0

    def channel(self, name: str, snapshot: Snapshot) -> None:
        self.channels[name] = snapshot

    def changed(self) -> None:
        self.version += 1
        for w in self._waiters:
            w.set()

    def snapshot(self, name: str, arg: str = "") -> Any:
        return self.channels[name](arg)

    async def stream(self, name: str, arg: str, request: Request) -> AsyncIterator[str]:
        wake = asyncio.Event()
        self._waiters.add(wake)
        last = None
        try:
            yield "retry: 1000\n\n"
            while True:
                data = json.dumps(self.snapshot(name, arg), ensure_ascii=False,
                                  separators=(",", ":"))
                if data != last:
                    last = data
                    yield f"event: {name}\ndata: {data}\n\n"
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), KEEPALIVE_S)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": keepalive\n\n"
        finally:
            self._waiters.discard(wake)

    def response(self, name: str, arg: str, request: Request) -> StreamingResponse:
        return StreamingResponse(self.stream(name, arg, request), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
