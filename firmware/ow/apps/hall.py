# Hall board: the latest calls, newest first and highlighted (inverted bar), the newest
# blinking briefly when it arrives. The hub's retained hall/calls message is the state.

import asyncio

import ow_protocol as P
from micropython import const

from ow import ui

_BLINKS = const(3)
_BLINK_MS = const(300)


class App:
    def __init__(self, cfg, board, link, tasks):
        self.board, self.link, self.tasks = board, link, tasks
        fb = board.fb
        self.rows = cfg.get("hall_rows") or max(1, fb.height // 16)
        self.rev = -1
        self.calls = None
        self.new_call = False
        self.changed = asyncio.Event()
        link.follow(P.hall_topic(cfg["centre"]), self._on_hall)

    def start(self):
        self.tasks.start(self._render())

    async def _on_hall(self, payload, retained):
        if not payload:
            return
        msg = P.decode("hall", payload)
        if msg["rev"] < self.rev or (msg["rev"] == self.rev and self.calls is not None):
            return
        calls = [(c.get("ticket", "?"), c.get("window", 0)) for c in msg["calls"][: self.rows]]
        self.new_call = self.calls is not None and calls[:1] != self.calls[:1] and bool(calls)
        self.rev = msg["rev"]
        self.calls = calls
        self.changed.set()

    async def _render(self):
        while True:
            await self.changed.wait()
            self.changed.clear()
            calls, call = self.calls, self.new_call
            self.new_call = False
            self._draw(calls, True)
            if call:
                for _ in range(_BLINKS):
                    if await self._wait_change(_BLINK_MS):
                        break
                    self._draw(calls, False)
                    if await self._wait_change(_BLINK_MS):
                        break
                    self._draw(calls, True)

    def _draw(self, calls, highlight):
        fb = self.board.fb
        fb.fill(0)
        h = fb.height // self.rows
        lines = []
        for i, (ticket, window) in enumerate(calls):
            y = i * h
            line = "%-5s -> %2d" % (ticket, window)
            lines.append(line)
            colour = 1
            if i == 0 and highlight:
                fb.fill_rect(0, y, fb.width, h, 1)
                colour = 0
            ui.text_centre(fb, line, y + (h - ui.FONT) // 2, colour)
        self.board.emit("draw", rev=self.rev, lines=lines, lit=highlight)
        fb.show()

    async def _wait_change(self, ms):
        return await ui.wait_event(self.changed, ms)
