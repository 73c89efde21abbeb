"""A simulated device speaking protocol v1 over a real MQTT connection.

Used by the demo, the tests and the benchmarks to stand in for button boxes, keypads and
boards. It behaves as the firmware must: retained birth with a last will, numbered events
retried with the same `seq` until the hub answers, commands applied once per `id` and
acknowledged (a duplicate is re-acknowledged, not re-run).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict
from typing import Any

import aiomqtt

from ..hub.mqtt.broker import NO_DELAY
from ..protocol import ow_protocol as proto

RETRY_AFTER = 2.0  # s without an answer before the same event is sent again


class DeviceError(Exception):
    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__(f"{reply.get('code')}: {reply.get('msg')}")
        self.reply = reply
        self.code = reply.get("code")


class SimDevice:
    def __init__(self, centre: str, dev: str, role: str, host: str, port: int,
                 window: int | None = None, seq: int = 0, fw: str = "sim-0.1",
                 username: str | None = None, password: str | None = None) -> None:
        self.centre, self.dev, self.role, self.window = centre, dev, role, window
        self.host, self.port = host, port
        self.seq = seq
        self.fw = fw
        self.username, self.password = username, password
        self.commands: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.applied: OrderedDict[str, dict[str, Any]] = OrderedDict()  # cmd id -> cmd
        self.printed: list[dict[str, Any]] = []
        self.shown: dict[str, Any] | None = None
        self.errors: list[dict[str, Any]] = []
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._client: aiomqtt.Client | None = None
        self._stack = contextlib.AsyncExitStack()
        self._task: asyncio.Task[None] | None = None

    def topic(self, leaf: str) -> str:
        return proto.device_topic(self.centre, self.dev, leaf)

    async def __aenter__(self) -> SimDevice:
        will = proto.encode("status", {"dev": self.dev, "state": "lost"})
        self._client = aiomqtt.Client(
            # With an account, the client id is the username: brokers with the fleet's
            # rules (hub/fleet/acl.py) require it.
            self.host, self.port, identifier=self.username or f"sim-{self.centre}-{self.dev}",
            username=self.username, password=self.password, keepalive=10, socket_options=NO_DELAY,
            will=aiomqtt.Will(self.topic("status"), will, qos=1, retain=True))
        await self._stack.enter_async_context(self._client)
        for leaf in ("cmd", "res", "err"):
            await self._client.subscribe(self.topic(leaf), qos=1)
        self._task = asyncio.create_task(self._read(), name=f"sim-{self.dev}")
        await self.birth()
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            await self.publish_status("disconnected")
        if self._task is not None:
            self._task.cancel()
        with contextlib.suppress(Exception):
            await self._stack.aclose()

    async def publish_status(self, state: str, **extra: Any) -> None:
        msg = {"dev": self.dev, "state": state, "role": self.role, "fw": self.fw,
               "board": "sim", "seq": self.seq, **extra}
        if self.window is not None:
            msg["window"] = self.window
        assert self._client is not None
        await self._client.publish(self.topic("status"), proto.encode("status", msg),
                                   qos=1, retain=True)

    async def birth(self, **extra: Any) -> None:
        await self.publish_status("ready", **extra)

    async def send(self, typ: str, timeout: float = 10.0, retry: float = RETRY_AFTER,
                   **fields: Any) -> dict[str, Any]:
        """Send one event and wait for the hub's answer; raises DeviceError on `err`."""
        self.seq += 1
        seq = self.seq
        payload = proto.encode("evt", proto.event(self.dev, seq, typ, **fields))
        return await self.send_raw(payload, seq, timeout, retry)

    async def send_raw(self, payload: bytes, seq: int, timeout: float = 10.0,
                       retry: float = RETRY_AFTER) -> dict[str, Any]:
        self.seq = max(self.seq, seq)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[seq] = fut
        deadline = time.monotonic() + timeout
        assert self._client is not None
        try:
            while True:
                await self._client.publish(self.topic("evt"), payload, qos=1)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.dev}: no answer to seq {seq}")
                try:
                    reply = await asyncio.wait_for(asyncio.shield(fut), min(retry, left))
                    break
                except TimeoutError:
                    continue  # same seq again: the hub answers a repeat with the same reply
        finally:
            self._waiting.pop(seq, None)
        if "code" in reply:
            raise DeviceError(reply)
        return reply

    async def next_command(self, typ: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next command of this type, passing over others (blocks, shows, rebirths)."""
        async with asyncio.timeout(timeout):
            while True:
                cmd = await self.commands.get()
                if cmd.get("type") == typ:
                    return cmd

    async def publish(self, leaf: str, payload: bytes) -> None:
        assert self._client is not None
        await self._client.publish(self.topic(leaf), payload, qos=1)

    async def _read(self) -> None:
        # When the connection goes, senders time out and say so; nothing to raise here.
        with contextlib.suppress(aiomqtt.MqttError):
            await self._read_messages()

    async def _read_messages(self) -> None:
        assert self._client is not None
        async for message in self._client.messages:
            leaf = message.topic.value.rsplit("/", 1)[-1]
            try:
                msg = json.loads(bytes(message.payload))  # type: ignore[arg-type]
            except ValueError:
                continue
            if leaf == "cmd":
                await self._command(msg)
                continue
            if leaf == "err":
                self.errors.append(msg)
            seq = msg.get("seq")
            fut = self._waiting.get(seq) if isinstance(seq, int) else None
            if fut is not None and not fut.done():
                fut.set_result(msg)

    async def _command(self, msg: dict[str, Any]) -> None:
        cmd_id = msg.get("id", "")
        first = cmd_id not in self.applied
        if first:
            self.applied[cmd_id] = msg
            while len(self.applied) > 64:  # bounded, as on a board
                self.applied.popitem(last=False)
            if msg.get("type") == "print":
                self.printed.append(msg)
            elif msg.get("type") == "show":
                self.shown = msg
            elif msg.get("type") == "rebirth":
                await self.birth()
            await self.commands.put(msg)
        ack = proto.encode("ack", {"dev": self.dev, "id": cmd_id, "ok": True})
        assert self._client is not None
        await self._client.publish(self.topic("ack"), ack, qos=1)
