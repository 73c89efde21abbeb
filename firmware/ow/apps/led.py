# Window LED board: follows its window's retained display state (and the hub's `show`
# commands, compared against the same rev), draws the ticket number and window in ASCII
# with the board's own font and the hub-rendered Chinese line as a bitmap; blinks and
# chimes on every new call (a recall is a new call too).


from micropython import const

from ow import ui
from ow.window import WindowState

_BLINKS = const(3)
_BLINK_MS = const(250)
_SCROLL_MS = const(40)  # per pixel: about 25 px/s, readable on a hall-facing panel
_HOLD_MS = const(1500)  # pause at either end of a scroll
_LABELS = {"idle": "WINDOW %d", "paused": "PAUSED", "closed": "CLOSED"}
_SEG7 = {"idle": "    ", "paused": "P---", "closed": "C---"}


class App:
    def __init__(self, cfg, board, link, tasks):
        self.board, self.link, self.tasks = board, link, tasks
        self.window = cfg["window"]
        self.win = WindowState(cfg, link)
        self.changed = self.win.changed

    def start(self):
        self.tasks.start(self._render())

    # ---- drawing ---------------------------------------------------------------------
    async def _render(self):
        board = self.board
        while True:
            await self.changed.wait()
            self.changed.clear()
            msg, call = self.win.shown, self.win.new_call
            self.win.new_call = False
            if call and board.buzzer is not None:
                self.tasks.start(board.buzzer.chime())
            if board.seg7 is not None:
                await self._seg7(msg, call)
                continue
            bmp = _bitmap(msg)
            self._draw(msg, bmp, 0)
            if call and await self._blink(msg, bmp):
                continue
            if bmp is not None and bmp[1] > board.fb.width:
                await self._scroll(msg, bmp)

    def _draw(self, msg, bmp, x):
        fb = self.board.fb
        fb.fill(0)
        line = _ascii(msg, self.window)
        h = fb.height
        if bmp is None or h >= 8 + bmp[2]:
            if msg.get("ticket"):
                fb.text(msg["ticket"], 0, 0, 1)
                ui.text_right(fb, "->%2d" % self.window, 0)
            else:
                ui.text_centre(fb, line, 0)
        if bmp is not None:
            top = 8 + (h - 8 - bmp[2]) // 2 if h >= 8 + bmp[2] else 0
            fb.blit(bmp[0], -x, top)
        self.board.emit(
            "draw", text=line, state=msg["state"], rev=msg["rev"], ticket=msg.get("ticket"), x=x
        )
        fb.show()

    async def _blink(self, msg, bmp):
        """Blink the new call; True if a newer state interrupted it."""
        fb = self.board.fb
        for _ in range(_BLINKS):
            if await self._wait_change(_BLINK_MS):
                return True
            fb.fill(0)
            fb.show()
            if await self._wait_change(_BLINK_MS):
                return True
            self._draw(msg, bmp, 0)
        return False

    async def _scroll(self, msg, bmp):
        """Marquee for a line wider than the panel, until the state changes."""
        span = bmp[1] - self.board.fb.width
        while True:
            for x in range(0, span + 1, 2):
                if await self._wait_change(_HOLD_MS if x == 0 else _SCROLL_MS):
                    return
                self._draw(msg, bmp, x)
            if await self._wait_change(_HOLD_MS):
                return
            self._draw(msg, bmp, 0)

    async def _seg7(self, msg, call):
        seg = self.board.seg7
        text = "%-4s  %02d" % (
            msg.get("ticket") or _SEG7.get(msg["state"], "    "),
            self.window % 100,
        )
        seg.show_text(text)
        self.board.emit(
            "draw", text=text, state=msg["state"], rev=msg["rev"], ticket=msg.get("ticket"), x=0
        )
        if call:
            for _ in range(_BLINKS):
                if await self._wait_change(_BLINK_MS):
                    return
                seg.show_text("        ")
                if await self._wait_change(_BLINK_MS):
                    return
                seg.show_text(text)

    async def _wait_change(self, ms):
        return await ui.wait_event(self.changed, ms)


def _bitmap(msg):
    bmp = msg.get("bmp")
    return ui.bitmap(bmp) if bmp else None


def _ascii(msg, window):
    if msg.get("ticket"):
        return "%s -> %d" % (msg["ticket"], window)
    label = _LABELS.get(msg["state"], msg["state"].upper())
    return label % window if "%" in label else label
