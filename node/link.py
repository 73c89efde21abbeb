"""The node's side of protocol v1 over aiomqtt. What a device does is decided by
protocol/ow_device.py, as on the boards (firmware/ow/runtime.py) and in tools/simdevice.py:
retained birth with a last will, event seqs that survive restarts (a high-water mark in
state_dir), events resent with the same seq until answered, commands applied at most once
per id and always acked, rebirth. This module carries it out: a persistent session,
reconnects with full-jitter backoff, the mark on disk, the app's handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiomqtt

from ..protocol import ow_device as device
from ..protocol import ow_protocol as proto
from .config import NodeConfig

log = logging.getLogger("onewindow.node")

FW = "node-0.3.0"
BACKOFF_MIN, BACKOFF_MAX = 0.5, 4.0  # s, full jitter: back within 5 s of the broker
RECENT_IDS = 64  # command ids remembered (a Pi has the memory a board has not)
NO_DELAY = ((6, 1, 1),)  # IPPROTO_TCP, TCP_NODELAY, on: no Nagle delay on small messages

Reply = tuple[str, dict[str, Any]]  # ("res" | "err", message)
CommandHandler = Callable[[dict[str, Any]], Awaitable[tuple[bool, str | None]]]
TopicHandler = Callable[[bytes], Awaitable[None]]


def now_ms() -> int:
    """ow_device's clock on CPython: monotonic milliseconds."""
    return int(time.monotonic() * 1000)


def tls_context(cfg: NodeConfig) -> ssl.SSLContext | None:
    """[broker] tls = true: verify the broker against `ca` (PEM text from `onewindow
    provision`, or ca_file), else against the system's CAs."""
    if not cfg.broker_tls:
        return None
    return ssl.create_default_context(cadata=cfg.broker_ca or None)


LINK_ERRORS = (aiomqtt.MqttError, ConnectionError)


async def await_answer(core: Any, acts: list[Any], publish: Callable[[bytes], Awaitable[None]],
                       answer: asyncio.Future[Reply],
                       retry_on: tuple[type[Exception], ...] = LINK_ERRORS) -> Reply | None:
    """Carry out one event's SEND and EXPIRED actions (ow_device.Device.event or .send)
    until the hub answers it (`answer`, resolved by whoever reads the messages) or the
    device gives up on it (None). `publish(payload)` returns once the broker has it
    (PUBACK): its retry clock starts there; a publish failing with one of `retry_on` is
    tried again when due, any other error ends the wait. Shared by NodeLink and
    tools/simdevice.py."""
    seq = acts[0][1]
    try:
        while True:
            for a in acts:
                if a[0] == device.EXPIRED:
                    return None
                left = (core.wait_ms(now_ms(), seq) or 0) / 1000
                with contextlib.suppress(TimeoutError, *retry_on):
                    await asyncio.wait_for(publish(a[2]), max(0.001, left))
                core.puback(seq, now_ms())  # or failed: either way, again when retry is due
            wait = core.wait_ms(now_ms(), seq)
            if wait is None:  # answered meanwhile
                return answer.result() if answer.done() else None
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(asyncio.shield(answer), max(0.001, wait / 1000))
            acts = core.tick(now_ms(), seq)
    finally:
        core.drop(seq)


def _read_mark(path: Path) -> int:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return 0


class NodeLink:
    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        self.dev = cfg.id
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self._mark = cfg.state_dir / "seq"
        # The seq mark is written once per ow_device.SEQ_STEP events (SD cards wear too):
        # after a restart numbering resumes above it, a gap the hub accepts.
        self.core = device.Device(cfg.centre, cfg.id, cfg.role, now_ms(),
                                  seq=_read_mark(self._mark), save=self._save_mark, fw=FW,
                                  board="raspberry-pi", window=cfg.window, recent=RECENT_IDS)
        self.up = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._routes: dict[str, TopicHandler] = {}
        self._commands: dict[str, CommandHandler] = {}
        self._waiting: dict[int, asyncio.Future[Reply]] = {}

    def _save_mark(self, mark: int) -> None:
        tmp = self._mark.with_suffix(".tmp")
        tmp.write_text(str(mark))
        tmp.replace(self._mark)

    @property
    def alerts(self) -> list[str]:
        return list(self.core.alerts)

    @property
    def hub_ready(self) -> bool:
        return bool(self.core.hub_ready)

    def follow(self, topic: str, handler: TopicHandler) -> None:
        """Subscribe (on every connect, before the birth) and route the topic's messages."""
        self._routes[topic] = handler

    def on_command(self, typ: str, handler: CommandHandler) -> None:
        self._commands[typ] = handler
        self.core.runs.append(typ)

    def online(self) -> bool:
        return self.up.is_set() and self.hub_ready

    # ---- the connection ----------------------------------------------------------------
    async def run(self) -> None:
        """Connect, and reconnect for ever with full-jitter exponential backoff."""
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                await self._session()
            except aiomqtt.MqttError as e:
                log.warning("%s: broker connection lost: %s", self.dev, e)
            finally:
                self.up.clear()
                self._client = None
            attempt = 0 if time.monotonic() - started > 10 else attempt + 1
            await asyncio.sleep(random.uniform(0, min(BACKOFF_MAX, BACKOFF_MIN * 2 ** attempt)))

    async def _session(self) -> None:
        cfg = self.cfg
        will_topic, will_payload = self.core.will()
        will = aiomqtt.Will(will_topic, will_payload, qos=1, retain=True)
        async with aiomqtt.Client(cfg.broker_host, cfg.broker_port, identifier=self.dev,
                                  username=cfg.broker_user, password=cfg.broker_password,
                                  clean_session=False, keepalive=15, will=will,
                                  socket_options=NO_DELAY,
                                  tls_context=tls_context(cfg)) as client:
            self._client = client
            for topic in self._routes:
                await client.subscribe(topic, qos=1)
            for a in self.core.connect(now_ms()):  # its own topics, then the birth
                if a[0] == device.SUB:
                    await client.subscribe(a[1], qos=1)
                else:
                    await self._pub(a)
            self.up.set()
            log.info("%s: connected to %s:%d", self.dev, cfg.broker_host, cfg.broker_port)
            async for message in client.messages:
                topic = message.topic.value
                payload = bytes(message.payload)  # type: ignore[arg-type]
                try:
                    acts = self.core.message(topic, payload, now_ms())
                    if acts is not None:
                        await self._do(acts)
                    elif (handler := self._routes.get(topic)) is not None:
                        await handler(payload)
                except proto.ProtocolError as e:
                    log.warning("%s: bad message on %s: %s", self.dev, topic, e.msg)

    # ---- outbound ------------------------------------------------------------------------
    async def birth(self) -> None:
        await self._pub(self.core.birth(now_ms()))

    async def set_alerts(self, alerts: list[str]) -> None:
        """Alerts ride in the retained birth, where the console and technicians see them."""
        acts = self.core.set_alerts(alerts, now_ms())
        if acts:
            log.warning("%s: alerts: %s", self.dev, ", ".join(alerts) or "none")
            with contextlib.suppress(aiomqtt.MqttError, ConnectionError):
                await self._pub(acts[0])

    async def event(self, typ: str, timeout: float = 5.0, **fields: Any) -> Reply | None:
        """Send an event; the hub's reply, or None if none came in time. Unanswered, it is
        resent with the same seq: the hub answers a repeat with its original reply."""
        acts = self.core.event(typ, now_ms(), int(timeout * 1000), **fields)
        seq = acts[0][1]
        answer: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting[seq] = answer
        try:
            return await await_answer(self.core, acts, self._publish_event, answer)
        finally:
            self._waiting.pop(seq, None)

    async def _publish_event(self, payload: bytes) -> None:
        await self._publish(self.core.t_evt, payload)

    async def _pub(self, a: tuple[Any, ...]) -> None:
        await self._publish(a[1], a[2], retain=a[3])

    async def _publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        client = self._client
        if client is None:
            await self.up.wait()
            client = self._client
        if client is None:
            raise ConnectionError("not connected")
        await client.publish(topic, payload, qos=1, retain=retain)

    # ---- inbound --------------------------------------------------------------------------
    async def _do(self, acts: list[Any]) -> None:
        for a in acts:
            tag = a[0]
            if tag == device.PUB:
                await self._pub(a)
            elif tag == device.REPLY:
                fut = self._waiting.get(a[1])
                if fut is not None and not fut.done():
                    fut.set_result((a[2], a[3]))
            elif tag == device.RUN:
                msg = a[1]
                ok, code = await self._commands[msg["type"]](msg)
                await self._do(self.core.done(msg["id"], ok, code))
            elif tag == device.ERROR:
                log.warning("%s: hub error %s: %s", self.dev, a[1]["code"], a[1]["msg"])
