# (MicroPython code: no contextlib, asyncio.TimeoutError is not the builtin,
#  %-formatting is the cheap option on small boards.)
# Unit-level check of the full-jitter backoff delay of two clients.
import json

from owmqtt import MQTTClient

a = MQTTClient({"client_id": "board-a", "backoff_min": 0.5, "backoff_max": 30})
b = MQTTClient({"client_id": "board-b", "backoff_min": 0.5, "backoff_max": 30})
out = {"ev": "backoff", "a": [], "b": []}
for attempt in range(12):
    for _ in range(20):
        out["a"].append([attempt, a.backoff_delay(attempt)])
        out["b"].append([attempt, b.backoff_delay(attempt)])
print(json.dumps(out))
