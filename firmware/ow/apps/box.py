# Button box: one debounced button per service item. Online, a press sends `take` and the
# hub answers with a `print` command carrying the whole ticket as ESC/POS bytes, which the
# box streams to its printer. When the hub is unreachable the box keeps serving from the
# number blocks the hub reserved for it (protocol 4.7): it prints a plain ticket itself and
# submits the ticket as `take` with `number` and `taken_at` once the hub is back.
#
# A take and its offline fallback are one request (one press, one ticket): when the hub
# did not answer take seq N in time, the box prints an offline number, remembers N as
# served offline, refuses a late `print` answering N (ack code "served_offline") and submits
# the offline ticket with `for_seq: N`, so a ticket the hub issued late for N is voided.
#
# Priority (爱心优先: residents 60 or older, disabled, pregnant): the config may name one
# button `priority_button` (a key as ui.board_buttons names it, e.g. "b3"; not an item
# button). Pressing it arms priority for `priority_arm_ms` (PRIORITY_ARM_MS) with the "busy"
# LED lit; the next item press within that time takes with priority "priority" and disarms;
# pressing it again, or the time running out, disarms. Offline, the box's own ticket says
# 爱心优先 / Priority and the book keeps the class, so the ticket joins as priority.

import asyncio
import json
import time
from binascii import a2b_base64

import ow_device as D
from drivers.printer import SIZE_4X, SIZE_NORMAL, Printer, alerts, ascii_bytes
from micropython import const

from ow import runtime, ui

_STATUS_EVERY_MS = const(15000)
_TAKE_TIMEOUT = 5.0  # s: longer than this and the resident gets an offline ticket
PRIORITY_ARM_MS = 10000  # a priority press applies to an item press this soon after it
PRIORITY = "priority"  # the take's priority class (protocol/README.md, take)
# 爱心优先 愛心優先 in GBK, in Kanji mode, bold, then "Priority": the offline ticket's mark
_PRIORITY_MARK = (b"\x1bE\x01\x1c&\xb0\xae\xd0\xc4\xd3\xc5\xcf\xc8 \x90\xdb\xd0\xc4\x83\x9e\xcf\xc8"
                  b"\x1c.\nPriority\n\x1bE\x00")


class OfflineBook(D.Book):
    """The box's offline book (ow_device.Book: blocks, pointers, unsubmitted tickets, the
    take seqs served offline) kept in flash, rewritten before every offline ticket is
    printed: a reboot never reissues a number, and no printed ticket is forgotten."""

    def __init__(self, path):
        self.path = path
        try:
            with open(path) as f:
                state = json.load(f)
            D.Book.__init__(self, state)
        except (OSError, ValueError, KeyError):
            D.Book.__init__(self)

    def save(self):
        runtime._write_atomic(self.path, json.dumps(self.state()))


class App:
    def __init__(self, cfg, board, link, tasks):
        self.board, self.link, self.tasks = board, link, tasks
        self.cfg = cfg
        self.items = cfg.get("buttons", [])
        self.offset = cfg.get("utc_offset_minutes", 480) * 60
        self.buttons = ui.board_buttons(board)
        self.prio_key = self._priority_key(cfg.get("priority_button"))
        self.arm_ms = cfg.get("priority_arm_ms", PRIORITY_ARM_MS)
        self.armed_at = None  # ticks_ms of the priority press while armed, else None
        self._arm_evt = asyncio.Event()
        self.printer = Printer(board.uart)
        self.book = OfflineBook(cfg.get("state_dir", ".") + "/box.json")
        link.core.book = self.book  # its served seqs: the link refuses their late prints
        self.resubmit = asyncio.Event()
        link.on_command("print", self._on_print)
        link.on_command("block", self._on_block)

    def start(self):
        self.tasks.start(self.buttons.scan())
        self.tasks.start(self._keys())
        self.tasks.start(self._submit())
        self.tasks.start(self._watch_printer())
        if self.prio_key is not None:
            self.tasks.start(self._disarm_on_time())

    # ---- residents pressing buttons ------------------------------------------------------
    async def _keys(self):
        while True:
            key = await self.buttons.next()
            if key == self.prio_key:
                self._arm(self.armed_at is None, "press")
                continue
            i = int(key[1:]) if key[1:].isdigit() else -1
            if 0 <= i < len(self.items):
                prio = None
                if self.armed_at is not None:
                    if time.ticks_diff(time.ticks_ms(), self.armed_at) < self.arm_ms:
                        prio = PRIORITY
                    self._arm(False, "take" if prio else "timeout")
                await self._take(self.items[i], prio)
            else:
                self.board.emit("take", key=key, result="unmapped")

    # ---- the priority button ---------------------------------------------------------------
    def _priority_key(self, key):
        """The configured priority button, or None (with a logged reason) when there is none
        or it cannot be one: not a button of this board, or an item's button."""
        if key is None:
            return None
        i = int(key[1:]) if key[1:].isdigit() else -1
        if key not in self.buttons.pins:
            why = "not_a_button"
        elif 0 <= i < len(self.items):
            why = "item_button"
        else:
            return key
        self.board.emit("config", key="priority_button", value=key, error=why)
        return None

    def _arm(self, on, why):
        self.armed_at = time.ticks_ms() if on else None
        leds = self.board.leds
        led = leds.get("busy") if leds else None
        if led is not None:
            led.value(1 if on else 0)
        self.board.emit("priority", armed=on, why=why)
        self._arm_evt.set()

    async def _disarm_on_time(self):
        """Disarms priority arm_ms after the press that armed it, unless used or cancelled."""
        evt = self._arm_evt
        while True:
            at = self.armed_at
            if at is None:
                await evt.wait()
            else:
                left = self.arm_ms - time.ticks_diff(time.ticks_ms(), at)
                if left <= 0:
                    self._arm(False, "timeout")
                else:
                    await ui.wait_event(evt, left)
            evt.clear()

    # ---- taking a ticket -------------------------------------------------------------------
    async def _take(self, spec, prio=None):
        board, link = self.board, self.link
        if await self._printer_alerts():
            # No ticket the resident cannot get: staff see the alert on the console.
            board.emit("take", item=spec["item"], result="printer", alerts=link.alerts)
            self.tasks.start(ui.flash(board.leds, "err", 300, 3))
            return
        seq = None
        if link.online():
            seq = link.core.next_seq()
            if prio:
                reply = await link.event("take", timeout=_TAKE_TIMEOUT, seq=seq,
                                         item=spec["item"], priority=prio)
            else:
                reply = await link.event("take", timeout=_TAKE_TIMEOUT, seq=seq, item=spec["item"])
            if reply is not None:
                ok = reply[0] == "res"
                board.emit(
                    "take",
                    item=spec["item"],
                    result="ok" if ok else "err",
                    ticket=reply[1].get("ticket"),
                    code=reply[1].get("code"),
                    priority=prio,
                )
                self.tasks.start(ui.flash(board.leds, "ok" if ok else "err", 300))
                return  # the ticket itself comes as a `print` command
        # No await from here until the book is saved: a late print for `seq` handled in
        # between would still be printed.
        await self._offline(spec, seq, prio)

    async def _offline(self, spec, for_seq=None, prio=None):
        board = self.board
        now = self.link.now()
        number = self.book.issue(spec["prefix"], spec["item"], now, for_seq, prio)
        if number is None:
            board.emit("take", item=spec["item"], result="no_numbers")
            self.tasks.start(ui.flash(board.leds, "err", 300, 3))
            return
        board.emit("take", item=spec["item"], result="offline", ticket=number, priority=prio)
        head = a2b_base64(self.book.head) if self.book.head else b"\x1b@"
        body = _plain_ticket(number, spec["item"], now + self.offset, prio)
        await self._print(number, head + body)
        self.resubmit.set()

    async def _submit(self):
        """Offline tickets join the hub's queue, oldest first, as soon as it is back."""
        link, book = self.link, self.book
        while True:
            if not book.pending or not link.online():
                await ui.wait_event(self.resubmit, 500)
                self.resubmit.clear()
                continue
            fields = book.submission()
            number = fields["number"]
            reply = await link.event("take", **fields)
            if reply is None:
                await asyncio.sleep_ms(1000)
                continue
            # An err is final (e.g. duplicate_number: it is already in after a lost reply).
            book.done(number)
            self.board.emit("joined", ticket=number, result=reply[0], code=reply[1].get("code"),
                            priority=fields.get("priority"))

    # ---- the printer -----------------------------------------------------------------------
    async def _on_print(self, msg, received):
        # (A late print for a press served offline never gets here: the link refuses it.)
        if "escpos" not in msg:
            return False, "no_escpos"
        stop = await self._printer_alerts()
        if stop:
            return False, stop[0]
        if runtime.expired(msg, received):
            return False, "expired"
        # Streamed through the printer's own buffer: the ticket is never copied whole.
        n = await self.printer.write_b64(msg["escpos"])
        self.board.emit("printed", ticket=msg["ticket"], bytes=n)
        return True, None

    async def _on_block(self, msg, received):
        ts = msg.get("ts") or self.link.now()
        t = time.localtime(int(ts + self.offset))
        self.book.set_blocks(msg["blocks"], "%04d-%02d-%02d" % t[:3], msg.get("head", ""))
        self.board.emit("block", day=self.book.day)
        return True, None

    async def _print(self, ticket, data):
        await self.printer.write(data)
        self.board.emit("printed", ticket=ticket, bytes=len(data))

    async def _printer_alerts(self):
        """Refresh the alerts in the birth; the ones that stop printing, or []."""
        found = alerts(await self.printer.status())
        await self.link.set_alerts(found)
        return [a for a in found if a != "paper_near_end"]

    async def _watch_printer(self):
        while True:
            await self._printer_alerts()
            await asyncio.sleep_ms(_STATUS_EVERY_MS)


def _plain_ticket(number, item, local_ts, prio=None):
    """An offline ticket's body in plain ESC/POS: big number, for a priority ticket its
    mark (爱心优先 愛心優先 / Priority), item id, time, cut. ASCII but for that fixed mark
    (the rest of the Chinese is in the hub's head); the number's size is reset in both
    character modes (drivers/printer.py), so nothing after it prints 4x4."""
    t = time.localtime(int(local_ts))
    return b"".join(
        (
            b"\x1ba\x01" + SIZE_4X + b"\x1bE\x01",  # centred; ESC E after ESC ! (bit 3)
            ascii_bytes(number),
            b"\n" + SIZE_NORMAL + b"\x1bE\x00\n",
            _PRIORITY_MARK if prio else b"",
            ascii_bytes(item),
            b"\n",
            ("%04d-%02d-%02d %02d:%02d\n" % t[:5]).encode(),
            b"\x1bd\x06\x1dV\x00",
        )
    )
