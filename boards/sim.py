# sim.py - the unix-port board used by the tests (see firmware/README.md, "The sim board").
#
# Inputs come from a line-based TCP control server on 127.0.0.1:{sim.ctl_port}; outputs are
# JSON lines on stdout (emit) and files in {sim.out_dir}: fb.pbm (last frame) and
# printer.bin (every byte written to the printer UART).
#
# Control commands, each answered "ok\n" or "error <why>\n" once applied:
#   press NAME | release NAME     button NAME (as in board.buttons)
#   paper out|near|ok             printer roll sensor ("near": near-end, still printing)
#   cover open|closed             printer cover
#   heap                          collects garbage, emits {"ev": "heap", "alloc", "free",
#                                 "largest"}: bytes in use, free, and the largest free
#                                 block (what one allocation can still get)
#   crash                         sets board.crash_requested (an asyncio.Event); the
#                                 runtime polls it and raises inside the app
# Every command is echoed as {"ev": "ctl", "cmd": line, "reply": reply}.

import asyncio
import gc
import json
import os
import sys

import framebuf
import machine
from drivers.buzzer import Buzzer
from micropython import const

_DLE = const(0x10)
_EOT = const(0x04)

_KEYPAD = ("call", "recall", "skip", "transfer", "pause", "help")
_LEDS = ("ok", "err", "busy")


_HOLD_READS = const(3)  # reads of a level before the next one set over the socket shows


class SimPin(machine.PinBase):
    """An input pin with a pull-up: raw value 1 while released, 0 while pressed (the
    board wraps it in machine.Signal(invert=True) like a real active-low button).

    A level set over the control socket shows once the board has read the one before it
    _HOLD_READS times (the debounce filter, ow/ui.py, needs 2 equal samples). Why: on a
    loaded test host this process can sleep through a 50 ms press and then run "press"
    and "release" back to back, and the press is lost; a finger on a real board is held
    while the microcontroller runs. Bounce itself is tested with scripted pin levels
    (firmware/tests/mp/buttons.py), not through this pin."""

    def __init__(self, name):
        self.name = name
        self._v = 1
        self._reads = _HOLD_READS
        self._next = []  # levels set, not shown yet

    def value(self, v=None):
        if v is None:
            if self._next and self._reads >= _HOLD_READS:
                self._v = self._next.pop(0)
                self._reads = 0
            self._reads += 1
            return self._v
        self._next.append(1 if v else 0)
        return None


class SimLed(machine.PinBase):
    """An output pin that emits {"ev": "led"} whenever its level changes."""

    def __init__(self, name, emit):
        self.name = name
        self._emit = emit
        self._v = 0

    def value(self, v=None):
        if v is None:
            return self._v
        v = 1 if v else 0
        if v != self._v:
            self._v = v
            self._emit("led", name=self.name, on=bool(v))
        return None

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class SimFB(framebuf.FrameBuffer):
    """MONO_HLSB frame buffer; show() writes {out_dir}/fb.pbm and emits the buffer."""

    def __init__(self, w, h, out_dir, emit):
        self.width = w
        self.height = h
        self.buf = bytearray(((w + 7) // 8) * h)
        super().__init__(self.buf, w, h, framebuf.MONO_HLSB)
        self._path = out_dir + "/fb.pbm"
        self._emit = emit
        self.n = 0

    def show(self):
        # MONO_HLSB rows are byte-padded, MSB leftmost, 1 = set: exactly P4's raster.
        tmp = self._path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(b"P4\n%d %d\n" % (self.width, self.height))
            f.write(self.buf)
        os.rename(tmp, self._path)  # readers never see a half-written frame
        self.n += 1
        self._emit("fb", n=self.n, w=self.width, h=self.height, hex=self.buf.hex())


class SimSeg7:
    def __init__(self, emit, digits=8):
        self.digits = digits
        self.text = ""
        self._emit = emit

    def show_text(self, s):
        self.text = s
        self._emit("seg7", text=s)


class SimUART:
    """The printer end of a UART: stores what is written and answers DLE EOT n with the
    status byte an ESC/POS printer sends for its paper and cover state."""

    def __init__(self, out_dir, emit, chunk=0):
        self._path = out_dir + "/printer.bin"
        self._emit = emit
        self._chunk = chunk  # > 0: accept at most this much per write (partial writes)
        self._rx = bytearray()
        self._tail = 0  # 0, or 1 after DLE, or 2 after DLE EOT (split across writes)
        self.total = 0
        self.paper = "ok"  # "ok" | "near" | "out"
        self.cover_open = False
        with open(self._path, "wb"):
            pass

    def _status(self, n):
        out = self.paper == "out"
        b = 0x12  # bits 1 and 4 are always set
        if n == 1:
            if out or self.cover_open:
                b |= 0x08  # offline
        elif n == 2:
            if self.cover_open:
                b |= 0x04
            if out:
                b |= 0x20  # printing stopped by paper end
        elif n == 4:
            if self.paper != "ok":
                b |= 0x0C  # near-end sensor
            if out:
                b |= 0x60  # paper-end sensor
        else:
            return None
        return b

    def _scan(self, data):
        t = self._tail
        for c in data:
            if t == 2:
                s = self._status(c)
                if s is not None:
                    self._rx.append(s)
                t = 0
            if t == 1:
                t = 2 if c == _EOT else 0
            if t == 0 and c == _DLE:
                t = 1
        self._tail = t

    def write(self, buf):
        if self._chunk:
            buf = buf[: self._chunk]
        data = bytes(buf)
        with open(self._path, "ab") as f:
            f.write(data)
        self._scan(data)
        self.total += len(data)
        self._emit("uart", total=self.total)
        return len(data)

    def any(self):
        return len(self._rx)

    def read(self, n=-1):
        if not self._rx:
            return None
        if n is None or n < 0:
            n = len(self._rx)
        b = bytes(self._rx[:n])
        self._rx = self._rx[n:]
        return b


class SimTone:
    def __init__(self, emit):
        self._emit = emit

    def tone(self, freq, ms):
        self._emit("beep", freq=freq, ms=ms)


def emit(ev, **fields):
    fields["ev"] = ev
    print(json.dumps(fields))


class SimBoard:
    name = "sim"

    def __init__(self, cfg):
        sim = cfg.get("sim") or {}
        role = cfg.get("role")
        self.role = role
        self.ctl_port = sim.get("ctl_port", 0)
        out_dir = sim.get("out_dir", ".")
        self.out_dir = out_dir
        try:
            os.mkdir(out_dir)
        except OSError:
            pass  # exists
        self.poll_ms = sim.get("poll_ms", 5)  # as on the real boards
        self.crash_requested = asyncio.Event()
        self.fb: "SimFB | None" = None
        self.seg7 = None
        self.buttons: "dict[str, machine.Signal] | None" = None
        self.leds = None
        self.uart = None
        self.buzzer = None
        self.pins = {}  # name -> SimPin (raw, active-low), driven by the control server
        self._server = None
        self._irq = None
        if role == "led":
            if cfg.get("display") == "seg7":
                self.seg7 = SimSeg7(self.emit)
            else:
                self.fb = SimFB(sim.get("w", 128), sim.get("h", 32), out_dir, self.emit)
        elif role == "hall":
            self.fb = SimFB(sim.get("w", 128), sim.get("h", 64), out_dir, self.emit)
        if role in ("led", "hall", "keypad"):
            self.buzzer = Buzzer(SimTone(self.emit))
        if role == "box":
            n = len(cfg.get("buttons") or ()) or 4
            prio = cfg.get("priority_button") or ""  # "bN": the box's priority button
            if prio[1:].isdigit():
                n = max(n, int(prio[1:]) + 1)
            self._make_buttons(["b%d" % i for i in range(n)])
            self.uart = SimUART(out_dir, self.emit, sim.get("uart_chunk", 0))
        elif role == "keypad":
            self._make_buttons(_KEYPAD)
        if role in ("box", "keypad"):
            self.leds = {n: SimLed(n, self.emit) for n in _LEDS}

    def _make_buttons(self, names):
        self.buttons = {}
        for n in names:
            p = SimPin(n)
            self.pins[n] = p
            # The unix port's Signal takes any PinBase; the stubs only know machine.Pin.
            self.buttons[n] = machine.Signal(p, invert=True)  # type: ignore[call-overload]

    def emit(self, ev, **fields):
        emit(ev, **fields)

    def button_irq(self, handler):
        """As Pin.irq on the real boards: handler() runs on every button edge."""
        self._irq = handler

    def wdt(self, timeout_ms):
        return None  # the unix port has no machine.WDT

    async def network_up(self, cfg):
        return None

    def reset(self):
        sys.exit(3)

    async def start(self):
        """Start the control server (make() is synchronous, so the runtime awaits this)."""
        if self._server is None and self.ctl_port:
            self._server = await asyncio.start_server(self._client, "127.0.0.1", self.ctl_port)
            self.emit("sim", ctl_port=self.ctl_port, role=self.role)

    async def stop(self):
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _client(self, r, w):
        try:
            while True:
                line = await r.readline()
                if not line:
                    break
                cmd = line.decode().strip()
                if not cmd:
                    continue
                try:
                    reply = self.command(cmd)
                except Exception as e:  # a bad line must not kill the server
                    reply = "error %r" % (e,)
                self.emit("ctl", cmd=cmd, reply=reply)
                w.write((reply + "\n").encode())
                await w.drain()
        except OSError:
            pass
        finally:
            w.close()
            try:
                await w.wait_closed()
            except OSError:
                pass

    def command(self, cmd):
        """Apply one control line; returns "ok" or "error ..."."""
        parts = cmd.split()
        op = parts[0]
        arg = parts[1] if len(parts) == 2 else None
        if len(parts) > 2 or (arg is None and op not in ("crash", "heap")):
            return "error bad arguments"
        if op in ("press", "release"):
            p = self.pins.get(arg)
            if p is None:
                return "error no button %s" % arg
            p.value(0 if op == "press" else 1)
            if self._irq is not None:
                self._irq()
        elif op == "paper":
            if self.uart is None:
                return "error no printer"
            if arg not in ("out", "near", "ok"):
                return "error paper out|near|ok"
            self.uart.paper = arg
        elif op == "cover":
            if self.uart is None:
                return "error no printer"
            if arg not in ("open", "closed"):
                return "error cover open|closed"
            self.uart.cover_open = arg == "open"
        elif op == "crash":
            if arg is not None:
                return "error bad arguments"
            self.crash_requested.set()
        elif op == "heap":
            if arg is not None:
                return "error bad arguments"
            gc.collect()
            alloc, free = gc.mem_alloc(), gc.mem_free()
            self.emit("heap", alloc=alloc, free=free, largest=largest_free_block(free))
        else:
            return "error unknown command %s" % op
        return "ok"


def largest_free_block(free):
    """The largest block one allocation can get now, to 16 bytes: the biggest bytearray
    that succeeds (a binary search, collecting after each try so that one try's block is
    free again for the next). Fragmentation shows here long before `free` runs out."""
    lo, hi = 0, free
    while hi - lo > 16:
        mid = (lo + hi) // 2
        if _can_allocate(mid):
            lo = mid
        else:
            hi = mid
        gc.collect()
    return lo


def _can_allocate(n):
    # Its own frame: no reference to the block outlives the call.
    try:
        bytearray(n)
        return True
    except MemoryError:
        return False


def make(cfg):
    return SimBoard(cfg)
