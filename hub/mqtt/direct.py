"""The hub's call path through its aiomqtt client, without aiomqtt's per-message tasks.

aiomqtt (2.5.1, pinned with paho-mqtt 2.2.0 in pyproject.toml) wraps each incoming
message in a task and an `asyncio.wait` (its iterator), and each publish in a task and an
Event waiting for the PUBACK. Measured in the hub under tools/bench/bench_hub.py (issue 14): a
message took three turns of the loop between paho reading it and the hub handling it, and
a call's three publishes (reply, display, hall) another turn before paho had them; ~0.25 ms
of CPU per call went to those tasks, a do-nothing relay needing 0.6 ms in all. Here the
hub takes messages from aiomqtt's own queue as they come, and hands each publish to paho at
once, in order, when its batch is committed; acknowledgements are followed by message id.
Both reach into aiomqtt's client (`_queue`, `_client`, `_disconnected`, and its socket
write hook, replaced here: see `_register_write`): a version bump
must be checked against them (hub/tests/test_hub_mqtt.py exercises every path).

What a batch publishes is written at once when its handler is done (`flush`), in one
send() with the PUBACKs paho queued for the batch's messages. Before, the hook asked the
loop to watch the socket (a wake-up byte through the loop's self-pipe, then an epoll add
and, once written, an epoll delete) and the write came a turn or two later, after
whatever else was ready: a slice of the wait forecast's refresh, a live view's work
(measured in tools/bench/bench_hub.py, issue 14). Anything not flushed (a timer's publish,
paho's pings) still goes out through the watched socket.

A QoS 1 publish is built here and queued straight into paho's write queue, and its PUBACK
is taken here, before paho decodes it: paho's `publish` (an MQTTMessage, a message info
with a lock and a condition, its own tracking for a resend this link does itself) and its
PUBACK decoding (a reason code and a properties object for MQTT 3.1.1 too) cost ~5x what
they carry, twice per call (a reply and a display; measured in tools/bench/bench_hub.py,
issue 14). This link keeps what the broker has not acknowledged (`unacknowledged`), and
the runner sends it again after a reconnect, as before: paho's own resend never applied,
the hub connects a new client each session. Anything else (QoS 0, a message id paho
still tracks) goes through paho's `publish`.
"""

from __future__ import annotations

import asyncio
import logging
import select
import threading
from typing import Any

import aiomqtt
import paho.mqtt.client as paho

from ..devices import Publish

log = logging.getLogger("onewindow.hub")


# paho's packet types (the high nibble of an MQTT fixed header)
_PUBLISH, _PUBACK, _DISCONNECT = 0x30, 0x40, 0xE0


def publish_packet(topic: bytes, payload: bytes, mid: int, retain: bool,
                   v5: bool = False) -> bytes:
    """An MQTT PUBLISH packet, QoS 1 (MQTT 3.1.1 section 3.3; v5: an empty property
    list after the message id)."""
    n = 2 + len(topic) + 2 + (1 if v5 else 0) + len(payload)
    head = bytearray((_PUBLISH | 0x02 | (1 if retain else 0),))
    while True:  # the remaining length, 7 bits a byte, least significant first
        digit, n = n & 0x7F, n >> 7
        head.append(digit | 0x80 if n else digit)
        if not n:
            break
    return b"".join((head, len(topic).to_bytes(2, "big"), topic, mid.to_bytes(2, "big"),
                     b"\x00" if v5 else b"", payload))


def _one_write(client: paho.Client) -> None:
    """Everything paho has queued to write, as one buffer: paho sends each packet with its
    own send(), and a call's PUBACK, reply and display were three segments (three
    syscalls here, three wake-ups of the broker). Left alone when a packet needs paho's
    handling once written: a QoS 0 publish (its callback) or a DISCONNECT. The merged
    packet is a PUBACK to paho, which does nothing for one once sent; QoS 1 publishes are
    tracked in paho's `_out_messages`, not by their packet, so their acknowledgements and
    their resending after a reconnect are paho's as before."""
    queue = client._out_packet
    if len(queue) < 2:
        return
    for packet in queue:
        kind = packet["command"] & 0xF0
        if kind == _DISCONNECT or (kind == _PUBLISH and packet["qos"] == 0):
            return
    data = b"".join(bytes(p["packet"][p["pos"]:]) for p in queue)
    queue.clear()
    queue.append({"command": _PUBACK, "mid": 0, "qos": 0, "pos": 0, "to_process": len(data),
                  "packet": data, "info": None})


class DirectLink:
    """One connected aiomqtt client's messages in, publishes out."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.queue: asyncio.Queue[aiomqtt.Message] = client._queue
        self._paho: paho.Client = client._client
        self._disconnected: asyncio.Future[None] = client._disconnected
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()  # the loop's: paho may call hooks from another
        self._inflight: dict[int, Publish] = {}  # message id -> publish not acknowledged
        self._settled = asyncio.Event()  # set when nothing is in flight
        self._settled.set()
        chained = self._paho.on_publish  # aiomqtt's: its own publishes wait on it

        def on_publish(client: paho.Client, userdata: Any, mid: int, *rest: Any) -> None:
            if chained is not None:
                chained(client, userdata, mid, *rest)
            if self._inflight.pop(mid, None) is not None and not self._inflight:
                self._settled.set()

        self._paho.on_publish = on_publish
        self._paho.on_socket_register_write = self._register_write
        self._v5 = self._paho._protocol == paho.MQTTv5
        handle_ack = self._paho._handle_pubackcomp

        def pubackcomp(cmd: str) -> paho.MQTTErrorCode:
            """A PUBACK of a message this link built is settled here; anything else is
            paho's (its own publishes, PUBCOMP)."""
            data = self._paho._in_packet["packet"]
            if cmd == "PUBACK" and len(data) >= 2:
                mid = int.from_bytes(data[:2], "big")
                if mid in self._inflight and mid not in self._paho._out_messages:
                    del self._inflight[mid]
                    if not self._inflight:
                        self._settled.set()
                    return paho.MQTT_ERR_SUCCESS
            return handle_ack(cmd)  # type: ignore[arg-type]

        self._paho._handle_pubackcomp = pubackcomp  # type: ignore[method-assign]
        self._paho.loop_read = self._loop_read  # type: ignore[method-assign]

    def _loop_read(self, max_packets: int = 1) -> paho.MQTTErrorCode:
        """paho's `loop_read` (aiomqtt's reader calls it once per readable socket): up to
        as many packets as are in flight either way, since each may bring one, but ours
        counted too; paho counts only what it tracks, and read one packet a turn of the
        loop once this link built the publishes (more CPU per call than paho's publish
        saved: tools/bench/bench_hub.py)."""
        client = self._paho
        n = len(self._inflight) + len(client._out_messages) + len(client._in_messages)
        for _ in range(max(n, 1)):
            if client._sock is None:
                return paho.MQTT_ERR_NO_CONN
            rc = client._packet_read()
            if rc > 0:
                return client._loop_rc_handle(rc)
            if rc == paho.MQTT_ERR_AGAIN:
                break
        return paho.MQTT_ERR_SUCCESS

    def _register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        """aiomqtt's hook, but the socket is checked when the loop runs the request: a
        read that found the connection reset in the same turn may have closed it since
        paho asked, and `add_writer` on a closed descriptor raises into the loop (EBADF,
        logged with a traceback); and only while paho still has something to write: a
        `flush` meanwhile wrote it, and a writer left watching then would fire on every
        turn. paho may call this from the connecting thread, hence call_soon_threadsafe
        there, as aiomqtt does; from the loop's own thread a plain call_soon (no
        self-pipe write), which runs after the processor's turn that the same read woke
        (paho hands a message to aiomqtt before it queues the PUBACK), so that turn's
        `flush` carries the PUBACK too."""
        loop = self._loop

        def watch() -> None:
            # -1 once closed: nothing left to write to
            if sock.fileno() >= 0 and client.want_write():
                loop.add_writer(sock.fileno(), self._write)

        if threading.get_ident() == self._thread:
            loop.call_soon(watch)
        else:
            loop.call_soon_threadsafe(watch)

    def _write(self) -> None:
        client = self._paho
        try:
            _one_write(client)
            client.loop_write()  # unwatches the socket once everything is written
        except Exception as exc:  # a broken pipe: the session is over
            if not self._disconnected.done():
                self._disconnected.set_exception(exc)

    def flush(self) -> None:
        """Write now everything paho has queued (a batch's replies and displays, the
        PUBACKs of its messages), in one send; what the socket does not take at once is
        left to the watched socket, as paho asks again."""
        if self._paho.want_write():
            self._write()

    def waiting(self) -> bool:
        """Whether a message waits: read and queued, or still in the socket (one select
        with no timeout, ~2 us: the live views ask between slices of their work)."""
        if not self.queue.empty():
            return True
        sock = self._paho.socket()
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):  # closed meanwhile: nothing to wait for
            return False
        return bool(readable)

    async def batch(self, limit: int) -> list[aiomqtt.Message]:
        """The next messages: one, waited for, and whatever else is queued (up to
        `limit`), without another turn of the loop."""
        batch = [await self.queue.get()]
        while len(batch) < limit and not self.queue.empty():
            batch.append(self.queue.get_nowait())
        return batch

    def pending(self) -> list[aiomqtt.Message]:
        """Every message received and not taken yet."""
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out

    async def closed(self) -> None:
        """Returns when the client disconnected as asked; raises MqttError when the
        connection was lost (as aiomqtt's message iterator does)."""
        await asyncio.wait({self._disconnected})
        if self._disconnected.exception() is not None:
            raise aiomqtt.MqttError("disconnected") from self._disconnected.exception()

    def publish(self, p: Publish) -> bool:
        """Hand `p` to paho now (written by `flush`, or at the loop's next turn, after any
        sent before); False if paho refused it (not connected)."""
        client = self._paho
        if (p.qos == 1 and client._sock is not None and p.topic
                and "+" not in p.topic and "#" not in p.topic):  # else paho says why not
            mid = client._mid_generate()
            if mid not in self._inflight and mid not in client._out_messages:
                packet = publish_packet(p.topic.encode(), p.payload, mid, p.retain, self._v5)
                client._packet_queue(_PUBLISH, packet, mid, 1)
                self._inflight[mid] = p
                self._settled.clear()
                return True
        info = client.publish(p.topic, p.payload, p.qos, p.retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            log.warning("publish to %s refused (%s)", p.topic, paho.error_string(info.rc))
            return False
        if p.qos:
            self._inflight[info.mid] = p
            self._settled.clear()
        return True

    async def settle(self, timeout: float) -> bool:
        """Until the broker acknowledged everything published (False: not in `timeout`)."""
        try:
            await asyncio.wait_for(self._settled.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def unacknowledged(self) -> list[Publish]:
        """What the broker has not acknowledged, in the order it was published."""
        return list(self._inflight.values())
