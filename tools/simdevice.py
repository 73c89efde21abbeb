"""A simulated device speaking protocol v1 over a real MQTT connection.

Used by the demo, the tests and the benchmarks to stand in for button boxes, keypads and
boards. It behaves as the firmware must: retained birth with a last will, numbered events
retried with the same `seq` until the hub answers, commands applied once per `id` and
acknowledged (a duplicate is re-acknowledged, not re-run).

As a button box, `take` falls back on an offline number from the blocks the hub reserved
when no answer comes within TAKE_TIMEOUT, and keeps the firmware's promise of one press,
one ticket (firmware/ow/apps/box.py; the same rules, written a second time because the
firmware is MicroPython): the take's seq is remembered as served offline, a late `print`
answering it is refused with "served_offline", and the offline ticket joins the queue
(`submit_offline`) with `for_seq` naming that take.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict, deque
from typing import Any

import aiomqtt

from ..hub.mqtt.broker import NO_DELAY
from ..protocol import ow_protocol as proto

RETRY_AFTER = 2.0  # s without an answer before the same event is sent again
TAKE_TIMEOUT = 5.0  # s: the box firmware's; no answer by then and the press goes offline
SERVED_KEEP = 16  # take seqs served offline remembered, as on a board


class DeviceError(Exception):
    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__(f"{reply.get('code')}: {reply.get('msg')}")
        self.reply = reply
        self.code = reply.get("code")


class SimDevice:
    def __init__(self, centre: str, dev: str, role: str, host: str, port: int,
                 window: int | None = None, seq: int = 0, fw: str = "sim-0.1",
                 username: str | None = None, password: str | None = None,
                 persistent: bool = False) -> None:
        """`persistent`: a persistent session (clean_session false), as the firmware
        keeps: the broker queues QoS 1 commands while the device is away."""
        self.centre, self.dev, self.role, self.window = centre, dev, role, window
        self.persistent = persistent
        self.host, self.port = host, port
        self.seq = seq
        self.fw = fw
        self.username, self.password = username, password
        self.commands: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.applied: OrderedDict[str, dict[str, Any]] = OrderedDict()  # cmd id -> cmd
        self.printed: list[dict[str, Any]] = []
        self.shown: dict[str, Any] | None = None
        self.errors: list[dict[str, Any]] = []
        # The button box's offline side: blocks from `block` commands, next numbers, the
        # offline tickets still to join, the take seqs they served, refused commands.
        self.blocks: dict[str, list[list[int]]] = {}
        self.next_number: dict[str, int] = {}
        self.pending: list[dict[str, Any]] = []
        self.served: deque[int] = deque(maxlen=SERVED_KEEP)
        self.refusals: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._verdicts: dict[str, tuple[bool, str | None]] = {}  # refused cmd id -> ack
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
            will=aiomqtt.Will(self.topic("status"), will, qos=1, retain=True),
            clean_session=False if self.persistent else None)
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

    async def take(self, item: str, prefix: str, timeout: float = TAKE_TIMEOUT,
                   **fields: Any) -> dict[str, Any]:
        """A press on a button box: the hub's `res`, or, when none comes within `timeout`,
        an offline ticket `{"ticket": number, "offline": True}` (see the module doc).
        DeviceError on the hub's `err`, or "no_numbers" when the blocks are used up."""
        self.seq += 1
        seq = self.seq
        payload = proto.encode("evt", proto.event(self.dev, seq, "take", item=item, **fields))
        with contextlib.suppress(TimeoutError):
            return await self.send_raw(payload, seq, timeout)
        number = self._issue_offline(prefix)
        if number is None:
            raise DeviceError({"code": "no_numbers", "msg": f"no offline {prefix} numbers"})
        self.served.append(seq)  # before anything else can run: a late print is refused
        self.pending.append({"item": item, "number": number, "taken_at": time.time(),
                             "for_seq": seq, **fields})
        return {"ticket": number, "offline": True}

    async def submit_offline(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The offline tickets join the hub's queue, oldest first; the hub's replies (an
        `err` such as duplicate_number after a lost reply is final, as on the box)."""
        replies = []
        while self.pending:
            try:
                replies.append(await self.send("take", timeout, **self.pending[0]))
            except DeviceError as e:
                replies.append(e.reply)
            self.pending.pop(0)
        return replies

    def _issue_offline(self, prefix: str) -> str | None:
        """The next unused number of prefix: the pointer only moves forward."""
        start = self.next_number.get(prefix)
        if start is None:
            return None
        free = [max(first, start) for first, last in self.blocks.get(prefix, ())
                if max(first, start) <= last]
        if not free:
            return None
        self.next_number[prefix] = min(free) + 1
        return f"{prefix}{min(free):03d}"

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
        ok, code = self._verdicts.get(cmd_id, (True, None))
        if first:
            self.applied[cmd_id] = msg
            while len(self.applied) > 64:  # bounded, as on a board
                self._verdicts.pop(self.applied.popitem(last=False)[0], None)
            if msg.get("type") == "print" and msg.get("seq") in self.served:
                # The hub's late answer to a press served offline: one press, one ticket.
                ok, code = self._verdicts[cmd_id] = (False, "served_offline")
                await self.refusals.put(msg)
            else:
                if msg.get("type") == "print":
                    self.printed.append(msg)
                elif msg.get("type") == "show":
                    self.shown = msg
                elif msg.get("type") == "rebirth":
                    await self.birth()
                elif msg.get("type") == "block":
                    self._set_blocks(msg.get("blocks", {}))
                await self.commands.put(msg)
        body: dict[str, Any] = {"dev": self.dev, "id": cmd_id, "ok": ok}
        if code:
            body["code"] = code
        ack = proto.encode("ack", body)
        assert self._client is not None
        await self._client.publish(self.topic("ack"), ack, qos=1)

    def _set_blocks(self, blocks: dict[str, list[list[int]]]) -> None:
        """A range the box already holds keeps its pointer; a new prefix starts at its
        first number. (The box also restarts its pointers on a new day; a SimDevice lives
        for one run.)"""
        for prefix, ranges in blocks.items():
            if prefix not in self.next_number and ranges:
                self.next_number[prefix] = ranges[0][0]
        self.blocks = blocks
