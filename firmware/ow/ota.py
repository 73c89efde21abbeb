# (MicroPython code: no contextlib, asyncio.TimeoutError is not the builtin,
#  %-formatting is the cheap option on small boards.)
# Over-the-air updates, the device side (protocol/README.md 3.10; main.py is the loader).
#
# This resident part is small: it follows dev/{dev}/ota, reports the update state in the
# birth ("ota": trial | ok | rollback, alert "ota_rollback") and runs a new version's trial.
# An offer loads ow/ota_fetch.py, which checks, fetches, verifies, stages and resets.
#
# The trial ends well when the device has been connected to a ready hub, with no app crash,
# for ota_stable_s seconds (ota.json "ok", a new birth with "ota": "ok"); if that has not
# happened within ota_trial_s the board resets and the loader rolls back.

import asyncio
import json
import os
import time

import ow_protocol as P


def root():
    cwd = os.getcwd()
    return "" if cwd == "/" else cwd


def load_state():
    try:
        with open(root() + "/ota.json") as f:
            st = json.load(f)
        return st if isinstance(st, dict) else {}
    except (OSError, ValueError):
        return {}


def save_state(st):
    path = root() + "/ota.json"
    with open(path + ".tmp", "w") as f:
        json.dump(st, f)
    os.rename(path + ".tmp", path)


class Updater:
    # What the fetch (ow/ota_fetch.py) needs of this module, handed over with the updater
    # so that it does not import this module back.
    root = staticmethod(root)
    save_state = staticmethod(save_state)

    def __init__(self, cfg, board, link, fw):
        self.cfg = cfg
        self.board = board
        self.link = link
        self.fw = fw
        c, d = cfg["centre"], cfg["dev"]
        self.t_req = P.device_topic(c, d, "otareq")
        self.state = load_state()
        self.busy = None  # id of the offer being fetched
        self.want = -1  # chunk index awaited
        self.slot = [asyncio.Event(), None]  # type: list
        self.cancel = False
        self.stable_ms = int(cfg.get("ota_stable_s", 20) * 1000)
        self.trial_ms = int(cfg.get("ota_trial_s", 120) * 1000)
        self._since = None  # ticks_ms since when the link has been healthy
        s = self.state.get("state")
        if s in P.OTA_STATES:
            link.extra["ota"] = s
        if s == "rollback":
            link.sys_alerts.append("ota_rollback")
        link.follow(P.device_topic(c, d, "ota"), self._on_ota)

    # ---- trial of a freshly swapped version ------------------------------------------
    def unstable(self):
        """The app crashed: a trial's stable period starts again."""
        self._since = None

    async def trial(self):
        if self.state.get("state") != "trial":
            return
        self.board.emit("ota", state="trial", version=self.fw)
        t0 = time.ticks_ms()
        while True:
            now = time.ticks_ms()
            if not self.link.online():
                self._since = None
            elif self._since is None:
                self._since = now
            elif time.ticks_diff(now, self._since) >= self.stable_ms:
                break
            if time.ticks_diff(now, t0) >= self.trial_ms:
                self.board.emit("ota", state="unhealthy", version=self.fw)
                self.board.reset()  # the loader rolls back
                return
            await asyncio.sleep_ms(100)
        self.state = {"state": "ok", "version": self.fw}
        save_state(self.state)
        self.link.extra["ota"] = "ok"
        self.board.emit("ota", state="ok", version=self.fw)
        if self.link.mqtt.up.is_set():
            await self.link.birth()

    # ---- messages from the hub -------------------------------------------------------
    async def _on_ota(self, payload, retained):
        msg = P.decode("ota", payload)
        typ = msg["type"]
        if typ == "chunk":
            if msg["id"] == self.busy and msg["i"] == self.want and self.slot[1] is None:
                self.slot[1] = msg
                self.slot[0].set()
        elif typ == "cancel":
            if msg["id"] == self.busy:
                self.cancel = True
                self.slot[0].set()
        elif msg["id"] != self.busy:  # an offer; a repeat of the one being fetched is ignored
            if self.busy is not None or self.state.get("state") == "trial":
                await self.send("refused", msg["id"], code="busy")
            else:
                self.busy = msg["id"]
                # Deliberately lazy: the fetch's bytecode is loaded only while an update
                # is taken.
                from ow.ota_fetch import Fetch

                asyncio.create_task(Fetch(self).run(msg))

    async def send(self, typ, oid, **fields):
        fields["dev"] = self.cfg["dev"]
        fields["id"] = oid
        fields["type"] = typ
        await self.link.mqtt.publish(self.t_req, P.encode("otareq", fields))
