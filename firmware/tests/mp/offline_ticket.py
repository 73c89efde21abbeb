# The box's offline ticket body (ow.apps.box._plain_ticket) on the unix port: prints one
# JSON line with the bytes (hex) for test_offline_ticket.py to interpret on CPython.
import json
from binascii import hexlify

from ow.apps.box import _plain_ticket

cases = [["A901", "SOC-001", 1764900000], ["B902", "社保-1", 1764900060]]
out = [hexlify(_plain_ticket(n, item, ts)).decode() for n, item, ts in cases]
print(json.dumps({"ev": "tickets", "cases": cases, "hex": out}))
