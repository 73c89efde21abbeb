# Driver checks on the unix port with fake SPI/I2C/UART/PWM objects that record what
# the drivers send; prints one JSON line per driver for test_boards.py to assert on.
import asyncio
import binascii
import gc
import json

from drivers import buzzer, max7219, printer, ssd1306


def emit(ev, **kw):
    kw["ev"] = ev
    print(json.dumps(kw))


class FakeSPI:
    def __init__(self, log):
        self.log = log

    def write(self, buf):
        self.log.append(["spi", bytes(buf).hex()])


class FakeCS:
    def __init__(self, log):
        self.log = log

    def value(self, v):
        self.log.append(["cs", v])


class FakeI2C:
    def __init__(self):
        self.log = []

    def writeto(self, addr, buf):
        self.log.append([addr, bytes(buf).hex()])

    def writevto(self, addr, bufs):
        self.log.append([addr, "".join(bytes(b).hex() for b in bufs)])


class FakeUART:
    """Accepts at most `take` bytes per write; every `none_every`-th write returns None
    (TX buffer full). `answers` maps a DLE EOT n request to the status byte sent back."""

    def __init__(self, take=7, none_every=3, answers=None):
        self.take = take
        self.none_every = none_every
        self.answers = answers
        self.calls = 0
        self.sizes = []
        self.out = bytearray()
        self.rx = bytearray()

    def write(self, buf):
        self.calls += 1
        if self.none_every and self.calls % self.none_every == 0:
            self.sizes.append(None)
            return None
        n = min(self.take, len(buf))
        self.sizes.append(n)
        self.out += bytes(buf[:n])
        if self.answers is not None and bytes(buf[:n])[:2] == b"\x10\x04":
            a = self.answers.get(buf[2])
            if a is not None:
                self.rx += a
        return n

    def any(self):
        return len(self.rx)

    def read(self, n=-1):
        if not self.rx:
            return None
        if n < 0:
            n = len(self.rx)
        b = bytes(self.rx[:n])
        self.rx = self.rx[n:]
        return b


class SinkUART:
    """Takes every byte into a buffer allocated up front: writes allocate nothing."""

    def __init__(self, size):
        self.out = bytearray(size)
        self.n = 0

    def write(self, buf):
        k = len(buf)
        self.out[self.n : self.n + k] = buf
        self.n += k
        return k

    def any(self):
        return 0


class FakePWM:
    def __init__(self, log):
        self.log = log

    def freq(self, f):
        self.log.append(["freq", f])

    def duty_u16(self, d):
        self.log.append(["duty", d])


def frames(log):
    # Group SPI bytes by CS frames (low .. high).
    out = []
    cur = None
    for kind, v in log:
        if kind == "cs" and v == 0:
            cur = ""
        elif kind == "cs" and v == 1 and cur is not None:
            out.append(cur)
            cur = None
        elif kind == "spi":
            cur = (cur or "") + v
    return out


def seg7():
    log = []
    d = max7219.Seg7(FakeSPI(log), FakeCS(log), brightness=5)
    init = frames(log)
    log.clear()
    d.show_text("A017  03")
    text = frames(log)
    log.clear()
    d.show_text("-HELP.?")
    emit("seg7", init=init, text=text, other=frames(log))


def matrix():
    log = []
    m = max7219.Matrix(FakeSPI(log), FakeCS(log), 4, rows=2)  # 16 x 16
    init = frames(log)
    log.clear()
    m.fill(0)
    m.pixel(0, 0, 1)  # module 0 (top left), row 0, leftmost column
    m.pixel(15, 0, 1)  # module 1 (top right), row 0, rightmost column
    m.pixel(8, 9, 1)  # module 3 (bottom right), row 1, leftmost column
    m.show()
    shown = frames(log)
    log.clear()
    m.brightness(15)
    emit("matrix", w=m.width, h=m.height, init=init, show=shown, bright=frames(log))


def oled():
    i2c = FakeI2C()
    d = ssd1306.SSD1306_I2C(128, 32, i2c)
    init = i2c.log[:]
    i2c.log.clear()
    d.fill(0)
    d.pixel(0, 0, 1)
    d.pixel(127, 31, 1)
    d.pixel(5, 10, 1)
    d.show()
    show = i2c.log[:]
    i2c.log.clear()
    d.contrast(0x10)
    d.poweroff()
    d.poweron()
    emit("ssd1306", init=init, show=show, misc=i2c.log)


async def prn():
    data = bytes(range(200))
    u = FakeUART(take=7, none_every=3)
    p = printer.Printer(u, chunk=16)
    # A ticker task proves the loop keeps running while the printer write is in progress.
    ticks = [0]

    async def tick():
        while True:
            ticks[0] += 1
            await asyncio.sleep_ms(0)

    t = asyncio.create_task(tick())
    n = await p.write(data)
    t.cancel()
    emit(
        "prn_write",
        n=n,
        same=bytes(u.out) == data,
        sizes=u.sizes[:8],
        calls=u.calls,
        ticks=ticks[0],
    )
    # A ticket as the hub sends it (base64), streamed through the printer's own buffer:
    # every length round a quad and a chunk, through a UART that takes 7 bytes at a time.
    b64 = {}
    for n in (0, 1, 2, 3, 47, 48, 49, 63, 64, 65, 200, 3000):
        data = bytes((i * 7 + n) & 0xFF for i in range(n))
        u = FakeUART(take=7, none_every=3)
        k = await printer.Printer(u).write_b64(binascii.b2a_base64(data).decode().strip())
        b64[str(n)] = [k, bytes(u.out) == data]
    # What printing a 3 KB ticket allocates, counted with the collector off: its buffer is
    # the Printer's, so a few small objects (coroutines), not a copy of the ticket.
    text = binascii.b2a_base64(bytes(range(256)) * 12).decode().strip()
    sink = SinkUART(4096)
    p = printer.Printer(sink)
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    k = await p.write_b64(text)
    grew = gc.mem_alloc() - before
    gc.enable()
    alloc = [k, bytes(sink.out[: sink.n]) == bytes(range(256)) * 12, grew]
    bad = {}
    for text in ("abc", "ab=c", "!!!!", "a===", "QUJD\nREVG"):
        u = FakeUART(take=100, none_every=0)
        try:
            await printer.Printer(u).write_b64(text)
            bad[text] = "sent %d" % len(u.out)
        except ValueError:
            bad[text] = "ValueError, sent %d" % len(u.out)
    emit("prn_b64", ok=b64, alloc=alloc, bad=bad)
    # Stall: a UART that never accepts anything.
    u = FakeUART(take=0, none_every=0)
    p = printer.Printer(u, stall_ms=100)
    try:
        await p.write(b"abc")
        emit("prn_stall", raised=False)
    except OSError as e:
        emit("prn_stall", raised=True, msg=str(e))

    cases = {
        "ok": {1: b"\x12", 2: b"\x12", 4: b"\x12"},
        "paper_out": {1: b"\x1a", 2: b"\x32", 4: b"\x7e"},
        "cover_open": {1: b"\x1a", 2: b"\x16", 4: b"\x12"},
        "near_end": {1: b"\x12", 2: b"\x12", 4: b"\x1e"},
        # Noise before the answer (a non-status byte) is skipped.
        "noisy": {1: b"\xff\x12", 2: b"\x12", 4: b"\x12"},
        "timeout": {},
        "partial": {1: b"\x12"},
    }
    res = {}
    for name, ans in cases.items():
        u = FakeUART(take=100, none_every=0, answers=ans)
        u.rx += b"\x12\x12"  # stale bytes from an earlier request must be drained
        p = printer.Printer(u, timeout_ms=100)
        s = await p.status()
        res[name] = [s, printer.alerts(s), bytes(u.out).hex()]
    emit("prn_status", res=res)


async def buzz():
    log = []
    b = buzzer.Buzzer(FakePWM(log))
    await b.beep(1000, 30)
    await b.chime()
    emit("buzz_pwm", log=log)

    class P:
        def __init__(self):
            self.vals = []

        def value(self, v):
            self.vals.append(v)

    p = P()
    await buzzer.Buzzer(p).beep(1000, 10)
    # Cancelling a beep switches the buzzer off.
    log2 = []
    b2 = buzzer.Buzzer(FakePWM(log2))
    t = asyncio.create_task(b2.beep(500, 1000))
    await asyncio.sleep_ms(20)
    t.cancel()
    await asyncio.sleep_ms(20)
    emit("buzz_pin", vals=p.vals, cancelled=log2)


seg7()
matrix()
oled()
asyncio.run(prn())
asyncio.run(buzz())
emit("done")
