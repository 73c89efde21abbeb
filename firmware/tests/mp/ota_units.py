# (MicroPython code: no contextlib, %-formatting is the cheap option on small boards.)
# The device side of OTA without a network: RSA signature checks (cases made by CPython's
# cryptography, passed in OW_CFG) and the boot loader's state machine on a scratch "flash".
import binascii
import json
import os
import time

from ow import ota_fetch as ota

cfg = json.loads(os.getenv("OW_CFG"))
res = {"ev": "ota_units"}

# ---- signatures -------------------------------------------------------------------------
out = []
t0 = time.ticks_ms()
for case in cfg["sigs"]:
    digest = binascii.unhexlify(case["digest"])
    sig = binascii.a2b_base64(case["sig"])
    out.append(ota.verify_sig(digest, sig, case["key"]))
res["verify_ms"] = time.ticks_diff(time.ticks_ms(), t0) // len(cfg["sigs"])
res["sigs"] = out

# ---- the loader ---------------------------------------------------------------------------
with open(cfg["main"]) as f:
    src = f.read()
loader = {"__name__": "loader"}
exec(src[: src.rindex("main()")], loader)  # everything but the call that boots
boot = loader["boot"]
root = cfg["root"]


def put(path, text):
    with open(root + "/" + path, "w") as f:
        f.write(text)


def get(path):
    try:
        with open(root + "/" + path) as f:
            return f.read()
    except OSError:
        return None


def reset(dirs, state):
    for d in ("app", "prev", "next"):
        ota.rmtree(root + "/" + d)
    for d in dirs:
        os.mkdir(root + "/" + d)
        put(d + "/v", d)
    put("ota.json", json.dumps(state))


cases = {}
# A power cut after app -> prev, before next -> app: the next boot finishes the swap.
reset(("prev", "next"), {"state": "staged", "version": "2", "prev": "1"})
app, trial = boot(root)
cases["cut_mid_swap"] = [get("app/v"), get("prev/v"), trial, json.loads(get("ota.json"))]
# ...and that trial boot never said healthy: the boot after rolls back to prev.
app, trial = boot(root)
cases["rollback"] = [get("app/v"), get("prev/v"), trial, json.loads(get("ota.json"))]
# A power cut after the swap, before ota.json said trial: boot the new version on trial.
reset(("app", "prev"), {"state": "staged", "version": "2", "prev": "1"})
app, trial = boot(root)
cases["cut_after_swap"] = [get("app/v"), get("prev/v"), trial]
# No prev (the first update of a source-tree board): a rollback leaves no app/ at all.
reset(("app",), {"state": "trial", "version": "2", "prev": "1", "tries": 1})
app, trial = boot(root)
cases["rollback_to_base"] = [app, get("app/v"), trial]
# A healthy version stays.
reset(("app", "prev"), {"state": "ok", "version": "2"})
app, trial = boot(root)
cases["ok"] = [get("app/v"), trial, app == root + "/app"]
res["loader"] = cases
print(json.dumps(res))
