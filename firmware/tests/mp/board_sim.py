# Sim board check: makes boards/sim.py for $OW_CFG, starts its control server, draws on
# the frame buffer, writes to the printer UART and reports button edges, printer status
# and crash requests as JSON lines. test_boards.py drives it over the control socket.
import asyncio
import json
import os

from drivers.printer import Printer, alerts

from boards import sim

cfg = json.loads(os.getenv("OW_CFG"))


async def watch_buttons(b, on_press):
    last = {n: p.value() for n, p in b.buttons.items()}
    b.emit("buttons", values=last)
    while True:
        for n, p in b.buttons.items():
            v = p.value()
            if v != last[n]:
                last[n] = v
                b.emit("btn", name=n, value=v, raw=b.pins[n].value())
                if v:
                    on_press(n)
        await asyncio.sleep_ms(b.poll_ms)


async def watch_crash(b):
    await b.crash_requested.wait()
    b.crash_requested.clear()
    b.emit("crashed")


async def report_status(b, prn):
    # Asks the printer for its status, once through the driver and once raw
    # (DLE EOT 1, 2, 4), so the test sees both the bytes and their meaning.
    s = await prn.status()
    raw = []
    for n in (1, 2, 4):
        b.uart.write(bytes((0x10, 0x04, n)))
        r = b.uart.read(1)
        raw.append(r[0] if r else None)
    b.emit("status", status=s, alerts=alerts(s), raw=raw, rx_left=b.uart.any())


async def main():
    b = sim.make(cfg)
    await b.start()
    assert b.wdt(1000) is None
    await b.network_up(cfg)
    if b.fb is not None:
        fb = b.fb
        fb.fill(0)
        fb.text("A017", 0, 0, 1)
        fb.fill_rect(0, fb.height - 4, fb.width, 4, 1)
        fb.show()
    if b.seg7 is not None:
        b.seg7.show_text("A017  03")
    if b.leds:
        b.leds["ok"].value(1)
        b.leds["ok"].value(1)  # no change: no second event
        b.leds["err"].on()
        b.leds["err"].off()
    if b.buzzer is not None:
        await b.buzzer.chime()
    tasks = [asyncio.create_task(watch_crash(b))]
    prn = None
    if b.uart is not None:
        prn = Printer(b.uart)
        await prn.write(b"\x1b@hello\n" + bytes(range(256)))

    def on_press(name):
        # Each press of b0 on a box reports the printer status.
        if name == "b0" and prn is not None:
            asyncio.create_task(report_status(b, prn))

    if b.buttons:
        tasks.append(asyncio.create_task(watch_buttons(b, on_press)))
    b.emit("ready", name=b.name, poll_ms=b.poll_ms, buttons=sorted(b.buttons or ()))
    await asyncio.gather(*tasks)


asyncio.run(main())
