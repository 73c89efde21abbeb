# ruff: noqa: B007
# (MicroPython code: no contextlib, asyncio.TimeoutError is not the builtin,
#  %-formatting is the cheap option on small boards.)
# A MemoryError inside the receive path must cause a logged, counted,
# clean reconnect; the persistent session then redelivers the QoS 1 message.
# Ends with a clean disconnect(), which must suppress the last will.
import asyncio
import json
import os

from owmqtt import MQTTClient

cfg = json.loads(os.getenv("OW_CFG"))
cfg["will"] = ("mem/will", b"dead", False, 1)


def emit(ev, **kw):
    kw["ev"] = ev
    print(json.dumps(kw))


async def main():
    c = MQTTClient(cfg)
    orig = c._read_publish
    calls = [0]

    async def flaky(first, n):
        calls[0] += 1
        if calls[0] == 1:
            raise MemoryError
        return await orig(first, n)

    c._read_publish = flaky  # instance attribute shadows the method
    await c.connect(timeout=5)
    await c.subscribe("mem/in", 1)
    emit("ready")
    async for topic, payload, retained in c.messages():
        emit("msg", topic=topic, payload=payload.decode(), stats=c.stats)
        break
    await c.disconnect()
    emit("bye", up=c.up.is_set())


asyncio.run(main())
