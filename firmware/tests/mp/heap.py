# ruff: noqa: RUF059
# (MicroPython code: no contextlib, asyncio.TimeoutError is not the builtin,
#  %-formatting is the cheap option on small boards.)
# Heap check: publish to our own topic and receive it back, many times; the
# allocated heap after gc.collect() must not keep growing.
import asyncio
import gc
import json
import os

from owmqtt import MQTTClient

cfg = json.loads(os.getenv("OW_CFG"))
N = cfg.pop("rounds", 1000)


async def main():
    c = MQTTClient(cfg)
    await c.connect()
    topic = "heap/" + cfg["client_id"]
    await c.subscribe(topic, 1)
    it = c.messages()
    res = {"ev": "heap"}
    for i in range(1, N + 1):
        await c.publish(topic, b"payload-%d" % i, qos=1)
        t, p, r = await it.__anext__()
        assert p == b"payload-%d" % i, (p, i)
        if i in (100, N):
            gc.collect()
            res["at%d" % i] = gc.mem_alloc()
    res["stats"] = c.stats
    print(json.dumps(res))
    await c.disconnect()


asyncio.run(main())
