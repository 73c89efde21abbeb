"""A TCP link that a test can cut: an asyncio proxy from a free loopback port to a target.
`cut()` closes every connection through it and refuses new ones (a centre's uplink down);
`restore()` lets connections through again. Used to cut one centre off the city's NATS
cluster while its hub goes on serving."""

from __future__ import annotations

import asyncio
import contextlib

from .ports import quiet_port


class CuttableLink:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host, self.target = host, target_port
        self.port = quiet_port()
        self.up = True
        self._server: asyncio.AbstractServer | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    async def start(self) -> CuttableLink:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        try:
            up_r, up_w = await asyncio.open_connection(self.host, self.target)
        except OSError:
            writer.close()
            return
        self._conns.update((writer, up_w))

        async def pump(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    w.close()

        await asyncio.gather(pump(reader, up_w), pump(up_r, writer))
        self._conns.difference_update((writer, up_w))

    def cut(self) -> None:
        self.up = False
        for w in list(self._conns):
            with contextlib.suppress(Exception):
                w.transport.abort()
        self._conns.clear()

    def restore(self) -> None:
        self.up = True

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
