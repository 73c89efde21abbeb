# One window's state as the hub publishes it: the retained win/{n}/display topic plus the
# `show` commands sent on birth and resync, both compared against one stored rev
# (protocol 4.5). Used by the window LED board and the keypad.

import asyncio

import ow_protocol as P


class WindowState:
    def __init__(self, cfg, link):
        self.window = cfg["window"]
        self.rev = -1
        self.shown = None  # the latest display message
        self.new_call = False  # set with each new call (or recall), cleared by the reader
        self.changed = asyncio.Event()
        link.follow(P.display_topic(cfg["centre"], self.window), self._on_display)
        link.on_command("show", self._on_show)

    @property
    def state(self):
        return self.shown["state"] if self.shown else None

    async def _on_display(self, payload, retained):
        if payload:
            self.apply(P.decode("display", payload))

    async def _on_show(self, msg, received):
        self.apply(msg)
        return True, None

    def apply(self, msg):
        if msg.get("window") != self.window or msg["rev"] < self.rev:
            return  # another window's, or older than what we have
        old = self.shown
        if msg["rev"] == self.rev and old is not None and _same(old, msg):
            return  # the same state republished (hub restart, retained plus show)
        self.new_call = old is not None and msg["state"] == "calling" and msg["rev"] > self.rev
        self.rev = msg["rev"]
        self.shown = msg
        self.changed.set()


def _same(a, b):
    return all(a.get(k) == b.get(k) for k in ("state", "ticket", "text"))
