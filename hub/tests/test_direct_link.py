"""DirectLink (hub/mqtt/direct.py) over a real Mosquitto: paho's request to watch its socket
for writing must not raise into the loop when the socket closed before the loop got to it.

paho asks for a writer when it queues a publish; aiomqtt schedules `loop.add_writer` with
`call_soon_threadsafe`, and a read that finds the connection reset in the same turn closes
the socket first: asyncio then logs `OSError: [Errno 9] Bad file descriptor` with a
traceback (seen in test_storage_faults' frozen broker). The link's hook checks the socket
when the loop runs it.
"""

import asyncio
import socket

import aiomqtt

from onewindow.hub.mqtt.direct import DirectLink


async def test_a_writer_asked_for_a_socket_closed_meanwhile_is_dropped_quietly(mosquitto):
    loop = asyncio.get_running_loop()
    errors: list[dict] = []
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="direct-test") as client:
        link = DirectLink(client)
        hook = link._paho.on_socket_register_write
        a, b = socket.socketpair()
        try:
            hook(link._paho, None, a)  # paho asks; the loop has not run the request yet
            a.close()  # ... and the connection is gone before it does
            for _ in range(3):
                await asyncio.sleep(0)
            assert errors == []

            c, d = socket.socketpair()
            try:  # an open socket is watched, as aiomqtt's own hook does
                hook(link._paho, None, c)
                for _ in range(3):
                    await asyncio.sleep(0)
                assert loop._selector.get_key(c.fileno()).events & 2  # EVENT_WRITE
                loop.remove_writer(c.fileno())
            finally:
                c.close()
                d.close()
        finally:
            b.close()
            a.close()
    assert errors == []
