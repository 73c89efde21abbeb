"""The node's side of protocol v1 over aiomqtt: the same conventions as the boards'
firmware (firmware/ow/runtime.py): retained birth with a last will, a persistent session,
event seqs that survive restarts, events resent with the same seq until answered, commands
applied at most once per id and always acked, reconnects with full-jitter backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiomqtt

from ..protocol import ow_protocol as proto
from .config import NodeConfig

log = logging.getLogger("onewindow.node")

FW = "node-0.3.0"
SEQ_STEP = 32  # events per write of the seq high-water mark
RETRY_AFTER = 1.5  # s: resend an unanswered event, same seq
BACKOFF_MIN, BACKOFF_MAX = 0.5, 4.0  # s, full jitter: back within 5 s of the broker
RECENT_IDS = 64
NO_DELAY = ((6, 1, 1),)  # IPPROTO_TCP, TCP_NODELAY, on: no Nagle delay on small messages

Reply = tuple[str, dict[str, Any]]  # ("res" | "err", message)
CommandHandler = Callable[[dict[str, Any]], Awaitable[tuple[bool, str | None]]]
TopicHandler = Callable[[bytes], Awaitable[None]]


def tls_context(cfg: NodeConfig) -> ssl.SSLContext | None:
    """[broker] tls = true: verify the broker against `ca` (PEM text from `onewindow
    provision`, or ca_file), else against the system's CAs."""
    if not cfg.broker_tls:
        return None
    return ssl.create_default_context(cadata=cfg.broker_ca or None)


class SeqStore:
    """The event seq, persisted as a high-water mark written once per SEQ_STEP events (SD
    cards wear too): after a restart numbering resumes above it and the hub sees a gap,
    never a repeat it would drop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            mark = int(path.read_text())
        except (OSError, ValueError):
            mark = 0
        self.seq = self.reserved = mark

    def next(self) -> int:
        self.seq += 1
        if self.seq > self.reserved:
            self._reserve(self.seq + SEQ_STEP - 1)
        return self.seq

    def bump(self, last: int) -> None:
        if last > self.seq:
            self.seq = last
            if last > self.reserved:
                self._reserve(last + SEQ_STEP)

    def _reserve(self, mark: int) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(str(mark))
        tmp.replace(self.path)
        self.reserved = mark


class NodeLink:
    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        self.dev = cfg.id
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self.seq = SeqStore(cfg.state_dir / "seq")
        self.alerts: list[str] = []
        self.hub_ready = False
        self.up = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._routes: dict[str, TopicHandler] = {}
        self._commands: dict[str, CommandHandler] = {"rebirth": self._rebirth}
        self._waiting: dict[int, asyncio.Future[Reply]] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._t0 = time.monotonic()
        for leaf in ("cmd", "res", "err"):
            self.follow(self.topic(leaf), getattr(self, "_on_" + leaf))
        self.follow(proto.hub_topic(cfg.centre), self._on_hub)

    def topic(self, leaf: str) -> str:
        return proto.device_topic(self.cfg.centre, self.dev, leaf)

    def follow(self, topic: str, handler: TopicHandler) -> None:
        """Subscribe (on every connect) and route the topic's messages to handler."""
        self._routes[topic] = handler

    def on_command(self, typ: str, handler: CommandHandler) -> None:
        self._commands[typ] = handler

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
        will = aiomqtt.Will(self.topic("status"),
                            proto.encode("status", {"dev": self.dev, "state": "lost"}),
                            qos=1, retain=True)
        async with aiomqtt.Client(cfg.broker_host, cfg.broker_port, identifier=self.dev,
                                  username=cfg.broker_user, password=cfg.broker_password,
                                  clean_session=False, keepalive=15, will=will,
                                  socket_options=NO_DELAY,
                                  tls_context=tls_context(cfg)) as client:
            self._client = client
            for topic in self._routes:
                await client.subscribe(topic, qos=1)
            await self.birth()
            self.up.set()
            log.info("%s: connected to %s:%d", self.dev, cfg.broker_host, cfg.broker_port)
            async for message in client.messages:
                handler = self._routes.get(message.topic.value)
                if handler is None:
                    continue
                try:
                    await handler(bytes(message.payload))  # type: ignore[arg-type]
                except proto.ProtocolError as e:
                    log.warning("%s: bad message on %s: %s", self.dev, message.topic, e.msg)

    # ---- outbound ------------------------------------------------------------------------
    async def birth(self) -> None:
        msg: dict[str, Any] = {
            "dev": self.dev, "state": "ready", "role": self.cfg.role, "fw": FW,
            "board": "raspberry-pi", "seq": self.seq.seq, "alerts": self.alerts,
            "uptime": int(time.monotonic() - self._t0)}
        if self.cfg.window is not None:
            msg["window"] = self.cfg.window
        await self._publish("status", proto.encode("status", msg), retain=True)

    async def set_alerts(self, alerts: list[str]) -> None:
        """Alerts ride in the retained birth, where the console and technicians see them."""
        if alerts != self.alerts:
            self.alerts = alerts
            log.warning("%s: alerts: %s", self.dev, ", ".join(alerts) or "none")
            with contextlib.suppress(aiomqtt.MqttError, ConnectionError):
                await self.birth()

    async def event(self, typ: str, timeout: float = 5.0, **fields: Any) -> Reply | None:
        """Send an event; the hub's reply, or None if none came in time. Unanswered, it is
        resent with the same seq: the hub answers a repeat with its original reply."""
        seq = self.seq.next()
        payload = proto.encode("evt", proto.event(self.dev, seq, typ, **fields))
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting[seq] = fut
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                with contextlib.suppress(aiomqtt.MqttError, ConnectionError):
                    await asyncio.wait_for(self._publish("evt", payload), left)
                with contextlib.suppress(TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(fut),
                                                  max(0.01, min(RETRY_AFTER, left)))
            return None
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(seq, None)

    async def _publish(self, leaf: str, payload: bytes, retain: bool = False) -> None:
        client = self._client
        if client is None:
            await self.up.wait()
            client = self._client
        if client is None:
            raise ConnectionError("not connected")
        await client.publish(self.topic(leaf), payload, qos=1, retain=retain)

    # ---- inbound --------------------------------------------------------------------------
    async def _on_hub(self, payload: bytes) -> None:
        self.hub_ready = bool(payload) and proto.decode("hub", payload)["state"] == "ready"

    async def _on_res(self, payload: bytes) -> None:
        self._answer(("res", proto.decode("res", payload)))

    async def _on_err(self, payload: bytes) -> None:
        msg = proto.decode("err", payload)
        if msg["code"] == "seq_behind" and "last" in msg:
            self.seq.bump(msg["last"])
        log.warning("%s: hub error %s: %s", self.dev, msg["code"], msg["msg"])
        self._answer(("err", msg))

    def _answer(self, reply: Reply) -> None:
        fut = self._waiting.get(reply[1].get("seq", -1))
        if fut is not None and not fut.done():
            fut.set_result(reply)

    async def _on_cmd(self, payload: bytes) -> None:
        msg = proto.decode("cmd", payload)
        cmd_id = msg["id"]
        if cmd_id in self._recent:  # redelivered or repeated: ack again, do not redo
            await self._ack(cmd_id, True, None)
            return
        handler = self._commands.get(msg["type"])
        ok, code = (False, "unsupported") if handler is None else await handler(msg)
        self._recent[cmd_id] = None
        while len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)
        await self._ack(cmd_id, ok, code)

    async def _ack(self, cmd_id: str, ok: bool, code: str | None) -> None:
        msg: dict[str, Any] = {"dev": self.dev, "id": cmd_id, "ok": ok}
        if code:
            msg["code"] = code
        await self._publish("ack", proto.encode("ack", msg))

    async def _rebirth(self, msg: dict[str, Any]) -> tuple[bool, str | None]:
        await self.birth()
        return True, None
