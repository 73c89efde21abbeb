"""DirectLink (hub/mqtt/direct.py) over a real Mosquitto: how what paho queues gets written.

paho asks for a writer when it queues a packet; aiomqtt schedules `loop.add_writer` with
`call_soon_threadsafe`, and a read that finds the connection reset in the same turn closes
the socket first: asyncio then logs `OSError: [Errno 9] Bad file descriptor` with a
traceback (seen in test_storage_faults' frozen broker). The link's hook checks the socket
when the loop runs it. The link builds its QoS 1 packets itself and takes their PUBACKs
before paho does (hub/mqtt/direct.py); a batch's messages are written at once by
`flush`; what nobody flushes goes out through the watched socket, and a writer is not left
watching once everything is written (it would fire on every turn of the loop).
"""

import asyncio
import socket

import aiomqtt
import paho.mqtt.client as paho
import pytest

from onewindow.hub.devices import Publish
from onewindow.hub.mqtt.direct import DirectLink, publish_packet


@pytest.mark.parametrize("protocol", [paho.MQTTv311, paho.MQTTv5])
@pytest.mark.parametrize("size", [0, 1, 100, 127 - 29, 128, 16_383, 16_384, 2_097_152])
@pytest.mark.parametrize("retain", [False, True])
def test_the_publish_packet_is_pahos_own(protocol: paho.MQTTProtocolVersion, size: int,
                                         retain: bool) -> None:
    """The packet the link builds is byte for byte the one paho's publish queues (every
    length of the remaining-length field: 1 to 4 bytes)."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=protocol)
    client._sock = socket.socket()  # type: ignore[assignment]  # never written: queued only
    client.on_socket_register_write = lambda *_: None
    try:
        payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
        info = client.publish("ow/c1/win/12/display", payload, 1, retain)
        queued = client._out_packet.popleft()["packet"]
        assert publish_packet(b"ow/c1/win/12/display", payload, info.mid, retain,
                              protocol == paho.MQTTv5) == bytes(queued)
    finally:
        client._sock.close()  # type: ignore[union-attr]


def _watched(loop: asyncio.AbstractEventLoop, fd: int) -> bool:
    try:
        return bool(loop._selector.get_key(fd).events & 2)  # type: ignore[attr-defined]
    except KeyError:
        return False


async def test_a_writer_asked_for_a_socket_closed_meanwhile_is_dropped_quietly(mosquitto):
    loop = asyncio.get_running_loop()
    errors: list[dict] = []
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="direct-test") as client:
        link = DirectLink(client)
        hook = link._paho.on_socket_register_write
        a, b = socket.socketpair()
        try:
            assert link.publish(Publish("ow/direct-test/x", b"1"))  # paho has a packet
            hook(link._paho, None, a)  # paho asks; the loop has not run the request yet
            a.close()  # ... and the connection is gone before it does
            for _ in range(3):
                await asyncio.sleep(0)
            assert errors == []
            assert await link.settle(5)  # the real socket's writer sent the packet
        finally:
            b.close()
            a.close()
    assert errors == []


async def test_published_messages_go_out_flushed_or_through_the_watched_socket(mosquitto):
    loop = asyncio.get_running_loop()
    errors: list[dict] = []
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="direct-test") as client, \
            aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="direct-sub") as sub:
        await sub.subscribe("ow/direct-test/#", qos=1)
        link = DirectLink(client)
        paho = link._paho
        fd = paho.socket().fileno()  # type: ignore[union-attr]

        # Not flushed: the loop watches the socket a turn later and its writer sends it,
        # then stops watching.
        assert link.publish(Publish("ow/direct-test/a", b"1"))
        assert paho.want_write() and not _watched(loop, fd)
        assert await link.settle(5)
        assert not paho.want_write() and not _watched(loop, fd)

        # Flushed: written at once, before the loop turns; the watch paho asked for finds
        # nothing left to write and does not watch.
        assert link.publish(Publish("ow/direct-test/b", b"2"))
        assert link.publish(Publish("ow/direct-test/c", b"3"))
        link.flush()
        assert not paho.want_write()
        for _ in range(3):
            await asyncio.sleep(0)
        assert not _watched(loop, fd)
        assert await link.settle(5)

        # paho asking from another thread (as it does while connecting): the same watch.
        assert link.publish(Publish("ow/direct-test/d", b"4"))
        paho._registered_write = False  # type: ignore[attr-defined]  # asked again, there
        await asyncio.to_thread(paho._call_socket_register_write)  # type: ignore[attr-defined]
        assert await link.settle(5)
        assert not paho.want_write() and not _watched(loop, fd)

        got = []
        async with asyncio.timeout(5):
            async for m in sub.messages:
                got.append(m.payload)
                if len(got) == 4:
                    break
        assert got == [b"1", b"2", b"3", b"4"]  # in order, each once
    assert errors == []
