"""The hub's HTTP side: a Starlette app served by uvicorn in the hub's own event loop.

Enabled by `[web]` in the centre's TOML (`host`, default 127.0.0.1; `port`, default 8080).
The socket is bound here, before uvicorn starts, so a port in use is a clear `OSError` at
start-up, and port 0 picks a free one (`WebServer.port` tells which). uvicorn's own signal
handling is switched off: the hub's SIGINT/SIGTERM handling stays in charge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING

import uvicorn
from starlette.applications import Starlette

from ..store.files import FileStore
from .app import create_app
from .port import HubPort

if TYPE_CHECKING:
    from ..app import HubApp
    from ..config import HubConfig

log = logging.getLogger("onewindow.hub.web")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the hub owns the process's signals


class WebServer:
    def __init__(self, server: uvicorn.Server, sock: socket.socket, files: FileStore,
                 app: Starlette) -> None:
        self._server = server
        self.app = app  # its state.site: the pages and their live views
        self._sock = sock
        self.files = files
        self.host, self.port = sock.getsockname()[:2]
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]),
                                         name="hub-web")
        for _ in range(500):
            if self._server.started or self._task.done():
                break
            await asyncio.sleep(0.01)
        if self._task.done():
            self._task.result()
        log.info("HTTP API on %s (files in %s)", self.url, self.files.root)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 10)
        self._sock.close()


def listener(host: str, port: int) -> socket.socket:
    """The web port's listening socket, created with protocol IPPROTO_TCP: asyncio sets
    TCP_NODELAY only on accepted sockets whose protocol number says TCP, and
    `socket.create_server` leaves it 0. Without it every response on a kept-alive connection
    (headers and body are two writes) waited ~40 ms for the client's delayed ACK."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                     proto=socket.IPPROTO_TCP)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise ListenError(f"[web] cannot listen on {host}:{port}: {e.strerror} (another hub "
                          f"or program holds the port? set [web] port)") from e
    return sock


class ListenError(OSError):
    """The web port cannot be opened: said in one line, the hub ends (exit 2)."""


async def start_web(config: HubConfig, hub: HubApp,
                    clock: Callable[[], float] = time.time,
                    port: HubPort | None = None) -> WebServer:
    """The web side of `hub`, acting on it through `port` (the runner: hub/web/port.py)."""
    assert config.web is not None
    files = FileStore(config.files_dir)
    app = create_app(hub, files, config.device_tokens, clock, port=port, config=config)
    sock = listener(config.web.host, config.web.port)
    # log_config None: uvicorn's records go to the hub's own handler (hub/logsetup.py: one
    # line per event, JSON when asked) instead of handlers of uvicorn's format.
    uv = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False,
                        log_config=None,
                        timeout_graceful_shutdown=5)
    server = WebServer(_Server(uv), sock, files, app)
    await server.start()
    return server


__all__ = ["WebServer", "create_app", "start_web"]
