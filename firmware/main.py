# Board entry point and boot loader: `micropython firmware/main.py ow.json` on the unix port;
# on a board the provisioning tools put this file, /app and /ow.json on the flash.
#
# This file is rarely updated (an OTA bundle never replaces it), so it is small and uses only
# gc, os, sys and json. It also sets the heap's collection policy (below), for every version
# it boots. It picks the app folder and runs the update state machine kept in
# ota.json (written by ow/ota.py, read here):
#
#   staged  /next holds a verified new version: swap /app -> /prev, /next -> /app, then
#           boot it as a trial. Every step can be redone, so a power cut mid-swap is safe.
#   trial   the new version booted once and never said it was healthy (ow/ota.py writes
#           "ok" once it has been connected to a ready hub for a while): roll back, i.e.
#           /prev -> /app, and record "rollback" so the old version reports it.
#   ok | rollback | none: boot /app.
#
# Without /app (the source tree on the unix port, or an image from before /app existed) the
# import path is used as it is: that is the "factory" version a rollback can fall back to.
import gc
import json
import os
import sys

_TRIAL_BOOTS = 1  # boots a new version gets to say it is healthy
# Collect after every 16 KB allocated, not only when the heap is full. MicroPython allocates
# first-fit from the lowest free block and a collection sends the search back there: with
# rare collections each message's short-lived copies march up the heap, and whatever
# long-lived object is allocated meanwhile (a remembered command id, a display line) stays
# behind as an island in the free space. A TLS handshake needs one free block of ~16 KB.
# Measured on the 32-bit unix port, heap at an ESP32's 112 KB, firmware frozen, after 300
# calls: the box's largest free block 6.1 KB without this, 63 KB with it (68 KB at 4 KB).
# The cost is the collections: on the 64-bit unix port running the source tree (a 2 MB
# heap, the code in RAM) a call's p50 grows from ~11 ms to ~14 ms at 16 KB, ~21 ms at 4 KB.
_GC_EVERY = 16384


def _root():
    cwd = os.getcwd()
    return "" if cwd == "/" else cwd


def _is(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _rmtree(path):
    try:
        mode = os.stat(path)[0]
    except OSError:
        return
    if mode & 0x4000:
        for name in os.listdir(path):
            _rmtree(path + "/" + name)
        os.rmdir(path)
    else:
        os.remove(path)


def _load(path):
    try:
        with open(path) as f:
            st = json.load(f)
        return st if isinstance(st, dict) else {}
    except (OSError, ValueError):
        return {}


def _save(path, st):
    with open(path + ".tmp", "w") as f:
        json.dump(st, f)
    os.rename(path + ".tmp", path)


def _log(ev, **fields):
    fields["ev"] = ev
    print(json.dumps(fields))


def boot(root):
    """Advance the update state machine; returns (the app folder to run or None, whether
    this boot is a new version's trial)."""
    app, prev, nxt, state = root + "/app", root + "/prev", root + "/next", root + "/ota.json"
    st = _load(state)
    s = st.get("state")
    if s == "staged" and _is(nxt):
        if _is(app):
            _rmtree(prev)
            os.rename(app, prev)
        os.rename(nxt, app)
    if s == "staged":
        if _is(app):
            st["state"] = "trial"
            st["tries"] = 0
        else:  # nothing to boot: the stage vanished; keep the old state
            st = {"state": "ok", "version": st.get("prev")}
        s = st["state"]
    if s == "trial":
        if st.get("tries", 0) >= _TRIAL_BOOTS:
            _rmtree(app)
            if _is(prev):
                os.rename(prev, app)
            st = {"state": "rollback", "version": st.get("prev"), "failed": st.get("version")}
            _log("ota", state="rollback", failed=st["failed"], version=st["version"])
        else:
            st["tries"] = st.get("tries", 0) + 1
        _save(state, st)
    return (app if _is(app) else None), st.get("state") == "trial"


def _reset():
    try:
        import machine

        reset = getattr(machine, "reset", None)
        if reset is not None:
            reset()
    except ImportError:
        pass
    sys.exit(3)  # the unix port: the harness restarts the process, as a board would


def main():
    if hasattr(gc, "threshold"):
        gc.threshold(_GC_EVERY)
    root = _root()
    app, trial = boot(root)
    if app is not None:
        sys.path.insert(0, app)
        sys.path.insert(0, app + "/lib")
    cfg = sys.argv[1] if len(sys.argv) > 1 else "ow.json"
    try:
        from ow import runtime

        runtime.main(cfg)
    except Exception as e:
        if not trial:
            raise
        # A new version that cannot even start: reset, and the next boot rolls it back.
        sys.print_exception(e)
        _reset()


main()
