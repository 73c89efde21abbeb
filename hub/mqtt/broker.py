"""The embedded broker: what the hub starts when centre.toml has no `[broker] url`.

The default is the hub's private Mosquitto (`private_mosquitto.py`). amqtt, inside the hub
process, is only the fallback for a machine without the `mosquitto` binary (or
`[broker] embedded = "amqtt"`); the gaps it had against the MQTT 3.1.1 interoperability
tests are closed here as far as a subclass can, and the ones left are named in the
warning it logs (`AMQTT_GAPS`) and in docs/security.md. Both listen on 127.0.0.1 only:
the devices' port (`embedded_port`) and the hub's (`embedded_hub_port`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Any

from amqtt.broker import Broker
from amqtt.contexts import Action

from ..config import BrokerURL, HubConfig, embedded_hub_url

if TYPE_CHECKING:
    from ..fleet.hub import BrokerAccess
    from .private_mosquitto import PrivateMosquitto

log = logging.getLogger("onewindow.broker")

LOOPBACK = "127.0.0.1"

# Every MQTT client of ours sends small packets in bursts (a reply, a display state, the
# hall list). With Nagle's algorithm on, the second waits for the broker's delayed ACK:
# ~40 ms per call on Linux. Measured in docs/benchmarks.md.
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)

KEEPALIVE_GRACE = 1.5  # MQTT 3.1.1 §3.1.2.10: silent for 1.5 x keepalive means lost

AMQTT_GAPS = (
    "amqtt keeps sessions, queued QoS 1 messages and retained messages in the hub's memory "
    "only: a hub restart loses the commands waiting for devices that are away (the hub "
    "republishes its retained state itself); a CONNECT with a connected device's client id "
    "ends that device's session even when the login is then refused")


def free_port() -> int:
    """A free loopback port whose next one is free too: a configuration that sets only
    `embedded_port` gets the embedded broker's hub listener on the next port, and a free
    port's neighbour is often some client's ephemeral port."""
    while True:
        with socket.socket() as s, socket.socket() as after:
            s.bind((LOOPBACK, 0))
            port = int(s.getsockname()[1])
            if port >= 65535:
                continue
            try:
                after.bind((LOOPBACK, port + 1))
            except OSError:
                continue
            return port


class _Snapshot(dict):  # type: ignore[type-arg]
    """amqtt 0.12 walks its subscription table across awaits (broadcasting, sending
    retained messages on connect, dropping a session); a client subscribing meanwhile
    raised "dictionary changed size during iteration" and that client or message was
    lost. Every walk goes over a snapshot: the subscribers of that moment."""

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(super().keys()))

    def items(self):  # type: ignore[no-untyped-def,override]
        return list(super().items())

    def keys(self):  # type: ignore[no-untyped-def,override]
        return list(super().keys())

    def values(self):  # type: ignore[no-untyped-def,override]
        return list(super().values())


class _KeptPromisesBroker(Broker):
    """amqtt with the promises Mosquitto keeps, where a subclass can keep them."""

    async def _initialize_client_session(self, *args: Any, **kw: Any) -> Any:
        handler, session = await super()._initialize_client_session(*args, **kw)
        if session.keep_alive > 0:
            # amqtt reads with the keepalive as timeout and then does nothing: a client that
            # stopped answering was never lost and its will never sent. Wait 1.5 x, then
            # end the connection as a network failure, which publishes the will.
            session.keep_alive = session.keep_alive * KEEPALIVE_GRACE

            def lost() -> None:
                log.info("%s silent for %.1f s (keepalive): lost", session.client_id,
                         session.keep_alive)
                handler._ow_lost = asyncio.ensure_future(handler.handle_connection_closed())

            handler.handle_read_timeout = lost
        return handler, session

    async def _publish_retained_messages_for_subscription(
            self, subscription: tuple[str, int], session: Any) -> None:
        """amqtt calls this on every connect with every filter any client holds, and sends
        each retained message matching one without asking the topic plugins: `led-1` got
        window 2's display and other devices' status. Send only what the session itself
        subscribed to and may receive."""
        topic_filter = subscription[0]
        own = [q for s, q in self._subscriptions.get(topic_filter, ())
               if s.client_id == session.client_id]
        handler = self._get_handler(session)
        if not own or handler is None:
            return
        tasks = []
        for topic, retained in list(self._retained_messages.items()):
            if not self._matches(topic, topic_filter) or not await self._topic_filtering(
                    session, topic=topic, action=Action.RECEIVE):
                continue
            qos = min(own[0], retained.qos if retained.qos is not None else own[0])
            tasks.append(asyncio.ensure_future(
                handler.mqtt_publish(retained.topic, retained.data, qos, retain=True)))
        if tasks:
            await asyncio.wait(tasks)


class EmbeddedBroker:
    """amqtt in this process: the fallback when no mosquitto binary exists."""

    def __init__(self, port: int = 1883, authority: str | None = None,
                 hub_port: int | None = None) -> None:
        """`authority`: the name of a hub.fleet.amqtt_plugins.Authority: accounts and topic
        rules as on Mosquitto. None: anyone may connect and publish anything. `hub_port`:
        a second listener, as the private Mosquitto's hub listener."""
        self.host = LOOPBACK
        self.port = port
        self.hub_port = hub_port
        fleet = "onewindow.hub.fleet.amqtt_plugins."
        # Anonymous, but not amqtt's AnonymousAuthPlugin: it marks sessions anonymous, and
        # amqtt then drops their queued QoS 1 messages (no persistent session).
        plugins: dict[str, Any] = {fleet + "OpenAuthPlugin": {}}
        if authority is not None:
            plugins = {fleet + "FleetAuthPlugin": {"authority": authority},
                       fleet + "FleetTopicPlugin": {"authority": authority}}
        listeners: dict[str, Any] = {
            "default": {"type": "tcp", "bind": f"{LOOPBACK}:{port}"}}
        if hub_port is not None:
            listeners["hub"] = {"type": "tcp", "bind": f"{LOOPBACK}:{hub_port}"}
        self._broker = _KeptPromisesBroker({"listeners": listeners, "plugins": plugins})
        self._broker._subscriptions = _Snapshot(self._broker._subscriptions)
        for noisy in ("amqtt", "transitions"):
            logging.getLogger(noisy).setLevel(logging.WARNING)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        await self._broker.start()

    async def sync_accounts(self) -> bool:
        """Nothing to do: the fleet plugins read the registry at each login."""
        return False

    async def stop(self) -> None:
        await self._broker.shutdown()


async def start_embedded(config: HubConfig, access: BrokerAccess
                         ) -> tuple[PrivateMosquitto | EmbeddedBroker, BrokerURL]:
    """Start the embedded broker `onewindow hub` runs with no `[broker] url`; it and the
    URL the hub (and the staff tools) reach it at: the hub listener."""
    from .private_mosquitto import PrivateMosquitto, find_binary

    hub_url = embedded_hub_url(config)
    binary = find_binary(config.mosquitto) if config.embedded != "amqtt" else None
    if binary is None and config.embedded == "mosquitto":
        raise RuntimeError(
            f"[broker] embedded = \"mosquitto\" but no mosquitto binary was found "
            f"({config.mosquitto or 'PATH, /usr/sbin'}): apt-get install mosquitto")
    if binary is not None:
        broker: PrivateMosquitto | EmbeddedBroker = PrivateMosquitto(
            config, binary, access.fleet if access.enforced else None)
        await broker.start()
        return broker, hub_url
    why = ("[broker] embedded = \"amqtt\"" if config.embedded == "amqtt"
           else "no mosquitto binary found")
    log.warning(
        "内置 MQTT 代理改用 amqtt（有已知缺口），建议安装 mosquitto：apt-get install mosquitto. / "
        "%s: the embedded broker is amqtt, with known gaps: %s. "
        "Install Mosquitto (apt-get install mosquitto) for the default.", why, AMQTT_GAPS)
    broker = EmbeddedBroker(config.embedded_port, access.authority(), hub_url.port)
    await broker.start()
    log.info("embedded amqtt broker on 127.0.0.1:%d, hub listener :%d (%s)", broker.port,
             hub_url.port, "accounts and topic rules enforced" if access.enforced
             else "anonymous: no fleet secret, or [broker] embedded_auth = false")
    return broker, hub_url
