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


class _Snapshot(dict):  # type: ignore[type-arg]
    def items(self):  # type: ignore[no-untyped-def,override]
        return list(super().items())


class EmbeddedBroker:
    """amqtt in this process. It keeps retained messages in memory only, which is why the
    hub republishes all retained state whenever it connects."""

    def __init__(self, port: int = 1883, authority: str | None = None) -> None:
        """`authority`: the name of a hub.fleet.amqtt_plugins.Authority: accounts and topic
        rules as on Mosquitto. None: anyone may connect and publish anything."""
        self.host = LOOPBACK
        self.port = port
        plugins: dict[str, Any] = {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        }
        if authority is not None:
            fleet = "onewindow.hub.fleet.amqtt_plugins."
            plugins = {fleet + "FleetAuthPlugin": {"authority": authority},
                       fleet + "FleetTopicPlugin": {"authority": authority}}
        config: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"{LOOPBACK}:{port}"}},
            "plugins": plugins,
        }
        self._broker = Broker(config)
        # amqtt 0.12 walks its subscription table across awaits while it broadcasts; a client
        # subscribing meanwhile raised "dictionary changed size during iteration" and that
        # message was lost. Walking a snapshot delivers to the subscribers of that moment.
        self._broker._subscriptions = _Snapshot(self._broker._subscriptions)
        for noisy in ("amqtt", "transitions"):
            logging.getLogger(noisy).setLevel(logging.WARNING)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        await self._broker.start()

    async def stop(self) -> None:
        await self._broker.shutdown()
