# (MicroPython code: no contextlib, asyncio.TimeoutError is not the builtin,
#  %-formatting is the cheap option on small boards.)
# Pure unit checks (no network): encoding helpers and the bounded queue.
import json

import owmqtt
from owmqtt import MQTTClient

res = {"ev": "units"}

lens = []
for n in (0, 127, 128, 16383, 16384, 2097151, 2097152, 268435455):
    b = bytearray()
    owmqtt._put_len(b, n)
    lens.append([n, list(b)])
res["lens"] = lens

c = MQTTClient(
    {
        "client_id": "u1",
        "queue_len": 3,
        "user": "u",
        "password": "p",
        "keepalive": 30,
        "will": ("w/t", b"bye", True, 1),
    }
)
res["connect"] = list(c._connect_packet())
for i in range(5):
    c._enqueue("q/%d" % i, b"", False)
res["queue"] = [t for t, p, r in c._q]
res["dropped"] = c.stats["dropped_msgs"]
print(json.dumps(res))
