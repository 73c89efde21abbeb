"""A simulated device speaking protocol v1 over a real MQTT connection.

Used by the demo, the tests and the benchmarks to stand in for button boxes, keypads and
boards. What it does on the protocol is the real device code: protocol/ow_device.py, the
module the boards' firmware and the Pi node run too (retained birth with a last will,
numbered events resent with the same `seq` until the hub answers, commands applied once per
`id` and acknowledged, a duplicate re-acknowledged with its first verdict, rebirth). This
class is its I/O: one aiomqtt connection, and the records tests read (`printed`, `shown`,
`commands`, `errors`, `refusals`).

As a button box, `take` falls back on an offline number from the blocks the hub reserved
when no answer comes within TAKE_TIMEOUT, as the box firmware does (firmware/ow/apps/box.py)
with the same ow_device.Book: the take's seq is recorded as served offline, a late `print`
answering it is refused with "served_offline" (by ow_device), and the offline ticket joins
the queue (`submit_offline`) with `for_seq` naming that take.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import Any

import aiomqtt

from ..hub.mqtt.broker import NO_DELAY
from ..node.link import Reply, await_answer, now_ms
from ..protocol import ow_device as device
from ..protocol import ow_protocol as proto

log = logging.getLogger("onewindow.simdevice")

RETRY_AFTER = 2.0  # s without an answer before the same event is sent again
TAKE_TIMEOUT = 5.0  # s: the box firmware's; no answer by then and the press goes offline
RECENT_IDS = 64  # command ids remembered (and `applied` kept), more than a board's 16


class DeviceError(Exception):
    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__(f"{reply.get('code')}: {reply.get('msg')}")
        self.reply = reply
        self.code = reply.get("code")


class SimDevice:
    def __init__(self, centre: str, dev: str, role: str, host: str, port: int,
                 window: int | None = None, seq: int = 0, fw: str = "sim-0.1",
                 username: str | None = None, password: str | None = None,
                 persistent: bool = False, resume: SimDevice | None = None) -> None:
        """`persistent`: a persistent session (clean_session false), as the firmware
        keeps: the broker queues QoS 1 commands while the device is away. `resume`: an
        earlier connection of this device, to reconnect as the firmware does: its protocol
        state (ow_device: seq, the command ids applied, the offline book) and its records,
        in place before a queued command can arrive."""
        self.centre, self.dev, self.role, self.window = centre, dev, role, window
        self.persistent = persistent
        self.host, self.port = host, port
        self.username, self.password = username, password
        if resume is not None:
            self.core = resume.core
            self.commands, self.applied = resume.commands, resume.applied
            self.printed, self.shown = resume.printed, resume.shown
            self.errors, self.refusals = resume.errors, resume.refusals
        else:
            self.core = device.Device(centre, dev, role, now_ms(), seq=seq, fw=fw,
                                      board="sim", window=window,
                                      retry_ms=int(RETRY_AFTER * 1000), recent=RECENT_IDS)
            self.core.runs = [t for t in proto.COMMANDS if t != "rebirth"]  # applies them all
            self.core.book = device.Book()  # offline numbers (any role may hold blocks)
            self.commands: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            self.applied: OrderedDict[str, dict[str, Any]] = OrderedDict()  # cmd id -> cmd
            self.printed: list[dict[str, Any]] = []
            self.shown: dict[str, Any] | None = None
            self.errors: list[dict[str, Any]] = []
            self.refusals: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._waiting: dict[int, asyncio.Future[Reply]] = {}
        self._client: aiomqtt.Client | None = None
        self._stack = contextlib.AsyncExitStack()
        self._task: asyncio.Task[None] | None = None

    @property
    def seq(self) -> int:
        """The last seq used (settable: as after a reboot that kept a higher mark)."""
        return int(self.core.seq)

    @seq.setter
    def seq(self, value: int) -> None:
        self.core.seq = value

    @property
    def book(self) -> device.Book:
        return self.core.book

    def topic(self, leaf: str) -> str:
        return proto.device_topic(self.centre, self.dev, leaf)

    async def __aenter__(self) -> SimDevice:
        will_topic, will = self.core.will()
        self._client = aiomqtt.Client(
            # With an account, the client id is the username: brokers with the fleet's
            # rules (hub/fleet/acl.py) require it.
            self.host, self.port, identifier=self.username or f"sim-{self.centre}-{self.dev}",
            username=self.username, password=self.password, keepalive=10, socket_options=NO_DELAY,
            will=aiomqtt.Will(will_topic, will, qos=1, retain=True),
            clean_session=False if self.persistent else None)
        await self._stack.enter_async_context(self._client)
        self._task = asyncio.create_task(self._read(), name=f"sim-{self.dev}")
        await self._do(self.core.connect(now_ms()))  # subscribe, then the birth
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            await self.publish_status("disconnected")
        if self._task is not None:
            self._task.cancel()
        with contextlib.suppress(Exception):
            await self._stack.aclose()

    async def publish_status(self, state: str, **extra: Any) -> None:
        await self._pub(self.core.status(state, now_ms(), **extra))

    async def birth(self, **extra: Any) -> None:
        await self.publish_status("ready", **extra)

    async def send(self, typ: str, timeout: float = 10.0, retry: float = RETRY_AFTER,
                   **fields: Any) -> dict[str, Any]:
        """Send one event and wait for the hub's answer; raises DeviceError on `err`,
        TimeoutError without one, aiomqtt.MqttError when the connection is gone."""
        acts = self.core.event(typ, now_ms(), int(timeout * 1000), None, int(retry * 1000),
                               **fields)
        return await self._answer(acts)

    async def send_raw(self, payload: bytes, seq: int, timeout: float = 10.0,
                       retry: float = RETRY_AFTER) -> dict[str, Any]:
        """These exact bytes as event `seq` (the counter never stays below it)."""
        return await self._answer(self.core.send(seq, payload, now_ms(), int(timeout * 1000),
                                                 int(retry * 1000)))

    async def _answer(self, acts: list[Any]) -> dict[str, Any]:
        seq = acts[0][1]
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting[seq] = fut
        try:
            # A dead link is the caller's to handle (reconnect: fault_hub), so MQTT errors
            # are not retried here, unlike on a node that reconnects by itself.
            reply = await await_answer(self.core, acts, self._publish_event, fut, retry_on=())
        finally:
            self._waiting.pop(seq, None)
        if reply is None:
            raise TimeoutError(f"{self.dev}: no answer to seq {seq}")
        if reply[0] == device.ERR:
            raise DeviceError(reply[1])
        return reply[1]

    async def take(self, item: str, prefix: str, timeout: float = TAKE_TIMEOUT) -> dict[str, Any]:
        """A press on a button box: the hub's `res`, or, when none comes within `timeout`,
        an offline ticket `{"ticket": number, "offline": True}` (see the module doc).
        DeviceError on the hub's `err`, or "no_numbers" when the blocks are used up."""
        seq = self.core.next_seq()
        acts = self.core.event("take", now_ms(), int(timeout * 1000), seq, item=item)
        with contextlib.suppress(TimeoutError):
            return await self._answer(acts)
        # Recorded as served before anything else can run: a late print is refused.
        number = self.book.issue(prefix, item, time.time(), seq)
        if number is None:
            raise DeviceError({"code": "no_numbers", "msg": f"no offline {prefix} numbers"})
        return {"ticket": number, "offline": True}

    async def submit_offline(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The offline tickets join the hub's queue, oldest first; the hub's replies (an
        `err` such as duplicate_number after a lost reply is final, as on the box)."""
        replies = []
        while (fields := self.book.submission()) is not None:
            try:
                replies.append(await self.send("take", timeout, **fields))
            except DeviceError as e:
                replies.append(e.reply)
            self.book.done(fields["number"])
        return replies

    async def next_command(self, typ: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next command of this type, passing over others (blocks, shows, rebirths)."""
        async with asyncio.timeout(timeout):
            while True:
                cmd = await self.commands.get()
                if cmd.get("type") == typ:
                    return cmd

    async def publish(self, leaf: str, payload: bytes) -> None:
        """Any bytes on one of this device's topics (tests: malformed events, raw acks)."""
        assert self._client is not None
        await self._client.publish(self.topic(leaf), payload, qos=1)

    async def _publish_event(self, payload: bytes) -> None:
        assert self._client is not None
        await self._client.publish(self.core.t_evt, payload, qos=1)

    async def _pub(self, a: tuple[Any, ...]) -> None:
        assert self._client is not None
        await self._client.publish(a[1], a[2], qos=1, retain=a[3])

    async def _read(self) -> None:
        # When the connection goes, senders time out and say so; nothing to raise here.
        with contextlib.suppress(aiomqtt.MqttError):
            await self._read_messages()

    async def _read_messages(self) -> None:
        assert self._client is not None
        async for message in self._client.messages:
            try:
                acts = self.core.message(message.topic.value,
                                         bytes(message.payload),  # type: ignore[arg-type]
                                         now_ms())
            except proto.ProtocolError as e:
                log.warning("%s: bad message on %s: %s", self.dev, message.topic, e.msg)
                continue
            await self._do(acts or ())

    async def _do(self, acts: Any) -> None:
        assert self._client is not None
        for a in acts:
            tag = a[0]
            if tag == device.PUB:
                await self._pub(a)
            elif tag == device.SUB:
                await self._client.subscribe(a[1], qos=1)
            elif tag == device.ERROR:
                self.errors.append(a[1])
            elif tag == device.REPLY:
                fut = self._waiting.get(a[1])
                if fut is not None and not fut.done():
                    fut.set_result((a[2], a[3]))
            elif tag == device.RUN:
                self._record(a[1])
                self._apply(a[1])
                await self.commands.put(a[1])
                await self._do(self.core.done(a[1]["id"], True))
            elif tag == device.APPLIED:  # rebirth: ow_device published the birth
                self._record(a[1])
                await self.commands.put(a[1])
            elif tag == device.REFUSED:  # a late print for a press served offline
                self._record(a[1])
                await self.refusals.put(a[1])

    def _record(self, cmd: dict[str, Any]) -> None:
        self.applied[cmd["id"]] = cmd
        while len(self.applied) > RECENT_IDS:  # bounded, as on a board
            self.applied.popitem(last=False)

    def _apply(self, cmd: dict[str, Any]) -> None:
        typ = cmd["type"]
        if typ == "print":
            self.printed.append(cmd)
        elif typ == "show":
            self.shown = cmd
        elif typ == "block":
            # One day only (a SimDevice lives for one run): the pointers never restart.
            self.book.set_blocks(cmd["blocks"], "", cmd.get("head", ""))
