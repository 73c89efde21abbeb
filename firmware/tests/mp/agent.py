# (MicroPython code: no contextlib, asyncio.TimeoutError is not the builtin,
#  %-formatting is the cheap option on small boards.)
# Test agent: connects with the config from $OW_CFG, subscribes to
# <pre>/in/#, echoes every message to <pre>/out/<rest> (QoS 1) and prints
# JSON lines describing what happens.
import asyncio
import json
import os

from owmqtt import MQTTClient, tls_context

cfg = json.loads(os.getenv("OW_CFG"))
pre = cfg.pop("prefix", "t")
outage_pub = cfg.pop("outage_pub", False)
hold_ms = cfg.pop("hold_ms", 0)  # a busy app: each message held this long before the next
will = cfg.get("will")
if cfg.get("ca"):  # TLS, trusting this CA (PEM), as a board's ow.json broker.ca
    cfg["ssl"] = tls_context(cfg.pop("ca"))
if will:
    cfg["will"] = (will[0], will[1].encode(), will[2], will[3])


def emit(ev, **kw):
    kw["ev"] = ev
    print(json.dumps(kw))


async def watch(c):
    n = 0
    while True:
        await c.up.wait()
        emit("up", stats=c.stats)
        await c.down.wait()
        emit("down", stats=c.stats)
        if outage_pub:
            n += 1
            # Published while the link is down: must arrive after reconnect.
            # Retained, so the peer sees it whether it subscribes before or
            # after our reconnect.
            asyncio.create_task(pub(c, pre + "/out/outage", "outage%d" % n, True))


async def pub(c, topic, msg, retain=False):
    await c.publish(topic, msg, retain=retain, qos=1)
    emit("puback", topic=topic)


async def main():
    c = MQTTClient(cfg)

    async def birth(cl):
        # Runs after every (re)connect + resubscribe, like the app's birth.
        await cl.publish(pre + "/status", b"up", retain=True, qos=1)
        emit("birth", connects=cl.stats["connects"])

    c.on_connect = birth
    await c.connect()
    await c.subscribe(pre + "/in/#", 1)
    asyncio.create_task(watch(c))
    emit("ready")
    async for topic, payload, retained in c.messages():
        if payload == b"stats":
            emit("stats", stats=c.stats)
            continue
        emit("msg", topic=topic, len=len(payload), retained=retained)
        if hold_ms:
            await asyncio.sleep_ms(hold_ms)  # the client reads on, into its buffer
        rest = topic[len(pre) + 4 :]
        asyncio.create_task(pub(c, pre + "/out/" + rest, payload))


asyncio.run(main())
