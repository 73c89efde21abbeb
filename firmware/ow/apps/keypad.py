# Clerk keypad: call next, recall, skip, transfer, pause (pause/resume toggle) and help
# (summons a back-office specialist). Each key sends one event and shows the hub's verdict
# on the LEDs: "ok" for done, "err" (and a low beep) for refused, "busy" while waiting.

from ow import ui
from ow.window import WindowState

KEYS = ("call", "recall", "skip", "transfer", "pause", "help")


class App:
    def __init__(self, cfg, board, link, tasks):
        self.board, self.link, self.tasks = board, link, tasks
        self.cfg = cfg
        self.win = WindowState(cfg, link)
        self.buttons = ui.board_buttons(board)

    def start(self):
        self.tasks.start(self.buttons.scan())
        self.tasks.start(self._keys())

    async def _keys(self):
        while True:
            key = await self.buttons.next()
            await self._press(key)

    async def _press(self, key):
        board, link = self.board, self.link
        if not link.online():
            # Never queue a call for later: a clerk who saw nothing happen presses again.
            board.emit("key", key=key, result="offline")
            self.tasks.start(ui.flash(board.leds, "err", 150, 3))
            return
        busy = board.leds.get("busy") if board.leds else None
        if busy is not None:
            busy.value(1)
        try:
            if key == "call" and self.win.state == "closed":
                # The clerk's first call of the shift opens the window.
                reply = await link.event("open", clerk=self.cfg.get("clerk", ""))
                if reply is not None and reply[0] == "err" and reply[1]["code"] != "already_open":
                    await self._verdict(key, "open", reply)
                    return
            typ, fields = self._event(key)
            await self._verdict(key, typ, await link.event(typ, **fields))
        finally:
            if busy is not None:
                busy.value(0)

    def _event(self, key):
        if key == "pause":
            return ("resume" if self.win.state == "paused" else "pause"), {}
        if key == "transfer":
            to = self.cfg.get("transfer_to")  # the window provisioning names for hand-overs
            return "transfer", ({"to_window": to} if to else {})
        return key, {}

    async def _verdict(self, key, typ, reply):
        board = self.board
        if reply is None:
            board.emit("key", key=key, event=typ, result="timeout")
            self.tasks.start(ui.flash(board.leds, "err", 150, 3))
        elif reply[0] == "res":
            board.emit(
                "key",
                key=key,
                event=typ,
                result="ok",
                ticket=reply[1].get("ticket"),
                state=reply[1].get("state"),
            )
            self.tasks.start(ui.flash(board.leds, "ok", 300))
        else:
            board.emit("key", key=key, event=typ, result="err", code=reply[1]["code"])
            if board.buzzer is not None:
                self.tasks.start(board.buzzer.beep(440, 150))
            self.tasks.start(ui.flash(board.leds, "err", 300, 2))
