"""The embedded broker (amqtt), for the zero-setup default. Loopback only, always."""

from __future__ import annotations

import logging
import socket
from typing import Any

from amqtt.broker import Broker

LOOPBACK = "127.0.0.1"

# Every MQTT client of ours sends small packets in bursts (a reply, a display state, the
# hall list). With Nagle's algorithm on, the second waits for the broker's delayed ACK:
# ~40 ms per call on Linux. Measured in docs/benchmarks.md.
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    """amqtt in this process. It keeps retained messages in memory only, which is why the
    hub republishes all retained state whenever it connects."""

    def __init__(self, port: int = 1883) -> None:
        self.host = LOOPBACK
        self.port = port
        config: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"{LOOPBACK}:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        self._broker = Broker(config)
        for noisy in ("amqtt", "transitions"):
            logging.getLogger(noisy).setLevel(logging.WARNING)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        await self._broker.start()

    async def stop(self) -> None:
        await self._broker.shutdown()
